/* libFuzzer harness for tlog-proof@v1 (ota_tlog_proof_parse).
 *
 * Input: a proof. Whatever parses must format back, from its parsed
 * parts, to the input byte for byte, and its index must lie below the
 * checkpoint's size. Crashes, leaks, sanitizer reports or a broken
 * invariant (abort) are failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/err.h"
#include "otachain/tlog_proof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_tlog_proof *pr = NULL;
    struct ota_detail det;
    struct ota_buf note;
    struct ota_buf b;
    int rc;

    rc = ota_tlog_proof_parse(&pr, data, size, &det);
    if (rc != 0) {
        if (pr != NULL)
            abort();
        return 0;
    }
    if (pr->index >= pr->checkpoint.size || pr->nhashes > OTA_TLOG_PROOF_MAX_HASHES ||
        pr->has_extra != (pr->extra != NULL))
        abort();
    ota_buf_init(&note, OTA_NOTE_MAX_LEN);
    ota_buf_init(&b, OTA_TLOG_PROOF_MAX_LEN);
    if (ota_note_format(&note, pr->note) != 0 ||
        ota_tlog_proof_format(&b, pr->extra, pr->extra_len, pr->index,
                              (const uint8_t(*)[OTA_TLOG_PROOF_HASH_LEN])pr->hashes, pr->nhashes,
                              note.data, note.len, &det) != 0 ||
        b.len != size || memcmp(b.data, data, size) != 0)
        abort();
    ota_buf_free(&note);
    ota_buf_free(&b);
    ota_tlog_proof_free(pr);
    return 0;
}
