/* Unit tests for fsutil.c: bounded reads, the streaming atomic writer and
 * atomic replace under fault injection at every step, exclusive create,
 * secret reads, the lock, rename, remove, mkdirs. Each test works in its own
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

static int fail_hook(void *ctx, const struct ota_fs_event *ev)
{
    struct fail_ctx *c = ctx;

    c->seen |= 1u << ev->step;
    snprintf(c->path, sizeof(c->path), "%s", ev->path);
    return ev->step == c->fail_at ? -1 : 0;
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
    assert_int_equal(ota_fs_mkdirs(p, 0750, NULL), 0);
    join(p, t, "a/b/c/d");
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Existing directories are fine. */
    assert_int_equal(ota_fs_mkdirs(p, 0750, NULL), 0);
    join(p, t, "a");
    assert_int_equal(ota_fs_mkdirs(p, 0750, NULL), 0);
    assert_int_equal(ota_fs_mkdirs(t->path, 0750, NULL), 0);
    /* A file in the way is refused. */
    join(f, t, "a/file");
    write_file(f, "x", 1);
    assert_int_equal(ota_fs_mkdirs(f, 0750, NULL), OTA_ERR_EXISTS);
    join(p, t, "a/file/sub");
    assert_int_equal(ota_fs_mkdirs(p, 0750, NULL), OTA_ERR_EXISTS);
    /* Relative paths work too. */
    assert_int_equal(ota_fs_mkdirs(".", 0750, NULL), 0);
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

/* Records every event: step, path and temporary. */
struct rec_ctx {
    size_t n;
    enum ota_fs_step step[32];
    char path[32][PATH_MAX];
    char tmp[32][PATH_MAX];
    int skip_fsync;
};

static int rec_hook(void *ctx, const struct ota_fs_event *ev)
{
    struct rec_ctx *c = ctx;

    if (c->n < 32) {
        c->step[c->n] = ev->step;
        snprintf(c->path[c->n], PATH_MAX, "%s", ev->path);
        snprintf(c->tmp[c->n], PATH_MAX, "%s", ev->tmp != NULL ? ev->tmp : "");
        c->n++;
    }
    return ev->step == OTA_FS_STEP_FSYNC && c->skip_fsync ? OTA_FS_HOOK_SKIP : 0;
}

/* The streaming writer: several writes, the steps in order (WRITE once),
 * the temporary named beside the target and gone after the commit. */
static void test_writer_streams(void **state)
{
    static const enum ota_fs_step want[] = {OTA_FS_STEP_CREATE, OTA_FS_STEP_WRITE,
                                            OTA_FS_STEP_FSYNC, OTA_FS_STEP_RENAME,
                                            OTA_FS_STEP_DIRSYNC};
    struct tdir *t = *state;
    struct rec_ctx c = {0};
    struct ota_fs_hook hook = {rec_hook, &c};
    struct ota_fs_writer w;
    char p[PATH_MAX];
    struct stat st;

    join(p, t, "streamed");
    assert_int_equal(ota_fs_writer_open(&w, p, 0640, 0, &hook), 0);
    assert_int_equal(ota_fs_writer_write(&w, "one ", 4), 0);
    assert_int_equal(ota_fs_writer_write(&w, "two ", 4), 0);
    assert_int_equal(ota_fs_writer_write(&w, "three", 5), 0);
    assert_int_equal(w.len, 13);
    /* Not visible before the commit. */
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(count_entries(t), 1);
    assert_int_equal(ota_fs_writer_commit(&w), 0);
    assert_content(p, "one two three");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(count_entries(t), 1);
    assert_int_equal(c.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(c.step[i], want[i]);
        assert_string_equal(c.path[i], p);
    }
    /* CREATE, WRITE, FSYNC and RENAME name the temporary beside p. */
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(strncmp(c.tmp[i], p, strlen(p)), 0);
        assert_int_equal(strncmp(c.tmp[i] + strlen(p), ".tmp-", 5), 0);
        assert_string_equal(c.tmp[i], c.tmp[0]);
    }
    assert_string_equal(c.tmp[4], "");
    /* Abort after a commit, and of a zeroed writer, is harmless. */
    ota_fs_writer_abort(&w);
    assert_content(p, "one two three");
}

/* Abort leaves the old file and no temporary; a failed write keeps the
 * writer open until it is aborted. */
static void test_writer_abort(void **state)
{
    struct tdir *t = *state;
    struct ota_fs_writer w;
    char p[PATH_MAX];

    join(p, t, "kept");
    assert_int_equal(ota_fs_replace(p, "old", 3, 0644, NULL), 0);
    assert_int_equal(ota_fs_writer_open(&w, p, 0644, 0, NULL), 0);
    assert_int_equal(ota_fs_writer_write(&w, "new", 3), 0);
    assert_int_equal(count_entries(t), 2);
    ota_fs_writer_abort(&w);
    assert_content(p, "old");
    assert_int_equal(count_entries(t), 1);
    ota_fs_writer_abort(&w);
    assert_int_equal(ota_fs_writer_write(&w, "x", 1), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fs_writer_commit(&w), OTA_ERR_INVALID_ARG);
    /* An empty file is a file too. */
    assert_int_equal(ota_fs_writer_open(&w, p, 0644, 0, NULL), 0);
    assert_int_equal(ota_fs_writer_commit(&w), 0);
    assert_content(p, "");
    /* Bad arguments. */
    assert_int_equal(ota_fs_writer_open(&w, "", 0644, 0, NULL), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fs_writer_open(&w, p, 0644, 0x80, NULL), OTA_ERR_INVALID_ARG);
    ota_fs_writer_abort(&w);
}

