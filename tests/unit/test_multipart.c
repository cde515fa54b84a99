/* The byte-range answer parser: Content-Range, the boundary of a
 * Content-Type, and multipart/byteranges bodies, fed whole and byte by
 * byte; every refusal branch with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/multipart.h"

/* ---- Content-Range ---------------------------------------------------------- */

static void cr_ok(const char *v, uint64_t first, uint64_t last, uint64_t total)
{
    struct ota_byte_range r;
    struct ota_detail det = {{0}};

    if (ota_content_range_parse(&r, v, strlen(v), &det) != 0)
        fail_msg("\"%s\" refused: %s", v, det.msg);
    assert_int_equal(r.first, first);
    assert_int_equal(r.last, last);
    assert_true(r.total == total);
}

static void cr_bad(const char *v, const char *why)
{
    struct ota_byte_range r;
    struct ota_detail det = {{0}};

    assert_int_equal(ota_content_range_parse(&r, v, strlen(v), &det), OTA_ERR_HTTP_FRAMING);
    if (strstr(det.msg, why) == NULL)
        fail_msg("\"%s\": \"%s\" does not say \"%s\"", v, det.msg, why);
    assert_int_equal(r.first, 0);
    assert_int_equal(r.last, 0);
}

static void test_content_range(void **state)
{
    struct ota_byte_range r;
    struct ota_detail det = {{0}};

    (void)state;
    cr_ok("bytes 0-0/1", 0, 0, 1);
    cr_ok("  bytes 100-199/1000 \t", 100, 199, 1000);
    cr_ok("BYTES 1-2/*", 1, 2, UINT64_MAX);
    cr_ok("bytes   5-9223372036854775806/9223372036854775807", 5, INT64_MAX - 1, INT64_MAX);
    /* Only len bytes are read: no NUL needed. */
    assert_int_equal(ota_content_range_parse(&r, "bytes 0-1/2junk", 11, &det), 0);
    assert_int_equal(r.last, 1);

    assert_int_equal(ota_content_range_parse(&r, NULL, 0, &det), OTA_ERR_HTTP_FRAMING);
    assert_non_null(strstr(det.msg, "missing"));
    cr_bad("items 0-1/2", "the unit is not bytes");
    cr_bad("", "the unit is not bytes");
    cr_bad("bytes0-1/2", "the unit is not bytes");
    cr_bad("bytes */100", "an unsatisfied range");
    cr_bad("bytes a-1/2", "no first-last byte positions");
    cr_bad("bytes -1/2", "no first-last byte positions");
    cr_bad("bytes 0/2", "no first-last byte positions");
    cr_bad("bytes 12345678901234567890-1/2", "no first-last byte positions");
    cr_bad("bytes 9223372036854775808-9223372036854775808/*", "no first-last byte positions");
    cr_bad("bytes 0-/2", "no last byte position and '/'");
    cr_bad("bytes 0-1", "no last byte position and '/'");
    cr_bad("bytes 0-1 /2", "no last byte position and '/'");
    cr_bad("bytes 0-1/", "no complete length");
    cr_bad("bytes 0-1/x", "no complete length");
    cr_bad("bytes 0-1/**", "no complete length");
    cr_bad("bytes 0-1/2x", "junk after the complete length");
    cr_bad("bytes 0-1/2 3", "junk after the complete length");
    cr_bad("bytes 5-4/10", "are not a range within the complete length");
    cr_bad("bytes 0-10/10", "are not a range within the complete length");
}

/* ---- boundary --------------------------------------------------------------- */

static void b_ok(const char *ct, const char *want)
{
    char b[OTA_MULTIPART_BOUNDARY_MAX + 1];
    struct ota_detail det = {{0}};

    if (ota_multipart_boundary(b, ct, &det) != 0)
        fail_msg("\"%s\" refused: %s", ct, det.msg);
    assert_string_equal(b, want);
}

static void b_bad(const char *ct, const char *why)
{
    char b[OTA_MULTIPART_BOUNDARY_MAX + 1];
    struct ota_detail det = {{0}};

    assert_int_equal(ota_multipart_boundary(b, ct, &det), OTA_ERR_HTTP_FRAMING);
    if (strstr(det.msg, why) == NULL)
        fail_msg("\"%s\": \"%s\" does not say \"%s\"", ct, det.msg, why);
    assert_string_equal(b, "");
}

