/* Reference delta maker (see otachain/delta_make.h, docs/formats/delta.md).
 *
 * Matching (after Colin Percival, "Naive differences of executable code",
 * 2003; written from the paper, not from bsdiff's source):
 *
 *   The to-image ("new") is covered left to right by segments. A segment
 *   has an alignment a (new byte i pairs with old byte i + a); its first
 *   part is an approximate match (ADD: new - old, mostly zero bytes, and
 *   COPY for long exact runs), its tail literal bytes (INSERT). The scan
 *   keeps the current alignment through bytes it matches and, where it
 *   fails, looks up the longest exact match of new[p..] in the old image
 *   with a suffix array. That match starts a new segment if it is longer,
 *   by more than min_gain bytes, than the number of bytes the current
 *   alignment matches over the same span. The closing segment's
 *   approximate part then extends forward from its start as long as it
 *   matches more than half of the bytes, the new one extends backward the
 *   same way, and what lies between becomes INSERT.
 *
 * Cost control (bsdiff did not finish in 15 minutes on a 512 MiB ext4
 * pair): no search where the current alignment matches (runs are skipped
 * with word compares); no search where the 8 bytes at p occur nowhere in
 * the old image (bitmap of hashed 8-grams, no false negatives); suffix
 * comparisons inside the binary search are capped at SEARCH_CAP bytes and
 * keep the common prefix with both bounds, and a capped match is extended
 * linearly once; the count of current-alignment matches over the span of a
 * candidate is kept incrementally over a window that only moves forward.
 * Every new byte is thus visited a constant number of times outside the
 * searches, and each search costs O(log n + SEARCH_CAP).
 *
 * Encoding: ops are appended to a staging buffer and streamed into a zstd
 * compressor; a new frame starts at the first op boundary after
 * frame_size op bytes. The header is written first.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include "otachain/delta_make.h"

#include <divsufsort.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "otachain/crypto.h"
#include "otachain/delta.h"

#define SEARCH_CAP    65536
#define SEED_MIN      8   /* shortest exact match that may start an approximate one */
#define LOOKAHEAD     128 /* bytes over which approx_better compares alignments */
#define STAGE_LEN     (1u << 20)
#define DEF_LEVEL     22
#define DEF_FRAME     ((uint64_t)16 << 20)
#define DEF_MIN_GAIN  32
#define DEF_COPY_RUN  4096
#define HASH_BITS_MAX 32
#define HASH_BITS_MIN 12

struct maker {
    const uint8_t *old;
    const uint8_t *new;
    size_t on;
    size_t nn;
    saidx_t *sa;
    uint64_t *bits; /* bitmap of hashed old 8-grams */
    unsigned hbits;
    unsigned min_gain;
    unsigned copy_run;
    /* encoder */
    ZSTD_CCtx *zc;
    uint8_t *stage;
    size_t slen;
    uint8_t *zout;
    size_t zout_cap;
    uint64_t frame_bytes; /* op bytes in the current frame */
    uint64_t frame_size;
    uint64_t cursor; /* the applier's old cursor */
    ota_sink_fn sink;
    void *sink_ctx;
    struct ota_delta_make_stats *st;
    struct ota_detail *det;
};

/* Number of equal leading bytes of a and b, at most max. */
static size_t run_eq(const uint8_t *a, const uint8_t *b, size_t max)
{
    size_t k = 0;

    while (k + 8 <= max) {
        uint64_t x;
        uint64_t y;

        memcpy(&x, a + k, 8);
        memcpy(&y, b + k, 8);
        if (x != y) {
            x ^= y;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return k + (size_t)(__builtin_ctzll(x) / 8);
#else
            return k + (size_t)(__builtin_clzll(x) / 8);
#endif
        }
        k += 8;
    }
    while (k < max && a[k] == b[k])
        k++;
    return k;
}

static inline uint64_t hash8(const uint8_t *p, unsigned hbits)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return (v * 0x9E3779B97F4A7C15ull) >> (64 - hbits);
}

/* new[i] pairs with old[i + a] and they are equal. */
static inline int match_at(const struct maker *m, size_t i, int64_t a)
{
    int64_t j = (int64_t)i + a;

    return j >= 0 && (uint64_t)j < m->on && m->old[j] == m->new[i];
}

/* Common prefix of old[s..] and new[p..p+plen), starting the compare at k. */
static size_t lcp_at(const struct maker *m, size_t s, size_t p, size_t k, size_t plen)
{
    size_t lim = m->on - s < plen ? m->on - s : plen;

    if (k >= lim)
        return lim;
    return k + run_eq(m->old + s + k, m->new + p + k, lim - k);
}

