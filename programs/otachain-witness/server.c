/* The witness's evhttp front (server.h). */
#include "server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "otachain/tlog_witness.h"

#define MAX_HEADERS_SIZE (16 * 1024)
#define ADD_PATH         "/add-checkpoint"

struct wit_server {
    struct event_base *base;
    struct evhttp *http;
    struct event *sigterm;
    struct event *sigint;
    SSL_CTX *ssl;
    struct wit_ctx *w;
    unsigned port;
    bool tls;
};

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Prints s for a log line: quotes, backslashes and control bytes escaped
 * so that one request stays one line whatever a client sent. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void log_request(struct evhttp_request *req, const char *method, const char *path,
                        const struct wit_response *res, const struct timespec *t0)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *peer = NULL;
    ev_uint16_t pport = 0;

    if (conn != NULL)
        evhttp_connection_get_peer(conn, &peer, &pport);
    fprintf(stderr, "otachain-witness: request peer=%s:%u method=%s path=", peer ? peer : "-",
            (unsigned)pport, method);
    put_quoted(stderr, path ? path : "");
    fputs(" origin=", stderr);
    put_quoted(stderr, res->origin);
    if (res->have_sizes)
        fprintf(stderr, " old=%llu new=%llu", (unsigned long long)res->old_size,
                (unsigned long long)res->new_size);
    else
        fputs(" old=- new=-", stderr);
    fprintf(stderr, " status=%d reason=", res->status);
    put_quoted(stderr, res->reason);
    fprintf(stderr, " ms=%.1f\n", ms_since(t0));
    fflush(stderr);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 422:
        return "Unprocessable Entity";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static const char *method_name(enum evhttp_cmd_type m)
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
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    default:
        return "OTHER";
    }
}

static void reply(struct evhttp_request *req, struct wit_response *res)
{
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);

    evhttp_add_header(hdrs, "Content-Type", res->content_type);
    evhttp_add_header(hdrs, "Cache-Control", "no-store");
    if (res->status == 405)
        evhttp_add_header(hdrs, "Allow", "POST");
    if (out != NULL && res->body.len > 0)
        evbuffer_add(out, res->body.data, res->body.len);
    evhttp_send_reply(req, res->status, reason_phrase(res->status), out);
    if (out != NULL)
        evbuffer_free(out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct wit_server *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct wit_response res;
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&res, 0, sizeof(res));
    ota_buf_init(&res.body, WIT_RESPONSE_MAX);
    res.content_type = "text/plain; charset=utf-8";
    if (path == NULL || strcmp(path, ADD_PATH) != 0) {
        res.status = 404;
        snprintf(res.reason, sizeof(res.reason), "no such endpoint");
    } else if (method != EVHTTP_REQ_POST) {
        res.status = 405;
        snprintf(res.reason, sizeof(res.reason), "add-checkpoint takes POST");
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        /* evhttp already refused bodies above the cap (413). */
        const uint8_t *data = len ? evbuffer_pullup(in, (ev_ssize_t)len) : (const uint8_t *)"";

        if (data == NULL) {
            res.status = 500;
            snprintf(res.reason, sizeof(res.reason), "out of memory");
        } else {
            int64_t now = ota_clock_now(s->w->clock);

            if (now < 0) {
                res.status = 500;
                snprintf(res.reason, sizeof(res.reason), "the clock cannot be read");
            } else {
                wit_add_checkpoint(s->w, &res, data, len, (uint64_t)now);
            }
        }
    }
    if (res.status != 200 && res.body.len == 0 && res.reason[0] != '\0') {
        if (ota_buf_append_str(&res.body, res.reason) != 0 ||
            ota_buf_append(&res.body, "\n", 1) != 0)
            res.body.len = 0;
    }
    /* Logged first: the request may be freed once the reply is out. */
    log_request(req, method_name(method), path, &res, &t0);
    reply(req, &res);
    ota_buf_free(&res.body);
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    struct wit_server *s = arg;
    SSL *ssl = SSL_new(s->ssl);

    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    struct wit_server *s = arg;

    (void)events;
    fprintf(stderr, "otachain-witness: %s: shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    fflush(stderr);
    event_base_loopexit(s->base, NULL);
}

static int setup_tls(struct wit_server *s, const struct wit_config *cfg, struct ota_detail *det)
{
    unsigned long e;

    s->ssl = SSL_CTX_new(TLS_server_method());
    if (s->ssl == NULL || SSL_CTX_set_min_proto_version(s->ssl, TLS1_3_VERSION) != 1) {
        ota_detail_set(det, "TLS: cannot create a TLS 1.3 context");
        return OTA_ERR_CRYPTO;
    }
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, cfg->tls_cert) != 1) {
        e = ERR_get_error();
        ota_detail_set(det, "TLS certificate %s: %s", cfg->tls_cert, ERR_reason_error_string(e));
        return OTA_ERR_KEY_FORMAT;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        e = ERR_get_error();
        ota_detail_set(det, "TLS key %s: %s", cfg->tls_key, ERR_reason_error_string(e));
        return OTA_ERR_KEY_FORMAT;
    }
    s->tls = true;
    return 0;
}

int wit_server_new(struct wit_server **out, const struct wit_config *cfg, struct wit_ctx *w,
                   struct ota_detail *det)
{
    struct wit_server *s = calloc(1, sizeof(*s));
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int rc = OTA_ERR_NOMEM;

    *out = NULL;
    if (s == NULL)
        return OTA_ERR_NOMEM;
    s->w = w;
    s->base = event_base_new();
    if (s->base == NULL || (s->http = evhttp_new(s->base)) == NULL)
        goto fail;
    if (cfg->tls_cert != NULL) {
        rc = setup_tls(s, cfg, det);
        if (rc != 0)
            goto fail;
        evhttp_set_bevcb(s->http, make_tls_bev, s);
    }
    evhttp_set_max_body_size(s->http, OTA_TLOG_WITNESS_MAX_BODY);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS_SIZE);
    evhttp_set_timeout(s->http, (int)cfg->request_timeout_s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(s->http, on_request, s);
    bound = evhttp_bind_socket_with_handle(s->http, cfg->listen, (ev_uint16_t)cfg->port);
    if (bound == NULL) {
        ota_detail_set(det, "cannot listen on %s port %u", cfg->listen, cfg->port);
        rc = OTA_ERR_NETWORK;
        goto fail;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    if (s->sigterm == NULL || s->sigint == NULL || event_add(s->sigterm, NULL) != 0 ||
        event_add(s->sigint, NULL) != 0) {
        rc = OTA_ERR_IO;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    wit_server_free(s);
    return rc;
}

unsigned wit_server_port(const struct wit_server *s)
{
    return s->port;
}

int wit_server_run(struct wit_server *s)
{
    return event_base_dispatch(s->base) < 0 ? OTA_ERR_IO : 0;
}

void wit_server_free(struct wit_server *s)
{
    if (s == NULL)
        return;
    if (s->sigterm != NULL)
        event_free(s->sigterm);
    if (s->sigint != NULL)
        event_free(s->sigint);
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->ssl != NULL)
        SSL_CTX_free(s->ssl);
    if (s->base != NULL)
        event_base_free(s->base);
    free(s);
}
