/* Unit tests for note_sign.c: signer keys (parse, format, one refusal per
 * rule), signers from seeds, existing keys and fresh keys, signing notes
 * and cosignatures, and the refusals of each (type confusion, texts no
 * verifier could parse). Reproducing the vector's signature line is in
 * test_note.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cosig.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"
#include "otachain/sign.h"

#include "failalloc.h"

#define PN_SKEY "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define PN_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define CP_BODY                                                                                    \
    "example.com/log\n"                                                                            \
    "5\n"                                                                                          \
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

static void expect_skey(const char *s, int want, const char *detail_part)
{
    struct ota_note_signer *sg = (struct ota_note_signer *)&sg; /* not NULL */
    struct ota_detail det = {{0}};

    assert_int_equal(ota_note_signer_parse(&sg, s, strlen(s), &det), want);
    assert_null(sg);
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("skey %s: detail \"%s\" lacks \"%s\"", s, det.msg, detail_part);
}

/* PN_SKEY with its key part replaced by base64(type || seed[0..n)). */
static void skey_with(char *out, size_t size, uint8_t type, size_t n)
{
    uint8_t raw[40];
    char b64[64];

    memset(raw, 0x42, sizeof(raw));
    raw[0] = type;
    ota_base64_encode(b64, raw, 1 + n);
    snprintf(out, size, "PRIVATE+KEY+PeterNeumann+c74f20a3+%s", b64);
}

