/* Issuing fleet certificates and the CA directory (ca.h). */
#include "fsutil_int.h"
#include "otachain/ca.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/cjson.h"
#include "otachain/crypto.h"
#include "otachain/fsutil.h"

#define CA_FORMAT      1
#define CA_JSON        "ca.json"
#define SERVER_CA      "server-ca"
#define DEVICE_CA      "device-ca"
#define REASON_MAX     256
#define REVOKED_MAX    1024
#define MAX_ISSUED_DIR 1000000

struct ota_ca {
    X509 *cert;
    EVP_PKEY *key;
};

/* ---- helpers ---- */

/* Appends the contents of a memory BIO to out. */
static int bio_to_buf(struct ota_buf *out, BIO *bio)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);

    if (n <= 0 || p == NULL)
        return OTA_ERR_CRYPTO;
    return ota_buf_append(out, p, (size_t)n);
}

static int ssl_fail(int rc)
{
    ERR_clear_error();
    return rc;
}

/* A fresh serial: 16 random bytes, first in 0x40..0x7f (positive, always
 * 32 hex digits). */
static ASN1_INTEGER *random_serial(char hex[OTA_CERT_SERIAL_HEX_MAX + 1])
{
    uint8_t b[16];
    BIGNUM *bn;
    ASN1_INTEGER *sn;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return NULL;
    b[0] = (uint8_t)((b[0] & 0x3f) | 0x40);
    ota_hex_encode(hex, b, sizeof(b));
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn == NULL)
        return NULL;
    sn = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return sn;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return OTA_ERR_CRYPTO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : OTA_ERR_CRYPTO;
}

/* certificatePolicies with the one policy OID of a role (nconf would
 * need a configuration database for this extension). */
static int add_policy(X509 *x, const char *oid)
{
    CERTIFICATEPOLICIES *pols = CERTIFICATEPOLICIES_new();
    POLICYINFO *pi = POLICYINFO_new();
    int rc = OTA_ERR_CRYPTO;

    if (pols == NULL || pi == NULL)
        goto out;
    ASN1_OBJECT_free(pi->policyid);
    pi->policyid = OBJ_txt2obj(oid, 1);
    if (pi->policyid == NULL || sk_POLICYINFO_push(pols, pi) <= 0)
        goto out;
    pi = NULL;
    if (X509_add1_ext_i2d(x, NID_certificate_policies, pols, 0, X509V3_ADD_DEFAULT) == 1)
        rc = 0;
out:
    POLICYINFO_free(pi);
    CERTIFICATEPOLICIES_free(pols);
    return rc;
}

static const EVP_MD *md_for(EVP_PKEY *key)
{
    return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

static int set_times(X509 *x, int64_t from, int64_t to)
{
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)from) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)to) == NULL)
        return OTA_ERR_CRYPTO;
    return 0;
}

static int set_cn(X509 *x, const char *cn, bool issuer_too)
{
    X509_NAME *nm = X509_NAME_new();
    int ok;

    if (nm == NULL)
        return OTA_ERR_NOMEM;
    ok = X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                    -1, -1, 0) == 1 &&
         X509_set_subject_name(x, nm) == 1 && (!issuer_too || X509_set_issuer_name(x, nm) == 1);
    X509_NAME_free(nm);
    return ok ? 0 : OTA_ERR_CRYPTO;
}

/* A DNS name for a subjectAltName: labels of [A-Za-z0-9-], dots between,
 * at most 253 bytes (no wildcard: fleet servers are named exactly). */
static bool dns_name_valid(const char *s)
{
    size_t n = strlen(s);
    size_t label = 0;

    if (n == 0 || n > OTA_CA_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-') ||
            ++label > 63)
            return false;
    }
    return label > 0;
}

