/* The device rule of the ledger (DESIGN §4, docs/formats/ledger.md "Client
 * rule") in the TUF client: repositories whose root carries
 * x-otachain-ledger, with the log built here with the library (entry
 * records, Merkle edge, tiles written by ota_tiles_append, checkpoints
 * signed with ota_note_sign and cosigned with ota_note_cosign) into
 * <repo>/ledger/, served by the directory fetcher. Each attack of DESIGN §9
 * "Ledger" is played once and must be refused with its exact error, with
 * nothing persisted; a good sequence, a witness-set rotation and a failure
 * at every state write go through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "failalloc.h"
#include "naive_tree.h"
#include "testfs.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/bundle.h"
#include "otachain/bundle_build.h"
#include "otachain/checkpoint.h"
#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fetch.h"
#include "otachain/fsutil.h"
#include "otachain/ledger_entry.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"
#include "otachain/sign.h"
#include "otachain/tiles.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"
#include "otachain/tuf_sign.h"

#define NOW     1700000000LL /* 2023-11-14 */
#define BUILD   1500000000LL /* 2017-07-14: the time floor a new state starts at */
#define FAR     2100000000LL /* 2036-07-18 */
#define MAX_AGE 3600LL       /* the roots' freshness window */
#define DAY     86400LL
#define YEAR    (365 * DAY)
#define ORIGIN  "example.com/otachain-log"
#define TARGET  "fw/app.bin"

#define MAX_LEAVES 1024

enum key_id { K_ROOT1, K_ROOT2, K_TS, K_SNAP, K_TG, NKEYS };

/* Witnesses: W1..W4 are the first policy's (group of 4, threshold 3), W5..W7
 * the set a root rotation moves to (2 of 3), W8 and W9 a third set (both),
 * W_STRANGER is in no policy. */
enum wit_id { W1, W2, W3, W4, W5, W6, W7, W8, W9, W_STRANGER, NWIT };

/* Which ledger a root carries. */
enum policy_kind { POL_NONE, POL_FIRST, POL_SECOND, POL_THIRD, POL_QUORUM_NONE };

struct log {
    size_t n;
    uint8_t leaf[MAX_LEAVES][OTA_MERKLE_HASH_LEN];
};

struct fx {
    char base[64];
    char repo[128];
    char state[128];
    struct ota_signer *k[NKEYS];
    struct ota_note_signer *logkey;
    struct ota_note_signer *otherlog; /* same name as the log, another key */
    struct ota_note_signer *w[NWIT];
    struct ota_fetcher *f;
    uint8_t *root1;
    size_t root1_len;
    uint64_t root_v;       /* newest root written */
    enum policy_kind pol;  /* of the newest root */
    int root_key;          /* of the newest root */
    uint64_t ts_v, snap_v; /* newest written */
    uint64_t tg_v;
    int64_t ts_exp; /* expiry of the next timestamps; 0: FAR */
    struct log log;
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

/* mkdir -p of the directory part of path. */
static void mkparents(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0)
                assert_int_equal(errno, EEXIST);
            *p = '/';
        }
    }
}

static void write_path(const char *path, const void *data, size_t len)
{
    mkparents(path);
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

static void sub_path(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void ledger_write(const struct fx *fx, const char *name, const void *data, size_t len)
{
    char p[512];
    int n = snprintf(p, sizeof(p), "%s/ledger/%s", fx->repo, name);
    assert_true(n > 0 && (size_t)n < sizeof(p));
    write_path(p, data, len);
}

/* ---- the log ------------------------------------------------------------------- */

static int tile_sink(void *ctx, unsigned level, uint64_t index, unsigned width,
                     const uint8_t *hashes)
{
    const struct fx *fx = ctx;
    struct ota_tiles_id id = {.level = level, .index = index, .width = width};
    char path[OTA_TILES_PATH_MAX];
    int rc = ota_tiles_path_format(path, &id);
    if (rc != 0)
        return rc;
    ledger_write(fx, path, hashes, (size_t)width * OTA_MERKLE_HASH_LEN);
    return 0;
}

/* Writes every hash tile of lg (from scratch: the logs here are small).
 * Partial tiles of smaller sizes stay, as tlog-tiles has them. */
static void log_write_tiles(const struct fx *fx, const struct log *lg)
{
    struct ota_tiles_sink sink = {.tile = tile_sink, .ctx = (void *)fx};
    struct ota_detail det = {{0}};
    assert_err(ota_tiles_append(0, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])lg->leaf, lg->n, NULL,
                                &sink, &det),
               0, &det);
}

static void log_root(const struct log *lg, size_t size, uint8_t root[OTA_MERKLE_HASH_LEN])
{
    struct ota_merkle_edge *e = malloc(sizeof(*e));
    assert_non_null(e);
    ota_merkle_edge_init(e);
    for (size_t i = 0; i < size; i++)
        assert_int_equal(ota_merkle_edge_append(e, lg->leaf[i], NULL), 0);
    assert_int_equal(ota_merkle_edge_root(root, e), 0);
    free(e);
}

/* Appends the entry of a metadata file; writes index/<role>/<version>
 * when `index` (the public layout) is wanted. */
static void log_file(const struct fx *fx, struct log *lg, enum ota_tuf_role role, uint64_t version,
                     const uint8_t *bytes, size_t len, bool index)
{
    struct ota_ledger_entry e;
    assert_int_equal(ota_ledger_entry_of_file(&e, role, version, bytes, len), 0);
    assert_true(lg->n < MAX_LEAVES);
    assert_int_equal(ota_ledger_entry_leaf(lg->leaf[lg->n], &e), 0);
    if (index) {
        char name[64], num[32];
        snprintf(name, sizeof(name), "index/%s/%llu", ota_tuf_role_name(role),
                 (unsigned long long)version);
        int n = snprintf(num, sizeof(num), "%zu", lg->n);
        ledger_write(fx, name, num, (size_t)n);
    }
    lg->n++;
}

/* Appends count leaves that are no metadata of ours (other noise). */
static void log_filler(struct log *lg, size_t count, uint8_t tag)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t b[9] = {tag};
        for (int j = 0; j < 8; j++)
            b[1 + j] = (uint8_t)(lg->n >> (8 * j));
        assert_true(lg->n < MAX_LEAVES);
        assert_int_equal(ota_merkle_leaf_hash(lg->leaf[lg->n], b, sizeof(b)), 0);
        lg->n++;
    }
}

/* A cosigner and the time it signs at. */
struct cosig {
    int w;
    int64_t t;
};

/* Writes ledger/<name> (a checkpoint note) for the first `size` leaves of
 * lg under `origin`, signed by `log` (NULL: no log signature) and
 * cosigned as given. */
static void put_note_as(const struct fx *fx, const char *name, const char *origin,
                        const struct log *lg, size_t size, const struct ota_note_signer *log,
                        const struct cosig *cs, size_t ncs)
{
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    assert_non_null(cp);
    snprintf(cp->origin, sizeof(cp->origin), "%s", origin);
    cp->origin_len = strlen(origin);
    cp->size = size;
    log_root(lg, size, cp->root);
    struct ota_buf body, note;
    ota_buf_init(&body, 1u << 20);
    ota_buf_init(&note, 1u << 20);
    assert_int_equal(ota_checkpoint_format(&body, cp), 0);
    assert_int_equal(ota_buf_append(&note, body.data, body.len), 0);
    assert_int_equal(ota_buf_append(&note, "\n", 1), 0);
    struct ota_detail det = {{0}};
    if (log)
        assert_err(ota_note_sign(&note, (const char *)body.data, body.len, log, &det), 0, &det);
    for (size_t i = 0; i < ncs; i++)
        assert_err(ota_note_cosign(&note, (const char *)body.data, body.len, (uint64_t)cs[i].t,
                                   fx->w[cs[i].w], &det),
                   0, &det);
    ledger_write(fx, name, note.data, note.len);
    ota_buf_free(&body);
    ota_buf_free(&note);
    free(cp);
}

/* Writes ledger/checkpoint for the first `size` leaves of lg. */
static void put_checkpoint_by(const struct fx *fx, const struct log *lg, size_t size,
                              const struct ota_note_signer *log, const struct cosig *cs, size_t ncs)
{
    put_note_as(fx, "checkpoint", ORIGIN, lg, size, log, cs, ncs);
}

/* Writes ledger/root-checkpoint/<version>: the checkpoint of lg's first
 * `size` leaves, as the log keeps it for that root. */
static void put_root_checkpoint(const struct fx *fx, uint64_t version, const struct log *lg,
                                size_t size, const struct cosig *cs, size_t ncs)
{
    char name[64];
    snprintf(name, sizeof(name), "root-checkpoint/%llu", (unsigned long long)version);
    put_note_as(fx, name, ORIGIN, lg, size, fx->logkey, cs, ncs);
}

static void put_checkpoint(const struct fx *fx, const struct log *lg, const struct cosig *cs,
                           size_t ncs)
{
    put_checkpoint_by(fx, lg, lg->n, fx->logkey, cs, ncs);
}

/* The usual quorum of the first policy, cosigned at t. */
static void put_checkpoint_at(const struct fx *fx, const struct log *lg, int64_t t)
{
    struct cosig cs[] = {{W1, t}, {W2, t}, {W3, t}};
    put_checkpoint(fx, lg, cs, 3);
}

static uint8_t *read_checkpoint(const struct fx *fx, size_t *len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/ledger/checkpoint", fx->repo);
    return read_path(p, len);
}

/* ---- metadata -------------------------------------------------------------------- */

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

static uint8_t *emit(const json_t *doc, size_t *len)
{
    uint8_t *out = NULL;
    assert_int_equal(ota_json_canonical_alloc(&out, len, doc), 0);
    return out;
}

