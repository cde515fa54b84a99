/* The install journal (journal.h). */
#include "otachain/journal.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/clock.h"
#include "otachain/cjson.h"

static const char *const phase_names[] = {"idle", "fetching", "installed", "armed", "rolling_back"};
static const char *const outcome_names[] = {"none", "committed", "rolled_back", "fell_back",
                                            "failed"};

#define NPHASES   (sizeof(phase_names) / sizeof(phase_names[0]))
#define NOUTCOMES (sizeof(outcome_names) / sizeof(outcome_names[0]))

const char *ota_journal_phase_name(enum ota_journal_phase p)
{
    return (unsigned)p < NPHASES ? phase_names[p] : "?";
}

const char *ota_journal_outcome_name(enum ota_journal_outcome o)
{
    return (unsigned)o < NOUTCOMES ? outcome_names[o] : "?";
}

/* ----------------------------------------------------------------- parse */

static int bad(struct ota_detail *det, const char *what)
{
    ota_detail_set(det, "journal field %s is missing or malformed", what);
    return OTA_ERR_JOURNAL;
}

static int get_str(char *dst, size_t cap, json_t *obj, const char *key, bool required,
                   struct ota_detail *det)
{
    json_t *v = json_object_get(obj, key);
    size_t n;

    dst[0] = '\0';
    if (v == NULL && !required)
        return 0;
    if (!json_is_string(v))
        return bad(det, key);
    n = json_string_length(v);
    if (n >= cap || strlen(json_string_value(v)) != n)
        return bad(det, key);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)json_string_value(v)[i] < 0x20)
            return bad(det, key);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

