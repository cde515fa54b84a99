/* The authoring directory of a TUF repository (docs/formats/repository.md).
 *
 * A struct repo is one command's view of DIR: its configuration, the
 * published state read back from DIR/public/metadata and verified (root
 * chain 1..N, then timestamp -> snapshot -> targets, each against its pins
 * and its role's keys), and the pending root and targets being signed.
 *
 * Publish state machine (one `repo publish`, each write atomic):
 *
 *   pending/{root,targets}.json
 *      │ 1 N.root.json  2 root.json            (only with a pending root)
 *      │ 3 public/targets/<dir>/<sha256>.<name> 4 V.targets.json
 *      │ 5 S.snapshot.json                      6 timestamp.json  <- live
 *      │ 7 private/<role>.key.next -> <role>.key (online key rotation)
 *      ▼ 8 remove pending files
 *
 * Invariants:
 *  1. Nothing is written to public/ before the pending root carries both
 *     thresholds (old root's and its own) and the pending targets the
 *     targets threshold of the root in force after the publish.
 *  2. A client never sees a file before timestamp.json refers to it
 *     (directly or through the snapshot), so steps 1-5 may be redone.
 *  3. A pending file whose version is already published is stale (a
 *     publish stopped between 6 and 8): publish removes it, and until then
 *     the metadata published before the interrupted root (signed under the
 *     previous root) still verifies against that previous root.
 */
#ifndef OTACHAIN_REPO_H
#define OTACHAIN_REPO_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "otachain/crypto.h"
#include "otachain/sign.h"
#include "otachain/tuf.h"

#define REPO_FORMAT 1
/* Cap on a firmware image or any target file. */
#define REPO_MAX_IMAGE ((uint64_t)8 << 30)
/* Largest integer we write into metadata (exact in every JSON parser). */
#define REPO_MAX_JSON_INT ((uint64_t)9007199254740991)
#define REPO_CONFIG_MAX   (64u * 1024)
#define REPO_WARN_EXPIRY  ((int64_t)30 * 86400)

/* A key named on the command line: public half always, signer when the
 * file is a secret key. */
struct repo_key {
    const char *path;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    char keyid[OTA_KEYID_SIZE];
    struct ota_signer *signer; /* NULL for a public key file */
};

/* Loads a key file. need_secret: refuse a public key file (--key). A
 * secret key is loaded only through ota_signer_load, so its mode is
 * checked. On failure k holds nothing. */
OTA_WUR int repo_key_load(struct repo_key *k, const char *path, bool need_secret,
                          struct ota_detail *det);
void repo_key_clear(struct repo_key *k);

/* Who signed a document for a role, and who still could. */
struct repo_sigstat {
    unsigned threshold;
    size_t nkeys;  /* keyids of the role */
    size_t nvalid; /* distinct role keys with a valid signature */
    char valid[OTA_TUF_MAX_ROLE_KEYS][OTA_KEYID_SIZE];
    size_t nable; /* role keys that have not signed (validly) yet */
    char able[OTA_TUF_MAX_ROLE_KEYS][OTA_KEYID_SIZE];
};

void repo_sigstat(struct repo_sigstat *st, const struct ota_tuf_meta *md,
                  const struct ota_tuf_meta *root, enum ota_tuf_role role);
bool repo_sigstat_met(const struct repo_sigstat *st);
/* "1 of 2 required signatures (1 missing; keys still able to sign: a, b)" */
void repo_sigstat_text(char *out, size_t n, const struct repo_sigstat *st);
/* Prints "  <label>: <text>" and the signers on f. */
void repo_sigstat_print(FILE *f, const char *label, const struct repo_sigstat *st);

/* true if keyid is one of root's keys for role. */
bool repo_role_has_key(const struct ota_tuf_meta *root, enum ota_tuf_role role, const char *keyid);

struct repo {
    char dir[PATH_MAX];
    const struct cli_ctx *ctx;
    int lock_fd;
    char expires_text[OTA_TUF_ROLE_COUNT][24];
    int64_t expires[OTA_TUF_ROLE_COUNT]; /* lifetimes in seconds */

    /* published state; all NULL before the first publish */
    struct ota_tuf_meta *root;      /* newest published root */
    struct ota_tuf_meta *prev_root; /* the one before it (NULL for v1) */
    struct ota_tuf_meta *timestamp;
    struct ota_tuf_meta *snapshot;
    struct ota_tuf_meta *targets;
    uint64_t snapshot_len, targets_len; /* exact bytes of the live files */
    uint8_t snapshot_sha256[OTA_SHA256_LEN], targets_sha256[OTA_SHA256_LEN];
    bool maybe_interrupted; /* pending root version == published root version */
    bool interrupted;       /* ...and live metadata still needs the previous root */

