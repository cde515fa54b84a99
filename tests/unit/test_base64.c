/* Unit tests for base64.c: the RFC 4648 §10 vectors, round trips of every
 * length, and one refusal per canonical-form rule (with the output wiped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "otachain/base64.h"

static const char *const rfc[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        char enc[32];
        uint8_t dec[16];
        size_t n = 99;
        size_t inlen = strlen(rfc[i][0]);

        assert_int_equal(ota_base64_encode(enc, (const uint8_t *)rfc[i][0], inlen),
                         strlen(rfc[i][1]));
        assert_string_equal(enc, rfc[i][1]);
        assert_int_equal(OTA_BASE64_LEN(inlen), strlen(rfc[i][1]));
        assert_int_equal(ota_base64_decode(dec, sizeof(dec), &n, rfc[i][1], strlen(rfc[i][1])), 0);
        assert_int_equal(n, inlen);
        assert_memory_equal(dec, rfc[i][0], inlen);
    }
}

static void test_round_trip_all_bytes(void **state)
{
    uint8_t in[300];
    char enc[OTA_BASE64_LEN(300) + 1];
    uint8_t dec[300];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t got = 0;
        size_t elen = ota_base64_encode(enc, in, n);

        assert_int_equal(elen, OTA_BASE64_LEN(n));
        assert_int_equal(ota_base64_decode(dec, n, &got, enc, elen), 0);
        assert_int_equal(got, n);
        assert_memory_equal(dec, in, n);
    }
}

/* Each refused with OTA_ERR_FORMAT; out wiped and *len 0. */
static void expect_format(const char *text)
{
    uint8_t out[16];
    size_t n = 77;

    memset(out, 0xaa, sizeof(out));
    assert_int_equal(ota_base64_decode(out, sizeof(out), &n, text, strlen(text)), OTA_ERR_FORMAT);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0);
}

static void test_refuse_length_not_multiple_of_4(void **state)
{
    (void)state;
    expect_format("Zg=");
    expect_format("Zg");
    expect_format("Zm9vY");
}

static void test_refuse_missing_padding(void **state)
{
    (void)state;
    expect_format("Zm9vYg"); /* length 6 */
}

static void test_refuse_bad_characters(void **state)
{
    (void)state;
    expect_format("Zm9\n"); /* line break */
    expect_format("Zm 9");  /* space */
    expect_format("Zm9-");  /* URL-safe alphabet */
    expect_format("Zm9_");  /* URL-safe alphabet */
    expect_format("Z\x80"
                  "9v"); /* high byte */
}

static void test_refuse_misplaced_padding(void **state)
{
    (void)state;
    expect_format("Zg==Zm9v"); /* padding inside */
    expect_format("Z=9v");
    expect_format("====");
    expect_format("A===");
}

static void test_refuse_nonzero_unused_bits(void **state)
{
    (void)state;
    expect_format("Zh=="); /* "f" with a stray low bit */
    expect_format("Zm9="); /* "fo" with a stray low bit */
}

static void test_refuse_too_large(void **state)
{
    uint8_t out[2];
    size_t n = 5;

    (void)state;
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(ota_base64_decode(out, sizeof(out), &n, "Zm9v", 4), OTA_ERR_TOO_LARGE);
    assert_int_equal(n, 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
    assert_int_equal(ota_base64_decode(out, sizeof(out), &n, "Zm8=", 4), 0);
    assert_int_equal(n, 2);
}

static void test_bad_args(void **state)
{
    uint8_t out[4];
    size_t n;

    (void)state;
    assert_int_equal(ota_base64_decode(out, sizeof(out), NULL, "Zg==", 4), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_base64_decode(out, sizeof(out), &n, NULL, 4), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_base64_decode(NULL, 0, &n, "", 0), 0);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_round_trip_all_bytes),
        cmocka_unit_test(test_refuse_length_not_multiple_of_4),
        cmocka_unit_test(test_refuse_missing_padding),
        cmocka_unit_test(test_refuse_bad_characters),
        cmocka_unit_test(test_refuse_misplaced_padding),
        cmocka_unit_test(test_refuse_nonzero_unused_bits),
        cmocka_unit_test(test_refuse_too_large),
        cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
