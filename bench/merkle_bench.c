/* Merkle log benchmark: proof sizes, verification time and generation
 * look-ups at 10^3 .. 10^7 entries (issue 3, "proof size and verify time";
 * expected: about 20 hashes at 10^6, verification well under 1 ms).
 *
 *   merkle_bench [MAX_EXP [SAMPLES]]   sizes 10^3 .. 10^MAX_EXP (default 7),
 *                                      SAMPLES random proofs each (default 1001)
 *
 * For each size the tree is built with the library's right edge
 * (ota_merkle_edge_append), every completed node kept in memory by level
 * (about 2 * 32 bytes per entry: 640 MB at 10^7), and then:
 *   - inclusion proofs of random indices and consistency proofs from random
 *     older sizes are generated from that node store (counting look-ups)
 *     and from tiles synthesized from it (counting tile reads with a cold
 *     16-slot cache, as a server answering one request would);
 *   - each proof is verified, each verification timed on its own.
 * Prints one Markdown table row per size on standard output (medians).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otachain/merkle.h"
#include "otachain/tiles.h"

#define HL OTA_MERKLE_HASH_LEN

/* Every node of the tree, by level; look-ups are counted. */
struct store {
    uint64_t size;
    uint64_t count[64];
    uint8_t (*lv[64])[HL];
    uint64_t lookups;
};

static int store_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HL])
{
    struct store *s = ctx;

    if (level >= 64 || index >= s->count[level])
        return OTA_ERR_INVALID_ARG;
    memcpy(s->lv[level][index], hash, HL);
    return 0;
}

static int store_node(void *ctx, unsigned level, uint64_t index, uint8_t out[HL])
{
    struct store *s = ctx;

    s->lookups++;
    if (level >= 64 || index >= s->count[level])
        return OTA_ERR_NOT_FOUND;
    memcpy(out, s->lv[level][index], HL);
    return 0;
}

/* Tiles cut out of the store (level 8L hashes), as a static log serves
 * them; reads counted by the tile source itself. */
static int store_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                      uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct store *s = ctx;
    uint64_t first = index * OTA_TILES_WIDTH;

    *len = 0;
    if (8 * level >= 64 || first + width > s->count[8 * level])
        return OTA_ERR_NOT_FOUND;
    memcpy(out, s->lv[8 * level][first], (size_t)width * HL);
    *len = (size_t)width * HL;
    return 0;
}

