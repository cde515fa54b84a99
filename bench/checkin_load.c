/* checkin_load: a check-in load generator for otachain-server (bench/ and
 * the crash test). wrk cannot present client certificates, so this one
 * speaks HTTP/1.1 over libevent itself: plain with the trusted-proxy
 * header (device id varied per request), or mutual TLS with device
 * certificates it mints from a CA directory (otachain ca init), each
 * connection presenting one, rotating through them on reconnects.
 *
 *   checkin_load --port P [--tls --ca-dir DIR --certs N] [--connections C]
 *                [--seconds S | --requests N] [--unique] [--log FILE]
 *                [--reconnect K] [--resume] [--body-version V] [--trusted JSON] [--progress]
 *                [--devices N] [--warmup S]
 *
 * Proxy mode cycles through --devices ids (default 10,000), "ld-<n>";
 * --unique gives every request a device id of its own instead, so
 * that each 200 names one database row (the crash test checks them).
 * --log writes "<device> <status>" for every answer (flushed with each
 * --progress line, every 250 ms, on standard error). SIGTERM or SIGINT
 * stops it early. It prints one JSON line: requests sent, answered by
 * status, errors, seconds, rate, and TCP payload bytes per request each
 * way (measured on the socket, under TLS).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "otachain/ca.h"

struct cred {
    X509 *cert;
    EVP_PKEY *key;
};

struct conn;

static struct {
    struct event_base *base;
    struct sockaddr_in addr;
    SSL_CTX *ssl;
    struct cred *creds;
    size_t ncreds, next_cred;
    unsigned connections;
    double seconds;
    uint64_t max_requests;
    bool unique, resume;
    size_t devices; /* proxy mode: distinct ids cycled through */
    double warmup;  /* seconds after which the counters start again */
    bool warm;
    unsigned reconnect;
    const char *version;
    const char *trusted; /* the body's "trusted" object */
    FILE *log;
    uint64_t sent, answered, status[6], errors, seq;
    uint64_t bytes_in, bytes_out;
    struct timespec t0;
    bool stopping;
    struct event *stop_ev, *sig_term, *sig_int;
    SSL_SESSION *session; /* for --resume */
    uint64_t resumed, handshakes;
} g;

struct conn {
    struct bufferevent *bev;  /* the HTTP side (TLS or plain) */
    struct bufferevent *sock; /* the socket, for byte counts (TLS) */
    char device[80];
    unsigned on_conn;
    bool busy;
    int idx;
};

static double elapsed(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - g.t0.tv_sec) + (double)(t.tv_nsec - g.t0.tv_nsec) / 1e9;
}

static void conn_open(struct conn *c);

static void send_request(struct conn *c)
{
    char body[1024];
    char head[512];
    int bl, hl;

    if (g.stopping || (g.max_requests && g.sent >= g.max_requests)) {
        if (g.max_requests && g.answered + g.errors >= g.max_requests)
            event_base_loopexit(g.base, NULL);
        return;
    }
    g.seq++;
    if (g.ssl == NULL)
        snprintf(c->device, sizeof(c->device), "ld-%llu",
                 g.unique ? (unsigned long long)g.seq
                          : (unsigned long long)(g.seq % (g.devices ? g.devices : 10000)));
    bl = snprintf(body, sizeof(body),
                  "{\"running\":{\"product\":\"cam\",\"hardware\":\"rev-a\",\"version\":\"%s\"},"
                  "\"trusted\":%s}",
                  g.version, g.trusted);
    hl = snprintf(head, sizeof(head),
                  "POST /api/v1/checkin HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Type: "
                  "application/json\r\nContent-Length: %d\r\n\r\n",
                  g.ssl == NULL ? "X-Otachain-Device: " : "", g.ssl == NULL ? c->device : "",
                  g.ssl == NULL ? "\r\n" : "", bl);
    evbuffer_add(bufferevent_get_output(c->bev), head, (size_t)hl);
    evbuffer_add(bufferevent_get_output(c->bev), body, (size_t)bl);
    c->busy = true;
    c->on_conn++;
    g.sent++;
}

