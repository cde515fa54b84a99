/* otachain-agent: the device daemon (docs/agent.md). A thin program over
 * the agent core (include/otachain/agent.h): configuration, verbs,
 * printing, the poll loop and systemd notification. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "otachain/agent.h"
#include "otachain/audit.h"
#include "otachain/bootloader.h"
#include "otachain/checkpoint.h"
#include "otachain/chunk_index.h"
#include "otachain/cjson.h"
#include "otachain/journal.h"
#include "otachain/test_hooks.h"
#include "otachain/tuf.h"
#include "otachain/tuf_client.h"

#ifndef OTACHAIN_VERSION
#define OTACHAIN_VERSION "0.0.0"
#endif

#define EXIT_USAGE 2

/* The program's globals (STYLE rule 7). */
static struct {
    struct ota_test_hooks hooks;
    volatile sig_atomic_t stop;
    bool tty;
    int progress_shown; /* percent on the terminal's progress line; -1: no line open */
    int64_t last_watchdog_ms;
    int64_t watchdog_ms; /* half of WATCHDOG_USEC, 0: none */
} g;

static const char usage[] =
    "usage: otachain-agent [--config FILE] VERB [options]\n"
    "\n"
    "The device agent: verifies releases (TUF, the witnessed ledger, the\n"
    "release rules), installs them into the inactive slot, reboots, and\n"
    "commits or rolls back (docs/agent.md).\n"
    "\n"
    "verbs:\n"
    "  run [--once]      at boot: finish a pending trial (health check, commit or\n"
    "                    roll back), then check for updates now and every\n"
    "                    poll_interval (+ random jitter); --once: one round, then exit\n"
    "  update --now      check and install now, with progress on the terminal\n"
    "  status [--json]   what runs, what is pending, the last outcome, trusted\n"
    "                    metadata versions, floors, the bootloader's state\n"
    "  audit [--json] [--chunks N|all]\n"
    "                    re-hash chunks of the running slot against its index\n"
    "                    (16 random chunks by default)\n"
    "\n"
    "options:\n"
    "  --config FILE     configuration (default " AGENT_DEFAULT_CONFIG ")\n"
    "  --help, --version\n"
    "\n"
    "exit: 0 done (or nothing to do), 1 refused or failed (the error line names\n"
    "why), 2 usage or configuration, 3 network.\n";

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ systemd */

static void sd_notify_msg(const char *msg)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t n;
    int fd;

    if (sock == NULL || (sock[0] != '/' && sock[0] != '@'))
        return;
    n = strlen(sock);
    if (n >= sizeof(sa.sun_path))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
}

/* Fed from progress: every log line of a long step, and the poll loop. */
static void watchdog_feed(void)
{
    int64_t now;

    if (g.watchdog_ms == 0)
        return;
    now = mono_ms();
    if (now - g.last_watchdog_ms >= g.watchdog_ms) {
        sd_notify_msg("WATCHDOG=1");
        g.last_watchdog_ms = now;
    }
}

/* The transfers' clock: the program's clock, read by libcurl's progress
 * callback while a transfer runs (the slow-retrieval rules abort one that
 * stalls), so the watchdog is fed while a download makes progress. */
static int64_t transfer_now(void *ctx)
{
    (void)ctx;
    watchdog_feed();
    return ota_clock_now(&g.hooks.clock);
}

/* ------------------------------------------------------------- output */

/* The image's progress: feeds the watchdog (a long download is progress,
 * not a hang) and, on a terminal, keeps one line up to date. */
