/* Installed-image audit (verify side): re-hash chunks of an image in place
 * and compare them with its chunk index, the "random sector check" of the
 * blockchain OTA design (DESIGN.md §6). The index is a hash tree over the
 * image (docs/formats/chunk-index.md): its own SHA-256 is pinned by signed
 * metadata, its entries cover the image exactly.
 */
#ifndef OTACHAIN_AUDIT_H
#define OTACHAIN_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/chunk_index.h"
#include "otachain/err.h"

/* Fills buf with len random bytes (e.g. getrandom(2)); 0 or an ota_err. */
typedef int (*ota_audit_random_fn)(void *ctx, void *buf, size_t len);

/* The usual rnd: the kernel's random bytes (getrandom(2), retried on
 * EINTR); ctx is unused. OTA_ERR_IO when the kernel refuses. */
int ota_audit_random_system(void *ctx, void *buf, size_t len);

struct ota_audit_report {
    uint32_t checked;    /* chunks hashed and found good */
    uint64_t bytes;      /* bytes read */
    uint32_t bad_chunk;  /* on OTA_ERR_HASH_MISMATCH: the chunk's index */
    uint64_t bad_offset; /* and its offset in the image */
};

/* Checks n chunks of the image readable from fd (pread; the fd offset is
 * not moved; the file may be longer than the image, e.g. a slot). If n >=
 * idx->count every chunk is checked, in order, and rnd is not used;
 * otherwise n chunks are drawn uniformly at random with replacement using
 * rnd (required then). Stops at the first bad chunk: OTA_ERR_HASH_MISMATCH
 * with rep->bad_chunk/bad_offset set. OTA_ERR_TRUNCATED if the file ends
 * inside a chunk; OTA_ERR_IO, OTA_ERR_NOMEM, or rnd's error. rep is
 * always filled (zeroed first). */
OTA_WUR int ota_audit_run(struct ota_audit_report *rep, int fd, const struct ota_chunk_index *idx,
                          uint32_t n, ota_audit_random_fn rnd, void *rnd_ctx,
                          struct ota_detail *det);

#endif
