/* SQLite backend of the fleet store (otachain/fleet_store.h).
 *
 * One file in WAL mode. PRAGMA application_id marks it as a fleet
 * database ("otaf"), PRAGMA user_version is its schema version; each
 * migration runs in its own transaction and sets user_version with it,
 * so a crash leaves the schema at a whole version. Statements are
 * prepared once per handle (the check-in path runs four of them).
 *
 * Schema 1 (docs/server.md "Database"):
 *   devices(id PK, product, hardware, version, target, slot, state,
 *           state_target, has_progress, progress, error_name, error_detail,
 *           root_version, timestamp_version, snapshot_version, targets_version,
 *           checkpoint_size, checkpoint_hash,
 *           first_seen, last_seen, update_since, progress_at, serial)
 *   events(id PK AUTOINCREMENT, device, at, changes)  (device,id), (at)
 *   failed(device, target, at)             PK(device, target)
 *   revocations(kind, id, at, reason, actor) PK(kind, id)
 *   tokens(id PK, hash, name, scopes, created, created_by, revoked)
 *   audit(id PK AUTOINCREMENT, at, actor, action, object, outcome, detail)
 *   flags(device PK, at, size, hash, reason)
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/fleet_store.h"

#define APP_ID 0x6f746166 /* "otaf" */

