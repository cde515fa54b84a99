/* SQLite backend of the log store (see otachain/log_store.h).
 *
 * Schema (one file, WAL mode, synchronous=FULL so a commit is durable
 * before publish goes on):
 *   meta(name PRIMARY KEY, value)      "format" = 1, "edge", "checkpoint"
 *   entries(idx PRIMARY KEY, data, leaf, key UNIQUE)
 *   tiles(level, idx, width, hashes, PRIMARY KEY(level, idx))
 *   witnesses(name PRIMARY KEY, size)
 */
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/log_store.h"

#define STORE_FORMAT 1

struct sq_store {
    struct ota_log_store base; /* first: the handle callers hold */
    sqlite3 *db;
    bool in_txn;
    const struct ota_fs_hook *hook; /* told of each commit (COMMIT step) */
    char path[PATH_MAX];
};

static struct sq_store *sq(struct ota_log_store *s)
{
    return (struct sq_store *)s;
}

static int db_err(struct sq_store *q, const char *what, struct ota_detail *det)
{
    int code = sqlite3_extended_errcode(q->db);

    ota_detail_set(det, "ledger database: %s: %s", what, sqlite3_errmsg(q->db));
    if (code == SQLITE_NOMEM)
        return OTA_ERR_NOMEM;
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
        return OTA_ERR_EXISTS;
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        return OTA_ERR_LOCKED;
    return OTA_ERR_IO;
}

static int exec(struct sq_store *q, const char *sql, struct ota_detail *det)
{
    if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(q, sql, det);
    return 0;
}

static int prep(struct sq_store *q, sqlite3_stmt **st, const char *sql, struct ota_detail *det)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_err(q, sql, det);
    }
    return 0;
}

/* Runs a statement that returns no rows, then finalizes it. */
static int run(struct sq_store *q, sqlite3_stmt *st, const char *what, struct ota_detail *det)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(q, what, det);

    sqlite3_finalize(st);
    return rc;
}

