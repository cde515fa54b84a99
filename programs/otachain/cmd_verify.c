/* otachain repo verify: the TUF client workflow against a published
 * repository (URL or directory), or a proof bundle, as a device would run
 * it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "otachain/bundle.h"
#include "otachain/crypto.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"

/* $XDG_STATE_HOME/otachain/verify/<id> (~/.local/state when unset). */
static int default_state(char out[PATH_MAX], const char *source, struct ota_detail *det)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    uint8_t sha[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    int n;
    int rc = ota_sha256(sha, source, strlen(source));

    if (rc != 0)
        return rc;
    ota_hex_encode(hex, sha, OTA_SHA256_LEN);
    hex[16] = '\0';
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, PATH_MAX, "%s/otachain/verify/%s", xdg, hex);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, PATH_MAX, "%s/.local/state/otachain/verify/%s", home, hex);
    else {
        ota_detail_set(det, "neither XDG_STATE_HOME nor HOME is set: give --state DIR");
        return CLI_ERR_USAGE;
    }
    if (n < 0 || n >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    return 0;
}

int cmd_repo_verify(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"url", CLI_VAL, 0, {0}},
        {"dir", CLI_VAL, 0, {0}},
        {"trusted-root", CLI_VAL | CLI_REQ, 0, {0}},
        {"state", CLI_VAL, 0, {0}},
        {"target", CLI_VAL, 0, {0}},
        {"out", CLI_VAL, 0, {0}},
        {"bundle", CLI_VAL, 0, {0}},
        CLI_HTTP_OPTS,
    };
    struct cli_args args;
    struct ota_http_policy hopts;
    struct ota_fetcher *f = NULL;
    struct ota_tuf_client *c = NULL;
    struct ota_tuf_client_opts copts;
    struct ota_bundle_request req;
    struct ota_bundle *bundle = NULL;
    uint8_t *bundle_bytes = NULL;
    size_t bundle_len = 0;
    uint8_t *root = NULL;
    size_t root_len = 0;
    char abs_dir[PATH_MAX];
    char state[PATH_MAX];
    const char *url, *dir, *target, *out, *source, *bundle_path;
    const struct ota_tuf_meta *md[OTA_TUF_ROLE_COUNT];
    char floor[OTA_TUF_TIME_SIZE];
    int rc = cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 0, argc, argv, det);

    if (rc == 0)
        rc = cli_http_policy(&hopts, &opts[7], ctx, det);
    if (rc == 0 && cli_val(&opts[0]) != NULL)
        rc = cli_check_url(cli_val(&opts[0]), "--url", det);
    if (rc != 0)
        return rc;
    url = cli_val(&opts[0]);
    dir = cli_val(&opts[1]);
    target = cli_val(&opts[4]);
    out = cli_val(&opts[5]);
    bundle_path = cli_val(&opts[6]);
    if ((url != NULL) + (dir != NULL) + (bundle_path != NULL) != 1) {
        ota_detail_set(det, "give exactly one of --url URL, --dir DIR and --bundle FILE");
        return CLI_ERR_USAGE;
    }
    if (bundle_path != NULL && (cli_val(&opts[3]) == NULL || target != NULL)) {
        ota_detail_set(det, "--bundle FILE needs --state DIR, and downloads no target");
        return CLI_ERR_USAGE;
    }
    if ((target == NULL) != (out == NULL)) {
        ota_detail_set(det, "--target PATH and --out FILE go together");
        return CLI_ERR_USAGE;
    }
    if (dir != NULL) {
        if (realpath(dir, abs_dir) == NULL) {
            ota_detail_set(det, "%s: %s", dir, strerror(errno));
            return errno == ENOENT ? OTA_ERR_NOT_FOUND : OTA_ERR_IO;
        }
        source = abs_dir;
    } else {
        source = url != NULL ? url : bundle_path;
    }
    if (cli_val(&opts[3]) != NULL) {
        if (strlen(cli_val(&opts[3])) >= sizeof(state)) {
            ota_detail_set(det, "--state: path too long");
            return CLI_ERR_USAGE;
        }
        snprintf(state, sizeof(state), "%s", cli_val(&opts[3]));
    } else {
        rc = default_state(state, source, det);
        if (rc != 0)
            return rc;
    }
    rc = ota_fs_read(&root, &root_len, cli_val(&opts[2]), OTA_TUF_ROOT_MAX_LEN);
    if (rc != 0) {
        ota_detail_set(det, "trusted root %s", cli_val(&opts[2]));
        return rc;
    }
    rc = ota_fs_mkdirs(state, 0700, NULL);
    if (rc != 0) {
        ota_detail_set(det, "creating the state directory %s", state);
        goto out;
    }
    if (bundle_path != NULL) {
        rc = ota_fs_read(&bundle_bytes, &bundle_len, bundle_path, OTA_BUNDLE_MAX_LEN);
        if (rc == 0) {
            bundle = malloc(sizeof(*bundle));
            if (bundle == NULL)
                rc = OTA_ERR_NOMEM;
        }
        if (rc == 0)
            rc = ota_bundle_parse(bundle, bundle_bytes, bundle_len, det);
        if (rc != 0) {
            ota_detail_prefix(det, bundle_path);
            goto out;
        }
    } else {
        ota_http_round_start(&hopts);
        rc = dir != NULL ? ota_fetcher_dir_new(&f, abs_dir)
                         : ota_fetcher_http_new(&f, url, &hopts, det);
        if (rc != 0) {
            if (dir != NULL)
                ota_detail_set(det, "%s", source);
            goto out;
        }
    }
    memset(&copts, 0, sizeof(copts));
    copts.state_dir = state;
    copts.hook = ctx->hook;
    rc = ota_tuf_client_open(&c, &copts, root, root_len, det);
    if (rc != 0) {
        ota_detail_prefix(det, state);
        goto out;
    }
    if (bundle != NULL)
        rc = ota_tuf_client_refresh_bundle(c, bundle, ctx->now, det);
    else
        rc = ota_tuf_client_refresh(c, f, ctx->now, det);
    if (rc != 0)
        goto out;
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++)
        md[role] = ota_tuf_client_trusted(c, (enum ota_tuf_role)role);
    if (md[OTA_TUF_ROOT] == NULL || md[OTA_TUF_TIMESTAMP] == NULL || md[OTA_TUF_SNAPSHOT] == NULL ||
        md[OTA_TUF_TARGETS] == NULL) {
        ota_detail_set(det, "the client returned without trusted metadata");
        rc = OTA_ERR_NO_TRUSTED_ROOT;
        goto out;
    }
    cli_printf(stdout,
               "verified: root v%" PRIu64 ", timestamp v%" PRIu64 ", snapshot v%" PRIu64
               ", targets v%" PRIu64 " (%zu targets)\n",
               md[OTA_TUF_ROOT]->version, md[OTA_TUF_TIMESTAMP]->version,
               md[OTA_TUF_SNAPSHOT]->version, md[OTA_TUF_TARGETS]->version,
               md[OTA_TUF_TARGETS]->ntargets);
    if (ota_tuf_client_checkpoint(c) != NULL)
        cli_printf(stdout,
                   "ledger: checkpoint %s size %" PRIu64
                   " accepted (log signature, witness quorum, consistency, inclusion)\n",
                   ota_tuf_client_checkpoint(c)->origin, ota_tuf_client_checkpoint(c)->size);
    if (ota_tuf_format_time(floor, ota_tuf_client_time_floor(c)) == 0)
        cli_printf(stdout,
                   "time floor: %s (the build time, or the latest time a witness quorum "
                   "vouched for)\n",
                   floor);
    ota_tuf_client_bundle_request(c, &req);
    cli_printf(stdout,
               "bundle request: --root-version %" PRIu64 " --checkpoint-size %" PRIu64
               " --snapshot-version %" PRIu64 " --targets-version %" PRIu64 "\n",
               req.root_version, req.checkpoint_size, req.snapshot_version, req.targets_version);
    if (target != NULL) {
        const struct ota_tuf_target *t;
        char hex[OTA_SHA256_HEX_LEN + 1];

        rc = ota_tuf_client_download(c, f, target, out, det);
        if (rc != 0)
            goto out;
        t = ota_tuf_find_target(ota_tuf_client_trusted(c, OTA_TUF_TARGETS), target);
        if (t != NULL) {
            ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
            cli_printf(stdout, "target %s: %" PRIu64 " bytes sha256 %s -> %s\n", target, t->length,
                       hex, out);
        }
    }
out:
    ota_tuf_client_free(c);
    ota_fetcher_free(f);
    free(bundle);
    free(bundle_bytes);
    free(root);
    return rc;
}
