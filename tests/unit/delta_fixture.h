/* Shared fixtures of the delta unit tests (test_delta.c, test_delta_make.c):
 * a from-image in memory behind the read callback, a collecting sink,
 * "apply this delta in pieces of n bytes", hand-made deltas (header +
 * zstd frames of a given op stream), a fixed pseudo-random generator.
 * Header only (static), included by the test files. */
#ifndef OTACHAIN_TEST_DELTA_FIXTURE_H
#define OTACHAIN_TEST_DELTA_FIXTURE_H

#define ZSTD_STATIC_LINKING_ONLY
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "otachain/buf.h"
#include "otachain/crypto.h"
#include "otachain/delta.h"

/* splitmix64, so images are the same on every machine. */
static inline uint64_t dx_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline void dx_random(uint8_t *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    size_t i;

    for (i = 0; i < n; i++)
        buf[i] = (uint8_t)(dx_next(&s) >> 24);
}

/* The from-image as the applier sees it; counts reads. */
struct dx_old {
    const uint8_t *p;
    size_t n;
    int fail_at_read; /* 1-based read number that fails with OTA_ERR_IO; 0: never */
    int reads;
};

static inline int dx_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct dx_old *o = ctx;

    o->reads++;
    if (o->fail_at_read != 0 && o->reads == o->fail_at_read)
        return OTA_ERR_IO;
    if (off > o->n || len > o->n - off)
        return OTA_ERR_INVALID_ARG; /* the applier promised never to do this */
    memcpy(buf, o->p + off, len);
    return 0;
}

/* Output collector: everything the sink got, with a hard cap. */
struct dx_out {
    struct ota_buf b;
    int fail_after; /* fail once more than this many bytes would be out; < 0: never */
};

static inline int dx_sink(void *ctx, const void *data, size_t len)
{
    struct dx_out *o = ctx;

    if (o->fail_after >= 0 && o->b.len + len > (size_t)o->fail_after)
        return OTA_ERR_IO;
    return ota_buf_append(&o->b, data, len);
}

/* Applies delta[0..n) to old in pieces of `piece` bytes (0: all at once),
 * with the caller's from-hash and to-hash/length when not NULL; output in
 * out (initialised here, cap 1 GiB; ota_buf_free it). Returns the first
 * error or finish's result. */
static inline int dx_apply_checked(struct dx_out *out, const uint8_t *delta, size_t n,
                                   const uint8_t *old, size_t old_len, size_t piece,
                                   const uint8_t *old_sha, const uint8_t *to_sha, uint64_t to_len,
                                   struct ota_detail *det)
{
    struct dx_old o = {old, old_len, 0, 0};
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;
    size_t i = 0;
    int rc;

    ota_buf_init(&out->b, (size_t)1 << 30);
    out->fail_after = -1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = dx_read;
    cfg.read_ctx = &o;
    cfg.old_length = old_len;
    cfg.old_sha256 = old_sha;
    cfg.to_sha256 = to_sha;
    cfg.to_length = to_len;
    cfg.sink = dx_sink;
    cfg.sink_ctx = out;
    rc = ota_delta_apply_new(&a, &cfg);
    if (rc != 0)
        return rc;
    if (piece == 0)
        piece = n > 0 ? n : 1;
    while (rc == 0 && i < n) {
        size_t k = n - i < piece ? n - i : piece;

        rc = ota_delta_apply_feed(a, delta + i, k, det);
        i += k;
    }
    if (rc == 0)
        rc = ota_delta_apply_finish(a, det);
    ota_delta_apply_free(a);
    return rc;
}

/* The same without the caller's hashes. */
static inline int dx_apply(struct dx_out *out, const uint8_t *delta, size_t n, const uint8_t *old,
                           size_t old_len, size_t piece, struct ota_detail *det)
{
    return dx_apply_checked(out, delta, n, old, old_len, piece, NULL, NULL, 0, det);
}

static inline void dx_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void dx_le64(uint8_t *p, uint64_t v)
{
    dx_le32(p, (uint32_t)v);
    dx_le32(p + 4, (uint32_t)(v >> 32));
}

/* A header for from/to images (hashes computed), window_log wlog. */
static inline void dx_header(uint8_t h[OTA_DELTA_HEADER_LEN], const uint8_t *from, size_t from_len,
                             const uint8_t *to, size_t to_len, unsigned wlog)
{
    memset(h, 0, OTA_DELTA_HEADER_LEN);
    memcpy(h, OTA_DELTA_MAGIC, 8);
    dx_le32(h + 8, OTA_DELTA_VERSION);
    h[16] = 1;
    h[17] = (uint8_t)wlog;
    h[18] = 3;
    dx_le64(h + 24, from_len);
    dx_le64(h + 32, to_len);
    if (ota_sha256(h + 40, from, from_len) != 0 || ota_sha256(h + 72, to, to_len) != 0)
        abort();
}

/* Appends one zstd frame holding ops[0..n) (checksum on unless
 * no_checksum; window 2^wlog). */
static inline void dx_frame(struct ota_buf *d, const void *ops, size_t n, unsigned wlog,
                            int no_checksum)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(n);
    uint8_t *z = malloc(cap);
    size_t r;

    if (c == NULL || z == NULL)
        abort();
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, (int)wlog)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, no_checksum ? 0 : 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)))
        abort();
    r = ZSTD_compress2(c, z, cap, ops, n);
    if (ZSTD_isError(r) || ota_buf_append(d, z, r) != 0)
        abort();
    free(z);
    ZSTD_freeCCtx(c);
}

/* Op stream builder. */
static inline void dx_uvarint(struct ota_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;

    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    if (ota_buf_append(b, t, n) != 0)
        abort();
}

static inline void dx_svarint(struct ota_buf *b, int64_t v)
{
    dx_uvarint(b, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

static inline void dx_tag(struct ota_buf *b, uint8_t tag)
{
    if (ota_buf_append(b, &tag, 1) != 0)
        abort();
}

static inline void dx_copy(struct ota_buf *b, int64_t seek, uint64_t len)
{
    dx_tag(b, OTA_DELTA_OP_COPY);
    dx_svarint(b, seek);
    dx_uvarint(b, len);
}

static inline void dx_add(struct ota_buf *b, int64_t seek, const uint8_t *diff, size_t len)
{
    dx_tag(b, OTA_DELTA_OP_ADD);
    dx_svarint(b, seek);
    dx_uvarint(b, len);
    if (ota_buf_append(b, diff, len) != 0)
        abort();
}

static inline void dx_insert(struct ota_buf *b, const void *data, size_t len)
{
    dx_tag(b, OTA_DELTA_OP_INSERT);
    dx_uvarint(b, len);
    if (ota_buf_append(b, data, len) != 0)
        abort();
}

#endif
