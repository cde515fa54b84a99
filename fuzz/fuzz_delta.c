/* libFuzzer harness for the reference delta applier.
 *
 * The input is a delta applied to a fixed 64 KiB from-image (random bytes,
 * a zero run, text), fed in pieces whose sizes come from the input's own
 * bytes. Properties: the applier reads only inside the from-image; no
 * output before the header has been accepted; the output never exceeds
 * the header's to_length; success means exactly to_length bytes. Output is
 * cut off (sink error) after 8 MiB so that tiny inputs expanding to huge
 * outputs do not stall the fuzzer. Any violation aborts.
 *
 * Seeds (fuzz/corpus/delta/): deltas the maker produced from this
 * from-image; rebuild them with
 *   cc -DFUZZ_DELTA_SEEDS -Iinclude fuzz/fuzz_delta.c build/libotachain_sign.a \
 *      build/libotachain_verify.a -ldivsufsort -lzstd -lcrypto -lcurl \
 *      -o /tmp/seeds && \
 *   /tmp/seeds fuzz/corpus/delta
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/delta.h"

#define OLD_LEN (64 * 1024)
#define OUT_CUT ((uint64_t)8 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t old_img[OLD_LEN];
static int old_ready;

static void init_old(void)
{
    uint64_t s = 0x0ddba11;
    size_t i;

    for (i = 0; i < 32768; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        old_img[i] = (uint8_t)(s >> 56);
    }
    /* [32K, 48K) zeros */
    for (i = 49152; i < OLD_LEN; i++)
        old_img[i] = (uint8_t) "firmware text, version 1.2.3\n"[i % 29];
    old_ready = 1;
}

struct run {
    struct ota_delta_apply *a;
    uint64_t out;
    uint64_t to_length;
};

static int fz_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    if (off > OLD_LEN || len > OLD_LEN - off || len == 0)
        abort(); /* outside the from-image */
    memcpy(buf, old_img + off, len);
    return 0;
}

static int fz_sink(void *ctx, const void *data, size_t len)
{
    struct run *r = ctx;
    struct ota_delta_info info;

    (void)data;
    if (ota_delta_apply_info(&info, r->a) != 0)
        abort(); /* output before the header was accepted */
    if (len == 0 || len > info.to_length - r->out)
        abort(); /* beyond the declared length */
    r->out += len;
    r->to_length = info.to_length;
    return r->out > OUT_CUT ? OTA_ERR_TOO_LARGE : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_delta_apply_cfg cfg;
    struct run r;
    size_t off = 0;
    int rc = 0;

    if (!old_ready)
        init_old();
    memset(&r, 0, sizeof(r));
    memset(&cfg, 0, sizeof(cfg));
    cfg.read_old = fz_read;
    cfg.old_length = OLD_LEN;
    cfg.sink = fz_sink;
    cfg.sink_ctx = &r;
    if (ota_delta_apply_new(&r.a, &cfg) != 0)
        abort();
    while (off < size && rc == 0) {
        size_t k = (size_t)(data[off] % 97) + 1;

        if (k > size - off)
            k = size - off;
        rc = ota_delta_apply_feed(r.a, data + off, k, NULL);
        off += k;
    }
    if (rc == 0)
        rc = ota_delta_apply_finish(r.a, NULL);
    if (rc == 0 && r.out != r.to_length)
        abort(); /* success must mean exactly to_length bytes */
    if (ota_delta_apply_mem(r.a) > ota_delta_apply_mem_max())
        abort();
    ota_delta_apply_free(r.a);
    return 0;
}

#ifdef FUZZ_DELTA_SEEDS
#include "otachain/buf.h"
#include "otachain/delta_make.h"

static void seed(const char *dir, const char *name, const uint8_t *img, size_t n,
                 const struct ota_delta_make_opts *opts)
{
    struct ota_buf d;
    char path[512];
    FILE *f;

    ota_buf_init(&d, 1 << 24);
    if (ota_delta_make(ota_sink_buf, &d, NULL, old_img, OLD_LEN, img, n, opts, NULL) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(d.data, 1, d.len, f) != d.len || fclose(f) != 0)
        abort();
    ota_buf_free(&d);
}

int main(int argc, char **argv)
{
    static uint8_t img[OLD_LEN + 4096];
    struct ota_delta_make_opts small_frames;
    size_t i;

    if (argc != 2)
        return 2;
    init_old();
    memset(&small_frames, 0, sizeof(small_frames));
    small_frames.frame_size = 512;
    small_frames.copy_run = 32;
    seed(argv[1], "identical", old_img, OLD_LEN, NULL);
    seed(argv[1], "empty", img, 0, NULL);
    memcpy(img, "hello", 5);
    seed(argv[1], "tiny", img, 5, NULL);
    /* edits, an insert, a deletion, shifted "pointers" */
    memcpy(img, old_img, OLD_LEN);
    for (i = 0; i < OLD_LEN; i += 501)
        img[i] ^= 0x40;
    seed(argv[1], "edits", img, OLD_LEN, NULL);
    seed(argv[1], "edits-frames", img, OLD_LEN, &small_frames);
    memcpy(img, old_img + 1000, 20000);
    memcpy(img + 20000, "inserted bytes, new in version 2\n", 33);
    memcpy(img + 20033, old_img + 30000, OLD_LEN - 30000);
    seed(argv[1], "insert-delete", img, 20033 + OLD_LEN - 30000, NULL);
    for (i = 0; i + 4 <= 16384; i += 16) {
        uint32_t v;

        memcpy(&v, old_img + i, 4);
        v += 24;
        memcpy(img + 24 + i, &v, 4);
        memcpy(img + 24 + i + 4, old_img + i + 4, 12);
    }
    memset(img, 0, 24);
    seed(argv[1], "pointers", img, 16384 + 24, NULL);
    return 0;
}
#endif
