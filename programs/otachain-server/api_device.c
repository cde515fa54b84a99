/* The device API v1 (docs/api/device-v1.md) and the repository layout
 * on the device listener. Every request becomes a database job whose
 * run() first checks that neither the caller's device id nor its
 * certificate serial is revoked (server.h invariant 2), then does the
 * route's work in the same transaction; done() answers on the loop. */
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fleet.h"
#include "server.h"

#define MAX_FAILED 1024 /* failure reports of one device considered */

enum route {
    R_CHECKIN,
    R_UPDATE,
    R_DOWNLOAD,
    R_DEVICE,
    R_CERTIFICATE,
    R_FILES,
};

struct dev_job {
    struct srv_job job;
    struct srv_req *r;
    enum route route;
    struct srv_repo_state *st;
    /* inputs */
    struct ota_checkin report; /* check-in body, or the query's state */
    bool override;             /* update: the query names the state */
    uint8_t sha256[OTA_SHA256_LEN];
    uint8_t *csr;
    size_t csr_len;
    /* outputs */
    struct ota_fleet_checkin_result res;
    struct ota_fleet_device dev;
    long assign;
    char **failed;
    size_t nfailed;
    bool flagged;
    struct ota_buf cert;       /* renewed certificate */
    struct srv_bundle *bundle; /* the check-in's proof bundle, or NULL */
};

static void job_free(struct dev_job *j)
{
    for (size_t i = 0; i < j->nfailed; i++)
        free(j->failed[i]);
    free(j->failed);
    free(j->csr);
    ota_buf_free(&j->cert);
    srv_bundle_put(j->bundle);
    srv_repo_put(j->st);
    free(j);
}

static int collect_failed(void *ctx, const char *target)
{
    struct dev_job *j = ctx;
    char **nf;

    if (j->nfailed >= MAX_FAILED)
        return 0;
    nf = realloc(j->failed, (j->nfailed + 1) * sizeof(*nf));
    if (nf == NULL)
        return OTA_ERR_NOMEM;
    j->failed = nf;
    j->failed[j->nfailed] = strdup(target);
    if (j->failed[j->nfailed] == NULL)
        return OTA_ERR_NOMEM;
    j->nfailed++;
    return 0;
}

static bool is_failed(void *ctx, const char *target)
{
    struct dev_job *j = ctx;

    for (size_t i = 0; i < j->nfailed; i++) {
        if (strcmp(j->failed[i], target) == 0)
            return true;
    }
    return false;
}

/* The device's checkpoint against the log: a size beyond the log, or
 * another root at the log's size, is a split view shown by someone. */
static int check_checkpoint(struct dev_job *j, struct ota_fleet_store *s, int64_t now,
                            struct ota_detail *det)
{
    const struct ota_checkin *c = &j->report;
    const struct ota_checkpoint *cp = j->st->checkpoint;
    struct srv *srv = j->r->srv;
    struct ota_fleet_flag f;
    int rc;

    if (!c->has_checkpoint || !j->st->has_checkpoint)
        return 0;
    memset(&f, 0, sizeof(f));
    if (c->checkpoint_size > cp->size)
        snprintf(f.reason, sizeof(f.reason), "size %" PRIu64 " is beyond the log (%" PRIu64 ")",
                 c->checkpoint_size, cp->size);
    else if (c->checkpoint_size == cp->size && !ota_ct_equal(c->checkpoint_hash, cp->root, 32))
        snprintf(f.reason, sizeof(f.reason), "another root hash than the log's at size %" PRIu64,
                 cp->size);
    else if (c->checkpoint_size < cp->size && c->checkpoint_size > 0 && srv->ledger != NULL) {
        /* An older tree: it must be the log's tree at that size. */
        if (!srv->root_cache_valid || srv->root_cache_size != c->checkpoint_size) {
            rc = srv_log_root_at(srv->root_cache, srv->ledger, c->checkpoint_size, det);
            if (rc != 0)
                return rc;
            srv->root_cache_size = c->checkpoint_size;
            srv->root_cache_valid = true;
        }
        if (ota_ct_equal(c->checkpoint_hash, srv->root_cache, 32))
            return 0;
        snprintf(f.reason, sizeof(f.reason), "another root hash than the log's at size %" PRIu64,
                 c->checkpoint_size);
    } else
        return 0;
    memcpy(f.device, j->r->device, sizeof(f.device));
    f.at = now;
    f.size = c->checkpoint_size;
    memcpy(f.hash, c->checkpoint_hash, 32);
    rc = s->ops->flag_put(s, &f, det);
    if (rc == OTA_ERR_EXISTS)
        rc = 0; /* the first evidence is kept */
    j->flagged = rc == 0;
    return rc;
}

