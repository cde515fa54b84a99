/* Unit tests for tiles.c: tlog-tiles path encoding (the spec's examples,
 * round trips, non-canonical forms refused), entry bundles (round trips,
 * malformed bundles refused), tile widths from the spec's examples, the
 * tiles a growing log writes, and the tile-backed Merkle source against the
 * in-memory tree (naive_tree.h) at sizes across tile boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive_tree.h"
#include "otachain/buf.h"
#include "otachain/merkle.h"
#include "otachain/tiles.h"

/* ---- paths ---- */

static void expect_path(bool entries, unsigned level, uint64_t index, unsigned width,
                        const char *want)
{
    struct ota_tiles_id id = {entries, level, index, width};
    struct ota_tiles_id back;
    char out[OTA_TILES_PATH_MAX];

    assert_int_equal(ota_tiles_path_format(out, &id), 0);
    assert_string_equal(out, want);
    assert_int_equal(ota_tiles_path_parse(&back, want, strlen(want), NULL), 0);
    assert_true(back.entries == entries);
    assert_int_equal(back.level, level);
    assert_int_equal(back.index, index);
    assert_int_equal(back.width, width);
}

static void test_path_examples(void **state)
{
    (void)state;
    /* The spec's example: index 1234067 is x001/x234/067. */
    expect_path(false, 0, 1234067, 256, "tile/0/x001/x234/067");
    expect_path(false, 2, 1234067, 256, "tile/2/x001/x234/067");
    expect_path(true, 0, 1234067, 256, "tile/entries/x001/x234/067");
    expect_path(false, 0, 1234067, 8, "tile/0/x001/x234/067.p/8");
    expect_path(true, 0, 0, 255, "tile/entries/000.p/255");
    expect_path(false, 0, 0, 256, "tile/0/000");
    expect_path(false, 1, 0, 1, "tile/1/000.p/1");
    expect_path(false, 0, 999, 256, "tile/0/999");
    expect_path(false, 0, 1000, 256, "tile/0/x001/000");
    expect_path(false, 0, 1000000, 17, "tile/0/x001/x000/000.p/17");
    expect_path(false, 1, 273, 112, "tile/1/273.p/112");
    /* The largest tiles a 2^63-leaf tree has. */
    expect_path(false, 0, (UINT64_C(1) << 55) - 1, 256, "tile/0/x036/x028/x797/x018/x963/967");
    expect_path(true, 0, (UINT64_C(1) << 55) - 1, 256, "tile/entries/x036/x028/x797/x018/x963/967");
    expect_path(false, 6, 127, 256, "tile/6/127");
    expect_path(false, 7, 0, 128, "tile/7/000.p/128");
}

static void test_path_round_trip(void **state)
{
    uint64_t rnd = 12345;
    int i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        struct ota_tiles_id id;
        struct ota_tiles_id back;
        char out[OTA_TILES_PATH_MAX];
        uint64_t cap;

        id.entries = (nt_rand(&rnd) & 3) == 0;
        id.level = id.entries ? 0 : (unsigned)(nt_rand(&rnd) % 7);
        id.width = (nt_rand(&rnd) & 1) ? 256 : 1 + (unsigned)(nt_rand(&rnd) % 255);
        cap = (OTA_MERKLE_MAX_SIZE >> (8 * id.level)) / 256 - 1;
        /* Indices of every digit count. */
        id.index = nt_rand(&rnd) >> (nt_rand(&rnd) % 64);
        if (id.index > cap)
            id.index %= cap + 1;
        assert_int_equal(ota_tiles_path_format(out, &id), 0);
        assert_true(strlen(out) < OTA_TILES_PATH_MAX);
        assert_int_equal(ota_tiles_path_parse(&back, out, strlen(out), NULL), 0);
        assert_true(back.entries == id.entries);
        assert_int_equal(back.level, id.level);
        assert_int_equal(back.index, id.index);
        assert_int_equal(back.width, id.width);
    }
}

