/* Unit tests for tlog_witness.c: the spec's example request body, round
 * trips, one refusal per parse rule (with the output zeroed), the caps
 * (63 proof lines, the body size) and the 409 size body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/tlog_witness.h"

/* The example request of C2SP tlog-witness (add-checkpoint). */
static const char spec_body[] = "old 20852014\n"
                                "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
                                "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
                                "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
                                "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
                                "\n"
                                "example.com/behind-the-sofa\n"
                                "20852163\n"
                                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
                                "\n"
                                "\xe2\x80\x94 example.com/behind-the-sofa "
                                "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
                                "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

static const char note_part[] = "example.com/behind-the-sofa\n20852163\n";

static int parse(struct ota_tlog_witness_body *b, const char *s)
{
    return ota_tlog_witness_body_parse(b, s, strlen(s), NULL);
}

static void assert_zeroed(const struct ota_tlog_witness_body *b)
{
    static const struct ota_tlog_witness_body zero;
    assert_memory_equal(b, &zero, sizeof(zero));
}

static void test_spec_example(void **state)
{
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));
    uint8_t first[32];
    size_t n;

    (void)state;
    assert_non_null(b);
    assert_int_equal(parse(b, spec_body), 0);
    assert_int_equal(b->old_size, 20852014);
    assert_int_equal(b->nproof, 4);
    assert_int_equal(ota_base64_decode(first, sizeof(first), &n,
                                       "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=", 44),
                     0);
    assert_memory_equal(b->proof[0], first, 32);
    assert_ptr_equal(b->note, spec_body + strlen("old 20852014\n") + 4 * 45 + 1);
    assert_int_equal(b->note_len, strlen(spec_body) - (size_t)(b->note - spec_body));
    assert_memory_equal(b->note, note_part, strlen(note_part));
    free(b);
}

static void test_round_trip(void **state)
{
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));
    struct ota_buf out;

    (void)state;
    assert_non_null(b);
    assert_int_equal(parse(b, spec_body), 0);
    ota_buf_init(&out, OTA_TLOG_WITNESS_MAX_BODY);
    assert_int_equal(ota_tlog_witness_body_format(&out, b->old_size, (const uint8_t(*)[32])b->proof,
                                                  b->nproof, b->note, b->note_len),
                     0);
    assert_int_equal(out.len, strlen(spec_body));
    assert_memory_equal(out.data, spec_body, out.len);
    ota_buf_free(&out);

    /* old 0 with no proof */
    ota_buf_init(&out, 1024);
    assert_int_equal(ota_tlog_witness_body_format(&out, 0, NULL, 0, "x\n", 2), 0);
    assert_string_equal((const char *)out.data, "old 0\n\nx\n");
    assert_int_equal(ota_tlog_witness_body_parse(b, out.data, out.len, NULL), 0);
    assert_int_equal(b->old_size, 0);
    assert_int_equal(b->nproof, 0);
    assert_int_equal(b->note_len, 2);
    ota_buf_free(&out);
    free(b);
}

static void test_refuse_old_line(void **state)
{
    static const char *const bad[] = {
        "",
        "old\n\nx\n",
        "old \n\nx\n",
        "old 01\n\nx\n",
        "old -1\n\nx\n",
        "old 1 \n\nx\n",
        "Old 1\n\nx\n",
        "old  1\n\nx\n",
        "old 9223372036854775808\n\nx\n", /* 2^63 */
        "old 1",
        "new 1\n\nx\n",
    };
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));
    struct ota_detail det;

    (void)state;
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        det.msg[0] = '\0';
        assert_int_equal(ota_tlog_witness_body_parse(b, bad[i], strlen(bad[i]), &det),
                         OTA_ERR_FORMAT);
        assert_zeroed(b);
        assert_true(det.msg[0] != '\0');
    }
    assert_int_equal(parse(b, "old 9223372036854775807\n\nx\n"), 0);
    free(b);
}

static void test_refuse_proof_lines(void **state)
{
    static const char *const bad[] = {
        /* 33 bytes */
        "old 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\nx\n",
        /* 31 bytes */
        "old 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n\nx\n",
        /* non-canonical: unused bits set */
        "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\nx\n",
        /* trailing space, CRLF */
        "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw= \n\nx\n",
        "old 1\r\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\nx\n",
        "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\r\n\nx\n",
        /* no empty line, nothing after it */
        "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n",
        "old 1\n",
        "old 1\n\n",
        "old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\n",
    };
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));

    (void)state;
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(b, bad[i]), OTA_ERR_FORMAT);
        assert_zeroed(b);
    }
    free(b);
}

