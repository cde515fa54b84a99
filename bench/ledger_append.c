/* Ledger append throughput (issue 3, "append throughput of metadata
 * records ... durable before acknowledged"; goal >= 10,000 entries/s on
 * the 2-core machine).
 *
 *   ledger_append [TOTAL [MAX_BATCHES [DIR]]]
 *
 * For each batch size B in 1, 10, 100, 1000, 10000: a fresh SQLite log
 * store (lib/log_store_sqlite.c: WAL, synchronous=FULL) in DIR (default
 * $TMPDIR or /var/tmp), then min(TOTAL, B * MAX_BATCHES) entries
 * (defaults 200000 and 2000; at least one batch) appended in batches of B,
 * each batch the way `repo publish` sequences one
 * (programs/otachain/ledger.c):
 *
 *   begin ─► edge_get + count check ─► per entry: ledger record (role,
 *   version, length, SHA-256; docs/formats/ledger.md), leaf hash, store
 *   append with its lookup key, edge append ─► ota_tiles_append (tiles
 *   read back from the store, written to it) ─► edge_put ─► checkpoint
 *   body + Ed25519 note signature by the log key ─► checkpoint_put ─►
 *   commit (fsync of the WAL: the durability point) ─► acknowledged.
 *
 * No witness round (bench/ledger-publish measures that). Prints one
 * Markdown row per batch size: entries, batches, seconds, entries/s,
 * median and max batch latency (begin to commit returned), bytes of
 * ledger.db per entry after close (WAL checkpointed into the file).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/ledger_entry.h"
#include "otachain/log_store.h"
#include "otachain/merkle.h"
#include "otachain/note_sign.h"
#include "otachain/tiles.h"

#define HL          OTA_MERKLE_HASH_LEN
#define ORIGIN      "bench.otachain.invalid/append"
#define MAX_BATCH   10000
#define NOTE_CAP    4096
#define PATH_CAP    4096
#define DEF_TOTAL   200000
#define DEF_BATCHES 2000

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static int parse_u64(uint64_t *out, const char *s, uint64_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

struct tile_sink {
    struct ota_log_store *store;
    struct ota_detail *det;
};

static int sink_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                     const uint8_t *hashes)
{
    struct tile_sink *ts = ctx;

    return ts->store->ops->tile_put(ts->store, level, index, width, hashes, ts->det);
}

/* One batch of n entries appended at the store's current size, with its
 * checkpoint, committed. *next is the version counter of the records. */
static int one_batch(struct ota_log_store *s, const struct ota_note_signer *key,
                     uint8_t (*leaves)[HL], size_t n, uint64_t *next, struct ota_detail *det)
{
    struct ota_merkle_edge edge;
    struct ota_checkpoint cp;
    struct ota_tiles_reader reader;
    struct tile_sink tsk = {s, det};
    struct ota_tiles_sink sink = {sink_tile, &tsk};
    struct ota_buf body;
    struct ota_buf note;
    uint64_t count = 0;
    uint64_t old_size;
    int rc = s->ops->begin(s, det);

    ota_buf_init(&body, OTA_CHECKPOINT_MAX_LEN);
    ota_buf_init(&note, NOTE_CAP);
    if (rc != 0)
        return rc;
    rc = s->ops->edge_get(s, &edge, det);
    if (rc == 0)
        rc = s->ops->count(s, &count, det);
    if (rc == 0 && count != edge.size) {
        ota_detail_set(det, "%" PRIu64 " entries but a tree of %" PRIu64, count, edge.size);
        rc = OTA_ERR_FORMAT;
    }
    old_size = edge.size;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct ota_ledger_entry e;
        uint8_t rec[OTA_LEDGER_ENTRY_MAX];
        uint8_t file[16];
        size_t rlen = 0;
        char k[32];
        uint64_t v = (*next)++;

        /* A targets version: the record of a 16-byte stand-in file. */
        memset(file, 0, sizeof(file));
        memcpy(file, &v, sizeof(v));
        rc = ota_ledger_entry_of_file(&e, OTA_TUF_TARGETS, v, file, sizeof(file));
        if (rc == 0)
            rc = ota_ledger_entry_format(rec, &rlen, &e);
        if (rc == 0)
            rc = ota_ledger_entry_leaf(leaves[i], &e);
        snprintf(k, sizeof(k), "targets/%" PRIu64, v);
        if (rc == 0)
            rc = s->ops->append(s, edge.size, rec, rlen, leaves[i], k, det);
        if (rc == 0)
            rc = ota_merkle_edge_append(&edge, leaves[i], NULL);
    }
    ota_log_store_tiles_reader(&reader, s);
    if (rc == 0)
        rc = ota_tiles_append(old_size, (const uint8_t(*)[HL])leaves, n, &reader, &sink, det);
    if (rc == 0)
        rc = s->ops->edge_put(s, &edge, det);
    memset(&cp, 0, sizeof(cp));
    cp.origin_len = strlen(ORIGIN);
    memcpy(cp.origin, ORIGIN, cp.origin_len);
    cp.size = edge.size;
    if (rc == 0)
        rc = ota_merkle_edge_root(cp.root, &edge);
    if (rc == 0)
        rc = ota_checkpoint_format(&body, &cp);
    if (rc == 0)
        rc = ota_buf_append(&note, body.data, body.len);
    if (rc == 0)
        rc = ota_buf_append(&note, "\n", 1);
    if (rc == 0)
        rc = ota_note_sign(&note, (const char *)body.data, body.len, key, det);
    if (rc == 0)
        rc = s->ops->checkpoint_put(s, note.data, note.len, det);
    if (rc == 0)
        rc = s->ops->commit(s, det);
    else
        s->ops->rollback(s);
    ota_buf_free(&body);
    ota_buf_free(&note);
    return rc;
}

