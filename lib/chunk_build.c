/* Chunk index and pack writer (see otachain/chunk_build.h).
 *
 * The caller's thread reads, chunks and hashes; compression, the cost of
 * a build, runs on worker threads when opts.threads >= 2. Chunks are
 * collected in batches (about 2 MiB of image each); a full batch is
 * handed to the workers, and the caller's thread fills the next one
 * meanwhile. Batches are emitted (entries, sink calls) by the caller's
 * thread, in image order. The output does not depend on the number of
 * threads: each frame is compressed alone with the same parameters, and
 * whether a chunk is a first occurrence is decided by the caller's
 * thread, in image order, when the chunk is cut.
 *
 *   update: bytes -> image SHA-256 -> chunker -> current batch's data;
 *           a cut: chunk SHA-256, repeat lookup, entry (sha, length,
 *           first), frame space reserved for a first occurrence;
 *           batch full: submit it, take the next batch (waiting for it and
 *           emitting it if it is still in flight)
 *   workers: compress the first occurrences of submitted batches, oldest
 *           batch first, one chunk at a time
 *   finish: submit the last batch, emit every batch in order, write the
 *           index
 *
 * Without workers (threads 0 or 1, or none could be started) a submitted
 * batch is compressed at once on the caller's thread.
 *
 * Invariants between calls: the current batch has room for one more
 * max-size chunk (data, frame and slot); its first chunker.pos bytes
 * after data_used are the current chunk's; e[0..count) are the entries of
 * every chunk cut so far, of which the first `emitted` carry their
 * offsets; off and zoff are the image and pack lengths emitted.
 */
#include "otachain/chunk_build.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* For ZSTD_c_useRowMatchFinder (see new_cctx); nothing else from zstd's
 * experimental section is used. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "otachain/crypto.h"
#include "otachain/fsutil.h"

#include "chunk_index_int.h"

#define BUILD_READ_BLOCK  (1u << 20)
#define BUILD_BATCH_BYTES (2u << 20) /* image bytes per batch (at least 2 max-size chunks) */
#define BUILD_BATCHES     3u         /* with workers: one filling, two being compressed */

struct slot {
    size_t data_off;  /* in the batch's data */
    size_t frame_off; /* in the batch's frame area (first occurrences) */
    size_t zlen;      /* frame length (first occurrences, once compressed) */
    uint32_t len;
    uint32_t index; /* chunk index in the image */
    int first;      /* first occurrence: has a frame */
    int rc;
};

struct batch {
    uint8_t *data;
    uint8_t *frame;
    struct slot *slot;
    uint32_t n; /* slots used */
    size_t data_used;
    size_t frame_used;
    /* Under mu once submitted: */
    int inflight;     /* submitted, not yet emitted */
    uint64_t seq;     /* submission order */
    uint32_t next;    /* next slot for a worker to look at */
    uint32_t pending; /* frames not yet compressed */
};

struct ota_chunk_build;

struct worker {
    struct ota_chunk_build *b;
    unsigned id; /* its compressor: cctx[id] */
};

struct ota_chunk_build {
    struct ota_chunk_build_opts opts;
    struct ota_chunker chunker;
    size_t frame_bound; /* ZSTD_compressBound(max_size) */
    uint32_t slot_cap;
    size_t data_cap;
    size_t frame_cap;
    unsigned nbatches;
    unsigned cur; /* the batch being filled */
    struct batch batch[BUILD_BATCHES];
    uint64_t seq;
    /* Workers. */
    unsigned nworkers; /* started */
    unsigned ncctx;
    ZSTD_CCtx **cctx; /* one per worker, or one for the caller's thread */
    pthread_t *th;
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a batch was submitted, or stop */
    pthread_cond_t done; /* a batch's last frame was compressed */
    int stop;
    int sync_init;
    /* Entries and the running image state (caller's thread only). */
    struct ota_sha256_ctx *image_hash;
    struct ota_buf entries;    /* serialized, as in the index (emitted chunks) */
    struct ota_chunk_entry *e; /* every chunk cut, for repeat lookups */
    uint32_t e_alloc;
    struct ota_chunk_set seen;
    uint32_t count;   /* chunks cut */
    uint32_t emitted; /* chunks emitted */
    uint64_t off;
    uint64_t zoff;
    uint64_t image_len;
    ota_chunk_build_sink sink;
    void *sink_ctx;
    int failed;
};

