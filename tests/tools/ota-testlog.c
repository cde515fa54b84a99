/* ota-testlog: a minimal log producer for the witness tests, until
 * `otachain repo publish` writes the ledger itself. Test tool only: it
 * recomputes the tree from all leaves on every call (fine for thousands
 * of entries, never for production).
 *
 *   ota-testlog init DIR --origin O          new log: key, empty entries
 *   ota-testlog vkey DIR                     print the log's verifier key
 *   ota-testlog append DIR [--entry FILE | --meta ROLE:FILE]...
 *                                            append entries (FILE's bytes,
 *                                            or the ledger record of a TUF
 *                                            metadata file), write the
 *                                            tiles and DIR/checkpoint;
 *                                            prints the new size
 *   ota-testlog checkpoint DIR [--size N]    print the signed checkpoint
 *   ota-testlog add-body DIR --old N [--size M]
 *                                            print an add-checkpoint body
 *                                            with the proof from N to M
 *   ota-testlog fork DIR [--size N] [--at I] [--old M]
 *                                            the tree of size N (default:
 *                                            the log's) with entry I
 *                                            (default N-1) replaced, signed
 *                                            by the log key; prints its
 *                                            checkpoint, or with --old the
 *                                            add-checkpoint body with the
 *                                            forked tree's proof from M
 *
 * DIR holds log.key (0600), log.vkey, entries (each entry as a 4-byte
 * big-endian length and its bytes), checkpoint and the C2SP tlog-tiles
 * static files tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otachain/buf.h"
#include "otachain/checkpoint.h"
#include "otachain/fsutil.h"
#include "otachain/ledger_entry.h"
#include "otachain/merkle.h"
#include "otachain/note_sign.h"
#include "otachain/tiles.h"
#include "otachain/tlog_witness.h"
#include "otachain/tuf.h"

#define MAX_ENTRIES  (1u << 20)
#define MAX_FILE     (64u * 1024 * 1024)
#define ENTRY_MAX    65535
#define PATH_MAX_LEN 4096

/* The whole log in memory. */
struct log {
    const char *dir;
    struct ota_note_signer *signer;
    size_t n;
    uint8_t **entry;
    size_t *entry_len;
    uint8_t (*leaf)[OTA_MERKLE_HASH_LEN];
};

static void die(const char *fmt, const char *a, int rc)
{
    fprintf(stderr, "ota-testlog: ");
    fprintf(stderr, fmt, a);
    if (rc != 0)
        fprintf(stderr, ": %s", ota_strerror(rc));
    fputc('\n', stderr);
    exit(rc == OTA_ERR_INVALID_ARG ? 2 : 1);
}

static void path_of(char out[PATH_MAX_LEN], const char *dir, const char *name)
{
    if ((size_t)snprintf(out, PATH_MAX_LEN, "%s/%s", dir, name) >= PATH_MAX_LEN)
        die("path too long: %s", name, 0);
}

static uint64_t parse_u64(const char *s)
{
    uint64_t v;

    if (ota_checkpoint_parse_u64(&v, s, strlen(s), UINT64_C(0x7fffffffffffffff)) != 0)
        die("not a number: %s", s, OTA_ERR_INVALID_ARG);
    return v;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len,
                       unsigned mode)
{
    char path[PATH_MAX_LEN];
    char *slash;
    int rc;

    path_of(path, dir, name);
    slash = strrchr(path, '/');
    *slash = '\0';
    rc = ota_fs_mkdirs(path, 0755);
    *slash = '/';
    if (rc == 0)
        rc = ota_fs_replace(path, data, len, mode, NULL);
    if (rc != 0)
        die("writing %s", path, rc);
}

