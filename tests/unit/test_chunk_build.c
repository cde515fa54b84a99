/* Unit tests for chunk_build.c (authoring side): the index and pack are a
 * function of the image bytes only (any feed split gives the same bytes);
 * frames are independent zstd frames in image order with the content
 * size and no checksum; the fd helper writes the same pack; errors
 * (parameters, level, sink failure, misuse) are reported and stick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "otachain/chunk_build.h"
#include "otachain/chunk_index.h"

#include "chunk_fixture.h"
#include "failalloc.h"

#define IMG_LEN (700u * 1024u + 1u)

/* Two builds gave the same index and pack. */
static void assert_same_build(const struct ota_buf *i1, const struct ota_buf *p1,
                              const struct ota_buf *i2, const struct ota_buf *p2)
{
    assert_int_equal(i1->len, i2->len);
    assert_memory_equal(i1->data, i2->data, i1->len);
    assert_int_equal(p1->len, p2->len);
    assert_memory_equal(p1->data, p2->data, p1->len);
}

static void test_split_independent_output(void **state)
{
    uint8_t *img = malloc(IMG_LEN);
    struct ota_buf i1, p1, i2, p2, i3, p3;

    (void)state;
    assert_non_null(img);
    fx_firmware(img, IMG_LEN, 17);
    assert_int_equal(fx_build(&i1, &p1, img, IMG_LEN, NULL, 0), 0);
    assert_int_equal(fx_build(&i2, &p2, img, IMG_LEN, NULL, 1), 0);
    assert_int_equal(fx_build(&i3, &p3, img, IMG_LEN, NULL, 65537), 0);
    assert_int_equal(i1.len, i2.len);
    assert_memory_equal(i1.data, i2.data, i1.len);
    assert_memory_equal(i1.data, i3.data, i1.len);
    assert_int_equal(p1.len, p2.len);
    assert_memory_equal(p1.data, p2.data, p1.len);
    assert_memory_equal(p1.data, p3.data, p1.len);
    ota_buf_free(&i1);
    ota_buf_free(&p1);
    ota_buf_free(&i2);
    ota_buf_free(&p2);
    ota_buf_free(&i3);
    ota_buf_free(&p3);
    free(img);
}

/* Threads change nothing in the output. */
static void test_threads_same_output(void **state)
{
    uint8_t *img = malloc(IMG_LEN);
    struct ota_chunk_build_opts o;
    struct ota_buf i1, p1, i2, p2;
    unsigned t;

    (void)state;
    assert_non_null(img);
    fx_firmware(img, IMG_LEN, 16);
    memcpy(img + 400000, img + 100000, 150000); /* repeats across batches */
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 3;
    o.chunker.min_size = 1024;
    o.chunker.avg_size = 4096;
    o.chunker.max_size = 16384;
    assert_int_equal(fx_build(&i1, &p1, img, IMG_LEN, &o, 0), 0);
    for (t = 2; t <= 5; t += 3) {
        o.threads = t;
        assert_int_equal(fx_build(&i2, &p2, img, IMG_LEN, &o, 7777), 0);
        assert_same_build(&i1, &p1, &i2, &p2);
        ota_buf_free(&i2);
        ota_buf_free(&p2);
    }
    o.threads = OTA_CHUNK_BUILD_MAX_THREADS + 1;
    assert_int_equal(fx_build(&i2, &p2, img, IMG_LEN, &o, 0), OTA_ERR_INVALID_ARG);
    ota_buf_free(&i2);
    ota_buf_free(&p2);
    ota_buf_free(&i1);
    ota_buf_free(&p1);
    free(img);
}

