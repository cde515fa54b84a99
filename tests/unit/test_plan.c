/* Unit tests for plan.c: on synthetic v1 -> v2 images (v2 = v1 with a few
 * regions overwritten, inserted and deleted, plus one new region present
 * twice) the streaming plan (index read from a file, the current image's
 * chunks in a table on disk) copies every chunk v1 has, fetches each
 * missing chunk once, copies repeats from the new image, and executing it
 * rebuilds v2 exactly, as brute force says; coalescing merges ranges by
 * gap and respects the request caps; resume skips done chunks; every
 * allocation of open + plan + execute can fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/chunk_index.h"
#include "otachain/pack.h"
#include "otachain/plan.h"

#include "chunk_fixture.h"
#include "failalloc.h"

#define MIB    (1024u * 1024u)
#define V1_LEN (4u * MIB)
#define DUP    (200u * 1024u)

struct fx {
    uint8_t *v1, *v2;
    size_t v2_len;
    struct ota_buf i1, p1, i2, p2;
    struct ota_chunk_index *idx1, *idx2; /* in memory: brute force */
    int fd1;
    int ifd2; /* the v2 index as a file */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    uint8_t *ins = malloc(5000);
    uint8_t *dup = malloc(DUP);
    size_t o = 0;

    if (f == NULL || ins == NULL || dup == NULL)
        return -1;
    f->v1 = malloc(V1_LEN);
    f->v2 = malloc(V1_LEN + 5000 + 2 * DUP);
    if (f->v1 == NULL || f->v2 == NULL)
        return -1;
    fx_firmware(f->v1, V1_LEN, 31);
    fx_random(ins, 5000, 32);
    fx_random(dup, DUP, 33);
    /* v2: [0, 1.5M) with 100 bytes overwritten at 500K, 5000 bytes
     * inserted, [1.5M, 2.5M), 3000 bytes deleted, the new region, the
     * rest with 20 bytes overwritten near the end, the new region again. */
    memcpy(f->v2, f->v1, 1536 * 1024);
    memset(f->v2 + 500 * 1024, 0xa5, 100);
    o = 1536 * 1024;
    memcpy(f->v2 + o, ins, 5000);
    o += 5000;
    memcpy(f->v2 + o, f->v1 + 1536 * 1024, 1024 * 1024);
    o += 1024 * 1024;
    memcpy(f->v2 + o, dup, DUP);
    o += DUP;
    memcpy(f->v2 + o, f->v1 + 2560 * 1024 + 3000, V1_LEN - 2560 * 1024 - 3000);
    memset(f->v2 + o + 1000 * 1024, 0x5a, 20);
    o += V1_LEN - 2560 * 1024 - 3000;
    memcpy(f->v2 + o, dup, DUP);
    o += DUP;
    f->v2_len = o;
    free(ins);
    free(dup);
    if (fx_build(&f->i1, &f->p1, f->v1, V1_LEN, NULL, 0) != 0 ||
        fx_build(&f->i2, &f->p2, f->v2, f->v2_len, NULL, 0) != 0 ||
        ota_chunk_index_parse(&f->idx1, f->i1.data, f->i1.len, NULL) != 0 ||
        ota_chunk_index_parse(&f->idx2, f->i2.data, f->i2.len, NULL) != 0)
        return -1;
    f->fd1 = fx_temp_fd(f->v1, V1_LEN);
    f->ifd2 = fx_temp_fd(f->i2.data, f->i2.len);
    if (f->fd1 < 0 || f->ifd2 < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    close(f->fd1);
    close(f->ifd2);
    ota_chunk_index_free(f->idx1);
    ota_chunk_index_free(f->idx2);
    ota_buf_free(&f->i1);
    ota_buf_free(&f->p1);
    ota_buf_free(&f->i2);
    ota_buf_free(&f->p2);
    free(f->v1);
    free(f->v2);
    free(f);
    return 0;
}

