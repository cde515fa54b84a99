/* The witness's HTTP(S) front: one libevent evhttp server on one thread.
 *
 *   POST /add-checkpoint   C2SP tlog-witness v1 (witness.h decides)
 *   anything else          404 (unknown path) or 405 (add-checkpoint
 *                          with another method)
 *
 * Request bodies above OTA_TLOG_WITNESS_MAX_BODY are refused by evhttp
 * (413) before the handler runs; headers are capped at 16 KiB; a
 * connection idle for request_timeout seconds is closed. With tls_cert
 * and tls_key the listener speaks TLS 1.3 only (bufferevent_openssl).
 * One log line per request on stderr. SIGTERM and SIGINT stop the loop
 * between requests (the state is always durable, witness.h W1).
 */
#ifndef OTACHAIN_WITNESS_SERVER_H
#define OTACHAIN_WITNESS_SERVER_H

#include "config.h"
#include "otachain/err.h"
#include "witness.h"

struct wit_server;

/* Binds the listener (cfg->listen, cfg->port; port 0 picks a free one)
 * and sets up TLS. The witness context stays owned by the caller and
 * must outlive the server. */
OTA_WUR int wit_server_new(struct wit_server **out, const struct wit_config *cfg, struct wit_ctx *w,
                           struct ota_detail *det);

/* The port actually bound. */
unsigned wit_server_port(const struct wit_server *s);

/* Serves until SIGTERM or SIGINT; returns 0, or OTA_ERR_IO if the event
 * loop failed. */
OTA_WUR int wit_server_run(struct wit_server *s);

/* Closes the listener and frees; accepts NULL. */
void wit_server_free(struct wit_server *s);

#endif
