/* Unit tests for release.c: SemVer 2.0.0 against every example of its text
 * (semver.org, items 2, 9, 10 and 11 and the FAQ), the id grammars, the
 * typed release read from a target's custom, and the install verdict with
 * its own error for each reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failalloc.h"
#include "otachain/release.h"

static struct ota_semver V(const char *s) {
    struct ota_semver v;
    struct ota_detail det = {{0}};

    if (ota_semver_parse(&v, s, strlen(s), &det) != 0)
        fail_msg("'%s' should parse: %s", s, det.msg);
    return v;
}

static int
sign(int x)
{
    return x < 0 ? -1 : x > 0;
}

static int cmp(const char *a, const char *b)
{
    struct ota_semver va = V(a), vb = V(b);

    return sign(ota_semver_compare(&va, &vb));
}

/* Every pair of an increasing chain compares as its positions do. */
static void check_chain(const char *const *chain, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int want = i < j ? -1 : i > j;

            if (cmp(chain[i], chain[j]) != want)
                fail_msg("%s vs %s: got %d, want %d", chain[i], chain[j], cmp(chain[i], chain[j]),
                         want);
        }
    }
}

static void test_semver_precedence_examples(void **state)
{
    /* Item 2: "For instance: 1.9.0 -> 1.10.0 -> 1.11.0." */
    static const char *const minor[] = {"1.9.0", "1.10.0", "1.11.0"};
    /* Item 11: "1.0.0 < 2.0.0 < 2.1.0 < 2.1.1" and "1.0.0-alpha < 1.0.0". */
    static const char *const core[] = {"1.0.0", "2.0.0", "2.1.0", "2.1.1"};
    static const char *const pre_vs_normal[] = {"1.0.0-alpha", "1.0.0"};
    /* Item 11: the pre-release chain. */
    static const char *const pre[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                      "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                      "1.0.0-rc.1",  "1.0.0"};

    (void)state;
    check_chain(minor, 3);
    check_chain(core, 4);
    check_chain(pre_vs_normal, 2);
    check_chain(pre, 8);
}

static void test_semver_build_metadata(void **state)
{
    (void)state;
    /* Item 10's examples parse, and build metadata is ignored for
     * precedence ("two versions that differ only in the build metadata,
     * have the same precedence"). */
    assert_int_equal(cmp("1.0.0-alpha+001", "1.0.0-alpha"), 0);
    assert_int_equal(cmp("1.0.0+20130313144700", "1.0.0"), 0);
    assert_int_equal(cmp("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"), 0);
    assert_int_equal(cmp("1.0.0+20130313144700", "1.0.0+1"), 0);
    assert_int_equal(cmp("1.0.0-alpha+001", "1.0.0+20130313144700"), -1);
    /* Build identifiers are <digits>: leading zeros allowed there. */
    assert_int_equal(cmp("1.0.0+0.00.007", "1.0.0"), 0);
    {
        struct ota_semver v = V("1.0.0-beta+exp.sha.5114f85");

        assert_int_equal(v.core_len, 5);
        assert_int_equal(v.pre_len, 4);
        assert_memory_equal(v.text + v.pre_off, "beta", 4);
        assert_int_equal(v.build_len, 15);
        assert_memory_equal(v.text + v.build_off, "exp.sha.5114f85", 15);
    }
}

static void test_semver_valid_examples(void **state)
{
    /* Item 9's pre-release examples (and the text's "1.0.0-x-y-z.--"),
     * the FAQ's "1.2.3". */
    static const char *const ok[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--",
        "1.2.3",       "0.0.0",         "0.0.0-0",     "1.0.0-0a",       "1.0.0-00a",
        "1.0.0--",     "1.0.0+-",       "1.0.0-a+b-c",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct ota_semver v = V(ok[i]);

        assert_string_equal(v.text, ok[i]);
        assert_int_equal(v.len, strlen(ok[i]));
    }
}

static void test_semver_refused(void **state)
{
    static const char *const bad[] = {
        "v1.2.3", /* the FAQ: "v1.2.3" is not a semantic version */
        "1.2",        "1",
        "1.2.3.4",    "01.0.0",
        "1.02.0",     "1.0.00",
        "1.0.0-01",   "1.0.0-alpha.01",
        "1.0.0-",     "1.0.0+",
        "1.0.0-a..b", "1.0.0+a..b",
        "1.0.0-.a",   "1.0.0-a.",
        "1.0.0+a.",   " 1.0.0",
        "1.0.0 ",     "1.0.0-alpha_1",
        "1.0.0+a_b",  "1.0.0-\xce\xb1",
        "-1.0.0",     "1.0.0-alpha+b+c",
        "1..0",       "",
        "a.b.c",      "1.0.0\n",
    };
    struct ota_semver v;
    struct ota_detail det = {{0}};
    char big[OTA_SEMVER_MAX_LEN + 2];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        det.msg[0] = '\0';
        if (ota_semver_parse(&v, bad[i], strlen(bad[i]), &det) != OTA_ERR_SEMVER)
            fail_msg("'%s' should be refused", bad[i]);
        assert_int_equal(v.len, 0);
        assert_non_null(strstr(det.msg, "version '"));
        assert_null(strchr(det.msg, '\n'));
    }
    /* A NUL inside the length, and the length cap (128 bytes). */
    assert_int_equal(ota_semver_parse(&v, "1.0.0\0x", 7, &det), OTA_ERR_SEMVER);
    memset(big, 0, sizeof(big));
    memcpy(big, "1.0.0-", 6);
    memset(big + 6, 'a', OTA_SEMVER_MAX_LEN - 6);
    assert_int_equal(ota_semver_parse(&v, big, OTA_SEMVER_MAX_LEN, &det), 0);
    big[OTA_SEMVER_MAX_LEN] = 'a';
    assert_int_equal(ota_semver_parse(&v, big, OTA_SEMVER_MAX_LEN + 1, &det), OTA_ERR_SEMVER);
    assert_non_null(strstr(det.msg, "longer than 128"));
}