static int need_txn(struct sq_store *q, struct ota_detail *det)
{
    if (!q->in_txn) {
        ota_detail_set(det, "ledger database: change outside a transaction");
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

static int sq_begin(struct ota_log_store *s, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    int rc;

    if (q->in_txn) {
        ota_detail_set(det, "ledger database: a transaction is already open");
        return OTA_ERR_INVALID_ARG;
    }
    rc = exec(q, "BEGIN IMMEDIATE", det);
    if (rc == 0)
        q->in_txn = true;
    return rc;
}

static int sq_commit(struct ota_log_store *s, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    int rc = need_txn(q, det);

    /* The test hooks may cut the power here: the transaction is lost,
     * as SQLite rolls it back at the next open. */
    if (rc == 0 && ota_fs_hook_step(q->hook, OTA_FS_STEP_COMMIT, q->path) != 0) {
        ota_detail_set(det, "ledger database: commit refused by the fault hook");
        rc = OTA_ERR_IO;
    }
    if (rc == 0)
        rc = exec(q, "COMMIT", det);
    if (rc != 0 && q->in_txn) {
        (void)exec(q, "ROLLBACK", NULL);
    }
    q->in_txn = false;
    return rc;
}

static void sq_rollback(struct ota_log_store *s)
{
    struct sq_store *q = sq(s);

    if (q->in_txn)
        (void)exec(q, "ROLLBACK", NULL);
    q->in_txn = false;
}

static int sq_count(struct ota_log_store *s, uint64_t *count, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    /* Entries are dense (invariant 1, checked by every append, and never
     * deleted), so the count is the largest index + 1: a b-tree descent,
     * where count(*) would scan the whole table on each append. */
    int rc = prep(q, &st, "SELECT coalesce(max(idx) + 1, 0) FROM entries", det);

    *count = 0;
    if (rc != 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = db_err(q, "counting entries", det);
    sqlite3_finalize(st);
    return rc;
}

static int sq_append(struct ota_log_store *s, uint64_t index, const uint8_t *entry, size_t len,
                     const uint8_t leaf[OTA_MERKLE_HASH_LEN], const char *key,
                     struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    uint64_t n;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (len > OTA_LOG_STORE_ENTRY_MAX || (key != NULL && strlen(key) > OTA_LOG_STORE_KEY_MAX) ||
        index > (uint64_t)INT64_MAX) {
        ota_detail_set(det, "ledger database: entry %llu or its key too large",
                       (unsigned long long)index);
        return OTA_ERR_TOO_LARGE;
    }
    rc = sq_count(s, &n, det);
    if (rc != 0)
        return rc;
    if (n != index) {
        ota_detail_set(det, "ledger database: appending entry %llu to a log of %llu entries",
                       (unsigned long long)index, (unsigned long long)n);
        return OTA_ERR_INVALID_ARG;
    }
    rc = prep(q, &st, "INSERT INTO entries(idx, data, leaf, key) VALUES(?, ?, ?, ?)", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sqlite3_bind_blob(st, 2, len > 0 ? (const void *)entry : "", (int)len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, leaf, OTA_MERKLE_HASH_LEN, SQLITE_STATIC);
    if (key != NULL)
        sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    rc = run(q, st, "appending an entry", det);
    if (rc == OTA_ERR_EXISTS)
        ota_detail_set(det, "ledger database: key %s is already logged", key ? key : "");
    return rc;
}

static int sq_entry(struct ota_log_store *s, uint64_t index, uint8_t *out, size_t cap, size_t *len,
                    uint8_t leaf[OTA_MERKLE_HASH_LEN], struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = prep(q, &st, "SELECT data, leaf FROM entries WHERE idx = ?", det);

    *len = 0;
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW: {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *d = sqlite3_column_blob(st, 0);

        if (n > cap || sqlite3_column_bytes(st, 1) != OTA_MERKLE_HASH_LEN) {
            ota_detail_set(det, "ledger database: entry %llu too large or damaged",
                           (unsigned long long)index);
            rc = n > cap ? OTA_ERR_TOO_LARGE : OTA_ERR_FORMAT;
            break;
        }
        if (n > 0)
            memcpy(out, d, n);
        *len = n;
        if (leaf != NULL)
            memcpy(leaf, sqlite3_column_blob(st, 1), OTA_MERKLE_HASH_LEN);
        break;
    }
    case SQLITE_DONE:
        ota_detail_set(det, "ledger database: no entry %llu", (unsigned long long)index);
        rc = OTA_ERR_NOT_FOUND;
        break;
    default:
        rc = db_err(q, "reading an entry", det);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_find(struct ota_log_store *s, const char *key, uint64_t *index,
                   struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = prep(q, &st, "SELECT idx FROM entries WHERE key = ?", det);

    *index = 0;
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *index = (uint64_t)sqlite3_column_int64(st, 0);
        break;
    case SQLITE_DONE:
        rc = OTA_ERR_NOT_FOUND;
        break;
    default:
        rc = db_err(q, "looking up an entry", det);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_tile_get(struct ota_log_store *s, unsigned level, uint64_t index, unsigned width,
                       uint8_t out[OTA_TILES_FULL_BYTES], size_t *len, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc;

    *len = 0;
    if (width == 0 || width > OTA_TILES_WIDTH || index > (uint64_t)INT64_MAX)
        return OTA_ERR_INVALID_ARG;
    rc = prep(q, &st, "SELECT width, hashes FROM tiles WHERE level = ? AND idx = ?", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW: {
        int w = sqlite3_column_int(st, 0);

        if (w < 0 || w > OTA_TILES_WIDTH ||
            sqlite3_column_bytes(st, 1) != w * OTA_MERKLE_HASH_LEN) {
            ota_detail_set(det, "ledger database: tile %u/%llu damaged", level,
                           (unsigned long long)index);
            rc = OTA_ERR_FORMAT;
        } else if ((unsigned)w < width) {
            rc = OTA_ERR_NOT_FOUND;
        } else {
            memcpy(out, sqlite3_column_blob(st, 1), (size_t)width * OTA_MERKLE_HASH_LEN);
            *len = (size_t)width * OTA_MERKLE_HASH_LEN;
        }
        break;
    }
    case SQLITE_DONE:
        rc = OTA_ERR_NOT_FOUND;
        break;
    default:
        rc = db_err(q, "reading a tile", det);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_tile_put(struct ota_log_store *s, unsigned level, uint64_t index, unsigned width,
                       const uint8_t *hashes, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (width == 0 || width > OTA_TILES_WIDTH || level > OTA_TILES_MAX_LEVEL ||
        index > (uint64_t)INT64_MAX)
        return OTA_ERR_INVALID_ARG;
    /* Invariant 2: a tile only grows. */
    rc = prep(q, &st,
              "INSERT INTO tiles(level, idx, width, hashes) VALUES(?, ?, ?, ?) "
              "ON CONFLICT(level, idx) DO UPDATE SET width = excluded.width, "
              "hashes = excluded.hashes WHERE excluded.width >= tiles.width",
              det);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(st, 1, (int)level);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)index);
    sqlite3_bind_int(st, 3, (int)width);
    sqlite3_bind_blob(st, 4, hashes, (int)(width * OTA_MERKLE_HASH_LEN), SQLITE_STATIC);
    return run(q, st, "storing a tile", det);
}

static int meta_get(struct sq_store *q, const char *name, struct ota_buf *out,
                    struct ota_detail *det)
{
    sqlite3_stmt *st;
    int rc = prep(q, &st, "SELECT value FROM meta WHERE name = ?", det);

    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        rc = ota_buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        break;
    case SQLITE_DONE:
        rc = OTA_ERR_NOT_FOUND;
        break;
    default:
        rc = db_err(q, "reading the log state", det);
    }
    sqlite3_finalize(st);
    return rc;
}

static int meta_put(struct sq_store *q, const char *name, const void *v, size_t len,
                    struct ota_detail *det)
{
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc == 0)
        rc = prep(q, &st, "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, len > 0 ? v : "", (int)len, SQLITE_STATIC);
    return run(q, st, "writing the log state", det);
}

static int sq_edge_get(struct ota_log_store *s, struct ota_merkle_edge *edge,
                       struct ota_detail *det)
{
    struct ota_buf b;
    int rc;

    ota_merkle_edge_init(edge);
    ota_buf_init(&b, OTA_MERKLE_EDGE_ENC_MAX);
    rc = meta_get(sq(s), "edge", &b, det);
    if (rc == OTA_ERR_NOT_FOUND)
        rc = 0;
    else if (rc == 0)
        rc = ota_merkle_edge_decode(edge, b.data, b.len, det);
    ota_buf_free(&b);
    return rc;
}

static int sq_edge_put(struct ota_log_store *s, const struct ota_merkle_edge *edge,
                       struct ota_detail *det)
{
    uint8_t enc[OTA_MERKLE_EDGE_ENC_MAX];
    size_t len = 0;
    int rc = ota_merkle_edge_encode(enc, &len, edge);

    return rc != 0 ? rc : meta_put(sq(s), "edge", enc, len, det);
}

static int sq_checkpoint_get(struct ota_log_store *s, struct ota_buf *out, struct ota_detail *det)
{
    return meta_get(sq(s), "checkpoint", out, det);
}

static int sq_checkpoint_put(struct ota_log_store *s, const void *note, size_t len,
                             struct ota_detail *det)
{
    if (len > OTA_LOG_STORE_NOTE_MAX)
        return OTA_ERR_TOO_LARGE;
    return meta_put(sq(s), "checkpoint", note, len, det);
}

static int sq_witness_get(struct ota_log_store *s, const char *name, uint64_t *size,
                          struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = prep(q, &st, "SELECT size FROM witnesses WHERE name = ?", det);

    *size = 0;
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *size = (uint64_t)sqlite3_column_int64(st, 0);
        break;
    case SQLITE_DONE:
        break;
    default:
        rc = db_err(q, "reading a witness size", det);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_witness_put(struct ota_log_store *s, const char *name, uint64_t size,
                          struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc != 0)
        return rc;
    if (strlen(name) > OTA_LOG_STORE_NAME_MAX || size > (uint64_t)INT64_MAX)
        return OTA_ERR_TOO_LARGE;
    rc = prep(q, &st, "INSERT OR REPLACE INTO witnesses(name, size) VALUES(?, ?)", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    return run(q, st, "writing a witness size", det);
}

static int sq_truncate(struct ota_log_store *s, uint64_t size, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    sqlite3_stmt *st;
    int rc = need_txn(q, det);

    if (rc == 0 && size > (uint64_t)INT64_MAX)
        rc = OTA_ERR_INVALID_ARG;
    if (rc == 0)
        rc = prep(q, &st, "DELETE FROM entries WHERE idx >= ?", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
    rc = run(q, st, "truncating the entries", det);
    for (unsigned level = 0; rc == 0 && level <= OTA_TILES_MAX_LEVEL; level++) {
        unsigned shift = OTA_TILES_HEIGHT * level;
        uint64_t hashes = shift < 64 ? size >> shift : 0; /* nodes of this level */
        uint64_t full = hashes / OTA_TILES_WIDTH;
        unsigned part = (unsigned)(hashes % OTA_TILES_WIDTH);

        /* Tiles past the last one go; the last one keeps `part` hashes. */
        rc = prep(q, &st, "DELETE FROM tiles WHERE level = ? AND (idx > ? OR (idx = ? AND ? = 0))",
                  det);
        if (rc != 0)
            break;
        sqlite3_bind_int(st, 1, (int)level);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)full);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)full);
        sqlite3_bind_int(st, 4, (int)part);
        rc = run(q, st, "truncating the tiles", det);
        if (rc != 0 || part == 0)
            continue;
        rc = prep(q, &st,
                  "UPDATE tiles SET width = ?, hashes = substr(hashes, 1, ?) "
                  "WHERE level = ? AND idx = ? AND width > ?",
                  det);
        if (rc != 0)
            break;
        sqlite3_bind_int(st, 1, (int)part);
        sqlite3_bind_int(st, 2, (int)(part * OTA_MERKLE_HASH_LEN));
        sqlite3_bind_int(st, 3, (int)level);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)full);
        sqlite3_bind_int(st, 5, (int)part);
        rc = run(q, st, "truncating a tile", det);
    }
    return rc;
}

/* Owner values live in meta under "v:<name>", apart from the store's own. */
static int value_name(char out[OTA_LOG_STORE_KEY_MAX + 3], const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > OTA_LOG_STORE_KEY_MAX)
        return OTA_ERR_TOO_LARGE;
    snprintf(out, OTA_LOG_STORE_KEY_MAX + 3, "v:%s", name);
    return 0;
}

