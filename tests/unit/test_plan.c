/* Unit tests for plan.c: on synthetic v1 -> v2 images (v2 = v1 with a few
 * regions overwritten, inserted and deleted, plus one new region present
 * twice) the plan copies every chunk v1 has, fetches each missing chunk
 * once, copies repeats from the new image, and executing it rebuilds v2
 * exactly; coalescing merges ranges by gap and respects the request caps;
 * resume skips done chunks; the current image may be an fd or an index;
 * every allocation of parse + plan + execute can fail cleanly. */
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
    struct ota_chunk_index *idx1, *idx2;
    int fd1;
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
    if (f->fd1 < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    close(f->fd1);
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

/* The plan is exactly what brute force says. */
static void check_kinds(const struct fx *f, const struct ota_plan *plan)
{
    uint32_t i;

    assert_int_equal(plan->nsteps, f->idx2->count);
    for (i = 0; i < f->idx2->count; i++) {
        const struct ota_chunk_entry *e = &f->idx2->chunks[i];
        const struct ota_plan_step *s = &plan->steps[i];
        long old = find_chunk(f->idx1, e, UINT32_MAX);
        long earlier = find_chunk(f->idx2, e, i);

        if (old >= 0) {
            assert_int_equal(s->kind, OTA_PLAN_COPY_OLD);
            assert_memory_equal(f->v1 + s->src, f->v2 + e->offset, e->length);
        } else if (earlier >= 0) {
            assert_int_equal(s->kind, OTA_PLAN_COPY_NEW);
            assert_true(s->src == f->idx2->chunks[earlier].offset);
        } else {
            assert_int_equal(s->kind, OTA_PLAN_FETCH);
            assert_true(s->src == e->pack_offset);
            assert_true(s->range < plan->nranges);
            assert_true(plan->ranges[s->range].start <= e->pack_offset);
            assert_true(plan->ranges[s->range].end >= e->pack_offset + e->zlength);
        }
        if (s->kind != OTA_PLAN_FETCH)
            assert_int_equal(s->range, UINT32_MAX);
    }
}

/* Runs the plan as a fetcher would (pack ranges from memory) and checks
 * the result is v2. */
static void execute(const struct fx *f, const struct ota_plan *plan)
{
    uint8_t *out = calloc(1, f->v2_len);
    struct ota_pack_reader *r = NULL;
    uint32_t i;

    assert_non_null(out);
    assert_int_equal(ota_pack_reader_new(&r), 0);
    for (i = 0; i < plan->nsteps; i++) {
        const struct ota_chunk_entry *e = &f->idx2->chunks[i];
        const struct ota_plan_step *s = &plan->steps[i];
        uint8_t *dst = out + e->offset;

        switch (s->kind) {
        case OTA_PLAN_COPY_OLD:
            memcpy(dst, f->v1 + s->src, e->length);
            assert_int_equal(ota_chunk_index_check_chunk(e, dst, e->length, NULL), 0);
            break;
        case OTA_PLAN_COPY_NEW:
            assert_true(s->src + e->length <= e->offset);
            memcpy(dst, out + s->src, e->length);
            assert_int_equal(ota_chunk_index_check_chunk(e, dst, e->length, NULL), 0);
            break;
        case OTA_PLAN_FETCH: {
            /* Only bytes inside the planned range are used. */
            const struct ota_plan_range *rg = &plan->ranges[s->range];
            const uint8_t *body = f->p2.data + rg->start;

            assert_int_equal(ota_pack_decode_chunk(dst, e->length, r, body + (s->src - rg->start),
                                                   e->zlength, e, NULL),
                             0);
            break;
        }
        default:
            memcpy(dst, f->v2 + e->offset, e->length); /* DONE: already there */
            break;
        }
    }
    assert_memory_equal(out, f->v2, f->v2_len);
    ota_pack_reader_free(r);
    free(out);
}

static void test_plan_from_fd_and_index(void **state)
{
    struct fx *f = *state;
    struct ota_plan_have *h_fd = NULL;
    struct ota_plan_have *h_idx = NULL;
    struct ota_plan *p1 = NULL;
    struct ota_plan *p2 = NULL;
    uint8_t sha[OTA_SHA256_LEN];
    uint8_t want[OTA_SHA256_LEN];

    assert_int_equal(ota_plan_have_from_fd(&h_fd, sha, f->fd1, UINT64_MAX, &f->idx2->chunker, NULL),
                     0);
    assert_int_equal(ota_sha256(want, f->v1, V1_LEN), 0);
    assert_memory_equal(sha, want, OTA_SHA256_LEN);
    assert_int_equal(ota_plan_have_from_index(&h_idx, f->idx1, NULL), 0);
    assert_int_equal(ota_plan_have_count(h_fd), ota_plan_have_count(h_idx));
    assert_int_equal(ota_plan_make(&p1, f->idx2, h_fd, NULL, NULL, NULL), 0);
    assert_int_equal(ota_plan_make(&p2, f->idx2, h_idx, NULL, NULL, NULL), 0);
    assert_memory_equal(p1->steps, p2->steps, p1->nsteps * sizeof(*p1->steps));
    check_kinds(f, p1);
    execute(f, p1);
    print_message("v2: %u chunks; copy old %u, copy new %u, fetch %u (%llu of %llu pack bytes) "
                  "in %u ranges, %u requests, %llu bytes requested\n",
                  p1->stats.chunks, p1->stats.copy_old_chunks, p1->stats.copy_new_chunks,
                  p1->stats.fetch_chunks, (unsigned long long)p1->stats.fetch_zbytes,
                  (unsigned long long)f->idx2->pack_length, p1->stats.ranges, p1->stats.requests,
                  (unsigned long long)p1->stats.range_bytes);
    /* Four small edits change at most 2 chunks each (plus the chunk the
     * inserted region ends in), the new region is fetched once: its
     * ~200 KiB are ~12 chunks at 16 KiB average, its repeat is copied. */
    assert_true(p1->stats.fetch_chunks >= 12);
    assert_true(p1->stats.fetch_chunks <= 12 + 2 + 8 + 4);
    assert_true(p1->stats.copy_new_chunks >= 8);
    assert_true(p1->stats.fetch_zbytes < f->idx2->pack_length / 5);
    assert_true(p1->stats.range_bytes >= p1->stats.fetch_zbytes);
    assert_true(p1->stats.copy_old_bytes + p1->stats.copy_new_bytes + p1->stats.fetch_bytes ==
                f->v2_len);
    assert_true(p1->stats.ranges <= 6);
    ota_plan_free(p1);
    ota_plan_free(p2);
    ota_plan_have_free(h_fd);
    ota_plan_have_free(h_idx);
    ota_plan_free(NULL);
    ota_plan_have_free(NULL);
}

static void test_coalescing(void **state)
{
    struct fx *f = *state;
    struct ota_plan_have *h = NULL;
    struct ota_plan *p = NULL;
    struct ota_plan_opts o;
    uint32_t i;
    uint32_t runs = 0;
    uint32_t total = 0;

    assert_int_equal(ota_plan_have_from_index(&h, f->idx1, NULL), 0);
    /* Gap 0: exactly the runs of consecutive fetched chunks. */
    ota_plan_opts_default(&o);
    o.gap = 0;
    o.max_requests = 0;
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, &o, NULL), 0);
    {
        /* Repeats have no frame: runs are over first occurrences only. */
        uint32_t prev = OTA_PLAN_DONE;

        for (i = 0; i < p->nsteps; i++) {
            if (f->idx2->chunks[i].first != i)
                continue;
            if (p->steps[i].kind == OTA_PLAN_FETCH && prev != OTA_PLAN_FETCH)
                runs++;
            prev = p->steps[i].kind;
        }
    }
    assert_int_equal(p->nranges, runs);
    assert_true(p->stats.range_bytes == p->stats.fetch_zbytes);
    assert_true(p->stats.gap == 0);
    check_kinds(f, p);
    execute(f, p);
    /* Requests partition the ranges, at most ranges_per_request each. */
    for (i = 0; i < p->nrequests; i++) {
        assert_int_equal(p->requests[i].first_range, total);
        assert_true(p->requests[i].nranges >= 1 &&
                    p->requests[i].nranges <= OTA_PLAN_RANGES_PER_REQ_DEFAULT);
        total += p->requests[i].nranges;
    }
    assert_int_equal(total, p->nranges);
    ota_plan_free(p);
    /* Huge gap: one range. */
    o.gap = UINT64_MAX;
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, &o, NULL), 0);
    assert_int_equal(p->nranges, 1);
    assert_int_equal(p->nrequests, 1);
    execute(f, p);
    ota_plan_free(p);
    /* One range per request, at most 2 requests: the gap widens. */
    o.gap = 0;
    o.ranges_per_request = 1;
    o.max_requests = 2;
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, &o, NULL), 0);
    assert_true(runs > 2);
    assert_true(p->nrequests <= 2);
    assert_true(p->stats.gap > 0);
    assert_true(p->stats.range_bytes > p->stats.fetch_zbytes);
    execute(f, p);
    ota_plan_free(p);
    o.ranges_per_request = 0;
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, &o, NULL), OTA_ERR_INVALID_ARG);
    assert_null(p);
    ota_plan_have_free(h);
}

