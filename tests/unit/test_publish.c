/* Unit tests for publish.c (and repo.c): publish and refresh run against
 * an in-memory repository store (the log store is SQLite ":memory:"), an
 * in-memory online signer and scripted witnesses, with no file at all.
 *
 * The scripted witnesses behave like otachain-witness: each keeps the
 * size it last cosigned, answers 409 with it when a request proves from
 * another size, and persists before it answers, so a "timeout after the
 * request was sent" is a witness that holds the new tree without the log
 * knowing. Checked: what becomes public and when (nothing before the
 * quorum), that a tree a witness may hold is kept and extended by the
 * next publish, that a tree every witness refused goes, root checkpoints,
 * refresh, and that a second open verifies everything published. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/ledger_policy.h"
#include "otachain/note_sign.h"
#include "otachain/publish.h"
#include "otachain/sign.h"
#include "otachain/tlog_witness.h"
#include "otachain/tuf_sign.h"

#define NOW      1700000000
#define NW       3
#define MAXFILES 512

/* ------------------------------------------------------ in-memory store */

struct mfile {
    char *path;
    uint8_t *data;
    size_t len;
};

struct mstore {
    struct ota_repo_store base;
    size_t n;
    struct mfile f[MAXFILES];
    struct ota_log_store *log;
};

static struct mfile *mfind(struct mstore *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->f[i].path, path) == 0)
            return &m->f[i];
    }
    return NULL;
}

static int m_get(struct ota_repo_store *s, const char *path, struct ota_buf *out,
                 struct ota_detail *det)
{
    struct mfile *f = mfind((struct mstore *)s, path);

    (void)det;
    if (f == NULL)
        return OTA_ERR_NOT_FOUND;
    return ota_buf_append(out, f->data, f->len);
}

static int m_stat(struct ota_repo_store *s, const char *path, bool *exists, uint64_t *len,
                  struct ota_detail *det)
{
    struct mfile *f = mfind((struct mstore *)s, path);

    (void)det;
    *exists = f != NULL;
    *len = f != NULL ? f->len : 0;
    return 0;
}

static int m_put(struct ota_repo_store *s, const char *path, const void *data, size_t len,
                 struct ota_detail *det)
{
    struct mstore *m = (struct mstore *)s;
    struct mfile *f = mfind(m, path);

    (void)det;
    assert_true(ota_repo_path_valid(path));
    if (f == NULL) {
        assert_true(m->n < MAXFILES);
        f = &m->f[m->n++];
        f->path = strdup(path);
        assert_non_null(f->path);
    } else {
        free(f->data);
    }
    f->data = malloc(len > 0 ? len : 1);
    assert_non_null(f->data);
    memcpy(f->data, data, len);
    f->len = len;
    return 0;
}

static int m_remove(struct ota_repo_store *s, const char *path, struct ota_detail *det)
{
    struct mstore *m = (struct mstore *)s;
    struct mfile *f = mfind(m, path);

    (void)det;
    if (f == NULL)
        return 0;
    free(f->path);
    free(f->data);
    *f = m->f[--m->n];
    return 0;
}

static int m_move(struct ota_repo_store *s, const char *from, const char *to,
                  struct ota_detail *det)
{
    struct mstore *m = (struct mstore *)s;
    struct mfile *f = mfind(m, from);
    int rc;

    if (f == NULL)
        return OTA_ERR_NOT_FOUND;
    rc = m_put(s, to, f->data, f->len, det);
    return rc != 0 ? rc : m_remove(s, from, det);
}

static int m_copy(struct ota_repo_store *s, const char *from, const char *to,
                  const uint8_t *want_sha256, const uint64_t *want_len, struct ota_detail *det)
{
    struct mfile *f = mfind((struct mstore *)s, from);
    uint8_t sha[OTA_SHA256_LEN];

    if (f == NULL)
        return OTA_ERR_NOT_FOUND;
    if (want_len != NULL && *want_len != f->len)
        return OTA_ERR_LENGTH_MISMATCH;
    assert_int_equal(ota_sha256(sha, f->data, f->len), 0);
    if (want_sha256 != NULL && memcmp(sha, want_sha256, OTA_SHA256_LEN) != 0)
        return OTA_ERR_HASH_MISMATCH;
    return m_put(s, to, f->data, f->len, det);
}

