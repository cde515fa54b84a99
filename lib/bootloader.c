/* Bootloader backends: the factory and the file backend (bootloader.h). */
#include "otachain/bootloader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootloader_int.h"

#define FILE_DEFAULT_LIMIT 3u

int ota_boot_slots_copy(struct ota_boot_slots *s, const struct ota_bootloader_cfg *cfg,
                        struct ota_detail *det)
{
    memset(s, 0, sizeof(*s));
    if (cfg->nslots < 2 || cfg->nslots > OTA_BOOT_MAX_SLOTS) {
        ota_detail_set(det, "bootloader: %u slots (2..%u)", cfg->nslots, OTA_BOOT_MAX_SLOTS);
        return OTA_ERR_INVALID_ARG;
    }
    for (unsigned i = 0; i < cfg->nslots; i++) {
        size_t n = strlen(cfg->slots[i]);

        if (n == 0 || n > OTA_BOOT_SLOT_MAX || !ota_boot_name_valid(cfg->slots[i])) {
            ota_detail_set(det, "bootloader: slot boot name '%.40s': 1-%u of [A-Za-z0-9_-]",
                           cfg->slots[i], OTA_BOOT_SLOT_MAX);
            return OTA_ERR_INVALID_ARG;
        }
        memcpy(s->name[i], cfg->slots[i], n + 1);
    }
    s->n = cfg->nslots;
    return 0;
}

bool ota_boot_name_valid(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

bool ota_boot_slots_has(const struct ota_boot_slots *s, const char *name)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return true;
    return false;
}

