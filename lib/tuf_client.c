/* The TUF client workflow (spec 1.0.31 §5.3–§5.7); contract and invariants
 * in tuf_client.h.
 *
 * Order of checks for each fetched file, the same for every role:
 *   fetch (capped) → pinned length/hash → parse (schema, _type) → threshold
 *   of signatures → version pinned by the referring role → rollback against
 *   the trusted copy → expiry → [ledger inclusion: root, snapshot] →
 *   persist → trust in memory.
 * The ledger's checks are ordered cheapest-to-refute first: the
 * checkpoint's signatures and freshness (no tiles needed), then the
 * consistency with the stored checkpoint, then one inclusion proof per
 * file; all proofs come from one tiles source (an LRU of 16 tiles) over
 * the fetched checkpoint's tree, so tiles shared by the proofs of one
 * refresh are fetched once.
 *
 * In memory the client holds, per role, the parsed trusted file and the
 * length and SHA-256 of its bytes as stored, so a snapshot or targets file
 * already trusted at the pinned version and hash need not be fetched again.
 * Memory never trusts a file that is not also stored: a file is stored
 * first, then trusted; a file no longer trusted is dropped, then removed.
 * A crash between the two leaves files that open re-verifies against the
 * stored root (and ignores if they no longer verify).
 */
#include "otachain/tuf_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/bundle.h"
#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/ledger_entry.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tiles.h"
#include "otachain/tlog_policy.h"

/* File names of the trusted state, indexed by enum ota_tuf_role. */
static const char *const state_names[OTA_TUF_ROLE_COUNT] = {
    [OTA_TUF_ROOT] = "root.json",
    [OTA_TUF_TARGETS] = "targets.json",
    [OTA_TUF_SNAPSHOT] = "snapshot.json",
    [OTA_TUF_TIMESTAMP] = "timestamp.json",
};

#define STATE_MODE     0600u
#define STATE_DIR_MODE 0700u
#define META_NAME_SIZE 64 /* "<uint64>.snapshot.json" and the like */

/* The ledger (docs/formats/ledger.md, client rule). */
#define CHECKPOINT_STATE_NAME "checkpoint"
#define FLOOR_STATE_NAME      "time-floor"
#define FLOOR_FILE_MAX        24                   /* 19 digits and a newline, with room to spare */
#define LEDGER_SKEW           300                  /* s a cosignature may lie in the future */
#define LEDGER_MAX_AGE        86400                /* s, when root gives no max_age */
#define LEDGER_MAX_AGE_CAP    (20LL * 366 * 86400) /* larger max_age values are refused */
#define LEDGER_INDEX_MAX      32                   /* bytes of an index/<role>/<version> file */
#define LEDGER_TILE_SLOTS     16                   /* a proof never evicts with 16 (tiles.h) */

/* The ledger rule of one root: NULL policy when the root names no ledger. */
struct ledger {
    struct ota_tlog_policy *policy;
    int64_t max_age;
};

/* A checkpoint note: its exact bytes, parsed note and body. */
struct cp_note {
    struct ota_buf bytes; /* empty when none */
    struct ota_note *note;
    struct ota_checkpoint cp;
};

/* A per-root checkpoint a refresh relied on (root `version` vouched for
 * by the quorum of root version - 1): checked against the final
 * checkpoint once that one is accepted. */
struct rcp_seen {
    uint64_t version;
    uint64_t size;
    uint8_t root[OTA_CHECKPOINT_HASH_LEN];
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
};

struct trusted {
    struct ota_tuf_meta *md; /* NULL when none is trusted */
    uint64_t len;            /* bytes of the file as stored */
    uint8_t sha256[OTA_SHA256_LEN];
};

struct ota_tuf_client {
    char *state_dir;
    int lock_fd; /* flock on <state_dir>/.lock, held until free */
    unsigned max_root_rotations;
    uint64_t root_max_len;
    uint64_t timestamp_max_len;
    uint64_t snapshot_max_len;
    uint64_t targets_max_len;
    struct ota_fs_hook hook;
    bool has_hook;
    struct trusted t[OTA_TUF_ROLE_COUNT];
    bool refreshed; /* the last refresh went through targets */

    /* Time (tuf_client.h "Time"). */
    int64_t floor;        /* max(build time, stored floor): never lowered */
    int64_t floor_stored; /* the value in time-floor; 0 when absent */
    int64_t clock;        /* the caller's reading for this refresh, or OTA_TIME_NONE */
    bool clock_behind;    /* no reading, or one below the floor: no future bound */
    int64_t now;          /* max(clock, floor), then raised to the vouched time */
    int64_t vouched;      /* what the accepted checkpoint's quorum vouches for, or OTA_TIME_NONE */

    struct ledger ledger;                  /* of the trusted root */
    bool have_stored;                      /* a checkpoint is stored in the state */
    struct cp_note stored;                 /* the stored checkpoint (its note is not kept) */
    uint8_t stored_sha256[OTA_SHA256_LEN]; /* of its bytes: unchanged is not rewritten */
    /* Per refresh: the fetched checkpoint and how far it is checked. */
    bool have_fresh;
    struct cp_note fresh;
    bool fresh_policy_ok; /* it met the policy of root v fresh_policy_root */
    uint64_t fresh_policy_root;
    int64_t fresh_vouched; /* the time that policy's quorum vouches for, or OTA_TIME_NONE */
    bool fresh_consistent; /* consistent with the stored checkpoint */
    bool snapshot_in_log;  /* the trusted snapshot is included in it */
    struct rcp_seen *rcps; /* per-root checkpoints relied on in this refresh */
    size_t nrcps;
    size_t rcps_cap;
    /* Where proofs come from: a bundle (refresh_bundle), or the log's
     * tiles and index files through the fetcher. */
    const struct ota_bundle *bundle;
    struct ota_fetcher bundle_fetcher;
    struct ota_tiles_fetch tf;
    struct ota_tiles_source ts; /* over the fresh checkpoint's tree */
    bool ts_ready;
    bool tiles_match;             /* the tiles hash to the fresh checkpoint's root */
    struct ota_tiles_slot *slots; /* LEDGER_TILE_SLOTS, allocated on first use */
};

static const struct ota_fs_hook *client_hook(const struct ota_tuf_client *c)
{
    return c->has_hook ? &c->hook : NULL;
}

static char *state_path(const struct ota_tuf_client *c, enum ota_tuf_role role)
{
    struct ota_buf b;
    ota_buf_init(&b, 64 * 1024);
    if (ota_buf_printf(&b, "%s/%s", c->state_dir, state_names[role]) != 0) {
        ota_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)ota_buf_steal(&b, &len);
}

static void trusted_drop(struct ota_tuf_client *c, enum ota_tuf_role role)
{
    ota_tuf_meta_free(c->t[role].md);
    memset(&c->t[role], 0, sizeof(c->t[role]));
}

/* Takes ownership of md; data/len are the file's bytes. */
static int trusted_set(struct ota_tuf_client *c, enum ota_tuf_role role, struct ota_tuf_meta *md,
                       const void *data, size_t len)
{
    uint8_t digest[OTA_SHA256_LEN];
    int rc = ota_sha256(digest, data, len);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return rc;
    }
    trusted_drop(c, role);
    c->t[role].md = md;
    c->t[role].len = len;
    memcpy(c->t[role].sha256, digest, sizeof(digest));
    return 0;
}

static void format_time(char out[OTA_TUF_TIME_SIZE], int64_t t)
{
    if (ota_tuf_format_time(out, t) != 0)
        snprintf(out, OTA_TUF_TIME_SIZE, "%lld", (long long)t);
}

static int check_expiry(const struct ota_tuf_meta *md, int64_t now, const char *file,
                        struct ota_detail *det)
{
    int rc = ota_tuf_check_expiry(md, now, NULL);
    if (rc == 0)
        return 0;
    char exp[OTA_TUF_TIME_SIZE], cur[OTA_TUF_TIME_SIZE];
    format_time(exp, md->expires);
    format_time(cur, now);
    ota_detail_set(det, "%s: %s v%llu expired at %s (now %s)", file, ota_tuf_role_name(md->type),
                   (unsigned long long)md->version, exp, cur);
    return rc;
}

/* check_expiry at the client's "now", saying where that time comes from
 * when it is not the clock. */
static int check_expiry_now(const struct ota_tuf_client *c, const struct ota_tuf_meta *md,
                            const char *file, struct ota_detail *det)
{
    int rc = check_expiry(md, c->now, file, det);
    if (rc == 0 || det == NULL || c->now == c->clock)
        return rc;
    char clk[OTA_TUF_TIME_SIZE];
    if (c->clock == OTA_TIME_NONE)
        snprintf(clk, sizeof(clk), "none");
    else
        format_time(clk, c->clock);
    struct ota_detail d = *det;
    ota_detail_set(det,
                   "%s; now is the time floor or what the witnesses vouch for, the clock "
                   "reads %s",
                   d.msg, clk);
    return rc;
}

/* Persists the bytes of a verified file as the trusted copy of role. */
static int persist(struct ota_tuf_client *c, enum ota_tuf_role role, const void *data, size_t len,
                   struct ota_detail *det)
{
    char *path = state_path(c, role);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    int rc = ota_fs_replace(path, data, len, STATE_MODE, client_hook(c));
    if (rc != 0)
        ota_detail_set(det, "%s: cannot store the trusted %s", path, ota_tuf_role_name(role));
    free(path);
    return rc;
}

