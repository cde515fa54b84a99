/* The server's view of the repository it hosts (repository.h). */
#include "repository.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fsutil.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tiles.h"
#include "otachain/tuf.h"

#define NOTE_MAX (1u << 20)

static void state_free(struct srv_repo_state *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ntargets; i++) {
        free(s->targets[i].path);
        free(s->targets[i].file);
    }
    free(s->targets);
    free(s->releases);
    free(s->release_target);
    free(s->checkpoint);
    free(s->timestamp_bytes);
    free(s->checkpoint_bytes);
    srv_bundle_cache_free(s->bundles);
    free(s);
}

/* Reads and parses metadata/name; with keep, its bytes are handed over
 * to *keep (and *keep_len) on success. */
static int read_meta_keep(struct ota_tuf_meta **out, uint8_t **keep, size_t *keep_len,
                          const char *pub, const char *name, enum ota_tuf_role role, size_t cap,
                          struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/metadata/%s", pub, name) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_read(&data, &len, path, cap);
    if (rc == 0)
        rc = ota_tuf_parse(out, data, len, role, det);
    if (rc == 0 && keep != NULL) {
        *keep = data;
        *keep_len = len;
        data = NULL;
    }
    free(data);
    if (rc != 0)
        ota_detail_prefix(det, path);
    return rc;
}

static int read_meta(struct ota_tuf_meta **out, const char *pub, const char *name,
                     enum ota_tuf_role role, size_t cap, struct ota_detail *det)
{
    return read_meta_keep(out, NULL, NULL, pub, name, role, cap, det);
}

static int cmp_target(const void *a, const void *b)
{
    return memcmp(((const struct srv_target *)a)->sha256, ((const struct srv_target *)b)->sha256,
                  OTA_SHA256_LEN);
}

static int load_targets(struct srv_repo_state *s, const struct ota_tuf_meta *tg,
                        struct ota_detail *det)
{
    size_t nrel = 0;

    s->targets = calloc(tg->ntargets ? tg->ntargets : 1, sizeof(*s->targets));
    if (s->targets == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < tg->ntargets; i++) {
        struct srv_target *t = &s->targets[s->ntargets];
        const struct ota_tuf_target *tt = &tg->targets[i];
        char *file = NULL;
        int rc;

        memcpy(t->sha256, tt->sha256, OTA_SHA256_LEN);
        t->length = tt->length;
        t->path = strdup(tt->path);
        rc = ota_tuf_target_file_path(&file, tt);
        if (t->path == NULL || rc != 0) {
            free(t->path);
            free(file);
            return OTA_ERR_NOMEM;
        }
        t->file = malloc(strlen(file) + sizeof("targets/"));
        if (t->file == NULL) {
            free(t->path);
            free(file);
            return OTA_ERR_NOMEM;
        }
        snprintf(t->file, strlen(file) + sizeof("targets/"), "targets/%s", file);
        free(file);
        s->ntargets++;
        if (tt->custom != NULL && json_object_get(tt->custom, "product") != NULL)
            nrel++;
    }
    s->releases = calloc(nrel ? nrel : 1, sizeof(*s->releases));
    s->release_target = calloc(nrel ? nrel : 1, sizeof(*s->release_target));
    if (s->releases == NULL || s->release_target == NULL)
        return OTA_ERR_NOMEM;
    qsort(s->targets, s->ntargets, sizeof(*s->targets), cmp_target);
    for (size_t i = 0; i < tg->ntargets; i++) {
        const struct ota_tuf_target *tt = &tg->targets[i];
        struct ota_detail rdet;

        if (tt->custom == NULL || json_object_get(tt->custom, "product") == NULL ||
            strlen(tt->path) > OTA_CHECKIN_TARGET_MAX)
            continue;
        /* A target whose custom is not a valid release is not offered
         * (a device would refuse it too); the rest still are. */
        if (ota_release_from_target(&s->releases[s->nreleases], tt, &rdet) != 0 ||
            strlen(s->releases[s->nreleases].index) > OTA_CHECKIN_TARGET_MAX)
            continue;
        s->release_target[s->nreleases] = srv_repo_find(s, tt->sha256);
        if (s->release_target[s->nreleases] != NULL)
            s->nreleases++;
    }
    (void)det;
    return 0;
}