static void load(struct log *lg, const char *dir)
{
    char path[PATH_MAX_LEN];
    uint8_t *data = NULL;
    size_t len = 0;
    size_t pos = 0;
    struct ota_detail det = {{0}};
    int rc;

    memset(lg, 0, sizeof(*lg));
    lg->dir = dir;
    path_of(path, dir, "log.key");
    rc = ota_fs_read(&data, &len, path, OTA_NOTE_SKEY_MAX_LEN + 1);
    if (rc != 0)
        die("reading %s", path, rc);
    if (len > 0 && data[len - 1] == '\n')
        len--;
    rc = ota_note_signer_parse(&lg->signer, (const char *)data, len, &det);
    free(data);
    if (rc != 0)
        die("log key: %s", det.msg, rc);
    path_of(path, dir, "entries");
    rc = ota_fs_read(&data, &len, path, MAX_FILE);
    if (rc != 0)
        die("reading %s", path, rc);
    lg->entry = calloc(MAX_ENTRIES, sizeof(*lg->entry));
    lg->entry_len = calloc(MAX_ENTRIES, sizeof(*lg->entry_len));
    lg->leaf = calloc(MAX_ENTRIES, sizeof(*lg->leaf));
    if (lg->entry == NULL || lg->entry_len == NULL || lg->leaf == NULL)
        die("%s", "out of memory", OTA_ERR_NOMEM);
    while (pos < len) {
        size_t n;

        if (len - pos < 4 || lg->n == MAX_ENTRIES)
            die("%s: corrupt", path, OTA_ERR_FORMAT);
        n = (size_t)data[pos] << 24 | (size_t)data[pos + 1] << 16 | (size_t)data[pos + 2] << 8 |
            data[pos + 3];
        pos += 4;
        if (n > len - pos)
            die("%s: corrupt", path, OTA_ERR_FORMAT);
        lg->entry[lg->n] = malloc(n ? n : 1);
        if (lg->entry[lg->n] == NULL)
            die("%s", "out of memory", OTA_ERR_NOMEM);
        memcpy(lg->entry[lg->n], data + pos, n);
        lg->entry_len[lg->n] = n;
        if (ota_merkle_leaf_hash(lg->leaf[lg->n], data + pos, n) != 0)
            die("%s", "hashing", OTA_ERR_CRYPTO);
        lg->n++;
        pos += n;
    }
    free(data);
}

static void log_free(struct log *lg)
{
    for (size_t i = 0; i < lg->n; i++)
        free(lg->entry[i]);
    free(lg->entry);
    free(lg->entry_len);
    free(lg->leaf);
    ota_note_signer_free(lg->signer);
    memset(lg, 0, sizeof(*lg));
}

/* ---- the tree from leaves in memory ---- */

struct mem_tree {
    const uint8_t (*leaf)[OTA_MERKLE_HASH_LEN];
    uint64_t size;
};

static int mem_node(void *ctx, unsigned level, uint64_t index, uint8_t out[OTA_MERKLE_HASH_LEN])
{
    struct mem_tree *t = ctx;
    uint8_t l[OTA_MERKLE_HASH_LEN];
    uint8_t r[OTA_MERKLE_HASH_LEN];
    int rc;

    if (level == 0) {
        if (index >= t->size)
            return OTA_ERR_INVALID_ARG;
        memcpy(out, t->leaf[index], OTA_MERKLE_HASH_LEN);
        return 0;
    }
    rc = mem_node(ctx, level - 1, 2 * index, l);
    if (rc == 0)
        rc = mem_node(ctx, level - 1, 2 * index + 1, r);
    if (rc == 0)
        rc = ota_merkle_node_hash(out, l, r);
    return rc;
}

/* The signed checkpoint note of the tree of `size` leaves, into out. */
static void signed_checkpoint(struct ota_buf *out, const struct log *lg,
                              const uint8_t (*leaf)[OTA_MERKLE_HASH_LEN], uint64_t size)
{
    struct mem_tree t = {leaf, size};
    struct ota_merkle_source src = {mem_node, &t};
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    struct ota_note_verifier v;
    struct ota_detail det = {{0}};
    size_t body_start = out->len;
    int rc;

    if (cp == NULL)
        die("%s", "out of memory", OTA_ERR_NOMEM);
    ota_note_signer_verifier(&v, lg->signer);
    memcpy(cp->origin, v.name, v.name_len + 1);
    cp->origin_len = v.name_len;
    cp->size = size;
    rc = ota_merkle_root(cp->root, size, &src, &det);
    if (rc == 0)
        rc = ota_checkpoint_format(out, cp);
    free(cp);
    if (rc == 0) {
        size_t body_len = out->len - body_start;
        char *body = malloc(body_len);
        if (body == NULL)
            die("%s", "out of memory", OTA_ERR_NOMEM);
        memcpy(body, out->data + body_start, body_len);
        rc = ota_buf_append(out, "\n", 1);
        if (rc == 0)
            rc = ota_note_sign(out, body, body_len, lg->signer, &det);
        free(body);
    }
    if (rc != 0)
        die("signing the checkpoint: %s", det.msg, rc);
}

