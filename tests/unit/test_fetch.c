/* Fetchers: the directory fetcher's caps and name checks, and the HTTP
 * fetcher against real servers on loopback (python3 http.server for plain
 * files, a small stdlib script for endless, stalled, redirecting and
 * failing responses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testfs.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/fetch.h"

#define CAP 1000u

struct env {
    char dir[256];      /* temp dir served by both servers */
    char script[300];   /* the special server */
    pid_t plain_pid;    /* python3 -m http.server */
    pid_t special_pid;  /* the script */
    char plain_url[64]; /* http://127.0.0.1:<port> */
    char special_url[64];
};

static struct env E;

/* ---- helpers ------------------------------------------------------------ */

#define assert_err(expr, want, det)                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            print_message("got %s (%s), want %s\n", ota_errname(rc_), (det)->msg,                  \
                          ota_errname(want));                                                      \
        assert_int_equal(rc_, (want));                                                             \
    } while (0)

static void path_join(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[512];
    path_join(path, sizeof(path), E.dir, rel);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void write_pattern(const char *rel, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + 3);
    write_file(rel, p, len);
    free(p);
}

/* A port that was free a moment ago. */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    close(s);
    return ntohs(a.sin_port);
}

static int wait_listening(int port)
{
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(s);
        if (ok)
            return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        /* Quiet child: the server's request log is noise in test output. */
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static const char special_server[] =
    "import http.server, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def reply(self, code, body, headers=()):\n"
    "        self.send_response(code)\n"
    "        for k, v in headers:\n"
    "            self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_GET(self):\n"
    "        p = self.path\n"
    "        if p.endswith('/endless'):\n"
    "            self.send_response(200)\n"
    "            self.send_header('Connection', 'close')\n"
    "            self.end_headers()\n"
    "            self.close_connection = True\n"
    "            chunk = b'x' * 16384\n"
    "            try:\n"
    "                while True:\n"
    "                    self.wfile.write(chunk)\n"
    "            except OSError:\n"
    "                pass\n"
    "        elif p.endswith('/stall'):\n"
    "            self.send_response(200)\n"
    "            self.send_header('Content-Length', '100')\n"
    "            self.end_headers()\n"
    "            self.wfile.flush()\n"
    "            time.sleep(30)\n"
    "        elif p.endswith('/error'):\n"
    "            self.reply(500, b'boom')\n"
    "        elif p.endswith('/forbidden'):\n"
    "            self.reply(403, b'no')\n"
    "        elif p.endswith('/to-file'):\n"
    "            self.reply(302, b'', [('Location', 'file:///etc/passwd')])\n"
    "        elif p.endswith('/to-plain'):\n"
    "            self.reply(302, b'moved', [('Location', '/metadata/plain')])\n"
    "        elif p.endswith('/plain'):\n"
    "            self.reply(200, b'hello')\n"
    "        else:\n"
    "            self.reply(404, b'not here')\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

static int group_setup(void **state)
{
    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    snprintf(E.dir, sizeof(E.dir), "/tmp/ota-test-fetch-XXXXXX");
    if (mkdtemp(E.dir) == NULL)
        return -1;
    char sub[512];
    path_join(sub, sizeof(sub), E.dir, "metadata");
    mkdir(sub, 0755);
    path_join(sub, sizeof(sub), E.dir, "targets");
    mkdir(sub, 0755);
    path_join(sub, sizeof(sub), E.dir, "targets/fw");
    mkdir(sub, 0755);
    const char *ledger_dirs[] = {"ledger", "ledger/tile", "ledger/tile/0", "ledger/tile/0/x001"};
    for (size_t i = 0; i < sizeof(ledger_dirs) / sizeof(ledger_dirs[0]); i++) {
        path_join(sub, sizeof(sub), E.dir, ledger_dirs[i]);
        mkdir(sub, 0755);
    }

    write_file("metadata/1.root.json", "{\"a\":1}", 7);
    write_pattern("metadata/exact", CAP);
    write_pattern("metadata/over", CAP + 1);
    write_pattern("metadata/big", 300 * 1024);
    write_pattern("targets/fw/img.bin", 4096);
    write_file("metadata/empty", "", 0);
    write_pattern("ledger/tile/0/x001/234", 8192);

    path_join(E.script, sizeof(E.script), E.dir, "server.py");
    FILE *fp = fopen(E.script, "w");
    if (fp == NULL)
        return -1;
    fputs(special_server, fp);
    fclose(fp);

    int p1 = free_port();
    char port1[16];
    snprintf(port1, sizeof(port1), "%d", p1);
    char *plain[] = {"python3", "-m",          "http.server", "--bind", "127.0.0.1",
                     port1,     "--directory", E.dir,         NULL};
    E.plain_pid = spawn(plain);
    int p2 = free_port();
    char port2[16];
    snprintf(port2, sizeof(port2), "%d", p2);
    char *special[] = {"python3", E.script, port2, NULL};
    E.special_pid = spawn(special);
    if (E.plain_pid < 0 || E.special_pid < 0 || wait_listening(p1) != 0 || wait_listening(p2) != 0)
        return -1;
    snprintf(E.plain_url, sizeof(E.plain_url), "http://127.0.0.1:%d", p1);
    snprintf(E.special_url, sizeof(E.special_url), "http://127.0.0.1:%d/", p2);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop(E.plain_pid);
    stop(E.special_pid);
    rm_rf(E.dir);
    curl_global_cleanup();
    return 0;
}

/* A sink that counts what it is given. */
struct counter {
    size_t calls;
    uint64_t bytes;
    int fail_with;
};

static int count_sink(void *ctx, const void *data, size_t len)
{
    (void)data;
    struct counter *c = ctx;
    c->calls++;
    c->bytes += len;
    return c->fail_with;
}

static int fetch_buf(const struct ota_fetcher *f, enum ota_fetch_kind kind, const char *name,
                     uint64_t max, struct ota_buf *b, struct ota_detail *det)
{
    ota_buf_init(b, 16u * 1024 * 1024);
    return f->fetch(f->ctx, kind, name, max, ota_sink_buf, b, det);
}

static void assert_pattern(const struct ota_buf *b, size_t len)
{
    assert_int_equal(b->len, len);
    for (size_t i = 0; i < len; i++)
        if (b->data[i] != (uint8_t)(i * 7 + 3))
            fail_msg("byte %zu differs", i);
}

/* ---- directory fetcher ---------------------------------------------------- */

static struct ota_fetcher *dir_fetcher(void)
{
    struct ota_fetcher *f = NULL;
    assert_int_equal(ota_fetcher_dir_new(&f, E.dir), 0);
    assert_non_null(f);
    return f;
}

static void test_dir_ok(void **state)
{
    (void)state;
    struct ota_fetcher *f = dir_fetcher();
    struct ota_detail det = {{0}};
    struct ota_buf b;
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "1.root.json", CAP, &b, &det), 0, &det);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "{\"a\":1}", 7);
    ota_buf_free(&b);

    /* Exactly max bytes is fine; larger files stream in several reads. */
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "exact", CAP, &b, &det), 0, &det);
    assert_pattern(&b, CAP);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "big", 300 * 1024, &b, &det), 0, &det);
    assert_pattern(&b, 300 * 1024);
    ota_buf_free(&b);

    /* Targets come from targets/. */
    assert_err(fetch_buf(f, OTA_FETCH_TARGET, "fw/img.bin", 4096, &b, &det), 0, &det);
    assert_pattern(&b, 4096);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "fw/img.bin", 4096, &b, &det), OTA_ERR_NOT_FOUND,
               &det);
    ota_buf_free(&b);

    /* Ledger files come from ledger/, with the same cap and names. */
    assert_err(fetch_buf(f, OTA_FETCH_LEDGER, "tile/0/x001/234", 8192, &b, &det), 0, &det);
    assert_pattern(&b, 8192);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_LEDGER, "tile/0/x001/234", 8191, &b, &det), OTA_ERR_TOO_LARGE,
               &det);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_TARGET, "tile/0/x001/234", 8192, &b, &det), OTA_ERR_NOT_FOUND,
               &det);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_LEDGER, "../metadata/1.root.json", CAP, &b, &det),
               OTA_ERR_INVALID_ARG, &det);
    ota_buf_free(&b);

    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "empty", 0, count_sink, &cnt, &det), 0, &det);
    assert_int_equal(cnt.bytes, 0);
    ota_fetcher_free(f);
}

