/* otachain ledger show | verify | policy | proof | monitor (docs/cli.md).
 *
 * The read-only verbs take the repository directory (its public/ledger and
 * public/metadata) or --url, the base URL of the published repository (the
 * public/ directory: URL/ledger/..., URL/metadata/...). Everything read is
 * untrusted until checked: the audit recomputes the tree from the entry
 * bundles, and monitor checks each logged metadata file against its entry
 * and the keys of the latest logged root.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "otachain/publish.h"
#include "otachain/sequencer.h"
#include "otachain/base64.h"
#include "otachain/checkpoint.h"
#include "otachain/cosig.h"
#include "otachain/fsutil.h"
#include "otachain/cjson.h"
#include "otachain/http.h"
#include "otachain/ledger_entry.h"
#include "otachain/ledger_policy.h"
#include "otachain/ledger_rules.h"
#include "otachain/merkle.h"
#include "otachain/note.h"
#include "otachain/tiles.h"
#include "otachain/tlog_proof.h"
#include "otachain/tlog_policy.h"
#include "otachain/tuf.h"
#include "repo.h"

#define META_MAX        (16u << 20) /* a metadata file */
#define NOTE_MAX        OTA_LOG_STORE_NOTE_MAX
#define MONITOR_SLEEP_S 60

/* Where the published repository is: a directory (DIR/public) or a URL
 * read under the HTTP policy. */
struct src {
    char base[PATH_MAX];
    bool url;
    struct ota_http_policy http;
};

/* http: the first of the verb's CLI_HTTP_OPTS. The round starts now. */
static int src_set(struct src *s, const char *dir, const char *url, const struct cli_opt *http,
                   const struct cli_ctx *ctx, struct ota_detail *det)
{
    int n;

    memset(s, 0, sizeof(*s));
    if ((dir == NULL) == (url == NULL)) {
        ota_detail_set(det, "give DIR or --url URL");
        return CLI_ERR_USAGE;
    }
    n = cli_http_policy(&s->http, http, ctx, det);
    if (n == 0 && url != NULL)
        n = cli_check_url(url, "--url", det);
    if (n != 0)
        return n;
    ota_http_round_start(&s->http);
    s->url = url != NULL;
    n = snprintf(s->base, sizeof(s->base), url != NULL ? "%s" : "%s/public",
                 url != NULL ? url : dir);
    if (n < 0 || (size_t)n >= sizeof(s->base))
        return OTA_ERR_TOO_LARGE;
    while (n > 1 && s->base[n - 1] == '/')
        s->base[--n] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    return ota_buf_append(ctx, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* Reads base/<rel> (at most max bytes) into out. OTA_ERR_NOT_FOUND for a
 * missing file or HTTP 404/403. */
static int src_get(struct ota_buf *out, const struct src *s, const char *rel, size_t max,
                   struct ota_detail *det)
{
    char where[PATH_MAX + 64];
    int rc;

    ota_buf_free(out);
    ota_buf_init(out, max);
    if (snprintf(where, sizeof(where), "%s/%s", s->base, rel) >= (int)sizeof(where))
        return OTA_ERR_TOO_LARGE;
    if (!s->url) {
        uint8_t *data = NULL;
        size_t len = 0;

        rc = ota_fs_read(&data, &len, where, max);
        if (rc == 0)
            rc = ota_buf_append(out, data, len);
        free(data);
    } else {
        CURL *e = curl_easy_init();
        struct ota_http_xfer x;
        char errbuf[CURL_ERROR_SIZE];
        long status = 0;
        CURLcode cr;

        if (e == NULL)
            return OTA_ERR_NOMEM;
        errbuf[0] = '\0';
        rc = ota_http_setup(e, &s->http, errbuf, det);
        if (rc == 0)
            rc = ota_http_xfer_begin(&x, e, &s->http, where, where, max, max, det);
        if (rc == 0 && (curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
                        curl_easy_setopt(e, CURLOPT_WRITEDATA, out) != CURLE_OK))
            rc = OTA_ERR_NETWORK;
        if (rc != 0) {
            curl_easy_cleanup(e);
            return rc;
        }
        cr = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (cr == CURLE_WRITE_ERROR || cr == CURLE_FILESIZE_EXCEEDED)
            rc = OTA_ERR_TOO_LARGE;
        else if (cr != CURLE_OK)
            rc = ota_http_xfer_result(&x, cr, errbuf, det);
        else if (status == 404 || status == 403)
            rc = OTA_ERR_NOT_FOUND;
        else
            rc = status == 200 ? 0 : OTA_ERR_NETWORK;
        curl_easy_cleanup(e);
        if (rc == OTA_ERR_SLOW_RETRIEVAL || (rc == OTA_ERR_NETWORK && cr != CURLE_OK))
            return rc; /* det names the URL and what happened */
        if (rc == OTA_ERR_NETWORK) {
            ota_detail_set(det, "%s: HTTP status %ld", where, status);
            return rc;
        }
    }
    if (rc != 0)
        ota_detail_set(det, "%s", where);
    return rc;
}

/* The checkpoint note of the source, parsed. */
static int get_checkpoint(struct ota_note **note, struct ota_checkpoint *cp, struct ota_buf *raw,
                          const struct src *s, struct ota_detail *det)
{
    int rc = src_get(raw, s, "ledger/checkpoint", NOTE_MAX, det);

    *note = NULL;
    if (rc == 0)
        rc = ota_note_parse(note, raw->data, raw->len, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(cp, (*note)->text, (*note)->text_len, det);
    if (rc != 0)
        ota_detail_prefix(det, "ledger/checkpoint");
    return rc;
}

/* ---------------------------------------------------------------- show */

int cmd_ledger_show(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"url", CLI_VAL, 0, {0}}, CLI_HTTP_OPTS};
    struct cli_args args;
    struct src s;
    struct ota_buf raw;
    struct ota_note *note = NULL;
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    char b64[OTA_BASE64_LEN(OTA_MERKLE_HASH_LEN) + 1];
    int rc = cp == NULL
                 ? OTA_ERR_NOMEM
                 : cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 1, argc, argv, det);

    ota_buf_init(&raw, 1);
    if (rc == 0)
        rc = src_set(&s, args.npos > 0 ? args.pos[0] : NULL, cli_val(&opts[0]), &opts[1], ctx, det);
    if (rc == 0)
        rc = get_checkpoint(&note, cp, &raw, &s, det);
    if (rc == 0) {
        ota_base64_encode(b64, cp->root, OTA_MERKLE_HASH_LEN);
        cli_printf(stdout, "origin %s\nsize %" PRIu64 "\nroot %s\n", cp->origin, cp->size, b64);
        for (size_t i = 0; i < note->nsigs; i++) {
            const struct ota_note_sig *sg = &note->sigs[i];
            char t[32];

            if (sg->sig_len == OTA_COSIG_LEN) {
                ota_time_text(t, (int64_t)ota_cosig_get_time(sg->sig));
                cli_printf(stdout, "cosigned by %s at %s\n", sg->name, t);
            } else {
                cli_printf(stdout, "signed by %s\n", sg->name);
            }
        }
    }
    ota_note_free(note);
    ota_buf_free(&raw);
    free(cp);
    return rc;
}

