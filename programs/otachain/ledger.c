/* The log side of the ledger (see ledger.h for the publish state machine). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"
#include "otachain/base64.h"
#include "otachain/checkpoint.h"
#include "otachain/cosig.h"
#include "otachain/crypto.h"
#include "otachain/fsutil.h"
#include "otachain/http.h"
#include "otachain/ledger_entry.h"
#include "otachain/merkle.h"
#include "otachain/tiles.h"
#include "otachain/tlog_proof.h"
#include "otachain/tlog_witness.h"
#include "repo.h"

#define REPLY_MAX   (64u * 1024) /* a witness answer: one cosignature line */
#define MAX_WITNESS (OTA_TLOG_POLICY_MAX_WITNESSES * LEDGER_MAX_POLICIES)
#define NOTE_MAX    OTA_LOG_STORE_NOTE_MAX
#define CACHE_TILES 16

/* --------------------------------------------------------------- policy */

int ledger_policy_of(struct ota_tlog_policy **out, int64_t *max_age,
                     const struct ota_tuf_meta *root, struct ota_detail *det)
{
    const json_t *l = json_object_get(json_object_get(root->doc, "signed"), "x-otachain-ledger");
    const json_t *ma;
    int rc;

    *out = NULL;
    *max_age = 0;
    if (l == NULL)
        return 0;
    rc = ota_tlog_policy_from_ledger(out, l, det);
    if (rc != 0) {
        ota_detail_prefix(det, "root.json");
        return rc;
    }
    ma = json_object_get(l, "max_age");
    *max_age = ma != NULL ? (int64_t)json_integer_value(ma) : LEDGER_DEFAULT_MAX_AGE;
    return 0;
}

int ledger_log_key(char vkey[OTA_NOTE_VKEY_SIZE], char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1],
                   const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct ota_tlog_policy *p = NULL;
    int64_t max_age;
    int rc = ledger_policy_of(&p, &max_age, root, det);

    vkey[0] = '\0';
    origin[0] = '\0';
    if (rc == 0 && (p == NULL || p->nlogs == 0)) {
        ota_detail_set(det,
                       "root v%" PRIu64 " names no ledger (the repository was made with "
                       "--no-ledger)",
                       root->version);
        rc = OTA_ERR_NOT_FOUND;
    }
    if (rc == 0) {
        ota_note_verifier_format(vkey, &p->logs[0].key);
        snprintf(origin, OTA_CHECKPOINT_MAX_ORIGIN + 1, "%s", p->origin);
    }
    ota_tlog_policy_free(p);
    return rc;
}

/* ------------------------------------------------------------------ key */

int ledger_create_key(char vkey[OTA_NOTE_VKEY_SIZE], const char *path, const char *origin,
                      struct ota_detail *det)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    struct ota_buf text;
    int fd;
    int rc = ota_note_signer_generate(&s, origin, strlen(origin), OTA_NOTE_TYPE_ED25519);

    if (rc != 0) {
        ota_detail_set(det, "log origin %s is not a valid key name", origin);
        return rc;
    }
    ota_buf_init(&text, OTA_NOTE_SKEY_MAX_LEN + 2);
    rc = ota_note_signer_format(&text, s);
    if (rc == 0)
        rc = ota_buf_append(&text, "\n", 1);
    if (rc == 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            ota_detail_set(det, "creating %s: %s", path, strerror(errno));
            rc = errno == EEXIST ? OTA_ERR_EXISTS : OTA_ERR_IO;
        } else {
            if (fchmod(fd, 0600) != 0 || write(fd, text.data, text.len) != (ssize_t)text.len ||
                fsync(fd) != 0) {
                ota_detail_set(det, "writing %s: %s", path, strerror(errno));
                rc = OTA_ERR_IO;
            }
            close(fd);
        }
    }
    if (rc == 0) {
        ota_note_signer_verifier(&v, s);
        ota_note_verifier_format(vkey, &v);
    }
    ota_buf_free(&text);
    ota_note_signer_free(s);
    return rc;
}

static int load_key(struct ledger *lg, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", lg->dir, LEDGER_KEY) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_read_nofollow(&data, &len, path, OTA_NOTE_SKEY_MAX_LEN + 2);
    if (rc != 0) {
        ota_detail_set(det, "the log key %s", path);
        return rc;
    }
    if (lstat(path, &st) != 0 || (st.st_mode & 077) != 0) {
        ota_detail_set(det, "%s must be mode 0600", path);
        rc = OTA_ERR_PERMISSION;
    }
    while (rc == 0 && len > 0 && data[len - 1] == '\n')
        len--;
    if (rc == 0)
        rc = ota_note_signer_parse(&lg->key, (const char *)data, len, det);
    if (rc == 0)
        ota_note_signer_verifier(&lg->vkey, lg->key);
    else
        ota_detail_prefix(det, path);
    ota_wipe(data, len);
    free(data);
    return rc;
}

int ledger_open(struct ledger *lg, const char *dir, const struct cli_ctx *ctx,
                struct ota_detail *det)
{
    char path[PATH_MAX];
    int rc;

    memset(lg, 0, sizeof(*lg));
    lg->ctx = ctx;
    if (snprintf(lg->dir, sizeof(lg->dir), "%s", dir) >= (int)sizeof(lg->dir) ||
        snprintf(path, sizeof(path), "%s/%s", dir, LEDGER_DB) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = load_key(lg, det);
    if (rc == 0)
        rc = ota_log_store_sqlite_open(&lg->store, path, det);
    if (rc != 0)
        ledger_close(lg);
    return rc;
}

void ledger_close(struct ledger *lg)
{
    ota_log_store_close(lg->store);
    ota_note_signer_free(lg->key);
    lg->store = NULL;
    lg->key = NULL;
}

/* ---------------------------------------------------------------- entries */

static int record_of(uint8_t rec[OTA_LEDGER_ENTRY_MAX], size_t *rlen,
                     uint8_t leaf[OTA_MERKLE_HASH_LEN], char key[32], enum ota_tuf_role role,
                     uint64_t version, const void *data, size_t len)
{
    struct ota_ledger_entry e;
    int rc = ota_ledger_entry_of_file(&e, role, version, data, len);

    if (rc == 0)
        rc = ota_ledger_entry_format(rec, rlen, &e);
    if (rc == 0)
        rc = ota_ledger_entry_leaf(leaf, &e);
    snprintf(key, 32, "%s/%" PRIu64, ota_tuf_role_name(role), version);
    return rc;
}

int ledger_logged(struct ledger *lg, enum ota_tuf_role role, uint64_t version, const void *data,
                  size_t len, bool *found, bool *same, struct ota_detail *det)
{
    uint8_t rec[OTA_LEDGER_ENTRY_MAX];
    uint8_t buf[OTA_LEDGER_ENTRY_MAX];
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    uint8_t have[OTA_MERKLE_HASH_LEN];
    char key[32];
    size_t rlen = 0;
    size_t blen = 0;
    uint64_t idx = 0;
    int rc = record_of(rec, &rlen, leaf, key, role, version, data, len);

    *found = false;
    *same = false;
    if (rc != 0)
        return rc;
    rc = lg->store->ops->find(lg->store, key, &idx, det);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc == 0)
        rc = lg->store->ops->entry(lg->store, idx, buf, sizeof(buf), &blen, have, det);
    if (rc != 0)
        return rc;
    *found = true;
    *same = ota_ct_equal(have, leaf, OTA_MERKLE_HASH_LEN);
    return 0;
}

