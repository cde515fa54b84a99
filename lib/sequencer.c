/* The ledger sequencer (see otachain/sequencer.h). */
#include "otachain/sequencer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/tiles.h"
#include "otachain/tlog_proof.h"
#include "otachain/tlog_witness.h"

#define CACHE_TILES 16

int ota_seq_record_of(struct ota_seq_record *out, enum ota_tuf_role role, uint64_t version,
                      const void *data, size_t len)
{
    struct ota_ledger_entry e;
    int rc = ota_ledger_entry_of_file(&e, role, version, data, len);

    memset(out, 0, sizeof(*out));
    if (rc == 0)
        rc = ota_ledger_entry_format(out->rec, &out->len, &e);
    if (rc == 0)
        rc = ota_ledger_entry_leaf(out->leaf, &e);
    snprintf(out->key, sizeof(out->key), "%s/%" PRIu64, ota_tuf_role_name(role), version);
    return rc;
}

struct node_sink {
    struct ota_log_store *store;
    struct ota_detail *det;
};

static int sink_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                     const uint8_t *hashes)
{
    struct node_sink *ns = ctx;

    return ns->store->ops->tile_put(ns->store, level, index, width, hashes, ns->det);
}

int ota_seq_append(struct ota_merkle_edge *edge, uint64_t *idx, struct ota_log_store *s,
                   const struct ota_seq_entry *entries, size_t n, struct ota_detail *det)
{
    uint8_t(*leaves)[OTA_MERKLE_HASH_LEN] = calloc(n + 1, OTA_MERKLE_HASH_LEN);
    struct ota_tiles_reader reader;
    struct node_sink ns = {s, det};
    struct ota_tiles_sink sink = {sink_tile, &ns};
    uint64_t old_size;
    uint64_t count = 0;
    int rc;

    if (leaves == NULL)
        return OTA_ERR_NOMEM;
    rc = s->ops->edge_get(s, edge, det);
    if (rc == 0)
        rc = s->ops->count(s, &count, det);
    if (rc == 0 && count != edge->size) {
        ota_detail_set(det, "ledger store: %" PRIu64 " entries but a tree of %" PRIu64, count,
                       edge->size);
        rc = OTA_ERR_FORMAT;
    }
    old_size = edge->size;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = ota_merkle_leaf_hash(leaves[i], entries[i].data, entries[i].len);
        if (rc == 0)
            rc = s->ops->append(s, edge->size, entries[i].data, entries[i].len, leaves[i],
                                entries[i].key, det);
        if (rc == 0 && idx != NULL)
            idx[i] = edge->size;
        if (rc == 0)
            rc = ota_merkle_edge_append(edge, leaves[i], NULL);
    }
    ota_log_store_tiles_reader(&reader, s);
    if (rc == 0 && n > 0)
        rc = ota_tiles_append(old_size, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaves, n, &reader,
                              &sink, det);
    if (rc == 0)
        rc = s->ops->edge_put(s, edge, det);
    free(leaves);
    return rc;
}

int ota_seq_sign_with(void *ctx, struct ota_buf *note, const char *text, size_t len,
                      struct ota_detail *det)
{
    return ota_note_sign(note, text, len, ctx, det);
}

int ota_seq_checkpoint(struct ota_buf *note, struct ota_buf *body,
                       const struct ota_merkle_edge *edge, const char *origin, size_t origin_len,
                       ota_seq_sign_fn sign, void *ctx, struct ota_detail *det)
{
    struct ota_checkpoint cp;
    struct ota_buf b;
    int rc;

    memset(&cp, 0, sizeof(cp));
    if (origin_len > OTA_CHECKPOINT_MAX_ORIGIN)
        return OTA_ERR_INVALID_ARG;
    cp.origin_len = origin_len;
    memcpy(cp.origin, origin, origin_len);
    cp.size = edge->size;
    ota_buf_init(&b, OTA_CHECKPOINT_MAX_LEN);
    rc = ota_merkle_edge_root(cp.root, edge);
    if (rc == 0)
        rc = ota_checkpoint_format(&b, &cp);
    if (rc == 0)
        rc = ota_buf_append(note, b.data, b.len);
    if (rc == 0)
        rc = ota_buf_append(note, "\n", 1);
    if (rc == 0)
        rc = sign(ctx, note, (const char *)b.data, b.len, det);
    if (rc == 0 && body != NULL)
        rc = ota_buf_append(body, b.data, b.len);
    ota_buf_free(&b);
    return rc;
}

