/* Unit tests for witness_round.c: the pure core against a scripted
 * transport (no sockets). Each witness's answer is scripted: 200 with a
 * real cosignature, 409 with a size (retried once from it), 422, 403, a
 * timeout after the request was sent, a lost reply, a refused connection.
 * Checked: the outcome of each, the quorum of every policy, whether the
 * tree may be dropped (never once a witness may hold it), the cosigned
 * note and the message naming who did not cosign. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive_tree.h"
#include "otachain/checkpoint.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_witness.h"
#include "otachain/witness_round.h"

#define NW   4
#define SIZE 7

enum script {
    S_COSIGN,     /* 200 with its cosignature */
    S_COSIGN_BAD, /* 200 with a cosignature by another key */
    S_409_OLD,    /* 409 naming size 3 first, then cosigns the retry */
    S_409_AHEAD,  /* 409 naming a size beyond the tree */
    S_422,
    S_403,
    S_500,
    S_TIMEOUT_SENT, /* timed out after the request was sent */
    S_LOST,         /* the connection dropped before the reply */
    S_REFUSED,      /* connection refused: never sent */
};

struct fx {
    struct ota_note_signer *log;
    struct ota_note_signer *w[NW];
    struct ota_note_signer *stranger;
    struct ota_tlog_policy *pol;
    struct ota_tlog_policy *pol2; /* w2, w3 and a new w4-less set: quorum 2 of 2 */
    uint8_t leaves[SIZE][NH];
    struct nt_store tree;
    struct nt_view view;
    struct ota_merkle_source src;
    struct ota_buf note; /* the checkpoint signed by the log */
    char body[512];      /* the checkpoint body */
    size_t body_len;
};

static void build_policy(struct ota_tlog_policy **out, const char *text)
{
    struct ota_detail det = {{0}};

    if (ota_tlog_policy_parse(out, text, strlen(text), &det) != 0)
        fail_msg("policy: %s", det.msg);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ota_note_verifier v;
    struct ota_checkpoint cp;
    struct ota_buf body, pt;
    char vk[OTA_NOTE_VKEY_SIZE];
    uint8_t seed[32];

    if (f == NULL)
        return -1;
    memset(seed, 1, sizeof(seed));
    if (ota_note_signer_from_seed(&f->log, "log.test", 8, OTA_NOTE_TYPE_ED25519, seed) != 0)
        return -1;
    for (int i = 0; i <= NW; i++) {
        char name[16];

        snprintf(name, sizeof(name), "w%d.test", i);
        memset(seed, 10 + i, sizeof(seed));
        if (ota_note_signer_from_seed(i < NW ? &f->w[i] : &f->stranger, name, strlen(name),
                                      OTA_NOTE_TYPE_COSIG_V1, seed) != 0)
            return -1;
    }
    /* Policy 1: w0..w3, quorum 3. Policy 2: w2, w3, quorum both. */
    ota_buf_init(&pt, 8192);
    ota_note_signer_verifier(&v, f->log);
    ota_note_verifier_format(vk, &v);
    assert_int_equal(ota_buf_printf(&pt, "log %s\n", vk), 0);
    for (int i = 0; i < NW; i++) {
        ota_note_signer_verifier(&v, f->w[i]);
        ota_note_verifier_format(vk, &v);
        assert_int_equal(ota_buf_printf(&pt, "witness w%d %s http://w%d.test/\n", i, vk, i), 0);
    }
    {
        size_t base = pt.len;

        assert_int_equal(ota_buf_printf(&pt, "group g 3 w0 w1 w2 w3\nquorum g\n"), 0);
        build_policy(&f->pol, (const char *)pt.data);
        pt.len = base;
        assert_int_equal(ota_buf_printf(&pt, "group h 2 w2 w3\nquorum h\n"), 0);
        build_policy(&f->pol2, (const char *)pt.data);
    }
    ota_buf_free(&pt);
    /* A tree of SIZE leaves and its checkpoint. */
    for (int i = 0; i < SIZE; i++) {
        char e[16];

        snprintf(e, sizeof(e), "entry %d\n", i);
        nt_leaf(f->leaves[i], e, strlen(e));
    }
    nt_store_build(&f->tree, (const uint8_t(*)[NH])f->leaves, SIZE);
    f->view.s = &f->tree;
    f->view.limit = SIZE;
    f->src.node = nt_view_node;
    f->src.ctx = &f->view;
    memset(&cp, 0, sizeof(cp));
    memcpy(cp.origin, "log.test", 8);
    cp.origin_len = 8;
    cp.size = SIZE;
    nt_mth(cp.root, (const uint8_t(*)[NH])f->leaves, 0, SIZE);
    ota_buf_init(&body, 512);
    assert_int_equal(ota_checkpoint_format(&body, &cp), 0);
    memcpy(f->body, body.data, body.len);
    f->body_len = body.len;
    ota_buf_init(&f->note, 4096);
    assert_int_equal(ota_buf_append(&f->note, body.data, body.len), 0);
    assert_int_equal(ota_buf_append(&f->note, "\n", 1), 0);
    assert_int_equal(ota_note_sign(&f->note, f->body, f->body_len, f->log, NULL), 0);
    ota_buf_free(&body);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_note_signer_free(f->log);
    for (int i = 0; i < NW; i++)
        ota_note_signer_free(f->w[i]);
    ota_note_signer_free(f->stranger);
    ota_tlog_policy_free(f->pol);
    ota_tlog_policy_free(f->pol2);
    nt_store_free(&f->tree);
    ota_buf_free(&f->note);
    free(f);
    return 0;
}