static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE devices(id TEXT PRIMARY KEY, product TEXT NOT NULL, hardware TEXT NOT NULL,"
    " version TEXT NOT NULL, target TEXT NOT NULL, slot TEXT NOT NULL, state TEXT NOT NULL,"
    " state_target TEXT NOT NULL, has_progress INTEGER NOT NULL, progress INTEGER NOT NULL,"
    " error_name TEXT NOT NULL, error_detail TEXT NOT NULL, root_version INTEGER NOT NULL,"
    " timestamp_version INTEGER NOT NULL, snapshot_version INTEGER NOT NULL,"
    " targets_version INTEGER NOT NULL, checkpoint_size INTEGER, checkpoint_hash BLOB,"
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, update_since INTEGER NOT NULL,"
    " progress_at INTEGER NOT NULL, serial TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL,"
    " at INTEGER NOT NULL, changes TEXT NOT NULL);"
    "CREATE INDEX events_device ON events(device, id);"
    "CREATE INDEX events_at ON events(at);"
    "CREATE TABLE failed(device TEXT NOT NULL, target TEXT NOT NULL, at INTEGER NOT NULL,"
    " PRIMARY KEY(device, target)) WITHOUT ROWID;"
    "CREATE TABLE revocations(kind TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL,"
    " reason TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY(kind, id)) WITHOUT ROWID;"
    "CREATE TABLE tokens(id TEXT PRIMARY KEY, hash BLOB NOT NULL, name TEXT NOT NULL,"
    " scopes INTEGER NOT NULL, created INTEGER NOT NULL, created_by TEXT NOT NULL,"
    " revoked INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, outcome TEXT NOT NULL,"
    " detail TEXT NOT NULL);"
    "CREATE TABLE flags(device TEXT PRIMARY KEY, at INTEGER NOT NULL, size INTEGER NOT NULL,"
    " hash BLOB NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;",
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(NMIGRATIONS == OTA_FLEET_SCHEMA_VERSION, "one migration per schema version");

enum stmt {
    ST_DEV_GET,
    ST_DEV_PUT,
    ST_DEV_LIST,
    ST_DEV_COUNT,
    ST_EV_ADD,
    ST_EV_LIST,
    ST_EV_TRIM,
    ST_EV_EXPIRE,
    ST_FAIL_ADD,
    ST_FAIL_LIST,
    ST_REV_PUT,
    ST_REV_CHECK,
    ST_REV_LIST,
    ST_TOK_PUT,
    ST_TOK_GET,
    ST_TOK_LIST,
    ST_TOK_REVOKE,
    ST_AUD_ADD,
    ST_AUD_LIST,
    ST_FLAG_PUT,
    ST_FLAG_LIST,
    ST_FLAG_CLEAR,
    ST_FLAG_COUNT,
    ST_COUNT
};

#define DEV_COLS                                                                                   \
    "id, product, hardware, version, target, slot, state, state_target, has_progress, progress,"   \
    " error_name, error_detail, root_version, timestamp_version, snapshot_version,"                \
    " targets_version, checkpoint_size, checkpoint_hash, first_seen, last_seen, update_since,"     \
    " progress_at, serial"

static const char *const sql[ST_COUNT] = {
    [ST_DEV_GET] = "SELECT " DEV_COLS " FROM devices WHERE id = ?1",
    [ST_DEV_PUT] = "INSERT OR REPLACE INTO devices(" DEV_COLS ") VALUES"
                   " (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,"
                   " ?22,?23)",
    [ST_DEV_LIST] = "SELECT " DEV_COLS " FROM devices WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_DEV_COUNT] = "SELECT count(*) FROM devices",
    [ST_EV_ADD] = "INSERT INTO events(device, at, changes) VALUES (?1, ?2, ?3)",
    [ST_EV_LIST] = "SELECT id, device, at, changes FROM events WHERE device = ?1 AND id < ?2"
                   " ORDER BY id DESC LIMIT ?3",
    [ST_EV_TRIM] = "DELETE FROM events WHERE device = ?1 AND id <= (SELECT id FROM events"
                   " WHERE device = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    [ST_EV_EXPIRE] = "DELETE FROM events WHERE at < ?1",
    [ST_FAIL_ADD] = "INSERT OR IGNORE INTO failed(device, target, at) VALUES (?1, ?2, ?3)",
    [ST_FAIL_LIST] = "SELECT target FROM failed WHERE device = ?1 ORDER BY target",
    [ST_REV_PUT] = "INSERT INTO revocations(kind, id, at, reason, actor) VALUES (?1,?2,?3,?4,?5)",
    [ST_REV_CHECK] = "SELECT kind, id, at, reason, actor FROM revocations WHERE"
                     " (kind = 'device' AND id = ?1) OR (kind = 'certificate' AND id = ?2)"
                     " ORDER BY kind DESC LIMIT 1",
    [ST_REV_LIST] = "SELECT kind, id, at, reason, actor FROM revocations ORDER BY at, kind, id",
    [ST_TOK_PUT] = "INSERT INTO tokens(id, hash, name, scopes, created, created_by, revoked)"
                   " VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [ST_TOK_GET] = "SELECT id, hash, name, scopes, created, created_by, revoked FROM tokens"
                   " WHERE id = ?1",
    [ST_TOK_LIST] = "SELECT id, hash, name, scopes, created, created_by, revoked FROM tokens"
                    " ORDER BY created, id",
    [ST_TOK_REVOKE] = "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked = 0",
    [ST_AUD_ADD] = "INSERT INTO audit(at, actor, action, object, outcome, detail)"
                   " VALUES (?1,?2,?3,?4,?5,?6)",
    [ST_AUD_LIST] = "SELECT id, at, actor, action, object, outcome, detail FROM audit"
                    " WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    [ST_FLAG_PUT] = "INSERT INTO flags(device, at, size, hash, reason) VALUES (?1,?2,?3,?4,?5)",
    [ST_FLAG_LIST] = "SELECT device, at, size, hash, reason FROM flags ORDER BY at, device",
    [ST_FLAG_CLEAR] = "DELETE FROM flags WHERE device = ?1",
    [ST_FLAG_COUNT] = "SELECT count(*) FROM flags",
};

struct sq_fleet {
    struct ota_fleet_store base; /* first: the handle callers hold */
    sqlite3 *db;
    bool in_txn;
    bool in_sp;
    sqlite3_stmt *st[ST_COUNT];
};

static struct sq_fleet *sq(struct ota_fleet_store *s)
{
    return (struct sq_fleet *)s;
}

static int db_err(struct sq_fleet *q, const char *what, struct ota_detail *det)
{
    int code = sqlite3_extended_errcode(q->db);

    ota_detail_set(det, "fleet database: %s: %s", what, sqlite3_errmsg(q->db));
    if (code == SQLITE_NOMEM)
        return OTA_ERR_NOMEM;
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
        return OTA_ERR_EXISTS;
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        return OTA_ERR_LOCKED;
    return OTA_ERR_IO;
}

static int exec(struct sq_fleet *q, const char *text, struct ota_detail *det)
{
    return sqlite3_exec(q->db, text, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(q, text, det);
}

/* The prepared statement i, reset and unbound. */
static sqlite3_stmt *stmt(struct sq_fleet *q, enum stmt i)
{
    sqlite3_reset(q->st[i]);
    sqlite3_clear_bindings(q->st[i]);
    return q->st[i];
}

static int need_txn(struct sq_fleet *q, struct ota_detail *det)
{
    if (!q->in_txn) {
        ota_detail_set(det, "fleet database: change outside a transaction");
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

/* Steps a statement that returns no rows. */
static int done(struct sq_fleet *q, sqlite3_stmt *st, const char *what, struct ota_detail *det)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(q, what, det);

    sqlite3_reset(st);
    return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : OTA_ERR_NOMEM;
}

/* Copies a text column into out[cap]; too long or not text: OTA_ERR_FORMAT. */
static int col_text(char *out, size_t cap, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);

    out[0] = '\0';
    if (t == NULL)
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : OTA_ERR_NOMEM;
    if (n < 0 || (size_t)n >= cap)
        return OTA_ERR_FORMAT;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 0;
}

static int col_blob32(uint8_t out[32], sqlite3_stmt *st, int i)
{
    const void *b = sqlite3_column_blob(st, i);

    if (b == NULL || sqlite3_column_bytes(st, i) != 32)
        return OTA_ERR_FORMAT;
    memcpy(out, b, 32);
    return 0;
}

static int corrupt(const char *table, struct ota_detail *det)
{
    ota_detail_set(det, "fleet database: a %s row holds a value outside its rules", table);
    return OTA_ERR_FORMAT;
}

/* ---- transactions ---- */

static int sq_begin(struct ota_fleet_store *s, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    int rc;

    if (q->in_txn) {
        ota_detail_set(det, "fleet database: a transaction is already open");
        return OTA_ERR_INVALID_ARG;
    }
    rc = exec(q, "BEGIN IMMEDIATE", det);
    q->in_txn = rc == 0;
    return rc;
}

static int sq_commit(struct ota_fleet_store *s, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    int rc = need_txn(q, det);

    if (rc == 0 && q->in_sp) {
        ota_detail_set(det, "fleet database: commit inside a savepoint");
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0)
        rc = exec(q, "COMMIT", det);
    if (rc != 0 && q->in_txn)
        (void)exec(q, "ROLLBACK", NULL);
    q->in_txn = false;
    q->in_sp = false;
    return rc;
}

static void sq_rollback(struct ota_fleet_store *s)
{
    struct sq_fleet *q = sq(s);

    if (q->in_txn)
        (void)exec(q, "ROLLBACK", NULL);
    q->in_txn = false;
    q->in_sp = false;
}

static int sq_savepoint(struct ota_fleet_store *s, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    int rc = need_txn(q, det);

    if (rc == 0 && q->in_sp) {
        ota_detail_set(det, "fleet database: a savepoint is already open");
        return OTA_ERR_INVALID_ARG;
    }
    if (rc == 0)
        rc = exec(q, "SAVEPOINT unit", det);
    q->in_sp = rc == 0;
    return rc;
}

static int sq_release(struct ota_fleet_store *s, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    int rc;

    if (!q->in_sp) {
        ota_detail_set(det, "fleet database: no savepoint to release");
        return OTA_ERR_INVALID_ARG;
    }
    rc = exec(q, "RELEASE unit", det);
    q->in_sp = false;
    return rc;
}

static void sq_rollback_to(struct ota_fleet_store *s)
{
    struct sq_fleet *q = sq(s);

    if (!q->in_sp)
        return;
    (void)exec(q, "ROLLBACK TO unit", NULL);
    (void)exec(q, "RELEASE unit", NULL);
    q->in_sp = false;
}

/* ---- devices ---- */

static int read_device(struct ota_fleet_device *d, sqlite3_stmt *st)
{
    struct ota_checkin *c = &d->report;
    int rc = 0;
    char state[32];

    memset(d, 0, sizeof(*d));
    rc |= col_text(d->id, sizeof(d->id), st, 0);
    rc |= col_text(c->product, sizeof(c->product), st, 1);
    rc |= col_text(c->hardware, sizeof(c->hardware), st, 2);
    rc |= col_text(c->version, sizeof(c->version), st, 3);
    rc |= col_text(c->target, sizeof(c->target), st, 4);
    rc |= col_text(c->slot, sizeof(c->slot), st, 5);
    rc |= col_text(state, sizeof(state), st, 6);
    rc |= col_text(c->state_target, sizeof(c->state_target), st, 7);
    c->has_progress = sqlite3_column_int(st, 8) != 0;
    c->progress = (uint64_t)sqlite3_column_int64(st, 9);
    rc |= col_text(c->error_name, sizeof(c->error_name), st, 10);
    rc |= col_text(c->error_detail, sizeof(c->error_detail), st, 11);
    c->root_version = (uint64_t)sqlite3_column_int64(st, 12);
    c->timestamp_version = (uint64_t)sqlite3_column_int64(st, 13);
    c->snapshot_version = (uint64_t)sqlite3_column_int64(st, 14);
    c->targets_version = (uint64_t)sqlite3_column_int64(st, 15);
    if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
        c->has_checkpoint = true;
        c->checkpoint_size = (uint64_t)sqlite3_column_int64(st, 16);
        rc |= col_blob32(c->checkpoint_hash, st, 17);
    }
    d->first_seen = sqlite3_column_int64(st, 18);
    d->last_seen = sqlite3_column_int64(st, 19);
    d->update_since = sqlite3_column_int64(st, 20);
    d->progress_at = sqlite3_column_int64(st, 21);
    rc |= col_text(d->serial, sizeof(d->serial), st, 22);
    if (rc != 0)
        return OTA_ERR_FORMAT;
    if (strcmp(state, "none") == 0)
        c->state = OTA_UPDATE_NONE;
    else if (ota_update_state_parse(&c->state, state) != 0)
        return OTA_ERR_FORMAT;
    return 0;
}

static int sq_device_get(struct ota_fleet_store *s, const char *id, struct ota_fleet_device *out,
                         bool *found, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_DEV_GET);
    int rc = bind_text(st, 1, id);
    int step;

    *found = false;
    memset(out, 0, sizeof(*out));
    if (rc != 0)
        return rc;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = read_device(out, st);
        if (rc != 0)
            rc = corrupt("devices", det);
        *found = rc == 0;
    } else if (step != SQLITE_DONE) {
        rc = db_err(q, "reading a device", det);
    }
    sqlite3_reset(st);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static bool fits(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static int sq_device_put(struct ota_fleet_store *s, const struct ota_fleet_device *d,
                         struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    const struct ota_checkin *c = &d->report;
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (!fits(d->id, sizeof(d->id)) || !fits(d->serial, sizeof(d->serial)) ||
        !fits(c->product, sizeof(c->product)) || !fits(c->target, sizeof(c->target)) ||
        !fits(c->error_detail, sizeof(c->error_detail)))
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_DEV_PUT);
    rc |= bind_text(st, 1, d->id);
    rc |= bind_text(st, 2, c->product);
    rc |= bind_text(st, 3, c->hardware);
    rc |= bind_text(st, 4, c->version);
    rc |= bind_text(st, 5, c->target);
    rc |= bind_text(st, 6, c->slot);
    rc |= bind_text(st, 7, ota_update_state_name(c->state));
    rc |= bind_text(st, 8, c->state_target);
    rc |= sqlite3_bind_int(st, 9, c->has_progress ? 1 : 0);
    rc |= sqlite3_bind_int64(st, 10, (sqlite3_int64)c->progress);
    rc |= bind_text(st, 11, c->error_name);
    rc |= bind_text(st, 12, c->error_detail);
    rc |= sqlite3_bind_int64(st, 13, (sqlite3_int64)c->root_version);
    rc |= sqlite3_bind_int64(st, 14, (sqlite3_int64)c->timestamp_version);
    rc |= sqlite3_bind_int64(st, 15, (sqlite3_int64)c->snapshot_version);
    rc |= sqlite3_bind_int64(st, 16, (sqlite3_int64)c->targets_version);
    if (c->has_checkpoint) {
        rc |= sqlite3_bind_int64(st, 17, (sqlite3_int64)c->checkpoint_size);
        rc |= sqlite3_bind_blob(st, 18, c->checkpoint_hash, 32, SQLITE_STATIC);
    }
    rc |= sqlite3_bind_int64(st, 19, d->first_seen);
    rc |= sqlite3_bind_int64(st, 20, d->last_seen);
    rc |= sqlite3_bind_int64(st, 21, d->update_since);
    rc |= sqlite3_bind_int64(st, 22, d->progress_at);
    rc |= bind_text(st, 23, d->serial);
    if (rc != 0)
        return OTA_ERR_NOMEM;
    return done(q, st, "storing a device", det);
}

