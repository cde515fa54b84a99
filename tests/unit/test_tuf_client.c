/* The TUF client workflow against small repositories built here with the
 * library (fixed-seed keys, ota_tuf_sign, canonical JSON) and served by the
 * directory fetcher. Each rule of tuf_client.h is broken once and must be
 * refused with its own error; the fast-forward recovery, a failure at
 * every state write and a failure at every allocation are played through.
 * So is each rule of the chunk-index loader built on the client
 * (dp_fetch.h: struct ota_dp_tuf_index), through a fetcher that counts
 * its requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chunk_fixture.h"
#include "failalloc.h"
#include "testfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/dp_fetch.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/sign.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"
#include "otachain/tuf_sign.h"

#define NOW   1700000000LL /* 2023-11-14 */
#define BUILD 1500000000LL /* 2017-07-14: the time floor a new state starts at */
#define FAR   2100000000LL /* 2036-07-18 */
#define PAST  1600000000LL /* 2020-09-13 */

#define TARGET      "fw/app.bin"
#define PAYLOAD_LEN (100u * 1024) /* crosses the fetchers' 64 KiB reads */

enum key_id { K_ROOT1, K_ROOT2, K_TS1, K_TS2, K_SNAP, K_TG1, K_TG2, NKEYS };

struct root_cfg {
    uint64_t version;
    int64_t expires;
    bool inconsistent; /* consistent_snapshot false */
    int root_keys[2];
    size_t nroot;
    unsigned root_threshold;
    int ts_key, snap_key, tg_key;
};

/* One publication of timestamp + snapshot + targets + the target. */
struct pub {
    uint64_t ts_v, snap_v, tg_v;
    int64_t ts_exp, snap_exp, tg_exp;
    int ts_key, snap_key, tg_key;
    bool no_pin;     /* referrers pin versions only, not length/hash */
    bool extra_meta; /* snapshot also lists "role1.json" */
    uint8_t fill;    /* payload variant */
    json_t *custom;  /* TARGET's custom (borrowed); NULL: {"version": "1.0.0"} */
    json_t *extra;   /* more entries of targets.json (borrowed), or NULL */
};

struct fx {
    char base[64];
    char repo[128];
    char state[128];
    char out[160]; /* out/app.bin */
    struct ota_signer *k[NKEYS];
    struct ota_fetcher *f;
    uint8_t *root1;
    size_t root1_len;
    struct root_cfg rc;
    struct pub pub;
    struct ota_tuf_client *c;
    struct ota_tuf_client_opts opts;
    int64_t now; /* the clock reading refreshes are given */
};

#define assert_err(expr, want, det)                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            print_message("got %s (%s), want %s\n", ota_errname(rc_), (det)->msg,                  \
                          ota_errname(want));                                                      \
        assert_int_equal(rc_, (want));                                                             \
    } while (0)

/* ---- files ------------------------------------------------------------------ */

static void write_path(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static uint8_t *read_path(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    if (ota_fs_read(&data, len, path, 64u * 1024 * 1024) != 0)
        return NULL;
    return data;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void repo_file(const struct fx *fx, const char *sub, const char *name, char *out,
                      size_t size)
{
    int n = snprintf(out, size, "%s/%s/%s", fx->repo, sub, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void state_file(const char *state, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", state, name);
    assert_true(n > 0 && (size_t)n < size);
}

/* ---- building metadata --------------------------------------------------------- */

static json_t *skeleton(const char *type, uint64_t version, int64_t expires)
{
    char exp[OTA_TUF_TIME_SIZE];
    assert_int_equal(ota_tuf_format_time(exp, expires), 0);
    json_t *s = json_pack("{s:s, s:s, s:I, s:s}", "_type", type, "spec_version",
                          OTA_TUF_SPEC_VERSION, "version", (json_int_t)version, "expires", exp);
    assert_non_null(s);
    return s;
}

static json_t *envelope(json_t *sgn)
{
    json_t *doc = json_pack("{s:o, s:[]}", "signed", sgn, "signatures");
    assert_non_null(doc);
    return doc;
}

static void sign_with(json_t *doc, const struct fx *fx, int key)
{
    assert_int_equal(ota_tuf_sign(doc, fx->k[key]), 0);
}

/* Canonical bytes of doc (free()). */
static uint8_t *emit(const json_t *doc, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(ota_json_canonical_alloc(&out, len, doc), 0);
    return out;
}

/* Writes doc to metadata/<name>; returns its bytes when wanted. */
static void put_meta(const struct fx *fx, const char *name, const json_t *doc, uint8_t **bytes,
                     size_t *len)
{
    size_t n;
    uint8_t *b = emit(doc, &n);
    char path[512];
    repo_file(fx, "metadata", name, path, sizeof(path));
    write_path(path, b, n);
    if (bytes) {
        *bytes = b;
        *len = n;
    } else {
        free(b);
    }
}

/* A meta entry: version, and length + sha256 of bytes when given. */
static json_t *metafile(uint64_t version, const uint8_t *bytes, size_t len)
{
    json_t *m = json_pack("{s:I}", "version", (json_int_t)version);
    assert_non_null(m);
    if (bytes) {
        uint8_t d[OTA_SHA256_LEN];
        char hex[OTA_SHA256_HEX_LEN + 1];
        assert_int_equal(ota_sha256(d, bytes, len), 0);
        ota_hex_encode(hex, d, sizeof(d));
        assert_int_equal(json_object_set_new(m, "length", json_integer((json_int_t)len)), 0);
        assert_int_equal(json_object_set_new(m, "hashes", json_pack("{s:s}", "sha256", hex)), 0);
    }
    return m;
}

static json_t *role_obj(const struct fx *fx, const int *keys, size_t n, unsigned threshold)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(ota_signer_keyid(fx->k[keys[i]])));
    json_t *r = json_pack("{s:o, s:i}", "keyids", ids, "threshold", (int)threshold);
    assert_non_null(r);
    return r;
}

static json_t *root_doc(const struct fx *fx, const struct root_cfg *rc)
{
    json_t *sgn = skeleton("root", rc->version, rc->expires);
    json_object_set_new(sgn, "consistent_snapshot", json_boolean(!rc->inconsistent));
    json_t *keys = json_object();
    int used[5] = {rc->root_keys[0], rc->root_keys[1], rc->ts_key, rc->snap_key, rc->tg_key};
    for (size_t i = 0; i < 5; i++) {
        if (i == 1 && rc->nroot < 2)
            continue;
        uint8_t pub[OTA_ED25519_PUB_LEN];
        ota_signer_public(pub, fx->k[used[i]]);
        json_object_set_new(keys, ota_signer_keyid(fx->k[used[i]]), ota_tuf_key_object(pub));
    }
    json_object_set_new(sgn, "keys", keys);
    json_t *roles = json_object();
    json_object_set_new(roles, "root", role_obj(fx, rc->root_keys, rc->nroot, rc->root_threshold));
    json_object_set_new(roles, "timestamp", role_obj(fx, &rc->ts_key, 1, 1));
    json_object_set_new(roles, "snapshot", role_obj(fx, &rc->snap_key, 1, 1));
    json_object_set_new(roles, "targets", role_obj(fx, &rc->tg_key, 1, 1));
    json_object_set_new(sgn, "roles", roles);
    return envelope(sgn);
}

/* Writes metadata/<file_version>.root.json signed by the given keys. */
static void put_root(const struct fx *fx, uint64_t file_version, const struct root_cfg *rc,
                     const int *signers, size_t nsigners, uint8_t **bytes, size_t *len)
{
    json_t *doc = root_doc(fx, rc);
    for (size_t i = 0; i < nsigners; i++)
        sign_with(doc, fx, signers[i]);
    char name[64];
    snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)file_version);
    put_meta(fx, name, doc, bytes, len);
    json_decref(doc);
}

