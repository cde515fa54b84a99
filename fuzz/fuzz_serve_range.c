/* libFuzzer harness for the Range request header (lib/serve_range.c):
 * the first 8 bytes pick a file length, the rest is the header. Every
 * range returned lies in the file, their count is within the cap, and
 * nothing crashes or reads past the header. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/serve_range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_range r[OTA_RANGE_MAX];
    uint64_t length = 0;
    char *header;
    size_t n = 99;
    enum ota_range_verdict v;

    if (size < 8)
        return 0;
    for (int i = 0; i < 8; i++)
        length = length << 8 | data[i];
    length %= (uint64_t)1 << 40;
    header = malloc(size - 8 + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data + 8, size - 8);
    header[size - 8] = '\0';
    v = ota_serve_range_parse(r, &n, header, length);
    if (v == OTA_RANGE_PARTIAL) {
        if (n == 0 || n > OTA_RANGE_MAX)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (r[i].first > r[i].last || r[i].last >= length)
                abort();
        }
    } else if (n != 0) {
        abort();
    }
    free(header);
    return 0;
}
