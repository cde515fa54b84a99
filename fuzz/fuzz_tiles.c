/* libFuzzer harness for the tlog-tiles parsers: tile paths and entry
 * bundles.
 *
 * Input: a mode byte, then the data. 'p' (or any even byte): the rest is a
 * tile path. Odd byte: the next byte + 1 is the bundle width (1..256) and
 * the rest is the bundle.
 * Properties: an accepted path is canonical (formatting the parsed id gives
 * the same bytes back); an accepted bundle re-encodes to the same bytes
 * and each entry lies inside the input. Any other outcome aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/buf.h"
#include "otachain/tiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_path(const uint8_t *p, size_t n)
{
    struct ota_tiles_id id;
    struct ota_detail det;
    char out[OTA_TILES_PATH_MAX];
    int rc = ota_tiles_path_parse(&id, (const char *)p, n, &det);

    if (rc != 0) {
        if (rc != OTA_ERR_FORMAT && rc != OTA_ERR_TOO_LARGE)
            abort();
        if (id.width != 0 || id.index != 0 || id.level != 0)
            abort();
        return;
    }
    if (ota_tiles_path_format(out, &id) != 0)
        abort();
    if (strlen(out) != n || memcmp(out, p, n) != 0)
        abort();
}

static void fuzz_bundle(const uint8_t *p, size_t n, unsigned width)
{
    static struct ota_tiles_entry ent[OTA_TILES_WIDTH];
    struct ota_detail det;
    struct ota_buf b;
    size_t count = 0;
    size_t i;
    int rc = ota_tiles_bundle_parse(ent, &count, p, n, width, &det);

    if (rc != 0) {
        if (rc != OTA_ERR_FORMAT || count != 0)
            abort();
        return;
    }
    if (count != width)
        abort();
    ota_buf_init(&b, OTA_TILES_BUNDLE_MAX);
    for (i = 0; i < count; i++) {
        if (ent[i].len > OTA_TILES_ENTRY_MAX || ent[i].data < p || ent[i].data + ent[i].len > p + n)
            abort();
        if (ota_tiles_bundle_append(&b, ent[i].data, ent[i].len) != 0)
            abort();
    }
    if (b.len != n || (n > 0 && memcmp(b.data, p, n) != 0))
        abort();
    ota_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0) {
        fuzz_path(data + 1, size - 1);
        return 0;
    }
    if (size < 2)
        return 0;
    fuzz_bundle(data + 2, size - 2, (unsigned)data[1] + 1);
    return 0;
}
