/* Where an authoring repository lives: a storage interface, so that
 * publish and refresh (publish.h) run the same over files (today: the
 * repository directory of the CLI, ota_repo_files_open) and over a
 * database (the server's SQLite or PostgreSQL next), and against an
 * in-memory store in the unit tests.
 *
 * Everything is addressed by a relative path of the repository layout
 * (docs/formats/repository.md): "repo.json", "pending/root.json",
 * "public/metadata/3.root.json", "public/staging/metadata/4.targets.json",
 * "public/ledger/checkpoint", "blobs/<sha256 hex>", ... Paths are at most
 * OTA_REPO_PATH_MAX bytes of [A-Za-z0-9._+~/-], no "..", no leading '/'.
 *
 * Every write is atomic and durable when it returns (a reader sees the
 * old content or the new, never a part; a file store uses ota_fs_*). There
 * is no transaction across files: publish orders its writes so that any
 * prefix of them is a state it recovers from. The ledger's own state is
 * the log store (log_store.h, transactions there), reached through log().
 */
#ifndef OTACHAIN_REPO_STORE_H
#define OTACHAIN_REPO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/log_store.h"

#define OTA_REPO_PATH_MAX 512
/* Largest target file (an image) and pack the store copies. */
#define OTA_REPO_MAX_BLOB ((uint64_t)16 << 30)

struct ota_repo_store;

struct ota_repo_store_ops {
    /* Appends the content of path to out (at most out's cap:
     * OTA_ERR_TOO_LARGE beyond). OTA_ERR_NOT_FOUND if absent. */
    int (*get)(struct ota_repo_store *s, const char *path, struct ota_buf *out,
               struct ota_detail *det);
    /* Whether path exists, and its length. */
    int (*stat)(struct ota_repo_store *s, const char *path, bool *exists, uint64_t *len,
                struct ota_detail *det);
    /* Replaces (or creates) path with data[0..len). */
    int (*put)(struct ota_repo_store *s, const char *path, const void *data, size_t len,
               struct ota_detail *det);
    /* Removes path; a missing one is fine. */
    int (*remove)(struct ota_repo_store *s, const char *path, struct ota_detail *det);
    /* Renames from to to (replacing it). OTA_ERR_NOT_FOUND if from is
     * absent. */
    int (*move)(struct ota_repo_store *s, const char *from, const char *to, struct ota_detail *det);
    /* Copies the large file from to to, streaming, refusing (nothing
     * written) content whose length or SHA-256 differs from want_len /
     * want_sha256 when given (OTA_ERR_LENGTH_MISMATCH,
     * OTA_ERR_HASH_MISMATCH). At most OTA_REPO_MAX_BLOB bytes. */
    int (*copy)(struct ota_repo_store *s, const char *from, const char *to,
                const uint8_t *want_sha256, const uint64_t *want_len, struct ota_detail *det);
    /* The ledger's store; *out NULL when the repository has none yet and
     * create is false. Owned by the repository store. */
    int (*log)(struct ota_repo_store *s, struct ota_log_store **out, bool create,
               struct ota_detail *det);
    /* Frees the store (and its log store). */
    void (*close)(struct ota_repo_store *s);
};

/* A store handle: implementations embed it first in their own struct. */
struct ota_repo_store {
    const struct ota_repo_store_ops *ops;
};

/* Whether path is a valid store path (see above). */
bool ota_repo_path_valid(const char *path);

/* The repository directory dir as a store: each path is dir/path, written
 * through the file-system layer (every step through hook, may be NULL),
 * directories made as needed; the log store is dir/ledger.db (SQLite,
 * opened on first use). The caller holds dir's lock. */
OTA_WUR int ota_repo_files_open(struct ota_repo_store **out, const char *dir,
                                const struct ota_fs_hook *hook, struct ota_detail *det);

/* Closes; accepts NULL. */
void ota_repo_store_close(struct ota_repo_store *s);

#endif
