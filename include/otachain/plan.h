/* Fetch planner (verify side): for every chunk of a new image, where to get
 * it — already written (resume), copied from the device's current image,
 * copied from an earlier identical chunk of the new image, or fetched
 * from the pack — and the pack byte ranges to request, coalesced into few
 * HTTP requests.
 *
 * Pure: no network, no writes; the only I/O is reading the current image
 * in ota_plan_have_from_fd. The plan is advice about where bytes should
 * be; it vouches for nothing. Whoever executes it checks every chunk
 * against the (pinned) index before writing it: ota_pack_reader_* for
 * fetched frames, ota_chunk_index_check_chunk for copied bytes.
 *
 * Executing a plan (what the fetcher does): walk steps in image order,
 * writing chunk i at its offset in the new image. FETCH steps appear in
 * pack order; the frames of range r are read from one HTTP byte range
 * [start, end): skip to step.src - start, take chunk's zlength bytes,
 * skip the gap to the next FETCH frame of that range.
 */
#ifndef OTACHAIN_PLAN_H
#define OTACHAIN_PLAN_H

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

struct ota_plan_opts {
    /* Two fetched frames separated by at most gap unneeded pack bytes go in
     * one byte range (the gap is downloaded and discarded). The default,
     * 1 KiB, is about what one more range costs in a multi-range request
     * or one more request costs in headers: wider gaps cost bytes (16 KiB:
     * +2 %, 64 KiB: +14 % on the rootfs tar update, docs/BENCHMARKS.md). */
    uint64_t gap;
    /* Byte ranges per HTTP request (a multi-range request); >= 1. Use 1
     * for servers or CDNs without multi-range support. */
    uint32_t ranges_per_request;
    /* If more requests would be needed, gap is doubled until they fit;
     * 0 = no limit. */
    uint32_t max_requests;
};

void ota_plan_opts_default(struct ota_plan_opts *opts);

enum ota_plan_kind {
    OTA_PLAN_DONE = 0,     /* already written and verified (resume); nothing to do */
    OTA_PLAN_COPY_OLD = 1, /* copy length bytes from the current image at src */
    OTA_PLAN_COPY_NEW = 2, /* copy from the new image at src (an earlier chunk) */
    OTA_PLAN_FETCH = 3,    /* frame at pack offset src (= the entry's pack_offset) */
};

struct ota_plan_step {
    uint64_t src;   /* see enum ota_plan_kind; 0 for DONE */
    uint32_t range; /* FETCH: index into plan->ranges; else UINT32_MAX */
    uint32_t kind;  /* enum ota_plan_kind */
};

/* A pack byte range [start, end) covering the frames of FETCH chunks
 * first..last (image indices; chunks in between may be other kinds). */
struct ota_plan_range {
    uint64_t start;
    uint64_t end;
    uint32_t first;
    uint32_t last;
};

/* An HTTP request: ranges [first_range, first_range + nranges). */
struct ota_plan_request {
    uint32_t first_range;
    uint32_t nranges;
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

struct ota_plan {
    uint32_t nsteps; /* = the index's chunk count; step i is chunk i */
    struct ota_plan_step *steps;
    uint32_t nranges;
    struct ota_plan_range *ranges;
    uint32_t nrequests;
    struct ota_plan_request *requests;
    struct ota_plan_stats stats;
};

/* The chunks the device has: a set of SHA-256 -> (offset, length) in its
 * current image. */
struct ota_plan_have;

/* From the index of the installed release (assumed to describe the
 * current image; the executor re-checks copied bytes anyway). Chunker
 * parameters may differ from the new index's (less reuse, still correct).
 * OTA_ERR_NOMEM. */
OTA_WUR int ota_plan_have_from_index(struct ota_plan_have **out, const struct ota_chunk_index *old,
                                     struct ota_detail *det);

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
                                  struct ota_detail *det);

/* Number of distinct chunks in the set. */
uint32_t ota_plan_have_count(const struct ota_plan_have *have);

void ota_plan_have_free(struct ota_plan_have *have);

/* Plans the new image idx (from ota_chunk_index_parse). have may be NULL
 * (nothing to reuse). done may be NULL, or a bitmap of (idx->count + 7) /
 * 8 bytes where bit i (byte i / 8, bit i % 8) set means chunk i is
 * already written and verified in the output. opts NULL = defaults.
 * Preference: DONE, COPY_OLD, COPY_NEW (a repeat: its first occurrence
 * is earlier in the new image), FETCH (first occurrences only: repeats
 * have no frame). Free with ota_plan_free. OTA_ERR_INVALID_ARG
 * (ranges_per_request 0), OTA_ERR_NOMEM. */
OTA_WUR int ota_plan_make(struct ota_plan **out, const struct ota_chunk_index *idx,
                          const struct ota_plan_have *have, const uint8_t *done,
                          const struct ota_plan_opts *opts, struct ota_detail *det);

void ota_plan_free(struct ota_plan *plan);

#endif