/* Index of the first chunk of idx equal to e (hash and length), or -1. */
static long find_chunk(const struct ota_chunk_index *idx, const struct ota_chunk_entry *e,
                       uint32_t below)
{
    uint32_t j;

    for (j = 0; j < idx->count && j < below; j++)
        if (idx->chunks[j].length == e->length &&
            memcmp(idx->chunks[j].sha256, e->sha256, OTA_SHA256_LEN) == 0)
            return (long)j;
    return -1;
}

enum kind { K_NONE, K_OLD, K_NEW, K_FETCH };

/* A run of the three steps on v2, as the fetcher does, in memory. */
struct run {
    const struct fx *f;
    uint8_t *out;
    uint8_t *done;
    enum kind *kind;    /* what happened to each chunk */
    const uint8_t *old; /* the current image, or NULL */
    struct ota_pack_reader *reader;
    uint32_t requests;
    uint32_t ranges;
    uint64_t range_bytes;
};

static void mark(struct run *r, uint32_t i, enum kind k)
{
    if (r->kind != NULL) {
        assert_int_equal(r->kind[i], K_NONE); /* each chunk once */
        r->kind[i] = k;
    }
    r->done[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int copy_old(void *ctx, uint32_t i, const struct ota_chunk_entry *e, uint64_t src,
                    struct ota_detail *det)
{
    struct run *r = ctx;

    (void)det;
    memcpy(r->out + e->offset, r->old + src, e->length);
    if (ota_chunk_index_check_chunk(e, r->out + e->offset, e->length, NULL) != 0)
        return OTA_ERR_HASH_MISMATCH;
    mark(r, i, K_OLD);
    return 0;
}

static int copy_new(void *ctx, uint32_t i, const struct ota_chunk_entry *e, uint64_t src,
                    struct ota_detail *det)
{
    struct run *r = ctx;

    (void)det;
    if (src + e->length > e->offset || !ota_plan_done(r->done, e->first))
        return OTA_ERR_INVALID_ARG; /* the first occurrence must be written already */
    memcpy(r->out + e->offset, r->out + src, e->length);
    if (ota_chunk_index_check_chunk(e, r->out + e->offset, e->length, NULL) != 0)
        return OTA_ERR_HASH_MISMATCH;
    mark(r, i, K_NEW);
    return 0;
}

/* Step 2 with the pack in memory: only bytes inside each range are read. */
static int fetch_all(struct run *r, const struct ota_chunk_index_file *idx,
                     const struct ota_plan_opts *o, struct ota_plan_stats *st)
{
    struct ota_plan *p = malloc(sizeof(*p));
    struct ota_chunk_cursor *c = malloc(sizeof(*c));
    struct ota_plan_range rg[OTA_PLAN_MAX_RANGES_PER_REQUEST];
    uint64_t prev_end = 0;
    uint32_t n;
    int rc = p == NULL || c == NULL ? OTA_ERR_NOMEM : ota_plan_begin(p, idx, r->done, o, NULL);

    while (rc == 0 && (rc = ota_plan_next(p, rg, &n, NULL)) == 1) {
        rc = 0;
        r->requests++;
        if (n < 1 || n > p->opts.ranges_per_request)
            return OTA_ERR_INVALID_ARG;
        for (uint32_t k = 0; rc == 0 && k < n; k++) {
            struct ota_chunk_entry e;

            /* Ranges ascend, separated by more than the gap. */
            if (r->ranges > 0 && rg[k].start - prev_end <= p->stats.gap)
                rc = OTA_ERR_INVALID_ARG;
            prev_end = rg[k].end;
            r->ranges++;
            r->range_bytes += rg[k].end - rg[k].start;
            ota_chunk_cursor_init(c, idx);
            if (rc == 0)
                rc = ota_chunk_cursor_seek(c, rg[k].first, NULL);
            for (uint32_t i = rg[k].first; rc == 0 && i <= rg[k].last; i++) {
                if (ota_chunk_cursor_next(c, &e, NULL, NULL) != 1)
                    rc = OTA_ERR_IO;
                else if (ota_plan_fetches(p, i, &e)) {
                    if (e.pack_offset < rg[k].start || e.pack_offset + e.zlength > rg[k].end)
                        rc = OTA_ERR_INVALID_ARG;
                    if (rc == 0)
                        rc = ota_pack_decode_chunk(r->out + e.offset, e.length, r->reader,
                                                   r->f->p2.data + e.pack_offset, e.zlength, &e,
                                                   NULL);
                    if (rc == 0)
                        mark(r, i, K_FETCH);
                }
            }
        }
    }
    if (rc == 0 && st != NULL)
        *st = p->stats;
    free(p);
    free(c);
    return rc;
}

/* Steps 1-3; the result must be v2. */
static int run_plan(struct run *r, const struct ota_chunk_index_file *idx,
                    const struct ota_plan_have *have, const struct ota_plan_opts *o,
                    struct ota_plan_stats *st)
{
    int rc = ota_pack_reader_new(&r->reader);

    if (rc == 0 && have != NULL)
        rc = ota_plan_copy_old(NULL, idx, have, r->done, copy_old, r, NULL);
    if (rc == 0)
        rc = fetch_all(r, idx, o, st);
    if (rc == 0)
        rc = ota_plan_copy_new(NULL, idx, r->done, copy_new, r, NULL);
    if (rc == 0 && memcmp(r->out, r->f->v2, r->f->v2_len) != 0)
        rc = OTA_ERR_HASH_MISMATCH;
    ota_pack_reader_free(r->reader);
    r->reader = NULL;
    return rc;
}

static void run_init(struct run *r, const struct fx *f, const uint8_t *old)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->old = old;
    r->out = calloc(1, f->v2_len);
    r->done = calloc(1, (f->idx2->count + 7) / 8 + 1);
    r->kind = calloc(f->idx2->count, sizeof(*r->kind));
    assert_true(r->out != NULL && r->done != NULL && r->kind != NULL);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->done);
    free(r->kind);
}

