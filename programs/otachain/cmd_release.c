/* otachain release add | sign | merge */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/buf.h"
#include "otachain/chunk_build.h"
#include "otachain/chunk_index.h"
#include "otachain/fsutil.h"
#include "otachain/release.h"
#include "otachain/tuf_sign.h"
#include "repo.h"

#define MAX_NAME 128

/* File name of the target: [A-Za-z0-9._+~-], not "." or "..". */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_NAME || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == '~'))
            return false;
    }
    return true;
}

/* --hardware "H[,H...]" into rel (the release module's grammar and cap).
 * The count is checked first and reported as such: a thousand ids must
 * not push the reason off the line. */
static int parse_hardware(struct ota_release *rel, const char *s, struct ota_detail *det)
{
    size_t n = 1;
    int rc;

    for (const char *p = s; *p != '\0'; p++)
        n += *p == ',';
    if (n > OTA_RELEASE_MAX_HWIDS) {
        ota_detail_set(det,
                       "--hardware: %zu hardware ids given, at most %d per release (split the "
                       "boards into several releases, or give them a common id)",
                       n, OTA_RELEASE_MAX_HWIDS);
        return CLI_ERR_USAGE;
    }
    for (const char *p = s;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        rc = ota_release_add_hardware(rel, p, len, det);
        if (rc != 0) {
            ota_detail_prefix(det, "--hardware H[,H...]");
            return rc == OTA_ERR_NOMEM ? rc : CLI_ERR_USAGE;
        }
        if (end == NULL)
            return 0;
        p = end;
    }
}

#define READ_BLOCK (1u << 20) /* release add reads the image in blocks of this */

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
                         : "not a regular file";
}

/* Opens IMAGE for reading: a regular file or a block device (a slot),
 * refused as anything else before it is opened (opening a FIFO with no
 * writer would block forever; a character device or a pipe has no fixed
 * content to sign). *size is its length (a block device's size). The kind
 * is checked again on the descriptor, in case the path changed. */
static int open_image(int *fd_out, uint64_t *size, const char *image, struct ota_detail *det)
{
    struct stat st;
    int fd = -1;
    int rc = 0;

    *fd_out = -1;
    *size = 0;
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        if ((pass == 0 ? stat(image, &st) : fstat(fd, &st)) != 0) {
            rc = ota_fs_errno(errno);
            ota_detail_set(det, "IMAGE %s: %s", image, strerror(errno));
        } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            ota_detail_set(det, "IMAGE %s is %s: give a regular file or a block device", image,
                           file_kind(st.st_mode));
            rc = CLI_ERR_USAGE;
        } else if (pass == 0) {
            /* O_NONBLOCK: should the path turn into a FIFO after stat,
             * open still returns at once (and fstat refuses it). */
            fd = open(image, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            if (fd < 0) {
                rc = ota_fs_errno(errno);
                ota_detail_set(det, "IMAGE %s: %s", image, strerror(errno));
            }
        }
    }
    if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        rc = OTA_ERR_IO;
    if (rc == 0 && S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
    } else if (rc == 0) {
        off_t end = lseek(fd, 0, SEEK_END);

        if (end < 0 || lseek(fd, 0, SEEK_SET) != 0)
            rc = OTA_ERR_IO;
        *size = end > 0 ? (uint64_t)end : 0;
    }
    if (rc == OTA_ERR_IO)
        ota_detail_set(det, "IMAGE %s: %s", image, strerror(errno));
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        *size = 0;
        return rc;
    }
    *fd_out = fd;
    return 0;
}

static int pack_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame,
                     size_t frame_len)
{
    (void)e;
    return ota_fs_writer_write(ctx, frame, frame_len);
}

/* Reads IMAGE (img_fd from open_image, img_size bytes, at most
 * REPO_MAX_IMAGE; the caller closes it) once, and
 * from that one read: copies it into blobs/<image-sha256> (unless that
 * blob exists), chunks, hashes and compresses it into
 * blobs/<image-sha256>.pack, and writes its index to blobs/<index-sha256>;
 * all atomic (ota_fs_writer). The image's SHA-256 and
 * length come out of the index (the builder hashes the whole image as it
 * goes); so do the index's own. The pack is published at
 * public/chunks/<image-sha256>.pack (repo.c). */