    /* pending metadata; NULL when none */
    json_t *pend_root;
    struct ota_tuf_meta *pend_root_md;
    bool pend_root_stale;
    json_t *pend_targets;
    struct ota_tuf_meta *pend_targets_md;
    bool pend_targets_stale;
};

enum {
    REPO_LOCK = 1u, /* take DIR/.lock (every changing command) */
};

/* Opens DIR: lock (with REPO_LOCK), configuration, published state
 * (verified) and pending files. On failure r holds nothing to free. */
OTA_WUR int repo_open(struct repo *r, const char *dir, unsigned flags, const struct cli_ctx *ctx,
                      struct ota_detail *det);
/* Frees everything and releases the lock; accepts a zeroed struct. */
void repo_close(struct repo *r);

/* DIR-relative path into out (PATH_MAX); OTA_ERR_TOO_LARGE if it does not
 * fit. */
OTA_WUR int repo_path(char out[PATH_MAX], const struct repo *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The root that will be in force after the next publish: the pending root
 * (not stale), else the published root, else NULL. */
const struct ota_tuf_meta *repo_next_root(const struct repo *r);
/* Version of the published targets (0 before the first publish). */
uint64_t repo_published_targets_version(const struct repo *r);

/* New metadata document {"signed": {_type, spec_version, version,
 * expires}, "signatures": []}; NULL on allocation failure. */
json_t *repo_meta_new(enum ota_tuf_role role, uint64_t version, int64_t expires);

/* Creates the pending targets from the published ones (version + 1, fresh
 * expiry, no signatures) unless a (not stale) pending targets exists. Not
 * written to disk: repo_set_pending does that. */
OTA_WUR int repo_pending_targets(struct repo *r, struct ota_detail *det);

/* The first version of role from `from` on that DIR's ledger has not
 * logged (`from` when the published root names no ledger). A publish that
 * failed after its ledger commit leaves versions logged that were never
 * served; a changed file must not reuse them (publish would refuse it:
 * a logged version cannot change). */
OTA_WUR int repo_unlogged_version(struct repo *r, enum ota_tuf_role role, uint64_t from,
                                  uint64_t *out, struct ota_detail *det);

/* Validates doc as metadata of role (root or targets) and makes it the
 * pending file (written atomically). Takes a new reference to doc. */
OTA_WUR int repo_set_pending(struct repo *r, enum ota_tuf_role role, json_t *doc,
                             struct ota_detail *det);

/* Merges the signatures of FILE (another copy of the pending file of role)
 * into the pending document: the signed parts must be canonically
 * identical; a signature is kept only if it verifies and its key is
 * accepted by one of roots[0..nroots) for `role`. Warns about each dropped
 * one. Returns the number added in *added. Does not write. */
OTA_WUR int repo_merge_file(struct repo *r, enum ota_tuf_role role, const char *file,
                            const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                            struct ota_detail *det);

/* Publishes what is pending (see the state machine above); prints a
 * summary on out. */
OTA_WUR int repo_publish(struct repo *r, FILE *out, struct ota_detail *det);

/* Re-signs the timestamp (and the snapshot when due or forced). */
OTA_WUR int repo_refresh(struct repo *r, bool force_snapshot, FILE *out, struct ota_detail *det);

/* Renames private/<role>.key.next over <role>.key for online roles whose
 * published root lists the new key (end of an online key rotation). */
OTA_WUR int repo_finish_key_rotation(struct repo *r, struct ota_detail *det);

/* Serialises doc (sorted keys; compact or indented) into a new string. */
OTA_WUR int repo_dump(char **out, size_t *len, const json_t *doc, bool indent);

/* Atomic write of a file below DIR through the fault hook. */
OTA_WUR int repo_write(const struct repo *r, const char *path, const void *data, size_t len,
                       struct ota_detail *det);

/* Streams src to dst atomically (temporary, fsync, rename, dir fsync; each
 * step through the hook), computing the SHA-256 and length. With
 * want_sha256 the copy is refused (OTA_ERR_HASH_MISMATCH, nothing
 * renamed) when the content differs; with want_len likewise
 * (OTA_ERR_LENGTH_MISMATCH). Refuses more than max bytes. */
OTA_WUR int repo_copy_file(uint8_t sha256_out[OTA_SHA256_LEN], uint64_t *len_out, const char *dst,
                           const char *src, const uint8_t *want_sha256, const uint64_t *want_len,
                           uint64_t max, const struct ota_fs_hook *hook, struct ota_detail *det);

/* Lock file helper (also used by init before DIR is complete). */
OTA_WUR int repo_lock(int *fd, const char *dir, struct ota_detail *det);

/* Prints a human-readable status (repo status). */
void repo_print_status(const struct repo *r, FILE *out);

/* Prints the threshold status of the pending files (after sign / merge). */
void repo_print_pending(const struct repo *r, FILE *out, bool root, bool targets);

#endif
