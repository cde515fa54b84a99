/* Unit tests for tlog_proof.c: format -> parse round trips (with and
 * without extra data, with 0 and 63 hashes), the spec's layout byte for
 * byte, and one refusal per parse rule with its exact error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_proof.h"

#include "failalloc.h"

#define ORIGIN "example.com/fancylog"
#define ROOT   "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08="
#define H1     "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="
#define H2     "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA="

/* A signed and cosigned checkpoint of size 109482 (made once). */
static char note_text[4096];
static size_t note_len;

static int group_setup(void **state)
{
    struct ota_note_signer *log = NULL;
    struct ota_note_signer *w = NULL;
    const char *body = ORIGIN "\n109482\n" ROOT "\n";
    uint8_t seed[32];
    struct ota_buf b;

    (void)state;
    memset(seed, 9, sizeof(seed));
    if (ota_note_signer_from_seed(&log, ORIGIN, strlen(ORIGIN), 0x01, seed) != 0 ||
        ota_note_signer_from_seed(&w, "witness1.example", 16, 0x04, seed) != 0)
        return -1;
    ota_buf_init(&b, sizeof(note_text) - 1);
    if (ota_buf_printf(&b, "%s\n", body) != 0 ||
        ota_note_sign(&b, body, strlen(body), log, NULL) != 0 ||
        ota_note_cosign(&b, body, strlen(body), 1700000000, w, NULL) != 0)
        return -1;
    memcpy(note_text, b.data, b.len);
    note_len = b.len;
    ota_buf_free(&b);
    ota_note_signer_free(log);
    ota_note_signer_free(w);
    return 0;
}

static void expect(const char *head, int want, const char *detail_part)
{
    struct ota_buf b;
    struct ota_tlog_proof *pr = (struct ota_tlog_proof *)&pr;
    struct ota_detail det = {{0}};
    int rc;

    ota_buf_init(&b, 1 << 21);
    assert_int_equal(ota_buf_append_str(&b, head), 0);
    assert_int_equal(ota_buf_append(&b, note_text, note_len), 0);
    rc = ota_tlog_proof_parse(&pr, b.data, b.len, &det);
    if (rc != want)
        fail_msg("proof %s: got %s (%s), want %s", head, ota_errname(rc), det.msg,
                 ota_errname(want));
    if (rc != 0)
        assert_null(pr);
    else
        ota_tlog_proof_free(pr);
    if (detail_part != NULL && strstr(det.msg, detail_part) == NULL)
        fail_msg("proof %s: detail \"%s\" lacks \"%s\"", head, det.msg, detail_part);
    ota_buf_free(&b);
}

