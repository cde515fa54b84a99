/* Ed25519 secret keys and signing over OpenSSL 3 (see otachain/sign.h).
 * Not linked by the device agent.
 *
 * The secret lives only inside the EVP_PKEY (OpenSSL wipes it on free);
 * PEM text of a secret key passes through a secure-memory BIO and our
 * read buffer, both wiped before they are freed.
 */
#include "otachain/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil_int.h"
#include "otachain/fsutil.h"

struct ota_signer {
    EVP_PKEY *pkey;                   /* owns the secret key */
    uint8_t pub[OTA_ED25519_PUB_LEN]; /* public half */
    char keyid[OTA_KEYID_SIZE];       /* TUF keyid of pub, cached */
};

/* Takes ownership of pkey (freed on failure); checks it is Ed25519 and
 * caches the public key and keyid. */
static int signer_wrap(struct ota_signer **out, EVP_PKEY *pkey)
{
    struct ota_signer *s;
    size_t publen = OTA_ED25519_PUB_LEN;
    int rc;

    if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return OTA_ERR_KEY_FORMAT;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        EVP_PKEY_free(pkey);
        return OTA_ERR_NOMEM;
    }
    s->pkey = pkey;
    if (EVP_PKEY_get_raw_public_key(pkey, s->pub, &publen) != 1 || publen != OTA_ED25519_PUB_LEN) {
        ota_signer_free(s);
        ERR_clear_error();
        return OTA_ERR_KEY_FORMAT;
    }
    rc = ota_ed25519_keyid(s->keyid, s->pub);
    if (rc != 0) {
        ota_signer_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int ota_signer_generate(struct ota_signer **out)
{
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *pkey = NULL;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    EVP_PKEY_CTX_free(ctx);
    return signer_wrap(out, pkey);
}

int ota_signer_from_seed(struct ota_signer **out, const uint8_t seed[OTA_ED25519_SEED_LEN])
{
    EVP_PKEY *pkey;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (seed == NULL)
        return OTA_ERR_INVALID_ARG;
    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, OTA_ED25519_SEED_LEN);
    if (pkey == NULL) {
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    return signer_wrap(out, pkey);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Why reading the secret key file failed with rc, in det. Looks at the
 * path again (lstat) only to explain: the refusal itself was decided on
 * what was opened. */
static void explain_read(struct ota_detail *det, int rc, const char *path)
{
    struct stat st;

    if (det == NULL)
        return;
    if (rc == OTA_ERR_PERMISSION && lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            ota_detail_set(det,
                           "secret key %s is a symbolic link: secret keys are read from the key "
                           "file itself, never through a link (a link could swap the key); "
                           "give the key file's own path",
                           path);
        else if (!S_ISREG(st.st_mode))
            ota_detail_set(det, "secret key %s is not a regular file", path);
        else if ((st.st_mode & 077) != 0)
            ota_detail_set(det,
                           "secret key %s is accessible by group or others (mode "
                           "%04o): secret keys need mode 0600: chmod 600 %s",
                           path, (unsigned)(st.st_mode & 07777), path);
        else
            ota_detail_set(det, "secret key %s: permission denied (run as its owner)", path);
    } else if (rc == OTA_ERR_TOO_LARGE) {
        ota_detail_set(det, "secret key %s is larger than %d bytes: not a key file", path,
                       OTA_KEYFILE_MAX);
    } else {
        ota_detail_set(det, "secret key %s", path);
    }
}

/* Why the PEM text did not give an Ed25519 key, in det. */
static void explain_parse(struct ota_detail *det, const char *path, const uint8_t *data, size_t len,
                          bool parsed)
{
    switch (ota_keyfile_kind_mem(data, len)) {
    case OTA_KEYFILE_ENCRYPTED:
        ota_detail_set(det,
                       "%s is an encrypted private key (PEM ENCRYPTED PRIVATE KEY): otachain "
                       "reads unencrypted PKCS#8 keys protected by their file mode (0600); "
                       "decrypt a copy (openssl pkey -in %s -out NEW.key) or make a key with "
                       "otachain key generate",
                       path, path);
        break;
    case OTA_KEYFILE_OTHER_SECRET:
        ota_detail_set(det,
                       "%s is a private key in another format (PKCS#1, SEC1 or OpenSSH): "
                       "otachain reads PKCS#8 Ed25519 keys (PEM PRIVATE KEY), as otachain "
                       "key generate writes them",
                       path);
        break;
    case OTA_KEYFILE_PUBLIC:
        ota_detail_set(det, "%s is a public key file: signing needs the secret key", path);
        break;
    case OTA_KEYFILE_SECRET:
        ota_detail_set(det, "%s: %s", path,
                       parsed ? "not an Ed25519 key (otachain signs with Ed25519 only)"
                              : "malformed PKCS#8 private key");
        break;
    case OTA_KEYFILE_NONE:
        ota_detail_set(det, "%s is not a PEM key file", path);
        break;
    }
}

int ota_signer_load(struct ota_signer **out, const char *path, struct ota_detail *det)
{
    uint8_t *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (path == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_read_secret(&data, &len, path, OTA_KEYFILE_MAX);
    if (rc != 0) {
        explain_read(det, rc, path);
        return rc;
    }

    bio = BIO_new_mem_buf(data, (int)len); /* len <= OTA_KEYFILE_MAX */
    if (bio == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        rc = OTA_ERR_KEY_FORMAT;
        explain_parse(det, path, data, len, false);
        goto out;
    }
    rc = signer_wrap(out, pkey); /* takes pkey */
    if (rc == OTA_ERR_KEY_FORMAT)
        explain_parse(det, path, data, len, true);
out:
    BIO_free(bio);
    ota_wipe(data, len);
    free(data);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}

int ota_signer_save(const struct ota_signer *s, const char *path, const struct ota_fs_hook *hook)
{
    BIO *bio;
    char *pem = NULL;
    long pemlen = 0;
    int rc;

    if (s == NULL || path == NULL)
        return OTA_ERR_INVALID_ARG;
    /* Secure-memory BIO: its buffer is cleansed on growth and on free. */
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        ERR_clear_error();
        return OTA_ERR_NOMEM;
    }
    /* Unencrypted PKCS#8 ("PRIVATE KEY"); protection is the file mode. */
    if (PEM_write_bio_PrivateKey(bio, s->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = OTA_ERR_CRYPTO;
        goto out;
    }
    pemlen = BIO_get_mem_data(bio, &pem);
    if (pemlen <= 0 || pem == NULL) {
        rc = OTA_ERR_CRYPTO;
        goto out;
    }
    rc = ota_fs_create(path, pem, (size_t)pemlen, 0600, hook);
out:
    if (pem != NULL && pemlen > 0)
        ota_wipe(pem, (size_t)pemlen);
    BIO_free(bio);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}

void ota_signer_public(uint8_t pub[OTA_ED25519_PUB_LEN], const struct ota_signer *s)
{
    memcpy(pub, s->pub, OTA_ED25519_PUB_LEN);
}

const char *ota_signer_keyid(const struct ota_signer *s)
{
    return s->keyid;
}

int ota_signer_seed(uint8_t seed[OTA_ED25519_SEED_LEN], const struct ota_signer *s)
{
    size_t n = OTA_ED25519_SEED_LEN;

    if (seed == NULL)
        return OTA_ERR_INVALID_ARG;
    if (s == NULL) {
        ota_wipe(seed, OTA_ED25519_SEED_LEN);
        return OTA_ERR_INVALID_ARG;
    }
    if (EVP_PKEY_get_raw_private_key(s->pkey, seed, &n) != 1 || n != OTA_ED25519_SEED_LEN) {
        ota_wipe(seed, OTA_ED25519_SEED_LEN);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    return 0;
}

int ota_signer_sign(uint8_t sig[OTA_ED25519_SIG_LEN], const struct ota_signer *s, const void *msg,
                    size_t len)
{
    EVP_MD_CTX *md;
    size_t siglen = OTA_ED25519_SIG_LEN;
    int rc = 0;

    if (sig == NULL)
        return OTA_ERR_INVALID_ARG;
    if (s == NULL || (msg == NULL && len > 0)) {
        ota_wipe(sig, OTA_ED25519_SIG_LEN);
        return OTA_ERR_INVALID_ARG;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, NULL, NULL, s->pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen,
                       len > 0 ? (const unsigned char *)msg : (const unsigned char *)"",
                       len) != 1 ||
        siglen != OTA_ED25519_SIG_LEN) {
        ota_wipe(sig, OTA_ED25519_SIG_LEN);
        ERR_clear_error();
        rc = OTA_ERR_CRYPTO;
    }
    EVP_MD_CTX_free(md);
    return rc;
}

void ota_signer_free(struct ota_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    ota_wipe(s, sizeof(*s));
    free(s);
}