/* -------------------------------------------------------------- policy */

/* Follows the root chain from the trusted root, one ota_tuf_root_step at
 * a time (N+1.root.json carries the thresholds of root N and its own).
 * *root is the newest. */
static int walk_roots(struct ota_tuf_meta **root, const struct src *s, const char *trusted,
                      struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct ota_buf b;
    int rc = ota_fs_read(&data, &len, trusted, META_MAX);

    *root = NULL;
    ota_buf_init(&b, 1);
    if (rc != 0) {
        ota_detail_set(det, "--trusted-root %s", trusted);
        return rc;
    }
    rc = ota_tuf_parse(root, data, len, OTA_TUF_ROOT, det);
    free(data);
    if (rc == 0)
        rc = ota_tuf_verify_role(*root, *root, OTA_TUF_ROOT, det);
    while (rc == 0) {
        char rel[64];
        struct ota_tuf_meta *next = NULL;

        snprintf(rel, sizeof(rel), "metadata/%" PRIu64 ".root.json", (*root)->version + 1);
        rc = src_get(&b, s, rel, META_MAX, det);
        if (rc == OTA_ERR_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (rc == 0)
            rc = ota_tuf_parse(&next, b.data, b.len, OTA_TUF_ROOT, det);
        if (rc == 0)
            rc = ota_tuf_root_step(next, *root, det);
        if (rc != 0) {
            ota_detail_prefix(det, rel);
            ota_tuf_meta_free(next);
            break;
        }
        ota_tuf_meta_free(*root);
        *root = next;
    }
    ota_buf_free(&b);
    if (rc != 0) {
        ota_tuf_meta_free(*root);
        *root = NULL;
    }
    return rc;
}

int cmd_ledger_policy(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"url", CLI_VAL, 0, {0}}, {"trusted-root", CLI_VAL | CLI_REQ, 0, {0}}, CLI_HTTP_OPTS};
    struct cli_args args;
    struct src s;
    struct ota_tuf_meta *root = NULL;
    struct ota_tlog_policy *p = NULL;
    struct ota_buf out;
    int64_t max_age = 0;
    int rc = cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 1, argc, argv, det);

    ota_buf_init(&out, OTA_TLOG_POLICY_MAX_LEN);
    if (rc == 0)
        rc = src_set(&s, args.npos > 0 ? args.pos[0] : NULL, cli_val(&opts[0]), &opts[2], ctx, det);
    if (rc == 0)
        rc = walk_roots(&root, &s, cli_val(&opts[1]), det);
    if (rc == 0)
        rc = ota_publish_policy_of(&p, &max_age, root, det);
    if (rc == 0 && p == NULL) {
        ota_detail_set(det, "root v%" PRIu64 " carries no ledger", root->version);
        rc = OTA_ERR_NOT_FOUND;
    }
    if (rc == 0)
        rc = ota_tlog_policy_format(&out, p);
    if (rc == 0) {
        const char *line = (const char *)out.data;

        cli_printf(stdout, "# root v%" PRIu64 ", origin %s, max_age %" PRId64 "s\n", root->version,
                   p->origin, max_age);
        /* One policy line per line (each field escaped). */
        while (*line != '\0') {
            const char *nl = strchr(line, '\n');
            int n = nl != NULL ? (int)(nl - line) : (int)strlen(line);

            cli_printf(stdout, "%.*s\n", n, line);
            line += n + (nl != NULL);
        }
    }
    ota_buf_free(&out);
    ota_tlog_policy_free(p);
    ota_tuf_meta_free(root);
    return rc;
}

