/* The event-loop driver of the witness round (witness_driver.h). */
#include "witness_driver.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wslot {
    struct srv_wdrv *d;
    size_t i;
    struct evhttp_connection *conn; /* the request in flight's */
};

struct srv_wdrv {
    struct event_base *base;
    struct evdns_base *dns;
    struct ota_witness_round *r;
    unsigned timeout_s;
    void (*done)(void *ctx);
    void *ctx;
    size_t outstanding;
    bool finished;
    struct wslot slots[OTA_WITNESS_ROUND_MAX];
};

static void finish(struct srv_wdrv *d)
{
    if (d->outstanding > 0 || d->finished)
        return;
    d->finished = true;
    d->done(d->ctx);
    free(d);
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg);
}

/* Splits "http://HOST[:PORT][/PREFIX]" into host, port and the path of
 * its add-checkpoint endpoint. false: not an http URL this driver takes. */
static bool split_url(const char *url, char *host, size_t hcap, unsigned *port, char *path,
                      size_t pcap)
{
    const char *h, *slash, *colon;
    size_t hl;
    unsigned long p = 80;

    if (strncmp(url, "http://", 7) != 0)
        return false;
    h = url + 7;
    slash = strchr(h, '/');
    if (slash == NULL)
        slash = h + strlen(h);
    colon = memchr(h, ':', (size_t)(slash - h));
    hl = (size_t)((colon ? colon : slash) - h);
    if (hl == 0 || hl >= hcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (colon != NULL) {
        char *end;
        p = strtoul(colon + 1, &end, 10);
        if (end != slash || p == 0 || p > 65535)
            return false;
    }
    *port = (unsigned)p;
    /* The prefix without a trailing '/', then /add-checkpoint. */
    {
        size_t pl = strlen(slash);
        while (pl > 0 && slash[pl - 1] == '/')
            pl--;
        if (snprintf(path, pcap, "%.*s/add-checkpoint", (int)pl, slash) >= (int)pcap)
            return false;
    }
    return true;
}

static void send_one(struct srv_wdrv *d, size_t i);

/* A connection is freed after its request's callback returned (never
 * inside it). */
static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

static void on_reply(struct evhttp_request *req, void *arg)
{
    struct wslot *sl = arg;
    struct srv_wdrv *d = sl->d;
    long status = req ? evhttp_request_get_response_code(req) : 0;
    struct timeval zero = {0, 0};

    d->outstanding--;
    if (sl->conn != NULL &&
        event_base_once(d->base, -1, EV_TIMEOUT, conn_free_cb, sl->conn, &zero) != 0)
        evhttp_connection_free_on_completion(sl->conn); /* out of memory: the fallback */
    sl->conn = NULL;
    if (status == 0) {
        ota_witness_round_failed(d->r, sl->i, true,
                                 "no answer (connection failed, reset or timed out)");
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const uint8_t *body;
        bool retry = false;

        if (len > OTA_WITNESS_REPLY_MAX)
            len = OTA_WITNESS_REPLY_MAX;
        body = evbuffer_pullup(in, (ssize_t)len);
        ota_witness_round_reply(d->r, sl->i, status, body ? body : (const uint8_t *)"", len,
                                &retry);
        if (retry)
            send_one(d, sl->i);
    }
    finish(d);
}

static void send_one(struct srv_wdrv *d, size_t i)
{
    struct ota_witness_slot *w = &d->r->w[i];
    char host[256], path[1024], hosthdr[300];
    unsigned port = 0;
    struct evhttp_connection *conn;
    struct evhttp_request *req;

    if (w->url == NULL || !split_url(w->url, host, sizeof(host), &port, path, sizeof(path))) {
        ota_witness_round_failed(d->r, i, false,
                                 w->url && strncmp(w->url, "https://", 8) == 0
                                     ? "https witness URLs are not driven by the server yet"
                                     : "no http:// URL for this witness");
        return;
    }
    conn = evhttp_connection_base_new(d->base, d->dns, host, (unsigned short)port);
    req = conn ? evhttp_request_new(on_reply, &d->slots[i]) : NULL;
    if (req == NULL) {
        if (conn != NULL)
            evhttp_connection_free(conn);
        ota_witness_round_failed(d->r, i, false, "out of memory");
        return;
    }
    evhttp_connection_set_timeout(conn, (int)d->timeout_s);
    snprintf(hosthdr, sizeof(hosthdr), "%s:%u", host, port);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hosthdr);
    evbuffer_add(evhttp_request_get_output_buffer(req), w->req.data, w->req.len);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) != 0) {
        /* evhttp freed req. */
        evhttp_connection_free(conn);
        ota_witness_round_failed(d->r, i, false, "the request could not be started");
        return;
    }
    d->slots[i].conn = conn;
    d->outstanding++;
}

int srv_wdrv_start(struct event_base *base, struct evdns_base *dns, struct ota_witness_round *r,
                   unsigned timeout_s, void (*done)(void *ctx), void *ctx)
{
    struct srv_wdrv *d = calloc(1, sizeof(*d));
    struct timeval zero = {0, 0};

    if (d == NULL)
        return OTA_ERR_NOMEM;
    d->base = base;
    d->dns = dns;
    d->r = r;
    d->timeout_s = timeout_s ? timeout_s : 10;
    d->done = done;
    d->ctx = ctx;
    for (size_t i = 0; i < r->n; i++) {
        d->slots[i].d = d;
        d->slots[i].i = i;
        if (ota_witness_round_wants(r, i))
            send_one(d, i);
    }
    if (d->outstanding == 0 && event_base_once(base, -1, EV_TIMEOUT, finish_cb, d, &zero) != 0) {
        free(d);
        return OTA_ERR_NOMEM;
    }
    return 0;
}
