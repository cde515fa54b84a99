/* Releases, SemVer 2.0.0 and the install verdict (see otachain/release.h).
 *
 * SemVer precedence (semver.org 2.0.0, item 11): compare MAJOR, MINOR,
 * PATCH numerically; a version with a pre-release has lower precedence
 * than the same core without; pre-release identifiers compare left to
 * right, numeric ones numerically, others in ASCII order, numeric below
 * non-numeric, and a longer list wins when one is a prefix of the other.
 * Build metadata is ignored. Numbers are compared as digit strings (no
 * leading zeros: the longer one is larger, else memcmp), so no size limit
 * and no overflow.
 */
#include "otachain/release.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/escape.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum_dash(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
}

/* ------------------------------------------------------------ SemVer */

/* One dot-separated identifier list s[0..len): non-empty identifiers of
 * [0-9A-Za-z-]; numeric ones without a leading zero when strict_numeric
 * (pre-release; build metadata allows "001"). */
static bool idents_ok(const char *s, size_t len, bool strict_numeric)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (!is_alnum_dash(s[i]))
                return false;
            continue;
        }
        if (i == start)
            return false; /* empty identifier */
        if (strict_numeric && i - start > 1 && s[start] == '0') {
            bool numeric = true;

            for (size_t j = start; j < i; j++)
                numeric = numeric && is_digit(s[j]);
            if (numeric)
                return false;
        }
        start = i + 1;
    }
    return true;
}

/* A numeric core field at s[*i]: "0" or [1-9][0-9]*. */
static bool core_num(const char *s, size_t len, size_t *i)
{
    size_t b = *i;

    if (b >= len || !is_digit(s[b]))
        return false;
    if (s[b] == '0' && b + 1 < len && is_digit(s[b + 1]))
        return false;
    while (*i < len && is_digit(s[*i]))
        (*i)++;
    return true;
}

int ota_semver_parse(struct ota_semver *out, const char *s, size_t len, struct ota_detail *det)
{
    char shown[OTA_ESCAPE_MAX(40)];
    const char *why = NULL;
    size_t i = 0;
    size_t end;

    memset(out, 0, sizeof(*out));
    ota_escape(shown, sizeof(shown), s != NULL ? s : "", s != NULL ? len : 0);
    if (s == NULL || len == 0) {
        why = "empty";
    } else if (len > OTA_SEMVER_MAX_LEN) {
        why = "longer than 128 bytes";
    } else if (memchr(s, '\0', len) != NULL) {
        why = "contains a NUL byte";
    } else if (!core_num(s, len, &i) || i >= len || s[i++] != '.' || !core_num(s, len, &i) ||
               i >= len || s[i++] != '.' || !core_num(s, len, &i)) {
        why = "MAJOR.MINOR.PATCH must be three numbers without leading zeros";
    }
    if (why == NULL) {
        out->core_len = i;
        if (i < len && s[i] == '-') {
            const char *plus = memchr(s + i + 1, '+', len - i - 1);

            end = plus != NULL ? (size_t)(plus - s) : len;
            if (!idents_ok(s + i + 1, end - i - 1, true))
                why = "the pre-release must be dot-separated identifiers of [0-9A-Za-z-], "
                      "none empty, numeric ones without leading zeros";
            out->pre_off = i + 1;
            out->pre_len = end - i - 1;
            i = end;
        }
    }
    if (why == NULL && i < len && s[i] == '+') {
        if (!idents_ok(s + i + 1, len - i - 1, false))
            why = "the build metadata must be dot-separated identifiers of [0-9A-Za-z-], "
                  "none empty";
        out->build_off = i + 1;
        out->build_len = len - i - 1;
        i = len;
    }
    if (why == NULL && i != len)
        why = "MAJOR.MINOR.PATCH may only be followed by -PRERELEASE and/or +BUILD";
    if (why != NULL) {
        memset(out, 0, sizeof(*out));
        ota_detail_set(det, "version '%s': %s", shown, why);
        return OTA_ERR_SEMVER;
    }
    memcpy(out->text, s, len);
    out->text[len] = '\0';
    out->len = len;
    return 0;
}

