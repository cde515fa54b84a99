/* File helpers: bounded reads and durable atomic replacement.
 *
 * Atomic replacement is: write path.tmp-XXXXXX (O_EXCL|O_NOFOLLOW), fsync
 * it, rename over path, fsync the directory. A reader sees either the old
 * file or the new one, and after a power cut one of the two survives whole.
 *
 * Fault injection: every step calls the optional hook first, so a test can
 * stop (or kill) the process at each write, fsync and rename
 * deterministically. The hook lives in the caller's context, not in a
 * global.
 */
#ifndef OTACHAIN_FSUTIL_H
#define OTACHAIN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

enum ota_fs_step {
    OTA_FS_STEP_CREATE,  /* temporary file about to be created */
    OTA_FS_STEP_WRITE,   /* about to write the contents */
    OTA_FS_STEP_FSYNC,   /* about to fsync the temporary file */
    OTA_FS_STEP_RENAME,  /* about to rename it over the target */
    OTA_FS_STEP_DIRSYNC, /* about to fsync the directory */
    OTA_FS_STEP_UNLINK,  /* about to remove a file (ota_fs_remove) */
};

/* Called before each step with the final path; returning non-zero makes
 * the operation fail with OTA_ERR_IO at that step (the hook may also
 * simply never return, e.g. raise SIGKILL). */
struct ota_fs_hook {
    int (*fn)(void *ctx, enum ota_fs_step step, const char *path);
    void *ctx;
};

/* Calls hook (NULL or without fn: nothing) before step on path: 0, or
 * OTA_ERR_IO when the hook says the step fails. For callers that do their
 * own file steps but must be counted like ota_fs_replace's. */
OTA_WUR int ota_fs_hook_step(const struct ota_fs_hook *hook, enum ota_fs_step step,
                             const char *path);

/* Fault injection driven by the environment, in builds with test hooks
 * only (include/otachain/test_hooks.h; a release build reads nothing):
 * OTACHAIN_CRASH_AT=N kills the process with SIGKILL just before the N-th
 * step, OTACHAIN_FS_TRACE=1 prints "fs-step N <step> <path>" on stderr.
 * Shared by every program; the counter lives in the caller's struct. */
struct ota_fs_fault {
    unsigned long steps;    /* steps seen so far */
    unsigned long crash_at; /* 0: never */
    bool trace;
};

/* Reads the two variables into f. OTA_ERR_INVALID_ARG (det says which) if
 * OTACHAIN_CRASH_AT is not a step number 1..2^31. On success *active
 * tells whether a hook is needed at all (always false without test
 * hooks). */
OTA_WUR int ota_fs_fault_from_env(struct ota_fs_fault *f, bool *active, struct ota_detail *det);

/* The hook function for struct ota_fs_hook, ctx = struct ota_fs_fault *.
 * stdout and stderr are flushed before the kill. */
int ota_fs_fault_hook(void *ctx, enum ota_fs_step step, const char *path);

/* "create", "write", "fsync", "rename", "dirsync", "unlink". */
const char *ota_fs_step_name(enum ota_fs_step step);

/* Reads a whole regular file of at most max bytes into a new buffer
 * (free()); a NUL byte is appended (not counted). OTA_ERR_NOT_FOUND,
 * OTA_ERR_TOO_LARGE (checked from fstat before reading, and again while
 * reading), OTA_ERR_IO. Symlinks are followed; use ota_fs_read_nofollow to
 * refuse them. */
OTA_WUR int ota_fs_read(uint8_t **out, size_t *out_len, const char *path, size_t max);
OTA_WUR int ota_fs_read_nofollow(uint8_t **out, size_t *out_len, const char *path, size_t max);

/* Atomically replaces path with len bytes, with the given mode. hook may be
 * NULL. On failure the old file is untouched and the temporary removed. */
OTA_WUR int ota_fs_replace(const char *path, const void *data, size_t len, unsigned mode,
                           const struct ota_fs_hook *hook);

/* Removes path (if it exists) and fsyncs its directory. */
OTA_WUR int ota_fs_remove(const char *path, const struct ota_fs_hook *hook);

/* Creates a directory and any missing parents with the given mode (like
 * mkdir -p). Existing directories are fine. */
OTA_WUR int ota_fs_mkdirs(const char *path, unsigned mode);

/* Maps an errno value to an ota_err: ENOENT/ENOTDIR -> NOT_FOUND,
 * EACCES/EPERM/ELOOP -> PERMISSION, EEXIST -> EXISTS, ENOMEM -> NOMEM,
 * anything else -> IO. */
int ota_fs_errno(int e);

/* Writes all n bytes, retrying EINTR and short writes: 0 or OTA_ERR_IO
 * (errno set). The p- variants write or read exactly n bytes at offset
 * off; pread_all treats end of file before n bytes as OTA_ERR_IO (errno
 * EIO). */
OTA_WUR int ota_fs_write_all(int fd, const void *data, size_t n);
OTA_WUR int ota_fs_pwrite_all(int fd, const void *data, size_t n, uint64_t off);
OTA_WUR int ota_fs_pread_all(int fd, void *data, size_t n, uint64_t off);

/* fsyncs a directory. */
OTA_WUR int ota_fs_sync_dir(const char *dir);

#endif
