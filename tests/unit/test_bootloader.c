/* Unit tests for the bootloader backends (bootloader.h): the file
 * backend's format and operations, and the U-Boot backend against
 * environments made by U-Boot's own mkenvimage (never by our code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otachain/bootloader.h"
#include "testfs.h"

extern char **environ;

static const char *const slots[] = {"a", "b"};

struct tdir {
    char path[PATH_MAX];
};

static int setup_dir(void **state)
{
    struct tdir *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");

    if (t == NULL)
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/ota-bootloader-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(t->path) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tdir *t = *state;

    rm_rf(t->path);
    free(t);
    return 0;
}

static void join(char *out, const struct tdir *t, const char *name)
{
    assert_true((size_t)snprintf(out, PATH_MAX, "%s/%s", t->path, name) < PATH_MAX);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* ------------------------------------------------------ file format */

static void test_file_parse_good(void **state)
{
    struct ota_boot_state st;
    const char *text = "# comment\n\nslot=b\ntrial=1\nattempts=2\nlimit=3\n";

    (void)state;
    assert_int_equal(ota_bootloader_file_parse(&st, text, strlen(text), NULL), 0);
    assert_string_equal(st.slot, "b");
    assert_true(st.trial);
    assert_int_equal(st.attempts, 2);
    assert_int_equal(st.limit, 3);
    /* Only slot is mandatory; no final newline is fine. */
    assert_int_equal(ota_bootloader_file_parse(&st, "slot=a", 6, NULL), 0);
    assert_string_equal(st.slot, "a");
    assert_false(st.trial);
    assert_int_equal(st.limit, 0);
}

static void test_file_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",                                         /* no slot */
        "trial=1\n",                                /* no slot */
        "slot=a\nslot=b\n",                         /* twice */
        "slot=a\ntrial=2\n",                        /* trial 0|1 */
        "slot=a\ntrial=\n",                         /* empty */
        "slot=a\nattempts=-1\n",                    /* not decimal */
        "slot=a\nattempts=4294967296\n",            /* > 32 bits */
        "slot=a\nlimit=12345678901\n",              /* 11 digits */
        "slot=a b\n",                               /* bad name */
        "slot=\n",                                  /* empty name */
        "slot=a\r\n",                               /* CR */
        "slot=a\nbootcount=1\n",                    /* unknown key */
        "slot=a\njunk\n",                           /* no = */
        "slot=abcdefghijklmnopqrstuvwxyz0123456\n", /* 34 bytes */
    };
    struct ota_boot_state st;
    struct ota_detail det;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        det.msg[0] = '\0';
        assert_int_equal(ota_bootloader_file_parse(&st, bad[i], strlen(bad[i]), &det),
                         OTA_ERR_BOOTENV_STATE);
        assert_true(det.msg[0] != '\0');
        assert_string_equal(st.slot, "");
    }
    /* An embedded NUL byte. */
    assert_int_equal(ota_bootloader_file_parse(&st, "slot=a\0\n", 8, NULL), OTA_ERR_BOOTENV_STATE);
    /* Over the cap. */
    char *big = malloc(OTA_BOOT_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, '#', OTA_BOOT_FILE_MAX + 1);
    assert_int_equal(ota_bootloader_file_parse(&st, big, OTA_BOOT_FILE_MAX + 1, NULL),
                     OTA_ERR_BOOTENV_STATE);
    free(big);
}

/* ------------------------------------------------------ file backend */

static struct ota_bootloader *file_backend(const char *path)
{
    struct ota_bootloader_cfg cfg = {0};
    struct ota_bootloader *b = NULL;

    cfg.backend = "file";
    cfg.path = path;
    cfg.slots = slots;
    cfg.nslots = 2;
    assert_int_equal(ota_bootloader_new(&b, &cfg, NULL), 0);
    assert_string_equal(b->name, "file");
    return b;
}

