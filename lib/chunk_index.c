/* Chunk index parser (see otachain/chunk_index.h, docs/formats/chunk-index.md).
 *
 * Order of checks = order in the format document, so each malformation
 * has one well-defined error. Nothing is allocated before the input length
 * has been matched against the announced chunk count.
 */
#include "otachain/chunk_index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#include "chunk_index_int.h"
#include "chunk_table_int.h"

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

/* Entries are checked one by one, in order, the same way whether the
 * index is in memory or read from a file: bounds, repeats (through a
 * table of first occurrences), derived offsets. */
struct entry_walk {
    const struct ota_chunk_index *h;
    struct ota_chunk_table *firsts;
    uint32_t i;    /* the next entry */
    uint64_t off;  /* its image offset */
    uint64_t zoff; /* the pack offset of the next frame */
};

static int walk_entry(struct entry_walk *w, const uint8_t *p, struct ota_chunk_entry *e,
                      struct ota_detail *det)
{
    const struct ota_chunk_index *idx = w->h;
    struct ota_chunk_rec rec;
    uint32_t i = w->i;
    int found;
    int rc;

    e->length = rd32(p);
    e->zlength = rd32(p + 4);
    memcpy(e->sha256, p + 8, OTA_SHA256_LEN);
    if (e->length == 0 || e->length > idx->chunker.max_size ||
        (e->length < idx->chunker.min_size && i + 1 < idx->count)) {
        ota_detail_set(det,
                       "chunk index: chunk %" PRIu32 " has length %" PRIu32 " (min %" PRIu32
                       ", max %" PRIu32 ")",
                       i, e->length, idx->chunker.min_size, idx->chunker.max_size);
        return OTA_ERR_CHUNK_LENGTH;
    }
    if (e->zlength > ota_chunk_index_zbound(e->length)) {
        ota_detail_set(det,
                       "chunk index: chunk %" PRIu32 " has compressed length %" PRIu32
                       " for %" PRIu32 " bytes",
                       i, e->zlength, e->length);
        return OTA_ERR_CHUNK_LENGTH;
    }
    /* A repeat has no frame of its own (zlength 0); every first
     * occurrence has one. */
    found = ota_chunk_table_find(w->firsts, e->sha256, e->length, &rec);
    if (found < 0)
        return found;
    if (!found && e->zlength == 0) {
        ota_detail_set(det,
                       "chunk index: chunk %" PRIu32 " has compressed length 0 but "
                       "repeats no earlier chunk",
                       i);
        return OTA_ERR_CHUNK_LENGTH;
    }
    if (found && e->zlength != 0) {
        ota_detail_set(det,
                       "chunk index: chunk %" PRIu32 " repeats chunk %" PRIu32
                       " but has a frame of its own",
                       i, rec.first);
        return OTA_ERR_CHUNK_LENGTH;
    }
    /* No overflow: at most 2^24 terms of at most 2^21 each. */
    e->offset = w->off;
    if (!found) {
        e->first = i;
        e->pack_offset = w->zoff;
        memcpy(rec.sha256, e->sha256, OTA_SHA256_LEN);
        rec.length = e->length;
        rec.first = i;
        rec.offset = e->offset;
        rec.pack_offset = e->pack_offset;
        rec.zlength = e->zlength;
        rc = ota_chunk_table_add(w->firsts, &rec, det);
        if (rc != 0)
            return rc;
        w->zoff += e->zlength;
    } else {
        e->first = rec.first;
        e->pack_offset = rec.pack_offset;
        e->zlength = rec.zlength;
    }
    w->off += e->length;
    w->i++;
    return 0;
}

/* The checks between the header and the entries, for an index of len
 * bytes. */
