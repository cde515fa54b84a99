/* The event loop of otachain-server (server.h). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "otachain/fleet.h"

#define ADMIN_BODY_MIN (16u << 20) /* a targets metadata upload */
#define LISTEN_BACKLOG 4096        /* capped by net.core.somaxconn */

int64_t srv_now(const struct srv *s)
{
    return ota_clock_now(s->clock);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Entity";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

int srv_status_of(int err)
{
    switch (err) {
    case 0:
        return 200;
    case OTA_ERR_AUTH:
        return 401;
    case OTA_ERR_SCOPE:
    case OTA_ERR_REVOKED:
    case OTA_ERR_CERT_EXPIRED:
    case OTA_ERR_CERT_ROLE:
        return 403;
    case OTA_ERR_NOT_FOUND:
        return 404;
    case OTA_ERR_EXISTS:
    case OTA_ERR_ROLLBACK:
    case OTA_ERR_BUNDLE_BASE:
        return 409;
    case OTA_ERR_TOO_LARGE:
        return 413;
    case OTA_ERR_BUSY:
    case OTA_ERR_QUORUM:
    case OTA_ERR_SPLIT_VIEW:
        return 503;
    case OTA_ERR_NOMEM:
    case OTA_ERR_IO:
    case OTA_ERR_CRYPTO:
    case OTA_ERR_LOCKED:
    case OTA_ERR_SCHEMA:
    case OTA_ERR_NOT_IN_LOG:
    case OTA_ERR_PROOF:
        return 500;
    default:
        if (err <= OTA_ERR_JSON_SYNTAX && err >= OTA_ERR_KEY_FORMAT)
            return 400;
        if (err == OTA_ERR_INVALID_ARG)
            return 400;
        return 422;
    }
}

/* ---- replies ---- */

static void drain_check(struct srv *s);

/* After the answer is handed to evhttp: r->req may be freed already. */
static void finish(struct srv_req *r, int status, size_t body_len)
{
    struct srv *s = r->srv;
    char qp[1100], qd[80], qa[140];
    int cls = status / 100;

    atomic_fetch_add(&s->metrics.requests[r->l->kind][cls >= 1 && cls <= 5 ? cls : 5], 1);
    atomic_fetch_add(&s->metrics.bytes[r->bytes_kind], body_len);
    if (r->err != 0)
        srv_metrics_error(&s->metrics, r->err);
    srv_log(s->log, "info", "request",
            "listener=%s peer=%s method=%s path=%s status=%d bytes=%zu device=%s actor=%s "
            "error=%s ms=%.1f",
            r->l->name, r->peer, r->method_name, srv_log_q(qp, sizeof(qp), r->path), status,
            body_len, srv_log_q(qd, sizeof(qd), r->device), srv_log_q(qa, sizeof(qa), r->actor),
            r->err ? ota_errname(r->err) : "-", ms_since(&r->t0));
    free(r->query);
    free(r);
    s->inflight--;
    if (s->draining)
        drain_check(s);
}

void srv_reply(struct srv_req *r, int status, const char *content_type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
    size_t len = body != NULL ? evbuffer_get_length(body) : 0;

    if (content_type != NULL && evhttp_find_header(h, "Content-Type") == NULL)
        evhttp_add_header(h, "Content-Type", content_type);
    if (evhttp_find_header(h, "Cache-Control") == NULL)
        evhttp_add_header(h, "Cache-Control", "no-store");
    if (r->srv->draining)
        evhttp_add_header(h, "Connection", "close");
    if (status == 503)
        evhttp_add_header(h, "Retry-After", "5");
    if (r->method == EVHTTP_REQ_HEAD && body != NULL) {
        char n[24];
        if (evhttp_find_header(h, "Content-Length") == NULL) {
            snprintf(n, sizeof(n), "%zu", len);
            evhttp_add_header(h, "Content-Length", n);
        }
        evbuffer_drain(body, len);
        len = 0;
    }
    evhttp_send_reply(r->req, status, reason(status), body);
    /* A plain connection's pass-through filter moves its output to the
     * socket only when more output arrives; enabling writes (what evhttp
     * does) does not, so a reply sent from outside a read callback would
     * wait: push it now. The connection lives until its write completes. */
    if (bev != NULL && r->l->ssl == NULL)
        bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);
    if (body != NULL)
        evbuffer_free(body);
    finish(r, status, len);
}