static void test_resume_and_no_have(void **state)
{
    struct fx *f = *state;
    struct ota_plan_have *h = NULL;
    struct ota_plan *p = NULL;
    struct ota_plan *q = NULL;
    uint8_t *done = calloc(1, (f->idx2->count + 7) / 8);
    uint32_t i;

    assert_non_null(done);
    assert_int_equal(ota_plan_have_from_index(&h, f->idx1, NULL), 0);
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, NULL, NULL), 0);
    /* Mark the first half of the fetched chunks done. */
    {
        uint32_t half = p->stats.fetch_chunks / 2;
        uint32_t k = 0;

        for (i = 0; i < p->nsteps && k < half; i++)
            if (p->steps[i].kind == OTA_PLAN_FETCH) {
                done[i / 8] |= (uint8_t)(1u << (i % 8));
                k++;
            }
        assert_int_equal(ota_plan_make(&q, f->idx2, h, done, NULL, NULL), 0);
        assert_int_equal(q->stats.done_chunks, half);
        assert_int_equal(q->stats.fetch_chunks, p->stats.fetch_chunks - half);
        for (i = 0; i < q->nsteps; i++)
            if (done[i / 8] >> (i % 8) & 1)
                assert_int_equal(q->steps[i].kind, OTA_PLAN_DONE);
        execute(f, q);
        ota_plan_free(q);
    }
    /* Everything done: nothing to fetch. */
    memset(done, 0xff, (f->idx2->count + 7) / 8);
    assert_int_equal(ota_plan_make(&q, f->idx2, h, done, NULL, NULL), 0);
    assert_int_equal(q->nranges, 0);
    assert_int_equal(q->nrequests, 0);
    assert_int_equal(q->stats.done_chunks, f->idx2->count);
    ota_plan_free(q);
    ota_plan_free(p);
    /* Nothing to reuse: all chunks fetched once, repeats copied. */
    assert_int_equal(ota_plan_make(&p, f->idx2, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(p->stats.copy_old_chunks, 0);
    assert_true(p->stats.copy_new_chunks >= 8);
    assert_int_equal(p->stats.fetch_chunks + p->stats.copy_new_chunks, f->idx2->count);
    /* The repeated region (incompressible, ~200 KiB of frames) is a gap
     * too wide to bridge; only the image's last chunk (cut by the end of
     * the image, not by content) follows it. */
    assert_true(p->nranges <= 2);
    execute(f, p);
    ota_plan_free(p);
    ota_plan_have_free(h);
    free(done);
}

static void test_have_from_fd_errors(void **state)
{
    struct fx *f = *state;
    struct ota_plan_have *h = NULL;
    struct ota_chunker_params bad;
    struct ota_detail det;
    uint8_t sha[OTA_SHA256_LEN];

    assert_int_equal(ota_plan_have_from_fd(&h, sha, f->fd1, V1_LEN + 1, &f->idx2->chunker, &det),
                     OTA_ERR_TRUNCATED);
    assert_null(h);
    assert_non_null(strstr(det.msg, "ends at"));
    bad = f->idx2->chunker;
    bad.avg_size = 1000;
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, V1_LEN, &bad, NULL),
                     OTA_ERR_CHUNK_PARAMS);
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, 9999, V1_LEN, &f->idx2->chunker, NULL),
                     OTA_ERR_IO);
    /* A prefix of the image is fine (slot longer than the image). */
    assert_int_equal(ota_plan_have_from_fd(&h, NULL, f->fd1, MIB, &f->idx2->chunker, NULL), 0);
    assert_true(ota_plan_have_count(h) > 30 && ota_plan_have_count(h) < 80);
    ota_plan_have_free(h);
    /* Empty. */
    assert_int_equal(ota_plan_have_from_fd(&h, sha, f->fd1, 0, &f->idx2->chunker, NULL), 0);
    assert_int_equal(ota_plan_have_count(h), 0);
    ota_plan_have_free(h);
}

