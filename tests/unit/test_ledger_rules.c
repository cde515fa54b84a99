/* Unit tests for ledger_rules.c: each release rule refuses with its exact
 * error, the state moves only on success, and it survives a JSON round
 * trip. The metadata is built and signed here with fixed keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/ledger_rules.h"
#include "otachain/sign.h"
#include "otachain/tuf_sign.h"

#define NKEYS 6 /* 0-2 root, 3-4 targets, 5 snapshot */

struct fx {
    struct ota_signer *k[NKEYS];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    for (int i = 0; i < NKEYS; i++) {
        uint8_t seed[OTA_ED25519_SEED_LEN];

        memset(seed, 0x40 + i, sizeof(seed));
        if (ota_signer_from_seed(&f->k[i], seed) != 0)
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < NKEYS; i++)
        ota_signer_free(f->k[i]);
    free(f);
    return 0;
}

static json_t *doc_new(const char *type, uint64_t version)
{
    return json_pack("{s:{s:s,s:s,s:I,s:s},s:[]}", "signed", "_type", type, "spec_version",
                     "1.0.31", "version", (json_int_t)version, "expires", "2040-01-01T00:00:00Z",
                     "signatures");
}

static void add_key(json_t *keys, const struct ota_signer *s)
{
    uint8_t pub[OTA_ED25519_PUB_LEN];

    ota_signer_public(pub, s);
    assert_int_equal(json_object_set_new(keys, ota_signer_keyid(s), ota_tuf_key_object(pub)), 0);
}

static json_t *role(const struct fx *f, const int *idx, size_t n, int threshold)
{
    json_t *ids = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(ota_signer_keyid(f->k[idx[i]])));
    return json_pack("{s:o,s:i}", "keyids", ids, "threshold", threshold);
}

/* Root v`version` with root keys root_keys[0..nroot) (threshold 2 when
 * nroot >= 2), targets key 3 (threshold 1) and snapshot key 5, signed by
 * signers[0..nsig). */
static uint8_t *root_file(const struct fx *f, uint64_t version, const int *root_keys, size_t nroot,
                          const int *signers, size_t nsig, size_t *len)
{
    static const int tk[] = {3};
    static const int sk[] = {5};
    json_t *doc = doc_new("root", version);
    json_t *sp = json_object_get(doc, "signed");
    json_t *keys = json_object();
    json_t *roles = json_object();
    char *text;

    for (size_t i = 0; i < nroot; i++)
        add_key(keys, f->k[root_keys[i]]);
    add_key(keys, f->k[3]);
    add_key(keys, f->k[5]);
    json_object_set_new(roles, "root", role(f, root_keys, nroot, nroot >= 2 ? 2 : 1));
    json_object_set_new(roles, "targets", role(f, tk, 1, 1));
    json_object_set_new(roles, "snapshot", role(f, sk, 1, 1));
    json_object_set_new(roles, "timestamp", role(f, sk, 1, 1));
    json_object_set_new(sp, "keys", keys);
    json_object_set_new(sp, "roles", roles);
    json_object_set_new(sp, "consistent_snapshot", json_true());
    for (size_t i = 0; i < nsig; i++)
        assert_int_equal(ota_tuf_sign(doc, f->k[signers[i]]), 0);
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    *len = strlen(text);
    return (uint8_t *)text;
}

static uint8_t *targets_file(const struct fx *f, uint64_t version, int signer, size_t *len)
{
    json_t *doc = doc_new("targets", version);
    char *text;

    json_object_set_new(json_object_get(doc, "signed"), "targets", json_object());
    if (signer >= 0)
        assert_int_equal(ota_tuf_sign(doc, f->k[signer]), 0);
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    *len = strlen(text);
    return (uint8_t *)text;
}