/* The tiles the tree of new_size has and the tree of old_size has not,
 * each as (entries?, level, index, width). */
typedef int (*tile_fn)(void *ctx, const struct ota_tiles_id *id);

static int each_new_tile(uint64_t old_size, uint64_t new_size, tile_fn fn, void *ctx)
{
    int rc = 0;

    for (unsigned level = 0; rc == 0 && level <= OTA_TILES_MAX_LEVEL; level++) {
        unsigned shift = OTA_TILES_HEIGHT * level;
        uint64_t hold = shift < 64 ? old_size >> shift : 0;
        uint64_t hnew = shift < 64 ? new_size >> shift : 0;

        if (hnew == 0)
            break;
        for (uint64_t t = hold / OTA_TILES_WIDTH; rc == 0 && t <= (hnew - 1) / OTA_TILES_WIDTH;
             t++) {
            unsigned w = ota_tiles_width(level, t, new_size);
            struct ota_tiles_id id = {false, level, t, w};

            if (w == 0 || (t == hold / OTA_TILES_WIDTH && w == ota_tiles_width(level, t, old_size)))
                continue;
            rc = fn(ctx, &id);
            if (rc == 0 && level == 0) {
                id.entries = true;
                rc = fn(ctx, &id);
            }
        }
    }
    return rc;
}

struct export_ctx {
    const struct ota_seq_sink *sink;
    struct ota_log_store *s;
    uint8_t *buf;
    struct ota_detail *det;
};

static int export_one(void *ctx, const struct ota_tiles_id *id)
{
    struct export_ctx *x = ctx;
    char path[OTA_TILES_PATH_MAX];
    size_t len = 0;
    int rc = ota_tiles_path_format(path, id);

    if (rc != 0)
        return rc;
    if (!id->entries) {
        rc = x->s->ops->tile_get(x->s, id->level, id->index, id->width, x->buf, &len, x->det);
        return rc != 0 ? rc : x->sink->put(x->sink->ctx, path, x->buf, len, x->det);
    }
    {
        struct ota_buf b;

        ota_buf_init(&b, OTA_TILES_BUNDLE_MAX);
        for (unsigned i = 0; rc == 0 && i < id->width; i++) {
            uint8_t e[OTA_LOG_STORE_ENTRY_MAX];
            size_t elen = 0;

            rc = x->s->ops->entry(x->s, id->index * OTA_TILES_WIDTH + i, e, sizeof(e), &elen, NULL,
                                  x->det);
            if (rc == 0)
                rc = ota_tiles_bundle_append(&b, e, elen);
        }
        if (rc == 0)
            rc = x->sink->put(x->sink->ctx, path, b.data, b.len, x->det);
        ota_buf_free(&b);
    }
    return rc;
}

int ota_seq_export(const struct ota_seq_sink *sink, struct ota_log_store *s, uint64_t old_size,
                   uint64_t new_size, struct ota_detail *det)
{
    struct export_ctx x = {sink, s, malloc(OTA_TILES_FULL_BYTES), det};
    int rc;

    if (x.buf == NULL)
        return OTA_ERR_NOMEM;
    rc = old_size > new_size ? OTA_ERR_INVALID_ARG
                             : each_new_tile(old_size, new_size, export_one, &x);
    free(x.buf);
    return rc;
}

struct paths_ctx {
    int (*fn)(void *ctx, const char *path);
    void *ctx;
};

static int path_one(void *ctx, const struct ota_tiles_id *id)
{
    struct paths_ctx *p = ctx;
    char path[OTA_TILES_PATH_MAX];
    int rc = ota_tiles_path_format(path, id);

    return rc != 0 ? rc : p->fn(p->ctx, path);
}

int ota_seq_export_paths(uint64_t old_size, uint64_t new_size,
                         int (*fn)(void *ctx, const char *path), void *ctx)
{
    struct paths_ctx p = {fn, ctx};

    if (old_size > new_size)
        return OTA_ERR_INVALID_ARG;
    return each_new_tile(old_size, new_size, path_one, &p);
}

