/* The authoring directory: configuration, verified published state,
 * pending metadata, publish and refresh (see repo.h for the state machine
 * and its invariants). */
#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/cjson.h"
#include "otachain/fsutil.h"
#include "otachain/tuf_sign.h"
#include "ledger.h"

#define COPY_CHUNK (64u * 1024)

static const char *const default_expiry[OTA_TUF_ROLE_COUNT] = {"365d", "90d", "7d", "1d"};

/* ------------------------------------------------------------- helpers */

static bool file_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

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

int repo_dump(char **out, size_t *len, const json_t *doc, bool indent)
{
    char *s = json_dumps(doc, JSON_SORT_KEYS | (indent ? JSON_INDENT(1) : JSON_COMPACT));

    *out = NULL;
    *len = 0;
    if (s == NULL)
        return OTA_ERR_NOMEM;
    *out = s;
    *len = strlen(s);
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

static int write_doc(const struct repo *r, const char *path, const json_t *doc, bool indent,
                     uint64_t *len_out, uint8_t sha_out[OTA_SHA256_LEN], struct ota_detail *det)
{
    char *s = NULL;
    size_t len = 0;
    int rc = repo_dump(&s, &len, doc, indent);

    if (rc == 0 && sha_out != NULL)
        rc = ota_sha256(sha_out, s, len);
    if (rc == 0)
        rc = repo_write(r, path, s, len, det);
    if (len_out != NULL)
        *len_out = len;
    free(s);
    return rc;
}

int repo_lock(int *fd, const char *dir, struct ota_detail *det)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/.lock", dir);

    *fd = -1;
    if (n < 0 || n >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0) {
        int e = errno;

        ota_detail_set(det, "%s: %s", path, strerror(e));
        return ota_fs_errno(e);
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(*fd);
        *fd = -1;
        ota_detail_set(det, "%s is held by another otachain process", path);
        return e == EWOULDBLOCK ? OTA_ERR_LOCKED : OTA_ERR_IO;
    }
    return 0;
}

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

/* ------------------------------------------------------------ sigstat */

bool repo_role_has_key(const struct ota_tuf_meta *root, enum ota_tuf_role role, const char *keyid)
{
    const struct ota_tuf_role_keys *rk = &root->roles[role];

    for (size_t i = 0; i < rk->nkeyids; i++) {
        if (strcmp(rk->keyids[i], keyid) == 0)
            return true;
    }
    return false;
}

/* true if md carries a valid signature by keyid over its signed part. */
static bool sig_valid(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                      const char *keyid)
{
    const struct ota_tuf_key *key = ota_tuf_find_key(root, keyid);

    if (key == NULL || !key->usable)
        return false;
    for (size_t i = 0; i < md->nsigs; i++) {
        if (strcmp(md->sigs[i].keyid, keyid) == 0 && md->sigs[i].well_formed)
            return ota_ed25519_verify(key->pub, md->signed_canonical, md->signed_canonical_len,
                                      md->sigs[i].sig) == 0;
    }
    return false;
}

void repo_sigstat(struct repo_sigstat *st, const struct ota_tuf_meta *md,
                  const struct ota_tuf_meta *root, enum ota_tuf_role role)
{
    const struct ota_tuf_role_keys *rk = &root->roles[role];

    memset(st, 0, sizeof(*st));
    st->threshold = rk->threshold;
    st->nkeys = rk->nkeyids;
    for (size_t i = 0; i < rk->nkeyids && i < OTA_TUF_MAX_ROLE_KEYS; i++) {
        if (sig_valid(md, root, rk->keyids[i]))
            memcpy(st->valid[st->nvalid++], rk->keyids[i], OTA_KEYID_SIZE);
        else
            memcpy(st->able[st->nable++], rk->keyids[i], OTA_KEYID_SIZE);
    }
}

bool repo_sigstat_met(const struct repo_sigstat *st)
{
    return st->nvalid >= st->threshold;
}