/* Signs doc, writes metadata/<name>, returns its bytes (free()). */
static uint8_t *put_meta(const struct fx *fx, const char *name, json_t *doc, const int *keys,
                         size_t nkeys, size_t *len)
{
    for (size_t i = 0; i < nkeys; i++)
        assert_int_equal(ota_tuf_sign(doc, fx->k[keys[i]]), 0);
    uint8_t *b = emit(doc, len);
    char p[512];
    snprintf(p, sizeof(p), "%s/metadata/%s", fx->repo, name);
    write_path(p, b, *len);
    json_decref(doc);
    return b;
}

static json_t *metafile(uint64_t version, const uint8_t *bytes, size_t len)
{
    uint8_t d[OTA_SHA256_LEN];
    char hex[OTA_SHA256_HEX_LEN + 1];
    assert_int_equal(ota_sha256(d, bytes, len), 0);
    ota_hex_encode(hex, d, sizeof(d));
    json_t *m = json_pack("{s:I, s:I, s:{s:s}}", "version", (json_int_t)version, "length",
                          (json_int_t)len, "hashes", "sha256", hex);
    assert_non_null(m);
    return m;
}

static json_t *role_obj(const struct fx *fx, int key)
{
    json_t *r = json_pack("{s:[s], s:i}", "keyids", ota_signer_keyid(fx->k[key]), "threshold", 1);
    assert_non_null(r);
    return r;
}

static json_t *vkey_line(const char *prefix, const struct ota_note_signer *s)
{
    struct ota_note_verifier v;
    char vk[OTA_NOTE_VKEY_SIZE];
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(vk, &v);
    char line[1024];
    snprintf(line, sizeof(line), "%s %s", prefix, vk);
    return json_string(line);
}

static json_t *ledger_obj(const struct fx *fx, enum policy_kind pol)
{
    json_t *lines = json_array();
    json_array_append_new(lines, vkey_line("log", fx->logkey));
    if (pol == POL_FIRST) {
        const char *names[] = {"witness w1", "witness w2", "witness w3", "witness w4"};
        for (int i = 0; i < 4; i++)
            json_array_append_new(lines, vkey_line(names[i], fx->w[W1 + i]));
        json_array_append_new(lines, json_string("group g 3 w1 w2 w3 w4"));
        json_array_append_new(lines, json_string("quorum g"));
    } else if (pol == POL_SECOND) {
        const char *names[] = {"witness w5", "witness w6", "witness w7"};
        for (int i = 0; i < 3; i++)
            json_array_append_new(lines, vkey_line(names[i], fx->w[W5 + i]));
        json_array_append_new(lines, json_string("group g 2 w5 w6 w7"));
        json_array_append_new(lines, json_string("quorum g"));
    } else if (pol == POL_THIRD) {
        json_array_append_new(lines, vkey_line("witness w8", fx->w[W8]));
        json_array_append_new(lines, vkey_line("witness w9", fx->w[W9]));
        json_array_append_new(lines, json_string("group g all w8 w9"));
        json_array_append_new(lines, json_string("quorum g"));
    } else {
        json_array_append_new(lines, json_string("quorum none"));
    }
    json_t *l = json_pack("{s:s, s:o, s:I}", "origin", ORIGIN, "policy", lines, "max_age",
                          (json_int_t)MAX_AGE);
    assert_non_null(l);
    return l;
}

/* Root `version` with root key `root_key` and the given ledger, signed by
 * the keys given; written as <version>.root.json; returns its bytes. */
static uint8_t *put_root(const struct fx *fx, uint64_t version, int root_key, enum policy_kind pol,
                         const int *signers, size_t nsigners, size_t *len)
{
    json_t *sgn = skeleton("root", version, FAR);
    json_object_set_new(sgn, "consistent_snapshot", json_true());
    json_t *keys = json_object();
    int used[] = {root_key, K_TS, K_SNAP, K_TG};
    for (size_t i = 0; i < 4; i++) {
        uint8_t pub[OTA_ED25519_PUB_LEN];
        ota_signer_public(pub, fx->k[used[i]]);
        json_object_set_new(keys, ota_signer_keyid(fx->k[used[i]]), ota_tuf_key_object(pub));
    }
    json_object_set_new(sgn, "keys", keys);
    json_t *roles = json_object();
    json_object_set_new(roles, "root", role_obj(fx, root_key));
    json_object_set_new(roles, "timestamp", role_obj(fx, K_TS));
    json_object_set_new(roles, "snapshot", role_obj(fx, K_SNAP));
    json_object_set_new(roles, "targets", role_obj(fx, K_TG));
    json_object_set_new(sgn, "roles", roles);
    if (pol != POL_NONE)
        json_object_set_new(sgn, "x-otachain-ledger", ledger_obj(fx, pol));
    char name[64];
    snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)version);
    return put_meta(fx, name, envelope(sgn), signers, nsigners, len);
}

/* A root rotation to version root_v + 1 (signed by the old and the new
 * root key), logged unless `unlogged`. */
static void rotate(struct fx *fx, int new_key, enum policy_kind pol, bool unlogged)
{
    int signers[] = {fx->root_key, new_key};
    size_t len;
    fx->root_v++;
    uint8_t *b = put_root(fx, fx->root_v, new_key, pol, signers, 2, &len);
    if (!unlogged)
        log_file(fx, &fx->log, OTA_TUF_ROOT, fx->root_v, b, len, true);
    fx->root_key = new_key;
    fx->pol = pol;
    free(b);
}

/* What a publish does to the log. */
enum publish_log {
    PUB_LOGGED,     /* targets and snapshot logged, tiles and index written */
    PUB_UNLOGGED,   /* nothing logged (a snapshot shown outside the log) */
    PUB_SNAP_ALONE, /* TUF files only: the caller logs */
};

/* Publishes targets tg_v + 1 (a new payload hash), snapshot and timestamp;
 * logs targets then snapshot; returns the snapshot bytes if wanted. */
static void publish_tuf(struct fx *fx, enum publish_log how, uint8_t **snap_out, size_t *snap_len)
{
    fx->tg_v++;
    fx->snap_v++;
    fx->ts_v++;
    char hex[OTA_SHA256_HEX_LEN + 1];
    uint8_t d[OTA_SHA256_LEN] = {(uint8_t)fx->tg_v};
    ota_hex_encode(hex, d, sizeof(d));
    json_t *sgn = skeleton("targets", fx->tg_v, FAR);
    json_object_set_new(
        sgn, "targets",
        json_pack("{s:{s:i, s:{s:s}}}", TARGET, "length", 1, "hashes", "sha256", hex));
    char name[64];
    size_t tg_len, sn_len, ts_len;
    int key = K_TG;
    snprintf(name, sizeof(name), "%llu.targets.json", (unsigned long long)fx->tg_v);
    uint8_t *tg = put_meta(fx, name, envelope(sgn), &key, 1, &tg_len);

    sgn = skeleton("snapshot", fx->snap_v, FAR);
    json_object_set_new(sgn, "meta",
                        json_pack("{s:o}", "targets.json", metafile(fx->tg_v, tg, tg_len)));
    key = K_SNAP;
    snprintf(name, sizeof(name), "%llu.snapshot.json", (unsigned long long)fx->snap_v);
    uint8_t *sn = put_meta(fx, name, envelope(sgn), &key, 1, &sn_len);

    sgn = skeleton("timestamp", fx->ts_v, fx->ts_exp ? fx->ts_exp : FAR);
    json_object_set_new(sgn, "meta",
                        json_pack("{s:o}", "snapshot.json", metafile(fx->snap_v, sn, sn_len)));
    key = K_TS;
    uint8_t *ts = put_meta(fx, "timestamp.json", envelope(sgn), &key, 1, &ts_len);

    if (how == PUB_LOGGED) {
        log_file(fx, &fx->log, OTA_TUF_TARGETS, fx->tg_v, tg, tg_len, true);
        log_file(fx, &fx->log, OTA_TUF_SNAPSHOT, fx->snap_v, sn, sn_len, true);
    }
    if (snap_out) {
        *snap_out = sn;
        *snap_len = sn_len;
    } else {
        free(sn);
    }
    free(tg);
    free(ts);
}

/* A whole publish as the log side does it: TUF files, entries, tiles, a
 * checkpoint cosigned by W1..W3 at time t. */
static void publish(struct fx *fx, int64_t t)
{
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, t);
}

