/* Uploads to a content-addressed blob directory in bounded parts
 * (docs/api/admin-v1.md, "Upload"): the Content-Range header of a part
 * (hostile input: strict, fuzzed by fuzz/fuzz_upload.c) and the
 * directory that takes the parts.
 *
 *   DIR/<name>                       a complete blob (never rewritten)
 *   DIR/.partial/<name>-<total>      the bytes received so far
 *
 * <name> is the blob's SHA-256 in lowercase hex (checked when the last
 * part arrives), or "<sha256>.pack" for the pack of the image with that
 * SHA-256 (a pack is not a target: its frames are checked against the
 * signed chunk index when a device reads them, and at publish).
 *
 * Parts are appended in order: a part must start where the received
 * bytes end, so a client that lost an answer asks for the status and
 * resumes from there; a part is written and fsynced before it is
 * acknowledged; the last one is hashed over the whole partial file and
 * renamed into place (fsynced with the directory), or the partial file
 * is removed when the hash does not match.
 */
#ifndef OTACHAIN_UPLOAD_H
#define OTACHAIN_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"
#include "otachain/fsutil.h"

/* Largest blob accepted (an image, index or pack). */
#define OTA_UPLOAD_MAX_TOTAL ((uint64_t)16 << 30)
#define OTA_UPLOAD_NAME_MAX  (64 + 5)

/* One part: bytes first..last (inclusive) of a blob of total bytes. */
struct ota_upload_range {
    uint64_t first;
    uint64_t last;
    uint64_t total;
};

/* Parses "bytes A-B/N" exactly (RFC 9110 §14.4: no spaces but the one
 * after "bytes", decimal without sign or leading zeros, A <= B < N,
 * N <= max_total; "*" for N is refused: a blob's length is known).
 * OTA_ERR_FORMAT with det saying what is wrong; *r zeroed then. */
OTA_WUR int ota_upload_range_parse(struct ota_upload_range *r, const char *header, size_t len,
                                   uint64_t max_total, struct ota_detail *det);

/* Whether name is a blob name this directory takes ("<64 hex>" or
 * "<64 hex>.pack"); *is_pack tells which. */
bool ota_upload_name_valid(const char *name, bool *is_pack);

/* Where an upload stands. */
struct ota_upload_status {
    bool complete;
    uint64_t received; /* bytes stored so far (the length when complete) */
    uint64_t total;    /* 0 when nothing was received yet and not complete */
};

/* The status of blob name in dir. */
OTA_WUR int ota_upload_status(struct ota_upload_status *st, const char *dir, const char *name,
                              struct ota_detail *det);

/* Stores one part (len == last - first + 1 bytes at data) of blob name
 * in dir and fills st with the status afterwards. A part for a complete
 * blob changes nothing (st->complete). Refusals, each changing nothing:
 * OTA_ERR_EXISTS when r->first is not the number of bytes received
 * (st->received says where to resume), OTA_ERR_LENGTH_MISMATCH when the
 * total differs from the one the partial upload was started with or len
 * does not match the range; OTA_ERR_HASH_MISMATCH when the last part
 * completes bytes whose SHA-256 is not the name (the partial upload is
 * dropped: start again). Every step goes through hook. */
OTA_WUR int ota_upload_put(struct ota_upload_status *st, const char *dir, const char *name,
                           const struct ota_upload_range *r, const void *data, size_t len,
                           const struct ota_fs_hook *hook, struct ota_detail *det);

#endif
