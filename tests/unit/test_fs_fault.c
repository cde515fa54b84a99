/* Unit tests for fs_fault.c: the power-cut model of the test hooks.
 *
 * A scenario of file-system operations runs in a child process that is
 * power-cut before each of its steps in turn; the parent then checks that
 * every file holds what its last durable operation left (strict POSIX: an
 * operation is durable once its directory fsync is done), that nothing
 * else remains (no temporary), and that a skipped fsync shows up as a torn
 * file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otachain/fsutil.h"
#include "otachain/test_hooks.h"

#define NOPS 8
#define BIG  3000 /* six sectors: a torn copy differs */

struct scenario {
    char dir[PATH_MAX];
    unsigned long end[NOPS]; /* step count after each operation */
};

static void path_in(char out[PATH_MAX], const struct scenario *sc, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", sc->dir, name);

    assert_true(n > 0 && n < PATH_MAX);
}

static void big_data(uint8_t *b)
{
    for (size_t i = 0; i < BIG; i++)
        b[i] = (uint8_t)('a' + i % 26);
}

/* The operations; with rec, records the step count after each. Returns
 * only if no cut happened. */
static void run_ops(struct scenario *sc, struct ota_fs_fault *f, bool rec)
{
    struct ota_fs_hook hook = {ota_fs_fault_hook, f};
    uint8_t big[BIG];
    char sub[PATH_MAX], a[PATH_MAX], k[PATH_MAX], k2[PATH_MAX], b[PATH_MAX];
    int op = 0;

    path_in(sub, sc, "sub");
    path_in(a, sc, "sub/a");
    path_in(k, sc, "sub/k.next");
    path_in(k2, sc, "sub/k");
    path_in(b, sc, "big");
    big_data(big);
#define OP(call)                                                                                   \
    do {                                                                                           \
        if ((call) != 0)                                                                           \
            abort();                                                                               \
        if (rec)                                                                                   \
            sc->end[op] = f->steps;                                                                \
        op++;                                                                                      \
    } while (0)
    OP(ota_fs_mkdirs(sub, 0755, &hook));                   /* 0 */
    OP(ota_fs_replace(a, "A1", 2, 0644, &hook));           /* 1 */
    OP(ota_fs_replace(a, "A2-longer", 9, 0600, &hook));    /* 2 */
    OP(ota_fs_create(k, "KEY", 3, 0600, &hook));           /* 3 */
    OP(ota_fs_rename(k, k2, &hook));                       /* 4 */
    OP(ota_fs_remove(a, &hook));                           /* 5 */
    OP(ota_fs_replace(b, big, sizeof(big), 0644, &hook));  /* 6 */
    OP(ota_fs_hook_step(&hook, OTA_FS_STEP_COMMIT, "db")); /* 7 */
#undef OP
}

