/* An authoring repository (docs/formats/repository.md) as library code:
 * its configuration, the published state read back and verified (root
 * chain 1..N, then timestamp -> snapshot -> targets, each against its pin
 * and its role's keys), and the pending root and targets being signed,
 * all through a repository store (repo_store.h) and an online signer
 * (repo_signer.h). Publish and refresh are in publish.h. Nothing here
 * prints or reads a clock: "now" is the caller's.
 *
 * Pending files and what an interrupted publish leaves (publish.h has the
 * state machine): a pending file whose version is already published is
 * stale and removed by the next publish; until then, while the newest
 * root's publish is unfinished, the live metadata signed under the
 * previous root still verifies against that previous root (interrupted).
 */
#ifndef OTACHAIN_REPO_H
#define OTACHAIN_REPO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/repo_signer.h"
#include "otachain/repo_store.h"
#include "otachain/tuf.h"

#define OTA_REPO_FORMAT 1
/* Cap on a firmware image or any target file. */
#define OTA_REPO_MAX_IMAGE ((uint64_t)8 << 30)
/* Largest integer written into metadata (exact in every JSON parser). */
#define OTA_REPO_MAX_JSON_INT ((uint64_t)9007199254740991)
#define OTA_REPO_CONFIG_MAX   (64u * 1024)
#define OTA_REPO_DURATION_MAX ((int64_t)100 * 365 * 86400)

struct ota_repo {
    struct ota_repo_store *store;   /* not owned */
    struct ota_repo_signer *signer; /* not owned; may be NULL (nothing signed) */
    int64_t now;                    /* the caller's clock reading */
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

/* "30s", "10m", "12h", "7d", "2w", "1y" (365 days) -> seconds (> 0, at
 * most 100 years). OTA_ERR_FORMAT when malformed. */
OTA_WUR int ota_repo_duration_parse(int64_t *out, const char *s);

/* Opens the repository in store: configuration ("repo.json"), published
 * state (verified) and pending files. On failure r holds nothing to free.
 * A publish interrupted after its quorum is completed by ota_publish, not
 * here (opening only reads). */
OTA_WUR int ota_repo_open(struct ota_repo *r, struct ota_repo_store *store,
                          struct ota_repo_signer *signer, int64_t now, struct ota_detail *det);

/* Frees everything; accepts a zeroed struct. */
void ota_repo_close(struct ota_repo *r);

/* The root that will be in force after the next publish: the pending root
 * (not stale), else the published root, else NULL. */
const struct ota_tuf_meta *ota_repo_next_root(const struct ota_repo *r);

/* Version of the published targets (0 before the first publish). */
uint64_t ota_repo_published_targets_version(const struct ota_repo *r);

/* New metadata document {"signed": {_type, spec_version, version,
 * expires}, "signatures": []}; NULL on allocation failure. */
json_t *ota_repo_meta_new(enum ota_tuf_role role, uint64_t version, int64_t expires);

/* Serialises doc (sorted keys; compact, as published, or indented, as
 * pending files are) into a new string. */
OTA_WUR int ota_repo_dump(char **out, size_t *len, const json_t *doc, bool indent);

/* Creates the pending targets from the published ones (version + 1, fresh
 * expiry, no signatures) unless a (not stale) pending targets exists. Not
 * stored: ota_repo_set_pending does that. */
OTA_WUR int ota_repo_pending_targets(struct ota_repo *r, struct ota_detail *det);

/* The first version of role from `from` on that the ledger has not logged
 * (`from` without a ledger). A publish that failed after logging leaves
 * versions logged that were never served; a changed file must not reuse
 * them (a logged version cannot change). */
OTA_WUR int ota_repo_unlogged_version(struct ota_repo *r, enum ota_tuf_role role, uint64_t from,
                                      uint64_t *out, struct ota_detail *det);

/* Validates doc as metadata of role (root or targets) and makes it the
 * pending file ("pending/<role>.json"). Takes a new reference to doc. */
OTA_WUR int ota_repo_set_pending(struct ota_repo *r, enum ota_tuf_role role, json_t *doc,
                                 struct ota_detail *det);

/* A signature dropped by ota_repo_merge. */
struct ota_repo_dropped {
    char keyid[OTA_KEYID_SIZE];
    bool known; /* a key of the role that does not verify; else not a key of the role */
};

/* Merges the signatures of data[0..len) (another copy of the pending file
 * of role) into the pending document (ota_tuf_merge_signatures): the
 * signed parts must be canonically identical (OTA_ERR_FORMAT); a
 * signature is kept only if its key belongs to role in one of
 * roots[0..nroots) and it verifies; the others are listed in dropped
 * (*ndropped of at most OTA_TUF_MAX_SIGS). *added: signatures added. Does
 * not store. */
OTA_WUR int ota_repo_merge(struct ota_repo *r, enum ota_tuf_role role, const void *data, size_t len,
                           const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                           struct ota_repo_dropped *dropped, size_t *ndropped,
                           struct ota_detail *det);

/* Who signed a document for a role, and who still could. */
struct ota_repo_sigstat {
    unsigned threshold;
    size_t nkeys;  /* keyids of the role */
    size_t nvalid; /* distinct role keys with a valid signature */
    char valid[OTA_TUF_MAX_ROLE_KEYS][OTA_KEYID_SIZE];
    size_t nable; /* role keys that have not signed (validly) yet */
    char able[OTA_TUF_MAX_ROLE_KEYS][OTA_KEYID_SIZE];
};

void ota_repo_sigstat(struct ota_repo_sigstat *st, const struct ota_tuf_meta *md,
                      const struct ota_tuf_meta *root, enum ota_tuf_role role);
bool ota_repo_sigstat_met(const struct ota_repo_sigstat *st);
/* "1 of 2 required signatures (1 missing; keys still able to sign: a, b)" */
void ota_repo_sigstat_text(char *out, size_t n, const struct ota_repo_sigstat *st);

/* true if keyid is one of root's keys for role. */
bool ota_repo_role_has_key(const struct ota_tuf_meta *root, enum ota_tuf_role role,
                           const char *keyid);

#endif