/* What a witness checks of a request: it parses, proves from its old size
 * to SIZE, and carries our note. */
static void check_request(const struct fx *f, const struct ota_witness_slot *w, uint64_t want_old)
{
    struct ota_tlog_witness_body b;
    uint8_t old_root[NH];
    uint8_t root[NH];

    assert_int_equal(ota_tlog_witness_body_parse(&b, w->req.data, w->req.len, NULL), 0);
    assert_int_equal(b.old_size, want_old);
    assert_int_equal(b.note_len, f->note.len);
    assert_memory_equal(b.note, f->note.data, f->note.len);
    nt_mth(root, (const uint8_t(*)[NH])f->leaves, 0, SIZE);
    if (want_old > 0) {
        nt_mth(old_root, (const uint8_t(*)[NH])f->leaves, 0, want_old);
        assert_int_equal(ota_merkle_verify_consistency(want_old, SIZE, old_root, root,
                                                       (const uint8_t(*)[NH])b.proof, b.nproof,
                                                       NULL),
                         0);
    }
}

/* Plays the scripted transport over every witness of r. */
static void drive(const struct fx *f, struct ota_witness_round *r, const enum script *sc)
{
    for (size_t i = 0; i < r->n; i++) {
        int which = r->w[i].pw->name[1] - '0';
        struct ota_buf line;
        bool retry = false;

        if (!ota_witness_round_wants(r, i))
            continue;
        assert_non_null(r->w[i].url);
        check_request(f, &r->w[i], r->w[i].old_size);
        ota_buf_init(&line, 4096);
        switch (sc[which]) {
        case S_COSIGN:
        case S_COSIGN_BAD:
            assert_int_equal(ota_note_cosign(&line, f->body, f->body_len, 1700000000 + which,
                                             sc[which] == S_COSIGN ? f->w[which] : f->stranger,
                                             NULL),
                             0);
            ota_witness_round_reply(r, i, 200, line.data, line.len, &retry);
            assert_false(retry);
            break;
        case S_409_OLD:
            ota_witness_round_reply(r, i, 409, "3\n", 2, &retry);
            assert_true(retry);
            assert_true(ota_witness_round_wants(r, i));
            check_request(f, &r->w[i], 3);
            /* A second 409 is not retried again. */
            assert_int_equal(
                ota_note_cosign(&line, f->body, f->body_len, 1700000100, f->w[which], NULL), 0);
            ota_witness_round_reply(r, i, 200, line.data, line.len, &retry);
            assert_false(retry);
            break;
        case S_409_AHEAD:
            ota_witness_round_reply(r, i, 409, "9\n", 2, &retry);
            assert_false(retry);
            break;
        case S_422:
            ota_witness_round_reply(r, i, 422, "validation: entry 5 (targets v2): below\n", 40,
                                    &retry);
            break;
        case S_403:
            ota_witness_round_reply(r, i, 403, "unknown log key\n", 16, &retry);
            break;
        case S_500:
            ota_witness_round_reply(r, i, 500, "internal\n", 9, &retry);
            break;
        case S_TIMEOUT_SENT:
            ota_witness_round_failed(r, i, true, "Timeout was reached");
            break;
        case S_LOST:
            ota_witness_round_failed(r, i, true, "Connection reset by peer");
            break;
        case S_REFUSED:
            ota_witness_round_failed(r, i, false, "Couldn't connect to server");
            break;
        }
        ota_buf_free(&line);
        assert_false(ota_witness_round_wants(r, i));
    }
}