int ota_boot_parse_u32(uint32_t *out, const char *s, size_t n)
{
    uint64_t v = 0;

    *out = 0;
    if (n == 0 || n > 10)
        return OTA_ERR_BOOTENV_STATE;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return OTA_ERR_BOOTENV_STATE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return OTA_ERR_BOOTENV_STATE;
    *out = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------------ file */

enum { SEEN_SLOT = 1, SEEN_TRIAL = 2, SEEN_ATTEMPTS = 4, SEEN_LIMIT = 8 };

int ota_bootloader_file_parse(struct ota_boot_state *out, const char *text, size_t len,
                              struct ota_detail *det)
{
    unsigned seen = 0;
    unsigned lineno = 0;
    size_t pos = 0;

    memset(out, 0, sizeof(*out));
    if (len > OTA_BOOT_FILE_MAX) {
        ota_detail_set(det, "%zu bytes (at most %u)", len, OTA_BOOT_FILE_MAX);
        return OTA_ERR_BOOTENV_STATE;
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        const char *eq;
        size_t klen, vlen;
        const char *val;
        unsigned bit;

        pos += n + (nl != NULL ? 1 : 0);
        lineno++;
        if (n == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', n) != NULL || memchr(line, '\r', n) != NULL)
            goto bad;
        eq = memchr(line, '=', n);
        if (eq == NULL)
            goto bad;
        klen = (size_t)(eq - line);
        val = eq + 1;
        vlen = n - klen - 1;
        if (klen == 4 && memcmp(line, "slot", 4) == 0) {
            bit = SEEN_SLOT;
            if (vlen == 0 || vlen > OTA_BOOT_SLOT_MAX)
                goto bad;
            memcpy(out->slot, val, vlen);
            out->slot[vlen] = '\0';
            if (!ota_boot_name_valid(out->slot))
                goto bad;
        } else if (klen == 5 && memcmp(line, "trial", 5) == 0) {
            bit = SEEN_TRIAL;
            if (vlen != 1 || (val[0] != '0' && val[0] != '1'))
                goto bad;
            out->trial = val[0] == '1';
        } else if (klen == 8 && memcmp(line, "attempts", 8) == 0) {
            bit = SEEN_ATTEMPTS;
            if (ota_boot_parse_u32(&out->attempts, val, vlen) != 0)
                goto bad;
        } else if (klen == 5 && memcmp(line, "limit", 5) == 0) {
            bit = SEEN_LIMIT;
            if (ota_boot_parse_u32(&out->limit, val, vlen) != 0)
                goto bad;
        } else {
            goto bad;
        }
        if (seen & bit)
            goto bad;
        seen |= bit;
    }
    if (!(seen & SEEN_SLOT)) {
        ota_detail_set(det, "no slot= line");
        memset(out, 0, sizeof(*out));
        return OTA_ERR_BOOTENV_STATE;
    }
    return 0;
bad:
    ota_detail_set(
        det, "line %u is not one of slot=NAME, trial=0|1, attempts=N, limit=N (each once)", lineno);
    memset(out, 0, sizeof(*out));
    return OTA_ERR_BOOTENV_STATE;
}

struct file_be {
    char *path;
    char *dir;
    uint32_t limit;
    struct ota_boot_slots slots;
    const struct ota_fs_hook *hook;
};

static int file_get(void *ctx, struct ota_boot_state *out, struct ota_detail *det)
{
    struct file_be *f = ctx;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ota_fs_read_nofollow(&data, &len, f->path, OTA_BOOT_FILE_MAX);
    if (rc == OTA_ERR_NOT_FOUND) {
        ota_detail_set(det, "%s: missing (provision it when the device is made)", f->path);
        return OTA_ERR_BOOTENV_CONFIG;
    }
    if (rc == OTA_ERR_TOO_LARGE)
        rc = OTA_ERR_BOOTENV_STATE;
    if (rc != 0) {
        ota_detail_set(det, "reading %s", f->path);
        return rc;
    }
    rc = ota_bootloader_file_parse(out, (const char *)data, len, det);
    free(data);
    if (rc == 0 && !ota_boot_slots_has(&f->slots, out->slot)) {
        ota_detail_set(det, "slot=%s is not a configured slot", out->slot);
        rc = OTA_ERR_BOOTENV_STATE;
    }
    if (rc != 0)
        ota_detail_prefix(det, f->path);
    return rc;
}

static int file_writable(const struct file_be *f, struct ota_detail *det)
{
    if (access(f->dir, W_OK) != 0) {
        ota_detail_set(det, "%s: %s", f->dir, strerror(errno));
        return errno == EROFS || errno == EACCES || errno == EPERM ? OTA_ERR_BOOTENV_READONLY
                                                                   : OTA_ERR_IO;
    }
    return 0;
}

static int file_set(void *ctx, const char *slot, bool trial, struct ota_detail *det)
{
    struct file_be *f = ctx;
    struct ota_boot_state cur, back;
    char text[256];
    int n, rc;

    if (!ota_boot_slots_has(&f->slots, slot)) {
        ota_detail_set(det, "slot %.40s is not configured", slot);
        return OTA_ERR_INVALID_ARG;
    }
    rc = file_get(ctx, &cur, det);
    if (rc != 0)
        return rc;
    rc = file_writable(f, det);
    if (rc != 0)
        return rc;
    n = snprintf(text, sizeof(text),
                 "# otachain boot state (docs/agent.md): written by otachain-agent\n"
                 "slot=%s\ntrial=%d\nattempts=0\nlimit=%u\n",
                 slot, trial ? 1 : 0, cur.limit != 0 ? cur.limit : f->limit);
    if (n < 0 || (size_t)n >= sizeof(text))
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_replace(f->path, text, (size_t)n, 0644, f->hook);
    if (rc == OTA_ERR_PERMISSION)
        rc = OTA_ERR_BOOTENV_READONLY;
    if (rc != 0) {
        ota_detail_set(det, "writing %s", f->path);
        return rc;
    }
    rc = file_get(ctx, &back, det);
    if (rc != 0)
        return rc;
    if (strcmp(back.slot, slot) != 0 || back.trial != trial || back.attempts != 0) {
        ota_detail_set(det, "%s: read back slot=%s trial=%d attempts=%u after the store", f->path,
                       back.slot, back.trial, back.attempts);
        return OTA_ERR_BOOTENV_VERIFY;
    }
    return 0;
}

static int file_check(void *ctx, struct ota_detail *det)
{
    struct ota_boot_state st;
    int rc = file_get(ctx, &st, det);

    return rc != 0 ? rc : file_writable(ctx, det);
}

static void file_destroy(void *ctx)
{
    struct file_be *f = ctx;

    if (f == NULL)
        return;
    free(f->path);
    free(f->dir);
    free(f);
}

static int file_new(struct ota_bootloader **out, const struct ota_bootloader_cfg *cfg,
                    struct ota_detail *det)
{
    struct ota_bootloader *b = calloc(1, sizeof(*b));
    struct file_be *f = calloc(1, sizeof(*f));
    char *slash;
    int rc;

    if (b == NULL || f == NULL) {
        free(b);
        free(f);
        return OTA_ERR_NOMEM;
    }
    rc = ota_boot_slots_copy(&f->slots, cfg, det);
    if (rc == 0 && (cfg->path == NULL || cfg->path[0] != '/')) {
        ota_detail_set(det, "file backend: the state file must be an absolute path");
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0) {
        f->path = strdup(cfg->path);
        f->dir = strdup(cfg->path);
        if (f->path == NULL || f->dir == NULL)
            rc = OTA_ERR_NOMEM;
    }
    if (rc != 0) {
        file_destroy(f);
        free(b);
        return rc;
    }
    slash = strrchr(f->dir, '/');
    if (slash == f->dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    f->limit = cfg->file_limit != 0 ? cfg->file_limit : FILE_DEFAULT_LIMIT;
    f->hook = cfg->hook;
    b->name = "file";
    b->get = file_get;
    b->set = file_set;
    b->check = file_check;
    b->destroy = file_destroy;
    b->ctx = f;
    *out = b;
    return 0;
}

/* --------------------------------------------------------------- factory */

int ota_bootloader_new(struct ota_bootloader **out, const struct ota_bootloader_cfg *cfg,
                       struct ota_detail *det)
{
    *out = NULL;
    if (cfg->backend == NULL) {
        ota_detail_set(det, "no bootloader backend named");
        return OTA_ERR_INVALID_ARG;
    }
    if (strcmp(cfg->backend, "file") == 0)
        return file_new(out, cfg, det);
    if (strcmp(cfg->backend, "uboot") == 0)
        return ota_bootloader_uboot_new(out, cfg, det);
    ota_detail_set(det, "bootloader backend '%.40s': one of uboot, file", cfg->backend);
    return OTA_ERR_INVALID_ARG;
}

void ota_bootloader_free(struct ota_bootloader *b)
{
    if (b == NULL)
        return;
    if (b->destroy != NULL)
        b->destroy(b->ctx);
    free(b);
}
