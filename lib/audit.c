/* Installed-image audit (see otachain/audit.h). */
#include "otachain/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "otachain/crypto.h"
#include "otachain/fsutil.h"

/* A uniform integer in [0, n) by rejection sampling on 32-bit draws. */
static int pick(uint32_t *out, uint32_t n, ota_audit_random_fn rnd, void *ctx)
{
    /* Largest multiple of n that fits in 2^32, as a bound on accepted draws. */
    const uint64_t lim = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % n);
    uint8_t b[4];
    int rc;

    for (;;) {
        uint32_t v;

        rc = rnd(ctx, b, sizeof(b));
        if (rc != 0)
            return rc;
        v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (v < lim) {
            *out = v % n;
            return 0;
        }
    }
}

static int read_at(int fd, uint8_t *buf, uint32_t len, uint64_t off, struct ota_detail *det)
{
    uint32_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));

        if (r < 0) {
            if (errno == EINTR)
                continue;
            ota_detail_set(det, "reading the image at offset %" PRIu64, off + got);
            return ota_fs_errno(errno);
        }
        if (r == 0) {
            ota_detail_set(det, "image ends at offset %" PRIu64 ", inside a chunk", off + got);
            return OTA_ERR_TRUNCATED;
        }
        got += (uint32_t)r;
    }
    return 0;
}

int ota_audit_run(struct ota_audit_report *rep, int fd, const struct ota_chunk_index *idx,
                  uint32_t n, ota_audit_random_fn rnd, void *rnd_ctx, struct ota_detail *det)
{
    uint8_t *buf;
    uint32_t k;
    int rc = 0;

    if (rep == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(rep, 0, sizeof(*rep));
    if (fd < 0 || idx == NULL || (idx->count > 0 && idx->chunks == NULL))
        return OTA_ERR_INVALID_ARG;
    if (n >= idx->count)
        n = idx->count;
    if (n == 0)
        return 0;
    if (n < idx->count && rnd == NULL)
        return OTA_ERR_INVALID_ARG;
    buf = malloc(idx->chunker.max_size);
    if (buf == NULL)
        return OTA_ERR_NOMEM;
    for (k = 0; k < n; k++) {
        uint32_t i = k;
        const struct ota_chunk_entry *e;

        if (n < idx->count) {
            rc = pick(&i, idx->count, rnd, rnd_ctx);
            if (rc != 0)
                break;
        }
        e = &idx->chunks[i];
        rc = read_at(fd, buf, e->length, e->offset, det);
        if (rc != 0)
            break;
        rep->bytes += e->length;
        rc = ota_chunk_index_check_chunk(e, buf, e->length, det);
        if (rc != 0) {
            if (rc == OTA_ERR_HASH_MISMATCH) {
                rep->bad_chunk = i;
                rep->bad_offset = e->offset;
                ota_detail_set(det,
                               "chunk %" PRIu32 " at offset %" PRIu64 " (%" PRIu32
                               " bytes) differs from the index",
                               i, e->offset, e->length);
            }
            break;
        }
        rep->checked++;
    }
    ota_wipe(buf, idx->chunker.max_size);
    free(buf);
    return rc;
}

int ota_audit_random_system(void *ctx, void *buf, size_t len)
{
    uint8_t *p = buf;

    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return OTA_ERR_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
