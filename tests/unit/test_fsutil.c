/* Unit tests for fsutil.c: bounded reads, atomic replace under fault
 * injection at every step, remove, mkdirs. Each test works in its own
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/fsutil.h"
#include "otachain/test_hooks.h"

struct tdir {
    char path[PATH_MAX];
};

static int setup_dir(void **state)
{
    struct tdir *t = calloc(1, sizeof(*t));
    const char *base = getenv("TMPDIR");

    if (t == NULL)
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/ota-fsutil-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    if (mkdtemp(t->path) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

/* rm -r of our temporary directory (two levels are enough here). */
static int teardown_dir(void **state)
{
    struct tdir *t = *state;

    rm_rf(t->path);
    free(t);
    return 0;
}

static void join(char out[PATH_MAX], const struct tdir *t, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", t->path, name);

    assert_true(n > 0 && n < PATH_MAX);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static size_t count_entries(const struct tdir *t)
{
    DIR *d = opendir(t->path);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void assert_content(const char *path, const char *want)
{
    uint8_t *data = NULL;
    size_t len = 0;

    assert_int_equal(ota_fs_read(&data, &len, path, 1 << 20), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    assert_int_equal(data[len], '\0');
    free(data);
}

static void test_replace_create_and_overwrite(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    struct stat st;
    mode_t old_umask;

    join(p, t, "state.json");
    /* The mode is exact whatever the umask. */
    old_umask = umask(077);
    assert_int_equal(ota_fs_replace(p, "one", 3, 0644, NULL), 0);
    umask(old_umask);
    assert_content(p, "one");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    assert_int_equal(ota_fs_replace(p, "second", 6, 0600, NULL), 0);
    assert_content(p, "second");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(ota_fs_replace(p, NULL, 0, 0640, NULL), 0); /* empty file */
    assert_content(p, "");
    assert_int_equal(count_entries(t), 1); /* no temporaries */
}

static void test_replace_bad_dir(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];

    join(p, t, "missing/dir/file");
    assert_int_equal(ota_fs_replace(p, "x", 1, 0644, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(ota_fs_replace(NULL, "x", 1, 0644, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fs_replace(p, NULL, 1, 0644, NULL), OTA_ERR_INVALID_ARG);
}

struct fail_ctx {
    enum ota_fs_step fail_at;
    unsigned seen; /* bit per step seen */
    char path[PATH_MAX];
};

static int fail_hook(void *ctx, enum ota_fs_step step, const char *path)
{
    struct fail_ctx *c = ctx;

    c->seen |= 1u << step;
    snprintf(c->path, sizeof(c->path), "%s", path);
    return step == c->fail_at ? -1 : 0;
}

static void test_replace_fault_each_step(void **state)
{
    static const enum ota_fs_step steps[] = {
        OTA_FS_STEP_CREATE, OTA_FS_STEP_WRITE,   OTA_FS_STEP_FSYNC,
        OTA_FS_STEP_RENAME, OTA_FS_STEP_DIRSYNC,
    };
    struct tdir *t = *state;
    char p[PATH_MAX];
    size_t i;

    join(p, t, "target");
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct fail_ctx c = {.fail_at = steps[i]};
        struct ota_fs_hook hook = {.fn = fail_hook, .ctx = &c};
        int rc;

        assert_int_equal(ota_fs_replace(p, "old", 3, 0644, NULL), 0);
        rc = ota_fs_replace(p, "new content", 11, 0644, &hook);
        assert_int_equal(rc, OTA_ERR_IO);
        /* The hook saw every step up to the failing one, with the final path. */
        assert_int_equal(c.seen, (1u << (steps[i] + 1)) - 1);
        assert_string_equal(c.path, p);
        if (steps[i] <= OTA_FS_STEP_RENAME)
            assert_content(p, "old");
        else
            assert_content(p, "new content"); /* committed, dir sync failed */
        /* Only the target remains: no temporary left behind. */
        assert_int_equal(count_entries(t), 1);
    }
    /* A hook that never fails sees all five steps. */
    {
        struct fail_ctx c = {.fail_at = OTA_FS_STEP_UNLINK};
        struct ota_fs_hook hook = {.fn = fail_hook, .ctx = &c};

        assert_int_equal(ota_fs_replace(p, "final", 5, 0644, &hook), 0);
        assert_int_equal(c.seen, (1u << (OTA_FS_STEP_DIRSYNC + 1)) - 1);
        assert_content(p, "final");
        assert_int_equal(count_entries(t), 1);
    }
}

static void test_read_caps(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    uint8_t data[1000];
    uint8_t *out = NULL;
    size_t len = 0;
    size_t i;

    for (i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    join(p, t, "f");
    write_file(p, data, sizeof(data));
    /* Exactly max is accepted. */
    assert_int_equal(ota_fs_read(&out, &len, p, 1000), 0);
    assert_int_equal(len, 1000);
    assert_memory_equal(out, data, 1000);
    assert_int_equal(out[1000], 0);
    free(out);
    /* max + 1 bytes is refused. */
    out = (uint8_t *)p; /* must be reset */
    len = 7;
    assert_int_equal(ota_fs_read(&out, &len, p, 999), OTA_ERR_TOO_LARGE);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(ota_fs_read_nofollow(&out, &len, p, 999), OTA_ERR_TOO_LARGE);
    /* Empty file. */
    write_file(p, "", 0);
    assert_int_equal(ota_fs_read(&out, &len, p, 0), 0);
    assert_int_equal(len, 0);
    assert_non_null(out);
    assert_int_equal(out[0], 0);
    free(out);
}

static void test_read_procfs_growth(void **state)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rc;

    (void)state;
    /* /proc files report size 0 but have content: read while growing,
     * and the cap still applies. */
    rc = ota_fs_read(&out, &len, "/proc/self/status", 1 << 20);
    if (rc == OTA_ERR_NOT_FOUND)
        skip();
    assert_int_equal(rc, 0);
    assert_true(len > 10);
    assert_int_equal(strlen((char *)out), len);
    free(out);
    assert_int_equal(ota_fs_read(&out, &len, "/proc/self/status", 5), OTA_ERR_TOO_LARGE);
    assert_null(out);
}

static void test_read_not_found_and_dir(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    uint8_t *out = NULL;
    size_t len = 0;

    join(p, t, "nope");
    assert_int_equal(ota_fs_read(&out, &len, p, 10), OTA_ERR_NOT_FOUND);
    assert_int_equal(ota_fs_read_nofollow(&out, &len, p, 10), OTA_ERR_NOT_FOUND);
    join(p, t, "nope/deeper");
    assert_int_equal(ota_fs_read(&out, &len, p, 10), OTA_ERR_NOT_FOUND);
    /* A directory is not a regular file. */
    assert_int_equal(ota_fs_read(&out, &len, t->path, 10), OTA_ERR_IO);
    assert_null(out);
}

static void test_read_fifo_does_not_hang(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    uint8_t *out = NULL;
    size_t len = 0;

    join(p, t, "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(ota_fs_read(&out, &len, p, 10), OTA_ERR_IO);
    assert_null(out);
}

static void test_nofollow(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    char l[PATH_MAX];
    uint8_t *out = NULL;
    size_t len = 0;

    join(p, t, "real");
    join(l, t, "link");
    write_file(p, "data", 4);
    assert_int_equal(symlink(p, l), 0);
    /* ota_fs_read follows the link... */
    assert_int_equal(ota_fs_read(&out, &len, l, 10), 0);
    assert_int_equal(len, 4);
    free(out);
    out = NULL;
    /* ...ota_fs_read_nofollow refuses it. */
    assert_int_equal(ota_fs_read_nofollow(&out, &len, l, 10), OTA_ERR_PERMISSION);
    assert_null(out);
    assert_int_equal(ota_fs_read_nofollow(&out, &len, p, 10), 0);
    free(out);
}

static void test_remove(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    struct stat st;

    join(p, t, "gone");
    write_file(p, "x", 1);
    assert_int_equal(ota_fs_remove(p, NULL), 0);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    /* Removing a missing file is fine. */
    assert_int_equal(ota_fs_remove(p, NULL), 0);
    /* The hook can stop it before the unlink. */
    write_file(p, "x", 1);
    {
        struct fail_ctx c = {.fail_at = OTA_FS_STEP_UNLINK};
        struct ota_fs_hook hook = {.fn = fail_hook, .ctx = &c};

        assert_int_equal(ota_fs_remove(p, &hook), OTA_ERR_IO);
        assert_int_equal(lstat(p, &st), 0);
        c.fail_at = OTA_FS_STEP_CREATE; /* never reached: succeed */
        c.seen = 0;
        assert_int_equal(ota_fs_remove(p, &hook), 0);
        assert_true(c.seen & (1u << OTA_FS_STEP_UNLINK));
        assert_true(c.seen & (1u << OTA_FS_STEP_DIRSYNC));
        assert_int_equal(lstat(p, &st), -1);
    }
}

static void test_mkdirs(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    char f[PATH_MAX];
    struct stat st;

    join(p, t, "a/b//c/d/");
    assert_int_equal(ota_fs_mkdirs(p, 0750), 0);
    join(p, t, "a/b/c/d");
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Existing directories are fine. */
    assert_int_equal(ota_fs_mkdirs(p, 0750), 0);
    join(p, t, "a");
    assert_int_equal(ota_fs_mkdirs(p, 0750), 0);
    assert_int_equal(ota_fs_mkdirs(t->path, 0750), 0);
    /* A file in the way is refused. */
    join(f, t, "a/file");
    write_file(f, "x", 1);
    assert_int_equal(ota_fs_mkdirs(f, 0750), OTA_ERR_EXISTS);
    join(p, t, "a/file/sub");
    assert_int_equal(ota_fs_mkdirs(p, 0750), OTA_ERR_EXISTS);
    /* Relative paths work too. */
    assert_int_equal(ota_fs_mkdirs(".", 0750), 0);
}

static void test_sync_dir(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];

    assert_int_equal(ota_fs_sync_dir(t->path), 0);
    join(p, t, "missing");
    assert_int_equal(ota_fs_sync_dir(p), OTA_ERR_NOT_FOUND);
}

/* Exact positional writes and reads; end of file before n bytes is an
 * error, not a short read. */
static void test_pwrite_pread_all(void **state)
{
    const struct tdir *t = *state;
    char p[PATH_MAX];
    join(p, t, "pio");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ota_fs_write_all(fd, "abc", 3), 0);
    assert_int_equal(ota_fs_pwrite_all(fd, "XY", 2, 10), 0);
    char buf[12] = {0};
    assert_int_equal(ota_fs_pread_all(fd, buf, 12, 0), 0);
    assert_memory_equal(buf, "abc\0\0\0\0\0\0\0XY", 12);
    assert_int_equal(ota_fs_pread_all(fd, buf, 3, 10), OTA_ERR_IO);
    assert_int_equal(errno, EIO);
    assert_int_equal(ota_fs_pwrite_all(fd, "x", 1, (uint64_t)INT64_MAX), OTA_ERR_IO);
    close(fd);
}

/* OTACHAIN_CRASH_AT / OTACHAIN_FS_TRACE parsing and step counting. */
static void test_fault_from_env(void **state)
{
    (void)state;
    struct ota_fs_fault f;
    bool active = true;
    struct ota_detail det = {{0}};

    unsetenv("OTACHAIN_CRASH_AT");
    unsetenv("OTACHAIN_FS_TRACE");
    assert_int_equal(ota_fs_fault_from_env(&f, &active, &det), 0);
    assert_false(active);

    if (!ota_test_hooks_built()) {
        /* A build without test hooks ignores the variables entirely. */
        setenv("OTACHAIN_CRASH_AT", "abc", 1);
        setenv("OTACHAIN_FS_TRACE", "1", 1);
        assert_int_equal(ota_fs_fault_from_env(&f, &active, &det), 0);
        assert_false(active);
        assert_int_equal(f.crash_at, 0);
        assert_false(f.trace);
        unsetenv("OTACHAIN_CRASH_AT");
        unsetenv("OTACHAIN_FS_TRACE");
        return;
    }

    static const char *const bad[] = {"0", "-1", "abc", "5x", "07", "2147483649", " 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("OTACHAIN_CRASH_AT", bad[i], 1);
        assert_int_equal(ota_fs_fault_from_env(&f, &active, &det), OTA_ERR_INVALID_ARG);
        assert_non_null(strstr(det.msg, "OTACHAIN_CRASH_AT"));
    }
    setenv("OTACHAIN_CRASH_AT", "5", 1);
    assert_int_equal(ota_fs_fault_from_env(&f, &active, &det), 0);
    assert_true(active);
    assert_int_equal(f.crash_at, 5);
    assert_false(f.trace);

    unsetenv("OTACHAIN_CRASH_AT");
    setenv("OTACHAIN_FS_TRACE", "0", 1);
    assert_int_equal(ota_fs_fault_from_env(&f, &active, &det), 0);
    assert_false(active);
    unsetenv("OTACHAIN_FS_TRACE");

    /* Without a crash point the hook only counts. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ota_fs_fault_hook(&f, OTA_FS_STEP_WRITE, "x"), 0);
    assert_int_equal(f.steps, 3);
    assert_string_equal(ota_fs_step_name(OTA_FS_STEP_DIRSYNC), "dirsync");
    assert_string_equal(ota_fs_step_name(OTA_FS_STEP_UNLINK), "unlink");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_replace_create_and_overwrite),
        T(test_replace_bad_dir),
        T(test_replace_fault_each_step),
        T(test_read_caps),
        T(test_read_procfs_growth),
        T(test_read_not_found_and_dir),
        T(test_read_fifo_does_not_hang),
        T(test_nofollow),
        T(test_remove),
        T(test_mkdirs),
        T(test_sync_dir),
        T(test_pwrite_pread_all),
        cmocka_unit_test(test_fault_from_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
