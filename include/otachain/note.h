/* C2SP signed-note v1: parsing, verifier keys, verification.
 *
 * A note is a text ending in a newline, a blank line, then one or more
 * signature lines "— <key name> <base64(key ID || signature)>\n" (em
 * dash U+2014, space). The text is what is signed; it may contain empty
 * lines, and the signatures start after the last empty line.
 *
 * Parse rules, each refused with its own error and a detail:
 *  - note longer than OTA_NOTE_MAX_LEN                  OTA_ERR_TOO_LARGE
 *  - more than OTA_NOTE_MAX_SIGS signature lines        OTA_ERR_TOO_LARGE
 *  - invalid UTF-8 (overlong, surrogate, > U+10FFFF,
 *    truncated), or a control character below U+0020
 *    other than newline                                 OTA_ERR_FORMAT
 *  - no blank line, or the note does not end in newline OTA_ERR_FORMAT
 *  - a signature line not starting with "— ", without
 *    the space after the name, with an invalid key name
 *    (empty, containing '+' or a Unicode White_Space
 *    character), with non-canonical base64 (see
 *    base64.h), or with fewer than 5 bytes              OTA_ERR_FORMAT
 *  - a key name longer than OTA_NOTE_MAX_NAME, or more
 *    than 4 + OTA_NOTE_MAX_SIG signature bytes          OTA_ERR_TOO_LARGE
 * Text lines have no cap of their own beyond the note's: the formats
 * carried in notes (checkpoint.h) cap theirs.
 *
 * Verification (ota_note_verify) follows the spec: signatures whose key
 * name and key ID are not both those of a given verifier are ignored; a
 * signature from a known key must verify, or the whole note is refused
 * (OTA_ERR_BAD_SIGNATURE); a note with no verified signature is refused
 * (OTA_ERR_UNVERIFIED). Identical repeated signature lines count once;
 * two different signatures by one known key are refused
 * (OTA_ERR_DUP_SIGNATURE), so every known key has one unambiguous
 * statement (one time, for a cosigner).
 *
 * Key types: 0x01 Ed25519 over the note text (logs), 0x04 cosignature/v1
 * (timestamped Ed25519, see cosig.h; witnesses). Other types parse in
 * signatures (and are ignored as unknown keys) but not in verifier keys.
 *
 * Signing lives in note_sign.h (not linked by the device agent).
 */
#ifndef OTACHAIN_NOTE_H
#define OTACHAIN_NOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/crypto.h"
#include "otachain/err.h"

/* Hard caps. The spec asks verifiers to accept at least 16 signatures and
 * notes its post-quantum signatures reach nearly 5 kB. */
#define OTA_NOTE_MAX_LEN  (1024u * 1024) /* bytes of a whole note */
#define OTA_NOTE_MAX_SIGS 100            /* signature lines */
#define OTA_NOTE_MAX_NAME 255            /* bytes of a key name */
#define OTA_NOTE_MAX_SIG  5120           /* signature bytes after the key ID */

/* Signature types of the signed-note spec that otachain verifies. */
#define OTA_NOTE_TYPE_ED25519  0x01
#define OTA_NOTE_TYPE_COSIG_V1 0x04

/* "— " as UTF-8: the prefix of every signature line. */
#define OTA_NOTE_SIG_PREFIX     "\xe2\x80\x94 "
#define OTA_NOTE_SIG_PREFIX_LEN 4

/* A verifier key string: name + '+' + 8 hex + '+' + base64(type || 32
 * bytes), plus NUL. */
#define OTA_NOTE_VKEY_SIZE (OTA_NOTE_MAX_NAME + 1 + 8 + 1 + 44 + 1)
/* Longest vkey string parsed (room for post-quantum keys, which are then
 * refused as unsupported rather than as malformed). */
#define OTA_NOTE_VKEY_MAX_LEN 4096

/* One signature line of a parsed note. Pointers are into memory owned by
 * the note (valid until ota_note_free). */
struct ota_note_sig {
    const char *name; /* NUL-terminated key name */
    size_t name_len;
    uint32_t key_id;    /* first 4 bytes, big-endian */
    const uint8_t *sig; /* the signature bytes after the key ID */
    size_t sig_len;     /* 1 .. OTA_NOTE_MAX_SIG */
};

struct ota_note {
    char *text; /* the signed text, ends in '\n', NUL-terminated (owned) */
    size_t text_len;
    size_t nsigs; /* 1 .. OTA_NOTE_MAX_SIGS, in file order */
    struct ota_note_sig sigs[OTA_NOTE_MAX_SIGS];
    uint8_t *arena; /* owns the names and signature bytes */
};

