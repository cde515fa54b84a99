/* The key files of an authoring repository as its online signer (see
 * otachain/repo_signer.h). */
#include "otachain/repo_signer.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otachain/crypto.h"
#include "otachain/note_sign.h"
#include "otachain/sign.h"
#include "otachain/tuf_sign.h"

struct keys_signer {
    struct ota_repo_signer base; /* first */
    char dir[PATH_MAX];
    const struct ota_fs_hook *hook;
    struct ota_note_signer *log; /* loaded on first use */
};

static struct keys_signer *ks_of(struct ota_repo_signer *s)
{
    return (struct keys_signer *)s;
}

static int key_path(char out[PATH_MAX], const struct keys_signer *k, enum ota_tuf_role role,
                    bool next)
{
    int n = snprintf(out, PATH_MAX, "%s/private/%s.key%s", k->dir, ota_tuf_role_name(role),
                     next ? ".next" : "");

    return n < 0 || n >= PATH_MAX ? OTA_ERR_TOO_LARGE : 0;
}

static bool role_has_key(const struct ota_tuf_meta *root, enum ota_tuf_role role, const char *keyid)
{
    const struct ota_tuf_role_keys *rk = &root->roles[role];

    for (size_t i = 0; i < rk->nkeyids; i++) {
        if (strcmp(rk->keyids[i], keyid) == 0)
            return true;
    }
    return false;
}

/* The key of role that root lists: <role>.key or, during a rotation,
 * <role>.key.next. */
static int load_role_key(struct ota_signer **out, const struct keys_signer *k,
                         enum ota_tuf_role role, const struct ota_tuf_meta *root,
                         struct ota_detail *det)
{
    *out = NULL;
    for (int next = 0; next < 2; next++) {
        char path[PATH_MAX];
        struct ota_signer *s = NULL;
        struct stat st;
        int rc = key_path(path, k, role, next != 0);

        if (rc != 0)
            return rc;
        if (lstat(path, &st) != 0)
            continue;
        rc = ota_signer_load(&s, path, det);
        if (rc != 0) {
            ota_detail_prefix(det, "online key");
            return rc;
        }
        if (role_has_key(root, role, ota_signer_keyid(s))) {
            *out = s;
            return 0;
        }
        ota_signer_free(s);
    }
    ota_detail_set(det, "no key in %s/private/ is a %s key of root v%" PRIu64, k->dir,
                   ota_tuf_role_name(role), root->version);
    return OTA_ERR_NOT_FOUND;
}

static int keys_have(struct ota_repo_signer *s, enum ota_tuf_role role,
                     const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct ota_signer *key = NULL;
    int rc = load_role_key(&key, ks_of(s), role, root, det);

    ota_signer_free(key);
    return rc;
}

static int keys_sign(struct ota_repo_signer *s, json_t *doc, enum ota_tuf_role role,
                     const struct ota_tuf_meta *root, struct ota_detail *det)
{
    struct ota_signer *key = NULL;
    int rc = load_role_key(&key, ks_of(s), role, root, det);

    if (rc == 0)
        rc = ota_tuf_sign(doc, key);
    ota_signer_free(key);
    return rc;
}

static int load_log_key(struct keys_signer *k, struct ota_detail *det)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    size_t n;
    int rc;

    if (k->log != NULL)
        return 0;
    if (snprintf(path, sizeof(path), "%s/private/log.key", k->dir) >= (int)sizeof(path))
        return OTA_ERR_TOO_LARGE;
    rc = ota_fs_read_secret(&data, &len, path, OTA_NOTE_SKEY_MAX_LEN + 2);
    if (rc == OTA_ERR_PERMISSION) {
        ota_detail_set(det, "the log key %s must be a regular file of mode 0600", path);
        return rc;
    }
    if (rc != 0) {
        ota_detail_set(det, "the log key %s", path);
        return rc;
    }
    n = len;
    while (n > 0 && data[n - 1] == '\n')
        n--;
    rc = ota_note_signer_parse(&k->log, (const char *)data, n, det);
    if (rc != 0)
        ota_detail_prefix(det, path);
    ota_wipe(data, len);
    free(data);
    return rc;
}

static int keys_log_key(struct ota_repo_signer *s, struct ota_note_verifier *out,
                        struct ota_detail *det)
{
    struct keys_signer *k = ks_of(s);
    int rc = load_log_key(k, det);

