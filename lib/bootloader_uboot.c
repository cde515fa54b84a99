/* The U-Boot backend (bootloader.h) through libubootenv.
 *
 * Variables (docs/agent.md, contrib/u-boot/boot.cmd):
 *   <slot_var>         boot name of the slot bootcmd boots (default
 *                      otachain_slot)
 *   upgrade_available  1 while a new slot is on trial; U-Boot's
 *                      CONFIG_BOOTCOUNT_ENV saves bootcount only then
 *   bootcount          boot attempts of this trial
 *   bootlimit          attempts allowed; beyond it U-Boot runs altbootcmd,
 *                      which boots the other slot and clears the trial
 *
 * libubootenv 0.3.2 takes a blocking flock on a fixed lock file
 * (/var/lock/fw_printenv.lock) inside libuboot_open, keeps it locked when
 * libuboot_open fails on a bad CRC (the next call in the same process
 * then blocks forever), and ignores fsync's result. So every libubootenv
 * call runs in a child process with a deadline (a lock held by a hung
 * fw_setenv costs OTA_ERR_LOCKED, not a hung agent; a leaked lock dies
 * with the child), and after every store we fsync each environment
 * device again, drop its cached pages and read the whole environment
 * back in a new child, comparing what we stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h> /* libuboot.h uses size_t without including it */
#include <libuboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootloader_int.h"

#define DEFAULT_SLOT_VAR "otachain_slot"
#define DEFAULT_CALL_MS  10000u
#define CONFIG_MAX       4096u
#define MAX_DEVICES      2u
#define VAR_MAX          64u /* bytes of a variable name */

struct uboot_be {
    char *config;
    char slot_var[VAR_MAX + 1];
    uint32_t call_ms;
    struct ota_boot_slots slots;
    const struct ota_fs_hook *hook;
    char dev[MAX_DEVICES][256];
    unsigned ndev;
};

/* The device paths named by fw_env.config (first field of each line),
 * for the write check and the fsync after a store; libubootenv parses
 * everything else. */
static int read_devices(struct uboot_be *u, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0, pos = 0;
    int rc = ota_fs_read(&data, &len, u->config, CONFIG_MAX);

    u->ndev = 0;
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", u->config,
                       rc == OTA_ERR_NOT_FOUND ? "missing" : ota_errname(rc));
        return OTA_ERR_BOOTENV_CONFIG;
    }
    while (pos < len) {
        const char *line = (const char *)data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        size_t i = 0, start;

        pos += n + (nl != NULL ? 1 : 0);
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == n || line[i] == '#')
            continue;
        start = i;
        while (i < n && line[i] != ' ' && line[i] != '\t')
            i++;
        if (u->ndev == MAX_DEVICES || i - start >= sizeof(u->dev[0])) {
            ota_detail_set(det, "%s: more than %u environment lines, or a path too long", u->config,
                           MAX_DEVICES);
            free(data);
            return OTA_ERR_BOOTENV_CONFIG;
        }
        memcpy(u->dev[u->ndev], line + start, i - start);
        u->dev[u->ndev][i - start] = '\0';
        u->ndev++;
    }
    free(data);
    if (u->ndev == 0) {
        ota_detail_set(det, "%s: names no environment device", u->config);
        return OTA_ERR_BOOTENV_CONFIG;
    }
    return 0;
}

/* Opens a libubootenv context on the environment. */
static int env_open(struct uboot_ctx **out, struct uboot_be *u, struct ota_detail *det)
{
    struct uboot_ctx *ctx = NULL;
    int rc = read_devices(u, det);

    *out = NULL;
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < u->ndev; i++) {
        int fd = open(u->dev[i], O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            ota_detail_set(det, "%s: environment device %s: %s", u->config, u->dev[i],
                           strerror(errno));
            return OTA_ERR_BOOTENV_CONFIG;
        }
        close(fd);
    }
    if (libuboot_initialize(&ctx, NULL) < 0)
        return OTA_ERR_NOMEM;
    if (libuboot_read_config(ctx, u->config) < 0) {
        libuboot_exit(ctx);
        ota_detail_set(det, "%s: libubootenv refused the configuration", u->config);
        return OTA_ERR_BOOTENV_CONFIG;
    }
    if (libuboot_open(ctx) < 0) {
        libuboot_exit(ctx);
        ota_detail_set(det, "%s: no environment copy with a valid CRC", u->config);
        return OTA_ERR_BOOTENV_CRC;
    }
    *out = ctx;
    return 0;
}

static void env_close(struct uboot_ctx *ctx)
{
    if (ctx == NULL)
        return;
    libuboot_close(ctx);
    libuboot_exit(ctx);
}

static int get_counter(uint32_t *out, struct uboot_ctx *ctx, const char *name,
                       struct ota_detail *det)
{
    char *v = libuboot_get_env(ctx, name);
    int rc = 0;

