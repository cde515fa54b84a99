/* TUF 1.0 metadata: parse, validate, verify (see otachain/tuf.h).
 *
 * Parsing is a single pass over the jansson tree that fails closed: every
 * field the spec requires is checked for presence and type before it is
 * used, every count is checked against its cap before anything is
 * allocated, and on any failure everything built so far is freed and the
 * caller gets NULL. Lookup arrays (keys, meta, targets) are sorted after
 * parsing so the finds are binary searches and duplicates are adjacent.
 */
#include "otachain/tuf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/cjson.h"

static const char *const role_names[OTA_TUF_ROLE_COUNT] = {
    [OTA_TUF_ROOT] = "root",
    [OTA_TUF_TARGETS] = "targets",
    [OTA_TUF_SNAPSHOT] = "snapshot",
    [OTA_TUF_TIMESTAMP] = "timestamp",
};

const char *ota_tuf_role_name(enum ota_tuf_role role)
{
    if ((unsigned)role >= OTA_TUF_ROLE_COUNT)
        return "unknown";
    return role_names[role];
}

static bool role_valid(enum ota_tuf_role role)
{
    return (unsigned)role < OTA_TUF_ROLE_COUNT;
}

/* ---- small validators ------------------------------------------------ */

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* A jansson string without embedded NUL (so C string functions see all
 * of it); NULL otherwise. */
static const char *str_value(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

/* 64 lowercase hex digits: a keyid. */
static bool is_keyid(const char *s)
{
    return s != NULL && strlen(s) == OTA_SHA256_HEX_LEN && is_lower_hex(s, OTA_SHA256_HEX_LEN);
}

/* Decodes a 64-digit hex SHA-256. */
static bool get_sha256(uint8_t out[OTA_SHA256_LEN], const json_t *v)
{
    const char *s = str_value(v);
    if (s == NULL || strlen(s) != OTA_SHA256_HEX_LEN)
        return false;
    return ota_hex_decode(out, OTA_SHA256_LEN, s) == 0;
}

/* A JSON integer >= min, as uint64. */
static bool get_uint(uint64_t *out, const json_t *v, uint64_t min)
{
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min)
        return false;
    *out = (uint64_t)i;
    return true;
}

/* "1.<digits>" or "1.<digits>.<digits>". */
static bool spec_version_ok(const char *s)
{
    if (s == NULL || strlen(s) > 64 || s[0] != '1' || s[1] != '.')
        return false;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if (n == 0)
            return false;
        p += n;
        if (*p == '\0')
            return true;
        if (part == 1 || *p != '.')
            return false;
        p++;
    }
    return false;
}

/* Target paths and meta names: 1..OTA_TUF_MAX_PATH bytes of 0x21..0x7e,
 * no backslash, relative, and no empty, "." or ".." segment, so a path can
 * never name anything outside the directory it is joined to. */
static bool path_ok(const char *p, size_t n)
{
    if (n == 0 || n > OTA_TUF_MAX_PATH || p[0] == '/')
        return false;
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x21 || c > 0x7e || c == '\\')
                return false;
            if (c != '/')
                continue;
        }
        size_t sl = i - seg;
        if (sl == 0 || (sl == 1 && p[seg] == '.') ||
            (sl == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            return false;
        seg = i + 1;
    }
    return true;
}

/* For documents that did not come through ota_json_parse: the same
 * guarantees (depth, printable ASCII keys, no reals, no NUL in strings). */
static int check_tree(const json_t *v, unsigned depth, struct ota_detail *det)
{
    if (json_is_object(v) || json_is_array(v)) {
        if (depth > OTA_JSON_MAX_DEPTH) {
            ota_detail_set(det, "nesting deeper than %d", OTA_JSON_MAX_DEPTH);
            return OTA_ERR_JSON_DEPTH;
        }
    }
    if (json_is_object(v)) {
        const char *key;
        size_t klen;
        json_t *child;
        json_object_keylen_foreach((json_t *)v, key, klen, child)
        {
            for (size_t i = 0; i < klen; i++) {
                if (key[i] < 0x20 || key[i] > 0x7e) {
                    ota_detail_set(det, "object key not printable ASCII");
                    return OTA_ERR_JSON_KEY_CHARS;
                }
            }
            int rc = check_tree(child, depth + 1, det);
            if (rc != 0)
                return rc;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int rc = check_tree(json_array_get(v, i), depth + 1, det);
            if (rc != 0)
                return rc;
        }
    } else if (json_is_real(v)) {
        ota_detail_set(det, "floating-point number");
        return OTA_ERR_JSON_REAL;
    } else if (json_is_string(v) && str_value(v) == NULL) {
        ota_detail_set(det, "string holds a NUL character");
        return OTA_ERR_FORMAT;
    }
    return 0;
}

