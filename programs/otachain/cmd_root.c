/* otachain root rotate | sign | merge */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/fsutil.h"
#include "otachain/tuf_sign.h"
#include "otachain/ledger_policy.h"
#include "repo.h"

#define MIN_KEYID_PREFIX 8

/* The keyids array of role in a signed root document. */
static json_t *role_keyids(json_t *signed_part, enum ota_tuf_role role)
{
    return json_object_get(
        json_object_get(json_object_get(signed_part, "roles"), ota_tuf_role_name(role)), "keyids");
}

/* Index of keyid (exact, or a unique prefix of at least 8 hex digits) in
 * the keyids array, or -1 (none) / -2 (ambiguous). */
static long find_keyid(json_t *ids, const char *keyid)
{
    size_t len = strlen(keyid);
    long found = -1;
    size_t i;
    json_t *v;

    json_array_foreach(ids, i, v)
    {
        const char *k = json_string_value(v);

        if (k == NULL)
            continue;
        if (strcmp(k, keyid) == 0)
            return (long)i;
        if (len >= MIN_KEYID_PREFIX && strncmp(k, keyid, len) == 0)
            found = found == -1 ? (long)i : -2;
    }
    return found;
}

/* Drops key objects no role refers to any more. */
static int prune_keys(json_t *signed_part)
{
    json_t *keys = json_object_get(signed_part, "keys");
    json_t *unused = json_array();
    const char *keyid;
    json_t *v;
    size_t i;

    if (unused == NULL)
        return OTA_ERR_NOMEM;
    json_object_foreach(keys, keyid, v)
    {
        bool used = false;

        for (int role = 0; role < OTA_TUF_ROLE_COUNT && !used; role++)
            used = find_keyid(role_keyids(signed_part, (enum ota_tuf_role)role), keyid) >= 0 &&
                   strlen(keyid) == OTA_SHA256_HEX_LEN;
        if (!used && json_array_append_new(unused, json_string(keyid)) != 0) {
            json_decref(unused);
            return OTA_ERR_NOMEM;
        }
    }
    json_array_foreach(unused, i, v)
    {
        json_object_del(keys, json_string_value(v));
    }
    json_decref(unused);
    return 0;
}

static int set_keyids_one(json_t *signed_part, enum ota_tuf_role role, const char *keyid)
{
    json_t *ids = role_keyids(signed_part, role);

    if (ids == NULL || json_array_clear(ids) != 0 ||
        json_array_append_new(ids, json_string(keyid)) != 0)
        return OTA_ERR_NOMEM;
    return 0;
}

/* Generates a new online key for role into private/<role>.key.next. */
static int new_online_key(struct repo *r, json_t *signed_part, enum ota_tuf_role role,
                          struct ota_detail *det)
{
    char path[PATH_MAX];
    struct ota_signer *s = NULL;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    json_t *k;
    int rc = repo_path(path, r, "private/%s.key.next", ota_tuf_role_name(role));

