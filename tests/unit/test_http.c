/* The HTTP policy: the slow-retrieval rules judged with an injected clock
 * (no waiting), the policy's refusals, and the rules aborting real
 * transfers against a loopback server that trickles and stalls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "otachain/http.h"

/* ---- a clock the test moves ------------------------------------------------ */

static int64_t test_now(void *ctx)
{
    return *(const int64_t *)ctx;
}

static void policy_at(struct ota_http_policy *p, struct ota_clock *c, int64_t *t)
{
    c->now = test_now;
    c->ctx = t;
    ota_http_policy_default(p);
    p->clock = c;
}

/* Begins a transfer at the clock's time on a handle nobody performs. */
static CURL *begin(struct ota_http_xfer *x, const struct ota_http_policy *p, uint64_t expect)
{
    CURL *e = curl_easy_init();
    struct ota_detail det = {{0}};

    assert_non_null(e);
    assert_int_equal(ota_http_setup(e, p, NULL, &det), 0);
    assert_int_equal(ota_http_xfer_begin(x, e, p, "metadata/timestamp.json",
                                         "http://127.0.0.1:1/metadata/timestamp.json", expect,
                                         expect, &det),
                     0);
    return e;
}

static void test_average_after_grace(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_http_xfer x;
    int64_t t = 1000;
    CURL *e;

    (void)state;
    policy_at(&p, &c, &t);
    p.stall_s = 0;
    e = begin(&x, &p, 16384);
    /* 2 bytes/s: tolerated during the 10 s grace period. */
    for (int s = 1; s < OTA_HTTP_GRACE_DEFAULT; s++)
        assert_int_equal(ota_http_xfer_check(&x, (1000 + s) * 1000, (uint64_t)s * 2), 0);
    /* At 10 s the average (2 bytes/s) is judged, and refused. */
    assert_int_equal(ota_http_xfer_check(&x, (1000 + 10) * 1000, 20), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(x.why, "20 bytes in 10 s: an average of 2 bytes/s, below the "
                                  "minimum of 1024 bytes/s after 10 s"));
    /* Once broken, it stays broken. */
    assert_int_equal(ota_http_xfer_check(&x, (1000 + 11) * 1000, 1 << 20), OTA_ERR_SLOW_RETRIEVAL);
    curl_easy_cleanup(e);

    /* A fast start does not buy a slow end: the average falls below. */
    e = begin(&x, &p, 1 << 20);
    assert_int_equal(ota_http_xfer_check(&x, 1001 * 1000, 50000), 0);
    assert_int_equal(ota_http_xfer_check(&x, 1040 * 1000, 50000), 0); /* 1250 B/s */
    assert_int_equal(ota_http_xfer_check(&x, 1049 * 1000, 50000), OTA_ERR_SLOW_RETRIEVAL);
    curl_easy_cleanup(e);
}

static void test_stall(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_http_xfer x;
    int64_t t = 0; /* 0 is a reading like any other */
    CURL *e;

    (void)state;
    policy_at(&p, &c, &t);
    p.min_rate = 0; /* only the stall rule */
    e = begin(&x, &p, 0);
    assert_int_equal(ota_http_xfer_check(&x, 29 * 1000, 0), 0);
    assert_int_equal(ota_http_xfer_check(&x, 29 * 1000 + 999, 5),
                     0); /* a byte: the clock restarts */
    assert_int_equal(ota_http_xfer_check(&x, 59 * 1000, 5), 0);
    assert_int_equal(ota_http_xfer_check(&x, 59 * 1000 + 999, 5), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(x.why, "no byte for 30 s (5 bytes received)"));
    curl_easy_cleanup(e);
}

static void test_deadline_from_length(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_http_xfer x;
    int64_t t = 500;
    CURL *e;

    (void)state;
    policy_at(&p, &c, &t);
    p.min_rate = 100;
    p.grace_s = 5;
    p.stall_s = 0;
    /* 1000 bytes at 100 bytes/s after 5 s: 5 + 10 (+1 for rounding). */
    e = begin(&x, &p, 1000);
    assert_int_equal(x.deadline_ms - x.start_ms, 16 * 1000);
    /* Keeping the average exactly at the minimum, the transfer is still
     * cut at the deadline: it has had the time its length needs. */
    assert_int_equal(ota_http_xfer_check(&x, (500 + 16) * 1000, 1600), 0);
    assert_int_equal(ota_http_xfer_check(&x, (500 + 16) * 1000 + 1, 1600), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(x.why, "not done within 16 s"));
    curl_easy_cleanup(e);
    /* Without a length (0): no deadline of this kind. */
    e = begin(&x, &p, 0);
    assert_true(x.deadline_ms == INT64_MAX);
    curl_easy_cleanup(e);
}

