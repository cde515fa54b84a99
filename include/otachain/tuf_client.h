/* The TUF client update workflow (TUF spec 1.0.31 §5.3–§5.7), shared by
 * `otachain repo verify` and the device agent, with the ledger's device
 * rule (DESIGN §4, docs/formats/ledger.md "Client rule") whenever the
 * trusted root carries "x-otachain-ledger".
 *
 * Trusted state is a directory holding root.json, timestamp.json,
 * snapshot.json and targets.json: the newest verified copy of each; and,
 * with a ledger, `checkpoint`: the last cosigned checkpoint accepted (the
 * note's exact bytes); and `time-floor` (decimal seconds and a newline).
 * Every change is an atomic replacement (ota_fs_replace) so a crash at any
 * point leaves each file either old or new, and the next run still
 * verifies.
 *
 *   open ──► refresh: root chain ──► [ledger] ──► timestamp ──► snapshot
 *                       (5.3)         L1, L2        (5.4)        (5.5, L3)
 *        ──► targets ──► [store checkpoint] ──► download target (5.7)
 *              (5.6)
 *
 * Ledger steps (only under a root with a ledger; L = the fetched
 * ledger/checkpoint, fetched at most once per refresh):
 *   L1  L is signed by the log key of the root's policy, its origin is
 *       the root's, and the policy's quorum is met by cosignatures whose
 *       times lie in [now - max_age, now + 300 s] (no upper bound while
 *       the clock is below the time floor, see below): OTA_ERR_QUORUM,
 *       OTA_ERR_STALE (met only with cosignatures outside the window),
 *       OTA_ERR_BAD_SIGNATURE (a forged log signature or cosignature by a
 *       known key), OTA_ERR_UNVERIFIED (no log signature), OTA_ERR_ORIGIN.
 *   L2  L extends the stored checkpoint: a smaller size, another root at
 *       the same size or a tree that does not extend it is
 *       OTA_ERR_SPLIT_VIEW (consistency proof built from the log's tiles,
 *       verified against both signed roots); tiles that do not hash to
 *       L's root are OTA_ERR_PROOF.
 *   L3  the ledger entry of the file (computed from its exact bytes) is
 *       leaf index/<role>/<version> of L's tree (inclusion proof from
 *       tiles): else OTA_ERR_NOT_IN_LOG.
 * Root chain (DESIGN §4): each new root N+1 (one ota_tuf_root_step)
 * replacing a root N with a ledger is vouched for by the log's per-root
 * checkpoint P = ledger/root-checkpoint/<N+1> before it is persisted: P
 * carries the log's signature and the quorum of N's policy, cosignature
 * times not judged (P is old by nature: that is how a device that slept
 * through witness-set changes, old witnesses retired, catches up in one
 * refresh; the same errors as L1 but OTA_ERR_STALE), P is no larger than L
 * (else OTA_ERR_SPLIT_VIEW), and root N+1's entry is a leaf of P's tree
 * (L3 against P: OTA_ERR_NOT_IN_LOG). Without P (a log from before
 * per-root checkpoints) the earlier rule applies: L1–L2 under N's policy
 * and L3 for root N+1 in L; a root logged after L (its index at or beyond
 * L's size: a publish in progress) then ends the chain untrusted, as an
 * absent file does. After the chain, L1–L2 under the final root's policy
 * (freshness only here), and every P relied on is a prefix of L (a
 * consistency proof, so one history: OTA_ERR_SPLIT_VIEW otherwise); the
 * snapshot in use (new, or kept from before) needs L3 before it is
 * persisted. L is stored after targets.
 *
 * Sources. ota_tuf_client_refresh reads files and the log's tiles through
 * a fetcher; ota_tuf_client_refresh_bundle runs the same workflow with
 * every file and proof from a proof bundle (docs/formats/bundle.md).
 *
 * Time (DESIGN §6). The caller passes its clock reading to each refresh:
 * seconds since the epoch, or OTA_TIME_NONE when it has none (0 is a
 * reading: a board without a real-time clock). The client keeps a time
 * floor in the state (`time-floor`): it starts at the build time (opts),
 * and is raised only to the time a quorum vouches for, the largest T such
 * that the cosignatures counted on the accepted checkpoint with times >= T
 * still meet the final root's quorum (for a flat t-of-m policy: the t-th
 * newest cosignature time), never by one witness alone, never lowered.
 * "now" for a refresh is max(clock, floor): expiry and freshness are
 * judged against it, so a clockless device still refuses a replay older
 * than floor - max_age. When the clock is below the floor (or absent),
 * cosignatures later than the clock are not refused as from the future
 * (a clockless device could never accept a fresh checkpoint otherwise).
 * Once the final checkpoint is accepted, "now" is raised to the time it
 * vouches for (metadata that expired before then is expired), and the
 * floor is stored after the checkpoint.
 *
 * Invariants:
 *  1. Nothing is persisted before it is verified against the role's keys
 *     in the (newly) trusted root, and, under a ledger, before L1–L3 hold
 *     for it (root, snapshot); the checkpoint is stored last, after the
 *     metadata it vouches for, so a stored checkpoint never runs ahead of
 *     a refresh that completed.
 *  2. root.json is replaced one version at a time, each signed by the
 *     threshold of the previous root and of itself.
 *  3. When a root update changes the timestamp or snapshot keys, the
 *     trusted timestamp and snapshot are deleted (fast-forward recovery);
 *     when it changes the targets keys, targets.json is deleted.
 *  4. Versions never go down: timestamp (equal keeps the trusted copy),
 *     snapshot version pinned by timestamp, no targets file version in the
 *     snapshot lower than the trusted snapshot's, targets version pinned by
 *     the snapshot. Nor does the log: a stored checkpoint is only replaced
 *     by one proven to extend it.
 *  5. Expiry and cosignature freshness are judged against one time fixed
 *     at the start of refresh, max(clock, floor), raised once to the time
 *     the accepted checkpoint's quorum vouches for. The floor never goes
 *     down, and only a quorum of the final root's policy moves it.
 *  6. Every fetch is capped: by the pinned length where a role pins it
 *     (a longer file is OTA_ERR_LENGTH_MISMATCH, refused at the pin), else
 *     by the role's default cap (OTA_ERR_TOO_LARGE); ledger files by
 *     OTA_NOTE_MAX_LEN (checkpoint), the tile's width (tiles) and 32 bytes
 *     (index files).
 *  7. One client per state directory: open takes an exclusive flock on
 *     <state_dir>/.lock (OTA_ERR_LOCKED if held), released by free.
 *  8. The log's files are untrusted: tiles and index files only ever
 *     lead to proofs that are checked against signed roots.
 */
