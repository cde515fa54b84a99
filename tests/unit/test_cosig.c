/* Unit tests for cosig.c: the signed message of the tlog-cosignature
 * spec's example, the time in the spec's example cosignature, sign ->
 * verify round trips (directly and through ota_note_verify), and tampering
 * (every byte of the signature, the body, the time, the length) refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cosig.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"

/* The checkpoint and cosignature of the tlog-cosignature spec. */
#define SPEC_BODY                                                                                  \
    "example.com/behind-the-sofa\n"                                                                \
    "20852163\n"                                                                                   \
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
#define SPEC_NOTE                                                                                  \
    SPEC_BODY                                                                                      \
    "\n"                                                                                           \
    "\xe2\x80\x94 example.com/behind-the-sofa "                                                    \
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+"                 \
    "zyWE+xeMcTOAYQ8=\n"                                                                           \
    "\xe2\x80\x94 witness.example.com/w1 "                                                         \
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0"         \
    "xUe+mbIUBkBIfZ+qnA==\n"
#define SPEC_TIME 1679315147u

struct fixture {
    struct ota_note_signer *w;
    struct ota_note_verifier v;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uint8_t seed[32];

    if (f == NULL)
        return -1;
    memset(seed, 0x77, sizeof(seed));
    if (ota_note_signer_from_seed(&f->w, "witness.example/w1", 18, OTA_NOTE_TYPE_COSIG_V1, seed) !=
        0)
        return -1;
    ota_note_signer_verifier(&f->v, f->w);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    ota_note_signer_free(f->w);
    free(f);
    return 0;
}

/* Cosigns SPEC_BODY at t; returns the raw 72-byte signature. */
static void cosign_raw(uint8_t sig[OTA_COSIG_LEN], struct fixture *f, uint64_t t)
{
    struct ota_buf line;
    struct ota_note *n = NULL;
    struct ota_buf note;

    ota_buf_init(&line, 1024);
    assert_int_equal(ota_note_cosign(&line, SPEC_BODY, strlen(SPEC_BODY), t, f->w, NULL), 0);
    ota_buf_init(&note, 4096);
    assert_int_equal(ota_buf_append_str(&note, SPEC_BODY "\n"), 0);
    assert_int_equal(ota_buf_append(&note, line.data, line.len), 0);
    assert_int_equal(ota_note_parse(&n, note.data, note.len, NULL), 0);
    assert_int_equal(n->sigs[0].sig_len, OTA_COSIG_LEN);
    assert_int_equal(n->sigs[0].key_id, f->v.key_id);
    memcpy(sig, n->sigs[0].sig, OTA_COSIG_LEN);
    ota_note_free(n);
    ota_buf_free(&note);
    ota_buf_free(&line);
}

static void test_spec_message(void **state)
{
    struct ota_buf b;

    (void)state;
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_cosig_message(&b, SPEC_BODY, strlen(SPEC_BODY), SPEC_TIME), 0);
    assert_string_equal((char *)b.data, "cosignature/v1\n"
                                        "time 1679315147\n"
                                        "example.com/behind-the-sofa\n"
                                        "20852163\n"
                                        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
    ota_buf_free(&b);
    /* Time 0 has no leading zeros either; 2^63 is refused. */
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_cosig_message(&b, "x\n", 2, 0), 0);
    assert_string_equal((char *)b.data, "cosignature/v1\ntime 0\nx\n");
    assert_int_equal(ota_cosig_message(&b, "x\n", 2, OTA_COSIG_MAX_TIME + 1), OTA_ERR_INVALID_ARG);
    ota_buf_free(&b);
}

static void test_spec_example_time(void **state)
{
    struct ota_note *n = NULL;

    (void)state;
    assert_int_equal(ota_note_parse(&n, SPEC_NOTE, strlen(SPEC_NOTE), NULL), 0);
    assert_int_equal(n->nsigs, 2);
    assert_string_equal(n->sigs[1].name, "witness.example.com/w1");
    assert_int_equal(n->sigs[1].sig_len, OTA_COSIG_LEN);
    /* The example's timestamp is the time of its signed-message example. */
    assert_int_equal(ota_cosig_get_time(n->sigs[1].sig), SPEC_TIME);
    ota_note_free(n);
}

