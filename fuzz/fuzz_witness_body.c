/* libFuzzer harness for the tlog-witness add-checkpoint request body
 * (lib/tlog_witness.c), followed by the parses the witness runs on what
 * it accepts (signed note, checkpoint): any input is refused or
 * round-trips to exactly the same bytes, and never crashes or leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/buf.h"
#include "otachain/checkpoint.h"
#include "otachain/note.h"
#include "otachain/tlog_witness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_tlog_witness_body body;
    static struct ota_checkpoint cp;
    struct ota_note *note = NULL;
    struct ota_buf out;

    if (ota_tlog_witness_body_parse(&body, data, size, NULL) != 0)
        return 0;
    if (body.note < (const char *)data || body.note + body.note_len != (const char *)data + size ||
        body.note_len == 0 || body.nproof > OTA_TLOG_WITNESS_MAX_PROOF)
        abort();
    ota_buf_init(&out, OTA_TLOG_WITNESS_MAX_BODY);
    if (ota_tlog_witness_body_format(&out, body.old_size,
                                     (const uint8_t(*)[OTA_MERKLE_HASH_LEN])body.proof, body.nproof,
                                     body.note, body.note_len) != 0 ||
        out.len != size || memcmp(out.data, data, size) != 0)
        abort();
    ota_buf_free(&out);
    if (ota_note_parse(&note, body.note, body.note_len, NULL) == 0) {
        (void)ota_checkpoint_parse(&cp, note->text, note->text_len, NULL);
        ota_note_free(note);
    }
    return 0;
}
