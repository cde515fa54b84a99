/* Unit tests for delta_make.c with the applier: round trips on synthetic
 * pairs (random with edits, inserts, deletes, moves, zero runs, shifted
 * "pointers", identical, empty and 1-byte images), whole and 1-byte
 * feeding, several frames and resumption, determinism, options, a flipped
 * byte anywhere in a delta (error, or wrong output that the caller's hash
 * check refuses), and the applier's heap measured while it runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/delta.h"
#include "otachain/delta_make.h"

#include "delta_fixture.h"
#include "failalloc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DX_ASAN 1
#endif
#ifdef DX_ASAN
/* From the sanitizer runtime (sanitizer/allocator_interface.h, which gcc
 * does not install): bytes currently allocated through malloc. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

struct img {
    uint8_t *p;
    size_t n;
};

static struct img img_new(size_t n)
{
    struct img im = {malloc(n > 0 ? n : 1), n};

    assert_non_null(im.p);
    return im;
}

static int make(struct ota_buf *d, const struct img *o, const struct img *n,
                const struct ota_delta_make_opts *opts, struct ota_delta_make_stats *st)
{
    struct ota_detail det = {{0}};
    int rc;

    ota_buf_init(d, (size_t)1 << 28);
    rc = ota_delta_make(ota_sink_buf, d, st, o->p, o->n, n->p, n->n, opts, &det);
    if (rc != 0)
        print_error("make: %s (%s)\n", ota_errname(rc), det.msg);
    return rc;
}

/* make, then apply whole and (when small) in 1-byte pieces: both equal n. */
static size_t round_trip(const struct img *o, const struct img *n)
{
    struct ota_buf d;
    struct dx_out out;
    struct ota_detail det = {{0}};
    struct ota_delta_make_stats st;
    size_t len;

    assert_int_equal(make(&d, o, n, NULL, &st), 0);
    assert_int_equal(st.delta_length, d.len);
    assert_int_equal(dx_apply(&out, d.data, d.len, o->p, o->n, 0, &det), 0);
    assert_int_equal(out.b.len, n->n);
    if (n->n > 0)
        assert_memory_equal(out.b.data, n->p, n->n);
    ota_buf_free(&out.b);
    if (d.len <= 64 * 1024) {
        assert_int_equal(dx_apply(&out, d.data, d.len, o->p, o->n, 1, &det), 0);
        assert_int_equal(out.b.len, n->n);
        if (n->n > 0)
            assert_memory_equal(out.b.data, n->p, n->n);
        ota_buf_free(&out.b);
    }
    len = d.len;
    ota_buf_free(&d);
    return len;
}

static void test_small_and_empty(void **state)
{
    static const uint8_t one = 'a';
    static const uint8_t other = 'b';
    struct img e = {(uint8_t *)"", 0};
    struct img a1 = {(uint8_t *)&one, 1};
    struct img b1 = {(uint8_t *)&other, 1};
    struct img r = img_new(5000);

    (void)state;
    dx_random(r.p, r.n, 1);
    round_trip(&e, &e);
    round_trip(&e, &a1);
    round_trip(&a1, &e);
    round_trip(&a1, &a1);
    round_trip(&a1, &b1);
    round_trip(&e, &r);
    round_trip(&r, &e);
    round_trip(&a1, &r);
    round_trip(&r, &a1);
    {
        struct img s7 = {r.p, 7};
        struct img s9 = {r.p + 1, 9};

        round_trip(&s7, &s9); /* old too short for 8-grams */
        round_trip(&s9, &s7);
    }
    free(r.p);
}

static void test_identical(void **state)
{
    struct img o = img_new(1 << 20);
    size_t len;

    (void)state;
    dx_random(o.p, o.n, 2);
    len = round_trip(&o, &o);
    assert_true(len < 200); /* header + one COPY */
    free(o.p);
}

/* Random old; new = old with byte edits, inserts, deletes and a moved
 * block. */
