/* C2SP tlog-checkpoint v1: the note text of a log's signed tree head.
 *
 *     <origin>\n
 *     <tree size, decimal>\n
 *     <root hash, base64 of 32 bytes>\n
 *     [<extension line>\n]...
 *
 * Parse rules, each refused with its own detail:
 *  - more than OTA_CHECKPOINT_MAX_LEN bytes            OTA_ERR_TOO_LARGE
 *  - not valid note text: invalid UTF-8, a control
 *    character other than newline, or no final newline OTA_ERR_FORMAT
 *  - fewer than three lines, or an empty line          OTA_ERR_FORMAT
 *  - an origin longer than OTA_CHECKPOINT_MAX_ORIGIN   OTA_ERR_TOO_LARGE
 *  - a size that is not decimal digits, has a leading
 *    zero (other than "0"), or exceeds 2^63 - 1        OTA_ERR_FORMAT
 *  - a root hash that is not canonical base64 of
 *    exactly 32 bytes                                  OTA_ERR_FORMAT
 *  - more than OTA_CHECKPOINT_MAX_EXT bytes of
 *    extension lines                                   OTA_ERR_TOO_LARGE
 * The origin is not required to look like a URL (the spec forbids
 * clients to assume it); whether it is the expected log is the caller's
 * check (tlog_policy.h). Extension lines are kept verbatim and opaque.
 *
 * The body is a plain value (about 5 KiB): no allocation.
 */
#ifndef OTACHAIN_CHECKPOINT_H
#define OTACHAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"

#define OTA_CHECKPOINT_HASH_LEN   32
#define OTA_CHECKPOINT_MAX_ORIGIN 255  /* bytes of the origin line */
#define OTA_CHECKPOINT_MAX_EXT    4096 /* bytes of all extension lines */
#define OTA_CHECKPOINT_MAX_SIZE   UINT64_C(0x7fffffffffffffff)
/* Longest body: origin, 19 digits, 44 base64 characters, extensions. */
#define OTA_CHECKPOINT_MAX_LEN                                                                     \
    (OTA_CHECKPOINT_MAX_ORIGIN + 1 + 19 + 1 + 44 + 1 + OTA_CHECKPOINT_MAX_EXT)

struct ota_checkpoint {
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1]; /* NUL-terminated, non-empty */
    size_t origin_len;
    uint64_t size; /* <= OTA_CHECKPOINT_MAX_SIZE */
    uint8_t root[OTA_CHECKPOINT_HASH_LEN];
    char ext[OTA_CHECKPOINT_MAX_EXT + 1]; /* extension lines, each ending in '\n'; NUL-terminated */
    size_t ext_len;                       /* 0 when there are none */
};

/* Parses a checkpoint body (a note's text, final newline included).
 * On failure *out is zeroed. */
OTA_WUR int ota_checkpoint_parse(struct ota_checkpoint *out, const char *text, size_t len,
                                 struct ota_detail *det);

/* Appends the body of cp to out. Refuses (OTA_ERR_INVALID_ARG) a value
 * that would not parse back: an empty or over-long origin or one
 * containing a newline or control character, a size above 2^63 - 1, or
 * extension lines that are not non-empty newline-terminated lines. On
 * failure out is unchanged. */
OTA_WUR int ota_checkpoint_format(struct ota_buf *out, const struct ota_checkpoint *cp);

/* Parses a decimal number without sign or leading zeros ("0" is fine)
 * of len bytes, at most max. Shared by the line formats of the ledger
 * (checkpoints, tlog-proof, tlog-witness). OTA_ERR_FORMAT otherwise. */
OTA_WUR int ota_checkpoint_parse_u64(uint64_t *out, const char *s, size_t len, uint64_t max);

#endif
