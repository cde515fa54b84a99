/* The release rules of the ledger (see otachain/ledger_rules.h). */
#include "otachain/ledger_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cjson.h"

static const char *const role_keys[3] = {"root", "targets", "snapshot"};

/* Refusal of entry i, with the library's detail (if any) after why. */
static int refuse(struct ota_detail *det, int err, uint64_t i, const struct ota_ledger_entry *e,
                  const char *why, bool keep_detail)
{
    char where[200];

    snprintf(where, sizeof(where), "entry %llu (%s v%llu): %s", (unsigned long long)i,
             ota_tuf_role_name(e->role), (unsigned long long)e->version, why);
    if (keep_detail && det != NULL && det->msg[0] != '\0')
        ota_detail_prefix(det, where);
    else
        ota_detail_set(det, "%s", where);
    return err;
}

bool ota_ledger_rules_refused(int err)
{
    return err != 0 && err != OTA_ERR_NOMEM && err != OTA_ERR_INVALID_ARG;
}

/* R1: the file is the one the record names. */
static int check_file(struct ota_tuf_meta **md, uint64_t i, const struct ota_ledger_entry *e,
                      const uint8_t *file, size_t len, struct ota_detail *det)
{
    uint8_t sha[OTA_SHA256_LEN];
    char why[96];
    int rc;

    *md = NULL;
    if (file == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len != e->length) {
        snprintf(why, sizeof(why), "the file is %zu bytes, the log says %llu", len,
                 (unsigned long long)e->length);
        return refuse(det, OTA_ERR_LENGTH_MISMATCH, i, e, why, false);
    }
    rc = ota_sha256(sha, file != NULL ? (const void *)file : "", len);
    if (rc != 0)
        return rc;
    if (!ota_ct_equal(sha, e->sha256, sizeof(sha)))
        return refuse(det, OTA_ERR_HASH_MISMATCH, i, e, "the file does not have the logged SHA-256",
                      false);
    if (det != NULL)
        det->msg[0] = '\0';
    rc = ota_tuf_parse(md, file, len, e->role, det);
    if (rc == OTA_ERR_NOMEM)
        return rc;
    if (rc != 0)
        return refuse(det, rc, i, e, "the file is not valid metadata of its role", true);
    if ((*md)->version != e->version) {
        snprintf(why, sizeof(why), "version %llu inside, the log says %llu",
                 (unsigned long long)(*md)->version, (unsigned long long)e->version);
        ota_tuf_meta_free(*md);
        *md = NULL;
        return refuse(det, OTA_ERR_VERSION_MISMATCH, i, e, why, false);
    }
    return 0;
}

static int set_root(struct ota_ledger_rules *st, const uint8_t *bytes, size_t len, uint64_t version)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL)
        return OTA_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, bytes, len);
    free(st->root);
    st->root = copy;
    st->root_len = len;
    st->version[OTA_TUF_ROOT] = version;
    return 0;
}

/* R1, R3: a root record (after the precheck). */
static int check_root(struct ota_ledger_rules *st, uint64_t i, const struct ota_ledger_entry *e,
                      const uint8_t *file, size_t len, const uint8_t *anchor, size_t anchor_len,
                      struct ota_detail *det)
{
    struct ota_tuf_meta *md = NULL;
    struct ota_tuf_meta *cur = NULL;
    int rc;

    if (st->root == NULL) {
        struct ota_ledger_entry want;

        /* R3: the log starts at the anchor, byte for byte. */
        if (anchor == NULL)
            return OTA_ERR_INVALID_ARG;
        rc = ota_tuf_parse(&md, anchor, anchor_len, OTA_TUF_ROOT, NULL);
        if (rc == 0)
            rc = ota_ledger_entry_of_file(&want, OTA_TUF_ROOT, md->version, anchor, anchor_len);
        if (rc == OTA_ERR_NOMEM) {
            ota_tuf_meta_free(md);
            return rc;
        }
        if (rc != 0 || want.version != e->version || want.length != e->length ||
            !ota_ct_equal(want.sha256, e->sha256, OTA_SHA256_LEN)) {
            ota_tuf_meta_free(md);
            return refuse(det, OTA_ERR_HASH_MISMATCH, i, e,
                          "the first root of the log is not the configured anchor", false);
        }
        rc = set_root(st, anchor, anchor_len, md->version);
        ota_tuf_meta_free(md);
        return rc;
    }
    rc = check_file(&md, i, e, file, len, det);
    if (rc != 0)
        return rc;
    rc = ota_tuf_parse(&cur, st->root, st->root_len, OTA_TUF_ROOT, NULL);
    if (rc == 0) {
        if (det != NULL)
            det->msg[0] = '\0';
        rc = ota_tuf_root_step(md, cur, det);
        if (rc != 0 && rc != OTA_ERR_NOMEM)
            rc = refuse(det, rc, i, e,
                        ota_tuf_verify_role(md, cur, OTA_TUF_ROOT, NULL) != 0
                            ? "not signed by the root threshold of the previous root"
                            : "not signed by its own root threshold",
                        true);
    }
    if (rc == 0)
        rc = set_root(st, file, len, md->version);
    ota_tuf_meta_free(cur);
    ota_tuf_meta_free(md);
    return rc;
}

