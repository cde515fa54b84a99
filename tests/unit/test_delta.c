/* Unit tests for delta.c (the applier) on hand-made deltas: the op
 * semantics, pieces of any size, every malformation of
 * docs/formats/delta.md refused with its own error and without a byte of
 * output beyond what the format allows, truncation at every length,
 * sticky errors, failing callbacks, resume points and the memory bound.
 * Round trips with the maker are in test_delta_make.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/delta.h"

#include "delta_fixture.h"
#include "failalloc.h"

#define OLD_LEN 4096
#define WLOG    12

static uint8_t old_img[OLD_LEN];

static int setup(void **state)
{
    (void)state;
    dx_random(old_img, OLD_LEN, 42);
    return 0;
}

/* The reference op stream and what it produces:
 * INSERT "hello"; COPY old[100..200); ADD old[50..60) + diff;
 * COPY old[4000..4096); END. */
static void good_ops(struct ota_buf *ops, struct ota_buf *expect)
{
    uint8_t diff[10];
    uint8_t added[10];
    size_t i;

    for (i = 0; i < sizeof(diff); i++) {
        diff[i] = (uint8_t)(i * 37 + 1);
        added[i] = (uint8_t)(old_img[50 + i] + diff[i]);
    }
    ota_buf_init(ops, 1 << 20);
    ota_buf_init(expect, 1 << 20);
    dx_insert(ops, "hello", 5);
    dx_copy(ops, 100, 100);
    dx_add(ops, -150, diff, sizeof(diff));
    dx_copy(ops, 3940, 96);
    dx_tag(ops, OTA_DELTA_OP_END);
    assert_int_equal(ota_buf_append(expect, "hello", 5), 0);
    assert_int_equal(ota_buf_append(expect, old_img + 100, 100), 0);
    assert_int_equal(ota_buf_append(expect, added, sizeof(added)), 0);
    assert_int_equal(ota_buf_append(expect, old_img + 4000, 96), 0);
}

/* A delta: header for (old_img -> to[0..to_len)) + one frame of ops. */
static void make_delta(struct ota_buf *d, const struct ota_buf *ops, const uint8_t *to,
                       size_t to_len)
{
    uint8_t h[OTA_DELTA_HEADER_LEN];

    ota_buf_init(d, 1 << 24);
    dx_header(h, old_img, OLD_LEN, to, to_len, WLOG);
    assert_int_equal(ota_buf_append(d, h, sizeof(h)), 0);
    dx_frame(d, ops->data, ops->len, WLOG, 0);
}

/* The reference delta with the SHA-256 of its from- and to-image. */
static void good_delta(struct ota_buf *ops, struct ota_buf *expect, struct ota_buf *d,
                       uint8_t old_sha[OTA_SHA256_LEN], uint8_t to_sha[OTA_SHA256_LEN])
{
    good_ops(ops, expect);
    make_delta(d, ops, expect->data, expect->len);
    assert_int_equal(ota_sha256(old_sha, old_img, OLD_LEN), 0);
    assert_int_equal(ota_sha256(to_sha, expect->data, expect->len), 0);
}

/* Expects `want` from applying d, with at most max_out bytes of output. */
static void expect_err(const struct ota_buf *d, int want, size_t max_out)
{
    struct dx_out out;
    struct ota_detail det = {{0}};
    int rc = dx_apply(&out, d->data, d->len, old_img, OLD_LEN, 0, &det);

    if (rc != want)
        print_error("got %s (%s), want %s\n", ota_errname(rc), det.msg, ota_errname(want));
    assert_int_equal(rc, want);
    assert_true(out.b.len <= max_out);
    ota_buf_free(&out.b);
    /* The same in 1-byte pieces. */
    rc = dx_apply(&out, d->data, d->len, old_img, OLD_LEN, 1, &det);
    assert_int_equal(rc, want);
    assert_true(out.b.len <= max_out);
    ota_buf_free(&out.b);
}