static uint8_t *payload(uint8_t fill, size_t *len)
{
    uint8_t *p = malloc(PAYLOAD_LEN);
    assert_non_null(p);
    for (size_t i = 0; i < PAYLOAD_LEN; i++)
        p[i] = (uint8_t)(i * 31 + fill);
    *len = PAYLOAD_LEN;
    return p;
}

/* fx->out holds the payload of variant fill. */
static void assert_out_is_payload(const struct fx *fx, uint8_t fill)
{
    size_t len, want_len;
    uint8_t *got = read_path(fx->out, &len);
    uint8_t *want = payload(fill, &want_len);

    assert_non_null(got);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
}

/* repo path of a target: targets/fw/<sha256>.app.bin */
static void target_repo_path(const struct fx *fx, const uint8_t *data, size_t len, char *out,
                             size_t size)
{
    uint8_t d[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    assert_int_equal(ota_sha256(d, data, len), 0);
    ota_hex_encode(hex, d, sizeof(d));
    int n = snprintf(out, size, "%s/targets/fw/%s.app.bin", fx->repo, hex);
    assert_true(n > 0 && (size_t)n < size);
}

static json_t *targets_doc(const struct pub *p, const uint8_t *data, size_t len)
{
    uint8_t d[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    assert_int_equal(ota_sha256(d, data, len), 0);
    ota_hex_encode(hex, d, sizeof(d));
    json_t *sgn = skeleton("targets", p->tg_v, p->tg_exp);
    json_t *custom = p->custom ? json_deep_copy(p->custom) : json_pack("{s:s}", "version", "1.0.0");
    json_t *t = json_pack("{s:{s:I, s:{s:s}, s:o}}", TARGET, "length", (json_int_t)len, "hashes",
                          "sha256", hex, "custom", custom);
    assert_non_null(t);
    if (p->extra)
        assert_int_equal(json_object_update(t, p->extra), 0);
    json_object_set_new(sgn, "targets", t);
    return envelope(sgn);
}

static json_t *snapshot_doc(uint64_t version, int64_t expires, json_t *targets_meta, bool extra)
{
    json_t *sgn = skeleton("snapshot", version, expires);
    json_t *meta = json_object();
    json_object_set_new(meta, "targets.json", targets_meta);
    if (extra)
        json_object_set_new(meta, "role1.json", metafile(1, NULL, 0));
    json_object_set_new(sgn, "meta", meta);
    return envelope(sgn);
}

static json_t *timestamp_doc(uint64_t version, int64_t expires, json_t *snapshot_meta)
{
    json_t *sgn = skeleton("timestamp", version, expires);
    json_object_set_new(sgn, "meta", json_pack("{s:o}", "snapshot.json", snapshot_meta));
    return envelope(sgn);
}

/* Writes a whole consistent publication. */
static void publish(const struct fx *fx, const struct pub *p)
{
    size_t plen;
    uint8_t *data = payload(p->fill, &plen);
    char path[512];
    target_repo_path(fx, data, plen, path, sizeof(path));
    write_path(path, data, plen);

    char name[64];
    uint8_t *tg_bytes, *snap_bytes;
    size_t tg_len, snap_len;
    json_t *tg = targets_doc(p, data, plen);
    sign_with(tg, fx, p->tg_key);
    snprintf(name, sizeof(name), "%llu.targets.json", (unsigned long long)p->tg_v);
    put_meta(fx, name, tg, &tg_bytes, &tg_len);

    json_t *sn =
        snapshot_doc(p->snap_v, p->snap_exp, metafile(p->tg_v, p->no_pin ? NULL : tg_bytes, tg_len),
                     p->extra_meta);
    sign_with(sn, fx, p->snap_key);
    snprintf(name, sizeof(name), "%llu.snapshot.json", (unsigned long long)p->snap_v);
    put_meta(fx, name, sn, &snap_bytes, &snap_len);

    json_t *ts = timestamp_doc(p->ts_v, p->ts_exp,
                               metafile(p->snap_v, p->no_pin ? NULL : snap_bytes, snap_len));
    sign_with(ts, fx, p->ts_key);
    put_meta(fx, "timestamp.json", ts, NULL, NULL);

    json_decref(tg);
    json_decref(sn);
    json_decref(ts);
    free(tg_bytes);
    free(snap_bytes);
    free(data);
}

/* Writes only timestamp.json pointing at snapshot version snap_v. */
static void put_timestamp(const struct fx *fx, uint64_t v, int64_t exp, uint64_t snap_v, int key)
{
    json_t *ts = timestamp_doc(v, exp, metafile(snap_v, NULL, 0));
    sign_with(ts, fx, key);
    put_meta(fx, "timestamp.json", ts, NULL, NULL);
    json_decref(ts);
}

/* ---- fixture -------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->base, sizeof(fx->base), "/tmp/ota-test-tufc-XXXXXX");
    if (mkdtemp(fx->base) == NULL)
        return -1;
    snprintf(fx->repo, sizeof(fx->repo), "%s/repo", fx->base);
    snprintf(fx->state, sizeof(fx->state), "%s/state", fx->base);
    snprintf(fx->out, sizeof(fx->out), "%s/out/app.bin", fx->base);
    const char *dirs[] = {"repo", "repo/metadata", "repo/targets", "repo/targets/fw", "out"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char d[256];
        snprintf(d, sizeof(d), "%s/%s", fx->base, dirs[i]);
        if (mkdir(d, 0755) != 0)
            return -1;
    }
    for (int i = 0; i < NKEYS; i++) {
        uint8_t seed[OTA_ED25519_SEED_LEN];
        for (size_t j = 0; j < sizeof(seed); j++)
            seed[j] = (uint8_t)(0x40 + i * 17 + j);
        if (ota_signer_from_seed(&fx->k[i], seed) != 0)
            return -1;
    }
    if (ota_fetcher_dir_new(&fx->f, fx->repo) != 0)
        return -1;

    fx->rc = (struct root_cfg){.version = 1,
                               .expires = FAR,
                               .root_keys = {K_ROOT1, K_ROOT1},
                               .nroot = 1,
                               .root_threshold = 1,
                               .ts_key = K_TS1,
                               .snap_key = K_SNAP,
                               .tg_key = K_TG1};
    int signer = K_ROOT1;
    put_root(fx, 1, &fx->rc, &signer, 1, &fx->root1, &fx->root1_len);
    fx->pub = (struct pub){.ts_v = 1,
                           .snap_v = 1,
                           .tg_v = 1,
                           .ts_exp = FAR,
                           .snap_exp = FAR,
                           .tg_exp = FAR,
                           .ts_key = K_TS1,
                           .snap_key = K_SNAP,
                           .tg_key = K_TG1};
    publish(fx, &fx->pub);
    fx->opts = (struct ota_tuf_client_opts){.state_dir = fx->state, .build_time = BUILD};
    fx->now = NOW;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    ota_tuf_client_free(fx->c);
    ota_fetcher_free(fx->f);
    for (int i = 0; i < NKEYS; i++)
        ota_signer_free(fx->k[i]);
    free(fx->root1);
    rm_rf(fx->base);
    free(fx);
    return 0;
}

/* (Re)opens the client on fx->state with fx->opts. */
static int open_client(struct fx *fx, struct ota_detail *det)
{
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    return ota_tuf_client_open(&fx->c, &fx->opts, fx->root1, fx->root1_len, det);
}

static int refresh(struct fx *fx, struct ota_detail *det)
{
    return ota_tuf_client_refresh(fx->c, fx->f, fx->now, det);
}

static void open_and_refresh(struct fx *fx)
{
    struct ota_detail det = {{0}};
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), 0, &det);
}

