/* Unit tests for cert.c: roles told apart by policy OID and extended key
 * usage (never by name), ids, serials, validity. The certificates are
 * built here with OpenSSL directly, so every malformed variant exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "otachain/cert.h"

static EVP_PKEY *g_key;

static int setup(void **state)
{
    (void)state;
    g_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return g_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_key);
    return 0;
}

static void add_policies(X509 *x, const char *const *oids, size_t n)
{
    CERTIFICATEPOLICIES *pols = CERTIFICATEPOLICIES_new();

    for (size_t i = 0; i < n; i++) {
        POLICYINFO *pi = POLICYINFO_new();
        ASN1_OBJECT_free(pi->policyid);
        pi->policyid = OBJ_txt2obj(oids[i], 1);
        assert_non_null(pi->policyid);
        assert_true(sk_POLICYINFO_push(pols, pi) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_certificate_policies, pols, 0, 0), 1);
    CERTIFICATEPOLICIES_free(pols);
}

/* A self-signed leaf with the given CNs (NULL-terminated list), policy
 * OIDs and extended key usage ("clientAuth", "serverAuth", or NULL). */
static X509 *make(const char *const *cns, const char *const *oids, size_t noids, const char *eku,
                  long serial)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    X509V3_CTX ctx;

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    for (size_t i = 0; cns != NULL && cns[i] != NULL; i++)
        assert_int_equal(X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8,
                                                    (const unsigned char *)cns[i], -1, -1, 0),
                         1);
    X509_set_subject_name(x, nm);
    X509_set_issuer_name(x, nm);
    X509_NAME_free(nm);
    ASN1_TIME_set(X509_getm_notBefore(x), 1000000000);
    ASN1_TIME_set(X509_getm_notAfter(x), 2000000000);
    X509_set_pubkey(x, g_key);
    if (noids > 0)
        add_policies(x, oids, noids);
    if (eku != NULL) {
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, NID_ext_key_usage, eku);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, g_key, EVP_sha256()) > 0);
    return x;
}

static const char *const DEV[] = {OTA_CERT_OID_DEVICE};
static const char *const ADM[] = {OTA_CERT_OID_ADMIN};
static const char *const SRV[] = {OTA_CERT_OID_SERVER};
static const char *const CN1[] = {"cam-0001", NULL};

static void test_id_grammar(void **state)
{
    char s65[66];

    (void)state;
    assert_true(ota_cert_id_valid("cam-0001", 8));
    assert_true(ota_cert_id_valid("A.b_c-9", 7));
    assert_false(ota_cert_id_valid("", 0));
    assert_false(ota_cert_id_valid("cam 1", 5));
    assert_false(ota_cert_id_valid("cam/1", 5));
    assert_false(ota_cert_id_valid("caf\xc3\xa9", 5));
    assert_false(ota_cert_id_valid("a\0b", 3));
    memset(s65, 'a', sizeof(s65));
    assert_true(ota_cert_id_valid(s65, 64));
    assert_false(ota_cert_id_valid(s65, 65));
}

static void test_role_names(void **state)
{
    enum ota_cert_role r;

    (void)state;
    assert_int_equal(ota_cert_role_parse(&r, "device"), 0);
    assert_int_equal(r, OTA_CERT_ROLE_DEVICE);
    assert_int_equal(ota_cert_role_parse(&r, "admin"), 0);
    assert_int_equal(r, OTA_CERT_ROLE_ADMIN);
    assert_int_equal(ota_cert_role_parse(&r, "server"), 0);
    assert_int_equal(r, OTA_CERT_ROLE_SERVER);
    assert_int_equal(ota_cert_role_parse(&r, "Device"), OTA_ERR_INVALID_ARG);
    assert_string_equal(ota_cert_role_name(OTA_CERT_ROLE_ADMIN), "admin");
    assert_string_equal(ota_cert_role_name(OTA_CERT_ROLE_NONE), "none");
}

static void test_roles(void **state)
{
    enum ota_cert_role r;
    struct ota_detail det;
    X509 *x;

    (void)state;
    x = make(CN1, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), 0);
    assert_int_equal(r, OTA_CERT_ROLE_DEVICE);
    X509_free(x);
    x = make(CN1, ADM, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), 0);
    assert_int_equal(r, OTA_CERT_ROLE_ADMIN);
    X509_free(x);
    x = make(CN1, SRV, 1, "serverAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), 0);
    assert_int_equal(r, OTA_CERT_ROLE_SERVER);
    X509_free(x);
}

