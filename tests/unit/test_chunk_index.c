/* Unit tests for chunk_index.c: round trip with the writer, derived
 * offsets, and every malformation of docs/formats/chunk-index.md refused
 * with its own error (truncated at every length, trailing bytes, bad
 * magic and version, reserved bits, unknown chunker or gear table, bad
 * parameters, oversized counts before allocation, entry bounds, sums). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/chunk_index.h"
#include "otachain/crypto.h"

#include "chunk_fixture.h"

#define IMG_LEN (300u * 1024u + 123u)

struct fx {
    uint8_t *img;
    struct ota_buf index;
    struct ota_buf pack;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->img = malloc(IMG_LEN);
    if (f->img == NULL)
        return -1;
    fx_firmware(f->img, IMG_LEN, 5);
    if (fx_build(&f->index, &f->pack, f->img, IMG_LEN, NULL, 0) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_buf_free(&f->index);
    ota_buf_free(&f->pack);
    free(f->img);
    free(f);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The file reader agrees with the parser on data: the same result and,
 * when accepted, the same entries through a cursor (read in order, then
 * after seeks back and forth), each with its first occurrence's offset;
 * its table of first occurrences in a file and in memory. */
static void check_file_reader(const uint8_t *data, size_t len, int want)
{
    struct ota_chunk_index *idx = NULL;
    int fd = fx_temp_fd(data, len);
    static struct ota_chunk_cursor c;

    assert_true(fd >= 0);
    assert_int_equal(ota_chunk_index_parse(&idx, data, len, NULL), want);
    for (int mem = 0; mem < 2; mem++) {
        struct ota_chunk_index_file *f = NULL;
        struct ota_detail det = {{0}};
        struct ota_chunk_entry e;
        uint64_t fo = 0;
        int rc = ota_chunk_index_open(&f, fd, mem ? NULL : "/tmp", &det);

        if (rc != want)
            fail_msg("file reader: %s (%s), parser: %s", ota_errname(rc), det.msg,
                     ota_errname(want));
        if (rc != 0) {
            assert_null(f);
            continue;
        }
        assert_int_equal(ota_chunk_index_file_header(f)->count, idx->count);
        assert_true(ota_chunk_index_file_header(f)->image_length == idx->image_length);
        assert_null(ota_chunk_index_file_header(f)->chunks);
        ota_chunk_cursor_init(&c, f);
        memset(&e, 0, sizeof(e)); /* its padding, compared below */
        for (uint32_t i = 0; i < idx->count; i++) {
            assert_int_equal(ota_chunk_cursor_next(&c, &e, &fo, &det), 1);
            assert_memory_equal(&e, &idx->chunks[i], sizeof(e));
            assert_true(fo == idx->chunks[idx->chunks[i].first].offset);
        }
        assert_int_equal(ota_chunk_cursor_next(&c, &e, &fo, &det), 0);
        for (uint32_t k = 0; k < 8 && idx->count > 0; k++) {
            uint32_t i = (uint32_t)((k * 7919u) % idx->count);

            assert_int_equal(ota_chunk_cursor_seek(&c, i, &det), 0);
            assert_int_equal(ota_chunk_cursor_next(&c, &e, NULL, &det), 1);
            assert_memory_equal(&e, &idx->chunks[i], sizeof(e));
        }
        assert_int_equal(ota_chunk_cursor_seek(&c, idx->count + 1, &det), OTA_ERR_INVALID_ARG);
        ota_chunk_index_file_free(f);
    }
    ota_chunk_index_free(idx);
    close(fd);
}

/* Parses a copy of the fixture's index after mutate() and returns the
 * result; an accepted index is freed. The file reader must agree. */
static int parse_mutated(const struct fx *f, void (*mutate)(uint8_t *d, size_t *len),
                         struct ota_detail *det)
{
    uint8_t *d = malloc(f->index.len + 64);
    size_t len = f->index.len;
    struct ota_chunk_index sentinel;
    struct ota_chunk_index *idx = &sentinel; /* the parser must reset it */
    int rc;

