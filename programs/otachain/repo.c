/* The CLI's view of an authoring directory (see repo.h): opening it
 * through the library, publish and refresh over libcurl, and printing. */
#include "repo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otachain/fsutil.h"
#include "otachain/witness_curl.h"

/* ---------------------------------------------------------------- keys */

/* Looks at the PEM label (never at key material) to tell a secret key file
 * from a public one. */
static int pem_is_secret(bool *secret, const char *path, struct ota_detail *det)
{
    char line[96];
    FILE *f = fopen(path, "re");
    int lines = 0;

    *secret = false;
    if (f == NULL) {
        int e = errno;

        ota_detail_set(det, "%s: %s", path, strerror(e));
        return ota_fs_errno(e);
    }
    while (lines++ < 64 && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "-----BEGIN ", 11) == 0) {
            *secret = strstr(line, "PRIVATE KEY-----") != NULL;
            break;
        }
    }
    ota_wipe(line, sizeof(line));
    fclose(f);
    return 0;
}

int repo_key_load(struct repo_key *k, const char *path, bool need_secret, struct ota_detail *det)
{
    bool secret;
    int rc;

    memset(k, 0, sizeof(*k));
    k->path = path;
    rc = pem_is_secret(&secret, path, det);
    if (rc != 0)
        return rc;
    if (secret) {
        rc = ota_signer_load(&k->signer, path, det);
        if (rc != 0) {
            k->signer = NULL;
            return rc;
        }
        ota_signer_public(k->pub, k->signer);
        memcpy(k->keyid, ota_signer_keyid(k->signer), OTA_KEYID_SIZE);
        k->keyid[OTA_KEYID_SIZE - 1] = '\0';
        return 0;
    }
    if (need_secret) {
        ota_detail_set(det, "%s is not a secret key file: signing needs the secret key", path);
        return OTA_ERR_KEY_FORMAT;
    }
    rc = ota_pubkey_load(k->pub, path);
    if (rc == 0)
        rc = ota_ed25519_keyid(k->keyid, k->pub);
    if (rc != 0) {
        ota_detail_set(det, "key %s", path);
        memset(k, 0, sizeof(*k));
    }
    return rc;
}

void repo_key_clear(struct repo_key *k)
{
    ota_signer_free(k->signer);
    memset(k, 0, sizeof(*k));
}

/* ---------------------------------------------------------- directory */

int repo_path(char out[PATH_MAX], const struct repo *r, const char *fmt, ...)
{
    char rel[PATH_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(rel))
        return OTA_ERR_TOO_LARGE;
    n = snprintf(out, PATH_MAX, "%s/%s", r->dir, rel);
    if (n < 0 || n >= PATH_MAX)
        return OTA_ERR_TOO_LARGE;
    return 0;
}

int repo_write(const struct repo *r, const char *path, const void *data, size_t len,
               struct ota_detail *det)
{
    int rc = ota_fs_replace(path, data, len, 0644, r->ctx->hook);

    if (rc != 0)
        ota_detail_set(det, "writing %s: %s", path, strerror(errno));
    return rc;
}

int repo_lock(int *fd, const char *dir, struct ota_detail *det)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/.lock", dir);
    int rc;

    *fd = -1;
    if (n < 0 || n >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_lock(fd, path, 0644);
    if (rc == OTA_ERR_LOCKED)
        ota_detail_set(det, "%s is held by another otachain process", path);
    else if (rc != 0)
        ota_detail_set(det, "%s: %s", path, strerror(errno));
    return rc;
}

/* Where the commands write through the file-system layer. */
static const char *const temp_dirs[] = {"blobs", "pending", "private", "public/metadata",
                                        "public/staging/metadata"};

int repo_open(struct repo *r, const char *dir, unsigned flags, const struct cli_ctx *ctx,
              struct ota_detail *det)
{
    size_t len = strlen(dir);
    int rc;