static void test_edits(void **state)
{
    const size_t n = 256 * 1024;
    struct img o = img_new(n);
    struct img nw = img_new(n + 8192);
    uint64_t s = 7;
    size_t i;
    size_t len;

    (void)state;
    dx_random(o.p, n, 3);
    /* [0, 64K) with sparse edits */
    memcpy(nw.p, o.p, 65536);
    for (i = 0; i < 100; i++)
        nw.p[dx_next(&s) % 65536] ^= (uint8_t)(1 + i);
    /* 4 KiB fresh insert */
    dx_random(nw.p + 65536, 4096, 99);
    /* old [64K+1000, 128K) (1000 bytes deleted) */
    memcpy(nw.p + 65536 + 4096, o.p + 65536 + 1000, 65536 - 1000);
    /* old [192K, 256K) moved before [128K, 192K) */
    memcpy(nw.p + 131072 + 3096, o.p + 196608, 65536);
    memcpy(nw.p + 196608 + 3096, o.p + 131072, 65536);
    nw.n = 262144 + 3096;
    len = round_trip(&o, &nw);
    /* 4 KiB of fresh random data is incompressible; the rest is cheap. */
    assert_true(len < 4096 + 1500);
    free(o.p);
    free(nw.p);
}

/* Code that moved by 40 bytes with every 4-byte "pointer" incremented by
 * 40: exact matches are short, the approximate match is the whole image,
 * and ADD's diff is a repeating pattern. */
static void test_shifted_pointers(void **state)
{
    const size_t n = 128 * 1024;
    struct img o = img_new(n);
    struct img nw = img_new(n + 40);
    size_t i;
    size_t len;

    (void)state;
    dx_random(o.p, n, 4);
    dx_random(nw.p, 40, 5);
    memcpy(nw.p + 40, o.p, n);
    for (i = 40; i + 4 <= n + 40; i += 16) {
        uint32_t v;

        memcpy(&v, nw.p + i, 4);
        v += 40;
        memcpy(nw.p + i, &v, 4);
    }
    len = round_trip(&o, &nw);
    print_message("shifted pointers: %zu bytes\n", len);
    assert_true(len < 2000); /* vs 128 KiB of new bytes */
    free(o.p);
    free(nw.p);
}

/* Large zero runs on both sides, shifted, with sparse non-zero bytes:
 * what ext4 images look like; must stay fast. */
static void test_zero_runs(void **state)
{
    const size_t n = 8u << 20;
    struct img o = img_new(n);
    struct img nw = img_new(n);
    size_t i;
    size_t len;

    (void)state;
    memset(o.p, 0, n);
    memset(nw.p, 0, n);
    dx_random(o.p + 1000000, 300000, 6);
    dx_random(o.p + 5000000, 100000, 7);
    memcpy(nw.p + 1004096, o.p + 1000000, 300000);
    memcpy(nw.p + 3000000, o.p + 5000000, 100000);
    for (i = 0; i < n; i += 65536 + 17)
        nw.p[i] = 0xa5;
    len = round_trip(&o, &nw);
    assert_true(len < 8192);
    free(o.p);
    free(nw.p);
}

