/* Chunk index parser (see otachain/chunk_index.h, docs/formats/chunk-index.md).
 *
 * Order of checks = order in the format document, so each malformation
 * has one well-defined error. Nothing is allocated before the input length
 * has been matched against the announced chunk count.
 */
#include "otachain/chunk_index.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_index_int.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint32_t set_slot(const uint8_t *sha, uint32_t mask)
{
    return ((uint32_t)sha[0] | (uint32_t)sha[1] << 8 | (uint32_t)sha[2] << 16 |
            (uint32_t)sha[3] << 24) &
           mask;
}

static int set_alloc(struct ota_chunk_set *s, uint32_t max_items)
{
    uint32_t size = 16;

    while (size < 2 * (uint64_t)max_items)
        size <<= 1;
    s->slots = calloc(size, sizeof(*s->slots));
    if (s->slots == NULL)
        return OTA_ERR_NOMEM;
    s->mask = size - 1;
    s->n = 0;
    return 0;
}

int ota_chunk_set_init(struct ota_chunk_set *s, uint32_t max_items)
{
    s->n = 0;
    s->slots = NULL;
    s->mask = 0;
    if (max_items > (UINT32_C(1) << 30))
        return OTA_ERR_NOMEM;
    return set_alloc(s, max_items);
}

void ota_chunk_set_free(struct ota_chunk_set *s)
{
    free(s->slots);
    s->slots = NULL;
    s->mask = 0;
    s->n = 0;
}

uint32_t ota_chunk_set_find(const struct ota_chunk_set *s, const struct ota_chunk_entry *arr,
                            const uint8_t sha[OTA_SHA256_LEN], uint32_t length)
{
    uint32_t k;

    if (s->slots == NULL)
        return OTA_CHUNK_SET_NONE;
    for (k = set_slot(sha, s->mask); s->slots[k] != 0; k = (k + 1) & s->mask) {
        const struct ota_chunk_entry *e = &arr[s->slots[k] - 1];

        if (e->length == length && ota_ct_equal(e->sha256, sha, OTA_SHA256_LEN))
            return s->slots[k] - 1;
    }
    return OTA_CHUNK_SET_NONE;
}

static void set_put(struct ota_chunk_set *s, const struct ota_chunk_entry *arr, uint32_t i)
{
    uint32_t k = set_slot(arr[i].sha256, s->mask);

    while (s->slots[k] != 0)
        k = (k + 1) & s->mask;
    s->slots[k] = i + 1;
}

int ota_chunk_set_add(struct ota_chunk_set *s, const struct ota_chunk_entry *arr, uint32_t i)
{
    if (s->slots == NULL || 2 * ((uint64_t)s->n + 1) > (uint64_t)s->mask + 1) {
        struct ota_chunk_set bigger;
        uint32_t k;

        if (s->n >= (UINT32_C(1) << 29) || set_alloc(&bigger, 2 * s->n + 8) != 0)
            return OTA_ERR_NOMEM;
        bigger.n = s->n;
        for (k = 0; s->slots != NULL && k <= s->mask; k++)
            if (s->slots[k] != 0)
                set_put(&bigger, arr, s->slots[k] - 1);
        free(s->slots);
        *s = bigger;
    }
    set_put(s, arr, i);
    s->n++;
    return 0;
}

uint64_t ota_chunk_index_zbound(uint64_t n)
{
    const uint64_t k128 = 128u * 1024u;

    return n + (n >> 8) + (n < k128 ? (k128 - n) >> 11 : 0);
}

static int parse_header(struct ota_chunk_index *idx, const uint8_t *d, size_t len,
                        struct ota_detail *det)
{
    size_t mlen = len < 8 ? len : 8;
    uint32_t version;
    int rc;

