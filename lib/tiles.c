/* C2SP tlog-tiles paths, entry bundles, tile writing and a tile-backed
 * Merkle source (see otachain/tiles.h).
 *
 * Tile arithmetic: tile (L, N) holds the hashes of tree level 8L with
 * indices N*256 .. N*256+255. In a tree of s leaves, level 8L has
 * c = s >> 8L hashes, so tile N is full when (N+1)*256 <= c and partial
 * with width c mod 256 when N == c >> 8. A node (h, i) lives in tile level
 * L = h / 8: it is the root of the 2^(h mod 8) hashes of level 8L starting
 * at i << (h mod 8), which never straddle two tiles.
 */
#include "otachain/tiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/crypto.h"
#include "otachain/fetch.h"

#define HLEN  OTA_MERKLE_HASH_LEN
#define TW    OTA_TILES_WIDTH
#define TBITS OTA_TILES_HEIGHT

/* Hashes that tree level 8*level can hold in a tree of 2^63 leaves, as a
 * bound on tile contents: index*256 + width <= level_cap(level). */
static uint64_t level_cap(unsigned level)
{
    return level > OTA_TILES_MAX_LEVEL ? 0 : OTA_MERKLE_MAX_SIZE >> (TBITS * level);
}

/* True if the tile (level, index) of `width` hashes fits in a tree of at
 * most 2^63 leaves. */
static bool tile_fits(unsigned level, uint64_t index, unsigned width)
{
    uint64_t cap = level_cap(level);

    if (width == 0 || width > TW || cap < width)
        return false;
    return index <= (cap - width) / TW;
}

unsigned ota_tiles_width(unsigned level, uint64_t index, uint64_t size)
{
    uint64_t c;

    if (level > OTA_TILES_MAX_LEVEL || size > OTA_MERKLE_MAX_SIZE)
        return 0;
    c = size >> (TBITS * level);
    if (index < c / TW)
        return TW;
    if (index == c / TW)
        return (unsigned)(c % TW);
    return 0;
}

/* ---- paths ---- */

int ota_tiles_path_format(char out[OTA_TILES_PATH_MAX], const struct ota_tiles_id *id)
{
    char digits[24];
    size_t nd = 0;
    size_t pos = 0;
    size_t i;
    uint64_t n;
    int w;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    out[0] = '\0';
    if (id == NULL || (id->entries && id->level != 0) ||
        !tile_fits(id->level, id->index, id->width))
        return OTA_ERR_INVALID_ARG;
    if (id->entries)
        w = snprintf(out, OTA_TILES_PATH_MAX, "tile/entries/");
    else
        w = snprintf(out, OTA_TILES_PATH_MAX, "tile/%u/", id->level);
    if (w < 0 || w >= OTA_TILES_PATH_MAX)
        return OTA_ERR_INVALID_ARG;
    pos = (size_t)w;
    /* Decimal digits, least significant first, padded to whole groups. */
    n = id->index;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (nd % 3 != 0)
        digits[nd++] = '0';
    for (i = nd; i > 0; i -= 3) {
        if (i > 3)
            out[pos++] = 'x';
        out[pos++] = digits[i - 1];
        out[pos++] = digits[i - 2];
        out[pos++] = digits[i - 3];
        if (i > 3)
            out[pos++] = '/';
    }
    out[pos] = '\0';
    if (id->width < TW) {
        w = snprintf(out + pos, OTA_TILES_PATH_MAX - pos, ".p/%u", id->width);
        if (w < 0 || (size_t)w >= OTA_TILES_PATH_MAX - pos) {
            out[0] = '\0';
            return OTA_ERR_INVALID_ARG;
        }
    }
    return 0;
}

/* Parses a decimal number without leading zeros ("0" alone is fine) from
 * p[*i..len), stopping at the first non-digit; at most max_digits digits. */
static bool parse_small(unsigned *out, const char *p, size_t len, size_t *i, size_t max_digits)
{
    size_t start = *i;
    unsigned v = 0;

    while (*i < len && p[*i] >= '0' && p[*i] <= '9') {
        if (*i - start >= max_digits)
            return false;
        v = v * 10 + (unsigned)(p[*i] - '0');
        (*i)++;
    }
    if (*i == start || (p[start] == '0' && *i - start > 1))
        return false;
    *out = v;
    return true;
}

