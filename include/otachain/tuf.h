/* TUF 1.0 metadata: parse, validate, verify.
 *
 * One parsed file is a struct ota_tuf_meta. Parsing validates the whole
 * schema of the role (fail closed: unknown _type, missing or mistyped
 * fields, malformed keys or signatures are refused) and computes the
 * canonical bytes of "signed" once, so signatures are verified over exactly
 * what the signers signed. Unknown extra fields in "signed" (such as root's
 * "x-otachain-ledger") are kept in `doc` untouched.
 *
 * Rules enforced at parse time, each with its own error:
 *  - _type equals the expected role               OTA_ERR_WRONG_TYPE
 *  - spec_version "1.x" or "1.x.y"                 OTA_ERR_SPEC_VERSION
 *  - version >= 1, expires "YYYY-MM-DDTHH:MM:SSZ"  OTA_ERR_FORMAT
 *  - no two signature entries with one keyid       OTA_ERR_DUP_SIGNATURE
 *  - root: every keyid is SHA-256 of the canonical key object
 *                                                  OTA_ERR_KEYID_MISMATCH
 *  - root: all four roles, threshold >= 1, role keyids listed in keys and
 *    distinct                                      OTA_ERR_FORMAT
 *  - targets: paths printable ASCII, relative, no "." or ".." segment;
 *    length and hashes.sha256 present              OTA_ERR_FORMAT
 *  - targets: delegations with roles               OTA_ERR_UNSUPPORTED
 *  - timestamp: meta holds exactly "snapshot.json" OTA_ERR_FORMAT
 */
#ifndef OTACHAIN_TUF_H
#define OTACHAIN_TUF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"

enum ota_tuf_role {
    OTA_TUF_ROOT = 0,
    OTA_TUF_TARGETS = 1,
    OTA_TUF_SNAPSHOT = 2,
    OTA_TUF_TIMESTAMP = 3,
};
#define OTA_TUF_ROLE_COUNT 4

/* The spec version we write. */
#define OTA_TUF_SPEC_VERSION "1.0.31"

/* Hard caps on parsed content. */
#define OTA_TUF_MAX_KEYS      256 /* keys listed in a root */
#define OTA_TUF_MAX_ROLE_KEYS 64  /* keyids of one role */
#define OTA_TUF_MAX_SIGS      256 /* signature entries of one file */
#define OTA_TUF_MAX_TARGETS   100000
#define OTA_TUF_MAX_META      10000 /* entries in snapshot meta */
#define OTA_TUF_MAX_PATH      1024  /* bytes of a target path or meta name */

/* Default caps on the bytes of each role's file when no referring role
 * pins a length (the sizes python-tuf uses, targets raised). */
#define OTA_TUF_ROOT_MAX_LEN      (512u * 1024)
#define OTA_TUF_TIMESTAMP_MAX_LEN (16u * 1024)
#define OTA_TUF_SNAPSHOT_MAX_LEN  (2u * 1024 * 1024)
#define OTA_TUF_TARGETS_MAX_LEN   (16u * 1024 * 1024)

struct ota_tuf_key {
    char keyid[OTA_KEYID_SIZE];
    bool usable;                      /* keytype/scheme ed25519 with a valid public key */
    uint8_t pub[OTA_ED25519_PUB_LEN]; /* valid when usable */
};

struct ota_tuf_role_keys {
    unsigned threshold;
    size_t nkeyids;
    char (*keyids)[OTA_KEYID_SIZE];
};

struct ota_tuf_sig {
    char keyid[OTA_KEYID_SIZE];
    bool well_formed;                 /* sig is 128 hex digits */
    uint8_t sig[OTA_ED25519_SIG_LEN]; /* valid when well_formed */
};

/* An entry of snapshot or timestamp "meta". */
struct ota_tuf_metafile {
    char *name; /* e.g. "targets.json" */
    uint64_t version;
    bool has_length;
    uint64_t length;
    bool has_sha256;
    uint8_t sha256[OTA_SHA256_LEN];
};

struct ota_tuf_target {
    char *path;
    uint64_t length;
    uint8_t sha256[OTA_SHA256_LEN];
    json_t *custom; /* borrowed from doc; NULL when absent */
};

struct ota_tuf_meta {
    json_t *doc;               /* the whole file, owned */
    uint8_t *signed_canonical; /* canonical JSON of doc["signed"], owned */
    size_t signed_canonical_len;
    enum ota_tuf_role type;
    uint64_t version;
    int64_t expires; /* seconds since the epoch, UTC */
    size_t nsigs;
    struct ota_tuf_sig *sigs;
    /* root */
    bool consistent_snapshot;
    size_t nkeys;
    struct ota_tuf_key *keys;
    struct ota_tuf_role_keys roles[OTA_TUF_ROLE_COUNT];
    /* snapshot and timestamp */
    size_t nmeta;
    struct ota_tuf_metafile *meta;
    /* targets */
    size_t ntargets;
    struct ota_tuf_target *targets;
};

