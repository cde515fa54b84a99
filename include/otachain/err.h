/* otachain error codes.
 *
 * Every fallible libotachain function returns int: 0 on success or a
 * negative enum ota_err value on failure. ota_strerror() gives a sentence a
 * person can act on; callers add the "where" (file, URL, role) themselves.
 */
#ifndef OTACHAIN_ERR_H
#define OTACHAIN_ERR_H

#define OTA_WUR __attribute__((warn_unused_result))

/* The one table of error codes: X(SUFFIX, value, "name", "text").
 * The enum, ota_errname() and ota_strerror() are all generated from it,
 * so a code cannot exist without its stable name and its sentence.
 * Names are stable identifiers (scripts and tests match on them): never
 * rename or renumber one, only add. The text says what went wrong and
 * what a person can do; callers add the "where" in struct ota_detail. */
#define OTA_ERR_TABLE(X)                                                                           \
    /* generic */                                                                                  \
    X(NOMEM, -1, "nomem", "Out of memory: free some memory or lower the input size, then retry.")  \
    X(INVALID_ARG, -2, "invalid_arg",                                                              \
      "Invalid argument: a value given is not accepted here (see the detail); "                    \
      "for a command, check its --help.")                                                          \
    X(IO, -3, "io",                                                                                \
      "Input/output error while reading, writing, syncing or renaming a file: "                    \
      "check the disk, free space and the path.")                                                  \
    X(NOT_FOUND, -4, "not_found",                                                                  \
      "Not found: the file or remote object does not exist; check the path or URL.")               \
    X(TOO_LARGE, -5, "too_large",                                                                  \
      "Too large: the input exceeds its size limit and was refused before being "                  \
      "processed.")                                                                                \
    X(PERMISSION, -6, "permission",                                                                \
      "Permission problem: access was denied, or the file may not be used as it is "               \
      "(see the detail: what is wrong with it and how to fix it).")                                \
    X(EXISTS, -7, "exists",                                                                        \
      "The file already exists and will not be overwritten: choose another path "                  \
      "or remove the old file first.")                                                             \
    X(NETWORK, -8, "network",                                                                      \
      "Network error (connection, TLS or HTTP status): check the server address, "                 \
      "certificates and connectivity, then retry.")                                                \
    X(CRYPTO, -9, "crypto",                                                                        \
      "The cryptographic library failed internally: check the OpenSSL "                            \
      "installation and available memory.")                                                        \
    X(UNSUPPORTED, -10, "unsupported",                                                             \
      "Unsupported: this feature or format variant is not supported by this "                      \
      "version of otachain.")                                                                      \
    X(LOCKED, -11, "locked",                                                                       \
      "Locked: another otachain process holds the lock; wait for it to finish or "                 \
      "stop it.")                                                                                  \
    /* parsing */                                                                                  \
    X(JSON_SYNTAX, -20, "json_syntax",                                                             \
      "Malformed JSON: the document is not well-formed (see the line and column).")                \
    X(JSON_DUP_KEY, -21, "json_dup_key",                                                           \
      "Malformed JSON: an object has the same key twice; metadata with duplicate "                 \
      "keys is ambiguous and refused.")                                                            \
    X(JSON_DEPTH, -22, "json_depth",                                                               \
      "Malformed JSON: arrays and objects are nested deeper than allowed.")                        \
    X(JSON_REAL, -23, "json_real",                                                                 \
      "Malformed JSON: a floating-point number appears where only integers are "                   \
      "allowed (canonical JSON has integers only).")                                               \
    X(JSON_KEY_CHARS, -24, "json_key_chars",                                                       \
      "Malformed JSON: an object key contains characters other than printable "                    \
      "ASCII.")                                                                                    \
    X(FORMAT, -25, "format",                                                                       \
      "Bad format: the data is well-formed but a field is missing, malformed or "                  \
      "of the wrong type.")                                                                        \
    X(KEY_FORMAT, -26, "key_format",                                                               \
      "Bad key: the key file or key object is malformed or not an Ed25519 key.")                   \
    /* TUF verification */                                                                         \
    X(BAD_SIGNATURE, -40, "bad_signature",                                                         \
      "Bad signature: a signature did not verify; the data was altered or signed "                 \
      "with another key.")                                                                         \
    X(THRESHOLD, -41, "threshold",                                                                 \
      "Not enough signatures: fewer valid signatures than the role's threshold; "                  \
      "more signers must sign.")                                                                   \
    X(DUP_SIGNATURE, -42, "dup_signature",                                                         \
      "Duplicate signature: two signature entries carry the same keyid; remove "                   \
      "the duplicate.")                                                                            \
    X(KEYID_MISMATCH, -43, "keyid_mismatch",                                                       \
      "Keyid mismatch: a keyid is not the SHA-256 of its key's canonical JSON.")                   \
    X(WRONG_TYPE, -44, "wrong_type",                                                               \
      "Wrong metadata type: the file's _type is not the role that was expected.")                  \
    X(EXPIRED, -45, "expired",                                                                     \
      "Expired metadata: the repository is stale or replayed (freeze attack); the "                \
      "repository must re-sign it.")                                                               \
    X(ROLLBACK, -46, "rollback",                                                                   \
      "Rollback refused: the version is lower than the one already trusted.")                      \
    X(VERSION_MISMATCH, -47, "version_mismatch",                                                   \
      "Version mismatch: the version differs from the one pinned by the referring "                \
      "role (mix-and-match attack or inconsistent repository).")                                   \
    X(HASH_MISMATCH, -48, "hash_mismatch",                                                         \
      "Hash mismatch: the bytes do not match the pinned SHA-256; the file was "                    \
      "altered or corrupted in transit.")                                                          \
    X(LENGTH_MISMATCH, -49, "length_mismatch",                                                     \
      "Length mismatch: the byte count differs from the pinned length.")                           \
    X(TARGET_UNKNOWN, -51, "target_unknown",                                                       \
      "Unknown target: the path is not listed in the trusted targets metadata.")                   \
    X(META_MISSING, -52, "meta_missing",                                                           \
      "Missing metadata: a role's file is no longer listed in the snapshot.")                      \
    X(SPEC_VERSION, -53, "spec_version",                                                           \
      "Unsupported TUF spec_version: the metadata was written for a TUF "                          \
      "specification this client does not support.")                                               \
    X(NO_TRUSTED_ROOT, -54, "no_trusted_root",                                                     \
      "No trusted root: install an initial root.json before updating.")                            \
    X(KEY_NOT_IN_ROLE, -55, "key_not_in_role",                                                     \
      "The key is not one of the keys this role trusts: sign with a key the "                      \
      "root lists for the role, or rotate the root to add it.")                                    \
    /* signed notes, checkpoints and the ledger policy */                                          \
    X(UNVERIFIED, -60, "unverified",                                                               \
      "Unverified note: no signature by a trusted key verified; the note was "                     \
      "signed by another key or the verifier key is not configured.")                              \
    X(QUORUM, -61, "quorum",                                                                       \
      "Witness quorum not met: too few trusted witnesses cosigned the checkpoint; "                \
      "check that the witnesses are up and named in the ledger policy.")                           \
    X(STALE, -62, "stale",                                                                         \
      "Stale cosignatures: the quorum is met only when counting cosignatures older "               \
      "than the freshness window (or in the future); the log must have the checkpoint "            \
      "cosigned again (otachain repo refresh), or the view is frozen or replayed.")                \
    X(ORIGIN, -63, "origin",                                                                       \
      "Unknown log origin: the checkpoint's origin is not a log the policy trusts.")               \
    X(SPLIT_VIEW, -64, "split_view",                                                               \
      "Split view: the log's checkpoint is inconsistent with the one stored (a smaller "           \
      "tree, another root at the same size, or a tree that does not extend it); the "              \
      "log shows different histories to different clients: keep the evidence.")                    \
    X(NOT_IN_LOG, -65, "not_in_log",                                                               \
      "Not in the log: the metadata is not included in the cosigned checkpoint, so it "            \
      "was never published openly; do not trust it.")                                              \
    /* binary formats and the data plane: chunk index, pack, chunker */                            \
    X(BAD_MAGIC, -80, "bad_magic",                                                                 \
      "Bad magic: the file is not of the expected kind (wrong file, or not an "                    \
      "otachain binary file at all).")                                                             \
    X(FORMAT_VERSION, -81, "format_version",                                                       \
      "Unsupported format version: the file was written by a newer (or unknown) "                  \
      "version of the format; upgrade otachain.")                                                  \
    X(TRUNCATED, -82, "truncated",                                                                 \
      "Truncated: the data ends before the structure it announces; the file or "                   \
      "download is incomplete.")                                                                   \
    X(TRAILING_DATA, -83, "trailing_data",                                                         \
      "Trailing data: bytes follow the end of the structure; the file was "                        \
      "altered or concatenated with something else.")                                              \
    X(CHUNK_LENGTH, -84, "chunk_length",                                                           \
      "Bad chunk length: a chunk or compressed chunk length is zero or outside the "               \
      "bounds of the chunker parameters; the index is malformed.")                                 \
    X(DECOMPRESS, -85, "decompress",                                                               \
      "Decompression failed: the compressed chunk is corrupt, needs too much memory "              \
      "or decodes to another length than the index says; the mirror served bad "                   \
      "bytes.")                                                                                    \
    X(CHUNK_PARAMS, -86, "chunk_params",                                                           \
      "Bad chunker parameters: they need 64 <= min <= avg <= max <= 1 MiB, avg a "                 \
      "power of two and a normalization level of 0 to 3.")                                         \
    /* Merkle log proofs */                                                                        \
    X(PROOF, -70, "proof",                                                                         \
      "Merkle proof does not verify: its hashes lead to another root, so the entry "               \
      "is not in that tree or the log shows two different histories (a fork); keep "               \
      "the evidence and do not trust the new state.")                                              \
    X(PROOF_MALFORMED, -71, "proof_malformed",                                                     \
      "Malformed Merkle proof: the number of hashes does not fit the index and tree "              \
      "sizes, or the index or sizes are out of range; the proof was truncated, "                   \
      "padded or made for other sizes.")                                                           \
    /* reference deltas */                                                                         \
    X(DELTA_BASE, -90, "delta_base",                                                               \
      "Delta for another image: the delta was made against a different from-image "                \
      "than the one installed; fetch the chunks (or the delta for this image) instead.")           \
    X(DELTA_RANGE, -91, "delta_range",                                                             \
      "Malformed delta: it copies from outside the from-image; the delta is corrupt "              \
      "or forged.")                                                                                \
    X(DELTA_OVERRUN, -92, "delta_overrun",                                                         \
      "Malformed delta: it would produce more bytes than its declared to-length; "                 \
      "the delta is corrupt or forged.")                                                           \
    /* authoring: publish, witness round, file-system layer (-100..-119) */                        \
    /* device verification: time floor, root chain, proof bundles (-120..-139) */                  \
    X(BUNDLE_INCOMPLETE, -120, "bundle_incomplete",                                                \
      "Incomplete proof bundle: it lacks a file or proof this device needs (see the detail); "     \
      "ask the server for a new bundle, giving the device's current state.")                       \
    X(BUNDLE_BASE, -121, "bundle_base",                                                            \
      "Proof bundle for another state: it starts from another root version or checkpoint size "    \
      "than this device trusts; ask for a bundle made for the device's current state.")            \
    /* transfers and outputs: HTTP policy, slow retrieval, slots (-140..-159) */                   \
    X(SLOW_RETRIEVAL, -140, "slow_retrieval",                                                      \
      "Slow retrieval: the server sent too slowly, stalled or did not finish in time (a slow "     \
      "retrieval attack or a poor link); nothing unverified was kept: retry, or use another "      \
      "mirror.")                                                                                   \
    X(HTTP_FRAMING, -141, "http_framing",                                                          \
      "Malformed HTTP answer: its Content-Range or multipart/byteranges framing breaks the "       \
      "rules, or names other bytes than those asked for; the mirror (or a proxy before it) is "    \
      "broken or hostile: use another one.")                                                       \
    X(NO_SPACE, -142, "no_space",                                                                  \
      "Not enough space: the output (file system or slot) cannot hold the image; nothing was "     \
      "written: free space or choose a larger slot.")                                              \
    X(SLOT_MOUNTED, -143, "slot_mounted",                                                          \
      "The slot is in use (mounted, or held by another user of the device): an update never "      \
      "writes a slot in use; unmount it or name the other slot.")                                  \
    X(SLOT_BOOTED, -144, "slot_booted",                                                            \
      "The slot is the one the system booted from: an update writes the other slot.")              \
    /* releases: SemVer, product, hardware, security floor (-160..-179) */                         \
    X(SEMVER, -160, "semver",                                                                      \
      "Not a SemVer 2.0.0 version: expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], "              \
      "numbers without leading zeros (e.g. 1.2.3, 2.0.0-rc.1, 1.0.0+build.5).")                    \
    X(RELEASE_ID, -161, "release_id",                                                              \
      "Bad product or hardware id: a product is 1-64 characters of A-Z a-z 0-9 . _ -, a "          \
      "hardware id 1-64 of A-Z a-z 0-9 . _ - + :, each listed once; no spaces (signed "            \
      "ids are never trimmed).")                                                                   \
    X(HARDWARE_IDS, -162, "hardware_ids",                                                          \
      "Too many hardware ids: a release names at most 64 compatible hardware ids; split "          \
      "the boards into several releases or give them a common id.")                                \
    X(RELEASE_FORMAT, -163, "release_format",                                                      \
      "Malformed release: the image target's custom lacks product, hardware, version or "          \
      "security_version, or one has the wrong type or range; no device installs it.")              \
    X(OTHER_PRODUCT, -164, "other_product",                                                        \
      "Other product: the release is for another product than this device's; it is not "           \
      "installed.")                                                                                \
    X(OTHER_HARDWARE, -165, "other_hardware",                                                      \
      "Other hardware: the release does not list this device's hardware id; it is not "            \
      "installed on this board.")                                                                  \
    X(NOT_NEWER, -166, "not_newer",                                                                \
      "Not newer: the release's version does not have higher SemVer precedence than the "          \
      "installed one; a downgrade or a reinstall is refused.")                                     \
    X(SECURITY_FLOOR, -167, "security_floor",                                                      \
      "Below the security floor: the release's security version is lower than the "                \
      "device's anti-rollback floor (a rollback to firmware with known flaws); it is "             \
      "refused.")                                                                                  \
    /* update server: device and admin API, fleet CA (-180..-199) */                               \
    X(AUTH, -180, "unauthenticated",                                                               \
      "Not authenticated: no client certificate or token was presented, or one the server does "   \
      "not know; present a certificate of the fleet CA or a valid token.")                         \
    X(SCOPE, -181, "scope",                                                                        \
      "Not allowed: the token lacks the scope this action needs; use a token with that scope "     \
      "(otachain-server token create --scope ...).")                                               \
    X(REVOKED, -182, "revoked",                                                                    \
      "Revoked: the certificate, device or token was revoked; issue a new credential if this "     \
      "is a mistake.")                                                                             \
    X(CERT_EXPIRED, -183, "cert_expired",                                                          \
      "Certificate expired or not yet valid: renew it before its notAfter (otachain ca "           \
      "sign-csr, or the device API's renewal) and check the clocks.")                              \
    X(CERT_ROLE, -184, "cert_role",                                                                \
      "Wrong certificate role: the certificate is not of the role this listener accepts "          \
      "(device, admin or server policy OID and extended key usage); issue one with otachain ca.")  \
    X(BUSY, -185, "busy",                                                                          \
      "Busy: the server is shutting down or its database queue is full; nothing was stored, "      \
      "retry later.")                                                                              \
    X(SCHEMA, -186, "schema",                                                                      \
      "Database schema not supported: the database was written by a newer otachain-server or "     \
      "is not one of its databases; use a matching server version.")                               \
    X(LOG_ROLLBACK, -187, "log_rollback",                                                          \
      "The log database is older than the checkpoint the server published (restored from an "      \
      "old backup?): serving it would fork the log; rebuild it from the public tiles "             \
      "(docs/server.md).")                                                                         \
    /* device agent: bootloader, slots, install journal (-200..-219) */                            \
    X(BOOTENV_CONFIG, -200, "bootenv_config",                                                      \
      "Bootloader environment not configured: its configuration (e.g. fw_env.config) is "          \
      "missing or malformed, so no update can be armed; fix the configuration file.")              \
    X(BOOTENV_CRC, -201, "bootenv_crc",                                                            \
      "Bootloader environment unreadable: no copy has a valid CRC, so the bootloader runs on "     \
      "its built-in default environment; no update is armed until a valid environment is "         \
      "written (e.g. with fw_setenv).")                                                            \
    X(BOOTENV_READONLY, -202, "bootenv_readonly",                                                  \
      "Bootloader environment read-only: it cannot be opened for writing (boot partition "         \
      "mounted read-only, write-protected device or wrong permissions), so no update can be "      \
      "armed.")                                                                                    \
    X(BOOTENV_VERIFY, -203, "bootenv_verify",                                                      \
      "Bootloader environment did not keep what was written: reading it back after a store "       \
      "gave other values; the storage may be failing.")                                            \
    X(BOOTENV_STATE, -204, "bootenv_state",                                                        \
      "Bootloader environment holds values the agent does not understand (unknown slot, "          \
      "malformed counter): fix them with fw_setenv or the board's tool.")                          \
    X(SLOT_UNKNOWN, -205, "slot_unknown",                                                          \
      "Booted slot unknown: the kernel command line names no configured slot (otachain.slot= "     \
      "or root=); check the boot script and the [slot] sections of the configuration.")            \
    X(HOOK_FAILED, -206, "hook_failed",                                                            \
      "A hook failed: the configured hook program exited non-zero or could not be run; see "       \
      "its output in the agent's log.")                                                            \
    X(HOOK_TIMEOUT, -207, "hook_timeout",                                                          \
      "A hook timed out: the configured hook program ran longer than its timeout and was "         \
      "killed.")                                                                                   \
    X(HEALTH_CHECK, -208, "health_check",                                                          \
      "Health check failed on the trial boot of a new release: the device rolled back to the "     \
      "previous slot; the release is not retried automatically.")                                  \
    X(FELL_BACK, -209, "fell_back",                                                                \
      "The new slot never reached the agent: the bootloader's boot counter ran out and it "        \
      "booted the previous slot again; the release is not retried automatically.")                 \
    X(JOURNAL, -210, "journal",                                                                    \
      "The install journal in the state directory is malformed or unreadable (a damaged data "     \
      "partition or a hand edit): the agent writes and updates nothing until it is restored; "     \
      "see docs/agent.md, Troubleshooting.")                                                       \
    X(CONFIG, -211, "config",                                                                      \
      "Bad agent configuration: a key is unknown, missing, duplicated or malformed (see the "      \
      "detail for the file, section and key).")                                                    \
    X(NO_SOURCE, -212, "no_source",                                                                \
      "No update source answered correctly this round: every configured source failed or was "     \
      "refused (each one's error is in the log); the agent retries at the next poll.")             \
    X(BLOCKED, -213, "blocked",                                                                    \
      "Release not retried: it failed on this device before (rolled back); publish a newer "       \
      "release, or clear it with otachain-agent unblock.")                                         \
    X(REBOOT, -215, "reboot",                                                                      \
      "The reboot command failed: the update is armed and will run at the next reboot; check "     \
      "the configured reboot command.")

