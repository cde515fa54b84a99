/* Unit tests for note.c (and the note signing of note_sign.c against the
 * vectors): the two signed-note vectors of $OTA_VECTORS verify, every
 * flipped byte of their text or of a signature is refused, signing with
 * PeterNeumann's key reproduces the vector's signature line, key IDs and
 * verifier keys, one refusal per parse rule (exact error), and the
 * verification semantics of the spec (unknown keys ignored, a bad
 * signature by a known key fatal, duplicates). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/fsutil.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"

#include "failalloc.h"

#define V1_FILE "c2sp-signed-note-example.note"
#define V1_VKEY "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
#define V2_FILE "go-note-two-signers.note"
#define PN_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define ER_VKEY "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
#define PN_SKEY "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"

#define EM "\xe2\x80\x94 "
/* A syntactically valid signature line body: key ID 01020304, 65 bytes. */
#define SIGOK                                                                                      \
    "AQIDBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* ---- helpers ---- */

static uint8_t *read_vector(const char *name, size_t *len)
{
    const char *dir = getenv("OTA_VECTORS");
    char path[PATH_MAX];
    uint8_t *data = NULL;

    if (dir == NULL || dir[0] == '\0')
        fail_msg("OTA_VECTORS is not set (meson test sets it)");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(ota_fs_read(&data, len, path, 1 << 20), 0);
    return data;
}

static void vkey(struct ota_note_verifier *v, const char *s)
{
    struct ota_detail det = {{0}};

    if (ota_note_verifier_parse(v, s, strlen(s), &det) != 0)
        fail_msg("vkey %s: %s", s, det.msg);
}

static int parse_str(const char *s, struct ota_detail *det)
{
    struct ota_note *n = NULL;
    int rc = ota_note_parse(&n, s, strlen(s), det);

    if (rc != 0)
        assert_null(n);
    ota_note_free(n);
    return rc;
}

/* Parses and verifies; returns the first error. checks has nvs entries. */
static int open_note(const uint8_t *data, size_t len, const struct ota_note_verifier *vs,
                     size_t nvs, struct ota_note_check *checks)
{
    struct ota_note *n = NULL;
    size_t nv = 0;
    int rc = ota_note_parse(&n, data, len, NULL);

    if (rc == 0)
        rc = ota_note_verify(checks, &nv, n, vs, nvs, NULL);
    ota_note_free(n);
    return rc;
}

/* ---- the vectors ---- */

static void test_readme_names_the_keys(void **state)
{
    size_t len = 0;
    uint8_t *readme = read_vector("README.md", &len);

    (void)state;
    assert_non_null(strstr((char *)readme, V1_VKEY));
    assert_non_null(strstr((char *)readme, PN_VKEY));
    assert_non_null(strstr((char *)readme, ER_VKEY));
    assert_non_null(strstr((char *)readme, PN_SKEY));
    free(readme);
}

static void test_vector_c2sp_example_verifies(void **state)
{
    struct ota_note_verifier v;
    struct ota_note_check c;
    struct ota_note *n = NULL;
    struct ota_buf b;
    size_t len = 0;
    size_t nv = 0;
    uint8_t *data = read_vector(V1_FILE, &len);

    (void)state;
    vkey(&v, V1_VKEY);
    assert_int_equal(ota_note_parse(&n, data, len, NULL), 0);
    assert_string_equal(n->text, "This is an example message.\n");
    assert_int_equal(n->nsigs, 1);
    assert_string_equal(n->sigs[0].name, "example.com/foo");
    assert_int_equal(n->sigs[0].key_id, 0x530d903a);
    assert_int_equal(n->sigs[0].sig_len, 64);
    assert_int_equal(ota_note_verify(&c, &nv, n, &v, 1, NULL), 0);
    assert_int_equal(nv, 1);
    assert_true(c.verified);
    assert_int_equal(c.timestamp, 0);
    /* Formatting gives the file back byte for byte. */
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_note_format(&b, n), 0);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, data, len);
    ota_buf_free(&b);
    ota_note_free(n);
    free(data);
}

