/* Unit tests for audit.c: a good image passes a full and a random audit;
 * one flipped byte is found (full audit, and a random audit whose draw
 * lands on it) with the right chunk reported; a short file, a failing
 * random source and misuse are reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/audit.h"
#include "otachain/chunk_index.h"

#include "chunk_fixture.h"
#include "failalloc.h"

#define IMG_LEN (1024u * 1024u + 999u)

struct fx {
    uint8_t *img;
    struct ota_buf index, pack;
    struct ota_chunk_index *idx;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->img = malloc(IMG_LEN);
    if (f->img == NULL)
        return -1;
    fx_firmware(f->img, IMG_LEN, 41);
    if (fx_build(&f->index, &f->pack, f->img, IMG_LEN, NULL, 0) != 0 ||
        ota_chunk_index_parse(&f->idx, f->index.data, f->index.len, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_chunk_index_free(f->idx);
    ota_buf_free(&f->index);
    ota_buf_free(&f->pack);
    free(f->img);
    free(f);
    return 0;
}

/* Deterministic "random" source: splitmix64 stream. */
static int prng(void *ctx, void *buf, size_t len)
{
    uint8_t *b = buf;
    size_t i;

    for (i = 0; i < len; i++)
        b[i] = (uint8_t)fx_next(ctx);
    return 0;
}

/* Always answers the same 4 bytes: picks chunk value % count. */
static int fixed(void *ctx, void *buf, size_t len)
{
    uint32_t v = *(const uint32_t *)ctx;
    uint8_t *b = buf;

    assert_int_equal(len, 4);
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    return 0;
}

static int broken(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return OTA_ERR_IO;
}

static void test_good_image(void **state)
{
    struct fx *f = *state;
    struct ota_audit_report rep;
    uint64_t seed = 1;
    uint8_t *slot = malloc(IMG_LEN + 4096);
    int fd;

    /* The slot is longer than the image: the tail is not audited. */
    assert_non_null(slot);
    memcpy(slot, f->img, IMG_LEN);
    memset(slot + IMG_LEN, 0x77, 4096);
    fd = fx_temp_fd(slot, IMG_LEN + 4096);
    assert_true(fd >= 0);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, UINT32_MAX, NULL, NULL, NULL), 0);
    assert_int_equal(rep.checked, f->idx->count);
    assert_true(rep.bytes == IMG_LEN);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 10, prng, &seed, NULL), 0);
    assert_int_equal(rep.checked, 10);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 0, NULL, NULL, NULL), 0);
    assert_int_equal(rep.checked, 0);
    close(fd);
    free(slot);
}

static void test_flipped_byte(void **state)
{
    struct fx *f = *state;
    struct ota_audit_report rep;
    struct ota_detail det;
    uint8_t *bad = malloc(IMG_LEN);
    const uint64_t where = 600000;
    uint32_t victim = 0;
    uint32_t pickv;
    int fd;

    assert_non_null(bad);
    memcpy(bad, f->img, IMG_LEN);
    bad[where] ^= 0x01;
    while (!(f->idx->chunks[victim].offset <= where &&
             where < f->idx->chunks[victim].offset + f->idx->chunks[victim].length))
        victim++;
    fd = fx_temp_fd(bad, IMG_LEN);
    assert_true(fd >= 0);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, UINT32_MAX, NULL, NULL, &det),
                     OTA_ERR_HASH_MISMATCH);
    assert_int_equal(rep.bad_chunk, victim);
    assert_true(rep.bad_offset == f->idx->chunks[victim].offset);
    assert_int_equal(rep.checked, victim);
    assert_non_null(strstr(det.msg, "differs from the index"));
    /* A random draw that lands on the victim finds it; others do not. */
    pickv = victim + 5 * f->idx->count; /* same chunk modulo count */
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 3, fixed, &pickv, NULL),
                     OTA_ERR_HASH_MISMATCH);
    assert_int_equal(rep.bad_chunk, victim);
    pickv = victim + 1;
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 3, fixed, &pickv, NULL), 0);
    close(fd);
    free(bad);
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    struct ota_audit_report rep;
    int fd = fx_temp_fd(f->img, IMG_LEN - 10);

    assert_true(fd >= 0);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, UINT32_MAX, NULL, NULL, NULL),
                     OTA_ERR_TRUNCATED);
    assert_int_equal(rep.checked, f->idx->count - 1);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 2, broken, NULL, NULL), OTA_ERR_IO);
    assert_int_equal(ota_audit_run(&rep, fd, f->idx, 2, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_audit_run(NULL, fd, f->idx, 2, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_audit_run(&rep, -1, f->idx, 2, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    close(fd);
}

/* Every chunk, then 10 random draws: 0 with all checked, or an error. */
static int fa_audit(const struct fx *f, int fd)
{
    struct ota_audit_report rep;
    uint64_t seed = 7;
    int rc = ota_audit_run(&rep, fd, f->idx, UINT32_MAX, NULL, NULL, NULL);

    if (rc == 0 && rep.checked != f->idx->count)
        rc = OTA_ERR_FORMAT;
    if (rc == 0)
        rc = ota_audit_run(&rep, fd, f->idx, 10, prng, &seed, NULL);
    if (rc == 0 && rep.checked != 10)
        rc = OTA_ERR_FORMAT;
    return rc;
}

/* STYLE rule 9: each allocation of an audit fails in turn. */
static void test_alloc_faults(void **state)
{
    struct fx *f = *state;
    int fd = fx_temp_fd(f->img, IMG_LEN);
    int rc;

    assert_true(fd >= 0);
    assert_int_equal(fa_audit(f, fd), 0);
    FA_LOOP(rc, fa_audit(f, fd));
    assert_true(fa_failed_runs() >= 2);
    close(fd);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_good_image),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