/* commit_to: the name chosen once the content is known, in the same
 * directory only. */
static void test_writer_commit_to(void **state)
{
    struct tdir *t = *state;
    struct ota_fs_writer w;
    char p[PATH_MAX];
    char q[PATH_MAX];
    char other[PATH_MAX];

    join(p, t, ".blob");
    join(q, t, "named-by-hash");
    join(other, t, "sub/x");
    assert_int_equal(ota_fs_writer_open(&w, p, 0644, 0, NULL), 0);
    assert_int_equal(ota_fs_writer_write(&w, "data", 4), 0);
    assert_int_equal(ota_fs_writer_commit_to(&w, other), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fs_writer_commit_to(&w, q), 0);
    assert_content(q, "data");
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(count_entries(t), 1);
}

/* ota_fs_create: whole or absent, never over an existing file or link,
 * and a failure at any step leaves nothing at path. */
static void test_create_no_replace(void **state)
{
    static const enum ota_fs_step steps[] = {OTA_FS_STEP_CREATE, OTA_FS_STEP_WRITE,
                                             OTA_FS_STEP_FSYNC, OTA_FS_STEP_RENAME};
    struct tdir *t = *state;
    char p[PATH_MAX];
    char l[PATH_MAX];
    struct stat st;

    join(p, t, "secret.key");
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct fail_ctx c = {.fail_at = steps[i]};
        struct ota_fs_hook hook = {.fn = fail_hook, .ctx = &c};

        assert_int_equal(ota_fs_create(p, "key material", 12, 0600, &hook), OTA_ERR_IO);
        assert_int_equal(lstat(p, &st), -1);
        assert_int_equal(count_entries(t), 0);
    }
    assert_int_equal(ota_fs_create(p, "key material", 12, 0600, NULL), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ota_fs_create(p, "other", 5, 0600, NULL), OTA_ERR_EXISTS);
    assert_content(p, "key material");
    /* A dangling symlink counts as existing. */
    join(l, t, "dangling");
    assert_int_equal(symlink("/nonexistent/x", l), 0);
    assert_int_equal(ota_fs_create(l, "x", 1, 0600, NULL), OTA_ERR_EXISTS);
    /* Created between the check and the move: the writer refuses it too. */
    {
        struct ota_fs_writer w;
        char q[PATH_MAX];

        join(q, t, "race");
        assert_int_equal(ota_fs_writer_open(&w, q, 0600, OTA_FS_NOREPLACE, NULL), 0);
        assert_int_equal(ota_fs_writer_write(&w, "mine", 4), 0);
        write_file(q, "theirs", 6);
        assert_int_equal(ota_fs_writer_commit(&w), OTA_ERR_EXISTS);
        assert_content(q, "theirs");
    }
    assert_int_equal(count_entries(t), 3);
}

/* Secret reads: mode 0600 regular files only, never through a link. */
static void test_read_secret(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    char l[PATH_MAX];
    uint8_t *out = NULL;
    size_t len = 0;

    join(p, t, "k");
    join(l, t, "k-link");
    assert_int_equal(ota_fs_create(p, "s3cret", 6, 0600, NULL), 0);
    assert_int_equal(ota_fs_read_secret(&out, &len, p, 64), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "s3cret", 6);
    free(out);
    out = NULL;
    assert_int_equal(ota_fs_read_secret(&out, &len, p, 5), OTA_ERR_TOO_LARGE);
    assert_null(out);
    assert_int_equal(symlink(p, l), 0);
    assert_int_equal(ota_fs_read_secret(&out, &len, l, 64), OTA_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(ota_fs_read_secret(&out, &len, p, 64), OTA_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0604), 0);
    assert_int_equal(ota_fs_read_secret(&out, &len, p, 64), OTA_ERR_PERMISSION);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(ota_fs_read_secret(&out, &len, t->path, 64), OTA_ERR_PERMISSION);
    join(p, t, "missing");
    assert_int_equal(ota_fs_read_secret(&out, &len, p, 64), OTA_ERR_NOT_FOUND);
}