static void test_dir_too_large_before_reading(void **state)
{
    (void)state;
    struct ota_fetcher *f = dir_fetcher();
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "over", CAP, count_sink, &cnt, &det),
               OTA_ERR_TOO_LARGE, &det);
    assert_int_equal(cnt.calls, 0);
    assert_non_null(strstr(det.msg, "over"));
    ota_fetcher_free(f);
}

static void test_dir_not_found(void **state)
{
    (void)state;
    struct ota_fetcher *f = dir_fetcher();
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "9.root.json", CAP, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    assert_err(f->fetch(f->ctx, OTA_FETCH_TARGET, "nodir/x", CAP, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    assert_int_equal(cnt.calls, 0);
    ota_fetcher_free(f);
}

static void test_dir_refuses_escaping_names(void **state)
{
    (void)state;
    struct ota_fetcher *f = dir_fetcher();
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    const char *bad[] = {
        "../metadata/1.root.json", "..", "fw/../../server.py", "a/..", "/etc/passwd", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_err(f->fetch(f->ctx, OTA_FETCH_TARGET, bad[i], CAP, count_sink, &cnt, &det),
                   OTA_ERR_INVALID_ARG, &det);
    assert_int_equal(cnt.calls, 0);
    /* Dots inside a name are not a ".." segment. */
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "..x", CAP, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    ota_fetcher_free(f);
}

static void test_dir_sink_error_returned(void **state)
{
    (void)state;
    struct ota_fetcher *f = dir_fetcher();
    struct ota_detail det = {{0}};
    struct counter cnt = {.fail_with = OTA_ERR_HASH_MISMATCH};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "big", 1u << 20, count_sink, &cnt, &det),
               OTA_ERR_HASH_MISMATCH, &det);
    assert_int_equal(cnt.calls, 1);
    ota_fetcher_free(f);
    ota_fetcher_free(NULL);
}

/* ---- HTTP fetcher ---------------------------------------------------------- */

static struct ota_fetcher *http_fetcher(const char *url, long stall_s)
{
    struct ota_fetcher *f = NULL;
    struct ota_http_policy o;
    ota_http_policy_default(&o);
    o.connect_timeout_s = 5;
    if (stall_s > 0)
        o.stall_s = stall_s;
    assert_int_equal(ota_fetcher_http_new(&f, url, &o, NULL), 0);
    assert_non_null(f);
    return f;
}

static void test_http_ok(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.plain_url, 0);
    struct ota_detail det = {{0}};
    struct ota_buf b;
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "1.root.json", CAP, &b, &det), 0, &det);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "{\"a\":1}", 7);
    ota_buf_free(&b);
    /* The same handle again (keep-alive), a bigger body, a target. */
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "big", 300 * 1024, &b, &det), 0, &det);
    assert_pattern(&b, 300 * 1024);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_TARGET, "fw/img.bin", 4096, &b, &det), 0, &det);
    assert_pattern(&b, 4096);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_LEDGER, "tile/0/x001/234", 8192, &b, &det), 0, &det);
    assert_pattern(&b, 8192);
    ota_buf_free(&b);
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "exact", CAP, &b, &det), 0, &det);
    assert_pattern(&b, CAP);
    ota_buf_free(&b);
    ota_fetcher_free(f);
}