/* ---- fixture -------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->base, sizeof(fx->base), "/tmp/ota-test-tufl-XXXXXX");
    if (mkdtemp(fx->base) == NULL)
        return -1;
    snprintf(fx->repo, sizeof(fx->repo), "%s/repo", fx->base);
    snprintf(fx->state, sizeof(fx->state), "%s/state", fx->base);
    const char *dirs[] = {"repo", "repo/metadata", "repo/targets", "repo/ledger"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char d[256];
        snprintf(d, sizeof(d), "%s/%s", fx->base, dirs[i]);
        if (mkdir(d, 0755) != 0)
            return -1;
    }
    uint8_t seed[OTA_ED25519_SEED_LEN];
    for (int i = 0; i < NKEYS; i++) {
        for (size_t j = 0; j < sizeof(seed); j++)
            seed[j] = (uint8_t)(0x40 + i * 17 + j);
        if (ota_signer_from_seed(&fx->k[i], seed) != 0)
            return -1;
    }
    memset(seed, 0x11, sizeof(seed));
    if (ota_note_signer_from_seed(&fx->logkey, ORIGIN, strlen(ORIGIN), OTA_NOTE_TYPE_ED25519,
                                  seed) != 0)
        return -1;
    memset(seed, 0x12, sizeof(seed));
    if (ota_note_signer_from_seed(&fx->otherlog, ORIGIN, strlen(ORIGIN), OTA_NOTE_TYPE_ED25519,
                                  seed) != 0)
        return -1;
    for (int i = 0; i < NWIT; i++) {
        char name[64];
        snprintf(name, sizeof(name), "witness%d.example", i + 1);
        memset(seed, 0x20 + i, sizeof(seed));
        if (ota_note_signer_from_seed(&fx->w[i], name, strlen(name), OTA_NOTE_TYPE_COSIG_V1,
                                      seed) != 0)
            return -1;
    }
    if (ota_fetcher_dir_new(&fx->f, fx->repo) != 0)
        return -1;

    /* Root v1 names the first policy; the first release is logged. */
    int signer = K_ROOT1;
    fx->root_v = 1;
    fx->root_key = K_ROOT1;
    fx->pol = POL_FIRST;
    fx->root1 = put_root(fx, 1, K_ROOT1, POL_FIRST, &signer, 1, &fx->root1_len);
    log_file(fx, &fx->log, OTA_TUF_ROOT, 1, fx->root1, fx->root1_len, true);
    publish(fx, NOW);
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
    ota_note_signer_free(fx->logkey);
    ota_note_signer_free(fx->otherlog);
    for (int i = 0; i < NWIT; i++)
        ota_note_signer_free(fx->w[i]);
    free(fx->root1);
    rm_rf(fx->base);
    free(fx);
    return 0;
}

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

/* The tree size of the checkpoint stored in the state (0 if none). */
static uint64_t stored_size(const struct fx *fx)
{
    char p[256];
    sub_path(p, sizeof(p), fx->opts.state_dir, "checkpoint");
    size_t len;
    uint8_t *b = read_path(p, &len);
    if (b == NULL)
        return 0;
    struct ota_note *note = NULL;
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    assert_non_null(cp);
    assert_int_equal(ota_note_parse(&note, b, len, NULL), 0);
    assert_int_equal(ota_checkpoint_parse(cp, note->text, note->text_len, NULL), 0);
    uint64_t size = cp->size;
    ota_note_free(note);
    free(cp);
    free(b);
    return size;
}

/* A state file's bytes equal before and after (not persisted). */
static uint8_t *state_bytes(const struct fx *fx, const char *name, size_t *len)
{
    char p[256];
    sub_path(p, sizeof(p), fx->opts.state_dir, name);
    return read_path(p, len);
}

static void assert_state_unchanged(const struct fx *fx, const char *name, const uint8_t *before,
                                   size_t before_len)
{
    size_t len;
    uint8_t *now = state_bytes(fx, name, &len);
    assert_non_null(now);
    assert_int_equal(len, before_len);
    assert_memory_equal(now, before, len);
    free(now);
}

/* ---- good paths ------------------------------------------------------------------- */

static void test_good_sequence(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    assert_versions(fx, 1, 1, 1, 1);
    assert_int_equal(stored_size(fx), 3);
    const struct ota_checkpoint *cp = ota_tuf_client_checkpoint(fx->c);
    assert_non_null(cp);
    assert_int_equal(cp->size, 3);
    assert_string_equal(cp->origin, ORIGIN);
    char p[256];
    struct stat st;
    sub_path(p, sizeof(p), fx->state, "checkpoint");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Nothing published, the checkpoint re-cosigned later: still fine,
     * and the newer cosignatures are stored. */
    fx->now = NOW + 1000;
    put_checkpoint_at(fx, &fx->log, NOW + 1000);
    open_and_refresh(fx);
    assert_versions(fx, 1, 1, 1, 1);
    size_t a_len, b_len;
    uint8_t *a = state_bytes(fx, "checkpoint", &a_len);
    uint8_t *b = read_checkpoint(fx, &b_len);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
    /* The same checkpoint again is not rewritten (flash wear). */
    assert_int_equal(stat(p, &st), 0);
    ino_t ino = st.st_ino;
    open_and_refresh(fx);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_ino, ino);

    /* Several publishes, with noise between them that crosses a tile
     * boundary (level 0 tiles become full, level 1 appears). */
    for (int i = 0; i < 4; i++) {
        log_filler(&fx->log, 100, (uint8_t)i);
        fx->now = NOW + 2000 + i;
        publish(fx, NOW + 2000 + i);
        assert_err(open_client(fx, &det), 0, &det);
        assert_err(refresh(fx, &det), 0, &det);
        assert_versions(fx, 1, 2 + (uint64_t)i, 2 + (uint64_t)i, 2 + (uint64_t)i);
        assert_int_equal(stored_size(fx), fx->log.n);
    }
    assert_true(fx->log.n > 256);

    /* Two publishes seen in one refresh (the consistency proof spans both). */
    publish(fx, NOW + 3000);
    log_filler(&fx->log, 7, 9);
    publish(fx, NOW + 3000);
    fx->now = NOW + 3000;
    open_and_refresh(fx);
    assert_versions(fx, 1, 7, 7, 7);
    assert_int_equal(stored_size(fx), fx->log.n);

    /* Reopening from the state alone trusts the same. */
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    assert_err(ota_tuf_client_open(&fx->c, &fx->opts, NULL, 0, &det), 0, &det);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 7, 7, 7);
}

static void test_checkpoint_missing_from_state_is_refetched(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    char p[256];
    sub_path(p, sizeof(p), fx->state, "checkpoint");
    assert_int_equal(unlink(p), 0);
    publish(fx, NOW);
    open_and_refresh(fx);
    assert_int_equal(stored_size(fx), fx->log.n);

    /* A corrupt one is an error, not a fresh start. */
    write_path(p, "not a note\n", 11);
    assert_err(open_client(fx, &det), OTA_ERR_FORMAT, &det);
    assert_non_null(strstr(det.msg, "checkpoint"));
    assert_null(fx->c);
}

static void test_witness_set_rotation(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);

    /* Root v2 hands the ledger to W5..W7. Only the new witnesses cosign
     * the checkpoint that logs it: the old ones never vouched for it. */
    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig only_new[] = {{W5, NOW}, {W6, NOW}, {W7, NOW}};
    put_checkpoint(fx, &fx->log, only_new, 3);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    assert_non_null(strstr(det.msg, "root v1"));
    assert_versions(fx, 1, 1, 1, 1);

    /* Old witnesses alone: root v2 is vouched for, but the snapshot needs
     * the quorum of the final root (W5..W7). */
    struct cosig only_old[] = {{W1, NOW}, {W2, NOW}, {W3, NOW}};
    put_checkpoint(fx, &fx->log, only_old, 3);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    assert_non_null(strstr(det.msg, "root v2"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 2); /* vouched for, so kept */
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);

    /* Both sets cosign the transition: accepted. */
    struct cosig both[] = {{W1, NOW}, {W2, NOW}, {W4, NOW}, {W5, NOW}, {W7, NOW}};
    put_checkpoint(fx, &fx->log, both, 5);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 2, 2, 2);

    /* From now on the new set alone is enough, the old one is not. */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint(fx, &fx->log, only_old, 3);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    put_checkpoint(fx, &fx->log, only_new, 2);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 3, 3, 3);

    /* A device still on root v1 walks the same chain in one refresh
     * against a checkpoint both sets cosigned. */
    put_checkpoint(fx, &fx->log, both, 5);
    char other[128];
    snprintf(other, sizeof(other), "%s/state2", fx->base);
    fx->opts.state_dir = other;
    open_and_refresh(fx);
    assert_versions(fx, 2, 3, 3, 3);
}

static void test_quorum_none(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    rotate(fx, K_ROOT2, POL_QUORUM_NONE, false);
    publish(fx, NOW);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 2, 2, 2);

    /* No cosignature needed, but the log signature... */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint(fx, &fx->log, NULL, 0);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 3, 3, 3);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig cs[] = {{W1, NOW}};
    put_checkpoint_by(fx, &fx->log, fx->log.n, NULL, cs, 1);
    assert_err(refresh(fx, &det), OTA_ERR_UNVERIFIED, &det);
    /* ...inclusion... */
    put_checkpoint(fx, &fx->log, NULL, 0);
    publish_tuf(fx, PUB_UNLOGGED, NULL, NULL);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_versions(fx, 2, 5, 3, 3);
    /* ...and consistency still hold. */
    struct log fork = fx->log;
    fork.n = stored_size(fx) - 1;
    log_filler(&fork, 5, 0x77);
    log_write_tiles(fx, &fork);
    put_checkpoint(fx, &fork, NULL, 0);
    assert_err(refresh(fx, &det), OTA_ERR_SPLIT_VIEW, &det);
}

/* ---- per-root checkpoints (DESIGN §4) -------------------------------------------------- */

/* Issue 8, acceptance 5 (library): a device holding root 1 sleeps through
 * two witness-set changes (w1..w4, then w5..w7, then w8 and w9), each old
 * set retired (cosigning nothing after its successor took over), and
 * catches up in one refresh: each root step is checked against its
 * per-root checkpoint under the policy it walks from (cosignature times
 * not judged: they are weeks old), freshness only for the final state,
 * under the newest root's policy. */
