/* Unit tests for lib/tuf.c and lib/tuf_sign.c.
 *
 * Documents are built with jansson, signed with fixed-seed keys, dumped and
 * parsed back. Every parse rule of tuf.h has a negative case asserting its
 * exact error: the table `cases` below mutates one field of a valid,
 * signed document (a JSON Pointer and a new value, or NULL to delete) and
 * each row runs as its own cmocka test. Thresholds, keyid checks, the
 * known-answer vector (OTA_VECTORS/README.md), time parsing and signature
 * merging have tests of their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/sign.h"
#include "otachain/tuf.h"
#include "otachain/tuf_sign.h"

#define NKEYS      6
#define EXPIRES    "2030-01-01T00:00:00Z"
#define EXPIRES_T  1893456000
#define TARGET     "fw/1.0.0/app.img"
#define TARGET_PTR "fw~11.0.0~1app.img" /* TARGET as a JSON Pointer token */

/* Fixed test keys K0..K5 (seed i = 32 bytes of 0x11 * (i + 1)), made once
 * by the group setup. */
static struct ota_signer *keys[NKEYS];
static char pubhex[NKEYS][2 * OTA_ED25519_PUB_LEN + 1];
/* sha256("abc") */
static const char *const HASH_ABC =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < NKEYS; i++) {
        uint8_t seed[OTA_ED25519_SEED_LEN];
        uint8_t pub[OTA_ED25519_PUB_LEN];
        memset(seed, 0x11 * (i + 1), sizeof(seed));
        if (ota_signer_from_seed(&keys[i], seed) != 0)
            return -1;
        ota_signer_public(pub, keys[i]);
        ota_hex_encode(pubhex[i], pub, sizeof(pub));
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NKEYS; i++)
        ota_signer_free(keys[i]);
    return 0;
}

static const char *kid(int i)
{
    return ota_signer_keyid(keys[i]);
}

/* ---- building documents ---------------------------------------------- */

static json_t *wrap(json_t *sgn)
{
    json_t *doc = json_pack("{s:o, s:[]}", "signed", sgn, "signatures");
    assert_non_null(doc);
    return doc;
}

static json_t *key_obj(int i)
{
    uint8_t pub[OTA_ED25519_PUB_LEN];
    ota_signer_public(pub, keys[i]);
    json_t *k = ota_tuf_key_object(pub);
    assert_non_null(k);
    return k;
}

/* Root whose role r has the keys in bit mask masks[r] and threshold thr[r]. */
static json_t *root_signed(const unsigned masks[OTA_TUF_ROLE_COUNT],
                           const unsigned thr[OTA_TUF_ROLE_COUNT])
{
    json_t *ks = json_object();
    json_t *roles = json_object();
    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++) {
        json_t *ids = json_array();
        for (int i = 0; i < NKEYS; i++) {
            if (!(masks[r] & (1u << i)))
                continue;
            assert_int_equal(json_object_set_new(ks, kid(i), key_obj(i)), 0);
            assert_int_equal(json_array_append_new(ids, json_string(kid(i))), 0);
        }
        assert_int_equal(json_object_set_new(roles, ota_tuf_role_name((enum ota_tuf_role)r),
                                             json_pack("{s:o, s:I}", "keyids", ids, "threshold",
                                                       (json_int_t)thr[r])),
                         0);
    }
    json_t *s = json_pack("{s:s, s:s, s:I, s:s, s:b, s:o, s:o}", "_type", "root", "spec_version",
                          OTA_TUF_SPEC_VERSION, "version", (json_int_t)1, "expires", EXPIRES,
                          "consistent_snapshot", 1, "keys", ks, "roles", roles);
    assert_non_null(s);
    return s;
}

/* The default root: root K0, targets K1, snapshot K2, timestamp K3, all
 * threshold 1. */
static const unsigned default_masks[OTA_TUF_ROLE_COUNT] = {1u << 0, 1u << 1, 1u << 2, 1u << 3};
static const unsigned default_thr[OTA_TUF_ROLE_COUNT] = {1, 1, 1, 1};

static json_t *targets_signed(void)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:s, s:{s:{s:I, s:{s:s, s:s}, s:{s:s, s:I}}}}", "_type",
                          "targets", "spec_version", OTA_TUF_SPEC_VERSION, "version", (json_int_t)3,
                          "expires", EXPIRES, "targets", TARGET, "length", (json_int_t)1234,
                          "hashes", "sha256", HASH_ABC, "sha512", "not-checked", "custom",
                          "product", "demo", "security_version", (json_int_t)2);
    assert_non_null(s);
    return s;
}

static json_t *snapshot_signed(void)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:s, s:{s:{s:I, s:I, s:{s:s}}}}", "_type", "snapshot",
                          "spec_version", OTA_TUF_SPEC_VERSION, "version", (json_int_t)4, "expires",
                          EXPIRES, "meta", "targets.json", "version", (json_int_t)3, "length",
                          (json_int_t)3, "hashes", "sha256", HASH_ABC);
    assert_non_null(s);
    return s;
}

static json_t *timestamp_signed(void)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:s, s:{s:{s:I}}}", "_type", "timestamp", "spec_version",
                          OTA_TUF_SPEC_VERSION, "version", (json_int_t)5, "expires", EXPIRES,
                          "meta", "snapshot.json", "version", (json_int_t)4);
    assert_non_null(s);
    return s;
}

/* Default document of a role, signed by its default key. */
static json_t *base_doc(enum ota_tuf_role r)
{
    json_t *doc = NULL;
    switch (r) {
    case OTA_TUF_ROOT:
        doc = wrap(root_signed(default_masks, default_thr));
        break;
    case OTA_TUF_TARGETS:
        doc = wrap(targets_signed());
        break;
    case OTA_TUF_SNAPSHOT:
        doc = wrap(snapshot_signed());
        break;
    case OTA_TUF_TIMESTAMP:
        doc = wrap(timestamp_signed());
        break;
    }
    assert_non_null(doc);
    assert_int_equal(ota_tuf_sign(doc, keys[r]), 0);
    return doc;
}

static struct ota_tuf_meta *default_root(void)
{
    json_t *doc = base_doc(OTA_TUF_ROOT);
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), 0);
    json_decref(doc);
    return md;
}

/* Dumps doc and parses the bytes; returns the parse result. *out may be
 * NULL (then the result is freed). */
static int parse_doc(struct ota_tuf_meta **out, const json_t *doc, enum ota_tuf_role r,
                     struct ota_detail *det)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(text);
    struct ota_tuf_meta *md = NULL;
    int rc = ota_tuf_parse(&md, text, strlen(text), r, det);
    free(text);
    if (rc != 0)
        assert_null(md);
    else
        assert_non_null(md);
    if (out != NULL)
        *out = md;
    else
        ota_tuf_meta_free(md);
    return rc;
}

static json_t *sgn(json_t *doc)
{
    return json_object_get(doc, "signed");
}

/* ---- JSON Pointer mutation ------------------------------------------- */

/* Expands @K<i> (keyid of Ki), @P<i> (public hex of Ki), @H (a SHA-256
 * hex) and @T (a valid target entry). */
static void expand(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (const char *p = in; *p != '\0';) {
        const char *rep = NULL;
        size_t adv = 1;
        char tgt[160];
        if (p[0] == '@' && p[1] == 'K' && p[2] >= '0' && p[2] < '0' + NKEYS) {
            rep = kid(p[2] - '0');
            adv = 3;
        } else if (p[0] == '@' && p[1] == 'P' && p[2] >= '0' && p[2] < '0' + NKEYS) {
            rep = pubhex[p[2] - '0'];
            adv = 3;
        } else if (p[0] == '@' && p[1] == 'H') {
            rep = HASH_ABC;
            adv = 2;
        } else if (p[0] == '@' && p[1] == 'T') {
            snprintf(tgt, sizeof(tgt), "{\"length\":1,\"hashes\":{\"sha256\":\"%s\"}}", HASH_ABC);
            rep = tgt;
            adv = 2;
        }
        if (rep != NULL) {
            size_t l = strlen(rep);
            assert_true(n + l < size);
            memcpy(out + n, rep, l);
            n += l;
        } else {
            assert_true(n + 1 < size);
            out[n++] = *p;
        }
        p += adv;
    }
    out[n] = '\0';
}

/* Sets (value != NULL: JSON text) or deletes the member at JSON Pointer
 * ptr ("/a/b", with ~1 for '/' and ~0 for '~'). */
static void mutate(json_t *doc, const char *ptr, const char *value)
{
    char tok[2048];
    json_t *cur = doc;
    const char *p = ptr;
    assert_true(*p == '/');
    for (;;) {
        p++; /* past '/' */
        size_t n = 0;
        while (*p != '\0' && *p != '/') {
            char c = *p++;
            if (c == '~') {
                c = *p == '1' ? '/' : '~';
                p++;
            }
            assert_true(n + 1 < sizeof(tok));
            tok[n++] = c;
        }
        tok[n] = '\0';
        bool last = *p == '\0';
        size_t idx = json_is_array(cur) ? (size_t)strtoul(tok, NULL, 10) : 0;
        if (!last) {
            cur = json_is_array(cur) ? json_array_get(cur, idx) : json_object_get(cur, tok);
            assert_non_null(cur);
            continue;
        }
        if (value == NULL) {
            if (json_is_array(cur))
                assert_int_equal(json_array_remove(cur, idx), 0);
            else
                assert_int_equal(json_object_del(cur, tok), 0);
            return;
        }
        json_error_t err;
        json_t *v = json_loads(value, JSON_DECODE_ANY, &err);
        if (v == NULL)
            fail_msg("bad test value %s: %s", value, err.text);
        if (json_is_array(cur) && idx == json_array_size(cur))
            assert_int_equal(json_array_append_new(cur, v), 0);
        else if (json_is_array(cur))
            assert_int_equal(json_array_set_new(cur, idx, v), 0);
        else
            assert_int_equal(json_object_set_new(cur, tok, v), 0);
        return;
    }
}

struct mut_case {
    const char *name;
    enum ota_tuf_role role;
    const char *ptr;
    const char *value; /* NULL: delete */
    int want;
};

#define R  OTA_TUF_ROOT
#define TG OTA_TUF_TARGETS
#define SN OTA_TUF_SNAPSHOT
#define TS OTA_TUF_TIMESTAMP