    *out = 0;
    if (v == NULL)
        return 0;
    if (ota_boot_parse_u32(out, v, strlen(v)) != 0) {
        ota_detail_set(det, "%s=%.40s: not a decimal counter", name, v);
        rc = OTA_ERR_BOOTENV_STATE;
    }
    free(v);
    return rc;
}

static int env_read(struct ota_boot_state *out, struct uboot_ctx *ctx, const struct uboot_be *u,
                    struct ota_detail *det)
{
    char *slot = libuboot_get_env(ctx, u->slot_var);
    uint32_t upgrade = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (slot == NULL) {
        ota_detail_set(det, "%s: no variable %s (the slot to boot)", u->config, u->slot_var);
        return OTA_ERR_BOOTENV_STATE;
    }
    if (strlen(slot) > OTA_BOOT_SLOT_MAX || !ota_boot_slots_has(&u->slots, slot)) {
        ota_detail_set(det, "%s: %s=%.40s is not a configured slot", u->config, u->slot_var, slot);
        rc = OTA_ERR_BOOTENV_STATE;
    } else {
        memcpy(out->slot, slot, strlen(slot) + 1);
    }
    free(slot);
    if (rc == 0)
        rc = get_counter(&upgrade, ctx, "upgrade_available", det);
    if (rc == 0 && upgrade > 1) {
        ota_detail_set(det, "upgrade_available=%u: 0 or 1", upgrade);
        rc = OTA_ERR_BOOTENV_STATE;
    }
    if (rc == 0)
        rc = get_counter(&out->attempts, ctx, "bootcount", det);
    if (rc == 0)
        rc = get_counter(&out->limit, ctx, "bootlimit", det);
    out->trial = upgrade == 1;
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* One libubootenv operation, run in a child (see the top of the file). */
enum uboot_op { OP_GET, OP_SET };

struct child_result {
    int rc;
    struct ota_boot_state st;
    char detail[OTA_DETAIL_LEN];
};

static int child_op(struct child_result *res, struct uboot_be *u, enum uboot_op op,
                    const char *slot, bool trial)
{
    struct uboot_ctx *ctx;
    struct ota_detail det = {{0}};
    int rc = env_open(&ctx, u, &det);

    memset(res, 0, sizeof(*res));
    if (rc == 0) {
        rc = env_read(&res->st, ctx, u, &det);
        if (rc == 0 && op == OP_SET &&
            (libuboot_set_env(ctx, u->slot_var, slot) < 0 ||
             libuboot_set_env(ctx, "upgrade_available", trial ? "1" : "0") < 0 ||
             libuboot_set_env(ctx, "bootcount", "0") < 0)) {
            ota_detail_set(&det, "%s: setting variables", u->config);
            rc = OTA_ERR_NOMEM;
        }
        if (rc == 0 && op == OP_SET && libuboot_env_store(ctx) < 0) {
            ota_detail_set(&det, "%s: libubootenv could not store the environment", u->config);
            rc = OTA_ERR_IO;
        }
        env_close(ctx);
    }
    res->rc = rc;
    memcpy(res->detail, det.msg, sizeof(res->detail));
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs child_op in a child process and waits for its answer at most
 * u->call_ms: OTA_ERR_LOCKED after that (the child is killed). */
static int run_child(struct ota_boot_state *st, struct uboot_be *u, enum uboot_op op,
                     const char *slot, bool trial, struct ota_detail *det)
{
    struct child_result res;
    int fds[2];
    pid_t pid;
    size_t got = 0;
    int64_t end = mono_ms() + u->call_ms;
    int status, rc = 0;

    memset(st, 0, sizeof(*st));
    if (pipe(fds) != 0)
        return OTA_ERR_IO;
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        ota_detail_set(det, "fork: %s", strerror(errno));
        return OTA_ERR_IO;
    }
    if (pid == 0) {
        close(fds[0]);
        child_op(&res, u, op, slot, trial);
        _exit(ota_fs_write_all(fds[1], &res, sizeof(res)) == 0 ? 0 : 1);
    }
    close(fds[1]);
    while (got < sizeof(res)) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int64_t left = end - mono_ms();
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            ota_detail_set(det,
                           "%s: libubootenv did not answer within %u ms (is its lock "
                           "/var/lock/fw_printenv.lock held by a hung fw_setenv?)",
                           u->config, u->call_ms);
            rc = OTA_ERR_LOCKED;
            kill(pid, SIGKILL);
            break;
        }
        n = read(fds[0], (uint8_t *)&res + got, sizeof(res) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ota_detail_set(det, "%s: the libubootenv child died", u->config);
            rc = OTA_ERR_IO;
            break;
        }
        got += (size_t)n;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc != 0)
        return rc;
    if (res.rc != 0) {
        ota_detail_set(det, "%s", res.detail);
        return res.rc;
    }
    *st = res.st;
    return 0;
}

static int uboot_get(void *vctx, struct ota_boot_state *out, struct ota_detail *det)
{
    return run_child(out, vctx, OP_GET, NULL, false, det);
}

