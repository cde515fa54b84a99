/* Fleet logic over any fleet store (fleet_store.h): what a check-in
 * changes, when it is an event, and the admin tokens' format. Backend
 * independent, so SQLite and PostgreSQL behave alike.
 *
 * A check-in (docs/api/device-v1.md) replaces the device's state row and
 * records an event only when a listed field changed:
 *
 *   running.product  running.hardware  running.version  running.target
 *   running.slot     update.state      update.target    last_error.name
 *   trusted.root_version                (and the first check-in)
 *
 * update.progress, last_error.detail, trusted.timestamp_version and
 * trusted.checkpoint change only the row. A report of "failed" or
 * "rolled_back" adds its target to the device's failed set (never
 * assigned to it again).
 */
#ifndef OTACHAIN_FLEET_H
#define OTACHAIN_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/fleet_store.h"

/* Fields whose change is an event (bits of ota_fleet_checkin_result). */
enum {
    OTA_FLEET_F_PRODUCT = 1u << 0,
    OTA_FLEET_F_HARDWARE = 1u << 1,
    OTA_FLEET_F_VERSION = 1u << 2,
    OTA_FLEET_F_TARGET = 1u << 3,
    OTA_FLEET_F_SLOT = 1u << 4,
    OTA_FLEET_F_STATE = 1u << 5,
    OTA_FLEET_F_STATE_TARGET = 1u << 6,
    OTA_FLEET_F_ERROR = 1u << 7,
    OTA_FLEET_F_ROOT = 1u << 8,
};
#define OTA_FLEET_F_COUNT 9

/* The event field name of bit i ("running.product", ...). */
const char *ota_fleet_field_name(unsigned bit_index);

struct ota_fleet_retention {
    unsigned max_events_per_device; /* >= 1 */
};

struct ota_fleet_checkin_result {
    bool first;        /* the device's first check-in */
    unsigned changed;  /* OTA_FLEET_F_* bits that changed */
    bool event;        /* an event was recorded */
    uint64_t event_id; /* ...with this id */
    uint64_t trimmed;  /* old events dropped by the per-device cap */
};

/* Applies report as device's check-in at now, from the certificate with
 * serial ("" unknown), inside the caller's transaction: reads the old
 * row, writes the new one, records the event and the failed target as
 * the top of this file says, and trims the device's events. */
OTA_WUR int ota_fleet_checkin(struct ota_fleet_store *s, struct ota_fleet_checkin_result *res,
                              const char *device, const char *serial,
                              const struct ota_checkin *report, int64_t now,
                              const struct ota_fleet_retention *ret, struct ota_detail *det);

/* Which listed fields differ between a and b (OTA_FLEET_F_* bits). */
unsigned ota_fleet_diff(const struct ota_checkin *a, const struct ota_checkin *b);

/* Appends the event JSON for the changed fields ({"field": [old, new]},
 * old null when old_report is NULL) to out. */
OTA_WUR int ota_fleet_changes_json(struct ota_buf *out, const struct ota_checkin *old_report,
                                   const struct ota_checkin *new_report, unsigned changed);

/* ---- admin tokens: "ota1.<16 hex id>.<64 hex secret>" ---- */

#define OTA_FLEET_TOKEN_TEXT_MAX 96

/* Makes a new token: its text (shown once) and the record to store
 * (id, SHA-256 of the secret; name, scopes, created, created_by filled
 * from the arguments). */
OTA_WUR int ota_fleet_token_new(char text[OTA_FLEET_TOKEN_TEXT_MAX + 1],
                                struct ota_fleet_token *rec, const char *name, unsigned scopes,
                                int64_t now, const char *created_by, struct ota_detail *det);

/* Splits a presented token into its id and the SHA-256 of its secret.
 * OTA_ERR_AUTH when it is not of the token form. */
OTA_WUR int ota_fleet_token_parse(char id[OTA_FLEET_TOKEN_ID + 1], uint8_t hash[32],
                                  const char *text, size_t len);

/* Whether a stored token matches (constant-time hash comparison), is not
 * revoked and has every scope of need (admin implies all). 0, or
 * OTA_ERR_AUTH (no such token / wrong secret), OTA_ERR_REVOKED,
 * OTA_ERR_SCOPE. */
OTA_WUR int ota_fleet_token_check(const struct ota_fleet_token *stored, const uint8_t hash[32],
                                  unsigned need);

/* "read,release" <-> bits; parse refuses unknown or repeated names
 * (OTA_ERR_INVALID_ARG) and the empty list. */
OTA_WUR int ota_fleet_scopes_parse(unsigned *scopes, const char *text);
void ota_fleet_scopes_format(char *out, size_t cap, unsigned scopes);

/* The name of one scope bit ("read", "release", "rollout", "admin"). */
const char *ota_fleet_scope_name(unsigned bit);

#endif
