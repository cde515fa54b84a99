/* The check-in's proof bundles (bundles.h). */
#include "bundles.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/bundle_build.h"
#include "repository.h"

struct entry {
    struct ota_bundle_request key;
    struct srv_bundle *b;
};

struct srv_bundle_cache {
    pthread_mutex_t mu;
    struct entry e[SRV_BUNDLE_CACHE_ENTRIES]; /* e[0] the oldest */
    size_t n;
    size_t bytes;
};

struct srv_bundle_cache *srv_bundle_cache_new(void)
{
    struct srv_bundle_cache *c = calloc(1, sizeof(*c));

    if (c != NULL)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

void srv_bundle_cache_free(struct srv_bundle_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        srv_bundle_put(c->e[i].b);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void srv_bundle_put(struct srv_bundle *b)
{
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static bool same_key(const struct ota_bundle_request *a, const struct ota_bundle_request *b)
{
    return a->root_version == b->root_version && a->checkpoint_size == b->checkpoint_size &&
           a->snapshot_version == b->snapshot_version && a->targets_version == b->targets_version;
}

bool srv_bundle_current(const struct srv_repo_state *s, const struct ota_checkin *rep)
{
    if (!s->published)
        return true;
    if (rep->root_version != s->root_version || rep->timestamp_version != s->timestamp_version)
        return false;
    if (!s->has_checkpoint)
        return true;
    return rep->has_checkpoint && rep->checkpoint_size == s->checkpoint->size &&
           memcmp(rep->checkpoint_hash, s->checkpoint->root, sizeof(rep->checkpoint_hash)) == 0;
}

void srv_bundle_request(struct ota_bundle_request *req, const struct ota_checkin *rep)
{
    memset(req, 0, sizeof(*req));
    req->root_version = rep->root_version;
    req->checkpoint_size = rep->has_checkpoint ? rep->checkpoint_size : 0;
    req->snapshot_version = rep->snapshot_version;
    req->targets_version = rep->targets_version;
}

struct srv_bundle *srv_bundle_lookup(struct srv_repo_state *s, const struct ota_bundle_request *req)
{
    struct srv_bundle_cache *c = s->bundles;
    struct srv_bundle *b = NULL;

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        if (same_key(&c->e[i].key, req)) {
            b = c->e[i].b;
            atomic_fetch_add(&b->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return b;
}

/* Keeps b (one more reference) unless it alone exceeds cap; the oldest
 * entries go until it fits. */
static void insert(struct srv_bundle_cache *c, const struct ota_bundle_request *req,
                   struct srv_bundle *b, size_t cap)
{
    if (b->len > cap)
        return;
    pthread_mutex_lock(&c->mu);
    while (c->n > 0 && (c->n == SRV_BUNDLE_CACHE_ENTRIES || c->bytes + b->len > cap)) {
        c->bytes -= c->e[0].b->len;
        srv_bundle_put(c->e[0].b);
        memmove(&c->e[0], &c->e[1], (c->n - 1) * sizeof(c->e[0]));
        c->n--;
    }
    atomic_fetch_add(&b->refs, 1);
    c->e[c->n].key = *req;
    c->e[c->n].b = b;
    c->n++;
    c->bytes += b->len;
    pthread_mutex_unlock(&c->mu);
}

int srv_bundle_get(struct srv_bundle **out, bool *built, struct srv_repo_state *s,
                   const char *public_dir, const struct ota_bundle_request *req, size_t cache_bytes,
                   struct ota_detail *det)
{
    struct ota_fetcher *f = NULL;
    struct ota_buf buf;
    struct srv_bundle *b;
    int rc;

    *built = false;
    *out = srv_bundle_lookup(s, req);
    if (*out != NULL)
        return 0;
    rc = srv_bundle_fetcher(&f, s, public_dir);
    if (rc != 0)
        return rc;
    ota_buf_init(&buf, OTA_CHECKIN_BUNDLE_MAX);
    rc = ota_bundle_build(&buf, f, req, det);
    ota_fetcher_free(f);
    if (rc != 0) {
        ota_buf_free(&buf);
        return rc;
    }
    b = malloc(sizeof(*b) + buf.len);
    if (b == NULL) {
        ota_buf_free(&buf);
        return OTA_ERR_NOMEM;
    }
    atomic_init(&b->refs, 1);
    b->len = buf.len;
    memcpy(b->data, buf.data, buf.len);
    ota_buf_free(&buf);
    insert(s->bundles, req, b, cache_bytes);
    *built = true;
    *out = b;
    return 0;
}

/* ---- the view of one state ---------------------------------------------------- */

struct view {
    struct srv_repo_state *s; /* a reference */
    struct ota_fetcher *dir;
};

static int from_memory(const uint8_t *data, size_t len, const char *name, uint64_t max,
                       ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    if (data == NULL) {
        ota_detail_set(det, "%s: not published", name);
        return OTA_ERR_NOT_FOUND;
    }
    if (len > max) {
        ota_detail_set(det, "%s: %zu bytes, more than %" PRIu64, name, len, max);
        return OTA_ERR_TOO_LARGE;
    }
    return sink(sink_ctx, data, len);
}

/* The version N of "N<suffix>" (name starting with prefix), or 0. */
static uint64_t version_of(const char *name, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
    uint64_t v = 0;

    if (n <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + n - sl, suffix) != 0)
        return 0;
    for (size_t i = pl; i < n - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    return v;
}

static int view_fetch(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                      ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    struct view *v = ctx;
    const struct srv_repo_state *s = v->s;
    uint64_t n;

    if (kind == OTA_FETCH_METADATA && strcmp(name, "timestamp.json") == 0)
        return from_memory(s->timestamp_bytes, s->timestamp_len, name, max, sink, sink_ctx, det);
    if (kind == OTA_FETCH_LEDGER && strcmp(name, "checkpoint") == 0)
        return from_memory(s->checkpoint_bytes, s->checkpoint_len, "ledger/checkpoint", max, sink,
                           sink_ctx, det);
    n = kind == OTA_FETCH_METADATA ? version_of(name, "", ".root.json")
        : kind == OTA_FETCH_LEDGER ? version_of(name, "root-checkpoint/", "")
                                   : 0;
    if (n > s->root_version) {
        ota_detail_set(det, "%s: newer than this state's root v%" PRIu64, name, s->root_version);
        return OTA_ERR_NOT_FOUND;
    }
    return v->dir->fetch(v->dir->ctx, kind, name, max, sink, sink_ctx, det);
}

static void view_destroy(void *ctx)
{
    struct view *v = ctx;

    ota_fetcher_free(v->dir);
    srv_repo_put(v->s);
    free(v);
}

int srv_bundle_fetcher(struct ota_fetcher **out, struct srv_repo_state *s, const char *public_dir)
{
    struct ota_fetcher *f = calloc(1, sizeof(*f));
    struct view *v = calloc(1, sizeof(*v));
    int rc;

    *out = NULL;
    if (f == NULL || v == NULL) {
        free(f);
        free(v);
        return OTA_ERR_NOMEM;
    }
    rc = ota_fetcher_dir_new(&v->dir, public_dir);
    if (rc != 0) {
        free(f);
        free(v);
        return rc;
    }
    atomic_fetch_add(&s->refs, 1);
    v->s = s;
    f->fetch = view_fetch;
    f->destroy = view_destroy;
    f->ctx = v;
    *out = f;
    return 0;
}
