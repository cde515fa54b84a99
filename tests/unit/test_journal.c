/* Unit tests for the install journal (journal.h): round trip, every field
 * refused when malformed, the blocked list, atomic store under fault
 * injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/clock.h"
#include "otachain/journal.h"
#include "testfs.h"

static void fill(struct ota_journal *j)
{
    memset(j, 0, sizeof(*j));
    j->phase = OTA_PHASE_ARMED;
    snprintf(j->installed.slot, sizeof(j->installed.slot), "a");
    snprintf(j->installed.version, sizeof(j->installed.version), "1.0.0");
    snprintf(j->installed.target, sizeof(j->installed.target), "p/1.0.0/fw.img");
    memset(j->installed.sha256, 0x11, OTA_SHA256_LEN);
    j->installed.length = 1000;
    j->installed.security_version = 2;
    snprintf(j->pending.slot, sizeof(j->pending.slot), "b");
    snprintf(j->pending.version, sizeof(j->pending.version), "1.1.0-rc.1+build.5");
    snprintf(j->pending.target, sizeof(j->pending.target), "p/1.1.0/fw.img");
    memset(j->pending.sha256, 0x22, OTA_SHA256_LEN);
    j->pending.length = 2000;
    j->pending.security_version = 3;
    j->security_floor = 2;
    uint8_t h[OTA_SHA256_LEN];
    memset(h, 0x33, sizeof(h));
    ota_journal_block(j, h);
    j->outcome = OTA_OUTCOME_ROLLED_BACK;
    snprintf(j->outcome_version, sizeof(j->outcome_version), "0.9.0");
    snprintf(j->outcome_target, sizeof(j->outcome_target), "cam/0.9.0/fw.img");
    snprintf(j->outcome_error, sizeof(j->outcome_error), "health_check");
    snprintf(j->outcome_detail, sizeof(j->outcome_detail), "hook said \"no\"");
    j->outcome_time = 1700000000;
    j->reported = true;
}

static void test_roundtrip(void **state)
{
    struct ota_journal j, k;
    char *text = NULL;
    size_t len = 0;

    (void)state;
    fill(&j);
    assert_int_equal(ota_journal_encode(&text, &len, &j), 0);
    assert_int_equal(ota_journal_parse(&k, text, len, NULL), 0);
    assert_memory_equal(&j, &k, sizeof(j));
    free(text);
    /* Idle: no pending written, none read. */
    j.phase = OTA_PHASE_IDLE;
    memset(&j.pending, 0, sizeof(j.pending));
    j.outcome_time = OTA_TIME_NONE;
    assert_int_equal(ota_journal_encode(&text, &len, &j), 0);
    assert_null(strstr(text, "pending"));
    assert_int_equal(ota_journal_parse(&k, text, len, NULL), 0);
    assert_memory_equal(&j, &k, sizeof(j));
    free(text);
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"format\":2,\"phase\":\"idle\"}",
        "{\"format\":1}",
        "{\"format\":1,\"phase\":\"dancing\"}",
        "{\"format\":1,\"phase\":\"armed\"}", /* no pending */
        "{\"format\":1,\"phase\":\"idle\",\"installed\":{\"version\":\"1\"}}",
        "{\"format\":1,\"phase\":\"idle\",\"installed\":{\"slot\":\"a\",\"version\":\"1\","
        "\"sha256\":\"zz\"}}",
        "{\"format\":1,\"phase\":\"idle\",\"installed\":{\"slot\":\"a\",\"version\":\"1\","
        "\"length\":-1}}",
        "{\"format\":1,\"phase\":\"idle\",\"installed\":{\"slot\":\"a\\u0001\",\"version\":"
        "\"1\"}}",
        "{\"format\":1,\"phase\":\"idle\",\"security_floor\":1.5}",
        "{\"format\":1,\"phase\":\"idle\",\"blocked\":[\"00\"]}",
        "{\"format\":1,\"phase\":\"idle\",\"outcome\":{\"result\":\"maybe\"}}",
        "{\"format\":1,\"phase\":\"idle\",\"outcome\":{\"result\":\"failed\",\"reported\":1}}",
        "{\"format\":1,\"phase\":\"idle\",\"phase\":\"idle\"}",
    };
    struct ota_journal j;
    struct ota_detail det;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ota_journal_parse(&j, bad[i], strlen(bad[i]), &det);

        assert_int_equal(rc, OTA_ERR_JOURNAL);
        assert_int_equal(j.phase, OTA_PHASE_IDLE);
        assert_string_equal(j.installed.slot, "");
    }
}

static void test_blocked_list(void **state)
{
    struct ota_journal j;
    uint8_t h[OTA_SHA256_LEN];

    (void)state;
    memset(&j, 0, sizeof(j));
    for (unsigned i = 0; i < OTA_JOURNAL_MAX_BLOCKED + 3; i++) {
        memset(h, (int)i, sizeof(h));
        ota_journal_block(&j, h);
        ota_journal_block(&j, h); /* once */
    }
    assert_int_equal(j.nblocked, OTA_JOURNAL_MAX_BLOCKED);
    memset(h, 0, sizeof(h));
    assert_false(ota_journal_is_blocked(&j, h)); /* the oldest went first */
    memset(h, OTA_JOURNAL_MAX_BLOCKED + 2, sizeof(h));
    assert_true(ota_journal_is_blocked(&j, h));
}