/* ---- freeing ----------------------------------------------------------- */

void ota_tuf_meta_free(struct ota_tuf_meta *md)
{
    if (md == NULL)
        return;
    json_decref(md->doc);
    free(md->signed_canonical);
    free(md->sigs);
    free(md->keys);
    for (size_t r = 0; r < OTA_TUF_ROLE_COUNT; r++)
        free(md->roles[r].keyids);
    for (size_t i = 0; i < md->nmeta; i++)
        free(md->meta[i].name);
    free(md->meta);
    for (size_t i = 0; i < md->ntargets; i++)
        free(md->targets[i].path);
    free(md->targets);
    free(md);
}

/* ---- signatures -------------------------------------------------------- */

static int cmp_sig(const void *a, const void *b)
{
    return strcmp(((const struct ota_tuf_sig *)a)->keyid, ((const struct ota_tuf_sig *)b)->keyid);
}

static int parse_signatures(struct ota_tuf_meta *md, const json_t *arr, struct ota_detail *det)
{
    size_t n = json_array_size(arr);
    if (n > OTA_TUF_MAX_SIGS) {
        ota_detail_set(det, "signatures: %zu entries, at most %d allowed", n, OTA_TUF_MAX_SIGS);
        return OTA_ERR_TOO_LARGE;
    }
    if (n == 0)
        return 0;
    md->sigs = calloc(n, sizeof(*md->sigs));
    if (md->sigs == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *keyid = str_value(json_object_get(e, "keyid"));
        const char *sig = str_value(json_object_get(e, "sig"));
        if (!json_is_object(e) || keyid == NULL || sig == NULL) {
            ota_detail_set(det, "signatures[%zu]: needs string \"keyid\" and \"sig\"", i);
            return OTA_ERR_FORMAT;
        }
        if (!is_keyid(keyid)) {
            ota_detail_set(det, "signatures[%zu]: keyid is not 64 lowercase hex digits", i);
            return OTA_ERR_FORMAT;
        }
        struct ota_tuf_sig *s = &md->sigs[i];
        memcpy(s->keyid, keyid, OTA_KEYID_SIZE);
        /* A malformed sig is kept but can never count. */
        s->well_formed = strlen(sig) == 2 * OTA_ED25519_SIG_LEN &&
                         ota_hex_decode(s->sig, OTA_ED25519_SIG_LEN, sig) == 0;
        md->nsigs++;
    }
    if (md->nsigs > 1) /* qsort needs a valid base even for 0 elements */
        qsort(md->sigs, md->nsigs, sizeof(*md->sigs), cmp_sig);
    for (size_t i = 1; i < md->nsigs; i++) {
        if (strcmp(md->sigs[i - 1].keyid, md->sigs[i].keyid) == 0) {
            ota_detail_set(det, "signatures: keyid %s appears twice", md->sigs[i].keyid);
            return OTA_ERR_DUP_SIGNATURE;
        }
    }
    return 0;
}

/* ---- root -------------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct ota_tuf_key *)a)->keyid, ((const struct ota_tuf_key *)b)->keyid);
}

static int parse_key(struct ota_tuf_key *k, const char *keyid, const json_t *obj,
                     struct ota_detail *det)
{
    const json_t *keyval = json_object_get(obj, "keyval");
    const char *keytype = str_value(json_object_get(obj, "keytype"));
    const char *scheme = str_value(json_object_get(obj, "scheme"));
    const char *pub = str_value(json_object_get(keyval, "public"));
    if (!json_is_object(obj) || keytype == NULL || scheme == NULL || !json_is_object(keyval) ||
        pub == NULL) {
        ota_detail_set(det,
                       "keys.%.64s: needs string \"keytype\", \"scheme\" and "
                       "\"keyval\": {\"public\"}",
                       keyid);
        return OTA_ERR_KEY_FORMAT;
    }
    /* The keyid is the hash of the key object exactly as given, extra
     * fields included. */
    uint8_t *canon = NULL;
    size_t canon_len = 0;
    int rc = ota_json_canonical_alloc(&canon, &canon_len, obj);
    if (rc != 0)
        return rc;
    uint8_t digest[OTA_SHA256_LEN];
    rc = ota_sha256(digest, canon, canon_len);
    free(canon);
    if (rc != 0)
        return rc;
    char want[OTA_KEYID_SIZE];
    ota_hex_encode(want, digest, sizeof(digest));
    if (strcmp(want, keyid) != 0) {
        ota_detail_set(det, "keys.%.64s%s: keyid is not the SHA-256 of the key (%s)", keyid,
                       strlen(keyid) > 64 ? "..." : "", want);
        return OTA_ERR_KEYID_MISMATCH;
    }
    memcpy(k->keyid, keyid, OTA_KEYID_SIZE);
    k->usable = strcmp(keytype, "ed25519") == 0 && strcmp(scheme, "ed25519") == 0 &&
                strlen(pub) == 2 * OTA_ED25519_PUB_LEN &&
                ota_hex_decode(k->pub, OTA_ED25519_PUB_LEN, pub) == 0;
    if (!k->usable)
        memset(k->pub, 0, sizeof(k->pub));
    return 0;
}

