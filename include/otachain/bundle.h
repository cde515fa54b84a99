/* Proof bundles (docs/formats/bundle.md): everything a device needs to go
 * from the state it trusts to a repository's current state in one
 * response: metadata files as their exact bytes, the cosigned checkpoint,
 * the per-root checkpoints, and the Merkle proofs of the ledger rule.
 *
 * This module is the device side's part: a strict parser of hostile
 * input (syntax only: what a record means is checked by
 * ota_tuf_client_refresh_bundle), the encoder the builder uses (it
 * re-parses what it wrote, so it never emits a bundle the parser
 * refuses), and a fetcher over a parsed bundle. The builder is on the
 * authoring side (otachain/bundle_build.h).
 *
 * Parse errors, each with a detail naming the record (by its index and
 * type) and the field:
 *   OTA_ERR_BAD_MAGIC       not "OTABUNDL"
 *   OTA_ERR_FORMAT_VERSION  version other than 1
 *   OTA_ERR_TRUNCATED       the header, a record header or a body cut
 *                           short, or a body too short for its fields
 *   OTA_ERR_TRAILING_DATA   bytes left in a body after its last field
 *   OTA_ERR_TOO_LARGE       the bundle above OTA_BUNDLE_MAX_LEN, a body
 *                           above its type's cap, more records of a type
 *                           than its cap
 *   OTA_ERR_PROOF_MALFORMED a proof whose hash count is not the one RFC
 *                           9162 fixes for its index and sizes
 *   OTA_ERR_FORMAT          anything else: flags or reserved bits set, an
 *                           unknown type, records out of order or
 *                           repeated, an empty file, a version or size
 *                           out of range, a root version outside
 *                           base_root + 1 .. newest_root, an unknown role
 */
#ifndef OTACHAIN_BUNDLE_H
#define OTACHAIN_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/merkle.h"
#include "otachain/tuf.h"

#define OTA_BUNDLE_MAGIC           "OTABUNDL"
#define OTA_BUNDLE_VERSION         1
#define OTA_BUNDLE_HEADER_LEN      40
#define OTA_BUNDLE_RECORD_HDR_LEN  5
#define OTA_BUNDLE_MAX_LEN         (64u * 1024 * 1024)
#define OTA_BUNDLE_MAX_ROOTS       256 /* newest_root - base_root, and root_checkpoint records */
#define OTA_BUNDLE_MAX_CONSISTENCY (OTA_BUNDLE_MAX_ROOTS + 1)
#define OTA_BUNDLE_MAX_INCLUSION   512

/* Record types, in the order they appear. */
enum ota_bundle_type {
    OTA_BUNDLE_ROOT = 1,
    OTA_BUNDLE_ROOT_CHECKPOINT = 2,
    OTA_BUNDLE_TIMESTAMP = 3,
    OTA_BUNDLE_SNAPSHOT = 4,
    OTA_BUNDLE_TARGETS = 5,
    OTA_BUNDLE_CHECKPOINT = 6,
    OTA_BUNDLE_CONSISTENCY = 7,
    OTA_BUNDLE_INCLUSION = 8,
};

/* Roles of an inclusion record on the wire. */
#define OTA_BUNDLE_WIRE_ROOT     1
#define OTA_BUNDLE_WIRE_SNAPSHOT 2

/* A file in the bundle: its version where the record has one (0 for
 * timestamp and checkpoint), and its exact bytes. len 0: absent. */
struct ota_bundle_file {
    uint64_t version;
    const uint8_t *data;
    size_t len;
};

/* An RFC 9162 consistency proof from size1 to size2; hashes points to
 * count * 32 bytes (leaf side first). */
struct ota_bundle_consistency {
    uint64_t size1;
    uint64_t size2;
    size_t count;
    const uint8_t *hashes;
};

/* An RFC 9162 inclusion proof of the ledger entry of `role` version
 * `version` (OTA_TUF_ROOT or OTA_TUF_SNAPSHOT), leaf `index` of the tree
 * of `size`. */
