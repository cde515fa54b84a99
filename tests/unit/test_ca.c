/* Unit tests for ca.c: the CA directory (two separate CAs), issuing each
 * role, CSRs made elsewhere, revocation records, CRLs; every refusal with
 * its error. Chains are checked with OpenSSL's own path validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/ca.h"
#include "otachain/fsutil.h"
#include "testfs.h"

#define NOW ((int64_t)1750000000)

static char g_dir[256];
static char g_ca[512];

static int setup(void **state)
{
    struct ota_detail det;

    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/ota-test-ca-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_ca, sizeof(g_ca), "%s/ca", g_dir);
    return ota_ca_dir_init(g_ca, "acme", OTA_CA_KEY_P256, NOW, 10 * 365 * 86400, &det);
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(g_dir);
    return 0;
}

static X509 *pem_cert(const struct ota_buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

    BIO_free(bio);
    assert_non_null(x);
    return x;
}

static X509 *file_cert(const char *name)
{
    char path[PATH_MAX];
    struct ota_buf b;
    uint8_t *data;
    size_t len;
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s", g_ca, name);
    assert_int_equal(ota_fs_read(&data, &len, path, 1 << 16), 0);
    b.data = data;
    b.len = len;
    x = pem_cert(&b);
    free(data);
    return x;
}

/* OpenSSL's path validation of leaf against one trusted CA file, at t. */
static int chain_ok(X509 *leaf, const char *ca_name, int64_t t)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *ca = file_cert(ca_name);
    int ok;

    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)t);
    ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    return ok;
}

static X509 *issue(enum ota_cert_role role, const char *cn,
                   char serial[OTA_CERT_SERIAL_HEX_MAX + 1])
{
    static const char *const ips[] = {"127.0.0.1", "::1"};
    static const char *const dns[] = {"updates.example.com"};
    struct ota_cert_request req = {role, cn, NULL, 0, NULL, 0, NOW, 365 * 86400};
    struct ota_buf cert, key;
    struct ota_detail det;
    X509 *x;

    if (role == OTA_CERT_ROLE_SERVER) {
        req.dns = dns;
        req.ndns = 1;
        req.ips = ips;
        req.nips = 2;
    }
    ota_buf_init(&cert, 1 << 16);
    ota_buf_init(&key, 1 << 16);
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, OTA_CA_KEY_P256, &req, &det),
                     0);
    assert_non_null(strstr((const char *)key.data, "BEGIN PRIVATE KEY"));
    x = pem_cert(&cert);
    ota_buf_free(&cert);
    ota_buf_free(&key);
    return x;
}

static void test_init_layout(void **state)
{
    struct ota_detail det;
    char path[PATH_MAX];
    struct stat st;

    (void)state;
    snprintf(path, sizeof(path), "%s/private/device-ca.key", g_ca);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/private", g_ca);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Two CAs, and they are different. */
    X509 *s = file_cert("server-ca.crt");
    X509 *d = file_cert("device-ca.crt");
    assert_int_not_equal(X509_cmp(s, d), 0);
    assert_int_equal(X509_check_ca(s) > 0, 1);
    X509_free(s);
    X509_free(d);
    /* Not over an existing CA. */
    assert_int_equal(ota_ca_dir_init(g_ca, "acme", OTA_CA_KEY_P256, NOW, 86400, &det),
                     OTA_ERR_EXISTS);
    snprintf(path, sizeof(path), "%s/bad", g_dir);
    assert_int_equal(ota_ca_dir_init(path, "a b", OTA_CA_KEY_P256, NOW, 86400, &det),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ca_dir_init(path, "acme", OTA_CA_KEY_P256, NOW, 0, &det),
                     OTA_ERR_INVALID_ARG);
}

