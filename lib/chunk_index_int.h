/* Internal to libotachain: a set of chunks keyed by (SHA-256, length),
 * used by the index parser (repeated chunks), the index writer and the
 * fetch planner. Open addressing over indices into a caller's array of
 * struct ota_chunk_entry (only sha256 and length are read); the slot
 * comes from the first 4 bytes of the SHA-256, which are uniform for
 * chunk ids. The table has at least twice as many slots as items, so a
 * probe always ends on an empty slot.
 */
#ifndef OTACHAIN_CHUNK_INDEX_INT_H
#define OTACHAIN_CHUNK_INDEX_INT_H

#include <stdint.h>

#include "otachain/chunk_index.h"

#define OTA_CHUNK_SET_NONE UINT32_MAX

struct ota_chunk_set {
    uint32_t *slots; /* item index + 1; 0 = empty */
    uint32_t mask;   /* slots - 1 */
    uint32_t n;      /* items added */
};

/* An empty set with room for max_items (<= 2^30). OTA_ERR_NOMEM. */
OTA_WUR int ota_chunk_set_init(struct ota_chunk_set *s, uint32_t max_items);

/* Frees the table; the set is empty afterwards. */
void ota_chunk_set_free(struct ota_chunk_set *s);

/* Index in arr of the item equal to (sha, length), or OTA_CHUNK_SET_NONE. */
uint32_t ota_chunk_set_find(const struct ota_chunk_set *s, const struct ota_chunk_entry *arr,
                            const uint8_t sha[OTA_SHA256_LEN], uint32_t length);

/* Adds arr[i] (caller checked it is absent), growing the table when
 * needed (arr must then hold every item added so far). OTA_ERR_NOMEM. */
OTA_WUR int ota_chunk_set_add(struct ota_chunk_set *s, const struct ota_chunk_entry *arr,
                              uint32_t i);

#endif
