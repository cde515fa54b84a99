/* An authoring repository: configuration, verified published state,
 * pending metadata (see otachain/repo.h). */
#include "otachain/repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/cjson.h"
#include "otachain/sequencer.h"
#include "otachain/tuf_sign.h"

static const char *const default_expiry[OTA_TUF_ROLE_COUNT] = {"365d", "90d", "7d", "1d"};

int ota_repo_duration_parse(int64_t *out, const char *s)
{
    uint64_t v = 0;
    int64_t unit;
    size_t len;

    *out = 0;
    if (s == NULL)
        return OTA_ERR_FORMAT;
    len = strlen(s);
    if (len < 2 || len > 23)
        return OTA_ERR_FORMAT;
    switch (s[len - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    case 'y':
        unit = 365 * 86400;
        break;
    default:
        return OTA_ERR_FORMAT;
    }
    /* Decimal digits, no sign, no leading zero. */
    if (s[0] < '1' || s[0] > '9')
        return OTA_ERR_FORMAT;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return OTA_ERR_FORMAT;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > (uint64_t)(OTA_REPO_DURATION_MAX / unit))
            return OTA_ERR_FORMAT;
    }
    *out = (int64_t)v * unit;
    return 0;
}

int ota_repo_dump(char **out, size_t *len, const json_t *doc, bool indent)
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

json_t *ota_repo_meta_new(enum ota_tuf_role role, uint64_t version, int64_t expires)
{
    char t[OTA_TUF_TIME_SIZE];

    if (ota_tuf_format_time(t, expires) != 0)
        return NULL;
    return json_pack("{s:{s:s,s:s,s:I,s:s},s:[]}", "signed", "_type", ota_tuf_role_name(role),
                     "spec_version", OTA_TUF_SPEC_VERSION, "version", (json_int_t)version,
                     "expires", t, "signatures");
}

/* ------------------------------------------------------------ sigstat */

bool ota_repo_role_has_key(const struct ota_tuf_meta *root, enum ota_tuf_role role,
                           const char *keyid)
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