static void test_frames_and_resume(void **state)
{
    const size_t n = 200000;
    struct img o = img_new(n);
    struct img nw = img_new(n);
    struct ota_delta_make_opts opts;
    struct ota_delta_make_stats st;
    struct ota_buf d;
    struct ota_buf d2;
    struct dx_out out;
    struct dx_old old = {NULL, 0, 0, 0};
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;
    struct ota_delta_resume ck[64];
    size_t nck = 0;
    size_t i;

    (void)state;
    dx_random(o.p, n, 8);
    memcpy(nw.p, o.p, n);
    for (i = 0; i < n; i += 997)
        nw.p[i] ^= 0x55;
    memset(&opts, 0, sizeof(opts));
    opts.frame_size = 256;
    opts.copy_run = 64;
    assert_int_equal(make(&d, &o, &nw, &opts, &st), 0);
    assert_true(st.frames > 3);
    /* Deterministic: the same bytes again. */
    assert_int_equal(make(&d2, &o, &nw, &opts, NULL), 0);
    assert_int_equal(d.len, d2.len);
    assert_memory_equal(d.data, d2.data, d.len);
    ota_buf_free(&d2);
    /* Apply in 100-byte pieces, collecting distinct checkpoints. */
    old.p = o.p;
    old.n = o.n;
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = dx_read;
    cfg.read_ctx = &old;
    cfg.old_length = o.n;
    cfg.sink = dx_sink;
    cfg.sink_ctx = &out;
    ota_buf_init(&out.b, 1 << 20);
    out.fail_after = -1;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
    for (i = 0; i < d.len; i += 100) {
        struct ota_delta_resume c;
        size_t k = d.len - i < 100 ? d.len - i : 100;

        assert_int_equal(ota_delta_apply_feed(a, d.data + i, k, NULL), 0);
        if (ota_delta_apply_checkpoint(&c, a) == 0 &&
            (nck == 0 || c.delta_offset != ck[nck - 1].delta_offset) && nck < 64)
            ck[nck++] = c;
    }
    assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
    assert_memory_equal(out.b.data, nw.p, n);
    ota_delta_apply_free(a);
    ota_buf_free(&out.b);
    assert_true(nck >= 3);
    for (i = 0; i < nck; i++) {
        size_t from = (size_t)ck[i].delta_offset;

        ota_buf_init(&out.b, 1 << 20);
        assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
        assert_int_equal(ota_delta_apply_feed(a, d.data, OTA_DELTA_HEADER_LEN, NULL), 0);
        assert_int_equal(ota_delta_apply_resume(a, &ck[i], NULL), 0);
        assert_int_equal(ota_delta_apply_feed(a, d.data + from, d.len - from, NULL), 0);
        assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
        assert_int_equal(out.b.len, n - ck[i].out_offset);
        assert_memory_equal(out.b.data, nw.p + ck[i].out_offset, out.b.len);
        ota_delta_apply_free(a);
        ota_buf_free(&out.b);
    }
    ota_buf_free(&d);
    free(o.p);
    free(nw.p);
}

/* Every single-byte corruption of a delta: either an error, or an output
 * the caller's SHA-256 check (against the signed hash it already knows)
 * refuses; an output equal to the right image is possible only where the
 * byte does not matter (the informative level byte, the zstd frame
 * header's window). */
static void test_flipped_bytes(void **state)
{
    const size_t n = 20000;
    struct img o = img_new(n);
    struct img nw = img_new(n + 100);
    uint8_t want[OTA_SHA256_LEN];
    uint8_t old_sha[OTA_SHA256_LEN];
    struct ota_buf d;
    size_t pos;
    size_t errors = 0;
    size_t caught_by_hash = 0;
    size_t harmless = 0;

    (void)state;
    dx_random(o.p, n, 9);
    memcpy(nw.p, o.p, 10000);
    dx_random(nw.p + 10000, 100, 10);
    memcpy(nw.p + 10100, o.p + 10000, 10000);
    nw.p[15000] ^= 1;
    assert_int_equal(ota_sha256(want, nw.p, nw.n), 0);
    assert_int_equal(ota_sha256(old_sha, o.p, o.n), 0);
    assert_int_equal(make(&d, &o, &nw, NULL, NULL), 0);
    for (pos = 0; pos < d.len; pos++) {
        struct dx_out out;
        uint8_t got[OTA_SHA256_LEN];
        int rc;

        d.data[pos] ^= 0x20;
        /* as the agent does: installed image's hash, signed to-hash */
        rc = dx_apply_checked(&out, d.data, d.len, o.p, o.n, 0, old_sha, want, nw.n, NULL);
        d.data[pos] ^= 0x20;
        if (rc != 0) {
            errors++;
        } else {
            assert_int_equal(ota_sha256(got, out.b.data, out.b.len), 0);
            if (ota_ct_equal(got, want, OTA_SHA256_LEN)) {
                /* right bytes: only where the flip cannot matter */
                assert_true(pos == 18 ||
                            (pos >= OTA_DELTA_HEADER_LEN + 4 && pos < OTA_DELTA_HEADER_LEN + 6));
                harmless++;
            } else {
                caught_by_hash++;
            }
        }
        ota_buf_free(&out.b);
    }
    print_message("flipped bytes: %zu errors, %zu wrong outputs caught by the hash check, %zu "
                  "harmless, of %zu\n",
                  errors, caught_by_hash, harmless, d.len);
    /* Nearly every flip is an error already (the zstd checksum covers the
     * op stream, the header the lengths and the from-image). */
    assert_true(errors + caught_by_hash + harmless == d.len);
    assert_true(harmless <= 3);
    assert_true(errors >= d.len - 40);
    ota_buf_free(&d);
    free(o.p);
    free(nw.p);
}