static void expect_reject(const char *path, int want)
{
    struct ota_tiles_id id;
    struct ota_detail det;
    int rc;

    memset(&id, 0xff, sizeof(id));
    det.msg[0] = '\0';
    rc = ota_tiles_path_parse(&id, path, strlen(path), &det);
    if (rc != want)
        fail_msg("%s: got %s, want %s", path, ota_errname(rc), ota_errname(want));
    assert_int_equal(id.level, 0);
    assert_int_equal(id.index, 0);
    assert_int_equal(id.width, 0);
    assert_true(strlen(det.msg) > 0);
}

static void test_path_reject(void **state)
{
    static const char *bad[] = {
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "Tile/0/000",
        "tile/00/000", /* leading zero in L */
        "tile/01/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/ 0/000",
        "tile/0/5", /* N not in 3-digit groups */
        "tile/0/05",
        "tile/0/0005",
        "tile/0/x000/005", /* superfluous leading group */
        "tile/0/x000/x001/000",
        "tile/0/x1/000",
        "tile/0/X001/000",
        "tile/0/001/000", /* inner group without x */
        "tile/0/x001",    /* no last group */
        "tile/0/x001/",
        "tile/0/x001/x002",
        "tile/0/000/",
        "tile/0/000.p/0", /* W outside 1..255 or not canonical */
        "tile/0/000.p/256",
        "tile/0/000.p/08",
        "tile/0/000.p/",
        "tile/0/000.p/1/",
        "tile/0/000.p/1x",
        "tile/0/000.q/1",
        "tile/0/000p/1",
        "tile/0/000.p1",
        "tile/0/000.p/1000",
        "tile/100/000",
        "tile/entries/",
        "tile/entries/x000/001",
        "tile/entries/0/000",
        "tile/entries/000.p/0",
        "tile//000",
        "tile/0//000",
        "tile/0/abc",
    };
    static const char *large[] = {
        "tile/8/000",  /* a level-64 hash: no such tree */
        "tile/63/000", /* valid syntax (L <= 63), beyond the 2^63 cap */
        "tile/7/001",
        "tile/7/000", /* full level-7 tile: 256 * 2^56 leaves > 2^63 */
        "tile/7/000.p/129",
        "tile/0/x036/x028/x797/x018/x963/968",
        "tile/entries/x036/x028/x797/x018/x963/968",
        "tile/0/x018/x446/x744/x073/x709/x551/615", /* 2^64 - 1 */
        "tile/0/x018/x446/x744/x073/x709/x551/616", /* 2^64: overflow */
        "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
        "tile/entries/x001/x001/x001/x001/x001/x001/x001/x001/x001/x001/001",
    };
    struct ota_tiles_id id;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(bad[i], OTA_ERR_FORMAT);
    for (i = 0; i < sizeof(large) / sizeof(large[0]); i++)
        expect_reject(large[i], OTA_ERR_TOO_LARGE);
    /* The length is the caller's: an embedded NUL or a shorter length. */
    assert_int_equal(ota_tiles_path_parse(&id, "tile/0/000\0", 11, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_path_parse(&id, "tile/0/0001", 10, NULL), 0);
    assert_int_equal(id.index, 0);
    assert_int_equal(ota_tiles_path_parse(&id, "tile/0/000.p/25", 14, NULL), 0);
    assert_int_equal(id.width, 2);
    assert_int_equal(ota_tiles_path_parse(NULL, "tile/0/000", 10, NULL), OTA_ERR_INVALID_ARG);
}

static void test_path_format_reject(void **state)
{
    static const struct ota_tiles_id bad[] = {
        {false, 0, 0, 0},
        {false, 0, 0, 257},
        {true, 1, 0, 256},
        {false, 8, 0, 1},
        {false, 7, 0, 256},
        {false, 7, 1, 1},
        {false, 0, UINT64_C(1) << 55, 256},
    };
    char out[OTA_TILES_PATH_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out[0] = 'x';
        assert_int_equal(ota_tiles_path_format(out, &bad[i]), OTA_ERR_INVALID_ARG);
        assert_int_equal(out[0], '\0');
    }
    assert_int_equal(ota_tiles_path_format(out, NULL), OTA_ERR_INVALID_ARG);
}

/* The spec's examples of which tiles a tree has. */
static void test_widths(void **state)
{
    uint64_t n;
    unsigned full0 = 0;

    (void)state;
    /* 70,000: 273 full level-0 tiles, a partial of width 112, one full
     * level-1 tile, a partial of width 17, a partial level-2 tile of 1. */
    for (n = 0; n < 300; n++)
        full0 += ota_tiles_width(0, n, 70000) == 256;
    assert_int_equal(full0, 273);
    assert_int_equal(ota_tiles_width(0, 273, 70000), 112);
    assert_int_equal(ota_tiles_width(0, 274, 70000), 0);
    assert_int_equal(ota_tiles_width(1, 0, 70000), 256);
    assert_int_equal(ota_tiles_width(1, 1, 70000), 17);
    assert_int_equal(ota_tiles_width(1, 2, 70000), 0);
    assert_int_equal(ota_tiles_width(2, 0, 70000), 1);
    assert_int_equal(ota_tiles_width(3, 0, 70000), 0);
    /* 256: a full level-0 tile and a partial level-1 tile of width 1. */
    assert_int_equal(ota_tiles_width(0, 0, 256), 256);
    assert_int_equal(ota_tiles_width(0, 1, 256), 0);
    assert_int_equal(ota_tiles_width(1, 0, 256), 1);
    assert_int_equal(ota_tiles_width(0, 0, 0), 0);
    assert_int_equal(ota_tiles_width(7, 0, OTA_MERKLE_MAX_SIZE), 128);
    assert_int_equal(ota_tiles_width(8, 0, OTA_MERKLE_MAX_SIZE), 0);
    assert_int_equal(ota_tiles_width(0, 0, OTA_MERKLE_MAX_SIZE + 1), 0);
}

/* ---- entry bundles ---- */

static void test_bundle_round_trip(void **state)
{
    static const size_t sizes[] = {0, 1, 2, 100, 255, 256, 1000, 65535};
    struct ota_tiles_entry ent[OTA_TILES_WIDTH];
    uint8_t tile[OTA_TILES_FULL_BYTES];
    struct ota_buf b;
    uint8_t *data = malloc(65535 + 8);
    size_t count;
    size_t i;
    unsigned w;

    (void)state;
    assert_non_null(data);
    for (i = 0; i < 65535 + 8; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    /* Widths 1..256 of mixed entry sizes. */
    for (w = 1; w <= OTA_TILES_WIDTH; w += (w < 10 ? 1 : 41)) {
        ota_buf_init(&b, OTA_TILES_BUNDLE_MAX);
        for (i = 0; i < w; i++) {
            size_t n = sizes[i % 8] - (sizes[i % 8] > 0 ? i % 2 : 0);

            assert_int_equal(ota_tiles_bundle_append(&b, data + i % 7, n), 0);
        }
        assert_int_equal(ota_tiles_bundle_parse(ent, &count, b.data, b.len, w, NULL), 0);
        assert_int_equal(count, w);
        for (i = 0; i < w; i++) {
            size_t n = sizes[i % 8] - (sizes[i % 8] > 0 ? i % 2 : 0);

            assert_int_equal(ent[i].len, n);
            if (n > 0)
                assert_memory_equal(ent[i].data, data + i % 7, n);
            nt_leaf(tile + i * NH, ent[i].data, ent[i].len);
        }
        assert_int_equal(ota_tiles_bundle_verify(ent, count, tile, (size_t)w * NH, NULL), 0);
        /* A wrong entry is named. */
        tile[(w - 1) * NH] ^= 1;
        assert_int_equal(ota_tiles_bundle_verify(ent, count, tile, (size_t)w * NH, NULL),
                         OTA_ERR_HASH_MISMATCH);
        assert_int_equal(ota_tiles_bundle_verify(ent, count, tile, (size_t)w * NH - 1, NULL),
                         OTA_ERR_FORMAT);
        if (w > 1)
            assert_int_equal(ota_tiles_bundle_verify(ent, count, tile, (size_t)(w - 1) * NH, NULL),
                             OTA_ERR_FORMAT);
        ota_buf_free(&b);
    }
    /* A real ~100-byte record: two bytes of length, big-endian. */
    ota_buf_init(&b, 1024);
    assert_int_equal(ota_tiles_bundle_append(&b, data, 0x0123), 0);
    assert_int_equal(b.len, 2 + 0x0123);
    assert_int_equal(b.data[0], 0x01);
    assert_int_equal(b.data[1], 0x23);
    ota_buf_free(&b);
    free(data);
}

static void test_bundle_reject(void **state)
{
    struct ota_tiles_entry ent[OTA_TILES_WIDTH];
    uint8_t big[70000];
    struct ota_buf b;
    size_t count = 99;
    static const uint8_t two[] = {0, 1, 'a', 0, 2, 'b', 'c'};

    (void)state;
    memset(big, 0, sizeof(big));
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, sizeof(two), 2, NULL), 0);
    assert_int_equal(count, 2);
    assert_memory_equal(ent[1].data, "bc", 2);
    /* Fewer, more, truncated length, truncated entry, trailing byte. */
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, sizeof(two), 3, NULL),
                     OTA_ERR_FORMAT);
    assert_int_equal(count, 0);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, sizeof(two), 1, NULL),
                     OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, 4, 2, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, 6, 2, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, 1, 1, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, 0, 1, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, 2, 1, NULL), OTA_ERR_FORMAT);
    {
        uint8_t extra[sizeof(two) + 1];

        memcpy(extra, two, sizeof(two));
        extra[sizeof(two)] = 0;
        assert_int_equal(ota_tiles_bundle_parse(ent, &count, extra, sizeof(extra), 2, NULL),
                         OTA_ERR_FORMAT);
    }
    /* A length that claims more than the bundle holds. */
    big[0] = 0xff;
    big[1] = 0xff;
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, big, 1000, 1, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, big, 2 + 65535, 1, NULL), 0);
    assert_int_equal(ent[0].len, 65535);
    /* Width outside 1..256, length beyond the cap (refused unread). */
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, sizeof(two), 0, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, two, sizeof(two), 257, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, big, OTA_TILES_BUNDLE_MAX + 1, 256, NULL),
                     OTA_ERR_TOO_LARGE);
    /* 256 empty entries: the smallest full bundle. */
    memset(big, 0, 512);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, big, 512, 256, NULL), 0);
    assert_int_equal(count, 256);
    assert_int_equal(ota_tiles_bundle_parse(ent, &count, big, 513, 256, NULL), OTA_ERR_FORMAT);
    /* Appending: 64 KiB entries and the buffer's cap. */
    ota_buf_init(&b, 10);
    assert_int_equal(ota_tiles_bundle_append(&b, big, 65536), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_tiles_bundle_append(&b, big, 8), 0);
    assert_int_equal(ota_tiles_bundle_append(&b, big, 0), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10);
    ota_buf_free(&b);
}