/* Compares two runs of digits without leading zeros numerically. */
static int cmp_digits(const char *a, size_t alen, const char *b, size_t blen)
{
    int c;

    if (alen != blen)
        return alen < blen ? -1 : 1;
    c = memcmp(a, b, alen);
    return c < 0 ? -1 : c > 0;
}

/* Compares a numeric ("3") or alphanumeric identifier. */
static int cmp_ident(const char *a, size_t alen, const char *b, size_t blen)
{
    bool an = true, bn = true;
    int c;

    for (size_t i = 0; i < alen; i++)
        an = an && is_digit(a[i]);
    for (size_t i = 0; i < blen; i++)
        bn = bn && is_digit(b[i]);
    if (an && bn)
        return cmp_digits(a, alen, b, blen);
    if (an != bn)
        return an ? -1 : 1; /* numeric < alphanumeric */
    c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return alen == blen ? 0 : alen < blen ? -1 : 1;
}

/* The length of the identifier at s[0..len) up to '.' or the end. */
static size_t ident_len(const char *s, size_t len)
{
    const char *dot = memchr(s, '.', len);

    return dot != NULL ? (size_t)(dot - s) : len;
}

int ota_semver_compare(const struct ota_semver *a, const struct ota_semver *b)
{
    const char *pa = a->text, *pb = b->text;
    size_t la = a->core_len, lb = b->core_len;
    int c;

    /* The three core numbers. */
    for (int k = 0; k < 3; k++) {
        size_t na = ident_len(pa, la), nb = ident_len(pb, lb);

        c = cmp_digits(pa, na, pb, nb);
        if (c != 0)
            return c;
        if (k < 2) {
            pa += na + 1;
            la -= na + 1;
            pb += nb + 1;
            lb -= nb + 1;
        }
    }
    /* A pre-release is below the release itself. */
    if (a->pre_len == 0 || b->pre_len == 0)
        return a->pre_len == b->pre_len ? 0 : a->pre_len == 0 ? 1 : -1;
    pa = a->text + a->pre_off;
    la = a->pre_len;
    pb = b->text + b->pre_off;
    lb = b->pre_len;
    for (;;) {
        size_t na = ident_len(pa, la), nb = ident_len(pb, lb);

        c = cmp_ident(pa, na, pb, nb);
        if (c != 0)
            return c;
        if (na == la || nb == lb) /* one list ended: the longer one wins */
            return na == la && nb == lb ? 0 : na == la ? -1 : 1;
        pa += na + 1;
        la -= na + 1;
        pb += nb + 1;
        lb -= nb + 1;
    }
}

/* ------------------------------------------------------------ ids */

static bool id_char(char c, bool hardware)
{
    return is_alnum_dash(c) || c == '.' || c == '_' || (hardware && (c == '+' || c == ':'));
}

static int check_id(const char *s, size_t len, bool hardware, struct ota_detail *det)
{
    const char *what = hardware ? "hardware id" : "product";
    const char *form = hardware ? "1-64 characters of A-Z a-z 0-9 . _ - + :"
                                : "1-64 characters of A-Z a-z 0-9 . _ -, not . or ..";
    char shown[OTA_ESCAPE_MAX(OTA_RELEASE_MAX_ID + 1)];
    const char *why = NULL;
    char bad[24];
    size_t i;

    if (s == NULL)
        len = 0;
    if (len == 0) {
        why = "empty";
    } else if (len > OTA_RELEASE_MAX_ID) {
        why = "too long";
    } else if (!hardware && ((len == 1 && s[0] == '.') || (len == 2 && memcmp(s, "..", 2) == 0))) {
        why = "a path component of its own";
    } else {
        for (i = 0; i < len && id_char(s[i], hardware); i++)
            ;
        if (i < len) {
            unsigned char c = (unsigned char)s[i];

            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
                snprintf(bad, sizeof(bad), "whitespace at byte %zu", i + 1);
            else if (c >= 0x21 && c <= 0x7e)
                snprintf(bad, sizeof(bad), "'%c' at byte %zu", (char)c, i + 1);
            else
                snprintf(bad, sizeof(bad), "byte 0x%02x at %zu", c, i + 1);
            why = bad;
        }
    }
    if (why == NULL)
        return 0;
    /* The reason first: a long id must not push it off the line. */
    ota_escape(shown, sizeof(shown), s != NULL ? s : "", len);
    ota_detail_set(det, "%s '%s': %s; accepted: %s (nothing is trimmed)", what, shown, why, form);
    return OTA_ERR_RELEASE_ID;
}

