/* Reads the files a validating witness checks: entry bundles from a log's
 * tiles and metadata versions from its repository. A base is either an
 * http:// or https:// URL (libcurl, one reused handle: keep-alive) or a
 * local directory. Everything read is untrusted: the caller checks it
 * against the checkpoint and the logged records.
 */
#ifndef OTACHAIN_WITNESS_REMOTE_H
#define OTACHAIN_WITNESS_REMOTE_H

#include <stddef.h>

#include "otachain/buf.h"
#include "otachain/clock.h"
#include "otachain/err.h"

struct wit_remote; /* opaque: a curl handle and its options */

/* Transfers under the HTTP policy (include/otachain/http.h: TLS floor,
 * slow-retrieval rules), with connect_timeout_s and total_timeout_s
 * bounding every transfer (a slow or endless server cannot hold the
 * witness longer); ca_file may be NULL (system store); no redirects.
 * clock: what the slow-retrieval rules read (NULL: CLOCK_MONOTONIC; a
 * test's injected clock otherwise). det says what failed. */
OTA_WUR int wit_remote_new(struct wit_remote **out, long connect_timeout_s, long total_timeout_s,
                           const char *ca_file, const struct ota_clock *clock,
                           struct ota_detail *det);
void wit_remote_free(struct wit_remote *r);

/* Reads base + "/" + rel into out (emptied first), at most out->max
 * bytes. OTA_ERR_NOT_FOUND (HTTP 403, 404, 410; no such file),
 * OTA_ERR_TOO_LARGE (more than out->max bytes), OTA_ERR_SLOW_RETRIEVAL
 * (too slow on average, stalled), OTA_ERR_NETWORK (other HTTP status,
 * transport error, timeout), OTA_ERR_IO; det names the URL
 * or path. */
OTA_WUR int wit_remote_get(struct wit_remote *r, struct ota_buf *out, const char *base,
                           const char *rel, struct ota_detail *det);

#endif