static void test_vector_two_signers_verify(void **state)
{
    struct ota_note_verifier v[2];
    struct ota_note_check c[2];
    struct ota_note *n = NULL;
    size_t len = 0;
    size_t nv = 0;
    uint8_t *data = read_vector(V2_FILE, &len);

    (void)state;
    vkey(&v[0], PN_VKEY);
    vkey(&v[1], ER_VKEY);
    assert_int_equal(ota_note_parse(&n, data, len, NULL), 0);
    assert_string_equal(n->text, "If you think cryptography is the answer to your problem,\n"
                                 "then you don't know what your problem is.\n");
    assert_int_equal(n->nsigs, 2);
    assert_int_equal(ota_note_verify(c, &nv, n, v, 2, NULL), 0);
    assert_int_equal(nv, 2);
    assert_true(c[0].verified);
    assert_true(c[1].verified);
    /* Each key alone suffices; the other signature is then unknown. */
    assert_int_equal(ota_note_verify(c, &nv, n, &v[1], 1, NULL), 0);
    assert_int_equal(nv, 1);
    ota_note_free(n);
    free(data);
}

/* Flips every byte of the file with several masks. A flip in the text or
 * the blank line must make parsing or verification fail; a flip in the
 * signature line of key k must fail or leave key k unverified. */
static void flip_all(const char *file, const char *const *vkeys, size_t nkeys)
{
    static const uint8_t masks[] = {0x01, 0x10, 0x80};
    struct ota_note_verifier v[2];
    struct ota_note *orig = NULL;
    size_t len = 0;
    uint8_t *data = read_vector(file, &len);
    size_t line_start[3];
    size_t tried = 0;

    assert_true(nkeys <= 2);
    for (size_t k = 0; k < nkeys; k++)
        vkey(&v[k], vkeys[k]);
    assert_int_equal(ota_note_parse(&orig, data, len, NULL), 0);
    assert_int_equal(orig->nsigs, nkeys);
    /* Start of each signature line, and the end. */
    line_start[0] = orig->text_len + 1;
    for (size_t k = 1; k <= nkeys; k++) {
        const uint8_t *nl = memchr(data + line_start[k - 1], '\n', len - line_start[k - 1]);

        line_start[k] = (size_t)(nl - data) + 1;
    }
    assert_int_equal(line_start[nkeys], len);

    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            struct ota_note_check c[2];
            int rc;

            data[i] ^= masks[m];
            rc = open_note(data, len, v, nkeys, c);
            if (i < line_start[0]) {
                if (rc == 0)
                    fail_msg("%s: flipping byte %zu with 0x%02x still verifies", file, i, masks[m]);
            } else {
                size_t k = 0;

                while (i >= line_start[k + 1])
                    k++;
                if (rc == 0 && c[k].verified)
                    fail_msg("%s: flipping byte %zu (signature %zu) with 0x%02x still verifies",
                             file, i, k, masks[m]);
            }
            data[i] ^= masks[m];
            tried++;
        }
    }
    assert_int_equal(tried, len * sizeof(masks));
    /* And the untouched file still verifies. */
    {
        struct ota_note_check c[2];

        assert_int_equal(open_note(data, len, v, nkeys, c), 0);
    }
    ota_note_free(orig);
    free(data);
}

static void test_vector_c2sp_example_every_flip_fails(void **state)
{
    const char *keys[] = {V1_VKEY};

    (void)state;
    flip_all(V1_FILE, keys, 1);
}

static void test_vector_two_signers_every_flip_fails(void **state)
{
    const char *keys[] = {PN_VKEY, ER_VKEY};

    (void)state;
    flip_all(V2_FILE, keys, 2);
}