static void test_good(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    size_t pieces[] = {0, 1, 2, 3, 7, 64, 105};
    size_t i;

    (void)state;
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct dx_out out;
        struct ota_detail det = {{0}};

        assert_int_equal(dx_apply(&out, d.data, d.len, old_img, OLD_LEN, pieces[i], &det), 0);
        assert_int_equal(out.b.len, expect.len);
        assert_memory_equal(out.b.data, expect.data, expect.len);
        ota_buf_free(&out.b);
    }
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

static void test_header_parse(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    struct ota_delta_info info;
    uint8_t want[OTA_SHA256_LEN];

    (void)state;
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    assert_int_equal(ota_delta_header_parse(&info, d.data, d.len, NULL), 0);
    assert_int_equal(info.from_length, OLD_LEN);
    assert_int_equal(info.to_length, expect.len);
    assert_int_equal(info.window_log, WLOG);
    assert_int_equal(info.zstd_level, 3);
    assert_int_equal(ota_sha256(want, old_img, OLD_LEN), 0);
    assert_memory_equal(info.from_sha256, want, OTA_SHA256_LEN);
    assert_int_equal(ota_sha256(want, expect.data, expect.len), 0);
    assert_memory_equal(info.to_sha256, want, OTA_SHA256_LEN);
    assert_int_equal(ota_delta_header_parse(&info, d.data, OTA_DELTA_HEADER_LEN - 1, NULL),
                     OTA_ERR_TRUNCATED);
    assert_int_equal(ota_delta_header_parse(&info, "OTAD", 4, NULL), OTA_ERR_TRUNCATED);
    assert_int_equal(ota_delta_header_parse(&info, "OTAX", 4, NULL), OTA_ERR_BAD_MAGIC);
    assert_int_equal(info.to_length, 0);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

/* Each header malformation, fed as part of a whole delta: its error and
 * no output at all. */
static void test_header_errors(void **state)
{
    static const struct {
        size_t off;
        uint8_t val;
        int err;
    } cases[] = {
        {0, 'X', OTA_ERR_BAD_MAGIC},
        {7, 'a', OTA_ERR_BAD_MAGIC},
        {8, 2, OTA_ERR_FORMAT_VERSION},
        {11, 1, OTA_ERR_FORMAT_VERSION},
        {12, 1, OTA_ERR_FORMAT},
        {15, 0x80, OTA_ERR_FORMAT},
        {16, 2, OTA_ERR_UNSUPPORTED},
        {16, 0, OTA_ERR_UNSUPPORTED},
        {17, 23, OTA_ERR_TOO_LARGE},
        {17, 255, OTA_ERR_TOO_LARGE},
        {17, 9, OTA_ERR_FORMAT},
        {19, 1, OTA_ERR_FORMAT},
        {23, 1, OTA_ERR_FORMAT},
        {29, 1, OTA_ERR_TOO_LARGE},        /* from_length 2^40 + ... */
        {37, 2, OTA_ERR_TOO_LARGE},        /* to_length >= 2^41 */
        {24, 0xff, OTA_ERR_DELTA_BASE},    /* from_length differs from the installed image */
        {40, 0x5a, OTA_ERR_DELTA_BASE},    /* from_sha256 differs (checked: caller gave it) */
        {71, 0x5a, OTA_ERR_DELTA_BASE},    /* last byte of from_sha256 */
        {72, 0x5a, OTA_ERR_HASH_MISMATCH}, /* to_sha256 differs from signed targets */
        {32, 0x01, OTA_ERR_LENGTH_MISMATCH},
    };
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    uint8_t old_sha[OTA_SHA256_LEN];
    uint8_t to_sha[OTA_SHA256_LEN];
    size_t i;

    (void)state;
    good_delta(&ops, &expect, &d, old_sha, to_sha);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dx_old o = {old_img, OLD_LEN, 0, 0};
        struct dx_out out;
        struct ota_delta_apply_cfg cfg;
        struct ota_delta_apply *a = NULL;
        struct ota_detail det = {{0}};
        uint8_t saved = d.data[cases[i].off];
        int rc;

        d.data[cases[i].off] = cases[i].val;
        ota_buf_init(&out.b, 1 << 20);
        out.fail_after = -1;
        memset(&cfg, 0, sizeof(cfg));
        cfg.read_old = dx_read;
        cfg.read_ctx = &o;
        cfg.old_length = OLD_LEN;
        cfg.old_sha256 = old_sha;
        cfg.to_sha256 = to_sha;
        cfg.to_length = expect.len;
        cfg.sink = dx_sink;
        cfg.sink_ctx = &out;
        assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
        rc = ota_delta_apply_feed(a, d.data, d.len, &det);
        if (rc != cases[i].err)
            print_error("case %zu: got %s (%s)\n", i, ota_errname(rc), det.msg);
        assert_int_equal(rc, cases[i].err);
        assert_true(strlen(det.msg) > 0);
        assert_int_equal(out.b.len, 0);
        assert_int_equal(o.reads, 0);
        /* Sticky. */
        assert_int_equal(ota_delta_apply_feed(a, "x", 1, NULL), cases[i].err);
        assert_int_equal(ota_delta_apply_finish(a, NULL), cases[i].err);
        ota_delta_apply_free(a);
        ota_buf_free(&out.b);
        d.data[cases[i].off] = saved;
    }
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

/* Without the caller's hashes, a different to-hash is not the applier's
 * business (the caller checks); the from-length always is. */
static void test_no_hashes_given(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    struct dx_out out;

    (void)state;
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    d.data[40] ^= 1;
    d.data[72] ^= 1;
    assert_int_equal(dx_apply(&out, d.data, d.len, old_img, OLD_LEN, 0, NULL), 0);
    assert_memory_equal(out.b.data, expect.data, expect.len);
    ota_buf_free(&out.b);
    assert_int_equal(dx_apply(&out, d.data, d.len, old_img, OLD_LEN - 1, 0, NULL),
                     OTA_ERR_DELTA_BASE);
    assert_int_equal(out.b.len, 0);
    ota_buf_free(&out.b);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

/* Op stream with a given to_length (the header's to-hash is arbitrary). */
static void ops_delta(struct ota_buf *d, const struct ota_buf *ops, size_t to_len)
{
    uint8_t *to = calloc(1, to_len + 1);

    assert_non_null(to);
    make_delta(d, ops, to, to_len);
    free(to);
}

static void test_range(void **state)
{
    struct ota_buf ops;
    struct ota_buf d;
    uint8_t diff[8] = {0};

    (void)state;
    /* forward seek past the end */
    ota_buf_init(&ops, 1 << 20);
    dx_copy(&ops, OLD_LEN + 1, 1);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 1);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* backward seek before 0 */
    ota_buf_init(&ops, 1 << 20);
    dx_copy(&ops, 10, 5);
    dx_copy(&ops, -16, 1);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 6);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 5);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* length past the end */
    ota_buf_init(&ops, 1 << 20);
    dx_copy(&ops, OLD_LEN - 96, 97);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 97);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* ADD past the end */
    ota_buf_init(&ops, 1 << 20);
    dx_add(&ops, OLD_LEN - 4, diff, 8);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 8);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* huge seek (2^62) */
    ota_buf_init(&ops, 1 << 20);
    dx_copy(&ops, INT64_C(1) << 62, 1);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 1);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* most negative seek */
    ota_buf_init(&ops, 1 << 20);
    dx_copy(&ops, INT64_MIN, 1);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 1);
    expect_err(&d, OTA_ERR_DELTA_RANGE, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
}