static int m_log(struct ota_repo_store *s, struct ota_log_store **out, bool create,
                 struct ota_detail *det)
{
    struct mstore *m = (struct mstore *)s;

    *out = NULL;
    if (m->log == NULL && create && ota_log_store_sqlite_open(&m->log, ":memory:", NULL, det) != 0)
        return OTA_ERR_IO;
    *out = m->log;
    return 0;
}

static void m_close(struct ota_repo_store *s)
{
    struct mstore *m = (struct mstore *)s;

    for (size_t i = 0; i < m->n; i++) {
        free(m->f[i].path);
        free(m->f[i].data);
    }
    ota_log_store_close(m->log);
    free(m);
}

static const struct ota_repo_store_ops mstore_ops = {m_get,  m_stat, m_put, m_remove,
                                                     m_move, m_copy, m_log, m_close};

/* The public files, sorted by path, as one comparable text. */
static char *public_digest(struct mstore *m)
{
    struct ota_buf b;
    const struct mfile *ps[MAXFILES];
    size_t np = 0;

    for (size_t i = 0; i < m->n; i++) {
        if (strncmp(m->f[i].path, "public/", 7) == 0)
            ps[np++] = &m->f[i];
    }
    for (size_t i = 1; i < np; i++) {
        for (size_t j = i; j > 0 && strcmp(ps[j - 1]->path, ps[j]->path) > 0; j--) {
            const struct mfile *t = ps[j];

            ps[j] = ps[j - 1];
            ps[j - 1] = t;
        }
    }
    ota_buf_init(&b, 1u << 24);
    for (size_t i = 0; i < np; i++) {
        uint8_t sha[OTA_SHA256_LEN];
        char hex[OTA_SHA256_HEX_LEN + 1];

        assert_int_equal(ota_sha256(sha, ps[i]->data, ps[i]->len), 0);
        ota_hex_encode(hex, sha, sizeof(sha));
        assert_int_equal(ota_buf_printf(&b, "%s %s\n", ps[i]->path, hex), 0);
    }
    {
        char *out = (char *)ota_buf_steal(&b, NULL);

        return out != NULL ? out : strdup("");
    }
}

static size_t count_prefix(struct mstore *m, const char *prefix)
{
    size_t n = 0;

    for (size_t i = 0; i < m->n; i++)
        n += strncmp(m->f[i].path, prefix, strlen(prefix)) == 0;
    return n;
}

/* ----------------------------------------------------- in-memory signer */

struct msigner {
    struct ota_repo_signer base;
    struct ota_signer *online[OTA_TUF_ROLE_COUNT];
    struct ota_note_signer *log;
    size_t root_live_calls;
};

static int g_have(struct ota_repo_signer *s, enum ota_tuf_role role,
                  const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct msigner *m = (struct msigner *)s;

    (void)det;
    return ota_repo_role_has_key(root, role, ota_signer_keyid(m->online[role])) ? 0
                                                                                : OTA_ERR_NOT_FOUND;
}

static int g_sign(struct ota_repo_signer *s, json_t *doc, enum ota_tuf_role role,
                  const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct msigner *m = (struct msigner *)s;
    int rc = g_have(s, role, root, det);

    return rc != 0 ? rc : ota_tuf_sign(doc, m->online[role]);
}

static int g_log_key(struct ota_repo_signer *s, struct ota_note_verifier *out,
                     struct ota_detail *det)
{
    (void)det;
    ota_note_signer_verifier(out, ((struct msigner *)s)->log);
    return 0;
}

static int g_log_sign(struct ota_repo_signer *s, struct ota_buf *note, const char *text, size_t len,
                      struct ota_detail *det)
{
    return ota_note_sign(note, text, len, ((struct msigner *)s)->log, det);
}

