/* otachain fetch: the device's data-plane download (TUF refresh, the
 * hash-pinned chunk index, then a reference delta or the missing chunks),
 * and otachain delta make: a reference delta into DIR/public/deltas. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/audit.h"
#include "otachain/chunk_index.h"
#include "otachain/delta_make.h"
#include "otachain/dp_fetch.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/output.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"
#include "repo.h"

static int copy_path(char out[PATH_MAX], const char *fmt, const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, fmt, a, b);

    return n < 0 || n >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

int cmd_fetch(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"url", CLI_VAL | CLI_REQ, 0, {0}},
        {"trusted-root", CLI_VAL | CLI_REQ, 0, {0}},
        {"state", CLI_VAL | CLI_REQ, 0, {0}},
        {"target", CLI_VAL | CLI_REQ, 0, {0}},
        {"current", CLI_VAL, 0, {0}},
        {"out", CLI_VAL, 0, {0}},
        {"no-delta", 0, 0, {0}},
        {"current-length", CLI_VAL, 0, {0}},
        {"slot", CLI_VAL, 0, {0}},
        {"booted-slot", CLI_VAL, 0, {0}},
        CLI_HTTP_OPTS,
    };
    struct cli_args args;
    struct ota_http_policy hopts;
    uint64_t cur_length = 0;
    struct ota_fetcher *f = NULL;
    struct ota_tuf_client *c = NULL;
    struct ota_tuf_client_opts copts;
    struct ota_output *out = NULL;
    struct ota_slot_opts so;
    struct ota_dp_fetch_cfg cfg;
    struct ota_dp_fetch_stats st;
    struct ota_dp_tuf_index isrc;
    const struct ota_tuf_target *t;
    uint8_t *root = NULL;
    size_t root_len = 0;
    char tuf_dir[PATH_MAX];
    char dp_dir[PATH_MAX];
    const char *url, *state, *target, *current, *out_path, *slot;
    char *tname = NULL;
    int cur_fd = -1;
    int rc = cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 0, argc, argv, det);

    if (rc != 0)
        return rc;
    memset(&st, 0, sizeof(st));
    if (cli_val(&opts[7]) != NULL) {
        if (cli_val(&opts[4]) == NULL ||
            cli_parse_u64(&cur_length, cli_val(&opts[7]), UINT64_C(1) << 40) != 0 ||
            cur_length == 0) {
            ota_detail_set(det, "--current-length: a byte count of 1..2^40, with --current");
            return CLI_ERR_USAGE;
        }
    }
    out_path = cli_val(&opts[5]);
    slot = cli_val(&opts[8]);
    if ((out_path == NULL) == (slot == NULL)) {
        ota_detail_set(det, "give exactly one of --out FILE and --slot DEVICE");
        return CLI_ERR_USAGE;
    }
    if (cli_val(&opts[9]) != NULL && slot == NULL) {
        ota_detail_set(det, "--booted-slot goes with --slot");
        return CLI_ERR_USAGE;
    }
    rc = cli_http_policy(&hopts, &opts[10], ctx, det);
    if (rc == 0)
        rc = cli_check_url(cli_val(&opts[0]), "--url", det);
    if (rc != 0)
        return rc;
    url = cli_val(&opts[0]);
    state = cli_val(&opts[2]);
    target = cli_val(&opts[3]);
    current = cli_val(&opts[4]);
    /* Arguments that cannot work are usage errors, found before the
     * first byte is fetched. */
    if (current != NULL) {
        struct stat cst;

        cur_fd = open(current, O_RDONLY | O_CLOEXEC);
        if (cur_fd < 0) {
            ota_detail_set(det, "--current %s: %s", current, strerror(errno));
            return ota_fs_errno(errno);
        }
        if (fstat(cur_fd, &cst) != 0 || (!S_ISREG(cst.st_mode) && cur_length == 0)) {
            ota_detail_set(det,
                           "--current %s is not a regular file: give --current-length N, the "
                           "length of the image it holds",
                           current);
            close(cur_fd);
            return CLI_ERR_USAGE;
        }
    }
    if (out_path != NULL) {
        struct stat ost;

        if (stat(out_path, &ost) == 0 && !S_ISREG(ost.st_mode)) {
            ota_detail_set(det, "--out %s is %s: give the path of the file to write", out_path,
                           S_ISDIR(ost.st_mode) ? "a directory" : "not a regular file");
            rc = CLI_ERR_USAGE;
            goto out;
        }
    }
    if (copy_path(tuf_dir, "%s/%s", state, "tuf") != 0 ||
        copy_path(dp_dir, "%s/%s", state, "dp") != 0) {
        ota_detail_set(det, "--state: path too long");
        rc = CLI_ERR_USAGE;
        goto out;
    }
    rc = ota_fs_read(&root, &root_len, cli_val(&opts[1]), OTA_TUF_ROOT_MAX_LEN);
    if (rc != 0) {
        ota_detail_set(det, "trusted root %s", cli_val(&opts[1]));
        goto out;
    }
    if (ota_fs_mkdirs(tuf_dir, 0700, NULL) != 0 || ota_fs_mkdirs(dp_dir, 0700, NULL) != 0) {
        ota_detail_set(det, "creating the state directory %s", state);
        rc = OTA_ERR_IO;
        goto out;
    }
    /* The round: the TUF refresh, the index and the image. */
    ota_http_round_start(&hopts);
    rc = ota_fetcher_http_new(&f, url, &hopts, det);
    if (rc != 0)
        goto out;
    memset(&copts, 0, sizeof(copts));
    copts.state_dir = tuf_dir;
    copts.hook = ctx->hook;
    rc = ota_tuf_client_open(&c, &copts, root, root_len, det);
    if (rc == 0)
        rc = ota_tuf_client_refresh(c, f, ctx->now, det);
    if (rc != 0)
        goto out;
    t = ota_tuf_find_target(ota_tuf_client_trusted(c, OTA_TUF_TARGETS), target);
    if (t == NULL) {
        ota_detail_set(det, "%s is not a signed target", target);
        rc = OTA_ERR_TARGET_UNKNOWN;
        goto out;
    }
    if (!json_is_string(json_object_get(t->custom, "index"))) {
        ota_detail_set(det, "target %s names no chunk index (custom.index)", t->path);
        rc = OTA_ERR_FORMAT;
        goto out;
    }
    /* The output: its space (or the slot's size, and that it is neither
     * booted nor in use) is checked before the first byte of the image. */
    memset(&so, 0, sizeof(so));
    so.booted = cli_val(&opts[9]);
    rc = slot != NULL ? ota_output_slot(&out, slot, t->length, &so, det)
                      : ota_output_file(&out, out_path, t->length, det);
    if (rc != 0)
        goto out;
    rc = ota_tuf_target_file_path(&tname, t);
    if (rc != 0)
        goto out;
    memset(&isrc, 0, sizeof(isrc));
    isrc.client = c;
    isrc.fetcher = f;
    isrc.image = t;
    isrc.dir = dp_dir;
    memset(&cfg, 0, sizeof(cfg));
    cfg.image_length = t->length;
    cfg.image_sha256 = t->sha256;
    cfg.image_target = tname; /* as served: <dir>/<sha256>.<name> */
    cfg.get_index = ota_dp_tuf_index_open;
    cfg.index_ctx = &isrc;
    cfg.fetcher = f;
    cfg.current_fd = cur_fd;
    cfg.current_length = cur_length;
    cfg.base_url = url;
    cfg.out = out;
    cfg.state_dir = dp_dir;
    cfg.no_delta = opts[6].n > 0;
    cfg.http = &hopts;
    rc = ota_dp_fetch(&st, &cfg, det);
    if (st.delta_tried && st.delta_error != 0)
        fprintf(stderr,
                "otachain: warning: reference delta refused (%s: %s); fell back to chunks\n",
                ota_errname(st.delta_error), st.delta_detail);
    printf("path: %s%s\n",
           st.delta_used   ? "delta"
           : st.full_image ? "full image"
                           : "chunks",
           st.delta_used && st.delta_resumed ? " (resumed)" : "");
    printf("index: %s\n", st.index_used ? "fetched" : "not needed");
    printf("bytes fetched: %" PRIu64 " (delta %" PRIu64 ", planned pack ranges %" PRIu64
           ", full image %" PRIu64 ")\n",
           st.bytes_fetched + st.full_bytes, st.delta_bytes, st.range_bytes, st.full_bytes);
    printf("requests: %" PRIu32 "\n", st.requests);
    if (st.http_version >= 20) /* HTTP/2, HTTP/3: no minor version */
        printf("protocol: HTTP/%u, %" PRIu32 " connection%s\n", st.http_version / 10,
               st.connections, st.connections == 1 ? "" : "s");
    else if (st.http_version != 0)
        printf("protocol: HTTP/%u.%u, %" PRIu32 " connection%s\n", st.http_version / 10,
               st.http_version % 10, st.connections, st.connections == 1 ? "" : "s");
    printf("ranges: %" PRIu32 "\n", st.ranges);
    if (st.index_used)
        printf("chunks: %" PRIu32 " total, %" PRIu32 " already verified, %" PRIu32
               " copied, %" PRIu32 " fetched, %" PRIu32 " from the delta\n",
               st.chunks, st.chunks_done, st.chunks_copied, st.chunks_fetched,
               st.chunks_from_delta);
    if (rc == 0)
        printf("target %s: %" PRIu64 " bytes verified -> %s\n", target, t->length,
               slot != NULL ? slot : out_path);
