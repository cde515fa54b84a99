/* Policy authoring: the "x-otachain-ledger" member of root.json
 * (docs/formats/ledger.md, "The log's identity") written by repo init and
 * changed by root rotate, and the witnesses as given to them. The policy
 * lines are C2SP tlog-policy; every object built here is checked by
 * parsing it back (ota_tlog_policy_from_ledger).
 */
#ifndef OTACHAIN_LEDGER_POLICY_H
#define OTACHAIN_LEDGER_POLICY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/checkpoint.h"
#include "otachain/err.h"
#include "otachain/tuf.h"
#include "otachain/note.h"
#include "otachain/tlog_policy.h"

/* A witness as given on a command line or in a request: NAME=VKEY@URL. */
struct ota_ledger_witness {
    char name[OTA_TLOG_POLICY_MAX_NAME + 1];
    char vkey[OTA_NOTE_VKEY_SIZE];
    char url[OTA_TLOG_POLICY_MAX_URL + 1];
};

/* Parses NAME=VKEY@URL (VKEY a cosignature/v1 verifier key; NAME not
 * "none" or "witnesses", the names the policy uses itself; URL http:// or
 * https:// and a host: publish posts to URL/add-checkpoint).
 * OTA_ERR_INVALID_ARG with det when malformed. */
OTA_WUR int ota_ledger_witness_parse(struct ota_ledger_witness *w, const char *arg,
                                     struct ota_detail *det);

/* Builds the "x-otachain-ledger" object: origin, policy lines ("log
 * <vkey>", "witness <name> <vkey> <url>"..., "group witnesses <k>
 * <names>", "quorum witnesses"; "quorum none" without witnesses) and
 * max_age. quorum 0 means all witnesses. OTA_ERR_INVALID_ARG for a quorum
 * above the number of witnesses or two witnesses with one key (the quorum
 * would count one signer twice). */
OTA_WUR int ota_ledger_json(json_t **out, const char *origin, const char *log_vkey,
                            const struct ota_ledger_witness *ws, size_t nw, uint64_t quorum,
                            int64_t max_age, struct ota_detail *det);

/* Changes the witnesses of the "x-otachain-ledger" object in a root's
 * signed part: removes the names in rm, adds add, and sets the quorum
 * (quorum_arg NULL: keep the old threshold, "all" if it was all).
 * OTA_ERR_NOT_FOUND when the root carries no ledger, OTA_ERR_INVALID_ARG
 * (det says which) for an unknown or duplicate name or a bad quorum. */
OTA_WUR int ota_ledger_rotate_json(json_t *signed_part, const struct ota_ledger_witness *add,
                                   size_t nadd, const char *const *rm, size_t nrm,
                                   const char *quorum_arg, struct ota_detail *det);

/* The log's verifier key (C2SP note vkey, what each witness's [log]
 * section needs as `key`) and origin, from root's ledger policy.
 * OTA_ERR_NOT_FOUND when root names no ledger. */
OTA_WUR int ota_ledger_log_key(char vkey[OTA_NOTE_VKEY_SIZE],
                               char origin[OTA_CHECKPOINT_MAX_ORIGIN + 1],
                               const struct ota_tuf_meta *root, struct ota_detail *det);

#endif
