/* The witness round as a pure core (see otachain/witness_round.h). */
#include "otachain/witness_round.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/crypto.h"
#include "otachain/tlog_witness.h"

const char *ota_witness_outcome_name(enum ota_witness_outcome o)
{
    switch (o) {
    case OTA_WITNESS_PENDING:
        return "pending";
    case OTA_WITNESS_COSIGNED:
        return "cosigned";
    case OTA_WITNESS_HELD:
        return "held";
    case OTA_WITNESS_REFUSED:
        return "refused";
    case OTA_WITNESS_UNSENT:
        return "unsent";
    }
    return "unknown";
}

static bool same_witness(const struct ota_tlog_policy_witness *a,
                         const struct ota_tlog_policy_witness *b)
{
    return strcmp(a->name, b->name) == 0 &&
           memcmp(a->key.pub, b->key.pub, OTA_ED25519_PUB_LEN) == 0;
}

int ota_witness_round_init(struct ota_witness_round *r, const struct ota_buf *note, uint64_t size,
                           const struct ota_tlog_policy *const *pols, size_t npols,
                           const struct ota_merkle_source *src)
{
    if (r == NULL || note == NULL || src == NULL || npols > OTA_WITNESS_ROUND_MAX_POLICIES)
        return OTA_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    r->note = note;
    r->size = size;
    r->src = src;
    for (size_t p = 0; p < npols; p++) {
        const struct ota_tlog_policy *pol = pols[p];

        if (pol == NULL)
            continue;
        r->pols[r->npols++] = pol;
        for (size_t i = 0; i < pol->nwitnesses; i++) {
            const struct ota_tlog_policy_witness *pw = &pol->witnesses[i];
            bool dup = false;

            for (size_t j = 0; j < r->n && !dup; j++)
                dup = same_witness(r->w[j].pw, pw);
            if (dup)
                continue;
            if (r->n >= OTA_WITNESS_ROUND_MAX)
                return OTA_ERR_TOO_LARGE;
            r->w[r->n].pw = pw;
            r->w[r->n].url = pw->url;
            r->n++;
        }
    }
    return 0;
}

void ota_witness_round_free(struct ota_witness_round *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n && i < OTA_WITNESS_ROUND_MAX; i++)
        ota_buf_free(&r->w[i].req);
}

void ota_witness_round_known(struct ota_witness_round *r, size_t i, uint64_t old_size)
{
    if (i < r->n)
        r->w[i].old_size = old_size;
}

/* The body for witness w: its old size, the consistency proof to our size
 * and the note. */
static int build_request(struct ota_witness_round *r, struct ota_witness_slot *w,
                         struct ota_detail *det)
{
    struct ota_merkle_proof *proof;
    int rc;