static struct ota_witness_round *round_new(struct fx *f, bool two)
{
    struct ota_witness_round *r = calloc(1, sizeof(*r));
    const struct ota_tlog_policy *pols[2] = {f->pol, two ? f->pol2 : NULL};

    assert_non_null(r);
    assert_int_equal(ota_witness_round_init(r, &f->note, SIZE, pols, 2, &f->src), 0);
    assert_int_equal(r->n, NW);
    for (size_t i = 0; i < r->n; i++)
        ota_witness_round_known(r, i, i == 0 ? 5 : 0);
    assert_int_equal(ota_witness_round_start(r, NULL), 0);
    return r;
}

static void round_free(struct ota_witness_round *r)
{
    ota_witness_round_free(r);
    free(r);
}

static enum ota_witness_outcome outcome(const struct ota_witness_round *r, int which)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->w[i].pw->name[1] - '0' == which)
            return r->w[i].outcome;
    }
    fail();
    return OTA_WITNESS_PENDING;
}

/* Everyone cosigns: the quorum is met, the note carries four lines. */
static void test_all_cosign(void **state)
{
    static const enum script sc[NW] = {S_COSIGN, S_COSIGN, S_COSIGN, S_COSIGN};
    struct fx *f = *state;
    struct ota_witness_round *r = round_new(f, false);
    struct ota_witness_verdict v;
    struct ota_buf out;
    struct ota_note *note = NULL;

    drive(f, r, sc);
    ota_witness_round_judge(r, &v);
    assert_true(v.met);
    assert_false(v.droppable);
    assert_int_equal(v.ncosigned, 4);
    ota_buf_init(&out, 16384);
    assert_int_equal(ota_buf_append(&out, f->note.data, f->note.len), 0);
    assert_int_equal(ota_witness_round_cosign(r, &out), 0);
    assert_int_equal(ota_note_parse(&note, out.data, out.len, NULL), 0);
    assert_int_equal(note->nsigs, 5);
    ota_note_free(note);
    ota_buf_free(&out);
    round_free(r);
}

/* 200, 409 with a size (retried from it), 422, 403: three cosign; the
 * tree is held by them. */
static void test_mixed_answers(void **state)
{
    static const enum script sc[NW] = {S_COSIGN, S_409_OLD, S_422, S_COSIGN};
    struct fx *f = *state;
    struct ota_witness_round *r = round_new(f, false);
    struct ota_witness_verdict v;
    char msg[512];

    drive(f, r, sc);
    assert_int_equal(outcome(r, 1), OTA_WITNESS_COSIGNED);
    assert_int_equal(outcome(r, 2), OTA_WITNESS_REFUSED);
    ota_witness_round_judge(r, &v);
    assert_true(v.met);
    assert_int_equal(v.ncosigned, 3);
    ota_witness_round_missing(r, msg, sizeof(msg));
    assert_string_equal(msg, "w2 (HTTP 422: validation: entry 5 (targets v2): below)");
    round_free(r);
}

/* Definite refusals only (403, 409 ahead, 422) and an unreachable
 * witness: no quorum, and the tree may be dropped. */
static void test_definite_refusals_droppable(void **state)
{
    static const enum script sc[NW] = {S_403, S_409_AHEAD, S_422, S_REFUSED};
    struct fx *f = *state;
    struct ota_witness_round *r = round_new(f, false);
    struct ota_witness_verdict v;
    char msg[1024];

    drive(f, r, sc);
    assert_int_equal(outcome(r, 0), OTA_WITNESS_REFUSED);
    assert_int_equal(outcome(r, 1), OTA_WITNESS_REFUSED);
    assert_int_equal(outcome(r, 3), OTA_WITNESS_UNSENT);
    ota_witness_round_judge(r, &v);
    assert_false(v.met);
    assert_true(v.droppable);
    assert_int_equal(v.ncosigned, 0);
    ota_witness_round_missing(r, msg, sizeof(msg));
    assert_non_null(strstr(msg, "w0 (HTTP 403: unknown log key)"));
    assert_non_null(strstr(msg, "w1 (HTTP 409: the witness has size 9, beyond the log's)"));
    assert_non_null(strstr(msg, "w3 (Couldn't connect to server)"));
    round_free(r);
}

