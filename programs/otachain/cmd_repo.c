/* otachain repo init | publish | refresh | status */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/ledger_policy.h"
#include "otachain/cjson.h"
#include "otachain/tuf_sign.h"
#include "repo.h"

#define INIT_MAX_KEYS CLI_MAX_VALS

/* snprintf into a PATH_MAX buffer; OTA_ERR_TOO_LARGE when it does not fit. */
static int pathf(char out[PATH_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pathf(char out[PATH_MAX], const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

/* Removes a directory tree made by init (no symlinks followed). */
static void rm_tree(int parent, const char *name, int depth)
{
    int fd;
    DIR *d;
    struct dirent *e;

    if (depth > 8)
        return;
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat(parent, name, 0);
        return;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            rm_tree(fd, e->d_name, depth + 1);
        else
            unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
    unlinkat(parent, name, AT_REMOVEDIR);
}

/* Loads --root-key / --targets-key values; duplicates refused. */
static int load_role_keys(struct repo_key *keys, const struct cli_opt *o, const char *role,
                          struct ota_detail *det)
{
    for (size_t i = 0; i < o->n; i++) {
        int rc = repo_key_load(&keys[i], o->val[i], false, det);

        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys[i].keyid, keys[j].keyid) == 0) {
                ota_detail_set(det, "--%s-key %s: the same key as %s", role, o->val[i],
                               keys[j].path);
                return CLI_ERR_USAGE;
            }
        }
    }
    return 0;
}

static int add_key(json_t *keys, const char *keyid, const uint8_t pub[OTA_ED25519_PUB_LEN])
{
    json_t *k = ota_tuf_key_object(pub);

    if (k == NULL)
        return OTA_ERR_NOMEM;
    return json_object_set_new(keys, keyid, k) == 0 ? 0 : OTA_ERR_NOMEM;
}

static json_t *role_json(char (*keyids)[OTA_KEYID_SIZE], size_t n, uint64_t threshold)
{
    json_t *ids = json_array();

    for (size_t i = 0; ids != NULL && i < n; i++) {
        if (json_array_append_new(ids, json_string(keyids[i])) != 0) {
            json_decref(ids);
            return NULL;
        }
    }
    return ids == NULL ? NULL
                       : json_pack("{s:o,s:I}", "keyids", ids, "threshold", (json_int_t)threshold);
}

static int write_new_doc(const char *path, const json_t *doc, bool indent,
                         const struct ota_fs_hook *hook, struct ota_detail *det)
{
    char *s = NULL;
    size_t len = 0;
    int rc = ota_repo_dump(&s, &len, doc, indent);

    if (rc == 0)
        rc = ota_fs_replace(path, s, len, 0644, hook);
    if (rc != 0)
        ota_detail_set(det, "writing %s", path);
    free(s);
    return rc;
}

struct init_plan {
    const char *dir;
    char tmp[PATH_MAX];
    size_t nroot, ntargets;
    struct repo_key root[INIT_MAX_KEYS];
    struct repo_key targets[INIT_MAX_KEYS];
    uint64_t root_threshold, targets_threshold;
    int64_t expires[OTA_TUF_ROLE_COUNT];
    const char *expires_text[OTA_TUF_ROLE_COUNT];
    /* the ledger (docs/formats/ledger.md) */
    bool ledger;
    const char *origin; /* NULL: the default */
    size_t nwitnesses;
    struct ota_ledger_witness witnesses[INIT_MAX_KEYS];
    uint64_t witness_quorum; /* 0: all */
    int64_t max_age;
};

/* Adds "x-otachain-ledger" to root v1's signed part and creates the log
 * key. The default origin is otachain.invalid/<hex of the first 8 bytes of
 * the SHA-256 of the canonical signed part of root v1 without the ledger
 * member> (fresh online keys make it unique per repository). */
static int init_ledger(struct init_plan *p, json_t *signed_part, const struct ota_fs_hook *hook,
                       struct ota_detail *det)
{
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
    char vkey[OTA_NOTE_VKEY_SIZE];
    char path[PATH_MAX];
    uint8_t sha[OTA_SHA256_LEN];
    char hex[17];
    struct ota_buf canon;
    json_t *obj = NULL;
    int rc;