static void test_frames(void **state)
{
    uint8_t *img = malloc(IMG_LEN);
    uint8_t *out = malloc(OTA_CHUNKER_MAX_DEFAULT);
    struct ota_buf index, pack;
    struct ota_chunk_index *idx = NULL;
    uint32_t i;

    (void)state;
    assert_non_null(img);
    assert_non_null(out);
    fx_firmware(img, IMG_LEN, 18);
    assert_int_equal(fx_build(&index, &pack, img, IMG_LEN, NULL, 0), 0);
    assert_int_equal(ota_chunk_index_parse(&idx, index.data, index.len, NULL), 0);
    /* Compressible input: the pack is smaller than the image. */
    assert_true(pack.len < IMG_LEN / 2);
    for (i = 0; i < idx->count; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];
        const uint8_t *fr = pack.data + e->pack_offset;

        /* Exactly one frame of exactly zlength bytes, content size set,
         * no checksum, no dictionary. */
        assert_int_equal(ZSTD_findFrameCompressedSize(fr, e->zlength), e->zlength);
        assert_true(ZSTD_getFrameContentSize(fr, e->zlength) == e->length);
        assert_int_equal(ZSTD_getDictID_fromFrame(fr, e->zlength), 0);
        /* RFC 8878 3.1.1.1.1: the descriptor after the 4-byte magic;
         * bit 2 is Content_Checksum_flag, bits 0-1 Dictionary_ID_flag. */
        assert_int_equal(fr[4] & 0x07, 0);
        assert_int_equal(ZSTD_decompress(out, e->length, fr, e->zlength), e->length);
        assert_memory_equal(out, img + e->offset, e->length);
    }
    ota_chunk_index_free(idx);
    ota_buf_free(&index);
    ota_buf_free(&pack);
    free(img);
    free(out);
}

static void test_fd_helper(void **state)
{
    uint8_t *img = malloc(IMG_LEN);
    struct ota_buf index, pack, index2;
    struct ota_chunk_build_opts o;
    int img_fd;
    int pack_fd;
    uint8_t *back;
    ssize_t r;

    (void)state;
    assert_non_null(img);
    fx_firmware(img, IMG_LEN, 19);
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 3;
    assert_int_equal(fx_build(&index, &pack, img, IMG_LEN, &o, 0), 0);
    img_fd = fx_temp_fd(img, IMG_LEN);
    pack_fd = fx_temp_fd(NULL, 0);
    assert_true(img_fd >= 0 && pack_fd >= 0);
    assert_int_equal(lseek(img_fd, 0, SEEK_SET), 0);
    ota_buf_init(&index2, SIZE_MAX);
    assert_int_equal(ota_chunk_build_fd(&index2, pack_fd, img_fd, &o, NULL), 0);
    assert_int_equal(index2.len, index.len);
    assert_memory_equal(index2.data, index.data, index.len);
    back = malloc(pack.len + 1);
    assert_non_null(back);
    r = pread(pack_fd, back, pack.len + 1, 0);
    assert_int_equal(r, (ssize_t)pack.len);
    assert_memory_equal(back, pack.data, pack.len);
    /* No pack wanted: the index alone. */
    ota_buf_free(&index2);
    ota_buf_init(&index2, SIZE_MAX);
    assert_int_equal(lseek(img_fd, 0, SEEK_SET), 0);
    assert_int_equal(ota_chunk_build_fd(&index2, -1, img_fd, &o, NULL), 0);
    assert_memory_equal(index2.data, index.data, index.len);
    /* Unreadable image. */
    assert_int_equal(ota_chunk_build_fd(&index2, -1, 9999, &o, NULL), OTA_ERR_IO);
    close(img_fd);
    close(pack_fd);
    free(back);
    ota_buf_free(&index);
    ota_buf_free(&index2);
    ota_buf_free(&pack);
    free(img);
}

static int failing_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame,
                        size_t frame_len)
{
    int *calls = ctx;

    (void)frame;
    (void)frame_len;
    assert_true(e->length > 0);
    return ++*calls == 3 ? OTA_ERR_IO : 0;
}

