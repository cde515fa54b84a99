/* Signing signed notes and checkpoint cosignatures (C2SP signed-note v1,
 * tlog-cosignature v1). Authoring side: logs and witnesses link it, the
 * device agent does not.
 *
 * A note signer is a key name, a signature type (0x01 Ed25519 for a log,
 * 0x04 cosignature/v1 for a witness) and an Ed25519 secret key. Its text
 * form is the signer key of Go's sumdb/note package,
 *     PRIVATE+KEY+<name>+<hex8 key ID>+<base64(type || 32-byte seed)>
 * which otachain also accepts with type 0x04 (the key ID is then the
 * cosignature key ID of note.h). The text form is a secret: callers keep
 * it in 0600 files and wipe buffers that held it (ota_buf_free does).
 */
#ifndef OTACHAIN_NOTE_SIGN_H
#define OTACHAIN_NOTE_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/note.h"
#include "otachain/sign.h"

/* Longest signer key string parsed. */
#define OTA_NOTE_SKEY_MAX_LEN 512

struct ota_note_signer; /* opaque: name, type, key ID, secret key */

/* Parses a signer key string of len bytes (no NUL needed).
 * OTA_ERR_KEY_FORMAT: not PRIVATE+KEY+<name>+<hex8>+<base64>, an invalid
 *   key name, a key ID that is not 8 lowercase hex digits, base64 not
 *   canonical, a seed that is not 32 bytes, or len > OTA_NOTE_SKEY_MAX_LEN;
 * OTA_ERR_UNSUPPORTED: a type other than 0x01 and 0x04;
 * OTA_ERR_KEYID_MISMATCH: the key ID is not the one of the name, type and
 *   the public key derived from the seed.
 * Decoded secret bytes are wiped; on failure *out is NULL. */
OTA_WUR int ota_note_signer_parse(struct ota_note_signer **out, const char *skey, size_t len,
                                  struct ota_detail *det);

/* Builds a signer from a name, a type and a seed, a copy of an existing
 * key, or a fresh key. OTA_ERR_KEY_FORMAT for an invalid key name,
 * OTA_ERR_UNSUPPORTED for another type. */
OTA_WUR int ota_note_signer_from_seed(struct ota_note_signer **out, const char *name,
                                      size_t name_len, uint8_t type,
                                      const uint8_t seed[OTA_ED25519_SEED_LEN]);
OTA_WUR int ota_note_signer_from_signer(struct ota_note_signer **out, const char *name,
                                        size_t name_len, uint8_t type,
                                        const struct ota_signer *key);
OTA_WUR int ota_note_signer_generate(struct ota_note_signer **out, const char *name,
                                     size_t name_len, uint8_t type);

/* Appends the signer key string (a secret; no newline) to out. */
OTA_WUR int ota_note_signer_format(struct ota_buf *out, const struct ota_note_signer *s);

/* The matching verifier key (public). */
void ota_note_signer_verifier(struct ota_note_verifier *out, const struct ota_note_signer *s);

/* Wipes and frees; accepts NULL. */
void ota_note_signer_free(struct ota_note_signer *s);

/* Type 0x01 signer: appends the signature line
 * "— <name> <base64(key ID || Ed25519(text))>\n" for the note text
 * text[0..text_len) to out. The text must pass ota_note_text_check.
 * OTA_ERR_INVALID_ARG for a type 0x04 signer. On failure out is
 * unchanged. */
OTA_WUR int ota_note_sign(struct ota_buf *out, const char *text, size_t text_len,
                          const struct ota_note_signer *s, struct ota_detail *det);

/* Type 0x04 signer: appends the cosignature line
 * "— <name> <base64(key ID || BE64(t) || Ed25519(message))>\n" for the
 * checkpoint body[0..body_len) (message as in cosig.h) to out. The body
 * must be a valid checkpoint (checkpoint.h) and t <= 2^63 - 1.
 * OTA_ERR_INVALID_ARG for a type 0x01 signer or t out of range;
 * OTA_ERR_FORMAT or OTA_ERR_TOO_LARGE (as ota_checkpoint_parse) for a
 * body that is not a checkpoint. On failure out is unchanged. */
OTA_WUR int ota_note_cosign(struct ota_buf *out, const char *body, size_t body_len, uint64_t t,
                            const struct ota_note_signer *s, struct ota_detail *det);

#endif
