/* Unit tests for chunker.c: the gear table is the documented derivation;
 * known-answer cut points (computed by an independent reference of the
 * format document); the same cuts whatever the buffer split; size bounds
 * and distribution; boundary stability after an insertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/chunker.h"
#include "otachain/crypto.h"

#include "chunk_fixture.h"

#define MIB (1024u * 1024u)

struct cuts {
    uint32_t *len;
    size_t n;
    size_t cap;
};

static void cuts_push(struct cuts *c, uint32_t v)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->len = realloc(c->len, c->cap * sizeof(*c->len));
        assert_non_null(c->len);
    }
    c->len[c->n++] = v;
}

/* Chunks data fed in pieces: step > 0 fixed size, step == 0 whole, and
 * step == SIZE_MAX pseudo-random sizes 1..70000. */
static void chunk_all(struct cuts *out, const uint8_t *data, size_t n,
                      const struct ota_chunker_params *p, size_t step)
{
    struct ota_chunker c;
    uint64_t seed = 7;
    size_t off = 0;
    uint32_t last;

    memset(out, 0, sizeof(*out));
    assert_int_equal(ota_chunker_init(&c, p, NULL), 0);
    while (off < n) {
        size_t k = step == 0          ? n - off
                   : step == SIZE_MAX ? (size_t)(fx_next(&seed) % 70000) + 1
                                      : step;
        const uint8_t *q = data + off;

        if (k > n - off)
            k = n - off;
        off += k;
        while (k > 0) {
            uint32_t cut = 7;
            size_t used = ota_chunker_scan(&c, &cut, q, k);

            assert_true(used <= k);
            if (cut != 0)
                cuts_push(out, cut);
            else
                assert_int_equal(used, k);
            q += used;
            k -= used;
        }
    }
    last = ota_chunker_end(&c);
    if (last != 0)
        cuts_push(out, last);
}

static void defaults(struct ota_chunker_params *p)
{
    ota_chunker_params_default(p);
}

static void test_gear_table_derivation(void **state)
{
    const uint64_t *g = ota_chunker_gear();
    uint8_t blob[2048];
    uint8_t h[OTA_SHA256_LEN];
    int i;

    (void)state;
    for (i = 0; i < 256; i++) {
        uint8_t msg[25];
        uint64_t v = 0;
        int k;

        memcpy(msg, "otachain-fastcdc-gear-v1", 24);
        msg[24] = (uint8_t)i;
        assert_int_equal(ota_sha256(h, msg, sizeof(msg)), 0);
        for (k = 7; k >= 0; k--)
            v = v << 8 | h[k];
        assert_true(g[i] == v);
        for (k = 0; k < 8; k++)
            blob[i * 8 + k] = (uint8_t)(g[i] >> (8 * k));
    }
    /* The values printed in docs/formats/chunk-index.md. */
    assert_true(g[0] == UINT64_C(0x4fb80fd52fd0b732));
    assert_true(g[1] == UINT64_C(0xf74963c6dbddf476));
    assert_true(g[2] == UINT64_C(0xdcdb66c8a31da1f6));
    assert_true(g[127] == UINT64_C(0xdeb0f5fd320a4d9e));
    assert_true(g[255] == UINT64_C(0x779b6fb48edc3a8c));
    assert_int_equal(ota_sha256(h, blob, sizeof(blob)), 0);
    assert_memory_equal(h, ota_chunker_gear_sha256, OTA_SHA256_LEN);
    {
        char hex[OTA_SHA256_HEX_LEN + 1];

        ota_hex_encode(hex, ota_chunker_gear_sha256, OTA_SHA256_LEN);
        assert_string_equal(hex,
                            "154e383a32023932242731acfdc0111c9172e6e610eacf13276e14c8bdb36197");
    }
}