/* The stored cosigned checkpoint: its note in stored, its body parsed. */
static int stored_checkpoint(struct ota_checkpoint *cp, struct ota_buf *stored,
                             struct ota_note **parsed, struct ota_log_store *s,
                             struct ota_detail *det)
{
    int rc = s->ops->checkpoint_get(s, stored, det);

    *parsed = NULL;
    if (rc == OTA_ERR_NOT_FOUND)
        ota_detail_set(det, "nothing logged yet (repo publish)");
    if (rc == 0)
        rc = ota_note_parse(parsed, stored->data, stored->len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(cp, (*parsed)->text, (*parsed)->text_len, det);
    return rc;
}

struct proof_ctx {
    struct ota_checkpoint cp;
    struct ota_merkle_proof proof;
    struct ota_tiles_slot slots[CACHE_TILES];
    struct ota_tiles_source ts;
};

int ota_seq_proof_index(struct ota_buf *out, struct ota_log_store *s, uint64_t index,
                        struct ota_detail *det)
{
    struct proof_ctx *x = calloc(1, sizeof(*x));
    struct ota_tiles_reader reader;
    struct ota_note *parsed = NULL;
    struct ota_buf stored;
    int rc = x == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&stored, OTA_LOG_STORE_NOTE_MAX);
    if (rc == 0)
        rc = stored_checkpoint(&x->cp, &stored, &parsed, s, det);
    if (rc == 0 && index >= x->cp.size) {
        ota_detail_set(det, "index %" PRIu64 " is not below the checkpoint size %" PRIu64, index,
                       x->cp.size);
        rc = OTA_ERR_NOT_FOUND;
    }
    ota_log_store_tiles_reader(&reader, s);
    if (rc == 0)
        rc = ota_tiles_source_init(&x->ts, x->cp.size, &reader, x->slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_merkle_prove_inclusion(&x->proof, index, x->cp.size, &x->ts.src, det);
    if (rc == 0)
        rc = ota_tlog_proof_format(out, NULL, 0, index,
                                   (const uint8_t(*)[OTA_TLOG_PROOF_HASH_LEN])x->proof.hash,
                                   x->proof.count, stored.data, stored.len, det);
    ota_note_free(parsed);
    ota_buf_free(&stored);
    free(x);
    return rc;
}

int ota_seq_proof_from(struct ota_buf *out, struct ota_log_store *s, uint64_t from,
                       ota_seq_sign_fn sign, void *ctx, struct ota_detail *det)
{
    struct proof_ctx *x = calloc(1, sizeof(*x));
    struct ota_tiles_reader reader;
    struct ota_note *parsed = NULL;
    struct ota_buf note;
    struct ota_buf stored;
    int rc = x == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&note, OTA_LOG_STORE_NOTE_MAX);
    ota_buf_init(&stored, OTA_LOG_STORE_NOTE_MAX);
    if (rc == 0)
        rc = stored_checkpoint(&x->cp, &stored, &parsed, s, det);
    /* What a witness is sent: the body signed by the log key alone. */
    if (rc == 0)
        rc = ota_buf_append(&note, parsed->text, parsed->text_len);
    if (rc == 0)
        rc = ota_buf_append(&note, "\n", 1);
    if (rc == 0)
        rc = sign(ctx, &note, parsed->text, parsed->text_len, det);
    if (rc == 0 && from > x->cp.size) {
        ota_detail_set(det, "--from %" PRIu64 " is beyond the checkpoint size %" PRIu64, from,
                       x->cp.size);
        rc = OTA_ERR_NOT_FOUND;
    }
    ota_log_store_tiles_reader(&reader, s);
    if (rc == 0)
        rc = ota_tiles_source_init(&x->ts, x->cp.size, &reader, x->slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_merkle_prove_consistency(&x->proof, from, x->cp.size, &x->ts.src, det);
    if (rc == 0)
        rc = ota_tlog_witness_body_format(out, from,
                                          (const uint8_t(*)[OTA_MERKLE_HASH_LEN])x->proof.hash,
                                          x->proof.count, (const char *)note.data, note.len);
    ota_note_free(parsed);
    ota_buf_free(&note);
    ota_buf_free(&stored);
    free(x);
    return rc;
}
