/* The file-system layer (see otachain/fsutil.h).
 *
 * The atomic writer, step by step (the hook runs before each numbered
 * step; a power cut modelled by the test hooks may happen at any of them):
 *
 *   1 CREATE   open path.tmp-<16 hex> O_CREAT|O_EXCL|O_NOFOLLOW, fchmod mode
 *   2 WRITE    write all bytes (first write only; loop over EINTR and
 *              short writes)
 *   3 FSYNC    fsync + close the temporary           <- data durable
 *   4 RENAME   rename temporary over path            <- the commit point
 *              (OTA_FS_NOREPLACE: link to path, EEXIST refused, unlink tmp)
 *   5 DIRSYNC  fsync the directory                   <- name durable
 *
 * Invariants: before step 4 completes, path holds the old content and a
 * failure removes the temporary; after step 4, path holds the new content
 * and no temporary exists (a step-5 failure reports OTA_ERR_IO: the new
 * file is in place but may not survive a power cut). Strict POSIX gives
 * nothing more: data not fsynced may be lost or torn, and a name not made
 * durable by its directory's fsync may be lost, which is exactly what the
 * power-cut mode of the test hooks (lib/fs_fault.c) does at a cut.
 */
#include "otachain/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fsutil_int.h"
#include "otachain/crypto.h"

#define TMP_RANDOM_BYTES 8
#define TMP_CREATE_TRIES 8

int ota_fs_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return OTA_ERR_NOT_FOUND;
    case EACCES:
    case EPERM:
    case ELOOP:
        return OTA_ERR_PERMISSION;
    case EEXIST:
        return OTA_ERR_EXISTS;
    case ENOMEM:
        return OTA_ERR_NOMEM;
    default:
        return OTA_ERR_IO;
    }
}

/* Runs the hook for one step: 0, OTA_FS_HOOK_SKIP (fsync only) or
 * OTA_ERR_IO. */
static int hook_event(const struct ota_fs_hook *hook, enum ota_fs_step step, const char *path,
                      const char *tmp)
{
    struct ota_fs_event ev = {step, path, tmp};
    int r;

    if (hook == NULL || hook->fn == NULL)
        return 0;
    r = hook->fn(hook->ctx, &ev);
    if (r == 0)
        return 0;
    if (r == OTA_FS_HOOK_SKIP && step == OTA_FS_STEP_FSYNC)
        return OTA_FS_HOOK_SKIP;
    errno = EIO;
    return OTA_ERR_IO;
}

int ota_fs_hook_step(const struct ota_fs_hook *hook, enum ota_fs_step step, const char *path)
{
    int rc = hook_event(hook, step, path, NULL);

    /* The skip knob is the writer's: a module's own steps run. */
    return rc == OTA_FS_HOOK_SKIP ? 0 : rc;
}