static bool ip_valid(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "DNS:a,DNS:b,IP:1.2.3.4" for the request's names. */
static int san_value(struct ota_buf *out, const struct ota_cert_request *req,
                     struct ota_detail *det)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < req->ndns; i++) {
        if (!dns_name_valid(req->dns[i])) {
            ota_detail_set(det, "'%.253s' is not a DNS name (letters, digits, '-', dots)",
                           req->dns[i]);
            return OTA_ERR_INVALID_ARG;
        }
        rc = ota_buf_printf(out, "%sDNS:%s", out->len ? "," : "", req->dns[i]);
    }
    for (size_t i = 0; rc == 0 && i < req->nips; i++) {
        if (!ip_valid(req->ips[i])) {
            ota_detail_set(det, "'%.64s' is not an IPv4 or IPv6 address", req->ips[i]);
            return OTA_ERR_INVALID_ARG;
        }
        rc = ota_buf_printf(out, "%sIP:%s", out->len ? "," : "", req->ips[i]);
    }
    return rc;
}

/* ---- one CA ---- */

int ota_ca_keygen(EVP_PKEY **out, enum ota_ca_key_type type)
{
    *out = type == OTA_CA_KEY_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                                      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return *out != NULL ? 0 : ssl_fail(OTA_ERR_CRYPTO);
}

int ota_ca_key_pem(struct ota_buf *out, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    int rc;

    if (bio == NULL)
        return ssl_fail(OTA_ERR_NOMEM);
    rc = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 ? bio_to_buf(out, bio)
                                                                            : OTA_ERR_CRYPTO;
    BIO_free(bio);
    return rc != 0 ? ssl_fail(rc) : 0;
}

static int cert_pem(struct ota_buf *out, X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc;

    if (bio == NULL)
        return ssl_fail(OTA_ERR_NOMEM);
    rc = PEM_write_bio_X509(bio, x) == 1 ? bio_to_buf(out, bio) : OTA_ERR_CRYPTO;
    BIO_free(bio);
    return rc != 0 ? ssl_fail(rc) : 0;
}

