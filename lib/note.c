/* C2SP signed-note v1 (see otachain/note.h).
 *
 * Parsing checks the whole note first (size, UTF-8, control characters),
 * then splits at the last blank line and reads the signature lines. The
 * note owns a copy of the text and one arena for the names and signature
 * bytes; the arena is sized by the signature block, which always
 * suffices: each line spends at most name + NUL + 3/4 of its base64 there
 * and occupies prefix + name + space + base64 + newline bytes.
 */
#include "otachain/note.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cosig.h"

/* Length of the UTF-8 sequence at s (at most n bytes available) and its
 * code point, or 0 if it is not a valid, shortest-form, non-surrogate
 * encoding of a code point up to U+10FFFF. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    size_t len;
    uint32_t c;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
        c = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        c = b & 0x0f;
        if (b == 0xe0)
            lo = 0xa0; /* overlong */
        else if (b == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        c = b & 0x07;
        if (b == 0xf0)
            lo = 0x90; /* overlong */
        else if (b == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    c = (c << 6) | (s[1] & 0x3f);
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    *cp = c;
    return len;
}

/* Unicode White_Space property (Unicode 15). */
static bool is_unicode_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

bool ota_note_name_valid(const char *name, size_t len)
{
    const uint8_t *s = (const uint8_t *)name;
    size_t i = 0;

    if (name == NULL || len == 0 || len > OTA_NOTE_MAX_NAME)
        return false;
    while (i < len) {
        uint32_t c;
        size_t k = utf8_next(s + i, len - i, &c);

        if (k == 0 || c < 0x20 || c == '+' || is_unicode_space(c))
            return false;
        i += k;
    }
    return true;
}

/* UTF-8 and control characters over the whole input; the detail gives the
 * line (1-based) of the first offence. */
static int check_chars(const uint8_t *s, size_t len, struct ota_detail *det)
{
    size_t i = 0;
    size_t line = 1;

    while (i < len) {
        uint32_t c;
        size_t k = utf8_next(s + i, len - i, &c);

        if (k == 0) {
            ota_detail_set(det, "note line %zu: invalid UTF-8", line);
            return OTA_ERR_FORMAT;
        }
        if (c == '\n') {
            line++;
        } else if (c < 0x20) {
            ota_detail_set(det, "note line %zu: control character 0x%02" PRIx32, line, c);
            return OTA_ERR_FORMAT;
        }
        i += k;
    }
    return 0;
}

int ota_note_text_check(const char *text, size_t len, struct ota_detail *det)
{
    if (text == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_NOTE_MAX_LEN) {
        ota_detail_set(det, "note text of %zu bytes exceeds the cap of %u", len, OTA_NOTE_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    if (len == 0 || text[len - 1] != '\n') {
        ota_detail_set(det, "note text does not end in a newline");
        return OTA_ERR_FORMAT;
    }
    return check_chars((const uint8_t *)text, len, det);
}

void ota_note_free(struct ota_note *note)
{
    if (note == NULL)
        return;
    free(note->text);
    free(note->arena);
    free(note);
}

/* Parses one signature line s[0..len) (without its newline) into sig,
 * spending arena space from *arena. `no` is the line's number in the
 * note, for the detail. */
static int parse_sig_line(struct ota_note_sig *sig, uint8_t **arena, const char *s, size_t len,
                          size_t no, struct ota_detail *det)
{
    const char *name;
    const char *sp;
    const char *b64;
    size_t name_len;
    size_t b64_len;
    size_t raw_len = 0;
    uint8_t *raw;
    int rc;

    if (len < OTA_NOTE_SIG_PREFIX_LEN ||
        memcmp(s, OTA_NOTE_SIG_PREFIX, OTA_NOTE_SIG_PREFIX_LEN) != 0) {
        ota_detail_set(det,
                       "note line %zu: signature line does not start with an em dash "
                       "and a space",
                       no);
        return OTA_ERR_FORMAT;
    }
    name = s + OTA_NOTE_SIG_PREFIX_LEN;
    sp = memchr(name, ' ', len - OTA_NOTE_SIG_PREFIX_LEN);
    if (sp == NULL) {
        ota_detail_set(det, "note line %zu: no space between key name and signature", no);
        return OTA_ERR_FORMAT;
    }
    name_len = (size_t)(sp - name);
    if (name_len > OTA_NOTE_MAX_NAME) {
        ota_detail_set(det, "note line %zu: key name of %zu bytes exceeds the cap of %d", no,
                       name_len, OTA_NOTE_MAX_NAME);
        return OTA_ERR_TOO_LARGE;
    }
    if (!ota_note_name_valid(name, name_len)) {
        ota_detail_set(det, "note line %zu: invalid key name (empty, or with '+' or a space)", no);
        return OTA_ERR_FORMAT;
    }
    b64 = sp + 1;
    b64_len = len - (size_t)(b64 - s);
    if (b64_len > OTA_BASE64_LEN(4 + OTA_NOTE_MAX_SIG)) {
        ota_detail_set(det, "note line %zu: signature exceeds the cap of %d bytes", no,
                       4 + OTA_NOTE_MAX_SIG);
        return OTA_ERR_TOO_LARGE;
    }
    memcpy(*arena, name, name_len);
    (*arena)[name_len] = '\0';
    sig->name = (const char *)*arena;
    sig->name_len = name_len;
    *arena += name_len + 1;
    raw = *arena;
    /* out_max from the text length: within the arena (see the top). */
    rc = ota_base64_decode(raw, OTA_BASE64_DECODED_MAX(b64_len), &raw_len, b64, b64_len);
    if (rc != 0 || raw_len < 5) {
        ota_detail_set(det,
                       "note line %zu: signature is not canonical base64 of a key ID "
                       "and at least one byte",
                       no);
        return OTA_ERR_FORMAT;
    }
    sig->key_id =
        ((uint32_t)raw[0] << 24) | ((uint32_t)raw[1] << 16) | ((uint32_t)raw[2] << 8) | raw[3];
    sig->sig = raw + 4;
    sig->sig_len = raw_len - 4;
    *arena += raw_len;
    return 0;
}

int ota_note_parse(struct ota_note **out, const void *data, size_t len, struct ota_detail *det)
{
    const char *s = data;
    struct ota_note *note = NULL;
    size_t split;
    size_t text_lines = 0;
    size_t nlines = 0;
    size_t pos;
    size_t i;
    uint8_t *arena;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_NOTE_MAX_LEN) {
        ota_detail_set(det, "note of %zu bytes exceeds the cap of %u", len, OTA_NOTE_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    rc = check_chars((const uint8_t *)s, len, det);
    if (rc != 0)
        return rc;
    if (len == 0 || s[len - 1] != '\n') {
        ota_detail_set(det, "note does not end in a newline");
        return OTA_ERR_FORMAT;
    }
    /* The last "\n\n" separates text and signatures. */
    for (split = len - 1; split > 0; split--)
        if (s[split - 1] == '\n' && s[split] == '\n')
            break;
    if (split == 0) {
        ota_detail_set(det, "note has no blank line before its signatures");
        return OTA_ERR_FORMAT;
    }
    split--; /* s[split] is the text's final newline */
    if (split + 2 >= len) {
        ota_detail_set(det, "note has no signature lines");
        return OTA_ERR_FORMAT;
    }
    for (i = 0; i <= split; i++)
        text_lines += s[i] == '\n';
    for (i = split + 2; i < len; i++)
        nlines += s[i] == '\n';
    if (nlines > OTA_NOTE_MAX_SIGS) {
        ota_detail_set(det, "note has %zu signature lines, more than the cap of %d", nlines,
                       OTA_NOTE_MAX_SIGS);
        return OTA_ERR_TOO_LARGE;
    }

    note = calloc(1, sizeof(*note));
    if (note == NULL)
        return OTA_ERR_NOMEM;
    note->text_len = split + 1;
    note->text = malloc(note->text_len + 1);
    note->arena = malloc(len - (split + 2));
    if (note->text == NULL || note->arena == NULL) {
        ota_note_free(note);
        return OTA_ERR_NOMEM;
    }
    memcpy(note->text, s, note->text_len);
    note->text[note->text_len] = '\0';

    arena = note->arena;
    pos = split + 2;
    for (i = 0; i < nlines; i++) {
        const char *nl = memchr(s + pos, '\n', len - pos); /* found: s ends in '\n' */
        size_t llen = (size_t)(nl - (s + pos));

        rc = parse_sig_line(&note->sigs[i], &arena, s + pos, llen, text_lines + 2 + i, det);
        if (rc != 0) {
            ota_note_free(note);
            return rc;
        }
        pos += llen + 1;
    }
    note->nsigs = nlines;
    *out = note;
    return 0;
}

int ota_note_format(struct ota_buf *out, const struct ota_note *note)
{
    int rc;

    if (out == NULL || note == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_buf_append(out, note->text, note->text_len);
    if (rc == 0)
        rc = ota_buf_append(out, "\n", 1);
    for (size_t i = 0; rc == 0 && i < note->nsigs; i++) {
        const struct ota_note_sig *sg = &note->sigs[i];
        size_t raw_len = 4 + sg->sig_len;
        uint8_t *raw = malloc(raw_len);
        char *b64 = malloc(OTA_BASE64_LEN(raw_len) + 1);

        if (raw == NULL || b64 == NULL) {
            free(raw);
            free(b64);
            return OTA_ERR_NOMEM;
        }
        raw[0] = (uint8_t)(sg->key_id >> 24);
        raw[1] = (uint8_t)(sg->key_id >> 16);
        raw[2] = (uint8_t)(sg->key_id >> 8);
        raw[3] = (uint8_t)sg->key_id;
        memcpy(raw + 4, sg->sig, sg->sig_len);
        ota_base64_encode(b64, raw, raw_len);
        rc = ota_buf_append(out, OTA_NOTE_SIG_PREFIX, OTA_NOTE_SIG_PREFIX_LEN);
        if (rc == 0)
            rc = ota_buf_append(out, sg->name, sg->name_len);
        if (rc == 0)
            rc = ota_buf_printf(out, " %s\n", b64);
        free(raw);
        free(b64);
    }
    return rc;
}

int ota_note_key_id(uint32_t *out, const char *name, size_t name_len, uint8_t type,
                    const uint8_t *pub, size_t pub_len)
{
    struct ota_sha256_ctx *ctx = NULL;
    uint8_t h[OTA_SHA256_LEN];
    uint8_t sep[2] = {'\n', type};
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = 0;
    if ((name == NULL && name_len > 0) || (pub == NULL && pub_len > 0))
        return OTA_ERR_INVALID_ARG;
    rc = ota_sha256_init(&ctx);
    if (rc == 0)
        rc = ota_sha256_update(ctx, name, name_len);
    if (rc == 0)
        rc = ota_sha256_update(ctx, sep, sizeof(sep));
    if (rc == 0)
        rc = ota_sha256_update(ctx, pub, pub_len);
    if (rc == 0)
        rc = ota_sha256_final(h, ctx);
    ota_sha256_ctx_free(ctx);
    if (rc == 0)
        *out = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
    return rc;
}

static bool type_supported(uint8_t type)
{
    return type == OTA_NOTE_TYPE_ED25519 || type == OTA_NOTE_TYPE_COSIG_V1;
}

int ota_note_verifier_make(struct ota_note_verifier *out, const char *name, size_t name_len,
                           uint8_t type, const uint8_t pub[OTA_ED25519_PUB_LEN])
{
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (pub == NULL)
        return OTA_ERR_INVALID_ARG;
    if (!ota_note_name_valid(name, name_len))
        return OTA_ERR_KEY_FORMAT;
    if (!type_supported(type))
        return OTA_ERR_UNSUPPORTED;
    rc = ota_note_key_id(&out->key_id, name, name_len, type, pub, OTA_ED25519_PUB_LEN);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    out->name_len = name_len;
    out->type = type;
    memcpy(out->pub, pub, OTA_ED25519_PUB_LEN);
    return 0;
}

/* Parses exactly 8 lowercase hex digits. */
static bool parse_hex8(uint32_t *out, const char *s, size_t len)
{
    uint32_t v = 0;

    if (len != 8)
        return false;
    for (size_t i = 0; i < 8; i++) {
        char c = s[i];
        uint32_t d;

        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

int ota_note_verifier_parse(struct ota_note_verifier *out, const char *vkey, size_t len,
                            struct ota_detail *det)
{
    /* Room for a post-quantum key, so that it is refused by type. */
    uint8_t raw[OTA_BASE64_DECODED_MAX(OTA_NOTE_VKEY_MAX_LEN)];
    const char *p1;
    const char *p2;
    size_t name_len;
    size_t raw_len = 0;
    uint32_t id;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (vkey == NULL)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_NOTE_VKEY_MAX_LEN) {
        ota_detail_set(det, "verifier key of %zu bytes exceeds the cap of %d", len,
                       OTA_NOTE_VKEY_MAX_LEN);
        return OTA_ERR_KEY_FORMAT;
    }
    p1 = memchr(vkey, '+', len);
    p2 = p1 != NULL ? memchr(p1 + 1, '+', len - (size_t)(p1 + 1 - vkey)) : NULL;
    if (p2 == NULL) {
        ota_detail_set(det, "verifier key is not <name>+<key ID>+<key>");
        return OTA_ERR_KEY_FORMAT;
    }
    name_len = (size_t)(p1 - vkey);
    if (!ota_note_name_valid(vkey, name_len)) {
        ota_detail_set(det, "verifier key: invalid key name");
        return OTA_ERR_KEY_FORMAT;
    }
    if (!parse_hex8(&id, p1 + 1, (size_t)(p2 - (p1 + 1)))) {
        ota_detail_set(det, "verifier key %.*s: key ID is not 8 lowercase hex digits",
                       (int)name_len, vkey);
        return OTA_ERR_KEY_FORMAT;
    }
    rc = ota_base64_decode(raw, sizeof(raw), &raw_len, p2 + 1, len - (size_t)(p2 + 1 - vkey));
    if (rc != 0 || raw_len == 0) {
        ota_detail_set(det, "verifier key %.*s: key is not canonical base64", (int)name_len, vkey);
        return OTA_ERR_KEY_FORMAT;
    }
    if (!type_supported(raw[0])) {
        ota_detail_set(det,
                       "verifier key %.*s: signature type 0x%02x is not supported "
                       "(0x01 Ed25519, 0x04 cosignature/v1)",
                       (int)name_len, vkey, raw[0]);
        return OTA_ERR_UNSUPPORTED;
    }
    if (raw_len != 1 + OTA_ED25519_PUB_LEN) {
        ota_detail_set(det, "verifier key %.*s: Ed25519 key of %zu bytes, not 32", (int)name_len,
                       vkey, raw_len - 1);
        return OTA_ERR_KEY_FORMAT;
    }
    rc = ota_note_verifier_make(out, vkey, name_len, raw[0], raw + 1);
    if (rc != 0)
        return rc;
    if (out->key_id != id) {
        ota_detail_set(det,
                       "verifier key %.*s: key ID %08" PRIx32 " is not %08" PRIx32
                       ", the one of its name and key",
                       (int)name_len, vkey, id, out->key_id);
        memset(out, 0, sizeof(*out));
        return OTA_ERR_KEYID_MISMATCH;
    }
    return 0;
}

size_t ota_note_verifier_format(char out[OTA_NOTE_VKEY_SIZE], const struct ota_note_verifier *v)
{
    uint8_t raw[1 + OTA_ED25519_PUB_LEN];
    size_t n = v->name_len;
    int k;

    memcpy(out, v->name, n);
    k = snprintf(out + n, OTA_NOTE_VKEY_SIZE - n, "+%08" PRIx32 "+", v->key_id);
    n += (size_t)k; /* 10 characters: always fits */
    raw[0] = v->type;
    memcpy(raw + 1, v->pub, OTA_ED25519_PUB_LEN);
    return n + ota_base64_encode(out + n, raw, sizeof(raw));
}

static bool same_key(const char *name, size_t name_len, uint32_t id,
                     const struct ota_note_verifier *v)
{
    return v->name_len == name_len && v->key_id == id && memcmp(v->name, name, name_len) == 0;
}

static bool same_sig(const struct ota_note_sig *a, const struct ota_note_sig *b)
{
    return a->sig_len == b->sig_len && memcmp(a->sig, b->sig, a->sig_len) == 0;
}

/* Checks one signature by a known verifier; fills check on success. */
static int verify_one(struct ota_note_check *check, const struct ota_note *note,
                      const struct ota_note_sig *sg, const struct ota_note_verifier *v)
{
    uint64_t t = 0;
    int rc;

    if (v->type == OTA_NOTE_TYPE_ED25519) {
        if (sg->sig_len != OTA_ED25519_SIG_LEN)
            return OTA_ERR_BAD_SIGNATURE;
        rc = ota_ed25519_verify(v->pub, note->text, note->text_len, sg->sig);
    } else {
        rc = ota_cosig_verify(&t, note->text, note->text_len, v->pub, sg->sig, sg->sig_len);
    }
    if (rc == 0) {
        check->verified = true;
        check->timestamp = t;
    }
    return rc;
}

int ota_note_verify(struct ota_note_check *checks, size_t *nverified, const struct ota_note *note,
                    const struct ota_note_verifier *vs, size_t nvs, struct ota_detail *det)
{
    size_t count = 0;
    size_t i;
    size_t j;
    int rc = 0;

    if (nverified != NULL)
        *nverified = 0;
    if (checks != NULL && nvs > 0 && nvs <= OTA_NOTE_MAX_VERIFIERS)
        memset(checks, 0, nvs * sizeof(*checks));
    if ((checks == NULL && nvs > 0) || nverified == NULL || note == NULL ||
        (vs == NULL && nvs > 0) || nvs > OTA_NOTE_MAX_VERIFIERS)
        return OTA_ERR_INVALID_ARG;
    for (i = 0; i < nvs; i++) {
        if (!type_supported(vs[i].type) || vs[i].name_len == 0 ||
            vs[i].name_len > OTA_NOTE_MAX_NAME) {
            ota_detail_set(det, "verifier %zu is not a valid key", i);
            return OTA_ERR_INVALID_ARG;
        }
        for (j = 0; j < i; j++) {
            if (same_key(vs[i].name, vs[i].name_len, vs[i].key_id, &vs[j])) {
                ota_detail_set(det, "ambiguous verifiers: two keys named %s with key ID %08" PRIx32,
                               vs[i].name, vs[i].key_id);
                return OTA_ERR_INVALID_ARG;
            }
        }
    }

    for (i = 0; i < note->nsigs; i++) {
        const struct ota_note_sig *sg = &note->sigs[i];

        for (j = 0; j < nvs; j++)
            if (same_key(sg->name, sg->name_len, sg->key_id, &vs[j]))
                break;
        if (j == nvs)
            continue; /* unknown key: ignored */
        if (checks[j].verified) {
            /* Compare with the first signature by this key. */
            size_t k;

            for (k = 0; k < i; k++)
                if (same_key(note->sigs[k].name, note->sigs[k].name_len, note->sigs[k].key_id,
                             &vs[j]))
                    break;
            if (same_sig(sg, &note->sigs[k]))
                continue;
            ota_detail_set(det,
                           "key %s+%08" PRIx32 " signed the note twice with different "
                           "signatures",
                           vs[j].name, vs[j].key_id);
            rc = OTA_ERR_DUP_SIGNATURE;
            goto fail;
        }
        rc = verify_one(&checks[j], note, sg, &vs[j]);
        if (rc != 0) {
            if (rc == OTA_ERR_BAD_SIGNATURE)
                ota_detail_set(det, "signature by trusted key %s+%08" PRIx32 " does not verify",
                               vs[j].name, vs[j].key_id);
            goto fail;
        }
        count++;
    }
    if (count == 0) {
        ota_detail_set(det, "no signature by any of the %zu trusted key(s)", nvs);
        rc = OTA_ERR_UNVERIFIED;
        goto fail;
    }
    *nverified = count;
    return 0;
fail:
    if (nvs > 0)
        memset(checks, 0, nvs * sizeof(*checks));
    return rc;
}