    assert_non_null(d);
    memcpy(d, f->index.data, len);
    memset(d + len, 0, 64);
    mutate(d, &len);
    rc = ota_chunk_index_parse(&idx, d, len, det);
    if (rc != 0)
        assert_null(idx);
    check_file_reader(d, len, rc);
    ota_chunk_index_free(idx);
    free(d);
    return rc;
}

static void test_round_trip(void **state)
{
    const struct fx *f = *state;
    struct ota_chunk_index *idx = NULL;
    uint8_t h[OTA_SHA256_LEN];
    uint64_t off = 0;
    uint64_t zoff = 0;
    uint32_t i;

    assert_int_equal(ota_chunk_index_parse(&idx, f->index.data, f->index.len, NULL), 0);
    assert_int_equal(idx->chunker.min_size, OTA_CHUNKER_MIN_DEFAULT);
    assert_int_equal(idx->chunker.avg_size, OTA_CHUNKER_AVG_DEFAULT);
    assert_int_equal(idx->chunker.max_size, OTA_CHUNKER_MAX_DEFAULT);
    assert_int_equal(idx->chunker.nc_level, OTA_CHUNKER_NC_DEFAULT);
    assert_int_equal(idx->zstd_level, 3);
    assert_true(idx->image_length == IMG_LEN);
    assert_true(idx->pack_length == f->pack.len);
    assert_int_equal(ota_sha256(h, f->img, IMG_LEN), 0);
    assert_memory_equal(h, idx->image_sha256, OTA_SHA256_LEN);
    assert_true(idx->count > 5);
    assert_int_equal(f->index.len, 120 + 40 * idx->count);
    for (i = 0; i < idx->count; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];

        assert_true(e->offset == off);
        assert_true(e->pack_offset == zoff);
        assert_int_equal(ota_chunk_index_check_chunk(e, f->img + off, e->length, NULL), 0);
        off += e->length;
        zoff += e->zlength;
    }
    assert_true(off == IMG_LEN && zoff == f->pack.len);
    /* A copied chunk that is not the one indexed. */
    {
        struct ota_detail det;
        const struct ota_chunk_entry *e = &idx->chunks[1];

        assert_int_equal(ota_chunk_index_check_chunk(e, f->img, e->length, &det),
                         OTA_ERR_HASH_MISMATCH);
        assert_non_null(strstr(det.msg, "SHA-256"));
        assert_int_equal(ota_chunk_index_check_chunk(e, f->img + e->offset, e->length - 1, NULL),
                         OTA_ERR_LENGTH_MISMATCH);
    }
    ota_chunk_index_free(idx);
    ota_chunk_index_free(NULL);
}

static void test_empty_image(void **state)
{
    struct ota_buf index;
    struct ota_buf pack;
    struct ota_chunk_index *idx = NULL;
    uint8_t h[OTA_SHA256_LEN];

    (void)state;
    assert_int_equal(fx_build(&index, &pack, (const uint8_t *)"", 0, NULL, 0), 0);
    assert_int_equal(index.len, 120);
    assert_int_equal(pack.len, 0);
    assert_int_equal(ota_chunk_index_parse(&idx, index.data, index.len, NULL), 0);
    assert_int_equal(idx->count, 0);
    assert_null(idx->chunks);
    assert_int_equal(ota_sha256(h, "", 0), 0);
    assert_memory_equal(h, idx->image_sha256, OTA_SHA256_LEN);
    ota_chunk_index_free(idx);
    ota_buf_free(&index);
    ota_buf_free(&pack);
}

/* An image with repeated content: repeats have no frame (zlength 0 in the
 * file), point at their first occurrence, and decode through it. */