static void test_boundary(void **state)
{
    char b[OTA_MULTIPART_BOUNDARY_MAX + 1];
    struct ota_detail det = {{0}};
    char long_b[200];

    (void)state;
    b_ok("multipart/byteranges; boundary=00000000000000000042", "00000000000000000042");
    b_ok("Multipart/ByteRanges;BOUNDARY=abc", "abc");
    b_ok("multipart/byteranges; charset=x; boundary=\"a b:c\"", "a b:c");
    b_ok("multipart/byteranges; boundary=\"q\\-\"", "q-"); /* a quoted-pair */
    b_ok("  multipart/byteranges ;boundary=x  ", "x");

    assert_int_equal(ota_multipart_boundary(b, NULL, &det), OTA_ERR_HTTP_FRAMING);
    assert_non_null(strstr(det.msg, "no Content-Type"));
    b_bad("multipart/mixed; boundary=x", "is not multipart/byteranges");
    b_bad("text/plain", "is not multipart/byteranges");
    b_bad("multipart/byteranges x", "junk between its parameters");
    b_bad("multipart/byteranges; boundary", "a parameter without name=value");
    b_bad("multipart/byteranges; =x", "a parameter without name=value");
    b_bad("multipart/byteranges; boundary=\"abc", "an unterminated quoted value");
    b_bad("multipart/byteranges; boundary=a; boundary=b", "two boundary parameters");
    b_bad("multipart/byteranges; boundary=\"\"", "a boundary of 0 characters");
    snprintf(long_b, sizeof(long_b), "multipart/byteranges; boundary=%071d", 7);
    b_bad(long_b, "a boundary of 71 characters");
    snprintf(long_b, sizeof(long_b), "multipart/byteranges; boundary=%070d", 7);
    assert_int_equal(ota_multipart_boundary(b, long_b, &det), 0);
    b_bad("multipart/byteranges; boundary=\"ab \"", "a character not allowed in a boundary");
    b_bad("multipart/byteranges; boundary=\"a<b\"", "a character not allowed in a boundary");
    b_bad("multipart/byteranges; boundary=\"a\\\"b\"", "a character not allowed in a boundary");
    b_bad("multipart/byteranges; charset=utf-8", "no boundary parameter");
    b_bad("multipart/byteranges", "no boundary parameter");
}

/* ---- bodies ----------------------------------------------------------------- */

struct got {
    char log[4096]; /* "[first-last]data" per part */
    size_t len;
    int fail_part; /* refuse the n-th part (1-based) */
    int fail_data; /* refuse data of the n-th part */
    int parts;
};

static int on_part(void *ctx, const struct ota_byte_range *r)
{
    struct got *g = ctx;
    int n;

    g->parts++;
    if (g->parts == g->fail_part)
        return OTA_ERR_HASH_MISMATCH;
    n = snprintf(g->log + g->len, sizeof(g->log) - g->len, "[%llu-%llu]",
                 (unsigned long long)r->first, (unsigned long long)r->last);
    g->len += (size_t)n;
    return 0;
}

static int on_data(void *ctx, const uint8_t *data, size_t len)
{
    struct got *g = ctx;

    if (g->parts == g->fail_data)
        return OTA_ERR_DECOMPRESS;
    assert_true(g->len + len < sizeof(g->log));
    memcpy(g->log + g->len, data, len);
    g->len += len;
    g->log[g->len] = '\0';
    return 0;
}

/* Parses body with boundary "BB" (at most max_parts), whole or one byte
 * at a time; returns feed's or finish's error; det gets the message. */
static int parse(struct got *g, const char *body, size_t len, uint32_t max_parts, int bytewise,
                 struct ota_detail *det)
{
    struct ota_multipart m;
    int rc;