struct node_sink {
    struct ota_log_store *store;
    struct ota_detail *det;
};

static int sink_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                     const uint8_t *hashes)
{
    struct node_sink *ns = ctx;

    return ns->store->ops->tile_put(ns->store, level, index, width, hashes, ns->det);
}

/* Appends the records not logged yet; idx[i] gets each record's index. */
static int append_records(struct ledger *lg, struct ota_merkle_edge *edge, uint64_t *idx,
                          const struct ledger_record *recs, size_t n, struct ota_detail *det)
{
    struct ota_log_store *s = lg->store;
    uint8_t(*leaves)[OTA_MERKLE_HASH_LEN] = calloc(n + 1, OTA_MERKLE_HASH_LEN);
    struct ota_tiles_reader reader;
    struct node_sink ns = {s, det};
    struct ota_tiles_sink sink = {sink_tile, &ns};
    uint64_t old_size;
    uint64_t count = 0;
    size_t nnew = 0;
    int rc;

    if (leaves == NULL)
        return OTA_ERR_NOMEM;
    rc = s->ops->edge_get(s, edge, det);
    if (rc == 0)
        rc = s->ops->count(s, &count, det);
    if (rc == 0 && count != edge->size) {
        ota_detail_set(det, "ledger database: %" PRIu64 " entries but a tree of %" PRIu64, count,
                       edge->size);
        rc = OTA_ERR_FORMAT;
    }
    old_size = edge->size;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t rec[OTA_LEDGER_ENTRY_MAX];
        uint8_t leaf[OTA_MERKLE_HASH_LEN];
        char key[32];
        size_t rlen = 0;
        bool found = false;
        bool same = false;

        rc = record_of(rec, &rlen, leaf, key, recs[i].role, recs[i].version, recs[i].data,
                       recs[i].len);
        if (rc == 0)
            rc = ledger_logged(lg, recs[i].role, recs[i].version, recs[i].data, recs[i].len, &found,
                               &same, det);
        if (rc != 0)
            break;
        if (found && !same) {
            ota_detail_set(det,
                           "%s v%" PRIu64 " is already logged with other bytes: a logged version "
                           "cannot change (publish a new version)",
                           ota_tuf_role_name(recs[i].role), recs[i].version);
            rc = OTA_ERR_EXISTS;
            break;
        }
        if (found) {
            rc = s->ops->find(s, key, &idx[i], det);
            continue;
        }
        idx[i] = edge->size;
        rc = s->ops->append(s, edge->size, rec, rlen, leaf, key, det);
        if (rc == 0)
            rc = ota_merkle_edge_append(edge, leaf, NULL);
        if (rc == 0)
            memcpy(leaves[nnew++], leaf, OTA_MERKLE_HASH_LEN);
    }
    ota_log_store_tiles_reader(&reader, s);
    if (rc == 0 && nnew > 0)
        rc = ota_tiles_append(old_size, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaves, nnew,
                              &reader, &sink, det);
    if (rc == 0)
        rc = s->ops->edge_put(s, edge, det);
    free(leaves);
    return rc;
}

/* Signs the checkpoint of the edge's tree: note = body, blank line, the
 * log's signature line. */
static int sign_checkpoint(struct ledger *lg, struct ota_buf *note, struct ota_buf *body,
                           const struct ota_merkle_edge *edge, struct ota_detail *det)
{
    struct ota_checkpoint cp;
    int rc;

    memset(&cp, 0, sizeof(cp));
    cp.origin_len = lg->vkey.name_len;
    memcpy(cp.origin, lg->vkey.name, cp.origin_len);
    cp.size = edge->size;
    rc = ota_merkle_edge_root(cp.root, edge);
    if (rc == 0)
        rc = ota_checkpoint_format(body, &cp);
    if (rc == 0)
        rc = ota_buf_append(note, body->data, body->len);
    if (rc == 0)
        rc = ota_buf_append(note, "\n", 1);
    if (rc == 0)
        rc = ota_note_sign(note, (const char *)body->data, body->len, lg->key, det);
    return rc;
}

/* --------------------------------------------------------------- witnesses */

/* One witness of the union of the policies. */
struct wit {
    const struct ota_tlog_policy_witness *pw; /* first policy's entry */
    uint64_t old_size;
    int attempt;
    CURL *easy;
    struct ota_http_policy policy;
    struct ota_http_xfer xfer;
    struct curl_slist *hdr;
    struct ota_buf req;
    struct ota_buf reply;
    long status;
    bool done;
    bool cosigned;
    char line[OTA_NOTE_MAX_NAME + 160]; /* the cosignature line */
    char why[200];
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct wit *w = ctx;

    if (ota_buf_append(&w->reply, p, size * nmemb) != 0)
        return 0;
    return size * nmemb;
}

