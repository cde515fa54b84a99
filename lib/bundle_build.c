/* The proof bundle builder (otachain/bundle_build.h,
 * docs/formats/bundle.md "Building one").
 *
 * Order: timestamp, checkpoint, roots (the device's own first, to know
 * whether its root names a ledger), per-root checkpoints, snapshot and
 * targets, then the proofs, each built from the tiles of the checkpoint's
 * tree and verified against the signed root it must lead to before it is
 * kept. Everything read is held in buffers owned by the build until the
 * bundle is encoded.
 */
#include "otachain/bundle_build.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/crypto.h"
#include "otachain/ledger_entry.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tiles.h"
#include "otachain/tuf.h"

#define NAME_SIZE  64
#define TILE_SLOTS 16

/* A root of the chain R .. newest: its bytes, whether it names a ledger,
 * and (for those after R) its per-root checkpoint if the log keeps one. */
struct broot {
    struct ota_buf bytes;
    bool ledger;
    struct ota_buf rcp; /* empty: none */
    uint64_t rcp_size;
    uint8_t rcp_root[OTA_CHECKPOINT_HASH_LEN];
};

struct build {
    const struct ota_fetcher *repo;
    const struct ota_bundle_request *req;
    struct ota_detail *det;
    struct ota_buf ts, snap, targets, cp;
    uint64_t snap_v, targets_v;
    bool have_cp;
    struct ota_checkpoint cpb; /* the checkpoint's body */
    size_t nroots;             /* roots[0] is the device's root R */
    struct broot roots[OTA_BUNDLE_MAX_ROOTS + 1];
    struct ota_tiles_fetch tf;
    struct ota_tiles_source ts_src;
    struct ota_tiles_slot *slots;
    /* Proofs, hashes owned here. */
    size_t ncons, nincl;
    struct ota_merkle_proof cons_proof[OTA_BUNDLE_MAX_CONSISTENCY];
    struct ota_merkle_proof incl_proof[OTA_BUNDLE_MAX_ROOTS + 1];
    struct ota_bundle b;
};

/* Reads `name` of `kind` through the repository, capped at max. NOT_FOUND
 * is returned as is (callers decide whether absence is fine). */