static int parse_role_keys(struct ota_tuf_meta *md, enum ota_tuf_role role, const json_t *obj,
                           struct ota_detail *det)
{
    const char *name = role_names[role];
    const json_t *keyids = json_object_get(obj, "keyids");
    const json_t *threshold = json_object_get(obj, "threshold");
    if (!json_is_object(obj) || !json_is_array(keyids) || !json_is_integer(threshold)) {
        ota_detail_set(det, "roles.%s: needs array \"keyids\" and integer \"threshold\"", name);
        return OTA_ERR_FORMAT;
    }
    json_int_t t = json_integer_value(threshold);
    if (t < 1 || (unsigned long long)t > UINT_MAX) {
        ota_detail_set(det, "roles.%s: threshold %lld out of range", name, (long long)t);
        return OTA_ERR_FORMAT;
    }
    size_t n = json_array_size(keyids);
    if (n > OTA_TUF_MAX_ROLE_KEYS) {
        ota_detail_set(det, "roles.%s: %zu keyids, at most %d allowed", name, n,
                       OTA_TUF_MAX_ROLE_KEYS);
        return OTA_ERR_TOO_LARGE;
    }
    struct ota_tuf_role_keys *rk = &md->roles[role];
    rk->threshold = (unsigned)t;
    if (n == 0)
        return 0;
    rk->keyids = calloc(n, sizeof(*rk->keyids));
    if (rk->keyids == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *id = str_value(json_array_get(keyids, i));
        if (id == NULL || ota_tuf_find_key(md, id) == NULL) {
            ota_detail_set(det, "roles.%s.keyids[%zu]: not a keyid listed in keys", name, i);
            return OTA_ERR_FORMAT;
        }
        for (size_t j = 0; j < rk->nkeyids; j++) {
            if (strcmp(rk->keyids[j], id) == 0) {
                ota_detail_set(det, "roles.%s.keyids: %s listed twice", name, id);
                return OTA_ERR_FORMAT;
            }
        }
        memcpy(rk->keyids[rk->nkeyids++], id, OTA_KEYID_SIZE);
    }
    return 0;
}