    if (rc == 0)
        ota_note_signer_verifier(out, k->log);
    return rc;
}

static int keys_log_sign(struct ota_repo_signer *s, struct ota_buf *note, const char *text,
                         size_t len, struct ota_detail *det)
{
    struct keys_signer *k = ks_of(s);
    int rc = load_log_key(k, det);

    return rc != 0 ? rc : ota_note_sign(note, text, len, k->log, det);
}

static int keys_root_live(struct ota_repo_signer *s, const struct ota_tuf_meta *root,
                          struct ota_detail *det)
{
    static const enum ota_tuf_role roles[2] = {OTA_TUF_SNAPSHOT, OTA_TUF_TIMESTAMP};
    struct keys_signer *k = ks_of(s);

    for (int i = 0; i < 2; i++) {
        char next[PATH_MAX];
        char cur[PATH_MAX];
        struct ota_signer *key = NULL;
        struct stat st;
        bool listed;
        int rc = key_path(next, k, roles[i], true);

        if (rc == 0)
            rc = key_path(cur, k, roles[i], false);
        if (rc != 0)
            return rc;
        if (lstat(next, &st) != 0)
            continue;
        rc = ota_signer_load(&key, next, det);
        if (rc != 0) {
            ota_detail_prefix(det, "online key");
            return rc;
        }
        listed = role_has_key(root, roles[i], ota_signer_keyid(key));
        ota_signer_free(key);
        if (!listed)
            continue;
        rc = ota_fs_rename(next, cur, k->hook);
        if (rc != 0) {
            ota_detail_set(det, "renaming %s to %s: %s", next, cur, strerror(errno));
            return rc;
        }
    }
    return 0;
}

static void keys_close(struct ota_repo_signer *s)
{
    struct keys_signer *k = ks_of(s);

    ota_note_signer_free(k->log);
    free(k);
}

static const struct ota_repo_signer_ops keys_ops = {
    .have = keys_have,
    .sign = keys_sign,
    .log_key = keys_log_key,
    .log_sign = keys_log_sign,
    .root_live = keys_root_live,
    .close = keys_close,
};

int ota_repo_keys_open(struct ota_repo_signer **out, const char *dir,
                       const struct ota_fs_hook *hook, struct ota_detail *det)
{
    struct keys_signer *k;
    size_t n;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return OTA_ERR_INVALID_ARG;
    n = strlen(dir);
    if (n + 64 >= PATH_MAX) {
        ota_detail_set(det, "repository directory '%s' is too long", dir);
        return OTA_ERR_TOO_LARGE;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return OTA_ERR_NOMEM;
    k->base.ops = &keys_ops;
    memcpy(k->dir, dir, n + 1);
    k->hook = hook;
    *out = &k->base;
    return 0;
}

int ota_repo_keys_create_log(char vkey[OTA_NOTE_VKEY_SIZE], const char *path, const char *origin,
                             const struct ota_fs_hook *hook, struct ota_detail *det)
{
    struct ota_note_signer *s = NULL;
    struct ota_note_verifier v;
    struct ota_buf text;
    int rc = ota_note_signer_generate(&s, origin, strlen(origin), OTA_NOTE_TYPE_ED25519);

    if (rc != 0) {
        ota_detail_set(det, "log origin %s is not a valid key name", origin);
        return rc;
    }
    ota_buf_init(&text, OTA_NOTE_SKEY_MAX_LEN + 2);
    rc = ota_note_signer_format(&text, s);
    if (rc == 0)
        rc = ota_buf_append(&text, "\n", 1);
    if (rc == 0) {
        /* Whole or absent: no partial key is ever left at path. */
        rc = ota_fs_create(path, text.data, text.len, 0600, hook);
        if (rc != 0)
            ota_detail_set(det, "creating %s: %s", path, ota_strerror(rc));
    }
    if (rc == 0) {
        ota_note_signer_verifier(&v, s);
        ota_note_verifier_format(vkey, &v);
    }
    ota_buf_free(&text); /* wipes the secret */
    ota_note_signer_free(s);
    return rc;
}

void ota_repo_signer_close(struct ota_repo_signer *s)
{
    if (s != NULL)
        s->ops->close(s);
}
