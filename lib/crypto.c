/* SHA-256, Ed25519 verification, constant-time helpers and public key
 * files over OpenSSL 3 EVP (see otachain/crypto.h).
 *
 * OpenSSL's thread-local error queue is cleared after every failure we
 * report ourselves, so callers never inherit stale OpenSSL errors.
 */
#include "otachain/crypto.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil_int.h"
#include "otachain/fsutil.h"

struct ota_sha256_ctx {
    EVP_MD_CTX *md;
    int finished; /* final was called: no more updates */
};

int ota_sha256(uint8_t out[OTA_SHA256_LEN], const void *data, size_t len)
{
    unsigned int n = 0;

    if (out == NULL || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (EVP_Digest(len > 0 ? data : "", len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != OTA_SHA256_LEN) {
        ota_wipe(out, OTA_SHA256_LEN);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    return 0;
}

int ota_sha256_init(struct ota_sha256_ctx **ctx)
{
    struct ota_sha256_ctx *c;

    if (ctx == NULL)
        return OTA_ERR_INVALID_ARG;
    *ctx = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OTA_ERR_NOMEM;
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL) {
        free(c);
        ERR_clear_error();
        return OTA_ERR_NOMEM;
    }
    if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c->md);
        free(c);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    *ctx = c;
    return 0;
}

int ota_sha256_update(struct ota_sha256_ctx *ctx, const void *data, size_t len)
{
    if (ctx == NULL || ctx->finished || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(ctx->md, data, len) != 1) {
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    return 0;
}

int ota_sha256_final(uint8_t out[OTA_SHA256_LEN], struct ota_sha256_ctx *ctx)
{
    unsigned int n = 0;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    if (ctx == NULL || ctx->finished) {
        ota_wipe(out, OTA_SHA256_LEN);
        return OTA_ERR_INVALID_ARG;
    }
    ctx->finished = 1;
    if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != OTA_SHA256_LEN) {
        ota_wipe(out, OTA_SHA256_LEN);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    return 0;
}

void ota_sha256_ctx_free(struct ota_sha256_ctx *ctx)
{
    if (ctx == NULL)
        return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

int ota_ed25519_verify(const uint8_t pub[OTA_ED25519_PUB_LEN], const void *msg, size_t len,
                       const uint8_t sig[OTA_ED25519_SIG_LEN])
{
    EVP_PKEY *pkey;
    EVP_MD_CTX *md;
    int r;
    int rc;

    if (pub == NULL || sig == NULL || (msg == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, OTA_ED25519_PUB_LEN);
    if (pkey == NULL) {
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return OTA_ERR_CRYPTO;
    }
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) != 1) {
        rc = OTA_ERR_CRYPTO;
    } else {
        /* Ed25519 is one-shot (no prehash): the whole message at once. */
        r = EVP_DigestVerify(md, sig, OTA_ED25519_SIG_LEN,
                             len > 0 ? (const unsigned char *)msg : (const unsigned char *)"", len);
        if (r == 1)
            rc = 0;
        else if (r == 0)
            rc = OTA_ERR_BAD_SIGNATURE;
        else
            rc = OTA_ERR_CRYPTO;
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}

bool ota_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return CRYPTO_memcmp(a, b, n) == 0;
}

void ota_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void ota_hex_encode(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* Value of one hex digit, or -1; branch-free on the digit so that decoding
 * a secret (a seed) does not leak it through timing. */
static int hex_val(unsigned char c)
{
    int d = (int)c - '0';
    int l = (int)(c | 0x20) - 'a';
    int is_d = ((d >= 0) & (d <= 9));
    int is_l = ((l >= 0) & (l <= 5));

    return (is_d * d) + (is_l * (l + 10)) - (1 - (is_d | is_l));
}

int ota_hex_decode(uint8_t *out, size_t n, const char *hex)
{
    size_t i;
    int bad = 0;

    if (out == NULL || hex == NULL) {
        if (out != NULL)
            ota_wipe(out, n);
        return OTA_ERR_INVALID_ARG;
    }
    if (n > (SIZE_MAX - 1) / 2 || strnlen(hex, 2 * n + 1) != 2 * n) {
        ota_wipe(out, n);
        return OTA_ERR_FORMAT;
    }
    for (i = 0; i < n; i++) {
        int hi = hex_val((unsigned char)hex[2 * i]);
        int lo = hex_val((unsigned char)hex[2 * i + 1]);

        bad |= (hi | lo) < 0;
        out[i] = (uint8_t)(((unsigned)hi << 4) | (unsigned)lo);
    }
    if (bad) {
        ota_wipe(out, n);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

int ota_ed25519_keyid(char out[OTA_KEYID_SIZE], const uint8_t pub[OTA_ED25519_PUB_LEN])
{
    /* Fixed shape: the canonical JSON of the key object is built directly;
     * keys already in bytewise order, the hex needs no escaping. */
    static const char head[] = "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"";
    static const char tail[] = "\"},\"scheme\":\"ed25519\"}";
    char doc[sizeof(head) - 1 + 2 * OTA_ED25519_PUB_LEN + sizeof(tail)];
    uint8_t digest[OTA_SHA256_LEN];
    size_t off = 0;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    out[0] = '\0';
    if (pub == NULL)
        return OTA_ERR_INVALID_ARG;
    memcpy(doc, head, sizeof(head) - 1);
    off += sizeof(head) - 1;
    ota_hex_encode(doc + off, pub, OTA_ED25519_PUB_LEN);
    off += 2 * OTA_ED25519_PUB_LEN;
    memcpy(doc + off, tail, sizeof(tail)); /* includes the NUL */
    off += sizeof(tail) - 1;
    rc = ota_sha256(digest, doc, off);
    if (rc != 0)
        return rc;
    ota_hex_encode(out, digest, sizeof(digest));
    return 0;
}

/* Never prompt for a passphrase: encrypted keys are not supported here. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int ota_pubkey_load(uint8_t pub[OTA_ED25519_PUB_LEN], const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    size_t publen = OTA_ED25519_PUB_LEN;
    int rc;

    if (pub == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_wipe(pub, OTA_ED25519_PUB_LEN);
    if (path == NULL)
        return OTA_ERR_INVALID_ARG;
    rc = ota_fs_read(&data, &len, path, OTA_KEYFILE_MAX);
    if (rc != 0)
        return rc;
    /* len <= OTA_KEYFILE_MAX, so the int conversion is safe. */
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        /* Perhaps a private key file: rewind and take its public half. */
        ERR_clear_error();
        if (BIO_reset(bio) != 1) {
            rc = OTA_ERR_CRYPTO;
            goto out;
        }
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    }
    if (pkey == NULL || EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
        rc = OTA_ERR_KEY_FORMAT;
        goto out;
    }
    if (EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 || publen != OTA_ED25519_PUB_LEN) {
        ota_wipe(pub, OTA_ED25519_PUB_LEN);
        rc = OTA_ERR_KEY_FORMAT;
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    /* The file may have been a private key: wipe our copy. */
    ota_wipe(data, len);
    free(data);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}

enum ota_keyfile_kind ota_keyfile_kind_mem(const void *data, size_t len)
{
    const char *d = data;
    const char *p;

    for (p = len > 0 ? memchr(d, '-', len) : NULL; p != NULL;
         p = memchr(p + 1, '-', len - (size_t)(p + 1 - d))) {
        size_t left = len - (size_t)(p - d);
        const char *end;
        size_t n;

        if (left < 11 || memcmp(p, "-----BEGIN ", 11) != 0)
            continue;
        end = left > 11 ? memchr(p + 11, '-', left - 11) : NULL;
        if (end == NULL)
            break;
        n = (size_t)(end - (p + 11));
        if (n == 10 && memcmp(p + 11, "PUBLIC KEY", 10) == 0)
            return OTA_KEYFILE_PUBLIC;
        if (n == 11 && memcmp(p + 11, "PRIVATE KEY", 11) == 0)
            return OTA_KEYFILE_SECRET;
        if (n == 21 && memcmp(p + 11, "ENCRYPTED PRIVATE KEY", 21) == 0)
            return OTA_KEYFILE_ENCRYPTED;
        if (n > 12 && memcmp(end - 12, " PRIVATE KEY", 12) == 0)
            return OTA_KEYFILE_OTHER_SECRET;
    }
    return OTA_KEYFILE_NONE;
}

int ota_keyfile_kind(enum ota_keyfile_kind *out, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *out = OTA_KEYFILE_NONE;
    rc = ota_fs_read(&data, &len, path, OTA_KEYFILE_MAX);
    if (rc != 0)
        return rc;
    *out = ota_keyfile_kind_mem(data, len);
    ota_wipe(data, len);
    free(data);
    return 0;
}

int ota_pubkey_save(const char *path, const uint8_t pub[OTA_ED25519_PUB_LEN])
{
    EVP_PKEY *pkey;
    BIO *bio = NULL;
    char *pem = NULL;
    long pemlen = 0;
    int rc;

    if (path == NULL || pub == NULL)
        return OTA_ERR_INVALID_ARG;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, OTA_ED25519_PUB_LEN);
    if (pkey == NULL) {
        ERR_clear_error();
        return OTA_ERR_KEY_FORMAT;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    if (PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        rc = OTA_ERR_CRYPTO;
        goto out;
    }
    pemlen = BIO_get_mem_data(bio, &pem);
    if (pemlen <= 0 || pem == NULL) {
        rc = OTA_ERR_CRYPTO;
        goto out;
    }
    rc = ota_fs_create(path, pem, (size_t)pemlen, 0644, NULL);
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}
