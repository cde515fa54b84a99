/* The check-in of the device API v1 (docs/api/device-v1.md): the body a
 * device sends (what it runs, what it is doing, what it trusts) and the
 * answer (poll interval, assignment, proof bundle).
 *
 * Both directions live here so that the server and the agent share one
 * definition: the server parses requests (hostile input: strict, capped,
 * fuzzed by fuzz/fuzz_checkin.c) and formats answers; the agent formats
 * requests and parses answers (hostile too: also strict and capped).
 * Parsed data lands in fixed-size structs; nothing is allocated that the
 * caller must free except the bundle bytes of a parsed answer.
 */
#ifndef OTACHAIN_CHECKIN_H
#define OTACHAIN_CHECKIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"

#define OTA_CHECKIN_BODY_MAX    (16u * 1024)
#define OTA_CHECKIN_NAME_MAX    64  /* product, hardware id, error name */
#define OTA_CHECKIN_VERSION_MAX 128 /* a SemVer string */
#define OTA_CHECKIN_TARGET_MAX  255 /* a target path */
#define OTA_CHECKIN_SLOT_MAX    16
#define OTA_CHECKIN_DETAIL_MAX  512
/* The answer: the bundle rides in it as base64. */
#define OTA_CHECKIN_BUNDLE_MAX (8u * 1024 * 1024)
#define OTA_CHECKIN_REPLY_MAX  (OTA_CHECKIN_BUNDLE_MAX / 3 * 4 + 16u * 1024)
/* JSON integers we accept: exact in every JSON implementation. */
#define OTA_CHECKIN_INT_MAX ((uint64_t)9007199254740991)

/* The agent's update state; NONE = no update in progress ("update": null). */
enum ota_update_state {
    OTA_UPDATE_NONE = 0,
    OTA_UPDATE_DOWNLOADING,
    OTA_UPDATE_DOWNLOADED,
    OTA_UPDATE_INSTALLING,
    OTA_UPDATE_INSTALLED,
    OTA_UPDATE_REBOOTING,
    OTA_UPDATE_COMMITTED,
    OTA_UPDATE_FAILED,
    OTA_UPDATE_ROLLED_BACK,
};
#define OTA_UPDATE_STATE_COUNT 9

/* "downloading" ... "rolled_back"; "none" for OTA_UPDATE_NONE. */
const char *ota_update_state_name(enum ota_update_state s);
/* The state named name (not "none"): 0, or OTA_ERR_FORMAT. */
OTA_WUR int ota_update_state_parse(enum ota_update_state *out, const char *name);

/* A check-in request. Strings are NUL-terminated; empty = absent. */
struct ota_checkin {
    /* running */
    char product[OTA_CHECKIN_NAME_MAX + 1];
    char hardware[OTA_CHECKIN_NAME_MAX + 1];
    char version[OTA_CHECKIN_VERSION_MAX + 1];
    char target[OTA_CHECKIN_TARGET_MAX + 1]; /* optional */
    char slot[OTA_CHECKIN_SLOT_MAX + 1];     /* optional */
    /* update (state NONE: absent) */
    enum ota_update_state state;
    char state_target[OTA_CHECKIN_TARGET_MAX + 1];
    bool has_progress;
    uint64_t progress;
    /* last_error (name empty: none) */
    char error_name[OTA_CHECKIN_NAME_MAX + 1];
    char error_detail[OTA_CHECKIN_DETAIL_MAX + 1];
    /* trusted */
    uint64_t root_version;      /* >= 1 */
    uint64_t timestamp_version; /* 0: none */
    uint64_t snapshot_version;  /* 0: none (the bundle then carries it) */
    uint64_t targets_version;   /* 0: none */
    bool has_checkpoint;
    uint64_t checkpoint_size;
    uint8_t checkpoint_hash[32];
};

/* Parses a request body (at most OTA_CHECKIN_BODY_MAX bytes) strictly:
 * JSON syntax and duplicate keys (json_* errors), unknown members (except
 * "x-..."), missing or mistyped members, and values outside their rules
 * (OTA_ERR_FORMAT with det naming the member, e.g. "running.product:
 * 1-64 characters [A-Za-z0-9._-]"). A member naming a device id
 * ("device", "device_id", "id") is refused: the id comes from the
 * certificate. On failure *out is zeroed. */
OTA_WUR int ota_checkin_parse(struct ota_checkin *out, const void *body, size_t len,
                              struct ota_detail *det);

/* Appends the JSON of in (as the agent sends it) to out. OTA_ERR_FORMAT
 * if in would not parse back (a field outside its rules). */
OTA_WUR int ota_checkin_format(struct ota_buf *out, const struct ota_checkin *in,
                               struct ota_detail *det);

/* What a device is told to install. */
struct ota_checkin_assignment {
    char target[OTA_CHECKIN_TARGET_MAX + 1];
    char version[OTA_CHECKIN_VERSION_MAX + 1];
    uint64_t security_version;
    uint64_t length;
    uint8_t sha256[32];
    char index[OTA_CHECKIN_TARGET_MAX + 1]; /* empty: no chunk index */
};

/* A check-in answer. */
struct ota_checkin_reply {
    uint32_t poll_interval; /* seconds, >= 1 */
    bool has_assignment;
    struct ota_checkin_assignment assignment;
    const uint8_t *bundle; /* NULL: "bundle": null */
    size_t bundle_len;
};

/* Appends the JSON of r (as the server sends it) to out. */
OTA_WUR int ota_checkin_reply_format(struct ota_buf *out, const struct ota_checkin_reply *r);

/* Parses an answer (at most OTA_CHECKIN_REPLY_MAX bytes) strictly, as the
 * agent must: unknown members are ignored (the server may add some), the
 * known ones must follow their rules. The bundle bytes are decoded into
 * bundle (r->bundle points into it afterwards, or is NULL). */
OTA_WUR int ota_checkin_reply_parse(struct ota_checkin_reply *r, struct ota_buf *bundle,
                                    const void *body, size_t len, struct ota_detail *det);

/* The field rules, for other parsers of the same values (the admin API,
 * the newest-update query): [A-Za-z0-9._-]{1,max}; printable ASCII
 * target path of 1..255 bytes without "." or ".." segments, leading or
 * doubled '/'; a SemVer 2.0.0 string. */
bool ota_checkin_name_valid(const char *s, size_t n, size_t max);
bool ota_checkin_target_valid(const char *s, size_t n);
bool ota_checkin_version_valid(const char *s, size_t n);

#endif