void srv_reply_data(struct srv_req *r, int status, const char *content_type, const void *data,
                    size_t len)
{
    struct evbuffer *b = evbuffer_new();

    if (b != NULL && len > 0 && evbuffer_add(b, data, len) != 0) {
        evbuffer_free(b);
        b = NULL;
    }
    srv_reply(r, b != NULL ? status : 500, content_type, b);
}

void srv_reply_json(struct srv_req *r, int status, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(doc);
    if (text == NULL) {
        r->err = OTA_ERR_NOMEM;
        srv_reply_data(r, 500, "application/json",
                       "{\"error\":\"nomem\",\"message\":\"out of memory\"}", 43);
        return;
    }
    srv_reply_data(r, status, "application/json", text, strlen(text));
    free(text);
}

void srv_reply_error(struct srv_req *r, int status, int err, const char *fmt, ...)
{
    char detail[OTA_DETAIL_LEN];
    char msg[OTA_DETAIL_LEN + 512];
    va_list ap;

    detail[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    snprintf(msg, sizeof(msg), "%s%s%s", ota_strerror(err), detail[0] ? ": " : "", detail);
    r->err = err;
    srv_reply_json(r, status, json_pack("{s:s,s:s}", "error", ota_errname(err), "message", msg));
}

const uint8_t *srv_body(struct srv_req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);

    *len = evbuffer_get_length(in);
    if (*len == 0)
        return NULL;
    return evbuffer_pullup(in, (ev_ssize_t)*len);
}

bool srv_query(const struct srv_req *r, const char *name, char *out, size_t cap)
{
    struct evkeyvalq q;
    const char *v;
    bool ok = true;

    out[0] = '\0';
    if (r->query == NULL)
        return true;
    if (evhttp_parse_query_str(r->query, &q) != 0)
        return false;
    v = evhttp_find_header(&q, name);
    if (v != NULL) {
        if (strlen(v) >= cap)
            ok = false;
        else
            memcpy(out, v, strlen(v) + 1);
    }
    evhttp_clear_headers(&q);
    return ok;
}

/* ---- connections ---- */

/* Every open connection is on its listener's list, so that the drain
 * can wait for their answers to leave (server.h 4), and is counted for
 * the cap (server.h 3). bev is the socket-level bufferevent: for TLS the
 * TLS one, for plain HTTP the socket under the pass-through filter. */
struct srv_conn {
    struct srv_conn *prev, *next;
    struct srv_listener *l;
    struct bufferevent *bev;
};

static struct srv_conn *conn_opened(struct srv_listener *l)
{
    struct srv *s = l->srv;
    struct srv_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->l = l;
    c->next = l->live;
    if (l->live != NULL)
        l->live->prev = c;
    l->live = c;
    l->conns++;
    atomic_store(&s->metrics.connections[l->kind], l->conns);
    if (l->conns >= s->cfg->max_connections && !l->paused && l->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(l->bound));
        l->paused = true;
        atomic_fetch_add(&s->metrics.conn_paused[l->kind], 1);
        srv_log(s->log, "warn", "accept_paused", "listener=%s connections=%llu", l->name,
                (unsigned long long)l->conns);
    }
    return c;
}

static void conn_closed(struct srv_conn *c)
{
    struct srv_listener *l = c->l;
    struct srv *s = l->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->live = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    if (l->conns > 0)
        l->conns--;
    atomic_store(&s->metrics.connections[l->kind], l->conns);
    if (l->paused && l->conns < s->cfg->max_connections && l->bound != NULL && !s->draining) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
        l->paused = false;
        srv_log(s->log, "info", "accept_resumed", "listener=%s connections=%llu", l->name,
                (unsigned long long)l->conns);
    }
    if (s->draining)
        drain_check(s);
}

