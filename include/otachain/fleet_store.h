/* The fleet database of otachain-server (docs/server.md "Database"):
 * devices' current state, events, failure reports, revocations, admin
 * tokens, the audit trail and split-view flags. Behind this interface so
 * that a PostgreSQL backend joins the SQLite one (fleet_store_sqlite.c)
 * without a change here; nothing in it is SQLite's.
 *
 * Threading: a store handle is used by one thread at a time (the
 * server's database thread). Several processes may open the same
 * database (the server and `otachain-server token create`).
 *
 * Transactions. Changes happen between begin() and commit(); a change
 * outside a transaction is refused (OTA_ERR_INVALID_ARG). Inside one,
 * savepoint() / release() / rollback_to() isolate one unit of work (one
 * request of a group commit), so a failing request does not undo the
 * others. Reads see the store's own uncommitted writes.
 *
 *        begin()                         commit() / rollback()
 *   IDLE ───────► IN_TXN ──savepoint()──► IN_SAVEPOINT
 *                   ▲                        │ release() / rollback_to()
 *                   └────────────────────────┘
 *
 * Every string has the cap of its field below (longer: OTA_ERR_TOO_LARGE
 * from put); ids are [A-Za-z0-9._-]{1,64}. List functions call fn for
 * each row in the stated order and stop at fn's first non-zero return,
 * which they return.
 */
#ifndef OTACHAIN_FLEET_STORE_H
#define OTACHAIN_FLEET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/cert.h"
#include "otachain/checkin.h"
#include "otachain/err.h"

/* The schema version this code reads and writes (migrations 1..N). */
#define OTA_FLEET_SCHEMA_VERSION 1

#define OTA_FLEET_REASON_MAX  256
#define OTA_FLEET_ACTOR_MAX   128
#define OTA_FLEET_ACTION_MAX  64
#define OTA_FLEET_OBJECT_MAX  255
#define OTA_FLEET_DETAIL_MAX  512
#define OTA_FLEET_CHANGES_MAX 4096 /* an event's changes (JSON) */
#define OTA_FLEET_TOKEN_ID    16   /* hex digits of a token id */

/* A device's current state: its last check-in and when things happened. */
struct ota_fleet_device {
    char id[OTA_CERT_ID_MAX + 1];
    struct ota_checkin report;
    int64_t first_seen;
    int64_t last_seen;
    int64_t update_since; /* when report.state was entered */
    int64_t progress_at;  /* last progress: a new state or a new progress value */
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1]; /* certificate of the last check-in ("" unknown) */
};

struct ota_fleet_event {
    uint64_t id; /* increasing */
    char device[OTA_CERT_ID_MAX + 1];
    int64_t at;
    char changes[OTA_FLEET_CHANGES_MAX + 1]; /* JSON object: field -> [old, new] */
};

enum ota_fleet_revoke_kind {
    OTA_FLEET_REVOKE_DEVICE = 0,      /* id = device id: all its certificates */
    OTA_FLEET_REVOKE_CERTIFICATE = 1, /* id = serial (normalised hex) */
};

struct ota_fleet_revocation {
    enum ota_fleet_revoke_kind kind;
    char id[OTA_CERT_SERIAL_HEX_MAX + 1];
    int64_t at;
    char reason[OTA_FLEET_REASON_MAX + 1];
    char actor[OTA_FLEET_ACTOR_MAX + 1];
};

/* Token scopes (a bit set). */
enum {
    OTA_FLEET_SCOPE_READ = 1u << 0,
    OTA_FLEET_SCOPE_RELEASE = 1u << 1,
    OTA_FLEET_SCOPE_ROLLOUT = 1u << 2,
    OTA_FLEET_SCOPE_ADMIN = 1u << 3,
};
#define OTA_FLEET_SCOPE_ALL 0xfu

struct ota_fleet_token {
    char id[OTA_FLEET_TOKEN_ID + 1];
    uint8_t hash[32]; /* SHA-256 of the secret part */
    char name[OTA_CERT_ID_MAX + 1];
    unsigned scopes;
    int64_t created;
    char created_by[OTA_FLEET_ACTOR_MAX + 1];
    int64_t revoked; /* 0: not revoked */
};

struct ota_fleet_audit {
    uint64_t id; /* assigned by audit_add */
    int64_t at;
    char actor[OTA_FLEET_ACTOR_MAX + 1];
    char action[OTA_FLEET_ACTION_MAX + 1];
    char object[OTA_FLEET_OBJECT_MAX + 1];
    char outcome[OTA_FLEET_ACTION_MAX + 1];
    char detail[OTA_FLEET_DETAIL_MAX + 1];
};

/* A device whose reported checkpoint is not consistent with the log. */
struct ota_fleet_flag {
    char device[OTA_CERT_ID_MAX + 1];
    int64_t at;
    uint64_t size;
    uint8_t hash[32];
    char reason[OTA_FLEET_REASON_MAX + 1];
};

struct ota_fleet_store;

struct ota_fleet_store_ops {
    int (*begin)(struct ota_fleet_store *s, struct ota_detail *det);
    int (*commit)(struct ota_fleet_store *s, struct ota_detail *det);
    void (*rollback)(struct ota_fleet_store *s);
    int (*savepoint)(struct ota_fleet_store *s, struct ota_detail *det);
    int (*release)(struct ota_fleet_store *s, struct ota_detail *det);
    void (*rollback_to)(struct ota_fleet_store *s);