void repo_sigstat_text(char *out, size_t n, const struct repo_sigstat *st)
{
    size_t used;
    int w;

    if (repo_sigstat_met(st)) {
        snprintf(out, n, "%zu of %u required signatures: threshold met", st->nvalid, st->threshold);
        return;
    }
    w = snprintf(out, n,
                 "%zu of %u required signatures (%zu missing; keys still able to sign:", st->nvalid,
                 st->threshold, (size_t)st->threshold - st->nvalid);
    if (w < 0 || (size_t)w >= n)
        return;
    used = (size_t)w;
    for (size_t i = 0; i < st->nable; i++) {
        w = snprintf(out + used, n - used, "%s %s", i > 0 ? "," : "", st->able[i]);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
    snprintf(out + used, n - used, ")");
}

void repo_sigstat_print(FILE *f, const char *label, const struct repo_sigstat *st)
{
    fprintf(f, "  %s: %zu of %u required signatures%s\n", label, st->nvalid, st->threshold,
            repo_sigstat_met(st) ? ": threshold met" : "");
    for (size_t i = 0; i < st->nvalid; i++)
        fprintf(f, "    signed by  %s\n", st->valid[i]);
    if (!repo_sigstat_met(st)) {
        fprintf(f, "    missing %zu; keys still able to sign:\n",
                (size_t)st->threshold - st->nvalid);
        for (size_t i = 0; i < st->nable; i++)
            fprintf(f, "    can sign   %s\n", st->able[i]);
    }
}

/* Sets det to a threshold report for md under root's role. */
static void threshold_detail(struct ota_detail *det, const char *what,
                             const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                             enum ota_tuf_role role)
{
    struct repo_sigstat st;
    char text[OTA_DETAIL_LEN];

    repo_sigstat(&st, md, root, role);
    repo_sigstat_text(text, sizeof(text), &st);
    ota_detail_set(det, "%s (%s keys of root v%" PRIu64 "): %s", what, ota_tuf_role_name(role),
                   root->version, text);
}

/* ---------------------------------------------------------- metadata */

json_t *repo_meta_new(enum ota_tuf_role role, uint64_t version, int64_t expires)
{
    char t[OTA_TUF_TIME_SIZE];

    if (ota_tuf_format_time(t, expires) != 0)
        return NULL;
    return json_pack("{s:{s:s,s:s,s:I,s:s},s:[]}", "signed", "_type", ota_tuf_role_name(role),
                     "spec_version", OTA_TUF_SPEC_VERSION, "version", (json_int_t)version,
                     "expires", t, "signatures");
}

static json_t *metafile_json(uint64_t version, uint64_t len, const uint8_t sha[OTA_SHA256_LEN])
{
    char hex[OTA_SHA256_HEX_LEN + 1];

    ota_hex_encode(hex, sha, OTA_SHA256_LEN);
    return json_pack("{s:I,s:I,s:{s:s}}", "version", (json_int_t)version, "length", (json_int_t)len,
                     "hashes", "sha256", hex);
}

/* Reads one published metadata file: capped, checked against pin when
 * given, parsed as role; its length and SHA-256 returned. */
static int read_meta(struct ota_tuf_meta **md, uint64_t *len_out, uint8_t sha[OTA_SHA256_LEN],
                     const char *path, enum ota_tuf_role role, uint64_t cap,
                     const struct ota_tuf_metafile *pin, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *md = NULL;
    if (pin != NULL && pin->has_length && pin->length < cap)
        cap = pin->length;
    rc = ota_fs_read(&data, &len, path, (size_t)cap);
    if (rc == OTA_ERR_TOO_LARGE && pin != NULL && pin->has_length && pin->length == cap) {
        /* Longer than the pinned length: the file broke its pin. */
        ota_detail_set(det, "%s: more than the %llu bytes pinned for it", path,
                       (unsigned long long)pin->length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (rc != 0) {
        ota_detail_set(det, "%s", path);
        return rc;
    }
    if (pin != NULL) {
        rc = ota_tuf_check_metafile(pin, data, len, det);
        if (rc != 0)
            goto out;
    }
    if (sha != NULL) {
        rc = ota_sha256(sha, data, len);
        if (rc != 0)
            goto out;
    }
    if (len_out != NULL)
        *len_out = len;
    rc = ota_tuf_parse(md, data, len, role, det);
out:
    if (rc != 0)
        ota_detail_prefix(det, path);
    free(data);
    return rc;
}

/* Verifies published metadata against the newest root; while a publish of
 * that root is unfinished, metadata signed under the previous root is
 * still the live state (invariant 3). */
static int verify_published(struct repo *r, const struct ota_tuf_meta *md, enum ota_tuf_role role,
                            const char *path, struct ota_detail *det)
{
    int rc = ota_tuf_verify_role(md, r->root, role, det);

    if (rc != 0 && r->maybe_interrupted && r->prev_root != NULL &&
        ota_tuf_verify_role(md, r->prev_root, role, NULL) == 0) {
        r->interrupted = true;
        rc = 0;
    }
    if (rc != 0)
        ota_detail_prefix(det, path);
    return rc;
}

static int load_config(struct repo *r, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    json_t *exp;
    json_int_t format;
    const struct ota_json_limits lim = {REPO_CONFIG_MAX, 8, 0, 1};
    int rc = repo_path(path, r, "repo.json");

    if (rc != 0)
        return rc;
    rc = ota_fs_read(&data, &len, path, REPO_CONFIG_MAX);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_detail_set(det, "%s is not an otachain repository (no repo.json)", r->dir);
        return rc;
    }
    if (rc != 0) {
        ota_detail_set(det, "%s", path);
        return rc;
    }
    rc = ota_json_parse(&doc, data, len, &lim, det);
    free(data);
    if (rc != 0) {
        ota_detail_prefix(det, path);
        return rc;
    }
    rc = OTA_ERR_FORMAT;
    format = json_is_integer(json_object_get(doc, "format"))
                 ? json_integer_value(json_object_get(doc, "format"))
                 : -1;
    if (format != REPO_FORMAT) {
        ota_detail_set(det, "%s: format must be %d", path, REPO_FORMAT);
        goto out;
    }
    exp = json_object_get(doc, "expires");
    if (exp != NULL && !json_is_object(exp)) {
        ota_detail_set(det, "%s: expires must be an object", path);
        goto out;
    }
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
        const char *name = ota_tuf_role_name((enum ota_tuf_role)role);
        json_t *v = exp != NULL ? json_object_get(exp, name) : NULL;
        const char *text = default_expiry[role];

        if (v != NULL) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof(r->expires_text[0])) {
                ota_detail_set(det, "%s: expires.%s must be a duration", path, name);
                goto out;
            }
            text = json_string_value(v);
        }
        if (cli_parse_duration(&r->expires[role], text) != 0) {
            ota_detail_set(det, "%s: expires.%s: bad duration '%s'", path, name, text);
            goto out;
        }
        snprintf(r->expires_text[role], sizeof(r->expires_text[role]), "%s", text);
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static int load_pending(struct repo *r, enum ota_tuf_role role, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    struct ota_tuf_meta *md = NULL;
    uint64_t cap = role == OTA_TUF_ROOT ? OTA_TUF_ROOT_MAX_LEN : OTA_TUF_TARGETS_MAX_LEN;
    const struct ota_json_limits lim = {cap, OTA_JSON_MAX_DEPTH, 0, 1};
    int rc = repo_path(path, r, "pending/%s.json", ota_tuf_role_name(role));

    if (rc != 0)
        return rc;
    rc = ota_fs_read(&data, &len, path, cap);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc != 0) {
        ota_detail_set(det, "%s", path);
        return rc;
    }
    rc = ota_json_parse(&doc, data, len, &lim, det);
    free(data);
    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, role, det);
    if (rc != 0) {
        json_decref(doc);
        ota_detail_prefix(det, path);
        return rc;
    }
    if (role == OTA_TUF_ROOT) {
        r->pend_root = doc;
        r->pend_root_md = md;
    } else {
        r->pend_targets = doc;
        r->pend_targets_md = md;
    }
    return 0;
}

/* Root chain 1..N, each signed by its predecessor's and its own root
 * threshold; root.json must equal N.root.json. */
static int load_roots(struct repo *r, struct ota_detail *det)
{
    char path[PATH_MAX];
    struct ota_tuf_meta *newest = NULL;
    struct ota_tuf_meta *prev = NULL;
    struct ota_tuf_meta *cur = NULL;
    int rc = repo_path(path, r, "public/metadata/root.json");

    if (rc != 0)
        return rc;
    rc = read_meta(&newest, NULL, NULL, path, OTA_TUF_ROOT, OTA_TUF_ROOT_MAX_LEN, NULL, det);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* not published yet */
    if (rc != 0)
        return rc;
    for (uint64_t v = 1; v <= newest->version; v++) {
        rc = repo_path(path, r, "public/metadata/%" PRIu64 ".root.json", v);
        if (rc == 0)
            rc = read_meta(&cur, NULL, NULL, path, OTA_TUF_ROOT, OTA_TUF_ROOT_MAX_LEN, NULL, det);
        if (rc != 0)
            goto out;
        if (cur->version != v) {
            ota_detail_set(det, "%s: version %" PRIu64 ", expected %" PRIu64, path, cur->version,
                           v);
            rc = OTA_ERR_VERSION_MISMATCH;
            goto out;
        }
        if (prev != NULL) {
            rc = ota_tuf_verify_role(cur, prev, OTA_TUF_ROOT, det);
            if (rc != 0) {
                ota_detail_prefix(det, "by the previous root");
                ota_detail_prefix(det, path);
                goto out;
            }
        }
        rc = ota_tuf_verify_role(cur, cur, OTA_TUF_ROOT, det);
        if (rc != 0) {
            ota_detail_prefix(det, "by its own root keys");
            ota_detail_prefix(det, path);
            goto out;
        }
        ota_tuf_meta_free(r->prev_root);
        r->prev_root = prev;
        prev = cur;
        cur = NULL;
    }
    if (prev->signed_canonical_len != newest->signed_canonical_len ||
        memcmp(prev->signed_canonical, newest->signed_canonical, prev->signed_canonical_len) != 0) {
        ota_detail_set(det, "%s/public/metadata/root.json differs from %" PRIu64 ".root.json",
                       r->dir, newest->version);
        rc = OTA_ERR_FORMAT;
        goto out;
    }
    r->root = prev;
    prev = NULL;
out:
    ota_tuf_meta_free(cur);
    ota_tuf_meta_free(prev);
    ota_tuf_meta_free(newest);
    if (rc != 0) {
        ota_tuf_meta_free(r->prev_root);
        r->prev_root = NULL;
    }
    return rc;
}