static void test_overrun_and_length(void **state)
{
    struct ota_buf ops;
    struct ota_buf d;
    uint8_t data[16] = "0123456789abcdef";

    (void)state;
    /* one INSERT longer than to_length: nothing out */
    ota_buf_init(&ops, 1 << 20);
    dx_insert(&ops, data, 11);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 10);
    expect_err(&d, OTA_ERR_DELTA_OVERRUN, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* INSERT 5 then COPY 6 with to_length 10: stops at 5 */
    ota_buf_init(&ops, 1 << 20);
    dx_insert(&ops, data, 5);
    dx_copy(&ops, 0, 6);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 10);
    expect_err(&d, OTA_ERR_DELTA_OVERRUN, 5);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* a huge length */
    ota_buf_init(&ops, 1 << 20);
    dx_tag(&ops, OTA_DELTA_OP_INSERT);
    dx_uvarint(&ops, UINT64_MAX);
    ops_delta(&d, &ops, 10);
    expect_err(&d, OTA_ERR_DELTA_OVERRUN, 0);
    ota_buf_free(&ops);
    ota_buf_free(&d);
    /* END before to_length */
    ota_buf_init(&ops, 1 << 20);
    dx_insert(&ops, data, 5);
    dx_tag(&ops, 0);
    ops_delta(&d, &ops, 10);
    expect_err(&d, OTA_ERR_LENGTH_MISMATCH, 5);
    ota_buf_free(&ops);
    ota_buf_free(&d);
}

