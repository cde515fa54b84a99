/* Strict JSON parsing and canonical JSON emission (see otachain/cjson.h).
 *
 * Parsing is two passes: jansson parses with duplicate keys refused (NUL
 * characters and trailing data are refused by jansson by default), then a
 * walk over the tree enforces our limits (depth, reals, key characters)
 * and reports the JSON path of the first offence. Any JSON value is
 * accepted at the top level (callers check for an object).
 *
 * The emitter writes the OLPC/TUF canonical form: object members sorted
 * by the bytes of their keys (shorter first on a common prefix), no
 * whitespace, in strings only '\\' and '"' escaped and every other byte
 * (control characters, UTF-8) written raw, integers in decimal. Note that
 * a canonical string holding a control character is not valid JSON for
 * strict parsers (ours included); TUF signs it anyway.
 */
#include "otachain/cjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"

#define DEFAULT_MAX_BYTES (64u * 1024 * 1024)
/* Emitter recursion cap, for trees built in code (parsed trees are capped
 * by the parse limits and by jansson's own depth limit of 2048). */
#define EMIT_MAX_DEPTH 2048
/* Longest JSON path kept for error details; longer paths are cut. */
#define PATH_LEN 200

static const struct ota_json_limits default_limits = {
    .max_bytes = DEFAULT_MAX_BYTES,
    .max_depth = OTA_JSON_MAX_DEPTH,
    .allow_reals = 0,
    .ascii_keys = 1,
};

/* JSON path of the value being checked, e.g. "$.signed.keys[2]". */
struct jpath {
    char s[PATH_LEN];
    size_t len;
};

/* Appends a path segment: ".key" when key is not NULL, else "[idx]".
 * Returns the old length to restore afterwards. Truncation is fine: the
 * path is only for the error detail. */
static size_t jpath_push(struct jpath *p, const char *key, size_t idx)
{
    size_t old = p->len;
    size_t room = sizeof(p->s) - p->len;
    int n;

    if (room <= 1)
        return old;
    if (key != NULL)
        n = snprintf(p->s + p->len, room, ".%s", key);
    else
        n = snprintf(p->s + p->len, room, "[%zu]", idx);
    if (n > 0)
        p->len += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void jpath_pop(struct jpath *p, size_t old)
{
    p->len = old;
    p->s[old] = '\0';
}

static int key_ok(const char *key, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];

        if (c < 0x20 || c > 0x7e)
            return 0;
    }
    return 1;
}

static size_t obj_key_len(const char *key)
{
#if JANSSON_VERSION_HEX >= 0x020e00
    return json_object_iter_key_len(json_object_key_to_iter(key));
#else
    return strlen(key);
#endif
}

static int check_tree(const json_t *v, unsigned depth, const struct ota_json_limits *lim,
                      struct jpath *path, struct ota_detail *det)
{
    int rc;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;