/* ---- tiles in memory ---- */

/* Tiles as written by ota_tiles_append, by (level, index, width). */
struct rec {
    unsigned level;
    uint64_t index;
    unsigned width;
    uint8_t *data;
};

struct tstore {
    struct rec *r;
    size_t n;
    size_t cap;
    uint64_t emitted;
    struct nt_store *truth; /* every emitted tile must match it */
    int fail_sink;          /* fail the n-th emission (1-based); 0 never */
};

static struct rec *find(struct tstore *t, unsigned level, uint64_t index, unsigned width)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->r[i].level == level && t->r[i].index == index && t->r[i].width == width)
            return &t->r[i];
    return NULL;
}

static int store_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                      const uint8_t *hashes)
{
    struct tstore *t = ctx;
    struct rec *r;
    uint64_t first = index * 256;

    t->emitted++;
    if (t->fail_sink != 0 && (uint64_t)t->fail_sink == t->emitted)
        return OTA_ERR_IO;
    assert_true(width >= 1 && width <= 256);
    /* Content: the hashes of tree level 8*level. */
    assert_true(first + width <= t->truth->count[8 * level]);
    assert_memory_equal(hashes, t->truth->lv[8 * level][first], (size_t)width * NH);
    r = find(t, level, index, width);
    if (r != NULL) {
        assert_memory_equal(r->data, hashes, (size_t)width * NH);
        return 0;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->r = realloc(t->r, t->cap * sizeof(*t->r));
        assert_non_null(t->r);
    }
    r = &t->r[t->n++];
    r->level = level;
    r->index = index;
    r->width = width;
    r->data = malloc((size_t)width * NH);
    assert_non_null(r->data);
    memcpy(r->data, hashes, (size_t)width * NH);
    return 0;
}

