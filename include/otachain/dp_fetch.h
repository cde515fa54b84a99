/* Data-plane fetcher (verify side): builds a new image into an output
 * (include/otachain/output.h: a file or a slot) from the device's current
 * image and an untrusted HTTP mirror (docs/formats/repository.md, "Data
 * plane on a mirror"), fetching the signed chunk index only when it is
 * needed.
 *
 *   1. Reference delta, when there is a current image and no earlier
 *      progress: GET <base>/deltas/<current-sha256>/<image-sha256>, applied
 *      as a stream (current image read with pread) straight into the
 *      output, without the index: a small fix costs the delta and nothing
 *      else. The output is then verified by its whole-image SHA-256
 *      (re-read from the medium) before it is committed; nothing of it is
 *      trusted before. 404 -> step 2. A delta that fails in any way
 *      (corrupt, wrong base, a wrong image, a transport error) is
 *      discarded and step 2 rewrites every chunk; a delta that trickles
 *      (OTA_ERR_SLOW_RETRIEVAL) ends the fetch: that mirror is dropped.
 *   2. The index: through the caller's callback (the TUF client downloads
 *      the hash-pinned index target); it must describe the signed image.
 *      With earlier progress (a resume), a delta is then tried again,
 *      each of its output chunks checked against the index before it is
 *      written, the chunks already verified skipped.
 *   3. Chunks (ota_plan_*: the index and the current image's chunks are
 *      read from disk, not held in memory): copy what the current image
 *      has (each checked), fetch the other frames as coalesced byte ranges
 *      of <base>/chunks/<image-sha256>.pack — multi-range requests
 *      (answers parsed by include/otachain/multipart.h), all on one
 *      keep-alive connection, HTTP/2 when offered; a server that answers a
 *      multi-range request with a single part or the whole file gets the
 *      ranges again one per request; each frame decoded and checked before
 *      it is written; then copy repeated chunks. A mirror that ignores
 *      Range altogether (a 200 to a single range: `python3 -m
 *      http.server`) gets the full image target instead, through the
 *      caller's TUF fetcher, cut at the index's boundaries and each chunk
 *      checked before it is written. A bad chunk from the mirror is fatal
 *      (OTA_ERR_HASH_MISMATCH or OTA_ERR_DECOMPRESS naming the chunk and
 *      its ranges): the mirror is lying.
 *   4. Verifies the output's SHA-256 (re-read from the medium) and commits
 *      it (a file is renamed). The output never becomes the image from
 *      unverified bytes.
 *
 * Resume: chunks verified are recorded in a bitmap in the state directory
 * (<state>/<image-sha256>.dpstate, valid only for the same output: its
 * identity is in the header; guarded by an flock on
 * <state>/<image-sha256>.lock: a second concurrent run gets
 * OTA_ERR_LOCKED), synced after the output at intervals; a rerun keeps the
 * chunks marked done and fetches none of them again. If the final hash
 * fails, the output (a file's PATH.part) and the state are removed.
 *
 * Memory: two chunk buffers (<= 1 MiB each), one zstd decoder, the delta
 * applier (<= ota_delta_apply_mem_max()), index cursors, and one bit per
 * chunk: independent of the image's size but for that bitmap (32 KiB for a
 * 4 GiB image of 16 KiB chunks). The index's first occurrences and the
 * current image's chunks live in temporary files in the state directory.
 */
#ifndef OTACHAIN_DP_FETCH_H
#define OTACHAIN_DP_FETCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "otachain/chunk_index.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/http.h"
#include "otachain/output.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"

/* Cap on a delta's length: image length plus this (a bigger delta is
 * refused as useless and the chunk path is used). */
#define OTA_DP_DELTA_SLACK (UINT64_C(1) << 20)

/* Cap on ranges_per_request (the Range header stays below 2 KiB). */
#define OTA_DP_MAX_RANGES_PER_REQUEST 64u

/* Gives the chunk index: an open file descriptor of the index file, its
 * bytes already pinned by signed metadata (length and SHA-256; the
 * fetcher reads and checks it but does not verify that pin). The fetcher
 * closes it. 0 or an error with det. */
typedef int (*ota_dp_index_fn)(void *ctx, int *fd, struct ota_detail *det);

