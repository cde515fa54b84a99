/* otachain-server configuration (docs/server.md "Configuration"): one
 * table of keys, filled from their defaults, then the INI file, then the
 * environment (OTACHAIN_SERVER_<SECTION>_<KEY>), then --set
 * SECTION.KEY=VALUE flags, each later source overriding. --help prints
 * the table, so every key is documented where it is defined.
 *
 * Every value is checked when the configuration is loaded (fail closed:
 * an unknown section or key, a key twice in the file, a malformed value
 * or a missing mandatory key refuses the whole configuration, naming the
 * source: file and line, variable or flag). The result is a plain value
 * owned by the caller (srv_config_free).
 */
#ifndef OTACHAIN_SERVER_CONFIG_H
#define OTACHAIN_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "otachain/err.h"

#define SRV_CONFIG_MAX_LEN  (64u * 1024)
#define SRV_CONFIG_MAX_LINE 4096
#define SRV_MAX_PROXIES     16

enum srv_listener_kind {
    SRV_DEVICE = 0,
    SRV_ADMIN = 1,
    SRV_PUBLIC = 2,
};
#define SRV_NLISTENERS 3

struct srv_listener_config {
    bool enabled;
    char *listen;   /* "ADDR:PORT" or "[V6]:PORT" */
    char *tls_cert; /* NULL with plain_http */
    char *tls_key;
    char *client_ca; /* device: required (device CA); admin: optional (server CA) */
    bool plain_http;
};

struct srv_config {
    /* [server] */
    char *repository; /* the authoring directory; <repository>/public is served */
    char *database;
    char *log_file; /* "-": standard error */
    uint64_t shutdown_timeout;
    uint64_t repository_poll;
    struct srv_listener_config l[SRV_NLISTENERS];
    /* [device] extras */
    char *trusted_proxies; /* comma-separated addresses ("" none) */
    char *proxy_device_header;
    char *proxy_serial_header;
    char *renew_ca_cert;
    char *renew_ca_key;
    uint64_t renew_window;
    uint64_t renew_validity;
    /* [public] extras */
    uint64_t rate_limit; /* bytes/s per connection, 0: none */
    /* [limits] */
    uint64_t max_connections;
    uint64_t max_body_bytes;
    uint64_t max_header_bytes;
    uint64_t max_part_bytes;
    uint64_t request_timeout;
    uint64_t db_queue;
    uint64_t group_commit_max;
    /* [checkin] */
    uint64_t poll_interval;
    uint64_t poll_jitter;
    uint64_t bundle_cache_bytes;
    uint64_t event_max_age;
    uint64_t event_max_per_device;
    /* [database] */
    bool sync_normal;
};

/* Loads: defaults, file (NULL: none), environment, then the flags
 * (SECTION.KEY=VALUE strings). OTA_ERR_FORMAT / OTA_ERR_TOO_LARGE /
 * OTA_ERR_INVALID_ARG with det naming the source. */
OTA_WUR int srv_config_load(struct srv_config *cfg, const char *file, const char *const *sets,
                            size_t nsets, struct ota_detail *det);

/* Frees every string; accepts a zeroed struct. */
void srv_config_free(struct srv_config *cfg);

/* Prints every key (section, name, default, meaning) for --help. */
void srv_config_print_keys(FILE *f);

#endif
