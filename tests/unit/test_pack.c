/* Unit tests for pack.c: every chunk of a real pack decodes and verifies,
 * fed whole or byte by byte; a flipped byte anywhere in a frame is never
 * handed out (decompress or hash_mismatch, output wiped); truncated,
 * over-long, trailing-junk, wrong-length, big-window, dictionary and
 * skippable frames are refused with their specific errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "otachain/chunk_index.h"
#include "otachain/pack.h"

#include "chunk_fixture.h"

#define IMG_LEN (256u * 1024u + 77u)

struct fx {
    uint8_t *img;
    struct ota_buf index;
    struct ota_buf pack;
    struct ota_chunk_index *idx;
    struct ota_pack_reader *r;
    uint8_t *out;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->img = malloc(IMG_LEN);
    f->out = malloc(OTA_CHUNK_LEN_CAP);
    if (f->img == NULL || f->out == NULL)
        return -1;
    fx_firmware(f->img, IMG_LEN, 23);
    if (fx_build(&f->index, &f->pack, f->img, IMG_LEN, NULL, 0) != 0 ||
        ota_chunk_index_parse(&f->idx, f->index.data, f->index.len, NULL) != 0 ||
        ota_pack_reader_new(&f->r) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_pack_reader_free(f->r);
    ota_chunk_index_free(f->idx);
    ota_buf_free(&f->index);
    ota_buf_free(&f->pack);
    free(f->img);
    free(f->out);
    free(f);
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    uint32_t i;

    assert_true(f->idx->count >= 10);
    for (i = 0; i < f->idx->count; i++) {
        const struct ota_chunk_entry *e = &f->idx->chunks[i];

        memset(f->out, 0xee, e->length);
        assert_int_equal(ota_pack_decode_chunk(f->out, e->length, f->r,
                                               f->pack.data + e->pack_offset, e->zlength, e, NULL),
                         0);
        assert_memory_equal(f->out, f->img + e->offset, e->length);
    }
}

static void test_streaming_pieces(void **state)
{
    struct fx *f = *state;
    const struct ota_chunk_entry *e = &f->idx->chunks[4];
    const uint8_t *fr = f->pack.data + e->pack_offset;
    size_t step;

    for (step = 1; step <= 7; step += 3) {
        size_t off = 0;

        assert_int_equal(ota_pack_reader_begin(f->r, f->out, OTA_CHUNK_LEN_CAP, e), 0);
        while (off < e->zlength) {
            size_t k = e->zlength - off < step ? e->zlength - off : step;

            assert_int_equal(ota_pack_reader_feed(f->r, fr + off, k, NULL), 0);
            off += k;
        }
        assert_int_equal(ota_pack_reader_feed(f->r, fr, 0, NULL), 0);
        assert_int_equal(ota_pack_reader_finish(f->r, NULL), 0);
        assert_memory_equal(f->out, f->img + e->offset, e->length);
    }
    /* finish without begin, feed after finish. */
    assert_int_equal(ota_pack_reader_finish(f->r, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_pack_reader_feed(f->r, fr, 1, NULL), OTA_ERR_INVALID_ARG);
}

/* Every single-byte corruption of a few frames (all bytes of small ones,
 * a stride of large ones) and every bit of the first bytes: never 0, the
 * output is wiped, and the reader is usable again afterwards. */
