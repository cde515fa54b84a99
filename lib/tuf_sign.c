/* Signing TUF metadata (see otachain/tuf_sign.h).
 *
 * Signatures are kept sorted by keyid so that signing the same document
 * with the same keys in any order gives the same bytes.
 */
#include "otachain/tuf_sign.h"

#include <stdlib.h>
#include <string.h>

#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/tuf.h"

/* The keyid of a signature entry, or NULL if the entry is malformed. */
static const char *entry_keyid(const json_t *e)
{
    const json_t *k = json_object_get(e, "keyid");
    if (!json_is_object(e) || !json_is_string(k))
        return NULL;
    return json_string_value(k);
}

static int cmp_entry(const void *a, const void *b)
{
    const char *ka = entry_keyid(*(json_t *const *)a);
    const char *kb = entry_keyid(*(json_t *const *)b);
    return strcmp(ka, kb);
}

/* Checks the shape of a document: "signed" object, "signatures" array of
 * entries each with a string keyid. */
static int check_doc(const json_t *doc, json_t **sigs_out)
{
    json_t *sigs = json_object_get(doc, "signatures");
    if (!json_is_object(doc) || !json_is_object(json_object_get(doc, "signed")) ||
        !json_is_array(sigs))
        return OTA_ERR_FORMAT;
    if (json_array_size(sigs) > OTA_TUF_MAX_SIGS)
        return OTA_ERR_TOO_LARGE;
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        if (entry_keyid(json_array_get(sigs, i)) == NULL)
            return OTA_ERR_FORMAT;
    }
    *sigs_out = sigs;
    return 0;
}

/* Sorts the entries of arr by keyid, in place (the array object stays the
 * same, so pointers to it held by the caller remain valid). */
static int sort_entries(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return 0;
    json_t **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_entry);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && json_array_set(arr, i, v[i]) != 0)
            rc = OTA_ERR_NOMEM;
        json_decref(v[i]);
    }
    free(v);
    return rc;
}

int ota_tuf_sign(json_t *doc, const struct ota_signer *s)
{
    if (doc == NULL || s == NULL)
        return OTA_ERR_INVALID_ARG;
    json_t *sigs = NULL;
    int rc = check_doc(doc, &sigs);
    if (rc != 0)
        return rc;
    const char *keyid = ota_signer_keyid(s);
    if (keyid == NULL)
        return OTA_ERR_INVALID_ARG;

    uint8_t *canon = NULL;
    size_t canon_len = 0;
    rc = ota_json_canonical_alloc(&canon, &canon_len, json_object_get(doc, "signed"));
    if (rc != 0)
        return rc;
    uint8_t sig[OTA_ED25519_SIG_LEN];
    rc = ota_signer_sign(sig, s, canon, canon_len);
    free(canon);
    if (rc != 0)
        return rc;
    char hex[2 * OTA_ED25519_SIG_LEN + 1];
    ota_hex_encode(hex, sig, sizeof(sig));

    json_t *entry = json_pack("{s:s, s:s}", "keyid", keyid, "sig", hex);
    if (entry == NULL)
        return OTA_ERR_NOMEM;
    /* Drop every earlier entry of this key: a key never signs twice. */
    for (size_t i = json_array_size(sigs); i-- > 0;) {
        if (strcmp(entry_keyid(json_array_get(sigs, i)), keyid) == 0 &&
            json_array_remove(sigs, i) != 0) {
            json_decref(entry);
            return OTA_ERR_NOMEM;
        }
    }
    if (json_array_size(sigs) >= OTA_TUF_MAX_SIGS) {
        json_decref(entry);
        rc = OTA_ERR_TOO_LARGE;
    } else {
        rc = json_array_append_new(sigs, entry) == 0 ? 0 : OTA_ERR_NOMEM;
    }
    if (rc != 0)
        return rc;
    return sort_entries(sigs);
}

static bool has_keyid(const json_t *sigs, const char *keyid)
{
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        if (strcmp(entry_keyid(json_array_get(sigs, i)), keyid) == 0)
            return true;
    }
    return false;
}

int ota_tuf_merge_signatures(json_t *dst, const json_t *src, struct ota_detail *det)
{
    if (dst == NULL || src == NULL)
        return OTA_ERR_INVALID_ARG;
    json_t *dsigs = NULL, *ssigs = NULL;
    int rc = check_doc(dst, &dsigs);
    if (rc == 0)
        rc = check_doc(src, &ssigs);
    if (rc != 0) {
        ota_detail_set(det, "not a TUF metadata document");
        return rc;
    }

    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    rc = ota_json_canonical_alloc(&a, &alen, json_object_get(dst, "signed"));
    if (rc == 0)
        rc = ota_json_canonical_alloc(&b, &blen, json_object_get(src, "signed"));
    bool same = rc == 0 && alen == blen && memcmp(a, b, alen) == 0;
    free(a);
    free(b);
    if (rc != 0)
        return rc;
    if (!same) {
        ota_detail_set(det, "signed parts differ");
        return OTA_ERR_FORMAT;
    }

    /* Count first so that nothing is added when the cap would be passed. */
    size_t add = 0;
    for (size_t i = 0; i < json_array_size(ssigs); i++) {
        if (!has_keyid(dsigs, entry_keyid(json_array_get(ssigs, i))))
            add++;
    }
    if (json_array_size(dsigs) + add > OTA_TUF_MAX_SIGS) {
        ota_detail_set(det, "more than %d signatures", OTA_TUF_MAX_SIGS);
        return OTA_ERR_TOO_LARGE;
    }
    size_t n = json_array_size(ssigs);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(ssigs, i);
        if (has_keyid(dsigs, entry_keyid(e)))
            continue;
        json_t *copy = json_deep_copy(e);
        if (copy == NULL || json_array_append_new(dsigs, copy) != 0)
            return OTA_ERR_NOMEM;
    }
    return sort_entries(dsigs);
}