static void test_errors(void **state)
{
    struct ota_chunk_build_opts o;
    struct ota_chunk_build *b = NULL;
    struct ota_buf index;
    struct ota_detail det;
    uint8_t *img = malloc(IMG_LEN);
    int calls = 0;

    (void)state;
    assert_non_null(img);
    fx_random(img, IMG_LEN, 20);
    ota_chunk_build_opts_default(&o);
    assert_int_equal(o.zstd_level, OTA_CHUNK_ZSTD_LEVEL_DEFAULT);
    assert_int_equal(o.threads, 1);
    o.zstd_search_log = 31;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "search log 31"));
    o.zstd_search_log = -1;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    o.zstd_search_log = OTA_CHUNK_ZSTD_SEARCH_LOG_DEFAULT;
    o.zstd_level = 0;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "zstd level"));
    o.zstd_level = 23;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    o.zstd_level = -8;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    o.zstd_level = -1;
    o.chunker.avg_size = 3000;
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), OTA_ERR_CHUNK_PARAMS);
    assert_null(b);
    /* A sink failure aborts the build and sticks: in finish (the image
     * fits one batch) and in update (it does not), with and without
     * workers. */
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 1;
    assert_int_equal(ota_chunk_build_new(&b, &o, failing_sink, &calls, NULL), 0);
    assert_int_equal(ota_chunk_build_update(b, img, IMG_LEN, NULL), 0);
    ota_buf_init(&index, SIZE_MAX);
    assert_int_equal(ota_chunk_build_finish(&index, b, NULL), OTA_ERR_IO);
    assert_int_equal(calls, 3);
    assert_int_equal(ota_chunk_build_update(b, img, 10, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_chunk_build_finish(&index, b, NULL), OTA_ERR_INVALID_ARG);
    ota_chunk_build_free(b);
    for (o.threads = 1; o.threads <= 3; o.threads += 2) {
        size_t fed = 0;
        int rc = 0;

        calls = 0;
        assert_int_equal(ota_chunk_build_new(&b, &o, failing_sink, &calls, NULL), 0);
        while (rc == 0 && fed < 16u * IMG_LEN) {
            rc = ota_chunk_build_update(b, img, IMG_LEN, NULL);
            fed += IMG_LEN;
        }
        assert_int_equal(rc, OTA_ERR_IO);
        assert_int_equal(calls, 3);
        assert_int_equal(ota_chunk_build_update(b, img, 10, NULL), OTA_ERR_INVALID_ARG);
        /* Freed with batches still in the workers' hands. */
        ota_chunk_build_free(b);
    }
    o.threads = 1;
    /* finish spends the builder. */
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), 0);
    assert_int_equal(ota_chunk_build_update(b, img, 1000, NULL), 0);
    assert_int_equal(ota_chunk_build_finish(&index, b, NULL), 0);
    assert_int_equal(index.len, 120 + 40);
    assert_int_equal(ota_chunk_build_finish(&index, b, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_chunk_build_update(b, img, 1, NULL), OTA_ERR_INVALID_ARG);
    ota_chunk_build_free(b);
    ota_chunk_build_free(NULL);
    /* An index buffer too small for the index. */
    ota_buf_free(&index);
    ota_buf_init(&index, 150);
    assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), 0);
    assert_int_equal(ota_chunk_build_update(b, img, IMG_LEN, NULL), 0);
    assert_int_equal(ota_chunk_build_finish(&index, b, NULL), OTA_ERR_TOO_LARGE);
    ota_chunk_build_free(b);
    ota_buf_free(&index);
    free(img);
}

/* What release add uses: the defaults above 32 MiB; 8 KiB chunks and
 * level 19 up to it. Both are valid for the builder. */
static void test_opts_for(void **state)
{
    struct ota_chunk_build_opts o;
    struct ota_chunk_build *b = NULL;
    static const uint64_t lens[] = {0, 170000, UINT64_C(32) << 20, (UINT64_C(32) << 20) + 1,
                                    UINT64_C(1) << 40};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        int small = lens[i] <= OTA_CHUNK_SMALL_IMAGE;

        ota_chunk_build_opts_for(&o, lens[i]);
        assert_int_equal(o.zstd_level, small ? 19 : 5);
        assert_int_equal(o.zstd_search_log, small ? 0 : 4);
        assert_int_equal(o.chunker.avg_size, small ? 8192 : 16384);
        assert_int_equal(o.chunker.min_size, small ? 2048 : 4096);
        assert_int_equal(o.chunker.max_size, small ? 32768 : 65536);
        assert_int_equal(o.chunker.nc_level, OTA_CHUNKER_NC_DEFAULT);
        assert_int_equal(o.threads, 1);
        assert_int_equal(ota_chunk_build_new(&b, &o, NULL, NULL, NULL), 0);
        ota_chunk_build_free(b);
        b = NULL;
    }
}

/* Several batches (about 2 MiB each) in flight: with 1, 2 and 4 threads
 * the index and pack are identical, and the pack holds every distinct
 * chunk once, in image order, with repeats across batches. */