/* The add-checkpoint body from old to the tree of size leaves. */
static void add_body(struct ota_buf *out, const struct log *lg,
                     const uint8_t (*leaf)[OTA_MERKLE_HASH_LEN], uint64_t old, uint64_t size)
{
    struct mem_tree t = {leaf, size};
    struct ota_merkle_source src = {mem_node, &t};
    struct ota_merkle_proof proof;
    struct ota_buf note;
    struct ota_detail det = {{0}};
    int rc;

    if (old > size)
        die("%s", "--old is above the size", OTA_ERR_INVALID_ARG);
    rc = ota_merkle_prove_consistency(&proof, old, size, &src, &det);
    if (rc != 0)
        die("consistency proof: %s", det.msg, rc);
    ota_buf_init(&note, OTA_NOTE_MAX_LEN);
    signed_checkpoint(&note, lg, leaf, size);
    rc = ota_tlog_witness_body_format(out, old, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])proof.hash,
                                      proof.count, (const char *)note.data, note.len);
    ota_buf_free(&note);
    if (rc != 0)
        die("%s", "formatting the body", rc);
}

static void print_buf(const struct ota_buf *b)
{
    if (b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len)
        die("%s", "writing to stdout", OTA_ERR_IO);
}

/* ---- tiles ---- */

struct tile_io {
    const char *dir;
};

static int tile_read(void *ctx, unsigned level, uint64_t index, unsigned width,
                     uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct tile_io *io = ctx;
    struct ota_tiles_id id = {.entries = false, .level = level, .index = index, .width = width};
    char rel[OTA_TILES_PATH_MAX];
    char path[PATH_MAX_LEN];
    uint8_t *data = NULL;
    size_t n = 0;
    int rc = ota_tiles_path_format(rel, &id);

    if (rc != 0)
        return rc;
    path_of(path, io->dir, rel);
    rc = ota_fs_read(&data, &n, path, OTA_TILES_FULL_BYTES);
    if (rc != 0)
        return rc;
    memcpy(out, data, n);
    *len = n;
    free(data);
    return 0;
}

static int tile_write(void *ctx, unsigned level, uint64_t index, unsigned width,
                      const uint8_t *hashes)
{
    struct tile_io *io = ctx;
    struct ota_tiles_id id = {.entries = false, .level = level, .index = index, .width = width};
    char rel[OTA_TILES_PATH_MAX];
    int rc = ota_tiles_path_format(rel, &id);

    if (rc != 0)
        return rc;
    write_file(io->dir, rel, hashes, (size_t)width * OTA_MERKLE_HASH_LEN, 0644);
    return 0;
}