/* --------------------------------------------------------------- entries */

/* Reads every entry bundle of the tree of `size` and calls fn for each
 * entry from index `from` on. */
typedef int (*entry_fn)(void *ctx, uint64_t index, const uint8_t *e, size_t len,
                        struct ota_detail *det);

static int for_entries(const struct src *s, uint64_t from, uint64_t size, entry_fn fn, void *ctx,
                       struct ota_detail *det)
{
    struct ota_tiles_entry *ents = calloc(OTA_TILES_WIDTH, sizeof(*ents));
    struct ota_buf b;
    int rc = ents == NULL ? OTA_ERR_NOMEM : 0;

    ota_buf_init(&b, 1);
    for (uint64_t t = from / OTA_TILES_WIDTH; rc == 0 && t * OTA_TILES_WIDTH < size; t++) {
        struct ota_tiles_id id = {true, 0, t, ota_tiles_width(0, t, size)};
        char rel[OTA_TILES_PATH_MAX + 16];
        char path[OTA_TILES_PATH_MAX];
        size_t n = 0;

        rc = ota_tiles_path_format(path, &id);
        snprintf(rel, sizeof(rel), "ledger/%s", path);
        if (rc == 0)
            rc = src_get(&b, s, rel, OTA_TILES_BUNDLE_MAX, det);
        if (rc == 0)
            rc = ota_tiles_bundle_parse(ents, &n, b.data, b.len, id.width, det);
        if (rc != 0)
            ota_detail_prefix(det, rel);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            uint64_t idx = t * OTA_TILES_WIDTH + i;

            if (idx >= from)
                rc = fn(ctx, idx, ents[i].data, ents[i].len, det);
        }
    }
    ota_buf_free(&b);
    free(ents);
    return rc;
}

/* ---------------------------------------------------------------- verify */

struct audit {
    const struct src *s;
    struct ota_merkle_edge edge;
};

static int audit_entry(void *ctx, uint64_t index, const uint8_t *e, size_t len,
                       struct ota_detail *det)
{
    struct audit *a = ctx;
    struct ota_ledger_entry le;
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    struct ota_buf b;
    char rel[64];
    uint64_t got = 0;
    int rc = ota_merkle_leaf_hash(leaf, e, len);