static int check_size(const struct ota_chunk_index *idx, uint64_t len, struct ota_detail *det)
{
    uint64_t want =
        (uint64_t)OTA_CHUNK_INDEX_HEADER_LEN + (uint64_t)idx->count * OTA_CHUNK_INDEX_ENTRY_LEN;

    if (len < want) {
        ota_detail_set(det,
                       "chunk index: %" PRIu64 " bytes for %" PRIu32 " chunks (need %" PRIu64 ")",
                       len, idx->count, want);
        return OTA_ERR_TRUNCATED;
    }
    if (len > want) {
        ota_detail_set(det, "chunk index: %" PRIu64 " bytes after the last of %" PRIu32 " chunks",
                       len - want, idx->count);
        return OTA_ERR_TRAILING_DATA;
    }
    if ((idx->count == 0) != (idx->image_length == 0)) {
        ota_detail_set(det, "chunk index: %" PRIu32 " chunks for an image of %" PRIu64 " bytes",
                       idx->count, idx->image_length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    return 0;
}

/* After the last entry: the sums must be the header's. */
static int check_sums(const struct entry_walk *w, struct ota_detail *det)
{
    if (w->off != w->h->image_length || w->zoff != w->h->pack_length) {
        ota_detail_set(det,
                       "chunk index: chunks sum to %" PRIu64 " image bytes and %" PRIu64
                       " pack bytes, header says %" PRIu64 " and %" PRIu64,
                       w->off, w->zoff, w->h->image_length, w->h->pack_length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    return 0;
}

int ota_chunk_index_parse(struct ota_chunk_index **out, const uint8_t *data, size_t len,
                          struct ota_detail *det)
{
    struct ota_chunk_index *idx;
    struct ota_chunk_table firsts;
    struct entry_walk w;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    memset(&firsts, 0, sizeof(firsts));
    firsts.fd = -1;
    idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return OTA_ERR_NOMEM;
    rc = parse_header(idx, data == NULL ? (const uint8_t *)"" : data, len, det);
    if (rc == 0)
        rc = check_size(idx, len, det);
    if (rc == 0 && idx->count > 0) {
        idx->chunks = calloc(idx->count, sizeof(*idx->chunks));
        rc = idx->chunks == NULL ? OTA_ERR_NOMEM
                                 : ota_chunk_table_init(&firsts, idx->count, NULL, det);
    }
    memset(&w, 0, sizeof(w));
    w.h = idx;
    w.firsts = &firsts;
    for (uint32_t i = 0; rc == 0 && i < idx->count; i++)
        rc = walk_entry(&w,
                        data + OTA_CHUNK_INDEX_HEADER_LEN + (size_t)i * OTA_CHUNK_INDEX_ENTRY_LEN,
                        &idx->chunks[i], det);
    if (rc == 0)
        rc = check_sums(&w, det);
    ota_chunk_table_free(&firsts);
    if (rc != 0) {
        ota_chunk_index_free(idx);
        return rc;
    }
    *out = idx;
    return 0;
}

void ota_chunk_index_free(struct ota_chunk_index *idx)
{
    if (idx == NULL)
        return;
    free(idx->chunks);
    free(idx);
}

/* ---- an index read from a file ------------------------------------------ */

/* A cursor can start from every MARK-th entry without reading those before. */
#define MARK_EVERY 1024u

struct ota_chunk_index_file {
    struct ota_chunk_index hdr; /* chunks NULL */
    int fd;
    struct ota_chunk_table firsts;
    uint64_t *marks; /* image and pack offsets of entry k * MARK_EVERY: marks[2k], marks[2k+1] */
};

const struct ota_chunk_index *ota_chunk_index_file_header(const struct ota_chunk_index_file *f)
{
    return &f->hdr;
}

void ota_chunk_index_file_free(struct ota_chunk_index_file *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    ota_chunk_table_free(&f->firsts);
    free(f->marks);
    free(f);
}

/* Reads entries [i, i + n) of f into buf. */
static int read_entries(const struct ota_chunk_index_file *f, uint8_t *buf, uint32_t i, uint32_t n,
                        struct ota_detail *det)
{
    if (ota_fs_pread_all(f->fd, buf, (size_t)n * OTA_CHUNK_INDEX_ENTRY_LEN,
                         OTA_CHUNK_INDEX_HEADER_LEN + (uint64_t)i * OTA_CHUNK_INDEX_ENTRY_LEN) !=
        0) {
        ota_detail_set(det, "chunk index: reading entries %" PRIu32 "+%" PRIu32 ": %s", i, n,
                       errno != 0 ? strerror(errno) : "the file shrank");
        return OTA_ERR_IO;
    }
    return 0;
}

int ota_chunk_index_open(struct ota_chunk_index_file **out, int fd, const char *tmpdir,
                         struct ota_detail *det)
{
    struct ota_chunk_index_file *f;
    uint8_t head[OTA_CHUNK_INDEX_HEADER_LEN];
    uint8_t *buf = NULL;
    struct entry_walk w;
    struct stat st;
    size_t got;
    int rc;

    if (out == NULL || fd < 0)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return OTA_ERR_NOMEM;
    f->firsts.fd = -1;
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0 || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ota_detail_set(det, "chunk index: not a readable regular file");
        rc = OTA_ERR_IO;
        goto fail;
    }
    got = (uint64_t)st.st_size < sizeof(head) ? (size_t)st.st_size : sizeof(head);
    if (ota_fs_pread_all(f->fd, head, got, 0) != 0) {
        ota_detail_set(det, "chunk index: reading its header: %s", strerror(errno));
        rc = OTA_ERR_IO;
        goto fail;
    }
    rc = parse_header(&f->hdr, head, got, det);
    if (rc == 0)
        rc = check_size(&f->hdr, (uint64_t)st.st_size, det);
    if (rc == 0) {
        f->marks = calloc(2 * ((size_t)f->hdr.count / MARK_EVERY + 1), sizeof(*f->marks));
        buf = malloc(MARK_EVERY * OTA_CHUNK_INDEX_ENTRY_LEN);
        rc = f->marks == NULL || buf == NULL
                 ? OTA_ERR_NOMEM
                 : ota_chunk_table_init(&f->firsts, f->hdr.count, tmpdir, det);
    }
    memset(&w, 0, sizeof(w));
    w.h = &f->hdr;
    w.firsts = &f->firsts;
    while (rc == 0 && w.i < f->hdr.count) {
        uint32_t n = f->hdr.count - w.i < MARK_EVERY ? f->hdr.count - w.i : MARK_EVERY;

        f->marks[2 * (w.i / MARK_EVERY)] = w.off;
        f->marks[2 * (w.i / MARK_EVERY) + 1] = w.zoff;
        rc = read_entries(f, buf, w.i, n, det);
        for (uint32_t k = 0; rc == 0 && k < n; k++) {
            struct ota_chunk_entry e;

            rc = walk_entry(&w, buf + (size_t)k * OTA_CHUNK_INDEX_ENTRY_LEN, &e, det);
        }
    }
    if (rc == 0)
        rc = check_sums(&w, det);
    free(buf);
    if (rc != 0)
        goto fail;
    *out = f;
    return 0;
fail:
    ota_chunk_index_file_free(f);
    return rc;
}

void ota_chunk_cursor_init(struct ota_chunk_cursor *c, const struct ota_chunk_index_file *f)
{
    memset(c, 0, sizeof(*c));
    c->f = f;
}

/* Entry i's raw bytes, through the cursor's buffer. */
static int raw_entry(struct ota_chunk_cursor *c, uint32_t i, const uint8_t **p,
                     struct ota_detail *det)
{
    if (i < c->buf_first || i >= c->buf_first + c->buf_n) {
        uint32_t n = c->f->hdr.count - i;
        int rc;

        if (n > OTA_CHUNK_CURSOR_BATCH)
            n = OTA_CHUNK_CURSOR_BATCH;
        rc = read_entries(c->f, c->buf, i, n, det);
        if (rc != 0)
            return rc;
        c->buf_first = i;
        c->buf_n = n;
    }
    *p = c->buf + (size_t)(i - c->buf_first) * OTA_CHUNK_INDEX_ENTRY_LEN;
    return 0;
}

int ota_chunk_cursor_seek(struct ota_chunk_cursor *c, uint32_t i, struct ota_detail *det)
{
    const uint8_t *p;

    if (i > c->f->hdr.count)
        return OTA_ERR_INVALID_ARG;
    if (i < c->next || i - c->next > MARK_EVERY) {
        uint32_t m = i / MARK_EVERY;

        c->next = m * MARK_EVERY;
        c->off = c->f->marks[2 * m];
        c->zoff = c->f->marks[2 * m + 1];
    }
    /* Offsets are sums of lengths; a repeat's zlength is 0 in the file. */
    while (c->next < i) {
        int rc = raw_entry(c, c->next, &p, det);

        if (rc != 0)
            return rc;
        c->off += rd32(p);
        c->zoff += rd32(p + 4);
        c->next++;
    }
    return 0;
}

int ota_chunk_cursor_next(struct ota_chunk_cursor *c, struct ota_chunk_entry *e,
                          uint64_t *first_offset, struct ota_detail *det)
{
    const uint8_t *p;
    int rc;

    if (c->next >= c->f->hdr.count)
        return 0;
    rc = raw_entry(c, c->next, &p, det);
    if (rc != 0)
        return rc;
    e->length = rd32(p);
    e->zlength = rd32(p + 4);
    memcpy(e->sha256, p + 8, OTA_SHA256_LEN);
    e->offset = c->off;
    if (e->zlength != 0) {
        e->first = c->next;
        e->pack_offset = c->zoff;
        if (first_offset != NULL)
            *first_offset = e->offset;
        c->zoff += e->zlength;
    } else {
        struct ota_chunk_rec rec;

        rc = ota_chunk_table_find(&c->f->firsts, e->sha256, e->length, &rec);
        if (rc <= 0) { /* validated at open: only a changed file gets here */
            ota_detail_set(det, "chunk index: chunk %" PRIu32 " repeats no chunk any more",
                           c->next);
            return rc < 0 ? rc : OTA_ERR_IO;
        }
        e->first = rec.first;
        e->pack_offset = rec.pack_offset;
        e->zlength = rec.zlength;
        if (first_offset != NULL)
            *first_offset = rec.offset;
    }
    c->off += e->length;
    c->next++;
    return 1;
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