struct ota_bundle_inclusion {
    enum ota_tuf_role role;
    uint64_t version;
    uint64_t index;
    uint64_t size;
    size_t count;
    const uint8_t *hashes;
};

/* A parsed bundle: every pointer points into the parser's input, which
 * the caller keeps alive and unchanged while the bundle is used. Arrays
 * are in wire order (ascending keys). About 50 KiB: allocate it. */
struct ota_bundle {
    uint64_t base_root;   /* the root version the bundle starts from */
    uint64_t newest_root; /* the newest root version it leads to */
    uint64_t base_size;   /* the checkpoint size it starts from (0: none) */
    size_t nroots;
    struct ota_bundle_file roots[OTA_BUNDLE_MAX_ROOTS];
    size_t nroot_checkpoints;
    struct ota_bundle_file root_checkpoints[OTA_BUNDLE_MAX_ROOTS];
    struct ota_bundle_file timestamp;
    struct ota_bundle_file snapshot;
    struct ota_bundle_file targets;
    struct ota_bundle_file checkpoint;
    size_t nconsistency;
    struct ota_bundle_consistency consistency[OTA_BUNDLE_MAX_CONSISTENCY];
    size_t ninclusion;
    struct ota_bundle_inclusion inclusion[OTA_BUNDLE_MAX_INCLUSION];
};

/* What a device trusts, sent to a server that builds its bundle
 * (ota_tuf_client_bundle_request fills it; ota_bundle_build reads it):
 * a bundle is made for exactly this root version and checkpoint size;
 * snapshot and targets files the device already trusts are left out. */
struct ota_bundle_request {
    uint64_t root_version;     /* >= 1 */
    uint64_t checkpoint_size;  /* 0: no checkpoint stored */
    uint64_t snapshot_version; /* 0: none trusted */
    uint64_t targets_version;  /* 0: none trusted */
};

/* Parses len bytes at in. On success *out describes the bundle (pointing
 * into in); on failure *out is zeroed and det names the record and
 * field. Allocates nothing. */
OTA_WUR int ota_bundle_parse(struct ota_bundle *out, const uint8_t *in, size_t len,
                             struct ota_detail *det);

/* Appends the encoding of b to out (whose cap the caller chose; may
 * reallocate out->data). b's arrays must be in ascending key order. The
 * result is parsed again before returning: a b that breaks a rule is
 * refused with the parser's error and out is left as it was. */
OTA_WUR int ota_bundle_encode(struct ota_buf *out, const struct ota_bundle *b,
                              struct ota_detail *det);

/* Look-ups; NULL when the bundle has no such record. */
const struct ota_bundle_file *ota_bundle_find_root(const struct ota_bundle *b, uint64_t version);
const struct ota_bundle_file *ota_bundle_find_root_checkpoint(const struct ota_bundle *b,
                                                              uint64_t version);
const struct ota_bundle_consistency *ota_bundle_find_consistency(const struct ota_bundle *b,
                                                                 uint64_t size1, uint64_t size2);
const struct ota_bundle_inclusion *ota_bundle_find_inclusion(const struct ota_bundle *b,
                                                             enum ota_tuf_role role,
                                                             uint64_t version, uint64_t size);

/* Fills *out with a fetcher over b (no allocation; destroy is NULL, so
 * ota_fetcher_free must not be called on it): metadata by their
 * repository names ("N.root.json", "timestamp.json", "V.snapshot.json",
 * "V.targets.json") and the ledger's "checkpoint" and
 * "root-checkpoint/N". Anything else, or a name whose version the bundle
 * does not hold, is OTA_ERR_NOT_FOUND; a file longer than the fetch's max
 * is OTA_ERR_TOO_LARGE before any byte reaches the sink. b must outlive
 * the fetcher. */
void ota_bundle_fetcher(struct ota_fetcher *out, const struct ota_bundle *b);

#endif
