/* Fleet certificates: roles, device ids, serials (docs/server.md,
 * "Certificates"). Reading only: issuing is otachain/ca.h (authoring
 * side), so this module is safe in the device agent.
 *
 * A certificate's role is told apart by what it carries, never by its
 * name: exactly one otachain role policy OID in certificatePolicies,
 * together with the extended key usage the role needs (clientAuth for
 * devices and admins, serverAuth for servers). Which CA issued it is
 * checked by the TLS handshake against the CA configured for the role
 * (device CA for devices, server CA for servers and admins).
 */
#ifndef OTACHAIN_CERT_H
#define OTACHAIN_CERT_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

/* The otachain role policy OIDs: sub-arcs of a UUID OID (ITU-T X.667,
 * 2.25.<uuid as an integer>), which needs no registration. */
#define OTA_CERT_OID_ARC    "2.25.186381743845947437666054439606035006669"
#define OTA_CERT_OID_DEVICE OTA_CERT_OID_ARC ".1"
#define OTA_CERT_OID_ADMIN  OTA_CERT_OID_ARC ".2"
#define OTA_CERT_OID_SERVER OTA_CERT_OID_ARC ".3"

enum ota_cert_role {
    OTA_CERT_ROLE_NONE = 0, /* no (or more than one) otachain role */
    OTA_CERT_ROLE_DEVICE = 1,
    OTA_CERT_ROLE_ADMIN = 2,
    OTA_CERT_ROLE_SERVER = 3,
};

/* A device id (and any name a fleet certificate carries as its CN):
 * [A-Za-z0-9._-]{1,64}. */
#define OTA_CERT_ID_MAX 64
/* Serials are 16 random bytes with the top bit clear: 32 hex digits. */
#define OTA_CERT_SERIAL_HEX_MAX 64

/* "device", "admin", "server" or "none". */
const char *ota_cert_role_name(enum ota_cert_role role);

/* Parses "device" / "admin" / "server"; OTA_ERR_INVALID_ARG otherwise. */
OTA_WUR int ota_cert_role_parse(enum ota_cert_role *role, const char *name);

/* Whether s[0..n) is a valid id: 1-64 bytes of [A-Za-z0-9._-]. */
bool ota_cert_id_valid(const char *s, size_t n);

/* The role x carries: its one otachain policy OID, and the extended key
 * usage that role needs. OTA_ERR_CERT_ROLE (det says what is missing or
 * doubled) when it carries none, several, or a role without its key
 * usage. */
OTA_WUR int ota_cert_role_of(enum ota_cert_role *role, X509 *x, struct ota_detail *det);

/* The subject's single common name, checked against the id grammar, into
 * out (NUL-terminated). OTA_ERR_FORMAT when there is none, more than one,
 * or it is not a valid id. */
OTA_WUR int ota_cert_id(char out[OTA_CERT_ID_MAX + 1], X509 *x, struct ota_detail *det);

/* The same for a name (a certificate's or a request's subject). */
OTA_WUR int ota_cert_name_id(char out[OTA_CERT_ID_MAX + 1], const X509_NAME *name,
                             struct ota_detail *det);

/* The serial as lowercase hex without leading zeros ("0" for zero).
 * OTA_ERR_FORMAT for a negative or oversized serial. */
OTA_WUR int ota_cert_serial_hex(char out[OTA_CERT_SERIAL_HEX_MAX + 1], X509 *x);

/* notBefore / notAfter as seconds since the epoch. OTA_ERR_FORMAT if the
 * certificate's time cannot be converted. */
OTA_WUR int ota_cert_validity(int64_t *not_before, int64_t *not_after, X509 *x);

/* Canonical form of a serial given by a person ("0A1b", "0x0a1b"):
 * lowercase hex without leading zeros. OTA_ERR_FORMAT if not hex or
 * longer than OTA_CERT_SERIAL_HEX_MAX digits. */
OTA_WUR int ota_cert_serial_normalize(char out[OTA_CERT_SERIAL_HEX_MAX + 1], const char *in);

#endif
