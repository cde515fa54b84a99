/* C2SP tlog-proof@v1: an offline proof that entry `index` is in a log,
 * in text form (file extension .tlog-proof):
 *
 *     c2sp.org/tlog-proof@v1\n
 *     [extra <base64 opaque data>\n]
 *     index <decimal>\n
 *     <base64 hash>\n ...        (inclusion proof, leaf side first)
 *     \n
 *     <checkpoint signed note, verbatim>
 *
 * This module parses and formats; it checks no signature and no hash.
 * Verifying means: the note against the policy (tlog_policy.h), then the
 * inclusion proof against the checkpoint's root (merkle.h).
 *
 * Parse rules, each refused with its own detail:
 *  - more than OTA_TLOG_PROOF_MAX_LEN bytes              OTA_ERR_TOO_LARGE
 *  - first line not "c2sp.org/tlog-proof@v1"            OTA_ERR_FORMAT
 *  - an "extra" line that is not "extra " and non-empty
 *    canonical base64                                   OTA_ERR_FORMAT
 *  - extra data above OTA_TLOG_PROOF_MAX_EXTRA bytes     OTA_ERR_TOO_LARGE
 *  - no "index " line, or an index that is not decimal
 *    without leading zeros, or above 2^63 - 1           OTA_ERR_FORMAT
 *  - a proof line that is not canonical base64 of
 *    exactly 32 bytes, or no empty line after them      OTA_ERR_FORMAT
 *  - more than OTA_TLOG_PROOF_MAX_HASHES proof lines     OTA_ERR_TOO_LARGE
 *  - a checkpoint that is not a valid signed note
 *    (note.h) or whose text is not a checkpoint
 *    (checkpoint.h)                                     (their errors)
 *  - index not below the checkpoint's tree size         OTA_ERR_FORMAT
 * The extra data is not authenticated: never trust it by itself.
 */
#ifndef OTACHAIN_TLOG_PROOF_H
#define OTACHAIN_TLOG_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/checkpoint.h"
#include "otachain/err.h"
#include "otachain/note.h"

#define OTA_TLOG_PROOF_HEADER     "c2sp.org/tlog-proof@v1"
#define OTA_TLOG_PROOF_HASH_LEN   32
#define OTA_TLOG_PROOF_MAX_HASHES 63   /* a tree of at most 2^63 leaves */
#define OTA_TLOG_PROOF_MAX_EXTRA  4096 /* decoded bytes of extra data */
#define OTA_TLOG_PROOF_MAX_LEN    (OTA_NOTE_MAX_LEN + 16384)

struct ota_tlog_proof {
    bool has_extra;
    uint8_t *extra; /* owned; NULL when absent */
    size_t extra_len;
    uint64_t index;
    size_t nhashes;
    uint8_t hashes[OTA_TLOG_PROOF_MAX_HASHES][OTA_TLOG_PROOF_HASH_LEN];
    struct ota_note *note;            /* the checkpoint note (owned) */
    struct ota_checkpoint checkpoint; /* its parsed text */
};

/* Parses len bytes. On success *out is owned by the caller
 * (ota_tlog_proof_free); on failure it is NULL. */
OTA_WUR int ota_tlog_proof_parse(struct ota_tlog_proof **out, const void *data, size_t len,
                                 struct ota_detail *det);

/* Frees; accepts NULL. */
void ota_tlog_proof_free(struct ota_tlog_proof *pr);

/* Appends a proof to out: extra (omitted when extra is NULL; extra_len
 * 1..OTA_TLOG_PROOF_MAX_EXTRA otherwise), the index, nhashes hashes and
 * the checkpoint note note[0..note_len) verbatim. The result must parse
 * (rules above), else OTA_ERR_INVALID_ARG with the reason in det; on
 * failure out is unchanged. */
OTA_WUR int ota_tlog_proof_format(struct ota_buf *out, const uint8_t *extra, size_t extra_len,
                                  uint64_t index, const uint8_t (*hashes)[OTA_TLOG_PROOF_HASH_LEN],
                                  size_t nhashes, const void *note, size_t note_len,
                                  struct ota_detail *det);

#endif
