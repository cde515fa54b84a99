/* Error texts and names for enum ota_err, and the optional error detail.
 *
 * Contract: ota_strerror and ota_errname return static strings, never
 * NULL; an unknown code gets a generic text and the name "unknown". The
 * names are stable identifiers (scripts and tests match on them): never
 * rename one, only add.
 */
#include "otachain/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ota_strerror(int err)
{
    switch (err) {
    case OTA_OK:
        return "Success.";
    case OTA_ERR_NOMEM:
        return "Out of memory: free some memory or lower the input size, then retry.";
    case OTA_ERR_INVALID_ARG:
        return "Invalid argument: a value given is not accepted here (see the detail); "
               "for a command, check its --help.";
    case OTA_ERR_IO:
        return "Input/output error while reading, writing, syncing or renaming a file: "
               "check the disk, free space and the path.";
    case OTA_ERR_NOT_FOUND:
        return "Not found: the file or remote object does not exist; check the path or URL.";
    case OTA_ERR_TOO_LARGE:
        return "Too large: the input exceeds its size limit and was refused before being "
               "processed.";
    case OTA_ERR_PERMISSION:
        return "Permission problem: access was denied, or the file is not a regular file "
               "or is readable by group or others (secret keys need mode 0600, e.g. chmod "
               "600 FILE).";
    case OTA_ERR_EXISTS:
        return "The file already exists and will not be overwritten: choose another path "
               "or remove the old file first.";
    case OTA_ERR_NETWORK:
        return "Network error (connection, TLS or HTTP status): check the server address, "
               "certificates and connectivity, then retry.";
    case OTA_ERR_CRYPTO:
        return "The cryptographic library failed internally: check the OpenSSL "
               "installation and available memory.";
    case OTA_ERR_UNSUPPORTED:
        return "Unsupported: this feature or format variant is not supported by this "
               "version of otachain.";
    case OTA_ERR_LOCKED:
        return "Locked: another otachain process holds the lock; wait for it to finish or "
               "stop it.";
    case OTA_ERR_JSON_SYNTAX:
        return "Malformed JSON: the document is not well-formed (see the line and column).";
    case OTA_ERR_JSON_DUP_KEY:
        return "Malformed JSON: an object has the same key twice; metadata with duplicate "
               "keys is ambiguous and refused.";
    case OTA_ERR_JSON_DEPTH:
        return "Malformed JSON: arrays and objects are nested deeper than allowed.";
    case OTA_ERR_JSON_REAL:
        return "Malformed JSON: a floating-point number appears where only integers are "
               "allowed (canonical JSON has integers only).";
    case OTA_ERR_JSON_KEY_CHARS:
        return "Malformed JSON: an object key contains characters other than printable "
               "ASCII.";
    case OTA_ERR_FORMAT:
        return "Bad format: the data is well-formed but a field is missing, malformed or "
               "of the wrong type.";
    case OTA_ERR_KEY_FORMAT:
        return "Bad key: the key file or key object is malformed or not an Ed25519 key.";
    case OTA_ERR_BAD_SIGNATURE:
        return "Bad signature: a signature did not verify; the data was altered or signed "
               "with another key.";
    case OTA_ERR_THRESHOLD:
        return "Not enough signatures: fewer valid signatures than the role's threshold; "
               "more signers must sign.";
    case OTA_ERR_DUP_SIGNATURE:
        return "Duplicate signature: two signature entries carry the same keyid; remove "
               "the duplicate.";
    case OTA_ERR_KEYID_MISMATCH:
        return "Keyid mismatch: a keyid is not the SHA-256 of its key's canonical JSON.";
    case OTA_ERR_WRONG_TYPE:
        return "Wrong metadata type: the file's _type is not the role that was expected.";
    case OTA_ERR_EXPIRED:
        return "Expired metadata: the repository is stale or replayed (freeze attack); the "
               "repository must re-sign it.";
    case OTA_ERR_ROLLBACK:
        return "Rollback refused: the version is lower than the one already trusted.";
    case OTA_ERR_VERSION_MISMATCH:
        return "Version mismatch: the version differs from the one pinned by the referring "
               "role (mix-and-match attack or inconsistent repository).";
    case OTA_ERR_HASH_MISMATCH:
        return "Hash mismatch: the bytes do not match the pinned SHA-256; the file was "
               "altered or corrupted in transit.";
    case OTA_ERR_LENGTH_MISMATCH:
        return "Length mismatch: the byte count differs from the pinned length.";
    case OTA_ERR_TARGET_UNKNOWN:
        return "Unknown target: the path is not listed in the trusted targets metadata.";
    case OTA_ERR_META_MISSING:
        return "Missing metadata: a role's file is no longer listed in the snapshot.";
    case OTA_ERR_SPEC_VERSION:
        return "Unsupported TUF spec_version: the metadata was written for a TUF "
               "specification this client does not support.";
    case OTA_ERR_NO_TRUSTED_ROOT:
        return "No trusted root: install an initial root.json before updating.";
    case OTA_ERR_KEY_NOT_IN_ROLE:
        return "The key is not one of the keys this role trusts: sign with a key the "
               "root lists for the role, or rotate the root to add it.";
    case OTA_ERR_UNVERIFIED:
        return "Unverified note: no signature by a trusted key verified; the note was "
               "signed by another key or the verifier key is not configured.";
    case OTA_ERR_QUORUM:
        return "Witness quorum not met: too few trusted witnesses cosigned the checkpoint; "
               "check that the witnesses are up and named in the ledger policy.";
    case OTA_ERR_STALE:
        return "Stale cosignatures: the quorum is met only when counting cosignatures older "
               "than the freshness window (or in the future); the log must have the checkpoint "
               "cosigned again (otachain repo refresh), or the view is frozen or replayed.";
    case OTA_ERR_ORIGIN:
        return "Unknown log origin: the checkpoint's origin is not a log the policy trusts.";
    case OTA_ERR_SPLIT_VIEW:
        return "Split view: the log's checkpoint is inconsistent with the one stored (a smaller "
               "tree, another root at the same size, or a tree that does not extend it); the "
               "log shows different histories to different clients: keep the evidence.";
    case OTA_ERR_NOT_IN_LOG:
        return "Not in the log: the metadata is not included in the cosigned checkpoint, so it "
               "was never published openly; do not trust it.";
    case OTA_ERR_BAD_MAGIC:
        return "Bad magic: the file is not of the expected kind (wrong file, or not an "
               "otachain binary file at all).";
    case OTA_ERR_FORMAT_VERSION:
        return "Unsupported format version: the file was written by a newer (or unknown) "
               "version of the format; upgrade otachain.";
    case OTA_ERR_TRUNCATED:
        return "Truncated: the data ends before the structure it announces; the file or "
               "download is incomplete.";
    case OTA_ERR_TRAILING_DATA:
        return "Trailing data: bytes follow the end of the structure; the file was "
               "altered or concatenated with something else.";
    case OTA_ERR_CHUNK_LENGTH:
        return "Bad chunk length: a chunk or compressed chunk length is zero or outside the "
               "bounds of the chunker parameters; the index is malformed.";
    case OTA_ERR_DECOMPRESS:
        return "Decompression failed: the compressed chunk is corrupt, needs too much memory "
               "or decodes to another length than the index says; the mirror served bad "
               "bytes.";
    case OTA_ERR_CHUNK_PARAMS:
        return "Bad chunker parameters: they need 64 <= min <= avg <= max <= 1 MiB, avg a "
               "power of two and a normalization level of 0 to 3.";
    case OTA_ERR_PROOF:
        return "Merkle proof does not verify: its hashes lead to another root, so the entry "
               "is not in that tree or the log shows two different histories (a fork); keep "
               "the evidence and do not trust the new state.";
    case OTA_ERR_PROOF_MALFORMED:
        return "Malformed Merkle proof: the number of hashes does not fit the index and tree "
               "sizes, or the index or sizes are out of range; the proof was truncated, "
               "padded or made for other sizes.";
    case OTA_ERR_DELTA_BASE:
        return "Delta for another image: the delta was made against a different from-image "
               "than the one installed; fetch the chunks (or the delta for this image) instead.";
    case OTA_ERR_DELTA_RANGE:
        return "Malformed delta: it copies from outside the from-image; the delta is corrupt "
               "or forged.";
    case OTA_ERR_DELTA_OVERRUN:
        return "Malformed delta: it would produce more bytes than its declared to-length; "
               "the delta is corrupt or forged.";
    }
    return "Unknown error code (a bug: the code is not an otachain error).";
}