static uint64_t trusted_version(const struct fx *fx, enum ota_tuf_role role)
{
    const struct ota_tuf_meta *md = ota_tuf_client_trusted(fx->c, role);
    return md ? md->version : 0;
}

static void assert_versions(const struct fx *fx, uint64_t root, uint64_t ts, uint64_t snap,
                            uint64_t tg)
{
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), root);
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), ts);
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), snap);
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), tg);
}

/* A root v2 signed by both root keys (old and new) handing the given roles
 * to new keys; written as metadata/2.root.json. */
static void rotate_root(struct fx *fx, int ts_key, int tg_key)
{
    fx->rc.version = 2;
    fx->rc.root_keys[0] = K_ROOT2;
    fx->rc.ts_key = ts_key;
    fx->rc.tg_key = tg_key;
    int signers[] = {K_ROOT1, K_ROOT2};
    put_root(fx, 2, &fx->rc, signers, 2, NULL, NULL);
}

/* ---- happy path ------------------------------------------------------------------ */

static void test_happy_path_and_download(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    assert_versions(fx, 1, 1, 1, 1);
    const struct ota_tuf_meta *tg = ota_tuf_client_trusted(fx->c, OTA_TUF_TARGETS);
    assert_non_null(ota_tuf_find_target(tg, TARGET));

    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), 0, &det);
    assert_out_is_payload(fx, 0);
    char part[256];
    snprintf(part, sizeof(part), "%s.part", fx->out);
    assert_false(exists(part));

    /* Every trusted file is stored, private to the owner. */
    const char *names[] = {"root.json", "timestamp.json", "snapshot.json", "targets.json"};
    for (size_t i = 0; i < 4; i++) {
        char p[256];
        struct stat st;
        state_file(fx->state, names[i], p, sizeof(p));
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    struct stat st;
    assert_int_equal(stat(fx->state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* No ledger in this root: no checkpoint kept. */
    assert_null(ota_tuf_client_checkpoint(fx->c));
    char cp[256];
    state_file(fx->state, "checkpoint", cp, sizeof(cp));
    assert_false(exists(cp));

    /* Nothing new: a second refresh keeps everything. */
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 1, 1, 1);

    /* Reopening from the state alone (no bootstrap) trusts the same files. */
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    assert_err(ota_tuf_client_open(&fx->c, &fx->opts, NULL, 0, &det), 0, &det);
    assert_versions(fx, 1, 1, 1, 1);

    /* A new release: everything moves on. */
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.tg_v = 2;
    fx->pub.fill = 9;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), 0, &det);
    assert_out_is_payload(fx, 9);
}

static void test_open_without_root(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    struct ota_tuf_client *c = NULL;
    assert_err(ota_tuf_client_open(&c, &fx->opts, NULL, 0, &det), OTA_ERR_NO_TRUSTED_ROOT, &det);
    assert_null(c);
    struct ota_tuf_client_opts none = {0};
    assert_err(ota_tuf_client_open(&c, &none, fx->root1, fx->root1_len, &det), OTA_ERR_INVALID_ARG,
               &det);
}

static void test_bootstrap_not_self_signed(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    int signer = K_ROOT2; /* not a key of its root role */
    uint8_t *bytes;
    size_t len;
    put_root(fx, 1, &fx->rc, &signer, 1, &bytes, &len);
    struct ota_tuf_client *c = NULL;
    assert_err(ota_tuf_client_open(&c, &fx->opts, bytes, len, &det), OTA_ERR_THRESHOLD, &det);
    assert_null(c);
    char p[256];
    state_file(fx->state, "root.json", p, sizeof(p));
    assert_false(exists(p));
    free(bytes);
}

static void test_local_files_that_no_longer_verify_are_ignored(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    char p[256];
    state_file(fx->state, "timestamp.json", p, sizeof(p));
    write_path(p, "{\"not\":\"metadata\"}", 18);
    /* A snapshot signed by the wrong key. */
    json_t *sn = snapshot_doc(5, FAR, metafile(1, NULL, 0), false);
    sign_with(sn, fx, K_TS1);
    size_t n;
    uint8_t *b = emit(sn, &n);
    state_file(fx->state, "snapshot.json", p, sizeof(p));
    write_path(p, b, n);
    free(b);
    json_decref(sn);

    assert_err(open_client(fx, &det), 0, &det);
    assert_versions(fx, 1, 0, 0, 1);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 1, 1, 1);
}

static void test_download_requires_refresh_and_known_target(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    assert_err(ota_tuf_client_download(fx->c, fx->f, "fw/other.bin", fx->out, &det),
               OTA_ERR_TARGET_UNKNOWN, &det);
    assert_non_null(strstr(det.msg, "fw/other.bin"));
    assert_false(exists(fx->out));

    /* A fresh client has targets from its state, but no refresh yet. */
    assert_err(open_client(fx, &det), 0, &det);
    assert_non_null(ota_tuf_client_trusted(fx->c, OTA_TUF_TARGETS));
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), OTA_ERR_INVALID_ARG,
               &det);
    /* A failed refresh does not count either. */
    fx->pub.ts_exp = PAST;
    fx->pub.ts_v = 2;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), OTA_ERR_INVALID_ARG,
               &det);
    assert_false(exists(fx->out));
}

