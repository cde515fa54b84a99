/* The online signing keys of an authoring repository behind an
 * interface, so that publish and refresh (publish.h) sign the same with
 * key files (today: ota_repo_keys_open over DIR/private), a PKCS#11 token
 * (later) or keys held in memory (the unit tests).
 *
 * The online keys are the snapshot and timestamp keys (threshold 1) and
 * the log key (signs checkpoints). During an online key rotation two keys
 * of a role exist; the signer picks the one the given root lists.
 */
#ifndef OTACHAIN_REPO_SIGNER_H
#define OTACHAIN_REPO_SIGNER_H

#include <jansson.h>
#include <stdbool.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/note.h"
#include "otachain/tuf.h"

struct ota_repo_signer;

struct ota_repo_signer_ops {
    /* Whether a key of role (snapshot or timestamp) that root lists is at
     * hand; OTA_ERR_NOT_FOUND with det otherwise. */
    int (*have)(struct ota_repo_signer *s, enum ota_tuf_role role, const struct ota_tuf_meta *root,
                struct ota_detail *det);
    /* Adds the signature of that key to doc (a TUF metadata document). */
    int (*sign)(struct ota_repo_signer *s, json_t *doc, enum ota_tuf_role role,
                const struct ota_tuf_meta *root, struct ota_detail *det);
    /* The log key's verifier; OTA_ERR_NOT_FOUND without a log key. */
    int (*log_key)(struct ota_repo_signer *s, struct ota_note_verifier *out,
                   struct ota_detail *det);
    /* Appends the log key's signature line over text to note. */
    int (*log_sign)(struct ota_repo_signer *s, struct ota_buf *note, const char *text, size_t len,
                    struct ota_detail *det);
    /* root is live: keys it no longer lists give way to the ones it does
     * (the end of an online key rotation). */
    int (*root_live)(struct ota_repo_signer *s, const struct ota_tuf_meta *root,
                     struct ota_detail *det);
    void (*close)(struct ota_repo_signer *s);
};

struct ota_repo_signer {
    const struct ota_repo_signer_ops *ops;
};

/* The key files of repository dir: private/<role>.key and, during a
 * rotation, private/<role>.key.next (PEM, mode 0600), private/log.key
 * (signed-note signer key, mode 0600). Keys are read when used; rotation
 * renames through hook. */
OTA_WUR int ota_repo_keys_open(struct ota_repo_signer **out, const char *dir,
                               const struct ota_fs_hook *hook, struct ota_detail *det);

/* Creates a new log key (signed-note type 0x01, named origin) at path,
 * mode 0600, whole or not at all (ota_fs_create), and writes its verifier
 * key string into vkey. OTA_ERR_EXISTS if path exists; OTA_ERR_KEY_FORMAT
 * for an origin that is not a valid key name. */
OTA_WUR int ota_repo_keys_create_log(char vkey[OTA_NOTE_VKEY_SIZE], const char *path,
                                     const char *origin, const struct ota_fs_hook *hook,
                                     struct ota_detail *det);

/* Closes; accepts NULL. */
void ota_repo_signer_close(struct ota_repo_signer *s);

#endif