/* OpenSSL calls this when a connection's SSL object is freed, which the
 * TLS bufferevent does when the connection goes. */
static void ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL)
        conn_closed(ptr);
}

/* A plain connection is a pass-through filter over the socket, only so
 * that its end is seen (libevent 2.1 tells nothing else). */
static void plain_gone(void *ctx)
{
    conn_closed(ctx);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct srv_listener *l = arg;
    struct srv *s = l->srv;
    struct bufferevent *bev;
    struct srv_conn *c;

    if (l->ssl != NULL) {
        SSL *ssl = SSL_new(l->ssl);
        int64_t now = srv_now(s);

        if (ssl == NULL)
            return NULL;
        /* The handshake judges validity on the server's clock (which
         * tests inject); every request checks it again (server.h 2). */
        if (now != OTA_TIME_NONE)
            X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl), (time_t)now);
        c = conn_opened(l);
        if (c == NULL || SSL_set_ex_data(ssl, s->ssl_ex_index, c) != 1) {
            if (c != NULL)
                conn_closed(c);
            SSL_free(ssl);
            return NULL;
        }
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL)
            return NULL; /* SSL_free ran, and so did ssl_ex_free */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        c->bev = bev;
    } else {
        struct bufferevent *sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (sock == NULL)
            return NULL;
        c = conn_opened(l);
        bev = c != NULL
                  ? bufferevent_filter_new(sock, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, plain_gone, c)
                  : NULL;
        if (bev == NULL) {
            if (c != NULL)
                conn_closed(c);
            bufferevent_free(sock);
            return NULL;
        }
        c->bev = sock;
    }
    if (l->rate != NULL)
        bufferevent_set_rate_limit(c->bev, l->rate);
    return bev;
}

/* ---- who is calling ---- */

static bool peer_is_proxy(struct srv *s, const char *peer)
{
    uint8_t a[16];

    if (peer == NULL)
        return false;
    for (size_t i = 0; i < s->nproxies; i++) {
        if (inet_pton(s->proxies[i].family, peer, a) == 1 &&
            memcmp(a, s->proxies[i].addr, s->proxies[i].family == AF_INET ? 4 : 16) == 0)
            return true;
    }
    return false;
}

