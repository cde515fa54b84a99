/* The admin API v1 and /metrics (docs/api/admin-v1.md). A request with a
 * token becomes a database job whose run() first finds the token, checks
 * it is not revoked and has the route's scope, then does the route's
 * work in the same transaction (every change with its audit row);
 * done() answers on the loop. Refused changes are audited too. */
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/cjson.h"
#include "otachain/fleet.h"
#include "otachain/upload.h"
#include "pending.h"
#include "server.h"

enum aroute {
    A_METRICS,
    A_STATUS,
    A_DEVICES,
    A_DEVICE,
    A_EVENTS,
    A_DEVICE_REVOKE,
    A_CERT_REVOKE,
    A_REVOCATIONS,
    A_FLAGS,
    A_FLAG_CLEAR,
    A_RELEASES,
    A_NEWEST,
    A_TOKENS,
    A_TOKEN_CREATE,
    A_TOKEN_REVOKE,
    A_AUDIT,
    A_BLOB_PUT,
    A_BLOB_GET,
    A_PENDING_TARGETS,
};

/* What each route needs, and whether it changes something (audited). */
static const struct {
    unsigned scope;
    const char *action; /* NULL: a read */
} route_info[] = {
    [A_METRICS] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_STATUS] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_DEVICES] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_DEVICE] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_EVENTS] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_DEVICE_REVOKE] = {OTA_FLEET_SCOPE_ADMIN, "device.revoke"},
    [A_CERT_REVOKE] = {OTA_FLEET_SCOPE_ADMIN, "certificate.revoke"},
    [A_REVOCATIONS] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_FLAGS] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_FLAG_CLEAR] = {OTA_FLEET_SCOPE_ADMIN, "flag.clear"},
    [A_RELEASES] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_NEWEST] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_TOKENS] = {OTA_FLEET_SCOPE_ADMIN, NULL},
    [A_TOKEN_CREATE] = {OTA_FLEET_SCOPE_ADMIN, "token.create"},
    [A_TOKEN_REVOKE] = {OTA_FLEET_SCOPE_ADMIN, "token.revoke"},
    [A_AUDIT] = {OTA_FLEET_SCOPE_ADMIN, NULL},
    [A_BLOB_PUT] = {OTA_FLEET_SCOPE_RELEASE, "blob.upload"},
    [A_BLOB_GET] = {OTA_FLEET_SCOPE_READ, NULL},
    [A_PENDING_TARGETS] = {OTA_FLEET_SCOPE_RELEASE, "targets.upload"},
};

struct adm_job {
    struct srv_job job;
    struct srv_req *r;
    struct srv *s;
    enum aroute route;
    struct srv_repo_state *st;
    char arg[OTA_UPLOAD_NAME_MAX + 1]; /* device id, serial, token id or blob name */
    unsigned limit;
    uint64_t before;
    char after[OTA_CERT_ID_MAX + 1];
    char reason[OTA_FLEET_REASON_MAX + 1];
    char name[OTA_CERT_ID_MAX + 1];
    unsigned scopes;
    struct ota_checkin query; /* newest: product, hardware, version */
    bool has_version;
    json_t *out; /* the answer, built on the database thread */
    char object[OTA_FLEET_OBJECT_MAX + 1];
    /* maintenance */
    bool expire, count;
    /* blob uploads (file thread) */
    struct ota_upload_range range;
    const uint8_t *part;
    size_t part_len;
    struct ota_upload_status up;
};

static json_t *time_json(int64_t t)
{
    char text[24];

    if (t == 0)
        return json_null();
    ota_time_text(text, t);
    return json_string(text);
}