static void test_flipped_bytes_never_returned(void **state)
{
    struct fx *f = *state;
    uint8_t *fr = malloc(OTA_CHUNK_LEN_CAP + 4096);
    uint32_t c;
    size_t tried = 0;
    size_t n_decomp = 0;
    size_t n_hash = 0;
    size_t n_ok = 0;

    assert_non_null(fr);
    for (c = 0; c < f->idx->count; c += 3) {
        const struct ota_chunk_entry *e = &f->idx->chunks[c];
        size_t stride = e->zlength > 2000 ? 7 : 1;
        size_t pos;

        for (pos = 0; pos < e->zlength; pos += stride) {
            int bit;

            for (bit = 0; bit < (pos < 8 ? 8 : 1); bit++) {
                struct ota_detail det;
                int rc;

                memcpy(fr, f->pack.data + e->pack_offset, e->zlength);
                fr[pos] ^= (uint8_t)(1u << ((bit + pos) % 8));
                memset(f->out, 0xee, e->length);
                rc = ota_pack_decode_chunk(f->out, e->length, f->r, fr, e->zlength, e, &det);
                if (rc == 0) {
                    /* A bit the decoder ignores (e.g. the frame
                     * descriptor's unused bit): the output is still
                     * exactly the chunk, as its hash proved. */
                    assert_memory_equal(f->out, f->img + e->offset, e->length);
                    n_ok++;
                    if (n_ok < 5)
                        print_message("harmless flip: chunk %u byte %zu\n", c, pos);
                    tried++;
                    continue;
                }
                assert_true(rc == OTA_ERR_DECOMPRESS || rc == OTA_ERR_HASH_MISMATCH);
                n_decomp += rc == OTA_ERR_DECOMPRESS;
                n_hash += rc == OTA_ERR_HASH_MISMATCH;
                assert_true(all_zero(f->out, e->length));
                tried++;
            }
        }
    }
    print_message("%zu corruptions: %zu decompress, %zu hash_mismatch, %zu harmless\n", tried,
                  n_decomp, n_hash, n_ok);
    assert_true(n_ok * 100 < tried);
    assert_true(n_decomp > 0 && n_hash > 0);
    /* The reader still works. */
    c = 1;
    assert_int_equal(ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r,
                                           f->pack.data + f->idx->chunks[c].pack_offset,
                                           f->idx->chunks[c].zlength, &f->idx->chunks[c], NULL),
                     0);
    free(fr);
}

static void test_length_errors(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_entry e = f->idx->chunks[2];
    const uint8_t *fr = f->pack.data + e.pack_offset;
    uint8_t *junk = malloc(e.zlength + 1);
    struct ota_detail det;

    assert_non_null(junk);
    /* Truncated: fewer bytes than zlength. */
    assert_int_equal(ota_pack_reader_begin(f->r, f->out, OTA_CHUNK_LEN_CAP, &e), 0);
    assert_int_equal(ota_pack_reader_feed(f->r, fr, e.zlength - 1, NULL), 0);
    assert_int_equal(ota_pack_reader_finish(f->r, &det), OTA_ERR_TRUNCATED);
    assert_true(all_zero(f->out, e.length));
    /* More bytes than zlength. */
    assert_int_equal(ota_pack_reader_begin(f->r, f->out, OTA_CHUNK_LEN_CAP, &e), 0);
    assert_int_equal(ota_pack_reader_feed(f->r, fr, e.zlength, NULL), 0);
    assert_int_equal(ota_pack_reader_feed(f->r, fr, 1, NULL), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_pack_reader_finish(f->r, NULL), OTA_ERR_INVALID_ARG);
    /* Frame followed by junk inside zlength. */
    memcpy(junk, fr, e.zlength);
    junk[e.zlength] = 0;
    e.zlength++;
    assert_int_equal(
        ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r, junk, e.zlength, &e, &det),
        OTA_ERR_DECOMPRESS);
    assert_non_null(strstr(det.msg, "ends before"));
    e.zlength--;
    /* frame_len differs from zlength. */
    assert_int_equal(
        ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r, fr, e.zlength - 1, &e, NULL),
        OTA_ERR_LENGTH_MISMATCH);
    /* The index claims a shorter chunk: decoding would exceed it. */
    e.length--;
    assert_int_equal(
        ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r, fr, e.zlength, &e, &det),
        OTA_ERR_DECOMPRESS);
    /* The index claims a longer chunk. */
    e.length += 2;
    assert_int_equal(
        ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r, fr, e.zlength, &e, &det),
        OTA_ERR_DECOMPRESS);
    e.length--;
    /* Output buffer smaller than the chunk. */
    assert_int_equal(ota_pack_reader_begin(f->r, f->out, e.length - 1, &e), OTA_ERR_INVALID_ARG);
    /* Another chunk's frame of the same length: hash mismatch. */
    e.sha256[0] ^= 1;
    assert_int_equal(
        ota_pack_decode_chunk(f->out, OTA_CHUNK_LEN_CAP, f->r, fr, e.zlength, &e, &det),
        OTA_ERR_HASH_MISMATCH);
    assert_true(all_zero(f->out, e.length));
    free(junk);
}

