/* Issuing fleet certificates (docs/server.md "Certificates"; the CLI is
 * `otachain ca`, docs/cli.md). Authoring side only: this module signs
 * (X509_sign) and is never linked into the device agent.
 *
 * Two layers:
 *  - struct ota_ca: one issuing CA (certificate + key) that signs
 *    certificates of a role and CRLs. The server's certificate renewal
 *    uses it with the device CA's key.
 *  - the CA directory: a fleet's two CAs, kept apart as in UpdaThing --
 *    the server CA issues server and admin certificates, the device CA
 *    issues device certificates -- with a record of every certificate
 *    issued and of every revocation:
 *
 *      DIR/ca.json                     {"format": 1}
 *      DIR/server-ca.crt, device-ca.crt the CA certificates (give these out)
 *      DIR/private/<ca>.key             their keys (PKCS#8 PEM, 0600; 0700 dir)
 *      DIR/issued/<serial>.crt          every certificate issued (immutable)
 *      DIR/revoked/<serial>             {"at": SECONDS, "reason": "..."}
 *
 *    Every file is created once (O_EXCL, fsynced with its directory) and
 *    never rewritten, so concurrent commands need no lock: serials are
 *    random, and a second revocation of a serial is OTA_ERR_EXISTS.
 *
 * Certificate profile: X.509 v3, random 128-bit serial (top bit clear),
 * SHA-256 (or Ed25519) signature; leaves have basicConstraints CA:FALSE,
 * keyUsage digitalSignature, the role's extended key usage and policy
 * OID (otachain/cert.h), subject CN = the id; server certificates also a
 * subjectAltName. CAs: CA:TRUE, pathlen 0, keyCertSign + cRLSign.
 */
#ifndef OTACHAIN_CA_H
#define OTACHAIN_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/cert.h"
#include "otachain/err.h"

enum ota_ca_key_type {
    OTA_CA_KEY_P256 = 0, /* ECDSA P-256: small handshakes, secure elements */
    OTA_CA_KEY_ED25519 = 1,
};

/* Caps: a PEM certificate, key or CSR we read; names in a request. */
#define OTA_CA_PEM_MAX  (16u * 1024)
#define OTA_CA_MAX_SANS 16
#define OTA_CA_NAME_MAX 253 /* a DNS name */
/* notBefore is backdated by this much so devices with a slow clock accept
 * a certificate issued a moment ago. */
#define OTA_CA_BACKDATE 3600

struct ota_ca;

/* What to put into a certificate. */
struct ota_cert_request {
    enum ota_cert_role role;
    const char *cn;         /* the id (ota_cert_id_valid) */
    const char *const *dns; /* server: subjectAltName DNS names */
    size_t ndns;            /* at most OTA_CA_MAX_SANS in all with nips */
    const char *const *ips; /* server: subjectAltName IP addresses */
    size_t nips;
    int64_t now;      /* notBefore = now - OTA_CA_BACKDATE */
    int64_t lifetime; /* notAfter = now + lifetime (seconds, > 0) */
};

/* Loads a CA from its PEM certificate and key files (the key file must be
 * a regular file, not a symlink, not accessible by group or others:
 * OTA_ERR_PERMISSION). The key must match the certificate and the
 * certificate must be a CA (OTA_ERR_KEY_FORMAT / OTA_ERR_FORMAT). */
OTA_WUR int ota_ca_load(struct ota_ca **out, const char *cert_path, const char *key_path,
                        struct ota_detail *det);

/* The CA certificate (owned by ca). */
X509 *ota_ca_cert(const struct ota_ca *ca);

/* Frees; accepts NULL. */
void ota_ca_free(struct ota_ca *ca);

/* Generates a key pair. */
OTA_WUR int ota_ca_keygen(EVP_PKEY **out, enum ota_ca_key_type type);

/* Appends the unencrypted PKCS#8 PEM of key's secret half to out. */
OTA_WUR int ota_ca_key_pem(struct ota_buf *out, EVP_PKEY *key);

/* Issues a certificate of req->role for the public key pub, signed by
 * ca; appends its PEM to cert_pem and writes its serial (hex) to serial.
 * OTA_ERR_INVALID_ARG (det says which) for a bad request: an invalid
 * id, a server certificate without a name, an admin or device one with
 * names, a bad IP address, a non-positive lifetime. */