/* ---- 5.3 root ----------------------------------------------------------------------- */

static void test_root_rotation(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    rotate_root(fx, K_TS1, K_TG1);
    /* v3 signed by v2's root key only. */
    fx->rc.version = 3;
    int signer = K_ROOT2;
    put_root(fx, 3, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 3, 1, 1, 1);
    /* The stored root is v3. */
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 3);
}

static void test_root_max_rotations(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    for (uint64_t v = 2; v <= 4; v++) {
        fx->rc.version = v;
        int signer = K_ROOT1;
        put_root(fx, v, &fx->rc, &signer, 1, NULL, NULL);
    }
    fx->opts.max_root_rotations = 2;
    open_and_refresh(fx);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 3);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 4);
}

static void test_root_not_signed_by_old_threshold(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->rc.version = 2;
    fx->rc.root_keys[0] = K_ROOT2;
    int signer = K_ROOT2; /* the new key alone */
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_THRESHOLD, &det);
    assert_non_null(strstr(det.msg, "2.root.json"));
    assert_non_null(strstr(det.msg, "root threshold of version 1"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
}

static void test_root_not_signed_by_new_threshold(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->rc.version = 2;
    fx->rc.root_keys[0] = K_ROOT2;
    int signer = K_ROOT1; /* the old key alone */
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_THRESHOLD, &det);
    assert_non_null(strstr(det.msg, "its own root threshold"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
}

static void test_root_version_mismatch(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->rc.version = 3; /* served as 2.root.json */
    int signer = K_ROOT1;
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_VERSION_MISMATCH, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
}

static void test_root_expired(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    /* An expired intermediate root is fine; an expired final one is not. */
    fx->rc.version = 2;
    fx->rc.expires = PAST;
    int signer = K_ROOT1;
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "root.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 2);
    fx->rc.version = 3;
    fx->rc.expires = FAR;
    put_root(fx, 3, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 3);
}

static void test_root_not_consistent_snapshot(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->rc.version = 2;
    fx->rc.inconsistent = true;
    int signer = K_ROOT1;
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_UNSUPPORTED, &det);
}

/* ---- 5.4 timestamp -------------------------------------------------------------------- */

static void test_timestamp_rollback(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.ts_v = 5;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    fx->pub.ts_v = 3;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_non_null(strstr(det.msg, "timestamp.json"));
    assert_non_null(strstr(det.msg, "version 3 is lower than the trusted version 5"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 5);
}

static void test_timestamp_snapshot_version_rollback(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    put_timestamp(fx, 3, FAR, 1, K_TS1);
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_non_null(strstr(det.msg, "snapshot.json version 1"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 2);
}

static void test_timestamp_equal_keeps_trusted(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    char p[256];
    state_file(fx->state, "timestamp.json", p, sizeof(p));
    size_t before_len, after_len;
    uint8_t *before = read_path(p, &before_len);
    int64_t expires = ota_tuf_client_trusted(fx->c, OTA_TUF_TIMESTAMP)->expires;
    /* Same version, other content. */
    put_timestamp(fx, 1, FAR - 1000, 1, K_TS1);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(ota_tuf_client_trusted(fx->c, OTA_TUF_TIMESTAMP)->expires, expires);
    uint8_t *after = read_path(p, &after_len);
    assert_non_null(before);
    assert_non_null(after);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
}

static void test_timestamp_expired(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.ts_exp = PAST;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "timestamp.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 1); /* not persisted */
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 1);

    /* The trusted copy itself expiring is a freeze too. */
    fx->now = FAR + 1;
    fx->rc.version = 2;
    fx->rc.expires = FAR + 1000;
    int signer = K_ROOT1;
    put_root(fx, 2, &fx->rc, &signer, 1, NULL, NULL);
    put_timestamp(fx, 1, FAR, 1, K_TS1);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
}

/* The time floor without a ledger (DESIGN §6): it is the build time, and
 * a clock below it (0, or no reading at all) is not believed, so metadata
 * that expired before the software was built is refused. */
static void test_expiry_against_time_floor(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.ts_exp = PAST;
    publish(fx, &fx->pub);
    fx->now = 0; /* valid at the clock: 1970 */
    fx->opts.build_time = PAST - 1;
    open_and_refresh(fx);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), PAST - 1);
    char p[256];
    snprintf(p, sizeof(p), "%s/time-floor", fx->state);
    size_t len;
    uint8_t *b = read_path(p, &len);
    assert_non_null(b);
    assert_int_equal(len, 11);
    assert_memory_equal(b, "1599999999\n", 11);
    free(b);

    /* A newer build: its time is the floor, and the clock still reads 0. */
    fx->opts.build_time = PAST;
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "timestamp.json"));
    assert_non_null(strstr(det.msg, "the clock reads 1970-01-01T00:00:00Z"));
    fx->now = OTA_TIME_NONE;
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "the clock reads none"));
    /* An older build again does not lower what the newer one stored
     * (stored after a successful refresh). */
    fx->pub.ts_v = 2;
    fx->pub.ts_exp = FAR;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), 0, &det);
    fx->opts.build_time = BUILD;
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), PAST);
    /* The clock ahead of the floor is believed. */
    fx->now = FAR + 1;
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
}

static void test_state_dir_locked(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    assert_err(open_client(fx, &det), 0, &det);
    struct ota_tuf_client *second = NULL;
    assert_err(ota_tuf_client_open(&second, &fx->opts, fx->root1, fx->root1_len, &det),
               OTA_ERR_LOCKED, &det);
    assert_null(second);
    assert_non_null(strstr(det.msg, ".lock"));
    /* Released by free. */
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    assert_err(ota_tuf_client_open(&second, &fx->opts, fx->root1, fx->root1_len, &det), 0, &det);
    ota_tuf_client_free(second);
}

static void test_timestamp_over_cap(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->opts.timestamp_max_len = 100;
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_TOO_LARGE, &det);
    assert_null(ota_tuf_client_trusted(fx->c, OTA_TUF_TIMESTAMP));
}