static int renew(struct dev_job *j, struct ota_fleet_store *s, int64_t now, struct ota_detail *det)
{
    struct srv *srv = j->r->srv;
    char cn[OTA_CERT_ID_MAX + 1];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_cert_request req = {
        OTA_CERT_ROLE_DEVICE, cn, NULL, 0, NULL, 0, now, (int64_t)srv->cfg->renew_validity};
    struct ota_fleet_audit a;
    EVP_PKEY *pub = NULL;
    int rc;

    if (j->r->not_after == INT64_MAX) {
        ota_detail_set(det, "renewal needs the device's own TLS connection, not a proxy's");
        return OTA_ERR_INVALID_ARG;
    }
    if (j->r->not_after - now > (int64_t)srv->cfg->renew_window) {
        char t[24];
        ota_time_text(t, j->r->not_after - (int64_t)srv->cfg->renew_window);
        ota_detail_set(det, "the certificate is not yet due for renewal (from %s)", t);
        return OTA_ERR_EXISTS;
    }
    rc = ota_ca_csr_parse(&pub, cn, j->csr, j->csr_len, det);
    if (rc == 0 && strcmp(cn, j->r->device) != 0) {
        ota_detail_set(det, "the request names %s, the caller is %s", cn, j->r->device);
        rc = OTA_ERR_FORMAT;
    }
    if (rc == 0)
        rc = ota_ca_issue(&j->cert, serial, srv->renew_ca, pub, &req, det);
    EVP_PKEY_free(pub);
    if (rc != 0)
        return rc;
    memset(&a, 0, sizeof(a));
    a.at = now;
    snprintf(a.actor, sizeof(a.actor), "device:%s", j->r->device);
    snprintf(a.action, sizeof(a.action), "certificate.renew");
    snprintf(a.object, sizeof(a.object), "%s", serial);
    snprintf(a.outcome, sizeof(a.outcome), "ok");
    snprintf(a.detail, sizeof(a.detail), "replaces %s", j->r->serial);
    return s->ops->audit_add(s, &a, det);
}

static int dev_run(struct srv_job *job, struct ota_fleet_store *s, struct ota_detail *det)
{
    struct dev_job *j = (struct dev_job *)job;
    struct srv_req *r = j->r;
    struct ota_fleet_revocation rev;
    int64_t now = srv_now(r->srv);
    bool revoked = false;
    bool found = false;
    int rc;

    rc = s->ops->revoke_check(s, r->device, r->serial, &revoked, &rev, det);
    if (rc != 0)
        return rc;
    if (revoked) {
        char t[24];
        ota_time_text(t, rev.at);
        ota_detail_set(det, "%s %s revoked at %s%s%s",
                       rev.kind == OTA_FLEET_REVOKE_DEVICE ? "device" : "certificate", rev.id, t,
                       rev.reason[0] ? ": " : "", rev.reason);
        return OTA_ERR_REVOKED;
    }
    switch (j->route) {
    case R_CHECKIN: {
        const struct ota_fleet_retention ret = {(unsigned)r->srv->cfg->event_max_per_device};
        rc = ota_fleet_checkin(s, &j->res, r->device, r->serial, &j->report, now, &ret, det);
        if (rc == 0)
            rc = s->ops->failed_list(s, r->device, collect_failed, j, det);
        if (rc == 0)
            j->assign = srv_repo_assign(j->st, &j->report, is_failed, j);
        if (rc == 0)
            rc = check_checkpoint(j, s, now, det);
        return rc;
    }
    case R_UPDATE:
    case R_DEVICE:
        rc = s->ops->device_get(s, r->device, &j->dev, &found, det);
        if (rc == 0 && !found && !j->override) {
            ota_detail_set(det, "device %s never checked in (POST /api/v1/checkin first)",
                           r->device);
            return OTA_ERR_NOT_FOUND;
        }
        if (rc == 0)
            rc = s->ops->failed_list(s, r->device, collect_failed, j, det);
        if (rc == 0 && j->route == R_UPDATE)
            j->assign =
                srv_repo_assign(j->st, j->override ? &j->report : &j->dev.report, is_failed, j);
        return rc;
    case R_CERTIFICATE:
        return renew(j, s, now, det);
    default:
        return 0;
    }
}

