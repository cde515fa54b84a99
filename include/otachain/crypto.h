/* Cryptographic primitives over OpenSSL 3: SHA-256, Ed25519 verification,
 * constant-time comparison, secure wipe, public key files.
 *
 * Verify-only: signing and secret keys live in otachain/sign.h, which the
 * device agent does not link.
 */
#ifndef OTACHAIN_CRYPTO_H
#define OTACHAIN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

#define OTA_SHA256_LEN       32
#define OTA_SHA256_HEX_LEN   64
#define OTA_ED25519_PUB_LEN  32
#define OTA_ED25519_SEED_LEN 32
#define OTA_ED25519_SIG_LEN  64
/* A TUF keyid: lowercase hex SHA-256 plus NUL. */
#define OTA_KEYID_SIZE (OTA_SHA256_HEX_LEN + 1)
/* Cap on any key file we read (PEM). */
#define OTA_KEYFILE_MAX 4096

/* One-shot SHA-256 of len bytes. */
OTA_WUR int ota_sha256(uint8_t out[OTA_SHA256_LEN], const void *data, size_t len);

/* Streaming SHA-256. init allocates the context (free with
 * ota_sha256_ctx_free, which accepts NULL); final may be called once. */
struct ota_sha256_ctx;
OTA_WUR int ota_sha256_init(struct ota_sha256_ctx **ctx);
OTA_WUR int ota_sha256_update(struct ota_sha256_ctx *ctx, const void *data, size_t len);
OTA_WUR int ota_sha256_final(uint8_t out[OTA_SHA256_LEN], struct ota_sha256_ctx *ctx);
void ota_sha256_ctx_free(struct ota_sha256_ctx *ctx);

/* Verifies an Ed25519 signature. 0 if valid, OTA_ERR_BAD_SIGNATURE if not,
 * OTA_ERR_CRYPTO if OpenSSL failed. */
OTA_WUR int ota_ed25519_verify(const uint8_t pub[OTA_ED25519_PUB_LEN], const void *msg, size_t len,
                               const uint8_t sig[OTA_ED25519_SIG_LEN]);

/* Constant-time equality of two n-byte regions. */
bool ota_ct_equal(const void *a, const void *b, size_t n);

/* Zeroes n bytes in a way the compiler may not elide. */
void ota_wipe(void *p, size_t n);

/* Lowercase hex encoding; out must hold 2*n+1 bytes (NUL-terminated). */
void ota_hex_encode(char *out, const uint8_t *in, size_t n);

/* Decodes exactly 2*n hex digits (either case) into n bytes. OTA_ERR_FORMAT
 * if the string has another length or a non-hex digit; out zeroed then. */
OTA_WUR int ota_hex_decode(uint8_t *out, size_t n, const char *hex);

/* TUF keyid of an Ed25519 public key: hex SHA-256 of the canonical JSON
 * {"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"}. */
OTA_WUR int ota_ed25519_keyid(char out[OTA_KEYID_SIZE], const uint8_t pub[OTA_ED25519_PUB_LEN]);

/* Reads an Ed25519 public key from a PEM file (SubjectPublicKeyInfo,
 * "PUBLIC KEY"). A PEM private key file is accepted too: its public half
 * is returned. OTA_ERR_KEY_FORMAT if it is not an Ed25519 key. */
OTA_WUR int ota_pubkey_load(uint8_t pub[OTA_ED25519_PUB_LEN], const char *path);

/* What a key file holds, told by its first PEM label (never by the key
 * material): "PUBLIC KEY", "PRIVATE KEY" (unencrypted PKCS#8, what
 * otachain writes), "ENCRYPTED PRIVATE KEY", another "... PRIVATE KEY"
 * (PKCS#1, SEC1, OpenSSH: secret, but not a format otachain reads), or
 * none of them. The bytes read are wiped. */
enum ota_keyfile_kind {
    OTA_KEYFILE_NONE = 0,     /* no PEM key label */
    OTA_KEYFILE_PUBLIC,       /* PUBLIC KEY */
    OTA_KEYFILE_SECRET,       /* PRIVATE KEY (PKCS#8) */
    OTA_KEYFILE_ENCRYPTED,    /* ENCRYPTED PRIVATE KEY */
    OTA_KEYFILE_OTHER_SECRET, /* RSA/EC/OPENSSH/... PRIVATE KEY */
};
OTA_WUR int ota_keyfile_kind(enum ota_keyfile_kind *out, const char *path);
/* The same for a key file's bytes already in memory. */
enum ota_keyfile_kind ota_keyfile_kind_mem(const void *data, size_t len);

/* Writes a public key as PEM. Refuses to overwrite (OTA_ERR_EXISTS).
 * Mode 0644, O_EXCL|O_NOFOLLOW, fsynced. */
OTA_WUR int ota_pubkey_save(const char *path, const uint8_t pub[OTA_ED25519_PUB_LEN]);

#endif