    if (p->origin != NULL) {
        snprintf(origin, sizeof(origin), "%s", p->origin);
    } else {
        ota_buf_init(&canon, 1u << 20);
        rc = ota_json_canonical(&canon, signed_part);
        if (rc == 0)
            rc = ota_sha256(sha, canon.data, canon.len);
        ota_buf_free(&canon);
        if (rc != 0)
            return rc;
        ota_hex_encode(hex, sha, 8);
        snprintf(origin, sizeof(origin), "otachain.invalid/%s", hex);
    }
    rc = pathf(path, "%s/private/log.key", p->tmp);
    if (rc == 0)
        rc = ota_repo_keys_create_log(vkey, path, origin, hook, det);
    if (rc == 0)
        rc = ota_ledger_json(&obj, origin, vkey, p->witnesses, p->nwitnesses, p->witness_quorum,
                             p->max_age, det);
    if (rc == OTA_ERR_INVALID_ARG)
        rc = CLI_ERR_USAGE;
    if (rc == 0 && json_object_set_new(signed_part, "x-otachain-ledger", obj) != 0)
        rc = OTA_ERR_NOMEM;
    return rc;
}

/* Builds root v1 and targets v1 in plan->tmp and signs them with the
 * secret keys given. */
static int init_build(struct init_plan *p, const struct cli_ctx *ctx, struct ota_detail *det)
{
    static const char *const subdirs[] = {"private", "blobs",           "pending",
                                          "public",  "public/metadata", "public/targets"};
    char path[PATH_MAX];
    char online_ids[2][1][OTA_KEYID_SIZE];
    char ids[INIT_MAX_KEYS][OTA_KEYID_SIZE];
    json_t *config = NULL;
    json_t *root = NULL;
    json_t *targets = NULL;
    json_t *keys;
    json_t *roles;
    int rc = 0;

    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if (pathf(path, "%s/%s", p->tmp, subdirs[i]) != 0)
            return OTA_ERR_TOO_LARGE;
        rc = ota_fs_mkdirs(path, i == 0 ? 0700 : 0755, ctx->hook);
        if (rc != 0) {
            ota_detail_set(det, "creating %s: %s", path, strerror(errno));
            return rc;
        }
    }
    config = json_pack("{s:i,s:{s:s,s:s,s:s,s:s}}", "format", OTA_REPO_FORMAT, "expires", "root",
                       p->expires_text[0], "targets", p->expires_text[1], "snapshot",
                       p->expires_text[2], "timestamp", p->expires_text[3]);
    if (config == NULL)
        return OTA_ERR_NOMEM;
    rc = pathf(path, "%s/repo.json", p->tmp);
    if (rc == 0)
        rc = write_new_doc(path, config, true, ctx->hook, det);
    json_decref(config);
    if (rc != 0)
        return rc;

    root = ota_repo_meta_new(OTA_TUF_ROOT, 1, ctx->now + p->expires[OTA_TUF_ROOT]);
    targets = ota_repo_meta_new(OTA_TUF_TARGETS, 1, ctx->now + p->expires[OTA_TUF_TARGETS]);
    keys = json_object();
    roles = json_object();
    if (root == NULL || targets == NULL || keys == NULL || roles == NULL ||
        json_object_set_new(json_object_get(root, "signed"), "keys", keys) != 0 ||
        json_object_set_new(json_object_get(root, "signed"), "roles", roles) != 0 ||
        json_object_set_new(json_object_get(root, "signed"), "consistent_snapshot", json_true()) !=
            0 ||
        json_object_set_new(json_object_get(targets, "signed"), "targets", json_object()) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    /* The online keys, generated here, threshold 1. */
    for (int i = 0; i < 2; i++) {
        enum ota_tuf_role role = i == 0 ? OTA_TUF_SNAPSHOT : OTA_TUF_TIMESTAMP;
        struct ota_signer *s = NULL;
        uint8_t pub[OTA_ED25519_PUB_LEN];

        rc = pathf(path, "%s/private/%s.key", p->tmp, ota_tuf_role_name(role));
        if (rc == 0)
            rc = ota_signer_generate(&s);
        if (rc == 0)
            rc = ota_signer_save(s, path, ctx->hook);
        if (rc != 0) {
            ota_signer_free(s);
            ota_detail_set(det, "writing %s", path);
            goto out;
        }
        ota_signer_public(pub, s);
        memcpy(online_ids[i][0], ota_signer_keyid(s), OTA_KEYID_SIZE);
        ota_signer_free(s);
        rc = add_key(keys, online_ids[i][0], pub);
        if (rc == 0 && json_object_set_new(roles, ota_tuf_role_name(role),
                                           role_json(online_ids[i], 1, 1)) != 0)
            rc = OTA_ERR_NOMEM;
        if (rc != 0)
            goto out;
    }
    for (int i = 0; i < 2; i++) {
        const struct repo_key *k = i == 0 ? p->root : p->targets;
        size_t n = i == 0 ? p->nroot : p->ntargets;
        enum ota_tuf_role role = i == 0 ? OTA_TUF_ROOT : OTA_TUF_TARGETS;

        for (size_t j = 0; j < n; j++) {
            memcpy(ids[j], k[j].keyid, OTA_KEYID_SIZE);
            rc = add_key(keys, k[j].keyid, k[j].pub);
            if (rc != 0)
                goto out;
        }
        if (json_object_set_new(
                roles, ota_tuf_role_name(role),
                role_json(ids, n, i == 0 ? p->root_threshold : p->targets_threshold)) != 0) {
            rc = OTA_ERR_NOMEM;
            goto out;
        }
    }
    if (p->ledger && (rc = init_ledger(p, json_object_get(root, "signed"), ctx->hook, det)) != 0)
        goto out;
    for (size_t j = 0; j < p->nroot; j++) {
        if (p->root[j].signer != NULL && (rc = ota_tuf_sign(root, p->root[j].signer)) != 0)
            goto out;
    }
    for (size_t j = 0; j < p->ntargets; j++) {
        if (p->targets[j].signer != NULL && (rc = ota_tuf_sign(targets, p->targets[j].signer)) != 0)
            goto out;
    }
    rc = pathf(path, "%s/pending/root.json", p->tmp);
    if (rc == 0)
        rc = write_new_doc(path, root, true, ctx->hook, det);
    if (rc == 0)
        rc = pathf(path, "%s/pending/targets.json", p->tmp);
    if (rc == 0)
        rc = write_new_doc(path, targets, true, ctx->hook, det);
out:
    json_decref(root);
    json_decref(targets);
    return rc;
}

