/* Fetch planner (verify side): for every chunk of a new image, where to
 * get it — already written (resume), copied from the device's current
 * image, copied from an earlier identical chunk of the new image, or
 * fetched from the pack — and the pack byte ranges to request, coalesced
 * into few HTTP requests.
 *
 * Streaming: the planner reads the index through a cursor
 * (ota_chunk_index_open) and the current image's chunks through a table
 * in an unlinked temporary file, and hands out one request's ranges at a
 * time, so its memory does not grow with the image (DESIGN §5: a 4 GiB
 * image costs what a 512 MiB one does). The only per-chunk state is the
 * caller's bitmap of chunks done (one bit a chunk).
 *
 * The plan is advice about where bytes should be; it vouches for nothing.
 * Whoever executes it checks every chunk against the (pinned) index
 * before writing it: ota_pack_reader_* for fetched frames,
 * ota_chunk_index_check_chunk for copied bytes.
 *
 * Executing a plan (what the fetcher does), in this order:
 *   1. ota_plan_copy_old: each chunk not done that the current image
 *      has is copied from it (and marked done by the caller);
 *   2. ota_plan_begin, then ota_plan_next until it says 0: the frames of
 *      the first occurrences still not done, as byte ranges of the pack;
 *      for a range [start, end) the caller reads the frames of its FETCH
 *      chunks (not done, first == i) between first and last, skipping
 *      the gaps (frames it does not need);
 *   3. ota_plan_copy_new: each chunk still not done is a repeat, copied
 *      from its first occurrence in the new image (written by now).
 */
#ifndef OTACHAIN_PLAN_H
#define OTACHAIN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/chunk_index.h"
#include "otachain/chunker.h"
#include "otachain/crypto.h"
#include "otachain/err.h"

/* Defaults (docs/decisions.md). */
#define OTA_PLAN_GAP_DEFAULT            1024u
#define OTA_PLAN_RANGES_PER_REQ_DEFAULT 16u
#define OTA_PLAN_MAX_REQUESTS_DEFAULT   64u
/* Cap on the chunks a "have" set may hold (same as an index). */
#define OTA_PLAN_HAVE_MAX OTA_CHUNK_INDEX_MAX_CHUNKS
/* Most ranges one request may carry (the Range header stays below
 * 2 KiB). */
#define OTA_PLAN_MAX_RANGES_PER_REQUEST 64u

struct ota_plan_opts {
    /* Two fetched frames separated by at most gap unneeded pack bytes go in
     * one byte range (the gap is downloaded and discarded). The default,
     * 1 KiB, is about what one more range costs in a multi-range request
     * or one more request costs in headers: wider gaps cost bytes (16 KiB:
     * +2 %, 64 KiB: +14 % on the rootfs tar update, docs/BENCHMARKS.md). */
    uint64_t gap;
    /* Byte ranges per HTTP request (a multi-range request); 1 to
     * OTA_PLAN_MAX_RANGES_PER_REQUEST. Use 1 for servers or CDNs without
     * multi-range support. */
    uint32_t ranges_per_request;
    /* If more requests would be needed, gap is doubled until they fit;
     * 0 = no limit. */
    uint32_t max_requests;
};

void ota_plan_opts_default(struct ota_plan_opts *opts);

/* A pack byte range [start, end) covering the frames of FETCH chunks
 * first..last (image indices; chunks in between may be other kinds). */
struct ota_plan_range {
    uint64_t start;
    uint64_t end;
    uint32_t first;
    uint32_t last;
};

struct ota_plan_stats {
    uint32_t chunks;
    uint32_t done_chunks, copy_old_chunks, copy_new_chunks, fetch_chunks;
    uint64_t image_bytes;
    uint64_t done_bytes, copy_old_bytes, copy_new_bytes;
    uint64_t fetch_bytes;  /* uncompressed bytes of the fetched chunks */
    uint64_t fetch_zbytes; /* their frames: bytes actually needed from the pack */
    uint64_t range_bytes;  /* bytes requested, gaps included (>= fetch_zbytes) */
    uint32_t ranges, requests;
    uint64_t gap; /* the gap finally used (opts->gap or larger) */
};

/* Bit i of a done bitmap ((count + 7) / 8 bytes, byte i / 8, bit i % 8). */
static inline bool ota_plan_done(const uint8_t *done, uint32_t i)
{
    return done != NULL && ((done[i / 8] >> (i % 8)) & 1u) != 0;
}

