/* Growing byte buffer with a hard cap set at creation (cf. curl's dynbuf).
 *
 * The buffer owns its storage. Appending may reallocate `data`: pointers
 * into it taken before an append are invalid afterwards. The contents are
 * always followed by one NUL byte (not counted in len) so text can be
 * passed to C string functions.
 */
#ifndef OTACHAIN_BUF_H
#define OTACHAIN_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

struct ota_buf {
    uint8_t *data; /* NULL until the first append */
    size_t len;    /* bytes in use */
    size_t alloc;  /* bytes allocated */
    size_t max;    /* hard cap on len */
};

/* Initialises an empty buffer that will refuse to grow beyond max bytes. */
void ota_buf_init(struct ota_buf *b, size_t max);

/* Appends n bytes. OTA_ERR_TOO_LARGE if len + n > max (nothing appended),
 * OTA_ERR_NOMEM on allocation failure. */
OTA_WUR int ota_buf_append(struct ota_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string (without its NUL). */
OTA_WUR int ota_buf_append_str(struct ota_buf *b, const char *s);

/* Appends printf-formatted text. */
OTA_WUR int ota_buf_printf(struct ota_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Hands the storage to the caller (free() it) and resets the buffer to
 * empty. Returns NULL for a buffer that never grew. */
uint8_t *ota_buf_steal(struct ota_buf *b, size_t *len);

/* Wipes and frees the storage; the buffer is empty afterwards. Accepts a
 * never-used buffer. */
void ota_buf_free(struct ota_buf *b);

#endif