    if (memcmp(d, OTA_CHUNK_INDEX_MAGIC, mlen) != 0) {
        ota_detail_set(det, "chunk index: magic is not \"" OTA_CHUNK_INDEX_MAGIC "\"");
        return OTA_ERR_BAD_MAGIC;
    }
    if (len < 12) {
        ota_detail_set(det, "chunk index: %zu bytes, shorter than its version field", len);
        return OTA_ERR_TRUNCATED;
    }
    version = rd32(d + 8);
    if (version != OTA_CHUNK_INDEX_VERSION) {
        ota_detail_set(det, "chunk index: format version %" PRIu32 ", this reader knows 1",
                       version);
        return OTA_ERR_FORMAT_VERSION;
    }
    if (len < OTA_CHUNK_INDEX_HEADER_LEN) {
        ota_detail_set(det, "chunk index: %zu bytes, shorter than the 120-byte header", len);
        return OTA_ERR_TRUNCATED;
    }
    if (rd32(d + 12) != 0 || rd32(d + 36) != 0) {
        ota_detail_set(det, "chunk index: reserved flags are not zero");
        return OTA_ERR_FORMAT;
    }
    if (d[16] != OTA_CHUNKER_ID || d[18] != OTA_CHUNK_COMPRESSION_ZSTD ||
        !ota_ct_equal(d + 88, ota_chunker_gear_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "chunk index: chunker %u, compression %u or gear table unknown",
                       (unsigned)d[16], (unsigned)d[18]);
        return OTA_ERR_UNSUPPORTED;
    }
    idx->chunker.nc_level = d[17];
    idx->zstd_level = (int)(int8_t)d[19];
    idx->chunker.min_size = rd32(d + 20);
    idx->chunker.avg_size = rd32(d + 24);
    idx->chunker.max_size = rd32(d + 28);
    rc = ota_chunker_params_check(&idx->chunker, det);
    if (rc != 0) {
        ota_detail_prefix(det, "chunk index");
        return rc;
    }
    idx->count = rd32(d + 32);
    idx->image_length = rd64(d + 40);
    idx->pack_length = rd64(d + 48);
    memcpy(idx->image_sha256, d + 56, OTA_SHA256_LEN);
    if (idx->count > OTA_CHUNK_INDEX_MAX_CHUNKS || idx->image_length > OTA_CHUNK_INDEX_MAX_IMAGE) {
        ota_detail_set(det,
                       "chunk index: %" PRIu32 " chunks, image %" PRIu64
                       " bytes (caps: 2^24 chunks, 2^40 bytes)",
                       idx->count, idx->image_length);
        return OTA_ERR_TOO_LARGE;
    }
    return 0;
}

/* Reads idx->count entries at d into idx->chunks: bounds, repeats,
 * derived offsets; *off and *zoff get the image and pack lengths. */
static int parse_entries(struct ota_chunk_index *idx, const uint8_t *d, uint64_t *off,
                         uint64_t *zoff, struct ota_detail *det)
{
    struct ota_chunk_set seen;
    uint32_t i;
    int rc;

    *off = 0;
    *zoff = 0;
    if (idx->count == 0)
        return 0;
    rc = ota_chunk_set_init(&seen, idx->count);
    if (rc != 0)
        return rc;
    for (i = 0; i < idx->count; i++) {
        const uint8_t *p = d + (size_t)i * OTA_CHUNK_INDEX_ENTRY_LEN;
        struct ota_chunk_entry *e = &idx->chunks[i];
        uint32_t first;

        e->length = rd32(p);
        e->zlength = rd32(p + 4);
        memcpy(e->sha256, p + 8, OTA_SHA256_LEN);
        rc = OTA_ERR_CHUNK_LENGTH;
        if (e->length == 0 || e->length > idx->chunker.max_size ||
            (e->length < idx->chunker.min_size && i + 1 < idx->count)) {
            ota_detail_set(det,
                           "chunk index: chunk %" PRIu32 " has length %" PRIu32 " (min %" PRIu32
                           ", max %" PRIu32 ")",
                           i, e->length, idx->chunker.min_size, idx->chunker.max_size);
            goto out;
        }
        if (e->zlength > ota_chunk_index_zbound(e->length)) {
            ota_detail_set(det,
                           "chunk index: chunk %" PRIu32 " has compressed length %" PRIu32
                           " for %" PRIu32 " bytes",
                           i, e->zlength, e->length);
            goto out;
        }
        /* A repeat has no frame of its own (zlength 0); every first
         * occurrence has one. */
        first = ota_chunk_set_find(&seen, idx->chunks, e->sha256, e->length);
        if (first == OTA_CHUNK_SET_NONE && e->zlength == 0) {
            ota_detail_set(det,
                           "chunk index: chunk %" PRIu32 " has compressed length 0 but "
                           "repeats no earlier chunk",
                           i);
            goto out;
        }
        if (first != OTA_CHUNK_SET_NONE && e->zlength != 0) {
            ota_detail_set(det,
                           "chunk index: chunk %" PRIu32 " repeats chunk %" PRIu32
                           " but has a frame of its own",
                           i, first);
            goto out;
        }
        /* No overflow: at most 2^24 terms of at most 2^21 each. */
        e->offset = *off;
        *off += e->length;
        if (first == OTA_CHUNK_SET_NONE) {
            e->first = i;
            e->pack_offset = *zoff;
            *zoff += e->zlength;
            rc = ota_chunk_set_add(&seen, idx->chunks, i);
            if (rc != 0)
                goto out;
        } else {
            e->first = first;
            e->pack_offset = idx->chunks[first].pack_offset;
            e->zlength = idx->chunks[first].zlength;
        }
    }
    rc = 0;
out:
    ota_chunk_set_free(&seen);
    return rc;
}

