/* otachain-agent configuration loader (config.h). */
#include "config.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkin.h"
#include "otachain/checkpoint.h"
#include "otachain/fsutil.h"

struct parse_ctx {
    struct agent_config *cfg;
    const char *path;
    char seen[64][48]; /* "section.key" of single-valued keys seen */
    unsigned nseen;
    int err;
    struct ota_detail det;
};

static int fail(struct parse_ctx *pc, const char *section, const char *name, const char *why)
{
    if (pc->err == 0) {
        pc->err = OTA_ERR_CONFIG;
        ota_detail_set(&pc->det, "%s: [%s] %s: %s", pc->path, section, name, why);
    }
    return 0;
}

static int once(struct parse_ctx *pc, const char *section, const char *name)
{
    char key[48];

    snprintf(key, sizeof(key), "%.20s.%.24s", section, name);
    for (unsigned i = 0; i < pc->nseen; i++)
        if (strcmp(pc->seen[i], key) == 0)
            return fail(pc, section, name, "set twice");
    if (pc->nseen == sizeof(pc->seen) / sizeof(pc->seen[0]))
        return fail(pc, section, name, "too many keys");
    memcpy(pc->seen[pc->nseen++], key, sizeof(key));
    return 1;
}

static int str(struct parse_ctx *pc, char **dst, const char *section, const char *name,
               const char *value, size_t max)
{
    size_t n = strlen(value);

    if (!once(pc, section, name))
        return 0;
    if (n == 0 || n > max)
        return fail(pc, section, name, "empty or too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20)
            return fail(pc, section, name, "control character");
    *dst = strdup(value);
    if (*dst == NULL)
        return fail(pc, section, name, "out of memory");
    return 1;
}

static int path(struct parse_ctx *pc, char **dst, const char *section, const char *name,
                const char *value)
{
    if (value[0] != '/')
        return fail(pc, section, name, "must be an absolute path");
    return str(pc, dst, section, name, value, AGENT_MAX_PATH);
}

static int num(struct parse_ctx *pc, uint32_t *dst, const char *section, const char *name,
               const char *value, uint64_t min, uint64_t max)
{
    uint64_t v;

    if (!once(pc, section, name))
        return 0;
    if (ota_checkpoint_parse_u64(&v, value, strlen(value), max) != 0 || v < min) {
        char why[96];

        snprintf(why, sizeof(why), "a decimal number of %llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        return fail(pc, section, name, why);
    }
    *dst = (uint32_t)v;
    return 1;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static int url(struct parse_ctx *pc, char **dst, const char *section, const char *name,
               const char *value)
{
    if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
        return fail(pc, section, name, "an http:// or https:// URL");
    *dst = strdup(value);
    if (*dst == NULL)
        return fail(pc, section, name, "out of memory");
    return strlen(value) <= 2048 ? 1 : fail(pc, section, name, "too long");
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *pc = user;
    struct agent_config *c = pc->cfg;

    if (pc->err != 0)
        return 0;
    if (strcmp(section, "agent") == 0) {
        if (strcmp(name, "state_dir") == 0)
            return path(pc, &c->state_dir, section, name, value);
        if (strcmp(name, "product") == 0) {
            if (!name_ok(value, 128))
                return fail(pc, section, name, "1-128 of [A-Za-z0-9._-]");
            return str(pc, &c->product, section, name, value, 128);
        }
        if (strcmp(name, "hardware") == 0) {
            if (!name_ok(value, 128))
                return fail(pc, section, name, "1-128 of [A-Za-z0-9._-]");
            return str(pc, &c->hardware, section, name, value, 128);
        }
        if (strcmp(name, "factory_version") == 0)
            return str(pc, &c->factory_version, section, name, value, OTA_JOURNAL_VERSION_MAX);
        if (strcmp(name, "poll_interval") == 0)
            return num(pc, &c->poll_interval, section, name, value, 10, 7u * 24 * 3600);
        if (strcmp(name, "poll_jitter") == 0)
            return num(pc, &c->poll_jitter, section, name, value, 0, 24u * 3600);
        if (strcmp(name, "cmdline") == 0)
            return path(pc, &c->cmdline, section, name, value);
        if (strcmp(name, "reboot_command") == 0)
            return str(pc, &c->reboot_command, section, name, value, AGENT_MAX_PATH);
        if (strcmp(name, "reboot_timeout") == 0)
            return num(pc, &c->reboot_timeout, section, name, value, 1, 3600);
    } else if (strcmp(section, "trust") == 0) {
        if (strcmp(name, "root") == 0)
            return path(pc, &c->root, section, name, value);
        if (strcmp(name, "ca_file") == 0)
            return path(pc, &c->ca_file, section, name, value);
        if (strcmp(name, "device_cert") == 0)
            return path(pc, &c->device_cert, section, name, value);
        if (strcmp(name, "device_key") == 0)
            return path(pc, &c->device_key, section, name, value);
    } else if (strcmp(section, "source") == 0) {
        if (strcmp(name, "mirror") == 0) {
            if (c->nmirrors == OTA_AGENT_MAX_MIRRORS)
                return fail(pc, section, name, "too many mirrors");
            return url(pc, &c->mirrors[c->nmirrors++], section, name, value);
        }
        if (strcmp(name, "server") == 0) {
            if (!once(pc, section, name))
                return 0;
            return url(pc, &c->server, section, name, value);
        }
    } else if (strncmp(section, "slot ", 5) == 0) {
        const char *slot = section + 5;
        unsigned i;

        if (!name_ok(slot, OTA_BOOT_SLOT_MAX) || strchr(slot, '.') != NULL)
            return fail(pc, section, name, "slot names are 1-31 of [A-Za-z0-9_-]");
        for (i = 0; i < c->nslots; i++)
            if (strcmp(c->slot_name[i], slot) == 0)
                break;
        if (i == c->nslots) {
            if (c->nslots == OTA_AGENT_MAX_SLOTS)
                return fail(pc, section, name, "too many slots");
            c->slot_name[i] = strdup(slot);
            if (c->slot_name[i] == NULL)
                return fail(pc, section, name, "out of memory");
            c->nslots++;
        }
        if (strcmp(name, "device") == 0)
            return path(pc, &c->slot_device[i], section, name, value);
    } else if (strcmp(section, "bootloader") == 0) {
        if (strcmp(name, "backend") == 0) {
            if (strcmp(value, "uboot") != 0 && strcmp(value, "file") != 0)
                return fail(pc, section, name, "uboot or file");
            return str(pc, &c->backend, section, name, value, 16);
        }
        if (strcmp(name, "fw_env_config") == 0)
            return path(pc, &c->fw_env_config, section, name, value);
        if (strcmp(name, "slot_variable") == 0) {
            if (!name_ok(value, 64) || strchr(value, '.') != NULL)
                return fail(pc, section, name, "1-64 of [A-Za-z0-9_-]");
            return str(pc, &c->slot_variable, section, name, value, 64);
        }
        if (strcmp(name, "state_file") == 0)
            return path(pc, &c->state_file, section, name, value);
    } else if (strcmp(section, "hooks") == 0) {
        if (strcmp(name, "pre_install") == 0)
            return path(pc, &c->pre_install, section, name, value);
        if (strcmp(name, "post_install") == 0)
            return path(pc, &c->post_install, section, name, value);
        if (strcmp(name, "health_check") == 0)
            return path(pc, &c->health_check, section, name, value);
        if (strcmp(name, "timeout") == 0)
            return num(pc, &c->hook_timeout, section, name, value, 1, 24u * 3600);
    } else {
        return fail(pc, section, name, "unknown section");
    }
    return fail(pc, section, name, "unknown key");
}

static int missing(struct parse_ctx *pc, const char *section, const char *name)
{
    fail(pc, section, name, "missing");
    return pc->err;
}

int agent_config_load(struct agent_config *cfg, const char *file, struct ota_detail *det)
{
    struct parse_ctx pc;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc, line;

    memset(cfg, 0, sizeof(*cfg));
    memset(&pc, 0, sizeof(pc));
    pc.cfg = cfg;
    pc.path = file;
    rc = ota_fs_read(&data, &len, file, AGENT_CONFIG_MAX_LEN);
    if (rc != 0) {
        ota_detail_set(det, "configuration %s", file);
        return rc;
    }
    line = ini_parse_string((const char *)data, handler, &pc);
    free(data);
    if (pc.err == 0 && line != 0) {
        pc.err = OTA_ERR_CONFIG;
        ota_detail_set(&pc.det, "%s: line %d: not an INI line", file, line);
    }
    if (pc.err == 0 && cfg->state_dir == NULL)
        missing(&pc, "agent", "state_dir");
    if (pc.err == 0 && cfg->product == NULL)
        missing(&pc, "agent", "product");
    if (pc.err == 0 && cfg->hardware == NULL)
        missing(&pc, "agent", "hardware");
    if (pc.err == 0 && cfg->factory_version == NULL)
        missing(&pc, "agent", "factory_version");
    if (pc.err == 0 && cfg->root == NULL)
        missing(&pc, "trust", "root");
    if (pc.err == 0 && cfg->nmirrors == 0 && cfg->server == NULL)
        missing(&pc, "source", "mirror or server");
    if (pc.err == 0 && cfg->server != NULL && cfg->nmirrors != 0)
        fail(&pc, "source", "server", "either the update server or mirrors, not both");
    if (pc.err == 0 && cfg->server != NULL && cfg->device_cert == NULL)
        fail(&pc, "trust", "device_cert", "the update server needs the device's certificate");
    /* What a check-in carries must follow the device API's rules. */
    if (pc.err == 0 && cfg->server != NULL &&
        (strlen(cfg->product) > OTA_CHECKIN_NAME_MAX ||
         strlen(cfg->hardware) > OTA_CHECKIN_NAME_MAX))
        fail(&pc, "agent", "product",
             "with the update server, product and hardware ids are 1-64 "
             "characters");
    if (pc.err == 0 && cfg->server != NULL &&
        !ota_checkin_version_valid(cfg->factory_version, strlen(cfg->factory_version)))
        fail(&pc, "agent", "factory_version", "with the update server, a SemVer 2.0.0 version");
    if (pc.err == 0 && cfg->nslots < 2)
        fail(&pc, "slot", "device", "at least two [slot NAME] sections");
    for (unsigned i = 0; pc.err == 0 && i < cfg->nslots; i++)
        if (cfg->slot_device[i] == NULL)
            fail(&pc, "slot", cfg->slot_name[i], "no device");
    for (unsigned i = 0; pc.err == 0 && i < cfg->nslots; i++)
        for (unsigned k = i + 1; pc.err == 0 && k < cfg->nslots; k++)
            if (strcmp(cfg->slot_device[i], cfg->slot_device[k]) == 0)
                fail(&pc, "slot", cfg->slot_name[k], "same device as another slot");
    if (pc.err == 0 && cfg->backend == NULL)
        missing(&pc, "bootloader", "backend");
    if (pc.err == 0 && strcmp(cfg->backend, "uboot") == 0 && cfg->fw_env_config == NULL)
        cfg->fw_env_config = strdup("/etc/fw_env.config");
    if (pc.err == 0 && strcmp(cfg->backend, "file") == 0 && cfg->state_file == NULL)
        missing(&pc, "bootloader", "state_file");
    if (pc.err == 0 && cfg->cmdline == NULL)
        cfg->cmdline = strdup("/proc/cmdline");
    if (pc.err == 0 && cfg->reboot_command == NULL)
        cfg->reboot_command = strdup("systemctl reboot");
    if (pc.err == 0 && (cfg->cmdline == NULL || cfg->reboot_command == NULL ||
                        (strcmp(cfg->backend, "uboot") == 0 && cfg->fw_env_config == NULL))) {
        pc.err = OTA_ERR_NOMEM;
        ota_detail_set(&pc.det, "%s", file);
    }
    if (cfg->poll_interval == 0)
        cfg->poll_interval = 3600;
    if (cfg->reboot_timeout == 0)
        cfg->reboot_timeout = 60;
    if (cfg->hook_timeout == 0)
        cfg->hook_timeout = 120;
    if (pc.err != 0) {
        agent_config_free(cfg);
        if (det != NULL)
            *det = pc.det;
        return pc.err;
    }
    return 0;
}

void agent_config_free(struct agent_config *c)
{
    char **strs[] = {&c->state_dir,     &c->product,        &c->hardware,   &c->factory_version,
                     &c->cmdline,       &c->reboot_command, &c->root,       &c->ca_file,
                     &c->device_cert,   &c->device_key,     &c->server,     &c->backend,
                     &c->fw_env_config, &c->slot_variable,  &c->state_file, &c->pre_install,
                     &c->post_install,  &c->health_check};

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (unsigned i = 0; i < c->nmirrors; i++)
        free(c->mirrors[i]);
    for (unsigned i = 0; i < c->nslots; i++) {
        free(c->slot_name[i]);
        free(c->slot_device[i]);
    }
    memset(c, 0, sizeof(*c));
}