static void test_http_not_found(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.plain_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "9.root.json", CAP, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    assert_non_null(strstr(det.msg, "404"));
    assert_int_equal(cnt.calls, 0);
    /* An error page longer than a small cap (an index file's) is still
     * "not found", not "too large". */
    assert_err(f->fetch(f->ctx, OTA_FETCH_LEDGER, "index/snapshot/9", 8, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    assert_non_null(strstr(det.msg, "404"));
    assert_int_equal(cnt.calls, 0);
    ota_fetcher_free(f);

    f = http_fetcher(E.special_url, 0);
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "forbidden", CAP, count_sink, &cnt, &det),
               OTA_ERR_NOT_FOUND, &det);
    assert_int_equal(cnt.calls, 0);
    ota_fetcher_free(f);
}

static void test_http_status_error(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.special_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "error", CAP, count_sink, &cnt, &det),
               OTA_ERR_NETWORK, &det);
    assert_non_null(strstr(det.msg, "500"));
    assert_int_equal(cnt.calls, 0); /* the error page never reaches the sink */
    ota_fetcher_free(f);
}

static void test_http_content_length_over_cap(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.plain_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "over", CAP, count_sink, &cnt, &det),
               OTA_ERR_TOO_LARGE, &det);
    assert_int_equal(cnt.calls, 0);
    /* The handle is still usable afterwards. */
    struct ota_buf b;
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "exact", CAP, &b, &det), 0, &det);
    assert_pattern(&b, CAP);
    ota_buf_free(&b);
    ota_fetcher_free(f);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_http_endless_body(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.special_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    double t0 = mono_now();
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "endless", 100000, count_sink, &cnt, &det),
               OTA_ERR_TOO_LARGE, &det);
    double took = mono_now() - t0;
    assert_true(cnt.bytes <= 100000);
    assert_true(took < 5.0);
    ota_fetcher_free(f);
}