static int build_request(struct wit *w, const struct ota_buf *note, uint64_t size,
                         const struct ota_merkle_source *src, struct ota_detail *det)
{
    struct ota_merkle_proof *proof = calloc(1, sizeof(*proof));
    int rc;

    if (proof == NULL)
        return OTA_ERR_NOMEM;
    ota_buf_free(&w->req);
    ota_buf_init(&w->req, OTA_TLOG_WITNESS_MAX_BODY);
    rc = w->old_size > size ? OTA_ERR_INVALID_ARG
                            : ota_merkle_prove_consistency(proof, w->old_size, size, src, det);
    if (rc == 0)
        rc = ota_tlog_witness_body_format(&w->req, w->old_size,
                                          (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                          proof->count, (const char *)note->data, note->len);
    free(proof);
    return rc;
}

static int start_easy(struct wit *w, CURLM *multi)
{
    char url[OTA_TLOG_POLICY_MAX_URL + 32];
    const char *base = w->pw->url;
    size_t bl = strlen(base);

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof(url), "%.*s/add-checkpoint", (int)bl, base);
    ota_buf_free(&w->reply);
    ota_buf_init(&w->reply, REPLY_MAX);
    /* The HTTP policy with the round's deadlines: a witness may take a
     * while to validate before it answers, so no rate rules; no
     * redirects for a POST. */
    ota_http_policy_default(&w->policy);
    w->policy.connect_timeout_s = LEDGER_WITNESS_TIMEOUT_MS / 2000;
    w->policy.timeout_s = LEDGER_WITNESS_TIMEOUT_MS / 1000;
    w->policy.min_rate = 0;
    w->policy.stall_s = 0;
    w->policy.max_redirs = 0;
    w->easy = curl_easy_init();
    if (w->easy == NULL)
        return OTA_ERR_NOMEM;
    w->hdr = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    if (w->hdr == NULL || ota_http_setup(w->easy, &w->policy, NULL, NULL) != 0 ||
        ota_http_xfer_begin(&w->xfer, w->easy, &w->policy, url, url, REPLY_MAX, REPLY_MAX, NULL) !=
            0 ||
        curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, (const char *)w->req.data) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->req.len) !=
            CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->hdr) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w) != CURLE_OK ||
        curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w) != CURLE_OK ||
        curl_multi_add_handle(multi, w->easy) != CURLM_OK)
        return OTA_ERR_NETWORK;
    return 0;
}

static void end_easy(struct wit *w, CURLM *multi)
{
    if (w->easy != NULL) {
        curl_multi_remove_handle(multi, w->easy);
        curl_easy_cleanup(w->easy);
    }
    curl_slist_free_all(w->hdr);
    w->easy = NULL;
    w->hdr = NULL;
}

/* The first line of a reply, for messages. */
static void reply_reason(char *out, size_t n, const struct ota_buf *b)
{
    size_t len = 0;

    while (len < b->len && len < 120 && b->data[len] != '\n' && b->data[len] >= 0x20 &&
           b->data[len] < 0x7f)
        len++;
    snprintf(out, n, "%.*s", (int)len, b->data != NULL ? (const char *)b->data : "");
}

/* Checks a 200 reply: exactly one cosignature line by the witness's key
 * over the checkpoint `note` (body + log signature). */
static void check_cosig(struct wit *w, const struct ota_buf *note)
{
    struct ota_buf full;
    struct ota_note *parsed = NULL;
    struct ota_note_check chk;
    size_t nv = 0;
    const uint8_t *nl = w->reply.len > 0 ? memchr(w->reply.data, '\n', w->reply.len) : NULL;

    if (nl == NULL || (size_t)(nl - w->reply.data) + 1 != w->reply.len ||
        w->reply.len >= sizeof(w->line)) {
        snprintf(w->why, sizeof(w->why), "answer is not one cosignature line");
        return;
    }
    ota_buf_init(&full, NOTE_MAX);
    if (ota_buf_append(&full, note->data, note->len) != 0 ||
        ota_buf_append(&full, w->reply.data, w->reply.len) != 0 ||
        ota_note_parse(&parsed, full.data, full.len, NULL) != 0 ||
        ota_note_verify(&chk, &nv, parsed, &w->pw->key, 1, NULL) != 0 || !chk.verified) {
        snprintf(w->why, sizeof(w->why), "cosignature does not verify with its policy key");
    } else {
        memcpy(w->line, w->reply.data, w->reply.len);
        w->line[w->reply.len] = '\0';
        w->cosigned = true;
    }
    ota_note_free(parsed);
    ota_buf_free(&full);
}

/* Handles a finished transfer; returns true when it must be retried. */
static bool finish(struct wit *w, CURLcode res, const struct ota_buf *note, uint64_t size)
{
    char reason[128];
    uint64_t wsize = 0;

    if (res != CURLE_OK) {
        snprintf(w->why, sizeof(w->why), "%s", curl_easy_strerror(res));
        return false;
    }
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status == 200) {
        check_cosig(w, note);
        return false;
    }
    if (w->status == 409 && w->attempt == 0 &&
        ota_tlog_witness_size_parse(&wsize, w->reply.data, w->reply.len) == 0) {
        if (wsize > size) {
            snprintf(w->why, sizeof(w->why),
                     "HTTP 409: the witness has size %" PRIu64 ", beyond the log's %" PRIu64, wsize,
                     size);
            return false;
        }
        w->old_size = wsize;
        return true;
    }
    reply_reason(reason, sizeof(reason), &w->reply);
    snprintf(w->why, sizeof(w->why), "HTTP %ld: %s", w->status, reason);
    return false;
}

/* Sends note (of the tree of `size` leaves) to every witness in ws, in
 * parallel, each with a consistency proof from its old size. */
static int cosign_round(struct wit *ws, size_t nw, const struct ota_buf *note, uint64_t size,
                        const struct ota_merkle_source *src, struct ota_detail *det)
{
    CURLM *multi;
    int running = 0;
    int rc = 0;

    if (nw == 0)
        return 0;
    multi = curl_multi_init();
    if (multi == NULL)
        return OTA_ERR_NOMEM;
    for (size_t i = 0; i < nw; i++) {
        struct wit *w = &ws[i];

        if (w->pw->url == NULL) {
            snprintf(w->why, sizeof(w->why), "no URL in the policy");
            continue;
        }
        rc = build_request(w, note, size, src, det);
        if (rc == 0)
            rc = start_easy(w, multi);
        if (rc != 0) {
            snprintf(w->why, sizeof(w->why), "request not built: %s", ota_errname(rc));
            end_easy(w, multi);
            rc = 0;
        }
    }
    do {
        CURLMsg *m;
        int left;

        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            rc = OTA_ERR_NETWORK;
            break;
        }
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct wit *w = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
            if (finish(w, m->data.result, note, size)) {
                end_easy(w, multi);
                w->attempt++;
                if (build_request(w, note, size, src, det) != 0 || start_easy(w, multi) != 0) {
                    snprintf(w->why, sizeof(w->why), "retry from size %" PRIu64 " failed",
                             w->old_size);
                    end_easy(w, multi);
                } else {
                    running++;
                }
            } else {
                end_easy(w, multi);
            }
        }
        if (running > 0 && curl_multi_poll(multi, NULL, 0, 200, NULL) != CURLM_OK) {
            rc = OTA_ERR_NETWORK;
            break;
        }
    } while (running > 0);
    for (size_t i = 0; i < nw; i++) {
        end_easy(&ws[i], multi);
        ota_buf_free(&ws[i].req);
        ota_buf_free(&ws[i].reply);
    }
    curl_multi_cleanup(multi);
    return rc;
}