/* R1, R5, R6: a targets or snapshot record (after the precheck). */
static int check_signed(struct ota_ledger_rules *st, uint64_t i, const struct ota_ledger_entry *e,
                        const uint8_t *file, size_t len, struct ota_detail *det)
{
    struct ota_tuf_meta *md = NULL;
    struct ota_tuf_meta *root = NULL;
    int rc;

    rc = check_file(&md, i, e, file, len, det);
    if (rc != 0)
        return rc;
    rc = ota_tuf_parse(&root, st->root, st->root_len, OTA_TUF_ROOT, NULL);
    if (rc == 0) {
        if (det != NULL)
            det->msg[0] = '\0';
        rc = ota_tuf_verify_role(md, root, e->role, det);
        if (rc != 0 && rc != OTA_ERR_NOMEM)
            rc = refuse(det, rc, i, e,
                        e->role == OTA_TUF_TARGETS
                            ? "below the targets threshold of the latest logged root"
                            : "below the snapshot threshold of the latest logged root",
                        true);
    }
    if (rc == 0 && e->role == OTA_TUF_SNAPSHOT) {
        const struct ota_tuf_metafile *mf = ota_tuf_find_meta(md, "targets.json");

        if (mf == NULL || !st->has_targets || mf->version != st->version[OTA_TUF_TARGETS] ||
            (mf->has_length && mf->length != st->targets_length) ||
            (mf->has_sha256 && !ota_ct_equal(mf->sha256, st->targets_sha256, OTA_SHA256_LEN)))
            rc = refuse(det, OTA_ERR_VERSION_MISMATCH, i, e,
                        "does not pin the latest logged targets", false);
    }
    if (rc == 0 && e->role == OTA_TUF_TARGETS) {
        st->has_targets = true;
        st->targets_length = e->length;
        memcpy(st->targets_sha256, e->sha256, OTA_SHA256_LEN);
    }
    if (rc == 0)
        st->version[e->role] = e->version;
    ota_tuf_meta_free(root);
    ota_tuf_meta_free(md);
    return rc;
}

int ota_ledger_rules_precheck(const struct ota_ledger_rules *st, uint64_t index,
                              const struct ota_ledger_entry *e, bool *need_file,
                              struct ota_detail *det)
{
    *need_file = true;
    if (st == NULL || e == NULL || (unsigned)e->role > OTA_TUF_SNAPSHOT)
        return OTA_ERR_INVALID_ARG;
    if (e->role == OTA_TUF_ROOT) {
        if (st->root == NULL) {
            *need_file = false;
            return 0;
        }
        if (e->version != st->version[OTA_TUF_ROOT] + 1)
            return refuse(det, OTA_ERR_ROLLBACK, index, e,
                          e->version <= st->version[OTA_TUF_ROOT]
                              ? "root versions only increase"
                              : "root versions go up by exactly one",
                          false);
        return 0;
    }
    if (st->root == NULL)
        return refuse(det, OTA_ERR_NO_TRUSTED_ROOT, index, e, "logged before any root", false);
    if (e->version <= st->version[e->role])
        return refuse(det, OTA_ERR_ROLLBACK, index, e, "versions only increase", false);
    return 0;
}

int ota_ledger_rules_check(struct ota_ledger_rules *st, uint64_t index,
                           const struct ota_ledger_entry *e, const uint8_t *file, size_t len,
                           const uint8_t *anchor, size_t anchor_len, struct ota_detail *det)
{
    bool need_file;
    int rc = ota_ledger_rules_precheck(st, index, e, &need_file, det);

    if (rc != 0)
        return rc;
    /* Both checks change st only once everything passed. */
    if (e->role == OTA_TUF_ROOT)
        return check_root(st, index, e, file, len, anchor, anchor_len, det);
    return check_signed(st, index, e, file, len, det);
}

int ota_ledger_rules_copy(struct ota_ledger_rules *dst, const struct ota_ledger_rules *src)
{
    *dst = *src;
    dst->root = NULL;
    dst->root_len = 0;
    if (src->root == NULL)
        return 0;
    dst->root = malloc(src->root_len > 0 ? src->root_len : 1);
    if (dst->root == NULL)
        return OTA_ERR_NOMEM;
    memcpy(dst->root, src->root, src->root_len);
    dst->root_len = src->root_len;
    return 0;
}

