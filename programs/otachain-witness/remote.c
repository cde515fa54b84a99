/* Fetching for validating mode (remote.h). */
#include "remote.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fsutil.h"

#define USER_AGENT "otachain-witness"

struct wit_remote {
    CURL *easy;
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

static bool is_url(const char *base)
{
    return strncmp(base, "http://", 7) == 0 || strncmp(base, "https://", 8) == 0;
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
                   const char *ca_file)
{
    struct wit_remote *r = calloc(1, sizeof(*r));
    CURL *e;
    bool ok;

    *out = NULL;
    if (r == NULL)
        return OTA_ERR_NOMEM;
    e = r->easy = curl_easy_init();
    if (e == NULL) {
        free(r);
        return OTA_ERR_NOMEM;
    }
    ok = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, connect_timeout_s) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_TIMEOUT, total_timeout_s) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
    if (ok && ca_file != NULL)
        ok = curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) == CURLE_OK;
    if (!ok) {
        wit_remote_free(r);
        return OTA_ERR_NETWORK;
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
    CURLcode cc;
    long status = 0;

    r->sink = out;
    r->too_large = false;
    r->errbuf[0] = '\0';
    if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)out->max) != CURLE_OK) {
        ota_detail_set(det, "%s: cannot set up the request", url);
        return OTA_ERR_NETWORK;
    }
    cc = curl_easy_perform(r->easy);
    r->sink = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
        ota_detail_set(det, "%s: larger than %zu bytes", url, out->max);
        return OTA_ERR_TOO_LARGE;
    }
    if (cc != CURLE_OK) {
        ota_detail_set(det, "%s: %s", url, r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
        return OTA_ERR_NETWORK;
    }
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
    if (is_url(base)) {
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
