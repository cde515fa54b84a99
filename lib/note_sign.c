/* Note and cosignature signing (see otachain/note_sign.h). Sign library:
 * never linked by the device agent.
 *
 * Secrets: the seed passes through stack buffers and a decoding buffer,
 * all wiped before return; the key itself lives in the ota_signer.
 */
#include "otachain/note_sign.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/checkpoint.h"
#include "otachain/cosig.h"

#define SKEY_PREFIX     "PRIVATE+KEY+"
#define SKEY_PREFIX_LEN 12

struct ota_note_signer {
    struct ota_note_verifier v; /* name, type, key ID, public key */
    struct ota_signer *key;
};

static bool type_ok(uint8_t type)
{
    return type == OTA_NOTE_TYPE_ED25519 || type == OTA_NOTE_TYPE_COSIG_V1;
}

/* Takes ownership of key (freed on failure). */
static int signer_wrap(struct ota_note_signer **out, const char *name, size_t name_len,
                       uint8_t type, struct ota_signer *key)
{
    struct ota_note_signer *s;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    int rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ota_signer_free(key);
        return OTA_ERR_NOMEM;
    }
    s->key = key;
    ota_signer_public(pub, key);
    rc = ota_note_verifier_make(&s->v, name, name_len, type, pub);
    if (rc != 0) {
        ota_note_signer_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int check_args(struct ota_note_signer **out, const char *name, size_t name_len, uint8_t type)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (!ota_note_name_valid(name, name_len))
        return OTA_ERR_KEY_FORMAT;
    if (!type_ok(type))
        return OTA_ERR_UNSUPPORTED;
    return 0;
}