OTA_WUR int ota_ca_issue(struct ota_buf *cert_pem, char serial[OTA_CERT_SERIAL_HEX_MAX + 1],
                         const struct ota_ca *ca, EVP_PKEY *pub, const struct ota_cert_request *req,
                         struct ota_detail *det);

/* Parses a PEM certificate signing request (at most OTA_CA_PEM_MAX
 * bytes), checks its self-signature and its subject CN (an id), and
 * returns its public key (*pub, EVP_PKEY_free) and the CN. Requested
 * extensions are ignored: the issuer decides the profile.
 * OTA_ERR_FORMAT (not a CSR, no or bad CN), OTA_ERR_BAD_SIGNATURE. */
OTA_WUR int ota_ca_csr_parse(EVP_PKEY **pub, char cn[OTA_CERT_ID_MAX + 1], const void *pem,
                             size_t len, struct ota_detail *det);

/* One revoked serial, for a CRL. */
struct ota_ca_revoked {
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    int64_t at;
};

/* Appends a PEM CRL (v2, CRL number = now) listing revoked[0..n), signed
 * by ca, valid from now for lifetime seconds. */
OTA_WUR int ota_ca_crl(struct ota_buf *crl_pem, const struct ota_ca *ca,
                       const struct ota_ca_revoked *revoked, size_t n, int64_t now,
                       int64_t lifetime, struct ota_detail *det);

/* Writes a certificate (mode 0644) and, when key is not NULL, its secret
 * key (mode 0600) to new files: O_EXCL, O_NOFOLLOW, fsynced with their
 * directory. OTA_ERR_EXISTS (nothing written) if either path exists; the
 * certificate is removed again when the key cannot be written. */
OTA_WUR int ota_ca_save(const char *cert_path, const struct ota_buf *cert, const char *key_path,
                        const struct ota_buf *key, struct ota_detail *det);

/* ---- the CA directory ---- */

/* Creates DIR (must not exist or be empty) with both CAs, named
 * "<name> server CA" and "<name> device CA", valid from now for lifetime
 * seconds. OTA_ERR_EXISTS if DIR already holds a CA. */
OTA_WUR int ota_ca_dir_init(const char *dir, const char *name, enum ota_ca_key_type type,
                            int64_t now, int64_t lifetime, struct ota_detail *det);

/* Loads the CA of DIR that issues certificates of role (device: the
 * device CA; server and admin: the server CA). */
OTA_WUR int ota_ca_dir_ca(struct ota_ca **out, const char *dir, enum ota_cert_role role,
                          struct ota_detail *det);

/* Issues a certificate from DIR's CA for req->role and records it in
 * DIR/issued/. With pub NULL a key of type key_type is generated and its
 * secret PEM appended to key_pem (which must then not be NULL). */
OTA_WUR int ota_ca_dir_issue(struct ota_buf *cert_pem, struct ota_buf *key_pem,
                             char serial[OTA_CERT_SERIAL_HEX_MAX + 1], const char *dir,
                             EVP_PKEY *pub, enum ota_ca_key_type key_type,
                             const struct ota_cert_request *req, struct ota_detail *det);

/* A certificate of the directory, for listing. */
struct ota_ca_record {
    char serial[OTA_CERT_SERIAL_HEX_MAX + 1];
    enum ota_cert_role role;
    char cn[OTA_CERT_ID_MAX + 1];
    int64_t not_before, not_after;
    bool revoked;
    int64_t revoked_at;
    char reason[257];
};

/* Calls fn for every issued certificate, in serial order; stops at the
 * first non-zero return of fn and returns it. */
OTA_WUR int ota_ca_dir_list(const char *dir, int (*fn)(void *ctx, const struct ota_ca_record *rec),
                            void *ctx, struct ota_detail *det);

/* Records the revocation of an issued serial (normalised hex) with a
 * reason (printable ASCII, at most 256 bytes). OTA_ERR_NOT_FOUND if DIR
 * never issued it, OTA_ERR_EXISTS if it is revoked already. */
OTA_WUR int ota_ca_dir_revoke(const char *dir, const char *serial, const char *reason, int64_t now,
                              struct ota_detail *det);

/* Appends the PEM CRL of the CA that issues role's certificates, listing
 * every revoked certificate it issued. */
OTA_WUR int ota_ca_dir_crl(struct ota_buf *crl_pem, const char *dir, enum ota_cert_role role,
                           int64_t now, int64_t lifetime, struct ota_detail *det);

#endif