static int parse_root(struct ota_tuf_meta *md, const json_t *sgn, struct ota_detail *det)
{
    const json_t *cs = json_object_get(sgn, "consistent_snapshot");
    const json_t *keys = json_object_get(sgn, "keys");
    const json_t *roles = json_object_get(sgn, "roles");
    if (!json_is_boolean(cs) || !json_is_object(keys) || !json_is_object(roles)) {
        ota_detail_set(det, "needs boolean \"consistent_snapshot\", objects \"keys\" and "
                            "\"roles\"");
        return OTA_ERR_FORMAT;
    }
    md->consistent_snapshot = json_is_true(cs);

    size_t n = json_object_size(keys);
    if (n > OTA_TUF_MAX_KEYS) {
        ota_detail_set(det, "keys: %zu keys, at most %d allowed", n, OTA_TUF_MAX_KEYS);
        return OTA_ERR_TOO_LARGE;
    }
    if (n > 0) {
        md->keys = calloc(n, sizeof(*md->keys));
        if (md->keys == NULL)
            return OTA_ERR_NOMEM;
    }
    const char *keyid;
    json_t *kobj;
    json_object_foreach((json_t *)keys, keyid, kobj)
    {
        if (md->nkeys >= n)
            return OTA_ERR_FORMAT; /* cannot happen: the object did not grow */
        int rc = parse_key(&md->keys[md->nkeys], keyid, kobj, det);
        if (rc != 0)
            return rc;
        md->nkeys++;
    }
    if (md->nkeys > 1) /* qsort needs a valid base even for 0 elements */
        qsort(md->keys, md->nkeys, sizeof(*md->keys), cmp_key);

    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++) {
        const json_t *robj = json_object_get(roles, role_names[r]);
        if (robj == NULL) {
            ota_detail_set(det, "roles: \"%s\" missing", role_names[r]);
            return OTA_ERR_FORMAT;
        }
        int rc = parse_role_keys(md, (enum ota_tuf_role)r, robj, det);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- targets ----------------------------------------------------------- */

static int cmp_target(const void *a, const void *b)
{
    return strcmp(((const struct ota_tuf_target *)a)->path,
                  ((const struct ota_tuf_target *)b)->path);
}

static int parse_targets(struct ota_tuf_meta *md, const json_t *sgn, struct ota_detail *det)
{
    const json_t *targets = json_object_get(sgn, "targets");
    if (!json_is_object(targets)) {
        ota_detail_set(det, "needs object \"targets\"");
        return OTA_ERR_FORMAT;
    }
    const json_t *deleg = json_object_get(sgn, "delegations");
    if (deleg != NULL) {
        const json_t *droles = json_object_get(deleg, "roles");
        if (!json_is_object(deleg) || !json_is_array(droles)) {
            ota_detail_set(det, "delegations: needs array \"roles\"");
            return OTA_ERR_FORMAT;
        }
        if (json_array_size(droles) > 0) {
            ota_detail_set(det, "delegations: delegated roles are not supported");
            return OTA_ERR_UNSUPPORTED;
        }
    }

    size_t n = json_object_size(targets);
    if (n > OTA_TUF_MAX_TARGETS) {
        ota_detail_set(det, "targets: %zu entries, at most %d allowed", n, OTA_TUF_MAX_TARGETS);
        return OTA_ERR_TOO_LARGE;
    }
    if (n == 0)
        return 0;
    md->targets = calloc(n, sizeof(*md->targets));
    if (md->targets == NULL)
        return OTA_ERR_NOMEM;
    const char *path;
    size_t plen;
    json_t *t;
    json_object_keylen_foreach((json_t *)targets, path, plen, t)
    {
        if (md->ntargets >= n)
            return OTA_ERR_FORMAT; /* cannot happen */
        if (plen != strlen(path) || !path_ok(path, plen)) {
            ota_detail_set(det, "path \"%.200s\" is not a safe relative path", path);
            return OTA_ERR_FORMAT;
        }
        struct ota_tuf_target *tg = &md->targets[md->ntargets];
        const json_t *hashes = json_object_get(t, "hashes");
        const json_t *custom = json_object_get(t, "custom");
        if (!json_is_object(t) || !get_uint(&tg->length, json_object_get(t, "length"), 0) ||
            !json_is_object(hashes) || !get_sha256(tg->sha256, json_object_get(hashes, "sha256")) ||
            (custom != NULL && !json_is_object(custom))) {
            ota_detail_set(det,
                           "targets.%.200s: needs integer \"length\" >= 0, \"hashes\" with a "
                           "64-digit hex \"sha256\", and \"custom\" (if any) an object",
                           path);
            return OTA_ERR_FORMAT;
        }
        tg->path = strdup(path);
        if (tg->path == NULL)
            return OTA_ERR_NOMEM;
        tg->custom = (json_t *)custom;
        md->ntargets++;
    }
    if (md->ntargets > 1) /* qsort needs a valid base even for 0 elements */
        qsort(md->targets, md->ntargets, sizeof(*md->targets), cmp_target);
    return 0;
}

/* ---- snapshot and timestamp -------------------------------------------- */

static int cmp_metafile(const void *a, const void *b)
{
    return strcmp(((const struct ota_tuf_metafile *)a)->name,
                  ((const struct ota_tuf_metafile *)b)->name);
}

static int parse_meta(struct ota_tuf_meta *md, const json_t *sgn, struct ota_detail *det)
{
    const json_t *meta = json_object_get(sgn, "meta");
    if (!json_is_object(meta)) {
        ota_detail_set(det, "needs object \"meta\"");
        return OTA_ERR_FORMAT;
    }
    size_t n = json_object_size(meta);
    if (n > OTA_TUF_MAX_META) {
        ota_detail_set(det, "meta: %zu entries, at most %d allowed", n, OTA_TUF_MAX_META);
        return OTA_ERR_TOO_LARGE;
    }
    if (md->type == OTA_TUF_TIMESTAMP &&
        (n != 1 || json_object_get(meta, "snapshot.json") == NULL)) {
        ota_detail_set(det, "meta: must hold exactly \"snapshot.json\"");
        return OTA_ERR_FORMAT;
    }
    if (n == 0)
        return 0;
    md->meta = calloc(n, sizeof(*md->meta));
    if (md->meta == NULL)
        return OTA_ERR_NOMEM;
    const char *name;
    size_t nlen;
    json_t *e;
    json_object_keylen_foreach((json_t *)meta, name, nlen, e)
    {
        if (md->nmeta >= n)
            return OTA_ERR_FORMAT; /* cannot happen */
        if (nlen != strlen(name) || !path_ok(name, nlen) || nlen < 6 ||
            memcmp(name + nlen - 5, ".json", 5) != 0) {
            ota_detail_set(det, "meta: name \"%.200s\" is not a safe relative path ending in .json",
                           name);
            return OTA_ERR_FORMAT;
        }
        struct ota_tuf_metafile *mf = &md->meta[md->nmeta];
        const json_t *length = json_object_get(e, "length");
        const json_t *hashes = json_object_get(e, "hashes");
        const json_t *sha = json_object_get(hashes, "sha256");
        bool ok = json_is_object(e) && get_uint(&mf->version, json_object_get(e, "version"), 1);
        if (ok && length != NULL) {
            ok = get_uint(&mf->length, length, 0);
            mf->has_length = true;
        }
        if (ok && hashes != NULL) {
            ok = json_is_object(hashes);
            if (ok && sha != NULL) {
                ok = get_sha256(mf->sha256, sha);
                mf->has_sha256 = true;
            }
        }
        if (!ok) {
            ota_detail_set(det,
                           "meta.%.200s: needs integer \"version\" >= 1; \"length\" (if any) an "
                           "integer >= 0; \"hashes.sha256\" (if any) 64 hex digits",
                           name);
            return OTA_ERR_FORMAT;
        }
        mf->name = strdup(name);
        if (mf->name == NULL)
            return OTA_ERR_NOMEM;
        md->nmeta++;
    }
    if (md->nmeta > 1) /* qsort needs a valid base even for 0 elements */
        qsort(md->meta, md->nmeta, sizeof(*md->meta), cmp_metafile);
    return 0;
}

/* ---- the whole file ---------------------------------------------------- */

static int parse_signed(struct ota_tuf_meta *md, const json_t *sgn, enum ota_tuf_role expected,
                        struct ota_detail *det)
{
    const json_t *type = json_object_get(sgn, "_type");
    const char *type_s = str_value(type);
    if (type_s == NULL) {
        ota_detail_set(det, "needs string \"_type\"");
        return OTA_ERR_FORMAT;
    }
    if (strcmp(type_s, role_names[expected]) != 0) {
        ota_detail_set(det, "_type is \"%.64s\"", type_s);
        return OTA_ERR_WRONG_TYPE;
    }
    md->type = expected;

    const json_t *spec = json_object_get(sgn, "spec_version");
    if (!json_is_string(spec)) {
        ota_detail_set(det, "needs string \"spec_version\"");
        return OTA_ERR_FORMAT;
    }
    if (!spec_version_ok(str_value(spec))) {
        ota_detail_set(det, "spec_version \"%.64s\" is not 1.x or 1.x.y", json_string_value(spec));
        return OTA_ERR_SPEC_VERSION;
    }
    if (!get_uint(&md->version, json_object_get(sgn, "version"), 1)) {
        ota_detail_set(det, "needs integer \"version\" >= 1");
        return OTA_ERR_FORMAT;
    }
    const char *expires = str_value(json_object_get(sgn, "expires"));
    if (expires == NULL || ota_tuf_parse_time(&md->expires, expires) != 0) {
        ota_detail_set(det, "needs \"expires\" as YYYY-MM-DDTHH:MM:SSZ");
        return OTA_ERR_FORMAT;
    }

    switch (expected) {
    case OTA_TUF_ROOT:
        return parse_root(md, sgn, det);
    case OTA_TUF_TARGETS:
        return parse_targets(md, sgn, det);
    case OTA_TUF_SNAPSHOT:
    case OTA_TUF_TIMESTAMP:
        return parse_meta(md, sgn, det);
    }
    return OTA_ERR_INVALID_ARG;
}

static int build(struct ota_tuf_meta **out, json_t *doc, enum ota_tuf_role expected,
                 struct ota_detail *det)
{
    const json_t *sgn = json_object_get(doc, "signed");
    const json_t *sigs = json_object_get(doc, "signatures");
    if (!json_is_object(doc) || json_object_size(doc) != 2 || !json_is_object(sgn) ||
        !json_is_array(sigs)) {
        ota_detail_set(det, "top level must be exactly {\"signed\": {...}, \"signatures\": [...]}");
        return OTA_ERR_FORMAT;
    }
    struct ota_tuf_meta *md = calloc(1, sizeof(*md));
    if (md == NULL)
        return OTA_ERR_NOMEM;
    md->doc = json_incref(doc);
    md->type = expected;
    int rc = parse_signed(md, sgn, expected, det);
    if (rc == 0)
        rc = parse_signatures(md, sigs, det);
    if (rc == 0)
        rc = ota_json_canonical_alloc(&md->signed_canonical, &md->signed_canonical_len, sgn);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return rc;
    }
    *out = md;
    return 0;
}