static void test_semver_numbers(void **state)
{
    (void)state;
    /* Numeric fields of any size, compared exactly (no overflow). */
    assert_int_equal(cmp("99999999999999999999999.0.0", "9999999999999999999999.0.0"), 1);
    assert_int_equal(cmp("18446744073709551616.0.0", "18446744073709551615.0.0"), 1);
    assert_int_equal(cmp("1.0.0-18446744073709551616", "1.0.0-18446744073709551615"), 1);
    /* Numeric identifiers are below alphanumeric ones; ASCII order. */
    assert_int_equal(cmp("1.0.0-999", "1.0.0-a"), -1);
    assert_int_equal(cmp("1.0.0-RC", "1.0.0-alpha"), -1);
    assert_int_equal(cmp("1.0.0-alpha10", "1.0.0-alpha2"), -1);
    assert_int_equal(cmp("1.0.0-a-b", "1.0.0-a"), 1);
    assert_int_equal(cmp("1.0.0-0", "1.0.0"), -1);
    assert_int_equal(cmp("0.9.99", "1.0.0-0"), -1);
}

/* ------------------------------------------------------------ ids */

static void test_ids(void **state)
{
    struct ota_detail det = {{0}};
    struct ota_release r;
    char id65[66];

    (void)state;
    assert_int_equal(ota_release_check_product("acme-cam_2.x", 12, &det), 0);
    assert_int_equal(ota_release_check_product("..", 2, &det), OTA_ERR_RELEASE_ID);
    assert_int_equal(ota_release_check_product("a+b", 3, &det), OTA_ERR_RELEASE_ID);
    assert_non_null(strstr(det.msg, "'+' at byte 2"));
    assert_int_equal(ota_release_check_hardware("imx8mm:evk+rev.2_b-1", 20, &det), 0);
    /* Whitespace: refused (never trimmed), and the message says the
     * accepted form. */
    assert_int_equal(ota_release_check_hardware(" rev-b", 6, &det), OTA_ERR_RELEASE_ID);
    assert_non_null(strstr(det.msg, "hardware id ' rev-b': whitespace at byte 1"));
    assert_non_null(strstr(det.msg, "accepted: 1-64 characters of A-Z a-z 0-9 . _ - + :"));
    assert_int_equal(ota_release_check_hardware("rev\nb", 5, &det), OTA_ERR_RELEASE_ID);
    assert_non_null(strstr(det.msg, "'rev\\nb'"));
    assert_int_equal(ota_release_check_hardware("rev,b", 5, &det), OTA_ERR_RELEASE_ID);
    assert_int_equal(ota_release_check_hardware("", 0, &det), OTA_ERR_RELEASE_ID);
    memset(id65, 'h', sizeof(id65));
    assert_int_equal(ota_release_check_hardware(id65, 64, &det), 0);
    assert_int_equal(ota_release_check_hardware(id65, 65, &det), OTA_ERR_RELEASE_ID);
    assert_non_null(strstr(det.msg, "too long"));

    /* The cap on the number of ids, reported as what it is. */
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < OTA_RELEASE_MAX_HWIDS; i++) {
        char id[16];
        int n = snprintf(id, sizeof(id), "board-%d", i);

        assert_int_equal(ota_release_add_hardware(&r, id, (size_t)n, &det), 0);
    }
    assert_int_equal(ota_release_add_hardware(&r, "board-64", 8, &det), OTA_ERR_HARDWARE_IDS);
    assert_int_equal(r.nhardware, OTA_RELEASE_MAX_HWIDS);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ota_release_add_hardware(&r, "a", 1, &det), 0);
    assert_int_equal(ota_release_add_hardware(&r, "a", 1, &det), OTA_ERR_RELEASE_ID);
    assert_non_null(strstr(det.msg, "listed twice"));
    assert_int_equal(r.nhardware, 1);
}