static int sq_device_list(struct ota_fleet_store *s, const char *after, unsigned limit,
                          int (*fn)(void *ctx, const struct ota_fleet_device *d), void *ctx,
                          struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_DEV_LIST);
    struct ota_fleet_device *d = malloc(sizeof(*d));
    int rc = 0;
    int step;

    if (d == NULL)
        return OTA_ERR_NOMEM;
    if (bind_text(st, 1, after ? after : "") != 0 || sqlite3_bind_int(st, 2, (int)limit) != 0)
        rc = OTA_ERR_NOMEM;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = read_device(d, st) == 0 ? fn(ctx, d) : corrupt("devices", det);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing devices", det);
    sqlite3_reset(st);
    free(d);
    return rc;
}

static int count_of(struct sq_fleet *q, enum stmt i, uint64_t *n, struct ota_detail *det)
{
    sqlite3_stmt *st = stmt(q, i);
    int rc = 0;

    *n = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = db_err(q, "counting", det);
    sqlite3_reset(st);
    return rc;
}

static int sq_device_count(struct ota_fleet_store *s, uint64_t *n, struct ota_detail *det)
{
    return count_of(sq(s), ST_DEV_COUNT, n, det);
}

/* ---- events ---- */

static int sq_event_add(struct ota_fleet_store *s, const char *device, int64_t at,
                        const char *changes, uint64_t *id, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (strlen(changes) > OTA_FLEET_CHANGES_MAX)
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_EV_ADD);
    if (bind_text(st, 1, device) != 0 || sqlite3_bind_int64(st, 2, at) != 0 ||
        bind_text(st, 3, changes) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "adding an event", det);
    if (rc == 0 && id != NULL)
        *id = (uint64_t)sqlite3_last_insert_rowid(q->db);
    return rc;
}