/* A verifier key (vkey): what a client is configured with. A plain value. */
struct ota_note_verifier {
    char name[OTA_NOTE_MAX_NAME + 1]; /* NUL-terminated */
    size_t name_len;
    uint32_t key_id;
    uint8_t type; /* OTA_NOTE_TYPE_ED25519 or OTA_NOTE_TYPE_COSIG_V1 */
    uint8_t pub[OTA_ED25519_PUB_LEN];
};

/* What verification found for one verifier. */
struct ota_note_check {
    bool verified;      /* a signature by this key verified */
    uint64_t timestamp; /* cosignature/v1: the signed time (<= 2^63 - 1); else 0 */
};

/* Checks the rules the whole note obeys, on a text alone: valid UTF-8, no
 * control character but newline, ends in newline, at most
 * OTA_NOTE_MAX_LEN bytes. Signers call it before signing so that they
 * never sign a text no verifier could parse. OTA_ERR_FORMAT or
 * OTA_ERR_TOO_LARGE. */
OTA_WUR int ota_note_text_check(const char *text, size_t len, struct ota_detail *det);

/* True when name[0..len) is a valid key name: 1..OTA_NOTE_MAX_NAME bytes
 * of valid UTF-8 without control characters, '+' or Unicode spaces. */
bool ota_note_name_valid(const char *name, size_t len);

/* Parses len bytes (no signature checked). On success *out owns copies
 * of everything (free with ota_note_free); on failure *out is NULL. */
OTA_WUR int ota_note_parse(struct ota_note **out, const void *data, size_t len,
                           struct ota_detail *det);

/* Wipes nothing (notes are public) and frees; accepts NULL. */
void ota_note_free(struct ota_note *note);

/* Appends the note in its wire form (text, blank line, signature lines
 * in order) to out. Parsing then formatting gives the input back
 * byte for byte (base64 is canonical). */
OTA_WUR int ota_note_format(struct ota_buf *out, const struct ota_note *note);

/* Key ID: the first 4 bytes (big-endian) of
 * SHA-256(name || "\n" || type || pub[0..pub_len)). */
OTA_WUR int ota_note_key_id(uint32_t *out, const char *name, size_t name_len, uint8_t type,
                            const uint8_t *pub, size_t pub_len);

/* Parses a verifier key "<name>+<hex8>+<base64(type || pubkey)>" of
 * len bytes (no NUL needed).
 * OTA_ERR_KEY_FORMAT: not three '+'-separated parts, a key name that is
 *   not valid, a key ID that is not exactly 8 lowercase hex digits, base64
 *   not canonical, a public key that is not 32 bytes, or more than
 *   OTA_NOTE_VKEY_MAX_LEN bytes in all;
 * OTA_ERR_UNSUPPORTED: a type other than 0x01 and 0x04;
 * OTA_ERR_KEYID_MISMATCH: the hex key ID is not the one the name, type
 *   and key give.
 * On failure *out is zeroed. */
OTA_WUR int ota_note_verifier_parse(struct ota_note_verifier *out, const char *vkey, size_t len,
                                    struct ota_detail *det);

/* Builds a verifier from its parts (computes the key ID).
 * OTA_ERR_KEY_FORMAT for an invalid name, OTA_ERR_UNSUPPORTED for another
 * type. On failure *out is zeroed. */
OTA_WUR int ota_note_verifier_make(struct ota_note_verifier *out, const char *name, size_t name_len,
                                   uint8_t type, const uint8_t pub[OTA_ED25519_PUB_LEN]);

/* Writes the vkey string (NUL-terminated) of v; returns its length. */
size_t ota_note_verifier_format(char out[OTA_NOTE_VKEY_SIZE], const struct ota_note_verifier *v);

/* Most verifier keys one verification takes. */
#define OTA_NOTE_MAX_VERIFIERS 256

/* Verifies note against nvs verifier keys (see the top of this file).
 * checks[i] tells what verifier vs[i] found; *nverified counts the
 * verifiers with a verified signature (>= 1 on success).
 * OTA_ERR_INVALID_ARG: two verifiers share name and key ID (ambiguous),
 *   a verifier of an unsupported type, or nvs > OTA_NOTE_MAX_VERIFIERS.
 * OTA_ERR_BAD_SIGNATURE: a signature by a known key does not verify
 *   (for type 0x04 also: not 72 bytes, or a time above 2^63 - 1).
 * OTA_ERR_DUP_SIGNATURE: a known key signed twice with different bytes.
 * OTA_ERR_UNVERIFIED: no signature by a known key.
 * det names the key. On failure every check is zeroed and *nverified 0. */
OTA_WUR int ota_note_verify(struct ota_note_check *checks, size_t *nverified,
                            const struct ota_note *note, const struct ota_note_verifier *vs,
                            size_t nvs, struct ota_detail *det);

#endif
