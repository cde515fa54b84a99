/* Content-defined chunking: FastCDC (gear hash, cut-point skipping,
 * normalized chunking with two masks), exactly as specified in
 * docs/formats/chunk-index.md ("The chunker (identifier 1)").
 *
 * Streaming and allocation-free: the caller owns a struct ota_chunker,
 * feeds it buffers of any size and learns where chunks end. The cut points
 * are a function of the bytes and the parameters only: the same whatever
 * the buffer split, the machine or the build.
 */
#ifndef OTACHAIN_CHUNKER_H
#define OTACHAIN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"

/* Defaults (docs/decisions.md: chosen by the chunk-size sweep). */
#define OTA_CHUNKER_MIN_DEFAULT (4u * 1024u)
#define OTA_CHUNKER_AVG_DEFAULT (16u * 1024u)
#define OTA_CHUNKER_MAX_DEFAULT (64u * 1024u)
#define OTA_CHUNKER_NC_DEFAULT  2u

/* Hard limits on the parameters. */
#define OTA_CHUNKER_MIN_FLOOR 64u        /* the gear window: 64 bytes */
#define OTA_CHUNKER_AVG_FLOOR 256u       /* 2^8 */
#define OTA_CHUNK_LEN_CAP     (1u << 20) /* no chunk is longer than 1 MiB */
#define OTA_CHUNKER_NC_MAX    3u

/* Identifier of this algorithm and gear table in the chunk index. */
#define OTA_CHUNKER_ID 1u

struct ota_chunker_params {
    uint32_t min_size; /* >= 64 */
    uint32_t avg_size; /* power of two, 2^8..2^20, >= min_size */
    uint32_t max_size; /* >= avg_size, <= OTA_CHUNK_LEN_CAP */
    uint32_t nc_level; /* normalization level 0..3, log2(avg) - nc >= 1 */
};

/* The state of one chunking stream. Treat the fields as private; the
 * struct is public only so the caller can place it anywhere. */
struct ota_chunker {
    struct ota_chunker_params p;
    uint64_t mask_s; /* judged below avg_size: more bits, harder */
    uint64_t mask_l; /* judged from avg_size on: fewer bits, easier */
    uint64_t fp;     /* gear hash of the current chunk so far */
    uint32_t pos;    /* bytes of the current chunk seen so far */
};

/* Fills p with the defaults above. */
void ota_chunker_params_default(struct ota_chunker_params *p);

/* 0 if p satisfies the limits above, OTA_ERR_CHUNK_PARAMS otherwise (with
 * the reason in det). */
OTA_WUR int ota_chunker_params_check(const struct ota_chunker_params *p, struct ota_detail *det);

/* Starts a stream with parameters p (copied). OTA_ERR_CHUNK_PARAMS if p is
 * invalid (c is then unusable). */
OTA_WUR int ota_chunker_init(struct ota_chunker *c, const struct ota_chunker_params *p,
                             struct ota_detail *det);

/* Scans up to len bytes that continue the stream. Returns the number of
 * bytes consumed. If a chunk ends within them, consumption stops right
 * after its last byte and *cut_len is the chunk's full length (including
 * bytes fed by earlier calls); the next call starts the next chunk.
 * Otherwise all len bytes are consumed and *cut_len is 0. Callers loop
 * until their buffer is consumed. Never fails. */
size_t ota_chunker_scan(struct ota_chunker *c, uint32_t *cut_len, const void *data, size_t len);

/* Ends the stream: returns the length of the last chunk (bytes fed since
 * the last cut; 0 if the input was empty or ended exactly at a cut) and
 * resets c for a new stream with the same parameters. */
uint32_t ota_chunker_end(struct ota_chunker *c);

/* The 256-entry gear table (static, read-only) and its identity: SHA-256
 * of the entries as 2048 little-endian bytes. */
const uint64_t *ota_chunker_gear(void);
extern const uint8_t ota_chunker_gear_sha256[OTA_SHA256_LEN];

#endif