static int load_published(struct repo *r, struct ota_detail *det)
{
    char path[PATH_MAX];
    const struct ota_tuf_metafile *mf;
    int rc;

    rc = repo_path(path, r, "public/metadata/timestamp.json");
    if (rc != 0)
        return rc;
    rc = read_meta(&r->timestamp, NULL, NULL, path, OTA_TUF_TIMESTAMP, OTA_TUF_TIMESTAMP_MAX_LEN,
                   NULL, det);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* the first publish stopped before its timestamp */
    if (rc == 0)
        rc = verify_published(r, r->timestamp, OTA_TUF_TIMESTAMP, path, det);
    if (rc != 0)
        return rc;

    mf = ota_tuf_find_meta(r->timestamp, "snapshot.json");
    if (mf == NULL) {
        ota_detail_set(det, "%s: no snapshot.json in meta", path);
        return OTA_ERR_FORMAT;
    }
    rc = repo_path(path, r, "public/metadata/%" PRIu64 ".snapshot.json", mf->version);
    if (rc == 0)
        rc = read_meta(&r->snapshot, &r->snapshot_len, r->snapshot_sha256, path, OTA_TUF_SNAPSHOT,
                       OTA_TUF_SNAPSHOT_MAX_LEN, mf, det);
    if (rc == 0)
        rc = verify_published(r, r->snapshot, OTA_TUF_SNAPSHOT, path, det);
    if (rc != 0)
        return rc;
    if (r->snapshot->version != mf->version) {
        ota_detail_set(det, "%s: version %" PRIu64 ", timestamp pins %" PRIu64, path,
                       r->snapshot->version, mf->version);
        return OTA_ERR_VERSION_MISMATCH;
    }

    mf = ota_tuf_find_meta(r->snapshot, "targets.json");
    if (mf == NULL) {
        ota_detail_set(det, "%s: no targets.json in meta", path);
        return OTA_ERR_META_MISSING;
    }
    rc = repo_path(path, r, "public/metadata/%" PRIu64 ".targets.json", mf->version);
    if (rc == 0)
        rc = read_meta(&r->targets, &r->targets_len, r->targets_sha256, path, OTA_TUF_TARGETS,
                       OTA_TUF_TARGETS_MAX_LEN, mf, det);
    if (rc == 0)
        rc = verify_published(r, r->targets, OTA_TUF_TARGETS, path, det);
    if (rc != 0)
        return rc;
    if (r->targets->version != mf->version) {
        ota_detail_set(det, "%s: version %" PRIu64 ", snapshot pins %" PRIu64, path,
                       r->targets->version, mf->version);
        return OTA_ERR_VERSION_MISMATCH;
    }
    return 0;
}

int repo_open(struct repo *r, const char *dir, unsigned flags, const struct cli_ctx *ctx,
              struct ota_detail *det)
{
    size_t len = strlen(dir);
    uint64_t pub_root;
    uint64_t pub_targets;
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

    rc = load_config(r, det);
    if (rc == 0 && (flags & REPO_LOCK))
        rc = repo_lock(&r->lock_fd, r->dir, det);
    if (rc == 0)
        rc = load_pending(r, OTA_TUF_ROOT, det);
    if (rc == 0)
        rc = load_pending(r, OTA_TUF_TARGETS, det);
    if (rc == 0)
        rc = load_roots(r, det);
    if (rc != 0)
        goto fail;

    pub_root = r->root != NULL ? r->root->version : 0;
    if (r->pend_root_md != NULL) {
        uint64_t v = r->pend_root_md->version;

        r->pend_root_stale = v <= pub_root;
        r->maybe_interrupted = v == pub_root && pub_root > 1;
        if (v > pub_root + 1) {
            ota_detail_set(det, "%s/pending/root.json: version %" PRIu64 ", expected %" PRIu64,
                           r->dir, v, pub_root + 1);
            rc = OTA_ERR_VERSION_MISMATCH;
            goto fail;
        }
    }
    if (r->root != NULL) {
        rc = load_published(r, det);
        if (rc != 0)
            goto fail;
    }
    pub_targets = repo_published_targets_version(r);
    if (r->pend_targets_md != NULL) {
        uint64_t v = r->pend_targets_md->version;

        r->pend_targets_stale = v <= pub_targets;
        if (v > pub_targets + 1) {
            /* Only over versions logged by publishes that did not
             * complete (release add skips them); v itself may be logged
             * too, by a second failed publish of the same file. */
            uint64_t first = 0;

            rc = repo_unlogged_version(r, OTA_TUF_TARGETS, pub_targets + 1, &first, det);
            if (rc != 0)
                goto fail;
            if (first < v) {
                ota_detail_set(det,
                               "%s/pending/targets.json: version %" PRIu64 ", expected %" PRIu64,
                               r->dir, v, first);
                rc = OTA_ERR_VERSION_MISMATCH;
                goto fail;
            }
        }
    }
    return 0;
fail:
    repo_close(r);
    return rc;
}

void repo_close(struct repo *r)
{
    ota_tuf_meta_free(r->root);
    ota_tuf_meta_free(r->prev_root);
    ota_tuf_meta_free(r->timestamp);
    ota_tuf_meta_free(r->snapshot);
    ota_tuf_meta_free(r->targets);
    ota_tuf_meta_free(r->pend_root_md);
    ota_tuf_meta_free(r->pend_targets_md);
    json_decref(r->pend_root);
    json_decref(r->pend_targets);
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    r->root = r->prev_root = r->timestamp = r->snapshot = r->targets = NULL;
    r->pend_root_md = r->pend_targets_md = NULL;
    r->pend_root = r->pend_targets = NULL;
    r->lock_fd = -1;
}

const struct ota_tuf_meta *repo_next_root(const struct repo *r)
{
    if (r->pend_root_md != NULL && !r->pend_root_stale)
        return r->pend_root_md;
    return r->root;
}

uint64_t repo_published_targets_version(const struct repo *r)
{
    return r->targets != NULL ? r->targets->version : 0;
}

/* ----------------------------------------------------------- pending */

static void drop_pending(struct repo *r, enum ota_tuf_role role)
{
    if (role == OTA_TUF_ROOT) {
        ota_tuf_meta_free(r->pend_root_md);
        json_decref(r->pend_root);
        r->pend_root_md = NULL;
        r->pend_root = NULL;
        r->pend_root_stale = false;
    } else {
        ota_tuf_meta_free(r->pend_targets_md);
        json_decref(r->pend_targets);
        r->pend_targets_md = NULL;
        r->pend_targets = NULL;
        r->pend_targets_stale = false;
    }
}

int repo_pending_targets(struct repo *r, struct ota_detail *det)
{
    json_t *doc;
    json_t *targets;
    int rc;

    if (r->pend_targets != NULL && !r->pend_targets_stale)
        return 0;
    drop_pending(r, OTA_TUF_TARGETS);
    doc = repo_meta_new(OTA_TUF_TARGETS, repo_published_targets_version(r) + 1,
                        r->ctx->now + r->expires[OTA_TUF_TARGETS]);
    if (doc == NULL)
        return OTA_ERR_NOMEM;
    if (r->targets != NULL)
        targets =
            json_deep_copy(json_object_get(json_object_get(r->targets->doc, "signed"), "targets"));
    else
        targets = json_object();
    if (targets == NULL ||
        json_object_set_new(json_object_get(doc, "signed"), "targets", targets) != 0) {
        json_decref(doc);
        return OTA_ERR_NOMEM;
    }
    rc = ota_tuf_from_json(&r->pend_targets_md, doc, OTA_TUF_TARGETS, det);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    r->pend_targets = doc;
    return 0;
}

int repo_set_pending(struct repo *r, enum ota_tuf_role role, json_t *doc, struct ota_detail *det)
{
    char path[PATH_MAX];
    struct ota_tuf_meta *md = NULL;
    int rc = repo_path(path, r, "pending/%s.json", ota_tuf_role_name(role));

    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, role, det);
    if (rc == 0)
        rc = write_doc(r, path, doc, true, NULL, NULL, det);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return rc;
    }
    json_incref(doc);
    drop_pending(r, role);
    if (role == OTA_TUF_ROOT) {
        r->pend_root = doc;
        r->pend_root_md = md;
    } else {
        r->pend_targets = doc;
        r->pend_targets_md = md;
    }
    return 0;
}