static void test_repeats(void **state)
{
    const size_t part = 100 * 1024;
    uint8_t *img = malloc(3 * part + 5000);
    struct ota_buf index, pack;
    struct ota_chunk_index *idx = NULL;
    uint32_t i;
    uint32_t repeats = 0;
    uint64_t frames = 0;

    (void)state;
    assert_non_null(img);
    fx_random(img, part, 1);
    memcpy(img + part, img, part);   /* the same 100 KiB again */
    memset(img + 2 * part, 0, part); /* 100 KiB of zeros: one max-size chunk, repeated */
    fx_random(img + 3 * part, 5000, 2);
    assert_int_equal(fx_build(&index, &pack, img, 3 * part + 5000, NULL, 0), 0);
    assert_int_equal(ota_chunk_index_parse(&idx, index.data, index.len, NULL), 0);
    for (i = 0; i < idx->count; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];
        const uint8_t *raw = index.data + 120 + 40 * (size_t)i;
        uint32_t file_zlen = get32(raw + 4);

        assert_true(e->first <= i);
        if (e->first == i) {
            assert_true(file_zlen == e->zlength && file_zlen > 0);
            assert_true(e->pack_offset == frames);
            frames += e->zlength;
        } else {
            const struct ota_chunk_entry *f = &idx->chunks[e->first];

            repeats++;
            assert_int_equal(file_zlen, 0);
            assert_memory_equal(e->sha256, f->sha256, OTA_SHA256_LEN);
            assert_int_equal(e->length, f->length);
            assert_true(e->pack_offset == f->pack_offset && e->zlength == f->zlength);
            assert_memory_equal(img + e->offset, img + f->offset, e->length);
        }
    }
    check_file_reader(index.data, index.len, 0);
    print_message("%u chunks, %u repeats\n", idx->count, repeats);
    assert_true(repeats >= 3); /* 3 of the copied region's ~5, the zeros' 64 KiB */
    assert_true(frames == pack.len && frames == idx->pack_length);
    ota_chunk_index_free(idx);
    ota_buf_free(&index);
    ota_buf_free(&pack);
    free(img);
}

/* Thousands of small chunks with repeats: the file reader's marks (every
 * 1024 entries) and its table of first occurrences on disk. */
static void test_file_reader_many_chunks(void **state)
{
    const size_t part = 300 * 1024;
    uint8_t *img = malloc(3 * part);
    struct ota_chunk_build_opts o;
    struct ota_buf index, pack;

    (void)state;
    assert_non_null(img);
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 1;
    o.chunker.min_size = 64;
    o.chunker.avg_size = 256;
    o.chunker.max_size = 1024;
    fx_random(img, part, 3);
    memmove(img + part, img + 1000, part); /* repeats, shifted */
    fx_firmware(img + 2 * part, part, 4);
    assert_int_equal(fx_build(&index, &pack, img, 3 * part, &o, 0), 0);
    print_message("%zu chunks\n", (index.len - 120) / 40);
    assert_true((index.len - 120) / 40 > 2048);
    check_file_reader(index.data, index.len, 0);
    ota_buf_free(&index);
    ota_buf_free(&pack);
    free(img);
}

static void test_every_prefix_truncated(void **state)
{
    const struct fx *f = *state;
    size_t len;

    for (len = 0; len < f->index.len; len++) {
        struct ota_chunk_index *idx = NULL;

        assert_int_equal(ota_chunk_index_parse(&idx, f->index.data, len, NULL), OTA_ERR_TRUNCATED);
        assert_null(idx);
        if (len % 7 == 0 || len < 130)
            check_file_reader(f->index.data, len, OTA_ERR_TRUNCATED);
    }
    check_file_reader(f->index.data, f->index.len, 0);
    assert_int_equal(ota_chunk_index_parse(NULL, f->index.data, len, NULL), OTA_ERR_INVALID_ARG);
}