void ota_chunk_build_opts_default(struct ota_chunk_build_opts *opts)
{
    ota_chunker_params_default(&opts->chunker);
    opts->zstd_level = OTA_CHUNK_ZSTD_LEVEL_DEFAULT;
    opts->zstd_search_log = OTA_CHUNK_ZSTD_SEARCH_LOG_DEFAULT;
    opts->threads = 1;
}

void ota_chunk_build_opts_for(struct ota_chunk_build_opts *opts, uint64_t image_length)
{
    ota_chunk_build_opts_default(opts);
    if (image_length <= OTA_CHUNK_SMALL_IMAGE) {
        opts->chunker.min_size = OTA_CHUNK_SMALL_AVG / 4;
        opts->chunker.avg_size = OTA_CHUNK_SMALL_AVG;
        opts->chunker.max_size = OTA_CHUNK_SMALL_AVG * 4;
        opts->zstd_level = OTA_CHUNK_ZSTD_LEVEL_SMALL;
        opts->zstd_search_log = 0;
    }
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

static int check_opts(const struct ota_chunk_build_opts *opts, struct ota_detail *det)
{
    ZSTD_bounds sl = ZSTD_cParam_getBounds(ZSTD_c_searchLog);
    int rc = ota_chunker_params_check(&opts->chunker, det);

    if (rc != 0)
        return rc;
    if (opts->zstd_level < -7 || opts->zstd_level > ZSTD_maxCLevel() || opts->zstd_level == 0) {
        ota_detail_set(det, "zstd level %d is not in -7..-1 or 1..%d", opts->zstd_level,
                       ZSTD_maxCLevel());
        return OTA_ERR_INVALID_ARG;
    }
    if (opts->zstd_search_log != 0 &&
        (ZSTD_isError(sl.error) || opts->zstd_search_log < sl.lowerBound ||
         opts->zstd_search_log > sl.upperBound)) {
        ota_detail_set(det, "zstd search log %d is not 0 or in %d..%d", opts->zstd_search_log,
                       sl.lowerBound, sl.upperBound);
        return OTA_ERR_INVALID_ARG;
    }
    if (opts->threads > OTA_CHUNK_BUILD_MAX_THREADS) {
        ota_detail_set(det, "%u threads (at most %u)", opts->threads, OTA_CHUNK_BUILD_MAX_THREADS);
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

static ZSTD_CCtx *new_cctx(const struct ota_chunk_build_opts *opts)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();

    /* Content size on (the default), XXH64 checksum off: the index's
     * SHA-256 supersedes it (docs/formats/pack.md). */
    if (c == NULL ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, opts->zstd_level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
        (opts->zstd_search_log != 0 &&
         ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_searchLog, opts->zstd_search_log)))) {
        ZSTD_freeCCtx(c);
        return NULL;
    }
    /* zstd picks its row-based match finder for windows above 16 KiB;
     * on chunk-sized inputs hash chains are faster here (about 10 % of a
     * build, with a pack 0.04 % smaller; docs/BENCHMARKS.md). The switch
     * is an experimental parameter, so it is set only when the library is
     * the release series of the header we were built with, where its
     * number is known. Elsewhere zstd's own choice stands: the same format,
     * a little slower. An error here is not one: the setting is advice. */
    if (ZSTD_versionNumber() / 100 == ZSTD_VERSION_NUMBER / 100)
        (void)ZSTD_CCtx_setParameter(c, ZSTD_c_useRowMatchFinder, ZSTD_ps_disable);
    return c;
}

/* Compresses slot k of batch bt with c, into the frame space cut_chunk
 * reserved for it (zstd's bound for its length). */
static void compress_slot(ZSTD_CCtx *c, struct batch *bt, uint32_t k)
{
    struct slot *s = &bt->slot[k];
    size_t z = ZSTD_compress2(c, bt->frame + s->frame_off, ZSTD_compressBound(s->len),
                              bt->data + s->data_off, s->len);

    /* The only way zstd fails on a bounded output is memory. */
    s->rc = ZSTD_isError(z) || z == 0 || z > ota_chunk_index_zbound(s->len) ? OTA_ERR_NOMEM : 0;
    s->zlen = z;
}

