/* The verified repository behind both sources of the device agent
 * (agent_int.h), and the mirror-list source (agent.h).
 *
 * check: for each mirror in order, a fresh TUF client on the trusted
 * state runs the whole workflow with the ledger rule; the first mirror
 * that verifies is used and the newest release for this product and
 * hardware is chosen from its targets. A mirror that fails (a forged,
 * stale, forked or withheld file, a stall, a refusal) is dropped for the
 * round and the next one tried. Whatever a failed refresh verified before
 * its failing step stays trusted (the TUF client's rule); nothing a lying
 * mirror served is.
 * fetch: the chunk index through the TUF client (length and SHA-256
 * pinned by the signed targets), then the data-plane fetch straight into
 * the slot the agent opened (reference delta or missing chunks, each
 * checked against the index, the whole image against its target after
 * re-reading the slot); on a mirror failure the next mirror is verified
 * and asked for the same image (pinned by its SHA-256), resuming from the
 * chunks already verified in the slot.
 *
 * Mirror mode bypasses rollouts: a device takes a release as soon as a
 * mirror serves it (docs/agent.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "otachain/bundle.h"
#include "otachain/chunk_index.h"
#include "otachain/dp_fetch.h"
#include "otachain/output.h"
#include "otachain/fetch.h"
#include "otachain/http.h"
#include "otachain/release.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"

struct agent_repo {
    char *urls[OTA_AGENT_MAX_MIRRORS];
    unsigned n;
    char *tuf_dir;
    uint8_t *root;
    size_t root_len;
    char *ca_file;
    char *client_cert;
    char *client_key;
    struct ota_http_policy http; /* one policy for every transfer of the round */
    const struct ota_clock *clock;
    const struct ota_fs_hook *hook;
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    void (*progress)(void *ctx, uint64_t written, uint64_t total);
    void *progress_ctx;
    const char *kind; /* "mirror" or "server", in log lines */
    /* The base URL verify verified, and its client. */
    int active;
    struct ota_tuf_client *client;
    struct ota_fetcher *fetcher;
};