    if (rc != 0)
        return rc;
    /* No root rotation is pending, so any .next left is from an abandoned
     * attempt. */
    rc = ota_fs_remove(path, r->ctx->hook);
    if (rc == 0)
        rc = ota_signer_generate(&s);
    if (rc == 0)
        rc = ota_signer_save(s, path, r->ctx->hook);
    if (rc != 0) {
        ota_detail_set(det, "writing %s", path);
        goto out;
    }
    ota_signer_public(pub, s);
    k = ota_tuf_key_object(pub);
    if (k == NULL ||
        json_object_set_new(json_object_get(signed_part, "keys"), ota_signer_keyid(s), k) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = set_keyids_one(signed_part, role, ota_signer_keyid(s));
    if (rc == 0)
        cli_printf(stdout, "new %s key %s (%s, used once the new root is published)\n",
                   ota_tuf_role_name(role), ota_signer_keyid(s), path);
out:
    ota_signer_free(s);
    return rc;
}

/* A signing key for the pending root must be a root key of the current
 * or the new root. */
static int check_root_signer(const struct repo *r, const struct ota_tuf_meta *pend,
                             const struct repo_key *k, struct ota_detail *det)
{
    if ((r->lib.root != NULL && ota_repo_role_has_key(r->lib.root, OTA_TUF_ROOT, k->keyid)) ||
        ota_repo_role_has_key(pend, OTA_TUF_ROOT, k->keyid))
        return 0;
    ota_detail_set(det, "key %s (%s) is not a root key of root v%" PRIu64 "%s", k->keyid, k->path,
                   pend->version, r->lib.root != NULL ? " or of the current root" : "");
    return OTA_ERR_KEY_NOT_IN_ROLE;
}

struct rotate_opts {
    struct cli_opt o[8];
    struct ota_ledger_witness wit[CLI_MAX_VALS]; /* --add-witness */
    bool rotate[OTA_TUF_ROLE_COUNT];             /* --rotate-online-key */
    struct repo_key add[CLI_MAX_VALS];
    int add_role[CLI_MAX_VALS];
    struct repo_key sign[CLI_MAX_VALS];
};

enum { O_ADD, O_REMOVE, O_THRESHOLD, O_ROTATE, O_KEY, O_ADD_WIT, O_RM_WIT, O_WIT_QUORUM };

/* Applies the options to a copy of the current root's signed part. */
static int rotate_apply(struct rotate_opts *ro, json_t *sp, struct ota_detail *det)
{
    bool *rotate = ro->rotate;
    int rc;

    for (size_t i = 0; i < ro->o[O_REMOVE].n; i++) {
        const char *v;
        int role;
        long idx;

        rc = cli_role_value(&role, &v, ro->o[O_REMOVE].val[i], det);
        if (rc != 0)
            return rc;
        idx = find_keyid(role_keyids(sp, (enum ota_tuf_role)role), v);
        if (idx < 0) {
            ota_detail_set(det, "--remove-key %s: %s", ro->o[O_REMOVE].val[i],
                           idx == -2 ? "the prefix matches several keys" : "not a key of the role");
            return CLI_ERR_USAGE;
        }
        json_array_remove(role_keyids(sp, (enum ota_tuf_role)role), (size_t)idx);
    }
    for (size_t i = 0; i < ro->o[O_ADD].n; i++) {
        const char *v;
        json_t *k;

        rc = cli_role_value(&ro->add_role[i], &v, ro->o[O_ADD].val[i], det);
        if (rc == 0)
            rc = repo_key_load(&ro->add[i], v, false, det);
        if (rc != 0)
            return rc;
        if (find_keyid(role_keyids(sp, (enum ota_tuf_role)ro->add_role[i]), ro->add[i].keyid) >=
            0) {
            ota_detail_set(det, "--add-key %s: key %s is already a %s key", ro->o[O_ADD].val[i],
                           ro->add[i].keyid, ota_tuf_role_name((enum ota_tuf_role)ro->add_role[i]));
            return CLI_ERR_USAGE;
        }
        k = ota_tuf_key_object(ro->add[i].pub);
        if (k == NULL ||
            json_object_set_new(json_object_get(sp, "keys"), ro->add[i].keyid, k) != 0 ||
            json_array_append_new(role_keyids(sp, (enum ota_tuf_role)ro->add_role[i]),
                                  json_string(ro->add[i].keyid)) != 0)
            return OTA_ERR_NOMEM;
    }
    /* A root key never signs releases (docs/decisions.md, issue 10). */
    for (size_t i = 0; i < ro->o[O_ADD].n; i++) {
        int other = ro->add_role[i] == OTA_TUF_ROOT      ? OTA_TUF_TARGETS
                    : ro->add_role[i] == OTA_TUF_TARGETS ? OTA_TUF_ROOT
                                                         : -1;

        if (other >= 0 &&
            find_keyid(role_keyids(sp, (enum ota_tuf_role)other), ro->add[i].keyid) >= 0) {
            ota_detail_set(det,
                           "--add-key %s: key %s would be both a root and a targets key; the "
                           "offline root keys must not sign releases: use another key "
                           "(otachain key generate)",
                           ro->o[O_ADD].val[i], ro->add[i].keyid);
            return CLI_ERR_USAGE;
        }
    }
    for (size_t i = 0; i < ro->o[O_THRESHOLD].n; i++) {
        const char *v;
        uint64_t t;
        int role;

        rc = cli_role_value(&role, &v, ro->o[O_THRESHOLD].val[i], det);
        if (rc != 0)
            return rc;
        if (cli_parse_u64(&t, v, OTA_TUF_MAX_ROLE_KEYS) != 0 || t == 0) {
            ota_detail_set(det, "--threshold %s: expected a number from 1 to %d",
                           ro->o[O_THRESHOLD].val[i], OTA_TUF_MAX_ROLE_KEYS);
            return CLI_ERR_USAGE;
        }
        if (json_object_set_new(json_object_get(json_object_get(sp, "roles"),
                                                ota_tuf_role_name((enum ota_tuf_role)role)),
                                "threshold", json_integer((json_int_t)t)) != 0)
            return OTA_ERR_NOMEM;
    }
    for (size_t i = 0; i < ro->o[O_ROTATE].n; i++) {
        const char *v = ro->o[O_ROTATE].val[i];

        if (strcmp(v, "snapshot") == 0) {
            rotate[OTA_TUF_SNAPSHOT] = true;
        } else if (strcmp(v, "timestamp") == 0) {
            rotate[OTA_TUF_TIMESTAMP] = true;
        } else {
            ota_detail_set(det, "--rotate-online-key %s: only snapshot or timestamp", v);
            return CLI_ERR_USAGE;
        }
    }
    /* Every role keeps a reachable threshold; online roles exactly 1 (the
     * repository holds one key for each). */
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
        json_t *rj = json_object_get(json_object_get(sp, "roles"),
                                     ota_tuf_role_name((enum ota_tuf_role)role));
        json_int_t t = json_integer_value(json_object_get(rj, "threshold"));
        size_t n = json_array_size(json_object_get(rj, "keyids"));
        bool online = role == OTA_TUF_SNAPSHOT || role == OTA_TUF_TIMESTAMP;

        if (rotate[role])
            n = 1;
        if (n == 0 || t < 1 || (size_t)t > n || (online && t != 1)) {
            ota_detail_set(
                det, "the %s role would have %zu key(s) and threshold %" JSON_INTEGER_FORMAT "%s",
                ota_tuf_role_name((enum ota_tuf_role)role), n, t,
                online ? " (online roles need threshold 1)" : "");
            return CLI_ERR_USAGE;
        }
    }
    /* The ledger's witnesses (a root rotation, docs/formats/ledger.md). */
    if (ro->o[O_ADD_WIT].n + ro->o[O_RM_WIT].n + ro->o[O_WIT_QUORUM].n > 0) {
        for (size_t i = 0; i < ro->o[O_ADD_WIT].n; i++) {
            rc = ota_ledger_witness_parse(&ro->wit[i], ro->o[O_ADD_WIT].val[i], det);
            if (rc != 0)
                return rc == OTA_ERR_INVALID_ARG ? CLI_ERR_USAGE : rc;
        }
        rc = ota_ledger_rotate_json(sp, ro->wit, ro->o[O_ADD_WIT].n, ro->o[O_RM_WIT].val,
                                    ro->o[O_RM_WIT].n, cli_val(&ro->o[O_WIT_QUORUM]), det);
        if (rc != 0)
            return rc == OTA_ERR_INVALID_ARG ? CLI_ERR_USAGE : rc;
    }
    return prune_keys(sp);
}