    if (rc == 0)
        rc = ota_merkle_edge_append(&a->edge, leaf, NULL);
    if (rc == 0)
        rc = ota_ledger_entry_parse(&le, e, len, det);
    if (rc != 0) {
        ota_detail_prefix(det, "entry");
        return rc;
    }
    snprintf(rel, sizeof(rel), "ledger/index/%s/%" PRIu64, ota_tuf_role_name(le.role), le.version);
    ota_buf_init(&b, 1);
    rc = src_get(&b, a->s, rel, 32, det);
    if (rc == 0 && (ota_checkpoint_parse_u64(&got, (const char *)b.data, b.len, UINT64_MAX) != 0 ||
                    got != index)) {
        ota_detail_set(det, "%s does not name entry %" PRIu64, rel, index);
        rc = OTA_ERR_FORMAT;
    }
    ota_buf_free(&b);
    return rc;
}

int cmd_ledger_verify(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {
        {"url", CLI_VAL, 0, {0}}, {"trusted-root", CLI_VAL, 0, {0}}, CLI_HTTP_OPTS};
    struct cli_args args;
    struct src s;
    struct ota_buf raw;
    struct ota_buf rootb;
    struct ota_note *note = NULL;
    struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
    struct audit *a = calloc(1, sizeof(*a));
    struct ota_tuf_meta *root = NULL;
    struct ota_tlog_policy *p = NULL;
    struct ota_tlog_policy_result *res = calloc(1, sizeof(*res));
    uint8_t got[OTA_MERKLE_HASH_LEN];
    int64_t max_age = 0;
    int rc = cp == NULL || a == NULL || res == NULL
                 ? OTA_ERR_NOMEM
                 : cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 1, argc, argv, det);

    ota_buf_init(&raw, 1);
    ota_buf_init(&rootb, 1);
    if (rc == 0)
        rc = src_set(&s, args.npos > 0 ? args.pos[0] : NULL, cli_val(&opts[0]), &opts[2], ctx, det);
    if (rc == 0)
        rc = get_checkpoint(&note, cp, &raw, &s, det);
    /* The log key and the witnesses of the newest root: followed from
     * --trusted-root, else as published (root.json). */
    if (rc == 0 && opts[1].n > 0) {
        rc = walk_roots(&root, &s, cli_val(&opts[1]), det);
    } else if (rc == 0) {
        rc = src_get(&rootb, &s, "metadata/root.json", META_MAX, det);
        if (rc == 0)
            rc = ota_tuf_parse(&root, rootb.data, rootb.len, OTA_TUF_ROOT, det);
    }
    if (rc == 0)
        rc = ota_publish_policy_of(&p, &max_age, root, det);
    if (rc == 0 && p == NULL) {
        ota_detail_set(det, "root.json carries no ledger");
        rc = OTA_ERR_NOT_FOUND;
    }
    /* Every signature and the quorum, whatever the cosignature times. */
    if (rc == 0)
        rc = ota_tlog_policy_verify(res, note, p, ctx->now, ctx->now, INT64_MAX / 4, det);
    if (rc == 0) {
        a->s = &s;
        ota_merkle_edge_init(&a->edge);
        rc = for_entries(&s, 0, cp->size, audit_entry, a, det);
    }
    if (rc == 0)
        rc = ota_merkle_edge_root(got, &a->edge);
    if (rc == 0 && (a->edge.size != cp->size || !ota_ct_equal(got, cp->root, sizeof(got)))) {
        ota_detail_set(det, "the %" PRIu64 " logged entries do not hash to the checkpoint root",
                       cp->size);
        rc = OTA_ERR_PROOF;
    }
    if (rc == 0) {
        cli_printf(stdout,
                   "ledger %s: %" PRIu64 " entries, root matches, log signature and %zu "
                   "cosignature(s) verify, quorum met, index files agree\n",
                   cp->origin, cp->size, res->ncounted);
        for (size_t i = 0; i < res->nwitnesses; i++) {
            if (res->witnesses[i].cosigned && ctx->now - (int64_t)res->witnesses[i].time > max_age)
                cli_warn("cosignature by %s is older than max_age (%" PRId64 "s): run repo "
                         "refresh",
                         p->witnesses[i].name, max_age);
        }
    }
    ota_note_free(note);
    ota_buf_free(&raw);
    ota_buf_free(&rootb);
    ota_tuf_meta_free(root);
    ota_tlog_policy_free(p);
    free(cp);
    free(a);
    free(res);
    return rc;
}

/* ----------------------------------------------------------------- proof */

