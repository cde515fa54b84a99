/* Strict JSON parsing over jansson and TUF/OLPC canonical JSON emission.
 *
 * Canonical form (what TUF signs): object keys sorted bytewise, no
 * whitespace, strings escape only '\\' and '"' (every other byte, control
 * characters included, is written raw), integers only, true/false/null.
 * jansson's own dump is not canonical (it escapes control characters), so
 * the emitter here walks the tree itself.
 */
#ifndef OTACHAIN_CJSON_H
#define OTACHAIN_CJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"

/* Default caps for metadata documents. */
#define OTA_JSON_MAX_DEPTH     32
#define OTA_JSON_MAX_CANONICAL (64u * 1024 * 1024)

struct ota_json_limits {
    size_t max_bytes;   /* refuse input longer than this (OTA_ERR_TOO_LARGE) */
    unsigned max_depth; /* nesting of arrays/objects; the top level is depth 1 */
    int allow_reals;    /* 0: any floating-point number is OTA_ERR_JSON_REAL */
    int ascii_keys;     /* 1: every object key must be printable ASCII 0x20..0x7e */
};

/* Parses len bytes (need not be NUL-terminated) into a new jansson tree
 * (caller json_decref()s it). Duplicate keys are refused
 * (OTA_ERR_JSON_DUP_KEY), as are NUL characters in strings, trailing data,
 * and anything beyond the limits. On failure *out is NULL and det (if not
 * NULL) says what and where (line/column or JSON path). */
OTA_WUR int ota_json_parse(json_t **out, const void *data, size_t len,
                           const struct ota_json_limits *lim, struct ota_detail *det);

/* Appends the canonical encoding of v to out. OTA_ERR_JSON_REAL if the tree
 * holds a real; OTA_ERR_TOO_LARGE if out's cap is reached. On failure out
 * may hold a partial encoding: discard it. */
OTA_WUR int ota_json_canonical(struct ota_buf *out, const json_t *v);

/* Convenience: canonical encoding into a newly allocated buffer (free()),
 * capped at OTA_JSON_MAX_CANONICAL. */
OTA_WUR int ota_json_canonical_alloc(uint8_t **out, size_t *out_len, const json_t *v);

/* A new JSON string holding the standard base64 (with padding) of len
 * bytes; NULL when out of memory. */
json_t *ota_json_base64(const uint8_t *data, size_t len);

#endif
