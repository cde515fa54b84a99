/* Prometheus metrics (metrics.h). */
#include "metrics.h"

static const char *const listener_name[SRV_NLISTENERS] = {"device", "admin", "public"};
static const char *const bytes_name[SRV_BYTES_KINDS] = {
    "metadata", "ledger", "target", "pack", "delta", "download", "api",
};

void srv_metrics_error(struct srv_metrics *m, int err)
{
    for (unsigned i = 0; i < ota_err_count && i < SRV_ERR_SLOTS; i++) {
        if (ota_err_codes[i] == err) {
            atomic_fetch_add(&m->errors[i], 1);
            return;
        }
    }
}

static uint64_t get(atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load(v);
}

int srv_metrics_render(struct ota_buf *o, struct srv_metrics *m)
{
    int rc = 0;

#define P(...)                                                                                     \
    do {                                                                                           \
        if (rc == 0)                                                                               \
            rc = ota_buf_printf(o, __VA_ARGS__);                                                   \
    } while (0)

    P("# HELP otachain_checkins_total Check-ins committed.\n"
      "# TYPE otachain_checkins_total counter\notachain_checkins_total %llu\n",
      (unsigned long long)get(&m->checkins));
    P("# HELP otachain_checkin_events_total Events recorded by check-ins.\n"
      "# TYPE otachain_checkin_events_total counter\notachain_checkin_events_total %llu\n",
      (unsigned long long)get(&m->checkin_events));
    P("# HELP otachain_bundles_built_total Proof bundles built for check-ins (cache misses).\n"
      "# TYPE otachain_bundles_built_total counter\notachain_bundles_built_total %llu\n",
      (unsigned long long)get(&m->bundles_built));
    P("# HELP otachain_bundle_cache_hits_total Check-ins answered with a cached proof bundle.\n"
      "# TYPE otachain_bundle_cache_hits_total counter\notachain_bundle_cache_hits_total %llu\n",
      (unsigned long long)get(&m->bundle_hits));
    P("# HELP otachain_requests_total Requests answered, by listener and status class.\n"
      "# TYPE otachain_requests_total counter\n");
    for (int l = 0; l < SRV_NLISTENERS; l++)
        for (int c = 1; c <= 5; c++)
            P("otachain_requests_total{listener=\"%s\",status=\"%dxx\"} %llu\n", listener_name[l],
              c, (unsigned long long)get(&m->requests[l][c]));
    P("# HELP otachain_errors_total Refusals and failures, by error name.\n"
      "# TYPE otachain_errors_total counter\n");
    for (unsigned i = 0; i < ota_err_count && i < SRV_ERR_SLOTS; i++) {
        uint64_t v = get(&m->errors[i]);
        if (v > 0)
            P("otachain_errors_total{kind=\"%s\"} %llu\n", ota_errname(ota_err_codes[i]),
              (unsigned long long)v);
    }
    P("# HELP otachain_bytes_served_total Response body bytes, by kind.\n"
      "# TYPE otachain_bytes_served_total counter\n");
    for (int k = 0; k < SRV_BYTES_KINDS; k++)
        P("otachain_bytes_served_total{kind=\"%s\"} %llu\n", bytes_name[k],
          (unsigned long long)get(&m->bytes[k]));
    P("# HELP otachain_connections Open connections, by listener.\n"
      "# TYPE otachain_connections gauge\n");
    for (int l = 0; l < SRV_NLISTENERS; l++)
        P("otachain_connections{listener=\"%s\"} %llu\n", listener_name[l],
          (unsigned long long)get(&m->connections[l]));
    P("# HELP otachain_connections_refused_total Times accepting paused at max_connections.\n"
      "# TYPE otachain_connections_refused_total counter\n");
    for (int l = 0; l < SRV_NLISTENERS; l++)
        P("otachain_connections_refused_total{listener=\"%s\"} %llu\n", listener_name[l],
          (unsigned long long)get(&m->conn_paused[l]));
    P("# TYPE otachain_db_commits_total counter\notachain_db_commits_total %llu\n",
      (unsigned long long)get(&m->db_commits));
    P("# TYPE otachain_db_batch_max gauge\notachain_db_batch_max %llu\n",
      (unsigned long long)get(&m->db_batch_max));
    P("# TYPE otachain_db_queue gauge\notachain_db_queue %llu\n",
      (unsigned long long)get(&m->db_queue));
    P("# TYPE otachain_devices gauge\notachain_devices %llu\n",
      (unsigned long long)get(&m->devices));
    P("# TYPE otachain_devices_flagged gauge\notachain_devices_flagged %llu\n",
      (unsigned long long)get(&m->flagged));
    P("# TYPE otachain_ledger_size gauge\notachain_ledger_size %llu\n",
      (unsigned long long)get(&m->ledger_size));
    P("# TYPE otachain_events_expired_total counter\notachain_events_expired_total %llu\n",
      (unsigned long long)get(&m->events_expired));
#undef P
    return rc;
}
