/* Uploads to a content-addressed blob directory in parts (upload.h). */
#include "otachain/upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/checkpoint.h"
#include "otachain/crypto.h"

#define PARTIAL  ".partial"
#define HASH_BUF (1u << 20)

int ota_upload_range_parse(struct ota_upload_range *r, const char *h, size_t len,
                           uint64_t max_total, struct ota_detail *det)
{
    const char *dash;
    const char *slash;
    const char *end = h + len;

    memset(r, 0, sizeof(*r));
    if (h == NULL || len < 11 || memcmp(h, "bytes ", 6) != 0 || memchr(h, '\0', len) != NULL)
        goto bad;
    h += 6;
    dash = memchr(h, '-', (size_t)(end - h));
    slash = dash != NULL ? memchr(dash, '/', (size_t)(end - dash)) : NULL;
    if (dash == NULL || slash == NULL ||
        ota_checkpoint_parse_u64(&r->first, h, (size_t)(dash - h), UINT64_MAX) != 0 ||
        ota_checkpoint_parse_u64(&r->last, dash + 1, (size_t)(slash - dash - 1), UINT64_MAX) != 0 ||
        ota_checkpoint_parse_u64(&r->total, slash + 1, (size_t)(end - slash - 1), UINT64_MAX) != 0)
        goto bad;
    if (r->first > r->last || r->last >= r->total) {
        ota_detail_set(det, "Content-Range: the range must lie in the blob (first <= last < "
                            "total)");
        memset(r, 0, sizeof(*r));
        return OTA_ERR_FORMAT;
    }
    if (r->total > max_total) {
        ota_detail_set(det, "Content-Range: a blob of %llu bytes is above the cap of %llu",
                       (unsigned long long)r->total, (unsigned long long)max_total);
        memset(r, 0, sizeof(*r));
        return OTA_ERR_TOO_LARGE;
    }
    return 0;
bad:
    memset(r, 0, sizeof(*r));
    ota_detail_set(det, "Content-Range: expected 'bytes FIRST-LAST/TOTAL' (decimal)");
    return OTA_ERR_FORMAT;
}

bool ota_upload_name_valid(const char *name, bool *is_pack)
{
    size_t n = name != NULL ? strnlen(name, OTA_UPLOAD_NAME_MAX + 1) : 0;

    *is_pack = false;
    if (n != 64 && !(n == 69 && strcmp(name + 64, ".pack") == 0))
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    }
    *is_pack = n == 69;
    return true;
}

static int path_of(char out[PATH_MAX], const char *dir, const char *sub, const char *name,
                   uint64_t total)
{
    int n =
        total ? snprintf(out, PATH_MAX, "%s/%s/%s-%llu", dir, sub, name, (unsigned long long)total)
              : (sub[0] ? snprintf(out, PATH_MAX, "%s/%s/%s", dir, sub, name)
                        : snprintf(out, PATH_MAX, "%s/%s", dir, name));

    return n < 0 || n >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

/* The partial upload of name: its total (0: none) and bytes received. */
static int find_partial(uint64_t *total, uint64_t *received, const char *dir, const char *name,
                        struct ota_detail *det)
{
    char pdir[PATH_MAX];
    char path[PATH_MAX];
    size_t nl = strlen(name);
    struct dirent *e;
    struct stat st;
    DIR *d;
    int rc = path_of(pdir, dir, "", PARTIAL, 0);

    *total = 0;
    *received = 0;
    if (rc != 0)
        return rc;
    d = opendir(pdir);
    if (d == NULL)
        return errno == ENOENT ? 0 : ota_fs_errno(errno);
    while ((e = readdir(d)) != NULL) {
        uint64_t t;
        if (strncmp(e->d_name, name, nl) != 0 || e->d_name[nl] != '-' ||
            ota_checkpoint_parse_u64(&t, e->d_name + nl + 1, strlen(e->d_name + nl + 1),
                                     OTA_UPLOAD_MAX_TOTAL) != 0 ||
            t == 0)
            continue;
        rc = path_of(path, dir, PARTIAL, name, t);
        if (rc == 0 && lstat(path, &st) != 0)
            rc = ota_fs_errno(errno);
        if (rc == 0 && !S_ISREG(st.st_mode)) {
            ota_detail_set(det, "%s is not a regular file", path);
            rc = OTA_ERR_IO;
        }
        if (rc == 0) {
            *total = t;
            *received = (uint64_t)st.st_size;
        }
        break;
    }
    closedir(d);
    return rc;
}

int ota_upload_status(struct ota_upload_status *st, const char *dir, const char *name,
                      struct ota_detail *det)
{
    char path[PATH_MAX];
    struct stat sb;
    bool pack;
    int rc;

    memset(st, 0, sizeof(*st));
    if (!ota_upload_name_valid(name, &pack))
        return OTA_ERR_INVALID_ARG;
    rc = path_of(path, dir, "", name, 0);
    if (rc != 0)
        return rc;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        st->complete = true;
        st->received = st->total = (uint64_t)sb.st_size;
        return 0;
    }
    return find_partial(&st->total, &st->received, dir, name, det);
}