static bool is_digit3(const char *p)
{
    return p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
}

static int path_fail(struct ota_tiles_id *id, struct ota_detail *det, int rc, const char *why)
{
    memset(id, 0, sizeof(*id));
    ota_detail_set(det, "tile path: %s", why);
    return rc;
}

int ota_tiles_path_parse(struct ota_tiles_id *id, const char *path, size_t len,
                         struct ota_detail *det)
{
    static const char pfx[] = "tile/";
    static const char ent[] = "entries/";
    size_t i = 0;
    size_t groups = 0;
    uint64_t n = 0;
    unsigned level = 0;
    unsigned width = TW;
    bool entries = false;

    if (id == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(id, 0, sizeof(*id));
    if (path == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len >= OTA_TILES_PATH_MAX)
        return path_fail(id, det, OTA_ERR_TOO_LARGE, "longer than any tile path");
    if (len < sizeof(pfx) - 1 || memcmp(path, pfx, sizeof(pfx) - 1) != 0)
        return path_fail(id, det, OTA_ERR_FORMAT, "does not start with tile/");
    i = sizeof(pfx) - 1;
    if (len - i >= sizeof(ent) - 1 && memcmp(path + i, ent, sizeof(ent) - 1) == 0) {
        entries = true;
        i += sizeof(ent) - 1;
    } else {
        /* L: 0..63 per the spec's syntax; the cap check below narrows it. */
        if (!parse_small(&level, path, len, &i, 2) || level > 63 || i >= len || path[i] != '/')
            return path_fail(id, det, OTA_ERR_FORMAT, "bad level");
        i++;
    }
    /* N: groups "xDDD/" then a last "DDD". */
    for (;;) {
        if (len - i >= 5 && path[i] == 'x' && is_digit3(path + i + 1) && path[i + 4] == '/') {
            unsigned g = (unsigned)((path[i + 1] - '0') * 100 + (path[i + 2] - '0') * 10 +
                                    (path[i + 3] - '0'));

            if (groups == 0 && g == 0)
                return path_fail(id, det, OTA_ERR_FORMAT, "superfluous x000 group");
            if (n > (UINT64_MAX - g) / 1000)
                return path_fail(id, det, OTA_ERR_TOO_LARGE, "index overflows");
            n = n * 1000 + g;
            groups++;
            i += 5;
            continue;
        }
        if (len - i >= 3 && is_digit3(path + i)) {
            unsigned g =
                (unsigned)((path[i] - '0') * 100 + (path[i + 1] - '0') * 10 + (path[i + 2] - '0'));

            if (n > (UINT64_MAX - g) / 1000)
                return path_fail(id, det, OTA_ERR_TOO_LARGE, "index overflows");
            n = n * 1000 + g;
            i += 3;
            break;
        }
        return path_fail(id, det, OTA_ERR_FORMAT, "bad index");
    }
    if (i < len) {
        if (len - i < 4 || memcmp(path + i, ".p/", 3) != 0)
            return path_fail(id, det, OTA_ERR_FORMAT, "trailing characters");
        i += 3;
        if (!parse_small(&width, path, len, &i, 3) || width == 0 || width >= TW || i != len)
            return path_fail(id, det, OTA_ERR_FORMAT, "bad partial width");
    }
    if (!tile_fits(level, n, width))
        return path_fail(id, det, OTA_ERR_TOO_LARGE, "beyond a tree of 2^63 leaves");
    id->entries = entries;
    id->level = level;
    id->index = n;
    id->width = width;
    return 0;
}

/* ---- entry bundles ---- */

int ota_tiles_bundle_append(struct ota_buf *b, const void *entry, size_t len)
{
    uint8_t hdr[2];
    size_t old;
    int rc;

    if (b == NULL || (entry == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_TILES_ENTRY_MAX)
        return OTA_ERR_TOO_LARGE;
    if (b->len > b->max || b->max - b->len < 2 + len)
        return OTA_ERR_TOO_LARGE;
    hdr[0] = (uint8_t)(len >> 8);
    hdr[1] = (uint8_t)len;
    old = b->len;
    rc = ota_buf_append(b, hdr, 2);
    if (rc == 0)
        rc = ota_buf_append(b, entry, len);
    if (rc != 0 && b->data != NULL) {
        b->len = old; /* both appends fit the cap; only NOMEM gets here */
        b->data[old] = '\0';
    }
    return rc;
}

int ota_tiles_bundle_parse(struct ota_tiles_entry entries[OTA_TILES_WIDTH], size_t *count,
                           const uint8_t *in, size_t len, unsigned width, struct ota_detail *det)
{
    size_t pos = 0;
    size_t n = 0;

    if (count != NULL)
        *count = 0;
    if (entries == NULL || count == NULL || (in == NULL && len > 0) || width == 0 || width > TW)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_TILES_BUNDLE_MAX) {
        ota_detail_set(det, "entry bundle: %zu bytes, above the cap", len);
        return OTA_ERR_TOO_LARGE;
    }
    while (n < width) {
        size_t el;

        if (len - pos < 2) {
            ota_detail_set(det, "entry bundle: %zu entries, expected %u", n, width);
            goto fail;
        }
        el = ((size_t)in[pos] << 8) | in[pos + 1];
        pos += 2;
        if (len - pos < el) {
            ota_detail_set(det, "entry bundle: entry %zu truncated (%zu of %zu bytes)", n,
                           len - pos, el);
            goto fail;
        }
        entries[n].data = in + pos;
        entries[n].len = el;
        pos += el;
        n++;
    }
    if (pos != len) {
        ota_detail_set(det, "entry bundle: %zu bytes after entry %u", len - pos, width);
        goto fail;
    }
    *count = n;
    return 0;
fail:
    memset(entries, 0, sizeof(entries[0]) * TW);
    return OTA_ERR_FORMAT;
}

int ota_tiles_bundle_verify(const struct ota_tiles_entry *entries, size_t count,
                            const uint8_t *tile, size_t tile_len, struct ota_detail *det)
{
    uint8_t h[HLEN];
    size_t i;
    int rc;

    if ((entries == NULL && count > 0) || (tile == NULL && tile_len > 0) || count > TW)
        return OTA_ERR_INVALID_ARG;
    if (tile_len % HLEN != 0 || tile_len / HLEN < count || tile_len > OTA_TILES_FULL_BYTES) {
        ota_detail_set(det, "level-0 tile of %zu bytes for %zu entries", tile_len, count);
        return OTA_ERR_FORMAT;
    }
    for (i = 0; i < count; i++) {
        rc = ota_merkle_leaf_hash(h, entries[i].data, entries[i].len);
        if (rc != 0)
            return rc;
        if (!ota_ct_equal(h, tile + i * HLEN, HLEN)) {
            ota_detail_set(det, "entry %zu of the bundle does not match its leaf hash", i);
            return OTA_ERR_HASH_MISMATCH;
        }
    }
    return 0;
}

/* ---- tile hashing ---- */

/* Folds 2^levels consecutive hashes (in place in buf) into their subtree
 * root, written to out. */
static int fold(uint8_t out[HLEN], uint8_t (*buf)[HLEN], unsigned levels)
{
    size_t n = (size_t)1 << levels;
    size_t i;
    int rc;

    while (n > 1) {
        for (i = 0; i < n / 2; i++) {
            rc = ota_merkle_node_hash(buf[i], buf[2 * i], buf[2 * i + 1]);
            if (rc != 0)
                return rc;
        }
        n /= 2;
    }
    memcpy(out, buf[0], HLEN);
    return 0;
}

/* Calls a reader and checks it returned exactly width hashes; out holds
 * OTA_TILES_FULL_BYTES. */
static int read_tile(const struct ota_tiles_reader *r, unsigned level, uint64_t index,
                     unsigned width, uint8_t *out, struct ota_detail *det)
{
    size_t len = 0;
    int rc = r->read(r->ctx, level, index, width, out, &len);

    if (rc > 0)
        rc = OTA_ERR_INVALID_ARG; /* a reader broke its contract */
    if (rc == 0 && len != (size_t)width * HLEN) {
        ota_detail_set(det, "tile %u/%llu: %zu bytes, expected %u hashes", level,
                       (unsigned long long)index, len, width);
        rc = OTA_ERR_FORMAT;
    } else if (rc != 0) {
        ota_detail_set(det, "tile %u/%llu (width %u) unreadable", level, (unsigned long long)index,
                       width);
    }
    return rc;
}

/* ---- writing ---- */

struct level_buf {
    uint64_t index; /* tile being filled */
    unsigned width; /* hashes in it */
    uint8_t hash[TW][HLEN];
};

/* Adds one hash of tree level 8*level to lv (nlev levels); passes each
 * tile it completes to the sink and its root to the level above. */
static int push(struct level_buf *lv, unsigned nlev, unsigned level, const uint8_t h[HLEN],
                const struct ota_tiles_sink *sink)
{
    uint8_t tmp[TW][HLEN];
    uint8_t cur[HLEN];
    int rc;

    memcpy(cur, h, HLEN);
    for (;;) {
        memcpy(lv[level].hash[lv[level].width++], cur, HLEN);
        if (lv[level].width < TW)
            return 0;
        rc = sink->tile(sink->ctx, level, lv[level].index, TW, &lv[level].hash[0][0]);
        if (rc != 0)
            return rc > 0 ? OTA_ERR_INVALID_ARG : rc;
        memcpy(tmp, lv[level].hash, sizeof(tmp));
        rc = fold(cur, tmp, TBITS);
        if (rc != 0)
            return rc;
        lv[level].index++;
        lv[level].width = 0;
        /* A completed tile adds a hash to the level above, which is
         * therefore one of the nlev levels that grow. */
        if (++level >= nlev)
            return OTA_ERR_INVALID_ARG;
    }
}

int ota_tiles_append(uint64_t old_size, const uint8_t (*leaves)[HLEN], size_t count,
                     const struct ota_tiles_reader *old, const struct ota_tiles_sink *sink,
                     struct ota_detail *det)
{
    struct level_buf *lv;
    uint64_t new_size;
    unsigned nlev = 0;
    unsigned l;
    size_t i;
    int rc = 0;

