/* Data-plane fetcher: see include/otachain/dp_fetch.h.
 *
 * Output states (the output module's file or slot is the only thing
 * written besides the state file):
 *
 *   no index: delta bytes ─► output (in order) ─► verify (re-read, whole
 *             SHA-256) ─► commit          └─ any failure: nothing trusted
 *   index:    output + state bitmap (resumed when both belong to this
 *             image and this output; zeros otherwise)
 *             chunk i verified ─► written at its offset ─► bit i set
 *             every SYNC_CHUNKS chunks / SYNC_BYTES / SYNC_MS: sync the
 *             output, then write + fdatasync the bitmap (bit on disk =>
 *             bytes on disk)
 *             all bits set ─► verify ─► commit, remove the bitmap
 *                          └─ mismatch ─► discard the output, remove the
 *                             bitmap, fail
 *
 * Invariants: (1) a bit is set only after its chunk's bytes passed
 * ota_pack_reader_finish or ota_chunk_index_check_chunk; (2) a bit reaches
 * the disk only after the bytes it vouches for; (3) the output is
 * committed only after the whole-image hash of what the medium holds
 * matched; (4) delta bytes written without the index never set a bit.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otachain/delta.h"
#include "otachain/fsutil.h"
#include "otachain/http.h"
#include "otachain/multipart.h"
#include "otachain/pack.h"
#include "otachain/plan.h"

#define STATE_MAGIC         "OTADPST2"
#define STATE_HEADER_LEN    64u
#define SYNC_CHUNKS         32u
#define SYNC_BYTES          (UINT64_C(4) << 20)
#define SYNC_MS             500
#define URL_MAX             2048
#define BUF_MIN             (64u * 1024) /* read block of the final hash pass */
#define DP_ERROR_PAGE_DRAIN (16u * 1024) /* error page bytes read and dropped, at most */
/* Bytes a multipart/byteranges answer adds per part (boundary line and
 * part headers: about 100 with nginx), for the slow-retrieval deadline. */
#define MULTIPART_PART_OVERHEAD 512u
#define HASH_READ_BLOCK         (64u * 1024)

struct dpf {
    const struct ota_dp_fetch_cfg *cfg;
    struct ota_dp_fetch_stats *st;
    struct ota_output *out;
    char state_path[PATH_MAX];
    char delta_path[PATH_MAX]; /* <state>/<image-sha256>.dpdelta: the last delta resume point */
    char hex[OTA_SHA256_HEX_LEN + 1];
    int state_fd;
    int lock_fd; /* <state>/<image-sha256>.lock, flock'ed for the whole run */
    /* With the index (NULL before it is needed). */
    struct ota_chunk_index_file *idx;
    const struct ota_chunk_index *hdr;
    uint8_t *done; /* bitmap, (count + 7) / 8 bytes */
    size_t done_len;
    uint32_t unsynced;
    uint64_t unsynced_bytes;
    struct timespec last_sync;
    uint8_t *buf; /* one chunk: buf_len = the index's max_size, at least BUF_MIN */
    size_t buf_len;
    struct ota_pack_reader *reader;
    struct ota_plan_have *have; /* the current image's chunks (with the index) */
    uint8_t cur_sha[OTA_SHA256_LEN];
    bool cur_hashed;
    uint64_t cur_len;
    bool no_range; /* the mirror answered a single range with the whole file */
    CURL *easy;
    const struct ota_http_policy *policy; /* cfg->http, or policy_default */
    struct ota_http_policy policy_default;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t written; /* bytes this run wrote to the output (progress) */
};

static void progressed(struct dpf *d, size_t len)
{
    d->written += len;
    if (d->cfg->progress != NULL)
        d->cfg->progress(d->cfg->progress_ctx, d->written, d->cfg->image_length);
}

static bool bit(const uint8_t *map, uint32_t i)
{
    return ota_plan_done(map, i);
}

static int64_t ms_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* ---- the resume state ------------------------------------------------------ */

static void state_header(const struct dpf *d, uint8_t hdr[STATE_HEADER_LEN])
{
    uint64_t id[2];

    memset(hdr, 0, STATE_HEADER_LEN);
    memcpy(hdr, STATE_MAGIC, 8);
    memcpy(hdr + 8, d->cfg->image_sha256, OTA_SHA256_LEN);
    for (int k = 0; k < 4; k++)
        hdr[40 + k] = (uint8_t)(d->hdr->count >> (8 * k));
    ota_output_identity(d->out, id);
    for (int k = 0; k < 8; k++) {
        hdr[48 + k] = (uint8_t)(id[0] >> (8 * k));
        hdr[56 + k] = (uint8_t)(id[1] >> (8 * k));
    }
}

/* Whether the state file holds progress for this image and this output
 * (read before the index: only its magic, hash and output identity). */
