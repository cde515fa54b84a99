/* The blocking libcurl driver of the witness round (witness_curl.h). */
#include "otachain/witness_curl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/http.h"
#include "otachain/tlog_policy.h"

/* One transfer: the witness it is for and what came back. */
struct xfer {
    struct ota_witness_round *r;
    size_t i;
    CURL *easy;
    struct curl_slist *hdr;
    struct ota_buf reply;
    struct ota_http_policy policy;
    struct ota_http_xfer x;
    char url[OTA_TLOG_POLICY_MAX_URL + 32];
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;

    /* More than a reply may be is cut: the round judges what it got. */
    if (ota_buf_append(&x->reply, p, size * nmemb) != 0)
        return 0;
    return size * nmemb;
}

static void end_xfer(struct xfer *x, CURLM *multi)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdr);
    ota_buf_free(&x->reply);
    x->easy = NULL;
    x->hdr = NULL;
}

/* Starts witness x->i's current request on multi, under the one HTTP
 * policy (http.h) with the round's deadlines: a witness may take a while
 * to validate before it answers, so no rate rules; no redirects for a
 * POST. */
static int start_xfer(struct xfer *x, CURLM *multi, const struct ota_witness_curl_opts *o)
{
    const struct ota_witness_slot *w = &x->r->w[x->i];
    size_t bl = strlen(w->url);
    long timeout = o->timeout_ms > 0 ? o->timeout_ms : OTA_WITNESS_CURL_TIMEOUT_MS;
    long connect = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : timeout / 2;

    while (bl > 0 && w->url[bl - 1] == '/')
        bl--;
    if (snprintf(x->url, sizeof(x->url), "%.*s/add-checkpoint", (int)bl, w->url) >=
        (int)sizeof(x->url))
        return OTA_ERR_TOO_LARGE;
    ota_buf_init(&x->reply, OTA_WITNESS_REPLY_MAX);
    ota_http_policy_default(&x->policy);
    x->policy.ca_file = o->ca_file;
    x->policy.connect_timeout_s = connect >= 1000 ? (connect + 999) / 1000 : 1;
    x->policy.timeout_s = timeout >= 1000 ? (timeout + 999) / 1000 : 1;
    x->policy.min_rate = 0;
    x->policy.stall_s = 0;
    x->policy.max_redirs = 0;
    x->easy = curl_easy_init();
    x->hdr = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    if (x->easy == NULL || x->hdr == NULL)
        return OTA_ERR_NOMEM;
    if (ota_http_setup(x->easy, &x->policy, NULL, NULL) != 0 ||
        ota_http_xfer_begin(&x->x, x->easy, &x->policy, x->url, x->url, OTA_WITNESS_REPLY_MAX,
                            OTA_WITNESS_REPLY_MAX, NULL) != 0 ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, (const char *)w->req.data) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->req.len) !=
            CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdr) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK)
        return OTA_ERR_NETWORK;
    return curl_multi_add_handle(multi, x->easy) == CURLM_OK ? 0 : OTA_ERR_NETWORK;
}

/* Whether any of the request may have reached the witness: nothing left
 * when the connection was never made. */
static bool maybe_sent(CURL *easy, CURLcode res)
{
    long req = 0;

    if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
        res == CURLE_COULDNT_RESOLVE_PROXY || res == CURLE_UNSUPPORTED_PROTOCOL ||
        res == CURLE_URL_MALFORMAT)
        return false;
    if (curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &req) != CURLE_OK)
        return true;
    return req > 0;
}

/* A finished transfer: its outcome into the round; true when the round
 * wants the request sent again (409 with a size). */
static bool finish(struct xfer *x, CURLcode res)
{
    long status = 0;
    bool retry = false;

    if (res != CURLE_OK) {
        ota_witness_round_failed(x->r, x->i, maybe_sent(x->easy, res), curl_easy_strerror(res));
        return false;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    ota_witness_round_reply(x->r, x->i, status, x->reply.data, x->reply.len, &retry);
    return retry;
}

int ota_witness_curl_run(struct ota_witness_round *r, const struct ota_witness_curl_opts *opts,
                         struct ota_detail *det)
{
    static const struct ota_witness_curl_opts defaults = {0, 0, NULL};
    const struct ota_witness_curl_opts *o = opts != NULL ? opts : &defaults;
    struct xfer *xs = calloc(r->n > 0 ? r->n : 1, sizeof(*xs));
    CURLM *multi = NULL;
    int running = 0;
    int rc = 0;

    if (xs == NULL)
        return OTA_ERR_NOMEM;
    if (r->n == 0) {
        free(xs);
        return 0; /* no witness to ask ("quorum none") */
    }
    multi = curl_multi_init();
    if (multi == NULL) {
        free(xs);
        return OTA_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->n; i++) {
        xs[i].r = r;
        xs[i].i = i;
        if (!ota_witness_round_wants(r, i))
            continue;
        rc = start_xfer(&xs[i], multi, o);
        if (rc == OTA_ERR_NOMEM)
            goto out;
        if (rc != 0) {
            ota_witness_round_failed(r, i, false, "the request could not be set up");
            end_xfer(&xs[i], multi);
            rc = 0;
        }
    }
    do {
        CURLMsg *m;
        int left;

        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            ota_detail_set(det, "libcurl could not run the witness requests");
            rc = OTA_ERR_NETWORK;
            break;
        }
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct xfer *x = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (!finish(x, m->data.result)) {
                end_xfer(x, multi);
                continue;
            }
            end_xfer(x, multi);
            if (start_xfer(x, multi, o) != 0) {
                ota_witness_round_failed(r, x->i, false, "the retry could not be set up");
                end_xfer(x, multi);
            } else {
                running++;
            }
        }
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 200, NULL) != CURLM_OK) {
            ota_detail_set(det, "libcurl could not wait for the witnesses");
            rc = OTA_ERR_NETWORK;
            break;
        }
    } while (running > 0);
out:
    for (size_t i = 0; i < r->n; i++) {
        end_xfer(&xs[i], multi);
        /* Not finished: the request may have left. */
        ota_witness_round_failed(r, i, true, "no answer: the round was interrupted");
    }
    if (multi != NULL)
        curl_multi_cleanup(multi);
    free(xs);
    return rc;
}
