/* Chunk index and pack writer (see otachain/chunk_build.h).
 *
 * Chunks are processed in batches of `slots` chunks so that hashing and
 * compression can run on several threads; the output does not depend on
 * the number of threads (each frame is compressed alone, with the same
 * parameters, and everything is emitted in image order).
 *
 *   update: bytes -> chunker -> slot k's data area; a cut completes slot k
 *   flush (batch full, or finish):
 *     1. parallel    SHA-256 of every slot
 *     2. sequential  repeat lookup in image order (earlier batches and
 *                    earlier slots of this batch)
 *     3. parallel    compress every first occurrence into its frame area
 *     4. sequential  entries, index bytes, sink calls, in image order
 *
 * Invariants between calls: slots [0, nfull) hold complete chunks not yet
 * flushed; slot nfull holds the current chunk's first chunker.pos bytes;
 * entries/e hold count chunks already emitted; off and zoff are the image
 * and pack lengths emitted so far.
 */
#include "otachain/chunk_build.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "otachain/crypto.h"
#include "otachain/fsutil.h"

#include "chunk_index_int.h"

#define BUILD_READ_BLOCK       (1u << 20)
#define BUILD_SLOTS_PER_THREAD 8u

struct slot {
    uint32_t len;
    uint32_t first; /* chunk index of its first occurrence */
    size_t zlen;    /* frame length (first occurrences) */
    int rc;
    uint8_t sha256[OTA_SHA256_LEN];
};

struct ota_chunk_build {
    struct ota_chunk_build_opts opts;
    struct ota_chunker chunker;
    unsigned threads;
    ZSTD_CCtx **cctx; /* one per thread */
    uint32_t nslots;
    uint32_t nfull;
    struct slot *slot;
    uint8_t *data;  /* nslots * max_size */
    uint8_t *frame; /* nslots * frame_cap */
    size_t frame_cap;
    struct ota_sha256_ctx *image_hash;
    struct ota_buf entries;    /* serialized, as in the index */
    struct ota_chunk_entry *e; /* the same, parsed, for repeat lookups */
    uint32_t e_alloc;
    struct ota_chunk_set seen;
    uint64_t off;
    uint64_t zoff;
    uint64_t image_len;
    uint32_t count;
    ota_chunk_build_sink sink;
    void *sink_ctx;
    int failed;
};

void ota_chunk_build_opts_default(struct ota_chunk_build_opts *opts)
{
    ota_chunker_params_default(&opts->chunker);
    opts->zstd_level = OTA_CHUNK_ZSTD_LEVEL_DEFAULT;
    opts->threads = 1;
}

