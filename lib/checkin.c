/* The check-in body and answer of the device API v1 (checkin.h). */
#include "otachain/checkin.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/release.h"

static const char *const state_names[OTA_UPDATE_STATE_COUNT] = {
    "none",      "downloading", "downloaded", "installing",  "installed",
    "rebooting", "committed",   "failed",     "rolled_back",
};

const char *ota_update_state_name(enum ota_update_state s)
{
    return (unsigned)s < OTA_UPDATE_STATE_COUNT ? state_names[s] : "none";
}

int ota_update_state_parse(enum ota_update_state *out, const char *name)
{
    *out = OTA_UPDATE_NONE;
    for (unsigned i = 1; name != NULL && i < OTA_UPDATE_STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum ota_update_state)i;
            return 0;
        }
    }
    return OTA_ERR_FORMAT;
}

bool ota_checkin_name_valid(const char *s, size_t n, size_t max)
{
    if (s == NULL || n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool ota_checkin_target_valid(const char *s, size_t n)
{
    size_t seg = 0;

    if (s == NULL || n == 0 || n > OTA_CHECKIN_TARGET_MAX || s[0] == '/' || s[n - 1] == '/')
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if (len == 0 || (len == 1 && s[seg] == '.') ||
                (len == 2 && s[seg] == '.' && s[seg + 1] == '.'))
                return false;
            seg = i + 1;
            continue;
        }
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

bool ota_checkin_version_valid(const char *s, size_t n)
{
    struct ota_semver v;

    /* The one SemVer grammar (release.h). */
    return s != NULL && n <= OTA_CHECKIN_VERSION_MAX && ota_semver_parse(&v, s, n, NULL) == 0;
}

/* ---- parsing the request ---- */

struct member {
    const char *name;
    json_type type; /* JSON_NULL: object or null accepted (checked by the caller) */
    bool required;
};

/* Checks obj's members against the list: each known one of its type,
 * required ones present, unknown ones refused unless "x-..."; where names
 * the object in messages. */
static int check_members(const json_t *obj, const char *where, const struct member *m, size_t n,
                         struct ota_detail *det)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        size_t i;
        if (strncmp(key, "x-", 2) == 0)
            continue;
        for (i = 0; i < n; i++) {
            if (strcmp(key, m[i].name) == 0)
                break;
        }
        if (i == n) {
            if (strcmp(key, "device") == 0 || strcmp(key, "device_id") == 0 ||
                strcmp(key, "id") == 0)
                ota_detail_set(det,
                               "%s%s%s: the device id comes from the certificate, never from the "
                               "request",
                               where, where[0] ? "." : "", key);
            else
                ota_detail_set(det, "%s%s%.64s: unknown member", where, where[0] ? "." : "", key);
            return OTA_ERR_FORMAT;
        }
        if (json_typeof(v) != m[i].type &&
            !(m[i].type == JSON_TRUE && (json_is_true(v) || json_is_false(v)))) {
            ota_detail_set(det, "%s%s%s: wrong type", where, where[0] ? "." : "", key);
            return OTA_ERR_FORMAT;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].required && json_object_get(obj, m[i].name) == NULL) {
            ota_detail_set(det, "%s%s%s: missing", where, where[0] ? "." : "", m[i].name);
            return OTA_ERR_FORMAT;
        }
    }
    return 0;
}

enum str_rule { RULE_NAME, RULE_SLOT, RULE_VERSION, RULE_TARGET, RULE_ERROR, RULE_DETAIL };

static bool error_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > OTA_CHECKIN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    }
    return true;
}

