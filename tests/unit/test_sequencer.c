/* Unit tests for sequencer.c: appends over a log store (SQLite in memory)
 * match an independent naive tree, the exported tiles are the ones the
 * tree gains (and the paths to remove the same), checkpoints verify, and
 * proofs come from the stored tiles; a truncated store grows again into
 * another tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive_tree.h"
#include "otachain/checkpoint.h"
#include "otachain/sequencer.h"
#include "otachain/tiles.h"
#include "otachain/tlog_witness.h"

#define N 600

struct sink {
    size_t n;
    char paths[64][OTA_TILES_PATH_MAX];
};

static int put(void *ctx, const char *path, const void *data, size_t len, struct ota_detail *det)
{
    struct sink *s = ctx;

    (void)data;
    (void)det;
    assert_true(len > 0);
    assert_true(s->n < 64);
    snprintf(s->paths[s->n++], OTA_TILES_PATH_MAX, "%s", path);
    return 0;
}

static int collect(void *ctx, const char *path)
{
    return put(ctx, path, "x", 1, NULL);
}

static void entry_text(char out[32], size_t i, int variant)
{
    snprintf(out, 32, "entry %zu%s\n", i, variant ? " (other)" : "");
}

/* Appends entries [from, to) in one transaction; returns the edge. */
static void append_range(struct ota_log_store *s, struct ota_merkle_edge *edge, size_t from,
                         size_t to, int variant)
{
    struct ota_seq_entry *e = calloc(to - from + 1, sizeof(*e));
    char(*text)[32] = calloc(to - from + 1, 32);
    uint64_t *idx = calloc(to - from + 1, sizeof(*idx));

    assert_non_null(e);
    assert_non_null(text);
    for (size_t i = from; i < to; i++) {
        entry_text(text[i - from], i, variant);
        e[i - from] =
            (struct ota_seq_entry){(const uint8_t *)text[i - from], strlen(text[i - from]), NULL};
    }
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(ota_seq_append(edge, idx, s, e, to - from, NULL), 0);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    for (size_t i = from; i < to; i++)
        assert_int_equal(idx[i - from], i);
    free(e);
    free(text);
    free(idx);
}

static void naive_root(uint8_t root[NH], size_t size, int variant_from)
{
    uint8_t(*leaves)[NH] = calloc(size + 1, NH);

    assert_non_null(leaves);
    for (size_t i = 0; i < size; i++) {
        char t[32];

        entry_text(t, i, i >= (size_t)variant_from);
        nt_leaf(leaves[i], t, strlen(t));
    }
    nt_mth(root, (const uint8_t(*)[NH])leaves, 0, size);
    free(leaves);
}