/* ------------------------------------------------------------ custom */

static json_t *custom_of(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    if (j == NULL)
        fail_msg("bad fixture %s: %s", text, e.text);
    return j;
}

static int from_text(struct ota_release *r, const char *text, struct ota_detail *det)
{
    struct ota_tuf_target t = {.path = "cam/1.2.0/cam.img", .length = 1, .sha256 = {0}};
    int rc;

    t.custom = text != NULL ? custom_of(text) : NULL;
    rc = ota_release_from_target(r, &t, det);
    json_decref(t.custom);
    return rc;
}

#define GOOD                                                                                       \
    "{\"product\":\"cam\",\"hardware\":[\"rev-a\",\"rev-b\"],\"version\":\"1.2.0-rc.1\","          \
    "\"security_version\":3,\"index\":\"cam/1.2.0-rc.1/cam.img.cidx\",\"later\":{\"x\":1}}"

static void test_from_target(void **state)
{
    struct ota_release r;
    struct ota_detail det = {{0}};

    (void)state;
    assert_int_equal(from_text(&r, GOOD, &det), 0);
    assert_string_equal(r.product, "cam");
    assert_int_equal(r.nhardware, 2);
    assert_string_equal(r.hardware[1], "rev-b");
    assert_string_equal(r.version.text, "1.2.0-rc.1");
    assert_int_equal(r.security_version, 3);
    assert_string_equal(r.index, "cam/1.2.0-rc.1/cam.img.cidx");
    /* index is optional. */
    assert_int_equal(from_text(&r,
                               "{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
                               "\"security_version\":9007199254740991}",
                               &det),
                     0);
    assert_string_equal(r.index, "");
    assert_int_equal(r.security_version, OTA_RELEASE_MAX_SECVER);
}

