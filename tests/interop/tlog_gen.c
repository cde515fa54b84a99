/* tlog_gen: makes a log of N entries with otachain's own code, for the
 * independent cross-check in tests/interop/test_go_tlog.py (Go's
 * golang.org/x/mod/sumdb/{tlog,note}).
 *
 *   tlog_gen N OUTDIR
 *
 * Entry i is the text "otachain interop entry <i>\n". Writes to OUTDIR:
 *   checkpoint   a C2SP checkpoint note signed by the log key (type 0x01)
 *                and cosigned by one witness (cosignature/v1, type 0x04)
 *   vkeys        line 1: the log's verifier key; line 2: the witness's
 *   proofs       lines "inclusion <index> <leaf-hash-b64> <proof-b64>..."
 *                and "consistency <size1> <root1-b64> <proof-b64>..."
 * Keys come from fixed seeds: the output is the same on every run.
 * Proofs are generated through ota_merkle_source from an in-memory store
 * of the tree's nodes (levels kept as arrays), the way the log serves
 * them from tiles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/buf.h"
#include "otachain/checkpoint.h"
#include "otachain/fsutil.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"

#define ORIGIN  "otachain.invalid/interop"
#define WITNESS "witness.otachain.invalid"
#define MAX_N   100000000ULL

struct tree {
    uint64_t n;
    unsigned nlevels;
    uint8_t (*level[64])[OTA_MERKLE_HASH_LEN]; /* level[l][i]: node (l, i) */
};

static int tree_node(void *ctx, unsigned level, uint64_t index, uint8_t out[OTA_MERKLE_HASH_LEN])
{
    const struct tree *t = ctx;
    if (level >= t->nlevels || ((index + 1) << level) > t->n)
        return OTA_ERR_INVALID_ARG;
    memcpy(out, t->level[level][index], OTA_MERKLE_HASH_LEN);
    return 0;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "tlog_gen: %s: %s\n", what, ota_strerror(rc));
    return 1;
}

static int put_b64(FILE *f, const uint8_t *h)
{
    char b64[OTA_BASE64_LEN(OTA_MERKLE_HASH_LEN) + 1];
    size_t n = ota_base64_encode(b64, h, OTA_MERKLE_HASH_LEN);
    return fprintf(f, " %.*s", (int)n, b64) < 0 ? -1 : 0;
}

