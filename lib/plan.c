/* Fetch planner (see otachain/plan.h).
 *
 * A "have" set is the list of chunks of the current image (offset, length,
 * SHA-256; first occurrences only) with a hash set over it
 * (lib/chunk_index_int.h).
 */
#include "otachain/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/fsutil.h"

#include "chunk_index_int.h"

#define HAVE_READ_BLOCK (1u << 20)

struct ota_plan_have {
    struct ota_chunk_entry *items; /* offset, length, sha256 used */
    uint32_t count;
    uint32_t alloc;
    struct ota_chunk_set set;
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
    free(have->items);
    ota_chunk_set_free(&have->set);
    free(have);
}

uint32_t ota_plan_have_count(const struct ota_plan_have *have)
{
    return have == NULL ? 0 : have->count;
}

/* Builds the set over have->items, dropping repeats (first kept). */
static int have_index(struct ota_plan_have *have)
{
    uint32_t n = have->count;
    uint32_t i;
    uint32_t kept = 0;
    int rc;

    rc = ota_chunk_set_init(&have->set, n);
    if (rc != 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (ota_chunk_set_find(&have->set, have->items, have->items[i].sha256,
                               have->items[i].length) != OTA_CHUNK_SET_NONE)
            continue;
        /* Compacting keeps the set valid: it only refers to items below
         * kept, and kept <= i. */
        if (kept != i)
            have->items[kept] = have->items[i];
        rc = ota_chunk_set_add(&have->set, have->items, kept);
        if (rc != 0)
            return rc;
        kept++;
    }
    have->count = kept;
    return 0;
}

int ota_plan_have_from_index(struct ota_plan_have **out, const struct ota_chunk_index *old,
                             struct ota_detail *det)
{
    struct ota_plan_have *have;
    uint32_t i;
    int rc;

    (void)det;
    if (out == NULL || old == NULL || (old->count > 0 && old->chunks == NULL))
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    have = calloc(1, sizeof(*have));
    if (have == NULL)
        return OTA_ERR_NOMEM;
    if (old->count > 0) {
        have->items = calloc(old->count, sizeof(*have->items));
        if (have->items == NULL) {
            free(have);
            return OTA_ERR_NOMEM;
        }
    }
    for (i = 0; i < old->count; i++) {
        memcpy(have->items[i].sha256, old->chunks[i].sha256, OTA_SHA256_LEN);
        have->items[i].offset = old->chunks[i].offset;
        have->items[i].length = old->chunks[i].length;
    }
    have->count = old->count;
    have->alloc = old->count;
    rc = have_index(have);
    if (rc != 0) {
        ota_plan_have_free(have);
        return rc;
    }
    *out = have;
    return 0;
}

static int have_push(struct ota_plan_have *have, const uint8_t *sha, uint64_t off, uint32_t len)
{
    struct ota_chunk_entry *it;

    if (have->count == have->alloc) {
        uint32_t n = have->alloc ? have->alloc * 2 : 1024;

        if (have->alloc >= OTA_PLAN_HAVE_MAX)
            return OTA_ERR_TOO_LARGE;
        if (n > OTA_PLAN_HAVE_MAX)
            n = OTA_PLAN_HAVE_MAX;
        it = realloc(have->items, (size_t)n * sizeof(*it));
        if (it == NULL)
            return OTA_ERR_NOMEM;
        have->items = it;
        have->alloc = n;
    }
    it = &have->items[have->count++];
    memset(it, 0, sizeof(*it));
    memcpy(it->sha256, sha, OTA_SHA256_LEN);
    it->offset = off;
    it->length = len;
    return 0;
}

/* Chunk-hash state while reading the current image. */
struct have_scan {
    struct ota_plan_have *have;
    struct ota_sha256_ctx *chunk_hash;
    uint64_t chunk_start;
};

static int scan_cut(struct have_scan *s, uint32_t len)
{
    uint8_t h[OTA_SHA256_LEN];
    int rc;

    rc = ota_sha256_final(h, s->chunk_hash);
    ota_sha256_ctx_free(s->chunk_hash);
    s->chunk_hash = NULL;
    if (rc != 0)
        return rc;
    rc = have_push(s->have, h, s->chunk_start, len);
    if (rc != 0)
        return rc;
    s->chunk_start += len;
    return ota_sha256_init(&s->chunk_hash);
}

int ota_plan_have_from_fd(struct ota_plan_have **out, uint8_t image_sha256[OTA_SHA256_LEN], int fd,
                          uint64_t length, const struct ota_chunker_params *p,
                          struct ota_detail *det)
{
    struct have_scan s = {NULL, NULL, 0};
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
    rc = have_index(s.have);
    if (rc != 0)
        goto out;
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

void ota_plan_free(struct ota_plan *plan)
{
    if (plan == NULL)
        return;
    free(plan->steps);
    free(plan->ranges);
    free(plan->requests);
    free(plan);
}

/* Counts the ranges that coalescing with this gap gives. */
static uint32_t count_ranges(const struct ota_plan *plan, const struct ota_chunk_index *idx,
                             uint64_t gap)
{
    uint32_t n = 0;
    uint64_t end = 0;
    uint32_t i;

    for (i = 0; i < plan->nsteps; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];

        if (plan->steps[i].kind != OTA_PLAN_FETCH)
            continue;
        if (n == 0 || e->pack_offset - end > gap)
            n++;
        end = e->pack_offset + e->zlength;
    }
    return n;
}

