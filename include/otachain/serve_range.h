/* The Range header of a request to a file server (RFC 9110 §14.2), as
 * otachain-server parses it for the public repository layout and the
 * device API's downloads. Hostile input: strict, capped, fuzzed
 * (fuzz/fuzz_serve_range.c). The client side (Content-Range and
 * multipart answers) is another module.
 *
 * Accepted: "bytes=" then a comma-separated list (optional spaces and
 * tabs around the commas) of "A-B", "A-" and "-N" (A, B, N decimal, at
 * most 19 digits). As RFC 9110 allows, a header the server does not
 * understand is ignored (the whole file is sent), and so is one that
 * would make it send more than twice the file (overlapping ranges used
 * to amplify) or more than OTA_RANGE_MAX ranges (like nginx's
 * max_ranges).
 */
#ifndef OTACHAIN_SERVE_RANGE_H
#define OTACHAIN_SERVE_RANGE_H

#include <stddef.h>
#include <stdint.h>

#define OTA_RANGE_MAX        64   /* ranges honoured in one request */
#define OTA_RANGE_HEADER_MAX 4096 /* longer headers are ignored */

/* One satisfiable range: bytes first..last inclusive, last < length. */
struct ota_range {
    uint64_t first;
    uint64_t last;
};

enum ota_range_verdict {
    OTA_RANGE_FULL = 0,          /* no usable header: send 200 and the whole file */
    OTA_RANGE_PARTIAL = 1,       /* send 206 with out[0..*n) */
    OTA_RANGE_UNSATISFIABLE = 2, /* send 416 with Content-Range: bytes * / length */
};

/* Judges header (NULL: none) against a file of length bytes. With
 * PARTIAL, out[0..*n) are the satisfiable ranges in request order,
 * clamped to the file (1 <= *n <= OTA_RANGE_MAX); otherwise *n = 0. */
enum ota_range_verdict ota_serve_range_parse(struct ota_range out[OTA_RANGE_MAX], size_t *n,
                                             const char *header, uint64_t length);

#endif