struct ota_dp_fetch_cfg {
    uint64_t image_length;       /* from the signed image target */
    const uint8_t *image_sha256; /* from the signed image target */
    const char *image_target;    /* its target path (the full image, for a mirror without Range) */
    ota_dp_index_fn get_index;   /* the index target, when needed */
    void *index_ctx;
    const struct ota_fetcher *fetcher;  /* the TUF fetcher: fetches image_target when needed */
    int current_fd;                     /* the current image (pread only), or -1 */
    uint64_t current_length;            /* its first current_length bytes are the image (a
                                           slot device is longer than what it holds); 0: up to
                                           the end of a regular file (anything else: refused) */
    const char *base_url;               /* the mirror: <base>/chunks/..., <base>/deltas/... */
    struct ota_output *out;             /* where the image goes (image_length bytes) */
    const char *state_dir;              /* resume state and temporary tables (created 0700) */
    const struct ota_http_policy *http; /* NULL: the defaults */
    bool no_delta;                      /* skip the reference delta */
    uint32_t ranges_per_request;        /* byte ranges per request; 0: the planner's default (16) */
    /* Called after each write to the output with the bytes this run wrote
     * so far and image_length (a person's progress bar, a watchdog); NULL:
     * none. It must not fail or block. */
    void (*progress)(void *ctx, uint64_t written, uint64_t total);
    void *progress_ctx;
};

struct ota_dp_fetch_stats {
    bool delta_used;                   /* the image came from a delta */
    bool delta_tried;                  /* a delta was found on the mirror */
    bool delta_resumed;                /* only the rest of a delta was fetched */
    int delta_error;                   /* why a found delta was discarded (0: it was not) */
    char delta_detail[OTA_DETAIL_LEN]; /* what the delta path said when it failed */
    bool index_used;                   /* the index was fetched */
    bool full_image;                   /* the mirror ignored Range: the full image target */
    uint64_t delta_bytes;              /* delta bytes received */
    uint64_t full_bytes;               /* full image bytes received */
    uint64_t bytes_fetched;            /* body bytes received by the data-plane requests */
    uint32_t requests;                 /* HTTP requests made */
    uint32_t connections;              /* connections opened for them (keep-alive: 1) */
    unsigned http_version;             /* of the last answer: 10, 11, 20, 30; 0 = none */
    uint32_t chunks;                   /* chunks in the image (0 when the index was not needed) */
    uint32_t chunks_done;              /* already verified by an earlier run */
    uint32_t chunks_copied;            /* from the current image or earlier output */
    uint32_t chunks_fetched;           /* from the pack or the full image */
    uint32_t chunks_from_delta;
    uint64_t range_bytes; /* pack bytes requested (planned) */
    uint32_t ranges;      /* pack byte ranges requested (planned) */
};

/* The usual get_index: the chunk index a verified image target names
 * (custom.index), itself a signed target whose length and SHA-256 the
 * trusted targets pin, downloaded by the TUF client into
 * <dir>/<index-sha256>.cidx (named by its pin, so a caller that keeps
 * it finds the index of a release by its hash) the first time it is
 * asked for, then opened.
 * Fill client, fetcher, image and dir; file is set by the download. */
struct ota_dp_tuf_index {
    struct ota_tuf_client *client;      /* refreshed in this process */
    const struct ota_fetcher *fetcher;  /* the one the client verified with */
    const struct ota_tuf_target *image; /* the trusted image target */
    const char *dir;                    /* where the index goes (exists) */
    char file[PATH_MAX];                /* "" until downloaded */
};

/* Downloads the index now (a caller that keeps it for later, e.g. the
 * agent's audit); a second call does nothing. OTA_ERR_FORMAT (the image
 * target names no index), OTA_ERR_TARGET_UNKNOWN (the index is not a
 * signed target), OTA_ERR_TOO_LARGE (above OTA_CHUNK_INDEX_MAX_LEN), the
 * TUF client's download errors; det names the index target. */
OTA_WUR int ota_dp_tuf_index_download(struct ota_dp_tuf_index *ix, struct ota_detail *det);

/* An ota_dp_index_fn (ctx: a struct ota_dp_tuf_index): downloads the
 * index if it was not yet, opens it and checks its length again. */
OTA_WUR int ota_dp_tuf_index_open(void *ctx, int *fd, struct ota_detail *det);

/* Runs steps 1-4. On success the output holds the verified image and is
 * committed, and the state is removed. Errors: OTA_ERR_LENGTH_MISMATCH /
 * OTA_ERR_HASH_MISMATCH (the index does not describe the signed image,
 * or the final image hash), OTA_ERR_HASH_MISMATCH / OTA_ERR_DECOMPRESS /
 * OTA_ERR_TRUNCATED (a pack frame; det names chunk i, its pack and image
 * ranges), OTA_ERR_HTTP_FRAMING (a malformed byte-range answer),
 * OTA_ERR_SLOW_RETRIEVAL, OTA_ERR_NETWORK (transport), OTA_ERR_NOT_FOUND
 * (no pack), OTA_ERR_LOCKED, OTA_ERR_IO, OTA_ERR_NO_SPACE, the index
 * callback's and the index parser's errors, OTA_ERR_INVALID_ARG
 * (ranges_per_request above the cap; no image_target or fetcher when the
 * full image is needed). stats may be NULL; it is filled in on failure
 * too. */
OTA_WUR int ota_dp_fetch(struct ota_dp_fetch_stats *stats, const struct ota_dp_fetch_cfg *cfg,
                         struct ota_detail *det);

#endif