out:
    if (cur_fd >= 0)
        close(cur_fd);
    free(tname);
    ota_output_free(out);
    ota_tuf_client_free(c);
    ota_fetcher_free(f);
    free(root);
    return rc;
}

/* The image target of release P/V in md: the one whose path starts with
 * "P/V/" and whose custom names a chunk index. */
static const struct ota_tuf_target *release_image(const struct ota_tuf_meta *md, const char *pv)
{
    size_t n = strlen(pv);

    if (md == NULL)
        return NULL;
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];

        if (strncmp(t->path, pv, n) == 0 && t->path[n] == '/' && t->custom != NULL &&
            json_is_string(json_object_get(t->custom, "index")))
            return t;
    }
    return NULL;
}

/* The delta goes through the one atomic writer (include/otachain/fsutil.h). */
static int writer_sink(void *ctx, const void *data, size_t len)
{
    return ota_fs_writer_write(ctx, data, len);
}

int cmd_delta_make(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"release", CLI_VAL | CLI_REQ, 0, {0}},
        {"from", CLI_VAL, 0, {0}},
        {"from-version", CLI_VAL, 0, {0}},
        {"frame-size", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct ota_delta_make_opts mo;
    struct repo r;
    bool opened = false;
    const struct ota_tuf_target *to;
    const struct ota_tuf_meta *md;
    struct ota_delta_make_stats ms;
    struct ota_fs_writer w = {.fd = -1};
    uint8_t *old_img = NULL, *new_img = NULL;
    size_t old_len = 0, new_len = 0;
    uint8_t from_sha[OTA_SHA256_LEN];
    char from_hex[OTA_SHA256_HEX_LEN + 1], to_hex[OTA_SHA256_HEX_LEN + 1];
    char path[PATH_MAX], dir[PATH_MAX], pv[PATH_MAX];
    const char *rel, *from, *from_version;
    int rc = cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    memset(&mo, 0, sizeof(mo));
    if (cli_val(&opts[3]) != NULL &&
        (cli_parse_u64(&mo.frame_size, cli_val(&opts[3]), UINT64_C(1) << 40) != 0 ||
         mo.frame_size < 4096)) {
        ota_detail_set(det, "--frame-size: op-stream bytes per frame, at least 4096");
        return CLI_ERR_USAGE;
    }
    rel = cli_val(&opts[0]);
    from = cli_val(&opts[1]);
    from_version = cli_val(&opts[2]);
    if ((from == NULL) == (from_version == NULL)) {
        ota_detail_set(det, "give exactly one of --from IMAGE and --from-version V");
        return CLI_ERR_USAGE;
    }
    if (strchr(rel, '/') == NULL) {
        ota_detail_set(det, "--release '%s': PRODUCT/VERSION", rel);
        return CLI_ERR_USAGE;
    }
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        return rc;
    opened = true;
    md = r.lib.targets != NULL ? r.lib.targets : r.lib.pend_targets_md;
    to = release_image(md, rel);
    if (to == NULL && r.lib.pend_targets_md != NULL)
        to = release_image(r.lib.pend_targets_md, rel);
    if (to == NULL) {
        ota_detail_set(det, "no chunked image target under %s/ in targets", rel);
        rc = OTA_ERR_TARGET_UNKNOWN;
        goto out;
    }
    ota_hex_encode(to_hex, to->sha256, OTA_SHA256_LEN);
    rc = repo_path(path, &r, "blobs/%s", to_hex);
    if (rc == 0)
        rc = ota_fs_read(&new_img, &new_len, path, (size_t)REPO_MAX_IMAGE);
    if (rc == 0 && (new_len != to->length || ota_sha256(from_sha, new_img, new_len) != 0 ||
                    !ota_ct_equal(from_sha, to->sha256, OTA_SHA256_LEN))) {
        ota_detail_set(det, "%s does not match target %s", path, to->path);
        rc = OTA_ERR_HASH_MISMATCH;
    }
    if (rc != 0)
        goto out;
    if (from_version != NULL) {
        const struct ota_tuf_target *ft;
        const char *slash = strchr(rel, '/');

        if (snprintf(pv, sizeof(pv), "%.*s/%s", (int)(slash - rel), rel, from_version) >=
            (int)sizeof(pv)) {
            rc = CLI_ERR_USAGE;
            goto out;
        }
        ft = release_image(md, pv);
        if (ft == NULL) {
            ota_detail_set(det, "no chunked image target under %s/ in targets", pv);
            rc = OTA_ERR_TARGET_UNKNOWN;
            goto out;
        }
        ota_hex_encode(from_hex, ft->sha256, OTA_SHA256_LEN);
        rc = repo_path(path, &r, "blobs/%s", from_hex);
        if (rc != 0)
            goto out;
        from = path;
    }
    rc = ota_fs_read(&old_img, &old_len, from, OTA_DELTA_MAKE_OLD_MAX);
    if (rc != 0) {
        ota_detail_set(det, "reading %s", from);
        goto out;
    }
    rc = ota_sha256(from_sha, old_img, old_len);
    if (rc != 0)
        goto out;
    ota_hex_encode(from_hex, from_sha, OTA_SHA256_LEN);
    rc = repo_path(dir, &r, "public/deltas/%s", from_hex);
    if (rc == 0)
        rc = repo_path(path, &r, "public/deltas/%s/%s", from_hex, to_hex);
    if (rc == 0)
        rc = ota_fs_mkdirs(dir, 0755, ctx->hook);
    if (rc != 0)
        goto out;
    rc = ota_fs_writer_open(&w, path, 0644, 0, ctx->hook);
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = ota_delta_make(writer_sink, &w, &ms, old_img, old_len, new_img, new_len, &mo, det);
    if (rc != 0)
        goto out;
    rc = ota_fs_writer_commit(&w);
    if (rc != 0) {
        ota_detail_set(det, "writing %s: %s", path, strerror(errno));
        goto out;
    }
    printf("delta %s -> %s: %" PRIu64 " bytes (image %zu bytes)\n", from_hex, to->path,
           ms.delta_length, new_len);
    printf("wrote %s\n", path);
out:
    ota_fs_writer_abort(&w);
    free(old_img);
    free(new_img);
    if (opened)
        repo_close(&r);
    return rc;
}

