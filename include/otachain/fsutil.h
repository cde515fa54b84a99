/* The file-system layer: bounded reads, the one atomic writer, secret key
 * files, the one lock, and the fault hook every state write goes through.
 *
 * Atomic writer (ota_fs_writer_*, and ota_fs_replace / ota_fs_create on top
 * of it): write path.tmp-<16 hex> (O_EXCL|O_NOFOLLOW, exact mode), fsync
 * it, rename it over path (or, with OTA_FS_NOREPLACE, link it to path and
 * refuse an existing one), fsync the directory. A reader sees the old file
 * or the new one, never a part; after a power cut one of the two survives
 * whole, and a failure leaves path as it was and no temporary behind.
 *
 * Fault hook: each step (create, write, fsync, rename, dirsync, unlink,
 * mkdir, and a database commit of the log store) calls the optional hook
 * first, so a test can fail, kill or power-cut the process before each one
 * deterministically (include/otachain/test_hooks.h). The hook lives in the
 * caller's context, never in a global.
 */
#ifndef OTACHAIN_FSUTIL_H
#define OTACHAIN_FSUTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

enum ota_fs_step {
    OTA_FS_STEP_CREATE,  /* a temporary file is about to be created (tmp) */
    OTA_FS_STEP_WRITE,   /* about to write its contents (once per writer) */
    OTA_FS_STEP_FSYNC,   /* about to fsync it */
    OTA_FS_STEP_RENAME,  /* about to move tmp to path (rename or link) */
    OTA_FS_STEP_DIRSYNC, /* about to fsync the directory of path */
    OTA_FS_STEP_UNLINK,  /* about to remove path */
    OTA_FS_STEP_MKDIR,   /* about to create the directory path */
    OTA_FS_STEP_COMMIT,  /* about to commit a database transaction (path: the database) */
};

/* What the hook is told. path is the final name the step is about (for
 * DIRSYNC: the directory synced is the one holding path); tmp is the
 * temporary (CREATE, WRITE, FSYNC) or the source of a move (RENAME), else
 * NULL. */
struct ota_fs_event {
    enum ota_fs_step step;
    const char *path;
    const char *tmp;
};

/* Returned by a hook for an FSYNC step: skip that fsync (a test that shows
 * a missing fsync is caught). Any other non-zero value fails the step. */
#define OTA_FS_HOOK_SKIP 1

/* Called before each step; 0 lets it run, OTA_FS_HOOK_SKIP skips an fsync,
 * anything else makes the operation fail with OTA_ERR_IO at that step. The
 * hook may also never return (a test's SIGKILL). */
struct ota_fs_hook {
    int (*fn)(void *ctx, const struct ota_fs_event *ev);
    void *ctx;
};

/* Calls hook (NULL or without fn: nothing) before step on path (tmp NULL):
 * 0, or OTA_ERR_IO when the hook says the step fails (a skipped fsync is
 * the writer's only: here it is 0). For the steps a module takes itself
 * (the log store's commit, a slot write). */
OTA_WUR int ota_fs_hook_step(const struct ota_fs_hook *hook, enum ota_fs_step step,
                             const char *path);

/* "create", "write", "fsync", "rename", "dirsync", "unlink", "mkdir",
 * "commit". */
const char *ota_fs_step_name(enum ota_fs_step step);

/* ---------------------------------------------------------------- reads */

/* Reads a whole regular file of at most max bytes into a new buffer
 * (free()); a NUL byte is appended (not counted). OTA_ERR_NOT_FOUND,
 * OTA_ERR_TOO_LARGE (checked from fstat before reading, and again while
 * reading), OTA_ERR_IO. Symlinks are followed; use ota_fs_read_nofollow to
 * refuse them. */
OTA_WUR int ota_fs_read(uint8_t **out, size_t *out_len, const char *path, size_t max);
OTA_WUR int ota_fs_read_nofollow(uint8_t **out, size_t *out_len, const char *path, size_t max);

/* Reads a secret key file: not a symlink (O_NOFOLLOW), a regular file, not
 * readable or writable by group or others (OTA_ERR_PERMISSION otherwise),
 * at most max bytes. The buffer (plus a NUL) never moves while read, so the
 * caller wipes it whole: ota_wipe(*out, *out_len) then free(). Nothing is
 * left in *out on failure. */
OTA_WUR int ota_fs_read_secret(uint8_t **out, size_t *out_len, const char *path, size_t max);

/* ------------------------------------------------------- atomic writer */

/* ota_fs_writer_open flags. */
#define OTA_FS_NOREPLACE 1u /* commit refuses an existing path (OTA_ERR_EXISTS) */

