/* Where the TUF client gets its files from.
 *
 * A fetcher streams one named object into a sink with a hard cap on its
 * size. The TUF client names metadata files ("2.root.json",
 * "timestamp.json", "7.snapshot.json", "7.targets.json") and target files
 * ("fw/1.2.0/<sha256>.fw.img") and ledger files ("checkpoint",
 * "tile/0/x001/234", "tile/entries/5.p/3", "index/snapshot/7"; see
 * docs/formats/ledger.md); a fetcher maps them to a place: a directory
 * (<dir>/metadata/<name>, <dir>/targets/<name>, <dir>/ledger/<name>), a
 * URL (<url>/metadata/<name> and so on), and later a check-in response or
 * an offline bundle. Fetchers are untrusted transport: the client
 * verifies every byte.
 */
#ifndef OTACHAIN_FETCH_H
#define OTACHAIN_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/http.h"

enum ota_fetch_kind {
    OTA_FETCH_METADATA,
    OTA_FETCH_TARGET,
    OTA_FETCH_LEDGER, /* the log's static files: <base>/ledger/<name> */
};

/* Receives the object's bytes in order; a non-zero return (a negative
 * ota_err) aborts the transfer and is returned by fetch(). */
typedef int (*ota_sink_fn)(void *sink_ctx, const void *data, size_t len);

struct ota_fetcher {
    /* Streams object `name` of `kind` into sink. Contract:
     *  - OTA_ERR_TOO_LARGE as soon as more than `max` bytes arrive, and
     *    before transferring anything when the size is known in advance
     *    (file size, Content-Length): never read an endless stream to the
     *    end;
     *  - OTA_ERR_NOT_FOUND when the object does not exist (file absent,
     *    HTTP 403 or 404);
     *  - OTA_ERR_NETWORK / OTA_ERR_IO for transport failures;
     *  - OTA_ERR_SLOW_RETRIEVAL when the transfer broke a rule of the
     *    HTTP policy (too slow on average, stalled, past its deadline);
     *  - the sink's error as is.
     * det says what and where (path or URL, HTTP status). */
    int (*fetch)(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                 ota_sink_fn sink, void *sink_ctx, struct ota_detail *det);
    void (*destroy)(void *ctx);
    void *ctx;
};

/* A fetcher over a local directory laid out as a published repository
 * (<dir>/metadata, <dir>/targets, <dir>/ledger). Names with ".." segments or a leading
 * '/' are refused (OTA_ERR_INVALID_ARG). */
OTA_WUR int ota_fetcher_dir_new(struct ota_fetcher **out, const char *dir);

/* A fetcher over HTTP(S) with libcurl: base_url + "/metadata/" + name,
 * "/targets/" + name or "/ledger/" + name, under the HTTP policy (a copy
 * of *policy is kept; its strings and clock must outlive the fetcher;
 * NULL: the defaults): TLS floor, certificates, redirects (http/https
 * only, never from https to http) and slow retrieval, each transfer's
 * deadline coming from its max (the pinned length, or the cap).
 * OTA_ERR_INVALID_ARG for a URL that is not http(s), and the errors of
 * ota_http_setup; det says why. */
OTA_WUR int ota_fetcher_http_new(struct ota_fetcher **out, const char *base_url,
                                 const struct ota_http_policy *policy, struct ota_detail *det);

/* Calls destroy and frees; accepts NULL. */
void ota_fetcher_free(struct ota_fetcher *f);

/* A sink that collects into an ota_buf (sink_ctx = struct ota_buf *); the
 * buffer's own cap applies too. */
int ota_sink_buf(void *sink_ctx, const void *data, size_t len);

#endif