/* The union of the policies' witnesses (same name and key = one). */
static int witness_union(struct wit *ws, size_t *nw, const struct ota_tlog_policy *const *pols,
                         size_t npols)
{
    *nw = 0;
    for (size_t p = 0; p < npols; p++) {
        for (size_t i = 0; pols[p] != NULL && i < pols[p]->nwitnesses; i++) {
            const struct ota_tlog_policy_witness *pw = &pols[p]->witnesses[i];
            bool dup = false;

            for (size_t j = 0; j < *nw && !dup; j++)
                dup = strcmp(ws[j].pw->name, pw->name) == 0 &&
                      memcmp(ws[j].pw->key.pub, pw->key.pub, OTA_ED25519_PUB_LEN) == 0;
            if (dup)
                continue;
            if (*nw >= MAX_WITNESS)
                return OTA_ERR_TOO_LARGE;
            memset(&ws[*nw], 0, sizeof(ws[0]));
            ws[(*nw)++].pw = pw;
        }
    }
    return 0;
}

static bool policy_met(const struct ota_tlog_policy *p, const struct wit *ws, size_t nw)
{
    bool witnessed[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};

    for (size_t i = 0; i < p->nwitnesses; i++) {
        for (size_t j = 0; j < nw; j++) {
            if (ws[j].cosigned && strcmp(ws[j].pw->name, p->witnesses[i].name) == 0 &&
                memcmp(ws[j].pw->key.pub, p->witnesses[i].key.pub, OTA_ED25519_PUB_LEN) == 0)
                witnessed[i] = true;
        }
    }
    return ota_tlog_policy_quorum_met(p, witnessed);
}

/* OTACHAIN_TIMING=1 (benchmarks, docs/cli.md): milliseconds since t0 of a
 * CLOCK_MONOTONIC reading, printed on standard error as
 * "otachain: timing: <what> <ms> ms". */
static bool timing_on(void)
{
    const char *v = getenv("OTACHAIN_TIMING");

    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static void timing_now(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
}

static void timing_print(const char *what, const struct timespec *t0)
{
    struct timespec t1;

    if (!timing_on())
        return;
    timing_now(&t1);
    fprintf(stderr, "otachain: timing: %s %.3f ms\n", what,
            (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6);
}

/* Runs the witness round for note and checks every policy's quorum;
 * appends the cosignature lines to note on success. */
static int collect(struct ledger *lg, struct ota_buf *note, uint64_t size,
                   const struct ota_tlog_policy *const *pols, size_t npols, size_t *ncosig,
                   struct ota_detail *det)
{
    struct wit *ws = calloc(MAX_WITNESS, sizeof(*ws));
    struct ota_tiles_slot *slots = calloc(CACHE_TILES, sizeof(*slots));
    struct ota_tiles_source *ts = calloc(1, sizeof(*ts));
    struct ota_tiles_reader reader;
    size_t nw = 0;
    bool met = true;
    int rc;

    *ncosig = 0;
    if (ws == NULL || slots == NULL || ts == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    ota_log_store_tiles_reader(&reader, lg->store);
    rc = ota_tiles_source_init(ts, size, &reader, slots, CACHE_TILES);
    if (rc == 0)
        rc = witness_union(ws, &nw, pols, npols);
    for (size_t i = 0; rc == 0 && i < nw; i++)
        rc = lg->store->ops->witness_get(lg->store, ws[i].pw->name, &ws[i].old_size, det);
    if (rc == 0) {
        struct timespec t0;

        timing_now(&t0);
        rc = cosign_round(ws, nw, note, size, &ts->src, det);
        timing_print("witness-round", &t0);
    }
    if (rc != 0)
        goto out;
    for (size_t p = 0; p < npols; p++)
        met = met && (pols[p] == NULL || policy_met(pols[p], ws, nw));
    /* The size each cosigner now holds, quorum or not (ledger.h,
     * invariant 4). */
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        if (!ws[i].cosigned)
            continue;
        rc = lg->store->ops->witness_put(lg->store, ws[i].pw->name, size, det);
        (*ncosig)++;
    }
    if (rc == 0 && !met) {
        char msg[OTA_DETAIL_LEN] = "";
        size_t off = 0;

        for (size_t i = 0; i < nw; i++) {
            int k;

            if (ws[i].cosigned)
                continue;
            k = snprintf(msg + off, sizeof(msg) - off, "%s%s (%s)", off > 0 ? "; " : "",
                         ws[i].pw->name, ws[i].why[0] ? ws[i].why : "no answer");
            if (k < 0 || (size_t)k >= sizeof(msg) - off)
                break;
            off += (size_t)k;
        }
        ota_detail_set(det, "checkpoint of size %" PRIu64 " not cosigned by: %s", size, msg);
        rc = OTA_ERR_QUORUM;
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        if (ws[i].cosigned)
            rc = ota_buf_append_str(note, ws[i].line);
    }
out:
    free(ws);
    free(slots);
    free(ts);
    return rc;
}

/* ------------------------------------------------------------------ export */

/* Files a publish created before its quorum, removed again if the quorum
 * is not met (docs/formats/ledger.md, publish step 3). */
struct created {
    size_t n;
    char **path;
};

static void created_free(struct created *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->path[i]);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

/* Removes them in the order they were written (metadata, N.root.json
 * first). */
static void created_remove(struct created *c, const struct ledger *lg)
{
    for (size_t i = 0; i < c->n; i++) {
        if (ota_fs_remove(c->path[i], lg->ctx->hook) != 0)
            cli_warn("could not remove %s", c->path[i]);
    }
    created_free(c);
}

/* Writes path atomically unless it exists and !replace (immutable files);
 * a file that did not exist is recorded in c (when not NULL). */
static int write_file(struct ledger *lg, struct created *c, const char *path, const void *data,
                      size_t len, bool replace, struct ota_detail *det)
{
    char dir[PATH_MAX];
    char *slash;
    struct stat st;
    bool existed = lstat(path, &st) == 0;
    int rc = 0;

    if (existed && !replace)
        return 0;
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        rc = ota_fs_mkdirs(dir, 0755);
    }
    if (rc == 0 && c != NULL && !existed) {
        char **p = realloc(c->path, (c->n + 1) * sizeof(*p));

        if (p == NULL)
            return OTA_ERR_NOMEM;
        c->path = p;
        c->path[c->n] = strdup(path);
        if (c->path[c->n] == NULL)
            return OTA_ERR_NOMEM;
        c->n++;
    }
    if (rc == 0)
        rc = ota_fs_replace(path, data, len, 0644, lg->ctx->hook);
    if (rc != 0)
        ota_detail_set(det, "writing %s", path);
    return rc;
}

static int write_public(struct ledger *lg, struct created *c, const char *rel, const void *data,
                        size_t len, bool replace, struct ota_detail *det)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s/%s", lg->dir, LEDGER_PUBLIC, rel) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    return write_file(lg, c, path, data, len, replace, det);
}