static void prefix_role(struct ota_detail *det, enum ota_tuf_role role)
{
    ota_detail_prefix(det, ota_tuf_role_name(role));
}

int ota_tuf_parse(struct ota_tuf_meta **out, const void *data, size_t len,
                  enum ota_tuf_role expected, struct ota_detail *det)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if ((data == NULL && len > 0) || !role_valid(expected))
        return OTA_ERR_INVALID_ARG;
    if (det != NULL)
        det->msg[0] = '\0';
    const struct ota_json_limits lim = {
        .max_bytes = len,
        .max_depth = OTA_JSON_MAX_DEPTH,
        .allow_reals = 0,
        .ascii_keys = 1,
    };
    json_t *doc = NULL;
    int rc = ota_json_parse(&doc, data == NULL ? "" : data, len, &lim, det);
    if (rc == 0) {
        rc = build(out, doc, expected, det);
        json_decref(doc);
    }
    if (rc != 0)
        prefix_role(det, expected);
    return rc;
}

int ota_tuf_from_json(struct ota_tuf_meta **out, json_t *doc, enum ota_tuf_role expected,
                      struct ota_detail *det)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (doc == NULL || !role_valid(expected))
        return OTA_ERR_INVALID_ARG;
    if (det != NULL)
        det->msg[0] = '\0';
    int rc = check_tree(doc, 1, det);
    if (rc == 0)
        rc = build(out, doc, expected, det);
    if (rc != 0)
        prefix_role(det, expected);
    return rc;
}