/* A forger who re-compresses a changed op stream (so the zstd checksum
 * holds): the applier may then produce wrong bytes within the declared
 * length, and the caller's SHA-256 check against the signed to-hash is
 * what refuses them. Every byte of the first 64 and then every 37th of
 * the op stream is changed in turn. */
static void test_forged_op_stream(void **state)
{
    const size_t n = 20000;
    struct img o = img_new(n);
    struct img nw = img_new(n + 100);
    uint8_t want[OTA_SHA256_LEN];
    uint8_t old_sha[OTA_SHA256_LEN];
    struct ota_delta_make_stats st;
    struct ota_buf d;
    uint8_t *ops;
    size_t nops;
    size_t pos;
    size_t errors = 0;
    size_t caught_by_hash = 0;

    (void)state;
    dx_random(o.p, n, 9);
    memcpy(nw.p, o.p, 10000);
    dx_random(nw.p + 10000, 100, 10);
    memcpy(nw.p + 10100, o.p + 10000, 10000);
    nw.p[15000] ^= 1;
    assert_int_equal(ota_sha256(want, nw.p, nw.n), 0);
    assert_int_equal(ota_sha256(old_sha, o.p, o.n), 0);
    assert_int_equal(make(&d, &o, &nw, NULL, &st), 0);
    assert_int_equal(st.frames, 1);
    ops = malloc(st.op_stream_length);
    assert_non_null(ops);
    nops = ZSTD_decompress(ops, st.op_stream_length, d.data + OTA_DELTA_HEADER_LEN,
                           d.len - OTA_DELTA_HEADER_LEN);
    assert_int_equal(nops, st.op_stream_length);
    for (pos = 0; pos < nops; pos += pos < 64 ? 1 : 37) {
        struct ota_buf forged;
        struct dx_out out;
        uint8_t got[OTA_SHA256_LEN];
        int rc;

        ota_buf_init(&forged, 1 << 20);
        assert_int_equal(ota_buf_append(&forged, d.data, OTA_DELTA_HEADER_LEN), 0);
        ops[pos] ^= 0x04;
        dx_frame(&forged, ops, nops, 15, 0);
        ops[pos] ^= 0x04;
        rc =
            dx_apply_checked(&out, forged.data, forged.len, o.p, o.n, 0, old_sha, want, nw.n, NULL);
        if (rc != 0) {
            errors++;
        } else {
            assert_int_equal(ota_sha256(got, out.b.data, out.b.len), 0);
            assert_false(ota_ct_equal(got, want, OTA_SHA256_LEN));
            caught_by_hash++;
        }
        assert_true(out.b.len <= nw.n);
        ota_buf_free(&out.b);
        ota_buf_free(&forged);
    }
    print_message("forged op streams: %zu refused by the applier, %zu wrong outputs caught by the "
                  "caller's hash check\n",
                  errors, caught_by_hash);
    assert_true(caught_by_hash > 0);
    free(ops);
    ota_buf_free(&d);
    free(o.p);
    free(nw.p);
}

