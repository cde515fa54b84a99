/* The TUF client workflow (spec 1.0.31 §5.3–§5.7); contract and invariants
 * in tuf_client.h.
 *
 * Order of checks for each fetched file, the same for every role:
 *   fetch (capped) → pinned length/hash → parse (schema, _type) → threshold
 *   of signatures → version pinned by the referring role → rollback against
 *   the trusted copy → expiry → persist → trust in memory.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/crypto.h"

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

struct trusted {
    struct ota_tuf_meta *md; /* NULL when none is trusted */
    uint64_t len;            /* bytes of the file as stored */
    uint8_t sha256[OTA_SHA256_LEN];
};

struct ota_tuf_client {
    char *state_dir;
    int lock_fd;       /* flock on <state_dir>/.lock, held until free */
    int64_t fixed_now; /* opts.now: 0 means the clock */
    unsigned max_root_rotations;
    uint64_t root_max_len;
    uint64_t timestamp_max_len;
    uint64_t snapshot_max_len;
    uint64_t targets_max_len;
    struct ota_fs_hook hook;
    bool has_hook;
    struct trusted t[OTA_TUF_ROLE_COUNT];
    bool refreshed; /* the last refresh went through targets */
    int64_t now;    /* fixed at the start of each refresh */
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

/* Fetches a metadata file into out, capped at max (also by the buffer, in
 * case a fetcher ignores its cap). On failure out is empty. */
static int fetch_meta(struct ota_buf *out, const struct ota_fetcher *f, const char *name,
                      uint64_t max, struct ota_detail *det)
{
    ota_buf_init(out, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
    if (det)
        det->msg[0] = '\0';
    int rc = f->fetch(f->ctx, OTA_FETCH_METADATA, name, max, ota_sink_buf, out, det);
    if (rc != 0) {
        ota_buf_free(out);
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
    int rc = fetch_meta(&b, f, name, c->root_max_len, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        if (det)
            det->msg[0] = '\0';
        return 0;
    }
    if (rc != 0)
        return rc;
    *found = true;

    struct ota_tuf_meta *md = NULL;
    struct ota_detail inner = {{0}};
    rc = parse_meta(&md, &b, OTA_TUF_ROOT, name, det);
    if (rc != 0)
        goto out;
    rc = ota_tuf_verify_role(md, old, OTA_TUF_ROOT, &inner);
    if (rc != 0) {
        ota_detail_set(det, "%s: not signed by the threshold of trusted root v%llu (%s)", name,
                       (unsigned long long)old->version, inner.msg);
        goto out;
    }
    rc = ota_tuf_verify_role(md, md, OTA_TUF_ROOT, &inner);
    if (rc != 0) {
        ota_detail_set(det, "%s: not signed by the threshold of its own root role (%s)", name,
                       inner.msg);
        goto out;
    }
    if (md->version != v) {
        ota_detail_set(det, "%s: holds root version %llu, expected %llu", name,
                       (unsigned long long)md->version, (unsigned long long)v);
        rc = OTA_ERR_VERSION_MISMATCH;
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
    ota_tuf_meta_free(md);
    ota_buf_free(&b);
    return rc;
}

static int update_root(struct ota_tuf_client *c, const struct ota_fetcher *f,
                       struct ota_detail *det)
{
    for (unsigned i = 0; i < c->max_root_rotations; i++) {
        if (c->t[OTA_TUF_ROOT].md->version == UINT64_MAX)
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
    int rc = fetch_meta(&b, f, name, c->timestamp_max_len, det);
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
            rc = check_expiry(old, c->now, name, det);
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
    rc = check_expiry(md, c->now, name, det);
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
        return check_expiry(c->t[role].md, c->now, name, det);

    struct ota_buf b;
    uint64_t max = mf->has_length ? mf->length : default_max;
    int rc = fetch_meta(&b, f, name, max, det);
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
    rc = check_expiry(md, c->now, name, det);
    if (rc != 0)
        goto out;
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
    return update_pinned(c, f, OTA_TUF_SNAPSHOT, mf, ts, c->snapshot_max_len, det);
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

int ota_tuf_client_refresh(struct ota_tuf_client *c, const struct ota_fetcher *f,
                           struct ota_detail *det)
{
    if (c == NULL || f == NULL || f->fetch == NULL) {
        ota_detail_set(det, "no client or fetcher");
        return OTA_ERR_INVALID_ARG;
    }
    if (det)
        det->msg[0] = '\0';
    c->refreshed = false;
    c->now = c->fixed_now ? c->fixed_now : (int64_t)time(NULL);

    int rc = update_root(c, f, det);
    if (rc != 0)
        return rc;
    const struct ota_tuf_meta *root = c->t[OTA_TUF_ROOT].md;
    rc = check_expiry(root, c->now, "root.json", det);
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
    if (rc == 0)
        c->refreshed = true;
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
    c->lock_fd = open((const char *)b.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        ota_detail_set(det, "%s: %s", (const char *)b.data, strerror(errno));
        ota_buf_free(&b);
        return OTA_ERR_IO;
    }
    int rc = 0;
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? OTA_ERR_LOCKED : OTA_ERR_IO;
        ota_detail_set(det, "%s: %s", (const char *)b.data,
                       rc == OTA_ERR_LOCKED ? "another client is using this state directory"
                                            : strerror(errno));
    }
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
    struct ota_tuf_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OTA_ERR_NOMEM;
    c->lock_fd = -1;
    c->state_dir = strdup(opts->state_dir);
    if (c->state_dir == NULL) {
        free(c);
        return OTA_ERR_NOMEM;
    }
    c->fixed_now = opts->now;
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

    int rc = ota_fs_mkdirs(c->state_dir, STATE_DIR_MODE);
    if (rc != 0) {
        ota_detail_set(det, "%s: cannot create the state directory", c->state_dir);
        goto fail;
    }
    rc = lock_state(c, det);
    if (rc != 0)
        goto fail;
    rc = load_root(c, bootstrap_root, bootstrap_len, det);
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

void ota_tuf_client_free(struct ota_tuf_client *c)
{
    if (c == NULL)
        return;
    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++)
        trusted_drop(c, (enum ota_tuf_role)r);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock */
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
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(d->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            d->write_errno = errno;
            return OTA_ERR_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
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
