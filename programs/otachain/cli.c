/* Option parsing, error printing, exit codes and durations for the CLI. */
#include "cli.h"

#include "otachain/repo.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otachain/escape.h"
#include "otachain/tuf.h"

#define CLI_MAX_DURATION ((int64_t)100 * 365 * 86400)

static struct cli_opt *find_opt(struct cli_opt *opts, size_t nopts, const char *name, size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

int cli_parse(struct cli_opt *opts, size_t nopts, struct cli_args *args, size_t minpos,
              size_t maxpos, int argc, char **argv, struct ota_detail *det)
{
    bool only_pos = false;

    args->npos = 0;
    for (size_t i = 0; i < nopts; i++)
        opts[i].n = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            const char *name = a + 2;
            const char *eq;
            const char *val = NULL;
            struct cli_opt *o;

            if (a[1] != '-') {
                ota_detail_set(det, "unknown option '%s'", a);
                return CLI_ERR_USAGE;
            }
            eq = strchr(name, '=');
            o = find_opt(opts, nopts, name, eq != NULL ? (size_t)(eq - name) : strlen(name));
            if (o == NULL) {
                ota_detail_set(det, "unknown option '%s'", a);
                return CLI_ERR_USAGE;
            }
            if (o->flags & CLI_VAL) {
                if (eq != NULL) {
                    val = eq + 1;
                } else {
                    if (i + 1 >= argc) {
                        ota_detail_set(det, "option --%s needs a value", o->name);
                        return CLI_ERR_USAGE;
                    }
                    val = argv[++i];
                }
            } else if (eq != NULL) {
                ota_detail_set(det, "option --%s takes no value", o->name);
                return CLI_ERR_USAGE;
            }
            if (o->n > 0 && !(o->flags & CLI_MULTI)) {
                ota_detail_set(det, "option --%s given more than once", o->name);
                return CLI_ERR_USAGE;
            }
            if (o->n >= CLI_MAX_VALS) {
                ota_detail_set(det, "option --%s given more than %d times", o->name, CLI_MAX_VALS);
                return CLI_ERR_USAGE;
            }
            o->val[o->n++] = val;
            continue;
        }
        if (args->npos >= maxpos || args->npos >= CLI_MAX_POS) {
            ota_detail_set(det, "unexpected argument '%s'", a);
            return CLI_ERR_USAGE;
        }
        args->pos[args->npos++] = a;
    }
    if (args->npos < minpos) {
        ota_detail_set(det, "missing argument (%zu expected, %zu given)", minpos, args->npos);
        return CLI_ERR_USAGE;
    }
    for (size_t i = 0; i < nopts; i++) {
        if ((opts[i].flags & CLI_REQ) && opts[i].n == 0) {
            ota_detail_set(det, "missing option --%s", opts[i].name);
            return CLI_ERR_USAGE;
        }
    }
    return 0;
}

const char *cli_val(const struct cli_opt *o)
{
    return o->n > 0 ? o->val[0] : NULL;
}

int cli_parse_u64(uint64_t *out, const char *s, uint64_t max)
{
    uint64_t v = 0;

    *out = 0;
    if (s == NULL || s[0] == '\0' || strlen(s) > 20)
        return OTA_ERR_FORMAT;
    for (const char *p = s; *p != '\0'; p++) {
        unsigned d;

        if (*p < '0' || *p > '9')
            return OTA_ERR_FORMAT;
        d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return OTA_ERR_FORMAT;
        v = v * 10 + d;
    }
    if (v > max)
        return OTA_ERR_FORMAT;
    *out = v;
    return 0;
}

int cli_parse_duration(int64_t *out, const char *s)
{
    return ota_repo_duration_parse(out, s);
}

int cli_check_url(const char *url, const char *option, struct ota_detail *det)
{
    if (ota_http_url_ok(url))
        return 0;
    ota_detail_set(det, "%s %s: an http:// or https:// URL", option, url != NULL ? url : "");
    return CLI_ERR_USAGE;
}

/* A duration option of at most max seconds into *out. */
static int http_duration(long *out, const struct cli_opt *o, int64_t max, struct ota_detail *det)
{
    int64_t v;

    if (cli_val(o) == NULL)
        return 0;
    if (cli_parse_duration(&v, cli_val(o)) != 0 || v > max) {
        ota_detail_set(det, "--%s %s: a duration of 1s to %" PRId64 "s (30s, 10m, 12h, 7d)",
                       o->name, cli_val(o), max);
        return CLI_ERR_USAGE;
    }
    *out = (long)v;
    return 0;
}

int cli_http_policy(struct ota_http_policy *p, const struct cli_opt *o, const struct cli_ctx *ctx,
                    struct ota_detail *det)
{
    uint64_t rate;
    int rc;