enum ota_err {
    OTA_OK = 0,
#define OTA_ERR_ENUM_(sfx, val, name, text) OTA_ERR_##sfx = val,
    OTA_ERR_TABLE(OTA_ERR_ENUM_)
#undef OTA_ERR_ENUM_
};

/* Every failure code in table order, and how many there are (for tests
 * and for programs that list the codes, e.g. in --help). */
extern const int ota_err_codes[];
extern const unsigned ota_err_count;

/* Returns a static, human-readable sentence for an error code (never NULL). */
const char *ota_strerror(int err);

/* Returns a short stable identifier for an error code, e.g. "rollback"
 * (never NULL); used in machine-readable CLI output and tests. */
const char *ota_errname(int err);

/* Optional error detail: the "what and where" a caller can print after
 * ota_strerror(), e.g. "timestamp.json: version 3 < trusted version 5".
 * Functions take `struct ota_detail *det` last; NULL means not wanted. */
#define OTA_DETAIL_LEN 512
struct ota_detail {
    char msg[OTA_DETAIL_LEN];
};

/* printf into det->msg (truncating); no-op when det is NULL. */
void ota_detail_set(struct ota_detail *det, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to det->msg (truncating); no-op when det is NULL. */
void ota_detail_prefix(struct ota_detail *det, const char *prefix);

#endif
