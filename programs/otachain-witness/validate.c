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

/* Fetches the file entry e names into c->buf: its public name, or its
 * staged copy while its publish waits for the quorum. */
static int fetch_meta(struct vctx *c, const struct ota_ledger_entry *e)
{
    static const size_t caps[3] = {OTA_TUF_ROOT_MAX_LEN, OTA_TUF_TARGETS_MAX_LEN,
                                   OTA_TUF_SNAPSHOT_MAX_LEN};
    const char *role = ota_tuf_role_name(e->role);
    char rel[96];
    int rc;

    snprintf(rel, sizeof(rel), "metadata/%llu.%s.json", (unsigned long long)e->version, role);
    ota_buf_free(&c->buf);
    ota_buf_init(&c->buf, caps[e->role]);
    rc = wit_remote_get(c->remote, &c->buf, c->log->repo_url, rel, c->det);
    if (rc == OTA_ERR_NOT_FOUND) {
        /* Not public yet: a publish stages what it asks witnesses to
         * validate where TUF clients never look (docs/formats/ledger.md). */
        snprintf(rel, sizeof(rel), "staging/metadata/%llu.%s.json", (unsigned long long)e->version,
                 role);
        rc = wit_remote_get(c->remote, &c->buf, c->log->repo_url, rel, c->det);
    }
    return rc != 0 ? fetch_failed(c, rc) : 0;
}

/* V3..V7: one entry through the release rules (ledger_rules.h R1..R6). */
static int check_entry(struct vctx *c, struct wit_vstate *v, uint64_t i,
                       const struct ota_ledger_entry *e)
{
    bool need_file = true;
    int rc = ota_ledger_rules_precheck(&v->rules, i, e, &need_file, c->det);

    if (rc == 0 && need_file)
        rc = fetch_meta(c, e);
    else if (rc != 0)
        return verdict(c, ota_ledger_rules_refused(rc) ? WIT_REFUSED : WIT_INTERNAL, rc);
    if (rc != 0)
        return rc; /* fetch_meta set the verdict */
    rc = ota_ledger_rules_check(&v->rules, i, e, need_file ? c->buf.data : NULL,
                                need_file ? c->buf.len : 0, c->log->anchor, c->log->anchor_len,
                                c->det);
    if (rc != 0)
        return verdict(c, ota_ledger_rules_refused(rc) ? WIT_REFUSED : WIT_INTERNAL, rc);
    return 0;
}

int wit_validate(struct wit_vstate *next, enum wit_verdict *verdict_out,
                 const struct wit_vstate *cur, const struct ota_checkpoint *cp,
                 const struct wit_log *log, struct wit_remote *remote, struct ota_detail *det)
{
    struct vctx c = {.log = log, .remote = remote, .verdict = verdict_out, .det = det};
    struct ota_ledger_entry *entries = NULL;
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
    for (uint64_t k = 0; k < n; k++) {
        rc = check_entry(&c, next, old + k, &entries[k]);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    ota_buf_free(&c.buf);
    free(entries);
    if (rc != 0)
        wit_vstate_free(next);
    return rc;
}
