/* libFuzzer harness for TUF metadata parsing (ota_tuf_parse).
 *
 * Input: one byte selecting the expected role (mod 4), then the file.
 * Whatever parses is exercised further: a root is verified against itself
 * for every role; every target and meta entry must be found again by its
 * own name, and its consistent-snapshot file path must build; expiry is
 * checked. Crashes, leaks, sanitizer reports or a broken invariant (abort)
 * are failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/err.h"
#include "otachain/tuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct ota_tuf_meta *md)
{
    struct ota_detail det;

    if (md->type == OTA_TUF_ROOT) {
        for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++) {
            int rc = ota_tuf_verify_role(md, md, (enum ota_tuf_role)r, &det);
            /* Below the threshold: too few signatures, or one by a role
             * key that does not verify (named as such). */
            if (rc != 0 && rc != OTA_ERR_THRESHOLD && rc != OTA_ERR_BAD_SIGNATURE)
                abort();
            if (ota_tuf_role_changed(md, md, (enum ota_tuf_role)r))
                abort();
        }
        for (size_t i = 0; i < md->nkeys; i++) {
            if (ota_tuf_find_key(md, md->keys[i].keyid) != &md->keys[i])
                abort();
        }
    }
    for (size_t i = 0; i < md->ntargets; i++) {
        const struct ota_tuf_target *t = &md->targets[i];
        char *p = NULL;
        if (ota_tuf_find_target(md, t->path) != t)
            abort();
        if (ota_tuf_target_file_path(&p, t) != 0)
            abort();
        free(p);
    }
    for (size_t i = 0; i < md->nmeta; i++) {
        if (ota_tuf_find_meta(md, md->meta[i].name) != &md->meta[i])
            abort();
        (void)ota_tuf_check_metafile(&md->meta[i], md->signed_canonical, md->signed_canonical_len,
                                     &det);
    }
    (void)ota_tuf_check_expiry(md, 1893456000, &det);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_tuf_meta *md = NULL;
    struct ota_detail det;

    if (size < 1)
        return 0;
    enum ota_tuf_role role = (enum ota_tuf_role)(data[0] % OTA_TUF_ROLE_COUNT);
    int rc = ota_tuf_parse(&md, data + 1, size - 1, role, &det);
    if (rc != 0) {
        if (md != NULL)
            abort();
        return 0;
    }
    if (md == NULL || md->type != role)
        abort();
    exercise(md);
    ota_tuf_meta_free(md);
    return 0;
}