static void test_proof_line_cap(void **state)
{
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));
    uint8_t(*proof)[32] = calloc(64, 32);
    struct ota_buf out;

    (void)state;
    assert_non_null(b);
    assert_non_null(proof);
    for (size_t i = 0; i < 64; i++)
        proof[i][0] = (uint8_t)i;
    ota_buf_init(&out, OTA_TLOG_WITNESS_MAX_BODY);
    assert_int_equal(
        ota_tlog_witness_body_format(&out, 5, (const uint8_t(*)[32])proof, 63, "x\n", 2), 0);
    assert_int_equal(ota_tlog_witness_body_parse(b, out.data, out.len, NULL), 0);
    assert_int_equal(b->nproof, 63);
    assert_int_equal(b->proof[62][0], 62);
    ota_buf_free(&out);

    /* 64 lines: refused by the formatter and the parser */
    ota_buf_init(&out, OTA_TLOG_WITNESS_MAX_BODY);
    assert_int_equal(
        ota_tlog_witness_body_format(&out, 5, (const uint8_t(*)[32])proof, 64, "x\n", 2),
        OTA_ERR_INVALID_ARG);
    assert_int_equal(out.len, 0);
    assert_int_equal(ota_buf_printf(&out, "old 5\n"), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(ota_buf_append_str(&out, "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"),
                         0);
    assert_int_equal(ota_buf_append_str(&out, "\nx\n"), 0);
    assert_int_equal(ota_tlog_witness_body_parse(b, out.data, out.len, NULL), OTA_ERR_TOO_LARGE);
    assert_zeroed(b);
    ota_buf_free(&out);
    free(proof);
    free(b);
}

static void test_body_cap(void **state)
{
    struct ota_tlog_witness_body *b = malloc(sizeof(*b));
    size_t n = OTA_TLOG_WITNESS_MAX_BODY + 1;
    char *big = malloc(n);
    struct ota_buf out;

    (void)state;
    assert_non_null(b);
    assert_non_null(big);
    memset(big, 'x', n);
    memcpy(big, "old 0\n\n", 7);
    assert_int_equal(ota_tlog_witness_body_parse(b, big, n, NULL), OTA_ERR_TOO_LARGE);
    assert_zeroed(b);
    assert_int_equal(ota_tlog_witness_body_parse(b, big, n - 1, NULL), 0);
    assert_int_equal(b->note_len, n - 1 - 7);

    /* the formatter refuses a note that does not fit, leaving out as is */
    ota_buf_init(&out, 2 * OTA_TLOG_WITNESS_MAX_BODY);
    assert_int_equal(ota_buf_append_str(&out, "keep"), 0);
    assert_int_equal(ota_tlog_witness_body_format(&out, 0, NULL, 0, big, n - 7), OTA_ERR_TOO_LARGE);
    assert_int_equal(out.len, 4);
    assert_string_equal((const char *)out.data, "keep");
    ota_buf_free(&out);
    free(big);
    free(b);
}

static void test_format_args(void **state)
{
    struct ota_buf out;
    uint8_t h[1][32] = {{0}};

    (void)state;
    ota_buf_init(&out, 1024);
    assert_int_equal(ota_tlog_witness_body_format(&out, UINT64_C(1) << 63, NULL, 0, "x\n", 2),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tlog_witness_body_format(&out, 0, NULL, 0, "", 0), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tlog_witness_body_format(&out, 0, NULL, 1, "x\n", 2), OTA_ERR_INVALID_ARG);
    /* out's own cap: nothing left behind */
    ota_buf_free(&out);
    ota_buf_init(&out, 20);
    assert_int_equal(ota_tlog_witness_body_format(&out, 1, (const uint8_t(*)[32])h, 1, "x\n", 2),
                     OTA_ERR_TOO_LARGE);
    assert_int_equal(out.len, 0);
    ota_buf_free(&out);
}

static void test_size_body(void **state)
{
    char text[OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1];
    uint64_t v = 7;

    (void)state;
    assert_int_equal(ota_tlog_witness_size_format(text, 0), 2);
    assert_string_equal(text, "0\n");
    assert_int_equal(ota_tlog_witness_size_format(text, UINT64_C(0x7fffffffffffffff)), 20);
    assert_string_equal(text, "9223372036854775807\n");
    assert_int_equal(ota_tlog_witness_size_format(text, UINT64_C(1) << 63), 0);
    assert_string_equal(text, "");

    assert_int_equal(ota_tlog_witness_size_parse(&v, "20852014\n", 9), 0);
    assert_int_equal(v, 20852014);
    assert_int_equal(ota_tlog_witness_size_parse(&v, "0\n", 2), 0);
    assert_int_equal(v, 0);
    static const char *const bad[] = {
        "", "\n", "1", "01\n", "1\n\n", " 1\n", "1 \n", "9223372036854775808\n", "1\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(ota_tlog_witness_size_parse(&v, bad[i], strlen(bad[i])), OTA_ERR_FORMAT);
        assert_int_equal(v, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuse_old_line), cmocka_unit_test(test_refuse_proof_lines),
        cmocka_unit_test(test_proof_line_cap),  cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_format_args),     cmocka_unit_test(test_size_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
