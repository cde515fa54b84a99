/* HTTP byte-range answers (RFC 9110 §14.4 Content-Range, §14.6
 * multipart/byteranges; RFC 2046 §5.1.1 boundaries): a parser for hostile
 * input, kept apart from the transfer code (STYLE rule 12) and fed by it.
 *
 * A mirror's answer to a Range request is untrusted framing around
 * untrusted bytes: the parser only checks the framing and says which
 * bytes belong to which range; the caller checks that the ranges are the
 * ones it asked for and verifies the bytes themselves.
 *
 * Stream grammar accepted (CRLF line ends only; caps on every line):
 *
 *   body      = [preamble] first-delim 1*part close [epilogue]
 *   first-delim = "--" boundary padding CRLF   (at the start of the body,
 *                 or after CRLF ending a preamble line)
 *   part      = *header-line CRLF <exactly last-first+1 bytes>
 *               CRLF "--" boundary (padding CRLF part | "--" ...)
 *   close     = "--" after the boundary; whatever follows is epilogue
 *   padding   = *(SP / HTAB)
 *
 * Each part has exactly one Content-Range header ("bytes first-last/total",
 * total "*" when unknown); other headers (Content-Type) are skipped. State
 * machine:
 *
 *   PREAMBLE --delimiter--> HEADERS --empty line--> BODY --n bytes-->
 *   AFTER_BODY --CRLF "--" boundary--> BOUNDARY_END --CRLF--> HEADERS
 *                                                   \--"--"--> EPILOGUE
 *
 * Invariants: a part's data callback receives exactly the bytes its
 * Content-Range announces, after its part callback and before the next
 * part's; nothing is delivered after an error; the parser never
 * allocates (its state is the struct).
 */
#ifndef OTACHAIN_MULTIPART_H
#define OTACHAIN_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "otachain/err.h"

/* RFC 2046: a boundary is 1 to 70 characters. */
#define OTA_MULTIPART_BOUNDARY_MAX 70u
/* Longest line of framing (a part header, a preamble line) and most bytes
 * of preamble, epilogue and headers of one part. */
#define OTA_MULTIPART_LINE_MAX  1024u
#define OTA_MULTIPART_BLOCK_MAX 4096u

/* "Content-Range: bytes first-last/total": total is UINT64_MAX for "*". */
struct ota_byte_range {
    uint64_t first;
    uint64_t last; /* inclusive, >= first */
    uint64_t total;
};

/* Parses the value of a Content-Range header (len bytes, no NUL needed;
 * leading and trailing spaces and tabs allowed): "bytes F-L/T", T a
 * number or "*", F <= L < T, numbers below 2^63. OTA_ERR_HTTP_FRAMING
 * with det naming the fault otherwise (an unsatisfied range, "bytes *"
 * then "/T", too). */
OTA_WUR int ota_content_range_parse(struct ota_byte_range *out, const char *value, size_t len,
                                    struct ota_detail *det);

/* The boundary of a Content-Type header value: "multipart/byteranges"
 * (case-insensitive) with a boundary parameter, token or quoted-string,
 * of 1 to 70 characters of RFC 2046's bchars (not ending in a space), into
 * out (NUL-terminated). OTA_ERR_HTTP_FRAMING otherwise. */
OTA_WUR int ota_multipart_boundary(char out[OTA_MULTIPART_BOUNDARY_MAX + 1],
                                   const char *content_type, struct ota_detail *det);

/* Callbacks: a non-zero return (a negative ota_err) stops the parse and
 * is returned by ota_multipart_feed. */
typedef int (*ota_multipart_part_fn)(void *ctx, const struct ota_byte_range *range);
typedef int (*ota_multipart_data_fn)(void *ctx, const uint8_t *data, size_t len);

enum ota_multipart_state {
    OTA_MP_PREAMBLE,
    OTA_MP_HEADERS,
    OTA_MP_BODY,
    OTA_MP_AFTER_BODY,
    OTA_MP_BOUNDARY_END,
    OTA_MP_EPILOGUE,
    OTA_MP_FAILED,
};

/* Parser state: caller-owned, no allocation. Fields are private. */
struct ota_multipart {
    enum ota_multipart_state state;
    char delim[OTA_MULTIPART_BOUNDARY_MAX + 5]; /* CRLF "--" boundary */
    size_t delim_len;
    char line[OTA_MULTIPART_LINE_MAX];
    size_t line_len;
    size_t block;   /* framing bytes of the current block (preamble, headers, epilogue) */
    size_t matched; /* AFTER_BODY: bytes of delim matched */
    int dashes;     /* BOUNDARY_END: '-' seen right after the boundary */
    int padding;    /* BOUNDARY_END: padding seen, CR expected next, or 2 after CR */
    uint32_t parts;
    uint32_t max_parts;
    int have_range; /* HEADERS: a Content-Range was seen */
    struct ota_byte_range range;
    uint64_t left;   /* BODY: bytes of the part still to come */
    uint64_t offset; /* bytes fed so far (for messages) */
    ota_multipart_part_fn on_part;
    ota_multipart_data_fn on_data;
    void *ctx;
};

/* Starts a parse for boundary (from ota_multipart_boundary) accepting at
 * most max_parts parts (>= 1). OTA_ERR_INVALID_ARG for a boundary that is
 * not 1 to 70 characters or max_parts 0. */
OTA_WUR int ota_multipart_init(struct ota_multipart *m, const char *boundary, uint32_t max_parts,
                               ota_multipart_part_fn on_part, ota_multipart_data_fn on_data,
                               void *ctx);

/* Feeds the next len bytes of the body. 0, a callback's error, or
 * OTA_ERR_HTTP_FRAMING (det says what and at which byte of the body);
 * after an error every call returns OTA_ERR_HTTP_FRAMING. */
OTA_WUR int ota_multipart_feed(struct ota_multipart *m, const void *data, size_t len,
                               struct ota_detail *det);

/* The body has ended: 0 if the closing delimiter was seen,
 * OTA_ERR_TRUNCATED if the body ended inside a part (det: which part, how
 * many of its bytes are missing) or before the closing delimiter,
 * OTA_ERR_HTTP_FRAMING after an earlier error. */
OTA_WUR int ota_multipart_finish(struct ota_multipart *m, struct ota_detail *det);

/* Parts begun so far. */
uint32_t ota_multipart_parts(const struct ota_multipart *m);

#endif
