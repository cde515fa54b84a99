/* otachain-witness configuration loader (config.h). */
#include "config.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/fsutil.h"
#include "otachain/tuf.h"

#define LOG_PREFIX     "log "
#define LOG_PREFIX_LEN 4

/* Which single-valued keys a section has set, to refuse duplicates. */
enum {
    SEEN_NAME = 1u << 0,
    SEEN_KEY_FILE = 1u << 1,
    SEEN_STATE_DIR = 1u << 2,
    SEEN_LISTEN = 1u << 3,
    SEEN_PORT = 1u << 4,
    SEEN_TLS_CERT = 1u << 5,
    SEEN_TLS_KEY = 1u << 6,
    SEEN_REQ_TIMEOUT = 1u << 7,
    SEEN_FETCH_TIMEOUT = 1u << 8,
    SEEN_CONN_TIMEOUT = 1u << 9,
    SEEN_CA = 1u << 10,
    SEEN_ORIGIN = 1u << 11,
    SEEN_TILES = 1u << 12,
    SEEN_REPO = 1u << 13,
    SEEN_ANCHOR = 1u << 14,
};

struct parse_ctx {
    struct wit_config *cfg;
    unsigned witness_seen;
    unsigned log_seen[WIT_MAX_LOGS];
    int err; /* first error (the handler stops at it) */
    struct ota_detail det;
};

static int fail(struct parse_ctx *pc, int err, const char *fmt, const char *a, const char *b)
{
    if (pc->err == 0) {
        pc->err = err;
        ota_detail_set(&pc->det, fmt, a, b);
    }
    return 0;
}

/* Copies value into a new string of at most max bytes. */
static int set_string(struct parse_ctx *pc, char **dst, const char *section, const char *name,
                      const char *value, size_t max)
{
    size_t n = strlen(value);

    if (n == 0 || n > max)
        return fail(pc, OTA_ERR_FORMAT, "[%s] %s: empty or too long", section, name);
    *dst = strdup(value);
    if (*dst == NULL)
        return fail(pc, OTA_ERR_NOMEM, "[%s] %s: out of memory", section, name);
    return 1;
}

static int set_long(struct parse_ctx *pc, long *dst, const char *section, const char *name,
                    const char *value, uint64_t min, uint64_t max)
{
    uint64_t v;

    if (ota_checkpoint_parse_u64(&v, value, strlen(value), max) != 0 || v < min)
        return fail(pc, OTA_ERR_FORMAT, "[%s] %s: expected a decimal number in range", section,
                    name);
    *dst = (long)v;
    return 1;
}