/* An installed index with other chunker parameters: less reuse, still a
 * correct plan. */
static void test_other_params(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_build_opts o;
    struct ota_buf i1, p1;
    struct ota_chunk_index *idx1 = NULL;
    struct ota_plan_have *h = NULL;
    struct ota_plan *p = NULL;

    ota_chunk_build_opts_default(&o);
    o.zstd_level = 1;
    o.chunker.min_size = 1024;
    o.chunker.avg_size = 4096;
    o.chunker.max_size = 16384;
    assert_int_equal(fx_build(&i1, &p1, f->v1, V1_LEN, &o, 0), 0);
    assert_int_equal(ota_chunk_index_parse(&idx1, i1.data, i1.len, NULL), 0);
    assert_int_equal(ota_plan_have_from_index(&h, idx1, NULL), 0);
    assert_int_equal(ota_plan_make(&p, f->idx2, h, NULL, NULL, NULL), 0);
    execute(f, p);
    ota_plan_free(p);
    ota_plan_have_free(h);
    ota_chunk_index_free(idx1);
    ota_buf_free(&i1);
    ota_buf_free(&p1);
}

/* The device's chunk path without the network: parse the new index,
 * chunk the current image, plan, then build v2 from copies and decoded
 * pack frames. 0 and the right bytes, or an error. */