static int sq_value_get(struct ota_log_store *s, const char *name, struct ota_buf *out,
                        struct ota_detail *det)
{
    char key[OTA_LOG_STORE_KEY_MAX + 3];
    int rc = value_name(key, name);

    return rc != 0 ? rc : meta_get(sq(s), key, out, det);
}

static int sq_value_put(struct ota_log_store *s, const char *name, const void *v, size_t len,
                        struct ota_detail *det)
{
    char key[OTA_LOG_STORE_KEY_MAX + 3];
    int rc = value_name(key, name);

    if (rc == 0 && len > OTA_LOG_STORE_VALUE_MAX)
        rc = OTA_ERR_TOO_LARGE;
    return rc != 0 ? rc : meta_put(sq(s), key, v, len, det);
}

static int sq_value_del(struct ota_log_store *s, const char *name, struct ota_detail *det)
{
    struct sq_store *q = sq(s);
    char key[OTA_LOG_STORE_KEY_MAX + 3];
    sqlite3_stmt *st;
    int rc = value_name(key, name);

    if (rc == 0)
        rc = need_txn(q, det);
    if (rc == 0)
        rc = prep(q, &st, "DELETE FROM meta WHERE name = ?", det);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return run(q, st, "deleting a log value", det);
}

static void sq_close(struct ota_log_store *s)
{
    struct sq_store *q = sq(s);

    sq_rollback(s);
    sqlite3_close(q->db);
    free(q);
}