static SSL *req_ssl(struct srv_req *r)
{
    struct evhttp_connection *c = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = c != NULL ? evhttp_connection_get_bufferevent(c) : NULL;

    return bev != NULL && r->l->ssl != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

/* The device: from the TLS session (a resumed one carries the
 * certificate of its first handshake), or a trusted proxy's headers. */
static int identify_device(struct srv_req *r, struct ota_detail *det)
{
    struct srv *s = r->srv;
    SSL *ssl = req_ssl(r);

    if (ssl != NULL) {
        X509 *x = SSL_get0_peer_certificate(ssl);
        enum ota_cert_role role;
        int64_t nb = 0;
        int64_t now = srv_now(s);
        int rc;

        if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
            ota_detail_set(det, "no verified client certificate");
            return OTA_ERR_AUTH;
        }
        rc = ota_cert_role_of(&role, x, det);
        if (rc == 0 && role != OTA_CERT_ROLE_DEVICE) {
            ota_detail_set(det, "a %s certificate, not a device certificate",
                           ota_cert_role_name(role));
            rc = OTA_ERR_CERT_ROLE;
        }
        if (rc == 0)
            rc = ota_cert_id(r->device, x, det);
        if (rc == 0)
            rc = ota_cert_serial_hex(r->serial, x);
        if (rc == 0)
            rc = ota_cert_validity(&nb, &r->not_after, x);
        if (rc != 0)
            return rc == OTA_ERR_CERT_ROLE ? rc : OTA_ERR_AUTH;
        if (now == OTA_TIME_NONE || now < nb || now >= r->not_after) {
            char t[24];
            ota_time_text(t, r->not_after);
            ota_detail_set(det, "the certificate of %s (serial %s) is valid until %s", r->device,
                           r->serial, t);
            return OTA_ERR_CERT_EXPIRED;
        }
        return 0;
    }
    /* Plain HTTP: only behind a trusted proxy. */
    {
        struct evhttp_connection *c = evhttp_request_get_connection(r->req);
        struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
        char *peer = NULL;
        ev_uint16_t port = 0;
        const char *id;
        const char *serial;

        if (c != NULL)
            evhttp_connection_get_peer(c, &peer, &port);
        if (!peer_is_proxy(s, peer)) {
            ota_detail_set(det,
                           "plain HTTP from %s, which is not a trusted proxy: device "
                           "headers are ignored",
                           peer ? peer : "?");
            return OTA_ERR_AUTH;
        }
        id = evhttp_find_header(h, s->cfg->proxy_device_header);
        if (id == NULL || !ota_cert_id_valid(id, strlen(id))) {
            ota_detail_set(det, "the proxy sent no valid %s header", s->cfg->proxy_device_header);
            return OTA_ERR_AUTH;
        }
        memcpy(r->device, id, strlen(id) + 1);
        serial =
            s->cfg->proxy_serial_header ? evhttp_find_header(h, s->cfg->proxy_serial_header) : NULL;
        if (serial != NULL && ota_cert_serial_normalize(r->serial, serial) != 0) {
            ota_detail_set(det, "the proxy's %s header is not a hex serial",
                           s->cfg->proxy_serial_header);
            return OTA_ERR_AUTH;
        }
        r->not_after = INT64_MAX;
        return 0;
    }
}

/* The admin caller: a token (checked in the database by the route's
 * job), or an admin certificate. */
static int identify_admin(struct srv_req *r, struct ota_detail *det)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
    const char *auth = evhttp_find_header(h, "Authorization");
    SSL *ssl = req_ssl(r);

    if (auth != NULL) {
        if (strncmp(auth, "Bearer ", 7) != 0 ||
            ota_fleet_token_parse(r->token_id, r->token_hash, auth + 7, strlen(auth + 7)) != 0) {
            ota_detail_set(det, "the Authorization header is not 'Bearer ota1.<id>.<secret>'");
            return OTA_ERR_AUTH;
        }
        r->has_token = true;
        snprintf(r->actor, sizeof(r->actor), "token:%s", r->token_id);
        return 0;
    }
    if (ssl != NULL && SSL_get0_peer_certificate(ssl) != NULL) {
        X509 *x = SSL_get0_peer_certificate(ssl);
        enum ota_cert_role role;
        char cn[OTA_CERT_ID_MAX + 1];
        int64_t nb = 0, na = 0;
        int64_t now = srv_now(r->srv);
        int rc;

        if (SSL_get_verify_result(ssl) != X509_V_OK) {
            ota_detail_set(det, "the client certificate did not verify");
            return OTA_ERR_AUTH;
        }
        rc = ota_cert_role_of(&role, x, det);
        if (rc == 0 && role != OTA_CERT_ROLE_ADMIN) {
            ota_detail_set(det, "a %s certificate, not an admin certificate",
                           ota_cert_role_name(role));
            rc = OTA_ERR_CERT_ROLE;
        }
        if (rc == 0)
            rc = ota_cert_id(cn, x, det);
        if (rc == 0)
            rc = ota_cert_validity(&nb, &na, x);
        if (rc != 0)
            return rc == OTA_ERR_CERT_ROLE ? rc : OTA_ERR_AUTH;
        if (now == OTA_TIME_NONE || now < nb || now >= na) {
            ota_detail_set(det, "the admin certificate of %s is not valid now", cn);
            return OTA_ERR_CERT_EXPIRED;
        }
        r->admin_cert = true;
        snprintf(r->actor, sizeof(r->actor), "cert:%s", cn);
        return 0;
    }
    ota_detail_set(det, "an admin token (Authorization: Bearer ...) or an admin certificate is "
                        "needed");
    return OTA_ERR_AUTH;
}