static void test_file_backend_roundtrip(void **state)
{
    const struct tdir *t = *state;
    char path[PATH_MAX];
    struct ota_bootloader *b;
    struct ota_boot_state st;
    struct ota_detail det;

    join(path, t, "boot.state");
    b = file_backend(path);
    /* Missing file: not provisioned. */
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_CONFIG);
    write_file(path, "slot=a\ntrial=0\nattempts=0\nlimit=5\n");
    assert_int_equal(b->check(b->ctx, NULL), 0);
    assert_int_equal(b->set(b->ctx, "b", true, NULL), 0);
    assert_int_equal(b->get(b->ctx, &st, NULL), 0);
    assert_string_equal(st.slot, "b");
    assert_true(st.trial);
    assert_int_equal(st.attempts, 0);
    assert_int_equal(st.limit, 5); /* the bootloader's own setting is kept */
    /* The bootloader counted two attempts; confirming resets them. */
    write_file(path, "slot=b\ntrial=1\nattempts=2\nlimit=5\n");
    assert_int_equal(b->set(b->ctx, "b", false, NULL), 0);
    assert_int_equal(b->get(b->ctx, &st, NULL), 0);
    assert_false(st.trial);
    assert_int_equal(st.attempts, 0);
    /* Unknown slots: refused to write, refused when read. */
    assert_int_equal(b->set(b->ctx, "c", false, &det), OTA_ERR_INVALID_ARG);
    write_file(path, "slot=c\n");
    assert_int_equal(b->get(b->ctx, &st, &det), OTA_ERR_BOOTENV_STATE);
    assert_non_null(strstr(det.msg, "slot=c"));
    assert_int_equal(b->check(b->ctx, NULL), OTA_ERR_BOOTENV_STATE);
    ota_bootloader_free(b);
}

static void test_factory_refuses(void **state)
{
    struct ota_bootloader_cfg cfg = {0};
    struct ota_bootloader *b = (struct ota_bootloader *)1;
    static const char *const one[] = {"a"};
    static const char *const badname[] = {"a", "b c"};
    struct ota_detail det;

    (void)state;
    cfg.backend = "grub";
    cfg.path = "/x";
    cfg.slots = slots;
    cfg.nslots = 2;
    assert_int_equal(ota_bootloader_new(&b, &cfg, &det), OTA_ERR_INVALID_ARG);
    assert_null(b);
    cfg.backend = "file";
    cfg.path = "relative";
    assert_int_equal(ota_bootloader_new(&b, &cfg, &det), OTA_ERR_INVALID_ARG);
    cfg.path = "/x";
    cfg.slots = one;
    cfg.nslots = 1;
    assert_int_equal(ota_bootloader_new(&b, &cfg, &det), OTA_ERR_INVALID_ARG);
    cfg.slots = badname;
    cfg.nslots = 2;
    assert_int_equal(ota_bootloader_new(&b, &cfg, &det), OTA_ERR_INVALID_ARG);
    cfg.backend = "uboot";
    cfg.slots = slots;
    cfg.slot_var = "bad var";
    assert_int_equal(ota_bootloader_new(&b, &cfg, &det), OTA_ERR_INVALID_ARG);
    ota_bootloader_free(NULL);
}

/* ----------------------------------------------------- U-Boot backend */

