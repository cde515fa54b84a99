/* Data-plane fetcher (verify side): builds a new image from its verified
 * chunk index, the device's current image and an untrusted HTTP mirror
 * (docs/formats/repository.md, "Data plane on a mirror").
 *
 *   1. Checks the index against the signed target (length, SHA-256).
 *   2. Reference delta: GET <base>/deltas/<current-sha256>/<image-sha256>.
 *      404 -> step 3. Otherwise the delta is applied as a stream (current
 *      image read with pread); each output chunk is checked against the
 *      index before it is written. A delta that fails (corrupt, wrong
 *      base, a chunk mismatch, transport error) is discarded and the
 *      fetcher falls back to step 3; the chunks it had already verified
 *      are kept (they match the signed index).
 *   3. Chunks: plan (ota_plan_make with the chunks of the current image),
 *      copy reused chunks from the current image (each checked), fetch the
 *      missing frames as coalesced byte ranges of
 *      <base>/chunks/<image-sha256>.pack: multi-range requests (up to
 *      ranges_per_request ranges each, answered as multipart/byteranges),
 *      all on one keep-alive connection, HTTP/2 when offered; a server that
 *      answers a multi-range request with a single part or the whole file
 *      gets the ranges again one per request (a 200 to a single range is
 *      refused: the server ignores Range). Each frame is decoded and checked before it
 *      is written. A bad chunk from the mirror is
 *      fatal (OTA_ERR_HASH_MISMATCH or OTA_ERR_DECOMPRESS naming the chunk
 *      and its ranges): the mirror is lying, there is no other source.
 *   4. Verifies the SHA-256 of the whole output, then renames OUT.part to
 *      OUT. OUT is never created from unverified bytes.
 *
 * Resume: verified chunks are recorded in a bitmap in the state directory
 * (<state>/<image-sha256>.dpstate, guarded by an flock on
 * <state>/<image-sha256>.lock: a second concurrent run gets
 * OTA_ERR_LOCKED), synced after OUT.part at intervals;
 * a rerun (same index, same OUT) keeps the chunks marked done and fetches
 * none of them again. If the final hash fails, OUT.part and the state are
 * removed.
 *
 * Memory: two chunk buffers (<= 1 MiB each), one zstd decoder, the delta
 * applier (<= ota_delta_apply_mem_max()), and the plan (about 16 bytes
 * per chunk) plus the current image's chunk set: independent of the
 * image's size except for those per-chunk tables.
 */
#ifndef OTACHAIN_DP_FETCH_H
#define OTACHAIN_DP_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "otachain/chunk_index.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/http.h"

/* Cap on a delta's length: image length plus this (a bigger delta is
 * refused as useless and the chunk path is used). */
#define OTA_DP_DELTA_SLACK (UINT64_C(1) << 20)

/* Cap on ranges_per_request (the Range header stays below 2 KiB). */
#define OTA_DP_MAX_RANGES_PER_REQUEST 64u

struct ota_dp_fetch_cfg {
    const struct ota_chunk_index *idx;  /* parsed from the hash-pinned index target */
    uint64_t image_length;              /* from the signed image target */
    const uint8_t *image_sha256;        /* from the signed image target */
    int current_fd;                     /* the current image (pread only), or -1 */
    uint64_t current_length;            /* its first current_length bytes are the image (a
                                           slot device is longer than what it holds); 0: up to
                                           the end of a regular file (anything else: refused) */
    const char *base_url;               /* the mirror: <base>/chunks/..., <base>/deltas/... */
    const char *out_path;               /* OUT; OUT.part while working */
    const char *state_dir;              /* resume state (created 0700 if missing) */
    const struct ota_http_policy *http; /* NULL: the defaults (include/otachain/http.h) */
    bool no_delta;                      /* skip step 2 */
    uint32_t ranges_per_request;        /* byte ranges per request; 0: the planner's default (16) */
};

struct ota_dp_fetch_stats {
    bool delta_used;                   /* the image came from a delta */
    bool delta_tried;                  /* a delta was found on the mirror */
    int delta_error;                   /* why a found delta was discarded (0: it was not) */
    char delta_detail[OTA_DETAIL_LEN]; /* what the delta path said when it failed */
    uint64_t delta_bytes;              /* delta bytes received */
    uint64_t bytes_fetched;            /* body bytes received, all requests */
    uint32_t requests;                 /* HTTP requests made */
    uint32_t connections;              /* connections opened for them (keep-alive: 1) */
    unsigned http_version;             /* of the last answer: 10, 11, 20, 30; 0 = none */
    uint32_t chunks;                   /* chunks in the image */
    uint32_t chunks_done;              /* already verified by an earlier run */
    uint32_t chunks_copied;            /* from the current image or earlier output */
    uint32_t chunks_fetched;           /* from the pack */
    uint32_t chunks_from_delta;
    uint64_t range_bytes; /* pack bytes requested (planned) */
    uint32_t ranges;      /* pack byte ranges requested (planned) */
};

/* Runs steps 1-4. On success OUT holds the verified image and the state
 * is removed. Errors: OTA_ERR_LENGTH_MISMATCH / OTA_ERR_HASH_MISMATCH
 * (index does not describe the signed image, or the final image hash),
 * OTA_ERR_HASH_MISMATCH / OTA_ERR_DECOMPRESS / OTA_ERR_TRUNCATED (a pack
 * frame; det names chunk i, its pack and image ranges), OTA_ERR_NETWORK
 * (transport; a 200 answer to a Range request is refused: "server ignored
 * Range"), OTA_ERR_NOT_FOUND (no pack), OTA_ERR_LOCKED, OTA_ERR_IO,
 * OTA_ERR_INVALID_ARG (ranges_per_request above the cap). stats may be
 * NULL; it is filled in on failure too. */
OTA_WUR int ota_dp_fetch(struct ota_dp_fetch_stats *stats, const struct ota_dp_fetch_cfg *cfg,
                         struct ota_detail *det);

#endif
