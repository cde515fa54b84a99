/* Unit tests for cjson.c: the canonical encodings of the shared vector
 * (../shared/vectors/README.md via $OTA_VECTORS), emitter edge cases and
 * every refusal of the strict parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/cjson.h"
#include "otachain/fsutil.h"

#define V_KEYOBJ                                                                                   \
    "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":"                                             \
    "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"},\"scheme\":"            \
    "\"ed25519\"}"
#define V_SIGNED                                                                                   \
    "{\"_type\":\"timestamp\",\"expires\":\"2030-01-01T00:00:00Z\",\"meta\":{\"snapshot.json\":"   \
    "{\"version\":1}},\"spec_version\":\"1.0.31\",\"version\":1}"

/* Parses in (default limits), emits canonical, compares with want
 * (want_len bytes). */
static void check_canon_n(const char *in, const char *want, size_t want_len)
{
    json_t *v = NULL;
    struct ota_detail det = {{0}};
    uint8_t *out = NULL;
    size_t len = 0;
    int rc;

    rc = ota_json_parse(&v, in, strlen(in), NULL, &det);
    if (rc != 0)
        print_error("parse failed (%d): %s\n", rc, det.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(ota_json_canonical_alloc(&out, &len, v), 0);
    if (len != want_len || memcmp(out, want, len) != 0)
        print_error("got  %.*s\nwant %.*s\n", (int)len, (char *)out, (int)want_len, want);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, len);
    assert_int_equal(out[len], '\0');
    free(out);
    json_decref(v);
}

static void check_canon(const char *in, const char *want)
{
    check_canon_n(in, want, strlen(want));
}

static int parse_rc(const char *in, const struct ota_json_limits *lim)
{
    json_t *v = (json_t *)1;
    struct ota_detail det = {{0}};
    int rc = ota_json_parse(&v, in, strlen(in), lim, &det);

    if (rc != 0) {
        assert_null(v);
        assert_true(det.msg[0] != '\0'); /* every refusal says why */
    } else {
        json_decref(v);
    }
    return rc;
}

/* ---- the shared vector ---- */

static void readme_value(char *out, size_t outsz, const char *readme, const char *label)
{
    const char *p = strstr(readme, label);
    size_t n;

    assert_non_null(p);
    p += strlen(label);
    while (*p == ' ')
        p++;
    n = strcspn(p, "\r\n");
    assert_true(n < outsz);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_vector_readme(void **state)
{
    const char *dir = getenv("OTA_VECTORS");
    char path[PATH_MAX];
    uint8_t *readme = NULL;
    size_t len = 0;
    char v[512];

    (void)state;
    if (dir == NULL || dir[0] == '\0') {
        print_message("OTA_VECTORS not set: README cross-check skipped\n");
        skip();
    }
    snprintf(path, sizeof(path), "%s/README.md", dir);
    assert_int_equal(ota_fs_read(&readme, &len, path, 1 << 20), 0);
    readme_value(v, sizeof(v), (char *)readme, "- key object (canonical):");
    assert_string_equal(v, V_KEYOBJ);
    check_canon(v, V_KEYOBJ);
    readme_value(v, sizeof(v), (char *)readme, "- signed (canonical):");
    assert_string_equal(v, V_SIGNED);
    check_canon(v, V_SIGNED);
    free(readme);
}

static void test_vector_objects(void **state)
{
    (void)state;
    /* Same objects, members shuffled and spaced: same canonical bytes. */
    check_canon("{ \"scheme\": \"ed25519\",\n \"keyval\": {\"public\": "
                "\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"},"
                " \"keytype\": \"ed25519\" }",
                V_KEYOBJ);
    check_canon("{\"version\": 1, \"spec_version\": \"1.0.31\", \"meta\": {\"snapshot.json\":"
                " {\"version\": 1}}, \"expires\": \"2030-01-01T00:00:00Z\", \"_type\": "
                "\"timestamp\"}",
                V_SIGNED);
    check_canon(V_KEYOBJ, V_KEYOBJ);
    check_canon(V_SIGNED, V_SIGNED);
}

