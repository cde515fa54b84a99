/* The update-server source of the device agent (agent.h; the device API
 * of docs/api/device-v1.md).
 *
 * check: one check-in (POST <server>/api/v1/checkin over mutual TLS with
 * the device certificate) says what runs, what the update is doing (from
 * the install journal) and what the device trusts; the answer says when
 * to come back and what to install. Then the repository the server's
 * device listener serves is verified exactly as a mirror's is (the TUF
 * workflow with the ledger rule, agent_int.h), and the assignment is
 * taken only when the verified targets list it with the same length and
 * SHA-256 and the release rules allow it: the assignment is a hint,
 * never trust. A refused assignment fails the check with the rule's error
 * and names the release, so the agent reports it as failed and the server
 * never assigns it again.
 *
 * The answer's proof bundle (docs/formats/bundle.md), when there is one,
 * carries the metadata and the proofs: the same TUF workflow and ledger
 * rule run on it (ota_tuf_client_refresh_bundle), and only targets (the
 * chunk index, the image) come from the listener. Without a bundle (the
 * server says the device is current, or sends none), or with one made
 * for another trusted state, the same verification runs against the
 * listener's repository layout, so expiry and freshness are always judged
 * by the device.
 *
 * report: a check-in with the device's state and the refusal or failure
 * (its error name and detail) as last_error. Without a journal (it cannot
 * be loaded) the state is the booted slot, what the device trusts and
 * the error, with AGENT_VERSION_UNKNOWN as the running version. A check-in that did not reach
 * the server this round is not retried by reports until the next check.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "otachain/cjson.h"

#define CHECKIN_PATH "/api/v1/checkin"
/* running.version when the install journal cannot be loaded (docs/agent.md,
 * "Troubleshooting"): below every release, marked as unknown. */
#define AGENT_VERSION_UNKNOWN "0.0.0-unknown"
#define ERROR_BODY_MAX        (16u * 1024)

struct server_src {
    struct agent_repo *repo;
    struct ota_source *src; /* its poll_interval is set from answers */
    char *checkin_url;
    CURL *easy; /* check-ins, on one keep-alive connection */
    char errbuf[CURL_ERROR_SIZE];
    struct ota_buf body; /* the answer being received */
    int abort_err;
    bool down; /* this round's check-in did not reach the server */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
};

static void slog(const struct server_src *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void slog(const struct server_src *s, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    if (s->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, msg);
}

/* ------------------------------------------------------ the check-in body */

/* Copies src into dst (cap bytes with the NUL) as printable ASCII, which
 * the API asks of a detail: other bytes become '?'. */
static void printable_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;

    for (; src != NULL && src[i] != '\0' && i + 1 < cap; i++)
        dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] <= 0x7e ? src[i] : '?';
    dst[i] = '\0';
}

static void copy_if(char *dst, size_t cap, const char *src, bool ok)
{
    dst[0] = '\0';
    if (ok && strlen(src) < cap)
        memcpy(dst, src, strlen(src) + 1);
}

/* The update's state as the journal says it (agent.h, struct ota_report). */
static void update_of(struct ota_checkin *c, const struct ota_journal *j)
{
    const char *target = "";

    c->state = OTA_UPDATE_NONE;
    switch (j->phase) {
    case OTA_PHASE_FETCHING:
        c->state = OTA_UPDATE_DOWNLOADING;
        target = j->pending.target;
        break;
    case OTA_PHASE_INSTALLED:
        c->state = OTA_UPDATE_INSTALLED;
        target = j->pending.target;
        break;
    case OTA_PHASE_ARMED:
        c->state = OTA_UPDATE_REBOOTING;
        target = j->pending.target;
        break;
    case OTA_PHASE_ROLLING_BACK:
        c->state = OTA_UPDATE_ROLLED_BACK;
        target = j->pending.target;
        break;
    default:
        if (j->outcome == OTA_OUTCOME_COMMITTED)
            c->state = OTA_UPDATE_COMMITTED;
        else if (j->outcome == OTA_OUTCOME_ROLLED_BACK || j->outcome == OTA_OUTCOME_FELL_BACK)
            c->state = OTA_UPDATE_ROLLED_BACK;
        else if (j->outcome == OTA_OUTCOME_FAILED)
            c->state = OTA_UPDATE_FAILED;
        target = j->outcome_target;
        if (c->state != OTA_UPDATE_NONE && j->outcome_error[0] != '\0') {
            copy_if(c->error_name, sizeof(c->error_name), j->outcome_error, true);
            printable_copy(c->error_detail, sizeof(c->error_detail), j->outcome_detail);
        }
        break;
    }
    if (c->state != OTA_UPDATE_NONE &&
        !ota_checkin_target_valid(target, strlen(target))) { /* unknown: say nothing */
        c->state = OTA_UPDATE_NONE;
        c->error_name[0] = '\0';
        c->error_detail[0] = '\0';
        return;
    }
    if (c->state != OTA_UPDATE_NONE)
        memcpy(c->state_target, target, strlen(target) + 1);
}