/* Rules every role shares. */
#define COMMON(role, tag)                                                                          \
    {tag ": _type of another role", role, "/signed/_type", "\"mirrors\"", OTA_ERR_WRONG_TYPE},     \
        {tag ": _type missing", role, "/signed/_type", NULL, OTA_ERR_FORMAT},                      \
        {tag ": _type not a string", role, "/signed/_type", "1", OTA_ERR_FORMAT},                  \
        {tag ": spec_version 2.0.0", role, "/signed/spec_version", "\"2.0.0\"",                    \
         OTA_ERR_SPEC_VERSION},                                                                    \
        {tag ": spec_version missing", role, "/signed/spec_version", NULL, OTA_ERR_FORMAT},        \
        {tag ": version 0", role, "/signed/version", "0", OTA_ERR_FORMAT},                         \
        {tag ": version negative", role, "/signed/version", "-1", OTA_ERR_FORMAT},                 \
        {tag ": version missing", role, "/signed/version", NULL, OTA_ERR_FORMAT},                  \
        {tag ": expires missing", role, "/signed/expires", NULL, OTA_ERR_FORMAT},                  \
        {tag ": expires without Z", role, "/signed/expires", "\"2030-01-01T00:00:00\"",            \
         OTA_ERR_FORMAT},                                                                          \
        {tag ": top-level extra key", role, "/extra", "1", OTA_ERR_FORMAT},                        \
        {tag ": signatures missing", role, "/signatures", NULL, OTA_ERR_FORMAT},                   \
        {tag ": signed not an object", role, "/signed", "[]", OTA_ERR_FORMAT},                     \
        {tag ": extra field in signed kept", role, "/signed/x-extra", "{\"a\":[1,2]}", 0},         \
        {tag ": real number", role, "/signed/x-extra", "1.5", OTA_ERR_JSON_REAL},                  \
    {                                                                                              \
        tag ": duplicate signature keyid", role, "/signatures/1",                                  \
            "{\"keyid\":\"@K" #role "\",\"sig\":\"00\"}", OTA_ERR_DUP_SIGNATURE                    \
    }

static const struct mut_case cases[] = {
    COMMON(0, "root"),
    COMMON(1, "targets"),
    COMMON(2, "snapshot"),
    COMMON(3, "timestamp"),

    /* top level and signature entries */
    {"signatures not an array", TS, "/signatures", "{}", OTA_ERR_FORMAT},
    {"signatures empty (parses)", TS, "/signatures", "[]", 0},
    {"signature entry not an object", TS, "/signatures/0", "\"x\"", OTA_ERR_FORMAT},
    {"signature keyid missing", TS, "/signatures/0/keyid", NULL, OTA_ERR_FORMAT},
    {"signature sig missing", TS, "/signatures/0/sig", NULL, OTA_ERR_FORMAT},
    {"signature sig not a string", TS, "/signatures/0/sig", "1", OTA_ERR_FORMAT},
    {"signature keyid uppercase hex", TS, "/signatures/0/keyid",
     "\"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\"", OTA_ERR_FORMAT},
    {"signature keyid short", TS, "/signatures/0/keyid", "\"abcd\"", OTA_ERR_FORMAT},
    {"signature keyid 65 digits", TS, "/signatures/0/keyid", "\"@K3a\"", OTA_ERR_FORMAT},
    {"signature keyid non-hex", TS, "/signatures/0/keyid",
     "\"zbababababababababababababababababababababababababababababababab\"", OTA_ERR_FORMAT},
    {"signature sig short (kept, parses)", TS, "/signatures/0/sig", "\"abcd\"", 0},
    {"signature extra field (ignored)", TS, "/signatures/0/x", "1", 0},

    /* spec_version forms */
    {"spec_version 1.0", TS, "/signed/spec_version", "\"1.0\"", 0},
    {"spec_version 1.22.333", TS, "/signed/spec_version", "\"1.22.333\"", 0},
    {"spec_version 1", TS, "/signed/spec_version", "\"1\"", OTA_ERR_SPEC_VERSION},
    {"spec_version 1.", TS, "/signed/spec_version", "\"1.\"", OTA_ERR_SPEC_VERSION},
    {"spec_version 1.0.", TS, "/signed/spec_version", "\"1.0.\"", OTA_ERR_SPEC_VERSION},
    {"spec_version 1.0.0.0", TS, "/signed/spec_version", "\"1.0.0.0\"", OTA_ERR_SPEC_VERSION},
    {"spec_version 1.0-rc1", TS, "/signed/spec_version", "\"1.0-rc1\"", OTA_ERR_SPEC_VERSION},
    {"spec_version v1.0", TS, "/signed/spec_version", "\"v1.0\"", OTA_ERR_SPEC_VERSION},
    {"spec_version 10.0", TS, "/signed/spec_version", "\"10.0\"", OTA_ERR_SPEC_VERSION},
    {"spec_version empty", TS, "/signed/spec_version", "\"\"", OTA_ERR_SPEC_VERSION},
    {"spec_version integer", TS, "/signed/spec_version", "1", OTA_ERR_FORMAT},
    {"version string", TS, "/signed/version", "\"1\"", OTA_ERR_FORMAT},
    {"version boolean", TS, "/signed/version", "true", OTA_ERR_FORMAT},
    {"expires integer", TS, "/signed/expires", "1893456000", OTA_ERR_FORMAT},
    {"expires with offset", TS, "/signed/expires", "\"2030-01-01T00:00:00+00:00\"", OTA_ERR_FORMAT},
    {"expires with fraction", TS, "/signed/expires", "\"2030-01-01T00:00:00.5Z\"", OTA_ERR_FORMAT},

    /* root */
    {"root: consistent_snapshot missing", R, "/signed/consistent_snapshot", NULL, OTA_ERR_FORMAT},
    {"root: consistent_snapshot string", R, "/signed/consistent_snapshot", "\"true\"",
     OTA_ERR_FORMAT},
    {"root: consistent_snapshot false (parses)", R, "/signed/consistent_snapshot", "false", 0},
    {"root: keys missing", R, "/signed/keys", NULL, OTA_ERR_FORMAT},
    {"root: keys an array", R, "/signed/keys", "[]", OTA_ERR_FORMAT},
    {"root: roles missing", R, "/signed/roles", NULL, OTA_ERR_FORMAT},
    {"root: roles an array", R, "/signed/roles", "[]", OTA_ERR_FORMAT},
    {"root: role root missing", R, "/signed/roles/root", NULL, OTA_ERR_FORMAT},
    {"root: role targets missing", R, "/signed/roles/targets", NULL, OTA_ERR_FORMAT},
    {"root: role snapshot missing", R, "/signed/roles/snapshot", NULL, OTA_ERR_FORMAT},
    {"root: role timestamp missing", R, "/signed/roles/timestamp", NULL, OTA_ERR_FORMAT},
    {"root: role not an object", R, "/signed/roles/timestamp", "[]", OTA_ERR_FORMAT},
    {"root: extra role ignored", R, "/signed/roles/mirror", "{\"keyids\":[],\"threshold\":1}", 0},
    {"root: threshold 0", R, "/signed/roles/targets/threshold", "0", OTA_ERR_FORMAT},
    {"root: threshold negative", R, "/signed/roles/targets/threshold", "-2", OTA_ERR_FORMAT},
    {"root: threshold string", R, "/signed/roles/targets/threshold", "\"1\"", OTA_ERR_FORMAT},
    {"root: threshold missing", R, "/signed/roles/targets/threshold", NULL, OTA_ERR_FORMAT},
    {"root: threshold above key count (parses)", R, "/signed/roles/targets/threshold", "5", 0},
    {"root: keyids missing", R, "/signed/roles/snapshot/keyids", NULL, OTA_ERR_FORMAT},
    {"root: keyids a string", R, "/signed/roles/snapshot/keyids", "\"@K2\"", OTA_ERR_FORMAT},
    {"root: keyid not a string", R, "/signed/roles/snapshot/keyids", "[1]", OTA_ERR_FORMAT},
    {"root: keyid not in keys", R, "/signed/roles/snapshot/keyids", "[\"@K5\"]", OTA_ERR_FORMAT},
    {"root: keyid listed twice", R, "/signed/roles/snapshot/keyids", "[\"@K2\",\"@K2\"]",
     OTA_ERR_FORMAT},
    {"root: role with no keyids (parses)", R, "/signed/roles/snapshot/keyids", "[]", 0},
    {"root: key object not an object", R, "/signed/keys/@K0", "\"x\"", OTA_ERR_KEY_FORMAT},
    {"root: keytype missing", R, "/signed/keys/@K0/keytype", NULL, OTA_ERR_KEY_FORMAT},
    {"root: keytype integer", R, "/signed/keys/@K0/keytype", "1", OTA_ERR_KEY_FORMAT},
    {"root: scheme missing", R, "/signed/keys/@K0/scheme", NULL, OTA_ERR_KEY_FORMAT},
    {"root: keyval missing", R, "/signed/keys/@K0/keyval", NULL, OTA_ERR_KEY_FORMAT},
    {"root: keyval a string", R, "/signed/keys/@K0/keyval", "\"@P0\"", OTA_ERR_KEY_FORMAT},
    {"root: public missing", R, "/signed/keys/@K0/keyval/public", NULL, OTA_ERR_KEY_FORMAT},
    {"root: public integer", R, "/signed/keys/@K0/keyval/public", "1", OTA_ERR_KEY_FORMAT},
    {"root: public of another key", R, "/signed/keys/@K0/keyval/public", "\"@P1\"",
     OTA_ERR_KEYID_MISMATCH},
    {"root: keytype changed", R, "/signed/keys/@K0/keytype", "\"rsa\"", OTA_ERR_KEYID_MISMATCH},
    {"root: extra field added to key", R, "/signed/keys/@K0/x-note", "\"hi\"",
     OTA_ERR_KEYID_MISMATCH},
    {"root: unused key under a made-up keyid", R,
     "/signed/keys/00000000000000000000000000000000000000000000000000000000000000aa",
     "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"@P0\"}}",
     OTA_ERR_KEYID_MISMATCH},

    /* targets */
    {"targets: targets missing", TG, "/signed/targets", NULL, OTA_ERR_FORMAT},
    {"targets: targets an array", TG, "/signed/targets", "[]", OTA_ERR_FORMAT},
    {"targets: no targets (parses)", TG, "/signed/targets", "{}", 0},
    {"targets: path empty", TG, "/signed/targets/", "@T", OTA_ERR_FORMAT},
    {"targets: path absolute", TG, "/signed/targets/~1etc~1passwd", "@T", OTA_ERR_FORMAT},
    {"targets: path empty segment", TG, "/signed/targets/a~1~1b", "@T", OTA_ERR_FORMAT},
    {"targets: path trailing slash", TG, "/signed/targets/a~1", "@T", OTA_ERR_FORMAT},
    {"targets: path . segment", TG, "/signed/targets/a~1.~1b", "@T", OTA_ERR_FORMAT},
    {"targets: path is .", TG, "/signed/targets/.", "@T", OTA_ERR_FORMAT},
    {"targets: path leading ..", TG, "/signed/targets/..~1x", "@T", OTA_ERR_FORMAT},
    {"targets: path trailing ..", TG, "/signed/targets/a~1..", "@T", OTA_ERR_FORMAT},
    {"targets: path backslash", TG, "/signed/targets/a\\b", "@T", OTA_ERR_FORMAT},
    {"targets: path ..\\ (backslash)", TG, "/signed/targets/..\\x", "@T", OTA_ERR_FORMAT},
    {"targets: path space", TG, "/signed/targets/a b", "@T", OTA_ERR_FORMAT},
    {"targets: path tab", TG, "/signed/targets/a\tb", "@T", OTA_ERR_JSON_KEY_CHARS},
    {"targets: path DEL", TG, "/signed/targets/a\x7f", "@T", OTA_ERR_JSON_KEY_CHARS},
    {"targets: path non-ASCII", TG, "/signed/targets/caf\xc3\xa9", "@T", OTA_ERR_JSON_KEY_CHARS},
    {"targets: path with dots in names (parses)", TG, "/signed/targets/a.b~1c..d~1.e~1...", "@T",
     0},
    {"targets: entry not an object", TG, "/signed/targets/" TARGET_PTR, "1", OTA_ERR_FORMAT},
    {"targets: length missing", TG, "/signed/targets/" TARGET_PTR "/length", NULL, OTA_ERR_FORMAT},
    {"targets: length negative", TG, "/signed/targets/" TARGET_PTR "/length", "-1", OTA_ERR_FORMAT},
    {"targets: length string", TG, "/signed/targets/" TARGET_PTR "/length", "\"1\"",
     OTA_ERR_FORMAT},
    {"targets: length real", TG, "/signed/targets/" TARGET_PTR "/length", "1.0", OTA_ERR_JSON_REAL},
    {"targets: length 0 (parses)", TG, "/signed/targets/" TARGET_PTR "/length", "0", 0},
    {"targets: hashes missing", TG, "/signed/targets/" TARGET_PTR "/hashes", NULL, OTA_ERR_FORMAT},
    {"targets: hashes an array", TG, "/signed/targets/" TARGET_PTR "/hashes", "[]", OTA_ERR_FORMAT},
    {"targets: sha256 missing", TG, "/signed/targets/" TARGET_PTR "/hashes/sha256", NULL,
     OTA_ERR_FORMAT},
    {"targets: sha256 63 digits", TG, "/signed/targets/" TARGET_PTR "/hashes/sha256",
     "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a\"", OTA_ERR_FORMAT},
    {"targets: sha256 non-hex", TG, "/signed/targets/" TARGET_PTR "/hashes/sha256",
     "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag\"", OTA_ERR_FORMAT},
    {"targets: sha256 integer", TG, "/signed/targets/" TARGET_PTR "/hashes/sha256", "1",
     OTA_ERR_FORMAT},
    {"targets: custom a string", TG, "/signed/targets/" TARGET_PTR "/custom", "\"x\"",
     OTA_ERR_FORMAT},
    {"targets: custom an array", TG, "/signed/targets/" TARGET_PTR "/custom", "[]", OTA_ERR_FORMAT},
    {"targets: custom absent (parses)", TG, "/signed/targets/" TARGET_PTR "/custom", NULL, 0},
    {"targets: delegations without roles (parses)", TG, "/signed/delegations",
     "{\"keys\":{},\"roles\":[]}", 0},
    {"targets: delegations with a role", TG, "/signed/delegations",
     "{\"keys\":{},\"roles\":[{\"name\":\"a\",\"keyids\":[],\"threshold\":1,\"terminating\":"
     "true,\"paths\":[\"*\"]}]}",
     OTA_ERR_UNSUPPORTED},
    {"targets: delegations a string", TG, "/signed/delegations", "\"x\"", OTA_ERR_FORMAT},
    {"targets: delegations roles missing", TG, "/signed/delegations", "{\"keys\":{}}",
     OTA_ERR_FORMAT},
    {"targets: delegations roles an object", TG, "/signed/delegations",
     "{\"keys\":{},\"roles\":{}}", OTA_ERR_FORMAT},

    /* snapshot */
    {"snapshot: meta missing", SN, "/signed/meta", NULL, OTA_ERR_FORMAT},
    {"snapshot: meta an array", SN, "/signed/meta", "[]", OTA_ERR_FORMAT},
    {"snapshot: entry not an object", SN, "/signed/meta/targets.json", "3", OTA_ERR_FORMAT},
    {"snapshot: version missing", SN, "/signed/meta/targets.json/version", NULL, OTA_ERR_FORMAT},
    {"snapshot: version 0", SN, "/signed/meta/targets.json/version", "0", OTA_ERR_FORMAT},
    {"snapshot: version string", SN, "/signed/meta/targets.json/version", "\"3\"", OTA_ERR_FORMAT},
    {"snapshot: length negative", SN, "/signed/meta/targets.json/length", "-1", OTA_ERR_FORMAT},
    {"snapshot: length string", SN, "/signed/meta/targets.json/length", "\"3\"", OTA_ERR_FORMAT},
    {"snapshot: length absent (parses)", SN, "/signed/meta/targets.json/length", NULL, 0},
    {"snapshot: hashes a string", SN, "/signed/meta/targets.json/hashes", "\"x\"", OTA_ERR_FORMAT},
    {"snapshot: sha256 short", SN, "/signed/meta/targets.json/hashes/sha256", "\"00\"",
     OTA_ERR_FORMAT},
    {"snapshot: hashes without sha256 (parses)", SN, "/signed/meta/targets.json/hashes",
     "{\"sha512\":\"00\"}", 0},
    {"snapshot: hashes absent (parses)", SN, "/signed/meta/targets.json/hashes", NULL, 0},
    {"snapshot: name without .json", SN, "/signed/meta/targets", "{\"version\":1}", OTA_ERR_FORMAT},
    {"snapshot: name .json", SN, "/signed/meta/.json", "{\"version\":1}", OTA_ERR_FORMAT},
    {"snapshot: name absolute", SN, "/signed/meta/~1x.json", "{\"version\":1}", OTA_ERR_FORMAT},
    {"snapshot: name with ..", SN, "/signed/meta/..~1x.json", "{\"version\":1}", OTA_ERR_FORMAT},
    {"snapshot: delegated role name (parses)", SN, "/signed/meta/role1.json", "{\"version\":1}", 0},
    {"snapshot: empty meta (parses)", SN, "/signed/meta", "{}", 0},

    /* timestamp */
    {"timestamp: meta missing", TS, "/signed/meta", NULL, OTA_ERR_FORMAT},
    {"timestamp: meta empty", TS, "/signed/meta", "{}", OTA_ERR_FORMAT},
    {"timestamp: second entry", TS, "/signed/meta/targets.json", "{\"version\":1}", OTA_ERR_FORMAT},
    {"timestamp: other single entry", TS, "/signed/meta", "{\"targets.json\":{\"version\":1}}",
     OTA_ERR_FORMAT},
    {"timestamp: version 0", TS, "/signed/meta/snapshot.json/version", "0", OTA_ERR_FORMAT},
    {"timestamp: pins length and hash (parses)", TS, "/signed/meta/snapshot.json",
     "{\"version\":4,\"length\":10,\"hashes\":{\"sha256\":\"@H\"}}", 0},
};