/* Snapshot pinning targets `tv` (with length and hash of tfile when given). */
static uint8_t *snapshot_file(const struct fx *f, uint64_t version, uint64_t tv,
                              const uint8_t *tfile, size_t tlen, int signer, size_t *len)
{
    json_t *doc = doc_new("snapshot", version);
    json_t *mf = json_pack("{s:I}", "version", (json_int_t)tv);
    char *text;

    if (tfile != NULL) {
        uint8_t sha[OTA_SHA256_LEN];
        char hex[OTA_SHA256_HEX_LEN + 1];

        assert_int_equal(ota_sha256(sha, tfile, tlen), 0);
        ota_hex_encode(hex, sha, sizeof(sha));
        json_object_set_new(mf, "length", json_integer((json_int_t)tlen));
        json_object_set_new(mf, "hashes", json_pack("{s:s}", "sha256", hex));
    }
    json_object_set_new(json_object_get(doc, "signed"), "meta",
                        json_pack("{s:o}", "targets.json", mf));
    assert_int_equal(ota_tuf_sign(doc, f->k[signer]), 0);
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    *len = strlen(text);
    return (uint8_t *)text;
}

static void entry_of(struct ota_ledger_entry *e, enum ota_tuf_role role, uint64_t version,
                     const uint8_t *file, size_t len)
{
    assert_int_equal(ota_ledger_entry_of_file(e, role, version, file, len), 0);
}

/* The good history: root 1 (anchor), targets 1, snapshot 1, root 2,
 * targets 2, snapshot 2. Returns the state after it; anchor out. */
struct history {
    uint8_t *anchor;
    size_t anchor_len;
    uint8_t *t2;
    size_t t2_len;
    struct ota_ledger_rules st;
};

static void good_history(const struct fx *f, struct history *h)
{
    static const int rk[] = {0, 1, 2};
    static const int rs[] = {0, 1};
    struct ota_detail det = {{0}};
    struct ota_ledger_entry e;
    uint8_t *t1, *s1, *r2, *s2;
    size_t t1l, s1l, r2l, s2l;
    bool need = true;

    memset(h, 0, sizeof(*h));
    h->anchor = root_file(f, 1, rk, 3, rs, 2, &h->anchor_len);
    t1 = targets_file(f, 1, 3, &t1l);
    s1 = snapshot_file(f, 1, 1, t1, t1l, 5, &s1l);
    r2 = root_file(f, 2, rk, 3, rs, 2, &r2l);
    h->t2 = targets_file(f, 2, 3, &h->t2_len);
    s2 = snapshot_file(f, 2, 2, h->t2, h->t2_len, 5, &s2l);

    entry_of(&e, OTA_TUF_ROOT, 1, h->anchor, h->anchor_len);
    assert_int_equal(ota_ledger_rules_precheck(&h->st, 0, &e, &need, &det), 0);
    assert_false(need); /* the anchor is the file */
    assert_int_equal(ota_ledger_rules_check(&h->st, 0, &e, NULL, 0, h->anchor, h->anchor_len, &det),
                     0);
    entry_of(&e, OTA_TUF_TARGETS, 1, t1, t1l);
    assert_int_equal(ota_ledger_rules_check(&h->st, 1, &e, t1, t1l, h->anchor, h->anchor_len, &det),
                     0);
    entry_of(&e, OTA_TUF_SNAPSHOT, 1, s1, s1l);
    assert_int_equal(ota_ledger_rules_check(&h->st, 2, &e, s1, s1l, h->anchor, h->anchor_len, &det),
                     0);
    entry_of(&e, OTA_TUF_ROOT, 2, r2, r2l);
    assert_int_equal(ota_ledger_rules_precheck(&h->st, 3, &e, &need, &det), 0);
    assert_true(need);
    assert_int_equal(ota_ledger_rules_check(&h->st, 3, &e, r2, r2l, h->anchor, h->anchor_len, &det),
                     0);
    entry_of(&e, OTA_TUF_TARGETS, 2, h->t2, h->t2_len);
    assert_int_equal(
        ota_ledger_rules_check(&h->st, 4, &e, h->t2, h->t2_len, h->anchor, h->anchor_len, &det), 0);
    entry_of(&e, OTA_TUF_SNAPSHOT, 2, s2, s2l);
    assert_int_equal(ota_ledger_rules_check(&h->st, 5, &e, s2, s2l, h->anchor, h->anchor_len, &det),
                     0);
    assert_int_equal(h->st.version[OTA_TUF_ROOT], 2);
    assert_int_equal(h->st.version[OTA_TUF_TARGETS], 2);
    assert_int_equal(h->st.version[OTA_TUF_SNAPSHOT], 2);
    assert_true(h->st.has_targets);
    assert_int_equal(h->st.targets_length, h->t2_len);
    assert_int_equal(h->st.root_len, r2l);
    assert_memory_equal(h->st.root, r2, r2l);
    free(t1);
    free(s1);
    free(r2);
    free(s2);
}