static void test_timestamp_wrong_key(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.ts_key = K_SNAP;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_THRESHOLD, &det);
    assert_non_null(strstr(det.msg, "timestamp.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 1);
}

/* ---- 5.5 snapshot -------------------------------------------------------------------------- */

static void test_snapshot_version_mismatch(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    /* Mix and match: the timestamp names snapshot 2, the file served as
     * 2.snapshot.json is the (validly signed) snapshot 1. */
    char from[512], to[512];
    repo_file(fx, "metadata", "1.snapshot.json", from, sizeof(from));
    repo_file(fx, "metadata", "2.snapshot.json", to, sizeof(to));
    size_t n;
    uint8_t *b = read_path(from, &n);
    assert_non_null(b);
    write_path(to, b, n);
    free(b);
    put_timestamp(fx, 2, FAR, 2, K_TS1);
    assert_err(refresh(fx, &det), OTA_ERR_VERSION_MISMATCH, &det);
    assert_non_null(strstr(det.msg, "2.snapshot.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 2);
}

static void test_snapshot_length_and_hash_pinned(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    publish(fx, &fx->pub);
    char p[512];
    repo_file(fx, "metadata", "2.snapshot.json", p, sizeof(p));
    size_t n;
    uint8_t *good = read_path(p, &n);
    assert_non_null(good);

    /* Same length, one byte changed (inside the signature hex). */
    uint8_t *bad = malloc(n + 1);
    assert_non_null(bad);
    memcpy(bad, good, n);
    char *sig = strstr((char *)bad, "\"sig\":\"");
    assert_non_null(sig);
    sig[7] = sig[7] == 'a' ? 'b' : 'a';
    write_path(p, bad, n);
    assert_err(refresh(fx, &det), OTA_ERR_HASH_MISMATCH, &det);
    assert_non_null(strstr(det.msg, "2.snapshot.json"));

    /* Shorter than pinned. */
    write_path(p, good, n - 1);
    assert_err(refresh(fx, &det), OTA_ERR_LENGTH_MISMATCH, &det);

    /* Longer than pinned: refused at the pinned length, which it breaks. */
    memcpy(bad, good, n);
    bad[n] = ' ';
    write_path(p, bad, n + 1);
    assert_err(refresh(fx, &det), OTA_ERR_LENGTH_MISMATCH, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);

    write_path(p, good, n);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 2);
    free(good);
    free(bad);
}

static void test_snapshot_meta_removed(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.extra_meta = true;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    fx->pub.extra_meta = false;
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_META_MISSING, &det);
    assert_non_null(strstr(det.msg, "role1.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
}

static void test_snapshot_targets_version_rollback(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.tg_v = 2;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), 2);
    /* Snapshot 2 goes back to targets 1. */
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.tg_v = 1;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_non_null(strstr(det.msg, "targets.json version 1 is lower than the trusted version 2"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
}

static void test_snapshot_rollback_without_timestamp(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.ts_v = 3;
    fx->pub.snap_v = 3;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    /* The trusted timestamp is lost; an older snapshot must still be refused. */
    char p[256];
    state_file(fx->state, "timestamp.json", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    fx->pub.ts_v = 1;
    fx->pub.snap_v = 2;
    publish(fx, &fx->pub);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 3);
}

static void test_snapshot_expired(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.snap_exp = PAST;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "2.snapshot.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
}

/* ---- 5.6 targets ------------------------------------------------------------------------------
 */

static void test_targets_version_mismatch(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    /* Snapshot 2 pins targets 2 by version only; 2.targets.json holds v1. */
    char from[512], to[512];
    repo_file(fx, "metadata", "1.targets.json", from, sizeof(from));
    repo_file(fx, "metadata", "2.targets.json", to, sizeof(to));
    size_t n;
    uint8_t *b = read_path(from, &n);
    assert_non_null(b);
    json_t *sn = snapshot_doc(2, FAR, metafile(2, NULL, 0), false);
    sign_with(sn, fx, K_SNAP);
    put_meta(fx, "2.snapshot.json", sn, NULL, NULL);
    json_decref(sn);
    write_path(to, b, n);
    free(b);
    put_timestamp(fx, 2, FAR, 2, K_TS1);
    assert_err(refresh(fx, &det), OTA_ERR_VERSION_MISMATCH, &det);
    assert_non_null(strstr(det.msg, "2.targets.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 2);
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), 1);
}

static void test_targets_hash_mismatch(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.tg_v = 2;
    publish(fx, &fx->pub);
    char p[512];
    repo_file(fx, "metadata", "2.targets.json", p, sizeof(p));
    size_t n;
    uint8_t *b = read_path(p, &n);
    assert_non_null(b);
    char *sig = strstr((char *)b, "\"sig\":\"");
    assert_non_null(sig);
    sig[7] = sig[7] == 'a' ? 'b' : 'a';
    write_path(p, b, n);
    free(b);
    assert_err(refresh(fx, &det), OTA_ERR_HASH_MISMATCH, &det);
    assert_non_null(strstr(det.msg, "2.targets.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), 1);
}

static void test_targets_missing_from_snapshot(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    assert_err(open_client(fx, &det), 0, &det);
    json_t *sgn = skeleton("snapshot", 2, FAR);
    json_object_set_new(sgn, "meta", json_pack("{s:o}", "role1.json", metafile(1, NULL, 0)));
    json_t *sn = envelope(sgn);
    sign_with(sn, fx, K_SNAP);
    put_meta(fx, "2.snapshot.json", sn, NULL, NULL);
    json_decref(sn);
    put_timestamp(fx, 2, FAR, 2, K_TS1);
    assert_err(refresh(fx, &det), OTA_ERR_META_MISSING, &det);
    assert_non_null(strstr(det.msg, "targets.json"));
}

static void test_targets_expired(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.tg_v = 2;
    fx->pub.tg_exp = PAST;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "2.targets.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), 1);
}

static void test_targets_wrong_key(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.tg_key = K_TG2;
    publish(fx, &fx->pub);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_THRESHOLD, &det);
    assert_null(ota_tuf_client_trusted(fx->c, OTA_TUF_TARGETS));
}

/* ---- 5.7 download ------------------------------------------------------------------------------
 */

static void test_download_hash_mismatch(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    size_t n;
    uint8_t *data = payload(0, &n);
    char p[512];
    target_repo_path(fx, data, n, p, sizeof(p));
    uint8_t t = data[0];
    data[0] = data[1];
    data[1] = t;
    write_path(p, data, n); /* same length, two bytes swapped */
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), OTA_ERR_HASH_MISMATCH,
               &det);
    assert_false(exists(fx->out));
    char part[256];
    snprintf(part, sizeof(part), "%s.part", fx->out);
    assert_false(exists(part));

    /* Shorter: length mismatch; longer: refused at the pinned length. */
    write_path(p, data, n - 1);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det),
               OTA_ERR_LENGTH_MISMATCH, &det);
    uint8_t *longer = calloc(1, n + 1);
    assert_non_null(longer);
    write_path(p, longer, n + 1);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det),
               OTA_ERR_LENGTH_MISMATCH, &det);
    assert_false(exists(fx->out));
    assert_false(exists(part));

    /* An old out_path is left alone by a failed download. */
    write_path(fx->out, "old", 3);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det),
               OTA_ERR_LENGTH_MISMATCH, &det);
    size_t olen;
    uint8_t *old = read_path(fx->out, &olen);
    assert_non_null(old);
    assert_int_equal(olen, 3);
    free(old);
    free(longer);
    free(data);
}