static void run_case(void **state)
{
    const struct mut_case *c = *state;
    char ptr[4096], value[4096];
    json_t *doc = base_doc(c->role);
    expand(ptr, sizeof(ptr), c->ptr);
    if (c->value != NULL)
        expand(value, sizeof(value), c->value);
    mutate(doc, ptr, c->value == NULL ? NULL : value);
    struct ota_detail det = {{0}};
    int rc = parse_doc(NULL, doc, c->role, &det);
    json_decref(doc);
    if (rc != c->want)
        fail_msg("%s: got %s (%s), want %s", c->name, ota_errname(rc), det.msg,
                 ota_errname(c->want));
}

/* ---- round trips ------------------------------------------------------ */

static void test_roundtrip_root(void **state)
{
    (void)state;
    json_t *doc = base_doc(OTA_TUF_ROOT);
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_ROOT, &det), 0);
    assert_int_equal(md->type, OTA_TUF_ROOT);
    assert_int_equal(md->version, 1);
    assert_int_equal(md->expires, EXPIRES_T);
    assert_true(md->consistent_snapshot);
    assert_int_equal(md->nkeys, 4);
    assert_int_equal(md->nsigs, 1);
    assert_string_equal(md->sigs[0].keyid, kid(0));
    assert_true(md->sigs[0].well_formed);
    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++) {
        assert_int_equal(md->roles[r].threshold, 1);
        assert_int_equal(md->roles[r].nkeyids, 1);
        assert_string_equal(md->roles[r].keyids[0], kid(r));
        const struct ota_tuf_key *k = ota_tuf_find_key(md, kid(r));
        assert_non_null(k);
        assert_true(k->usable);
        uint8_t pub[OTA_ED25519_PUB_LEN];
        ota_signer_public(pub, keys[r]);
        assert_memory_equal(k->pub, pub, sizeof(pub));
    }
    assert_null(ota_tuf_find_key(md, kid(5)));
    assert_null(ota_tuf_find_key(md, "short"));
    /* The canonical bytes are what was signed. */
    uint8_t *canon = NULL;
    size_t canon_len = 0;
    assert_int_equal(ota_json_canonical_alloc(&canon, &canon_len, sgn(doc)), 0);
    assert_int_equal(md->signed_canonical_len, canon_len);
    assert_memory_equal(md->signed_canonical, canon, canon_len);
    free(canon);
    assert_int_equal(ota_tuf_verify_role(md, md, OTA_TUF_ROOT, &det), 0);
    /* Signed by the root key only: not valid for another role. */
    assert_int_equal(ota_tuf_verify_role(md, md, OTA_TUF_TARGETS, &det), OTA_ERR_THRESHOLD);
    ota_tuf_meta_free(md);
    json_decref(doc);
}