static int build_chunks(uint8_t idx_sha[OTA_SHA256_LEN], uint64_t *idx_len,
                        uint8_t img_sha[OTA_SHA256_LEN], uint64_t *img_len, const struct repo *r,
                        const char *image, int img_fd, uint64_t img_size, struct ota_detail *det)
{
    const struct ota_fs_hook *hook = r->ctx->hook;
    struct ota_chunk_build_opts bo;
    struct ota_chunk_build *b = NULL;
    struct ota_chunk_index *idx = NULL;
    struct ota_fs_writer pack_w, blob_w;
    struct ota_buf ib;
    struct stat st;
    char pack[PATH_MAX], ptmp[PATH_MAX];
    char blob[PATH_MAX], btmp[PATH_MAX];
    char ipath[PATH_MAX];
    char hex[OTA_SHA256_HEX_LEN + 1];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint8_t *buf = NULL;
    int rc;

    memset(&pack_w, 0, sizeof(pack_w));
    memset(&blob_w, 0, sizeof(blob_w));
    pack_w.fd = blob_w.fd = -1;
    ota_buf_init(&ib, (size_t)OTA_CHUNK_INDEX_MAX_LEN);
    if (img_size > REPO_MAX_IMAGE) {
        ota_detail_set(det, "%s: %" PRIu64 " bytes, limit %" PRIu64, image, img_size,
                       REPO_MAX_IMAGE);
        rc = OTA_ERR_TOO_LARGE;
        goto out;
    }
    ota_chunk_build_opts_for(&bo, img_size);
    bo.threads = ncpu < 1                                            ? 1u
                 : (unsigned long)ncpu > OTA_CHUNK_BUILD_MAX_THREADS ? OTA_CHUNK_BUILD_MAX_THREADS
                                                                     : (unsigned)ncpu;
    /* Both are named by the image's hash, known once it is read. */
    rc = repo_path(ptmp, r, "blobs/.pack");
    if (rc == 0)
        rc = repo_path(btmp, r, "blobs/.image");
    if (rc == 0)
        rc = ota_fs_writer_open(&blob_w, btmp, 0644, 0, hook);
    if (rc == 0)
        rc = ota_fs_writer_open(&pack_w, ptmp, 0644, 0, hook);
    if (rc != 0) {
        ota_detail_set(det, "creating temporary files in %s/blobs: %s", r->dir, strerror(errno));
        goto out;
    }
    buf = malloc(READ_BLOCK);
    if (buf == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = ota_chunk_build_new(&b, &bo, pack_sink, &pack_w, det);
    while (rc == 0) {
        ssize_t got = read(img_fd, buf, READ_BLOCK);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ota_detail_set(det, "reading %s: %s", image, strerror(errno));
            rc = OTA_ERR_IO;
            break;
        }
        if (got == 0)
            break;
        rc = ota_fs_writer_write(&blob_w, buf, (size_t)got);
        if (rc != 0) {
            ota_detail_set(det, "writing %s: %s", blob_w.tmp, strerror(errno));
            break;
        }
        rc = ota_chunk_build_update(b, buf, (size_t)got, det);
    }
    if (rc == 0)
        rc = ota_chunk_build_finish(&ib, b, det);
    if (rc != 0) {
        ota_detail_prefix(det, "chunking the image");
        goto out;
    }
    rc = ota_chunk_index_parse(&idx, ib.data, ib.len, det);
    if (rc != 0)
        goto out;
    /* A file that grew or shrank while it was read is not one image. */
    if (idx->image_length != img_size) {
        ota_detail_set(det, "%s changed while it was read", image);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto out;
    }
    memcpy(img_sha, idx->image_sha256, OTA_SHA256_LEN);
    *img_len = idx->image_length;
    ota_hex_encode(hex, img_sha, OTA_SHA256_LEN);
    rc = repo_path(blob, r, "blobs/%s", hex);
    if (rc == 0)
        rc = repo_path(pack, r, "blobs/%s.pack", hex);
    if (rc != 0)
        goto out;
    /* The image: a blob already there (same name, so same bytes) stays. */
    if (stat(blob, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != *img_len) {
        rc = ota_fs_writer_commit_to(&blob_w, blob);
        if (rc != 0) {
            ota_detail_set(det, "writing %s: %s", blob, strerror(errno));
            goto out;
        }
    }
    rc = ota_fs_writer_commit_to(&pack_w, pack);
    if (rc != 0) {
        ota_detail_set(det, "writing %s: %s", pack, strerror(errno));
        goto out;
    }
    rc = ota_sha256(idx_sha, ib.data, ib.len);
    if (rc != 0)
        goto out;
    *idx_len = ib.len;
    ota_hex_encode(hex, idx_sha, OTA_SHA256_LEN);
    rc = repo_path(ipath, r, "blobs/%s", hex);
    if (rc == 0)
        rc = repo_write(r, ipath, ib.data, ib.len, det);
out:
    ota_fs_writer_abort(&blob_w);
    ota_fs_writer_abort(&pack_w);
    ota_chunk_build_free(b);
    ota_chunk_index_free(idx);
    free(ota_buf_steal(&ib, NULL));
    free(buf);
    return rc;
}

/* "published in targets v2" or "pending in targets v3". */
static const char *where(const struct repo *r, const struct ota_tuf_target *t, char *out, size_t n)
{
    if (r->lib.targets != NULL && ota_tuf_find_target(r->lib.targets, t->path) != NULL)
        snprintf(out, n, "published in targets v%" PRIu64, r->lib.targets->version);
    else
        snprintf(out, n, "pending in targets v%" PRIu64, r->lib.pend_targets_md->version);
    return out;
}

/* Warns (does not refuse: a maintenance release for an older branch is
 * legitimate) when rel is not newer, or has a lower security version,
 * than a release of the same product already in the targets: devices that
 * run that release will refuse this one (not_newer, security_floor). */
static void warn_older(const struct repo *r, const struct ota_release *rel)
{
    const struct ota_tuf_meta *md = r->lib.pend_targets_md;
    const struct ota_tuf_target *newest = NULL, *floor = NULL;
    uint64_t max_sv = 0;
    struct ota_release *other = malloc(sizeof(*other));
    struct ota_semver newest_v;
    char in[64];

    if (other == NULL)
        return;
    memset(&newest_v, 0, sizeof(newest_v));
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];

        if (t->custom == NULL || ota_release_from_target(other, t, NULL) != 0 ||
            strcmp(other->product, rel->product) != 0)
            continue;
        if (newest == NULL || ota_semver_compare(&other->version, &newest_v) > 0) {
            newest = t;
            newest_v = other->version;
        }
        if (floor == NULL || other->security_version > max_sv) {
            floor = t;
            max_sv = other->security_version;
        }
    }
    if (newest != NULL && ota_semver_compare(&rel->version, &newest_v) <= 0)
        cli_warn("%s %s is not newer than %s (%s): devices running that release will not "
                 "install this one (not_newer)",
                 rel->product, rel->version.text, newest->path, where(r, newest, in, sizeof(in)));
    if (floor != NULL && rel->security_version < max_sv)
        cli_warn("%s %s has security version %" PRIu64 ", below the %" PRIu64
                 " of %s (%s): devices that installed that release refuse this one "
                 "(security_floor)",
                 rel->product, rel->version.text, rel->security_version, max_sv, floor->path,
                 where(r, floor, in, sizeof(in)));
    free(other);
}