/* The newest root version: root.json is a copy of it. */
static int load_root_version(struct srv_repo_state *s, const char *pub, struct ota_detail *det)
{
    struct ota_tuf_meta *root = NULL;
    int rc = read_meta(&root, pub, "root.json", OTA_TUF_ROOT, OTA_TUF_ROOT_MAX_LEN, det);

    if (rc == 0)
        s->root_version = root->version;
    ota_tuf_meta_free(root);
    return rc;
}

static int load_checkpoint(struct srv_repo_state *s, const char *pub, struct ota_detail *det)
{
    char path[PATH_MAX];
    struct ota_note *note = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    if (snprintf(path, sizeof(path), "%s/ledger/checkpoint", pub) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_read(&data, &len, path, NOTE_MAX);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0; /* no ledger */
    s->checkpoint = calloc(1, sizeof(*s->checkpoint));
    if (rc == 0 && s->checkpoint == NULL)
        rc = OTA_ERR_NOMEM;
    if (rc == 0)
        rc = ota_note_parse(&note, data, len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(s->checkpoint, note->text, note->text_len, det);
    ota_note_free(note);
    if (rc != 0) {
        free(data);
        ota_detail_prefix(det, path);
        return rc;
    }
    s->checkpoint_bytes = data;
    s->checkpoint_len = len;
    s->has_checkpoint = true;
    return 0;
}

static int load_state(struct srv_repo_state **out, const char *pub, struct ota_detail *det)
{
    struct srv_repo_state *s = calloc(1, sizeof(*s));
    struct ota_tuf_meta *ts = NULL, *snap = NULL, *tg = NULL;
    const struct ota_tuf_metafile *mf;
    char name[64];
    int rc;

    *out = NULL;
    if (s == NULL)
        return OTA_ERR_NOMEM;
    atomic_init(&s->refs, 1);
    s->bundles = srv_bundle_cache_new();
    if (s->bundles == NULL) {
        free(s);
        return OTA_ERR_NOMEM;
    }
    rc = read_meta_keep(&ts, &s->timestamp_bytes, &s->timestamp_len, pub, "timestamp.json",
                        OTA_TUF_TIMESTAMP, OTA_TUF_TIMESTAMP_MAX_LEN, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        /* Never published: an empty state. */
        *out = s;
        return 0;
    }
    if (rc == 0) {
        mf = ota_tuf_find_meta(ts, "snapshot.json");
        snprintf(name, sizeof(name), "%llu.snapshot.json", (unsigned long long)mf->version);
        rc = read_meta(&snap, pub, name, OTA_TUF_SNAPSHOT, OTA_TUF_SNAPSHOT_MAX_LEN, det);
    }
    if (rc == 0) {
        mf = ota_tuf_find_meta(snap, "targets.json");
        if (mf == NULL) {
            ota_detail_set(det, "snapshot v%llu pins no targets.json",
                           (unsigned long long)snap->version);
            rc = OTA_ERR_FORMAT;
        } else {
            snprintf(name, sizeof(name), "%llu.targets.json", (unsigned long long)mf->version);
            rc = read_meta(&tg, pub, name, OTA_TUF_TARGETS, OTA_TUF_TARGETS_MAX_LEN, det);
        }
    }
    if (rc == 0) {
        s->published = true;
        s->timestamp_version = ts->version;
        s->timestamp_expires = ts->expires;
        s->snapshot_version = snap->version;
        s->targets_version = tg->version;
        rc = load_targets(s, tg, det);
    }
    if (rc == 0)
        rc = load_root_version(s, pub, det);
    if (rc == 0)
        rc = load_checkpoint(s, pub, det);
    ota_tuf_meta_free(ts);
    ota_tuf_meta_free(snap);
    ota_tuf_meta_free(tg);
    if (rc != 0) {
        state_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void stat_pair(struct srv_repo *r, struct stat *ts, struct stat *cp)
{
    char path[PATH_MAX];

    memset(ts, 0, sizeof(*ts));
    memset(cp, 0, sizeof(*cp));
    snprintf(path, sizeof(path), "%s/metadata/timestamp.json", r->public_dir);
    (void)stat(path, ts);
    snprintf(path, sizeof(path), "%s/ledger/checkpoint", r->public_dir);
    (void)stat(path, cp);
}

static bool same(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

bool srv_repo_changed(struct srv_repo *r)
{
    struct stat ts, cp;
    bool changed;

    stat_pair(r, &ts, &cp);
    pthread_mutex_lock(&r->mu);
    changed = !same(&ts, &r->ts_st) || !same(&cp, &r->cp_st);
    pthread_mutex_unlock(&r->mu);
    return changed;
}

int srv_repo_reload(struct srv_repo *r, struct ota_detail *det)
{
    struct srv_repo_state *s = NULL;
    struct srv_repo_state *old;
    struct stat ts, cp;
    int rc;

    stat_pair(r, &ts, &cp);
    rc = load_state(&s, r->public_dir, det);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&r->mu);
    old = r->cur;
    r->cur = s;
    r->ts_st = ts;
    r->cp_st = cp;
    pthread_mutex_unlock(&r->mu);
    srv_repo_put(old);
    return 0;
}

int srv_repo_open(struct srv_repo *r, const char *dir, struct ota_detail *det)
{
    size_t n = strlen(dir) + sizeof("/public");
    int rc;

    memset(r, 0, sizeof(*r));
    r->dir = strdup(dir);
    r->public_dir = malloc(n);
    if (r->dir == NULL || r->public_dir == NULL) {
        free(r->dir);
        free(r->public_dir);
        return OTA_ERR_NOMEM;
    }
    snprintf(r->public_dir, n, "%s/public", dir);
    pthread_mutex_init(&r->mu, NULL);
    rc = srv_repo_reload(r, det);
    if (rc != 0)
        srv_repo_close(r);
    return rc;
}

void srv_repo_close(struct srv_repo *r)
{
    if (r->dir == NULL)
        return;
    srv_repo_put(r->cur);
    pthread_mutex_destroy(&r->mu);
    free(r->dir);
    free(r->public_dir);
    memset(r, 0, sizeof(*r));
}

struct srv_repo_state *srv_repo_get(struct srv_repo *r)
{
    struct srv_repo_state *s;

    pthread_mutex_lock(&r->mu);
    s = r->cur;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&r->mu);
    return s;
}

void srv_repo_put(struct srv_repo_state *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        state_free(s);
}

const struct srv_target *srv_repo_find(const struct srv_repo_state *s,
                                       const uint8_t sha256[OTA_SHA256_LEN])
{
    struct srv_target key;

    if (s->ntargets == 0)
        return NULL;
    memcpy(key.sha256, sha256, OTA_SHA256_LEN);
    return bsearch(&key, s->targets, s->ntargets, sizeof(*s->targets), cmp_target);
}

long srv_repo_assign(const struct srv_repo_state *s, const struct ota_checkin *report,
                     bool (*failed)(void *ctx, const char *target), void *ctx)
{
    struct ota_semver running;
    struct ota_release_device dev = {report->product, report->hardware, &running, 0};
    long best = -1;

    if (ota_semver_parse(&running, report->version, strlen(report->version), NULL) != 0)
        return -1;
    for (size_t i = 0; i < s->nreleases; i++) {
        const struct ota_release *rel = &s->releases[i];

        /* The device checks its security floor itself; the server does
         * not know it (0 here). */
        if (ota_release_may_install(rel, &dev, NULL) != 0)
            continue;
        if (failed != NULL && failed(ctx, s->release_target[i]->path))
            continue;
        if (best < 0 || ota_semver_compare(&rel->version, &s->releases[best].version) > 0)
            best = (long)i;
    }
    return best;
}

void srv_repo_assignment(struct ota_checkin_assignment *a, const struct srv_repo_state *s, long i)
{
    const struct ota_release *rel = &s->releases[i];
    const struct srv_target *t = s->release_target[i];

    memset(a, 0, sizeof(*a));
    snprintf(a->target, sizeof(a->target), "%s", t->path);
    snprintf(a->version, sizeof(a->version), "%s", rel->version.text);
    a->security_version = rel->security_version;
    a->length = t->length;
    memcpy(a->sha256, t->sha256, OTA_SHA256_LEN);
    /* Release indexes longer than a check-in target were not loaded. */
    snprintf(a->index, sizeof(a->index), "%.255s", rel->index);
}

int srv_log_root_at(uint8_t root[32], struct ota_log_store *ls, uint64_t size,
                    struct ota_detail *det)
{
    struct ota_tiles_source ts;
    struct ota_tiles_reader rd;
    struct ota_tiles_slot *slots = calloc(16, sizeof(*slots));
    int rc;

    if (slots == NULL)
        return OTA_ERR_NOMEM;
    ota_log_store_tiles_reader(&rd, ls);
    rc = ota_tiles_source_init(&ts, size, &rd, slots, 16);
    if (rc == 0)
        rc = ota_merkle_root(root, size, &ts.src, det);
    free(slots);
    return rc;
}

int srv_repo_check_log(struct ota_log_store **out, struct srv_repo *r, struct ota_detail *det)
{
    struct srv_repo_state *st = srv_repo_get(r);
    struct ota_log_store *ls = NULL;
    struct ota_checkpoint *stored = NULL;
    struct ota_note *note = NULL;
    struct ota_buf buf;
    char path[PATH_MAX];
    uint8_t root[32];
    struct stat sb;
    uint64_t count = 0;
    int rc = 0;

    *out = NULL;
    ota_buf_init(&buf, OTA_LOG_STORE_NOTE_MAX);
    snprintf(path, sizeof(path), "%s/ledger.db", r->dir);
    if (!st->has_checkpoint) {
        /* No ledger published: nothing to be consistent with. */
        if (stat(path, &sb) == 0)
            rc = ota_log_store_sqlite_open(&ls, path, NULL, det);
        goto out;
    }
    if (stat(path, &sb) != 0) {
        ota_detail_set(det, "%s is missing, but the repository published a checkpoint of size %llu",
                       path, (unsigned long long)st->checkpoint->size);
        rc = OTA_ERR_LOG_ROLLBACK;
        goto out;
    }
    rc = ota_log_store_sqlite_open(&ls, path, NULL, det);
    if (rc == 0)
        rc = ls->ops->count(ls, &count, det);
    if (rc != 0)
        goto out;
    if (count < st->checkpoint->size) {
        ota_detail_set(det,
                       "%s holds %llu entries, but the published checkpoint has size %llu: it is "
                       "older than what was published",
                       path, (unsigned long long)count, (unsigned long long)st->checkpoint->size);
        rc = OTA_ERR_LOG_ROLLBACK;
        goto out;
    }
    rc = srv_log_root_at(root, ls, st->checkpoint->size, det);
    if (rc == 0 && !ota_ct_equal(root, st->checkpoint->root, 32)) {
        ota_detail_set(det, "%s holds another tree at size %llu than the published checkpoint",
                       path, (unsigned long long)st->checkpoint->size);
        rc = OTA_ERR_LOG_ROLLBACK;
    }
    if (rc != 0)
        goto out;
    stored = calloc(1, sizeof(*stored));
    rc = stored != NULL ? ls->ops->checkpoint_get(ls, &buf, det) : OTA_ERR_NOMEM;
    if (rc == 0)
        rc = ota_note_parse(&note, buf.data, buf.len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(stored, note->text, note->text_len, det);
    if (rc == OTA_ERR_NOT_FOUND || (rc == 0 && stored->size < st->checkpoint->size)) {
        ota_detail_set(det,
                       "%s's latest cosigned checkpoint has size %llu, the published one %llu: it "
                       "is older than what was published",
                       path, rc == 0 ? (unsigned long long)stored->size : 0ULL,
                       (unsigned long long)st->checkpoint->size);
        rc = OTA_ERR_LOG_ROLLBACK;
    }
out:
    if (rc != 0 && rc != OTA_ERR_LOG_ROLLBACK)
        ota_detail_prefix(det, path);
    ota_note_free(note);
    free(stored);
    ota_buf_free(&buf);
    srv_repo_put(st);
    if (rc != 0) {
        ota_log_store_close(ls);
        return rc;
    }
    *out = ls;
    return 0;
}