static json_t *hash_json(const uint8_t h[32])
{
    char b64[OTA_BASE64_LEN(32) + 1];

    ota_base64_encode(b64, h, 32);
    return json_string(b64);
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

json_t *srv_device_json(const struct ota_fleet_device *d, const char *const *failed, size_t nfailed,
                        const struct ota_fleet_revocation *rev, const struct ota_fleet_flag *flag)
{
    const struct ota_checkin *c = &d->report;
    json_t *doc = json_object();
    json_t *running = json_object();
    json_t *trusted = json_object();
    json_t *fl = json_array();

    if (doc == NULL || running == NULL || trusted == NULL || fl == NULL) {
        json_decref(doc);
        json_decref(running);
        json_decref(trusted);
        json_decref(fl);
        return NULL;
    }
    json_object_set_new(doc, "id", json_string(d->id));
    json_object_set_new(doc, "first_seen", time_json(d->first_seen));
    json_object_set_new(doc, "last_seen", time_json(d->last_seen));
    json_object_set_new(running, "product", json_string(c->product));
    json_object_set_new(running, "hardware", json_string(c->hardware));
    json_object_set_new(running, "version", json_string(c->version));
    json_object_set_new(running, "target", str_or_null(c->target));
    json_object_set_new(running, "slot", str_or_null(c->slot));
    json_object_set_new(doc, "running", running);
    if (c->state != OTA_UPDATE_NONE) {
        json_t *u = json_pack("{s:s,s:s,s:o,s:o}", "state", ota_update_state_name(c->state),
                              "target", c->state_target, "since", time_json(d->update_since),
                              "progress_at", time_json(d->progress_at));
        if (u != NULL)
            json_object_set_new(u, "progress",
                                c->has_progress ? json_integer((json_int_t)c->progress)
                                                : json_null());
        json_object_set_new(doc, "update", u);
    } else {
        json_object_set_new(doc, "update", json_null());
    }
    if (c->error_name[0])
        json_object_set_new(
            doc, "last_error",
            json_pack("{s:s,s:o}", "name", c->error_name, "detail", str_or_null(c->error_detail)));
    else
        json_object_set_new(doc, "last_error", json_null());
    json_object_set_new(trusted, "root_version", json_integer((json_int_t)c->root_version));
    json_object_set_new(trusted, "timestamp_version",
                        c->timestamp_version ? json_integer((json_int_t)c->timestamp_version)
                                             : json_null());
    json_object_set_new(trusted, "checkpoint",
                        c->has_checkpoint
                            ? json_pack("{s:I,s:o}", "size", (json_int_t)c->checkpoint_size, "hash",
                                        hash_json(c->checkpoint_hash))
                            : json_null());
    json_object_set_new(doc, "trusted", trusted);
    for (size_t i = 0; i < nfailed; i++)
        json_array_append_new(fl, json_string(failed[i]));
    json_object_set_new(doc, "failed", fl);
    json_object_set_new(
        doc, "revoked",
        rev != NULL ? json_pack("{s:o,s:s}", "at", time_json(rev->at), "reason", rev->reason)
                    : json_null());
    json_object_set_new(doc, "flagged",
                        flag != NULL ? json_pack("{s:o,s:I,s:o,s:s}", "at", time_json(flag->at),
                                                 "size", (json_int_t)flag->size, "hash",
                                                 hash_json(flag->hash), "reason", flag->reason)
                                     : json_null());
    return doc;
}

/* ---- building answers on the database thread ---- */

struct list_ctx {
    json_t *arr;
    struct ota_fleet_store *s;
    char last[OTA_CERT_ID_MAX + 1];
    uint64_t last_id;
    unsigned n;
    struct ota_detail *det;
};

static int add_failed(void *ctx, const char *t)
{
    return json_array_append_new(ctx, json_string(t)) == 0 ? 0 : OTA_ERR_NOMEM;
}

/* The full device view: row, failed set, revocation, flag. */
static int device_view(json_t **out, struct ota_fleet_store *s, const struct ota_fleet_device *d,
                       struct ota_detail *det)
{
    struct ota_fleet_revocation rev;
    json_t *failed = json_array();
    bool revoked = false;
    int rc;

    *out = NULL;
    if (failed == NULL)
        return OTA_ERR_NOMEM;
    rc = s->ops->failed_list(s, d->id, add_failed, failed, det);
    if (rc == 0)
        rc = s->ops->revoke_check(s, d->id, "", &revoked, &rev, det);
    if (rc == 0) {
        *out = srv_device_json(d, NULL, 0, revoked ? &rev : NULL, NULL);
        if (*out == NULL)
            rc = OTA_ERR_NOMEM;
        else
            json_object_set(*out, "failed", failed);
    }
    json_decref(failed);
    return rc;
}

static int list_device(void *arg, const struct ota_fleet_device *d)
{
    struct list_ctx *c = arg;
    json_t *v = NULL;
    int rc = device_view(&v, c->s, d, c->det);

    if (rc == 0 && json_array_append_new(c->arr, v) != 0)
        rc = OTA_ERR_NOMEM;
    memcpy(c->last, d->id, sizeof(c->last));
    c->n++;
    return rc;
}

static int list_event(void *arg, const struct ota_fleet_event *e)
{
    struct list_ctx *c = arg;
    json_t *changes = json_loads(e->changes, 0, NULL);

    c->last_id = e->id;
    c->n++;
    return json_array_append_new(c->arr, json_pack("{s:I,s:o,s:o}", "id", (json_int_t)e->id, "at",
                                                   time_json(e->at), "changes",
                                                   changes ? changes : json_object())) == 0
               ? 0
               : OTA_ERR_NOMEM;
}

static int list_revocation(void *arg, const struct ota_fleet_revocation *r)
{
    struct list_ctx *c = arg;

    return json_array_append_new(
               c->arr,
               json_pack("{s:s,s:s,s:o,s:s,s:s}", "kind",
                         r->kind == OTA_FLEET_REVOKE_DEVICE ? "device" : "certificate", "id", r->id,
                         "at", time_json(r->at), "reason", r->reason, "actor", r->actor)) == 0
               ? 0
               : OTA_ERR_NOMEM;
}

static int list_flag(void *arg, const struct ota_fleet_flag *f)
{
    struct list_ctx *c = arg;

    return json_array_append_new(c->arr,
                                 json_pack("{s:s,s:o,s:I,s:o,s:s}", "device", f->device, "at",
                                           time_json(f->at), "size", (json_int_t)f->size, "hash",
                                           hash_json(f->hash), "reason", f->reason)) == 0
               ? 0
               : OTA_ERR_NOMEM;
}

static json_t *scopes_json(unsigned scopes)
{
    json_t *a = json_array();

    for (unsigned b = 1; a != NULL && b <= OTA_FLEET_SCOPE_ADMIN; b <<= 1) {
        if (scopes & b)
            json_array_append_new(a, json_string(ota_fleet_scope_name(b)));
    }
    return a;
}

static int list_token(void *arg, const struct ota_fleet_token *t)
{
    struct list_ctx *c = arg;

    return json_array_append_new(c->arr,
                                 json_pack("{s:s,s:s,s:o,s:o,s:s,s:o}", "id", t->id, "name",
                                           t->name, "scopes", scopes_json(t->scopes), "created",
                                           time_json(t->created), "created_by", t->created_by,
                                           "revoked", time_json(t->revoked))) == 0
               ? 0
               : OTA_ERR_NOMEM;
}

static int list_audit(void *arg, const struct ota_fleet_audit *a)
{
    struct list_ctx *c = arg;

    c->last_id = a->id;
    c->n++;
    return json_array_append_new(
               c->arr, json_pack("{s:I,s:o,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)a->id, "at",
                                 time_json(a->at), "actor", a->actor, "action", a->action, "object",
                                 a->object, "outcome", a->outcome, "detail", a->detail)) == 0
               ? 0
               : OTA_ERR_NOMEM;
}

static json_t *release_json(const struct srv_repo_state *st, size_t i)
{
    const struct ota_release *rel = &st->releases[i];
    const struct srv_target *t = st->release_target[i];
    char hex[OTA_SHA256_HEX_LEN + 1];
    json_t *hw = json_array();

    for (size_t k = 0; hw != NULL && k < rel->nhardware; k++)
        json_array_append_new(hw, json_string(rel->hardware[k]));
    ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
    return json_pack("{s:s,s:s,s:o,s:s,s:I,s:I,s:s,s:o}", "target", t->path, "product",
                     rel->product, "hardware", hw ? hw : json_array(), "version", rel->version.text,
                     "security_version", (json_int_t)rel->security_version, "length",
                     (json_int_t)t->length, "sha256", hex, "index", str_or_null(rel->index));
}

static int audit(struct ota_fleet_store *s, struct adm_job *j, const char *outcome,
                 const char *detail, struct ota_detail *det)
{
    struct ota_fleet_audit a;

    memset(&a, 0, sizeof(a));
    a.at = srv_now(j->s);
    snprintf(a.actor, sizeof(a.actor), "%s", j->r != NULL ? j->r->actor : "server");
    snprintf(a.action, sizeof(a.action), "%s", route_info[j->route].action);
    snprintf(a.object, sizeof(a.object), "%s", j->object);
    snprintf(a.outcome, sizeof(a.outcome), "%s", outcome);
    snprintf(a.detail, sizeof(a.detail), "%s", detail ? detail : "");
    return s->ops->audit_add(s, &a, det);
}

static int check_token(struct adm_job *j, struct ota_fleet_store *s, struct ota_detail *det)
{
    struct srv_req *r = j->r;
    struct ota_fleet_token t;
    bool found = false;
    unsigned need = route_info[j->route].scope;
    char names[64];
    int rc;

    if (!r->has_token)
        return 0; /* an admin certificate: every scope */
    rc = s->ops->token_get(s, r->token_id, &t, &found, det);
    if (rc != 0)
        return rc;
    rc = found ? ota_fleet_token_check(&t, r->token_hash, need) : OTA_ERR_AUTH;
    if (found)
        snprintf(r->actor, sizeof(r->actor), "token:%s (%s)", t.id, t.name);
    switch (rc) {
    case 0:
        return 0;
    case OTA_ERR_SCOPE:
        ota_fleet_scopes_format(names, sizeof(names), t.scopes);
        ota_detail_set(det, "%s %s needs scope %s; token %s has %s", r->method_name, r->path,
                       ota_fleet_scope_name(need), t.id, names);
        return rc;
    case OTA_ERR_REVOKED:
        ota_detail_set(det, "token %s was revoked", t.id);
        return rc;
    default:
        ota_detail_set(det, "unknown token, or a wrong secret");
        return OTA_ERR_AUTH;
    }
}

static int adm_run(struct srv_job *job, struct ota_fleet_store *s, struct ota_detail *det)
{
    struct adm_job *j = (struct adm_job *)job;
    struct list_ctx c = {NULL, s, "", 0, 0, det};
    int64_t now = srv_now(j->s);
    int rc = check_token(j, s, det);

    if (rc != 0)
        return rc;
    switch (j->route) {
    case A_METRICS:
    case A_STATUS:
    case A_RELEASES:
    case A_NEWEST: {
        uint64_t n = 0, f = 0;
        if (j->route != A_STATUS)
            return 0;
        rc = s->ops->device_count(s, &n, det);
        if (rc == 0)
            rc = s->ops->flag_count(s, &f, det);
        j->out = json_pack("{s:I,s:I}", "devices", (json_int_t)n, "flagged", (json_int_t)f);
        return rc;
    }
    case A_DEVICES:
        c.arr = json_array();
        rc = s->ops->device_list(s, j->after, j->limit, list_device, &c, det);
        j->out = json_pack("{s:o,s:o}", "devices", c.arr, "next",
                           c.n == j->limit ? json_string(c.last) : json_null());
        return rc;
    case A_DEVICE: {
        struct ota_fleet_device d;
        bool found = false;
        rc = s->ops->device_get(s, j->arg, &d, &found, det);
        if (rc == 0 && !found) {
            ota_detail_set(det, "device %s never checked in", j->arg);
            return OTA_ERR_NOT_FOUND;
        }
        if (rc == 0)
            rc = device_view(&j->out, s, &d, det);
        return rc;
    }
    case A_EVENTS:
        c.arr = json_array();
        rc = s->ops->event_list(s, j->arg, j->before, j->limit, list_event, &c, det);
        j->out = json_pack("{s:o,s:o}", "events", c.arr, "next",
                           c.n == j->limit ? json_integer((json_int_t)c.last_id) : json_null());
        return rc;
    case A_DEVICE_REVOKE:
    case A_CERT_REVOKE: {
        struct ota_fleet_revocation rev;
        memset(&rev, 0, sizeof(rev));
        rev.kind =
            j->route == A_DEVICE_REVOKE ? OTA_FLEET_REVOKE_DEVICE : OTA_FLEET_REVOKE_CERTIFICATE;
        snprintf(rev.id, sizeof(rev.id), "%.64s", j->arg);
        rev.at = now;
        memcpy(rev.reason, j->reason, sizeof(rev.reason));
        snprintf(rev.actor, sizeof(rev.actor), "%s", j->r->actor);
        rc = s->ops->revoke_put(s, &rev, det);
        if (rc == 0)
            rc = audit(s, j, "ok", j->reason, det);
        if (rc == 0)
            j->out =
                json_pack("{s:{s:o,s:s}}", "revoked", "at", time_json(now), "reason", j->reason);
        return rc;
    }
    case A_REVOCATIONS:
        c.arr = json_array();
        rc = s->ops->revoke_list(s, list_revocation, &c, det);
        j->out = json_pack("{s:o}", "revocations", c.arr);
        return rc;
    case A_FLAGS:
        c.arr = json_array();
        rc = s->ops->flag_list(s, list_flag, &c, det);
        j->out = json_pack("{s:o}", "flags", c.arr);
        return rc;
    case A_FLAG_CLEAR:
        rc = s->ops->flag_clear(s, j->arg, det);
        if (rc == 0)
            rc = audit(s, j, "ok", NULL, det);
        if (rc == 0)
            j->out = json_pack("{s:s}", "cleared", j->arg);
        return rc;
    case A_TOKENS:
        c.arr = json_array();
        rc = s->ops->token_list(s, list_token, &c, det);
        j->out = json_pack("{s:o}", "tokens", c.arr);
        return rc;
    case A_TOKEN_CREATE: {
        char text[OTA_FLEET_TOKEN_TEXT_MAX + 1];
        struct ota_fleet_token t;
        rc = ota_fleet_token_new(text, &t, j->name, j->scopes, now, j->r->actor, det);
        if (rc == 0)
            rc = s->ops->token_put(s, &t, det);
        snprintf(j->object, sizeof(j->object), "%s", t.id);
        if (rc == 0) {
            char sc[64];
            ota_fleet_scopes_format(sc, sizeof(sc), j->scopes);
            rc = audit(s, j, "ok", sc, det);
        }
        if (rc == 0)
            j->out = json_pack("{s:s,s:s}", "id", t.id, "token", text);
        ota_wipe(text, sizeof(text));
        return rc;
    }
    case A_TOKEN_REVOKE:
        rc = s->ops->token_revoke(s, j->arg, now, det);
        if (rc == 0)
            rc = audit(s, j, "ok", NULL, det);
        if (rc == 0)
            j->out = json_pack("{s:o}", "revoked", time_json(now));
        return rc;
    case A_BLOB_PUT:
    case A_BLOB_GET:
        return 0; /* the file thread does the work (blob_run) */
    case A_PENDING_TARGETS:
        return 0; /* pending.c does the work */
    case A_AUDIT:
        c.arr = json_array();
        rc = s->ops->audit_list(s, j->before, j->limit, list_audit, &c, det);
        j->out = json_pack("{s:o,s:o}", "entries", c.arr, "next",
                           c.n == j->limit ? json_integer((json_int_t)c.last_id) : json_null());
        return rc;
    }
    return OTA_ERR_INVALID_ARG;
}

/* A refused change is audited after the fact, in a job of its own (the
 * refused job's savepoint was rolled back). */
struct refusal_job {
    struct srv_job job;
    struct ota_fleet_audit a;
};

static int refusal_run(struct srv_job *job, struct ota_fleet_store *s, struct ota_detail *det)
{
    return s->ops->audit_add(s, &((struct refusal_job *)job)->a, det);
}

static void refusal_done(struct srv_job *job)
{
    free(job);
}

static void audit_refusal(struct adm_job *j, int err, const char *detail)
{
    struct refusal_job *rj;

    if (route_info[j->route].action == NULL || err == OTA_ERR_BUSY)
        return;
    rj = calloc(1, sizeof(*rj));
    if (rj == NULL)
        return;
    rj->job.run = refusal_run;
    rj->job.done = refusal_done;
    rj->a.at = srv_now(j->s);
    snprintf(rj->a.actor, sizeof(rj->a.actor), "%s", j->r->actor);
    snprintf(rj->a.action, sizeof(rj->a.action), "%s", route_info[j->route].action);
    snprintf(rj->a.object, sizeof(rj->a.object), "%s", j->object);
    snprintf(rj->a.outcome, sizeof(rj->a.outcome), "%s", ota_errname(err));
    snprintf(rj->a.detail, sizeof(rj->a.detail), "%s", detail);
    if (srv_db_submit(j->s->db, &rj->job) != 0)
        free(rj);
}

void srv_audit(struct srv *s, const char *actor, const char *action, const char *object,
               const char *outcome, const char *detail)
{
    struct refusal_job *rj = calloc(1, sizeof(*rj));

    if (rj == NULL)
        return;
    rj->job.run = refusal_run;
    rj->job.done = refusal_done;
    rj->a.at = srv_now(s);
    snprintf(rj->a.actor, sizeof(rj->a.actor), "%s", actor);
    snprintf(rj->a.action, sizeof(rj->a.action), "%s", action);
    snprintf(rj->a.object, sizeof(rj->a.object), "%s", object);
    snprintf(rj->a.outcome, sizeof(rj->a.outcome), "%s", outcome);
    snprintf(rj->a.detail, sizeof(rj->a.detail), "%s", detail ? detail : "");
    if (srv_db_submit(s->db, &rj->job) != 0)
        free(rj);
}

/* A completed upload, audited by a job of its own (the upload ran on the
 * file thread, outside any transaction). */
static void audit_upload(struct adm_job *j)
{
    struct refusal_job *rj = calloc(1, sizeof(*rj));

    if (rj == NULL)
        return;
    rj->job.run = refusal_run;
    rj->job.done = refusal_done;
    rj->a.at = srv_now(j->s);
    snprintf(rj->a.actor, sizeof(rj->a.actor), "%s", j->r->actor);
    snprintf(rj->a.action, sizeof(rj->a.action), "blob.upload");
    snprintf(rj->a.object, sizeof(rj->a.object), "%s", j->arg);
    snprintf(rj->a.outcome, sizeof(rj->a.outcome), "ok");
    snprintf(rj->a.detail, sizeof(rj->a.detail), "%llu bytes", (unsigned long long)j->up.total);
    if (srv_db_submit(j->s->db, &rj->job) != 0)
        free(rj);
}

static void adm_free(struct adm_job *j)
{
    json_decref(j->out);
    srv_repo_put(j->st);
    free(j);
}

static void status_json(struct adm_job *j)
{
    const struct srv_repo_state *st = j->st;
    char ts[24];
    json_t *repo;

    ota_time_text(ts, st->timestamp_expires);
    repo = st->published ? json_pack("{s:I,s:I,s:I,s:I,s:s}", "root", (json_int_t)st->root_version,
                                     "targets", (json_int_t)st->targets_version, "snapshot",
                                     (json_int_t)st->snapshot_version, "timestamp",
                                     (json_int_t)st->timestamp_version, "timestamp_expires", ts)
                         : json_null();
    json_object_set_new(j->out, "version", json_string(OTACHAIN_VERSION));
    json_object_set_new(j->out, "started", time_json(j->s->started));
    json_object_set_new(j->out, "now", time_json(srv_now(j->s)));
    json_object_set_new(j->out, "repository", repo);
    json_object_set_new(j->out, "ledger",
                        st->has_checkpoint
                            ? json_pack("{s:I,s:o}", "size", (json_int_t)st->checkpoint->size,
                                        "hash", hash_json(st->checkpoint->root))
                            : json_null());
    json_object_set_new(j->out, "pending", json_null());
}

/* ---- blob uploads: on the file thread, never on the database's ---- */

static int blob_run(struct srv_job *job, struct ota_fleet_store *s, struct ota_detail *det)
{
    struct adm_job *j = (struct adm_job *)job;

    (void)s;
    if (j->route == A_BLOB_GET)
        return ota_upload_status(&j->up, j->s->blob_dir, j->arg, det);
    return ota_upload_put(&j->up, j->s->blob_dir, j->arg, &j->range, j->part, j->part_len, NULL,
                          det);
}

static void audit_upload(struct adm_job *j);

static void blob_done(struct srv_job *job)
{
    struct adm_job *j = (struct adm_job *)job;
    struct srv_req *r = j->r;
    json_t *doc = json_pack("{s:I,s:I,s:b}", "received", (json_int_t)j->up.received, "length",
                            (json_int_t)j->up.total, "complete", j->up.complete);

    if (job->rc == OTA_ERR_EXISTS) {
        /* Out of order: where to resume, in the error body too. */
        char msg[OTA_DETAIL_LEN + 256];
        snprintf(msg, sizeof(msg), "%s: %s", ota_strerror(job->rc), job->det.msg);
        json_object_set_new(doc, "error", json_string(ota_errname(job->rc)));
        json_object_set_new(doc, "message", json_string(msg));
        r->err = job->rc;
        srv_reply_json(r, 409, doc);
    } else if (job->rc != 0) {
        json_decref(doc);
        audit_refusal(j, job->rc, job->det.msg);
        srv_reply_error(r, srv_status_of(job->rc), job->rc, "%s", job->det.msg);
    } else if (j->route == A_BLOB_GET && !j->up.complete && j->up.received == 0) {
        json_decref(doc);
        srv_reply_error(r, 404, OTA_ERR_NOT_FOUND, "no upload of %s", j->arg);
    } else {
        if (j->route == A_BLOB_PUT && j->up.complete)
            audit_upload(j);
        srv_reply_json(r, 200, doc);
    }
    adm_free(j);
}

/* After the token check: the part goes to the file thread. */
static void blob_submit(struct adm_job *j)
{
    int rc;

    j->job.run = blob_run;
    j->job.done = blob_done;
    rc = srv_db_submit(j->s->io, &j->job);
    if (rc != 0) {
        srv_reply_error(j->r, 503, rc, "the upload queue is full");
        adm_free(j);
    }
}

static void adm_done(struct srv_job *job)
{
    struct adm_job *j = (struct adm_job *)job;
    struct srv_req *r = j->r;

    if (job->rc != 0) {
        audit_refusal(j, job->rc, job->det.msg);
        srv_reply_error(r, srv_status_of(job->rc), job->rc, "%s", job->det.msg);
        adm_free(j);
        return;
    }
    switch (j->route) {
    case A_BLOB_PUT:
    case A_BLOB_GET:
        blob_submit(j);
        return;
    case A_PENDING_TARGETS:
        srv_pending_targets(r);
        adm_free(j);
        return;
    case A_METRICS: {
        struct ota_buf b;
        ota_buf_init(&b, 1u << 20);
        if (srv_metrics_render(&b, &r->srv->metrics) != 0)
            srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        else
            srv_reply_data(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
        ota_buf_free(&b);
        break;
    }
    case A_STATUS:
        status_json(j);
        srv_reply_json(r, 200, j->out);
        j->out = NULL;
        break;
    case A_RELEASES: {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < j->st->nreleases; i++)
            json_array_append_new(arr, release_json(j->st, i));
        srv_reply_json(r, 200, json_pack("{s:o}", "releases", arr));
        break;
    }
    case A_NEWEST: {
        long best = -1;
        for (size_t i = 0; i < j->st->nreleases; i++) {
            const struct ota_release *rel = &j->st->releases[i];
            bool hw = false;
            for (size_t k = 0; k < rel->nhardware; k++)
                hw = hw || strcmp(rel->hardware[k], j->query.hardware) == 0;
            if (strcmp(rel->product, j->query.product) != 0 || !hw)
                continue;
            if (best < 0 || ota_semver_compare(&rel->version, &j->st->releases[best].version) > 0)
                best = (long)i;
        }
        if (best >= 0 && j->has_version) {
            struct ota_semver v;
            if (ota_semver_parse(&v, j->query.version, strlen(j->query.version), NULL) != 0 ||
                ota_semver_compare(&j->st->releases[best].version, &v) <= 0)
                best = -1;
        }
        srv_reply_json(r, 200,
                       json_pack("{s:o}", "release",
                                 best >= 0 ? release_json(j->st, (size_t)best) : json_null()));
        break;
    }
    default:
        srv_reply_json(r, 200, j->out);
        j->out = NULL;
        break;
    }
    adm_free(j);
}

/* ---- routing ---- */

static bool seg_match(const char *path, const char *prefix, char *arg, size_t cap,
                      const char *suffix)
{
    size_t pl = strlen(prefix);
    size_t sl = strlen(suffix);
    size_t n;

    if (strncmp(path, prefix, pl) != 0)
        return false;
    path += pl;
    n = strlen(path);
    if (n < sl + 1 || strcmp(path + n - sl, suffix) != 0)
        return false;
    n -= sl;
    if (n >= cap || memchr(path, '/', n) != NULL)
        return false;
    memcpy(arg, path, n);
    arg[n] = '\0';
    return true;
}

static bool parse_limit(struct srv_req *r, struct adm_job *j)
{
    char v[24];
    char *end;

    j->limit = 100;
    if (!srv_query(r, "limit", v, sizeof(v)))
        return false;
    if (v[0]) {
        unsigned long l = strtoul(v, &end, 10);
        if (*end != '\0' || l < 1 || l > 1000 || v[0] < '0' || v[0] > '9')
            return false;
        j->limit = (unsigned)l;
    }
    if (!srv_query(r, "before", v, sizeof(v)))
        return false;
    if (v[0]) {
        unsigned long long b = strtoull(v, &end, 10);
        if (*end != '\0' || v[0] < '0' || v[0] > '9')
            return false;
        j->before = b;
    }
    if (!srv_query(r, "after", j->after, sizeof(j->after)))
        return false;
    return true;
}

/* A JSON body with optional "reason" (revocations). */
static int reason_body(struct srv_req *r, struct adm_job *j, struct ota_detail *det)
{
    const struct ota_json_limits lim = {4096, 2, 0, 1};
    json_t *doc = NULL;
    const char *key;
    json_t *v;
    size_t len;
    const uint8_t *body = srv_body(r, &len);
    int rc;

    if (body == NULL)
        return 0;
    rc = ota_json_parse(&doc, body, len, &lim, det);
    if (rc != 0)
        return rc;
    if (!json_is_object(doc)) {
        json_decref(doc);
        ota_detail_set(det, "the body is not a JSON object");
        return OTA_ERR_FORMAT;
    }
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "reason") != 0 || !json_is_string(v) ||
            json_string_length(v) > OTA_FLEET_REASON_MAX) {
            json_decref(doc);
            ota_detail_set(det, "%s: only \"reason\" (a string of at most 256 bytes) is accepted",
                           key);
            return OTA_ERR_FORMAT;
        }
        for (const char *p = json_string_value(v); *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
                json_decref(doc);
                ota_detail_set(det, "reason: printable ASCII only");
                return OTA_ERR_FORMAT;
            }
        }
        memcpy(j->reason, json_string_value(v), json_string_length(v) + 1);
    }
    json_decref(doc);
    return 0;
}

