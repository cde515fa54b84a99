/* Unit tests for checkpoint.c: the tlog-checkpoint spec example, format ->
 * parse round trips with and without extension lines, the decimal parser,
 * and one refusal per parse rule with its exact error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/checkpoint.h"

#define ROOT_B64 "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
#define SPEC     "example.com/behind-the-sofa\n20852163\n" ROOT_B64 "\n"

static void expect(const char *text, int want, const char *detail_part)
{
    struct ota_checkpoint cp;
    struct ota_detail det = {{0}};
    int rc;

    memset(&cp, 0x5a, sizeof(cp));
    rc = ota_checkpoint_parse(&cp, text, strlen(text), &det);
    if (rc != want)
        fail_msg("checkpoint %s: got %s (%s), want %s", text, ota_errname(rc), det.msg,
                 ota_errname(want));
    if (want != 0) {
        assert_int_equal(cp.size, 0);
        assert_int_equal(cp.origin_len, 0);
        assert_int_equal(cp.root[0], 0);
    }
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("checkpoint: detail \"%s\" lacks \"%s\"", det.msg, detail_part);
}

static void test_spec_example(void **state)
{
    struct ota_checkpoint cp;
    uint8_t root[32];
    size_t n = 0;
    struct ota_buf b;

    (void)state;
    assert_int_equal(ota_checkpoint_parse(&cp, SPEC, strlen(SPEC), NULL), 0);
    assert_string_equal(cp.origin, "example.com/behind-the-sofa");
    assert_int_equal(cp.origin_len, 27);
    assert_int_equal(cp.size, 20852163);
    assert_int_equal(ota_base64_decode(root, 32, &n, ROOT_B64, 44), 0);
    assert_memory_equal(cp.root, root, 32);
    assert_int_equal(cp.ext_len, 0);
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_checkpoint_format(&b, &cp), 0);
    assert_string_equal((char *)b.data, SPEC);
    ota_buf_free(&b);
}

static void test_extensions_and_bounds(void **state)
{
    struct ota_checkpoint cp;
    struct ota_buf b;
    const char *ext = SPEC "ext one\n\xe2\x9c\x93 two\n";
    const char *max = "o\n9223372036854775807\n" ROOT_B64 "\n";

    (void)state;
    assert_int_equal(ota_checkpoint_parse(&cp, ext, strlen(ext), NULL), 0);
    assert_string_equal(cp.ext, "ext one\n\xe2\x9c\x93 two\n");
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_checkpoint_format(&b, &cp), 0);
    assert_string_equal((char *)b.data, ext);
    ota_buf_free(&b);
    /* Size 0, and the largest size. */
    expect("o\n0\n" ROOT_B64 "\n", 0, NULL);
    assert_int_equal(ota_checkpoint_parse(&cp, max, strlen(max), NULL), 0);
    assert_int_equal(cp.size, UINT64_C(9223372036854775807));
    /* Origins are not required to be URLs; spaces and '+' are allowed. */
    expect("my log + more\n1\n" ROOT_B64 "\n", 0, NULL);
}

static void test_refuse_too_large(void **state)
{
    char *s = malloc(OTA_CHECKPOINT_MAX_LEN + 2);

    (void)state;
    assert_non_null(s);
    memset(s, 'a', OTA_CHECKPOINT_MAX_LEN + 1);
    s[OTA_CHECKPOINT_MAX_LEN] = '\n';
    s[OTA_CHECKPOINT_MAX_LEN + 1] = '\0';
    expect(s, OTA_ERR_TOO_LARGE, "cap");
    free(s);
}

