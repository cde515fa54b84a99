/* otachain-witness: a C2SP tlog-witness v1 daemon that keeps the latest
 * checkpoint of each log it witnesses, cosigns only consistent growth
 * (and, in validating mode, only releases that keep the rules), and
 * persists its state before answering (docs/witness.md).
 *
 *   otachain-witness --init --config FILE   create the key, print the vkey
 *   otachain-witness --config FILE          serve POST /add-checkpoint
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "otachain/fsutil.h"
#include "otachain/note_sign.h"
#include "otachain/test_hooks.h"
#include "remote.h"
#include "server.h"
#include "witness.h"

#ifndef OTACHAIN_VERSION
#define OTACHAIN_VERSION "0.0.0-dev"
#endif

/* Exit statuses (docs/witness.md). */
#define EXIT_USAGE 2 /* bad arguments or configuration */
#define EXIT_ENV   3 /* key, state, network, TLS or I/O failure */

#define LOCK_NAME "lock"

static const char usage_text[] =
    "usage: otachain-witness --init --config FILE\n"
    "       otachain-witness --config FILE\n"
    "       otachain-witness --help | --version\n"
    "\n"
    "--init creates the witness key in [witness] key_file (a C2SP signed-note\n"
    "signer key of type 0x04, cosignature/v1, named [witness] name; mode 0600,\n"
    "refused if the file exists) and the state directory, and prints the\n"
    "verifier key (name+hash+base64) on standard output.\n"
    "\n"
    "Without --init, serves C2SP tlog-witness v1 POST /add-checkpoint on\n"
    "[witness] listen and port (HTTPS, TLS 1.3 only, when tls_cert and tls_key\n"
    "are set) for the logs of the [log NAME] sections, until SIGTERM or SIGINT.\n"
    "A log with tiles_url, repo_url and anchor is validated: its new entries and\n"
    "the metadata they name are fetched and checked before cosigning.\n"
    "One line per request on standard error.\n"
    "\n"
    "Exit status: 0 clean shutdown or key created, 2 usage or configuration\n"
    "error, 3 key, state, network, TLS or I/O error. See docs/witness.md.\n";

/* Every global of the program (STYLE rule 7). */
static struct {
    struct ota_test_hooks hooks; /* clock and fault injection (test builds only) */
    struct wit_config cfg;
    struct ota_note_signer *signer;
    struct wit_remote *remote;
    struct wit_ctx ctx;
    struct wit_server *server;
    int lock_fd;
} g = {.lock_fd = -1};

static void fail(int rc, const struct ota_detail *det)
{
    fprintf(stderr, "otachain-witness: %s: %s%s%s\n", ota_errname(rc), ota_strerror(rc),
            det->msg[0] ? ": " : "", det->msg);
}

/* Directory part of path ("." when there is none), in a new string. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, slash == NULL ? "." : path, n);
    d[n] = '\0';
    return d;
}

static int cmd_init(struct ota_detail *det)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    char vkey[OTA_NOTE_VKEY_SIZE];
    struct ota_buf text;
    char *dir;
    int rc;

    rc = ota_fs_mkdirs(g.cfg.state_dir, 0700, NULL);
    if (rc != 0) {
        ota_detail_set(det, "state directory %s", g.cfg.state_dir);
        return rc;
    }
    dir = dir_of(g.cfg.key_file);
    if (dir == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_fs_mkdirs(dir, 0700, NULL);
    free(dir);
    if (rc != 0) {
        ota_detail_set(det, "directory of %s", g.cfg.key_file);
        return rc;
    }
    rc = ota_note_signer_generate(&s, g.cfg.name, g.cfg.name_len, OTA_NOTE_TYPE_COSIG_V1);
    if (rc != 0)
        return rc;
    ota_buf_init(&text, OTA_NOTE_SKEY_MAX_LEN + 2);
    rc = ota_note_signer_format(&text, s);
    if (rc == 0)
        rc = ota_buf_append(&text, "\n", 1);
    if (rc == 0)
        rc = ota_fs_create(g.cfg.key_file, text.data, text.len, 0600, ota_test_hooks_fs(&g.hooks));
    if (rc != 0)
        ota_detail_set(det, "key file %s: %s", g.cfg.key_file, ota_strerror(rc));
    ota_buf_free(&text); /* wipes the secret */
    if (rc == 0) {
        ota_note_signer_verifier(&v, s);
        ota_note_verifier_format(vkey, &v);
        printf("%s\n", vkey);
    }
    ota_note_signer_free(s);
    return rc;
}

/* Reads the witness key: a regular file, not a symlink, not readable by
 * group or others, holding one signer key of type 0x04 named as the
 * config says. */
