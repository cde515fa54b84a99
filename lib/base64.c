/* Canonical standard base64 (see otachain/base64.h).
 *
 * Symbols are mapped without table look-ups or data-dependent branches,
 * because the same decoder reads secret key strings (note signer keys);
 * only the padding, which depends on the length alone, is branched on.
 */
#include "otachain/base64.h"

#include <string.h>

#include "otachain/crypto.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ota_base64_encode(char *out, const uint8_t *in, size_t n)
{
    size_t i;
    size_t o = 0;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];

        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);

        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* All ones when lo <= c <= hi, else zero (all values below 2^16). */
static uint32_t in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
    uint32_t outside = ((c - lo) >> 31) | ((hi - c) >> 31);

    return (outside ^ 1u) * 0xffffffffu;
}

/* The 6-bit value of a symbol, or 0x100 for a character outside the
 * alphabet ('=' included). */
static uint32_t sym_val(uint8_t ch)
{
    uint32_t c = ch;
    uint32_t v = 0;
    uint32_t ok = 0;
    uint32_t m;

    m = in_range(c, 'A', 'Z');
    v |= m & (c - 'A');
    ok |= m;
    m = in_range(c, 'a', 'z');
    v |= m & (c - 'a' + 26);
    ok |= m;
    m = in_range(c, '0', '9');
    v |= m & (c - '0' + 52);
    ok |= m;
    m = in_range(c, '+', '+');
    v |= m & 62u;
    ok |= m;
    m = in_range(c, '/', '/');
    v |= m & 63u;
    ok |= m;
    return (v & ok) | (~ok & 0x100u);
}

int ota_base64_decode(uint8_t *out, size_t out_max, size_t *out_len, const char *text,
                      size_t text_len)
{
    const uint8_t *t = (const uint8_t *)text;
    size_t pad = 0;
    size_t need;
    size_t full;
    size_t i;
    size_t o = 0;
    uint32_t bad = 0;

    if (out_len != NULL)
        *out_len = 0;
    if (out_len == NULL || (out == NULL && out_max > 0) || (text == NULL && text_len > 0)) {
        if (out != NULL)
            ota_wipe(out, out_max);
        return OTA_ERR_INVALID_ARG;
    }
    if (text_len % 4 != 0)
        goto format;
    if (text_len > 0 && t[text_len - 1] == '=') {
        pad = 1;
        if (t[text_len - 2] == '=')
            pad = 2;
    }
    need = text_len / 4 * 3 - pad;
    if (need > out_max) {
        if (out != NULL)
            ota_wipe(out, out_max);
        return OTA_ERR_TOO_LARGE;
    }
    /* Quads without padding: every character must be a symbol. */
    full = pad > 0 ? text_len - 4 : text_len;
    for (i = 0; i < full; i += 4) {
        uint32_t a = sym_val(t[i]);
        uint32_t b = sym_val(t[i + 1]);
        uint32_t c = sym_val(t[i + 2]);
        uint32_t d = sym_val(t[i + 3]);
        uint32_t v = ((a & 63) << 18) | ((b & 63) << 12) | ((c & 63) << 6) | (d & 63);

        bad |= (a | b | c | d) & 0x100u;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (pad > 0) {
        uint32_t a = sym_val(t[i]);
        uint32_t b = sym_val(t[i + 1]);

        bad |= (a | b) & 0x100u;
        out[o++] = (uint8_t)(((a & 63) << 2) | ((b & 63) >> 4));
        if (pad == 1) {
            uint32_t c = sym_val(t[i + 2]);

            bad |= c & 0x100u;
            out[o++] = (uint8_t)(((b & 63) << 4) | ((c & 63) >> 2));
            bad |= (c & 0x03u) != 0; /* unused bits must be zero */
        } else {
            bad |= (b & 0x0fu) != 0;
        }
    }
    if (bad != 0)
        goto format;
    *out_len = o;
    return 0;
format:
    if (out != NULL)
        ota_wipe(out, out_max);
    return OTA_ERR_FORMAT;
}