static const char *method_text(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct srv_listener *l = arg;
    struct srv *s = l->srv;
    struct srv_req *r = calloc(1, sizeof(*r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    struct ota_detail det;
    int rc;

    if (r == NULL) {
        evhttp_send_error(req, 500, "Internal Server Error");
        return;
    }
    s->inflight++;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        char *peer = NULL;
        ev_uint16_t pport = 0;

        if (conn != NULL)
            evhttp_connection_get_peer(conn, &peer, &pport);
        snprintf(r->peer, sizeof(r->peer), "%s:%u", peer ? peer : "-", (unsigned)pport);
    }
    r->srv = s;
    r->l = l;
    r->req = req;
    r->method = evhttp_request_get_command(req);
    r->method_name = method_text(r->method);
    r->bytes_kind = SRV_BYTES_API;
    det.msg[0] = '\0';
    if (path == NULL || path[0] != '/' || strlen(path) >= sizeof(r->path)) {
        srv_reply_error(r, 400, OTA_ERR_INVALID_ARG, "the request path is missing or too long");
        return;
    }
    memcpy(r->path, path, strlen(path) + 1);
    if (query != NULL && (r->query = strdup(query)) == NULL) {
        srv_reply_error(r, 500, OTA_ERR_NOMEM, NULL);
        return;
    }
    if (s->draining) {
        srv_reply_error(r, 503, OTA_ERR_BUSY, "shutting down");
        return;
    }
    switch (l->kind) {
    case SRV_DEVICE:
        rc = identify_device(r, &det);
        if (rc != 0) {
            srv_reply_error(r, srv_status_of(rc), rc, "%s", det.msg);
            return;
        }
        srv_device_route(r);
        return;
    case SRV_ADMIN:
        rc = identify_admin(r, &det);
        if (rc != 0) {
            srv_reply_error(r, srv_status_of(rc), rc, "%s", det.msg);
            return;
        }
        srv_admin_route(r);
        return;
    default:
        srv_public_route(r);
        return;
    }
}

/* ---- TLS ---- */

static int verify_role(int ok, X509_STORE_CTX *ctx, enum ota_cert_role want)
{
    enum ota_cert_role role;
    char id[OTA_CERT_ID_MAX + 1];
    X509 *x;

    if (!ok || X509_STORE_CTX_get_error_depth(ctx) != 0)
        return ok;
    x = X509_STORE_CTX_get_current_cert(ctx);
    if (ota_cert_role_of(&role, x, NULL) != 0 || role != want || ota_cert_id(id, x, NULL) != 0) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

static int verify_device(int ok, X509_STORE_CTX *ctx)
{
    return verify_role(ok, ctx, OTA_CERT_ROLE_DEVICE);
}

static int verify_admin(int ok, X509_STORE_CTX *ctx)
{
    return verify_role(ok, ctx, OTA_CERT_ROLE_ADMIN);
}

static int tls_fail(struct ota_detail *det, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();

    ota_detail_set(det, "TLS %s %s: %s", what, path ? path : "",
                   e ? ERR_reason_error_string(e) : "failed");
    ERR_clear_error();
    return OTA_ERR_KEY_FORMAT;
}

static int setup_tls(struct srv_listener *l, const struct srv_listener_config *c,
                     struct ota_detail *det)
{
    static const unsigned char ctxid[SRV_NLISTENERS][16] = {"otachain-device", "otachain-admin",
                                                            "otachain-public"};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    l->ssl = ctx;
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
        return tls_fail(det, "context", NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Small handshakes: X25519 first, one session ticket per handshake. */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_set_num_tickets(ctx, 1) != 1)
        return tls_fail(det, "groups", NULL);
    /* Resumption under SSL_VERIFY_PEER needs a session id context. */
    if (SSL_CTX_set_session_id_context(ctx, ctxid[l->kind],
                                       (unsigned)strlen((const char *)ctxid[l->kind])) != 1)
        return tls_fail(det, "session id context", NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1)
        return tls_fail(det, "certificate", c->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(det, "key", c->tls_key);
    if (c->client_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, c->client_ca, NULL) != 1)
            return tls_fail(det, "client CA", c->client_ca);
        SSL_CTX_set_verify_depth(ctx, 2);
        if (l->kind == SRV_DEVICE)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               verify_device);
        else
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_admin);
    }
    return 0;
}