/* Reads a PEM certificate file. */
static int read_cert(X509 **out, const char *path, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    BIO *bio;
    int rc = ota_fs_read(&data, &len, path, OTA_CA_PEM_MAX);

    *out = NULL;
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", path, ota_errname(rc));
        return rc;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    *out = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(data);
    if (*out == NULL) {
        ERR_clear_error();
        ota_detail_set(det, "%s: not a PEM certificate", path);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

/* Reads a PEM private key file that only its owner may read. */
static int read_key(EVP_PKEY **out, const char *path, struct ota_detail *det)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;
    BIO *bio;
    int rc;

    *out = NULL;
    if (fd < 0) {
        rc = ota_fs_errno(errno);
        ota_detail_set(det, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        close(fd);
        ota_detail_set(det, "%s: must be a regular file of mode 0600 or stricter", path);
        return OTA_ERR_PERMISSION;
    }
    rc = ota_fs_read_fd(&data, &len, fd, OTA_CA_PEM_MAX);
    close(fd);
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", path, ota_errname(rc));
        return rc;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    *out = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ota_wipe(data, len);
    free(data);
    if (*out == NULL) {
        ERR_clear_error();
        ota_detail_set(det, "%s: not an unencrypted PEM private key", path);
        return OTA_ERR_KEY_FORMAT;
    }
    return 0;
}

int ota_ca_load(struct ota_ca **out, const char *cert_path, const char *key_path,
                struct ota_detail *det)
{
    struct ota_ca *ca = calloc(1, sizeof(*ca));
    int rc;

    *out = NULL;
    if (ca == NULL)
        return OTA_ERR_NOMEM;
    rc = read_cert(&ca->cert, cert_path, det);
    if (rc == 0)
        rc = read_key(&ca->key, key_path, det);
    if (rc == 0 && X509_check_private_key(ca->cert, ca->key) != 1) {
        ota_detail_set(det, "%s does not belong to the certificate %s", key_path, cert_path);
        rc = ssl_fail(OTA_ERR_KEY_FORMAT);
    }
    if (rc == 0 && X509_check_ca(ca->cert) <= 0) {
        ota_detail_set(det, "%s is not a CA certificate", cert_path);
        rc = OTA_ERR_FORMAT;
    }
    if (rc != 0) {
        ota_ca_free(ca);
        return rc;
    }
    *out = ca;
    return 0;
}

X509 *ota_ca_cert(const struct ota_ca *ca)
{
    return ca->cert;
}

void ota_ca_free(struct ota_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
}

static int check_request(const struct ota_cert_request *req, struct ota_detail *det)
{
    if (req->role != OTA_CERT_ROLE_DEVICE && req->role != OTA_CERT_ROLE_ADMIN &&
        req->role != OTA_CERT_ROLE_SERVER) {
        ota_detail_set(det, "no certificate role given");
        return OTA_ERR_INVALID_ARG;
    }
    if (req->cn == NULL || !ota_cert_id_valid(req->cn, strlen(req->cn))) {
        ota_detail_set(det, "'%.80s' is not an id: 1-64 characters [A-Za-z0-9._-]",
                       req->cn ? req->cn : "");
        return OTA_ERR_INVALID_ARG;
    }
    if (req->lifetime <= 0 || req->lifetime > (int64_t)100 * 366 * 86400) {
        ota_detail_set(det, "validity must be 1 second to 100 years");
        return OTA_ERR_INVALID_ARG;
    }
    if (req->role == OTA_CERT_ROLE_SERVER && req->ndns + req->nips == 0) {
        ota_detail_set(det, "a server certificate needs at least one DNS name or IP address");
        return OTA_ERR_INVALID_ARG;
    }
    if (req->role != OTA_CERT_ROLE_SERVER && req->ndns + req->nips != 0) {
        ota_detail_set(det, "only server certificates carry DNS names or IP addresses");
        return OTA_ERR_INVALID_ARG;
    }
    if (req->ndns + req->nips > OTA_CA_MAX_SANS) {
        ota_detail_set(det, "at most %d DNS names and IP addresses", OTA_CA_MAX_SANS);
        return OTA_ERR_INVALID_ARG;
    }
    return 0;
}

int ota_ca_issue(struct ota_buf *out, char serial[OTA_CERT_SERIAL_HEX_MAX + 1],
                 const struct ota_ca *ca, EVP_PKEY *pub, const struct ota_cert_request *req,
                 struct ota_detail *det)
{
    static const char *const oid[] = {"", OTA_CERT_OID_DEVICE, OTA_CERT_OID_ADMIN,
                                      OTA_CERT_OID_SERVER};
    struct ota_buf san;
    X509V3_CTX ctx;
    ASN1_INTEGER *sn = NULL;
    X509 *x = NULL;
    int rc;

    serial[0] = '\0';
    rc = check_request(req, det);
    if (rc != 0)
        return rc;
    ota_buf_init(&san, 8192);
    rc = san_value(&san, req, det);
    if (rc != 0)
        goto out;
    rc = OTA_ERR_CRYPTO;
    x = X509_new();
    sn = random_serial(serial);
    if (x == NULL || sn == NULL || X509_set_version(x, 2) != 1 ||
        X509_set_serialNumber(x, sn) != 1 || X509_set_pubkey(x, pub) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1)
        goto out;
    if (set_times(x, req->now - OTA_CA_BACKDATE, req->now + req->lifetime) != 0 ||
        set_cn(x, req->cn, false) != 0)
        goto out;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, &ctx, NID_ext_key_usage,
                req->role == OTA_CERT_ROLE_SERVER ? "serverAuth" : "clientAuth") != 0 ||
        add_policy(x, oid[req->role]) != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0)
        goto out;
    if (san.len > 0 && add_ext(x, &ctx, NID_subject_alt_name, (const char *)san.data) != 0)
        goto out;
    if (X509_sign(x, ca->key, md_for(ca->key)) <= 0)
        goto out;
    rc = cert_pem(out, x);
out:
    if (rc != 0) {
        serial[0] = '\0';
        ERR_clear_error();
        if (rc == OTA_ERR_CRYPTO)
            ota_detail_set(det, "OpenSSL could not make the certificate");
    }
    ota_buf_free(&san);
    ASN1_INTEGER_free(sn);
    X509_free(x);
    return rc;
}

