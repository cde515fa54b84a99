/* The witness's durable state file (state.h). */
#include "state.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cjson.h"
#include "otachain/buf.h"
#include "otachain/tuf.h"

#define STATE_FORMAT "otachain-witness-state/v1"

int wit_state_path(char **out, const char *state_dir, const char *origin, size_t origin_len)
{
    uint8_t h[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    size_t n;
    int rc;

    *out = NULL;
    rc = ota_sha256(h, origin, origin_len);
    if (rc != 0)
        return rc;
    ota_hex_encode(hex, h, sizeof(h));
    n = strlen(state_dir) + 1 + OTA_SHA256_HEX_LEN + sizeof(".json");
    *out = malloc(n);
    if (*out == NULL)
        return OTA_ERR_NOMEM;
    snprintf(*out, n, "%s/%s.json", state_dir, hex);
    return 0;
}

void wit_vstate_free(struct wit_vstate *v)
{
    ota_ledger_rules_free(&v->rules);
    memset(v, 0, sizeof(*v));
}

int wit_vstate_copy(struct wit_vstate *dst, const struct wit_vstate *src)
{
    int rc;

    dst->edge = src->edge;
    rc = ota_ledger_rules_copy(&dst->rules, &src->rules);
    if (rc != 0)
        memset(dst, 0, sizeof(*dst));
    return rc;
}

void wit_state_free(struct wit_state *st)
{
    free(st->checkpoint);
    wit_vstate_free(&st->v);
    memset(st, 0, sizeof(*st));
}

/* ---- load ---- */

static int bad(struct ota_detail *det, const char *what)
{
    ota_detail_set(det, "%s", what);
    return OTA_ERR_FORMAT;
}

static int get_u64(uint64_t *out, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return OTA_ERR_FORMAT;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Decodes base64 text of at most max decoded bytes into a new buffer. */
static int b64_alloc(uint8_t **out, size_t *out_len, json_t *s, size_t max)
{
    size_t tlen = json_string_length(s);
    size_t cap = OTA_BASE64_DECODED_MAX(tlen);

    *out = NULL;
    *out_len = 0;
    if (cap > max + 2)
        return OTA_ERR_TOO_LARGE;
    *out = malloc(cap ? cap : 1);
    if (*out == NULL)
        return OTA_ERR_NOMEM;
    if (ota_base64_decode(*out, cap, out_len, json_string_value(s), tlen) != 0 || *out_len > max) {
        free(*out);
        *out = NULL;
        *out_len = 0;
        return OTA_ERR_FORMAT;
    }
    return 0;
}

static int load_validation(struct wit_state *st, json_t *val, struct ota_detail *det)
{
    struct wit_vstate *v = &st->v;
    json_t *edge = json_object_get(val, "edge");
    uint8_t *enc = NULL;
    size_t enc_len;
    uint8_t r[OTA_MERKLE_HASH_LEN];
    int rc;

    if (!json_is_object(val) || json_object_size(val) != 4 || !json_is_string(edge))
        return bad(det, "validation: malformed");
    rc = b64_alloc(&enc, &enc_len, edge, OTA_MERKLE_EDGE_ENC_MAX);
    if (rc == OTA_ERR_NOMEM)
        return rc;
    if (rc == 0)
        rc = ota_merkle_edge_decode(&v->edge, enc, enc_len, NULL);
    free(enc);
    if (rc != 0)
        return bad(det, "validation: edge malformed");
    /* S3 */
    if (v->edge.size != (st->present ? st->cp.size : 0) || ota_merkle_edge_root(r, &v->edge) != 0 ||
        (st->present && !ota_ct_equal(r, st->cp.root, sizeof(r))))
        return bad(det, "validation: edge does not describe the stored checkpoint");
    /* S4 */
    rc = ota_ledger_rules_from_json(&v->rules, val, det);
    if (rc != 0)
        return rc;
    st->has_validation = true;
    return 0;
}

static int load_doc(struct wit_state *st, json_t *doc, const char *origin, size_t origin_len,
                    bool validating, struct ota_detail *det)
{
    json_t *format = json_object_get(doc, "format");
    json_t *org = json_object_get(doc, "origin");
    json_t *cp = json_object_get(doc, "checkpoint");
    json_t *val = json_object_get(doc, "validation");
    size_t want = 4 + (val != NULL);
    int rc;

    if (!json_is_object(doc) || json_object_size(doc) != want || !json_is_string(format) ||
        strcmp(json_string_value(format), STATE_FORMAT) != 0 || !json_is_string(org) ||
        !json_is_string(cp) || get_u64(&st->cosigned_at, doc, "cosigned_at") != 0)
        return bad(det, "not an otachain-witness-state/v1 document");
    if (json_string_length(org) != origin_len ||
        memcmp(json_string_value(org), origin, origin_len) != 0)
        return bad(det, "the file belongs to another origin");
    st->checkpoint_len = json_string_length(cp);
    st->checkpoint = strdup(json_string_value(cp));
    if (st->checkpoint == NULL)
        return OTA_ERR_NOMEM;
    /* S1 */
    rc = ota_checkpoint_parse(&st->cp, st->checkpoint, st->checkpoint_len, det);
    if (rc != 0 || st->cp.origin_len != origin_len || memcmp(st->cp.origin, origin, origin_len))
        return bad(det, "stored checkpoint does not parse or names another origin");
    st->present = true;
    if (val != NULL) {
        rc = load_validation(st, val, det);
        if (rc != 0)
            return rc;
    }
    if (validating && !st->has_validation)
        return bad(det, "the log is now validating but its state was written without "
                        "validation: the witness cannot check the entries it has already "
                        "cosigned (see docs/witness.md)");
    return 0;
}

int wit_state_load(struct wit_state *st, const char *path, const char *origin, size_t origin_len,
                   bool validating, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc;
    json_error_t jerr;
    int rc;

    memset(st, 0, sizeof(*st));
    rc = ota_fs_read_nofollow(&data, &len, path, WIT_STATE_MAX_LEN);
    if (rc == OTA_ERR_NOT_FOUND) {
        if (validating) {
            ota_merkle_edge_init(&st->v.edge);
            st->has_validation = true;
        }
        return 0;
    }
    if (rc != 0) {
        ota_detail_set(det, "state %s: %s", path, ota_strerror(rc));
        return rc;
    }
    doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    free(data);
    if (doc == NULL) {
        ota_detail_set(det, "state %s: not JSON: %s", path, jerr.text);
        return OTA_ERR_FORMAT;
    }
    rc = load_doc(st, doc, origin, origin_len, validating, det);
    json_decref(doc);
    if (rc != 0) {
        char where[4200];
        snprintf(where, sizeof(where), "state %s", path);
        ota_detail_prefix(det, where);
        wit_state_free(st);
    }
    return rc;
}

/* ---- store ---- */

static json_t *validation_json(const struct wit_vstate *v)
{
    uint8_t enc[OTA_MERKLE_EDGE_ENC_MAX];
    size_t enc_len;
    json_t *val = json_object();
    bool ok = val != NULL;

    if (ok)
        ok = ota_merkle_edge_encode(enc, &enc_len, &v->edge) == 0 &&
             json_object_set_new(val, "edge", ota_json_base64(enc, enc_len)) == 0 &&
             ota_ledger_rules_to_json(val, &v->rules) == 0;
    if (!ok) {
        json_decref(val);
        return NULL;
    }
    return val;
}

int wit_state_store(const struct wit_state *st, const char *path, const char *origin,
                    size_t origin_len, const struct ota_fs_hook *hook, struct ota_detail *det)
{
    json_t *doc;
    char *text = NULL;
    int rc = OTA_ERR_NOMEM;

    if (!st->present || origin_len != st->cp.origin_len ||
        memcmp(origin, st->cp.origin, origin_len) != 0)
        return OTA_ERR_INVALID_ARG;
    doc = json_pack("{s:s,s:s%,s:s%,s:I}", "format", STATE_FORMAT, "origin", origin, origin_len,
                    "checkpoint", st->checkpoint, st->checkpoint_len, "cosigned_at",
                    (json_int_t)st->cosigned_at);
    if (doc != NULL && st->has_validation) {
        json_t *val = validation_json(&st->v);
        if (val == NULL || json_object_set_new(doc, "validation", val) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    }
    if (doc != NULL)
        text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1));
    json_decref(doc);
    if (text != NULL) {
        rc = ota_fs_replace(path, text, strlen(text), 0600, hook);
        if (rc != 0)
            ota_detail_set(det, "state %s: %s", path, ota_strerror(rc));
    }
    free(text);
    return rc;
}