/* "ADDR:PORT" / "[V6]:PORT" into host and port. */
static int split_listen(char *host, size_t cap, unsigned *port, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    size_t n;

    n = (size_t)(colon - listen);
    if (listen[0] == '[') {
        listen++;
        n -= 2;
    }
    if (n >= cap)
        return OTA_ERR_INVALID_ARG;
    memcpy(host, listen, n);
    host[n] = '\0';
    *port = (unsigned)strtoul(colon + 1, NULL, 10);
    return 0;
}

/* The listening socket, with a backlog for a fleet arriving at once
 * (evhttp's own bind uses 128, and a burst of connections beyond it waits
 * for SYN retransmissions, seconds). */
static int bind_socket(struct evhttp_bound_socket **out, struct evhttp *http, const char *host,
                       unsigned port)
{
    struct addrinfo hints, *ai = NULL;
    char portstr[8];
    evutil_socket_t fd;
    int one = 1;

    *out = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        errno = EINVAL;
        return OTA_ERR_NETWORK;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = e;
        return OTA_ERR_NETWORK;
    }
    freeaddrinfo(ai);
    *out = evhttp_accept_socket_with_handle(http, fd);
    if (*out == NULL) {
        close(fd);
        return OTA_ERR_NETWORK;
    }
    return 0;
}