static void test_catch_up_across_retired_witness_sets(void **state)
{
    struct fx *fx = *state;
    open_and_refresh(fx); /* root 1, size 3, at NOW */
    ota_tuf_client_free(fx->c);
    fx->c = NULL;

    /* Ten days on: root 2 hands the ledger to w5..w7; the checkpoint that
     * logs it is cosigned by both sets; the log keeps it for root 2. */
    const int64_t T1 = NOW + 10 * DAY, T2 = NOW + 20 * DAY, T3 = NOW + 30 * DAY;
    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig both12[] = {{W1, T1}, {W2, T1}, {W3, T1}, {W5, T1}, {W6, T1}};
    put_checkpoint(fx, &fx->log, both12, 5);
    put_root_checkpoint(fx, 2, &fx->log, fx->log.n, both12, 5);
    /* w1..w4 retire; a release under root 2. */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig second[] = {{W5, T1 + DAY}, {W7, T1 + DAY}};
    put_checkpoint(fx, &fx->log, second, 2);
    /* Twenty days on: root 3 hands it to w8 and w9. */
    rotate(fx, K_ROOT1, POL_THIRD, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig both23[] = {{W5, T2}, {W6, T2}, {W8, T2}, {W9, T2}};
    put_checkpoint(fx, &fx->log, both23, 4);
    put_root_checkpoint(fx, 3, &fx->log, fx->log.n, both23, 4);
    /* w5..w7 retire; two releases under root 3, with noise between. */
    struct cosig third[] = {{W8, T3}, {W9, T3}};
    for (int i = 0; i < 2; i++) {
        log_filler(&fx->log, 300, (uint8_t)i);
        publish_tuf(fx, PUB_LOGGED, NULL, NULL);
        log_write_tiles(fx, &fx->log);
    }
    put_checkpoint(fx, &fx->log, third, 2);

    /* The device wakes: one refresh. */
    fx->now = T3 + 60;
    open_and_refresh(fx);
    assert_versions(fx, 3, fx->ts_v, fx->snap_v, fx->tg_v);
    assert_int_equal(stored_size(fx), fx->log.n);
    /* The floor moved to what the final quorum vouches for, not to the
     * retired sets' times. */
    assert_int_equal(ota_tuf_client_time_floor(fx->c), T3);

    /* A device with an older state (never refreshed, bootstrap root only)
     * walks the same chain. */
    char other[128];
    snprintf(other, sizeof(other), "%s/fresh-device", fx->base);
    fx->opts.state_dir = other;
    open_and_refresh(fx);
    assert_versions(fx, 3, fx->ts_v, fx->snap_v, fx->tg_v);
}

/* Builds root 2 (second witness set) logged in a checkpoint; returns the
 * log size after it. The per-root checkpoint is left to the caller. */
static size_t rotate_to_second(struct fx *fx, int64_t t)
{
    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    size_t n = fx->log.n;
    /* Later releases, cosigned by the new set alone. */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig fresh[] = {{W5, t}, {W6, t}};
    put_checkpoint(fx, &fx->log, fresh, 2);
    return n;
}

/* Every rule of the per-root step, each refused with its own error and
 * nothing trusted; then the good one. */
static void test_root_checkpoint_refusals(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    const int64_t T = NOW + 10 * DAY;
    size_t n2 = rotate_to_second(fx, T);
    fx->now = T;
    struct cosig old3[] = {{W1, NOW}, {W2, NOW}, {W3, NOW}};

    /* None kept, and the final checkpoint has none of the old set: the
     * earlier rule (fresh, under root 1's quorum) cannot hold. */
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    assert_non_null(strstr(det.msg, "root v1"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);

    /* Cosigned by the new set only: the old one never vouched. */
    struct cosig new3[] = {{W5, NOW}, {W6, NOW}, {W7, NOW}};
    put_root_checkpoint(fx, 2, &fx->log, n2, new3, 3);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    assert_non_null(strstr(det.msg, "root-checkpoint/2"));
    assert_non_null(strstr(det.msg, "root v1"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
    /* Two of the old set: below its quorum of 3. */
    put_root_checkpoint(fx, 2, &fx->log, n2, old3, 2);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    /* Not signed by the log. */
    char name[] = "root-checkpoint/2";
    put_note_as(fx, name, ORIGIN, &fx->log, n2, NULL, old3, 3);
    assert_err(refresh(fx, &det), OTA_ERR_UNVERIFIED, &det);
    put_note_as(fx, name, ORIGIN, &fx->log, n2, fx->otherlog, old3, 3);
    assert_err(refresh(fx, &det), OTA_ERR_UNVERIFIED, &det);
    /* Another log's. */
    put_note_as(fx, name, "evil.example/log", &fx->log, n2, fx->logkey, old3, 3);
    assert_err(refresh(fx, &det), OTA_ERR_ORIGIN, &det);
    /* A forged cosignature by a policy witness. */
    put_root_checkpoint(fx, 2, &fx->log, n2, old3, 3);
    char p[512];
    snprintf(p, sizeof(p), "%s/ledger/%s", fx->repo, name);
    size_t len;
    uint8_t *note = read_path(p, &len);
    assert_non_null(note);
    char *line = strstr((char *)note, "witness2.example ");
    assert_non_null(line);
    char *sig = line + strlen("witness2.example ") + 40;
    *sig = *sig == 'A' ? 'B' : 'A';
    write_path(p, note, len);
    free(note);
    assert_err(refresh(fx, &det), OTA_ERR_BAD_SIGNATURE, &det);
    /* Not a note at all. */
    write_path(p, "garbage\n", 8);
    assert_err(refresh(fx, &det), OTA_ERR_FORMAT, &det);
    assert_non_null(strstr(det.msg, "root-checkpoint/2"));
    /* A checkpoint from before root 2 was logged: it does not include it. */
    put_root_checkpoint(fx, 2, &fx->log, 3, old3, 3);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "root v2"));
    /* Larger than the log's checkpoint (a stale checkpoint served). */
    log_filler(&fx->log, 4, 0x51);
    log_write_tiles(fx, &fx->log);
    put_root_checkpoint(fx, 2, &fx->log, fx->log.n, old3, 3);
    fx->log.n -= 4;
    assert_err(refresh(fx, &det), OTA_ERR_SPLIT_VIEW, &det);
    assert_non_null(strstr(det.msg, "larger"));
    assert_versions(fx, 1, 1, 1, 1);

    /* From another history: root 2 is in it, but it is not a prefix of
     * the log's checkpoint (a fork shown to devices that catch up). The
     * proof of root 2 comes from the log's tiles, so it fails against the
     * forked root: not in (this) log. (From a bundle, whose proofs come
     * with it, the consistency check catches it: test_bundle.c.) */
    struct log fork = fx->log;
    fork.n = n2;
    log_filler(&fork, 1, 0x66);
    log_write_tiles(fx, &fork);
    put_root_checkpoint(fx, 2, &fork, fork.n, old3, 3);
    log_write_tiles(fx, &fx->log);
    struct cosig fresh[] = {{W5, T}, {W6, T}};
    put_checkpoint(fx, &fx->log, fresh, 2);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "root-checkpoint/2"));
    assert_versions(fx, 1, 1, 1, 1);

    /* The real one, with weeks-old cosignatures: accepted. */
    struct cosig old_times[] = {{W1, NOW - 60 * DAY}, {W2, NOW - 60 * DAY}, {W4, NOW - 60 * DAY}};
    put_root_checkpoint(fx, 2, &fx->log, n2, old_times, 3);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, fx->ts_v, fx->snap_v, fx->tg_v);
    assert_int_equal(stored_size(fx), fx->log.n);
}

/* ---- proof bundles (docs/formats/bundle.md) ------------------------------------------- */

/* A bundle built from the fixture's repository for the device's state,
 * parsed into *b (bytes kept in *bytes, which b points into). */
static void make_bundle(struct fx *fx, struct ota_buf *bytes, struct ota_bundle *b)
{
    struct ota_detail det = {{0}};
    struct ota_bundle_request req;
    ota_tuf_client_bundle_request(fx->c, &req);
    ota_buf_init(bytes, OTA_BUNDLE_MAX_LEN);
    assert_err(ota_bundle_build(bytes, fx->f, &req, &det), 0, &det);
    assert_err(ota_bundle_parse(b, bytes->data, bytes->len, &det), 0, &det);
}

static int refresh_bundle(struct fx *fx, const struct ota_bundle *b, struct ota_detail *det)
{
    return ota_tuf_client_refresh_bundle(fx->c, b, fx->now, det);
}

/* Opens the device of state directory `dir` (created from the bootstrap
 * root if new). */
static void device(struct fx *fx, const char *name)
{
    struct ota_detail det = {{0}};
    static char dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", fx->base, name);
    fx->opts.state_dir = dir;
    assert_err(open_client(fx, &det), 0, &det);
}

/* The repository's history for the bundle tests: root 1 and releases,
 * then two witness-set changes kept as per-root checkpoints, each old set
 * retired, and releases under root 3. Devices are left at points along
 * the way: "behind" (root 1, size 3), "rotation" (root 1, after three
 * more releases). */
