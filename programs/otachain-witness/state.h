/* The witness's durable state: one file per witnessed log,
 * <state_dir>/<hex SHA-256 of the origin>.json (docs/witness.md):
 *
 *     {"format": "otachain-witness-state/v1",
 *      "origin": "<origin>",
 *      "checkpoint": "<the cosigned checkpoint body>",
 *      "cosigned_at": <POSIX time of the last cosignature written>,
 *      "validation": {                       (validating logs only)
 *          "edge": "<base64 of the tree's right edge (merkle.h encoding)>",
 *          "root": "<base64 of the latest logged root.json>" | null,
 *          "versions": {"root": R, "targets": T, "snapshot": S},
 *          "targets": {"length": L, "sha256": "<hex>"} | null}}
 *
 * Invariants, checked on every load (a file breaking one is refused and
 * the witness does not start):
 *  S1 the file exists iff a checkpoint for the origin was cosigned; its
 *     checkpoint parses and carries exactly this origin;
 *  S2 the file is only ever replaced whole (ota_fs_replace: temporary
 *     file, fsync, rename, directory fsync) and the replacement is durable
 *     before the cosignature it backs leaves the process;
 *  S3 with validation, the edge describes the tree of the checkpoint's
 *     size and its root is the checkpoint's root hash;
 *  S4 with validation, a stored root parses as root.json and its version
 *     is versions.root; versions are 0 for a role never logged; "targets"
 *     is the length and SHA-256 of the latest logged targets version.
 */
#ifndef OTACHAIN_WITNESS_STATE_H
#define OTACHAIN_WITNESS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/ledger_rules.h"
#include "otachain/merkle.h"

/* Cap on a state file: a root.json of up to 512 KiB in base64 and the
 * rest. */
#define WIT_STATE_MAX_LEN (1024u * 1024)

/* Validating mode's view of the log (S3, S4): the tree and the state of
 * the release rules (include/otachain/ledger_rules.h). */
struct wit_vstate {
    struct ota_merkle_edge edge;
    struct ota_ledger_rules rules;
};

struct wit_state {
    bool present;     /* a checkpoint was cosigned (S1) */
    char *checkpoint; /* its body (owned), NUL-terminated */
    size_t checkpoint_len;
    struct ota_checkpoint cp; /* the body parsed */
    uint64_t cosigned_at;
    bool has_validation;
    struct wit_vstate v;
};

/* Path of the state file of origin under state_dir (a new string). */
OTA_WUR int wit_state_path(char **out, const char *state_dir, const char *origin,
                           size_t origin_len);

/* Loads path into *st. A missing file is the empty state (0, present
 * false, and with validating an empty edge). A file that breaks S1, S3 or
 * S4, or whose validation part is missing while validating is asked for
 * (a state written before validating mode was turned on) is
 * OTA_ERR_FORMAT with det saying why. On failure *st is empty. */
OTA_WUR int wit_state_load(struct wit_state *st, const char *path, const char *origin,
                           size_t origin_len, bool validating, struct ota_detail *det);

/* Replaces path with st atomically and durably (S2); hook is the fault
 * injection hook (may be NULL). */
OTA_WUR int wit_state_store(const struct wit_state *st, const char *path, const char *origin,
                            size_t origin_len, const struct ota_fs_hook *hook,
                            struct ota_detail *det);

/* Frees what st owns; st is empty afterwards. Accepts an empty state. */
void wit_state_free(struct wit_state *st);

/* Deep copy (dst is overwritten, not freed). OTA_ERR_NOMEM. */
OTA_WUR int wit_vstate_copy(struct wit_vstate *dst, const struct wit_vstate *src);
void wit_vstate_free(struct wit_vstate *v);

#endif