static void test_download_refuses_symlinked_part(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    char part[256], victim[256];
    snprintf(part, sizeof(part), "%s.part", fx->out);
    snprintf(victim, sizeof(victim), "%s/victim", fx->base);
    write_path(victim, "keep", 4);
    assert_int_equal(symlink(victim, part), 0);
    assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), OTA_ERR_IO, &det);
    size_t n;
    uint8_t *v = read_path(victim, &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    free(v);
}

/* ---- fast-forward recovery --------------------------------------------------------------------
 */

static void test_fast_forward_recovery(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    /* The timestamp key leaks; the attacker fast-forwards the client. */
    put_timestamp(fx, 1000, FAR, 1, K_TS1);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 1000);
    /* The real repository's next timestamp is now refused... */
    fx->pub.ts_v = 3;
    fx->pub.snap_v = 2;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_TIMESTAMP), 1000);
    /* ...until root v2 rotates the timestamp key. */
    rotate_root(fx, K_TS2, K_TG1);
    fx->pub.ts_key = K_TS2;
    publish(fx, &fx->pub);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 3, 2, 1);
    assert_err(open_client(fx, &det), 0, &det);
    assert_versions(fx, 2, 3, 2, 1);
}

static void test_targets_key_rotation_drops_targets(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    fx->pub.tg_v = 7;
    publish(fx, &fx->pub);
    open_and_refresh(fx);
    /* New targets key: the old targets.json is no floor any more. */
    rotate_root(fx, K_TS1, K_TG2);
    fx->pub.ts_v = 2;
    fx->pub.snap_v = 2;
    fx->pub.tg_v = 1;
    fx->pub.tg_key = K_TG2;
    publish(fx, &fx->pub);
    /* The snapshot rule still holds: snapshot 1 listed targets 7. Rotating
     * snapshot trust is the way out, as for the timestamp. */
    assert_err(refresh(fx, &det), OTA_ERR_ROLLBACK, &det);
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 2);
    assert_null(ota_tuf_client_trusted(fx->c, OTA_TUF_TARGETS));
    char p[256];
    state_file(fx->state, "targets.json", p, sizeof(p));
    assert_false(exists(p));
}

/* ---- fault injection ----------------------------------------------------------------------------
 */

struct fail_hook {
    unsigned calls;
    unsigned fail_at; /* 1-based; 0 never */
};

static int fail_fn(void *ctx, const struct ota_fs_event *ev)
{
    (void)ev;
    struct fail_hook *h = ctx;
    h->calls++;
    return h->calls == h->fail_at ? -1 : 0;
}

static void copy_state(const char *from, const char *to)
{
    rm_rf(to);
    assert_int_equal(mkdir(to, 0700), 0);
    const char *names[] = {"root.json", "timestamp.json", "snapshot.json", "targets.json"};
    for (size_t i = 0; i < 4; i++) {
        char a[256], b[256];
        state_file(from, names[i], a, sizeof(a));
        state_file(to, names[i], b, sizeof(b));
        size_t n;
        uint8_t *d = read_path(a, &n);
        if (d) {
            write_path(b, d, n);
            free(d);
        }
    }
}

static void test_state_survives_failure_at_every_write(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx); /* baseline: v1 everywhere */
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    char baseline[128];
    snprintf(baseline, sizeof(baseline), "%s/baseline", fx->base);
    copy_state(fx->state, baseline);

    /* Next: root v2 rotating the timestamp and targets keys, a new release. */
    rotate_root(fx, K_TS2, K_TG2);
    fx->pub = (struct pub){.ts_v = 2,
                           .snap_v = 2,
                           .tg_v = 2,
                           .ts_exp = FAR,
                           .snap_exp = FAR,
                           .tg_exp = FAR,
                           .ts_key = K_TS2,
                           .snap_key = K_SNAP,
                           .tg_key = K_TG2,
                           .fill = 5};
    publish(fx, &fx->pub);

    unsigned fail_at;
    for (fail_at = 1; fail_at < 200; fail_at++) {
        copy_state(baseline, fx->state);
        struct fail_hook h = {.fail_at = fail_at};
        struct ota_fs_hook hook = {.fn = fail_fn, .ctx = &h};
        fx->opts.hook = &hook;
        assert_err(open_client(fx, &det), 0, &det);
        int rc = refresh(fx, &det);
        fx->opts.hook = NULL;
        if (h.calls < fail_at) {
            /* No step left to fail: the refresh went through. */
            assert_err(rc, 0, &det);
            break;
        }
        assert_err(rc, OTA_ERR_IO, &det);
        /* Whatever is left on disk opens and converges. */
        assert_err(open_client(fx, &det), 0, &det);
        assert_err(refresh(fx, &det), 0, &det);
        assert_versions(fx, 2, 2, 2, 2);
        assert_err(ota_tuf_client_download(fx->c, fx->f, TARGET, fx->out, &det), 0, &det);
    }
    /* Root, two removals, timestamp, snapshot, targets: many steps. */
    assert_true(fail_at > 15);
    assert_versions(fx, 2, 2, 2, 2);
}

/* ---- allocation faults ------------------------------------------------------------ */

/* From an empty state: open, refresh through a root rotation, download. */
static int fa_update(struct fx *fx)
{
    struct ota_detail det = {{0}};
    struct ota_tuf_client *c = NULL;
    int rc = ota_tuf_client_open(&c, &fx->opts, fx->root1, fx->root1_len, &det);

    if (rc == 0)
        rc = ota_tuf_client_refresh(c, fx->f, fx->now, &det);
    if (rc == 0)
        rc = ota_tuf_client_download(c, fx->f, TARGET, fx->out, &det);
    ota_tuf_client_free(c);
    /* FA_DEBUG=1 lists what each injected failure was reported as. */
    if (rc != 0 && getenv("FA_DEBUG"))
        print_message("fa: %s: %s\n", ota_errname(rc), det.msg);
    return rc;
}

/* STYLE rule 9: each allocation of the update fails in turn (the
 * library's, jansson's and OpenSSL's). Every run reports nomem or crypto
 * (or tolerates the failure), leaks nothing (LeakSanitizer), leaves no
 * output file unless it succeeded, and the state it leaves behind lets a
 * normal run reach the same trusted versions. */