static int export_bundle(struct ledger *lg, struct created *c, uint64_t tile, unsigned width,
                         struct ota_detail *det)
{
    struct ota_tiles_id id = {true, 0, tile, width};
    char rel[OTA_TILES_PATH_MAX];
    struct ota_buf b;
    int rc = ota_tiles_path_format(rel, &id);

    ota_buf_init(&b, OTA_TILES_BUNDLE_MAX);
    for (unsigned i = 0; rc == 0 && i < width; i++) {
        uint8_t e[OTA_LEDGER_ENTRY_MAX];
        size_t len = 0;

        rc = lg->store->ops->entry(lg->store, tile * OTA_TILES_WIDTH + i, e, sizeof(e), &len, NULL,
                                   det);
        if (rc == 0)
            rc = ota_tiles_bundle_append(&b, e, len);
    }
    if (rc == 0)
        rc = write_public(lg, c, rel, b.data, b.len, false, det);
    ota_buf_free(&b);
    return rc;
}

/* Writes every tile and entry bundle of the tree of new_size that the
 * tree of old_size did not have (immutable files; existing ones kept). */
static int export_tiles(struct ledger *lg, struct created *c, uint64_t old_size, uint64_t new_size,
                        struct ota_detail *det)
{
    uint8_t *buf = malloc(OTA_TILES_FULL_BYTES);
    int rc = buf == NULL ? OTA_ERR_NOMEM : 0;

    for (unsigned level = 0; rc == 0 && level <= OTA_TILES_MAX_LEVEL; level++) {
        unsigned shift = OTA_TILES_HEIGHT * level;
        uint64_t hold = shift < 64 ? old_size >> shift : 0;
        uint64_t hnew = shift < 64 ? new_size >> shift : 0;

        if (hnew == 0)
            break;
        for (uint64_t t = hold / OTA_TILES_WIDTH; rc == 0 && t <= (hnew - 1) / OTA_TILES_WIDTH;
             t++) {
            unsigned w = ota_tiles_width(level, t, new_size);
            struct ota_tiles_id id = {false, level, t, w};
            char rel[OTA_TILES_PATH_MAX];
            size_t len = 0;

            if (w == 0 || (t == hold / OTA_TILES_WIDTH && w == ota_tiles_width(level, t, old_size)))
                continue;
            rc = ota_tiles_path_format(rel, &id);
            if (rc == 0)
                rc = lg->store->ops->tile_get(lg->store, level, t, w, buf, &len, det);
            if (rc == 0)
                rc = write_public(lg, c, rel, buf, len, false, det);
            if (rc == 0 && level == 0)
                rc = export_bundle(lg, c, t, w, det);
        }
    }
    free(buf);
    return rc;
}

static uint64_t public_size(struct ledger *lg)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    struct ota_note *note = NULL;
    struct ota_checkpoint cp;
    uint64_t size = 0;

    if (snprintf(path, sizeof(path), "%s/%s/checkpoint", lg->dir, LEDGER_PUBLIC) >=
            (int)sizeof(path) ||
        ota_fs_read(&data, &len, path, NOTE_MAX) != 0)
        return 0;
    if (ota_note_parse(&note, data, len, NULL) == 0 &&
        ota_checkpoint_parse(&cp, note->text, note->text_len, NULL) == 0)
        size = cp.size;
    ota_note_free(note);
    free(data);
    return size;
}

/* Tiles, entry bundles and index files of every entry the public tree of
 * old_public gains in the tree of new_size (also those of a publish that
 * kept its entries without a quorum, invariant 4). */
static int export_all(struct ledger *lg, struct created *c, uint64_t old_public, uint64_t new_size,
                      struct ota_detail *det)
{
    struct ota_log_store *s = lg->store;
    uint64_t from = old_public < new_size ? old_public : 0;
    int rc = export_tiles(lg, c, from, new_size, det);

    for (uint64_t i = from; rc == 0 && i < new_size; i++) {
        uint8_t e[OTA_LEDGER_ENTRY_MAX];
        struct ota_ledger_entry le;
        size_t elen = 0;
        char rel[64];
        char text[24];
        int len = snprintf(text, sizeof(text), "%" PRIu64, i);

        rc = s->ops->entry(s, i, e, sizeof(e), &elen, NULL, det);
        if (rc == 0)
            rc = ota_ledger_entry_parse(&le, e, elen, det);
        if (rc != 0)
            break;
        snprintf(rel, sizeof(rel), "index/%s/%" PRIu64, ota_tuf_role_name(le.role), le.version);
        rc = write_public(lg, c, rel, text, (size_t)len, false, det);
    }
    return rc;
}

/* ------------------------------------------------------------------ publish */

int ledger_publish(struct ledger *lg, const struct ledger_record *recs, size_t n,
                   const struct ledger_file *files, size_t nfiles,
                   const struct ota_tlog_policy *const *pols, size_t npols, FILE *out,
                   struct ota_detail *det)
{
    struct ota_log_store *s = lg->store;
    struct ota_merkle_edge *edge = calloc(1, sizeof(*edge));
    uint64_t *idx = calloc(n + 1, sizeof(*idx));
    struct created made = {0, NULL};
    struct ota_buf note;
    struct ota_buf body;
    size_t ncosig = 0;
    bool in_txn = false;
    int rc = edge == NULL || idx == NULL ? OTA_ERR_NOMEM : 0;

    struct timespec t0;