static void test_spec_layout(void **state)
{
    struct ota_buf want;
    struct ota_buf got;
    struct ota_tlog_proof *pr = NULL;
    uint8_t hashes[2][32];
    size_t n = 0;
    const char *extra = "age-v1.2.1-darwin-arm64.tar.gz";

    (void)state;
    assert_int_equal(ota_base64_decode(hashes[0], 32, &n, H1, 44), 0);
    assert_int_equal(ota_base64_decode(hashes[1], 32, &n, H2, 44), 0);
    ota_buf_init(&want, 1 << 20);
    assert_int_equal(ota_buf_append_str(&want, "c2sp.org/tlog-proof@v1\n"
                                               "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\n"
                                               "index 73894\n" H1 "\n" H2 "\n\n"),
                     0);
    assert_int_equal(ota_buf_append(&want, note_text, note_len), 0);
    ota_buf_init(&got, 1 << 20);
    assert_int_equal(ota_tlog_proof_format(&got, (const uint8_t *)extra, strlen(extra), 73894,
                                           (const uint8_t(*)[32])hashes, 2, note_text, note_len,
                                           NULL),
                     0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    assert_int_equal(ota_tlog_proof_parse(&pr, got.data, got.len, NULL), 0);
    assert_true(pr->has_extra);
    assert_int_equal(pr->extra_len, strlen(extra));
    assert_memory_equal(pr->extra, extra, strlen(extra));
    assert_int_equal(pr->index, 73894);
    assert_int_equal(pr->nhashes, 2);
    assert_memory_equal(pr->hashes, hashes, sizeof(hashes));
    assert_string_equal(pr->checkpoint.origin, ORIGIN);
    assert_int_equal(pr->checkpoint.size, 109482);
    assert_int_equal(pr->note->nsigs, 2);
    ota_tlog_proof_free(pr);
    ota_buf_free(&want);
    ota_buf_free(&got);
}

static void test_round_trips(void **state)
{
    uint8_t hashes[OTA_TLOG_PROOF_MAX_HASHES][32];
    struct ota_tlog_proof *pr = NULL;
    struct ota_buf b;

    (void)state;
    for (int i = 0; i < OTA_TLOG_PROOF_MAX_HASHES; i++)
        memset(hashes[i], i, 32);
    /* No extra, no hashes, index 0. */
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_tlog_proof_format(&b, NULL, 0, 0, NULL, 0, note_text, note_len, NULL), 0);
    assert_memory_equal(b.data, "c2sp.org/tlog-proof@v1\nindex 0\n\n", 32);
    assert_int_equal(ota_tlog_proof_parse(&pr, b.data, b.len, NULL), 0);
    assert_false(pr->has_extra);
    assert_null(pr->extra);
    assert_int_equal(pr->nhashes, 0);
    ota_tlog_proof_free(pr);
    ota_buf_free(&b);
    /* 63 hashes, the last index. */
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_tlog_proof_format(&b, NULL, 0, 109481, (const uint8_t(*)[32])hashes,
                                           OTA_TLOG_PROOF_MAX_HASHES, note_text, note_len, NULL),
                     0);
    assert_int_equal(ota_tlog_proof_parse(&pr, b.data, b.len, NULL), 0);
    assert_int_equal(pr->nhashes, 63);
    assert_memory_equal(pr->hashes, hashes, sizeof(hashes));
    assert_int_equal(pr->index, 109481);
    ota_tlog_proof_free(pr);
    ota_buf_free(&b);
    ota_tlog_proof_free(NULL);
}

