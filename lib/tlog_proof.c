/* C2SP tlog-proof@v1 (see otachain/tlog_proof.h). */
#include "otachain/tlog_proof.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/base64.h"

void ota_tlog_proof_free(struct ota_tlog_proof *pr)
{
    if (pr == NULL)
        return;
    free(pr->extra);
    ota_note_free(pr->note);
    free(pr);
}

/* The line at s[*pos..len) without its newline; NULL if no newline is
 * left (the line is unterminated or the input ended). */
static const char *take_line(const char *s, size_t len, size_t *pos, size_t *llen)
{
    const char *start = s + *pos;
    const char *nl;

    if (*pos >= len)
        return NULL;
    nl = memchr(start, '\n', len - *pos);
    if (nl == NULL)
        return NULL;
    *llen = (size_t)(nl - start);
    *pos += *llen + 1;
    return start;
}

static bool has_prefix(const char *line, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(line, prefix, n) == 0;
}

static int parse_proof(struct ota_tlog_proof *pr, const char *s, size_t len, struct ota_detail *det)
{
    const char *line;
    size_t llen = 0;
    size_t pos = 0;
    size_t no = 1;
    int rc;

    line = take_line(s, len, &pos, &llen);
    if (line == NULL || llen != strlen(OTA_TLOG_PROOF_HEADER) ||
        memcmp(line, OTA_TLOG_PROOF_HEADER, llen) != 0) {
        ota_detail_set(det, "proof line 1 is not \"" OTA_TLOG_PROOF_HEADER "\"");
        return OTA_ERR_FORMAT;
    }
    line = take_line(s, len, &pos, &llen);
    no++;
    if (line != NULL && has_prefix(line, llen, "extra")) {
        const char *b64;
        size_t b64_len;

        if (llen <= 6 || line[5] != ' ') {
            ota_detail_set(det, "proof line 2: expected \"extra <base64>\" with data");
            return OTA_ERR_FORMAT;
        }
        b64 = line + 6;
        b64_len = llen - 6;
        if (b64_len > OTA_BASE64_LEN(OTA_TLOG_PROOF_MAX_EXTRA)) {
            ota_detail_set(det, "proof line 2: extra data exceeds the cap of %d bytes",
                           OTA_TLOG_PROOF_MAX_EXTRA);
            return OTA_ERR_TOO_LARGE;
        }
        pr->extra = malloc(OTA_BASE64_DECODED_MAX(b64_len));
        if (pr->extra == NULL)
            return OTA_ERR_NOMEM;
        rc = ota_base64_decode(pr->extra, OTA_BASE64_DECODED_MAX(b64_len), &pr->extra_len, b64,
                               b64_len);
        if (rc == 0 && pr->extra_len > OTA_TLOG_PROOF_MAX_EXTRA) {
            ota_detail_set(det, "proof line 2: extra data exceeds the cap of %d bytes",
                           OTA_TLOG_PROOF_MAX_EXTRA);
            return OTA_ERR_TOO_LARGE;
        }
        if (rc != 0) {
            ota_detail_set(det, "proof line 2: extra data is not canonical base64");
            return OTA_ERR_FORMAT;
        }
        pr->has_extra = true;
        line = take_line(s, len, &pos, &llen);
        no++;
    }
    if (line == NULL || !has_prefix(line, llen, "index ") ||
        ota_checkpoint_parse_u64(&pr->index, line + 6, llen - 6, OTA_CHECKPOINT_MAX_SIZE) != 0) {
        ota_detail_set(det,
                       "proof line %zu: expected \"index <decimal below 2^63 without "
                       "leading zeros>\"",
                       no);
        return OTA_ERR_FORMAT;
    }
    for (;;) {
        size_t n = 0;

        line = take_line(s, len, &pos, &llen);
        no++;
        if (line == NULL) {
            ota_detail_set(det, "proof has no empty line before the checkpoint");
            return OTA_ERR_FORMAT;
        }
        if (llen == 0)
            break;
        if (pr->nhashes == OTA_TLOG_PROOF_MAX_HASHES) {
            ota_detail_set(det, "proof has more than %d inclusion proof hashes",
                           OTA_TLOG_PROOF_MAX_HASHES);
            return OTA_ERR_TOO_LARGE;
        }
        if (llen != OTA_BASE64_LEN(OTA_TLOG_PROOF_HASH_LEN) ||
            ota_base64_decode(pr->hashes[pr->nhashes], OTA_TLOG_PROOF_HASH_LEN, &n, line, llen) !=
                0 ||
            n != OTA_TLOG_PROOF_HASH_LEN) {
            ota_detail_set(det, "proof line %zu: not base64 of a 32-byte hash", no);
            return OTA_ERR_FORMAT;
        }
        pr->nhashes++;
    }
    rc = ota_note_parse(&pr->note, s + pos, len - pos, det);
    if (rc == 0)
        rc = ota_checkpoint_parse(&pr->checkpoint, pr->note->text, pr->note->text_len, det);
    if (rc != 0) {
        ota_detail_prefix(det, "proof checkpoint");
        return rc;
    }
    if (pr->index >= pr->checkpoint.size) {
        ota_detail_set(det, "proof index %" PRIu64 " is not below the tree size %" PRIu64,
                       pr->index, pr->checkpoint.size);
        return OTA_ERR_FORMAT;
    }
    return 0;
}

