/* Bounded reads and durable atomic file replacement (see otachain/fsutil.h).
 *
 * ota_fs_replace, step by step (the hook runs before each numbered step):
 *
 *   1 CREATE   open path.tmp-<16 hex> O_CREAT|O_EXCL|O_NOFOLLOW, fchmod mode
 *   2 WRITE    write all bytes (loop over EINTR and short writes)
 *   3 FSYNC    fsync + close the temporary
 *   4 RENAME   rename temporary over path        <- the commit point
 *   5 DIRSYNC  fsync the directory
 *
 * Invariants: before step 4 completes, path holds the old content and a
 * failure removes the temporary; after step 4, path holds the new content
 * and no temporary exists (a step-5 failure reports OTA_ERR_IO: the new
 * file is in place but may not survive a power cut).
 */
#include "otachain/fsutil.h"

#include <signal.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int ota_fs_hook_step(const struct ota_fs_hook *hook, enum ota_fs_step step, const char *path)
{
    if (hook != NULL && hook->fn != NULL && hook->fn(hook->ctx, step, path) != 0)
        return OTA_ERR_IO;
    return 0;
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

/* Directory part of path into dir (PATH_MAX bytes): "." if none. */
static int dir_of(char dir[PATH_MAX], const char *path)
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

/* Opens a fresh path.tmp-<hex> into tmp (PATH_MAX bytes). */
static int create_tmp(int *fd_out, char tmp[PATH_MAX], const char *path, unsigned mode)
{
    size_t plen = strlen(path);
    int attempt;

    if (plen + sizeof(".tmp-") - 1 + 2 * TMP_RANDOM_BYTES + 1 > PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    for (attempt = 0; attempt < TMP_CREATE_TRIES; attempt++) {
        uint8_t rnd[TMP_RANDOM_BYTES];
        char hex[2 * TMP_RANDOM_BYTES + 1];
        int fd;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        ota_hex_encode(hex, rnd, sizeof(rnd));
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp-", 5);
        memcpy(tmp + plen + 5, hex, sizeof(hex));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return ota_fs_errno(errno);
        }
        /* Exact mode whatever the umask. */
        if (fchmod(fd, (mode_t)(mode & 07777)) != 0) {
            int rc = ota_fs_errno(errno);

            close(fd);
            unlink(tmp);
            return rc;
        }
        *fd_out = fd;
        return 0;
    }
    return OTA_ERR_EXISTS;
}

int ota_fs_replace(const char *path, const void *data, size_t len, unsigned mode,
                   const struct ota_fs_hook *hook)
{
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    int fd = -1;
    int rc;

    if (path == NULL || path[0] == '\0' || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    rc = dir_of(dir, path);
    if (rc != 0)
        return rc;

    rc = ota_fs_hook_step(hook, OTA_FS_STEP_CREATE, path);
    if (rc != 0)
        return rc;
    rc = create_tmp(&fd, tmp, path, mode);
    if (rc != 0)
        return rc;

    rc = ota_fs_hook_step(hook, OTA_FS_STEP_WRITE, path);
    if (rc != 0)
        goto fail;
    rc = ota_fs_write_all(fd, data, len);
    if (rc != 0)
        goto fail;

    rc = ota_fs_hook_step(hook, OTA_FS_STEP_FSYNC, path);
    if (rc != 0)
        goto fail;
    if (fsync(fd) != 0) {
        rc = OTA_ERR_IO;
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0 && errno != EINTR) {
        rc = OTA_ERR_IO;
        goto fail;
    }

    rc = ota_fs_hook_step(hook, OTA_FS_STEP_RENAME, path);
    if (rc != 0)
        goto fail;
    if (rename(tmp, path) != 0) {
        rc = ota_fs_errno(errno);
        goto fail;
    }

    /* Committed: the new content is in place. */
    rc = ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, path);
    if (rc != 0)
        return rc;
    return ota_fs_sync_dir(dir);

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int ota_fs_remove(const char *path, const struct ota_fs_hook *hook)
{
    char dir[PATH_MAX];
    int rc;

    if (path == NULL || path[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    rc = dir_of(dir, path);
    if (rc != 0)
        return rc;
    rc = ota_fs_hook_step(hook, OTA_FS_STEP_UNLINK, path);
    if (rc != 0)
        return rc;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return 0;
        return ota_fs_errno(errno);
    }
    rc = ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, path);
    if (rc != 0)
        return rc;
    return ota_fs_sync_dir(dir);
}

/* mkdir one level; 0 if created or already a directory. created is set
 * when this call made it. */
static int mkdir_one(const char *p, unsigned mode, int *created)
{
    struct stat st;

    *created = 0;
    if (mkdir(p, (mode_t)(mode & 07777)) == 0) {
        *created = 1;
        return 0;
    }
    if (errno != EEXIST)
        return ota_fs_errno(errno);
    if (stat(p, &st) != 0)
        return ota_fs_errno(errno);
    return S_ISDIR(st.st_mode) ? 0 : OTA_ERR_EXISTS;
}

int ota_fs_mkdirs(const char *path, unsigned mode)
{
    char p[PATH_MAX];
    char dir[PATH_MAX];
    size_t n;
    size_t i;
    int created;
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
        rc = mkdir_one(p, mode, &created);
        if (rc == 0 && created) {
            rc = dir_of(dir, p);
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

int ota_fs_write_new(const char *path, const void *data, size_t len, unsigned mode)
{
    char dir[PATH_MAX];
    int fd;
    int rc;

    if (path == NULL || path[0] == '\0' || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    rc = dir_of(dir, path);
    if (rc != 0)
        return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ota_fs_errno(errno);
    if (fchmod(fd, (mode_t)(mode & 07777)) != 0) {
        rc = ota_fs_errno(errno);
        goto fail;
    }
    rc = ota_fs_write_all(fd, data, len);
    if (rc != 0)
        goto fail;
    if (fsync(fd) != 0) {
        rc = OTA_ERR_IO;
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0 && errno != EINTR) {
        rc = OTA_ERR_IO;
        goto fail;
    }
    return ota_fs_sync_dir(dir);
fail:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return rc;
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
    }
    return "unknown";
}

int ota_fs_fault_hook(void *ctx, enum ota_fs_step step, const char *path)
{
    struct ota_fs_fault *f = ctx;
    unsigned long n = ++f->steps;

    if (f->trace) {
        fprintf(stderr, "fs-step %lu %s %s\n", n, ota_fs_step_name(step), path);
        fflush(stderr);
    }
    if (f->crash_at != 0 && n == f->crash_at) {
        fflush(stdout);
        fflush(stderr);
        raise(SIGKILL);
    }
    return 0;
}

int ota_fs_fault_from_env(struct ota_fs_fault *f, bool *active, struct ota_detail *det)
{
#if OTA_TEST_HOOKS
    const char *crash = getenv("OTACHAIN_CRASH_AT");
    const char *trace = getenv("OTACHAIN_FS_TRACE");
    unsigned long long n = 0;

    memset(f, 0, sizeof(*f));
    *active = false;
    if (crash != NULL && crash[0] != '\0') {
        char *end = NULL;
        errno = 0;
        n = strtoull(crash, &end, 10);
        if (crash[0] < '1' || crash[0] > '9' || errno != 0 || *end != '\0' || n > (1ULL << 31)) {
            ota_detail_set(det, "OTACHAIN_CRASH_AT=%s: expected a step number 1..2^31", crash);
            return OTA_ERR_INVALID_ARG;
        }
    }
    f->crash_at = (unsigned long)n;
    f->trace = trace != NULL && trace[0] != '\0' && strcmp(trace, "0") != 0;
    *active = f->crash_at != 0 || f->trace;
    return 0;
#else
    /* A build without test hooks reads no environment variable. */
    (void)det;
    memset(f, 0, sizeof(*f));
    *active = false;
    return 0;
#endif
}