static void test_vector_sign_reproduces_line(void **state)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    struct ota_note *n = NULL;
    struct ota_buf line;
    struct ota_buf skey;
    char vk[OTA_NOTE_VKEY_SIZE];
    size_t len = 0;
    uint8_t *data = read_vector(V2_FILE, &len);
    const char *want;

    (void)state;
    assert_int_equal(ota_note_parse(&n, data, len, NULL), 0);
    assert_int_equal(ota_note_signer_parse(&s, PN_SKEY, strlen(PN_SKEY), NULL), 0);
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(vk, &v);
    assert_string_equal(vk, PN_VKEY);
    ota_buf_init(&line, 4096);
    assert_int_equal(ota_note_sign(&line, n->text, n->text_len, s, NULL), 0);
    /* The vector's first signature line. */
    want = (const char *)data + n->text_len + 1;
    assert_true(line.len < len);
    assert_memory_equal(line.data, want, line.len);
    assert_int_equal(want[line.len - 1], '\n');
    assert_memory_equal(line.data, EM "PeterNeumann x08go/", strlen(EM "PeterNeumann x08go/"));
    /* The signer key formats back to the same string. */
    ota_buf_init(&skey, 1024);
    assert_int_equal(ota_note_signer_format(&skey, s), 0);
    assert_string_equal((char *)skey.data, PN_SKEY);
    ota_buf_free(&skey);
    ota_buf_free(&line);
    ota_note_signer_free(s);
    ota_note_free(n);
    free(data);
}

/* ---- key IDs and verifier keys ---- */

static void test_key_id_computation(void **state)
{
    struct ota_note_verifier v;
    uint32_t id = 0;
    char out[OTA_NOTE_VKEY_SIZE];
    const char *keys[] = {V1_VKEY, PN_VKEY, ER_VKEY};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        vkey(&v, keys[i]);
        assert_int_equal(ota_note_key_id(&id, v.name, v.name_len, v.type, v.pub, 32), 0);
        assert_int_equal(id, v.key_id);
        assert_int_equal(ota_note_verifier_format(out, &v), strlen(keys[i]));
        assert_string_equal(out, keys[i]);
    }
    vkey(&v, V1_VKEY);
    assert_int_equal(v.key_id, 0x530d903a);
    assert_int_equal(v.type, OTA_NOTE_TYPE_ED25519);
    /* The same name and key as a cosigner (type 0x04) has another ID. */
    assert_int_equal(ota_note_key_id(&id, v.name, v.name_len, 0x04, v.pub, 32), 0);
    assert_int_not_equal(id, 0x530d903a);
    /* Make computes the same ID as the string carries. */
    {
        struct ota_note_verifier w;

        assert_int_equal(ota_note_verifier_make(&w, "example.com/foo", 15, 0x01, v.pub), 0);
        assert_int_equal(w.key_id, 0x530d903a);
        assert_int_equal(ota_note_verifier_make(&w, "bad name", 8, 0x01, v.pub),
                         OTA_ERR_KEY_FORMAT);
        assert_int_equal(ota_note_verifier_make(&w, "n", 1, 0x02, v.pub), OTA_ERR_UNSUPPORTED);
    }
}

static void expect_vkey(const char *s, int want, const char *detail_part)
{
    struct ota_note_verifier v;
    struct ota_detail det = {{0}};

    memset(&v, 0x55, sizeof(v));
    assert_int_equal(ota_note_verifier_parse(&v, s, strlen(s), &det), want);
    assert_int_equal(v.key_id, 0);
    assert_int_equal(v.name_len, 0);
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("vkey %s: detail \"%s\" lacks \"%s\"", s, det.msg, detail_part);
}