static void history_free(struct history *h)
{
    free(h->anchor);
    free(h->t2);
    ota_ledger_rules_free(&h->st);
}

/* Checks (role, version, file) against a copy of h's state: want the
 * error and a detail containing why; the state unchanged. */
static void refused(const struct history *h, enum ota_tuf_role role, uint64_t version,
                    const uint8_t *file, size_t len, const struct ota_ledger_entry *forced,
                    int want, const char *why)
{
    struct ota_ledger_rules st;
    struct ota_detail det = {{0}};
    struct ota_ledger_entry e;
    int rc;

    assert_int_equal(ota_ledger_rules_copy(&st, &h->st), 0);
    if (forced != NULL)
        e = *forced;
    else
        entry_of(&e, role, version, file, len);
    rc = ota_ledger_rules_check(&st, 9, &e, file, len, h->anchor, h->anchor_len, &det);
    if (rc != want)
        fail_msg("want %s, got %s: %s", ota_errname(want), ota_errname(rc), det.msg);
    assert_true(ota_ledger_rules_refused(rc));
    if (strstr(det.msg, why) == NULL)
        fail_msg("detail '%s' lacks '%s'", det.msg, why);
    assert_non_null(strstr(det.msg, "entry 9 ("));
    assert_memory_equal(st.version, h->st.version, sizeof(st.version));
    assert_int_equal(st.root_len, h->st.root_len);
    assert_memory_equal(st.root, h->st.root, st.root_len);
    ota_ledger_rules_free(&st);
}

static void test_good_history(void **state)
{
    struct history h;

    good_history(*state, &h);
    history_free(&h);
}

/* R1: the file is the one the record names. */
static void test_r1_file(void **state)
{
    const struct fx *f = *state;
    struct history h;
    struct ota_ledger_entry e;
    uint8_t *t3, *t3b;
    size_t l, lb;

    good_history(f, &h);
    t3 = targets_file(f, 3, 3, &l);
    t3b = targets_file(f, 4, 3, &lb);
    entry_of(&e, OTA_TUF_TARGETS, 3, t3, l);
    e.length++;
    refused(&h, 0, 0, t3, l, &e, OTA_ERR_LENGTH_MISMATCH, "the log says");
    entry_of(&e, OTA_TUF_TARGETS, 3, t3, l);
    e.sha256[0] ^= 1;
    refused(&h, 0, 0, t3, l, &e, OTA_ERR_HASH_MISMATCH, "logged SHA-256");
    /* Version 4 inside, logged as 3. */
    refused(&h, OTA_TUF_TARGETS, 3, t3b, lb, NULL, OTA_ERR_VERSION_MISMATCH, "version 4 inside");
    /* Not metadata of the role. */
    refused(&h, OTA_TUF_SNAPSHOT, 3, t3, l, NULL, OTA_ERR_WRONG_TYPE, "not valid metadata");
    free(t3);
    free(t3b);
    history_free(&h);
}

