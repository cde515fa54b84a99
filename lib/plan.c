/* Fetch planner (see otachain/plan.h).
 *
 * A "have" set is a chunk table (lib/chunk_table_int.h) of the current
 * image's chunks (first occurrences only), in an unlinked temporary file.
 * Ranges are coalesced in one pass over the index; choosing the gap takes
 * a counting pass per doubling.
 */
#include "otachain/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#include "chunk_table_int.h"

#define HAVE_READ_BLOCK (256u * 1024)

struct ota_plan_have {
    struct ota_chunk_table t;
};

void ota_plan_opts_default(struct ota_plan_opts *opts)
{
    opts->gap = OTA_PLAN_GAP_DEFAULT;
    opts->ranges_per_request = OTA_PLAN_RANGES_PER_REQ_DEFAULT;
    opts->max_requests = OTA_PLAN_MAX_REQUESTS_DEFAULT;
}

void ota_plan_have_free(struct ota_plan_have *have)
{
    if (have == NULL)
        return;
    ota_chunk_table_free(&have->t);
    free(have);
}

uint32_t ota_plan_have_count(const struct ota_plan_have *have)
{
    return have == NULL ? 0 : (uint32_t)have->t.n;
}

int ota_plan_have_find(const struct ota_plan_have *have, const struct ota_chunk_entry *e,
                       uint64_t *offset)
{
    struct ota_chunk_rec r;
    int rc;

    if (have == NULL)
        return 0;
    rc = ota_chunk_table_find(&have->t, e->sha256, e->length, &r);
    if (rc == 1)
        *offset = r.offset;
    return rc;
}

/* Chunk-hash state while reading the current image. */
struct have_scan {
    struct ota_plan_have *have;
    struct ota_sha256_ctx *chunk_hash;
    uint64_t chunk_start;
    struct ota_detail *det;
};

static int scan_cut(struct have_scan *s, uint32_t len)
{
    struct ota_chunk_rec r;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = ota_sha256_final(r.sha256, s->chunk_hash);
    ota_sha256_ctx_free(s->chunk_hash);
    s->chunk_hash = NULL;
    if (rc != 0)
        return rc;
    r.length = len;
    r.offset = s->chunk_start;
    rc = ota_chunk_table_find(&s->have->t, r.sha256, len, &r);
    if (rc == 0) { /* first occurrences only */
        if (s->have->t.n >= OTA_PLAN_HAVE_MAX)
            return OTA_ERR_TOO_LARGE;
        r.offset = s->chunk_start;
        r.length = len;
        rc = ota_chunk_table_add(&s->have->t, &r, s->det);
    }
    if (rc < 0)
        return rc;
    s->chunk_start += len;
    return ota_sha256_init(&s->chunk_hash);
}

int ota_plan_have_from_fd(struct ota_plan_have **out, uint8_t image_sha256[OTA_SHA256_LEN], int fd,
                          uint64_t length, const struct ota_chunker_params *p, const char *tmpdir,
                          struct ota_detail *det)
{
    struct have_scan s = {NULL, NULL, 0, det};
    struct ota_sha256_ctx *whole = NULL;
    struct ota_chunker ch;
    uint8_t *buf = NULL;
    uint64_t pos = 0;
    uint32_t last;
    int rc;

    if (out == NULL || fd < 0 || p == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    rc = ota_chunker_init(&ch, p, det);
    if (rc != 0)
        return rc;
    rc = OTA_ERR_NOMEM;
    s.have = calloc(1, sizeof(*s.have));
    buf = malloc(HAVE_READ_BLOCK);
    if (s.have == NULL || buf == NULL)
        goto out;
    s.have->t.fd = -1;
    /* Sized for the average chunk of a known length; the table grows. */
    rc = ota_chunk_table_init(&s.have->t, length == UINT64_MAX ? 1024 : length / p->avg_size + 1,
                              tmpdir, det);
    if (rc == 0)
        rc = ota_sha256_init(&s.chunk_hash);
    if (rc == 0 && image_sha256 != NULL)
        rc = ota_sha256_init(&whole);
    if (rc != 0)
        goto out;
    while (pos < length) {
        size_t want = length - pos < HAVE_READ_BLOCK ? (size_t)(length - pos) : HAVE_READ_BLOCK;
        const uint8_t *q = buf;
        ssize_t r;
        size_t left;

        if (pos >= OTA_CHUNK_INDEX_MAX_IMAGE) {
            ota_detail_set(det, "current image is longer than 2^40 bytes");
            rc = OTA_ERR_TOO_LARGE;
            goto out;
        }
        r = pread(fd, buf, want, (off_t)pos);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = ota_fs_errno(errno);
            ota_detail_set(det, "reading the current image at offset %" PRIu64, pos);
            goto out;
        }
        if (r == 0) {
            if (length == UINT64_MAX)
                break;
            ota_detail_set(det, "current image ends at %" PRIu64 " of %" PRIu64 " bytes", pos,
                           length);
            rc = OTA_ERR_TRUNCATED;
            goto out;
        }
        if (whole != NULL) {
            rc = ota_sha256_update(whole, buf, (size_t)r);
            if (rc != 0)
                goto out;
        }
        pos += (uint64_t)r;
        for (left = (size_t)r; left > 0;) {
            uint32_t cut = 0;
            size_t n = ota_chunker_scan(&ch, &cut, q, left);

            rc = ota_sha256_update(s.chunk_hash, q, n);
            if (rc == 0 && cut != 0)
                rc = scan_cut(&s, cut);
            if (rc != 0) {
                if (rc == OTA_ERR_TOO_LARGE)
                    ota_detail_set(det, "current image has more than 2^24 chunks");
                goto out;
            }
            q += n;
            left -= n;
        }
    }
    last = ota_chunker_end(&ch);
    if (last != 0) {
        rc = scan_cut(&s, last);
        if (rc != 0)
            goto out;
    }
    if (whole != NULL) {
        rc = ota_sha256_final(image_sha256, whole);
        if (rc != 0)
            goto out;
    }
    *out = s.have;
    s.have = NULL;
out:
    if (rc != 0 && image_sha256 != NULL)
        ota_wipe(image_sha256, OTA_SHA256_LEN);
    ota_sha256_ctx_free(whole);
    ota_sha256_ctx_free(s.chunk_hash);
    ota_plan_have_free(s.have);
    free(buf);
    return rc;
}

