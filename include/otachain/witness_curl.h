/* The blocking libcurl driver of the witness round (witness_round.h): all
 * witnesses asked in parallel on one libcurl multi handle, in the calling
 * thread, until each answered, failed or ran out of time. For the CLI; an
 * event-loop program drives the round itself. Never call it inside a
 * store transaction: the network stays outside every transaction.
 */
#ifndef OTACHAIN_WITNESS_CURL_H
#define OTACHAIN_WITNESS_CURL_H

#include "otachain/err.h"
#include "otachain/witness_round.h"

/* Per-witness deadline of the CLI: 10 s for a request (connect 5 s). */
#define OTA_WITNESS_CURL_TIMEOUT_MS 10000L

struct ota_witness_curl_opts {
    long timeout_ms;         /* whole request per witness; 0: the default */
    long connect_timeout_ms; /* 0: half the timeout */
    const char *ca_file;     /* CAs for https witnesses; NULL: the system's */
};

/* Sends every request of a started round (ota_witness_round_start) and
 * feeds the replies back, retrying a 409 once as the round says. Every
 * witness is COSIGNED, HELD, REFUSED or UNSENT afterwards. OTA_ERR_NOMEM /
 * OTA_ERR_NETWORK when libcurl itself cannot run the transfers (the
 * witnesses not answered yet are then HELD: requests may have left). */
OTA_WUR int ota_witness_curl_run(struct ota_witness_round *r,
                                 const struct ota_witness_curl_opts *opts, struct ota_detail *det);

#endif
