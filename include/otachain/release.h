/* Releases: what an image target's `custom` says a device may install
 * (DESIGN §3, §6), SemVer 2.0.0, and the one install verdict.
 *
 * An image target's custom (written by `otachain release add`):
 *
 *     {"product": P, "hardware": [H, ...], "version": V,
 *      "security_version": N, "index": "P/V/NAME.cidx"}
 *
 *   P       product id: 1-64 characters of A-Z a-z 0-9 . _ -, not "." or
 *           ".." (it is the first component of the target path)
 *   H       hardware ids: 1-64 characters of A-Z a-z 0-9 . _ - + : each,
 *           1 to OTA_RELEASE_MAX_HWIDS (64) of them, no duplicates
 *   V       a SemVer 2.0.0 version of at most 128 bytes
 *   N       security version: an integer 0 .. 2^53-1 (the anti-rollback
 *           floor a device raises when it commits the release)
 *   index   the chunk index target's path (optional: "" when absent)
 *
 * No id may contain whitespace or control characters: signed metadata is
 * never trimmed or rewritten, so " rev-b" would match no device. Other
 * members of custom are ignored (room for later fields).
 *
 * Verification side (linked by the agent): no allocation; every structure
 * is a caller-owned fixed-size value. ota_release_to_custom (authoring) is
 * the only function that allocates (a jansson object the caller owns).
 */
#ifndef OTACHAIN_RELEASE_H
#define OTACHAIN_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/tuf.h"

#define OTA_RELEASE_MAX_ID     64                           /* bytes of a product or hardware id */
#define OTA_RELEASE_MAX_HWIDS  64                           /* hardware ids one release names */
#define OTA_SEMVER_MAX_LEN     128                          /* bytes of a version string */
#define OTA_RELEASE_MAX_SECVER ((uint64_t)9007199254740991) /* 2^53 - 1 */

/* A parsed SemVer 2.0.0 version: the text as given, and where its parts
 * are (offsets into text; a length of 0 means the part is absent). */
struct ota_semver {
    char text[OTA_SEMVER_MAX_LEN + 1]; /* NUL-terminated */
    size_t len;
    size_t core_len;             /* MAJOR.MINOR.PATCH */
    size_t pre_off, pre_len;     /* pre-release identifiers, after '-' */
    size_t build_off, build_len; /* build metadata, after '+' */
};

/* Parses s[0..len) strictly (the grammar of the SemVer 2.0.0 text: no
 * leading zeros in numeric core or pre-release identifiers, no empty
 * identifiers, no "v" prefix, nothing around it). Numbers of any size are
 * accepted and compared exactly. OTA_ERR_SEMVER (out zeroed) with det
 * naming what is wrong. */
OTA_WUR int ota_semver_parse(struct ota_semver *out, const char *s, size_t len,
                             struct ota_detail *det);

/* SemVer precedence: <0 when a < b, 0 when equal (build metadata is
 * ignored), >0 when a > b. */
int ota_semver_compare(const struct ota_semver *a, const struct ota_semver *b);

/* A typed release: what a device checks before it writes a byte. */
struct ota_release {
    char product[OTA_RELEASE_MAX_ID + 1];
    size_t nhardware;
    char hardware[OTA_RELEASE_MAX_HWIDS][OTA_RELEASE_MAX_ID + 1];
    struct ota_semver version;
    uint64_t security_version;
    char index[OTA_TUF_MAX_PATH + 1]; /* "" when the target names no index */
};

/* The id grammars above. OTA_ERR_RELEASE_ID with det naming the id (as
 * escaped text) and the accepted form. */
OTA_WUR int ota_release_check_product(const char *s, size_t len, struct ota_detail *det);
OTA_WUR int ota_release_check_hardware(const char *s, size_t len, struct ota_detail *det);

/* Appends hardware id s[0..len) to r: OTA_ERR_RELEASE_ID when malformed
 * or already listed, OTA_ERR_HARDWARE_IDS when r already has
 * OTA_RELEASE_MAX_HWIDS. r is unchanged on failure. */
OTA_WUR int ota_release_add_hardware(struct ota_release *r, const char *s, size_t len,
                                     struct ota_detail *det);

/* Reads the release of an image target from its custom (t->custom). On
 * failure out is zeroed: OTA_ERR_RELEASE_FORMAT (no custom, a member
 * missing or of the wrong type, a security version out of range, too long
 * an index), OTA_ERR_RELEASE_ID, OTA_ERR_HARDWARE_IDS, OTA_ERR_SEMVER; det
 * names the target and the member. */
OTA_WUR int ota_release_from_target(struct ota_release *out, const struct ota_tuf_target *t,
                                    struct ota_detail *det);

/* The custom object of r (authoring side; checked as
 * ota_release_from_target would). *out is a new reference owned by the
 * caller; NULL on failure (OTA_ERR_NOMEM, or the errors above for a
 * release that was not built through this module). */
OTA_WUR int ota_release_to_custom(json_t **out, const struct ota_release *r,
                                  struct ota_detail *det);

/* What a device is and runs. */
struct ota_release_device {
    const char *product;                /* this device's product id */
    const char *hardware;               /* this board's hardware id */
    const struct ota_semver *installed; /* version running now; NULL: none */
    uint64_t security_floor;            /* the stored anti-rollback floor */
};

/* May dev install r? 0 if so; otherwise exactly why, checked in this
 * order: OTA_ERR_OTHER_PRODUCT, OTA_ERR_OTHER_HARDWARE,
 * OTA_ERR_SECURITY_FLOOR (r's security version is below the floor: a
 * rollback attempt, reported before "not newer"), OTA_ERR_NOT_NEWER (r's
 * version does not have higher precedence than the installed one; equal
 * precedence, e.g. only build metadata differs, is not newer). det names
 * both sides. */
OTA_WUR int ota_release_may_install(const struct ota_release *r,
                                    const struct ota_release_device *dev, struct ota_detail *det);

#endif
