/* Byte-range answers: see include/otachain/multipart.h. */
#include "otachain/multipart.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define NUM_MAX (UINT64_C(1) << 63) /* numbers stay below */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Whether s[0..n) equals the lower-case word w, ignoring case. */
static bool word_eq(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);

    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != w[i])
            return false;
    return true;
}

/* Decimal digits at *p (< end) into *out: 1 to 19 digits, below 2^63. */
static bool number(uint64_t *out, const char **p, const char *end)
{
    uint64_t v = 0;
    const char *q = *p;

    while (q < end && *q >= '0' && *q <= '9') {
        if (q - *p >= 19)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q == *p || v >= NUM_MAX)
        return false;
    *out = v;
    *p = q;
    return true;
}

static int content_range(struct ota_byte_range *out, const char *value, size_t len,
                         struct ota_detail *det)
{
    const char *p = value;
    const char *end = value + len;
    const char *unit;

    memset(out, 0, sizeof(*out));
    if (value == NULL) {
        ota_detail_set(det, "Content-Range: missing");
        return OTA_ERR_HTTP_FRAMING;
    }
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    unit = p;
    while (p < end && *p != ' ')
        p++;
    if (!word_eq(unit, (size_t)(p - unit), "bytes")) {
        ota_detail_set(det, "Content-Range \"%.*s\": the unit is not bytes", (int)(end - value),
                       value);
        return OTA_ERR_HTTP_FRAMING;
    }
    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == '*') {
        ota_detail_set(det, "Content-Range \"%.*s\": an unsatisfied range", (int)(end - value),
                       value);
        return OTA_ERR_HTTP_FRAMING;
    }
    if (!number(&out->first, &p, end) || p >= end || *p != '-') {
        ota_detail_set(det, "Content-Range \"%.*s\": no first-last byte positions",
                       (int)(end - value), value);
        return OTA_ERR_HTTP_FRAMING;
    }
    p++;
    if (!number(&out->last, &p, end) || p >= end || *p != '/') {
        ota_detail_set(det, "Content-Range \"%.*s\": no last byte position and '/'",
                       (int)(end - value), value);
        return OTA_ERR_HTTP_FRAMING;
    }
    p++;
    if (p + 1 == end && *p == '*') {
        out->total = UINT64_MAX;
        p++;
    } else if (!number(&out->total, &p, end)) {
        ota_detail_set(det, "Content-Range \"%.*s\": no complete length", (int)(end - value),
                       value);
        return OTA_ERR_HTTP_FRAMING;
    }
    if (p != end) {
        ota_detail_set(det, "Content-Range \"%.*s\": junk after the complete length",
                       (int)(end - value), value);
        return OTA_ERR_HTTP_FRAMING;
    }
    if (out->last < out->first || (out->total != UINT64_MAX && out->last >= out->total)) {
        ota_detail_set(det,
                       "Content-Range \"%.*s\": bytes %" PRIu64 "-%" PRIu64
                       " are not a range within the complete length",
                       (int)(end - value), value, out->first, out->last);
        return OTA_ERR_HTTP_FRAMING;
    }
    return 0;
}