int ota_chunk_build_level_for(uint64_t image_length)
{
    return image_length <= OTA_CHUNK_SMALL_IMAGE ? OTA_CHUNK_ZSTD_LEVEL_SMALL
                                                 : OTA_CHUNK_ZSTD_LEVEL_DEFAULT;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

int ota_chunk_build_new(struct ota_chunk_build **out, const struct ota_chunk_build_opts *opts,
                        ota_chunk_build_sink sink, void *sink_ctx, struct ota_detail *det)
{
    struct ota_chunk_build *b;
    unsigned t;
    int rc;

    if (out == NULL || opts == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    rc = ota_chunker_params_check(&opts->chunker, det);
    if (rc != 0)
        return rc;
    if (opts->zstd_level < -7 || opts->zstd_level > ZSTD_maxCLevel() || opts->zstd_level == 0) {
        ota_detail_set(det, "zstd level %d is not in -7..-1 or 1..%d", opts->zstd_level,
                       ZSTD_maxCLevel());
        return OTA_ERR_INVALID_ARG;
    }
    if (opts->threads > OTA_CHUNK_BUILD_MAX_THREADS) {
        ota_detail_set(det, "%u threads (at most %u)", opts->threads, OTA_CHUNK_BUILD_MAX_THREADS);
        return OTA_ERR_INVALID_ARG;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return OTA_ERR_NOMEM;
    b->opts = *opts;
    b->threads = opts->threads == 0 ? 1 : opts->threads;
    b->sink = sink;
    b->sink_ctx = sink_ctx;
    ota_buf_init(&b->entries, (size_t)OTA_CHUNK_INDEX_MAX_CHUNKS * OTA_CHUNK_INDEX_ENTRY_LEN);
    rc = ota_chunker_init(&b->chunker, &opts->chunker, det);
    if (rc != 0)
        goto fail;
    rc = OTA_ERR_NOMEM;
    b->nslots = BUILD_SLOTS_PER_THREAD * b->threads;
    b->frame_cap = ZSTD_compressBound(opts->chunker.max_size);
    b->slot = calloc(b->nslots, sizeof(*b->slot));
    b->data = malloc((size_t)b->nslots * opts->chunker.max_size);
    b->frame = malloc((size_t)b->nslots * b->frame_cap);
    b->cctx = calloc(b->threads, sizeof(*b->cctx));
    if (b->slot == NULL || b->data == NULL || b->frame == NULL || b->cctx == NULL)
        goto fail;
    for (t = 0; t < b->threads; t++) {
        ZSTD_CCtx *c = ZSTD_createCCtx();

        b->cctx[t] = c;
        /* Content size on (the default), XXH64 checksum off: the index's
         * SHA-256 supersedes it (docs/formats/pack.md). */
        if (c == NULL ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, opts->zstd_level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)))
            goto fail;
    }
    rc = ota_chunk_set_init(&b->seen, 1024);
    if (rc == 0)
        rc = ota_sha256_init(&b->image_hash);
    if (rc != 0)
        goto fail;
    *out = b;
    return 0;
fail:
    ota_chunk_build_free(b);
    return rc;
}

void ota_chunk_build_free(struct ota_chunk_build *b)
{
    unsigned t;

    if (b == NULL)
        return;
    for (t = 0; b->cctx != NULL && t < b->threads; t++)
        ZSTD_freeCCtx(b->cctx[t]);
    free(b->cctx);
    free(b->slot);
    free(b->data);
    free(b->frame);
    ota_sha256_ctx_free(b->image_hash);
    ota_buf_free(&b->entries);
    free(b->e);
    ota_chunk_set_free(&b->seen);
    free(b);
}

/* Room for n more parsed entries. */
static int grow_entries(struct ota_chunk_build *b, uint32_t n)
{
    struct ota_chunk_entry *ne;
    uint64_t want;

    if ((uint64_t)b->count + n <= b->e_alloc)
        return 0;
    want = b->e_alloc ? (uint64_t)b->e_alloc * 2 : 1024;
    while (want < (uint64_t)b->count + n)
        want *= 2;
    if (want > OTA_CHUNK_INDEX_MAX_CHUNKS)
        want = OTA_CHUNK_INDEX_MAX_CHUNKS;
    ne = realloc(b->e, (size_t)want * sizeof(*ne));
    if (ne == NULL)
        return OTA_ERR_NOMEM;
    b->e = ne;
    b->e_alloc = (uint32_t)want;
    return 0;
}

enum build_phase { PHASE_HASH, PHASE_COMPRESS };

struct worker {
    struct ota_chunk_build *b;
    unsigned tid;
    enum build_phase phase;
};

/* Slots tid, tid + threads, ... of the current batch. */
static void *work(void *arg)
{
    const struct worker *w = arg;
    struct ota_chunk_build *b = w->b;
    uint32_t k;

    for (k = w->tid; k < b->nfull; k += b->threads) {
        struct slot *s = &b->slot[k];
        const uint8_t *src = b->data + (size_t)k * b->opts.chunker.max_size;

        if (w->phase == PHASE_HASH) {
            s->rc = ota_sha256(s->sha256, src, s->len);
        } else if (s->first == b->count + k) {
            size_t z = ZSTD_compress2(b->cctx[w->tid], b->frame + (size_t)k * b->frame_cap,
                                      b->frame_cap, src, s->len);

            /* The only way zstd fails on a bounded output is memory. */
            s->rc =
                ZSTD_isError(z) || z == 0 || z > ota_chunk_index_zbound(s->len) ? OTA_ERR_NOMEM : 0;
            s->zlen = z;
        }
    }
    return NULL;
}

/* Runs a phase on every slot, on b->threads threads (the caller's one
 * included). Returns the first slot error. */
static int run_phase(struct ota_chunk_build *b, enum build_phase phase)
{
    struct worker w[OTA_CHUNK_BUILD_MAX_THREADS];
    pthread_t th[OTA_CHUNK_BUILD_MAX_THREADS];
    unsigned started = 1;
    unsigned t;
    uint32_t k;

    for (t = 0; t < b->threads; t++) {
        w[t].b = b;
        w[t].tid = t;
        w[t].phase = phase;
    }
    for (t = 1; t < b->threads && t < b->nfull; t++) {
        if (pthread_create(&th[t], NULL, work, &w[t]) != 0)
            break;
        started++;
    }
    work(&w[0]);
    /* Slots of threads that could not start run here. */
    for (t = started; t < b->threads; t++)
        work(&w[t]);
    for (t = 1; t < started; t++)
        pthread_join(th[t], NULL);
    for (k = 0; k < b->nfull; k++)
        if (b->slot[k].rc != 0)
            return b->slot[k].rc;
    return 0;
}

/* Emits the nfull complete chunks of the batch. */
static int flush(struct ota_chunk_build *b, struct ota_detail *det)
{
    uint32_t k;
    int rc;

    if (b->nfull == 0)
        return 0;
    if ((uint64_t)b->count + b->nfull > OTA_CHUNK_INDEX_MAX_CHUNKS) {
        ota_detail_set(det, "image has more than 2^24 chunks");
        return OTA_ERR_TOO_LARGE;
    }
    rc = grow_entries(b, b->nfull);
    if (rc != 0)
        return rc;
    for (k = 0; k < b->nfull; k++)
        b->slot[k].rc = 0;
    rc = run_phase(b, PHASE_HASH);
    if (rc != 0)
        return rc;
    /* Repeats, in image order: the set grows as first occurrences come. */
    for (k = 0; k < b->nfull; k++) {
        struct slot *s = &b->slot[k];
        struct ota_chunk_entry *e = &b->e[b->count + k];
        uint32_t first;

        memset(e, 0, sizeof(*e));
        e->length = s->len;
        memcpy(e->sha256, s->sha256, OTA_SHA256_LEN);
        first = ota_chunk_set_find(&b->seen, b->e, s->sha256, s->len);
        s->first = first == OTA_CHUNK_SET_NONE ? b->count + k : first;
        s->zlen = 0;
        if (first == OTA_CHUNK_SET_NONE) {
            rc = ota_chunk_set_add(&b->seen, b->e, b->count + k);
            if (rc != 0)
                return rc;
        }
    }
    rc = run_phase(b, PHASE_COMPRESS);
    if (rc != 0) {
        ota_detail_set(det, "zstd failed (out of memory)");
        return rc;
    }
    for (k = 0; k < b->nfull; k++) {
        const struct slot *s = &b->slot[k];
        struct ota_chunk_entry *e = &b->e[b->count];
        uint8_t raw[OTA_CHUNK_INDEX_ENTRY_LEN];
        int repeat = s->first != b->count;

        e->offset = b->off;
        e->first = s->first;
        if (repeat) {
            e->pack_offset = b->e[s->first].pack_offset;
            e->zlength = b->e[s->first].zlength;
        } else {
            e->pack_offset = b->zoff;
            e->zlength = (uint32_t)s->zlen;
        }
        wr32(raw, e->length);
        wr32(raw + 4, repeat ? 0 : e->zlength);
        memcpy(raw + 8, e->sha256, OTA_SHA256_LEN);
        rc = ota_buf_append(&b->entries, raw, sizeof(raw));
        if (rc != 0)
            return rc;
        if (b->sink != NULL) {
            rc = b->sink(b->sink_ctx, e, repeat ? NULL : b->frame + (size_t)k * b->frame_cap,
                         repeat ? 0 : s->zlen);
            if (rc != 0)
                return rc;
        }
        b->count++;
        b->off += e->length;
        if (!repeat)
            b->zoff += e->zlength;
    }
    b->nfull = 0;
    return 0;
}

int ota_chunk_build_update(struct ota_chunk_build *b, const void *data, size_t len,
                           struct ota_detail *det)
{
    const uint8_t *p = data;
    int rc;

    if (b == NULL || (data == NULL && len > 0) || b->failed)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_CHUNK_INDEX_MAX_IMAGE - b->image_len) {
        ota_detail_set(det, "image is longer than 2^40 bytes");
        b->failed = 1;
        return OTA_ERR_TOO_LARGE;
    }
    rc = ota_sha256_update(b->image_hash, data, len);
    if (rc != 0)
        goto fail;
    b->image_len += len;
    while (len > 0) {
        uint32_t pos = b->chunker.pos;
        uint32_t cut = 0;
        size_t n = ota_chunker_scan(&b->chunker, &cut, p, len);

        memcpy(b->data + (size_t)b->nfull * b->opts.chunker.max_size + pos, p, n);
        p += n;
        len -= n;
        if (cut != 0) {
            b->slot[b->nfull++].len = cut;
            if (b->nfull == b->nslots) {
                rc = flush(b, det);
                if (rc != 0)
                    goto fail;
            }
        }
    }
    return 0;
fail:
    b->failed = 1;
    return rc;
}