/* The lock: exclusive across open file descriptions, released by unlock. */
static void test_lock(void **state)
{
    struct tdir *t = *state;
    char p[PATH_MAX];
    char l[PATH_MAX];
    int a = -1;
    int b = -1;
    struct stat st;

    join(p, t, ".lock");
    assert_int_equal(ota_fs_lock(&a, p, 0600), 0);
    assert_true(a >= 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ota_fs_lock(&b, p, 0600), OTA_ERR_LOCKED);
    assert_int_equal(b, -1);
    ota_fs_unlock(&a);
    assert_int_equal(a, -1);
    assert_int_equal(ota_fs_lock(&b, p, 0600), 0);
    ota_fs_unlock(&b);
    ota_fs_unlock(&b);
    /* Never through a symlink. */
    join(l, t, "lock-link");
    assert_int_equal(symlink(p, l), 0);
    assert_int_equal(ota_fs_lock(&a, l, 0600), OTA_ERR_PERMISSION);
    assert_int_equal(a, -1);
}

/* rename and mkdtemp take their steps through the hook. */
static void test_rename_and_mkdtemp(void **state)
{
    struct tdir *t = *state;
    struct rec_ctx c = {0};
    struct ota_fs_hook hook = {rec_hook, &c};
    char from[PATH_MAX];
    char to[PATH_MAX];
    char prefix[PATH_MAX];
    char d[PATH_MAX];
    struct stat st;

    join(from, t, "a.next");
    join(to, t, "a");
    write_file(from, "N", 1);
    write_file(to, "O", 1);
    assert_int_equal(ota_fs_rename(from, to, &hook), 0);
    assert_content(to, "N");
    assert_int_equal(c.n, 2);
    assert_int_equal(c.step[0], OTA_FS_STEP_RENAME);
    assert_string_equal(c.tmp[0], from);
    assert_int_equal(c.step[1], OTA_FS_STEP_DIRSYNC);
    assert_int_equal(ota_fs_rename(from, to, NULL), OTA_ERR_NOT_FOUND);

    c.n = 0;
    join(prefix, t, "x.init");
    assert_int_equal(ota_fs_mkdtemp(d, prefix, 0700, &hook), 0);
    assert_int_equal(strncmp(d, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(d), strlen(prefix) + 17);
    assert_int_equal(stat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.step[0], OTA_FS_STEP_MKDIR);
    assert_int_equal(c.step[1], OTA_FS_STEP_DIRSYNC);
    assert_string_equal(c.path[0], d);
    /* mkdirs announces each directory it makes, nothing for existing ones. */
    c.n = 0;
    join(d, t, "m/n");
    assert_int_equal(ota_fs_mkdirs(d, 0755, &hook), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.step[2], OTA_FS_STEP_MKDIR);
    assert_string_equal(c.path[2], d);
    c.n = 0;
    assert_int_equal(ota_fs_mkdirs(d, 0755, &hook), 0);
    assert_int_equal(c.n, 0);
}

/* The temporaries an interrupted writer left, and only those, go. */
static void test_remove_temps(void **state)
{
    struct tdir *t = *state;
    struct rec_ctx c = {0};
    struct ota_fs_hook hook = {rec_hook, &c};
    char p[PATH_MAX];
    size_t n = 99;

    join(p, t, "a.json.tmp-0123456789abcdef");
    write_file(p, "x", 1);
    join(p, t, "b.tmp-0123456789ABCDEF"); /* not the writer's (upper case) */
    write_file(p, "x", 1);
    join(p, t, "c.tmp-0123");
    write_file(p, "x", 1);
    join(p, t, "keep.json");
    write_file(p, "x", 1);
    assert_int_equal(ota_fs_remove_temps(t->path, &n, &hook), 0);
    assert_int_equal(n, 1);
    assert_int_equal(count_entries(t), 3);
    assert_int_equal(c.n, 2); /* unlink, dirsync */
    assert_int_equal(c.step[0], OTA_FS_STEP_UNLINK);
    join(p, t, "missing-dir");
    assert_int_equal(ota_fs_remove_temps(p, &n, NULL), 0);
    assert_int_equal(n, 0);
}

/* A hook may skip an fsync (the test knob), nothing else. */
static void test_hook_skip(void **state)
{
    struct tdir *t = *state;
    struct rec_ctx c = {.skip_fsync = 1};
    struct ota_fs_hook hook = {rec_hook, &c};
    char p[PATH_MAX];

    join(p, t, "unsynced");
    assert_int_equal(ota_fs_replace(p, "data", 4, 0644, &hook), 0);
    assert_content(p, "data");
    assert_int_equal(c.n, 5);
    assert_int_equal(ota_fs_hook_step(&hook, OTA_FS_STEP_FSYNC, p), 0); /* the writer's only */
    assert_int_equal(ota_fs_hook_step(&hook, OTA_FS_STEP_COMMIT, p), 0);
    assert_string_equal(ota_fs_step_name(OTA_FS_STEP_DIRSYNC), "dirsync");
    assert_string_equal(ota_fs_step_name(OTA_FS_STEP_MKDIR), "mkdir");
    assert_string_equal(ota_fs_step_name(OTA_FS_STEP_COMMIT), "commit");
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
        T(test_writer_streams),
        T(test_writer_abort),
        T(test_writer_commit_to),
        T(test_create_no_replace),
        T(test_read_secret),
        T(test_lock),
        T(test_rename_and_mkdtemp),
        T(test_hook_skip),
        T(test_remove_temps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
