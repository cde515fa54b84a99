/* ota-testlog: a minimal log producer for the witness tests: entries of
 * any content (not only TUF records), checkpoints of any past size, and
 * forks, none of which `otachain repo publish` makes. Appends go through
 * the library's sequencer into a SQLite log store (DIR/ledger.db), like
 * publish's; the other commands recompute trees from all leaves in memory
 * (fine for thousands of entries, never for production).
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
 * DIR holds log.key (0600), log.vkey, ledger.db (the log store),
 * checkpoint and the C2SP tlog-tiles static files tile/<L>/<N>[.p/<W>]
 * and tile/entries/<N>[.p/<W>].
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
#include "otachain/log_store.h"
#include "otachain/note_sign.h"
#include "otachain/sequencer.h"
#include "otachain/tiles.h"
#include "otachain/tlog_witness.h"
#include "otachain/tuf.h"

#define MAX_ENTRIES  (1u << 20)
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
    rc = ota_fs_mkdirs(path, 0755, NULL);
    *slash = '/';
    if (rc == 0)
        rc = ota_fs_replace(path, data, len, mode, NULL);
    if (rc != 0)
        die("writing %s", path, rc);
}

static struct ota_log_store *open_store(const char *dir)
{
    char path[PATH_MAX_LEN];
    struct ota_log_store *st = NULL;
    struct ota_detail det = {{0}};
    int rc;

    path_of(path, dir, "ledger.db");
    rc = ota_log_store_sqlite_open(&st, path, NULL, &det);
    if (rc != 0)
        die("log store: %s", det.msg, rc);
    return st;
}

static void load(struct log *lg, const char *dir)
{
    char path[PATH_MAX_LEN];
    uint8_t *data = NULL;
    size_t len = 0;
    struct ota_detail det = {{0}};
    struct ota_log_store *st;
    uint64_t count = 0;
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
    st = open_store(dir);
    if (st->ops->count(st, &count, &det) != 0 || count > MAX_ENTRIES)
        die("%s", "log store: cannot count the entries", OTA_ERR_FORMAT);
    lg->entry = calloc(MAX_ENTRIES, sizeof(*lg->entry));
    lg->entry_len = calloc(MAX_ENTRIES, sizeof(*lg->entry_len));
    lg->leaf = calloc(MAX_ENTRIES, sizeof(*lg->leaf));
    if (lg->entry == NULL || lg->entry_len == NULL || lg->leaf == NULL)
        die("%s", "out of memory", OTA_ERR_NOMEM);
    for (uint64_t i = 0; i < count; i++) {
        uint8_t e[ENTRY_MAX];
        size_t n = 0;

        rc = st->ops->entry(st, i, e, sizeof(e), &n, lg->leaf[i], &det);
        if (rc != 0)
            die("log store: %s", det.msg, rc);
        lg->entry[i] = malloc(n ? n : 1);
        if (lg->entry[i] == NULL)
            die("%s", "out of memory", OTA_ERR_NOMEM);
        memcpy(lg->entry[i], e, n);
        lg->entry_len[i] = n;
        lg->n++;
    }
    ota_log_store_close(st);
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

/* The signed checkpoint note of the tree of the first `size` leaves, into
 * out (the sequencer's checkpoint of that tree's edge). */
