/* libFuzzer harness for the device API v1 check-in body (lib/checkin.c):
 * any input is refused or parses into a struct that formats back into a
 * body that parses to the same struct; never a crash or a leak. The
 * answer parser (the agent's side) runs on the same input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/buf.h"
#include "otachain/checkin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_checkin a, b;
    struct ota_checkin_reply r;
    struct ota_buf out, bundle;

    ota_buf_init(&bundle, OTA_CHECKIN_BUNDLE_MAX);
    if (ota_checkin_reply_parse(&r, &bundle, data, size, NULL) == 0 &&
        (r.poll_interval == 0 || (r.bundle != NULL && r.bundle_len != bundle.len)))
        abort();
    ota_buf_free(&bundle);
    if (ota_checkin_parse(&a, data, size, NULL) != 0)
        return 0;
    if (a.product[0] == '\0' || a.hardware[0] == '\0' || a.version[0] == '\0' ||
        a.root_version == 0 || (a.state != OTA_UPDATE_NONE && a.state_target[0] == '\0'))
        abort();
    ota_buf_init(&out, OTA_CHECKIN_BODY_MAX);
    if (ota_checkin_format(&out, &a, NULL) != 0)
        abort();
    if (ota_checkin_parse(&b, out.data, out.len, NULL) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
        abort();
    ota_buf_free(&out);
    return 0;
}