/* Under mu: the oldest submitted batch with a slot left to hand out. */
static struct batch *next_work(struct ota_chunk_build *b)
{
    struct batch *best = NULL;
    unsigned i;

    for (i = 0; i < b->nbatches; i++) {
        struct batch *bt = &b->batch[i];

        if (bt->inflight && bt->next < bt->n && (best == NULL || bt->seq < best->seq))
            best = bt;
    }
    return best;
}

static void *worker_main(void *arg)
{
    const struct worker *w = arg;
    struct ota_chunk_build *b = w->b;
    ZSTD_CCtx *c = b->cctx[w->id];

    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct batch *bt;
        uint32_t k;

        while (!b->stop && (bt = next_work(b)) == NULL)
            pthread_cond_wait(&b->work, &b->mu);
        if (b->stop)
            break;
        k = bt->next++;
        if (!bt->slot[k].first)
            continue;
        pthread_mutex_unlock(&b->mu);
        compress_slot(c, bt, k);
        pthread_mutex_lock(&b->mu);
        if (--bt->pending == 0)
            pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void stop_workers(struct ota_chunk_build *b)
{
    unsigned t;

    if (b->nworkers == 0)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mu);
    for (t = 0; t < b->nworkers; t++)
        pthread_join(b->th[t], NULL);
    b->nworkers = 0;
}

void ota_chunk_build_free(struct ota_chunk_build *b)
{
    unsigned i;

    if (b == NULL)
        return;
    stop_workers(b);
    if (b->sync_init) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->work);
        pthread_cond_destroy(&b->done);
    }
    for (i = 0; b->cctx != NULL && i < b->ncctx; i++)
        ZSTD_freeCCtx(b->cctx[i]);
    free(b->cctx);
    free(b->th);
    free(b->workers);
    for (i = 0; i < BUILD_BATCHES; i++) {
        free(b->batch[i].data);
        free(b->batch[i].frame);
        free(b->batch[i].slot);
    }
    ota_sha256_ctx_free(b->image_hash);
    ota_buf_free(&b->entries);
    free(b->e);
    ota_chunk_set_free(&b->seen);
    free(b);
}

/* Starts up to `threads` workers; fewer (even none) if the system refuses
 * threads: the build still works, with less parallelism. */
static int start_workers(struct ota_chunk_build *b, unsigned threads)
{
    struct worker *w;
    unsigned t;

    b->th = calloc(threads, sizeof(*b->th));
    w = calloc(threads, sizeof(*w));
    b->cctx = calloc(threads, sizeof(*b->cctx));
    if (b->th == NULL || w == NULL || b->cctx == NULL) {
        free(w);
        return OTA_ERR_NOMEM;
    }
    b->ncctx = threads;
    for (t = 0; t < threads; t++) {
        b->cctx[t] = new_cctx(&b->opts);
        if (b->cctx[t] == NULL) {
            free(w);
            return OTA_ERR_NOMEM;
        }
    }
    b->workers = w;
    for (t = 0; t < threads; t++) {
        w[t].b = b;
        w[t].id = t;
        if (pthread_create(&b->th[t], NULL, worker_main, &w[t]) != 0)
            break;
        b->nworkers++;
    }
    return 0;
}

