/* One-line text escaping (see otachain/escape.h). */
#include "otachain/escape.h"

#include <string.h>

static size_t escaped_len(unsigned char c)
{
    if (c >= 0x20 && c <= 0x7e)
        return 1;
    return c == '\n' || c == '\r' || c == '\t' ? 2 : 4;
}

size_t ota_escape(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t need = 1;
    size_t room;
    size_t o = 0;
    size_t i;

    if (out == NULL || cap < 4)
        return 0;
    for (i = 0; i < len && need <= cap; i++)
        need += escaped_len((unsigned char)s[i]);
    /* What does not fit whole ends in "...": keep room for it. */
    room = need <= cap ? cap - 1 : cap - 4;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t n = escaped_len(c);

        if (o + n > room)
            break;
        if (n == 1) {
            out[o++] = (char)c;
        } else if (n == 2) {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return o;
}

int ota_escape_clean(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (escaped_len((unsigned char)s[i]) != 1)
            return 0;
    }
    return 1;
}