/* R2: versions only increase; roots by exactly one. */
static void test_r2_versions(void **state)
{
    static const int rk[] = {0, 1, 2};
    static const int rs[] = {0, 1};
    const struct fx *f = *state;
    struct history h;
    uint8_t *t, *r;
    size_t l, rl;

    good_history(f, &h);
    t = targets_file(f, 2, 3, &l);
    refused(&h, OTA_TUF_TARGETS, 2, t, l, NULL, OTA_ERR_ROLLBACK, "versions only increase");
    free(t);
    r = root_file(f, 4, rk, 3, rs, 2, &rl);
    refused(&h, OTA_TUF_ROOT, 4, r, rl, NULL, OTA_ERR_ROLLBACK, "go up by exactly one");
    free(r);
    r = root_file(f, 2, rk, 3, rs, 2, &rl);
    refused(&h, OTA_TUF_ROOT, 2, r, rl, NULL, OTA_ERR_ROLLBACK, "root versions only increase");
    free(r);
    history_free(&h);
}

/* R3: the anchor first; every root under the old and its own threshold. */
static void test_r3_roots(void **state)
{
    static const int rk[] = {0, 1, 2};
    static const int newk[] = {0, 3, 4}; /* keys 3 and 4 replace 1 and 2 */
    static const int one[] = {0};
    static const int old_only[] = {0, 1};
    static const int new_only[] = {3, 4};
    const struct fx *f = *state;
    struct history h;
    struct ota_ledger_rules empty;
    struct ota_ledger_entry e;
    struct ota_detail det = {{0}};
    uint8_t *r, *other;
    size_t rl, ol;

    good_history(f, &h);
    r = root_file(f, 3, rk, 3, one, 1, &rl);
    refused(&h, OTA_TUF_ROOT, 3, r, rl, NULL, OTA_ERR_THRESHOLD,
            "not signed by the root threshold of the previous root");
    free(r);
    r = root_file(f, 3, newk, 3, old_only, 2, &rl);
    refused(&h, OTA_TUF_ROOT, 3, r, rl, NULL, OTA_ERR_THRESHOLD,
            "not signed by its own root threshold");
    free(r);
    r = root_file(f, 3, newk, 3, new_only, 2, &rl);
    refused(&h, OTA_TUF_ROOT, 3, r, rl, NULL, OTA_ERR_THRESHOLD,
            "not signed by the root threshold of the previous root");
    free(r);
    /* A log that does not start at the anchor. */
    memset(&empty, 0, sizeof(empty));
    other = root_file(f, 1, rk, 3, old_only, 1, &ol);
    entry_of(&e, OTA_TUF_ROOT, 1, other, ol);
    assert_int_equal(ota_ledger_rules_check(&empty, 0, &e, other, ol, h.anchor, h.anchor_len, &det),
                     OTA_ERR_HASH_MISMATCH);
    assert_non_null(strstr(det.msg, "not the configured anchor"));
    assert_null(empty.root);
    assert_int_equal(ota_ledger_rules_check(&empty, 0, &e, other, ol, NULL, 0, &det),
                     OTA_ERR_INVALID_ARG);
    assert_false(ota_ledger_rules_refused(OTA_ERR_INVALID_ARG));
    assert_false(ota_ledger_rules_refused(OTA_ERR_NOMEM));
    free(other);
    history_free(&h);
}

