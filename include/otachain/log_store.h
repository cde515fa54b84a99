/* Storage of the log side of the ledger (docs/formats/ledger.md, "Storage
 * on the log side"): the entries with their leaf hashes, the hash tiles,
 * the right edge of the tree, the latest cosigned checkpoint and the size
 * each witness last cosigned. Behind this interface so that a PostgreSQL
 * backend can join the SQLite one (log_store_sqlite.c) later.
 *
 * Transactions. Every change happens between begin() and commit(); a
 * change outside a transaction is refused (OTA_ERR_INVALID_ARG), so a
 * multi-step change (entries + tiles + edge + checkpoint) is always
 * atomic. rollback() drops everything since begin(). Reads see the
 * store's own uncommitted writes. One transaction at a time per handle.
 *
 *        begin()            commit() / rollback()
 *   IDLE ───────► IN_TXN ──────────────────────► IDLE
 *                  │ append / tile_put / edge_put / checkpoint_put /
 *                  │ witness_put / value_put / value_del / truncate
 *                  │ (only here)
 *
 * Invariants kept by the caller (the sequencer), checked where cheap:
 *  1. entries are dense: append(index) needs index == the entry count;
 *  2. a tile only grows: tile_put(level, index, width) with width >= the
 *     stored width, and the stored hashes are a prefix of the new ones;
 *  3. the edge, the tiles and the entries describe one tree when a
 *     transaction commits.
 *
 * Caps: an entry is at most OTA_LOG_STORE_ENTRY_MAX bytes, a key
 * OTA_LOG_STORE_KEY_MAX, a checkpoint note OTA_LOG_STORE_NOTE_MAX, a
 * witness name OTA_LOG_STORE_NAME_MAX (OTA_ERR_TOO_LARGE beyond).
 */
#ifndef OTACHAIN_LOG_STORE_H
#define OTACHAIN_LOG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/merkle.h"
#include "otachain/tiles.h"

#define OTA_LOG_STORE_ENTRY_MAX 65535
#define OTA_LOG_STORE_KEY_MAX   128
#define OTA_LOG_STORE_NOTE_MAX  (64u * 1024)
#define OTA_LOG_STORE_NAME_MAX  255
#define OTA_LOG_STORE_VALUE_MAX (1024u * 1024)

struct ota_log_store;

struct ota_log_store_ops {
    int (*begin)(struct ota_log_store *s, struct ota_detail *det);
    int (*commit)(struct ota_log_store *s, struct ota_detail *det);
    void (*rollback)(struct ota_log_store *s);
    /* Entry `index` (== current count) with its leaf hash and an optional
     * lookup key (NULL: none; unique: OTA_ERR_EXISTS if taken). */
    int (*append)(struct ota_log_store *s, uint64_t index, const uint8_t *entry, size_t len,
                  const uint8_t leaf[OTA_MERKLE_HASH_LEN], const char *key, struct ota_detail *det);
    /* Number of entries. */
    int (*count)(struct ota_log_store *s, uint64_t *count, struct ota_detail *det);
    /* Entry `index` into out (cap bytes), its length and leaf hash (leaf may
     * be NULL). OTA_ERR_NOT_FOUND beyond the count. */
    int (*entry)(struct ota_log_store *s, uint64_t index, uint8_t *out, size_t cap, size_t *len,
                 uint8_t leaf[OTA_MERKLE_HASH_LEN], struct ota_detail *det);
    /* Index of the entry stored with `key`; OTA_ERR_NOT_FOUND if none. */
    int (*find)(struct ota_log_store *s, const char *key, uint64_t *index, struct ota_detail *det);
    /* Stores hash tile (level, index) of width hashes (width * 32 bytes). */
    int (*tile_put)(struct ota_log_store *s, unsigned level, uint64_t index, unsigned width,
                    const uint8_t *hashes, struct ota_detail *det);
    /* The first `width` hashes of tile (level, index): OTA_ERR_NOT_FOUND if
     * it is not stored or narrower than width. *len = width * 32. */
    int (*tile_get)(struct ota_log_store *s, unsigned level, uint64_t index, unsigned width,
                    uint8_t out[OTA_TILES_FULL_BYTES], size_t *len, struct ota_detail *det);
    /* The right edge (the empty tree's before the first put). */
    int (*edge_get)(struct ota_log_store *s, struct ota_merkle_edge *edge, struct ota_detail *det);
    int (*edge_put)(struct ota_log_store *s, const struct ota_merkle_edge *edge,
                    struct ota_detail *det);
    /* The latest cosigned checkpoint note, appended to out;
     * OTA_ERR_NOT_FOUND before the first put. */
    int (*checkpoint_get)(struct ota_log_store *s, struct ota_buf *out, struct ota_detail *det);
    int (*checkpoint_put)(struct ota_log_store *s, const void *note, size_t len,
                          struct ota_detail *det);
    /* Size the witness `name` last cosigned (0 when it never did). */
    int (*witness_get)(struct ota_log_store *s, const char *name, uint64_t *size,
                       struct ota_detail *det);
    int (*witness_put)(struct ota_log_store *s, const char *name, uint64_t size,
                       struct ota_detail *det);
    /* Drops the entries from index `size` on (and their lookup keys) and
     * trims every tile to the tree of `size` (a tile of a level no longer
     * reached goes, a partial one gets the width the smaller tree has):
     * the store then holds the tree of `size` leaves, for a tree that no
     * witness may hold (publish.h). The caller puts that tree's edge. */
    int (*truncate)(struct ota_log_store *s, uint64_t size, struct ota_detail *det);
    /* Named values of the log's owner (at most OTA_LOG_STORE_VALUE_MAX
     * bytes, names at most OTA_LOG_STORE_KEY_MAX): the per-root
     * checkpoints ("root-checkpoint/<N>"), the publish in progress.
     * value_get appends to out; OTA_ERR_NOT_FOUND if unset. */
    int (*value_get)(struct ota_log_store *s, const char *name, struct ota_buf *out,
                     struct ota_detail *det);
    int (*value_put)(struct ota_log_store *s, const char *name, const void *v, size_t len,
                     struct ota_detail *det);
    int (*value_del)(struct ota_log_store *s, const char *name, struct ota_detail *det);
    /* Rolls back an open transaction, closes and frees. */
    void (*close)(struct ota_log_store *s);
};

/* A store handle: backends embed it first in their own struct. */
struct ota_log_store {
    const struct ota_log_store_ops *ops;
};

/* Opens (creating it if missing, mode 0600) the SQLite store at path, in
 * WAL mode with synchronous=FULL: a commit that returned is durable.
 * path ":memory:" gives a store in memory (no file; for tests).
 * Each commit is announced to hook (may be NULL) as an OTA_FS_STEP_COMMIT
 * step first (the test hooks cut between transactions, never inside one).
 * OTA_ERR_IO / OTA_ERR_FORMAT (not an otachain log database) with det.
 * Authoring side only (linked with the signing library). */
OTA_WUR int ota_log_store_sqlite_open(struct ota_log_store **out, const char *path,
                                      const struct ota_fs_hook *hook, struct ota_detail *det);

/* Closes; accepts NULL. */
void ota_log_store_close(struct ota_log_store *s);

/* A tiles reader over the store (for ota_tiles_source / ota_tiles_append):
 * fills r so that r->read serves tile_get. */
void ota_log_store_tiles_reader(struct ota_tiles_reader *r, struct ota_log_store *s);

#endif
