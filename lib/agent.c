/* The device agent's state machine (agent.h).
 *
 * Phases are those of the install journal (journal.h); B is the slot the
 * kernel command line says is running, E the bootloader's state
 * (slot, trial), S the slot being installed, O the installed slot.
 *
 *              round: source offers R (verified, newer, allowed)
 *   ┌──────┐  ───────────────────────────────────────────►  ┌──────────┐
 *   │ IDLE │                                                │ FETCHING │ pre-install hook,
 *   └──────┘ ◄───── commit: E := (S, no trial), then        └──────────┘ R written into S,
 *     ▲  ▲          installed := R, floor raised                 │       re-read: SHA-256 = R's,
 *     │  │                                                       ▼       post-install hook
 *     │  │  boot: B = S, E.trial, health check ok        ┌───────────┐
 *     │  └───────────────────────────────────────────────│ INSTALLED │
 *     │                                                  └───────────┘
 *     │                                                       │ E := (S, trial)
 *     │     boot: B = O, E = (O, no trial):                   ▼
 *     │     the bootloader fell back (R blocked)         ┌───────┐  reboot command
 *     ├──────────────────────────────────────────────────│ ARMED │ ───────────► reboot
 *     │                                                  └───────┘
 *     │                                                       │ boot: B = S, health check fails
 *     │     boot: B = O, E = (O, no trial)                    ▼
 *     │     (rolled back; R blocked)                ┌──────────────┐  E := (O, no trial),
 *     └─────────────────────────────────────────────│ ROLLING_BACK │  reboot
 *                                                   └──────────────┘
 *
 * Invariants:
 *  1. Nothing is written to S before the journal says FETCHING with S, and
 *     S is never the slot that runs (B) nor the installed one (O).
 *  2. The bootloader is armed for S only after the journal says INSTALLED,
 *     which is written only after S was re-read from the medium (page
 *     cache dropped) and hashed to R's signed SHA-256.
 *  3. Every journal change is one atomic replacement, made before the
 *     side effect it announces (FETCHING, ROLLING_BACK) or after the one
 *     it records (INSTALLED, ARMED, IDLE after a commit); each step is
 *     safe to redo, so a power cut anywhere leaves a state from which
 *     start-up finishes the job: the decision is taken from (journal, B,
 *     E), never from the journal alone.
 *  4. A trial is confirmed (E := (S, no trial)) only after the health
 *     check passed on B = S; the floor is raised and installed := R only
 *     after that confirmation. E = (S, no trial) with B = S therefore
 *     means "confirmed", whatever the journal says.
 *  5. A release that failed its trial (rolled back or fallen back) is
 *     blocked by its SHA-256 and never offered again automatically.
 *  6. The booted slot comes from the kernel command line only, never from
 *     the bootloader environment.
 */
#include "otachain/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/hooks.h"
#include "otachain/output.h"

#define CMDLINE_MAX (8u * 1024)

static const char *const action_names[] = {"none",        "rebooting", "committed",
                                           "rolled_back", "fell_back", "wait_reboot"};

const char *ota_agent_action_name(enum ota_agent_action a)
{
    return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a] : "?";
}

void ota_source_free(struct ota_source *s)
{
    if (s == NULL)
        return;
    if (s->destroy != NULL)
        s->destroy(s->ctx);
    free(s);
}