static int build(struct ota_checkin *c, struct server_src *s, const struct ota_device_view *dev,
                 const struct ota_report *r, struct ota_detail *det)
{
    const struct ota_journal *j = dev->journal;
    const struct ota_journal_release *run = j != NULL ? &j->installed : NULL;
    const char *slot;

    memset(c, 0, sizeof(*c));
    /* During a trial the pending release runs. */
    if (j != NULL && dev->booted_slot != NULL && j->phase != OTA_PHASE_IDLE &&
        j->phase != OTA_PHASE_FETCHING && strcmp(dev->booted_slot, j->pending.slot) == 0)
        run = &j->pending;
    copy_if(c->product, sizeof(c->product), dev->product, true);
    copy_if(c->hardware, sizeof(c->hardware), dev->hardware, true);
    /* Without a journal the running version is not known: a SemVer that
     * says so (the API requires one), no target, no update state. */
    copy_if(c->version, sizeof(c->version), run != NULL ? run->version : AGENT_VERSION_UNKNOWN,
            true);
    if (run != NULL)
        copy_if(c->target, sizeof(c->target), run->target,
                ota_checkin_target_valid(run->target, strlen(run->target)));
    slot = dev->booted_slot != NULL ? dev->booted_slot : run != NULL ? run->slot : "";
    copy_if(c->slot, sizeof(c->slot), slot,
            ota_checkin_name_valid(slot, strlen(slot), OTA_CHECKIN_SLOT_MAX));
    if (j != NULL)
        update_of(c, j);
    if (r != NULL && r->refused != NULL && r->refused[0] != '\0' &&
        ota_checkin_target_valid(r->refused, strlen(r->refused))) {
        c->state = OTA_UPDATE_FAILED;
        memcpy(c->state_target, r->refused, strlen(r->refused) + 1);
    }
    if (r != NULL && r->error != 0) {
        copy_if(c->error_name, sizeof(c->error_name), ota_errname(r->error), true);
        printable_copy(c->error_detail, sizeof(c->error_detail), r->detail);
    }
    return agent_repo_trusted(s->repo, c, det);
}

/* --------------------------------------------------------- the transfer */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct server_src *s = ud;
    size_t n = size * nmemb;

    if (ota_buf_append(&s->body, data, n) != 0) {
        s->abort_err = OTA_ERR_TOO_LARGE;
        return 0;
    }
    return n;
}

/* The error a refusal's body names ({"error": NAME, "message": TEXT}),
 * else OTA_ERR_NETWORK; det says "URL: HTTP STATUS NAME: TEXT". */
static int refusal(const struct server_src *s, long status, struct ota_detail *det)
{
    const struct ota_json_limits lim = {ERROR_BODY_MAX, 4, 0, 1};
    const char *name = NULL, *msg = NULL;
    json_t *doc = NULL;
    int rc = OTA_ERR_NETWORK;

    if (s->body.len <= ERROR_BODY_MAX &&
        ota_json_parse(&doc, s->body.data != NULL ? (const void *)s->body.data : "", s->body.len,
                       &lim, NULL) == 0) {
        name = json_string_value(json_object_get(doc, "error"));
        msg = json_string_value(json_object_get(doc, "message"));
    }
    for (unsigned i = 0; name != NULL && i < ota_err_count; i++)
        if (strcmp(ota_errname(ota_err_codes[i]), name) == 0)
            rc = ota_err_codes[i];
    {
        char text[256];

        printable_copy(text, sizeof(text), msg != NULL ? msg : "");
        ota_detail_set(det, "%s: HTTP %ld%s%.64s%s%s", s->checkin_url, status, name ? " " : "",
                       name ? name : "", text[0] ? ": " : "", text);
    }
    json_decref(doc);
    return rc;
}

/* One check-in: the body of c, the answer parsed into reply (its bundle
 * bytes into bundle). Sets s->down when the server was not reached. */