static void test_round(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_http_xfer x;
    int64_t t = 100;
    CURL *e;

    (void)state;
    policy_at(&p, &c, &t);
    p.round_s = 60;
    p.min_rate = 0;
    p.stall_s = 0;
    assert_true(p.round_end_ms == INT64_MAX); /* not started */
    ota_http_round_start(&p);
    assert_int_equal(p.round_end_ms, 160 * 1000);
    t = 150; /* a later transfer of the same round */
    e = begin(&x, &p, 0);
    assert_int_equal(ota_http_xfer_check(&x, 159 * 1000, 10), 0);
    assert_int_equal(ota_http_xfer_check(&x, 160 * 1000, 10), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(x.why, "the update round's deadline passed"));
    curl_easy_cleanup(e);
    /* round_s 0: none. */
    p.round_s = 0;
    ota_http_round_start(&p);
    assert_true(p.round_end_ms == INT64_MAX);
}

static void test_no_reading_judges_nothing(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_http_xfer x;
    int64_t t = OTA_TIME_NONE;
    CURL *e;

    (void)state;
    policy_at(&p, &c, &t);
    p.min_rate = 0;
    e = begin(&x, &p, 100);
    assert_int_equal(ota_http_xfer_check(&x, OTA_TIME_NONE, 0), 0);
    /* The first reading starts the transfer's time. */
    assert_int_equal(ota_http_xfer_check(&x, 7000, 0), 0);
    assert_int_equal(ota_http_xfer_check(&x, 7000 + 29999, 0), 0);
    assert_int_equal(ota_http_xfer_check(&x, 7000 + 30000, 0), OTA_ERR_SLOW_RETRIEVAL);
    curl_easy_cleanup(e);
}

static void test_policy_refusals(void **state)
{
    struct ota_http_policy p;
    struct ota_http_xfer x;
    struct ota_detail det = {{0}};
    CURL *e = curl_easy_init();

    (void)state;
    assert_non_null(e);
    assert_true(ota_http_url_ok("http://example.org"));
    assert_true(ota_http_url_ok("https://example.org/x"));
    assert_false(ota_http_url_ok("ftp://example.org"));
    assert_false(ota_http_url_ok("file:///etc/passwd"));
    assert_false(ota_http_url_ok("http://"));
    assert_false(ota_http_url_ok("HTTP://example.org"));
    assert_false(ota_http_url_ok(NULL));

    ota_http_policy_default(&p);
    p.connect_timeout_s = 0;
    assert_int_equal(ota_http_setup(e, &p, NULL, &det), OTA_ERR_INVALID_ARG);
    ota_http_policy_default(&p);
    p.client_key = "/nonexistent/key.pem";
    assert_int_equal(ota_http_setup(e, &p, NULL, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "client key without a client certificate"));
    ota_http_policy_default(&p);
    p.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(ota_http_setup(e, &p, NULL, &det), OTA_ERR_NOT_FOUND);
    assert_non_null(strstr(det.msg, "CA file /nonexistent/ca.pem"));
    ota_http_policy_default(&p);
    p.client_cert = "/nonexistent/cert.pem";
    assert_int_equal(ota_http_setup(e, &p, NULL, &det), OTA_ERR_NOT_FOUND);
    assert_non_null(strstr(det.msg, "client certificate /nonexistent/cert.pem"));

    ota_http_policy_default(&p);
    assert_int_equal(ota_http_setup(e, &p, NULL, &det), 0);
    assert_int_equal(ota_http_xfer_begin(&x, e, &p, NULL, "file:///etc/passwd", 0, 0, &det),
                     OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "file:///etc/passwd: only http:// and https://"));
    assert_int_equal(ota_http_xfer_begin(&x, e, &p, NULL, "ftp://127.0.0.1/x", 0, 0, &det),
                     OTA_ERR_INVALID_ARG);
    curl_easy_cleanup(e);
}

/* ---- against a real server ------------------------------------------------- */

