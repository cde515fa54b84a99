/* Pack reader (verify side): turns one chunk's zstd frame, taken from the
 * pack at the range its index entry gives, into verified chunk bytes.
 * Format: docs/formats/pack.md.
 *
 * Memory is bounded whatever the pack: the caller's output buffer (one
 * chunk, <= OTA_CHUNK_LEN_CAP) plus the zstd decoder, whose window is
 * limited to OTA_PACK_WINDOW_LOG_MAX. Output is handed out only after its
 * length and SHA-256 match the entry; on any failure the caller's output
 * buffer is wiped, so a rejected chunk leaves nothing behind.
 *
 * Streaming use (frame bytes arriving from an HTTP body in pieces):
 *
 *   ota_pack_reader_begin(r, out, out_cap, entry)
 *   ota_pack_reader_feed(r, piece, n)          any number of times, total
 *                                              exactly entry->zlength bytes
 *   ota_pack_reader_finish(r)                  0: out[0..length) verified
 *
 * A reader holds one decoder and is reused for every chunk; one chunk at a
 * time. Not thread-safe; use one reader per thread.
 */
#ifndef OTACHAIN_PACK_H
#define OTACHAIN_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/chunk_index.h"
#include "otachain/err.h"

/* Decoder window cap: 2^20 = OTA_CHUNK_LEN_CAP, enough for any valid frame. */
#define OTA_PACK_WINDOW_LOG_MAX 20

struct ota_pack_reader;

/* Allocates a reader (free with ota_pack_reader_free, NULL is fine).
 * OTA_ERR_NOMEM. */
OTA_WUR int ota_pack_reader_new(struct ota_pack_reader **out);
void ota_pack_reader_free(struct ota_pack_reader *r);

/* Starts decoding chunk e into out (out_cap >= e->length, else
 * OTA_ERR_INVALID_ARG). e and out must stay valid until finish; out is
 * written only by this chunk's decoding. Abandons any chunk in progress. */
OTA_WUR int ota_pack_reader_begin(struct ota_pack_reader *r, uint8_t *out, size_t out_cap,
                                  const struct ota_chunk_entry *e);

/* Feeds the next n bytes of the frame. OTA_ERR_DECOMPRESS if the frame is
 * corrupt, needs a larger window, ends early or decodes to more than
 * e->length bytes; OTA_ERR_TOO_LARGE if more than e->zlength bytes are fed
 * in total. After an error the output is wiped and the chunk abandoned
 * (further feeds return OTA_ERR_INVALID_ARG until the next begin). */
OTA_WUR int ota_pack_reader_feed(struct ota_pack_reader *r, const void *data, size_t n,
                                 struct ota_detail *det);

/* Ends the chunk: 0 if exactly e->zlength bytes formed one complete frame
 * that decoded to exactly e->length bytes whose SHA-256 equals e->sha256.
 * Otherwise OTA_ERR_TRUNCATED (fewer bytes fed), OTA_ERR_DECOMPRESS or
 * OTA_ERR_HASH_MISMATCH, and the output is wiped. */
OTA_WUR int ota_pack_reader_finish(struct ota_pack_reader *r, struct ota_detail *det);

/* One call: begin + feed(frame, frame_len) + finish. frame_len must be
 * e->zlength (else OTA_ERR_LENGTH_MISMATCH, output wiped). */
OTA_WUR int ota_pack_decode_chunk(uint8_t *out, size_t out_cap, struct ota_pack_reader *r,
                                  const uint8_t *frame, size_t frame_len,
                                  const struct ota_chunk_entry *e, struct ota_detail *det);

#endif
