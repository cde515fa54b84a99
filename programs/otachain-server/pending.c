/* Uploads of pending targets versions and the server's publish
 * (pending.h). */
#include "pending.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/crypto.h"
#include "otachain/publish.h"
#include "otachain/repo.h"
#include "otachain/repo_signer.h"
#include "otachain/repo_store.h"
#include "server.h"
#include "witness_driver.h"

#define WITNESS_TIMEOUT 10 /* seconds per witness request */

struct pend_job {
    struct srv_job job;
    struct srv_req *r;
    struct srv *s;
    uint8_t *body;
    size_t len;
    /* held from the judging to the end of a publish */
    int lock_fd;
    struct ota_repo_store *store;
    struct ota_repo_signer *signer;
    struct ota_repo repo;
    bool repo_open;
    struct ota_publish *pub;
    struct ota_publish_result res;
    /* outcome */
    uint64_t version;
    struct ota_repo_sigstat st;
    bool publishing;
    bool published;
};

static void release(struct pend_job *j)
{
    ota_publish_free(j->pub);
    j->pub = NULL;
    if (j->repo_open)
        ota_repo_close(&j->repo);
    j->repo_open = false;
    ota_repo_signer_close(j->signer);
    ota_repo_store_close(j->store);
    j->signer = NULL;
    j->store = NULL;
    ota_fs_unlock(&j->lock_fd);
}

static void pend_free(struct pend_job *j)
{
    release(j);
    free(j->body);
    free(j);
}

static int open_repo(struct pend_job *j, struct ota_detail *det)
{
    const char *dir = j->s->repo.dir;
    char path[4096];
    int rc;

    if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_lock(&j->lock_fd, path, 0644);
    if (rc == OTA_ERR_LOCKED) {
        ota_detail_set(det, "the repository is locked (a publish, or an otachain command on %s)",
                       dir);
        return OTA_ERR_BUSY;
    }
    if (rc == 0)
        rc = ota_repo_files_open(&j->store, dir, j->s->fs_hook, det);
    if (rc == 0)
        rc = ota_repo_keys_open(&j->signer, dir, j->s->fs_hook, det);
    if (rc == 0)
        rc = ota_repo_open(&j->repo, j->store, j->signer, srv_now(j->s), det);
    if (rc == 0)
        j->repo_open = true;
    return rc;
}

/* Every signature must be by a targets key of root and verify. */
static int check_signatures(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root,
                            struct ota_detail *det)
{
    for (size_t i = 0; i < md->nsigs; i++) {
        const struct ota_tuf_sig *sg = &md->sigs[i];
        const struct ota_tuf_key *k;

        if (!ota_repo_role_has_key(root, OTA_TUF_TARGETS, sg->keyid)) {
            ota_detail_set(det, "signature %zu: key %s is not a targets key of root v%" PRIu64, i,
                           sg->keyid, root->version);
            return OTA_ERR_KEY_NOT_IN_ROLE;
        }
        k = ota_tuf_find_key(root, sg->keyid);
        if (k == NULL || !k->usable || !sg->well_formed ||
            ota_ed25519_verify(k->pub, md->signed_canonical, md->signed_canonical_len, sg->sig) !=
                0) {
            ota_detail_set(det,
                           "the signature by targets key %s does not verify over targets v%" PRIu64
                           " (altered, or signed over other content)",
                           sg->keyid, md->version);
            return OTA_ERR_BAD_SIGNATURE;
        }
    }
    return 0;
}

/* Every target not published already with the same hash has its blob,
 * of its length, in blobs/ (named by its SHA-256: the upload checked the
 * hash; the publish's copy checks it again). */
static int check_blobs(struct pend_job *j, const struct ota_tuf_meta *md, struct ota_detail *det)
{
    const struct ota_tuf_meta *live = j->repo.targets;

    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        const struct ota_tuf_target *p = live ? ota_tuf_find_target(live, t->path) : NULL;
        char hex[OTA_SHA256_HEX_LEN + 1], path[16 + OTA_SHA256_HEX_LEN];
        bool exists = false;
        uint64_t len = 0;
        int rc;

        if (p != NULL && p->length == t->length &&
            memcmp(p->sha256, t->sha256, OTA_SHA256_LEN) == 0)
            continue;
        ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
        snprintf(path, sizeof(path), "blobs/%s", hex);
        rc = j->store->ops->stat(j->store, path, &exists, &len, det);
        if (rc != 0)
            return rc;
        if (!exists) {
            ota_detail_set(det,
                           "target %s: its blob %s was not uploaded (PUT /admin/v1/blobs/%s first)",
                           t->path, hex, hex);
            return OTA_ERR_NOT_FOUND;
        }
        if (len != t->length) {
            ota_detail_set(det,
                           "target %s: blob %s holds %" PRIu64 " bytes, the metadata says %" PRIu64,
                           t->path, hex, len, t->length);
            return OTA_ERR_LENGTH_MISMATCH;
        }
    }
    return 0;
}