    timing_now(&t0);
    ota_buf_init(&note, NOTE_MAX);
    ota_buf_init(&body, OTA_CHECKPOINT_MAX_LEN);
    for (size_t p = 0; rc == 0 && p < npols; p++) {
        if (pols[p] != NULL &&
            (pols[p]->origin_len != lg->vkey.name_len ||
             memcmp(pols[p]->origin, lg->vkey.name, lg->vkey.name_len) != 0 ||
             pols[p]->nlogs != 1 || pols[p]->logs[0].key.key_id != lg->vkey.key_id ||
             memcmp(pols[p]->logs[0].key.pub, lg->vkey.pub, OTA_ED25519_PUB_LEN) != 0)) {
            ota_detail_set(det, "the ledger policy of root.json does not name this log's key %s",
                           lg->vkey.name);
            rc = OTA_ERR_ORIGIN;
        }
    }
    if (rc == 0)
        rc = s->ops->begin(s, det);
    in_txn = rc == 0;
    if (rc == 0)
        rc = append_records(lg, edge, idx, recs, n, det);
    if (rc == 0)
        rc = sign_checkpoint(lg, &note, &body, edge, det);
    /* Step 3: the immutable files first (validating witnesses read them);
     * nothing refers to them until checkpoint and timestamp.json do. */
    for (size_t i = 0; rc == 0 && i < nfiles; i++)
        rc = write_file(lg, &made, files[i].path, files[i].data, files[i].len, true, det);
    if (rc == 0)
        rc = export_all(lg, &made, public_size(lg), edge->size, det);
    if (rc == 0)
        rc = collect(lg, &note, edge->size, pols, npols, &ncosig, det);
    if (rc == OTA_ERR_QUORUM && ncosig > 0 && s->ops->commit(s, NULL) == 0) {
        /* Invariant 4: a witness cosigned this tree, so the log keeps it
         * (rolling back would fork that witness's view); nothing becomes
         * public and the latest cosigned checkpoint stays the old one. */
        char msg[OTA_DETAIL_LEN];

        in_txn = false;
        snprintf(msg, sizeof(msg), "%s", det != NULL ? det->msg : "");
        ota_detail_set(det,
                       "%.400s; the entries stay logged, unpublished, as %zu witness(es) "
                       "cosigned them: publish again when the witnesses are back",
                       msg, ncosig);
    }
    if (rc == 0)
        rc = s->ops->checkpoint_put(s, note.data, note.len, det);
    if (rc == 0) {
        rc = s->ops->commit(s, det);
        in_txn = false;
    }
    if (rc != 0) {
        if (in_txn)
            s->ops->rollback(s);
        created_remove(&made, lg); /* invariant 3 */
        goto out;
    }
    rc = write_public(lg, NULL, "checkpoint", note.data, note.len, true, det);
    timing_print("ledger-publish", &t0);
    if (rc == 0)
        fprintf(out, "ledger: checkpoint of size %" PRIu64 " cosigned by %zu witness%s\n",
                edge->size, ncosig, ncosig == 1 ? "" : "es");
out:
    created_free(&made);
    ota_buf_free(&note);
    ota_buf_free(&body);
    free(edge);
    free(idx);
    return rc;
}

/* The latest cosigned checkpoint: its body and the note with the log's
 * signature only (re-signed: Ed25519 is deterministic). */
/* The cosigned checkpoint stored last: its note bytes in stored, parsed
 * into *parsed (caller frees) and cp. */
static int stored_checkpoint(struct ledger *lg, struct ota_checkpoint *cp, struct ota_buf *stored,
                             struct ota_note **parsed, struct ota_detail *det)
{
    int rc = lg->store->ops->checkpoint_get(lg->store, stored, det);

    *parsed = NULL;
    if (rc == OTA_ERR_NOT_FOUND)
        ota_detail_set(det, "%s: nothing logged yet (repo publish)", lg->dir);
    if (rc == 0)
        rc = ota_note_parse(parsed, stored->data, stored->len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(cp, (*parsed)->text, (*parsed)->text_len, det);
    return rc;
}

/* As stored_checkpoint, plus the checkpoint freshly signed by the log key
 * alone in note (what a witness is sent). */
static int current_checkpoint(struct ledger *lg, struct ota_checkpoint *cp, struct ota_buf *note,
                              struct ota_buf *stored, struct ota_detail *det)
{
    struct ota_note *parsed = NULL;
    int rc = stored_checkpoint(lg, cp, stored, &parsed, det);

    if (rc == 0)
        rc = ota_buf_append(note, parsed->text, parsed->text_len);
    if (rc == 0)
        rc = ota_buf_append(note, "\n", 1);
    if (rc == 0)
        rc = ota_note_sign(note, parsed->text, parsed->text_len, lg->key, det);
    ota_note_free(parsed);
    return rc;
}

int ledger_refresh(struct ledger *lg, const struct ota_tlog_policy *pol, FILE *out,
                   struct ota_detail *det)
{
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    struct ota_buf note;
    struct ota_buf stored;
    const struct ota_tlog_policy *pols[1] = {pol};
    size_t ncosig = 0;
    int rc = cp == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&note, NOTE_MAX);
    ota_buf_init(&stored, NOTE_MAX);
    if (rc == 0)
        rc = current_checkpoint(lg, cp, &note, &stored, det);
    if (rc == 0)
        rc = lg->store->ops->begin(lg->store, det);
    if (rc == 0) {
        rc = collect(lg, &note, cp->size, pols, 1, &ncosig, det);
        if (rc == 0)
            rc = lg->store->ops->checkpoint_put(lg->store, note.data, note.len, det);
        if (rc == 0)
            rc = lg->store->ops->commit(lg->store, det);
        else
            lg->store->ops->rollback(lg->store);
    }
    if (rc == 0)
        rc = write_public(lg, NULL, "checkpoint", note.data, note.len, true, det);
    if (rc == 0)
        fprintf(out, "ledger: checkpoint of size %" PRIu64 " cosigned again by %zu witness%s\n",
                cp->size, ncosig, ncosig == 1 ? "" : "es");
    ota_buf_free(&note);
    ota_buf_free(&stored);
    free(cp);
    return rc;
}

/* ------------------------------------------------------------------- proofs */