static int load_key(struct ota_detail *det)
{
    const char *path = g.cfg.key_file;
    struct ota_note_verifier v;
    uint8_t *text = NULL;
    size_t len = 0;
    size_t n;
    int rc = ota_fs_read_secret(&text, &len, path, OTA_NOTE_SKEY_MAX_LEN + 1);

    if (rc == OTA_ERR_PERMISSION) {
        ota_detail_set(det, "key file %s: must be a regular file of mode 0600 or stricter", path);
        return rc;
    }
    if (rc != 0) {
        ota_detail_set(det, "key file %s: %s (create it with --init)", path, ota_strerror(rc));
        return rc;
    }
    n = len > 0 && text[len - 1] == '\n' ? len - 1 : len;
    rc = ota_note_signer_parse(&g.signer, (const char *)text, n, det);
    ota_wipe(text, len);
    free(text);
    if (rc != 0) {
        ota_detail_prefix(det, path);
        return rc;
    }
    ota_note_signer_verifier(&v, g.signer);
    if (v.type != OTA_NOTE_TYPE_COSIG_V1 || strcmp(v.name, g.cfg.name) != 0) {
        ota_detail_set(det, "key file %s: not a cosignature/v1 key named '%s' (the [witness] name)",
                       path, g.cfg.name);
        return OTA_ERR_KEY_FORMAT;
    }
    return 0;
}

/* One witness per state directory: the lock is held for the process's
 * life (witness.h W3 needs a single writer). */
static int lock_state(struct ota_detail *det)
{
    size_t n = strlen(g.cfg.state_dir) + sizeof("/" LOCK_NAME);
    char *path = malloc(n);
    int rc;

    if (path == NULL)
        return OTA_ERR_NOMEM;
    snprintf(path, n, "%s/%s", g.cfg.state_dir, LOCK_NAME);
    rc = ota_fs_lock(&g.lock_fd, path, 0600);
    if (rc == OTA_ERR_LOCKED)
        ota_detail_set(det, "%s: another otachain-witness uses this state directory", path);
    else if (rc != 0)
        ota_detail_set(det, "%s: %s (run --init first?)", path, strerror(errno));
    free(path);
    return rc;
}

/* Removes the temporary files of state writes a crash interrupted
 * (ota_fs_replace's names): the lock is held, so no other writer owns
 * them. The state files themselves are whole (state.h S2). */
static void remove_stale_temps(void)
{
    size_t n = 0;

    if (ota_fs_remove_temps(g.cfg.state_dir, &n, ota_test_hooks_fs(&g.hooks)) == 0 && n > 0)
        fprintf(stderr,
                "otachain-witness: removed %zu temporary file(s) left in %s by an interrupted "
                "write\n",
                n, g.cfg.state_dir);
}

static int cmd_serve(struct ota_detail *det)
{
    bool validating = false;
    int rc;

    rc = load_key(det);
    if (rc == 0)
        rc = lock_state(det);
    if (rc == 0)
        remove_stale_temps();
    for (size_t i = 0; i < g.cfg.nlogs; i++)
        validating = validating || g.cfg.logs[i].validating;
    if (rc == 0 && validating)
        rc = wit_remote_new(&g.remote, g.cfg.connect_timeout_s, g.cfg.fetch_timeout_s,
                            g.cfg.fetch_ca_file, g.hooks.clock.now != NULL ? &g.hooks.clock : NULL,
                            det);
    if (rc != 0)
        return rc;
    g.ctx.cfg = &g.cfg;
    g.ctx.signer = g.signer;
    g.ctx.remote = g.remote;
    g.ctx.hook = ota_test_hooks_fs(&g.hooks);
    g.ctx.clock = &g.hooks.clock;
    rc = wit_ctx_load(&g.ctx, det);
    if (rc != 0)
        return rc;
    rc = wit_server_new(&g.server, &g.cfg, &g.ctx, det);
    if (rc != 0)
        return rc;
    fprintf(stderr, "otachain-witness: listening on %s://%s:%u as %s (%zu logs)\n",
            g.cfg.tls_cert ? "https" : "http", g.cfg.listen, wit_server_port(g.server), g.cfg.name,
            g.cfg.nlogs);
    fflush(stderr);
    rc = wit_server_run(g.server);
    fprintf(stderr, "otachain-witness: stopped\n");
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool init = false;
    struct ota_detail det;
    int rc;
    int status;

    det.msg[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("otachain-witness %s\n", OTACHAIN_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--init") == 0 && !init) {
            init = true;
        } else if (strcmp(argv[i], "--config") == 0 && config == NULL && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0 && config == NULL) {
            config = argv[i] + 9;
        } else {
            fprintf(stderr, "otachain-witness: bad argument '%s'\n%s", argv[i], usage_text);
            return EXIT_USAGE;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "otachain-witness: --config FILE is required\n%s", usage_text);
        return EXIT_USAGE;
    }
    rc = ota_test_hooks_load(&g.hooks, &det);
    if (rc == 0)
        rc = wit_config_load(&g.cfg, config, &det);
    if (rc != 0) {
        fail(rc, &det);
        return rc == OTA_ERR_NOT_FOUND || rc == OTA_ERR_IO || rc == OTA_ERR_PERMISSION ? EXIT_ENV
                                                                                       : EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        wit_config_free(&g.cfg);
        fprintf(stderr, "otachain-witness: curl_global_init failed\n");
        return EXIT_ENV;
    }
    rc = init ? cmd_init(&det) : cmd_serve(&det);
    status = 0;
    if (rc != 0) {
        fail(rc, &det);
        status = EXIT_ENV;
    }
    if (fflush(stdout) != 0)
        status = EXIT_ENV;
    wit_server_free(g.server);
    wit_ctx_free(&g.ctx);
    wit_remote_free(g.remote);
    ota_note_signer_free(g.signer);
    if (g.lock_fd >= 0)
        close(g.lock_fd);
    wit_config_free(&g.cfg);
    curl_global_cleanup();
    return status;
}
