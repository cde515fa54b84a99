/* The ledger's entry record; format in docs/formats/ledger.md. */
#include "otachain/ledger_entry.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char header[] = "otachain-ledger-entry/v1\n";

int ota_ledger_entry_of_file(struct ota_ledger_entry *out, enum ota_tuf_role role, uint64_t version,
                             const void *file, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (role == OTA_TUF_TIMESTAMP || (int)role < 0 || (int)role >= OTA_TUF_ROLE_COUNT ||
        version == 0 || version > OTA_LEDGER_VERSION_MAX || (file == NULL && len > 0))
        return OTA_ERR_INVALID_ARG;
    int rc = ota_sha256(out->sha256, len ? file : "", len);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    out->role = role;
    out->version = version;
    out->length = (uint64_t)len;
    return 0;
}

int ota_ledger_entry_format(uint8_t out[OTA_LEDGER_ENTRY_MAX], size_t *out_len,
                            const struct ota_ledger_entry *e)
{
    *out_len = 0;
    if (e->role == OTA_TUF_TIMESTAMP || (int)e->role < 0 || (int)e->role >= OTA_TUF_ROLE_COUNT ||
        e->version == 0 || e->version > OTA_LEDGER_VERSION_MAX)
        return OTA_ERR_INVALID_ARG;
    char hex[OTA_SHA256_HEX_LEN + 1];
    ota_hex_encode(hex, e->sha256, OTA_SHA256_LEN);
    int n = snprintf((char *)out, OTA_LEDGER_ENTRY_MAX,
                     "%srole %s\nversion %llu\nlength %llu\nsha256 %s\n", header,
                     ota_tuf_role_name(e->role), (unsigned long long)e->version,
                     (unsigned long long)e->length, hex);
    if (n < 0 || (size_t)n >= OTA_LEDGER_ENTRY_MAX)
        return OTA_ERR_TOO_LARGE;
    *out_len = (size_t)n;
    return 0;
}

/* Consumes "<key> " + rest of the line (without its '\n') from *p. */
static bool take_line(const char **p, const char *end, const char *key, const char **val,
                      size_t *val_len)
{
    size_t klen = strlen(key);
    if ((size_t)(end - *p) < klen + 1 || memcmp(*p, key, klen) != 0 || (*p)[klen] != ' ')
        return false;
    const char *v = *p + klen + 1;
    const char *nl = memchr(v, '\n', (size_t)(end - v));
    if (nl == NULL)
        return false;
    *val = v;
    *val_len = (size_t)(nl - v);
    *p = nl + 1;
    return true;
}

/* Canonical decimal: 1..20 digits, no leading zero (except "0" itself). */
static bool parse_decimal(uint64_t *out, const char *s, size_t n)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int ota_ledger_entry_parse(struct ota_ledger_entry *out, const void *data, size_t len,
                           struct ota_detail *det)
{
    memset(out, 0, sizeof(*out));
    if (len > OTA_LEDGER_ENTRY_MAX) {
        ota_detail_set(det, "ledger entry: %zu bytes, at most %d allowed", len,
                       OTA_LEDGER_ENTRY_MAX);
        return OTA_ERR_TOO_LARGE;
    }
    const char *p = data, *end = p + len;
    size_t hlen = sizeof(header) - 1;
    if (len < hlen || memcmp(p, header, hlen) != 0) {
        ota_detail_set(det, "ledger entry: first line is not \"otachain-ledger-entry/v1\"");
        return OTA_ERR_FORMAT;
    }
    p += hlen;

    struct ota_ledger_entry e = {0};
    const char *v;
    size_t vn;
    if (!take_line(&p, end, "role", &v, &vn)) {
        ota_detail_set(det, "ledger entry: line 2 is not \"role <role>\"");
        return OTA_ERR_FORMAT;
    }
    if (vn == 4 && memcmp(v, "root", 4) == 0)
        e.role = OTA_TUF_ROOT;
    else if (vn == 7 && memcmp(v, "targets", 7) == 0)
        e.role = OTA_TUF_TARGETS;
    else if (vn == 8 && memcmp(v, "snapshot", 8) == 0)
        e.role = OTA_TUF_SNAPSHOT;
    else {
        ota_detail_set(det, "ledger entry: role is not root, targets or snapshot");
        return OTA_ERR_FORMAT;
    }
    if (!take_line(&p, end, "version", &v, &vn) || !parse_decimal(&e.version, v, vn) ||
        e.version == 0 || e.version > OTA_LEDGER_VERSION_MAX) {
        ota_detail_set(det, "ledger entry: line 3 is not \"version <1..2^63-1>\"");
        return OTA_ERR_FORMAT;
    }
    if (!take_line(&p, end, "length", &v, &vn) || !parse_decimal(&e.length, v, vn)) {
        ota_detail_set(det, "ledger entry: line 4 is not \"length <decimal>\"");
        return OTA_ERR_FORMAT;
    }
    bool hex_ok = take_line(&p, end, "sha256", &v, &vn) && vn == OTA_SHA256_HEX_LEN;
    for (size_t i = 0; hex_ok && i < vn; i++)
        hex_ok = (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f');
    char hex[OTA_SHA256_HEX_LEN + 1] = {0};
    if (hex_ok)
        memcpy(hex, v, OTA_SHA256_HEX_LEN);
    if (!hex_ok || ota_hex_decode(e.sha256, OTA_SHA256_LEN, hex) != 0) {
        ota_detail_set(det, "ledger entry: line 5 is not \"sha256 <64 lowercase hex>\"");
        return OTA_ERR_FORMAT;
    }
    if (p != end) {
        ota_detail_set(det, "ledger entry: %zu bytes after the last line", (size_t)(end - p));
        return OTA_ERR_FORMAT;
    }
    *out = e;
    return 0;
}

int ota_ledger_entry_leaf(uint8_t out[OTA_SHA256_LEN], const struct ota_ledger_entry *e)
{
    uint8_t buf[1 + OTA_LEDGER_ENTRY_MAX];
    size_t n;
    buf[0] = 0x00;
    int rc = ota_ledger_entry_format(buf + 1, &n, e);
    if (rc != 0) {
        memset(out, 0, OTA_SHA256_LEN);
        return rc;
    }
    return ota_sha256(out, buf, n + 1);
}