int ota_release_check_product(const char *s, size_t len, struct ota_detail *det)
{
    return check_id(s, len, false, det);
}

int ota_release_check_hardware(const char *s, size_t len, struct ota_detail *det)
{
    return check_id(s, len, true, det);
}

int ota_release_add_hardware(struct ota_release *r, const char *s, size_t len,
                             struct ota_detail *det)
{
    int rc = ota_release_check_hardware(s, len, det);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r->nhardware; i++) {
        if (strlen(r->hardware[i]) == len && memcmp(r->hardware[i], s, len) == 0) {
            ota_detail_set(det, "hardware id '%s' is listed twice", r->hardware[i]);
            return OTA_ERR_RELEASE_ID;
        }
    }
    if (r->nhardware >= OTA_RELEASE_MAX_HWIDS) {
        ota_detail_set(det, "more than %d hardware ids", OTA_RELEASE_MAX_HWIDS);
        return OTA_ERR_HARDWARE_IDS;
    }
    memcpy(r->hardware[r->nhardware], s, len);
    r->hardware[r->nhardware][len] = '\0';
    r->nhardware++;
    return 0;
}

/* ------------------------------------------------------------ custom */

static int bad_member(const char *target, const char *member, const char *why,
                      struct ota_detail *det)
{
    ota_detail_set(det, "target %s: custom.%s %s", target, member, why);
    return OTA_ERR_RELEASE_FORMAT;
}

