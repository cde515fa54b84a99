/* Outputs: see include/otachain/output.h.
 *
 * States of an output (invariant: committed only after verified, and
 * verified only if nothing was written after the re-read):
 *
 *   open ──write──► dirty ──verify ok──► verified ──commit──► committed
 *            ▲                  │            │
 *            └──────write───────┴────────────┘
 */
#include "otachain/output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#define PROC_MOUNTINFO "/proc/self/mountinfo"
#define PROC_CMDLINE   "/proc/cmdline"
#define TEXT_MAX       (1u << 20) /* mountinfo, cmdline */

struct ota_output {
    bool slot;
    bool resumed;
    bool verified;
    bool committed;
    int fd;
    uint64_t length;
    uint64_t id[2];
    char path[PATH_MAX];  /* PATH (file) or the slot */
    char write[PATH_MAX]; /* PATH.part (file) or the slot */
};

const char *ota_output_name(const struct ota_output *o)
{
    return o->write;
}

bool ota_output_resumed(const struct ota_output *o)
{
    return o->resumed;
}

void ota_output_identity(const struct ota_output *o, uint64_t id[2])
{
    id[0] = o->id[0];
    id[1] = o->id[1];
}

void ota_output_free(struct ota_output *o)
{
    if (o == NULL)
        return;
    if (o->fd >= 0)
        close(o->fd);
    free(o);
}

static int new_output(struct ota_output **out, const char *path, uint64_t length, bool slot,
                      struct ota_detail *det)
{
    struct ota_output *o;
    int n;

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        ota_detail_set(det, "no output path");
        return OTA_ERR_INVALID_ARG;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return OTA_ERR_NOMEM;
    o->fd = -1;
    o->slot = slot;
    o->length = length;
    n = snprintf(o->path, sizeof(o->path), "%s", path);
    if (n >= 0 && (size_t)n < sizeof(o->path))
        n = snprintf(o->write, sizeof(o->write), slot ? "%s" : "%s.part", path);
    if (n < 0 || (size_t)n >= sizeof(o->write)) {
        ota_detail_set(det, "%s: path too long", path);
        free(o);
        return OTA_ERR_INVALID_ARG;
    }
    *out = o;
    return 0;
}

