/* Error texts and names for enum ota_err, and the optional error detail.
 *
 * Contract: ota_strerror and ota_errname return static strings, never
 * NULL; an unknown code gets a generic text and the name "unknown". The
 * names are stable identifiers (scripts and tests match on them): never
 * rename one, only add. All three come from OTA_ERR_TABLE in err.h.
 */
#include "otachain/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define OTA_ERR_CODE_(sfx, val, name, text) OTA_ERR_##sfx,
const int ota_err_codes[] = {OTA_ERR_TABLE(OTA_ERR_CODE_)};
#undef OTA_ERR_CODE_
const unsigned ota_err_count = sizeof(ota_err_codes) / sizeof(ota_err_codes[0]);

const char *ota_strerror(int err)
{
    switch (err) {
    case OTA_OK:
        return "Success.";
#define OTA_ERR_TEXT_(sfx, val, name, text)                                                        \
    case OTA_ERR_##sfx:                                                                            \
        return text;
        OTA_ERR_TABLE(OTA_ERR_TEXT_)
#undef OTA_ERR_TEXT_
    }
    return "Unknown error code (a bug: the code is not an otachain error).";
}

const char *ota_errname(int err)
{
    switch (err) {
    case OTA_OK:
        return "ok";
#define OTA_ERR_NAME_(sfx, val, name, text)                                                        \
    case OTA_ERR_##sfx:                                                                            \
        return name;
        OTA_ERR_TABLE(OTA_ERR_NAME_)
#undef OTA_ERR_NAME_
    }
    return "unknown";
}

void ota_detail_set(struct ota_detail *det, const char *fmt, ...)
{
    va_list ap;

    if (det == NULL)
        return;
    va_start(ap, fmt);
    /* Truncation is accepted: the detail is advisory text. */
    if (vsnprintf(det->msg, sizeof(det->msg), fmt, ap) < 0)
        det->msg[0] = '\0';
    va_end(ap);
}

/* An empty message becomes just "prefix" (no dangling ": "). */
void ota_detail_prefix(struct ota_detail *det, const char *prefix)
{
    char tmp[OTA_DETAIL_LEN];
    size_t plen;
    size_t mlen;
    size_t room;

    if (det == NULL || prefix == NULL)
        return;
    /* Built with memcpy rather than snprintf("%s: %s") so that a message
     * that was never set (not NUL-terminated) cannot be over-read. */
    mlen = strnlen(det->msg, sizeof(det->msg) - 1);
    plen = strlen(prefix);
    room = sizeof(tmp) - 1;
    if (plen > room)
        plen = room;
    memcpy(tmp, prefix, plen);
    room -= plen;
    if (mlen > 0) {
        size_t seplen = room < 2 ? room : 2;

        memcpy(tmp + plen, ": ", seplen);
        plen += seplen;
        room -= seplen;
        if (mlen > room)
            mlen = room;
        memcpy(tmp + plen, det->msg, mlen);
        plen += mlen;
    }
    tmp[plen] = '\0';
    memcpy(det->msg, tmp, plen + 1);
}