static struct ota_chunk_index_file *open_v2(const struct fx *f, const char *tmpdir)
{
    struct ota_chunk_index_file *idx = NULL;

    assert_int_equal(ota_chunk_index_open(&idx, f->ifd2, tmpdir, NULL), 0);
    return idx;
}

static void test_plan_matches_brute_force(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_index_file *idx = open_v2(f, "/tmp");
    struct ota_plan_have *h = NULL;
    struct ota_plan_stats est, st;
    struct run r;
    uint8_t sha[OTA_SHA256_LEN];
    uint8_t want[OTA_SHA256_LEN];
    uint32_t counts[4] = {0};

    assert_int_equal(
        ota_plan_have_from_fd(&h, sha, f->fd1, UINT64_MAX, &f->idx2->chunker, "/tmp", NULL), 0);
    assert_int_equal(ota_sha256(want, f->v1, V1_LEN), 0);
    assert_memory_equal(sha, want, OTA_SHA256_LEN);
    assert_int_equal(ota_plan_have_count(h), f->idx1->count - 0 /* v1 has no repeats */);
    assert_int_equal(ota_plan_estimate(&est, idx, h, NULL, NULL, NULL), 0);
    run_init(&r, f, f->v1);
    assert_int_equal(run_plan(&r, idx, h, NULL, &st), 0);
    /* Each chunk as brute force says: copied from v1 if v1 has it,
     * fetched if it is the first of its kind, else copied from v2. */
    for (uint32_t i = 0; i < f->idx2->count; i++) {
        const struct ota_chunk_entry *e = &f->idx2->chunks[i];
        enum kind want_k = find_chunk(f->idx1, e, UINT32_MAX) >= 0 ? K_OLD
                           : find_chunk(f->idx2, e, i) >= 0        ? K_NEW
                                                                   : K_FETCH;

        assert_int_equal(r.kind[i], want_k);
        counts[want_k]++;
    }
    assert_int_equal(est.copy_old_chunks, counts[K_OLD]);
    assert_int_equal(est.copy_new_chunks, counts[K_NEW]);
    assert_int_equal(est.fetch_chunks, counts[K_FETCH]);
    assert_int_equal(st.fetch_chunks, counts[K_FETCH]);
    assert_int_equal(est.ranges, r.ranges);
    assert_int_equal(est.requests, r.requests);
    assert_true(est.range_bytes == r.range_bytes);
    print_message("v2: %u chunks; copy old %u, copy new %u, fetch %u (%llu of %llu pack bytes) "
                  "in %u ranges, %u requests, %llu bytes requested\n",
                  est.chunks, est.copy_old_chunks, est.copy_new_chunks, est.fetch_chunks,
                  (unsigned long long)est.fetch_zbytes, (unsigned long long)f->idx2->pack_length,
                  est.ranges, est.requests, (unsigned long long)est.range_bytes);
    /* Four small edits change at most 2 chunks each (plus the chunk the
     * inserted region ends in), the new region is fetched once: its
     * ~200 KiB are ~12 chunks at 16 KiB average, its repeat is copied. */
    assert_true(est.fetch_chunks >= 12);
    assert_true(est.fetch_chunks <= 12 + 2 + 8 + 4);
    assert_true(est.copy_new_chunks >= 8);
    assert_true(est.fetch_zbytes < f->idx2->pack_length / 5);
    assert_true(est.range_bytes >= est.fetch_zbytes);
    assert_true(est.copy_old_bytes + est.copy_new_bytes + est.fetch_bytes == f->v2_len);
    assert_true(est.ranges <= 6);
    run_free(&r);
    ota_plan_have_free(h);
    ota_plan_have_free(NULL);
    ota_chunk_index_file_free(idx);
}