/* Every environment device can be opened for writing. */
static int writable(const struct uboot_be *u, struct ota_detail *det)
{
    for (unsigned i = 0; i < u->ndev; i++) {
        int fd = open(u->dev[i], O_RDWR | O_CLOEXEC);

        if (fd < 0) {
            int e = errno;

            ota_detail_set(det, "environment device %s: %s", u->dev[i], strerror(e));
            return e == EROFS || e == EACCES || e == EPERM ? OTA_ERR_BOOTENV_READONLY : OTA_ERR_IO;
        }
        close(fd);
    }
    return 0;
}

/* libubootenv does not check fsync: sync each device again, then drop its
 * cached pages so that the read-back comes from the medium. */
static int sync_devices(const struct uboot_be *u, struct ota_detail *det)
{
    for (unsigned i = 0; i < u->ndev; i++) {
        int fd, rc = ota_fs_hook_step(u->hook, OTA_FS_STEP_FSYNC, u->dev[i]);

        if (rc != 0)
            return rc;
        fd = open(u->dev[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            ota_detail_set(det, "syncing environment device %s: %s", u->dev[i], strerror(errno));
            if (fd >= 0)
                close(fd);
            return OTA_ERR_IO;
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    return 0;
}

static int uboot_set(void *vctx, const char *slot, bool trial, struct ota_detail *det)
{
    struct uboot_be *u = vctx;
    struct ota_boot_state cur, back;
    int rc;

    if (!ota_boot_slots_has(&u->slots, slot)) {
        ota_detail_set(det, "slot %.40s is not configured", slot);
        return OTA_ERR_INVALID_ARG;
    }
    rc = uboot_get(vctx, &cur, det);
    if (rc == 0)
        rc = read_devices(u, det); /* the child's copy of the list is gone */
    if (rc == 0)
        rc = writable(u, det);
    if (rc == 0)
        rc = ota_fs_hook_step(u->hook, OTA_FS_STEP_WRITE, u->dev[0]);
    if (rc == 0)
        rc = run_child(&cur, u, OP_SET, slot, trial, det);
    if (rc == 0)
        rc = sync_devices(u, det);
    if (rc == 0)
        rc = uboot_get(vctx, &back, det);
    if (rc == 0 && (strcmp(back.slot, slot) != 0 || back.trial != trial || back.attempts != 0)) {
        ota_detail_set(det,
                       "%s: read back %s=%s upgrade_available=%d bootcount=%u after storing "
                       "%s=%s upgrade_available=%d bootcount=0",
                       u->config, u->slot_var, back.slot, back.trial, back.attempts, u->slot_var,
                       slot, trial);
        rc = OTA_ERR_BOOTENV_VERIFY;
    }
    return rc;
}

static int uboot_check(void *vctx, struct ota_detail *det)
{
    struct uboot_be *u = vctx;
    struct ota_boot_state st;
    int rc = uboot_get(vctx, &st, det);

    if (rc == 0)
        rc = read_devices(u, det);
    if (rc == 0)
        rc = writable(u, det);
    if (rc == 0 && st.limit == 0) {
        ota_detail_set(det,
                       "%s: bootlimit is not set, so a new slot that never boots would "
                       "never fall back",
                       u->config);
        rc = OTA_ERR_BOOTENV_STATE;
    }
    return rc;
}

static void uboot_destroy(void *vctx)
{
    struct uboot_be *u = vctx;

    if (u == NULL)
        return;
    free(u->config);
    free(u);
}

int ota_bootloader_uboot_new(struct ota_bootloader **out, const struct ota_bootloader_cfg *cfg,
                             struct ota_detail *det)
{
    struct ota_bootloader *b = calloc(1, sizeof(*b));
    struct uboot_be *u = calloc(1, sizeof(*u));
    const char *var = cfg->slot_var != NULL ? cfg->slot_var : DEFAULT_SLOT_VAR;
    int rc;

    *out = NULL;
    if (b == NULL || u == NULL) {
        free(b);
        free(u);
        return OTA_ERR_NOMEM;
    }
    rc = ota_boot_slots_copy(&u->slots, cfg, det);
    if (rc == 0 && (strlen(var) > VAR_MAX || !ota_boot_name_valid(var))) {
        ota_detail_set(det, "U-Boot slot variable '%.40s': 1-%u of [A-Za-z0-9_-]", var, VAR_MAX);
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0 && cfg->path == NULL) {
        ota_detail_set(det, "U-Boot backend: no fw_env.config path");
        rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0) {
        u->config = strdup(cfg->path);
        if (u->config == NULL)
            rc = OTA_ERR_NOMEM;
    }
    if (rc != 0) {
        uboot_destroy(u);
        free(b);
        return rc;
    }
    memcpy(u->slot_var, var, strlen(var) + 1);
    u->call_ms = cfg->call_timeout_ms != 0 ? cfg->call_timeout_ms : DEFAULT_CALL_MS;
    u->hook = cfg->hook;
    b->name = "uboot";
    b->get = uboot_get;
    b->set = uboot_set;
    b->check = uboot_check;
    b->destroy = uboot_destroy;
    b->ctx = u;
    *out = b;
    return 0;
}