static bool doc_has_sig(const json_t *doc, const char *keyid)
{
    json_t *sigs = json_object_get(doc, "signatures");
    size_t i;
    json_t *s;

    json_array_foreach(sigs, i, s)
    {
        const char *k = json_string_value(json_object_get(s, "keyid"));

        if (k != NULL && strcmp(k, keyid) == 0)
            return true;
    }
    return false;
}

int repo_merge_file(struct repo *r, enum ota_tuf_role role, const char *file,
                    const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                    struct ota_detail *det)
{
    uint64_t cap = role == OTA_TUF_ROOT ? OTA_TUF_ROOT_MAX_LEN : OTA_TUF_TARGETS_MAX_LEN;
    const struct ota_tuf_meta *pend = role == OTA_TUF_ROOT ? r->pend_root_md : r->pend_targets_md;
    json_t *pdoc = role == OTA_TUF_ROOT ? r->pend_root : r->pend_targets;
    struct ota_tuf_meta *src = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *added = 0;
    rc = ota_fs_read(&data, &len, file, cap);
    if (rc != 0) {
        ota_detail_set(det, "%s", file);
        return rc;
    }
    rc = ota_tuf_parse(&src, data, len, role, det);
    free(data);
    if (rc != 0) {
        ota_detail_prefix(det, file);
        return rc;
    }
    if (src->signed_canonical_len != pend->signed_canonical_len ||
        memcmp(src->signed_canonical, pend->signed_canonical, pend->signed_canonical_len) != 0) {
        ota_detail_set(det, "%s: signed part differs from %s/pending/%s.json", file, r->dir,
                       ota_tuf_role_name(role));
        rc = OTA_ERR_FORMAT;
        goto out;
    }
    for (size_t i = 0; i < src->nsigs; i++) {
        const struct ota_tuf_sig *s = &src->sigs[i];
        char hex[2 * OTA_ED25519_SIG_LEN + 1];
        bool ok = false;
        bool known = false;

        if (doc_has_sig(pdoc, s->keyid))
            continue;
        for (size_t k = 0; k < nroots && !ok; k++) {
            if (roots[k] == NULL || !repo_role_has_key(roots[k], role, s->keyid))
                continue;
            known = true;
            ok = sig_valid(src, roots[k], s->keyid);
        }
        if (!ok) {
            cli_warn("%s: dropping the signature by %s: %s", file, s->keyid,
                     known ? "it does not verify" : "not a key of the role");
            continue;
        }
        ota_hex_encode(hex, s->sig, OTA_ED25519_SIG_LEN);
        if (json_array_append_new(json_object_get(pdoc, "signatures"),
                                  json_pack("{s:s,s:s}", "keyid", s->keyid, "sig", hex)) != 0) {
            rc = OTA_ERR_NOMEM;
            goto out;
        }
        (*added)++;
    }
    rc = 0;
out:
    ota_tuf_meta_free(src);
    return rc;
}

/* ------------------------------------------------------------ copying */