int ota_tlog_proof_parse(struct ota_tlog_proof **out, const void *data, size_t len,
                         struct ota_detail *det)
{
    struct ota_tlog_proof *pr;
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = NULL;
    if (data == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    if (len > OTA_TLOG_PROOF_MAX_LEN) {
        ota_detail_set(det, "proof of %zu bytes exceeds the cap of %u", len,
                       OTA_TLOG_PROOF_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    pr = calloc(1, sizeof(*pr));
    if (pr == NULL)
        return OTA_ERR_NOMEM;
    rc = parse_proof(pr, data, len, det);
    if (rc != 0) {
        ota_tlog_proof_free(pr);
        return rc;
    }
    *out = pr;
    return 0;
}

int ota_tlog_proof_format(struct ota_buf *out, const uint8_t *extra, size_t extra_len,
                          uint64_t index, const uint8_t (*hashes)[OTA_TLOG_PROOF_HASH_LEN],
                          size_t nhashes, const void *note, size_t note_len, struct ota_detail *det)
{
    struct ota_tlog_proof *check = NULL;
    struct ota_buf tmp;
    char *b64 = NULL;
    int rc;

    if (out == NULL || (hashes == NULL && nhashes > 0) || (note == NULL && note_len > 0))
        return OTA_ERR_INVALID_ARG;
    if (nhashes > OTA_TLOG_PROOF_MAX_HASHES ||
        (extra != NULL && (extra_len == 0 || extra_len > OTA_TLOG_PROOF_MAX_EXTRA))) {
        ota_detail_set(det, "proof: %zu hashes or %zu bytes of extra data out of range", nhashes,
                       extra_len);
        return OTA_ERR_INVALID_ARG;
    }
    ota_buf_init(&tmp, OTA_TLOG_PROOF_MAX_LEN);
    rc = ota_buf_append_str(&tmp, OTA_TLOG_PROOF_HEADER "\n");
    if (rc == 0 && extra != NULL) {
        b64 = malloc(OTA_BASE64_LEN(extra_len) + 1);
        if (b64 == NULL) {
            rc = OTA_ERR_NOMEM;
        } else {
            ota_base64_encode(b64, extra, extra_len);
            rc = ota_buf_printf(&tmp, "extra %s\n", b64);
        }
    }
    if (rc == 0)
        rc = ota_buf_printf(&tmp, "index %" PRIu64 "\n", index);
    for (size_t i = 0; rc == 0 && i < nhashes; i++) {
        char h[OTA_BASE64_LEN(OTA_TLOG_PROOF_HASH_LEN) + 1];

        ota_base64_encode(h, hashes[i], OTA_TLOG_PROOF_HASH_LEN);
        rc = ota_buf_printf(&tmp, "%s\n", h);
    }
    if (rc == 0)
        rc = ota_buf_append(&tmp, "\n", 1);
    if (rc == 0)
        rc = ota_buf_append(&tmp, note, note_len);
    if (rc == OTA_ERR_TOO_LARGE)
        rc = OTA_ERR_INVALID_ARG; /* the note alone is over its cap */
    if (rc == 0) {
        /* What we wrote must parse; if it does not, the inputs were bad
         * (memory aside). */
        rc = ota_tlog_proof_parse(&check, tmp.data, tmp.len, det);
        if (rc != 0 && rc != OTA_ERR_NOMEM)
            rc = OTA_ERR_INVALID_ARG;
    }
    if (rc == 0)
        rc = ota_buf_append(out, tmp.data, tmp.len);
    ota_tlog_proof_free(check);
    ota_buf_free(&tmp);
    free(b64);
    return rc;
}
