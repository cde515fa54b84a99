/* Prometheus metrics of otachain-server (docs/api/admin-v1.md,
 * "GET /metrics"). Counters are atomics, so the event loop and the
 * database thread bump them without a lock; the text exposition is made
 * on the event loop. */
#ifndef OTACHAIN_SERVER_METRICS_H
#define OTACHAIN_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "otachain/buf.h"
#include "otachain/err.h"

enum srv_bytes_kind {
    SRV_BYTES_METADATA,
    SRV_BYTES_LEDGER,
    SRV_BYTES_TARGET,
    SRV_BYTES_PACK,
    SRV_BYTES_DELTA,
    SRV_BYTES_DOWNLOAD,
    SRV_BYTES_API,
    SRV_BYTES_KINDS
};

/* Error kinds counted: every ota_err name (by table index), plus HTTP
 * layer refusals. */
#define SRV_ERR_SLOTS 160

struct srv_metrics {
    atomic_uint_fast64_t checkins;
    atomic_uint_fast64_t checkin_events;
    atomic_uint_fast64_t bundles_built;               /* proof bundles built (cache misses) */
    atomic_uint_fast64_t bundle_hits;                 /* check-ins answered with a cached bundle */
    atomic_uint_fast64_t requests[SRV_NLISTENERS][6]; /* status class 1xx..5xx at [1..5] */
    atomic_uint_fast64_t errors[SRV_ERR_SLOTS];       /* by ota_err table index */
    atomic_uint_fast64_t bytes[SRV_BYTES_KINDS];
    atomic_uint_fast64_t connections[SRV_NLISTENERS]; /* gauge */
    atomic_uint_fast64_t conn_paused[SRV_NLISTENERS]; /* times accepting paused */
    atomic_uint_fast64_t db_commits;
    atomic_uint_fast64_t db_batch_max;
    atomic_uint_fast64_t db_queue;    /* gauge */
    atomic_uint_fast64_t flagged;     /* gauge */
    atomic_uint_fast64_t ledger_size; /* gauge */
    atomic_uint_fast64_t devices;     /* gauge, refreshed by maintenance */
    atomic_uint_fast64_t events_expired;
};

void srv_metrics_error(struct srv_metrics *m, int err);

/* Appends the text exposition (format 0.0.4). */
OTA_WUR int srv_metrics_render(struct ota_buf *out, struct srv_metrics *m);

#endif