/* A self-signed CA certificate for key. */
static int make_ca_cert(X509 **out, EVP_PKEY *key, const char *cn, int64_t now, int64_t lifetime)
{
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    ASN1_INTEGER *sn = random_serial(serial);
    X509 *x = X509_new();
    X509V3_CTX ctx;
    int rc = OTA_ERR_CRYPTO;

    *out = NULL;
    if (x == NULL || sn == NULL || X509_set_version(x, 2) != 1 ||
        X509_set_serialNumber(x, sn) != 1 || X509_set_pubkey(x, key) != 1 ||
        set_times(x, now - OTA_CA_BACKDATE, now + lifetime) != 0 || set_cn(x, cn, true) != 0)
        goto out;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0 ||
        X509_sign(x, key, md_for(key)) <= 0)
        goto out;
    *out = x;
    x = NULL;
    rc = 0;
out:
    ASN1_INTEGER_free(sn);
    X509_free(x);
    return rc != 0 ? ssl_fail(rc) : 0;
}

int ota_ca_csr_parse(EVP_PKEY **pub, char cn[OTA_CERT_ID_MAX + 1], const void *pem, size_t len,
                     struct ota_detail *det)
{
    X509_REQ *req = NULL;
    EVP_PKEY *key = NULL;
    BIO *bio;
    int rc;

    *pub = NULL;
    cn[0] = '\0';
    if (len > OTA_CA_PEM_MAX) {
        ota_detail_set(det, "the request is above %u bytes", OTA_CA_PEM_MAX);
        return OTA_ERR_TOO_LARGE;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return ssl_fail(OTA_ERR_NOMEM);
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (req == NULL) {
        ota_detail_set(det, "not a PEM certificate signing request");
        return ssl_fail(OTA_ERR_FORMAT);
    }
    key = X509_REQ_get_pubkey(req);
    if (key == NULL) {
        ota_detail_set(det, "the request's public key is not usable");
        rc = OTA_ERR_FORMAT;
        goto out;
    }
    if (X509_REQ_verify(req, key) != 1) {
        ota_detail_set(det, "the request's signature does not verify with its own key");
        rc = OTA_ERR_BAD_SIGNATURE;
        goto out;
    }
    rc = ota_cert_name_id(cn, X509_REQ_get_subject_name(req), det);
    if (rc == 0) {
        *pub = key;
        key = NULL;
    }
out:
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}

int ota_ca_crl(struct ota_buf *out, const struct ota_ca *ca, const struct ota_ca_revoked *revoked,
               size_t n, int64_t now, int64_t lifetime, struct ota_detail *det)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + lifetime));
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509_EXTENSION *aki = NULL;
    X509V3_CTX ctx;
    BIO *bio = NULL;
    int rc = OTA_ERR_CRYPTO;

    if (lifetime <= 0) {
        rc = OTA_ERR_INVALID_ARG;
        goto out;
    }
    if (crl == NULL || last == NULL || next == NULL || num == NULL ||
        X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_TIME *at = ASN1_TIME_set(NULL, (time_t)revoked[i].at);
        BIGNUM *bn = NULL;
        ASN1_INTEGER *sn = NULL;
        bool ok = r != NULL && at != NULL && BN_hex2bn(&bn, revoked[i].serial) > 0 &&
                  (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
                  X509_REVOKED_set_serialNumber(r, sn) == 1 &&
                  X509_REVOKED_set_revocationDate(r, at) == 1 && X509_CRL_add0_revoked(crl, r) == 1;
        BN_free(bn);
        ASN1_INTEGER_free(sn);
        ASN1_TIME_free(at);
        if (!ok) {
            X509_REVOKED_free(r);
            ota_detail_set(det, "revoked serial '%s'", revoked[i].serial);
            goto out;
        }
    }
    if (X509_CRL_sort(crl) != 1 || ASN1_INTEGER_set_int64(num, now) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
        goto out;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1 ||
        X509_CRL_sign(crl, ca->key, md_for(ca->key)) <= 0)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509_CRL(bio, crl) != 1)
        goto out;
    rc = bio_to_buf(out, bio);
out:
    if (rc == OTA_ERR_CRYPTO)
        ota_detail_set(det, "OpenSSL could not make the CRL");
    ERR_clear_error();
    BIO_free(bio);
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return rc;
}

