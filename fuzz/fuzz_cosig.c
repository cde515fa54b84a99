/* libFuzzer harness for cosignature verification: a cosigned checkpoint
 * note checked against a fixed policy at a fixed time
 * (ota_tlog_policy_verify, hence ota_note_parse, ota_checkpoint_parse,
 * ota_note_verify and ota_cosig_verify), and ota_cosig_verify on raw
 * bytes (the first 72 as the signature, the rest as the body).
 *
 * Keys (the seed corpus is signed with them): log "example.com/log" with
 * seed 32 x 0x01; witnesses "wN.example" (N = 1..4) with seed 32 x 0x1N;
 * policy: 3 of the 4 witnesses; time 1700000000, window 3600 s back and
 * 60 s ahead. Invariants: a success has the quorum of counted witnesses,
 * each cosigned within the window; a failure leaves the result zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/cosig.h"
#include "otachain/err.h"
#include "otachain/note.h"
#include "otachain/note_sign.h"
#include "otachain/tlog_policy.h"

#define NOW     INT64_C(1700000000)
#define MAX_AGE INT64_C(3600)
#define SKEW    INT64_C(60)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ota_note_verifier key_of(const char *name, uint8_t type, uint8_t fill)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    uint8_t seed[32];

    memset(seed, fill, sizeof(seed));
    if (ota_note_signer_from_seed(&s, name, strlen(name), type, seed) != 0)
        abort();
    ota_note_signer_verifier(&v, s);
    ota_note_signer_free(s);
    return v;
}

static struct ota_tlog_policy *make_policy(void)
{
    char text[2048];
    char vk[5][OTA_NOTE_VKEY_SIZE];
    struct ota_note_verifier v;
    struct ota_tlog_policy *p = NULL;

    v = key_of("example.com/log", 0x01, 0x01);
    ota_note_verifier_format(vk[0], &v);
    for (int i = 1; i <= 4; i++) {
        char name[16];

        snprintf(name, sizeof(name), "w%d.example", i);
        v = key_of(name, 0x04, (uint8_t)(0x10 + i));
        ota_note_verifier_format(vk[i], &v);
    }
    snprintf(text, sizeof(text),
             "log %s\nwitness w1 %s\nwitness w2 %s\nwitness w3 %s\nwitness w4 %s\n"
             "group g 3 w1 w2 w3 w4\nquorum g\n",
             vk[0], vk[1], vk[2], vk[3], vk[4]);
    if (ota_tlog_policy_parse(&p, text, strlen(text), NULL) != 0)
        abort();
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_tlog_policy *policy; /* built once, kept for the run */
    static struct ota_note_verifier w1;
    static const struct ota_tlog_policy_result zero;
    struct ota_tlog_policy_result res;
    struct ota_note *n = NULL;
    struct ota_detail det;
    uint64_t t = 1;
    int rc;

    if (policy == NULL) {
        policy = make_policy();
        w1 = policy->witnesses[0].key;
    }
    /* Raw cosignature over the rest of the input. */
    if (size >= OTA_COSIG_LEN) {
        rc = ota_cosig_verify(&t, (const char *)data + OTA_COSIG_LEN, size - OTA_COSIG_LEN, w1.pub,
                              data, OTA_COSIG_LEN);
        if ((rc == 0 && t > OTA_COSIG_MAX_TIME) || (rc != 0 && t != 0))
            abort();
    }
    if (ota_note_parse(&n, data, size, &det) != 0)
        return 0;
    rc = ota_tlog_policy_verify(&res, n, policy, NOW, MAX_AGE, SKEW, &det);
    if (rc == 0) {
        bool counted[OTA_TLOG_POLICY_MAX_WITNESSES] = {false};

        if (res.ncounted < 3 || res.nwitnesses != 4)
            abort();
        for (size_t i = 0; i < 4; i++) {
            const struct ota_tlog_policy_witness_state *w = &res.witnesses[i];

            counted[i] = w->counted;
            if (w->counted &&
                (!w->cosigned || (int64_t)w->time < NOW - MAX_AGE || (int64_t)w->time > NOW + SKEW))
                abort();
        }
        if (!ota_tlog_policy_quorum_met(policy, counted))
            abort();
    } else if (memcmp(&res, &zero, sizeof(res)) != 0) {
        abort();
    }
    ota_note_free(n);
    return 0;
}