static int sq_event_list(struct ota_fleet_store *s, const char *device, uint64_t before,
                         unsigned limit, int (*fn)(void *ctx, const struct ota_fleet_event *e),
                         void *ctx, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_EV_LIST);
    struct ota_fleet_event *e = malloc(sizeof(*e));
    int rc = 0;
    int step;

    if (e == NULL)
        return OTA_ERR_NOMEM;
    if (bind_text(st, 1, device) != 0 ||
        sqlite3_bind_int64(st, 2, before ? (sqlite3_int64)before : INT64_MAX) != 0 ||
        sqlite3_bind_int(st, 3, (int)limit) != 0)
        rc = OTA_ERR_NOMEM;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(e, 0, sizeof(*e));
        e->id = (uint64_t)sqlite3_column_int64(st, 0);
        e->at = sqlite3_column_int64(st, 2);
        if (col_text(e->device, sizeof(e->device), st, 1) != 0 ||
            col_text(e->changes, sizeof(e->changes), st, 3) != 0)
            rc = corrupt("events", det);
        else
            rc = fn(ctx, e);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing events", det);
    sqlite3_reset(st);
    free(e);
    return rc;
}

static int sq_event_trim(struct ota_fleet_store *s, const char *device, unsigned keep,
                         uint64_t *removed, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (removed != NULL)
        *removed = 0;
    if (rc != 0)
        return rc;
    st = stmt(q, ST_EV_TRIM);
    if (bind_text(st, 1, device) != 0 || sqlite3_bind_int64(st, 2, (sqlite3_int64)keep) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "trimming events", det);
    if (rc == 0 && removed != NULL)
        *removed = (uint64_t)sqlite3_changes(q->db);
    return rc;
}