/* Longest prefix of new[p..p+plen) found in old; its start in *pos. */
static size_t suffix_search(const struct maker *m, size_t p, size_t plen, size_t *pos)
{
    size_t lo = 0;
    size_t hi = m->on - 1;
    size_t llcp = lcp_at(m, (size_t)m->sa[lo], p, 0, plen);
    size_t hlcp = lcp_at(m, (size_t)m->sa[hi], p, 0, plen);

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        size_t s = (size_t)m->sa[mid];
        size_t k = lcp_at(m, s, p, llcp < hlcp ? llcp : hlcp, plen);

        if (k == plen) {
            *pos = s;
            return k;
        }
        /* A suffix that ends first sorts first. */
        if (s + k >= m->on || m->old[s + k] < m->new[p + k]) {
            lo = mid;
            llcp = k;
        } else {
            hi = mid;
            hlcp = k;
        }
    }
    if (llcp >= hlcp) {
        *pos = (size_t)m->sa[lo];
        return llcp;
    }
    *pos = (size_t)m->sa[hi];
    return hlcp;
}

/* ---- encoder ---- */

static int sink_out(struct maker *m, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    rc = m->sink(m->sink_ctx, p, n);
    if (rc != 0) {
        ota_detail_set(m->det, "delta make: output refused after %llu bytes",
                       (unsigned long long)m->st->delta_length);
        return rc < 0 ? rc : OTA_ERR_IO;
    }
    m->st->delta_length += n;
    return 0;
}

/* Compresses the staged bytes; ZSTD_e_end also closes the frame. */
static int zflush(struct maker *m, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {m->stage, m->slen, 0};
    size_t left;
    int rc;

    do {
        ZSTD_outBuffer out = {m->zout, m->zout_cap, 0};

        left = ZSTD_compressStream2(m->zc, &out, &in, mode);
        if (ZSTD_isError(left)) {
            ota_detail_set(m->det, "delta make: zstd: %s", ZSTD_getErrorName(left));
            return OTA_ERR_CRYPTO;
        }
        rc = sink_out(m, m->zout, out.pos);
        if (rc != 0)
            return rc;
    } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    m->slen = 0;
    return 0;
}

