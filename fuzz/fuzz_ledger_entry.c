/* libFuzzer harness for the ledger entry parser: any input either is
 * refused or round-trips to exactly the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/ledger_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_ledger_entry e;
    if (ota_ledger_entry_parse(&e, data, size, NULL) != 0)
        return 0;
    uint8_t out[OTA_LEDGER_ENTRY_MAX];
    size_t n;
    if (ota_ledger_entry_format(out, &n, &e) != 0 || n != size || memcmp(out, data, n) != 0)
        abort();
    return 0;
}
