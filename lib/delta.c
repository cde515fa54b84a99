/* Reference delta applier (see otachain/delta.h, docs/formats/delta.md).
 *
 * Input state machine (the delta's bytes, any piece size):
 *
 *   HEADER --104 bytes, accepted--> FRAME_HDR --frame header ok--> FRAME
 *                                      ^                             |
 *                                      +--- frame ended before END --+
 *                                                                    |
 *                                  DONE <--- frame ended after END --+
 *   any error: FAILED (sticky)     (DONE refuses further bytes)
 *
 * Op parser (the decoded op stream, any piece size):
 *
 *   TAG --COPY/ADD--> SEEK --> LEN --COPY: run it--> TAG
 *     |                         +---ADD---> ADD_DATA --len bytes--> TAG
 *     +--INSERT--> LEN --> INSERT_DATA --len bytes--> TAG
 *     +--END--> ENDED (no further op byte)
 *
 * Invariants:
 *  1. produced <= to_length: every op is checked against the room left
 *     before it outputs a byte, so the sink never sees more.
 *  2. Every read_old call lies inside [0, from_length): COPY/ADD ranges
 *     are checked when their length is parsed.
 *  3. A frame may end only at an op boundary (op state TAG or ENDED), so
 *     (consumed, produced, cursor) at a frame end is the whole state: a
 *     resume point.
 *  4. Memory: the state struct and, from the header on, one static zstd
 *     workspace for 2^window_log; zstd allocates nothing else.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include "otachain/delta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define DEC_BUF_LEN 65536 /* decoded op bytes per zstd call */
#define OLD_BUF_LEN 65536 /* from-image bytes per read_old call */

enum ap_state { AP_HEADER, AP_FRAME_HDR, AP_FRAME, AP_DONE, AP_FAILED };
enum op_state { OP_TAG, OP_SEEK, OP_LEN, OP_ADD_DATA, OP_INSERT_DATA, OP_ENDED };

struct ota_delta_apply {
    struct ota_delta_apply_cfg cfg;
    enum ap_state st;
    int err; /* sticky error when st == AP_FAILED */
    struct ota_delta_info info;
    uint8_t hdr[OTA_DELTA_HEADER_LEN];
    size_t hdr_len;
    uint8_t fh[ZSTD_FRAMEHEADERSIZE_MAX]; /* current frame's header */
    size_t fh_len;
    void *ws; /* static zstd workspace */
    size_t ws_len;
    ZSTD_DStream *zd;
    uint64_t consumed;          /* delta bytes taken in whole frames + header */
    uint64_t frame_in;          /* bytes of the current frame taken so far */
    struct ota_delta_resume ck; /* latest frame boundary */
    /* op parser */
    enum op_state op;
    uint8_t tag;
    uint64_t vacc; /* varint being read */
    unsigned vbytes;
    uint64_t seekv;  /* zigzag seek of the current COPY/ADD */
    uint64_t pos;    /* from-image position of the current ADD's next byte */
    uint64_t remain; /* data bytes left in the current ADD/INSERT */
    uint64_t cursor; /* old cursor */
    uint64_t produced;
    uint64_t opoff; /* op stream bytes parsed (for messages) */
    uint8_t dec[DEC_BUF_LEN];
    uint8_t oldb[OLD_BUF_LEN];
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int ota_delta_header_parse(struct ota_delta_info *out, const void *data, size_t len,
                           struct ota_detail *det)
{
    const uint8_t *p = data;
    size_t m = len < 8 ? len : 8;
    uint32_t version;
    size_t i;

