/* libFuzzer harness for what a witness answers the log (lib/witness_round.c,
 * ota_witness_round_reply): the first input byte picks the HTTP status
 * (200, 409, 422, 403, 500 or 503), the rest is the body. A 200 must be one
 * cosignature line that verifies under the witness's policy key, a 409 a
 * size. Whatever arrives, the witness ends in exactly one outcome, a
 * COSIGNED one only with a line that verifies again, the request retried
 * at most once, and nothing crashes or leaks. The round is built once: a
 * tree of 4 leaves, its checkpoint signed by a fixed log key, one witness
 * of a fixed key. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_policy.h"
#include "otachain/witness_round.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ota_buf note;
static struct ota_tlog_policy *pol;
static uint8_t leaves[4][OTA_MERKLE_HASH_LEN];

static int node(void *ctx, unsigned level, uint64_t index, uint8_t out[OTA_MERKLE_HASH_LEN])
{
    uint8_t l[OTA_MERKLE_HASH_LEN], r[OTA_MERKLE_HASH_LEN];

    (void)ctx;
    if (level == 0) {
        if (index >= 4)
            return OTA_ERR_NOT_FOUND;
        memcpy(out, leaves[index], OTA_MERKLE_HASH_LEN);
        return 0;
    }
    if (node(ctx, level - 1, 2 * index, l) != 0 || node(ctx, level - 1, 2 * index + 1, r) != 0)
        return OTA_ERR_NOT_FOUND;
    return ota_merkle_node_hash(out, l, r);
}

static const struct ota_merkle_source src = {node, NULL};

static void setup(void)
{
    struct ota_note_signer *log = NULL, *w = NULL;
    struct ota_note_verifier v;
    struct ota_checkpoint cp;
    struct ota_buf body, text;
    char lk[OTA_NOTE_VKEY_SIZE], wk[OTA_NOTE_VKEY_SIZE];
    uint8_t seed[32];

    memset(seed, 1, sizeof(seed));
    if (ota_note_signer_from_seed(&log, "log.fuzz", 8, OTA_NOTE_TYPE_ED25519, seed) != 0)
        abort();
    memset(seed, 2, sizeof(seed));
    if (ota_note_signer_from_seed(&w, "w.fuzz", 6, OTA_NOTE_TYPE_COSIG_V1, seed) != 0)
        abort();
    for (int i = 0; i < 4; i++) {
        uint8_t e = (uint8_t)i;

        if (ota_merkle_leaf_hash(leaves[i], &e, 1) != 0)
            abort();
    }
    memset(&cp, 0, sizeof(cp));
    memcpy(cp.origin, "log.fuzz", 8);
    cp.origin_len = 8;
    cp.size = 4;
    if (ota_merkle_root(cp.root, 4, &src, NULL) != 0)
        abort();
    ota_buf_init(&body, 1024);
    ota_buf_init(&note, 4096);
    if (ota_checkpoint_format(&body, &cp) != 0 || ota_buf_append(&note, body.data, body.len) != 0 ||
        ota_buf_append(&note, "\n", 1) != 0 ||
        ota_note_sign(&note, (const char *)body.data, body.len, log, NULL) != 0)
        abort();
    ota_note_signer_verifier(&v, log);
    ota_note_verifier_format(lk, &v);
    ota_note_signer_verifier(&v, w);
    ota_note_verifier_format(wk, &v);
    ota_buf_init(&text, 4096);
    if (ota_buf_printf(&text, "log %s\nwitness w0 %s http://w0\ngroup g 1 w0\nquorum g\n", lk,
                       wk) != 0 ||
        ota_tlog_policy_parse(&pol, (const char *)text.data, text.len, NULL) != 0)
        abort();
    ota_buf_free(&text);
    ota_buf_free(&body);
    ota_note_signer_free(log);
    ota_note_signer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[6] = {200, 409, 422, 403, 500, 503};
    static struct ota_witness_round r;
    const struct ota_tlog_policy *pols[1];
    struct ota_witness_verdict v;
    bool retry = false;
    int replies = 0;

    if (pol == NULL)
        setup();
    if (size == 0)
        return 0;
    pols[0] = pol;
    if (ota_witness_round_init(&r, &note, 4, pols, 1, &src) != 0 ||
        ota_witness_round_start(&r, NULL) != 0)
        abort();
    do {
        ota_witness_round_reply(&r, 0, statuses[data[0] % 6], data + 1, size - 1, &retry);
        replies++;
    } while (retry && replies < 3);
    if (replies > 2 || ota_witness_round_wants(&r, 0) != retry)
        abort();
    ota_witness_round_judge(&r, &v);
    if (r.w[0].outcome == OTA_WITNESS_COSIGNED) {
        struct ota_buf full;
        struct ota_note *parsed = NULL;
        struct ota_note_check chk;
        size_t nv = 0;

        ota_buf_init(&full, 1 << 20);
        if (!v.met || ota_buf_append(&full, note.data, note.len) != 0 ||
            ota_witness_round_cosign(&r, &full) != 0 ||
            ota_note_parse(&parsed, full.data, full.len, NULL) != 0 ||
            ota_note_verify(&chk, &nv, parsed, &pol->witnesses[0].key, 1, NULL) != 0 ||
            !chk.verified)
            abort();
        ota_note_free(parsed);
        ota_buf_free(&full);
    } else if (v.met || r.w[0].outcome == OTA_WITNESS_PENDING) {
        abort();
    }
    ota_witness_round_free(&r);
    return 0;
}