static int fail_at_rename(void *ctx, const struct ota_fs_event *ev)
{
    (void)ctx;
    return ev->step == OTA_FS_STEP_RENAME ? -1 : 0;
}

static void test_store_load(void **state)
{
    char dir[PATH_MAX];
    struct ota_journal j, k;
    struct ota_fs_hook hook = {fail_at_rename, NULL};
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(dir, sizeof(dir), "%s/ota-journal-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    /* Missing: an empty idle journal. */
    assert_int_equal(ota_journal_load(&k, dir, NULL), 0);
    assert_int_equal(k.phase, OTA_PHASE_IDLE);
    assert_string_equal(k.installed.slot, "");
    fill(&j);
    assert_int_equal(ota_journal_store(&j, dir, NULL, NULL), 0);
    assert_int_equal(ota_journal_load(&k, dir, NULL), 0);
    assert_memory_equal(&j, &k, sizeof(j));
    /* A store that fails leaves the old journal. */
    struct ota_journal j2 = j;
    j2.phase = OTA_PHASE_IDLE;
    assert_int_not_equal(ota_journal_store(&j2, dir, &hook, NULL), 0);
    assert_int_equal(ota_journal_load(&k, dir, NULL), 0);
    assert_int_equal(k.phase, OTA_PHASE_ARMED);
    rm_rf(dir);
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A journal that cannot be loaded is OTA_ERR_JOURNAL, whatever the cause
 * (the agent treats them alike), with the file's path and the cause in
 * the detail, and the output zeroed. */
static void test_load_unusable(void **state)
{
    char dir[PATH_MAX - 64], path[PATH_MAX], *text = NULL, *big;
    const char *wrong = "{\"format\": 1, \"phase\": \"sleeping\"}";
    size_t len = 0;
    struct ota_journal j, k;
    struct ota_detail det;
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(dir, sizeof(dir), "%s/ota-journal-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, OTA_JOURNAL_FILE);
    fill(&j);
    assert_int_equal(ota_journal_encode(&text, &len, &j), 0);
    /* Truncated (a broken storage driver). */
    put(dir, OTA_JOURNAL_FILE, text, len / 2);
    memset(&det, 0, sizeof(det));
    memset(&k, 0xff, sizeof(k));
    assert_int_equal(ota_journal_load(&k, dir, &det), OTA_ERR_JOURNAL);
    assert_non_null(strstr(det.msg, path));
    assert_int_equal(k.phase, OTA_PHASE_IDLE);
    assert_string_equal(k.installed.slot, "");
    /* Valid JSON, a wrong field: the detail names it. */
    put(dir, OTA_JOURNAL_FILE, wrong, strlen(wrong));
    memset(&det, 0, sizeof(det));
    assert_int_equal(ota_journal_load(&k, dir, &det), OTA_ERR_JOURNAL);
    assert_non_null(strstr(det.msg, path));
    assert_non_null(strstr(det.msg, "phase"));
    /* Empty. */
    put(dir, OTA_JOURNAL_FILE, "", 0);
    assert_int_equal(ota_journal_load(&k, dir, NULL), OTA_ERR_JOURNAL);
    /* Over the cap. */
    big = malloc(OTA_JOURNAL_MAX_LEN + 1);
    assert_non_null(big);
    memset(big, ' ', OTA_JOURNAL_MAX_LEN + 1);
    put(dir, OTA_JOURNAL_FILE, big, OTA_JOURNAL_MAX_LEN + 1);
    free(big);
    memset(&det, 0, sizeof(det));
    assert_int_equal(ota_journal_load(&k, dir, &det), OTA_ERR_JOURNAL);
    assert_non_null(strstr(det.msg, "larger than"));
    /* Unreadable: a directory in its place, a symlink to a good one. */
    assert_int_equal(unlink(path), 0);
    put(dir, "good.json", text, len);
    assert_int_equal(symlink("good.json", path), 0);
    memset(&det, 0, sizeof(det));
    assert_int_equal(ota_journal_load(&k, dir, &det), OTA_ERR_JOURNAL);
    assert_non_null(strstr(det.msg, "cannot be read"));
    assert_non_null(strstr(det.msg, path));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    memset(&det, 0, sizeof(det));
    assert_int_equal(ota_journal_load(&k, dir, &det), OTA_ERR_JOURNAL);
    assert_non_null(strstr(det.msg, "cannot be read"));
    /* Missing is not an error: a first start. */
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(ota_journal_load(&k, dir, NULL), 0);
    free(text);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_refused),
        cmocka_unit_test(test_blocked_list),  cmocka_unit_test(test_store_load),
        cmocka_unit_test(test_load_unusable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