static void test_vkey_refusals(void **state)
{
    char big[OTA_NOTE_VKEY_MAX_LEN + 2];

    (void)state;
    expect_vkey("example.com/foo+530d903a", OTA_ERR_KEY_FORMAT, "<name>+");
    expect_vkey("example.com/foo", OTA_ERR_KEY_FORMAT, "<name>+");
    expect_vkey("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", OTA_ERR_KEY_FORMAT,
                "key name");
    expect_vkey("exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_KEY_FORMAT, "key name");
    expect_vkey("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_KEY_FORMAT, "hex");
    expect_vkey("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_KEY_FORMAT, "hex");
    expect_vkey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
                OTA_ERR_KEY_FORMAT, "base64");
    expect_vkey("example.com/foo+530d903a+", OTA_ERR_KEY_FORMAT, "base64");
    /* Type 0x02 (ECDSA) is not supported. */
    expect_vkey("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_UNSUPPORTED, "0x02");
    /* 31-byte key. */
    expect_vkey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3Q==",
                OTA_ERR_KEY_FORMAT, "not 32");
    /* Right shape, wrong ID. */
    expect_vkey("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_KEYID_MISMATCH, "530d903a");
    /* Another name changes the ID. */
    expect_vkey("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                OTA_ERR_KEYID_MISMATCH, NULL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_vkey(big, OTA_ERR_KEY_FORMAT, "cap");
}

/* ---- parse rules, one refusal each ---- */

static void expect_parse(const char *s, int want, const char *detail_part)
{
    struct ota_detail det = {{0}};
    int rc = parse_str(s, &det);

    if (rc != want)
        fail_msg("note %s: got %s (%s), want %s", s, ota_errname(rc), det.msg, ota_errname(want));
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("note: detail \"%s\" lacks \"%s\"", det.msg, detail_part);
}

static void test_parse_minimal_forms(void **state)
{
    struct ota_note *n = NULL;
    const char *s = "a\n\nb\n\n" EM "k " SIGOK "\n";

    (void)state;
    /* The text may contain blank lines; the last one separates. */
    assert_int_equal(ota_note_parse(&n, s, strlen(s), NULL), 0);
    assert_string_equal(n->text, "a\n\nb\n");
    assert_int_equal(n->sigs[0].key_id, 0x01020304);
    ota_note_free(n);
    /* A text that is a single newline. */
    expect_parse("\n\n" EM "k " SIGOK "\n", 0, NULL);
    /* DEL, non-ASCII and the replacement character itself are fine. */
    expect_parse("x\x7f\xc3\xa9\xef\xbf\xbd\xf0\x9f\x98\x80\n\n" EM "k " SIGOK "\n", 0, NULL);
    /* Non-ASCII key names. */
    expect_parse("x\n\n" EM "\xc3\xa9t\xc3\xa9 " SIGOK "\n", 0, NULL);
}

static void test_parse_too_large(void **state)
{
    size_t len = OTA_NOTE_MAX_LEN + 1;
    char *s = malloc(len);
    struct ota_note *n = NULL;
    struct ota_detail det = {{0}};

    (void)state;
    assert_non_null(s);
    memset(s, 'a', len);
    assert_int_equal(ota_note_parse(&n, s, len, &det), OTA_ERR_TOO_LARGE);
    assert_null(n);
    assert_non_null(strstr(det.msg, "cap"));
    free(s);
}

static void test_parse_signature_count(void **state)
{
    struct ota_buf b;
    struct ota_note *n = NULL;
    struct ota_detail det = {{0}};

    (void)state;
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_append_str(&b, "text\n\n"), 0);
    for (int i = 0; i < OTA_NOTE_MAX_SIGS; i++)
        assert_int_equal(ota_buf_printf(&b, EM "k%d " SIGOK "\n", i), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    assert_int_equal(n->nsigs, OTA_NOTE_MAX_SIGS);
    assert_string_equal(n->sigs[99].name, "k99");
    ota_note_free(n);
    assert_int_equal(ota_buf_append_str(&b, EM "one.more " SIGOK "\n"), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, &det), OTA_ERR_TOO_LARGE);
    assert_non_null(strstr(det.msg, "101 signature lines"));
    ota_buf_free(&b);
}

static void test_parse_invalid_utf8(void **state)
{
    (void)state;
    expect_parse("a\xc0\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8");     /* overlong */
    expect_parse("a\xe0\x80\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8"); /* overlong */
    expect_parse("a\xed\xa0\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8"); /* surrogate */
    expect_parse("a\xf4\x90\x80\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT,
                 "UTF-8"); /* > U+10FFFF */
    expect_parse("a\xf5\x80\x80\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8");
    expect_parse("a\xff\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8");
    expect_parse("a\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8"); /* lone continuation */
    expect_parse("a\xe2\x80\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "UTF-8"); /* truncated */
    expect_parse("a\n\n" EM "k " SIGOK "\n\xe2", OTA_ERR_FORMAT, "UTF-8");     /* at the end */
}

static void test_parse_control_characters(void **state)
{
    (void)state;
    expect_parse("a\rb\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "line 1: control character 0x0d");
    expect_parse("a\n\tb\n\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "line 2: control character 0x09");
    expect_parse("a\n\n" EM "k " SIGOK "\r\n", OTA_ERR_FORMAT, "control character");
    {
        static const char s[] = "a\0b\n\n" EM "k " SIGOK "\n";
        struct ota_note *n = NULL;

        assert_int_equal(ota_note_parse(&n, s, sizeof(s) - 1, NULL), OTA_ERR_FORMAT);
    }
}

static void test_parse_final_newline(void **state)
{
    (void)state;
    expect_parse("a\n\n" EM "k " SIGOK, OTA_ERR_FORMAT, "end in a newline");
    expect_parse("", OTA_ERR_FORMAT, "end in a newline");
}

static void test_parse_no_blank_line(void **state)
{
    (void)state;
    expect_parse("a\n" EM "k " SIGOK "\n", OTA_ERR_FORMAT, "no blank line");
}

static void test_parse_no_signatures(void **state)
{
    (void)state;
    expect_parse("a\n\n", OTA_ERR_FORMAT, "no signature lines");
    expect_parse("a\n\n\n", OTA_ERR_FORMAT, "no signature lines");
}

static void test_parse_signature_prefix(void **state)
{
    (void)state;
    expect_parse("a\n\n- k " SIGOK "\n", OTA_ERR_FORMAT, "em dash");
    expect_parse("a\n\n\xe2\x80\x94k " SIGOK "\n", OTA_ERR_FORMAT, "em dash");  /* no space */
    expect_parse("a\n\n\xe2\x80\x93 k " SIGOK "\n", OTA_ERR_FORMAT, "em dash"); /* en dash */
    /* A text line after the signatures (the last blank line separates). */
    expect_parse("a\n\n" EM "k " SIGOK "\nmore\n", OTA_ERR_FORMAT, "line 4");
}

static void test_parse_no_space_after_name(void **state)
{
    (void)state;
    expect_parse("a\n\n" EM "k" SIGOK "\n", OTA_ERR_FORMAT, "no space");
}

static void test_parse_key_names(void **state)
{
    char name[OTA_NOTE_MAX_NAME + 2];
    char s[1024];

    (void)state;
    expect_parse("a\n\n" EM " " SIGOK "\n", OTA_ERR_FORMAT, "key name");
    expect_parse("a\n\n" EM "a+b " SIGOK "\n", OTA_ERR_FORMAT, "key name");
    expect_parse("a\n\n" EM "a\xc2\xa0"
                 "b " SIGOK "\n",
                 OTA_ERR_FORMAT, "key name"); /* NBSP */
    expect_parse("a\n\n" EM "a\xe3\x80\x80"
                 "b " SIGOK "\n",
                 OTA_ERR_FORMAT, "key name"); /* ideographic space */
    expect_parse("a\n\n" EM "a\xe2\x80\xa8"
                 "b " SIGOK "\n",
                 OTA_ERR_FORMAT, "key name"); /* line separator */
    /* 255 bytes fine, 256 over the cap. */
    memset(name, 'n', OTA_NOTE_MAX_NAME);
    name[OTA_NOTE_MAX_NAME] = '\0';
    snprintf(s, sizeof(s), "a\n\n" EM "%s " SIGOK "\n", name);
    expect_parse(s, 0, NULL);
    name[OTA_NOTE_MAX_NAME] = 'n';
    name[OTA_NOTE_MAX_NAME + 1] = '\0';
    snprintf(s, sizeof(s), "a\n\n" EM "%s " SIGOK "\n", name);
    expect_parse(s, OTA_ERR_TOO_LARGE, "key name of 256 bytes");
    assert_true(ota_note_name_valid("a.b/c-d_e~f", 11));
    assert_false(ota_note_name_valid("", 0));
    assert_false(ota_note_name_valid("a\tb", 3));
}

static void test_parse_signature_base64(void **state)
{
    (void)state;
    expect_parse("a\n\n" EM "k AQIDBAU\n", OTA_ERR_FORMAT, "base64");  /* no padding */
    expect_parse("a\n\n" EM "k AQIDBAV=\n", OTA_ERR_FORMAT, "base64"); /* stray bits */
    expect_parse("a\n\n" EM "k AQID BAU=\n", OTA_ERR_FORMAT, "base64");
    expect_parse("a\n\n" EM "k \n", OTA_ERR_FORMAT, "base64"); /* empty */
    expect_parse("a\n\n" EM "k AQIDBAU=\n", 0, NULL);          /* 5 bytes: the minimum */
}

static void test_parse_signature_length(void **state)
{
    struct ota_buf b;
    uint8_t raw[4 + OTA_NOTE_MAX_SIG + 3];
    char *enc = malloc(OTA_BASE64_LEN(sizeof(raw)) + 1);
    struct ota_note *n = NULL;
    struct ota_detail det = {{0}};

    (void)state;
    assert_non_null(enc);
    expect_parse("a\n\n" EM "k AQIDBA==\n", OTA_ERR_FORMAT, "at least one byte"); /* 4 bytes */
    memset(raw, 7, sizeof(raw));
    /* Exactly the cap. */
    ota_base64_encode(enc, raw, 4 + OTA_NOTE_MAX_SIG);
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_printf(&b, "a\n\n" EM "k %s\n", enc), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    assert_int_equal(n->sigs[0].sig_len, OTA_NOTE_MAX_SIG);
    ota_note_free(n);
    ota_buf_free(&b);
    /* Three bytes more. */
    ota_base64_encode(enc, raw, sizeof(raw));
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_printf(&b, "a\n\n" EM "k %s\n", enc), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, &det), OTA_ERR_TOO_LARGE);
    assert_non_null(strstr(det.msg, "cap"));
    ota_buf_free(&b);
    free(enc);
}

static void test_text_check(void **state)
{
    (void)state;
    assert_int_equal(ota_note_text_check("ok\n", 3, NULL), 0);
    assert_int_equal(ota_note_text_check("ok", 2, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_note_text_check("", 0, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_note_text_check("o\rk\n", 4, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_note_text_check("\xff\n", 2, NULL), OTA_ERR_FORMAT);
}

/* ---- verification semantics ---- */

struct fixture {
    struct ota_note_signer *s[3];
    struct ota_note_verifier v[3];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *names[] = {"log.example/a", "log.example/b", "log.example/c"};

    if (f == NULL)
        return -1;
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32];

        memset(seed, 0x21 * (i + 1), sizeof(seed));
        if (ota_note_signer_from_seed(&f->s[i], names[i], strlen(names[i]), 0x01, seed) != 0)
            return -1;
        ota_note_signer_verifier(&f->v[i], f->s[i]);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < 3; i++)
        ota_note_signer_free(f->s[i]);
    free(f);
    return 0;
}

/* text + blank line + the lines of the signers listed in `who` ("ab"). */
static struct ota_note *signed_note(struct fixture *f, const char *text, const char *who)
{
    struct ota_buf b;
    struct ota_note *n = NULL;

    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_append_str(&b, text), 0);
    assert_int_equal(ota_buf_append_str(&b, "\n"), 0);
    for (const char *w = who; *w; w++)
        assert_int_equal(ota_note_sign(&b, text, strlen(text), f->s[*w - 'a'], NULL), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    ota_buf_free(&b);
    return n;
}

static void test_verify_unknown_keys_ignored(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "abc");
    struct ota_note_check c[1];
    size_t nv = 0;

    /* Only b is trusted: a and c are unknown and ignored. */
    assert_int_equal(ota_note_verify(c, &nv, n, &f->v[1], 1, NULL), 0);
    assert_int_equal(nv, 1);
    assert_true(c[0].verified);
    ota_note_free(n);
}

static void test_verify_same_name_other_id_ignored(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "ab");
    struct ota_note_verifier other = f->v[0];
    struct ota_note_verifier vs[2];
    struct ota_note_check c[2];
    size_t nv = 0;

    /* A key with a's name but another ID: a's signature is not for it. */
    other.key_id ^= 1;
    vs[0] = other;
    vs[1] = f->v[1];
    assert_int_equal(ota_note_verify(c, &nv, n, vs, 2, NULL), 0);
    assert_false(c[0].verified);
    assert_true(c[1].verified);
    ota_note_free(n);
}

static void test_verify_bad_known_signature_fatal(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "ab");
    struct ota_note_check c[2] = {{true, 5}, {true, 5}};
    struct ota_detail det = {{0}};
    size_t nv = 7;

    /* a's signature is wrong; b's is fine: the note is still refused. */
    ((uint8_t *)n->sigs[0].sig)[10] ^= 1;
    assert_int_equal(ota_note_verify(c, &nv, n, f->v, 2, &det), OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, "log.example/a"));
    assert_int_equal(nv, 0);
    assert_false(c[0].verified);
    assert_false(c[1].verified);
    /* A known Ed25519 key with a signature of the wrong length. */
    ((uint8_t *)n->sigs[0].sig)[10] ^= 1;
    n->sigs[0].sig_len = 63;
    assert_int_equal(ota_note_verify(c, &nv, n, f->v, 2, NULL), OTA_ERR_BAD_SIGNATURE);
    ota_note_free(n);
}

static void test_verify_no_known_key(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "a");
    struct ota_note_check c[2];
    struct ota_detail det = {{0}};
    size_t nv = 0;

    assert_int_equal(ota_note_verify(c, &nv, n, &f->v[1], 2, &det), OTA_ERR_UNVERIFIED);
    assert_int_equal(ota_note_verify(NULL, &nv, n, NULL, 0, NULL), OTA_ERR_UNVERIFIED);
    ota_note_free(n);
}

