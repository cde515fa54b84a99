/* Unit tests for err.c: every code has its own sentence and name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "otachain/err.h"

/* Every failure code, from the one table in err.h (OTA_ERR_TABLE): a code
 * cannot be added without a name and a text, and these tests check that
 * each is distinct and usable. */
#define all_codes ota_err_codes
#define NCODES    ((size_t)ota_err_count)

static void test_messages_distinct(void **state)
{
    const char *unknown = ota_strerror(-9999);
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < NCODES; i++) {
        const char *m = ota_strerror(all_codes[i]);

        assert_true(all_codes[i] < 0);
        assert_non_null(m);
        assert_true(strlen(m) > 10);
        assert_string_not_equal(m, unknown);
        assert_string_not_equal(m, ota_strerror(OTA_OK));
        for (j = i + 1; j < NCODES; j++)
            assert_string_not_equal(m, ota_strerror(all_codes[j]));
    }
}

static int is_snake(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static void test_names_distinct(void **state)
{
    size_t i;
    size_t j;

    (void)state;
    for (i = 0; i < NCODES; i++) {
        const char *n = ota_errname(all_codes[i]);

        assert_non_null(n);
        assert_true(is_snake(n));
        assert_string_not_equal(n, "unknown");
        assert_string_not_equal(n, ota_errname(OTA_OK));
        for (j = i + 1; j < NCODES; j++)
            assert_string_not_equal(n, ota_errname(all_codes[j]));
    }
}

static void test_known_names(void **state)
{
    (void)state;
    assert_string_equal(ota_errname(OTA_ERR_ROLLBACK), "rollback");
    assert_string_equal(ota_errname(OTA_ERR_DUP_SIGNATURE), "dup_signature");
    assert_string_equal(ota_errname(OTA_ERR_KEYID_MISMATCH), "keyid_mismatch");
    assert_string_equal(ota_errname(OTA_ERR_TOO_LARGE), "too_large");
    assert_string_equal(ota_errname(OTA_ERR_EXPIRED), "expired");
    assert_string_equal(ota_errname(OTA_ERR_THRESHOLD), "threshold");
    assert_string_equal(ota_errname(OTA_ERR_HASH_MISMATCH), "hash_mismatch");
    assert_string_equal(ota_errname(OTA_ERR_LENGTH_MISMATCH), "length_mismatch");
    assert_string_equal(ota_errname(OTA_ERR_VERSION_MISMATCH), "version_mismatch");
    assert_string_equal(ota_errname(OTA_ERR_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(ota_errname(OTA_ERR_NOT_FOUND), "not_found");
    assert_string_equal(ota_errname(OTA_OK), "ok");
}

static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(ota_errname(-50), "unknown"); /* gap in the enum */
    assert_string_equal(ota_errname(12345), "unknown");
    assert_string_equal(ota_errname(-12345), "unknown");
    assert_non_null(ota_strerror(-50));
    assert_true(strlen(ota_strerror(12345)) > 0);
}

static void test_detail(void **state)
{
    struct ota_detail det;
    char longs[2 * OTA_DETAIL_LEN];

    (void)state;
    ota_detail_set(NULL, "x %d", 1); /* no-op */
    ota_detail_prefix(NULL, "p");

    ota_detail_set(&det, "version %d < trusted version %d", 3, 5);
    assert_string_equal(det.msg, "version 3 < trusted version 5");
    ota_detail_prefix(&det, "timestamp.json");
    assert_string_equal(det.msg, "timestamp.json: version 3 < trusted version 5");

    ota_detail_set(&det, "%s", "");
    ota_detail_prefix(&det, "root.json");
    assert_string_equal(det.msg, "root.json");

    /* Truncation keeps the buffer NUL-terminated. */
    memset(longs, 'a', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    ota_detail_set(&det, "%s", longs);
    assert_int_equal(strlen(det.msg), OTA_DETAIL_LEN - 1);
    ota_detail_prefix(&det, "pfx");
    assert_int_equal(strlen(det.msg), OTA_DETAIL_LEN - 1);
    assert_memory_equal(det.msg, "pfx: aaa", 8);
    ota_detail_prefix(&det, longs);
    assert_int_equal(strlen(det.msg), OTA_DETAIL_LEN - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_distinct),
        cmocka_unit_test(test_names_distinct),
        cmocka_unit_test(test_known_names),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_detail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
