/* otachain-server: the repository host and the device API over mutual
 * TLS (docs/server.md, docs/api/).
 *
 *   otachain-server [--config FILE] [--set SECTION.KEY=VALUE]...
 *   otachain-server token create --name NAME --scope S[,S...] [config options]
 *   otachain-server token list [config options]
 *   otachain-server token revoke ID [config options]
 *
 * main() loads the configuration and the test hooks, checks the
 * databases, and hands over to server.c; the token verbs work offline
 * against the database (the first token must come from somewhere).
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "otachain/fleet.h"
#include "otachain/test_hooks.h"
#include "server.h"

#ifndef OTACHAIN_VERSION
#define OTACHAIN_VERSION "0.0.0-dev"
#endif

#define EXIT_REFUSED 1 /* a start-up check failed (log_rollback, schema) */
#define EXIT_USAGE   2
#define EXIT_ENV     3

#define MAX_SETS 64

/* Every global of the program (STYLE rule 7). */
static struct {
    struct ota_test_hooks hooks;
    struct srv_config cfg;
    struct srv_log log;
    struct srv srv;
    struct ota_log_store *ledger;
} g;

static const char usage_text[] =
    "usage: otachain-server [--config FILE] [--set SECTION.KEY=VALUE]...\n"
    "       otachain-server token create --name NAME --scope SCOPE[,SCOPE...] [config options]\n"
    "       otachain-server token list [config options]\n"
    "       otachain-server token revoke ID [config options]\n"
    "       otachain-server --help | --version\n"
    "\n"
    "Serves the repository directory [server] repository (its public/ layout),\n"
    "the device API v1 (mutual TLS) and the admin API v1 with /metrics, on three\n"
    "listeners (docs/api/, docs/server.md). Runs in the foreground until SIGTERM\n"
    "(stops accepting, answers the requests in flight for up to shutdown_timeout\n"
    "seconds, exits 0); SIGHUP reopens the log file and rereads the repository.\n"
    "\n"
    "token create makes an admin API token in the database (offline: the first\n"
    "token is made this way) and prints it once; SCOPE: read, release, rollout,\n"
    "admin. token list prints the tokens (never their secrets); token revoke ID\n"
    "refuses a token from its next request on.\n"
    "\n"
    "Configuration: an INI file (--config), then environment variables\n"
    "OTACHAIN_SERVER_<SECTION>_<KEY>, then --set flags, each overriding the one\n"
    "before. Keys:\n";

static const char exit_text[] =
    "\nExit status: 0 clean shutdown; 1 refused to start (log database older than\n"
    "what was published, database schema newer than this server); 2 usage or\n"
    "configuration error; 3 I/O, database, TLS or network (bind) error.\n";

static void fail(int rc, const struct ota_detail *det)
{
    fprintf(stderr, "otachain-server: %s: %s%s%s\n", ota_errname(rc), ota_strerror(rc),
            det->msg[0] ? ": " : "", det->msg);
}

static int exit_of(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == OTA_ERR_LOG_ROLLBACK || rc == OTA_ERR_SCHEMA)
        return EXIT_REFUSED;
    if (rc == OTA_ERR_FORMAT || rc == OTA_ERR_INVALID_ARG || rc == OTA_ERR_TOO_LARGE)
        return EXIT_USAGE;
    return EXIT_ENV;
}

/* Open files: one per connection, so the soft limit goes to the hard one
 * (the connection caps are counted by the server itself). */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

struct args {
    const char *config;
    const char *sets[MAX_SETS];
    size_t nsets;
    const char *verb; /* NULL: serve */
    const char *name;
    const char *scope;
    const char *id;
};

