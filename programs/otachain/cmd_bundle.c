/* otachain repo bundle: a proof bundle (docs/formats/bundle.md) for a
 * device's state, from a published repository, written to a file (an
 * offline update, or what a server would send). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "otachain/bundle.h"
#include "otachain/bundle_build.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"

int cmd_repo_bundle(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"root-version", CLI_VAL | CLI_REQ, 0, {0}}, {"checkpoint-size", CLI_VAL, 0, {0}},
        {"snapshot-version", CLI_VAL, 0, {0}},       {"targets-version", CLI_VAL, 0, {0}},
        {"out", CLI_VAL | CLI_REQ, 0, {0}},
    };
    uint64_t *fields[4];
    struct ota_bundle_request req;
    struct cli_args args;
    struct ota_fetcher *f = NULL;
    struct ota_bundle *b = NULL;
    struct ota_buf out;
    char pub[PATH_MAX];
    int rc = cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    memset(&req, 0, sizeof(req));
    fields[0] = &req.root_version;
    fields[1] = &req.checkpoint_size;
    fields[2] = &req.snapshot_version;
    fields[3] = &req.targets_version;
    for (size_t i = 0; i < 4; i++) {
        if (cli_val(&opts[i]) != NULL &&
            cli_parse_u64(fields[i], cli_val(&opts[i]), INT64_MAX) != 0) {
            ota_detail_set(det, "--%s: a decimal number below 2^63", opts[i].name);
            return CLI_ERR_USAGE;
        }
    }
    if (req.root_version == 0) {
        ota_detail_set(det, "--root-version: the device's root version, at least 1");
        return CLI_ERR_USAGE;
    }
    if (snprintf(pub, sizeof(pub), "%s/public", args.pos[0]) >= (int)sizeof(pub)) {
        ota_detail_set(det, "DIR: path too long");
        return CLI_ERR_USAGE;
    }
    rc = ota_fetcher_dir_new(&f, pub);
    if (rc != 0) {
        ota_detail_set(det, "%s", pub);
        return rc;
    }
    ota_buf_init(&out, OTA_BUNDLE_MAX_LEN);
    rc = ota_bundle_build(&out, f, &req, det);
    if (rc == 0) {
        /* Parsed again for the summary (and as a last check). */
        b = malloc(sizeof(*b));
        rc = b == NULL ? OTA_ERR_NOMEM : ota_bundle_parse(b, out.data, out.len, det);
    }
    if (rc == 0) {
        rc = ota_fs_replace(cli_val(&opts[4]), out.data, out.len, 0644, ctx->hook);
        if (rc != 0)
            ota_detail_set(det, "%s: cannot write the bundle", cli_val(&opts[4]));
    }
    if (rc == 0)
        cli_printf(stdout,
                   "bundle: %zu bytes, root v%" PRIu64 " to v%" PRIu64
                   " (%zu per-root checkpoints), checkpoint size %" PRIu64
                   "%s, %zu consistency and %zu inclusion proofs -> %s\n",
                   out.len, b->base_root, b->newest_root, b->nroot_checkpoints, b->base_size,
                   b->checkpoint.len ? " onwards" : " (no ledger)", b->nconsistency, b->ninclusion,
                   cli_val(&opts[4]));
    free(b);
    ota_buf_free(&out);
    ota_fetcher_free(f);
    return rc;
}
