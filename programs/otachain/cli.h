/* Shared plumbing of the otachain CLI: the per-run context handed to every
 * command, option parsing, error printing and exit codes, durations.
 *
 * Exit codes (docs/cli.md): 0 success; 1 refused (parse and verification
 * errors: -20..-26 and <= -40); 2 usage (CLI_ERR_USAGE); 3 everything else
 * (I/O, network, not found, permissions, memory, lock).
 */
#ifndef OTACHAIN_CLI_H
#define OTACHAIN_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "otachain/err.h"
#include "otachain/fsutil.h"
#include "otachain/http.h"

/* A usage error found by the CLI itself (unknown option, bad value):
 * printed as "invalid_arg", exit 2. Outside the ota_err range on purpose so
 * a library OTA_ERR_INVALID_ARG (a bug) still maps to 3. */
#define CLI_ERR_USAGE (-1000)

/* What every command gets from main.c (which owns the storage). */
struct cli_ctx {
    const struct ota_fs_hook *hook; /* fault injection for every state write */
    int64_t now;                    /* seconds since the epoch, fixed at start */
    /* The clock transfers judge slow retrieval by: a test build's
     * injected clock, else NULL (CLOCK_MONOTONIC). */
    const struct ota_clock *xfer_clock;
};

/* A command: argv[0] is the first argument after the verb. Returns 0 or a
 * negative error (ota_err or CLI_ERR_USAGE) with det filled in. */
typedef int (*cli_cmd_fn)(const struct cli_ctx *ctx, int argc, char **argv, struct ota_detail *det);

/* ---- option parsing ---- */

#define CLI_MAX_VALS 64 /* values of one repeatable option */
#define CLI_MAX_POS  64 /* positional arguments */

enum {
    CLI_VAL = 1u,   /* takes a value: --name VALUE or --name=VALUE */
    CLI_MULTI = 2u, /* may be repeated */
    CLI_REQ = 4u,   /* must be given */
};

struct cli_opt {
    const char *name; /* without the leading "--" */
    unsigned flags;
    size_t n;                      /* times given */
    const char *val[CLI_MAX_VALS]; /* values in order (CLI_VAL) */
};

struct cli_args {
    size_t npos;
    const char *pos[CLI_MAX_POS];
};

/* Parses argv against opts (their n/val are filled in) and collects
 * positionals, which must number between minpos and maxpos. "--" ends the
 * options. CLI_ERR_USAGE with det on any problem. */
OTA_WUR int cli_parse(struct cli_opt *opts, size_t nopts, struct cli_args *args, size_t minpos,
                      size_t maxpos, int argc, char **argv, struct ota_detail *det);

/* First value of an option, or NULL when not given. */
const char *cli_val(const struct cli_opt *o);

/* Unsigned decimal without sign or leading junk, at most max. */
OTA_WUR int cli_parse_u64(uint64_t *out, const char *s, uint64_t max);

/* "30s", "10m", "12h", "7d", "2w", "1y" (365 days) -> seconds (> 0, at most
 * 100 years). OTA_ERR_FORMAT when malformed. */
OTA_WUR int cli_parse_duration(int64_t *out, const char *s);

/* Human duration for status lines: "6d 23h", "5h 2m", "4m 10s", "12s".
 * Negative values are formatted by magnitude. */
void cli_format_duration(char *out, size_t n, int64_t secs);

/* "expires in 6d 23h (2025-01-01T00:00:00Z)" or "EXPIRED 2h 3m ago (...)". */
void cli_format_expiry(char *out, size_t n, int64_t expires, int64_t now);

/* Splits "ROLE=VALUE"; role must be one of the four TUF roles. */
OTA_WUR int cli_role_value(int *role, const char **value, const char *arg, struct ota_detail *det);

/* ---- transfers ---- */

/* The HTTP policy options of every verb that fetches (docs/cli.md,
 * "Transfers"), appended to its option array; cli_http_policy reads them
 * from the first of them. */
#define CLI_HTTP_NOPTS 8
#define CLI_HTTP_OPTS                                                                              \
    {"ca-file", CLI_VAL, 0, {0}}, {"client-cert", CLI_VAL, 0, {0}},                                \
        {"client-key", CLI_VAL, 0, {0}}, {"connect-timeout", CLI_VAL, 0, {0}},                     \
        {"min-rate", CLI_VAL, 0, {0}}, {"rate-grace", CLI_VAL, 0, {0}},                            \
        {"stall-timeout", CLI_VAL, 0, {0}},                                                        \
    {                                                                                              \
        "round-timeout", CLI_VAL, 0,                                                               \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Fills p from the defaults (include/otachain/http.h) and the options
 * CLI_HTTP_OPTS put at o[0..CLI_HTTP_NOPTS), with ctx's transfer clock.
 * The strings stay owned by argv. CLI_ERR_USAGE with det for a bad
 * value. The round is not started (ota_http_round_start). */
OTA_WUR int cli_http_policy(struct ota_http_policy *p, const struct cli_opt *o,
                            const struct cli_ctx *ctx, struct ota_detail *det);

/* A --url value: an http:// or https:// URL, else CLI_ERR_USAGE naming
 * the option. */
OTA_WUR int cli_check_url(const char *url, const char *option, struct ota_detail *det);

/* ---- errors ---- */

/* ---- output ---- */

/* printf for everything the CLI prints: each %s and %c argument is
 * escaped (otachain/escape.h: control characters, DEL and bytes >= 0x80
 * become \n, \t, \xHH, ...), the format's own text is printed as is. So a
 * newline in a name, a path or a field of hostile metadata never starts a
 * new line, and a terminal escape sequence is never sent to the terminal.
 * Conversions: d i u x X o f e g p s c %, with flags, width, precision
 * (also '*') and the length modifiers hh h l ll z j. */
void cli_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_vprintf(FILE *f, const char *fmt, va_list ap);

/* Prints "otachain: <errname>: <strerror>[: <detail>]" on stderr, one
 * line (cli_printf). */
void cli_print_error(int err, const struct ota_detail *det);

/* Prints "otachain: warning: ..." on stderr, one line (cli_printf). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Maps an error to the process exit code. */
int cli_exit_code(int err);

#endif
