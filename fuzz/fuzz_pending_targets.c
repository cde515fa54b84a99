/* libFuzzer harness for the body of PUT /admin/v1/pending/targets
 * (programs/otachain-server/pending.c): the uploaded targets metadata goes
 * through the strict TUF parser, then its signatures are merged into the
 * pending version with the same signed part (ota_tuf_merge_signatures,
 * as ota_repo_merge does). Whatever the parser accepts must merge into a
 * copy of itself without signatures and parse again with no more
 * signatures than it had; nothing may crash or leak. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "otachain/tuf.h"
#include "otachain/tuf_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_tuf_meta *md = NULL, *merged = NULL;
    struct ota_detail det;
    json_t *pending;

    if (ota_tuf_parse(&md, data, size, OTA_TUF_TARGETS, &det) != 0)
        return 0;
    pending = json_deep_copy(md->doc);
    if (pending == NULL || json_object_set_new(pending, "signatures", json_array()) != 0)
        abort();
    if (ota_tuf_merge_signatures(pending, md->doc, &det) != 0)
        abort(); /* the same signed part always merges */
    if (ota_tuf_from_json(&merged, pending, OTA_TUF_TARGETS, &det) != 0 ||
        merged->nsigs > md->nsigs || merged->version != md->version)
        abort();
    ota_tuf_meta_free(merged);
    json_decref(pending);
    ota_tuf_meta_free(md);
    return 0;
}