    g->len = 0;
    g->log[0] = '\0';
    g->parts = 0;
    assert_int_equal(ota_multipart_init(&m, "BB", max_parts, on_part, on_data, g), 0);
    if (bytewise) {
        for (size_t i = 0; i < len; i++) {
            rc = ota_multipart_feed(&m, body + i, 1, det);
            if (rc != 0)
                return rc;
        }
    } else {
        rc = ota_multipart_feed(&m, body, len, det);
        if (rc != 0)
            return rc;
    }
    return ota_multipart_finish(&m, det);
}

#define NGINX_BODY                                                                                 \
    "\r\n--BB\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-3/100\r\n\r\n"   \
    "abcd"                                                                                         \
    "\r\n--BB\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 10-11/100\r\n\r\n" \
    "xy"                                                                                           \
    "\r\n--BB--\r\n"

static void test_bodies_accepted(void **state)
{
    struct got g = {0};
    struct ota_detail det = {{0}};
    static const char padded[] = "preamble line\r\n--BB  \t\r\ncontent-range:bytes 5-5/*\r\n\r\n"
                                 "Z\r\n--BB \r\nX-Other: 1\r\nContent-Range: bytes 6-7/8\r\n\r\n"
                                 "\r\n\r\n--BB--epilogue";
    static const char first_at_start[] = "--BB\r\nContent-Range: bytes 0-0/1\r\n\r\n-\r\n--BB--";
    /* Data that looks like framing is data. */
    static const char tricky[] =
        "--BB\r\nContent-Range: bytes 0-9/10\r\n\r\n\r\n--BB--\r\n\r\n--BB--";

    (void)state;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        assert_int_equal(parse(&g, NGINX_BODY, sizeof(NGINX_BODY) - 1, 2, bytewise, &det), 0);
        assert_string_equal(g.log, "[0-3]abcd[10-11]xy");
        assert_int_equal(parse(&g, padded, sizeof(padded) - 1, 2, bytewise, &det), 0);
        assert_string_equal(g.log, "[5-5]Z[6-7]\r\n");
        assert_int_equal(parse(&g, first_at_start, sizeof(first_at_start) - 1, 1, bytewise, &det),
                         0);
        assert_string_equal(g.log, "[0-0]-");
        assert_int_equal(parse(&g, tricky, sizeof(tricky) - 1, 1, bytewise, &det), 0);
        assert_string_equal(g.log, "[0-9]\r\n--BB--\r\n");
    }
}

static void bad(const char *body, size_t len, uint32_t max_parts, int want, const char *why)
{
    struct got g = {0};

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct ota_detail det = {{0}};
        int rc = parse(&g, body, len, max_parts, bytewise, &det);

        if (rc != want || strstr(det.msg, why) == NULL)
            fail_msg("%s%s: got %s \"%s\", want %s \"%s\"", bytewise ? "bytewise " : "", body,
                     ota_errname(rc), det.msg, ota_errname(want), why);
    }
}

#define BAD(body, max, want, why) bad(body, sizeof(body) - 1, max, want, why)

