/* Fleet certificates: roles, ids, serials (cert.h). Reading only. */
#include "otachain/cert.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

const char *ota_cert_role_name(enum ota_cert_role role)
{
    switch (role) {
    case OTA_CERT_ROLE_DEVICE:
        return "device";
    case OTA_CERT_ROLE_ADMIN:
        return "admin";
    case OTA_CERT_ROLE_SERVER:
        return "server";
    default:
        return "none";
    }
}

int ota_cert_role_parse(enum ota_cert_role *role, const char *name)
{
    *role = OTA_CERT_ROLE_NONE;
    if (name == NULL)
        return OTA_ERR_INVALID_ARG;
    if (strcmp(name, "device") == 0)
        *role = OTA_CERT_ROLE_DEVICE;
    else if (strcmp(name, "admin") == 0)
        *role = OTA_CERT_ROLE_ADMIN;
    else if (strcmp(name, "server") == 0)
        *role = OTA_CERT_ROLE_SERVER;
    else
        return OTA_ERR_INVALID_ARG;
    return 0;
}

bool ota_cert_id_valid(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > OTA_CERT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* The role named by one policy OID, or NONE for an OID not of ours. */
static enum ota_cert_role role_of_oid(const ASN1_OBJECT *obj)
{
    char txt[128];
    int n = OBJ_obj2txt(txt, (int)sizeof(txt), obj, 1);

    if (n <= 0 || n >= (int)sizeof(txt))
        return OTA_CERT_ROLE_NONE;
    if (strcmp(txt, OTA_CERT_OID_DEVICE) == 0)
        return OTA_CERT_ROLE_DEVICE;
    if (strcmp(txt, OTA_CERT_OID_ADMIN) == 0)
        return OTA_CERT_ROLE_ADMIN;
    if (strcmp(txt, OTA_CERT_OID_SERVER) == 0)
        return OTA_CERT_ROLE_SERVER;
    return OTA_CERT_ROLE_NONE;
}

int ota_cert_role_of(enum ota_cert_role *role, X509 *x, struct ota_detail *det)
{
    CERTIFICATEPOLICIES *pols;
    enum ota_cert_role found = OTA_CERT_ROLE_NONE;
    uint32_t xku;
    int crit = 0;

    *role = OTA_CERT_ROLE_NONE;
    if (x == NULL)
        return OTA_ERR_INVALID_ARG;
    pols = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
    if (pols == NULL) {
        ERR_clear_error();
        ota_detail_set(det, "the certificate carries no certificatePolicies (no otachain role)");
        return OTA_ERR_CERT_ROLE;
    }
    for (int i = 0; i < sk_POLICYINFO_num(pols); i++) {
        enum ota_cert_role r = role_of_oid(sk_POLICYINFO_value(pols, i)->policyid);

        if (r == OTA_CERT_ROLE_NONE)
            continue;
        if (found != OTA_CERT_ROLE_NONE) {
            CERTIFICATEPOLICIES_free(pols);
            ota_detail_set(det, "the certificate carries more than one otachain role (%s and %s)",
                           ota_cert_role_name(found), ota_cert_role_name(r));
            return OTA_ERR_CERT_ROLE;
        }
        found = r;
    }
    CERTIFICATEPOLICIES_free(pols);
    if (found == OTA_CERT_ROLE_NONE) {
        ota_detail_set(det, "the certificate carries no otachain role policy OID");
        return OTA_ERR_CERT_ROLE;
    }
    /* Computes the cached extension flags (and fails on a malformed one). */
    if (X509_check_purpose(x, -1, 0) != 1 || (X509_get_extension_flags(x) & EXFLAG_INVALID)) {
        ERR_clear_error();
        ota_detail_set(det, "the certificate has a malformed extension");
        return OTA_ERR_CERT_ROLE;
    }
    if (!(X509_get_extension_flags(x) & EXFLAG_XKUSAGE)) {
        ota_detail_set(det, "the %s certificate has no extended key usage",
                       ota_cert_role_name(found));
        return OTA_ERR_CERT_ROLE;
    }
    xku = X509_get_extended_key_usage(x);
    if (found == OTA_CERT_ROLE_SERVER ? !(xku & XKU_SSL_SERVER) : !(xku & XKU_SSL_CLIENT)) {
        ota_detail_set(det, "the %s certificate lacks the extended key usage %s",
                       ota_cert_role_name(found),
                       found == OTA_CERT_ROLE_SERVER ? "serverAuth" : "clientAuth");
        return OTA_ERR_CERT_ROLE;
    }
    *role = found;
    return 0;
}

int ota_cert_id(char out[OTA_CERT_ID_MAX + 1], X509 *x, struct ota_detail *det)
{
    out[0] = '\0';
    if (x == NULL)
        return OTA_ERR_INVALID_ARG;
    return ota_cert_name_id(out, X509_get_subject_name(x), det);
}

int ota_cert_name_id(char out[OTA_CERT_ID_MAX + 1], const X509_NAME *name, struct ota_detail *det)
{
    const ASN1_STRING *s;
    int idx;
    int len;

    out[0] = '\0';
    idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (idx < 0) {
        ota_detail_set(det, "the subject has no common name");
        return OTA_ERR_FORMAT;
    }
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
        ota_detail_set(det, "the subject has more than one common name");
        return OTA_ERR_FORMAT;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    len = s != NULL ? ASN1_STRING_length(s) : 0;
    if (s == NULL || len <= 0 ||
        !ota_cert_id_valid((const char *)ASN1_STRING_get0_data(s), (size_t)len)) {
        ota_detail_set(det, "the subject's common name is not an id of 1-64 characters "
                            "[A-Za-z0-9._-]");
        return OTA_ERR_FORMAT;
    }
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
    out[len] = '\0';
    return 0;
}

/* Lowercase, leading zeros dropped ("0" for zero); hex must be hex. */
static int canon_hex(char out[OTA_CERT_SERIAL_HEX_MAX + 1], const char *hex)
{
    size_t n;
    size_t o = 0;

    while (*hex == '0' && hex[1] != '\0')
        hex++;
    n = strlen(hex);
    if (n == 0 || n > OTA_CERT_SERIAL_HEX_MAX)
        return OTA_ERR_FORMAT;
    for (size_t i = 0; i < n; i++) {
        char c = hex[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return OTA_ERR_FORMAT;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int ota_cert_serial_hex(char out[OTA_CERT_SERIAL_HEX_MAX + 1], X509 *x)
{
    BIGNUM *bn;
    char *hex;
    int rc;

    out[0] = '\0';
    if (x == NULL)
        return OTA_ERR_INVALID_ARG;
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn == NULL) {
        ERR_clear_error();
        return OTA_ERR_FORMAT;
    }
    if (BN_is_negative(bn)) {
        BN_free(bn);
        return OTA_ERR_FORMAT;
    }
    hex = BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL) {
        ERR_clear_error();
        return OTA_ERR_NOMEM;
    }
    rc = canon_hex(out, hex);
    OPENSSL_free(hex);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

int ota_cert_serial_normalize(char out[OTA_CERT_SERIAL_HEX_MAX + 1], const char *in)
{
    int rc;

    out[0] = '\0';
    if (in == NULL)
        return OTA_ERR_FORMAT;
    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    rc = canon_hex(out, in);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

static int asn1_time_to_epoch(int64_t *out, const ASN1_TIME *t)
{
    struct tm tm;
    time_t v;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return OTA_ERR_FORMAT;
    }
    v = timegm(&tm);
    if (v == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
        return OTA_ERR_FORMAT;
    *out = (int64_t)v;
    return 0;
}

int ota_cert_validity(int64_t *not_before, int64_t *not_after, X509 *x)
{
    int64_t a = 0;
    int64_t b = 0;
    int rc;

    if (x == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = asn1_time_to_epoch(&a, X509_get0_notBefore(x));
    if (rc == 0)
        rc = asn1_time_to_epoch(&b, X509_get0_notAfter(x));
    if (rc != 0)
        return rc;
    if (not_before != NULL)
        *not_before = a;
    if (not_after != NULL)
        *not_after = b;
    return 0;
}