int ota_ca_save(const char *cert_path, const struct ota_buf *cert, const char *key_path,
                const struct ota_buf *key, struct ota_detail *det)
{
    struct stat st;
    int rc;

    if (cert_path == NULL || cert == NULL || (key != NULL && key_path == NULL))
        return OTA_ERR_INVALID_ARG;
    if (key != NULL && lstat(key_path, &st) == 0) {
        ota_detail_set(det, "%s exists", key_path);
        return OTA_ERR_EXISTS;
    }
    rc = ota_fs_create(cert_path, cert->data, cert->len, 0644, NULL);
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", cert_path, rc == OTA_ERR_EXISTS ? "exists" : ota_errname(rc));
        return rc;
    }
    if (key == NULL)
        return 0;
    rc = ota_fs_create(key_path, key->data, key->len, 0600, NULL);
    if (rc != 0) {
        ota_detail_set(det, "%s: %s", key_path, rc == OTA_ERR_EXISTS ? "exists" : ota_errname(rc));
        unlink(cert_path);
    }
    return rc;
}

/* ---- the CA directory ---- */

static int dir_path(char out[PATH_MAX], const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, PATH_MAX, "%s/%s%s", dir, name, suffix);

    return n < 0 || n >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

/* The CA that issues role's certificates: "server-ca" or "device-ca". */
static const char *ca_name_for(enum ota_cert_role role)
{
    return role == OTA_CERT_ROLE_DEVICE ? DEVICE_CA : SERVER_CA;
}

static int write_new(const char *path, const void *data, size_t len, unsigned mode,
                     struct ota_detail *det)
{
    int rc = ota_fs_create(path, data, len, mode, NULL);

    if (rc != 0)
        ota_detail_set(det, "%s: %s", path, ota_errname(rc));
    return rc;
}

static int init_one(const char *dir, const char *which, const char *cn, enum ota_ca_key_type type,
                    int64_t now, int64_t lifetime, struct ota_detail *det)
{
    char path[PATH_MAX];
    struct ota_buf pem;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc;

    ota_buf_init(&pem, 2 * OTA_CA_PEM_MAX);
    rc = ota_ca_keygen(&key, type);
    if (rc == 0)
        rc = make_ca_cert(&cert, key, cn, now, lifetime);
    if (rc == 0)
        rc = ota_ca_key_pem(&pem, key);
    if (rc == 0) {
        char name[64];
        snprintf(name, sizeof(name), "private/%s", which);
        rc = dir_path(path, dir, name, ".key");
        if (rc == 0)
            rc = write_new(path, pem.data, pem.len, 0600, det);
    }
    ota_buf_free(&pem); /* wipes the key */
    ota_buf_init(&pem, OTA_CA_PEM_MAX);
    if (rc == 0)
        rc = cert_pem(&pem, cert);
    if (rc == 0)
        rc = dir_path(path, dir, which, ".crt");
    if (rc == 0)
        rc = write_new(path, pem.data, pem.len, 0644, det);
    ota_buf_free(&pem);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

int ota_ca_dir_init(const char *dir, const char *name, enum ota_ca_key_type type, int64_t now,
                    int64_t lifetime, struct ota_detail *det)
{
    static const char ca_json[] = "{\"format\":1}\n";
    char path[PATH_MAX];
    char cn[OTA_CERT_ID_MAX + 1];
    DIR *d;
    int rc;

    if (name == NULL || strlen(name) + strlen(" server CA") > OTA_CERT_ID_MAX ||
        !ota_cert_id_valid(name, strlen(name))) {
        ota_detail_set(det, "the CA name must be 1-54 characters [A-Za-z0-9._-]");
        return OTA_ERR_INVALID_ARG;
    }
    if (lifetime <= 0) {
        ota_detail_set(det, "validity must be positive");
        return OTA_ERR_INVALID_ARG;
    }
    d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        }
        closedir(d);
        if (!empty) {
            ota_detail_set(det, "%s exists and is not empty", dir);
            return OTA_ERR_EXISTS;
        }
    }
    rc = ota_fs_mkdirs(dir, 0755, NULL);
    if (rc == 0 && (rc = dir_path(path, dir, "private", "")) == 0)
        rc = ota_fs_mkdirs(path, 0700, NULL);
    if (rc == 0 && (rc = dir_path(path, dir, "issued", "")) == 0)
        rc = ota_fs_mkdirs(path, 0755, NULL);
    if (rc == 0 && (rc = dir_path(path, dir, "revoked", "")) == 0)
        rc = ota_fs_mkdirs(path, 0755, NULL);
    if (rc != 0) {
        ota_detail_set(det, "creating %s: %s", dir, ota_errname(rc));
        return rc;
    }
    /* The CA names carry spaces, so they are made here, not checked as ids. */
    snprintf(cn, sizeof(cn), "%s server CA", name);
    rc = init_one(dir, SERVER_CA, cn, type, now, lifetime, det);
    snprintf(cn, sizeof(cn), "%s device CA", name);
    if (rc == 0)
        rc = init_one(dir, DEVICE_CA, cn, type, now, lifetime, det);
    /* ca.json last: it marks a complete directory. */
    if (rc == 0 && (rc = dir_path(path, dir, CA_JSON, "")) == 0)
        rc = write_new(path, ca_json, sizeof(ca_json) - 1, 0644, det);
    return rc;
}