    memset(r, 0, sizeof(*r));
    r->lock_fd = -1;
    r->ctx = ctx;
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof(r->dir) - 64) {
        ota_detail_set(det, "bad repository directory '%s'", dir);
        return CLI_ERR_USAGE;
    }
    memcpy(r->dir, dir, len);
    r->dir[len] = '\0';
    rc = ota_repo_files_open(&r->store, r->dir, ctx->hook, det);
    if (rc == 0)
        rc = ota_repo_keys_open(&r->signer, r->dir, ctx->hook, det);
    /* Is it a repository at all? Before the lock file is made in it. */
    if (rc == 0) {
        bool exists = false;
        uint64_t n = 0;

        rc = r->store->ops->stat(r->store, "repo.json", &exists, &n, det);
        if (rc == 0 && !exists) {
            ota_detail_set(det, "%s is not an otachain repository (no repo.json)", r->dir);
            rc = OTA_ERR_NOT_FOUND;
        }
    }
    if (rc == 0 && (flags & REPO_LOCK))
        rc = repo_lock(&r->lock_fd, r->dir, det);
    /* Under the lock: what an interrupted writer left where the commands
     * write (a temporary of the file-system layer is never read). */
    for (size_t i = 0;
         rc == 0 && (flags & REPO_LOCK) && i < sizeof(temp_dirs) / sizeof(temp_dirs[0]); i++) {
        char d[PATH_MAX];

        rc = repo_path(d, r, "%s", temp_dirs[i]);
        if (rc == 0)
            rc = ota_fs_remove_temps(d, NULL, ctx->hook);
        if (rc != 0)
            ota_detail_set(det, "removing temporaries in %s", d);
    }
    if (rc == 0) {
        rc = ota_repo_open(&r->lib, r->store, r->signer, ctx->now, det);
        if (rc != 0)
            ota_detail_prefix(det, r->dir);
    }
    if (rc != 0)
        repo_close(r);
    return rc;
}

void repo_close(struct repo *r)
{
    ota_repo_close(&r->lib);
    ota_repo_signer_close(r->signer);
    ota_repo_store_close(r->store);
    ota_fs_unlock(&r->lock_fd);
    r->signer = NULL;
    r->store = NULL;
}

int repo_merge_file(struct repo *r, enum ota_tuf_role role, const char *file,
                    const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                    struct ota_detail *det)
{
    uint64_t cap = role == OTA_TUF_ROOT ? OTA_TUF_ROOT_MAX_LEN : OTA_TUF_TARGETS_MAX_LEN;
    struct ota_repo_dropped *dropped = calloc(OTA_TUF_MAX_SIGS, sizeof(*dropped));
    uint8_t *data = NULL;
    size_t len = 0;
    size_t ndropped = 0;
    int rc = dropped == NULL ? OTA_ERR_NOMEM : ota_fs_read(&data, &len, file, cap);

    *added = 0;
    if (rc != 0) {
        ota_detail_set(det, "%s", file);
        free(dropped);
        return rc;
    }
    rc = ota_repo_merge(&r->lib, role, data, len, roots, nroots, added, dropped, &ndropped, det);
    if (rc != 0) {
        if (rc == OTA_ERR_FORMAT && det != NULL && strstr(det->msg, "differ") != NULL)
            ota_detail_set(det, "%s: signed part differs from %s/pending/%s.json", file, r->dir,
                           ota_tuf_role_name(role));
        else
            ota_detail_prefix(det, file);
    }
    for (size_t i = 0; rc == 0 && i < ndropped; i++)
        cli_warn("%s: dropping the signature by %s: %s", file, dropped[i].keyid,
                 dropped[i].known ? "it does not verify" : "not a key of the role");
    free(data);
    free(dropped);
    return rc;
}

/* ------------------------------------------------------------ publish */

/* OTACHAIN_TIMING=1 (benchmarks, docs/cli.md): milliseconds since t0 of a
 * CLOCK_MONOTONIC reading, printed on standard error as
 * "otachain: timing: <what> <ms> ms". */