/* "root", "targets", "snapshot", "timestamp". */
const char *ota_tuf_role_name(enum ota_tuf_role role);

/* Parses and validates len bytes of a metadata file expected to be of role
 * `expected`. On success *out owns everything (free with
 * ota_tuf_meta_free); on failure *out is NULL and det says what and where. */
OTA_WUR int ota_tuf_parse(struct ota_tuf_meta **out, const void *data, size_t len,
                          enum ota_tuf_role expected, struct ota_detail *det);

/* Builds the parsed form from a jansson document (takes a new reference;
 * the caller keeps its own). Same rules as ota_tuf_parse. */
OTA_WUR int ota_tuf_from_json(struct ota_tuf_meta **out, json_t *doc, enum ota_tuf_role expected,
                              struct ota_detail *det);

void ota_tuf_meta_free(struct ota_tuf_meta *md);

/* The one root-chain step (TUF 5.3.4-5.3.5), used by every program that
 * walks roots: `next` must be root version cur->version + 1 and carry the
 * root threshold of both `cur` and itself. OTA_ERR_ROLLBACK (version not
 * above cur's), OTA_ERR_VERSION_MISMATCH (a version skipped),
 * OTA_ERR_WRONG_TYPE, or ota_tuf_verify_role's error, with det saying
 * which threshold failed. Expiry and any ledger rule are the caller's. */
OTA_WUR int ota_tuf_root_step(const struct ota_tuf_meta *next, const struct ota_tuf_meta *cur,
                              struct ota_detail *det);

/* Verifies that md carries valid signatures from at least the threshold of
 * distinct keys that `root` assigns to `role`. Signatures by keys not in
 * the role, or that do not verify, are not counted. When the threshold is
 * not met: OTA_ERR_BAD_SIGNATURE if a signature by a key of the role did
 * not verify (det names the role and that key: the file was altered), else
 * OTA_ERR_THRESHOLD (det: "2 of 3 required valid signatures, 1 found"). */
OTA_WUR int ota_tuf_verify_role(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                                enum ota_tuf_role role, struct ota_detail *det);

/* OTA_ERR_EXPIRED if md->expires <= now. */
OTA_WUR int ota_tuf_check_expiry(const struct ota_tuf_meta *md, int64_t now,
                                 struct ota_detail *det);

/* Checks bytes against a snapshot/timestamp meta entry: length (when
 * pinned) then SHA-256 (when pinned, constant-time compare).
 * OTA_ERR_LENGTH_MISMATCH or OTA_ERR_HASH_MISMATCH. */
OTA_WUR int ota_tuf_check_metafile(const struct ota_tuf_metafile *mf, const void *data, size_t len,
                                   struct ota_detail *det);

/* Lookups; NULL when absent. */
const struct ota_tuf_metafile *ota_tuf_find_meta(const struct ota_tuf_meta *md, const char *name);
const struct ota_tuf_target *ota_tuf_find_target(const struct ota_tuf_meta *md, const char *path);
const struct ota_tuf_key *ota_tuf_find_key(const struct ota_tuf_meta *root, const char *keyid);

/* true if root `a` and root `b` give `role` a different key set or
 * threshold (used to detect timestamp/snapshot key rotation). */
bool ota_tuf_role_changed(const struct ota_tuf_meta *a, const struct ota_tuf_meta *b,
                          enum ota_tuf_role role);

/* Strict "YYYY-MM-DDTHH:MM:SSZ" <-> seconds since the epoch (UTC).
 * OTA_ERR_FORMAT on any deviation (missing Z, fractions, offsets, out of
 * range fields). out must hold OTA_TUF_TIME_SIZE bytes. */
#define OTA_TUF_TIME_SIZE 21
OTA_WUR int ota_tuf_parse_time(int64_t *out, const char *s);
OTA_WUR int ota_tuf_format_time(char out[OTA_TUF_TIME_SIZE], int64_t t);

/* Path of a target file in a consistent-snapshot repository:
 * "dir/<sha256hex>.name" for "dir/name". Returns a new string (free()). */
OTA_WUR int ota_tuf_target_file_path(char **out, const struct ota_tuf_target *t);

/* The JSON key object of an Ed25519 public key (new reference). */
json_t *ota_tuf_key_object(const uint8_t pub[OTA_ED25519_PUB_LEN]);

#endif