static void write_tiles(const struct log *lg, uint64_t old)
{
    struct tile_io io = {lg->dir};
    struct ota_tiles_reader reader = {tile_read, &io};
    struct ota_tiles_sink sink = {tile_write, &io};
    struct ota_detail det = {{0}};
    int rc;

    if (lg->n == old)
        return;
    rc = ota_tiles_append(old, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])lg->leaf + old, lg->n - old,
                          old ? &reader : NULL, &sink, &det);
    if (rc != 0)
        die("hash tiles: %s", det.msg, rc);
    for (uint64_t k = old / OTA_TILES_WIDTH; k * OTA_TILES_WIDTH < lg->n; k++) {
        unsigned w = ota_tiles_width(0, k, lg->n);
        struct ota_tiles_id id = {.entries = true, .level = 0, .index = k, .width = w};
        char rel[OTA_TILES_PATH_MAX];
        struct ota_buf b;

        ota_buf_init(&b, OTA_TILES_BUNDLE_MAX);
        for (unsigned j = 0; j < w; j++) {
            uint64_t i = k * OTA_TILES_WIDTH + j;
            if (ota_tiles_bundle_append(&b, lg->entry[i], lg->entry_len[i]) != 0)
                die("%s", "entry bundle", OTA_ERR_TOO_LARGE);
        }
        if (ota_tiles_path_format(rel, &id) != 0)
            die("%s", "tile path", OTA_ERR_INVALID_ARG);
        write_file(lg->dir, rel, b.data, b.len, 0644);
        ota_buf_free(&b);
    }
}

/* ---- commands ---- */

static int cmd_init(int argc, char **argv)
{
    const char *dir;
    const char *origin = NULL;
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    char vkey[OTA_NOTE_VKEY_SIZE];
    struct ota_buf text;
    int rc;

    if (argc != 3 || strcmp(argv[1], "--origin") != 0)
        die("%s", "usage: init DIR --origin O", OTA_ERR_INVALID_ARG);
    dir = argv[0];
    origin = argv[2];
    rc = ota_fs_mkdirs(dir, 0755);
    if (rc != 0)
        die("creating %s", dir, rc);
    rc = ota_note_signer_generate(&s, origin, strlen(origin), OTA_NOTE_TYPE_ED25519);
    if (rc != 0)
        die("origin %s is not a valid key name", origin, rc);
    ota_buf_init(&text, 1024);
    if (ota_note_signer_format(&text, s) != 0 || ota_buf_append(&text, "\n", 1) != 0)
        die("%s", "formatting the key", OTA_ERR_NOMEM);
    write_file(dir, "log.key", text.data, text.len, 0600);
    ota_buf_free(&text);
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(vkey, &v);
    rc = (int)strlen(vkey);
    vkey[rc] = '\n';
    write_file(dir, "log.vkey", vkey, (size_t)rc + 1, 0644);
    write_file(dir, "entries", "", 0, 0644);
    fwrite(vkey, 1, (size_t)rc + 1, stdout);
    ota_note_signer_free(s);
    return 0;
}

/* The ledger record of metadata file path for role (version from the
 * file). */