/* A jansson tree built in code gives the same bytes. */
static void test_vector_built_in_code(void **state)
{
    json_t *o = json_pack("{s:s, s:{s:s}, s:s}", "scheme", "ed25519", "keyval", "public",
                          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                          "keytype", "ed25519");
    struct ota_buf b;

    (void)state;
    assert_non_null(o);
    ota_buf_init(&b, 4096);
    assert_int_equal(ota_json_canonical(&b, o), 0);
    assert_string_equal((char *)b.data, V_KEYOBJ);
    ota_buf_free(&b);
    json_decref(o);
}

/* ---- emitter ---- */

static void test_strings(void **state)
{
    (void)state;
    /* Control characters are written raw. */
    check_canon_n("[\"a\\nb\\tc\\u0001d\\u001f\\r\\b\\f\"]",
                  "[\"a\nb\tc\x01"
                  "d\x1f\r\b\f\"]",
                  15);
    /* Only backslash and quote are escaped; "/" stays as is. */
    check_canon("[\"q\\\"b\\\\s\\/\"]", "[\"q\\\"b\\\\s/\"]");
    check_canon("[\"\\\\\\\\\\\"\\\"\"]", "[\"\\\\\\\\\\\"\\\"\"]");
    /* Non-ASCII UTF-8, escaped or not in the input, is written raw. */
    check_canon("[\"caf\\u00e9 \xe2\x82\xac \\ud83d\\ude00\"]",
                "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    check_canon("[\"\x7f\"]", "[\"\x7f\"]");
    check_canon("[\"\"]", "[\"\"]");
    /* Object keys are escaped the same way. */
    check_canon("{\"a\\\"b\":1,\"a\\\\b\":2}", "{\"a\\\"b\":1,\"a\\\\b\":2}");
}

static void test_embedded_nul_from_code(void **state)
{
    json_t *s = json_stringn("a\0b\"", 4);
    struct ota_buf b;

    (void)state;
    assert_non_null(s);
    ota_buf_init(&b, 64);
    assert_int_equal(ota_json_canonical(&b, s), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "\"a\0b\\\"\"", 7);
    ota_buf_free(&b);
    json_decref(s);
}

static void test_key_order(void **state)
{
    (void)state;
    check_canon("{\"b\":1,\"a\":2,\"B\":3,\"aa\":4,\"\":5,\"_\":6,\"A\":7}",
                "{\"\":5,\"A\":7,\"B\":3,\"_\":6,\"a\":2,\"aa\":4,\"b\":1}");
    /* Bytewise, not by code point or UTF-16 unit (only reachable when
     * non-ASCII keys are allowed): U+FF61 (ef bd a1) < U+1F600 (f0 9f...). */
    {
        const char *in = "{\"\xf0\x9f\x98\x80\":1,\"\xef\xbd\xa1\":2,\"z\":3}";
        const char *want = "{\"z\":3,\"\xef\xbd\xa1\":2,\"\xf0\x9f\x98\x80\":1}";
        struct ota_json_limits lim = {1024, 8, 0, 0};
        json_t *v = NULL;
        uint8_t *out = NULL;
        size_t len = 0;

        assert_int_equal(ota_json_parse(&v, in, strlen(in), &lim, NULL), 0);
        assert_int_equal(ota_json_canonical_alloc(&out, &len, v), 0);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(out, want, len);
        free(out);
        json_decref(v);
    }
}

static void test_nested_sorted(void **state)
{
    (void)state;
    check_canon("{\"z\":{\"y\":[{\"d\":1,\"c\":[3,2,1]},{\"b\":{\"2\":0,\"1\":0}}],\"x\":{}},"
                "\"a\":[[],{},[{}],\"s\"]}",
                "{\"a\":[[],{},[{}],\"s\"],\"z\":{\"x\":{},\"y\":[{\"c\":[3,2,1],\"d\":1},"
                "{\"b\":{\"1\":0,\"2\":0}}]}}");
    check_canon("{}", "{}");
    check_canon("[]", "[]");
    check_canon(" { } ", "{}");
    check_canon("[ [ ] , { } ]", "[[],{}]");
}

static void test_scalars(void **state)
{
    (void)state;
    check_canon("[0,-1,-0,42,-9007199254740993,9007199254740993]",
                "[0,-1,0,42,-9007199254740993,9007199254740993]");
    check_canon("[9223372036854775807,-9223372036854775808]",
                "[9223372036854775807,-9223372036854775808]");
    check_canon("[true,false,null]", "[true,false,null]");
    check_canon("{\"t\":true,\"f\":false,\"n\":null}", "{\"f\":false,\"n\":null,\"t\":true}");
    /* Any value at the top level. */
    check_canon("9007199254740993", "9007199254740993");
    check_canon("\"x\"", "\"x\"");
    check_canon("null", "null");
}

static void test_large_integer_exact(void **state)
{
    json_t *v = NULL;

    (void)state;
    assert_int_equal(ota_json_parse(&v, "[9007199254740993]", 18, NULL, NULL), 0);
    assert_true(json_is_integer(json_array_get(v, 0)));
    assert_true(json_integer_value(json_array_get(v, 0)) == 9007199254740993LL);
    json_decref(v);
    /* Beyond 64 bits is refused, never rounded. */
    assert_int_equal(parse_rc("[9223372036854775808]", NULL), OTA_ERR_JSON_SYNTAX);
}

static void test_emitter_refuses_real(void **state)
{
    json_t *v = json_pack("{s:i, s:[i, f]}", "a", 1, "b", 2, 1.5);
    struct ota_buf b;
    uint8_t *out = (uint8_t *)1;
    size_t len = 9;

    (void)state;
    assert_non_null(v);
    ota_buf_init(&b, 1024);
    assert_int_equal(ota_json_canonical(&b, v), OTA_ERR_JSON_REAL);
    ota_buf_free(&b);
    assert_int_equal(ota_json_canonical_alloc(&out, &len, v), OTA_ERR_JSON_REAL);
    assert_null(out);
    assert_int_equal(len, 0);
    json_decref(v);
}

static void test_emitter_cap(void **state)
{
    json_t *v = NULL;
    struct ota_buf b;
    size_t n = strlen(V_SIGNED);
    size_t cap;

    (void)state;
    assert_int_equal(ota_json_parse(&v, V_SIGNED, n, NULL, NULL), 0);
    /* Exactly the canonical length fits; every smaller cap is refused. */
    ota_buf_init(&b, n);
    assert_int_equal(ota_json_canonical(&b, v), 0);
    assert_string_equal((char *)b.data, V_SIGNED);
    ota_buf_free(&b);
    for (cap = 0; cap < n; cap++) {
        ota_buf_init(&b, cap);
        assert_int_equal(ota_json_canonical(&b, v), OTA_ERR_TOO_LARGE);
        assert_true(b.len <= cap);
        ota_buf_free(&b);
    }
    json_decref(v);
}

static void test_emitter_deep_tree_from_code(void **state)
{
    json_t *root = json_array();
    json_t *cur = root;
    struct ota_buf b;
    int i;

    (void)state;
    /* Deeper than any parse limit: the emitter's own cap refuses it
     * instead of recursing without bound. */
    for (i = 0; i < 5000; i++) {
        json_t *next = json_array();

        assert_int_equal(json_array_append_new(cur, next), 0);
        cur = next;
    }
    ota_buf_init(&b, 1 << 20);
    assert_int_equal(ota_json_canonical(&b, root), OTA_ERR_JSON_DEPTH);
    ota_buf_free(&b);
    json_decref(root);
}

/* ---- parser refusals ---- */

static void test_dup_keys(void **state)
{
    struct ota_detail det = {{0}};
    json_t *v = NULL;
    const char *in = "{\"a\":1,\n\"a\":2}";

    (void)state;
    assert_int_equal(ota_json_parse(&v, in, strlen(in), NULL, &det), OTA_ERR_JSON_DUP_KEY);
    assert_null(v);
    assert_non_null(strstr(det.msg, "line 2"));
    assert_non_null(strstr(det.msg, "duplicate"));
    assert_int_equal(parse_rc("{\"x\":{\"b\":1,\"c\":2,\"b\":1}}", NULL), OTA_ERR_JSON_DUP_KEY);
    assert_int_equal(parse_rc("[{},{\"k\":[{\"k\":1,\"k\":1}]}]", NULL), OTA_ERR_JSON_DUP_KEY);
    /* Escaped spelling of the same key is still a duplicate. */
    assert_int_equal(parse_rc("{\"a\":1,\"\\u0061\":2}", NULL), OTA_ERR_JSON_DUP_KEY);
    /* Same key in different objects is fine. */
    assert_int_equal(parse_rc("{\"a\":{\"a\":1},\"b\":{\"a\":2}}", NULL), 0);
}

static void test_reals(void **state)
{
    struct ota_detail det = {{0}};
    json_t *v = NULL;
    const char *in = "{\"signed\":{\"version\":1.0}}";
    struct ota_json_limits lim = {1024, 8, 1, 1};

    (void)state;
    assert_int_equal(ota_json_parse(&v, in, strlen(in), NULL, &det), OTA_ERR_JSON_REAL);
    assert_non_null(strstr(det.msg, "$.signed.version"));
    assert_int_equal(parse_rc("[1.0]", NULL), OTA_ERR_JSON_REAL);
    assert_int_equal(parse_rc("[1e3]", NULL), OTA_ERR_JSON_REAL);
    assert_int_equal(parse_rc("[1E-3]", NULL), OTA_ERR_JSON_REAL);
    assert_int_equal(parse_rc("[-0.0]", NULL), OTA_ERR_JSON_REAL);
    assert_int_equal(parse_rc("2.5", NULL), OTA_ERR_JSON_REAL);
    /* Allowed when asked; the emitter still refuses them. */
    assert_int_equal(ota_json_parse(&v, "[1.5]", 5, &lim, NULL), 0);
    {
        struct ota_buf b;

        ota_buf_init(&b, 64);
        assert_int_equal(ota_json_canonical(&b, v), OTA_ERR_JSON_REAL);
        ota_buf_free(&b);
    }
    json_decref(v);
}

static char *nested_arrays(unsigned depth)
{
    char *s = malloc(2 * depth + 1);
    unsigned i;

    assert_non_null(s);
    for (i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth + i] = ']';
    }
    s[2 * depth] = '\0';
    return s;
}

