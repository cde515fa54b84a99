/* Unit tests for the CLI's printer (programs/otachain/cli.c, cli_printf):
 * numbers and flags print as printf does; every %s and %c field is escaped
 * (otachain/escape.h), so one line stays one line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static char got[4096];

/* cli_printf into got[]. */
static void __attribute__((format(printf, 1, 2))) fmt(const char *f, ...)
{
    FILE *m = fmemopen(got, sizeof(got), "w");
    va_list ap;

    assert_non_null(m);
    va_start(ap, f);
    cli_vprintf(m, f, ap);
    va_end(ap);
    assert_int_equal(fclose(m), 0);
}

#define SAME(...)                                                                                  \
    do {                                                                                           \
        char want_[4096];                                                                          \
        snprintf(want_, sizeof(want_), __VA_ARGS__);                                               \
        fmt(__VA_ARGS__);                                                                          \
        assert_string_equal(got, want_);                                                           \
    } while (0)

static void test_like_printf(void **state)
{
    (void)state;
    SAME("plain text\nand a second line\n");
    SAME("%d %i %u %x %X %o %%", -5, 7, 42u, 255u, 255u, 8u);
    SAME("%5d|%-5d|%05d|%+d|% d", 3, 3, 3, 3, 3);
    SAME("%zu %zd %ld %lu %lld %llu", (size_t)9, (ssize_t)-9, -1L, 1UL, -2LL, 2ULL);
    SAME("%" PRIu64 " %" PRId64 " %" PRIu32 " %02x", UINT64_MAX, INT64_MIN, UINT32_MAX, 10u);
    SAME("%.3f %.1f %g", 1.23456, 2.0, 0.5);
    SAME("%*d|%-*d|%.*d", 4, 1, 4, 2, 3, 5);
    SAME("%s|%10s|%-10s|%.3s|%.*s|%c", "abc", "abc", "abc", "abcdef", 2, "abcdef", 'z');
    SAME("%-9s v%-5" PRIu64 " end", "root", (uint64_t)3);
}

static void test_fields_escaped(void **state)
{
    (void)state;
    fmt("name %s\n", "evil\nline\x1b[2J");
    assert_string_equal(got, "name evil\\nline\\x1b[2J\n");
    fmt("%c%c", '\r', 'a');
    assert_string_equal(got, "\\ra");
    /* Width counts what is shown. */
    fmt("[%6s][%-6s]", "a\tb", "\x01");
    assert_string_equal(got, "[  a\\tb][\\x01  ]");
    /* Precision cuts the input, then it is escaped. */
    fmt("%.2s|%.*s", "\n\nzz", 1, "\x7fq");
    assert_string_equal(got, "\\n\\n|\\x7f");
    /* Long fields are escaped whole (in pieces internally). */
    {
        char big[1000];

        memset(big, '\n', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        fmt("%s", big);
        assert_int_equal(strlen(got), 2 * (sizeof(big) - 1));
        assert_null(strchr(got, '\n'));
    }
}

static void test_error_line(void **state)
{
    struct ota_detail det = {{0}};
    FILE *m;
    FILE *saved = stderr;

    (void)state;
    snprintf(det.msg, sizeof(det.msg), "target name 'a\nb': bad");
    m = fmemopen(got, sizeof(got), "w");
    assert_non_null(m);
    stderr = m;
    cli_print_error(CLI_ERR_USAGE, &det);
    cli_warn("dropped %s", "x\ny");
    stderr = saved;
    assert_int_equal(fclose(m), 0);
    assert_non_null(strstr(got, "otachain: invalid_arg: "));
    assert_non_null(strstr(got, ": target name 'a\\nb': bad\notachain: warning: dropped x\\ny\n"));
    /* Exactly two lines. */
    assert_int_equal(strchr(strchr(got, '\n') + 1, '\n') - got + 1, (long)strlen(got));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_like_printf),
        cmocka_unit_test(test_fields_escaped),
        cmocka_unit_test(test_error_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