int cmd_audit(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"index", CLI_VAL | CLI_REQ, 0, {0}},
        {"index-sha256", CLI_VAL, 0, {0}},
        {"chunks", CLI_VAL, 0, {0}},
    };
    struct cli_args args;
    struct ota_chunk_index *idx = NULL;
    struct ota_audit_report rep;
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t n = 16;
    int fd = -1;
    int rc = cli_parse(opts, 3, &args, 1, 1, argc, argv, det);

    (void)ctx;
    if (rc != 0)
        return rc;
    if (cli_val(&opts[2]) != NULL && strcmp(cli_val(&opts[2]), "all") != 0 &&
        (cli_parse_u64(&n, cli_val(&opts[2]), UINT32_MAX) != 0 || n == 0)) {
        ota_detail_set(det, "--chunks: a count of 1..%u, or all", UINT32_MAX);
        return CLI_ERR_USAGE;
    }
    if (cli_val(&opts[2]) != NULL && strcmp(cli_val(&opts[2]), "all") == 0)
        n = UINT32_MAX;
    rc = ota_fs_read(&data, &len, cli_val(&opts[0]), OTA_CHUNK_INDEX_MAX_LEN);
    if (rc != 0) {
        ota_detail_set(det, "chunk index %s", cli_val(&opts[0]));
        return rc;
    }
    if (cli_val(&opts[1]) != NULL) {
        /* The hash the signed targets metadata pins the index to. */
        uint8_t want[OTA_SHA256_LEN], got[OTA_SHA256_LEN];

        if (strlen(cli_val(&opts[1])) != OTA_SHA256_HEX_LEN ||
            ota_hex_decode(want, OTA_SHA256_LEN, cli_val(&opts[1])) != 0) {
            ota_detail_set(det, "--index-sha256: 64 hex digits");
            rc = CLI_ERR_USAGE;
            goto out;
        }
        rc = ota_sha256(got, data, len);
        if (rc == 0 && !ota_ct_equal(want, got, OTA_SHA256_LEN)) {
            ota_detail_set(det, "chunk index %s is not the one pinned (--index-sha256)",
                           cli_val(&opts[0]));
            rc = OTA_ERR_HASH_MISMATCH;
        }
        if (rc != 0)
            goto out;
    }
    rc = ota_chunk_index_parse(&idx, data, len, det);
    if (rc != 0) {
        ota_detail_prefix(det, cli_val(&opts[0]));
        goto out;
    }
    fd = open(args.pos[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ota_detail_set(det, "%s: %s", args.pos[0], strerror(errno));
        rc = ota_fs_errno(errno);
        goto out;
    }
    rc = ota_audit_run(&rep, fd, idx, (uint32_t)n, ota_audit_random_system, NULL, det);
    if (rc == OTA_ERR_HASH_MISMATCH) {
        const struct ota_chunk_entry *e = &idx->chunks[rep.bad_chunk];

        ota_detail_set(det,
                       "%s: chunk %" PRIu32 " (image bytes [%" PRIu64 ", %" PRIu64
                       ")) does not match the index (%" PRIu32 " checked before it)",
                       args.pos[0], rep.bad_chunk, rep.bad_offset, rep.bad_offset + e->length,
                       rep.checked);
    } else if (rc != 0) {
        ota_detail_prefix(det, args.pos[0]);
    }
    if (rc == 0)
        printf("%s: %" PRIu32 " chunk check%s (%s of %" PRIu32 " chunks, %" PRIu64
               " bytes read): all match the index\n",
               args.pos[0], rep.checked, rep.checked == 1 ? "" : "s",
               n >= idx->count ? "every one" : "random draws", idx->count, rep.bytes);
out:
    if (fd >= 0)
        close(fd);
    ota_chunk_index_free(idx);
    free(data);
    return rc;
}
