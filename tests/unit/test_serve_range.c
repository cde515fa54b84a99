/* Unit tests for serve_range.c: the Range forms of RFC 9110 §14.1.2,
 * clamping, unsatisfiable ranges (416), and every header that is ignored
 * (the whole file is sent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "otachain/serve_range.h"

static enum ota_range_verdict parse(const char *h, uint64_t len, struct ota_range *r, size_t *n)
{
    return ota_serve_range_parse(r, n, h, len);
}

static void test_forms(void **state)
{
    struct ota_range r[OTA_RANGE_MAX];
    size_t n;

    (void)state;
    assert_int_equal(parse("bytes=0-499", 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 499);
    assert_int_equal(parse("bytes=500-", 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(r[0].first, 500);
    assert_int_equal(r[0].last, 999);
    assert_int_equal(parse("bytes=-200", 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(r[0].first, 800);
    assert_int_equal(r[0].last, 999);
    /* Clamped: beyond the end, a suffix longer than the file. */
    assert_int_equal(parse("bytes=900-5000", 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(r[0].last, 999);
    assert_int_equal(parse("bytes=-5000", 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(r[0].first, 0);
    /* Several, in request order, with optional whitespace. */
    assert_int_equal(parse("bytes=0-9, 20-29 ,\t-5", 100, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(n, 3);
    assert_int_equal(r[1].first, 20);
    assert_int_equal(r[2].first, 95);
    /* Unsatisfiable ones are dropped while others remain. */
    assert_int_equal(parse("bytes=5000-6000,0-0", 100, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].last, 0);
}

static void test_unsatisfiable(void **state)
{
    struct ota_range r[OTA_RANGE_MAX];
    size_t n = 7;

    (void)state;
    assert_int_equal(parse("bytes=1000-", 1000, r, &n), OTA_RANGE_UNSATISFIABLE);
    assert_int_equal(n, 0);
    assert_int_equal(parse("bytes=-0", 1000, r, &n), OTA_RANGE_UNSATISFIABLE);
    assert_int_equal(parse("bytes=0-0", 0, r, &n), OTA_RANGE_UNSATISFIABLE);
    assert_int_equal(parse("bytes=-5", 0, r, &n), OTA_RANGE_UNSATISFIABLE);
}

static void test_ignored(void **state)
{
    static const char *const ignored[] = {
        "",
        "bytes=",
        "bytes=5-1",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=1-2,",
        "bytes=,1-2",
        "bytes=--5",
        "bytes= 1 - 2",
        "items=0-5",
        "Bytes=0-5",
        "bytes=12345678901234567890-",
        "bytes=0-5;x",
    };
    struct ota_range r[OTA_RANGE_MAX];
    char many[1024];
    size_t n = 7;
    size_t o;

    (void)state;
    assert_int_equal(ota_serve_range_parse(r, &n, NULL, 100), OTA_RANGE_FULL);
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        n = 7;
        if (parse(ignored[i], 100, r, &n) != OTA_RANGE_FULL || n != 0)
            fail_msg("'%s' not ignored", ignored[i]);
    }
    /* More than OTA_RANGE_MAX ranges: ignored, like nginx's max_ranges. */
    o = (size_t)snprintf(many, sizeof(many), "bytes=0-0");
    for (int i = 1; i <= OTA_RANGE_MAX; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, ",%d-%d", i, i);
    assert_int_equal(parse(many, 1000, r, &n), OTA_RANGE_FULL);
    /* Exactly OTA_RANGE_MAX is fine. */
    *strrchr(many, ',') = '\0';
    assert_int_equal(parse(many, 1000, r, &n), OTA_RANGE_PARTIAL);
    assert_int_equal(n, OTA_RANGE_MAX);
    /* Amplification: the whole file many times over. */
    assert_int_equal(parse("bytes=0-,0-,0-,0-", 100000, r, &n), OTA_RANGE_FULL);
    /* An overlong header. */
    static char big[OTA_RANGE_HEADER_MAX + 16];
    memset(big, ' ', sizeof(big) - 1);
    memcpy(big, "bytes=0-1", 9);
    assert_int_equal(parse(big, 100, r, &n), OTA_RANGE_FULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