static void test_bad_ops(void **state)
{
    static const uint8_t bad[][12] = {
        {0x04},                   /* unknown tag */
        {0xff},                   /* unknown tag */
        {0x03, 0x00},             /* INSERT of 0 */
        {0x01, 0x00, 0x00},       /* COPY of 0 */
        {0x03, 0x85, 0x00},       /* non-canonical 5 */
        {0x01, 0x80, 0x00, 0x01}, /* non-canonical seek 0 */
        {0x03, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, /* > 64 bits */
        {0x03, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81}, /* 11 bytes */
    };
    static const size_t lens[] = {1, 1, 2, 3, 3, 4, 11, 11};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct ota_buf ops;
        struct ota_buf d;

        ota_buf_init(&ops, 1 << 20);
        assert_int_equal(ota_buf_append(&ops, bad[i], lens[i]), 0);
        dx_insert(&ops, "abcde", 5);
        dx_tag(&ops, 0);
        ops_delta(&d, &ops, 10);
        expect_err(&d, OTA_ERR_FORMAT, 0);
        ota_buf_free(&ops);
        ota_buf_free(&d);
    }
}

/* An op cut by the end of its frame. */
static void test_op_spans_frames(void **state)
{
    static const uint8_t part1[] = {0x03, 0x05, 'a', 'b'};
    static const uint8_t part2[] = {'c', 'd', 'e', 0x00};
    uint8_t h[OTA_DELTA_HEADER_LEN];
    struct ota_buf d;

    (void)state;
    ota_buf_init(&d, 1 << 20);
    dx_header(h, old_img, OLD_LEN, (const uint8_t *)"abcde", 5, WLOG);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    dx_frame(&d, part1, sizeof(part1), WLOG, 0);
    dx_frame(&d, part2, sizeof(part2), WLOG, 0);
    expect_err(&d, OTA_ERR_FORMAT, 2);
    ota_buf_free(&d);
}

static void test_trailing(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    static const uint8_t end_only[] = {0x00};

    (void)state;
    /* op bytes after END, same frame */
    good_ops(&ops, &expect);
    dx_insert(&ops, "x", 1);
    make_delta(&d, &ops, expect.data, expect.len);
    expect_err(&d, OTA_ERR_TRAILING_DATA, expect.len);
    ota_buf_free(&d);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    /* a byte after the last frame */
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    assert_int_equal(ota_buf_append(&d, "\0", 1), 0);
    expect_err(&d, OTA_ERR_TRAILING_DATA, expect.len);
    ota_buf_free(&d);
    /* another frame after the one holding END */
    make_delta(&d, &ops, expect.data, expect.len);
    dx_frame(&d, end_only, 1, WLOG, 0);
    expect_err(&d, OTA_ERR_TRAILING_DATA, expect.len);
    ota_buf_free(&d);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
}

