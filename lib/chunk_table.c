/* Chunk tables in memory or in a temporary file: see chunk_table_int.h. */
#define _GNU_SOURCE /* O_TMPFILE: a table file that never has a name */
#include "chunk_table_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#define MAX_RECORDS  (UINT64_C(1) << 31)
#define REHASH_BLOCK (64u * OTA_CHUNK_TABLE_SLOT)

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void encode(uint8_t s[OTA_CHUNK_TABLE_SLOT], const struct ota_chunk_rec *r)
{
    memcpy(s, r->sha256, OTA_SHA256_LEN);
    put32(s + 32, r->length);
    put32(s + 36, r->first);
    put64(s + 40, r->offset);
    put64(s + 48, r->pack_offset);
    put32(s + 56, r->zlength);
    put32(s + 60, 1);
}

static void decode(struct ota_chunk_rec *r, const uint8_t s[OTA_CHUNK_TABLE_SLOT])
{
    memcpy(r->sha256, s, OTA_SHA256_LEN);
    r->length = get32(s + 32);
    r->first = get32(s + 36);
    r->offset = get64(s + 40);
    r->pack_offset = get64(s + 48);
    r->zlength = get32(s + 56);
}

static uint64_t home(const struct ota_chunk_table *t, const uint8_t *sha)
{
    return get64(sha) & (t->slots - 1);
}

static int slot_read(const struct ota_chunk_table *t, uint64_t k, uint8_t s[OTA_CHUNK_TABLE_SLOT])
{
    if (t->fd < 0) {
        memcpy(s, t->mem + k * OTA_CHUNK_TABLE_SLOT, OTA_CHUNK_TABLE_SLOT);
        return 0;
    }
    return ota_fs_pread_all(t->fd, s, OTA_CHUNK_TABLE_SLOT, k * OTA_CHUNK_TABLE_SLOT) == 0
               ? 0
               : OTA_ERR_IO;
}

static int slot_write(struct ota_chunk_table *t, uint64_t k, const uint8_t s[OTA_CHUNK_TABLE_SLOT])
{
    if (t->fd < 0) {
        memcpy(t->mem + k * OTA_CHUNK_TABLE_SLOT, s, OTA_CHUNK_TABLE_SLOT);
        return 0;
    }
    return ota_fs_pwrite_all(t->fd, s, OTA_CHUNK_TABLE_SLOT, k * OTA_CHUNK_TABLE_SLOT) == 0
               ? 0
               : OTA_ERR_IO;
}

/* An unlinked file of size bytes (zeros) in dir. */
static int temp_file(const char *dir, uint64_t size, struct ota_detail *det)
{
    char path[PATH_MAX];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* A file system without O_TMPFILE: a named file, unlinked at once. */
        if (snprintf(path, sizeof(path), "%s/.chunk-table-XXXXXX", dir) >= (int)sizeof(path))
            return OTA_ERR_TOO_LARGE;
        fd = mkstemp(path);
        if (fd >= 0)
            (void)unlink(path);
    }
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        ota_detail_set(det, "a temporary chunk table in %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return OTA_ERR_IO;
    }
    return fd;
}

static int table_alloc(struct ota_chunk_table *t, uint64_t slots, const char *dir,
                       struct ota_detail *det)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    t->slots = slots;
    if (dir == NULL) {
        t->mem = calloc(slots, OTA_CHUNK_TABLE_SLOT);
        return t->mem == NULL ? OTA_ERR_NOMEM : 0;
    }
    if (snprintf(t->dir, sizeof(t->dir), "%s", dir) >= (int)sizeof(t->dir))
        return OTA_ERR_TOO_LARGE;
    t->fd = temp_file(dir, slots * OTA_CHUNK_TABLE_SLOT, det);
    return t->fd < 0 ? t->fd : 0;
}

int ota_chunk_table_init(struct ota_chunk_table *t, uint64_t expect, const char *dir,
                         struct ota_detail *det)
{
    uint64_t slots = 64;

