/* Pack reader (see otachain/pack.h, docs/formats/pack.md).
 *
 * States:
 *
 *   IDLE --begin--> ACTIVE --feed (frame ends)--> DONE --finish--> IDLE
 *                     |  \__feed (more input)__/    |
 *                     +--error--> FAILED <--error---+
 *   finish from ACTIVE: truncated or decompress error.
 *
 * Invariants: in ACTIVE and DONE, fed <= e->zlength and produced <=
 * e->length (the zstd output buffer is exactly e->length bytes, so the
 * decoder can never write more). Every path into FAILED or a failed
 * finish wipes out[0..e->length).
 */
#include "otachain/pack.h"

#include <inttypes.h>
#include <stdlib.h>

#include <zstd.h>

#include "otachain/crypto.h"

enum pack_state { PACK_IDLE, PACK_ACTIVE, PACK_DONE, PACK_FAILED };

struct ota_pack_reader {
    ZSTD_DCtx *dctx;
    enum pack_state state;
    uint8_t *out;
    const struct ota_chunk_entry *e;
    uint64_t fed;    /* frame bytes consumed so far */
    size_t produced; /* output bytes so far */
};

int ota_pack_reader_new(struct ota_pack_reader **out)
{
    struct ota_pack_reader *r;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return OTA_ERR_NOMEM;
    r->dctx = ZSTD_createDCtx();
    if (r->dctx == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax,
                                                               OTA_PACK_WINDOW_LOG_MAX))) {
        ZSTD_freeDCtx(r->dctx);
        free(r);
        return OTA_ERR_NOMEM;
    }
    r->state = PACK_IDLE;
    *out = r;
    return 0;
}

void ota_pack_reader_free(struct ota_pack_reader *r)
{
    if (r == NULL)
        return;
    ZSTD_freeDCtx(r->dctx);
    free(r);
}

/* Wipes the output, resets the decoder, returns rc. */
static int pack_fail(struct ota_pack_reader *r, int rc)
{
    if (r->out != NULL && r->e != NULL)
        ota_wipe(r->out, r->e->length);
    (void)ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    r->state = PACK_FAILED;
    return rc;
}

int ota_pack_reader_begin(struct ota_pack_reader *r, uint8_t *out, size_t out_cap,
                          const struct ota_chunk_entry *e)
{
    if (r == NULL || out == NULL || e == NULL || e->length == 0 || out_cap < e->length ||
        e->zlength == 0)
        return OTA_ERR_INVALID_ARG;
    if (ZSTD_isError(ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only)))
        return OTA_ERR_INVALID_ARG;
    r->out = out;
    r->e = e;
    r->fed = 0;
    r->produced = 0;
    r->state = PACK_ACTIVE;
    return 0;
}

int ota_pack_reader_feed(struct ota_pack_reader *r, const void *data, size_t n,
                         struct ota_detail *det)
{
    ZSTD_inBuffer in;

    if (r == NULL || (data == NULL && n > 0) || (r->state != PACK_ACTIVE && r->state != PACK_DONE))
        return OTA_ERR_INVALID_ARG;
    if (n > r->e->zlength - r->fed) {
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 ": more than its %" PRIu32 " compressed bytes",
                       r->e->offset, r->e->zlength);
        return pack_fail(r, OTA_ERR_TOO_LARGE);
    }
    if (n > 0 && r->state == PACK_DONE) {
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 ": zstd frame ends before its %" PRIu32 " bytes",
                       r->e->offset, r->e->zlength);
        return pack_fail(r, OTA_ERR_DECOMPRESS);
    }
    in.src = data;
    in.size = n;
    in.pos = 0;
    while (in.pos < in.size) {
        ZSTD_outBuffer ob = {r->out, r->e->length, r->produced};
        size_t before_in = in.pos;
        size_t ret = ZSTD_decompressStream(r->dctx, &ob, &in);

        if (ZSTD_isError(ret)) {
            ota_detail_set(det, "chunk at offset %" PRIu64 ": zstd: %s", r->e->offset,
                           ZSTD_getErrorName(ret));
            return pack_fail(r, OTA_ERR_DECOMPRESS);
        }
        if (ret == 0) {
            r->produced = ob.pos;
            r->fed += in.pos;
            r->state = PACK_DONE;
            if (in.pos < in.size) {
                ota_detail_set(det,
                               "chunk at offset %" PRIu64 ": zstd frame ends before its %" PRIu32
                               " bytes",
                               r->e->offset, r->e->zlength);
                return pack_fail(r, OTA_ERR_DECOMPRESS);
            }
            return 0;
        }
        if (in.pos == before_in && ob.pos == r->produced) {
            /* Output full, frame not finished: it decodes to more. */
            ota_detail_set(det,
                           "chunk at offset %" PRIu64 ": decodes to more than %" PRIu32 " bytes",
                           r->e->offset, r->e->length);
            return pack_fail(r, OTA_ERR_DECOMPRESS);
        }
        r->produced = ob.pos;
    }
    r->fed += n;
    return 0;
}

int ota_pack_reader_finish(struct ota_pack_reader *r, struct ota_detail *det)
{
    uint8_t h[OTA_SHA256_LEN];
    int rc;

    if (r == NULL || (r->state != PACK_ACTIVE && r->state != PACK_DONE))
        return OTA_ERR_INVALID_ARG;
    if (r->state == PACK_ACTIVE) {
        if (r->fed < r->e->zlength) {
            ota_detail_set(
                det, "chunk at offset %" PRIu64 ": %" PRIu64 " of %" PRIu32 " compressed bytes",
                r->e->offset, r->fed, r->e->zlength);
            return pack_fail(r, OTA_ERR_TRUNCATED);
        }
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 ": zstd frame does not end within its %" PRIu32
                       " bytes",
                       r->e->offset, r->e->zlength);
        return pack_fail(r, OTA_ERR_DECOMPRESS);
    }
    if (r->fed != r->e->zlength) {
        /* Unreachable: feed refuses input after the frame's end. */
        return pack_fail(r, OTA_ERR_DECOMPRESS);
    }
    if (r->produced != r->e->length) {
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 ": decodes to %zu bytes, index says %" PRIu32,
                       r->e->offset, r->produced, r->e->length);
        return pack_fail(r, OTA_ERR_DECOMPRESS);
    }
    rc = ota_sha256(h, r->out, r->produced);
    if (rc != 0)
        return pack_fail(r, rc);
    if (!ota_ct_equal(h, r->e->sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 " (%" PRIu32 " bytes): SHA-256 differs "
                       "from the index",
                       r->e->offset, r->e->length);
        return pack_fail(r, OTA_ERR_HASH_MISMATCH);
    }
    r->state = PACK_IDLE;
    r->out = NULL;
    r->e = NULL;
    return 0;
}

int ota_pack_decode_chunk(uint8_t *out, size_t out_cap, struct ota_pack_reader *r,
                          const uint8_t *frame, size_t frame_len, const struct ota_chunk_entry *e,
                          struct ota_detail *det)
{
    int rc;

    rc = ota_pack_reader_begin(r, out, out_cap, e);
    if (rc != 0)
        return rc;
    if (frame_len != e->zlength) {
        ota_detail_set(det, "chunk at offset %" PRIu64 ": frame of %zu bytes, index says %" PRIu32,
                       e->offset, frame_len, e->zlength);
        return pack_fail(r, OTA_ERR_LENGTH_MISMATCH);
    }
    rc = ota_pack_reader_feed(r, frame, frame_len, det);
    if (rc != 0)
        return rc;
    return ota_pack_reader_finish(r, det);
}
