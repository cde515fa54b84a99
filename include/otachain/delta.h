/* Reference delta applier (docs/formats/delta.md): the device side.
 *
 * A delta turns the from-image (the active slot) into the to-image. The
 * caller feeds the delta's bytes in pieces of any size as they arrive; the
 * applier reads the from-image through a pread-style callback at the
 * offsets the delta names (never all of it at once) and passes the
 * to-image, in order, to a sink. Memory is one fixed-size state plus one
 * zstd workspace sized by the header's window_log (at most 2^22): never
 * more than ota_delta_apply_mem_max() bytes, whatever the image sizes.
 *
 * The applier never reads outside the from-image and never hands the sink
 * more than the header's to_length bytes. It does NOT verify the output's
 * hash: the caller checks the output (chunk by chunk against the signed
 * index, and the whole image against the signed target) and must compare
 * the declared to-image length and SHA-256 with the signed targets before
 * using any output (give them in the config, or read them with
 * ota_delta_apply_info once the header is in).
 */
#ifndef OTACHAIN_DELTA_H
#define OTACHAIN_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fetch.h"

#define OTA_DELTA_MAGIC          "OTADELTA"
#define OTA_DELTA_VERSION        1
#define OTA_DELTA_HEADER_LEN     104
#define OTA_DELTA_WINDOW_LOG_MIN 10
#define OTA_DELTA_WINDOW_LOG_MAX 22
/* Cap on from_length and to_length (2^40). */
#define OTA_DELTA_IMAGE_MAX ((uint64_t)1 << 40)

/* Op tags of the op stream. */
#define OTA_DELTA_OP_END    0x00
#define OTA_DELTA_OP_COPY   0x01
#define OTA_DELTA_OP_ADD    0x02
#define OTA_DELTA_OP_INSERT 0x03

/* The parsed header. */
struct ota_delta_info {
    uint64_t from_length;
    uint64_t to_length;
    uint8_t from_sha256[OTA_SHA256_LEN];
    uint8_t to_sha256[OTA_SHA256_LEN];
    unsigned window_log;
    int zstd_level; /* information only */
};

/* Parses and checks the 104-byte header at the start of `data` (len >= 104;
 * later bytes are ignored). Errors: OTA_ERR_BAD_MAGIC, OTA_ERR_TRUNCATED
 * (len < 104), OTA_ERR_FORMAT_VERSION, OTA_ERR_FORMAT, OTA_ERR_UNSUPPORTED,
 * OTA_ERR_TOO_LARGE, as in docs/formats/delta.md. out is zeroed on
 * failure. */
OTA_WUR int ota_delta_header_parse(struct ota_delta_info *out, const void *data, size_t len,
                                   struct ota_detail *det);

/* Reads exactly len bytes of the from-image at offset off into buf; 0 or a
 * negative ota_err (normally OTA_ERR_IO). Never called beyond from_length. */
typedef int (*ota_delta_read_fn)(void *read_ctx, void *buf, size_t len, uint64_t off);

/* A read callback over a file descriptor (read_ctx = int *fd): pread until
 * len bytes are in; OTA_ERR_IO on error or end of file. */
int ota_delta_read_fd(void *read_ctx, void *buf, size_t len, uint64_t off);

struct ota_delta_apply_cfg {
    ota_delta_read_fn read_old; /* required */
    void *read_ctx;
    uint64_t old_length;       /* length of the installed from-image (required) */
    const uint8_t *old_sha256; /* its SHA-256, or NULL: not checked */
    const uint8_t *to_sha256;  /* SHA-256 from signed targets, or NULL: not checked */
    uint64_t to_length;        /* length from signed targets; checked when to_sha256 != NULL */
    ota_sink_fn sink;          /* receives the to-image in order (required) */
    void *sink_ctx;
};

struct ota_delta_apply;

/* Creates an applier (fixed-size state; the zstd workspace comes once the
 * header is in). cfg is copied, but the hashes it points to must stay
 * valid until the header has been fed. OTA_ERR_INVALID_ARG, OTA_ERR_NOMEM. */
OTA_WUR int ota_delta_apply_new(struct ota_delta_apply **out,
                                const struct ota_delta_apply_cfg *cfg);

/* Feeds the next len bytes of the delta. Produces output as far as the
 * bytes allow (calling read_old and sink). Returns 0 or the first error,
 * which is sticky: every later call returns it again. The sink's and
 * read_old's errors are returned as they are. After a failure the bytes
 * already handed to the sink are a prefix of an unverified image: the
 * caller discards them or checks them like any other bytes. */
OTA_WUR int ota_delta_apply_feed(struct ota_delta_apply *a, const void *data, size_t len,
                                 struct ota_detail *det);

/* Says that no more bytes will come. 0 if the delta was complete (END
 * reached, its frame ended, exactly to_length bytes produced);
 * OTA_ERR_TRUNCATED if it stopped early; the sticky error if any. */
OTA_WUR int ota_delta_apply_finish(struct ota_delta_apply *a, struct ota_detail *det);

/* The header, once it has been fed and accepted; OTA_ERR_INVALID_ARG before. */
OTA_WUR int ota_delta_apply_info(struct ota_delta_info *out, const struct ota_delta_apply *a);

/* Bytes of output produced so far. */
uint64_t ota_delta_apply_produced(const struct ota_delta_apply *a);

/* A frame boundary: everything needed to continue from there. */
struct ota_delta_resume {
    uint64_t delta_offset; /* delta bytes consumed (header + whole frames) */
    uint64_t out_offset;   /* output bytes produced before it */
    uint64_t old_cursor;   /* the from-image cursor there */
};

/* The latest frame boundary reached ({104, 0, 0} right after the header).
 * OTA_ERR_INVALID_ARG before the header is in. */
OTA_WUR int ota_delta_apply_checkpoint(struct ota_delta_resume *out,
                                       const struct ota_delta_apply *a);

/* On a fresh applier that has been fed exactly the header (and nothing
 * else): continue at rp, a checkpoint taken earlier from the same delta.
 * The next bytes fed must be the delta from rp->delta_offset, and the sink
 * continues at rp->out_offset. OTA_ERR_INVALID_ARG if the applier is not
 * at that point or rp is out of range for the header. */
OTA_WUR int ota_delta_apply_resume(struct ota_delta_apply *a, const struct ota_delta_resume *rp,
                                   struct ota_detail *det);

/* Bytes the applier holds now (state + zstd workspace). */
size_t ota_delta_apply_mem(const struct ota_delta_apply *a);

/* Upper bound of ota_delta_apply_mem for any delta (window_log 22):
 * about 4.6 MiB. */
size_t ota_delta_apply_mem_max(void);

/* Frees; accepts NULL. */
void ota_delta_apply_free(struct ota_delta_apply *a);

#endif
