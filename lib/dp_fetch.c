/* Data-plane fetcher: see include/otachain/dp_fetch.h.
 *
 * Output file states (OUT.part is the only file ever written):
 *
 *   none ──open──► OUT.part (image_length, holes) + state bitmap (zeros)
 *        ◄─resume─ OUT.part + bitmap from an earlier run (same image)
 *   chunk i verified ─► pwrite at its offset ─► bit i set in memory
 *   every SYNC_CHUNKS chunks / SYNC_BYTES / SYNC_MS: fdatasync(OUT.part),
 *        then write + fdatasync the bitmap            (bit on disk => bytes on disk)
 *   all bits set ─► SHA-256 of OUT.part == signed ─► fsync, rename to OUT,
 *        fsync dir, remove the bitmap
 *                  └─ mismatch ─► remove OUT.part and the bitmap, fail
 *
 * Invariants: (1) a bit is set only after its chunk's bytes passed
 * ota_pack_reader_finish or ota_chunk_index_check_chunk; (2) a bit reaches
 * the disk only after the bytes it vouches for; (3) OUT exists only after
 * the whole-image hash matched.
 */
#include "otachain/dp_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otachain/delta.h"
#include "otachain/fsutil.h"
#include "otachain/http.h"
#include "otachain/multipart.h"
#include "otachain/pack.h"
#include "otachain/plan.h"

#define STATE_MAGIC         "OTADPST1"
#define STATE_HEADER_LEN    48u
#define SYNC_CHUNKS         32u
#define SYNC_BYTES          (UINT64_C(4) << 20)
#define SYNC_MS             500
#define URL_MAX             2048
#define BUF_MIN             (64u * 1024) /* read block of the final hash pass */
#define DP_ERROR_PAGE_DRAIN (16u * 1024) /* error page bytes read and dropped, at most */
/* Bytes a multipart/byteranges answer adds per part (boundary line and
 * part headers: about 100 with nginx), for the slow-retrieval deadline. */
#define MULTIPART_PART_OVERHEAD 512u

struct dpf {
    const struct ota_dp_fetch_cfg *cfg;
    const struct ota_chunk_index *idx;
    struct ota_dp_fetch_stats *st;
    char part_path[PATH_MAX];
    char state_path[PATH_MAX];
    char hex[OTA_SHA256_HEX_LEN + 1];
    int part_fd;
    int state_fd;
    int lock_fd;   /* <state>/<image-sha256>.lock, flock'ed for the whole run */
    uint8_t *done; /* bitmap, (count + 7) / 8 bytes */
    size_t done_len;
    uint32_t unsynced;
    uint64_t unsynced_bytes;
    struct timespec last_sync;
    uint8_t *buf; /* one chunk: buf_len = the index's max_size, at least BUF_MIN */
    size_t buf_len;
    struct ota_pack_reader *reader;
    /* The chunks of the current image (NULL without one). Dropped when a
     * delta answers, so that its set and the delta applier are never in
     * memory together; built again if the delta fails. */
    struct ota_plan_have *have;
    CURL *easy;
    const struct ota_http_policy *policy; /* cfg->http, or policy_default */
    struct ota_http_policy policy_default;
    char errbuf[CURL_ERROR_SIZE];
};

static bool bit(const uint8_t *map, uint32_t i)
{
    return (map[i / 8] >> (i % 8)) & 1u;
}

static int64_t ms_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Makes everything marked so far durable: output first, then the bitmap. */
static int sync_state(struct dpf *d, struct ota_detail *det)
{
    if (fdatasync(d->part_fd) != 0 ||
        ota_fs_pwrite_all(d->state_fd, d->done, d->done_len, STATE_HEADER_LEN) != 0 ||
        fdatasync(d->state_fd) != 0) {
        ota_detail_set(det, "recording progress in %s: %s", d->state_path, strerror(errno));
        return OTA_ERR_IO;
    }
    d->unsynced = 0;
    d->unsynced_bytes = 0;
    clock_gettime(CLOCK_MONOTONIC, &d->last_sync);
    return 0;
}

/* Writes verified chunk i and marks it done. */
static int put_chunk(struct dpf *d, uint32_t i, const uint8_t *data, struct ota_detail *det)
{
    const struct ota_chunk_entry *e = &d->idx->chunks[i];

    if (ota_fs_pwrite_all(d->part_fd, data, e->length, e->offset) != 0) {
        ota_detail_set(det, "writing %s: %s", d->part_path, strerror(errno));
        return OTA_ERR_IO;
    }
    d->done[i / 8] |= (uint8_t)(1u << (i % 8));
    d->unsynced++;
    d->unsynced_bytes += e->length;
    if (d->unsynced >= SYNC_CHUNKS || d->unsynced_bytes >= SYNC_BYTES ||
        ms_since(&d->last_sync) >= SYNC_MS)
        return sync_state(d, det);
    return 0;
}

