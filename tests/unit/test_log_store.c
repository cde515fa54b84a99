/* Tests of the SQLite log store (otachain/log_store.h): round trips of
 * entries, tiles, edge, checkpoint and witness sizes; a rolled-back
 * transaction leaves nothing; state survives a reopen; proofs served from
 * the stored tiles agree with the edge's root; an allocation failure at any
 * point of an append leaves the store as it was or fully appended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "otachain/fsutil.h"
#include "otachain/log_store.h"

#include "failalloc.h"

struct fixture {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ota-logstore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];
    const char *suffix[] = {"", "-wal", "-shm"};

    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

struct sink_ctx {
    struct ota_log_store *s;
};

static int put_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                    const uint8_t *hashes)
{
    struct sink_ctx *c = ctx;

    return c->s->ops->tile_put(c->s, level, index, width, hashes, NULL);
}

/* Appends n entries "entry <i>\n" from the current size, with tiles and
 * edge, in one transaction; commit or rollback. */
static void append_n(struct ota_log_store *s, uint64_t n, bool commit)
{
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    uint8_t(*leaves)[OTA_MERKLE_HASH_LEN] = calloc(n, OTA_MERKLE_HASH_LEN);
    struct ota_tiles_reader reader;
    struct sink_ctx sc = {s};
    struct ota_tiles_sink sink = {put_tile, &sc};
    uint64_t old;

    assert_non_null(edge);
    assert_non_null(leaves);
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->edge_get(s, edge, NULL), 0);
    old = edge->size;
    for (uint64_t i = 0; i < n; i++) {
        char e[32];
        char key[32];
        int len = snprintf(e, sizeof(e), "entry %llu\n", (unsigned long long)(old + i));

        snprintf(key, sizeof(key), "k/%llu", (unsigned long long)(old + i));
        assert_int_equal(ota_merkle_leaf_hash(leaves[i], e, (size_t)len), 0);
        assert_int_equal(
            s->ops->append(s, old + i, (const uint8_t *)e, (size_t)len, leaves[i], key, NULL), 0);
        assert_int_equal(ota_merkle_edge_append(edge, leaves[i], NULL), 0);
    }
    ota_log_store_tiles_reader(&reader, s);
    assert_int_equal(ota_tiles_append(old, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaves, n,
                                      &reader, &sink, NULL),
                     0);
    assert_int_equal(s->ops->edge_put(s, edge, NULL), 0);
    if (commit)
        assert_int_equal(s->ops->commit(s, NULL), 0);
    else
        s->ops->rollback(s);
    free(edge);
    free(leaves);
}

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    uint8_t buf[64];
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    uint8_t want[OTA_MERKLE_HASH_LEN];
    size_t len = 0;
    uint64_t count = 0;
    uint64_t idx = 0;
    struct ota_buf note;

    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    append_n(s, 700, true);
    assert_int_equal(s->ops->count(s, &count, NULL), 0);
    assert_int_equal(count, 700);
    assert_int_equal(s->ops->entry(s, 513, buf, sizeof(buf), &len, leaf, NULL), 0);
    assert_int_equal(len, strlen("entry 513\n"));
    assert_memory_equal(buf, "entry 513\n", len);
    assert_int_equal(ota_merkle_leaf_hash(want, "entry 513\n", len), 0);
    assert_memory_equal(leaf, want, sizeof(want));
    assert_int_equal(s->ops->entry(s, 700, buf, sizeof(buf), &len, leaf, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->find(s, "k/42", &idx, NULL), 0);
    assert_int_equal(idx, 42);
    assert_int_equal(s->ops->find(s, "k/700", &idx, NULL), OTA_ERR_NOT_FOUND);

    /* Tiles: level 0 has tiles 0, 1 full and 2 partial (188). */
    {
        uint8_t *t = malloc(OTA_TILES_FULL_BYTES);

        assert_non_null(t);
        assert_int_equal(s->ops->tile_get(s, 0, 2, 188, t, &len, NULL), 0);
        assert_int_equal(len, 188 * 32);
        assert_int_equal(s->ops->tile_get(s, 0, 2, 189, t, &len, NULL), OTA_ERR_NOT_FOUND);
        assert_int_equal(s->ops->tile_get(s, 0, 1, 256, t, &len, NULL), 0);
        assert_int_equal(s->ops->tile_get(s, 1, 0, 2, t, &len, NULL), 0);
        free(t);
    }
    assert_int_equal(s->ops->edge_get(s, edge, NULL), 0);
    assert_int_equal(edge->size, 700);

    /* Checkpoint and witness sizes. */
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->checkpoint_put(s, "note\n", 5, NULL), 0);
    assert_int_equal(s->ops->witness_put(s, "w1", 700, NULL), 0);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    ota_buf_init(&note, 1024);
    assert_int_equal(s->ops->checkpoint_get(s, &note, NULL), 0);
    assert_int_equal(note.len, 5);
    ota_buf_free(&note);
    assert_int_equal(s->ops->witness_get(s, "w1", &count, NULL), 0);
    assert_int_equal(count, 700);
    assert_int_equal(s->ops->witness_get(s, "w2", &count, NULL), 0);
    assert_int_equal(count, 0);
    ota_log_store_close(s);
    free(edge);
}