static void test_params(void **state)
{
    struct ota_chunker_params p;
    struct ota_chunker c;
    struct ota_detail det;

    (void)state;
    defaults(&p);
    assert_int_equal(p.min_size, 4096);
    assert_int_equal(p.avg_size, 16384);
    assert_int_equal(p.max_size, 65536);
    assert_int_equal(p.nc_level, 2);
    assert_int_equal(ota_chunker_params_check(&p, NULL), 0);
    p.avg_size = 12000;
    assert_int_equal(ota_chunker_params_check(&p, &det), OTA_ERR_CHUNK_PARAMS);
    assert_non_null(strstr(det.msg, "power of two"));
    defaults(&p);
    p.min_size = 63;
    assert_int_equal(ota_chunker_params_check(&p, NULL), OTA_ERR_CHUNK_PARAMS);
    defaults(&p);
    p.min_size = p.avg_size + 1;
    assert_int_equal(ota_chunker_params_check(&p, NULL), OTA_ERR_CHUNK_PARAMS);
    defaults(&p);
    p.max_size = p.avg_size - 1;
    assert_int_equal(ota_chunker_params_check(&p, NULL), OTA_ERR_CHUNK_PARAMS);
    defaults(&p);
    p.max_size = OTA_CHUNK_LEN_CAP + 1;
    assert_int_equal(ota_chunker_params_check(&p, NULL), OTA_ERR_CHUNK_PARAMS);
    defaults(&p);
    p.avg_size = 128;
    p.min_size = 64;
    assert_int_equal(ota_chunker_params_check(&p, NULL), OTA_ERR_CHUNK_PARAMS);
    defaults(&p);
    p.nc_level = 4;
    assert_int_equal(ota_chunker_init(&c, &p, NULL), OTA_ERR_CHUNK_PARAMS);
    /* Extremes that are allowed. */
    p.min_size = 64;
    p.avg_size = 256;
    p.max_size = 256;
    p.nc_level = 3;
    assert_int_equal(ota_chunker_params_check(&p, NULL), 0);
    p.min_size = OTA_CHUNK_LEN_CAP;
    p.avg_size = OTA_CHUNK_LEN_CAP;
    p.max_size = OTA_CHUNK_LEN_CAP;
    p.nc_level = 0;
    assert_int_equal(ota_chunker_params_check(&p, NULL), 0);
}

/* Cut points of fx_random(1 MiB, seed 42), from an independent Python
 * implementation of docs/formats/chunk-index.md: pins the algorithm
 * across machines and builds. */
static void test_known_answer(void **state)
{
    static const uint32_t want16[] = {16743, 21133, 26668, 6446, 20679, 18746, 16597, 16735};
    static const uint32_t want1[] = {2339, 489, 1526, 1468, 1507, 986, 958, 1285};
    struct ota_chunker_params p;
    struct cuts c;
    uint8_t *img = malloc(MIB);
    uint8_t h[OTA_SHA256_LEN];
    uint8_t *le;
    char hex[OTA_SHA256_HEX_LEN + 1];
    size_t i;

    (void)state;
    assert_non_null(img);
    fx_random(img, MIB, 42);
    defaults(&p);
    chunk_all(&c, img, MIB, &p, 0);
    assert_int_equal(c.n, 57);
    assert_memory_equal(c.len, want16, sizeof(want16));
    le = malloc(c.n * 4);
    assert_non_null(le);
    for (i = 0; i < c.n; i++) {
        le[4 * i] = (uint8_t)c.len[i];
        le[4 * i + 1] = (uint8_t)(c.len[i] >> 8);
        le[4 * i + 2] = (uint8_t)(c.len[i] >> 16);
        le[4 * i + 3] = (uint8_t)(c.len[i] >> 24);
    }
    assert_int_equal(ota_sha256(h, le, c.n * 4), 0);
    ota_hex_encode(hex, h, OTA_SHA256_LEN);
    assert_string_equal(hex, "873e56749225496918b3928aacc37b6b628c58526f8b1bab4578fe2c16c3b9c3");
    free(le);
    free(c.len);
    p.min_size = 256;
    p.avg_size = 1024;
    p.max_size = 4096;
    p.nc_level = 1;
    chunk_all(&c, img, MIB, &p, 0);
    assert_int_equal(c.n, 838);
    assert_memory_equal(c.len, want1, sizeof(want1));
    free(c.len);
    free(img);
}

static void assert_same_cuts(const struct cuts *a, const struct cuts *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->len, b->len, a->n * sizeof(*a->len));
}

static void test_split_independence(void **state)
{
    const size_t n = 4 * MIB;
    struct ota_chunker_params p;
    struct cuts whole, ones, odd, rnd;
    uint8_t *img = malloc(n);

    (void)state;
    assert_non_null(img);
    fx_firmware(img, n, 3);
    defaults(&p);
    chunk_all(&whole, img, n, &p, 0);
    chunk_all(&odd, img, n, &p, 4093);
    chunk_all(&rnd, img, n, &p, SIZE_MAX);
    assert_same_cuts(&whole, &odd);
    assert_same_cuts(&whole, &rnd);
    free(odd.len);
    free(rnd.len);
    /* One byte at a time on the first MiB (4 Mi calls would be slow under
     * ASan); compare with the whole-buffer cuts of the same MiB. */
    free(whole.len);
    chunk_all(&whole, img, MIB, &p, 0);
    chunk_all(&ones, img, MIB, &p, 1);
    assert_same_cuts(&whole, &ones);
    free(whole.len);
    free(ones.len);
    /* Small parameters: many cuts, every one across many splits. */
    p.min_size = 64;
    p.avg_size = 256;
    p.max_size = 1024;
    p.nc_level = 2;
    chunk_all(&whole, img, MIB, &p, 0);
    chunk_all(&ones, img, MIB, &p, 1);
    chunk_all(&odd, img, MIB, &p, 63);
    assert_same_cuts(&whole, &ones);
    assert_same_cuts(&whole, &odd);
    free(whole.len);
    free(ones.len);
    free(odd.len);
    free(img);
}