static int store_read(void *ctx, unsigned level, uint64_t index, unsigned width,
                      uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct rec *r = find(ctx, level, index, width);

    *len = 0;
    if (r == NULL)
        return OTA_ERR_NOT_FOUND;
    memcpy(out, r->data, (size_t)width * NH);
    *len = (size_t)width * NH;
    return 0;
}

static void store_free(struct tstore *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        free(t->r[i].data);
    free(t->r);
    memset(t, 0, sizeof(*t));
}

/* Tiles synthesized from the in-memory tree, for a tree of `limit`
 * leaves; refuses tiles that tree does not have, and can be told to drop
 * partial tiles (a log may delete them once the full tile exists). */
struct synth {
    struct nt_store *s;
    uint64_t limit;
    bool no_partials;
    int wrong_len;
    uint64_t reads;
};

static int synth_read(void *ctx, unsigned level, uint64_t index, unsigned width,
                      uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct synth *y = ctx;
    uint64_t first = index * 256;

    y->reads++;
    *len = 0;
    if (width == 0 || width > 256 || 8 * level >= y->s->levels)
        return OTA_ERR_NOT_FOUND;
    if (width < 256 && y->no_partials)
        return OTA_ERR_NOT_FOUND;
    /* A full tile may be served past the limit (it is immutable); a
     * partial one only at its exact width for the limit. */
    if (first + width > y->s->count[8 * level])
        return OTA_ERR_NOT_FOUND;
    if (width < 256 && width != ota_tiles_width(level, index, y->limit))
        return OTA_ERR_NOT_FOUND;
    memcpy(out, y->s->lv[8 * level][first], (size_t)width * NH);
    *len = (size_t)width * NH - (y->wrong_len ? 1 : 0);
    return 0;
}

