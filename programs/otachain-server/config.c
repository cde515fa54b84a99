/* otachain-server configuration (config.h). */
#include "config.h"

#include <ctype.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fsutil.h"

enum ktype {
    K_STR,  /* any non-empty value */
    K_PATH, /* a file path (empty: unset, where optional) */
    K_BOOL, /* true / false */
    K_UINT, /* decimal in [min, max] */
    K_ADDR, /* ADDR:PORT */
};

struct key {
    const char *section;
    const char *name;
    enum ktype type;
    const char *dflt; /* NULL: no default (mandatory for K_PATH if required) */
    uint64_t min, max;
    size_t off;
    bool required;
    const char *help;
};

#define OFF(f) offsetof(struct srv_config, f)
#define LOFF(i, f)                                                                                 \
    (offsetof(struct srv_config, l) + (i) * sizeof(struct srv_listener_config) +                   \
     offsetof(struct srv_listener_config, f))
#define DAY 86400

static const struct key keys[] = {
    {"server", "repository", K_PATH, NULL, 0, 0, OFF(repository), true,
     "the repository directory (otachain repo init): DIR/public is served"},
    {"server", "database", K_PATH, "", 0, 0, OFF(database), false,
     "the fleet database (SQLite, WAL); default DIR/fleet.db"},
    {"server", "log_file", K_PATH, "-", 0, 0, OFF(log_file), false,
     "where log lines go ('-': standard error); reopened on SIGHUP"},
    {"server", "shutdown_timeout", K_UINT, "30", 0, 3600, OFF(shutdown_timeout), false,
     "seconds SIGTERM waits for requests in flight before exiting"},
    {"server", "repository_poll", K_UINT, "5", 1, 3600, OFF(repository_poll), false,
     "seconds between checks of the repository for a new publish"},

    {"device", "enabled", K_BOOL, "true", 0, 0, LOFF(SRV_DEVICE, enabled), false,
     "serve the device API"},
    {"device", "listen", K_ADDR, "0.0.0.0:8443", 0, 0, LOFF(SRV_DEVICE, listen), false,
     "address and port (port 0: any free port, logged)"},
    {"device", "tls_cert", K_PATH, "", 0, 0, LOFF(SRV_DEVICE, tls_cert), false,
     "PEM server certificate chain (otachain ca issue-server)"},
    {"device", "tls_key", K_PATH, "", 0, 0, LOFF(SRV_DEVICE, tls_key), false, "its PEM key"},
    {"device", "client_ca", K_PATH, "", 0, 0, LOFF(SRV_DEVICE, client_ca), false,
     "the device CA (device-ca.crt): every device presents a certificate it issued"},
    {"device", "plain_http", K_BOOL, "false", 0, 0, LOFF(SRV_DEVICE, plain_http), false,
     "plain HTTP instead of TLS (tests, or behind a TLS-terminating proxy)"},
    {"device", "trusted_proxies", K_STR, "", 0, 0, OFF(trusted_proxies), false,
     "comma-separated proxy addresses whose device headers are believed"},
    {"device", "proxy_device_header", K_STR, "X-Otachain-Device", 0, 0, OFF(proxy_device_header),
     false, "header carrying the device id (from a trusted proxy only)"},
    {"device", "proxy_serial_header", K_STR, "X-Otachain-Serial", 0, 0, OFF(proxy_serial_header),
     false, "header carrying the certificate serial (optional, trusted proxy only)"},
    {"device", "renew_ca_cert", K_PATH, "", 0, 0, OFF(renew_ca_cert), false,
     "device CA certificate for renewals (POST /api/v1/certificate); unset: off"},
    {"device", "renew_ca_key", K_PATH, "", 0, 0, OFF(renew_ca_key), false, "its key (mode 0600)"},
    {"device", "renew_window", K_UINT, "2592000", 1, 3650 * (uint64_t)DAY, OFF(renew_window), false,
     "seconds before expiry from which a device may renew"},
    {"device", "renew_validity", K_UINT, "31536000", DAY, 3650 * (uint64_t)DAY, OFF(renew_validity),
     false, "validity of a renewed certificate, seconds"},

    {"admin", "enabled", K_BOOL, "true", 0, 0, LOFF(SRV_ADMIN, enabled), false,
     "serve the admin API and /metrics"},
    {"admin", "listen", K_ADDR, "127.0.0.1:8444", 0, 0, LOFF(SRV_ADMIN, listen), false,
     "address and port"},
    {"admin", "tls_cert", K_PATH, "", 0, 0, LOFF(SRV_ADMIN, tls_cert), false,
     "PEM server certificate chain"},
    {"admin", "tls_key", K_PATH, "", 0, 0, LOFF(SRV_ADMIN, tls_key), false, "its PEM key"},
    {"admin", "client_ca", K_PATH, "", 0, 0, LOFF(SRV_ADMIN, client_ca), false,
     "the server CA (server-ca.crt): admin certificates it issued are accepted; unset: tokens "
     "only"},
    {"admin", "plain_http", K_BOOL, "false", 0, 0, LOFF(SRV_ADMIN, plain_http), false,
     "plain HTTP instead of TLS"},

    {"public", "enabled", K_BOOL, "true", 0, 0, LOFF(SRV_PUBLIC, enabled), false,
     "serve the public repository layout"},
    {"public", "listen", K_ADDR, "0.0.0.0:8080", 0, 0, LOFF(SRV_PUBLIC, listen), false,
     "address and port"},
    {"public", "tls_cert", K_PATH, "", 0, 0, LOFF(SRV_PUBLIC, tls_cert), false,
     "PEM server certificate chain"},
    {"public", "tls_key", K_PATH, "", 0, 0, LOFF(SRV_PUBLIC, tls_key), false, "its PEM key"},
    {"public", "plain_http", K_BOOL, "false", 0, 0, LOFF(SRV_PUBLIC, plain_http), false,
     "plain HTTP instead of TLS"},
    {"public", "rate_limit", K_UINT, "0", 0, (uint64_t)1 << 40, OFF(rate_limit), false,
     "bytes/s per connection for downloads (0: unlimited)"},

    {"limits", "max_connections", K_UINT, "10000", 1, 1000000, OFF(max_connections), false,
     "open connections per listener; accepting pauses at the cap"},
    {"limits", "max_body_bytes", K_UINT, "65536", 1024, 64u << 20, OFF(max_body_bytes), false,
     "request body cap (413 above), except upload parts"},
    {"limits", "max_header_bytes", K_UINT, "16384", 1024, 1u << 20, OFF(max_header_bytes), false,
     "request line and headers cap"},
    {"limits", "max_part_bytes", K_UINT, "8388608", 65536, 256u << 20, OFF(max_part_bytes), false,
     "blob upload part cap"},
    {"limits", "request_timeout", K_UINT, "30", 1, 3600, OFF(request_timeout), false,
     "seconds a connection may be idle in a request or between keep-alive requests"},
    {"limits", "db_queue", K_UINT, "20000", 16, 1000000, OFF(db_queue), false,
     "database requests waiting at most (503 busy beyond)"},
    {"limits", "group_commit_max", K_UINT, "2048", 1, 100000, OFF(group_commit_max), false,
     "requests committed in one transaction at most"},

    {"checkin", "poll_interval", K_UINT, "300", 1, 31 * DAY, OFF(poll_interval), false,
     "seconds between a device's check-ins"},
    {"checkin", "poll_jitter", K_UINT, "20", 0, 90, OFF(poll_jitter), false,
     "uniform random jitter on poll_interval, in percent"},
    {"checkin", "bundle_cache_bytes", K_UINT, "67108864", 0, (uint64_t)4096 << 20,
     OFF(bundle_cache_bytes), false,
     "bytes of proof bundles kept per published state (0: build every one)"},
    {"checkin", "event_max_age", K_UINT, "7776000", 60, 3650 * (uint64_t)DAY, OFF(event_max_age),
     false, "seconds events are kept"},
    {"checkin", "event_max_per_device", K_UINT, "1000", 1, 1000000, OFF(event_max_per_device),
     false, "events kept per device at most (the oldest go first)"},

    {"database", "sync", K_STR, "full", 0, 0, 0, false,
     "full: a 200 survives a power cut; normal: the last commits may be lost (never corrupted)"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* One value per key, with where it came from. */
struct raw {
    char *val[NKEYS];
    char src[NKEYS][128];
    bool seen_in_file[NKEYS];
    int err;
    struct ota_detail det;
    const char *file;
};

static int find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static bool known_section(const char *section)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section) == 0)
            return true;
    }
    return false;
}