static int sq_event_expire(struct ota_fleet_store *s, int64_t before, uint64_t *removed,
                           struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (removed != NULL)
        *removed = 0;
    if (rc != 0)
        return rc;
    st = stmt(q, ST_EV_EXPIRE);
    if (sqlite3_bind_int64(st, 1, before) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "expiring events", det);
    if (rc == 0 && removed != NULL)
        *removed = (uint64_t)sqlite3_changes(q->db);
    return rc;
}

/* ---- failed targets ---- */

static int sq_failed_add(struct ota_fleet_store *s, const char *device, const char *target,
                         int64_t at, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    st = stmt(q, ST_FAIL_ADD);
    if (bind_text(st, 1, device) != 0 || bind_text(st, 2, target) != 0 ||
        sqlite3_bind_int64(st, 3, at) != 0)
        return OTA_ERR_NOMEM;
    return done(q, st, "recording a failed target", det);
}

static int sq_failed_list(struct ota_fleet_store *s, const char *device,
                          int (*fn)(void *ctx, const char *target), void *ctx,
                          struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_FAIL_LIST);
    char target[OTA_CHECKIN_TARGET_MAX + 1];
    int rc = bind_text(st, 1, device);
    int step = SQLITE_DONE;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc =
            col_text(target, sizeof(target), st, 0) == 0 ? fn(ctx, target) : corrupt("failed", det);
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing failed targets", det);
    sqlite3_reset(st);
    return rc;
}

/* ---- revocations ---- */

static const char *kind_name(enum ota_fleet_revoke_kind k)
{
    return k == OTA_FLEET_REVOKE_DEVICE ? "device" : "certificate";
}

static int read_revocation(struct ota_fleet_revocation *r, sqlite3_stmt *st)
{
    char kind[16];

    memset(r, 0, sizeof(*r));
    if (col_text(kind, sizeof(kind), st, 0) != 0 || col_text(r->id, sizeof(r->id), st, 1) != 0 ||
        col_text(r->reason, sizeof(r->reason), st, 3) != 0 ||
        col_text(r->actor, sizeof(r->actor), st, 4) != 0)
        return OTA_ERR_FORMAT;
    if (strcmp(kind, "device") == 0)
        r->kind = OTA_FLEET_REVOKE_DEVICE;
    else if (strcmp(kind, "certificate") == 0)
        r->kind = OTA_FLEET_REVOKE_CERTIFICATE;
    else
        return OTA_ERR_FORMAT;
    r->at = sqlite3_column_int64(st, 2);
    return 0;
}

static int sq_revoke_put(struct ota_fleet_store *s, const struct ota_fleet_revocation *r,
                         struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (!fits(r->id, sizeof(r->id)) || !fits(r->reason, sizeof(r->reason)) ||
        !fits(r->actor, sizeof(r->actor)))
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_REV_PUT);
    if (bind_text(st, 1, kind_name(r->kind)) != 0 || bind_text(st, 2, r->id) != 0 ||
        sqlite3_bind_int64(st, 3, r->at) != 0 || bind_text(st, 4, r->reason) != 0 ||
        bind_text(st, 5, r->actor) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "storing a revocation", det);
    if (rc == OTA_ERR_EXISTS)
        ota_detail_set(det, "%s %s is revoked already", kind_name(r->kind), r->id);
    return rc;
}

static int sq_revoke_check(struct ota_fleet_store *s, const char *device, const char *serial,
                           bool *revoked, struct ota_fleet_revocation *out, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_REV_CHECK);
    int rc = 0;
    int step;

    *revoked = false;
    memset(out, 0, sizeof(*out));
    if (bind_text(st, 1, device ? device : "") != 0 ||
        bind_text(st, 2, serial && serial[0] ? serial : "\x01") != 0)
        return OTA_ERR_NOMEM;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = read_revocation(out, st) == 0 ? 0 : corrupt("revocations", det);
        *revoked = rc == 0;
    } else if (step != SQLITE_DONE) {
        rc = db_err(q, "checking revocations", det);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_revoke_list(struct ota_fleet_store *s,
                          int (*fn)(void *ctx, const struct ota_fleet_revocation *r), void *ctx,
                          struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_REV_LIST);
    struct ota_fleet_revocation r;
    int rc = 0;
    int step;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_revocation(&r, st) == 0 ? fn(ctx, &r) : corrupt("revocations", det);
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing revocations", det);
    sqlite3_reset(st);
    return rc;
}

