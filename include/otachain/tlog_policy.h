/* C2SP tlog-policy: which logs and witnesses are trusted and which sets
 * of witness cosignatures make a checkpoint valid; and the check of a
 * cosigned checkpoint against a policy at a given time (the building
 * block of the device rule, DESIGN §4).
 *
 * Syntax (one item per line; items separated by spaces and tabs; leading
 * and trailing whitespace, blank lines and '#' comment lines ignored):
 *     log <vkey> [<url>]
 *     witness <name> <vkey> [<url>]
 *     group <name> <all|any|k> <member>...
 *     quorum <name|none>
 * Parse rules, each refused with its own error and a detail naming the
 * line:
 *  - text above OTA_TLOG_POLICY_MAX_LEN, a line above
 *    OTA_TLOG_POLICY_MAX_LINE, more than the cap of
 *    logs, witnesses, groups or members, a name above
 *    OTA_TLOG_POLICY_MAX_NAME or a URL above
 *    OTA_TLOG_POLICY_MAX_URL bytes                         OTA_ERR_TOO_LARGE
 *  - a byte other than tab, newline, 0x20-0x7e and
 *    0x80-0xff, or text not ending in a newline            OTA_ERR_FORMAT
 *  - an unknown keyword, or a line with too few or too
 *    many items                                            OTA_ERR_FORMAT
 *  - a malformed vkey                                      (note.h errors)
 *  - a log key not of type 0x01 (Ed25519), a witness
 *    key not of type 0x04 (cosignature/v1)                 OTA_ERR_KEY_FORMAT
 *  - two keys (logs or witnesses) wrapping the same
 *    public key, or sharing key name and key ID            OTA_ERR_KEY_FORMAT
 *  - a name defined twice (witnesses and groups share
 *    one namespace), or defining "none"                    OTA_ERR_FORMAT
 *  - a member or quorum name not defined on an earlier
 *    line, a member "none", a member listed twice          OTA_ERR_FORMAT
 *  - a threshold that is not all, any or a decimal k
 *    without leading zeros with 1 <= k <= members          OTA_ERR_FORMAT
 *  - no quorum line, or more than one                      OTA_ERR_FORMAT
 * Names are opaque octet strings compared byte for byte.
 */
#ifndef OTACHAIN_TLOG_POLICY_H
#define OTACHAIN_TLOG_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/checkpoint.h"
#include "otachain/err.h"
#include "otachain/note.h"

#define OTA_TLOG_POLICY_MAX_LEN       (256u * 1024) /* bytes of policy text */
#define OTA_TLOG_POLICY_MAX_LINE      16384         /* bytes of one line */
#define OTA_TLOG_POLICY_MAX_LINES     1024          /* lines (JSON form) */
#define OTA_TLOG_POLICY_MAX_LOGS      32
#define OTA_TLOG_POLICY_MAX_WITNESSES 64
#define OTA_TLOG_POLICY_MAX_GROUPS    64
#define OTA_TLOG_POLICY_MAX_NAME      255  /* bytes of a witness or group name */
#define OTA_TLOG_POLICY_MAX_URL       2048 /* bytes of a URL */
/* Members of one group: each defined name at most once. */
#define OTA_TLOG_POLICY_MAX_MEMBERS (OTA_TLOG_POLICY_MAX_WITNESSES + OTA_TLOG_POLICY_MAX_GROUPS)

struct ota_tlog_policy_log {
    struct ota_note_verifier key; /* type 0x01 */
    char *url;                    /* NULL when absent (owned) */
};

struct ota_tlog_policy_witness {
    char name[OTA_TLOG_POLICY_MAX_NAME + 1]; /* the policy name, NUL-terminated */
    size_t name_len;
    struct ota_note_verifier key; /* type 0x04 */
    char *url;                    /* NULL when absent (owned) */
};

/* A reference to a witness or to a group (by index). */
struct ota_tlog_policy_ref {
    bool group;
    uint8_t index;
};

struct ota_tlog_policy_group {
    char name[OTA_TLOG_POLICY_MAX_NAME + 1];
    size_t name_len;
    unsigned threshold; /* k: 1 <= k <= nmembers */
    size_t nmembers;
    struct ota_tlog_policy_ref members[OTA_TLOG_POLICY_MAX_MEMBERS];
};

struct ota_tlog_policy {
    /* The origin this policy belongs to, when built from the ledger JSON
     * of root.json (ota_tlog_policy_from_ledger); else empty. */
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
    size_t origin_len;
    size_t nlogs;
    struct ota_tlog_policy_log logs[OTA_TLOG_POLICY_MAX_LOGS];
    size_t nwitnesses;
    struct ota_tlog_policy_witness witnesses[OTA_TLOG_POLICY_MAX_WITNESSES];
    size_t ngroups;
    struct ota_tlog_policy_group groups[OTA_TLOG_POLICY_MAX_GROUPS];
    bool quorum_none; /* "quorum none": no cosignature needed */
    struct ota_tlog_policy_ref quorum;
};