static void test_bad_args(void **state)
{
    struct ota_buf d;
    struct ota_delta_make_opts opts;
    uint8_t x = 0;

    (void)state;
    ota_buf_init(&d, 1 << 20);
    memset(&opts, 0, sizeof(opts));
    opts.window_log = 23;
    assert_int_equal(ota_delta_make(ota_sink_buf, &d, NULL, &x, 1, &x, 1, &opts, NULL),
                     OTA_ERR_INVALID_ARG);
    opts.window_log = 9;
    assert_int_equal(ota_delta_make(ota_sink_buf, &d, NULL, &x, 1, &x, 1, &opts, NULL),
                     OTA_ERR_INVALID_ARG);
    opts.window_log = 0;
    opts.level = 23;
    assert_int_equal(ota_delta_make(ota_sink_buf, &d, NULL, &x, 1, &x, 1, &opts, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_delta_make(NULL, &d, NULL, &x, 1, &x, 1, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_delta_make(ota_sink_buf, &d, NULL, NULL, 1, &x, 1, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    /* Caps are checked before the images are touched. */
    assert_int_equal(
        ota_delta_make(ota_sink_buf, &d, NULL, &x, OTA_DELTA_MAKE_OLD_MAX + 1, &x, 1, NULL, NULL),
        OTA_ERR_TOO_LARGE);
    assert_int_equal(d.len, 0);
    /* A sink that refuses: its error comes back. */
    {
        struct dx_out out;

        ota_buf_init(&out.b, 1 << 20);
        out.fail_after = 50;
        assert_int_equal(ota_delta_make(dx_sink, &out, NULL, &x, 1, &x, 1, NULL, NULL), OTA_ERR_IO);
        ota_buf_free(&out.b);
    }
    ota_buf_free(&d);
}

static void test_window_log(void **state)
{
    struct img o = img_new(1000);
    struct img nw = img_new(1000);
    struct ota_buf d;
    struct ota_delta_make_stats st;
    struct ota_delta_info info;

    (void)state;
    dx_random(o.p, o.n, 11);
    dx_random(nw.p, nw.n, 12);
    assert_int_equal(make(&d, &o, &nw, NULL, &st), 0);
    assert_int_equal(st.window_log, 11); /* 1000 + 1024 bytes fit in 2^11 */
    assert_int_equal(ota_delta_header_parse(&info, d.data, d.len, NULL), 0);
    assert_int_equal(info.window_log, 11);
    assert_int_equal(info.zstd_level, 22);
    ota_buf_free(&d);
    free(o.p);
    free(nw.p);
    /* A to-image above 2 MiB: the default cap, 2^21; the format's 2^22 on
     * request. */
    {
        struct img o2 = img_new(4096);
        struct img n2 = img_new((3u << 20) + 5);
        struct ota_delta_make_opts opts;

        memset(&opts, 0, sizeof(opts));
        opts.level = 1;
        dx_random(o2.p, o2.n, 13);
        dx_random(n2.p, n2.n, 14);
        assert_int_equal(make(&d, &o2, &n2, &opts, &st), 0);
        assert_int_equal(st.window_log, OTA_DELTA_MAKE_WINDOW_LOG_DEFAULT);
        assert_int_equal(st.window_log, 21);
        ota_buf_free(&d);
        opts.window_log = OTA_DELTA_WINDOW_LOG_MAX;
        assert_int_equal(make(&d, &o2, &n2, &opts, &st), 0);
        assert_int_equal(st.window_log, 22);
        ota_buf_free(&d);
        free(o2.p);
        free(n2.p);
    }
}

/* ---- memory bound, measured ---- */

static size_t heap_in_use(void)
{
#ifdef DX_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
#endif
}

struct mem_probe {
    const uint8_t *old;
    size_t old_len;
    struct ota_sha256_ctx *sha;
    size_t base;
    size_t peak;
    uint64_t bytes;
};

static void probe(struct mem_probe *p)
{
    size_t now = heap_in_use();

    if (now > p->peak)
        p->peak = now;
}

static int probe_sink(void *ctx, const void *data, size_t len)
{
    struct mem_probe *p = ctx;

    probe(p);
    p->bytes += len;
    return ota_sha256_update(p->sha, data, len);
}

static int probe_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct mem_probe *p = ctx;

    probe(p);
    if (off > p->old_len || len > p->old_len - off)
        return OTA_ERR_INVALID_ARG;
    memcpy(buf, p->old + off, len);
    return 0;
}

/* 24 MiB old, 32 MiB new with 8 MiB of fresh data (the 4 MiB window is
 * used in full): the heap grows by at most ota_delta_apply_mem_max(),
 * which is at most 5 MiB, while 32 MiB come out. */
static void test_memory_bound(void **state)
{
    const size_t on = 24u << 20;
    const size_t nn = 32u << 20;
    struct img o = img_new(on);
    struct img nw = img_new(nn);
    struct ota_buf d;
    struct mem_probe p;
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;
    uint8_t want[OTA_SHA256_LEN];
    uint8_t got[OTA_SHA256_LEN];
    struct ota_delta_make_opts opts;
    uint64_t seed = 14;
    size_t i;

    (void)state;
    dx_random(o.p, on, 13);
    memcpy(nw.p, o.p, 12u << 20);
    for (i = 0; i < (8u << 20); i++) /* compressible but new: text-like */
        nw.p[(12u << 20) + i] = (uint8_t)("abcdefgh"[dx_next(&seed) % 8]);
    memcpy(nw.p + (20u << 20), o.p + (12u << 20), 12u << 20);
    for (i = 0; i < nn; i += 4099)
        nw.p[i] ^= 0x11;
    assert_int_equal(ota_sha256(want, nw.p, nn), 0);
    memset(&opts, 0, sizeof(opts));
    opts.level = 3; /* the level does not change the applier's memory; 22 is slow here */
    assert_int_equal(make(&d, &o, &nw, &opts, NULL), 0);
    free(nw.p);

    memset(&p, 0, sizeof(p));
    assert_int_equal(ota_sha256_init(&p.sha), 0);
    p.old = o.p;
    p.old_len = on;
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = probe_read;
    cfg.read_ctx = &p;
    cfg.old_length = on;
    cfg.sink = probe_sink;
    cfg.sink_ctx = &p;
    p.base = heap_in_use();
    p.peak = p.base;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
    for (i = 0; i < d.len; i += 1500) { /* network-sized pieces */
        size_t k = d.len - i < 1500 ? d.len - i : 1500;

        assert_int_equal(ota_delta_apply_feed(a, d.data + i, k, NULL), 0);
    }
    assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
    probe(&p);
    ota_delta_apply_free(a);
    assert_int_equal(p.bytes, nn);
    assert_int_equal(ota_sha256_final(got, p.sha), 0);
    ota_sha256_ctx_free(p.sha);
    assert_memory_equal(got, want, OTA_SHA256_LEN);
    print_message("applier heap peak: %zu bytes (bound %zu), delta %zu bytes\n", p.peak - p.base,
                  ota_delta_apply_mem_max(), d.len);
    assert_true(p.peak - p.base <= ota_delta_apply_mem_max() + 4096);
    assert_true(ota_delta_apply_mem_max() <= (size_t)5 << 20);
    /* and the window was really used: more than 2 MiB */
    assert_true(p.peak - p.base > (size_t)2 << 20);
    ota_buf_free(&d);
    free(o.p);
}

/* Makes the delta o -> n at level 3 into d (initialised here), quietly. */
static int make_quiet(struct ota_buf *d, const struct img *o, const struct img *n)
{
    struct ota_delta_make_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.level = 3;
    ota_buf_init(d, (size_t)1 << 24);
    return ota_delta_make(ota_sink_buf, d, NULL, o->p, o->n, n->p, n->n, &opts, NULL);
}

/* make_quiet: 0 and the bytes of want, or an error. */
static int fa_make(const struct img *o, const struct img *n, const struct ota_buf *want)
{
    struct ota_buf d;
    int rc = make_quiet(&d, o, n);

    if (rc == 0 && (d.len != want->len || memcmp(d.data, want->data, d.len) != 0))
        rc = OTA_ERR_FORMAT;
    ota_buf_free(&d);
    return rc;
}

/* STYLE rule 9 (server side): each allocation of a make (suffix array,
 * bitmap, op stream, compressor, the sink's buffer) fails in turn; a run
 * that succeeds gives the reference delta byte for byte. */
static void test_alloc_faults(void **state)
{
    struct img o = img_new(200000);
    struct img n = img_new(210000);
    struct ota_buf want;
    int rc;

    (void)state;
    dx_random(o.p, o.n, 51);
    memcpy(n.p, o.p, 100000);
    dx_random(n.p + 100000, 10000, 52);
    memcpy(n.p + 110000, o.p + 100000, 100000);
    assert_int_equal(make_quiet(&want, &o, &n), 0);
    FA_LOOP(rc, fa_make(&o, &n, &want));
    assert_true(fa_failed_runs() >= 4);
    ota_buf_free(&want);
    free(o.p);
    free(n.p);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),      cmocka_unit_test(test_small_and_empty),
        cmocka_unit_test(test_identical),         cmocka_unit_test(test_edits),
        cmocka_unit_test(test_shifted_pointers),  cmocka_unit_test(test_zero_runs),
        cmocka_unit_test(test_frames_and_resume), cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_forged_op_stream),  cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_window_log),        cmocka_unit_test(test_memory_bound),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
