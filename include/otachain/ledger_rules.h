/* The release rules of the ledger (DESIGN §4): what each new logged entry
 * must satisfy given every entry before it. One engine for the validating
 * witness (before it cosigns), `otachain ledger monitor` (auditing a log)
 * and the authoring side (checking what it is about to log), so that no
 * checker is weaker than another.
 *
 * For entry i, whose record e (ledger_entry.h) names a metadata file:
 *  R1 the file has the logged length and SHA-256, parses as that role and
 *     carries the logged version;
 *  R2 versions only increase per role; root versions go up by exactly one
 *     (the chain a TUF client walks);
 *  R3 the first root record is the anchor, byte for byte; every later root
 *     is signed by the root threshold of the previous logged root and by
 *     its own (ota_tuf_root_step);
 *  R4 no targets or snapshot record comes before the first root;
 *  R5 every targets record carries the targets threshold of the latest
 *     logged root, every snapshot record the snapshot threshold;
 *  R6 a snapshot pins exactly the latest logged targets (its version, and
 *     its length and SHA-256 when it pins them).
 * Expiry is not judged: a log records files that expire later.
 *
 * The state is a plain value the caller persists (to_json / from_json);
 * nothing here does I/O: the caller fetches each file.
 */
#ifndef OTACHAIN_LEDGER_RULES_H
#define OTACHAIN_LEDGER_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/ledger_entry.h"
#include "otachain/tuf.h"

/* What was logged so far. Zero it for a log with no entries. */
struct ota_ledger_rules {
    uint8_t *root; /* the latest logged root.json, exact bytes (owned); NULL before the first */
    size_t root_len;
    uint64_t version[3]; /* last logged version by enum ota_tuf_role (root, targets,
                            snapshot); 0: none yet */
    bool has_targets;    /* the latest logged targets' length and SHA-256: */
    uint64_t targets_length;
    uint8_t targets_sha256[OTA_SHA256_LEN];
};

/* Checks entry `index` (record e, file[0..len) the bytes it names, NULL
 * allowed for the anchor root) against st and, when it passes, adds it to
 * st. anchor: the root the log must start with (its exact bytes). On
 * refusal st is unchanged, det says "entry I (role vV): why" and the
 * return is the rule's error: OTA_ERR_LENGTH_MISMATCH /
 * OTA_ERR_HASH_MISMATCH / OTA_ERR_VERSION_MISMATCH or a parse error (R1),
 * OTA_ERR_ROLLBACK (R2), OTA_ERR_HASH_MISMATCH or the signature error
 * (R3), OTA_ERR_NO_TRUSTED_ROOT (R4), OTA_ERR_THRESHOLD or another
 * signature error (R5), OTA_ERR_VERSION_MISMATCH (R6). OTA_ERR_NOMEM is
 * not a refusal. */
OTA_WUR int ota_ledger_rules_check(struct ota_ledger_rules *st, uint64_t index,
                                   const struct ota_ledger_entry *e, const uint8_t *file,
                                   size_t len, const uint8_t *anchor, size_t anchor_len,
                                   struct ota_detail *det);

/* The rules that need no file (R2, R4), so that a checker refuses a bad
 * record before it fetches anything; *need_file is false for the first
 * root (the anchor is the file). Same errors as ota_ledger_rules_check. */
OTA_WUR int ota_ledger_rules_precheck(const struct ota_ledger_rules *st, uint64_t index,
                                      const struct ota_ledger_entry *e, bool *need_file,
                                      struct ota_detail *det);

/* Whether an error of ota_ledger_rules_check is a refusal (the log broke a
 * rule) rather than a failure to check (memory). */
bool ota_ledger_rules_refused(int err);

/* Deep copy into dst (overwritten, not freed); OTA_ERR_NOMEM. */
OTA_WUR int ota_ledger_rules_copy(struct ota_ledger_rules *dst, const struct ota_ledger_rules *src);

/* Frees what st owns and zeroes it; accepts a zeroed state. */
void ota_ledger_rules_free(struct ota_ledger_rules *st);

/* {"root": <base64 of root.json> | null, "versions": {"root": R,
 * "targets": T, "snapshot": S}, "targets": {"length": L, "sha256": hex} |
 * null} as members of obj (which may hold others). */
OTA_WUR int ota_ledger_rules_to_json(json_t *obj, const struct ota_ledger_rules *st);

/* Reads those members of obj back into st (zeroed first), checking that
 * they hang together: a stored root parses and is versions.root, targets
 * are present iff versions.targets is not 0. OTA_ERR_FORMAT with det. */
OTA_WUR int ota_ledger_rules_from_json(struct ota_ledger_rules *st, const json_t *obj,
                                       struct ota_detail *det);

#endif
