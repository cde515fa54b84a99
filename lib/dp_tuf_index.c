/* The chunk index of a verified image target, downloaded through the TUF
 * client (dp_fetch.h, struct ota_dp_tuf_index): the one index loader of
 * the CLI's fetch and the device agent. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/dp_fetch.h"

int ota_dp_tuf_index_download(struct ota_dp_tuf_index *ix, struct ota_detail *det)
{
    const char *ipath = json_string_value(json_object_get(ix->image->custom, "index"));
    const struct ota_tuf_target *it;
    char file[PATH_MAX];
    char hex[OTA_SHA256_HEX_LEN + 1];
    int rc;

    if (ix->file[0] != '\0')
        return 0;
    if (ipath == NULL) {
        ota_detail_set(det, "target %s names no chunk index (custom.index)", ix->image->path);
        return OTA_ERR_FORMAT;
    }
    it = ota_tuf_find_target(ota_tuf_client_trusted(ix->client, OTA_TUF_TARGETS), ipath);
    if (it == NULL) {
        ota_detail_set(det, "chunk index %s is not a signed target", ipath);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    if (it->length > OTA_CHUNK_INDEX_MAX_LEN) {
        ota_detail_set(det, "chunk index %s: %" PRIu64 " bytes", ipath, it->length);
        return OTA_ERR_TOO_LARGE;
    }
    ota_hex_encode(hex, it->sha256, OTA_SHA256_LEN);
    if (snprintf(file, sizeof(file), "%s/%s.cidx", ix->dir, hex) >= (int)sizeof(file)) {
        ota_detail_set(det, "path too long for the chunk index %.200s in %s", ipath, ix->dir);
        return OTA_ERR_INVALID_ARG;
    }
    /* Its errors name the index target already. */
    rc = ota_tuf_client_download(ix->client, ix->fetcher, ipath, file, det);
    if (rc != 0)
        return rc;
    memcpy(ix->file, file, sizeof(file));
    return 0;
}

int ota_dp_tuf_index_open(void *ctx, int *fd, struct ota_detail *det)
{
    struct ota_dp_tuf_index *ix = ctx;
    const char *ipath = json_string_value(json_object_get(ix->image->custom, "index"));
    const struct ota_tuf_target *it;
    struct stat st;
    int rc = ota_dp_tuf_index_download(ix, det);

    *fd = -1;
    if (rc != 0)
        return rc;
    it = ota_tuf_find_target(ota_tuf_client_trusted(ix->client, OTA_TUF_TARGETS), ipath);
    if (it == NULL) { /* a refresh since the download dropped it */
        ota_detail_set(det, "chunk index %s is no longer a signed target", ipath);
        return OTA_ERR_TARGET_UNKNOWN;
    }
    *fd = open(ix->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0) {
        rc = ota_fs_errno(errno);
        ota_detail_set(det, "%s: %s", ix->file, strerror(errno));
        return rc;
    }
    /* The fetcher checks the bytes against the image; this catches a file
     * replaced since the download. */
    if (fstat(*fd, &st) != 0 || (uint64_t)st.st_size != it->length) {
        ota_detail_set(det, "%s changed after download", ix->file);
        close(*fd);
        *fd = -1;
        return OTA_ERR_LENGTH_MISMATCH;
    }
    return 0;
}
