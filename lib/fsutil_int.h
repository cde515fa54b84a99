/* Internal file helpers shared by lib/ modules (not part of the public API). */
#ifndef OTACHAIN_FSUTIL_INT_H
#define OTACHAIN_FSUTIL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

/* Reads the rest of an open regular file (fd stays open, owned by the
 * caller) into a new buffer of at most max bytes plus a NUL (free()).
 * Same errors as ota_fs_read. The buffer never moves through realloc, so
 * a secret read this way leaves no stale copy: wipe *out before free(). */
OTA_WUR int ota_fs_read_fd(uint8_t **out, size_t *out_len, int fd, size_t max);

#endif