static void test_roundtrip_targets(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = default_root();
    json_t *doc = base_doc(OTA_TUF_TARGETS);
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TARGETS, &det), 0);
    assert_int_equal(md->version, 3);
    assert_int_equal(md->ntargets, 1);
    const struct ota_tuf_target *t = ota_tuf_find_target(md, TARGET);
    assert_non_null(t);
    assert_string_equal(t->path, TARGET);
    assert_int_equal(t->length, 1234);
    char hex[OTA_SHA256_HEX_LEN + 1];
    ota_hex_encode(hex, t->sha256, OTA_SHA256_LEN);
    assert_string_equal(hex, HASH_ABC);
    assert_non_null(t->custom);
    assert_string_equal(json_string_value(json_object_get(t->custom, "product")), "demo");
    assert_null(ota_tuf_find_target(md, "fw/1.0.0/other.img"));
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_TARGETS, &det), 0);
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_SNAPSHOT, &det), OTA_ERR_THRESHOLD);
    ota_tuf_meta_free(md);
    json_decref(doc);
    ota_tuf_meta_free(root);
}

/* Many targets: every one is found (the lookup is a binary search). */
static void test_targets_many(void **state)
{
    (void)state;
    json_t *doc = base_doc(OTA_TUF_TARGETS);
    json_t *tg = json_object_get(sgn(doc), "targets");
    char path[64];
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "p/%d/f%d.bin", (i * 7919) % 500, i);
        assert_int_equal(json_object_set_new(tg, path,
                                             json_pack("{s:I, s:{s:s}}", "length", (json_int_t)i,
                                                       "hashes", "sha256", HASH_ABC)),
                         0);
    }
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TARGETS, NULL), 0);
    assert_int_equal(md->ntargets, 501);
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "p/%d/f%d.bin", (i * 7919) % 500, i);
        const struct ota_tuf_target *t = ota_tuf_find_target(md, path);
        assert_non_null(t);
        assert_int_equal(t->length, i);
        assert_null(t->custom);
    }
    ota_tuf_meta_free(md);
    json_decref(doc);
}

static void test_roundtrip_snapshot(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = default_root();
    json_t *doc = base_doc(OTA_TUF_SNAPSHOT);
    mutate(doc, "/signed/meta/role1.json", "{\"version\":7}");
    assert_int_equal(ota_tuf_sign(doc, keys[OTA_TUF_SNAPSHOT]), 0);
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_SNAPSHOT, &det), 0);
    assert_int_equal(md->version, 4);
    assert_int_equal(md->nmeta, 2);
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(md, "targets.json");
    assert_non_null(mf);
    assert_string_equal(mf->name, "targets.json");
    assert_int_equal(mf->version, 3);
    assert_true(mf->has_length);
    assert_int_equal(mf->length, 3);
    assert_true(mf->has_sha256);
    mf = ota_tuf_find_meta(md, "role1.json");
    assert_non_null(mf);
    assert_int_equal(mf->version, 7);
    assert_false(mf->has_length);
    assert_false(mf->has_sha256);
    assert_null(ota_tuf_find_meta(md, "root.json"));
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_SNAPSHOT, &det), 0);
    ota_tuf_meta_free(md);
    json_decref(doc);
    ota_tuf_meta_free(root);
}

static void test_roundtrip_timestamp(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = default_root();
    json_t *doc = base_doc(OTA_TUF_TIMESTAMP);
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TIMESTAMP, &det), 0);
    assert_int_equal(md->version, 5);
    assert_int_equal(md->nmeta, 1);
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(md, "snapshot.json");
    assert_non_null(mf);
    assert_int_equal(mf->version, 4);
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_TIMESTAMP, &det), 0);
    ota_tuf_meta_free(md);
    json_decref(doc);
    ota_tuf_meta_free(root);
}

/* Each role's file parsed as another role is refused. */
static void test_wrong_role(void **state)
{
    (void)state;
    for (int have = 0; have < OTA_TUF_ROLE_COUNT; have++) {
        json_t *doc = base_doc((enum ota_tuf_role)have);
        for (int want = 0; want < OTA_TUF_ROLE_COUNT; want++) {
            struct ota_detail det = {{0}};
            int rc = parse_doc(NULL, doc, (enum ota_tuf_role)want, &det);
            assert_int_equal(rc, have == want ? 0 : OTA_ERR_WRONG_TYPE);
            if (rc != 0)
                assert_non_null(strstr(det.msg, ota_tuf_role_name((enum ota_tuf_role)want)));
        }
        json_decref(doc);
    }
}

/* ---- raw input -------------------------------------------------------- */

static int parse_text(const char *text, enum ota_tuf_role r)
{
    struct ota_tuf_meta *md = (struct ota_tuf_meta *)1;
    int rc = ota_tuf_parse(&md, text, strlen(text), r, NULL);
    if (rc != 0)
        assert_null(md);
    ota_tuf_meta_free(md);
    return rc;
}

static void test_raw_input(void **state)
{
    (void)state;
    assert_int_equal(parse_text("", OTA_TUF_ROOT), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_text("{", OTA_TUF_ROOT), OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_text("{\"signed\":{},\"signatures\":[]} x", OTA_TUF_ROOT),
                     OTA_ERR_JSON_SYNTAX);
    assert_int_equal(parse_text("[]", OTA_TUF_ROOT), OTA_ERR_FORMAT);
    assert_int_equal(parse_text("null", OTA_TUF_ROOT), OTA_ERR_FORMAT);
    assert_int_equal(parse_text("{\"signed\":{},\"signatures\":[],\"signed\":{}}", OTA_TUF_ROOT),
                     OTA_ERR_JSON_DUP_KEY);
    assert_int_equal(parse_text("{\"signed\":{\"_type\":\"root\",\"_type\":\"root\"},"
                                "\"signatures\":[]}",
                                OTA_TUF_ROOT),
                     OTA_ERR_JSON_DUP_KEY);
    assert_int_equal(parse_text("{\"signed\":{},\"signatures\":[]}", OTA_TUF_ROOT), OTA_ERR_FORMAT);
    /* nesting beyond OTA_JSON_MAX_DEPTH */
    char deep[2 * (OTA_JSON_MAX_DEPTH + 8) + 64];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"signed\":{\"x\":");
    for (int i = 0; i < OTA_JSON_MAX_DEPTH + 4; i++)
        deep[n++] = '[';
    for (int i = 0; i < OTA_JSON_MAX_DEPTH + 4; i++)
        deep[n++] = ']';
    snprintf(deep + n, sizeof(deep) - n, "},\"signatures\":[]}");
    assert_int_equal(parse_text(deep, OTA_TUF_ROOT), OTA_ERR_JSON_DEPTH);

    struct ota_tuf_meta *md = NULL;
    assert_int_equal(ota_tuf_parse(NULL, "{}", 2, OTA_TUF_ROOT, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_parse(&md, NULL, 2, OTA_TUF_ROOT, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_parse(&md, "{}", 2, (enum ota_tuf_role)7, NULL), OTA_ERR_INVALID_ARG);
    assert_null(md);
    /* Only len bytes are read: a valid document followed by junk. */
    json_t *doc = base_doc(OTA_TUF_TIMESTAMP);
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t tlen = strlen(text);
    char *padded = malloc(tlen + 8);
    assert_non_null(padded);
    memcpy(padded, text, tlen);
    memcpy(padded + tlen, "garbage", 8);
    assert_int_equal(ota_tuf_parse(&md, padded, tlen, OTA_TUF_TIMESTAMP, NULL), 0);
    ota_tuf_meta_free(md);
    free(padded);
    free(text);
    json_decref(doc);
}

/* ota_tuf_from_json: same rules, takes its own reference, and checks what
 * ota_json_parse would have (reals, key characters, NUL in strings). */
static void test_from_json(void **state)
{
    (void)state;
    json_t *doc = base_doc(OTA_TUF_TIMESTAMP);
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(doc->refcount, 1);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), 0);
    assert_int_equal(doc->refcount, 2);
    ota_tuf_meta_free(md);
    assert_int_equal(doc->refcount, 1);

    assert_int_equal(json_object_set_new(sgn(doc), "x", json_real(0.5)), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_JSON_REAL);
    assert_int_equal(json_object_set_new(sgn(doc), "x", json_stringn("a\0b", 3)), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_FORMAT);
    assert_int_equal(json_object_del(sgn(doc), "x"), 0);
    assert_int_equal(json_object_set_new(sgn(doc), "caf\xc3\xa9", json_true()), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(json_object_del(sgn(doc), "caf\xc3\xa9"), 0);
    assert_int_equal(json_object_setn_new_nocheck(sgn(doc), "a\0b", 3, json_true()), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_JSON_KEY_CHARS);
    assert_int_equal(doc->refcount, 1);
    assert_null(md);
    json_decref(doc);

    /* nesting */
    json_t *deep = json_array();
    json_t *cur = deep;
    for (int i = 0; i < OTA_JSON_MAX_DEPTH + 2; i++) {
        json_t *next = json_array();
        assert_int_equal(json_array_append_new(cur, next), 0);
        cur = next;
    }
    doc = base_doc(OTA_TUF_TIMESTAMP);
    assert_int_equal(json_object_set_new(sgn(doc), "x", deep), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_JSON_DEPTH);
    json_decref(doc);
    assert_int_equal(ota_tuf_from_json(&md, NULL, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_INVALID_ARG);
}

/* ---- caps ------------------------------------------------------------- */

static void test_caps(void **state)
{
    (void)state;
    struct ota_tuf_meta *md = NULL;
    char id[OTA_KEYID_SIZE];

    /* signatures */
    json_t *doc = base_doc(OTA_TUF_TIMESTAMP);
    json_t *sigs = json_object_get(doc, "signatures");
    while (json_array_size(sigs) < OTA_TUF_MAX_SIGS + 1)
        assert_int_equal(json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0))), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_TOO_LARGE);
    json_decref(doc);

    /* keys of a root (refused before any is hashed) */
    doc = base_doc(OTA_TUF_ROOT);
    json_t *ks = json_object_get(sgn(doc), "keys");
    for (int i = 0; json_object_size(ks) < OTA_TUF_MAX_KEYS + 1; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(json_object_set_new(ks, id, key_obj(0)), 0);
    }
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), OTA_ERR_TOO_LARGE);
    json_decref(doc);

    /* keyids of a role */
    doc = base_doc(OTA_TUF_ROOT);
    json_t *ids =
        json_object_get(json_object_get(json_object_get(sgn(doc), "roles"), "targets"), "keyids");
    for (int i = 0; json_array_size(ids) < OTA_TUF_MAX_ROLE_KEYS + 1; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(json_array_append_new(ids, json_string(id)), 0);
    }
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), OTA_ERR_TOO_LARGE);
    json_decref(doc);

    /* snapshot meta */
    doc = base_doc(OTA_TUF_SNAPSHOT);
    json_t *meta = json_object_get(sgn(doc), "meta");
    json_t *entry = json_pack("{s:I}", "version", (json_int_t)1);
    char name[64];
    for (int i = 0; json_object_size(meta) < OTA_TUF_MAX_META + 1; i++) {
        snprintf(name, sizeof(name), "r%d.json", i);
        assert_int_equal(json_object_set(meta, name, entry), 0);
    }
    json_decref(entry);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_SNAPSHOT, NULL), OTA_ERR_TOO_LARGE);
    json_decref(doc);

    /* targets */
    doc = base_doc(OTA_TUF_TARGETS);
    json_t *tg = json_object_get(sgn(doc), "targets");
    entry = json_pack("{s:I, s:{s:s}}", "length", (json_int_t)1, "hashes", "sha256", HASH_ABC);
    for (int i = 0; json_object_size(tg) < OTA_TUF_MAX_TARGETS + 1; i++) {
        snprintf(name, sizeof(name), "t/%d", i);
        assert_int_equal(json_object_set(tg, name, entry), 0);
    }
    json_decref(entry);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_TARGETS, NULL), OTA_ERR_TOO_LARGE);
    json_decref(doc);

    /* path length: OTA_TUF_MAX_PATH bytes is fine, one more is not */
    char path[OTA_TUF_MAX_PATH + 2];
    memset(path, 'a', sizeof(path));
    path[OTA_TUF_MAX_PATH] = '\0';
    doc = base_doc(OTA_TUF_TARGETS);
    tg = json_object_get(sgn(doc), "targets");
    assert_int_equal(json_object_set_new(tg, path,
                                         json_pack("{s:I, s:{s:s}}", "length", (json_int_t)1,
                                                   "hashes", "sha256", HASH_ABC)),
                     0);
    assert_int_equal(parse_doc(NULL, doc, OTA_TUF_TARGETS, NULL), 0);
    path[OTA_TUF_MAX_PATH] = 'a';
    path[OTA_TUF_MAX_PATH + 1] = '\0';
    assert_int_equal(json_object_set_new(tg, path,
                                         json_pack("{s:I, s:{s:s}}", "length", (json_int_t)1,
                                                   "hashes", "sha256", HASH_ABC)),
                     0);
    assert_int_equal(parse_doc(NULL, doc, OTA_TUF_TARGETS, NULL), OTA_ERR_FORMAT);
    json_decref(doc);
}