int ota_fs_write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        if (w == 0) {
            errno = EIO;
            return OTA_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ota_fs_pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
    const uint8_t *p = data;

    if (off > (uint64_t)INT64_MAX - n) {
        errno = EOVERFLOW;
        return OTA_ERR_IO;
    }
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        if (w == 0) {
            errno = EIO;
            return OTA_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int ota_fs_pread_all(int fd, void *data, size_t n, uint64_t off)
{
    uint8_t *p = data;

    if (off > (uint64_t)INT64_MAX - n) {
        errno = EOVERFLOW;
        return OTA_ERR_IO;
    }
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        if (r == 0) {
            errno = EIO; /* end of file before n bytes */
            return OTA_ERR_IO;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Reads up to n bytes, retrying EINTR and short reads; returns the count
 * (less than n only at end of file) or -1. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int ota_fs_dir_of(char dir[PATH_MAX], const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
        return 0;
    }
    n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/file" -> "/" */
    if (n >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int ota_fs_read_fd(uint8_t **out, size_t *out_len, int fd, size_t max)
{
    struct stat st;
    uint8_t *buf;
    size_t size;
    size_t len = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (fstat(fd, &st) != 0)
        return ota_fs_errno(errno);
    if (!S_ISREG(st.st_mode))
        return OTA_ERR_IO;
    if (st.st_size < 0 || (uintmax_t)st.st_size > max)
        return OTA_ERR_TOO_LARGE;
    size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (buf == NULL)
        return OTA_ERR_NOMEM;
    for (;;) {
        ssize_t r = read_full(fd, buf + len, size - len);
        uint8_t probe;

        if (r < 0) {
            rc = OTA_ERR_IO;
            goto fail;
        }
        len += (size_t)r;
        if (len < size)
            break; /* shrank while reading: take what is there */
        /* Full: probe for growth since fstat. */
        r = read_full(fd, &probe, 1);
        if (r < 0) {
            rc = OTA_ERR_IO;
            goto fail;
        }
        if (r == 0)
            break;
        if (len >= max) {
            rc = OTA_ERR_TOO_LARGE;
            goto fail;
        }
        {
            size_t nsize = size < max / 2 ? (size > 0 ? size * 2 : 4096) : max;
            uint8_t *nb;

            if (nsize > max)
                nsize = max;
            nb = malloc(nsize + 1);
            if (nb == NULL) {
                rc = OTA_ERR_NOMEM;
                goto fail;
            }
            memcpy(nb, buf, len);
            ota_wipe(buf, size + 1);
            free(buf);
            buf = nb;
            size = nsize;
            buf[len++] = probe;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
fail:
    ota_wipe(buf, size + 1);
    free(buf);
    return rc;
}

static int read_path(uint8_t **out, size_t *out_len, const char *path, size_t max, int extra)
{
    int fd;
    int rc;

    if (out == NULL || out_len == NULL || path == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    /* O_NONBLOCK: opening a FIFO must not hang; fstat then refuses it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | extra);
    if (fd < 0)
        return ota_fs_errno(errno);
    rc = ota_fs_read_fd(out, out_len, fd, max);
    close(fd);
    return rc;
}

int ota_fs_read(uint8_t **out, size_t *out_len, const char *path, size_t max)
{
    return read_path(out, out_len, path, max, 0);
}

int ota_fs_read_nofollow(uint8_t **out, size_t *out_len, const char *path, size_t max)
{
    return read_path(out, out_len, path, max, O_NOFOLLOW);
}

int ota_fs_sync_dir(const char *dir)
{
    int fd;
    int rc = 0;

    if (dir == NULL)
        return OTA_ERR_INVALID_ARG;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ota_fs_errno(errno);
    /* EINVAL: the file system cannot sync directories; nothing to do. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = OTA_ERR_IO;
    if (close(fd) != 0 && rc == 0 && errno != EINTR)
        rc = OTA_ERR_IO;
    return rc;
}

int ota_fs_read_secret(uint8_t **out, size_t *out_len, const char *path, size_t max)
{
    struct stat st;
    int fd;
    int rc;

    if (out == NULL || out_len == NULL || path == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    /* lstat first: refuses symlinks, and FIFOs before open could block. */
    if (lstat(path, &st) != 0)
        return ota_fs_errno(errno);
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        return OTA_ERR_PERMISSION;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return ota_fs_errno(errno);
    /* Check again what was opened (the path may have changed). */
    if (fstat(fd, &st) != 0)
        rc = ota_fs_errno(errno);
    else if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        rc = OTA_ERR_PERMISSION;
    else
        rc = ota_fs_read_fd(out, out_len, fd, max);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- writer */

/* Opens a fresh path.tmp-<hex> into tmp (PATH_MAX bytes), announcing it
 * to the hook first (CREATE). */
static int create_tmp(int *fd_out, char tmp[PATH_MAX], const char *path, unsigned mode,
                      const struct ota_fs_hook *hook)
{
    size_t plen = strlen(path);
    int attempt;

    if (plen + sizeof(".tmp-") - 1 + 2 * TMP_RANDOM_BYTES + 1 > PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    for (attempt = 0; attempt < TMP_CREATE_TRIES; attempt++) {
        uint8_t rnd[TMP_RANDOM_BYTES];
        char hex[2 * TMP_RANDOM_BYTES + 1];
        int fd;
        int rc;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        ota_hex_encode(hex, rnd, sizeof(rnd));
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp-", 5);
        memcpy(tmp + plen + 5, hex, sizeof(hex));
        rc = hook_event(hook, OTA_FS_STEP_CREATE, path, tmp);
        if (rc != 0)
            return rc;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return ota_fs_errno(errno);
        }
        /* Exact mode whatever the umask. */
        if (fchmod(fd, (mode_t)(mode & 07777)) != 0) {
            rc = ota_fs_errno(errno);
            close(fd);
            unlink(tmp);
            return rc;
        }
        *fd_out = fd;
        return 0;
    }
    return OTA_ERR_EXISTS;
}

int ota_fs_writer_open(struct ota_fs_writer *w, const char *path, unsigned mode, unsigned flags,
                       const struct ota_fs_hook *hook)
{
    size_t n;
    int rc;

    if (w == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(w, 0, offsetof(struct ota_fs_writer, path));
    w->fd = -1;
    w->path[0] = '\0';
    w->tmp[0] = '\0';
    if (path == NULL || path[0] == '\0' || (flags & ~OTA_FS_NOREPLACE) != 0)
        return OTA_ERR_INVALID_ARG;
    n = strlen(path);
    if (n >= sizeof(w->path))
        return OTA_ERR_TOO_LARGE;
    memcpy(w->path, path, n + 1);
    w->flags = flags;
    w->hook = hook;
    rc = create_tmp(&w->fd, w->tmp, path, mode, hook);
    if (rc != 0) {
        w->fd = -1;
        w->tmp[0] = '\0';
    }
    return rc;
}

int ota_fs_writer_write(struct ota_fs_writer *w, const void *data, size_t len)
{
    int rc;

    if (w == NULL || w->fd < 0 || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (!w->wrote) {
        rc = hook_event(w->hook, OTA_FS_STEP_WRITE, w->path, w->tmp);
        if (rc != 0)
            return rc;
        w->wrote = true;
    }
    rc = ota_fs_write_all(w->fd, data, len);
    if (rc == 0)
        w->len += len;
    return rc;
}

void ota_fs_writer_abort(struct ota_fs_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp[0] != '\0') {
        int e = errno;

        unlink(w->tmp);
        errno = e;
    }
    w->fd = -1;
    w->tmp[0] = '\0';
}

/* The move of step 4: rename, or link + unlink for OTA_FS_NOREPLACE. */
static int move_tmp(const struct ota_fs_writer *w)
{
    if (!(w->flags & OTA_FS_NOREPLACE))
        return rename(w->tmp, w->path) == 0 ? 0 : ota_fs_errno(errno);
    if (link(w->tmp, w->path) != 0)
        return ota_fs_errno(errno);
    unlink(w->tmp); /* the name at path holds the data now */
    return 0;
}

int ota_fs_writer_commit(struct ota_fs_writer *w)
{
    char dir[PATH_MAX];
    int rc;

    if (w == NULL || w->fd < 0)
        return OTA_ERR_INVALID_ARG;
    if (!w->wrote) {
        /* An empty file still takes the WRITE step, so every commit
         * enumerates the same steps. */
        rc = ota_fs_writer_write(w, "", 0);
        if (rc != 0)
            goto fail;
    }
    rc = ota_fs_dir_of(dir, w->path);
    if (rc != 0)
        goto fail;
    rc = hook_event(w->hook, OTA_FS_STEP_FSYNC, w->path, w->tmp);
    if (rc == 0 && fsync(w->fd) != 0)
        rc = OTA_ERR_IO;
    if (rc == OTA_FS_HOOK_SKIP)
        rc = 0; /* a test disabled this fsync */
    if (rc != 0)
        goto fail;
    rc = close(w->fd);
    w->fd = -1;
    if (rc != 0 && errno != EINTR) {
        rc = OTA_ERR_IO;
        goto fail;
    }
    rc = hook_event(w->hook, OTA_FS_STEP_RENAME, w->path, w->tmp);
    if (rc == 0)
        rc = move_tmp(w);
    if (rc != 0)
        goto fail;
    w->tmp[0] = '\0';
    /* Committed: the new content is in place. */
    rc = hook_event(w->hook, OTA_FS_STEP_DIRSYNC, w->path, NULL);
    if (rc == 0)
        rc = ota_fs_sync_dir(dir);
    return rc;
fail:
    ota_fs_writer_abort(w);
    return rc;
}

int ota_fs_writer_commit_to(struct ota_fs_writer *w, const char *path)
{
    char d1[PATH_MAX];
    char d2[PATH_MAX];
    size_t n;

    if (w == NULL || w->fd < 0 || path == NULL || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    n = strlen(path);
    if (n >= sizeof(w->path) || ota_fs_dir_of(d1, w->path) != 0 || ota_fs_dir_of(d2, path) != 0 ||
        strcmp(d1, d2) != 0)
        return OTA_ERR_INVALID_ARG;
    memcpy(w->path, path, n + 1);
    return ota_fs_writer_commit(w);
}

static int write_whole(const char *path, const void *data, size_t len, unsigned mode,
                       unsigned flags, const struct ota_fs_hook *hook)
{
    struct ota_fs_writer w;
    int rc;

    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_writer_open(&w, path, mode, flags, hook);
    if (rc == 0)
        rc = ota_fs_writer_write(&w, data, len);
    if (rc == 0)
        return ota_fs_writer_commit(&w);
    ota_fs_writer_abort(&w);
    return rc;
}

int ota_fs_replace(const char *path, const void *data, size_t len, unsigned mode,
                   const struct ota_fs_hook *hook)
{
    return write_whole(path, data, len, mode, 0, hook);
}

int ota_fs_create(const char *path, const void *data, size_t len, unsigned mode,
                  const struct ota_fs_hook *hook)
{
    struct stat st;

    /* Refused before any step: nothing to write when path exists. */
    if (path != NULL && lstat(path, &st) == 0)
        return OTA_ERR_EXISTS;
    return write_whole(path, data, len, mode, OTA_FS_NOREPLACE, hook);
}

int ota_fs_rename(const char *from, const char *to, const struct ota_fs_hook *hook)
{
    char dfrom[PATH_MAX];
    char dto[PATH_MAX];
    int rc;

    if (from == NULL || to == NULL || from[0] == '\0' || to[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_dir_of(dfrom, from);
    if (rc == 0)
        rc = ota_fs_dir_of(dto, to);
    if (rc == 0)
        rc = hook_event(hook, OTA_FS_STEP_RENAME, to, from);
    if (rc != 0)
        return rc;
    if (rename(from, to) != 0)
        return ota_fs_errno(errno);
    rc = hook_event(hook, OTA_FS_STEP_DIRSYNC, to, NULL);
    if (rc == 0)
        rc = ota_fs_sync_dir(dto);
    if (rc == 0 && strcmp(dfrom, dto) != 0) {
        rc = hook_event(hook, OTA_FS_STEP_DIRSYNC, from, NULL);
        if (rc == 0)
            rc = ota_fs_sync_dir(dfrom);
    }
    return rc;
}

int ota_fs_remove(const char *path, const struct ota_fs_hook *hook)
{
    char dir[PATH_MAX];
    struct stat st;
    int rc;

    if (path == NULL || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_dir_of(dir, path);
    if (rc != 0)
        return rc;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : ota_fs_errno(errno);
    rc = hook_event(hook, OTA_FS_STEP_UNLINK, path, NULL);
    if (rc != 0)
        return rc;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0;
        return ota_fs_errno(errno);
    }
    rc = hook_event(hook, OTA_FS_STEP_DIRSYNC, path, NULL);
    if (rc != 0)
        return rc;
    return ota_fs_sync_dir(dir);
}

/* mkdir one level; 0 if created or already a directory. created is set
 * when this call made it. */
static int mkdir_one(const char *p, unsigned mode, bool *created, const struct ota_fs_hook *hook)
{
    struct stat st;
    int rc;

    *created = false;
    if (stat(p, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : OTA_ERR_EXISTS;
    rc = hook_event(hook, OTA_FS_STEP_MKDIR, p, NULL);
    if (rc != 0)
        return rc;
    if (mkdir(p, (mode_t)(mode & 07777)) == 0) {
        *created = true;
        return 0;
    }
    if (errno != EEXIST)
        return ota_fs_errno(errno);
    if (stat(p, &st) != 0)
        return ota_fs_errno(errno);
    return S_ISDIR(st.st_mode) ? 0 : OTA_ERR_EXISTS;
}

int ota_fs_mkdirs(const char *path, unsigned mode, const struct ota_fs_hook *hook)
{
    char p[PATH_MAX];
    char dir[PATH_MAX];
    size_t n;
    size_t i;
    bool created;
    int rc;

    if (path == NULL || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    n = strlen(path);
    if (n >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    memcpy(p, path, n + 1);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    /* Create each prefix ending before a '/', then the whole path; sync
     * the parent of every directory made so it survives a power cut. */
    for (i = 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        if (i < n && p[i - 1] == '/')
            continue; /* "//" */
        if (i < n)
            p[i] = '\0';
        rc = mkdir_one(p, mode, &created, hook);
        if (rc == 0 && created) {
            rc = ota_fs_dir_of(dir, p);
            if (rc == 0)
                rc = hook_event(hook, OTA_FS_STEP_DIRSYNC, p, NULL);
            if (rc == 0)
                rc = ota_fs_sync_dir(dir);
        }
        if (i < n)
            p[i] = '/';
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ota_fs_mkdtemp(char out[PATH_MAX], const char *prefix, unsigned mode,
                   const struct ota_fs_hook *hook)
{
    char dir[PATH_MAX];
    size_t plen;
    int rc;

    if (out == NULL || prefix == NULL || prefix[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    plen = strlen(prefix);
    if (plen + 2 + 2 * TMP_RANDOM_BYTES >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    for (int attempt = 0; attempt < TMP_CREATE_TRIES; attempt++) {
        uint8_t rnd[TMP_RANDOM_BYTES];

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        memcpy(out, prefix, plen);
        out[plen] = '-';
        ota_hex_encode(out + plen + 1, rnd, sizeof(rnd));
        rc = hook_event(hook, OTA_FS_STEP_MKDIR, out, NULL);
        if (rc != 0)
            return rc;
        if (mkdir(out, (mode_t)(mode & 07777)) != 0) {
            if (errno == EEXIST)
                continue;
            return ota_fs_errno(errno);
        }
        rc = ota_fs_dir_of(dir, out);
        if (rc == 0)
            rc = hook_event(hook, OTA_FS_STEP_DIRSYNC, out, NULL);
        if (rc == 0)
            rc = ota_fs_sync_dir(dir);
        return rc;
    }
    return OTA_ERR_EXISTS;
}

/* Whether name is "<something>.tmp-<16 hex>". */
static bool is_temp_name(const char *name)
{
    size_t n = strlen(name);
    size_t suffix = sizeof(".tmp-") - 1 + 2 * TMP_RANDOM_BYTES;

    if (n <= suffix || memcmp(name + n - suffix, ".tmp-", 5) != 0)
        return false;
    return strspn(name + n - 2 * TMP_RANDOM_BYTES, "0123456789abcdef") == 2 * TMP_RANDOM_BYTES;
}

int ota_fs_remove_temps(const char *dir, size_t *removed, const struct ota_fs_hook *hook)
{
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (removed != NULL)
        *removed = 0;
    if (dir == NULL)
        return OTA_ERR_INVALID_ARG;
    d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : ota_fs_errno(errno);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char path[PATH_MAX];

        if (!is_temp_name(e->d_name))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        rc = ota_fs_remove(path, hook);
        if (rc == 0 && removed != NULL)
            (*removed)++;
    }
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------------ lock */

int ota_fs_lock(int *fd, const char *path, unsigned mode)
{
    int e;

    if (fd == NULL)
        return OTA_ERR_INVALID_ARG;
    *fd = -1;
    if (path == NULL || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, (mode_t)(mode & 0777));
    if (*fd < 0)
        return ota_fs_errno(errno);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    e = errno;
    close(*fd);
    *fd = -1;
    errno = e;
    return e == EWOULDBLOCK ? OTA_ERR_LOCKED : OTA_ERR_IO;
}

void ota_fs_unlock(int *fd)
{
    if (fd == NULL || *fd < 0)
        return;
    close(*fd); /* releases the flock */
    *fd = -1;
}

const char *ota_fs_step_name(enum ota_fs_step step)
{
    switch (step) {
    case OTA_FS_STEP_CREATE:
        return "create";
    case OTA_FS_STEP_WRITE:
        return "write";
    case OTA_FS_STEP_FSYNC:
        return "fsync";
    case OTA_FS_STEP_RENAME:
        return "rename";
    case OTA_FS_STEP_DIRSYNC:
        return "dirsync";
    case OTA_FS_STEP_UNLINK:
        return "unlink";
    case OTA_FS_STEP_MKDIR:
        return "mkdir";
    case OTA_FS_STEP_COMMIT:
        return "commit";
    }
    return "unknown";
}