static void test_refuse_bad_text(void **state)
{
    (void)state;
    expect("o\n1\n" ROOT_B64, OTA_ERR_FORMAT, "newline");        /* no final newline */
    expect("o\r\n1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "control"); /* CR */
    expect("o\xff\n1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "UTF-8");
}

static void test_refuse_too_few_lines(void **state)
{
    (void)state;
    expect("o\n1\n", OTA_ERR_FORMAT, "fewer than three");
    expect("o\n", OTA_ERR_FORMAT, "fewer than three");
}

static void test_refuse_empty_lines(void **state)
{
    (void)state;
    expect("\n1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "line 1 is empty");
    expect("o\n\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "line 2 is empty");
    expect("o\n1\n\n", OTA_ERR_FORMAT, "line 3 is empty");
    expect("o\n1\n" ROOT_B64 "\n\n", OTA_ERR_FORMAT, "line 4");
    expect("o\n1\n" ROOT_B64 "\next\n\nmore\n", OTA_ERR_FORMAT, "line 5");
}

static void test_refuse_long_origin(void **state)
{
    char s[600];
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 2];

    (void)state;
    memset(origin, 'o', OTA_CHECKPOINT_MAX_ORIGIN);
    origin[OTA_CHECKPOINT_MAX_ORIGIN] = '\0';
    snprintf(s, sizeof(s), "%s\n1\n" ROOT_B64 "\n", origin);
    expect(s, 0, NULL);
    origin[OTA_CHECKPOINT_MAX_ORIGIN] = 'o';
    origin[OTA_CHECKPOINT_MAX_ORIGIN + 1] = '\0';
    snprintf(s, sizeof(s), "%s\n1\n" ROOT_B64 "\n", origin);
    expect(s, OTA_ERR_TOO_LARGE, "origin of 256 bytes");
}

static void test_refuse_bad_size(void **state)
{
    (void)state;
    expect("o\n01\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "leading zeros");
    expect("o\n00\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n+1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n-1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n1a\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n 1\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n0x10\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n9223372036854775808\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "2^63");
    expect("o\n18446744073709551616\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
    expect("o\n123456789012345678901\n" ROOT_B64 "\n", OTA_ERR_FORMAT, "tree size");
}

static void test_refuse_bad_root(void **state)
{
    (void)state;
    /* 31 and 33 bytes, non-canonical, URL-safe, trailing space. */
    expect("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n", OTA_ERR_FORMAT, "32 bytes");
    expect("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n", OTA_ERR_FORMAT, "32 bytes");
    expect("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", OTA_ERR_FORMAT, "32 bytes");
    expect("o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", OTA_ERR_FORMAT, "32 bytes");
    expect("o\n1\n" ROOT_B64 " \n", OTA_ERR_FORMAT, "32 bytes");
    expect("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", OTA_ERR_FORMAT, "32 bytes");
}

static void test_refuse_long_extensions(void **state)
{
    size_t n = strlen(SPEC) + OTA_CHECKPOINT_MAX_EXT + 1;
    char *s = malloc(n + 1);

    (void)state;
    assert_non_null(s);
    memcpy(s, SPEC, strlen(SPEC));
    memset(s + strlen(SPEC), 'x', OTA_CHECKPOINT_MAX_EXT);
    s[n - 1] = '\n';
    s[n] = '\0';
    expect(s, OTA_ERR_TOO_LARGE, "extension");
    /* One byte less fits. */
    s[n - 2] = '\n';
    s[n - 1] = '\0';
    expect(s, 0, NULL);
    free(s);
}

static void test_format_refusals(void **state)
{
    struct ota_checkpoint cp;
    struct ota_buf b;

    (void)state;
    assert_int_equal(ota_checkpoint_parse(&cp, SPEC, strlen(SPEC), NULL), 0);
    ota_buf_init(&b, 8192);
    assert_int_equal(ota_buf_append_str(&b, "keep"), 0);
    cp.origin[3] = '\n';
    assert_int_equal(ota_checkpoint_format(&b, &cp), OTA_ERR_INVALID_ARG);
    cp.origin[3] = 'm';
    cp.origin_len = 0;
    assert_int_equal(ota_checkpoint_format(&b, &cp), OTA_ERR_INVALID_ARG);
    cp.origin_len = 27;
    cp.size = UINT64_C(1) << 63;
    assert_int_equal(ota_checkpoint_format(&b, &cp), OTA_ERR_INVALID_ARG);
    cp.size = 1;
    memcpy(cp.ext, "no newline", 10);
    cp.ext_len = 10;
    assert_int_equal(ota_checkpoint_format(&b, &cp), OTA_ERR_INVALID_ARG);
    memcpy(cp.ext, "a\n\nb\n", 5);
    cp.ext_len = 5;
    assert_int_equal(ota_checkpoint_format(&b, &cp), OTA_ERR_INVALID_ARG);
    assert_string_equal((char *)b.data, "keep");
    cp.ext_len = 2;
    assert_int_equal(ota_checkpoint_format(&b, &cp), 0);
    ota_buf_free(&b);
}

static void test_parse_u64(void **state)
{
    uint64_t v = 9;

    (void)state;
    assert_int_equal(ota_checkpoint_parse_u64(&v, "0", 1, 10), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "10", 2, 10), 0);
    assert_int_equal(v, 10);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "11", 2, 10), OTA_ERR_FORMAT);
    assert_int_equal(v, 0);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "18446744073709551615", 20, UINT64_MAX), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "18446744073709551616", 20, UINT64_MAX),
                     OTA_ERR_FORMAT);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "", 0, 10), OTA_ERR_FORMAT);
    assert_int_equal(ota_checkpoint_parse_u64(&v, "007", 3, 10), OTA_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),         cmocka_unit_test(test_extensions_and_bounds),
        cmocka_unit_test(test_refuse_too_large),     cmocka_unit_test(test_refuse_bad_text),
        cmocka_unit_test(test_refuse_too_few_lines), cmocka_unit_test(test_refuse_empty_lines),
        cmocka_unit_test(test_refuse_long_origin),   cmocka_unit_test(test_refuse_bad_size),
        cmocka_unit_test(test_refuse_bad_root),      cmocka_unit_test(test_refuse_long_extensions),
        cmocka_unit_test(test_format_refusals),      cmocka_unit_test(test_parse_u64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
