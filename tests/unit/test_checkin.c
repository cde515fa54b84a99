/* Unit tests for checkin.c: the device API v1 check-in body (every rule
 * refused with its error and the member named), its answer, and round
 * trips between the agent's formatter and the server's parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "otachain/checkin.h"

#define FULL                                                                                       \
    "{\"running\":{\"product\":\"cam\",\"hardware\":\"rev-a\",\"version\":\"1.2.0\","              \
    "\"target\":\"cam/1.2.0/fw.img\",\"slot\":\"a\"},"                                             \
    "\"update\":{\"state\":\"downloading\",\"target\":\"cam/1.3.0/fw.img\",\"progress\":1048576}," \
    "\"last_error\":{\"name\":\"hash_mismatch\",\"detail\":\"pack chunk 17\"},"                    \
    "\"trusted\":{\"root_version\":3,\"timestamp_version\":57,\"snapshot_version\":40,"            \
    "\"targets_version\":12,"                                                                      \
    "\"checkpoint\":{\"size\":120,\"hash\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}}}"

#define MIN                                                                                        \
    "{\"running\":{\"product\":\"cam\",\"hardware\":\"rev-a\",\"version\":\"1.2.0\"},"             \
    "\"trusted\":{\"root_version\":1}}"

static int parse(struct ota_checkin *c, const char *s, struct ota_detail *det)
{
    det->msg[0] = '\0';
    return ota_checkin_parse(c, s, strlen(s), det);
}

static void test_full(void **state)
{
    struct ota_checkin c;
    struct ota_detail det;

    (void)state;
    assert_int_equal(parse(&c, FULL, &det), 0);
    assert_string_equal(c.product, "cam");
    assert_string_equal(c.hardware, "rev-a");
    assert_string_equal(c.version, "1.2.0");
    assert_string_equal(c.target, "cam/1.2.0/fw.img");
    assert_string_equal(c.slot, "a");
    assert_int_equal(c.state, OTA_UPDATE_DOWNLOADING);
    assert_string_equal(c.state_target, "cam/1.3.0/fw.img");
    assert_true(c.has_progress);
    assert_int_equal(c.progress, 1048576);
    assert_string_equal(c.error_name, "hash_mismatch");
    assert_string_equal(c.error_detail, "pack chunk 17");
    assert_int_equal(c.root_version, 3);
    assert_int_equal(c.timestamp_version, 57);
    assert_int_equal(c.snapshot_version, 40);
    assert_int_equal(c.targets_version, 12);
    assert_true(c.has_checkpoint);
    assert_int_equal(c.checkpoint_size, 120);
    for (int i = 0; i < 32; i++)
        assert_int_equal(c.checkpoint_hash[i], i);
}

static void test_minimal_and_nulls(void **state)
{
    struct ota_checkin c;
    struct ota_detail det;

    (void)state;
    assert_int_equal(parse(&c, MIN, &det), 0);
    assert_int_equal(c.state, OTA_UPDATE_NONE);
    assert_string_equal(c.target, "");
    assert_false(c.has_checkpoint);
    assert_int_equal(c.timestamp_version, 0);
    assert_int_equal(
        parse(&c,
              "{\"running\":{\"product\":\"p\",\"hardware\":\"h\",\"version\":\"0.0.1\"},"
              "\"update\":null,\"last_error\":null,\"x-vendor\":{\"a\":[1]},"
              "\"trusted\":{\"root_version\":1,\"x-hint\":1}}",
              &det),
        0);
    assert_int_equal(c.state, OTA_UPDATE_NONE);
    assert_string_equal(c.error_name, "");
}

struct bad {
    const char *body;
    int err;
    const char *needle; /* in the detail */
};