static void bundle_history(struct fx *fx)
{
    device(fx, "behind");
    assert_err(refresh(fx, &(struct ota_detail){{0}}), 0, &(struct ota_detail){{0}});
    for (int i = 0; i < 3; i++)
        publish(fx, NOW);
    device(fx, "rotation");
    assert_err(refresh(fx, &(struct ota_detail){{0}}), 0, &(struct ota_detail){{0}});
    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig both12[] = {{W1, NOW}, {W2, NOW}, {W3, NOW}, {W5, NOW}, {W6, NOW}};
    put_checkpoint(fx, &fx->log, both12, 5);
    put_root_checkpoint(fx, 2, &fx->log, fx->log.n, both12, 5);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    rotate(fx, K_ROOT1, POL_THIRD, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig both23[] = {{W5, NOW}, {W7, NOW}, {W8, NOW}, {W9, NOW}};
    put_checkpoint(fx, &fx->log, both23, 4);
    put_root_checkpoint(fx, 3, &fx->log, fx->log.n, both23, 4);
    log_filler(&fx->log, 300, 0x31);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig third[] = {{W8, NOW + 60}, {W9, NOW + 60}};
    put_checkpoint(fx, &fx->log, third, 2);
    fx->now = NOW + 120;
}

/* Issue 9, acceptance 8 (library): a bundle verifies from every starting
 * point a device can have, and leaves the same state as the mirror path;
 * the already-current bundle carries no root and no file the device has. */
static void test_bundle_every_starting_point(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    bundle_history(fx);
    const char *devices[] = {"bootstrap", "behind", "rotation"};
    struct ota_buf bytes;
    struct ota_bundle *b = malloc(sizeof(*b));
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
        device(fx, devices[i]);
        make_bundle(fx, &bytes, b);
        assert_int_equal(b->newest_root, 3);
        assert_int_equal(b->nroot_checkpoints, 2);
        print_message("bundle from %s: %zu bytes\n", devices[i], bytes.len);
        assert_err(refresh_bundle(fx, b, &det), 0, &det);
        assert_versions(fx, 3, fx->ts_v, fx->snap_v, fx->tg_v);
        assert_int_equal(stored_size(fx), fx->log.n);
        assert_int_equal(ota_tuf_client_time_floor(fx->c), NOW + 60);
        ota_buf_free(&bytes);
        /* The mirror path agrees, and the bundle path again too. */
        assert_err(refresh(fx, &det), 0, &det);
        assert_versions(fx, 3, fx->ts_v, fx->snap_v, fx->tg_v);
    }
    /* Already current. */
    make_bundle(fx, &bytes, b);
    assert_int_equal(b->nroots, 0);
    assert_int_equal(b->nroot_checkpoints, 0);
    assert_int_equal(b->snapshot.len, 0);
    assert_int_equal(b->targets.len, 0);
    assert_int_equal(b->nconsistency, 0);
    assert_int_equal(b->ninclusion, 1);
    print_message("bundle when current: %zu bytes\n", bytes.len);
    assert_err(refresh_bundle(fx, b, &det), 0, &det);
    assert_versions(fx, 3, fx->ts_v, fx->snap_v, fx->tg_v);
    /* Downloads work from a fetcher after a bundle refresh. */
    ota_buf_free(&bytes);

    /* A bundle for another state is refused before anything is checked. */
    device(fx, "behind2");
    struct ota_bundle_request req = {.root_version = 1, .checkpoint_size = 0};
    ota_buf_init(&bytes, OTA_BUNDLE_MAX_LEN);
    assert_err(ota_bundle_build(&bytes, fx->f, &req, &det), 0, &det);
    assert_err(ota_bundle_parse(b, bytes.data, bytes.len, &det), 0, &det);
    device(fx, "behind");
    assert_err(refresh_bundle(fx, b, &det), OTA_ERR_BUNDLE_BASE, &det);
    assert_non_null(strstr(det.msg, "root v3"));
    ota_buf_free(&bytes);
    /* A root the repository does not have, a checkpoint beyond the log. */
    req.root_version = 9;
    assert_err(ota_bundle_build(&bytes, fx->f, &req, &det), OTA_ERR_BUNDLE_BASE, &det);
    req.root_version = 1;
    req.checkpoint_size = fx->log.n + 1;
    assert_err(ota_bundle_build(&bytes, fx->f, &req, &det), OTA_ERR_BUNDLE_BASE, &det);
    assert_int_equal(bytes.len, 0);
    free(b);
}

static void copy_state(const char *from, const char *to);

/* Points f at a copy of its bytes (with a NUL after them), to be altered;
 * returns the copy (free()). */
static uint8_t *dup_file(struct ota_bundle_file *f)
{
    uint8_t *c = malloc(f->len + 1);
    assert_non_null(c);
    memcpy(c, f->data, f->len);
    c[f->len] = 0;
    f->data = c;
    return c;
}

/* A hex digit of the first signature of a metadata file, swapped for
 * another hex digit (the JSON stays valid, the signature does not). */
static uint8_t *flip_sig(struct ota_bundle_file *f)
{
    uint8_t *c = dup_file(f);
    char *sig = strstr((char *)c, "\"sig\":\"");
    assert_non_null(sig);
    sig += 10;
    *sig = *sig == 'a' ? 'b' : 'a';
    return c;
}

/* What a device at "rotation" does with each flawed bundle: refused with
 * the error the mirror path gives for the same fault, state unchanged.
 * (Every field of the format, flipped or dropped, is the system test's
 * table: tests/system/test_bundle.py.) */
static void test_bundle_refusals(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    bundle_history(fx);
    char saved[128];
    snprintf(saved, sizeof(saved), "%s/saved", fx->base);
    device(fx, "rotation");
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    copy_state(fx->opts.state_dir, saved);
    device(fx, "rotation");
    struct ota_buf bytes;
    struct ota_bundle *good = malloc(sizeof(*good)), *b = malloc(sizeof(*b));
    assert_non_null(good);
    assert_non_null(b);
    make_bundle(fx, &bytes, good);
    assert_int_equal(good->nconsistency, 3); /* from 7, and from each root checkpoint */

    struct {
        const char *what;
        int want;
    } cases[] = {
        {"newest root dropped", OTA_ERR_BUNDLE_INCOMPLETE},
        {"newest root dropped and not announced", OTA_ERR_QUORUM},
        {"root checkpoint 2 dropped", OTA_ERR_QUORUM},
        {"root 2 flipped", OTA_ERR_BAD_SIGNATURE},
        {"root checkpoint 3 flipped", OTA_ERR_BAD_SIGNATURE},
        {"consistency proof flipped", OTA_ERR_PROOF},
        {"consistency proof dropped", OTA_ERR_BUNDLE_INCOMPLETE},
        {"inclusion of root 2 flipped", OTA_ERR_NOT_IN_LOG},
        {"inclusion of the snapshot dropped", OTA_ERR_BUNDLE_INCOMPLETE},
        {"checkpoint dropped", OTA_ERR_BUNDLE_INCOMPLETE},
        {"timestamp flipped", OTA_ERR_BAD_SIGNATURE},
        {"snapshot flipped", OTA_ERR_HASH_MISMATCH},
        {"targets dropped", OTA_ERR_BUNDLE_INCOMPLETE},
        {"base root", OTA_ERR_BUNDLE_BASE},
        {"base size", OTA_ERR_BUNDLE_BASE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        *b = *good;
        uint8_t *copy = NULL;
        switch (i) {
        case 0:
            b->nroots--;
            break;
        case 1:
            b->nroots--;
            b->newest_root--;
            b->nroot_checkpoints--;
            break;
        case 2:
            b->root_checkpoints[0] = b->root_checkpoints[1];
            b->nroot_checkpoints--;
            break;
        case 3:
            copy = flip_sig(&b->roots[0]);
            break;
        case 4: {
            copy = dup_file(&b->root_checkpoints[1]);
            char *line = strstr((char *)copy, "witness5.example ");
            assert_non_null(line);
            char *sig = line + strlen("witness5.example ") + 40;
            *sig = *sig == 'A' ? 'B' : 'A';
            break;
        }
        case 5:
            b->consistency[0].hashes =
                memcpy(copy = malloc(32 * b->consistency[0].count), b->consistency[0].hashes,
                       32 * b->consistency[0].count);
            copy[5] ^= 0x80;
            break;
        case 6:
            b->consistency[0] = b->consistency[--b->nconsistency];
            break;
        case 7:
            b->inclusion[0].hashes = memcpy(copy = malloc(32 * b->inclusion[0].count),
                                            b->inclusion[0].hashes, 32 * b->inclusion[0].count);
            copy[0] ^= 0x80;
            break;
        case 8:
            b->ninclusion--;
            break;
        case 9:
            b->checkpoint.len = 0;
            break;
        case 10:
            copy = flip_sig(&b->timestamp);
            break;
        case 11:
            copy = dup_file(&b->snapshot);
            copy[40] ^= 0x01;
            break;
        case 12:
            b->targets.len = 0;
            break;
        case 13:
            b->base_root = 2;
            break;
        default:
            b->base_size++;
            break;
        }
        ota_tuf_client_free(fx->c);
        fx->c = NULL;
        copy_state(saved, fx->opts.state_dir);
        assert_err(open_client(fx, &det), 0, &det);
        int rc = refresh_bundle(fx, b, &det);
        if (rc != cases[i].want)
            fail_msg("%s: got %s (%s), want %s", cases[i].what, ota_errname(rc), det.msg,
                     ota_errname(cases[i].want));
        /* Nothing trusted beyond what was proven: never the new targets,
         * never the new checkpoint (each file is trusted once proven, in
         * the workflow's order: a dropped targets leaves the proven
         * snapshot). */
        if (trusted_version(fx, OTA_TUF_TARGETS) != 4)
            fail_msg("%s: targets v%llu trusted", cases[i].what,
                     (unsigned long long)trusted_version(fx, OTA_TUF_TARGETS));
        assert_int_equal(stored_size(fx), 9);
        free(copy);
    }

    /* A per-root checkpoint from a fork of the log: root 2 is in it (with
     * its own inclusion proof), but the consistency proof from it to the
     * log's checkpoint cannot lead from one signed root to the other. */
    *b = *good;
    const struct ota_bundle_inclusion *in2 = &good->inclusion[0];
    assert_int_equal(in2->role, OTA_TUF_ROOT);
    assert_int_equal(in2->version, 2);
    struct log fork = fx->log;
    fork.n = in2->size;
    log_filler(&fork, 1, 0x99);
    put_note_as(fx, "fork-cp", ORIGIN, &fork, fork.n, fx->logkey,
                (struct cosig[]){{W1, NOW}, {W2, NOW}, {W3, NOW}}, 3);
    char p[512];
    snprintf(p, sizeof(p), "%s/ledger/fork-cp", fx->repo);
    size_t fork_len;
    uint8_t *fork_note = read_path(p, &fork_len);
    assert_non_null(fork_note);
    b->root_checkpoints[0] = (struct ota_bundle_file){2, fork_note, fork_len};
    struct ota_merkle_proof *ip = malloc(sizeof(*ip)), *cp = malloc(sizeof(*cp));
    assert_non_null(ip);
    assert_non_null(cp);
    ip->count = 0;
    nt_path(ip, (const uint8_t(*)[NH])fork.leaf, in2->index, 0, fork.n);
    b->inclusion[0] = (struct ota_bundle_inclusion){OTA_TUF_ROOT, 2,         in2->index,
                                                    fork.n,       ip->count, &ip->hash[0][0]};
    /* Its consistency proof: the real one's hashes (any would do). */
    cp->count = ota_merkle_consistency_len(fork.n, fx->log.n);
    memset(cp->hash, 0x42, sizeof(cp->hash));
    size_t k = 0;
    for (size_t i = 0; i < b->nconsistency; i++)
        if (b->consistency[i].size1 == in2->size)
            k = i;
    b->consistency[k] =
        (struct ota_bundle_consistency){fork.n, fx->log.n, cp->count, &cp->hash[0][0]};
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    copy_state(saved, fx->opts.state_dir);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh_bundle(fx, b, &det), OTA_ERR_PROOF, &det);
    assert_non_null(strstr(det.msg, "root-checkpoint/2"));
    assert_non_null(strstr(det.msg, "forked"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 4);
    assert_int_equal(stored_size(fx), 9);
    free(ip);
    free(cp);
    free(fork_note);
    ota_buf_free(&bytes);
    free(good);
    free(b);
}

/* ---- refusals: inclusion ---------------------------------------------------------------- */

static void test_snapshot_not_in_log(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    size_t snap_before_len;
    uint8_t *snap_before = state_bytes(fx, "snapshot.json", &snap_before_len);
    assert_non_null(snap_before);
    uint64_t size_before = stored_size(fx);

    /* A validly signed release never logged: no index file for it. */
    publish_tuf(fx, PUB_UNLOGGED, NULL, NULL);
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "index/snapshot/2"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
    assert_state_unchanged(fx, "snapshot.json", snap_before, snap_before_len);
    assert_int_equal(stored_size(fx), size_before);

    /* An index naming another entry (the targets one). */
    log_file(fx, &fx->log, OTA_TUF_TARGETS, 2, (const uint8_t *)"x", 1, false);
    ledger_write(fx, "index/snapshot/2", "3", 1);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "leaf 3"));

    /* An index beyond the tree. */
    ledger_write(fx, "index/snapshot/2", "99", 2);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "beyond"));
    /* A malformed index. */
    ledger_write(fx, "index/snapshot/2", "03", 2);
    assert_err(refresh(fx, &det), OTA_ERR_FORMAT, &det);
    ledger_write(fx, "index/snapshot/2", "3\n", 2);
    assert_err(refresh(fx, &det), OTA_ERR_FORMAT, &det);
    ledger_write(fx, "index/snapshot/2", "123456789012345678901234567890123", 33);
    assert_err(refresh(fx, &det), OTA_ERR_TOO_LARGE, &det);

    /* The log holds a snapshot v2, but for other bytes than the (validly
     * signed) ones served: their entry is not the logged one. */
    log_file(fx, &fx->log, OTA_TUF_SNAPSHOT, 2, (const uint8_t *)"other bytes", 11, true);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "snapshot v2"));
    assert_non_null(strstr(det.msg, "leaf 4"));
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);
    assert_state_unchanged(fx, "snapshot.json", snap_before, snap_before_len);
    assert_int_equal(stored_size(fx), size_before);
    free(snap_before);
}