static bool once(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

static int witness_key(struct parse_ctx *pc, const char *name, const char *value)
{
    struct wit_config *cfg = pc->cfg;
    long v;

#define ONCE(bit)                                                                                  \
    if (!once(&pc->witness_seen, bit))                                                             \
    return fail(pc, OTA_ERR_FORMAT, "[%s] %s: set twice", "witness", name)

    if (strcmp(name, "name") == 0) {
        ONCE(SEEN_NAME);
        size_t n = strlen(value);
        if (!ota_note_name_valid(value, n))
            return fail(pc, OTA_ERR_FORMAT,
                        "[%s] %s: not a valid note key name (1-255 bytes, no '+' or spaces)",
                        "witness", name);
        memcpy(cfg->name, value, n + 1);
        cfg->name_len = n;
        return 1;
    }
    if (strcmp(name, "key_file") == 0) {
        ONCE(SEEN_KEY_FILE);
        return set_string(pc, &cfg->key_file, "witness", name, value, WIT_MAX_PATH);
    }
    if (strcmp(name, "state_dir") == 0) {
        ONCE(SEEN_STATE_DIR);
        return set_string(pc, &cfg->state_dir, "witness", name, value, WIT_MAX_PATH);
    }
    if (strcmp(name, "listen") == 0) {
        ONCE(SEEN_LISTEN);
        free(cfg->listen);
        cfg->listen = NULL;
        return set_string(pc, &cfg->listen, "witness", name, value, 255);
    }
    if (strcmp(name, "port") == 0) {
        ONCE(SEEN_PORT);
        if (!set_long(pc, &v, "witness", name, value, 0, 65535))
            return 0;
        cfg->port = (unsigned)v;
        return 1;
    }
    if (strcmp(name, "tls_cert") == 0) {
        ONCE(SEEN_TLS_CERT);
        return set_string(pc, &cfg->tls_cert, "witness", name, value, WIT_MAX_PATH);
    }
    if (strcmp(name, "tls_key") == 0) {
        ONCE(SEEN_TLS_KEY);
        return set_string(pc, &cfg->tls_key, "witness", name, value, WIT_MAX_PATH);
    }
    if (strcmp(name, "request_timeout") == 0) {
        ONCE(SEEN_REQ_TIMEOUT);
        return set_long(pc, &cfg->request_timeout_s, "witness", name, value, 1, 3600);
    }
    if (strcmp(name, "fetch_timeout") == 0) {
        ONCE(SEEN_FETCH_TIMEOUT);
        return set_long(pc, &cfg->fetch_timeout_s, "witness", name, value, 1, 3600);
    }
    if (strcmp(name, "connect_timeout") == 0) {
        ONCE(SEEN_CONN_TIMEOUT);
        return set_long(pc, &cfg->connect_timeout_s, "witness", name, value, 1, 600);
    }
    if (strcmp(name, "fetch_ca_file") == 0) {
        ONCE(SEEN_CA);
        return set_string(pc, &cfg->fetch_ca_file, "witness", name, value, WIT_MAX_PATH);
    }
#undef ONCE
    return fail(pc, OTA_ERR_FORMAT, "[%s] unknown key '%s'", "witness", name);
}

/* The log of section "log NAME", created on first sight. */
static struct wit_log *log_section(struct parse_ctx *pc, const char *section, unsigned **seen)
{
    struct wit_config *cfg = pc->cfg;
    const char *lname = section + LOG_PREFIX_LEN;
    size_t n = strlen(lname);

    for (size_t i = 0; i < cfg->nlogs; i++) {
        if (strcmp(cfg->logs[i].section, lname) == 0) {
            *seen = &pc->log_seen[i];
            return &cfg->logs[i];
        }
    }
    if (n == 0 || n > WIT_MAX_SECTION) {
        fail(pc, OTA_ERR_FORMAT, "[%s%s]: log name empty or longer than 64 bytes", LOG_PREFIX,
             lname);
        return NULL;
    }
    if (cfg->nlogs == WIT_MAX_LOGS) {
        fail(pc, OTA_ERR_TOO_LARGE, "[%s%s]: more than 64 logs", LOG_PREFIX, lname);
        return NULL;
    }
    struct wit_log *log = &cfg->logs[cfg->nlogs];
    memcpy(log->section, lname, n + 1);
    *seen = &pc->log_seen[cfg->nlogs];
    cfg->nlogs++;
    return log;
}

static int log_key(struct parse_ctx *pc, const char *section, const char *name, const char *value)
{
    unsigned *seen;
    struct wit_log *log = log_section(pc, section, &seen);
    struct ota_detail det;

    if (log == NULL)
        return 0;
#define ONCE(bit)                                                                                  \
    if (!once(seen, bit))                                                                          \
    return fail(pc, OTA_ERR_FORMAT, "[%s] %s: set twice", section, name)

    if (strcmp(name, "origin") == 0) {
        ONCE(SEEN_ORIGIN);
        size_t n = strlen(value);
        struct ota_checkpoint probe;
        char text[OTA_CHECKPOINT_MAX_ORIGIN + 64];

        if (n == 0 || n > OTA_CHECKPOINT_MAX_ORIGIN)
            return fail(pc, OTA_ERR_FORMAT, "[%s] %s: empty or longer than 255 bytes", section,
                        name);
        /* The origin must be one a checkpoint can carry. */
        snprintf(text, sizeof(text), "%s\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                 value);
        if (ota_checkpoint_parse(&probe, text, strlen(text), NULL) != 0)
            return fail(pc, OTA_ERR_FORMAT, "[%s] %s: not a valid checkpoint origin line", section,
                        name);
        memcpy(log->origin, value, n + 1);
        log->origin_len = n;
        return 1;
    }
    if (strcmp(name, "key") == 0) {
        if (log->nkeys == WIT_MAX_LOG_KEYS)
            return fail(pc, OTA_ERR_TOO_LARGE, "[%s] %s: more than 8 keys", section, name);
        struct ota_note_verifier *v = &log->keys[log->nkeys];
        det.msg[0] = '\0';
        int rc = ota_note_verifier_parse(v, value, strlen(value), &det);
        if (rc != 0)
            return fail(pc, rc, "[%s] key: %s", section, det.msg);
        if (v->type != OTA_NOTE_TYPE_ED25519)
            return fail(pc, OTA_ERR_KEY_FORMAT,
                        "[%s] %s: a log key must be an Ed25519 note key (type 0x01)", section,
                        name);
        for (size_t i = 0; i < log->nkeys; i++) {
            if (log->keys[i].key_id == v->key_id && strcmp(log->keys[i].name, v->name) == 0)
                return fail(pc, OTA_ERR_FORMAT, "[%s] %s: listed twice", section, name);
        }
        log->nkeys++;
        return 1;
    }
    if (strcmp(name, "tiles_url") == 0) {
        ONCE(SEEN_TILES);
        return set_string(pc, &log->tiles_url, section, name, value, WIT_MAX_URL);
    }
    if (strcmp(name, "repo_url") == 0) {
        ONCE(SEEN_REPO);
        return set_string(pc, &log->repo_url, section, name, value, WIT_MAX_URL);
    }
    if (strcmp(name, "anchor") == 0) {
        ONCE(SEEN_ANCHOR);
        return set_string(pc, &log->anchor_file, section, name, value, WIT_MAX_PATH);
    }
#undef ONCE
    return fail(pc, OTA_ERR_FORMAT, "[%s] unknown key '%s'", section, name);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *pc = user;

    if (pc->err != 0)
        return 0;
    if (strcmp(section, "witness") == 0)
        return witness_key(pc, name, value);
    if (strncmp(section, LOG_PREFIX, LOG_PREFIX_LEN) == 0)
        return log_key(pc, section, name, value);
    if (section[0] == '\0')
        return fail(pc, OTA_ERR_FORMAT, "%s%s: key outside any section", "", name);
    return fail(pc, OTA_ERR_FORMAT, "unknown section [%s]%s", section, "");
}

/* The file's lines all fit inih's buffer (so none is silently split),
 * and it holds no NUL byte. */
static int check_text(const uint8_t *data, size_t len, struct ota_detail *det)
{
    size_t line = 1;
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\0') {
            ota_detail_set(det, "line %zu: NUL byte", line);
            return OTA_ERR_FORMAT;
        }
        if (data[i] == '\n') {
            line++;
            col = 0;
        } else if (++col > WIT_CONFIG_MAX_LINE) {
            ota_detail_set(det, "line %zu: longer than %d bytes", line, WIT_CONFIG_MAX_LINE);
            return OTA_ERR_TOO_LARGE;
        }
    }
    return 0;
}

