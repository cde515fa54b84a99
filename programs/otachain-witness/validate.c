/* Validating mode (validate.h). */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/buf.h"
#include "otachain/ledger_entry.h"
#include "otachain/tiles.h"
#include "otachain/tuf.h"

/* An entry bundle of otachain records: 256 entries of at most 192 bytes. */
#define BUNDLE_MAX ((size_t)OTA_TILES_WIDTH * (2 + OTA_LEDGER_ENTRY_MAX))

struct vctx {
    const struct wit_log *log;
    struct wit_remote *remote;
    struct ota_buf buf; /* the file being checked */
    enum wit_verdict *verdict;
    struct ota_detail *det;
};

/* Sets the verdict and returns err. */
static int verdict(struct vctx *c, enum wit_verdict v, int err)
{
    *c->verdict = v;
    return err;
}

/* A fetch error: missing or unreachable data is UNAVAILABLE (the log may
 * retry once it serves it); too large is REFUSED. */
static int fetch_failed(struct vctx *c, int rc)
{
    if (rc == OTA_ERR_NOMEM)
        return verdict(c, WIT_INTERNAL, rc);
    if (rc == OTA_ERR_TOO_LARGE)
        return verdict(c, WIT_REFUSED, rc);
    return verdict(c, WIT_UNAVAILABLE, rc);
}

/* Fetches entry bundle index (width w of the new tree) into c->buf and
 * parses it; a missing partial bundle is read from the full one. */
static int fetch_bundle(struct vctx *c, struct ota_tiles_entry ents[OTA_TILES_WIDTH],
                        uint64_t index, unsigned w)
{
    struct ota_tiles_id id = {.entries = true, .level = 0, .index = index, .width = w};
    char path[OTA_TILES_PATH_MAX];
    size_t count;
    int rc;

    rc = ota_tiles_path_format(path, &id);
    if (rc != 0)
        return verdict(c, WIT_INTERNAL, rc);
    rc = wit_remote_get(c->remote, &c->buf, c->log->tiles_url, path, c->det);
    if (rc == OTA_ERR_NOT_FOUND && w < OTA_TILES_WIDTH) {
        /* tlog-tiles: a client may read the full tile instead. */
        id.width = OTA_TILES_WIDTH;
        if (ota_tiles_path_format(path, &id) == 0 &&
            wit_remote_get(c->remote, &c->buf, c->log->tiles_url, path, NULL) == 0)
            rc = 0;
    }
    if (rc != 0)
        return fetch_failed(c, rc);
    rc = ota_tiles_bundle_parse(ents, &count, c->buf.data, c->buf.len, id.width, c->det);
    if (rc != 0) {
        ota_detail_prefix(c->det, path);
        return verdict(c, WIT_REFUSED, rc);
    }
    return 0;
}

/* V1, V2: reads [edge->size, cp->size) into entries and extends edge. */
static int read_entries(struct vctx *c, struct ota_ledger_entry *entries,
                        struct ota_merkle_edge *edge, const struct ota_checkpoint *cp)
{
    struct ota_tiles_entry ents[OTA_TILES_WIDTH];
    uint64_t old = edge->size;
    uint8_t root[OTA_MERKLE_HASH_LEN];
    int rc;

    for (uint64_t k = old / OTA_TILES_WIDTH; k * OTA_TILES_WIDTH < cp->size; k++) {
        unsigned w = ota_tiles_width(0, k, cp->size);
        uint64_t first = k * OTA_TILES_WIDTH;
        unsigned j = old > first ? (unsigned)(old - first) : 0;

        rc = fetch_bundle(c, ents, k, w);
        if (rc != 0)
            return rc;
        for (; j < w; j++) {
            uint64_t i = first + j;
            uint8_t leaf[OTA_MERKLE_HASH_LEN];

            rc = ota_merkle_leaf_hash(leaf, ents[j].data, ents[j].len);
            if (rc == 0)
                rc = ota_merkle_edge_append(edge, leaf, NULL);
            if (rc != 0)
                return verdict(c, WIT_INTERNAL, rc);
            rc = ota_ledger_entry_parse(&entries[i - old], ents[j].data, ents[j].len, c->det);
            if (rc != 0) {
                char where[96];
                snprintf(where, sizeof(where), "entry %llu is not an otachain ledger record",
                         (unsigned long long)i);
                ota_detail_prefix(c->det, where);
                return verdict(c, WIT_REFUSED, rc);
            }
        }
    }
    rc = ota_merkle_edge_root(root, edge);
    if (rc != 0)
        return verdict(c, WIT_INTERNAL, rc);
    if (!ota_ct_equal(root, cp->root, sizeof(root))) {
        ota_detail_set(c->det,
                       "the entries served under %s do not hash to the checkpoint's root "
                       "(size %llu)",
                       c->log->tiles_url, (unsigned long long)cp->size);
        return verdict(c, WIT_REFUSED, OTA_ERR_PROOF);
    }
    return 0;
}