int ledger_proof_index(struct ledger *lg, struct ota_buf *out, uint64_t index,
                       struct ota_detail *det)
{
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    struct ota_merkle_proof *proof = calloc(1, sizeof(*proof));
    struct ota_tiles_slot *slots = calloc(CACHE_TILES, sizeof(*slots));
    struct ota_tiles_source *ts = calloc(1, sizeof(*ts));
    struct ota_tiles_reader reader;
    struct ota_buf stored;
    struct ota_note *parsed = NULL;
    int rc = cp == NULL || proof == NULL || slots == NULL || ts == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&stored, NOTE_MAX);
    if (rc == 0)
        rc = stored_checkpoint(lg, cp, &stored, &parsed, det);
    if (rc == 0 && index >= cp->size) {
        ota_detail_set(det, "index %" PRIu64 " is not below the checkpoint size %" PRIu64, index,
                       cp->size);
        rc = OTA_ERR_NOT_FOUND;
    }
    ota_log_store_tiles_reader(&reader, lg->store);
    if (rc == 0)
        rc = ota_tiles_source_init(ts, cp->size, &reader, slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_merkle_prove_inclusion(proof, index, cp->size, &ts->src, det);
    if (rc == 0)
        rc = ota_tlog_proof_format(out, NULL, 0, index,
                                   (const uint8_t(*)[OTA_TLOG_PROOF_HASH_LEN])proof->hash,
                                   proof->count, stored.data, stored.len, det);
    ota_note_free(parsed);
    ota_buf_free(&stored);
    free(cp);
    free(proof);
    free(slots);
    free(ts);
    return rc;
}

int ledger_proof_from(struct ledger *lg, struct ota_buf *out, uint64_t from, struct ota_detail *det)
{
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    struct ota_merkle_proof *proof = calloc(1, sizeof(*proof));
    struct ota_tiles_slot *slots = calloc(CACHE_TILES, sizeof(*slots));
    struct ota_tiles_source *ts = calloc(1, sizeof(*ts));
    struct ota_tiles_reader reader;
    struct ota_buf note;
    struct ota_buf stored;
    int rc = cp == NULL || proof == NULL || slots == NULL || ts == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&note, NOTE_MAX);
    ota_buf_init(&stored, NOTE_MAX);
    if (rc == 0)
        rc = current_checkpoint(lg, cp, &note, &stored, det);
    if (rc == 0 && from > cp->size) {
        ota_detail_set(det, "--from %" PRIu64 " is beyond the checkpoint size %" PRIu64, from,
                       cp->size);
        rc = OTA_ERR_NOT_FOUND;
    }
    ota_log_store_tiles_reader(&reader, lg->store);
    if (rc == 0)
        rc = ota_tiles_source_init(ts, cp->size, &reader, slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_merkle_prove_consistency(proof, from, cp->size, &ts->src, det);
    if (rc == 0)
        rc = ota_tlog_witness_body_format(out, from,
                                          (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof->hash,
                                          proof->count, (const char *)note.data, note.len);
    ota_buf_free(&note);
    ota_buf_free(&stored);
    free(cp);
    free(proof);
    free(slots);
    free(ts);
    return rc;
}

/* ------------------------------------------------------------ root policy */

/* "http://" or "https://" (scheme case-insensitive, RFC 3986) and a host. */
static bool url_scheme_ok(const char *url)
{
    size_t n = strncasecmp(url, "http://", 7) == 0    ? 7
               : strncasecmp(url, "https://", 8) == 0 ? 8
                                                      : 0;

    return n > 0 && url[n] != '\0' && url[n] != '/';
}

int ledger_witness_parse(struct ledger_witness *w, const char *arg, struct ota_detail *det)
{
    const char *eq = strchr(arg, '=');
    const char *at = eq != NULL ? strchr(eq, '@') : NULL;
    struct ota_note_verifier v;
    size_t nlen;
    size_t vlen;

    memset(w, 0, sizeof(*w));
    if (eq == NULL || at == NULL || eq == arg || at == eq + 1 || at[1] == '\0') {
        ota_detail_set(det, "--witness %s: expected NAME=VKEY@URL", arg);
        return CLI_ERR_USAGE;
    }
    nlen = (size_t)(eq - arg);
    vlen = (size_t)(at - eq - 1);
    if (nlen > OTA_TLOG_POLICY_MAX_NAME || vlen >= sizeof(w->vkey) ||
        strlen(at + 1) > OTA_TLOG_POLICY_MAX_URL || strpbrk(arg, " \t\n") != NULL ||
        (nlen == 4 && memcmp(arg, "none", 4) == 0) ||
        (nlen == 9 && memcmp(arg, "witnesses", 9) == 0)) {
        ota_detail_set(det, "--witness %s: name, key or URL too long, a space, or a reserved name",
                       arg);
        return CLI_ERR_USAGE;
    }
    if (ota_note_verifier_parse(&v, eq + 1, vlen, det) != 0 || v.type != OTA_NOTE_TYPE_COSIG_V1) {
        ota_detail_set(det,
                       "--witness %s: VKEY is not a cosignature/v1 verifier key (as printed "
                       "by otachain-witness --init)",
                       arg);
        return CLI_ERR_USAGE;
    }
    /* Publish can only post to http(s) (tlog-witness over HTTP): refuse any
     * other scheme now rather than at the first publish. */
    if (!url_scheme_ok(at + 1)) {
        ota_detail_set(det,
                       "--witness %.*s: URL '%s' must start with http:// or https:// followed "
                       "by a host (the witness's base URL; publish posts to URL/add-checkpoint)",
                       (int)nlen, arg, at + 1);
        return CLI_ERR_USAGE;
    }
    memcpy(w->name, arg, nlen);
    memcpy(w->vkey, eq + 1, vlen);
    snprintf(w->url, sizeof(w->url), "%s", at + 1);
    return 0;
}

/* Refuses two witnesses with one key: the quorum would count one signer
 * twice (and the policy parser refuses it anyway, as a malformed policy). */
static int witness_keys_distinct(const struct ledger_witness *ws, size_t nw, struct ota_detail *det)
{
    struct ota_note_verifier *v = calloc(nw > 0 ? nw : 1, sizeof(*v));
    int rc = v == NULL ? OTA_ERR_NOMEM : 0;

    for (size_t i = 0; rc == 0 && i < nw; i++) {
        rc = ota_note_verifier_parse(&v[i], ws[i].vkey, strlen(ws[i].vkey), det);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (memcmp(v[i].pub, v[j].pub, sizeof(v[i].pub)) == 0 ||
                (v[i].key_id == v[j].key_id && v[i].name_len == v[j].name_len &&
                 memcmp(v[i].name, v[j].name, v[i].name_len) == 0)) {
                ota_detail_set(det,
                               "witness %s: the same key (%s) as witness %s; each witness "
                               "needs its own key (otachain-witness --init)",
                               ws[i].name, v[i].name, ws[j].name);
                rc = CLI_ERR_USAGE;
            }
        }
    }
    free(v);
    return rc;
}