    /* Devices, by id. get: *found false (and out zeroed) when absent. */
    int (*device_get)(struct ota_fleet_store *s, const char *id, struct ota_fleet_device *out,
                      bool *found, struct ota_detail *det);
    int (*device_put)(struct ota_fleet_store *s, const struct ota_fleet_device *d,
                      struct ota_detail *det);
    /* In id order, after `after` ("" from the start), at most limit. */
    int (*device_list)(struct ota_fleet_store *s, const char *after, unsigned limit,
                       int (*fn)(void *ctx, const struct ota_fleet_device *d), void *ctx,
                       struct ota_detail *det);
    int (*device_count)(struct ota_fleet_store *s, uint64_t *n, struct ota_detail *det);

    /* Events: add assigns the id; list is newest first, ids below
     * `before` (0: from the newest); trim keeps the newest `keep` of a
     * device; expire drops every event older than `before` (time). */
    int (*event_add)(struct ota_fleet_store *s, const char *device, int64_t at, const char *changes,
                     uint64_t *id, struct ota_detail *det);
    int (*event_list)(struct ota_fleet_store *s, const char *device, uint64_t before,
                      unsigned limit, int (*fn)(void *ctx, const struct ota_fleet_event *e),
                      void *ctx, struct ota_detail *det);
    int (*event_trim)(struct ota_fleet_store *s, const char *device, unsigned keep,
                      uint64_t *removed, struct ota_detail *det);
    int (*event_expire)(struct ota_fleet_store *s, int64_t before, uint64_t *removed,
                        struct ota_detail *det);

    /* Targets a device reported as failed or rolled back (a set). */
    int (*failed_add)(struct ota_fleet_store *s, const char *device, const char *target, int64_t at,
                      struct ota_detail *det);
    int (*failed_list)(struct ota_fleet_store *s, const char *device,
                       int (*fn)(void *ctx, const char *target), void *ctx, struct ota_detail *det);

    /* Revocations. put: OTA_ERR_EXISTS if (kind, id) is revoked already.
     * check: the revocation of the device id or of the serial ("" none),
     * device first; *revoked false when neither is. */
    int (*revoke_put)(struct ota_fleet_store *s, const struct ota_fleet_revocation *r,
                      struct ota_detail *det);
    int (*revoke_check)(struct ota_fleet_store *s, const char *device, const char *serial,
                        bool *revoked, struct ota_fleet_revocation *out, struct ota_detail *det);
    int (*revoke_list)(struct ota_fleet_store *s,
                       int (*fn)(void *ctx, const struct ota_fleet_revocation *r), void *ctx,
                       struct ota_detail *det);

    /* Tokens. put: OTA_ERR_EXISTS for a taken id; revoke: OTA_ERR_NOT_FOUND
     * for an unknown id, OTA_ERR_EXISTS if revoked already. */
    int (*token_put)(struct ota_fleet_store *s, const struct ota_fleet_token *t,
                     struct ota_detail *det);
    int (*token_get)(struct ota_fleet_store *s, const char *id, struct ota_fleet_token *out,
                     bool *found, struct ota_detail *det);
    int (*token_list)(struct ota_fleet_store *s,
                      int (*fn)(void *ctx, const struct ota_fleet_token *t), void *ctx,
                      struct ota_detail *det);
    int (*token_revoke)(struct ota_fleet_store *s, const char *id, int64_t at,
                        struct ota_detail *det);

    /* The audit trail: add assigns a->id; list newest first, ids below
     * `before` (0: from the newest). */
    int (*audit_add)(struct ota_fleet_store *s, struct ota_fleet_audit *a, struct ota_detail *det);
    int (*audit_list)(struct ota_fleet_store *s, uint64_t before, unsigned limit,
                      int (*fn)(void *ctx, const struct ota_fleet_audit *a), void *ctx,
                      struct ota_detail *det);

    /* Flags, one per device: put keeps the first (OTA_ERR_EXISTS after);
     * clear: OTA_ERR_NOT_FOUND when there is none. */
    int (*flag_put)(struct ota_fleet_store *s, const struct ota_fleet_flag *f,
                    struct ota_detail *det);
    int (*flag_list)(struct ota_fleet_store *s,
                     int (*fn)(void *ctx, const struct ota_fleet_flag *f), void *ctx,
                     struct ota_detail *det);
    int (*flag_clear)(struct ota_fleet_store *s, const char *device, struct ota_detail *det);
    int (*flag_count)(struct ota_fleet_store *s, uint64_t *n, struct ota_detail *det);

    /* Rolls back an open transaction, closes and frees. */
    void (*close)(struct ota_fleet_store *s);
};

/* A store handle: backends embed it first in their own struct. */
struct ota_fleet_store {
    const struct ota_fleet_store_ops *ops;
};

/* How durable a commit is (SQLite: PRAGMA synchronous; docs/server.md
 * says what each promises across a power cut). */
enum ota_fleet_sync {
    OTA_FLEET_SYNC_FULL = 0,   /* a commit survives a power cut */
    OTA_FLEET_SYNC_NORMAL = 1, /* the last commits may be lost, never corrupted */
};

/* Opens (creating it, mode 0600) the SQLite fleet database at path, in
 * WAL mode, and migrates its schema to OTA_FLEET_SCHEMA_VERSION (each
 * migration one transaction). OTA_ERR_SCHEMA for a database of a newer
 * schema or not a fleet database; OTA_ERR_IO with det otherwise. */
OTA_WUR int ota_fleet_store_sqlite_open(struct ota_fleet_store **out, const char *path,
                                        enum ota_fleet_sync sync, struct ota_detail *det);

/* The schema version of the database at path (0: no fleet schema yet),
 * without changing it. */
OTA_WUR int ota_fleet_store_sqlite_version(unsigned *version, const char *path,
                                           struct ota_detail *det);

/* Closes; accepts NULL. */
void ota_fleet_store_close(struct ota_fleet_store *s);

#endif