#ifndef OTACHAIN_TUF_CLIENT_H
#define OTACHAIN_TUF_CLIENT_H

#include <stdint.h>

#include "otachain/bundle.h"
#include "otachain/checkpoint.h"
#include "otachain/clock.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/tuf.h"

#define OTA_TUF_DEFAULT_MAX_ROOT_ROTATIONS 256

struct ota_tuf_client_opts {
    const char *state_dir; /* trusted metadata directory (created 0700 if missing) */
    /* Where the time floor starts: the build time of the software the
     * device runs, in seconds since the epoch; 0: ota_build_time() (this
     * library's, include/otachain/clock.h). A state whose stored floor is
     * later keeps it. Negative: OTA_ERR_INVALID_ARG. */
    int64_t build_time;
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
 * bootstrap_root is ignored. A malformed x-otachain-ledger in the root
 * refuses it (OTA_ERR_FORMAT and the errors of
 * ota_tlog_policy_from_ledger). Local timestamp/snapshot/targets files
 * that no longer verify against the trusted root are ignored (not
 * trusted). A missing stored checkpoint is fine (the next refresh starts
 * from the fetched one); an unreadable or corrupt one is an error
 * (OTA_ERR_FORMAT, ...), never silently replaced. */
OTA_WUR int ota_tuf_client_open(struct ota_tuf_client **out, const struct ota_tuf_client_opts *opts,
                                const void *bootstrap_root, size_t bootstrap_len,
                                struct ota_detail *det);

/* Runs the update workflow through targets (5.3–5.6), with the ledger
 * steps and the root chain above, at clock reading `now` (seconds since the epoch, or
 * OTA_TIME_NONE; see "Time" above). On failure the state holds whatever
 * was verified before the failing step; det names the file and the rule
 * (and, for the ledger, the sizes, indices and witnesses involved). */
OTA_WUR int ota_tuf_client_refresh(struct ota_tuf_client *c, const struct ota_fetcher *f,
                                   int64_t now, struct ota_detail *det);

/* What the device tells a server it trusts, so that the server can build
 * a bundle for it (otachain/bundle_build.h): its root version, its stored
 * checkpoint's size (0: none), its snapshot and targets versions (0:
 * none). All zero for a NULL client. */
void ota_tuf_client_bundle_request(const struct ota_tuf_client *c, struct ota_bundle_request *out);

/* The same workflow as ota_tuf_client_refresh with every file and every
 * proof taken from a parsed proof bundle (docs/formats/bundle.md) instead
 * of a repository and its tiles: one verification, two sources. Besides
 * refresh's errors: OTA_ERR_BUNDLE_BASE when the bundle was made for
 * another root version or checkpoint size than the state holds (nothing
 * checked, nothing changed); OTA_ERR_BUNDLE_INCOMPLETE naming the file or
 * proof the device needs and the bundle lacks; a consistency proof that
 * fails is OTA_ERR_PROOF (from tiles it would be OTA_ERR_SPLIT_VIEW: a
 * bundle's proof cannot be told from a fork). Targets are not in bundles:
 * ota_tuf_client_download with a fetcher afterwards. */
OTA_WUR int ota_tuf_client_refresh_bundle(struct ota_tuf_client *c, const struct ota_bundle *b,
                                          int64_t now, struct ota_detail *det);

/* The time floor (seconds since the epoch): the build time, or the time
 * a quorum last vouched for, whichever is later. */
int64_t ota_tuf_client_time_floor(const struct ota_tuf_client *c);

/* The same without opening a client (status tools): the floor stored in
 * state_dir, or build_time (0: ota_build_time()) when that is later or
 * nothing is stored. The stored file's errors (OTA_ERR_FORMAT for a
 * corrupt one, det naming it); OTA_ERR_INVALID_ARG for a negative
 * build_time. */
OTA_WUR int ota_tuf_state_time_floor(int64_t *floor, const char *state_dir, int64_t build_time,
                                     struct ota_detail *det);

/* The trusted metadata of a role after open/refresh, or NULL. Owned by the
 * client; valid until the next refresh or free. */
const struct ota_tuf_meta *ota_tuf_client_trusted(const struct ota_tuf_client *c,
                                                  enum ota_tuf_role role);

/* When the trusted root names a ledger: the checkpoint stored in the
 * state (the last one a refresh accepted, or the one open loaded; NULL if
 * none yet). NULL when the root names no ledger. Owned by the client;
 * valid until the next refresh or free. */
const struct ota_checkpoint *ota_tuf_client_checkpoint(const struct ota_tuf_client *c);

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