int ota_plan_copy_old(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                      const struct ota_plan_have *have, const uint8_t *done, ota_plan_copy_fn fn,
                      void *ctx, struct ota_detail *det)
{
    struct ota_chunk_cursor *c = malloc(sizeof(*c));
    struct ota_chunk_entry e;
    uint32_t i = 0;
    int rc;

    if (c == NULL)
        return OTA_ERR_NOMEM;
    ota_chunk_cursor_init(c, idx);
    while ((rc = ota_chunk_cursor_next(c, &e, NULL, det)) == 1) {
        uint64_t src = 0;

        if (ota_plan_done(done, i)) {
            if (st != NULL) {
                st->done_chunks++;
                st->done_bytes += e.length;
            }
        } else if ((rc = ota_plan_have_find(have, &e, &src)) != 0) {
            if (rc < 0)
                break;
            if (st != NULL) {
                st->copy_old_chunks++;
                st->copy_old_bytes += e.length;
            }
            rc = fn(ctx, i, &e, src, det);
            if (rc != 0)
                break;
        }
        i++;
    }
    free(c);
    return rc < 0 ? rc : 0;
}

int ota_plan_copy_new(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                      const uint8_t *done, ota_plan_copy_fn fn, void *ctx, struct ota_detail *det)
{
    struct ota_chunk_cursor *c = malloc(sizeof(*c));
    struct ota_chunk_entry e;
    uint64_t first_off = 0;
    uint32_t i = 0;
    int rc;

    if (c == NULL)
        return OTA_ERR_NOMEM;
    ota_chunk_cursor_init(c, idx);
    while ((rc = ota_chunk_cursor_next(c, &e, &first_off, det)) == 1) {
        if (e.first != i && !ota_plan_done(done, i)) {
            if (st != NULL) {
                st->copy_new_chunks++;
                st->copy_new_bytes += e.length;
            }
            rc = fn(ctx, i, &e, first_off, det);
            if (rc != 0)
                break;
        }
        i++;
    }
    free(c);
    return rc < 0 ? rc : 0;
}

/* The next FETCH chunk from the cursor: 1 with (i, e), 0 at the end. */
static int next_fetch(struct ota_plan *p, uint32_t *i, struct ota_chunk_entry *e,
                      struct ota_detail *det)
{
    int rc;

    for (;;) {
        uint32_t k = p->cur.next;

        rc = ota_chunk_cursor_next(&p->cur, e, NULL, det);
        if (rc != 1)
            return rc;
        if (ota_plan_fetches(p, k, e)) {
            *i = k;
            return 1;
        }
    }
}

/* The next coalesced range: 1, or 0 at the end. */
static int next_range(struct ota_plan *p, uint64_t gap, struct ota_plan_range *r,
                      struct ota_detail *det)
{
    struct ota_chunk_entry e;
    uint32_t i;
    int rc;

    if (!p->held) {
        rc = next_fetch(p, &i, &e, det);
        if (rc != 1)
            return rc;
        p->next.start = e.pack_offset;
        p->next.end = e.pack_offset + e.zlength;
        p->next.first = p->next.last = i;
    }
    p->held = false;
    *r = p->next;
    while ((rc = next_fetch(p, &i, &e, det)) == 1) {
        if (e.pack_offset - r->end > gap) { /* frames of first occurrences go up */
            p->next.start = e.pack_offset;
            p->next.end = e.pack_offset + e.zlength;
            p->next.first = p->next.last = i;
            p->held = true;
            return 1;
        }
        r->end = e.pack_offset + e.zlength;
        r->last = i;
    }
    return rc < 0 ? rc : 1;
}

