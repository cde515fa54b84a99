/* The one HTTP policy (STYLE rule 12): every libcurl transfer of
 * libotachain and of its programs is set up here, so that a TLS floor, a
 * CA file, a client certificate or a slow-retrieval rule cannot be
 * forgotten by one of them.
 *
 * A policy is plain data owned by the caller: ota_http_policy_default(),
 * then the caller's options. ota_http_setup() applies it to an easy handle
 * once (protocols, TLS, certificates, connect deadline, redirects);
 * ota_http_xfer_begin() arms one transfer (its size cap and the
 * slow-retrieval rules) and ota_http_xfer_result() says how it ended, as
 * an otachain error that names the file.
 *
 * Slow retrieval (DESIGN §9; TUF's slow retrieval attack): a mirror that
 * sends just enough to keep a connection open must not hold a device for
 * hours. While a transfer runs, its progress callback judges, with the
 * policy's clock (an input: tests inject it), four rules; the first one
 * broken aborts the transfer with OTA_ERR_SLOW_RETRIEVAL:
 *   1. average: from grace_s after the transfer began, the body bytes
 *      received must average at least min_rate bytes/s since it began
 *      (an average, not libcurl's low-speed window, which a mirror can
 *      feed one byte per window);
 *   2. stall: a byte at least every stall_s seconds;
 *   3. deadline: the transfer ends within grace_s + expect / min_rate,
 *      expect being its pinned length (or its size cap where no length is
 *      pinned);
 *   4. round: it ends before the round's end (ota_http_round_start), so
 *      a whole update round has a deadline too.
 * A clock without a reading (OTA_TIME_NONE) judges nothing.
 *
 * Defaults (docs/decisions.md, "Transfers"): TLS 1.2 or newer with
 * certificate and host name verification (never switched off), http and
 * https only (a redirect from https only to https), connect within 10 s,
 * at least 1024 bytes/s on average after 10 s, no stall of 30 s, a round
 * of 24 h.
 */
#ifndef OTACHAIN_HTTP_H
#define OTACHAIN_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "otachain/clock.h"
#include "otachain/err.h"

#define OTA_HTTP_CONNECT_TIMEOUT_DEFAULT 10L          /* s */
#define OTA_HTTP_MIN_RATE_DEFAULT        1024u        /* bytes/s, average */
#define OTA_HTTP_GRACE_DEFAULT           10L          /* s before the average is judged */
#define OTA_HTTP_STALL_DEFAULT           30L          /* s without a byte */
#define OTA_HTTP_ROUND_DEFAULT           (24L * 3600) /* s for a whole update round */
#define OTA_HTTP_MAX_REDIRS_DEFAULT      5L

struct ota_http_policy {
    const char *ca_file;     /* PEM CAs to trust instead of the system's; NULL: system */
    const char *client_cert; /* PEM certificate (and chain) for mutual TLS; NULL: none */
    const char *client_key;  /* PEM key of client_cert; NULL: in client_cert's file */
    const char *user_agent;  /* NULL: "otachain" */
    long connect_timeout_s;  /* > 0 */
    long timeout_s;          /* a fixed cap on each whole transfer; 0: none */
    long max_redirs;         /* redirects followed (http/https only); 0: none */
    /* Slow retrieval (rules 1-3); min_rate 0 turns rules 1 and 3 off,
     * stall_s 0 rule 2 (for requests whose peer may think a while, like a
     * witness asked to cosign). */
    uint64_t min_rate; /* bytes/s */
    long grace_s;
    long stall_s;
    /* Rule 4: a round lasts round_s (0: no round deadline); round_end_ms
     * is its end on the clock below, set by ota_http_round_start
     * (INT64_MAX until then). */
    long round_s;
    int64_t round_end_ms;
    /* The clock the rules read (seconds); NULL: CLOCK_MONOTONIC. */
    const struct ota_clock *clock;
};

/* Fills p with the defaults above (no CA file, no client certificate; a
 * round of 24 h, not started). */