static int check_dir(const char *dir, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = dir_path(path, dir, CA_JSON, "");

    if (rc == 0)
        rc = ota_fs_read(&data, &len, path, 4096);
    if (rc != 0) {
        ota_detail_set(det, "%s is not a CA directory (no %s; create one with otachain ca init)",
                       dir, CA_JSON);
        return rc == OTA_ERR_NOT_FOUND ? OTA_ERR_NOT_FOUND : rc;
    }
    rc = ota_json_parse(&doc, data, len, NULL, NULL);
    free(data);
    if (rc != 0 || !json_is_object(doc) ||
        json_integer_value(json_object_get(doc, "format")) != CA_FORMAT) {
        json_decref(doc);
        ota_detail_set(det, "%s: unknown format (expected {\"format\": %d})", path, CA_FORMAT);
        return OTA_ERR_FORMAT_VERSION;
    }
    json_decref(doc);
    return 0;
}

int ota_ca_dir_ca(struct ota_ca **out, const char *dir, enum ota_cert_role role,
                  struct ota_detail *det)
{
    char cert[PATH_MAX];
    char key[PATH_MAX];
    char name[64];
    int rc = check_dir(dir, det);

    *out = NULL;
    if (rc != 0)
        return rc;
    snprintf(name, sizeof(name), "private/%s", ca_name_for(role));
    if (dir_path(cert, dir, ca_name_for(role), ".crt") != 0 || dir_path(key, dir, name, ".key"))
        return OTA_ERR_TOO_LARGE;
    return ota_ca_load(out, cert, key, det);
}

int ota_ca_dir_issue(struct ota_buf *cert_pem, struct ota_buf *key_pem,
                     char serial[OTA_CERT_SERIAL_HEX_MAX + 1], const char *dir, EVP_PKEY *pub,
                     enum ota_ca_key_type key_type, const struct ota_cert_request *req,
                     struct ota_detail *det)
{
    struct ota_ca *ca = NULL;
    EVP_PKEY *key = NULL;
    char path[PATH_MAX];
    char name[OTA_CERT_SERIAL_HEX_MAX + 16];
    int rc;

