/* Unit tests for repo_keys.c: the key files of a repository as its online
 * signer. The role key the root lists is chosen (also a .next key during a
 * rotation), the log key is read only as a 0600 regular file, and a live
 * root finishes a rotation by renaming its .next key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otachain/repo.h"
#include "otachain/repo_signer.h"
#include "otachain/sign.h"
#include "otachain/tuf_sign.h"

struct fx {
    char dir[64];
    char path[256];
    struct ota_signer *snap, *snap_next, *ts;
};

static void kpath(struct fx *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/private/%s", f->dir, name);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char priv[128];

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ota-keys-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(priv, sizeof(priv), "%s/private", f->dir);
    if (mkdir(priv, 0700) != 0 || ota_signer_generate(&f->snap) != 0 ||
        ota_signer_generate(&f->snap_next) != 0 || ota_signer_generate(&f->ts) != 0)
        return -1;
    kpath(f, "snapshot.key");
    if (ota_signer_save(f->snap, f->path, NULL) != 0)
        return -1;
    kpath(f, "snapshot.key.next");
    if (ota_signer_save(f->snap_next, f->path, NULL) != 0)
        return -1;
    kpath(f, "timestamp.key");
    if (ota_signer_save(f->ts, f->path, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ota_signer_free(f->snap);
    ota_signer_free(f->snap_next);
    ota_signer_free(f->ts);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* A root listing snapshot key s and timestamp key t. */
static struct ota_tuf_meta *root_with(const struct ota_signer *s, const struct ota_signer *t)
{
    json_t *doc = ota_repo_meta_new(OTA_TUF_ROOT, 1, 2000000000);
    json_t *keys = json_object();
    json_t *roles = json_object();
    struct ota_tuf_meta *md = NULL;
    const struct ota_signer *k[4] = {t, t, s, t}; /* root, targets, snapshot, timestamp */

    for (int role = 0; role < 4; role++) {
        uint8_t pub[OTA_ED25519_PUB_LEN];

        ota_signer_public(pub, k[role]);
        json_object_set_new(keys, ota_signer_keyid(k[role]), ota_tuf_key_object(pub));
        json_object_set_new(
            roles, ota_tuf_role_name((enum ota_tuf_role)role),
            json_pack("{s:[s],s:i}", "keyids", ota_signer_keyid(k[role]), "threshold", 1));
    }
    json_object_set_new(json_object_get(doc, "signed"), "keys", keys);
    json_object_set_new(json_object_get(doc, "signed"), "roles", roles);
    json_object_set_new(json_object_get(doc, "signed"), "consistent_snapshot", json_true());
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_ROOT, NULL), 0);
    json_decref(doc);
    return md;
}

static void test_role_keys_and_rotation(void **state)
{
    struct fx *f = *state;
    struct ota_repo_signer *sg = NULL;
    struct ota_tuf_meta *old = root_with(f->snap, f->ts);
    struct ota_tuf_meta *neu = root_with(f->snap_next, f->ts);
    struct ota_detail det = {{0}};
    json_t *doc = ota_repo_meta_new(OTA_TUF_SNAPSHOT, 1, 2000000000);
    struct ota_tuf_meta *md = NULL;
    struct stat st;

    assert_int_equal(ota_repo_keys_open(&sg, f->dir, NULL, NULL), 0);
    assert_int_equal(sg->ops->have(sg, OTA_TUF_SNAPSHOT, old, &det), 0);
    assert_int_equal(sg->ops->have(sg, OTA_TUF_SNAPSHOT, neu, &det), 0); /* the .next key */
    /* Signs with the key the root lists. */
    json_object_set_new(json_object_get(doc, "signed"), "meta", json_object());
    assert_int_equal(sg->ops->sign(sg, doc, OTA_TUF_SNAPSHOT, neu, &det), 0);
    assert_int_equal(ota_tuf_from_json(&md, doc, OTA_TUF_SNAPSHOT, NULL), 0);
    assert_int_equal(ota_tuf_verify_role(md, neu, OTA_TUF_SNAPSHOT, NULL), 0);
    assert_int_not_equal(ota_tuf_verify_role(md, old, OTA_TUF_SNAPSHOT, NULL), 0);
    ota_tuf_meta_free(md);
    /* The old root still live: nothing renamed; the new one: .next wins. */
    assert_int_equal(sg->ops->root_live(sg, old, &det), 0);
    kpath(f, "snapshot.key.next");
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(sg->ops->root_live(sg, neu, &det), 0);
    assert_int_equal(stat(f->path, &st), -1);
    assert_int_equal(sg->ops->have(sg, OTA_TUF_SNAPSHOT, neu, &det), 0);
    assert_int_equal(sg->ops->have(sg, OTA_TUF_SNAPSHOT, old, &det), OTA_ERR_NOT_FOUND);
    assert_non_null(strstr(det.msg, "is a snapshot key of root v1"));
    ota_repo_signer_close(sg);
    ota_tuf_meta_free(old);
    ota_tuf_meta_free(neu);
    json_decref(doc);
}

static void test_log_key(void **state)
{
    struct fx *f = *state;
    struct ota_repo_signer *sg = NULL;
    struct ota_note_verifier v;
    struct ota_detail det = {{0}};
    char vkey[OTA_NOTE_VKEY_SIZE];
    struct ota_buf note;
    struct stat st;

    assert_int_equal(ota_repo_keys_open(&sg, f->dir, NULL, NULL), 0);
    assert_int_equal(sg->ops->log_key(sg, &v, &det), OTA_ERR_NOT_FOUND);
    kpath(f, "log.key");
    assert_int_equal(ota_repo_keys_create_log(vkey, f->path, "bad origin", NULL, &det),
                     OTA_ERR_KEY_FORMAT);
    assert_int_equal(stat(f->path, &st), -1);
    assert_int_equal(ota_repo_keys_create_log(vkey, f->path, "log.test/k", NULL, &det), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ota_repo_keys_create_log(vkey, f->path, "log.test/k", NULL, &det),
                     OTA_ERR_EXISTS);
    assert_int_equal(sg->ops->log_key(sg, &v, &det), 0);
    assert_string_equal(v.name, "log.test/k");
    ota_buf_init(&note, 4096);
    assert_int_equal(sg->ops->log_sign(sg, &note, "text\n", 5, &det), 0);
    assert_non_null(strstr((const char *)note.data, "log.test/k"));
    ota_buf_free(&note);
    ota_repo_signer_close(sg);
    /* A log key readable by others is refused. */
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_int_equal(ota_repo_keys_open(&sg, f->dir, NULL, NULL), 0);
    assert_int_equal(sg->ops->log_key(sg, &v, &det), OTA_ERR_PERMISSION);
    assert_non_null(strstr(det.msg, "0600"));
    ota_repo_signer_close(sg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_role_keys_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_key, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