/* ---- thresholds and signatures ---------------------------------------- */

/* Root whose targets role is K1, K2, K3 with threshold 2. */
static struct ota_tuf_meta *root_2of3(void)
{
    unsigned masks[OTA_TUF_ROLE_COUNT] = {1u << 0, 0xeu, 1u << 2, 1u << 3};
    unsigned thr[OTA_TUF_ROLE_COUNT] = {1, 2, 1, 1};
    json_t *doc = wrap(root_signed(masks, thr));
    assert_int_equal(ota_tuf_sign(doc, keys[0]), 0);
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_ROOT, NULL), 0);
    json_decref(doc);
    return md;
}

static json_t *targets_signed_by(unsigned mask)
{
    json_t *doc = wrap(targets_signed());
    for (int i = 0; i < NKEYS; i++) {
        if (mask & (1u << i))
            assert_int_equal(ota_tuf_sign(doc, keys[i]), 0);
    }
    return doc;
}

static int verify_targets(const json_t *doc, const struct ota_tuf_meta *root,
                          struct ota_detail *det)
{
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TARGETS, det), 0);
    int rc = ota_tuf_verify_role(md, root, OTA_TUF_TARGETS, det);
    ota_tuf_meta_free(md);
    return rc;
}

/* Replaces the sig of keyid's entry by hex (or appends an entry). */
static void set_sig(json_t *doc, const char *keyid, const char *hex)
{
    json_t *sigs = json_object_get(doc, "signatures");
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        json_t *e = json_array_get(sigs, i);
        if (strcmp(json_string_value(json_object_get(e, "keyid")), keyid) == 0) {
            assert_int_equal(json_object_set_new(e, "sig", json_string(hex)), 0);
            return;
        }
    }
    assert_int_equal(
        json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", keyid, "sig", hex)), 0);
}

static const char *sig_of(const json_t *doc, const char *keyid)
{
    const json_t *sigs = json_object_get(doc, "signatures");
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *e = json_array_get(sigs, i);
        if (strcmp(json_string_value(json_object_get(e, "keyid")), keyid) == 0)
            return json_string_value(json_object_get(e, "sig"));
    }
    fail_msg("no signature by %s", keyid);
    return NULL;
}

static void test_threshold(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = root_2of3();
    struct ota_detail det = {{0}};
    json_t *doc;

    /* 2 of 3: K1 + K2, K2 + K3, all three */
    doc = targets_signed_by(0x6u);
    assert_int_equal(verify_targets(doc, root, &det), 0);
    json_decref(doc);
    doc = targets_signed_by(0xcu);
    assert_int_equal(verify_targets(doc, root, &det), 0);
    json_decref(doc);
    doc = targets_signed_by(0xeu);
    assert_int_equal(verify_targets(doc, root, &det), 0);
    json_decref(doc);

    /* one valid signature */
    doc = targets_signed_by(0x2u);
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    assert_string_equal(det.msg, "targets: 2 of 3 required valid signatures, 1 found");
    json_decref(doc);

    /* no signatures */
    doc = targets_signed_by(0);
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    assert_string_equal(det.msg, "targets: 2 of 3 required valid signatures, 0 found");
    json_decref(doc);

    /* K1 + keys outside the role (K0 is root's, K4 unknown): not counted */
    doc = targets_signed_by(0x13u);
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    json_decref(doc);

    /* K1 + a bad signature from role key K2 (a signature over other bytes) */
    doc = targets_signed_by(0x6u);
    json_t *other = targets_signed_by(0x8u);
    mutate(other, "/signed/version", "99");
    assert_int_equal(ota_tuf_sign(other, keys[3]), 0);
    set_sig(doc, kid(2), sig_of(other, kid(3)));
    /* a signature did not verify, and whose: not "more signers must sign" */
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, "targets: the signature by targets key "));
    assert_non_null(strstr(det.msg, kid(2)));
    assert_non_null(strstr(det.msg, "did not verify"));
    assert_non_null(strstr(det.msg, "1 of the 2 required signatures verify"));
    json_decref(other);
    json_decref(doc);

    /* K1 + K2 whose signature has one bit flipped */
    doc = targets_signed_by(0x6u);
    char flipped[2 * OTA_ED25519_SIG_LEN + 1];
    memcpy(flipped, sig_of(doc, kid(2)), sizeof(flipped));
    flipped[10] = flipped[10] == '0' ? '1' : '0';
    set_sig(doc, kid(2), flipped);
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, kid(2)));
    /* ... and a third valid signature restores the threshold */
    assert_int_equal(ota_tuf_sign(doc, keys[3]), 0);
    assert_int_equal(verify_targets(doc, root, &det), 0);
    json_decref(doc);

    /* K1 + malformed sig of K2: parsed, kept, never counted */
    doc = targets_signed_by(0x6u);
    set_sig(doc, kid(2), "00");
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TARGETS, NULL), 0);
    assert_int_equal(md->nsigs, 2);
    for (size_t i = 0; i < md->nsigs; i++)
        assert_int_equal(md->sigs[i].well_formed, strcmp(md->sigs[i].keyid, kid(1)) == 0);
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_TARGETS, &det), OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, kid(2)));
    ota_tuf_meta_free(md);
    json_decref(doc);

    /* two entries with one keyid */
    doc = targets_signed_by(0x2u);
    assert_int_equal(
        json_array_append_new(json_object_get(doc, "signatures"),
                              json_pack("{s:s, s:s}", "keyid", kid(1), "sig", sig_of(doc, kid(1)))),
        0);
    assert_int_equal(parse_doc(NULL, doc, OTA_TUF_TARGETS, &det), OTA_ERR_DUP_SIGNATURE);
    json_decref(doc);

    /* tampered signed part */
    doc = targets_signed_by(0x6u);
    mutate(doc, "/signed/targets/" TARGET_PTR "/length", "1235");
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(det.msg, "(and other keys of the role) did not verify"));
    assert_non_null(strstr(det.msg, "0 of the 2 required"));
    json_decref(doc);
    doc = targets_signed_by(0x6u);
    mutate(doc, "/signed/targets/" TARGET_PTR "/custom/security_version", "1");
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_BAD_SIGNATURE);
    json_decref(doc);

    ota_tuf_meta_free(root);
}

/* A threshold above the number of keys parses but can never be met. */
static void test_threshold_unreachable(void **state)
{
    (void)state;
    json_t *rdoc = base_doc(OTA_TUF_ROOT);
    mutate(rdoc, "/signed/roles/targets/threshold", "2");
    struct ota_tuf_meta *root = NULL;
    assert_int_equal(parse_doc(&root, rdoc, OTA_TUF_ROOT, NULL), 0);
    assert_int_equal(root->roles[OTA_TUF_TARGETS].threshold, 2);
    json_decref(rdoc);
    json_t *doc = targets_signed_by(0x3fu);
    struct ota_detail det = {{0}};
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    assert_string_equal(det.msg, "targets: 2 of 1 required valid signatures, 1 found");
    json_decref(doc);
    ota_tuf_meta_free(root);
}

static void keyid_of(char out[OTA_KEYID_SIZE], const json_t *key)
{
    uint8_t *canon = NULL;
    size_t len = 0;
    uint8_t d[OTA_SHA256_LEN];
    assert_int_equal(ota_json_canonical_alloc(&canon, &len, key), 0);
    assert_int_equal(ota_sha256(d, canon, len), 0);
    free(canon);
    ota_hex_encode(out, d, sizeof(d));
}

/* Keys that are not Ed25519 parse (their keyid is checked) but are not
 * usable; one public key listed under two keyids counts once. */