/* The online signer's log key as an ota_seq_sign_fn. */
static int log_sign(void *ctx, struct ota_buf *note, const char *text, size_t len,
                    struct ota_detail *det)
{
    struct ota_repo_signer *s = ctx;

    return s->ops->log_sign(s, note, text, len, det);
}

int cmd_ledger_proof(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"index", CLI_VAL, 0, {0}}, {"from", CLI_VAL, 0, {0}}};
    struct cli_args args;
    struct ota_repo_store *store = NULL;
    struct ota_repo_signer *signer = NULL;
    struct ota_log_store *log = NULL;
    struct ota_buf out;
    uint64_t v = 0;
    int rc = cli_parse(opts, 2, &args, 1, 1, argc, argv, det);

    ota_buf_init(&out, OTA_TLOG_PROOF_MAX_LEN);
    if (rc == 0 && opts[0].n + opts[1].n != 1) {
        ota_detail_set(det, "give exactly one of --index I and --from A");
        rc = CLI_ERR_USAGE;
    }
    if (rc == 0 &&
        cli_parse_u64(&v, cli_val(opts[0].n ? &opts[0] : &opts[1]), OTA_CHECKPOINT_MAX_SIZE) != 0) {
        ota_detail_set(det, "--%s: expected a decimal number", opts[0].n ? "index" : "from");
        rc = CLI_ERR_USAGE;
    }
    if (rc == 0)
        rc = ota_repo_files_open(&store, args.pos[0], ctx->hook, det);
    if (rc == 0)
        rc = ota_repo_keys_open(&signer, args.pos[0], ctx->hook, det);
    if (rc == 0)
        rc = store->ops->log(store, &log, false, det);
    if (rc == 0 && log == NULL) {
        ota_detail_set(det, "%s: nothing logged yet (repo publish)", args.pos[0]);
        rc = OTA_ERR_NOT_FOUND;
    }
    if (rc == 0)
        rc = opts[0].n ? ota_seq_proof_index(&out, log, v, det)
                       : ota_seq_proof_from(&out, log, v, log_sign, signer, det);
    if (rc == 0)
        fwrite(out.data, 1, out.len, stdout);
    ota_repo_signer_close(signer);
    ota_repo_store_close(store);
    ota_buf_free(&out);
    return rc;
}

/* --------------------------------------------------------------- monitor */

struct monitor {
    const struct src *s;
    struct ota_tuf_meta *root; /* newest root (trusted chain): its policy verifies the checkpoint */
    const uint8_t *anchor;     /* the trusted root's bytes: the log's first root */
    size_t anchor_len;
    struct ota_ledger_rules rules; /* the release rules, over every entry seen */
    bool bad;                      /* an entry broke the rules: later ones are not judged */
    int first_err;
    struct ota_detail bad_det;
    /* The tree seen so far, extended by every new entry: its root must be
     * the new checkpoint's, which proves both the entries and that the
     * new tree extends the old one (no split view, no rewritten past). */
    struct ota_merkle_edge edge;
};

/* The file of a logged entry as published, into b (no check: the rules
 * check it against the record). */
static int logged_file(struct ota_buf *b, const struct monitor *m,
                       const struct ota_ledger_entry *le, struct ota_detail *det)
{
    char rel[64];
    int rc;

    snprintf(rel, sizeof(rel), "metadata/%" PRIu64 ".%s.json", le->version,
             ota_tuf_role_name(le->role));
    rc = src_get(b, m->s, rel, META_MAX, det);
    if (rc == OTA_ERR_NOT_FOUND) {
        /* Logged but never live: kept in the staging area for good
         * (docs/formats/ledger.md). */
        snprintf(rel, sizeof(rel), "staging/metadata/%" PRIu64 ".%s.json", le->version,
                 ota_tuf_role_name(le->role));
        rc = src_get(b, m->s, rel, META_MAX, det);
    }
    return rc;
}

static void print_signers(const struct ota_tuf_meta *md, const struct ota_tuf_meta *root)
{
    bool any = false;

    cli_printf(stdout, " signed by");
    for (size_t i = 0; i < md->nsigs; i++) {
        if (md->sigs[i].well_formed) {
            const struct ota_tuf_key *k =
                root != NULL ? ota_tuf_find_key(root, md->sigs[i].keyid) : NULL;

            cli_printf(stdout, "%s %.8s%s", any ? "," : "", md->sigs[i].keyid,
                       k != NULL ? "" : " (unknown key)");
            any = true;
        }
    }
    cli_printf(stdout, "%s\n", any ? "" : " nobody");
}

