/* libFuzzer harness for the pack reader (one chunk's zstd frame).
 *
 * The input is a frame. The chunk length is the frame's declared content
 * size if it has one within the 1 MiB cap, else 4096 bytes; the chunk's
 * expected SHA-256 is that of what zstd's one-shot decoder makes of the
 * frame (so valid frames travel the whole path to a verified chunk). The
 * reader is fed the frame in pieces whose sizes come from the frame's
 * own bytes. Properties: success only if the one-shot decoder agrees on
 * exactly those bytes; on failure the output buffer is all zeros; memory
 * stays bounded (libFuzzer's RSS limit). Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "otachain/crypto.h"
#include "otachain/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ota_pack_reader *reader;
static uint8_t *ref;
static uint8_t *out;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_chunk_entry e;
    unsigned long long cs;
    size_t refn;
    size_t off = 0;
    int ref_ok;
    int rc = 0;

    if (reader == NULL) {
        if (ota_pack_reader_new(&reader) != 0)
            abort();
        ref = malloc(OTA_CHUNK_LEN_CAP);
        out = malloc(OTA_CHUNK_LEN_CAP);
        if (ref == NULL || out == NULL)
            abort();
    }
    if (size == 0 || size > ota_chunk_index_zbound(OTA_CHUNK_LEN_CAP))
        return 0;
    memset(&e, 0, sizeof(e));
    cs = ZSTD_getFrameContentSize(data, size);
    e.length = cs >= 1 && cs <= OTA_CHUNK_LEN_CAP ? (uint32_t)cs : 4096;
    e.zlength = (uint32_t)size;
    refn = ZSTD_decompress(ref, e.length, data, size);
    ref_ok = !ZSTD_isError(refn) && refn == e.length;
    if (ota_sha256(e.sha256, ref, ref_ok ? refn : 0) != 0)
        abort();
    memset(out, 0xee, e.length);
    if (ota_pack_reader_begin(reader, out, OTA_CHUNK_LEN_CAP, &e) != 0)
        abort();
    while (off < size && rc == 0) {
        size_t k = (size_t)(data[off] % 97) + 1;

        if (k > size - off)
            k = size - off;
        rc = ota_pack_reader_feed(reader, data + off, k, NULL);
        off += k;
    }
    if (rc == 0)
        rc = ota_pack_reader_finish(reader, NULL);
    if (rc == 0) {
        if (!ref_ok || memcmp(out, ref, e.length) != 0)
            abort();
    } else {
        size_t i;

        if (rc > 0)
            abort();
        for (i = 0; i < e.length; i++)
            if (out[i] != 0)
                abort();
    }
    return 0;
}