static void test_from_target_refusals(void **state)
{
    static const struct {
        const char *custom;
        int err;
        const char *says;
    } cases[] = {
        {NULL, OTA_ERR_RELEASE_FORMAT, "not a release"},
        {"[]", OTA_ERR_RELEASE_FORMAT, "not a release"},
        {"{\"hardware\":[\"h\"],\"version\":\"1.0.0\",\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.product is missing"},
        {"{\"product\":7,\"hardware\":[\"h\"],\"version\":\"1.0.0\",\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.product is not a string"},
        {"{\"product\":\"c am\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":0}",
         OTA_ERR_RELEASE_ID, "whitespace at byte 2"},
        {"{\"product\":\"cam\",\"hardware\":[],\"version\":\"1.0.0\",\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.hardware"},
        {"{\"product\":\"cam\",\"hardware\":\"h\",\"version\":\"1.0.0\",\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.hardware"},
        {"{\"product\":\"cam\",\"hardware\":[1],\"version\":\"1.0.0\",\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.hardware"},
        {"{\"product\":\"cam\",\"hardware\":[\" rev-b\"],\"version\":\"1.0.0\","
         "\"security_version\":0}",
         OTA_ERR_RELEASE_ID, "' rev-b': whitespace at byte 1"},
        {"{\"product\":\"cam\",\"hardware\":[\"a\",\"a\"],\"version\":\"1.0.0\","
         "\"security_version\":0}",
         OTA_ERR_RELEASE_ID, "listed twice"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"v1.0.0\","
         "\"security_version\":0}",
         OTA_ERR_SEMVER, "version 'v1.0.0'"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":100,\"security_version\":0}",
         OTA_ERR_RELEASE_FORMAT, "custom.version is not a string"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\"}", OTA_ERR_RELEASE_FORMAT,
         "custom.security_version is missing"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":-1}",
         OTA_ERR_RELEASE_FORMAT, "security_version is not an integer"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":9007199254740992}",
         OTA_ERR_RELEASE_FORMAT, "security_version is not an integer"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":\"3\"}",
         OTA_ERR_RELEASE_FORMAT, "security_version is not an integer"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":1,\"index\":\"\"}",
         OTA_ERR_RELEASE_FORMAT, "custom.index"},
        {"{\"product\":\"cam\",\"hardware\":[\"h\"],\"version\":\"1.0.0\","
         "\"security_version\":1,\"index\":\"a\\nb\"}",
         OTA_ERR_RELEASE_FORMAT, "custom.index"},
    };
    struct ota_release r;
    struct ota_detail det;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;

        memset(&det, 0, sizeof(det));
        rc = from_text(&r, cases[i].custom, &det);
        if (rc != cases[i].err || strstr(det.msg, cases[i].says) == NULL ||
            strstr(det.msg, "cam/1.2.0/cam.img") == NULL)
            fail_msg("case %zu: %s (%s), want %s with '%s'", i, ota_errname(rc), det.msg,
                     ota_errname(cases[i].err), cases[i].says);
        assert_int_equal(r.nhardware, 0); /* nothing left from rejected input */
        assert_int_equal(r.product[0], '\0');
    }
}

static void test_too_many_hardware_ids(void **state)
{
    char text[4096];
    size_t n = 0;
    struct ota_release r;
    struct ota_detail det = {{0}};

    (void)state;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"product\":\"cam\",\"hardware\":[");
    for (int i = 0; i < 1000 && n < sizeof(text) - 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"b%d\"", i ? "," : "", i);
    snprintf(text + n, sizeof(text) - n, "],\"version\":\"1.0.0\",\"security_version\":0}");
    assert_int_equal(from_text(&r, text, &det), OTA_ERR_HARDWARE_IDS);
    assert_non_null(strstr(det.msg, "at most 64"));
}