static int put_proof(FILE *f, const struct ota_merkle_proof *p)
{
    for (size_t i = 0; i < p->count; i++)
        if (put_b64(f, p->hash[i]) != 0)
            return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return OTA_ERR_TOO_LARGE;
    return ota_fs_replace(path, data, len, 0644, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tlog_gen N OUTDIR\n");
        return 2;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || n < 2 || n > MAX_N) {
        fprintf(stderr, "tlog_gen: N must be 2..%llu\n", MAX_N);
        return 2;
    }
    const char *out = argv[2];
    int rc = ota_fs_mkdirs(out, 0755, NULL);
    if (rc != 0)
        return die(out, rc);

    /* Level 0: leaf hashes; then each level from the one below. */
    struct tree t = {.n = n};
    for (uint64_t width = n; width > 0 && t.nlevels < 64; width /= 2) {
        t.level[t.nlevels] = calloc(width, OTA_MERKLE_HASH_LEN);
        if (t.level[t.nlevels] == NULL)
            return die("calloc", OTA_ERR_NOMEM);
        for (uint64_t i = 0; i < width; i++) {
            if (t.nlevels == 0) {
                char entry[64];
                int len = snprintf(entry, sizeof(entry), "otachain interop entry %llu\n",
                                   (unsigned long long)i);
                rc = ota_merkle_leaf_hash(t.level[0][i], entry, (size_t)len);
            } else {
                rc = ota_merkle_node_hash(t.level[t.nlevels][i], t.level[t.nlevels - 1][2 * i],
                                          t.level[t.nlevels - 1][2 * i + 1]);
            }
            if (rc != 0)
                return die("hash", rc);
        }
        t.nlevels++;
    }
    struct ota_merkle_source src = {.node = tree_node, .ctx = &t};

    struct ota_checkpoint cp = {.size = n};
    memcpy(cp.origin, ORIGIN, sizeof(ORIGIN));
    cp.origin_len = sizeof(ORIGIN) - 1;
    struct ota_detail det = {{0}};
    rc = ota_merkle_root(cp.root, n, &src, &det);
    if (rc != 0)
        return die(det.msg, rc);

    uint8_t log_seed[OTA_ED25519_SEED_LEN], wit_seed[OTA_ED25519_SEED_LEN];
    memset(log_seed, 0x11, sizeof(log_seed));
    memset(wit_seed, 0x22, sizeof(wit_seed));
    struct ota_note_signer *log = NULL, *wit = NULL;
    rc = ota_note_signer_from_seed(&log, ORIGIN, strlen(ORIGIN), OTA_NOTE_TYPE_ED25519, log_seed);
    if (rc == 0)
        rc = ota_note_signer_from_seed(&wit, WITNESS, strlen(WITNESS), OTA_NOTE_TYPE_COSIG_V1,
                                       wit_seed);
    if (rc != 0)
        return die("signer", rc);

    struct ota_buf body, note;
    ota_buf_init(&body, OTA_CHECKPOINT_MAX_LEN);
    ota_buf_init(&note, 64 * 1024);
    rc = ota_checkpoint_format(&body, &cp);
    if (rc == 0)
        rc = ota_buf_append(&note, body.data, body.len);
    if (rc == 0)
        rc = ota_buf_append_str(&note, "\n");
    if (rc == 0)
        rc = ota_note_sign(&note, (const char *)body.data, body.len, log, &det);
    if (rc == 0)
        rc = ota_note_cosign(&note, (const char *)body.data, body.len, 1795000000, wit, &det);
    if (rc == 0)
        rc = write_file(out, "checkpoint", note.data, note.len);
    if (rc != 0)
        return die("checkpoint", rc);

    struct ota_note_verifier v;
    char vk[2][OTA_NOTE_VKEY_SIZE];
    ota_note_signer_verifier(&v, log);
    ota_note_verifier_format(vk[0], &v);
    ota_note_signer_verifier(&v, wit);
    ota_note_verifier_format(vk[1], &v);
    char vkeys[2 * OTA_NOTE_VKEY_SIZE + 2];
    int vlen = snprintf(vkeys, sizeof(vkeys), "%s\n%s\n", vk[0], vk[1]);
    rc = write_file(out, "vkeys", vkeys, (size_t)vlen);
    if (rc != 0)
        return die("vkeys", rc);

    char ppath[4096];
    snprintf(ppath, sizeof(ppath), "%s/proofs", out);
    FILE *f = fopen(ppath, "w");
    if (f == NULL)
        return die(ppath, OTA_ERR_IO);
    const uint64_t idx[] = {0, 1, n / 2, 123456 % n, n - 2, n - 1};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
        struct ota_merkle_proof p;
        rc = ota_merkle_prove_inclusion(&p, idx[i], n, &src, &det);
        if (rc != 0)
            return die(det.msg, rc);
        fprintf(f, "inclusion %llu", (unsigned long long)idx[i]);
        if (put_b64(f, t.level[0][idx[i]]) != 0 || put_proof(f, &p) != 0)
            return die(ppath, OTA_ERR_IO);
    }
    const uint64_t sizes[] = {1, 2, 1000, n / 3, n - 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct ota_merkle_proof p;
        uint8_t root1[OTA_MERKLE_HASH_LEN];
        rc = ota_merkle_root(root1, sizes[i], &src, &det);
        if (rc == 0)
            rc = ota_merkle_prove_consistency(&p, sizes[i], n, &src, &det);
        if (rc != 0)
            return die(det.msg, rc);
        fprintf(f, "consistency %llu", (unsigned long long)sizes[i]);
        if (put_b64(f, root1) != 0 || put_proof(f, &p) != 0)
            return die(ppath, OTA_ERR_IO);
    }
    if (fclose(f) != 0)
        return die(ppath, OTA_ERR_IO);

    ota_buf_free(&body);
    ota_buf_free(&note);
    ota_note_signer_free(log);
    ota_note_signer_free(wit);
    for (unsigned l = 0; l < t.nlevels; l++)
        free(t.level[l]);
    return 0;
}