static int rd(struct build *B, struct ota_buf *out, enum ota_fetch_kind kind, const char *name,
              uint64_t max)
{
    ota_buf_init(out, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
    if (B->det)
        B->det->msg[0] = '\0';
    int rc = B->repo->fetch(B->repo->ctx, kind, name, max, ota_sink_buf, out, B->det);
    if (rc != 0) {
        ota_buf_free(out);
        if (B->det && B->det->msg[0] == '\0')
            ota_detail_set(B->det, "%s%s: %s", kind == OTA_FETCH_LEDGER ? "ledger/" : "", name,
                           ota_strerror(rc));
    }
    return rc;
}

static int parse_meta(struct ota_tuf_meta **md, const struct ota_buf *b, enum ota_tuf_role role,
                      const char *name, struct ota_detail *det)
{
    int rc = ota_tuf_parse(md, b->data ? (const void *)b->data : "", b->len, role, det);
    if (rc != 0)
        ota_detail_prefix(det, name);
    return rc;
}

/* Parses a checkpoint note's body (signatures are the device's to check). */
static int parse_note(struct ota_checkpoint *cp, const struct ota_buf *b, const char *name,
                      struct ota_detail *det)
{
    struct ota_note *note = NULL;
    int rc = ota_note_parse(&note, b->data ? (const void *)b->data : "", b->len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(cp, note->text, note->text_len, det);
    ota_note_free(note);
    if (rc != 0)
        ota_detail_prefix(det, name);
    return rc;
}

static int read_root(struct build *B, struct broot *r, uint64_t version)
{
    char name[NAME_SIZE];
    snprintf(name, sizeof(name), "%llu.root.json", (unsigned long long)version);
    int rc = rd(B, &r->bytes, OTA_FETCH_METADATA, name, OTA_TUF_ROOT_MAX_LEN);
    if (rc != 0)
        return rc;
    struct ota_tuf_meta *md = NULL;
    rc = parse_meta(&md, &r->bytes, OTA_TUF_ROOT, name, B->det);
    if (rc == 0 && md->version != version) {
        ota_detail_set(B->det, "%s: holds root version %llu", name,
                       (unsigned long long)md->version);
        rc = OTA_ERR_VERSION_MISMATCH;
    }
    if (rc == 0)
        r->ledger =
            json_object_get(json_object_get(md->doc, "signed"), "x-otachain-ledger") != NULL;
    ota_tuf_meta_free(md);
    return rc;
}

/* The pinned version of `file` in the meta of md. */
static int pinned_version(uint64_t *v, const struct ota_tuf_meta *md, const char *file,
                          const char *name, struct ota_detail *det)
{
    const struct ota_tuf_metafile *mf = ota_tuf_find_meta(md, file);
    if (mf == NULL) {
        ota_detail_set(det, "%s: does not list %s", name, file);
        return OTA_ERR_FORMAT;
    }
    *v = mf->version;
    return 0;
}

/* Timestamp, snapshot and targets: the files the timestamp and snapshot
 * pin (the snapshot is always read: its bytes give its ledger entry). */
static int read_tuf(struct build *B)
{
    struct ota_tuf_meta *md = NULL;
    int rc = rd(B, &B->ts, OTA_FETCH_METADATA, "timestamp.json", OTA_TUF_TIMESTAMP_MAX_LEN);
    if (rc == 0)
        rc = parse_meta(&md, &B->ts, OTA_TUF_TIMESTAMP, "timestamp.json", B->det);
    if (rc == 0)
        rc = pinned_version(&B->snap_v, md, "snapshot.json", "timestamp.json", B->det);
    ota_tuf_meta_free(md);
    md = NULL;
    if (rc != 0)
        return rc;
    char name[NAME_SIZE];
    snprintf(name, sizeof(name), "%llu.snapshot.json", (unsigned long long)B->snap_v);
    rc = rd(B, &B->snap, OTA_FETCH_METADATA, name, OTA_TUF_SNAPSHOT_MAX_LEN);
    if (rc == 0)
        rc = parse_meta(&md, &B->snap, OTA_TUF_SNAPSHOT, name, B->det);
    if (rc == 0)
        rc = pinned_version(&B->targets_v, md, "targets.json", name, B->det);
    ota_tuf_meta_free(md);
    if (rc != 0 || B->req->targets_version == B->targets_v)
        return rc;
    snprintf(name, sizeof(name), "%llu.targets.json", (unsigned long long)B->targets_v);
    return rd(B, &B->targets, OTA_FETCH_METADATA, name, OTA_TUF_TARGETS_MAX_LEN);
}

/* The checkpoint, if the repository has a ledger. */
static int read_checkpoint(struct build *B)
{
    int rc = rd(B, &B->cp, OTA_FETCH_LEDGER, "checkpoint", OTA_NOTE_MAX_LEN);
    if (rc == OTA_ERR_NOT_FOUND) {
        if (B->det)
            B->det->msg[0] = '\0';
        return 0;
    }
    if (rc == 0)
        rc = parse_note(&B->cpb, &B->cp, "ledger/checkpoint", B->det);
    if (rc == 0)
        B->have_cp = true;
    return rc;
}

/* The device's root R, then R+1 .. until one is absent; with the per-root
 * checkpoint of each root whose predecessor names a ledger, when kept. */
static int read_roots(struct build *B)
{
    uint64_t R = B->req->root_version;
    int rc = read_root(B, &B->roots[0], R);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_detail_set(B->det, "root version %llu (the device's) is not in the repository",
                       (unsigned long long)R);
        return OTA_ERR_BUNDLE_BASE;
    }
    if (rc != 0)
        return rc;
    B->nroots = 1;
    for (;;) {
        uint64_t v = R + B->nroots;
        struct broot tmp = {0};
        rc = read_root(B, &tmp, v);
        if (rc == OTA_ERR_NOT_FOUND) {
            if (B->det)
                B->det->msg[0] = '\0';
            break;
        }
        if (rc == 0 && B->nroots > OTA_BUNDLE_MAX_ROOTS) {
            ota_detail_set(B->det,
                           "more than %d root versions after the device's v%llu: a bundle "
                           "holds at most %d",
                           OTA_BUNDLE_MAX_ROOTS, (unsigned long long)R, OTA_BUNDLE_MAX_ROOTS);
            rc = OTA_ERR_TOO_LARGE;
        }
        if (rc != 0) {
            ota_buf_free(&tmp.bytes);
            return rc;
        }
        struct broot *r = &B->roots[B->nroots++];
        *r = tmp;
        if (!B->roots[B->nroots - 2].ledger)
            continue;
        char name[NAME_SIZE];
        snprintf(name, sizeof(name), "root-checkpoint/%llu", (unsigned long long)v);
        rc = rd(B, &r->rcp, OTA_FETCH_LEDGER, name, OTA_NOTE_MAX_LEN);
        if (rc == OTA_ERR_NOT_FOUND) {
            /* A log from before per-root checkpoints: the device applies
             * the earlier rule. */
            if (B->det)
                B->det->msg[0] = '\0';
            continue;
        }
        struct ota_checkpoint cp;
        if (rc == 0)
            rc = parse_note(&cp, &r->rcp, name, B->det);
        if (rc != 0)
            return rc;
        r->rcp_size = cp.size;
        memcpy(r->rcp_root, cp.root, sizeof(r->rcp_root));
    }
    return 0;
}

/* ---- proofs ------------------------------------------------------------------ */

static int tiles_ready(struct build *B)
{
    B->slots = calloc(TILE_SLOTS, sizeof(*B->slots));
    if (B->slots == NULL)
        return OTA_ERR_NOMEM;
    B->tf.f = B->repo;
    struct ota_tiles_reader reader;
    ota_tiles_fetch_reader(&reader, &B->tf);
    int rc = ota_tiles_source_init(&B->ts_src, B->cpb.size, &reader, B->slots, TILE_SLOTS);
    if (rc != 0)
        return rc;
    uint8_t root[OTA_MERKLE_HASH_LEN];
    struct ota_detail inner = {{0}};
    rc = ota_merkle_root(root, B->cpb.size, &B->ts_src.src, &inner);
    if (rc != 0) {
        ota_detail_set(B->det, "ledger: the tree of size %llu from the tiles: %s",
                       (unsigned long long)B->cpb.size,
                       B->tf.det.msg[0] ? B->tf.det.msg : inner.msg);
        return rc;
    }
    if (!ota_ct_equal(root, B->cpb.root, OTA_MERKLE_HASH_LEN)) {
        ota_detail_set(B->det, "ledger: the tiles do not hash to the checkpoint's root (size %llu)",
                       (unsigned long long)B->cpb.size);
        return OTA_ERR_PROOF;
    }
    return 0;
}

/* A consistency proof from size1 to the checkpoint's size, checked
 * against root1 when given. */
static int add_consistency(struct build *B, uint64_t size1, const uint8_t *root1)
{
    uint64_t size2 = B->cpb.size;
    for (size_t i = 0; i < B->ncons; i++)
        if (B->b.consistency[i].size1 == size1)
            return 0; /* the same proof serves twice */
    if (B->ncons == OTA_BUNDLE_MAX_CONSISTENCY)
        return OTA_ERR_TOO_LARGE;
    struct ota_merkle_proof *p = &B->cons_proof[B->ncons];
    struct ota_detail inner = {{0}};
    B->tf.det.msg[0] = '\0';
    int rc = ota_merkle_prove_consistency(p, size1, size2, &B->ts_src.src, &inner);
    if (rc == 0 && root1 != NULL)
        rc = ota_merkle_verify_consistency(size1, size2, root1, B->cpb.root,
                                           (const uint8_t(*)[OTA_MERKLE_HASH_LEN])p->hash, p->count,
                                           &inner);
    if (rc != 0) {
        ota_detail_set(B->det, "ledger: consistency from size %llu to %llu: %s",
                       (unsigned long long)size1, (unsigned long long)size2,
                       B->tf.det.msg[0] ? B->tf.det.msg : inner.msg);
        return rc == OTA_ERR_PROOF ? OTA_ERR_SPLIT_VIEW : rc;
    }
    B->b.consistency[B->ncons++] = (struct ota_bundle_consistency){
        .size1 = size1, .size2 = size2, .count = p->count, .hashes = &p->hash[0][0]};
    return 0;
}

/* The inclusion proof of a file's entry in the tree (size, root), at the
 * index the log names; checked against that root. */
static int add_inclusion(struct build *B, enum ota_tuf_role role, uint64_t version,
                         const struct ota_buf *bytes, uint64_t size, const uint8_t *root)
{
    char name[NAME_SIZE];
    snprintf(name, sizeof(name), "index/%s/%llu", ota_tuf_role_name(role),
             (unsigned long long)version);
    struct ota_buf ib;
    int rc = rd(B, &ib, OTA_FETCH_LEDGER, name, 32);
    if (rc != 0)
        return rc;
    uint64_t index = 0;
    rc = ota_checkpoint_parse_u64(&index, ib.data ? (const char *)ib.data : "", ib.len,
                                  OTA_CHECKPOINT_MAX_SIZE);
    ota_buf_free(&ib);
    if (rc != 0) {
        ota_detail_set(B->det, "ledger/%s: not a decimal leaf index", name);
        return rc;
    }
    if (index >= size) {
        ota_detail_set(B->det, "ledger/%s: leaf %llu is beyond the tree of size %llu", name,
                       (unsigned long long)index, (unsigned long long)size);
        return OTA_ERR_NOT_IN_LOG;
    }
    if (B->nincl == OTA_BUNDLE_MAX_ROOTS + 1)
        return OTA_ERR_TOO_LARGE;
    struct ota_merkle_proof *p = &B->incl_proof[B->nincl];
    struct ota_ledger_entry e;
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    struct ota_detail inner = {{0}};
    rc = ota_ledger_entry_of_file(&e, role, version, bytes->data ? (const void *)bytes->data : "",
                                  bytes->len);
    if (rc == 0)
        rc = ota_ledger_entry_leaf(leaf, &e);
    B->tf.det.msg[0] = '\0';
    if (rc == 0)
        rc = ota_merkle_prove_inclusion(p, index, size, &B->ts_src.src, &inner);
    if (rc == 0)
        rc = ota_merkle_verify_inclusion(leaf, index, size,
                                         (const uint8_t(*)[OTA_MERKLE_HASH_LEN])p->hash, p->count,
                                         root, &inner);
    if (rc != 0) {
        ota_detail_set(B->det, "%s v%llu: leaf %llu of the tree of size %llu: %s",
                       ota_tuf_role_name(role), (unsigned long long)version,
                       (unsigned long long)index, (unsigned long long)size,
                       B->tf.det.msg[0] ? B->tf.det.msg : inner.msg);
        return rc == OTA_ERR_PROOF ? OTA_ERR_NOT_IN_LOG : rc;
    }
    B->b.inclusion[B->nincl++] = (struct ota_bundle_inclusion){.role = role,
                                                               .version = version,
                                                               .index = index,
                                                               .size = size,
                                                               .count = p->count,
                                                               .hashes = &p->hash[0][0]};
    return 0;
}

static int cmp_consistency(const void *a, const void *b)
{
    const struct ota_bundle_consistency *x = a, *y = b;
    return x->size1 < y->size1 ? -1 : x->size1 > y->size1;
}

/* The proofs of the ledger rule, in the bundle's order: roots by version,
 * then the snapshot; consistency by size. */
static int build_proofs(struct build *B)
{
    uint64_t R = B->req->root_version, S = B->cpb.size;
    if (B->req->checkpoint_size > S) {
        ota_detail_set(B->det,
                       "the device's checkpoint size %llu is beyond the log's checkpoint (size "
                       "%llu)",
                       (unsigned long long)B->req->checkpoint_size, (unsigned long long)S);
        return OTA_ERR_BUNDLE_BASE;
    }
    int rc = tiles_ready(B);
    if (rc != 0)
        return rc;
    if (B->req->checkpoint_size > 0 && B->req->checkpoint_size < S)
        rc = add_consistency(B, B->req->checkpoint_size, NULL);
    for (size_t i = 1; rc == 0 && i < B->nroots; i++) {
        struct broot *r = &B->roots[i];
        uint64_t v = R + i;
        if (!B->roots[i - 1].ledger)
            continue;
        if (r->rcp.len == 0) {
            rc = add_inclusion(B, OTA_TUF_ROOT, v, &r->bytes, S, B->cpb.root);
            continue;
        }
        if (r->rcp_size > S) {
            ota_detail_set(B->det,
                           "ledger/root-checkpoint/%llu (size %llu) is newer than "
                           "ledger/checkpoint (size %llu): a publish between the reads, retry",
                           (unsigned long long)v, (unsigned long long)r->rcp_size,
                           (unsigned long long)S);
            return OTA_ERR_SPLIT_VIEW;
        }
        rc = add_inclusion(B, OTA_TUF_ROOT, v, &r->bytes, r->rcp_size, r->rcp_root);
        if (rc == 0 && r->rcp_size < S)
            rc = add_consistency(B, r->rcp_size, r->rcp_root);
    }
    if (rc == 0 && B->roots[B->nroots - 1].ledger)
        rc = add_inclusion(B, OTA_TUF_SNAPSHOT, B->snap_v, &B->snap, S, B->cpb.root);
    if (rc == 0)
        qsort(B->b.consistency, B->ncons, sizeof(B->b.consistency[0]), cmp_consistency);
    return rc;
}

static void file_of(struct ota_bundle_file *f, uint64_t version, const struct ota_buf *b)
{
    f->version = version;
    f->data = b->data;
    f->len = b->len;
}

static int build(struct build *B, struct ota_buf *out)
{
    /* The timestamp before the checkpoint: the checkpoint read after it
     * is at least as new (publish writes the checkpoint first). */
    int rc = read_tuf(B);
    if (rc == 0)
        rc = read_checkpoint(B);
    if (rc == 0)
        rc = read_roots(B);
    if (rc != 0)
        return rc;
    bool ledger = false;
    for (size_t i = 0; i < B->nroots; i++)
        ledger = ledger || B->roots[i].ledger;
    if (ledger && !B->have_cp) {
        ota_detail_set(B->det, "ledger/checkpoint: not found, but the roots name a ledger");
        return OTA_ERR_NOT_FOUND;
    }
    struct ota_bundle *b = &B->b;
    uint64_t R = B->req->root_version;
    b->base_root = R;
    b->newest_root = R + B->nroots - 1;
    b->base_size = B->req->checkpoint_size;
    for (size_t i = 1; i < B->nroots; i++) {
        file_of(&b->roots[b->nroots++], R + i, &B->roots[i].bytes);
        if (B->roots[i].rcp.len > 0)
            file_of(&b->root_checkpoints[b->nroot_checkpoints++], R + i, &B->roots[i].rcp);
    }
    file_of(&b->timestamp, 0, &B->ts);
    if (B->req->snapshot_version != B->snap_v)
        file_of(&b->snapshot, B->snap_v, &B->snap);
    if (B->targets.len > 0)
        file_of(&b->targets, B->targets_v, &B->targets);
    if (ledger) {
        file_of(&b->checkpoint, 0, &B->cp);
        rc = build_proofs(B);
        if (rc != 0)
            return rc;
        b->nconsistency = B->ncons;
        b->ninclusion = B->nincl;
    }
    struct ota_buf tmp;
    size_t cap =
        out->max - out->len < OTA_BUNDLE_MAX_LEN ? out->max - out->len : OTA_BUNDLE_MAX_LEN;
    ota_buf_init(&tmp, cap);
    rc = ota_bundle_encode(&tmp, b, B->det);
    if (rc == 0)
        rc = ota_buf_append(out, tmp.data, tmp.len);
    ota_buf_free(&tmp);
    return rc;
}

int ota_bundle_build(struct ota_buf *out, const struct ota_fetcher *repo,
                     const struct ota_bundle_request *req, struct ota_detail *det)
{
    if (out == NULL || repo == NULL || repo->fetch == NULL || req == NULL ||
        req->root_version == 0) {
        ota_detail_set(det, "bundle: an output, a repository and a root version >= 1 are needed");
        return OTA_ERR_INVALID_ARG;
    }
    struct build *B = calloc(1, sizeof(*B));
    if (B == NULL)
        return OTA_ERR_NOMEM;
    B->repo = repo;
    B->req = req;
    B->det = det;
    int rc = build(B, out); /* appends only at the end, when all went well */
    ota_buf_free(&B->ts);
    ota_buf_free(&B->snap);
    ota_buf_free(&B->targets);
    ota_buf_free(&B->cp);
    for (size_t i = 0; i < B->nroots; i++) {
        ota_buf_free(&B->roots[i].bytes);
        ota_buf_free(&B->roots[i].rcp);
    }
    free(B->slots);
    free(B);
    return rc;
}
