/* Signing TUF metadata (authoring side; not linked by the device agent). */
#ifndef OTACHAIN_TUF_SIGN_H
#define OTACHAIN_TUF_SIGN_H

#include <jansson.h>

#include "otachain/err.h"
#include "otachain/sign.h"

/* Signs the canonical JSON of doc["signed"] with s and stores the
 * signature in doc["signatures"], replacing an earlier entry with the same
 * keyid (a key never signs twice). doc must be an object with "signed"
 * and (possibly empty) "signatures". */
OTA_WUR int ota_tuf_sign(json_t *doc, const struct ota_signer *s);

/* Merges into `dst` every signature of `src` whose keyid `dst` lacks.
 * Both documents must have canonically identical "signed" parts, else
 * OTA_ERR_FORMAT ("signed parts differ"). Signatures are copied, not
 * verified: the caller verifies the result against the role. */
OTA_WUR int ota_tuf_merge_signatures(json_t *dst, const json_t *src, struct ota_detail *det);

#endif