void ota_repo_sigstat(struct ota_repo_sigstat *st, const struct ota_tuf_meta *md,
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

bool ota_repo_sigstat_met(const struct ota_repo_sigstat *st)
{
    return st->nvalid >= st->threshold;
}

void ota_repo_sigstat_text(char *out, size_t n, const struct ota_repo_sigstat *st)
{
    size_t used;
    int w;

    if (ota_repo_sigstat_met(st)) {
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

/* ------------------------------------------------------------- loading */

/* Reads path from the store (at most cap bytes) into a new buffer. */
static int store_read(uint8_t **out, size_t *len, struct ota_repo *r, const char *path,
                      uint64_t cap, struct ota_detail *det)
{
    struct ota_buf b;
    int rc;

    *out = NULL;
    *len = 0;
    ota_buf_init(&b, (size_t)cap);
    rc = r->store->ops->get(r->store, path, &b, det);
    if (rc == 0)
        *out = ota_buf_steal(&b, len);
    ota_buf_free(&b);
    if (rc == 0 && *out == NULL) {
        *out = malloc(1);
        if (*out == NULL)
            return OTA_ERR_NOMEM;
    }
    return rc;
}

/* Reads one published metadata file: capped, checked against pin when
 * given, parsed as role; its length and SHA-256 returned. */
static int read_meta(struct ota_tuf_meta **md, uint64_t *len_out, uint8_t sha[OTA_SHA256_LEN],
                     struct ota_repo *r, const char *path, enum ota_tuf_role role, uint64_t cap,
                     const struct ota_tuf_metafile *pin, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *md = NULL;
    if (pin != NULL && pin->has_length && pin->length < cap)
        cap = pin->length;
    rc = store_read(&data, &len, r, path, cap, det);
    if (rc == OTA_ERR_TOO_LARGE && pin != NULL && pin->has_length && pin->length == cap) {
        /* Longer than the pinned length: the file broke its pin. */
        ota_detail_set(det, "%s: more than the %llu bytes pinned for it", path,
                       (unsigned long long)pin->length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (rc != 0) {
        if (rc != OTA_ERR_NOT_FOUND)
            ota_detail_prefix(det, path);
        else
            ota_detail_set(det, "%s", path);
        return rc;
    }
    if (pin != NULL)
        rc = ota_tuf_check_metafile(pin, data, len, det);
    if (rc == 0 && sha != NULL)
        rc = ota_sha256(sha, data, len);
    if (rc == 0 && len_out != NULL)
        *len_out = len;
    if (rc == 0)
        rc = ota_tuf_parse(md, data, len, role, det);
    if (rc != 0)
        ota_detail_prefix(det, path);
    free(data);
    return rc;
}

/* Verifies published metadata against the newest root; while a publish of
 * that root is unfinished, metadata signed under the previous root is
 * still the live state. */
static int verify_published(struct ota_repo *r, const struct ota_tuf_meta *md,
                            enum ota_tuf_role role, const char *path, struct ota_detail *det)
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

static int load_config(struct ota_repo *r, struct ota_detail *det)
{
    const struct ota_json_limits lim = {OTA_REPO_CONFIG_MAX, 8, 0, 1};
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    json_t *exp;
    json_int_t format;
    int rc = store_read(&data, &len, r, "repo.json", OTA_REPO_CONFIG_MAX, det);

    if (rc == OTA_ERR_NOT_FOUND) {
        ota_detail_set(det, "not an otachain repository (no repo.json)");
        return rc;
    }
    if (rc != 0)
        return rc;
    rc = ota_json_parse(&doc, data, len, &lim, det);
    free(data);
    if (rc != 0) {
        ota_detail_prefix(det, "repo.json");
        return rc;
    }
    rc = OTA_ERR_FORMAT;
    format = json_is_integer(json_object_get(doc, "format"))
                 ? json_integer_value(json_object_get(doc, "format"))
                 : -1;
    if (format != OTA_REPO_FORMAT) {
        ota_detail_set(det, "repo.json: format must be %d", OTA_REPO_FORMAT);
        goto out;
    }
    exp = json_object_get(doc, "expires");
    if (exp != NULL && !json_is_object(exp)) {
        ota_detail_set(det, "repo.json: expires must be an object");
        goto out;
    }
    for (int role = 0; role < OTA_TUF_ROLE_COUNT; role++) {
        const char *name = ota_tuf_role_name((enum ota_tuf_role)role);
        json_t *v = exp != NULL ? json_object_get(exp, name) : NULL;
        const char *text = default_expiry[role];

        if (v != NULL) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof(r->expires_text[0])) {
                ota_detail_set(det, "repo.json: expires.%s must be a duration", name);
                goto out;
            }
            text = json_string_value(v);
        }
        if (ota_repo_duration_parse(&r->expires[role], text) != 0) {
            ota_detail_set(det, "repo.json: expires.%s: bad duration '%s'", name, text);
            goto out;
        }
        snprintf(r->expires_text[role], sizeof(r->expires_text[role]), "%s", text);
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static int load_pending(struct ota_repo *r, enum ota_tuf_role role, struct ota_detail *det)
{
    uint64_t cap = role == OTA_TUF_ROOT ? OTA_TUF_ROOT_MAX_LEN : OTA_TUF_TARGETS_MAX_LEN;
    const struct ota_json_limits lim = {cap, OTA_JSON_MAX_DEPTH, 0, 1};
    char path[64];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    struct ota_tuf_meta *md = NULL;
    int rc;

    snprintf(path, sizeof(path), "pending/%s.json", ota_tuf_role_name(role));
    rc = store_read(&data, &len, r, path, cap, det);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc != 0)
        return rc;
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

/* The root chain 1..N, each step checked by ota_tuf_root_step (its own and
 * its predecessor's threshold); root.json must equal N.root.json. */
static int load_roots(struct ota_repo *r, struct ota_detail *det)
{
    char path[64];
    struct ota_tuf_meta *newest = NULL;
    struct ota_tuf_meta *prev = NULL;
    struct ota_tuf_meta *cur = NULL;
    int rc = read_meta(&newest, NULL, NULL, r, "public/metadata/root.json", OTA_TUF_ROOT,
                       OTA_TUF_ROOT_MAX_LEN, NULL, det);

    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* not published yet */
    if (rc != 0)
        return rc;
    for (uint64_t v = 1; v <= newest->version; v++) {
        snprintf(path, sizeof(path), "public/metadata/%" PRIu64 ".root.json", v);
        rc = read_meta(&cur, NULL, NULL, r, path, OTA_TUF_ROOT, OTA_TUF_ROOT_MAX_LEN, NULL, det);
        if (rc != 0)
            goto out;
        if (prev == NULL && cur->version != 1) {
            ota_detail_set(det, "%s: version %" PRIu64 ", expected 1", path, cur->version);
            rc = OTA_ERR_VERSION_MISMATCH;
        } else if (prev == NULL) {
            rc = ota_tuf_verify_role(cur, cur, OTA_TUF_ROOT, det);
        } else {
            rc = ota_tuf_root_step(cur, prev, det);
        }
        if (rc != 0) {
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
        ota_detail_set(det, "public/metadata/root.json differs from %" PRIu64 ".root.json",
                       newest->version);
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

/* The file of role that `from` (at path_from) pins by name: read against
 * the pin, verified, of the pinned version; its length and SHA-256 kept. */
static int load_pinned(struct ota_tuf_meta **md, uint64_t *len, uint8_t sha[OTA_SHA256_LEN],
                       struct ota_repo *r, const struct ota_tuf_meta *from, const char *path_from,
                       enum ota_tuf_role role, uint64_t cap, struct ota_detail *det)
{
    char name[32];
    char path[64];
    const struct ota_tuf_metafile *mf;
    int rc;

    snprintf(name, sizeof(name), "%s.json", ota_tuf_role_name(role));
    mf = ota_tuf_find_meta(from, name);
    if (mf == NULL) {
        ota_detail_set(det, "%s: no %s in meta", path_from, name);
        return role == OTA_TUF_SNAPSHOT ? OTA_ERR_FORMAT : OTA_ERR_META_MISSING;
    }
    snprintf(path, sizeof(path), "public/metadata/%" PRIu64 ".%s", mf->version, name);
    rc = read_meta(md, len, sha, r, path, role, cap, mf, det);
    if (rc == 0)
        rc = verify_published(r, *md, role, path, det);
    if (rc == 0 && (*md)->version != mf->version) {
        ota_detail_set(det, "%s: version %" PRIu64 ", %s pins %" PRIu64, path, (*md)->version,
                       ota_tuf_role_name(from->type), mf->version);
        rc = OTA_ERR_VERSION_MISMATCH;
    }
    return rc;
}

static int load_published(struct ota_repo *r, struct ota_detail *det)
{
    const char *tspath = "public/metadata/timestamp.json";
    char spath[64];
    int rc = read_meta(&r->timestamp, NULL, NULL, r, tspath, OTA_TUF_TIMESTAMP,
                       OTA_TUF_TIMESTAMP_MAX_LEN, NULL, det);

    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* the first publish stopped before its timestamp */
    if (rc == 0)
        rc = verify_published(r, r->timestamp, OTA_TUF_TIMESTAMP, tspath, det);
    if (rc == 0)
        rc = load_pinned(&r->snapshot, &r->snapshot_len, r->snapshot_sha256, r, r->timestamp,
                         tspath, OTA_TUF_SNAPSHOT, OTA_TUF_SNAPSHOT_MAX_LEN, det);
    if (rc != 0)
        return rc;
    snprintf(spath, sizeof(spath), "public/metadata/%" PRIu64 ".snapshot.json",
             r->snapshot->version);
    return load_pinned(&r->targets, &r->targets_len, r->targets_sha256, r, r->snapshot, spath,
                       OTA_TUF_TARGETS, OTA_TUF_TARGETS_MAX_LEN, det);
}

int ota_repo_open(struct ota_repo *r, struct ota_repo_store *store, struct ota_repo_signer *signer,
                  int64_t now, struct ota_detail *det)
{
    uint64_t pub_root;
    uint64_t pub_targets;
    int rc;

    memset(r, 0, sizeof(*r));
    if (store == NULL)
        return OTA_ERR_INVALID_ARG;
    r->store = store;
    r->signer = signer;
    r->now = now;
    rc = load_config(r, det);
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
            ota_detail_set(det, "pending/root.json: version %" PRIu64 ", expected %" PRIu64, v,
                           pub_root + 1);
            rc = OTA_ERR_VERSION_MISMATCH;
            goto fail;
        }
    }
    if (r->root != NULL) {
        rc = load_published(r, det);
        if (rc != 0)
            goto fail;
    }
    pub_targets = ota_repo_published_targets_version(r);
    if (r->pend_targets_md != NULL) {
        uint64_t v = r->pend_targets_md->version;

        r->pend_targets_stale = v <= pub_targets;
        if (v > pub_targets + 1) {
            /* Only over versions logged by publishes that did not
             * complete (release add skips them); v itself may be logged
             * too, by a second failed publish of the same file. */
            uint64_t first = 0;

            rc = ota_repo_unlogged_version(r, OTA_TUF_TARGETS, pub_targets + 1, &first, det);
            if (rc != 0)
                goto fail;
            if (first < v) {
                ota_detail_set(det, "pending/targets.json: version %" PRIu64 ", expected %" PRIu64,
                               v, first);
                rc = OTA_ERR_VERSION_MISMATCH;
                goto fail;
            }
        }
    }
    return 0;
fail:
    ota_repo_close(r);
    return rc;
}

void ota_repo_close(struct ota_repo *r)
{
    if (r == NULL)
        return;
    ota_tuf_meta_free(r->root);
    ota_tuf_meta_free(r->prev_root);
    ota_tuf_meta_free(r->timestamp);
    ota_tuf_meta_free(r->snapshot);
    ota_tuf_meta_free(r->targets);
    ota_tuf_meta_free(r->pend_root_md);
    ota_tuf_meta_free(r->pend_targets_md);
    json_decref(r->pend_root);
    json_decref(r->pend_targets);
    memset(r, 0, sizeof(*r));
}

const struct ota_tuf_meta *ota_repo_next_root(const struct ota_repo *r)
{
    if (r->pend_root_md != NULL && !r->pend_root_stale)
        return r->pend_root_md;
    return r->root;
}

uint64_t ota_repo_published_targets_version(const struct ota_repo *r)
{
    return r->targets != NULL ? r->targets->version : 0;
}

int ota_repo_unlogged_version(struct ota_repo *r, enum ota_tuf_role role, uint64_t from,
                              uint64_t *out, struct ota_detail *det)
{
    struct ota_log_store *log = NULL;
    uint64_t v = from;
    int rc = r->store->ops->log(r->store, &log, false, det);

    while (rc == 0 && log != NULL) {
        char key[OTA_SEQ_KEY_MAX];
        uint64_t idx;

        snprintf(key, sizeof(key), "%s/%" PRIu64, ota_tuf_role_name(role), v);
        rc = log->ops->find(log, key, &idx, det);
        if (rc == OTA_ERR_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (rc == 0)
            v++;
    }
    *out = v;
    return rc;
}

/* ----------------------------------------------------------- pending */

static void drop_pending(struct ota_repo *r, enum ota_tuf_role role)
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

int ota_repo_pending_targets(struct ota_repo *r, struct ota_detail *det)
{
    json_t *doc;
    json_t *targets;
    int rc;

    if (r->pend_targets != NULL && !r->pend_targets_stale)
        return 0;
    drop_pending(r, OTA_TUF_TARGETS);
    doc = ota_repo_meta_new(OTA_TUF_TARGETS, ota_repo_published_targets_version(r) + 1,
                            r->now + r->expires[OTA_TUF_TARGETS]);
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

int ota_repo_set_pending(struct ota_repo *r, enum ota_tuf_role role, json_t *doc,
                         struct ota_detail *det)
{
    char path[64];
    struct ota_tuf_meta *md = NULL;
    char *s = NULL;
    size_t len = 0;
    int rc;

    if (role != OTA_TUF_ROOT && role != OTA_TUF_TARGETS)
        return OTA_ERR_INVALID_ARG;
    snprintf(path, sizeof(path), "pending/%s.json", ota_tuf_role_name(role));
    rc = ota_tuf_from_json(&md, doc, role, det);
    if (rc == 0)
        rc = ota_repo_dump(&s, &len, doc, true);
    if (rc == 0)
        rc = r->store->ops->put(r->store, path, s, len, det);
    free(s);
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

int ota_repo_merge(struct ota_repo *r, enum ota_tuf_role role, const void *data, size_t len,
                   const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                   struct ota_repo_dropped *dropped, size_t *ndropped, struct ota_detail *det)
{
    json_t *pdoc = role == OTA_TUF_ROOT ? r->pend_root : r->pend_targets;
    struct ota_tuf_meta *src = NULL;
    json_t *keep = NULL;
    size_t before;
    int rc;

    *added = 0;
    *ndropped = 0;
    if (pdoc == NULL)
        return OTA_ERR_NOT_FOUND;
    rc = ota_tuf_parse(&src, data, len, role, det);
    if (rc != 0)
        return rc;
    /* Only the signatures that verify under a key of the role go over. */
    keep = json_pack("{s:O,s:[]}", "signed", json_object_get(src->doc, "signed"), "signatures");
    if (keep == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < src->nsigs; i++) {
        const struct ota_tuf_sig *s = &src->sigs[i];
        char hex[2 * OTA_ED25519_SIG_LEN + 1];
        bool ok = false;
        bool known = false;

        for (size_t k = 0; k < nroots && !ok; k++) {
            if (roots[k] == NULL || !ota_repo_role_has_key(roots[k], role, s->keyid))
                continue;
            known = true;
            ok = sig_valid(src, roots[k], s->keyid);
        }
        if (!ok) {
            if (*ndropped < OTA_TUF_MAX_SIGS) {
                snprintf(dropped[*ndropped].keyid, OTA_KEYID_SIZE, "%s", s->keyid);
                dropped[*ndropped].known = known;
                (*ndropped)++;
            }
            continue;
        }
        ota_hex_encode(hex, s->sig, OTA_ED25519_SIG_LEN);
        if (json_array_append_new(json_object_get(keep, "signatures"),
                                  json_pack("{s:s,s:s}", "keyid", s->keyid, "sig", hex)) != 0) {
            rc = OTA_ERR_NOMEM;
            goto out;
        }
    }
    before = json_array_size(json_object_get(pdoc, "signatures"));
    rc = ota_tuf_merge_signatures(pdoc, keep, det);
    if (rc == 0)
        *added = json_array_size(json_object_get(pdoc, "signatures")) - before;
out:
    json_decref(keep);
    ota_tuf_meta_free(src);
    return rc;
}