static void test_skey_refusals(void **state)
{
    char s[700];

    (void)state;
    expect_skey("PRIVATE+KEY", OTA_ERR_KEY_FORMAT, "PRIVATE+KEY+");
    expect_skey("PUBLIC+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                OTA_ERR_KEY_FORMAT, "PRIVATE+KEY+");
    expect_skey("PRIVATE+KEY+PeterNeumann+c74f20a3", OTA_ERR_KEY_FORMAT, "PRIVATE+KEY+");
    expect_skey("PRIVATE+KEY++c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                OTA_ERR_KEY_FORMAT, "key name");
    expect_skey("PRIVATE+KEY+PeterNeumann+C74F20A3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                OTA_ERR_KEY_FORMAT, "hex");
    expect_skey("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
                OTA_ERR_KEY_FORMAT, "base64");
    skey_with(s, sizeof(s), 0x02, 32);
    expect_skey(s, OTA_ERR_UNSUPPORTED, "0x02");
    skey_with(s, sizeof(s), 0x01, 31);
    expect_skey(s, OTA_ERR_KEY_FORMAT, "not 32");
    skey_with(s, sizeof(s), 0x01, 33);
    expect_skey(s, OTA_ERR_KEY_FORMAT, "not 32");
    expect_skey("PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                OTA_ERR_KEYID_MISMATCH, "c74f20a3");
    /* The key ID covers the type: the same seed as a cosigner key. */
    expect_skey("PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
                OTA_ERR_KEYID_MISMATCH, NULL);
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    memcpy(s, "PRIVATE+KEY+", 12);
    expect_skey(s, OTA_ERR_KEY_FORMAT, NULL);
}

static void test_skey_round_trip_and_vkey(void **state)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_signer *t = NULL;
    struct ota_note_verifier v;
    struct ota_note_verifier w;
    struct ota_buf b;
    char vk[OTA_NOTE_VKEY_SIZE];

    (void)state;
    assert_int_equal(ota_note_signer_parse(&s, PN_SKEY, strlen(PN_SKEY), NULL), 0);
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(vk, &v);
    assert_string_equal(vk, PN_VKEY);
    ota_note_signer_free(s);

    /* A fresh cosigner key, written and read back. */
    assert_int_equal(ota_note_signer_generate(&s, "witness.example/w1", 18, 0x04), 0);
    ota_buf_init(&b, 1024);
    assert_int_equal(ota_note_signer_format(&b, s), 0);
    assert_memory_equal(b.data, "PRIVATE+KEY+witness.example/w1+", 31);
    assert_int_equal(ota_note_signer_parse(&t, (char *)b.data, b.len, NULL), 0);
    ota_note_signer_verifier(&v, s);
    ota_note_signer_verifier(&w, t);
    assert_memory_equal(&v, &w, sizeof(v));
    assert_int_equal(v.type, OTA_NOTE_TYPE_COSIG_V1);
    ota_buf_free(&b);
    ota_note_signer_free(s);
    ota_note_signer_free(t);
    ota_note_signer_free(NULL);
}

static void test_signer_constructors(void **state)
{
    struct ota_signer *key = NULL;
    struct ota_note_signer *a = NULL;
    struct ota_note_signer *b = NULL;
    struct ota_note_verifier va;
    struct ota_note_verifier vb;
    uint8_t seed[32];
    uint8_t back[32];

    (void)state;
    memset(seed, 0x5a, sizeof(seed));
    assert_int_equal(ota_signer_from_seed(&key, seed), 0);
    assert_int_equal(ota_signer_seed(back, key), 0);
    assert_memory_equal(back, seed, 32);
    assert_int_equal(ota_note_signer_from_signer(&a, "log.example", 11, 0x01, key), 0);
    assert_int_equal(ota_note_signer_from_seed(&b, "log.example", 11, 0x01, seed), 0);
    ota_note_signer_verifier(&va, a);
    ota_note_signer_verifier(&vb, b);
    assert_memory_equal(&va, &vb, sizeof(va));
    ota_note_signer_free(a);
    ota_note_signer_free(b);
    /* Invalid names and types. */
    assert_int_equal(ota_note_signer_from_seed(&a, "a b", 3, 0x01, seed), OTA_ERR_KEY_FORMAT);
    assert_null(a);
    assert_int_equal(ota_note_signer_from_seed(&a, "a+b", 3, 0x01, seed), OTA_ERR_KEY_FORMAT);
    assert_int_equal(ota_note_signer_from_seed(&a, "", 0, 0x01, seed), OTA_ERR_KEY_FORMAT);
    assert_int_equal(ota_note_signer_from_seed(&a, "ab", 2, 0x02, seed), OTA_ERR_UNSUPPORTED);
    assert_int_equal(ota_note_signer_generate(&a, "ab", 2, 0x06), OTA_ERR_UNSUPPORTED);
    assert_int_equal(ota_note_signer_from_signer(&a, "ab", 2, 0x01, NULL), OTA_ERR_INVALID_ARG);
    assert_null(a);
    ota_signer_free(key);
}

static void test_sign_note_round_trip(void **state)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    struct ota_note_check c;
    struct ota_note *n = NULL;
    struct ota_buf b;
    uint8_t seed[32];
    size_t nv = 0;
    const char *text = "line one\n\nline three \xc3\xa9\n";

    (void)state;
    memset(seed, 1, sizeof(seed));
    assert_int_equal(ota_note_signer_from_seed(&s, "log.example", 11, 0x01, seed), 0);
    ota_note_signer_verifier(&v, s);
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_buf_append_str(&b, text), 0);
    assert_int_equal(ota_buf_append_str(&b, "\n"), 0);
    assert_int_equal(ota_note_sign(&b, text, strlen(text), s, NULL), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    assert_int_equal(ota_note_verify(&c, &nv, n, &v, 1, NULL), 0);
    assert_true(c.verified);
    ota_note_free(n);
    ota_buf_free(&b);
    ota_note_signer_free(s);
}

static void test_sign_refusals(void **state)
{
    struct ota_note_signer *log = NULL;
    struct ota_note_signer *wit = NULL;
    struct ota_buf b;
    uint8_t seed[32];

    (void)state;
    memset(seed, 2, sizeof(seed));
    assert_int_equal(ota_note_signer_from_seed(&log, "log.example", 11, 0x01, seed), 0);
    assert_int_equal(ota_note_signer_from_seed(&wit, "w.example", 9, 0x04, seed), 0);
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_buf_append_str(&b, "keep"), 0);
    /* Texts no verifier would parse. */
    assert_int_equal(ota_note_sign(&b, "no newline", 10, log, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_note_sign(&b, "a\rb\n", 4, log, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_note_sign(&b, "\xff\n", 2, log, NULL), OTA_ERR_FORMAT);
    /* Type confusion. */
    assert_int_equal(ota_note_sign(&b, "a\n", 2, wit, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_note_cosign(&b, CP_BODY, strlen(CP_BODY), 1, log, NULL),
                     OTA_ERR_INVALID_ARG);
    /* A cosignature needs a checkpoint and a time below 2^63. */
    assert_int_equal(ota_note_cosign(&b, "just text\n", 10, 1, wit, NULL), OTA_ERR_FORMAT);
    assert_int_equal(
        ota_note_cosign(&b, CP_BODY, strlen(CP_BODY), OTA_COSIG_MAX_TIME + 1, wit, NULL),
        OTA_ERR_INVALID_ARG);
    /* out untouched by every refusal. */
    assert_int_equal(b.len, 4);
    assert_string_equal((char *)b.data, "keep");
    /* And a good cosignature appends one line. */
    assert_int_equal(ota_note_cosign(&b, CP_BODY, strlen(CP_BODY), OTA_COSIG_MAX_TIME, wit, NULL),
                     0);
    assert_memory_equal(b.data, "keep\xe2\x80\x94 w.example ", 4 + 4 + 10);
    assert_int_equal(b.data[b.len - 1], '\n');
    ota_buf_free(&b);
    ota_note_signer_free(log);
    ota_note_signer_free(wit);
}

/* Appends to b a checkpoint signed by PN_SKEY and cosigned by a witness
 * made from a seed. */
static int sign_note(struct ota_buf *b)
{
    struct ota_note_signer *log = NULL;
    struct ota_note_signer *w = NULL;
    uint8_t seed[32];
    int rc;

    memset(seed, 5, sizeof(seed));
    rc = ota_note_signer_parse(&log, PN_SKEY, strlen(PN_SKEY), NULL);
    if (rc == 0)
        rc = ota_note_signer_from_seed(&w, "witness.example", 15, OTA_NOTE_TYPE_COSIG_V1, seed);
    if (rc == 0)
        rc = ota_buf_printf(b, "%s\n", CP_BODY);
    if (rc == 0)
        rc = ota_note_sign(b, CP_BODY, strlen(CP_BODY), log, NULL);
    if (rc == 0)
        rc = ota_note_cosign(b, CP_BODY, strlen(CP_BODY), 1700000000, w, NULL);
    ota_note_signer_free(log);
    ota_note_signer_free(w);
    return rc;
}

/* sign_note into a fresh buffer: 0 and the bytes of want, or an error. */
static int fa_sign(const struct ota_buf *want)
{
    struct ota_buf b;
    int rc;

    ota_buf_init(&b, 1 << 16);
    rc = sign_note(&b);
    if (rc == 0 && (b.len != want->len || memcmp(b.data, want->data, b.len) != 0))
        rc = OTA_ERR_FORMAT;
    ota_buf_free(&b);
    return rc;
}

/* STYLE rule 9: each allocation of signing and cosigning fails in turn
 * (Ed25519 signatures are deterministic: a run that succeeds gives the
 * same note). */
static void test_alloc_faults(void **state)
{
    struct ota_buf want;
    int rc;

    (void)state;
    ota_buf_init(&want, 1 << 16);
    assert_int_equal(sign_note(&want), 0);
    FA_LOOP(rc, fa_sign(&want));
    assert_true(fa_failed_runs() >= 4);
    ota_buf_free(&want);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_skey_refusals),
        cmocka_unit_test(test_skey_round_trip_and_vkey),
        cmocka_unit_test(test_signer_constructors),
        cmocka_unit_test(test_sign_note_round_trip),
        cmocka_unit_test(test_sign_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