/* Named values: kept apart from the store's own state, transactional,
 * capped. */
static void test_values(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    struct ota_buf b;
    char longname[OTA_LOG_STORE_KEY_MAX + 2];

    ota_buf_init(&b, 4096);
    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    assert_int_equal(s->ops->value_get(s, "root-checkpoint/2", &b, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->value_put(s, "root-checkpoint/2", "cp", 2, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->value_put(s, "root-checkpoint/2", "cp2", 3, NULL), 0);
    assert_int_equal(s->ops->value_put(s, "checkpoint", "mine", 4, NULL), 0);
    assert_int_equal(s->ops->value_put(s, "gone", "x", 1, NULL), 0);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    assert_int_equal(s->ops->value_get(s, "root-checkpoint/2", &b, NULL), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "cp2", 3);
    /* A value named like the store's own state does not touch it. */
    b.len = 0;
    assert_int_equal(s->ops->checkpoint_get(s, &b, NULL), OTA_ERR_NOT_FOUND);
    /* Deleted in a transaction, rolled back with it. */
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->value_del(s, "gone", NULL), 0);
    s->ops->rollback(s);
    b.len = 0;
    assert_int_equal(s->ops->value_get(s, "gone", &b, NULL), 0);
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->value_del(s, "gone", NULL), 0);
    assert_int_equal(s->ops->commit(s, NULL), 0);
    assert_int_equal(s->ops->value_get(s, "gone", &b, NULL), OTA_ERR_NOT_FOUND);
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(s->ops->value_get(s, longname, &b, NULL), OTA_ERR_TOO_LARGE);
    assert_int_equal(s->ops->value_get(s, "", &b, NULL), OTA_ERR_TOO_LARGE);
    ota_log_store_close(s);
    ota_buf_free(&b);
}

