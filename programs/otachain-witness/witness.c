/* The add-checkpoint decision; states and invariants in witness.h.
 *
 * Checks, in the order tlog-witness gives them (the first that fails
 * answers):
 *   body, note or checkpoint malformed                         400
 *   origin not configured                                      404
 *   no signature by a configured log key verifies              403
 *   old size > checkpoint size                                 400
 *   old size != stored size                                    409 + size
 *   proof does not verify (also: a proof for old size 0 or
 *   for equal sizes that is not empty)                         422
 *   same size, different root                                  409
 *   validating log: the new entries break a rule               422
 *   validating log: entries or metadata not retrievable        503
 *   state write failed, log BROKEN                             500
 *   otherwise: persist, then the cosignature                   200
 */
#include "witness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tlog_witness.h"
#include "validate.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

int wit_ctx_load(struct wit_ctx *w, struct ota_detail *det)
{
    const struct wit_config *cfg = w->cfg;
    int rc;

    w->logs = calloc(cfg->nlogs ? cfg->nlogs : 1, sizeof(*w->logs));
    if (w->logs == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < cfg->nlogs; i++) {
        const struct wit_log *log = &cfg->logs[i];
        struct wit_logstate *ls = &w->logs[i];

        rc = wit_state_path(&ls->path, cfg->state_dir, log->origin, log->origin_len);
        if (rc == 0)
            rc = wit_state_load(&ls->st, ls->path, log->origin, log->origin_len, log->validating,
                                det);
        if (rc != 0) {
            ota_detail_prefix(det, log->section);
            wit_ctx_free(w);
            return rc;
        }
    }
    return 0;
}

void wit_ctx_free(struct wit_ctx *w)
{
    if (w->logs != NULL) {
        for (size_t i = 0; i < w->cfg->nlogs; i++) {
            wit_state_free(&w->logs[i].st);
            free(w->logs[i].path);
        }
    }
    free(w->logs);
    w->logs = NULL;
}

