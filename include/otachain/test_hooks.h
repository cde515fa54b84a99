/* Test hooks: what a test may inject into a program instead of sleeping
 * or pulling the plug. Compiled in only when the build has them (meson
 * -Dtest_hooks=true: the ASan build that `make check` uses); a release
 * build reads none of these variables and ignores them if set.
 *
 * Environment, read once by ota_test_hooks_load() at program start:
 *
 *   OTACHAIN_TEST_NOW=SECONDS   the clock reads SECONDS (0 is a reading)
 *   OTACHAIN_TEST_NOW=none      the clock has no reading (OTA_TIME_NONE)
 *   OTACHAIN_TEST_NOW=@FILE     the clock reads the decimal number in FILE,
 *                               read again at every reading, so a test
 *                               moves a running daemon's time by replacing
 *                               FILE (write a temporary, then rename)
 *   OTACHAIN_CRASH_AT=N         SIGKILL just before the N-th file-system
 *   OTACHAIN_FS_TRACE=1         step / print each step (include/otachain/fsutil.h)
 *   OTACHAIN_TEST_HOOKS=1       enables hidden test-only verbs
 *
 * Each program keeps one struct ota_test_hooks in its globals (STYLE rule
 * 7) and takes its clock and file-system hook from it.
 */
#ifndef OTACHAIN_TEST_HOOKS_H
#define OTACHAIN_TEST_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "otachain/clock.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"

#define OTA_TEST_NOW_FILE_MAX 1024

struct ota_test_hooks {
    struct ota_clock clock;     /* the program's clock: injected, or the system's */
    struct ota_fs_fault fault;  /* fault-injection settings and step counter */
    struct ota_fs_hook fs_hook; /* the fault hook, when a fault setting is active */
    bool fs_active;             /* whether fs_hook does anything */
    bool test_verbs;            /* OTACHAIN_TEST_HOOKS=1 */
    /* private: the injected clock */
    int64_t fixed_now;
    char now_file[OTA_TEST_NOW_FILE_MAX];
};

/* Whether this build has test hooks (meson -Dtest_hooks). */
bool ota_test_hooks_built(void);

/* Fills h from the environment when the build has test hooks; otherwise
 * (or with none set) the clock is the system's and every hook is off.
 * OTA_ERR_INVALID_ARG, with det naming the variable, for a malformed
 * value. h must not move afterwards (its clock and hook point into it). */
OTA_WUR int ota_test_hooks_load(struct ota_test_hooks *h, struct ota_detail *det);

/* The file-system hook to pass to the library: NULL when no fault setting
 * is active, so production paths pay nothing. */
const struct ota_fs_hook *ota_test_hooks_fs(const struct ota_test_hooks *h);

#endif
