/* The ledger sequencer: appends entries to a log store (log_store.h) and
 * signs checkpoints of its tree; exports the tree as C2SP tlog-tiles. The
 * one copy of this logic, used by publish (publish.h), the append
 * benchmark (bench/ledger_append.c) and the witnesses' test log
 * (tests/tools/ota-testlog.c).
 *
 * One append, inside an open store transaction (the caller commits):
 *
 *   edge_get + count check ─► per entry: leaf hash, store append (with its
 *   lookup key), edge append ─► ota_tiles_append (tiles read back from the
 *   store, written to it) ─► edge_put
 *
 * Invariants kept (log_store.h): entries dense, tiles only grow, edge,
 * tiles and entries describe one tree when the transaction commits.
 */
#ifndef OTACHAIN_SEQUENCER_H
#define OTACHAIN_SEQUENCER_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/ledger_entry.h"
#include "otachain/log_store.h"
#include "otachain/merkle.h"
#include "otachain/note_sign.h"
#include "otachain/tuf.h"

#define OTA_SEQ_KEY_MAX 32 /* "<role>/<version>" */

/* One entry to append: its bytes and an optional unique lookup key. */
struct ota_seq_entry {
    const uint8_t *data;
    size_t len;
    const char *key; /* NULL: none */
};

/* The ledger record of a metadata file (role, version, its exact bytes),
 * its leaf hash and its lookup key "<role>/<version>". */
struct ota_seq_record {
    uint8_t rec[OTA_LEDGER_ENTRY_MAX];
    size_t len;
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    char key[OTA_SEQ_KEY_MAX];
};

OTA_WUR int ota_seq_record_of(struct ota_seq_record *out, enum ota_tuf_role role, uint64_t version,
                              const void *data, size_t len);

/* Appends entries[0..n) at the end of the store's tree, inside the
 * caller's open transaction. edge is the tree after the append; idx (may
 * be NULL) gets each entry's index. On failure the caller rolls back. */
OTA_WUR int ota_seq_append(struct ota_merkle_edge *edge, uint64_t *idx, struct ota_log_store *s,
                           const struct ota_seq_entry *entries, size_t n, struct ota_detail *det);

/* A log key: appends the signature line of text[0..len) to note (the
 * online signer's log_sign, or ota_seq_sign_with for a key in memory). */
typedef int (*ota_seq_sign_fn)(void *ctx, struct ota_buf *note, const char *text, size_t len,
                               struct ota_detail *det);

/* ota_seq_sign_fn for a signed-note signer in memory (ctx). */
int ota_seq_sign_with(void *ctx, struct ota_buf *note, const char *text, size_t len,
                      struct ota_detail *det);

/* The checkpoint of the tree `edge` describes for origin, signed by the
 * log key: appends body, blank line and signature line to note; body (may
 * be NULL) gets the body alone. */
OTA_WUR int ota_seq_checkpoint(struct ota_buf *note, struct ota_buf *body,
                               const struct ota_merkle_edge *edge, const char *origin,
                               size_t origin_len, ota_seq_sign_fn sign, void *ctx,
                               struct ota_detail *det);

/* Where an exported tile goes: path is the tlog-tiles name
 * ("tile/0/000.p/5", "tile/entries/000"); immutable files, so a sink may
 * skip one that exists. */
struct ota_seq_sink {
    int (*put)(void *ctx, const char *path, const void *data, size_t len, struct ota_detail *det);
    void *ctx;
};

/* Exports every hash tile and entry bundle the tree of new_size has and
 * the tree of old_size has not (partial tiles get new names), reading the
 * store. */
OTA_WUR int ota_seq_export(const struct ota_seq_sink *sink, struct ota_log_store *s,
                           uint64_t old_size, uint64_t new_size, struct ota_detail *det);

/* Calls fn for each tile path ota_seq_export(old_size, new_size) would
 * write (to remove the files of a dropped tree). */
OTA_WUR int ota_seq_export_paths(uint64_t old_size, uint64_t new_size,
                                 int (*fn)(void *ctx, const char *path), void *ctx);

/* The C2SP tlog-proof@v1 of entry index against the stored cosigned
 * checkpoint, appended to out. OTA_ERR_NOT_FOUND before the first
 * checkpoint or for an index at or beyond its size. */
OTA_WUR int ota_seq_proof_index(struct ota_buf *out, struct ota_log_store *s, uint64_t index,
                                struct ota_detail *det);

/* The tlog-witness add-checkpoint body from size `from` to the stored
 * cosigned checkpoint, signed again by the log key alone (sign appends
 * the signature line of text to note), appended to out. */
OTA_WUR int ota_seq_proof_from(struct ota_buf *out, struct ota_log_store *s, uint64_t from,
                               ota_seq_sign_fn sign, void *ctx, struct ota_detail *det);

#endif
