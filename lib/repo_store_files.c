/* The repository directory as a repository store (see
 * otachain/repo_store.h): every path is a file below the directory,
 * written through the file-system layer. */
#include "otachain/repo_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK ((size_t)64 * 1024)

struct files_store {
    struct ota_repo_store base; /* first */
    char dir[PATH_MAX];
    const struct ota_fs_hook *hook;
    struct ota_log_store *log;
};

static struct files_store *fs_of(struct ota_repo_store *s)
{
    return (struct files_store *)s;
}

bool ota_repo_path_valid(const char *path)
{
    size_t n;

    if (path == NULL || path[0] == '\0' || path[0] == '/')
        return false;
    n = strlen(path);
    if (n > OTA_REPO_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = path[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == '~' || c == '/'))
            return false;
        /* No empty, "." or ".." component. */
        if (c == '/' && (i + 1 == n || path[i + 1] == '/'))
            return false;
        if ((i == 0 || path[i - 1] == '/') && c == '.' &&
            (i + 1 == n || path[i + 1] == '/' ||
             (path[i + 1] == '.' && (i + 2 == n || path[i + 2] == '/'))))
            return false;
    }
    return true;
}

/* dir/path into out; OTA_ERR_INVALID_ARG for a bad path. */
static int full(char out[PATH_MAX], const struct files_store *f, const char *path,
                struct ota_detail *det)
{
    if (!ota_repo_path_valid(path)) {
        ota_detail_set(det, "bad repository path '%s'", path != NULL ? path : "");
        return OTA_ERR_INVALID_ARG;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", f->dir, path) >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    return 0;
}

/* Makes the directory of p (a full path) when missing. */
static int parent_dirs(const struct files_store *f, const char *p, struct ota_detail *det)
{
    char dir[PATH_MAX];
    int rc = ota_fs_dir_of(dir, p);

    if (rc == 0)
        rc = ota_fs_mkdirs(dir, 0755, f->hook);
    if (rc != 0)
        ota_detail_set(det, "creating the directory of %s: %s", p, ota_strerror(rc));
    return rc;
}

static int files_get(struct ota_repo_store *s, const char *path, struct ota_buf *out,
                     struct ota_detail *det)
{
    char p[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = full(p, fs_of(s), path, det);

    if (rc == 0)
        rc = ota_fs_read(&data, &len, p, out->max > out->len ? out->max - out->len : 0);
    if (rc == 0)
        rc = ota_buf_append(out, data, len);
    else if (rc != OTA_ERR_NOT_FOUND)
        ota_detail_set(det, "%s: %s", p, ota_strerror(rc));
    free(data);
    return rc;
}

static int files_stat(struct ota_repo_store *s, const char *path, bool *exists, uint64_t *len,
                      struct ota_detail *det)
{
    char p[PATH_MAX];
    struct stat st;
    int rc = full(p, fs_of(s), path, det);