/* DIR may not exist, or be an empty directory. */
static int check_new_dir(const char *dir, struct ota_detail *det)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    bool empty = true;

    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        ota_detail_set(det, "%s: %s", dir, strerror(errno));
        return OTA_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        ota_detail_set(det, "%s exists", dir);
        return OTA_ERR_EXISTS;
    }
    d = opendir(dir);
    if (d == NULL) {
        ota_detail_set(det, "%s: %s", dir, strerror(errno));
        return OTA_ERR_IO;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
            break;
        }
    }
    closedir(d);
    if (!empty) {
        ota_detail_set(det, "%s exists and is not empty", dir);
        return OTA_ERR_EXISTS;
    }
    return 0;
}

static int init_parse(struct init_plan *p, struct cli_args *args, int argc, char **argv,
                      struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"root-key", CLI_VAL | CLI_MULTI | CLI_REQ, 0, {0}},
        {"root-threshold", CLI_VAL | CLI_REQ, 0, {0}},
        {"targets-key", CLI_VAL | CLI_MULTI | CLI_REQ, 0, {0}},
        {"targets-threshold", CLI_VAL | CLI_REQ, 0, {0}},
        {"expires", CLI_VAL | CLI_MULTI, 0, {0}},
        {"no-ledger", 0, 0, {0}},
        {"ledger-origin", CLI_VAL, 0, {0}},
        {"witness", CLI_VAL | CLI_MULTI, 0, {0}},
        {"witness-quorum", CLI_VAL, 0, {0}},
        {"ledger-max-age", CLI_VAL, 0, {0}},
    };
    static const char *const defaults[OTA_TUF_ROLE_COUNT] = {"365d", "90d", "7d", "1d"};
    int rc = cli_parse(opts, 10, args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    p->ledger = opts[5].n == 0;
    if (!p->ledger && (opts[6].n + opts[7].n + opts[8].n + opts[9].n) > 0) {
        ota_detail_set(det, "--no-ledger excludes the other ledger options");
        return CLI_ERR_USAGE;
    }
    p->origin = cli_val(&opts[6]);
    if (p->origin != NULL && (strlen(p->origin) > OTA_CHECKPOINT_MAX_ORIGIN ||
                              !ota_note_name_valid(p->origin, strlen(p->origin)))) {
        ota_detail_set(det,
                       "--ledger-origin %s: not a valid log name (1 to %d bytes, no '+' "
                       "or spaces)",
                       p->origin, OTA_CHECKPOINT_MAX_ORIGIN);
        return CLI_ERR_USAGE;
    }
    p->nwitnesses = opts[7].n;
    for (size_t i = 0; i < opts[7].n; i++) {
        rc = ota_ledger_witness_parse(&p->witnesses[i], opts[7].val[i], det);
        if (rc == OTA_ERR_INVALID_ARG)
            rc = CLI_ERR_USAGE;
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(p->witnesses[i].name, p->witnesses[j].name) == 0) {
                ota_detail_set(det, "--witness %s: name given twice", p->witnesses[i].name);
                rc = CLI_ERR_USAGE;
            }
        }
        if (rc != 0)
            return rc;
    }
    if (opts[8].n > 0 &&
        (cli_parse_u64(&p->witness_quorum, cli_val(&opts[8]), p->nwitnesses) != 0 ||
         p->witness_quorum == 0)) {
        ota_detail_set(det, "--witness-quorum %s: expected 1 to %zu (the number of witnesses)",
                       cli_val(&opts[8]), p->nwitnesses);
        return CLI_ERR_USAGE;
    }
    p->max_age = OTA_LEDGER_DEFAULT_MAX_AGE;
    /* Devices refuse a window above 20 years (lib/tuf_client.c). */
    if (opts[9].n > 0 && (cli_parse_duration(&p->max_age, cli_val(&opts[9])) != 0 ||
                          p->max_age > (int64_t)20 * 365 * 86400)) {
        ota_detail_set(det, "--ledger-max-age %s: bad duration (e.g. 1h, 1d; at most 20y)",
                       cli_val(&opts[9]));
        return CLI_ERR_USAGE;
    }
    p->dir = args->pos[0];
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
        p->expires_text[role] = defaults[role];
        if (cli_parse_duration(&p->expires[role], defaults[role]) != 0)
            return OTA_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < opts[4].n; i++) {
        const char *v;
        int role;

        rc = cli_role_value(&role, &v, opts[4].val[i], det);
        if (rc != 0)
            return rc;
        if (strlen(v) > 20 || cli_parse_duration(&p->expires[role], v) != 0) {
            ota_detail_set(det, "--expires %s: bad duration (e.g. 30s, 10m, 12h, 7d, 2w, 1y)",
                           opts[4].val[i]);
            return CLI_ERR_USAGE;
        }
        p->expires_text[role] = v;
    }
    p->nroot = opts[0].n;
    p->ntargets = opts[2].n;
    if (cli_parse_u64(&p->root_threshold, cli_val(&opts[1]), p->nroot) != 0 ||
        p->root_threshold == 0) {
        ota_detail_set(det, "--root-threshold %s: expected 1 to %zu (the number of root keys)",
                       cli_val(&opts[1]), p->nroot);
        return CLI_ERR_USAGE;
    }
    if (cli_parse_u64(&p->targets_threshold, cli_val(&opts[3]), p->ntargets) != 0 ||
        p->targets_threshold == 0) {
        ota_detail_set(det,
                       "--targets-threshold %s: expected 1 to %zu (the number of targets keys)",
                       cli_val(&opts[3]), p->ntargets);
        return CLI_ERR_USAGE;
    }
    rc = load_role_keys(p->root, &opts[0], "root", det);
    if (rc == 0)
        rc = load_role_keys(p->targets, &opts[2], "targets", det);
    /* A root key never signs releases (docs/decisions.md, issue 10). */
    for (size_t i = 0; rc == 0 && i < p->ntargets; i++) {
        for (size_t j = 0; j < p->nroot; j++) {
            if (strcmp(p->targets[i].keyid, p->root[j].keyid) == 0) {
                ota_detail_set(det,
                               "--targets-key %s is the same key as --root-key %s; the offline "
                               "root keys must not sign releases: use another key (otachain "
                               "key generate)",
                               p->targets[i].path, p->root[j].path);
                rc = CLI_ERR_USAGE;
                break;
            }
        }
    }
    return rc;
}