/* Judges the upload and stores it as the pending targets. */
static int judge_and_store(struct pend_job *j, struct ota_detail *det)
{
    struct ota_tuf_meta *md = NULL;
    const struct ota_tuf_meta *root;
    const struct ota_tuf_meta *pend;
    uint64_t live;
    int rc;

    rc = ota_tuf_parse(&md, j->body, j->len, OTA_TUF_TARGETS, det);
    if (rc != 0) {
        ota_detail_prefix(det, "the uploaded targets metadata");
        return rc;
    }
    j->version = md->version;
    root = ota_repo_next_root(&j->repo);
    live = ota_repo_published_targets_version(&j->repo);
    pend = j->repo.pend_targets_stale ? NULL : j->repo.pend_targets_md;
    if (root == NULL) {
        ota_detail_set(det, "the repository was never published (repo publish first)");
        rc = OTA_ERR_NOT_FOUND;
    } else if (md->version <= live) {
        ota_detail_set(det, "targets v%" PRIu64 " is not above the published v%" PRIu64,
                       md->version, live);
        rc = OTA_ERR_ROLLBACK;
    } else if (pend != NULL && md->version < pend->version) {
        ota_detail_set(det, "targets v%" PRIu64 " is pending already; v%" PRIu64 " is older",
                       pend->version, md->version);
        rc = OTA_ERR_ROLLBACK;
    }
    if (rc == 0)
        rc = check_signatures(md, root, det);
    if (rc == 0)
        rc = check_blobs(j, md, det);
    if (rc == 0 && pend != NULL && pend->version == md->version) {
        const struct ota_tuf_meta *roots[1] = {root};
        struct ota_repo_dropped dropped[OTA_TUF_MAX_SIGS];
        size_t added = 0, ndropped = 0;

        rc = ota_repo_merge(&j->repo, OTA_TUF_TARGETS, j->body, j->len, roots, 1, &added, dropped,
                            &ndropped, det);
        if (rc == OTA_ERR_FORMAT) {
            ota_detail_set(det,
                           "targets v%" PRIu64 " is pending with other signed content: sign that "
                           "one, or upload a higher version",
                           md->version);
            rc = OTA_ERR_EXISTS;
        }
        if (rc == 0)
            rc = ota_repo_set_pending(&j->repo, OTA_TUF_TARGETS, j->repo.pend_targets, det);
    } else if (rc == 0) {
        rc = ota_repo_set_pending(&j->repo, OTA_TUF_TARGETS, md->doc, det);
    }
    ota_tuf_meta_free(md);
    if (rc == 0)
        ota_repo_sigstat(&j->st, j->repo.pend_targets_md, root, OTA_TUF_TARGETS);
    return rc;
}

static void end_done(struct srv_job *job);
static int end_run(struct srv_job *job, struct ota_fleet_store *store, struct ota_detail *det);

/* On the file thread. */
static int upload_run(struct srv_job *job, struct ota_fleet_store *store, struct ota_detail *det)
{
    struct pend_job *j = (struct pend_job *)job;
    int rc;

    (void)store;
    rc = open_repo(j, det);
    if (rc == 0)
        rc = judge_and_store(j, det);
    if (rc == 0 && ota_repo_sigstat_met(&j->st)) {
        j->publishing = true;
        rc = ota_publish_begin(&j->pub, &j->repo, &j->res, det);
        if (rc != 0)
            ota_detail_prefix(det, "stored as pending; the publish did not start");
    }
    if (rc == 0 && j->publishing && j->pub != NULL && ota_publish_round(j->pub) == NULL)
        rc = end_run(job, NULL, det); /* nothing to ask: no ledger */
    if (rc != 0 || !j->publishing || j->pub == NULL)
        release(j);
    return rc;
}

/* On the file thread: judge the round, make it live, reload. */
static int end_run(struct srv_job *job, struct ota_fleet_store *store, struct ota_detail *det)
{
    struct pend_job *j = (struct pend_job *)job;
    struct ota_detail rdet = {{0}};
    int rc;

    (void)store;
    rc = ota_publish_end(j->pub, &j->res, det);
    if (rc == 0)
        j->published = true;
    release(j);
    if (rc == 0 && srv_repo_reload(&j->s->repo, &rdet) != 0)
        srv_log(j->s->log, "error", "repository", "reload after publish failed: %s", rdet.msg);
    return rc;
}

static json_t *keyids_json(const char (*ids)[OTA_KEYID_SIZE], size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(ids[i]));
    return a;
}

