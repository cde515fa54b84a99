/* C2SP tlog-witness v1 request and 409 bodies; see tlog_witness.h. */
#include "otachain/tlog_witness.h"

#include <stdio.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/checkpoint.h"

#define OLD_PREFIX     "old "
#define OLD_PREFIX_LEN 4
#define SIZE_MAX_VALUE UINT64_C(0x7fffffffffffffff)
/* Base64 of a 32-byte hash. */
#define HASH_B64_LEN OTA_BASE64_LEN(OTA_MERKLE_HASH_LEN)

int ota_tlog_witness_body_parse(struct ota_tlog_witness_body *out, const void *data, size_t len,
                                struct ota_detail *det)
{
    const char *p = data;
    const char *end;
    const char *nl;
    size_t pos;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_TLOG_WITNESS_MAX_BODY) {
        ota_detail_set(det, "request body of %zu bytes exceeds the cap of %u", len,
                       OTA_TLOG_WITNESS_MAX_BODY);
        return OTA_ERR_TOO_LARGE;
    }
    end = p + len;

    /* old size line */
    nl = len ? memchr(p, '\n', len) : NULL;
    if (nl == NULL || (size_t)(nl - p) <= OLD_PREFIX_LEN ||
        memcmp(p, OLD_PREFIX, OLD_PREFIX_LEN) != 0) {
        ota_detail_set(det, "line 1: expected \"old <size>\"");
        goto bad;
    }
    if (ota_checkpoint_parse_u64(&out->old_size, p + OLD_PREFIX_LEN,
                                 (size_t)(nl - p) - OLD_PREFIX_LEN, SIZE_MAX_VALUE) != 0) {
        ota_detail_set(det, "line 1: old size is not a decimal below 2^63 without leading zeros");
        goto bad;
    }
    pos = (size_t)(nl - p) + 1;

    /* proof lines, up to the empty line */
    for (;;) {
        const char *line = p + pos;
        size_t llen;
        size_t got;

        nl = pos < len ? memchr(line, '\n', (size_t)(end - line)) : NULL;
        if (nl == NULL) {
            ota_detail_set(det, "line %zu: missing the empty line before the checkpoint",
                           out->nproof + 2);
            goto bad;
        }
        llen = (size_t)(nl - line);
        pos += llen + 1;
        if (llen == 0)
            break;
        if (out->nproof == OTA_TLOG_WITNESS_MAX_PROOF) {
            ota_detail_set(det, "more than %d consistency proof lines", OTA_TLOG_WITNESS_MAX_PROOF);
            memset(out, 0, sizeof(*out));
            return OTA_ERR_TOO_LARGE;
        }
        if (llen != HASH_B64_LEN ||
            ota_base64_decode(out->proof[out->nproof], OTA_MERKLE_HASH_LEN, &got, line, llen) !=
                0 ||
            got != OTA_MERKLE_HASH_LEN) {
            ota_detail_set(det, "line %zu: proof line is not canonical base64 of a 32-byte hash",
                           out->nproof + 2);
            goto bad;
        }
        out->nproof++;
    }
    if (pos >= len) {
        ota_detail_set(det, "no checkpoint after the empty line");
        goto bad;
    }
    out->note = p + pos;
    out->note_len = len - pos;
    return 0;

bad:
    memset(out, 0, sizeof(*out));
    return OTA_ERR_FORMAT;
}

int ota_tlog_witness_body_format(struct ota_buf *out, uint64_t old_size,
                                 const uint8_t (*proof)[OTA_MERKLE_HASH_LEN], size_t nproof,
                                 const char *note, size_t note_len)
{
    char line[HASH_B64_LEN + 2];
    size_t start;
    size_t total;
    int rc;

    if (out == NULL || old_size > SIZE_MAX_VALUE || nproof > OTA_TLOG_WITNESS_MAX_PROOF ||
        (nproof > 0 && proof == NULL) || note == NULL || note_len == 0)
        return OTA_ERR_INVALID_ARG;
    /* "old " + 19 digits + '\n', 45 bytes per proof line, '\n', note */
    total = OLD_PREFIX_LEN + 20 + nproof * (HASH_B64_LEN + 1) + 1;
    if (note_len > OTA_TLOG_WITNESS_MAX_BODY || total > OTA_TLOG_WITNESS_MAX_BODY - note_len)
        return OTA_ERR_TOO_LARGE;
    start = out->len;
    rc = ota_buf_printf(out, OLD_PREFIX "%llu\n", (unsigned long long)old_size);
    for (size_t i = 0; rc == 0 && i < nproof; i++) {
        size_t n = ota_base64_encode(line, proof[i], OTA_MERKLE_HASH_LEN);
        line[n] = '\n';
        rc = ota_buf_append(out, line, n + 1);
    }
    if (rc == 0)
        rc = ota_buf_append(out, "\n", 1);
    if (rc == 0)
        rc = ota_buf_append(out, note, note_len);
    if (rc != 0) {
        /* Leave out as it was (its data may have moved, its length not). */
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return rc;
}

int ota_tlog_witness_size_parse(uint64_t *size, const void *data, size_t len)
{
    const char *s = data;

    if (size == NULL)
        return OTA_ERR_INVALID_ARG;
    *size = 0;
    if (s == NULL || len < 2 || len > OTA_TLOG_WITNESS_SIZE_MAX_LEN || s[len - 1] != '\n')
        return OTA_ERR_FORMAT;
    return ota_checkpoint_parse_u64(size, s, len - 1, SIZE_MAX_VALUE);
}

size_t ota_tlog_witness_size_format(char out[OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1], uint64_t size)
{
    int n;

    out[0] = '\0';
    if (size > SIZE_MAX_VALUE)
        return 0;
    n = snprintf(out, OTA_TLOG_WITNESS_SIZE_MAX_LEN + 1, "%llu\n", (unsigned long long)size);
    return n > 0 && n <= OTA_TLOG_WITNESS_SIZE_MAX_LEN ? (size_t)n : 0;
}
