/* Chunk index and pack writer (authoring side; the device agent does not
 * link it). Formats: docs/formats/chunk-index.md, docs/formats/pack.md.
 *
 * Streaming: feed the image in buffers of any size; each chunk is cut
 * (otachain/chunker.h), hashed, compressed into its own zstd frame and
 * handed to the caller's sink in image order; finish writes the index.
 * Each distinct chunk is compressed once: a chunk that repeats an earlier
 * one (same SHA-256 and length) is recorded with no frame.
 * Memory: a batch of 8 chunks and 8 frames per thread (each <= max_size
 * plus zstd's bound), one zstd compressor per thread, and about 110 bytes
 * per chunk for the index and the repeat lookup.
 */
#ifndef OTACHAIN_CHUNK_BUILD_H
#define OTACHAIN_CHUNK_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/chunk_index.h"
#include "otachain/chunker.h"
#include "otachain/err.h"

/* Default zstd level (docs/decisions.md): 6 is the cheapest level whose
 * pack is smaller than casync's store for the same rootfs image; higher
 * levels save little (9: -0.4 %) until 15-19 (-5 %) at 5-18x the CPU
 * time. For small images that time does not matter:
 * ota_chunk_build_level_for() picks 19 up to OTA_CHUNK_SMALL_IMAGE. */
#define OTA_CHUNK_ZSTD_LEVEL_DEFAULT 6
#define OTA_CHUNK_ZSTD_LEVEL_SMALL   19
#define OTA_CHUNK_SMALL_IMAGE        (UINT64_C(32) << 20)

/* Cap on worker threads. */
#define OTA_CHUNK_BUILD_MAX_THREADS 64u

struct ota_chunk_build_opts {
    struct ota_chunker_params chunker;
    int zstd_level;   /* 1..ZSTD_maxCLevel() (22), or negative "fast" levels down to -7 */
    unsigned threads; /* hashing and compression threads, 0 or 1 = the caller's only;
                       * the output is the same for any value */
};

/* Fills opts with the chunker defaults, OTA_CHUNK_ZSTD_LEVEL_DEFAULT and
 * one thread. */
void ota_chunk_build_opts_default(struct ota_chunk_build_opts *opts);

/* The recommended level for an image of this length: 19 up to 32 MiB
 * (a few seconds at most), OTA_CHUNK_ZSTD_LEVEL_DEFAULT above. */
int ota_chunk_build_level_for(uint64_t image_length);

/* Receives each chunk in image order: its entry (all fields set, offsets
 * included) and its compressed frame, valid only during the call. A chunk
 * that repeats an earlier one gets frame NULL and frame_len 0 (it has no
 * frame; e->first names the earlier chunk). The pack is the concatenation
 * of the frames. Returns 0, or an ota_err that aborts the build and is
 * returned by the update/finish call that triggered it. */
typedef int (*ota_chunk_build_sink)(void *ctx, const struct ota_chunk_entry *e,
                                    const uint8_t *frame, size_t frame_len);

struct ota_chunk_build;

/* Creates a builder. sink may be NULL (the index alone is wanted). The
 * sink is called from the thread calling update/finish, in image order,
 * in batches (so a few chunks after they were fed). OTA_ERR_CHUNK_PARAMS,
 * OTA_ERR_INVALID_ARG (zstd level, threads), OTA_ERR_NOMEM. */
OTA_WUR int ota_chunk_build_new(struct ota_chunk_build **out,
                                const struct ota_chunk_build_opts *opts, ota_chunk_build_sink sink,
                                void *sink_ctx, struct ota_detail *det);

/* Feeds the next len bytes of the image. OTA_ERR_TOO_LARGE past 2^40
 * bytes or 2^24 chunks; a sink error or OTA_ERR_CRYPTO/NOMEM. After an
 * error the builder only accepts ota_chunk_build_free. */
OTA_WUR int ota_chunk_build_update(struct ota_chunk_build *b, const void *data, size_t len,
                                   struct ota_detail *det);

/* Ends the image: emits the last chunk and appends the serialized index to
 * index_out (an initialised ota_buf; its cap must allow the index, i.e.
 * 120 + 40 per chunk). The builder is then spent (free it). */
OTA_WUR int ota_chunk_build_finish(struct ota_buf *index_out, struct ota_chunk_build *b,
                                   struct ota_detail *det);

/* Frees a builder; NULL is fine. */
void ota_chunk_build_free(struct ota_chunk_build *b);

/* Convenience: reads image_fd to its end, writes the pack to pack_fd
 * (write(2) at its current position; pack_fd < 0 = no pack) and the index
 * to index_out. The caller makes the files durable (fsync, rename).
 * OTA_ERR_IO on read/write failure. */
OTA_WUR int ota_chunk_build_fd(struct ota_buf *index_out, int pack_fd, int image_fd,
                               const struct ota_chunk_build_opts *opts, struct ota_detail *det);

#endif
