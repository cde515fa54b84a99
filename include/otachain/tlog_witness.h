/* C2SP tlog-witness v1: the add-checkpoint request body and the 409
 * response body, shared by the witness (otachain-witness) and the log
 * side that asks for cosignatures (publish, refresh, ledger proof --from).
 *
 * Request body:
 *     old <decimal size>\n
 *     <base64 hash>\n ...        (0..63 consistency proof lines)
 *     \n
 *     <checkpoint signed note>
 *
 * Parse rules, each refused with its own detail:
 *  - more than OTA_TLOG_WITNESS_MAX_BODY bytes           OTA_ERR_TOO_LARGE
 *  - first line not "old " + a decimal without leading
 *    zeros (unless 0) at most 2^63 - 1, ending in '\n'    OTA_ERR_FORMAT
 *  - a proof line that is not canonical base64 (base64.h)
 *    of exactly 32 bytes followed by '\n'                 OTA_ERR_FORMAT
 *  - more than OTA_TLOG_WITNESS_MAX_PROOF proof lines     OTA_ERR_TOO_LARGE
 *  - no empty line after the proof lines, or nothing
 *    after it                                             OTA_ERR_FORMAT
 * The note after the empty line is not parsed here: it is handed back as
 * a byte range for ota_note_parse, so that a witness can tell "malformed"
 * (400) from "unknown origin" (404) and "not signed" (403) in the order
 * the spec gives. Whether the proof is right for the sizes is a question
 * for merkle.h: a proof with the wrong number of hashes verifies as
 * OTA_ERR_PROOF_MALFORMED there.
 *
 * Nothing is allocated; the parsed body points into the caller's input.
 */
#ifndef OTACHAIN_TLOG_WITNESS_H
#define OTACHAIN_TLOG_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/merkle.h"

/* Largest request body: a checkpoint note of up to 1 MiB less the old
 * size and proof lines (a real one is well under 10 KiB). */
#define OTA_TLOG_WITNESS_MAX_BODY  (1024u * 1024)
#define OTA_TLOG_WITNESS_MAX_PROOF 63 /* the spec's limit on proof lines */
/* Longest 409 body: 19 digits and a newline. */
#define OTA_TLOG_WITNESS_SIZE_MAX_LEN 20
/* The media type of a 409 response body. */
#define OTA_TLOG_WITNESS_SIZE_TYPE "text/x.tlog.size"

struct ota_tlog_witness_body {
    uint64_t old_size;
    size_t nproof;
    uint8_t proof[OTA_TLOG_WITNESS_MAX_PROOF][OTA_MERKLE_HASH_LEN];
    const char *note; /* the checkpoint note: points into the parsed input */
    size_t note_len;  /* >= 1 */
};

/* Parses len bytes of a request body. On failure *out is zeroed (note
 * NULL) and det says which line is wrong. */
OTA_WUR int ota_tlog_witness_body_parse(struct ota_tlog_witness_body *out, const void *data,
                                        size_t len, struct ota_detail *det);

/* Appends a request body to out: the old size, nproof proof hashes and
 * the note note[0..note_len) verbatim. OTA_ERR_INVALID_ARG for
 * old_size > 2^63 - 1, nproof > 63 or an empty note; OTA_ERR_TOO_LARGE
 * when the body would exceed OTA_TLOG_WITNESS_MAX_BODY (or out's cap).
 * On failure out is unchanged. */
OTA_WUR int ota_tlog_witness_body_format(struct ota_buf *out, uint64_t old_size,
                                         const uint8_t (*proof)[OTA_MERKLE_HASH_LEN], size_t nproof,
                                         const char *note, size_t note_len);

/* Parses a 409 response body: a decimal tree size (no leading zeros
 * unless 0, at most 2^63 - 1) followed by exactly one '\n'. OTA_ERR_FORMAT
 * otherwise; *size is 0 then. */
OTA_WUR int ota_tlog_witness_size_parse(uint64_t *size, const void *data, size_t len);

/* Writes the 409 body of size (NUL-terminated) into out; returns its
 * length without the NUL, or 0 (out empty) for size > 2^63 - 1. */
size_t ota_tlog_witness_size_format(char out[OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1], uint64_t size);

#endif
