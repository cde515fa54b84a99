/* The add-checkpoint decision (C2SP tlog-witness v1), apart from HTTP.
 *
 * Per witnessed log, the witness is in one of these states:
 *
 *              cosign (size N, root R)
 *     EMPTY ───────────────────────────► AT(N, R) ──┐ cosign (N', R'),
 *       │                                  │  ▲     │ N' >= N, consistent
 *       │ state write failed               │  └─────┘ (same (N, R): re-cosign,
 *       ▼                                  │            fresh time, no write)
 *     BROKEN ◄─────────────────────────────┘ state write failed
 *       (every request for the log: 500, until a restart reloads the file)
 *
 * Invariants:
 *  W1 a cosignature leaves the process only after the state it implies is
 *     durable on disk (state.h S2): after a crash at any point the file
 *     holds the last checkpoint answered with 200, or a later one that was
 *     never answered;
 *  W2 every checkpoint cosigned for an origin is consistent with every
 *     other one cosigned for it (sizes only grow, each step checked by a
 *     consistency proof or, at the same size, by equal roots), across
 *     restarts because of W1;
 *  W3 requests are handled one at a time (one thread, no suspension
 *     between the check of the old size and the write), so the race the
 *     spec describes (two requests both checked against size N) cannot
 *     happen;
 *  W4 after a failed write the disk may hold the old or the new state:
 *     the log is BROKEN and answers nothing until a restart, so nothing is
 *     cosigned against a state that might not be the durable one.
 */
#ifndef OTACHAIN_WITNESS_WITNESS_H
#define OTACHAIN_WITNESS_WITNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "otachain/buf.h"
#include "otachain/clock.h"
#include "otachain/fsutil.h"
#include "otachain/note_sign.h"
#include "remote.h"
#include "state.h"

/* The largest response body: one cosignature line, or a reason. */
#define WIT_RESPONSE_MAX 8192

struct wit_logstate {
    struct wit_state st; /* as on disk */
    char *path;          /* its state file (owned) */
    bool broken;         /* W4 */
};

struct wit_ctx {
    const struct wit_config *cfg;
    const struct ota_note_signer *signer; /* type 0x04, named cfg->name */
    struct wit_logstate *logs;            /* one per cfg->logs entry */
    struct wit_remote *remote;            /* for validating logs; may be NULL otherwise */
    const struct ota_fs_hook *hook;       /* fault injection; may be NULL */
    const struct ota_clock *clock;        /* cosignature times; NULL: the system clock */
};

struct wit_response {
    int status;               /* HTTP status */
    const char *content_type; /* static string */
    struct ota_buf body;      /* cap WIT_RESPONSE_MAX; caller frees */
    /* For the request's log line. */
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1]; /* empty if the body did not parse */
    bool have_sizes;
    uint64_t old_size;
    uint64_t new_size;
    char reason[OTA_DETAIL_LEN]; /* empty on success */
};

/* Loads the state of every configured log (state.h); OTA_ERR_* with det
 * naming the file. On failure nothing stays allocated. */
OTA_WUR int wit_ctx_load(struct wit_ctx *w, struct ota_detail *det);
void wit_ctx_free(struct wit_ctx *w);

/* Answers one add-checkpoint request body at time now (POSIX seconds).
 * Always fills *res (initialise res->body with ota_buf_init first). */
void wit_add_checkpoint(struct wit_ctx *w, struct wit_response *res, const uint8_t *body,
                        size_t len, uint64_t now);

#endif