static void test_refusals(void **state)
{
    static const struct bad cases[] = {
        {"", OTA_ERR_JSON_SYNTAX, NULL},
        {"[]", OTA_ERR_FORMAT, "not a JSON object"},
        {"{\"running\":{},\"trusted\":{\"root_version\":1}}", OTA_ERR_FORMAT,
         "running.product: missing"},
        {"{\"trusted\":{\"root_version\":1}}", OTA_ERR_FORMAT, "running: missing"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"}}",
         OTA_ERR_FORMAT, "trusted: missing"},
        /* the device id comes from the certificate */
        {"{\"device_id\":\"other\",\"running\":{\"product\":\"cam\",\"hardware\":\"h\","
         "\"version\":\"1.0.0\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "device_id: the device id comes from the certificate"},
        {"{\"running\":{\"id\":\"x\",\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.id: the device id"},
        {"{\"surprise\":1,\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":"
         "\"1.0.0\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "surprise: unknown member"},
        {"{\"running\":{\"product\":\"c m\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.product: 1-64"},
        {"{\"running\":{\"product\":7,\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.product: wrong type"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0\"},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.version: a SemVer"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\",\"target\":"
         "\"cam/../x\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.target: a target path"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\",\"slot\":"
         "\"aaaaaaaaaaaaaaaaa\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "running.slot"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"update\":{\"state\":\"flying\",\"target\":\"a/b\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "update.state: one of"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"update\":{\"state\":\"failed\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "update.target: missing"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"update\":{\"state\":\"failed\",\"target\":\"a\",\"progress\":-1},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "update.progress"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"update\":{\"state\":\"failed\",\"target\":\"a\",\"progress\":1.5},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_JSON_REAL, NULL},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"update\":\"downloading\",\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "update: an object or null"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"last_error\":{\"name\":\"Hash\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "last_error.name"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"last_error\":{\"name\":\"io\",\"detail\":\"a\\nb\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_FORMAT, "last_error.detail"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":0}}",
         OTA_ERR_FORMAT, "trusted.root_version"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":9007199254740992}}",
         OTA_ERR_FORMAT, "trusted.root_version"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1,\"checkpoint\":{\"size\":1,\"hash\":\"AAAA\"}}}",
         OTA_ERR_FORMAT, "trusted.checkpoint.hash"},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1,\"checkpoint\":{\"hash\":\"AAAA\"}}}",
         OTA_ERR_FORMAT, "trusted.checkpoint.size: missing"},
        {"{\"running\":{\"product\":\"cam\",\"product\":\"x\",\"hardware\":\"h\",\"version\":"
         "\"1.0.0\"},\"trusted\":{\"root_version\":1}}",
         OTA_ERR_JSON_DUP_KEY, NULL},
        {"{\"running\":{\"product\":\"ca\\u0000m\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1}}",
         OTA_ERR_JSON_SYNTAX, NULL},
        {"{\"running\":{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\"},"
         "\"trusted\":{\"root_version\":1}} x",
         OTA_ERR_JSON_SYNTAX, NULL},
    };
    struct ota_checkin c;
    struct ota_detail det;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(&c, cases[i].body, &det);
        if (rc != cases[i].err || (cases[i].needle && !strstr(det.msg, cases[i].needle)))
            fail_msg("case %zu: got %d (%s), want %d with '%s'", i, rc, det.msg, cases[i].err,
                     cases[i].needle ? cases[i].needle : "");
        assert_string_equal(c.product, "");
    }
}

static void test_size_cap(void **state)
{
    static char big[OTA_CHECKIN_BODY_MAX + 64];
    struct ota_checkin c;
    struct ota_detail det;
    size_t n = strlen(MIN);

    (void)state;
    memcpy(big, MIN, n - 1);
    memset(big + n - 1, ' ', sizeof(big) - n);
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ota_checkin_parse(&c, big, strlen(big), &det), OTA_ERR_TOO_LARGE);
}

