/* The proof bundle builder (docs/formats/bundle.md, "Building one"): the
 * authoring side's part of proof bundles, used by `otachain repo bundle`
 * and by the update server for its check-in answers.
 *
 * It reads a published repository through a struct ota_fetcher, the one
 * reader interface of the project: ota_fetcher_dir_new over DIR/public
 * is the files implementation; a server plugs its own store as a fetcher
 * serving the same names (metadata: "N.root.json", "timestamp.json",
 * "V.snapshot.json", "V.targets.json"; ledger: "checkpoint",
 * "root-checkpoint/N", "index/<role>/<version>", "tile/...").
 *
 * Nothing is signed here: the builder only gathers bytes and builds
 * proofs from the log's tiles, checks them against the signed roots (so
 * it never ships a bundle its own repository contradicts), and encodes.
 */
#ifndef OTACHAIN_BUNDLE_BUILD_H
#define OTACHAIN_BUNDLE_BUILD_H

#include "otachain/buf.h"
#include "otachain/bundle.h"
#include "otachain/err.h"
#include "otachain/fetch.h"

/* Appends to out (its cap is the caller's limit on the bundle, at most
 * OTA_BUNDLE_MAX_LEN of it is used) the bundle for a device at req, read
 * through repo. Reads timestamp.json first and the checkpoint after it, so
 * the checkpoint is at least as new as the timestamp it vouches for.
 * Errors:
 *   OTA_ERR_BUNDLE_BASE   req's root version is not one of the
 *                         repository's, or its checkpoint size is beyond
 *                         the log's;
 *   OTA_ERR_NOT_FOUND     a file the bundle needs is missing (det names it);
 *   OTA_ERR_NOT_IN_LOG    a file is not the one the log recorded, or
 *                         OTA_ERR_PROOF the tiles do not hash to the
 *                         signed roots (a broken repository: the bundle
 *                         would be refused anyway);
 *   OTA_ERR_SPLIT_VIEW    a per-root checkpoint is newer than the log's
 *                         checkpoint (a publish between the reads: retry);
 *   OTA_ERR_TOO_LARGE     the bundle exceeds out's cap or a format cap;
 *   parse errors of the repository's files, and the reader's errors.
 * On failure out is left as it was. */
OTA_WUR int ota_bundle_build(struct ota_buf *out, const struct ota_fetcher *repo,
                             const struct ota_bundle_request *req, struct ota_detail *det);

#endif
