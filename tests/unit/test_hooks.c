/* Unit tests for hooks.h: exit codes, the environment, the deadline
 * (the whole process group is killed), programs that cannot be run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "otachain/hooks.h"

static void test_exit_codes(void **state)
{
    struct ota_detail det;
    const char *ok[] = {"/bin/true", NULL};
    const char *no[] = {"/bin/false", NULL};
    const char *missing[] = {"/nonexistent/hook", NULL};

    (void)state;
    assert_int_equal(ota_hook_run(ok, NULL, 0, 10000, NULL), 0);
    assert_int_equal(ota_hook_run(no, NULL, 0, 10000, &det), OTA_ERR_HOOK_FAILED);
    assert_non_null(strstr(det.msg, "exited with status 1"));
    assert_int_equal(ota_hook_run(missing, NULL, 0, 10000, &det), OTA_ERR_HOOK_FAILED);
    assert_non_null(strstr(det.msg, "cannot run it"));
    assert_int_equal(ota_hook_run_shell("exit 3", NULL, 0, 10000, &det), OTA_ERR_HOOK_FAILED);
    assert_non_null(strstr(det.msg, "status 3"));
    assert_int_equal(ota_hook_run_shell("kill -9 $$", NULL, 0, 10000, &det), OTA_ERR_HOOK_FAILED);
    assert_non_null(strstr(det.msg, "signal 9"));
}

static void test_environment(void **state)
{
    const struct ota_hook_env env[] = {{"OTACHAIN_SLOT", "b"}, {"OTACHAIN_VERSION", "1.2.3"}};

    (void)state;
    assert_int_equal(ota_hook_run_shell("test \"$OTACHAIN_SLOT/$OTACHAIN_VERSION\" = b/1.2.3", env,
                                        2, 10000, NULL),
                     0);
    assert_int_equal(ota_hook_run_shell("test -n \"$OTACHAIN_SLOT\"", NULL, 0, 10000, NULL),
                     OTA_ERR_HOOK_FAILED);
}

static void test_timeout_kills_the_group(void **state)
{
    struct ota_detail det;
    struct timespec a, b;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &a);
    /* A child of the hook keeps the pipe open: it must die too. */
    assert_int_equal(ota_hook_run_shell("sleep 30 & sleep 30", NULL, 0, 300, &det),
                     OTA_ERR_HOOK_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(b.tv_sec - a.tv_sec < 10);
    assert_non_null(strstr(det.msg, "killed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_timeout_kills_the_group),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