static int set_raw(struct raw *r, int k, const char *value, const char *src)
{
    char *v = strdup(value);

    if (v == NULL)
        return OTA_ERR_NOMEM;
    free(r->val[k]);
    r->val[k] = v;
    snprintf(r->src[k], sizeof(r->src[k]), "%s", src);
    return 0;
}

/* inih (Debian's build) gives no line number to the handler: messages
 * get it from ini_parse_string's return, the first failing line. */
static int ini_handler_fn(void *user, const char *section, const char *name, const char *value)
{
    struct raw *r = user;
    char src[96];
    int k;

    if (r->err != 0)
        return 0;
    if (section[0] == '\0') {
        r->err = OTA_ERR_FORMAT;
        ota_detail_set(&r->det, "key '%s' outside any section", name);
        return 0;
    }
    if (!known_section(section)) {
        r->err = OTA_ERR_FORMAT;
        ota_detail_set(&r->det, "unknown section [%s]", section);
        return 0;
    }
    k = find_key(section, name);
    if (k < 0) {
        r->err = OTA_ERR_FORMAT;
        ota_detail_set(&r->det, "unknown key '%s' in [%s] (otachain-server --help)", name, section);
        return 0;
    }
    if (r->seen_in_file[k]) {
        r->err = OTA_ERR_FORMAT;
        ota_detail_set(&r->det, "[%s] %s set twice", section, name);
        return 0;
    }
    r->seen_in_file[k] = true;
    snprintf(src, sizeof(src), "config %.80s", r->file);
    r->err = set_raw(r, k, value, src);
    return r->err == 0;
}