static int get_u64(uint64_t *dst, json_t *obj, const char *key, struct ota_detail *det)
{
    json_t *v = json_object_get(obj, key);

    *dst = 0;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad(det, key);
    *dst = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_hash(uint8_t *dst, json_t *obj, const char *key, struct ota_detail *det)
{
    char hex[OTA_SHA256_HEX_LEN + 1];
    int rc = get_str(hex, sizeof(hex), obj, key, false, det);

    memset(dst, 0, OTA_SHA256_LEN);
    if (rc != 0)
        return rc;
    if (hex[0] == '\0')
        return 0;
    if (strlen(hex) != OTA_SHA256_HEX_LEN || ota_hex_decode(dst, OTA_SHA256_LEN, hex) != 0)
        return bad(det, key);
    return 0;
}

static int get_enum(unsigned *dst, json_t *obj, const char *key, const char *const *names,
                    unsigned n, struct ota_detail *det)
{
    const char *s = json_string_value(json_object_get(obj, key));

    *dst = 0;
    if (s == NULL)
        return bad(det, key);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    return bad(det, key);
}

static int get_release(struct ota_journal_release *r, json_t *obj, const char *key,
                       struct ota_detail *det)
{
    json_t *o = json_object_get(obj, key);
    int rc;

    memset(r, 0, sizeof(*r));
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return bad(det, key);
    rc = get_str(r->slot, sizeof(r->slot), o, "slot", true, det);
    if (rc == 0)
        rc = get_str(r->target, sizeof(r->target), o, "target", false, det);
    if (rc == 0)
        rc = get_str(r->version, sizeof(r->version), o, "version", true, det);
    if (rc == 0)
        rc = get_hash(r->sha256, o, "sha256", det);
    if (rc == 0)
        rc = get_u64(&r->length, o, "length", det);
    if (rc == 0)
        rc = get_u64(&r->security_version, o, "security_version", det);
    if (rc != 0)
        ota_detail_prefix(det, key);
    return rc;
}

int ota_journal_parse(struct ota_journal *out, const void *data, size_t len, struct ota_detail *det)
{
    const struct ota_json_limits lim = {OTA_JOURNAL_MAX_LEN, 4, 0, 1};
    json_t *root = NULL, *blocked, *v;
    uint64_t u;
    unsigned e;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ota_json_parse(&root, data, len, &lim, det);
    if (rc != 0) {
        ota_detail_prefix(det, "journal");
        return rc == OTA_ERR_NOMEM ? rc : OTA_ERR_JOURNAL;
    }
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "format")) != 1) {
        rc = bad(det, "format");
        goto out;
    }
    rc = get_enum(&e, root, "phase", phase_names, NPHASES, det);
    out->phase = (enum ota_journal_phase)e;
    if (rc == 0)
        rc = get_release(&out->installed, root, "installed", det);
    if (rc == 0)
        rc = get_release(&out->pending, root, "pending", det);
    if (rc == 0 && out->phase != OTA_PHASE_IDLE && out->pending.slot[0] == '\0')
        rc = bad(det, "pending");
    if (rc == 0)
        rc = get_u64(&out->security_floor, root, "security_floor", det);
    blocked = json_object_get(root, "blocked");
    if (rc == 0 && blocked != NULL) {
        size_t i;

        if (!json_is_array(blocked) || json_array_size(blocked) > OTA_JOURNAL_MAX_BLOCKED)
            rc = bad(det, "blocked");
        json_array_foreach(blocked, i, v)
        {
            const char *hex = json_string_value(v);

            if (rc != 0)
                break;
            if (hex == NULL || strlen(hex) != OTA_SHA256_HEX_LEN ||
                ota_hex_decode(out->blocked[i], OTA_SHA256_LEN, hex) != 0)
                rc = bad(det, "blocked");
            else
                out->nblocked++;
        }
    }
    v = json_object_get(root, "outcome");
    if (rc == 0 && v != NULL) {
        if (!json_is_object(v)) {
            rc = bad(det, "outcome");
        } else {
            rc = get_enum(&e, v, "result", outcome_names, NOUTCOMES, det);
            out->outcome = (enum ota_journal_outcome)e;
            if (rc == 0)
                rc = get_str(out->outcome_version, sizeof(out->outcome_version), v, "version",
                             false, det);
            if (rc == 0)
                rc = get_str(out->outcome_target, sizeof(out->outcome_target), v, "target", false,
                             det);
            if (rc == 0)
                rc =
                    get_str(out->outcome_error, sizeof(out->outcome_error), v, "error", false, det);
            if (rc == 0)
                rc = get_str(out->outcome_detail, sizeof(out->outcome_detail), v, "detail", false,
                             det);
            out->outcome_time = OTA_TIME_NONE;
            if (rc == 0 && json_object_get(v, "time") != NULL) {
                rc = get_u64(&u, v, "time", det);
                if (rc == 0 && u > INT64_MAX)
                    rc = bad(det, "time");
                out->outcome_time = (int64_t)u;
            }
            if (rc == 0) {
                json_t *r = json_object_get(v, "reported");

                if (r != NULL && !json_is_boolean(r))
                    rc = bad(det, "reported");
                out->reported = json_is_true(r);
            }
        }
    }
out:
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int ota_journal_load(struct ota_journal *out, const char *state_dir, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->outcome_time = OTA_TIME_NONE;
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, OTA_JOURNAL_FILE) >= (int)sizeof(path))
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_read_nofollow(&data, &len, path, OTA_JOURNAL_MAX_LEN);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc == OTA_ERR_TOO_LARGE) {
        ota_detail_set(det, "%s: larger than %u bytes", path, OTA_JOURNAL_MAX_LEN);
        return OTA_ERR_JOURNAL;
    }
    if (rc != 0 && rc != OTA_ERR_NOMEM) {
        /* Unreadable (an I/O error, a symlink, not a regular file, no
         * permission): the same condition for the agent as a malformed
         * one, named by the read's own error. */
        ota_detail_set(det, "%s: cannot be read (%s: %s)", path, ota_errname(rc), ota_strerror(rc));
        return OTA_ERR_JOURNAL;
    }
    if (rc == 0)
        rc = ota_journal_parse(out, data, len, det);
    if (rc != 0)
        ota_detail_prefix(det, path);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- encode */