static void rewind_plan(struct ota_plan *p)
{
    ota_chunk_cursor_init(&p->cur, p->idx);
    p->held = false;
}

int ota_plan_begin(struct ota_plan *p, const struct ota_chunk_index_file *idx, const uint8_t *done,
                   const struct ota_plan_opts *opts, struct ota_detail *det)
{
    const struct ota_chunk_index *h = ota_chunk_index_file_header(idx);
    uint64_t gap;
    int rc;

    memset(p, 0, sizeof(*p));
    p->idx = idx;
    p->done = done;
    if (opts == NULL)
        ota_plan_opts_default(&p->opts);
    else
        p->opts = *opts;
    if (p->opts.ranges_per_request == 0 ||
        p->opts.ranges_per_request > OTA_PLAN_MAX_RANGES_PER_REQUEST) {
        ota_detail_set(det, "ranges per request must be 1 to %u", OTA_PLAN_MAX_RANGES_PER_REQUEST);
        return OTA_ERR_INVALID_ARG;
    }
    p->stats.chunks = h->count;
    p->stats.image_bytes = h->image_length;
    /* Coalesce; widen the gap until the requests fit. */
    for (gap = p->opts.gap;; gap = gap == 0 ? 4096 : gap * 2) {
        struct ota_plan_range r;
        uint64_t reqs;

        p->stats.ranges = 0;
        p->stats.range_bytes = 0;
        rewind_plan(p);
        while ((rc = next_range(p, gap, &r, det)) == 1) {
            p->stats.ranges++;
            p->stats.range_bytes += r.end - r.start;
        }
        if (rc != 0)
            return rc;
        reqs = ((uint64_t)p->stats.ranges + p->opts.ranges_per_request - 1) /
               p->opts.ranges_per_request;
        if (p->opts.max_requests == 0 || reqs <= p->opts.max_requests || gap >= h->pack_length) {
            p->stats.requests = (uint32_t)reqs;
            break;
        }
    }
    p->stats.gap = gap;
    /* What is fetched, counted once. */
    rewind_plan(p);
    for (;;) {
        struct ota_chunk_entry e;
        uint32_t i;

        rc = next_fetch(p, &i, &e, det);
        if (rc != 1)
            break;
        p->stats.fetch_chunks++;
        p->stats.fetch_bytes += e.length;
        p->stats.fetch_zbytes += e.zlength;
    }
    rewind_plan(p);
    return rc;
}

int ota_plan_next(struct ota_plan *p, struct ota_plan_range *ranges, uint32_t *n,
                  struct ota_detail *det)
{
    int rc = 1;

    *n = 0;
    while (*n < p->opts.ranges_per_request &&
           (rc = next_range(p, p->stats.gap, &ranges[*n], det)) == 1)
        (*n)++;
    if (rc < 0)
        return rc;
    return *n > 0 ? 1 : 0;
}

static int mark(void *ctx, uint32_t i, const struct ota_chunk_entry *e, uint64_t src,
                struct ota_detail *det)
{
    uint8_t *done = ctx;

    (void)e;
    (void)src;
    (void)det;
    done[i / 8] |= (uint8_t)(1u << (i % 8));
    return 0;
}

int ota_plan_estimate(struct ota_plan_stats *st, const struct ota_chunk_index_file *idx,
                      const struct ota_plan_have *have, const uint8_t *done,
                      const struct ota_plan_opts *opts, struct ota_detail *det)
{
    const struct ota_chunk_index *h = ota_chunk_index_file_header(idx);
    size_t len = ((size_t)h->count + 7) / 8;
    uint8_t *work = calloc(len + 1, 1);
    struct ota_plan_stats copy;
    struct ota_plan *p = malloc(sizeof(*p));
    int rc;

    memset(st, 0, sizeof(*st));
    memset(&copy, 0, sizeof(copy));
    if (work == NULL || p == NULL) {
        free(work);
        free(p);
        return OTA_ERR_NOMEM;
    }
    if (done != NULL)
        memcpy(work, done, len);
    rc = ota_plan_copy_old(&copy, idx, have, work, mark, work, det);
    if (rc == 0)
        rc = ota_plan_begin(p, idx, work, opts, det);
    if (rc == 0) {
        *st = p->stats;
        st->done_chunks = copy.done_chunks;
        st->done_bytes = copy.done_bytes;
        st->copy_old_chunks = copy.copy_old_chunks;
        st->copy_old_bytes = copy.copy_old_bytes;
        /* Step 3 copies what is neither done, copied nor fetched. */
        st->copy_new_chunks = h->count - st->done_chunks - st->copy_old_chunks - st->fetch_chunks;
        st->copy_new_bytes =
            h->image_length - st->done_bytes - st->copy_old_bytes - st->fetch_bytes;
    }
    free(work);
    free(p);
    return rc;
}