/* Runs U-Boot's mkenvimage: a redundant-format copy of `vars`. */
static void mkenvimage(const char *out, const char *vars_file)
{
    char *argv[] = {"mkenvimage", "-r", "-s", "0x2000", "-o", (char *)out, (char *)vars_file, NULL};
    pid_t pid;
    int status;

    assert_int_equal(posix_spawnp(&pid, "mkenvimage", NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct uboot_fixture {
    char config[PATH_MAX];
    char env[PATH_MAX];
};

static struct ota_bootloader *uboot_backend(struct uboot_fixture *fx, const struct tdir *t,
                                            const char *vars)
{
    struct ota_bootloader_cfg cfg = {0};
    struct ota_bootloader *b = NULL;
    char varsf[PATH_MAX], env2[PATH_MAX], text[3 * PATH_MAX];

    join(fx->config, t, "fw_env.config");
    join(fx->env, t, "env1");
    join(env2, t, "env2");
    join(varsf, t, "vars.txt");
    write_file(varsf, vars);
    mkenvimage(fx->env, varsf);
    /* The second copy starts invalid (all 0xff, as erased flash). */
    FILE *f = fopen(env2, "w");
    assert_non_null(f);
    for (int i = 0; i < 0x2000; i++)
        assert_int_equal(fputc(0xff, f), 0xff);
    assert_int_equal(fclose(f), 0);
    snprintf(text, sizeof(text), "# two copies\n%s 0x0 0x2000\n%s 0x0 0x2000\n", fx->env, env2);
    write_file(fx->config, text);
    cfg.backend = "uboot";
    cfg.path = fx->config;
    cfg.slots = slots;
    cfg.nslots = 2;
    assert_int_equal(ota_bootloader_new(&b, &cfg, NULL), 0);
    return b;
}

static void test_uboot_roundtrip(void **state)
{
    const struct tdir *t = *state;
    struct uboot_fixture fx;
    struct ota_bootloader *b =
        uboot_backend(&fx, t, "bootlimit=3\notachain_slot=a\nbootcmd=run otachain_boot\n");
    struct ota_boot_state st;

    assert_int_equal(b->check(b->ctx, NULL), 0);
    assert_int_equal(b->get(b->ctx, &st, NULL), 0);
    assert_string_equal(st.slot, "a");
    assert_false(st.trial);
    assert_int_equal(st.limit, 3);
    assert_int_equal(b->set(b->ctx, "b", true, NULL), 0);
    assert_int_equal(b->get(b->ctx, &st, NULL), 0);
    assert_string_equal(st.slot, "b");
    assert_true(st.trial);
    assert_int_equal(st.attempts, 0);
    assert_int_equal(st.limit, 3);
    assert_int_equal(b->set(b->ctx, "a", false, NULL), 0);
    assert_int_equal(b->get(b->ctx, &st, NULL), 0);
    assert_string_equal(st.slot, "a");
    assert_false(st.trial);
    ota_bootloader_free(b);
}

static void test_uboot_refusals(void **state)
{
    const struct tdir *t = *state;
    struct uboot_fixture fx;
    struct ota_bootloader *b = uboot_backend(&fx, t, "otachain_slot=a\n");
    struct ota_boot_state st;
    struct ota_detail det;

    /* No bootlimit: the fall-back rule would never fire. */
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_STATE);
    assert_non_null(strstr(det.msg, "bootlimit"));
    ota_bootloader_free(b);

    b = uboot_backend(&fx, t, "bootlimit=3\notachain_slot=c\n");
    assert_int_equal(b->get(b->ctx, &st, &det), OTA_ERR_BOOTENV_STATE);
    ota_bootloader_free(b);

    b = uboot_backend(&fx, t, "bootlimit=3\notachain_slot=a\nbootcount=x\nupgrade_available=1\n");
    assert_int_equal(b->get(b->ctx, &st, &det), OTA_ERR_BOOTENV_STATE);
    assert_non_null(strstr(det.msg, "bootcount"));
    ota_bootloader_free(b);

    b = uboot_backend(&fx, t, "bootlimit=3\nbootcmd=boot\n");
    assert_int_equal(b->get(b->ctx, &st, &det), OTA_ERR_BOOTENV_STATE);
    assert_non_null(strstr(det.msg, "otachain_slot"));
    ota_bootloader_free(b);

    /* Both copies with a bad CRC: the bootloader would run on its default
     * environment; the agent refuses. */
    b = uboot_backend(&fx, t, "bootlimit=3\notachain_slot=a\n");
    int fd = open(fx.env, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 8), 1);
    close(fd);
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_CRC);
    assert_int_equal(b->set(b->ctx, "b", true, &det), OTA_ERR_BOOTENV_CRC);
    ota_bootloader_free(b);

    /* A missing device, a missing configuration. */
    b = uboot_backend(&fx, t, "bootlimit=3\notachain_slot=a\n");
    assert_int_equal(unlink(fx.env), 0);
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_CONFIG);
    assert_int_equal(unlink(fx.config), 0);
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_CONFIG);
    write_file(fx.config, "# nothing\n");
    assert_int_equal(b->check(b->ctx, &det), OTA_ERR_BOOTENV_CONFIG);
    ota_bootloader_free(b);
}

/* libubootenv blocks on its fixed lock: a lock held elsewhere costs
 * OTA_ERR_LOCKED after the deadline, not a hung agent. */
static void test_uboot_lock_held(void **state)
{
    const struct tdir *t = *state;
    struct uboot_fixture fx;
    struct ota_bootloader_cfg cfg = {0};
    struct ota_bootloader *b = uboot_backend(&fx, t, "bootlimit=3\notachain_slot=a\n");
    struct ota_bootloader *quick = NULL;
    struct ota_boot_state st;
    struct ota_detail det;
    int fd;

    cfg.backend = "uboot";
    cfg.path = fx.config;
    cfg.slots = slots;
    cfg.nslots = 2;
    cfg.call_timeout_ms = 300;
    assert_int_equal(ota_bootloader_new(&quick, &cfg, NULL), 0);
    fd = open("/var/lock/fw_printenv.lock", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(quick->get(quick->ctx, &st, &det), OTA_ERR_LOCKED);
    assert_non_null(strstr(det.msg, "fw_printenv.lock"));
    assert_int_equal(flock(fd, LOCK_UN), 0);
    close(fd);
    assert_int_equal(quick->get(quick->ctx, &st, NULL), 0);
    ota_bootloader_free(quick);
    ota_bootloader_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_parse_good),
        cmocka_unit_test(test_file_parse_bad),
        cmocka_unit_test_setup_teardown(test_file_backend_roundtrip, setup_dir, teardown_dir),
        cmocka_unit_test(test_factory_refuses),
        cmocka_unit_test_setup_teardown(test_uboot_roundtrip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_uboot_refusals, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_uboot_lock_held, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
