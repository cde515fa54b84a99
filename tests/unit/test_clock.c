/* Unit tests for clock.c: the system clock, an injected one, and "none". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <time.h>

#include "otachain/clock.h"

static int64_t fixed(void *ctx)
{
    return *(const int64_t *)ctx;
}

static void test_system_clock(void **state)
{
    int64_t before = (int64_t)time(NULL);
    int64_t now = ota_clock_now(NULL);
    struct ota_clock empty = {0};

    (void)state;
    assert_true(now >= before && now <= before + 5);
    now = ota_clock_now(&empty);
    assert_true(now >= before && now <= before + 5);
}

static void test_injected(void **state)
{
    int64_t t = 0;
    struct ota_clock c = {fixed, &t};

    (void)state;
    /* 0 is a reading (a board without RTC), not "no reading". */
    assert_int_equal(ota_clock_now(&c), 0);
    assert_true(ota_clock_now(&c) != OTA_TIME_NONE);
    t = OTA_TIME_NONE;
    assert_true(ota_clock_now(&c) == OTA_TIME_NONE);
    t = -5;
    assert_int_equal(ota_clock_now(&c), -5);
}

/* The configured build time (scripts/build-time, passed by meson in the
 * environment) is what the library reports. */
static void test_build_time(void **state)
{
    const char *want = getenv("OTA_BUILD_TIME");
    char *end = NULL;

    (void)state;
    assert_non_null(want);
    assert_true(ota_build_time() > 0);
    assert_int_equal(ota_build_time(), strtoll(want, &end, 10));
    assert_true(end != want && *end == '\0');
}

/* Known answers of the one time formatter. */
static void test_time_text(void **state)
{
    char out[OTA_TIME_TEXT_LEN];

    (void)state;
    ota_time_text(out, 0);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    ota_time_text(out, INT64_C(1796605451));
    assert_string_equal(out, "2026-12-07T01:04:11Z");
    ota_time_text(out, OTA_TIME_NONE);
    assert_string_equal(out, "-");
    /* Beyond what gmtime can represent: the seconds themselves. */
    ota_time_text(out, INT64_MAX);
    assert_string_equal(out, "9223372036854775807");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_clock),
        cmocka_unit_test(test_injected),
        cmocka_unit_test(test_build_time),
        cmocka_unit_test(test_time_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
