/* Fetchers: a local directory and HTTP(S) over libcurl.
 *
 * Both keep the contract of fetch.h: the size cap is enforced before the
 * transfer when the size is known (fstat, Content-Length) and again on
 * every chunk, so an endless stream costs at most max + one buffer. The
 * bytes go to the sink unverified; the TUF client checks them.
 */
#include "otachain/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/http.h"

#define FETCH_CHUNK (64u * 1024)

/* Set in http_ctx.abort_err when the write callback stopped a transfer
 * because the status was not 2xx and its error page was longer than
 * HTTP_ERROR_PAGE_DRAIN. A shorter page is read and dropped, so that the
 * connection stays open for the next request (a 404 is routine: the next
 * root probe). It never reaches the sink. */
#define ABORT_STATUS          1
#define HTTP_ERROR_PAGE_DRAIN (16u * 1024)

static const char *kind_dir(enum ota_fetch_kind kind)
{
    switch (kind) {
    case OTA_FETCH_TARGET:
        return "targets";
    case OTA_FETCH_LEDGER:
        return "ledger";
    case OTA_FETCH_METADATA:
    default:
        return "metadata";
    }
}

/* A name is a relative path of printable ASCII without spaces and without
 * ".." segments. Names come from signed metadata, but the fetcher refuses
 * to leave its tree whatever it is given. `url_safe` also refuses the
 * characters that would change a URL's meaning ('?', '#', '%'), since
 * names are not percent-encoded. */
static bool name_ok(const char *name, bool url_safe)
{
    if (name == NULL || name[0] == '\0' || name[0] == '/')
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f)
            return false;
        if (url_safe && (ch == '?' || ch == '#' || ch == '%'))
            return false;
    }
    const char *seg = name;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return false;
        if (end == NULL)
            return true;
        seg = end + 1;
    }
}

/* Joins base + "/" + kind dir + "/" + name into a new string. */
static int join_location(char **out, const char *base, enum ota_fetch_kind kind, const char *name)
{
    struct ota_buf b;
    ota_buf_init(&b, SIZE_MAX / 2);
    int rc = ota_buf_printf(&b, "%s/%s/%s", base, kind_dir(kind), name);
    if (rc != 0) {
        ota_buf_free(&b);
        *out = NULL;
        return rc;
    }
    size_t len;
    *out = (char *)ota_buf_steal(&b, &len);
    return *out ? 0 : OTA_ERR_NOMEM;
}

static int fetcher_wrap(struct ota_fetcher **out, void *ctx, void (*destroy)(void *),
                        int (*fn)(void *, enum ota_fetch_kind, const char *, uint64_t, ota_sink_fn,
                                  void *, struct ota_detail *))
{
    struct ota_fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        destroy(ctx);
        *out = NULL;
        return OTA_ERR_NOMEM;
    }
    f->fetch = fn;
    f->destroy = destroy;
    f->ctx = ctx;
    *out = f;
    return 0;
}

void ota_fetcher_free(struct ota_fetcher *f)
{
    if (f == NULL)
        return;
    if (f->destroy)
        f->destroy(f->ctx);
    free(f);
}

int ota_sink_buf(void *sink_ctx, const void *data, size_t len)
{
    return ota_buf_append(sink_ctx, data, len);
}

/* ---- directory fetcher ------------------------------------------------ */

struct dir_ctx {
    char *dir;
};

static void dir_destroy(void *ctx)
{
    struct dir_ctx *d = ctx;
    if (d == NULL)
        return;
    free(d->dir);
    free(d);
}