static void test_format_refusals(void **state)
{
    uint8_t hashes[OTA_TLOG_PROOF_MAX_HASHES + 1][32];
    struct ota_buf b;
    struct ota_detail det = {{0}};

    (void)state;
    memset(hashes, 0, sizeof(hashes));
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_buf_append_str(&b, "keep"), 0);
    assert_int_equal(ota_tlog_proof_format(&b, NULL, 0, 109482, NULL, 0, note_text, note_len, &det),
                     OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "not below the tree size"));
    assert_int_equal(ota_tlog_proof_format(&b, NULL, 0, 1, (const uint8_t(*)[32])hashes, 64,
                                           note_text, note_len, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(
        ota_tlog_proof_format(&b, (const uint8_t *)"", 0, 1, NULL, 0, note_text, note_len, NULL),
        OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tlog_proof_format(&b, NULL, 0, 1, NULL, 0, "not a note\n", 11, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(b.len, 4);
    ota_buf_free(&b);
}

static void test_refuse_too_large(void **state)
{
    size_t len = OTA_TLOG_PROOF_MAX_LEN + 1;
    char *s = malloc(len);
    struct ota_tlog_proof *pr = NULL;

    (void)state;
    assert_non_null(s);
    memset(s, 'a', len);
    assert_int_equal(ota_tlog_proof_parse(&pr, s, len, NULL), OTA_ERR_TOO_LARGE);
    assert_null(pr);
    free(s);
}

static void test_refuse_header(void **state)
{
    (void)state;
    expect("c2sp.org/tlog-proof@v2\nindex 1\n\n", OTA_ERR_FORMAT, "line 1");
    expect("c2sp.org/tlog-proof@v1 \nindex 1\n\n", OTA_ERR_FORMAT, "line 1");
    expect("\nc2sp.org/tlog-proof@v1\nindex 1\n\n", OTA_ERR_FORMAT, "line 1");
}

static void test_refuse_extra(void **state)
{
    char big[OTA_BASE64_LEN(OTA_TLOG_PROOF_MAX_EXTRA + 3) + 64];
    uint8_t raw[OTA_TLOG_PROOF_MAX_EXTRA + 3];
    size_t o;

    (void)state;
    expect("c2sp.org/tlog-proof@v1\nextra\nindex 1\n\n", OTA_ERR_FORMAT, "extra <base64>");
    expect("c2sp.org/tlog-proof@v1\nextra \nindex 1\n\n", OTA_ERR_FORMAT, "extra <base64>");
    expect("c2sp.org/tlog-proof@v1\nextra_YWJj\nindex 1\n\n", OTA_ERR_FORMAT, "extra <base64>");
    expect("c2sp.org/tlog-proof@v1\nextra YWJ\nindex 1\n\n", OTA_ERR_FORMAT, "base64");
    expect("c2sp.org/tlog-proof@v1\nextra YWJj\nindex 1\n\n", 0, NULL);
    memset(raw, 1, sizeof(raw));
    o = (size_t)snprintf(big, sizeof(big), "c2sp.org/tlog-proof@v1\nextra ");
    o += ota_base64_encode(big + o, raw, OTA_TLOG_PROOF_MAX_EXTRA);
    snprintf(big + o, sizeof(big) - o, "\nindex 1\n\n");
    expect(big, 0, NULL);
    o = (size_t)snprintf(big, sizeof(big), "c2sp.org/tlog-proof@v1\nextra ");
    o += ota_base64_encode(big + o, raw, OTA_TLOG_PROOF_MAX_EXTRA + 1);
    snprintf(big + o, sizeof(big) - o, "\nindex 1\n\n");
    expect(big, OTA_ERR_TOO_LARGE, "cap");
    o = (size_t)snprintf(big, sizeof(big), "c2sp.org/tlog-proof@v1\nextra ");
    o += ota_base64_encode(big + o, raw, OTA_TLOG_PROOF_MAX_EXTRA + 3);
    snprintf(big + o, sizeof(big) - o, "\nindex 1\n\n");
    expect(big, OTA_ERR_TOO_LARGE, "cap");
}

static void test_refuse_index(void **state)
{
    (void)state;
    expect("c2sp.org/tlog-proof@v1\n\n", OTA_ERR_FORMAT, "index");
    expect("c2sp.org/tlog-proof@v1\n" H1 "\n\n", OTA_ERR_FORMAT, "index");
    expect("c2sp.org/tlog-proof@v1\nindex\n\n", OTA_ERR_FORMAT, "index");
    expect("c2sp.org/tlog-proof@v1\nindex 01\n\n", OTA_ERR_FORMAT, "leading zeros");
    expect("c2sp.org/tlog-proof@v1\nindex  1\n\n", OTA_ERR_FORMAT, "index");
    expect("c2sp.org/tlog-proof@v1\nindex -1\n\n", OTA_ERR_FORMAT, "index");
    expect("c2sp.org/tlog-proof@v1\nindex 9223372036854775808\n\n", OTA_ERR_FORMAT, "2^63");
    expect("c2sp.org/tlog-proof@v1\nindex 1\nextra YWJj\n\n", OTA_ERR_FORMAT,
           "line 3: not base64"); /* extra after index */
    /* Beyond the checkpoint's tree. */
    expect("c2sp.org/tlog-proof@v1\nindex 109482\n\n", OTA_ERR_FORMAT, "not below the tree size");
    expect("c2sp.org/tlog-proof@v1\nindex 109481\n\n", 0, NULL);
}

static void test_refuse_hashes(void **state)
{
    char big[8192];
    size_t o;

    (void)state;
    expect("c2sp.org/tlog-proof@v1\nindex 1\n" H1 " \n\n", OTA_ERR_FORMAT, "line 3");
    expect("c2sp.org/tlog-proof@v1\nindex 1\n" H1 "\nAAAA\n\n", OTA_ERR_FORMAT, "line 4");
    expect("c2sp.org/tlog-proof@v1\nindex 1\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi09=\n\n",
           OTA_ERR_FORMAT, "32-byte hash"); /* stray bits */
    expect("c2sp.org/tlog-proof@v1\nindex 1\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08A\n\n",
           OTA_ERR_FORMAT, "32-byte hash"); /* 33 bytes */
    o = (size_t)snprintf(big, sizeof(big), "c2sp.org/tlog-proof@v1\nindex 1\n");
    for (int i = 0; i < OTA_TLOG_PROOF_MAX_HASHES + 1; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, H1 "\n");
    snprintf(big + o, sizeof(big) - o, "\n");
    expect(big, OTA_ERR_TOO_LARGE, "more than 63");
}

static void test_refuse_checkpoint(void **state)
{
    struct ota_tlog_proof *pr = NULL;
    struct ota_detail det = {{0}};
    const char *no_blank = "c2sp.org/tlog-proof@v1\nindex 1\n" H1 "\n";
    const char *bad_note = "c2sp.org/tlog-proof@v1\nindex 1\n\n" ORIGIN "\n2\n" ROOT "\n";
    const char *not_cp = "c2sp.org/tlog-proof@v1\nindex 1\n\nhello\n\n\xe2\x80\x94 k AQIDBAU=\n";

    (void)state;
    assert_int_equal(ota_tlog_proof_parse(&pr, no_blank, strlen(no_blank), &det), OTA_ERR_FORMAT);
    assert_non_null(strstr(det.msg, "no empty line"));
    assert_int_equal(ota_tlog_proof_parse(&pr, bad_note, strlen(bad_note), &det), OTA_ERR_FORMAT);
    assert_non_null(strstr(det.msg, "proof checkpoint: note has no blank line"));
    assert_int_equal(ota_tlog_proof_parse(&pr, not_cp, strlen(not_cp), &det), OTA_ERR_FORMAT);
    assert_non_null(strstr(det.msg, "proof checkpoint: checkpoint has 1 line"));
    assert_null(pr);
}

/* Formats a proof with extra data and 63 hashes and parses it back: 0 and
 * the same fields, or an error. */
static int fa_round_trip(const uint8_t (*hashes)[32])
{
    struct ota_tlog_proof *pr = NULL;
    struct ota_buf b;
    int rc;

    ota_buf_init(&b, 1 << 20);
    rc = ota_tlog_proof_format(&b, (const uint8_t *)"extra", 5, 109481, hashes,
                               OTA_TLOG_PROOF_MAX_HASHES, note_text, note_len, NULL);
    if (rc == 0)
        rc = ota_tlog_proof_parse(&pr, b.data, b.len, NULL);
    if (rc == 0 && (pr->index != 109481 || pr->nhashes != OTA_TLOG_PROOF_MAX_HASHES ||
                    !pr->has_extra || pr->extra_len != 5 ||
                    memcmp(pr->hashes, hashes, (size_t)OTA_TLOG_PROOF_MAX_HASHES * 32) != 0))
        rc = OTA_ERR_FORMAT;
    ota_tlog_proof_free(pr);
    ota_buf_free(&b);
    return rc;
}

/* STYLE rule 9: each allocation of format + parse fails in turn. */
static void test_alloc_faults(void **state)
{
    uint8_t hashes[OTA_TLOG_PROOF_MAX_HASHES][32];
    int rc;

    (void)state;
    for (int i = 0; i < OTA_TLOG_PROOF_MAX_HASHES; i++)
        memset(hashes[i], i + 1, 32);
    assert_int_equal(fa_round_trip((const uint8_t(*)[32])hashes), 0);
    FA_LOOP(rc, fa_round_trip((const uint8_t(*)[32])hashes));
    assert_true(fa_failed_runs() >= 2);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults),     cmocka_unit_test(test_spec_layout),
        cmocka_unit_test(test_round_trips),      cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_refuse_too_large), cmocka_unit_test(test_refuse_header),
        cmocka_unit_test(test_refuse_extra),     cmocka_unit_test(test_refuse_index),
        cmocka_unit_test(test_refuse_hashes),    cmocka_unit_test(test_refuse_checkpoint),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