static void test_issue_roles_and_chains(void **state)
{
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    char id[OTA_CERT_ID_MAX + 1];
    enum ota_cert_role role;
    struct ota_detail det;
    int64_t nb, na;
    X509 *x;

    (void)state;
    x = issue(OTA_CERT_ROLE_DEVICE, "cam-0001", serial);
    assert_int_equal(strlen(serial), 32);
    assert_int_equal(ota_cert_role_of(&role, x, &det), 0);
    assert_int_equal(role, OTA_CERT_ROLE_DEVICE);
    assert_int_equal(ota_cert_id(id, x, &det), 0);
    assert_string_equal(id, "cam-0001");
    assert_int_equal(ota_cert_validity(&nb, &na, x), 0);
    assert_int_equal(nb, NOW - OTA_CA_BACKDATE);
    assert_int_equal(na, NOW + 365 * 86400);
    /* Device certificates chain to the device CA only. */
    assert_int_equal(chain_ok(x, "device-ca.crt", NOW), 1);
    assert_int_equal(chain_ok(x, "server-ca.crt", NOW), 0);
    assert_int_equal(chain_ok(x, "device-ca.crt", NOW + 366 * 86400), 0);
    X509_free(x);

    x = issue(OTA_CERT_ROLE_ADMIN, "alice", serial);
    assert_int_equal(ota_cert_role_of(&role, x, &det), 0);
    assert_int_equal(role, OTA_CERT_ROLE_ADMIN);
    assert_int_equal(chain_ok(x, "server-ca.crt", NOW), 1);
    assert_int_equal(chain_ok(x, "device-ca.crt", NOW), 0);
    X509_free(x);

    x = issue(OTA_CERT_ROLE_SERVER, "srv", serial);
    assert_int_equal(ota_cert_role_of(&role, x, &det), 0);
    assert_int_equal(role, OTA_CERT_ROLE_SERVER);
    assert_int_equal(chain_ok(x, "server-ca.crt", NOW), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_host(x, "updates.example.com", 0, 0, NULL), 1);
    X509_free(x);
}

static void test_issue_refused(void **state)
{
    static const char *const bad_ip[] = {"300.1.1.1"};
    static const char *const bad_dns[] = {"a,IP:1.2.3.4"};
    static const char *const ok_dns[] = {"x.example"};
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_cert_request req = {OTA_CERT_ROLE_DEVICE, "bad id", NULL, 0, NULL, 0, NOW, 86400};
    struct ota_buf cert, key;
    struct ota_detail det;

    (void)state;
    ota_buf_init(&cert, 1 << 16);
    ota_buf_init(&key, 1 << 16);
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "not an id"));
    req.cn = "srv";
    req.role = OTA_CERT_ROLE_SERVER;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    assert_non_null(strstr(det.msg, "needs at least one"));
    req.ips = bad_ip;
    req.nips = 1;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    req.nips = 0;
    req.dns = bad_dns;
    req.ndns = 1;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    /* Names only on server certificates. */
    req.role = OTA_CERT_ROLE_DEVICE;
    req.dns = ok_dns;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    req.ndns = 0;
    req.lifetime = 0;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    req.lifetime = 86400;
    req.role = OTA_CERT_ROLE_NONE;
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    /* Without a public key, a key buffer is needed. */
    req.role = OTA_CERT_ROLE_DEVICE;
    assert_int_equal(ota_ca_dir_issue(&cert, NULL, serial, g_ca, NULL, 0, &req, &det),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(cert.len, 0);
    assert_string_equal(serial, "");
    /* Not a CA directory. */
    assert_int_equal(ota_ca_dir_issue(&cert, &key, serial, g_dir, NULL, 0, &req, &det),
                     OTA_ERR_NOT_FOUND);
    ota_buf_free(&cert);
    ota_buf_free(&key);
}

static struct ota_buf make_csr(const char *cn, EVP_PKEY **keyp)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    BIO *bio = BIO_new(BIO_s_mem());
    struct ota_buf out;
    char *p;
    long n;

    X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                               0);
    X509_REQ_set_subject_name(req, nm);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    PEM_write_bio_X509_REQ(bio, req);
    n = BIO_get_mem_data(bio, &p);
    ota_buf_init(&out, 1 << 16);
    assert_int_equal(ota_buf_append(&out, p, (size_t)n), 0);
    BIO_free(bio);
    X509_NAME_free(nm);
    X509_REQ_free(req);
    if (keyp != NULL)
        *keyp = key;
    else
        EVP_PKEY_free(key);
    return out;
}

