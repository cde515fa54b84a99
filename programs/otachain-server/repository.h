/* The server's view of the repository it hosts (docs/server.md
 * "Repository"): the published versions, the image releases of the
 * published targets metadata (for assignments and the newest-update
 * query), every published target by SHA-256 (download by id), and the
 * ledger's latest checkpoint (for the devices' reported checkpoints).
 *
 * A state is an immutable, reference-counted value: the database thread
 * and the event loop each take a reference (srv_repo_get) and read it
 * without a lock while a reload builds the next one and swaps it in.
 * A reload happens when timestamp.json or ledger/checkpoint changed on
 * disk (a publish: by this server later, by `otachain repo publish`
 * now), checked every repository_poll seconds, and at SIGHUP.
 *
 * The server trusts its own repository directory (it is the host, not a
 * client): files are parsed with the library's strict parsers, not
 * verified against keys. What goes wrong is logged and the previous
 * state stays.
 */
#ifndef OTACHAIN_SERVER_REPOSITORY_H
#define OTACHAIN_SERVER_REPOSITORY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "bundles.h"
#include "otachain/checkin.h"
#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/log_store.h"
#include "otachain/release.h"

/* A published target. */
struct srv_target {
    uint8_t sha256[OTA_SHA256_LEN];
    uint64_t length;
    char *path; /* target path, "P/V/NAME" */
    char *file; /* below public/: "targets/P/V/<sha256>.NAME" */
};

struct srv_repo_state {
    atomic_int refs;
    bool published; /* false before the first publish */
    uint64_t root_version, timestamp_version, snapshot_version, targets_version;
    int64_t timestamp_expires;
    struct srv_target *targets; /* sorted by sha256 */
    size_t ntargets;
    struct ota_release *releases; /* image targets with a release custom */
    const struct srv_target **release_target;
    size_t nreleases;
    bool has_checkpoint;
    struct ota_checkpoint *checkpoint;
    /* The exact bytes the state was read from: timestamp.json and
     * ledger/checkpoint (NULL when absent), for the proof bundles. */
    uint8_t *timestamp_bytes, *checkpoint_bytes;
    size_t timestamp_len, checkpoint_len;
    struct srv_bundle_cache *bundles; /* bundles.h */
};

struct srv_repo {
    char *dir;        /* the repository directory */
    char *public_dir; /* dir/public */
    pthread_mutex_t mu;
    struct srv_repo_state *cur;
    struct stat ts_st, cp_st; /* what the current state was read from */
};

/* Opens dir and loads its state. A repository never published yet is a
 * valid, empty state. */
OTA_WUR int srv_repo_open(struct srv_repo *r, const char *dir, struct ota_detail *det);
void srv_repo_close(struct srv_repo *r);

/* Whether timestamp.json or the checkpoint changed since the current
 * state was read (two stat calls). */
bool srv_repo_changed(struct srv_repo *r);

/* Builds a new state from disk (any thread) and swaps it in; on failure
 * the old state stays. */
OTA_WUR int srv_repo_reload(struct srv_repo *r, struct ota_detail *det);

/* The current state, with a reference the caller drops with srv_repo_put. */
struct srv_repo_state *srv_repo_get(struct srv_repo *r);
void srv_repo_put(struct srv_repo_state *s);

/* The published target with this SHA-256, or NULL. */
const struct srv_target *srv_repo_find(const struct srv_repo_state *s,
                                       const uint8_t sha256[OTA_SHA256_LEN]);

/* The assignment for a device running report's product, hardware and
 * version (docs/api/device-v1.md): the newest release it may install
 * (release.h's verdict) whose target failed() does not name. Returns the
 * index into s->releases, or -1 for none. */
long srv_repo_assign(const struct srv_repo_state *s, const struct ota_checkin *report,
                     bool (*failed)(void *ctx, const char *target), void *ctx);

/* Fills a check-in assignment from release i of s. */
void srv_repo_assignment(struct ota_checkin_assignment *a, const struct srv_repo_state *s, long i);

/* The start-up check (docs/server.md "The log database"): when the
 * repository published a checkpoint, DIR/ledger.db must hold at least
 * its entries, the same tree at its size, and a cosigned checkpoint at
 * least as large. A database restored from an older backup fails with
 * OTA_ERR_LOG_ROLLBACK saying which of these it lacks; serving from it
 * would fork the log and make every witness refuse. On success *ls is
 * the opened log store (NULL when the repository has no ledger), for
 * the devices' checkpoint checks on the database thread. */
OTA_WUR int srv_repo_check_log(struct ota_log_store **ls, struct srv_repo *r,
                               struct ota_detail *det);

/* The root hash of the log's tree at size (from the store's tiles). */
OTA_WUR int srv_log_root_at(uint8_t root[32], struct ota_log_store *ls, uint64_t size,
                            struct ota_detail *det);

#endif