int ota_note_signer_from_seed(struct ota_note_signer **out, const char *name, size_t name_len,
                              uint8_t type, const uint8_t seed[OTA_ED25519_SEED_LEN])
{
    struct ota_signer *key = NULL;
    int rc = check_args(out, name, name_len, type);

    if (rc != 0)
        return rc;
    if (seed == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_signer_from_seed(&key, seed);
    if (rc != 0)
        return rc;
    return signer_wrap(out, name, name_len, type, key);
}

int ota_note_signer_from_signer(struct ota_note_signer **out, const char *name, size_t name_len,
                                uint8_t type, const struct ota_signer *key)
{
    uint8_t seed[OTA_ED25519_SEED_LEN];
    int rc = check_args(out, name, name_len, type);

    if (rc != 0)
        return rc;
    if (key == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_signer_seed(seed, key);
    if (rc == 0)
        rc = ota_note_signer_from_seed(out, name, name_len, type, seed);
    ota_wipe(seed, sizeof(seed));
    return rc;
}

int ota_note_signer_generate(struct ota_note_signer **out, const char *name, size_t name_len,
                             uint8_t type)
{
    struct ota_signer *key = NULL;
    int rc = check_args(out, name, name_len, type);

    if (rc != 0)
        return rc;
    rc = ota_signer_generate(&key);
    if (rc != 0)
        return rc;
    return signer_wrap(out, name, name_len, type, key);
}

/* Exactly 8 lowercase hex digits. */
static bool parse_hex8(uint32_t *out, const char *s, size_t len)
{
    uint32_t v = 0;

    if (len != 8)
        return false;
    for (size_t i = 0; i < 8; i++) {
        uint32_t d;

        if (s[i] >= '0' && s[i] <= '9')
            d = (uint32_t)(s[i] - '0');
        else if (s[i] >= 'a' && s[i] <= 'f')
            d = (uint32_t)(s[i] - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

int ota_note_signer_parse(struct ota_note_signer **out, const char *skey, size_t len,
                          struct ota_detail *det)
{
    uint8_t raw[1 + OTA_ED25519_SEED_LEN + 3]; /* room to detect a longer key */
    const char *name;
    const char *p1;
    const char *p2;
    const char *end;
    size_t name_len;
    size_t raw_len = 0;
    uint32_t id;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (skey == NULL)
        return OTA_ERR_INVALID_ARG;
    end = skey + len;
    if (len > OTA_NOTE_SKEY_MAX_LEN || len < SKEY_PREFIX_LEN ||
        memcmp(skey, SKEY_PREFIX, SKEY_PREFIX_LEN) != 0) {
        ota_detail_set(det, "signer key is not PRIVATE+KEY+<name>+<key ID>+<key>");
        return OTA_ERR_KEY_FORMAT;
    }
    name = skey + SKEY_PREFIX_LEN;
    p1 = memchr(name, '+', (size_t)(end - name));
    p2 = p1 != NULL ? memchr(p1 + 1, '+', (size_t)(end - (p1 + 1))) : NULL;
    if (p2 == NULL) {
        ota_detail_set(det, "signer key is not PRIVATE+KEY+<name>+<key ID>+<key>");
        return OTA_ERR_KEY_FORMAT;
    }
    name_len = (size_t)(p1 - name);
    if (!ota_note_name_valid(name, name_len)) {
        ota_detail_set(det, "signer key: invalid key name");
        return OTA_ERR_KEY_FORMAT;
    }
    if (!parse_hex8(&id, p1 + 1, (size_t)(p2 - (p1 + 1)))) {
        ota_detail_set(det, "signer key %.*s: key ID is not 8 lowercase hex digits", (int)name_len,
                       name);
        return OTA_ERR_KEY_FORMAT;
    }
    rc = ota_base64_decode(raw, sizeof(raw), &raw_len, p2 + 1, (size_t)(end - (p2 + 1)));
    if (rc != 0 || raw_len == 0) {
        ota_detail_set(det,
                       "signer key %.*s: key is not canonical base64 of a type and a "
                       "32-byte seed",
                       (int)name_len, name);
        rc = OTA_ERR_KEY_FORMAT;
        goto out;
    }
    if (!type_ok(raw[0])) {
        ota_detail_set(det, "signer key %.*s: signature type 0x%02x is not supported",
                       (int)name_len, name, raw[0]);
        rc = OTA_ERR_UNSUPPORTED;
        goto out;
    }
    if (raw_len != 1 + OTA_ED25519_SEED_LEN) {
        ota_detail_set(det, "signer key %.*s: seed of %zu bytes, not 32", (int)name_len, name,
                       raw_len - 1);
        rc = OTA_ERR_KEY_FORMAT;
        goto out;
    }
    rc = ota_note_signer_from_seed(out, name, name_len, raw[0], raw + 1);
    if (rc == 0 && (*out)->v.key_id != id) {
        ota_detail_set(det,
                       "signer key %.*s: key ID %08" PRIx32 " is not %08" PRIx32
                       ", the one of its name and public key",
                       (int)name_len, name, id, (*out)->v.key_id);
        ota_note_signer_free(*out);
        *out = NULL;
        rc = OTA_ERR_KEYID_MISMATCH;
    }
out:
    ota_wipe(raw, sizeof(raw));
    return rc;
}

int ota_note_signer_format(struct ota_buf *out, const struct ota_note_signer *s)
{
    uint8_t raw[1 + OTA_ED25519_SEED_LEN];
    char b64[OTA_BASE64_LEN(sizeof(raw)) + 1];
    size_t old;
    int rc;

    if (out == NULL || s == NULL)
        return OTA_ERR_INVALID_ARG;
    old = out->len;
    raw[0] = s->v.type;
    rc = ota_signer_seed(raw + 1, s->key);
    if (rc == 0) {
        ota_base64_encode(b64, raw, sizeof(raw));
        rc = ota_buf_printf(out, SKEY_PREFIX "%s+%08" PRIx32 "+%s", s->v.name, s->v.key_id, b64);
    }
    if (rc != 0 && out->data != NULL && out->len > old) {
        ota_wipe(out->data + old, out->len - old);
        out->len = old;
    }
    ota_wipe(raw, sizeof(raw));
    ota_wipe(b64, sizeof(b64));
    return rc;
}

void ota_note_signer_verifier(struct ota_note_verifier *out, const struct ota_note_signer *s)
{
    *out = s->v;
}

void ota_note_signer_free(struct ota_note_signer *s)
{
    if (s == NULL)
        return;
    ota_signer_free(s->key);
    ota_wipe(s, sizeof(*s));
    free(s);
}

/* Appends "— <name> <base64(key ID || sig)>\n" to out, all or nothing. */
static int append_line(struct ota_buf *out, const struct ota_note_signer *s, const uint8_t *sig,
                       size_t sig_len)
{
    uint8_t raw[4 + OTA_COSIG_LEN];
    char b64[OTA_BASE64_LEN(sizeof(raw)) + 1];
    size_t old = out->len;
    int rc;

    raw[0] = (uint8_t)(s->v.key_id >> 24);
    raw[1] = (uint8_t)(s->v.key_id >> 16);
    raw[2] = (uint8_t)(s->v.key_id >> 8);
    raw[3] = (uint8_t)s->v.key_id;
    memcpy(raw + 4, sig, sig_len);
    ota_base64_encode(b64, raw, 4 + sig_len);
    rc = ota_buf_printf(out, OTA_NOTE_SIG_PREFIX "%s %s\n", s->v.name, b64);
    if (rc != 0 && out->data != NULL) {
        out->len = old;
        out->data[old] = '\0';
    }
    return rc;
}

int ota_note_sign(struct ota_buf *out, const char *text, size_t text_len,
                  const struct ota_note_signer *s, struct ota_detail *det)
{
    uint8_t sig[OTA_ED25519_SIG_LEN];
    int rc;

    if (out == NULL || s == NULL || s->v.type != OTA_NOTE_TYPE_ED25519)
        return OTA_ERR_INVALID_ARG;
    rc = ota_note_text_check(text, text_len, det);
    if (rc != 0)
        return rc;
    rc = ota_signer_sign(sig, s->key, text, text_len);
    if (rc == 0)
        rc = append_line(out, s, sig, sizeof(sig));
    return rc;
}

int ota_note_cosign(struct ota_buf *out, const char *body, size_t body_len, uint64_t t,
                    const struct ota_note_signer *s, struct ota_detail *det)
{
    struct ota_checkpoint *cp;
    struct ota_buf msg;
    uint8_t sig[OTA_COSIG_LEN];
    int rc;

    if (out == NULL || s == NULL || s->v.type != OTA_NOTE_TYPE_COSIG_V1 || t > OTA_COSIG_MAX_TIME)
        return OTA_ERR_INVALID_ARG;
    cp = malloc(sizeof(*cp)); /* about 5 KiB: kept off the stack */
    if (cp == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_checkpoint_parse(cp, body, body_len, det);
    free(cp);
    if (rc != 0)
        return rc;
    ota_buf_init(&msg, 64 + body_len);
    rc = ota_cosig_message(&msg, body, body_len, t);
    if (rc == 0) {
        ota_cosig_put_time(sig, t);
        rc = ota_signer_sign(sig + 8, s->key, msg.data, msg.len);
    }
    ota_buf_free(&msg);
    if (rc == 0)
        rc = append_line(out, s, sig, sizeof(sig));
    return rc;
}
