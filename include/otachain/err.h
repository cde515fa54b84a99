/* otachain error codes.
 *
 * Every fallible libotachain function returns int: 0 on success or a
 * negative enum ota_err value on failure. ota_strerror() gives a sentence a
 * person can act on; callers add the "where" (file, URL, role) themselves.
 */
#ifndef OTACHAIN_ERR_H
#define OTACHAIN_ERR_H

#define OTA_WUR __attribute__((warn_unused_result))

enum ota_err {
    OTA_OK = 0,
    /* generic */
    OTA_ERR_NOMEM = -1,        /* allocation failed */
    OTA_ERR_INVALID_ARG = -2,  /* caller passed a bad argument */
    OTA_ERR_IO = -3,           /* read/write/fsync/rename failed (see errno) */
    OTA_ERR_NOT_FOUND = -4,    /* file or remote object does not exist */
    OTA_ERR_TOO_LARGE = -5,    /* input exceeds its hard cap */
    OTA_ERR_PERMISSION = -6,   /* file permissions unsafe or access denied */
    OTA_ERR_EXISTS = -7,       /* refusing to overwrite an existing file */
    OTA_ERR_NETWORK = -8,      /* transport error (connect, TLS, HTTP status) */
    OTA_ERR_CRYPTO = -9,       /* the crypto library failed internally */
    OTA_ERR_UNSUPPORTED = -10, /* feature or format variant not supported */
    OTA_ERR_LOCKED = -11,      /* another process holds the lock */
    /* parsing */
    OTA_ERR_JSON_SYNTAX = -20,    /* not well-formed JSON */
    OTA_ERR_JSON_DUP_KEY = -21,   /* object has a duplicate key */
    OTA_ERR_JSON_DEPTH = -22,     /* nesting deeper than the cap */
    OTA_ERR_JSON_REAL = -23,      /* floating-point number where TUF forbids it */
    OTA_ERR_JSON_KEY_CHARS = -24, /* object key not printable ASCII */
    OTA_ERR_FORMAT = -25,         /* well-formed but fields missing or of the wrong type */
    OTA_ERR_KEY_FORMAT = -26,     /* key file or key object malformed */
    /* TUF verification */
    OTA_ERR_BAD_SIGNATURE = -40,    /* a signature did not verify */
    OTA_ERR_THRESHOLD = -41,        /* fewer valid signatures than the role's threshold */
    OTA_ERR_DUP_SIGNATURE = -42,    /* two signature entries carry the same keyid */
    OTA_ERR_KEYID_MISMATCH = -43,   /* a keyid is not the SHA-256 of its key */
    OTA_ERR_WRONG_TYPE = -44,       /* metadata _type is not the expected role */
    OTA_ERR_EXPIRED = -45,          /* metadata expired (freeze attack or stale repository) */
    OTA_ERR_ROLLBACK = -46,         /* version lower than the trusted one */
    OTA_ERR_VERSION_MISMATCH = -47, /* version differs from the one pinned by the referring role */
    OTA_ERR_HASH_MISMATCH = -48,    /* bytes do not match the pinned SHA-256 */
    OTA_ERR_LENGTH_MISMATCH = -49,  /* byte count differs from the pinned length */
    OTA_ERR_TARGET_UNKNOWN = -51,   /* target path not listed in trusted targets */
    OTA_ERR_META_MISSING = -52,     /* a role's file is no longer listed (removed from snapshot) */
    OTA_ERR_SPEC_VERSION = -53,     /* unsupported TUF spec_version */
    OTA_ERR_NO_TRUSTED_ROOT = -54,  /* no trusted root to start from */
    OTA_ERR_KEY_NOT_IN_ROLE = -55,  /* a signing key is not one of the role's keys */
    /* signed notes, checkpoints and the ledger policy */
    OTA_ERR_UNVERIFIED = -60, /* no signature from a trusted key in a signed note */
    OTA_ERR_QUORUM = -61,     /* witness cosignatures below the policy's quorum */
    OTA_ERR_STALE = -62,      /* quorum met only with cosignatures outside the freshness window */
    OTA_ERR_ORIGIN = -63,     /* checkpoint origin is not a log the policy trusts */
    OTA_ERR_SPLIT_VIEW = -64, /* checkpoint inconsistent with the one stored (fork, rollback) */
    OTA_ERR_NOT_IN_LOG = -65, /* metadata not included in the checkpoint */
    /* binary formats and the data plane: chunk index, pack, chunker */
    OTA_ERR_BAD_MAGIC = -80,      /* the file does not start with the expected magic bytes */
    OTA_ERR_FORMAT_VERSION = -81, /* binary format version not supported */
    OTA_ERR_TRUNCATED = -82,      /* input ends before the structure it announces */
    OTA_ERR_TRAILING_DATA = -83,  /* bytes follow the end of the structure */
    OTA_ERR_CHUNK_LENGTH = -84,   /* a chunk or compressed chunk length is out of bounds */
    OTA_ERR_DECOMPRESS = -85,     /* compressed data is corrupt or decodes to the wrong size */
    OTA_ERR_CHUNK_PARAMS = -86,   /* chunker parameters invalid (min/avg/max/level) */
    /* Merkle log proofs */
    OTA_ERR_PROOF = -70,           /* proof well formed but leads to another root */
    OTA_ERR_PROOF_MALFORMED = -71, /* proof has the wrong shape for its index/sizes */
    /* reference deltas */
    OTA_ERR_DELTA_BASE = -90,    /* delta made for another from-image than the installed one */
    OTA_ERR_DELTA_RANGE = -91,   /* delta copies from outside the from-image */
    OTA_ERR_DELTA_OVERRUN = -92, /* delta output would exceed its declared to-length */
};

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