/* ---- verification ------------------------------------------------------ */

int ota_tuf_verify_role(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                        enum ota_tuf_role role, struct ota_detail *det)
{
    if (md == NULL || root == NULL || root->type != OTA_TUF_ROOT || !role_valid(role))
        return OTA_ERR_INVALID_ARG;
    const struct ota_tuf_role_keys *rk = &root->roles[role];
    /* Count distinct public keys, not keyids: one key listed under two
     * keyids (key objects differing in extra fields) must count once. */
    const uint8_t *counted[OTA_TUF_MAX_ROLE_KEYS];
    size_t valid = 0;
    /* Signatures by keys of the role that did not verify: when they are
     * why the threshold is not met, that is what went wrong (the file was
     * altered), not "more signers must sign". */
    const char *bad_keyid = NULL;
    size_t nbad = 0;
    for (size_t i = 0; i < md->nsigs && valid < rk->threshold; i++) {
        const struct ota_tuf_sig *s = &md->sigs[i];
        bool in_role = false;
        for (size_t j = 0; j < rk->nkeyids && !in_role; j++)
            in_role = strcmp(rk->keyids[j], s->keyid) == 0;
        if (!in_role)
            continue;
        const struct ota_tuf_key *k = ota_tuf_find_key(root, s->keyid);
        if (k == NULL || !k->usable)
            continue;
        bool dup = false;
        for (size_t j = 0; j < valid && !dup; j++)
            dup = memcmp(counted[j], k->pub, OTA_ED25519_PUB_LEN) == 0;
        if (dup || valid >= OTA_TUF_MAX_ROLE_KEYS)
            continue;
        if (!s->well_formed || ota_ed25519_verify(k->pub, md->signed_canonical,
                                                  md->signed_canonical_len, s->sig) != 0) {
            if (nbad++ == 0)
                bad_keyid = s->keyid;
            continue;
        }
        counted[valid++] = k->pub;
    }
    if (rk->threshold >= 1 && valid >= rk->threshold)
        return 0;
    if (nbad > 0) {
        ota_detail_set(det,
                       "%s: the signature by %s key %s%s did not verify (the file was altered "
                       "or signed over other content); %zu of the %u required signatures verify",
                       role_names[role], role_names[role], bad_keyid,
                       nbad > 1 ? " (and other keys of the role)" : "", valid, rk->threshold);
        return OTA_ERR_BAD_SIGNATURE;
    }
    ota_detail_set(det, "%s: %u of %zu required valid signatures, %zu found", role_names[role],
                   rk->threshold, rk->nkeyids, valid);
    return OTA_ERR_THRESHOLD;
}