static const struct ota_log_store_ops sq_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .append = sq_append,
    .count = sq_count,
    .entry = sq_entry,
    .find = sq_find,
    .tile_put = sq_tile_put,
    .tile_get = sq_tile_get,
    .edge_get = sq_edge_get,
    .edge_put = sq_edge_put,
    .checkpoint_get = sq_checkpoint_get,
    .checkpoint_put = sq_checkpoint_put,
    .witness_get = sq_witness_get,
    .witness_put = sq_witness_put,
    .truncate = sq_truncate,
    .value_get = sq_value_get,
    .value_put = sq_value_put,
    .value_del = sq_value_del,
    .close = sq_close,
};

static int check_format(struct sq_store *q, struct ota_detail *det)
{
    struct ota_buf b;
    uint8_t want = STORE_FORMAT;
    int rc;

    ota_buf_init(&b, 16);
    rc = meta_get(q, "format", &b, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        q->in_txn = true;
        rc = meta_put(q, "format", &want, 1, det);
        q->in_txn = false;
    } else if (rc == 0 && (b.len != 1 || b.data[0] != want)) {
        ota_detail_set(det, "ledger database: unknown format");
        rc = OTA_ERR_FORMAT;
    }
    ota_buf_free(&b);
    return rc;
}

int ota_log_store_sqlite_open(struct ota_log_store **out, const char *path,
                              const struct ota_fs_hook *hook, struct ota_detail *det)
{
    static const char schema[] =
        "PRAGMA journal_mode = WAL;"
        "PRAGMA synchronous = FULL;"
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL,"
        " leaf BLOB NOT NULL, key TEXT UNIQUE);"
        "CREATE TABLE IF NOT EXISTS tiles(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
        " width INTEGER NOT NULL, hashes BLOB NOT NULL, PRIMARY KEY(level, idx));"
        "CREATE TABLE IF NOT EXISTS witnesses(name TEXT PRIMARY KEY, size INTEGER NOT NULL);";
    struct sq_store *q;
    struct stat st;
    bool fresh;
    int fd;
    int rc;

    if (out == NULL || path == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (strlen(path) >= sizeof(q->path))
        return OTA_ERR_TOO_LARGE;
    /* ":memory:": a store in memory (tests); no file at all. Otherwise
     * create it 0600 ourselves (SQLite would use the umask), its name made
     * durable before SQLite writes into it. */
    if (strcmp(path, ":memory:") == 0)
        goto open_db;
    fresh = lstat(path, &st) != 0;
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ota_detail_set(det, "opening %s", path);
        return OTA_ERR_IO;
    }
    close(fd);
    if (fresh) {
        char dir[PATH_MAX];

        rc = ota_fs_dir_of(dir, path);
        if (rc == 0)
            rc = ota_fs_sync_dir(dir);
        if (rc != 0) {
            ota_detail_set(det, "syncing the directory of %s", path);
            return rc;
        }
    }
open_db:
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return OTA_ERR_NOMEM;
    q->base.ops = &sq_ops;
    q->hook = hook;
    memcpy(q->path, path, strlen(path) + 1);
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        rc = q->db != NULL ? db_err(q, path, det) : OTA_ERR_NOMEM;
        goto fail;
    }
    sqlite3_busy_timeout(q->db, 5000);
    rc = exec(q, schema, det);
    if (rc == 0)
        rc = check_format(q, det);
    if (rc == 0)
        rc = exec(q, "COMMIT", det);
    if (rc != 0) {
        (void)exec(q, "ROLLBACK", NULL);
        goto fail;
    }
    *out = &q->base;
    return 0;
fail:
    sqlite3_close(q->db);
    free(q);
    return rc;
}

void ota_log_store_close(struct ota_log_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

static int reader_read(void *ctx, unsigned level, uint64_t index, unsigned width,
                       uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct ota_log_store *s = ctx;

    return s->ops->tile_get(s, level, index, width, out, len, NULL);
}

void ota_log_store_tiles_reader(struct ota_tiles_reader *r, struct ota_log_store *s)
{
    r->read = reader_read;
    r->ctx = s;
}