static void test_alloc_faults(void **state)
{
    struct fx *fx = *state;
    unsigned long n;

    rotate_root(fx, K_TS1, K_TG1);
    rm_rf(fx->state);
    assert_int_equal(fa_update(fx), 0); /* warms OpenSSL's lazy set-up */
    for (n = 1;; n++) {
        int rc;
        int fired;

        rm_rf(fx->state);
        (void)unlink(fx->out);
        fa_arm(n);
        rc = fa_update(fx);
        fired = fa_disarm();
        if (!fired) {
            assert_int_equal(rc, 0);
            break;
        }
        if (!fa_rc_ok(rc))
            fail_msg("allocation %lu failed: %s", n, ota_errname(rc));
        if (rc != 0)
            assert_false(exists(fx->out));
        else
            assert_out_is_payload(fx, 0);
        open_and_refresh(fx);
        assert_versions(fx, 2, 1, 1, 1);
    }
    assert_true(fa_failed_runs() > 50);
}

/* ---- the chunk-index loader (dp_fetch.h: struct ota_dp_tuf_index) ---------------- */

#define INDEX_TARGET "fw/app.bin.cidx"

/* A fetcher that hands every request to fx->f and counts them. */
struct counting_fetcher {
    const struct ota_fetcher *inner;
    unsigned requests;
};

static int counting_fetch(void *ctx, enum ota_fetch_kind kind, const char *name, uint64_t max,
                          ota_sink_fn sink, void *sink_ctx, struct ota_detail *det)
{
    struct counting_fetcher *cf = ctx;

    cf->requests++;
    return cf->inner->fetch(cf->inner->ctx, kind, name, max, sink, sink_ctx, det);
}

/* An index test: the payload's real chunk index, published as the signed
 * target INDEX_TARGET, and a loader for it over a counting fetcher. */
struct ixfx {
    struct counting_fetcher count;
    struct ota_fetcher f;
    struct ota_dp_tuf_index ix;
    char dir[192];        /* the loader's directory */
    struct ota_buf index; /* the pinned bytes */
    char pinned[512];     /* dir/<sha256 of the bytes>.cidx */
    char mirror[512];     /* where the mirror has them */
};

/* Publishes TARGET with the given custom (taken; NULL: no index named)
 * and INDEX_TARGET signed with length signed_len (0: the real one), then
 * refreshes (a new publication if one was made before) and points the
 * loader at TARGET. */
static void index_publish(struct fx *fx, struct ixfx *x, json_t *custom, uint64_t signed_len)
{
    struct ota_buf pack;
    uint8_t d[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    size_t plen;
    uint8_t *data = payload(fx->pub.fill, &plen);
    struct ota_detail det = {{0}};

    if (x->index.data == NULL) {
        assert_int_equal(fx_build(&x->index, &pack, data, plen, NULL, 0), 0);
        ota_buf_free(&pack);
    }
    assert_int_equal(ota_sha256(d, x->index.data, x->index.len), 0);
    ota_hex_encode(hex, d, sizeof(d));
    snprintf(x->dir, sizeof(x->dir), "%s/ix", fx->base);
    if (!exists(x->dir))
        assert_int_equal(mkdir(x->dir, 0700), 0);
    snprintf(x->pinned, sizeof(x->pinned), "%s/%s.cidx", x->dir, hex);
    snprintf(x->mirror, sizeof(x->mirror), "%s/targets/fw/%s.app.bin.cidx", fx->repo, hex);
    write_path(x->mirror, x->index.data, x->index.len);

    json_t *extra = json_pack("{s:{s:I, s:{s:s}}}", INDEX_TARGET, "length",
                              (json_int_t)(signed_len != 0 ? signed_len : x->index.len), "hashes",
                              "sha256", hex);
    assert_non_null(extra);
    fx->pub.custom = custom;
    fx->pub.extra = extra;
    if (fx->c != NULL) {
        fx->pub.ts_v++;
        fx->pub.snap_v++;
        fx->pub.tg_v++;
    }
    publish(fx, &fx->pub);
    fx->pub.custom = NULL;
    fx->pub.extra = NULL;
    json_decref(custom);
    json_decref(extra);
    if (fx->c == NULL)
        open_and_refresh(fx);
    else
        assert_err(refresh(fx, &det), 0, &det);

    x->count = (struct counting_fetcher){.inner = fx->f};
    x->f = (struct ota_fetcher){.fetch = counting_fetch, .ctx = &x->count};
    x->ix = (struct ota_dp_tuf_index){.client = fx->c, .fetcher = &x->f, .dir = x->dir};
    x->ix.image = ota_tuf_find_target(ota_tuf_client_trusted(fx->c, OTA_TUF_TARGETS), TARGET);
    assert_non_null(x->ix.image);
    free(data);
}

/* TARGET's custom naming value as its index. */
static json_t *custom_index(json_t *value)
{
    json_t *c = json_pack("{s:s, s:o}", "version", "1.0.0", "index", value);
    assert_non_null(c);
    return c;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void assert_det_names(const struct ota_detail *det, const char *what)
{
    if (strstr(det->msg, what) == NULL)
        fail_msg("detail \"%s\" does not name %s", det->msg, what);
}

/* fd reads exactly the pinned index bytes. */
static void assert_fd_is_index(int fd, const struct ixfx *x)
{
    uint8_t *got = malloc(x->index.len + 1);
    size_t n = 0;
    ssize_t r;

    assert_non_null(got);
    while ((r = read(fd, got + n, x->index.len + 1 - n)) > 0)
        n += (size_t)r;
    assert_true(r >= 0);
    assert_int_equal(n, x->index.len);
    assert_memory_equal(got, x->index.data, n);
    free(got);
}

/* Nothing was fetched, nothing written, the loader still has no file. */
static void assert_nothing_fetched(const struct ixfx *x)
{
    assert_int_equal(x->count.requests, 0);
    assert_int_equal(dir_entries(x->dir), 0);
    assert_string_equal(x->ix.file, "");
}

static void test_index_download_and_open(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    size_t len;
    uint8_t *got;
    int fd = -1;

    index_publish(fx, &x, custom_index(json_string(INDEX_TARGET)), 0);
    /* Named by the SHA-256 of the pinned bytes, holding exactly them. */
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), 0, &det);
    assert_int_equal(x.count.requests, 1);
    assert_string_equal(x.ix.file, x.pinned);
    got = read_path(x.pinned, &len);
    assert_non_null(got);
    assert_int_equal(len, x.index.len);
    assert_memory_equal(got, x.index.data, len);
    free(got);
    assert_int_equal(dir_entries(x.dir), 1); /* no .part left */

    /* A second call fetches nothing, and neither does open. */
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), 0, &det);
    assert_int_equal(x.count.requests, 1);
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), 0, &det);
    assert_true(fd >= 0);
    assert_int_equal(x.count.requests, 1);
    assert_fd_is_index(fd, &x);
    close(fd);

    /* open on a loader that has not downloaded yet downloads first. */
    x.ix.file[0] = '\0';
    fd = -1;
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), 0, &det);
    assert_true(fd >= 0);
    assert_int_equal(x.count.requests, 2);
    assert_string_equal(x.ix.file, x.pinned);
    assert_fd_is_index(fd, &x);
    close(fd);
    ota_buf_free(&x.index);
}