static void test_many_batches(void **state)
{
    const size_t n = (size_t)9 << 20;
    uint8_t *img = malloc(n);
    struct ota_chunk_build_opts o;
    struct ota_buf i1, p1, i2, p2;
    struct ota_chunk_index *idx = NULL;
    uint64_t zsum = 0;
    uint32_t k, repeats = 0;
    unsigned t;

    (void)state;
    assert_non_null(img);
    fx_firmware(img, n, 23);
    memcpy(img + (6u << 20), img + (1u << 20), 1u << 20); /* repeats two batches later */
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 1;
    o.zstd_search_log = 0;
    assert_int_equal(fx_build(&i1, &p1, img, n, &o, 0), 0);
    assert_int_equal(ota_chunk_index_parse(&idx, i1.data, i1.len, NULL), 0);
    for (k = 0; k < idx->count; k++) {
        if (idx->chunks[k].first != k) {
            repeats++;
            continue;
        }
        assert_int_equal(idx->chunks[k].pack_offset, zsum);
        zsum += idx->chunks[k].zlength;
    }
    assert_int_equal(zsum, p1.len);
    assert_true(repeats >= 30); /* about 1 MiB of ~22 KiB chunks */
    ota_chunk_index_free(idx);
    for (t = 2; t <= 4; t += 2) {
        o.threads = t;
        assert_int_equal(fx_build(&i2, &p2, img, n, &o, t == 2 ? 0 : 300001), 0);
        assert_same_build(&i1, &p1, &i2, &p2);
        ota_buf_free(&i2);
        ota_buf_free(&p2);
    }
    ota_buf_free(&i1);
    ota_buf_free(&p1);
    free(img);
}

/* Random (incompressible) data stays within the bound; zeros shrink. */
static void test_incompressible_and_zeros(void **state)
{
    uint8_t *img = calloc(1, IMG_LEN);
    struct ota_buf index, pack;
    struct ota_chunk_index *idx = NULL;
    uint32_t i;

    (void)state;
    assert_non_null(img);
    assert_int_equal(fx_build(&index, &pack, img, IMG_LEN, NULL, 0), 0);
    assert_true(pack.len < 2000);
    ota_buf_free(&index);
    ota_buf_free(&pack);
    fx_random(img, IMG_LEN, 21);
    assert_int_equal(fx_build(&index, &pack, img, IMG_LEN, NULL, 0), 0);
    assert_int_equal(ota_chunk_index_parse(&idx, index.data, index.len, NULL), 0);
    for (i = 0; i < idx->count; i++)
        assert_true(idx->chunks[i].zlength <= ota_chunk_index_zbound(idx->chunks[i].length));
    assert_true(pack.len > IMG_LEN);
    ota_chunk_index_free(idx);
    ota_buf_free(&index);
    ota_buf_free(&pack);
    free(img);
}

/* STYLE rule 9: each allocation of a build (builder, batches, worker
 * set-up, entries, the repeat set, the sink's pack buffer, the index)
 * fails in turn, without and with workers; the output of a run that
 * succeeds is the reference. Worker threads make no wrapped allocation
 * (zstd allocates on its own), so the counter stays single-threaded. */
static void test_alloc_faults(void **state)
{
    const size_t n = (size_t)5 << 19; /* two batches and a half */
    uint8_t *img = malloc(n);
    struct ota_chunk_build_opts o;
    struct ota_buf ri, rp;
    unsigned t;

    (void)state;
    assert_non_null(img);
    fx_firmware(img, n, 29);
    memcpy(img + (2u << 20), img, 1u << 19);
    ota_chunk_build_opts_default(&o);
    o.zstd_level = 1;
    o.zstd_search_log = 0;
    assert_int_equal(fx_build(&ri, &rp, img, n, &o, 0), 0);
    for (t = 1; t <= 2; t++) {
        unsigned long k;

        o.threads = t;
        for (k = 1;; k++) {
            struct ota_buf i2, p2;
            int rc;
            int fired;

            fa_arm(k);
            rc = fx_build(&i2, &p2, img, n, &o, 1u << 20);
            fired = fa_disarm();
            if (rc == 0)
                assert_same_build(&ri, &rp, &i2, &p2);
            else if (!fa_rc_ok(rc)) {
                fail_msg("threads %u, allocation %lu failed: %s", t, k, ota_errname(rc));
            }
            ota_buf_free(&i2);
            ota_buf_free(&p2);
            if (!fired)
                break;
        }
    }
    assert_true(fa_failed_runs() >= 20);
    ota_buf_free(&ri);
    ota_buf_free(&rp);
    free(img);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_split_independent_output),
        cmocka_unit_test(test_threads_same_output),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_fd_helper),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_incompressible_and_zeros),
        cmocka_unit_test(test_opts_for),
        cmocka_unit_test(test_many_batches),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