int ota_chunk_build_new(struct ota_chunk_build **out, const struct ota_chunk_build_opts *opts,
                        ota_chunk_build_sink sink, void *sink_ctx, struct ota_detail *det)
{
    struct ota_chunk_build *b;
    unsigned threads;
    unsigned i;
    int rc;

    if (out == NULL || opts == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    rc = check_opts(opts, det);
    if (rc != 0)
        return rc;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return OTA_ERR_NOMEM;
    b->opts = *opts;
    b->sink = sink;
    b->sink_ctx = sink_ctx;
    ota_buf_init(&b->entries, (size_t)OTA_CHUNK_INDEX_MAX_CHUNKS * OTA_CHUNK_INDEX_ENTRY_LEN);
    rc = ota_chunker_init(&b->chunker, &opts->chunker, det);
    if (rc != 0)
        goto fail;
    rc = OTA_ERR_NOMEM;
    threads = opts->threads;
    b->frame_bound = ZSTD_compressBound(opts->chunker.max_size);
    b->data_cap = BUILD_BATCH_BYTES;
    if (b->data_cap < 2 * (size_t)opts->chunker.max_size)
        b->data_cap = 2 * (size_t)opts->chunker.max_size;
    /* Every chunk but the image's last is at least min_size long; a
     * frame is at most len + len / 256 + 64 bytes (zstd's bound). */
    b->slot_cap = (uint32_t)(b->data_cap / opts->chunker.min_size) + 1;
    b->frame_cap = b->data_cap + b->data_cap / 256 + 64 * (size_t)b->slot_cap + b->frame_bound;
    b->nbatches = threads >= 2 ? BUILD_BATCHES : 1;
    for (i = 0; i < b->nbatches; i++) {
        struct batch *bt = &b->batch[i];

        bt->data = malloc(b->data_cap);
        bt->frame = malloc(b->frame_cap);
        bt->slot = calloc(b->slot_cap, sizeof(*bt->slot));
        if (bt->data == NULL || bt->frame == NULL || bt->slot == NULL)
            goto fail;
    }
    rc = ota_chunk_set_init(&b->seen, 1024);
    if (rc == 0)
        rc = ota_sha256_init(&b->image_hash);
    if (rc != 0)
        goto fail;
    rc = OTA_ERR_NOMEM;
    if (threads >= 2) {
        if (pthread_mutex_init(&b->mu, NULL) != 0)
            goto fail;
        if (pthread_cond_init(&b->work, NULL) != 0) {
            pthread_mutex_destroy(&b->mu);
            goto fail;
        }
        if (pthread_cond_init(&b->done, NULL) != 0) {
            pthread_cond_destroy(&b->work);
            pthread_mutex_destroy(&b->mu);
            goto fail;
        }
        b->sync_init = 1;
        rc = start_workers(b, threads);
        if (rc != 0)
            goto fail;
    }
    if (b->nworkers == 0) {
        /* Compression on the caller's thread. */
        if (b->ncctx == 0) {
            b->cctx = calloc(1, sizeof(*b->cctx));
            if (b->cctx == NULL)
                goto fail;
            b->ncctx = 1;
            b->cctx[0] = new_cctx(&b->opts);
            if (b->cctx[0] == NULL)
                goto fail;
        }
    }
    *out = b;
    return 0;
fail:
    ota_chunk_build_free(b);
    return rc;
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

/* Hands a full batch to the workers, or compresses it here. */
static void submit(struct ota_chunk_build *b, struct batch *bt)
{
    uint32_t k;
    uint32_t frames = 0;

    for (k = 0; k < bt->n; k++)
        frames += (uint32_t)bt->slot[k].first;
    if (b->nworkers == 0) {
        for (k = 0; k < bt->n; k++)
            if (bt->slot[k].first)
                compress_slot(b->cctx[0], bt, k);
        bt->inflight = 1;
        bt->pending = 0;
        bt->next = bt->n;
        return;
    }
    pthread_mutex_lock(&b->mu);
    bt->inflight = 1;
    bt->seq = b->seq++;
    bt->next = 0;
    bt->pending = frames;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mu);
}

/* Waits until every frame of a submitted batch is compressed, then emits
 * its chunks in image order and empties it. */
static int emit(struct ota_chunk_build *b, struct batch *bt, struct ota_detail *det)
{
    uint32_t k;
    int rc = 0;

    if (b->nworkers > 0) {
        pthread_mutex_lock(&b->mu);
        while (bt->pending > 0)
            pthread_cond_wait(&b->done, &b->mu);
        bt->inflight = 0;
        pthread_mutex_unlock(&b->mu);
    } else {
        bt->inflight = 0;
    }
    for (k = 0; k < bt->n && rc == 0; k++) {
        const struct slot *s = &bt->slot[k];
        struct ota_chunk_entry *e = &b->e[s->index];
        uint8_t raw[OTA_CHUNK_INDEX_ENTRY_LEN];

        if (s->first && s->rc != 0) {
            ota_detail_set(det, "zstd failed (out of memory)");
            rc = s->rc;
            break;
        }
        e->offset = b->off;
        if (s->first) {
            e->pack_offset = b->zoff;
            e->zlength = (uint32_t)s->zlen;
        } else {
            e->pack_offset = b->e[e->first].pack_offset;
            e->zlength = b->e[e->first].zlength;
        }
        wr32(raw, e->length);
        wr32(raw + 4, s->first ? e->zlength : 0);
        memcpy(raw + 8, e->sha256, OTA_SHA256_LEN);
        rc = ota_buf_append(&b->entries, raw, sizeof(raw));
        if (rc == 0 && b->sink != NULL)
            rc = b->sink(b->sink_ctx, e, s->first ? bt->frame + s->frame_off : NULL,
                         s->first ? s->zlen : 0);
        if (rc != 0)
            break;
        b->emitted++;
        b->off += e->length;
        if (s->first)
            b->zoff += e->zlength;
    }
    bt->n = 0;
    bt->data_used = 0;
    bt->frame_used = 0;
    return rc;
}

static int has_room(const struct ota_chunk_build *b, const struct batch *bt)
{
    return bt->n < b->slot_cap && bt->data_used + b->opts.chunker.max_size <= b->data_cap &&
           bt->frame_used + b->frame_bound <= b->frame_cap;
}

/* The current chunk (len bytes at data_used in the current batch) is
 * complete: hash it, decide whether it repeats an earlier chunk, and
 * move on to the next batch when this one is full. */
static int cut_chunk(struct ota_chunk_build *b, uint32_t len, struct ota_detail *det)
{
    struct batch *bt = &b->batch[b->cur];
    struct slot *s = &bt->slot[bt->n];
    struct ota_chunk_entry *e;
    uint32_t first;
    int rc;

    if (b->count >= OTA_CHUNK_INDEX_MAX_CHUNKS) {
        ota_detail_set(det, "image has more than 2^24 chunks");
        return OTA_ERR_TOO_LARGE;
    }
    rc = grow_entries(b, 1);
    if (rc != 0)
        return rc;
    e = &b->e[b->count];
    memset(e, 0, sizeof(*e));
    e->length = len;
    rc = ota_sha256(e->sha256, bt->data + bt->data_used, len);
    if (rc != 0)
        return rc;
    first = ota_chunk_set_find(&b->seen, b->e, e->sha256, len);
    memset(s, 0, sizeof(*s));
    s->data_off = bt->data_used;
    s->len = len;
    s->index = b->count;
    s->first = first == OTA_CHUNK_SET_NONE;
    e->first = s->first ? b->count : first;
    if (s->first) {
        rc = ota_chunk_set_add(&b->seen, b->e, b->count);
        if (rc != 0)
            return rc;
        s->frame_off = bt->frame_used;
        bt->frame_used += ZSTD_compressBound(len);
    }
    b->count++;
    bt->n++;
    bt->data_used += len;
    if (has_room(b, bt))
        return 0;
    submit(b, bt);
    b->cur = (b->cur + 1) % b->nbatches;
    bt = &b->batch[b->cur];
    return bt->inflight ? emit(b, bt, det) : 0;
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
        struct batch *bt = &b->batch[b->cur];
        uint32_t pos = b->chunker.pos;
        uint32_t cut = 0;
        size_t n = ota_chunker_scan(&b->chunker, &cut, p, len);

        memcpy(bt->data + bt->data_used + pos, p, n);
        p += n;
        len -= n;
        if (cut != 0) {
            rc = cut_chunk(b, cut, det);
            if (rc != 0)
                goto fail;
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
    unsigned i;
    int rc;

    if (index_out == NULL || b == NULL || b->failed)
        return OTA_ERR_INVALID_ARG;
    b->failed = 1; /* spent, whatever happens next */
    last = ota_chunker_end(&b->chunker);
    if (last != 0) {
        /* The current batch has room for it (invariant); the cut may
         * move on to the next batch, emitting an older one. */
        rc = cut_chunk(b, last, det);
        if (rc != 0)
            return rc;
    }
    /* Emit what is left, oldest first: the batches after the current
     * one, then the current one. */
    if (b->batch[b->cur].n > 0)
        submit(b, &b->batch[b->cur]);
    for (i = 1; i <= b->nbatches; i++) {
        struct batch *bt = &b->batch[(b->cur + i) % b->nbatches];

        if (bt->inflight) {
            rc = emit(b, bt, det);
            if (rc != 0)
                return rc;
        }
    }
    stop_workers(b);
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

static int pack_fd_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame,
                        size_t frame_len)
{
    (void)e;
    return ota_fs_write_all(*(const int *)ctx, frame, frame_len);
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