static void test_key_variants(void **state)
{
    (void)state;
    json_t *rdoc = base_doc(OTA_TUF_ROOT);
    json_t *ks = json_object_get(sgn(rdoc), "keys");
    json_t *tids =
        json_object_get(json_object_get(json_object_get(sgn(rdoc), "roles"), "targets"), "keyids");

    /* an RSA key, as tuf repositories may list */
    json_t *rsa =
        json_pack("{s:s, s:s, s:{s:s}}", "keytype", "rsa", "scheme", "rsassa-pss-sha256", "keyval",
                  "public", "-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----\n");
    char rsa_id[OTA_KEYID_SIZE];
    keyid_of(rsa_id, rsa);
    assert_int_equal(json_object_set_new(ks, rsa_id, rsa), 0);
    assert_int_equal(json_array_append_new(tids, json_string(rsa_id)), 0);

    /* an ed25519 key whose public value is not 64 hex digits */
    json_t *bad = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519",
                            "keyval", "public", "abcd");
    char bad_id[OTA_KEYID_SIZE];
    keyid_of(bad_id, bad);
    assert_int_equal(json_object_set_new(ks, bad_id, bad), 0);

    /* K1 again, with an extra field: another keyid for the same key */
    json_t *k1x = key_obj(1);
    assert_int_equal(json_object_set_new(k1x, "x-note", json_string("same key")), 0);
    char k1x_id[OTA_KEYID_SIZE];
    keyid_of(k1x_id, k1x);
    assert_int_equal(json_object_set_new(ks, k1x_id, k1x), 0);
    assert_int_equal(json_array_append_new(tids, json_string(k1x_id)), 0);
    mutate(rdoc, "/signed/roles/targets/threshold", "2");

    struct ota_tuf_meta *root = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(&root, rdoc, OTA_TUF_ROOT, &det), 0);
    assert_int_equal(root->nkeys, 7);
    assert_false(ota_tuf_find_key(root, rsa_id)->usable);
    assert_false(ota_tuf_find_key(root, bad_id)->usable);
    assert_true(ota_tuf_find_key(root, k1x_id)->usable);
    assert_int_equal(root->roles[OTA_TUF_TARGETS].nkeyids, 3);
    json_decref(rdoc);

    /* K1's signature under both keyids: one key, so 1 of 2 */
    json_t *doc = targets_signed_by(0x2u);
    set_sig(doc, k1x_id, sig_of(doc, kid(1)));
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    assert_string_equal(det.msg, "targets: 2 of 3 required valid signatures, 1 found");
    /* a signature entry for the RSA key does not count either */
    set_sig(doc, rsa_id, sig_of(doc, kid(1)));
    assert_int_equal(verify_targets(doc, root, &det), OTA_ERR_THRESHOLD);
    json_decref(doc);
    ota_tuf_meta_free(root);
}

/* A root listing K0's public key under a made-up keyid. */
static void test_keyid_mismatch(void **state)
{
    (void)state;
    json_t *doc = base_doc(OTA_TUF_ROOT);
    json_t *ks = json_object_get(sgn(doc), "keys");
    const char *fake = "1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(json_object_set_new(ks, fake, key_obj(0)), 0);
    mutate(doc, "/signed/roles/root/keyids",
           "[\"1111111111111111111111111111111111111111111111"
           "111111111111111111\"]");
    assert_int_equal(ota_tuf_sign(doc, keys[0]), 0);
    struct ota_detail det = {{0}};
    assert_int_equal(parse_doc(NULL, doc, OTA_TUF_ROOT, &det), OTA_ERR_KEYID_MISMATCH);
    assert_non_null(strstr(det.msg, fake));
    json_decref(doc);
}

/* Root's ledger field is kept as is and covered by the signatures. */
static void test_ledger_field(void **state)
{
    (void)state;
    json_t *doc = wrap(root_signed(default_masks, default_thr));
    json_t *ledger = json_pack("{s:s, s:[s, s, s]}", "origin", "example.com/log", "policy",
                               "log example.com/log+abcd+AAAA",
                               "witness w1 example.com/w1+1234+BBBB", "quorum w1");
    assert_int_equal(json_object_set_new(sgn(doc), "x-otachain-ledger", ledger), 0);
    assert_int_equal(ota_tuf_sign(doc, keys[0]), 0);

    struct ota_tuf_meta *md = NULL;
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_ROOT, NULL), 0);
    const json_t *got = json_object_get(json_object_get(md->doc, "signed"), "x-otachain-ledger");
    assert_non_null(got);
    assert_true(json_equal(got, json_object_get(sgn(doc), "x-otachain-ledger")));
    assert_non_null(strstr((const char *)md->signed_canonical,
                           "\"x-otachain-ledger\":{\"origin\":\"example.com/log\""));
    assert_int_equal(ota_tuf_verify_role(md, md, OTA_TUF_ROOT, NULL), 0);
    ota_tuf_meta_free(md);

    /* removed after signing */
    json_t *copy = json_deep_copy(doc);
    assert_int_equal(json_object_del(sgn(copy), "x-otachain-ledger"), 0);
    assert_int_equal(parse_doc(&md, copy, OTA_TUF_ROOT, NULL), 0);
    assert_int_equal(ota_tuf_verify_role(md, md, OTA_TUF_ROOT, NULL), OTA_ERR_BAD_SIGNATURE);
    ota_tuf_meta_free(md);
    json_decref(copy);

    /* changed after signing */
    mutate(doc, "/signed/x-otachain-ledger/policy/2", "\"quorum none\"");
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_ROOT, NULL), 0);
    assert_int_equal(ota_tuf_verify_role(md, md, OTA_TUF_ROOT, NULL), OTA_ERR_BAD_SIGNATURE);
    ota_tuf_meta_free(md);
    json_decref(doc);
}

static void test_verify_args(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = default_root();
    json_t *doc = base_doc(OTA_TUF_TIMESTAMP);
    struct ota_tuf_meta *ts = NULL;
    assert_int_equal(parse_doc(&ts, doc, OTA_TUF_TIMESTAMP, NULL), 0);
    assert_int_equal(ota_tuf_verify_role(ts, NULL, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_verify_role(ts, ts, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_verify_role(NULL, root, OTA_TUF_TIMESTAMP, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_verify_role(ts, root, (enum ota_tuf_role)4, NULL),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_verify_role(ts, root, OTA_TUF_TIMESTAMP, NULL), 0);
    ota_tuf_meta_free(ts);
    json_decref(doc);
    ota_tuf_meta_free(root);
}

/* ---- expiry, metafiles, role changes ----------------------------------- */

static void test_expiry(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = default_root();
    struct ota_detail det = {{0}};
    assert_int_equal(ota_tuf_check_expiry(root, EXPIRES_T - 1, &det), 0);
    assert_int_equal(ota_tuf_check_expiry(root, EXPIRES_T, &det), OTA_ERR_EXPIRED);
    assert_string_equal(det.msg, "root version 1 expired at " EXPIRES);
    assert_int_equal(ota_tuf_check_expiry(root, EXPIRES_T + 86400, &det), OTA_ERR_EXPIRED);
    assert_int_equal(ota_tuf_check_expiry(root, INT64_MIN, &det), 0);
    assert_int_equal(ota_tuf_check_expiry(NULL, 0, &det), OTA_ERR_INVALID_ARG);
    ota_tuf_meta_free(root);
}

static void test_check_metafile(void **state)
{
    (void)state;
    struct ota_tuf_metafile mf = {.name = "targets.json", .version = 1};
    struct ota_detail det = {{0}};
    /* nothing pinned: anything goes */
    assert_int_equal(ota_tuf_check_metafile(&mf, "xyz", 3, &det), 0);
    assert_int_equal(ota_tuf_check_metafile(&mf, NULL, 0, &det), 0);
    mf.has_length = true;
    mf.length = 3;
    assert_int_equal(ota_tuf_check_metafile(&mf, "abcd", 4, &det), OTA_ERR_LENGTH_MISMATCH);
    assert_int_equal(ota_tuf_check_metafile(&mf, "ab", 2, &det), OTA_ERR_LENGTH_MISMATCH);
    assert_int_equal(ota_tuf_check_metafile(&mf, "xyz", 3, &det), 0);
    mf.has_sha256 = true;
    assert_int_equal(ota_hex_decode(mf.sha256, OTA_SHA256_LEN, HASH_ABC), 0);
    assert_int_equal(ota_tuf_check_metafile(&mf, "abc", 3, &det), 0);
    assert_int_equal(ota_tuf_check_metafile(&mf, "abd", 3, &det), OTA_ERR_HASH_MISMATCH);
    assert_non_null(strstr(det.msg, "targets.json"));
    /* length is checked first */
    assert_int_equal(ota_tuf_check_metafile(&mf, "abcd", 4, &det), OTA_ERR_LENGTH_MISMATCH);
    mf.has_length = false;
    assert_int_equal(ota_tuf_check_metafile(&mf, "abcd", 4, &det), OTA_ERR_HASH_MISMATCH);
    assert_int_equal(ota_tuf_check_metafile(NULL, "abc", 3, &det), OTA_ERR_INVALID_ARG);
}

static struct ota_tuf_meta *root_with(const unsigned masks[OTA_TUF_ROLE_COUNT],
                                      const unsigned thr[OTA_TUF_ROLE_COUNT])
{
    json_t *doc = wrap(root_signed(masks, thr));
    struct ota_tuf_meta *md = NULL;
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), 0);
    json_decref(doc);
    return md;
}

static void test_role_changed(void **state)
{
    (void)state;
    unsigned m[OTA_TUF_ROLE_COUNT] = {1u << 0, 0x6u, 1u << 3, 1u << 3};
    unsigned t[OTA_TUF_ROLE_COUNT] = {1, 2, 1, 1};
    struct ota_tuf_meta *a = root_with(m, t);
    struct ota_tuf_meta *b = root_with(m, t);
    for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++)
        assert_false(ota_tuf_role_changed(a, b, (enum ota_tuf_role)r));
    ota_tuf_meta_free(b);

    t[OTA_TUF_TARGETS] = 1;                      /* threshold */
    m[OTA_TUF_TIMESTAMP] = 1u << 4;              /* key replaced */
    m[OTA_TUF_SNAPSHOT] = (1u << 3) | (1u << 5); /* key added */
    b = root_with(m, t);
    assert_false(ota_tuf_role_changed(a, b, OTA_TUF_ROOT));
    assert_true(ota_tuf_role_changed(a, b, OTA_TUF_TARGETS));
    assert_true(ota_tuf_role_changed(a, b, OTA_TUF_SNAPSHOT));
    assert_true(ota_tuf_role_changed(b, a, OTA_TUF_SNAPSHOT));
    assert_true(ota_tuf_role_changed(a, b, OTA_TUF_TIMESTAMP));
    assert_true(ota_tuf_role_changed(a, NULL, OTA_TUF_ROOT));
    ota_tuf_meta_free(b);
    ota_tuf_meta_free(a);
}

