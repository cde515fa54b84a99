/* The TUF client update workflow (TUF spec 1.0.31 §5.3–§5.7), shared by
 * `otachain repo verify` and the device agent.
 *
 * Trusted state is a directory holding root.json, timestamp.json,
 * snapshot.json and targets.json: the newest verified copy of each. Every
 * change is an atomic replacement (ota_fs_replace) so a crash at any point
 * leaves each file either old or new, and the next run still verifies.
 *
 *   open ──► refresh: root chain ──► timestamp ──► snapshot ──► targets
 *                       (5.3)          (5.4)         (5.5)       (5.6)
 *        ──► download target (5.7)
 *
 * Invariants:
 *  1. Nothing is persisted before it is verified against the role's keys
 *     in the (newly) trusted root.
 *  2. root.json is replaced one version at a time, each signed by the
 *     threshold of the previous root and of itself.
 *  3. When a root update changes the timestamp or snapshot keys, the
 *     trusted timestamp and snapshot are deleted (fast-forward recovery);
 *     when it changes the targets keys, targets.json is deleted.
 *  4. Versions never go down: timestamp (equal keeps the trusted copy),
 *     snapshot version pinned by timestamp, no targets file version in the
 *     snapshot lower than the trusted snapshot's, targets version pinned by
 *     the snapshot.
 *  5. Expiry is judged against one time fixed at the start of refresh.
 *  6. Every fetch is capped: by the pinned length where a role pins it
 *     (a longer file is OTA_ERR_LENGTH_MISMATCH, refused at the pin), else
 *     by the role's default cap (OTA_ERR_TOO_LARGE).
 *  7. One client per state directory: open takes an exclusive flock on
 *     <state_dir>/.lock (OTA_ERR_LOCKED if held), released by free.
 */
#ifndef OTACHAIN_TUF_CLIENT_H
#define OTACHAIN_TUF_CLIENT_H

#include <stdint.h>

#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/tuf.h"

#define OTA_TUF_DEFAULT_MAX_ROOT_ROTATIONS 256

struct ota_tuf_client_opts {
    const char *state_dir;       /* trusted metadata directory (created 0700 if missing) */
    int64_t now;                 /* 0: time(NULL) at the start of each refresh */
    unsigned max_root_rotations; /* per refresh; 0: the default */
    uint64_t root_max_len;       /* 0: OTA_TUF_ROOT_MAX_LEN, etc. */
    uint64_t timestamp_max_len;
    uint64_t snapshot_max_len;
    uint64_t targets_max_len;
    const struct ota_fs_hook *hook; /* fault injection for state writes; may be NULL */
};

struct ota_tuf_client;

/* Opens the trusted state. If state_dir has no root.json, bootstrap_root
 * (the bytes of a root.json distributed out of band) is verified against
 * its own keys and threshold and stored as the trusted root; without it
 * that is OTA_ERR_NO_TRUSTED_ROOT. If the state already has a root,
 * bootstrap_root is ignored. Local timestamp/snapshot/targets files that
 * no longer verify against the trusted root are ignored (not trusted). */
OTA_WUR int ota_tuf_client_open(struct ota_tuf_client **out, const struct ota_tuf_client_opts *opts,
                                const void *bootstrap_root, size_t bootstrap_len,
                                struct ota_detail *det);

/* Runs the update workflow through targets (5.3–5.6). On failure the state
 * holds whatever was verified before the failing step; det names the file
 * and the rule. */
OTA_WUR int ota_tuf_client_refresh(struct ota_tuf_client *c, const struct ota_fetcher *f,
                                   struct ota_detail *det);

/* The trusted metadata of a role after open/refresh, or NULL. Owned by the
 * client; valid until the next refresh or free. */
const struct ota_tuf_meta *ota_tuf_client_trusted(const struct ota_tuf_client *c,
                                                  enum ota_tuf_role role);

/* Downloads a target listed in the trusted targets (5.7) to out_path:
 * streamed to out_path.part with the length as cap, SHA-256 checked, then
 * renamed into place. Never leaves out_path holding unverified bytes.
 * OTA_ERR_TARGET_UNKNOWN, OTA_ERR_LENGTH_MISMATCH (shorter or longer than
 * pinned; a longer one is cut off at the pinned length),
 * OTA_ERR_HASH_MISMATCH. Requires a successful refresh in this process
 * first (OTA_ERR_INVALID_ARG otherwise). */
OTA_WUR int ota_tuf_client_download(struct ota_tuf_client *c, const struct ota_fetcher *f,
                                    const char *target_path, const char *out_path,
                                    struct ota_detail *det);

/* Frees; accepts NULL. */
void ota_tuf_client_free(struct ota_tuf_client *c);

#endif