static int post(struct server_src *s, const struct ota_checkin *c, struct ota_checkin_reply *reply,
                struct ota_buf *bundle, struct ota_detail *det)
{
    struct ota_http_xfer xfer;
    struct ota_buf req;
    struct curl_slist *hdrs = NULL;
    CURLcode cc;
    long status = 0;
    int rc;

    ota_buf_init(&req, OTA_CHECKIN_BODY_MAX);
    rc = ota_checkin_format(&req, c, det);
    ota_buf_free(&s->body);
    ota_buf_init(&s->body, OTA_CHECKIN_REPLY_MAX);
    s->abort_err = 0;
    s->errbuf[0] = '\0';
    if (rc == 0)
        rc = ota_http_xfer_begin(&xfer, s->easy, agent_repo_http(s->repo), s->checkin_url,
                                 s->checkin_url, OTA_CHECKIN_REPLY_MAX, OTA_CHECKIN_REPLY_MAX, det);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (rc == 0 &&
        (hdrs == NULL || curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
         curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)req.len) != CURLE_OK ||
         curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, req.data) != CURLE_OK)) {
        ota_detail_set(det, "%s: cannot set up the request", s->checkin_url);
        rc = OTA_ERR_NOMEM;
    }
    if (rc == 0) {
        cc = curl_easy_perform(s->easy);
        (void)curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_WRITE_ERROR && s->abort_err != 0) {
            ota_detail_set(det, "%s: answer above %u bytes", s->checkin_url, OTA_CHECKIN_REPLY_MAX);
            rc = s->abort_err;
        } else if (cc != CURLE_OK) {
            rc = ota_http_xfer_result(&xfer, cc, s->errbuf, det);
            s->down = true;
        } else if (status != 200) {
            rc = refusal(s, status, det);
        } else {
            rc = ota_checkin_reply_parse(reply, bundle,
                                         s->body.data != NULL ? (const void *)s->body.data : "",
                                         s->body.len, det);
            if (rc != 0)
                ota_detail_prefix(det, s->checkin_url);
        }
    }
    (void)curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
    (void)curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    ota_buf_free(&req);
    ota_buf_free(&s->body);
    return rc;
}

static int checkin(struct server_src *s, const struct ota_device_view *dev,
                   const struct ota_report *r, struct ota_checkin_reply *reply,
                   struct ota_buf *bundle, struct ota_detail *det)
{
    struct ota_checkin c;
    int rc = build(&c, s, dev, r, det);

    if (rc == 0)
        rc = post(s, &c, reply, bundle, det);
    if (rc == 0 && reply->poll_interval > 0)
        s->src->poll_interval = reply->poll_interval;
    return rc;
}

/* ------------------------------------------------------------ the source */

static int server_check(void *ctx, struct ota_offer *out, bool *found,
                        struct ota_journal_release *installed_out,
                        const struct ota_device_view *dev, struct ota_detail *det)
{
    struct server_src *s = ctx;
    struct ota_checkin_reply reply;
    struct ota_checkin_assignment *a = &reply.assignment;
    struct ota_buf bundle;
    int rc;

    *found = false;
    memset(out, 0, sizeof(*out));
    s->down = false;
    agent_repo_round_start(s->repo);
    ota_buf_init(&bundle, OTA_CHECKIN_BUNDLE_MAX);
    memset(&reply, 0, sizeof(reply));
    rc = checkin(s, dev, NULL, &reply, &bundle, det);
    if (rc != 0) {
        ota_buf_free(&bundle);
        return rc;
    }
    slog(s, "checked in with %s: %s%s, %s (next in %" PRIu32 " s)", s->checkin_url,
         reply.has_assignment ? "assigned " : "no assignment",
         reply.has_assignment ? a->version : "",
         bundle.len > 0 ? "with a proof bundle" : "no proof bundle", reply.poll_interval);
    rc = OTA_ERR_BUNDLE_BASE;
    if (bundle.len > 0) {
        rc = agent_repo_verify_bundle(s->repo, bundle.data, bundle.len, det);
        /* A bundle for another state than this device's (it changed since
         * the server looked, or the server is behind) is no verdict: the
         * repository layout decides, with the same verification. */
        if (rc == OTA_ERR_BUNDLE_BASE || rc == OTA_ERR_BUNDLE_INCOMPLETE)
            slog(s, "proof bundle not usable (%s: %s): verifying from %s", ota_errname(rc),
                 det != NULL ? det->msg : "", s->checkin_url);
        else if (rc == 0)
            slog(s, "verified the proof bundle (%zu bytes)", bundle.len);
    }
    ota_buf_free(&bundle);
    /* No bundle ("current"): a full refresh all the same, so that expiry
     * and the checkpoint's freshness are judged now, not taken on the
     * server's word. */
    if (rc == OTA_ERR_BUNDLE_BASE || rc == OTA_ERR_BUNDLE_INCOMPLETE)
        rc = agent_repo_verify(s->repo, det);
    if (rc != 0)
        return rc;
    if (installed_out != NULL)
        agent_repo_installed(s->repo, installed_out, dev);
    if (!reply.has_assignment)
        return 0;
    rc = agent_repo_judge(s->repo, out, a->target, a->sha256, a->length, dev, det);
    if (rc != 0) {
        slog(s, "assignment %s refused: %s", a->target, ota_errname(rc));
        memset(out, 0, sizeof(*out));
        memcpy(out->target, a->target, strlen(a->target) + 1); /* both capped at 255 */
        return rc;
    }
    *found = true;
    return 0;
}