void ota_ledger_rules_free(struct ota_ledger_rules *st)
{
    if (st == NULL)
        return;
    free(st->root);
    memset(st, 0, sizeof(*st));
}

int ota_ledger_rules_to_json(json_t *obj, const struct ota_ledger_rules *st)
{
    json_t *versions = json_object();
    json_t *targets = json_null();
    char hex[OTA_SHA256_HEX_LEN + 1];
    bool ok = versions != NULL;

    for (int i = 0; ok && i < 3; i++)
        ok = json_object_set_new(versions, role_keys[i],
                                 json_integer((json_int_t)st->version[i])) == 0;
    if (ok && st->has_targets) {
        ota_hex_encode(hex, st->targets_sha256, OTA_SHA256_LEN);
        targets = json_pack("{s:I,s:s}", "length", (json_int_t)st->targets_length, "sha256", hex);
        ok = targets != NULL;
    }
    if (ok)
        ok = json_object_set_new(obj, "root",
                                 st->root != NULL ? ota_json_base64(st->root, st->root_len)
                                                  : json_null()) == 0;
    if (ok) {
        ok = json_object_set_new(obj, "versions", versions) == 0;
        versions = NULL;
    }
    if (ok) {
        ok = json_object_set_new(obj, "targets", targets) == 0;
        targets = NULL;
    }
    json_decref(versions);
    json_decref(targets);
    return ok ? 0 : OTA_ERR_NOMEM;
}

static int bad(struct ota_ledger_rules *st, struct ota_detail *det, const char *what)
{
    ota_ledger_rules_free(st);
    ota_detail_set(det, "%s", what);
    return OTA_ERR_FORMAT;
}

static int get_u64(uint64_t *out, const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return OTA_ERR_FORMAT;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int ota_ledger_rules_from_json(struct ota_ledger_rules *st, const json_t *obj,
                               struct ota_detail *det)
{
    json_t *root = json_object_get(obj, "root");
    json_t *versions = json_object_get(obj, "versions");
    json_t *targets = json_object_get(obj, "targets");

    memset(st, 0, sizeof(*st));
    if (!json_is_object(versions) || json_object_size(versions) != 3 ||
        (!json_is_null(root) && !json_is_string(root)) ||
        (!json_is_null(targets) && !json_is_object(targets)))
        return bad(st, det, "validation: malformed");
    for (int i = 0; i < 3; i++) {
        if (get_u64(&st->version[i], versions, role_keys[i]) != 0)
            return bad(st, det, "validation: versions malformed");
    }
    if (json_is_string(root)) {
        size_t tlen = json_string_length(root);
        size_t cap = OTA_BASE64_DECODED_MAX(tlen);
        struct ota_tuf_meta *md = NULL;
        int rc;

        if (cap > OTA_TUF_ROOT_MAX_LEN + 2)
            return bad(st, det, "validation: root malformed");
        st->root = malloc(cap > 0 ? cap : 1);
        if (st->root == NULL)
            return OTA_ERR_NOMEM;
        if (ota_base64_decode(st->root, cap, &st->root_len, json_string_value(root), tlen) != 0 ||
            st->root_len > OTA_TUF_ROOT_MAX_LEN)
            return bad(st, det, "validation: root malformed");
        rc = ota_tuf_parse(&md, st->root, st->root_len, OTA_TUF_ROOT, NULL);
        if (rc == OTA_ERR_NOMEM) {
            ota_ledger_rules_free(st);
            return rc;
        }
        if (rc == 0 && md->version != st->version[OTA_TUF_ROOT])
            rc = OTA_ERR_FORMAT;
        ota_tuf_meta_free(md);
        if (rc != 0)
            return bad(st, det, "validation: stored root does not parse or is not versions.root");
    } else if (st->version[OTA_TUF_ROOT] != 0) {
        return bad(st, det, "validation: versions.root without a root");
    }
    if (json_is_object(targets)) {
        json_t *sha = json_object_get(targets, "sha256");

        if (json_object_size(targets) != 2 ||
            get_u64(&st->targets_length, targets, "length") != 0 || !json_is_string(sha) ||
            json_string_length(sha) != OTA_SHA256_HEX_LEN ||
            ota_hex_decode(st->targets_sha256, OTA_SHA256_LEN, json_string_value(sha)) != 0 ||
            st->version[OTA_TUF_TARGETS] == 0)
            return bad(st, det, "validation: targets malformed");
        st->has_targets = true;
    } else if (st->version[OTA_TUF_TARGETS] != 0) {
        return bad(st, det, "validation: versions.targets without targets");
    }
    return 0;
}
