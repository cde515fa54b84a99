/* Fleet logic over any fleet store (fleet.h). */
#include "otachain/fleet.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "otachain/crypto.h"

static const char *const field_names[OTA_FLEET_F_COUNT] = {
    "running.product", "running.hardware", "running.version",
    "running.target",  "running.slot",     "update.state",
    "update.target",   "last_error.name",  "trusted.root_version",
};

const char *ota_fleet_field_name(unsigned i)
{
    return i < OTA_FLEET_F_COUNT ? field_names[i] : "?";
}

unsigned ota_fleet_diff(const struct ota_checkin *a, const struct ota_checkin *b)
{
    unsigned c = 0;

    if (strcmp(a->product, b->product) != 0)
        c |= OTA_FLEET_F_PRODUCT;
    if (strcmp(a->hardware, b->hardware) != 0)
        c |= OTA_FLEET_F_HARDWARE;
    if (strcmp(a->version, b->version) != 0)
        c |= OTA_FLEET_F_VERSION;
    if (strcmp(a->target, b->target) != 0)
        c |= OTA_FLEET_F_TARGET;
    if (strcmp(a->slot, b->slot) != 0)
        c |= OTA_FLEET_F_SLOT;
    if (a->state != b->state)
        c |= OTA_FLEET_F_STATE;
    if (strcmp(a->state_target, b->state_target) != 0)
        c |= OTA_FLEET_F_STATE_TARGET;
    if (strcmp(a->error_name, b->error_name) != 0)
        c |= OTA_FLEET_F_ERROR;
    if (a->root_version != b->root_version)
        c |= OTA_FLEET_F_ROOT;
    return c;
}