/* ---- tokens ---- */

static int read_token(struct ota_fleet_token *t, sqlite3_stmt *st)
{
    memset(t, 0, sizeof(*t));
    if (col_text(t->id, sizeof(t->id), st, 0) != 0 || col_blob32(t->hash, st, 1) != 0 ||
        col_text(t->name, sizeof(t->name), st, 2) != 0 ||
        col_text(t->created_by, sizeof(t->created_by), st, 5) != 0)
        return OTA_ERR_FORMAT;
    t->scopes = (unsigned)sqlite3_column_int(st, 3) & OTA_FLEET_SCOPE_ALL;
    t->created = sqlite3_column_int64(st, 4);
    t->revoked = sqlite3_column_int64(st, 6);
    return 0;
}

static int sq_token_put(struct ota_fleet_store *s, const struct ota_fleet_token *t,
                        struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (!fits(t->id, sizeof(t->id)) || !fits(t->name, sizeof(t->name)) ||
        !fits(t->created_by, sizeof(t->created_by)))
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_TOK_PUT);
    if (bind_text(st, 1, t->id) != 0 || sqlite3_bind_blob(st, 2, t->hash, 32, SQLITE_STATIC) != 0 ||
        bind_text(st, 3, t->name) != 0 || sqlite3_bind_int(st, 4, (int)t->scopes) != 0 ||
        sqlite3_bind_int64(st, 5, t->created) != 0 || bind_text(st, 6, t->created_by) != 0 ||
        sqlite3_bind_int64(st, 7, t->revoked) != 0)
        return OTA_ERR_NOMEM;
    return done(q, st, "storing a token", det);
}

static int sq_token_get(struct ota_fleet_store *s, const char *id, struct ota_fleet_token *out,
                        bool *found, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOK_GET);
    int rc = bind_text(st, 1, id);
    int step;

    *found = false;
    memset(out, 0, sizeof(*out));
    if (rc != 0)
        return rc;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = read_token(out, st) == 0 ? 0 : corrupt("tokens", det);
        *found = rc == 0;
    } else if (step != SQLITE_DONE) {
        rc = db_err(q, "reading a token", det);
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_token_list(struct ota_fleet_store *s,
                         int (*fn)(void *ctx, const struct ota_fleet_token *t), void *ctx,
                         struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOK_LIST);
    struct ota_fleet_token t;
    int rc = 0;
    int step;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_token(&t, st) == 0 ? fn(ctx, &t) : corrupt("tokens", det);
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing tokens", det);
    sqlite3_reset(st);
    return rc;
}

static int sq_token_revoke(struct ota_fleet_store *s, const char *id, int64_t at,
                           struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    struct ota_fleet_token t;
    sqlite3_stmt *st;
    bool found;
    int rc = need_txn(q, det);

    if (rc == 0)
        rc = sq_token_get(s, id, &t, &found, det);
    if (rc != 0)
        return rc;
    if (!found) {
        ota_detail_set(det, "no token %.16s", id);
        return OTA_ERR_NOT_FOUND;
    }
    if (t.revoked != 0) {
        ota_detail_set(det, "token %s is revoked already", id);
        return OTA_ERR_EXISTS;
    }
    st = stmt(q, ST_TOK_REVOKE);
    if (bind_text(st, 1, id) != 0 || sqlite3_bind_int64(st, 2, at > 0 ? at : 1) != 0)
        return OTA_ERR_NOMEM;
    return done(q, st, "revoking a token", det);
}

/* ---- audit ---- */

static int sq_audit_add(struct ota_fleet_store *s, struct ota_fleet_audit *a,
                        struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (!fits(a->actor, sizeof(a->actor)) || !fits(a->action, sizeof(a->action)) ||
        !fits(a->object, sizeof(a->object)) || !fits(a->outcome, sizeof(a->outcome)) ||
        !fits(a->detail, sizeof(a->detail)))
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_AUD_ADD);
    if (sqlite3_bind_int64(st, 1, a->at) != 0 || bind_text(st, 2, a->actor) != 0 ||
        bind_text(st, 3, a->action) != 0 || bind_text(st, 4, a->object) != 0 ||
        bind_text(st, 5, a->outcome) != 0 || bind_text(st, 6, a->detail) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "adding to the audit trail", det);
    if (rc == 0)
        a->id = (uint64_t)sqlite3_last_insert_rowid(q->db);
    return rc;
}

