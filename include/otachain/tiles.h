/* C2SP tlog-tiles: the Merkle log served as static files.
 *
 *   tile/<L>/<N>[.p/<W>]        hash tiles: W (1..255, full = 256) hashes
 *                               of tree level 8L, indices N*256 .. N*256+W-1
 *   tile/entries/<N>[.p/<W>]    entry bundles: entries N*256 .. N*256+W-1,
 *                               each as a big-endian uint16 length + bytes
 *
 * <N> is written in zero-padded 3-digit groups, all but the last prefixed
 * with 'x' (1234067 -> x001/x234/067). The partial tile of level L for a
 * tree of size s has width floor(s / 256^L) mod 256; empty tiles do not
 * exist. Full tiles never change; a partial tile changes as the log grows.
 *
 * This module formats and strictly parses those paths, encodes and parses
 * entry bundles, computes the tiles a batch of new leaves adds, and serves
 * the Merkle source of otachain/merkle.h from tiles (nodes at any level).
 * Tiles read through a reader are trusted as given: a client reading them
 * from an untrusted server checks the root it computes against a signed
 * checkpoint, or verifies the proofs it builds from them.
 */
#ifndef OTACHAIN_TILES_H
#define OTACHAIN_TILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "otachain/buf.h"
#include "otachain/err.h"
#include "otachain/merkle.h"

#define OTA_TILES_HEIGHT     8   /* tree levels per tile */
#define OTA_TILES_WIDTH      256 /* hashes (or entries) in a full tile */
#define OTA_TILES_FULL_BYTES (OTA_TILES_WIDTH * OTA_MERKLE_HASH_LEN) /* 8192 */
/* Tile levels that can hold a hash of a tree of at most 2^63 leaves. */
#define OTA_TILES_MAX_LEVEL 7
/* Longest path, NUL included ("tile/entries/" + 7 groups + ".p/255"). */
#define OTA_TILES_PATH_MAX 64
/* Entry bundles: an entry is at most 65535 bytes (its uint16 length). */
#define OTA_TILES_ENTRY_MAX  65535
#define OTA_TILES_BUNDLE_MAX ((size_t)OTA_TILES_WIDTH * (2 + OTA_TILES_ENTRY_MAX))

/* One tile or entry bundle. */
struct ota_tiles_id {
    bool entries;   /* tile/entries/...; level is then 0 */
    unsigned level; /* L: the tile holds hashes of tree level 8L */
    uint64_t index; /* N */
    unsigned width; /* W: 1..256; 256 is a full tile (no .p/ suffix) */
};

/* Width of tile (level, index) in the tree of `size` leaves: 256 if full,
 * 1..255 if partial, 0 if it does not exist (yet). */
unsigned ota_tiles_width(unsigned level, uint64_t index, uint64_t size);

/* Writes the path of id ("tile/..."; no prefix, no leading slash),
 * NUL-terminated. OTA_ERR_INVALID_ARG for an id no tree of at most 2^63
 * leaves has (level > 7, width 0 or > 256, entries at level != 0, index
 * beyond the cap). */
OTA_WUR int ota_tiles_path_format(char out[OTA_TILES_PATH_MAX], const struct ota_tiles_id *id);

/* Parses len bytes of path (no prefix). Strict: only the canonical form
 * that ota_tiles_path_format writes is accepted (no leading zeros in L or
 * W, no superfluous "x000/" group, W in 1..255, nothing after it), else
 * OTA_ERR_FORMAT; a well-formed path beyond the 2^63-leaf cap is
 * OTA_ERR_TOO_LARGE, as is len >= OTA_TILES_PATH_MAX. On failure *id is
 * zeroed. */
OTA_WUR int ota_tiles_path_parse(struct ota_tiles_id *id, const char *path, size_t len,
                                 struct ota_detail *det);

/* ---- entry bundles ---- */

/* One entry of a parsed bundle: points into the parser's input. */
struct ota_tiles_entry {
    const uint8_t *data;
    size_t len;
};

/* Appends one entry (uint16 length, big-endian, then the bytes) to a
 * bundle being built in b (whose cap the caller chose). OTA_ERR_TOO_LARGE
 * for len > 65535 or past b's cap; nothing appended then. May reallocate
 * b->data (see otachain/buf.h). */
OTA_WUR int ota_tiles_bundle_append(struct ota_buf *b, const void *entry, size_t len);

/* Parses a bundle that must hold exactly `width` entries (1..256, from its
 * path or the tree size). entries[i] points into `in`, which the caller
 * keeps alive. OTA_ERR_TOO_LARGE for len > OTA_TILES_BUNDLE_MAX;
 * OTA_ERR_FORMAT for a truncated entry, fewer entries, or bytes after the
 * last one. On failure *count is 0. Empty entries (length 0) are valid. */