static void logf_(const struct ota_agent_cfg *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(const struct ota_agent_cfg *cfg, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    if (cfg->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg->log(cfg->log_ctx, msg);
}

/* ------------------------------------------------------- booted slot */

static int slot_index(const struct ota_agent_cfg *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->nslots; i++)
        if (strcmp(cfg->slots[i].name, name) == 0)
            return (int)i;
    return -1;
}

int ota_agent_booted_slot(unsigned *index, const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0, i = 0;
    int found_root = -1;
    int rc = ota_fs_read(&data, &len, cfg->cmdline_path, CMDLINE_MAX);

    *index = 0;
    if (rc != 0) {
        ota_detail_set(det, "kernel command line %s: %s", cfg->cmdline_path, ota_errname(rc));
        return OTA_ERR_SLOT_UNKNOWN;
    }
    while (i < len) {
        const char *tok;
        size_t n = 0;

        while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t'))
            i++;
        tok = (const char *)data + i;
        while (i < len && data[i] != ' ' && data[i] != '\n' && data[i] != '\t') {
            i++;
            n++;
        }
        if (n > 14 && memcmp(tok, "otachain.slot=", 14) == 0) {
            int k = -1;

            for (unsigned s = 0; s < cfg->nslots; s++)
                if (strlen(cfg->slots[s].name) == n - 14 &&
                    memcmp(cfg->slots[s].name, tok + 14, n - 14) == 0)
                    k = (int)s;
            if (k < 0) {
                ota_detail_set(det, "%s: otachain.slot=%.*s is not a configured slot",
                               cfg->cmdline_path, (int)(n - 14 > 40 ? 40 : n - 14), tok + 14);
                free(data);
                return OTA_ERR_SLOT_UNKNOWN;
            }
            free(data);
            *index = (unsigned)k;
            return 0;
        }
        if (n > 5 && memcmp(tok, "root=", 5) == 0)
            for (unsigned k = 0; k < cfg->nslots; k++)
                if (strlen(cfg->slots[k].device) == n - 5 &&
                    memcmp(cfg->slots[k].device, tok + 5, n - 5) == 0)
                    found_root = (int)k;
    }
    free(data);
    if (found_root < 0) {
        ota_detail_set(det, "%s names no configured slot (otachain.slot= or root=)",
                       cfg->cmdline_path);
        return OTA_ERR_SLOT_UNKNOWN;
    }
    *index = (unsigned)found_root;
    return 0;
}

/* ----------------------------------------------------------- helpers */

static int64_t now_of(const struct ota_agent_cfg *cfg)
{
    return ota_clock_now(cfg->clock);
}

static int store(const struct ota_journal *j, const struct ota_agent_cfg *cfg,
                 struct ota_detail *det)
{
    return ota_journal_store(j, cfg->state_dir, cfg->hook, det);
}

static void set_outcome(struct ota_journal *j, const struct ota_agent_cfg *cfg,
                        enum ota_journal_outcome o, const struct ota_journal_release *r, int err,
                        const char *detail)
{
    j->outcome = o;
    snprintf(j->outcome_version, sizeof(j->outcome_version), "%s", r->version);
    snprintf(j->outcome_target, sizeof(j->outcome_target), "%s", r->target);
    snprintf(j->outcome_error, sizeof(j->outcome_error), "%s", err != 0 ? ota_errname(err) : "");
    snprintf(j->outcome_detail, sizeof(j->outcome_detail), "%s", detail != NULL ? detail : "");
    j->outcome_time = now_of(cfg);
    j->reported = false;
}

static void view_of(struct ota_device_view *v, const struct ota_journal *j, const char *booted,
                    const struct ota_agent_cfg *cfg)
{
    v->product = cfg->product;
    v->hardware = cfg->hardware;
    v->booted_slot = booted;
    v->journal = j;
}

/* Tells the source (the server) the device's state as j says it, with r
 * (a refusal or failure; may be NULL). j is NULL when the journal cannot
 * be loaded (the source then reports what does not come from it). Best
 * effort: the state is sent again with the next report or round. Returns
 * whether it was stored. */
static bool report(const struct ota_journal *j, const char *booted, const struct ota_report *r,
                   const struct ota_agent_cfg *cfg)
{
    struct ota_device_view view;
    struct ota_detail det = {{0}};

    if (cfg->source == NULL || cfg->source->report == NULL)
        return false;
    view_of(&view, j, booted, cfg);
    if (cfg->source->report(cfg->source->ctx, &view, r, &det) != 0) {
        logf_(cfg, "report to the %s not sent (%s)", cfg->source->name, det.msg);
        return false;
    }
    return true;
}

/* Tells the source (the server) about the outcome in j, once. A failed
 * report is kept for the next start or round. */
static void report_outcome(struct ota_journal *j, const char *booted,
                           const struct ota_agent_cfg *cfg)
{
    struct ota_detail det = {{0}};

    if (j->outcome == OTA_OUTCOME_NONE || j->reported || cfg->source == NULL ||
        cfg->source->report == NULL)
        return;
    if (!report(j, booted, NULL, cfg)) {
        logf_(cfg, "%s of %s kept for the next report", ota_journal_outcome_name(j->outcome),
              j->outcome_version);
        return;
    }
    j->reported = true;
    if (store(j, cfg, &det) != 0)
        logf_(cfg, "journal not updated after the report: %s", det.msg);
}

static int run_hook(const struct ota_agent_cfg *cfg, const struct ota_agent_hook *h,
                    const char *what, const struct ota_journal_release *r, unsigned slot,
                    struct ota_detail *det)
{
    const char *argv[] = {h->path, what, NULL};
    struct ota_hook_env env[4] = {
        {"OTACHAIN_HOOK", what},
        {"OTACHAIN_SLOT", cfg->slots[slot].name},
        {"OTACHAIN_SLOT_DEVICE", cfg->slots[slot].device},
        {"OTACHAIN_VERSION", r->version},
    };
    int rc;

    if (h->path == NULL)
        return 0;
    logf_(cfg, "%s hook: %s (slot %s, %s)", what, h->path, cfg->slots[slot].name, r->version);
    rc = ota_hook_run(argv, env, 4, h->timeout_ms, det);
    if (rc != 0)
        ota_detail_prefix(det, what);
    return rc;
}

static int reboot(enum ota_agent_action *action, const struct ota_agent_cfg *cfg,
                  struct ota_detail *det)
{
    int rc;

    logf_(cfg, "rebooting: %s", cfg->reboot_command);
    rc = ota_hook_run_shell(cfg->reboot_command, NULL, 0, cfg->reboot_timeout_ms, det);
    if (rc != 0) {
        *action = OTA_ACTION_WAIT_REBOOT;
        ota_detail_prefix(det, "reboot command");
        return OTA_ERR_REBOOT;
    }
    *action = OTA_ACTION_REBOOTING;
    return 0;
}

/* ------------------------------------------------------------ start-up */

static int commit(enum ota_agent_action *action, struct ota_journal *j, unsigned booted,
                  const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    int rc = cfg->boot->set(cfg->boot->ctx, cfg->slots[booted].name, false, det);

    if (rc != 0)
        return rc;
    j->installed = j->pending;
    if (j->pending.security_version > j->security_floor)
        j->security_floor = j->pending.security_version;
    j->phase = OTA_PHASE_IDLE;
    set_outcome(j, cfg, OTA_OUTCOME_COMMITTED, &j->pending, 0, "");
    memset(&j->pending, 0, sizeof(j->pending));
    rc = store(j, cfg, det);
    if (rc != 0)
        return rc;
    logf_(cfg, "committed %s on slot %s (security floor %" PRIu64 ")", j->installed.version,
          j->installed.slot, j->security_floor);
    *action = OTA_ACTION_COMMITTED;
    report_outcome(j, cfg->slots[booted].name, cfg);
    return 0;
}

/* Ends a failed trial: R blocked, installed unchanged, idle. */
static int finish_failed(enum ota_agent_action *action, struct ota_journal *j,
                         enum ota_journal_outcome o, int err, const char *detail,
                         const char *booted, const struct ota_agent_cfg *cfg,
                         struct ota_detail *det)
{
    char version[sizeof(j->pending.version)];
    int rc;

    memcpy(version, j->pending.version, sizeof(version));
    ota_journal_block(j, j->pending.sha256);
    j->phase = OTA_PHASE_IDLE;
    set_outcome(j, cfg, o, &j->pending, err, detail);
    memset(&j->pending, 0, sizeof(j->pending));
    rc = store(j, cfg, det);
    if (rc != 0)
        return rc;
    logf_(cfg, "%s: %s (%s); back on %s %s", ota_journal_outcome_name(o), version, ota_errname(err),
          j->installed.slot, j->installed.version);
    *action = o == OTA_OUTCOME_FELL_BACK ? OTA_ACTION_FELL_BACK : OTA_ACTION_ROLLED_BACK;
    report_outcome(j, booted, cfg);
    return 0;
}

/* Health check failed on the trial slot: journal first, then the
 * bootloader, then reboot into the installed slot. */
static int roll_back(enum ota_agent_action *action, struct ota_journal *j, int err,
                     const char *detail, const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    int rc;

    if (j->phase != OTA_PHASE_ROLLING_BACK) {
        j->phase = OTA_PHASE_ROLLING_BACK;
        set_outcome(j, cfg, OTA_OUTCOME_ROLLED_BACK, &j->pending, err, detail);
        rc = store(j, cfg, det);
        if (rc != 0)
            return rc;
    }
    logf_(cfg, "rolling back %s: %s", j->pending.version, detail);
    rc = cfg->boot->set(cfg->boot->ctx, j->installed.slot, false, det);
    if (rc != 0)
        return rc;
    return reboot(action, cfg, det);
}

int ota_agent_start(enum ota_agent_action *action, struct ota_journal *j,
                    const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    struct ota_boot_state e;
    unsigned booted;
    const char *b;
    int rc;

    *action = OTA_ACTION_NONE;
    rc = ota_fs_mkdirs(cfg->state_dir, 0700, cfg->hook);
    if (rc != 0) {
        ota_detail_set(det, "state directory %s", cfg->state_dir);
        return rc;
    }
    rc = ota_agent_booted_slot(&booted, cfg, det);
    if (rc != 0)
        return rc;
    b = cfg->slots[booted].name;
    rc = ota_journal_load(j, cfg->state_dir, det);
    if (rc != 0) {
        /* Malformed or unreadable: nothing is written, not the journal
         * (the floor and the failed releases are in it), not the
         * bootloader (a trial in progress ends by its own boot limit).
         * The server hears of it with what does not come from the
         * journal. */
        struct ota_report r = {rc, det != NULL ? det->msg : "", NULL};

        (void)report(NULL, b, &r, cfg);
        return rc;
    }
    if (j->installed.slot[0] == '\0') {
        /* First start: the factory image runs. */
        snprintf(j->installed.slot, sizeof(j->installed.slot), "%s", b);
        snprintf(j->installed.version, sizeof(j->installed.version), "%s", cfg->factory_version);
        j->phase = OTA_PHASE_IDLE;
        rc = store(j, cfg, det);
        if (rc != 0)
            return rc;
        logf_(cfg, "first start: slot %s runs factory release %s", b, cfg->factory_version);
    }
    if (j->phase == OTA_PHASE_IDLE || j->phase == OTA_PHASE_FETCHING) {
        if (strcmp(b, j->installed.slot) != 0)
            logf_(cfg, "warning: booted slot %s, but the journal says %s runs %s", b,
                  j->installed.slot, j->installed.version);
        report_outcome(j, b, cfg);
        return 0;
    }
    rc = cfg->boot->get(cfg->boot->ctx, &e, det);
    if (rc != 0) {
        ota_detail_prefix(det, "bootloader");
        return rc;
    }
    if (j->phase == OTA_PHASE_ROLLING_BACK) {
        if (strcmp(b, j->pending.slot) == 0)
            return roll_back(action, j, OTA_ERR_HEALTH_CHECK, j->outcome_detail, cfg, det);
        if (strcmp(e.slot, j->installed.slot) != 0 || e.trial) {
            rc = cfg->boot->set(cfg->boot->ctx, j->installed.slot, false, det);
            if (rc != 0)
                return rc;
        }
        char detail[sizeof(j->outcome_detail)];
        memcpy(detail, j->outcome_detail, sizeof(detail));
        return finish_failed(action, j, OTA_OUTCOME_ROLLED_BACK, OTA_ERR_HEALTH_CHECK, detail, b,
                             cfg, det);
    }
    /* INSTALLED or ARMED. */
    if (strcmp(b, j->pending.slot) == 0) {
        struct ota_detail hdet = {{0}};

        if (strcmp(e.slot, b) == 0 && !e.trial) /* confirmed before a power cut (inv. 4) */
            return commit(action, j, booted, cfg, det);
        if (j->phase != OTA_PHASE_ARMED) {
            j->phase = OTA_PHASE_ARMED;
            rc = store(j, cfg, det);
            if (rc != 0)
                return rc;
        }
        logf_(cfg, "trial boot of %s on slot %s (attempt %u of %u)", j->pending.version, b,
              e.attempts, e.limit);
        rc = run_hook(cfg, &cfg->health_check, "health-check", &j->pending, booted, &hdet);
        if (rc == 0)
            return commit(action, j, booted, cfg, det);
        return roll_back(action, j, OTA_ERR_HEALTH_CHECK, hdet.msg, cfg, det);
    }
    /* Booted the installed (or another) slot while INSTALLED or ARMED. */
    if (strcmp(e.slot, j->pending.slot) == 0 && e.trial) {
        /* Armed, but that reboot has not happened yet. */
        if (j->phase != OTA_PHASE_ARMED) {
            j->phase = OTA_PHASE_ARMED;
            rc = store(j, cfg, det);
            if (rc != 0)
                return rc;
        }
        return reboot(action, cfg, det);
    }
    if (j->phase == OTA_PHASE_INSTALLED)
        return 0; /* not armed yet: the round arms it */
    char detail[OTA_JOURNAL_TEXT_MAX + 1];
    snprintf(detail, sizeof(detail),
             "slot %s did not boot to the agent within the bootloader's limit; it booted %s",
             j->pending.slot, b);
    return finish_failed(action, j, OTA_OUTCOME_FELL_BACK, OTA_ERR_FELL_BACK, detail, b, cfg, det);
}

/* ----------------------------------------------------------- the round */

/* The inactive slot, opened through the slot output before the first
 * byte is fetched: it refuses the booted slot (from the kernel command
 * line, and the configured device of the booted slot) and a slot in use
 * (mounted, held, backing a loop device), and checks its size. */
static int open_slot(struct ota_output **o, const struct ota_journal_release *r, const char *device,
                     const char *booted_device, const struct ota_agent_cfg *cfg,
                     struct ota_detail *det)
{
    struct ota_slot_opts sopts = {booted_device, NULL, cfg->cmdline_path};

    return ota_output_slot(o, device, r->length, &sopts, det);
}

static int arm(enum ota_agent_action *action, struct ota_journal *j, const char *booted,
               const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    int rc = cfg->boot->check(cfg->boot->ctx, det);

    if (rc != 0) {
        ota_detail_prefix(det, "not arming: bootloader environment");
        return rc;
    }
    rc = cfg->boot->set(cfg->boot->ctx, j->pending.slot, true, det);
    if (rc != 0)
        return rc;
    j->phase = OTA_PHASE_ARMED;
    rc = store(j, cfg, det);
    if (rc != 0)
        return rc;
    logf_(cfg, "armed: slot %s boots %s on trial", j->pending.slot, j->pending.version);
    (void)report(j, booted, NULL, cfg);
    return reboot(action, cfg, det);
}

static int path_in(char out[PATH_MAX], const char *dir, const char *name)
{
    return snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? OTA_ERR_INVALID_ARG : 0;
}

/* The round once the booted slot is known. On failure, refused names the
 * release the source refused by the release rules ("" when none). */
static int round_(enum ota_agent_action *action, struct ota_journal *j, unsigned booted,
                  char refused[OTA_JOURNAL_PATH_MAX + 1], const struct ota_agent_cfg *cfg,
                  struct ota_detail *det)
{
    const char *b = cfg->slots[booted].name;
    struct ota_offer offer;
    struct ota_journal_release cur;
    struct ota_install_dst dst;
    struct ota_device_view view;
    struct ota_output *out = NULL;
    char work[PATH_MAX];
    unsigned target = 0;
    int installed_slot, rc;
    bool found = false;

    /* Refuse to install what could never be armed. */
    rc = cfg->boot->check(cfg->boot->ctx, det);
    if (rc != 0) {
        ota_detail_prefix(det, "not installing: bootloader environment");
        return rc;
    }
    if (j->phase == OTA_PHASE_INSTALLED)
        return arm(action, j, b, cfg, det);
    installed_slot = slot_index(cfg, j->installed.slot);
    if (installed_slot < 0 || (unsigned)installed_slot != booted) {
        ota_detail_set(det, "booted slot %s is not the installed slot %s: not updating",
                       cfg->slots[booted].name, j->installed.slot);
        return OTA_ERR_SLOT_UNKNOWN;
    }
    memset(&cur, 0, sizeof(cur));
    memset(&offer, 0, sizeof(offer));
    view_of(&view, j, b, cfg);
    rc = cfg->source->check(cfg->source->ctx, &offer, &found, &cur, &view, det);
    if (rc != 0) {
        snprintf(refused, OTA_JOURNAL_PATH_MAX + 1, "%s", offer.target);
        return rc;
    }
    if (j->installed.length == 0 && cur.length != 0) {
        /* The factory release is a signed target: remember its hash and
         * length (chunk reuse and deltas need them). */
        memcpy(j->installed.sha256, cur.sha256, OTA_SHA256_LEN);
        j->installed.length = cur.length;
        snprintf(j->installed.target, sizeof(j->installed.target), "%s", cur.target);
        j->installed.security_version = cur.security_version;
    }
    if (!found) {
        logf_(cfg, "no newer release for %s/%s (running %s)", cfg->product, cfg->hardware,
              j->installed.version);
        return 0;
    }
    while (target == booted)
        target++;
    if (target >= cfg->nslots)
        return OTA_ERR_INVALID_ARG;
    logf_(cfg, "installing %s (%" PRIu64 " bytes) into slot %s", offer.version, offer.length,
          cfg->slots[target].name);
    /* Invariant 1: FETCHING before the first byte. */
    if (j->phase != OTA_PHASE_FETCHING ||
        memcmp(j->pending.sha256, offer.sha256, OTA_SHA256_LEN) != 0) {
        memset(&j->pending, 0, sizeof(j->pending));
        snprintf(j->pending.slot, sizeof(j->pending.slot), "%s", cfg->slots[target].name);
        snprintf(j->pending.target, sizeof(j->pending.target), "%s", offer.target);
        snprintf(j->pending.version, sizeof(j->pending.version), "%s", offer.version);
        memcpy(j->pending.sha256, offer.sha256, OTA_SHA256_LEN);
        j->pending.length = offer.length;
        j->pending.security_version = offer.security_version;
        j->phase = OTA_PHASE_FETCHING;
        rc = store(j, cfg, det);
        if (rc != 0)
            return rc;
    }
    (void)report(j, b, NULL, cfg);
    rc = run_hook(cfg, &cfg->pre_install, "pre-install", &j->pending, target, det);
    if (rc == 0)
        rc = path_in(work, cfg->state_dir, "download");
    if (rc == 0)
        rc = ota_fs_mkdirs(work, 0700, cfg->hook);
    if (rc == 0)
        rc = open_slot(&out, &j->pending, cfg->slots[target].device, cfg->slots[booted].device, cfg,
                       det);
    if (rc != 0)
        return rc;
    memset(&dst, 0, sizeof(dst));
    dst.work_dir = work;
    dst.out = out;
    dst.current_path = cfg->slots[booted].device;
    dst.current_length = j->installed.length;
    dst.current_sha = j->installed.length != 0 ? j->installed.sha256 : NULL;
    /* The slot is written in place (no temporary): the power-cut mode
     * models its writes as one step before the first and its durability
     * as one step once the fetch has synced and re-read it. */
    rc = ota_fs_hook_step(cfg->hook, OTA_FS_STEP_WRITE, cfg->slots[target].device);
    if (rc == 0)
        rc = cfg->source->fetch(cfg->source->ctx, &offer, &dst, det);
    if (rc == 0)
        rc = ota_fs_hook_step(cfg->hook, OTA_FS_STEP_FSYNC, cfg->slots[target].device);
    ota_output_free(out);
    if (rc == 0)
        rc = run_hook(cfg, &cfg->post_install, "post-install", &j->pending, target, det);
    if (rc != 0)
        return rc;
    logf_(cfg, "slot %s holds %s (re-read and verified)", cfg->slots[target].name, offer.version);
    j->phase = OTA_PHASE_INSTALLED;
    rc = store(j, cfg, det);
    if (rc != 0)
        return rc;
    (void)report(j, b, NULL, cfg);
    return arm(action, j, b, cfg, det);
}

int ota_agent_round(enum ota_agent_action *action, struct ota_journal *j,
                    const struct ota_agent_cfg *cfg, struct ota_detail *det)
{
    char refused[OTA_JOURNAL_PATH_MAX + 1] = "";
    unsigned booted;
    int rc;

    *action = OTA_ACTION_NONE;
    if (j->phase == OTA_PHASE_ARMED || j->phase == OTA_PHASE_ROLLING_BACK) {
        ota_detail_set(det, "an update is %s: reboot to finish it",
                       ota_journal_phase_name(j->phase));
        return 0;
    }
    rc = ota_agent_booted_slot(&booted, cfg, det);
    if (rc != 0)
        return rc;
    rc = round_(action, j, booted, refused, cfg, det);
    if (rc != 0) {
        /* Every refusal and failure goes to the server with its name. */
        struct ota_report r = {rc, det != NULL ? det->msg : "", refused};

        (void)report(j, cfg->slots[booted].name, &r, cfg);
    }
    return rc;
}
