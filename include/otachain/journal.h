/* The device agent's install journal: what is installed, what is being
 * installed and how far that got, the security floor, the releases that
 * failed here, and the outcome of the last update (docs/agent.md,
 * "State directory").
 *
 * It lives in <state_dir>/journal.json on the data partition both slots
 * share (on a root filesystem it would revert with the slot, and with it
 * the rollback protection). Every change is one atomic replacement
 * (ota_fs_replace: write, fsync, rename, fsync the directory), so after a
 * power cut the journal is either the old or the new one; the state
 * machine in agent.c is written so that redoing the step after either
 * is right. A plain value: no pointers, fixed caps.
 */
#ifndef OTACHAIN_JOURNAL_H
#define OTACHAIN_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "otachain/bootloader.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"

#define OTA_JOURNAL_FILE        "journal.json"
#define OTA_JOURNAL_MAX_LEN     (64u * 1024)
#define OTA_JOURNAL_PATH_MAX    255 /* bytes of a target path */
#define OTA_JOURNAL_VERSION_MAX 128 /* bytes of a SemVer version (OTA_SEMVER_MAX_LEN) */
#define OTA_JOURNAL_MAX_BLOCKED 16  /* releases kept as "failed here" (oldest dropped) */
#define OTA_JOURNAL_TEXT_MAX    255 /* bytes of the last outcome's detail */

enum ota_journal_phase {
    OTA_PHASE_IDLE,         /* nothing in progress; installed runs */
    OTA_PHASE_FETCHING,     /* pending is being written into pending.slot */
    OTA_PHASE_INSTALLED,    /* pending.slot holds pending, verified by re-reading it */
    OTA_PHASE_ARMED,        /* the bootloader boots pending.slot next, on trial */
    OTA_PHASE_ROLLING_BACK, /* pending failed its trial; switching back to installed */
};

/* One release as installed in a slot. */
struct ota_journal_release {
    char slot[OTA_BOOT_SLOT_MAX + 1];          /* boot name of the slot holding it */
    char target[OTA_JOURNAL_PATH_MAX + 1];     /* image target path; "" if unknown (factory) */
    char version[OTA_JOURNAL_VERSION_MAX + 1]; /* SemVer */
    uint8_t sha256[OTA_SHA256_LEN];            /* of the image (all zero if unknown) */
    uint64_t length;                           /* image bytes in the slot (0 if unknown) */
    uint64_t security_version;
};

/* How the last update ended. */
enum ota_journal_outcome {
    OTA_OUTCOME_NONE,
    OTA_OUTCOME_COMMITTED,   /* the new release runs, confirmed */
    OTA_OUTCOME_ROLLED_BACK, /* the agent switched back (health check failed) */
    OTA_OUTCOME_FELL_BACK,   /* the bootloader switched back (the slot never reached the agent) */
    OTA_OUTCOME_FAILED,      /* refused or failed before the reboot; nothing was armed */
};

struct ota_journal {
    enum ota_journal_phase phase;
    struct ota_journal_release installed; /* what runs when idle */
    struct ota_journal_release pending;   /* phase != IDLE: the release being installed */
    uint64_t security_floor;              /* never lowered */
    /* Image SHA-256s of releases that failed their trial here: never
     * installed again automatically. */
    uint8_t blocked[OTA_JOURNAL_MAX_BLOCKED][OTA_SHA256_LEN];
    unsigned nblocked;
    /* The last outcome, for status and for reporting. */
    enum ota_journal_outcome outcome;
    char outcome_version[OTA_JOURNAL_VERSION_MAX + 1];
    char outcome_target[OTA_JOURNAL_PATH_MAX + 1]; /* its image target; "" if unknown */
    char outcome_error[64]; /* error name ("health_check", "fell_back", ...) or "" */
    char outcome_detail[OTA_JOURNAL_TEXT_MAX + 1];
    int64_t outcome_time; /* seconds, OTA_TIME_NONE if no reading */
    bool reported;        /* the outcome reached the update server */
};

/* Names of phases and outcomes as written in the file and shown by status. */
const char *ota_journal_phase_name(enum ota_journal_phase p);
const char *ota_journal_outcome_name(enum ota_journal_outcome o);

/* Parses the file's bytes. OTA_ERR_JOURNAL (det says which field) for
 * anything malformed, unknown or over a cap; JSON syntax errors too. */
OTA_WUR int ota_journal_parse(struct ota_journal *out, const void *data, size_t len,
                              struct ota_detail *det);

/* Loads <state_dir>/journal.json; a missing file gives an idle journal
 * with installed empty (the caller fills in the factory release). */
OTA_WUR int ota_journal_load(struct ota_journal *out, const char *state_dir,
                             struct ota_detail *det);

/* Serialises j (JSON, one line per field) into a new buffer (free()). */
OTA_WUR int ota_journal_encode(char **out, size_t *out_len, const struct ota_journal *j);

/* Atomically replaces <state_dir>/journal.json with j (mode 0600). */
OTA_WUR int ota_journal_store(const struct ota_journal *j, const char *state_dir,
                              const struct ota_fs_hook *hook, struct ota_detail *det);

/* Whether the image with this SHA-256 failed here before. */
bool ota_journal_is_blocked(const struct ota_journal *j, const uint8_t sha256[OTA_SHA256_LEN]);

/* Adds it (once; the oldest entry is dropped when full). */
void ota_journal_block(struct ota_journal *j, const uint8_t sha256[OTA_SHA256_LEN]);

#endif
