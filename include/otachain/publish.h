/* Publish and refresh of an authoring repository (repo.h), as library
 * code shared by the CLI and the server: the new metadata is signed by
 * the online signer, logged on the ledger (sequencer.h), cosigned by the
 * witnesses (witness_round.h) and only then made public. Results come
 * back as structs; nothing is printed.
 *
 * Two transactions, no transaction open across the network: the new
 * entries are committed before any witness is asked (P3), the cosigned
 * checkpoint is recorded in a second (P5). An event-loop program drives
 * the witness round itself between ota_publish_begin and ota_publish_end;
 * ota_publish() does all three with a blocking transport.
 *
 * The state machine and its invariants are at the top of lib/publish.c.
 */
#ifndef OTACHAIN_PUBLISH_H
#define OTACHAIN_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/repo.h"
#include "otachain/witness_round.h"

/* How the witnesses are reached: run sends every request of a started
 * round and feeds the answers back (witness_curl.h's driver, or a test's
 * scripted one). */
struct ota_witness_transport {
    int (*run)(void *ctx, struct ota_witness_round *r, struct ota_detail *det);
    void *ctx;
};

/* What a publish or refresh did. */
struct ota_publish_result {
    bool nothing_left;     /* publish: what was pending had been published already */
    bool recovered;        /* an interrupted publish was completed first */
    uint64_t root_version; /* the live state afterwards */
    uint64_t targets_version;
    size_t ntargets;
    uint64_t snapshot_version;
    bool snapshot_signed; /* a new snapshot was signed */
    uint64_t timestamp_version;
    bool ledger;              /* the repository has a ledger */
    uint64_t checkpoint_size; /* the cosigned checkpoint's size */
    size_t ncosigned;         /* witnesses that cosigned it */
    size_t nheld;             /* quorum failed: witnesses that may hold the tree */
    bool kept;                /* quorum failed: the new entries stay logged */
};

struct ota_publish;

/* Publish, first half: finishes an interrupted publish, checks every
 * threshold and the online keys, builds the new files in memory, logs
 * them and stages them (no transaction stays open). Afterwards the round
 * (ota_publish_round) waits for a driver, or is NULL when nothing is to
 * be asked. OTA_ERR_NOT_FOUND when nothing is pending (det says so;
 * with res->nothing_left when stale pending files were removed instead,
 * which is success: *out is then NULL). On failure nothing public
 * changed. */
OTA_WUR int ota_publish_begin(struct ota_publish **out, struct ota_repo *r,
                              struct ota_publish_result *res, struct ota_detail *det);

/* Refresh, first half: a new timestamp, and a new snapshot when half its
 * lifetime is gone or force_snapshot (logged like a publish); without a
 * new snapshot, the current checkpoint is sent to the witnesses again for
 * fresh cosignature times. */
OTA_WUR int ota_refresh_begin(struct ota_publish **out, struct ota_repo *r, bool force_snapshot,
                              struct ota_publish_result *res, struct ota_detail *det);

/* The round to drive between begin and end (every request built), or
 * NULL when there is nothing to ask. */
struct ota_witness_round *ota_publish_round(struct ota_publish *p);

/* Second half: judges the round and, with every quorum met, records the
 * cosigned checkpoint and makes the new state public (timestamp.json
 * last). OTA_ERR_QUORUM otherwise, det naming who did not cosign and
 * why, with nothing public changed (the tree stays logged unless no
 * witness may hold it). */
OTA_WUR int ota_publish_end(struct ota_publish *p, struct ota_publish_result *res,
                            struct ota_detail *det);

/* Frees; accepts NULL. */
void ota_publish_free(struct ota_publish *p);

/* begin, transport->run, end. */
OTA_WUR int ota_publish(struct ota_repo *r, const struct ota_witness_transport *t,
                        struct ota_publish_result *res, struct ota_detail *det);
OTA_WUR int ota_refresh(struct ota_repo *r, bool force_snapshot,
                        const struct ota_witness_transport *t, struct ota_publish_result *res,
                        struct ota_detail *det);

/* The public ledger of a repository store (public/ledger/<path>) for the
 * sequencer (sequencer.h): ota_ledger_put_tile is a tile sink's put (ctx:
 * the struct ota_repo_store; tiles and entry bundles are immutable, an
 * existing file is kept); ota_ledger_remove_tile removes one for
 * ota_seq_export_paths (ctx: a struct ota_ledger_unpublish). */
struct ota_ledger_unpublish {
    struct ota_repo_store *store;
    struct ota_detail *det; /* may be NULL */
};
OTA_WUR int ota_ledger_put_tile(void *ctx, const char *path, const void *data, size_t len,
                                struct ota_detail *det);
OTA_WUR int ota_ledger_remove_tile(void *ctx, const char *path);

/* The ledger policy of a root: *out NULL (and *max_age 0) when the root
 * carries no "x-otachain-ledger"; *max_age its freshness window. */
#define OTA_LEDGER_DEFAULT_MAX_AGE 86400
OTA_WUR int ota_publish_policy_of(struct ota_tlog_policy **out, int64_t *max_age,
                                  const struct ota_tuf_meta *root, struct ota_detail *det);

#endif