static void progress(void *ctx, uint64_t written, uint64_t total)
{
    int pct = total == 0 ? 100 : (int)(written * 100 / total);

    (void)ctx;
    watchdog_feed();
    if (!g.tty || pct == g.progress_shown)
        return;
    fprintf(stderr, "\r           image: %3d%% (%" PRIu64 " of %" PRIu64 " KiB written)", pct,
            written / 1024, total / 1024);
    g.progress_shown = pct;
}

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    if (g.tty && g.progress_shown >= 0) {
        fputc('\n', stderr); /* end the progress line */
        g.progress_shown = -1;
    }
    if (g.tty) {
        time_t t = time(NULL);
        struct tm tm;
        char ts[16] = "";

        if (localtime_r(&t, &tm) != NULL)
            strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        fprintf(stderr, "[%s] %s\n", ts, msg);
    } else {
        fprintf(stderr, "otachain-agent: %s\n", msg);
    }
    watchdog_feed();
}

static int exit_code(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == OTA_ERR_CONFIG || rc == OTA_ERR_INVALID_ARG)
        return EXIT_USAGE;
    if (rc == OTA_ERR_NETWORK)
        return 3;
    return 1;
}

static int report_error(int rc, const struct ota_detail *det)
{
    fprintf(stderr, "otachain-agent: %s: %s%s%s\n", ota_errname(rc), ota_strerror(rc),
            det->msg[0] != '\0' ? ": " : "", det->msg);
    return exit_code(rc);
}

/* ---------------------------------------------------------- the setup */

struct agent {
    struct agent_config cfg;
    struct ota_bootloader *boot;
    struct ota_source *source;
    struct ota_agent_cfg acfg;
    uint8_t *root;
    size_t root_len;
    char tuf_dir[PATH_MAX];
    const char *slot_names[OTA_AGENT_MAX_SLOTS];
    struct ota_clock transfer_clock;
};

static void agent_close(struct agent *a)
{
    ota_source_free(a->source);
    ota_bootloader_free(a->boot);
    free(a->root);
    agent_config_free(&a->cfg);
}

static int agent_open(struct agent *a, const char *config, bool with_source, struct ota_detail *det)
{
    struct ota_bootloader_cfg bcfg;
    int rc;

    memset(a, 0, sizeof(*a));
    a->transfer_clock.now = transfer_now;
    rc = agent_config_load(&a->cfg, config, det);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < a->cfg.nslots; i++)
        a->slot_names[i] = a->cfg.slot_name[i];
    memset(&bcfg, 0, sizeof(bcfg));
    bcfg.backend = a->cfg.backend;
    bcfg.path = strcmp(a->cfg.backend, "uboot") == 0 ? a->cfg.fw_env_config : a->cfg.state_file;
    bcfg.slot_var = a->cfg.slot_variable;
    bcfg.slots = a->slot_names;
    bcfg.nslots = a->cfg.nslots;
    bcfg.hook = ota_test_hooks_fs(&g.hooks);
    rc = ota_bootloader_new(&a->boot, &bcfg, det);
    if (rc == 0 && snprintf(a->tuf_dir, sizeof(a->tuf_dir), "%s/tuf", a->cfg.state_dir) >=
                       (int)sizeof(a->tuf_dir))
        rc = OTA_ERR_INVALID_ARG;
    if (rc == 0 && with_source) {
        struct ota_mirror_cfg mcfg;

        rc = ota_fs_read(&a->root, &a->root_len, a->cfg.root, OTA_TUF_ROOT_MAX_LEN);
        if (rc != 0)
            ota_detail_set(det, "bootstrap root %s", a->cfg.root);
        memset(&mcfg, 0, sizeof(mcfg));
        mcfg.urls = (const char *const *)a->cfg.mirrors;
        mcfg.nurls = a->cfg.nmirrors;
        mcfg.tuf_dir = a->tuf_dir;
        mcfg.bootstrap_root = a->root;
        mcfg.bootstrap_len = a->root_len;
        mcfg.ca_file = a->cfg.ca_file;
        mcfg.client_cert = a->cfg.device_cert;
        mcfg.client_key = a->cfg.device_key;
        mcfg.clock = &g.hooks.clock;
        mcfg.transfer_clock = &a->transfer_clock;
        mcfg.hook = ota_test_hooks_fs(&g.hooks);
        mcfg.log = log_line;
        mcfg.progress = progress;
        if (rc == 0)
            rc = ota_fs_mkdirs(a->tuf_dir, 0700, NULL);
        if (rc == 0 && a->cfg.server != NULL) {
            const char *url = a->cfg.server;

            mcfg.urls = &url;
            mcfg.nurls = 1;
            rc = ota_source_server_new(&a->source, &mcfg, det);
        } else if (rc == 0) {
            rc = ota_source_mirror_new(&a->source, &mcfg, det);
        }
    }
    if (rc != 0) {
        agent_close(a);
        return rc;
    }
    a->acfg.state_dir = a->cfg.state_dir;
    a->acfg.product = a->cfg.product;
    a->acfg.hardware = a->cfg.hardware;
    a->acfg.factory_version = a->cfg.factory_version;
    for (unsigned i = 0; i < a->cfg.nslots; i++) {
        a->acfg.slots[i].name = a->cfg.slot_name[i];
        a->acfg.slots[i].device = a->cfg.slot_device[i];
    }
    a->acfg.nslots = a->cfg.nslots;
    a->acfg.cmdline_path = a->cfg.cmdline;
    a->acfg.reboot_command = a->cfg.reboot_command;
    a->acfg.reboot_timeout_ms = a->cfg.reboot_timeout * 1000u;
    a->acfg.pre_install.path = a->cfg.pre_install;
    a->acfg.post_install.path = a->cfg.post_install;
    a->acfg.health_check.path = a->cfg.health_check;
    a->acfg.pre_install.timeout_ms = a->cfg.hook_timeout * 1000u;
    a->acfg.post_install.timeout_ms = a->cfg.hook_timeout * 1000u;
    a->acfg.health_check.timeout_ms = a->cfg.hook_timeout * 1000u;
    a->acfg.boot = a->boot;
    a->acfg.source = a->source;
    a->acfg.clock = &g.hooks.clock;
    a->acfg.hook = ota_test_hooks_fs(&g.hooks);
    a->acfg.log = log_line;
    return 0;
}