int ota_tuf_root_step(const struct ota_tuf_meta *next, const struct ota_tuf_meta *cur,
                      struct ota_detail *det)
{
    struct ota_detail inner = {{0}};
    int rc;

    if (next == NULL || cur == NULL || cur->type != OTA_TUF_ROOT)
        return OTA_ERR_INVALID_ARG;
    if (next->type != OTA_TUF_ROOT) {
        ota_detail_set(det, "root version %llu: the file is not a root",
                       (unsigned long long)cur->version + 1);
        return OTA_ERR_WRONG_TYPE;
    }
    if (next->version <= cur->version) {
        ota_detail_set(det, "root version %llu does not follow trusted root version %llu",
                       (unsigned long long)next->version, (unsigned long long)cur->version);
        return OTA_ERR_ROLLBACK;
    }
    if (next->version != cur->version + 1) {
        ota_detail_set(det, "root version %llu skips version %llu: root versions go up by one",
                       (unsigned long long)next->version, (unsigned long long)cur->version + 1);
        return OTA_ERR_VERSION_MISMATCH;
    }
    rc = ota_tuf_verify_role(next, cur, OTA_TUF_ROOT, &inner);
    if (rc != 0) {
        ota_detail_set(
            det, "root version %llu: not signed by the root threshold of version %llu (%s)",
            (unsigned long long)next->version, (unsigned long long)cur->version, inner.msg);
        return rc;
    }
    rc = ota_tuf_verify_role(next, next, OTA_TUF_ROOT, &inner);
    if (rc != 0) {
        ota_detail_set(det, "root version %llu: not signed by its own root threshold (%s)",
                       (unsigned long long)next->version, inner.msg);
        return rc;
    }
    return 0;
}

int ota_tuf_check_expiry(const struct ota_tuf_meta *md, int64_t now, struct ota_detail *det)
{
    if (md == NULL)
        return OTA_ERR_INVALID_ARG;
    if (md->expires > now)
        return 0;
    char when[OTA_TUF_TIME_SIZE];
    if (ota_tuf_format_time(when, md->expires) != 0)
        when[0] = '\0';
    ota_detail_set(det, "%s version %llu expired at %s", ota_tuf_role_name(md->type),
                   (unsigned long long)md->version, when);
    return OTA_ERR_EXPIRED;
}