int cmd_repo_init(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct init_plan *p = calloc(1, sizeof(*p));
    struct cli_args args;
    struct repo r;
    struct ota_repo_sigstat st;
    char dir[PATH_MAX];
    char parent[PATH_MAX];
    char vkey[OTA_NOTE_VKEY_SIZE];
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
    bool made = false;
    bool opened = false;
    bool signed_enough;
    size_t len;
    int rc;

    if (p == NULL)
        return OTA_ERR_NOMEM;
    rc = init_parse(p, &args, argc, argv, det);
    if (rc != 0)
        goto out;
    len = strlen(p->dir);
    while (len > 1 && p->dir[len - 1] == '/')
        len--;
    if (len == 0 || len + 16 >= sizeof(dir)) {
        ota_detail_set(det, "bad directory '%s'", p->dir);
        rc = CLI_ERR_USAGE;
        goto out;
    }
    memcpy(dir, p->dir, len);
    dir[len] = '\0';
    rc = check_new_dir(dir, det);
    if (rc != 0)
        goto out;

    /* Build everything beside DIR, then rename it into place: a crash
     * leaves either no repository or a complete one. */
    if (pathf(parent, "%s.init", dir) != 0) {
        rc = OTA_ERR_TOO_LARGE;
        goto out;
    }
    rc = ota_fs_mkdtemp(p->tmp, parent, 0700, ctx->hook);
    if (rc != 0) {
        ota_detail_set(det, "creating %s-*: %s", parent, strerror(errno));
        goto out;
    }
    made = true;
    rc = init_build(p, ctx, det);
    if (rc != 0)
        goto out;
    if (chmod(p->tmp, 0755) != 0) {
        ota_detail_set(det, "chmod %s: %s", p->tmp, strerror(errno));
        rc = OTA_ERR_IO;
        goto out;
    }
    rc = ota_fs_rename(p->tmp, dir, ctx->hook);
    if (rc != 0) {
        int e = errno;

        ota_detail_set(det, "renaming %s to %s: %s", p->tmp, dir, strerror(e));
        if (e == EEXIST || e == ENOTEMPTY)
            rc = OTA_ERR_EXISTS;
        if (access(p->tmp, F_OK) != 0)
            made = false; /* renamed: only the directory fsync failed */
        goto out;
    }
    made = false;

    rc = repo_open(&r, dir, REPO_LOCK, ctx, det);
    if (rc != 0)
        goto out;
    opened = true;
    cli_printf(stdout,
               "initialised %s: root v1 (%zu root keys, threshold %" PRIu64
               "), targets v1 (%zu targets keys, threshold %" PRIu64 ")\n",
               dir, p->nroot, p->root_threshold, p->ntargets, p->targets_threshold);
    ota_repo_sigstat(&st, r.lib.pend_root_md, r.lib.pend_root_md, OTA_TUF_ROOT);
    signed_enough = ota_repo_sigstat_met(&st);
    ota_repo_sigstat(&st, r.lib.pend_targets_md, r.lib.pend_root_md, OTA_TUF_TARGETS);
    signed_enough = signed_enough && ota_repo_sigstat_met(&st);
    /* Witnesses cosign only for a log they are configured with, and they
     * cannot know this log's key before init made it: publishing now
     * could only fail (quorum). */
    if (p->nwitnesses == 0) {
        if (signed_enough) {
            rc = repo_publish(&r, stdout, det);
            goto out;
        }
        cli_printf(stdout, "not published yet: signatures are missing\n");
        repo_print_pending(&r, stdout, true, true);
        cli_printf(stdout,
                   "next: otachain root sign %s --key FILE; otachain release sign %s --key FILE; "
                   "then otachain repo publish %s\n",
                   dir, dir, dir);
        goto out;
    }
    rc = ota_ledger_log_key(vkey, origin, r.lib.pend_root_md, det);
    if (rc != 0)
        goto out;
    cli_printf(stdout,
               "not published yet: the %zu witness(es) must first be configured with this log\n",
               p->nwitnesses);
    cli_printf(stdout, "log origin %s\nlog key %s\n", origin, vkey);
    if (!signed_enough)
        repo_print_pending(&r, stdout, true, true);
    cli_printf(stdout,
               "next: add to each witness's configuration a section\n"
               "  [log NAME]\n  origin = %s\n  key = %s\n"
               "(otachain ledger key %s prints the key) and restart it; ",
               origin, vkey, dir);
    if (!signed_enough)
        cli_printf(stdout,
                   "sign (otachain root sign %s --key FILE; otachain release sign %s --key FILE); ",
                   dir, dir);
    cli_printf(stdout, "then otachain repo publish %s\n", dir);
out:
    if (opened)
        repo_close(&r);
    if (made)
        rm_tree(AT_FDCWD, p->tmp, 0);
    for (size_t i = 0; i < INIT_MAX_KEYS; i++) {
        repo_key_clear(&p->root[i]);
        repo_key_clear(&p->targets[i]);
    }
    free(p);
    return rc;
}