/* ----------------------------------------------------------- run/update */

static void on_signal(int sig)
{
    (void)sig;
    g.stop = 1;
}

/* Waits seconds (interrupted by SIGTERM), feeding the watchdog. The
 * seconds are the program's clock's: the monotonic clock, or the clock a
 * test injected (test_hooks.h), so that a test moves the daemon through
 * its poll interval by advancing the clock instead of waiting. */
static void pause_for(uint32_t seconds)
{
    int64_t end = mono_ms() + (int64_t)seconds * 1000;
    int64_t start = g.hooks.clock.now != NULL ? ota_clock_now(&g.hooks.clock) : OTA_TIME_NONE;

    while (!g.stop) {
        struct timespec ts = {1, 0};

        if (start != OTA_TIME_NONE) {
            int64_t now = ota_clock_now(&g.hooks.clock);

            if (now != OTA_TIME_NONE && now - start >= (int64_t)seconds)
                return;
            ts.tv_sec = 0;
            ts.tv_nsec = 50 * 1000000L;
        } else if (mono_ms() >= end) {
            return;
        }
        nanosleep(&ts, NULL);
        watchdog_feed();
    }
}

static uint32_t jitter(uint32_t max)
{
    uint32_t r = 0;

    if (max == 0 || getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return 0;
    return r % (max + 1);
}

static void print_action(enum ota_agent_action act)
{
    if (act != OTA_ACTION_NONE)
        log_line(NULL, ota_agent_action_name(act));
}

/* Seconds until the next round: the server's (jitter included), else the
 * configured interval plus a random jitter. */
static uint32_t next_round_in(const struct agent *a)
{
    if (a->source->poll_interval != 0)
        return a->source->poll_interval;
    return a->cfg.poll_interval +
           jitter(a->cfg.poll_jitter != 0 ? a->cfg.poll_jitter : a->cfg.poll_interval / 10);
}

static int cmd_run(struct agent *a, bool once, bool interactive)
{
    struct ota_journal j;
    struct ota_detail det = {{0}};
    enum ota_agent_action act;
    const char *wd = getenv("WATCHDOG_USEC");
    bool ready = false;
    int rc;

    if (wd != NULL) {
        uint64_t us = strtoull(wd, NULL, 10);

        g.watchdog_ms = (int64_t)(us / 2000);
        g.last_watchdog_ms = mono_ms();
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    /* Start-up check of the bootloader environment: say why no update
     * can be armed, but keep running (the current slot is fine). */
    rc = a->boot->check(a->boot->ctx, &det);
    if (rc != 0)
        fprintf(stderr, "otachain-agent: warning: updates cannot be armed: %s: %s: %s\n",
                ota_errname(rc), ota_strerror(rc), det.msg);
    for (;;) {
        uint32_t wait;

        det.msg[0] = '\0';
        rc = ota_agent_start(&act, &j, &a->acfg, &det);
        if (rc == 0 || act == OTA_ACTION_WAIT_REBOOT)
            break;
        /* The start failed (a journal that cannot be loaded, a booted
         * slot the kernel command line does not name, a state directory
         * that cannot be written, a bootloader environment that cannot be
         * read or written during a trial): fail closed without a restart
         * loop. The running slot keeps running, a trial in progress is
         * ended by the bootloader's own boot limit, and the start is tried
         * again each poll interval, so a repair is picked up without a
         * restart (docs/agent.md, "Troubleshooting"). */
        (void)report_error(rc, &det);
        if (once || interactive)
            return exit_code(rc);
        if (!ready) {
            sd_notify_msg("READY=1");
            ready = true;
        }
        wait = next_round_in(a);
        if (rc == OTA_ERR_JOURNAL)
            /* Nothing is written: the start wrote nothing and reported the
             * error to the server. */
            fprintf(stderr,
                    "otachain-agent: not updating, not touching the bootloader or the journal "
                    "until %s/%s is repaired (docs/agent.md, Troubleshooting); reading it again "
                    "in %" PRIu32 " s\n",
                    a->cfg.state_dir, OTA_JOURNAL_FILE, wait);
        else
            fprintf(stderr,
                    "otachain-agent: start-up failed (%s): not updating; the running slot keeps "
                    "running; trying again in %" PRIu32 " s\n",
                    ota_errname(rc), wait);
        pause_for(wait);
        if (g.stop)
            return 0;
    }
    print_action(act);
    if (!ready)
        sd_notify_msg("READY=1");
    if (act == OTA_ACTION_REBOOTING) {
        if (once || interactive)
            return 0;
        while (!g.stop)
            pause_for(3600);
        return 0;
    }
    for (;;) {
        det.msg[0] = '\0';
        rc = ota_agent_round(&act, &j, &a->acfg, &det);
        print_action(act);
        if (rc != 0) {
            int code = report_error(rc, &det);

            if (once || interactive)
                return code;
        } else if (interactive && act == OTA_ACTION_NONE) {
            printf("up to date: %s on slot %s\n", j.installed.version, j.installed.slot);
        }
        if (once || interactive || act == OTA_ACTION_REBOOTING)
            return 0;
        pause_for(next_round_in(a));
        if (g.stop)
            return 0;
    }
}

/* -------------------------------------------------------------- status */

static uint64_t trusted_version(const struct agent *a, const char *file)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    uint64_t v = 0;
    const struct ota_json_limits lim = {OTA_TUF_ROOT_MAX_LEN * 16, OTA_JSON_MAX_DEPTH, 0, 1};

    if (snprintf(path, sizeof(path), "%s/%s", a->tuf_dir, file) >= (int)sizeof(path) ||
        ota_fs_read(&data, &len, path, lim.max_bytes) != 0)
        return 0;
    if (ota_json_parse(&doc, data, len, &lim, NULL) == 0) {
        json_int_t n =
            json_integer_value(json_object_get(json_object_get(doc, "signed"), "version"));
        v = n > 0 ? (uint64_t)n : 0;
    }
    json_decref(doc);
    free(data);
    return v;
}

static json_t *release_json(const struct ota_journal_release *r)
{
    char hex[OTA_SHA256_HEX_LEN + 1];

    ota_hex_encode(hex, r->sha256, OTA_SHA256_LEN);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "slot", r->slot, "version", r->version,
                     "target", r->target, "sha256", r->length != 0 ? hex : "", "length",
                     (json_int_t)r->length, "security_version", (json_int_t)r->security_version);
}

