/* Publish and refresh (see otachain/publish.h).
 *
 *             ota_publish_begin / ota_refresh_begin
 *   pending ─► P0 recover an interrupted publish (R1, R2 below)
 *              P1 thresholds of the pending root and targets, the online
 *                 keys of the new root (nothing written yet)
 *              P2 build root, targets, snapshot, timestamp in memory (the
 *                 exact bytes the log records and clients fetch)
 *   ledger? ──no──► P6
 *              P3 txn 1: each new record through the release rules
 *                 (ledger_rules.h), appended (sequencer.h); its bytes kept
 *                 ("file/<role>/<v>", listed in "unpublished"); the
 *                 checkpoint signed by the log key; the intent "asking";
 *                 COMMIT
 *              P4 every unpublished file staged (public/staging/metadata/),
 *                 tiles exported up to the new size
 *                        │  the round: witnesses asked, no transaction open
 *             ota_publish_end
 *   quorum met ─► P5 txn 2: cosigned checkpoint, cosigners' sizes, root
 *                 N's checkpoint (the first one), intent "live"; COMMIT
 *              P6 public: root-checkpoint/<N>, tiles, checkpoint, index
 *                 files, every unpublished file moved to metadata/ (roots,
 *                 targets, snapshots), root.json, target files and packs,
 *                 timestamp.json last; stale pending files removed; online
 *                 keys rotated
 *              P7 txn 3: intent and kept bytes dropped; COMMIT
 *   not met ──► F1 txn 2: cosigners' sizes; if no witness may hold the
 *                 tree (witness_round.h: droppable), the entries of this
 *                 publish are truncated away with their kept bytes and the
 *                 rules state; intent dropped; COMMIT
 *              F2 staged files and the tiles beyond the cosigned tree
 *                 removed: nothing public changed
 *
 * Invariants:
 *  I1 nothing reaches public/metadata/ before P5 committed a checkpoint
 *     meeting every policy's quorum: a TUF client never sees a root or
 *     targets version that is not cosigned;
 *  I2 no transaction is open while witnesses are asked;
 *  I3 a tree is never dropped once a witness may hold it (a timeout is
 *     not a refusal);
 *  I4 public/ledger/checkpoint names only a tree whose tiles are exported,
 *     and is written before the metadata it vouches for; root-checkpoint/N
 *     before N.root.json;
 *  I5 after P6 every entry of the cosigned tree has its file public (files
 *     of earlier kept trees too, from their kept bytes);
 *  I6 the log keeps each logged file's bytes from P3 until P7, so no
 *     interruption loses what a validating witness or P6 needs;
 *  I7 every public write is atomic and either immutable or redone whole,
 *     so P6 can run again from the intent.
 *
 * Recovery, at every begin (P0):
 *  R1 intent "live" (interrupted in P6 or P7): P6 again from the kept
 *     bytes and the stored checkpoint (a new timestamp when the public one
 *     does not pin the new snapshot yet), then P7;
 *  R2 intent "asking" (interrupted between P3 and the end of the round):
 *     the tree stays (a witness may hold it); F2, and the intent dropped;
 *  R3 pending files whose version is already live are removed (no
 *     ledger: an interrupted root publish is finished as before);
 *  R4 the online key rotation of a live root is finished.
 */
#include "otachain/publish.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/checkpoint.h"
#include "otachain/cjson.h"
#include "otachain/ledger_rules.h"
#include "otachain/sequencer.h"
#include "otachain/tiles.h"
#include "otachain/tlog_policy.h"

#define CACHE_TILES 16
#define NOTE_MAX    OTA_LOG_STORE_NOTE_MAX
#define INTENT_MAX  (64u * 1024)
#define STAGING     "public/staging/metadata"
#define MAX_UNPUB   4096 /* logged files not public yet (kept trees) */
#define LEDGER_PUB  "public/ledger"
#define ROLE_MAXLEN OTA_TUF_TARGETS_MAX_LEN

/* A metadata file built in memory: its exact bytes as they will be served. */
struct built {
    char *data; /* NULL when not built */
    size_t len;
    uint8_t sha256[OTA_SHA256_LEN];
    uint64_t version;
};

/* A logged file not public yet. */
struct unpub {
    enum ota_tuf_role role;
    uint64_t version;
};

struct ota_publish {
    struct ota_repo *r;
    bool refresh;
    bool recosign; /* refresh without a new snapshot: the same checkpoint again */
    bool pend_root;
    const struct ota_tuf_meta *new_root;
    const struct ota_tuf_meta *tmd; /* the targets in force afterwards */
    struct built root_s, tgt_s, snap_s, ts_s;

    /* ledger */
    bool ledger;
    struct ota_log_store *log;
    struct ota_tlog_policy *pol[OTA_WITNESS_ROUND_MAX_POLICIES];
    uint64_t cosigned_size; /* the stored cosigned checkpoint's size at begin */
    uint64_t old_size;      /* the tree before this publish's appends */
    uint64_t new_size;
    uint64_t root_cp; /* root version whose checkpoint this publish provides */
    struct ota_merkle_edge old_edge;
    struct ota_buf note; /* the checkpoint, log-signed; cosigned after the round */
    struct ota_buf old_rules;
    struct ota_tiles_slot *slots;
    struct ota_tiles_source *ts;
    struct ota_witness_round *round;
    bool round_ready;
    size_t nappended;
    struct unpub appended[3];
};

/* ------------------------------------------------------------- helpers */