/* A timeout after sending, a lost reply, a 500, a bad cosignature: none
 * counts toward the quorum, and none lets the tree go (each witness may
 * hold it). */
static void test_maybe_cosigned_keeps_tree(void **state)
{
    static const enum script scs[][NW] = {
        {S_403, S_422, S_409_AHEAD, S_TIMEOUT_SENT},
        {S_403, S_422, S_409_AHEAD, S_LOST},
        {S_403, S_422, S_409_AHEAD, S_500},
        {S_403, S_422, S_409_AHEAD, S_COSIGN_BAD},
    };
    struct fx *f = *state;

    for (size_t k = 0; k < sizeof(scs) / sizeof(scs[0]); k++) {
        struct ota_witness_round *r = round_new(f, false);
        struct ota_witness_verdict v;

        drive(f, r, scs[k]);
        assert_int_equal(outcome(r, 3), OTA_WITNESS_HELD);
        ota_witness_round_judge(r, &v);
        assert_false(v.met);
        assert_false(v.droppable);
        assert_int_equal(v.nheld, 1);
        round_free(r);
    }
    /* Witnesses never answered (the driver stopped): held too. */
    {
        struct ota_witness_round *r = round_new(f, false);
        struct ota_witness_verdict v;

        ota_witness_round_judge(r, &v);
        assert_false(v.droppable);
        assert_int_equal(v.nheld, 4);
        round_free(r);
    }
}

/* Two policies (a witness-set change): both quorums are needed. */
static void test_two_policies(void **state)
{
    static const enum script three_old[NW] = {S_COSIGN, S_COSIGN, S_COSIGN, S_422};
    static const enum script all[NW] = {S_COSIGN, S_COSIGN, S_COSIGN, S_COSIGN};
    struct fx *f = *state;
    struct ota_witness_round *r = round_new(f, true);
    struct ota_witness_verdict v;

    /* Policy 1's 3 of 4 is met, policy 2's w2 and w3 is not. */
    drive(f, r, three_old);
    ota_witness_round_judge(r, &v);
    assert_false(v.met);
    round_free(r);
    r = round_new(f, true);
    drive(f, r, all);
    ota_witness_round_judge(r, &v);
    assert_true(v.met);
    round_free(r);
}

/* No URL, or a recorded size the log cannot prove from: UNSENT at start. */
static void test_unsendable(void **state)
{
    struct fx *f = *state;
    struct ota_witness_round *r = calloc(1, sizeof(*r));
    const struct ota_tlog_policy *pols[1] = {f->pol};
    struct ota_witness_verdict v;

    assert_non_null(r);
    assert_int_equal(ota_witness_round_init(r, &f->note, SIZE, pols, 1, &f->src), 0);
    r->w[0].url = NULL;
    ota_witness_round_known(r, 1, SIZE + 5);
    assert_int_equal(ota_witness_round_start(r, NULL), 0);
    assert_int_equal(r->w[0].outcome, OTA_WITNESS_UNSENT);
    assert_int_equal(r->w[1].outcome, OTA_WITNESS_UNSENT);
    assert_non_null(strstr(r->w[0].why, "no URL"));
    assert_non_null(strstr(r->w[1].why, "cannot prove"));
    assert_false(ota_witness_round_wants(r, 0));
    assert_true(ota_witness_round_wants(r, 2));
    ota_witness_round_judge(r, &v);
    assert_int_equal(v.nheld, 2); /* w2, w3 still pending */
    assert_string_equal(ota_witness_outcome_name(OTA_WITNESS_HELD), "held");
    assert_string_equal(ota_witness_outcome_name(OTA_WITNESS_UNSENT), "unsent");
    round_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_cosign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_definite_refusals_droppable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_cosigned_keeps_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsendable, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