static void test_time_encoding(void **state)
{
    uint8_t b[8];

    (void)state;
    ota_cosig_put_time(b, UINT64_C(0x0102030405060708));
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_int_equal(ota_cosig_get_time(b), UINT64_C(0x0102030405060708));
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t sig[OTA_COSIG_LEN];
    uint64_t t = 99;
    const uint64_t times[] = {0, 1, SPEC_TIME, OTA_COSIG_MAX_TIME};

    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        cosign_raw(sig, f, times[i]);
        assert_int_equal(ota_cosig_get_time(sig), times[i]);
        assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 72), 0);
        assert_int_equal(t, times[i]);
    }
}

static void test_round_trip_through_note(void **state)
{
    struct fixture *f = *state;
    struct ota_buf b;
    struct ota_note *n = NULL;
    struct ota_note_check c;
    struct ota_note_verifier as_ed25519;
    size_t nv = 0;

    ota_buf_init(&b, 4096);
    assert_int_equal(ota_buf_append_str(&b, SPEC_BODY "\n"), 0);
    assert_int_equal(ota_note_cosign(&b, SPEC_BODY, strlen(SPEC_BODY), SPEC_TIME, f->w, NULL), 0);
    assert_int_equal(ota_note_parse(&n, b.data, b.len, NULL), 0);
    assert_int_equal(ota_note_verify(&c, &nv, n, &f->v, 1, NULL), 0);
    assert_true(c.verified);
    assert_int_equal(c.timestamp, SPEC_TIME);
    /* The same name and key as an Ed25519 (0x01) verifier: another key
     * ID, so the cosignature is not its signature. */
    assert_int_equal(ota_note_verifier_make(&as_ed25519, f->v.name, f->v.name_len, 0x01, f->v.pub),
                     0);
    assert_int_not_equal(as_ed25519.key_id, f->v.key_id);
    assert_int_equal(ota_note_verify(&c, &nv, n, &as_ed25519, 1, NULL), OTA_ERR_UNVERIFIED);
    ota_note_free(n);
    ota_buf_free(&b);
}

static void test_tamper_every_signature_byte(void **state)
{
    struct fixture *f = *state;
    uint8_t sig[OTA_COSIG_LEN];
    uint64_t t = 5;

    cosign_raw(sig, f, SPEC_TIME);
    for (size_t i = 0; i < OTA_COSIG_LEN; i++) {
        for (unsigned m = 1; m < 256; m <<= 1) {
            sig[i] ^= (uint8_t)m;
            assert_int_equal(
                ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, OTA_COSIG_LEN),
                OTA_ERR_BAD_SIGNATURE);
            assert_int_equal(t, 0);
            sig[i] ^= (uint8_t)m;
        }
    }
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 72), 0);
}

static void test_tamper_body_and_key(void **state)
{
    struct fixture *f = *state;
    uint8_t sig[OTA_COSIG_LEN];
    char body[] = SPEC_BODY;
    uint8_t pub[32];
    uint64_t t = 0;

    cosign_raw(sig, f, SPEC_TIME);
    for (size_t i = 0; i < strlen(body); i++) {
        body[i] ^= 1;
        assert_int_equal(ota_cosig_verify(&t, body, strlen(body), f->v.pub, sig, 72),
                         OTA_ERR_BAD_SIGNATURE);
        body[i] ^= 1;
    }
    /* A body with an extra line, or one line short. */
    assert_int_equal(
        ota_cosig_verify(&t, SPEC_BODY "ext\n", strlen(SPEC_BODY) + 4, f->v.pub, sig, 72),
        OTA_ERR_BAD_SIGNATURE);
    memcpy(pub, f->v.pub, 32);
    pub[31] ^= 1;
    assert_int_not_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), pub, sig, 72), 0);
}

static void test_tamper_length_and_time(void **state)
{
    struct fixture *f = *state;
    uint8_t sig[OTA_COSIG_LEN + 1];
    uint64_t t = 3;

    cosign_raw(sig, f, SPEC_TIME);
    sig[OTA_COSIG_LEN] = 0;
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 71),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 73),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 64),
                     OTA_ERR_BAD_SIGNATURE);
    /* A later time on the same signature. */
    ota_cosig_put_time(sig, SPEC_TIME + 1);
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 72),
                     OTA_ERR_BAD_SIGNATURE);
    /* A time above 2^63 - 1 is refused before any signature check. */
    ota_cosig_put_time(sig, OTA_COSIG_MAX_TIME + 1);
    assert_int_equal(ota_cosig_verify(&t, SPEC_BODY, strlen(SPEC_BODY), f->v.pub, sig, 72),
                     OTA_ERR_BAD_SIGNATURE);
    assert_int_equal(t, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_message),
        cmocka_unit_test(test_spec_example_time),
        cmocka_unit_test(test_time_encoding),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_through_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_every_signature_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_body_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_length_and_time, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