int repo_copy_file(uint8_t sha256_out[OTA_SHA256_LEN], uint64_t *len_out, const char *dst,
                   const char *src, const uint8_t *want_sha256, const uint64_t *want_len,
                   uint64_t max, const struct ota_fs_hook *hook, struct ota_detail *det)
{
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    const char *slash;
    struct ota_sha256_ctx *sctx = NULL;
    uint8_t *chunk = NULL;
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t total = 0;
    struct stat st;
    int in = -1;
    int out = -1;
    bool tmp_made = false;
    int rc;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dst);

    if (n < 0 || n >= (int)sizeof(tmp))
        return OTA_ERR_TOO_LARGE;
    slash = strrchr(dst, '/');
    n = slash == NULL ? snprintf(dir, sizeof(dir), ".")
                      : snprintf(dir, sizeof(dir), "%.*s", (int)(slash - dst), dst);
    if (n < 0 || n >= (int)sizeof(dir))
        return OTA_ERR_TOO_LARGE;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        int e = errno;

        ota_detail_set(det, "%s: %s", src, strerror(e));
        return ota_fs_errno(e);
    }
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        ota_detail_set(det, "%s: not a regular file", src);
        rc = OTA_ERR_IO;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        ota_detail_set(det, "%s: %lld bytes, limit %" PRIu64, src, (long long)st.st_size, max);
        rc = OTA_ERR_TOO_LARGE;
        goto out;
    }
    chunk = malloc(COPY_CHUNK);
    rc = chunk == NULL ? OTA_ERR_NOMEM : ota_sha256_init(&sctx);
    if (rc != 0)
        goto out;

    if (ota_fs_hook_step(hook, OTA_FS_STEP_CREATE, dst) != 0) {
        rc = OTA_ERR_IO;
        goto out;
    }
    out = mkstemp(tmp);
    if (out < 0) {
        int e = errno;

        ota_detail_set(det, "%s: %s", tmp, strerror(e));
        rc = ota_fs_errno(e);
        goto out;
    }
    tmp_made = true;
    if (fchmod(out, 0644) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    if (ota_fs_hook_step(hook, OTA_FS_STEP_WRITE, dst) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    for (;;) {
        ssize_t got = read(in, chunk, COPY_CHUNK);
        size_t off = 0;

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ota_detail_set(det, "reading %s: %s", src, strerror(errno));
            rc = OTA_ERR_IO;
            goto out;
        }
        if (got == 0)
            break;
        total += (uint64_t)got;
        if (total > max) {
            ota_detail_set(det, "%s: more than %" PRIu64 " bytes", src, max);
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        rc = ota_sha256_update(sctx, chunk, (size_t)got);
        if (rc != 0)
            goto out;
        while (off < (size_t)got) {
            ssize_t w = write(out, chunk + off, (size_t)got - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = OTA_ERR_IO;
                goto io_fail;
            }
            off += (size_t)w;
        }
    }
    rc = ota_sha256_final(sha, sctx);
    if (rc != 0)
        goto out;
    if (want_len != NULL && total != *want_len) {
        ota_detail_set(det, "%s: %" PRIu64 " bytes, expected %" PRIu64, src, total, *want_len);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto out;
    }
    if (want_sha256 != NULL && !ota_ct_equal(sha, want_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "%s: content does not match its SHA-256", src);
        rc = OTA_ERR_HASH_MISMATCH;
        goto out;
    }
    if (ota_fs_hook_step(hook, OTA_FS_STEP_FSYNC, dst) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    if (fsync(out) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    if (close(out) != 0) {
        out = -1;
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    out = -1;
    if (ota_fs_hook_step(hook, OTA_FS_STEP_RENAME, dst) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    if (rename(tmp, dst) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    tmp_made = false;
    if (ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, dst) != 0) {
        rc = OTA_ERR_IO;
        goto io_fail;
    }
    rc = ota_fs_sync_dir(dir);
    if (rc != 0)
        goto io_fail;
    if (sha256_out != NULL)
        memcpy(sha256_out, sha, OTA_SHA256_LEN);
    if (len_out != NULL)
        *len_out = total;
    goto out;
io_fail:
    ota_detail_set(det, "writing %s: %s", dst, strerror(errno));
out:
    if (out >= 0)
        close(out);
    if (tmp_made)
        unlink(tmp);
    close(in);
    free(chunk);
    ota_sha256_ctx_free(sctx);
    return rc;
}

/* ------------------------------------------------------ online keys */

static int key_path(char out[PATH_MAX], const struct repo *r, enum ota_tuf_role role, bool next)
{
    return repo_path(out, r, "private/%s.key%s", ota_tuf_role_name(role), next ? ".next" : "");
}

/* The online key of role (snapshot or timestamp) that root lists:
 * <role>.key or, during a rotation, <role>.key.next. */
static int online_signer(struct ota_signer **out, const struct repo *r, enum ota_tuf_role role,
                         const struct ota_tuf_meta *root, struct ota_detail *det)
{
    *out = NULL;
    for (int next = 0; next < 2; next++) {
        char path[PATH_MAX];
        struct ota_signer *s = NULL;
        int rc = key_path(path, r, role, next != 0);

        if (rc != 0)
            return rc;
        if (!file_exists(path))
            continue;
        rc = ota_signer_load(&s, path, det);
        if (rc != 0) {
            ota_detail_prefix(det, "online key");
            return rc;
        }
        if (repo_role_has_key(root, role, ota_signer_keyid(s))) {
            *out = s;
            return 0;
        }
        ota_signer_free(s);
    }
    ota_detail_set(det, "no key in %s/private/ is a %s key of root v%" PRIu64, r->dir,
                   ota_tuf_role_name(role), root->version);
    return OTA_ERR_NOT_FOUND;
}

static int finish_rotation(const struct repo *r, const struct ota_tuf_meta *root,
                           struct ota_detail *det)
{
    const enum ota_tuf_role roles[2] = {OTA_TUF_SNAPSHOT, OTA_TUF_TIMESTAMP};
    const struct ota_fs_hook *hook = r->ctx->hook;

    if (root == NULL)
        return 0;
    for (int i = 0; i < 2; i++) {
        char next[PATH_MAX];
        char cur[PATH_MAX];
        char dir[PATH_MAX];
        struct ota_signer *s = NULL;
        bool listed;
        int rc = key_path(next, r, roles[i], true);

        if (rc == 0)
            rc = key_path(cur, r, roles[i], false);
        if (rc == 0)
            rc = repo_path(dir, r, "private");
        if (rc != 0)
            return rc;
        if (!file_exists(next))
            continue;
        rc = ota_signer_load(&s, next, det);
        if (rc != 0) {
            ota_detail_prefix(det, "online key");
            return rc;
        }
        listed = repo_role_has_key(root, roles[i], ota_signer_keyid(s));
        ota_signer_free(s);
        if (!listed)
            continue;
        if (ota_fs_hook_step(hook, OTA_FS_STEP_RENAME, cur) != 0)
            return OTA_ERR_IO;
        if (rename(next, cur) != 0) {
            ota_detail_set(det, "renaming %s: %s", next, strerror(errno));
            return OTA_ERR_IO;
        }
        if (ota_fs_hook_step(hook, OTA_FS_STEP_DIRSYNC, cur) != 0)
            return OTA_ERR_IO;
        rc = ota_fs_sync_dir(dir);
        if (rc != 0) {
            ota_detail_set(det, "%s", dir);
            return rc;
        }
    }
    return 0;
}

int repo_finish_key_rotation(struct repo *r, struct ota_detail *det)
{
    return finish_rotation(r, r->root, det);
}

/* ------------------------------------------------------------ publish */

/* Builds, signs and self-checks snapshot or timestamp metadata. */
static int online_doc(json_t **out, struct repo *r, enum ota_tuf_role role, uint64_t version,
                      const char *meta_name, json_t *meta_entry, const struct ota_tuf_meta *root,
                      struct ota_detail *det)
{
    struct ota_signer *s = NULL;
    struct ota_tuf_meta *md = NULL;
    json_t *doc = repo_meta_new(role, version, r->ctx->now + r->expires[role]);
    json_t *meta = json_object();
    int rc;

    *out = NULL;
    if (doc == NULL || meta == NULL || meta_entry == NULL ||
        json_object_set(meta, meta_name, meta_entry) != 0 ||
        json_object_set(json_object_get(doc, "signed"), "meta", meta) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = online_signer(&s, r, role, root, det);
    if (rc == 0)
        rc = ota_tuf_sign(doc, s);
    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, role, det);
    if (rc == 0)
        rc = ota_tuf_verify_role(md, root, role, det);
    if (rc != 0) {
        ota_detail_prefix(det, ota_tuf_role_name(role));
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    ota_tuf_meta_free(md);
    ota_signer_free(s);
    json_decref(meta);
    json_decref(doc);
    return rc;
}

/* The pack of an image target whose custom names a chunk index:
 * blobs/<sha256>.pack -> public/chunks/<sha256>.pack (not a TUF target:
 * every chunk in it is checked against the signed index). Skipped when
 * present with the same length. */
static int publish_pack(struct repo *r, const struct ota_tuf_target *t, struct ota_detail *det)
{
    char hex[OTA_SHA256_HEX_LEN + 1];
    char dst[PATH_MAX];
    char src[PATH_MAX];
    char *slash;
    struct stat st, sst;
    int rc;

    if (t->custom == NULL || !json_is_string(json_object_get(t->custom, "index")))
        return 0;
    ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
    rc = repo_path(src, r, "blobs/%s.pack", hex);
    if (rc == 0)
        rc = repo_path(dst, r, "public/chunks/%s.pack", hex);
    if (rc != 0)
        return rc;
    if (stat(src, &sst) != 0 || !S_ISREG(sst.st_mode)) {
        ota_detail_set(det, "%s: the pack %s is missing (release add makes it)", t->path, src);
        return OTA_ERR_NOT_FOUND;
    }
    if (stat(dst, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == sst.st_size)
        return 0;
    slash = strrchr(dst, '/');
    *slash = '\0';
    rc = ota_fs_mkdirs(dst, 0755);
    *slash = '/';
    if (rc != 0) {
        ota_detail_set(det, "creating the directory of %s", dst);
        return rc;
    }
    rc = repo_copy_file(NULL, NULL, dst, src, NULL, NULL, REPO_MAX_IMAGE * 2, r->ctx->hook, det);
    if (rc != 0)
        ota_detail_prefix(det, t->path);
    return rc;
}

/* Copies every target file of md into public/targets (from blobs/),
 * skipping those already present with the right length, and the packs of
 * chunked images into public/chunks. */
static int publish_target_files(struct repo *r, const struct ota_tuf_meta *md,
                                struct ota_detail *det)
{
    for (size_t i = 0; i < md->ntargets; i++) {
        int prc = publish_pack(r, &md->targets[i], det);

        if (prc != 0)
            return prc;
    }
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        char hex[OTA_SHA256_HEX_LEN + 1];
        char dst[PATH_MAX];
        char src[PATH_MAX];
        char *rel = NULL;
        char *slash;
        struct stat st;
        int rc = ota_tuf_target_file_path(&rel, t);

        if (rc != 0)
            return rc;
        rc = repo_path(dst, r, "public/targets/%s", rel);
        free(rel);
        if (rc != 0)
            return rc;
        if (stat(dst, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == t->length)
            continue;
        ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
        rc = repo_path(src, r, "blobs/%s", hex);
        if (rc != 0)
            return rc;
        slash = strrchr(dst, '/');
        *slash = '\0';
        rc = ota_fs_mkdirs(dst, 0755);
        *slash = '/';
        if (rc != 0) {
            ota_detail_set(det, "creating the directory of %s", dst);
            return rc;
        }
        rc = repo_copy_file(NULL, NULL, dst, src, t->sha256, &t->length, REPO_MAX_IMAGE,
                            r->ctx->hook, det);
        if (rc != 0) {
            ota_detail_prefix(det, t->path);
            return rc;
        }
    }
    return 0;
}

static int remove_pending(struct repo *r, enum ota_tuf_role role, struct ota_detail *det)
{
    char path[PATH_MAX];
    int rc = repo_path(path, r, "pending/%s.json", ota_tuf_role_name(role));

    if (rc == 0)
        rc = ota_fs_remove(path, r->ctx->hook);
    if (rc != 0)
        ota_detail_set(det, "removing %s", path);
    else
        drop_pending(r, role);
    return rc;
}

static int check_pending_expiry(const struct repo *r, const struct ota_tuf_meta *md,
                                const char *what, struct ota_detail *det)
{
    int rc = ota_tuf_check_expiry(md, r->ctx->now, det);

    if (rc != 0)
        ota_detail_prefix(det, what);
    return rc;
}

/* A metadata file built in memory: its exact bytes as they will be served. */
struct staged {
    char *data; /* NULL when not built */
    size_t len;
    uint8_t sha256[OTA_SHA256_LEN];
    uint64_t version;
};

static int stage_doc(struct staged *st, const json_t *doc, uint64_t version)
{
    int rc = repo_dump(&st->data, &st->len, doc, false);

    st->version = version;
    if (rc == 0)
        rc = ota_sha256(st->sha256, st->data, st->len);
    return rc;
}

static void staged_free(struct staged *st)
{
    free(st->data);
    memset(st, 0, sizeof(*st));
}

/* Builds snapshot v sv (when targets_meta is given) and the next
 * timestamp, in memory. */
static int build_snapshot_timestamp(struct repo *r, json_t *targets_meta,
                                    const struct ota_tuf_meta *root, uint64_t sv,
                                    struct staged *snap, struct staged *ts, struct ota_detail *det)
{
    json_t *sdoc = NULL;
    json_t *tdoc = NULL;
    json_t *entry = NULL;
    uint64_t slen = r->snapshot_len;
    const uint8_t *ssha = r->snapshot_sha256;
    uint64_t ts_v = (r->timestamp != NULL ? r->timestamp->version : 0) + 1;
    int rc = 0;

    if (targets_meta != NULL) {
        rc = online_doc(&sdoc, r, OTA_TUF_SNAPSHOT, sv, "targets.json", targets_meta, root, det);
        if (rc == 0)
            rc = stage_doc(snap, sdoc, sv);
        if (rc != 0)
            goto out;
        slen = snap->len;
        ssha = snap->sha256;
    } else {
        sv = r->snapshot->version;
    }
    entry = metafile_json(sv, slen, ssha);
    rc = online_doc(&tdoc, r, OTA_TUF_TIMESTAMP, ts_v, "snapshot.json", entry, root, det);
    if (rc == 0)
        rc = stage_doc(ts, tdoc, ts_v);
out:
    json_decref(entry);
    json_decref(sdoc);
    json_decref(tdoc);
    return rc;
}

/* Writes snapshot (when built) and timestamp: the commit point of publish
 * and refresh. */
static int write_snapshot_timestamp(struct repo *r, const struct staged *snap,
                                    const struct staged *ts, struct ota_detail *det)
{
    char path[PATH_MAX];
    int rc = 0;

    if (snap->data != NULL) {
        rc = repo_path(path, r, "public/metadata/%" PRIu64 ".snapshot.json", snap->version);
        if (rc == 0)
            rc = repo_write(r, path, snap->data, snap->len, det);
    }
    if (rc == 0)
        rc = repo_path(path, r, "public/metadata/timestamp.json");
    if (rc == 0)
        rc = repo_write(r, path, ts->data, ts->len, det);
    return rc;
}

/* The ledger of a publish or refresh: the policy of the root in force and
 * of the new root (both quorums must be met, ledger.h). Opens lg when the
 * new root carries a ledger; *on tells whether it does. */
struct repo_ledger {
    bool on;
    struct ledger lg;
    struct ota_tlog_policy *pol[LEDGER_MAX_POLICIES];
};

static int repo_ledger_open(struct repo_ledger *rl, struct repo *r,
                            const struct ota_tuf_meta *new_root, struct ota_detail *det)
{
    int64_t max_age = 0;
    int rc;

    memset(rl, 0, sizeof(*rl));
    rc = ledger_policy_of(&rl->pol[1], &max_age, new_root, det);
    if (rc != 0 || rl->pol[1] == NULL)
        return rc;
    if (r->root != NULL && r->root != new_root)
        rc = ledger_policy_of(&rl->pol[0], &max_age, r->root, det);
    if (rc == 0)
        rc = ledger_open(&rl->lg, r->dir, r->ctx, det);
    rl->on = rc == 0;
    return rc;
}

static void repo_ledger_close(struct repo_ledger *rl)
{
    if (rl->on)
        ledger_close(&rl->lg);
    for (int i = 0; i < LEDGER_MAX_POLICIES; i++)
        ota_tlog_policy_free(rl->pol[i]);
    memset(rl, 0, sizeof(*rl));
}

/* The first version of role from `from` on that the ledger has not logged
 * (a publish that failed after its ledger commit logged versions that were
 * never served); `from` itself without a ledger. */
static int first_unlogged(struct repo_ledger *rl, enum ota_tuf_role role, uint64_t from,
                          uint64_t *out, struct ota_detail *det)
{
    uint64_t v = from;

    while (rl->on) {
        char key[32];
        uint64_t idx;
        int rc;

        snprintf(key, sizeof(key), "%s/%" PRIu64, ota_tuf_role_name(role), v);
        rc = rl->lg.store->ops->find(rl->lg.store, key, &idx, det);
        if (rc == OTA_ERR_NOT_FOUND)
            break;
        if (rc != 0)
            return rc;
        v++;
    }
    *out = v;
    return 0;
}

static int next_snapshot_version(struct repo_ledger *rl, uint64_t after, uint64_t *out,
                                 struct ota_detail *det)
{
    return first_unlogged(rl, OTA_TUF_SNAPSHOT, after + 1, out, det);
}

int repo_unlogged_version(struct repo *r, enum ota_tuf_role role, uint64_t from, uint64_t *out,
                          struct ota_detail *det)
{
    struct repo_ledger rl;
    int rc;

    *out = from;
    if (r->root == NULL)
        return 0;
    rc = repo_ledger_open(&rl, r, r->root, det);
    if (rc == 0)
        rc = first_unlogged(&rl, role, from, out, det);
    repo_ledger_close(&rl);
    return rc;
}

int repo_publish(struct repo *r, FILE *out, struct ota_detail *det)
{
    const struct ota_tuf_meta *new_root;
    const struct ota_tuf_meta *tmd;
    json_t *targets_meta = NULL;
    struct repo_ledger rl;
    struct staged root_s = {0}, tgt_s = {0}, snap_s = {0}, ts_s = {0};
    struct ledger_record recs[3];
    size_t nrecs = 0;
    char path[PATH_MAX];
    char what[64];
    bool pend_root;
    uint64_t snap_v = 0;
    int removed = 0;
    int rc = 0;

    memset(&rl, 0, sizeof(rl));
    /* Invariant 3: finish what an interrupted publish left behind. */
    if (r->pend_root != NULL && r->pend_root_stale && !r->interrupted) {
        rc = remove_pending(r, OTA_TUF_ROOT, det);
        removed++;
    }
    if (rc == 0 && r->pend_targets != NULL && r->pend_targets_stale) {
        rc = remove_pending(r, OTA_TUF_TARGETS, det);
        removed++;
    }
    if (rc != 0)
        return rc;
    if (r->pend_root == NULL && r->pend_targets == NULL && !r->interrupted) {
        rc = finish_rotation(r, r->root, det);
        if (rc != 0)
            return rc;
        if (removed > 0) {
            fprintf(out, "nothing left to publish: the pending metadata was already published "
                         "(pending files removed)\n");
            return 0;
        }
        ota_detail_set(det, "nothing pending in %s/pending (release add, root rotate)", r->dir);
        return OTA_ERR_NOT_FOUND;
    }

    /* Invariant 1: every threshold before the first write. */
    pend_root = r->pend_root_md != NULL && !r->pend_root_stale;
    new_root = pend_root ? r->pend_root_md : r->root;
    if (new_root == NULL) {
        ota_detail_set(det, "%s: no root, pending or published", r->dir);
        return OTA_ERR_NO_TRUSTED_ROOT;
    }
    if (pend_root) {
        snprintf(what, sizeof(what), "pending root v%" PRIu64, new_root->version);
        if (r->root != NULL && ota_tuf_verify_role(new_root, r->root, OTA_TUF_ROOT, NULL) != 0) {
            threshold_detail(det, what, new_root, r->root, OTA_TUF_ROOT);
            return OTA_ERR_THRESHOLD;
        }
        if (ota_tuf_verify_role(new_root, new_root, OTA_TUF_ROOT, NULL) != 0) {
            threshold_detail(det, what, new_root, new_root, OTA_TUF_ROOT);
            return OTA_ERR_THRESHOLD;
        }
        rc = check_pending_expiry(r, new_root, what, det);
        if (rc != 0)
            return rc;
    }
    tmd = r->pend_targets_md != NULL ? r->pend_targets_md : r->targets;
    if (tmd == NULL) {
        ota_detail_set(det, "%s: no targets metadata, pending or published", r->dir);
        return OTA_ERR_NOT_FOUND;
    }
    snprintf(what, sizeof(what), "%s targets v%" PRIu64,
             r->pend_targets_md != NULL ? "pending" : "published", tmd->version);
    if (ota_tuf_verify_role(tmd, new_root, OTA_TUF_TARGETS, NULL) != 0) {
        threshold_detail(det, what, tmd, new_root, OTA_TUF_TARGETS);
        return OTA_ERR_THRESHOLD;
    }
    if (r->pend_targets_md != NULL) {
        rc = check_pending_expiry(r, tmd, what, det);
        if (rc != 0)
            return rc;
    }

    /* The online keys of the new root must be at hand before anything is
     * written (a new root without a timestamp signed under it would stall
     * every client). */
    for (int role = OTA_TUF_SNAPSHOT; role <= OTA_TUF_TIMESTAMP; role++) {
        struct ota_signer *s = NULL;

        rc = online_signer(&s, r, (enum ota_tuf_role)role, new_root, det);
        ota_signer_free(s);
        if (rc != 0)
            return rc;
    }

    /* Build every file in memory: the ledger logs their exact bytes. */
    rc = repo_ledger_open(&rl, r, new_root, det);
    if (rc == 0 && pend_root) {
        rc = stage_doc(&root_s, r->pend_root, new_root->version);
        recs[nrecs++] =
            (struct ledger_record){OTA_TUF_ROOT, root_s.version, root_s.data, root_s.len};
    }
    if (rc == 0 && r->pend_targets_md != NULL) {
        rc = stage_doc(&tgt_s, r->pend_targets, tmd->version);
        if (rc == 0)
            targets_meta = metafile_json(tmd->version, tgt_s.len, tgt_s.sha256);
        recs[nrecs++] =
            (struct ledger_record){OTA_TUF_TARGETS, tgt_s.version, tgt_s.data, tgt_s.len};
    } else if (rc == 0) {
        targets_meta = metafile_json(tmd->version, r->targets_len, r->targets_sha256);
    }
    if (rc == 0 && targets_meta == NULL)
        rc = OTA_ERR_NOMEM;
    if (rc == 0)
        rc = next_snapshot_version(&rl, r->snapshot != NULL ? r->snapshot->version : 0, &snap_v,
                                   det);
    if (rc == 0)
        rc = build_snapshot_timestamp(r, targets_meta, new_root, snap_v, &snap_s, &ts_s, det);
    if (rc == 0)
        recs[nrecs++] =
            (struct ledger_record){OTA_TUF_SNAPSHOT, snap_s.version, snap_s.data, snap_s.len};
    /* Ledger: log, write the versioned files, witness; nothing public
     * stays changed without the quorum (ledger.h). */
    if (rc == 0 && rl.on) {
        char paths[3][PATH_MAX];
        struct ledger_file files[3];
        size_t nfiles = 0;

        for (size_t i = 0; rc == 0 && i < nrecs; i++) {
            rc = repo_path(paths[i], r, "public/metadata/%" PRIu64 ".%s.json", recs[i].version,
                           ota_tuf_role_name(recs[i].role));
            files[nfiles++] = (struct ledger_file){paths[i], recs[i].data, recs[i].len};
        }
        if (rc == 0)
            rc = ledger_publish(&rl.lg, recs, nrecs, files, nfiles,
                                (const struct ota_tlog_policy *const *)rl.pol, LEDGER_MAX_POLICIES,
                                out, det);
    }
    repo_ledger_close(&rl);
    if (rc != 0)
        goto out;

    /* Steps 1-2: the new root. */
    if (pend_root) {
        rc = repo_path(path, r, "public/metadata/%" PRIu64 ".root.json", new_root->version);
        if (rc == 0)
            rc = repo_write(r, path, root_s.data, root_s.len, det);
        if (rc == 0)
            rc = repo_path(path, r, "public/metadata/root.json");
        if (rc == 0)
            rc = repo_write(r, path, root_s.data, root_s.len, det);
        if (rc != 0)
            goto out;
    }
    /* Steps 3-4: target files and the targets metadata. */
    if (r->pend_targets_md != NULL) {
        rc = publish_target_files(r, tmd, det);
        if (rc == 0)
            rc = repo_path(path, r, "public/metadata/%" PRIu64 ".targets.json", tmd->version);
        if (rc == 0)
            rc = repo_write(r, path, tgt_s.data, tgt_s.len, det);
        if (rc != 0)
            goto out;
    }
    /* Steps 5-6: snapshot, then timestamp (the commit point). */
    rc = write_snapshot_timestamp(r, &snap_s, &ts_s, det);
    if (rc != 0)
        goto out;
    /* Step 7-8. */
    rc = finish_rotation(r, new_root, det);
    fprintf(out,
            "published: root v%" PRIu64 ", targets v%" PRIu64 " (%zu targets), snapshot v%" PRIu64
            ", timestamp v%" PRIu64 "\n",
            new_root->version, tmd->version, tmd->ntargets, snap_s.version, ts_s.version);
    if (rc == 0 && r->pend_root != NULL)
        rc = remove_pending(r, OTA_TUF_ROOT, det);
    if (rc == 0 && r->pend_targets != NULL)
        rc = remove_pending(r, OTA_TUF_TARGETS, det);
out:
    json_decref(targets_meta);
    staged_free(&root_s);
    staged_free(&tgt_s);
    staged_free(&snap_s);
    staged_free(&ts_s);
    return rc;
}

int repo_refresh(struct repo *r, bool force_snapshot, FILE *out, struct ota_detail *det)
{
    json_t *targets_meta = NULL;
    struct repo_ledger rl;
    struct staged snap_s = {0}, ts_s = {0};
    uint64_t snap_v = 0;
    char exp[96];
    int rc;

    if (r->root == NULL || r->snapshot == NULL) {
        ota_detail_set(det, "%s: nothing published yet (repo publish)", r->dir);
        return OTA_ERR_NOT_FOUND;
    }
    if (r->interrupted) {
        ota_detail_set(det,
                       "%s: the publish of root v%" PRIu64
                       " was interrupted: run otachain repo publish first",
                       r->dir, r->root->version);
        return OTA_ERR_VERSION_MISMATCH;
    }
    if (force_snapshot || r->snapshot->expires - r->ctx->now < r->expires[OTA_TUF_SNAPSHOT] / 2) {
        const struct ota_tuf_metafile *mf = ota_tuf_find_meta(r->snapshot, "targets.json");

        targets_meta = metafile_json(mf->version, r->targets_len, r->targets_sha256);
        if (targets_meta == NULL)
            return OTA_ERR_NOMEM;
    }
    rc = repo_ledger_open(&rl, r, r->root, det);
    if (rc == 0)
        rc = next_snapshot_version(&rl, r->snapshot->version, &snap_v, det);
    if (rc == 0)
        rc = build_snapshot_timestamp(r, targets_meta, r->root, snap_v, &snap_s, &ts_s, det);
    /* A new snapshot is logged like a publish; otherwise the current
     * checkpoint is cosigned again (fresh cosignature times). */
    if (rc == 0 && rl.on && snap_s.data != NULL) {
        struct ledger_record rec = {OTA_TUF_SNAPSHOT, snap_s.version, snap_s.data, snap_s.len};

        char path[PATH_MAX];
        struct ledger_file file = {path, snap_s.data, snap_s.len};

        rc = repo_path(path, r, "public/metadata/%" PRIu64 ".snapshot.json", snap_s.version);
        if (rc == 0)
            rc = ledger_publish(&rl.lg, &rec, 1, &file, 1,
                                (const struct ota_tlog_policy *const *)rl.pol, LEDGER_MAX_POLICIES,
                                out, det);
    } else if (rc == 0 && rl.on) {
        rc = ledger_refresh(&rl.lg, rl.pol[1], out, det);
    }
    repo_ledger_close(&rl);
    if (rc == 0)
        rc = write_snapshot_timestamp(r, &snap_s, &ts_s, det);
    json_decref(targets_meta);
    if (rc != 0)
        goto out;
    if (snap_s.data != NULL) {
        cli_format_expiry(exp, sizeof(exp), r->ctx->now + r->expires[OTA_TUF_SNAPSHOT],
                          r->ctx->now);
        fprintf(out, "snapshot v%" PRIu64 " signed, %s\n", snap_s.version, exp);
    }
    cli_format_expiry(exp, sizeof(exp), r->ctx->now + r->expires[OTA_TUF_TIMESTAMP], r->ctx->now);
    fprintf(out, "timestamp v%" PRIu64 " signed, %s\n", ts_s.version, exp);
    for (int i = 0; i < 2; i++) {
        const struct ota_tuf_meta *md = i == 0 ? r->root : r->targets;

        if (md->expires - r->ctx->now < REPO_WARN_EXPIRY) {
            cli_format_expiry(exp, sizeof(exp), md->expires, r->ctx->now);
            cli_warn("%s v%" PRIu64 " %s: re-sign it with the offline keys (%s)",
                     ota_tuf_role_name(md->type), md->version, exp,
                     i == 0 ? "otachain root rotate" : "otachain release sign");
        }
    }
out:
    staged_free(&snap_s);
    staged_free(&ts_s);
    return rc;
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
    const struct ota_tuf_meta *next = repo_next_root(r);
    struct repo_sigstat st;
    char label[128];
    char exp[96];

    if (root && r->pend_root_md != NULL && !r->pend_root_stale) {
        const struct ota_tuf_meta *p = r->pend_root_md;

        cli_format_expiry(exp, sizeof(exp), p->expires, r->ctx->now);
        fprintf(out, "pending root v%" PRIu64 ", %s\n", p->version, exp);
        if (r->root != NULL) {
            repo_sigstat(&st, p, r->root, OTA_TUF_ROOT);
            snprintf(label, sizeof(label), "root keys of the current root v%" PRIu64,
                     r->root->version);
            repo_sigstat_print(out, label, &st);
        }
        repo_sigstat(&st, p, p, OTA_TUF_ROOT);
        snprintf(label, sizeof(label), "root keys of the new root v%" PRIu64, p->version);
        repo_sigstat_print(out, label, &st);
    }
    if (targets && r->pend_targets_md != NULL && !r->pend_targets_stale && next != NULL) {
        const struct ota_tuf_meta *p = r->pend_targets_md;

        cli_format_expiry(exp, sizeof(exp), p->expires, r->ctx->now);
        fprintf(out, "pending targets v%" PRIu64 " (%zu targets), %s\n", p->version, p->ntargets,
                exp);
        repo_sigstat(&st, p, next, OTA_TUF_TARGETS);
        snprintf(label, sizeof(label), "targets keys of root v%" PRIu64, next->version);
        repo_sigstat_print(out, label, &st);
    }
}

void repo_print_status(const struct repo *r, FILE *out)
{
    const struct ota_tuf_meta *pub[OTA_TUF_ROLE_COUNT] = {r->root, r->targets, r->snapshot,
                                                          r->timestamp};
    char exp[96];

    fprintf(out, "repository %s\n", r->dir);
    fprintf(out, "expiry policy: root %s, targets %s, snapshot %s, timestamp %s\n",
            r->expires_text[0], r->expires_text[1], r->expires_text[2], r->expires_text[3]);
    if (r->root == NULL) {
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
        if (r->interrupted)
            fprintf(out,
                    "  (the publish of root v%" PRIu64
                    " was interrupted: run otachain repo publish)\n",
                    r->root->version);
        fprintf(out, "keys and thresholds (root v%" PRIu64 "):\n", r->root->version);
        print_role_keys(out, r->root);
        if (r->targets != NULL) {
            fprintf(out, "published targets (%zu):\n", r->targets->ntargets);
            for (size_t i = 0; i < r->targets->ntargets; i++)
                print_target(out, &r->targets->targets[i]);
        }
    }
    if ((r->pend_root_md == NULL || r->pend_root_stale) &&
        (r->pend_targets_md == NULL || r->pend_targets_stale)) {
        fprintf(out, "nothing pending\n");
        return;
    }
    repo_print_pending(r, out, true, false);
    if (r->pend_root_md != NULL && !r->pend_root_stale) {
        fprintf(out, "keys and thresholds of the pending root v%" PRIu64 ":\n",
                r->pend_root_md->version);
        print_role_keys(out, r->pend_root_md);
    }
    repo_print_pending(r, out, false, true);
    if (r->pend_targets_md != NULL && !r->pend_targets_stale) {
        const struct ota_tuf_meta *p = r->pend_targets_md;
        size_t nnew = 0;

        for (size_t i = 0; i < p->ntargets; i++) {
            const struct ota_tuf_target *old =
                r->targets != NULL ? ota_tuf_find_target(r->targets, p->targets[i].path) : NULL;

            if (old != NULL && old->length == p->targets[i].length &&
                memcmp(old->sha256, p->targets[i].sha256, OTA_SHA256_LEN) == 0)
                continue;
            if (nnew++ == 0)
                fprintf(out, "pending new targets:\n");
            print_target(out, &p->targets[i]);
        }
        for (size_t i = 0; r->targets != NULL && i < r->targets->ntargets; i++) {
            if (ota_tuf_find_target(p, r->targets->targets[i].path) == NULL)
                fprintf(out, "pending removal: %s\n", r->targets->targets[i].path);
        }
        if (nnew == 0)
            fprintf(out, "pending targets: no new targets\n");
    }
}