int ota_chunk_build_finish(struct ota_buf *index_out, struct ota_chunk_build *b,
                           struct ota_detail *det)
{
    uint8_t h[OTA_CHUNK_INDEX_HEADER_LEN];
    uint32_t last;
    int rc;

    if (index_out == NULL || b == NULL || b->failed)
        return OTA_ERR_INVALID_ARG;
    b->failed = 1; /* spent, whatever happens next */
    last = ota_chunker_end(&b->chunker);
    if (last != 0)
        b->slot[b->nfull++].len = last; /* nfull < nslots: flushed when full */
    rc = flush(b, det);
    if (rc != 0)
        return rc;
    memset(h, 0, sizeof(h));
    memcpy(h, OTA_CHUNK_INDEX_MAGIC, 8);
    wr32(h + 8, OTA_CHUNK_INDEX_VERSION);
    h[16] = OTA_CHUNKER_ID;
    h[17] = (uint8_t)b->opts.chunker.nc_level;
    h[18] = OTA_CHUNK_COMPRESSION_ZSTD;
    h[19] = (uint8_t)(int8_t)b->opts.zstd_level;
    wr32(h + 20, b->opts.chunker.min_size);
    wr32(h + 24, b->opts.chunker.avg_size);
    wr32(h + 28, b->opts.chunker.max_size);
    wr32(h + 32, b->count);
    wr64(h + 40, b->off);
    wr64(h + 48, b->zoff);
    rc = ota_sha256_final(h + 56, b->image_hash);
    if (rc != 0)
        return rc;
    memcpy(h + 88, ota_chunker_gear_sha256, OTA_SHA256_LEN);
    rc = ota_buf_append(index_out, h, sizeof(h));
    if (rc != 0)
        return rc;
    if (b->entries.len > 0)
        rc = ota_buf_append(index_out, b->entries.data, b->entries.len);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ota_fs_errno(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pack_fd_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame,
                        size_t frame_len)
{
    (void)e;
    return write_all(*(const int *)ctx, frame, frame_len);
}

int ota_chunk_build_fd(struct ota_buf *index_out, int pack_fd, int image_fd,
                       const struct ota_chunk_build_opts *opts, struct ota_detail *det)
{
    struct ota_chunk_build *b = NULL;
    uint8_t *buf;
    int rc;

    if (index_out == NULL || image_fd < 0 || opts == NULL)
        return OTA_ERR_INVALID_ARG;
    buf = malloc(BUILD_READ_BLOCK);
    if (buf == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_chunk_build_new(&b, opts, pack_fd >= 0 ? pack_fd_sink : NULL, &pack_fd, det);
    if (rc != 0)
        goto out;
    for (;;) {
        ssize_t r = read(image_fd, buf, BUILD_READ_BLOCK);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = ota_fs_errno(errno);
            ota_detail_set(det, "reading the image");
            goto out;
        }
        if (r == 0)
            break;
        rc = ota_chunk_build_update(b, buf, (size_t)r, det);
        if (rc != 0)
            goto out;
    }
    rc = ota_chunk_build_finish(index_out, b, det);
out:
    ota_chunk_build_free(b);
    free(buf);
    return rc;
}