    while (slots < 2 * expect && slots < 2 * MAX_RECORDS)
        slots <<= 1;
    return table_alloc(t, slots, dir, det);
}

void ota_chunk_table_free(struct ota_chunk_table *t)
{
    if (t->fd >= 0)
        close(t->fd);
    free(t->mem);
    t->fd = -1;
    t->mem = NULL;
    t->slots = 0;
    t->n = 0;
}

int ota_chunk_table_find(const struct ota_chunk_table *t, const uint8_t sha[OTA_SHA256_LEN],
                         uint32_t length, struct ota_chunk_rec *out)
{
    uint8_t s[OTA_CHUNK_TABLE_SLOT];

    if (t->slots == 0)
        return 0;
    for (uint64_t k = home(t, sha);; k = (k + 1) & (t->slots - 1)) {
        if (slot_read(t, k, s) != 0)
            return OTA_ERR_IO;
        if (get32(s + 60) == 0)
            return 0;
        if (get32(s + 32) == length && ota_ct_equal(s, sha, OTA_SHA256_LEN)) {
            decode(out, s);
            return 1;
        }
    }
}

/* Puts an encoded slot into the first free slot of its probe sequence. */
static int put(struct ota_chunk_table *t, const uint8_t enc[OTA_CHUNK_TABLE_SLOT])
{
    uint8_t s[OTA_CHUNK_TABLE_SLOT];

    for (uint64_t k = home(t, enc);; k = (k + 1) & (t->slots - 1)) {
        if (slot_read(t, k, s) != 0)
            return OTA_ERR_IO;
        if (get32(s + 60) == 0) {
            if (slot_write(t, k, enc) != 0)
                return OTA_ERR_IO;
            t->n++;
            return 0;
        }
    }
}

/* Doubles the table: every used slot into a new one. */
static int grow(struct ota_chunk_table *t, struct ota_detail *det)
{
    struct ota_chunk_table bigger;
    uint8_t *block = malloc(REHASH_BLOCK);
    int rc;

    if (block == NULL)
        return OTA_ERR_NOMEM;
    rc = table_alloc(&bigger, t->slots * 2, t->fd >= 0 ? t->dir : NULL, det);
    for (uint64_t k = 0; rc == 0 && k < t->slots; k += REHASH_BLOCK / OTA_CHUNK_TABLE_SLOT) {
        uint64_t n = t->slots - k < REHASH_BLOCK / OTA_CHUNK_TABLE_SLOT
                         ? t->slots - k
                         : REHASH_BLOCK / OTA_CHUNK_TABLE_SLOT;

        if (t->fd < 0)
            memcpy(block, t->mem + k * OTA_CHUNK_TABLE_SLOT, n * OTA_CHUNK_TABLE_SLOT);
        else if (ota_fs_pread_all(t->fd, block, n * OTA_CHUNK_TABLE_SLOT,
                                  k * OTA_CHUNK_TABLE_SLOT) != 0)
            rc = OTA_ERR_IO;
        for (uint64_t j = 0; rc == 0 && j < n; j++)
            if (get32(block + j * OTA_CHUNK_TABLE_SLOT + 60) != 0)
                rc = put(&bigger, block + j * OTA_CHUNK_TABLE_SLOT);
    }
    free(block);
    if (rc != 0) {
        ota_chunk_table_free(&bigger);
        return rc;
    }
    ota_chunk_table_free(t);
    *t = bigger;
    return 0;
}

int ota_chunk_table_add(struct ota_chunk_table *t, const struct ota_chunk_rec *r,
                        struct ota_detail *det)
{
    uint8_t enc[OTA_CHUNK_TABLE_SLOT];
    int rc;

    if (t->n >= MAX_RECORDS)
        return OTA_ERR_TOO_LARGE;
    if (2 * (t->n + 1) > t->slots) {
        rc = grow(t, det);
        if (rc != 0)
            return rc;
    }
    encode(enc, r);
    return put(t, enc);
}