/* Empties b, keeping the NUL after the contents. */
static void body_reset(struct ota_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* An error answer: status, a reason line as the body. */
static void answer(struct wit_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer(struct wit_response *res, int status, const char *fmt, ...)
{
    va_list ap;

    res->status = status;
    res->content_type = TEXT_PLAIN;
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
    va_end(ap);
    body_reset(&res->body);
    if (ota_buf_append_str(&res->body, res->reason) != 0 ||
        ota_buf_append(&res->body, "\n", 1) != 0)
        body_reset(&res->body);
}

/* The 409 of a wrong old size: the stored size, in the spec's format. */
static void answer_size(struct wit_response *res, uint64_t stored)
{
    char text[OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1];
    size_t n = ota_tlog_witness_size_format(text, stored);

    res->status = 409;
    res->content_type = OTA_TLOG_WITNESS_SIZE_TYPE;
    snprintf(res->reason, sizeof(res->reason), "old size %llu is not the stored size %llu",
             (unsigned long long)res->old_size, (unsigned long long)stored);
    body_reset(&res->body);
    if (ota_buf_append(&res->body, text, n) != 0)
        body_reset(&res->body);
}

/* Signature check of the note against the log's keys: 0, or the status
 * to answer (403 or 500). */
static int check_signature(const struct ota_note *note, const struct wit_log *log,
                           struct ota_detail *det)
{
    struct ota_note_check checks[WIT_MAX_LOG_KEYS];
    size_t nverified = 0;
    int rc = ota_note_verify(checks, &nverified, note, log->keys, log->nkeys, det);

    if (rc == 0)
        return 0;
    return rc == OTA_ERR_NOMEM || rc == OTA_ERR_CRYPTO || rc == OTA_ERR_INVALID_ARG ? 500 : 403;
}

/* Persists next as the log's state (W1, W4). */
static int persist(struct wit_ctx *w, struct wit_logstate *ls, const struct wit_log *log,
                   struct wit_state *next, struct ota_detail *det)
{
    int rc = wit_state_store(next, ls->path, log->origin, log->origin_len, w->hook, det);

    if (rc != 0) {
        ls->broken = true;
        return rc;
    }
    wit_state_free(&ls->st);
    ls->st = *next;
    memset(next, 0, sizeof(*next));
    return 0;
}

static void cosign(struct wit_ctx *w, struct wit_response *res, const struct ota_note *note,
                   uint64_t now)
{
    struct ota_detail det = {{0}};
    int rc = ota_note_cosign(&res->body, note->text, note->text_len, now, w->signer, &det);

    if (rc != 0) {
        /* W1 holds: the state is written but no cosignature left. */
        answer(res, 500, "cosigning failed: %s: %s", ota_strerror(rc), det.msg);
        return;
    }
    res->status = 200;
    res->content_type = TEXT_PLAIN;
}

/* The checks after the signature: sizes, proof, validation, persist. */
static void step(struct wit_ctx *w, struct wit_response *res, const struct wit_log *log,
                 struct wit_logstate *ls, const struct ota_tlog_witness_body *body,
                 const struct ota_note *note, const struct ota_checkpoint *cp, uint64_t now)
{
    const struct wit_state *st = &ls->st;
    uint64_t stored = st->present ? st->cp.size : 0;
    struct ota_detail det = {{0}};
    struct wit_state next;
    int rc;

    if (body->old_size > cp->size) {
        answer(res, 400, "old size %llu is above the checkpoint size %llu",
               (unsigned long long)body->old_size, (unsigned long long)cp->size);
        return;
    }
    if (ls->broken) {
        answer(res, 500, "an earlier state write failed: restart the witness");
        return;
    }
    if (body->old_size != stored) {
        answer_size(res, stored);
        return;
    }
    if (body->old_size == 0 || body->old_size == cp->size) {
        if (body->nproof != 0) {
            answer(res, 422, "the consistency proof must be empty for old size %llu",
                   (unsigned long long)body->old_size);
            return;
        }
    }
    if (body->old_size == cp->size) {
        uint8_t empty[OTA_MERKLE_HASH_LEN];
        const uint8_t *want = st->present ? st->cp.root : empty;

        if (!st->present && ota_merkle_empty_root(empty) != 0) {
            answer(res, 500, "hashing failed");
            return;
        }
        if (!ota_ct_equal(want, cp->root, OTA_MERKLE_HASH_LEN)) {
            if (st->present)
                answer(res, 409, "checkpoint of size %llu has another root than the one cosigned",
                       (unsigned long long)cp->size);
            else
                answer(res, 422, "a checkpoint of size 0 must carry the empty tree's root");
            return;
        }
    } else if (body->old_size > 0) {
        rc = ota_merkle_verify_consistency(body->old_size, cp->size, st->cp.root, cp->root,
                                           (const uint8_t(*)[OTA_MERKLE_HASH_LEN])body->proof,
                                           body->nproof, &det);
        if (rc != 0) {
            answer(res, 422, "consistency proof from %llu to %llu does not verify: %s%s%s",
                   (unsigned long long)body->old_size, (unsigned long long)cp->size,
                   ota_strerror(rc), det.msg[0] ? ": " : "", det.msg);
            return;
        }
    }

    /* Same checkpoint text as stored: re-cosign with a fresh time, nothing
     * to write (freshness, docs/formats/ledger.md). */
    if (st->present && st->checkpoint_len == note->text_len &&
        memcmp(st->checkpoint, note->text, note->text_len) == 0) {
        cosign(w, res, note, now);
        return;
    }

    memset(&next, 0, sizeof(next));
    next.present = true;
    next.cp = *cp;
    next.cosigned_at = now;
    next.checkpoint = malloc(note->text_len + 1);
    if (next.checkpoint == NULL) {
        answer(res, 500, "out of memory");
        return;
    }
    memcpy(next.checkpoint, note->text, note->text_len);
    next.checkpoint[note->text_len] = '\0';
    next.checkpoint_len = note->text_len;
    if (log->validating) {
        enum wit_verdict verdict;

        if (cp->size == stored) {
            rc = wit_vstate_copy(&next.v, &st->v);
            verdict = rc == 0 ? WIT_VALID : WIT_INTERNAL;
        } else {
            rc = wit_validate(&next.v, &verdict, &st->v, cp, log, w->remote, &det);
        }
        if (rc != 0) {
            static const int status[] = {200, 422, 503, 500};
            answer(res, status[verdict], "validation: %s%s%s", ota_strerror(rc),
                   det.msg[0] ? ": " : "", det.msg);
            wit_state_free(&next);
            return;
        }
        next.has_validation = true;
    }
    rc = persist(w, ls, log, &next, &det);
    wit_state_free(&next);
    if (rc != 0) {
        answer(res, 500, "storing the state failed (%s); the log is refused until a restart",
               det.msg);
        return;
    }
    cosign(w, res, note, now);
}

void wit_add_checkpoint(struct wit_ctx *w, struct wit_response *res, const uint8_t *data,
                        size_t len, uint64_t now)
{
    struct ota_tlog_witness_body *body = NULL;
    struct ota_note *note = NULL;
    struct ota_checkpoint cp;
    struct ota_detail det = {{0}};
    const struct wit_log *log;
    int rc;
    int status;

    res->status = 500;
    res->content_type = TEXT_PLAIN;
    res->origin[0] = '\0';
    res->reason[0] = '\0';
    res->have_sizes = false;

    /* ~2 KiB of proof hashes: on the heap, not the event loop's stack. */
    body = malloc(sizeof(*body));
    if (body == NULL) {
        answer(res, 500, "out of memory");
        return;
    }
    rc = ota_tlog_witness_body_parse(body, data, len, &det);
    if (rc != 0) {
        answer(res, 400, "malformed request body: %s", det.msg);
        goto out;
    }
    rc = ota_note_parse(&note, body->note, body->note_len, &det);
    if (rc != 0) {
        answer(res, 400, "malformed checkpoint note: %s", det.msg);
        goto out;
    }
    rc = ota_checkpoint_parse(&cp, note->text, note->text_len, &det);
    if (rc != 0) {
        answer(res, 400, "malformed checkpoint: %s", det.msg);
        goto out;
    }
    memcpy(res->origin, cp.origin, cp.origin_len + 1);
    res->have_sizes = true;
    res->old_size = body->old_size;
    res->new_size = cp.size;

    log = wit_config_find(w->cfg, cp.origin, cp.origin_len);
    if (log == NULL) {
        answer(res, 404, "unknown log origin");
        goto out;
    }
    status = check_signature(note, log, &det);
    if (status != 0) {
        answer(res, status, "checkpoint not signed by a key of the log: %s", det.msg);
        goto out;
    }
    step(w, res, log, &w->logs[log - w->cfg->logs], body, note, &cp, now);
out:
    ota_note_free(note);
    free(body);
}
