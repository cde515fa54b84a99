/* tlog-checkpoint v1 bodies (see otachain/checkpoint.h). */
#include "otachain/checkpoint.h"

#include <inttypes.h>
#include <string.h>

#include "otachain/base64.h"
#include "otachain/note.h"

int ota_checkpoint_parse_u64(uint64_t *out, const char *s, size_t len, uint64_t max)
{
    uint64_t v = 0;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    *out = 0;
    if (s == NULL || len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return OTA_ERR_FORMAT;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return OTA_ERR_FORMAT;
        d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return OTA_ERR_FORMAT;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Next line of text[*pos..len) without its newline (text ends in '\n'). */
static const char *next_line(const char *text, size_t len, size_t *pos, size_t *llen)
{
    const char *start = text + *pos;
    const char *nl;

    if (*pos >= len)
        return NULL;
    nl = memchr(start, '\n', len - *pos);
    *llen = (size_t)(nl - start);
    *pos += *llen + 1;
    return start;
}

static int parse_body(struct ota_checkpoint *out, const char *text, size_t len,
                      struct ota_detail *det)
{
    const char *line[3];
    size_t llen[3];
    size_t pos = 0;
    size_t root_len = 0;
    int rc;

    if (len > OTA_CHECKPOINT_MAX_LEN) {
        ota_detail_set(det, "checkpoint of %zu bytes exceeds the cap of %d", len,
                       OTA_CHECKPOINT_MAX_LEN);
        return OTA_ERR_TOO_LARGE;
    }
    rc = ota_note_text_check(text, len, det);
    if (rc != 0) {
        ota_detail_prefix(det, "checkpoint");
        return rc;
    }
    for (int i = 0; i < 3; i++) {
        line[i] = next_line(text, len, &pos, &llen[i]);
        if (line[i] == NULL) {
            ota_detail_set(det, "checkpoint has %d line(s), fewer than three", i);
            return OTA_ERR_FORMAT;
        }
        if (llen[i] == 0) {
            ota_detail_set(det, "checkpoint line %d is empty", i + 1);
            return OTA_ERR_FORMAT;
        }
    }
    if (llen[0] > OTA_CHECKPOINT_MAX_ORIGIN) {
        ota_detail_set(det, "checkpoint origin of %zu bytes exceeds the cap of %d", llen[0],
                       OTA_CHECKPOINT_MAX_ORIGIN);
        return OTA_ERR_TOO_LARGE;
    }
    memcpy(out->origin, line[0], llen[0]);
    out->origin[llen[0]] = '\0';
    out->origin_len = llen[0];
    if (ota_checkpoint_parse_u64(&out->size, line[1], llen[1], OTA_CHECKPOINT_MAX_SIZE) != 0) {
        ota_detail_set(det, "checkpoint tree size is not a decimal number below 2^63 without "
                            "leading zeros");
        return OTA_ERR_FORMAT;
    }
    if (llen[2] != 44 ||
        ota_base64_decode(out->root, sizeof(out->root), &root_len, line[2], llen[2]) != 0 ||
        root_len != OTA_CHECKPOINT_HASH_LEN) {
        ota_detail_set(det, "checkpoint root hash is not base64 of 32 bytes");
        return OTA_ERR_FORMAT;
    }
    if (len - pos > OTA_CHECKPOINT_MAX_EXT) {
        ota_detail_set(det, "checkpoint extension lines of %zu bytes exceed the cap of %d",
                       len - pos, OTA_CHECKPOINT_MAX_EXT);
        return OTA_ERR_TOO_LARGE;
    }
    memcpy(out->ext, text + pos, len - pos);
    out->ext[len - pos] = '\0';
    out->ext_len = len - pos;
    for (int no = 4; pos < len; no++) {
        size_t n;

        (void)next_line(text, len, &pos, &n);
        if (n == 0) {
            ota_detail_set(det, "checkpoint line %d (an extension line) is empty", no);
            return OTA_ERR_FORMAT;
        }
    }
    return 0;
}

int ota_checkpoint_parse(struct ota_checkpoint *out, const char *text, size_t len,
                         struct ota_detail *det)
{
    int rc;

    if (out == NULL)
        return OTA_ERR_INVALID_ARG;
    memset(out, 0, sizeof(*out));
    if (text == NULL && len > 0)
        return OTA_ERR_INVALID_ARG;
    rc = parse_body(out, text, len, det);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int ota_checkpoint_format(struct ota_buf *out, const struct ota_checkpoint *cp)
{
    struct ota_checkpoint check;
    struct ota_buf tmp;
    char root[OTA_BASE64_LEN(OTA_CHECKPOINT_HASH_LEN) + 1];
    int rc;

    if (out == NULL || cp == NULL || cp->origin_len > OTA_CHECKPOINT_MAX_ORIGIN ||
        cp->ext_len > OTA_CHECKPOINT_MAX_EXT)
        return OTA_ERR_INVALID_ARG;
    ota_base64_encode(root, cp->root, sizeof(cp->root));
    ota_buf_init(&tmp, OTA_CHECKPOINT_MAX_LEN);
    rc = ota_buf_append(&tmp, cp->origin, cp->origin_len);
    if (rc == 0)
        rc = ota_buf_printf(&tmp, "\n%" PRIu64 "\n%s\n", cp->size, root);
    if (rc == 0)
        rc = ota_buf_append(&tmp, cp->ext, cp->ext_len);
    /* What we write must parse back to the same value. */
    if (rc == 0 && (ota_checkpoint_parse(&check, (const char *)tmp.data, tmp.len, NULL) != 0 ||
                    check.origin_len != cp->origin_len || check.size != cp->size ||
                    check.ext_len != cp->ext_len))
        rc = OTA_ERR_INVALID_ARG;
    if (rc == 0)
        rc = ota_buf_append(out, tmp.data, tmp.len);
    ota_buf_free(&tmp);
    return rc;
}
