/* Merkle log math of RFC 9162 §2.1 (the tree of RFC 6962): leaf and node
 * hashes, tree roots, inclusion and consistency proofs (generation and
 * verification), and the compact right edge of a growing tree.
 *
 * Terms. A tree of `size` leaves; leaf i has hash SHA-256(0x00 || entry).
 * A "node (level, index)" is the root of the perfect subtree covering the
 * leaves [index * 2^level, (index + 1) * 2^level); level 0 is the leaf hash
 * itself. Such a node exists in a tree of size n when
 * (index + 1) * 2^level <= n, and never changes once it exists: that is
 * what storage (tiles, a table of nodes) keeps.
 *
 * Caps: sizes are at most OTA_MERKLE_MAX_SIZE (2^63), so a tree is at most
 * 63 levels high: an inclusion proof has at most 63 hashes, a consistency
 * proof at most 64 (OTA_MERKLE_MAX_PROOF): from an odd size1 into a size2
 * above 2^62 it needs every level plus the old subtree's own hash, e.g.
 * 3 -> 8 takes 4. (tlog-witness allows 63 proof lines, which covers every
 * size2 up to 2^62.) Hashes are fixed 32-byte arrays: a parser turning
 * base64 proof lines into hashes refuses any line that is not exactly 32
 * bytes.
 *
 * Errors specific to proofs:
 *   OTA_ERR_PROOF_MALFORMED  the proof cannot be a proof for these
 *     arguments: index >= size, size1 > size2, size1 == 0, or the number
 *     of hashes differs from the one RFC 9162 fixes for the sizes. Bad
 *     data, not evidence of anything.
 *   OTA_ERR_PROOF            the proof is well formed but its hashes do
 *     not lead to the given root(s): a wrong entry, a tampered proof, or,
 *     against signed roots, a log showing two different histories.
 *   OTA_ERR_TOO_LARGE        a size above 2^63 or more than 64 hashes.
 * Verification never allocates; on failure computed outputs are zeroed.
 */
#ifndef OTACHAIN_MERKLE_H
#define OTACHAIN_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

#define OTA_MERKLE_HASH_LEN  32
#define OTA_MERKLE_MAX_PROOF 64
#define OTA_MERKLE_MAX_SIZE  (UINT64_C(1) << 63)
/* Largest edge: one hash per set bit of the size (63 for 2^63 - 1). */
#define OTA_MERKLE_EDGE_MAX 64
/* Serialised edge: 8-byte size, then one hash per set bit of the size. */
#define OTA_MERKLE_EDGE_ENC_MAX (8 + 63 * OTA_MERKLE_HASH_LEN)

/* ---- hashing ---- */

/* out = SHA-256(0x00 || entry[0..len)). */
OTA_WUR int ota_merkle_leaf_hash(uint8_t out[OTA_MERKLE_HASH_LEN], const void *entry, size_t len);

/* out = SHA-256(0x01 || left || right). out may alias left or right. */
OTA_WUR int ota_merkle_node_hash(uint8_t out[OTA_MERKLE_HASH_LEN],
                                 const uint8_t left[OTA_MERKLE_HASH_LEN],
                                 const uint8_t right[OTA_MERKLE_HASH_LEN]);

/* Root of the empty tree: SHA-256 of the empty string. */
OTA_WUR int ota_merkle_empty_root(uint8_t out[OTA_MERKLE_HASH_LEN]);

/* ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---- */

/* Computes the root that `proof` (count hashes, leaf side first) implies
 * for leaf `index` with hash leaf_hash in a tree of `size` leaves. The
 * result is only as good as the root it is then compared with: use
 * ota_merkle_verify_inclusion unless the root is checked by a signature. */
OTA_WUR int ota_merkle_inclusion_root(uint8_t root[OTA_MERKLE_HASH_LEN],
                                      const uint8_t leaf_hash[OTA_MERKLE_HASH_LEN], uint64_t index,
                                      uint64_t size, const uint8_t (*proof)[OTA_MERKLE_HASH_LEN],
                                      size_t count, struct ota_detail *det);

/* 0 if `proof` shows leaf_hash at `index` in the tree of `size` whose root
 * is `root` (compared in constant time); OTA_ERR_PROOF if it does not;
 * OTA_ERR_PROOF_MALFORMED / OTA_ERR_TOO_LARGE as above. */
OTA_WUR int ota_merkle_verify_inclusion(const uint8_t leaf_hash[OTA_MERKLE_HASH_LEN],
                                        uint64_t index, uint64_t size,
                                        const uint8_t (*proof)[OTA_MERKLE_HASH_LEN], size_t count,
                                        const uint8_t root[OTA_MERKLE_HASH_LEN],
                                        struct ota_detail *det);

/* Checks that `proof` is consistent with root1 for size1 and computes the
 * root of size2 it implies (root2). Needs 1 <= size1 <= size2: a
 * consistency proof from the empty tree proves nothing, so size1 == 0 is
 * OTA_ERR_PROOF_MALFORMED (a tlog-witness with no stored checkpoint, "old
 * 0", accepts any size without calling this). size1 == size2 needs an
 * empty proof and gives root2 = root1. OTA_ERR_PROOF if the proof does not
 * lead back to root1. */
OTA_WUR int ota_merkle_consistency_root(uint8_t root2[OTA_MERKLE_HASH_LEN], uint64_t size1,
                                        uint64_t size2, const uint8_t root1[OTA_MERKLE_HASH_LEN],
                                        const uint8_t (*proof)[OTA_MERKLE_HASH_LEN], size_t count,
                                        struct ota_detail *det);

/* 0 if `proof` shows that the tree (size1, root1) is a prefix of the tree
 * (size2, root2). Equal sizes need an empty proof and equal roots
 * (OTA_ERR_PROOF if the roots differ: a fork). Roots compared in constant
 * time. Errors as for ota_merkle_consistency_root. */