static int g_root_live(struct ota_repo_signer *s, const struct ota_tuf_meta *root,
                       struct ota_detail *det)
{
    (void)root;
    (void)det;
    ((struct msigner *)s)->root_live_calls++;
    return 0;
}

static void g_close(struct ota_repo_signer *s)
{
    (void)s;
}

static const struct ota_repo_signer_ops msigner_ops = {g_have,     g_sign,      g_log_key,
                                                       g_log_sign, g_root_live, g_close};

/* --------------------------------------------------- scripted witnesses */

enum wmode {
    W_OK,      /* checks, persists, cosigns */
    W_TIMEOUT, /* checks, persists, then the answer is lost (timeout) */
    W_DOWN,    /* connection refused: never reached */
    W_REFUSE,  /* 422: the content breaks a rule */
};

struct witness {
    struct ota_note_signer *key;
    uint64_t size; /* what it last cosigned (persisted) */
    enum wmode mode;
    size_t requests;
};

struct fx {
    struct mstore *store;
    struct msigner signer;
    struct ota_signer *root_keys[3];
    struct ota_signer *targets_keys[2];
    struct witness w[NW];
    int64_t now;
};

static int scripted_run(void *ctx, struct ota_witness_round *r, struct ota_detail *det)
{
    struct fx *f = ctx;

    (void)det;
    for (size_t i = 0; i < r->n; i++) {
        struct witness *w = &f->w[r->w[i].pw->name[1] - '0'];
        struct ota_tlog_witness_body b;
        struct ota_note *note = NULL;
        struct ota_checkpoint cp;
        bool retry = true;

        while (retry && ota_witness_round_wants(r, i)) {
            struct ota_buf line;
            char size409[OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1];
            size_t n409;

            retry = false;
            w->requests++;
            if (w->mode == W_DOWN) {
                ota_witness_round_failed(r, i, false, "Couldn't connect to server");
                break;
            }
            assert_int_equal(
                ota_tlog_witness_body_parse(&b, r->w[i].req.data, r->w[i].req.len, NULL), 0);
            if (b.old_size != w->size) {
                n409 = ota_tlog_witness_size_format(size409, w->size);
                ota_witness_round_reply(r, i, 409, size409, n409, &retry);
                continue;
            }
            if (w->mode == W_REFUSE) {
                ota_witness_round_reply(r, i, 422, "validation: refused\n", 20, &retry);
                break;
            }
            assert_int_equal(ota_note_parse(&note, b.note, b.note_len, NULL), 0);
            assert_int_equal(ota_checkpoint_parse(&cp, note->text, note->text_len, NULL), 0);
            w->size = cp.size; /* persisted before answering */
            ota_buf_init(&line, 4096);
            assert_int_equal(
                ota_note_cosign(&line, note->text, note->text_len, (uint64_t)f->now, w->key, NULL),
                0);
            if (w->mode == W_TIMEOUT)
                ota_witness_round_failed(r, i, true, "Timeout was reached");
            else
                ota_witness_round_reply(r, i, 200, line.data, line.len, &retry);
            ota_buf_free(&line);
            ota_note_free(note);
            note = NULL;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- fixture */

static void signer_of(struct ota_signer **out, uint8_t tag)
{
    uint8_t seed[OTA_ED25519_SEED_LEN];

    memset(seed, tag, sizeof(seed));
    assert_int_equal(ota_signer_from_seed(out, seed), 0);
}

static void add_key(json_t *keys, json_t *ids, const struct ota_signer *s)
{
    uint8_t pub[OTA_ED25519_PUB_LEN];

    ota_signer_public(pub, s);
    assert_int_equal(json_object_set_new(keys, ota_signer_keyid(s), ota_tuf_key_object(pub)), 0);
    assert_int_equal(json_array_append_new(ids, json_string(ota_signer_keyid(s))), 0);
}

/* The ledger member with witnesses w[0..nw) (names w0..), quorum q. */
static json_t *ledger_obj(struct fx *f, const int *wi, size_t nw, uint64_t q)
{
    struct ota_ledger_witness ws[NW];
    struct ota_note_verifier v;
    char logv[OTA_NOTE_VKEY_SIZE];
    json_t *obj = NULL;

    for (size_t i = 0; i < nw; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        snprintf(ws[i].name, sizeof(ws[i].name), "w%d", wi[i]);
        ota_note_signer_verifier(&v, f->w[wi[i]].key);
        ota_note_verifier_format(ws[i].vkey, &v);
        snprintf(ws[i].url, sizeof(ws[i].url), "http://w%d.test", wi[i]);
    }
    ota_note_signer_verifier(&v, f->signer.log);
    ota_note_verifier_format(logv, &v);
    assert_int_equal(ota_ledger_json(&obj, "log.test/repo", logv, ws, nw, q, 86400, NULL), 0);
    return obj;
}

/* A root document of version v (root keys 0..2 threshold 2, targets keys
 * threshold 2, the online keys) with the given ledger, signed by the root
 * keys listed in signers. */
static json_t *root_doc(struct fx *f, uint64_t v, json_t *ledger)
{
    json_t *doc = ota_repo_meta_new(OTA_TUF_ROOT, v, f->now + 365 * 86400);
    json_t *sp = json_object_get(doc, "signed");
    json_t *keys = json_object();
    json_t *roles = json_object();
    json_t *ids;

    ids = json_array();
    for (int i = 0; i < 3; i++)
        add_key(keys, ids, f->root_keys[i]);
    json_object_set_new(roles, "root", json_pack("{s:o,s:i}", "keyids", ids, "threshold", 2));
    ids = json_array();
    for (int i = 0; i < 2; i++)
        add_key(keys, ids, f->targets_keys[i]);
    json_object_set_new(roles, "targets", json_pack("{s:o,s:i}", "keyids", ids, "threshold", 2));
    for (int role = OTA_TUF_SNAPSHOT; role <= OTA_TUF_TIMESTAMP; role++) {
        ids = json_array();
        add_key(keys, ids, f->signer.online[role]);
        json_object_set_new(roles, ota_tuf_role_name((enum ota_tuf_role)role),
                            json_pack("{s:o,s:i}", "keyids", ids, "threshold", 1));
    }
    json_object_set_new(sp, "keys", keys);
    json_object_set_new(sp, "roles", roles);
    json_object_set_new(sp, "consistent_snapshot", json_true());
    json_object_set_new(sp, "x-otachain-ledger", ledger);
    return doc;
}

static void sign_doc(json_t *doc, struct ota_signer *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ota_tuf_sign(doc, keys[i]), 0);
}

static void open_repo(struct fx *f, struct ota_repo *r)
{
    struct ota_detail det = {{0}};
    int rc = ota_repo_open(r, &f->store->base, &f->signer.base, f->now, &det);

    if (rc != 0)
        fail_msg("open: %s: %s", ota_errname(rc), det.msg);
}

static int do_publish(struct fx *f, struct ota_publish_result *res, struct ota_detail *det)
{
    struct ota_witness_transport t = {scripted_run, f};
    struct ota_repo r;
    int rc;

    open_repo(f, &r);
    rc = ota_publish(&r, &t, res, det);
    ota_repo_close(&r);
    return rc;
}

static void must_publish(struct fx *f, struct ota_publish_result *res)
{
    struct ota_detail det = {{0}};
    int rc = do_publish(f, res, &det);

    if (rc != 0)
        fail_msg("publish: %s: %s", ota_errname(rc), det.msg);
}

/* A pending targets: the published ones plus a target blob named name. */
static void add_release(struct fx *f, const char *name, const char *content)
{
    struct ota_repo r;
    struct ota_detail det = {{0}};
    uint8_t sha[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    char blob[128];
    json_t *tmap;
    uint64_t v = 0;

    assert_int_equal(ota_sha256(sha, content, strlen(content)), 0);
    ota_hex_encode(hex, sha, sizeof(sha));
    snprintf(blob, sizeof(blob), "blobs/%s", hex);
    assert_int_equal(m_put(&f->store->base, blob, content, strlen(content), NULL), 0);
    open_repo(f, &r);
    assert_int_equal(ota_repo_pending_targets(&r, &det), 0);
    /* A logged, never served version cannot carry other content. */
    assert_int_equal(
        ota_repo_unlogged_version(&r, OTA_TUF_TARGETS, r.pend_targets_md->version, &v, &det), 0);
    json_object_set_new(json_object_get(r.pend_targets, "signed"), "version",
                        json_integer((json_int_t)v));
    tmap = json_object_get(json_object_get(r.pend_targets, "signed"), "targets");
    json_object_set_new(
        tmap, name,
        json_pack("{s:I,s:{s:s}}", "length", (json_int_t)strlen(content), "hashes", "sha256", hex));
    json_array_clear(json_object_get(r.pend_targets, "signatures"));
    sign_doc(r.pend_targets, f->targets_keys, 2);
    assert_int_equal(ota_repo_set_pending(&r, OTA_TUF_TARGETS, r.pend_targets, &det), 0);
    ota_repo_close(&r);
}

static int setup(void **state)
{
    static const int all[NW] = {0, 1, 2};
    struct fx *f = calloc(1, sizeof(*f));
    struct ota_repo r;
    struct ota_detail det = {{0}};
    uint8_t seed[32];
    json_t *root;
    json_t *targets;
    const char *cfg = "{\"format\":1}";

    if (f == NULL)
        return -1;
    f->now = NOW;
    f->store = calloc(1, sizeof(*f->store));
    assert_non_null(f->store);
    f->store->base.ops = &mstore_ops;
    f->signer.base.ops = &msigner_ops;
    signer_of(&f->signer.online[OTA_TUF_SNAPSHOT], 0x51);
    signer_of(&f->signer.online[OTA_TUF_TIMESTAMP], 0x52);
    memset(seed, 0x53, sizeof(seed));
    assert_int_equal(
        ota_note_signer_from_seed(&f->signer.log, "log.test/repo", 13, OTA_NOTE_TYPE_ED25519, seed),
        0);
    for (int i = 0; i < 3; i++)
        signer_of(&f->root_keys[i], (uint8_t)(0x10 + i));
    for (int i = 0; i < 2; i++)
        signer_of(&f->targets_keys[i], (uint8_t)(0x20 + i));
    for (int i = 0; i < NW; i++) {
        char name[16];

        snprintf(name, sizeof(name), "w%d.test", i);
        memset(seed, 0x30 + i, sizeof(seed));
        assert_int_equal(ota_note_signer_from_seed(&f->w[i].key, name, strlen(name),
                                                   OTA_NOTE_TYPE_COSIG_V1, seed),
                         0);
    }
    /* repo.json, pending root v1 (quorum 2 of w0..w2) and targets v1. */
    assert_int_equal(m_put(&f->store->base, "repo.json", cfg, strlen(cfg), NULL), 0);
    root = root_doc(f, 1, ledger_obj(f, all, NW, 2));
    sign_doc(root, f->root_keys, 2);
    targets = ota_repo_meta_new(OTA_TUF_TARGETS, 1, f->now + 90 * 86400);
    json_object_set_new(json_object_get(targets, "signed"), "targets", json_object());
    sign_doc(targets, f->targets_keys, 2);
    memset(&r, 0, sizeof(r));
    open_repo(f, &r);
    assert_int_equal(ota_repo_set_pending(&r, OTA_TUF_ROOT, root, &det), 0);
    assert_int_equal(ota_repo_set_pending(&r, OTA_TUF_TARGETS, targets, &det), 0);
    ota_repo_close(&r);
    json_decref(root);
    json_decref(targets);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    m_close(&f->store->base);
    for (int i = 0; i < OTA_TUF_ROLE_COUNT; i++)
        ota_signer_free(f->signer.online[i]);
    ota_note_signer_free(f->signer.log);
    for (int i = 0; i < 3; i++)
        ota_signer_free(f->root_keys[i]);
    for (int i = 0; i < 2; i++)
        ota_signer_free(f->targets_keys[i]);
    for (int i = 0; i < NW; i++)
        ota_note_signer_free(f->w[i].key);
    free(f);
    return 0;
}

/* The cosigned checkpoint's size and cosigners, as served. */
static uint64_t served_size(struct fx *f, size_t *ncosig)
{
    struct ota_buf b;
    struct ota_note *note = NULL;
    struct ota_checkpoint cp;
    uint64_t size;

    ota_buf_init(&b, 65536);
    assert_int_equal(m_get(&f->store->base, "public/ledger/checkpoint", &b, NULL), 0);
    assert_int_equal(ota_note_parse(&note, b.data, b.len, NULL), 0);
    assert_int_equal(ota_checkpoint_parse(&cp, note->text, note->text_len, NULL), 0);
    size = cp.size;
    if (ncosig != NULL)
        *ncosig = note->nsigs - 1;
    ota_note_free(note);
    ota_buf_free(&b);
    return size;
}

static uint64_t logged_size(struct fx *f)
{
    uint64_t n = 0;

    assert_int_equal(f->store->log->ops->count(f->store->log, &n, NULL), 0);
    return n;
}

/* ---------------------------------------------------------------- tests */

/* The first publish: everything public, verified by a fresh open. */
static void test_first_publish(void **state)
{
    struct fx *f = *state;
    struct ota_publish_result res;
    struct ota_repo r;
    size_t ncosig = 0;

    must_publish(f, &res);
    assert_true(res.ledger);
    assert_int_equal(res.root_version, 1);
    assert_int_equal(res.targets_version, 1);
    assert_int_equal(res.snapshot_version, 1);
    assert_int_equal(res.timestamp_version, 1);
    assert_int_equal(res.checkpoint_size, 3);
    assert_int_equal(res.ncosigned, 3);
    assert_int_equal(served_size(f, &ncosig), 3);
    assert_int_equal(ncosig, 3);
    assert_non_null(mfind(f->store, "public/metadata/1.root.json"));
    assert_non_null(mfind(f->store, "public/metadata/root.json"));
    assert_non_null(mfind(f->store, "public/ledger/index/snapshot/1"));
    assert_non_null(mfind(f->store, "public/ledger/tile/entries/000.p/3"));
    assert_null(mfind(f->store, "pending/root.json"));
    assert_null(mfind(f->store, "pending/targets.json"));
    assert_int_equal(count_prefix(f->store, "public/staging/"), 0);
    /* Re-opening verifies the root chain, pins and signatures. */
    open_repo(f, &r);
    assert_int_equal(r.timestamp->version, 1);
    assert_false(r.interrupted);
    ota_repo_close(&r);
    /* Nothing pending now. */
    {
        struct ota_detail det = {{0}};

        assert_int_equal(do_publish(f, &res, &det), OTA_ERR_NOT_FOUND);
    }
}

/* A witness times out after persisting the new tree and another is down:
 * no quorum, nothing public changes, the tree stays logged; the next
 * publish extends it (the timed-out witness answers 409 with the size it
 * holds and cosigns the proof from there). */
static void test_timeout_keeps_tree(void **state)
{
    struct fx *f = *state;
    struct ota_publish_result res;
    struct ota_detail det = {{0}};
    char *before;
    char *after;
    uint64_t kept;
    int rc;

    must_publish(f, &res);
    add_release(f, "fw-1.img", "firmware one");
    f->w[1].mode = W_TIMEOUT;
    f->w[2].mode = W_DOWN;
    before = public_digest(f->store);
    rc = do_publish(f, &res, &det);
    assert_int_equal(rc, OTA_ERR_QUORUM);
    assert_true(res.kept);
    assert_int_equal(res.ncosigned, 1);
    assert_int_equal(res.nheld, 1);
    assert_non_null(strstr(det.msg, "w1 (Timeout was reached"));
    assert_non_null(strstr(det.msg, "w2 (Couldn't connect"));
    assert_non_null(strstr(det.msg, "stay logged"));
    after = public_digest(f->store);
    assert_string_equal(before, after);
    free(after);
    kept = logged_size(f);
    assert_int_equal(kept, 5);            /* targets v2 + snapshot v2 stay */
    assert_int_equal(f->w[1].size, kept); /* w1 holds it */
    assert_int_equal(served_size(f, NULL), 3);
    assert_non_null(mfind(f->store, "pending/targets.json"));

    /* The witnesses are back: the same pending targets go live on top of
     * the kept tree (snapshot v3: v2 is logged, never served). */
    f->w[1].mode = W_OK;
    f->w[2].mode = W_OK;
    f->w[1].requests = 0;
    must_publish(f, &res);
    assert_int_equal(f->w[1].requests, 2); /* 409, then the retry */
    assert_int_equal(res.targets_version, 2);
    assert_int_equal(res.snapshot_version, 3);
    assert_int_equal(res.checkpoint_size, 6);
    assert_int_equal(logged_size(f), 6);
    assert_int_equal(served_size(f, NULL), 6);
    assert_int_equal(count_prefix(f->store, "public/targets/"), 1); /* <sha256>.fw-1.img */
    /* The never-served snapshot v2 stays staged for validating witnesses. */
    assert_null(mfind(f->store, "public/metadata/2.snapshot.json"));
    assert_non_null(mfind(f->store, "public/staging/metadata/2.snapshot.json"));
    assert_int_equal(count_prefix(f->store, "public/staging/"), 1);
    free(before);
}

/* Every witness refuses definitely (422) or is unreachable: the tree goes
 * (no witness may hold it) and the versions are free again. */
static void test_definite_refusal_drops_tree(void **state)
{
    struct fx *f = *state;
    struct ota_publish_result res;
    struct ota_detail det = {{0}};
    char *before;
    char *after;

    must_publish(f, &res);
    add_release(f, "fw-1.img", "firmware one");
    f->w[0].mode = W_REFUSE;
    f->w[1].mode = W_REFUSE;
    f->w[2].mode = W_DOWN;
    before = public_digest(f->store);
    assert_int_equal(do_publish(f, &res, &det), OTA_ERR_QUORUM);
    assert_false(res.kept);
    assert_int_equal(logged_size(f), 3);
    after = public_digest(f->store);
    assert_string_equal(before, after);
    free(after);
    free(before);
    /* The same versions are logged again, then published. */
    for (int i = 0; i < NW; i++)
        f->w[i].mode = W_OK;
    must_publish(f, &res);
    assert_int_equal(res.targets_version, 2);
    assert_int_equal(res.snapshot_version, 2);
    assert_int_equal(logged_size(f), 5);
}

/* Refresh: the same checkpoint cosigned again (fresh times), a new
 * timestamp; with --snapshot, a new snapshot logged like a publish. */
static void test_refresh(void **state)
{
    struct fx *f = *state;
    struct ota_witness_transport t = {scripted_run, f};
    struct ota_publish_result res;
    struct ota_detail det = {{0}};
    struct ota_repo r;
    int rc;

    must_publish(f, &res);
    f->now += 3600;
    open_repo(f, &r);
    rc = ota_refresh(&r, false, &t, &res, &det);
    ota_repo_close(&r);
    if (rc != 0)
        fail_msg("refresh: %s", det.msg);
    assert_false(res.snapshot_signed);
    assert_int_equal(res.timestamp_version, 2);
    assert_int_equal(res.ncosigned, 3);
    assert_int_equal(logged_size(f), 3);
    open_repo(f, &r);
    rc = ota_refresh(&r, true, &t, &res, &det);
    ota_repo_close(&r);
    if (rc != 0)
        fail_msg("refresh --snapshot: %s", det.msg);
    assert_true(res.snapshot_signed);
    assert_int_equal(res.snapshot_version, 2);
    assert_int_equal(res.timestamp_version, 3);
    assert_int_equal(logged_size(f), 4);
    assert_int_equal(served_size(f, NULL), 4);
    open_repo(f, &r);
    assert_int_equal(r.snapshot->version, 2);
    ota_repo_close(&r);
}

/* A root rotation that changes the witnesses: both quorums, and root v2's
 * checkpoint kept and served before 2.root.json is public. */
static void test_root_rotation_checkpoint(void **state)
{
    static const int new_set[2] = {1, 2};
    struct fx *f = *state;
    struct ota_publish_result res;
    struct ota_detail det = {{0}};
    struct ota_buf rc2;
    struct ota_repo r;
    json_t *root2;

    must_publish(f, &res);
    root2 = root_doc(f, 2, ledger_obj(f, new_set, 2, 2));
    sign_doc(root2, f->root_keys, 2);
    open_repo(f, &r);
    assert_int_equal(ota_repo_set_pending(&r, OTA_TUF_ROOT, root2, &det), 0);
    ota_repo_close(&r);
    json_decref(root2);
    /* w2 down: the old set's 2 of 3 is met, the new set's 2 of 2 is not. */
    f->w[2].mode = W_DOWN;
    assert_int_equal(do_publish(f, &res, &det), OTA_ERR_QUORUM);
    assert_null(mfind(f->store, "public/metadata/2.root.json"));
    assert_null(mfind(f->store, "public/ledger/root-checkpoint/2"));
    f->w[2].mode = W_OK;
    must_publish(f, &res);
    assert_int_equal(res.root_version, 2);
    ota_buf_init(&rc2, 65536);
    assert_int_equal(m_get(&f->store->base, "public/ledger/root-checkpoint/2", &rc2, NULL), 0);
    {
        struct ota_buf cp;

        ota_buf_init(&cp, 65536);
        assert_int_equal(m_get(&f->store->base, "public/ledger/checkpoint", &cp, NULL), 0);
        assert_int_equal(cp.len, rc2.len);
        assert_memory_equal(cp.data, rc2.data, cp.len);
        ota_buf_free(&cp);
    }
    assert_int_equal(f->signer.root_live_calls > 0, 1);
    /* A later publish leaves it as it is. */
    add_release(f, "fw-2.img", "firmware two");
    must_publish(f, &res);
    {
        struct ota_buf again;

        ota_buf_init(&again, 65536);
        assert_int_equal(m_get(&f->store->base, "public/ledger/root-checkpoint/2", &again, NULL),
                         0);
        assert_int_equal(again.len, rc2.len);
        assert_memory_equal(again.data, rc2.data, rc2.len);
        ota_buf_free(&again);
    }
    ota_buf_free(&rc2);
    open_repo(f, &r);
    assert_int_equal(r.root->version, 2);
    ota_repo_close(&r);
}

/* Thresholds and keys are checked before anything is written. */
static void test_threshold_before_anything(void **state)
{
    struct fx *f = *state;
    struct ota_publish_result res;
    struct ota_detail det = {{0}};
    struct ota_repo r;
    char *before = public_digest(f->store);
    char *after;

    open_repo(f, &r);
    json_array_clear(json_object_get(r.pend_targets, "signatures"));
    sign_doc(r.pend_targets, f->targets_keys, 1);
    assert_int_equal(ota_repo_set_pending(&r, OTA_TUF_TARGETS, r.pend_targets, &det), 0);
    ota_repo_close(&r);
    assert_int_equal(do_publish(f, &res, &det), OTA_ERR_THRESHOLD);
    assert_non_null(strstr(det.msg, "1 of 2 required signatures"));
    after = public_digest(f->store);
    assert_string_equal(before, after);
    assert_null(f->store->log);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_keeps_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definite_refusal_drops_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_rotation_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_before_anything, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