static void test_verify_duplicates(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "aba");
    struct ota_note_check c[2];
    struct ota_detail det = {{0}};
    size_t nv = 0;

    /* The same line twice counts once. */
    assert_int_equal(n->nsigs, 3);
    assert_int_equal(ota_note_verify(c, &nv, n, f->v, 2, NULL), 0);
    assert_int_equal(nv, 2);
    /* Two different signatures by one key are refused. */
    ((uint8_t *)n->sigs[2].sig)[0] ^= 1;
    assert_int_equal(ota_note_verify(c, &nv, n, f->v, 2, &det), OTA_ERR_DUP_SIGNATURE);
    assert_non_null(strstr(det.msg, "twice"));
    ota_note_free(n);
}

static void test_verify_ambiguous_verifiers(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "hello\n", "a");
    struct ota_note_verifier vs[2] = {f->v[0], f->v[0]};
    struct ota_note_check c[2];
    size_t nv = 0;

    vs[1].pub[0] ^= 1; /* same name and ID, another key */
    assert_int_equal(ota_note_verify(c, &nv, n, vs, 2, NULL), OTA_ERR_INVALID_ARG);
    vs[1] = f->v[0];
    vs[1].type = 0x02;
    vs[1].key_id ^= 1;
    assert_int_equal(ota_note_verify(c, &nv, n, vs, 2, NULL), OTA_ERR_INVALID_ARG);
    ota_note_free(n);
}

