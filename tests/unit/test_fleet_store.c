/* Unit tests for fleet_store_sqlite.c: schema migrations and refusals,
 * transactions and savepoints, and every operation of the interface. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/fleet_store.h"
#include "testfs.h"

static char g_dir[256];
static char g_db[512];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/ota-test-fleet-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_db, sizeof(g_db), "%s/fleet.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static struct ota_fleet_store *open_store(void)
{
    struct ota_fleet_store *s = NULL;
    struct ota_detail det;

    unlink(g_db);
    assert_int_equal(ota_fleet_store_sqlite_open(&s, g_db, OTA_FLEET_SYNC_FULL, &det), 0);
    return s;
}

static void sqlexec(const char *path, const char *text)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_schema(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_detail det;
    unsigned v = 9;
    struct stat st;
    char other[600];

    (void)state;
    assert_int_equal(stat(g_db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ota_fleet_store_close(s);
    assert_int_equal(ota_fleet_store_sqlite_version(&v, g_db, &det), 0);
    assert_int_equal(v, OTA_FLEET_SCHEMA_VERSION);
    /* Reopening a current database migrates nothing. */
    assert_int_equal(ota_fleet_store_sqlite_open(&s, g_db, OTA_FLEET_SYNC_NORMAL, &det), 0);
    ota_fleet_store_close(s);
    /* A newer schema is refused, and left alone. */
    sqlexec(g_db, "PRAGMA user_version = 99");
    assert_int_equal(ota_fleet_store_sqlite_open(&s, g_db, OTA_FLEET_SYNC_FULL, &det),
                     OTA_ERR_SCHEMA);
    assert_non_null(strstr(det.msg, "schema version 99"));
    assert_int_equal(ota_fleet_store_sqlite_version(&v, g_db, &det), 0);
    assert_int_equal(v, 99);
    /* Another application's database is refused. */
    snprintf(other, sizeof(other), "%s/other.db", g_dir);
    sqlexec(other, "CREATE TABLE t(x)");
    assert_int_equal(ota_fleet_store_sqlite_open(&s, other, OTA_FLEET_SYNC_FULL, &det),
                     OTA_ERR_SCHEMA);
    assert_non_null(strstr(det.msg, "not an otachain-server fleet database"));
    /* A new empty file becomes one. */
    snprintf(other, sizeof(other), "%s/new.db", g_dir);
    assert_int_equal(ota_fleet_store_sqlite_version(&v, other, &det) != 0, 1);
    assert_int_equal(ota_fleet_store_sqlite_open(&s, other, OTA_FLEET_SYNC_FULL, &det), 0);
    ota_fleet_store_close(s);
}

static struct ota_fleet_device device(const char *id, const char *version)
{
    struct ota_fleet_device d;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.report.product, sizeof(d.report.product), "cam");
    snprintf(d.report.hardware, sizeof(d.report.hardware), "rev-a");
    snprintf(d.report.version, sizeof(d.report.version), "%s", version);
    d.report.root_version = 1;
    d.first_seen = 100;
    d.last_seen = 200;
    return d;
}

static int count_dev(void *ctx, const struct ota_fleet_device *d)
{
    (void)d;
    (*(int *)ctx)++;
    return 0;
}

