/* Unit tests for buf.c: the hard cap, NUL termination, printf, steal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/buf.h"

static void test_init_empty(void **state)
{
    struct ota_buf b;
    size_t len = 99;

    (void)state;
    ota_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 10);
    assert_null(ota_buf_steal(&b, &len)); /* never grew */
    assert_int_equal(len, 0);
    ota_buf_free(&b); /* never used: fine */
    ota_buf_free(NULL);
}

static void test_cap_exact(void **state)
{
    struct ota_buf b;
    uint8_t big[100];

    (void)state;
    memset(big, 'x', sizeof(big));
    ota_buf_init(&b, 100);
    assert_int_equal(ota_buf_append(&b, big, 60), 0);
    assert_int_equal(ota_buf_append(&b, big, 40), 0); /* exactly max */
    assert_int_equal(b.len, 100);
    assert_int_equal(b.data[100], '\0');
    /* One byte more is refused and nothing is appended. */
    assert_int_equal(ota_buf_append(&b, "y", 1), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 100);
    assert_int_equal(b.data[100], '\0');
    assert_int_equal(ota_buf_append_str(&b, "y"), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_buf_printf(&b, "%d", 7), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 100);
    assert_int_equal(ota_buf_append(&b, "", 0), 0); /* zero bytes still fit */
    ota_buf_free(&b);

    /* A request larger than the whole cap appends nothing either. */
    ota_buf_init(&b, 10);
    assert_int_equal(ota_buf_append(&b, "abc", 3), 0);
    assert_int_equal(ota_buf_append(&b, big, 8), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 3);
    assert_string_equal((char *)b.data, "abc");
    assert_int_equal(ota_buf_append(&b, big, 7), 0);
    assert_int_equal(b.len, 10);
    assert_true(b.alloc <= 11); /* never allocates past the cap */
    ota_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_zero_cap(void **state)
{
    struct ota_buf b;

    (void)state;
    ota_buf_init(&b, 0);
    assert_int_equal(ota_buf_append(&b, "a", 1), OTA_ERR_TOO_LARGE);
    assert_int_equal(ota_buf_append(&b, NULL, 0), 0);
    assert_non_null(b.data); /* the first append makes it a valid "" */
    assert_string_equal((char *)b.data, "");
    ota_buf_free(&b);
}

static void test_huge_cap(void **state)
{
    struct ota_buf b;

    (void)state;
    /* A cap of SIZE_MAX is legal (no overflow in the cap arithmetic). */
    ota_buf_init(&b, SIZE_MAX);
    assert_int_equal(ota_buf_append_str(&b, "abc"), 0);
    assert_int_equal(ota_buf_printf(&b, "%d", 12), 0);
    assert_string_equal((char *)b.data, "abc12");
    assert_int_equal(ota_buf_append(&b, "x", SIZE_MAX), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 5);
    ota_buf_free(&b);
}

static void test_growth_and_nul(void **state)
{
    struct ota_buf b;
    size_t i;

    (void)state;
    ota_buf_init(&b, 1 << 20);
    for (i = 0; i < 10000; i++) {
        char c = (char)('a' + (i % 26));

        assert_int_equal(ota_buf_append(&b, &c, 1), 0);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen((char *)b.data), 10000);
    for (i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + (i % 26));
    ota_buf_free(&b);
}

static void test_binary(void **state)
{
    struct ota_buf b;
    const uint8_t bin[] = {0, 1, 0, 255};

    (void)state;
    ota_buf_init(&b, 16);
    assert_int_equal(ota_buf_append(&b, bin, sizeof(bin)), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, bin, 4);
    assert_int_equal(b.data[4], 0);
    ota_buf_free(&b);
}

static void test_printf(void **state)
{
    struct ota_buf b;

    (void)state;
    ota_buf_init(&b, 64);
    assert_int_equal(ota_buf_append_str(&b, "v="), 0);
    assert_int_equal(ota_buf_printf(&b, "%d/%s/%lld", 42, "x", -9007199254740993LL), 0);
    assert_string_equal((char *)b.data, "v=42/x/-9007199254740993");
    assert_int_equal(b.len, strlen("v=42/x/-9007199254740993"));
    assert_int_equal(ota_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, strlen("v=42/x/-9007199254740993"));
    ota_buf_free(&b);

    /* printf to exactly the cap, then one more refused. */
    ota_buf_init(&b, 5);
    assert_int_equal(ota_buf_printf(&b, "%05d", 123), 0);
    assert_string_equal((char *)b.data, "00123");
    assert_int_equal(ota_buf_printf(&b, "%c", 'z'), OTA_ERR_TOO_LARGE);
    assert_string_equal((char *)b.data, "00123");
    ota_buf_free(&b);

    /* A long printf that forces growth from empty. */
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_buf_printf(&b, "%1000d", 1), 0);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[999], '1');
    assert_int_equal(b.data[1000], '\0');
    ota_buf_free(&b);
}

static void test_steal(void **state)
{
    struct ota_buf b;
    uint8_t *p;
    size_t len = 0;

    (void)state;
    ota_buf_init(&b, 32);
    assert_int_equal(ota_buf_append_str(&b, "hello"), 0);
    p = ota_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_string_equal((char *)p, "hello");
    /* The buffer is empty again, keeps its cap, and is reusable. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 32);
    assert_int_equal(ota_buf_append_str(&b, "again"), 0);
    assert_string_equal((char *)b.data, "again");
    ota_buf_free(&b);
    free(p);
}

static void test_bad_args(void **state)
{
    struct ota_buf b;

    (void)state;
    ota_buf_init(&b, 8);
    assert_int_equal(ota_buf_append(&b, NULL, 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_buf_append_str(&b, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(b.len, 0);
    ota_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),     cmocka_unit_test(test_cap_exact),
        cmocka_unit_test(test_zero_cap),       cmocka_unit_test(test_huge_cap),
        cmocka_unit_test(test_growth_and_nul), cmocka_unit_test(test_binary),
        cmocka_unit_test(test_printf),         cmocka_unit_test(test_steal),
        cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
