/* The witness round of a publish or refresh, as a pure core: it builds the
 * C2SP tlog-witness add-checkpoint requests, takes each witness's reply (or
 * what the transport knows of its failure) and judges the quorum of every
 * policy. It does no I/O and reads no clock, so any driver may own the
 * sockets: the blocking libcurl driver of the CLI (witness_curl.h), the
 * coming server's event loop, a test's scripted transport.
 *
 *   new ─► for each witness w: request(w) ─► driver sends ─► reply(w) |
 *          failed(w, sent?)  (a 409 with a size below the tree: reply()
 *          says retry, request(w) then has the new body, once)
 *        ─► judge ─► cosigned note (note + the cosignature lines)
 *
 * What a witness outcome means for the tree (the trap: a witness answers
 * only after it persisted, so no answer means "maybe cosigned"):
 *
 *   COSIGNED   200 with a cosignature that verifies under the policy key
 *   HELD       the witness may hold the tree: 200 whose body does not
 *              verify, a reply lost or a timeout after the request was
 *              sent, an HTTP error other than 403/409/422
 *   REFUSED    a definite refusal: 403, 409 (it holds another size), 422
 *   UNSENT     the request never reached it (no URL, connection refused,
 *              name not resolved)
 *
 * A tree may be dropped only when no witness is COSIGNED or HELD
 * (ota_witness_verdict.droppable); a timeout is never a refusal.
 */
#ifndef OTACHAIN_WITNESS_ROUND_H
#define OTACHAIN_WITNESS_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tlog_policy.h"

/* Most policies one round answers to (the root in force and a new one). */
#define OTA_WITNESS_ROUND_MAX_POLICIES 2
#define OTA_WITNESS_ROUND_MAX          (OTA_TLOG_POLICY_MAX_WITNESSES * OTA_WITNESS_ROUND_MAX_POLICIES)
/* Largest reply taken from a witness: one cosignature line (or a 409 size,
 * or an error text); more is cut (and, for a 200, does not verify). */
#define OTA_WITNESS_REPLY_MAX (64u * 1024)
#define OTA_WITNESS_WHY_MAX   200

enum ota_witness_outcome {
    OTA_WITNESS_PENDING = 0, /* not answered yet */
    OTA_WITNESS_COSIGNED,
    OTA_WITNESS_HELD,
    OTA_WITNESS_REFUSED,
    OTA_WITNESS_UNSENT,
};

/* One witness of the union of the policies (same name and key = one). */
struct ota_witness_slot {
    const struct ota_tlog_policy_witness *pw; /* in the first policy naming it */
    const char *url;                          /* its base URL, NULL when the policy has none */
    uint64_t old_size;                        /* the size its request proves from */
    int attempt;                              /* 0, 1 after a 409 retry */
    enum ota_witness_outcome outcome;
    long status;                        /* HTTP status of the last reply, 0 if none */
    char line[OTA_NOTE_MAX_NAME + 160]; /* the cosignature line (COSIGNED) */
    char why[OTA_WITNESS_WHY_MAX];      /* for messages, when not COSIGNED */
    struct ota_buf req;                 /* the current request body */
};

struct ota_witness_round {
    const struct ota_buf *note; /* the checkpoint, signed by the log only */
    uint64_t size;              /* its tree size */
    const struct ota_tlog_policy *pols[OTA_WITNESS_ROUND_MAX_POLICIES];
    size_t npols;
    const struct ota_merkle_source *src; /* the log's tree, for proofs */
    size_t n;
    struct ota_witness_slot w[OTA_WITNESS_ROUND_MAX];
};

/* What the round came to. */
struct ota_witness_verdict {
    bool met;         /* every policy's quorum is met by COSIGNED witnesses */
    bool droppable;   /* no witness is COSIGNED or HELD: the tree may go */
    size_t ncosigned; /* COSIGNED witnesses */
    size_t nheld;     /* HELD witnesses */
};

/* Sets up r (caller-owned, may be large: allocate it) for note, the
 * checkpoint of the tree of `size` leaves signed by the log key, under
 * pols[0..npols) (NULL entries skipped). Every witness starts at old size
 * 0; set ota_witness_round_known() before requests are built. note and src
 * must outlive r. OTA_ERR_TOO_LARGE beyond OTA_WITNESS_ROUND_MAX
 * witnesses. */
OTA_WUR int ota_witness_round_init(struct ota_witness_round *r, const struct ota_buf *note,
                                   uint64_t size, const struct ota_tlog_policy *const *pols,
                                   size_t npols, const struct ota_merkle_source *src);

/* Frees the request bodies; accepts a zeroed round. */
void ota_witness_round_free(struct ota_witness_round *r);

/* The size witness i last cosigned, as the log recorded it (its request
 * then proves from there; a witness at another size answers 409). */
void ota_witness_round_known(struct ota_witness_round *r, size_t i, uint64_t old_size);

/* Builds every request. A witness without a URL is UNSENT; a request that
 * cannot be built (a proof that cannot be made) makes it UNSENT too, with
 * the reason. OTA_ERR_NOMEM only. */
OTA_WUR int ota_witness_round_start(struct ota_witness_round *r, struct ota_detail *det);

/* Whether witness i waits for its request to be sent (PENDING), and then
 * its URL ("<base>/add-checkpoint" is the driver's to form) and body. */
bool ota_witness_round_wants(const struct ota_witness_round *r, size_t i);

/* Takes witness i's HTTP reply (status and body as received, at most
 * OTA_WITNESS_REPLY_MAX bytes). *retry: a 409 named a size the log can
 * prove from, and a new request waits (send it again). */
void ota_witness_round_reply(struct ota_witness_round *r, size_t i, long status, const void *body,
                             size_t len, bool *retry);

/* Witness i's transport failed: sent says whether any of the request may
 * have reached it (a timeout or a lost reply after sending: HELD) or not
 * (connection refused, name not found: UNSENT). why: for messages. */
void ota_witness_round_failed(struct ota_witness_round *r, size_t i, bool sent, const char *why);

/* Judges the round (witnesses still PENDING count as HELD). */
void ota_witness_round_judge(const struct ota_witness_round *r, struct ota_witness_verdict *v);

/* Appends the cosignature lines of the COSIGNED witnesses to out (which
 * holds the note), in round order. */
OTA_WUR int ota_witness_round_cosign(const struct ota_witness_round *r, struct ota_buf *out);

/* "w2 (HTTP 422: ...); w3 (timeout)" for the witnesses not COSIGNED,
 * into out (n bytes, NUL-terminated, cut when too long). */
void ota_witness_round_missing(const struct ota_witness_round *r, char *out, size_t n);

/* "cosigned", "held", "refused", "unsent", "pending". */
const char *ota_witness_outcome_name(enum ota_witness_outcome o);

#endif
