/* libFuzzer harness for the upload part header (lib/upload.c): any
 * Content-Range is refused or names a range inside its blob, under the
 * cap; and blob names are judged without reading past them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_upload_range r;
    char *name;
    bool pack;

    if (ota_upload_range_parse(&r, (const char *)data, size, OTA_UPLOAD_MAX_TOTAL, NULL) == 0 &&
        (r.first > r.last || r.last >= r.total || r.total > OTA_UPLOAD_MAX_TOTAL))
        abort();
    name = malloc(size + 1);
    if (name == NULL)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    if (ota_upload_name_valid(name, &pack) && strlen(name) != (pack ? 69u : 64u))
        abort();
    free(name);
    return 0;
}