int cmd_release_add(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"product", CLI_VAL | CLI_REQ, 0, {0}},
        {"hardware", CLI_VAL | CLI_REQ, 0, {0}},
        {"version", CLI_VAL | CLI_REQ, 0, {0}},
        {"security-version", CLI_VAL | CLI_REQ, 0, {0}},
        {"name", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct repo r;
    bool opened = false;
    struct ota_release *rel = NULL;
    json_t *custom = NULL;
    json_t *entry = NULL;
    json_t *tmap;
    json_t *sigs;
    const char *product, *version, *name, *image;
    char path[OTA_TUF_MAX_PATH + 1];
    const char *ipath;
    const char *secarg;
    char ihex[OTA_SHA256_HEX_LEN + 1];
    uint8_t isha[OTA_SHA256_LEN];
    uint64_t ilen = 0;
    json_t *ientry = NULL;
    char hex[OTA_SHA256_HEX_LEN + 1];
    char exp[OTA_TUF_TIME_SIZE];
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t len = 0;
    size_t dropped;
    uint64_t old_v, new_v;
    uint64_t img_size = 0;
    int img_fd = -1;
    int n;
    int rc = cli_parse(opts, 5, &args, 2, 2, argc, argv, det);

    if (rc != 0)
        return rc;
    image = args.pos[1];
    product = cli_val(&opts[0]);
    version = cli_val(&opts[2]);
    name = cli_val(&opts[4]);
    if (name == NULL) {
        const char *slash = strrchr(image, '/');

        name = slash != NULL ? slash + 1 : image;
    }
    rel = calloc(1, sizeof(*rel));
    if (rel == NULL)
        return OTA_ERR_NOMEM;
    if (ota_release_check_product(product, strlen(product), det) != 0) {
        ota_detail_prefix(det, "--product");
        rc = CLI_ERR_USAGE;
        goto out;
    }
    memcpy(rel->product, product, strlen(product) + 1);
    if (ota_semver_parse(&rel->version, version, strlen(version), det) != 0) {
        ota_detail_prefix(det, "--version: not SemVer 2.0.0 (e.g. 1.2.3, 2.0.0-rc.1)");
        rc = CLI_ERR_USAGE;
        goto out;
    }
    /* "007" is refused, not read as 7: a leading zero is a typo or an
     * octal habit, and signed data must say what the operator meant. */
    secarg = cli_val(&opts[3]);
    if (cli_parse_u64(&rel->security_version, secarg, OTA_RELEASE_MAX_SECVER) != 0 ||
        (secarg[0] == '0' && secarg[1] != '\0')) {
        ota_detail_set(det,
                       "--security-version '%s': an integer from 0 to %" PRIu64
                       ", without sign or leading zeros",
                       secarg, OTA_RELEASE_MAX_SECVER);
        rc = CLI_ERR_USAGE;
        goto out;
    }
    if (!valid_name(name)) {
        ota_detail_set(det, "target name '%s': 1-%d characters of A-Z a-z 0-9 . _ - + ~ (--name)",
                       name, MAX_NAME);
        rc = CLI_ERR_USAGE;
        goto out;
    }
    rc = parse_hardware(rel, cli_val(&opts[1]), det);
    if (rc != 0)
        goto out;
    n = snprintf(path, sizeof(path), "%s/%s/%s", product, version, name);
    if (n >= 0 && n < (int)sizeof(path))
        n = snprintf(rel->index, sizeof(rel->index), "%s.cidx", path);
    if (n < 0 || n >= (int)sizeof(rel->index)) {
        ota_detail_set(det, "target path too long");
        rc = CLI_ERR_USAGE;
        goto out;
    }
    ipath = rel->index;

    rc = open_image(&img_fd, &img_size, image, det);
    if (rc != 0)
        goto out;
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        goto out;
    opened = true;
    rc = ota_repo_pending_targets(&r.lib, det);
    if (rc != 0)
        goto out;
    /* The image first: that is what the operator named. */
    if (ota_tuf_find_target(r.lib.pend_targets_md, path) != NULL) {
        ota_detail_set(det,
                       "target %s already exists in targets v%" PRIu64
                       ": a release is never replaced; give it a new --version (or --name)",
                       path, r.lib.pend_targets_md->version);
        rc = OTA_ERR_EXISTS;
        goto out;
    }
    if (ota_tuf_find_target(r.lib.pend_targets_md, ipath) != NULL) {
        ota_detail_set(det,
                       "target %s would get the chunk index %s, which already exists in "
                       "targets v%" PRIu64 ": give another --name",
                       path, ipath, r.lib.pend_targets_md->version);
        rc = OTA_ERR_EXISTS;
        goto out;
    }
    warn_older(&r, rel);
    /* The image into blobs/<sha256>, its chunk index and pack
     * (docs/formats/repository.md), from one read of IMAGE. */
    rc = build_chunks(isha, &ilen, sha, &len, &r, image, img_fd, img_size, det);
    if (rc != 0)
        goto out;
    ota_hex_encode(hex, sha, OTA_SHA256_LEN);
    ota_hex_encode(ihex, isha, OTA_SHA256_LEN);
    rc = ota_release_to_custom(&custom, rel, det);
    if (rc != 0)
        goto out;
    entry = json_pack("{s:I,s:{s:s},s:o}", "length", (json_int_t)len, "hashes", "sha256", hex,
                      "custom", custom);
    custom = NULL; /* the entry owns it (also when json_pack failed) */
    ientry = json_pack("{s:I,s:{s:s}}", "length", (json_int_t)ilen, "hashes", "sha256", ihex);
    tmap = json_object_get(json_object_get(r.lib.pend_targets, "signed"), "targets");
    sigs = json_object_get(r.lib.pend_targets, "signatures");
    if (entry == NULL || ientry == NULL ||
        ota_tuf_format_time(exp, ctx->now + r.lib.expires[OTA_TUF_TARGETS]) != 0 ||
        json_object_set(tmap, path, entry) != 0 || json_object_set(tmap, ipath, ientry) != 0 ||
        json_object_set_new(json_object_get(r.lib.pend_targets, "signed"), "expires",
                            json_string(exp)) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    /* The signed content changed: old signatures are worthless now. */
    dropped = json_array_size(sigs);
    json_array_clear(sigs);
    /* A version logged by a publish that failed after its ledger commit
     * cannot carry other content: move on to the first unlogged one. */
    old_v = r.lib.pend_targets_md->version;
    rc = ota_repo_unlogged_version(&r.lib, OTA_TUF_TARGETS, old_v, &new_v, det);
    if (rc != 0)
        goto out;
    if (new_v != old_v && json_object_set_new(json_object_get(r.lib.pend_targets, "signed"),
                                              "version", json_integer((json_int_t)new_v)) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = ota_repo_set_pending(&r.lib, OTA_TUF_TARGETS, r.lib.pend_targets, det);
    if (rc != 0)
        goto out;
    if (new_v != old_v)
        cli_printf(stdout,
                   "targets v%" PRIu64
                   " is in the ledger from a publish that did not complete: the "
                   "pending targets are now v%" PRIu64 "\n",
                   old_v, new_v);
    cli_printf(stdout,
               "added target %s (%" PRIu64 " bytes, sha256 %s) to pending targets v%" PRIu64 "\n",
               path, len, hex, r.lib.pend_targets_md->version);
    cli_printf(stdout, "added target %s (chunk index, %" PRIu64 " bytes, sha256 %s)\n", ipath, ilen,
               ihex);
    if (dropped > 0)
        cli_printf(stdout,
                   "dropped %zu signature(s) from the pending targets: the signed content changed, "
                   "signers must sign again\n",
                   dropped);
    repo_print_pending(&r, stdout, false, true);
out:
    if (img_fd >= 0)
        close(img_fd);
    json_decref(ientry);
    json_decref(entry);
    json_decref(custom);
    free(rel);
    if (opened)
        repo_close(&r);
    return rc;
}

static int need_pending_targets(const struct repo *r, struct ota_detail *det)
{
    if (r->lib.pend_targets == NULL || r->lib.pend_targets_stale) {
        ota_detail_set(det, "no pending targets in %s (otachain release add)", r->dir);
        return OTA_ERR_NOT_FOUND;
    }
    if (ota_repo_next_root(&r->lib) == NULL) {
        ota_detail_set(det, "%s has no root", r->dir);
        return OTA_ERR_NO_TRUSTED_ROOT;
    }
    return 0;
}

int cmd_release_sign(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"key", CLI_VAL | CLI_REQ, 0, {0}}};
    struct cli_args args;
    struct repo r;
    struct repo_key k;
    const struct ota_tuf_meta *root;
    int rc = cli_parse(opts, 1, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        return rc;
    memset(&k, 0, sizeof(k));
    rc = need_pending_targets(&r, det);
    if (rc == 0)
        rc = repo_key_load(&k, cli_val(&opts[0]), true, det);
    if (rc != 0)
        goto out;
    root = ota_repo_next_root(&r.lib);
    if (!ota_repo_role_has_key(root, OTA_TUF_TARGETS, k.keyid)) {
        ota_detail_set(det, "key %s (%s) is not a targets key of root v%" PRIu64, k.keyid, k.path,
                       root->version);
        rc = OTA_ERR_KEY_NOT_IN_ROLE;
        goto out;
    }
    rc = ota_tuf_sign(r.lib.pend_targets, k.signer);
    if (rc == 0)
        rc = ota_repo_set_pending(&r.lib, OTA_TUF_TARGETS, r.lib.pend_targets, det);
    if (rc != 0)
        goto out;
    cli_printf(stdout, "signed pending targets v%" PRIu64 " with key %s\n",
               r.lib.pend_targets_md->version, k.keyid);
    repo_print_pending(&r, stdout, false, true);
out:
    repo_key_clear(&k);
    repo_close(&r);
    return rc;
}

int cmd_release_merge(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_args args;
    struct repo r;
    const struct ota_tuf_meta *roots[1];
    size_t total = 0;
    int rc = cli_parse(NULL, 0, &args, 2, CLI_MAX_POS, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        return rc;
    rc = need_pending_targets(&r, det);
    if (rc != 0)
        goto out;
    roots[0] = ota_repo_next_root(&r.lib);
    for (size_t i = 1; i < args.npos; i++) {
        size_t added = 0;

        rc = repo_merge_file(&r, OTA_TUF_TARGETS, args.pos[i], roots, 1, &added, det);
        if (rc != 0)
            goto out;
        cli_printf(stdout, "merged %zu signature(s) from %s\n", added, args.pos[i]);
        total += added;
    }
    if (total > 0)
        rc = ota_repo_set_pending(&r.lib, OTA_TUF_TARGETS, r.lib.pend_targets, det);
    if (rc == 0)
        repo_print_pending(&r, stdout, false, true);
out:
    repo_close(&r);
    return rc;
}