static void test_new_root_not_in_log(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    size_t before_len;
    uint8_t *before = state_bytes(fx, "root.json", &before_len);
    assert_non_null(before);
    rotate(fx, K_ROOT2, POL_FIRST, true);
    publish(fx, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_IN_LOG, &det);
    assert_non_null(strstr(det.msg, "index/root/2"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
    assert_state_unchanged(fx, "root.json", before, before_len);
    assert_int_equal(trusted_version(fx, OTA_TUF_SNAPSHOT), 1);

    /* Logged, but after the cosigned checkpoint (a publish in progress:
     * entries, tiles and index are written before the witnesses cosign).
     * Not trusted yet; the rest goes on under root v1. */
    char p[512];
    snprintf(p, sizeof(p), "%s/metadata/2.root.json", fx->repo);
    size_t n;
    uint8_t *b = read_path(p, &n);
    assert_non_null(b);
    log_file(fx, &fx->log, OTA_TUF_ROOT, 2, b, n, true);
    log_write_tiles(fx, &fx->log);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
    assert_state_unchanged(fx, "root.json", before, before_len);
    assert_int_equal(stored_size(fx), fx->log.n - 1);

    /* Once a cosigned checkpoint includes it: accepted. */
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 2, 2, 2, 2);
    free(b);
    free(before);
}

static void test_bad_ledger_field_refuses_root(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    /* Root v2 with max_age 0 in x-otachain-ledger. */
    char p[512];
    snprintf(p, sizeof(p), "%s/metadata/1.root.json", fx->repo);
    size_t n;
    uint8_t *b = read_path(p, &n);
    assert_non_null(b);
    json_t *doc = json_loadb((const char *)b, n, 0, NULL);
    assert_non_null(doc);
    json_t *sgn = json_deep_copy(json_object_get(doc, "signed"));
    json_object_set_new(sgn, "version", json_integer(2));
    json_object_set_new(json_object_get(sgn, "x-otachain-ledger"), "max_age", json_integer(0));
    json_decref(doc);
    int signer = K_ROOT1;
    size_t len;
    uint8_t *r2 = put_meta(fx, "2.root.json", envelope(sgn), &signer, 1, &len);
    log_file(fx, &fx->log, OTA_TUF_ROOT, 2, r2, len, true);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_FORMAT, &det);
    assert_non_null(strstr(det.msg, "2.root.json"));
    assert_int_equal(trusted_version(fx, OTA_TUF_ROOT), 1);
    free(b);
    free(r2);
}

/* ---- refusals: the checkpoint ---------------------------------------------------------- */

static void test_below_quorum(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    size_t ts_len;
    uint8_t *ts = state_bytes(fx, "timestamp.json", &ts_len);
    assert_non_null(ts);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig two[] = {{W1, NOW}, {W4, NOW}};
    put_checkpoint(fx, &fx->log, two, 2);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    assert_non_null(strstr(det.msg, "ledger/checkpoint"));
    assert_non_null(strstr(det.msg, "w1, w4"));
    /* Refused before the timestamp: nothing moved. */
    assert_versions(fx, 1, 1, 1, 1);
    assert_state_unchanged(fx, "timestamp.json", ts, ts_len);
    assert_int_equal(stored_size(fx), 3);

    /* No cosignature at all; no log signature at all. */
    put_checkpoint(fx, &fx->log, NULL, 0);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);
    struct cosig three[] = {{W1, NOW}, {W2, NOW}, {W3, NOW}};
    put_checkpoint_by(fx, &fx->log, fx->log.n, NULL, three, 3);
    assert_err(refresh(fx, &det), OTA_ERR_UNVERIFIED, &det);
    /* Signed by another key under the log's name: not the log. */
    put_checkpoint_by(fx, &fx->log, fx->log.n, fx->otherlog, three, 3);
    assert_err(refresh(fx, &det), OTA_ERR_UNVERIFIED, &det);
    /* Missing altogether. */
    char p[512];
    snprintf(p, sizeof(p), "%s/ledger/checkpoint", fx->repo);
    assert_int_equal(unlink(p), 0);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_FOUND, &det);
    assert_non_null(strstr(det.msg, "checkpoint"));
    assert_versions(fx, 1, 1, 1, 1);

    put_checkpoint(fx, &fx->log, three, 3);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
    free(ts);
}

static void test_unknown_and_forged_cosignatures(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);

    /* Two policy witnesses and a stranger: the stranger does not count. */
    struct cosig cs[] = {{W1, NOW}, {W2, NOW}, {W_STRANGER, NOW}};
    put_checkpoint(fx, &fx->log, cs, 3);
    assert_err(refresh(fx, &det), OTA_ERR_QUORUM, &det);

    /* Four cosignatures, one of them forged: a valid key ID of W2 with a
     * signature that does not verify refuses the whole checkpoint. */
    struct cosig four[] = {{W1, NOW}, {W2, NOW}, {W3, NOW}, {W4, NOW}};
    put_checkpoint(fx, &fx->log, four, 4);
    size_t len;
    uint8_t *note = read_checkpoint(fx, &len);
    assert_non_null(note);
    char *line = strstr((char *)note, "witness2.example ");
    assert_non_null(line);
    /* Flip a base64 character well inside the signature (after the key
     * ID and time), keeping the base64 canonical. */
    char *sig = line + strlen("witness2.example ") + 40;
    *sig = *sig == 'A' ? 'B' : 'A';
    ledger_write(fx, "checkpoint", note, len);
    assert_err(refresh(fx, &det), OTA_ERR_BAD_SIGNATURE, &det);
    assert_versions(fx, 1, 1, 1, 1);

    /* A forged log signature. */
    put_checkpoint(fx, &fx->log, four, 4);
    free(note);
    note = read_checkpoint(fx, &len);
    line = strstr((char *)note, "\n\n\xe2\x80\x94 " ORIGIN " ");
    assert_non_null(line);
    sig = line + strlen("\n\n\xe2\x80\x94 " ORIGIN " ") + 20;
    *sig = *sig == 'A' ? 'B' : 'A';
    ledger_write(fx, "checkpoint", note, len);
    assert_err(refresh(fx, &det), OTA_ERR_BAD_SIGNATURE, &det);
    assert_versions(fx, 1, 1, 1, 1);
    free(note);
}

