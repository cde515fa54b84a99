/* Unit tests for escape.c: one line of printable ASCII whatever the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "otachain/escape.h"

static void test_escapes(void **state)
{
    char out[64];
    const char in[] = "a b\n\r\t\x1b[31m\x7f\xc3\xa9\\z";

    size_t n = ota_escape(out, sizeof(out), in, sizeof(in) - 1);

    (void)state;
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "a b\\n\\r\\t\\x1b[31m\\x7f\\xc3\\xa9\\z");
    /* NUL bytes inside the length are escaped too. */
    assert_int_equal(ota_escape(out, sizeof(out), "a\0b", 3), 6);
    assert_string_equal(out, "a\\x00b");
    assert_int_equal(ota_escape(out, sizeof(out), "", 0), 0);
    assert_string_equal(out, "");
}

static void test_idempotent(void **state)
{
    char once[128], twice[128];
    const char in[] = "name\nwith\x01 controls\\";

    (void)state;
    ota_escape(once, sizeof(once), in, sizeof(in) - 1);
    ota_escape(twice, sizeof(twice), once, strlen(once));
    assert_string_equal(once, twice);
    assert_true(ota_escape_clean(once, strlen(once)));
    assert_false(ota_escape_clean(in, sizeof(in) - 1));
}

static void test_truncation(void **state)
{
    char out[16];
    char big[64];

    (void)state;
    memset(big, 'x', sizeof(big));
    /* 15 bytes of room: 12 x and "...". */
    assert_int_equal(ota_escape(out, sizeof(out), big, sizeof(big)), 15);
    assert_string_equal(out, "xxxxxxxxxxxx...");
    /* Exactly fitting input is not marked. */
    assert_int_equal(ota_escape(out, sizeof(out), big, 15), 15);
    assert_string_equal(out, "xxxxxxxxxxxxxxx");
    /* An escape is never cut in half. */
    memset(big, '\n', sizeof(big));
    ota_escape(out, sizeof(out), big, sizeof(big));
    assert_string_equal(out, "\\n\\n\\n\\n\\n\\n...");
    memset(big, 1, sizeof(big));
    ota_escape(out, sizeof(out), big, sizeof(big));
    assert_string_equal(out, "\\x01\\x01\\x01...");
    /* Too small a buffer: nothing written. */
    out[0] = 'q';
    assert_int_equal(ota_escape(out, 3, "abc", 3), 0);
    assert_int_equal(out[0], 'q');
    assert_int_equal(ota_escape(out, 4, "abcd", 4), 3);
    assert_string_equal(out, "...");
    assert_int_equal(ota_escape(out, 4, "abc", 3), 3);
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_truncation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