static void test_append_export_checkpoint(void **state)
{
    struct ota_log_store *s = NULL;
    struct ota_note_signer *key = NULL;
    struct ota_note_verifier v;
    struct ota_merkle_edge edge;
    uint8_t root[NH];
    uint8_t want[NH];
    struct sink exported = {0}, paths = {0};
    struct ota_seq_sink sk = {put, &exported};
    struct ota_buf note, body;
    struct ota_checkpoint cp;
    uint8_t seed[32];

    (void)state;
    memset(seed, 7, sizeof(seed));
    assert_int_equal(ota_note_signer_from_seed(&key, "seq.test", 8, OTA_NOTE_TYPE_ED25519, seed),
                     0);
    assert_int_equal(ota_log_store_sqlite_open(&s, ":memory:", NULL, NULL), 0);
    append_range(s, &edge, 0, 250, 0);
    append_range(s, &edge, 250, N, 0);
    assert_int_equal(edge.size, N);
    assert_int_equal(ota_merkle_edge_root(root, &edge), 0);
    naive_root(want, N, N);
    assert_memory_equal(root, want, NH);

    /* The tiles the tree of 600 has and the tree of 250 has not. */
    assert_int_equal(ota_seq_export(&sk, s, 250, N, NULL), 0);
    assert_int_equal(ota_seq_export_paths(250, N, collect, &paths), 0);
    assert_int_equal(exported.n, paths.n);
    for (size_t i = 0; i < exported.n; i++)
        assert_string_equal(exported.paths[i], paths.paths[i]);
    /* Level 0: tile 0 now full (it was 250 wide), tile 1 full, tile 2
     * partial (88), each with its bundle; level 1: tile 0, 2 wide. */
    {
        bool full0 = false, part2 = false, lvl1 = false;

        for (size_t i = 0; i < exported.n; i++) {
            full0 = full0 || strcmp(exported.paths[i], "tile/0/000") == 0;
            part2 = part2 || strcmp(exported.paths[i], "tile/entries/002.p/88") == 0;
            lvl1 = lvl1 || strcmp(exported.paths[i], "tile/1/000.p/2") == 0;
        }
        assert_true(full0 && part2 && lvl1);
    }
    assert_int_equal(ota_seq_export(&sk, s, N, 250, NULL), OTA_ERR_INVALID_ARG);

    /* The checkpoint verifies under the key and names the root. */
    ota_buf_init(&note, 4096);
    ota_buf_init(&body, 4096);
    assert_int_equal(
        ota_seq_checkpoint(&note, &body, &edge, "seq.test", 8, ota_seq_sign_with, key, NULL), 0);
    assert_int_equal(ota_checkpoint_parse(&cp, (const char *)body.data, body.len, NULL), 0);
    assert_int_equal(cp.size, N);
    assert_memory_equal(cp.root, want, NH);
    {
        struct ota_note *parsed = NULL;
        struct ota_note_check chk;
        size_t nv = 0;

        ota_note_signer_verifier(&v, key);
        assert_int_equal(ota_note_parse(&parsed, note.data, note.len, NULL), 0);
        assert_int_equal(ota_note_verify(&chk, &nv, parsed, &v, 1, NULL), 0);
        assert_true(chk.verified);
        ota_note_free(parsed);
    }

    /* Proofs from the stored tiles, against the stored checkpoint. */
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->checkpoint_put(s, note.data, note.len, NULL), 0);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    {
        struct ota_buf out;
        struct ota_tlog_witness_body b;
        uint8_t old_root[NH];

        ota_buf_init(&out, 1 << 20);
        assert_int_equal(ota_seq_proof_from(&out, s, 250, ota_seq_sign_with, key, NULL), 0);
        assert_int_equal(ota_tlog_witness_body_parse(&b, out.data, out.len, NULL), 0);
        assert_int_equal(b.old_size, 250);
        naive_root(old_root, 250, N);
        assert_int_equal(ota_merkle_verify_consistency(
                             250, N, old_root, want, (const uint8_t(*)[NH])b.proof, b.nproof, NULL),
                         0);
        out.len = 0;
        assert_int_equal(ota_seq_proof_index(&out, s, 17, NULL), 0);
        assert_non_null(strstr((const char *)out.data, "index 17\n"));
        assert_int_equal(ota_seq_proof_index(&out, s, N, NULL), OTA_ERR_NOT_FOUND);
        assert_int_equal(ota_seq_proof_from(&out, s, N + 1, ota_seq_sign_with, key, NULL),
                         OTA_ERR_NOT_FOUND);
        ota_buf_free(&out);
    }

    /* Truncated back to 300 (a dropped tree), then grown with other
     * entries: the tree is the naive one of the new entries. */
    {
        struct ota_merkle_edge e300;
        uint64_t count = 0;

        ota_merkle_edge_init(&e300);
        for (size_t i = 0; i < 300; i++) {
            char t[32];
            uint8_t leaf[NH];

            entry_text(t, i, 0);
            nt_leaf(leaf, t, strlen(t));
            assert_int_equal(ota_merkle_edge_append(&e300, leaf, NULL), 0);
        }
        assert_int_equal(s->ops->begin(s, NULL), 0);
        assert_int_equal(s->ops->truncate(s, 300, NULL), 0);
        assert_int_equal(s->ops->edge_put(s, &e300, NULL), 0);
        assert_int_equal(s->ops->commit(s, NULL), 0);
        assert_int_equal(s->ops->count(s, &count, NULL), 0);
        assert_int_equal(count, 300);
        append_range(s, &edge, 300, 700, 1);
        assert_int_equal(ota_merkle_edge_root(root, &edge), 0);
        naive_root(want, 700, 300);
        assert_memory_equal(root, want, NH);
        /* The tiles now serve the new tree: a proof from 300 verifies. */
        {
            struct ota_tiles_slot slots[8];
            struct ota_tiles_source ts;
            struct ota_tiles_reader reader;
            struct ota_merkle_proof *proof = calloc(1, sizeof(*proof));
            uint8_t r300[NH];

            assert_non_null(proof);
            ota_log_store_tiles_reader(&reader, s);
            assert_int_equal(ota_tiles_source_init(&ts, 700, &reader, slots, 8), 0);
            assert_int_equal(ota_merkle_prove_consistency(proof, 300, 700, &ts.src, NULL), 0);
            naive_root(r300, 300, 700);
            assert_int_equal(ota_merkle_verify_consistency(300, 700, r300, want,
                                                           (const uint8_t(*)[NH])proof->hash,
                                                           proof->count, NULL),
                             0);
            free(proof);
        }
    }
    ota_buf_free(&note);
    ota_buf_free(&body);
    ota_log_store_close(s);
    ota_note_signer_free(key);
}

/* The record of a metadata file and its lookup key. */
static void test_record_of(void **state)
{
    struct ota_seq_record r;
    struct ota_ledger_entry e;

    (void)state;
    assert_int_equal(ota_seq_record_of(&r, OTA_TUF_TARGETS, 7, "{}", 2), 0);
    assert_string_equal(r.key, "targets/7");
    assert_int_equal(ota_ledger_entry_parse(&e, r.rec, r.len, NULL), 0);
    assert_int_equal(e.version, 7);
    assert_int_equal(e.length, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_export_checkpoint),
        cmocka_unit_test(test_record_of),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
