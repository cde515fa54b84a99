/* libFuzzer harness for the chunk index parser and the file reader.
 *
 * Properties, for any input: the parser either refuses it (and leaves
 * *out NULL) or returns an index that satisfies every rule of
 * docs/formats/chunk-index.md: parameters valid, lengths in bounds,
 * offsets contiguous, sums equal to the header's lengths, repeats
 * pointing at an earlier identical first occurrence. An accepted
 * input is canonical: re-serializing the parsed index gives back exactly
 * the input bytes (nothing in it was ignored). The file reader
 * (ota_chunk_index_open, over an anonymous memory file) gives the same
 * result, and its cursor the same entries. Any violation aborts.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "otachain/chunk_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void check(const struct ota_chunk_index *idx, const uint8_t *data, size_t size)
{
    uint64_t off = 0;
    uint64_t zoff = 0;
    uint8_t *ser;
    size_t n;
    uint32_t i;

    if (ota_chunker_params_check(&idx->chunker, NULL) != 0)
        abort();
    if (idx->count > OTA_CHUNK_INDEX_MAX_CHUNKS || idx->image_length > OTA_CHUNK_INDEX_MAX_IMAGE)
        abort();
    n = OTA_CHUNK_INDEX_HEADER_LEN + (size_t)idx->count * OTA_CHUNK_INDEX_ENTRY_LEN;
    if (n != size)
        abort();
    ser = calloc(1, n);
    if (ser == NULL)
        abort();
    memcpy(ser, OTA_CHUNK_INDEX_MAGIC, 8);
    put32(ser + 8, OTA_CHUNK_INDEX_VERSION);
    ser[16] = OTA_CHUNKER_ID;
    ser[17] = (uint8_t)idx->chunker.nc_level;
    ser[18] = OTA_CHUNK_COMPRESSION_ZSTD;
    ser[19] = (uint8_t)(int8_t)idx->zstd_level;
    put32(ser + 20, idx->chunker.min_size);
    put32(ser + 24, idx->chunker.avg_size);
    put32(ser + 28, idx->chunker.max_size);
    put32(ser + 32, idx->count);
    put64(ser + 40, idx->image_length);
    put64(ser + 48, idx->pack_length);
    memcpy(ser + 56, idx->image_sha256, 32);
    memcpy(ser + 88, ota_chunker_gear_sha256, 32);
    for (i = 0; i < idx->count; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];
        uint8_t *p = ser + OTA_CHUNK_INDEX_HEADER_LEN + (size_t)i * OTA_CHUNK_INDEX_ENTRY_LEN;

        if (e->offset != off || e->first > i)
            abort();
        if (e->first == i && e->pack_offset != zoff)
            abort();
        if (e->first != i) {
            const struct ota_chunk_entry *f = &idx->chunks[e->first];

            if (f->first != e->first || f->length != e->length ||
                memcmp(f->sha256, e->sha256, 32) != 0 || e->pack_offset != f->pack_offset ||
                e->zlength != f->zlength)
                abort();
        }
        if (e->length == 0 || e->length > idx->chunker.max_size ||
            (e->length < idx->chunker.min_size && i + 1 < idx->count))
            abort();
        if (e->zlength == 0 || e->zlength > ota_chunk_index_zbound(e->length))
            abort();
        off += e->length;
        if (e->first == i)
            zoff += e->zlength;
        put32(p, e->length);
        put32(p + 4, e->first == i ? e->zlength : 0);
        memcpy(p + 8, e->sha256, 32);
    }
    if (off != idx->image_length || zoff != idx->pack_length)
        abort();
    if (memcmp(ser, data, size) != 0)
        abort();
    free(ser);
}

/* The file reader agrees with the parser (rc; entries when accepted). */
static void check_file(const struct ota_chunk_index *idx, int want, const uint8_t *data,
                       size_t size)
{
    static struct ota_chunk_cursor c;
    struct ota_chunk_index_file *f = NULL;
    struct ota_chunk_entry e;
    uint64_t fo;
    int fd = memfd_create("index", MFD_CLOEXEC);
    size_t off = 0;
    int rc;

    if (fd < 0)
        abort();
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);

        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    rc = ota_chunk_index_open(&f, fd, NULL, NULL);
    close(fd);
    if (rc != want || (rc != 0) != (f == NULL))
        abort();
    if (rc != 0)
        return;
    ota_chunk_cursor_init(&c, f);
    memset(&e, 0, sizeof(e));
    for (uint32_t i = 0; i < idx->count; i++) {
        if (ota_chunk_cursor_next(&c, &e, &fo, NULL) != 1 ||
            memcmp(&e, &idx->chunks[i], sizeof(e)) != 0 ||
            fo != idx->chunks[idx->chunks[i].first].offset)
            abort();
    }
    if (ota_chunk_cursor_next(&c, &e, &fo, NULL) != 0)
        abort();
    ota_chunk_index_file_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_chunk_index *idx = NULL;
    struct ota_detail det;
    int rc;

    rc = ota_chunk_index_parse(&idx, data, size, &det);
    if (rc != 0) {
        if (idx != NULL || rc >= 0)
            abort();
        check_file(NULL, rc, data, size);
        return 0;
    }
    check(idx, data, size);
    check_file(idx, 0, data, size);
    ota_chunk_index_free(idx);
    return 0;
}