static void test_roles_refused(void **state)
{
    static const char *const TWO[] = {OTA_CERT_OID_DEVICE, OTA_CERT_OID_ADMIN};
    static const char *const OTHER[] = {"1.2.3.4"};
    static const char *const MIXED[] = {"1.2.3.4", OTA_CERT_OID_DEVICE};
    enum ota_cert_role r;
    struct ota_detail det;
    X509 *x;

    (void)state;
    /* A name that looks like a role proves nothing. */
    static const char *const ADMIN_NAME[] = {"admin", NULL};
    x = make(ADMIN_NAME, NULL, 0, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_int_equal(r, OTA_CERT_ROLE_NONE);
    assert_non_null(strstr(det.msg, "no certificatePolicies"));
    X509_free(x);
    x = make(CN1, OTHER, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_non_null(strstr(det.msg, "no otachain role"));
    X509_free(x);
    x = make(CN1, TWO, 2, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_non_null(strstr(det.msg, "more than one"));
    X509_free(x);
    /* The role needs its key usage: a device policy on a server key. */
    x = make(CN1, DEV, 1, "serverAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_non_null(strstr(det.msg, "clientAuth"));
    X509_free(x);
    x = make(CN1, SRV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_non_null(strstr(det.msg, "serverAuth"));
    X509_free(x);
    x = make(CN1, DEV, 1, NULL, 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), OTA_ERR_CERT_ROLE);
    assert_non_null(strstr(det.msg, "no extended key usage"));
    X509_free(x);
    /* Other policies beside ours are fine. */
    x = make(CN1, MIXED, 2, "clientAuth", 1);
    assert_int_equal(ota_cert_role_of(&r, x, &det), 0);
    assert_int_equal(r, OTA_CERT_ROLE_DEVICE);
    X509_free(x);
    assert_int_equal(ota_cert_role_of(&r, NULL, &det), OTA_ERR_INVALID_ARG);
}

static void test_ids(void **state)
{
    static const char *const TWO[] = {"a", "b", NULL};
    static const char *const BAD[] = {"cam 1", NULL};
    char id[OTA_CERT_ID_MAX + 1];
    struct ota_detail det;
    X509 *x;

    (void)state;
    x = make(CN1, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_id(id, x, &det), 0);
    assert_string_equal(id, "cam-0001");
    X509_free(x);
    x = make(NULL, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_id(id, x, &det), OTA_ERR_FORMAT);
    assert_string_equal(id, "");
    assert_non_null(strstr(det.msg, "no common name"));
    X509_free(x);
    x = make(TWO, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_id(id, x, &det), OTA_ERR_FORMAT);
    assert_non_null(strstr(det.msg, "more than one"));
    X509_free(x);
    x = make(BAD, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_id(id, x, &det), OTA_ERR_FORMAT);
    X509_free(x);
}

static void test_serials(void **state)
{
    char hex[OTA_CERT_SERIAL_HEX_MAX + 1];
    char big[80];
    X509 *x;

    (void)state;
    x = make(CN1, DEV, 1, "clientAuth", 0x0a1b);
    assert_int_equal(ota_cert_serial_hex(hex, x), 0);
    assert_string_equal(hex, "a1b");
    X509_free(x);
    x = make(CN1, DEV, 1, "clientAuth", 0);
    assert_int_equal(ota_cert_serial_hex(hex, x), 0);
    assert_string_equal(hex, "0");
    X509_free(x);
    x = make(CN1, DEV, 1, "clientAuth", -5);
    assert_int_equal(ota_cert_serial_hex(hex, x), OTA_ERR_FORMAT);
    X509_free(x);
    assert_int_equal(ota_cert_serial_normalize(hex, "0x00A1B"), 0);
    assert_string_equal(hex, "a1b");
    assert_int_equal(ota_cert_serial_normalize(hex, "000"), 0);
    assert_string_equal(hex, "0");
    assert_int_equal(ota_cert_serial_normalize(hex, "12g"), OTA_ERR_FORMAT);
    assert_int_equal(ota_cert_serial_normalize(hex, ""), OTA_ERR_FORMAT);
    assert_int_equal(ota_cert_serial_normalize(hex, "0x"), OTA_ERR_FORMAT);
    memset(big, 'f', 65);
    big[65] = '\0';
    assert_int_equal(ota_cert_serial_normalize(hex, big), OTA_ERR_FORMAT);
    big[64] = '\0';
    assert_int_equal(ota_cert_serial_normalize(hex, big), 0);
}

static void test_validity(void **state)
{
    int64_t a = 0;
    int64_t b = 0;
    X509 *x;

    (void)state;
    x = make(CN1, DEV, 1, "clientAuth", 1);
    assert_int_equal(ota_cert_validity(&a, &b, x), 0);
    assert_int_equal(a, 1000000000);
    assert_int_equal(b, 2000000000);
    X509_free(x);
    assert_int_equal(ota_cert_validity(&a, &b, NULL), OTA_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_grammar), cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_roles),      cmocka_unit_test(test_roles_refused),
        cmocka_unit_test(test_ids),        cmocka_unit_test(test_serials),
        cmocka_unit_test(test_validity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