static int sq_audit_list(struct ota_fleet_store *s, uint64_t before, unsigned limit,
                         int (*fn)(void *ctx, const struct ota_fleet_audit *a), void *ctx,
                         struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_AUD_LIST);
    struct ota_fleet_audit *a = malloc(sizeof(*a));
    int rc = 0;
    int step;

    if (a == NULL)
        return OTA_ERR_NOMEM;
    if (sqlite3_bind_int64(st, 1, before ? (sqlite3_int64)before : INT64_MAX) != 0 ||
        sqlite3_bind_int(st, 2, (int)limit) != 0)
        rc = OTA_ERR_NOMEM;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(a, 0, sizeof(*a));
        a->id = (uint64_t)sqlite3_column_int64(st, 0);
        a->at = sqlite3_column_int64(st, 1);
        if (col_text(a->actor, sizeof(a->actor), st, 2) != 0 ||
            col_text(a->action, sizeof(a->action), st, 3) != 0 ||
            col_text(a->object, sizeof(a->object), st, 4) != 0 ||
            col_text(a->outcome, sizeof(a->outcome), st, 5) != 0 ||
            col_text(a->detail, sizeof(a->detail), st, 6) != 0)
            rc = corrupt("audit", det);
        else
            rc = fn(ctx, a);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing the audit trail", det);
    sqlite3_reset(st);
    free(a);
    return rc;
}

/* ---- flags ---- */

static int sq_flag_put(struct ota_fleet_store *s, const struct ota_fleet_flag *f,
                       struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (!fits(f->reason, sizeof(f->reason)))
        return OTA_ERR_TOO_LARGE;
    st = stmt(q, ST_FLAG_PUT);
    if (bind_text(st, 1, f->device) != 0 || sqlite3_bind_int64(st, 2, f->at) != 0 ||
        sqlite3_bind_int64(st, 3, (sqlite3_int64)f->size) != 0 ||
        sqlite3_bind_blob(st, 4, f->hash, 32, SQLITE_STATIC) != 0 ||
        bind_text(st, 5, f->reason) != 0)
        return OTA_ERR_NOMEM;
    return done(q, st, "storing a flag", det);
}

static int sq_flag_list(struct ota_fleet_store *s,
                        int (*fn)(void *ctx, const struct ota_fleet_flag *f), void *ctx,
                        struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st = stmt(q, ST_FLAG_LIST);
    struct ota_fleet_flag f;
    int rc = 0;
    int step;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&f, 0, sizeof(f));
        f.at = sqlite3_column_int64(st, 1);
        f.size = (uint64_t)sqlite3_column_int64(st, 2);
        if (col_text(f.device, sizeof(f.device), st, 0) != 0 || col_blob32(f.hash, st, 3) != 0 ||
            col_text(f.reason, sizeof(f.reason), st, 4) != 0)
            rc = corrupt("flags", det);
        else
            rc = fn(ctx, &f);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(q, "listing flags", det);
    sqlite3_reset(st);
    return rc;
}

static int sq_flag_clear(struct ota_fleet_store *s, const char *device, struct ota_detail *det)
{
    struct sq_fleet *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    st = stmt(q, ST_FLAG_CLEAR);
    if (bind_text(st, 1, device) != 0)
        return OTA_ERR_NOMEM;
    rc = done(q, st, "clearing a flag", det);
    if (rc == 0 && sqlite3_changes(q->db) == 0) {
        ota_detail_set(det, "device %.64s is not flagged", device);
        rc = OTA_ERR_NOT_FOUND;
    }
    return rc;
}

static int sq_flag_count(struct ota_fleet_store *s, uint64_t *n, struct ota_detail *det)
{
    return count_of(sq(s), ST_FLAG_COUNT, n, det);
}

static void sq_close(struct ota_fleet_store *s)
{
    struct sq_fleet *q = sq(s);

    if (q == NULL)
        return;
    sq_rollback(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q);
}

static const struct ota_fleet_store_ops sq_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .device_get = sq_device_get,
    .device_put = sq_device_put,
    .device_list = sq_device_list,
    .device_count = sq_device_count,
    .event_add = sq_event_add,
    .event_list = sq_event_list,
    .event_trim = sq_event_trim,
    .event_expire = sq_event_expire,
    .failed_add = sq_failed_add,
    .failed_list = sq_failed_list,
    .revoke_put = sq_revoke_put,
    .revoke_check = sq_revoke_check,
    .revoke_list = sq_revoke_list,
    .token_put = sq_token_put,
    .token_get = sq_token_get,
    .token_list = sq_token_list,
    .token_revoke = sq_token_revoke,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
    .flag_put = sq_flag_put,
    .flag_list = sq_flag_list,
    .flag_clear = sq_flag_clear,
    .flag_count = sq_flag_count,
    .close = sq_close,
};

/* ---- opening and migrations ---- */