static void built_free(struct built *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int build_doc(struct built *b, const json_t *doc, uint64_t version)
{
    int rc = ota_repo_dump(&b->data, &b->len, doc, false);

    b->version = version;
    if (rc == 0)
        rc = ota_sha256(b->sha256, b->data, b->len);
    return rc;
}

static void meta_path(char out[96], const char *base, enum ota_tuf_role role, uint64_t version)
{
    snprintf(out, 96, "%s/%" PRIu64 ".%s.json", base, version, ota_tuf_role_name(role));
}

static json_t *metafile_json(uint64_t version, uint64_t len, const uint8_t sha[OTA_SHA256_LEN])
{
    char hex[OTA_SHA256_HEX_LEN + 1];

    ota_hex_encode(hex, sha, OTA_SHA256_LEN);
    return json_pack("{s:I,s:I,s:{s:s}}", "version", (json_int_t)version, "length", (json_int_t)len,
                     "hashes", "sha256", hex);
}

int ota_publish_policy_of(struct ota_tlog_policy **out, int64_t *max_age,
                          const struct ota_tuf_meta *root, struct ota_detail *det)
{
    const json_t *l = json_object_get(json_object_get(root->doc, "signed"), "x-otachain-ledger");
    const json_t *ma;
    int rc;

    *out = NULL;
    *max_age = 0;
    if (l == NULL)
        return 0;
    rc = ota_tlog_policy_from_ledger(out, l, det);
    if (rc != 0) {
        ota_detail_prefix(det, "root.json");
        return rc;
    }
    ma = json_object_get(l, "max_age");
    *max_age = ma != NULL ? (int64_t)json_integer_value(ma) : OTA_LEDGER_DEFAULT_MAX_AGE;
    return 0;
}

/* Sets det to a threshold report for md under root's role. */
static void threshold_detail(struct ota_detail *det, const char *what,
                             const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                             enum ota_tuf_role role)
{
    struct ota_repo_sigstat st;
    char text[OTA_DETAIL_LEN];

    ota_repo_sigstat(&st, md, root, role);
    ota_repo_sigstat_text(text, sizeof(text), &st);
    ota_detail_set(det, "%s (%s keys of root v%" PRIu64 "): %s", what, ota_tuf_role_name(role),
                   root->version, text);
}

/* Builds, signs (online signer) and self-checks snapshot or timestamp
 * metadata pinning meta_name as meta_entry. */
static int online_doc(json_t **out, struct ota_repo *r, enum ota_tuf_role role, uint64_t version,
                      const char *meta_name, json_t *meta_entry, const struct ota_tuf_meta *root,
                      struct ota_detail *det)
{
    struct ota_tuf_meta *md = NULL;
    json_t *doc = ota_repo_meta_new(role, version, r->now + r->expires[role]);
    json_t *meta = json_object();
    int rc;

    *out = NULL;
    if (doc == NULL || meta == NULL || meta_entry == NULL ||
        json_object_set(meta, meta_name, meta_entry) != 0 ||
        json_object_set(json_object_get(doc, "signed"), "meta", meta) != 0) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = r->signer->ops->sign(r->signer, doc, role, root, det);
    if (rc == 0)
        rc = ota_tuf_from_json(&md, doc, role, det);
    if (rc == 0)
        rc = ota_tuf_verify_role(md, root, role, det);
    if (rc != 0) {
        ota_detail_prefix(det, ota_tuf_role_name(role));
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    ota_tuf_meta_free(md);
    json_decref(meta);
    json_decref(doc);
    return rc;
}

/* The timestamp pinning snapshot sv (len, sha), version after the live one. */
static int build_timestamp(struct built *ts, struct ota_repo *r, const struct ota_tuf_meta *root,
                           uint64_t sv, uint64_t slen, const uint8_t ssha[OTA_SHA256_LEN],
                           struct ota_detail *det)
{
    json_t *entry = metafile_json(sv, slen, ssha);
    json_t *doc = NULL;
    uint64_t v = (r->timestamp != NULL ? r->timestamp->version : 0) + 1;
    int rc = online_doc(&doc, r, OTA_TUF_TIMESTAMP, v, "snapshot.json", entry, root, det);

    if (rc == 0)
        rc = build_doc(ts, doc, v);
    json_decref(entry);
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------- kept bytes */

static void file_key(char out[48], enum ota_tuf_role role, uint64_t version)
{
    snprintf(out, 48, "file/%s/%" PRIu64, ota_tuf_role_name(role), version);
}

/* The unpublished list ("unpublished": [[role, version], ...]). */
static int unpub_get(struct unpub *u, size_t *n, struct ota_log_store *log, struct ota_detail *det)
{
    const struct ota_json_limits lim = {OTA_LOG_STORE_VALUE_MAX, 4, 0, 1};
    struct ota_buf b;
    json_t *doc = NULL;
    json_t *v;
    size_t i;
    int rc;

    *n = 0;
    ota_buf_init(&b, OTA_LOG_STORE_VALUE_MAX);
    rc = log->ops->value_get(log, "unpublished", &b, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_buf_free(&b);
        return 0;
    }
    if (rc == 0)
        rc = ota_json_parse(&doc, b.data, b.len, &lim, det);
    json_array_foreach(doc, i, v)
    {
        const char *role = json_string_value(json_array_get(v, 0));
        json_int_t ver = json_integer_value(json_array_get(v, 1));
        int k;

        if (rc != 0)
            break;
        for (k = 0; k < 3; k++) {
            if (role != NULL && strcmp(role, ota_tuf_role_name((enum ota_tuf_role)k)) == 0)
                break;
        }
        if (k == 3 || ver <= 0 || *n >= MAX_UNPUB) {
            ota_detail_set(det, "ledger store: the unpublished list is malformed");
            rc = OTA_ERR_FORMAT;
            break;
        }
        u[*n].role = (enum ota_tuf_role)k;
        u[(*n)++].version = (uint64_t)ver;
    }
    json_decref(doc);
    ota_buf_free(&b);
    return rc;
}

static int unpub_put(struct ota_log_store *log, const struct unpub *u, size_t n,
                     struct ota_detail *det)
{
    json_t *arr = json_array();
    char *s = NULL;
    int rc = arr == NULL ? OTA_ERR_NOMEM : 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (json_array_append_new(arr, json_pack("[s,I]", ota_tuf_role_name(u[i].role),
                                                 (json_int_t)u[i].version)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0) {
        s = json_dumps(arr, JSON_COMPACT);
        rc = s == NULL ? OTA_ERR_NOMEM : log->ops->value_put(log, "unpublished", s, strlen(s), det);
    }
    free(s);
    json_decref(arr);
    return rc;
}

/* The kept bytes of (role, version) into out. */
static int kept_get(struct ota_buf *out, struct ota_log_store *log, enum ota_tuf_role role,
                    uint64_t version, struct ota_detail *det)
{
    char key[48];

    file_key(key, role, version);
    out->len = 0;
    return log->ops->value_get(log, key, out, det);
}

/* ------------------------------------------------------------- intent */

struct intent {
    bool live;
    uint64_t from; /* the cosigned size before */
    uint64_t size; /* the tree asked for */
    uint64_t root_cp;
    uint64_t snapshot; /* the snapshot the new timestamp pins */
    uint64_t targets;  /* the targets that snapshot pins */
};

static int intent_put(struct ota_log_store *log, const struct intent *in, struct ota_detail *det)
{
    json_t *doc =
        json_pack("{s:b,s:I,s:I,s:I,s:I,s:I}", "live", in->live, "from", (json_int_t)in->from,
                  "size", (json_int_t)in->size, "root_cp", (json_int_t)in->root_cp, "snapshot",
                  (json_int_t)in->snapshot, "targets", (json_int_t)in->targets);
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc = s == NULL ? OTA_ERR_NOMEM : log->ops->value_put(log, "intent", s, strlen(s), det);

    free(s);
    json_decref(doc);
    return rc;
}

/* *found false when no publish is in progress. */
static int intent_get(struct intent *in, bool *found, struct ota_log_store *log,
                      struct ota_detail *det)
{
    const struct ota_json_limits lim = {INTENT_MAX, 2, 0, 1};
    struct ota_buf b;
    json_t *doc = NULL;
    int rc;

    memset(in, 0, sizeof(*in));
    *found = false;
    ota_buf_init(&b, INTENT_MAX);
    rc = log->ops->value_get(log, "intent", &b, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_buf_free(&b);
        return 0;
    }
    if (rc == 0)
        rc = ota_json_parse(&doc, b.data, b.len, &lim, det);
    if (rc == 0) {
        json_t *live = json_object_get(doc, "live");
        const char *f[5] = {"from", "size", "root_cp", "snapshot", "targets"};
        uint64_t *dst[5] = {&in->from, &in->size, &in->root_cp, &in->snapshot, &in->targets};

        if (!json_is_boolean(live))
            rc = OTA_ERR_FORMAT;
        in->live = json_is_true(live);
        for (int i = 0; rc == 0 && i < 5; i++) {
            json_t *v = json_object_get(doc, f[i]);

            if (!json_is_integer(v) || json_integer_value(v) < 0)
                rc = OTA_ERR_FORMAT;
            else
                *dst[i] = (uint64_t)json_integer_value(v);
        }
        if (rc != 0)
            ota_detail_set(det, "ledger store: the publish intent is malformed");
    }
    *found = rc == 0;
    json_decref(doc);
    ota_buf_free(&b);
    return rc;
}

/* --------------------------------------------------------- public files */

/* Writes path unless it exists (immutable files). */
static int put_once(struct ota_repo_store *s, const char *path, const void *data, size_t len,
                    struct ota_detail *det)
{
    bool exists = false;
    uint64_t have = 0;
    int rc = s->ops->stat(s, path, &exists, &have, det);

    if (rc != 0 || exists)
        return rc;
    return s->ops->put(s, path, data, len, det);
}

int ota_ledger_put_tile(void *ctx, const char *path, const void *data, size_t len,
                        struct ota_detail *det)
{
    char full[OTA_REPO_PATH_MAX + 1];

    snprintf(full, sizeof(full), LEDGER_PUB "/%s", path);
    return put_once(ctx, full, data, len, det);
}

int ota_ledger_remove_tile(void *ctx, const char *path)
{
    struct ota_ledger_unpublish *x = ctx;
    char full[OTA_REPO_PATH_MAX + 1];

    snprintf(full, sizeof(full), LEDGER_PUB "/%s", path);
    return x->store->ops->remove(x->store, full, x->det);
}

/* Index files of entries [from, size): public/ledger/index/<role>/<v>. */
static int export_index(struct ota_repo_store *s, struct ota_log_store *log, uint64_t from,
                        uint64_t size, struct ota_detail *det)
{
    int rc = 0;

    for (uint64_t i = from; rc == 0 && i < size; i++) {
        uint8_t e[OTA_LEDGER_ENTRY_MAX];
        struct ota_ledger_entry le;
        size_t elen = 0;
        char path[96];
        char text[24];
        int len = snprintf(text, sizeof(text), "%" PRIu64, i);

        rc = log->ops->entry(log, i, e, sizeof(e), &elen, NULL, det);
        if (rc == 0)
            rc = ota_ledger_entry_parse(&le, e, elen, det);
        if (rc != 0)
            break;
        snprintf(path, sizeof(path), LEDGER_PUB "/index/%s/%" PRIu64, ota_tuf_role_name(le.role),
                 le.version);
        rc = put_once(s, path, text, (size_t)len, det);
    }
    return rc;
}

/* The pack of an image target whose custom names a chunk index:
 * blobs/<sha256>.pack -> public/chunks/<sha256>.pack. Skipped when
 * present with the same length. */
static int publish_pack(struct ota_repo_store *s, const struct ota_tuf_target *t,
                        struct ota_detail *det)
{
    char hex[OTA_SHA256_HEX_LEN + 1];
    char src[128];
    char dst[128];
    bool sx = false, dx = false;
    uint64_t slen = 0, dlen = 0;
    int rc;

    if (t->custom == NULL || !json_is_string(json_object_get(t->custom, "index")))
        return 0;
    ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
    snprintf(src, sizeof(src), "blobs/%s.pack", hex);
    snprintf(dst, sizeof(dst), "public/chunks/%s.pack", hex);
    rc = s->ops->stat(s, src, &sx, &slen, det);
    if (rc == 0 && !sx) {
        ota_detail_set(det, "%s: the pack %s is missing (release add makes it)", t->path, src);
        return OTA_ERR_NOT_FOUND;
    }
    if (rc == 0)
        rc = s->ops->stat(s, dst, &dx, &dlen, det);
    if (rc != 0 || (dx && dlen == slen))
        return rc;
    rc = s->ops->copy(s, src, dst, NULL, NULL, det);
    if (rc != 0)
        ota_detail_prefix(det, t->path);
    return rc;
}

/* Every target file of md into public/targets (from blobs/), skipping
 * those present with the right length, and the packs of chunked images. */
static int publish_target_files(struct ota_repo_store *s, const struct ota_tuf_meta *md,
                                struct ota_detail *det)
{
    for (size_t i = 0; i < md->ntargets; i++) {
        int rc = publish_pack(s, &md->targets[i], det);

        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        char hex[OTA_SHA256_HEX_LEN + 1];
        char src[96];
        char dst[OTA_REPO_PATH_MAX + 1];
        char *rel = NULL;
        bool exists = false;
        uint64_t have = 0;
        int rc = ota_tuf_target_file_path(&rel, t);

        if (rc != 0)
            return rc;
        if (snprintf(dst, sizeof(dst), "public/targets/%s", rel) >= (int)sizeof(dst))
            rc = OTA_ERR_TOO_LARGE;
        free(rel);
        if (rc == 0)
            rc = s->ops->stat(s, dst, &exists, &have, det);
        if (rc != 0)
            return rc;
        if (exists && have == t->length)
            continue;
        ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
        snprintf(src, sizeof(src), "blobs/%s", hex);
        rc = s->ops->copy(s, src, dst, t->sha256, &t->length, det);
        if (rc != 0) {
            ota_detail_prefix(det, t->path);
            return rc;
        }
    }
    return 0;
}

/* Gives a logged file its public name (live: a root, or the targets and
 * snapshot the new timestamp names): moved from the staging area, or
 * written from bytes when it is not staged (an interrupted publish). A
 * logged version that was never live (a kept tree's, superseded) stays in
 * the staging area for good: no TUF client sees it, validating witnesses
 * and monitors read it there. */
static int place(struct ota_repo_store *s, enum ota_tuf_role role, uint64_t version, bool live,
                 const void *data, size_t len, struct ota_detail *det)
{
    char staged[96];
    char path[96];
    bool exists = false;
    uint64_t have = 0;
    int rc;

    meta_path(staged, STAGING, role, version);
    meta_path(path, "public/metadata", role, version);
    rc = s->ops->stat(s, staged, &exists, &have, det);
    if (rc == 0 && !live)
        return exists && have == len ? 0 : s->ops->put(s, staged, data, len, det);
    if (rc == 0 && exists)
        return s->ops->move(s, staged, path, det);
    if (rc == 0)
        rc = s->ops->stat(s, path, &exists, &have, det);
    if (rc != 0 || (exists && have == len))
        return rc;
    return data != NULL ? s->ops->put(s, path, data, len, det) : OTA_ERR_NOT_FOUND;
}

/* Removes pending files whose version is live now. */
static int remove_stale_pending(struct ota_repo *r, uint64_t root_v, uint64_t targets_v,
                                struct ota_detail *det)
{
    int rc = 0;

    if (r->pend_root_md != NULL && r->pend_root_md->version <= root_v) {
        rc = r->store->ops->remove(r->store, "pending/root.json", det);
        if (rc == 0) {
            json_decref(r->pend_root);
            ota_tuf_meta_free(r->pend_root_md);
            r->pend_root = NULL;
            r->pend_root_md = NULL;
        }
    }
    if (rc == 0 && r->pend_targets_md != NULL && r->pend_targets_md->version <= targets_v) {
        rc = r->store->ops->remove(r->store, "pending/targets.json", det);
        if (rc == 0) {
            json_decref(r->pend_targets);
            ota_tuf_meta_free(r->pend_targets_md);
            r->pend_targets = NULL;
            r->pend_targets_md = NULL;
        }
    }
    return rc;
}

/* ------------------------------------------------------------- P6, F2 */

/* Removes what P4 made public for a tree that did not get its quorum: the
 * staged files and the tiles beyond the cosigned tree (F2, R2). */
static int unstage(struct ota_repo_store *s, struct ota_log_store *log, uint64_t cosigned,
                   uint64_t size, struct ota_detail *det)
{
    struct unpub *u = calloc(MAX_UNPUB, sizeof(*u));
    struct ota_ledger_unpublish x = {s, det};
    size_t n = 0;
    int rc = u == NULL ? OTA_ERR_NOMEM : unpub_get(u, &n, log, det);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        char staged[96];

        meta_path(staged, STAGING, u[i].role, u[i].version);
        rc = s->ops->remove(s, staged, det);
    }
    if (rc == 0 && size > cosigned)
        rc = ota_seq_export_paths(cosigned, size, ota_ledger_remove_tile, &x);
    free(u);
    return rc;
}

/* P6 and P7 for the intent `in` (the cosigned checkpoint is stored). ts:
 * the timestamp built in P2, or NULL (recovery: built here unless the
 * public one pins the snapshot already). */
static int go_live(struct ota_repo *r, struct ota_log_store *log, const struct intent *in,
                   const struct built *ts, struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_repo_store *s = r->store;
    struct unpub *u = calloc(MAX_UNPUB, sizeof(*u));
    struct ota_seq_sink sink = {ota_ledger_put_tile, s};
    struct ota_tuf_meta *root = NULL;    /* the newest root placed */
    struct ota_tuf_meta *targets = NULL; /* the newest targets placed */
    struct ota_buf b, cp;
    struct built own_ts = {0};
    size_t n = 0;
    int rc = u == NULL ? OTA_ERR_NOMEM : unpub_get(u, &n, log, det);

    ota_buf_init(&b, ROLE_MAXLEN);
    ota_buf_init(&cp, NOTE_MAX);
    /* I4: the root checkpoint, the tiles, then the checkpoint. */
    if (rc == 0 && in->root_cp >= 2) {
        char name[48];
        char path[96];

        snprintf(name, sizeof(name), "root-checkpoint/%" PRIu64, in->root_cp);
        snprintf(path, sizeof(path), LEDGER_PUB "/%s", name);
        rc = log->ops->value_get(log, name, &b, det);
        if (rc == 0)
            rc = put_once(s, path, b.data, b.len, det);
    }
    if (rc == 0)
        rc = ota_seq_export(&sink, log, in->from, in->size, det);
    if (rc == 0)
        rc = log->ops->checkpoint_get(log, &cp, det);
    if (rc == 0)
        rc = s->ops->put(s, LEDGER_PUB "/checkpoint", cp.data, cp.len, det);
    if (rc == 0)
        rc = export_index(s, log, in->from, in->size, det);
    /* I5: the live files public (roots first), the others staged for good. */
    for (int role = OTA_TUF_ROOT; rc == 0 && role <= OTA_TUF_SNAPSHOT; role++) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            struct ota_tuf_meta *md = NULL;
            bool live = role == OTA_TUF_ROOT ||
                        (role == OTA_TUF_TARGETS && u[i].version == in->targets) ||
                        (role == OTA_TUF_SNAPSHOT && u[i].version == in->snapshot);

            if ((int)u[i].role != role)
                continue;
            rc = kept_get(&b, log, u[i].role, u[i].version, det);
            if (rc == 0 && role != OTA_TUF_SNAPSHOT)
                rc = ota_tuf_parse(&md, b.data, b.len, u[i].role, det);
            /* Target files before the targets metadata naming them. */
            if (rc == 0 && role == OTA_TUF_TARGETS && live)
                rc = publish_target_files(s, md, det);
            if (rc == 0)
                rc = place(s, u[i].role, u[i].version, live, b.data, b.len, det);
            if (rc == 0 && role == OTA_TUF_ROOT && (root == NULL || md->version > root->version)) {
                rc = s->ops->put(s, "public/metadata/root.json", b.data, b.len, det);
                ota_tuf_meta_free(root);
                root = md;
                md = NULL;
            }
            if (rc == 0 && role == OTA_TUF_TARGETS && live) {
                ota_tuf_meta_free(targets);
                targets = md;
                md = NULL;
            }
            ota_tuf_meta_free(md);
        }
    }
    /* The timestamp last: the new state is live. */
    if (rc == 0 && ts == NULL) {
        const struct ota_tuf_metafile *mf =
            r->timestamp != NULL ? ota_tuf_find_meta(r->timestamp, "snapshot.json") : NULL;

        if (mf == NULL || mf->version != in->snapshot) {
            uint8_t sha[OTA_SHA256_LEN];
            const struct ota_tuf_meta *kr = root != NULL ? root : r->root;

            rc = kept_get(&b, log, OTA_TUF_SNAPSHOT, in->snapshot, det);
            if (rc == OTA_ERR_NOT_FOUND) {
                char path[96];

                meta_path(path, "public/metadata", OTA_TUF_SNAPSHOT, in->snapshot);
                b.len = 0;
                rc = s->ops->get(s, path, &b, det);
            }
            if (rc == 0)
                rc = ota_sha256(sha, b.data, b.len);
            if (rc == 0 && kr == NULL)
                rc = OTA_ERR_NO_TRUSTED_ROOT;
            if (rc == 0)
                rc = build_timestamp(&own_ts, r, kr, in->snapshot, b.len, sha, det);
            ts = &own_ts;
        }
    }
    if (rc == 0 && ts != NULL && ts->data != NULL)
        rc = s->ops->put(s, "public/metadata/timestamp.json", ts->data, ts->len, det);
    if (rc == 0 && res != NULL && ts != NULL)
        res->timestamp_version = ts->version;
    /* R3, R4. */
    if (rc == 0)
        rc = remove_stale_pending(r, root != NULL ? root->version : 0,
                                  targets != NULL ? targets->version : 0, det);
    if (rc == 0 && root != NULL)
        rc = r->signer->ops->root_live(r->signer, root, det);
    /* P7 */
    if (rc == 0)
        rc = log->ops->begin(log, det);
    if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char key[48];

            file_key(key, u[i].role, u[i].version);
            rc = log->ops->value_del(log, key, det);
        }
        if (rc == 0)
            rc = log->ops->value_del(log, "unpublished", det);
        if (rc == 0)
            rc = log->ops->value_del(log, "intent", det);
        if (rc == 0)
            rc = log->ops->commit(log, det);
        else
            log->ops->rollback(log);
    }
    ota_tuf_meta_free(root);
    ota_tuf_meta_free(targets);
    built_free(&own_ts);
    ota_buf_free(&b);
    ota_buf_free(&cp);
    free(u);
    return rc;
}

