/* Allocation fault injection for unit tests (STYLE rule 9).
 *
 * Include in exactly one file of a test executable that meson links with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 * --wrap=strndup (tests/unit/meson.build, `failalloc_tests`): every call
 * libotachain (linked statically into the test) and the test itself make
 * goes through the wrappers below. jansson's allocations are routed
 * through them by fa_init() (json_set_alloc_funcs), OpenSSL's too
 * (CRYPTO_set_mem_functions); zstd, libcurl and SQLite allocate on their
 * own and are not failed.
 *
 *   fa_init();                      first thing in main()
 *   FA_LOOP(rc, expr);              runs expr with allocation 1, 2, 3, ...
 *                                   failing, until a run needs no failure
 *
 * After each injected failure rc must be 0 (the failure was tolerated:
 * the caller then checks the result is right) or one of OTA_ERR_NOMEM /
 * OTA_ERR_CRYPTO. When the failure hit an allocation of jansson's or
 * OpenSSL's, any refusal is accepted, because neither tells its caller
 * reliably: jansson 2.14's lexer ignores a failed growth of its token
 * buffer (load.c, lex_save), so a parse fails as a syntax error or even
 * succeeds with a shortened string, which our checks then refuse as a
 * format, signature or threshold error; OpenSSL 3.0's Ed25519 verify
 * returns "no match" when its hash context cannot be allocated, so the
 * signature does not count and the threshold is not met. Fail closed
 * either way, with a less precise error. Anything else, a crash, a leak
 * (LeakSanitizer at exit) or a use after free (AddressSanitizer) fails the
 * test. The loop ends with a run in which no allocation was failed; its
 * rc must be 0. fa_failed_runs() says how many runs had a failure
 * injected (so a test can check the loop did something).
 *
 * Not thread-safe: arm it only around single-threaded code.
 */
#ifndef OTACHAIN_TEST_FAILALLOC_H
#define OTACHAIN_TEST_FAILALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "otachain/err.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static struct {
    unsigned long fail_at; /* 0 = disarmed; else the 1-based call to fail */
    unsigned long calls;   /* allocation calls since armed */
    int fired;             /* the failure was injected in this run */
    int in_json;           /* ... in an allocation of jansson's */
    int in_crypto;         /* ... in an allocation of OpenSSL's */
    unsigned long failed_runs;
} fa;

/* Counts one allocation; nonzero when it must fail. */
static int fa_hit(void)
{
    if (fa.fail_at == 0)
        return 0;
    if (++fa.calls != fa.fail_at)
        return 0;
    fa.fired = 1;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fa_hit() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fa_hit() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* A failed realloc leaves p allocated, as the real one does. */
    return fa_hit() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fa_hit() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fa_hit() ? NULL : __real_strndup(s, n);
}

static void *fa_json_malloc(size_t n)
{
    void *p = __wrap_malloc(n);

    if (p == NULL && fa.fired)
        fa.in_json = 1;
    return p;
}

static void fa_json_free(void *p)
{
    free(p);
}

static void *fa_crypto_malloc(size_t n, const char *file, int line)
{
    void *p = __wrap_malloc(n);

    (void)file;
    (void)line;
    if (p == NULL && fa.fired)
        fa.in_crypto = 1;
    return p;
}

static void *fa_crypto_realloc(void *p, size_t n, const char *file, int line)
{
    void *q = __wrap_realloc(p, n);

    (void)file;
    (void)line;
    if (q == NULL && fa.fired)
        fa.in_crypto = 1;
    return q;
}

static void fa_crypto_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* Routes jansson's and OpenSSL's allocations through the wrappers; call
 * before anything allocates through them. Returns 0, or -1 if OpenSSL
 * had already allocated (then its allocations are not failed). */
static int fa_init(void)
{
    json_set_alloc_funcs(fa_json_malloc, fa_json_free);
    return CRYPTO_set_mem_functions(fa_crypto_malloc, fa_crypto_realloc, fa_crypto_free) ? 0 : -1;
}

static void fa_arm(unsigned long nth)
{
    fa.fail_at = nth;
    fa.calls = 0;
    fa.fired = 0;
    fa.in_json = 0;
    fa.in_crypto = 0;
}

/* Disarms; returns whether a failure was injected since fa_arm. */
static int fa_disarm(void)
{
    int fired = fa.fired;

    fa.fail_at = 0;
    fa.failed_runs += (unsigned long)fired;
    return fired;
}

static unsigned long fa_failed_runs(void)
{
    return fa.failed_runs;
}

/* Call after fa_disarm, before the next fa_arm. */
static int fa_rc_ok(int rc)
{
    return rc == 0 || rc == OTA_ERR_NOMEM || rc == OTA_ERR_CRYPTO ||
           (rc < 0 && (fa.in_json || fa.in_crypto));
}

/* Runs expr (an int expression, evaluated once per run, that sets up,
 * runs and tears down everything it allocates) with the 1st, 2nd, ...
 * allocation failing, until a run completes without reaching the failing
 * allocation. Checks each run's rc with fa_rc_ok and the last run's rc is
 * 0. Uses cmocka's assertions. */
#define FA_LOOP(rc, expr)                                                                          \
    do {                                                                                           \
        unsigned long fa_n_;                                                                       \
        for (fa_n_ = 1;; fa_n_++) {                                                                \
            int fa_fired_;                                                                         \
            fa_arm(fa_n_);                                                                         \
            (rc) = (expr);                                                                         \
            fa_fired_ = fa_disarm();                                                               \
            if (!fa_fired_) {                                                                      \
                assert_int_equal((rc), 0);                                                         \
                break;                                                                             \
            }                                                                                      \
            if (!fa_rc_ok(rc))                                                                     \
                fail_msg("allocation %lu failed: rc %d (%s), expected nomem or crypto", fa_n_,     \
                         (rc), ota_errname(rc));                                                   \
        }                                                                                          \
    } while (0)

#endif