static void reply_outcome(struct pend_job *j, int rc, const char *msg)
{
    struct srv_req *r = j->r;
    char detail[OTA_DETAIL_LEN + 64];
    char object[32];
    json_t *sigs, *pubd;

    snprintf(object, sizeof(object), "targets v%" PRIu64, j->version);
    if (rc != 0) {
        srv_audit(j->s, r->actor, "targets.upload", object, ota_errname(rc), msg);
        srv_reply_error(r, srv_status_of(rc), rc, "%s", msg);
        return;
    }
    ota_repo_sigstat_text(detail, sizeof(detail), &j->st);
    sigs = json_pack("{s:I,s:I,s:o,s:o}", "valid", (json_int_t)j->st.nvalid, "threshold",
                     (json_int_t)j->st.threshold, "signed", keyids_json(j->st.valid, j->st.nvalid),
                     "missing", keyids_json(j->st.able, j->st.nable));
    if (j->published) {
        snprintf(detail, sizeof(detail),
                 "published: targets v%" PRIu64 ", snapshot v%" PRIu64 ", timestamp v%" PRIu64
                 ", checkpoint size %" PRIu64 ", %zu witnesses cosigned",
                 j->res.targets_version, j->res.snapshot_version, j->res.timestamp_version,
                 j->res.checkpoint_size, j->res.ncosigned);
        srv_audit(j->s, r->actor, "targets.publish", object, "ok", detail);
        pubd = json_object();
        if (pubd != NULL) {
            json_object_set_new(pubd, "snapshot",
                                json_integer((json_int_t)j->res.snapshot_version));
            json_object_set_new(pubd, "timestamp",
                                json_integer((json_int_t)j->res.timestamp_version));
            json_object_set_new(pubd, "checkpoint",
                                j->res.ledger ? json_integer((json_int_t)j->res.checkpoint_size)
                                              : json_null());
            json_object_set_new(pubd, "cosigned",
                                j->res.ledger ? json_integer((json_int_t)j->res.ncosigned)
                                              : json_null());
        }
        srv_reply_json(r, 200,
                       json_pack("{s:I,s:b,s:o,s:o}", "version", (json_int_t)j->version,
                                 "published", 1, "signatures", sigs, "publish", pubd));
        return;
    }
    srv_audit(j->s, r->actor, "targets.upload", object, "pending", detail);
    srv_reply_json(r, 200,
                   json_pack("{s:I,s:b,s:o,s:n,s:s}", "version", (json_int_t)j->version,
                             "published", 0, "signatures", sigs, "publish", "message", detail));
}

static void end_done(struct srv_job *job)
{
    struct pend_job *j = (struct pend_job *)job;

    reply_outcome(j, job->rc, job->det.msg);
    pend_free(j);
}

/* On the loop: every witness answered or failed. */
static void round_done(void *ctx)
{
    struct pend_job *j = ctx;

    j->job.run = end_run;
    j->job.done = end_done;
    j->job.rc = 0;
    j->job.det.msg[0] = '\0';
    if (srv_db_submit(j->s->io, &j->job) != 0) {
        /* The file thread stopped (shutting down): the tree stays logged,
         * nothing is public; the next publish completes or drops it. */
        release(j);
        reply_outcome(j, OTA_ERR_BUSY, "the server is stopping; nothing was published");
        pend_free(j);
    }
}

static void upload_done(struct srv_job *job)
{
    struct pend_job *j = (struct pend_job *)job;

    if (job->rc == 0 && j->publishing && j->pub != NULL && !j->published) {
        struct ota_witness_round *round = ota_publish_round(j->pub);
        if (j->s->dns == NULL)
            j->s->dns = evdns_base_new(j->s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (srv_wdrv_start(j->s->base, j->s->dns, round, WITNESS_TIMEOUT, round_done, j) == 0)
            return;
        round_done(j); /* out of memory: judged with nobody asked */
        return;
    }
    reply_outcome(j, job->rc, job->det.msg);
    pend_free(j);
}

void srv_pending_targets(struct srv_req *r)
{
    struct pend_job *j = calloc(1, sizeof(*j));
    const uint8_t *body;
    size_t len = 0;

    if (j == NULL) {
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    j->r = r;
    j->s = r->srv;
    j->lock_fd = -1;
    body = srv_body(r, &len);
    if (body == NULL || len == 0) {
        free(j);
        srv_reply_error(r, 400, OTA_ERR_FORMAT, "the body must be targets metadata (JSON)");
        return;
    }
    j->body = malloc(len);
    if (j->body == NULL) {
        free(j);
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    memcpy(j->body, body, len);
    j->len = len;
    j->job.run = upload_run;
    j->job.done = upload_done;
    if (srv_db_submit(j->s->io, &j->job) != 0) {
        pend_free(j);
        srv_reply_error(r, 503, OTA_ERR_BUSY, "the file queue is full");
    }
}