static void m_trailing(uint8_t *d, size_t *len)
{
    (void)d;
    *len += 1;
}
static void m_magic(uint8_t *d, size_t *len)
{
    (void)len;
    d[3] ^= 1;
}
static void m_magic_short(uint8_t *d, size_t *len)
{
    d[2] = 'x';
    *len = 5;
}
static void m_version(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 8, 2);
}
static void m_version_short(uint8_t *d, size_t *len)
{
    put32(d + 8, 0);
    *len = 12;
}
static void m_flags(uint8_t *d, size_t *len)
{
    (void)len;
    d[12] = 1;
}
static void m_reserved(uint8_t *d, size_t *len)
{
    (void)len;
    d[39] = 0x80;
}
static void m_chunker(uint8_t *d, size_t *len)
{
    (void)len;
    d[16] = 2;
}
static void m_compression(uint8_t *d, size_t *len)
{
    (void)len;
    d[18] = 0;
}
static void m_gear(uint8_t *d, size_t *len)
{
    (void)len;
    d[88 + 31] ^= 0x40;
}
static void m_nc(uint8_t *d, size_t *len)
{
    (void)len;
    d[17] = 4;
}
static void m_min(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 20, 32);
}
static void m_avg(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 24, 20000);
}
static void m_max(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 28, (1u << 20) + 1);
}
static void m_count_huge(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 32, 0xffffffffu);
}
static void m_count_cap(uint8_t *d, size_t *len)
{
    put32(d + 32, (1u << 24) + 1);
    *len = 120; /* no entries at all: must not be allocated */
}
static void m_image_huge(uint8_t *d, size_t *len)
{
    (void)len;
    put64(d + 40, (UINT64_C(1) << 40) + 1);
}
static void m_count_plus(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 32, get32(d + 32) + 1);
}
static void m_count_minus(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 32, get32(d + 32) - 1);
}
static void m_count_zero(uint8_t *d, size_t *len)
{
    put32(d + 32, 0);
    *len = 120;
}
static void m_len_zero(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 120 + 40 * 2, 0);
}
static void m_len_over_max(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 120 + 40 * 2, 65537);
}
static void m_len_under_min(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 120 + 40 * 1, 4095);
}
static void m_zlen_zero(uint8_t *d, size_t *len)
{
    (void)len;
    put32(d + 120 + 40 * 3 + 4, 0);
}
static void m_zlen_over_bound(uint8_t *d, size_t *len)
{
    uint32_t l = get32(d + 120 + 40 * 3);

    (void)len;
    put32(d + 120 + 40 * 3 + 4, (uint32_t)ota_chunk_index_zbound(l) + 1);
}
static void m_repeat_with_frame(uint8_t *d, size_t *len)
{
    /* Entry 3 claims the content of entry 2 yet keeps its frame. */
    (void)len;
    memcpy(d + 120 + 40 * 3, d + 120 + 40 * 2, 4);
    memcpy(d + 120 + 40 * 3 + 8, d + 120 + 40 * 2 + 8, 32);
}
static void m_image_len(uint8_t *d, size_t *len)
{
    (void)len;
    put64(d + 40, IMG_LEN + 1);
}
static void m_pack_len(uint8_t *d, size_t *len)
{
    (void)len;
    d[48] ^= 1;
}
static void m_shift_length(uint8_t *d, size_t *len)
{
    /* Move one byte from chunk 2 to chunk 3: sums still agree, offsets
     * stay contiguous; only the chunk hashes (pack reader, fetcher) can
     * tell, so the parser accepts it. */
    (void)len;
    put32(d + 120 + 40 * 2, get32(d + 120 + 40 * 2) - 1);
    put32(d + 120 + 40 * 3, get32(d + 120 + 40 * 3) + 1);
}
static void m_negative_level(uint8_t *d, size_t *len)
{
    (void)len;
    d[19] = 0xfb; /* -5: information only */
}