int ledger_json(json_t **out, const char *origin, const char *log_vkey,
                const struct ledger_witness *ws, size_t nw, uint64_t quorum, int64_t max_age,
                struct ota_detail *det)
{
    json_t *lines = json_array();
    json_t *obj = NULL;
    struct ota_tlog_policy *check = NULL;
    struct ota_buf b;
    int rc = lines == NULL ? OTA_ERR_NOMEM : 0;

    *out = NULL;
    ota_buf_init(&b, OTA_TLOG_POLICY_MAX_LINE);
    if (quorum > nw) {
        ota_detail_set(det, "--witness-quorum %" PRIu64 ": only %zu witness(es)", quorum, nw);
        rc = CLI_ERR_USAGE;
    }
    if (rc == 0)
        rc = witness_keys_distinct(ws, nw, det);
    if (rc == 0)
        rc = ota_buf_printf(&b, "log %s", log_vkey);
    if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
        rc = OTA_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        b.len = 0;
        rc = ota_buf_printf(&b, "witness %s %s %s", ws[i].name, ws[i].vkey, ws[i].url);
        if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0 && nw > 0) {
        b.len = 0;
        rc = ota_buf_printf(&b, "group witnesses %" PRIu64, quorum == 0 ? (uint64_t)nw : quorum);
        for (size_t i = 0; rc == 0 && i < nw; i++)
            rc = ota_buf_printf(&b, " %s", ws[i].name);
        if (rc == 0 && json_array_append_new(lines, json_string((const char *)b.data)) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0 &&
        json_array_append_new(lines, json_string(nw > 0 ? "quorum witnesses" : "quorum none")) != 0)
        rc = OTA_ERR_NOMEM;
    if (rc == 0) {
        obj = json_pack("{s:s,s:O,s:I}", "origin", origin, "policy", lines, "max_age",
                        (json_int_t)max_age);
        rc = obj == NULL ? OTA_ERR_NOMEM : 0;
    }
    if (rc == 0)
        rc = ota_tlog_policy_from_ledger(&check, obj, det);
    if (rc == 0)
        *out = obj;
    else
        json_decref(obj);
    ota_tlog_policy_free(check);
    json_decref(lines);
    ota_buf_free(&b);
    return rc;
}

int ledger_rotate_json(json_t *sp, const struct ledger_witness *add, size_t nadd,
                       const char *const *rm, size_t nrm, const char *quorum_arg,
                       struct ota_detail *det)
{
    json_t *old = json_object_get(sp, "x-otachain-ledger");
    struct ota_tlog_policy *p = NULL;
    struct ledger_witness *ws = NULL;
    char logv[OTA_NOTE_VKEY_SIZE];
    json_t *obj = NULL;
    size_t nw = 0;
    uint64_t quorum = 0;
    int64_t max_age = LEDGER_DEFAULT_MAX_AGE;
    int rc;

    if (old == NULL) {
        ota_detail_set(det, "the root carries no ledger (x-otachain-ledger)");
        return OTA_ERR_NOT_FOUND;
    }
    rc = ota_tlog_policy_from_ledger(&p, old, det);
    if (rc != 0)
        return rc;
    ws = calloc(OTA_TLOG_POLICY_MAX_WITNESSES + 1, sizeof(*ws));
    if (ws == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    if (json_object_get(old, "max_age") != NULL)
        max_age = (int64_t)json_integer_value(json_object_get(old, "max_age"));
    ota_note_verifier_format(logv, &p->logs[0].key);
    for (size_t i = 0; i < p->nwitnesses; i++) {
        bool drop = false;

        for (size_t j = 0; j < nrm; j++)
            drop = drop || strcmp(rm[j], p->witnesses[i].name) == 0;
        if (drop)
            continue;
        snprintf(ws[nw].name, sizeof(ws[nw].name), "%s", p->witnesses[i].name);
        ota_note_verifier_format(ws[nw].vkey, &p->witnesses[i].key);
        snprintf(ws[nw].url, sizeof(ws[nw].url), "%s",
                 p->witnesses[i].url != NULL ? p->witnesses[i].url : "");
        nw++;
    }
    for (size_t j = 0; j < nrm; j++) {
        if (ota_tlog_policy_witness_index(p, rm[j], strlen(rm[j])) < 0) {
            ota_detail_set(det, "--remove-witness %s: not a witness of the ledger policy", rm[j]);
            rc = CLI_ERR_USAGE;
            goto out;
        }
    }
    for (size_t j = 0; j < nadd; j++) {
        for (size_t i = 0; i < nw; i++) {
            if (strcmp(ws[i].name, add[j].name) == 0) {
                ota_detail_set(det, "--add-witness %s: already a witness", add[j].name);
                rc = CLI_ERR_USAGE;
                goto out;
            }
        }
        if (nw >= OTA_TLOG_POLICY_MAX_WITNESSES) {
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        ws[nw++] = add[j];
    }
    if (quorum_arg != NULL) {
        if (cli_parse_u64(&quorum, quorum_arg, nw) != 0 || (quorum == 0 && nw > 0)) {
            ota_detail_set(det, "--witness-quorum %s: expected 1 to %zu", quorum_arg, nw);
            rc = CLI_ERR_USAGE;
            goto out;
        }
    } else if (!p->quorum_none && p->quorum.group &&
               p->groups[p->quorum.index].threshold < p->groups[p->quorum.index].nmembers) {
        quorum = p->groups[p->quorum.index].threshold; /* else: all */
        if (quorum > nw) {
            ota_detail_set(det,
                           "the quorum of %" PRIu64 " exceeds the %zu witnesses left: give "
                           "--witness-quorum",
                           quorum, nw);
            rc = CLI_ERR_USAGE;
            goto out;
        }
    }
    rc = ledger_json(&obj, p->origin, logv, ws, nw, quorum, max_age, det);
    if (rc == 0 && json_object_set_new(sp, "x-otachain-ledger", obj) != 0)
        rc = OTA_ERR_NOMEM;
out:
    ota_tlog_policy_free(p);
    free(ws);
    return rc;
}