static void assert_file(const char *path, const void *want, size_t len, unsigned mode)
{
    uint8_t *got = NULL;
    size_t glen = 0;
    struct stat st;

    assert_int_equal(ota_fs_read(&got, &glen, path, 1 << 20), 0);
    assert_int_equal(glen, len);
    assert_memory_equal(got, want, len);
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

static void assert_absent(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        assert_null(strstr(e->d_name, ".tmp-"));
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Runs the scenario in a child cut before step n (skip: the fsync to
 * skip); waits for its SIGKILL. */
static void cut_child(struct scenario *sc, unsigned long n, const char *skip)
{
    pid_t pid = fork();
    int status = 0;

    assert_true(pid >= 0);
    if (pid == 0) {
        struct ota_fs_fault f;

        memset(&f, 0, sizeof(f));
        f.cut_at = n;
        if (skip != NULL)
            snprintf(f.skip_fsync, sizeof(f.skip_fsync), "%s", skip);
        run_ops(sc, &f, false);
        _exit(0); /* not cut: the parent reports it */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void fresh_dir(struct scenario *sc)
{
    const char *base = getenv("TMPDIR");

    snprintf(sc->dir, sizeof(sc->dir), "%s/ota-fsfault-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    assert_non_null(mkdtemp(sc->dir));
}

/* Cut before every step: each file holds what its last durable operation
 * wrote, with its mode; nothing else is left. */
static void test_cut_at_every_step(void **state)
{
    struct scenario sc;
    struct ota_fs_fault f;
    char sub[PATH_MAX], a[PATH_MAX], k[PATH_MAX], k2[PATH_MAX], b[PATH_MAX];
    uint8_t big[BIG];

    (void)state;
    if (!ota_test_hooks_built())
        skip();
    big_data(big);
    fresh_dir(&sc);
    memset(&f, 0, sizeof(f));
    run_ops(&sc, &f, true);
    ota_fs_fault_free(&f);
    rm_rf(sc.dir);
    /* mkdirs: 2 steps; replace: 5; create: 5; rename: 2; remove: 2; commit: 1. */
    assert_int_equal(sc.end[7], 2 + 5 + 5 + 5 + 2 + 2 + 5 + 1);

    for (unsigned long n = 1; n <= sc.end[7]; n++) {
        /* durable(i): operation i finished before step n. */
#define durable(i) (sc.end[i] < n)
        fresh_dir(&sc);
        cut_child(&sc, n, NULL);
        path_in(sub, &sc, "sub");
        path_in(a, &sc, "sub/a");
        path_in(k, &sc, "sub/k.next");
        path_in(k2, &sc, "sub/k");
        path_in(b, &sc, "big");
        if (!durable(0)) {
            assert_absent(sub);
            assert_int_equal(entries(sc.dir), 0);
            rm_rf(sc.dir);
            continue;
        }
        /* a: absent, A1, A2, removed. */
        if (durable(5) || !durable(1))
            assert_absent(a);
        else if (durable(2))
            assert_file(a, "A2-longer", 9, 0600);
        else
            assert_file(a, "A1", 2, 0644);
        /* The key: absent, at k.next, then at k. */
        if (durable(4)) {
            assert_absent(k);
            assert_file(k2, "KEY", 3, 0600);
        } else if (durable(3)) {
            assert_file(k, "KEY", 3, 0600);
            assert_absent(k2);
        } else {
            assert_absent(k);
            assert_absent(k2);
        }
        if (durable(6))
            assert_file(b, big, BIG, 0644);
        else
            assert_absent(b);
        assert_int_equal(entries(sc.dir), durable(6) ? 2 : 1);
        assert_int_equal(entries(sub),
                         (size_t)((durable(1) && !durable(5)) + (durable(3) ? 1 : 0)));
#undef durable
        rm_rf(sc.dir);
    }
}

/* A skipped fsync is caught: the file is in place (its rename and
 * directory fsync happened) but its data is torn; without the skip the
 * same cut leaves it whole. */
static void test_skipped_fsync_tears(void **state)
{
    struct scenario sc;
    struct ota_fs_fault f;
    char b[PATH_MAX];
    uint8_t big[BIG];
    uint8_t *got = NULL;
    size_t len = 0;

    (void)state;
    if (!ota_test_hooks_built())
        skip();
    big_data(big);
    fresh_dir(&sc);
    memset(&f, 0, sizeof(f));
    run_ops(&sc, &f, true);
    ota_fs_fault_free(&f);
    rm_rf(sc.dir);

    for (int skipping = 0; skipping < 2; skipping++) {
        fresh_dir(&sc);
        cut_child(&sc, sc.end[7], skipping ? "/big" : NULL); /* before the commit step */
        path_in(b, &sc, "big");
        assert_int_equal(ota_fs_read(&got, &len, b, 1 << 20), 0);
        assert_int_equal(len, BIG);
        if (skipping) {
            /* The first sector survives, the second is zeros. */
            assert_memory_equal(got, big, 512);
            for (size_t i = 512; i < 1024; i++)
                assert_int_equal(got[i], 0);
            assert_memory_not_equal(got, big, BIG);
        } else {
            assert_memory_equal(got, big, BIG);
        }
        free(got);
        got = NULL;
        rm_rf(sc.dir);
    }
    /* A small file whose fsync was skipped is lost entirely. */
    fresh_dir(&sc);
    cut_child(&sc, sc.end[7], "/sub/k.next"); /* created there, then renamed */
    path_in(b, &sc, "sub/k");
    assert_int_equal(ota_fs_read(&got, &len, b, 1 << 20), 0);
    assert_int_equal(len, 0);
    free(got);
    rm_rf(sc.dir);
}

/* Without a cut the hook changes nothing and only counts. */
static void test_no_cut_counts(void **state)
{
    struct scenario sc;
    struct ota_fs_fault f;
    char a[PATH_MAX];

    (void)state;
    fresh_dir(&sc);
    memset(&f, 0, sizeof(f));
    run_ops(&sc, &f, true);
    assert_int_equal(f.steps, sc.end[7]);
    path_in(a, &sc, "sub/k");
    assert_file(a, "KEY", 3, 0600);
    ota_fs_fault_free(&f);
    ota_fs_fault_free(&f);
    rm_rf(sc.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_at_every_step),
        cmocka_unit_test(test_skipped_fsync_tears),
        cmocka_unit_test(test_no_cut_counts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