static void test_csr(void **state)
{
    char cn[OTA_CERT_ID_MAX + 1];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_detail det;
    EVP_PKEY *devkey = NULL;
    EVP_PKEY *pub = NULL;
    struct ota_buf csr = make_csr("cam-0042", &devkey);
    struct ota_buf cert;

    (void)state;
    assert_int_equal(ota_ca_csr_parse(&pub, cn, csr.data, csr.len, &det), 0);
    assert_string_equal(cn, "cam-0042");
    /* The certificate carries the device's own key, which never left it. */
    struct ota_cert_request req = {OTA_CERT_ROLE_DEVICE, cn, NULL, 0, NULL, 0, NOW, 86400};
    ota_buf_init(&cert, 1 << 16);
    assert_int_equal(ota_ca_dir_issue(&cert, NULL, serial, g_ca, pub, 0, &req, &det), 0);
    X509 *x = pem_cert(&cert);
    assert_int_equal(X509_check_private_key(x, devkey), 1);
    assert_int_equal(chain_ok(x, "device-ca.crt", NOW), 1);
    X509_free(x);
    EVP_PKEY_free(pub);
    ota_buf_free(&cert);

    /* A flipped signature byte: the request does not verify. The PEM is
     * rebuilt from DER so the flip hits the signature, not base64. */
    BIO *bio = BIO_new_mem_buf(csr.data, (int)csr.len);
    X509_REQ *r = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    unsigned char *der = NULL;
    int dlen = i2d_X509_REQ(r, &der);
    der[dlen - 3] ^= 0x01;
    const unsigned char *pp = der;
    X509_REQ *r2 = d2i_X509_REQ(NULL, &pp, dlen);
    bio = BIO_new(BIO_s_mem());
    if (r2 != NULL) {
        PEM_write_bio_X509_REQ(bio, r2);
        char *p;
        long n = BIO_get_mem_data(bio, &p);
        int rc = ota_ca_csr_parse(&pub, cn, p, (size_t)n, &det);
        assert_true(rc == OTA_ERR_BAD_SIGNATURE || rc == OTA_ERR_FORMAT);
        assert_null(pub);
    }
    BIO_free(bio);
    X509_REQ_free(r2);
    X509_REQ_free(r);
    OPENSSL_free(der);

    assert_int_equal(ota_ca_csr_parse(&pub, cn, "garbage", 7, &det), OTA_ERR_FORMAT);
    assert_int_equal(ota_ca_csr_parse(&pub, cn, csr.data, OTA_CA_PEM_MAX + 1, &det),
                     OTA_ERR_TOO_LARGE);
    ota_buf_free(&csr);
    csr = make_csr("not an id", NULL);
    assert_int_equal(ota_ca_csr_parse(&pub, cn, csr.data, csr.len, &det), OTA_ERR_FORMAT);
    assert_null(pub);
    ota_buf_free(&csr);
    EVP_PKEY_free(devkey);
}

struct seen {
    size_t n;
    size_t revoked;
    char last[OTA_CERT_SERIAL_HEX_MAX + 1];
    bool sorted;
};

static int count(void *arg, const struct ota_ca_record *rec)
{
    struct seen *s = arg;

    if (s->n > 0 && strcmp(s->last, rec->serial) >= 0)
        s->sorted = false;
    memcpy(s->last, rec->serial, sizeof(s->last));
    s->n++;
    if (rec->revoked) {
        s->revoked++;
        assert_int_equal(rec->revoked_at, NOW + 5);
        assert_string_equal(rec->reason, "lost");
    }
    return 0;
}

static void test_revoke_list_crl(void **state)
{
    char serial_d[OTA_CERT_SERIAL_HEX_MAX + 1];
    char serial_a[OTA_CERT_SERIAL_HEX_MAX + 1];
    char serial_ok[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct seen s = {0, 0, "", true};
    struct ota_detail det;
    struct ota_buf crl;
    X509 *d, *a, *ok;

    (void)state;
    d = issue(OTA_CERT_ROLE_DEVICE, "cam-0100", serial_d);
    a = issue(OTA_CERT_ROLE_ADMIN, "bob", serial_a);
    ok = issue(OTA_CERT_ROLE_DEVICE, "cam-0101", serial_ok);
    assert_int_equal(ota_ca_dir_revoke(g_ca, serial_d, "lost", NOW + 5, &det), 0);
    assert_int_equal(ota_ca_dir_revoke(g_ca, serial_a, "lost", NOW + 5, &det), 0);
    assert_int_equal(ota_ca_dir_revoke(g_ca, serial_d, "again", NOW + 6, &det), OTA_ERR_EXISTS);
    assert_int_equal(ota_ca_dir_revoke(g_ca, "abc", "x", NOW, &det), OTA_ERR_NOT_FOUND);
    assert_int_equal(ota_ca_dir_revoke(g_ca, serial_ok, "bad\nreason", NOW, &det),
                     OTA_ERR_INVALID_ARG);
    assert_int_equal(ota_ca_dir_list(g_ca, count, &s, &det), 0);
    assert_true(s.n >= 3);
    assert_int_equal(s.revoked, 2);
    assert_true(s.sorted);

    /* The device CA's CRL names the device certificate only, and OpenSSL
     * refuses it with the CRL while the other device passes. */
    ota_buf_init(&crl, 1 << 20);
    assert_int_equal(ota_ca_dir_crl(&crl, g_ca, OTA_CERT_ROLE_DEVICE, NOW + 10, 86400, &det), 0);
    BIO *bio = BIO_new_mem_buf(crl.data, (int)crl.len);
    X509_CRL *c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(c);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)), 1);
    X509 *ca = file_cert("device-ca.crt");
    assert_int_equal(X509_CRL_verify(c, X509_get0_pubkey(ca)), 1);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_add_crl(store, c);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, d, NULL);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)(NOW + 20));
    assert_int_equal(X509_verify_cert(ctx), 0);
    assert_int_equal(X509_STORE_CTX_get_error(ctx), X509_V_ERR_CERT_REVOKED);
    X509_STORE_CTX_cleanup(ctx);
    X509_STORE_CTX_init(ctx, store, ok, NULL);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)(NOW + 20));
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_CRL_free(c);
    ota_buf_free(&crl);

    ota_buf_init(&crl, 1 << 20);
    assert_int_equal(ota_ca_dir_crl(&crl, g_ca, OTA_CERT_ROLE_SERVER, NOW + 10, 86400, &det), 0);
    bio = BIO_new_mem_buf(crl.data, (int)crl.len);
    c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)), 1);
    X509_CRL_free(c);
    ota_buf_free(&crl);
    X509_free(d);
    X509_free(a);
    X509_free(ok);
}

