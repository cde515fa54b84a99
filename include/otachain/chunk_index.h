/* Chunk index: strict parser (verify side). Format: docs/formats/chunk-index.md.
 *
 * The index bytes must already be pinned (TUF target length and SHA-256)
 * before they are parsed and trusted; the parser only guarantees that what
 * it returns is well-formed and internally consistent: lengths within the
 * chunker's bounds, offsets contiguous, sums equal to the image and pack
 * lengths.
 */
#ifndef OTACHAIN_CHUNK_INDEX_H
#define OTACHAIN_CHUNK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/chunker.h"
#include "otachain/crypto.h"
#include "otachain/err.h"

#define OTA_CHUNK_INDEX_MAGIC      "OTACHIDX"
#define OTA_CHUNK_INDEX_VERSION    1u
#define OTA_CHUNK_INDEX_HEADER_LEN 120u
#define OTA_CHUNK_INDEX_ENTRY_LEN  40u
#define OTA_CHUNK_INDEX_MAX_CHUNKS (UINT32_C(1) << 24)
#define OTA_CHUNK_INDEX_MAX_IMAGE  (UINT64_C(1) << 40)
#define OTA_CHUNK_COMPRESSION_ZSTD 1u
/* Largest valid index: header plus 2^24 entries (640 MiB + 120). Callers
 * reading an index from disk or the network cap it by the pinned TUF
 * length, which is smaller in practice. */
#define OTA_CHUNK_INDEX_MAX_LEN                                                                    \
    ((uint64_t)OTA_CHUNK_INDEX_HEADER_LEN + (uint64_t)OTA_CHUNK_INDEX_MAX_CHUNKS * 40u)

/* One chunk. offset and pack_offset are derived (prefix sums). A chunk
 * that repeats an earlier one (same SHA-256 and length) has no frame of
 * its own: first is that earlier chunk's index and pack_offset/zlength
 * are its frame's, so decoding works the same for every entry. */
struct ota_chunk_entry {
    uint64_t offset;      /* first byte in the image */
    uint64_t pack_offset; /* first byte of its zstd frame in the pack */
    uint32_t length;      /* uncompressed length, 1..max_size */
    uint32_t zlength;     /* length of that frame */
    uint32_t first;       /* index of the first chunk with this content (itself if new) */
    uint8_t sha256[OTA_SHA256_LEN];
};

struct ota_chunk_index {
    struct ota_chunker_params chunker;
    int zstd_level; /* information only */
    uint64_t image_length;
    uint8_t image_sha256[OTA_SHA256_LEN];
    uint64_t pack_length;
    uint32_t count;
    struct ota_chunk_entry *chunks; /* count entries, image order; owned */
};

/* Parses len bytes of an index. On success *out is a new index (free with
 * ota_chunk_index_free); on failure *out is NULL and the error is one of
 * bad_magic, format_version, truncated, format, unsupported, chunk_params,
 * too_large, trailing_data, length_mismatch, chunk_length (checked in that
 * order, see the format document) or nomem; det says which field. The
 * input is not referenced after the call. */
OTA_WUR int ota_chunk_index_parse(struct ota_chunk_index **out, const uint8_t *data, size_t len,
                                  struct ota_detail *det);

/* Frees an index from ota_chunk_index_parse; NULL is fine. */
void ota_chunk_index_free(struct ota_chunk_index *idx);

/* ---- an index read from a file (the device side) ---------------------------
 *
 * The same format, checks and errors as ota_chunk_index_parse, but the
 * entries stay in the file: memory does not grow with the number of
 * chunks (the first occurrences of repeated chunks go to a table in an
 * unlinked temporary file, and a cursor reads entries in batches). */
struct ota_chunk_index_file;

/* Reads and checks the index in the regular file fd (its bytes must be
 * pinned already; fd is duplicated, the caller may close its own), with
 * its table of first occurrences in tmpdir (NULL: in memory). Errors as
 * ota_chunk_index_parse, plus OTA_ERR_IO. */
OTA_WUR int ota_chunk_index_open(struct ota_chunk_index_file **out, int fd, const char *tmpdir,
                                 struct ota_detail *det);

/* The header (count, image and pack lengths, chunker); chunks is NULL. */
const struct ota_chunk_index *ota_chunk_index_file_header(const struct ota_chunk_index_file *f);

/* Frees; accepts NULL. */
void ota_chunk_index_file_free(struct ota_chunk_index_file *f);

/* Reads entries in order from any position; several cursors may read
 * one file at once. Caller-owned (about 5 KiB: keep it off tight stacks
 * if needed); no cleanup. */
#define OTA_CHUNK_CURSOR_BATCH 128u
struct ota_chunk_cursor {
    const struct ota_chunk_index_file *f;
    uint32_t next;      /* the entry ota_chunk_cursor_next returns */
    uint64_t off, zoff; /* its image offset and the next frame's pack offset */
    uint32_t buf_first, buf_n;
    uint8_t buf[OTA_CHUNK_CURSOR_BATCH * OTA_CHUNK_INDEX_ENTRY_LEN];
};

/* At entry 0. */
void ota_chunk_cursor_init(struct ota_chunk_cursor *c, const struct ota_chunk_index_file *f);

/* Moves to entry i (<= count): forward cheaply, backward from the
 * nearest of the marks kept every 1024 entries. OTA_ERR_INVALID_ARG,
 * OTA_ERR_IO. */
OTA_WUR int ota_chunk_cursor_seek(struct ota_chunk_cursor *c, uint32_t i, struct ota_detail *det);

/* The next entry, as ota_chunk_index_parse would give it (a repeat with
 * its first occurrence's first, pack_offset and zlength), and in
 * *first_offset (may be NULL) the image offset of its first occurrence
 * (its own for a first occurrence). 1 with an entry, 0 after the last,
 * OTA_ERR_IO (the file changed under us). */
OTA_WUR int ota_chunk_cursor_next(struct ota_chunk_cursor *c, struct ota_chunk_entry *e,
                                  uint64_t *first_offset, struct ota_detail *det);

/* Checks that len bytes of data are chunk e: 0 if length and SHA-256 match
 * (constant-time compare), OTA_ERR_LENGTH_MISMATCH or OTA_ERR_HASH_MISMATCH
 * otherwise. For chunks copied from elsewhere (current image, earlier
 * output) before they are written. */
OTA_WUR int ota_chunk_index_check_chunk(const struct ota_chunk_entry *e, const void *data,
                                        size_t len, struct ota_detail *det);

/* zstd's worst-case frame length for n input bytes (ZSTD_COMPRESSBOUND),
 * the upper bound on an entry's zlength. */
uint64_t ota_chunk_index_zbound(uint64_t n);

#endif