/* Everything that does not come from the journal is shown even when the
 * journal cannot be loaded (then its fields are null or "unknown", its
 * error is shown, and the exit status is 1): exactly then the operator
 * needs the bootloader's state, the booted slot and the trusted versions. */
static int cmd_status(struct agent *a, bool as_json)
{
    struct ota_journal j;
    struct ota_boot_state e;
    struct ota_detail jdet = {{0}}, bdet = {{0}}, sdet = {{0}};
    unsigned booted = 0;
    int brc, src, jrc = ota_journal_load(&j, a->cfg.state_dir, &jdet);
    const char *roles[] = {"root.json", "timestamp.json", "snapshot.json", "targets.json"};
    uint64_t versions[4];
    bool ok = jrc == 0;
    struct ota_detail fdet = {{0}};
    char floor_text[OTA_TIME_TEXT_LEN];
    int64_t floor = 0;
    int frc;

    brc = a->boot->get(a->boot->ctx, &e, &bdet);
    if (brc == 0)
        brc = a->boot->check(a->boot->ctx, &bdet);
    src = ota_agent_booted_slot(&booted, &a->acfg, &sdet);
    for (int i = 0; i < 4; i++)
        versions[i] = trusted_version(a, roles[i]);
    /* The time floor: the build time, or the time a quorum of witnesses
     * last vouched for (what a replay must not go below). */
    frc = ota_tuf_state_time_floor(&floor, a->tuf_dir, 0, &fdet);
    ota_time_text(floor_text, floor);
    if (as_json) {
        json_t *o = json_object();
        json_t *tv = json_pack("{s:I, s:I, s:I, s:I}", "root", (json_int_t)versions[0], "timestamp",
                               (json_int_t)versions[1], "snapshot", (json_int_t)versions[2],
                               "targets", (json_int_t)versions[3]);
        json_t *bl = brc == 0
                         ? json_pack("{s:s, s:s, s:b, s:i, s:i, s:s}", "backend", a->boot->name,
                                     "slot", e.slot, "trial", e.trial, "attempts", (int)e.attempts,
                                     "limit", (int)e.limit, "error", "")
                         : json_pack("{s:s, s:s, s:s}", "backend", a->boot->name, "error",
                                     ota_errname(brc), "detail", bdet.msg);
        char *text;

        json_object_set_new(o, "product", json_string(a->cfg.product));
        json_object_set_new(o, "hardware", json_string(a->cfg.hardware));
        json_object_set_new(o, "booted_slot",
                            src == 0 ? json_string(a->cfg.slot_name[booted]) : json_null());
        json_object_set_new(o, "phase",
                            ok ? json_string(ota_journal_phase_name(j.phase)) : json_null());
        if (!ok)
            json_object_set_new(o, "installed", json_null());
        else if (j.installed.slot[0] != '\0')
            json_object_set_new(o, "installed", release_json(&j.installed));
        if (!ok)
            json_object_set_new(o, "pending", json_null());
        else if (j.phase != OTA_PHASE_IDLE)
            json_object_set_new(o, "pending", release_json(&j.pending));
        json_object_set_new(o, "security_floor",
                            ok ? json_integer((json_int_t)j.security_floor) : json_null());
        json_object_set_new(o, "blocked", ok ? json_integer((json_int_t)j.nblocked) : json_null());
        json_object_set_new(o, "last",
                            ok ? json_pack("{s:s, s:s, s:s, s:s, s:b}", "result",
                                           ota_journal_outcome_name(j.outcome), "version",
                                           j.outcome_version, "error", j.outcome_error, "detail",
                                           j.outcome_detail, "reported", j.reported)
                               : json_null());
        json_object_set_new(
            o, "journal_error",
            ok ? json_null()
               : json_pack("{s:s, s:s}", "error", ota_errname(jrc), "detail", jdet.msg));
        json_object_set_new(o, "trusted", tv);
        json_object_set_new(
            o, "time_floor",
            frc == 0 ? json_pack("{s:I, s:s}", "seconds", (json_int_t)floor, "utc", floor_text)
                     : json_pack("{s:s, s:s}", "error", ota_errname(frc), "detail", fdet.msg));
        json_object_set_new(o, "bootloader", bl);
        json_object_set_new(o, "mirrors", json_integer((json_int_t)a->cfg.nmirrors));
        json_object_set_new(o, "server",
                            a->cfg.server != NULL ? json_string(a->cfg.server) : json_null());
        text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(o);
        if (text == NULL)
            return 1;
        printf("%s\n", text);
        free(text);
    } else {
        printf("device:        %s / %s\n", a->cfg.product, a->cfg.hardware);
        printf("running:       slot %s\n", src == 0 ? a->cfg.slot_name[booted] : "(unknown)");
        if (a->cfg.server != NULL)
            printf("source:        update server %s\n", a->cfg.server);
        else
            printf("source:        %u mirror(s), from %s\n", a->cfg.nmirrors, a->cfg.mirrors[0]);
        if (!ok) {
            printf("journal:       %s: %s\n", ota_errname(jrc), jdet.msg);
            printf("installed:     unknown (the journal cannot be read)\n");
            printf("pending:       unknown\n");
            printf("security floor: unknown\n");
        } else {
            printf("installed:     %s on slot %s\n",
                   j.installed.version[0] != '\0' ? j.installed.version : "(no journal yet)",
                   j.installed.slot[0] != '\0' ? j.installed.slot : "-");
            if (j.phase != OTA_PHASE_IDLE)
                printf("pending:       %s into slot %s (%s)\n", j.pending.version, j.pending.slot,
                       ota_journal_phase_name(j.phase));
            else
                printf("pending:       nothing\n");
            if (j.outcome != OTA_OUTCOME_NONE)
                printf("last update:   %s %s%s%s%s%s\n", ota_journal_outcome_name(j.outcome),
                       j.outcome_version, j.outcome_error[0] != '\0' ? " (" : "", j.outcome_error,
                       j.outcome_error[0] != '\0' ? ")" : "", j.reported ? ", reported" : "");
            printf("security floor: %" PRIu64 "\n", j.security_floor);
            printf("failed here:   %u release(s), not retried automatically\n", j.nblocked);
        }
        printf("trusted:       root v%" PRIu64 ", timestamp v%" PRIu64 ", snapshot v%" PRIu64
               ", targets v%" PRIu64 "\n",
               versions[0], versions[1], versions[2], versions[3]);
        if (frc == 0)
            printf("time floor:    %s (nothing vouched for before it, less the freshness "
                   "window, is accepted)\n",
                   floor_text);
        else
            printf("time floor:    %s: %s\n", ota_errname(frc), fdet.msg);
        if (brc == 0)
            printf("bootloader:    %s: boots slot %s%s (attempts %u of %u)\n", a->boot->name,
                   e.slot, e.trial ? " on trial" : "", e.attempts, e.limit);
        else
            printf("bootloader:    %s: %s: %s (updates cannot be armed)\n", a->boot->name,
                   ota_errname(brc), bdet.msg);
    }
    fflush(stdout);
    return ok ? 0 : report_error(jrc, &jdet);
}