static void test_wrong_origin(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    assert_non_null(cp);
    snprintf(cp->origin, sizeof(cp->origin), "evil.example/log");
    cp->origin_len = strlen(cp->origin);
    cp->size = fx->log.n;
    log_root(&fx->log, fx->log.n, cp->root);
    struct ota_buf body, note;
    ota_buf_init(&body, 1u << 20);
    ota_buf_init(&note, 1u << 20);
    assert_int_equal(ota_checkpoint_format(&body, cp), 0);
    assert_int_equal(ota_buf_append(&note, body.data, body.len), 0);
    assert_int_equal(ota_buf_append(&note, "\n", 1), 0);
    assert_int_equal(ota_note_sign(&note, (const char *)body.data, body.len, fx->logkey, NULL), 0);
    ledger_write(fx, "checkpoint", note.data, note.len);
    assert_err(refresh(fx, &det), OTA_ERR_ORIGIN, &det);
    ota_buf_free(&body);
    ota_buf_free(&note);
    free(cp);
}

static void test_replayed_stale_checkpoint(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    /* The device last looked at NOW - 2 max_age, when this checkpoint was
     * cosigned; the attacker freezes its view there. */
    put_checkpoint_at(fx, &fx->log, NOW - 2 * MAX_AGE);
    fx->now = NOW - 2 * MAX_AGE;
    open_and_refresh(fx);
    assert_versions(fx, 1, 1, 1, 1);
    publish(fx, NOW); /* the real repository moves on */

    /* Replay: the old release with its old cosignatures. */
    struct log old = fx->log;
    old.n = 3;
    log_write_tiles(fx, &old);
    fx->now = NOW;
    put_checkpoint_at(fx, &old, NOW - 2 * MAX_AGE);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_non_null(strstr(det.msg, "size 3"));

    /* One compromised witness adds a fresh cosignature: still stale. */
    struct cosig cs[] = {
        {W1, NOW - 2 * MAX_AGE}, {W2, NOW - 2 * MAX_AGE}, {W3, NOW - 2 * MAX_AGE}, {W4, NOW}};
    put_checkpoint(fx, &old, cs, 4);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_non_null(strstr(det.msg, "counted: w4"));

    /* The real log, at the edges of the window: one cosignature just
     * outside it (in the past, or beyond the skew in the future) leaves
     * two of three. */
    log_write_tiles(fx, &fx->log);
    struct cosig edge[] = {{W1, NOW}, {W2, NOW}, {W3, NOW - MAX_AGE - 1}};
    put_checkpoint(fx, &fx->log, edge, 3);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    struct cosig future[] = {{W1, NOW}, {W2, NOW}, {W3, NOW + 301}};
    put_checkpoint(fx, &fx->log, future, 3);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_versions(fx, 1, 1, 1, 1);
    /* The window's own edges count. */
    struct cosig inside[] = {{W1, NOW - MAX_AGE}, {W2, NOW + 300}, {W3, NOW}};
    put_checkpoint(fx, &fx->log, inside, 3);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
}

/* ---- the time floor (DESIGN §6) ---------------------------------------------------------- */

/* The floor as stored in the state (0 when absent). */
static int64_t stored_floor(const struct fx *fx)
{
    size_t len;
    uint8_t *b = state_bytes(fx, "time-floor", &len);
    if (b == NULL)
        return 0;
    assert_true(len > 1 && b[len - 1] == '\n');
    char text[32] = {0};
    assert_true(len < sizeof(text));
    memcpy(text, b, len - 1);
    free(b);
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    assert_true(*end == '\0');
    return (int64_t)v;
}

/* Issue 9, acceptance 2: a board whose clock reads 0. The floor F is the
 * build time; a replay older than F - max_age is refused; a genuine state
 * cosigned 30 days after F is accepted (cosignatures later than the clock
 * are not "from the future" while the clock is behind the floor) and
 * moves the floor to what the quorum vouches for (the 3rd newest of 3 of
 * 4), not to one witness's far-future time. */
static void test_time_floor_clock_at_zero(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    const int64_t F = NOW;
    fx->opts.build_time = F;
    fx->now = 0;

    /* The release of setup, replayed with cosignatures older than
     * F - max_age: stale, nothing stored. */
    put_checkpoint_at(fx, &fx->log, F - MAX_AGE - 1);
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), F);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_non_null(strstr(det.msg, "time floor"));
    assert_int_equal(stored_size(fx), 0);
    assert_versions(fx, 1, 0, 0, 0);
    assert_int_equal(stored_floor(fx), 0);

    /* At the window's edge it counts; the floor does not go down to it
     * (the build time is what the state stores). */
    put_checkpoint_at(fx, &fx->log, F - MAX_AGE);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 1, 1, 1);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), F);
    assert_int_equal(stored_floor(fx), F);

    /* The genuine next state, cosigned 30 days after the floor; w4's
     * clock is a century ahead. */
    const int64_t T = F + 30 * DAY;
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig genuine[] = {{W1, T}, {W2, T + 60}, {W3, T + 120}, {W4, F + 100 * YEAR}};
    put_checkpoint(fx, &fx->log, genuine, 4);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), T + 60);
    assert_int_equal(stored_floor(fx), T + 60);
    /* Persisted: a reopened client (even of an older build) keeps it;
     * status tools read it without a client. */
    fx->opts.build_time = BUILD;
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), T + 60);
    int64_t seen = 0;
    assert_err(ota_tuf_state_time_floor(&seen, fx->state, BUILD, &det), 0, &det);
    assert_int_equal(seen, T + 60);
    /* A build later than the stored floor is the floor. */
    assert_err(ota_tuf_state_time_floor(&seen, fx->state, T + 61, &det), 0, &det);
    assert_int_equal(seen, T + 61);

    /* One witness's far-future cosignature alone does not move it. */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig one_ahead[] = {{W1, T + 60}, {W2, T + 60}, {W3, T + 60}, {W4, F + 200 * YEAR}};
    put_checkpoint(fx, &fx->log, one_ahead, 4);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 3, 3, 3);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), T + 60);
    assert_int_equal(stored_floor(fx), T + 60);
    /* Nor two of them (the quorum is 3). */
    struct cosig two_ahead[] = {
        {W1, T + 60}, {W2, T + 60}, {W3, F + 200 * YEAR}, {W4, F + 200 * YEAR}};
    put_checkpoint(fx, &fx->log, two_ahead, 4);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(stored_floor(fx), T + 60);

    /* The floor protects the clockless device now: the state of 30 days
     * ago (size 5, cosigned at F) replayed is stale. */
    struct log old = fx->log;
    old.n = 3;
    put_checkpoint_at(fx, &old, F);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_int_equal(stored_floor(fx), T + 60);
}

/* Every other rule of the floor, each refused or kept as it must be. */
static void test_time_floor_rules(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    const int64_t F = NOW;
    fx->opts.build_time = F;

    /* No clock reading at all is a clock behind the floor. */
    fx->now = OTA_TIME_NONE;
    struct cosig ahead[] = {{W1, F + DAY}, {W2, F + DAY}, {W3, F + DAY}};
    put_checkpoint(fx, &fx->log, ahead, 3);
    open_and_refresh(fx);
    assert_int_equal(stored_floor(fx), F + DAY);

    /* A clock at or above the floor is believed: cosignatures beyond its
     * skew are from the future again. */
    const int64_t G = F + DAY + 301;
    fx->now = F + DAY;
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, G);
    assert_err(refresh(fx, &det), OTA_ERR_STALE, &det);
    assert_int_equal(stored_floor(fx), F + DAY);
    fx->now = F + DAY + 10;
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(stored_floor(fx), G);

    /* Never lowered: a genuine checkpoint whose quorum vouches for less
     * than the floor (within the window) is accepted, the floor stays. */
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, G - 100);
    fx->now = 0;
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(stored_floor(fx), G);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), G);

    /* Expiry is judged against the floor: a timestamp that expires before
     * it is expired although the clock reads 0... */
    fx->ts_exp = G - 1;
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, G - 100);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_non_null(strstr(det.msg, "time floor"));
    assert_versions(fx, 1, 3, 3, 3);
    /* ...and against what this very checkpoint vouches for: a timestamp
     * valid at the floor but expired when the witnesses cosigned. */
    fx->ts_exp = G + 2 * DAY;
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, G + 3 * DAY);
    assert_err(refresh(fx, &det), OTA_ERR_EXPIRED, &det);
    assert_versions(fx, 1, 3, 3, 3);
    /* Refused states do not move the floor. */
    assert_int_equal(stored_floor(fx), G);
    fx->ts_exp = 0;
    publish(fx, G + 3 * DAY);
    assert_err(refresh(fx, &det), 0, &det);
    assert_int_equal(stored_floor(fx), G + 3 * DAY);

    /* A corrupt floor is an error, never a silent reset. */
    const char *bad[] = {"",      "\n", "12", "012\n", "-5\n", "1 \n", "99999999999999999999\n",
                         "12\n\n"};
    char p[256];
    sub_path(p, sizeof(p), fx->state, "time-floor");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t seen = 1;

        write_path(p, bad[i], strlen(bad[i]));
        assert_err(open_client(fx, &det), OTA_ERR_FORMAT, &det);
        assert_non_null(strstr(det.msg, "time floor"));
        /* The reader without a client says the same, naming the file. */
        det.msg[0] = '\0';
        assert_err(ota_tuf_state_time_floor(&seen, fx->state, G, &det), OTA_ERR_FORMAT, &det);
        assert_non_null(strstr(det.msg, p));
        assert_int_equal(seen, 0);
    }
    /* A negative build time is no time. */
    unlink(p);
    fx->opts.build_time = -1;
    assert_err(open_client(fx, &det), OTA_ERR_INVALID_ARG, &det);
    {
        int64_t seen = 1;

        assert_err(ota_tuf_state_time_floor(&seen, fx->state, -1, &det), OTA_ERR_INVALID_ARG, &det);
        /* Nothing stored: the build time. */
        assert_err(ota_tuf_state_time_floor(&seen, fx->state, G, &det), 0, &det);
        assert_int_equal(seen, G);
    }
}