static int check_text(const uint8_t *data, size_t len, const char *file, struct ota_detail *det)
{
    size_t line = 1;
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\0') {
            ota_detail_set(det, "%s line %zu: NUL byte", file, line);
            return OTA_ERR_FORMAT;
        }
        if (data[i] == '\n') {
            line++;
            col = 0;
        } else if (++col > SRV_CONFIG_MAX_LINE) {
            ota_detail_set(det, "%s line %zu: longer than %d bytes", file, line,
                           SRV_CONFIG_MAX_LINE);
            return OTA_ERR_TOO_LARGE;
        }
    }
    return 0;
}

static int load_file(struct raw *r, const char *file, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int line;
    int rc = ota_fs_read(&data, &len, file, SRV_CONFIG_MAX_LEN);

    if (rc != 0) {
        ota_detail_set(det, "config %s: %s", file, ota_strerror(rc));
        return rc;
    }
    rc = check_text(data, len, file, det);
    if (rc != 0) {
        free(data);
        return rc;
    }
    /* inih's knobs (process-wide in Debian's build): values verbatim, no
     * inline comments or continuation lines, stop at the first error. */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = SRV_CONFIG_MAX_LINE + 3;
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = true;
    r->file = file;
    line = ini_parse_string((const char *)data, ini_handler_fn, r);
    free(data);
    if (r->err != 0) {
        ota_detail_set(det, "%s line %d: %s", file, line, r->det.msg);
        return r->err;
    }
    if (line != 0) {
        ota_detail_set(det, "%s line %d: not 'key = value', '[section]' or a comment", file, line);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

/* OTACHAIN_SERVER_<SECTION>_<KEY> for every key. */
static int load_env(struct raw *r)
{
    for (size_t k = 0; k < NKEYS; k++) {
        char var[96];
        size_t o = (size_t)snprintf(var, sizeof(var), "OTACHAIN_SERVER_%s_%s", keys[k].section,
                                    keys[k].name);
        const char *v;

        for (size_t i = 16; i < o && i < sizeof(var); i++)
            var[i] = (char)toupper((unsigned char)var[i]);
        v = getenv(var);
        if (v != NULL) {
            char src[128];
            snprintf(src, sizeof(src), "environment %s", var);
            if (set_raw(r, (int)k, v, src) != 0)
                return OTA_ERR_NOMEM;
        }
    }
    return 0;
}

static int load_sets(struct raw *r, const char *const *sets, size_t n, struct ota_detail *det)
{
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(sets[i], '.');
        const char *eq = strchr(sets[i], '=');
        char section[32];
        char name[64];
        char src[128];
        int k;

        if (dot == NULL || eq == NULL || dot > eq || (size_t)(dot - sets[i]) >= sizeof(section) ||
            (size_t)(eq - dot - 1) >= sizeof(name)) {
            ota_detail_set(det, "--set '%.80s': expected SECTION.KEY=VALUE", sets[i]);
            return OTA_ERR_INVALID_ARG;
        }
        memcpy(section, sets[i], (size_t)(dot - sets[i]));
        section[dot - sets[i]] = '\0';
        memcpy(name, dot + 1, (size_t)(eq - dot - 1));
        name[eq - dot - 1] = '\0';
        k = find_key(section, name);
        if (k < 0) {
            ota_detail_set(det, "--set: unknown key %s.%s (otachain-server --help)", section, name);
            return OTA_ERR_INVALID_ARG;
        }
        snprintf(src, sizeof(src), "--set %s.%s", section, name);
        if (set_raw(r, k, eq + 1, src) != 0)
            return OTA_ERR_NOMEM;
    }
    return 0;
}

static int parse_u64(uint64_t *out, const char *s)
{
    uint64_t v = 0;

    if (s[0] == '\0' || strlen(s) > 19)
        return OTA_ERR_FORMAT;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return OTA_ERR_FORMAT;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

/* "ADDR:PORT" or "[V6]:PORT", port 0-65535. */
static bool addr_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;

    if (colon == NULL || colon == s || parse_u64(&port, colon + 1) != 0 || port > 65535)
        return false;
    if (s[0] == '[')
        return colon[-1] == ']' && colon - s > 2;
    return memchr(s, ':', (size_t)(colon - s)) == NULL;
}

static int convert(struct srv_config *cfg, struct raw *r, struct ota_detail *det)
{
    for (size_t k = 0; k < NKEYS; k++) {
        const struct key *key = &keys[k];
        const char *v = r->val[k];
        char *base = (char *)cfg + key->off;

        if (strcmp(key->section, "database") == 0 && strcmp(key->name, "sync") == 0) {
            if (strcmp(v, "full") != 0 && strcmp(v, "normal") != 0)
                goto bad;
            cfg->sync_normal = strcmp(v, "normal") == 0;
            continue;
        }
        switch (key->type) {
        case K_BOOL:
            if (strcmp(v, "true") == 0)
                *(bool *)base = true;
            else if (strcmp(v, "false") == 0)
                *(bool *)base = false;
            else
                goto bad;
            break;
        case K_UINT: {
            uint64_t u;
            if (parse_u64(&u, v) != 0 || u < key->min || u > key->max)
                goto bad;
            *(uint64_t *)base = u;
            break;
        }
        case K_ADDR:
            if (!addr_ok(v))
                goto bad;
            /* fall through: stored as a string */
            __attribute__((fallthrough));
        case K_STR:
        case K_PATH:
            if (key->required && v[0] == '\0')
                goto bad;
            if (strlen(v) > 4096)
                goto bad;
            *(char **)base = v[0] != '\0' ? strdup(v) : NULL;
            if (v[0] != '\0' && *(char **)base == NULL)
                return OTA_ERR_NOMEM;
            break;
        }
        continue;
    bad:
        if (v[0] == '\0' && key->required)
            ota_detail_set(det, "[%s] %s is required", key->section, key->name);
        else
            ota_detail_set(det, "%s: [%s] %s = '%.64s': %s", r->src[k], key->section, key->name, v,
                           key->type == K_UINT ? "out of range or not a number" : key->help);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

/* Rules between keys. */
static int check(struct srv_config *cfg, struct ota_detail *det)
{
    static const char *const lname[] = {"device", "admin", "public"};
    bool any = false;

    for (int i = 0; i < SRV_NLISTENERS; i++) {
        struct srv_listener_config *l = &cfg->l[i];

        if (!l->enabled)
            continue;
        any = true;
        if (!l->plain_http && (l->tls_cert == NULL || l->tls_key == NULL)) {
            ota_detail_set(det,
                           "[%s] needs tls_cert and tls_key (or plain_http = true, for tests or "
                           "behind a TLS-terminating proxy)",
                           lname[i]);
            return OTA_ERR_FORMAT;
        }
        if (l->plain_http && (l->tls_cert != NULL || l->tls_key != NULL)) {
            ota_detail_set(det, "[%s] plain_http = true and tls_cert/tls_key exclude each other",
                           lname[i]);
            return OTA_ERR_FORMAT;
        }
    }
    if (!any) {
        ota_detail_set(det, "every listener is disabled");
        return OTA_ERR_FORMAT;
    }
    if (cfg->l[SRV_DEVICE].enabled && !cfg->l[SRV_DEVICE].plain_http &&
        cfg->l[SRV_DEVICE].client_ca == NULL) {
        ota_detail_set(det, "[device] needs client_ca: the device CA that issued the devices' "
                            "certificates");
        return OTA_ERR_FORMAT;
    }
    if (cfg->l[SRV_DEVICE].plain_http && cfg->trusted_proxies == NULL &&
        cfg->l[SRV_DEVICE].enabled) {
        ota_detail_set(det, "[device] plain_http = true needs trusted_proxies: the device id "
                            "then comes from a proxy's header, and from nowhere else");
        return OTA_ERR_FORMAT;
    }
    if (cfg->l[SRV_PUBLIC].client_ca != NULL) {
        ota_detail_set(det, "[public] takes no client_ca: the repository is public");
        return OTA_ERR_FORMAT;
    }
    if ((cfg->renew_ca_cert == NULL) != (cfg->renew_ca_key == NULL)) {
        ota_detail_set(det, "[device] renew_ca_cert and renew_ca_key go together");
        return OTA_ERR_FORMAT;
    }
    if (cfg->database == NULL) {
        size_t n = strlen(cfg->repository) + sizeof("/fleet.db");
        cfg->database = malloc(n);
        if (cfg->database == NULL)
            return OTA_ERR_NOMEM;
        snprintf(cfg->database, n, "%s/fleet.db", cfg->repository);
    }
    return 0;
}

int srv_config_load(struct srv_config *cfg, const char *file, const char *const *sets, size_t nsets,
                    struct ota_detail *det)
{
    struct raw *r = calloc(1, sizeof(*r));
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (r == NULL)
        return OTA_ERR_NOMEM;
    for (size_t k = 0; rc == 0 && k < NKEYS; k++)
        rc = set_raw(r, (int)k, keys[k].dflt ? keys[k].dflt : "", "default");
    if (rc == 0 && file != NULL)
        rc = load_file(r, file, det);
    if (rc == 0)
        rc = load_env(r);
    if (rc == 0)
        rc = load_sets(r, sets, nsets, det);
    if (rc == 0)
        rc = convert(cfg, r, det);
    if (rc == 0)
        rc = check(cfg, det);
    for (size_t k = 0; k < NKEYS; k++)
        free(r->val[k]);
    free(r);
    if (rc != 0)
        srv_config_free(cfg);
    return rc;
}

void srv_config_free(struct srv_config *cfg)
{
    for (size_t k = 0; k < NKEYS; k++) {
        const struct key *key = &keys[k];
        if (key->type == K_STR || key->type == K_PATH || key->type == K_ADDR) {
            if (strcmp(key->section, "database") == 0)
                continue;
            char **p = (char **)((char *)cfg + key->off);
            free(*p);
            *p = NULL;
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

void srv_config_print_keys(FILE *f)
{
    const char *section = "";

    for (size_t k = 0; k < NKEYS; k++) {
        const struct key *key = &keys[k];
        if (strcmp(section, key->section) != 0) {
            section = key->section;
            fprintf(f, "\n[%s]\n", section);
        }
        fprintf(f, "  %-20s %s", key->name, key->help);
        if (key->required)
            fputs(" (required)", f);
        else if (key->dflt != NULL && key->dflt[0] != '\0')
            fprintf(f, " (default %s)", key->dflt);
        fputc('\n', f);
    }
}
