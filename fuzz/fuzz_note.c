/* libFuzzer harness for signed notes (ota_note_parse, ota_note_verify)
 * and verifier keys (ota_note_verifier_parse).
 *
 * Input: a note. Whatever parses must format back to the input byte for
 * byte (base64 is canonical), and is verified against the verifier keys
 * of the vectors plus a cosigner key; success must report at least one
 * verified key. The first line of the input is also parsed as a verifier
 * key, which must format back to itself when it parses. Crashes, leaks,
 * sanitizer reports or a broken invariant (abort) are failures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/err.h"
#include "otachain/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vkeys[] = {
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
};
/* The vectors' keys, then PeterNeumann's key again as a cosigner. */
#define NV (sizeof(vkeys) / sizeof(vkeys[0]) + 1)

static void vkey_line(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t len = nl != NULL ? (size_t)(nl - data) : size;
    struct ota_note_verifier v;
    struct ota_detail det;
    char out[OTA_NOTE_VKEY_SIZE];

    if (ota_note_verifier_parse(&v, (const char *)data, len, &det) != 0)
        return;
    if (ota_note_verifier_format(out, &v) != len || memcmp(out, data, len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ota_note_verifier vs[NV];
    struct ota_note_check checks[NV];
    struct ota_note *n = NULL;
    struct ota_detail det;
    struct ota_buf b;
    size_t nv = 0;
    int rc;

    vkey_line(data, size);
    for (size_t i = 0; i < NV - 1; i++)
        if (ota_note_verifier_parse(&vs[i], vkeys[i], strlen(vkeys[i]), NULL) != 0)
            abort();
    if (ota_note_verifier_make(&vs[NV - 1], "PeterNeumann", 12, OTA_NOTE_TYPE_COSIG_V1,
                               vs[1].pub) != 0)
        abort();
    rc = ota_note_parse(&n, data, size, &det);
    if (rc != 0) {
        if (n != NULL)
            abort();
        return 0;
    }
    if (n->nsigs < 1 || n->nsigs > OTA_NOTE_MAX_SIGS || n->text_len < 1 ||
        n->text[n->text_len - 1] != '\n' || ota_note_text_check(n->text, n->text_len, NULL) != 0)
        abort();
    ota_buf_init(&b, OTA_NOTE_MAX_LEN);
    if (ota_note_format(&b, n) != 0 || b.len != size || memcmp(b.data, data, size) != 0)
        abort();
    ota_buf_free(&b);
    rc = ota_note_verify(checks, &nv, n, vs, NV, &det);
    if (rc == 0 && nv == 0)
        abort();
    if (rc != 0 && rc != OTA_ERR_BAD_SIGNATURE && rc != OTA_ERR_UNVERIFIED &&
        rc != OTA_ERR_DUP_SIGNATURE)
        abort();
    ota_note_free(n);
    return 0;
}
