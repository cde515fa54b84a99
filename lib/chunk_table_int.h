/* Internal to libotachain: a set of chunks keyed by (SHA-256, length),
 * each with a record, held in memory or in an unlinked temporary file,
 * so that the device side's memory does not grow with the number of
 * chunks (the first occurrences of a chunk index, the chunks of the
 * current image).
 *
 * Open addressing over 64-byte slots, linear probing, the slot from the
 * first 8 bytes of the SHA-256 (uniform for chunk ids); at most half the
 * slots are used, and the table doubles (rehashing into a new file) when
 * an add would pass that. An empty slot is all zeros, so a new table is a
 * sparse file.
 *
 * Slot layout (little-endian): sha256[32] | length u32 | first u32 |
 * offset u64 | pack_offset u64 | zlength u32 | used u32 (1).
 */
#ifndef OTACHAIN_CHUNK_TABLE_INT_H
#define OTACHAIN_CHUNK_TABLE_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "otachain/crypto.h"
#include "otachain/err.h"

#define OTA_CHUNK_TABLE_SLOT 64u

struct ota_chunk_rec {
    uint8_t sha256[OTA_SHA256_LEN];
    uint32_t length;
    uint32_t first;       /* chunk index of the first occurrence */
    uint64_t offset;      /* its image offset */
    uint64_t pack_offset; /* its frame in the pack */
    uint32_t zlength;
};

struct ota_chunk_table {
    int fd;             /* the table file, or -1: in memory */
    uint8_t *mem;       /* in memory: slots * 64 bytes */
    uint64_t slots;     /* a power of two */
    uint64_t n;         /* records added */
    char dir[PATH_MAX]; /* where the file lives ("" in memory) */
};

/* An empty table sized for about expect records (it grows past that), in
 * an unlinked file in dir, or in memory when dir is NULL. OTA_ERR_IO
 * (det: the directory), OTA_ERR_NOMEM. */
OTA_WUR int ota_chunk_table_init(struct ota_chunk_table *t, uint64_t expect, const char *dir,
                                 struct ota_detail *det);

/* Looks up (sha, length): 1 and *out filled when present, 0 when absent,
 * OTA_ERR_IO. */
OTA_WUR int ota_chunk_table_find(const struct ota_chunk_table *t, const uint8_t sha[OTA_SHA256_LEN],
                                 uint32_t length, struct ota_chunk_rec *out);

/* Adds r, which the caller found absent. OTA_ERR_IO, OTA_ERR_NOMEM,
 * OTA_ERR_TOO_LARGE (more than 2^31 records). */
OTA_WUR int ota_chunk_table_add(struct ota_chunk_table *t, const struct ota_chunk_rec *r,
                                struct ota_detail *det);

/* Frees memory or closes (and so deletes) the file; the table is empty
 * and unusable afterwards. Accepts a zeroed table. */
void ota_chunk_table_free(struct ota_chunk_table *t);

#endif
