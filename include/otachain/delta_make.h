/* Reference delta maker (docs/formats/delta.md): the authoring side.
 *
 * Finds the to-image in the from-image with a suffix array (libdivsufsort)
 * and approximate matches in the manner of Percival's "Naive differences of
 * executable code", and writes a delta the device applies with
 * otachain/delta.h. Memory is plentiful here (about 5 bytes per from-image
 * byte plus a hash bitmap of at most 512 MiB, plus both images, which the
 * caller holds); the device's constant memory is fixed by the format's
 * window cap, not by this code. The output is deterministic: the same
 * images and options give the same bytes.
 *
 * Not linked by the device agent (otachain_sign library).
 */
#ifndef OTACHAIN_DELTA_MAKE_H
#define OTACHAIN_DELTA_MAKE_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/fetch.h"

/* The from-image must be below 2^31 bytes (32-bit suffix array). */
#define OTA_DELTA_MAKE_OLD_MAX ((size_t)0x7fffffff)

/* The maker's default cap on the body's window: 2 MiB (docs/decisions.md:
 * 2.1 MB less device memory than the format's 4 MiB cap, for deltas about
 * 1.2 % larger on the rootfs pairs). */
#define OTA_DELTA_MAKE_WINDOW_LOG_DEFAULT 21

/* Zero means the default for every field. */
struct ota_delta_make_opts {
    int level;           /* zstd level, 1..22; default 22 */
    unsigned window_log; /* cap on the body's window, 10..22; default
                            OTA_DELTA_MAKE_WINDOW_LOG_DEFAULT */
    uint64_t frame_size; /* op-stream bytes after which a new frame starts; default 16 MiB */
    unsigned min_gain;   /* a match must beat the current alignment by more than this to
                            start a new one; default 32 */
    unsigned copy_run;   /* equal runs at least this long become COPY ops; default 4096 */
};

/* What a make produced (for benchmarks and logs). */
struct ota_delta_make_stats {
    uint64_t delta_length;     /* bytes given to the sink */
    uint64_t op_stream_length; /* uncompressed op stream */
    uint64_t copy_ops, add_ops, insert_ops;
    uint64_t copy_bytes, add_bytes, insert_bytes;
    uint64_t searches; /* suffix-array searches */
    uint64_t frames;
    unsigned window_log;
};

/* Makes the delta from old_img to new_img and streams it to sink (header
 * first). stats may be NULL; opts may be NULL (defaults). The images are
 * only read. Errors: OTA_ERR_INVALID_ARG (bad options), OTA_ERR_TOO_LARGE
 * (old_len > OTA_DELTA_MAKE_OLD_MAX or new_len > 2^40), OTA_ERR_NOMEM,
 * OTA_ERR_CRYPTO (zstd or hashing failed), or the sink's error. On failure
 * the sink may have received part of a delta: write to a temporary file and
 * rename it on success. */
OTA_WUR int ota_delta_make(ota_sink_fn sink, void *sink_ctx, struct ota_delta_make_stats *stats,
                           const uint8_t *old_img, size_t old_len, const uint8_t *new_img,
                           size_t new_len, const struct ota_delta_make_opts *opts,
                           struct ota_detail *det);

#endif
