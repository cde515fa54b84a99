/* The event-loop driver of the library's witness round
 * (otachain/witness_round.h) for the server's publish: every witness's
 * add-checkpoint request sent at once with evhttp client connections on
 * the server's event loop, each reply (or failure) fed back to the round
 * on the loop, a 409 retried once as the round says. The loop never
 * blocks on a witness, and no database transaction is open meanwhile
 * (publish.h: the entries were committed by ota_publish_begin).
 *
 * What a failure means is the round's rule: no answer after the request
 * was handed to the connection (a timeout, a reset, a refused connection
 * -- evhttp does not tell them apart) is "sent" (HELD: the witness may
 * hold the tree); a URL this driver cannot reach (not http://) is UNSENT.
 * https:// witness URLs are not driven by the server yet (UNSENT, with
 * that reason; the CLI's libcurl driver reaches them). Host names are
 * resolved with dns (asynchronously; NULL: blocking).
 */
#ifndef OTACHAIN_SERVER_WITNESS_DRIVER_H
#define OTACHAIN_SERVER_WITNESS_DRIVER_H

#include <event2/dns.h>
#include <event2/event.h>

#include "otachain/err.h"
#include "otachain/witness_round.h"

struct srv_wdrv;

/* Starts sending every request r wants (r was started). done(ctx) runs on
 * the loop once every witness is answered or failed (also when nothing
 * was to be sent: then from a zero-timeout event, never from inside this
 * call); the driver frees itself after done returns. timeout_s: per
 * request. OTA_ERR_NOMEM only (then done never runs). */
OTA_WUR int srv_wdrv_start(struct event_base *base, struct evdns_base *dns,
                           struct ota_witness_round *r, unsigned timeout_s, void (*done)(void *ctx),
                           void *ctx);

#endif
