/* The HTTP policy: see include/otachain/http.h. */
#include "otachain/http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#define NO_LIMIT INT64_MAX

void ota_http_policy_default(struct ota_http_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->connect_timeout_s = OTA_HTTP_CONNECT_TIMEOUT_DEFAULT;
    p->max_redirs = OTA_HTTP_MAX_REDIRS_DEFAULT;
    p->min_rate = OTA_HTTP_MIN_RATE_DEFAULT;
    p->grace_s = OTA_HTTP_GRACE_DEFAULT;
    p->stall_s = OTA_HTTP_STALL_DEFAULT;
    p->round_s = OTA_HTTP_ROUND_DEFAULT;
    p->round_end_ms = NO_LIMIT;
}

int64_t ota_http_now_ms(const struct ota_http_policy *p)
{
    struct timespec ts;

    if (p != NULL && p->clock != NULL) {
        int64_t s = ota_clock_now(p->clock);

        if (s == OTA_TIME_NONE || s > NO_LIMIT / 1000 || s < -(NO_LIMIT / 1000))
            return OTA_TIME_NONE;
        return s * 1000;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return OTA_TIME_NONE;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ota_http_round_start(struct ota_http_policy *p)
{
    int64_t now = ota_http_now_ms(p);
    long seconds = p->round_s;

    if (seconds <= 0 || now == OTA_TIME_NONE || (int64_t)seconds > (NO_LIMIT - now) / 1000)
        p->round_end_ms = NO_LIMIT;
    else
        p->round_end_ms = now + (int64_t)seconds * 1000;
}

bool ota_http_url_ok(const char *url)
{
    if (url == NULL)
        return false;
    if (strncmp(url, "http://", 7) == 0)
        return url[7] != '\0' && url[7] != '/';
    if (strncmp(url, "https://", 8) == 0)
        return url[8] != '\0' && url[8] != '/';
    return false;
}

/* A certificate or key file must be readable now: libcurl would only say
 * "problem with the local SSL certificate" at the first transfer. */
static int readable(const char *what, const char *path, struct ota_detail *det)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;

        ota_detail_set(det, "%s %s: %s", what, path, strerror(e));
        return ota_fs_errno(e);
    }
    close(fd);
    return 0;
}

int ota_http_setup(CURL *easy, const struct ota_http_policy *p, char *errbuf,
                   struct ota_detail *det)
{
    bool ok;
    int rc;

    if (easy == NULL || p == NULL)
        return OTA_ERR_INVALID_ARG;
    if (p->connect_timeout_s <= 0 || p->timeout_s < 0 || p->max_redirs < 0 || p->grace_s < 0 ||
        p->stall_s < 0 || p->round_s < 0) {
        ota_detail_set(det, "HTTP policy: timeouts, grace and redirects must not be negative, "
                            "the connect timeout above 0");
        return OTA_ERR_INVALID_ARG;
    }
    if (p->client_key != NULL && p->client_cert == NULL) {
        ota_detail_set(det, "a client key without a client certificate");
        return OTA_ERR_INVALID_ARG;
    }
    if (p->ca_file != NULL && (rc = readable("CA file", p->ca_file, det)) != 0)
        return rc;
    if (p->client_cert != NULL && (rc = readable("client certificate", p->client_cert, det)) != 0)
        return rc;
    if (p->client_key != NULL && (rc = readable("client key", p->client_key, det)) != 0)
        return rc;
    ok = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, p->max_redirs > 0 ? 1L : 0L) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_MAXREDIRS, p->max_redirs) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_USERAGENT,
                          p->user_agent != NULL ? p->user_agent : "otachain") == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, p->connect_timeout_s) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_TIMEOUT, p->timeout_s) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_FAILONERROR, 0L) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
         curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
    if (ok && errbuf != NULL)
        ok = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
    if (ok && p->ca_file != NULL)
        ok = curl_easy_setopt(easy, CURLOPT_CAINFO, p->ca_file) == CURLE_OK;
    if (ok && p->client_cert != NULL)
        ok = curl_easy_setopt(easy, CURLOPT_SSLCERT, p->client_cert) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_SSLKEY,
                              p->client_key != NULL ? p->client_key : p->client_cert) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK;
    if (!ok) {
        ota_detail_set(det, "libcurl refused an option of the HTTP policy");
        return OTA_ERR_UNSUPPORTED;
    }
    return 0;
}