/* The i-th key that signs the new root: --key values first, then the
 * secret keys among --add-key root=K; NULL when the i-th does not sign. */
static const struct repo_key *root_signer(const struct rotate_opts *ro, size_t i)
{
    size_t nkey = ro->o[O_KEY].n;

    if (i < nkey)
        return &ro->sign[i];
    i -= nkey;
    if (ro->add[i].signer == NULL || ro->add_role[i] != OTA_TUF_ROOT)
        return NULL;
    return &ro->add[i];
}

static void print_sign_hint(const struct repo *r)
{
    cli_printf(stdout,
               "next: otachain root sign %s --key FILE (each root signer), then otachain repo "
               "publish %s\n",
               r->dir, r->dir);
}

int cmd_root_rotate(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct rotate_opts *ro = calloc(1, sizeof(*ro));
    struct cli_args args;
    struct repo r;
    bool opened = false;
    json_t *doc = NULL;
    json_t *sp;
    struct ota_tuf_meta *md = NULL;
    char exp[OTA_TUF_TIME_SIZE];
    bool targets_changed;
    int rc;

    if (ro == NULL)
        return OTA_ERR_NOMEM;
    ro->o[O_ADD] = (struct cli_opt){"add-key", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_REMOVE] = (struct cli_opt){"remove-key", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_THRESHOLD] = (struct cli_opt){"threshold", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_ROTATE] = (struct cli_opt){"rotate-online-key", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_KEY] = (struct cli_opt){"key", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_ADD_WIT] = (struct cli_opt){"add-witness", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_RM_WIT] = (struct cli_opt){"remove-witness", CLI_VAL | CLI_MULTI, 0, {0}};
    ro->o[O_WIT_QUORUM] = (struct cli_opt){"witness-quorum", CLI_VAL, 0, {0}};
    rc = cli_parse(ro->o, 8, &args, 1, 1, argc, argv, det);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < ro->o[O_KEY].n; i++) {
        rc = repo_key_load(&ro->sign[i], ro->o[O_KEY].val[i], true, det);
        if (rc != 0)
            goto out;
    }
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        goto out;
    opened = true;
    if (r.lib.pend_root != NULL) {
        ota_detail_set(det,
                       "%s/pending/root.json: a root rotation is already pending (root sign, "
                       "root merge, repo publish)",
                       r.dir);
        rc = OTA_ERR_EXISTS;
        goto out;
    }
    if (r.lib.root == NULL) {
        ota_detail_set(det, "%s: no published root to rotate (repo publish)", r.dir);
        rc = OTA_ERR_NOT_FOUND;
        goto out;
    }
    rc = r.signer->ops->root_live(r.signer, r.lib.root, det);
    if (rc != 0)
        goto out;

    doc =
        json_pack("{s:O,s:[]}", "signed", json_object_get(r.lib.root->doc, "signed"), "signatures");
    sp = doc != NULL ? json_deep_copy(json_object_get(doc, "signed")) : NULL;
    if (sp == NULL || json_object_set_new(doc, "signed", sp) != 0 ||
        ota_tuf_format_time(exp, ctx->now + r.lib.expires[OTA_TUF_ROOT]) != 0 ||
        json_object_set_new(sp, "version", json_integer((json_int_t)(r.lib.root->version + 1))) !=
            0 ||
        json_object_set_new(sp, "expires", json_string(exp)) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = rotate_apply(ro, sp, det);
    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, det);
    if (rc != 0)
        goto out;
    /* Signers (--key, --add-key root=SECRET) are checked before a new
     * online key is generated, and sign once the signed part is final. */
    for (size_t i = 0; i < ro->o[O_KEY].n + ro->o[O_ADD].n; i++) {
        const struct repo_key *k = root_signer(ro, i);

        if (k != NULL && (rc = check_root_signer(&r, md, k, det)) != 0)
            goto out;
    }
    for (int role = OTA_TUF_SNAPSHOT; role <= OTA_TUF_TIMESTAMP; role++) {
        if (ro->rotate[role] && (rc = new_online_key(&r, sp, (enum ota_tuf_role)role, det)) != 0)
            goto out;
    }
    ota_tuf_meta_free(md);
    md = NULL;
    rc = prune_keys(sp);
    for (size_t i = 0; rc == 0 && i < ro->o[O_KEY].n + ro->o[O_ADD].n; i++) {
        const struct repo_key *k = root_signer(ro, i);

        if (k != NULL)
            rc = ota_tuf_sign(doc, k->signer);
    }
    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, det);
    if (rc != 0)
        goto out;
    /* New targets keys must sign the targets again. Written before the
     * pending root: a crash in between leaves only a harmless re-signing
     * of the published targets, never a root whose targets cannot sign. */
    targets_changed = ota_tuf_role_changed(r.lib.root, md, OTA_TUF_TARGETS);
    if (targets_changed) {
        bool had = r.lib.pend_targets != NULL && !r.lib.pend_targets_stale;

        rc = ota_repo_pending_targets(&r.lib, det);
        if (rc != 0)
            goto out;
        for (size_t i = 0; i < ro->o[O_ADD].n; i++) {
            if (ro->add[i].signer != NULL && ro->add_role[i] == OTA_TUF_TARGETS &&
                (rc = ota_tuf_sign(r.lib.pend_targets, ro->add[i].signer)) != 0)
                goto out;
        }
        rc = ota_repo_set_pending(&r.lib, OTA_TUF_TARGETS, r.lib.pend_targets, det);
        if (rc != 0)
            goto out;
        cli_printf(stdout,
                   "the targets keys change: %s pending targets v%" PRIu64
                   " must be signed by the new targets keys\n",
                   had ? "the" : "new", r.lib.pend_targets_md->version);
    }
    rc = ota_repo_set_pending(&r.lib, OTA_TUF_ROOT, doc, det);
    if (rc != 0)
        goto out;
    cli_printf(stdout, "pending root v%" PRIu64 " written (from root v%" PRIu64 ")\n",
               r.lib.pend_root_md->version, r.lib.root->version);
    repo_print_pending(&r, stdout, true, targets_changed);
    print_sign_hint(&r);