static void test_frame_checks(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    uint8_t h[OTA_DELTA_HEADER_LEN];
    uint8_t *big;
    const size_t big_len = (size_t)3 << 20;
    /* A skippable frame: magic 0x184D2A50, length 4, 4 bytes. */
    static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};

    (void)state;
    good_ops(&ops, &expect);
    /* no content checksum */
    ota_buf_init(&d, 1 << 20);
    dx_header(h, old_img, OLD_LEN, expect.data, expect.len, WLOG);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    dx_frame(&d, ops.data, ops.len, WLOG, 1);
    expect_err(&d, OTA_ERR_FORMAT, 0);
    ota_buf_free(&d);
    /* skippable frame */
    ota_buf_init(&d, 1 << 20);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    assert_int_equal(ota_buf_append(&d, skippable, sizeof(skippable)), 0);
    expect_err(&d, OTA_ERR_FORMAT, 0);
    ota_buf_free(&d);
    /* not zstd at all */
    ota_buf_init(&d, 1 << 20);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    assert_int_equal(ota_buf_append(&d, "not a zstd frame", 16), 0);
    expect_err(&d, OTA_ERR_DECOMPRESS, 0);
    ota_buf_free(&d);
    /* corrupt checksum: the whole output came, then the error */
    make_delta(&d, &ops, expect.data, expect.len);
    d.data[d.len - 1] ^= 0x01;
    expect_err(&d, OTA_ERR_DECOMPRESS, expect.len);
    ota_buf_free(&d);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    /* frame window 2^21 in a delta that announces 2^20 */
    big = calloc(1, big_len);
    assert_non_null(big);
    ota_buf_init(&ops, big_len + 64);
    dx_insert(&ops, big, big_len - 64);
    dx_tag(&ops, 0);
    ota_buf_init(&d, 1 << 22);
    dx_header(h, old_img, OLD_LEN, big, big_len - 64, 20);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    dx_frame(&d, ops.data, ops.len, 21, 0);
    expect_err(&d, OTA_ERR_TOO_LARGE, 0);
    ota_buf_free(&d);
    ota_buf_free(&ops);
    free(big);
}

/* Every proper prefix of a valid delta is "truncated" at finish. */
static void test_truncated_everywhere(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    size_t n;

    (void)state;
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    for (n = 0; n < d.len; n++) {
        struct dx_out out;
        struct ota_detail det = {{0}};
        int rc = dx_apply(&out, d.data, n, old_img, OLD_LEN, 0, &det);

        if (rc != OTA_ERR_TRUNCATED)
            print_error("prefix %zu: %s (%s)\n", n, ota_errname(rc), det.msg);
        assert_int_equal(rc, OTA_ERR_TRUNCATED);
        assert_true(out.b.len <= expect.len);
        ota_buf_free(&out.b);
    }
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

static void test_callback_failures(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    struct dx_old o = {old_img, OLD_LEN, 2, 0};
    struct dx_out out;
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;

    (void)state;
    good_ops(&ops, &expect);
    make_delta(&d, &ops, expect.data, expect.len);
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = dx_read;
    cfg.read_ctx = &o;
    cfg.old_length = OLD_LEN;
    cfg.sink = dx_sink;
    cfg.sink_ctx = &out;
    /* The second read of the from-image fails. */
    ota_buf_init(&out.b, 1 << 20);
    out.fail_after = -1;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
    assert_int_equal(ota_delta_apply_feed(a, d.data, d.len, NULL), OTA_ERR_IO);
    assert_int_equal(out.b.len, 105);
    assert_int_equal(ota_delta_apply_finish(a, NULL), OTA_ERR_IO);
    ota_delta_apply_free(a);
    ota_buf_free(&out.b);
    /* The sink refuses after 3 bytes. */
    o.fail_at_read = 0;
    ota_buf_init(&out.b, 1 << 20);
    out.fail_after = 3;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
    assert_int_equal(ota_delta_apply_feed(a, d.data, d.len, NULL), OTA_ERR_IO);
    assert_int_equal(ota_delta_apply_produced(a), 0);
    ota_delta_apply_free(a);
    ota_buf_free(&out.b);
    /* Bad arguments. */
    assert_int_equal(ota_delta_apply_new(&a, NULL), OTA_ERR_INVALID_ARG);
    cfg.sink = NULL;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), OTA_ERR_INVALID_ARG);
    assert_null(a);
    ota_delta_apply_free(NULL);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