static void flag(struct monitor *m, int rc, const struct ota_detail *d)
{
    if (!m->bad) {
        m->first_err = rc;
        m->bad_det = *d;
    }
    m->bad = true;
}

/* The releases targets version md adds (targets absent from the version
 * before it), with who signed them; and who signed when the latest
 * logged root's threshold is not met. */
static void print_targets(const struct monitor *m, const struct ota_tuf_meta *md,
                          const struct ota_tuf_meta *root, bool below)
{
    struct ota_tuf_meta *prev = NULL;
    struct ota_buf pb;
    char rel[64];

    ota_buf_init(&pb, 1);
    snprintf(rel, sizeof(rel), "metadata/%" PRIu64 ".targets.json", md->version - 1);
    if (md->version > 1 && src_get(&pb, m->s, rel, META_MAX, NULL) == 0 &&
        ota_tuf_parse(&prev, pb.data, pb.len, OTA_TUF_TARGETS, NULL) != 0)
        prev = NULL;
    ota_buf_free(&pb);
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        const char *prod = json_string_value(json_object_get(t->custom, "product"));
        const char *ver = json_string_value(json_object_get(t->custom, "version"));

        if (prod == NULL || ver == NULL ||
            (prev != NULL && ota_tuf_find_target(prev, t->path) != NULL))
            continue;
        cli_printf(stdout, "targets v%" PRIu64 ": %s %s (%s),", md->version, prod, ver, t->path);
        print_signers(md, root);
    }
    if (below) {
        cli_printf(stdout,
                   "targets v%" PRIu64 ": NOT signed by the expected keys of root v%" PRIu64 ":",
                   md->version, root != NULL ? root->version : 0);
        print_signers(md, root);
    }
    ota_tuf_meta_free(prev);
}

/* One entry: printed, then judged by the release rules (the same engine
 * as the validating witness: include/otachain/ledger_rules.h). */
static int monitor_entry(void *ctx, uint64_t index, const uint8_t *e, size_t len,
                         struct ota_detail *det)
{
    struct monitor *m = ctx;
    struct ota_ledger_entry le;
    struct ota_tuf_meta *md = NULL;
    struct ota_tuf_meta *root = NULL;
    struct ota_detail d = {{0}};
    struct ota_buf b;
    uint8_t leaf[OTA_MERKLE_HASH_LEN];
    bool need_file = true;
    int rc = ota_merkle_leaf_hash(leaf, e, len);

    if (rc == 0)
        rc = ota_merkle_edge_append(&m->edge, leaf, NULL);
    if (rc == 0)
        rc = ota_ledger_entry_parse(&le, e, len, det);
    if (rc != 0)
        return rc;
    ota_buf_init(&b, 1);
    cli_printf(stdout, "entry %" PRIu64 ": %s v%" PRIu64 "\n", index, ota_tuf_role_name(le.role),
               le.version);
    if (m->bad) {
        ota_buf_free(&b);
        return 0;
    }
    rc = ota_ledger_rules_precheck(&m->rules, index, &le, &need_file, &d);
    if (rc == 0 && need_file) {
        rc = logged_file(&b, m, &le, &d);
        if (rc != 0)
            ota_detail_prefix(&d, "the file of a logged entry");
    }
    /* The latest logged root before this entry: whose keys sign it. */
    if (rc == 0 && m->rules.root != NULL &&
        ota_tuf_parse(&root, m->rules.root, m->rules.root_len, OTA_TUF_ROOT, NULL) != 0)
        root = NULL;
    if (rc == 0 && le.role == OTA_TUF_TARGETS &&
        ota_tuf_parse(&md, b.data, b.len, OTA_TUF_TARGETS, NULL) == 0 && md->version == le.version)
        print_targets(m, md, root,
                      root != NULL && ota_tuf_verify_role(md, root, OTA_TUF_TARGETS, NULL) != 0);
    if (rc == 0)
        rc = ota_ledger_rules_check(&m->rules, index, &le, need_file ? b.data : NULL,
                                    need_file ? b.len : 0, m->anchor, m->anchor_len, &d);
    if (rc == OTA_ERR_NOMEM) {
        *det = d;
    } else if (rc != 0) {
        flag(m, rc, &d);
        rc = 0;
    }
    ota_tuf_meta_free(md);
    ota_tuf_meta_free(root);
    ota_buf_free(&b);
    return rc;
}