static void test_coalescing(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_index_file *idx = open_v2(f, NULL);
    struct ota_plan_have *h = NULL;
    struct ota_plan_stats st;
    struct ota_plan p;
    struct ota_plan_opts o;
    struct run r;
    uint32_t runs = 0;

    assert_int_equal(
        ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &f->idx2->chunker, NULL, NULL), 0);
    /* Gap 0: exactly the runs of consecutive fetched first occurrences
     * (repeats have no frame). */
    ota_plan_opts_default(&o);
    o.gap = 0;
    o.max_requests = 0;
    run_init(&r, f, f->v1);
    assert_int_equal(run_plan(&r, idx, h, &o, &st), 0);
    {
        bool prev = false;

        for (uint32_t i = 0; i < f->idx2->count; i++) {
            if (f->idx2->chunks[i].first != i)
                continue;
            if (r.kind[i] == K_FETCH && !prev)
                runs++;
            prev = r.kind[i] == K_FETCH;
        }
    }
    assert_int_equal(st.ranges, runs);
    assert_int_equal(r.ranges, runs);
    assert_true(st.range_bytes == st.fetch_zbytes);
    assert_true(st.gap == 0);
    assert_int_equal(r.requests, (runs + OTA_PLAN_RANGES_PER_REQ_DEFAULT - 1) /
                                     OTA_PLAN_RANGES_PER_REQ_DEFAULT);
    run_free(&r);
    /* Huge gap: one range. */
    o.gap = UINT64_MAX;
    run_init(&r, f, f->v1);
    assert_int_equal(run_plan(&r, idx, h, &o, &st), 0);
    assert_int_equal(st.ranges, 1);
    assert_int_equal(r.requests, 1);
    run_free(&r);
    /* One range per request, at most 2 requests: the gap widens. */
    o.gap = 0;
    o.ranges_per_request = 1;
    o.max_requests = 2;
    run_init(&r, f, f->v1);
    assert_int_equal(run_plan(&r, idx, h, &o, &st), 0);
    assert_true(runs > 2);
    assert_true(r.requests <= 2 && st.requests == r.requests);
    assert_true(st.gap > 0);
    assert_true(st.range_bytes > st.fetch_zbytes);
    run_free(&r);
    o.ranges_per_request = 0;
    assert_int_equal(ota_plan_begin(&p, idx, NULL, &o, NULL), OTA_ERR_INVALID_ARG);
    o.ranges_per_request = OTA_PLAN_MAX_RANGES_PER_REQUEST + 1;
    assert_int_equal(ota_plan_begin(&p, idx, NULL, &o, NULL), OTA_ERR_INVALID_ARG);
    ota_plan_have_free(h);
    ota_chunk_index_file_free(idx);
}