/* Frames another writer could produce: each must be refused. */
static void test_hostile_frames(void **state)
{
    struct fx *f = *state;
    const size_t n = 5000;
    const uint8_t *src = f->img;
    size_t cap = ZSTD_compressBound(n) + 64;
    uint8_t *fr = malloc(cap + 16);
    struct ota_chunk_entry e;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_outBuffer ob;
    ZSTD_inBuffer ib;
    size_t z;
    struct ota_detail det;

    assert_non_null(fr);
    assert_non_null(cc);
    memset(&e, 0, sizeof(e));
    e.length = (uint32_t)n;
    assert_int_equal(ota_sha256(e.sha256, src, n), 0);

    /* Window 2^24 declared (streaming, no content size): refused by the
     * window cap before any large allocation. */
    assert_int_equal(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 24)), 0);
    assert_int_equal(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)), 0);
    ob.dst = fr;
    ob.size = cap;
    ob.pos = 0;
    ib.src = src;
    ib.size = n;
    ib.pos = 0;
    ib.size = 100; /* a first piece, so zstd cannot know the size */
    assert_int_equal(ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue)), 0);
    ib.size = n;
    assert_int_equal(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
    e.zlength = (uint32_t)ob.pos;
    assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, ob.pos, &e, &det),
                     OTA_ERR_DECOMPRESS);
    print_message("big window: %s\n", det.msg);
    assert_non_null(strstr(det.msg, "zstd"));

    /* The same with a window within the cap decodes. */
    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    z = ZSTD_compressCCtx(cc, fr, cap, src, n, 3);
    assert_int_equal(ZSTD_isError(z), 0);
    e.zlength = (uint32_t)z;
    assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, z, &e, NULL), 0);

    /* A frame needing a dictionary. */
    {
        ZSTD_CDict *cd = ZSTD_createCDict(f->img + 100000, 4096, 3);

        assert_non_null(cd);
        z = ZSTD_compress_usingCDict(cc, fr, cap, src, n, cd);
        assert_int_equal(ZSTD_isError(z), 0);
        ZSTD_freeCDict(cd);
        e.zlength = (uint32_t)z;
        assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, z, &e, NULL),
                         OTA_ERR_DECOMPRESS);
    }

    /* A skippable frame in front of a good one. */
    z = ZSTD_compressCCtx(cc, fr + 8, cap, src, n, 3);
    assert_int_equal(ZSTD_isError(z), 0);
    fr[0] = 0x50;
    fr[1] = 0x2a;
    fr[2] = 0x4d;
    fr[3] = 0x18;
    fr[4] = 0;
    fr[5] = 0;
    fr[6] = 0;
    fr[7] = 0;
    e.zlength = (uint32_t)z + 8;
    assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, z + 8, &e, NULL),
                     OTA_ERR_DECOMPRESS);

    /* Two frames of half the chunk each. */
    z = ZSTD_compressCCtx(cc, fr, cap, src, n / 2, 3);
    assert_int_equal(ZSTD_isError(z), 0);
    {
        size_t z2 = ZSTD_compressCCtx(cc, fr + z, cap - z, src + n / 2, n - n / 2, 3);

        assert_int_equal(ZSTD_isError(z2), 0);
        e.zlength = (uint32_t)(z + z2);
    }
    assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, e.zlength, &e, NULL),
                     OTA_ERR_DECOMPRESS);

    /* Not zstd at all. */
    memset(fr, 'A', 100);
    e.zlength = 100;
    assert_int_equal(ota_pack_decode_chunk(f->out, n, f->r, fr, 100, &e, NULL), OTA_ERR_DECOMPRESS);
    ZSTD_freeCCtx(cc);
    free(fr);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct ota_chunk_entry e = f->idx->chunks[0];

    assert_int_equal(ota_pack_reader_new(NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_pack_reader_begin(NULL, f->out, 10, &e), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_pack_reader_begin(f->r, NULL, 10, &e), OTA_ERR_INVALID_ARG);
    e.length = 0;
    assert_int_equal(ota_pack_reader_begin(f->r, f->out, 10, &e), OTA_ERR_INVALID_ARG);
    ota_pack_reader_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_streaming_pieces),
        cmocka_unit_test(test_flipped_bytes_never_returned),
        cmocka_unit_test(test_length_errors),
        cmocka_unit_test(test_hostile_frames),
        cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