/* V3: fetches and parses the file entry e (number i) names. */
static int fetch_meta(struct vctx *c, struct ota_tuf_meta **md, uint64_t i,
                      const struct ota_ledger_entry *e)
{
    static const size_t caps[3] = {OTA_TUF_ROOT_MAX_LEN, OTA_TUF_TARGETS_MAX_LEN,
                                   OTA_TUF_SNAPSHOT_MAX_LEN};
    const char *role = ota_tuf_role_name(e->role);
    char rel[96];
    uint8_t sha[OTA_SHA256_LEN];
    int rc;

    *md = NULL;
    snprintf(rel, sizeof(rel), "metadata/%llu.%s.json", (unsigned long long)e->version, role);
    ota_buf_free(&c->buf);
    ota_buf_init(&c->buf, caps[e->role]);
    rc = wit_remote_get(c->remote, &c->buf, c->log->repo_url, rel, c->det);
    if (rc != 0)
        return fetch_failed(c, rc);
    if (c->buf.len != e->length) {
        ota_detail_set(c->det, "entry %llu: %s is %zu bytes, the log says %llu",
                       (unsigned long long)i, rel, c->buf.len, (unsigned long long)e->length);
        return verdict(c, WIT_REFUSED, OTA_ERR_LENGTH_MISMATCH);
    }
    rc = ota_sha256(sha, c->buf.data ? (const void *)c->buf.data : "", c->buf.len);
    if (rc != 0)
        return verdict(c, WIT_INTERNAL, rc);
    if (!ota_ct_equal(sha, e->sha256, sizeof(sha))) {
        ota_detail_set(c->det, "entry %llu: %s does not have the logged SHA-256",
                       (unsigned long long)i, rel);
        return verdict(c, WIT_REFUSED, OTA_ERR_HASH_MISMATCH);
    }
    rc = ota_tuf_parse(md, c->buf.data, c->buf.len, e->role, c->det);
    if (rc == 0 && (*md)->version != e->version) {
        ota_detail_set(c->det, "version %llu inside, the log says %llu",
                       (unsigned long long)(*md)->version, (unsigned long long)e->version);
        ota_tuf_meta_free(*md);
        *md = NULL;
        rc = OTA_ERR_VERSION_MISMATCH;
    }
    if (rc != 0) {
        char where[128];
        snprintf(where, sizeof(where), "entry %llu: %s", (unsigned long long)i, rel);
        ota_detail_prefix(c->det, where);
        return verdict(c, rc == OTA_ERR_NOMEM ? WIT_INTERNAL : WIT_REFUSED, rc);
    }
    return 0;
}

/* Refusal of entry i with a reason. */
static int refuse(struct vctx *c, int err, uint64_t i, const struct ota_ledger_entry *e,
                  const char *why)
{
    ota_detail_set(c->det, "entry %llu (%s v%llu): %s", (unsigned long long)i,
                   ota_tuf_role_name(e->role), (unsigned long long)e->version, why);
    return verdict(c, WIT_REFUSED, err);
}

/* Refusal of entry i carrying the library's detail. */
static int refuse_det(struct vctx *c, int err, uint64_t i, const struct ota_ledger_entry *e,
                      const char *why)
{
    char where[160];
    snprintf(where, sizeof(where), "entry %llu (%s v%llu): %s", (unsigned long long)i,
             ota_tuf_role_name(e->role), (unsigned long long)e->version, why);
    ota_detail_prefix(c->det, where);
    return verdict(c, WIT_REFUSED, err);
}

static int replace_root(struct wit_vstate *v, struct ota_tuf_meta **root_md,
                        struct ota_tuf_meta *md, const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (copy == NULL)
        return OTA_ERR_NOMEM;
    memcpy(copy, bytes, len);
    free(v->root);
    v->root = copy;
    v->root_len = len;
    v->version[OTA_TUF_ROOT] = md->version;
    ota_tuf_meta_free(*root_md);
    *root_md = md;
    return 0;
}

/* V4, V5: a root record. */
static int check_root(struct vctx *c, struct wit_vstate *v, struct ota_tuf_meta **root_md,
                      uint64_t i, const struct ota_ledger_entry *e)
{
    const struct wit_log *log = c->log;
    struct ota_tuf_meta *md = NULL;
    int rc;

    if (v->root == NULL) {
        uint8_t sha[OTA_SHA256_LEN];

        rc = ota_sha256(sha, log->anchor, log->anchor_len);
        if (rc != 0)
            return verdict(c, WIT_INTERNAL, rc);
        if (e->length != log->anchor_len || !ota_ct_equal(sha, e->sha256, sizeof(sha)) ||
            e->version != log->anchor_version)
            return refuse(c, OTA_ERR_HASH_MISMATCH, i, e,
                          "the first root of the log is not the configured anchor");
        rc = ota_tuf_parse(&md, log->anchor, log->anchor_len, OTA_TUF_ROOT, c->det);
        if (rc == 0)
            rc = replace_root(v, root_md, md, log->anchor, log->anchor_len);
        if (rc != 0) {
            ota_tuf_meta_free(md);
            return verdict(c, WIT_INTERNAL, rc);
        }
        return 0;
    }
    if (e->version != v->version[OTA_TUF_ROOT] + 1)
        return refuse(c, OTA_ERR_ROLLBACK, i, e,
                      e->version <= v->version[OTA_TUF_ROOT]
                          ? "root versions only increase"
                          : "root versions go up by exactly one");
    rc = fetch_meta(c, &md, i, e);
    if (rc != 0)
        return rc;
    rc = ota_tuf_verify_role(md, *root_md, OTA_TUF_ROOT, c->det);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return refuse_det(c, rc, i, e, "not signed by the root threshold of the previous root");
    }
    rc = ota_tuf_verify_role(md, md, OTA_TUF_ROOT, c->det);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return refuse_det(c, rc, i, e, "not signed by its own root threshold");
    }
    rc = replace_root(v, root_md, md, c->buf.data, c->buf.len);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return verdict(c, WIT_INTERNAL, rc);
    }
    return 0;
}