int ota_chunk_index_parse(struct ota_chunk_index **out, const uint8_t *data, size_t len,
                          struct ota_detail *det)
{
    struct ota_chunk_index *idx;
    uint64_t want;
    uint64_t off = 0;
    uint64_t zoff = 0;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return OTA_ERR_NOMEM;
    rc = parse_header(idx, data == NULL ? (const uint8_t *)"" : data, len, det);
    if (rc != 0)
        goto fail;
    want = (uint64_t)OTA_CHUNK_INDEX_HEADER_LEN + (uint64_t)idx->count * OTA_CHUNK_INDEX_ENTRY_LEN;
    if ((uint64_t)len < want) {
        ota_detail_set(det, "chunk index: %zu bytes for %" PRIu32 " chunks (need %" PRIu64 ")", len,
                       idx->count, want);
        rc = OTA_ERR_TRUNCATED;
        goto fail;
    }
    if ((uint64_t)len > want) {
        ota_detail_set(det, "chunk index: %" PRIu64 " bytes after the last of %" PRIu32 " chunks",
                       (uint64_t)len - want, idx->count);
        rc = OTA_ERR_TRAILING_DATA;
        goto fail;
    }
    if ((idx->count == 0) != (idx->image_length == 0)) {
        ota_detail_set(det, "chunk index: %" PRIu32 " chunks for an image of %" PRIu64 " bytes",
                       idx->count, idx->image_length);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto fail;
    }
    if (idx->count > 0) {
        idx->chunks = calloc(idx->count, sizeof(*idx->chunks));
        if (idx->chunks == NULL) {
            rc = OTA_ERR_NOMEM;
            goto fail;
        }
    }
    rc = parse_entries(idx, data + OTA_CHUNK_INDEX_HEADER_LEN, &off, &zoff, det);
    if (rc != 0)
        goto fail;
    if (off != idx->image_length || zoff != idx->pack_length) {
        ota_detail_set(det,
                       "chunk index: chunks sum to %" PRIu64 " image bytes and %" PRIu64
                       " pack bytes, header says %" PRIu64 " and %" PRIu64,
                       off, zoff, idx->image_length, idx->pack_length);
        rc = OTA_ERR_LENGTH_MISMATCH;
        goto fail;
    }
    *out = idx;
    return 0;
fail:
    ota_chunk_index_free(idx);
    return rc;
}

void ota_chunk_index_free(struct ota_chunk_index *idx)
{
    if (idx == NULL)
        return;
    free(idx->chunks);
    free(idx);
}

int ota_chunk_index_check_chunk(const struct ota_chunk_entry *e, const void *data, size_t len,
                                struct ota_detail *det)
{
    uint8_t h[OTA_SHA256_LEN];
    int rc;

    if (e == NULL || (data == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (len != e->length) {
        ota_detail_set(det, "chunk at offset %" PRIu64 ": %zu bytes, index says %" PRIu32,
                       e->offset, len, e->length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    rc = ota_sha256(h, data, len);
    if (rc != 0)
        return rc;
    if (!ota_ct_equal(h, e->sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det,
                       "chunk at offset %" PRIu64 " (%" PRIu32 " bytes): SHA-256 differs "
                       "from the index",
                       e->offset, e->length);
        return OTA_ERR_HASH_MISMATCH;
    }
    return 0;
}