static void test_index_not_named(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    int fd = 7;

    /* The image target's custom has no "index". */
    index_publish(fx, &x, NULL, 0);
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_FORMAT, &det);
    assert_det_names(&det, TARGET);
    assert_nothing_fetched(&x);
    memset(&det, 0, sizeof(det));
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_FORMAT, &det);
    assert_int_equal(fd, -1);
    assert_det_names(&det, TARGET);
    assert_nothing_fetched(&x);

    /* "index" that is not a string. */
    index_publish(fx, &x, custom_index(json_integer(1)), 0);
    memset(&det, 0, sizeof(det));
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_FORMAT, &det);
    assert_det_names(&det, TARGET);
    assert_nothing_fetched(&x);
    ota_buf_free(&x.index);
}

static void test_index_not_a_signed_target(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    int fd = 7;

    /* The mirror has a file there, but no signed target lists it. */
    index_publish(fx, &x, custom_index(json_string("fw/other.cidx")), 0);
    char other[512];
    repo_file(fx, "targets", "fw/other.cidx", other, sizeof(other));
    write_path(other, x.index.data, x.index.len);
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_TARGET_UNKNOWN, &det);
    assert_det_names(&det, "fw/other.cidx");
    assert_nothing_fetched(&x);
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_TARGET_UNKNOWN, &det);
    assert_int_equal(fd, -1);
    assert_nothing_fetched(&x);
    ota_buf_free(&x.index);
}

static void test_index_too_large(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    int fd = 7;

    index_publish(fx, &x, custom_index(json_string(INDEX_TARGET)), OTA_CHUNK_INDEX_MAX_LEN + 1);
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_TOO_LARGE, &det);
    assert_det_names(&det, INDEX_TARGET);
    assert_nothing_fetched(&x);
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_TOO_LARGE, &det);
    assert_int_equal(fd, -1);
    assert_nothing_fetched(&x);
    ota_buf_free(&x.index);
}

static void test_index_path_too_long(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    char *dir = malloc(PATH_MAX);

    assert_non_null(dir);
    index_publish(fx, &x, custom_index(json_string(INDEX_TARGET)), 0);
    /* <dir>/<64 hex>.cidx does not fit in PATH_MAX. */
    memset(dir, 'd', PATH_MAX - 40);
    dir[0] = '/';
    dir[PATH_MAX - 40] = '\0';
    x.ix.dir = dir;
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_INVALID_ARG, &det);
    /* det says why first, then names the index and the directory (cut
     * at OTA_DETAIL_LEN). */
    assert_non_null(strstr(det.msg, "path too long"));
    assert_non_null(strstr(det.msg, INDEX_TARGET));
    assert_non_null(strstr(det.msg, "/ddd"));
    assert_int_equal(x.count.requests, 0);
    assert_string_equal(x.ix.file, "");
    free(dir);
    ota_buf_free(&x.index);
}

static void test_index_mirror_lies(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};

    index_publish(fx, &x, custom_index(json_string(INDEX_TARGET)), 0);
    /* Same length, one byte flipped. */
    x.index.data[x.index.len / 2] ^= 0x01;
    write_path(x.mirror, x.index.data, x.index.len);
    x.index.data[x.index.len / 2] ^= 0x01;
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), OTA_ERR_HASH_MISMATCH, &det);
    assert_det_names(&det, INDEX_TARGET);
    assert_int_equal(x.count.requests, 1);
    assert_int_equal(dir_entries(x.dir), 0); /* neither <sha>.cidx nor its .part */
    assert_false(exists(x.pinned));
    assert_string_equal(x.ix.file, "");

    /* The mirror mended: the next call downloads it. */
    write_path(x.mirror, x.index.data, x.index.len);
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), 0, &det);
    assert_int_equal(x.count.requests, 2);
    assert_string_equal(x.ix.file, x.pinned);
    ota_buf_free(&x.index);
}

/* Replaces path atomically with n bytes of the index. */
static void replace_with(const char *path, const struct ixfx *x, size_t n)
{
    char tmp[600];
    uint8_t *data = calloc(1, n + 1);

    assert_non_null(data);
    memcpy(data, x->index.data, n < x->index.len ? n : x->index.len);
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    write_path(tmp, data, n);
    assert_int_equal(rename(tmp, path), 0);
    free(data);
}

static void test_index_changed_after_download(void **state)
{
    struct fx *fx = *state;
    struct ixfx x = {0};
    struct ota_detail det = {{0}};
    int fd = 7;

    index_publish(fx, &x, custom_index(json_string(INDEX_TARGET)), 0);
    assert_err(ota_dp_tuf_index_download(&x.ix, &det), 0, &det);
    assert_int_equal(x.count.requests, 1);

    /* Longer, then shorter than pinned: refused, never re-fetched. */
    replace_with(x.pinned, &x, x.index.len + 1);
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_LENGTH_MISMATCH, &det);
    assert_int_equal(fd, -1);
    assert_det_names(&det, x.pinned);
    replace_with(x.pinned, &x, x.index.len - 1);
    fd = 7;
    memset(&det, 0, sizeof(det));
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_LENGTH_MISMATCH, &det);
    assert_int_equal(fd, -1);
    assert_det_names(&det, x.pinned);

    /* Gone: the file system's error, naming the file. */
    assert_int_equal(unlink(x.pinned), 0);
    fd = 7;
    memset(&det, 0, sizeof(det));
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_NOT_FOUND, &det);
    assert_int_equal(fd, -1);
    assert_det_names(&det, x.pinned);

    /* A symbolic link in its place is not followed. */
    assert_int_equal(symlink(x.mirror, x.pinned), 0);
    fd = 7;
    memset(&det, 0, sizeof(det));
    assert_err(ota_dp_tuf_index_open(&x.ix, &fd, &det), OTA_ERR_PERMISSION, &det);
    assert_int_equal(fd, -1);
    assert_det_names(&det, x.pinned);
    assert_int_equal(x.count.requests, 1);
    ota_buf_free(&x.index);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_against_time_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_happy_path_and_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_download_and_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_not_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_not_a_signed_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_path_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_mirror_lies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_changed_after_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_without_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_not_self_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_files_that_no_longer_verify_are_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_download_requires_refresh_and_known_target, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_root_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_max_rotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_not_signed_by_old_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_not_signed_by_new_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_not_consistent_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_snapshot_version_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_equal_keeps_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_length_and_hash_pinned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_meta_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_targets_version_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_rollback_without_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_version_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_hash_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_missing_from_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_hash_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_refuses_symlinked_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_forward_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_key_rotation_drops_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_survives_failure_at_every_write, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
