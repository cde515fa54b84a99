/* Unit tests for fleet.c: what a check-in changes and when it is an event
 * (288 identical check-ins, one simulated day at 5 minutes, add no event;
 * a changed field adds exactly one), the failed set, the per-device event
 * cap, and the admin tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/fleet.h"
#include "testfs.h"

static char g_dir[256];
static struct ota_fleet_store *g_s;
static const struct ota_fleet_retention RET = {1000};

static int setup(void **state)
{
    char db[512];
    struct ota_detail det;

    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/ota-test-fleetlogic-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(db, sizeof(db), "%s/fleet.db", g_dir);
    return ota_fleet_store_sqlite_open(&g_s, db, OTA_FLEET_SYNC_NORMAL, &det);
}

static int teardown(void **state)
{
    (void)state;
    ota_fleet_store_close(g_s);
    rm_rf(g_dir);
    return 0;
}

static struct ota_checkin report(const char *version)
{
    struct ota_checkin c;

    memset(&c, 0, sizeof(c));
    snprintf(c.product, sizeof(c.product), "cam");
    snprintf(c.hardware, sizeof(c.hardware), "rev-a");
    snprintf(c.version, sizeof(c.version), "%s", version);
    snprintf(c.slot, sizeof(c.slot), "a");
    c.root_version = 1;
    c.timestamp_version = 1;
    return c;
}

static struct ota_fleet_checkin_result checkin(const char *dev, const struct ota_checkin *c,
                                               int64_t now)
{
    struct ota_fleet_checkin_result res;
    struct ota_detail det;

    assert_int_equal(g_s->ops->begin(g_s, &det), 0);
    assert_int_equal(ota_fleet_checkin(g_s, &res, dev, "a1", c, now, &RET, &det), 0);
    assert_int_equal(g_s->ops->commit(g_s, &det), 0);
    return res;
}

struct evlist {
    int n;
    char last[OTA_FLEET_CHANGES_MAX + 1];
};

static int collect(void *ctx, const struct ota_fleet_event *e)
{
    struct evlist *l = ctx;

    if (l->n == 0)
        memcpy(l->last, e->changes, sizeof(l->last));
    l->n++;
    return 0;
}

static struct evlist events(const char *dev)
{
    struct evlist l = {0, ""};
    struct ota_detail det;

    assert_int_equal(g_s->ops->event_list(g_s, dev, 0, 10000, collect, &l, &det), 0);
    return l;
}

static void test_day_of_identical_checkins(void **state)
{
    struct ota_checkin c = report("1.0.0");
    struct ota_fleet_checkin_result r;
    struct ota_fleet_device d;
    struct ota_detail det;
    int64_t t0 = 1750000000;
    bool found;

    (void)state;
    r = checkin("cam-day", &c, t0);
    assert_true(r.first);
    assert_true(r.event);
    assert_int_equal(events("cam-day").n, 1);
    assert_string_equal(events("cam-day").last,
                        "{\"running.product\":[null,\"cam\"],\"running.hardware\":[null,\"rev-a\"],"
                        "\"running.version\":[null,\"1.0.0\"],\"running.slot\":[null,\"a\"],"
                        "\"trusted.root_version\":[null,1]}");
    /* 288 check-ins at 5 minutes: one day, nothing changes. Only the row
     * changes (last_seen); the timestamp version and checkpoint move too,
     * which are not event fields. */
    for (int i = 1; i <= 288; i++) {
        c.timestamp_version = (uint64_t)(1 + i / 12);
        c.has_checkpoint = true;
        c.checkpoint_size = (uint64_t)(10 + i / 24);
        r = checkin("cam-day", &c, t0 + 300 * i);
        assert_false(r.first);
        assert_false(r.event);
        assert_int_equal(r.changed, 0);
    }
    assert_int_equal(events("cam-day").n, 1);
    assert_int_equal(g_s->ops->device_get(g_s, "cam-day", &d, &found, &det), 0);
    assert_int_equal(d.last_seen, t0 + 300 * 288);
    assert_int_equal(d.first_seen, t0);
    /* A changed field adds exactly one event. */
    snprintf(c.version, sizeof(c.version), "1.1.0");
    r = checkin("cam-day", &c, t0 + 300 * 289);
    assert_true(r.event);
    assert_int_equal(r.changed, OTA_FLEET_F_VERSION);
    assert_int_equal(events("cam-day").n, 2);
    assert_string_equal(events("cam-day").last, "{\"running.version\":[\"1.0.0\",\"1.1.0\"]}");
    r = checkin("cam-day", &c, t0 + 300 * 290);
    assert_false(r.event);
    assert_int_equal(events("cam-day").n, 2);
}

