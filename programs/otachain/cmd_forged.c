/* otachain ledger append-forged: a hidden verb for the system tests (only
 * in a build with test hooks, with OTACHAIN_TEST_HOOKS=1;
 * docs/internals/test-hooks.md). It logs a metadata file with the log key
 * the way a publish would (the file staged at
 * public/staging/metadata/<V>.<role>.json, where witnesses and monitors
 * read logged files that are not live), but with no TUF check, none of
 * the release rules and no unique version: a log whose operator turned
 * rogue, for monitors and validating witnesses to refuse. Built from the
 * library's pieces (sequencer, witness round), on purpose without
 * publish's own checks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "otachain/checkpoint.h"
#include "otachain/publish.h"
#include "otachain/sequencer.h"
#include "otachain/tiles.h"
#include "otachain/witness_curl.h"

#define META_MAX    (16u << 20)
#define CACHE_TILES 16

static int log_sign(void *ctx, struct ota_buf *note, const char *text, size_t len,
                    struct ota_detail *det)
{
    struct ota_repo_signer *s = ctx;

    return s->ops->log_sign(s, note, text, len, det);
}

/* The stored cosigned checkpoint's size (0 before the first). */
static int cosigned_size(uint64_t *size, struct ota_log_store *log, struct ota_detail *det)
{
    struct ota_buf b;
    struct ota_note *note = NULL;
    struct ota_checkpoint cp;
    int rc;

    *size = 0;
    ota_buf_init(&b, OTA_LOG_STORE_NOTE_MAX);
    rc = log->ops->checkpoint_get(log, &b, det);
    if (rc == 0)
        rc = ota_note_parse(&note, b.data, b.len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(&cp, note->text, note->text_len, det);
    if (rc == 0)
        *size = cp.size;
    else if (rc == OTA_ERR_NOT_FOUND)
        rc = 0;
    ota_note_free(note);
    ota_buf_free(&b);
    return rc;
}

/* Logs rec (its file data), asks the witnesses of pol, and publishes the
 * checkpoint with the quorum; undoes everything public without it. */
static int forge(struct ota_repo_store *store, struct ota_repo_signer *signer,
                 const struct ota_tlog_policy *pol, enum ota_tuf_role role, uint64_t version,
                 const uint8_t *data, size_t len, struct ota_detail *det)
{
    struct ota_witness_round *round = calloc(1, sizeof(*round));
    struct ota_tiles_slot *slots = calloc(CACHE_TILES, sizeof(*slots));
    struct ota_tiles_source *ts = calloc(1, sizeof(*ts));
    struct ota_seq_sink sink = {ota_ledger_put_tile, store};
    struct ota_log_store *log = NULL;
    struct ota_tiles_reader reader;
    struct ota_seq_record sr;
    struct ota_merkle_edge old_edge, edge;
    struct ota_note_verifier v;
    struct ota_witness_verdict verdict;
    struct ota_buf note;
    struct ota_ledger_unpublish x = {store, NULL};
    char path[96];
    uint64_t from = 0;
    int rc = round == NULL || slots == NULL || ts == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&note, OTA_LOG_STORE_NOTE_MAX);
    snprintf(path, sizeof(path), "public/staging/metadata/%" PRIu64 ".%s.json", version,
             ota_tuf_role_name(role));
    if (rc == 0)
        rc = store->ops->log(store, &log, true, det);
    if (rc == 0)
        rc = cosigned_size(&from, log, det);
    if (rc == 0)
        rc = signer->ops->log_key(signer, &v, det);
    if (rc == 0)
        rc = ota_seq_record_of(&sr, role, version, data, len);
    if (rc == 0)
        rc = log->ops->begin(log, det);
    if (rc == 0) {
        struct ota_seq_entry e = {sr.rec, sr.len, NULL}; /* a version again, too */

        rc = log->ops->edge_get(log, &old_edge, det);
        if (rc == 0)
            rc = ota_seq_append(&edge, NULL, log, &e, 1, det);
        if (rc == 0)
            rc = log->ops->commit(log, det);
        else
            log->ops->rollback(log);
    }
    if (rc == 0)
        rc = ota_seq_checkpoint(&note, NULL, &edge, v.name, v.name_len, log_sign, signer, det);
    /* The file and the tiles first, as publish stages them. */
    if (rc == 0)
        rc = store->ops->put(store, path, data, len, det);
    if (rc == 0)
        rc = ota_seq_export(&sink, log, from, edge.size, det);
    ota_log_store_tiles_reader(&reader, log);
    if (rc == 0)
        rc = ota_tiles_source_init(ts, edge.size, &reader, slots, CACHE_TILES);
    if (rc == 0)
        rc = ota_witness_round_init(round, &note, edge.size, &pol, 1, &ts->src);
    for (size_t i = 0; rc == 0 && i < round->n; i++) {
        uint64_t known = 0;

        rc = log->ops->witness_get(log, round->w[i].pw->name, &known, det);
        ota_witness_round_known(round, i, known);
    }
    if (rc == 0)
        rc = ota_witness_round_start(round, det);
    if (rc == 0)
        rc = ota_witness_curl_run(round, NULL, det);
    if (rc != 0)
        goto out;
    ota_witness_round_judge(round, &verdict);
    rc = log->ops->begin(log, det);
    for (size_t i = 0; rc == 0 && i < round->n; i++) {
        if (round->w[i].outcome == OTA_WITNESS_COSIGNED)
            rc = log->ops->witness_put(log, round->w[i].pw->name, edge.size, det);
    }
    if (rc == 0 && verdict.met) {
        rc = ota_witness_round_cosign(round, &note);
        if (rc == 0)
            rc = log->ops->checkpoint_put(log, note.data, note.len, det);
    } else if (rc == 0 && verdict.droppable) {
        rc = log->ops->truncate(log, old_edge.size, det);
        if (rc == 0)
            rc = log->ops->edge_put(log, &old_edge, det);
    }
    if (rc == 0)
        rc = log->ops->commit(log, det);
    else
        log->ops->rollback(log);
    if (rc == 0 && verdict.met) {
        rc = store->ops->put(store, "public/ledger/checkpoint", note.data, note.len, det);
        goto out;
    }
    if (rc == 0) {
        char msg[OTA_DETAIL_LEN];

        ota_witness_round_missing(round, msg, sizeof(msg));
        /* Nothing public changes without the quorum. */
        rc = store->ops->remove(store, path, det);
        if (rc == 0)
            rc = ota_seq_export_paths(from, edge.size, ota_ledger_remove_tile, &x);
        ota_detail_set(det, "checkpoint of size %" PRIu64 " not cosigned by: %s", edge.size, msg);
        rc = rc == 0 ? OTA_ERR_QUORUM : rc;
    }
out:
    if (round != NULL)
        ota_witness_round_free(round);
    free(round);
    free(slots);
    free(ts);
    ota_buf_free(&note);
    return rc;
}