static int state_path(char out[PATH_MAX], const char *dir, const char *name)
{
    return snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

/* The rules' state saved by an earlier pass (state/rules.json), if any. */
static int load_rules(struct ota_ledger_rules *rules, const char *path, struct ota_detail *det)
{
    uint8_t *d = NULL;
    size_t l = 0;
    json_t *doc = NULL;
    const struct ota_json_limits lim = {OTA_TUF_ROOT_MAX_LEN * 2, 8, 0, 1};
    int rc = ota_fs_read(&d, &l, path, OTA_TUF_ROOT_MAX_LEN * 2);

    memset(rules, 0, sizeof(*rules));
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc == 0)
        rc = ota_json_parse(&doc, d, l, &lim, det);
    if (rc == 0)
        rc = ota_ledger_rules_from_json(rules, doc, det);
    if (rc != 0)
        ota_detail_prefix(det, path);
    json_decref(doc);
    free(d);
    return rc;
}

/* Saves the edge, the latest logged root and the rules' state (a clean
 * pass only). */
static int save_state(const struct monitor *m, const char *edgep, const char *rootp,
                      const char *rulesp)
{
    uint8_t enc[OTA_MERKLE_EDGE_ENC_MAX];
    size_t n = 0;
    json_t *doc = json_object();
    char *text = NULL;
    int rc = doc == NULL ? OTA_ERR_NOMEM : ota_merkle_edge_encode(enc, &n, &m->edge);

    if (rc == 0)
        rc = ota_fs_replace(edgep, enc, n, 0600, NULL);
    if (rc == 0 && m->rules.root != NULL)
        rc = ota_fs_replace(rootp, m->rules.root, m->rules.root_len, 0600, NULL);
    if (rc == 0)
        rc = ota_ledger_rules_to_json(doc, &m->rules);
    if (rc == 0) {
        text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
        rc = text == NULL ? OTA_ERR_NOMEM : ota_fs_replace(rulesp, text, strlen(text), 0600, NULL);
    }
    free(text);
    json_decref(doc);
    return rc;
}