/* Parses one whole answer from the input, if there is one. */
static bool take_answer(struct conn *c, int *status)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t hlen, clen = 0;
    char *head;
    char *cl;

    if (p.pos < 0)
        return false;
    hlen = (size_t)p.pos + 4;
    head = malloc(hlen + 1);
    if (head == NULL)
        return false;
    evbuffer_copyout(in, head, hlen);
    head[hlen] = '\0';
    *status = (int)strtol(head + 9, NULL, 10);
    for (cl = head; (cl = strstr(cl, "\r\n")) != NULL; cl += 2) {
        if (strncasecmp(cl + 2, "content-length:", 15) == 0) {
            clen = (size_t)strtoul(cl + 17, NULL, 10);
            break;
        }
    }
    free(head);
    if (evbuffer_get_length(in) < hlen + clen)
        return false;
    evbuffer_drain(in, hlen + clen);
    return true;
}

static void conn_close(struct conn *c)
{
    if (c->bev != NULL) {
        SSL *ssl = g.ssl != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;
        /* TLS 1.3 tickets are used once: keep the newest one. */
        if (ssl != NULL && g.resume) {
            SSL_SESSION *sess = SSL_get1_session(ssl);
            if (sess != NULL && SSL_SESSION_is_resumable(sess)) {
                SSL_SESSION_free(g.session);
                g.session = sess;
            } else {
                SSL_SESSION_free(sess);
            }
        }
        bufferevent_free(c->bev);
    }
    c->bev = NULL;
    c->sock = NULL;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    int status;

    (void)bev;
    while (c->busy && take_answer(c, &status)) {
        c->busy = false;
        g.answered++;
        g.status[status / 100 < 6 ? status / 100 : 0]++;
        if (g.log != NULL)
            fprintf(g.log, "%s %d\n", g.ssl ? "-" : c->device, status);
        if (g.reconnect && c->on_conn >= g.reconnect) {
            conn_close(c);
            conn_open(c);
            return;
        }
        send_request(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (g.ssl != NULL) {
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            g.handshakes++;
            if (ssl != NULL && SSL_session_reused(ssl))
                g.resumed++;
        }
        send_request(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        if (c->busy)
            g.errors++;
        c->busy = false;
        conn_close(c);
        if (!g.stopping)
            conn_open(c);
    }
}

/* Byte counts on the socket: what enters its input and leaves its output. */
static void count_in(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    (void)arg;
    g.bytes_in += info->n_added;
}

static void count_out(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    (void)arg;
    g.bytes_out += info->n_deleted;
}

static void conn_open(struct conn *c)
{
    struct bufferevent *sock;

    c->on_conn = 0;
    c->busy = false;
    sock = bufferevent_socket_new(g.base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (sock == NULL) {
        g.errors++;
        return;
    }
    evbuffer_add_cb(bufferevent_get_input(sock), count_in, NULL);
    evbuffer_add_cb(bufferevent_get_output(sock), count_out, NULL);
    if (g.ssl != NULL) {
        SSL *ssl = SSL_new(g.ssl);
        struct cred *cr = &g.creds[g.next_cred++ % g.ncreds];
        SSL_use_certificate(ssl, cr->cert);
        SSL_use_PrivateKey(ssl, cr->key);
        if (g.resume && g.session != NULL)
            SSL_set_session(ssl, g.session);
        c->bev = bufferevent_openssl_filter_new(g.base, sock, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = sock;
    }
    c->sock = sock;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(sock, (struct sockaddr *)&g.addr, sizeof(g.addr)) != 0) {
        g.errors++;
        return;
    }
    if (g.ssl == NULL) {
        int one = 1;
        setsockopt(bufferevent_getfd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

/* --progress: one line on stderr every 250 ms, for tests that act on it. */
static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "progress seconds=%.3f sent=%llu answered=%llu errors=%llu\n", elapsed(),
            (unsigned long long)g.sent, (unsigned long long)g.answered,
            (unsigned long long)g.errors);
    fflush(stderr);
    if (g.log != NULL)
        fflush(g.log);
}

/* --warmup: what came before (handshakes, first check-ins) is not counted. */
static void on_warm(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    g.sent = g.answered = g.errors = g.bytes_in = g.bytes_out = 0;
    memset(g.status, 0, sizeof(g.status));
    clock_gettime(CLOCK_MONOTONIC, &g.t0);
    g.warm = true;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    g.stopping = true;
    event_base_loopexit(g.base, NULL);
}

static int mint(const char *dir, size_t n)
{
    struct ota_ca *ca = NULL;
    struct ota_detail det;
    int64_t now = time(NULL);
    int rc = ota_ca_dir_ca(&ca, dir, OTA_CERT_ROLE_DEVICE, &det);

    if (rc != 0) {
        fprintf(stderr, "checkin_load: %s: %s\n", ota_errname(rc), det.msg);
        return rc;
    }
    g.creds = calloc(n, sizeof(*g.creds));
    for (size_t i = 0; g.creds != NULL && i < n; i++) {
        char id[32];
        char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
        struct ota_cert_request req = {OTA_CERT_ROLE_DEVICE, id, NULL, 0, NULL, 0, now, 86400};
        struct ota_buf pem;
        BIO *bio;

        snprintf(id, sizeof(id), "ld-%zu", i);
        ota_buf_init(&pem, OTA_CA_PEM_MAX);
        rc = ota_ca_keygen(&g.creds[i].key, OTA_CA_KEY_P256);
        if (rc == 0)
            rc = ota_ca_issue(&pem, serial, ca, g.creds[i].key, &req, &det);
        if (rc != 0)
            break;
        bio = BIO_new_mem_buf(pem.data, (int)pem.len);
        g.creds[i].cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ota_buf_free(&pem);
    }
    g.ncreds = n;
    ota_ca_free(ca);
    return g.creds != NULL ? rc : OTA_ERR_NOMEM;
}

static void usage(void)
{
    fputs("usage: checkin_load --port P [--tls --ca-dir DIR [--certs N]] [--connections C]\n"
          "                    [--seconds S | --requests N] [--unique] [--log FILE]\n"
          "                    [--reconnect K] [--resume] [--body-version V] [--trusted JSON] "
          "[--progress]\n"
          "                    [--devices N] [--warmup S]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *ca_dir = NULL;
    const char *log = NULL;
    unsigned port = 0;
    size_t ncerts = 10000;
    bool tls = false;
    bool progress = false;
    struct conn *conns;
    struct timeval tv;
    struct rlimit rl;
    double secs;

    g.connections = 100;
    g.seconds = 10;
    g.version = "1.0.0";
    g.trusted = "{\"root_version\":1}";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tls") == 0)
            tls = true;
        else if (strcmp(a, "--unique") == 0)
            g.unique = true;
        else if (strcmp(a, "--resume") == 0)
            g.resume = true;
        else if (strcmp(a, "--progress") == 0)
            progress = true;
        else if (v == NULL)
            usage();
        else if (strcmp(a, "--port") == 0)
            port = (unsigned)strtoul(v, NULL, 10), i++;
        else if (strcmp(a, "--ca-dir") == 0)
            ca_dir = v, i++;
        else if (strcmp(a, "--certs") == 0)
            ncerts = (size_t)strtoul(v, NULL, 10), i++;
        else if (strcmp(a, "--connections") == 0)
            g.connections = (unsigned)strtoul(v, NULL, 10), i++;
        else if (strcmp(a, "--seconds") == 0)
            g.seconds = strtod(v, NULL), i++;
        else if (strcmp(a, "--requests") == 0)
            g.max_requests = strtoull(v, NULL, 10), i++;
        else if (strcmp(a, "--log") == 0)
            log = v, i++;
        else if (strcmp(a, "--reconnect") == 0)
            g.reconnect = (unsigned)strtoul(v, NULL, 10), i++;
        else if (strcmp(a, "--trusted") == 0 && v != NULL)
            g.trusted = v, i++;
        else if (strcmp(a, "--body-version") == 0)
            g.version = v, i++;
        else if (strcmp(a, "--devices") == 0)
            g.devices = (size_t)strtoul(v, NULL, 10), i++;
        else if (strcmp(a, "--warmup") == 0)
            g.warmup = strtod(v, NULL), i++;
        else
            usage();
    }
    if (port == 0 || g.connections == 0 || (tls && ca_dir == NULL))
        usage();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    if (log != NULL && (g.log = fopen(log, "w")) == NULL) {
        perror(log);
        return 3;
    }
    if (tls) {
        char ca[4096];
        snprintf(ca, sizeof(ca), "%s/server-ca.crt", ca_dir);
        g.ssl = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(g.ssl, TLS1_3_VERSION);
        SSL_CTX_set1_groups_list(g.ssl, "X25519:P-256");
        if (SSL_CTX_load_verify_locations(g.ssl, ca, NULL) != 1) {
            fprintf(stderr, "checkin_load: cannot load %s\n", ca);
            return 3;
        }
        SSL_CTX_set_verify(g.ssl, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_session_cache_mode(g.ssl, SSL_SESS_CACHE_CLIENT);
        if (mint(ca_dir, ncerts) != 0)
            return 3;
    }
    g.base = event_base_new();
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)port);
    g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conns = calloc(g.connections, sizeof(*conns));
    clock_gettime(CLOCK_MONOTONIC, &g.t0);
    for (unsigned i = 0; i < g.connections; i++) {
        conns[i].idx = (int)i;
        conn_open(&conns[i]);
    }
    if (g.max_requests == 0) {
        tv.tv_sec = (time_t)g.seconds;
        tv.tv_usec = (suseconds_t)((g.seconds - (double)tv.tv_sec) * 1e6);
        g.stop_ev = evtimer_new(g.base, on_stop, NULL);
        evtimer_add(g.stop_ev, &tv);
    }
    if (g.warmup > 0) {
        struct timeval w;
        w.tv_sec = (time_t)g.warmup;
        w.tv_usec = (suseconds_t)((g.warmup - (double)w.tv_sec) * 1e6);
        event_add(evtimer_new(g.base, on_warm, NULL), &w);
    }
    if (progress) {
        struct timeval q = {0, 250000};
        event_add(event_new(g.base, -1, EV_PERSIST, on_progress, NULL), &q);
    }
    g.sig_term = evsignal_new(g.base, SIGTERM, on_stop, NULL);
    g.sig_int = evsignal_new(g.base, SIGINT, on_stop, NULL);
    event_add(g.sig_term, NULL);
    event_add(g.sig_int, NULL);
    event_base_dispatch(g.base);
    secs = elapsed();
    printf("{\"sent\":%llu,\"answered\":%llu,\"2xx\":%llu,\"4xx\":%llu,\"5xx\":%llu,"
           "\"errors\":%llu,\"seconds\":%.3f,\"rate\":%.1f,\"bytes_in_per_request\":%.1f,"
           "\"bytes_out_per_request\":%.1f,\"handshakes\":%llu,\"resumed\":%llu}\n",
           (unsigned long long)g.sent, (unsigned long long)g.answered,
           (unsigned long long)g.status[2], (unsigned long long)g.status[4],
           (unsigned long long)g.status[5], (unsigned long long)g.errors, secs,
           (double)g.answered / secs, g.answered ? (double)g.bytes_in / (double)g.answered : 0.0,
           g.answered ? (double)g.bytes_out / (double)g.answered : 0.0,
           (unsigned long long)g.handshakes, (unsigned long long)g.resumed);
    if (g.log != NULL)
        fclose(g.log);
    for (unsigned i = 0; i < g.connections; i++)
        conn_close(&conns[i]);
    free(conns);
    return 0;
}