/* Appends a JSON string, or null for an absent ("") value. */
static int put_val(struct ota_buf *b, const char *s)
{
    int rc;

    if (s == NULL || s[0] == '\0')
        return ota_buf_append_str(b, "null");
    rc = ota_buf_append(b, "\"", 1);
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

/* The value of field i of r as text ("" absent). */
static const char *field_text(const struct ota_checkin *r, unsigned i, char num[24])
{
    switch (i) {
    case 0:
        return r->product;
    case 1:
        return r->hardware;
    case 2:
        return r->version;
    case 3:
        return r->target;
    case 4:
        return r->slot;
    case 5:
        return r->state == OTA_UPDATE_NONE ? "" : ota_update_state_name(r->state);
    case 6:
        return r->state_target;
    case 7:
        return r->error_name;
    default:
        snprintf(num, 24, "%llu", (unsigned long long)r->root_version);
        return num;
    }
}

int ota_fleet_changes_json(struct ota_buf *out, const struct ota_checkin *old_report,
                           const struct ota_checkin *new_report, unsigned changed)
{
    bool first = true;
    int rc = ota_buf_append(out, "{", 1);

    for (unsigned i = 0; rc == 0 && i < OTA_FLEET_F_COUNT; i++) {
        char n_old[24];
        char n_new[24];

        if (!(changed & (1u << i)))
            continue;
        rc = ota_buf_printf(out, "%s\"%s\":[", first ? "" : ",", field_names[i]);
        first = false;
        if (rc == 0 && i == 8) {
            /* root_version is a number. */
            if (old_report != NULL)
                rc = ota_buf_append_str(out, field_text(old_report, i, n_old));
            else
                rc = ota_buf_append_str(out, "null");
            if (rc == 0)
                rc = ota_buf_printf(out, ",%s]", field_text(new_report, i, n_new));
            continue;
        }
        if (rc == 0)
            rc = put_val(out, old_report ? field_text(old_report, i, n_old) : NULL);
        if (rc == 0)
            rc = ota_buf_append(out, ",", 1);
        if (rc == 0)
            rc = put_val(out, field_text(new_report, i, n_new));
        if (rc == 0)
            rc = ota_buf_append(out, "]", 1);
    }
    return rc == 0 ? ota_buf_append(out, "}", 1) : rc;
}

int ota_fleet_checkin(struct ota_fleet_store *s, struct ota_fleet_checkin_result *res,
                      const char *device, const char *serial, const struct ota_checkin *report,
                      int64_t now, const struct ota_fleet_retention *ret, struct ota_detail *det)
{
    struct ota_fleet_device old;
    struct ota_fleet_device cur;
    bool found = false;
    int rc;

    memset(res, 0, sizeof(*res));
    if (!ota_cert_id_valid(device, strlen(device)) || strlen(serial) > OTA_CERT_SERIAL_HEX_MAX ||
        ret == NULL || ret->max_events_per_device == 0)
        return OTA_ERR_INVALID_ARG;
    rc = s->ops->device_get(s, device, &old, &found, det);
    if (rc != 0)
        return rc;
    memset(&cur, 0, sizeof(cur));
    memcpy(cur.id, device, strlen(device) + 1);
    memcpy(cur.serial, serial, strlen(serial) + 1);
    cur.report = *report;
    cur.last_seen = now;
    if (!found) {
        res->first = true;
        res->changed = ota_fleet_diff(&old.report, report);
        /* Every field the device reports is news the first time. */
        res->changed |=
            OTA_FLEET_F_PRODUCT | OTA_FLEET_F_HARDWARE | OTA_FLEET_F_VERSION | OTA_FLEET_F_ROOT;
        cur.first_seen = now;
        cur.update_since = now;
        cur.progress_at = now;
    } else {
        res->changed = ota_fleet_diff(&old.report, report);
        cur.first_seen = old.first_seen;
        cur.update_since = old.update_since;
        cur.progress_at = old.progress_at;
        if (res->changed & (OTA_FLEET_F_STATE | OTA_FLEET_F_STATE_TARGET)) {
            cur.update_since = now;
            cur.progress_at = now;
        } else if (report->has_progress != old.report.has_progress ||
                   report->progress != old.report.progress) {
            cur.progress_at = now;
        }
    }
    rc = s->ops->device_put(s, &cur, det);
    if (rc == 0 && (report->state == OTA_UPDATE_FAILED || report->state == OTA_UPDATE_ROLLED_BACK))
        rc = s->ops->failed_add(s, device, report->state_target, now, det);
    if (rc == 0 && (res->first || res->changed != 0)) {
        struct ota_buf changes;

        ota_buf_init(&changes, OTA_FLEET_CHANGES_MAX);
        rc =
            ota_fleet_changes_json(&changes, res->first ? NULL : &old.report, report, res->changed);
        if (rc == 0)
            rc = s->ops->event_add(s, device, now, (const char *)changes.data, &res->event_id, det);
        ota_buf_free(&changes);
        if (rc == 0) {
            res->event = true;
            rc = s->ops->event_trim(s, device, ret->max_events_per_device, &res->trimmed, det);
        }
    }
    if (rc != 0)
        memset(res, 0, sizeof(*res));
    return rc;
}

/* ---- tokens ---- */

static const char *const scope_names[] = {"read", "release", "rollout", "admin"};

const char *ota_fleet_scope_name(unsigned bit)
{
    for (unsigned i = 0; i < 4; i++) {
        if (bit == (1u << i))
            return scope_names[i];
    }
    return "?";
}

int ota_fleet_scopes_parse(unsigned *scopes, const char *text)
{
    const char *p = text;

    *scopes = 0;
    if (text == NULL || text[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        unsigned i;

        for (i = 0; i < 4; i++) {
            if (strlen(scope_names[i]) == n && memcmp(p, scope_names[i], n) == 0)
                break;
        }
        if (i == 4 || (*scopes & (1u << i))) {
            *scopes = 0;
            return OTA_ERR_INVALID_ARG;
        }
        *scopes |= 1u << i;
        if (end == NULL)
            break;
        p = end + 1;
        if (*p == '\0') {
            *scopes = 0;
            return OTA_ERR_INVALID_ARG;
        }
    }
    return 0;
}

void ota_fleet_scopes_format(char *out, size_t cap, unsigned scopes)
{
    size_t o = 0;

    if (cap == 0)
        return;
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++) {
        if (!(scopes & (1u << i)))
            continue;
        int n = snprintf(out + o, cap - o, "%s%s", o ? "," : "", scope_names[i]);
        if (n < 0 || (size_t)n >= cap - o)
            return;
        o += (size_t)n;
    }
}

int ota_fleet_token_new(char text[OTA_FLEET_TOKEN_TEXT_MAX + 1], struct ota_fleet_token *rec,
                        const char *name, unsigned scopes, int64_t now, const char *created_by,
                        struct ota_detail *det)
{
    uint8_t id[OTA_FLEET_TOKEN_ID / 2];
    uint8_t secret[32];
    char secret_hex[2 * sizeof(secret) + 1];
    int rc;

    text[0] = '\0';
    memset(rec, 0, sizeof(*rec));
    if (name == NULL || !ota_cert_id_valid(name, strlen(name))) {
        ota_detail_set(det, "token name: 1-64 characters [A-Za-z0-9._-]");
        return OTA_ERR_INVALID_ARG;
    }
    if (scopes == 0 || (scopes & ~OTA_FLEET_SCOPE_ALL) != 0) {
        ota_detail_set(det, "token scopes: one or more of read, release, rollout, admin");
        return OTA_ERR_INVALID_ARG;
    }
    if (created_by == NULL || strlen(created_by) > OTA_FLEET_ACTOR_MAX)
        return OTA_ERR_INVALID_ARG;
    if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
        return OTA_ERR_CRYPTO;
    ota_hex_encode(rec->id, id, sizeof(id));
    ota_hex_encode(secret_hex, secret, sizeof(secret));
    rc = ota_sha256(rec->hash, secret_hex, strlen(secret_hex));
    if (rc == 0) {
        snprintf(text, OTA_FLEET_TOKEN_TEXT_MAX + 1, "ota1.%s.%s", rec->id, secret_hex);
        memcpy(rec->name, name, strlen(name) + 1);
        memcpy(rec->created_by, created_by, strlen(created_by) + 1);
        rec->scopes = scopes;
        rec->created = now;
    }
    ota_wipe(secret, sizeof(secret));
    ota_wipe(secret_hex, sizeof(secret_hex));
    if (rc != 0) {
        ota_wipe(text, OTA_FLEET_TOKEN_TEXT_MAX + 1);
        memset(rec, 0, sizeof(*rec));
    }
    return rc;
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

int ota_fleet_token_parse(char id[OTA_FLEET_TOKEN_ID + 1], uint8_t hash[32], const char *text,
                          size_t len)
{
    const size_t want = 5 + OTA_FLEET_TOKEN_ID + 1 + 64;

    id[0] = '\0';
    memset(hash, 0, 32);
    if (text == NULL || len != want || memcmp(text, "ota1.", 5) != 0 ||
        text[5 + OTA_FLEET_TOKEN_ID] != '.' || !lower_hex(text + 5, OTA_FLEET_TOKEN_ID) ||
        !lower_hex(text + 6 + OTA_FLEET_TOKEN_ID, 64))
        return OTA_ERR_AUTH;
    memcpy(id, text + 5, OTA_FLEET_TOKEN_ID);
    id[OTA_FLEET_TOKEN_ID] = '\0';
    return ota_sha256(hash, text + 6 + OTA_FLEET_TOKEN_ID, 64) == 0 ? 0 : OTA_ERR_CRYPTO;
}

int ota_fleet_token_check(const struct ota_fleet_token *stored, const uint8_t hash[32],
                          unsigned need)
{
    if (stored == NULL || !ota_ct_equal(stored->hash, hash, 32))
        return OTA_ERR_AUTH;
    if (stored->revoked != 0)
        return OTA_ERR_REVOKED;
    if (!(stored->scopes & OTA_FLEET_SCOPE_ADMIN) && (stored->scopes & need) != need)
        return OTA_ERR_SCOPE;
    return 0;
}