static int append_target(void *ctx, const char *t)
{
    strncat((char *)ctx, t, 300);
    return 0;
}

static void test_update_states_and_progress(void **state)
{
    struct ota_checkin c = report("1.0.0");
    struct ota_fleet_checkin_result r;
    struct ota_fleet_device d;
    struct ota_detail det;
    bool found;
    char failed[512] = "";

    (void)state;
    checkin("cam-up", &c, 1000);
    c.state = OTA_UPDATE_DOWNLOADING;
    snprintf(c.state_target, sizeof(c.state_target), "cam/2.0.0/fw.img");
    c.has_progress = true;
    c.progress = 100;
    r = checkin("cam-up", &c, 1100);
    assert_int_equal(r.changed, OTA_FLEET_F_STATE | OTA_FLEET_F_STATE_TARGET);
    assert_int_equal(g_s->ops->device_get(g_s, "cam-up", &d, &found, &det), 0);
    assert_int_equal(d.update_since, 1100);
    assert_int_equal(d.progress_at, 1100);
    /* Progress moves the progress time, not the state time, no event. */
    c.progress = 200;
    r = checkin("cam-up", &c, 1200);
    assert_false(r.event);
    assert_int_equal(g_s->ops->device_get(g_s, "cam-up", &d, &found, &det), 0);
    assert_int_equal(d.update_since, 1100);
    assert_int_equal(d.progress_at, 1200);
    /* No progress: the time of the last progress stays. */
    r = checkin("cam-up", &c, 1300);
    assert_int_equal(g_s->ops->device_get(g_s, "cam-up", &d, &found, &det), 0);
    assert_int_equal(d.progress_at, 1200);
    assert_int_equal(d.last_seen, 1300);
    /* Rolled back: an event, and the target joins the failed set. */
    c.state = OTA_UPDATE_ROLLED_BACK;
    c.has_progress = false;
    snprintf(c.error_name, sizeof(c.error_name), "health_check");
    r = checkin("cam-up", &c, 1400);
    assert_int_equal(r.changed, OTA_FLEET_F_STATE | OTA_FLEET_F_ERROR);
    assert_string_equal(events("cam-up").last,
                        "{\"update.state\":[\"downloading\",\"rolled_back\"],"
                        "\"last_error.name\":[null,\"health_check\"]}");
    assert_int_equal(g_s->ops->failed_list(g_s, "cam-up", append_target, failed, &det), 0);
    assert_string_equal(failed, "cam/2.0.0/fw.img");
}

static void test_event_cap(void **state)
{
    const struct ota_fleet_retention small = {3};
    struct ota_checkin c = report("1.0.0");
    struct ota_fleet_checkin_result r;
    struct ota_detail det;

    (void)state;
    for (int i = 0; i < 10; i++) {
        snprintf(c.version, sizeof(c.version), "1.0.%d", i);
        assert_int_equal(g_s->ops->begin(g_s, &det), 0);
        assert_int_equal(ota_fleet_checkin(g_s, &r, "cam-cap", "", &c, 5000 + i, &small, &det), 0);
        assert_int_equal(g_s->ops->commit(g_s, &det), 0);
    }
    assert_int_equal(events("cam-cap").n, 3);
    assert_int_equal(r.trimmed, 1);
    /* Bad arguments change nothing. */
    assert_int_equal(g_s->ops->begin(g_s, &det), 0);
    assert_int_equal(ota_fleet_checkin(g_s, &r, "bad id", "", &c, 1, &small, &det),
                     OTA_ERR_INVALID_ARG);
    g_s->ops->rollback(g_s);
}