int cmd_ledger_monitor(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"url", CLI_VAL | CLI_REQ, 0, {0}},
                             {"trusted-root", CLI_VAL | CLI_REQ, 0, {0}},
                             {"state", CLI_VAL, 0, {0}},
                             {"once", 0, 0, {0}},
                             CLI_HTTP_OPTS};
    struct cli_args args;
    struct src s;
    struct monitor *m = calloc(1, sizeof(*m));
    const char *state = NULL;
    uint8_t *anchor = NULL;
    size_t anchor_len = 0;
    char rootp[PATH_MAX];
    char sizep[PATH_MAX]; /* the edge of the tree seen (merkle.h encoding) */
    char rulesp[PATH_MAX];
    int rc = m == NULL
                 ? OTA_ERR_NOMEM
                 : cli_parse(opts, sizeof(opts) / sizeof(opts[0]), &args, 0, 0, argc, argv, det);

    if (rc == 0)
        rc = src_set(&s, NULL, cli_val(&opts[0]), &opts[4], ctx, det);
    state = cli_val(&opts[2]);
    if (rc == 0 && state != NULL) {
        rc = ota_fs_mkdirs(state, 0700, NULL);
        if (rc == 0)
            rc = state_path(rootp, state, "root.json");
        if (rc == 0)
            rc = state_path(sizep, state, "edge");
        if (rc == 0)
            rc = state_path(rulesp, state, "rules.json");
    }
    if (m != NULL) {
        m->s = &s;
        ota_merkle_edge_init(&m->edge);
    }
    /* The log's first root is the trusted root, byte for byte (R3). */
    if (rc == 0) {
        rc = ota_fs_read(&anchor, &anchor_len, cli_val(&opts[1]), META_MAX);
        if (rc != 0)
            ota_detail_set(det, "--trusted-root %s", cli_val(&opts[1]));
        m->anchor = anchor;
        m->anchor_len = anchor_len;
    }
    if (rc == 0 && state != NULL)
        rc = load_rules(&m->rules, rulesp, det);
    /* The latest root seen (state) or the trusted root, then follow. */
    if (rc == 0)
        rc = walk_roots(&m->root, &s,
                        state != NULL && access(rootp, F_OK) == 0 ? rootp : cli_val(&opts[1]), det);
    while (rc == 0) {
        struct ota_buf raw;
        struct ota_note *note = NULL;
        struct ota_checkpoint *cp = calloc(1, sizeof(*cp));
        struct ota_tlog_policy *p = NULL;
        struct ota_tlog_policy_result *res = calloc(1, sizeof(*res));
        uint64_t from = 0;
        int64_t max_age = 0;

        ota_buf_init(&raw, 1);
        if (cp == NULL || res == NULL)
            rc = OTA_ERR_NOMEM;
        /* A state without the rules' part (an older monitor) starts over. */
        if (rc == 0 && m->edge.size == 0 && state != NULL && access(rulesp, F_OK) == 0) {
            uint8_t *d = NULL;
            size_t l = 0;
            int r2 = ota_fs_read(&d, &l, sizep, OTA_MERKLE_EDGE_ENC_MAX);

            if (r2 == 0)
                rc = ota_merkle_edge_decode(&m->edge, d, l, det);
            else if (r2 != OTA_ERR_NOT_FOUND)
                rc = r2;
            free(d);
        }
        from = m->edge.size;
        ota_http_round_start(&s.http); /* each poll is a round */
        if (rc == 0)
            rc = get_checkpoint(&note, cp, &raw, &s, det);
        if (rc == 0)
            rc = ota_publish_policy_of(&p, &max_age, m->root, det);
        if (rc == 0 && p == NULL) {
            ota_detail_set(det, "root v%" PRIu64 " carries no ledger", m->root->version);
            rc = OTA_ERR_NOT_FOUND;
        }
        if (rc == 0)
            rc = ota_tlog_policy_verify(res, note, p, ctx->now, INT64_MAX / 4, INT64_MAX / 4, det);
        if (rc == 0 && cp->size < from) {
            ota_detail_set(det,
                           "checkpoint size %" PRIu64 " is below the %" PRIu64
                           " already seen: the log lost entries",
                           cp->size, from);
            rc = OTA_ERR_ROLLBACK;
        }
        if (rc == 0)
            cli_printf(stdout, "checkpoint %s size %" PRIu64 "\n", cp->origin, cp->size);
        if (rc == 0 && cp->size > from)
            rc = for_entries(&s, from, cp->size, monitor_entry, m, det);
        if (rc == 0) {
            uint8_t root[OTA_MERKLE_HASH_LEN];

            rc = ota_merkle_edge_root(root, &m->edge);
            if (rc == 0 && !ota_ct_equal(root, cp->root, sizeof(root))) {
                ota_detail_set(det,
                               "the checkpoint of size %" PRIu64
                               " does not extend the tree seen (size %" PRIu64
                               "): split view or rewritten history",
                               cp->size, from);
                rc = OTA_ERR_PROOF;
            }
        }
        /* Progress is saved only up to a clean pass. */
        if (rc == 0 && !m->bad && state != NULL)
            rc = save_state(m, sizep, rootp, rulesp);
        ota_note_free(note);
        ota_buf_free(&raw);
        ota_tlog_policy_free(p);
        free(cp);
        free(res);
        if (rc == 0 && m->bad) {
            *det = m->bad_det;
            rc = m->first_err;
        }
        if (rc != 0 || opts[3].n > 0)
            break;
        fflush(stdout);
        sleep(MONITOR_SLEEP_S);
    }
    if (m != NULL) {
        ota_tuf_meta_free(m->root);
        ota_ledger_rules_free(&m->rules);
    }
    free(anchor);
    free(m);
    return rc;
}

int cmd_ledger_key(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det)
{
    struct cli_opt opts[] = {{"origin", 0, 0, {0}}};
    struct cli_args args;
    struct repo r;
    const struct ota_tuf_meta *root;
    char vkey[OTA_NOTE_VKEY_SIZE];
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
    int rc = cli_parse(opts, 1, &args, 1, 1, argc, argv, det);

    if (rc != 0)
        return rc;
    rc = repo_open(&r, args.pos[0], 0, ctx, det);
    if (rc != 0)
        return rc;
    /* The pending root when there is one: right after init, before the
     * first publish, is when the witnesses need the key. */
    root = ota_repo_next_root(&r.lib);
    if (root == NULL) {
        ota_detail_set(det, "%s has no root (pending or published)", r.dir);
        rc = OTA_ERR_NOT_FOUND;
    }
    if (rc == 0)
        rc = ota_ledger_log_key(vkey, origin, root, det);
    if (rc == 0)
        cli_printf(stdout, "%s\n", opts[0].n > 0 ? origin : vkey);
    repo_close(&r);
    return rc;
}
