/* The check-in's proof bundles (docs/api/device-v1.md, "bundle";
 * docs/formats/bundle.md): made by the library's builder
 * (ota_bundle_build) over the server's view of the published repository,
 * one repository state (repository.h), and cached per (the device's
 * trusted versions, that state): a fleet at the same versions costs one
 * build per publish, not one per check-in.
 *
 * The view (srv_bundle_fetcher) serves timestamp.json and
 * ledger/checkpoint as the bytes the state was loaded from, and no root
 * (or per-root checkpoint) newer than the state's root version: a publish
 * while a bundle is built cannot mix two states. Everything else the
 * builder reads (versioned metadata, per-root checkpoints, tiles) is
 * immutable once published and comes from the repository's public/.
 *
 * Threads: lookups run on the event loop (a mutex held for a scan of at
 * most SRV_BUNDLE_CACHE_ENTRIES keys); builds read the disk and run on
 * the file thread only, one at a time, so two devices asking for the
 * same bundle wait for one build (the second finds it in the cache).
 */
#ifndef OTACHAIN_SERVER_BUNDLES_H
#define OTACHAIN_SERVER_BUNDLES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/bundle.h"
#include "otachain/checkin.h"
#include "otachain/err.h"
#include "otachain/fetch.h"

#define SRV_BUNDLE_CACHE_ENTRIES 64

struct srv_repo_state;

/* A built bundle, shared by the cache and the replies that send it. */
struct srv_bundle {
    atomic_int refs;
    size_t len;
    uint8_t data[];
};

struct srv_bundle_cache;

OTA_WUR struct srv_bundle_cache *srv_bundle_cache_new(void);
void srv_bundle_cache_free(struct srv_bundle_cache *c);

/* Whether a device that reported rep is current with s: nothing to send
 * ("bundle": null). A state never published is current for everyone. */
bool srv_bundle_current(const struct srv_repo_state *s, const struct ota_checkin *rep);

/* The builder's request for a device that reported rep. */
void srv_bundle_request(struct ota_bundle_request *req, const struct ota_checkin *rep);

/* The cached bundle for req in s, with a reference (srv_bundle_put), or
 * NULL. */
struct srv_bundle *srv_bundle_lookup(struct srv_repo_state *s,
                                     const struct ota_bundle_request *req);

/* The bundle for req in s: from the cache, or built through the view of
 * s over public_dir and kept in the cache (at most cache_bytes in all;
 * the oldest go first; a bundle larger than that is sent, not kept).
 * *built says whether it was built now. The builder's errors as they
 * are (OTA_ERR_BUNDLE_BASE: the device's root or checkpoint is not this
 * repository's). */
OTA_WUR int srv_bundle_get(struct srv_bundle **out, bool *built, struct srv_repo_state *s,
                           const char *public_dir, const struct ota_bundle_request *req,
                           size_t cache_bytes, struct ota_detail *det);

void srv_bundle_put(struct srv_bundle *b);

/* The view of s over public_dir (see above) in *out; free with
 * ota_fetcher_free. */
OTA_WUR int srv_bundle_fetcher(struct ota_fetcher **out, struct srv_repo_state *s,
                               const char *public_dir);

#endif