static void test_tokens(void **state)
{
    char text[OTA_FLEET_TOKEN_TEXT_MAX + 1];
    char id[OTA_FLEET_TOKEN_ID + 1];
    struct ota_fleet_token rec, rec2;
    struct ota_detail det;
    uint8_t hash[32];
    unsigned scopes;
    char buf[OTA_FLEET_TOKEN_TEXT_MAX + 1];

    (void)state;
    assert_int_equal(ota_fleet_scopes_parse(&scopes, "read,release"), 0);
    assert_int_equal(scopes, OTA_FLEET_SCOPE_READ | OTA_FLEET_SCOPE_RELEASE);
    ota_fleet_scopes_format(buf, sizeof(buf), scopes);
    assert_string_equal(buf, "read,release");
    assert_int_equal(ota_fleet_scopes_parse(&scopes, "read,read"), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fleet_scopes_parse(&scopes, "root"), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fleet_scopes_parse(&scopes, ""), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fleet_scopes_parse(&scopes, "read,"), OTA_ERR_INVALID_ARG);

    assert_int_equal(ota_fleet_token_new(text, &rec, "ci", OTA_FLEET_SCOPE_READ, 77, "cli", &det),
                     0);
    assert_int_equal(strlen(text), 5 + 16 + 1 + 64);
    assert_int_equal(ota_fleet_token_parse(id, hash, text, strlen(text)), 0);
    assert_string_equal(id, rec.id);
    assert_int_equal(ota_fleet_token_check(&rec, hash, OTA_FLEET_SCOPE_READ), 0);
    assert_int_equal(ota_fleet_token_check(&rec, hash, OTA_FLEET_SCOPE_RELEASE), OTA_ERR_SCOPE);
    /* Two tokens never share an id or a secret. */
    assert_int_equal(ota_fleet_token_new(buf, &rec2, "ci", OTA_FLEET_SCOPE_ADMIN, 77, "cli", &det),
                     0);
    assert_string_not_equal(rec.id, rec2.id);
    assert_int_equal(ota_fleet_token_check(&rec2, hash, OTA_FLEET_SCOPE_READ), OTA_ERR_AUTH);
    /* admin implies every scope. */
    uint8_t hash2[32];
    assert_int_equal(ota_fleet_token_parse(id, hash2, buf, strlen(buf)), 0);
    assert_int_equal(ota_fleet_token_check(&rec2, hash2, OTA_FLEET_SCOPE_RELEASE), 0);
    /* A flipped secret digit, a revoked token, malformed texts. */
    text[strlen(text) - 1] = text[strlen(text) - 1] == '0' ? '1' : '0';
    assert_int_equal(ota_fleet_token_parse(id, hash, text, strlen(text)), 0);
    assert_int_equal(ota_fleet_token_check(&rec, hash, OTA_FLEET_SCOPE_READ), OTA_ERR_AUTH);
    rec2.revoked = 5;
    assert_int_equal(ota_fleet_token_check(&rec2, hash2, OTA_FLEET_SCOPE_READ), OTA_ERR_REVOKED);
    assert_int_equal(ota_fleet_token_parse(id, hash, "ota1.x.y", 8), OTA_ERR_AUTH);
    text[3] = '2';
    assert_int_equal(ota_fleet_token_parse(id, hash, text, strlen(text)), OTA_ERR_AUTH);
    assert_int_equal(
        ota_fleet_token_new(text, &rec, "bad name", OTA_FLEET_SCOPE_READ, 1, "cli", &det),
        OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_fleet_token_new(text, &rec, "ok", 0, 1, "cli", &det), OTA_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_of_identical_checkins),
        cmocka_unit_test(test_update_states_and_progress),
        cmocka_unit_test(test_event_cap),
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