/* ---- the tile-backed source ---- */

#define MAXN 70000

static uint8_t (*g_leaves)[NH];
static struct nt_store g_tree;

static int setup_tree(void **state)
{
    (void)state;
    g_leaves = nt_make_leaves(MAXN);
    nt_store_build(&g_tree, (const uint8_t(*)[NH])g_leaves, MAXN);
    return 0;
}

static int teardown_tree(void **state)
{
    (void)state;
    nt_store_free(&g_tree);
    free(g_leaves);
    return 0;
}

/* The tile source over `reader` agrees with the in-memory tree of `size`
 * leaves: nodes at every level, the root, proofs. */
static void compare_sources(uint64_t size, const struct ota_tiles_reader *reader, size_t nslots,
                            uint64_t *rnd)
{
    struct ota_tiles_slot *slots = calloc(nslots, sizeof(*slots));
    struct ota_tiles_source ts;
    struct nt_view view = {&g_tree, size};
    struct ota_merkle_source mem = {nt_view_node, &view};
    struct ota_merkle_proof a;
    struct ota_merkle_proof b;
    uint8_t x[NH];
    uint8_t y[NH];
    unsigned level;
    int k;

    assert_non_null(slots);
    assert_int_equal(ota_tiles_source_init(&ts, size, reader, slots, nslots), 0);
    assert_int_equal(ota_merkle_root(x, size, &ts.src, NULL), 0);
    assert_int_equal(ota_merkle_root(y, size, &mem, NULL), 0);
    assert_memory_equal(x, y, NH);
    /* Nodes at every level: first, last and random indices. */
    for (level = 0; level < 64 && (size >> level) > 0; level++) {
        uint64_t cnt = size >> level;
        uint64_t idx[3] = {0, cnt - 1, nt_rand(rnd) % cnt};

        for (k = 0; k < 3; k++) {
            assert_int_equal(ts.src.node(ts.src.ctx, level, idx[k], x), 0);
            assert_memory_equal(x, g_tree.lv[level][idx[k]], NH);
        }
        /* Past the tree's edge: no such node. */
        assert_int_equal(ts.src.node(ts.src.ctx, level, cnt, x), OTA_ERR_INVALID_ARG);
    }
    for (k = 0; k < 8; k++) {
        uint64_t i = k == 0 ? size - 1 : nt_rand(rnd) % size;
        uint64_t s1 = k == 0 ? size : 1 + nt_rand(rnd) % size;

        assert_int_equal(ota_merkle_prove_inclusion(&a, i, size, &ts.src, NULL), 0);
        assert_int_equal(ota_merkle_prove_inclusion(&b, i, size, &mem, NULL), 0);
        assert_int_equal(a.count, b.count);
        assert_memory_equal(a.hash, b.hash, a.count * NH);
        assert_int_equal(ota_merkle_prove_consistency(&a, s1, size, &ts.src, NULL), 0);
        assert_int_equal(ota_merkle_prove_consistency(&b, s1, size, &mem, NULL), 0);
        assert_int_equal(a.count, b.count);
        assert_memory_equal(a.hash, b.hash, a.count * NH);
    }
    /* With enough slots, a repeated proof reads no tile. */
    if (nslots >= 16) {
        uint64_t reads;

        assert_int_equal(ota_merkle_prove_inclusion(&a, size / 3, size, &ts.src, NULL), 0);
        reads = ts.reads;
        assert_int_equal(ota_merkle_prove_inclusion(&a, size / 3, size, &ts.src, NULL), 0);
        assert_int_equal(ts.reads, reads);
    }
    assert_int_equal(g_tree.bad, 0);
    free(slots);
}