static void test_http_slow_retrieval(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.special_url, 1);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    double t0 = mono_now();
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "stall", CAP, count_sink, &cnt, &det),
               OTA_ERR_SLOW_RETRIEVAL, &det);
    assert_non_null(strstr(det.msg, "/metadata/stall: no byte for 1 s"));
    assert_true(mono_now() - t0 < 10.0);
    ota_fetcher_free(f);
}

static void test_http_redirects(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.special_url, 0);
    struct ota_detail det = {{0}};
    struct ota_buf b;
    assert_err(fetch_buf(f, OTA_FETCH_METADATA, "to-plain", CAP, &b, &det), 0, &det);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "hello", 5);
    ota_buf_free(&b);
    /* No redirect to another scheme. */
    struct counter cnt = {0};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "to-file", 1u << 20, count_sink, &cnt, &det),
               OTA_ERR_NETWORK, &det);
    assert_int_equal(cnt.calls, 0);
    ota_fetcher_free(f);
}

static void test_http_refusals(void **state)
{
    (void)state;
    struct ota_fetcher *f = NULL;
    assert_int_equal(ota_fetcher_http_new(&f, "file:///etc", NULL, NULL), OTA_ERR_INVALID_ARG);
    assert_null(f);
    assert_int_equal(ota_fetcher_http_new(&f, "ftp://127.0.0.1", NULL, NULL), OTA_ERR_INVALID_ARG);
    f = http_fetcher(E.plain_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {0};
    const char *bad[] = {"../server.py", "a?b", "a#b", "a%2e%2e/b", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_err(f->fetch(f->ctx, OTA_FETCH_TARGET, bad[i], CAP, count_sink, &cnt, &det),
                   OTA_ERR_INVALID_ARG, &det);
    assert_int_equal(cnt.calls, 0);
    ota_fetcher_free(f);

    /* Nothing listens on a just-freed port. */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
    f = http_fetcher(url, 0);
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "1.root.json", CAP, count_sink, &cnt, &det),
               OTA_ERR_NETWORK, &det);
    ota_fetcher_free(f);
}

static void test_http_sink_error_returned(void **state)
{
    (void)state;
    struct ota_fetcher *f = http_fetcher(E.plain_url, 0);
    struct ota_detail det = {{0}};
    struct counter cnt = {.fail_with = OTA_ERR_HASH_MISMATCH};
    assert_err(f->fetch(f->ctx, OTA_FETCH_METADATA, "big", 1u << 20, count_sink, &cnt, &det),
               OTA_ERR_HASH_MISMATCH, &det);
    assert_int_equal(cnt.calls, 1);
    ota_fetcher_free(f);
}

static void test_sink_buf_cap(void **state)
{
    (void)state;
    struct ota_buf b;
    ota_buf_init(&b, 4);
    assert_int_equal(ota_sink_buf(&b, "abc", 3), 0);
    assert_int_equal(ota_sink_buf(&b, "de", 2), OTA_ERR_TOO_LARGE);
    assert_int_equal(b.len, 3);
    ota_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_ok),
        cmocka_unit_test(test_dir_too_large_before_reading),
        cmocka_unit_test(test_dir_not_found),
        cmocka_unit_test(test_dir_refuses_escaping_names),
        cmocka_unit_test(test_dir_sink_error_returned),
        cmocka_unit_test(test_http_ok),
        cmocka_unit_test(test_http_not_found),
        cmocka_unit_test(test_http_status_error),
        cmocka_unit_test(test_http_content_length_over_cap),
        cmocka_unit_test(test_http_endless_body),
        cmocka_unit_test(test_http_slow_retrieval),
        cmocka_unit_test(test_http_redirects),
        cmocka_unit_test(test_http_refusals),
        cmocka_unit_test(test_http_sink_error_returned),
        cmocka_unit_test(test_sink_buf_cap),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