static void test_format_round_trip(void **state)
{
    struct fixture *f = *state;
    struct ota_note *n = signed_note(f, "multi\n\nline\n", "cab");
    struct ota_note *m = NULL;
    struct ota_buf b;

    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_note_format(&b, n), 0);
    assert_int_equal(ota_note_parse(&m, b.data, b.len, NULL), 0);
    assert_int_equal(m->nsigs, 3);
    assert_string_equal(m->text, "multi\n\nline\n");
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(m->sigs[i].name, n->sigs[i].name);
        assert_int_equal(m->sigs[i].key_id, n->sigs[i].key_id);
        assert_memory_equal(m->sigs[i].sig, n->sigs[i].sig, 64);
    }
    ota_buf_free(&b);
    ota_note_free(m);
    ota_note_free(n);
}

/* Parse and verify the two-signer vector: 0 with both keys verified, or
 * an error (a signature that did not verify counts as bad_signature). */
static int fa_open(const uint8_t *data, size_t len, const struct ota_note_verifier *v)
{
    struct ota_note_check c[2];
    struct ota_note *n = NULL;
    size_t nv = 0;
    int rc = ota_note_parse(&n, data, len, NULL);

    if (rc == 0)
        rc = ota_note_verify(c, &nv, n, v, 2, NULL);
    if (rc == 0 && (nv != 2 || !c[0].verified || !c[1].verified))
        rc = OTA_ERR_BAD_SIGNATURE;
    ota_note_free(n);
    return rc;
}