/* Record length of the bench's entries (for the header line). */
static size_t record_len(void)
{
    struct ota_ledger_entry e;
    uint8_t rec[OTA_LEDGER_ENTRY_MAX];
    uint8_t file[16] = {0};
    size_t rlen = 0;

    if (ota_ledger_entry_of_file(&e, OTA_TUF_TARGETS, 100000, file, sizeof(file)) != 0 ||
        ota_ledger_entry_format(rec, &rlen, &e) != 0)
        return 0;
    return rlen;
}

static int run_size(const char *dir, size_t batch, uint64_t total,
                    const struct ota_note_signer *key, uint8_t (*leaves)[HL])
{
    char path[PATH_CAP];
    struct ota_log_store *s = NULL;
    struct ota_detail det = {{0}};
    uint64_t nb = total / batch;
    uint64_t next = 1;
    double *lat = calloc(nb, sizeof(double));
    double t0;
    double el;
    struct stat st;
    int n;
    int rc;

    if (lat == NULL)
        return OTA_ERR_NOMEM;
    n = snprintf(path, sizeof(path), "%s/ledger-%zu.db", dir, batch);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        free(lat);
        return OTA_ERR_TOO_LARGE;
    }
    unlink(path);
    rc = ota_log_store_sqlite_open(&s, path, &det);
    t0 = now_s();
    for (uint64_t b = 0; rc == 0 && b < nb; b++) {
        double tb = now_s();

        rc = one_batch(s, key, leaves, batch, &next, &det);
        lat[b] = now_s() - tb;
    }
    el = now_s() - t0;
    ota_log_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "ledger_append: batch %zu: %s: %s\n", batch, ota_errname(rc), det.msg);
        free(lat);
        return rc;
    }
    qsort(lat, nb, sizeof(double), cmp_double);
    if (stat(path, &st) != 0)
        st.st_size = 0;
    printf("| %zu | %" PRIu64 " | %" PRIu64 " | %.2f | %.0f | %.2f | %.2f | %.0f |\n", batch,
           nb * batch, nb, el, (double)(nb * batch) / el, lat[nb / 2] * 1e3, lat[nb - 1] * 1e3,
           (double)st.st_size / (double)(nb * batch));
    fflush(stdout);
    free(lat);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t batches[] = {1, 10, 100, 1000, 10000};
    uint64_t total = DEF_TOTAL;
    uint64_t max_batches = DEF_BATCHES;
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_CAP];
    struct ota_note_signer *key = NULL;
    uint8_t(*leaves)[HL] = NULL;
    int rc = 0;

    if ((argc > 1 && parse_u64(&total, argv[1], UINT64_C(100000000)) != 0) ||
        (argc > 2 && parse_u64(&max_batches, argv[2], UINT64_C(100000000)) != 0) || argc > 4) {
        fprintf(stderr, "usage: ledger_append [TOTAL [MAX_BATCHES [DIR]]]\n");
        return 2;
    }
    if (argc > 3) {
        snprintf(dir, sizeof(dir), "%s", argv[3]);
    } else {
        snprintf(dir, sizeof(dir), "%s/otachain-append.XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("ledger_append: mkdtemp");
            return 1;
        }
    }
    leaves = calloc(MAX_BATCH, HL);
    if (leaves == NULL ||
        ota_note_signer_generate(&key, ORIGIN, strlen(ORIGIN), OTA_NOTE_TYPE_ED25519) != 0) {
        fprintf(stderr, "ledger_append: setup failed\n");
        rc = 1;
        goto out;
    }
    printf("Ledger append: %zu-byte records, SQLite store in %s (WAL, synchronous=FULL), "
           "one signed checkpoint and one commit per batch\n\n",
           record_len(), dir);
    printf("| batch | entries | batches | seconds | entries/s | batch latency median, ms | "
           "max, ms | ledger.db bytes/entry |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; rc == 0 && i < sizeof(batches) / sizeof(batches[0]); i++) {
        uint64_t n = batches[i] * max_batches;

        if (n > total)
            n = total;
        if (n < batches[i])
            n = batches[i];
        rc = run_size(dir, batches[i], n, key, leaves) != 0;
    }
out:
    if (argc <= 3)
        rmdir(dir);
    ota_note_signer_free(key);
    free(leaves);
    return rc;
}