static int token_body(struct srv_req *r, struct adm_job *j, struct ota_detail *det)
{
    const struct ota_json_limits lim = {4096, 3, 0, 1};
    json_t *doc = NULL;
    json_t *name;
    json_t *scopes;
    size_t len;
    const uint8_t *body = srv_body(r, &len);
    int rc = ota_json_parse(&doc, body ? (const void *)body : "", len, &lim, det);

    if (rc != 0)
        return rc;
    name = json_object_get(doc, "name");
    scopes = json_object_get(doc, "scopes");
    rc = OTA_ERR_FORMAT;
    if (!json_is_object(doc) || json_object_size(doc) != 2 || !json_is_string(name) ||
        !json_is_array(scopes) || json_array_size(scopes) == 0 ||
        !ota_cert_id_valid(json_string_value(name), json_string_length(name))) {
        ota_detail_set(det, "expected {\"name\": \"[A-Za-z0-9._-]{1,64}\", \"scopes\": [\"read\", "
                            "\"release\", \"rollout\", \"admin\"...]}");
        goto out;
    }
    memcpy(j->name, json_string_value(name), json_string_length(name) + 1);
    for (size_t i = 0; i < json_array_size(scopes); i++) {
        unsigned bit;
        if (ota_fleet_scopes_parse(&bit, json_string_value(json_array_get(scopes, i))) != 0 ||
            (j->scopes & bit) || (bit & (bit - 1))) {
            ota_detail_set(det, "scopes[%zu]: read, release, rollout or admin, once each", i);
            goto out;
        }
        j->scopes |= bit;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static void submit(struct srv_req *r, struct adm_job *j)
{
    int rc;

    j->st = srv_repo_get(&r->srv->repo);
    rc = srv_db_submit(r->srv->db, &j->job);
    if (rc != 0) {
        adm_free(j);
        srv_reply_error(r, 503, rc, "the database queue is full");
    }
}

void srv_admin_route(struct srv_req *r)
{
    struct adm_job *j = calloc(1, sizeof(*j));
    const char *p = r->path;
    enum evhttp_cmd_type m = r->method;
    struct ota_detail det;
    char arg[OTA_UPLOAD_NAME_MAX + 1] = "";
    int rc = 0;

    if (j == NULL) {
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    det.msg[0] = '\0';
    j->r = r;
    j->s = r->srv;
    j->job.run = adm_run;
    j->job.done = adm_done;
    if (strcmp(p, "/metrics") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_METRICS;
    else if (strcmp(p, "/admin/v1/status") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_STATUS;
    else if (strcmp(p, "/admin/v1/devices") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_DEVICES;
    else if (seg_match(p, "/admin/v1/devices/", arg, OTA_CERT_ID_MAX + 1, "/events") &&
             m == EVHTTP_REQ_GET)
        j->route = A_EVENTS;
    else if (seg_match(p, "/admin/v1/devices/", arg, OTA_CERT_ID_MAX + 1, "/revoke") &&
             m == EVHTTP_REQ_POST)
        j->route = A_DEVICE_REVOKE;
    else if (seg_match(p, "/admin/v1/devices/", arg, OTA_CERT_ID_MAX + 1, "") &&
             m == EVHTTP_REQ_GET)
        j->route = A_DEVICE;
    else if (seg_match(p, "/admin/v1/certificates/", arg, sizeof(arg), "/revoke") &&
             m == EVHTTP_REQ_POST)
        j->route = A_CERT_REVOKE;
    else if (strcmp(p, "/admin/v1/revocations") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_REVOCATIONS;
    else if (strcmp(p, "/admin/v1/flags") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_FLAGS;
    else if (seg_match(p, "/admin/v1/flags/", arg, OTA_CERT_ID_MAX + 1, "") &&
             m == EVHTTP_REQ_DELETE)
        j->route = A_FLAG_CLEAR;
    else if (strcmp(p, "/admin/v1/releases") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_RELEASES;
    else if (strcmp(p, "/admin/v1/releases/newest") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_NEWEST;
    else if (strcmp(p, "/admin/v1/tokens") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_TOKENS;
    else if (strcmp(p, "/admin/v1/tokens") == 0 && m == EVHTTP_REQ_POST)
        j->route = A_TOKEN_CREATE;
    else if (seg_match(p, "/admin/v1/tokens/", arg, OTA_FLEET_TOKEN_ID + 1, "") &&
             m == EVHTTP_REQ_DELETE)
        j->route = A_TOKEN_REVOKE;
    else if (strcmp(p, "/admin/v1/audit") == 0 && m == EVHTTP_REQ_GET)
        j->route = A_AUDIT;
    else if (seg_match(p, "/admin/v1/blobs/", arg, sizeof(arg), "") && m == EVHTTP_REQ_PUT)
        j->route = A_BLOB_PUT;
    else if (seg_match(p, "/admin/v1/blobs/", arg, sizeof(arg), "") && m == EVHTTP_REQ_GET)
        j->route = A_BLOB_GET;
    else if (strcmp(p, "/admin/v1/metadata/targets") == 0 && m == EVHTTP_REQ_POST)
        j->route = A_PENDING_TARGETS;
    else {
        adm_free(j);
        srv_reply_error(r, 404, OTA_ERR_NOT_FOUND,
                        "no such route (with this method) in the admin API v1");
        return;
    }
    memcpy(j->arg, arg, sizeof(arg));
    switch (j->route) {
    case A_DEVICE:
    case A_EVENTS:
    case A_DEVICE_REVOKE:
    case A_FLAG_CLEAR:
        if (!ota_cert_id_valid(j->arg, strlen(j->arg))) {
            rc = OTA_ERR_FORMAT;
            ota_detail_set(&det, "'%.64s' is not a device id", j->arg);
        }
        snprintf(j->object, sizeof(j->object), "%s", j->arg);
        break;
    case A_CERT_REVOKE:
        if (ota_cert_serial_normalize(j->arg, arg) != 0) {
            rc = OTA_ERR_FORMAT;
            ota_detail_set(&det, "'%.64s' is not a hex serial", arg);
        }
        snprintf(j->object, sizeof(j->object), "%s", j->arg);
        break;
    case A_TOKEN_REVOKE:
        snprintf(j->object, sizeof(j->object), "%s", j->arg);
        break;
    case A_BLOB_PUT:
    case A_BLOB_GET: {
        bool pack;
        snprintf(j->object, sizeof(j->object), "%s", j->arg);
        if (!ota_upload_name_valid(j->arg, &pack)) {
            rc = OTA_ERR_NOT_FOUND;
            ota_detail_set(&det, "a blob is named by its SHA-256 (64 lowercase hex digits), or "
                                 "<image sha256>.pack");
        }
        break;
    }
    default:
        break;
    }
    if (rc == 0 && j->route == A_BLOB_PUT) {
        const char *cr =
            evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Range");
        j->part = srv_body(r, &j->part_len);
        if (j->part_len > r->srv->cfg->max_part_bytes) {
            rc = OTA_ERR_TOO_LARGE;
            ota_detail_set(&det, "a part is at most %llu bytes (max_part_bytes)",
                           (unsigned long long)r->srv->cfg->max_part_bytes);
        } else if (cr != NULL) {
            rc = ota_upload_range_parse(&j->range, cr, strlen(cr), OTA_UPLOAD_MAX_TOTAL, &det);
        } else if (j->part_len > 0) {
            /* The whole blob in one part. */
            j->range.first = 0;
            j->range.last = j->part_len - 1;
            j->range.total = j->part_len;
        } else {
            rc = OTA_ERR_FORMAT;
            ota_detail_set(&det, "an empty part");
        }
        if (rc == 0 && j->part_len != j->range.last - j->range.first + 1) {
            rc = OTA_ERR_FORMAT;
            ota_detail_set(&det, "the body holds %zu bytes, Content-Range says %llu", j->part_len,
                           (unsigned long long)(j->range.last - j->range.first + 1));
        }
    }
    if (rc == 0 && (j->route == A_DEVICES || j->route == A_EVENTS || j->route == A_AUDIT) &&
        !parse_limit(r, j)) {
        rc = OTA_ERR_FORMAT;
        ota_detail_set(&det, "limit (1-1000), before (an id) or after (a device id) malformed");
    }
    if (rc == 0 && (j->route == A_DEVICE_REVOKE || j->route == A_CERT_REVOKE))
        rc = reason_body(r, j, &det);
    if (rc == 0 && j->route == A_TOKEN_CREATE)
        rc = token_body(r, j, &det);
    if (rc == 0 && j->route == A_NEWEST) {
        if (!srv_query(r, "product", j->query.product, sizeof(j->query.product)) ||
            !srv_query(r, "hardware", j->query.hardware, sizeof(j->query.hardware)) ||
            !srv_query(r, "version", j->query.version, sizeof(j->query.version)) ||
            !ota_checkin_name_valid(j->query.product, strlen(j->query.product),
                                    OTA_CHECKIN_NAME_MAX) ||
            !ota_checkin_name_valid(j->query.hardware, strlen(j->query.hardware),
                                    OTA_CHECKIN_NAME_MAX) ||
            (j->query.version[0] &&
             !ota_checkin_version_valid(j->query.version, strlen(j->query.version)))) {
            rc = OTA_ERR_FORMAT;
            ota_detail_set(&det, "product and hardware are required, version optional");
        }
        j->has_version = j->query.version[0] != '\0';
    }
    if (rc != 0) {
        adm_free(j);
        srv_reply_error(r, srv_status_of(rc), rc, "%s", det.msg);
        return;
    }
    submit(r, j);
}

/* ---- maintenance ---- */

static int maint_run(struct srv_job *job, struct ota_fleet_store *s, struct ota_detail *det)
{
    struct adm_job *j = (struct adm_job *)job;
    uint64_t removed = 0, n = 0, f = 0;
    int rc = 0;

    if (j->expire) {
        int64_t now = srv_now(j->s);
        rc = s->ops->event_expire(s, now - (int64_t)j->s->cfg->event_max_age, &removed, det);
        if (rc == 0)
            atomic_fetch_add(&j->s->metrics.events_expired, removed);
    }
    if (rc == 0 && j->count) {
        rc = s->ops->device_count(s, &n, det);
        if (rc == 0)
            rc = s->ops->flag_count(s, &f, det);
        if (rc == 0) {
            atomic_store(&j->s->metrics.devices, n);
            atomic_store(&j->s->metrics.flagged, f);
        }
    }
    return rc;
}

static void maint_done(struct srv_job *job)
{
    struct adm_job *j = (struct adm_job *)job;
    char q[600];

    if (job->rc != 0)
        srv_log(j->s->log, "error", "maintenance", "error=%s detail=%s", ota_errname(job->rc),
                srv_log_q(q, sizeof(q), job->det.msg));
    free(j);
}

void srv_maintenance(struct srv *s, bool expire, bool count)
{
    struct adm_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return;
    j->s = s;
    j->expire = expire;
    j->count = count;
    j->job.run = maint_run;
    j->job.done = maint_done;
    if (srv_db_submit(s->db, &j->job) != 0)
        free(j);
}