static void test_depth(void **state)
{
    char *s32 = nested_arrays(32);
    char *s33 = nested_arrays(33);
    char *s5000 = nested_arrays(5000);
    struct ota_json_limits lim = {1 << 20, 3, 0, 1};

    (void)state;
    assert_int_equal(parse_rc(s32, NULL), 0);
    assert_int_equal(parse_rc(s33, NULL), OTA_ERR_JSON_DEPTH);
    /* Far beyond: jansson's own depth guard, still a depth error. */
    assert_int_equal(parse_rc(s5000, NULL), OTA_ERR_JSON_DEPTH);
    /* Objects count as well; scalars do not add a level. */
    assert_int_equal(parse_rc("{\"a\":[{\"b\":1}]}", &lim), 0);
    assert_int_equal(parse_rc("{\"a\":[{\"b\":[]}]}", &lim), OTA_ERR_JSON_DEPTH);
    assert_int_equal(parse_rc("{\"a\":[{\"b\":{}}]}", &lim), OTA_ERR_JSON_DEPTH);
    free(s32);
    free(s33);
    free(s5000);
}

static void test_size_cap(void **state)
{
    struct ota_json_limits lim = {10, 8, 0, 1};
    struct ota_detail det = {{0}};
    json_t *v = NULL;

    (void)state;
    assert_int_equal(parse_rc("[1,2,3,44]", &lim), 0); /* exactly 10 bytes */
    assert_int_equal(parse_rc("[1,2,3,444]", &lim), OTA_ERR_TOO_LARGE);
    /* Checked before parsing: even broken JSON gets TOO_LARGE. */
    assert_int_equal(parse_rc("{{{{{{{{{{{{", &lim), OTA_ERR_TOO_LARGE);
    /* Only len counts: bytes past it are not read. */
    assert_int_equal(ota_json_parse(&v, "[1]GARBAGE", 3, &lim, &det), 0);
    json_decref(v);
}