void ota_http_policy_default(struct ota_http_policy *p);

/* Starts a round of p->round_s from now on p's clock: every transfer
 * under p must end by then (rule 4). round_s 0 (or a clock without a
 * reading): no round deadline. */
void ota_http_round_start(struct ota_http_policy *p);

/* Now on p's clock, in ms; OTA_TIME_NONE without a reading. */
int64_t ota_http_now_ms(const struct ota_http_policy *p);

/* Whether url is an absolute http:// or https:// URL (the only schemes
 * any transfer may use). */
bool ota_http_url_ok(const char *url);

/* Applies p to easy once, before its first transfer: http/https only,
 * TLS >= 1.2 with peer and host verification, ca_file, client_cert and
 * client_key, connect timeout, timeout_s, redirects, HTTP/2 over TLS when
 * offered, no signals, user agent. errbuf (CURL_ERROR_SIZE bytes, or
 * NULL) receives libcurl's messages. OTA_ERR_INVALID_ARG for a policy out
 * of range (det says which field), OTA_ERR_NOT_FOUND / OTA_ERR_PERMISSION
 * when a certificate or key file cannot be read, OTA_ERR_UNSUPPORTED when
 * libcurl refuses an option. */
OTA_WUR int ota_http_setup(CURL *easy, const struct ota_http_policy *p, char *errbuf,
                           struct ota_detail *det);

/* One transfer's slow-retrieval state: caller-owned storage that must
 * stay in place from ota_http_xfer_begin until the transfer ended. */
struct ota_http_xfer {
    const struct ota_http_policy *p;
    const char *what;    /* names the file in errors (the URL) */
    int64_t start_ms;    /* when it began */
    int64_t progress_ms; /* when the last new byte arrived */
    int64_t deadline_ms; /* rule 3, or INT64_MAX */
    uint64_t bytes;      /* body bytes received so far */
    int err;             /* OTA_ERR_SLOW_RETRIEVAL once a rule broke, else 0 */
    char why[160];       /* which rule, with the numbers */
};

/* Arms the next transfer on easy (set up by ota_http_setup with the same
 * p): what names it in errors (kept by pointer); url's scheme chooses
 * the redirect schemes (https: only https); expect is the length pinned
 * by signed metadata, or the size cap where none is (0: unknown, no
 * rule-3 deadline); cap (0: none) makes libcurl refuse a larger
 * Content-Length (CURLE_FILESIZE_EXCEEDED). OTA_ERR_INVALID_ARG for a URL
 * that is not http(s) (det says so), OTA_ERR_UNSUPPORTED if libcurl
 * refuses an option. */
OTA_WUR int ota_http_xfer_begin(struct ota_http_xfer *x, CURL *easy,
                                const struct ota_http_policy *p, const char *what, const char *url,
                                uint64_t expect, uint64_t cap, struct ota_detail *det);

/* The rules, judged at now_ms with dl body bytes received: 0 to go on,
 * OTA_ERR_SLOW_RETRIEVAL (x->err and x->why set) to stop. Called by the
 * progress callback that ota_http_xfer_begin installs; public so that
 * callers with another transport and the tests can judge the same way. */
int ota_http_xfer_check(struct ota_http_xfer *x, int64_t now_ms, uint64_t dl);

/* How a transfer ended, for the cases the caller's own callbacks did not
 * decide (a write callback that stopped it knows why): CURLE_OK -> 0; a
 * rule broken -> OTA_ERR_SLOW_RETRIEVAL, det "WHAT: WHY"; anything else
 * (connect, TLS, timeout_s, protocol) -> OTA_ERR_NETWORK, det "WHAT:
 * libcurl's message". errbuf as given to ota_http_setup, or NULL. */
OTA_WUR int ota_http_xfer_result(const struct ota_http_xfer *x, CURLcode cc, const char *errbuf,
                                 struct ota_detail *det);

#endif