int ota_http_xfer_check(struct ota_http_xfer *x, int64_t now_ms, uint64_t dl)
{
    const struct ota_http_policy *p = x->p;
    int64_t elapsed;

    if (x->err != 0)
        return x->err;
    if (now_ms == OTA_TIME_NONE)
        return 0;
    if (x->start_ms == OTA_TIME_NONE) { /* the clock had no reading at the start */
        x->start_ms = now_ms;
        x->progress_ms = now_ms;
    }
    if (dl > x->bytes) {
        x->bytes = dl;
        x->progress_ms = now_ms;
    }
    elapsed = now_ms - x->start_ms;
    if (now_ms >= p->round_end_ms) {
        snprintf(x->why, sizeof(x->why),
                 "the update round's deadline passed (%" PRIu64 " bytes in %" PRId64 " s)",
                 x->bytes, elapsed / 1000);
    } else if (now_ms > x->deadline_ms) {
        snprintf(x->why, sizeof(x->why),
                 "not done within %" PRId64 " s (%" PRIu64 " bytes received; the deadline "
                 "allows %ld s plus %" PRIu64 " bytes/s)",
                 (x->deadline_ms - x->start_ms) / 1000, x->bytes, p->grace_s, p->min_rate);
    } else if (p->min_rate > 0 && elapsed > 0 && elapsed >= (int64_t)p->grace_s * 1000 &&
               x->bytes * 1000 / (uint64_t)elapsed < p->min_rate) {
        snprintf(x->why, sizeof(x->why),
                 "%" PRIu64 " bytes in %" PRId64 " s: an average of %" PRIu64
                 " bytes/s, below the minimum of %" PRIu64 " bytes/s after %ld s",
                 x->bytes, elapsed / 1000, x->bytes * 1000 / (uint64_t)elapsed, p->min_rate,
                 p->grace_s);
    } else if (p->stall_s > 0 && now_ms - x->progress_ms >= (int64_t)p->stall_s * 1000) {
        snprintf(x->why, sizeof(x->why), "no byte for %" PRId64 " s (%" PRIu64 " bytes received)",
                 (now_ms - x->progress_ms) / 1000, x->bytes);
    } else {
        return 0;
    }
    x->err = OTA_ERR_SLOW_RETRIEVAL;
    return x->err;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct ota_http_xfer *x = ud;

    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    return ota_http_xfer_check(x, ota_http_now_ms(x->p), dlnow > 0 ? (uint64_t)dlnow : 0) != 0;
}

int ota_http_xfer_begin(struct ota_http_xfer *x, CURL *easy, const struct ota_http_policy *p,
                        const char *what, const char *url, uint64_t expect, uint64_t cap,
                        struct ota_detail *det)
{
    bool https = url != NULL && strncmp(url, "https://", 8) == 0;
    curl_off_t max = cap == 0 || cap > (uint64_t)INT64_MAX ? 0 : (curl_off_t)cap;

    memset(x, 0, sizeof(*x));
    x->p = p;
    x->what = what != NULL ? what : url;
    if (!ota_http_url_ok(url)) {
        ota_detail_set(det, "%s: only http:// and https:// URLs are fetched",
                       url != NULL ? url : "(null)");
        return OTA_ERR_INVALID_ARG;
    }
    x->start_ms = ota_http_now_ms(p);
    x->progress_ms = x->start_ms;
    x->deadline_ms = NO_LIMIT;
    if (p->min_rate > 0 && expect > 0 && x->start_ms != OTA_TIME_NONE) {
        uint64_t s = expect / p->min_rate + (uint64_t)p->grace_s + 1;

        if (s < (uint64_t)(NO_LIMIT / 1000) && (int64_t)(s * 1000) < NO_LIMIT - x->start_ms)
            x->deadline_ms = x->start_ms + (int64_t)(s * 1000);
    }
    if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https") !=
            CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, max) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L) != CURLE_OK) {
        ota_detail_set(det, "%s: libcurl refused an option of the transfer", x->what);
        return OTA_ERR_UNSUPPORTED;
    }
    return 0;
}

int ota_http_xfer_result(const struct ota_http_xfer *x, CURLcode cc, const char *errbuf,
                         struct ota_detail *det)
{
    if (cc == CURLE_OK)
        return 0;
    if (cc == CURLE_ABORTED_BY_CALLBACK && x->err != 0) {
        ota_detail_set(det, "%s: %s", x->what, x->why);
        return x->err;
    }
    ota_detail_set(det, "%s: %s", x->what,
                   errbuf != NULL && errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    return OTA_ERR_NETWORK;
}