    *exists = false;
    *len = 0;
    if (rc != 0)
        return rc;
    if (lstat(p, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : ota_fs_errno(errno);
    *exists = S_ISREG(st.st_mode);
    *len = *exists ? (uint64_t)st.st_size : 0;
    return 0;
}

static int files_put(struct ota_repo_store *s, const char *path, const void *data, size_t len,
                     struct ota_detail *det)
{
    struct files_store *f = fs_of(s);
    char p[PATH_MAX];
    int rc = full(p, f, path, det);

    if (rc == 0)
        rc = parent_dirs(f, p, det);
    if (rc != 0)
        return rc;
    rc = ota_fs_replace(p, data, len, 0644, f->hook);
    if (rc != 0)
        ota_detail_set(det, "writing %s: %s", p, strerror(errno));
    return rc;
}

static int files_remove(struct ota_repo_store *s, const char *path, struct ota_detail *det)
{
    struct files_store *f = fs_of(s);
    char p[PATH_MAX];
    int rc = full(p, f, path, det);

    if (rc == 0)
        rc = ota_fs_remove(p, f->hook);
    if (rc != 0)
        ota_detail_set(det, "removing %s: %s", p, ota_strerror(rc));
    return rc;
}

static int files_move(struct ota_repo_store *s, const char *from, const char *to,
                      struct ota_detail *det)
{
    struct files_store *f = fs_of(s);
    char a[PATH_MAX];
    char b[PATH_MAX];
    int rc = full(a, f, from, det);

    if (rc == 0)
        rc = full(b, f, to, det);
    if (rc == 0)
        rc = parent_dirs(f, b, det);
    if (rc != 0)
        return rc;
    rc = ota_fs_rename(a, b, f->hook);
    if (rc != 0 && rc != OTA_ERR_NOT_FOUND)
        ota_detail_set(det, "moving %s to %s: %s", a, b, strerror(errno));
    return rc;
}

static int files_copy(struct ota_repo_store *s, const char *from, const char *to,
                      const uint8_t *want_sha256, const uint64_t *want_len, struct ota_detail *det)
{
    struct files_store *f = fs_of(s);
    struct ota_sha256_ctx *sctx = NULL;
    struct ota_fs_writer w;
    uint8_t *chunk = NULL;
    uint8_t sha[OTA_SHA256_LEN];
    char a[PATH_MAX];
    char b[PATH_MAX];
    uint64_t total = 0;
    struct stat st;
    int in = -1;
    int rc = full(a, f, from, det);

    memset(&w, 0, sizeof(w));
    w.fd = -1;
    if (rc == 0)
        rc = full(b, f, to, det);
    if (rc == 0)
        rc = parent_dirs(f, b, det);
    if (rc != 0)
        return rc;
    in = open(a, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        rc = ota_fs_errno(errno);
        ota_detail_set(det, "%s: %s", a, strerror(errno));
        return rc;
    }
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > OTA_REPO_MAX_BLOB) {
        ota_detail_set(det, "%s: not a regular file of at most %" PRIu64 " bytes", a,
                       OTA_REPO_MAX_BLOB);
        rc = OTA_ERR_TOO_LARGE;
        goto out;
    }
    chunk = malloc(COPY_CHUNK);
    rc = chunk == NULL ? OTA_ERR_NOMEM : ota_sha256_init(&sctx);
    if (rc == 0)
        rc = ota_fs_writer_open(&w, b, 0644, 0, f->hook);
    if (rc != 0) {
        ota_detail_set(det, "writing %s: %s", b, ota_strerror(rc));
        goto out;
    }
    for (;;) {
        ssize_t got = read(in, chunk, COPY_CHUNK);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ota_detail_set(det, "reading %s: %s", a, strerror(errno));
            rc = OTA_ERR_IO;
            goto out;
        }
        if (got == 0)
            break;
        total += (uint64_t)got;
        if (total > OTA_REPO_MAX_BLOB) {
            ota_detail_set(det, "%s: more than %" PRIu64 " bytes", a, OTA_REPO_MAX_BLOB);
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        rc = ota_sha256_update(sctx, chunk, (size_t)got);
        if (rc == 0)
            rc = ota_fs_writer_write(&w, chunk, (size_t)got);
        if (rc != 0) {
            ota_detail_set(det, "writing %s: %s", b, strerror(errno));
            goto out;
        }
    }
    rc = ota_sha256_final(sha, sctx);
    if (rc != 0)
        goto out;
    if (want_len != NULL && total != *want_len) {
        ota_detail_set(det, "%s: %" PRIu64 " bytes, expected %" PRIu64, a, total, *want_len);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto out;
    }
    if (want_sha256 != NULL && !ota_ct_equal(sha, want_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "%s: content does not match its SHA-256", a);
        rc = OTA_ERR_HASH_MISMATCH;
        goto out;
    }
    rc = ota_fs_writer_commit(&w);
    if (rc != 0)
        ota_detail_set(det, "writing %s: %s", b, strerror(errno));
out:
    ota_fs_writer_abort(&w);
    close(in);
    free(chunk);
    ota_sha256_ctx_free(sctx);
    return rc;
}

static int files_log(struct ota_repo_store *s, struct ota_log_store **out, bool create,
                     struct ota_detail *det)
{
    struct files_store *f = fs_of(s);
    char p[PATH_MAX];
    struct stat st;
    int rc;

    *out = NULL;
    if (f->log != NULL) {
        *out = f->log;
        return 0;
    }
    rc = full(p, f, "ledger.db", det);
    if (rc != 0)
        return rc;
    if (!create && lstat(p, &st) != 0)
        return 0;
    rc = ota_log_store_sqlite_open(&f->log, p, f->hook, det);
    if (rc == 0)
        *out = f->log;
    return rc;
}

static void files_close(struct ota_repo_store *s)
{
    struct files_store *f = fs_of(s);

    ota_log_store_close(f->log);
    free(f);
}

static const struct ota_repo_store_ops files_ops = {
    .get = files_get,
    .stat = files_stat,
    .put = files_put,
    .remove = files_remove,
    .move = files_move,
    .copy = files_copy,
    .log = files_log,
    .close = files_close,
};

int ota_repo_files_open(struct ota_repo_store **out, const char *dir,
                        const struct ota_fs_hook *hook, struct ota_detail *det)
{
    struct files_store *f;
    size_t n;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n + 1 + OTA_REPO_PATH_MAX >= PATH_MAX) {
        ota_detail_set(det, "repository directory '%s' is too long", dir);
        return OTA_ERR_TOO_LARGE;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return OTA_ERR_NOMEM;
    f->base.ops = &files_ops;
    memcpy(f->dir, dir, n);
    f->dir[n] = '\0';
    f->hook = hook;
    *out = &f->base;
    return 0;
}

void ota_repo_store_close(struct ota_repo_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}