static void test_resume_and_no_have(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_index_file *idx = open_v2(f, "/tmp");
    struct ota_plan_have *h = NULL;
    struct ota_plan_stats full, st;
    struct run r;
    uint32_t half = 0;

    assert_int_equal(
        ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &f->idx2->chunker, "/tmp", NULL), 0);
    assert_int_equal(ota_plan_estimate(&full, idx, h, NULL, NULL, NULL), 0);
    /* The first half of the chunks are done (written by an earlier run). */
    run_init(&r, f, f->v1);
    for (uint32_t i = 0; i < f->idx2->count / 2; i++) {
        const struct ota_chunk_entry *e = &f->idx2->chunks[i];

        memcpy(r.out + e->offset, f->v2 + e->offset, e->length);
        mark(&r, i, K_NONE);
        r.kind[i] = K_NONE;
        half++;
    }
    assert_int_equal(ota_plan_estimate(&st, idx, h, r.done, NULL, NULL), 0);
    assert_int_equal(st.done_chunks, half);
    assert_true(st.fetch_chunks < full.fetch_chunks);
    assert_int_equal(run_plan(&r, idx, h, NULL, NULL), 0);
    for (uint32_t i = 0; i < half; i++)
        assert_int_equal(r.kind[i], K_NONE); /* not touched again */
    run_free(&r);
    /* Everything done: nothing to copy or fetch. */
    run_init(&r, f, f->v1);
    memcpy(r.out, f->v2, f->v2_len);
    memset(r.done, 0xff, (f->idx2->count + 7) / 8);
    assert_int_equal(ota_plan_estimate(&st, idx, h, r.done, NULL, NULL), 0);
    assert_int_equal(st.ranges, 0);
    assert_int_equal(st.requests, 0);
    assert_int_equal(st.done_chunks, f->idx2->count);
    assert_int_equal(run_plan(&r, idx, h, NULL, NULL), 0);
    assert_int_equal(r.requests, 0);
    run_free(&r);
    /* Nothing to reuse: all chunks fetched once, repeats copied. */
    run_init(&r, f, NULL);
    assert_int_equal(run_plan(&r, idx, NULL, NULL, &st), 0);
    assert_int_equal(st.fetch_chunks + (uint32_t)(f->idx2->count - st.fetch_chunks),
                     f->idx2->count);
    assert_true(f->idx2->count - st.fetch_chunks >= 8);
    /* The repeated region (incompressible, ~200 KiB of frames) is a gap
     * too wide to bridge; only the image's last chunk (cut by the end of
     * the image, not by content) follows it. */
    assert_true(st.ranges <= 2);
    run_free(&r);
    ota_plan_have_free(h);
    ota_chunk_index_file_free(idx);
}