/* Root v`version` with root keys `mask` (threshold thr), signed by `signers`. */
static struct ota_tuf_meta *root_v(unsigned version, unsigned mask, unsigned thr, unsigned signers)
{
    unsigned m[OTA_TUF_ROLE_COUNT] = {mask, 1u << 1, 1u << 2, 1u << 3};
    unsigned t[OTA_TUF_ROLE_COUNT] = {thr, 1, 1, 1};
    json_t *doc = wrap(root_signed(m, t));
    struct ota_tuf_meta *md = NULL;

    assert_int_equal(json_object_set_new(sgn(doc), "version", json_integer(version)), 0);
    for (int i = 0; i < NKEYS; i++) {
        if (signers & (1u << i))
            assert_int_equal(ota_tuf_sign(doc, keys[i]), 0);
    }
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), 0);
    json_decref(doc);
    return md;
}

static void test_root_step(void **state)
{
    (void)state;
    struct ota_detail det = {{0}};
    /* v1: root keys K0,K4, threshold 2. */
    struct ota_tuf_meta *v1 = root_v(1, 0x11u, 2, 0x11u);
    /* v2 rotates to K0,K5 (threshold 2), signed by old and new sets. */
    struct ota_tuf_meta *v2 = root_v(2, 0x21u, 2, 0x31u);
    struct ota_tuf_meta *bad = NULL;

    assert_int_equal(ota_tuf_root_step(v2, v1, &det), 0);
    /* Only the new keys: the old threshold is not met. */
    bad = root_v(2, 0x21u, 2, 0x21u);
    assert_int_equal(ota_tuf_root_step(bad, v1, &det), OTA_ERR_THRESHOLD);
    assert_non_null(strstr(det.msg, "root threshold of version 1"));
    ota_tuf_meta_free(bad);
    /* Only the old keys: its own threshold is not met. */
    bad = root_v(2, 0x21u, 2, 0x11u);
    assert_int_equal(ota_tuf_root_step(bad, v1, &det), OTA_ERR_THRESHOLD);
    assert_non_null(strstr(det.msg, "its own root threshold"));
    ota_tuf_meta_free(bad);
    /* Versions: the same, lower, or skipping one. */
    bad = root_v(1, 0x11u, 2, 0x11u);
    assert_int_equal(ota_tuf_root_step(bad, v1, &det), OTA_ERR_ROLLBACK);
    assert_int_equal(ota_tuf_root_step(v1, v2, &det), OTA_ERR_ROLLBACK);
    ota_tuf_meta_free(bad);
    bad = root_v(3, 0x11u, 2, 0x11u);
    assert_int_equal(ota_tuf_root_step(bad, v1, &det), OTA_ERR_VERSION_MISMATCH);
    assert_non_null(strstr(det.msg, "skips version 2"));
    ota_tuf_meta_free(bad);
    assert_int_equal(ota_tuf_root_step(NULL, v1, &det), OTA_ERR_INVALID_ARG);
    ota_tuf_meta_free(v2);
    ota_tuf_meta_free(v1);
}

/* ---- time ------------------------------------------------------------- */

static void test_time(void **state)
{
    (void)state;
    int64_t t = 1;
    char buf[OTA_TUF_TIME_SIZE];
    static const char *const bad[] = {
        "2030-01-01T00:00:00",       "2030-01-01T00:00:00.5Z",
        "2030-01-01T00:00:00+00:00", "2030-13-01T00:00:00Z",
        "2030-02-30T00:00:00Z",      "2030-00-01T00:00:00Z",
        "2030-01-00T00:00:00Z",      "2030-01-32T00:00:00Z",
        "2030-04-31T00:00:00Z",      "2100-02-29T00:00:00Z",
        "2030-01-01T24:00:00Z",      "2030-01-01T00:60:00Z",
        "2030-01-01T00:00:60Z",      "2030-01-01t00:00:00Z",
        "2030-01-01T00:00:00z",      "2030-01-01 00:00:00Z",
        "2030/01/01T00:00:00Z",      "+030-01-01T00:00:00Z",
        " 2030-01-01T00:00:00Z",     "2030-01-01T00:00:00Z ",
        "2030-1-01T00:00:00Z",       "20300-01-01T00:00:00Z",
        "2030-01-01T00:00:0aZ",      "",
        "2030-01-01T00:00:00ZZ",     "2030-01-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = 1;
        if (ota_tuf_parse_time(&t, bad[i]) != OTA_ERR_FORMAT)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(t, 0);
    }
    assert_int_equal(ota_tuf_parse_time(&t, NULL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tuf_parse_time(NULL, "2030-01-01T00:00:00Z"), OTA_ERR_INVALID_ARG);

    static const struct {
        const char *s;
        int64_t t;
    } good[] = {
        {"2030-01-01T00:00:00Z", 1893456000},   {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},           {"2000-02-29T12:34:56Z", 951827696},
        {"2024-02-29T00:00:00Z", 1709164800},   {"2038-01-19T03:14:08Z", 2147483648LL},
        {"0000-01-01T00:00:00Z", -62167219200}, {"9999-12-31T23:59:59Z", 253402300799LL},
        {"1900-03-01T00:00:00Z", -2203891200},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(ota_tuf_parse_time(&t, good[i].s), 0);
        assert_int_equal(t, good[i].t);
        assert_int_equal(ota_tuf_format_time(buf, good[i].t), 0);
        assert_string_equal(buf, good[i].s);
    }
    assert_int_equal(ota_tuf_format_time(buf, 253402300800LL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tuf_format_time(buf, -62167219201LL), OTA_ERR_FORMAT);
    assert_int_equal(ota_tuf_format_time(buf, INT64_MAX), OTA_ERR_FORMAT);
    assert_int_equal(ota_tuf_format_time(buf, INT64_MIN), OTA_ERR_FORMAT);

    /* Against the C library across its range, and round trips. */
    for (int64_t x = -62167219200LL; x <= 253402300799LL; x += 86400LL * 7919 + 3607) {
        assert_int_equal(ota_tuf_format_time(buf, x), 0);
        assert_int_equal(ota_tuf_parse_time(&t, buf), 0);
        assert_int_equal(t, x);
        time_t tt = (time_t)x;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64];
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_string_equal(buf, want);
    }
}

/* ---- known-answer vector (OTA_VECTORS/README.md) ---------------------- */

/* Copies the rest of the README line starting with prefix into out. */
static void vector_field(char *out, size_t size, const char *readme, const char *prefix)
{
    const char *p = strstr(readme, prefix);
    if (p == NULL)
        fail_msg("README.md has no line \"%s\"", prefix);
    p += strlen(prefix);
    size_t n = strcspn(p, "\n");
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void test_vector(void **state)
{
    (void)state;
    const char *dir = getenv("OTA_VECTORS");
    if (dir == NULL)
        fail_msg("OTA_VECTORS is not set (the meson test sets it)");
    char path[4096];
    snprintf(path, sizeof(path), "%s/README.md", dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    static char readme[65536];
    size_t n = fread(readme, 1, sizeof(readme) - 1, f);
    fclose(f);
    readme[n] = '\0';
    const char *sec = strstr(readme, "## TUF canonical JSON + Ed25519");
    assert_non_null(sec);

    char seed_hex[128], pub_hex[128], keyid[128], canon_want[512], sig_want[256];
    vector_field(seed_hex, sizeof(seed_hex), sec, "Seed of RFC 8032 test 1: ");
    vector_field(pub_hex, sizeof(pub_hex), sec, "- public key: ");
    vector_field(keyid, sizeof(keyid), sec, "- keyid = sha256(canonical key object): ");
    vector_field(canon_want, sizeof(canon_want), sec, "- signed (canonical): ");
    vector_field(sig_want, sizeof(sig_want), sec, "- signature: ");

    uint8_t seed[OTA_ED25519_SEED_LEN];
    assert_int_equal(ota_hex_decode(seed, sizeof(seed), seed_hex), 0);
    struct ota_signer *s = NULL;
    assert_int_equal(ota_signer_from_seed(&s, seed), 0);
    assert_string_equal(ota_signer_keyid(s), keyid);
    uint8_t pub[OTA_ED25519_PUB_LEN];
    ota_signer_public(pub, s);
    char hex[2 * OTA_ED25519_PUB_LEN + 1];
    ota_hex_encode(hex, pub, sizeof(pub));
    assert_string_equal(hex, pub_hex);

    /* The vector's timestamp, built field by field. */
    json_t *doc =
        wrap(json_pack("{s:s, s:s, s:{s:{s:I}}, s:s, s:I}", "_type", "timestamp", "expires",
                       "2030-01-01T00:00:00Z", "meta", "snapshot.json", "version", (json_int_t)1,
                       "spec_version", "1.0.31", "version", (json_int_t)1));
    assert_int_equal(ota_tuf_sign(doc, s), 0);
    assert_string_equal(sig_of(doc, keyid), sig_want);

    /* A root giving the timestamp role that key. */
    json_t *rs = root_signed(default_masks, default_thr);
    json_t *kobj = ota_tuf_key_object(pub);
    char kid_got[OTA_KEYID_SIZE];
    keyid_of(kid_got, kobj);
    assert_string_equal(kid_got, keyid);
    assert_int_equal(json_object_set_new(json_object_get(rs, "keys"), keyid, kobj), 0);
    assert_int_equal(json_object_set_new(json_object_get(json_object_get(rs, "roles"), "timestamp"),
                                         "keyids", json_pack("[s]", keyid)),
                     0);
    json_t *rdoc = wrap(rs);
    assert_int_equal(ota_tuf_sign(rdoc, keys[0]), 0);
    struct ota_tuf_meta *root = NULL;
    assert_int_equal(parse_doc(&root, rdoc, OTA_TUF_ROOT, NULL), 0);

    /* The exact bytes: the vector's canonical signed part. */
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}],\"signed\":%s}", keyid, sig_want,
             canon_want);
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det = {{0}};
    assert_int_equal(ota_tuf_parse(&md, text, strlen(text), OTA_TUF_TIMESTAMP, &det), 0);
    assert_int_equal(md->signed_canonical_len, strlen(canon_want));
    assert_memory_equal(md->signed_canonical, canon_want, strlen(canon_want));
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_TIMESTAMP, &det), 0);
    assert_int_equal(ota_tuf_check_expiry(md, EXPIRES_T - 1, NULL), 0);
    ota_tuf_meta_free(md);

    /* The built document parses to the same canonical bytes. */
    assert_int_equal(parse_doc(&md, doc, OTA_TUF_TIMESTAMP, NULL), 0);
    assert_memory_equal(md->signed_canonical, canon_want, strlen(canon_want));
    assert_int_equal(ota_tuf_verify_role(md, root, OTA_TUF_TIMESTAMP, NULL), 0);
    ota_tuf_meta_free(md);

    ota_tuf_meta_free(root);
    json_decref(rdoc);
    json_decref(doc);
    ota_signer_free(s);
}