static int string_member(const char **s, size_t *len, const json_t *custom, const char *target,
                         const char *member, struct ota_detail *det)
{
    const json_t *v = json_object_get(custom, member);

    *s = NULL;
    *len = 0;
    if (v == NULL)
        return bad_member(target, member, "is missing", det);
    if (!json_is_string(v))
        return bad_member(target, member, "is not a string", det);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

static int read_custom(struct ota_release *out, const json_t *custom, const char *target,
                       struct ota_detail *det)
{
    const json_t *hw = json_object_get(custom, "hardware");
    const json_t *sv = json_object_get(custom, "security_version");
    const json_t *ix = json_object_get(custom, "index");
    const char *s;
    size_t len;
    int rc;

    if (!json_is_object(custom))
        return bad_member(target, "", "is missing: not a release (no product, version, ...)", det);
    rc = string_member(&s, &len, custom, target, "product", det);
    if (rc == 0)
        rc = ota_release_check_product(s, len, det);
    if (rc != 0)
        goto fail;
    memcpy(out->product, s, len);
    out->product[len] = '\0';

    if (hw == NULL || !json_is_array(hw) || json_array_size(hw) == 0)
        return bad_member(target, "hardware", "is not a non-empty array of hardware ids", det);
    if (json_array_size(hw) > OTA_RELEASE_MAX_HWIDS) {
        ota_detail_set(det, "target %s: custom.hardware names %zu hardware ids, at most %d", target,
                       json_array_size(hw), OTA_RELEASE_MAX_HWIDS);
        return OTA_ERR_HARDWARE_IDS;
    }
    for (size_t i = 0; i < json_array_size(hw); i++) {
        const json_t *h = json_array_get(hw, i);

        if (!json_is_string(h))
            return bad_member(target, "hardware", "holds something other than a string", det);
        rc = ota_release_add_hardware(out, json_string_value(h), json_string_length(h), det);
        if (rc != 0)
            goto fail;
    }

    rc = string_member(&s, &len, custom, target, "version", det);
    if (rc == 0)
        rc = ota_semver_parse(&out->version, s, len, det);
    if (rc != 0)
        goto fail;

    if (sv == NULL)
        return bad_member(target, "security_version", "is missing", det);
    if (!json_is_integer(sv) || json_integer_value(sv) < 0 ||
        (uint64_t)json_integer_value(sv) > OTA_RELEASE_MAX_SECVER)
        return bad_member(target, "security_version", "is not an integer from 0 to 2^53-1", det);
    out->security_version = (uint64_t)json_integer_value(sv);

    if (ix != NULL) {
        if (!json_is_string(ix) || json_string_length(ix) == 0 ||
            json_string_length(ix) > OTA_TUF_MAX_PATH ||
            !ota_escape_clean(json_string_value(ix), json_string_length(ix)))
            return bad_member(target, "index",
                              "is not a target path (1-1024 bytes of printable ASCII)", det);
        memcpy(out->index, json_string_value(ix), json_string_length(ix) + 1);
    }
    return 0;
fail:
    ota_detail_prefix(det, target);
    return rc;
}

int ota_release_from_target(struct ota_release *out, const struct ota_tuf_target *t,
                            struct ota_detail *det)
{
    char shown[OTA_ESCAPE_MAX(128)];
    int rc;

    memset(out, 0, sizeof(*out));
    if (t == NULL)
        return OTA_ERR_INVALID_ARG;
    ota_escape(shown, sizeof(shown), t->path != NULL ? t->path : "",
               t->path != NULL ? strlen(t->path) : 0);
    rc = read_custom(out, t->custom, shown, det);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int ota_release_to_custom(json_t **out, const struct ota_release *r, struct ota_detail *det)
{
    struct ota_tuf_target t = {.path = "(new release)", .length = 0, .sha256 = {0}, .custom = NULL};
    struct ota_release *check;
    json_t *hw = json_array();
    json_t *c = NULL;
    int rc = hw == NULL ? OTA_ERR_NOMEM : 0;

    *out = NULL;
    for (size_t i = 0; rc == 0 && i < r->nhardware; i++) {
        if (json_array_append_new(hw, json_string(r->hardware[i])) != 0)
            rc = OTA_ERR_NOMEM;
    }
    if (rc == 0) {
        c = json_pack("{s:s,s:O,s:s,s:I}", "product", r->product, "hardware", hw, "version",
                      r->version.text, "security_version", (json_int_t)r->security_version);
        if (c == NULL ||
            (r->index[0] != '\0' && json_object_set_new(c, "index", json_string(r->index)) != 0))
            rc = OTA_ERR_NOMEM;
    }
    json_decref(hw);
    /* What is written is what a device will read: check it the same way.
     * (The check is the authoring side's: it may allocate.) */
    check = rc == 0 ? malloc(sizeof(*check)) : NULL;
    if (rc == 0 && check == NULL)
        rc = OTA_ERR_NOMEM;
    if (rc == 0) {
        t.custom = c;
        rc = ota_release_from_target(check, &t, det);
    }
    free(check);
    if (rc != 0) {
        json_decref(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------ verdict */

int ota_release_may_install(const struct ota_release *r, const struct ota_release_device *dev,
                            struct ota_detail *det)
{
    char shown[OTA_ESCAPE_MAX(OTA_RELEASE_MAX_ID + 1)];
    bool hw = false;

    if (r == NULL || dev == NULL || dev->product == NULL || dev->hardware == NULL)
        return OTA_ERR_INVALID_ARG;
    if (strcmp(r->product, dev->product) != 0) {
        ota_escape(shown, sizeof(shown), dev->product, strnlen(dev->product, 65));
        ota_detail_set(det, "release %s %s is for product %s, this device is %s", r->product,
                       r->version.text, r->product, shown);
        return OTA_ERR_OTHER_PRODUCT;
    }
    for (size_t i = 0; i < r->nhardware && !hw; i++)
        hw = strcmp(r->hardware[i], dev->hardware) == 0;
    if (!hw) {
        ota_escape(shown, sizeof(shown), dev->hardware, strnlen(dev->hardware, 65));
        ota_detail_set(det,
                       "release %s %s lists %zu hardware id(s) (first: %s), not this board's %s",
                       r->product, r->version.text, r->nhardware, r->hardware[0], shown);
        return OTA_ERR_OTHER_HARDWARE;
    }
    if (r->security_version < dev->security_floor) {
        ota_detail_set(
            det, "release %s %s has security version %" PRIu64 ", the device's floor is %" PRIu64,
            r->product, r->version.text, r->security_version, dev->security_floor);
        return OTA_ERR_SECURITY_FLOOR;
    }
    if (dev->installed != NULL && ota_semver_compare(&r->version, dev->installed) <= 0) {
        ota_detail_set(det, "release %s %s is not newer than the installed %s", r->product,
                       r->version.text, dev->installed->text);
        return OTA_ERR_NOT_NEWER;
    }
    return 0;
}