static int load_anchor(struct wit_log *log, struct ota_detail *det)
{
    struct ota_tuf_meta *root = NULL;
    int rc = ota_fs_read(&log->anchor, &log->anchor_len, log->anchor_file, OTA_TUF_ROOT_MAX_LEN);

    if (rc != 0) {
        ota_detail_set(det, "[log %s] anchor %s: %s", log->section, log->anchor_file,
                       ota_strerror(rc));
        return rc;
    }
    rc = ota_tuf_parse(&root, log->anchor, log->anchor_len, OTA_TUF_ROOT, det);
    if (rc == 0)
        rc = ota_tuf_verify_role(root, root, OTA_TUF_ROOT, det);
    if (rc == 0)
        log->anchor_version = root->version;
    ota_tuf_meta_free(root);
    if (rc != 0) {
        char where[WIT_MAX_PATH + 96];
        snprintf(where, sizeof(where), "[log %s] anchor %s", log->section, log->anchor_file);
        ota_detail_prefix(det, where);
    }
    return rc;
}

/* Whole-file rules that no single line shows. */
static int check_config(struct wit_config *cfg, struct ota_detail *det)
{
    if (cfg->name_len == 0 || cfg->key_file == NULL || cfg->state_dir == NULL) {
        ota_detail_set(det, "[witness] needs name, key_file and state_dir");
        return OTA_ERR_FORMAT;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        ota_detail_set(det, "[witness] tls_cert and tls_key go together");
        return OTA_ERR_FORMAT;
    }
    for (size_t i = 0; i < cfg->nlogs; i++) {
        struct wit_log *log = &cfg->logs[i];
        int nval = (log->tiles_url != NULL) + (log->repo_url != NULL) + (log->anchor_file != NULL);

        if (log->origin_len == 0 || log->nkeys == 0) {
            ota_detail_set(det, "[log %s] needs origin and at least one key", log->section);
            return OTA_ERR_FORMAT;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->logs[j].origin, log->origin) == 0) {
                ota_detail_set(det, "[log %s] origin already witnessed by [log %s]", log->section,
                               cfg->logs[j].section);
                return OTA_ERR_FORMAT;
            }
        }
        if (nval != 0 && nval != 3) {
            ota_detail_set(det,
                           "[log %s] validating mode needs tiles_url, repo_url and anchor together",
                           log->section);
            return OTA_ERR_FORMAT;
        }
        log->validating = nval == 3;
        if (log->validating) {
            int rc = load_anchor(log, det);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int wit_config_load(struct wit_config *cfg, const char *path, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct parse_ctx *pc;
    int rc;
    int line;

    memset(cfg, 0, sizeof(*cfg));
    rc = ota_fs_read(&data, &len, path, WIT_CONFIG_MAX_LEN);
    if (rc != 0) {
        ota_detail_set(det, "config %s: %s", path, ota_strerror(rc));
        return rc;
    }
    rc = check_text(data, len, det);
    if (rc != 0) {
        ota_detail_prefix(det, path);
        free(data);
        return rc;
    }
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        free(data);
        return OTA_ERR_NOMEM;
    }
    pc->cfg = cfg;
    cfg->request_timeout_s = 30;
    cfg->fetch_timeout_s = 60;
    cfg->connect_timeout_s = 10;
    cfg->port = 7380;

    /* inih's run-time knobs (Debian's build has them as process-wide
     * variables): a heap line buffer that fits every line check_text let
     * through, values verbatim (no inline comments, no continuation
     * lines), stop at the first error. Same values on every call. */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = WIT_CONFIG_MAX_LINE + 3;
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = true;

    line = ini_parse_string((const char *)data, handler, pc);
    free(data);
    if (line != 0 || pc->err != 0) {
        rc = pc->err != 0 ? pc->err : OTA_ERR_FORMAT;
        if (line > 0 && pc->err != 0)
            ota_detail_set(det, "config %s line %d: %s", path, line, pc->det.msg);
        else if (line > 0)
            ota_detail_set(det, "config %s line %d: not 'key = value', '[section]' or a comment",
                           path, line);
        else
            ota_detail_set(det, "config %s: %s", path, pc->err ? pc->det.msg : "parse error");
        free(pc);
        wit_config_free(cfg);
        return rc;
    }
    free(pc);
    if (cfg->listen == NULL && (cfg->listen = strdup("127.0.0.1")) == NULL) {
        wit_config_free(cfg);
        return OTA_ERR_NOMEM;
    }
    rc = check_config(cfg, det);
    if (rc != 0) {
        char where[WIT_MAX_PATH + 16];
        snprintf(where, sizeof(where), "config %s", path);
        ota_detail_prefix(det, where);
        wit_config_free(cfg);
    }
    return rc;
}

void wit_config_free(struct wit_config *cfg)
{
    free(cfg->key_file);
    free(cfg->state_dir);
    free(cfg->listen);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->fetch_ca_file);
    for (size_t i = 0; i < cfg->nlogs; i++) {
        free(cfg->logs[i].tiles_url);
        free(cfg->logs[i].repo_url);
        free(cfg->logs[i].anchor_file);
        free(cfg->logs[i].anchor);
    }
    memset(cfg, 0, sizeof(*cfg));
}

const struct wit_log *wit_config_find(const struct wit_config *cfg, const char *origin, size_t len)
{
    for (size_t i = 0; i < cfg->nlogs; i++) {
        if (cfg->logs[i].origin_len == len && memcmp(cfg->logs[i].origin, origin, len) == 0)
            return &cfg->logs[i];
    }
    return NULL;
}