/* P0: an interrupted publish (R1, R2). *reopen: the repository changed on
 * the store: reopen it before going on. */
static int recover(struct ota_repo *r, struct ota_log_store *log, bool *recovered,
                   struct ota_detail *det)
{
    struct intent in;
    bool found = false;
    int rc = intent_get(&in, &found, log, det);

    *recovered = false;
    if (rc != 0 || !found)
        return rc;
    *recovered = true;
    if (in.live)
        return go_live(r, log, &in, NULL, NULL, det);
    /* R2: the tree stays; what was staged goes. */
    rc = unstage(r->store, log, in.from, in.size, det);
    if (rc == 0)
        rc = log->ops->begin(log, det);
    if (rc == 0) {
        rc = log->ops->value_del(log, "intent", det);
        if (rc == 0)
            rc = log->ops->commit(log, det);
        else
            log->ops->rollback(log);
    }
    return rc;
}

/* ------------------------------------------------------------- begin */

static int reopen(struct ota_repo *r, struct ota_detail *det)
{
    struct ota_repo_store *s = r->store;
    struct ota_repo_signer *sg = r->signer;
    int64_t now = r->now;

    ota_repo_close(r);
    return ota_repo_open(r, s, sg, now, det);
}

/* The ledger of the new root: its policy and that of the root in force
 * (both quorums must be met); p->ledger false without one. */
