/* libFuzzer harness for the strict JSON parser and the canonical emitter.
 *
 * Property: for any input the parser accepts (default limits), the
 * canonical encoding is a fixed point: parsing it again and re-emitting
 * gives the same bytes. The one legitimate exception is a string holding a
 * control character: canonical JSON writes it raw, which strict JSON (our
 * parser) refuses; then the canonical bytes must contain such a byte.
 * Any other outcome aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/cjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_control_byte(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] < 0x20)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v1 = NULL;
    json_t *v2 = NULL;
    uint8_t *c1 = NULL;
    uint8_t *c2 = NULL;
    size_t n1 = 0;
    size_t n2 = 0;
    struct ota_detail det;
    int rc;

    if (ota_json_parse(&v1, data, size, NULL, &det) != 0)
        return 0;
    /* Parsed trees hold no reals and fit the caps: emission must work. */
    if (ota_json_canonical_alloc(&c1, &n1, v1) != 0)
        abort();
    /* Canonical form never grows: no whitespace, fewer escapes. */
    if (n1 > size)
        abort();
    rc = ota_json_parse(&v2, c1, n1, NULL, &det);
    if (rc != 0) {
        if (rc != OTA_ERR_JSON_SYNTAX || !has_control_byte(c1, n1))
            abort();
        goto out;
    }
    if (ota_json_canonical_alloc(&c2, &n2, v2) != 0)
        abort();
    if (n1 != n2 || memcmp(c1, c2, n1) != 0)
        abort();
    if (!json_equal(v1, v2))
        abort();
out:
    free(c1);
    free(c2);
    json_decref(v1);
    json_decref(v2);
    return 0;
}
