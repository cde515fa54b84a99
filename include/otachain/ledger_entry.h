/* The ledger's entry record (docs/formats/ledger.md): one logged line set
 * per published version of root.json, targets.json or snapshot.json:
 *
 *   otachain-ledger-entry/v1\n
 *   role <root|targets|snapshot>\n
 *   version <decimal>\n
 *   length <decimal>\n
 *   sha256 <64 lowercase hex>\n
 *
 * A device computes the record of a file it holds from the file's bytes,
 * so it never trusts the log's copy of it; the log only proves that the
 * record was published.
 */
#ifndef OTACHAIN_LEDGER_ENTRY_H
#define OTACHAIN_LEDGER_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/tuf.h"

/* Longest record: header 25 + "role snapshot\n" 14 + "version " + 19 digits
 * + "\n" 28 + "length " + 20 digits + "\n" 28 + "sha256 " + 64 + "\n" 72. */
#define OTA_LEDGER_ENTRY_MAX   192
#define OTA_LEDGER_VERSION_MAX ((uint64_t)INT64_MAX)

struct ota_ledger_entry {
    enum ota_tuf_role role; /* OTA_TUF_ROOT, OTA_TUF_TARGETS or OTA_TUF_SNAPSHOT */
    uint64_t version;       /* 1 .. OTA_LEDGER_VERSION_MAX */
    uint64_t length;        /* bytes of the file as served */
    uint8_t sha256[OTA_SHA256_LEN];
};

/* The record of a metadata file: its role and version as given (the caller
 * has parsed and verified the file), its length and SHA-256 computed from
 * the bytes. OTA_ERR_INVALID_ARG for the timestamp role or version 0. */
OTA_WUR int ota_ledger_entry_of_file(struct ota_ledger_entry *out, enum ota_tuf_role role,
                                     uint64_t version, const void *file, size_t len);

/* Writes the record's exact bytes into out (no NUL added); *out_len is its
 * length (at most OTA_LEDGER_ENTRY_MAX). */
OTA_WUR int ota_ledger_entry_format(uint8_t out[OTA_LEDGER_ENTRY_MAX], size_t *out_len,
                                    const struct ota_ledger_entry *e);

/* Strict parse of a record: exactly the five lines above, no other byte.
 * OTA_ERR_FORMAT (det says which line) on any deviation, OTA_ERR_TOO_LARGE
 * beyond OTA_LEDGER_ENTRY_MAX bytes. On failure *out is zeroed. */
OTA_WUR int ota_ledger_entry_parse(struct ota_ledger_entry *out, const void *data, size_t len,
                                   struct ota_detail *det);

/* RFC 9162 leaf hash of the record: SHA-256(0x00 || record). */
OTA_WUR int ota_ledger_entry_leaf(uint8_t out[OTA_SHA256_LEN], const struct ota_ledger_entry *e);

#endif