static json_t *release_json(const struct ota_journal_release *r)
{
    char hex[OTA_SHA256_HEX_LEN + 1];
    uint8_t zero[OTA_SHA256_LEN] = {0};

    ota_hex_encode(hex, r->sha256, OTA_SHA256_LEN);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "slot", r->slot, "target", r->target,
                     "version", r->version, "sha256",
                     memcmp(r->sha256, zero, OTA_SHA256_LEN) == 0 ? "" : hex, "length",
                     (json_int_t)r->length, "security_version", (json_int_t)r->security_version);
}

int ota_journal_encode(char **out, size_t *out_len, const struct ota_journal *j)
{
    json_t *root = json_object(), *blocked = json_array(), *o;
    char hex[OTA_SHA256_HEX_LEN + 1];
    int rc = 0;

    *out = NULL;
    *out_len = 0;
    if (root == NULL || blocked == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    if (json_object_set_new(root, "format", json_integer(1)) != 0 ||
        json_object_set_new(root, "phase", json_string(ota_journal_phase_name(j->phase))) != 0 ||
        json_object_set_new(root, "security_floor", json_integer((json_int_t)j->security_floor)) !=
            0)
        rc = OTA_ERR_NOMEM;
    if (rc == 0 && j->installed.slot[0] != '\0' &&
        json_object_set_new(root, "installed", release_json(&j->installed)) != 0)
        rc = OTA_ERR_NOMEM;
    if (rc == 0 && j->phase != OTA_PHASE_IDLE &&
        json_object_set_new(root, "pending", release_json(&j->pending)) != 0)
        rc = OTA_ERR_NOMEM;
    for (unsigned i = 0; rc == 0 && i < j->nblocked; i++) {
        ota_hex_encode(hex, j->blocked[i], OTA_SHA256_LEN);
        if (json_array_append_new(blocked, json_string(hex)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0 && json_object_set(root, "blocked", blocked) != 0)
        rc = OTA_ERR_NOMEM;
    if (rc == 0 && j->outcome != OTA_OUTCOME_NONE) {
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "result",
                      ota_journal_outcome_name(j->outcome), "version", j->outcome_version, "target",
                      j->outcome_target, "error", j->outcome_error, "detail", j->outcome_detail,
                      "reported", j->reported);
        if (o != NULL && j->outcome_time != OTA_TIME_NONE && j->outcome_time >= 0 &&
            json_object_set_new(o, "time", json_integer((json_int_t)j->outcome_time)) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_object_set_new(root, "outcome", o) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0) {
        *out = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (*out == NULL)
            rc = OTA_ERR_NOMEM;
        else
            *out_len = strlen(*out);
    }
out:
    json_decref(blocked);
    json_decref(root);
    return rc;
}

int ota_journal_store(const struct ota_journal *j, const char *state_dir,
                      const struct ota_fs_hook *hook, struct ota_detail *det)
{
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", state_dir, OTA_JOURNAL_FILE) >= (int)sizeof(path))
        return OTA_ERR_INVALID_ARG;
    rc = ota_journal_encode(&text, &len, j);
    if (rc == 0)
        rc = ota_fs_replace(path, text, len, 0600, hook);
    if (rc != 0)
        ota_detail_set(det, "writing the journal %s", path);
    free(text);
    return rc;
}

bool ota_journal_is_blocked(const struct ota_journal *j, const uint8_t sha256[OTA_SHA256_LEN])
{
    for (unsigned i = 0; i < j->nblocked; i++)
        if (memcmp(j->blocked[i], sha256, OTA_SHA256_LEN) == 0)
            return true;
    return false;
}

void ota_journal_block(struct ota_journal *j, const uint8_t sha256[OTA_SHA256_LEN])
{
    if (ota_journal_is_blocked(j, sha256))
        return;
    if (j->nblocked == OTA_JOURNAL_MAX_BLOCKED) {
        memmove(j->blocked[0], j->blocked[1], (OTA_JOURNAL_MAX_BLOCKED - 1) * OTA_SHA256_LEN);
        j->nblocked--;
    }
    memcpy(j->blocked[j->nblocked++], sha256, OTA_SHA256_LEN);
}
