/* Growing byte buffer with a hard cap (see otachain/buf.h).
 *
 * Invariants: data == NULL iff alloc == 0; otherwise len < alloc,
 * data[len] == '\0' and len <= max. Growth never uses realloc: the old
 * block is copied, wiped and freed, so buffers that held secrets leave no
 * stale copies on the heap.
 */
#include "otachain/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/crypto.h"

#define OTA_BUF_MIN_ALLOC 64

void ota_buf_init(struct ota_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

/* Makes room for need more bytes plus the NUL. Caller checked
 * len + need <= max. */
static int buf_reserve(struct ota_buf *b, size_t need)
{
    size_t want;
    size_t cap;
    size_t n;
    uint8_t *p;

    if (b->len + need == SIZE_MAX)
        return OTA_ERR_NOMEM; /* no room for the NUL in any address space */
    want = b->len + need + 1;
    /* Never allocate more than the cap needs. */
    cap = b->max == SIZE_MAX ? SIZE_MAX : b->max + 1;
    if (want <= b->alloc)
        return 0;
    n = b->alloc ? b->alloc : OTA_BUF_MIN_ALLOC;
    while (n < want && n <= SIZE_MAX / 2)
        n *= 2;
    if (n < want)
        n = want;
    if (n > cap)
        n = cap;
    p = malloc(n);
    if (p == NULL)
        return OTA_ERR_NOMEM;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        ota_wipe(b->data, b->alloc);
        free(b->data);
    } else {
        p[0] = '\0';
    }
    b->data = p;
    b->alloc = n;
    return 0;
}

int ota_buf_append(struct ota_buf *b, const void *p, size_t n)
{
    int rc;

    if (b == NULL || (p == NULL && n > 0))
        return OTA_ERR_INVALID_ARG;
    if (b->len > b->max || n > b->max - b->len)
        return OTA_ERR_TOO_LARGE;
    rc = buf_reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ota_buf_append_str(struct ota_buf *b, const char *s)
{
    if (s == NULL)
        return OTA_ERR_INVALID_ARG;
    return ota_buf_append(b, s, strlen(s));
}

int ota_buf_printf(struct ota_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    if (b == NULL || fmt == NULL)
        return OTA_ERR_INVALID_ARG;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return OTA_ERR_INVALID_ARG;
    if (b->len > b->max || (size_t)n > b->max - b->len)
        return OTA_ERR_TOO_LARGE;
    rc = buf_reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    /* Room for n bytes plus the NUL was reserved above. */
    n = vsnprintf((char *)b->data + b->len, b->alloc - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        return OTA_ERR_INVALID_ARG;
    }
    b->len += (size_t)n;
    return 0;
}

uint8_t *ota_buf_steal(struct ota_buf *b, size_t *len)
{
    uint8_t *p = b->data;

    if (len != NULL)
        *len = p != NULL ? b->len : 0;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}

void ota_buf_free(struct ota_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL) {
        ota_wipe(b->data, b->alloc);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}
