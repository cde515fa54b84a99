/* Inside the device agent's sources (agent.h): the verified repository
 * both sources stand on (lib/agent_mirror.c). One verification, two
 * sources (DESIGN §6): the mirror source runs it against its mirror list,
 * the update-server source (lib/agent_server.c) against the server's
 * device listener, after the check-in.
 *
 * A repository session holds the base URLs to try, the trusted state
 * directory, one HTTP policy for every transfer of a round (with its
 * round deadline) and, after a successful verify, the TUF client that
 * verified and its fetcher.
 */
#ifndef OTACHAIN_AGENT_INT_H
#define OTACHAIN_AGENT_INT_H

#include "otachain/agent.h"
#include "otachain/checkin.h"
#include "otachain/http.h"

struct agent_repo;

/* Copies what cfg names; kind ("mirror", "server": a static string)
 * names the base URLs in log lines. OTA_ERR_INVALID_ARG for 0 or too many
 * URLs. */
OTA_WUR int agent_repo_new(struct agent_repo **out, const char *kind,
                           const struct ota_mirror_cfg *cfg, struct ota_detail *det);
void agent_repo_free(struct agent_repo *r);

/* The policy every transfer of the session uses (the check-in too). */
const struct ota_http_policy *agent_repo_http(const struct agent_repo *r);

/* Starts a round: one deadline for every transfer until the next start. */
void agent_repo_round_start(struct agent_repo *r);

/* Runs the TUF workflow with the ledger rule against the base URLs in
 * order until one verifies; each one that fails is logged and dropped for
 * the round. The last failure's error (det names the URL) when none
 * verifies. */
OTA_WUR int agent_repo_verify(struct agent_repo *r, struct ota_detail *det);

/* The same workflow with every metadata file and proof from a proof
 * bundle (docs/formats/bundle.md; data, len: its bytes) instead of the
 * repository layout; target files then come from the first base URL.
 * The bundle parser's errors, OTA_ERR_BUNDLE_BASE (made for another
 * trusted state) and OTA_ERR_BUNDLE_INCOMPLETE besides verify's. */
OTA_WUR int agent_repo_verify_bundle(struct agent_repo *r, const uint8_t *data, size_t len,
                                     struct ota_detail *det);

/* After verify: the installed release as the trusted targets name it
 * (SHA-256, length, security version, target; for chunk reuse and
 * deltas). out is left alone when they do not name it. */
void agent_repo_installed(const struct agent_repo *r, struct ota_journal_release *out,
                          const struct ota_device_view *dev);

/* After verify: the newest release for this device that the release
 * rules allow and that did not fail here (*found false when none). */
OTA_WUR int agent_repo_choose(struct agent_repo *r, struct ota_offer *out, bool *found,
                              const struct ota_device_view *dev, struct ota_detail *det);

/* After verify: the release at target, when the verified targets list it
 * as an image of this length and SHA-256 (else OTA_ERR_TARGET_UNKNOWN,
 * OTA_ERR_LENGTH_MISMATCH, OTA_ERR_HASH_MISMATCH), the release rules allow
 * it (their errors) and it did not fail here (OTA_ERR_BLOCKED). */
OTA_WUR int agent_repo_judge(struct agent_repo *r, struct ota_offer *out, const char *target,
                             const uint8_t sha256[OTA_SHA256_LEN], uint64_t length,
                             const struct ota_device_view *dev, struct ota_detail *det);

/* After verify: builds the offered image (source fetch contract, agent.h),
 * trying the other base URLs (each verified first) when the one in use
 * fails. */
OTA_WUR int agent_repo_fetch(struct agent_repo *r, const struct ota_offer *offer,
                             const struct ota_install_dst *dst, struct ota_detail *det);

/* What the device trusts, for a check-in: root, timestamp, snapshot and
 * targets versions and the stored checkpoint, from the session's client,
 * or else from the trusted state (opened, with the bootstrap root when it
 * holds none yet, and closed again). */
OTA_WUR int agent_repo_trusted(struct agent_repo *r, struct ota_checkin *c, struct ota_detail *det);

#endif
