/* The Range header of a file request (serve_range.h). */
#include "otachain/serve_range.h"

#include <stdbool.h>
#include <string.h>

/* Parses 1-19 decimal digits at *p; advances *p. */
static bool number(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    while (s < end && *s >= '0' && *s <= '9' && s - *p < 19) {
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s == *p || (s < end && *s >= '0' && *s <= '9'))
        return false;
    *p = s;
    *out = v;
    return true;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

enum ota_range_verdict ota_serve_range_parse(struct ota_range out[OTA_RANGE_MAX], size_t *n,
                                             const char *header, uint64_t length)
{
    const char *p;
    const char *end;
    size_t count = 0;
    size_t specs = 0;
    uint64_t total = 0;

    *n = 0;
    if (header == NULL)
        return OTA_RANGE_FULL;
    end = header + strnlen(header, OTA_RANGE_HEADER_MAX + 1);
    if (end - header > OTA_RANGE_HEADER_MAX || strncmp(header, "bytes=", 6) != 0)
        return OTA_RANGE_FULL;
    p = header + 6;
    for (;;) {
        uint64_t a = 0;
        uint64_t b = 0;
        bool suffix = false;
        bool open = false;

        p = skip_ows(p, end);
        if (p < end && *p == '-') {
            p++;
            suffix = true;
            if (!number(&p, end, &b))
                return OTA_RANGE_FULL;
        } else {
            if (!number(&p, end, &a) || p >= end || *p != '-')
                return OTA_RANGE_FULL;
            p++;
            if (p < end && *p >= '0' && *p <= '9') {
                if (!number(&p, end, &b) || b < a)
                    return OTA_RANGE_FULL;
            } else {
                open = true;
            }
        }
        if (++specs > OTA_RANGE_MAX)
            return OTA_RANGE_FULL;
        /* Satisfiable ones are kept, clamped to the file. */
        if (suffix) {
            if (b > 0 && length > 0) {
                out[count].first = b >= length ? 0 : length - b;
                out[count].last = length - 1;
                count++;
            }
        } else if (a < length) {
            out[count].first = a;
            out[count].last = open || b >= length ? length - 1 : b;
            count++;
        }
        if (count > 0) {
            total += out[count - 1].last - out[count - 1].first + 1;
            if (total > 2 * length + 1024) {
                count = 0;
                return OTA_RANGE_FULL;
            }
        }
        p = skip_ows(p, end);
        if (p == end)
            break;
        if (*p != ',')
            return OTA_RANGE_FULL;
        p++;
    }
    if (count == 0)
        return OTA_RANGE_UNSATISFIABLE;
    *n = count;
    return OTA_RANGE_PARTIAL;
}