    if (w->old_size > r->size)
        return OTA_ERR_INVALID_ARG;
    proof = calloc(1, sizeof(*proof));
    if (proof == NULL)
        return OTA_ERR_NOMEM;
    ota_buf_free(&w->req);
    ota_buf_init(&w->req, OTA_TLOG_WITNESS_MAX_BODY);
    rc = ota_merkle_prove_consistency(proof, w->old_size, r->size, r->src, det);
    if (rc == 0)
        rc = ota_tlog_witness_body_format(&w->req, w->old_size,
                                          (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                          proof->count, (const char *)r->note->data, r->note->len);
    free(proof);
    return rc;
}

int ota_witness_round_start(struct ota_witness_round *r, struct ota_detail *det)
{
    for (size_t i = 0; i < r->n; i++) {
        struct ota_witness_slot *w = &r->w[i];
        int rc;

        if (w->url == NULL || w->url[0] == '\0') {
            w->outcome = OTA_WITNESS_UNSENT;
            snprintf(w->why, sizeof(w->why), "no URL in the policy");
            continue;
        }
        rc = build_request(r, w, det);
        if (rc == OTA_ERR_NOMEM)
            return rc;
        if (rc != 0) {
            w->outcome = OTA_WITNESS_UNSENT;
            snprintf(w->why, sizeof(w->why),
                     "no request: the log cannot prove size %llu from the %llu it recorded (%s)",
                     (unsigned long long)r->size, (unsigned long long)w->old_size, ota_errname(rc));
        }
    }
    return 0;
}

bool ota_witness_round_wants(const struct ota_witness_round *r, size_t i)
{
    return i < r->n && r->w[i].outcome == OTA_WITNESS_PENDING;
}

/* The first line of a reply, printable ASCII only, for messages. */
static void reply_reason(char *out, size_t n, const void *body, size_t len)
{
    const uint8_t *b = body;
    size_t k = 0;

    while (k < len && k < 120 && b[k] != '\n' && b[k] >= 0x20 && b[k] < 0x7f)
        k++;
    snprintf(out, n, "%.*s", (int)k, k > 0 ? (const char *)b : "");
}

/* A 200: exactly one cosignature line by the witness's policy key over the
 * note. Anything else: the witness stored something we cannot read. */
static void take_cosignature(const struct ota_witness_round *r, struct ota_witness_slot *w,
                             const uint8_t *body, size_t len)
{
    const uint8_t *nl = len > 0 ? memchr(body, '\n', len) : NULL;
    struct ota_note *parsed = NULL;
    struct ota_note_check chk;
    struct ota_buf full;
    size_t nv = 0;

    w->outcome = OTA_WITNESS_HELD;
    if (nl == NULL || (size_t)(nl - body) + 1 != len || len >= sizeof(w->line)) {
        snprintf(w->why, sizeof(w->why), "HTTP 200, but the answer is not one cosignature line");
        return;
    }
    ota_buf_init(&full, OTA_WITNESS_REPLY_MAX + r->note->len);
    if (ota_buf_append(&full, r->note->data, r->note->len) != 0 ||
        ota_buf_append(&full, body, len) != 0 ||
        ota_note_parse(&parsed, full.data, full.len, NULL) != 0 ||
        ota_note_verify(&chk, &nv, parsed, &w->pw->key, 1, NULL) != 0 || !chk.verified) {
        snprintf(w->why, sizeof(w->why),
                 "HTTP 200, but the cosignature does not verify with its policy key");
    } else {
        memcpy(w->line, body, len);
        w->line[len] = '\0';
        w->outcome = OTA_WITNESS_COSIGNED;
        w->why[0] = '\0';
    }
    ota_note_free(parsed);
    ota_buf_free(&full);
}

void ota_witness_round_reply(struct ota_witness_round *r, size_t i, long status, const void *body,
                             size_t len, bool *retry)
{
    struct ota_witness_slot *w;
    char reason[128];
    uint64_t wsize = 0;

    *retry = false;
    if (i >= r->n || r->w[i].outcome != OTA_WITNESS_PENDING)
        return;
    w = &r->w[i];
    w->status = status;
    if (len > OTA_WITNESS_REPLY_MAX)
        len = OTA_WITNESS_REPLY_MAX;
    if (status == 200) {
        take_cosignature(r, w, body, len);
        return;
    }
    if (status == 409 && ota_tlog_witness_size_parse(&wsize, body, len) == 0) {
        /* It holds another size: a definite "not this one", unless we can
         * prove from its size, once. */
        if (w->attempt == 0 && wsize <= r->size) {
            w->old_size = wsize;
            w->attempt++;
            if (build_request(r, w, NULL) == 0) {
                *retry = true;
                return;
            }
        }
        w->outcome = OTA_WITNESS_REFUSED;
        snprintf(w->why, sizeof(w->why), "HTTP 409: the witness has size %llu%s",
                 (unsigned long long)wsize,
                 wsize > r->size ? ", beyond the log's" : ", and refused the proof from it");
        return;
    }
    reply_reason(reason, sizeof(reason), body, len);
    snprintf(w->why, sizeof(w->why), "HTTP %ld: %s", status, reason);
    /* 403 (not its log, or not signed by it), 409 without a readable
     * size, 422 (the content breaks a rule): it did not take the tree.
     * Any other answer (a 5xx, a proxy's page): it may have. */
    w->outcome =
        status == 403 || status == 409 || status == 422 ? OTA_WITNESS_REFUSED : OTA_WITNESS_HELD;
}

void ota_witness_round_failed(struct ota_witness_round *r, size_t i, bool sent, const char *why)
{
    struct ota_witness_slot *w;

    if (i >= r->n || r->w[i].outcome != OTA_WITNESS_PENDING)
        return;
    w = &r->w[i];
    w->outcome = sent ? OTA_WITNESS_HELD : OTA_WITNESS_UNSENT;
    snprintf(w->why, sizeof(w->why), "%s%s", why != NULL ? why : "no answer",
             sent ? " (after the request was sent: it may hold the tree)" : "");
}

static bool policy_met(const struct ota_witness_round *r, const struct ota_tlog_policy *p)
{
    bool witnessed[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};

    for (size_t i = 0; i < p->nwitnesses; i++) {
        for (size_t j = 0; j < r->n; j++) {
            if (r->w[j].outcome == OTA_WITNESS_COSIGNED &&
                same_witness(r->w[j].pw, &p->witnesses[i]))
                witnessed[i] = true;
        }
    }
    return ota_tlog_policy_quorum_met(p, witnessed);
}

void ota_witness_round_judge(const struct ota_witness_round *r, struct ota_witness_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->met = true;
    for (size_t p = 0; p < r->npols; p++)
        v->met = v->met && policy_met(r, r->pols[p]);
    for (size_t i = 0; i < r->n; i++) {
        if (r->w[i].outcome == OTA_WITNESS_COSIGNED)
            v->ncosigned++;
        else if (r->w[i].outcome == OTA_WITNESS_HELD || r->w[i].outcome == OTA_WITNESS_PENDING)
            v->nheld++;
    }
    v->droppable = v->ncosigned == 0 && v->nheld == 0;
}

int ota_witness_round_cosign(const struct ota_witness_round *r, struct ota_buf *out)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->w[i].outcome == OTA_WITNESS_COSIGNED) {
            int rc = ota_buf_append_str(out, r->w[i].line);

            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

void ota_witness_round_missing(const struct ota_witness_round *r, char *out, size_t n)
{
    size_t off = 0;

    if (n == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const struct ota_witness_slot *w = &r->w[i];
        int k;

        if (w->outcome == OTA_WITNESS_COSIGNED)
            continue;
        k = snprintf(out + off, n - off, "%s%s (%s)", off > 0 ? "; " : "", w->pw->name,
                     w->why[0] != '\0' ? w->why : "no answer");
        if (k < 0 || (size_t)k >= n - off)
            break;
        off += (size_t)k;
    }
}