static const char server_py[] =
    "import http.server, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', '16384')\n"
    "        self.end_headers()\n"
    "        self.wfile.flush()\n"
    "        try:\n"
    "            if self.path == '/trickle':\n"
    "                for i in range(16384):\n"
    "                    self.wfile.write(b'x')\n"
    "                    self.wfile.flush()\n"
    "                    time.sleep(0.05)\n"
    "            elif self.path == '/stall':\n"
    "                time.sleep(30)\n"
    "            else:\n"
    "                self.wfile.write(b'y' * 16384)\n"
    "        except OSError:\n"
    "            pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

static pid_t server_pid;
static int server_port;
static char server_script[64];

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int port;

    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int wait_listening(int port)
{
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct timespec ts = {0, 50 * 1000 * 1000};
        int ok;

        if (s < 0)
            return -1;
        ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (ok)
            return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int group_setup(void **state)
{
    FILE *fp;
    char port[16];

    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(server_script, sizeof(server_script), "/tmp/ota-test-http-%d.py", (int)getpid());
    fp = fopen(server_script, "w");
    if (fp == NULL)
        return -1;
    fputs(server_py, fp);
    fclose(fp);
    server_port = free_port();
    snprintf(port, sizeof(port), "%d", server_port);
    server_pid = fork();
    if (server_pid == 0) {
        execlp("python3", "python3", server_script, port, (char *)NULL);
        _exit(127);
    }
    return server_pid > 0 && wait_listening(server_port) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    unlink(server_script);
    curl_global_cleanup();
    return 0;
}

static size_t drop(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    (void)ud;
    return size * nmemb;
}

/* A clock running 100 times faster than the real one: a trickle of 20
 * bytes/s looks like 0.2 bytes/s and a stall of 0.3 s like 30 s, so the
 * rules fire without the test waiting for them. */
static int64_t fast_now(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 100 + ts.tv_nsec / 10000000;
}

static int get(const char *path, const struct ota_http_policy *p, struct ota_detail *det)
{
    CURL *e = curl_easy_init();
    struct ota_http_xfer x;
    char url[64];
    char errbuf[CURL_ERROR_SIZE];
    CURLcode cc;
    int rc;

    assert_non_null(e);
    errbuf[0] = '\0';
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", server_port, path);
    rc = ota_http_setup(e, p, errbuf, det);
    if (rc == 0)
        rc = ota_http_xfer_begin(&x, e, p, url, url, 16384, 16384, det);
    assert_int_equal(rc, 0);
    assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop), CURLE_OK);
    cc = curl_easy_perform(e);
    rc = ota_http_xfer_result(&x, cc, errbuf, det);
    curl_easy_cleanup(e);
    return rc;
}

static void test_transfers(void **state)
{
    struct ota_http_policy p;
    struct ota_clock c;
    struct ota_detail det = {{0}};

    (void)state;
    ota_http_policy_default(&p);
    c.now = fast_now;
    c.ctx = NULL;
    p.clock = &c;
    assert_int_equal(get("/fast", &p, &det), 0);
    assert_int_equal(get("/trickle", &p, &det), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(det.msg, "/trickle: "));
    assert_non_null(strstr(det.msg, "below the minimum of 1024 bytes/s after 10 s"));
    p.min_rate = 0;
    assert_int_equal(get("/stall", &p, &det), OTA_ERR_SLOW_RETRIEVAL);
    assert_non_null(strstr(det.msg, "/stall: no byte for "));
    assert_non_null(strstr(det.msg, " s (0 bytes received)"));
    /* A refused connection is a network error, not slow retrieval. */
    {
        CURL *e = curl_easy_init();
        struct ota_http_xfer x;
        char url[64];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", free_port());
        assert_int_equal(ota_http_setup(e, &p, NULL, &det), 0);
        assert_int_equal(ota_http_xfer_begin(&x, e, &p, "x", url, 0, 0, &det), 0);
        assert_int_equal(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop), CURLE_OK);
        assert_int_equal(ota_http_xfer_result(&x, curl_easy_perform(e), NULL, &det),
                         OTA_ERR_NETWORK);
        assert_non_null(strstr(det.msg, "x: "));
        curl_easy_cleanup(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_average_after_grace),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_deadline_from_length),
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_no_reading_judges_nothing),
        cmocka_unit_test(test_policy_refusals),
        cmocka_unit_test(test_transfers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