static void check_bounds(const struct cuts *c, const struct ota_chunker_params *p, size_t n)
{
    size_t i;
    uint64_t sum = 0;

    for (i = 0; i < c->n; i++) {
        assert_true(c->len[i] >= 1);
        assert_true(c->len[i] <= p->max_size);
        if (i + 1 < c->n)
            assert_true(c->len[i] >= p->min_size);
        sum += c->len[i];
    }
    assert_true(sum == n);
}

static void test_bounds_and_distribution(void **state)
{
    const size_t n = 16 * MIB;
    struct ota_chunker_params p;
    struct cuts c;
    uint8_t *img = malloc(n);
    size_t i;
    size_t at_max = 0;
    size_t below_avg = 0;
    double mean;

    (void)state;
    assert_non_null(img);
    fx_random(img, n, 11);
    defaults(&p);
    chunk_all(&c, img, n, &p, 0);
    check_bounds(&c, &p, n);
    for (i = 0; i < c.n; i++) {
        at_max += c.len[i] == p.max_size;
        below_avg += c.len[i] < p.avg_size;
    }
    mean = (double)n / (double)c.n;
    /* Normalized chunking (level 2) centres sizes a little above avg:
     * the mean lies within [avg, 1.5 avg], few chunks hit max, and
     * between 10 % and 50 % fall below avg (random data: mean 18.7 KiB,
     * 17 % below avg, none at max). */
    print_message("chunks %zu mean %.0f at max %zu below avg %zu\n", c.n, mean, at_max, below_avg);
    assert_true(mean >= p.avg_size && mean <= 1.5 * p.avg_size);
    assert_true(at_max * 100 < c.n);
    assert_true(below_avg * 10 > c.n && below_avg * 2 < c.n);
    free(c.len);

    /* Zeros never match a mask: every chunk is max_size, the last the rest. */
    memset(img, 0, MIB + 5);
    chunk_all(&c, img, MIB + 5, &p, 0);
    assert_int_equal(c.n, 17);
    for (i = 0; i < 16; i++)
        assert_int_equal(c.len[i], p.max_size);
    assert_int_equal(c.len[16], 5);
    free(c.len);

    /* Shorter than min: one chunk; empty: none. */
    chunk_all(&c, img, 100, &p, 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], 100);
    free(c.len);
    chunk_all(&c, img, 0, &p, 0);
    assert_int_equal(c.n, 0);
    free(c.len);
    free(img);
}

/* Chunks of b (as offsets) that do not appear with the same content in a. */
static size_t changed_chunks(const uint8_t *a, const struct cuts *ca, const uint8_t *b,
                             const struct cuts *cb)
{
    size_t i;
    size_t j;
    size_t changed = 0;
    size_t ob = 0;

    for (i = 0; i < cb->n; i++) {
        size_t oa = 0;
        int found = 0;

        for (j = 0; j < ca->n && !found; j++) {
            if (ca->len[j] == cb->len[i] && memcmp(a + oa, b + ob, cb->len[i]) == 0)
                found = 1;
            oa += ca->len[j];
        }
        changed += !found;
        ob += cb->len[i];
    }
    return changed;
}

static void test_boundary_stability(void **state)
{
    const size_t n = 4 * MIB;
    static const size_t where[] = {0, 1, 1000, 5000, 123456, 2 * MIB + 77};
    struct ota_chunker_params p;
    struct cuts ca;
    uint8_t *a = malloc(n);
    uint8_t *b = malloc(n + 1);
    size_t w;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    fx_random(a, n, 99);
    defaults(&p);
    chunk_all(&ca, a, n, &p, 0);
    for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
        struct cuts cb;
        size_t ch;

        /* Insert one byte. */
        memcpy(b, a, where[w]);
        b[where[w]] = 0x5a;
        memcpy(b + where[w] + 1, a + where[w], n - where[w]);
        chunk_all(&cb, b, n + 1, &p, 0);
        ch = changed_chunks(a, &ca, b, &cb);
        print_message("insert at %zu: %zu of %zu chunks changed\n", where[w], ch, cb.n);
        assert_true(ch >= 1 && ch <= 2);
        free(cb.len);
        /* Delete one byte. */
        memcpy(b, a, where[w]);
        memcpy(b + where[w], a + where[w] + 1, n - where[w] - 1);
        chunk_all(&cb, b, n - 1, &p, 0);
        ch = changed_chunks(a, &ca, b, &cb);
        assert_true(ch >= 1 && ch <= 2);
        free(cb.len);
    }
    free(ca.len);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gear_table_derivation),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_split_independence),
        cmocka_unit_test(test_bounds_and_distribution),
        cmocka_unit_test(test_boundary_stability),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