/* The directory holding path ("." for a bare name). */
static void parent_dir(char out[PATH_MAX], const char *path)
{
    char *slash;

    snprintf(out, PATH_MAX, "%s", path);
    slash = strrchr(out, '/');
    if (slash == NULL)
        snprintf(out, PATH_MAX, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

int ota_output_file(struct ota_output **out, const char *path, uint64_t length,
                    struct ota_detail *det)
{
    struct ota_output *o;
    struct statvfs vfs;
    struct stat st;
    char dir[PATH_MAX];
    uint64_t have = 0;
    uint64_t avail;
    int rc = new_output(&o, path, length, false, det);

    if (rc != 0)
        return rc;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        ota_detail_set(det, "%s is %s", path,
                       S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        rc = OTA_ERR_INVALID_ARG;
        goto fail;
    }
    o->fd = open(o->write, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (o->fd >= 0 && fstat(o->fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == length) {
        o->resumed = true;
        have = (uint64_t)st.st_blocks * 512u;
    } else if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
    /* Space before the first byte: what the image needs beyond what an
     * earlier run's PATH.part already holds. */
    parent_dir(dir, path);
    if (statvfs(dir, &vfs) != 0) {
        ota_detail_set(det, "%s: %s", dir, strerror(errno));
        rc = ota_fs_errno(errno);
        goto fail;
    }
    avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (have < length && length - have > avail) {
        ota_detail_set(det, "%s: the image needs %" PRIu64 " more bytes, %s has %" PRIu64 " free",
                       o->write, length - have, dir, avail);
        rc = OTA_ERR_NO_SPACE;
        goto fail;
    }
    if (!o->resumed) {
        o->fd = open(o->write, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (o->fd < 0 || ftruncate(o->fd, (off_t)length) != 0 || fstat(o->fd, &st) != 0) {
            ota_detail_set(det, "creating %s: %s", o->write, strerror(errno));
            rc = ota_fs_errno(errno);
            goto fail;
        }
    }
    o->id[0] = (uint64_t)st.st_dev;
    o->id[1] = (uint64_t)st.st_ino;
    *out = o;
    return 0;
fail:
    ota_output_free(o);
    return rc;
}

/* Reads a small text file of the kernel's (or a test's) into a new
 * NUL-terminated string. */
static int read_text(char **out, const char *path, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ota_fs_read(&data, &len, path, TEXT_MAX);
    char *s;

    *out = NULL;
    if (rc != 0) {
        ota_detail_set(det, "reading %s", path);
        return rc;
    }
    s = realloc(data, len + 1);
    if (s == NULL) {
        free(data);
        return OTA_ERR_NOMEM;
    }
    s[len] = '\0';
    *out = s;
    return 0;
}

/* Whether path names the same slot as st (a block device: the same
 * device number; a file: the same inode). */
static bool same_slot(const struct stat *st, const char *path)
{
    struct stat o;

    if (stat(path, &o) != 0)
        return false;
    if (S_ISBLK(st->st_mode))
        return S_ISBLK(o.st_mode) && o.st_rdev == st->st_rdev;
    return S_ISREG(o.st_mode) && o.st_dev == st->st_dev && o.st_ino == st->st_ino;
}

/* The device the kernel command line boots from (root=/dev/X,
 * root=PARTUUID=..., UUID=, PARTLABEL=, LABEL=: through /dev/disk/by-*)
 * into out, or "" when there is none or it cannot be resolved. */
static int cmdline_root(char out[PATH_MAX], const char *cmdline, struct ota_detail *det)
{
    static const struct {
        const char *prefix;
        const char *dir;
    } forms[] = {{"PARTUUID=", "/dev/disk/by-partuuid/"},
                 {"UUID=", "/dev/disk/by-uuid/"},
                 {"PARTLABEL=", "/dev/disk/by-partlabel/"},
                 {"LABEL=", "/dev/disk/by-label/"}};
    char *text = NULL;
    const char *p;
    size_t n;
    int rc = read_text(&text, cmdline, det);

    out[0] = '\0';
    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* no /proc: nothing to learn there */
    if (rc != 0)
        return rc;
    for (p = text; *p != '\0';) {
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        n = strcspn(p, " \t\n");
        if (n > 5 && strncmp(p, "root=", 5) == 0) {
            const char *v = p + 5;
            size_t vn = n - 5;
            size_t k;

            for (k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
                size_t pl = strlen(forms[k].prefix);

                if (vn > pl && strncmp(v, forms[k].prefix, pl) == 0) {
                    snprintf(out, PATH_MAX, "%s%.*s", forms[k].dir, (int)(vn - pl), v + pl);
                    break;
                }
            }
            if (k == sizeof(forms) / sizeof(forms[0]) && v[0] == '/')
                snprintf(out, PATH_MAX, "%.*s", (int)vn, v);
        }
        p += n;
    }
    free(text);
    return 0;
}

static int check_booted(const struct stat *st, const char *path, const struct ota_slot_opts *o,
                        struct ota_detail *det)
{
    char root[PATH_MAX];
    struct stat rs;
    int rc;

    if (o->booted != NULL && same_slot(st, o->booted)) {
        ota_detail_set(det, "%s is the booted slot (%s)", path, o->booted);
        return OTA_ERR_SLOT_BOOTED;
    }
    if (!S_ISBLK(st->st_mode))
        return 0;
    if (stat("/", &rs) == 0 && rs.st_dev == st->st_rdev) {
        ota_detail_set(det, "%s holds the root file system", path);
        return OTA_ERR_SLOT_BOOTED;
    }
    rc = cmdline_root(root, o->cmdline != NULL ? o->cmdline : PROC_CMDLINE, det);
    if (rc != 0)
        return rc;
    if (root[0] != '\0' && same_slot(st, root)) {
        ota_detail_set(det, "%s is the booted slot (root=%s on the kernel command line)", path,
                       root);
        return OTA_ERR_SLOT_BOOTED;
    }
    return 0;
}

/* A block device slot in the mount table: by device number, or by a
 * mount source naming the same device. */
static int check_mounted(const struct stat *st, const char *path, const struct ota_slot_opts *o,
                         struct ota_detail *det)
{
    const char *file = o->mountinfo != NULL ? o->mountinfo : PROC_MOUNTINFO;
    char *text = NULL;
    char *line, *next;
    char dev[32];
    int rc = read_text(&text, file, det);

    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc != 0)
        return rc;
    snprintf(dev, sizeof(dev), "%u:%u", major(st->st_rdev), minor(st->st_rdev));
    rc = 0;
    for (line = text; rc == 0 && line != NULL && *line != '\0'; line = next) {
        char *f[6] = {NULL};
        char *sep, *src, *p;
        int k = 0;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        /* id parent major:minor root mountpoint options ... - fstype source */
        for (p = line; k < 6 && *p != '\0'; k++) {
            f[k] = p;
            p += strcspn(p, " ");
            if (*p != '\0')
                *p++ = '\0';
        }
        if (k < 5)
            continue;
        sep = strstr(p, " - ");
        if (sep == NULL && strncmp(p, "- ", 2) == 0)
            sep = p - 1;
        src = NULL;
        if (sep != NULL) {
            src = sep + 3;
            src += strcspn(src, " ");
            if (*src == ' ')
                src++;
            src[strcspn(src, " ")] = '\0';
        }
        if (strcmp(f[2], dev) == 0 || (src != NULL && src[0] == '/' && same_slot(st, src))) {
            ota_detail_set(det, "%s is mounted on %s", path, f[4]);
            rc = OTA_ERR_SLOT_MOUNTED;
        }
    }
    free(text);
    return rc;
}

/* A file slot backing a loop device (whose file system may be mounted). */
static int check_loop_backing(const char *path, struct ota_detail *det)
{
    char real[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (realpath(path, real) == NULL)
        return 0;
    d = opendir("/sys/block");
    if (d == NULL)
        return 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char f[PATH_MAX];
        uint8_t *data = NULL;
        size_t len = 0;

        if (strncmp(e->d_name, "loop", 4) != 0)
            continue;
        snprintf(f, sizeof(f), "/sys/block/%.64s/loop/backing_file", e->d_name);
        if (ota_fs_read(&data, &len, f, PATH_MAX) != 0)
            continue;
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\0'))
            len--;
        if (len == strlen(real) && memcmp(data, real, len) == 0) {
            ota_detail_set(det, "%s is the backing file of /dev/%.64s", path, e->d_name);
            rc = OTA_ERR_SLOT_MOUNTED;
        }
        free(data);
    }
    closedir(d);
    return rc;
}

int ota_output_slot(struct ota_output **out, const char *path, uint64_t length,
                    const struct ota_slot_opts *opts, struct ota_detail *det)
{
    static const struct ota_slot_opts none;
    const struct ota_slot_opts *so = opts != NULL ? opts : &none;
    struct ota_output *o;
    struct stat st;
    uint64_t size = 0;
    int rc = new_output(&o, path, length, true, det);

    if (rc != 0)
        return rc;
    if (stat(path, &st) != 0) {
        ota_detail_set(det, "slot %s: %s", path, strerror(errno));
        rc = ota_fs_errno(errno);
        goto fail;
    }
    if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
        ota_detail_set(det, "slot %s is neither a block device nor a regular file", path);
        rc = OTA_ERR_INVALID_ARG;
        goto fail;
    }
    rc = check_booted(&st, path, so, det);
    if (rc == 0)
        rc =
            S_ISBLK(st.st_mode) ? check_mounted(&st, path, so, det) : check_loop_backing(path, det);
    if (rc != 0)
        goto fail;
    /* A block device opened exclusively: refused (EBUSY) while mounted or
     * held by the kernel, and nobody mounts it while we write. */
    o->fd = open(path, O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : O_NOFOLLOW));
    if (o->fd < 0) {
        int e = errno;

        if (e == EBUSY) {
            ota_detail_set(det, "%s is held by another user of the device", path);
            rc = OTA_ERR_SLOT_MOUNTED;
        } else {
            ota_detail_set(det, "slot %s: %s", path, strerror(e));
            rc = ota_fs_errno(e);
        }
        goto fail;
    }
    if (fstat(o->fd, &st) != 0 || (S_ISBLK(st.st_mode) && ioctl(o->fd, BLKGETSIZE64, &size) != 0)) {
        ota_detail_set(det, "slot %s: %s", path, strerror(errno));
        rc = OTA_ERR_IO;
        goto fail;
    }
    if (S_ISREG(st.st_mode))
        size = (uint64_t)st.st_size;
    if (size < length) {
        ota_detail_set(det, "slot %s holds %" PRIu64 " bytes, the image needs %" PRIu64, path, size,
                       length);
        rc = OTA_ERR_NO_SPACE;
        goto fail;
    }
    o->resumed = true;
    o->id[0] = S_ISBLK(st.st_mode) ? (uint64_t)st.st_rdev : (uint64_t)st.st_dev;
    o->id[1] = S_ISBLK(st.st_mode) ? 0 : (uint64_t)st.st_ino;
    *out = o;
    return 0;
fail:
    ota_output_free(o);
    return rc;
}

static int in_bounds(const struct ota_output *o, size_t len, uint64_t off, struct ota_detail *det)
{
    if (off > o->length || (uint64_t)len > o->length - off) {
        ota_detail_set(det, "%s: bytes [%" PRIu64 ", +%zu) are beyond the image's %" PRIu64,
                       o->write, off, len, o->length);
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

int ota_output_write(struct ota_output *o, const void *data, size_t len, uint64_t off,
                     struct ota_detail *det)
{
    int rc = in_bounds(o, len, off, det);

    if (rc != 0)
        return rc;
    o->verified = false;
    if (ota_fs_pwrite_all(o->fd, data, len, off) != 0) {
        ota_detail_set(det, "writing %s at %" PRIu64 ": %s", o->write, off, strerror(errno));
        return errno == ENOSPC ? OTA_ERR_NO_SPACE : OTA_ERR_IO;
    }
    return 0;
}

int ota_output_read(struct ota_output *o, void *buf, size_t len, uint64_t off,
                    struct ota_detail *det)
{
    int rc = in_bounds(o, len, off, det);

    if (rc != 0)
        return rc;
    if (ota_fs_pread_all(o->fd, buf, len, off) != 0) {
        ota_detail_set(det, "reading %s at %" PRIu64 ": %s", o->write, off, strerror(errno));
        return OTA_ERR_IO;
    }
    return 0;
}

int ota_output_sync(struct ota_output *o, struct ota_detail *det)
{
    if (fdatasync(o->fd) != 0) {
        ota_detail_set(det, "syncing %s: %s", o->write, strerror(errno));
        return OTA_ERR_IO;
    }
    return 0;
}

int ota_output_verify(struct ota_output *o, const uint8_t sha256[OTA_SHA256_LEN], uint8_t *buf,
                      size_t buf_len, struct ota_detail *det)
{
    struct ota_sha256_ctx *h = NULL;
    uint8_t got[OTA_SHA256_LEN];
    uint64_t off = 0;
    int rc;

    o->verified = false;
    if (buf == NULL || buf_len == 0)
        return OTA_ERR_INVALID_ARG;
    rc = ota_output_sync(o, det);
    if (rc != 0)
        return rc;
    /* The hash must read the medium, not what the cache kept of our
     * writes: drop the (now clean) pages first. */
    (void)posix_fadvise(o->fd, 0, 0, POSIX_FADV_DONTNEED);
    rc = ota_sha256_init(&h);
    while (rc == 0 && off < o->length) {
        size_t n = o->length - off < buf_len ? (size_t)(o->length - off) : buf_len;

        rc = ota_output_read(o, buf, n, off, det);
        if (rc == 0)
            rc = ota_sha256_update(h, buf, n);
        off += n;
    }
    if (rc == 0)
        rc = ota_sha256_final(got, h);
    ota_sha256_ctx_free(h);
    if (rc != 0)
        return rc;
    if (!ota_ct_equal(got, sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "%s: the %" PRIu64 " bytes read back do not match the signed SHA-256",
                       o->write, o->length);
        return OTA_ERR_HASH_MISMATCH;
    }
    o->verified = true;
    return 0;
}

int ota_output_commit(struct ota_output *o, struct ota_detail *det)
{
    char dir[PATH_MAX];

    if (!o->verified) {
        ota_detail_set(det, "%s: not verified since the last write", o->write);
        return OTA_ERR_INVALID_ARG;
    }
    if (o->slot || o->committed)
        return 0;
    parent_dir(dir, o->path);
    if (fsync(o->fd) != 0 || rename(o->write, o->path) != 0 || ota_fs_sync_dir(dir) != 0) {
        ota_detail_set(det, "renaming %s to %s: %s", o->write, o->path, strerror(errno));
        return OTA_ERR_IO;
    }
    o->committed = true;
    return 0;
}

int ota_output_discard(struct ota_output *o, struct ota_detail *det)
{
    if (o->slot || o->committed)
        return 0;
    if (unlink(o->write) != 0 && errno != ENOENT) {
        ota_detail_set(det, "removing %s: %s", o->write, strerror(errno));
        return OTA_ERR_IO;
    }
    return 0;
}
