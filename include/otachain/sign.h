/* Ed25519 secret keys and signing. Not linked by the device agent.
 *
 * Secret key files are PEM PKCS#8 ("PRIVATE KEY"), written with
 * O_EXCL|O_NOFOLLOW and mode 0600, and refused on load when group- or
 * world-accessible. Secrets are wiped from memory when freed.
 */
#ifndef OTACHAIN_SIGN_H
#define OTACHAIN_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"
#include "otachain/fsutil.h"

struct ota_signer; /* opaque: holds an Ed25519 secret key */

/* Generates a fresh key from the OS random source. */
OTA_WUR int ota_signer_generate(struct ota_signer **out);

/* Builds a signer from a 32-byte RFC 8032 seed (tests and vectors). */
OTA_WUR int ota_signer_from_seed(struct ota_signer **out, const uint8_t seed[OTA_ED25519_SEED_LEN]);

/* Loads a secret key file. OTA_ERR_PERMISSION if the file is accessible
 * by group or others, is not a regular file, or is a symbolic link (never
 * followed: a link could swap the key), OTA_ERR_KEY_FORMAT if it is not an
 * unencrypted PKCS#8 Ed25519 private key. det (may be NULL) says which,
 * naming the file: the mode and the chmod to run, the link, an encrypted
 * key, a key of another format or algorithm, a public key file. */
OTA_WUR int ota_signer_load(struct ota_signer **out, const char *path, struct ota_detail *det);

/* Writes the secret key to a new file, mode 0600, atomically
 * (ota_fs_create: the file is whole or absent, never partial; every step
 * through hook, which may be NULL). OTA_ERR_EXISTS if path exists. */
OTA_WUR int ota_signer_save(const struct ota_signer *s, const char *path,
                            const struct ota_fs_hook *hook);

/* The public half and its TUF keyid. */
void ota_signer_public(uint8_t pub[OTA_ED25519_PUB_LEN], const struct ota_signer *s);
const char *ota_signer_keyid(const struct ota_signer *s);

/* Copies the 32-byte RFC 8032 seed (the secret key itself) into seed, for
 * key formats that carry it raw (signed-note signer keys). The caller
 * wipes it (ota_wipe) when done. OTA_ERR_CRYPTO if OpenSSL cannot export
 * it (seed zeroed then). */
OTA_WUR int ota_signer_seed(uint8_t seed[OTA_ED25519_SEED_LEN], const struct ota_signer *s);

/* Signs len bytes. */
OTA_WUR int ota_signer_sign(uint8_t sig[OTA_ED25519_SIG_LEN], const struct ota_signer *s,
                            const void *msg, size_t len);

/* Wipes and frees; accepts NULL. */
void ota_signer_free(struct ota_signer *s);

#endif