OTA_WUR int ota_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                          const uint8_t root1[OTA_MERKLE_HASH_LEN],
                                          const uint8_t root2[OTA_MERKLE_HASH_LEN],
                                          const uint8_t (*proof)[OTA_MERKLE_HASH_LEN], size_t count,
                                          struct ota_detail *det);

/* Number of hashes RFC 9162 fixes for an inclusion proof of index in size
 * (index < size <= 2^63), and for a consistency proof from size1 to size2
 * (0 < size1 <= size2 <= 2^63; 0 for size1 == size2). Arguments outside
 * those ranges give 0. */
size_t ota_merkle_inclusion_len(uint64_t index, uint64_t size);
size_t ota_merkle_consistency_len(uint64_t size1, uint64_t size2);

/* ---- generation from stored subtrees ---- */

/* Where generation gets its hashes. node() writes to out the hash of node
 * (level, index) (see the top of this file) and returns 0, or a negative
 * ota_err which generation passes on unchanged. It is only asked for nodes
 * that exist in the tree being served (level <= 63). */
struct ota_merkle_source {
    int (*node)(void *ctx, unsigned level, uint64_t index, uint8_t out[OTA_MERKLE_HASH_LEN]);
    void *ctx;
};

/* A generated proof: count hashes, leaf side first (the wire order of
 * RFC 9162, tlog-proof and tlog-witness). */
struct ota_merkle_proof {
    size_t count;
    uint8_t hash[OTA_MERKLE_MAX_PROOF][OTA_MERKLE_HASH_LEN];
};

/* Root of the tree of `size` leaves (0 gives the empty root): one look-up
 * per set bit of size. */
OTA_WUR int ota_merkle_root(uint8_t root[OTA_MERKLE_HASH_LEN], uint64_t size,
                            const struct ota_merkle_source *src, struct ota_detail *det);

/* Inclusion proof of leaf `index` in the tree of `size` (index < size).
 * Node look-ups: at most 2 * ceil(log2(size)) (each proof hash is one
 * stored node, except the one right-edge subtree, which takes one look-up
 * per set bit of its size). On failure proof->count is 0. */
OTA_WUR int ota_merkle_prove_inclusion(struct ota_merkle_proof *proof, uint64_t index,
                                       uint64_t size, const struct ota_merkle_source *src,
                                       struct ota_detail *det);

/* Consistency proof from size1 to size2 (0 <= size1 <= size2). size1 == 0
 * or size1 == size2 give an empty proof (what tlog-witness sends for "old
 * 0"). Same look-up bound as inclusion, with size2. */
OTA_WUR int ota_merkle_prove_consistency(struct ota_merkle_proof *proof, uint64_t size1,
                                         uint64_t size2, const struct ota_merkle_source *src,
                                         struct ota_detail *det);

/* ---- the right edge (compact range [0, size)) ---- */

/* The perfect subtrees whose concatenation is the whole tree: one per set
 * bit of size, largest (leftmost) first; hash[i] covers 2^h leaves where h
 * is the i-th set bit of size from the top. Enough to append leaves and to
 * compute the root, in 2 KiB; a plain value (copy it freely). */
struct ota_merkle_edge {
    uint64_t size;
    uint8_t hash[OTA_MERKLE_EDGE_MAX][OTA_MERKLE_HASH_LEN];
};

/* The edge of the empty tree. */
void ota_merkle_edge_init(struct ota_merkle_edge *edge);

/* Appends one leaf hash. OTA_ERR_TOO_LARGE at size 2^63 (edge unchanged).
 * If `done` is not NULL, the nodes this append completed are reported
 * through it, lowest level first: the leaf itself (level 0) and every
 * subtree it closes; (level, index) as for the source. A failing done()
 * stops the append with its error and leaves the edge unchanged. */
struct ota_merkle_sink {
    int (*node)(void *ctx, unsigned level, uint64_t index, const uint8_t hash[OTA_MERKLE_HASH_LEN]);
    void *ctx;
};
OTA_WUR int ota_merkle_edge_append(struct ota_merkle_edge *edge,
                                   const uint8_t leaf_hash[OTA_MERKLE_HASH_LEN],
                                   const struct ota_merkle_sink *done);

/* Root of the tree the edge describes (the empty root at size 0). */
OTA_WUR int ota_merkle_edge_root(uint8_t root[OTA_MERKLE_HASH_LEN],
                                 const struct ota_merkle_edge *edge);

/* Rebuilds the edge of the tree of `size` from a source: one look-up per
 * set bit of size. On failure the edge is that of the empty tree. */
OTA_WUR int ota_merkle_edge_from_source(struct ota_merkle_edge *edge, uint64_t size,
                                        const struct ota_merkle_source *src,
                                        struct ota_detail *det);

/* Serialises the edge for storage: size as 8 bytes big-endian, then its
 * popcount(size) hashes in order. out must hold OTA_MERKLE_EDGE_ENC_MAX
 * bytes; *len is set to the bytes written. */
OTA_WUR int ota_merkle_edge_encode(uint8_t out[OTA_MERKLE_EDGE_ENC_MAX], size_t *len,
                                   const struct ota_merkle_edge *edge);

/* Parses a serialised edge. Strict: the length must be exactly
 * 8 + 32 * popcount(size) and size <= 2^63, else OTA_ERR_FORMAT
 * (OTA_ERR_TOO_LARGE for len > OTA_MERKLE_EDGE_ENC_MAX). On failure the
 * edge is that of the empty tree. */
OTA_WUR int ota_merkle_edge_decode(struct ota_merkle_edge *edge, const uint8_t *in, size_t len,
                                   struct ota_detail *det);

#endif