static void meta_record(struct ota_buf *out, const char *spec)
{
    static const char *const roles[3] = {"root", "targets", "snapshot"};
    const char *colon = strchr(spec, ':');
    struct ota_tuf_meta *md = NULL;
    struct ota_ledger_entry e;
    struct ota_detail det = {{0}};
    uint8_t rec[OTA_LEDGER_ENTRY_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    size_t rlen;
    int role = -1;
    int rc;

    for (int i = 0; colon != NULL && i < 3; i++) {
        if ((size_t)(colon - spec) == strlen(roles[i]) &&
            memcmp(spec, roles[i], (size_t)(colon - spec)) == 0)
            role = i;
    }
    if (role < 0)
        die("--meta %s: expected ROLE:FILE with ROLE root, targets or snapshot", spec,
            OTA_ERR_INVALID_ARG);
    rc = ota_fs_read(&data, &len, colon + 1, OTA_TUF_TARGETS_MAX_LEN);
    if (rc != 0)
        die("reading %s", colon + 1, rc);
    rc = ota_tuf_parse(&md, data, len, (enum ota_tuf_role)role, &det);
    if (rc != 0)
        die("parsing: %s", det.msg, rc);
    rc = ota_ledger_entry_of_file(&e, (enum ota_tuf_role)role, md->version, data, len);
    if (rc == 0)
        rc = ota_ledger_entry_format(rec, &rlen, &e);
    if (rc == 0)
        rc = ota_buf_append(out, rec, rlen);
    if (rc != 0)
        die("record of %s", colon + 1, rc);
    ota_tuf_meta_free(md);
    free(data);
}

static int cmd_append(int argc, char **argv)
{
    struct log lg;
    struct ota_buf db;
    char path[PATH_MAX_LEN];
    uint8_t *old_db = NULL;
    size_t old_len = 0;
    uint64_t old;
    struct ota_buf cp;
    int rc;

    if (argc < 1)
        die("%s", "usage: append DIR (--entry FILE | --meta ROLE:FILE)...", OTA_ERR_INVALID_ARG);
    load(&lg, argv[0]);
    old = lg.n;
    path_of(path, lg.dir, "entries");
    rc = ota_fs_read(&old_db, &old_len, path, MAX_FILE);
    if (rc != 0)
        die("reading %s", path, rc);
    ota_buf_init(&db, MAX_FILE);
    if (old_len > 0 && ota_buf_append(&db, old_db, old_len) != 0)
        die("%s", "out of memory", OTA_ERR_NOMEM);
    free(old_db);
    for (int i = 1; i < argc; i++) {
        struct ota_buf e;
        uint8_t hdr[4];

        if (i + 1 >= argc)
            die("missing value after %s", argv[i], OTA_ERR_INVALID_ARG);
        ota_buf_init(&e, ENTRY_MAX);
        if (strcmp(argv[i], "--entry") == 0) {
            uint8_t *data = NULL;
            size_t len = 0;
            rc = ota_fs_read(&data, &len, argv[i + 1], ENTRY_MAX);
            if (rc != 0)
                die("reading %s", argv[i + 1], rc);
            if (len > 0 && ota_buf_append(&e, data, len) != 0)
                die("%s", "out of memory", OTA_ERR_NOMEM);
            free(data);
        } else if (strcmp(argv[i], "--meta") == 0) {
            meta_record(&e, argv[i + 1]);
        } else {
            die("unknown option %s", argv[i], OTA_ERR_INVALID_ARG);
        }
        i++;
        if (lg.n == MAX_ENTRIES)
            die("%s", "too many entries", OTA_ERR_TOO_LARGE);
        hdr[0] = (uint8_t)(e.len >> 24);
        hdr[1] = (uint8_t)(e.len >> 16);
        hdr[2] = (uint8_t)(e.len >> 8);
        hdr[3] = (uint8_t)e.len;
        if (ota_buf_append(&db, hdr, 4) != 0 || (e.len && ota_buf_append(&db, e.data, e.len) != 0))
            die("%s", "out of memory", OTA_ERR_NOMEM);
        lg.entry[lg.n] = malloc(e.len ? e.len : 1);
        if (lg.entry[lg.n] == NULL)
            die("%s", "out of memory", OTA_ERR_NOMEM);
        if (e.len)
            memcpy(lg.entry[lg.n], e.data, e.len);
        lg.entry_len[lg.n] = e.len;
        if (ota_merkle_leaf_hash(lg.leaf[lg.n], e.data ? (const void *)e.data : "", e.len) != 0)
            die("%s", "hashing", OTA_ERR_CRYPTO);
        lg.n++;
        ota_buf_free(&e);
    }
    write_tiles(&lg, old);
    write_file(lg.dir, "entries", db.data ? (const void *)db.data : "", db.len, 0644);
    ota_buf_free(&db);
    ota_buf_init(&cp, OTA_NOTE_MAX_LEN);
    signed_checkpoint(&cp, &lg, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])lg.leaf, lg.n);
    write_file(lg.dir, "checkpoint", cp.data, cp.len, 0644);
    ota_buf_free(&cp);
    printf("%zu\n", lg.n);
    log_free(&lg);
    return 0;
}

/* Options --size, --old, --at, parsed generically. */
struct opts {
    bool has_size, has_old, has_at;
    uint64_t size, old, at;
};

static void parse_opts(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("missing value after %s", argv[i], OTA_ERR_INVALID_ARG);
        if (strcmp(argv[i], "--size") == 0) {
            o->has_size = true;
            o->size = parse_u64(argv[i + 1]);
        } else if (strcmp(argv[i], "--old") == 0) {
            o->has_old = true;
            o->old = parse_u64(argv[i + 1]);
        } else if (strcmp(argv[i], "--at") == 0) {
            o->has_at = true;
            o->at = parse_u64(argv[i + 1]);
        } else {
            die("unknown option %s", argv[i], OTA_ERR_INVALID_ARG);
        }
    }
}