static void chunk_where(struct ota_detail *det, const struct ota_chunk_index *idx, uint32_t i,
                        const char *what)
{
    const struct ota_chunk_entry *e = &idx->chunks[i];
    char prev[OTA_DETAIL_LEN];

    snprintf(prev, sizeof(prev), "%s", det != NULL ? det->msg : "");
    ota_detail_set(det,
                   "%s chunk %" PRIu32 " (image bytes [%" PRIu64 ", %" PRIu64
                   "), pack bytes [%" PRIu64 ", %" PRIu64 ")): %s",
                   what, i, e->offset, e->offset + e->length, e->pack_offset,
                   e->pack_offset + e->zlength, prev);
}

/* OUT.part and the bitmap: resumed when both belong to this image, fresh
 * otherwise. */
static int open_output(struct dpf *d, struct ota_detail *det)
{
    const struct ota_chunk_index *idx = d->idx;
    uint8_t hdr[STATE_HEADER_LEN];
    struct stat st;
    bool resume = false;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, STATE_MAGIC, 8);
    memcpy(hdr + 8, d->cfg->image_sha256, OTA_SHA256_LEN);
    for (int k = 0; k < 4; k++)
        hdr[40 + k] = (uint8_t)(idx->count >> (8 * k));
    d->done_len = ((size_t)idx->count + 7) / 8;
    d->done = calloc(d->done_len + 1, 1);
    if (d->done == NULL)
        return OTA_ERR_NOMEM;
    if (ota_fs_mkdirs(d->cfg->state_dir, 0700) != 0) {
        ota_detail_set(det, "creating the state directory %s", d->cfg->state_dir);
        return OTA_ERR_IO;
    }
    {
        char lock[PATH_MAX];
        int n = snprintf(lock, sizeof(lock), "%s/%s.lock", d->cfg->state_dir, d->hex);

        if (n < 0 || n >= (int)sizeof(lock))
            return OTA_ERR_TOO_LARGE;
        d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->lock_fd < 0) {
            ota_detail_set(det, "%s: %s", lock, strerror(errno));
            return ota_fs_errno(errno);
        }
        if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            ota_detail_set(det, "%s: another fetch of this image is running", lock);
            return errno == EWOULDBLOCK ? OTA_ERR_LOCKED : OTA_ERR_IO;
        }
    }
    d->part_fd = open(d->part_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    d->state_fd = open(d->state_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (d->part_fd >= 0 && d->state_fd >= 0 && fstat(d->part_fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == d->cfg->image_length) {
        uint8_t have[STATE_HEADER_LEN];

        if (ota_fs_pread_all(d->state_fd, have, sizeof(have), 0) == 0 &&
            memcmp(have, hdr, sizeof(hdr)) == 0 &&
            ota_fs_pread_all(d->state_fd, d->done, d->done_len, STATE_HEADER_LEN) == 0)
            resume = true;
    }
    if (!resume) {
        memset(d->done, 0, d->done_len);
        if (d->part_fd >= 0)
            close(d->part_fd);
        if (d->state_fd >= 0)
            close(d->state_fd);
        d->part_fd = open(d->part_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        d->state_fd =
            open(d->state_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->part_fd < 0 || d->state_fd < 0 ||
            ftruncate(d->part_fd, (off_t)d->cfg->image_length) != 0 ||
            ota_fs_pwrite_all(d->state_fd, hdr, sizeof(hdr), 0) != 0) {
            ota_detail_set(det, "creating %s and %s: %s", d->part_path, d->state_path,
                           strerror(errno));
            return OTA_ERR_IO;
        }
        return sync_state(d, det);
    }
    for (uint32_t i = 0; i < idx->count; i++)
        if (bit(d->done, i))
            d->st->chunks_done++;
    clock_gettime(CLOCK_MONOTONIC, &d->last_sync);
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------- */

static int http_setup(struct dpf *d, struct ota_detail *det)
{
    const struct ota_http_policy *p = d->cfg->http;

    if (p == NULL) {
        ota_http_policy_default(&d->policy_default);
        p = &d->policy_default;
    }
    d->policy = p;
    d->easy = curl_easy_init();
    if (d->easy == NULL)
        return OTA_ERR_NOMEM;
    return ota_http_setup(d->easy, p, d->errbuf, det);
}

/* After a transfer: the HTTP version it used and the connections it had
 * to open (0 when it reused the keep-alive one). */
static void note_connection(struct dpf *d)
{
    long ver = 0;
    long conns = 0;

    if (curl_easy_getinfo(d->easy, CURLINFO_HTTP_VERSION, &ver) == CURLE_OK && ver != 0)
        d->st->http_version = ver == CURL_HTTP_VERSION_3     ? 30
                              : ver == CURL_HTTP_VERSION_2_0 ? 20
                              : ver == CURL_HTTP_VERSION_1_1 ? 11
                              : ver == CURL_HTTP_VERSION_1_0 ? 10
                                                             : 0;
    if (curl_easy_getinfo(d->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
        d->st->connections += (uint32_t)conns;
}

/* One GET: body to write_fn(ctx); range NULL = whole object; expect
 * the bytes it should bring at most (the slow-retrieval deadline).
 * Returns the HTTP status in *status, or a transport error
 * (OTA_ERR_SLOW_RETRIEVAL, OTA_ERR_NETWORK). A callback error is
 * returned as cb_err by the caller. */
static int http_get(long *status, struct dpf *d, const char *url, const char *range,
                    uint64_t expect, curl_write_callback write_fn, void *ctx,
                    struct ota_detail *det)
{
    struct ota_http_xfer x;
    CURLcode cc;
    int rc;

    *status = 0;
    d->errbuf[0] = '\0';
    rc = ota_http_xfer_begin(&x, d->easy, d->policy, url, url, expect, 0, det);
    if (rc != 0)
        return rc;
    if (curl_easy_setopt(d->easy, CURLOPT_HTTPGET, 1L) != CURLE_OK ||
        curl_easy_setopt(d->easy, CURLOPT_RANGE, range) != CURLE_OK ||
        curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, write_fn) != CURLE_OK ||
        curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, ctx) != CURLE_OK)
        return OTA_ERR_NETWORK;
    d->st->requests++;
    cc = curl_easy_perform(d->easy);
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, status);
    note_connection(d);
    if (cc == CURLE_WRITE_ERROR)
        return 1; /* the callback stopped it; its error is in ctx */
    return ota_http_xfer_result(&x, cc, d->errbuf, det);
}

/* ---- reference delta ------------------------------------------------------ */

struct delta_ctx {
    struct dpf *d;
    struct ota_delta_apply *a;
    uint32_t chunk;  /* chunk being assembled */
    uint32_t filled; /* its bytes so far */
    uint64_t got;
    uint64_t cap;
    uint64_t drained; /* error page bytes dropped */
    int err;
    bool status_checked;
    struct ota_detail det;
};

/* Applier sink: cut the output at the index's boundaries, check, write. */
static int delta_sink(void *ctx, const void *data, size_t len)
{
    struct delta_ctx *c = ctx;
    struct dpf *d = c->d;
    const uint8_t *p = data;

    while (len > 0) {
        const struct ota_chunk_entry *e;
        size_t n;
        int rc;

        if (c->chunk >= d->idx->count)
            return OTA_ERR_DELTA_OVERRUN;
        e = &d->idx->chunks[c->chunk];
        n = e->length - c->filled;
        if (n > len)
            n = len;
        memcpy(d->buf + c->filled, p, n);
        c->filled += (uint32_t)n;
        p += n;
        len -= n;
        if (c->filled < e->length)
            continue;
        if (!bit(d->done, c->chunk)) {
            rc = ota_chunk_index_check_chunk(e, d->buf, e->length, &c->det);
            if (rc == 0)
                rc = put_chunk(d, c->chunk, d->buf, &c->det);
            else
                chunk_where(&c->det, d->idx, c->chunk, "delta output does not match");
            if (rc != 0)
                return rc;
            d->st->chunks_from_delta++;
        }
        c->chunk++;
        c->filled = 0;
    }
    return 0;
}

static size_t delta_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct delta_ctx *c = ctx;
    size_t n = size * nmemb;
    long status = 0;

    c->d->st->bytes_fetched += n; /* what crossed the wire, even if refused */
    if (!c->status_checked) {
        curl_easy_getinfo(c->d->easy, CURLINFO_RESPONSE_CODE, &status);
        c->status_checked = true;
        if (status != 200) {
            c->err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
            ota_detail_set(&c->det, "HTTP status %ld", status);
        } else {
            ota_plan_have_free(c->d->have);
            c->d->have = NULL;
        }
    }
    if (c->err != 0) {
        /* An error page: dropped, and read to its end when short so that
         * the keep-alive connection survives the usual 404 (no delta). */
        c->drained += n;
        return c->drained <= DP_ERROR_PAGE_DRAIN ? n : 0;
    }
    c->got += n;
    if (c->got > c->cap) {
        c->err = OTA_ERR_TOO_LARGE;
        ota_detail_set(&c->det, "delta longer than %" PRIu64 " bytes", c->cap);
        return 0;
    }
    c->err = ota_delta_apply_feed(c->a, data, n, &c->det);
    return c->err == 0 ? n : 0;
}

/* Step 2. Returns 0 when the image was produced, OTA_ERR_NOT_FOUND when
 * there is no delta, any other error when a delta was found but failed
 * (the caller falls back to chunks). */
static int try_delta(struct dpf *d, const uint8_t cur_sha[OTA_SHA256_LEN], uint64_t cur_len,
                     struct ota_detail *det)
{
    struct delta_ctx c;
    struct ota_delta_apply_cfg acfg;
    char url[URL_MAX];
    char from_hex[OTA_SHA256_HEX_LEN + 1];
    int fd = d->cfg->current_fd;
    long status;
    int rc;
    int n;

    memset(&c, 0, sizeof(c));
    c.d = d;
    c.cap = d->cfg->image_length + OTA_DP_DELTA_SLACK;
    ota_hex_encode(from_hex, cur_sha, OTA_SHA256_LEN);
    n = snprintf(url, sizeof(url), "%s/deltas/%s/%s", d->cfg->base_url, from_hex, d->hex);
    if (n < 0 || n >= (int)sizeof(url))
        return OTA_ERR_TOO_LARGE;
    memset(&acfg, 0, sizeof(acfg));
    acfg.read_old = ota_delta_read_fd;
    acfg.read_ctx = &fd;
    acfg.old_length = cur_len;
    acfg.old_sha256 = cur_sha;
    acfg.to_sha256 = d->cfg->image_sha256;
    acfg.to_length = d->cfg->image_length;
    acfg.sink = delta_sink;
    acfg.sink_ctx = &c;
    rc = ota_delta_apply_new(&c.a, &acfg);
    if (rc != 0)
        return rc;
    rc = http_get(&status, d, url, NULL, c.cap, delta_write, &c, det);
    if (rc == 0 && !c.status_checked && status != 200) {
        c.err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
        ota_detail_set(&c.det, "HTTP status %ld", status);
    }
    if (rc == 1 || c.err != 0) {
        /* Stopped by the callback (or an error page read to its end). */
        rc = c.err;
        ota_detail_set(det, "%s: %s", url, c.det.msg);
    } else if (rc == 0) {
        rc = ota_delta_apply_finish(c.a, &c.det);
        if (rc == 0 && c.chunk != d->idx->count) {
            rc = OTA_ERR_TRUNCATED;
            ota_detail_set(&c.det, "delta produced %" PRIu32 " of %" PRIu32 " chunks", c.chunk,
                           d->idx->count);
        }
        if (rc != 0)
            ota_detail_set(det, "%s: %s", url, c.det.msg);
    } /* else a transport error: http_get named the URL */
    d->st->delta_bytes = c.got;
    ota_delta_apply_free(c.a);
    if (rc == 0) {
        /* The delta produced the whole image; unsynced bits are synced at
         * the end. */
        d->st->delta_used = true;
    }
    return rc;
}

/* ---- chunks from the pack ------------------------------------------------- */

/* One request: ranges [first, first + n) of the plan. With n > 1 the
 * answer must be multipart/byteranges whose parts are exactly those
 * ranges in order; a server that answers with one part (it merged
 * ranges) or with the whole file (200: no multi-range support, e.g. nginx
 * max_ranges 1) gets the ranges again one per request, the answer being
 * abandoned at its first byte. A 200 to a single range is refused. */
struct range_ctx {
    struct dpf *d;
    const struct ota_plan *plan;
    uint32_t first, n;
    uint32_t cur;   /* range being received, relative to first */
    uint32_t parts; /* multipart: parts started so far */
    uint64_t pos;   /* pack offset of the next byte */
    uint32_t chunk; /* next FETCH chunk of the range, or UINT32_MAX */
    uint32_t fed;   /* bytes of its frame fed so far */
    bool started;   /* reader begun for chunk */
    bool status_checked;
    bool multipart;
    struct ota_multipart mp; /* the framing of a multipart/byteranges answer */
    int err;
    struct ota_detail det;
};

#define NEED_SINGLE 2 /* private: redo the request one range at a time */

static void next_fetch(struct range_ctx *c, uint32_t from)
{
    const struct ota_plan *p = c->plan;
    uint32_t ri = c->first + c->cur;
    uint32_t last = p->ranges[ri].last;

    for (uint32_t i = from; i <= last; i++) {
        if (p->steps[i].kind == OTA_PLAN_FETCH && p->steps[i].range == ri) {
            c->chunk = i;
            return;
        }
    }
    c->chunk = UINT32_MAX;
}

static void start_range(struct range_ctx *c, uint32_t k)
{
    c->cur = k;
    c->pos = c->plan->ranges[c->first + k].start;
    c->started = false;
    next_fetch(c, c->plan->ranges[c->first + k].first);
}

/* Bytes of the current range: skip gaps, decode and check frames, write
 * verified chunks. 0 or an error (c->det says which chunk). */
static int consume(struct range_ctx *c, const uint8_t *data, size_t n)
{
    struct dpf *d = c->d;
    const struct ota_plan_range *r = &c->plan->ranges[c->first + c->cur];
    size_t off = 0;

    while (off < n) {
        const struct ota_chunk_entry *e;
        size_t take;
        int rc;

        if (c->pos >= r->end || c->chunk == UINT32_MAX) {
            ota_detail_set(&c->det, "more bytes than the range [%" PRIu64 ", %" PRIu64 ")",
                           r->start, r->end);
            return OTA_ERR_TOO_LARGE;
        }
        e = &d->idx->chunks[c->chunk];
        if (c->pos < e->pack_offset) { /* a gap: frames we do not need */
            take = (size_t)(e->pack_offset - c->pos) < n - off ? (size_t)(e->pack_offset - c->pos)
                                                               : n - off;
            c->pos += take;
            off += take;
            continue;
        }
        if (!c->started) {
            rc = ota_pack_reader_begin(d->reader, d->buf, d->buf_len, e);
            if (rc != 0)
                return rc;
            c->started = true;
            c->fed = 0;
        }
        take = e->zlength - c->fed < n - off ? e->zlength - c->fed : n - off;
        rc = ota_pack_reader_feed(d->reader, data + off, take, &c->det);
        c->fed += (uint32_t)take;
        c->pos += take;
        off += take;
        if (rc == 0 && c->fed == e->zlength)
            rc = ota_pack_reader_finish(d->reader, &c->det);
        if (rc != 0) {
            chunk_where(&c->det, d->idx, c->chunk, "bad");
            return rc;
        }
        if (c->fed < e->zlength)
            continue;
        c->started = false;
        rc = put_chunk(d, c->chunk, d->buf, &c->det);
        if (rc != 0)
            return rc;
        d->st->chunks_fetched++;
        next_fetch(c, c->chunk + 1);
    }
    return 0;
}

/* Multipart: a part begins; it must be the next range asked for. */
static int part_begin(void *ctx, const struct ota_byte_range *br)
{
    struct range_ctx *c = ctx;
    const struct ota_plan_range *r = &c->plan->ranges[c->first + c->parts];

    if (c->parts > 0) { /* the previous part must have brought its whole range */
        const struct ota_plan_range *prev = &c->plan->ranges[c->first + c->cur];

        if (c->pos < prev->end || c->chunk != UINT32_MAX) {
            ota_detail_set(&c->det,
                           "range [%" PRIu64 ", %" PRIu64 ") ended after %" PRIu64
                           " bytes (truncated by the mirror)",
                           prev->start, prev->end, c->pos - prev->start);
            return OTA_ERR_TRUNCATED;
        }
    }
    /* A part may end early (the mirror's file is shorter: truncated, found
     * when the bytes run out); it must not begin elsewhere or end later. */
    if (br->first != r->start || br->last + 1 > r->end) {
        ota_detail_set(&c->det,
                       "part %" PRIu32 " is bytes %" PRIu64 "-%" PRIu64 ", requested %" PRIu64
                       "-%" PRIu64,
                       c->parts + 1, br->first, br->last, r->start, r->end - 1);
        return OTA_ERR_HTTP_FRAMING;
    }
    start_range(c, c->parts);
    c->parts++;
    return 0;
}

static int part_data(void *ctx, const uint8_t *data, size_t len)
{
    return consume(ctx, data, len);
}

/* A single-part answer: its Content-Range must be the one range asked
 * for (several asked for: the caller asks again one at a time). */
static int single_range(struct range_ctx *c)
{
    const struct ota_plan_range *r = &c->plan->ranges[c->first];
    struct curl_header *h = NULL;
    struct ota_byte_range br;
    int rc;

    if (curl_easy_header(c->d->easy, "Content-Range", 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
        h == NULL) {
        ota_detail_set(&c->det, "a 206 answer without Content-Range");
        return OTA_ERR_HTTP_FRAMING;
    }
    rc = ota_content_range_parse(&br, h->value, strlen(h->value), &c->det);
    if (rc != 0)
        return rc;
    if (br.first != r->start || br.last + 1 > r->end) {
        ota_detail_set(
            &c->det, "the answer is bytes %" PRIu64 "-%" PRIu64 ", requested %" PRIu64 "-%" PRIu64,
            br.first, br.last, r->start, r->end - 1);
        return OTA_ERR_HTTP_FRAMING;
    }
    return 0;
}

static size_t range_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct range_ctx *c = ctx;
    struct dpf *d = c->d;
    size_t n = size * nmemb;

    d->st->bytes_fetched += n; /* what crossed the wire, even if refused */
    if (!c->status_checked) {
        long status = 0;
        char *ct = NULL;
        char boundary[OTA_MULTIPART_BOUNDARY_MAX + 1];

        curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
        c->status_checked = true;
        if (status == 200 && c->n > 1) { /* no multi-range here: try single ranges */
            c->err = NEED_SINGLE;
            return 0;
        }
        if (status != 206) {
            c->err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
            if (status == 200)
                ota_detail_set(&c->det,
                               "the server ignored the Range request (200 instead of 206); "
                               "refusing to download the whole pack");
            else
                ota_detail_set(&c->det, "HTTP status %ld", status);
            return 0;
        }
        curl_easy_getinfo(d->easy, CURLINFO_CONTENT_TYPE, &ct);
        c->multipart = ct != NULL && strncasecmp(ct, "multipart/", 10) == 0;
        if (c->n > 1 && !c->multipart) {
            c->err = NEED_SINGLE;
            return 0;
        }
        if (c->multipart) {
            c->err = ota_multipart_boundary(boundary, ct, &c->det);
            if (c->err == 0)
                c->err = ota_multipart_init(&c->mp, boundary, c->n, part_begin, part_data, c);
        } else {
            c->err = single_range(c);
        }
        if (c->err != 0)
            return 0;
    }
    if (!c->multipart)
        c->err = consume(c, (const uint8_t *)data, n);
    else
        c->err = ota_multipart_feed(&c->mp, data, n, &c->det);
    return c->err == 0 ? n : 0;
}

/* One request for ranges [first, first + nr) of the plan. */
static int fetch_request(struct dpf *d, const struct ota_plan *plan, uint32_t first, uint32_t nr,
                         const char *url, struct ota_detail *det)
{
    struct range_ctx *c = calloc(1, sizeof(*c));
    const struct ota_plan_range *r;
    char ranges[2048];
    size_t used = 0;
    uint64_t expect = 0;
    long status;
    int rc;

    if (c == NULL)
        return OTA_ERR_NOMEM;
    c->d = d;
    c->plan = plan;
    c->first = first;
    c->n = nr;
    for (uint32_t k = 0; k < nr; k++) {
        r = &plan->ranges[first + k];
        expect += r->end - r->start + MULTIPART_PART_OVERHEAD;
        rc = snprintf(ranges + used, sizeof(ranges) - used, "%s%" PRIu64 "-%" PRIu64,
                      k == 0 ? "" : ",", r->start, r->end - 1);
        if (rc < 0 || (size_t)rc >= sizeof(ranges) - used) {
            free(c);
            return OTA_ERR_TOO_LARGE;
        }
        used += (size_t)rc;
    }
    start_range(c, 0);
    rc = http_get(&status, d, url, ranges, expect, range_write, c, det);
    if (rc == 1 && c->err == NEED_SINGLE) {
        free(c);
        rc = 0;
        for (uint32_t k = 0; k < nr && rc == 0; k++)
            rc = fetch_request(d, plan, first + k, 1, url, det);
        return rc;
    }
    if (rc == 0 && !c->status_checked && status != 206) {
        c->err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
        ota_detail_set(&c->det, "HTTP status %ld", status);
    }
    /* A 206 without a body ends the range early like a short one: below,
     * truncated. */
    if (rc == 1 || c->err != 0) {
        char msg[OTA_DETAIL_LEN];

        snprintf(msg, sizeof(msg), "%s", c->det.msg);
        ota_detail_set(det, "%s (bytes %.64s%s): %s", url, ranges, used > 64 ? "..." : "", msg);
        rc = c->err != 0 ? c->err : OTA_ERR_NETWORK;
        free(c);
        return rc;
    }
    if (rc != 0) {
        free(c);
        return rc;
    }
    r = &plan->ranges[first + c->cur];
    if ((c->multipart && (ota_multipart_finish(&c->mp, NULL) != 0 || c->parts < nr)) ||
        c->pos < r->end || c->chunk != UINT32_MAX) {
        if (c->multipart && c->mp.state != OTA_MP_BODY && c->parts < nr)
            r = &plan->ranges[first + c->parts];
        ota_detail_set(det,
                       "%s: range [%" PRIu64 ", %" PRIu64 ") ended after %" PRIu64
                       " bytes (truncated by the mirror)",
                       url, r->start, r->end, c->pos > r->start ? c->pos - r->start : 0);
        if (c->chunk != UINT32_MAX)
            chunk_where(det, d->idx, c->chunk, "incomplete");
        free(c);
        return OTA_ERR_TRUNCATED;
    }
    free(c);
    return 0;
}

/* Copies chunk i from fd at src, checked against the index. */
static int copy_chunk(struct dpf *d, uint32_t i, int fd, uint64_t src, const char *from,
                      struct ota_detail *det)
{
    const struct ota_chunk_entry *e = &d->idx->chunks[i];
    int rc;

    if (ota_fs_pread_all(fd, d->buf, e->length, src) != 0) {
        ota_detail_set(det, "reading chunk %" PRIu32 " from the %s: %s", i, from, strerror(errno));
        return OTA_ERR_IO;
    }
    rc = ota_chunk_index_check_chunk(e, d->buf, e->length, det);
    if (rc != 0) {
        chunk_where(det, d->idx, i, from);
        return rc;
    }
    rc = put_chunk(d, i, d->buf, det);
    if (rc == 0)
        d->st->chunks_copied++;
    return rc;
}

static int chunk_path(struct dpf *d, const struct ota_plan_have *have, struct ota_detail *det)
{
    struct ota_plan_opts po;
    struct ota_plan *plan = NULL;
    char url[URL_MAX];
    int n;
    int rc;

    ota_plan_opts_default(&po);
    if (d->cfg->ranges_per_request != 0)
        po.ranges_per_request = d->cfg->ranges_per_request;
    rc = ota_plan_make(&plan, d->idx, have, d->done, &po, det);
    if (rc != 0)
        return rc;
    d->st->range_bytes = plan->stats.range_bytes;
    d->st->ranges = plan->nranges;
    for (uint32_t i = 0; i < plan->nsteps && rc == 0; i++)
        if (plan->steps[i].kind == OTA_PLAN_COPY_OLD)
            rc = copy_chunk(d, i, d->cfg->current_fd, plan->steps[i].src, "current image", det);
    n = snprintf(url, sizeof(url), "%s/chunks/%s.pack", d->cfg->base_url, d->hex);
    if (rc == 0 && (n < 0 || n >= (int)sizeof(url)))
        rc = OTA_ERR_TOO_LARGE;
    for (uint32_t q = 0; q < plan->nrequests && rc == 0; q++)
        rc = fetch_request(d, plan, plan->requests[q].first_range, plan->requests[q].nranges, url,
                           det);
    for (uint32_t i = 0; i < plan->nsteps && rc == 0; i++)
        if (plan->steps[i].kind == OTA_PLAN_COPY_NEW)
            rc = copy_chunk(d, i, d->part_fd, plan->steps[i].src, "new image (repeat)", det);
    ota_plan_free(plan);
    return rc;
}

/* Step 4. */
static int finish(struct dpf *d, struct ota_detail *det)
{
    struct ota_sha256_ctx *h = NULL;
    uint8_t sha[OTA_SHA256_LEN];
    uint64_t off = 0;
    char dir[PATH_MAX];
    char *slash;
    int rc;

    for (uint32_t i = 0; i < d->idx->count; i++) {
        if (!bit(d->done, i)) {
            ota_detail_set(det, "chunk %" PRIu32 " was never written", i);
            return OTA_ERR_INVALID_ARG;
        }
    }
    rc = sync_state(d, det);
    if (rc != 0)
        return rc;
    rc = ota_sha256_init(&h);
    while (rc == 0 && off < d->cfg->image_length) {
        uint64_t left = d->cfg->image_length - off;
        size_t n = left < d->buf_len ? (size_t)left : d->buf_len;

        rc = ota_fs_pread_all(d->part_fd, d->buf, n, off);
        if (rc == 0)
            rc = ota_sha256_update(h, d->buf, n);
        off += n;
    }
    if (rc == 0)
        rc = ota_sha256_final(sha, h);
    ota_sha256_ctx_free(h);
    if (rc != 0) {
        ota_detail_set(det, "hashing %s", d->part_path);
        return rc;
    }
    if (!ota_ct_equal(sha, d->cfg->image_sha256, OTA_SHA256_LEN)) {
        /* Every chunk matched but the whole does not: the progress state
         * or OUT.part was changed behind our back. Start over next time. */
        if (unlink(d->part_path) != 0 || unlink(d->state_path) != 0) {
            /* nothing more to do */
        }
        ota_detail_set(det, "%s: the assembled image does not match the signed SHA-256",
                       d->part_path);
        return OTA_ERR_HASH_MISMATCH;
    }
    if (fsync(d->part_fd) != 0 || rename(d->part_path, d->cfg->out_path) != 0) {
        ota_detail_set(det, "renaming %s to %s: %s", d->part_path, d->cfg->out_path,
                       strerror(errno));
        return OTA_ERR_IO;
    }
    snprintf(dir, sizeof(dir), "%s", d->cfg->out_path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (ota_fs_sync_dir(dir) != 0) {
        ota_detail_set(det, "syncing %s", dir);
        return OTA_ERR_IO;
    }
    if (unlink(d->state_path) != 0 && errno != ENOENT) {
        ota_detail_set(det, "removing %s: %s", d->state_path, strerror(errno));
        return OTA_ERR_IO;
    }
    return 0;
}

/* How many bytes of current_fd are the current image: current_length,
 * or the size of a regular file. A device or pipe without a length is
 * refused: hashing a whole slot would name an image that does not exist
 * (no delta would ever match) and chunk bytes that are not the image. */
static int current_length(uint64_t *out, const struct ota_dp_fetch_cfg *cfg, struct ota_detail *det)
{
    struct stat st;

    if (fstat(cfg->current_fd, &st) != 0) {
        ota_detail_set(det, "fstat: %s", strerror(errno));
        return OTA_ERR_IO;
    }
    if (cfg->current_length != 0) {
        if (S_ISREG(st.st_mode) && cfg->current_length > (uint64_t)st.st_size) {
            ota_detail_set(det, "current length %" PRIu64 " is beyond the file's %" PRIu64 " bytes",
                           cfg->current_length, (uint64_t)st.st_size);
            return OTA_ERR_TRUNCATED;
        }
        *out = cfg->current_length;
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        ota_detail_set(det, "not a regular file: give the length of the image it holds");
        return OTA_ERR_INVALID_ARG;
    }
    *out = (uint64_t)st.st_size;
    return 0;
}

int ota_dp_fetch(struct ota_dp_fetch_stats *stats, const struct ota_dp_fetch_cfg *cfg,
                 struct ota_detail *det)
{
    struct ota_dp_fetch_stats local;
    uint8_t cur_sha[OTA_SHA256_LEN];
    uint64_t cur_len = 0;
    struct dpf d;
    int n;
    int rc;

    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    memset(&d, 0, sizeof(d));
    d.part_fd = -1;
    d.state_fd = -1;
    d.lock_fd = -1;
    if (cfg == NULL || cfg->idx == NULL || cfg->image_sha256 == NULL || cfg->base_url == NULL ||
        cfg->out_path == NULL || cfg->state_dir == NULL ||
        cfg->ranges_per_request > OTA_DP_MAX_RANGES_PER_REQUEST)
        return OTA_ERR_INVALID_ARG;
    d.cfg = cfg;
    d.idx = cfg->idx;
    d.st = stats;
    stats->chunks = cfg->idx->count;
    /* 1. The index must describe the signed image. */
    if (cfg->idx->image_length != cfg->image_length) {
        ota_detail_set(det, "chunk index describes %" PRIu64 " bytes, the signed target %" PRIu64,
                       cfg->idx->image_length, cfg->image_length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (!ota_ct_equal(cfg->idx->image_sha256, cfg->image_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "chunk index describes another image than the signed target");
        return OTA_ERR_HASH_MISMATCH;
    }
    ota_hex_encode(d.hex, cfg->image_sha256, OTA_SHA256_LEN);
    n = snprintf(d.part_path, sizeof(d.part_path), "%s.part", cfg->out_path);
    if (n < 0 || n >= (int)sizeof(d.part_path))
        return OTA_ERR_TOO_LARGE;
    n = snprintf(d.state_path, sizeof(d.state_path), "%s/%s.dpstate", cfg->state_dir, d.hex);
    if (n < 0 || n >= (int)sizeof(d.state_path))
        return OTA_ERR_TOO_LARGE;
    /* The parser holds every chunk to max_size (<= OTA_CHUNK_LEN_CAP). */
    d.buf_len = cfg->idx->chunker.max_size < BUF_MIN ? BUF_MIN : cfg->idx->chunker.max_size;
    d.buf = malloc(d.buf_len);
    if (d.buf == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_pack_reader_new(&d.reader);
    if (rc == 0)
        rc = open_output(&d, det);
    if (rc == 0 && cfg->current_fd >= 0) {
        rc = current_length(&cur_len, cfg, det);
        if (rc == 0)
            rc = ota_plan_have_from_fd(&d.have, cur_sha, cfg->current_fd, cur_len,
                                       &cfg->idx->chunker, det);
        if (rc != 0)
            ota_detail_prefix(det, "reading the current image");
    }
    if (rc == 0)
        rc = http_setup(&d, det);
    /* 2. A reference delta, unless everything is done already. */
    if (rc == 0 && cfg->current_fd >= 0 && !cfg->no_delta && stats->chunks_done < d.idx->count) {
        struct ota_detail ddet;

        ddet.msg[0] = '\0';
        rc = try_delta(&d, cur_sha, cur_len, &ddet);
        if (rc == OTA_ERR_SLOW_RETRIEVAL) {
            /* A mirror that trickles is dropped, not asked for more. */
            stats->delta_tried = true;
            ota_detail_set(det, "%s", ddet.msg);
        } else if (rc != 0 && rc != OTA_ERR_NOT_FOUND) {
            stats->delta_tried = true;
            stats->delta_error = rc;
            size_t dl = strnlen(ddet.msg, sizeof(stats->delta_detail) - 1);

            memcpy(stats->delta_detail, ddet.msg, dl);
            stats->delta_detail[dl] = '\0';
        } else if (rc == 0) {
            stats->delta_tried = true;
        }
        if (rc != OTA_ERR_SLOW_RETRIEVAL)
            rc = 0;
    }
    /* 3. Chunks for whatever is still missing (the current image's set
     * again if a delta answered and then failed). */
    if (rc == 0 && !stats->delta_used && cfg->current_fd >= 0 && d.have == NULL) {
        rc =
            ota_plan_have_from_fd(&d.have, NULL, cfg->current_fd, cur_len, &cfg->idx->chunker, det);
        if (rc != 0)
            ota_detail_prefix(det, "reading the current image");
    }
    if (rc == 0 && !stats->delta_used)
        rc = chunk_path(&d, d.have, det);
    /* 4. */
    if (rc == 0)
        rc = finish(&d, det);
    else if (d.state_fd >= 0 && d.part_fd >= 0 && sync_state(&d, NULL) != 0) {
        /* keep the first error */
    }
    if (d.easy != NULL)
        curl_easy_cleanup(d.easy);
    ota_plan_have_free(d.have);
    ota_pack_reader_free(d.reader);
    if (d.part_fd >= 0)
        close(d.part_fd);
    if (d.state_fd >= 0)
        close(d.state_fd);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    if (d.buf != NULL)
        ota_wipe(d.buf, d.buf_len);
    free(d.buf);
    free(d.done);
    return rc;
}