/* ---- signing and merging ---------------------------------------------- */

static void test_sign(void **state)
{
    (void)state;
    json_t *doc = wrap(timestamp_signed());
    /* sign in reverse keyid-unrelated order; entries come out sorted */
    for (int i = NKEYS - 1; i >= 0; i--)
        assert_int_equal(ota_tuf_sign(doc, keys[i]), 0);
    json_t *sigs = json_object_get(doc, "signatures");
    assert_int_equal(json_array_size(sigs), NKEYS);
    for (size_t i = 1; i < json_array_size(sigs); i++) {
        const char *a = json_string_value(json_object_get(json_array_get(sigs, i - 1), "keyid"));
        const char *b = json_string_value(json_object_get(json_array_get(sigs, i), "keyid"));
        assert_true(strcmp(a, b) < 0);
    }
    /* signing again replaces (same bytes: Ed25519 is deterministic) */
    char *before = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(ota_tuf_sign(doc, keys[2]), 0);
    char *after = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(json_array_size(sigs), NKEYS);
    /* after a change, re-signing replaces the old signature */
    char old[2 * OTA_ED25519_SIG_LEN + 1];
    memcpy(old, sig_of(doc, kid(2)), sizeof(old));
    mutate(doc, "/signed/version", "6");
    assert_int_equal(ota_tuf_sign(doc, keys[2]), 0);
    assert_int_equal(json_array_size(sigs), NKEYS);
    assert_string_not_equal(sig_of(doc, kid(2)), old);
    json_decref(doc);

    /* stale duplicate entries of the signing key all go */
    doc = wrap(timestamp_signed());
    set_sig(doc, kid(0), "00");
    assert_int_equal(json_array_append_new(json_object_get(doc, "signatures"),
                                           json_pack("{s:s, s:s}", "keyid", kid(0), "sig", "11")),
                     0);
    assert_int_equal(ota_tuf_sign(doc, keys[0]), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "signatures")), 1);
    assert_int_equal(parse_doc(NULL, doc, OTA_TUF_TIMESTAMP, NULL), 0);
    /* the cap on entries */
    sigs = json_object_get(doc, "signatures");
    char id[OTA_KEYID_SIZE];
    for (int i = 0; json_array_size(sigs) < OTA_TUF_MAX_SIGS; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(
            json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", id, "sig", "00")), 0);
    }
    assert_int_equal(ota_tuf_sign(doc, keys[0]), 0); /* replaces its own entry */
    assert_int_equal(ota_tuf_sign(doc, keys[1]), OTA_ERR_TOO_LARGE);
    assert_int_equal(json_array_size(sigs), OTA_TUF_MAX_SIGS);
    json_decref(doc);

    /* shape errors */
    doc = json_pack("{s:{}}", "signed");
    assert_int_equal(ota_tuf_sign(doc, keys[0]), OTA_ERR_FORMAT);
    json_decref(doc);
    doc = json_pack("{s:[], s:[]}", "signed", "signatures");
    assert_int_equal(ota_tuf_sign(doc, keys[0]), OTA_ERR_FORMAT);
    json_decref(doc);
    doc = json_pack("{s:{}, s:[i]}", "signed", "signatures", 1);
    assert_int_equal(ota_tuf_sign(doc, keys[0]), OTA_ERR_FORMAT);
    json_decref(doc);
    doc = json_pack("{s:{s:f}, s:[]}", "signed", "x", 0.5, "signatures");
    assert_int_equal(ota_tuf_sign(doc, keys[0]), OTA_ERR_JSON_REAL);
    json_decref(doc);
    assert_int_equal(ota_tuf_sign(NULL, keys[0]), OTA_ERR_INVALID_ARG);
    doc = wrap(timestamp_signed());
    assert_int_equal(ota_tuf_sign(doc, NULL), OTA_ERR_INVALID_ARG);
    json_decref(doc);
}

static void test_merge(void **state)
{
    (void)state;
    struct ota_tuf_meta *root = root_2of3();
    struct ota_detail det = {{0}};
    /* two signers each sign their own copy */
    json_t *a = targets_signed_by(0x2u);
    json_t *b = targets_signed_by(0x4u);
    assert_int_equal(verify_targets(a, root, &det), OTA_ERR_THRESHOLD);
    assert_int_equal(ota_tuf_merge_signatures(a, b, &det), 0);
    assert_int_equal(json_array_size(json_object_get(a, "signatures")), 2);
    assert_int_equal(verify_targets(a, root, &det), 0);
    /* merging again adds nothing; the source is unchanged */
    assert_int_equal(ota_tuf_merge_signatures(a, b, &det), 0);
    assert_int_equal(json_array_size(json_object_get(a, "signatures")), 2);
    assert_int_equal(json_array_size(json_object_get(b, "signatures")), 1);
    /* an existing entry of dst is kept, not overwritten */
    json_t *c = targets_signed_by(0x2u);
    set_sig(c, kid(1), "00");
    assert_int_equal(ota_tuf_merge_signatures(a, c, &det), 0);
    assert_string_not_equal(sig_of(a, kid(1)), "00");
    json_decref(c);
    /* same signed part in another key order and formatting still merges */
    c = targets_signed_by(0x8u);
    char *text = json_dumps(c, JSON_INDENT(3) | JSON_SORT_KEYS);
    json_decref(c);
    c = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(ota_tuf_merge_signatures(a, c, &det), 0);
    assert_int_equal(json_array_size(json_object_get(a, "signatures")), 3);
    json_decref(c);
    /* differing signed parts */
    c = targets_signed_by(0x8u);
    mutate(c, "/signed/version", "4");
    assert_int_equal(ota_tuf_sign(c, keys[3]), 0);
    json_t *snap = json_deep_copy(a);
    assert_int_equal(ota_tuf_merge_signatures(a, c, &det), OTA_ERR_FORMAT);
    assert_string_equal(det.msg, "signed parts differ");
    assert_true(json_equal(a, snap));
    json_decref(snap);
    json_decref(c);
    /* malformed documents */
    c = json_pack("{s:{}}", "signed");
    assert_int_equal(ota_tuf_merge_signatures(a, c, &det), OTA_ERR_FORMAT);
    assert_int_equal(ota_tuf_merge_signatures(c, a, &det), OTA_ERR_FORMAT);
    json_decref(c);
    assert_int_equal(ota_tuf_merge_signatures(NULL, a, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_tuf_merge_signatures(a, NULL, &det), OTA_ERR_INVALID_ARG);
    json_decref(a);
    json_decref(b);
    ota_tuf_meta_free(root);
}

/* ---- helpers for repositories ------------------------------------------ */

static void test_target_file_path(void **state)
{
    (void)state;
    struct ota_tuf_target t = {.path = "fw/1.2.0/app.img", .length = 1};
    assert_int_equal(ota_hex_decode(t.sha256, OTA_SHA256_LEN, HASH_ABC), 0);
    char *p = NULL;
    assert_int_equal(ota_tuf_target_file_path(&p, &t), 0);
    assert_string_equal(p, "fw/1.2.0/"
                           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
                           "0015ad.app.img");
    free(p);
    t.path = "app.img";
    assert_int_equal(ota_tuf_target_file_path(&p, &t), 0);
    assert_string_equal(p, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad."
                           "app.img");
    free(p);
    t.path = "a/b";
    assert_int_equal(ota_tuf_target_file_path(&p, &t), 0);
    assert_string_equal(p, "a/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.b");
    free(p);
    assert_int_equal(ota_tuf_target_file_path(&p, NULL), OTA_ERR_INVALID_ARG);
    assert_null(p);
    assert_int_equal(ota_tuf_target_file_path(NULL, &t), OTA_ERR_INVALID_ARG);
}

static void test_key_object_and_names(void **state)
{
    (void)state;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    ota_signer_public(pub, keys[0]);
    json_t *k = ota_tuf_key_object(pub);
    uint8_t *canon = NULL;
    size_t len = 0;
    assert_int_equal(ota_json_canonical_alloc(&canon, &len, k), 0);
    char want[256];
    snprintf(want, sizeof(want),
             "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"%s\"},\"scheme\":\"ed25519\"}",
             pubhex[0]);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(canon, want, len);
    free(canon);
    char id[OTA_KEYID_SIZE];
    keyid_of(id, k);
    assert_string_equal(id, kid(0));
    json_decref(k);
    assert_null(ota_tuf_key_object(NULL));

    assert_string_equal(ota_tuf_role_name(OTA_TUF_ROOT), "root");
    assert_string_equal(ota_tuf_role_name(OTA_TUF_TARGETS), "targets");
    assert_string_equal(ota_tuf_role_name(OTA_TUF_SNAPSHOT), "snapshot");
    assert_string_equal(ota_tuf_role_name(OTA_TUF_TIMESTAMP), "timestamp");
    ota_tuf_meta_free(NULL);
}

/* ---- main ------------------------------------------------------------- */

#define NCASES (sizeof(cases) / sizeof(cases[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_roundtrip_root),
        cmocka_unit_test(test_roundtrip_targets),
        cmocka_unit_test(test_targets_many),
        cmocka_unit_test(test_roundtrip_snapshot),
        cmocka_unit_test(test_roundtrip_timestamp),
        cmocka_unit_test(test_wrong_role),
        cmocka_unit_test(test_raw_input),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_threshold_unreachable),
        cmocka_unit_test(test_key_variants),
        cmocka_unit_test(test_keyid_mismatch),
        cmocka_unit_test(test_ledger_field),
        cmocka_unit_test(test_verify_args),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_check_metafile),
        cmocka_unit_test(test_role_changed),
        cmocka_unit_test(test_root_step),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_target_file_path),
        cmocka_unit_test(test_key_object_and_names),
    };
    enum { NFIXED = sizeof(fixed) / sizeof(fixed[0]) };
    static struct CMUnitTest all[NFIXED + NCASES];
    memcpy(all, fixed, sizeof(fixed));
    for (size_t i = 0; i < NCASES; i++) {
        all[NFIXED + i] = (struct CMUnitTest){
            .name = cases[i].name,
            .test_func = run_case,
            .initial_state = (void *)&cases[i],
        };
    }
    return _cmocka_run_group_tests("tuf", all, NFIXED + NCASES, group_setup, group_teardown);
}