static void test_transactions(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_fleet_device d = device("cam-1", "1.0.0");
    struct ota_fleet_device got;
    struct ota_detail det;
    bool found;

    (void)state;
    /* No change outside a transaction. */
    assert_int_equal(s->ops->device_put(s, &d, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->savepoint(s, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->begin(s, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->device_put(s, &d, &det), 0);
    /* A savepoint undone keeps what came before it. */
    assert_int_equal(s->ops->savepoint(s, &det), 0);
    struct ota_fleet_device e = device("cam-2", "1.0.0");
    assert_int_equal(s->ops->device_put(s, &e, &det), 0);
    assert_int_equal(s->ops->commit(s, &det), OTA_ERR_INVALID_ARG); /* inside a savepoint */
    s->ops->rollback(s);
    assert_int_equal(s->ops->device_get(s, "cam-1", &got, &found, &det), 0);
    assert_false(found);

    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->device_put(s, &d, &det), 0);
    assert_int_equal(s->ops->savepoint(s, &det), 0);
    assert_int_equal(s->ops->device_put(s, &e, &det), 0);
    s->ops->rollback_to(s);
    assert_int_equal(s->ops->savepoint(s, &det), 0);
    struct ota_fleet_device f = device("cam-3", "2.0.0");
    assert_int_equal(s->ops->device_put(s, &f, &det), 0);
    assert_int_equal(s->ops->release(s, &det), 0);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->device_get(s, "cam-1", &got, &found, &det), 0);
    assert_true(found);
    assert_int_equal(s->ops->device_get(s, "cam-2", &got, &found, &det), 0);
    assert_false(found);
    assert_int_equal(s->ops->device_get(s, "cam-3", &got, &found, &det), 0);
    assert_true(found);
    assert_string_equal(got.report.version, "2.0.0");
    ota_fleet_store_close(s);
}

static void test_devices(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_fleet_device d = device("cam-1", "1.0.0-rc.1");
    struct ota_fleet_device got;
    struct ota_detail det;
    uint64_t n;
    bool found;
    int count = 0;

    (void)state;
    d.report.state = OTA_UPDATE_ROLLED_BACK;
    snprintf(d.report.state_target, sizeof(d.report.state_target), "cam/2.0.0/fw.img");
    d.report.has_progress = true;
    d.report.progress = 12345;
    snprintf(d.report.error_name, sizeof(d.report.error_name), "hash_mismatch");
    snprintf(d.report.error_detail, sizeof(d.report.error_detail), "chunk 3");
    d.report.timestamp_version = 7;
    d.report.snapshot_version = 8;
    d.report.targets_version = 9;
    d.report.has_checkpoint = true;
    d.report.checkpoint_size = 42;
    memset(d.report.checkpoint_hash, 0x5a, 32);
    d.update_since = 150;
    d.progress_at = 160;
    snprintf(d.serial, sizeof(d.serial), "abc123");
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->device_put(s, &d, &det), 0);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "dev-%d", i);
        struct ota_fleet_device x = device(id, "1.0.0");
        assert_int_equal(s->ops->device_put(s, &x, &det), 0);
    }
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->device_get(s, "cam-1", &got, &found, &det), 0);
    assert_true(found);
    assert_memory_equal(&got, &d, sizeof(d));
    assert_int_equal(s->ops->device_count(s, &n, &det), 0);
    assert_int_equal(n, 6);
    assert_int_equal(s->ops->device_list(s, "", 100, count_dev, &count, &det), 0);
    assert_int_equal(count, 6);
    count = 0;
    assert_int_equal(s->ops->device_list(s, "dev-2", 100, count_dev, &count, &det), 0);
    assert_int_equal(count, 2);
    count = 0;
    assert_int_equal(s->ops->device_list(s, "", 3, count_dev, &count, &det), 0);
    assert_int_equal(count, 3);
    ota_fleet_store_close(s);
}

struct evs {
    int n;
    uint64_t last;
    bool desc;
};

static int collect_ev(void *ctx, const struct ota_fleet_event *e)
{
    struct evs *v = ctx;

    if (v->n > 0 && e->id >= v->last)
        v->desc = false;
    v->last = e->id;
    v->n++;
    return 0;
}

static void test_events(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_detail det;
    struct evs v = {0, 0, true};
    uint64_t id = 0, removed = 0;

    (void)state;
    assert_int_equal(s->ops->event_add(s, "a", 1, "{}", &id, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(s->ops->begin(s, &det), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(s->ops->event_add(s, "a", 100 + i, "{\"x\":[1,2]}", &id, &det), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s->ops->event_add(s, "b", 100 + i, "{}", &id, &det), 0);
    assert_int_equal(s->ops->event_trim(s, "a", 4, &removed, &det), 0);
    assert_int_equal(removed, 6);
    assert_int_equal(s->ops->event_trim(s, "b", 4, &removed, &det), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->event_list(s, "a", 0, 100, collect_ev, &v, &det), 0);
    assert_int_equal(v.n, 4);
    assert_true(v.desc);
    /* Paging: below the last id seen. */
    struct evs w = {0, 0, true};
    assert_int_equal(s->ops->event_list(s, "a", v.last + 2, 100, collect_ev, &w, &det), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->event_expire(s, 102, &removed, &det), 0);
    assert_int_equal(removed, 2); /* b's at 100 and 101 */
    assert_int_equal(s->ops->commit(s, &det), 0);
    static char big[OTA_FLEET_CHANGES_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->event_add(s, "a", 1, big, &id, &det), OTA_ERR_TOO_LARGE);
    s->ops->rollback(s);
    ota_fleet_store_close(s);
}

static int collect_str(void *ctx, const char *t)
{
    strncat((char *)ctx, t, 200);
    strncat((char *)ctx, ";", 2);
    return 0;
}

static void test_failed(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_detail det;
    char got[512] = "";

    (void)state;
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->failed_add(s, "a", "cam/2.0.0/fw.img", 5, &det), 0);
    assert_int_equal(s->ops->failed_add(s, "a", "cam/2.0.0/fw.img", 6, &det), 0); /* a set */
    assert_int_equal(s->ops->failed_add(s, "a", "cam/1.5.0/fw.img", 7, &det), 0);
    assert_int_equal(s->ops->failed_add(s, "b", "cam/9.0.0/fw.img", 7, &det), 0);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->failed_list(s, "a", collect_str, got, &det), 0);
    assert_string_equal(got, "cam/1.5.0/fw.img;cam/2.0.0/fw.img;");
    ota_fleet_store_close(s);
}

static int count_rev(void *ctx, const struct ota_fleet_revocation *r)
{
    (void)r;
    (*(int *)ctx)++;
    return 0;
}

static void test_revocations(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_fleet_revocation r = {OTA_FLEET_REVOKE_CERTIFICATE, "a1b2", 10, "key lost", "cli"};
    struct ota_fleet_revocation got;
    struct ota_detail det;
    bool revoked;
    int n = 0;

    (void)state;
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->revoke_put(s, &r, &det), 0);
    assert_int_equal(s->ops->revoke_put(s, &r, &det), OTA_ERR_EXISTS);
    r.kind = OTA_FLEET_REVOKE_DEVICE;
    snprintf(r.id, sizeof(r.id), "cam-9");
    r.at = 20;
    assert_int_equal(s->ops->revoke_put(s, &r, &det), 0);
    assert_int_equal(s->ops->commit(s, &det), 0);

    assert_int_equal(s->ops->revoke_check(s, "cam-1", "ffff", &revoked, &got, &det), 0);
    assert_false(revoked);
    assert_int_equal(s->ops->revoke_check(s, "cam-1", "", &revoked, &got, &det), 0);
    assert_false(revoked);
    assert_int_equal(s->ops->revoke_check(s, "cam-1", "a1b2", &revoked, &got, &det), 0);
    assert_true(revoked);
    assert_int_equal(got.kind, OTA_FLEET_REVOKE_CERTIFICATE);
    assert_string_equal(got.reason, "key lost");
    /* The device revocation wins when both apply. */
    assert_int_equal(s->ops->revoke_check(s, "cam-9", "a1b2", &revoked, &got, &det), 0);
    assert_true(revoked);
    assert_int_equal(got.kind, OTA_FLEET_REVOKE_DEVICE);
    assert_int_equal(got.at, 20);
    /* A device id that equals a serial does not match the serial kind. */
    assert_int_equal(s->ops->revoke_check(s, "a1b2", "", &revoked, &got, &det), 0);
    assert_false(revoked);
    assert_int_equal(s->ops->revoke_list(s, count_rev, &n, &det), 0);
    assert_int_equal(n, 2);
    ota_fleet_store_close(s);
}