    if ((leaves == NULL && count > 0) || sink == NULL || sink->tile == NULL ||
        (old != NULL && old->read == NULL))
        return OTA_ERR_INVALID_ARG;
    if (old_size > OTA_MERKLE_MAX_SIZE || count > OTA_MERKLE_MAX_SIZE - old_size) {
        ota_detail_set(det, "tiles: size %llu + %zu above 2^63", (unsigned long long)old_size,
                       count);
        return OTA_ERR_TOO_LARGE;
    }
    if (count == 0)
        return 0;
    new_size = old_size + count;
    /* Levels that gain hashes: 8L bits of the size change above them. */
    while (nlev <= OTA_TILES_MAX_LEVEL &&
           (new_size >> (TBITS * nlev)) > (old_size >> (TBITS * nlev)))
        nlev++;
    lv = calloc(nlev, sizeof(*lv));
    if (lv == NULL)
        return OTA_ERR_NOMEM;
    for (l = 0; l < nlev; l++) {
        uint64_t c = old_size >> (TBITS * l);

        lv[l].index = c / TW;
        lv[l].width = (unsigned)(c % TW);
        if (lv[l].width == 0)
            continue;
        if (old == NULL) {
            ota_detail_set(det, "tiles: no reader for the old partial tiles");
            rc = OTA_ERR_INVALID_ARG;
            goto out;
        }
        rc = read_tile(old, l, lv[l].index, lv[l].width, (uint8_t *)lv[l].hash, det);
        if (rc != 0)
            goto out;
    }
    for (i = 0; i < count; i++) {
        rc = push(lv, nlev, 0, leaves[i], sink);
        if (rc != 0)
            goto out;
    }
    for (l = 0; l < nlev; l++) {
        if (lv[l].width == 0)
            continue;
        rc = sink->tile(sink->ctx, l, lv[l].index, lv[l].width, &lv[l].hash[0][0]);
        if (rc != 0) {
            rc = rc > 0 ? OTA_ERR_INVALID_ARG : rc;
            goto out;
        }
    }
out:
    free(lv);
    return rc;
}

/* ---- the source ---- */

/* A slot holding (level, index) with at least `need` hashes, read through
 * the reader (as a tile of `width` hashes) on a miss. */
static int get_tile(struct ota_tiles_slot **out, struct ota_tiles_source *ts, unsigned level,
                    uint64_t index, unsigned width, unsigned need, struct ota_detail *det)
{
    struct ota_tiles_slot *victim = &ts->slots[0];
    size_t i;
    int rc;

    for (i = 0; i < ts->nslots; i++) {
        struct ota_tiles_slot *s = &ts->slots[i];

        if (s->used != 0 && s->level == level && s->index == index && s->width >= need) {
            s->used = ++ts->clock;
            ts->hits++;
            *out = s;
            return 0;
        }
        if (s->used < victim->used)
            victim = s;
    }
    victim->used = 0;
    ts->reads++;
    rc = read_tile(&ts->reader, level, index, width, (uint8_t *)victim->hash, det);
    if (rc == OTA_ERR_NOT_FOUND && width < TW) {
        /* tlog-tiles lets a log drop a partial tile once the full one
         * exists; its first hashes are the same. */
        ts->reads++;
        rc = read_tile(&ts->reader, level, index, TW, (uint8_t *)victim->hash, det);
        width = TW;
    }
    if (rc != 0)
        return rc;
    victim->level = level;
    victim->index = index;
    victim->width = width;
    victim->used = ++ts->clock;
    *out = victim;
    return 0;
}

static int tiles_node(void *ctx, unsigned level, uint64_t index, uint8_t out[HLEN])
{
    struct ota_tiles_source *ts = ctx;
    struct ota_tiles_slot *slot;
    uint8_t tmp[TW / 2][HLEN];
    unsigned tl = level / TBITS;
    unsigned r = level % TBITS;
    uint64_t first;
    unsigned off;
    unsigned width;
    int rc;

    if (level > 63 || index >= (ts->size >> level))
        return OTA_ERR_INVALID_ARG; /* no such node in this tree */
    first = index << r;
    off = (unsigned)(first % TW);
    width = ota_tiles_width(tl, first / TW, ts->size);
    rc = get_tile(&slot, ts, tl, first / TW, width, off + (1u << r), NULL);
    if (rc != 0)
        return rc;
    if (r == 0) {
        memcpy(out, slot->hash[off], HLEN);
        return 0;
    }
    memcpy(tmp, slot->hash[off], (size_t)HLEN << r);
    return fold(out, tmp, r);
}

int ota_tiles_source_init(struct ota_tiles_source *ts, uint64_t size,
                          const struct ota_tiles_reader *reader, struct ota_tiles_slot *slots,
                          size_t nslots)
{
    if (ts == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(ts, 0, sizeof(*ts));
    if (reader == NULL || reader->read == NULL || slots == NULL || nslots == 0)
        return OTA_ERR_INVALID_ARG;
    if (size > OTA_MERKLE_MAX_SIZE)
        return OTA_ERR_TOO_LARGE;
    memset(slots, 0, sizeof(*slots) * nslots);
    ts->src.node = tiles_node;
    ts->src.ctx = ts;
    ts->reader = *reader;
    ts->size = size;
    ts->slots = slots;
    ts->nslots = nslots;
    return 0;
}

/* ---- a published log's tiles through a fetcher ---------------------------- */

static int fetch_tile(void *ctx, unsigned level, uint64_t index, unsigned width,
                      uint8_t out[OTA_TILES_FULL_BYTES], size_t *len)
{
    struct ota_tiles_fetch *tf = ctx;
    *len = 0;
    struct ota_tiles_id id = {.entries = false, .level = level, .index = index, .width = width};
    char path[OTA_TILES_PATH_MAX];
    int rc = ota_tiles_path_format(path, &id);
    if (rc != 0)
        return rc;
    size_t want = (size_t)width * OTA_MERKLE_HASH_LEN;
    struct ota_buf b;
    ota_buf_init(&b, want);
    tf->det.msg[0] = '\0';
    rc = tf->f->fetch(tf->f->ctx, OTA_FETCH_LEDGER, path, want, ota_sink_buf, &b, &tf->det);
    if (rc != 0) {
        if (tf->det.msg[0] == '\0')
            ota_detail_set(&tf->det, "ledger/%s: %s", path, ota_strerror(rc));
    } else if (b.len != want) {
        ota_detail_set(&tf->det, "ledger/%s: %zu bytes, a tile of %u hashes has %zu", path, b.len,
                       width, want);
        rc = OTA_ERR_FORMAT;
    } else {
        memcpy(out, b.data, b.len);
        *len = b.len;
    }
    ota_buf_free(&b);
    return rc;
}

void ota_tiles_fetch_reader(struct ota_tiles_reader *out, struct ota_tiles_fetch *tf)
{
    out->read = fetch_tile;
    out->ctx = tf;
}