out:
    ota_tuf_meta_free(md);
    json_decref(doc);
    if (opened)
        repo_close(&r);
    for (size_t i = 0; i < CLI_MAX_VALS; i++) {
        repo_key_clear(&ro->add[i]);
        repo_key_clear(&ro->sign[i]);
    }
    free(ro);
    return rc;
}

static int need_pending_root(const struct repo *r, struct ota_detail *det)
{
    if (r->lib.pend_root == NULL || r->lib.pend_root_stale) {
        ota_detail_set(det, "no pending root in %s (otachain root rotate)", r->dir);
        return OTA_ERR_NOT_FOUND;
    }
    return 0;
}

int cmd_root_sign(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"key", CLI_VAL | CLI_REQ, 0, {0}}};
    struct cli_args args;
    struct repo r;
    struct repo_key k;
    int rc = cli_parse(opts, 1, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        return rc;
    memset(&k, 0, sizeof(k));
    rc = need_pending_root(&r, det);
    if (rc == 0)
        rc = repo_key_load(&k, cli_val(&opts[0]), true, det);
    if (rc == 0)
        rc = check_root_signer(&r, r.lib.pend_root_md, &k, det);
    if (rc == 0)
        rc = ota_tuf_sign(r.lib.pend_root, k.signer);
    if (rc == 0)
        rc = ota_repo_set_pending(&r.lib, OTA_TUF_ROOT, r.lib.pend_root, det);
    if (rc == 0) {
        cli_printf(stdout, "signed pending root v%" PRIu64 " with key %s\n",
                   r.lib.pend_root_md->version, k.keyid);
        repo_print_pending(&r, stdout, true, false);
    }
    repo_key_clear(&k);
    repo_close(&r);
    return rc;
}

int cmd_root_merge(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_args args;
    struct repo r;
    const struct ota_tuf_meta *roots[2];
    size_t total = 0;
    int rc = cli_parse(NULL, 0, &args, 2, CLI_MAX_POS, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_open(&r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc != 0)
        return rc;
    rc = need_pending_root(&r, det);
    if (rc != 0)
        goto out;
    roots[0] = r.lib.root;
    roots[1] = r.lib.pend_root_md;
    for (size_t i = 1; i < args.npos; i++) {
        size_t added = 0;

        rc = repo_merge_file(&r, OTA_TUF_ROOT, args.pos[i], roots, 2, &added, det);
        if (rc != 0)
            goto out;
        cli_printf(stdout, "merged %zu signature(s) from %s\n", added, args.pos[i]);
        total += added;
    }
    if (total > 0)
        rc = ota_repo_set_pending(&r.lib, OTA_TUF_ROOT, r.lib.pend_root, det);
    if (rc == 0)
        repo_print_pending(&r, stdout, true, false);
out:
    repo_close(&r);
    return rc;
}
