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
 *                               step (a process crash: the page cache keeps
 *                               every write)
 *   OTACHAIN_POWER_CUT=N        a power cut just before the N-th step: what
 *                               was not made durable is lost or torn
 *                               (lib/fs_fault.c), then SIGKILL
 *   OTACHAIN_SKIP_FSYNC=SUFFIX  the fsync of every file whose path ends in
 *                               SUFFIX is not done (with POWER_CUT: shows
 *                               that a missing fsync is caught)
 *   OTACHAIN_FS_TRACE=1         print each step (include/otachain/fsutil.h)
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

#define OTA_TEST_NOW_FILE_MAX   1024
#define OTA_TEST_SKIP_FSYNC_MAX 256

struct ota_fs_journal; /* power-cut bookkeeping (lib/fs_fault.c) */

/* Fault-injection settings and the step counter, shared by every program
 * through its struct ota_test_hooks. */
struct ota_fs_fault {
    unsigned long steps;    /* steps seen so far */
    unsigned long crash_at; /* 0: never */
    unsigned long cut_at;   /* 0: never */
    bool trace;
    char skip_fsync[OTA_TEST_SKIP_FSYNC_MAX]; /* "": none */
    struct ota_fs_journal *journal;           /* allocated on first use */
};

/* The hook function for struct ota_fs_hook, ctx = struct ota_fs_fault *:
 * trace, crash, power cut (see the variables above). A build without test
 * hooks compiles it to "return 0". */
int ota_fs_fault_hook(void *ctx, const struct ota_fs_event *ev);

/* Frees the power-cut journal; accepts a fault without one. */
void ota_fs_fault_free(struct ota_fs_fault *f);

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
