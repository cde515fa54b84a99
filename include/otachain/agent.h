/* The device agent's core (docs/agent.md): update sources, and the state
 * machine that installs a release into the inactive slot, arms the
 * bootloader, and after the reboot commits or rolls back. The program
 * (programs/otachain-agent) reads the configuration and drives it; the
 * state machine itself is drawn at the top of lib/agent.c.
 */
#ifndef OTACHAIN_AGENT_H
#define OTACHAIN_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "otachain/bootloader.h"
#include "otachain/clock.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/journal.h"
#include "otachain/output.h"

#define OTA_AGENT_MAX_SLOTS   4
#define OTA_AGENT_MAX_MIRRORS 8

/* A release a source offers: an image target verified through the TUF
 * workflow and the ledger rule, chosen for this device. When a source
 * refuses the release the update server assigned (the release rules say
 * no), check() fails and `target` names it (else it is ""). */
struct ota_offer {
    char target[OTA_JOURNAL_PATH_MAX + 1];
    char version[OTA_JOURNAL_VERSION_MAX + 1];
    uint8_t sha256[OTA_SHA256_LEN];
    uint64_t length;
    uint64_t security_version;
};

/* What the agent tells a source about the device. */
struct ota_device_view {
    const char *product;
    const char *hardware;
    const char *booted_slot;           /* from the kernel command line; NULL: unknown */
    const struct ota_journal *journal; /* installed release, floor, failed releases, phase;
                                          NULL in a report when it cannot be loaded */
};

/* Where an offered image goes: straight into the inactive slot, through
 * the slot output the agent opened (output.h: it refuses the booted slot
 * and a slot in use, and stays open until the fetch returns). Nothing of
 * the image is staged on the data partition. */
struct ota_install_dst {
    const char *work_dir;       /* the source's scratch space on the data partition: resume
                                   state and chunk indexes, never the image */
    struct ota_output *out;     /* the inactive slot */
    const char *current_path;   /* the active slot (chunk reuse, deltas), or NULL */
    uint64_t current_length;    /* bytes of the installed image in it; 0: unknown */
    const uint8_t *current_sha; /* its SHA-256, or NULL when unknown */
};

/* A report to the update server: the device's state (what runs, the
 * update's state as the journal says, what it trusts) and, when the
 * report is about one, a refusal or failure. The update's state comes
 * from the journal: FETCHING "downloading", INSTALLED "installed", ARMED
 * "rebooting", ROLLING_BACK "rolled_back", IDLE the last outcome
 * ("committed", "rolled_back" for a rollback or a fall-back, "failed"). */
struct ota_report {
    int error;           /* 0, or the refusal or failure being reported */
    const char *detail;  /* what and where; NULL or "" when none */
    const char *refused; /* the target the release rules refused ("failed": the server
                            never assigns it again); NULL or "": none */
};

/* An update source: the update server, or a list of static mirrors. */
struct ota_source {
    const char *name; /* "mirrors", "server" */
    /* Verifies what the source serves and chooses the release to install:
     * *found = false when none is newer and allowed. installed_out (may be
     * NULL) receives the SHA-256 and length of the installed release when
     * the trusted targets name it (for chunk reuse). A source that
     * refuses an assigned release fails with the release rule's error and
     * names it in out->target. */
    int (*check)(void *ctx, struct ota_offer *out, bool *found,
                 struct ota_journal_release *installed_out, const struct ota_device_view *dev,
                 struct ota_detail *det);
    /* Writes the offered image into dst->out and verifies it there (its
     * signed length and SHA-256, re-read from the medium with the page
     * cache dropped) before it returns 0, resuming earlier work recorded
     * in dst->work_dir. Only after a successful check in this process. */
    int (*fetch)(void *ctx, const struct ota_offer *offer, const struct ota_install_dst *dst,
                 struct ota_detail *det);
    /* Reports the device's state and r (may be NULL); NULL for sources
     * without a server. 0 once the server stored it. */
    int (*report)(void *ctx, const struct ota_device_view *dev, const struct ota_report *r,
                  struct ota_detail *det);
    void (*destroy)(void *ctx);
    void *ctx;
    /* Seconds until the next round, as the source last asked (the
     * server's poll_interval, jitter included); 0: the configured one. */
    uint32_t poll_interval;
};

void ota_source_free(struct ota_source *s);

/* The mirror-list source: each round runs the TUF workflow and the ledger
 * rule against the mirrors in order; the first that verifies is used,
 * and a mirror that fails (lies, stalls, is down) is dropped for the round
 * and the next one tried, for the metadata and for the image alike. The
 * update-server source below takes the same configuration. */