static int pragma_int(struct sq_fleet *q, const char *name, long long *out, struct ota_detail *det)
{
    char text[64];
    sqlite3_stmt *st;
    int rc = 0;

    snprintf(text, sizeof(text), "PRAGMA %s", name);
    if (sqlite3_prepare_v2(q->db, text, -1, &st, NULL) != SQLITE_OK)
        return db_err(q, text, det);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_err(q, text, det);
    sqlite3_finalize(st);
    return rc;
}

/* Whether the database has any table yet. */
static int has_tables(struct sq_fleet *q, bool *any, struct ota_detail *det)
{
    sqlite3_stmt *st;
    int rc = 0;

    *any = false;
    if (sqlite3_prepare_v2(q->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
        return db_err(q, "reading the schema", det);
    if (sqlite3_step(st) == SQLITE_ROW)
        *any = sqlite3_column_int64(st, 0) > 0;
    else
        rc = db_err(q, "reading the schema", det);
    sqlite3_finalize(st);
    return rc;
}

/* Reads the schema version; OTA_ERR_SCHEMA when the file is another
 * application's database. */
static int read_version(struct sq_fleet *q, unsigned *version, const char *path,
                        struct ota_detail *det)
{
    long long app = 0;
    long long v = 0;
    bool any;
    int rc = pragma_int(q, "application_id", &app, det);

    if (rc == 0)
        rc = pragma_int(q, "user_version", &v, det);
    if (rc == 0)
        rc = has_tables(q, &any, det);
    if (rc != 0)
        return rc;
    if (app == 0 && v == 0 && !any) {
        *version = 0;
        return 0;
    }
    if (app != APP_ID || v < 1) {
        ota_detail_set(det, "%s is not an otachain-server fleet database", path);
        return OTA_ERR_SCHEMA;
    }
    *version = (unsigned)v;
    return 0;
}

static int migrate(struct sq_fleet *q, const char *path, struct ota_detail *det)
{
    unsigned v = 0;
    int rc;

    for (;;) {
        char text[96];

        rc = exec(q, "BEGIN IMMEDIATE", det);
        if (rc == 0)
            rc = read_version(q, &v, path, det);
        if (rc == 0 && v > OTA_FLEET_SCHEMA_VERSION) {
            ota_detail_set(det, "%s has schema version %u; this server knows up to %u", path, v,
                           OTA_FLEET_SCHEMA_VERSION);
            rc = OTA_ERR_SCHEMA;
        }
        if (rc != 0 || v == OTA_FLEET_SCHEMA_VERSION) {
            (void)exec(q, rc == 0 ? "COMMIT" : "ROLLBACK", NULL);
            return rc;
        }
        snprintf(text, sizeof(text), "PRAGMA application_id = %d; PRAGMA user_version = %u;",
                 APP_ID, v + 1);
        rc = exec(q, migrations[v], det);
        if (rc == 0)
            rc = exec(q, text, det);
        if (rc == 0)
            rc = exec(q, "COMMIT", det);
        if (rc != 0) {
            (void)exec(q, "ROLLBACK", NULL);
            ota_detail_prefix(det, "migrating the schema");
            return rc;
        }
    }
}

static int open_db(struct sq_fleet **out, const char *path, bool create, struct ota_detail *det)
{
    struct sq_fleet *q;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX;

    *out = NULL;
    if (create) {
        /* Created 0600 here: SQLite would use the umask. */
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            ota_detail_set(det, "opening %s", path);
            return OTA_ERR_IO;
        }
        close(fd);
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return OTA_ERR_NOMEM;
    q->base.ops = &sq_ops;
    if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK) {
        int rc = q->db != NULL ? db_err(q, path, det) : OTA_ERR_NOMEM;
        sqlite3_close(q->db);
        free(q);
        return rc;
    }
    sqlite3_busy_timeout(q->db, 5000);
    *out = q;
    return 0;
}

int ota_fleet_store_sqlite_open(struct ota_fleet_store **out, const char *path,
                                enum ota_fleet_sync sync, struct ota_detail *det)
{
    struct sq_fleet *q = NULL;
    int rc;

    if (out == NULL || path == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    rc = open_db(&q, path, true, det);
    if (rc != 0)
        return rc;
    rc = exec(q, "PRAGMA journal_mode = WAL", det);
    if (rc == 0)
        rc = exec(q,
                  sync == OTA_FLEET_SYNC_NORMAL ? "PRAGMA synchronous = NORMAL"
                                                : "PRAGMA synchronous = FULL",
                  det);
    if (rc == 0)
        rc = migrate(q, path, det);
    for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) !=
            SQLITE_OK)
            rc = db_err(q, sql[i], det);
    }
    if (rc != 0) {
        sq_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return 0;
}

int ota_fleet_store_sqlite_version(unsigned *version, const char *path, struct ota_detail *det)
{
    struct sq_fleet *q = NULL;
    int rc;

    *version = 0;
    rc = open_db(&q, path, false, det);
    if (rc == 0)
        rc = read_version(q, version, path, det);
    if (q != NULL)
        sq_close(&q->base);
    return rc;
}

void ota_fleet_store_close(struct ota_fleet_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}