const char *ota_errname(int err)
{
    switch (err) {
    case OTA_OK:
        return "ok";
    case OTA_ERR_NOMEM:
        return "nomem";
    case OTA_ERR_INVALID_ARG:
        return "invalid_arg";
    case OTA_ERR_IO:
        return "io";
    case OTA_ERR_NOT_FOUND:
        return "not_found";
    case OTA_ERR_TOO_LARGE:
        return "too_large";
    case OTA_ERR_PERMISSION:
        return "permission";
    case OTA_ERR_EXISTS:
        return "exists";
    case OTA_ERR_NETWORK:
        return "network";
    case OTA_ERR_CRYPTO:
        return "crypto";
    case OTA_ERR_UNSUPPORTED:
        return "unsupported";
    case OTA_ERR_LOCKED:
        return "locked";
    case OTA_ERR_JSON_SYNTAX:
        return "json_syntax";
    case OTA_ERR_JSON_DUP_KEY:
        return "json_dup_key";
    case OTA_ERR_JSON_DEPTH:
        return "json_depth";
    case OTA_ERR_JSON_REAL:
        return "json_real";
    case OTA_ERR_JSON_KEY_CHARS:
        return "json_key_chars";
    case OTA_ERR_FORMAT:
        return "format";
    case OTA_ERR_KEY_FORMAT:
        return "key_format";
    case OTA_ERR_BAD_SIGNATURE:
        return "bad_signature";
    case OTA_ERR_THRESHOLD:
        return "threshold";
    case OTA_ERR_DUP_SIGNATURE:
        return "dup_signature";
    case OTA_ERR_KEYID_MISMATCH:
        return "keyid_mismatch";
    case OTA_ERR_WRONG_TYPE:
        return "wrong_type";
    case OTA_ERR_EXPIRED:
        return "expired";
    case OTA_ERR_ROLLBACK:
        return "rollback";
    case OTA_ERR_VERSION_MISMATCH:
        return "version_mismatch";
    case OTA_ERR_HASH_MISMATCH:
        return "hash_mismatch";
    case OTA_ERR_LENGTH_MISMATCH:
        return "length_mismatch";
    case OTA_ERR_TARGET_UNKNOWN:
        return "target_unknown";
    case OTA_ERR_META_MISSING:
        return "meta_missing";
    case OTA_ERR_SPEC_VERSION:
        return "spec_version";
    case OTA_ERR_NO_TRUSTED_ROOT:
        return "no_trusted_root";
    case OTA_ERR_KEY_NOT_IN_ROLE:
        return "key_not_in_role";
    case OTA_ERR_UNVERIFIED:
        return "unverified";
    case OTA_ERR_QUORUM:
        return "quorum";
    case OTA_ERR_STALE:
        return "stale";
    case OTA_ERR_ORIGIN:
        return "origin";
    case OTA_ERR_SPLIT_VIEW:
        return "split_view";
    case OTA_ERR_NOT_IN_LOG:
        return "not_in_log";
    case OTA_ERR_BAD_MAGIC:
        return "bad_magic";
    case OTA_ERR_FORMAT_VERSION:
        return "format_version";
    case OTA_ERR_TRUNCATED:
        return "truncated";
    case OTA_ERR_TRAILING_DATA:
        return "trailing_data";
    case OTA_ERR_CHUNK_LENGTH:
        return "chunk_length";
    case OTA_ERR_DECOMPRESS:
        return "decompress";
    case OTA_ERR_CHUNK_PARAMS:
        return "chunk_params";
    case OTA_ERR_PROOF:
        return "proof";
    case OTA_ERR_PROOF_MALFORMED:
        return "proof_malformed";
    case OTA_ERR_DELTA_BASE:
        return "delta_base";
    case OTA_ERR_DELTA_RANGE:
        return "delta_range";
    case OTA_ERR_DELTA_OVERRUN:
        return "delta_overrun";
    }
    return "unknown";
}