static int ledger_open(struct ota_publish *p, struct ota_detail *det)
{
    struct ota_repo *r = p->r;
    int64_t max_age = 0;
    struct ota_buf cp;
    int rc = ota_publish_policy_of(&p->pol[1], &max_age, p->new_root, det);

    if (rc != 0 || p->pol[1] == NULL)
        return rc;
    if (r->root != NULL && r->root != p->new_root)
        rc = ota_publish_policy_of(&p->pol[0], &max_age, r->root, det);
    if (rc == 0)
        rc = r->store->ops->log(r->store, &p->log, true, det);
    if (rc != 0)
        return rc;
    p->ledger = true;
    /* The log must be the one the root names. */
    {
        struct ota_note_verifier v;

        rc = r->signer->ops->log_key(r->signer, &v, det);
        for (int i = 0; rc == 0 && i < OTA_WITNESS_ROUND_MAX_POLICIES; i++) {
            const struct ota_tlog_policy *pol = p->pol[i];

            if (pol != NULL &&
                (pol->origin_len != v.name_len || memcmp(pol->origin, v.name, v.name_len) != 0 ||
                 pol->nlogs != 1 || pol->logs[0].key.key_id != v.key_id ||
                 memcmp(pol->logs[0].key.pub, v.pub, OTA_ED25519_PUB_LEN) != 0)) {
                ota_detail_set(
                    det, "the ledger policy of root.json does not name this log's key %s", v.name);
                rc = OTA_ERR_ORIGIN;
            }
        }
    }
    ota_buf_init(&cp, NOTE_MAX);
    if (rc == 0) {
        rc = p->log->ops->checkpoint_get(p->log, &cp, det);
        if (rc == 0) {
            struct ota_note *note = NULL;
            struct ota_checkpoint c;

            rc = ota_note_parse(&note, cp.data, cp.len, det);
            if (rc == 0)
                rc = ota_checkpoint_parse(&c, note->text, note->text_len, det);
            if (rc == 0)
                p->cosigned_size = c.size;
            ota_note_free(note);
        } else if (rc == OTA_ERR_NOT_FOUND) {
            rc = 0;
        }
    }
    ota_buf_free(&cp);
    return rc;
}