static void test_load_refusals(void **state)
{
    char cert[PATH_MAX], key[PATH_MAX], other[PATH_MAX];
    struct ota_detail det;
    struct ota_ca *ca = NULL;

    (void)state;
    snprintf(cert, sizeof(cert), "%s/device-ca.crt", g_ca);
    snprintf(key, sizeof(key), "%s/private/device-ca.key", g_ca);
    snprintf(other, sizeof(other), "%s/private/server-ca.key", g_ca);
    assert_int_equal(ota_ca_load(&ca, cert, key, &det), 0);
    ota_ca_free(ca);
    /* The other CA's key does not belong to this certificate. */
    assert_int_equal(ota_ca_load(&ca, cert, other, &det), OTA_ERR_KEY_FORMAT);
    assert_null(ca);
    /* A key readable by others is refused. */
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(ota_ca_load(&ca, cert, key, &det), OTA_ERR_PERMISSION);
    assert_int_equal(chmod(key, 0600), 0);
    /* A leaf is not a CA. */
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    X509 *x = issue(OTA_CERT_ROLE_DEVICE, "cam-0200", serial);
    X509_free(x);
    char leaf[PATH_MAX];
    snprintf(leaf, sizeof(leaf), "%s/issued/%s.crt", g_ca, serial);
    assert_int_equal(ota_ca_load(&ca, leaf, key, &det), OTA_ERR_KEY_FORMAT);
    /* Missing files. */
    assert_int_equal(ota_ca_load(&ca, "/nonexistent", key, &det), OTA_ERR_NOT_FOUND);
}

static void test_ed25519_and_save(void **state)
{
    char dir[PATH_MAX], c[PATH_MAX], k[PATH_MAX];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    struct ota_cert_request req = {OTA_CERT_ROLE_DEVICE, "mcu-1", NULL, 0, NULL, 0, NOW, 86400};
    struct ota_buf cert, key;
    struct ota_detail det;
    struct stat st;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/ed", g_dir);
    assert_int_equal(ota_ca_dir_init(dir, "ed", OTA_CA_KEY_ED25519, NOW, 86400, &det), 0);
    ota_buf_init(&cert, 1 << 16);
    ota_buf_init(&key, 1 << 16);
    assert_int_equal(
        ota_ca_dir_issue(&cert, &key, serial, dir, NULL, OTA_CA_KEY_ED25519, &req, &det), 0);
    X509 *x = pem_cert(&cert);
    assert_int_equal(X509_get_signature_nid(x), NID_ED25519);
    X509_free(x);
    snprintf(c, sizeof(c), "%s/dev.crt", g_dir);
    snprintf(k, sizeof(k), "%s/dev.key", g_dir);
    assert_int_equal(ota_ca_save(c, &cert, k, &key, &det), 0);
    assert_int_equal(stat(k, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never over an existing file, and nothing half-written. */
    unlink(c);
    assert_int_equal(ota_ca_save(c, &cert, k, &key, &det), OTA_ERR_EXISTS);
    assert_int_not_equal(stat(c, &st), 0);
    ota_buf_free(&cert);
    ota_buf_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_layout),      cmocka_unit_test(test_issue_roles_and_chains),
        cmocka_unit_test(test_issue_refused),    cmocka_unit_test(test_csr),
        cmocka_unit_test(test_revoke_list_crl),  cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_ed25519_and_save),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
