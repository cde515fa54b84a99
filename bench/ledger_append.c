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
 * each batch through the sequencer `repo publish` uses (sequencer.h):
 *
 *   begin ─► per entry: ledger record (role, version, length, SHA-256;
 *   docs/formats/ledger.md) ─► ota_seq_append (edge_get + count check,
 *   leaf hashes, store appends with their lookup keys, edge, tiles) ─►
 *   ota_seq_checkpoint (body + Ed25519 note signature by the log key) ─►
 *   checkpoint_put ─► commit (fsync of the WAL: the durability point) ─►
 *   acknowledged.
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
#include "otachain/sequencer.h"

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

/* One batch of n entries appended at the store's current size by the
 * sequencer (the code `repo publish` runs), with its checkpoint,
 * committed. *next is the version counter of the records. */
static int one_batch(struct ota_log_store *s, struct ota_note_signer *key,
                     struct ota_seq_record *recs, struct ota_seq_entry *ents, size_t n,
                     uint64_t *next, struct ota_detail *det)
{
    struct ota_merkle_edge edge;
    struct ota_buf note;
    int rc = s->ops->begin(s, det);

    if (rc != 0)
        return rc;
    ota_buf_init(&note, NOTE_CAP);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t file[16];
        uint64_t v = (*next)++;

        /* A targets version: the record of a 16-byte stand-in file. */
        memset(file, 0, sizeof(file));
        memcpy(file, &v, sizeof(v));
        rc = ota_seq_record_of(&recs[i], OTA_TUF_TARGETS, v, file, sizeof(file));
        ents[i] = (struct ota_seq_entry){recs[i].rec, recs[i].len, recs[i].key};
    }
    if (rc == 0)
        rc = ota_seq_append(&edge, NULL, s, ents, n, det);
    if (rc == 0)
        rc = ota_seq_checkpoint(&note, NULL, &edge, ORIGIN, strlen(ORIGIN), ota_seq_sign_with, key,
                                det);
    if (rc == 0)
        rc = s->ops->checkpoint_put(s, note.data, note.len, det);
    if (rc == 0)
        rc = s->ops->commit(s, det);
    else
        s->ops->rollback(s);
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

static int run_size(const char *dir, size_t batch, uint64_t total, struct ota_note_signer *key,
                    struct ota_seq_record *recs, struct ota_seq_entry *ents)
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
    rc = ota_log_store_sqlite_open(&s, path, NULL, &det);
    t0 = now_s();
    for (uint64_t b = 0; rc == 0 && b < nb; b++) {
        double tb = now_s();

        rc = one_batch(s, key, recs, ents, batch, &next, &det);
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
    struct ota_seq_record *recs = NULL;
    struct ota_seq_entry *ents = NULL;
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
    recs = calloc(MAX_BATCH, sizeof(*recs));
    ents = calloc(MAX_BATCH, sizeof(*ents));
    if (recs == NULL || ents == NULL ||
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
        rc = run_size(dir, batches[i], n, key, recs, ents) != 0;
    }
out:
    if (argc <= 3)
        rmdir(dir);
    ota_note_signer_free(key);
    free(recs);
    free(ents);
    return rc;
}