/* --------------------------------------------------------------- audit */

/* The installed release's chunk index: named by the trusted targets
 * (custom.index of the installed image target), kept by the install in
 * <state>/download/<index-sha256>.cidx, checked against that hash. */
static int installed_index(struct ota_chunk_index **out, const struct agent *a,
                           const struct ota_journal *j, struct ota_detail *det)
{
    char path[PATH_MAX], hex[OTA_SHA256_HEX_LEN + 1];
    uint8_t *data = NULL, got[OTA_SHA256_LEN];
    size_t len = 0;
    struct ota_tuf_meta *md = NULL;
    const struct ota_tuf_target *t, *it;
    const char *ipath;
    int rc;

    *out = NULL;
    if (j->installed.target[0] == '\0') {
        ota_detail_set(det, "the installed release %s is not a signed target known here yet",
                       j->installed.version);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    if (snprintf(path, sizeof(path), "%s/targets.json", a->tuf_dir) >= (int)sizeof(path))
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_read(&data, &len, path, OTA_TUF_TARGETS_MAX_LEN);
    if (rc == 0)
        rc = ota_tuf_parse(&md, data, len, OTA_TUF_TARGETS, det);
    free(data);
    data = NULL;
    if (rc != 0) {
        ota_detail_prefix(det, path);
        return rc;
    }
    t = ota_tuf_find_target(md, j->installed.target);
    ipath = t != NULL && t->custom != NULL ? json_string_value(json_object_get(t->custom, "index"))
                                           : NULL;
    it = ipath != NULL ? ota_tuf_find_target(md, ipath) : NULL;
    if (it == NULL) {
        ota_detail_set(det, "%s: no chunk index for %s", path, j->installed.target);
        ota_tuf_meta_free(md);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    ota_hex_encode(hex, it->sha256, OTA_SHA256_LEN);
    if (snprintf(path, sizeof(path), "%s/download/%s.cidx", a->cfg.state_dir, hex) >=
        (int)sizeof(path)) {
        ota_tuf_meta_free(md);
        return OTA_ERR_INVALID_ARG;
    }
    rc = ota_fs_read(&data, &len, path, OTA_CHUNK_INDEX_MAX_LEN);
    if (rc == 0)
        rc = ota_sha256(got, data, len);
    if (rc == 0 && !ota_ct_equal(got, it->sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "%s does not match the signed index", path);
        rc = OTA_ERR_HASH_MISMATCH;
    }
    ota_tuf_meta_free(md);
    if (rc == 0)
        rc = ota_chunk_index_parse(out, data, len, det);
    if (rc != 0)
        ota_detail_prefix(det, path);
    free(data);
    return rc;
}

static int cmd_audit(struct agent *a, bool as_json, uint32_t n)
{
    struct ota_journal j;
    struct ota_chunk_index *idx = NULL;
    struct ota_audit_report rep = {0};
    struct ota_detail det = {{0}};
    unsigned booted = 0;
    int fd = -1, rc = ota_journal_load(&j, a->cfg.state_dir, &det);

    if (rc == 0)
        rc = ota_agent_booted_slot(&booted, &a->acfg, &det);
    if (rc == 0 && strcmp(a->cfg.slot_name[booted], j.installed.slot) != 0) {
        ota_detail_set(&det, "running slot %s is not the installed slot %s",
                       a->cfg.slot_name[booted], j.installed.slot);
        rc = OTA_ERR_SLOT_UNKNOWN;
    }
    if (rc == 0)
        rc = installed_index(&idx, a, &j, &det);
    if (rc == 0) {
        fd = open(a->cfg.slot_device[booted], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ota_detail_set(&det, "%s: %s", a->cfg.slot_device[booted], strerror(errno));
            rc = ota_fs_errno(errno);
        }
    }
    if (rc == 0)
        rc = ota_audit_run(&rep, fd, idx, n, ota_audit_random_system, NULL, &det);
    if (fd >= 0)
        close(fd);
    if (as_json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s}", "slot", j.installed.slot, "version",
                      j.installed.version, "result", rc == 0 ? "ok" : "bad", "checked",
                      rc == 0 || rc == OTA_ERR_HASH_MISMATCH ? (int)rep.checked : 0, "bytes",
                      (json_int_t)(rc == 0 ? rep.bytes : 0), "error",
                      rc == 0 ? "" : ota_errname(rc), "detail", det.msg);
        char *text;

        if (o != NULL && rc == OTA_ERR_HASH_MISMATCH)
            json_object_set_new(o, "bad_offset", json_integer((json_int_t)rep.bad_offset));
        text = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(o);
    } else if (rc == 0) {
        printf("slot %s (%s): %" PRIu32 " chunk check%s (%s of %" PRIu32 " chunks, %" PRIu64
               " bytes): all match the signed index\n",
               j.installed.slot, j.installed.version, rep.checked, rep.checked == 1 ? "" : "s",
               n >= idx->count ? "every one" : "random draws", idx->count, rep.bytes);
    }
    ota_chunk_index_free(idx);
    if (rc == OTA_ERR_HASH_MISMATCH && !as_json)
        ota_detail_set(&det,
                       "slot %s: chunk %" PRIu32 " at offset %" PRIu64
                       " does not match the signed index",
                       j.installed.slot, rep.bad_chunk, rep.bad_offset);
    return rc != 0 ? report_error(rc, &det) : 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    const char *config = AGENT_DEFAULT_CONFIG;
    struct ota_detail det = {{0}};
    struct agent a;
    const char *verb;
    bool once = false, now = false, as_json = false;
    uint32_t chunks = 16;
    int i = 1, rc;

    g.tty = isatty(STDERR_FILENO) == 1;
    g.progress_shown = -1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("otachain-agent %s%s\n", OTACHAIN_VERSION,
                   ota_test_hooks_built() ? " (test hooks)" : "");
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
            continue;
        }
        break;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    verb = argv[i++];
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0 && strcmp(verb, "run") == 0)
            once = true;
        else if (strcmp(argv[i], "--now") == 0 && strcmp(verb, "update") == 0)
            now = true;
        else if (strcmp(argv[i], "--json") == 0 &&
                 (strcmp(verb, "status") == 0 || strcmp(verb, "audit") == 0))
            as_json = true;
        else if (strcmp(argv[i], "--chunks") == 0 && i + 1 < argc && strcmp(verb, "audit") == 0) {
            uint64_t v;

            i++;
            if (strcmp(argv[i], "all") == 0) {
                chunks = UINT32_MAX;
            } else if (ota_checkpoint_parse_u64(&v, argv[i], strlen(argv[i]), UINT32_MAX) != 0 ||
                       v == 0) {
                fprintf(stderr, "otachain-agent: --chunks: a count of 1..%u, or all\n", UINT32_MAX);
                return EXIT_USAGE;
            } else {
                chunks = (uint32_t)v;
            }
        } else {
            fprintf(stderr, "otachain-agent: %s: unknown option %s\n%s", verb, argv[i], usage);
            return EXIT_USAGE;
        }
    }
    if (strcmp(verb, "update") == 0 && !now) {
        fprintf(stderr, "otachain-agent: update needs --now (the daemon polls by itself)\n");
        return EXIT_USAGE;
    }
    if (strcmp(verb, "run") != 0 && strcmp(verb, "update") != 0 && strcmp(verb, "status") != 0 &&
        strcmp(verb, "audit") != 0) {
        fprintf(stderr, "otachain-agent: unknown verb %s\n%s", verb, usage);
        return EXIT_USAGE;
    }
    rc = ota_test_hooks_load(&g.hooks, &det);
    if (rc != 0)
        return report_error(rc, &det);
    rc = agent_open(&a, config, strcmp(verb, "run") == 0 || strcmp(verb, "update") == 0, &det);
    if (rc != 0)
        return report_error(rc, &det);
    if (strcmp(verb, "run") == 0)
        rc = cmd_run(&a, once, false);
    else if (strcmp(verb, "update") == 0)
        rc = cmd_run(&a, true, true);
    else if (strcmp(verb, "status") == 0)
        rc = cmd_status(&a, as_json);
    else
        rc = cmd_audit(&a, as_json, chunks);
    agent_close(&a);
    return rc;
}
