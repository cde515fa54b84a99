/* Unit tests for test_hooks.c: what a test build reads from the
 * environment, and that a build without test hooks reads nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "otachain/test_hooks.h"

static void clear_env(void)
{
    unsetenv("OTACHAIN_TEST_NOW");
    unsetenv("OTACHAIN_CRASH_AT");
    unsetenv("OTACHAIN_FS_TRACE");
    unsetenv("OTACHAIN_TEST_HOOKS");
    unsetenv("OTACHAIN_POWER_CUT");
    unsetenv("OTACHAIN_SKIP_FSYNC");
}

static void test_nothing_set(void **state)
{
    struct ota_test_hooks h;
    struct ota_detail det = {{0}};
    int64_t before = (int64_t)time(NULL);

    (void)state;
    clear_env();
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_null(ota_test_hooks_fs(&h));
    assert_false(h.test_verbs);
    assert_true(ota_clock_now(&h.clock) >= before);
}

static void test_fixed_and_none(void **state)
{
    struct ota_test_hooks h;
    struct ota_detail det = {{0}};

    (void)state;
    clear_env();
    setenv("OTACHAIN_TEST_NOW", "0", 1);
    setenv("OTACHAIN_CRASH_AT", "3", 1);
    setenv("OTACHAIN_TEST_HOOKS", "1", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    if (!ota_test_hooks_built()) {
        /* Production: every variable ignored. */
        assert_true(ota_clock_now(&h.clock) > 1000000000);
        assert_null(ota_test_hooks_fs(&h));
        assert_false(h.test_verbs);
        clear_env();
        return;
    }
    assert_int_equal(ota_clock_now(&h.clock), 0);
    assert_non_null(ota_test_hooks_fs(&h));
    assert_int_equal(h.fault.crash_at, 3);
    assert_true(h.test_verbs);

    setenv("OTACHAIN_TEST_NOW", "none", 1);
    unsetenv("OTACHAIN_CRASH_AT");
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_true(ota_clock_now(&h.clock) == OTA_TIME_NONE);
    assert_null(ota_test_hooks_fs(&h));

    setenv("OTACHAIN_TEST_NOW", "1700000000", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_int_equal(ota_clock_now(&h.clock), 1700000000);
    clear_env();
}

static void test_bad_values(void **state)
{
    static const char *const bad[] = {"abc", "12x", " 5", "", "@", "1e9", "--1"};
    struct ota_test_hooks h;
    struct ota_detail det = {{0}};

    (void)state;
    if (!ota_test_hooks_built())
        skip();
    clear_env();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("OTACHAIN_TEST_NOW", bad[i], 1);
        if (bad[i][0] == '\0') {
            /* Empty means unset. */
            assert_int_equal(ota_test_hooks_load(&h, &det), 0);
            continue;
        }
        assert_int_equal(ota_test_hooks_load(&h, &det), OTA_ERR_INVALID_ARG);
        assert_non_null(strstr(det.msg, "OTACHAIN_TEST_NOW"));
    }
    clear_env();
}

/* @FILE is read at every reading: a test moves a daemon's time. */
static void test_file_clock(void **state)
{
    char dir[] = "/tmp/ota-test-hooks-XXXXXX";
    char path[256];
    char env[300];
    struct ota_test_hooks h;
    struct ota_detail det = {{0}};
    FILE *f;

    (void)state;
    if (!ota_test_hooks_built())
        skip();
    clear_env();
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/now", dir);
    snprintf(env, sizeof(env), "@%s", path);
    setenv("OTACHAIN_TEST_NOW", env, 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    /* Missing file: no reading. */
    assert_true(ota_clock_now(&h.clock) == OTA_TIME_NONE);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("100\n", f);
    fclose(f);
    assert_int_equal(ota_clock_now(&h.clock), 100);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("86500", f);
    fclose(f);
    assert_int_equal(ota_clock_now(&h.clock), 86500);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    assert_true(ota_clock_now(&h.clock) == OTA_TIME_NONE);
    unlink(path);
    rmdir(dir);
    clear_env();
}

/* The file-system fault settings: crash, power cut, skipped fsync, trace. */
static void test_fault_settings(void **state)
{
    static const char *const bad[] = {"0", "-1", "abc", "5x", "07", "2147483649", " 5"};
    struct ota_test_hooks h;
    struct ota_detail det = {{0}};
    char longv[OTA_TEST_SKIP_FSYNC_MAX + 1];

    (void)state;
    clear_env();
    if (!ota_test_hooks_built()) {
        /* A build without test hooks ignores the variables entirely. */
        setenv("OTACHAIN_POWER_CUT", "abc", 1);
        setenv("OTACHAIN_SKIP_FSYNC", "x", 1);
        setenv("OTACHAIN_FS_TRACE", "1", 1);
        assert_int_equal(ota_test_hooks_load(&h, &det), 0);
        assert_null(ota_test_hooks_fs(&h));
        assert_int_equal(h.fault.cut_at, 0);
        clear_env();
        return;
    }
    for (size_t v = 0; v < 2; v++) {
        const char *name = v == 0 ? "OTACHAIN_CRASH_AT" : "OTACHAIN_POWER_CUT";

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            setenv(name, bad[i], 1);
            assert_int_equal(ota_test_hooks_load(&h, &det), OTA_ERR_INVALID_ARG);
            assert_non_null(strstr(det.msg, name));
        }
        unsetenv(name);
    }
    setenv("OTACHAIN_POWER_CUT", "7", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_non_null(ota_test_hooks_fs(&h));
    assert_int_equal(h.fault.cut_at, 7);
    assert_int_equal(h.fault.crash_at, 0);
    setenv("OTACHAIN_CRASH_AT", "3", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "exclude"));
    clear_env();

    setenv("OTACHAIN_SKIP_FSYNC", "timestamp.json", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_non_null(ota_test_hooks_fs(&h));
    assert_string_equal(h.fault.skip_fsync, "timestamp.json");
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    setenv("OTACHAIN_SKIP_FSYNC", longv, 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), OTA_ERR_INVALID_ARG);
    clear_env();

    setenv("OTACHAIN_FS_TRACE", "0", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_null(ota_test_hooks_fs(&h));
    setenv("OTACHAIN_FS_TRACE", "1", 1);
    assert_int_equal(ota_test_hooks_load(&h, &det), 0);
    assert_true(h.fault.trace);
    /* Without a crash or cut point the hook only counts. */
    for (int i = 0; i < 3; i++) {
        struct ota_fs_event ev = {OTA_FS_STEP_WRITE, "x", NULL};

        assert_int_equal(ota_fs_fault_hook(&h.fault, &ev), 0);
    }
    assert_int_equal(h.fault.steps, 3);
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_set),    cmocka_unit_test(test_fixed_and_none),
        cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_file_clock),
        cmocka_unit_test(test_fault_settings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
