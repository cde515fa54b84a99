/* Test hooks: see include/otachain/test_hooks.h. Everything that reads the
 * environment is compiled only with OTA_TEST_HOOKS (meson -Dtest_hooks). */
#include "otachain/test_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool ota_test_hooks_built(void)
{
    return OTA_TEST_HOOKS != 0;
}

const struct ota_fs_hook *ota_test_hooks_fs(const struct ota_test_hooks *h)
{
    return h != NULL && h->fs_active ? &h->fs_hook : NULL;
}

#if OTA_TEST_HOOKS
/* A step number 1..2^31 from variable name into *out (0 when unset). */
static int step_var(unsigned long *out, const char *name, struct ota_detail *det)
{
    const char *v = getenv(name);
    unsigned long long n;
    char *end = NULL;

    *out = 0;
    if (v == NULL || v[0] == '\0')
        return 0;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (v[0] < '1' || v[0] > '9' || errno != 0 || *end != '\0' || n > (1ULL << 31)) {
        ota_detail_set(det, "%s=%s: expected a step number 1..2^31", name, v);
        return OTA_ERR_INVALID_ARG;
    }
    *out = (unsigned long)n;
    return 0;
}

static int load_fault(struct ota_test_hooks *h, struct ota_detail *det)
{
    struct ota_fs_fault *f = &h->fault;
    const char *trace = getenv("OTACHAIN_FS_TRACE");
    const char *skip = getenv("OTACHAIN_SKIP_FSYNC");
    int rc = step_var(&f->crash_at, "OTACHAIN_CRASH_AT", det);

    if (rc == 0)
        rc = step_var(&f->cut_at, "OTACHAIN_POWER_CUT", det);
    if (rc != 0)
        return rc;
    if (f->crash_at != 0 && f->cut_at != 0) {
        ota_detail_set(det, "OTACHAIN_CRASH_AT and OTACHAIN_POWER_CUT exclude each other");
        return OTA_ERR_INVALID_ARG;
    }
    if (skip != NULL && skip[0] != '\0') {
        if (strlen(skip) >= sizeof(f->skip_fsync)) {
            ota_detail_set(det, "OTACHAIN_SKIP_FSYNC: at most %zu bytes",
                           sizeof(f->skip_fsync) - 1);
            return OTA_ERR_INVALID_ARG;
        }
        memcpy(f->skip_fsync, skip, strlen(skip) + 1);
    }
    f->trace = trace != NULL && trace[0] != '\0' && strcmp(trace, "0") != 0;
    h->fs_active = f->crash_at != 0 || f->cut_at != 0 || f->trace || f->skip_fsync[0] != '\0';
    return 0;
}

/* Parses an optionally signed decimal number of seconds: 0, or -EINVAL. */
static int parse_seconds(int64_t *out, const char *s)
{
    char *end = NULL;
    long long v;

    if (s[0] == '\0' || !((s[0] >= '0' && s[0] <= '9') || s[0] == '-'))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || (*end != '\0' && *end != '\n'))
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

/* The injected clock: a fixed value, or the number in a file. A file that
 * cannot be read or parsed gives no reading. */
static int64_t injected_now(void *ctx)
{
    const struct ota_test_hooks *h = ctx;
    char buf[32];
    ssize_t n;
    int64_t v;
    int fd;

    if (h->now_file[0] == '\0')
        return h->fixed_now;
    fd = open(h->now_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return OTA_TIME_NONE;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return OTA_TIME_NONE;
    buf[n] = '\0';
    if (parse_seconds(&v, buf) != 0)
        return OTA_TIME_NONE;
    return v;
}

static int load_clock(struct ota_test_hooks *h, struct ota_detail *det)
{
    const char *now = getenv("OTACHAIN_TEST_NOW");

    if (now == NULL || now[0] == '\0')
        return 0;
    if (strcmp(now, "none") == 0) {
        h->fixed_now = OTA_TIME_NONE;
    } else if (now[0] == '@') {
        size_t n = strlen(now + 1);

        if (n == 0 || n >= sizeof(h->now_file)) {
            ota_detail_set(det,
                           "OTACHAIN_TEST_NOW=%s: expected @FILE with a path of 1 to %zu bytes",
                           now, sizeof(h->now_file) - 1);
            return OTA_ERR_INVALID_ARG;
        }
        memcpy(h->now_file, now + 1, n + 1);
    } else if (parse_seconds(&h->fixed_now, now) != 0 || h->fixed_now == OTA_TIME_NONE) {
        ota_detail_set(det, "OTACHAIN_TEST_NOW=%s: expected seconds since the epoch, none or @FILE",
                       now);
        return OTA_ERR_INVALID_ARG;
    }
    h->clock.now = injected_now;
    h->clock.ctx = h;
    return 0;
}
#endif

int ota_test_hooks_load(struct ota_test_hooks *h, struct ota_detail *det)
{
    memset(h, 0, sizeof(*h));
    h->fs_hook.fn = ota_fs_fault_hook;
    h->fs_hook.ctx = &h->fault;
#if OTA_TEST_HOOKS
    {
        const char *verbs = getenv("OTACHAIN_TEST_HOOKS");
        int rc = load_fault(h, det);

        if (rc != 0)
            return rc;
        rc = load_clock(h, det);
        if (rc != 0)
            return rc;
        h->test_verbs = verbs != NULL && strcmp(verbs, "1") == 0;
    }
#else
    (void)det;
#endif
    return 0;
}