static int dir_fetch(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                     ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    struct dir_ctx *d = ctx;
    if (!name_ok(name, false)) {
        ota_detail_set(det, "refusing object name \"%s\"", name ? name : "(null)");
        return OTA_ERR_INVALID_ARG;
    }
    char *path;
    int rc = join_location(&path, d->dir, kind, name);
    if (rc != 0)
        return rc;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        ota_detail_set(det, "%s: %s", path, strerror(e));
        free(path);
        return (e == ENOENT || e == ENOTDIR) ? OTA_ERR_NOT_FOUND : OTA_ERR_IO;
    }
    uint8_t *chunk = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ota_detail_set(det, "%s: %s", path, strerror(errno));
        rc = OTA_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ota_detail_set(det, "%s: not a regular file", path);
        rc = OTA_ERR_IO;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        ota_detail_set(det, "%s: %lld bytes, more than the cap of %llu", path,
                       (long long)st.st_size, (unsigned long long)max);
        rc = OTA_ERR_TOO_LARGE;
        goto out;
    }
    chunk = malloc(FETCH_CHUNK);
    if (chunk == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    uint64_t count = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, FETCH_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ota_detail_set(det, "%s: %s", path, strerror(errno));
            rc = OTA_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        /* The file may grow after fstat: count as we go. */
        if ((uint64_t)n > max - count) {
            ota_detail_set(det, "%s: more than the cap of %llu bytes", path,
                           (unsigned long long)max);
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        count += (uint64_t)n;
        rc = sink(sink_ctx, chunk, (size_t)n);
        if (rc != 0) {
            if (det && det->msg[0] == '\0')
                ota_detail_set(det, "%s: refused by the receiver after %llu bytes", path,
                               (unsigned long long)count);
            goto out;
        }
    }
    rc = 0;
out:
    free(chunk);
    close(fd);
    free(path);
    return rc;
}

int ota_fetcher_dir_new(struct ota_fetcher **out, const char *dir)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    struct dir_ctx *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return OTA_ERR_NOMEM;
    d->dir = strdup(dir);
    if (d->dir == NULL) {
        free(d);
        return OTA_ERR_NOMEM;
    }
    return fetcher_wrap(out, d, dir_destroy, dir_fetch);
}

/* ---- HTTP fetcher ------------------------------------------------------ */

struct http_ctx {
    CURL *easy; /* reused across fetches: keeps the connection alive */
    char *base; /* base URL without trailing '/' */
    struct ota_http_policy policy;
    /* per transfer */
    struct ota_http_xfer xfer;
    uint64_t max;
    uint64_t count;
    ota_sink_fn sink;
    void *sink_ctx;
    int abort_err;    /* why the write callback stopped the transfer */
    bool error_page;  /* the answer is not 2xx: its body is dropped */
    uint64_t drained; /* error page bytes dropped */
    char errbuf[CURL_ERROR_SIZE];
};

static void http_destroy(void *ctx)
{
    struct http_ctx *h = ctx;
    if (h == NULL)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    free(h->base);
    free(h);
}

static bool status_ok(long status)
{
    return status >= 200 && status <= 299;
}

static size_t http_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http_ctx *h = ud;
    size_t len = size * nmemb;
    if (h->count == 0 && !h->error_page) {
        /* First body bytes: an error page is not handed to the sink. */
        long status = 0;
        if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
            !status_ok(status))
            h->error_page = true;
    }
    if (h->error_page) {
        if ((uint64_t)len > HTTP_ERROR_PAGE_DRAIN - h->drained) {
            h->abort_err = ABORT_STATUS;
            return 0;
        }
        h->drained += len;
        return len;
    }
    if ((uint64_t)len > h->max - h->count) {
        h->abort_err = OTA_ERR_TOO_LARGE;
        return 0;
    }
    h->count += (uint64_t)len;
    int rc = h->sink(h->sink_ctx, data, len);
    if (rc != 0) {
        h->abort_err = rc;
        return 0;
    }
    return len;
}

static int status_error(long status, const char *url, struct ota_detail *det)
{
    ota_detail_set(det, "%s: HTTP status %ld", url, status);
    return (status == 403 || status == 404) ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
}