static int cmd_tree(int argc, char **argv, const char *what)
{
    struct log lg;
    struct opts o;
    struct ota_buf out;
    uint8_t(*leaf)[OTA_MERKLE_HASH_LEN];

    if (argc < 1)
        die("usage: %s DIR [options]", what, OTA_ERR_INVALID_ARG);
    load(&lg, argv[0]);
    parse_opts(&o, argc, argv);
    if (!o.has_size)
        o.size = lg.n;
    if (o.size > lg.n)
        die("%s: --size is above the log's size", what, OTA_ERR_INVALID_ARG);
    leaf = lg.leaf;
    if (strcmp(what, "fork") == 0) {
        char text[64];
        if (o.size == 0)
            die("%s", "fork: the empty tree has no entry to replace", OTA_ERR_INVALID_ARG);
        if (!o.has_at)
            o.at = o.size - 1;
        if (o.at >= o.size)
            die("%s", "fork: --at is not below the size", OTA_ERR_INVALID_ARG);
        snprintf(text, sizeof(text), "otachain-testlog fork %llu\n", (unsigned long long)o.at);
        leaf = malloc((size_t)o.size * OTA_MERKLE_HASH_LEN);
        if (leaf == NULL)
            die("%s", "out of memory", OTA_ERR_NOMEM);
        memcpy(leaf, lg.leaf, (size_t)o.size * OTA_MERKLE_HASH_LEN);
        if (ota_merkle_leaf_hash(leaf[o.at], text, strlen(text)) != 0)
            die("%s", "hashing", OTA_ERR_CRYPTO);
    }
    ota_buf_init(&out, OTA_TLOG_WITNESS_MAX_BODY);
    if (strcmp(what, "checkpoint") == 0 || (strcmp(what, "fork") == 0 && !o.has_old))
        signed_checkpoint(&out, &lg, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaf, o.size);
    else if (o.has_old)
        add_body(&out, &lg, (const uint8_t(*)[OTA_MERKLE_HASH_LEN])leaf, o.old, o.size);
    else
        die("%s: --old N is required", what, OTA_ERR_INVALID_ARG);
    print_buf(&out);
    ota_buf_free(&out);
    if (leaf != lg.leaf)
        free(leaf);
    log_free(&lg);
    return 0;
}

static int cmd_vkey(int argc, char **argv)
{
    struct log lg;
    struct ota_note_verifier v;
    char vkey[OTA_NOTE_VKEY_SIZE];

    if (argc != 1)
        die("%s", "usage: vkey DIR", OTA_ERR_INVALID_ARG);
    load(&lg, argv[0]);
    ota_note_signer_verifier(&v, lg.signer);
    ota_note_verifier_format(vkey, &v);
    printf("%s\n", vkey);
    log_free(&lg);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 3)
        die("%s", "usage: ota-testlog init|vkey|append|checkpoint|add-body|fork DIR ...",
            OTA_ERR_INVALID_ARG);
    if (strcmp(argv[1], "init") == 0)
        rc = cmd_init(argc - 2, argv + 2);
    else if (strcmp(argv[1], "vkey") == 0)
        rc = cmd_vkey(argc - 2, argv + 2);
    else if (strcmp(argv[1], "append") == 0)
        rc = cmd_append(argc - 2, argv + 2);
    else if (strcmp(argv[1], "checkpoint") == 0 || strcmp(argv[1], "add-body") == 0 ||
             strcmp(argv[1], "fork") == 0)
        rc = cmd_tree(argc - 2, argv + 2, argv[1]);
    else
        die("unknown command %s", argv[1], OTA_ERR_INVALID_ARG);
    if (fflush(stdout) != 0)
        die("%s", "writing to stdout", OTA_ERR_IO);
    return rc;
}
