/* Uploads of pending targets versions and the server's publish
 * (docs/api/admin-v1.md, "POST /admin/v1/metadata/targets"; docs/server.md,
 * "Publishing").
 *
 * An admin with the release scope uploads a targets metadata file that
 * signers made offline (`otachain release add` / `release sign` in their
 * copy of the repository), after its blobs (PUT /admin/v1/blobs/...).
 * Everything runs through the authoring library (repo.h, publish.h) over
 * the repository directory, under its lock:
 *
 *   loop: token checked ─► file thread: judge ─► store pending
 *        ─► below the targets threshold: 200, the signers still missing
 *        ─► at the threshold: ota_publish_begin (entries committed)
 *   loop: the witness round, driven by witness_driver.h (no transaction
 *         open, the loop never waits)
 *   file thread: ota_publish_end (live only with every quorum) ─► reload
 *   loop: 200 published, or 503 quorum with nothing public changed
 *
 * Judging refuses, with nothing stored: a file that is not targets
 * metadata; a version not above the published one or below a pending
 * one; a signature by a key that is not a targets key of the root in
 * force at publish, or that does not verify (bad_signature, naming the
 * key); the same version with other signed content than the pending one
 * (exists); a target whose blob is not in blobs/ with its length. The
 * same version as the pending one merges the signatures
 * (ota_repo_merge, the library's ota_tuf_merge_signatures).
 */
#ifndef OTACHAIN_SERVER_PENDING_H
#define OTACHAIN_SERVER_PENDING_H

#include <stddef.h>
#include <stdint.h>

struct srv_req;

/* Takes over r (token and scope already checked): body is r's. */
void srv_pending_targets(struct srv_req *r);

#endif
