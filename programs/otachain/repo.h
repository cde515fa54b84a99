/* The CLI's view of an authoring directory: the library's repository
 * (include/otachain/repo.h) over the directory as a store
 * (ota_repo_files_open) and its key files as the online signer
 * (ota_repo_keys_open), the directory's lock, and the printing of what
 * the library returns. Publish and refresh are library code
 * (include/otachain/publish.h, its state machine at the top of
 * lib/publish.c); here they only meet the witnesses through libcurl and
 * the terminal.
 */
#ifndef OTACHAIN_CLI_REPO_H
#define OTACHAIN_CLI_REPO_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "otachain/crypto.h"
#include "otachain/publish.h"
#include "otachain/repo.h"
#include "otachain/sign.h"
#include "otachain/tuf.h"

#define REPO_MAX_IMAGE   OTA_REPO_MAX_IMAGE
#define REPO_WARN_EXPIRY ((int64_t)30 * 86400)

/* A key named on the command line: public half always, signer when the
 * file is a secret key. */
struct repo_key {
    const char *path;
    uint8_t pub[OTA_ED25519_PUB_LEN];
    char keyid[OTA_KEYID_SIZE];
    struct ota_signer *signer; /* NULL for a public key file */
};

/* Loads a key file. need_secret: refuse a public key file (--key). A
 * secret key is loaded only through ota_signer_load, so its mode is
 * checked. On failure k holds nothing. */
OTA_WUR int repo_key_load(struct repo_key *k, const char *path, bool need_secret,
                          struct ota_detail *det);
void repo_key_clear(struct repo_key *k);

struct repo {
    struct ota_repo lib; /* the repository: published and pending state */
    char dir[PATH_MAX];
    const struct cli_ctx *ctx;
    int lock_fd;
    struct ota_repo_store *store;
    struct ota_repo_signer *signer;
    long witness_timeout_ms; /* per witness request; 0: OTA_WITNESS_CURL_TIMEOUT_MS */
};

enum {
    REPO_LOCK = 1u, /* take DIR/.lock (every changing command) */
};

/* Opens DIR: lock (with REPO_LOCK), store, signer, then the library's
 * ota_repo_open. On failure r holds nothing to free. */
OTA_WUR int repo_open(struct repo *r, const char *dir, unsigned flags, const struct cli_ctx *ctx,
                      struct ota_detail *det);
/* Frees everything and releases the lock; accepts a zeroed struct. */
void repo_close(struct repo *r);

/* DIR-relative path into out (PATH_MAX); OTA_ERR_TOO_LARGE if it does not
 * fit. */
OTA_WUR int repo_path(char out[PATH_MAX], const struct repo *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Atomic write of a file below DIR through the fault hook. */
OTA_WUR int repo_write(const struct repo *r, const char *path, const void *data, size_t len,
                       struct ota_detail *det);

/* Lock file helper (also used by init before DIR is complete). */
OTA_WUR int repo_lock(int *fd, const char *dir, struct ota_detail *det);

/* Merges the signatures of FILE into the pending file of role
 * (ota_repo_merge), warning about each one dropped. Does not store. */
OTA_WUR int repo_merge_file(struct repo *r, enum ota_tuf_role role, const char *file,
                            const struct ota_tuf_meta *const *roots, size_t nroots, size_t *added,
                            struct ota_detail *det);

/* Publishes what is pending (ota_publish, witnesses over libcurl) and
 * prints a summary on out. */
OTA_WUR int repo_publish(struct repo *r, FILE *out, struct ota_detail *det);

/* Re-signs the timestamp (and the snapshot when due or forced). */
OTA_WUR int repo_refresh(struct repo *r, bool force_snapshot, FILE *out, struct ota_detail *det);

/* Prints "  <label>: <text>" and the signers on f. */
void repo_sigstat_print(FILE *f, const char *label, const struct ota_repo_sigstat *st);

/* Prints a human-readable status (repo status). */
void repo_print_status(const struct repo *r, FILE *out);

/* Prints the threshold status of the pending files (after sign / merge). */
void repo_print_pending(const struct repo *r, FILE *out, bool root, bool targets);

#endif
