/* libFuzzer harness for the release module (ota_release_from_target,
 * ota_semver_parse, ota_semver_compare).
 *
 * Input: either a target's custom as JSON (first byte '{' or '['), or two
 * versions separated by a newline. A custom that reads must write back
 * (ota_release_to_custom) and read again to the same release; one that
 * does not read must leave the output zeroed. Two versions that parse must
 * compare antisymmetrically, each equal to itself, and a version must
 * equal itself with any build metadata. Crashes, leaks, sanitizer reports
 * or a broken invariant (abort) are failures.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/release.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sign(int x)
{
    return x < 0 ? -1 : x > 0;
}

static void custom_case(const uint8_t *data, size_t size)
{
    static const struct ota_release zero;
    static struct ota_release r, back;
    struct ota_tuf_target t = {.path = "p/1.0.0/x", .length = 0, .sha256 = {0}, .custom = NULL};
    json_error_t e;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    json_t *again = NULL;

    if (doc == NULL)
        return;
    t.custom = doc;
    if (ota_release_from_target(&r, &t, NULL) != 0) {
        if (memcmp(&r, &zero, sizeof(r)) != 0)
            abort();
        json_decref(doc);
        return;
    }
    if (r.nhardware == 0 || r.nhardware > OTA_RELEASE_MAX_HWIDS || r.version.len == 0)
        abort();
    if (ota_release_to_custom(&again, &r, NULL) != 0)
        abort();
    t.custom = again;
    if (ota_release_from_target(&back, &t, NULL) != 0 || memcmp(&back, &r, sizeof(r)) != 0)
        abort();
    json_decref(again);
    json_decref(doc);
}

static void versions_case(const uint8_t *data, size_t size)
{
    static struct ota_semver a, b, core;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t alen = nl != NULL ? (size_t)(nl - data) : size;
    int ra = ota_semver_parse(&a, (const char *)data, alen, NULL);
    int rb = nl != NULL ? ota_semver_parse(&b, (const char *)nl + 1, size - alen - 1, NULL) : -1;

    if (ra == 0) {
        if (ota_semver_compare(&a, &a) != 0 || a.len != alen || memcmp(a.text, data, alen) != 0)
            abort();
        /* Without its build metadata it has the same precedence. */
        if (a.build_len > 0) {
            if (ota_semver_parse(&core, a.text, a.build_off - 1, NULL) != 0 ||
                ota_semver_compare(&a, &core) != 0)
                abort();
        }
    }
    if (ra == 0 && rb == 0 && sign(ota_semver_compare(&a, &b)) != -sign(ota_semver_compare(&b, &a)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && (data[0] == '{' || data[0] == '['))
        custom_case(data, size);
    else
        versions_case(data, size);
    return 0;
}