struct ota_mirror_cfg {
    const char *const *urls; /* the mirrors; the server source: the server, one URL */
    unsigned nurls;
    const char *tuf_dir;           /* trusted metadata (on the data partition) */
    const uint8_t *bootstrap_root; /* root.json shipped with the device */
    size_t bootstrap_len;
    const char *ca_file;           /* NULL: the system store */
    const char *client_cert;       /* mutual TLS, optional for mirrors; NULL: none */
    const char *client_key;        /* its key; NULL: in client_cert's file */
    const struct ota_clock *clock; /* NULL: the system clock */
    /* The clock the transfers' slow-retrieval rules read (http.h); read
     * often while a transfer runs, so a program may feed its watchdog
     * from it. NULL: CLOCK_MONOTONIC. */
    const struct ota_clock *transfer_clock;
    const struct ota_fs_hook *hook; /* fault injection; may be NULL */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    /* The image's progress while it is written into the slot: bytes
     * written by this round so far, of total (dp_fetch.h); NULL: none. */
    void (*progress)(void *ctx, uint64_t written, uint64_t total);
    void *progress_ctx;
};

OTA_WUR int ota_source_mirror_new(struct ota_source **out, const struct ota_mirror_cfg *cfg,
                                  struct ota_detail *det);

/* The update-server source (docs/api/device-v1.md): each round checks in
 * over mutual TLS with the device certificate (POST /api/v1/checkin: the
 * device's state and what it trusts; the answer: when to come back and
 * what to install), then verifies the repository the server's device
 * listener serves with the same TUF workflow and ledger rule as the
 * mirror source, and takes the assigned release only when the release
 * rules allow it (the assignment is a hint, never trust). Refusals and
 * failures are reported with their error names in later check-ins.
 * cfg->urls names the server (one URL); cfg->client_cert is required. */
OTA_WUR int ota_source_server_new(struct ota_source **out, const struct ota_mirror_cfg *cfg,
                                  struct ota_detail *det);

struct ota_agent_slot {
    const char *name;   /* boot name: what otachain.slot= and the bootloader say */
    const char *device; /* block device or file */
};

struct ota_agent_hook {
    const char *path; /* NULL: none */
    uint32_t timeout_ms;
};

struct ota_agent_cfg {
    const char *state_dir; /* on the data partition both slots share */
    const char *product;
    const char *hardware;
    const char *factory_version; /* what the slots held when the device was made */
    struct ota_agent_slot slots[OTA_AGENT_MAX_SLOTS];
    unsigned nslots;
    const char *cmdline_path; /* /proc/cmdline */
    const char *reboot_command;
    uint32_t reboot_timeout_ms;
    struct ota_agent_hook pre_install, post_install, health_check;
    struct ota_bootloader *boot; /* borrowed */
    struct ota_source *source;   /* borrowed */
    const struct ota_clock *clock;
    const struct ota_fs_hook *hook;
    /* Progress and decisions, one line each (no newline). */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
};

/* What a call did. */
enum ota_agent_action {
    OTA_ACTION_NONE,        /* nothing to do */
    OTA_ACTION_REBOOTING,   /* the reboot command ran: the caller stops */
    OTA_ACTION_COMMITTED,   /* the trial release is confirmed */
    OTA_ACTION_ROLLED_BACK, /* finished going back after a failed trial */
    OTA_ACTION_FELL_BACK,   /* noticed that the bootloader went back */
    OTA_ACTION_WAIT_REBOOT, /* armed, but the reboot command failed: armed for the next boot */
};

const char *ota_agent_action_name(enum ota_agent_action a);

/* The slot the kernel command line names (otachain.slot=NAME, else
 * root=DEVICE of a configured slot). OTA_ERR_SLOT_UNKNOWN. */
OTA_WUR int ota_agent_booted_slot(unsigned *index, const struct ota_agent_cfg *cfg,
                                  struct ota_detail *det);

/* At start-up: loads (or creates) the journal and finishes whatever the
 * last boot left: a trial boot gets its health check and is committed or
 * rolled back; a fall-back by the bootloader is recorded; a rollback is
 * completed. j receives the journal as it is afterwards. A journal that
 * is malformed or unreadable fails with OTA_ERR_JOURNAL (det names the
 * file and what is wrong) after reporting it to the source, and nothing
 * is written: not the journal, not the bootloader, not a slot. */
OTA_WUR int ota_agent_start(enum ota_agent_action *action, struct ota_journal *j,
                            const struct ota_agent_cfg *cfg, struct ota_detail *det);

/* One round: asks the source, and when it offers a release writes it
 * into the inactive slot, verifies it there, arms the bootloader and runs
 * the reboot command. Refuses to arm when the bootloader environment
 * cannot be read and written. Call after ota_agent_start. */
OTA_WUR int ota_agent_round(enum ota_agent_action *action, struct ota_journal *j,
                            const struct ota_agent_cfg *cfg, struct ota_detail *det);

#endif