static int parse_args(struct args *a, int argc, char **argv, struct ota_detail *det)
{
    int i = 1;

    memset(a, 0, sizeof(*a));
    if (argc > 1 && strcmp(argv[1], "token") == 0) {
        if (argc < 3 || (strcmp(argv[2], "create") != 0 && strcmp(argv[2], "list") != 0 &&
                         strcmp(argv[2], "revoke") != 0)) {
            ota_detail_set(det, "token create | list | revoke");
            return OTA_ERR_INVALID_ARG;
        }
        a->verb = argv[2];
        i = 3;
    }
    for (; i < argc; i++) {
        const char *o = argv[i];
        const char **dst = NULL;

        if (strcmp(o, "--config") == 0)
            dst = &a->config;
        else if (strcmp(o, "--name") == 0 && a->verb != NULL)
            dst = &a->name;
        else if (strcmp(o, "--scope") == 0 && a->verb != NULL)
            dst = &a->scope;
        else if (strcmp(o, "--set") == 0) {
            if (a->nsets == MAX_SETS || i + 1 >= argc) {
                ota_detail_set(det, "--set needs SECTION.KEY=VALUE (at most %d)", MAX_SETS);
                return OTA_ERR_INVALID_ARG;
            }
            a->sets[a->nsets++] = argv[++i];
            continue;
        } else if (o[0] != '-' && a->verb != NULL && strcmp(a->verb, "revoke") == 0 &&
                   a->id == NULL) {
            a->id = o;
            continue;
        } else {
            ota_detail_set(det, "unexpected argument '%s' (otachain-server --help)", o);
            return OTA_ERR_INVALID_ARG;
        }
        if (*dst != NULL || i + 1 >= argc) {
            ota_detail_set(det, "%s needs one value, given once", o);
            return OTA_ERR_INVALID_ARG;
        }
        *dst = argv[++i];
    }
    if (a->verb != NULL && strcmp(a->verb, "create") == 0 &&
        (a->name == NULL || a->scope == NULL)) {
        ota_detail_set(det, "token create needs --name and --scope");
        return OTA_ERR_INVALID_ARG;
    }
    if (a->verb != NULL && strcmp(a->verb, "revoke") == 0 && a->id == NULL) {
        ota_detail_set(det, "token revoke needs the token id");
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

static int print_token(void *ctx, const struct ota_fleet_token *t)
{
    char scopes[64];
    char created[24];
    char revoked[24];

    (void)ctx;
    ota_fleet_scopes_format(scopes, sizeof(scopes), t->scopes);
    ota_time_text(created, t->created);
    ota_time_text(revoked, t->revoked);
    printf("%s  %-16s  %-28s  created %s by %s%s%s\n", t->id, t->name, scopes, created,
           t->created_by, t->revoked ? "  revoked " : "", t->revoked ? revoked : "");
    return 0;
}

/* The token verbs, offline against the database. */
static int token_verb(const struct args *a, struct ota_detail *det)
{
    struct ota_fleet_store *s = NULL;
    int64_t now = ota_clock_now(&g.hooks.clock);
    int rc = ota_fleet_store_sqlite_open(
        &s, g.cfg.database, g.cfg.sync_normal ? OTA_FLEET_SYNC_NORMAL : OTA_FLEET_SYNC_FULL, det);

    if (rc != 0)
        return rc;
    if (strcmp(a->verb, "list") == 0) {
        rc = s->ops->token_list(s, print_token, NULL, det);
    } else {
        char text[OTA_FLEET_TOKEN_TEXT_MAX + 1] = "";
        struct ota_fleet_token t;
        struct ota_fleet_audit au;
        unsigned scopes = 0;

        memset(&au, 0, sizeof(au));
        au.at = now;
        snprintf(au.actor, sizeof(au.actor), "cli");
        snprintf(au.outcome, sizeof(au.outcome), "ok");
        if (strcmp(a->verb, "create") == 0) {
            if (ota_fleet_scopes_parse(&scopes, a->scope) != 0) {
                ota_detail_set(det, "--scope: a comma-separated list of read, release, rollout, "
                                    "admin");
                rc = OTA_ERR_INVALID_ARG;
            }
            if (rc == 0)
                rc = ota_fleet_token_new(text, &t, a->name, scopes, now, "cli", det);
            snprintf(au.action, sizeof(au.action), "token.create");
            snprintf(au.object, sizeof(au.object), "%s", t.id);
            ota_fleet_scopes_format(au.detail, sizeof(au.detail), scopes);
        } else {
            snprintf(au.action, sizeof(au.action), "token.revoke");
            snprintf(au.object, sizeof(au.object), "%.16s", a->id);
        }
        if (rc == 0)
            rc = s->ops->begin(s, det);
        if (rc == 0) {
            if (strcmp(a->verb, "create") == 0)
                rc = s->ops->token_put(s, &t, det);
            else
                rc = s->ops->token_revoke(s, a->id, now, det);
            if (rc == 0)
                rc = s->ops->audit_add(s, &au, det);
            if (rc == 0)
                rc = s->ops->commit(s, det);
            else
                s->ops->rollback(s);
        }
        if (rc == 0 && text[0])
            printf("%s\n", text);
        else if (rc == 0)
            printf("revoked %s\n", a->id);
        ota_wipe(text, sizeof(text));
    }
    ota_fleet_store_close(s);
    return rc;
}

static int serve(struct ota_detail *det)
{
    struct ota_fleet_store *store = NULL;
    struct srv *s = &g.srv;
    int rc;

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    /* glibc gives memory back to the kernel (madvise) whenever a thread
     * arena's top grows past the trim threshold; with two threads handing
     * requests to each other that happens per request and flushes the
     * TLB of every CPU (measured: 40 % of the server's time). Keep up to
     * 64 MiB instead. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    if (evthread_use_pthreads() != 0) {
        ota_detail_set(det, "libevent without thread support");
        return OTA_ERR_IO;
    }
    s->cfg = &g.cfg;
    s->clock = &g.hooks.clock;
    s->fs_hook = ota_test_hooks_fs(&g.hooks);
    s->log = &g.log;
    rc = srv_repo_open(&s->repo, g.cfg.repository, det);
    if (rc != 0) {
        ota_detail_prefix(det, "repository");
        return rc;
    }
    rc = srv_repo_check_log(&g.ledger, &s->repo, det);
    if (rc != 0)
        return rc;
    rc = ota_fleet_store_sqlite_open(
        &store, g.cfg.database, g.cfg.sync_normal ? OTA_FLEET_SYNC_NORMAL : OTA_FLEET_SYNC_FULL,
        det);
    if (rc != 0)
        return rc;
    if (g.cfg.renew_ca_cert != NULL) {
        rc = ota_ca_load(&s->renew_ca, g.cfg.renew_ca_cert, g.cfg.renew_ca_key, det);
        if (rc != 0) {
            ota_fleet_store_close(store);
            ota_detail_prefix(det, "[device] renew_ca");
            return rc;
        }
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        ota_fleet_store_close(store);
        return OTA_ERR_NOMEM;
    }
    rc = srv_db_start(&s->db, s->base, store, (unsigned)g.cfg.db_queue,
                      (unsigned)g.cfg.group_commit_max, &s->metrics, &g.log, det);
    if (rc != 0) {
        ota_fleet_store_close(store);
        return rc;
    }
    s->ledger = g.ledger;
    rc = srv_db_start(&s->io, s->base, NULL, 256, 1, &s->metrics, &g.log, det);
    if (rc == 0) {
        size_t n = strlen(g.cfg.repository) + sizeof("/blobs");
        s->blob_dir = malloc(n);
        if (s->blob_dir == NULL)
            rc = OTA_ERR_NOMEM;
        else
            snprintf(s->blob_dir, n, "%s/blobs", g.cfg.repository);
    }
    if (rc == 0)
        rc = srv_start(s, det);
    if (rc == 0) {
        struct srv_repo_state *st = srv_repo_get(&s->repo);
        atomic_store(&s->metrics.ledger_size, st->has_checkpoint ? st->checkpoint->size : 0);
        srv_log(&g.log, "info", "started",
                "version=%s repository=%s database=%s root=%llu targets=%llu releases=%zu "
                "ledger=%llu test_hooks=%s",
                OTACHAIN_VERSION, g.cfg.repository, g.cfg.database,
                (unsigned long long)st->root_version, (unsigned long long)st->targets_version,
                st->nreleases, st->has_checkpoint ? (unsigned long long)st->checkpoint->size : 0,
                ota_test_hooks_built() ? "built" : "off");
        srv_repo_put(st);
        srv_maintenance(s, true, true);
        rc = srv_run(s);
        srv_log(&g.log, "info", "stopped", "in_flight=%llu", (unsigned long long)s->inflight);
    }
    srv_stop(s);
    srv_db_stop(s->io);
    srv_db_stop(s->db);
    free(s->blob_dir);
    event_base_free(s->base);
    return rc;
}

int main(int argc, char **argv)
{
    struct ota_detail det;
    struct args a;
    int rc;

    det.msg[0] = '\0';
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        srv_config_print_keys(stdout);
        fputs(exit_text, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("otachain-server %s\n", OTACHAIN_VERSION);
        return 0;
    }
    rc = parse_args(&a, argc, argv, &det);
    if (rc == 0)
        rc = ota_test_hooks_load(&g.hooks, &det);
    if (rc == 0)
        rc = srv_config_load(&g.cfg, a.config, a.sets, a.nsets, &det);
    if (rc != 0) {
        fail(rc, &det);
        return EXIT_USAGE;
    }
    if (a.verb != NULL) {
        rc = token_verb(&a, &det);
    } else {
        rc = srv_log_open(&g.log, g.cfg.log_file, &g.hooks.clock, &det);
        if (rc == 0) {
            rc = serve(&det);
            if (rc != 0)
                srv_log(&g.log, "error", "exit", "error=%s", ota_errname(rc));
        }
    }
    if (rc != 0)
        fail(rc, &det);
    srv_repo_close(&g.srv.repo);
    ota_ca_free(g.srv.renew_ca);
    ota_log_store_close(g.ledger);
    if (g.log.f != NULL)
        srv_log_close(&g.log);
    srv_config_free(&g.cfg);
    return exit_of(rc);
}
