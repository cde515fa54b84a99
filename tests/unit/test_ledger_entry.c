/* Tests of the ledger entry record (docs/formats/ledger.md). The expected
 * leaf hash was computed independently (Python hashlib). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "otachain/ledger_entry.h"

#define REC_TARGETS                                                                                \
    "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 219603\nsha256 "                    \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
#define LEAF_TARGETS "7f1403145b62d611fe352bec65332853ae5065b2d12bd6d1d6ad5573a5ee9b7b"

static void assert_entry_equal(const struct ota_ledger_entry *a, const struct ota_ledger_entry *b)
{
    assert_int_equal(a->role, b->role);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->length, b->length);
    assert_memory_equal(a->sha256, b->sha256, OTA_SHA256_LEN);
}

static struct ota_ledger_entry abc_entry(void)
{
    struct ota_ledger_entry e = {.role = OTA_TUF_TARGETS, .version = 7, .length = 219603};
    assert_int_equal(
        ota_hex_decode(e.sha256, OTA_SHA256_LEN,
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        0);
    return e;
}

static void test_format_known_answer(void **state)
{
    (void)state;
    struct ota_ledger_entry e = abc_entry();
    uint8_t out[OTA_LEDGER_ENTRY_MAX];
    size_t n = 0;
    assert_int_equal(ota_ledger_entry_format(out, &n, &e), 0);
    assert_int_equal(n, strlen(REC_TARGETS));
    assert_memory_equal(out, REC_TARGETS, n);

    uint8_t leaf[OTA_SHA256_LEN], want[OTA_SHA256_LEN];
    assert_int_equal(ota_ledger_entry_leaf(leaf, &e), 0);
    assert_int_equal(ota_hex_decode(want, OTA_SHA256_LEN, LEAF_TARGETS), 0);
    assert_memory_equal(leaf, want, OTA_SHA256_LEN);
}

static void test_of_file(void **state)
{
    (void)state;
    struct ota_ledger_entry e;
    assert_int_equal(ota_ledger_entry_of_file(&e, OTA_TUF_SNAPSHOT, 3, "abc", 3), 0);
    assert_int_equal(e.role, OTA_TUF_SNAPSHOT);
    assert_int_equal(e.version, 3);
    assert_int_equal(e.length, 3);
    struct ota_ledger_entry k = abc_entry();
    assert_memory_equal(e.sha256, k.sha256, OTA_SHA256_LEN);
    assert_int_equal(ota_ledger_entry_of_file(&e, OTA_TUF_TIMESTAMP, 3, "abc", 3),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_entry_of_file(&e, OTA_TUF_ROOT, 0, "abc", 3), OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ledger_entry_of_file(&e, OTA_TUF_ROOT, 1, "", 0), 0);
    assert_int_equal(e.length, 0);
}

static void test_round_trip_extremes(void **state)
{
    (void)state;
    const enum ota_tuf_role roles[] = {OTA_TUF_ROOT, OTA_TUF_TARGETS, OTA_TUF_SNAPSHOT};
    for (size_t i = 0; i < 3; i++) {
        struct ota_ledger_entry e = {
            .role = roles[i], .version = OTA_LEDGER_VERSION_MAX, .length = UINT64_MAX};
        memset(e.sha256, 0xab, sizeof(e.sha256));
        uint8_t out[OTA_LEDGER_ENTRY_MAX];
        size_t n;
        assert_int_equal(ota_ledger_entry_format(out, &n, &e), 0);
        struct ota_ledger_entry back;
        assert_int_equal(ota_ledger_entry_parse(&back, out, n, NULL), 0);
        assert_entry_equal(&back, &e);
    }
    struct ota_ledger_entry bad = {.role = OTA_TUF_ROOT, .version = OTA_LEDGER_VERSION_MAX + 1};
    uint8_t out[OTA_LEDGER_ENTRY_MAX];
    size_t n;
    assert_int_equal(ota_ledger_entry_format(out, &n, &bad), OTA_ERR_INVALID_ARG);
}

/* Each malformed variant of REC_TARGETS is refused, and out stays zeroed. */
static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "otachain-ledger-entry/v2\nrole targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole timestamp\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole Targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 07\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 0\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 9223372036854775808\nlength 1\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion -7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion  7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 18446744073709551616\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 219603\nsha256 "
        "BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a\n",
        "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "otachain-ledger-entry/v1\nrole targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n\n",
        "otachain-ledger-entry/v1\nrole targets\nlength 219603\nversion 7\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        "otachain-ledger-entry/v1\r\nrole targets\nversion 7\nlength 219603\nsha256 "
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ota_ledger_entry e;
        memset(&e, 0x5a, sizeof(e));
        struct ota_detail det = {{0}};
        int rc = ota_ledger_entry_parse(&e, bad[i], strlen(bad[i]), &det);
        if (rc != OTA_ERR_FORMAT)
            fail_msg("variant %zu: got %d, want OTA_ERR_FORMAT", i, rc);
        assert_non_null(strstr(det.msg, "ledger entry"));
        struct ota_ledger_entry zero;
        memset(&zero, 0, sizeof(zero));
        assert_entry_equal(&e, &zero);
    }
    char big[OTA_LEDGER_ENTRY_MAX + 1];
    memset(big, 'a', sizeof(big));
    struct ota_ledger_entry e;
    assert_int_equal(ota_ledger_entry_parse(&e, big, sizeof(big), NULL), OTA_ERR_TOO_LARGE);
}

static void test_parse_good(void **state)
{
    (void)state;
    struct ota_ledger_entry e, want = abc_entry();
    assert_int_equal(ota_ledger_entry_parse(&e, REC_TARGETS, strlen(REC_TARGETS), NULL), 0);
    assert_entry_equal(&e, &want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known_answer), cmocka_unit_test(test_of_file),
        cmocka_unit_test(test_round_trip_extremes), cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_good),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