    serial[0] = '\0';
    if (pub == NULL && key_pem == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = check_request(req, det);
    if (rc == 0)
        rc = ota_ca_dir_ca(&ca, dir, req->role, det);
    if (rc == 0 && pub == NULL) {
        rc = ota_ca_keygen(&key, key_type);
        pub = key;
    }
    if (rc == 0)
        rc = ota_ca_issue(cert_pem, serial, ca, pub, req, det);
    if (rc == 0) {
        snprintf(name, sizeof(name), "issued/%s", serial);
        rc = dir_path(path, dir, name, ".crt");
        if (rc == 0)
            rc = write_new(path, cert_pem->data, cert_pem->len, 0644, det);
    }
    if (rc == 0 && key != NULL)
        rc = ota_ca_key_pem(key_pem, key);
    if (rc != 0)
        serial[0] = '\0';
    EVP_PKEY_free(key);
    ota_ca_free(ca);
    return rc;
}

/* Whether name is "<hex serial>.crt"; copies the serial. */
static bool issued_name(char serial[OTA_CERT_SERIAL_HEX_MAX + 1], const char *name)
{
    size_t n = strlen(name);

    if (n < 5 || n - 4 > OTA_CERT_SERIAL_HEX_MAX || strcmp(name + n - 4, ".crt") != 0)
        return false;
    for (size_t i = 0; i < n - 4; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    memcpy(serial, name, n - 4);
    serial[n - 4] = '\0';
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads DIR/revoked/<serial> into rec (absent: not revoked). */
static int read_revocation(struct ota_ca_record *rec, const char *dir, struct ota_detail *det)
{
    char path[PATH_MAX];
    char name[OTA_CERT_SERIAL_HEX_MAX + 16];
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    json_t *at;
    json_t *reason;
    int rc;

    snprintf(name, sizeof(name), "revoked/%s", rec->serial);
    rc = dir_path(path, dir, name, "");
    if (rc == 0)
        rc = ota_fs_read(&data, &len, path, REVOKED_MAX);
    if (rc == OTA_ERR_NOT_FOUND)
        return 0;
    if (rc == 0)
        rc = ota_json_parse(&doc, data, len, NULL, NULL);
    free(data);
    at = json_object_get(doc, "at");
    reason = json_object_get(doc, "reason");
    if (rc == 0 && (!json_is_integer(at) || !json_is_string(reason) ||
                    json_string_length(reason) >= sizeof(rec->reason)))
        rc = OTA_ERR_FORMAT;
    if (rc != 0) {
        json_decref(doc);
        ota_detail_set(det, "%s: %s", path, ota_errname(rc));
        return rc;
    }
    rec->revoked = true;
    rec->revoked_at = json_integer_value(at);
    memcpy(rec->reason, json_string_value(reason), json_string_length(reason) + 1);
    json_decref(doc);
    return 0;
}

static int load_record(struct ota_ca_record *rec, const char *dir, const char *serial,
                       struct ota_detail *det)
{
    char path[PATH_MAX];
    char name[OTA_CERT_SERIAL_HEX_MAX + 16];
    X509 *x = NULL;
    int rc;

    memset(rec, 0, sizeof(*rec));
    memcpy(rec->serial, serial, strlen(serial) + 1);
    snprintf(name, sizeof(name), "issued/%s", serial);
    rc = dir_path(path, dir, name, ".crt");
    if (rc == 0)
        rc = read_cert(&x, path, det);
    if (rc != 0)
        return rc;
    /* A certificate this directory issued always has a role and an id;
     * a damaged file shows as role none rather than stopping the list. */
    if (ota_cert_role_of(&rec->role, x, NULL) != 0)
        rec->role = OTA_CERT_ROLE_NONE;
    if (ota_cert_id(rec->cn, x, NULL) != 0)
        memcpy(rec->cn, "?", 2);
    rc = ota_cert_validity(&rec->not_before, &rec->not_after, x);
    X509_free(x);
    if (rc != 0) {
        ota_detail_set(det, "%s: unreadable validity", path);
        return rc;
    }
    return read_revocation(rec, dir, det);
}

int ota_ca_dir_list(const char *dir, int (*fn)(void *ctx, const struct ota_ca_record *rec),
                    void *ctx, struct ota_detail *det)
{
    char path[PATH_MAX];
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    char **names = NULL;
    size_t n = 0;
    size_t cap = 0;
    struct dirent *e;
    DIR *d;
    int rc = check_dir(dir, det);

    if (rc != 0)
        return rc;
    if (dir_path(path, dir, "issued", "") != 0)
        return OTA_ERR_TOO_LARGE;
    d = opendir(path);
    if (d == NULL) {
        ota_detail_set(det, "%s: %s", path, strerror(errno));
        return ota_fs_errno(errno);
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!issued_name(serial, e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = ncap <= MAX_ISSUED_DIR ? realloc(names, ncap * sizeof(*names)) : NULL;
            if (nn == NULL) {
                rc = ncap <= MAX_ISSUED_DIR ? OTA_ERR_NOMEM : OTA_ERR_TOO_LARGE;
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(serial);
        if (names[n] == NULL)
            rc = OTA_ERR_NOMEM;
        else
            n++;
    }
    closedir(d);
    if (rc == 0 && n > 0)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct ota_ca_record rec;
        rc = load_record(&rec, dir, names[i], det);
        if (rc == 0)
            rc = fn(ctx, &rec);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int ota_ca_dir_revoke(const char *dir, const char *serial, const char *reason, int64_t now,
                      struct ota_detail *det)
{
    char path[PATH_MAX];
    char name[OTA_CERT_SERIAL_HEX_MAX + 16];
    struct stat st;
    json_t *doc;
    char *text;
    int rc = check_dir(dir, det);

    if (rc != 0)
        return rc;
    if (reason == NULL)
        reason = "";
    if (strlen(reason) > REASON_MAX) {
        ota_detail_set(det, "the reason is longer than %d bytes", REASON_MAX);
        return OTA_ERR_INVALID_ARG;
    }
    for (const char *p = reason; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            ota_detail_set(det, "the reason must be printable ASCII");
            return OTA_ERR_INVALID_ARG;
        }
    }
    snprintf(name, sizeof(name), "issued/%s", serial);
    if (strlen(serial) > OTA_CERT_SERIAL_HEX_MAX || dir_path(path, dir, name, ".crt") != 0 ||
        lstat(path, &st) != 0) {
        ota_detail_set(det, "no certificate with serial %.64s was issued by %s", serial, dir);
        return OTA_ERR_NOT_FOUND;
    }
    doc = json_pack("{s:I,s:s}", "at", (json_int_t)now, "reason", reason);
    text = doc != NULL ? json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return OTA_ERR_NOMEM;
    snprintf(name, sizeof(name), "revoked/%s", serial);
    rc = dir_path(path, dir, name, "");
    if (rc == 0)
        rc = ota_fs_create(path, text, strlen(text), 0644, NULL);
    free(text);
    if (rc == OTA_ERR_EXISTS)
        ota_detail_set(det, "certificate %s is revoked already", serial);
    else if (rc != 0)
        ota_detail_set(det, "%s: %s", path, ota_errname(rc));
    return rc;
}

struct crl_ctx {
    enum ota_cert_role role;
    struct ota_ca_revoked *list;
    size_t n, cap;
};

static bool same_ca(enum ota_cert_role a, enum ota_cert_role b)
{
    return (a == OTA_CERT_ROLE_DEVICE) == (b == OTA_CERT_ROLE_DEVICE);
}

static int crl_collect(void *arg, const struct ota_ca_record *rec)
{
    struct crl_ctx *c = arg;

    if (!rec->revoked || rec->role == OTA_CERT_ROLE_NONE || !same_ca(rec->role, c->role))
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        struct ota_ca_revoked *nl = realloc(c->list, ncap * sizeof(*nl));
        if (nl == NULL)
            return OTA_ERR_NOMEM;
        c->list = nl;
        c->cap = ncap;
    }
    memcpy(c->list[c->n].serial, rec->serial, sizeof(rec->serial));
    c->list[c->n].at = rec->revoked_at;
    c->n++;
    return 0;
}

int ota_ca_dir_crl(struct ota_buf *crl_pem, const char *dir, enum ota_cert_role role, int64_t now,
                   int64_t lifetime, struct ota_detail *det)
{
    struct crl_ctx c = {.role = role};
    struct ota_ca *ca = NULL;
    int rc = ota_ca_dir_ca(&ca, dir, role, det);

    if (rc == 0)
        rc = ota_ca_dir_list(dir, crl_collect, &c, det);
    if (rc == 0)
        rc = ota_ca_crl(crl_pem, ca, c.list, c.n, now, lifetime, det);
    free(c.list);
    ota_ca_free(ca);
    return rc;
}