static void test_have_from_fd_errors(void **state)
{
    struct fx *f = *state;
    struct ota_plan_have *h = NULL;
    struct ota_chunker_params bad;
    struct ota_detail det;
    struct ota_chunk_entry e;
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t off = 0;

    assert_int_equal(
        ota_plan_have_from_fd(&h, sha, f->fd1, V1_LEN + 1, &f->idx2->chunker, NULL, &det),
        OTA_ERR_TRUNCATED);
    assert_null(h);
    assert_non_null(strstr(det.msg, "ends at"));
    bad = f->idx2->chunker;
    bad.avg_size = 1000;
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, V1_LEN, &bad, NULL, NULL),
                     OTA_ERR_CHUNK_PARAMS);
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, 9999, V1_LEN, &f->idx2->chunker, NULL, NULL),
                     OTA_ERR_IO);
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, V1_LEN, &f->idx2->chunker,
                                           "/nonexistent-dir", &det),
                     OTA_ERR_IO);
    assert_non_null(strstr(det.msg, "/nonexistent-dir"));
    /* A prefix of the image is fine (slot longer than the image); the
     * table starts small and grows (UINT64_MAX: no size known). */
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, MIB, &f->idx2->chunker, "/tmp", NULL),
                     0);
    assert_true(ota_plan_have_count(h) > 30 && ota_plan_have_count(h) < 80);
    ota_plan_have_free(h);
    assert_int_equal(
        ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &f->idx2->chunker, "/tmp", NULL), 0);
    for (uint32_t i = 0; i < f->idx1->count; i++) {
        assert_int_equal(ota_plan_have_find(h, &f->idx1->chunks[i], &off), 1);
        assert_true(off == f->idx1->chunks[i].offset);
    }
    memset(&e, 0, sizeof(e));
    e.length = 5;
    assert_int_equal(ota_plan_have_find(h, &e, &off), 0);
    ota_plan_have_free(h);
    /* Empty. */
    assert_int_equal(ota_plan_have_from_fd(&h, sha, f->fd1, 0, &f->idx2->chunker, NULL, NULL), 0);
    assert_int_equal(ota_plan_have_count(h), 0);
    ota_plan_have_free(h);
}

/* The current image chunked with other parameters than the new index's:
 * less reuse, still a correct plan. */
static void test_other_params(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_index_file *idx = open_v2(f, NULL);
    struct ota_chunker_params other = f->idx2->chunker;
    struct ota_plan_have *h = NULL;
    struct run r;

    other.min_size = 1024;
    other.avg_size = 4096;
    other.max_size = 16384;
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &other, NULL, NULL), 0);
    run_init(&r, f, f->v1);
    assert_int_equal(run_plan(&r, idx, h, NULL, NULL), 0);
    run_free(&r);
    ota_plan_have_free(h);
    ota_chunk_index_file_free(idx);
}

/* The device's chunk path without the network: open the new index, chunk
 * the current image, plan, then build v2 from copies and decoded pack
 * frames. 0 and the right bytes, or an error. */
static int fa_chunk_path(const struct fx *f)
{
    struct ota_chunk_index_file *idx = NULL;
    struct ota_plan_have *h = NULL;
    struct run r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.f = f;
    r.old = f->v1;
    r.out = calloc(1, f->v2_len);
    r.done = calloc(1, (f->idx2->count + 7) / 8 + 1);
    rc = r.out == NULL || r.done == NULL ? OTA_ERR_NOMEM
                                         : ota_chunk_index_open(&idx, f->ifd2, NULL, NULL);
    if (rc == 0)
        rc = ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &f->idx2->chunker, NULL, NULL);
    if (rc == 0)
        rc = run_plan(&r, idx, h, NULL, NULL);
    free(r.out);
    free(r.done);
    ota_plan_have_free(h);
    ota_chunk_index_file_free(idx);
    return rc;
}

static void test_alloc_faults(void **state)
{
    struct fx *f = *state;
    int rc;

    assert_int_equal(fa_chunk_path(f), 0);
    FA_LOOP(rc, fa_chunk_path(f));
    assert_true(fa_failed_runs() >= 8);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),        cmocka_unit_test(test_plan_matches_brute_force),
        cmocka_unit_test(test_coalescing),          cmocka_unit_test(test_resume_and_no_have),
        cmocka_unit_test(test_have_from_fd_errors), cmocka_unit_test(test_other_params),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