/* Fills plan->ranges (n of them, allocated by the caller) with this gap. */
static void fill_ranges(struct ota_plan *plan, const struct ota_chunk_index *idx, uint64_t gap)
{
    struct ota_plan_range *r = NULL;
    uint32_t n = 0;
    uint32_t i;

    for (i = 0; i < plan->nsteps; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];

        if (plan->steps[i].kind != OTA_PLAN_FETCH)
            continue;
        if (r == NULL || e->pack_offset - r->end > gap) {
            r = &plan->ranges[n++];
            r->start = e->pack_offset;
            r->first = i;
        }
        r->end = e->pack_offset + e->zlength;
        r->last = i;
        plan->steps[i].range = n - 1;
    }
}

int ota_plan_make(struct ota_plan **out, const struct ota_chunk_index *idx,
                  const struct ota_plan_have *have, const uint8_t *done,
                  const struct ota_plan_opts *opts, struct ota_detail *det)
{
    struct ota_plan_opts o;
    struct ota_plan *plan;
    struct ota_plan_stats *st;
    uint32_t i;
    uint64_t gap;
    int rc;

    if (out == NULL || idx == NULL || (idx->count > 0 && idx->chunks == NULL))
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (opts == NULL)
        ota_plan_opts_default(&o);
    else
        o = *opts;
    if (o.ranges_per_request == 0) {
        ota_detail_set(det, "ranges per request must be at least 1");
        return OTA_ERR_INVALID_ARG;
    }
    plan = calloc(1, sizeof(*plan));
    if (plan == NULL)
        return OTA_ERR_NOMEM;
    rc = OTA_ERR_NOMEM;
    plan->nsteps = idx->count;
    if (idx->count > 0) {
        plan->steps = calloc(idx->count, sizeof(*plan->steps));
        if (plan->steps == NULL)
            goto fail;
    }
    st = &plan->stats;
    st->chunks = idx->count;
    st->image_bytes = idx->image_length;
    for (i = 0; i < idx->count; i++) {
        const struct ota_chunk_entry *e = &idx->chunks[i];
        struct ota_plan_step *s = &plan->steps[i];
        uint32_t k = OTA_CHUNK_SET_NONE;

        s->range = UINT32_MAX;
        if (e->first > i) {
            ota_detail_set(det, "chunk %" PRIu32 " repeats a later chunk", i);
            rc = OTA_ERR_INVALID_ARG; /* not from ota_chunk_index_parse */
            goto fail;
        }
        if (have != NULL)
            k = ota_chunk_set_find(&have->set, have->items, e->sha256, e->length);
        if (done != NULL && (done[i / 8] >> (i % 8) & 1) != 0) {
            s->kind = OTA_PLAN_DONE;
            st->done_chunks++;
            st->done_bytes += e->length;
        } else if (k != OTA_CHUNK_SET_NONE) {
            s->kind = OTA_PLAN_COPY_OLD;
            s->src = have->items[k].offset;
            st->copy_old_chunks++;
            st->copy_old_bytes += e->length;
        } else if (e->first != i) {
            /* The first occurrence is earlier, so it is in the output
             * before this one is written, whatever its own step. */
            s->kind = OTA_PLAN_COPY_NEW;
            s->src = idx->chunks[e->first].offset;
            st->copy_new_chunks++;
            st->copy_new_bytes += e->length;
        } else {
            s->kind = OTA_PLAN_FETCH;
            s->src = e->pack_offset;
            st->fetch_chunks++;
            st->fetch_bytes += e->length;
            st->fetch_zbytes += e->zlength;
        }
    }
    /* Coalesce; widen the gap until the requests fit. */
    gap = o.gap;
    for (;;) {
        uint32_t n = count_ranges(plan, idx, gap);
        uint64_t reqs = ((uint64_t)n + o.ranges_per_request - 1) / o.ranges_per_request;

        if (o.max_requests == 0 || reqs <= o.max_requests || gap >= idx->pack_length) {
            plan->nranges = n;
            break;
        }
        gap = gap == 0 ? 4096 : gap * 2;
    }
    st->gap = gap;
    if (plan->nranges > 0) {
        uint32_t nreq = (plan->nranges + o.ranges_per_request - 1) / o.ranges_per_request;

        rc = OTA_ERR_NOMEM;
        plan->ranges = calloc(plan->nranges, sizeof(*plan->ranges));
        plan->requests = calloc(nreq, sizeof(*plan->requests));
        if (plan->ranges == NULL || plan->requests == NULL)
            goto fail;
        fill_ranges(plan, idx, gap);
        for (i = 0; i < plan->nranges; i++)
            st->range_bytes += plan->ranges[i].end - plan->ranges[i].start;
        for (i = 0; i < nreq; i++) {
            plan->requests[i].first_range = i * o.ranges_per_request;
            plan->requests[i].nranges = plan->nranges - i * o.ranges_per_request;
            if (plan->requests[i].nranges > o.ranges_per_request)
                plan->requests[i].nranges = o.ranges_per_request;
        }
        plan->nrequests = nreq;
    }
    st->ranges = plan->nranges;
    st->requests = plan->nrequests;
    *out = plan;
    return 0;
fail:
    ota_plan_free(plan);
    return rc;
}
