/* Shared fixtures of the data-plane unit tests (chunker, chunk_index,
 * chunk_build, pack, plan, audit): deterministic pseudo-random images,
 * an in-memory index + pack builder, anonymous temporary files. Header
 * only (static inline), included by the test files. */
#ifndef OTACHAIN_TEST_CHUNK_FIXTURE_H
#define OTACHAIN_TEST_CHUNK_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otachain/buf.h"
#include "otachain/chunk_build.h"

/* splitmix64: a fixed, portable generator, so images are the same on
 * every machine. */
static inline uint64_t fx_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* n pseudo-random bytes from seed. */
static inline void fx_random(uint8_t *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    uint64_t r = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (i % 8 == 0)
            r = fx_next(&s);
        buf[i] = (uint8_t)r;
        r >>= 8;
    }
}

/* n bytes that compress somewhat, like firmware: words from a small
 * vocabulary, runs of zeros and random stretches. */
static inline void fx_firmware(uint8_t *buf, size_t n, uint64_t seed)
{
    static const char *const words[] = {"ldr r0, [sp]", "bl memcpy", "libc.so.6", "GLIBC_2.34",
                                        "mov x1, x2",   "/usr/lib/", "ERROR: ",   "0123456789"};
    uint64_t s = seed;
    size_t i = 0;

    while (i < n) {
        uint64_t r = fx_next(&s);
        size_t k = (size_t)(r % 16);
        size_t len;
        size_t j;

        if (k < 12) {
            const char *w = words[(r >> 8) % 8];

            len = strlen(w);
            for (j = 0; j < len && i < n; j++)
                buf[i++] = (uint8_t)w[j];
        } else if (k < 14) {
            len = (size_t)((r >> 16) % 300);
            for (j = 0; j < len && i < n; j++)
                buf[i++] = 0;
        } else {
            len = (size_t)((r >> 16) % 200);
            for (j = 0; j < len && i < n; j++)
                buf[i++] = (uint8_t)(fx_next(&s) >> 40);
        }
    }
}

static inline int fx_pack_sink(void *ctx, const struct ota_chunk_entry *e, const uint8_t *frame,
                               size_t frame_len)
{
    (void)e;
    return ota_buf_append((struct ota_buf *)ctx, frame, frame_len);
}

/* Builds index and pack of img in memory (both buffers initialised here;
 * free them with ota_buf_free). Feeds the image in pieces of `step`
 * bytes (0 = all at once). Returns the builder's result. */
static inline int fx_build(struct ota_buf *index, struct ota_buf *pack, const uint8_t *img,
                           size_t n, const struct ota_chunk_build_opts *opts, size_t step)
{
    struct ota_chunk_build_opts def;
    struct ota_chunk_build *b = NULL;
    size_t off = 0;
    int rc;

    if (opts == NULL) {
        ota_chunk_build_opts_default(&def);
        def.zstd_level = 3; /* fast enough under ASan */
        opts = &def;
    }
    ota_buf_init(index, SIZE_MAX);
    ota_buf_init(pack, SIZE_MAX);
    rc = ota_chunk_build_new(&b, opts, fx_pack_sink, pack, NULL);
    if (rc != 0)
        return rc;
    while (rc == 0 && off < n) {
        size_t k = step == 0 || step > n - off ? n - off : step;

        rc = ota_chunk_build_update(b, img + off, k, NULL);
        off += k;
    }
    if (rc == 0)
        rc = ota_chunk_build_finish(index, b, NULL);
    ota_chunk_build_free(b);
    return rc;
}

/* An unlinked temporary file holding n bytes of data; -1 on failure. */
static inline int fx_temp_fd(const uint8_t *data, size_t n)
{
    const char *base = getenv("TMPDIR");
    char path[4096];
    int fd;
    size_t off = 0;

    snprintf(path, sizeof(path), "%s/ota-chunk-test-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);

        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return fd;
}

#endif