int cmd_ledger_append_forged(const struct cli_ctx *ctx, int argc, char **argv,
                             struct ota_detail *det)
{
    struct cli_opt opts[] = {{"role", CLI_VAL | CLI_REQ, 0, {0}},
                             {"version", CLI_VAL | CLI_REQ, 0, {0}},
                             {"file", CLI_VAL | CLI_REQ, 0, {0}}};
    struct cli_args args;
    struct ota_repo_store *store = NULL;
    struct ota_repo_signer *signer = NULL;
    struct ota_tuf_meta *root = NULL;
    struct ota_tlog_policy *p = NULL;
    enum ota_tuf_role role = OTA_TUF_TARGETS;
    uint64_t version = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    struct ota_buf rb;
    int64_t max_age;
    int rc = cli_parse(opts, 3, &args, 1, 1, argc, argv, det);

    ota_buf_init(&rb, META_MAX);
    if (rc == 0) {
        role = strcmp(cli_val(&opts[0]), "root") == 0       ? OTA_TUF_ROOT
               : strcmp(cli_val(&opts[0]), "snapshot") == 0 ? OTA_TUF_SNAPSHOT
                                                            : OTA_TUF_TARGETS;
        rc = cli_parse_u64(&version, cli_val(&opts[1]), OTA_LEDGER_VERSION_MAX);
    }
    if (rc == 0)
        rc = ota_fs_read(&data, &len, cli_val(&opts[2]), META_MAX);
    if (rc == 0)
        rc = ota_repo_files_open(&store, args.pos[0], ctx->hook, det);
    if (rc == 0)
        rc = ota_repo_keys_open(&signer, args.pos[0], ctx->hook, det);
    if (rc == 0)
        rc = store->ops->get(store, "public/metadata/root.json", &rb, det);
    if (rc == 0)
        rc = ota_tuf_parse(&root, rb.data, rb.len, OTA_TUF_ROOT, det);
    if (rc == 0)
        rc = ota_publish_policy_of(&p, &max_age, root, det);
    if (rc == 0 && p == NULL)
        rc = OTA_ERR_NOT_FOUND;
    if (rc == 0)
        rc = forge(store, signer, p, role, version, data, len, det);
    ota_tlog_policy_free(p);
    ota_tuf_meta_free(root);
    ota_repo_signer_close(signer);
    ota_repo_store_close(store);
    ota_buf_free(&rb);
    free(data);
    return rc;
}