/* SHA-256 of the file at path (the whole file, streamed). */
static int hash_file(uint8_t out[OTA_SHA256_LEN], const char *path)
{
    struct ota_sha256_ctx *ctx = NULL;
    uint8_t *buf = malloc(HASH_BUF);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = buf == NULL ? OTA_ERR_NOMEM : fd < 0 ? ota_fs_errno(errno) : 0;

    if (rc == 0)
        rc = ota_sha256_init(&ctx);
    while (rc == 0) {
        ssize_t n = read(fd, buf, HASH_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = OTA_ERR_IO;
        else if (n == 0)
            break;
        else
            rc = ota_sha256_update(ctx, buf, (size_t)n);
    }
    if (rc == 0)
        rc = ota_sha256_final(out, ctx);
    ota_sha256_ctx_free(ctx);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int ota_upload_put(struct ota_upload_status *st, const char *dir, const char *name,
                   const struct ota_upload_range *r, const void *data, size_t len,
                   const struct ota_fs_hook *hook, struct ota_detail *det)
{
    char pdir[PATH_MAX];
    char part[PATH_MAX];
    char final[PATH_MAX];
    uint64_t total = 0;
    bool pack;
    int fd = -1;
    int rc;

    rc = ota_upload_status(st, dir, name, det);
    if (rc != 0 || st->complete)
        return rc;
    (void)ota_upload_name_valid(name, &pack);
    if (r->last - r->first + 1 != len || r->total == 0 || r->last >= r->total) {
        ota_detail_set(det, "the part holds %zu bytes, its range %llu", len,
                       (unsigned long long)(r->last - r->first + 1));
        return OTA_ERR_LENGTH_MISMATCH;
    }
    total = st->total;
    if (total != 0 && total != r->total) {
        ota_detail_set(det, "the upload of %s was started for %llu bytes, not %llu", name,
                       (unsigned long long)total, (unsigned long long)r->total);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (r->first != st->received) {
        ota_detail_set(det, "%llu bytes of %s are stored: the next part starts there",
                       (unsigned long long)st->received, name);
        return OTA_ERR_EXISTS;
    }
    rc = path_of(pdir, dir, "", PARTIAL, 0);
    if (rc == 0)
        rc = path_of(part, dir, PARTIAL, name, r->total);
    if (rc == 0)
        rc = path_of(final, dir, "", name, 0);
    if (rc == 0)
        rc = ota_fs_mkdirs(pdir, 0755, NULL);
    if (rc == 0 && r->first == 0)
        rc = ota_fs_hook_step(hook, OTA_FS_STEP_CREATE, part);
    if (rc != 0)
        return rc;
    fd = open(part, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        ota_detail_set(det, "%s: %s", part, strerror(errno));
        return ota_fs_errno(errno);
    }
    rc = ota_fs_hook_step(hook, OTA_FS_STEP_WRITE, part);
    if (rc == 0)
        rc = ota_fs_pwrite_all(fd, data, len, r->first);
    if (rc == 0)
        rc = ota_fs_hook_step(hook, OTA_FS_STEP_FSYNC, part);
    if (rc == 0 && fsync(fd) != 0)
        rc = OTA_ERR_IO;
    if (close(fd) != 0 && rc == 0)
        rc = OTA_ERR_IO;
    if (rc == 0 && r->first == 0) {
        rc = ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, pdir);
        if (rc == 0)
            rc = ota_fs_sync_dir(pdir);
    }
    if (rc != 0) {
        /* What is durable stays: the status tells where to go on. */
        ota_detail_set(det, "writing %s failed", part);
        return rc;
    }
    st->received = r->last + 1;
    st->total = r->total;
    if (st->received < r->total)
        return 0;
    if (!pack) {
        uint8_t got[OTA_SHA256_LEN];
        uint8_t want[OTA_SHA256_LEN];
        rc = hash_file(got, part);
        if (rc == 0)
            rc = ota_hex_decode(want, sizeof(want), name);
        if (rc == 0 && !ota_ct_equal(got, want, OTA_SHA256_LEN)) {
            char hex[OTA_SHA256_HEX_LEN + 1];
            ota_hex_encode(hex, got, sizeof(got));
            ota_detail_set(det, "the %llu bytes received hash to %s, not %s: dropped, start again",
                           (unsigned long long)r->total, hex, name);
            if (ota_fs_remove(part, hook) != 0)
                unlink(part);
            memset(st, 0, sizeof(*st));
            return OTA_ERR_HASH_MISMATCH;
        }
        if (rc != 0)
            return rc;
    }
    rc = ota_fs_hook_step(hook, OTA_FS_STEP_RENAME, final);
    if (rc == 0 && rename(part, final) != 0)
        rc = ota_fs_errno(errno);
    if (rc == 0)
        rc = ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, dir);
    if (rc == 0)
        rc = ota_fs_sync_dir(dir);
    if (rc != 0) {
        ota_detail_set(det, "completing %s failed", final);
        return rc;
    }
    st->complete = true;
    return 0;
}