static int fa_chunk_path(const struct fx *f)
{
    struct ota_chunk_index *idx = NULL;
    struct ota_plan_have *h = NULL;
    struct ota_plan_have *hi = NULL;
    struct ota_plan *p = NULL;
    struct ota_pack_reader *r = NULL;
    uint8_t *out = NULL;
    int rc = ota_chunk_index_parse(&idx, f->i2.data, f->i2.len, NULL);

    if (rc == 0)
        rc = ota_plan_have_from_fd(&h, NULL, f->fd1, UINT64_MAX, &idx->chunker, NULL);
    if (rc == 0)
        rc = ota_plan_have_from_index(&hi, f->idx1, NULL);
    if (rc == 0)
        rc = ota_plan_make(&p, idx, h, NULL, NULL, NULL);
    if (rc == 0)
        rc = ota_pack_reader_new(&r);
    if (rc == 0 && (out = malloc(f->v2_len)) == NULL)
        rc = OTA_ERR_NOMEM;
    for (uint32_t i = 0; rc == 0 && i < p->nsteps; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];
        const struct ota_plan_step *s = &p->steps[i];

        if (s->kind == OTA_PLAN_COPY_OLD)
            memcpy(out + e->offset, f->v1 + s->src, e->length);
        else if (s->kind == OTA_PLAN_COPY_NEW)
            memcpy(out + e->offset, out + s->src, e->length);
        else
            rc = ota_pack_decode_chunk(out + e->offset, e->length, r, f->p2.data + s->src,
                                       e->zlength, e, NULL);
    }
    if (rc == 0 && memcmp(out, f->v2, f->v2_len) != 0)
        rc = OTA_ERR_HASH_MISMATCH;
    free(out);
    ota_pack_reader_free(r);
    ota_plan_free(p);
    ota_plan_have_free(hi);
    ota_plan_have_free(h);
    ota_chunk_index_free(idx);
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
        cmocka_unit_test(test_alloc_faults),        cmocka_unit_test(test_plan_from_fd_and_index),
        cmocka_unit_test(test_coalescing),          cmocka_unit_test(test_resume_and_no_have),
        cmocka_unit_test(test_have_from_fd_errors), cmocka_unit_test(test_other_params),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