/* The rules state of the log (the "rules" value), rebuilt from the
 * entries and their files when absent (a log written before it). */
static int rules_load(struct ota_ledger_rules *st, struct ota_publish *p, struct ota_detail *det)
{
    const struct ota_json_limits lim = {OTA_LOG_STORE_VALUE_MAX, 8, 0, 1};
    struct ota_log_store *log = p->log;
    struct ota_buf b, f, anchor;
    json_t *doc = NULL;
    uint64_t count = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    ota_buf_init(&b, OTA_LOG_STORE_VALUE_MAX);
    ota_buf_init(&f, ROLE_MAXLEN);
    ota_buf_init(&anchor, OTA_TUF_ROOT_MAX_LEN);
    rc = log->ops->value_get(log, "rules", &b, det);
    if (rc == 0) {
        rc = ota_json_parse(&doc, b.data, b.len, &lim, det);
        if (rc == 0)
            rc = ota_ledger_rules_from_json(st, doc, det);
        json_decref(doc);
        goto out;
    }
    if (rc != OTA_ERR_NOT_FOUND)
        goto out;
    rc = log->ops->count(log, &count, det);
    if (rc == 0 && count > 0)
        rc = p->r->store->ops->get(p->r->store, "public/metadata/1.root.json", &anchor, det);
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        uint8_t e[OTA_LEDGER_ENTRY_MAX];
        struct ota_ledger_entry le;
        size_t elen = 0;

        rc = log->ops->entry(log, i, e, sizeof(e), &elen, NULL, det);
        if (rc == 0)
            rc = ota_ledger_entry_parse(&le, e, elen, det);
        if (rc == 0) {
            rc = kept_get(&f, log, le.role, le.version, det);
            if (rc == OTA_ERR_NOT_FOUND) {
                char path[96];

                meta_path(path, "public/metadata", le.role, le.version);
                f.len = 0;
                rc = p->r->store->ops->get(p->r->store, path, &f, det);
            }
        }
        if (rc == 0)
            rc = ota_ledger_rules_check(st, i, &le, f.data, f.len, anchor.data, anchor.len, det);
    }
out:
    if (rc != 0)
        ota_ledger_rules_free(st);
    ota_buf_free(&b);
    ota_buf_free(&f);
    ota_buf_free(&anchor);
    return rc;
}

static int rules_put(struct ota_log_store *log, const struct ota_ledger_rules *st,
                     struct ota_detail *det)
{
    json_t *doc = json_object();
    char *s = NULL;
    int rc = doc == NULL ? OTA_ERR_NOMEM : ota_ledger_rules_to_json(doc, st);

    if (rc == 0) {
        s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        rc = s == NULL ? OTA_ERR_NOMEM : log->ops->value_put(log, "rules", s, strlen(s), det);
    }
    free(s);
    json_decref(doc);
    return rc;
}

/* The online signer's log key as an ota_seq_sign_fn. */
static int log_sign(void *ctx, struct ota_buf *note, const char *text, size_t len,
                    struct ota_detail *det)
{
    struct ota_repo_signer *s = ctx;

    return s->ops->log_sign(s, note, text, len, det);
}

/* P3: txn 1. recs: the files to log (root, targets, snapshot order). */
static int log_records(struct ota_publish *p, const struct built *const *recs,
                       const enum ota_tuf_role *roles, size_t nrecs, struct ota_detail *det)
{
    struct ota_log_store *log = p->log;
    struct unpub *u = calloc(MAX_UNPUB, sizeof(*u));
    struct ota_ledger_rules rules;
    struct ota_seq_record sr[3];
    struct ota_seq_entry ents[3];
    struct ota_merkle_edge edge;
    struct intent in;
    size_t nu = 0;
    size_t nent = 0;
    bool in_txn = false;
    int rc = u == NULL ? OTA_ERR_NOMEM : log->ops->begin(log, det);

    memset(&rules, 0, sizeof(rules));
    in_txn = rc == 0;
    if (rc == 0)
        rc = log->ops->edge_get(log, &p->old_edge, det);
    p->old_size = p->old_edge.size;
    if (rc == 0)
        rc = unpub_get(u, &nu, log, det);
    if (rc == 0)
        rc = log->ops->value_get(log, "rules", &p->old_rules, NULL);
    if (rc == OTA_ERR_NOT_FOUND)
        rc = 0;
    if (rc == 0)
        rc = rules_load(&rules, p, det);
    for (size_t i = 0; rc == 0 && i < nrecs; i++) {
        const struct built *b = recs[i];
        uint8_t have[OTA_MERKLE_HASH_LEN];
        uint8_t e[OTA_LEDGER_ENTRY_MAX];
        struct ota_ledger_entry le;
        size_t elen = 0;
        uint64_t idx = 0;
        char key[48];

        rc = ota_seq_record_of(&sr[nent], roles[i], b->version, b->data, b->len);
        if (rc == 0)
            rc = log->ops->find(log, sr[nent].key, &idx, det);
        if (rc == 0) {
            /* Logged by an earlier publish: the same bytes, or refused. */
            rc = log->ops->entry(log, idx, e, sizeof(e), &elen, have, det);
            if (rc == 0 && !ota_ct_equal(have, sr[nent].leaf, OTA_MERKLE_HASH_LEN)) {
                ota_detail_set(det,
                               "%s v%" PRIu64 " is already logged with other bytes: a logged "
                               "version cannot change (publish a new version)",
                               ota_tuf_role_name(roles[i]), b->version);
                rc = OTA_ERR_EXISTS;
            }
            continue;
        }
        if (rc != OTA_ERR_NOT_FOUND)
            break;
        /* The authoring side's own check: the same rules as the witnesses. */
        rc = ota_ledger_entry_parse(&le, sr[nent].rec, sr[nent].len, det);
        if (rc == 0)
            rc = ota_ledger_rules_check(&rules, p->old_size + nent, &le, (const uint8_t *)b->data,
                                        b->len, (const uint8_t *)b->data, b->len, det);
        if (rc != 0)
            break;
        file_key(key, roles[i], b->version);
        rc = log->ops->value_put(log, key, b->data, b->len, det);
        if (rc == 0 && nu >= MAX_UNPUB)
            rc = OTA_ERR_TOO_LARGE;
        if (rc != 0)
            break;
        u[nu].role = roles[i];
        u[nu++].version = b->version;
        p->appended[p->nappended].role = roles[i];
        p->appended[p->nappended++].version = b->version;
        ents[nent] = (struct ota_seq_entry){sr[nent].rec, sr[nent].len, sr[nent].key};
        nent++;
    }
    if (rc == 0)
        rc = ota_seq_append(&edge, NULL, log, ents, nent, det);
    p->new_size = edge.size;
    if (rc == 0) {
        struct ota_note_verifier v;

        rc = p->r->signer->ops->log_key(p->r->signer, &v, det);
        if (rc == 0)
            rc = ota_seq_checkpoint(&p->note, NULL, &edge, v.name, v.name_len, log_sign,
                                    p->r->signer, det);
    }
    if (rc == 0)
        rc = unpub_put(log, u, nu, det);
    if (rc == 0)
        rc = rules_put(log, &rules, det);
    in = (struct intent){false,      p->cosigned_size,  p->new_size,
                         p->root_cp, p->snap_s.version, p->tmd->version};
    if (rc == 0)
        rc = intent_put(log, &in, det);
    if (rc == 0) {
        rc = log->ops->commit(log, det);
        in_txn = false;
    }
    if (in_txn)
        log->ops->rollback(log);
    ota_ledger_rules_free(&rules);
    free(u);
    return rc;
}