static bool timing_on(void)
{
    const char *v = getenv("OTACHAIN_TIMING");

    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static void timing_print(const char *what, const struct timespec *t0)
{
    struct timespec t1;

    if (!timing_on())
        return;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "otachain: timing: %s %.3f ms\n", what,
            (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
}

/* The witnesses over libcurl, timed for the benchmarks. */
static int curl_run(void *ctx, struct ota_witness_round *round, struct ota_detail *det)
{
    const struct repo *r = ctx;
    struct ota_witness_curl_opts o = {r->witness_timeout_ms, 0, NULL};
    struct timespec t0;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = ota_witness_curl_run(round, &o, det);
    timing_print("witness-round", &t0);
    return rc;
}

static void print_ledger(FILE *out, const struct ota_publish_result *res, const char *how)
{
    if (res->ledger)
        fprintf(out, "ledger: checkpoint of size %" PRIu64 " cosigned %sby %zu witness%s\n",
                res->checkpoint_size, how, res->ncosigned, res->ncosigned == 1 ? "" : "es");
}

int repo_publish(struct repo *r, FILE *out, struct ota_detail *det)
{
    struct ota_publish_result res;
    struct timespec t0;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = ota_publish(&r->lib, &(struct ota_witness_transport){curl_run, r}, &res, det);
    timing_print("ledger-publish", &t0);
    if (rc != 0)
        return rc;
    if (res.nothing_left) {
        fprintf(out, "nothing left to publish: the pending metadata was already published "
                     "(pending files removed)\n");
        return 0;
    }
    print_ledger(out, &res, "");
    fprintf(out,
            "published: root v%" PRIu64 ", targets v%" PRIu64 " (%zu targets), snapshot v%" PRIu64
            ", timestamp v%" PRIu64 "\n",
            res.root_version, res.targets_version, res.ntargets, res.snapshot_version,
            res.timestamp_version);
    return 0;
}

int repo_refresh(struct repo *r, bool force_snapshot, FILE *out, struct ota_detail *det)
{
    struct ota_publish_result res;
    char exp[96];
    int64_t now = r->ctx->now;
    int rc = ota_refresh(&r->lib, force_snapshot, &(struct ota_witness_transport){curl_run, r},
                         &res, det);

    if (rc != 0)
        return rc;
    print_ledger(out, &res, res.snapshot_signed ? "" : "again ");
    if (res.snapshot_signed) {
        cli_format_expiry(exp, sizeof(exp), now + r->lib.expires[OTA_TUF_SNAPSHOT], now);
        fprintf(out, "snapshot v%" PRIu64 " signed, %s\n", res.snapshot_version, exp);
    }
    cli_format_expiry(exp, sizeof(exp), now + r->lib.expires[OTA_TUF_TIMESTAMP], now);
    fprintf(out, "timestamp v%" PRIu64 " signed, %s\n", res.timestamp_version, exp);
    for (int i = 0; i < 2; i++) {
        const struct ota_tuf_meta *md = i == 0 ? r->lib.root : r->lib.targets;

        if (md->expires - now < REPO_WARN_EXPIRY) {
            cli_format_expiry(exp, sizeof(exp), md->expires, now);
            cli_warn("%s v%" PRIu64 " %s: re-sign it with the offline keys (%s)",
                     ota_tuf_role_name(md->type), md->version, exp,
                     i == 0 ? "otachain root rotate" : "otachain release sign");
        }
    }
    return 0;
}

/* -------------------------------------------------------------- sigstat */

void repo_sigstat_print(FILE *f, const char *label, const struct ota_repo_sigstat *st)
{
    fprintf(f, "  %s: %zu of %u required signatures%s\n", label, st->nvalid, st->threshold,
            ota_repo_sigstat_met(st) ? ": threshold met" : "");
    for (size_t i = 0; i < st->nvalid; i++)
        fprintf(f, "    signed by  %s\n", st->valid[i]);
    if (!ota_repo_sigstat_met(st)) {
        fprintf(f, "    missing %zu; keys still able to sign:\n",
                (size_t)st->threshold - st->nvalid);
        for (size_t i = 0; i < st->nable; i++)
            fprintf(f, "    can sign   %s\n", st->able[i]);
    }
}

/* ------------------------------------------------------------ status */

static void print_role_keys(FILE *out, const struct ota_tuf_meta *root)
{
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
        const struct ota_tuf_role_keys *rk = &root->roles[role];

        fprintf(out, "  %-9s threshold %u of %zu\n", ota_tuf_role_name((enum ota_tuf_role)role),
                rk->threshold, rk->nkeyids);
        for (size_t i = 0; i < rk->nkeyids; i++)
            fprintf(out, "    key %s\n", rk->keyids[i]);
    }
}

static void print_target(FILE *out, const struct ota_tuf_target *t)
{
    char hex[OTA_SHA256_HEX_LEN + 1];
    json_t *c = t->custom;

    ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
    fprintf(out, "  %s  %" PRIu64 " bytes  sha256 %s\n", t->path, t->length, hex);
    if (json_is_object(c)) {
        json_t *hw = json_object_get(c, "hardware");
        const char *product = json_string_value(json_object_get(c, "product"));
        const char *version = json_string_value(json_object_get(c, "version"));
        json_int_t sv = json_integer_value(json_object_get(c, "security_version"));
        json_t *h;
        size_t i;

        fprintf(out,
                "    product %s, version %s, security version %" JSON_INTEGER_FORMAT ", hardware",
                product != NULL ? product : "?", version != NULL ? version : "?", sv);
        json_array_foreach(hw, i, h)
        {
            fprintf(out, "%s%s", i > 0 ? "," : " ",
                    json_string_value(h) != NULL ? json_string_value(h) : "?");
        }
        fputc('\n', out);
    }
}

void repo_print_pending(const struct repo *r, FILE *out, bool root, bool targets)
{
    const struct ota_tuf_meta *next = ota_repo_next_root(&r->lib);
    struct ota_repo_sigstat st;
    char label[128];
    char exp[96];

    if (root && r->lib.pend_root_md != NULL && !r->lib.pend_root_stale) {
        const struct ota_tuf_meta *p = r->lib.pend_root_md;

        cli_format_expiry(exp, sizeof(exp), p->expires, r->ctx->now);
        fprintf(out, "pending root v%" PRIu64 ", %s\n", p->version, exp);
        if (r->lib.root != NULL) {
            ota_repo_sigstat(&st, p, r->lib.root, OTA_TUF_ROOT);
            snprintf(label, sizeof(label), "root keys of the current root v%" PRIu64,
                     r->lib.root->version);
            repo_sigstat_print(out, label, &st);
        }
        ota_repo_sigstat(&st, p, p, OTA_TUF_ROOT);
        snprintf(label, sizeof(label), "root keys of the new root v%" PRIu64, p->version);
        repo_sigstat_print(out, label, &st);
    }
    if (targets && r->lib.pend_targets_md != NULL && !r->lib.pend_targets_stale && next != NULL) {
        const struct ota_tuf_meta *p = r->lib.pend_targets_md;

        cli_format_expiry(exp, sizeof(exp), p->expires, r->ctx->now);
        fprintf(out, "pending targets v%" PRIu64 " (%zu targets), %s\n", p->version, p->ntargets,
                exp);
        ota_repo_sigstat(&st, p, next, OTA_TUF_TARGETS);
        snprintf(label, sizeof(label), "targets keys of root v%" PRIu64, next->version);
        repo_sigstat_print(out, label, &st);
    }
}

void repo_print_status(const struct repo *r, FILE *out)
{
    const struct ota_tuf_meta *pub[OTA_TUF_ROLE_COUNT] = {r->lib.root, r->lib.targets,
                                                          r->lib.snapshot, r->lib.timestamp};
    char exp[96];

    fprintf(out, "repository %s\n", r->dir);
    fprintf(out, "expiry policy: root %s, targets %s, snapshot %s, timestamp %s\n",
            r->lib.expires_text[0], r->lib.expires_text[1], r->lib.expires_text[2],
            r->lib.expires_text[3]);
    if (r->lib.root == NULL) {
        fprintf(out, "published: nothing yet\n");
    } else {
        fprintf(out, "published:\n");
        for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
            if (pub[role] == NULL) {
                fprintf(out, "  %-9s none\n", ota_tuf_role_name((enum ota_tuf_role)role));
                continue;
            }
            cli_format_expiry(exp, sizeof(exp), pub[role]->expires, r->ctx->now);
            fprintf(out, "  %-9s v%-5" PRIu64 " %s\n", ota_tuf_role_name((enum ota_tuf_role)role),
                    pub[role]->version, exp);
        }
        if (r->lib.interrupted)
            fprintf(out,
                    "  (the publish of root v%" PRIu64
                    " was interrupted: run otachain repo publish)\n",
                    r->lib.root->version);
        fprintf(out, "keys and thresholds (root v%" PRIu64 "):\n", r->lib.root->version);
        print_role_keys(out, r->lib.root);
        if (r->lib.targets != NULL) {
            fprintf(out, "published targets (%zu):\n", r->lib.targets->ntargets);
            for (size_t i = 0; i < r->lib.targets->ntargets; i++)
                print_target(out, &r->lib.targets->targets[i]);
        }
    }
    if ((r->lib.pend_root_md == NULL || r->lib.pend_root_stale) &&
        (r->lib.pend_targets_md == NULL || r->lib.pend_targets_stale)) {
        fprintf(out, "nothing pending\n");
        return;
    }
    repo_print_pending(r, out, true, false);
    if (r->lib.pend_root_md != NULL && !r->lib.pend_root_stale) {
        fprintf(out, "keys and thresholds of the pending root v%" PRIu64 ":\n",
                r->lib.pend_root_md->version);
        print_role_keys(out, r->lib.pend_root_md);
    }
    repo_print_pending(r, out, false, true);
    if (r->lib.pend_targets_md != NULL && !r->lib.pend_targets_stale) {
        const struct ota_tuf_meta *p = r->lib.pend_targets_md;
        size_t nnew = 0;

        for (size_t i = 0; i < p->ntargets; i++) {
            const struct ota_tuf_target *old =
                r->lib.targets != NULL ? ota_tuf_find_target(r->lib.targets, p->targets[i].path)
                                       : NULL;

            if (old != NULL && old->length == p->targets[i].length &&
                memcmp(old->sha256, p->targets[i].sha256, OTA_SHA256_LEN) == 0)
                continue;
            if (nnew++ == 0)
                fprintf(out, "pending new targets:\n");
            print_target(out, &p->targets[i]);
        }
        for (size_t i = 0; r->lib.targets != NULL && i < r->lib.targets->ntargets; i++) {
            if (ota_tuf_find_target(p, r->lib.targets->targets[i].path) == NULL)
                fprintf(out, "pending removal: %s\n", r->lib.targets->targets[i].path);
        }
        if (nnew == 0)
            fprintf(out, "pending targets: no new targets\n");
    }
}