static bool printable(const char *s, size_t n, size_t max)
{
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

/* Copies string member name of obj (absent: leaves out empty) after
 * checking it against rule. */
static int get_str(char *out, size_t cap, const json_t *obj, const char *where, const char *name,
                   enum str_rule rule, struct ota_detail *det)
{
    static const char *const what[] = {
        "1-64 characters [A-Za-z0-9._-]",
        "1-16 characters [A-Za-z0-9._-]",
        "a SemVer 2.0.0 version of at most 128 bytes",
        "a target path: 1-255 printable ASCII characters, no '.', '..' or empty segments",
        "an error name: 1-64 characters [a-z0-9_]",
        "at most 512 printable ASCII characters",
    };
    const json_t *v = json_object_get(obj, name);
    const char *s;
    size_t n;
    bool ok;

    out[0] = '\0';
    if (v == NULL)
        return 0;
    s = json_string_value(v);
    n = json_string_length(v);
    switch (rule) {
    case RULE_NAME:
        ok = ota_checkin_name_valid(s, n, OTA_CHECKIN_NAME_MAX);
        break;
    case RULE_SLOT:
        ok = ota_checkin_name_valid(s, n, OTA_CHECKIN_SLOT_MAX);
        break;
    case RULE_VERSION:
        ok = ota_checkin_version_valid(s, n);
        break;
    case RULE_TARGET:
        ok = ota_checkin_target_valid(s, n);
        break;
    case RULE_ERROR:
        ok = error_name_valid(s, n);
        break;
    default:
        ok = printable(s, n, OTA_CHECKIN_DETAIL_MAX);
        break;
    }
    if (!ok || n >= cap || strlen(s) != n) {
        ota_detail_set(det, "%s.%s: %s", where, name, what[rule]);
        return OTA_ERR_FORMAT;
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int get_uint(uint64_t *out, const json_t *obj, const char *where, const char *name,
                    uint64_t min, struct ota_detail *det)
{
    const json_t *v = json_object_get(obj, name);
    json_int_t i;

    *out = 0;
    if (v == NULL)
        return 0;
    i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > OTA_CHECKIN_INT_MAX) {
        ota_detail_set(det, "%s.%s: an integer from %llu to 2^53-1", where, name,
                       (unsigned long long)min);
        return OTA_ERR_FORMAT;
    }
    *out = (uint64_t)i;
    return 0;
}

static int parse_running(struct ota_checkin *c, const json_t *o, struct ota_detail *det)
{
    static const struct member m[] = {
        {"product", JSON_STRING, true}, {"hardware", JSON_STRING, true},
        {"version", JSON_STRING, true}, {"target", JSON_STRING, false},
        {"slot", JSON_STRING, false},
    };
    int rc = check_members(o, "running", m, 5, det);

    if (rc == 0)
        rc = get_str(c->product, sizeof(c->product), o, "running", "product", RULE_NAME, det);
    if (rc == 0)
        rc = get_str(c->hardware, sizeof(c->hardware), o, "running", "hardware", RULE_NAME, det);
    if (rc == 0)
        rc = get_str(c->version, sizeof(c->version), o, "running", "version", RULE_VERSION, det);
    if (rc == 0)
        rc = get_str(c->target, sizeof(c->target), o, "running", "target", RULE_TARGET, det);
    if (rc == 0)
        rc = get_str(c->slot, sizeof(c->slot), o, "running", "slot", RULE_SLOT, det);
    return rc;
}

static int parse_update(struct ota_checkin *c, const json_t *o, struct ota_detail *det)
{
    static const struct member m[] = {
        {"state", JSON_STRING, true},
        {"target", JSON_STRING, true},
        {"progress", JSON_INTEGER, false},
    };
    int rc = check_members(o, "update", m, 3, det);

    if (rc != 0)
        return rc;
    if (ota_update_state_parse(&c->state, json_string_value(json_object_get(o, "state"))) != 0) {
        ota_detail_set(det, "update.state: one of downloading, downloaded, installing, "
                            "installed, rebooting, committed, failed, rolled_back");
        return OTA_ERR_FORMAT;
    }
    rc = get_str(c->state_target, sizeof(c->state_target), o, "update", "target", RULE_TARGET, det);
    if (rc == 0 && json_object_get(o, "progress") != NULL) {
        c->has_progress = true;
        rc = get_uint(&c->progress, o, "update", "progress", 0, det);
    }
    return rc;
}

static int parse_error(struct ota_checkin *c, const json_t *o, struct ota_detail *det)
{
    static const struct member m[] = {
        {"name", JSON_STRING, true},
        {"detail", JSON_STRING, false},
    };
    int rc = check_members(o, "last_error", m, 2, det);

    if (rc == 0)
        rc =
            get_str(c->error_name, sizeof(c->error_name), o, "last_error", "name", RULE_ERROR, det);
    if (rc == 0)
        rc = get_str(c->error_detail, sizeof(c->error_detail), o, "last_error", "detail",
                     RULE_DETAIL, det);
    return rc;
}

static int parse_trusted(struct ota_checkin *c, const json_t *o, struct ota_detail *det)
{
    static const struct member m[] = {
        {"root_version", JSON_INTEGER, true},      {"timestamp_version", JSON_INTEGER, false},
        {"snapshot_version", JSON_INTEGER, false}, {"targets_version", JSON_INTEGER, false},
        {"checkpoint", JSON_OBJECT, false},
    };
    static const struct member cm[] = {
        {"size", JSON_INTEGER, true},
        {"hash", JSON_STRING, true},
    };
    const json_t *cp;
    size_t n = 0;
    int rc = check_members(o, "trusted", m, 5, det);

    if (rc == 0)
        rc = get_uint(&c->root_version, o, "trusted", "root_version", 1, det);
    if (rc == 0)
        rc = get_uint(&c->timestamp_version, o, "trusted", "timestamp_version", 1, det);
    if (rc == 0)
        rc = get_uint(&c->snapshot_version, o, "trusted", "snapshot_version", 1, det);
    if (rc == 0)
        rc = get_uint(&c->targets_version, o, "trusted", "targets_version", 1, det);
    if (rc != 0)
        return rc;
    cp = json_object_get(o, "checkpoint");
    if (cp == NULL)
        return 0;
    rc = check_members(cp, "trusted.checkpoint", cm, 2, det);
    if (rc == 0)
        rc = get_uint(&c->checkpoint_size, cp, "trusted.checkpoint", "size", 0, det);
    if (rc != 0)
        return rc;
    if (ota_base64_decode(c->checkpoint_hash, sizeof(c->checkpoint_hash), &n,
                          json_string_value(json_object_get(cp, "hash")),
                          json_string_length(json_object_get(cp, "hash"))) != 0 ||
        n != sizeof(c->checkpoint_hash)) {
        ota_detail_set(det, "trusted.checkpoint.hash: base64 of 32 bytes");
        return OTA_ERR_FORMAT;
    }
    c->has_checkpoint = true;
    return 0;
}

int ota_checkin_parse(struct ota_checkin *out, const void *body, size_t len, struct ota_detail *det)
{
    static const struct member top[] = {
        {"running", JSON_OBJECT, true},
        {"update", JSON_NULL, false},
        {"last_error", JSON_NULL, false},
        {"trusted", JSON_OBJECT, true},
    };
    const struct ota_json_limits lim = {OTA_CHECKIN_BODY_MAX, 4, 0, 1};
    json_t *doc = NULL;
    const json_t *v;
    const char *key;
    json_t *val;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ota_json_parse(&doc, body, len, &lim, det);
    if (rc != 0)
        return rc;
    if (!json_is_object(doc)) {
        ota_detail_set(det, "the body is not a JSON object");
        rc = OTA_ERR_FORMAT;
        goto out;
    }
    /* update and last_error are an object or null: checked here, the
     * other members by check_members. */
    json_object_foreach(doc, key, val)
    {
        if ((strcmp(key, "update") == 0 || strcmp(key, "last_error") == 0) &&
            !json_is_object(val) && !json_is_null(val)) {
            ota_detail_set(det, "%s: an object or null", key);
            rc = OTA_ERR_FORMAT;
            goto out;
        }
    }
    {
        /* check_members compares types exactly: present update/last_error
         * objects are accepted by listing them as objects when they are. */
        struct member m[4];
        memcpy(m, top, sizeof(m));
        if (json_is_object(json_object_get(doc, "update")))
            m[1].type = JSON_OBJECT;
        if (json_is_object(json_object_get(doc, "last_error")))
            m[2].type = JSON_OBJECT;
        rc = check_members(doc, "", m, 4, det);
    }
    if (rc == 0)
        rc = parse_running(out, json_object_get(doc, "running"), det);
    v = json_object_get(doc, "update");
    if (rc == 0 && json_is_object(v))
        rc = parse_update(out, v, det);
    v = json_object_get(doc, "last_error");
    if (rc == 0 && json_is_object(v))
        rc = parse_error(out, v, det);
    if (rc == 0)
        rc = parse_trusted(out, json_object_get(doc, "trusted"), det);
out:
    json_decref(doc);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- formatting ---- */

/* Appends "s" with JSON escapes (the values here are printable ASCII by
 * their rules, but a formatter must never emit broken JSON). */
static int put_str(struct ota_buf *b, const char *s)
{
    int rc = ota_buf_append(b, "\"", 1);

    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = ota_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rc = ota_buf_printf(b, "\\u%04x", c);
        else
            rc = ota_buf_append(b, s, 1);
    }
    return rc == 0 ? ota_buf_append(b, "\"", 1) : rc;
}

int ota_checkin_format(struct ota_buf *out, const struct ota_checkin *in, struct ota_detail *det)
{
    struct ota_checkin check;
    size_t start = out->len;
    int rc = ota_buf_append_str(out, "{\"running\":{\"product\":");

    if (rc == 0)
        rc = put_str(out, in->product);
    if (rc == 0)
        rc = ota_buf_append_str(out, ",\"hardware\":");
    if (rc == 0)
        rc = put_str(out, in->hardware);
    if (rc == 0)
        rc = ota_buf_append_str(out, ",\"version\":");
    if (rc == 0)
        rc = put_str(out, in->version);
    if (rc == 0 && in->target[0]) {
        rc = ota_buf_append_str(out, ",\"target\":");
        if (rc == 0)
            rc = put_str(out, in->target);
    }
    if (rc == 0 && in->slot[0]) {
        rc = ota_buf_append_str(out, ",\"slot\":");
        if (rc == 0)
            rc = put_str(out, in->slot);
    }
    if (rc == 0)
        rc = ota_buf_append_str(out, "}");
    if (rc == 0 && in->state != OTA_UPDATE_NONE) {
        rc = ota_buf_printf(
            out, ",\"update\":{\"state\":\"%s\",\"target\":", ota_update_state_name(in->state));
        if (rc == 0)
            rc = put_str(out, in->state_target);
        if (rc == 0 && in->has_progress)
            rc = ota_buf_printf(out, ",\"progress\":%llu", (unsigned long long)in->progress);
        if (rc == 0)
            rc = ota_buf_append_str(out, "}");
    }
    if (rc == 0 && in->error_name[0]) {
        rc = ota_buf_append_str(out, ",\"last_error\":{\"name\":");
        if (rc == 0)
            rc = put_str(out, in->error_name);
        if (rc == 0 && in->error_detail[0]) {
            rc = ota_buf_append_str(out, ",\"detail\":");
            if (rc == 0)
                rc = put_str(out, in->error_detail);
        }
        if (rc == 0)
            rc = ota_buf_append_str(out, "}");
    }
    if (rc == 0)
        rc = ota_buf_printf(out, ",\"trusted\":{\"root_version\":%llu",
                            (unsigned long long)in->root_version);
    if (rc == 0 && in->timestamp_version > 0)
        rc = ota_buf_printf(out, ",\"timestamp_version\":%llu",
                            (unsigned long long)in->timestamp_version);
    if (rc == 0 && in->snapshot_version > 0)
        rc = ota_buf_printf(out, ",\"snapshot_version\":%llu",
                            (unsigned long long)in->snapshot_version);
    if (rc == 0 && in->targets_version > 0)
        rc = ota_buf_printf(out, ",\"targets_version\":%llu",
                            (unsigned long long)in->targets_version);
    if (rc == 0 && in->has_checkpoint) {
        char b64[OTA_BASE64_LEN(32) + 1];
        ota_base64_encode(b64, in->checkpoint_hash, sizeof(in->checkpoint_hash));
        rc = ota_buf_printf(out, ",\"checkpoint\":{\"hash\":\"%s\",\"size\":%llu}", b64,
                            (unsigned long long)in->checkpoint_size);
    }
    if (rc == 0)
        rc = ota_buf_append_str(out, "}}");
    /* What we send must be what we accept. */
    if (rc == 0)
        rc = ota_checkin_parse(&check, out->data + start, out->len - start, det);
    if (rc != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = 0;
    }
    return rc;
}

int ota_checkin_reply_format(struct ota_buf *out, const struct ota_checkin_reply *r)
{
    int rc;

    if (r->poll_interval == 0 || (r->bundle != NULL && r->bundle_len > OTA_CHECKIN_BUNDLE_MAX))
        return OTA_ERR_INVALID_ARG;
    rc = ota_buf_append_str(out, "{\"assignment\":");
    if (rc == 0 && !r->has_assignment)
        rc = ota_buf_append_str(out, "null");
    if (rc == 0 && r->has_assignment) {
        const struct ota_checkin_assignment *a = &r->assignment;
        char hex[OTA_SHA256_HEX_LEN + 1];

        ota_hex_encode(hex, a->sha256, sizeof(a->sha256));
        rc = ota_buf_append_str(out, "{");
        if (rc == 0 && a->index[0]) {
            rc = ota_buf_append_str(out, "\"index\":");
            if (rc == 0)
                rc = put_str(out, a->index);
            if (rc == 0)
                rc = ota_buf_append_str(out, ",");
        }
        if (rc == 0)
            rc = ota_buf_printf(out,
                                "\"length\":%llu,\"security_version\":%llu,\"sha256\":\"%s\","
                                "\"target\":",
                                (unsigned long long)a->length,
                                (unsigned long long)a->security_version, hex);
        if (rc == 0)
            rc = put_str(out, a->target);
        if (rc == 0)
            rc = ota_buf_append_str(out, ",\"version\":");
        if (rc == 0)
            rc = put_str(out, a->version);
        if (rc == 0)
            rc = ota_buf_append_str(out, "}");
    }
    if (rc == 0)
        rc = ota_buf_append_str(out, ",\"bundle\":");
    if (rc == 0 && r->bundle == NULL)
        rc = ota_buf_append_str(out, "null");
    if (rc == 0 && r->bundle != NULL) {
        char *b64 = malloc(OTA_BASE64_LEN(r->bundle_len) + 1);
        if (b64 == NULL)
            return OTA_ERR_NOMEM;
        ota_base64_encode(b64, r->bundle, r->bundle_len);
        rc = ota_buf_printf(out, "\"%s\"", b64);
        free(b64);
    }
    if (rc == 0)
        rc = ota_buf_printf(out, ",\"poll_interval\":%u}", (unsigned)r->poll_interval);
    return rc;
}

static int parse_assignment(struct ota_checkin_assignment *a, const json_t *o,
                            struct ota_detail *det)
{
    const json_t *sha = json_object_get(o, "sha256");
    uint64_t sv = 0;
    int rc = 0;

    if (!json_is_string(json_object_get(o, "target")) ||
        !json_is_string(json_object_get(o, "version")) || !json_is_string(sha) ||
        !json_is_integer(json_object_get(o, "length")) ||
        !json_is_integer(json_object_get(o, "security_version")) ||
        (json_object_get(o, "index") != NULL && !json_is_string(json_object_get(o, "index")))) {
        ota_detail_set(det, "assignment: target, version, sha256, length and security_version "
                            "needed, of their types");
        return OTA_ERR_FORMAT;
    }
    rc = get_str(a->target, sizeof(a->target), o, "assignment", "target", RULE_TARGET, det);
    if (rc == 0)
        rc = get_str(a->version, sizeof(a->version), o, "assignment", "version", RULE_VERSION, det);
    if (rc == 0)
        rc = get_str(a->index, sizeof(a->index), o, "assignment", "index", RULE_TARGET, det);
    if (rc == 0)
        rc = get_uint(&a->length, o, "assignment", "length", 0, det);
    if (rc == 0)
        rc = get_uint(&sv, o, "assignment", "security_version", 0, det);
    if (rc != 0)
        return rc;
    a->security_version = sv;
    if (json_string_length(sha) != OTA_SHA256_HEX_LEN ||
        ota_hex_decode(a->sha256, sizeof(a->sha256), json_string_value(sha)) != 0) {
        ota_detail_set(det, "assignment.sha256: 64 hex digits");
        return OTA_ERR_FORMAT;
    }
    return 0;
}

int ota_checkin_reply_parse(struct ota_checkin_reply *r, struct ota_buf *bundle, const void *body,
                            size_t len, struct ota_detail *det)
{
    const struct ota_json_limits lim = {OTA_CHECKIN_REPLY_MAX, 4, 0, 1};
    json_t *doc = NULL;
    const json_t *v;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = ota_json_parse(&doc, body, len, &lim, det);
    if (rc != 0)
        return rc;
    rc = OTA_ERR_FORMAT;
    if (!json_is_object(doc)) {
        ota_detail_set(det, "the answer is not a JSON object");
        goto out;
    }
    v = json_object_get(doc, "poll_interval");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 31 * 86400) {
        ota_detail_set(det, "poll_interval: an integer of seconds from 1 to 31 days");
        goto out;
    }
    r->poll_interval = (uint32_t)json_integer_value(v);
    v = json_object_get(doc, "assignment");
    if (v == NULL || (!json_is_null(v) && !json_is_object(v))) {
        ota_detail_set(det, "assignment: an object or null");
        goto out;
    }
    if (json_is_object(v)) {
        rc = parse_assignment(&r->assignment, v, det);
        if (rc != 0)
            goto out;
        r->has_assignment = true;
        rc = OTA_ERR_FORMAT;
    }
    v = json_object_get(doc, "bundle");
    if (v == NULL || (!json_is_null(v) && !json_is_string(v))) {
        ota_detail_set(det, "bundle: a base64 string or null");
        goto out;
    }
    if (json_is_string(v)) {
        size_t tlen = json_string_length(v);
        size_t max = OTA_BASE64_DECODED_MAX(tlen);
        size_t n = 0;
        uint8_t *p;

        if (max > OTA_CHECKIN_BUNDLE_MAX) {
            ota_detail_set(det, "bundle: above %u bytes", OTA_CHECKIN_BUNDLE_MAX);
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        p = malloc(max ? max : 1);
        if (p == NULL) {
            rc = OTA_ERR_NOMEM;
            goto out;
        }
        if (ota_base64_decode(p, max, &n, json_string_value(v), tlen) != 0 || n == 0) {
            free(p);
            ota_detail_set(det, "bundle: not canonical base64 of at least one byte");
            goto out;
        }
        ota_buf_free(bundle);
        rc = ota_buf_append(bundle, p, n);
        free(p);
        if (rc != 0)
            goto out;
        r->bundle = bundle->data;
        r->bundle_len = bundle->len;
    }
    rc = 0;
out:
    json_decref(doc);
    if (rc != 0) {
        memset(r, 0, sizeof(*r));
        ota_buf_free(bundle);
    }
    return rc;
}