OTA_WUR int ota_tiles_bundle_parse(struct ota_tiles_entry entries[OTA_TILES_WIDTH], size_t *count,
                                   const uint8_t *in, size_t len, unsigned width,
                                   struct ota_detail *det);

/* Checks that the count parsed entries hash (RFC 9162 leaf hash) to the
 * first count hashes of a level-0 tile of tile_len bytes.
 * OTA_ERR_HASH_MISMATCH naming the first entry that differs; OTA_ERR_FORMAT
 * if the tile is shorter than count hashes or not a whole number of them. */
OTA_WUR int ota_tiles_bundle_verify(const struct ota_tiles_entry *entries, size_t count,
                                    const uint8_t *tile, size_t tile_len, struct ota_detail *det);

/* ---- reading and writing hash tiles ---- */

/* Reads hash tile (level, index) of `width` hashes (256 = full) into out
 * and sets *len to its byte count (the library checks it is width * 32).
 * Returns 0, OTA_ERR_NOT_FOUND if there is no such tile, or another
 * negative ota_err. */
struct ota_tiles_reader {
    int (*read)(void *ctx, unsigned level, uint64_t index, unsigned width,
                uint8_t out[OTA_TILES_FULL_BYTES], size_t *len);
    void *ctx;
};

/* Receives a tile to store: width hashes, width * 32 bytes at `hashes`
 * (valid during the call only). Returns 0 or a negative ota_err. */
struct ota_tiles_sink {
    int (*tile)(void *ctx, unsigned level, uint64_t index, unsigned width, const uint8_t *hashes);
    void *ctx;
};

/* Grows a tiled tree from old_size by `count` leaf hashes and hands `sink`
 * every tile that the new size adds or changes: each full tile completed
 * (as it completes, level 0 first), then, per level, the partial tile of
 * the new size if that level gained hashes. Tiles that do not change are
 * not emitted. The hashes already in the old size's partial tiles are read
 * through `old` (not called when old_size is a multiple of 256 at every
 * level that changes); `old` may be NULL for old_size 0. Stops at the
 * first error of reader or sink; tiles emitted before stay valid tiles of
 * the new tree, so a retry with the same arguments is safe. Uses 64 KiB
 * of heap. */
OTA_WUR int ota_tiles_append(uint64_t old_size, const uint8_t (*leaves)[OTA_MERKLE_HASH_LEN],
                             size_t count, const struct ota_tiles_reader *old,
                             const struct ota_tiles_sink *sink, struct ota_detail *det);

/* ---- the Merkle source over tiles ---- */

/* One cached tile (caller-allocated, opaque). */
struct ota_tiles_slot {
    uint64_t index;
    uint64_t used; /* LRU stamp; 0 = empty */
    unsigned level;
    unsigned width;
    uint8_t hash[OTA_TILES_WIDTH][OTA_MERKLE_HASH_LEN];
};

/* A Merkle source for the tree of `size` leaves backed by its tiles, with
 * an LRU cache of nslots tiles (8 KiB each) in caller memory. Pass &src to
 * the ota_merkle_* generation functions. Nodes at tree levels that are not
 * multiples of 8 are hashed from the tile below (at most 127 hashes); a
 * partial tile that is missing is read from the full tile of the same
 * index, if there is one. Not thread-safe; do not copy after init (src.ctx
 * points to the struct itself). */
struct ota_tiles_source {
    struct ota_merkle_source src;
    struct ota_tiles_reader reader;
    uint64_t size;
    struct ota_tiles_slot *slots;
    size_t nslots;
    uint64_t clock;
    uint64_t reads; /* tiles read through the reader */
    uint64_t hits;  /* look-ups answered from the cache */
};

/* A published log's hash tiles through a fetcher (OTA_FETCH_LEDGER,
 * "tile/<L>/<N>[.p/<W>]"): what clients and the bundle builder read. Each
 * tile is capped at, and must be exactly, its width * 32 bytes
 * (OTA_ERR_FORMAT otherwise; the fetcher's errors as they are). The
 * reader interface carries no detail, so the last failure's (naming the
 * tile) is kept in det. */
struct ota_fetcher;
struct ota_tiles_fetch {
    const struct ota_fetcher *f;
    struct ota_detail det;
};

/* Sets *out to read through tf, which must outlive it. */
void ota_tiles_fetch_reader(struct ota_tiles_reader *out, struct ota_tiles_fetch *tf);

/* Sets up ts over `size` leaves; needs nslots >= 1 (a proof touches at
 * most two tiles per tile level: 16 slots never evict within a proof). */
OTA_WUR int ota_tiles_source_init(struct ota_tiles_source *ts, uint64_t size,
                                  const struct ota_tiles_reader *reader,
                                  struct ota_tiles_slot *slots, size_t nslots);

#endif