static void test_semver(void **state)
{
    static const char *const good[] = {
        "0.0.0",
        "1.2.3",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0-x-y-z.--",
        "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
    };
    static const char *const bad[] = {
        "1",        "1.2",        "1.2.3.4",   "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+",
        "1.2.3-01", "1.2.3-a..b", "1.2.3-a_b", "v1.2.3", "1.2.3 ", "",       "-1.2.3", "1.2.3+a+b",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!ota_checkin_version_valid(good[i], strlen(good[i])))
            fail_msg("good version '%s' refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ota_checkin_version_valid(bad[i], strlen(bad[i])))
            fail_msg("bad version '%s' accepted", bad[i]);
}

static void test_format_round_trip(void **state)
{
    struct ota_checkin in, out;
    struct ota_detail det;
    struct ota_buf b;

    (void)state;
    assert_int_equal(parse(&in, FULL, &det), 0);
    ota_buf_init(&b, OTA_CHECKIN_BODY_MAX);
    assert_int_equal(ota_checkin_format(&b, &in, &det), 0);
    assert_int_equal(ota_checkin_parse(&out, b.data, b.len, &det), 0);
    assert_memory_equal(&in, &out, sizeof(in));
    ota_buf_free(&b);
    /* Nothing malformed leaves the formatter. */
    memcpy(in.product, "c m", 4);
    ota_buf_init(&b, OTA_CHECKIN_BODY_MAX);
    assert_int_equal(ota_checkin_format(&b, &in, &det), OTA_ERR_FORMAT);
    assert_int_equal(b.len, 0);
    ota_buf_free(&b);
}

static void test_reply(void **state)
{
    struct ota_checkin_reply r = {0}, p;
    struct ota_buf b, bundle;
    struct ota_detail det;
    uint8_t blob[300];

    (void)state;
    r.poll_interval = 287;
    ota_buf_init(&b, 1 << 20);
    ota_buf_init(&bundle, OTA_CHECKIN_BUNDLE_MAX);
    assert_int_equal(ota_checkin_reply_format(&b, &r), 0);
    assert_string_equal((char *)b.data,
                        "{\"assignment\":null,\"bundle\":null,\"poll_interval\":287}");
    assert_int_equal(ota_checkin_reply_parse(&p, &bundle, b.data, b.len, &det), 0);
    assert_int_equal(p.poll_interval, 287);
    assert_false(p.has_assignment);
    assert_null(p.bundle);
    ota_buf_free(&b);

    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7);
    r.has_assignment = true;
    snprintf(r.assignment.target, sizeof(r.assignment.target), "cam/1.3.0/fw.img");
    snprintf(r.assignment.version, sizeof(r.assignment.version), "1.3.0");
    snprintf(r.assignment.index, sizeof(r.assignment.index), "cam/1.3.0/fw.img.cidx");
    r.assignment.length = 8388608;
    r.assignment.security_version = 4;
    memset(r.assignment.sha256, 0xab, 32);
    r.bundle = blob;
    r.bundle_len = sizeof(blob);
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_checkin_reply_format(&b, &r), 0);
    assert_int_equal(ota_checkin_reply_parse(&p, &bundle, b.data, b.len, &det), 0);
    assert_true(p.has_assignment);
    assert_memory_equal(&p.assignment, &r.assignment, sizeof(r.assignment));
    assert_int_equal(p.bundle_len, sizeof(blob));
    assert_memory_equal(p.bundle, blob, sizeof(blob));
    ota_buf_free(&b);

    static const char *const bad[] = {
        "{\"assignment\":null,\"bundle\":null}",
        "{\"assignment\":null,\"bundle\":null,\"poll_interval\":0}",
        "{\"assignment\":1,\"bundle\":null,\"poll_interval\":5}",
        "{\"assignment\":null,\"bundle\":\"@@@@\",\"poll_interval\":5}",
        "{\"assignment\":null,\"bundle\":\"\",\"poll_interval\":5}",
        "{\"assignment\":{\"target\":\"a/b\"},\"bundle\":null,\"poll_interval\":5}",
        "{\"assignment\":{\"target\":\"../b\",\"version\":\"1.0.0\",\"sha256\":\"00\","
        "\"length\":1,\"security_version\":0},\"bundle\":null,\"poll_interval\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ota_checkin_reply_parse(&p, &bundle, bad[i], strlen(bad[i]), &det) == 0)
            fail_msg("bad reply %zu accepted", i);
        assert_null(p.bundle);
    }
    /* Members the agent does not know are ignored (the server may add). */
    const char *extra = "{\"assignment\":null,\"bundle\":null,\"poll_interval\":5,\"news\":1}";
    assert_int_equal(ota_checkin_reply_parse(&p, &bundle, extra, strlen(extra), &det), 0);
    ota_buf_free(&bundle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),     cmocka_unit_test(test_minimal_and_nulls),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_semver),   cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