/* ---- refusals: consistency (split views) ------------------------------------------------- */

static void test_split_view(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    char dev_a[128], dev_b[128];
    snprintf(dev_a, sizeof(dev_a), "%s/dev-a", fx->base);
    snprintf(dev_b, sizeof(dev_b), "%s/dev-b", fx->base);

    /* Both devices see the history up to size 3. */
    fx->opts.state_dir = dev_a;
    open_and_refresh(fx);
    fx->opts.state_dir = dev_b;
    open_and_refresh(fx);

    /* The log shows device A one release and device B another, each
     * cosigned (three colluding or compromised witnesses). */
    struct log base = fx->log;
    uint64_t tg = fx->tg_v, sn = fx->snap_v, ts = fx->ts_v;
    publish(fx, NOW); /* history A: size 5 */
    struct log hist_a = fx->log;
    fx->opts.state_dir = dev_a;
    open_and_refresh(fx);
    assert_int_equal(stored_size(fx), 5);

    fx->log = base;
    fx->tg_v = tg + 10; /* another release under the same snapshot version */
    fx->snap_v = sn;
    fx->ts_v = ts;
    publish(fx, NOW); /* history B: size 5, another root */
    fx->opts.state_dir = dev_b;
    open_and_refresh(fx);
    assert_int_equal(stored_size(fx), 5);

    /* Device A shown history B: same size, another root. */
    fx->opts.state_dir = dev_a;
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_SPLIT_VIEW, &det);
    assert_non_null(strstr(det.msg, "size 5"));
    assert_int_equal(stored_size(fx), 5);

    /* History B grows: a larger checkpoint that does not extend A's. */
    log_filler(&fx->log, 300, 0x42);
    publish(fx, NOW);
    assert_err(refresh(fx, &det), OTA_ERR_SPLIT_VIEW, &det);
    assert_non_null(strstr(det.msg, "does not extend"));
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), tg + 1);

    /* Device B shown the smaller history (size 3, freshly cosigned). */
    fx->opts.state_dir = dev_b;
    fx->log = base;
    log_write_tiles(fx, &fx->log);
    put_checkpoint_at(fx, &fx->log, NOW);
    assert_err(open_client(fx, &det), 0, &det);
    assert_err(refresh(fx, &det), OTA_ERR_SPLIT_VIEW, &det);
    assert_non_null(strstr(det.msg, "smaller"));

    /* History A grows with a new release: still consistent for A. */
    fx->opts.state_dir = dev_a;
    fx->log = hist_a;
    log_filler(&fx->log, 2, 0x43);
    publish(fx, NOW);
    open_and_refresh(fx);
    assert_int_equal(stored_size(fx), hist_a.n + 4);
    assert_int_equal(trusted_version(fx, OTA_TUF_TARGETS), fx->tg_v);
}

static void test_tampered_tiles(void **state)
{
    struct fx *fx = *state;
    struct ota_detail det = {{0}};
    open_and_refresh(fx);
    publish(fx, NOW);
    /* Flip a byte of the level-0 partial tile: the tree no longer hashes
     * to the signed root (bad mirror, not a fork). */
    char p[512];
    snprintf(p, sizeof(p), "%s/ledger/tile/0/000.p/5", fx->repo);
    size_t n;
    uint8_t *t = read_path(p, &n);
    assert_non_null(t);
    assert_int_equal(n, 5 * 32);
    t[0] ^= 1;
    write_path(p, t, n);
    assert_err(refresh(fx, &det), OTA_ERR_PROOF, &det);
    assert_non_null(strstr(det.msg, "tiles"));
    /* Truncated tile. */
    write_path(p, t, n - 1);
    assert_err(refresh(fx, &det), OTA_ERR_FORMAT, &det);
    /* Missing tile. */
    assert_int_equal(unlink(p), 0);
    assert_err(refresh(fx, &det), OTA_ERR_NOT_FOUND, &det);
    assert_non_null(strstr(det.msg, "tile/0/000"));
    assert_versions(fx, 1, 1, 1, 1);
    t[0] ^= 1;
    write_path(p, t, n);
    assert_err(refresh(fx, &det), 0, &det);
    assert_versions(fx, 1, 2, 2, 2);
    free(t);
}

/* ---- fault injection -------------------------------------------------------------------- */

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
    const char *names[] = {"root.json",    "timestamp.json", "snapshot.json",
                           "targets.json", "checkpoint",     "time-floor"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char a[256], b[256];
        sub_path(a, sizeof(a), from, names[i]);
        sub_path(b, sizeof(b), to, names[i]);
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
    open_and_refresh(fx);
    ota_tuf_client_free(fx->c);
    fx->c = NULL;
    char baseline[128];
    snprintf(baseline, sizeof(baseline), "%s/baseline", fx->base);
    copy_state(fx->state, baseline);

    /* Next: root v2 with the second witness set, a new release, cosigned
     * by both sets. */
    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    struct cosig both[] = {
        {W1, NOW + 10}, {W2, NOW + 10}, {W3, NOW + 10}, {W5, NOW + 10}, {W6, NOW + 10}};
    put_checkpoint(fx, &fx->log, both, 5);
    fx->now = NOW + 10; /* the floor moves too */

    unsigned fail_at;
    bool checkpoint_step = false, floor_step = false;
    for (fail_at = 1; fail_at < 200; fail_at++) {
        copy_state(baseline, fx->state);
        struct fail_hook h = {.fail_at = fail_at};
        struct ota_fs_hook hook = {.fn = fail_fn, .ctx = &h};
        fx->opts.hook = &hook;
        assert_err(open_client(fx, &det), 0, &det);
        int rc = refresh(fx, &det);
        fx->opts.hook = NULL;
        if (h.calls < fail_at) {
            assert_err(rc, 0, &det);
            break;
        }
        assert_err(rc, OTA_ERR_IO, &det);
        if (strstr(det.msg, "checkpoint"))
            checkpoint_step = true;
        if (strstr(det.msg, "time floor"))
            floor_step = true;
        /* The stored floor is the old one or the new one. */
        assert_true(stored_floor(fx) == NOW || stored_floor(fx) == NOW + 10);
        /* The stored checkpoint is the old one or the new one, whole. */
        uint64_t size = stored_size(fx);
        assert_true(size == 3 || size == fx->log.n);
        /* Whatever is left on disk opens and converges. */
        assert_err(open_client(fx, &det), 0, &det);
        assert_err(refresh(fx, &det), 0, &det);
        assert_versions(fx, 2, 2, 2, 2);
        assert_int_equal(stored_size(fx), fx->log.n);
    }
    assert_true(checkpoint_step);
    assert_true(floor_step);
    assert_int_equal(stored_floor(fx), NOW + 10);
    assert_true(fail_at > 15);
    assert_versions(fx, 2, 2, 2, 2);
    assert_int_equal(stored_size(fx), fx->log.n);
}

/* ---- allocation faults ------------------------------------------------------------ */

static int fa_refresh(struct fx *fx)
{
    struct ota_detail det = {{0}};
    struct ota_tuf_client *c = NULL;
    int rc = ota_tuf_client_open(&c, &fx->opts, fx->root1, fx->root1_len, &det);

    if (rc == 0)
        rc = ota_tuf_client_refresh(c, fx->f, fx->now, &det);
    ota_tuf_client_free(c);
    return rc;
}

/* STYLE rule 9, with the ledger rule: from an empty state, a refresh
 * through a root rotation that changes the witness set (checkpoint,
 * cosignatures, tiles, inclusion and consistency proofs), each
 * allocation failing in turn. Every run fails cleanly or succeeds, and
 * the state it leaves lets a normal refresh reach the same versions. */
static void test_alloc_faults(void **state)
{
    struct fx *fx = *state;
    struct cosig both[] = {{W1, NOW}, {W2, NOW}, {W4, NOW}, {W5, NOW}, {W7, NOW}};
    unsigned long n;

    rotate(fx, K_ROOT2, POL_SECOND, false);
    publish_tuf(fx, PUB_LOGGED, NULL, NULL);
    log_write_tiles(fx, &fx->log);
    put_checkpoint(fx, &fx->log, both, 5);
    assert_int_equal(fa_refresh(fx), 0);
    for (n = 1;; n++) {
        int rc;

        rm_rf(fx->state);
        fa_arm(n);
        rc = fa_refresh(fx);
        if (!fa_disarm()) {
            assert_int_equal(rc, 0);
            break;
        }
        if (!fa_rc_ok(rc))
            fail_msg("allocation %lu failed: %s", n, ota_errname(rc));
        open_and_refresh(fx);
        assert_versions(fx, 2, 2, 2, 2);
    }
    assert_true(fa_failed_runs() > 50);
}

int main(void)
{
    assert_int_equal(fa_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_missing_from_state_is_refetched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_witness_set_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_across_retired_witness_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_checkpoint_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_every_starting_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_not_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_root_not_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ledger_field_refuses_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_below_quorum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_forged_cosignatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_stale_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_floor_clock_at_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_floor_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_tiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_survives_failure_at_every_write, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