int ota_tuf_check_metafile(const struct ota_tuf_metafile *mf, const void *data, size_t len,
                           struct ota_detail *det)
{
    if (mf == NULL || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (mf->has_length && mf->length != (uint64_t)len) {
        ota_detail_set(det, "%s: %zu bytes, %llu expected", mf->name ? mf->name : "", len,
                       (unsigned long long)mf->length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (mf->has_sha256) {
        uint8_t got[OTA_SHA256_LEN];
        int rc = ota_sha256(got, data == NULL ? "" : data, len);
        if (rc != 0)
            return rc;
        if (!ota_ct_equal(got, mf->sha256, OTA_SHA256_LEN)) {
            ota_detail_set(det, "%s: SHA-256 differs from the pinned one",
                           mf->name ? mf->name : "");
            return OTA_ERR_HASH_MISMATCH;
        }
    }
    return 0;
}

/* ---- lookups ----------------------------------------------------------- */

const struct ota_tuf_metafile *ota_tuf_find_meta(const struct ota_tuf_meta *md, const char *name)
{
    if (md == NULL || name == NULL || md->nmeta == 0)
        return NULL;
    struct ota_tuf_metafile key = {.name = (char *)name};
    return bsearch(&key, md->meta, md->nmeta, sizeof(*md->meta), cmp_metafile);
}

const struct ota_tuf_target *ota_tuf_find_target(const struct ota_tuf_meta *md, const char *path)
{
    if (md == NULL || path == NULL || md->ntargets == 0)
        return NULL;
    struct ota_tuf_target key = {.path = (char *)path};
    return bsearch(&key, md->targets, md->ntargets, sizeof(*md->targets), cmp_target);
}

const struct ota_tuf_key *ota_tuf_find_key(const struct ota_tuf_meta *root, const char *keyid)
{
    if (root == NULL || keyid == NULL || root->nkeys == 0 || strlen(keyid) >= OTA_KEYID_SIZE)
        return NULL;
    struct ota_tuf_key key;
    memset(&key, 0, sizeof(key));
    memcpy(key.keyid, keyid, strlen(keyid) + 1);
    return bsearch(&key, root->keys, root->nkeys, sizeof(*root->keys), cmp_key);
}

static bool role_has(const struct ota_tuf_role_keys *rk, const char *keyid)
{
    for (size_t i = 0; i < rk->nkeyids; i++) {
        if (strcmp(rk->keyids[i], keyid) == 0)
            return true;
    }
    return false;
}

bool ota_tuf_role_changed(const struct ota_tuf_meta *a, const struct ota_tuf_meta *b,
                          enum ota_tuf_role role)
{
    if (a == NULL || b == NULL || !role_valid(role))
        return true;
    const struct ota_tuf_role_keys *ra = &a->roles[role], *rb = &b->roles[role];
    if (ra->threshold != rb->threshold || ra->nkeyids != rb->nkeyids)
        return true;
    /* Keyids within a role are distinct, so equal counts and inclusion
     * mean equal sets. */
    for (size_t i = 0; i < ra->nkeyids; i++) {
        if (!role_has(rb, ra->keyids[i]))
            return true;
    }
    return false;
}

/* ---- time -------------------------------------------------------------- */

/* Proleptic Gregorian calendar, years 0000..9999. */
#define TIME_MIN          (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define TIME_MAX          253402300799LL   /* 9999-12-31T23:59:59Z */
#define DAYS_0000_TO_1970 719528

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0000-01-01 to y-01-01, for y >= 0. */
static int64_t days_before_year(int64_t y)
{
    /* leap years in [0, y): multiples of 4, minus of 100, plus of 400 */
    return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}

static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

static int days_in_month(int64_t y, int m)
{
    return month_days[m - 1] + (m == 2 && is_leap(y) ? 1 : 0);
}

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int ota_tuf_parse_time(int64_t *out, const char *s)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = 0;
    /* "YYYY-MM-DDTHH:MM:SSZ" is 20 bytes */
    if (s == NULL || strnlen(s, 21) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
        s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return OTA_ERR_FORMAT;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || se < 0 || se > 59)
        return OTA_ERR_FORMAT;
    int64_t days = days_before_year(y) - DAYS_0000_TO_1970;
    for (int m = 1; m < mo; m++)
        days += days_in_month(y, m);
    days += d - 1;
    *out = days * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

int ota_tuf_format_time(char out[OTA_TUF_TIME_SIZE], int64_t t)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, OTA_TUF_TIME_SIZE);
    if (t < TIME_MIN || t > TIME_MAX)
        return OTA_ERR_FORMAT;
    int64_t secs = t - TIME_MIN; /* since 0000-01-01, >= 0 */
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    /* Estimate the year low, then step forward. */
    int64_t y = days / 366;
    while (days_before_year(y + 1) <= days)
        y++;
    days -= days_before_year(y);
    int m = 1;
    while (days >= days_in_month(y, m)) {
        days -= days_in_month(y, m);
        m++;
    }
    put2(out, (int)(y / 100));
    put2(out + 2, (int)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, (int)days + 1);
    out[10] = 'T';
    put2(out + 11, (int)(rem / 3600));
    out[13] = ':';
    put2(out + 14, (int)(rem / 60 % 60));
    out[16] = ':';
    put2(out + 17, (int)(rem % 60));
    out[19] = 'Z';
    out[20] = '\0';
    return 0;
}

/* ---- helpers for repositories ------------------------------------------ */

int ota_tuf_target_file_path(char **out, const struct ota_tuf_target *t)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (t == NULL || t->path == NULL)
        return OTA_ERR_INVALID_ARG;
    size_t n = strlen(t->path);
    const char *slash = strrchr(t->path, '/');
    size_t dir_len = slash == NULL ? 0 : (size_t)(slash - t->path) + 1; /* with the '/' */
    char *p = malloc(n + OTA_SHA256_HEX_LEN + 2);
    if (p == NULL)
        return OTA_ERR_NOMEM;
    memcpy(p, t->path, dir_len);
    ota_hex_encode(p + dir_len, t->sha256, OTA_SHA256_LEN);
    p[dir_len + OTA_SHA256_HEX_LEN] = '.';
    memcpy(p + dir_len + OTA_SHA256_HEX_LEN + 1, t->path + dir_len, n - dir_len + 1);
    *out = p;
    return 0;
}

json_t *ota_tuf_key_object(const uint8_t pub[OTA_ED25519_PUB_LEN])
{
    if (pub == NULL)
        return NULL;
    char hex[2 * OTA_ED25519_PUB_LEN + 1];
    ota_hex_encode(hex, pub, OTA_ED25519_PUB_LEN);
    return json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
                     "public", hex);
}