/* The chunks the device has: SHA-256 and length -> offset in its current
 * image, in a table in an unlinked file in tmpdir (NULL: in memory). */
struct ota_plan_have;

/* By chunking the current image: reads [0, length) of fd with pread
 * (length UINT64_MAX = up to end of file; the fd offset is not moved),
 * cuts it with params p (pass the new index's parameters) and hashes each
 * chunk. If image_sha256 is not NULL it receives the SHA-256 of the bytes
 * read (e.g. to look for a reference delta from this image).
 * OTA_ERR_TRUNCATED if the file ends before length; OTA_ERR_IO,
 * OTA_ERR_TOO_LARGE (more than OTA_PLAN_HAVE_MAX chunks or 2^40 bytes),
 * OTA_ERR_CHUNK_PARAMS, OTA_ERR_NOMEM. */
OTA_WUR int ota_plan_have_from_fd(struct ota_plan_have **out, uint8_t image_sha256[OTA_SHA256_LEN],
                                  int fd, uint64_t length, const struct ota_chunker_params *p,
                                  const char *tmpdir, struct ota_detail *det);

/* Whether the current image has chunk e (same SHA-256 and length): 1 and
 * its offset there, 0, or OTA_ERR_IO. */
OTA_WUR int ota_plan_have_find(const struct ota_plan_have *have, const struct ota_chunk_entry *e,
                               uint64_t *offset);

/* Number of distinct chunks in the set. */
uint32_t ota_plan_have_count(const struct ota_plan_have *have);

void ota_plan_have_free(struct ota_plan_have *have);

/* Called for a chunk to copy: chunk i (entry e) is at src (in the current
 * image for copy_old, in the new image for copy_new). A non-zero return
 * stops the walk and is returned. */
typedef int (*ota_plan_copy_fn)(void *ctx, uint32_t i, const struct ota_chunk_entry *e,
                                uint64_t src, struct ota_detail *det);

/* Step 1: fn for every chunk not done that have holds (first occurrences
 * and repeats alike). st may be NULL; its copy_old and done counts are
 * set. have NULL: nothing to copy. */
OTA_WUR int ota_plan_copy_old(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                              const struct ota_plan_have *have, const uint8_t *done,
                              ota_plan_copy_fn fn, void *ctx, struct ota_detail *det);

/* Step 3: fn for every chunk not done whose first occurrence is earlier,
 * with src its first occurrence's offset in the new image. st may be
 * NULL; its copy_new counts are set. */
OTA_WUR int ota_plan_copy_new(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                              const uint8_t *done, ota_plan_copy_fn fn, void *ctx,
                              struct ota_detail *det);

/* Step 2's state: caller-owned, no cleanup. */
struct ota_plan {
    const struct ota_chunk_index_file *idx;
    const uint8_t *done;
    struct ota_plan_opts opts;
    struct ota_plan_stats stats; /* fetch counts, ranges, requests, range bytes, gap */
    struct ota_chunk_cursor cur;
    bool held; /* a range begun by the last ota_plan_next's lookahead */
    struct ota_plan_range next;
};

/* Plans the fetches: the FETCH chunks (not done in done, first
 * occurrences) of idx, coalesced with opts' gap (widened until at most
 * max_requests requests are needed), stats filled in. done must not
 * change for chunks the plan has not handed out yet. OTA_ERR_INVALID_ARG
 * (ranges_per_request 0 or above the cap), OTA_ERR_IO. */
OTA_WUR int ota_plan_begin(struct ota_plan *p, const struct ota_chunk_index_file *idx,
                           const uint8_t *done, const struct ota_plan_opts *opts,
                           struct ota_detail *det);

/* The next request: up to opts.ranges_per_request ranges into ranges,
 * their number in *n. 1 with a request, 0 when there is none left,
 * OTA_ERR_IO. */
OTA_WUR int ota_plan_next(struct ota_plan *p, struct ota_plan_range *ranges, uint32_t *n,
                          struct ota_detail *det);

/* Whether chunk i (entry e) is one the plan fetches. */
static inline bool ota_plan_fetches(const struct ota_plan *p, uint32_t i,
                                    const struct ota_chunk_entry *e)
{
    return e->first == i && !ota_plan_done(p->done, i);
}

/* Everything at once, for estimates (benchmarks): what steps 1-3 would
 * copy and fetch for idx given have and done (NULL: nothing done). */
OTA_WUR int ota_plan_estimate(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                              const struct ota_plan_have *have, const uint8_t *done,
                              const struct ota_plan_opts *opts, struct ota_detail *det);

#endif