/* Three frames; resume from each frame boundary in a fresh applier. */
static void test_resume(void **state)
{
    struct ota_buf f[3];
    struct ota_buf expect;
    struct ota_buf d;
    struct ota_delta_resume ck[4];
    size_t frame_end[3];
    uint8_t h[OTA_DELTA_HEADER_LEN];
    uint8_t diff[4] = {1, 2, 3, 4};
    size_t i;
    size_t k;

    (void)state;
    for (i = 0; i < 3; i++)
        ota_buf_init(&f[i], 1 << 20);
    dx_insert(&f[0], "hello", 5);
    dx_copy(&f[0], 100, 100);     /* cursor 200 */
    dx_add(&f[1], -200, diff, 4); /* old[0..4) + diff, cursor 4 */
    dx_copy(&f[2], 4000, 50);     /* old[4004..4054) */
    dx_tag(&f[2], 0);
    ota_buf_init(&expect, 1 << 20);
    assert_int_equal(ota_buf_append(&expect, "hello", 5), 0);
    assert_int_equal(ota_buf_append(&expect, old_img + 100, 100), 0);
    for (i = 0; i < 4; i++) {
        uint8_t b = (uint8_t)(old_img[i] + diff[i]);

        assert_int_equal(ota_buf_append(&expect, &b, 1), 0);
    }
    assert_int_equal(ota_buf_append(&expect, old_img + 4004, 50), 0);
    ota_buf_init(&d, 1 << 20);
    dx_header(h, old_img, OLD_LEN, expect.data, expect.len, WLOG);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    for (i = 0; i < 3; i++) {
        dx_frame(&d, f[i].data, f[i].len, WLOG, 0);
        frame_end[i] = d.len;
    }
    /* Whole apply, checkpoint after the header and after each frame. */
    {
        struct dx_old o = {old_img, OLD_LEN, 0, 0};
        struct dx_out out;
        struct ota_delta_apply_cfg cfg;
        struct ota_delta_apply *a = NULL;
        size_t at = 0;

        memset(&cfg, 0, sizeof(cfg));
        cfg.read_old = dx_read;
        cfg.read_ctx = &o;
        cfg.old_length = OLD_LEN;
        cfg.sink = dx_sink;
        cfg.sink_ctx = &out;
        ota_buf_init(&out.b, 1 << 20);
        out.fail_after = -1;
        assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
        assert_int_equal(ota_delta_apply_checkpoint(&ck[0], a), OTA_ERR_INVALID_ARG);
        assert_int_equal(ota_delta_apply_feed(a, d.data, OTA_DELTA_HEADER_LEN, NULL), 0);
        assert_int_equal(ota_delta_apply_checkpoint(&ck[0], a), 0);
        assert_int_equal(ck[0].delta_offset, OTA_DELTA_HEADER_LEN);
        at = OTA_DELTA_HEADER_LEN;
        for (i = 0; i < 3; i++) {
            assert_int_equal(ota_delta_apply_feed(a, d.data + at, frame_end[i] - at, NULL), 0);
            at = frame_end[i];
            if (i < 2) {
                assert_int_equal(ota_delta_apply_checkpoint(&ck[i + 1], a), 0);
                assert_int_equal(ck[i + 1].delta_offset, frame_end[i]);
                assert_int_equal(ck[i + 1].out_offset, ota_delta_apply_produced(a));
            }
        }
        assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
        assert_memory_equal(out.b.data, expect.data, expect.len);
        assert_int_equal(ck[1].old_cursor, 200);
        assert_int_equal(ck[2].old_cursor, 4);
        ota_delta_apply_free(a);
        ota_buf_free(&out.b);
    }
    for (k = 0; k < 3; k++) {
        struct dx_old o = {old_img, OLD_LEN, 0, 0};
        struct dx_out out;
        struct ota_delta_apply_cfg cfg;
        struct ota_delta_apply *a = NULL;
        size_t from = (size_t)ck[k].delta_offset;

        memset(&cfg, 0, sizeof(cfg));
        cfg.read_old = dx_read;
        cfg.read_ctx = &o;
        cfg.old_length = OLD_LEN;
        cfg.sink = dx_sink;
        cfg.sink_ctx = &out;
        ota_buf_init(&out.b, 1 << 20);
        out.fail_after = -1;
        assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
        assert_int_equal(ota_delta_apply_resume(a, &ck[k], NULL), OTA_ERR_INVALID_ARG);
        assert_int_equal(ota_delta_apply_feed(a, d.data, OTA_DELTA_HEADER_LEN, NULL), 0);
        assert_int_equal(ota_delta_apply_resume(a, &ck[k], NULL), 0);
        assert_int_equal(ota_delta_apply_feed(a, d.data + from, d.len - from, NULL), 0);
        assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
        assert_int_equal(out.b.len, expect.len - ck[k].out_offset);
        assert_memory_equal(out.b.data, expect.data + ck[k].out_offset, out.b.len);
        ota_delta_apply_free(a);
        ota_buf_free(&out.b);
    }
    /* Not right after the header, or out of range: refused. */
    {
        struct dx_old o = {old_img, OLD_LEN, 0, 0};
        struct dx_out out;
        struct ota_delta_apply_cfg cfg;
        struct ota_delta_apply *a = NULL;
        struct ota_delta_resume bad = ck[1];

        memset(&cfg, 0, sizeof(cfg));
        cfg.read_old = dx_read;
        cfg.read_ctx = &o;
        cfg.old_length = OLD_LEN;
        cfg.sink = dx_sink;
        cfg.sink_ctx = &out;
        ota_buf_init(&out.b, 1 << 20);
        out.fail_after = -1;
        assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
        assert_int_equal(ota_delta_apply_feed(a, d.data, OTA_DELTA_HEADER_LEN, NULL), 0);
        bad.old_cursor = OLD_LEN + 1;
        assert_int_equal(ota_delta_apply_resume(a, &bad, NULL), OTA_ERR_INVALID_ARG);
        bad = ck[1];
        bad.out_offset = expect.len + 1;
        assert_int_equal(ota_delta_apply_resume(a, &bad, NULL), OTA_ERR_INVALID_ARG);
        bad = ck[1];
        bad.delta_offset = 3;
        assert_int_equal(ota_delta_apply_resume(a, &bad, NULL), OTA_ERR_INVALID_ARG);
        assert_int_equal(ota_delta_apply_feed(a, d.data + OTA_DELTA_HEADER_LEN, 1, NULL), 0);
        assert_int_equal(ota_delta_apply_resume(a, &ck[1], NULL), OTA_ERR_INVALID_ARG);
        ota_delta_apply_free(a);
        ota_buf_free(&out.b);
    }
    for (i = 0; i < 3; i++)
        ota_buf_free(&f[i]);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

static void test_read_fd(void **state)
{
    char path[] = "/tmp/otachain-test-delta-XXXXXX";
    int fd = mkstemp(path);
    uint8_t buf[32];

    (void)state;
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, old_img, 100), 100);
    assert_int_equal(ota_delta_read_fd(&fd, buf, 10, 90), 0);
    assert_memory_equal(buf, old_img + 90, 10);
    assert_int_equal(ota_delta_read_fd(&fd, buf, 11, 90), OTA_ERR_IO);
    assert_int_equal(ota_delta_read_fd(&fd, buf, 1, UINT64_MAX - 1), OTA_ERR_IO);
    assert_int_equal(ota_delta_read_fd(NULL, buf, 1, 0), OTA_ERR_INVALID_ARG);
    close(fd);
}