static void test_bodies_refused(void **state)
{
    static char big[8192];
    struct got g = {0};
    struct ota_multipart m;
    struct ota_detail det = {{0}};

    (void)state;
    /* Framing caps. */
    memset(big, 'p', sizeof(big));
    for (size_t i = 100; i < sizeof(big); i += 100) {
        big[i - 1] = '\r';
        big[i] = '\n';
    }
    bad(big, sizeof(big), 4, OTA_ERR_HTTP_FRAMING, "a preamble too long");
    {
        size_t n = 0;

        n += (size_t)snprintf(big + n, sizeof(big) - n, "--BB\r\n");
        while (n + 100 < sizeof(big))
            n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: %080d\r\n", 1);
        bad(big, n, 4, OTA_ERR_HTTP_FRAMING, "part headers too long");
    }
    memset(big, 'x', 2000);
    bad(big, 2000, 4, OTA_ERR_HTTP_FRAMING, "a line too long");
    /* Lines. */
    BAD("--BB\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a line that does not end in CRLF");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a line that does not end in CRLF");
    BAD("\r\n--BB--\r\n", 1, OTA_ERR_HTTP_FRAMING, "the closing boundary before any part");
    /* Part headers. */
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n continued\r\n\r\nx\r\n--BB--", 1,
        OTA_ERR_HTTP_FRAMING, "a folded header line");
    BAD("--BB\r\nno colon here\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a part header without a name and ':'");
    BAD("--BB\r\n: bytes 0-0/1\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a part header without a name and ':'");
    BAD("--BB\r\nContent Range: bytes 0-0/1\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a part header name with a character not allowed");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB--", 1,
        OTA_ERR_HTTP_FRAMING, "a part with two Content-Range headers");
    BAD("--BB\r\nContent-Range: bytes 1-0/1\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "are not a range within the complete length");
    BAD("--BB\r\nContent-Type: x\r\n\r\nx\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a part without a Content-Range header");
    BAD(NGINX_BODY, 1, OTA_ERR_HTTP_FRAMING, "more parts than ranges asked for");
    /* After a part's bytes. */
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nxy\r\n--BB--", 1, OTA_ERR_HTTP_FRAMING,
        "a part's bytes are not followed by CRLF and the boundary");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BC--", 1, OTA_ERR_HTTP_FRAMING,
        "a part's bytes are not followed by CRLF and the boundary");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB\rX", 2, OTA_ERR_HTTP_FRAMING,
        "a boundary line that does not end in CRLF");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB-\r\n", 2, OTA_ERR_HTTP_FRAMING,
        "a boundary followed by a single '-'");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BBX", 2, OTA_ERR_HTTP_FRAMING,
        "junk after a boundary");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB --", 2, OTA_ERR_HTTP_FRAMING,
        "junk after a boundary");
    {
        static const char head[] = "--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB";
        size_t n = sizeof(head) - 1;

        memcpy(big, head, n);
        memset(big + n, ' ', 2000);
        bad(big, n + 2000, 2, OTA_ERR_HTTP_FRAMING, "a boundary line too long");
        memcpy(big + n, "--", 2);
        memset(big + n + 2, 'e', 5000);
        bad(big, n + 5002, 2, OTA_ERR_HTTP_FRAMING,
            "more than 4096 bytes after the closing boundary");
    }
    /* The body ends early. */
    BAD("--BB\r\nContent-Range: bytes 0-9/10\r\n\r\nabc", 1, OTA_ERR_TRUNCATED,
        "ended inside part 1 (bytes 0-9), 7 of its bytes missing");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--BB\r\n", 2, OTA_ERR_TRUNCATED,
        "ended after 1 part(s) without its closing boundary");
    BAD("--BB\r\nContent-Range: bytes 0-0/1\r\n\r\nx", 2, OTA_ERR_TRUNCATED,
        "ended after 1 part(s) without its closing boundary");
    BAD("", 2, OTA_ERR_TRUNCATED, "ended after 0 part(s) without its closing boundary");
    /* Callbacks refuse: their error, as is. */
    g.fail_part = 2;
    assert_int_equal(parse(&g, NGINX_BODY, sizeof(NGINX_BODY) - 1, 2, 0, &det),
                     OTA_ERR_HASH_MISMATCH);
    assert_string_equal(g.log, "[0-3]abcd");
    g.fail_part = 0;
    g.fail_data = 1;
    assert_int_equal(parse(&g, NGINX_BODY, sizeof(NGINX_BODY) - 1, 2, 0, &det), OTA_ERR_DECOMPRESS);
    /* After an error, nothing more. */
    assert_int_equal(ota_multipart_init(&m, "BB", 1, on_part, on_data, &g), 0);
    assert_int_equal(ota_multipart_feed(&m, "--BB\n", 5, &det), OTA_ERR_HTTP_FRAMING);
    assert_int_equal(ota_multipart_feed(&m, "\r\n", 2, &det), OTA_ERR_HTTP_FRAMING);
    assert_non_null(strstr(det.msg, "fed after an error"));
    assert_int_equal(ota_multipart_finish(&m, &det), OTA_ERR_HTTP_FRAMING);
    assert_non_null(strstr(det.msg, "finished after an error"));
    /* Bad set-up. */
    assert_int_equal(ota_multipart_init(&m, "", 1, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_multipart_init(&m, "BB", 0, NULL, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_multipart_feed(&m, "x", 1, &det), OTA_ERR_HTTP_FRAMING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_bodies_accepted),
        cmocka_unit_test(test_bodies_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