static void test_key_chars(void **state)
{
    struct ota_json_limits lim = {1024, 8, 0, 0};
    struct ota_detail det = {{0}};
    json_t *v = NULL;
    const char *in = "{\"signed\":{\"caf\xc3\xa9\":1}}";

    (void)state;
    assert_int_equal(ota_json_parse(&v, in, strlen(in), NULL, &det), OTA_ERR_JSON_KEY_CHARS);
    assert_non_null(strstr(det.msg, "$.signed"));
    assert_int_equal(parse_rc("{\"caf\\u00e9\":1}", NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(parse_rc("{\"a\\nb\":1}", NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(parse_rc("{\"\\u001f\":1}", NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(parse_rc("{\"\\u007f\":1}", NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(parse_rc("[{\"ok\":{\"\\t\":1}}]", NULL), OTA_ERR_JSON_KEY_CHARS);
    /* Printable ASCII is fine, space and tilde included. */
    assert_int_equal(parse_rc("{\" ~!\":1}", NULL), 0);
    /* Allowed when asked. */
    assert_int_equal(parse_rc("{\"caf\\u00e9\":1}", &lim), 0);
    assert_int_equal(parse_rc("{\"a\\nb\":1}", &lim), 0);
    /* Values may hold anything. */
    assert_int_equal(parse_rc("{\"k\":\"caf\\u00e9\\n\"}", NULL), 0);
}

static void test_syntax(void **state)
{
    struct ota_detail det = {{0}};
    json_t *v = NULL;

    (void)state;
    assert_int_equal(ota_json_parse(&v, "{\"a\":1} x", 9, NULL, &det), OTA_ERR_JSON_SYNTAX);
    assert_non_null(strstr(det.msg, "line 1 column"));
    assert_int_equal(parse_rc("{\"a\":1}{}", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("[1] [2]", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("{", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("[1,]", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("{'a':1}", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("[01]", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("[NaN]", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("[\"\xff\"]", NULL), OTA_ERR_JSON_SYNTAX);    /* bad UTF-8 */
    assert_int_equal(parse_rc("[\"a\nb\"]", NULL), OTA_ERR_JSON_SYNTAX);    /* raw control */
    assert_int_equal(parse_rc("[\"\\ud800\"]", NULL), OTA_ERR_JSON_SYNTAX); /* lone surrogate */
    /* \u0000 is refused in values and keys. */
    assert_int_equal(parse_rc("[\"a\\u0000b\"]", NULL), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_rc("{\"a\\u0000\":1}", NULL), OTA_ERR_JSON_SYNTAX);
    /* A raw NUL byte inside the given length. */
    assert_int_equal(ota_json_parse(&v, "[1]\0", 4, NULL, &det), OTA_ERR_JSON_SYNTAX);
    assert_null(v);
    /* Trailing whitespace is fine. */
    assert_int_equal(parse_rc("[1] \n\t", NULL), 0);
}

static void test_bad_args(void **state)
{
    json_t *v = NULL;
    struct ota_buf b;

    (void)state;
    assert_int_equal(ota_json_parse(NULL, "[]", 2, NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_json_parse(&v, NULL, 2, NULL, NULL), OTA_ERR_INVALID_ARG);
    ota_buf_init(&b, 16);
    assert_int_equal(ota_json_canonical(&b, NULL), OTA_ERR_INVALID_ARG);
    ota_buf_free(&b);
}

/* RFC 4648 section 10 test vectors, as JSON strings. */
static void test_base64_string(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        json_t *s = ota_json_base64((const uint8_t *)v[i].in, strlen(v[i].in));
        assert_non_null(s);
        assert_true(json_is_string(s));
        assert_string_equal(json_string_value(s), v[i].out);
        json_decref(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_readme),
        cmocka_unit_test(test_vector_objects),
        cmocka_unit_test(test_vector_built_in_code),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_embedded_nul_from_code),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_nested_sorted),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_large_integer_exact),
        cmocka_unit_test(test_emitter_refuses_real),
        cmocka_unit_test(test_emitter_cap),
        cmocka_unit_test(test_emitter_deep_tree_from_code),
        cmocka_unit_test(test_dup_keys),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_key_chars),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_base64_string),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