static void test_changes_need_a_transaction(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    uint8_t leaf[OTA_MERKLE_HASH_LEN] = {0};
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));

    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    assert_int_equal(s->ops->append(s, 0, (const uint8_t *)"x", 1, leaf, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    ota_merkle_edge_init(edge);
    assert_int_equal(s->ops->edge_put(s, edge, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->witness_put(s, "w", 1, NULL), OTA_ERR_INVALID_ARG);
    /* Dense appends only, unique keys. */
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->begin(s, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->append(s, 1, (const uint8_t *)"x", 1, leaf, NULL, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->append(s, 0, (const uint8_t *)"x", 1, leaf, "k", NULL), 0);
    assert_int_equal(s->ops->append(s, 1, (const uint8_t *)"y", 1, leaf, "k", NULL),
                     OTA_ERR_EXISTS);
    s->ops->rollback(s);
    ota_log_store_close(s);
    free(edge);
}

static void test_rollback_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    uint8_t *t = malloc(OTA_TILES_FULL_BYTES);
    uint64_t count = 0;
    uint64_t idx = 0;
    size_t len = 0;

    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    append_n(s, 10, true);
    append_n(s, 300, false);
    assert_int_equal(s->ops->count(s, &count, NULL), 0);
    assert_int_equal(count, 10);
    assert_int_equal(s->ops->edge_get(s, edge, NULL), 0);
    assert_int_equal(edge->size, 10);
    assert_int_equal(s->ops->find(s, "k/10", &idx, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->tile_get(s, 0, 0, 10, t, &len, NULL), 0);
    assert_int_equal(s->ops->tile_get(s, 0, 0, 11, t, &len, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->tile_get(s, 0, 1, 1, t, &len, NULL), OTA_ERR_NOT_FOUND);
    /* Closing with a transaction open rolls it back too. */
    assert_int_equal(s->ops->begin(s, NULL), 0);
    assert_int_equal(s->ops->witness_put(s, "w", 5, NULL), 0);
    ota_log_store_close(s);
    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    assert_int_equal(s->ops->witness_get(s, "w", &count, NULL), 0);
    assert_int_equal(count, 0);
    ota_log_store_close(s);
    free(edge);
    free(t);
}

static void test_reopen_and_prove_from_tiles(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    struct ota_tiles_slot *slots = calloc(16, sizeof(*slots));
    struct ota_tiles_source *ts = calloc(1, sizeof(*ts));
    struct ota_merkle_proof *proof = calloc(1, sizeof(*proof));
    struct ota_tiles_reader reader;
    uint8_t root[OTA_MERKLE_HASH_LEN];
    uint8_t root2[OTA_MERKLE_HASH_LEN];
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    uint8_t buf[64];
    size_t len = 0;
    struct stat st;

    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    append_n(s, 257, true);
    ota_log_store_close(s);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    append_n(s, 1000, true);
    assert_int_equal(s->ops->edge_get(s, edge, NULL), 0);
    assert_int_equal(edge->size, 1257);
    assert_int_equal(ota_merkle_edge_root(root, edge), 0);
    ota_log_store_tiles_reader(&reader, s);
    assert_int_equal(ota_tiles_source_init(ts, 1257, &reader, slots, 16), 0);
    assert_int_equal(ota_merkle_root(root2, 1257, &ts->src, NULL), 0);
    assert_memory_equal(root, root2, sizeof(root));
    assert_int_equal(ota_merkle_prove_inclusion(proof, 777, 1257, &ts->src, NULL), 0);
    assert_int_equal(s->ops->entry(s, 777, buf, sizeof(buf), &len, leaf, NULL), 0);
    assert_int_equal(ota_merkle_verify_inclusion(leaf, 777, 1257,
                                                 (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                                 proof->count, root, NULL),
                     0);
    ota_log_store_close(s);
    free(edge);
    free(slots);
    free(ts);
    free(proof);
}

static void test_not_a_store(void **state)
{
    struct fixture *f = *state;
    struct ota_log_store *s = NULL;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    fputs("this is not a database, just text that is long enough to be a header......\n", fp);
    fclose(fp);
    assert_int_not_equal(ota_log_store_sqlite_open(&s, f->path, NULL, NULL), 0);
    assert_null(s);
    ota_log_store_close(NULL);
}

/* append_n without assertions: opens the store, appends n entries with
 * their tiles and edge in one transaction, commits, closes. */
static int fa_append(const char *path, uint64_t n)
{
    struct ota_log_store *s = NULL;
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    uint8_t(*leaves)[OTA_MERKLE_HASH_LEN] = calloc(n, OTA_MERKLE_HASH_LEN);
    struct ota_tiles_reader reader;
    struct sink_ctx sc;
    struct ota_tiles_sink sink = {put_tile, &sc};
    bool in_tx = false;
    uint64_t old = 0;
    int rc = edge == NULL || leaves == NULL ? OTA_ERR_NOMEM : 0;

    if (rc == 0)
        rc = ota_log_store_sqlite_open(&s, path, NULL, NULL);
    if (rc == 0)
        rc = s->ops->begin(s, NULL);
    in_tx = rc == 0;
    if (rc == 0)
        rc = s->ops->edge_get(s, edge, NULL);
    old = edge != NULL ? edge->size : 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        char e[32];
        char key[32];
        int len = snprintf(e, sizeof(e), "entry %llu\n", (unsigned long long)(old + i));

        snprintf(key, sizeof(key), "k/%llu", (unsigned long long)(old + i));
        rc = ota_merkle_leaf_hash(leaves[i], e, (size_t)len);
        if (rc == 0)
            rc = s->ops->append(s, old + i, (const uint8_t *)e, (size_t)len, leaves[i], key, NULL);
        if (rc == 0)
            rc = ota_merkle_edge_append(edge, leaves[i], NULL);
    }
    if (rc == 0) {
        sc.s = s;
        ota_log_store_tiles_reader(&reader, s);
        rc = ota_tiles_append(old, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaves, n, &reader, &sink,
                              NULL);
    }
    if (rc == 0)
        rc = s->ops->edge_put(s, edge, NULL);
    if (rc == 0)
        rc = s->ops->commit(s, NULL);
    else if (in_tx)
        s->ops->rollback(s);
    ota_log_store_close(s);
    free(edge);
    free(leaves);
    return rc;
}

static uint64_t stored_size(const char *path)
{
    struct ota_log_store *s = NULL;
    struct ota_merkle_edge edge;

    assert_int_equal(ota_log_store_sqlite_open(&s, path, NULL, NULL), 0);
    assert_int_equal(s->ops->edge_get(s, &edge, NULL), 0);
    ota_log_store_close(s);
    return edge.size;
}

/* STYLE rule 9 on the durable store: 200 entries committed, then an
 * append of 100 more (crossing the first full tile) with each allocation
 * failing in turn. After every run the store holds 200 or 300 entries,
 * never anything in between, and accepts the next append. SQLite's own
 * allocations are not failed (it allocates through its own allocator). */
static void test_alloc_faults(void **state)
{
    struct fixture *f = *state;
    char pristine[128];
    unsigned long k;

    snprintf(pristine, sizeof(pristine), "%s/pristine.db", f->dir);
    assert_int_equal(fa_append(f->path, 200), 0);
    assert_int_equal(stored_size(f->path), 200);
    {
        uint8_t *db = NULL;
        size_t len = 0;

        assert_int_equal(ota_fs_read(&db, &len, f->path, 1 << 26), 0);
        assert_int_equal(ota_fs_replace(pristine, db, len, 0600, NULL), 0);
        free(db);
    }
    assert_int_equal(fa_append(f->path, 100), 0); /* warm-up */
    for (k = 1;; k++) {
        uint8_t *db = NULL;
        size_t len = 0;
        uint64_t size;
        int rc;
        int fired;

        assert_int_equal(ota_fs_read(&db, &len, pristine, 1 << 26), 0);
        assert_int_equal(ota_fs_replace(f->path, db, len, 0600, NULL), 0);
        free(db);
        fa_arm(k);
        rc = fa_append(f->path, 100);
        fired = fa_disarm();
        size = stored_size(f->path);
        if (!fired) {
            assert_int_equal(rc, 0);
            assert_int_equal(size, 300);
            break;
        }
        if (!fa_rc_ok(rc))
            fail_msg("allocation %lu failed: %s", k, ota_errname(rc));
        assert_int_equal(size, rc == 0 ? 300 : 200);
        assert_int_equal(fa_append(f->path, 10), 0);
        assert_int_equal(stored_size(f->path), size + 10);
    }
    assert_true(fa_failed_runs() >= 10);
    unlink(pristine);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_need_a_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_prove_from_tiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