int ota_content_range_parse(struct ota_byte_range *out, const char *value, size_t len,
                            struct ota_detail *det)
{
    int rc = content_range(out, value, len, det);

    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* RFC 2046 bchars. */
static bool bchar(char c)
{
    return c != '\0' && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                         (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=? ", c) != NULL);
}

/* RFC 9110 tchar (a token's characters). */
static bool tchar(char c)
{
    return c != '\0' && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                         (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int boundary(char out[OTA_MULTIPART_BOUNDARY_MAX + 1], const char *content_type,
                    struct ota_detail *det)
{
    const char *p = content_type;
    const char *t;
    bool found = false;

    out[0] = '\0';
    if (p == NULL) {
        ota_detail_set(det, "no Content-Type for a multi-range answer");
        return OTA_ERR_HTTP_FRAMING;
    }
    while (is_ows(*p))
        p++;
    t = p;
    while (*p != '\0' && *p != ';' && !is_ows(*p))
        p++;
    if (!word_eq(t, (size_t)(p - t), "multipart/byteranges")) {
        ota_detail_set(det, "Content-Type \"%.80s\" is not multipart/byteranges", content_type);
        return OTA_ERR_HTTP_FRAMING;
    }
    for (;;) {
        const char *name;
        size_t nlen;
        char val[OTA_MULTIPART_BOUNDARY_MAX + 2];
        size_t vlen = 0;

        while (is_ows(*p))
            p++;
        if (*p == '\0')
            break;
        if (*p != ';') {
            ota_detail_set(det, "Content-Type \"%.80s\": junk between its parameters",
                           content_type);
            return OTA_ERR_HTTP_FRAMING;
        }
        p++;
        while (is_ows(*p))
            p++;
        name = p;
        while (tchar(*p))
            p++;
        nlen = (size_t)(p - name);
        if (nlen == 0 || *p != '=') {
            ota_detail_set(det, "Content-Type \"%.80s\": a parameter without name=value",
                           content_type);
            return OTA_ERR_HTTP_FRAMING;
        }
        p++;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (*p == '\0' || (unsigned char)*p < 0x20) {
                    ota_detail_set(det, "Content-Type \"%.80s\": an unterminated quoted value",
                                   content_type);
                    return OTA_ERR_HTTP_FRAMING;
                }
                if (vlen < sizeof(val) - 1)
                    val[vlen] = *p;
                vlen++;
            }
            p++;
        } else {
            for (; tchar(*p); p++) {
                if (vlen < sizeof(val) - 1)
                    val[vlen] = *p;
                vlen++;
            }
        }
        if (!word_eq(name, nlen, "boundary"))
            continue;
        if (found) {
            ota_detail_set(det, "Content-Type \"%.80s\": two boundary parameters", content_type);
            return OTA_ERR_HTTP_FRAMING;
        }
        if (vlen == 0 || vlen > OTA_MULTIPART_BOUNDARY_MAX) {
            ota_detail_set(det, "Content-Type \"%.80s\": a boundary of %zu characters (1 to %u)",
                           content_type, vlen, OTA_MULTIPART_BOUNDARY_MAX);
            return OTA_ERR_HTTP_FRAMING;
        }
        for (size_t i = 0; i < vlen; i++) {
            if (!bchar(val[i]) || (i + 1 == vlen && val[i] == ' ')) {
                ota_detail_set(det,
                               "Content-Type \"%.80s\": a character not allowed in a "
                               "boundary",
                               content_type);
                return OTA_ERR_HTTP_FRAMING;
            }
        }
        memcpy(out, val, vlen);
        out[vlen] = '\0';
        found = true;
    }
    if (!found) {
        ota_detail_set(det, "Content-Type \"%.80s\": no boundary parameter", content_type);
        return OTA_ERR_HTTP_FRAMING;
    }
    return 0;
}

int ota_multipart_boundary(char out[OTA_MULTIPART_BOUNDARY_MAX + 1], const char *content_type,
                           struct ota_detail *det)
{
    int rc = boundary(out, content_type, det);

    if (rc != 0)
        memset(out, 0, OTA_MULTIPART_BOUNDARY_MAX + 1);
    return rc;
}

int ota_multipart_init(struct ota_multipart *m, const char *boundary, uint32_t max_parts,
                       ota_multipart_part_fn on_part, ota_multipart_data_fn on_data, void *ctx)
{
    size_t n = boundary != NULL ? strlen(boundary) : 0;

    memset(m, 0, sizeof(*m));
    m->state = OTA_MP_FAILED;
    if (n == 0 || n > OTA_MULTIPART_BOUNDARY_MAX || max_parts == 0)
        return OTA_ERR_INVALID_ARG;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->delim_len = n + 4;
    m->max_parts = max_parts;
    m->on_part = on_part;
    m->on_data = on_data;
    m->ctx = ctx;
    m->state = OTA_MP_PREAMBLE;
    return 0;
}

uint32_t ota_multipart_parts(const struct ota_multipart *m)
{
    return m->parts;
}

static int fail(struct ota_multipart *m, struct ota_detail *det, const char *fmt, const char *what)
{
    ota_detail_set(det, "multipart/byteranges answer, byte %" PRIu64 ": %s%s", m->offset, fmt,
                   what != NULL ? what : "");
    m->state = OTA_MP_FAILED;
    return OTA_ERR_HTTP_FRAMING;
}

/* The line in m->line (CRLF removed) is "--boundary" with padding:
 * 1; the closing "--boundary--" (anything after): 2; else 0. */
static int delimiter_line(const struct ota_multipart *m)
{
    size_t b = m->delim_len - 2; /* "--" boundary */
    size_t i;

    if (m->line_len < b || memcmp(m->line, m->delim + 2, b) != 0)
        return 0;
    if (m->line_len >= b + 2 && m->line[b] == '-' && m->line[b + 1] == '-')
        return 2;
    for (i = b; i < m->line_len; i++)
        if (!is_ows(m->line[i]))
            return 0;
    return 1;
}

/* A complete header line of a part (m->line, CRLF removed). */
static int header_line(struct ota_multipart *m, struct ota_detail *det)
{
    const char *colon = memchr(m->line, ':', m->line_len);
    size_t nlen;
    int rc;

    if (m->line_len > 0 && is_ows(m->line[0]))
        return fail(m, det, "a folded header line", NULL);
    if (colon == NULL || colon == m->line)
        return fail(m, det, "a part header without a name and ':'", NULL);
    nlen = (size_t)(colon - m->line);
    for (size_t i = 0; i < nlen; i++)
        if (!tchar(m->line[i]))
            return fail(m, det, "a part header name with a character not allowed", NULL);
    if (!word_eq(m->line, nlen, "content-range"))
        return 0;
    if (m->have_range)
        return fail(m, det, "a part with two Content-Range headers", NULL);
    rc = ota_content_range_parse(&m->range, colon + 1, m->line_len - nlen - 1, det);
    if (rc != 0) {
        char why[OTA_DETAIL_LEN];

        memcpy(why, det != NULL ? det->msg : "", det != NULL ? sizeof(why) : 1);
        why[sizeof(why) - 1] = '\0';
        return fail(m, det, "", det != NULL ? why : "a malformed Content-Range");
    }
    m->have_range = 1;
    return 0;
}

/* The empty line after a part's headers. */
static int part_start(struct ota_multipart *m, struct ota_detail *det)
{
    int rc;

    if (!m->have_range)
        return fail(m, det, "a part without a Content-Range header", NULL);
    if (m->parts >= m->max_parts)
        return fail(m, det, "more parts than ranges asked for", NULL);
    m->parts++;
    m->left = m->range.last - m->range.first + 1;
    m->state = OTA_MP_BODY;
    rc = m->on_part != NULL ? m->on_part(m->ctx, &m->range) : 0;
    if (rc != 0)
        m->state = OTA_MP_FAILED;
    return rc;
}

/* One byte of framing in PREAMBLE or HEADERS, collected into lines. */
static int framing_byte(struct ota_multipart *m, char c, struct ota_detail *det)
{
    int kind;

    if (++m->block > OTA_MULTIPART_BLOCK_MAX)
        return fail(m, det,
                    m->state == OTA_MP_PREAMBLE ? "a preamble too long" : "part headers too long",
                    NULL);
    if (c != '\n') {
        if (m->line_len >= sizeof(m->line))
            return fail(m, det, "a line too long", NULL);
        m->line[m->line_len++] = c;
        return 0;
    }
    if (m->line_len == 0 || m->line[m->line_len - 1] != '\r')
        return fail(m, det, "a line that does not end in CRLF", NULL);
    m->line_len--;
    if (m->state == OTA_MP_PREAMBLE) {
        kind = delimiter_line(m);
        m->line_len = 0;
        if (kind == 2)
            return fail(m, det, "the closing boundary before any part", NULL);
        if (kind == 1) {
            m->state = OTA_MP_HEADERS;
            m->block = 0;
            m->have_range = 0;
        }
        return 0;
    }
    if (m->line_len == 0)
        return part_start(m, det);
    kind = header_line(m, det);
    m->line_len = 0;
    return kind;
}

int ota_multipart_feed(struct ota_multipart *m, const void *data, size_t len,
                       struct ota_detail *det)
{
    const uint8_t *p = data;
    size_t i = 0;
    int rc;

    if (m->state == OTA_MP_FAILED) {
        ota_detail_set(det, "multipart/byteranges answer: fed after an error");
        return OTA_ERR_HTTP_FRAMING;
    }
    while (i < len) {
        char c = (char)p[i];

        switch (m->state) {
        case OTA_MP_PREAMBLE:
        case OTA_MP_HEADERS:
            rc = framing_byte(m, c, det);
            if (rc != 0) {
                m->state = OTA_MP_FAILED;
                return rc;
            }
            i++;
            m->offset++;
            break;
        case OTA_MP_BODY: {
            size_t n = len - i;

            if ((uint64_t)n > m->left)
                n = (size_t)m->left;
            rc = m->on_data != NULL ? m->on_data(m->ctx, p + i, n) : 0;
            if (rc != 0) {
                m->state = OTA_MP_FAILED;
                return rc;
            }
            m->left -= n;
            i += n;
            m->offset += n;
            if (m->left == 0) {
                m->state = OTA_MP_AFTER_BODY;
                m->matched = 0;
            }
            break;
        }
        case OTA_MP_AFTER_BODY:
            if (c != m->delim[m->matched])
                return fail(m, det, "a part's bytes are not followed by CRLF and the boundary",
                            NULL);
            i++;
            m->offset++;
            if (++m->matched == m->delim_len) {
                m->state = OTA_MP_BOUNDARY_END;
                m->dashes = 0;
                m->padding = 0;
            }
            break;
        case OTA_MP_BOUNDARY_END:
            i++;
            m->offset++;
            if (m->padding == 2) { /* CR seen */
                if (c != '\n')
                    return fail(m, det, "a boundary line that does not end in CRLF", NULL);
                m->state = OTA_MP_HEADERS;
                m->block = 0;
                m->line_len = 0;
                m->have_range = 0;
            } else if (c == '-' && m->padding == 0) {
                if (++m->dashes == 2) {
                    m->state = OTA_MP_EPILOGUE;
                    m->block = 0;
                }
            } else if (m->dashes != 0) {
                return fail(m, det, "a boundary followed by a single '-'", NULL);
            } else if (is_ows(c)) {
                m->padding = 1;
                if (++m->block > OTA_MULTIPART_LINE_MAX)
                    return fail(m, det, "a boundary line too long", NULL);
            } else if (c == '\r') {
                m->padding = 2;
            } else {
                return fail(m, det, "junk after a boundary", NULL);
            }
            break;
        case OTA_MP_EPILOGUE: {
            size_t n = len - i;

            if (m->block + n > OTA_MULTIPART_BLOCK_MAX)
                return fail(m, det, "more than 4096 bytes after the closing boundary", NULL);
            m->block += n;
            m->offset += n;
            i = len;
            break;
        }
        case OTA_MP_FAILED:
        default:
            return OTA_ERR_HTTP_FRAMING;
        }
    }
    return 0;
}

int ota_multipart_finish(struct ota_multipart *m, struct ota_detail *det)
{
    switch (m->state) {
    case OTA_MP_EPILOGUE:
        return 0;
    case OTA_MP_FAILED:
        ota_detail_set(det, "multipart/byteranges answer: finished after an error");
        return OTA_ERR_HTTP_FRAMING;
    case OTA_MP_BODY:
        ota_detail_set(det,
                       "multipart/byteranges answer ended inside part %" PRIu32 " (bytes %" PRIu64
                       "-%" PRIu64 "), %" PRIu64 " of its bytes missing",
                       m->parts, m->range.first, m->range.last, m->left);
        return OTA_ERR_TRUNCATED;
    default:
        ota_detail_set(det,
                       "multipart/byteranges answer ended after %" PRIu32
                       " part(s) without its closing boundary",
                       m->parts);
        return OTA_ERR_TRUNCATED;
    }
}