static int http_fetch(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                      ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    struct http_ctx *h = ctx;
    if (!name_ok(name, true)) {
        ota_detail_set(det, "refusing object name \"%s\"", name ? name : "(null)");
        return OTA_ERR_INVALID_ARG;
    }
    char *url;
    int rc = join_location(&url, h->base, kind, name);
    if (rc != 0)
        return rc;

    h->max = max;
    h->count = 0;
    h->sink = sink;
    h->sink_ctx = sink_ctx;
    h->abort_err = 0;
    h->error_page = false;
    h->drained = 0;
    h->errbuf[0] = '\0';

    /* max is the length signed metadata pins, or the cap where none is:
     * the slow-retrieval deadline comes from it. The write callback
     * counts too (no Content-Length, or a server that lies). */
    rc = ota_http_xfer_begin(&h->xfer, h->easy, &h->policy, url, url, max, max, det);
    if (rc == 0 && curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
        ota_detail_set(det, "%s: cannot set up the transfer", url);
        rc = OTA_ERR_NETWORK;
    }
    if (rc != 0) {
        free(url);
        return rc;
    }

    CURLcode cc = curl_easy_perform(h->easy);
    long status = 0;
    (void)curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);

    if (cc == CURLE_OK) {
        rc = status_ok(status) ? 0 : status_error(status, url, det);
    } else if (cc == CURLE_WRITE_ERROR && h->abort_err == ABORT_STATUS) {
        rc = status_error(status, url, det);
    } else if (cc == CURLE_WRITE_ERROR && h->abort_err == OTA_ERR_TOO_LARGE) {
        ota_detail_set(det, "%s: more than the cap of %llu bytes", url, (unsigned long long)max);
        rc = OTA_ERR_TOO_LARGE;
    } else if (cc == CURLE_WRITE_ERROR && h->abort_err != 0) {
        if (det && det->msg[0] == '\0')
            ota_detail_set(det, "%s: refused by the receiver after %llu bytes", url,
                           (unsigned long long)h->count);
        rc = h->abort_err;
    } else if (cc == CURLE_FILESIZE_EXCEEDED && !status_ok(status)) {
        /* An error page longer than a small cap (an index file's 32
         * bytes): the status is what counts. */
        rc = status_error(status, url, det);
    } else if (cc == CURLE_FILESIZE_EXCEEDED) {
        ota_detail_set(det, "%s: Content-Length above the cap of %llu bytes", url,
                       (unsigned long long)max);
        rc = OTA_ERR_TOO_LARGE;
    } else {
        rc = ota_http_xfer_result(&h->xfer, cc, h->errbuf, det);
    }
    h->sink = NULL;
    h->sink_ctx = NULL;
    free(url);
    return rc;
}

int ota_fetcher_http_new(struct ota_fetcher **out, const char *base_url,
                         const struct ota_http_policy *policy, struct ota_detail *det)
{
    *out = NULL;
    if (!ota_http_url_ok(base_url)) {
        ota_detail_set(det, "%s: only http:// and https:// URLs are fetched",
                       base_url != NULL ? base_url : "(null)");
        return OTA_ERR_INVALID_ARG;
    }
    struct http_ctx *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return OTA_ERR_NOMEM;
    if (policy != NULL)
        h->policy = *policy;
    else
        ota_http_policy_default(&h->policy);
    h->base = strdup(base_url);
    if (h->base == NULL) {
        free(h);
        return OTA_ERR_NOMEM;
    }
    size_t n = strlen(h->base);
    while (n > 0 && h->base[n - 1] == '/')
        h->base[--n] = '\0';
    h->easy = curl_easy_init();
    if (h->easy == NULL) {
        http_destroy(h);
        return OTA_ERR_NOMEM;
    }
    int rc = ota_http_setup(h->easy, &h->policy, h->errbuf, det);
    if (rc == 0 && (curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, http_write) != CURLE_OK ||
                    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h) != CURLE_OK))
        rc = OTA_ERR_UNSUPPORTED;
    if (rc != 0) {
        http_destroy(h);
        return rc;
    }
    return fetcher_wrap(out, h, http_destroy, http_fetch);
}