static int server_fetch(void *ctx, const struct ota_offer *offer, const struct ota_install_dst *dst,
                        struct ota_detail *det)
{
    struct server_src *s = ctx;

    return agent_repo_fetch(s->repo, offer, dst, det);
}

static int server_report(void *ctx, const struct ota_device_view *dev, const struct ota_report *r,
                         struct ota_detail *det)
{
    struct server_src *s = ctx;
    struct ota_checkin_reply reply;
    struct ota_buf bundle;
    int rc;

    /* Without a journal no check runs: this report is the round's only
     * check-in, so it is tried whatever an earlier round met. */
    if (dev->journal == NULL)
        s->down = false;
    if (s->down) {
        ota_detail_set(det, "%s was not reached this round", s->checkin_url);
        return OTA_ERR_NETWORK;
    }
    ota_buf_init(&bundle, OTA_CHECKIN_BUNDLE_MAX);
    rc = checkin(s, dev, r, &reply, &bundle, det);
    ota_buf_free(&bundle);
    if (rc == 0 && r != NULL && r->error != 0)
        slog(s, "reported %s to %s", ota_errname(r->error), s->checkin_url);
    return rc;
}

static void server_destroy(void *ctx)
{
    struct server_src *s = ctx;

    if (s == NULL)
        return;
    agent_repo_free(s->repo);
    if (s->easy != NULL)
        curl_easy_cleanup(s->easy);
    ota_buf_free(&s->body);
    free(s->checkin_url);
    free(s);
}

int ota_source_server_new(struct ota_source **out, const struct ota_mirror_cfg *cfg,
                          struct ota_detail *det)
{
    struct ota_source *src = calloc(1, sizeof(*src));
    struct server_src *s = calloc(1, sizeof(*s));
    size_t n;
    int rc = 0;

    *out = NULL;
    if (src == NULL || s == NULL) {
        free(src);
        free(s);
        return OTA_ERR_NOMEM;
    }
    ota_buf_init(&s->body, OTA_CHECKIN_REPLY_MAX);
    if (cfg->nurls != 1 || cfg->client_cert == NULL) {
        ota_detail_set(det, "the update server needs one URL and a device certificate");
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0)
        rc = agent_repo_new(&s->repo, "server", cfg, det);
    if (rc == 0) {
        n = strlen(cfg->urls[0]);
        while (n > 0 && cfg->urls[0][n - 1] == '/')
            n--;
        s->checkin_url = malloc(n + sizeof(CHECKIN_PATH));
        s->easy = curl_easy_init();
        if (s->checkin_url == NULL || s->easy == NULL)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0) {
        memcpy(s->checkin_url, cfg->urls[0], n);
        memcpy(s->checkin_url + n, CHECKIN_PATH, sizeof(CHECKIN_PATH));
        rc = ota_http_setup(s->easy, agent_repo_http(s->repo), s->errbuf, det);
    }
    if (rc == 0 && (curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
                    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s) != CURLE_OK))
        rc = OTA_ERR_UNSUPPORTED;
    if (rc != 0) {
        server_destroy(s);
        free(src);
        return rc;
    }
    s->log = cfg->log;
    s->log_ctx = cfg->log_ctx;
    s->src = src;
    src->name = "server";
    src->check = server_check;
    src->fetch = server_fetch;
    src->report = server_report;
    src->destroy = server_destroy;
    src->ctx = s;
    *out = src;
    return 0;
}
