/* Unit tests for upload.c: the Content-Range of a part (every refusal),
 * blob names, and parts stored in order, resumed, refused out of order
 * or with another total, hashed when complete (a mismatch drops the
 * partial upload), packs taken without a hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/crypto.h"
#include "otachain/fsutil.h"
#include "otachain/upload.h"
#include "testfs.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/ota-test-upload-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static int range(struct ota_upload_range *r, const char *h)
{
    struct ota_detail det;

    return ota_upload_range_parse(r, h, strlen(h), 1000, &det);
}

static void test_range(void **state)
{
    static const char *const bad[] = {
        "",
        "bytes",
        "bytes 0-1",
        "bytes 0-1/",
        "bytes -1/5",
        "bytes 0-/5",
        "bytes 1-0/5",
        "bytes 0-5/5",
        "bytes 01-2/5",
        "bytes 0-1/05",
        "bytes 0 -1/5",
        "Bytes 0-1/5",
        "bytes=0-1/5",
        "bytes 0-1/*",
        "bytes +1-2/5",
        "bytes 0-1/5 ",
        "items 0-1/5",
    };
    struct ota_upload_range r;

    (void)state;
    assert_int_equal(range(&r, "bytes 0-9/10"), 0);
    assert_int_equal(r.first, 0);
    assert_int_equal(r.last, 9);
    assert_int_equal(r.total, 10);
    assert_int_equal(range(&r, "bytes 5-5/6"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (range(&r, bad[i]) != OTA_ERR_FORMAT)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(r.total, 0);
    }
    assert_int_equal(range(&r, "bytes 0-9/1001"), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_upload_range_parse(&r, "bytes 0-1/5\0x", 13, 100, NULL), OTA_ERR_FORMAT);
}

static void test_names(void **state)
{
    char hex[OTA_SHA256_HEX_LEN + 8];
    bool pack;

    (void)state;
    memset(hex, 'a', 64);
    hex[64] = '\0';
    assert_true(ota_upload_name_valid(hex, &pack));
    assert_false(pack);
    memcpy(hex + 64, ".pack", 6);
    assert_true(ota_upload_name_valid(hex, &pack));
    assert_true(pack);
    memcpy(hex + 64, ".pak", 5);
    assert_false(ota_upload_name_valid(hex, &pack));
    hex[64] = '\0';
    hex[3] = 'A';
    assert_false(ota_upload_name_valid(hex, &pack));
    assert_false(ota_upload_name_valid("../etc", &pack));
    assert_false(ota_upload_name_valid(NULL, &pack));
}

static void name_of(char out[65], const uint8_t *data, size_t len)
{
    uint8_t h[32];

    assert_int_equal(ota_sha256(h, data, len), 0);
    ota_hex_encode(out, h, 32);
}

static int put(struct ota_upload_status *st, const char *name, uint64_t a, uint64_t b,
               uint64_t total, const uint8_t *data)
{
    struct ota_upload_range r = {a, b, total};
    struct ota_detail det;

    return ota_upload_put(st, g_dir, name, &r, data + a, (size_t)(b - a + 1), NULL, &det);
}

static void test_parts(void **state)
{
    uint8_t blob[3000];
    char name[65];
    char path[600];
    struct ota_upload_status st;
    struct ota_detail det;
    uint8_t *back;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 13 + 7);
    name_of(name, blob, sizeof(blob));
    assert_int_equal(ota_upload_status(&st, g_dir, name, &det), 0);
    assert_false(st.complete);
    assert_int_equal(st.received, 0);
    /* Out of order: refused, says where to start. */
    assert_int_equal(put(&st, name, 1000, 1999, 3000, blob), OTA_ERR_EXISTS);
    assert_int_equal(st.received, 0);
    assert_int_equal(put(&st, name, 0, 999, 3000, blob), 0);
    assert_int_equal(st.received, 1000);
    assert_false(st.complete);
    /* A repeated part (the answer was lost): refused, status unchanged. */
    assert_int_equal(put(&st, name, 0, 999, 3000, blob), OTA_ERR_EXISTS);
    assert_int_equal(st.received, 1000);
    /* Another total than the upload was started with. */
    assert_int_equal(put(&st, name, 1000, 1999, 4000, blob), OTA_ERR_LENGTH_MISMATCH);
    assert_int_equal(ota_upload_status(&st, g_dir, name, &det), 0);
    assert_int_equal(st.received, 1000);
    assert_int_equal(st.total, 3000);
    assert_int_equal(put(&st, name, 1000, 2999, 3000, blob), 0);
    assert_true(st.complete);
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    assert_int_equal(ota_fs_read(&back, &len, path, 1 << 20), 0);
    assert_int_equal(len, sizeof(blob));
    assert_memory_equal(back, blob, len);
    free(back);
    /* A complete blob takes no more parts and stays as it is. */
    assert_int_equal(put(&st, name, 0, 9, 3000, blob), 0);
    assert_true(st.complete);
    assert_int_equal(ota_upload_status(&st, g_dir, name, &det), 0);
    assert_true(st.complete);
    assert_int_equal(st.received, 3000);
}

static void test_hash_mismatch(void **state)
{
    uint8_t blob[100];
    uint8_t other[100];
    char name[65];
    char path[600];
    struct ota_upload_status st;
    struct ota_detail det;
    struct stat sb;

    (void)state;
    memset(blob, 1, sizeof(blob));
    memset(other, 2, sizeof(other));
    name_of(name, blob, sizeof(blob));
    assert_int_equal(put(&st, name, 0, 49, 100, blob), 0);
    assert_int_equal(put(&st, name, 50, 99, 100, other), OTA_ERR_HASH_MISMATCH);
    assert_false(st.complete);
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(ota_upload_status(&st, g_dir, name, &det), 0);
    assert_int_equal(st.received, 0);
    /* Then the right bytes. */
    assert_int_equal(put(&st, name, 0, 99, 100, blob), 0);
    assert_true(st.complete);
    /* A part whose length is not its range's. */
    struct ota_upload_range r = {0, 9, 20};
    memset(name, 'c', 64);
    assert_int_equal(ota_upload_put(&st, g_dir, name, &r, blob, 5, NULL, &det),
                     OTA_ERR_LENGTH_MISMATCH);
}

static void test_pack(void **state)
{
    uint8_t data[64];
    char name[70];
    struct ota_upload_status st;

    (void)state;
    memset(data, 9, sizeof(data));
    memset(name, 'b', 64);
    memcpy(name + 64, ".pack", 6);
    assert_int_equal(put(&st, name, 0, 63, 64, data), 0);
    assert_true(st.complete);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range), cmocka_unit_test(test_names),
        cmocka_unit_test(test_parts), cmocka_unit_test(test_hash_mismatch),
        cmocka_unit_test(test_pack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