/* STYLE rule 9: each allocation of parse + verify fails in turn. */
static void test_alloc_faults(void **state)
{
    struct ota_note_verifier v[2];
    size_t len = 0;
    uint8_t *data = read_vector(V2_FILE, &len);
    int rc;

    (void)state;
    vkey(&v[0], PN_VKEY);
    vkey(&v[1], ER_VKEY);
    assert_int_equal(fa_open(data, len, v), 0);
    FA_LOOP(rc, fa_open(data, len, v));
    assert_true(fa_failed_runs() >= 2);
    free(data);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_readme_names_the_keys),
        cmocka_unit_test(test_vector_c2sp_example_verifies),
        cmocka_unit_test(test_vector_two_signers_verify),
        cmocka_unit_test(test_vector_c2sp_example_every_flip_fails),
        cmocka_unit_test(test_vector_two_signers_every_flip_fails),
        cmocka_unit_test(test_vector_sign_reproduces_line),
        cmocka_unit_test(test_key_id_computation),
        cmocka_unit_test(test_vkey_refusals),
        cmocka_unit_test(test_parse_minimal_forms),
        cmocka_unit_test(test_parse_too_large),
        cmocka_unit_test(test_parse_signature_count),
        cmocka_unit_test(test_parse_invalid_utf8),
        cmocka_unit_test(test_parse_control_characters),
        cmocka_unit_test(test_parse_final_newline),
        cmocka_unit_test(test_parse_no_blank_line),
        cmocka_unit_test(test_parse_no_signatures),
        cmocka_unit_test(test_parse_signature_prefix),
        cmocka_unit_test(test_parse_no_space_after_name),
        cmocka_unit_test(test_parse_key_names),
        cmocka_unit_test(test_parse_signature_base64),
        cmocka_unit_test(test_parse_signature_length),
        cmocka_unit_test(test_text_check),
        cmocka_unit_test_setup_teardown(test_verify_unknown_keys_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_same_name_other_id_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_bad_known_signature_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_no_known_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_ambiguous_verifiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_round_trip, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
