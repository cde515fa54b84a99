/* C2SP tlog-cosignature v1, Ed25519 variant (signed-note type 0x04):
 * the signed message and its verification.
 *
 * A witness signs the message
 *     "cosignature/v1\n" "time <T>\n" <checkpoint body>
 * where <T> is the POSIX time of signing in decimal without leading
 * zeros and the body is the whole note text of the checkpoint (extension
 * lines included). The note signature is the 72 bytes
 *     8-byte big-endian T || 64-byte Ed25519 signature
 * and its key ID uses type byte 0x04 (note.h). T must not exceed 2^63 - 1.
 *
 * Signing is in note_sign.h (ota_note_cosign). ota_note_verify calls
 * ota_cosig_verify for type 0x04 verifier keys.
 */
#ifndef OTACHAIN_COSIG_H
#define OTACHAIN_COSIG_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/crypto.h"
#include "otachain/err.h"

#define OTA_COSIG_LEN      (8 + OTA_ED25519_SIG_LEN) /* timestamped_signature */
#define OTA_COSIG_MAX_TIME UINT64_C(0x7fffffffffffffff)
#define OTA_COSIG_HEADER   "cosignature/v1\n"

/* Appends the signed message for body[0..body_len) at time t to out.
 * OTA_ERR_INVALID_ARG if t > OTA_COSIG_MAX_TIME; buffer errors as buf.h. */
OTA_WUR int ota_cosig_message(struct ota_buf *out, const char *body, size_t body_len, uint64_t t);

/* Verifies a cosignature (sig_len must be OTA_COSIG_LEN) by pub over
 * body[0..body_len) and on success stores the signed time in *t.
 * OTA_ERR_BAD_SIGNATURE for a wrong length, a time above 2^63 - 1 or a
 * signature that does not verify; OTA_ERR_NOMEM, OTA_ERR_CRYPTO.
 * On failure *t is 0. */
OTA_WUR int ota_cosig_verify(uint64_t *t, const char *body, size_t body_len,
                             const uint8_t pub[OTA_ED25519_PUB_LEN], const uint8_t *sig,
                             size_t sig_len);

/* Encodes / decodes the 8-byte big-endian time. */
void ota_cosig_put_time(uint8_t out[8], uint64_t t);
uint64_t ota_cosig_get_time(const uint8_t in[8]);

#endif