static int start_listener(struct srv *s, enum srv_listener_kind kind, struct ota_detail *det)
{
    static const char *const names[] = {"device", "admin", "public"};
    const struct srv_config *cfg = s->cfg;
    const struct srv_listener_config *c = &cfg->l[kind];
    struct srv_listener *l = &s->l[kind];
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[256];
    unsigned port = 0;
    int rc;

    l->srv = s;
    l->kind = kind;
    l->name = names[kind];
    if (!c->enabled)
        return 0;
    l->http = evhttp_new(s->base);
    if (l->http == NULL)
        return OTA_ERR_NOMEM;
    if (!c->plain_http) {
        rc = setup_tls(l, c, det);
        if (rc != 0) {
            ota_detail_prefix(det, l->name);
            return rc;
        }
    }
    if (kind == SRV_PUBLIC && cfg->rate_limit > 0) {
        size_t rate = (size_t)cfg->rate_limit;
        /* Both directions: what it is for is the downloads (written). */
        l->rate = ev_token_bucket_cfg_new(rate, rate, rate, rate, NULL);
        if (l->rate == NULL)
            return OTA_ERR_NOMEM;
    }
    evhttp_set_bevcb(l->http, make_bev, l);
    evhttp_set_gencb(l->http, on_request, l);
    evhttp_set_max_headers_size(l->http, (ev_ssize_t)cfg->max_header_bytes);
    evhttp_set_max_body_size(
        l->http,
        (ev_ssize_t)(kind == SRV_ADMIN ? (cfg->max_part_bytes > ADMIN_BODY_MIN ? cfg->max_part_bytes
                                                                               : ADMIN_BODY_MIN) +
                                             4096
                                       : cfg->max_body_bytes));
    evhttp_set_timeout(l->http, (int)cfg->request_timeout);
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    if (split_listen(host, sizeof(host), &port, c->listen) != 0) {
        ota_detail_set(det, "[%s] listen = %s", l->name, c->listen);
        return OTA_ERR_INVALID_ARG;
    }
    rc = bind_socket(&l->bound, l->http, host, port);
    if (rc != 0) {
        ota_detail_set(det, "[%s] cannot listen on %s: %s", l->name, c->listen, strerror(errno));
        return OTA_ERR_NETWORK;
    }
    l->port = port;
    if (getsockname(evhttp_bound_socket_get_fd(l->bound), (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET)
            l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    srv_log(s->log, "info", "listening", "listener=%s address=%s port=%u scheme=%s", l->name, host,
            l->port, c->plain_http ? "http" : "https");
    return 0;
}

static int parse_proxies(struct srv *s, struct ota_detail *det)
{
    const char *p = s->cfg->trusted_proxies;

    while (p != NULL && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char addr[64];

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(addr) || s->nproxies == SRV_MAX_PROXIES) {
            ota_detail_set(det, "[device] trusted_proxies: empty entry, or more than %d",
                           SRV_MAX_PROXIES);
            return OTA_ERR_FORMAT;
        }
        memcpy(addr, p, n);
        addr[n] = '\0';
        struct srv_proxy *px = &s->proxies[s->nproxies];
        if (inet_pton(AF_INET, addr, px->addr) == 1)
            px->family = AF_INET;
        else if (inet_pton(AF_INET6, addr, px->addr) == 1)
            px->family = AF_INET6;
        else {
            ota_detail_set(det, "[device] trusted_proxies: '%s' is not an IP address", addr);
            return OTA_ERR_FORMAT;
        }
        s->nproxies++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

/* ---- signals, timers, drain ---- */

/* The drain ends when no request waits for its answer and every answer
 * has left for the kernel (an idle keep-alive connection holds nothing). */
static void drain_check(struct srv *s)
{
    if (s->inflight > 0)
        return;
    for (int i = 0; i < SRV_NLISTENERS; i++) {
        for (struct srv_conn *c = s->l[i].live; c != NULL; c = c->next) {
            if (c->bev != NULL && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
                return;
        }
    }
    event_base_loopexit(s->base, NULL);
}

static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drain_check(arg);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;

    (void)fd;
    (void)what;
    srv_log(s->log, "warn", "drain_timeout", "in_flight=%llu", (unsigned long long)s->inflight);
    event_base_loopexit(s->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct srv *s = arg;
    struct timeval tv = {(time_t)s->cfg->shutdown_timeout, 0};
    struct timeval poll = {0, 20000};

    (void)what;
    if (s->draining)
        return;
    s->draining = true;
    srv_log(s->log, "info", "shutdown", "signal=%s in_flight=%llu",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)s->inflight);
    for (int i = 0; i < SRV_NLISTENERS; i++) {
        if (s->l[i].bound != NULL) {
            evhttp_del_accept_socket(s->l[i].http, s->l[i].bound);
            s->l[i].bound = NULL;
        }
    }
    s->drain_timer = evtimer_new(s->base, on_drain_timeout, s);
    s->drain_poll = event_new(s->base, -1, EV_PERSIST, on_drain_poll, s);
    if (s->drain_timer == NULL || evtimer_add(s->drain_timer, &tv) != 0 || s->drain_poll == NULL ||
        event_add(s->drain_poll, &poll) != 0)
        event_base_loopexit(s->base, NULL);
    drain_check(s);
}

struct reload_job {
    struct srv_job job;
    struct srv *s;
};

/* Reloading reads files: on the database thread, never on the loop. */
static int reload_run(struct srv_job *j, struct ota_fleet_store *st, struct ota_detail *det)
{
    struct reload_job *rj = (struct reload_job *)j;

    (void)st;
    return srv_repo_reload(&rj->s->repo, det);
}

static void reload_done(struct srv_job *j)
{
    struct reload_job *rj = (struct reload_job *)j;
    struct srv *s = rj->s;
    char q[600];

    s->reload_pending = false;
    if (j->rc != 0) {
        srv_log(s->log, "error", "repository_reload", "error=%s detail=%s", ota_errname(j->rc),
                srv_log_q(q, sizeof(q), j->det.msg));
    } else {
        struct srv_repo_state *st = srv_repo_get(&s->repo);
        atomic_store(&s->metrics.ledger_size, st->has_checkpoint ? st->checkpoint->size : 0);
        srv_log(s->log, "info", "repository_reload",
                "root=%llu targets=%llu snapshot=%llu timestamp=%llu releases=%zu ledger=%llu",
                (unsigned long long)st->root_version, (unsigned long long)st->targets_version,
                (unsigned long long)st->snapshot_version, (unsigned long long)st->timestamp_version,
                st->nreleases, st->has_checkpoint ? (unsigned long long)st->checkpoint->size : 0);
        srv_repo_put(st);
    }
    free(rj);
}

static void request_reload(struct srv *s)
{
    struct reload_job *rj;

    if (s->reload_pending)
        return;
    rj = calloc(1, sizeof(*rj));
    if (rj == NULL)
        return;
    rj->job.run = reload_run;
    rj->job.done = reload_done;
    rj->s = s;
    if (srv_db_submit(s->db, &rj->job) != 0) {
        free(rj);
        return;
    }
    s->reload_pending = true;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct srv *s = arg;

    (void)sig;
    (void)what;
    srv_log_reopen(s->log);
    request_reload(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;
    int64_t now = srv_now(s);
    struct timespec mono;

    (void)fd;
    (void)what;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    if (mono.tv_sec >= s->next_repo_check) {
        s->next_repo_check = mono.tv_sec + (int64_t)s->cfg->repository_poll;
        if (srv_repo_changed(&s->repo))
            request_reload(s);
    }
    if (now != OTA_TIME_NONE && (now >= s->next_expire || now < s->next_expire - 7200)) {
        s->next_expire = now + 3600;
        srv_maintenance(s, true, false);
    }
    if (mono.tv_sec >= s->next_count) {
        s->next_count = mono.tv_sec + 60;
        srv_maintenance(s, false, true);
    }
}

int srv_start(struct srv *s, struct ota_detail *det)
{
    struct timeval one = {1, 0};
    int rc = parse_proxies(s, det);

    if (rc != 0)
        return rc;
    s->ssl_ex_index = SSL_get_ex_new_index(0, (void *)"otachain listener", NULL, NULL, ssl_ex_free);
    if (s->ssl_ex_index < 0)
        return OTA_ERR_CRYPTO;
    s->started = srv_now(s);
    for (int i = 0; i < SRV_NLISTENERS; i++) {
        rc = start_listener(s, (enum srv_listener_kind)i, det);
        if (rc != 0)
            return rc;
    }
    s->sigterm = evsignal_new(s->base, SIGTERM, on_term, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_term, s);
    s->sighup = evsignal_new(s->base, SIGHUP, on_hup, s);
    s->tick = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    if (s->sigterm == NULL || s->sigint == NULL || s->sighup == NULL || s->tick == NULL ||
        event_add(s->sigterm, NULL) != 0 || event_add(s->sigint, NULL) != 0 ||
        event_add(s->sighup, NULL) != 0 || event_add(s->tick, &one) != 0)
        return OTA_ERR_IO;
    return 0;
}

int srv_run(struct srv *s)
{
    return event_base_dispatch(s->base) < 0 ? OTA_ERR_IO : 0;
}

void srv_stop(struct srv *s)
{
    struct event **evs[] = {&s->sigterm, &s->sigint,      &s->sighup,
                            &s->tick,    &s->drain_timer, &s->drain_poll};

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL)
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
    if (s->dns != NULL)
        evdns_base_free(s->dns, 0);
    s->dns = NULL;
    for (int i = 0; i < SRV_NLISTENERS; i++) {
        struct srv_listener *l = &s->l[i];
        /* Freeing evhttp frees its connections: conn_closed runs. */
        if (l->http != NULL)
            evhttp_free(l->http);
        l->http = NULL;
        if (l->ssl != NULL)
            SSL_CTX_free(l->ssl);
        l->ssl = NULL;
        if (l->rate != NULL)
            ev_token_bucket_cfg_free(l->rate);
        l->rate = NULL;
    }
}