    ota_http_policy_default(p);
    p->clock = ctx->xfer_clock;
    p->ca_file = cli_val(&o[0]);
    p->client_cert = cli_val(&o[1]);
    p->client_key = cli_val(&o[2]);
    if (p->client_key != NULL && p->client_cert == NULL) {
        ota_detail_set(det, "--client-key goes with --client-cert");
        return CLI_ERR_USAGE;
    }
    rc = http_duration(&p->connect_timeout_s, &o[3], 600, det);
    if (rc == 0 && cli_val(&o[4]) != NULL &&
        (cli_parse_u64(&rate, cli_val(&o[4]), UINT64_C(1) << 40) != 0 || rate == 0)) {
        ota_detail_set(det, "--min-rate %s: bytes per second, 1 to 2^40", cli_val(&o[4]));
        rc = CLI_ERR_USAGE;
    } else if (rc == 0 && cli_val(&o[4]) != NULL) {
        p->min_rate = rate;
    }
    if (rc == 0)
        rc = http_duration(&p->grace_s, &o[5], 3600, det);
    if (rc == 0)
        rc = http_duration(&p->stall_s, &o[6], 3600, det);
    if (rc == 0)
        rc = http_duration(&p->round_s, &o[7], 30L * 86400, det);
    return rc;
}

