/* RFC 9162 §2.1 Merkle tree math (see otachain/merkle.h).
 *
 * Verification follows the algorithms of RFC 9162 §2.1.3.2 (inclusion)
 * and §2.1.4.2 (consistency) step by step, after an up-front check that the
 * proof has exactly the number of hashes the sizes fix, so that a malformed
 * proof is told apart from one that leads to another root.
 *
 * Generation follows PATH (§2.1.3.1) and SUBPROOF (§2.1.4.1) top-down,
 * without recursion: every subtree those definitions hash is either a
 * perfect node (one source look-up) or a right-edge range [lo, hi) whose
 * hash is folded from one perfect node per set bit of hi - lo.
 */
#include "otachain/merkle.h"

#include <string.h>

#include "otachain/crypto.h"

#define HLEN OTA_MERKLE_HASH_LEN

/* Bits needed to write x (0 for 0). */
static unsigned bit_len(uint64_t x)
{
    return x == 0 ? 0 : 64u - (unsigned)__builtin_clzll(x);
}

static unsigned pop_count(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

int ota_merkle_leaf_hash(uint8_t out[HLEN], const void *entry, size_t len)
{
    struct ota_sha256_ctx *ctx = NULL;
    static const uint8_t prefix = 0x00;
    int rc;

    if (out == NULL || (entry == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    /* Small entries (log records are ~100 bytes) in one call. */
    if (len <= 255) {
        uint8_t buf[256];

        buf[0] = prefix;
        if (len > 0)
            memcpy(buf + 1, entry, len);
        return ota_sha256(out, buf, len + 1);
    }
    rc = ota_sha256_init(&ctx);
    if (rc == 0)
        rc = ota_sha256_update(ctx, &prefix, 1);
    if (rc == 0)
        rc = ota_sha256_update(ctx, entry, len);
    if (rc == 0)
        rc = ota_sha256_final(out, ctx);
    ota_sha256_ctx_free(ctx);
    if (rc != 0)
        ota_wipe(out, HLEN);
    return rc;
}

int ota_merkle_node_hash(uint8_t out[HLEN], const uint8_t left[HLEN], const uint8_t right[HLEN])
{
    uint8_t buf[1 + 2 * HLEN];

    if (out == NULL || left == NULL || right == NULL)
        return OTA_ERR_INVALID_ARG;
    buf[0] = 0x01;
    memcpy(buf + 1, left, HLEN);
    memcpy(buf + 1 + HLEN, right, HLEN);
    return ota_sha256(out, buf, sizeof(buf));
}

int ota_merkle_empty_root(uint8_t out[HLEN])
{
    return ota_sha256(out, "", 0);
}

/* ---- proof lengths ---- */

size_t ota_merkle_inclusion_len(uint64_t index, uint64_t size)
{
    unsigned inner;

    if (size == 0 || size > OTA_MERKLE_MAX_SIZE || index >= size)
        return 0;
    /* Below the level where the paths to index and to the last leaf
     * meet, every level contributes a sibling; above it, only the levels
     * where index's path turns right (its set bits). */
    inner = bit_len(index ^ (size - 1));
    return inner + pop_count(index >> inner);
}

size_t ota_merkle_consistency_len(uint64_t size1, uint64_t size2)
{
    unsigned shift;
    unsigned inner;
    unsigned border;

    if (size1 == 0 || size1 > size2 || size2 > OTA_MERKLE_MAX_SIZE || size1 == size2)
        return 0;
    /* The inclusion path of leaf size1 - 1 in size2, minus the levels
     * inside the largest perfect subtree ending at size1 (2^shift leaves),
     * plus that subtree's own hash unless it is the whole old tree. */
    shift = (unsigned)__builtin_ctzll(size1);
    inner = bit_len((size1 - 1) ^ (size2 - 1));
    border = pop_count((size1 - 1) >> inner);
    return (size1 == (UINT64_C(1) << shift) ? 0 : 1) + (inner - shift) + border;
}

/* ---- verification ---- */

int ota_merkle_inclusion_root(uint8_t root[HLEN], const uint8_t leaf_hash[HLEN], uint64_t index,
                              uint64_t size, const uint8_t (*proof)[HLEN], size_t count,
                              struct ota_detail *det)
{
    uint8_t r[HLEN];
    uint64_t fn;
    uint64_t sn;
    size_t i;
    int rc;

    if (root == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_wipe(root, HLEN);
    if (leaf_hash == NULL || (proof == NULL && count > 0))
        return OTA_ERR_INVALID_ARG;
    if (size > OTA_MERKLE_MAX_SIZE || count > OTA_MERKLE_MAX_PROOF) {
        ota_detail_set(det, "inclusion proof: size %llu or %zu hashes above the cap",
                       (unsigned long long)size, count);
        return OTA_ERR_TOO_LARGE;
    }
    if (index >= size) {
        ota_detail_set(det, "inclusion proof: index %llu not below size %llu",
                       (unsigned long long)index, (unsigned long long)size);
        return OTA_ERR_PROOF_MALFORMED;
    }
    if (count != ota_merkle_inclusion_len(index, size)) {
        ota_detail_set(det, "inclusion proof of %llu in %llu: %zu hashes, expected %zu",
                       (unsigned long long)index, (unsigned long long)size, count,
                       ota_merkle_inclusion_len(index, size));
        return OTA_ERR_PROOF_MALFORMED;
    }
    /* RFC 9162 §2.1.3.2, steps 2 to 5. */
    fn = index;
    sn = size - 1;
    memcpy(r, leaf_hash, HLEN);
    for (i = 0; i < count; i++) {
        if (sn == 0)
            return OTA_ERR_PROOF_MALFORMED; /* excluded by the length check */
        if ((fn & 1) != 0 || fn == sn) {
            rc = ota_merkle_node_hash(r, proof[i], r);
            if ((fn & 1) == 0)
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            rc = ota_merkle_node_hash(r, r, proof[i]);
        }
        if (rc != 0)
            return rc;
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return OTA_ERR_PROOF_MALFORMED; /* excluded by the length check */
    memcpy(root, r, HLEN);
    return 0;
}

int ota_merkle_verify_inclusion(const uint8_t leaf_hash[HLEN], uint64_t index, uint64_t size,
                                const uint8_t (*proof)[HLEN], size_t count,
                                const uint8_t root[HLEN], struct ota_detail *det)
{
    uint8_t got[HLEN];
    int rc;

    if (root == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_merkle_inclusion_root(got, leaf_hash, index, size, proof, count, det);
    if (rc != 0)
        return rc;
    if (!ota_ct_equal(got, root, HLEN)) {
        ota_detail_set(det, "inclusion proof of %llu in %llu leads to another root",
                       (unsigned long long)index, (unsigned long long)size);
        return OTA_ERR_PROOF;
    }
    return 0;
}

int ota_merkle_consistency_root(uint8_t root2[HLEN], uint64_t size1, uint64_t size2,
                                const uint8_t root1[HLEN], const uint8_t (*proof)[HLEN],
                                size_t count, struct ota_detail *det)
{
    uint8_t fr[HLEN];
    uint8_t sr[HLEN];
    uint64_t fn;
    uint64_t sn;
    size_t i;
    int rc;

    if (root2 == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_wipe(root2, HLEN);
    if (root1 == NULL || (proof == NULL && count > 0))
        return OTA_ERR_INVALID_ARG;
    if (size2 > OTA_MERKLE_MAX_SIZE || count > OTA_MERKLE_MAX_PROOF) {
        ota_detail_set(det, "consistency proof: size %llu or %zu hashes above the cap",
                       (unsigned long long)size2, count);
        return OTA_ERR_TOO_LARGE;
    }
    if (size1 == 0 || size1 > size2) {
        ota_detail_set(det, "consistency proof from %llu to %llu: needs 1 <= size1 <= size2",
                       (unsigned long long)size1, (unsigned long long)size2);
        return OTA_ERR_PROOF_MALFORMED;
    }
    if (count != ota_merkle_consistency_len(size1, size2)) {
        ota_detail_set(det, "consistency proof from %llu to %llu: %zu hashes, expected %zu",
                       (unsigned long long)size1, (unsigned long long)size2, count,
                       ota_merkle_consistency_len(size1, size2));
        return OTA_ERR_PROOF_MALFORMED;
    }
    if (size1 == size2) {
        memcpy(root2, root1, HLEN);
        return 0;
    }
    /* RFC 9162 §2.1.4.2. Step 2: when size1 is a power of two the old root
     * is the first element of the path (i = 0 stands for it). */
    i = 0;
    if ((size1 & (size1 - 1)) == 0) {
        memcpy(fr, root1, HLEN);
    } else {
        memcpy(fr, proof[0], HLEN);
        i = 1;
    }
    memcpy(sr, fr, HLEN);
    fn = size1 - 1;
    sn = size2 - 1;
    while ((fn & 1) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < count; i++) {
        if (sn == 0)
            return OTA_ERR_PROOF_MALFORMED; /* excluded by the length check */
        if ((fn & 1) != 0 || fn == sn) {
            rc = ota_merkle_node_hash(fr, proof[i], fr);
            if (rc == 0)
                rc = ota_merkle_node_hash(sr, proof[i], sr);
            if ((fn & 1) == 0)
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            rc = ota_merkle_node_hash(sr, sr, proof[i]);
        }
        if (rc != 0)
            return rc;
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return OTA_ERR_PROOF_MALFORMED; /* excluded by the length check */
    if (!ota_ct_equal(fr, root1, HLEN)) {
        ota_detail_set(det, "consistency proof from %llu to %llu does not lead to the old root",
                       (unsigned long long)size1, (unsigned long long)size2);
        return OTA_ERR_PROOF;
    }
    memcpy(root2, sr, HLEN);
    return 0;
}

int ota_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[HLEN],
                                  const uint8_t root2[HLEN], const uint8_t (*proof)[HLEN],
                                  size_t count, struct ota_detail *det)
{
    uint8_t got[HLEN];
    int rc;

    if (root2 == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_merkle_consistency_root(got, size1, size2, root1, proof, count, det);
    if (rc != 0)
        return rc;
    if (!ota_ct_equal(got, root2, HLEN)) {
        ota_detail_set(det, "consistency proof from %llu to %llu leads to another new root",
                       (unsigned long long)size1, (unsigned long long)size2);
        return OTA_ERR_PROOF;
    }
    return 0;
}

/* ---- generation ---- */

static int get_node(uint8_t out[HLEN], const struct ota_merkle_source *src, unsigned level,
                    uint64_t index, struct ota_detail *det)
{
    int rc = src->node(src->ctx, level, index, out);

    if (rc != 0) {
        ota_wipe(out, HLEN);
        if (rc > 0)
            rc = OTA_ERR_INVALID_ARG; /* a source broke its contract */
        ota_detail_set(det, "merkle source: node (level %u, index %llu) unavailable", level,
                       (unsigned long long)index);
    }
    return rc;
}

/* MTH(D[lo:hi)) for a range the RFC recursion produces (lo aligned to a
 * power of two at least hi - lo): one perfect node per set bit of
 * hi - lo, largest leftmost, folded from the right. */
static int range_root(uint8_t out[HLEN], uint64_t lo, uint64_t hi,
                      const struct ota_merkle_source *src, struct ota_detail *det)
{
    uint64_t n = hi - lo;
    uint8_t h[HLEN];
    unsigned b;
    int first = 1;
    int rc;

    for (b = 0; b < 64; b++) {
        uint64_t start;

        if (((n >> b) & 1) == 0)
            continue;
        /* The piece of 2^b leaves follows the larger pieces. */
        start = lo + (b == 63 ? 0 : (n >> (b + 1)) << (b + 1));
        rc = get_node(first ? out : h, src, b, start >> b, det);
        if (rc == 0 && !first)
            rc = ota_merkle_node_hash(out, h, out);
        if (rc != 0) {
            ota_wipe(out, HLEN);
            return rc;
        }
        first = 0;
    }
    return 0;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    return UINT64_C(1) << (bit_len(n - 1) - 1);
}

/* Proof hashes are found root side first; the wire order is leaf side
 * first. */
static void reverse_proof(struct ota_merkle_proof *proof)
{
    size_t i;
    size_t j;
    uint8_t t[HLEN];

    for (i = 0, j = proof->count; i + 1 < j; i++, j--) {
        memcpy(t, proof->hash[i], HLEN);
        memcpy(proof->hash[i], proof->hash[j - 1], HLEN);
        memcpy(proof->hash[j - 1], t, HLEN);
    }
}

static int gen_args(struct ota_merkle_proof *proof, const struct ota_merkle_source *src)
{
    if (proof == NULL)
        return OTA_ERR_INVALID_ARG;
    proof->count = 0;
    if (src == NULL || src->node == NULL)
        return OTA_ERR_INVALID_ARG;
    return 0;
}

int ota_merkle_root(uint8_t root[HLEN], uint64_t size, const struct ota_merkle_source *src,
                    struct ota_detail *det)
{
    if (root == NULL)
        return OTA_ERR_INVALID_ARG;
    if (src == NULL || src->node == NULL) {
        ota_wipe(root, HLEN);
        return OTA_ERR_INVALID_ARG;
    }
    if (size > OTA_MERKLE_MAX_SIZE) {
        ota_wipe(root, HLEN);
        ota_detail_set(det, "tree size %llu above 2^63", (unsigned long long)size);
        return OTA_ERR_TOO_LARGE;
    }
    if (size == 0)
        return ota_merkle_empty_root(root);
    return range_root(root, 0, size, src, det);
}

int ota_merkle_prove_inclusion(struct ota_merkle_proof *proof, uint64_t index, uint64_t size,
                               const struct ota_merkle_source *src, struct ota_detail *det)
{
    uint64_t lo = 0;
    uint64_t hi = size;
    int rc = gen_args(proof, src);

    if (rc != 0)
        return rc;
    if (size > OTA_MERKLE_MAX_SIZE) {
        ota_detail_set(det, "tree size %llu above 2^63", (unsigned long long)size);
        return OTA_ERR_TOO_LARGE;
    }
    if (index >= size) {
        ota_detail_set(det, "inclusion proof: index %llu not below size %llu",
                       (unsigned long long)index, (unsigned long long)size);
        return OTA_ERR_INVALID_ARG;
    }
    /* PATH(m, D[lo:hi)): the sibling of the half holding index, then the
     * path inside that half. */
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);

        if (index < lo + k) {
            rc = range_root(proof->hash[proof->count], lo + k, hi, src, det);
            hi = lo + k;
        } else {
            rc = range_root(proof->hash[proof->count], lo, lo + k, src, det);
            lo += k;
        }
        if (rc != 0)
            goto fail;
        proof->count++;
    }
    reverse_proof(proof);
    return 0;
fail:
    ota_wipe(proof, sizeof(*proof));
    return rc;
}

int ota_merkle_prove_consistency(struct ota_merkle_proof *proof, uint64_t size1, uint64_t size2,
                                 const struct ota_merkle_source *src, struct ota_detail *det)
{
    uint64_t lo = 0;
    uint64_t hi = size2;
    int whole = 1; /* the "b" of SUBPROOF: D[lo:hi) contains the whole old tree */
    int rc = gen_args(proof, src);

    if (rc != 0)
        return rc;
    if (size2 > OTA_MERKLE_MAX_SIZE) {
        ota_detail_set(det, "tree size %llu above 2^63", (unsigned long long)size2);
        return OTA_ERR_TOO_LARGE;
    }
    if (size1 > size2) {
        ota_detail_set(det, "consistency proof: size1 %llu above size2 %llu",
                       (unsigned long long)size1, (unsigned long long)size2);
        return OTA_ERR_INVALID_ARG;
    }
    if (size1 == 0 || size1 == size2)
        return 0;
    /* SUBPROOF(m, D[lo:hi), b) with m = size1 - lo. */
    for (;;) {
        uint64_t k;

        if (size1 == hi) {
            if (!whole) {
                rc = range_root(proof->hash[proof->count], lo, hi, src, det);
                if (rc != 0)
                    goto fail;
                proof->count++;
            }
            break;
        }
        k = split_point(hi - lo);
        if (size1 - lo <= k) {
            rc = range_root(proof->hash[proof->count], lo + k, hi, src, det);
            hi = lo + k;
        } else {
            rc = range_root(proof->hash[proof->count], lo, lo + k, src, det);
            lo += k;
            whole = 0;
        }
        if (rc != 0)
            goto fail;
        proof->count++;
    }
    reverse_proof(proof);
    return 0;
fail:
    ota_wipe(proof, sizeof(*proof));
    return rc;
}

/* ---- the right edge ---- */

void ota_merkle_edge_init(struct ota_merkle_edge *edge)
{
    if (edge != NULL)
        memset(edge, 0, sizeof(*edge));
}

int ota_merkle_edge_append(struct ota_merkle_edge *edge, const uint8_t leaf_hash[HLEN],
                           const struct ota_merkle_sink *done)
{
    uint8_t cur[HLEN];
    uint64_t size;
    unsigned k;
    unsigned h;
    int rc;

    if (edge == NULL || leaf_hash == NULL || (done != NULL && done->node == NULL))
        return OTA_ERR_INVALID_ARG;
    size = edge->size;
    if (size >= OTA_MERKLE_MAX_SIZE)
        return OTA_ERR_TOO_LARGE;
    k = pop_count(size);
    memcpy(cur, leaf_hash, HLEN);
    if (done != NULL && (rc = done->node(done->ctx, 0, size, cur)) != 0)
        return rc > 0 ? OTA_ERR_INVALID_ARG : rc;
    /* Each trailing one bit of size is a subtree of the same height as the
     * one just completed, to its left: merge. The edge itself is written
     * only after every report succeeded. */
    for (h = 0; ((size >> h) & 1) != 0; h++) {
        rc = ota_merkle_node_hash(cur, edge->hash[k - 1 - h], cur);
        if (rc != 0)
            return rc;
        if (done != NULL && (rc = done->node(done->ctx, h + 1, size >> (h + 1), cur)) != 0)
            return rc > 0 ? OTA_ERR_INVALID_ARG : rc;
    }
    memcpy(edge->hash[k - h], cur, HLEN);
    edge->size = size + 1;
    return 0;
}

int ota_merkle_edge_root(uint8_t root[HLEN], const struct ota_merkle_edge *edge)
{
    unsigned k;
    unsigned i;
    int rc;

    if (root == NULL)
        return OTA_ERR_INVALID_ARG;
    if (edge == NULL || edge->size > OTA_MERKLE_MAX_SIZE) {
        ota_wipe(root, HLEN);
        return OTA_ERR_INVALID_ARG;
    }
    k = pop_count(edge->size);
    if (k == 0)
        return ota_merkle_empty_root(root);
    memcpy(root, edge->hash[k - 1], HLEN);
    for (i = k - 1; i-- > 0;) {
        rc = ota_merkle_node_hash(root, edge->hash[i], root);
        if (rc != 0) {
            ota_wipe(root, HLEN);
            return rc;
        }
    }
    return 0;
}

int ota_merkle_edge_from_source(struct ota_merkle_edge *edge, uint64_t size,
                                const struct ota_merkle_source *src, struct ota_detail *det)
{
    uint64_t pos = 0;
    unsigned k = 0;
    unsigned b;
    int rc;

    if (edge == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_merkle_edge_init(edge);
    if (src == NULL || src->node == NULL)
        return OTA_ERR_INVALID_ARG;
    if (size > OTA_MERKLE_MAX_SIZE) {
        ota_detail_set(det, "tree size %llu above 2^63", (unsigned long long)size);
        return OTA_ERR_TOO_LARGE;
    }
    for (b = 64; b-- > 0;) {
        if (((size >> b) & 1) == 0)
            continue;
        rc = get_node(edge->hash[k], src, b, pos >> b, det);
        if (rc != 0) {
            ota_merkle_edge_init(edge);
            return rc;
        }
        k++;
        pos += UINT64_C(1) << b;
    }
    edge->size = size;
    return 0;
}

int ota_merkle_edge_encode(uint8_t out[OTA_MERKLE_EDGE_ENC_MAX], size_t *len,
                           const struct ota_merkle_edge *edge)
{
    unsigned k;
    unsigned i;

    if (len != NULL)
        *len = 0;
    if (out == NULL || len == NULL || edge == NULL || edge->size > OTA_MERKLE_MAX_SIZE)
        return OTA_ERR_INVALID_ARG;
    for (i = 0; i < 8; i++)
        out[i] = (uint8_t)(edge->size >> (56 - 8 * i));
    k = pop_count(edge->size);
    memcpy(out + 8, edge->hash, (size_t)k * HLEN);
    *len = 8 + (size_t)k * HLEN;
    return 0;
}

int ota_merkle_edge_decode(struct ota_merkle_edge *edge, const uint8_t *in, size_t len,
                           struct ota_detail *det)
{
    uint64_t size = 0;
    unsigned k;
    unsigned i;

    if (edge == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_merkle_edge_init(edge);
    if (in == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_MERKLE_EDGE_ENC_MAX) {
        ota_detail_set(det, "merkle edge: %zu bytes, at most %d", len, OTA_MERKLE_EDGE_ENC_MAX);
        return OTA_ERR_TOO_LARGE;
    }
    if (len < 8) {
        ota_detail_set(det, "merkle edge: %zu bytes, shorter than its size field", len);
        return OTA_ERR_FORMAT;
    }
    for (i = 0; i < 8; i++)
        size = (size << 8) | in[i];
    k = pop_count(size);
    if (size > OTA_MERKLE_MAX_SIZE || len != 8 + (size_t)k * HLEN) {
        ota_detail_set(det, "merkle edge: size %llu needs %zu bytes, got %zu",
                       (unsigned long long)size, 8 + (size_t)k * HLEN, len);
        return OTA_ERR_FORMAT;
    }
    memcpy(edge->hash, in + 8, (size_t)k * HLEN);
    edge->size = size;
    return 0;
}