static void mlog(const struct agent_repo *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mlog(const struct agent_repo *m, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    if (m->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    m->log(m->log_ctx, msg);
}

static void drop_client(struct agent_repo *m)
{
    ota_tuf_client_free(m->client);
    ota_fetcher_free(m->fetcher);
    m->client = NULL;
    m->fetcher = NULL;
    m->active = -1;
}

/* Runs the TUF workflow (with the ledger rule) against mirror i. */
static int verify_mirror(struct agent_repo *m, unsigned i, struct ota_detail *det)
{
    struct ota_tuf_client_opts copts;
    int64_t now = ota_clock_now(m->clock);
    int rc;

    drop_client(m);
    rc = ota_fetcher_http_new(&m->fetcher, m->urls[i], &m->http, det);
    if (rc != 0) {
        ota_detail_prefix(det, m->urls[i]);
        return rc;
    }
    memset(&copts, 0, sizeof(copts));
    copts.state_dir = m->tuf_dir;
    copts.hook = m->hook;
    rc = ota_tuf_client_open(&m->client, &copts, m->root, m->root_len, det);
    /* The clock as it reads (0, or none at all, included): the client
     * judges it against its time floor (DESIGN §6). */
    if (rc == 0)
        rc = ota_tuf_client_refresh(m->client, m->fetcher, now, det);
    if (rc != 0) {
        ota_tuf_client_free(m->client);
        ota_fetcher_free(m->fetcher);
        m->client = NULL;
        m->fetcher = NULL;
        return rc;
    }
    m->active = (int)i;
    return 0;
}

int agent_repo_verify_bundle(struct agent_repo *m, const uint8_t *data, size_t len,
                             struct ota_detail *det)
{
    struct ota_tuf_client_opts copts;
    struct ota_bundle *b = malloc(sizeof(*b)); /* about 50 KiB */
    int64_t now = ota_clock_now(m->clock);
    int rc;

    drop_client(m);
    if (b == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_bundle_parse(b, data, len, det);
    if (rc == 0)
        rc = ota_fetcher_http_new(&m->fetcher, m->urls[0], &m->http, det);
    memset(&copts, 0, sizeof(copts));
    copts.state_dir = m->tuf_dir;
    copts.hook = m->hook;
    if (rc == 0)
        rc = ota_tuf_client_open(&m->client, &copts, m->root, m->root_len, det);
    if (rc == 0)
        rc = ota_tuf_client_refresh_bundle(m->client, b, now, det);
    free(b);
    if (rc != 0) {
        ota_detail_prefix(det, "the check-in's proof bundle");
        drop_client(m);
        return rc;
    }
    m->active = 0;
    return 0;
}

/* -------------------------------------------------------------- choice */

/* The release of an image target (one that names a chunk index), or
 * false for index targets and malformed customs (never offered). */
static bool release_of(struct ota_release *r, const struct ota_tuf_target *t)
{
    return t->custom != NULL && json_object_get(t->custom, "index") != NULL &&
           strlen(t->path) <= OTA_JOURNAL_PATH_MAX && ota_release_from_target(r, t, NULL) == 0 &&
           r->index[0] != '\0' && r->version.len <= OTA_JOURNAL_VERSION_MAX;
}

static bool lists_hardware(const struct ota_release *r, const char *hw)
{
    for (size_t i = 0; i < r->nhardware; i++)
        if (strcmp(r->hardware[i], hw) == 0)
            return true;
    return false;
}

/* The release module's view of this device: product, hardware, security
 * floor, and the installed version (NULL when it is not SemVer: then
 * nothing is newer). */
static void device_of(struct ota_release_device *rdev, struct ota_semver *installed,
                      const struct ota_device_view *dev)
{
    const struct ota_journal *j = dev->journal;

    memset(rdev, 0, sizeof(*rdev));
    rdev->product = dev->product;
    rdev->hardware = dev->hardware;
    rdev->security_floor = j->security_floor;
    if (ota_semver_parse(installed, j->installed.version, strlen(j->installed.version), NULL) == 0)
        rdev->installed = installed;
}

static void offer_of(struct ota_offer *out, const struct ota_tuf_target *t,
                     const struct ota_release *r)
{
    snprintf(out->target, sizeof(out->target), "%s", t->path);
    memcpy(out->version, r->version.text, r->version.len + 1); /* len checked */
    memcpy(out->sha256, t->sha256, OTA_SHA256_LEN);
    out->length = t->length;
    out->security_version = r->security_version;
}

void agent_repo_installed(const struct agent_repo *m, struct ota_journal_release *out,
                          const struct ota_device_view *dev)
{
    const struct ota_tuf_meta *md = ota_tuf_client_trusted(m->client, OTA_TUF_TARGETS);
    struct ota_release_device rdev;
    struct ota_semver installed;
    struct ota_release r;

    device_of(&rdev, &installed, dev);
    for (size_t i = 0; md != NULL && rdev.installed != NULL && i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];

        if (release_of(&r, t) && strcmp(r.product, dev->product) == 0 &&
            lists_hardware(&r, dev->hardware) && ota_semver_compare(&r.version, &installed) == 0) {
            memcpy(out->sha256, t->sha256, OTA_SHA256_LEN);
            out->length = t->length;
            out->security_version = r.security_version;
            snprintf(out->target, sizeof(out->target), "%s", t->path);
        }
    }
}

int agent_repo_choose(struct agent_repo *m, struct ota_offer *out, bool *found,
                      const struct ota_device_view *dev, struct ota_detail *det)
{
    const struct ota_journal *j = dev->journal;
    const struct ota_tuf_meta *md = ota_tuf_client_trusted(m->client, OTA_TUF_TARGETS);
    const struct ota_tuf_target *best = NULL;
    struct ota_release bestr, r;
    struct ota_semver installed;
    struct ota_release_device rdev;
    unsigned skipped_floor = 0, skipped_blocked = 0;

    *found = false;
    memset(out, 0, sizeof(*out));
    if (m->client == NULL) {
        ota_detail_set(det, "choosing a release before the repository was verified");
        return OTA_ERR_INVALID_ARG;
    }
    /* The release module's verdict decides (product, hardware, security
     * floor, newer); a version that is not SemVer installs nothing newer. */
    device_of(&rdev, &installed, dev);
    for (size_t i = 0; md != NULL && i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        int verdict;

        if (!release_of(&r, t))
            continue;
        verdict = ota_release_may_install(&r, &rdev, NULL);
        if (verdict == OTA_ERR_SECURITY_FLOOR && rdev.installed != NULL &&
            ota_semver_compare(&r.version, &installed) > 0)
            skipped_floor++;
        if (verdict != 0)
            continue;
        if (ota_journal_is_blocked(j, t->sha256)) {
            skipped_blocked++;
            continue;
        }
        if (best == NULL || ota_semver_compare(&r.version, &bestr.version) > 0) {
            best = t;
            bestr = r;
        }
    }
    if (skipped_floor > 0 || skipped_blocked > 0)
        mlog(m, "%u newer release(s) below the security floor %" PRIu64 ", %u that failed here",
             skipped_floor, j->security_floor, skipped_blocked);
    if (best == NULL)
        return 0;
    offer_of(out, best, &bestr);
    *found = true;
    mlog(m, "%s %s: %s offers %s", m->kind, m->urls[m->active], dev->product, out->version);
    return 0;
}

int agent_repo_judge(struct agent_repo *m, struct ota_offer *out, const char *target,
                     const uint8_t sha256[OTA_SHA256_LEN], uint64_t length,
                     const struct ota_device_view *dev, struct ota_detail *det)
{
    const struct ota_tuf_target *t =
        ota_tuf_find_target(ota_tuf_client_trusted(m->client, OTA_TUF_TARGETS), target);
    struct ota_release r;
    struct ota_semver installed;
    struct ota_release_device rdev;
    int rc;

    memset(out, 0, sizeof(*out));
    if (t == NULL || !release_of(&r, t)) {
        ota_detail_set(det, "%.300s is not a release image in the verified targets", target);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    if (t->length != length) {
        ota_detail_set(det, "%.300s: assigned with %" PRIu64 " bytes, signed with %" PRIu64, target,
                       length, t->length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (!ota_ct_equal(t->sha256, sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "%.300s: assigned with another SHA-256 than the signed one", target);
        return OTA_ERR_HASH_MISMATCH;
    }
    device_of(&rdev, &installed, dev);
    rc = ota_release_may_install(&r, &rdev, det);
    if (rc == 0 && ota_journal_is_blocked(dev->journal, t->sha256)) {
        ota_detail_set(det, "%.300s failed on this device before", target);
        rc = OTA_ERR_BLOCKED;
    }
    if (rc != 0) {
        ota_detail_prefix(det, target);
        return rc;
    }
    offer_of(out, t, &r);
    return 0;
}

static int fetch_from(struct agent_repo *m, const struct ota_offer *offer,
                      const struct ota_install_dst *dst, struct ota_detail *det)
{
    const struct ota_tuf_target *t =
        ota_tuf_find_target(ota_tuf_client_trusted(m->client, OTA_TUF_TARGETS), offer->target);
    struct ota_dp_tuf_index ix;
    struct ota_dp_fetch_cfg cfg;
    struct ota_dp_fetch_stats st;
    char dp_dir[PATH_MAX];
    char *served = NULL;
    int cur = -1, rc;

    memset(&st, 0, sizeof(st));
    if (t == NULL || t->length != offer->length ||
        memcmp(t->sha256, offer->sha256, OTA_SHA256_LEN) != 0) {
        ota_detail_set(det, "%s no longer lists %s with the same length and SHA-256",
                       m->urls[m->active], offer->target);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    /* The index is kept in the work directory after the install:
     * otachain-agent audit re-hashes the slot against it. It is fetched
     * now, not only when the data plane needs it, so that an update by a
     * reference delta leaves it too (docs/decisions.md, issue 12). */
    memset(&ix, 0, sizeof(ix));
    ix.client = m->client;
    ix.fetcher = m->fetcher;
    ix.image = t;
    ix.dir = dst->work_dir;
    rc = ota_dp_tuf_index_download(&ix, det);
    if (rc != 0)
        return rc;
    if (snprintf(dp_dir, sizeof(dp_dir), "%s/dp", dst->work_dir) >= (int)sizeof(dp_dir))
        return OTA_ERR_INVALID_ARG;
    rc = ota_tuf_target_file_path(&served, t);
    if (rc != 0)
        return rc;
    if (dst->current_path != NULL && dst->current_length != 0) {
        cur = open(dst->current_path, O_RDONLY | O_CLOEXEC);
        if (cur < 0)
            mlog(m, "active slot %s not readable (%s): fetching every chunk", dst->current_path,
                 strerror(errno));
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.get_index = ota_dp_tuf_index_open;
    cfg.index_ctx = &ix;
    cfg.fetcher = m->fetcher;
    cfg.image_target = served;
    cfg.image_length = t->length;
    cfg.image_sha256 = t->sha256;
    cfg.current_fd = cur;
    cfg.current_length = cur >= 0 ? dst->current_length : 0;
    cfg.base_url = m->urls[m->active];
    cfg.out = dst->out;
    cfg.state_dir = dp_dir;
    cfg.http = &m->http;
    cfg.progress = m->progress;
    cfg.progress_ctx = m->progress_ctx;
    rc = ota_dp_fetch(&st, &cfg, det);
    if (st.delta_tried && st.delta_error != 0)
        mlog(m, "reference delta refused (%s: %s); fell back to chunks",
             ota_errname(st.delta_error), st.delta_detail);
    if (rc == 0)
        mlog(m,
             "fetched %s from %s by %s: %" PRIu64 " bytes in %" PRIu32 " requests; chunks: %" PRIu32
             " total, %" PRIu32 " already verified, %" PRIu32 " copied, %" PRIu32 " fetched",
             offer->version, m->urls[m->active], st.delta_used ? "reference delta" : "chunks",
             st.bytes_fetched, st.requests, st.chunks, st.chunks_done, st.chunks_copied,
             st.chunks_fetched);
    if (cur >= 0)
        close(cur);
    free(served);
    return rc;
}

static bool local_error(int rc)
{
    return rc == OTA_ERR_NOMEM || rc == OTA_ERR_LOCKED || rc == OTA_ERR_INVALID_ARG ||
           rc == OTA_ERR_PERMISSION;
}

int agent_repo_fetch(struct agent_repo *m, const struct ota_offer *offer,
                     const struct ota_install_dst *dst, struct ota_detail *det)
{
    int first = m->active, rc = OTA_ERR_NO_SOURCE;
    struct ota_detail d;

    if (first < 0) {
        ota_detail_set(det, "fetch before a successful check");
        return OTA_ERR_INVALID_ARG;
    }
    for (unsigned k = 0; k < m->n; k++) {
        unsigned i = ((unsigned)first + k) % m->n;

        d.msg[0] = '\0';
        rc = 0;
        if ((int)i != m->active)
            rc = verify_mirror(m, i, &d);
        if (rc == 0)
            rc = fetch_from(m, offer, dst, &d);
        if (rc == 0 || local_error(rc)) {
            if (rc != 0)
                ota_detail_set(det, "%s", d.msg);
            return rc;
        }
        mlog(m, "%s %s dropped for this round: %s: %s", m->kind, m->urls[i], ota_errname(rc),
             d.msg);
        ota_detail_set(det, "%s: %s", m->urls[i], d.msg);
    }
    return rc;
}

int agent_repo_verify(struct agent_repo *m, struct ota_detail *det)
{
    struct ota_detail d;
    int rc = OTA_ERR_NO_SOURCE;

    for (unsigned i = 0; i < m->n; i++) {
        d.msg[0] = '\0';
        rc = verify_mirror(m, i, &d);
        if (rc == 0)
            return 0;
        mlog(m, "%s %s dropped for this round: %s: %s", m->kind, m->urls[i], ota_errname(rc),
             d.msg);
        ota_detail_set(det, "%s: %s", m->urls[i], d.msg);
    }
    return rc;
}

void agent_repo_round_start(struct agent_repo *m)
{
    /* One deadline for the whole round, metadata and image (slow
     * retrieval: include/otachain/http.h rule 4). */
    ota_http_round_start(&m->http);
}

const struct ota_http_policy *agent_repo_http(const struct agent_repo *m)
{
    return &m->http;
}

static uint64_t version_of(const struct ota_tuf_client *c, enum ota_tuf_role role)
{
    const struct ota_tuf_meta *md = ota_tuf_client_trusted(c, role);

    return md != NULL ? md->version : 0;
}

int agent_repo_trusted(struct agent_repo *m, struct ota_checkin *c, struct ota_detail *det)
{
    struct ota_tuf_client *own = NULL;
    const struct ota_tuf_client *client = m->client;
    const struct ota_checkpoint *cp;

    if (client == NULL) {
        struct ota_tuf_client_opts copts;
        int rc;

        memset(&copts, 0, sizeof(copts));
        copts.state_dir = m->tuf_dir;
        copts.hook = m->hook;
        rc = ota_tuf_client_open(&own, &copts, m->root, m->root_len, det);
        if (rc != 0) {
            ota_detail_prefix(det, m->tuf_dir);
            return rc;
        }
        client = own;
    }
    c->root_version = version_of(client, OTA_TUF_ROOT);
    c->timestamp_version = version_of(client, OTA_TUF_TIMESTAMP);
    c->snapshot_version = version_of(client, OTA_TUF_SNAPSHOT);
    c->targets_version = version_of(client, OTA_TUF_TARGETS);
    cp = ota_tuf_client_checkpoint(client);
    c->has_checkpoint = cp != NULL;
    if (cp != NULL) {
        c->checkpoint_size = cp->size;
        memcpy(c->checkpoint_hash, cp->root, sizeof(c->checkpoint_hash));
    }
    ota_tuf_client_free(own);
    return 0;
}

void agent_repo_free(struct agent_repo *m)
{
    if (m == NULL)
        return;
    drop_client(m);
    for (unsigned i = 0; i < m->n; i++)
        free(m->urls[i]);
    free(m->tuf_dir);
    free(m->root);
    free(m->ca_file);
    free(m->client_cert);
    free(m->client_key);
    free(m);
}

int agent_repo_new(struct agent_repo **out, const char *kind, const struct ota_mirror_cfg *cfg,
                   struct ota_detail *det)
{
    struct agent_repo *m = calloc(1, sizeof(*m));
    int rc = 0;

    *out = NULL;
    if (m == NULL)
        return OTA_ERR_NOMEM;
    m->active = -1;
    m->kind = kind;
    if (cfg->nurls == 0 || cfg->nurls > OTA_AGENT_MAX_MIRRORS) {
        ota_detail_set(det, "%u %s URLs (1..%u)", cfg->nurls, kind, OTA_AGENT_MAX_MIRRORS);
        rc = OTA_ERR_INVALID_ARG;
    }
    for (unsigned i = 0; rc == 0 && i < cfg->nurls; i++) {
        m->urls[i] = strdup(cfg->urls[i]);
        if (m->urls[i] == NULL)
            rc = OTA_ERR_NOMEM;
        else
            m->n++;
    }
    if (rc == 0) {
        m->tuf_dir = strdup(cfg->tuf_dir);
        m->root = malloc(cfg->bootstrap_len + 1);
        m->ca_file = cfg->ca_file != NULL ? strdup(cfg->ca_file) : NULL;
        m->client_cert = cfg->client_cert != NULL ? strdup(cfg->client_cert) : NULL;
        m->client_key = cfg->client_key != NULL ? strdup(cfg->client_key) : NULL;
        if (m->tuf_dir == NULL || m->root == NULL || (cfg->ca_file != NULL && m->ca_file == NULL) ||
            (cfg->client_cert != NULL && m->client_cert == NULL) ||
            (cfg->client_key != NULL && m->client_key == NULL))
            rc = OTA_ERR_NOMEM;
    }
    if (rc != 0) {
        agent_repo_free(m);
        return rc;
    }
    memcpy(m->root, cfg->bootstrap_root, cfg->bootstrap_len);
    m->root_len = cfg->bootstrap_len;
    ota_http_policy_default(&m->http);
    m->http.ca_file = m->ca_file;
    m->http.client_cert = m->client_cert;
    m->http.client_key = m->client_key;
    m->http.user_agent = "otachain-agent";
    m->http.clock = cfg->transfer_clock;
    m->clock = cfg->clock;
    m->hook = cfg->hook;
    m->log = cfg->log;
    m->log_ctx = cfg->log_ctx;
    m->progress = cfg->progress;
    m->progress_ctx = cfg->progress_ctx;
    *out = m;
    return 0;
}

/* ------------------------------------------------------ the mirror source */

static int mirror_check(void *ctx, struct ota_offer *out, bool *found,
                        struct ota_journal_release *installed_out,
                        const struct ota_device_view *dev, struct ota_detail *det)
{
    struct agent_repo *m = ctx;
    int rc;

    *found = false;
    memset(out, 0, sizeof(*out));
    agent_repo_round_start(m);
    rc = agent_repo_verify(m, det);
    if (rc != 0)
        return rc;
    if (installed_out != NULL)
        agent_repo_installed(m, installed_out, dev);
    return agent_repo_choose(m, out, found, dev, det);
}

static int mirror_fetch(void *ctx, const struct ota_offer *offer, const struct ota_install_dst *dst,
                        struct ota_detail *det)
{
    return agent_repo_fetch(ctx, offer, dst, det);
}

static void mirror_destroy(void *ctx)
{
    agent_repo_free(ctx);
}

int ota_source_mirror_new(struct ota_source **out, const struct ota_mirror_cfg *cfg,
                          struct ota_detail *det)
{
    struct ota_source *s = calloc(1, sizeof(*s));
    struct agent_repo *m = NULL;
    int rc;

    *out = NULL;
    if (s == NULL)
        return OTA_ERR_NOMEM;
    rc = agent_repo_new(&m, "mirror", cfg, det);
    if (rc != 0) {
        free(s);
        return rc;
    }
    s->name = "mirrors";
    s->check = mirror_check;
    s->fetch = mirror_fetch;
    s->report = NULL;
    s->destroy = mirror_destroy;
    s->ctx = m;
    *out = s;
    return 0;
}