static void signed_checkpoint(struct ota_buf *out, const struct log *lg,
                              const uint8_t (*leaf)[OTA_MERKLE_HASH_LEN], uint64_t size)
{
    struct ota_merkle_edge edge;
    struct ota_note_verifier v;
    struct ota_detail det = {{0}};
    int rc = 0;

    ota_merkle_edge_init(&edge);
    for (uint64_t i = 0; rc == 0 && i < size; i++)
        rc = ota_merkle_edge_append(&edge, leaf[i], NULL);
    ota_note_signer_verifier(&v, lg->signer);
    if (rc == 0)
        rc = ota_seq_checkpoint(out, NULL, &edge, v.name, v.name_len, ota_seq_sign_with, lg->signer,
                                &det);
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

/* The sequencer's export sink: DIR/<tlog-tiles path>. */
static int tile_put(void *ctx, const char *path, const void *data, size_t len,
                    struct ota_detail *det)
{
    (void)det;
    write_file(ctx, path, data, len, 0644);
    return 0;
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
    rc = ota_fs_mkdirs(dir, 0755, NULL);
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
    ota_log_store_close(open_store(dir));
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
    struct ota_log_store *st;
    struct ota_seq_entry *ents;
    struct ota_buf *bufs;
    struct ota_merkle_edge edge;
    struct ota_seq_sink sink;
    struct ota_note_verifier v;
    struct ota_detail det = {{0}};
    struct ota_buf cp;
    size_t n = 0;
    uint64_t old;
    int rc;

    if (argc < 1)
        die("%s", "usage: append DIR (--entry FILE | --meta ROLE:FILE)...", OTA_ERR_INVALID_ARG);
    load(&lg, argv[0]);
    old = lg.n;
    ents = calloc((size_t)argc, sizeof(*ents));
    bufs = calloc((size_t)argc, sizeof(*bufs));
    if (ents == NULL || bufs == NULL)
        die("%s", "out of memory", OTA_ERR_NOMEM);
    for (int i = 1; i < argc; i++) {
        struct ota_buf *e = &bufs[n];

        if (i + 1 >= argc)
            die("missing value after %s", argv[i], OTA_ERR_INVALID_ARG);
        ota_buf_init(e, ENTRY_MAX);
        if (strcmp(argv[i], "--entry") == 0) {
            uint8_t *data = NULL;
            size_t len = 0;

            rc = ota_fs_read(&data, &len, argv[i + 1], ENTRY_MAX);
            if (rc != 0)
                die("reading %s", argv[i + 1], rc);
            if (len > 0 && ota_buf_append(e, data, len) != 0)
                die("%s", "out of memory", OTA_ERR_NOMEM);
            free(data);
        } else if (strcmp(argv[i], "--meta") == 0) {
            meta_record(e, argv[i + 1]);
        } else {
            die("unknown option %s", argv[i], OTA_ERR_INVALID_ARG);
        }
        i++;
        if (lg.n + n >= MAX_ENTRIES)
            die("%s", "too many entries", OTA_ERR_TOO_LARGE);
        ents[n] =
            (struct ota_seq_entry){e->data != NULL ? e->data : (const uint8_t *)"", e->len, NULL};
        n++;
    }
    /* One transaction: the entries, the tiles, the edge (sequencer.h). */
    st = open_store(lg.dir);
    rc = st->ops->begin(st, &det);
    if (rc == 0)
        rc = ota_seq_append(&edge, NULL, st, ents, n, &det);
    if (rc == 0)
        rc = st->ops->commit(st, &det);
    if (rc != 0)
        die("appending: %s", det.msg, rc);
    sink = (struct ota_seq_sink){tile_put, (void *)lg.dir};
    rc = ota_seq_export(&sink, st, old, edge.size, &det);
    if (rc != 0)
        die("tiles: %s", det.msg, rc);
    ota_buf_init(&cp, OTA_NOTE_MAX_LEN);
    ota_note_signer_verifier(&v, lg.signer);
    rc = ota_seq_checkpoint(&cp, NULL, &edge, v.name, v.name_len, ota_seq_sign_with, lg.signer,
                            &det);
    if (rc != 0)
        die("signing the checkpoint: %s", det.msg, rc);
    write_file(lg.dir, "checkpoint", cp.data, cp.len, 0644);
    ota_buf_free(&cp);
    ota_log_store_close(st);
    printf("%llu\n", (unsigned long long)edge.size);
    for (size_t k = 0; k < n; k++)
        ota_buf_free(&bufs[k]);
    free(bufs);
    free(ents);
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