/* V4, V6, V7: a targets or snapshot record. */
static int check_signed(struct vctx *c, struct wit_vstate *v, const struct ota_tuf_meta *root_md,
                        uint64_t i, const struct ota_ledger_entry *e)
{
    struct ota_tuf_meta *md = NULL;
    int rc;

    if (v->root == NULL)
        return refuse(c, OTA_ERR_NO_TRUSTED_ROOT, i, e, "logged before any root");
    if (e->version <= v->version[e->role])
        return refuse(c, OTA_ERR_ROLLBACK, i, e, "versions only increase");
    rc = fetch_meta(c, &md, i, e);
    if (rc != 0)
        return rc;
    rc = ota_tuf_verify_role(md, root_md, e->role, c->det);
    if (rc != 0) {
        ota_tuf_meta_free(md);
        return refuse_det(c, rc, i, e,
                          e->role == OTA_TUF_TARGETS
                              ? "below the targets threshold of the latest logged root"
                              : "below the snapshot threshold of the latest logged root");
    }
    if (e->role == OTA_TUF_SNAPSHOT) {
        const struct ota_tuf_metafile *mf = ota_tuf_find_meta(md, "targets.json");

        rc = 0;
        if (mf == NULL || !v->has_targets || mf->version != v->version[OTA_TUF_TARGETS] ||
            (mf->has_length && mf->length != v->targets_length) ||
            (mf->has_sha256 && !ota_ct_equal(mf->sha256, v->targets_sha256, OTA_SHA256_LEN)))
            rc = OTA_ERR_VERSION_MISMATCH;
        ota_tuf_meta_free(md);
        if (rc != 0)
            return refuse(c, rc, i, e, "does not pin the latest logged targets");
    } else {
        ota_tuf_meta_free(md);
        v->has_targets = true;
        v->targets_length = e->length;
        memcpy(v->targets_sha256, e->sha256, OTA_SHA256_LEN);
    }
    v->version[e->role] = e->version;
    return 0;
}

int wit_validate(struct wit_vstate *next, enum wit_verdict *verdict_out,
                 const struct wit_vstate *cur, const struct ota_checkpoint *cp,
                 const struct wit_log *log, struct wit_remote *remote, struct ota_detail *det)
{
    struct vctx c = {.log = log, .remote = remote, .verdict = verdict_out, .det = det};
    struct ota_ledger_entry *entries = NULL;
    struct ota_tuf_meta *root_md = NULL;
    uint64_t old = cur->edge.size;
    uint64_t n;
    int rc;

    memset(next, 0, sizeof(*next));
    *verdict_out = WIT_VALID;
    if (cp->size < old)
        return verdict(&c, WIT_INTERNAL, OTA_ERR_INVALID_ARG);
    n = cp->size - old;
    if (n > WIT_MAX_NEW_ENTRIES) {
        ota_detail_set(det, "%llu new entries in one checkpoint; this witness validates at most %d",
                       (unsigned long long)n, WIT_MAX_NEW_ENTRIES);
        return verdict(&c, WIT_REFUSED, OTA_ERR_TOO_LARGE);
    }
    rc = wit_vstate_copy(next, cur);
    if (rc != 0)
        return verdict(&c, WIT_INTERNAL, rc);
    entries = calloc(n ? n : 1, sizeof(*entries));
    if (entries == NULL) {
        rc = verdict(&c, WIT_INTERNAL, OTA_ERR_NOMEM);
        goto out;
    }
    ota_buf_init(&c.buf, BUNDLE_MAX);
    rc = read_entries(&c, entries, &next->edge, cp);
    if (rc != 0)
        goto out;
    if (next->root != NULL) {
        rc = ota_tuf_parse(&root_md, next->root, next->root_len, OTA_TUF_ROOT, det);
        if (rc != 0) {
            rc = verdict(&c, WIT_INTERNAL, rc);
            goto out;
        }
    }
    for (uint64_t k = 0; k < n; k++) {
        const struct ota_ledger_entry *e = &entries[k];

        if (e->role == OTA_TUF_ROOT)
            rc = check_root(&c, next, &root_md, old + k, e);
        else
            rc = check_signed(&c, next, root_md, old + k, e);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    ota_tuf_meta_free(root_md);
    ota_buf_free(&c.buf);
    free(entries);
    if (rc != 0)
        wit_vstate_free(next);
    return rc;
}
