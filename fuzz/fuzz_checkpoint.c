/* libFuzzer harness for checkpoint bodies (ota_checkpoint_parse).
 *
 * Input: a checkpoint body. Whatever parses must format back to the input
 * byte for byte; whatever fails must leave the output zeroed. Crashes,
 * leaks, sanitizer reports or a broken invariant (abort) are failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/checkpoint.h"
#include "otachain/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ota_checkpoint zero;
    struct ota_checkpoint cp;
    struct ota_detail det;
    struct ota_buf b;
    int rc;

    rc = ota_checkpoint_parse(&cp, (const char *)data, size, &det);
    if (rc != 0) {
        if (memcmp(&cp, &zero, sizeof(cp)) != 0)
            abort();
        return 0;
    }
    if (cp.origin_len == 0 || cp.size > OTA_CHECKPOINT_MAX_SIZE)
        abort();
    ota_buf_init(&b, OTA_CHECKPOINT_MAX_LEN);
    if (ota_checkpoint_format(&b, &cp) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
        abort();
    ota_buf_free(&b);
    return 0;
}