/* One file being written; the caller owns it (a stack value is fine). */
struct ota_fs_writer {
    int fd; /* the temporary, -1 when closed */
    unsigned flags;
    bool wrote; /* the WRITE step was announced */
    const struct ota_fs_hook *hook;
    uint64_t len; /* bytes written so far */
    char path[PATH_MAX];
    char tmp[PATH_MAX];
};

/* Starts writing path (CREATE step): creates path.tmp-<hex> beside it with
 * exactly mode (whatever the umask). On failure nothing is left and w is
 * closed (abort is harmless). */
OTA_WUR int ota_fs_writer_open(struct ota_fs_writer *w, const char *path, unsigned mode,
                               unsigned flags, const struct ota_fs_hook *hook);

/* Appends len bytes (the first call is the WRITE step). On failure the
 * writer stays open: the caller aborts it. */
OTA_WUR int ota_fs_writer_write(struct ota_fs_writer *w, const void *data, size_t len);

/* FSYNC, RENAME (or, with OTA_FS_NOREPLACE, link + unlink of the
 * temporary), DIRSYNC. Afterwards the writer is closed whatever happened.
 * Before the move a failure leaves path untouched and removes the
 * temporary; OTA_ERR_EXISTS with OTA_FS_NOREPLACE when path exists. A
 * failure of the directory fsync is OTA_ERR_IO with the new file in place
 * (it may not survive a power cut). */
OTA_WUR int ota_fs_writer_commit(struct ota_fs_writer *w);

/* As ota_fs_writer_commit, under another final name in the same directory
 * (for content named by its hash, known only once written). */
OTA_WUR int ota_fs_writer_commit_to(struct ota_fs_writer *w, const char *path);

/* Closes and removes the temporary; accepts a closed or zeroed writer. */
void ota_fs_writer_abort(struct ota_fs_writer *w);

/* Atomically replaces path with len bytes, with the given mode. hook may be
 * NULL. On failure the old file is untouched and the temporary removed. */
OTA_WUR int ota_fs_replace(const char *path, const void *data, size_t len, unsigned mode,
                           const struct ota_fs_hook *hook);

/* Creates path with len bytes and mode, atomically and only if it does not
 * exist (OTA_ERR_EXISTS otherwise, even for a dangling symlink): path
 * either does not exist or holds all len bytes, durably. Secret key files
 * are created this way with mode 0600 (the caller wipes data). */
OTA_WUR int ota_fs_create(const char *path, const void *data, size_t len, unsigned mode,
                          const struct ota_fs_hook *hook);

/* Renames from over to (RENAME) and fsyncs to's directory, and from's when
 * it is another one (DIRSYNC). */
OTA_WUR int ota_fs_rename(const char *from, const char *to, const struct ota_fs_hook *hook);

/* Removes path (if it exists: a missing file is success) and fsyncs its
 * directory. */
OTA_WUR int ota_fs_remove(const char *path, const struct ota_fs_hook *hook);

/* Creates a directory and any missing parents with the given mode (like
 * mkdir -p), each new one made durable by an fsync of its parent (MKDIR,
 * DIRSYNC). Existing directories are fine. */
OTA_WUR int ota_fs_mkdirs(const char *path, unsigned mode, const struct ota_fs_hook *hook);

/* Creates a new directory prefix + "-<16 hex>" (mode, parent fsynced:
 * MKDIR, DIRSYNC) and returns its name in out (PATH_MAX bytes). */
OTA_WUR int ota_fs_mkdtemp(char out[PATH_MAX], const char *prefix, unsigned mode,
                           const struct ota_fs_hook *hook);

/* Removes the temporaries an interrupted writer left in dir (entries named
 * "<name>.tmp-<16 hex>", the writer's names; not recursive), each through
 * ota_fs_remove. Only under the lock that serialises dir's writers, so no
 * live writer owns one. *removed (may be NULL) counts them; a missing dir
 * is fine. */
OTA_WUR int ota_fs_remove_temps(const char *dir, size_t *removed, const struct ota_fs_hook *hook);

/* ------------------------------------------------------------------ lock */

/* Takes an exclusive lock on path (created with mode if missing, never
 * through a symlink) without waiting: OTA_ERR_LOCKED when another process
 * holds it. *fd holds it until ota_fs_unlock (or the process ends). */
OTA_WUR int ota_fs_lock(int *fd, const char *path, unsigned mode);

/* Releases a lock taken by ota_fs_lock; accepts -1. Sets *fd to -1. */
void ota_fs_unlock(int *fd);

/* ------------------------------------------------------------- helpers */

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

/* The directory part of path into dir (PATH_MAX bytes): "." when path has
 * no slash, "/" for "/name". OTA_ERR_TOO_LARGE if it does not fit. */
OTA_WUR int ota_fs_dir_of(char dir[PATH_MAX], const char *path);

#endif