static void store_free(struct store *s)
{
    unsigned l;

    for (l = 0; l < 64; l++)
        free(s->lv[l]);
    memset(s, 0, sizeof(*s));
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd_next(uint64_t *st)
{
    uint64_t x = *st;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * UINT64_C(2685821657736338717);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double maximum(const double *v, size_t n)
{
    double m = 0;
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "merkle_bench: %s: %s\n", what, ota_errname(rc));
    exit(1);
}

/* A ~100-byte entry like the ledger's records. */
static void make_entry(uint8_t *e, size_t len, uint64_t i)
{
    size_t k;

    for (k = 0; k < len; k++)
        e[k] = (uint8_t)(i >> (8 * (k % 8))) ^ (uint8_t)k;
}

static void run(uint64_t n, size_t samples, uint64_t *rnd)
{
    struct store s;
    struct ota_merkle_source src = {store_node, &s};
    struct ota_merkle_sink sink = {store_sink, &s};
    struct ota_merkle_edge edge;
    struct ota_tiles_reader reader = {store_tile, &s};
    static struct ota_tiles_slot slots[16];
    struct ota_tiles_source ts;
    struct ota_merkle_proof p;
    uint8_t root[HL];
    uint8_t eroot[HL];
    uint8_t leaf[HL];
    uint8_t entry[100];
    double *isize = calloc(samples, sizeof(double));
    double *csize = calloc(samples, sizeof(double));
    double *iver = calloc(samples, sizeof(double));
    double *cver = calloc(samples, sizeof(double));
    double *ilook = calloc(samples, sizeof(double));
    double *clook = calloc(samples, sizeof(double));
    double *itile = calloc(samples, sizeof(double));
    double *ctile = calloc(samples, sizeof(double));
    double t0;
    double build;
    uint64_t i;
    unsigned l;
    size_t k;
    int rc;

    if (!isize || !csize || !iver || !cver || !ilook || !clook || !itile || !ctile) {
        fprintf(stderr, "merkle_bench: out of memory\n");
        exit(1);
    }
    memset(&s, 0, sizeof(s));
    s.size = n;
    for (l = 0; l < 64 && (n >> l) > 0; l++) {
        s.count[l] = n >> l;
        s.lv[l] = malloc(s.count[l] * HL);
        if (s.lv[l] == NULL) {
            fprintf(stderr, "merkle_bench: out of memory at level %u\n", l);
            exit(1);
        }
    }
    /* Append every entry through the right edge; the sink keeps each node
     * the append completes. */
    ota_merkle_edge_init(&edge);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        make_entry(entry, sizeof(entry), i);
        if ((rc = ota_merkle_leaf_hash(leaf, entry, sizeof(entry))) != 0)
            die("leaf hash", rc);
        if ((rc = ota_merkle_edge_append(&edge, leaf, &sink)) != 0)
            die("append", rc);
    }
    build = now_s() - t0;
    if ((rc = ota_merkle_edge_root(eroot, &edge)) != 0 ||
        (rc = ota_merkle_root(root, n, &src, NULL)) != 0)
        die("root", rc);
    if (memcmp(root, eroot, HL) != 0) {
        fprintf(stderr, "merkle_bench: edge root and stored root differ\n");
        exit(1);
    }

    for (k = 0; k < samples; k++) {
        uint64_t idx = rnd_next(rnd) % n;
        uint64_t s1 = 1 + rnd_next(rnd) % (n - 1);
        uint64_t before;
        uint8_t r1[HL];

        /* Inclusion. */
        before = s.lookups;
        if ((rc = ota_merkle_prove_inclusion(&p, idx, n, &src, NULL)) != 0)
            die("prove inclusion", rc);
        ilook[k] = (double)(s.lookups - before);
        isize[k] = (double)p.count;
        memcpy(leaf, s.lv[0][idx], HL);
        t0 = now_s();
        rc = ota_merkle_verify_inclusion(leaf, idx, n, (const uint8_t(*)[HL])p.hash, p.count, root,
                                         NULL);
        iver[k] = (now_s() - t0) * 1e6;
        if (rc != 0)
            die("verify inclusion", rc);
        if ((rc = ota_tiles_source_init(&ts, n, &reader, slots, 16)) != 0 ||
            (rc = ota_merkle_prove_inclusion(&p, idx, n, &ts.src, NULL)) != 0)
            die("prove inclusion from tiles", rc);
        itile[k] = (double)ts.reads;

        /* Consistency from an older size. */
        before = s.lookups;
        if ((rc = ota_merkle_root(r1, s1, &src, NULL)) != 0)
            die("old root", rc);
        before = s.lookups;
        if ((rc = ota_merkle_prove_consistency(&p, s1, n, &src, NULL)) != 0)
            die("prove consistency", rc);
        clook[k] = (double)(s.lookups - before);
        csize[k] = (double)p.count;
        t0 = now_s();
        rc = ota_merkle_verify_consistency(s1, n, r1, root, (const uint8_t(*)[HL])p.hash, p.count,
                                           NULL);
        cver[k] = (now_s() - t0) * 1e6;
        if (rc != 0)
            die("verify consistency", rc);
        if ((rc = ota_tiles_source_init(&ts, n, &reader, slots, 16)) != 0 ||
            (rc = ota_merkle_prove_consistency(&p, s1, n, &ts.src, NULL)) != 0)
            die("prove consistency from tiles", rc);
        ctile[k] = (double)ts.reads;
    }
    printf("| %llu | %.0f (max %.0f) | %.0f (max %.0f) | %.1f | %.1f | %.0f (max %.0f) | %.0f (max "
           "%.0f) | %.0f / %.0f | %.2f s (%.0f entries/s) |\n",
           (unsigned long long)n, median(isize, samples), maximum(isize, samples),
           median(csize, samples), maximum(csize, samples), median(iver, samples),
           median(cver, samples), median(ilook, samples), maximum(ilook, samples),
           median(clook, samples), maximum(clook, samples), median(itile, samples),
           median(ctile, samples), build, (double)n / build);
    fflush(stdout);
    store_free(&s);
    free(isize);
    free(csize);
    free(iver);
    free(cver);
    free(ilook);
    free(clook);
    free(itile);
    free(ctile);
}

static unsigned long parse_arg(const char *s, unsigned long lo, unsigned long hi)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "usage: merkle_bench [MAX_EXP 3..9 [SAMPLES 3..1000000]]\n");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    unsigned long max_exp = argc > 1 ? parse_arg(argv[1], 3, 9) : 7;
    size_t samples = argc > 2 ? parse_arg(argv[2], 3, 1000000) : 1001;
    uint64_t rnd = UINT64_C(0x2545f4914f6cdd1d);
    uint64_t n = 1000;
    unsigned long e;

    printf("| entries | inclusion proof, hashes | consistency proof, hashes | verify "
           "inclusion, µs | verify consistency, µs | look-ups, inclusion | look-ups, "
           "consistency | tile reads, incl. / cons. | build (leaf hash + append) |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (e = 3; e <= max_exp; e++, n *= 10)
        run(n, samples, &rnd);
    return 0;
}
