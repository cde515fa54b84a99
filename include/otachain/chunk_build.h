/* Chunk index and pack writer (authoring side; the device agent does not
 * link it). Formats: docs/formats/chunk-index.md, docs/formats/pack.md.
 *
 * Streaming: feed the image in buffers of any size; each chunk is cut
 * (otachain/chunker.h), hashed, compressed into its own zstd frame and
 * handed to the caller's sink in image order; finish writes the index.
 * Each distinct chunk is compressed once: a chunk that repeats an earlier
 * one (same SHA-256 and length) is recorded with no frame.
 * Threads: the caller's thread reads, chunks and hashes; with
 * opts.threads >= 2, that many worker threads compress, batch by batch
 * (about 2 MiB of image each), while the caller's thread fills the next
 * batch. The output does not depend on the number of threads.
 * Memory: one batch (threads 0 or 1) or three, each about 2 MiB of chunk
 * data plus as much for frames (more if max_size exceeds 1 MiB); one zstd
 * compressor per thread; about 110 bytes per chunk for the index and the
 * repeat lookup.
 */
#ifndef OTACHAIN_CHUNK_BUILD_H
#define OTACHAIN_CHUNK_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/chunk_index.h"
#include "otachain/chunker.h"
#include "otachain/err.h"

/* Defaults (docs/decisions.md, measured in docs/BENCHMARKS.md).
 *
 * Large images: 16 KiB average chunks (the chunker's defaults), zstd level
 * 5 with search log 4: the cheapest setting whose pack is no larger than
 * casync's store for the same rootfs image (level 5 alone is 0.05 %
 * larger on the tar; level 6 is 1 % smaller for a third more CPU).
 *
 * Images up to OTA_CHUNK_SMALL_IMAGE (firmware, single programs): 8 KiB
 * average chunks (min 2 KiB, max 32 KiB) and level 19. A small image has
 * few chunks, so finer chunks cost little index, and a build takes a few
 * seconds at most at level 19. The planner chunks the device's current
 * image with the new index's parameters, so a release crossing the
 * threshold still reuses what the device has. */
#define OTA_CHUNK_ZSTD_LEVEL_DEFAULT      5
#define OTA_CHUNK_ZSTD_SEARCH_LOG_DEFAULT 4
#define OTA_CHUNK_ZSTD_LEVEL_SMALL        19
#define OTA_CHUNK_SMALL_AVG               (8u * 1024u)
#define OTA_CHUNK_SMALL_IMAGE             (UINT64_C(32) << 20)

/* Cap on worker threads. */
#define OTA_CHUNK_BUILD_MAX_THREADS 64u

struct ota_chunk_build_opts {
    struct ota_chunker_params chunker;
    int zstd_level;      /* 1..ZSTD_maxCLevel() (22), or negative "fast" levels down to -7 */
    int zstd_search_log; /* zstd's searchLog, overriding the level's; 0 = the level's own */
    unsigned threads;    /* compression threads; 0 or 1 = the caller's only. The output
                          * is the same for any value */
};

/* Fills opts with the chunker defaults, OTA_CHUNK_ZSTD_LEVEL_DEFAULT,
 * OTA_CHUNK_ZSTD_SEARCH_LOG_DEFAULT and one thread. */
void ota_chunk_build_opts_default(struct ota_chunk_build_opts *opts);

/* The recommended options for an image of this length: the defaults
 * above OTA_CHUNK_SMALL_IMAGE, the small-image chunk size and level up to
 * it (one thread; set threads after). */
void ota_chunk_build_opts_for(struct ota_chunk_build_opts *opts, uint64_t image_length);

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
 * in batches (so up to a few MiB of image after the chunks were fed). OTA_ERR_CHUNK_PARAMS,
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
