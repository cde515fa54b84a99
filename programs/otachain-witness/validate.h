/* Validating mode: the release rules a validating witness checks before
 * it cosigns a bigger checkpoint (DESIGN §4, the cothority of the
 * skipchain design).
 *
 * For the new entries [old size, new size) of the checkpoint:
 *  V1 the entry bundles served under tiles_url hash (RFC 9162 leaves),
 *     appended to the stored right edge, to exactly the checkpoint's
 *     root: the witness has seen every entry it vouches for;
 *  V2 every entry is an otachain ledger record (ledger_entry.h);
 *  V3 the file each record names, <repo_url>/metadata/<V>.<role>.json
 *     (or, while its publish waits for the quorum, the staged copy
 *     <repo_url>/staging/metadata/<V>.<role>.json), has the logged length
 *     and SHA-256, parses as that role, and carries the logged version;
 *  V4 versions only increase per role; root versions go up by exactly one
 *     (the chain a TUF client walks);
 *  V5 the first root record is the configured anchor, byte for byte; every
 *     later root is signed by the root threshold of the previous logged
 *     root and by its own;
 *  V6 every targets record carries the targets threshold of the latest
 *     logged root, and every snapshot record the snapshot threshold;
 *  V7 a snapshot pins (version, and length and SHA-256 when it pins them)
 *     exactly the latest logged targets.
 * Nothing is stored here: on success the caller persists *next with the
 * checkpoint, in one atomic replacement.
 */
#ifndef OTACHAIN_WITNESS_VALIDATE_H
#define OTACHAIN_WITNESS_VALIDATE_H

#include "config.h"
#include "otachain/checkpoint.h"
#include "otachain/err.h"
#include "remote.h"
#include "state.h"

/* Most new entries one add-checkpoint may bring (memory: ~60 bytes each). */
#define WIT_MAX_NEW_ENTRIES 200000

/* Why validation did not pass; the caller maps it to an HTTP status. */
enum wit_verdict {
    WIT_VALID = 0,
    WIT_REFUSED,     /* the log's content breaks a rule (422) */
    WIT_UNAVAILABLE, /* entries or metadata could not be fetched (503) */
    WIT_INTERNAL,    /* memory or library failure (500) */
};

/* Checks V1..V7 for the step from cur (whose edge is at the stored size)
 * to cp. On success returns 0 and *next (owned, wit_vstate_free) is the
 * state after the new entries. Otherwise returns a negative ota_err,
 * *verdict says which class, det gives the reason (entry index, role,
 * version and what failed), and *next is empty. */
OTA_WUR int wit_validate(struct wit_vstate *next, enum wit_verdict *verdict,
                         const struct wit_vstate *cur, const struct ota_checkpoint *cp,
                         const struct wit_log *log, struct wit_remote *remote,
                         struct ota_detail *det);

#endif
