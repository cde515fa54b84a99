/* The log side of the ledger inside the otachain CLI
 * (docs/formats/ledger.md): the sequencer state in DIR/ledger.db, the log
 * key in DIR/private/log.key, the static log in DIR/public/ledger/, and the
 * witness round of publish and refresh.
 *
 * Publish (ledger_publish), one call, inside one store transaction:
 *
 *   BEGIN ─► append entries + tiles + edge ─► sign checkpoint (log key)
 *     ─► write the immutable files: versioned metadata, new tiles, entry
 *        bundles, index files (recorded when new)
 *     ─► add-checkpoint to every witness of every policy, in parallel
 *        (409: retry once from the size the witness reports)
 *     ─► quorum of every policy met?
 *          no:  ROLLBACK (COMMIT if some witness cosigned, invariant 4);
 *               remove the files written above; OTA_ERR_QUORUM naming
 *               who did not cosign and why
 *          yes: store witness sizes + cosigned note; COMMIT;
 *               replace public/ledger/checkpoint (atomic)
 *   then the caller writes the metadata, timestamp.json last.
 *
 * Invariants:
 *  1. public/ledger/checkpoint only ever names a tree whose tiles and
 *     entry bundles are already exported, and it is written before the
 *     metadata it vouches for.
 *  2. A record already logged with the same bytes is not logged again
 *     (a publish interrupted after the commit can be redone); the same
 *     role and version with other bytes is refused (OTA_ERR_EXISTS).
 *  3. Nothing public changes when the quorum is not met: the files
 *     written before asking are removed again (nothing referred to them).
 *  4. The log never drops a tree a witness has cosigned: when the quorum
 *     is not met but some witness cosigned, the entries are committed
 *     (unpublished) instead of rolled back, so that the next publish
 *     extends that tree; a rollback (nobody cosigned) loses nothing any
 *     witness has seen. The size each witness cosigned is stored either
 *     way.
 */
#ifndef OTACHAIN_LEDGER_H
#define OTACHAIN_LEDGER_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "otachain/log_store.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_policy.h"
#include "otachain/tuf.h"

#define LEDGER_DB                 "ledger.db"
#define LEDGER_KEY                "private/log.key"
#define LEDGER_PUBLIC             "public/ledger"
#define LEDGER_WITNESS_TIMEOUT_MS 10000L
#define LEDGER_DEFAULT_MAX_AGE    86400
#define LEDGER_SKEW               300
/* Most policies one publish answers to (in force + new root). */
#define LEDGER_MAX_POLICIES 2

struct ledger {
    char dir[PATH_MAX];
    const struct cli_ctx *ctx;
    struct ota_log_store *store;
    struct ota_note_signer *key; /* the log key */
    struct ota_note_verifier vkey;
};

/* One metadata file to log: its role, version and exact bytes. */
struct ledger_record {
    enum ota_tuf_role role;
    uint64_t version;
    const void *data;
    size_t len;
};

/* The ledger policy of a root: *out NULL (and 0) when the root carries no
 * "x-otachain-ledger"; *max_age its freshness window (default 1 day). */
OTA_WUR int ledger_policy_of(struct ota_tlog_policy **out, int64_t *max_age,
                             const struct ota_tuf_meta *root, struct ota_detail *det);

/* The log's verifier key (C2SP note vkey, what each witness's [log]
 * section needs as `key`) and origin, from root's ledger policy.
 * OTA_ERR_NOT_FOUND when root names no ledger. */
OTA_WUR int ledger_log_key(char vkey[OTA_NOTE_VKEY_SIZE],
                           char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1],
                           const struct ota_tuf_meta *root, struct ota_detail *det);

/* Creates the log key (type 0x01, named origin) at path, mode 0600,
 * refusing to overwrite; writes its verifier key string into vkey. */
OTA_WUR int ledger_create_key(char vkey[OTA_NOTE_VKEY_SIZE], const char *path, const char *origin,
                              struct ota_detail *det);

/* Opens DIR's ledger: the store (created if missing) and the log key. */
OTA_WUR int ledger_open(struct ledger *lg, const char *dir, const struct cli_ctx *ctx,
                        struct ota_detail *det);
void ledger_close(struct ledger *lg);

/* Whether role version is logged: *found, and *same when its record is the
 * one of data[0..len). */
OTA_WUR int ledger_logged(struct ledger *lg, enum ota_tuf_role role, uint64_t version,
                          const void *data, size_t len, bool *found, bool *same,
                          struct ota_detail *det);

/* A file written before the witnesses are asked (publish step 3: the
 * versioned metadata validating witnesses read), removed again when the
 * quorum is not met. */
struct ledger_file {
    const char *path;
    const void *data;
    size_t len;
};

/* Publishes recs (see the top of this file) under the policies pols
 * (the root in force and the new root; NULL entries skipped). files are
 * written (in order) with the tiles before the witnesses are asked. */
OTA_WUR int ledger_publish(struct ledger *lg, const struct ledger_record *recs, size_t n,
                           const struct ledger_file *files, size_t nfiles,
                           const struct ota_tlog_policy *const *pols, size_t npols, FILE *out,
                           struct ota_detail *det);

/* Re-sends the current checkpoint to every witness of pol and rewrites
 * public/ledger/checkpoint with the fresh cosignatures (quorum needed). */
OTA_WUR int ledger_refresh(struct ledger *lg, const struct ota_tlog_policy *pol, FILE *out,
                           struct ota_detail *det);

/* The C2SP tlog-proof@v1 of entry index against the latest cosigned
 * checkpoint, appended to out. */
OTA_WUR int ledger_proof_index(struct ledger *lg, struct ota_buf *out, uint64_t index,
                               struct ota_detail *det);

/* The tlog-witness add-checkpoint body from size `from` to the latest
 * cosigned checkpoint (its log signature only), appended to out. */
OTA_WUR int ledger_proof_from(struct ledger *lg, struct ota_buf *out, uint64_t from,
                              struct ota_detail *det);

/* A witness as given on the command line: NAME=VKEY@URL. */
struct ledger_witness {
    char name[OTA_TLOG_POLICY_MAX_NAME + 1];
    char vkey[OTA_NOTE_VKEY_SIZE];
    char url[OTA_TLOG_POLICY_MAX_URL + 1];
};

/* Parses NAME=VKEY@URL (VKEY a cosignature/v1 verifier key). CLI_ERR_USAGE
 * with det when malformed. */
OTA_WUR int ledger_witness_parse(struct ledger_witness *w, const char *arg, struct ota_detail *det);

/* Builds the "x-otachain-ledger" object of root.json: origin, policy lines
 * ("log <vkey>", "witness <name> <vkey> <url>"..., "group witnesses <k>
 * <names>", "quorum witnesses"; "quorum none" without witnesses) and
 * max_age. quorum 0 means all witnesses. Checked by parsing it back. */
OTA_WUR int ledger_json(json_t **out, const char *origin, const char *log_vkey,
                        const struct ledger_witness *ws, size_t nw, uint64_t quorum,
                        int64_t max_age, struct ota_detail *det);

/* Changes the witnesses of the "x-otachain-ledger" object in a root's
 * signed part: removes the names in rm, adds add, and sets the quorum
 * (quorum_arg NULL: keep the old threshold, "all" if it was all).
 * OTA_ERR_NOT_FOUND when the root carries no ledger. */
OTA_WUR int ledger_rotate_json(json_t *signed_part, const struct ledger_witness *add, size_t nadd,
                               const char *const *rm, size_t nrm, const char *quorum_arg,
                               struct ota_detail *det);

#endif
