/* libFuzzer harness for the byte-range answer parser (multipart.h).
 *
 * Input: a Content-Type line, '\n', then the body. The line also goes
 * through the Content-Range parser. When the Content-Type yields a
 * boundary, the body is parsed twice: whole, and in pieces whose sizes
 * come from the body's own bytes. Properties: both parses end with the
 * same result and the same trace of parts and data (the framing does not
 * depend on how the network cuts it); on success every part received
 * exactly the bytes its Content-Range announced; a Content-Range accepted
 * is a range (first <= last < total); outputs of refusals are zero. Any
 * violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/crypto.h"
#include "otachain/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct trace {
    struct ota_sha256_ctx *h; /* of every callback and its bytes */
    uint64_t want;            /* bytes the current part announced */
    uint64_t got;
    int short_part; /* a part ended with got != want */
};

static int on_part(void *ctx, const struct ota_byte_range *r)
{
    struct trace *t = ctx;

    if (r->last < r->first || (r->total != UINT64_MAX && r->last >= r->total))
        abort();
    if (t->got != t->want)
        t->short_part = 1;
    t->want = r->last - r->first + 1;
    t->got = 0;
    if (ota_sha256_update(t->h, "P", 1) != 0 || ota_sha256_update(t->h, r, sizeof(*r)) != 0)
        abort();
    return 0;
}

static int on_data(void *ctx, const uint8_t *d, size_t n)
{
    struct trace *t = ctx;

    if (n == 0)
        abort(); /* never called for nothing */
    t->got += n;
    if (t->got > t->want)
        abort();
    if (ota_sha256_update(t->h, d, n) != 0)
        abort();
    return 0;
}

static int run(uint8_t digest[OTA_SHA256_LEN], const char *boundary, const uint8_t *body,
               size_t len, int split)
{
    struct ota_multipart m;
    struct trace t;
    size_t off = 0;
    int rc;

    memset(&t, 0, sizeof(t));
    if (ota_sha256_init(&t.h) != 0)
        abort();
    if (ota_multipart_init(&m, boundary, 16, on_part, on_data, &t) != 0)
        abort();
    rc = 0;
    while (rc == 0 && off < len) {
        size_t n = split ? (size_t)(body[off] % 17) + 1 : len;

        if (n > len - off)
            n = len - off;
        rc = ota_multipart_feed(&m, body + off, n, NULL);
        off += n;
    }
    if (rc == 0)
        rc = ota_multipart_finish(&m, NULL);
    if (rc == 0 && (t.got != t.want || t.short_part || ota_multipart_parts(&m) == 0))
        abort();
    if (ota_sha256_update(t.h, &rc, sizeof(rc)) != 0 || ota_sha256_final(digest, t.h) != 0)
        abort();
    ota_sha256_ctx_free(t.h);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char line[512];
    char boundary[OTA_MULTIPART_BOUNDARY_MAX + 1];
    struct ota_byte_range r;
    uint8_t a[OTA_SHA256_LEN], b[OTA_SHA256_LEN];
    size_t llen;

    if (nl == NULL || (size_t)(nl - data) >= sizeof(line))
        return 0;
    llen = (size_t)(nl - data);
    memcpy(line, data, llen);
    line[llen] = '\0';
    if (ota_content_range_parse(&r, line, llen, NULL) == 0) {
        if (r.last < r.first || (r.total != UINT64_MAX && r.last >= r.total))
            abort();
    } else if (r.first != 0 || r.last != 0 || r.total != 0) {
        abort();
    }
    if (ota_multipart_boundary(boundary, line, NULL) != 0) {
        if (boundary[0] != '\0')
            abort();
        return 0;
    }
    if (strlen(boundary) == 0 || strlen(boundary) > OTA_MULTIPART_BOUNDARY_MAX)
        abort();
    if (run(a, boundary, nl + 1, size - llen - 1, 0) !=
            run(b, boundary, nl + 1, size - llen - 1, 1) ||
        memcmp(a, b, sizeof(a)) != 0)
        abort();
    return 0;
}
