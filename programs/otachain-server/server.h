/* The event loop of otachain-server: three listeners (device, admin,
 * public: docs/api/README.md), TLS 1.3 or explicit plain HTTP,
 * connection caps, who is calling, replies, signals and the drain
 * (docs/server.md).
 *
 * Threads: everything here runs on the event loop, except the database
 * thread's run() functions (db.h). Replies are sent only from the loop.
 *
 * A request's life:
 *
 *   accepted ─► (TLS handshake: device CA, device role; admin CA, admin
 *   role) ─► on_request: srv_req made, identity read from the TLS session
 *   (also on a resumed session: the certificate stored in it) or a
 *   trusted proxy's header, or the token noted ─► route handler, which
 *   answers at once or submits a job whose run() checks revocations and
 *   tokens in the database first ─► srv_reply*: one log line, metrics,
 *   the srv_req freed.
 *
 * Invariants:
 *  1. Every srv_req is answered exactly once (srv_reply* frees it).
 *  2. A device request is served only after the database said neither
 *     its certificate serial nor its device id is revoked, in the same
 *     transaction as whatever it changes; an admin request with a token
 *     only after the token was found unrevoked with the scope.
 *  3. At most max_connections connections per listener are open:
 *     accepting pauses at the cap and resumes when one closes (counted
 *     when the connection's bufferevent is freed).
 *  4. After SIGTERM nothing new is accepted, new requests on open
 *     connections get 503 busy, and the loop ends when the last request
 *     in flight is answered and every answer has left for the kernel
 *     (a download still being sent is finished), or shutdown_timeout
 *     passed.
 */
#ifndef OTACHAIN_SERVER_SERVER_H
#define OTACHAIN_SERVER_SERVER_H

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "otachain/ca.h"
#include "otachain/cert.h"
#include "otachain/clock.h"
#include "otachain/fleet_store.h"
#include "repository.h"

struct srv;
struct srv_conn;

struct srv_listener {
    struct srv *srv;
    enum srv_listener_kind kind;
    const char *name;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ssl; /* NULL: plain HTTP */
    unsigned port;
    uint64_t conns;
    struct srv_conn *live; /* open connections */
    bool paused;
    struct ev_token_bucket_cfg *rate;
};

struct srv_proxy {
    int family;
    uint8_t addr[16];
};

struct srv {
    const struct srv_config *cfg;
    const struct ota_clock *clock;
    const struct ota_fs_hook *fs_hook; /* the test hooks' (NULL in a release build) */
    struct srv_log *log;
    struct srv_metrics metrics;
    struct event_base *base;
    struct srv_listener l[SRV_NLISTENERS];
    struct srv_db *db;
    struct srv_db *io;      /* the file thread (blob uploads) */
    struct evdns_base *dns; /* for witness host names (made at first use) */
    char *blob_dir;         /* <repository>/blobs */
    struct srv_repo repo;
    struct ota_ca *renew_ca;
    /* The log store (NULL without a ledger): the database thread only
     * reads it, for the devices' checkpoints, with a one-entry cache. */
    struct ota_log_store *ledger;
    uint64_t root_cache_size;
    uint8_t root_cache[32];
    bool root_cache_valid;
    struct srv_proxy proxies[SRV_MAX_PROXIES];
    size_t nproxies;
    struct event *sigterm, *sigint, *sighup, *tick, *drain_timer, *drain_poll;
    int ssl_ex_index;
    bool draining;
    uint64_t inflight;
    int64_t started;
    int64_t next_repo_check, next_expire, next_count;
    bool reload_pending;
};

/* One request being answered. */
struct srv_req {
    struct srv *srv;
    struct srv_listener *l;
    struct evhttp_request *req;
    enum evhttp_cmd_type method;
    const char *method_name;
    char path[1024];
    char *query; /* NULL when none (owned) */
    struct timespec t0;
    char peer[64]; /* "ADDR:PORT", kept: the request may be gone when logged */
    /* device listener: the caller */
    char device[OTA_CERT_ID_MAX + 1];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    int64_t not_after;
    /* admin listener: the caller */
    char actor[OTA_FLEET_ACTOR_MAX + 1];
    bool admin_cert;
    bool has_token;
    char token_id[OTA_FLEET_TOKEN_ID + 1];
    uint8_t token_hash[32];
    /* for the log line and metrics */
    enum srv_bytes_kind bytes_kind;
    int err;
};

/* Builds the listeners, TLS contexts, signals and timers on base. */
OTA_WUR int srv_start(struct srv *s, struct ota_detail *det);

/* Runs the loop until the drain ends. */
OTA_WUR int srv_run(struct srv *s);

/* Frees the listeners and events (not the database, repository or log). */
void srv_stop(struct srv *s);

/* ---- answering (each frees r) ---- */

/* Sends status with body (NULL: none; taken). Adds Cache-Control:
 * no-store unless the handler set a Cache-Control header. */
void srv_reply(struct srv_req *r, int status, const char *content_type, struct evbuffer *body);

/* Sends len bytes. */
void srv_reply_data(struct srv_req *r, int status, const char *content_type, const void *data,
                    size_t len);

/* Sends doc as JSON (a new reference is not taken: doc is decref'd). */
void srv_reply_json(struct srv_req *r, int status, json_t *doc);

/* Sends {"error": name(err), "message": "<sentence>: <detail>"}. */
void srv_reply_error(struct srv_req *r, int status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The HTTP status for an error code, for replies from library errors. */
int srv_status_of(int err);

/* The request body (pulled up into one block) and its length; NULL when
 * empty. */
const uint8_t *srv_body(struct srv_req *r, size_t *len);

/* Query parameter name ("" when absent) into out; false when it is too
 * long or malformed. */
bool srv_query(const struct srv_req *r, const char *name, char *out, size_t cap);

/* Time now on the server's clock. */
int64_t srv_now(const struct srv *s);

/* ---- the route handlers (api_device.c, api_admin.c, files.c) ---- */

void srv_device_route(struct srv_req *r);
void srv_admin_route(struct srv_req *r);
void srv_public_route(struct srv_req *r);

/* Serves a file of the public layout (path below public/, starting with
 * one of metadata/, targets/, chunks/, deltas/, ledger/), answering 404
 * for anything else. */
void srv_files_serve(struct srv_req *r, const char *path);

/* Serves the file at fs_path (an absolute path the caller chose) with
 * Range, ETag and the given cache policy; etag NULL: derived from the
 * file's inode, size and modification time. */
void srv_files_send(struct srv_req *r, const char *fs_path, bool immutable, const char *etag,
                    const char *content_type);

/* The JSON of a device as the APIs show it (api_admin.c); NULL on
 * allocation failure. */
json_t *srv_device_json(const struct ota_fleet_device *d, const char *const *failed, size_t nfailed,
                        const struct ota_fleet_revocation *rev, const struct ota_fleet_flag *flag);

/* An audit entry of its own (api_admin.c), from code that ran outside
 * the database thread. */
void srv_audit(struct srv *s, const char *actor, const char *action, const char *object,
               const char *outcome, const char *detail);

/* Periodic maintenance (api_admin.c): expire events, count devices. */
void srv_maintenance(struct srv *s, bool expire, bool count);

#endif