void cli_format_duration(char *out, size_t n, int64_t secs)
{
    uint64_t s = secs < 0 ? (uint64_t)0 - (uint64_t)secs : (uint64_t)secs;

    if (s >= 86400)
        snprintf(out, n, "%" PRIu64 "d %" PRIu64 "h", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600)
        snprintf(out, n, "%" PRIu64 "h %" PRIu64 "m", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(out, n, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(out, n, "%" PRIu64 "s", s);
}

void cli_format_expiry(char *out, size_t n, int64_t expires, int64_t now)
{
    char t[OTA_TUF_TIME_SIZE];
    char d[48];

    if (ota_tuf_format_time(t, expires) != 0)
        snprintf(t, sizeof(t), "?");
    cli_format_duration(d, sizeof(d), expires - now);
    if (expires > now)
        snprintf(out, n, "expires in %s (%s)", d, t);
    else
        snprintf(out, n, "EXPIRED %s ago (%s)", d, t);
}

int cli_role_value(int *role, const char **value, const char *arg, struct ota_detail *det)
{
    const char *eq = strchr(arg, '=');

    *role = -1;
    *value = NULL;
    if (eq != NULL) {
        for (int r = 0; r < OTA_TUF_ROLE_COUNT; r++) {
            const char *name = ota_tuf_role_name((enum ota_tuf_role)r);

            if (strlen(name) == (size_t)(eq - arg) && memcmp(name, arg, (size_t)(eq - arg)) == 0) {
                *role = r;
                *value = eq + 1;
                return 0;
            }
        }
    }
    ota_detail_set(det, "'%s': expected ROLE=VALUE with ROLE root, targets, snapshot or timestamp",
                   arg);
    return CLI_ERR_USAGE;
}

/* Writes s[0..len) escaped (ota_escape), in pieces that always fit. */
static void put_escaped(FILE *f, const char *s, size_t len)
{
    char buf[OTA_ESCAPE_MAX(256)];

    for (size_t off = 0; off < len; off += 256) {
        size_t n = len - off < 256 ? len - off : 256;

        ota_escape(buf, sizeof(buf), s + off, n);
        fputs(buf, f);
    }
}

static size_t escaped_len(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        n += c >= 0x20 && c <= 0x7e ? 1 : (c == '\n' || c == '\r' || c == '\t') ? 2 : 4;
    }
    return n;
}

/* One conversion of cli_vprintf: spec is "%[flags][width][.prec][len]C"
 * with any '*' already replaced by its number. */
static void put_conv(FILE *f, const char *spec, char conv, const char *lenmod, va_list *ap)
{
    bool l = strcmp(lenmod, "l") == 0, ll = strcmp(lenmod, "ll") == 0;
    bool z = strcmp(lenmod, "z") == 0 || strcmp(lenmod, "t") == 0;
    bool j = strcmp(lenmod, "j") == 0;

    switch (conv) {
    case 'd':
    case 'i':
        if (ll)
            fprintf(f, spec, va_arg(*ap, long long));
        else if (l)
            fprintf(f, spec, va_arg(*ap, long));
        else if (z)
            fprintf(f, spec, va_arg(*ap, ssize_t));
        else if (j)
            fprintf(f, spec, va_arg(*ap, intmax_t));
        else
            fprintf(f, spec, va_arg(*ap, int));
        break;
    case 'u':
    case 'x':
    case 'X':
    case 'o':
        if (ll)
            fprintf(f, spec, va_arg(*ap, unsigned long long));
        else if (l)
            fprintf(f, spec, va_arg(*ap, unsigned long));
        else if (z)
            fprintf(f, spec, va_arg(*ap, size_t));
        else if (j)
            fprintf(f, spec, va_arg(*ap, uintmax_t));
        else
            fprintf(f, spec, va_arg(*ap, unsigned));
        break;
    case 'f':
    case 'e':
    case 'g':
        fprintf(f, spec, va_arg(*ap, double));
        break;
    case 'p':
        fprintf(f, spec, va_arg(*ap, void *));
        break;
    default:
        break;
    }
}

void cli_vprintf(FILE *f, const char *fmt, va_list ap_in)
{
    va_list ap;

    va_copy(ap, ap_in);
    for (const char *p = fmt; *p != '\0'; p++) {
        char spec[48];
        char lenmod[3] = "";
        size_t sl = 0;
        bool left = false;
        int width = -1, prec = -1;

        if (*p != '%') {
            fputc(*p, f);
            continue;
        }
        if (p[1] == '%') {
            fputc('%', f);
            p++;
            continue;
        }
        spec[sl++] = '%';
        for (p++; *p != '\0' && strchr("-+ #0", *p) != NULL; p++) {
            left = left || *p == '-';
            if (sl < 8)
                spec[sl++] = *p;
        }
        if (*p == '*') {
            width = va_arg(ap, int);
            p++;
        } else if (*p >= '0' && *p <= '9') {
            width = 0;
            for (; *p >= '0' && *p <= '9'; p++)
                width = width * 10 + (*p - '0');
        }
        if (*p == '.') {
            prec = 0;
            if (*++p == '*') {
                prec = va_arg(ap, int);
                p++;
            } else {
                for (; *p >= '0' && *p <= '9'; p++)
                    prec = prec * 10 + (*p - '0');
            }
        }
        for (size_t k = 0; k < 2 && *p != '\0' && strchr("hlzjt", *p) != NULL; k++)
            lenmod[k] = *p++;
        if (*p == '\0')
            break;
        if (*p == 's' || *p == 'c') {
            /* The fields: escaped, padded to the width by escaped length. */
            char c;
            const char *s;
            size_t n;
            size_t shown;

            if (*p == 'c') {
                c = (char)va_arg(ap, int);
                s = &c;
                n = 1;
            } else {
                s = va_arg(ap, const char *);
                if (s == NULL)
                    s = "(null)";
                n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
            }
            shown = width > 0 ? escaped_len(s, n) : 0;
            for (size_t k = shown; !left && width > 0 && k < (size_t)width; k++)
                fputc(' ', f);
            put_escaped(f, s, n);
            for (size_t k = shown; left && width > 0 && k < (size_t)width; k++)
                fputc(' ', f);
            continue;
        }
        if (width >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", width);
        if (prec >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, ".%d", prec);
        snprintf(spec + sl, sizeof(spec) - sl, "%s%c", lenmod, *p);
        put_conv(f, spec, *p, lenmod, &ap);
    }
    va_end(ap);
}

void cli_printf(FILE *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vprintf(f, fmt, ap);
    va_end(ap);
}

void cli_print_error(int err, const struct ota_detail *det)
{
    int code = err == CLI_ERR_USAGE ? OTA_ERR_INVALID_ARG : err;
    const char *msg = det != NULL ? det->msg : "";
    size_t mlen = det != NULL ? strnlen(det->msg, sizeof(det->msg)) : 0;

    if (mlen > 0 && mlen < sizeof(det->msg)) {
        /* "sentence: detail", without the sentence's own full stop. */
        const char *text = ota_strerror(code);
        int tlen = (int)strlen(text);
        if (tlen > 0 && text[tlen - 1] == '.')
            tlen--;
        cli_printf(stderr, "otachain: %s: %.*s: %s\n", ota_errname(code), tlen, text, msg);
    } else
        cli_printf(stderr, "otachain: %s: %s\n", ota_errname(code), ota_strerror(code));
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;

    fputs("otachain: warning: ", stderr);
    va_start(ap, fmt);
    cli_vprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit_code(int err)
{
    if (err == 0)
        return 0;
    if (err == CLI_ERR_USAGE)
        return 2;
    if (err == OTA_ERR_NO_SPACE) /* the environment, like I/O */
        return 3;
    if ((err <= OTA_ERR_JSON_SYNTAX && err >= OTA_ERR_KEY_FORMAT) || err <= OTA_ERR_BAD_SIGNATURE)
        return 1;
    return 3;
}
