/* Standard base64 (RFC 4648 §4, alphabet A-Z a-z 0-9 + /, '=' padding).
 *
 * The decoder accepts only the canonical encoding, so that every byte
 * string has exactly one text form and a signed text cannot be altered
 * without changing its bytes: padding is required, no whitespace or line
 * breaks, no characters outside the alphabet, and the unused low bits of
 * the last symbol must be zero ("QQ==" decodes, "QR==" is refused).
 */
#ifndef OTACHAIN_BASE64_H
#define OTACHAIN_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

/* Characters (without NUL) of the encoding of n bytes. */
#define OTA_BASE64_LEN(n) ((((n) + 2) / 3) * 4)
/* Largest byte count that decodes from text_len characters. */
#define OTA_BASE64_DECODED_MAX(text_len) (((text_len) / 4) * 3)

/* Encodes n bytes; out must hold OTA_BASE64_LEN(n) + 1 bytes and is
 * NUL-terminated. Returns the number of characters written (without NUL). */
size_t ota_base64_encode(char *out, const uint8_t *in, size_t n);

/* Decodes text_len characters of canonical base64 into out, which holds
 * out_max bytes; *out_len is set to the number of bytes written. The
 * empty text decodes to zero bytes.
 * OTA_ERR_FORMAT: not canonical base64 (see the top of this file).
 * OTA_ERR_TOO_LARGE: the decoded bytes would exceed out_max.
 * On failure *out_len is 0 and the out_max bytes of out are zeroed. */
OTA_WUR int ota_base64_decode(uint8_t *out, size_t out_max, size_t *out_len, const char *text,
                              size_t text_len);

#endif