/* Parses policy text of len bytes. On success *out is owned by the caller
 * (ota_tlog_policy_free); on failure it is NULL. */
OTA_WUR int ota_tlog_policy_parse(struct ota_tlog_policy **out, const char *text, size_t len,
                                  struct ota_detail *det);

/* Builds the policy from the "x-otachain-ledger" object of root.json:
 *     {"origin": "<log origin>", "policy": ["log <vkey>", ...]}
 * Both members are required; "max_age" (a positive integer, the device's
 * freshness window) may follow; no other is allowed (OTA_ERR_FORMAT);
 * the origin must be a valid key name (OTA_ERR_FORMAT); each array element
 * is a string holding one policy line without newline or NUL
 * (OTA_ERR_FORMAT), at most OTA_TLOG_POLICY_MAX_LINES elements
 * (OTA_ERR_TOO_LARGE); then the lines are parsed as above, and the policy
 * must list at least one log and every log key must be named after the
 * origin (OTA_ERR_ORIGIN). The origin is stored in the policy. */
OTA_WUR int ota_tlog_policy_from_ledger(struct ota_tlog_policy **out, const json_t *ledger,
                                        struct ota_detail *det);

/* Frees; accepts NULL. */
void ota_tlog_policy_free(struct ota_tlog_policy *p);

/* Appends the policy in text form (one line per item, the order of
 * definition kept valid: witnesses, then groups in order, then the
 * quorum; logs first). Parsing the result gives an equal policy. */
OTA_WUR int ota_tlog_policy_format(struct ota_buf *out, const struct ota_tlog_policy *p);

/* Index of the witness named name[0..len) in the policy, or -1. */
int ota_tlog_policy_witness_index(const struct ota_tlog_policy *p, const char *name, size_t len);

/* Quorum evaluation: witnessed[i] tells whether witness i (policy order)
 * counts. True when the quorum is met ("quorum none" always is). */
bool ota_tlog_policy_quorum_met(const struct ota_tlog_policy *p, const bool *witnessed);

/* The same for a set of witness names (policy names, not key names);
 * names not in the policy are ignored, repeats count once. */
bool ota_tlog_policy_quorum_met_names(const struct ota_tlog_policy *p, const char *const *names,
                                      size_t nnames);

/* What ota_tlog_policy_verify found. */
struct ota_tlog_policy_witness_state {
    bool cosigned; /* a valid cosignature by this witness is on the note */
    uint64_t time; /* its time (when cosigned) */
    bool counted;  /* cosigned and time within the window: counts toward the quorum */
};

struct ota_tlog_policy_result {
    struct ota_checkpoint checkpoint; /* the parsed body */
    size_t log;                       /* index of the log whose signature verified */
    size_t nwitnesses;                /* = policy's */
    struct ota_tlog_policy_witness_state witnesses[OTA_TLOG_POLICY_MAX_WITNESSES];
    size_t ncounted;
};

/* Checks a cosigned checkpoint note against the policy at time now
 * (POSIX seconds): the body parses as a checkpoint; its origin names a
 * policy log (and equals the policy's origin, if set); that log's
 * signature verifies; every signature by a policy witness verifies; a
 * cosignature counts only if its time lies in [now - max_age,
 * now + skew]; the counted witnesses meet the quorum. A stale or future
 * cosignature never counts, whatever the others are.
 * Returns 0 when all holds (the quorum is met); then *res says which log
 * signed and, per witness, whether it cosigned, when, and whether it
 * counted, and det names the counted witnesses. Otherwise:
 *  OTA_ERR_FORMAT / OTA_ERR_TOO_LARGE  the body is not a checkpoint;
 *  OTA_ERR_ORIGIN        no policy log for the origin (or it is not the
 *                        policy's origin);
 *  OTA_ERR_BAD_SIGNATURE a signature by the log or a witness key fails
 *                        (a forged cosignature refuses the checkpoint);
 *  OTA_ERR_DUP_SIGNATURE a known key signed twice with different bytes;
 *  OTA_ERR_UNVERIFIED    no signature by the log key;
 *  OTA_ERR_STALE         the quorum would be met if cosignatures outside
 *                        the window counted, but is not met without them;
 *  OTA_ERR_QUORUM        the quorum is not met even so;
 *  OTA_ERR_INVALID_ARG   max_age or skew negative, or an argument NULL.
 * det names the witnesses that counted and those outside the window. On
 * failure *res is zeroed. */
OTA_WUR int ota_tlog_policy_verify(struct ota_tlog_policy_result *res, const struct ota_note *note,
                                   const struct ota_tlog_policy *p, int64_t now, int64_t max_age,
                                   int64_t skew, struct ota_detail *det);

#endif