static void test_mem_bound(void **state)
{
    struct ota_buf ops;
    struct ota_buf expect;
    struct ota_buf d;
    struct dx_old o = {old_img, OLD_LEN, 0, 0};
    struct dx_out out;
    struct ota_delta_apply_cfg cfg;
    struct ota_delta_apply *a = NULL;
    uint8_t h[OTA_DELTA_HEADER_LEN];

    (void)state;
    assert_true(ota_delta_apply_mem_max() <= (size_t)5 << 20);
    good_ops(&ops, &expect);
    ota_buf_init(&d, 1 << 20);
    dx_header(h, old_img, OLD_LEN, expect.data, expect.len, OTA_DELTA_WINDOW_LOG_MAX);
    assert_int_equal(ota_buf_append(&d, h, sizeof(h)), 0);
    dx_frame(&d, ops.data, ops.len, OTA_DELTA_WINDOW_LOG_MAX, 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = dx_read;
    cfg.read_ctx = &o;
    cfg.old_length = OLD_LEN;
    cfg.sink = dx_sink;
    cfg.sink_ctx = &out;
    ota_buf_init(&out.b, 1 << 20);
    out.fail_after = -1;
    assert_int_equal(ota_delta_apply_new(&a, &cfg), 0);
    assert_true(ota_delta_apply_mem(a) < (size_t)256 << 10); /* no workspace yet */
    assert_int_equal(ota_delta_apply_feed(a, d.data, d.len, NULL), 0);
    assert_int_equal(ota_delta_apply_finish(a, NULL), 0);
    assert_int_equal(ota_delta_apply_mem(a), ota_delta_apply_mem_max());
    ota_delta_apply_free(a);
    ota_buf_free(&out.b);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

/* Applies d with the from- and to-image hashes checked: 0 and the
 * expected output, or an error. */
static int fa_apply(const struct ota_buf *d, const struct ota_buf *expect, const uint8_t *old_sha,
                    const uint8_t *to_sha)
{
    struct dx_out out;
    struct ota_detail det = {{0}};
    int rc = dx_apply_checked(&out, d->data, d->len, old_img, OLD_LEN, 7, old_sha, to_sha,
                              expect->len, &det);

    if (rc == 0 && (out.b.len != expect->len || memcmp(out.b.data, expect->data, expect->len)))
        rc = OTA_ERR_HASH_MISMATCH;
    ota_buf_free(&out.b);
    return rc;
}

/* STYLE rule 9: each allocation of an apply (applier, workspace, hash
 * contexts, the output buffer's growth in the sink) fails in turn. */
static void test_alloc_faults(void **state)
{
    struct ota_buf ops, expect, d;
    uint8_t old_sha[OTA_SHA256_LEN], to_sha[OTA_SHA256_LEN];
    int rc;

    (void)state;
    good_delta(&ops, &expect, &d, old_sha, to_sha);
    assert_int_equal(fa_apply(&d, &expect, old_sha, to_sha), 0);
    FA_LOOP(rc, fa_apply(&d, &expect, old_sha, to_sha));
    assert_true(fa_failed_runs() >= 4);
    ota_buf_free(&ops);
    ota_buf_free(&expect);
    ota_buf_free(&d);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_header_parse),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_no_hashes_given),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_overrun_and_length),
        cmocka_unit_test(test_bad_ops),
        cmocka_unit_test(test_op_spans_frames),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_frame_checks),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_callback_failures),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_read_fd),
        cmocka_unit_test(test_mem_bound),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