static void test_source_boundaries(void **state)
{
    static const uint64_t sizes[] = {1,    2,     3,     255,   256,   257,   511,   512,  513,
                                     4096, 65535, 65536, 65537, 65792, 65793, 69999, 70000};
    struct synth y = {&g_tree, 0, false, 0, 0};
    struct ota_tiles_reader reader = {synth_read, &y};
    uint64_t rnd = 77;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        y.limit = sizes[i];
        compare_sources(sizes[i], &reader, 16, &rnd);
        compare_sources(sizes[i], &reader, 1, &rnd); /* thrashing, still right */
    }
    for (i = 0; i < 20; i++) {
        y.limit = 1 + nt_rand(&rnd) % MAXN;
        compare_sources(y.limit, &reader, 4, &rnd);
    }
}

/* A log that deleted its partial tiles: the full tile stands in for them. */
static void test_source_fallback(void **state)
{
    struct synth y = {&g_tree, 65537, true, 0, 0};
    struct ota_tiles_reader reader = {synth_read, &y};
    struct ota_tiles_slot slots[16];
    struct ota_tiles_source ts;
    uint8_t x[NH];
    uint64_t rnd = 5;

    (void)state;
    /* Sizes whose partial tiles are all covered by full tiles of the
     * 70,000-leaf log. */
    y.limit = 65535;
    compare_sources(65535, &reader, 16, &rnd);
    y.limit = 40000;
    compare_sources(40000, &reader, 16, &rnd);
    y.limit = 300;
    compare_sources(300, &reader, 16, &rnd);
    /* Without partial or full tile: the reader's error. */
    y.limit = MAXN;
    assert_int_equal(ota_tiles_source_init(&ts, MAXN, &reader, slots, 16), 0);
    assert_int_equal(ota_merkle_root(x, MAXN, &ts.src, NULL), OTA_ERR_NOT_FOUND);
    /* A reader returning the wrong length. */
    y.no_partials = false;
    y.wrong_len = 1;
    assert_int_equal(ota_tiles_source_init(&ts, MAXN, &reader, slots, 16), 0);
    assert_int_equal(ota_merkle_root(x, MAXN, &ts.src, NULL), OTA_ERR_FORMAT);
    /* Bad set-ups. */
    assert_int_equal(ota_tiles_source_init(&ts, 5, &reader, slots, 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_source_init(&ts, 5, NULL, slots, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_source_init(&ts, 5, &reader, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_source_init(&ts, OTA_MERKLE_MAX_SIZE + 1, &reader, slots, 1),
                     OTA_ERR_TOO_LARGE);
}

/* ---- writing tiles ---- */

static void check_store_complete(struct tstore *t, uint64_t size)
{
    unsigned level;

    for (level = 0; level <= OTA_TILES_MAX_LEVEL; level++) {
        uint64_t n;

        for (n = 0; ota_tiles_width(level, n, size) != 0; n++)
            assert_non_null(find(t, level, n, ota_tiles_width(level, n, size)));
    }
}

static void test_append_growth(void **state)
{
    struct tstore t = {0};
    struct ota_tiles_reader reader = {store_read, &t};
    struct ota_tiles_sink sink = {store_tile, &t};
    uint64_t rnd = 99;
    uint64_t size = 0;
    int batches = 0;

    (void)state;
    t.truth = &g_tree;
    while (size < MAXN) {
        /* Small batches near tile boundaries, large ones in between. */
        uint64_t step = (nt_rand(&rnd) & 1) ? 1 + nt_rand(&rnd) % 5 : 1 + nt_rand(&rnd) % 4000;
        struct ota_tiles_slot slots[8];
        struct ota_tiles_source ts;
        uint8_t x[NH];
        uint8_t y[NH];

        if (size < 65536 && size + step > 65536)
            step = 65536 - size; /* land exactly on 65536 */
        if (step > MAXN - size)
            step = MAXN - size;
        assert_int_equal(ota_tiles_append(size, (const uint8_t(*)[NH])g_leaves + size, (size_t)step,
                                          &reader, &sink, NULL),
                         0);
        size += step;
        batches++;
        check_store_complete(&t, size);
        /* The tiles written so far serve the tree of this size. */
        assert_int_equal(ota_tiles_source_init(&ts, size, &reader, slots, 8), 0);
        assert_int_equal(ota_merkle_root(x, size, &ts.src, NULL), 0);
        nt_mth(y, (const uint8_t(*)[NH])g_leaves, 0, size);
        assert_memory_equal(x, y, NH);
    }
    print_message("tiles: grew to %d leaves in %d batches, %zu distinct tiles\n", MAXN, batches,
                  t.n);
    store_free(&t);
}

/* Exactly the tiles a size adds, per the spec's 70,000 example. */
static void test_append_exact(void **state)
{
    struct tstore t = {0};
    struct ota_tiles_reader reader = {store_read, &t};
    struct ota_tiles_sink sink = {store_tile, &t};
    size_t i;
    unsigned full0 = 0;

    (void)state;
    t.truth = &g_tree;
    assert_int_equal(ota_tiles_append(0, (const uint8_t(*)[NH])g_leaves, 70000, NULL, &sink, NULL),
                     0);
    assert_int_equal(t.emitted, 273 + 1 + 3);
    for (i = 0; i < t.n; i++)
        full0 += t.r[i].level == 0 && t.r[i].width == 256;
    assert_int_equal(full0, 273);
    assert_non_null(find(&t, 0, 273, 112));
    assert_non_null(find(&t, 1, 0, 256));
    assert_non_null(find(&t, 1, 1, 17));
    assert_non_null(find(&t, 2, 0, 1));
    store_free(&t);

    /* 300 -> 301 changes only the level-0 partial tile. */
    t.truth = &g_tree;
    assert_int_equal(ota_tiles_append(0, (const uint8_t(*)[NH])g_leaves, 300, NULL, &sink, NULL),
                     0);
    t.emitted = 0;
    assert_int_equal(
        ota_tiles_append(300, (const uint8_t(*)[NH])g_leaves + 300, 1, &reader, &sink, NULL), 0);
    assert_int_equal(t.emitted, 1);
    assert_non_null(find(&t, 0, 1, 45));
    /* 301 -> 512: the full level-0 tile 1 and the level-1 partial of 2. */
    t.emitted = 0;
    assert_int_equal(
        ota_tiles_append(301, (const uint8_t(*)[NH])g_leaves + 301, 211, &reader, &sink, NULL), 0);
    assert_int_equal(t.emitted, 2);
    assert_non_null(find(&t, 0, 1, 256));
    assert_non_null(find(&t, 1, 0, 2));
    /* Nothing to add. */
    t.emitted = 0;
    assert_int_equal(ota_tiles_append(512, NULL, 0, &reader, &sink, NULL), 0);
    assert_int_equal(t.emitted, 0);
    store_free(&t);
}

static void test_append_errors(void **state)
{
    struct tstore t = {0};
    struct ota_tiles_reader reader = {store_read, &t};
    struct ota_tiles_sink sink = {store_tile, &t};
    struct synth y = {&g_tree, 300, false, 1, 0};
    struct ota_tiles_reader bad_reader = {synth_read, &y};

    (void)state;
    t.truth = &g_tree;
    /* The old partial tile is missing, or has the wrong length. */
    assert_int_equal(
        ota_tiles_append(300, (const uint8_t(*)[NH])g_leaves + 300, 5, &reader, &sink, NULL),
        OTA_ERR_NOT_FOUND);
    assert_int_equal(
        ota_tiles_append(300, (const uint8_t(*)[NH])g_leaves + 300, 5, &bad_reader, &sink, NULL),
        OTA_ERR_FORMAT);
    assert_int_equal(
        ota_tiles_append(300, (const uint8_t(*)[NH])g_leaves + 300, 5, NULL, &sink, NULL),
        OTA_ERR_INVALID_ARG);
    /* A failing sink stops the append; a retry completes it. */
    t.fail_sink = 2;
    assert_int_equal(ota_tiles_append(0, (const uint8_t(*)[NH])g_leaves, 1000, NULL, &sink, NULL),
                     OTA_ERR_IO);
    t.fail_sink = 0;
    assert_int_equal(ota_tiles_append(0, (const uint8_t(*)[NH])g_leaves, 1000, NULL, &sink, NULL),
                     0);
    check_store_complete(&t, 1000);
    /* Caps and arguments. */
    assert_int_equal(ota_tiles_append(OTA_MERKLE_MAX_SIZE, (const uint8_t(*)[NH])g_leaves, 1,
                                      &reader, &sink, NULL),
                     OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_tiles_append(0, NULL, 1, &reader, &sink, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tiles_append(0, (const uint8_t(*)[NH])g_leaves, 1, &reader, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    store_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_examples),   cmocka_unit_test(test_path_round_trip),
        cmocka_unit_test(test_path_reject),     cmocka_unit_test(test_path_format_reject),
        cmocka_unit_test(test_widths),          cmocka_unit_test(test_bundle_round_trip),
        cmocka_unit_test(test_bundle_reject),   cmocka_unit_test(test_source_boundaries),
        cmocka_unit_test(test_source_fallback), cmocka_unit_test(test_append_growth),
        cmocka_unit_test(test_append_exact),    cmocka_unit_test(test_append_errors),
    };

    return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
