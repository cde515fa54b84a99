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
#define ORIGIN  "example.com/otachain-log"
#define TARGET  "fw/app.bin"

#define MAX_LEAVES 1024

enum key_id { K_ROOT1, K_ROOT2, K_TS, K_SNAP, K_TG, NKEYS };

/* Witnesses: W1..W4 are the first policy's (group of 4, threshold 3), W5..W7
 * the set a root rotation moves to (2 of 3), W_STRANGER is in no policy. */
enum wit_id { W1, W2, W3, W4, W5, W6, W7, W_STRANGER, NWIT };

/* Which ledger a root carries. */
enum policy_kind { POL_NONE, POL_FIRST, POL_SECOND, POL_QUORUM_NONE };

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

/* Writes ledger/checkpoint for the first `size` leaves of lg, signed by
 * `log` (NULL: no log signature) and cosigned as given; returns nothing. */
static void put_checkpoint_by(const struct fx *fx, const struct log *lg, size_t size,
                              const struct ota_note_signer *log, const struct cosig *cs, size_t ncs)
{
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    assert_non_null(cp);
    snprintf(cp->origin, sizeof(cp->origin), "%s", ORIGIN);
    cp->origin_len = strlen(ORIGIN);
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
    ledger_write(fx, "checkpoint", note.data, note.len);
    ota_buf_free(&body);
    ota_buf_free(&note);
    free(cp);
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

#define DAY  86400LL
#define YEAR (365 * DAY)

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
    /* Persisted: a reopened client (even of an older build) keeps it. */
    fx->opts.build_time = BUILD;
    assert_err(open_client(fx, &det), 0, &det);
    assert_int_equal(ota_tuf_client_time_floor(fx->c), T + 60);

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
        write_path(p, bad[i], strlen(bad[i]));
        assert_err(open_client(fx, &det), OTA_ERR_FORMAT, &det);
        assert_non_null(strstr(det.msg, "time floor"));
    }
    /* A negative build time is no time. */
    unlink(p);
    fx->opts.build_time = -1;
    assert_err(open_client(fx, &det), OTA_ERR_INVALID_ARG, &det);
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

static int fail_fn(void *ctx, enum ota_fs_step step, const char *path)
{
    (void)step;
    (void)path;
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