static void test_to_custom_round_trip(void **state)
{
    struct ota_release r, back;
    struct ota_detail det = {{0}};
    struct ota_tuf_target t = {.path = "cam/2.0.0/x", .length = 1, .sha256 = {0}};
    json_t *c = NULL;
    char *text;

    (void)state;
    memset(&r, 0, sizeof(r));
    snprintf(r.product, sizeof(r.product), "cam");
    assert_int_equal(ota_release_add_hardware(&r, "rev-a", 5, &det), 0);
    assert_int_equal(ota_semver_parse(&r.version, "2.0.0+b.7", 9, &det), 0);
    r.security_version = 4;
    snprintf(r.index, sizeof(r.index), "cam/2.0.0+b.7/x.cidx");
    assert_int_equal(ota_release_to_custom(&c, &r, &det), 0);
    text = json_dumps(c, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(text,
                        "{\"hardware\":[\"rev-a\"],\"index\":\"cam/2.0.0+b.7/x.cidx\","
                        "\"product\":\"cam\",\"security_version\":4,\"version\":\"2.0.0+b.7\"}");
    free(text);
    t.custom = c;
    assert_int_equal(ota_release_from_target(&back, &t, &det), 0);
    assert_memory_equal(&back, &r, sizeof(r));
    json_decref(c);
    /* A release not built through the module is checked the same way. */
    snprintf(r.product, sizeof(r.product), "c am");
    assert_int_equal(ota_release_to_custom(&c, &r, &det), OTA_ERR_RELEASE_ID);
    assert_null(c);
}

/* ------------------------------------------------------------ verdict */

static void test_may_install(void **state)
{
    struct ota_release r;
    struct ota_detail det = {{0}};
    struct ota_semver installed = V("1.1.9");
    struct ota_release_device dev = {"cam", "rev-b", &installed, 2};

    (void)state;
    assert_int_equal(from_text(&r, GOOD, &det), 0); /* cam 1.2.0-rc.1, sv 3 */
    assert_int_equal(ota_release_may_install(&r, &dev, &det), 0);
    dev.installed = NULL; /* a factory-fresh device */
    assert_int_equal(ota_release_may_install(&r, &dev, &det), 0);

    dev.installed = &installed;
    dev.product = "doorbell";
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_OTHER_PRODUCT);
    assert_non_null(strstr(det.msg, "product cam, this device is doorbell"));
    dev.product = "cam";
    dev.hardware = "rev-c";
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_OTHER_HARDWARE);
    assert_non_null(strstr(det.msg, "not this board's rev-c"));
    dev.hardware = "rev-b ";
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_OTHER_HARDWARE);
    dev.hardware = "rev-b";

    installed = V("1.2.0-rc.1+other-build");
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_NOT_NEWER);
    assert_non_null(strstr(det.msg, "not newer than the installed 1.2.0-rc.1+other-build"));
    installed = V("1.2.0");
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_NOT_NEWER);
    installed = V("1.2.0-beta.11");
    assert_int_equal(ota_release_may_install(&r, &dev, &det), 0);

    dev.security_floor = 4;
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_SECURITY_FLOOR);
    assert_non_null(strstr(det.msg, "security version 3, the device's floor is 4"));
    /* Below the floor and not newer: the floor is named (a rollback). */
    installed = V("2.0.0");
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_SECURITY_FLOOR);
    dev.security_floor = 3; /* equal to the floor: allowed */
    assert_int_equal(ota_release_may_install(&r, &dev, &det), OTA_ERR_NOT_NEWER);
    installed = V("1.0.0");
    assert_int_equal(ota_release_may_install(&r, &dev, &det), 0);
}

/* The device side never allocates: from_target and the verdict run with
 * every allocation failing. */
static void test_no_allocation(void **state)
{
    struct ota_tuf_target t = {.path = "cam/1.2.0/cam.img", .length = 1, .sha256 = {0}};
    struct ota_semver installed = V("1.0.0");
    struct ota_release_device dev = {"cam", "rev-a", &installed, 0};
    struct ota_release r;
    struct ota_semver v;
    unsigned long before = fa_failed_runs();
    int rc;

    (void)state;
    t.custom = custom_of(GOOD);
    FA_LOOP(rc, ota_release_from_target(&r, &t, NULL) || ota_release_may_install(&r, &dev, NULL) ||
                    ota_semver_parse(&v, "1.0.0-x.1+b", 11, NULL));
    assert_int_equal(rc, 0);
    assert_int_equal(fa_failed_runs(), before);
    json_decref(t.custom);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semver_precedence_examples),
        cmocka_unit_test(test_semver_build_metadata),
        cmocka_unit_test(test_semver_valid_examples),
        cmocka_unit_test(test_semver_refused),
        cmocka_unit_test(test_semver_numbers),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_from_target),
        cmocka_unit_test(test_from_target_refusals),
        cmocka_unit_test(test_too_many_hardware_ids),
        cmocka_unit_test(test_to_custom_round_trip),
        cmocka_unit_test(test_may_install),
        cmocka_unit_test(test_no_allocation),
    };

    fa_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