static int remove_state(struct ota_tuf_client *c, enum ota_tuf_role role, struct ota_detail *det)
{
    trusted_drop(c, role);
    char *path = state_path(c, role);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    int rc = ota_fs_remove(path, client_hook(c));
    if (rc != 0)
        ota_detail_set(det, "%s: cannot remove the %s no longer trusted", path,
                       ota_tuf_role_name(role));
    free(path);
    return rc;
}

/* Fetches a file of `kind` into out, capped at max (also by the buffer, in
 * case a fetcher ignores its cap). On failure out is empty. From a
 * bundle, a file it lacks is OTA_ERR_BUNDLE_INCOMPLETE. */
static int fetch_kind(const struct ota_tuf_client *c, struct ota_buf *out,
                      const struct ota_fetcher *f, enum ota_fetch_kind kind, const char *name,
                      uint64_t max, struct ota_detail *det)
{
    ota_buf_init(out, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
    if (det)
        det->msg[0] = '\0';
    int rc = f->fetch(f->ctx, kind, name, max, ota_sink_buf, out, det);
    if (rc != 0) {
        ota_buf_free(out);
        if (rc == OTA_ERR_NOT_FOUND && c->bundle != NULL) {
            ota_detail_set(det, "the bundle has no %s%s", kind == OTA_FETCH_LEDGER ? "ledger/" : "",
                           name);
            return OTA_ERR_BUNDLE_INCOMPLETE;
        }
        if (det && det->msg[0] == '\0') {
            if (rc == OTA_ERR_TOO_LARGE)
                ota_detail_set(det, "%s: more than %llu bytes", name, (unsigned long long)max);
            else
                ota_detail_set(det, "%s: %s", name, ota_strerror(rc));
        }
        return rc;
    }
    return 0;
}

static int fetch_meta(const struct ota_tuf_client *c, struct ota_buf *out,
                      const struct ota_fetcher *f, const char *name, uint64_t max,
                      struct ota_detail *det)
{
    return fetch_kind(c, out, f, OTA_FETCH_METADATA, name, max, det);
}

static int parse_meta(struct ota_tuf_meta **out, const struct ota_buf *b, enum ota_tuf_role role,
                      const char *name, struct ota_detail *det)
{
    int rc = ota_tuf_parse(out, b->data ? (const void *)b->data : "", b->len, role, det);
    if (rc != 0)
        ota_detail_prefix(det, name);
    return rc;
}

/* Threshold of `role` in `root`; det names the file and the root. */
static int verify_role(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                       enum ota_tuf_role role, const char *name, struct ota_detail *det)
{
    struct ota_detail inner = {{0}};
    int rc = ota_tuf_verify_role(md, root, role, &inner);
    if (rc != 0)
        ota_detail_set(det, "%s: not signed by the threshold of the %s role of root v%llu (%s)",
                       name, ota_tuf_role_name(role), (unsigned long long)root->version, inner.msg);
    return rc;
}

/* ---- the ledger (DESIGN §4 device rule, docs/formats/ledger.md) --------- */

static void ledger_free(struct ledger *l)
{
    ota_tlog_policy_free(l->policy);
    l->policy = NULL;
    l->max_age = 0;
}

/* The ledger rule root carries in "x-otachain-ledger", if any; `what`
 * names the file for det. A malformed field refuses the root. */
static int ledger_of_root(struct ledger *out, const struct ota_tuf_meta *root, const char *what,
                          struct ota_detail *det)
{
    out->policy = NULL;
    out->max_age = 0;
    const json_t *sgn = json_object_get(root->doc, "signed");
    const json_t *l = json_object_get(sgn, "x-otachain-ledger");
    if (l == NULL)
        return 0;
    struct ota_detail inner = {{0}};
    int rc = ota_tlog_policy_from_ledger(&out->policy, l, &inner);
    if (rc != 0) {
        ota_detail_set(det, "%s: root v%llu: %s", what, (unsigned long long)root->version,
                       inner.msg);
        return rc;
    }
    const json_t *ma = json_object_get(l, "max_age");
    out->max_age = LEDGER_MAX_AGE;
    if (ma != NULL) {
        json_int_t v = json_is_integer(ma) ? json_integer_value(ma) : 0;
        if (v <= 0 || v > LEDGER_MAX_AGE_CAP) {
            ota_detail_set(det, "%s: root v%llu: x-otachain-ledger max_age must be 1 to %lld s",
                           what, (unsigned long long)root->version, (long long)LEDGER_MAX_AGE_CAP);
            ledger_free(out);
            return OTA_ERR_FORMAT;
        }
        out->max_age = (int64_t)v;
    }
    return 0;
}

static void cp_note_clear(struct cp_note *n)
{
    ota_buf_free(&n->bytes);
    ota_note_free(n->note);
    n->note = NULL;
    memset(&n->cp, 0, sizeof(n->cp));
}

/* Parses note bytes (taking over `bytes`) into n: a signed note whose text
 * is a checkpoint body. Signatures are not checked here. */
static int cp_note_parse(struct cp_note *n, struct ota_buf *bytes, struct ota_detail *det)
{
    cp_note_clear(n);
    n->bytes = *bytes;
    ota_buf_init(bytes, 0);
    int rc = ota_note_parse(&n->note, n->bytes.data ? (const void *)n->bytes.data : "",
                            n->bytes.len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(&n->cp, n->note->text, n->note->text_len, det);
    if (rc != 0)
        cp_note_clear(n);
    return rc;
}

static char *checkpoint_path(const struct ota_tuf_client *c)
{
    struct ota_buf b;
    ota_buf_init(&b, 64 * 1024);
    if (ota_buf_printf(&b, "%s/%s", c->state_dir, CHECKPOINT_STATE_NAME) != 0) {
        ota_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)ota_buf_steal(&b, &len);
}

/* Drops what the last refresh learnt of the log. */
static void fresh_reset(struct ota_tuf_client *c)
{
    cp_note_clear(&c->fresh);
    c->have_fresh = false;
    c->fresh_policy_ok = false;
    c->fresh_policy_root = 0;
    c->fresh_vouched = OTA_TIME_NONE;
    c->fresh_consistent = false;
    c->snapshot_in_log = false;
    c->nrcps = 0;
    c->ts_ready = false;
    c->tiles_match = false;
}

/* The Merkle source over the tiles of the fresh checkpoint's tree: it
 * also serves the nodes of any smaller tree of the same log (a node never
 * changes once it exists), so the proofs for per-root checkpoints come
 * from the same tiles. */
static int tiles_ready(struct ota_tuf_client *c, const struct ota_fetcher *f)
{
    if (c->ts_ready)
        return 0;
    if (c->slots == NULL) {
        c->slots = calloc(LEDGER_TILE_SLOTS, sizeof(*c->slots));
        if (c->slots == NULL)
            return OTA_ERR_NOMEM;
    }
    c->tf.f = f;
    c->tf.det.msg[0] = '\0';
    struct ota_tiles_reader reader;
    ota_tiles_fetch_reader(&reader, &c->tf);
    int rc = ota_tiles_source_init(&c->ts, c->fresh.cp.size, &reader, c->slots, LEDGER_TILE_SLOTS);
    if (rc == 0)
        c->ts_ready = true;
    return rc;
}

/* det for a failed proof generation: the tile fetch's detail when a tile
 * read failed, else the library's. */
static void tiles_detail(struct ota_detail *det, const struct ota_tuf_client *c,
                         const struct ota_detail *inner, const char *what)
{
    const char *why = c->tf.det.msg[0] ? c->tf.det.msg : inner->msg;
    ota_detail_set(det, "%s: cannot build the proof from the log's tiles: %s", what, why);
}

/* Fetches and parses ledger/checkpoint, once per refresh. */
static int fresh_fetch(struct ota_tuf_client *c, const struct ota_fetcher *f,
                       struct ota_detail *det)
{
    if (c->have_fresh)
        return 0;
    struct ota_buf b;
    int rc = fetch_kind(c, &b, f, OTA_FETCH_LEDGER, "checkpoint", OTA_NOTE_MAX_LEN, det);
    if (rc != 0)
        return rc;
    rc = cp_note_parse(&c->fresh, &b, det);
    ota_buf_free(&b);
    if (rc != 0) {
        ota_detail_prefix(det, "ledger/checkpoint");
        return rc;
    }
    c->have_fresh = true;
    return 0;
}

/* The time the quorum of p vouches for in a verified result: the largest
 * T such that the counted cosignatures with times >= T still meet the
 * quorum (for t of m: the t-th newest time). OTA_TIME_NONE under
 * "quorum none": no quorum, so no witness's time is vouched for. */
static int64_t quorum_time(const struct ota_tlog_policy *p,
                           const struct ota_tlog_policy_result *res)
{
    int64_t best = OTA_TIME_NONE;
    if (p->quorum_none)
        return best;
    for (size_t i = 0; i < res->nwitnesses; i++) {
        if (!res->witnesses[i].counted)
            continue;
        int64_t t = (int64_t)res->witnesses[i].time;
        if (t <= best)
            continue;
        bool witnessed[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};
        for (size_t j = 0; j < res->nwitnesses; j++)
            witnessed[j] = res->witnesses[j].counted && (int64_t)res->witnesses[j].time >= t;
        if (ota_tlog_policy_quorum_met(p, witnessed))
            best = t;
    }
    return best;
}

/* Rule 1: the fresh checkpoint is signed by the log key of l's policy and
 * its quorum is met by cosignatures within [now - max_age, now + skew]
 * (no upper bound while the clock is behind the floor). */
static int fresh_policy(struct ota_tuf_client *c, const struct ledger *l, uint64_t root_version,
                        struct ota_detail *det)
{
    if (c->fresh_policy_ok && c->fresh_policy_root == root_version)
        return 0;
    struct ota_tlog_policy_result *res = malloc(sizeof(*res));
    if (res == NULL)
        return OTA_ERR_NOMEM;
    struct ota_detail inner = {{0}};
    int64_t skew = c->clock_behind ? INT64_MAX : LEDGER_SKEW;
    int rc =
        ota_tlog_policy_verify(res, c->fresh.note, l->policy, c->now, l->max_age, skew, &inner);
    if (rc != 0) {
        free(res);
        ota_detail_set(det,
                       "ledger/checkpoint (%s, size %llu) under the ledger policy of root v%llu "
                       "(max_age %lld s, now %lld%s): %s",
                       c->fresh.cp.origin, (unsigned long long)c->fresh.cp.size,
                       (unsigned long long)root_version, (long long)l->max_age, (long long)c->now,
                       c->clock_behind ? ", the time floor: the clock is behind it" : "",
                       inner.msg);
        return rc;
    }
    c->fresh_vouched = quorum_time(l->policy, res);
    free(res);
    c->fresh_policy_ok = true;
    c->fresh_policy_root = root_version;
    return 0;
}

/* ---- proofs: from the bundle, or built from the log's tiles ------------- */

/* The tiles hash to the fresh checkpoint's signed root: checked once,
 * before any consistency proof is built from them, so that a proof that
 * then fails is a fork and not a bad mirror. */
static int tiles_verified(struct ota_tuf_client *c, const struct ota_fetcher *f, const char *what,
                          struct ota_detail *det)
{
    if (c->tiles_match)
        return 0;
    int rc = tiles_ready(c, f);
    if (rc != 0)
        return rc;
    struct ota_detail inner = {{0}};
    uint8_t root[OTA_MERKLE_HASH_LEN];
    c->tf.det.msg[0] = '\0';
    rc = ota_merkle_root(root, c->fresh.cp.size, &c->ts.src, &inner);
    if (rc != 0) {
        tiles_detail(det, c, &inner, what);
        return rc;
    }
    if (!ota_ct_equal(root, c->fresh.cp.root, OTA_MERKLE_HASH_LEN)) {
        ota_detail_set(det, "%s: the tiles served do not hash to the checkpoint's root", what);
        return OTA_ERR_PROOF;
    }
    c->tiles_match = true;
    return 0;
}

/* A consistency proof from size1 to size2 (1 <= size1 < size2 <= the
 * fresh checkpoint's size). */
static int get_consistency(struct ota_tuf_client *c, const struct ota_fetcher *f,
                           struct ota_merkle_proof *proof, uint64_t size1, uint64_t size2,
                           const char *what, struct ota_detail *det)
{
    if (c->bundle != NULL) {
        const struct ota_bundle_consistency *bc =
            ota_bundle_find_consistency(c->bundle, size1, size2);
        if (bc == NULL) {
            ota_detail_set(det, "%s: the bundle has no consistency proof from size %llu to %llu",
                           what, (unsigned long long)size1, (unsigned long long)size2);
            return OTA_ERR_BUNDLE_INCOMPLETE;
        }
        proof->count = bc->count;
        memcpy(proof->hash, bc->hashes, bc->count * OTA_MERKLE_HASH_LEN);
        return 0;
    }
    int rc = tiles_verified(c, f, what, det);
    if (rc != 0)
        return rc;
    struct ota_detail inner = {{0}};
    c->tf.det.msg[0] = '\0';
    rc = ota_merkle_prove_consistency(proof, size1, size2, &c->ts.src, &inner);
    if (rc != 0)
        tiles_detail(det, c, &inner, what);
    return rc;
}

/* Tree (size1, root1) is a prefix of tree (size2, root2), both signed
 * (size1 <= size2 <= the fresh checkpoint's size). A proof that leads
 * elsewhere is a fork (OTA_ERR_SPLIT_VIEW) when it was built from tiles
 * that hash to the signed root; from a bundle it is OTA_ERR_PROOF (a
 * forged proof cannot be told from a fork there). */
static int consistent(struct ota_tuf_client *c, const struct ota_fetcher *f, uint64_t size1,
                      const uint8_t *root1, uint64_t size2, const uint8_t *root2, const char *what,
                      struct ota_detail *det)
{
    if (size1 == size2) {
        if (!ota_ct_equal(root1, root2, OTA_MERKLE_HASH_LEN)) {
            ota_detail_set(det, "%s: size %llu with two different root hashes (a fork)", what,
                           (unsigned long long)size1);
            return OTA_ERR_SPLIT_VIEW;
        }
        return 0;
    }
    if (size1 == 0)
        return 0; /* every tree extends the empty one */
    struct ota_merkle_proof *proof = malloc(sizeof(*proof));
    if (proof == NULL)
        return OTA_ERR_NOMEM;
    int rc = get_consistency(c, f, proof, size1, size2, what, det);
    if (rc != 0)
        goto out;
    struct ota_detail inner = {{0}};
    rc = ota_merkle_verify_consistency(size1, size2, root1, root2,
                                       (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                       proof->count, &inner);
    if (rc == OTA_ERR_PROOF && c->bundle == NULL) {
        ota_detail_set(det, "%s: the new tree does not extend the stored one (%s)", what,
                       inner.msg);
        rc = OTA_ERR_SPLIT_VIEW;
    } else if (rc == OTA_ERR_PROOF) {
        ota_detail_set(det,
                       "%s: the bundle's proof does not lead from one signed root to the other "
                       "(a forged proof, or a log that forked)",
                       what);
    } else if (rc != 0) {
        ota_detail_set(det, "%s: %s", what, inner.msg);
    }
out:
    free(proof);
    return rc;
}

/* Rule 2: the fresh checkpoint extends the stored one. */
static int fresh_consistency(struct ota_tuf_client *c, const struct ota_fetcher *f,
                             struct ota_detail *det)
{
    if (c->fresh_consistent || !c->have_stored)
        goto ok;
    const struct ota_checkpoint *old = &c->stored.cp, *cur = &c->fresh.cp;
    if (old->origin_len != cur->origin_len || memcmp(old->origin, cur->origin, cur->origin_len)) {
        ota_detail_set(det, "ledger/checkpoint: origin %s, the stored checkpoint's is %s",
                       cur->origin, old->origin);
        return OTA_ERR_ORIGIN;
    }
    if (cur->size < old->size) {
        ota_detail_set(det,
                       "ledger/checkpoint: size %llu is smaller than the stored checkpoint's "
                       "%llu (rolled back, or another view of the log)",
                       (unsigned long long)cur->size, (unsigned long long)old->size);
        return OTA_ERR_SPLIT_VIEW;
    }
    if (cur->size == old->size && !ota_ct_equal(cur->root, old->root, OTA_CHECKPOINT_HASH_LEN)) {
        ota_detail_set(det,
                       "ledger/checkpoint: size %llu with another root hash than the "
                       "stored checkpoint of that size (a fork)",
                       (unsigned long long)cur->size);
        return OTA_ERR_SPLIT_VIEW;
    }
    char what[96];
    snprintf(what, sizeof(what), "ledger/checkpoint: consistency from size %llu to %llu",
             (unsigned long long)old->size, (unsigned long long)cur->size);
    int rc = consistent(c, f, old->size, old->root, cur->size, cur->root, what, det);
    if (rc != 0)
        return rc;
ok:
    c->fresh_consistent = true;
    return 0;
}

/* Rules 1 and 2 for the ledger l of root `root_version`. */
static int fresh_ready(struct ota_tuf_client *c, const struct ota_fetcher *f,
                       const struct ledger *l, uint64_t root_version, struct ota_detail *det)
{
    int rc = fresh_fetch(c, f, det);
    if (rc == 0)
        rc = fresh_policy(c, l, root_version, det);
    if (rc == 0)
        rc = fresh_consistency(c, f, det);
    return rc;
}

/* Every per-root checkpoint the root chain relied on is a prefix of the
 * accepted fresh checkpoint (so of the stored one too, which the fresh
 * one extends): one history. */
static int rcps_consistent(struct ota_tuf_client *c, const struct ota_fetcher *f,
                           struct ota_detail *det)
{
    const struct ota_checkpoint *cur = &c->fresh.cp;
    for (size_t i = 0; i < c->nrcps; i++) {
        const struct rcp_seen *r = &c->rcps[i];
        char what[128];
        snprintf(what, sizeof(what),
                 "ledger/root-checkpoint/%llu: consistency from size %llu to %llu",
                 (unsigned long long)r->version, (unsigned long long)r->size,
                 (unsigned long long)cur->size);
        if (strcmp(r->origin, cur->origin) != 0) {
            ota_detail_set(det, "ledger/root-checkpoint/%llu: origin %s, ledger/checkpoint's is %s",
                           (unsigned long long)r->version, r->origin, cur->origin);
            return OTA_ERR_ORIGIN;
        }
        if (r->size > cur->size) {
            ota_detail_set(det,
                           "ledger/root-checkpoint/%llu: size %llu is larger than "
                           "ledger/checkpoint's %llu (the log's checkpoint is older than one "
                           "this refresh relied on, or another view of the log)",
                           (unsigned long long)r->version, (unsigned long long)r->size,
                           (unsigned long long)cur->size);
            return OTA_ERR_SPLIT_VIEW;
        }
        int rc = consistent(c, f, r->size, r->root, cur->size, cur->root, what, det);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The leaf index of e and its inclusion proof in the tree of `size`
 * leaves (at most the fresh checkpoint's). From tiles: the index comes
 * from index/<role>/<version>; one at or beyond size sets *beyond (if not
 * NULL): logged after that tree, or made up. */
static int get_inclusion(struct ota_tuf_client *c, const struct ota_fetcher *f,
                         struct ota_merkle_proof *proof, uint64_t *index,
                         const struct ota_ledger_entry *e, uint64_t size, const char *what,
                         const char *tree, bool *beyond, struct ota_detail *det)
{
    const char *rname = ota_tuf_role_name(e->role);
    if (c->bundle != NULL) {
        const struct ota_bundle_inclusion *bi =
            ota_bundle_find_inclusion(c->bundle, e->role, e->version, size);
        if (bi == NULL) {
            ota_detail_set(det, "the bundle has no inclusion proof of %s in %s (size %llu)", what,
                           tree, (unsigned long long)size);
            return OTA_ERR_BUNDLE_INCOMPLETE;
        }
        *index = bi->index;
        proof->count = bi->count;
        memcpy(proof->hash, bi->hashes, bi->count * OTA_MERKLE_HASH_LEN);
        return 0;
    }
    char name[META_NAME_SIZE];
    snprintf(name, sizeof(name), "index/%s/%llu", rname, (unsigned long long)e->version);
    struct ota_buf b;
    int rc = fetch_kind(c, &b, f, OTA_FETCH_LEDGER, name, LEDGER_INDEX_MAX, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_detail_set(det, "ledger/%s: not found: %s is not in the log", name, what);
        return OTA_ERR_NOT_IN_LOG;
    }
    if (rc != 0)
        return rc;
    rc = ota_checkpoint_parse_u64(index, b.data ? (const char *)b.data : "", b.len,
                                  OTA_CHECKPOINT_MAX_SIZE);
    ota_buf_free(&b);
    if (rc != 0) {
        ota_detail_set(det, "ledger/%s: not a decimal leaf index", name);
        return rc;
    }
    if (*index >= size) {
        if (beyond)
            *beyond = true;
        ota_detail_set(det, "ledger/%s: leaf %llu is beyond %s's size %llu: %s is not in the log",
                       name, (unsigned long long)*index, tree, (unsigned long long)size, what);
        return OTA_ERR_NOT_IN_LOG;
    }
    rc = tiles_ready(c, f);
    if (rc != 0)
        return rc;
    struct ota_detail inner = {{0}};
    c->tf.det.msg[0] = '\0';
    rc = ota_merkle_prove_inclusion(proof, *index, size, &c->ts.src, &inner);
    if (rc != 0) {
        char w[192];
        snprintf(w, sizeof(w), "ledger: inclusion of leaf %llu in size %llu",
                 (unsigned long long)*index, (unsigned long long)size);
        tiles_detail(det, c, &inner, w);
    }
    return rc;
}

/* Rule 3: the entry of a file (role, version, length, SHA-256 of its
 * bytes) is a leaf of the signed tree (size, root) named `tree`.
 * OTA_ERR_NOT_IN_LOG when it is not; *beyond as for get_inclusion. */
static int includes(struct ota_tuf_client *c, const struct ota_fetcher *f,
                    const struct ota_ledger_entry *e, uint64_t size, const uint8_t *root,
                    const char *tree, bool *beyond, struct ota_detail *det)
{
    if (beyond)
        *beyond = false;
    char what[128];
    snprintf(what, sizeof(what), "%s v%llu (%llu bytes)", ota_tuf_role_name(e->role),
             (unsigned long long)e->version, (unsigned long long)e->length);
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    int rc = ota_ledger_entry_leaf(leaf, e);
    if (rc != 0)
        return rc;
    struct ota_merkle_proof *proof = malloc(sizeof(*proof));
    if (proof == NULL)
        return OTA_ERR_NOMEM;
    uint64_t index = 0;
    rc = get_inclusion(c, f, proof, &index, e, size, what, tree, beyond, det);
    if (rc != 0)
        goto out;
    struct ota_detail inner = {{0}};
    rc = ota_merkle_verify_inclusion(leaf, index, size,
                                     (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                     proof->count, root, &inner);
    if (rc == OTA_ERR_PROOF) {
        ota_detail_set(det, "%s: its entry is not leaf %llu of %s (size %llu): not in the log",
                       what, (unsigned long long)index, tree, (unsigned long long)size);
        rc = OTA_ERR_NOT_IN_LOG;
    } else if (rc != 0) {
        ota_detail_set(det, "%s: leaf %llu of %s: %s", what, (unsigned long long)index, tree,
                       inner.msg);
    }
out:
    free(proof);
    return rc;
}

/* Rule 3 in the fresh checkpoint. */
static int fresh_includes(struct ota_tuf_client *c, const struct ota_fetcher *f,
                          const struct ota_ledger_entry *e, bool *beyond, struct ota_detail *det)
{
    return includes(c, f, e, c->fresh.cp.size, c->fresh.cp.root, "the checkpoint", beyond, det);
}

/* Rule 3 for a file whose bytes are at hand. */
static int fresh_includes_file(struct ota_tuf_client *c, const struct ota_fetcher *f,
                               enum ota_tuf_role role, uint64_t version, const struct ota_buf *b,
                               bool *beyond, struct ota_detail *det)
{
    struct ota_ledger_entry e;
    int rc =
        ota_ledger_entry_of_file(&e, role, version, b->data ? (const void *)b->data : "", b->len);
    if (rc != 0) {
        ota_detail_set(det, "%s v%llu: no ledger entry for it", ota_tuf_role_name(role),
                       (unsigned long long)version);
        return rc;
    }
    return fresh_includes(c, f, &e, beyond, det);
}

/* Remembers a per-root checkpoint relied on. */
static int rcp_add(struct ota_tuf_client *c, uint64_t version, const struct ota_checkpoint *cp)
{
    if (c->nrcps == c->rcps_cap) {
        size_t cap = c->rcps_cap ? 2 * c->rcps_cap : 8;
        struct rcp_seen *n = realloc(c->rcps, cap * sizeof(*n));
        if (n == NULL)
            return OTA_ERR_NOMEM;
        c->rcps = n;
        c->rcps_cap = cap;
    }
    struct rcp_seen *r = &c->rcps[c->nrcps++];
    r->version = version;
    r->size = cp->size;
    memcpy(r->root, cp->root, sizeof(r->root));
    snprintf(r->origin, sizeof(r->origin), "%s", cp->origin);
    return 0;
}

/* The old witnesses vouch for root `next` (whose bytes are b), replacing
 * the trusted root, which names a ledger: its per-root checkpoint
 * (ledger/root-checkpoint/<v>) carries the log's signature and the quorum
 * of the trusted root's policy, cosignature times not judged (it is old
 * by nature: that is what lets a device that slept through witness-set
 * changes catch up), and includes next's entry. Without one (a log from
 * before per-root checkpoints) the earlier rule applies: next is included
 * in the fresh checkpoint, which must meet the trusted root's quorum,
 * fresh; *ended is then set for a root logged after that checkpoint (a
 * publish in progress). */
static int root_vouched(struct ota_tuf_client *c, const struct ota_fetcher *f,
                        const struct ota_tuf_meta *next, const struct ota_buf *b, bool *ended,
                        struct ota_detail *det)
{
    const struct ota_tuf_meta *old = c->t[OTA_TUF_ROOT].md;
    *ended = false;
    char name[META_NAME_SIZE], tree[META_NAME_SIZE + 8];
    snprintf(name, sizeof(name), "root-checkpoint/%llu", (unsigned long long)next->version);
    snprintf(tree, sizeof(tree), "ledger/%s", name);
    struct ota_buf nb;
    int rc = fetch_kind(c, &nb, f, OTA_FETCH_LEDGER, name, OTA_NOTE_MAX_LEN, det);
    if (rc == OTA_ERR_NOT_FOUND || rc == OTA_ERR_BUNDLE_INCOMPLETE) {
        bool beyond = false;
        rc = fresh_ready(c, f, &c->ledger, old->version, det);
        if (rc == 0)
            rc = fresh_includes_file(c, f, OTA_TUF_ROOT, next->version, b, &beyond, det);
        if (rc == OTA_ERR_NOT_IN_LOG && beyond) {
            /* Logged after the cosigned checkpoint: a publish in progress
             * (ledger.md, publish step 3). Not trusted yet; the chain ends
             * here, as if the file were absent. */
            if (det)
                det->msg[0] = '\0';
            *ended = true;
            rc = 0;
        }
        return rc;
    }
    if (rc != 0)
        return rc;
    struct cp_note rn = {0};
    struct ota_tlog_policy_result *res = NULL;
    rc = cp_note_parse(&rn, &nb, det);
    ota_buf_free(&nb);
    if (rc != 0) {
        ota_detail_prefix(det, tree);
        goto out;
    }
    res = malloc(sizeof(*res));
    if (res == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    struct ota_detail inner = {{0}};
    rc = ota_tlog_policy_verify(res, rn.note, c->ledger.policy, 0, INT64_MAX, INT64_MAX, &inner);
    if (rc != 0) {
        ota_detail_set(det,
                       "%s (%s, size %llu) under the ledger policy of root v%llu (cosignature "
                       "times not judged): %s",
                       tree, rn.cp.origin, (unsigned long long)rn.cp.size,
                       (unsigned long long)old->version, inner.msg);
        goto out;
    }
    if (c->bundle == NULL) {
        /* The proof comes from the tiles of the fresh checkpoint's tree. */
        rc = fresh_fetch(c, f, det);
        if (rc != 0)
            goto out;
        if (rn.cp.size > c->fresh.cp.size) {
            ota_detail_set(det,
                           "%s: size %llu is larger than ledger/checkpoint's %llu (the log's "
                           "checkpoint is older than the one that vouches for root v%llu, or "
                           "another view of the log)",
                           tree, (unsigned long long)rn.cp.size,
                           (unsigned long long)c->fresh.cp.size, (unsigned long long)next->version);
            rc = OTA_ERR_SPLIT_VIEW;
            goto out;
        }
    }
    struct ota_ledger_entry e;
    rc = ota_ledger_entry_of_file(&e, OTA_TUF_ROOT, next->version,
                                  b->data ? (const void *)b->data : "", b->len);
    if (rc != 0)
        goto out;
    rc = includes(c, f, &e, rn.cp.size, rn.cp.root, tree, NULL, det);
    if (rc == 0)
        rc = rcp_add(c, next->version, &rn.cp);
out:
    free(res);
    cp_note_clear(&rn);
    return rc;
}

/* Stores the fresh checkpoint (after the metadata it vouches for). */
static int store_checkpoint(struct ota_tuf_client *c, struct ota_detail *det)
{
    uint8_t digest[OTA_SHA256_LEN];
    int rc = ota_sha256(digest, c->fresh.bytes.data ? (const void *)c->fresh.bytes.data : "",
                        c->fresh.bytes.len);
    if (rc != 0)
        return rc;
    /* The same bytes again (nothing published, nothing cosigned since):
     * spare the flash. */
    if (c->have_stored && ota_ct_equal(digest, c->stored_sha256, OTA_SHA256_LEN))
        return 0;
    char *path = checkpoint_path(c);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_fs_replace(path, c->fresh.bytes.data, c->fresh.bytes.len, STATE_MODE, client_hook(c));
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot store the checkpoint", path);
        free(path);
        return rc;
    }
    free(path);
    cp_note_clear(&c->stored);
    c->stored.cp = c->fresh.cp;
    memcpy(c->stored_sha256, digest, sizeof(digest));
    c->have_stored = true;
    return 0;
}

/* Loads the stored checkpoint, if any: absent is fine (the next refresh
 * starts from the fetched one); unreadable or corrupt is an error. */
static int load_checkpoint(struct ota_tuf_client *c, struct ota_detail *det)
{
    char *path = checkpoint_path(c);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ota_fs_read_nofollow(&data, &len, path, OTA_NOTE_MAX_LEN);
    if (rc == OTA_ERR_NOT_FOUND) {
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot read the stored checkpoint", path);
        goto out;
    }
    struct ota_buf b;
    ota_buf_init(&b, OTA_NOTE_MAX_LEN);
    rc = ota_sha256(c->stored_sha256, data, len);
    if (rc == 0)
        rc = ota_buf_append(&b, data, len);
    if (rc == 0)
        rc = cp_note_parse(&c->stored, &b, det);
    ota_buf_free(&b);
    if (rc != 0) {
        ota_detail_prefix(det, "corrupt stored checkpoint");
        ota_detail_prefix(det, path);
        goto out;
    }
    /* Only the body is needed from now on. */
    ota_buf_free(&c->stored.bytes);
    ota_note_free(c->stored.note);
    c->stored.note = NULL;
    c->have_stored = true;
out:
    free(data);
    free(path);
    return rc;
}

/* ---- the time floor ---------------------------------------------------- */

static char *floor_path(const struct ota_tuf_client *c)
{
    struct ota_buf b;
    ota_buf_init(&b, 64 * 1024);
    if (ota_buf_printf(&b, "%s/%s", c->state_dir, FLOOR_STATE_NAME) != 0) {
        ota_buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)ota_buf_steal(&b, &len);
}

/* Reads the time-floor file at path: absent is "no floor stored yet"
 * (0); anything but decimal seconds (no sign, no leading zeros) and one
 * newline is an error, never silently replaced (a lower floor would
 * reopen replays). */
static int read_floor(int64_t *out, const char *path, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t v = 0;
    int rc = ota_fs_read_nofollow(&data, &len, path, FLOOR_FILE_MAX);

    *out = 0;
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot read the time floor", path);
        return rc;
    }
    if (len < 2 || data[len - 1] != '\n' ||
        ota_checkpoint_parse_u64(&v, (const char *)data, len - 1, INT64_MAX) != 0) {
        ota_detail_set(det, "%s: corrupt time floor (want decimal seconds and a newline)", path);
        rc = OTA_ERR_FORMAT;
    } else {
        *out = (int64_t)v;
    }
    free(data);
    return rc;
}

static int load_floor(struct ota_tuf_client *c, struct ota_detail *det)
{
    char *path = floor_path(c);
    int rc;

    if (path == NULL)
        return OTA_ERR_NOMEM;
    rc = read_floor(&c->floor_stored, path, det);
    if (rc == 0 && c->floor_stored > c->floor)
        c->floor = c->floor_stored;
    free(path);
    return rc;
}

int ota_tuf_state_time_floor(int64_t *floor, const char *state_dir, int64_t build_time,
                             struct ota_detail *det)
{
    char path[PATH_MAX];
    int64_t stored = 0;
    int rc;

    *floor = 0;
    if (build_time < 0)
        return OTA_ERR_INVALID_ARG;
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, FLOOR_STATE_NAME) >= (int)sizeof(path)) {
        ota_detail_set(det, "%s: path too long", state_dir);
        return OTA_ERR_INVALID_ARG;
    }
    rc = read_floor(&stored, path, det);
    if (rc != 0)
        return rc;
    if (build_time == 0)
        build_time = ota_build_time();
    *floor = stored > build_time ? stored : build_time;
    return 0;
}

/* Stores the floor, raised to what this refresh's quorum vouched for,
 * when it is later than the stored one (after the checkpoint: a crash in
 * between leaves the old floor, which the next refresh raises again). */
static int store_floor(struct ota_tuf_client *c, struct ota_detail *det)
{
    int64_t floor = c->floor;
    if (c->vouched != OTA_TIME_NONE && c->vouched > floor)
        floor = c->vouched;
    if (floor <= c->floor_stored)
        return 0;
    char text[FLOOR_FILE_MAX];
    int n = snprintf(text, sizeof(text), "%lld\n", (long long)floor);
    char *path = floor_path(c);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    int rc = ota_fs_replace(path, text, (size_t)n, STATE_MODE, client_hook(c));
    if (rc != 0)
        ota_detail_set(det, "%s: cannot store the time floor", path);
    free(path);
    if (rc != 0)
        return rc;
    c->floor = floor;
    c->floor_stored = floor;
    return 0;
}

int64_t ota_tuf_client_time_floor(const struct ota_tuf_client *c)
{
    return c ? c->floor : OTA_TIME_NONE;
}

/* ---- 5.3 root ---------------------------------------------------------- */

/* Fetches and trusts root version old+1. *found is false when the
 * repository has no such file (the chain ends there). */
static int root_step(struct ota_tuf_client *c, const struct ota_fetcher *f, bool *found,
                     struct ota_detail *det)
{
    const struct ota_tuf_meta *old = c->t[OTA_TUF_ROOT].md;
    uint64_t v = old->version + 1;
    char name[META_NAME_SIZE];
    snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)v);

    *found = false;
    struct ota_buf b;
    int rc = fetch_meta(c, &b, f, name, c->root_max_len, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        if (det)
            det->msg[0] = '\0';
        return 0;
    }
    if (rc != 0)
        return rc;
    *found = true;

    struct ota_tuf_meta *md = NULL;
    struct ledger nl = {0};
    struct ota_detail inner = {{0}};
    rc = parse_meta(&md, &b, OTA_TUF_ROOT, name, det);
    if (rc != 0)
        goto out;
    /* The one root-chain step (version old + 1, both thresholds). */
    rc = ota_tuf_root_step(md, old, &inner);
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", name, inner.msg);
        goto out;
    }
    rc = ledger_of_root(&nl, md, name, det);
    if (rc != 0)
        goto out;
    if (c->ledger.policy != NULL) {
        /* The old witnesses vouch for the new root. */
        bool ended = false;
        rc = root_vouched(c, f, md, &b, &ended, det);
        if (rc == 0 && ended) {
            *found = false;
            goto out;
        }
        if (rc != 0)
            goto out;
    }
    rc = persist(c, OTA_TUF_ROOT, b.data, b.len, det);
    if (rc != 0)
        goto out;

    /* Fast-forward recovery (§5.3.11): files signed by rotated keys are no
     * longer a floor for versions. Decided before the old root goes. */
    bool drop_ts = ota_tuf_role_changed(old, md, OTA_TUF_TIMESTAMP) ||
                   ota_tuf_role_changed(old, md, OTA_TUF_SNAPSHOT);
    bool drop_targets = ota_tuf_role_changed(old, md, OTA_TUF_TARGETS);
    rc = trusted_set(c, OTA_TUF_ROOT, md, b.data, b.len);
    md = NULL;
    if (rc != 0)
        goto out;
    ledger_free(&c->ledger);
    c->ledger = nl;
    nl = (struct ledger){0};
    if (drop_ts) {
        rc = remove_state(c, OTA_TUF_TIMESTAMP, det);
        int rc2 = remove_state(c, OTA_TUF_SNAPSHOT, det);
        if (rc == 0)
            rc = rc2;
    }
    if (drop_targets) {
        int rc2 = remove_state(c, OTA_TUF_TARGETS, det);
        if (rc == 0)
            rc = rc2;
    }
out:
    ledger_free(&nl);
    ota_tuf_meta_free(md);
    ota_buf_free(&b);
    return rc;
}

static int update_root(struct ota_tuf_client *c, const struct ota_fetcher *f,
                       struct ota_detail *det)
{
    for (unsigned i = 0; i < c->max_root_rotations; i++) {
        uint64_t v = c->t[OTA_TUF_ROOT].md->version;
        if (v == UINT64_MAX || (c->bundle != NULL && v >= c->bundle->newest_root))
            return 0;
        bool found;
        int rc = root_step(c, f, &found, det);
        if (rc != 0 || !found)
            return rc;
    }
    return 0;
}

/* ---- 5.4 timestamp ----------------------------------------------------- */

static uint64_t snapshot_version_of(const struct ota_tuf_meta *ts)
{
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(ts, "snapshot.json");
    return mf ? mf->version : 0;
}

static int update_timestamp(struct ota_tuf_client *c, const struct ota_fetcher *f,
                            struct ota_detail *det)
{
    static const char name[] = "timestamp.json";
    const struct ota_tuf_meta *root = c->t[OTA_TUF_ROOT].md;
    struct ota_buf b;
    int rc = fetch_meta(c, &b, f, name, c->timestamp_max_len, det);
    if (rc != 0)
        return rc;
    struct ota_tuf_meta *md = NULL;
    rc = parse_meta(&md, &b, OTA_TUF_TIMESTAMP, name, det);
    if (rc != 0)
        goto out;
    rc = verify_role(md, root, OTA_TUF_TIMESTAMP, name, det);
    if (rc != 0)
        goto out;
    if (ota_tuf_find_meta(md, "snapshot.json") == NULL) {
        ota_detail_set(det, "%s: does not list snapshot.json", name);
        rc = OTA_ERR_FORMAT;
        goto out;
    }

    const struct ota_tuf_meta *old = c->t[OTA_TUF_TIMESTAMP].md;
    if (old) {
        if (md->version < old->version) {
            ota_detail_set(det, "%s: version %llu is lower than the trusted version %llu", name,
                           (unsigned long long)md->version, (unsigned long long)old->version);
            rc = OTA_ERR_ROLLBACK;
            goto out;
        }
        if (md->version == old->version) {
            /* The same version again: keep the copy already trusted. */
            rc = check_expiry_now(c, old, name, det);
            goto out;
        }
        uint64_t nv = snapshot_version_of(md), ov = snapshot_version_of(old);
        if (nv < ov) {
            ota_detail_set(det,
                           "%s: v%llu pins snapshot.json version %llu, lower than the "
                           "trusted version %llu",
                           name, (unsigned long long)md->version, (unsigned long long)nv,
                           (unsigned long long)ov);
            rc = OTA_ERR_ROLLBACK;
            goto out;
        }
    }
    rc = check_expiry_now(c, md, name, det);
    if (rc != 0)
        goto out;
    rc = persist(c, OTA_TUF_TIMESTAMP, b.data, b.len, det);
    if (rc != 0)
        goto out;
    rc = trusted_set(c, OTA_TUF_TIMESTAMP, md, b.data, b.len);
    md = NULL;
out:
    ota_tuf_meta_free(md);
    ota_buf_free(&b);
    return rc;
}

/* ---- 5.5 snapshot and 5.6 targets -------------------------------------- */

/* true if the trusted copy of role is the file mf pins (version, and the
 * length and hash where pinned): then it need not be fetched again. */
static bool trusted_matches(const struct ota_tuf_client *c, enum ota_tuf_role role,
                            const struct ota_tuf_metafile *mf)
{
    const struct trusted *t = &c->t[role];
    if (t->md == NULL || t->md->version != mf->version)
        return false;
    if (mf->has_length && mf->length != t->len)
        return false;
    if (mf->has_sha256 && !ota_ct_equal(mf->sha256, t->sha256, OTA_SHA256_LEN))
        return false;
    return true;
}

/* Rollback rules of §5.5.5 for a new snapshot against the trusted one. */
static int check_snapshot_rollback(const struct ota_tuf_meta *md, const struct ota_tuf_meta *old,
                                   const char *name, struct ota_detail *det)
{
    if (md->version < old->version) {
        ota_detail_set(det, "%s: snapshot version %llu is lower than the trusted version %llu",
                       name, (unsigned long long)md->version, (unsigned long long)old->version);
        return OTA_ERR_ROLLBACK;
    }
    for (size_t i = 0; i < old->nmeta; i++) {
        const struct ota_tuf_metafile *o = &old->meta[i];
        const struct ota_tuf_metafile *n = ota_tuf_find_meta(md, o->name);
        if (n == NULL) {
            ota_detail_set(det, "%s: %s is listed in the trusted snapshot v%llu but missing", name,
                           o->name, (unsigned long long)old->version);
            return OTA_ERR_META_MISSING;
        }
        if (n->version < o->version) {
            ota_detail_set(det, "%s: %s version %llu is lower than the trusted version %llu", name,
                           o->name, (unsigned long long)n->version, (unsigned long long)o->version);
            return OTA_ERR_ROLLBACK;
        }
    }
    return 0;
}

/* Fetches, checks and trusts the file of `role` that `mf` (an entry of the
 * trusted `referrer`) pins. */
static int update_pinned(struct ota_tuf_client *c, const struct ota_fetcher *f,
                         enum ota_tuf_role role, const struct ota_tuf_metafile *mf,
                         const struct ota_tuf_meta *referrer, uint64_t default_max,
                         struct ota_detail *det)
{
    const struct ota_tuf_meta *root = c->t[OTA_TUF_ROOT].md;
    const char *rname = ota_tuf_role_name(role);
    char name[META_NAME_SIZE];
    snprintf(name, sizeof(name), "%llu.%s.json", (unsigned long long)mf->version, rname);

    if (trusted_matches(c, role, mf))
        return check_expiry_now(c, c->t[role].md, name, det);

    struct ota_buf b;
    uint64_t max = mf->has_length ? mf->length : default_max;
    int rc = fetch_meta(c, &b, f, name, max, det);
    if (rc == OTA_ERR_TOO_LARGE && mf->has_length) {
        /* The cap was the pinned length: the file broke the pin. */
        ota_detail_set(det, "%s: more than the %llu bytes %s v%llu pins", name,
                       (unsigned long long)mf->length, state_names[referrer->type],
                       (unsigned long long)referrer->version);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (rc != 0)
        return rc;
    struct ota_tuf_meta *md = NULL;
    rc = ota_tuf_check_metafile(mf, b.data ? (const void *)b.data : "", b.len, NULL);
    if (rc == OTA_ERR_LENGTH_MISMATCH) {
        ota_detail_set(det, "%s: %zu bytes, but %s v%llu pins %llu", name, b.len,
                       state_names[referrer->type], (unsigned long long)referrer->version,
                       (unsigned long long)mf->length);
        goto out;
    }
    if (rc == OTA_ERR_HASH_MISMATCH) {
        ota_detail_set(det, "%s: SHA-256 differs from the one %s v%llu pins", name,
                       state_names[referrer->type], (unsigned long long)referrer->version);
        goto out;
    }
    if (rc != 0)
        goto out;
    rc = parse_meta(&md, &b, role, name, det);
    if (rc != 0)
        goto out;
    rc = verify_role(md, root, role, name, det);
    if (rc != 0)
        goto out;
    if (md->version != mf->version) {
        /* Mix-and-match: the file is not the one the referrer pins. */
        ota_detail_set(det, "%s: holds %s version %llu, but %s v%llu pins version %llu", name,
                       rname, (unsigned long long)md->version, state_names[referrer->type],
                       (unsigned long long)referrer->version, (unsigned long long)mf->version);
        rc = OTA_ERR_VERSION_MISMATCH;
        goto out;
    }
    const struct ota_tuf_meta *old = c->t[role].md;
    if (old && role == OTA_TUF_SNAPSHOT) {
        rc = check_snapshot_rollback(md, old, name, det);
        if (rc != 0)
            goto out;
    } else if (old && md->version < old->version) {
        ota_detail_set(det, "%s: %s version %llu is lower than the trusted version %llu", name,
                       rname, (unsigned long long)md->version, (unsigned long long)old->version);
        rc = OTA_ERR_ROLLBACK;
        goto out;
    }
    rc = check_expiry_now(c, md, name, det);
    if (rc != 0)
        goto out;
    if (role == OTA_TUF_SNAPSHOT && c->ledger.policy != NULL) {
        rc = fresh_includes_file(c, f, role, md->version, &b, NULL, det);
        if (rc != 0)
            goto out;
        c->snapshot_in_log = true;
    }
    rc = persist(c, role, b.data, b.len, det);
    if (rc != 0)
        goto out;
    rc = trusted_set(c, role, md, b.data, b.len);
    md = NULL;
out:
    ota_tuf_meta_free(md);
    ota_buf_free(&b);
    return rc;
}

static int update_snapshot(struct ota_tuf_client *c, const struct ota_fetcher *f,
                           struct ota_detail *det)
{
    const struct ota_tuf_meta *ts = c->t[OTA_TUF_TIMESTAMP].md;
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(ts, "snapshot.json");
    if (mf == NULL) {
        ota_detail_set(det, "timestamp.json v%llu: does not list snapshot.json",
                       (unsigned long long)ts->version);
        return OTA_ERR_META_MISSING;
    }
    int rc = update_pinned(c, f, OTA_TUF_SNAPSHOT, mf, ts, c->snapshot_max_len, det);
    if (rc != 0 || c->ledger.policy == NULL || c->snapshot_in_log)
        return rc;
    /* Kept from an earlier refresh: it must still be in the log. */
    const struct trusted *t = &c->t[OTA_TUF_SNAPSHOT];
    struct ota_ledger_entry e = {
        .role = OTA_TUF_SNAPSHOT, .version = t->md->version, .length = t->len};
    memcpy(e.sha256, t->sha256, sizeof(e.sha256));
    rc = fresh_includes(c, f, &e, NULL, det);
    if (rc == 0)
        c->snapshot_in_log = true;
    return rc;
}

static int update_targets(struct ota_tuf_client *c, const struct ota_fetcher *f,
                          struct ota_detail *det)
{
    const struct ota_tuf_meta *snap = c->t[OTA_TUF_SNAPSHOT].md;
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(snap, "targets.json");
    if (mf == NULL) {
        ota_detail_set(det, "snapshot.json v%llu: does not list targets.json",
                       (unsigned long long)snap->version);
        return OTA_ERR_META_MISSING;
    }
    return update_pinned(c, f, OTA_TUF_TARGETS, mf, snap, c->targets_max_len, det);
}

/* The workflow, files from f and proofs from c->bundle or f's tiles. */
static int refresh(struct ota_tuf_client *c, const struct ota_fetcher *f, int64_t now,
                   struct ota_detail *det)
{
    if (det)
        det->msg[0] = '\0';
    c->refreshed = false;
    /* Never a clock earlier than the floor (DESIGN §6). */
    c->clock = now;
    c->clock_behind = now == OTA_TIME_NONE || now < c->floor;
    c->now = c->clock_behind ? c->floor : now;
    c->vouched = OTA_TIME_NONE;
    fresh_reset(c);

    int rc = update_root(c, f, det);
    if (rc != 0)
        return rc;
    const struct ota_tuf_meta *root = c->t[OTA_TUF_ROOT].md;
    if (c->bundle != NULL && root->version != c->bundle->newest_root) {
        ota_detail_set(det, "the bundle leads to root v%llu, the chain ended at v%llu",
                       (unsigned long long)c->bundle->newest_root,
                       (unsigned long long)root->version);
        return OTA_ERR_BUNDLE_INCOMPLETE;
    }
    if (c->ledger.policy != NULL) {
        /* Checked before the timestamp so that a frozen or forked view is
         * refused before anything else is fetched; with it, the per-root
         * checkpoints the chain relied on. */
        rc = fresh_ready(c, f, &c->ledger, root->version, det);
        if (rc == 0)
            rc = rcps_consistent(c, f, det);
        if (rc != 0)
            return rc;
        /* The quorum vouches that its time has come: what expired before
         * it is expired, whatever the clock says. */
        c->vouched = c->fresh_vouched;
        if (c->vouched != OTA_TIME_NONE && c->vouched > c->now)
            c->now = c->vouched;
    }
    rc = check_expiry_now(c, root, "root.json", det);
    if (rc != 0)
        return rc;
    if (!root->consistent_snapshot) {
        ota_detail_set(det,
                       "root.json v%llu: consistent_snapshot is false; only consistent "
                       "snapshot repositories are supported",
                       (unsigned long long)root->version);
        return OTA_ERR_UNSUPPORTED;
    }
    rc = update_timestamp(c, f, det);
    if (rc == 0)
        rc = update_snapshot(c, f, det);
    if (rc == 0)
        rc = update_targets(c, f, det);
    if (rc == 0 && c->ledger.policy != NULL)
        rc = store_checkpoint(c, det);
    if (rc == 0)
        rc = store_floor(c, det);
    if (rc == 0)
        c->refreshed = true;
    return rc;
}

int ota_tuf_client_refresh(struct ota_tuf_client *c, const struct ota_fetcher *f, int64_t now,
                           struct ota_detail *det)
{
    if (c == NULL || f == NULL || f->fetch == NULL) {
        ota_detail_set(det, "no client or fetcher");
        return OTA_ERR_INVALID_ARG;
    }
    return refresh(c, f, now, det);
}

void ota_tuf_client_bundle_request(const struct ota_tuf_client *c, struct ota_bundle_request *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    out->root_version = c->t[OTA_TUF_ROOT].md->version;
    out->checkpoint_size = c->have_stored ? c->stored.cp.size : 0;
    if (c->t[OTA_TUF_SNAPSHOT].md)
        out->snapshot_version = c->t[OTA_TUF_SNAPSHOT].md->version;
    if (c->t[OTA_TUF_TARGETS].md)
        out->targets_version = c->t[OTA_TUF_TARGETS].md->version;
}

int ota_tuf_client_refresh_bundle(struct ota_tuf_client *c, const struct ota_bundle *b, int64_t now,
                                  struct ota_detail *det)
{
    if (c == NULL || b == NULL) {
        ota_detail_set(det, "no client or bundle");
        return OTA_ERR_INVALID_ARG;
    }
    c->refreshed = false;
    struct ota_bundle_request here;
    ota_tuf_client_bundle_request(c, &here);
    if (b->base_root != here.root_version || b->base_size != here.checkpoint_size) {
        ota_detail_set(det,
                       "the bundle starts from root v%llu and checkpoint size %llu; this device "
                       "trusts root v%llu and checkpoint size %llu",
                       (unsigned long long)b->base_root, (unsigned long long)b->base_size,
                       (unsigned long long)here.root_version,
                       (unsigned long long)here.checkpoint_size);
        return OTA_ERR_BUNDLE_BASE;
    }
    c->bundle = b;
    ota_bundle_fetcher(&c->bundle_fetcher, b);
    int rc = refresh(c, &c->bundle_fetcher, now, det);
    c->bundle = NULL;
    return rc;
}

/* ---- open -------------------------------------------------------------- */

/* Loads the stored copy of a non-root role if it still verifies against
 * the trusted root; anything that does not is ignored, as python-tuf does.
 * Only failures to read (other than absence) are errors. */
static int load_local(struct ota_tuf_client *c, enum ota_tuf_role role, uint64_t max,
                      struct ota_detail *det)
{
    char *path = state_path(c, role);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ota_fs_read_nofollow(&data, &len, path, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
    if (rc == OTA_ERR_NOT_FOUND || rc == OTA_ERR_TOO_LARGE) {
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot read the trusted %s", path, ota_tuf_role_name(role));
        goto out;
    }
    struct ota_tuf_meta *md = NULL;
    if (ota_tuf_parse(&md, data, len, role, NULL) != 0)
        goto out;
    if (ota_tuf_verify_role(md, c->t[OTA_TUF_ROOT].md, role, NULL) != 0) {
        ota_tuf_meta_free(md);
        goto out;
    }
    rc = trusted_set(c, role, md, data, len);
out:
    free(data);
    free(path);
    return rc;
}

static int load_root(struct ota_tuf_client *c, const void *bootstrap, size_t bootstrap_len,
                     struct ota_detail *det)
{
    char *path = state_path(c, OTA_TUF_ROOT);
    if (path == NULL)
        return OTA_ERR_NOMEM;
    size_t cap = c->root_max_len > SIZE_MAX ? SIZE_MAX : (size_t)c->root_max_len;
    uint8_t *data = NULL;
    size_t len = 0;
    bool from_state = true;
    struct ota_tuf_meta *md = NULL;
    int rc = ota_fs_read_nofollow(&data, &len, path, cap);
    if (rc == OTA_ERR_NOT_FOUND) {
        from_state = false;
        if (bootstrap == NULL) {
            ota_detail_set(det, "%s: no trusted root and no bootstrap root given", path);
            rc = OTA_ERR_NO_TRUSTED_ROOT;
            goto out;
        }
        if (bootstrap_len > cap) {
            ota_detail_set(det, "bootstrap root: %zu bytes, more than the cap of %zu",
                           bootstrap_len, cap);
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
    } else if (rc != 0) {
        ota_detail_set(det, "%s: cannot read the trusted root", path);
        goto out;
    }
    const void *bytes = from_state ? (const void *)data : bootstrap;
    size_t n = from_state ? len : bootstrap_len;
    const char *what = from_state ? path : "bootstrap root";
    rc = ota_tuf_parse(&md, bytes, n, OTA_TUF_ROOT, det);
    if (rc != 0) {
        ota_detail_prefix(det, what);
        goto out;
    }
    struct ota_detail inner = {{0}};
    rc = ota_tuf_verify_role(md, md, OTA_TUF_ROOT, &inner);
    if (rc != 0) {
        ota_detail_set(det, "%s: not signed by the threshold of its own root role (%s)", what,
                       inner.msg);
        goto out;
    }
    rc = ledger_of_root(&c->ledger, md, what, det);
    if (rc != 0)
        goto out;
    if (!from_state) {
        rc = persist(c, OTA_TUF_ROOT, bytes, n, det);
        if (rc != 0)
            goto out;
    }
    rc = trusted_set(c, OTA_TUF_ROOT, md, bytes, n);
    md = NULL;
out:
    ota_tuf_meta_free(md);
    free(data);
    free(path);
    return rc;
}

/* One client per state directory at a time (the CLI and the agent may
 * both run): an exclusive, non-blocking flock on <state_dir>/.lock. */
static int lock_state(struct ota_tuf_client *c, struct ota_detail *det)
{
    struct ota_buf b;
    ota_buf_init(&b, 64 * 1024);
    if (ota_buf_printf(&b, "%s/.lock", c->state_dir) != 0) {
        ota_buf_free(&b);
        return OTA_ERR_NOMEM;
    }
    int rc = ota_fs_lock(&c->lock_fd, (const char *)b.data, 0600);
    if (rc != 0)
        ota_detail_set(det, "%s: %s", (const char *)b.data,
                       rc == OTA_ERR_LOCKED ? "another client is using this state directory"
                                            : strerror(errno));
    if (rc != 0 && rc != OTA_ERR_LOCKED)
        rc = OTA_ERR_IO;
    ota_buf_free(&b);
    return rc;
}

int ota_tuf_client_open(struct ota_tuf_client **out, const struct ota_tuf_client_opts *opts,
                        const void *bootstrap_root, size_t bootstrap_len, struct ota_detail *det)
{
    *out = NULL;
    if (opts == NULL || opts->state_dir == NULL || opts->state_dir[0] == '\0') {
        ota_detail_set(det, "no state directory given");
        return OTA_ERR_INVALID_ARG;
    }
    if (opts->build_time < 0) {
        ota_detail_set(det, "build time %lld: must be seconds since the epoch (0: the library's)",
                       (long long)opts->build_time);
        return OTA_ERR_INVALID_ARG;
    }
    struct ota_tuf_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OTA_ERR_NOMEM;
    c->lock_fd = -1;
    c->state_dir = strdup(opts->state_dir);
    if (c->state_dir == NULL) {
        free(c);
        return OTA_ERR_NOMEM;
    }
    c->floor = opts->build_time > 0 ? opts->build_time : ota_build_time();
    c->clock = OTA_TIME_NONE;
    c->now = c->floor;
    c->vouched = OTA_TIME_NONE;
    c->max_root_rotations =
        opts->max_root_rotations ? opts->max_root_rotations : OTA_TUF_DEFAULT_MAX_ROOT_ROTATIONS;
    c->root_max_len = opts->root_max_len ? opts->root_max_len : OTA_TUF_ROOT_MAX_LEN;
    c->timestamp_max_len =
        opts->timestamp_max_len ? opts->timestamp_max_len : OTA_TUF_TIMESTAMP_MAX_LEN;
    c->snapshot_max_len =
        opts->snapshot_max_len ? opts->snapshot_max_len : OTA_TUF_SNAPSHOT_MAX_LEN;
    c->targets_max_len = opts->targets_max_len ? opts->targets_max_len : OTA_TUF_TARGETS_MAX_LEN;
    if (opts->hook && opts->hook->fn) {
        c->hook = *opts->hook;
        c->has_hook = true;
    }

    int rc = ota_fs_mkdirs(c->state_dir, STATE_DIR_MODE, client_hook(c));
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot create the state directory", c->state_dir);
        goto fail;
    }
    rc = lock_state(c, det);
    if (rc != 0)
        goto fail;
    rc = load_root(c, bootstrap_root, bootstrap_len, det);
    if (rc == 0)
        rc = load_checkpoint(c, det);
    if (rc == 0)
        rc = load_floor(c, det);
    if (rc != 0)
        goto fail;
    rc = load_local(c, OTA_TUF_TIMESTAMP, c->timestamp_max_len, det);
    if (rc == 0)
        rc = load_local(c, OTA_TUF_SNAPSHOT, c->snapshot_max_len, det);
    if (rc == 0)
        rc = load_local(c, OTA_TUF_TARGETS, c->targets_max_len, det);
    if (rc != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    ota_tuf_client_free(c);
    return rc;
}

const struct ota_tuf_meta *ota_tuf_client_trusted(const struct ota_tuf_client *c,
                                                  enum ota_tuf_role role)
{
    if (c == NULL || (unsigned)role >= OTA_TUF_ROLE_COUNT)
        return NULL;
    return c->t[role].md;
}

const struct ota_checkpoint *ota_tuf_client_checkpoint(const struct ota_tuf_client *c)
{
    if (c == NULL || c->ledger.policy == NULL || !c->have_stored)
        return NULL;
    return &c->stored.cp;
}

void ota_tuf_client_free(struct ota_tuf_client *c)
{
    if (c == NULL)
        return;
    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++)
        trusted_drop(c, (enum ota_tuf_role)r);
    ledger_free(&c->ledger);
    cp_note_clear(&c->stored);
    cp_note_clear(&c->fresh);
    free(c->rcps);
    free(c->slots);
    ota_fs_unlock(&c->lock_fd);
    free(c->state_dir);
    free(c);
}

/* ---- 5.7 download ------------------------------------------------------ */

struct download {
    int fd;
    struct ota_sha256_ctx *sha;
    uint64_t count;
    uint64_t length; /* pinned */
    int write_errno;
};

static int download_sink(void *ctx, const void *data, size_t len)
{
    struct download *d = ctx;
    /* The fetcher caps too; do not rely on it. */
    if ((uint64_t)len > d->length - d->count)
        return OTA_ERR_TOO_LARGE;
    d->count += (uint64_t)len;
    int rc = ota_sha256_update(d->sha, data, len);
    if (rc != 0)
        return rc;
    rc = ota_fs_write_all(d->fd, data, len);
    if (rc != 0)
        d->write_errno = errno;
    return rc;
}

/* Directory part of path (new string): "." when there is none. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int ota_tuf_client_download(struct ota_tuf_client *c, const struct ota_fetcher *f,
                            const char *target_path, const char *out_path, struct ota_detail *det)
{
    if (c == NULL || f == NULL || f->fetch == NULL || target_path == NULL || out_path == NULL) {
        ota_detail_set(det, "missing argument");
        return OTA_ERR_INVALID_ARG;
    }
    const struct ota_tuf_meta *targets = c->t[OTA_TUF_TARGETS].md;
    if (!c->refreshed || targets == NULL) {
        ota_detail_set(det, "%s: no freshly verified targets metadata: refresh first", target_path);
        return OTA_ERR_INVALID_ARG;
    }
    const struct ota_tuf_target *t = ota_tuf_find_target(targets, target_path);
    if (t == NULL) {
        ota_detail_set(det, "targets.json v%llu does not list \"%s\"",
                       (unsigned long long)targets->version, target_path);
        return OTA_ERR_TARGET_UNKNOWN;
    }

    char *name = NULL, *part = NULL, *dir = NULL;
    struct download d = {.fd = -1, .length = t->length};
    struct ota_buf pb;
    ota_buf_init(&pb, 64 * 1024);
    int rc = ota_tuf_target_file_path(&name, t);
    if (rc != 0)
        goto out;
    rc = ota_buf_printf(&pb, "%s.part", out_path);
    if (rc != 0)
        goto out;
    size_t plen;
    part = (char *)ota_buf_steal(&pb, &plen);
    dir = dir_of(out_path);
    if (part == NULL || dir == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = ota_sha256_init(&d.sha);
    if (rc != 0)
        goto out;
    d.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (d.fd < 0) {
        ota_detail_set(det, "%s: %s", part, strerror(errno));
        rc = OTA_ERR_IO;
        goto out;
    }

    if (det)
        det->msg[0] = '\0';
    rc = f->fetch(f->ctx, OTA_FETCH_TARGET, name, t->length, download_sink, &d, det);
    if (rc != 0) {
        if (rc == OTA_ERR_IO && d.write_errno)
            ota_detail_set(det, "%s: %s", part, strerror(d.write_errno));
        else if (rc == OTA_ERR_TOO_LARGE) {
            /* The cap was the pinned length: the file broke the pin. */
            ota_detail_set(det, "%s: more than the %llu bytes targets.json pins", target_path,
                           (unsigned long long)t->length);
            rc = OTA_ERR_LENGTH_MISMATCH;
        } else if (det && det->msg[0] == '\0')
            ota_detail_set(det, "%s: %s", name, ota_strerror(rc));
        goto unlink_part;
    }
    if (d.count != t->length) {
        ota_detail_set(det, "%s: %llu bytes received, targets.json pins %llu", target_path,
                       (unsigned long long)d.count, (unsigned long long)t->length);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto unlink_part;
    }
    uint8_t digest[OTA_SHA256_LEN];
    rc = ota_sha256_final(digest, d.sha);
    if (rc != 0)
        goto unlink_part;
    if (!ota_ct_equal(digest, t->sha256, OTA_SHA256_LEN)) {
        char got[OTA_SHA256_HEX_LEN + 1], want[OTA_SHA256_HEX_LEN + 1];
        ota_hex_encode(got, digest, sizeof(digest));
        ota_hex_encode(want, t->sha256, sizeof(digest));
        ota_detail_set(det, "%s: sha256 %s, targets.json pins %s", target_path, got, want);
        rc = OTA_ERR_HASH_MISMATCH;
        goto unlink_part;
    }
    if (fsync(d.fd) != 0) {
        ota_detail_set(det, "%s: fsync: %s", part, strerror(errno));
        rc = OTA_ERR_IO;
        goto unlink_part;
    }
    int fd = d.fd;
    d.fd = -1;
    if (close(fd) != 0) {
        ota_detail_set(det, "%s: close: %s", part, strerror(errno));
        rc = OTA_ERR_IO;
        goto unlink_part;
    }
    if (rename(part, out_path) != 0) {
        ota_detail_set(det, "%s: rename to %s: %s", part, out_path, strerror(errno));
        rc = OTA_ERR_IO;
        goto unlink_part;
    }
    rc = ota_fs_sync_dir(dir);
    if (rc != 0)
        ota_detail_set(det, "%s: cannot sync the directory", dir);
    goto out;

unlink_part:
    if (d.fd >= 0) {
        close(d.fd);
        d.fd = -1;
    }
    (void)unlink(part);
out:
    if (d.fd >= 0)
        close(d.fd);
    ota_sha256_ctx_free(d.sha);
    ota_buf_free(&pb);
    free(name);
    free(part);
    free(dir);
    return rc;
}