static int count_tok(void *ctx, const struct ota_fleet_token *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

static void test_tokens_audit_flags(void **state)
{
    struct ota_fleet_store *s = open_store();
    struct ota_fleet_token t = {"0123456789abcdef", {1, 2, 3}, "ci", 3, 50, "cli", 0};
    struct ota_fleet_token got;
    struct ota_fleet_audit a = {0, 60, "cli", "token.create", "0123456789abcdef", "ok", ""};
    struct ota_fleet_flag f = {"cam-1", 70, 130, {9}, "size 130 is beyond the log (120)"};
    struct ota_detail det;
    bool found;
    uint64_t n;
    int count = 0;

    (void)state;
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->token_put(s, &t, &det), 0);
    assert_int_equal(s->ops->token_put(s, &t, &det), OTA_ERR_EXISTS);
    assert_int_equal(s->ops->audit_add(s, &a, &det), 0);
    assert_int_equal(a.id, 1);
    assert_int_equal(s->ops->audit_add(s, &a, &det), 0);
    assert_int_equal(a.id, 2);
    assert_int_equal(s->ops->flag_put(s, &f, &det), 0);
    assert_int_equal(s->ops->flag_put(s, &f, &det), OTA_ERR_EXISTS);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->token_get(s, "0123456789abcdef", &got, &found, &det), 0);
    assert_true(found);
    assert_memory_equal(&got, &t, sizeof(t));
    assert_int_equal(s->ops->token_get(s, "ffffffffffffffff", &got, &found, &det), 0);
    assert_false(found);
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->token_revoke(s, "0123456789abcdef", 99, &det), 0);
    assert_int_equal(s->ops->token_revoke(s, "0123456789abcdef", 99, &det), OTA_ERR_EXISTS);
    assert_int_equal(s->ops->token_revoke(s, "ffffffffffffffff", 99, &det), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->token_get(s, "0123456789abcdef", &got, &found, &det), 0);
    assert_int_equal(got.revoked, 99);
    assert_int_equal(s->ops->token_list(s, count_tok, &count, &det), 0);
    assert_int_equal(count, 1);
    assert_int_equal(s->ops->flag_count(s, &n, &det), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s->ops->begin(s, &det), 0);
    assert_int_equal(s->ops->flag_clear(s, "cam-1", &det), 0);
    assert_int_equal(s->ops->flag_clear(s, "cam-1", &det), OTA_ERR_NOT_FOUND);
    assert_int_equal(s->ops->commit(s, &det), 0);
    assert_int_equal(s->ops->flag_count(s, &n, &det), 0);
    assert_int_equal(n, 0);
    ota_fleet_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_failed),
        cmocka_unit_test(test_revocations),
        cmocka_unit_test(test_tokens_audit_flags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