static bool has_progress(const struct dpf *d)
{
    uint8_t have[STATE_HEADER_LEN];
    uint64_t id[2];
    int fd = open(d->state_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    bool ok;

    if (fd < 0)
        return false;
    ota_output_identity(d->out, id);
    ok = ota_output_resumed(d->out) && ota_fs_pread_all(fd, have, sizeof(have), 0) == 0 &&
         memcmp(have, STATE_MAGIC, 8) == 0 &&
         memcmp(have + 8, d->cfg->image_sha256, OTA_SHA256_LEN) == 0;
    for (int k = 0; ok && k < 8; k++)
        ok = have[48 + k] == (uint8_t)(id[0] >> (8 * k)) &&
             have[56 + k] == (uint8_t)(id[1] >> (8 * k));
    close(fd);
    return ok;
}

/* Makes everything marked so far durable: output first, then the bitmap. */
static int sync_state(struct dpf *d, struct ota_detail *det)
{
    int rc = ota_output_sync(d->out, det);

    if (rc != 0)
        return rc;
    if (ota_fs_pwrite_all(d->state_fd, d->done, d->done_len, STATE_HEADER_LEN) != 0 ||
        fdatasync(d->state_fd) != 0) {
        ota_detail_set(det, "recording progress in %s: %s", d->state_path, strerror(errno));
        return OTA_ERR_IO;
    }
    d->unsynced = 0;
    d->unsynced_bytes = 0;
    clock_gettime(CLOCK_MONOTONIC, &d->last_sync);
    return 0;
}

/* The bitmap: resumed when the state belongs to this image and output,
 * fresh otherwise. */
static int open_state(struct dpf *d, struct ota_detail *det)
{
    uint8_t hdr[STATE_HEADER_LEN];
    uint8_t have[STATE_HEADER_LEN];
    bool resume = false;

    state_header(d, hdr);
    d->done_len = ((size_t)d->hdr->count + 7) / 8;
    d->done = calloc(d->done_len + 1, 1);
    if (d->done == NULL)
        return OTA_ERR_NOMEM;
    d->state_fd = open(d->state_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (d->state_fd >= 0 && ota_output_resumed(d->out) &&
        ota_fs_pread_all(d->state_fd, have, sizeof(have), 0) == 0 &&
        memcmp(have, hdr, sizeof(hdr)) == 0 &&
        ota_fs_pread_all(d->state_fd, d->done, d->done_len, STATE_HEADER_LEN) == 0)
        resume = true;
    if (!resume) {
        memset(d->done, 0, d->done_len);
        if (d->state_fd >= 0)
            close(d->state_fd);
        d->state_fd =
            open(d->state_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->state_fd < 0 || ota_fs_pwrite_all(d->state_fd, hdr, sizeof(hdr), 0) != 0) {
            ota_detail_set(det, "creating %s: %s", d->state_path, strerror(errno));
            return OTA_ERR_IO;
        }
        return sync_state(d, det);
    }
    for (uint32_t i = 0; i < d->hdr->count; i++)
        if (bit(d->done, i))
            d->st->chunks_done++;
    clock_gettime(CLOCK_MONOTONIC, &d->last_sync);
    return 0;
}

/* Writes verified chunk i and marks it done. */
static int put_chunk(struct dpf *d, uint32_t i, const struct ota_chunk_entry *e,
                     const uint8_t *data, struct ota_detail *det)
{
    int rc = ota_output_write(d->out, data, e->length, e->offset, det);

    if (rc != 0)
        return rc;
    progressed(d, e->length);
    d->done[i / 8] |= (uint8_t)(1u << (i % 8));
    d->unsynced++;
    d->unsynced_bytes += e->length;
    if (d->unsynced >= SYNC_CHUNKS || d->unsynced_bytes >= SYNC_BYTES ||
        ms_since(&d->last_sync) >= SYNC_MS)
        return sync_state(d, det);
    return 0;
}

static void chunk_where(struct ota_detail *det, uint32_t i, const struct ota_chunk_entry *e,
                        const char *what)
{
    char prev[OTA_DETAIL_LEN];

    snprintf(prev, sizeof(prev), "%s", det != NULL ? det->msg : "");
    ota_detail_set(det,
                   "%s chunk %" PRIu32 " (image bytes [%" PRIu64 ", %" PRIu64
                   "), pack bytes [%" PRIu64 ", %" PRIu64 ")): %s",
                   what, i, e->offset, e->offset + e->length, e->pack_offset,
                   e->pack_offset + e->zlength, prev);
}

/* ---- the delta's resume point ---------------------------------------------- *
 *
 * At each frame boundary of a delta (docs/formats/delta.md, "Resume"), with
 * the output synced up to it: magic "OTADPDL1" | image SHA-256 | output
 * identity (16) | from-image SHA-256 | delta length (0: unknown) |
 * delta_offset | out_offset | old_cursor (little-endian u64s). */
#define DELTA_MAGIC   "OTADPDL1"
#define DELTA_REC_LEN 120u

struct delta_rec {
    uint8_t from[OTA_SHA256_LEN];
    uint64_t length;
    struct ota_delta_resume rp;
};

static void put64le(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;

    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

static void rec_head(const struct dpf *d, uint8_t b[DELTA_REC_LEN])
{
    uint64_t id[2];

    memset(b, 0, DELTA_REC_LEN);
    memcpy(b, DELTA_MAGIC, 8);
    memcpy(b + 8, d->cfg->image_sha256, OTA_SHA256_LEN);
    ota_output_identity(d->out, id);
    put64le(b + 40, id[0]);
    put64le(b + 48, id[1]);
}

static int rec_write(struct dpf *d, const struct delta_rec *r, struct ota_detail *det)
{
    uint8_t b[DELTA_REC_LEN];
    int fd;
    int rc = 0;

    rec_head(d, b);
    memcpy(b + 56, r->from, OTA_SHA256_LEN);
    put64le(b + 88, r->length);
    put64le(b + 96, r->rp.delta_offset);
    put64le(b + 104, r->rp.out_offset);
    put64le(b + 112, r->rp.old_cursor);
    fd = open(d->delta_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || ota_fs_pwrite_all(fd, b, sizeof(b), 0) != 0 || fdatasync(fd) != 0) {
        ota_detail_set(det, "recording the delta's progress in %s: %s", d->delta_path,
                       strerror(errno));
        rc = OTA_ERR_IO;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The resume point of an earlier run on this image, output and current
 * image, if any. */
static bool rec_read(const struct dpf *d, struct delta_rec *r)
{
    uint8_t want[DELTA_REC_LEN];
    uint8_t b[DELTA_REC_LEN];
    int fd = open(d->delta_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    bool ok;

    if (fd < 0)
        return false;
    rec_head(d, want);
    ok = ota_output_resumed(d->out) && ota_fs_pread_all(fd, b, sizeof(b), 0) == 0 &&
         memcmp(b, want, 56) == 0 && memcmp(b + 56, d->cur_sha, OTA_SHA256_LEN) == 0;
    close(fd);
    if (!ok)
        return false;
    memcpy(r->from, b + 56, OTA_SHA256_LEN);
    r->length = get64le(b + 88);
    r->rp.delta_offset = get64le(b + 96);
    r->rp.out_offset = get64le(b + 104);
    r->rp.old_cursor = get64le(b + 112);
    return r->rp.delta_offset > OTA_DELTA_HEADER_LEN && r->rp.out_offset > 0 &&
           r->rp.out_offset <= d->cfg->image_length;
}

static void rec_remove(const struct dpf *d)
{
    if (unlink(d->delta_path) != 0 && errno != ENOENT) {
        /* a stale record is harmless: it names its image and output */
    }
}

/* ---- the index, when needed ----------------------------------------------- */

static int load_index(struct dpf *d, struct ota_detail *det)
{
    int fd = -1;
    int rc;

    if (d->idx != NULL)
        return 0;
    if (d->cfg->get_index == NULL) {
        ota_detail_set(det, "no way to get the chunk index");
        return OTA_ERR_INVALID_ARG;
    }
    rc = d->cfg->get_index(d->cfg->index_ctx, &fd, det);
    if (rc == 0)
        rc = ota_chunk_index_open(&d->idx, fd, d->cfg->state_dir, det);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        return rc;
    d->st->index_used = true;
    d->hdr = ota_chunk_index_file_header(d->idx);
    d->st->chunks = d->hdr->count;
    if (d->hdr->image_length != d->cfg->image_length) {
        ota_detail_set(det, "chunk index describes %" PRIu64 " bytes, the signed target %" PRIu64,
                       d->hdr->image_length, d->cfg->image_length);
        return OTA_ERR_LENGTH_MISMATCH;
    }
    if (!ota_ct_equal(d->hdr->image_sha256, d->cfg->image_sha256, OTA_SHA256_LEN)) {
        ota_detail_set(det, "chunk index describes another image than the signed target");
        return OTA_ERR_HASH_MISMATCH;
    }
    /* The parser holds every chunk to max_size (<= OTA_CHUNK_LEN_CAP). */
    d->buf_len = d->hdr->chunker.max_size < BUF_MIN ? BUF_MIN : d->hdr->chunker.max_size;
    d->buf = malloc(d->buf_len);
    if (d->buf == NULL)
        return OTA_ERR_NOMEM;
    rc = ota_pack_reader_new(&d->reader);
    if (rc == 0)
        rc = open_state(d, det);
    return rc;
}

/* The current image's chunks (needs the index's chunker), and its hash
 * on the way if not known yet. */
static int load_have(struct dpf *d, struct ota_detail *det)
{
    int rc;

    if (d->cfg->current_fd < 0 || d->have != NULL)
        return 0;
    rc = ota_plan_have_from_fd(&d->have, d->cur_hashed ? NULL : d->cur_sha, d->cfg->current_fd,
                               d->cur_len, &d->hdr->chunker, d->cfg->state_dir, det);
    if (rc != 0)
        ota_detail_prefix(det, "reading the current image");
    else
        d->cur_hashed = true;
    return rc;
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
 * Returns 0 with the HTTP status in *status, 1 when the write callback
 * stopped it (its error is in ctx), or a transport error
 * (OTA_ERR_SLOW_RETRIEVAL, OTA_ERR_NETWORK) with det naming the URL. */
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
        return 1;
    return ota_http_xfer_result(&x, cc, d->errbuf, det);
}

/* ---- an image stream cut at the index's boundaries ------------------------- */

/* The image from its first byte, in order (a delta's output, the full
 * image target): each chunk not done yet is checked against the index
 * and written; chunks done are skipped. */
struct seq {
    struct dpf *d;
    struct ota_chunk_cursor cur;
    struct ota_chunk_entry e; /* the chunk being assembled */
    uint32_t i;
    bool have_e;
    uint32_t filled;
    uint32_t *counter; /* stats: chunks_from_delta or chunks_fetched */
    const char *what;  /* for messages */
    struct ota_detail det;
};

static void seq_init(struct seq *s, struct dpf *d, uint32_t *counter, const char *what)
{
    memset(s, 0, sizeof(*s));
    s->d = d;
    s->counter = counter;
    s->what = what;
    ota_chunk_cursor_init(&s->cur, d->idx);
}

static int seq_feed(void *ctx, const void *data, size_t len)
{
    struct seq *s = ctx;
    struct dpf *d = s->d;
    const uint8_t *p = data;

    while (len > 0) {
        size_t n;
        int rc;

        if (!s->have_e) {
            s->i = s->cur.next;
            rc = ota_chunk_cursor_next(&s->cur, &s->e, NULL, &s->det);
            if (rc == 0) {
                ota_detail_set(&s->det, "%s: more bytes than the image's", s->what);
                return OTA_ERR_DELTA_OVERRUN;
            }
            if (rc < 0)
                return rc;
            s->have_e = true;
            s->filled = 0;
        }
        n = s->e.length - s->filled;
        if (n > len)
            n = len;
        memcpy(d->buf + s->filled, p, n);
        s->filled += (uint32_t)n;
        p += n;
        len -= n;
        if (s->filled < s->e.length)
            continue;
        s->have_e = false;
        if (bit(d->done, s->i))
            continue;
        rc = ota_chunk_index_check_chunk(&s->e, d->buf, s->e.length, &s->det);
        if (rc != 0) {
            chunk_where(&s->det, s->i, &s->e, s->what);
            return rc;
        }
        rc = put_chunk(d, s->i, &s->e, d->buf, &s->det);
        if (rc != 0)
            return rc;
        (*s->counter)++;
    }
    return 0;
}

/* Whether the stream brought the whole image. */
static int seq_end(struct seq *s, struct ota_detail *det)
{
    if (s->have_e || s->cur.next != s->d->hdr->count) {
        ota_detail_set(det, "%s ended at chunk %" PRIu32 " of %" PRIu32, s->what, s->cur.next,
                       s->d->hdr->count);
        return OTA_ERR_TRUNCATED;
    }
    return 0;
}

/* Positions s at image byte off (a resume point): the chunk holding it
 * starts with its bytes before off read back from the output (written,
 * unverified, by the earlier run; checked with the rest of the chunk). */
static int seq_resume(struct seq *s, uint64_t off, struct ota_detail *det)
{
    struct dpf *d = s->d;
    struct ota_chunk_cursor *c = &s->cur;
    int rc;

    ota_chunk_cursor_init(c, d->idx);
    /* The chunk holding off: walk from the nearest mark (seek is cheap). */
    for (;;) {
        uint32_t i = c->next;

        rc = ota_chunk_cursor_next(c, &s->e, NULL, det);
        if (rc != 1)
            return rc < 0 ? rc : OTA_ERR_INVALID_ARG;
        if (s->e.offset + s->e.length > off) {
            s->i = i;
            break;
        }
    }
    s->have_e = true;
    s->filled = (uint32_t)(off - s->e.offset);
    if (s->filled > 0 && !bit(d->done, s->i))
        return ota_output_read(d->out, d->buf, s->filled, s->e.offset, det);
    return 0;
}

/* ---- reference delta ------------------------------------------------------ */

struct delta_ctx {
    struct dpf *d;
    struct ota_delta_apply *a;
    struct seq *seq; /* with the index: chunks checked; NULL: plain */
    uint64_t pos;    /* plain: output bytes written */
    uint64_t got;
    uint64_t cap;
    uint64_t drained;  /* error page bytes dropped */
    uint64_t base;     /* a resumed answer starts at this delta offset (0: the whole delta) */
    uint64_t length;   /* the delta's length from the answer (0: unknown) */
    uint64_t recorded; /* delta offset of the last resume point recorded */
    int err;
    bool status_checked;
    struct ota_detail det;
};

#define DELTA_NO_RESUME 4 /* private: the resumed answer is not the one asked for */

/* Without the index: the to-image goes to the output as it comes, covered
 * by the whole-image hash before anything trusts it. */
static int delta_plain_sink(void *ctx, const void *data, size_t len)
{
    struct delta_ctx *c = ctx;
    int rc = ota_output_write(c->d->out, data, len, c->pos, &c->det);

    c->pos += len;
    if (rc == 0)
        progressed(c->d, len);
    return rc;
}

/* A frame boundary passed: make the output durable up to it, then
 * record it, so that a rerun fetches only the rest of the delta. */
static int record_resume_point(struct delta_ctx *c)
{
    struct dpf *d = c->d;
    struct delta_rec r;
    int rc;

    if (ota_delta_apply_checkpoint(&r.rp, c->a) != 0 || r.rp.delta_offset <= c->recorded ||
        r.rp.delta_offset <= OTA_DELTA_HEADER_LEN)
        return 0;
    if (c->seq != NULL) {
        struct seq *s = c->seq;

        /* The chunk being assembled: its bytes so far, unverified (no bit),
         * so that a resume can complete and check it. */
        if (s->have_e && s->filled > 0 && !bit(d->done, s->i)) {
            rc = ota_output_write(d->out, d->buf, s->filled, s->e.offset, &c->det);
            if (rc != 0)
                return rc;
        }
        rc = sync_state(d, &c->det);
    } else {
        rc = ota_output_sync(d->out, &c->det);
    }
    memcpy(r.from, d->cur_sha, OTA_SHA256_LEN);
    r.length = c->length;
    if (rc == 0)
        rc = rec_write(d, &r, &c->det);
    if (rc == 0)
        c->recorded = r.rp.delta_offset;
    return rc;
}

/* The answer to a resumed request: 206 for the bytes from c->base to the
 * end of a delta of the recorded length. */
static int resumed_answer(struct delta_ctx *c, long status)
{
    struct curl_header *h = NULL;
    struct ota_byte_range br;

    if (status != 206 ||
        curl_easy_header(c->d->easy, "Content-Range", 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
        ota_content_range_parse(&br, h->value, strlen(h->value), &c->det) != 0 ||
        br.first != c->base || br.total == UINT64_MAX || br.last + 1 != br.total ||
        (c->length != 0 && br.total != c->length)) {
        ota_detail_set(&c->det, "HTTP status %ld: not the rest of the delta from byte %" PRIu64,
                       status, c->base);
        return DELTA_NO_RESUME;
    }
    c->length = br.total;
    return 0;
}

static size_t delta_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct delta_ctx *c = ctx;
    size_t n = size * nmemb;
    long status = 0;

    c->d->st->bytes_fetched += n; /* what crossed the wire, even if refused */
    if (!c->status_checked) {
        curl_off_t cl = -1;

        curl_easy_getinfo(c->d->easy, CURLINFO_RESPONSE_CODE, &status);
        c->status_checked = true;
        if (c->base > 0) {
            c->err = resumed_answer(c, status);
            if (c->err != 0)
                return 0;
        } else if (status != 200) {
            c->err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
            ota_detail_set(&c->det, "HTTP status %ld", status);
        } else if (curl_easy_getinfo(c->d->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
                       CURLE_OK &&
                   cl > 0) {
            c->length = (uint64_t)cl;
        }
    }
    if (c->err != 0) {
        /* An error page: dropped, and read to its end when short so that
         * the keep-alive connection survives the usual 404 (no delta). */
        c->drained += n;
        return c->drained <= DP_ERROR_PAGE_DRAIN ? n : 0;
    }
    c->got += n;
    if (c->base + c->got > c->cap) {
        c->err = OTA_ERR_TOO_LARGE;
        ota_detail_set(&c->det, "delta longer than %" PRIu64 " bytes", c->cap);
        return 0;
    }
    c->err = ota_delta_apply_feed(c->a, data, n, &c->det);
    if (c->err == 0)
        c->err = record_resume_point(c);
    return c->err == 0 ? n : 0;
}

/* A resumed delta starts with its header alone (bytes 0-103). */
struct head_ctx {
    uint8_t b[OTA_DELTA_HEADER_LEN];
    size_t n;
    long status;
};

static size_t head_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct head_ctx *h = ctx;
    size_t n = size * nmemb;

    if (n > sizeof(h->b) - h->n)
        return 0;
    memcpy(h->b + h->n, data, n);
    h->n += n;
    return n;
}

/* Feeds a fresh applier the delta's header and moves it to rec's resume
 * point: 0, DELTA_NO_RESUME (the mirror did not answer as asked), or a
 * transport error. */
static int resume_applier(struct dpf *d, struct delta_ctx *c, const struct delta_rec *rec,
                          const char *url, struct ota_detail *det)
{
    struct head_ctx h;
    long status;
    int rc;

    memset(&h, 0, sizeof(h));
    rc = http_get(&status, d, url, "0-103", OTA_DELTA_HEADER_LEN, head_write, &h, det);
    if (rc < 0)
        return rc;
    d->st->bytes_fetched += h.n;
    c->got = 0;
    if (rc != 0 || status != 206 || h.n != sizeof(h.b))
        return DELTA_NO_RESUME;
    if (ota_delta_apply_feed(c->a, h.b, h.n, &c->det) != 0 ||
        ota_delta_apply_resume(c->a, &rec->rp, &c->det) != 0)
        return DELTA_NO_RESUME;
    c->base = rec->rp.delta_offset;
    c->length = rec->length;
    c->recorded = rec->rp.delta_offset;
    return 0;
}

/* Returns 0 when the image was produced (with the index: every chunk
 * verified; without: the output verified whole), OTA_ERR_NOT_FOUND when
 * there is no delta, any other error when a delta was found but failed.
 * det names the URL. With rec (the index loaded, the output verified up
 * to rec's out_offset), only the rest of the delta is fetched; a mirror
 * that does not answer that as asked gets the whole delta asked for. */
static int try_delta(struct dpf *d, const struct delta_rec *rec, struct ota_detail *det)
{
    struct delta_ctx c;
    struct ota_delta_apply_cfg acfg;
    struct seq *seq = NULL;
    char url[URL_MAX];
    char from_hex[OTA_SHA256_HEX_LEN + 1];
    char range[64];
    int fd = d->cfg->current_fd;
    long status;
    int rc;
    int n;

    memset(&c, 0, sizeof(c));
    c.d = d;
    c.cap = d->cfg->image_length + OTA_DP_DELTA_SLACK;
    ota_hex_encode(from_hex, d->cur_sha, OTA_SHA256_LEN);
    n = snprintf(url, sizeof(url), "%s/deltas/%s/%s", d->cfg->base_url, from_hex, d->hex);
    if (n < 0 || n >= (int)sizeof(url))
        return OTA_ERR_TOO_LARGE;
    if (d->idx != NULL) {
        seq = malloc(sizeof(*seq));
        if (seq == NULL)
            return OTA_ERR_NOMEM;
        seq_init(seq, d, &d->st->chunks_from_delta, "delta output does not match");
        c.seq = seq;
    }
    memset(&acfg, 0, sizeof(acfg));
    acfg.read_old = ota_delta_read_fd;
    acfg.read_ctx = &fd;
    acfg.old_length = d->cur_len;
    acfg.old_sha256 = d->cur_sha;
    acfg.to_sha256 = d->cfg->image_sha256;
    acfg.to_length = d->cfg->image_length;
    acfg.sink = seq != NULL ? seq_feed : delta_plain_sink;
    acfg.sink_ctx = seq != NULL ? (void *)seq : (void *)&c;
    rc = ota_delta_apply_new(&c.a, &acfg);
    if (rc == 0 && rec != NULL && seq != NULL) {
        rc = resume_applier(d, &c, rec, url, det);
        if (rc == 0)
            rc = seq_resume(seq, rec->rp.out_offset, &c.det);
        if (rc == DELTA_NO_RESUME || rc == OTA_ERR_HASH_MISMATCH) {
            /* Start over, whole. */
            ota_delta_apply_free(c.a);
            c.a = NULL;
            free(seq);
            rec_remove(d);
            return try_delta(d, NULL, det);
        }
        d->st->delta_resumed = rc == 0;
    }
    if (rc == 0) {
        if (c.base > 0)
            snprintf(range, sizeof(range), "%" PRIu64 "-", c.base);
        rc = http_get(&status, d, url, c.base > 0 ? range : NULL, c.cap - c.base, delta_write, &c,
                      det);
    }
    if (rc == 0 && !c.status_checked && status != (c.base > 0 ? 206 : 200)) {
        c.err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
        ota_detail_set(&c.det, "HTTP status %ld", status);
    }
    if (rc == 1 && c.err == DELTA_NO_RESUME) {
        /* The rest was not served as asked: the whole delta, checked
         * chunk by chunk (the chunks already verified are skipped). */
        ota_delta_apply_free(c.a);
        free(seq);
        rec_remove(d);
        return try_delta(d, NULL, det);
    }
    if (rc == 1 || (rc == 0 && c.err != 0)) {
        /* Stopped by the callback (or an error page read to its end). */
        rc = c.err;
        if (seq != NULL && seq->det.msg[0] != '\0' && c.det.msg[0] == '\0')
            c.det = seq->det;
        ota_detail_set(det, "%s: %s", url, c.det.msg);
    } else if (rc == 0) {
        rc = ota_delta_apply_finish(c.a, &c.det);
        if (rc == 0 && seq != NULL)
            rc = seq_end(seq, &c.det);
        if (rc == 0 && seq == NULL) { /* the whole image, from the medium */
            uint8_t *buf = malloc(HASH_READ_BLOCK);

            rc = buf == NULL ? OTA_ERR_NOMEM
                             : ota_output_verify(d->out, d->cfg->image_sha256, buf, HASH_READ_BLOCK,
                                                 &c.det);
            free(buf);
        }
        if (rc != 0)
            ota_detail_set(det, "%s: %s", url, c.det.msg);
    } /* else a transport error: http_get named the URL */
    d->st->delta_bytes += c.got;
    ota_delta_apply_free(c.a);
    free(seq);
    if (rc == 0)
        d->st->delta_used = true;
    if (rc == 0 || (rc != OTA_ERR_SLOW_RETRIEVAL && rc != OTA_ERR_NETWORK))
        rec_remove(d); /* done, or this delta is no good: nothing to resume */
    return rc;
}

/* ---- chunks from the pack ------------------------------------------------- */

/* One request: the n ranges of one ota_plan_next. With n > 1 the answer
 * must be multipart/byteranges whose parts are exactly those ranges in
 * order; a server that answers with one part (it merged ranges) or with
 * the whole file (200: no multi-range support, e.g. nginx max_ranges 1)
 * gets the ranges again one per request, the answer being abandoned at
 * its first byte. A 200 to a single range: the server ignores Range
 * (the caller fetches the full image instead). */
struct range_ctx {
    struct dpf *d;
    const struct ota_plan *plan;
    const struct ota_plan_range *ranges;
    uint32_t n;
    uint32_t cur;   /* range being received */
    uint32_t parts; /* multipart: parts started so far */
    uint64_t pos;   /* pack offset of the next byte */
    bool in_chunk;  /* a FETCH chunk is next in the range */
    uint32_t chunk; /* its index */
    struct ota_chunk_entry e;
    uint32_t fed; /* bytes of its frame fed so far */
    bool started; /* reader begun for chunk */
    bool status_checked;
    bool multipart;
    struct ota_multipart mp; /* the framing of a multipart/byteranges answer */
    struct ota_chunk_cursor cur_c;
    int err;
    struct ota_detail det;
};

#define NEED_SINGLE 2 /* private: redo the request one range at a time */
#define NO_RANGE    3 /* private: the server ignores Range */

/* The next FETCH chunk of the current range at or after chunk `from`. */
static int next_fetch(struct range_ctx *c, uint32_t from)
{
    const struct ota_plan_range *r = &c->ranges[c->cur];
    int rc = ota_chunk_cursor_seek(&c->cur_c, from, &c->det);

    c->in_chunk = false;
    while (rc == 0 && c->cur_c.next <= r->last) {
        uint32_t i = c->cur_c.next;

        rc = ota_chunk_cursor_next(&c->cur_c, &c->e, NULL, &c->det);
        if (rc != 1)
            return rc < 0 ? rc : 0;
        rc = 0;
        if (ota_plan_fetches(c->plan, i, &c->e)) {
            c->chunk = i;
            c->in_chunk = true;
            return 0;
        }
    }
    return rc;
}

static int start_range(struct range_ctx *c, uint32_t k)
{
    c->cur = k;
    c->pos = c->ranges[k].start;
    c->started = false;
    return next_fetch(c, c->ranges[k].first);
}

/* Bytes of the current range: skip gaps, decode and check frames, write
 * verified chunks. 0 or an error (c->det says which chunk). */
static int consume(struct range_ctx *c, const uint8_t *data, size_t n)
{
    struct dpf *d = c->d;
    const struct ota_plan_range *r = &c->ranges[c->cur];
    size_t off = 0;

    while (off < n) {
        const struct ota_chunk_entry *e = &c->e;
        size_t take;
        int rc;

        if (c->pos >= r->end || !c->in_chunk) {
            ota_detail_set(&c->det, "more bytes than the range [%" PRIu64 ", %" PRIu64 ")",
                           r->start, r->end);
            return OTA_ERR_TOO_LARGE;
        }
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
            chunk_where(&c->det, c->chunk, e, "bad");
            return rc;
        }
        if (c->fed < e->zlength)
            continue;
        c->started = false;
        rc = put_chunk(d, c->chunk, e, d->buf, &c->det);
        if (rc != 0)
            return rc;
        d->st->chunks_fetched++;
        rc = next_fetch(c, c->chunk + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* How a range ended short, for messages. */
static void range_short(struct range_ctx *c, struct ota_detail *det, const char *url)
{
    const struct ota_plan_range *r = &c->ranges[c->cur];

    ota_detail_set(det,
                   "%s: range [%" PRIu64 ", %" PRIu64 ") ended after %" PRIu64
                   " bytes (truncated by the mirror)",
                   url, r->start, r->end, c->pos > r->start ? c->pos - r->start : 0);
    if (c->in_chunk)
        chunk_where(det, c->chunk, &c->e, "incomplete");
}

/* Multipart: a part begins; it must be the next range asked for. */
static int part_begin(void *ctx, const struct ota_byte_range *br)
{
    struct range_ctx *c = ctx;
    const struct ota_plan_range *r = &c->ranges[c->parts];

    if (c->parts > 0) { /* the previous part must have brought its whole range */
        const struct ota_plan_range *prev = &c->ranges[c->cur];

        if (c->pos < prev->end || c->in_chunk) {
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
    c->parts++;
    return start_range(c, c->parts - 1);
}

static int part_data(void *ctx, const uint8_t *data, size_t len)
{
    return consume(ctx, data, len);
}

/* A single-part answer: its Content-Range must be the one range asked
 * for (several asked for: the caller asks again one at a time). */
static int single_range(struct range_ctx *c)
{
    const struct ota_plan_range *r = &c->ranges[0];
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
        if (status == 200) { /* no multi-range here, or no Range at all */
            c->err = c->n > 1 ? NEED_SINGLE : NO_RANGE;
            return 0;
        }
        if (status != 206) {
            c->err = status == 404 || status == 403 ? OTA_ERR_NOT_FOUND : OTA_ERR_NETWORK;
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

/* One request for ranges[0, n). */
static int fetch_request(struct dpf *d, const struct ota_plan *plan,
                         const struct ota_plan_range *ranges, uint32_t n, const char *url,
                         struct ota_detail *det)
{
    struct range_ctx *c = calloc(1, sizeof(*c));
    char spec[2048];
    size_t used = 0;
    uint64_t expect = 0;
    long status;
    int rc;

    if (c == NULL)
        return OTA_ERR_NOMEM;
    c->d = d;
    c->plan = plan;
    c->ranges = ranges;
    c->n = n;
    ota_chunk_cursor_init(&c->cur_c, d->idx);
    for (uint32_t k = 0; k < n; k++) {
        expect += ranges[k].end - ranges[k].start + MULTIPART_PART_OVERHEAD;
        rc = snprintf(spec + used, sizeof(spec) - used, "%s%" PRIu64 "-%" PRIu64, k == 0 ? "" : ",",
                      ranges[k].start, ranges[k].end - 1);
        if (rc < 0 || (size_t)rc >= sizeof(spec) - used) {
            free(c);
            return OTA_ERR_TOO_LARGE;
        }
        used += (size_t)rc;
    }
    rc = start_range(c, 0);
    if (rc == 0)
        rc = http_get(&status, d, url, spec, expect, range_write, c, det);
    if (rc == 1 && c->err == NEED_SINGLE) {
        free(c);
        rc = 0;
        for (uint32_t k = 0; k < n && rc == 0 && !d->no_range; k++)
            rc = fetch_request(d, plan, ranges + k, 1, url, det);
        return rc;
    }
    if (rc == 1 && c->err == NO_RANGE) {
        free(c);
        d->no_range = true;
        return 0;
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
        ota_detail_set(det, "%s (bytes %.64s%s): %s", url, spec, used > 64 ? "..." : "", msg);
        rc = c->err != 0 ? c->err : OTA_ERR_NETWORK;
        free(c);
        return rc;
    }
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (c->multipart && c->mp.state != OTA_MP_BODY && c->parts < n) {
        /* Parts missing: the first of them is short. */
        c->cur = c->parts;
        c->pos = ranges[c->parts].start;
        if (next_fetch(c, ranges[c->parts].first) != 0)
            c->in_chunk = false;
    }
    if ((c->multipart && (ota_multipart_finish(&c->mp, NULL) != 0 || c->parts < n)) ||
        c->pos < ranges[c->cur].end || c->in_chunk) {
        range_short(c, det, url);
        free(c);
        return OTA_ERR_TRUNCATED;
    }
    free(c);
    return 0;
}

/* Copies chunk i from fd (the current image) or the output (a repeat) at
 * src, checked against the index. */
struct copy_ctx {
    struct dpf *d;
    bool from_output;
};

static int copy_chunk(void *ctx, uint32_t i, const struct ota_chunk_entry *e, uint64_t src,
                      struct ota_detail *det)
{
    struct copy_ctx *cc = ctx;
    struct dpf *d = cc->d;
    const char *from = cc->from_output ? "new image (repeat)" : "current image";
    int rc;

    if (cc->from_output) {
        rc = ota_output_read(d->out, d->buf, e->length, src, det);
    } else {
        rc = ota_fs_pread_all(d->cfg->current_fd, d->buf, e->length, src) == 0 ? 0 : OTA_ERR_IO;
        if (rc != 0)
            ota_detail_set(det, "reading chunk %" PRIu32 " from the %s: %s", i, from,
                           strerror(errno));
    }
    if (rc != 0)
        return rc;
    rc = ota_chunk_index_check_chunk(e, d->buf, e->length, det);
    if (rc != 0) {
        chunk_where(det, i, e, from);
        return rc;
    }
    rc = put_chunk(d, i, e, d->buf, det);
    if (rc == 0)
        d->st->chunks_copied++;
    return rc;
}

/* The mirror ignores Range: the full image target through the TUF
 * fetcher, cut at the index's boundaries, each chunk checked. */
static int full_image(struct dpf *d, struct ota_detail *det)
{
    const struct ota_fetcher *f = d->cfg->fetcher;
    struct seq *s;
    int rc;

    if (f == NULL || d->cfg->image_target == NULL) {
        ota_detail_set(det, "the server ignored the Range request (200 instead of 206) and no "
                            "full image target was given");
        return OTA_ERR_INVALID_ARG;
    }
    s = malloc(sizeof(*s));
    if (s == NULL)
        return OTA_ERR_NOMEM;
    seq_init(s, d, &d->st->chunks_fetched, "full image target: bad");
    d->st->full_image = true;
    rc = f->fetch(f->ctx, OTA_FETCH_TARGET, d->cfg->image_target, d->cfg->image_length, seq_feed, s,
                  det);
    if (rc != 0 && s->det.msg[0] != '\0')
        ota_detail_set(det, "%s", s->det.msg);
    if (rc == 0)
        rc = seq_end(s, det);
    d->st->full_bytes = d->cfg->image_length;
    free(s);
    return rc;
}

static int chunk_path(struct dpf *d, struct ota_detail *det)
{
    struct ota_plan_opts po;
    struct ota_plan *plan = malloc(sizeof(*plan));
    struct ota_plan_range *ranges = malloc(OTA_PLAN_MAX_RANGES_PER_REQUEST * sizeof(*ranges));
    struct copy_ctx cc = {d, false};
    char url[URL_MAX];
    uint32_t n;
    int k;
    int rc = plan == NULL || ranges == NULL ? OTA_ERR_NOMEM : 0;

    ota_plan_opts_default(&po);
    if (d->cfg->ranges_per_request != 0)
        po.ranges_per_request = d->cfg->ranges_per_request;
    if (rc == 0 && d->have != NULL)
        rc = ota_plan_copy_old(NULL, d->idx, d->have, d->done, copy_chunk, &cc, det);
    if (rc == 0)
        rc = ota_plan_begin(plan, d->idx, d->done, &po, det);
    if (rc == 0) {
        d->st->range_bytes = plan->stats.range_bytes;
        d->st->ranges = plan->stats.ranges;
        k = snprintf(url, sizeof(url), "%s/chunks/%s.pack", d->cfg->base_url, d->hex);
        if (k < 0 || k >= (int)sizeof(url))
            rc = OTA_ERR_TOO_LARGE;
    }
    while (rc == 0 && !d->no_range && (rc = ota_plan_next(plan, ranges, &n, det)) == 1)
        rc = fetch_request(d, plan, ranges, n, url, det);
    if (rc == 0 && d->no_range)
        rc = full_image(d, det);
    cc.from_output = true;
    if (rc == 0)
        rc = ota_plan_copy_new(NULL, d->idx, d->done, copy_chunk, &cc, det);
    free(plan);
    free(ranges);
    return rc;
}

/* Step 4 with the index: every bit set, the whole verified, committed. */
static int finish(struct dpf *d, struct ota_detail *det)
{
    int rc;

    for (uint32_t i = 0; i < d->hdr->count; i++) {
        if (!bit(d->done, i)) {
            ota_detail_set(det, "chunk %" PRIu32 " was never written", i);
            return OTA_ERR_INVALID_ARG;
        }
    }
    rc = sync_state(d, det);
    if (rc == 0)
        rc = ota_output_verify(d->out, d->cfg->image_sha256, d->buf, d->buf_len, det);
    if (rc == OTA_ERR_HASH_MISMATCH) {
        /* Every chunk matched but the whole does not: the progress state
         * or the output was changed behind our back. Start over next
         * time. */
        if (ota_output_discard(d->out, NULL) != 0 || unlink(d->state_path) != 0) {
            /* nothing more to do */
        }
        return rc;
    }
    if (rc == 0)
        rc = ota_output_commit(d->out, det);
    if (rc == 0)
        rec_remove(d);
    if (rc == 0 && unlink(d->state_path) != 0 && errno != ENOENT) {
        ota_detail_set(det, "removing %s: %s", d->state_path, strerror(errno));
        rc = OTA_ERR_IO;
    }
    return rc;
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

/* The current image's SHA-256 alone (the delta's name), without the
 * index's chunker. */
static int hash_current(struct dpf *d, struct ota_detail *det)
{
    struct ota_sha256_ctx *h = NULL;
    uint8_t *buf = malloc(HASH_READ_BLOCK);
    uint64_t off = 0;
    int rc = buf == NULL ? OTA_ERR_NOMEM : ota_sha256_init(&h);

    while (rc == 0 && off < d->cur_len) {
        size_t n =
            d->cur_len - off < HASH_READ_BLOCK ? (size_t)(d->cur_len - off) : HASH_READ_BLOCK;

        if (ota_fs_pread_all(d->cfg->current_fd, buf, n, off) != 0) {
            ota_detail_set(det, "reading the current image at offset %" PRIu64 ": %s", off,
                           errno != 0 ? strerror(errno) : "it ends early");
            rc = OTA_ERR_IO;
        } else {
            rc = ota_sha256_update(h, buf, n);
        }
        off += n;
    }
    if (rc == 0)
        rc = ota_sha256_final(d->cur_sha, h);
    ota_sha256_ctx_free(h);
    free(buf);
    d->cur_hashed = rc == 0;
    return rc;
}

/* The chunks an earlier run wrote below off (a delta's resume point),
 * read back from the output and checked: each that matches is done. */
static int verify_prefix(struct dpf *d, uint64_t off, struct ota_detail *det)
{
    struct ota_chunk_cursor *c = malloc(sizeof(*c));
    struct ota_chunk_entry e;
    uint32_t i = 0;
    int rc;

    if (c == NULL)
        return OTA_ERR_NOMEM;
    ota_chunk_cursor_init(c, d->idx);
    while ((rc = ota_chunk_cursor_next(c, &e, NULL, det)) == 1 && e.offset + e.length <= off) {
        if (!bit(d->done, i)) {
            rc = ota_output_read(d->out, d->buf, e.length, e.offset, det);
            if (rc == 0)
                rc = ota_chunk_index_check_chunk(&e, d->buf, e.length, det);
            if (rc != 0)
                break;
            d->done[i / 8] |= (uint8_t)(1u << (i % 8));
            d->st->chunks_done++;
        }
        i++;
    }
    free(c);
    if (rc < 0 || rc == OTA_ERR_HASH_MISMATCH || rc == OTA_ERR_LENGTH_MISMATCH)
        return rc;
    return sync_state(d, det);
}

/* Keeps what a failed delta said, for the caller's warning. */
static void note_delta_error(struct dpf *d, int rc, const struct ota_detail *ddet)
{
    size_t dl = strnlen(ddet->msg, sizeof(d->st->delta_detail) - 1);

    d->st->delta_tried = true;
    d->st->delta_error = rc;
    memcpy(d->st->delta_detail, ddet->msg, dl);
    d->st->delta_detail[dl] = '\0';
}

static int lock_state(struct dpf *d, struct ota_detail *det)
{
    char lock[PATH_MAX];
    int n = snprintf(lock, sizeof(lock), "%s/%s.lock", d->cfg->state_dir, d->hex);

    if (n < 0 || n >= (int)sizeof(lock))
        return OTA_ERR_TOO_LARGE;
    if (ota_fs_mkdirs(d->cfg->state_dir, 0700, NULL) != 0) {
        ota_detail_set(det, "creating the state directory %s", d->cfg->state_dir);
        return OTA_ERR_IO;
    }
    n = ota_fs_lock(&d->lock_fd, lock, 0600);
    if (n == OTA_ERR_LOCKED)
        ota_detail_set(det, "%s: another fetch of this image is running", lock);
    else if (n != 0)
        ota_detail_set(det, "%s: %s", lock, strerror(errno));
    return n;
}

int ota_dp_fetch(struct ota_dp_fetch_stats *stats, const struct ota_dp_fetch_cfg *cfg,
                 struct ota_detail *det)
{
    struct ota_dp_fetch_stats local;
    struct delta_rec rec;
    struct dpf d;
    bool delta_done = false;
    bool progress;
    int n;
    int rc;

    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    memset(&d, 0, sizeof(d));
    d.state_fd = -1;
    d.lock_fd = -1;
    if (cfg == NULL || cfg->image_sha256 == NULL || cfg->base_url == NULL || cfg->out == NULL ||
        cfg->state_dir == NULL || cfg->ranges_per_request > OTA_DP_MAX_RANGES_PER_REQUEST)
        return OTA_ERR_INVALID_ARG;
    d.cfg = cfg;
    d.out = cfg->out;
    d.st = stats;
    ota_hex_encode(d.hex, cfg->image_sha256, OTA_SHA256_LEN);
    n = snprintf(d.state_path, sizeof(d.state_path), "%s/%s.dpstate", cfg->state_dir, d.hex);
    if (n < 0 || n >= (int)sizeof(d.state_path))
        return OTA_ERR_TOO_LARGE;
    n = snprintf(d.delta_path, sizeof(d.delta_path), "%s/%s.dpdelta", cfg->state_dir, d.hex);
    if (n < 0 || n >= (int)sizeof(d.delta_path))
        return OTA_ERR_TOO_LARGE;
    rc = lock_state(&d, det);
    if (rc == 0 && cfg->current_fd >= 0) {
        rc = current_length(&d.cur_len, cfg, det);
        if (rc != 0)
            ota_detail_prefix(det, "reading the current image");
    }
    if (rc == 0)
        rc = http_setup(&d, det);
    progress = rc == 0 && has_progress(&d);
    /* 1. A reference delta without the index: a small fix costs the delta
     * (unless an earlier run left a resume point: then the index checks
     * what it wrote, and only the rest of the delta is fetched). */
    if (rc == 0 && cfg->current_fd >= 0 && !cfg->no_delta && !progress) {
        struct ota_detail ddet;

        ddet.msg[0] = '\0';
        rc = hash_current(&d, det);
        if (rc == 0 && rec_read(&d, &rec)) {
            progress = true; /* resumed below, with the index */
        } else if (rc == 0) {
            rc = try_delta(&d, NULL, &ddet);
            if (rc == 0)
                rc = ota_output_commit(d.out, det);
            if (rc == 0) {
                stats->delta_tried = true;
                delta_done = true;
                if (unlink(d.state_path) != 0 && errno != ENOENT) {
                    /* a stale record of another output: harmless */
                }
            } else if (rc == OTA_ERR_SLOW_RETRIEVAL) {
                /* A mirror that trickles is dropped, not asked for more. */
                stats->delta_tried = true;
                ota_detail_set(det, "%s", ddet.msg);
            } else if (rc != OTA_ERR_NOT_FOUND && ddet.msg[0] != '\0') {
                note_delta_error(&d, rc, &ddet);
                rc = 0;
            } else if (rc == OTA_ERR_NOT_FOUND) {
                rc = 0;
            }
            /* else: an error of ours (reading the current image, writing
             * the output) stands */
        }
    }
    /* 2. The index, and a resumed delta that checks every chunk. */
    if (rc == 0 && !delta_done)
        rc = load_index(&d, det);
    if (rc == 0 && !delta_done && cfg->current_fd >= 0)
        rc = load_have(&d, det);
    if (rc == 0 && !delta_done && progress && cfg->current_fd >= 0 && !cfg->no_delta &&
        stats->chunks_done < d.hdr->count) {
        struct ota_detail ddet;
        bool resume = rec_read(&d, &rec);

        ddet.msg[0] = '\0';
        if (resume && verify_prefix(&d, rec.rp.out_offset, &ddet) != 0) {
            rec_remove(&d); /* what it vouched for is not there: the whole delta */
            resume = false;
        }
        rc = try_delta(&d, resume ? &rec : NULL, &ddet);
        if (rc == OTA_ERR_SLOW_RETRIEVAL) {
            stats->delta_tried = true;
            ota_detail_set(det, "%s", ddet.msg);
        } else if (rc != 0 && rc != OTA_ERR_NOT_FOUND) {
            note_delta_error(&d, rc, &ddet);
            rc = 0;
        } else {
            if (rc == 0)
                stats->delta_tried = true;
            rc = 0;
        }
    }
    /* 3. Chunks for whatever is still missing. */
    if (rc == 0 && !delta_done && !stats->delta_used)
        rc = chunk_path(&d, det);
    /* 4. */
    if (rc == 0 && !delta_done)
        rc = finish(&d, det);
    else if (!delta_done && d.state_fd >= 0 && sync_state(&d, NULL) != 0) {
        /* keep the first error */
    }
    if (d.easy != NULL)
        curl_easy_cleanup(d.easy);
    ota_plan_have_free(d.have);
    ota_pack_reader_free(d.reader);
    ota_chunk_index_file_free(d.idx);
    if (d.state_fd >= 0)
        close(d.state_fd);
    ota_fs_unlock(&d.lock_fd);
    if (d.buf != NULL)
        ota_wipe(d.buf, d.buf_len);
    free(d.buf);
    free(d.done);
    return rc;
}