static int put(struct maker *m, const void *p, size_t n)
{
    const uint8_t *b = p;
    int rc;

    while (n > 0) {
        size_t k = STAGE_LEN - m->slen;

        if (k > n)
            k = n;
        memcpy(m->stage + m->slen, b, k);
        m->slen += k;
        b += k;
        n -= k;
        m->frame_bytes += k;
        m->st->op_stream_length += k;
        if (m->slen == STAGE_LEN) {
            rc = zflush(m, ZSTD_e_continue);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int put_uvarint(struct maker *m, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return put(m, b, n);
}

/* Starts an op: closes the frame first if it is full. */
static int op_begin(struct maker *m, uint8_t tag)
{
    int rc;

    if (m->frame_bytes >= m->frame_size) {
        rc = zflush(m, ZSTD_e_end);
        if (rc != 0)
            return rc;
        m->st->frames++;
        m->frame_bytes = 0;
    }
    return put(m, &tag, 1);
}

/* COPY or ADD of new[np..np+len) against old[op..op+len). */
static int emit_piece(struct maker *m, size_t np, size_t op, size_t len, int exact)
{
    uint64_t seek;
    uint8_t buf[4096];
    size_t i;
    int rc;

    if (len == 0)
        return 0;
    /* zigzag of op - cursor */
    seek = op >= m->cursor ? ((uint64_t)op - m->cursor) << 1
                           : (((m->cursor - (uint64_t)op) - 1) << 1) | 1;
    rc = op_begin(m, exact ? OTA_DELTA_OP_COPY : OTA_DELTA_OP_ADD);
    if (rc == 0)
        rc = put_uvarint(m, seek);
    if (rc == 0)
        rc = put_uvarint(m, len);
    for (i = 0; rc == 0 && !exact && i < len;) {
        size_t k = len - i < sizeof(buf) ? len - i : sizeof(buf);
        size_t j;

        for (j = 0; j < k; j++)
            buf[j] = (uint8_t)(m->new[np + i + j] - m->old[op + i + j]);
        rc = put(m, buf, k);
        i += k;
    }
    if (rc != 0)
        return rc;
    m->cursor = (uint64_t)op + len;
    if (exact) {
        m->st->copy_ops++;
        m->st->copy_bytes += len;
    } else {
        m->st->add_ops++;
        m->st->add_bytes += len;
    }
    return 0;
}

/* The approximate part of a segment: ADD pieces, with equal runs of at
 * least copy_run bytes as COPY. An ADD piece without a difference is a
 * COPY too. */
static int emit_approx(struct maker *m, size_t np, size_t op, size_t len)
{
    size_t i = 0;
    size_t start = 0; /* start of the pending ADD piece */
    int differs = 0;  /* the pending piece has a non-zero diff */
    int rc;

    while (i < len) {
        size_t k = run_eq(m->new + np + i, m->old + op + i, len - i);

        if (k >= m->copy_run) {
            rc = emit_piece(m, np + start, op + start, i - start, !differs);
            if (rc == 0)
                rc = emit_piece(m, np + i, op + i, k, 1);
            if (rc != 0)
                return rc;
            start = i + k;
            differs = 0;
        }
        i += k;
        if (i < len) {
            differs = 1;
            i++;
        }
    }
    return emit_piece(m, np + start, op + start, len - start, !differs);
}

static int emit_insert(struct maker *m, size_t np, size_t len)
{
    int rc;

    if (len == 0)
        return 0;
    rc = op_begin(m, OTA_DELTA_OP_INSERT);
    if (rc == 0)
        rc = put_uvarint(m, len);
    if (rc == 0)
        rc = put(m, m->new + np, len);
    if (rc == 0) {
        m->st->insert_ops++;
        m->st->insert_bytes += len;
    }
    return rc;
}

/* ---- matching ---- */

/* Length of the prefix of new[s..end) that alignment a covers best: the
 * one maximising 2 * matches - length (first maximum). */
static size_t extend_forward(const struct maker *m, size_t s, size_t end, int64_t a)
{
    int64_t score = 0;
    int64_t best = 0;
    size_t lenf = 0;
    size_t i;

    for (i = 0; s + i < end; i++) {
        score += match_at(m, s + i, a) ? 1 : -1;
        if (score > best) {
            best = score;
            lenf = i + 1;
        }
    }
    return lenf;
}

/* Same backwards from new[p] / old[q], not before new[lo]. */
static size_t extend_backward(const struct maker *m, size_t p, size_t q, size_t lo)
{
    int64_t score = 0;
    int64_t best = 0;
    size_t lenb = 0;
    size_t i;

    for (i = 1; p >= lo + i && q >= i; i++) {
        score += m->old[q - i] == m->new[p - i] ? 1 : -1;
        if (score > best) {
            best = score;
            lenb = i;
        }
    }
    return lenb;
}

/* Emits the segment starting at s0 with alignment a, which ends where the
 * next one (alignment na) begins at p with match start q = p + na. Sets
 * *next_start to the next segment's start. */
static int close_segment(struct maker *m, size_t s0, int64_t a, size_t p, size_t q,
                         size_t *next_start)
{
    size_t lenf = extend_forward(m, s0, p, a);
    size_t lenb = p < m->nn ? extend_backward(m, p, q, s0) : 0;
    int rc;

    if (s0 + lenf > p - lenb) {
        /* The two extensions overlap: split where the bytes fit best. */
        size_t overlap = (s0 + lenf) - (p - lenb);
        int64_t score = 0;
        int64_t best = 0;
        size_t lens = 0;
        size_t i;

        for (i = 0; i < overlap; i++) {
            size_t k = s0 + lenf - overlap + i;

            if (match_at(m, k, a))
                score++;
            if (m->old[q - lenb + i] == m->new[p - lenb + i])
                score--;
            if (score > best) {
                best = score;
                lens = i + 1;
            }
        }
        lenf = lenf + lens - overlap;
        lenb -= lens;
    }
    rc = lenf > 0 ? emit_approx(m, s0, (size_t)((int64_t)s0 + a), lenf) : 0;
    if (rc == 0)
        rc = emit_insert(m, s0 + lenf, (p - lenb) - (s0 + lenf));
    *next_start = p - lenb;
    return rc;
}

/* Alignment na beats a over new[p..p+LOOKAHEAD) by more than min_gain
 * matching bytes: a short exact match that continues as an approximate
 * one (code whose embedded addresses changed every few bytes). */
static int approx_better(const struct maker *m, size_t p, int64_t na, int64_t a)
{
    size_t end = m->nn - p < LOOKAHEAD ? m->nn : p + LOOKAHEAD;
    size_t sn = 0;
    size_t sa = 0;
    size_t i;

    for (i = p; i < end; i++) {
        sn += (size_t)match_at(m, i, na);
        sa += (size_t)match_at(m, i, a);
    }
    return sn > sa + m->min_gain && sn * 8 >= (end - p) * 7;
}

/* False only if the 8 bytes at new[p] occur nowhere in old. */
static int may_occur(const struct maker *m, size_t p)
{
    uint64_t h;

    if (m->bits == NULL || m->nn - p < 8)
        return 1;
    h = hash8(m->new + p, m->hbits);
    return (int)((m->bits[h >> 6] >> (h & 63)) & 1);
}

static int scan(struct maker *m)
{
    size_t p = 0;
    int64_t a = 0;   /* current alignment */
    size_t s0 = 0;   /* start of the current segment */
    size_t wend = 0; /* window [p, wend) over which cnt counts matches of a */
    size_t cnt = 0;
    int rc;

    while (p < m->nn) {
        int64_t j = (int64_t)p + a;
        size_t mlen = 0;
        size_t mpos = 0;

        if (j >= 0 && (uint64_t)j < m->on) {
            size_t lim = m->nn - p < m->on - (size_t)j ? m->nn - p : m->on - (size_t)j;
            size_t k = run_eq(m->new + p, m->old + j, lim);

            if (k > 0) {
                if (p < wend)
                    cnt -= k < wend - p ? k : wend - p;
                p += k;
                continue;
            }
        }
        /* The current alignment fails at p: look for a better one. */
        if (m->on > 0 && may_occur(m, p)) {
            size_t plen = m->nn - p < SEARCH_CAP ? m->nn - p : SEARCH_CAP;

            m->st->searches++;
            mlen = suffix_search(m, p, plen, &mpos);
            if (mlen == SEARCH_CAP)
                mlen = lcp_at(m, mpos, p, mlen, m->nn - p);
        }
        if (wend < p) {
            wend = p;
            cnt = 0;
        }
        while (wend < p + mlen) {
            if (match_at(m, wend, a))
                cnt++;
            wend++;
        }
        if ((int64_t)mpos - (int64_t)p != a &&
            (mlen > cnt + m->min_gain ||
             (mlen >= SEED_MIN && approx_better(m, p, (int64_t)mpos - (int64_t)p, a)))) {
            rc = close_segment(m, s0, a, p, mpos, &s0);
            if (rc != 0)
                return rc;
            a = (int64_t)mpos - (int64_t)p;
            p += mlen;
            wend = p;
            cnt = 0;
            continue;
        }
        p++; /* match_at(p - 1, a) was false: cnt unchanged */
    }
    return close_segment(m, s0, a, m->nn, 0, &s0);
}

/* ---- setup ---- */

static unsigned ceil_log2(uint64_t v)
{
    unsigned b = 0;

    while (b < 63 && ((uint64_t)1 << b) < v)
        b++;
    return b;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

/* The level's parameters, with the match-finder tables sized for the
 * window: the size of each frame is unknown to zstd, which would otherwise
 * keep the tables of a 128 MiB window (1.5 GiB at level 22) and clear them
 * at every frame. */
static int zsetup(struct maker *m, int level, unsigned wlog)
{
    ZSTD_compressionParameters cp = ZSTD_getCParams(level, ZSTD_CONTENTSIZE_UNKNOWN, 0);
    size_t r;

    if (cp.chainLog > wlog + 1)
        cp.chainLog = wlog + 1;
    if (cp.hashLog > wlog + 1)
        cp.hashLog = wlog + 1;
    m->zc = ZSTD_createCCtx();
    if (m->zc == NULL)
        return OTA_ERR_NOMEM;
    r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_windowLog, (int)wlog);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_chainLog, (int)cp.chainLog);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_hashLog, (int)cp.hashLog);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(m->zc, ZSTD_c_contentSizeFlag, 0);
    if (ZSTD_isError(r)) {
        ota_detail_set(m->det, "delta make: zstd: %s", ZSTD_getErrorName(r));
        return OTA_ERR_CRYPTO;
    }
    return 0;
}

static int index_old(struct maker *m)
{
    size_t i;

    if (m->on == 0)
        return 0;
    m->sa = malloc(m->on * sizeof(*m->sa));
    if (m->sa == NULL)
        return OTA_ERR_NOMEM;
    if (divsufsort(m->old, m->sa, (saidx_t)m->on) != 0) {
        ota_detail_set(m->det, "delta make: suffix sorting failed");
        return OTA_ERR_NOMEM;
    }
    if (m->on < 8)
        return 0; /* too short for 8-grams: search everywhere */
    m->hbits = ceil_log2(m->on) + 3;
    if (m->hbits > HASH_BITS_MAX)
        m->hbits = HASH_BITS_MAX;
    if (m->hbits < HASH_BITS_MIN)
        m->hbits = HASH_BITS_MIN;
    m->bits = calloc(((size_t)1 << m->hbits) / 64, sizeof(uint64_t));
    if (m->bits == NULL)
        return OTA_ERR_NOMEM;
    for (i = 0; i + 8 <= m->on; i++) {
        uint64_t h = hash8(m->old + i, m->hbits);

        m->bits[h >> 6] |= (uint64_t)1 << (h & 63);
    }
    return 0;
}

int ota_delta_make(ota_sink_fn sink, void *sink_ctx, struct ota_delta_make_stats *stats,
                   const uint8_t *old_img, size_t old_len, const uint8_t *new_img, size_t new_len,
                   const struct ota_delta_make_opts *opts, struct ota_detail *det)
{
    struct ota_delta_make_stats local;
    struct ota_delta_make_opts o = {0};
    struct maker m;
    uint8_t hdr[OTA_DELTA_HEADER_LEN];
    unsigned wlog;
    int rc;

    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    memset(&m, 0, sizeof(m));
    if (sink == NULL || (old_img == NULL && old_len > 0) || (new_img == NULL && new_len > 0))
        return OTA_ERR_INVALID_ARG;
    if (opts != NULL)
        o = *opts;
    if (o.level == 0)
        o.level = DEF_LEVEL;
    if (o.window_log == 0)
        o.window_log = OTA_DELTA_MAKE_WINDOW_LOG_DEFAULT;
    if (o.frame_size == 0)
        o.frame_size = DEF_FRAME;
    if (o.min_gain == 0)
        o.min_gain = DEF_MIN_GAIN;
    if (o.copy_run == 0)
        o.copy_run = DEF_COPY_RUN;
    if (o.level < 1 || o.level > ZSTD_maxCLevel() || o.window_log < OTA_DELTA_WINDOW_LOG_MIN ||
        o.window_log > OTA_DELTA_WINDOW_LOG_MAX) {
        ota_detail_set(det, "delta make: level must be 1..%d and window_log %d..%d",
                       ZSTD_maxCLevel(), OTA_DELTA_WINDOW_LOG_MIN, OTA_DELTA_WINDOW_LOG_MAX);
        return OTA_ERR_INVALID_ARG;
    }
    if (old_len > OTA_DELTA_MAKE_OLD_MAX || (uint64_t)new_len > OTA_DELTA_IMAGE_MAX) {
        ota_detail_set(det, "delta make: from-image must be < 2 GiB and to-image <= 2^40 bytes");
        return OTA_ERR_TOO_LARGE;
    }
    wlog = ceil_log2((uint64_t)new_len + 1024);
    if (wlog > o.window_log)
        wlog = o.window_log;
    if (wlog < OTA_DELTA_WINDOW_LOG_MIN)
        wlog = OTA_DELTA_WINDOW_LOG_MIN;
    stats->window_log = wlog;

    m.old = old_img;
    m.new = new_img;
    m.on = old_len;
    m.nn = new_len;
    m.min_gain = o.min_gain;
    m.copy_run = o.copy_run;
    m.frame_size = o.frame_size;
    m.sink = sink;
    m.sink_ctx = sink_ctx;
    m.st = stats;
    m.det = det;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, OTA_DELTA_MAGIC, 8);
    put_le32(hdr + 8, OTA_DELTA_VERSION);
    hdr[16] = 1;
    hdr[17] = (uint8_t)wlog;
    hdr[18] = (uint8_t)(int8_t)o.level;
    put_le64(hdr + 24, old_len);
    put_le64(hdr + 32, new_len);
    rc = ota_sha256(hdr + 40, old_img, old_len);
    if (rc == 0)
        rc = ota_sha256(hdr + 72, new_img, new_len);
    if (rc != 0)
        goto out;

    m.stage = malloc(STAGE_LEN);
    m.zout_cap = ZSTD_CStreamOutSize();
    m.zout = malloc(m.zout_cap);
    if (m.stage == NULL || m.zout == NULL) {
        rc = OTA_ERR_NOMEM;
        goto out;
    }
    rc = zsetup(&m, o.level, wlog);
    if (rc == 0)
        rc = index_old(&m);
    if (rc == 0)
        rc = sink_out(&m, hdr, sizeof(hdr));
    if (rc == 0)
        rc = scan(&m);
    if (rc == 0) {
        uint8_t end = OTA_DELTA_OP_END;

        rc = put(&m, &end, 1);
    }
    if (rc == 0)
        rc = zflush(&m, ZSTD_e_end);
    if (rc == 0)
        stats->frames++;
out:
    free(m.sa);
    free(m.bits);
    free(m.stage);
    free(m.zout);
    ZSTD_freeCCtx(m.zc);
    return rc;
}