    if (out == NULL || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (memcmp(p, OTA_DELTA_MAGIC, m) != 0) {
        ota_detail_set(det, "delta: not an otachain delta (magic)");
        return OTA_ERR_BAD_MAGIC;
    }
    if (len < OTA_DELTA_HEADER_LEN) {
        ota_detail_set(det, "delta: header needs %d bytes, got %zu", OTA_DELTA_HEADER_LEN, len);
        return OTA_ERR_TRUNCATED;
    }
    version = le32(p + 8);
    if (version != OTA_DELTA_VERSION) {
        ota_detail_set(det, "delta: format version %u (this build reads %d)", (unsigned)version,
                       OTA_DELTA_VERSION);
        return OTA_ERR_FORMAT_VERSION;
    }
    if (le32(p + 12) != 0) {
        ota_detail_set(det, "delta: flags 0x%08x not 0", (unsigned)le32(p + 12));
        return OTA_ERR_FORMAT;
    }
    for (i = 19; i < 24; i++) {
        if (p[i] != 0) {
            ota_detail_set(det, "delta: reserved header byte %zu not 0", i);
            return OTA_ERR_FORMAT;
        }
    }
    if (p[17] < OTA_DELTA_WINDOW_LOG_MIN) {
        ota_detail_set(det, "delta: window_log %u below %d", p[17], OTA_DELTA_WINDOW_LOG_MIN);
        return OTA_ERR_FORMAT;
    }
    if (p[16] != 1) {
        ota_detail_set(det, "delta: compression %u (only 1 = zstd is defined)", p[16]);
        return OTA_ERR_UNSUPPORTED;
    }
    if (p[17] > OTA_DELTA_WINDOW_LOG_MAX) {
        ota_detail_set(det, "delta: window_log %u above the device cap %d", p[17],
                       OTA_DELTA_WINDOW_LOG_MAX);
        return OTA_ERR_TOO_LARGE;
    }
    out->from_length = le64(p + 24);
    out->to_length = le64(p + 32);
    if (out->from_length > OTA_DELTA_IMAGE_MAX || out->to_length > OTA_DELTA_IMAGE_MAX) {
        ota_detail_set(det, "delta: image length above 2^40 (from %llu, to %llu)",
                       (unsigned long long)out->from_length, (unsigned long long)out->to_length);
        memset(out, 0, sizeof(*out));
        return OTA_ERR_TOO_LARGE;
    }
    memcpy(out->from_sha256, p + 40, OTA_SHA256_LEN);
    memcpy(out->to_sha256, p + 72, OTA_SHA256_LEN);
    out->window_log = p[17];
    out->zstd_level = (int8_t)p[18];
    return 0;
}

int ota_delta_read_fd(void *read_ctx, void *buf, size_t len, uint64_t off)
{
    int fd;
    size_t done = 0;

    if (read_ctx == NULL || (buf == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    fd = *(const int *)read_ctx;
    while (done < len) {
        ssize_t r;

        if (off > (uint64_t)INT64_MAX - len)
            return OTA_ERR_IO;
        r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return OTA_ERR_IO; /* error, or the image is shorter than it should be */
        done += (size_t)r;
    }
    return 0;
}

static int fail(struct ota_delta_apply *a, int err)
{
    a->st = AP_FAILED;
    a->err = err;
    return err;
}

int ota_delta_apply_new(struct ota_delta_apply **out, const struct ota_delta_apply_cfg *cfg)
{
    struct ota_delta_apply *a;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (cfg == NULL || cfg->read_old == NULL || cfg->sink == NULL)
        return OTA_ERR_INVALID_ARG;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return OTA_ERR_NOMEM;
    a->cfg = *cfg;
    a->st = AP_HEADER;
    a->op = OP_TAG;
    *out = a;
    return 0;
}

/* The header is in: check it against what the caller knows, then set up
 * the decoder. */
static int on_header(struct ota_delta_apply *a, struct ota_detail *det)
{
    struct ota_delta_info *in = &a->info;
    const struct ota_delta_apply_cfg *c = &a->cfg;
    size_t r;
    int rc;

    rc = ota_delta_header_parse(in, a->hdr, sizeof(a->hdr), det);
    if (rc != 0)
        return rc;
    if (in->from_length != c->old_length) {
        ota_detail_set(det, "delta: made for a from-image of %llu bytes, installed image has %llu",
                       (unsigned long long)in->from_length, (unsigned long long)c->old_length);
        return OTA_ERR_DELTA_BASE;
    }
    if (c->old_sha256 != NULL && !ota_ct_equal(c->old_sha256, in->from_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "delta: made for another from-image (SHA-256 differs)");
        return OTA_ERR_DELTA_BASE;
    }
    if (c->to_sha256 != NULL) {
        if (in->to_length != c->to_length) {
            ota_detail_set(det, "delta: produces %llu bytes, signed target has %llu",
                           (unsigned long long)in->to_length, (unsigned long long)c->to_length);
            return OTA_ERR_LENGTH_MISMATCH;
        }
        if (!ota_ct_equal(c->to_sha256, in->to_sha256, OTA_SHA256_LEN)) {
            ota_detail_set(det, "delta: produces another image than the signed target");
            return OTA_ERR_HASH_MISMATCH;
        }
    }
    a->ws_len = ZSTD_estimateDStreamSize((size_t)1 << in->window_log);
    a->ws = malloc(a->ws_len);
    if (a->ws == NULL)
        return OTA_ERR_NOMEM;
    a->zd = ZSTD_initStaticDStream(a->ws, a->ws_len);
    if (a->zd == NULL)
        return OTA_ERR_NOMEM;
    r = ZSTD_DCtx_setParameter(a->zd, ZSTD_d_windowLogMax, (int)in->window_log);
    if (ZSTD_isError(r)) {
        ota_detail_set(det, "delta: zstd: %s", ZSTD_getErrorName(r));
        return OTA_ERR_DECOMPRESS;
    }
    a->consumed = OTA_DELTA_HEADER_LEN;
    a->ck.delta_offset = OTA_DELTA_HEADER_LEN;
    a->st = AP_FRAME_HDR;
    return 0;
}

/* One more byte of an unsigned LEB128 varint; *done once complete. */
static int varint_step(struct ota_delta_apply *a, uint8_t b, int *done, struct ota_detail *det)
{
    *done = 0;
    if (a->vbytes == 9 && b > 1) {
        ota_detail_set(det, "delta: op stream offset %llu: varint longer than 64 bits",
                       (unsigned long long)a->opoff);
        return OTA_ERR_FORMAT;
    }
    a->vacc |= (uint64_t)(b & 0x7f) << (7 * a->vbytes);
    a->vbytes++;
    if (b & 0x80)
        return 0;
    if (b == 0 && a->vbytes > 1) {
        ota_detail_set(det, "delta: op stream offset %llu: non-canonical varint",
                       (unsigned long long)a->opoff);
        return OTA_ERR_FORMAT;
    }
    *done = 1;
    return 0;
}

/* Writes len bytes of the from-image at pos to the sink. */
static int copy_old(struct ota_delta_apply *a, uint64_t pos, uint64_t len, struct ota_detail *det)
{
    while (len > 0) {
        size_t k = len < OLD_BUF_LEN ? (size_t)len : OLD_BUF_LEN;
        int rc = a->cfg.read_old(a->cfg.read_ctx, a->oldb, k, pos);

        if (rc != 0) {
            ota_detail_set(det, "delta: reading the from-image at %llu failed",
                           (unsigned long long)pos);
            return rc < 0 ? rc : OTA_ERR_IO;
        }
        rc = a->cfg.sink(a->cfg.sink_ctx, a->oldb, k);
        if (rc != 0) {
            ota_detail_set(det, "delta: output refused at offset %llu",
                           (unsigned long long)a->produced);
            return rc < 0 ? rc : OTA_ERR_IO;
        }
        a->produced += k;
        pos += k;
        len -= k;
    }
    return 0;
}

/* The length of a COPY/ADD/INSERT is in: check the op, then run a COPY or
 * arm the data states. */
static int op_start(struct ota_delta_apply *a, uint64_t len, struct ota_detail *det)
{
    uint64_t p = 0;

    if (len == 0) {
        ota_detail_set(det, "delta: op stream offset %llu: op of length 0",
                       (unsigned long long)a->opoff);
        return OTA_ERR_FORMAT;
    }
    if (a->tag != OTA_DELTA_OP_INSERT) {
        uint64_t from_len = a->info.from_length;
        int back = (int)(a->seekv & 1);
        uint64_t mag = (a->seekv >> 1) + (uint64_t)back; /* |seek| */

        if (back ? mag > a->cursor : mag > from_len - a->cursor) {
            ota_detail_set(det,
                           "delta: op stream offset %llu: seek %s%llu from %llu leaves the "
                           "from-image (%llu bytes)",
                           (unsigned long long)a->opoff, back ? "-" : "+", (unsigned long long)mag,
                           (unsigned long long)a->cursor, (unsigned long long)from_len);
            return OTA_ERR_DELTA_RANGE;
        }
        p = back ? a->cursor - mag : a->cursor + mag;
        if (len > from_len - p) {
            ota_detail_set(det,
                           "delta: op stream offset %llu: reads [%llu, +%llu) beyond the "
                           "from-image (%llu bytes)",
                           (unsigned long long)a->opoff, (unsigned long long)p,
                           (unsigned long long)len, (unsigned long long)from_len);
            return OTA_ERR_DELTA_RANGE;
        }
    }
    if (len > a->info.to_length - a->produced) {
        ota_detail_set(det,
                       "delta: op stream offset %llu: %llu more bytes would exceed the declared "
                       "to-length %llu (at %llu)",
                       (unsigned long long)a->opoff, (unsigned long long)len,
                       (unsigned long long)a->info.to_length, (unsigned long long)a->produced);
        return OTA_ERR_DELTA_OVERRUN;
    }
    switch (a->tag) {
    case OTA_DELTA_OP_COPY:
        a->cursor = p + len;
        a->op = OP_TAG;
        return copy_old(a, p, len, det);
    case OTA_DELTA_OP_ADD:
        a->cursor = p + len;
        a->pos = p;
        a->remain = len;
        a->op = OP_ADD_DATA;
        return 0;
    default:
        a->remain = len;
        a->op = OP_INSERT_DATA;
        return 0;
    }
}

/* Consumes n decoded op bytes. */
static int ops_consume(struct ota_delta_apply *a, const uint8_t *buf, size_t n,
                       struct ota_detail *det)
{
    size_t i = 0;
    int done;
    int rc;

    while (i < n) {
        switch (a->op) {
        case OP_ENDED:
            ota_detail_set(det, "delta: op stream offset %llu: bytes after END",
                           (unsigned long long)a->opoff);
            return OTA_ERR_TRAILING_DATA;
        case OP_TAG:
            a->tag = buf[i++];
            a->vacc = 0;
            a->vbytes = 0;
            switch (a->tag) {
            case OTA_DELTA_OP_END:
                if (a->produced != a->info.to_length) {
                    ota_detail_set(det, "delta: END after %llu bytes, declared to-length %llu",
                                   (unsigned long long)a->produced,
                                   (unsigned long long)a->info.to_length);
                    return OTA_ERR_LENGTH_MISMATCH;
                }
                a->op = OP_ENDED;
                break;
            case OTA_DELTA_OP_COPY:
            case OTA_DELTA_OP_ADD:
                a->op = OP_SEEK;
                break;
            case OTA_DELTA_OP_INSERT:
                a->op = OP_LEN;
                break;
            default:
                ota_detail_set(det, "delta: op stream offset %llu: unknown op 0x%02x",
                               (unsigned long long)a->opoff, a->tag);
                return OTA_ERR_FORMAT;
            }
            a->opoff++;
            break;
        case OP_SEEK:
        case OP_LEN:
            rc = varint_step(a, buf[i++], &done, det);
            if (rc != 0)
                return rc;
            a->opoff++;
            if (!done)
                break;
            if (a->op == OP_SEEK) {
                a->seekv = a->vacc;
                a->vacc = 0;
                a->vbytes = 0;
                a->op = OP_LEN;
                break;
            }
            rc = op_start(a, a->vacc, det);
            if (rc != 0)
                return rc;
            break;
        case OP_ADD_DATA:
        case OP_INSERT_DATA: {
            size_t k = n - i;
            const uint8_t *out = buf + i;

            if (k > a->remain)
                k = (size_t)a->remain;
            if (a->op == OP_ADD_DATA) {
                size_t j;

                if (k > OLD_BUF_LEN)
                    k = OLD_BUF_LEN;
                rc = a->cfg.read_old(a->cfg.read_ctx, a->oldb, k, a->pos);
                if (rc != 0) {
                    ota_detail_set(det, "delta: reading the from-image at %llu failed",
                                   (unsigned long long)a->pos);
                    return rc < 0 ? rc : OTA_ERR_IO;
                }
                for (j = 0; j < k; j++)
                    a->oldb[j] = (uint8_t)(a->oldb[j] + buf[i + j]);
                a->pos += k;
                out = a->oldb;
            }
            rc = a->cfg.sink(a->cfg.sink_ctx, out, k);
            if (rc != 0) {
                ota_detail_set(det, "delta: output refused at offset %llu",
                               (unsigned long long)a->produced);
                return rc < 0 ? rc : OTA_ERR_IO;
            }
            a->produced += k;
            a->remain -= k;
            a->opoff += k;
            i += k;
            if (a->remain == 0)
                a->op = OP_TAG;
            break;
        }
        }
    }
    return 0;
}

/* Collects the next frame's header byte by byte and checks it; then hands
 * the bytes to zstd. Returns bytes used from p. */
static int frame_header(struct ota_delta_apply *a, const uint8_t *p, size_t n, size_t *used,
                        struct ota_detail *det)
{
    ZSTD_frameHeader zfh;
    size_t r = 1;

    *used = 0;
    while (*used < n) {
        a->fh[a->fh_len++] = p[(*used)++];
        r = ZSTD_getFrameHeader(&zfh, a->fh, a->fh_len);
        if (ZSTD_isError(r)) {
            ota_detail_set(det, "delta offset %llu: not a zstd frame: %s",
                           (unsigned long long)a->consumed, ZSTD_getErrorName(r));
            return OTA_ERR_DECOMPRESS;
        }
        if (r == 0)
            break;
        if (a->fh_len == sizeof(a->fh)) { /* cannot happen: zstd needs at most this */
            ota_detail_set(det, "delta offset %llu: zstd frame header too long",
                           (unsigned long long)a->consumed);
            return OTA_ERR_DECOMPRESS;
        }
    }
    if (r != 0)
        return 0; /* need more bytes */
    if (zfh.frameType != ZSTD_frame || zfh.dictID != 0 || !zfh.checksumFlag) {
        ota_detail_set(det,
                       "delta offset %llu: frame must be a zstd frame without dictionary "
                       "and with a content checksum",
                       (unsigned long long)a->consumed);
        return OTA_ERR_FORMAT;
    }
    if (zfh.windowSize > ((unsigned long long)1 << a->info.window_log)) {
        ota_detail_set(det, "delta offset %llu: frame window %llu above 2^%u",
                       (unsigned long long)a->consumed, (unsigned long long)zfh.windowSize,
                       a->info.window_log);
        return OTA_ERR_TOO_LARGE;
    }
    a->st = AP_FRAME;
    a->frame_in = 0;
    return 0;
}

/* Decodes from p (at most n bytes, never past the frame's end). */
static int frame_data(struct ota_delta_apply *a, const uint8_t *p, size_t n, size_t *used,
                      struct ota_detail *det)
{
    ZSTD_inBuffer in = {p, n, 0};
    int rc;

    for (;;) {
        ZSTD_outBuffer out = {a->dec, sizeof(a->dec), 0};
        size_t r = ZSTD_decompressStream(a->zd, &out, &in);

        if (ZSTD_isError(r)) {
            *used = in.pos;
            ota_detail_set(det, "delta offset %llu: zstd: %s",
                           (unsigned long long)(a->consumed + a->frame_in + in.pos),
                           ZSTD_getErrorName(r));
            return OTA_ERR_DECOMPRESS;
        }
        if (out.pos > 0) {
            rc = ops_consume(a, a->dec, out.pos, det);
            if (rc != 0)
                return rc;
        }
        if (r == 0) { /* frame complete, all decoded bytes handed out */
            *used = in.pos;
            a->consumed += a->frame_in + in.pos;
            a->frame_in = 0;
            a->fh_len = 0;
            if (a->op != OP_TAG && a->op != OP_ENDED) {
                ota_detail_set(det, "delta offset %llu: frame ends inside an op",
                               (unsigned long long)a->consumed);
                return OTA_ERR_FORMAT;
            }
            if (a->op == OP_ENDED) {
                a->st = AP_DONE;
            } else {
                a->st = AP_FRAME_HDR;
                a->ck.delta_offset = a->consumed;
                a->ck.out_offset = a->produced;
                a->ck.old_cursor = a->cursor;
            }
            return 0;
        }
        if (in.pos == in.size && out.pos < out.size)
            break; /* everything decodable from this input is out */
    }
    *used = in.pos;
    a->frame_in += in.pos;
    return 0;
}

int ota_delta_apply_feed(struct ota_delta_apply *a, const void *data, size_t len,
                         struct ota_detail *det)
{
    const uint8_t *p = data;
    int rc = 0;

    if (a == NULL || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (a->st == AP_FAILED) {
        ota_detail_set(det, "delta: applier already failed");
        return a->err;
    }
    while (len > 0) {
        size_t used = 0;

        switch (a->st) {
        case AP_HEADER:
            while (len > 0 && a->hdr_len < OTA_DELTA_HEADER_LEN) {
                if (a->hdr_len < 8 && *p != (uint8_t)OTA_DELTA_MAGIC[a->hdr_len]) {
                    ota_detail_set(det, "delta: not an otachain delta (magic byte %zu)",
                                   a->hdr_len);
                    return fail(a, OTA_ERR_BAD_MAGIC);
                }
                a->hdr[a->hdr_len++] = *p++;
                len--;
            }
            if (a->hdr_len == OTA_DELTA_HEADER_LEN) {
                rc = on_header(a, det);
                if (rc != 0)
                    return fail(a, rc);
            }
            continue;
        case AP_FRAME_HDR: {
            rc = frame_header(a, p, len, &used, det);
            if (rc != 0)
                return fail(a, rc);
            p += used;
            len -= used;
            if (a->st == AP_FRAME) {
                /* zstd has not seen the header bytes yet. */
                size_t hused = 0;

                rc = frame_data(a, a->fh, a->fh_len, &hused, det);
                if (rc != 0)
                    return fail(a, rc);
            }
            continue;
        }
        case AP_FRAME:
            rc = frame_data(a, p, len, &used, det);
            if (rc != 0)
                return fail(a, rc);
            p += used;
            len -= used;
            continue;
        case AP_DONE:
            ota_detail_set(det, "delta offset %llu: bytes after the last frame",
                           (unsigned long long)a->consumed);
            return fail(a, OTA_ERR_TRAILING_DATA);
        case AP_FAILED:
            return a->err;
        }
    }
    return 0;
}

int ota_delta_apply_finish(struct ota_delta_apply *a, struct ota_detail *det)
{
    if (a == NULL)
        return OTA_ERR_INVALID_ARG;
    if (a->st == AP_FAILED)
        return a->err;
    if (a->st == AP_DONE)
        return 0;
    ota_detail_set(det, "delta: input ended after %llu bytes, before the end of the delta",
                   (unsigned long long)(a->st == AP_HEADER
                                            ? a->hdr_len
                                            : a->consumed + a->frame_in + a->fh_len));
    return fail(a, OTA_ERR_TRUNCATED);
}

int ota_delta_apply_info(struct ota_delta_info *out, const struct ota_delta_apply *a)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (a == NULL || a->zd == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = a->info;
    return 0;
}

uint64_t ota_delta_apply_produced(const struct ota_delta_apply *a)
{
    return a == NULL ? 0 : a->produced;
}

int ota_delta_apply_checkpoint(struct ota_delta_resume *out, const struct ota_delta_apply *a)
{
    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (a == NULL || a->zd == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = a->ck;
    return 0;
}

int ota_delta_apply_resume(struct ota_delta_apply *a, const struct ota_delta_resume *rp,
                           struct ota_detail *det)
{
    if (a == NULL || rp == NULL)
        return OTA_ERR_INVALID_ARG;
    if (a->st != AP_FRAME_HDR || a->fh_len != 0 || a->consumed != OTA_DELTA_HEADER_LEN ||
        a->produced != 0) {
        ota_detail_set(det, "delta: resume only right after the header");
        return OTA_ERR_INVALID_ARG;
    }
    if (rp->delta_offset < OTA_DELTA_HEADER_LEN || rp->out_offset > a->info.to_length ||
        rp->old_cursor > a->info.from_length) {
        ota_detail_set(det, "delta: resume point out of range for this delta");
        return OTA_ERR_INVALID_ARG;
    }
    a->consumed = rp->delta_offset;
    a->produced = rp->out_offset;
    a->cursor = rp->old_cursor;
    a->ck = *rp;
    return 0;
}

size_t ota_delta_apply_mem(const struct ota_delta_apply *a)
{
    return a == NULL ? 0 : sizeof(*a) + a->ws_len;
}

size_t ota_delta_apply_mem_max(void)
{
    return sizeof(struct ota_delta_apply) +
           ZSTD_estimateDStreamSize((size_t)1 << OTA_DELTA_WINDOW_LOG_MAX);
}

void ota_delta_apply_free(struct ota_delta_apply *a)
{
    if (a == NULL)
        return;
    free(a->ws);
    free(a);
}
