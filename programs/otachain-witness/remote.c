/* Fetching for validating mode (remote.h). */
#include "remote.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fsutil.h"
#include "otachain/http.h"

#define USER_AGENT "otachain-witness"

struct wit_remote {
    CURL *easy;
    struct ota_http_policy policy;
    struct ota_buf *sink;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
};

/* Empties b, keeping its storage and the NUL after the contents. */
static void buf_reset(struct ota_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    struct wit_remote *r = ud;
    size_t n = size * nmemb;
    int rc = ota_buf_append(r->sink, data, n);

    if (rc == OTA_ERR_TOO_LARGE)
        r->too_large = true;
    return rc == 0 ? n : 0;
}

int wit_remote_new(struct wit_remote **out, long connect_timeout_s, long total_timeout_s,
                   const char *ca_file, const struct ota_clock *clock, struct ota_detail *det)
{
    struct wit_remote *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (r == NULL)
        return OTA_ERR_NOMEM;
    /* The one HTTP policy, with the witness's own deadlines; no
     * redirects: a log names its own files. */
    ota_http_policy_default(&r->policy);
    r->policy.connect_timeout_s = connect_timeout_s;
    r->policy.timeout_s = total_timeout_s;
    r->policy.ca_file = ca_file;
    r->policy.clock = clock;
    r->policy.max_redirs = 0;
    r->policy.user_agent = USER_AGENT;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return OTA_ERR_NOMEM;
    }
    rc = ota_http_setup(r->easy, &r->policy, r->errbuf, det);
    if (rc == 0 && (curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
                    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) != CURLE_OK))
        rc = OTA_ERR_NETWORK;
    if (rc != 0) {
        wit_remote_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void wit_remote_free(struct wit_remote *r)
{
    if (r == NULL)
        return;
    curl_easy_cleanup(r->easy);
    free(r);
}

static int get_url(struct wit_remote *r, struct ota_buf *out, const char *url,
                   struct ota_detail *det)
{
    struct ota_http_xfer x;
    CURLcode cc;
    long status = 0;
    int rc;

    r->sink = out;
    r->too_large = false;
    r->errbuf[0] = '\0';
    rc = ota_http_xfer_begin(&x, r->easy, &r->policy, url, url, out->max, out->max, det);
    if (rc == 0 && curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
        ota_detail_set(det, "%s: cannot set up the request", url);
        rc = OTA_ERR_NETWORK;
    }
    if (rc != 0)
        return rc;
    cc = curl_easy_perform(r->easy);
    r->sink = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        ota_detail_set(det, "%s: larger than %zu bytes", url, out->max);
        return OTA_ERR_TOO_LARGE;
    }
    if (cc != CURLE_OK)
        return ota_http_xfer_result(&x, cc, r->errbuf, det);
    if (status == 403 || status == 404 || status == 410) {
        ota_detail_set(det, "%s: HTTP %ld", url, status);
        return OTA_ERR_NOT_FOUND;
    }
    if (status != 200) {
        ota_detail_set(det, "%s: HTTP %ld", url, status);
        return OTA_ERR_NETWORK;
    }
    return 0;
}

int wit_remote_get(struct wit_remote *r, struct ota_buf *out, const char *base, const char *rel,
                   struct ota_detail *det)
{
    size_t n = strlen(base) + 1 + strlen(rel) + 1;
    char *loc = malloc(n);
    size_t blen = strlen(base);
    int rc;

    if (loc == NULL)
        return OTA_ERR_NOMEM;
    /* One slash between base and rel whatever base ends with. */
    while (blen > 1 && base[blen - 1] == '/')
        blen--;
    memcpy(loc, base, blen);
    loc[blen] = '/';
    memcpy(loc + blen + 1, rel, strlen(rel) + 1);
    buf_reset(out);
    if (ota_http_url_ok(base)) {
        rc = get_url(r, out, loc, det);
    } else {
        uint8_t *data = NULL;
        size_t len = 0;

        rc = ota_fs_read_nofollow(&data, &len, loc, out->max);
        if (rc == 0)
            rc = ota_buf_append(out, data, len);
        free(data);
        if (rc != 0)
            ota_detail_set(det, "%s: %s", loc, ota_strerror(rc));
    }
    if (rc != 0)
        buf_reset(out);
    free(loc);
    return rc;
}