/* P4: stage every unpublished file, export the tiles. */
static int stage(struct ota_publish *p, struct ota_detail *det)
{
    struct ota_repo_store *s = p->r->store;
    struct unpub *u = calloc(MAX_UNPUB, sizeof(*u));
    struct ota_seq_sink sink = {ota_ledger_put_tile, s};
    struct ota_buf b;
    size_t n = 0;
    int rc = u == NULL ? OTA_ERR_NOMEM : unpub_get(u, &n, p->log, det);

    ota_buf_init(&b, ROLE_MAXLEN);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[96];

        meta_path(path, STAGING, u[i].role, u[i].version);
        rc = kept_get(&b, p->log, u[i].role, u[i].version, det);
        if (rc == 0)
            rc = s->ops->put(s, path, b.data, b.len, det);
    }
    if (rc == 0)
        rc = ota_seq_export(&sink, p->log, p->cosigned_size, p->new_size, det);
    ota_buf_free(&b);
    free(u);
    return rc;
}

/* The round over p->note for the tree of p->new_size. */
static int round_setup(struct ota_publish *p, const struct ota_tlog_policy *const *pols,
                       size_t npols, struct ota_detail *det)
{
    struct ota_tiles_reader reader;
    int rc;

    p->round = calloc(1, sizeof(*p->round));
    p->slots = calloc(CACHE_TILES, sizeof(*p->slots));
    p->ts = calloc(1, sizeof(*p->ts));
    if (p->round == NULL || p->slots == NULL || p->ts == NULL)
        return OTA_ERR_NOMEM;
    ota_log_store_tiles_reader(&reader, p->log);
    rc = ota_tiles_source_init(p->ts, p->new_size, &reader, p->slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_witness_round_init(p->round, &p->note, p->new_size, pols, npols, &p->ts->src);
    for (size_t i = 0; rc == 0 && i < p->round->n; i++) {
        uint64_t known = 0;

        rc = p->log->ops->witness_get(p->log, p->round->w[i].pw->name, &known, det);
        ota_witness_round_known(p->round, i, known);
    }
    if (rc == 0)
        rc = ota_witness_round_start(p->round, det);
    p->round_ready = rc == 0;
    return rc;
}

static void publish_free_parts(struct ota_publish *p)
{
    built_free(&p->root_s);
    built_free(&p->tgt_s);
    built_free(&p->snap_s);
    built_free(&p->ts_s);
    for (int i = 0; i < OTA_WITNESS_ROUND_MAX_POLICIES; i++)
        ota_tlog_policy_free(p->pol[i]);
    if (p->round != NULL)
        ota_witness_round_free(p->round);
    free(p->round);
    free(p->slots);
    free(p->ts);
    ota_buf_free(&p->note);
    ota_buf_free(&p->old_rules);
}

void ota_publish_free(struct ota_publish *p)
{
    if (p == NULL)
        return;
    publish_free_parts(p);
    free(p);
}

static struct ota_publish *publish_new(struct ota_repo *r)
{
    struct ota_publish *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->r = r;
    ota_buf_init(&p->note, NOTE_MAX);
    ota_buf_init(&p->old_rules, OTA_LOG_STORE_VALUE_MAX);
    return p;
}

/* P0 for both publish and refresh: recovery through the ledger of the
 * published root, then the repository read again. */
static int begin_recover(struct ota_repo *r, struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_log_store *log = NULL;
    bool recovered = false;
    int rc;

    if (r->signer == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = r->store->ops->log(r->store, &log, false, det);
    if (rc == 0 && log != NULL)
        rc = recover(r, log, &recovered, det);
    if (rc == 0 && recovered) {
        res->recovered = true;
        rc = reopen(r, det);
    }
    return rc;
}

/* P2 and P3/P4 for the files in p (root_s, tgt_s when built; snap_s and
 * ts_s always), then the round. */
static int prepare(struct ota_publish *p, json_t *targets_meta, struct ota_detail *det)
{
    struct ota_repo *r = p->r;
    const struct built *recs[3];
    enum ota_tuf_role roles[3];
    size_t nrecs = 0;
    json_t *sdoc = NULL;
    uint64_t sv = 0;
    int rc = ledger_open(p, det);

    if (rc == 0 && targets_meta != NULL)
        rc = ota_repo_unlogged_version(
            r, OTA_TUF_SNAPSHOT, (r->snapshot != NULL ? r->snapshot->version : 0) + 1, &sv, det);
    if (rc == 0 && targets_meta != NULL)
        rc = online_doc(&sdoc, r, OTA_TUF_SNAPSHOT, sv, "targets.json", targets_meta, p->new_root,
                        det);
    if (rc == 0 && sdoc != NULL)
        rc = build_doc(&p->snap_s, sdoc, sv);
    json_decref(sdoc);
    if (rc == 0) {
        uint64_t slen = p->snap_s.data != NULL ? p->snap_s.len : r->snapshot_len;
        const uint8_t *ssha = p->snap_s.data != NULL ? p->snap_s.sha256 : r->snapshot_sha256;
        uint64_t sver = p->snap_s.data != NULL ? p->snap_s.version : r->snapshot->version;

        rc = build_timestamp(&p->ts_s, r, p->new_root, sver, slen, ssha, det);
    }
    if (rc != 0 || !p->ledger)
        return rc;
    if (p->recosign) {
        /* The stored checkpoint, signed by the log key again (Ed25519 is
         * deterministic: the same note). */
        struct ota_buf stored;
        struct ota_note *note = NULL;
        struct ota_checkpoint cp;

        ota_buf_init(&stored, NOTE_MAX);
        rc = p->log->ops->checkpoint_get(p->log, &stored, det);
        if (rc == OTA_ERR_NOT_FOUND)
            ota_detail_set(det, "nothing logged yet (repo publish)");
        if (rc == 0)
            rc = ota_note_parse(&note, stored.data, stored.len, det);
        if (rc == 0)
            rc = ota_checkpoint_parse(&cp, note->text, note->text_len, det);
        if (rc == 0)
            rc = ota_buf_append(&p->note, note->text, note->text_len);
        if (rc == 0)
            rc = ota_buf_append(&p->note, "\n", 1);
        if (rc == 0)
            rc = r->signer->ops->log_sign(r->signer, &p->note, note->text, note->text_len, det);
        p->new_size = p->old_size = cp.size;
        ota_note_free(note);
        ota_buf_free(&stored);
        if (rc == 0)
            rc = round_setup(p, (const struct ota_tlog_policy *const *)&p->pol[1], 1, det);
        return rc;
    }
    if (p->root_s.data != NULL) {
        recs[nrecs] = &p->root_s;
        roles[nrecs++] = OTA_TUF_ROOT;
    }
    if (p->tgt_s.data != NULL) {
        recs[nrecs] = &p->tgt_s;
        roles[nrecs++] = OTA_TUF_TARGETS;
    }
    recs[nrecs] = &p->snap_s;
    roles[nrecs++] = OTA_TUF_SNAPSHOT;
    /* Root N's checkpoint is kept when root N-1 has a ledger. */
    p->root_cp = p->pend_root && p->pol[0] != NULL ? p->new_root->version : 0;
    rc = log_records(p, recs, roles, nrecs, det);
    if (rc == 0)
        rc = stage(p, det);
    if (rc == 0)
        rc = round_setup(p, (const struct ota_tlog_policy *const *)p->pol,
                         OTA_WITNESS_ROUND_MAX_POLICIES, det);
    return rc;
}

/* A begin that failed after P3 committed: like a round that did not start
 * (R2: the tree stays, the staged files go). Frees p. */
static void begin_failed(struct ota_publish *p)
{
    if (p != NULL && p->ledger && p->nappended > 0) {
        struct ota_detail ignored = {{0}};
        bool recovered;

        (void)recover(p->r, p->log, &recovered, &ignored);
    }
    ota_publish_free(p);
}

int ota_publish_begin(struct ota_publish **out, struct ota_repo *r, struct ota_publish_result *res,
                      struct ota_detail *det)
{
    struct ota_publish *p = NULL;
    json_t *targets_meta = NULL;
    char what[64];
    bool removed = false;
    int rc;

    *out = NULL;
    memset(res, 0, sizeof(*res));
    rc = begin_recover(r, res, det);
    if (rc != 0)
        return rc;
    /* R3 (no ledger, or a stale leftover): stale pending files go. */
    if (r->pend_root != NULL && r->pend_root_stale && !r->interrupted) {
        rc = r->store->ops->remove(r->store, "pending/root.json", det);
        removed = true;
    }
    if (rc == 0 && r->pend_targets != NULL && r->pend_targets_stale) {
        rc = r->store->ops->remove(r->store, "pending/targets.json", det);
        removed = true;
    }
    if (rc == 0 && removed)
        rc = reopen(r, det);
    if (rc != 0)
        return rc;
    if (r->pend_root == NULL && r->pend_targets == NULL && !r->interrupted) {
        if (r->root != NULL)
            rc = r->signer->ops->root_live(r->signer, r->root, det); /* R4 */
        if (rc != 0)
            return rc;
        if (removed || res->recovered) {
            res->nothing_left = true;
            return 0;
        }
        ota_detail_set(det, "nothing pending in pending/ (release add, root rotate)");
        return OTA_ERR_NOT_FOUND;
    }
    p = publish_new(r);
    if (p == NULL)
        return OTA_ERR_NOMEM;

    /* P1: every threshold before the first write. */
    p->pend_root = r->pend_root_md != NULL && !r->pend_root_stale;
    p->new_root = p->pend_root ? r->pend_root_md : r->root;
    if (p->new_root == NULL) {
        ota_detail_set(det, "no root, pending or published");
        rc = OTA_ERR_NO_TRUSTED_ROOT;
        goto fail;
    }
    if (p->pend_root) {
        snprintf(what, sizeof(what), "pending root v%" PRIu64, p->new_root->version);
        if (r->root != NULL && ota_tuf_verify_role(p->new_root, r->root, OTA_TUF_ROOT, NULL) != 0) {
            threshold_detail(det, what, p->new_root, r->root, OTA_TUF_ROOT);
            rc = OTA_ERR_THRESHOLD;
            goto fail;
        }
        if (ota_tuf_verify_role(p->new_root, p->new_root, OTA_TUF_ROOT, NULL) != 0) {
            threshold_detail(det, what, p->new_root, p->new_root, OTA_TUF_ROOT);
            rc = OTA_ERR_THRESHOLD;
            goto fail;
        }
        rc = ota_tuf_check_expiry(p->new_root, r->now, det);
        if (rc != 0) {
            ota_detail_prefix(det, what);
            goto fail;
        }
    }
    p->tmd = r->pend_targets_md != NULL ? r->pend_targets_md : r->targets;
    if (p->tmd == NULL) {
        ota_detail_set(det, "no targets metadata, pending or published");
        rc = OTA_ERR_NOT_FOUND;
        goto fail;
    }
    snprintf(what, sizeof(what), "%s targets v%" PRIu64,
             r->pend_targets_md != NULL ? "pending" : "published", p->tmd->version);
    if (ota_tuf_verify_role(p->tmd, p->new_root, OTA_TUF_TARGETS, NULL) != 0) {
        threshold_detail(det, what, p->tmd, p->new_root, OTA_TUF_TARGETS);
        rc = OTA_ERR_THRESHOLD;
        goto fail;
    }
    if (r->pend_targets_md != NULL) {
        rc = ota_tuf_check_expiry(p->tmd, r->now, det);
        if (rc != 0) {
            ota_detail_prefix(det, what);
            goto fail;
        }
    }
    /* The online keys of the new root must be at hand before anything is
     * written (a new root without a timestamp signed under it would stall
     * every client). */
    for (int role = OTA_TUF_SNAPSHOT; role <= OTA_TUF_TIMESTAMP; role++) {
        rc = r->signer->ops->have(r->signer, (enum ota_tuf_role)role, p->new_root, det);
        if (rc != 0)
            goto fail;
    }
    /* P2 */
    if (p->pend_root)
        rc = build_doc(&p->root_s, r->pend_root, p->new_root->version);
    if (rc == 0 && r->pend_targets_md != NULL) {
        rc = build_doc(&p->tgt_s, r->pend_targets, p->tmd->version);
        if (rc == 0)
            targets_meta = metafile_json(p->tmd->version, p->tgt_s.len, p->tgt_s.sha256);
    } else if (rc == 0) {
        targets_meta = metafile_json(p->tmd->version, r->targets_len, r->targets_sha256);
    }
    if (rc == 0 && targets_meta == NULL)
        rc = OTA_ERR_NOMEM;
    if (rc == 0)
        rc = prepare(p, targets_meta, det);
    json_decref(targets_meta);
    if (rc != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    begin_failed(p);
    return rc;
}

int ota_refresh_begin(struct ota_publish **out, struct ota_repo *r, bool force_snapshot,
                      struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_publish *p = NULL;
    json_t *targets_meta = NULL;
    int rc;

    *out = NULL;
    memset(res, 0, sizeof(*res));
    rc = begin_recover(r, res, det);
    if (rc != 0)
        return rc;
    if (r->root == NULL || r->snapshot == NULL) {
        ota_detail_set(det, "nothing published yet (repo publish)");
        return OTA_ERR_NOT_FOUND;
    }
    if (r->interrupted) {
        ota_detail_set(det,
                       "the publish of root v%" PRIu64
                       " was interrupted: run otachain repo publish first",
                       r->root->version);
        return OTA_ERR_VERSION_MISMATCH;
    }
    p = publish_new(r);
    if (p == NULL)
        return OTA_ERR_NOMEM;
    p->refresh = true;
    p->new_root = r->root;
    p->tmd = r->targets;
    if (force_snapshot || r->snapshot->expires - r->now < r->expires[OTA_TUF_SNAPSHOT] / 2) {
        const struct ota_tuf_metafile *mf = ota_tuf_find_meta(r->snapshot, "targets.json");

        targets_meta = metafile_json(mf->version, r->targets_len, r->targets_sha256);
        if (targets_meta == NULL) {
            rc = OTA_ERR_NOMEM;
            goto fail;
        }
    } else {
        p->recosign = true;
    }
    rc = prepare(p, targets_meta, det);
    json_decref(targets_meta);
    if (rc != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    begin_failed(p);
    return rc;
}

struct ota_witness_round *ota_publish_round(struct ota_publish *p)
{
    return p != NULL && p->round_ready && p->round->n > 0 ? p->round : NULL;
}

/* ------------------------------------------------------------------ end */

/* F1, F2: the quorum was not met. */
static int failed(struct ota_publish *p, const struct ota_witness_verdict *v,
                  struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_log_store *log = p->log;
    struct unpub *u = calloc(MAX_UNPUB, sizeof(*u));
    bool drop = v->droppable && !p->recosign && p->nappended > 0;
    size_t n = 0;
    int rc = u == NULL ? OTA_ERR_NOMEM : log->ops->begin(log, det);
    bool in_txn = rc == 0;

    for (size_t i = 0; rc == 0 && i < p->round->n; i++) {
        if (p->round->w[i].outcome == OTA_WITNESS_COSIGNED)
            rc = log->ops->witness_put(log, p->round->w[i].pw->name, p->new_size, det);
    }
    if (rc == 0 && drop) {
        /* I3: no witness may hold the tree: it goes, with what it kept. */
        size_t w = 0;

        rc = log->ops->truncate(log, p->old_size, det);
        if (rc == 0)
            rc = log->ops->edge_put(log, &p->old_edge, det);
        if (rc == 0)
            rc = unpub_get(u, &n, log, det);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            bool mine = false;

            for (size_t k = 0; k < p->nappended; k++)
                mine = mine ||
                       (u[i].role == p->appended[k].role && u[i].version == p->appended[k].version);
            if (mine) {
                char key[48];

                file_key(key, u[i].role, u[i].version);
                rc = log->ops->value_del(log, key, det);
            } else {
                u[w++] = u[i];
            }
        }
        if (rc == 0)
            rc = w > 0 ? unpub_put(log, u, w, det) : log->ops->value_del(log, "unpublished", det);
        if (rc == 0)
            rc = p->old_rules.len > 0
                     ? log->ops->value_put(log, "rules", p->old_rules.data, p->old_rules.len, det)
                     : log->ops->value_del(log, "rules", det);
    }
    if (rc == 0 && !p->recosign)
        rc = log->ops->value_del(log, "intent", det);
    if (rc == 0) {
        rc = log->ops->commit(log, det);
        in_txn = false;
    }
    if (in_txn)
        log->ops->rollback(log);
    if (rc == 0 && !p->recosign) {
        /* Unstage before the truncation's files are gone from the list:
         * the staged names of dropped files are removed too. */
        char staged[96];

        for (size_t k = 0; rc == 0 && drop && k < p->nappended; k++) {
            meta_path(staged, STAGING, p->appended[k].role, p->appended[k].version);
            rc = p->r->store->ops->remove(p->r->store, staged, det);
        }
        if (rc == 0)
            rc = unstage(p->r->store, log, p->cosigned_size, p->new_size, det);
    }
    res->kept = !drop && !p->recosign;
    free(u);
    return rc;
}

int ota_publish_end(struct ota_publish *p, struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_repo *r = p->r;
    struct ota_witness_verdict v;
    struct intent in;
    char msg[OTA_DETAIL_LEN];
    int rc = 0;

    res->ledger = p->ledger;
    res->root_version = p->new_root->version;
    res->targets_version = p->tmd->version;
    res->ntargets = p->tmd->ntargets;
    res->snapshot_signed = p->snap_s.data != NULL;
    res->snapshot_version = p->snap_s.data != NULL ? p->snap_s.version : r->snapshot->version;
    res->timestamp_version = p->ts_s.version;
    if (!p->ledger) {
        /* P6 without a ledger: written in order, the timestamp last. */
        struct ota_repo_store *s = r->store;
        char path[96];

        if (p->root_s.data != NULL) {
            meta_path(path, "public/metadata", OTA_TUF_ROOT, p->root_s.version);
            rc = s->ops->put(s, path, p->root_s.data, p->root_s.len, det);
            if (rc == 0)
                rc =
                    s->ops->put(s, "public/metadata/root.json", p->root_s.data, p->root_s.len, det);
        }
        if (rc == 0 && p->tgt_s.data != NULL) {
            rc = publish_target_files(s, p->tmd, det);
            meta_path(path, "public/metadata", OTA_TUF_TARGETS, p->tgt_s.version);
            if (rc == 0)
                rc = s->ops->put(s, path, p->tgt_s.data, p->tgt_s.len, det);
        }
        if (rc == 0 && p->snap_s.data != NULL) {
            meta_path(path, "public/metadata", OTA_TUF_SNAPSHOT, p->snap_s.version);
            rc = s->ops->put(s, path, p->snap_s.data, p->snap_s.len, det);
        }
        if (rc == 0)
            rc = s->ops->put(s, "public/metadata/timestamp.json", p->ts_s.data, p->ts_s.len, det);
        if (rc == 0 && !p->refresh)
            rc = r->signer->ops->root_live(r->signer, p->new_root, det);
        if (rc == 0 && !p->refresh)
            rc = remove_stale_pending(r, p->new_root->version, p->tmd->version, det);
        return rc;
    }
    ota_witness_round_judge(p->round, &v);
    res->ncosigned = v.ncosigned;
    res->nheld = v.nheld;
    res->checkpoint_size = p->new_size;
    if (!v.met) {
        ota_witness_round_missing(p->round, msg, sizeof(msg));
        rc = failed(p, &v, res, det);
        if (rc != 0)
            return rc;
        if (res->kept && p->nappended > 0)
            ota_detail_set(det,
                           "checkpoint of size %" PRIu64 " not cosigned by: %.400s; the entries "
                           "stay logged, unpublished, as %zu witness(es) may hold them: publish "
                           "again when the witnesses are back",
                           p->new_size, msg, v.ncosigned + v.nheld);
        else
            ota_detail_set(det, "checkpoint of size %" PRIu64 " not cosigned by: %s", p->new_size,
                           msg);
        return OTA_ERR_QUORUM;
    }
    /* P5 */
    rc = ota_witness_round_cosign(p->round, &p->note);
    if (rc == 0)
        rc = p->log->ops->begin(p->log, det);
    if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < p->round->n; i++) {
            if (p->round->w[i].outcome == OTA_WITNESS_COSIGNED)
                rc = p->log->ops->witness_put(p->log, p->round->w[i].pw->name, p->new_size, det);
        }
        if (rc == 0)
            rc = p->log->ops->checkpoint_put(p->log, p->note.data, p->note.len, det);
        if (rc == 0 && p->root_cp >= 2) {
            struct ota_buf b;
            char name[48];

            snprintf(name, sizeof(name), "root-checkpoint/%" PRIu64, p->root_cp);
            ota_buf_init(&b, OTA_LOG_STORE_VALUE_MAX);
            rc = p->log->ops->value_get(p->log, name, &b, det);
            if (rc == OTA_ERR_NOT_FOUND)
                rc = p->log->ops->value_put(p->log, name, p->note.data, p->note.len, det);
            ota_buf_free(&b);
        }
        in = (struct intent){true,       p->cosigned_size,      p->new_size,
                             p->root_cp, res->snapshot_version, res->targets_version};
        if (rc == 0 && !p->recosign)
            rc = intent_put(p->log, &in, det);
        if (rc == 0)
            rc = p->log->ops->commit(p->log, det);
        else
            p->log->ops->rollback(p->log);
    }
    if (rc != 0)
        return rc;
    if (p->recosign) {
        rc = r->store->ops->put(r->store, LEDGER_PUB "/checkpoint", p->note.data, p->note.len, det);
        if (rc == 0)
            rc = r->store->ops->put(r->store, "public/metadata/timestamp.json", p->ts_s.data,
                                    p->ts_s.len, det);
        return rc;
    }
    /* P6, P7 */
    return go_live(r, p->log, &in, &p->ts_s, res, det);
}

static int run(struct ota_publish *p, const struct ota_witness_transport *t,
               struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_witness_round *round = ota_publish_round(p);
    int rc = 0;

    if (round != NULL) {
        if (t == NULL || t->run == NULL) {
            ota_detail_set(det, "no way to reach the witnesses");
            rc = OTA_ERR_INVALID_ARG;
        } else {
            rc = t->run(t->ctx, round, det);
        }
    }
    /* A failed round is judged as it stands: unanswered witnesses may
     * hold the tree. */
    if (rc == 0 || round != NULL) {
        int end = ota_publish_end(p, res, det);

        if (end != 0)
            rc = end;
    }
    return rc;
}

int ota_publish(struct ota_repo *r, const struct ota_witness_transport *t,
                struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_publish *p = NULL;
    int rc = ota_publish_begin(&p, r, res, det);

    if (rc == 0 && p != NULL)
        rc = run(p, t, res, det);
    ota_publish_free(p);
    return rc;
}

int ota_refresh(struct ota_repo *r, bool force_snapshot, const struct ota_witness_transport *t,
                struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_publish *p = NULL;
    int rc = ota_refresh_begin(&p, r, force_snapshot, res, det);

    if (rc == 0)
        rc = run(p, t, res, det);
    ota_publish_free(p);
    return rc;
}
