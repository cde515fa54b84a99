/* Unit tests for repo_store_files.c: the repository directory as a store.
 * Paths are validated, writes are atomic and make their directories,
 * moves and copies keep content (copies are checked against a length and
 * hash), and the log store opens on first use only when asked to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otachain/repo_store.h"

struct fx {
    char dir[64];
    struct ota_repo_store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ota-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL || ota_repo_files_open(&f->s, f->dir, NULL, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_repo_store_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void test_paths(void **state)
{
    static const char *const good[] = {"repo.json", "public/metadata/1.root.json",
                                       "public/targets/cam/1.0.0/ab.fw-1.img", "a/.hidden",
                                       "blobs/x.pack"};
    static const char *const bad[] = {"",      "/abs", "a//b", "a/",   "../x",   "a/../b",
                                      "a/./b", ".",    "a b",  "a\\b", "a/b/..", "ä.json"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ota_repo_path_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(ota_repo_path_valid(bad[i]));
    assert_false(ota_repo_path_valid(NULL));
}

static void test_put_get_move_remove(void **state)
{
    struct fx *f = *state;
    struct ota_repo_store *s = f->s;
    struct ota_buf b;
    bool exists = true;
    uint64_t len = 1;
    char p[PATH_MAX];
    struct stat st;

    ota_buf_init(&b, 64);
    assert_int_equal(s->ops->get(s, "public/metadata/x.json", &b, NULL), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->stat(s, "public/metadata/x.json", &exists, &len, NULL), 0);
    assert_false(exists);
    assert_int_equal(s->ops->put(s, "public/staging/metadata/2.root.json", "root", 4, NULL), 0);
    snprintf(p, sizeof(p), "%s/public/staging/metadata/2.root.json", f->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(
        s->ops->move(s, "public/staging/metadata/2.root.json", "public/metadata/2.root.json", NULL),
        0);
    assert_int_equal(s->ops->stat(s, "public/metadata/2.root.json", &exists, &len, NULL), 0);
    assert_true(exists);
    assert_int_equal(len, 4);
    assert_int_equal(s->ops->get(s, "public/metadata/2.root.json", &b, NULL), 0);
    assert_memory_equal(b.data, "root", 4);
    assert_int_equal(s->ops->move(s, "public/staging/metadata/2.root.json", "x", NULL),
                     OTA_ERR_NOT_FOUND);
    /* The cap of out is honoured. */
    b.len = 0;
    b.max = 2;
    assert_int_equal(s->ops->get(s, "public/metadata/2.root.json", &b, NULL), OTA_ERR_TOO_LARGE);
    assert_int_equal(s->ops->remove(s, "public/metadata/2.root.json", NULL), 0);
    assert_int_equal(s->ops->remove(s, "public/metadata/2.root.json", NULL), 0);
    assert_int_equal(s->ops->put(s, "../escape", "x", 1, NULL), OTA_ERR_INVALID_ARG);
    ota_buf_free(&b);
}

static void test_copy_checks(void **state)
{
    struct fx *f = *state;
    struct ota_repo_store *s = f->s;
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t len = 11;
    uint64_t wrong = 12;
    struct ota_buf b;

    ota_buf_init(&b, 64);
    assert_int_equal(s->ops->put(s, "blobs/img", "hello image", 11, NULL), 0);
    assert_int_equal(ota_sha256(sha, "hello image", 11), 0);
    assert_int_equal(s->ops->copy(s, "blobs/img", "public/targets/a/b.img", sha, &wrong, NULL),
                     OTA_ERR_LENGTH_MISMATCH);
    sha[0] ^= 1;
    assert_int_equal(s->ops->copy(s, "blobs/img", "public/targets/a/b.img", sha, &len, NULL),
                     OTA_ERR_HASH_MISMATCH);
    assert_int_equal(s->ops->get(s, "public/targets/a/b.img", &b, NULL), OTA_ERR_NOT_FOUND);
    sha[0] ^= 1;
    assert_int_equal(s->ops->copy(s, "blobs/img", "public/targets/a/b.img", sha, &len, NULL), 0);
    assert_int_equal(s->ops->get(s, "public/targets/a/b.img", &b, NULL), 0);
    assert_memory_equal(b.data, "hello image", 11);
    assert_int_equal(s->ops->copy(s, "blobs/none", "public/x", NULL, NULL, NULL),
                     OTA_ERR_NOT_FOUND);
    ota_buf_free(&b);
}

static void test_log_on_demand(void **state)
{
    struct fx *f = *state;
    struct ota_repo_store *s = f->s;
    struct ota_log_store *log = (struct ota_log_store *)1;
    struct ota_log_store *again = NULL;
    char p[PATH_MAX];
    struct stat st;

    snprintf(p, sizeof(p), "%s/ledger.db", f->dir);
    assert_int_equal(s->ops->log(s, &log, false, NULL), 0);
    assert_null(log);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(s->ops->log(s, &log, true, NULL), 0);
    assert_non_null(log);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(s->ops->log(s, &again, false, NULL), 0);
    assert_ptr_equal(again, log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_put_get_move_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_on_demand, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