        if (depth > lim->max_depth) {
            ota_detail_set(det, "%s: nesting deeper than %u", path->s, lim->max_depth);
            return OTA_ERR_JSON_DEPTH;
        }
        json_object_foreach((json_t *)v, key, child)
        {
            size_t klen = obj_key_len(key);
            size_t old;

            if (lim->ascii_keys && !key_ok(key, klen)) {
                ota_detail_set(det, "%s: object key is not printable ASCII", path->s);
                return OTA_ERR_JSON_KEY_CHARS;
            }
            /* Non-ASCII keys (when allowed) appear in the path as is. */
            old = jpath_push(path, key, 0);
            rc = check_tree(child, depth + 1, lim, path, det);
            jpath_pop(path, old);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;

        if (depth > lim->max_depth) {
            ota_detail_set(det, "%s: nesting deeper than %u", path->s, lim->max_depth);
            return OTA_ERR_JSON_DEPTH;
        }
        json_array_foreach(v, i, child)
        {
            size_t old = jpath_push(path, NULL, i);

            rc = check_tree(child, depth + 1, lim, path, det);
            jpath_pop(path, old);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    case JSON_REAL:
        if (!lim->allow_reals) {
            ota_detail_set(det, "%s: floating-point number not allowed", path->s);
            return OTA_ERR_JSON_REAL;
        }
        return 0;
    case JSON_STRING:
    case JSON_INTEGER:
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return 0;
    }
    return OTA_ERR_FORMAT;
}

static int map_jansson_error(const json_error_t *err)
{
    /* json_loadb returns NULL with the error still blank (no text,
     * line -1) only when its lexer cannot allocate its buffer. */
    if (err->text[0] == '\0')
        return OTA_ERR_NOMEM;
    switch (json_error_code(err)) {
    case json_error_duplicate_key:
        return OTA_ERR_JSON_DUP_KEY;
    case json_error_stack_overflow:
        return OTA_ERR_JSON_DEPTH;
    case json_error_out_of_memory:
        return OTA_ERR_NOMEM;
    default:
        return OTA_ERR_JSON_SYNTAX;
    }
}

int ota_json_parse(json_t **out, const void *data, size_t len, const struct ota_json_limits *lim,
                   struct ota_detail *det)
{
    json_error_t err;
    json_t *root;
    struct jpath path;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (lim == NULL)
        lim = &default_limits;
    if (len > lim->max_bytes) {
        ota_detail_set(det, "%zu bytes exceed the limit of %zu", len, lim->max_bytes);
        return OTA_ERR_TOO_LARGE;
    }
    root = json_loadb(len > 0 ? data : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (root == NULL) {
        rc = map_jansson_error(&err);
        if (rc == OTA_ERR_NOMEM)
            ota_detail_set(det, "out of memory");
        else
            ota_detail_set(det, "line %d column %d: %s", err.line, err.column, err.text);
        return rc;
    }
    path.s[0] = '$';
    path.s[1] = '\0';
    path.len = 1;
    rc = check_tree(root, 1, lim, &path, det);
    if (rc != 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* Appends s (n bytes) as a canonical JSON string. */
static int emit_string(struct ota_buf *out, const char *s, size_t n)
{
    size_t start = 0;
    size_t i;
    int rc;

    rc = ota_buf_append(out, "\"", 1);
    for (i = 0; rc == 0 && i < n; i++) {
        if (s[i] != '\\' && s[i] != '"')
            continue;
        rc = ota_buf_append(out, s + start, i - start);
        if (rc == 0)
            rc = ota_buf_append(out, "\\", 1);
        start = i; /* the quoted byte goes out with the next run */
    }
    if (rc == 0)
        rc = ota_buf_append(out, s + start, n - start);
    if (rc == 0)
        rc = ota_buf_append(out, "\"", 1);
    return rc;
}

struct member {
    const char *key;
    size_t len;
    const json_t *value;
};

/* Bytewise order; a proper prefix sorts first. */
static int member_cmp(const void *pa, const void *pb)
{
    const struct member *a = pa;
    const struct member *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, n);

    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int emit(struct ota_buf *out, const json_t *v, unsigned depth);

static int emit_object(struct ota_buf *out, const json_t *v, unsigned depth)
{
    size_t n = json_object_size(v);
    struct member *m = NULL;
    const char *key;
    json_t *child;
    size_t i = 0;
    int rc;

    if (n > 0) {
        m = calloc(n, sizeof(*m));
        if (m == NULL)
            return OTA_ERR_NOMEM;
        json_object_foreach((json_t *)v, key, child)
        {
            if (i == n)
                break;
            m[i].key = key;
            m[i].len = obj_key_len(key);
            m[i].value = child;
            i++;
        }
        n = i;
        if (n > 1)
            qsort(m, n, sizeof(*m), member_cmp);
    }
    rc = ota_buf_append(out, "{", 1);
    for (i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = ota_buf_append(out, ",", 1);
        if (rc == 0)
            rc = emit_string(out, m[i].key, m[i].len);
        if (rc == 0)
            rc = ota_buf_append(out, ":", 1);
        if (rc == 0)
            rc = emit(out, m[i].value, depth + 1);
    }
    if (rc == 0)
        rc = ota_buf_append(out, "}", 1);
    free(m);
    return rc;
}

static int emit(struct ota_buf *out, const json_t *v, unsigned depth)
{
    int rc;

    if (v == NULL)
        return OTA_ERR_INVALID_ARG;
    if (depth > EMIT_MAX_DEPTH)
        return OTA_ERR_JSON_DEPTH;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(out, v, depth);
    case JSON_ARRAY: {
        size_t i;
        json_t *child;

        rc = ota_buf_append(out, "[", 1);
        json_array_foreach(v, i, child)
        {
            if (rc == 0 && i > 0)
                rc = ota_buf_append(out, ",", 1);
            if (rc == 0)
                rc = emit(out, child, depth + 1);
            if (rc != 0)
                return rc;
        }
        if (rc == 0)
            rc = ota_buf_append(out, "]", 1);
        return rc;
    }
    case JSON_STRING:
        return emit_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return ota_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return OTA_ERR_JSON_REAL;
    case JSON_TRUE:
        return ota_buf_append(out, "true", 4);
    case JSON_FALSE:
        return ota_buf_append(out, "false", 5);
    case JSON_NULL:
        return ota_buf_append(out, "null", 4);
    }
    return OTA_ERR_FORMAT;
}

int ota_json_canonical(struct ota_buf *out, const json_t *v)
{
    if (out == NULL || v == NULL)
        return OTA_ERR_INVALID_ARG;
    return emit(out, v, 1);
}

int ota_json_canonical_alloc(uint8_t **out, size_t *out_len, const json_t *v)
{
    struct ota_buf b;
    int rc;

    if (out == NULL || out_len == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    ota_buf_init(&b, OTA_JSON_MAX_CANONICAL);
    rc = ota_json_canonical(&b, v);
    if (rc != 0) {
        ota_buf_free(&b);
        return rc;
    }
    *out = ota_buf_steal(&b, out_len);
    return *out != NULL ? 0 : OTA_ERR_NOMEM;
}

json_t *ota_json_base64(const uint8_t *data, size_t len)
{
    char *text = malloc(OTA_BASE64_LEN(len) + 1);
    json_t *s;

    if (text == NULL)
        return NULL;
    ota_base64_encode(text, data, len);
    s = json_string(text);
    free(text);
    return s;
}