static int open_dir_cmd(struct repo *r, const struct cli_ctx *ctx, struct cli_opt *opts,
                        size_t nopts, unsigned flags, int argc, char **argv, struct ota_detail *det)
{
    struct cli_args args;
    int rc = cli_parse(opts, nopts, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    return repo_open(r, args.pos[0], flags, ctx, det);
}

/* DIR and options, --witness-timeout D (1 s to 1 h: how long each
 * witness may take to answer one add-checkpoint request) checked before
 * DIR is opened. */
static int open_publish_cmd(struct repo *r, const struct cli_ctx *ctx, struct cli_opt *opts,
                            size_t nopts, int argc, char **argv, struct ota_detail *det)
{
    const struct cli_opt *o = &opts[nopts - 1]; /* --witness-timeout is last */
    struct cli_args args;
    int64_t v = 0;
    int rc = cli_parse(opts, nopts, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    if (cli_val(o) != NULL && (cli_parse_duration(&v, cli_val(o)) != 0 || v > 3600)) {
        ota_detail_set(det, "--witness-timeout %s: a duration of 1s to 1h (30s, 10m)", cli_val(o));
        return CLI_ERR_USAGE;
    }
    rc = repo_open(r, args.pos[0], REPO_LOCK, ctx, det);
    if (rc == 0)
        r->witness_timeout_ms = (long)v * 1000;
    return rc;
}

int cmd_repo_publish(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"witness-timeout", CLI_VAL, 0, {0}}};
    struct repo r;
    int rc = open_publish_cmd(&r, ctx, opts, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_publish(&r, stdout, det);
    repo_close(&r);
    return rc;
}

int cmd_repo_refresh(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"snapshot", 0, 0, {0}}, {"witness-timeout", CLI_VAL, 0, {0}}};
    struct repo r;
    int rc = open_publish_cmd(&r, ctx, opts, 2, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_refresh(&r, opts[0].n > 0, stdout, det);
    repo_close(&r);
    return rc;
}

int cmd_repo_status(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct repo r;
    int rc = open_dir_cmd(&r, ctx, NULL, 0, 0, argc, argv, det);

    if (rc != 0)
        return rc;
    repo_print_status(&r, stdout);
    repo_close(&r);
    return 0;
}