static void test_malformations(void **state)
{
    const struct fx *f = *state;
    struct ota_detail det;
    static const struct {
        void (*mutate)(uint8_t *, size_t *);
        int want;
        const char *needle; /* in the detail message, or NULL */
    } cases[] = {
        {m_trailing, OTA_ERR_TRAILING_DATA, "after the last"},
        {m_magic, OTA_ERR_BAD_MAGIC, "magic"},
        {m_magic_short, OTA_ERR_BAD_MAGIC, NULL},
        {m_version, OTA_ERR_FORMAT_VERSION, "version 2"},
        {m_version_short, OTA_ERR_FORMAT_VERSION, NULL},
        {m_flags, OTA_ERR_FORMAT, "reserved"},
        {m_reserved, OTA_ERR_FORMAT, NULL},
        {m_chunker, OTA_ERR_UNSUPPORTED, NULL},
        {m_compression, OTA_ERR_UNSUPPORTED, NULL},
        {m_gear, OTA_ERR_UNSUPPORTED, "gear"},
        {m_nc, OTA_ERR_CHUNK_PARAMS, "normalization"},
        {m_min, OTA_ERR_CHUNK_PARAMS, "min 32"},
        {m_avg, OTA_ERR_CHUNK_PARAMS, "power of two"},
        {m_max, OTA_ERR_CHUNK_PARAMS, NULL},
        {m_count_huge, OTA_ERR_TOO_LARGE, "2^24"},
        {m_count_cap, OTA_ERR_TOO_LARGE, NULL},
        {m_image_huge, OTA_ERR_TOO_LARGE, "2^40"},
        {m_count_plus, OTA_ERR_TRUNCATED, "need"},
        {m_count_minus, OTA_ERR_TRAILING_DATA, NULL},
        {m_count_zero, OTA_ERR_LENGTH_MISMATCH, "0 chunks"},
        {m_len_zero, OTA_ERR_CHUNK_LENGTH, "chunk 2 has length 0"},
        {m_len_over_max, OTA_ERR_CHUNK_LENGTH, NULL},
        {m_len_under_min, OTA_ERR_CHUNK_LENGTH, "chunk 1"},
        {m_zlen_zero, OTA_ERR_CHUNK_LENGTH, "compressed length 0 but repeats no"},
        {m_zlen_over_bound, OTA_ERR_CHUNK_LENGTH, NULL},
        {m_repeat_with_frame, OTA_ERR_CHUNK_LENGTH, "repeats chunk 2 but has a frame"},
        {m_image_len, OTA_ERR_LENGTH_MISMATCH, "header says"},
        {m_pack_len, OTA_ERR_LENGTH_MISMATCH, NULL},
        {m_shift_length, 0, NULL},
        {m_negative_level, 0, NULL},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;

        memset(&det, 0, sizeof(det));
        rc = parse_mutated(f, cases[i].mutate, &det);
        if (rc != cases[i].want)
            print_message("case %zu: got %s (%s), want %s\n", i, ota_errname(rc), det.msg,
                          ota_errname(cases[i].want));
        assert_int_equal(rc, cases[i].want);
        if (cases[i].needle != NULL) {
            if (strstr(det.msg, cases[i].needle) == NULL)
                print_message("case %zu: detail \"%s\" lacks \"%s\"\n", i, det.msg,
                              cases[i].needle);
            assert_non_null(strstr(det.msg, cases[i].needle));
        }
    }
}

static void test_negative_level_kept(void **state)
{
    const struct fx *f = *state;
    struct ota_chunk_index *idx = NULL;
    uint8_t *d = malloc(f->index.len);

    assert_non_null(d);
    memcpy(d, f->index.data, f->index.len);
    d[19] = 0xfb;
    assert_int_equal(ota_chunk_index_parse(&idx, d, f->index.len, NULL), 0);
    assert_int_equal(idx->zstd_level, -5);
    ota_chunk_index_free(idx);
    free(d);
}

static void test_zbound(void **state)
{
    (void)state;
    /* ZSTD_COMPRESSBOUND as documented. */
    assert_true(ota_chunk_index_zbound(0) == 64);
    assert_true(ota_chunk_index_zbound(1) == 1 + 0 + ((131072 - 1) >> 11));
    assert_true(ota_chunk_index_zbound(65536) == 65536 + 256 + 32);
    assert_true(ota_chunk_index_zbound(131072) == 131072 + 512);
    assert_true(ota_chunk_index_zbound(1u << 20) == (1u << 20) + 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_empty_image),
        cmocka_unit_test(test_repeats),       cmocka_unit_test(test_every_prefix_truncated),
        cmocka_unit_test(test_malformations), cmocka_unit_test(test_negative_level_kept),
        cmocka_unit_test(test_zbound),        cmocka_unit_test(test_file_reader_many_chunks),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