static uint32_t jittered(struct srv *s)
{
    uint64_t base = s->cfg->poll_interval;
    uint64_t span = base * s->cfg->poll_jitter / 100;
    uint32_t rnd = 0;
    uint64_t v;

    if (span > 0 && RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) == 1)
        v = base - span + (uint64_t)rnd % (2 * span + 1);
    else
        v = base;
    return (uint32_t)(v > 0 ? v : 1);
}

static void reply_assignment_only(struct srv_req *r, struct dev_job *j)
{
    struct ota_checkin_reply rep;
    struct ota_buf b;
    json_t *doc;

    memset(&rep, 0, sizeof(rep));
    rep.poll_interval = 1;
    rep.has_assignment = j->assign >= 0;
    if (rep.has_assignment)
        srv_repo_assignment(&rep.assignment, j->st, j->assign);
    ota_buf_init(&b, OTA_CHECKIN_REPLY_MAX);
    /* The same assignment object as the check-in's. */
    if (ota_checkin_reply_format(&b, &rep) != 0) {
        ota_buf_free(&b);
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    doc = json_loadb((const char *)b.data, b.len, 0, NULL);
    ota_buf_free(&b);
    if (doc == NULL) {
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    json_object_del(doc, "bundle");
    json_object_del(doc, "poll_interval");
    srv_reply_json(r, 200, doc);
}

static void reply_checkin(struct dev_job *j)
{
    struct srv_req *r = j->r;
    struct ota_checkin_reply rep;
    struct ota_buf b;

    memset(&rep, 0, sizeof(rep));
    rep.poll_interval = jittered(r->srv);
    rep.has_assignment = j->assign >= 0;
    if (rep.has_assignment)
        srv_repo_assignment(&rep.assignment, j->st, j->assign);
    if (j->bundle != NULL) {
        rep.bundle = j->bundle->data;
        rep.bundle_len = j->bundle->len;
    }
    ota_buf_init(&b, OTA_CHECKIN_REPLY_MAX);
    if (ota_checkin_reply_format(&b, &rep) != 0)
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
    else
        srv_reply_data(r, 200, "application/json", b.data, b.len);
    ota_buf_free(&b);
}

/* On the file thread, outside any transaction. */
static int bundle_run(struct srv_job *job, struct ota_fleet_store *store, struct ota_detail *det)
{
    struct dev_job *j = (struct dev_job *)job;
    struct srv *s = j->r->srv;
    struct ota_bundle_request req;
    bool built = false;
    int rc;

    (void)store;
    srv_bundle_request(&req, &j->report);
    rc = srv_bundle_get(&j->bundle, &built, j->st, s->repo.public_dir, &req,
                        (size_t)s->cfg->bundle_cache_bytes, det);
    if (rc == 0)
        atomic_fetch_add(built ? &s->metrics.bundles_built : &s->metrics.bundle_hits, 1);
    else
        ota_detail_prefix(det, "the proof bundle");
    return rc;
}

static void bundle_done(struct srv_job *job)
{
    struct dev_job *j = (struct dev_job *)job;

    if (job->rc == OTA_ERR_BUNDLE_BASE || job->rc == OTA_ERR_SPLIT_VIEW ||
        job->rc == OTA_ERR_NOMEM) {
        srv_reply_error(j->r, srv_status_of(job->rc), job->rc, "%s", job->det.msg);
    } else {
        if (job->rc != 0) {
            /* The repository's own files do not make a bundle (they do
             * not match its log, or one is missing): the device gets
             * none and verifies from the repository layout, where it
             * meets the same fault itself. */
            char q[600];
            srv_metrics_error(&j->r->srv->metrics, job->rc);
            srv_log(j->r->srv->log, "error", "bundle", "device=%s error=%s detail=%s", j->r->device,
                    ota_errname(job->rc), srv_log_q(q, sizeof(q), job->det.msg));
        }
        reply_checkin(j);
    }
    job_free(j);
}

static void dev_done(struct srv_job *job)
{
    struct dev_job *j = (struct dev_job *)job;
    struct srv_req *r = j->r;
    struct srv *s = r->srv;

    if (job->rc != 0) {
        srv_reply_error(r, srv_status_of(job->rc), job->rc, "%s", job->det.msg);
        job_free(j);
        return;
    }
    switch (j->route) {
    case R_CHECKIN:
        atomic_fetch_add(&s->metrics.checkins, 1);
        if (j->res.event)
            atomic_fetch_add(&s->metrics.checkin_events, 1);
        /* Committed: now the proof bundle (bundles.h), from the cache or
         * built on the file thread (it reads the disk). */
        /* A flagged device's checkpoint is not this log's: no bundle can
         * start from it (docs/api/device-v1.md, "Checkpoints"). */
        if (!j->flagged && !srv_bundle_current(j->st, &j->report)) {
            struct ota_bundle_request req;

            srv_bundle_request(&req, &j->report);
            j->bundle = srv_bundle_lookup(j->st, &req);
            if (j->bundle != NULL) {
                atomic_fetch_add(&s->metrics.bundle_hits, 1);
            } else {
                j->job.run = bundle_run;
                j->job.done = bundle_done;
                if (srv_db_submit(s->io, &j->job) == 0)
                    return;
                srv_reply_error(r, 503, OTA_ERR_BUSY, "the bundle queue is full");
                break;
            }
        }
        reply_checkin(j);
        break;
    case R_UPDATE:
        reply_assignment_only(r, j);
        break;
    case R_DEVICE:
        srv_reply_json(
            r, 200,
            srv_device_json(&j->dev, (const char *const *)j->failed, j->nfailed, NULL, NULL));
        break;
    case R_DOWNLOAD: {
        const struct srv_target *t = srv_repo_find(j->st, j->sha256);
        char fs[PATH_MAX];
        char etag[OTA_SHA256_HEX_LEN + 1];

        if (t == NULL ||
            snprintf(fs, sizeof(fs), "%s/%s", s->repo.public_dir, t->file) >= (int)sizeof(fs)) {
            srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "no published target has this SHA-256");
            break;
        }
        ota_hex_encode(etag, t->sha256, OTA_SHA256_LEN);
        r->bytes_kind = SRV_BYTES_DOWNLOAD;
        srv_files_send(r, fs, true, etag, "application/octet-stream");
        break;
    }
    case R_CERTIFICATE:
        srv_reply_data(r, 200, "application/pem-certificate-chain", j->cert.data, j->cert.len);
        break;
    default:
        srv_files_serve(r, r->path + 1);
        break;
    }
    job_free(j);
}

static void wrong_method(struct srv_req *r, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    srv_reply_error(r, 405, OTA_ERR_INVALID_ARG, "%s takes %s", r->path, allow);
}

void srv_device_route(struct srv_req *r)
{
    struct srv *s = r->srv;
    struct dev_job *j = calloc(1, sizeof(*j));
    struct ota_detail det;
    const uint8_t *body;
    size_t len = 0;
    int rc;

    if (j == NULL) {
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    det.msg[0] = '\0';
    j->r = r;
    j->assign = -1;
    ota_buf_init(&j->cert, OTA_CA_PEM_MAX);
    j->job.run = dev_run;
    j->job.done = dev_done;
    if (strcmp(r->path, "/api/v1/checkin") == 0) {
        if (r->method != EVHTTP_REQ_POST) {
            job_free(j);
            wrong_method(r, "POST");
            return;
        }
        j->route = R_CHECKIN;
        body = srv_body(r, &len);
        /* Parsed here, on the loop: CPU only, and a malformed body never
         * reaches the database. */
        rc = ota_checkin_parse(&j->report, body ? (const void *)body : "", len, &det);
        if (rc != 0) {
            job_free(j);
            srv_reply_error(r, srv_status_of(rc), rc, "%s", det.msg);
            return;
        }
    } else if (strcmp(r->path, "/api/v1/update") == 0) {
        char p[OTA_CHECKIN_NAME_MAX + 1], h[OTA_CHECKIN_NAME_MAX + 1],
            v[OTA_CHECKIN_VERSION_MAX + 1];
        if (r->method != EVHTTP_REQ_GET) {
            job_free(j);
            wrong_method(r, "GET");
            return;
        }
        j->route = R_UPDATE;
        if (!srv_query(r, "product", p, sizeof(p)) || !srv_query(r, "hardware", h, sizeof(h)) ||
            !srv_query(r, "version", v, sizeof(v)) ||
            (p[0] || h[0] || v[0]) != (p[0] && h[0] && v[0]) ||
            (p[0] && (!ota_checkin_name_valid(p, strlen(p), OTA_CHECKIN_NAME_MAX) ||
                      !ota_checkin_name_valid(h, strlen(h), OTA_CHECKIN_NAME_MAX) ||
                      !ota_checkin_version_valid(v, strlen(v))))) {
            job_free(j);
            srv_reply_error(r, 400, OTA_ERR_FORMAT,
                            "product, hardware and version: all three or none, each valid");
            return;
        }
        if (p[0]) {
            j->override = true;
            memcpy(j->report.product, p, strlen(p) + 1);
            memcpy(j->report.hardware, h, strlen(h) + 1);
            memcpy(j->report.version, v, strlen(v) + 1);
        }
    } else if (strncmp(r->path, "/api/v1/download/", 17) == 0) {
        const char *hex = r->path + 17;
        if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
            job_free(j);
            wrong_method(r, "GET, HEAD");
            return;
        }
        j->route = R_DOWNLOAD;
        if (strlen(hex) != OTA_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != 64 ||
            ota_hex_decode(j->sha256, 32, hex) != 0) {
            job_free(j);
            srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "a download id is 64 lowercase hex digits");
            return;
        }
    } else if (strcmp(r->path, "/api/v1/device") == 0) {
        if (r->method != EVHTTP_REQ_GET) {
            job_free(j);
            wrong_method(r, "GET");
            return;
        }
        j->route = R_DEVICE;
    } else if (strcmp(r->path, "/api/v1/certificate") == 0) {
        if (r->method != EVHTTP_REQ_POST) {
            job_free(j);
            wrong_method(r, "POST");
            return;
        }
        if (s->renew_ca == NULL) {
            job_free(j);
            srv_reply_error(r, 404, OTA_ERR_NOT_FOUND,
                            "certificate renewal is not enabled on this server");
            return;
        }
        j->route = R_CERTIFICATE;
        body = srv_body(r, &len);
        j->csr = malloc(len + 1);
        if (body == NULL || j->csr == NULL) {
            job_free(j);
            srv_reply_error(r, 400, OTA_ERR_FORMAT, "the body must be a PEM certificate request");
            return;
        }
        memcpy(j->csr, body, len);
        j->csr_len = len;
    } else if (strncmp(r->path, "/api/", 5) == 0) {
        job_free(j);
        srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "no such route in the device API v1");
        return;
    } else {
        j->route = R_FILES;
    }
    j->st = srv_repo_get(&s->repo);
    rc = srv_db_submit(s->db, &j->job);
    if (rc != 0) {
        job_free(j);
        srv_reply_error(r, 503, rc, "the database queue is full");
    }
}
