/* otachain-witness configuration: an INI file (docs/witness.md).
 *
 *     [witness]
 *     name = witness.example/w1
 *     key_file = /var/lib/otachain-witness/witness.key
 *     state_dir = /var/lib/otachain-witness/state
 *     listen = 127.0.0.1
 *     port = 7380
 *     ; optional: tls_cert, tls_key, request_timeout, fetch_timeout,
 *     ; connect_timeout, fetch_ca_file
 *
 *     [log NAME]            ; one section per witnessed log
 *     origin = otachain.invalid/0123456789abcdef
 *     key = <log verifier key, Ed25519 note key>   ; repeatable
 *     ; validating mode: all three or none
 *     tiles_url = https://repo.example/ledger
 *     repo_url = https://repo.example
 *     anchor = /etc/otachain-witness/1.root.json
 *
 * Every value is checked at load time (fail closed: an unknown key, a
 * duplicate, a missing mandatory key or a malformed value refuses the
 * whole file). The loaded config is a plain value owned by the caller
 * (wit_config_free).
 */
#ifndef OTACHAIN_WITNESS_CONFIG_H
#define OTACHAIN_WITNESS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/checkpoint.h"
#include "otachain/err.h"
#include "otachain/note.h"

#define WIT_MAX_LOGS        64           /* [log ...] sections */
#define WIT_MAX_LOG_KEYS    8            /* key lines of one log */
#define WIT_CONFIG_MAX_LEN  (64u * 1024) /* bytes of the config file */
#define WIT_CONFIG_MAX_LINE 4096         /* bytes of one line */
#define WIT_MAX_PATH        4096         /* bytes of a file path */
#define WIT_MAX_URL         2048         /* bytes of a URL */
#define WIT_MAX_SECTION     64           /* bytes of a log section name */

struct wit_log {
    char section[WIT_MAX_SECTION + 1]; /* NAME of [log NAME] */
    char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1];
    size_t origin_len;
    size_t nkeys;
    struct ota_note_verifier keys[WIT_MAX_LOG_KEYS]; /* type 0x01 */
    /* Validating mode (tiles_url, repo_url and anchor all set). */
    bool validating;
    char *tiles_url;   /* base of tile/entries/... (URL or directory) */
    char *repo_url;    /* base of metadata/<V>.<role>.json (URL or directory) */
    char *anchor_file; /* the trusted root.json every root entry chains from */
    uint8_t *anchor;   /* its bytes (loaded and self-verified at load time) */
    size_t anchor_len;
    uint64_t anchor_version;
};

struct wit_config {
    char name[OTA_NOTE_MAX_NAME + 1]; /* the witness's key name */
    size_t name_len;
    char *key_file;
    char *state_dir;
    char *listen; /* address to bind; default 127.0.0.1 */
    unsigned port;
    char *tls_cert; /* both or neither */
    char *tls_key;
    long request_timeout_s; /* evhttp read/write timeout; default 30 */
    long fetch_timeout_s;   /* one validating fetch, total; default 60 */
    long connect_timeout_s; /* default 10 */
    char *fetch_ca_file;    /* CA bundle for https fetches; NULL: system store */
    size_t nlogs;
    struct wit_log logs[WIT_MAX_LOGS];
};

/* Loads and checks path into *cfg (zeroed first), anchors included (each
 * is read, parsed as a root and must carry its own root threshold). On
 * failure *cfg holds nothing and det names the file and line.
 * OTA_ERR_FORMAT, OTA_ERR_TOO_LARGE, OTA_ERR_NOT_FOUND, OTA_ERR_IO,
 * OTA_ERR_NOMEM, or the anchor's TUF error. */
OTA_WUR int wit_config_load(struct wit_config *cfg, const char *path, struct ota_detail *det);

/* Frees what cfg owns; the struct is zeroed. Accepts a zeroed struct. */
void wit_config_free(struct wit_config *cfg);

/* The log whose origin is origin[0..len), or NULL. */
const struct wit_log *wit_config_find(const struct wit_config *cfg, const char *origin, size_t len);

#endif