/* R4, R5, R6. */
static void test_r4_r5_r6(void **state)
{
    const struct fx *f = *state;
    struct history h;
    struct ota_ledger_rules empty;
    struct ota_ledger_entry e;
    struct ota_detail det = {{0}};
    uint8_t *t, *s;
    size_t tl, sl;
    bool need;

    good_history(f, &h);
    /* R4: nothing before the first root. */
    memset(&empty, 0, sizeof(empty));
    t = targets_file(f, 3, 3, &tl);
    entry_of(&e, OTA_TUF_TARGETS, 3, t, tl);
    assert_int_equal(ota_ledger_rules_precheck(&empty, 0, &e, &need, &det),
                     OTA_ERR_NO_TRUSTED_ROOT);
    assert_non_null(strstr(det.msg, "logged before any root"));
    free(t);
    /* R5: targets signed by a root key, not the targets key; unsigned. */
    t = targets_file(f, 3, 0, &tl);
    refused(&h, OTA_TUF_TARGETS, 3, t, tl, NULL, OTA_ERR_THRESHOLD,
            "below the targets threshold of the latest logged root");
    free(t);
    t = targets_file(f, 3, -1, &tl);
    refused(&h, OTA_TUF_TARGETS, 3, t, tl, NULL, OTA_ERR_THRESHOLD, "below the targets threshold");
    free(t);
    s = snapshot_file(f, 3, 2, h.t2, h.t2_len, 3, &sl);
    refused(&h, OTA_TUF_SNAPSHOT, 3, s, sl, NULL, OTA_ERR_THRESHOLD,
            "below the snapshot threshold");
    free(s);
    /* R6: the snapshot pins another targets version, or other bytes. */
    s = snapshot_file(f, 3, 1, NULL, 0, 5, &sl);
    refused(&h, OTA_TUF_SNAPSHOT, 3, s, sl, NULL, OTA_ERR_VERSION_MISMATCH,
            "does not pin the latest logged targets");
    free(s);
    t = targets_file(f, 9, 3, &tl);
    s = snapshot_file(f, 3, 2, t, tl, 5, &sl);
    refused(&h, OTA_TUF_SNAPSHOT, 3, s, sl, NULL, OTA_ERR_VERSION_MISMATCH,
            "does not pin the latest logged targets");
    free(s);
    free(t);
    /* Pinning the version alone is enough. */
    s = snapshot_file(f, 3, 2, NULL, 0, 5, &sl);
    entry_of(&e, OTA_TUF_SNAPSHOT, 3, s, sl);
    assert_int_equal(ota_ledger_rules_check(&h.st, 6, &e, s, sl, h.anchor, h.anchor_len, &det), 0);
    free(s);
    history_free(&h);
}

/* The state round-trips through JSON; inconsistent JSON is refused. */
static void test_json(void **state)
{
    const struct fx *f = *state;
    struct history h;
    struct ota_ledger_rules back;
    struct ota_detail det = {{0}};
    json_t *obj = json_object();
    json_t *v;

    good_history(f, &h);
    assert_int_equal(ota_ledger_rules_to_json(obj, &h.st), 0);
    assert_int_equal(ota_ledger_rules_from_json(&back, obj, &det), 0);
    assert_memory_equal(back.version, h.st.version, sizeof(back.version));
    assert_int_equal(back.root_len, h.st.root_len);
    assert_memory_equal(back.root, h.st.root, back.root_len);
    assert_true(back.has_targets);
    assert_memory_equal(back.targets_sha256, h.st.targets_sha256, OTA_SHA256_LEN);
    ota_ledger_rules_free(&back);
    /* versions.root says 3, the root is v2. */
    v = json_object_get(obj, "versions");
    json_object_set_new(v, "root", json_integer(3));
    assert_int_equal(ota_ledger_rules_from_json(&back, obj, &det), OTA_ERR_FORMAT);
    assert_null(back.root);
    json_object_set_new(v, "root", json_integer(2));
    json_object_set_new(obj, "targets", json_null());
    assert_int_equal(ota_ledger_rules_from_json(&back, obj, &det), OTA_ERR_FORMAT);
    assert_non_null(strstr(det.msg, "targets"));
    /* The empty state. */
    json_decref(obj);
    obj = json_object();
    memset(&back, 0, sizeof(back));
    assert_int_equal(ota_ledger_rules_to_json(obj, &back), 0);
    assert_int_equal(ota_ledger_rules_from_json(&back, obj, &det), 0);
    assert_null(back.root);
    assert_false(back.has_targets);
    json_decref(obj);
    history_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r1_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r2_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r3_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_r4_r5_r6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
