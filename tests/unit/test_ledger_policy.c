/* Unit tests for ledger_policy.c: NAME=VKEY@URL, the ledger member built
 * and rotated, each checked by parsing it back as a tlog-policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/ledger_policy.h"
#include "otachain/note_sign.h"

static void vkey_of(char out[OTA_NOTE_VKEY_SIZE], const char *name, int type, uint8_t tag)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    uint8_t seed[32];

    memset(seed, tag, sizeof(seed));
    assert_int_equal(ota_note_signer_from_seed(&s, name, strlen(name), type, seed), 0);
    ota_note_signer_verifier(&v, s);
    ota_note_verifier_format(out, &v);
    ota_note_signer_free(s);
}

static void test_witness_parse(void **state)
{
    struct ota_ledger_witness w;
    struct ota_detail det = {{0}};
    char vk[OTA_NOTE_VKEY_SIZE];
    char logk[OTA_NOTE_VKEY_SIZE];
    char arg[512];

    (void)state;
    vkey_of(vk, "w.test", OTA_NOTE_TYPE_COSIG_V1, 1);
    vkey_of(logk, "log.test", OTA_NOTE_TYPE_ED25519, 2);
    snprintf(arg, sizeof(arg), "w1=%s@https://w1.example", vk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), 0);
    assert_string_equal(w.name, "w1");
    assert_string_equal(w.vkey, vk);
    assert_string_equal(w.url, "https://w1.example");
    /* Malformed, reserved names, a log key instead of a witness key. */
    snprintf(arg, sizeof(arg), "%s@https://w1.example", vk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), OTA_ERR_INVALID_ARG);
    snprintf(arg, sizeof(arg), "w1=%s@", vk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), OTA_ERR_INVALID_ARG);
    snprintf(arg, sizeof(arg), "none=%s@http://x", vk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), OTA_ERR_INVALID_ARG);
    snprintf(arg, sizeof(arg), "witnesses=%s@http://x", vk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), OTA_ERR_INVALID_ARG);
    snprintf(arg, sizeof(arg), "w1=%s@http://x", logk);
    assert_int_equal(ota_ledger_witness_parse(&w, arg, &det), OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "cosignature/v1"));
}

static void test_json_and_rotate(void **state)
{
    struct ota_ledger_witness ws[3];
    struct ota_detail det = {{0}};
    struct ota_tlog_policy *p = NULL;
    char logk[OTA_NOTE_VKEY_SIZE];
    json_t *obj = NULL;
    json_t *sp;
    const char *rm[1] = {"w0"};

    (void)state;
    vkey_of(logk, "log.test", OTA_NOTE_TYPE_ED25519, 2);
    for (int i = 0; i < 3; i++) {
        char name[16];

        memset(&ws[i], 0, sizeof(ws[i]));
        snprintf(ws[i].name, sizeof(ws[i].name), "w%d", i);
        snprintf(name, sizeof(name), "w%d.test", i);
        vkey_of(ws[i].vkey, name, OTA_NOTE_TYPE_COSIG_V1, (uint8_t)(10 + i));
        snprintf(ws[i].url, sizeof(ws[i].url), "http://w%d", i);
    }
    assert_int_equal(ota_ledger_json(&obj, "log.test", logk, ws, 2, 4, 86400, &det),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_json(&obj, "log.test", logk, ws, 2, 0, 86400, &det), 0);
    assert_int_equal(ota_tlog_policy_from_ledger(&p, obj, &det), 0);
    assert_int_equal(p->nwitnesses, 2);
    ota_tlog_policy_free(p);
    /* No witness: quorum none. */
    sp = json_object();
    assert_int_equal(json_object_set_new(sp, "x-otachain-ledger", obj), 0);
    /* Rotation: w0 out, w2 in, quorum kept (all). */
    assert_int_equal(ota_ledger_rotate_json(sp, &ws[2], 1, rm, 1, NULL, &det), 0);
    assert_int_equal(
        ota_tlog_policy_from_ledger(&p, json_object_get(sp, "x-otachain-ledger"), &det), 0);
    assert_int_equal(p->nwitnesses, 2);
    assert_string_equal(p->witnesses[0].name, "w1");
    assert_string_equal(p->witnesses[1].name, "w2");
    ota_tlog_policy_free(p);
    /* Refusals: unknown name, a name twice, a quorum beyond the set. */
    rm[0] = "w9";
    assert_int_equal(ota_ledger_rotate_json(sp, NULL, 0, rm, 1, NULL, &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_rotate_json(sp, &ws[1], 1, NULL, 0, NULL, &det),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_rotate_json(sp, NULL, 0, NULL, 0, "3", &det), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_rotate_json(sp, NULL, 0, NULL, 0, "1", &det), 0);
    json_object_del(sp, "x-otachain-ledger");
    assert_int_equal(ota_ledger_rotate_json(sp, NULL, 0, NULL, 0, "1", &det), OTA_ERR_NOT_FOUND);
    json_decref(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_witness_parse),
        cmocka_unit_test(test_json_and_rotate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