void ota_detail_set(struct ota_detail *det, const char *fmt, ...)
{
    va_list ap;

    if (det == NULL)
        return;
    va_start(ap, fmt);
    /* Truncation is accepted: the detail is advisory text. */
    if (vsnprintf(det->msg, sizeof(det->msg), fmt, ap) < 0)
        det->msg[0] = '\0';
    va_end(ap);
}

/* An empty message becomes just "prefix" (no dangling ": "). */
void ota_detail_prefix(struct ota_detail *det, const char *prefix)
{
    char tmp[OTA_DETAIL_LEN];
    size_t plen;
    size_t mlen;
    size_t room;

    if (det == NULL || prefix == NULL)
        return;
    /* Built with memcpy rather than snprintf("%s: %s") so that a message
     * that was never set (not NUL-terminated) cannot be over-read. */
    mlen = strnlen(det->msg, sizeof(det->msg) - 1);
    plen = strlen(prefix);
    room = sizeof(tmp) - 1;
    if (plen > room)
        plen = room;
    memcpy(tmp, prefix, plen);
    room -= plen;
    if (mlen > 0) {
        size_t seplen = room < 2 ? room : 2;

        memcpy(tmp + plen, ": ", seplen);
        plen += seplen;
        room -= seplen;
        if (mlen > room)
            mlen = room;
        memcpy(tmp + plen, det->msg, mlen);
        plen += mlen;
    }
    tmp[plen] = '\0';
    memcpy(det->msg, tmp, plen + 1);
}
