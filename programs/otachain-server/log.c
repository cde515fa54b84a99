/* Structured log lines (log.h). */
#include "log.h"

#include "otachain/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static FILE *open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    FILE *f;

    if (fd < 0)
        return NULL;
    f = fdopen(fd, "a");
    if (f == NULL)
        close(fd);
    return f;
}

int srv_log_open(struct srv_log *lg, const char *path, const struct ota_clock *clock,
                 struct ota_detail *det)
{
    memset(lg, 0, sizeof(*lg));
    lg->clock = clock;
    if (pthread_mutex_init(&lg->mu, NULL) != 0)
        return OTA_ERR_NOMEM;
    lg->f = stderr;
    if (path == NULL || strcmp(path, "-") == 0)
        return 0;
    lg->path = strdup(path);
    lg->f = lg->path != NULL ? open_append(path) : NULL;
    if (lg->f == NULL) {
        int rc = lg->path == NULL ? OTA_ERR_NOMEM : ota_fs_errno(errno);
        ota_detail_set(det, "log file %s: %s", path, strerror(errno));
        free(lg->path);
        lg->path = NULL;
        pthread_mutex_destroy(&lg->mu);
        return rc;
    }
    return 0;
}

void srv_log_reopen(struct srv_log *lg)
{
    FILE *nf;

    if (lg->path == NULL)
        return;
    nf = open_append(lg->path);
    if (nf == NULL) {
        srv_log(lg, "error", "log_reopen", "path=%s error=\"%s\"", lg->path, strerror(errno));
        return;
    }
    pthread_mutex_lock(&lg->mu);
    fclose(lg->f);
    lg->f = nf;
    pthread_mutex_unlock(&lg->mu);
    srv_log(lg, "info", "log_reopened", "path=%s", lg->path);
}

void srv_log_close(struct srv_log *lg)
{
    if (lg->f != NULL && lg->f != stderr)
        fclose(lg->f);
    lg->f = NULL;
    free(lg->path);
    lg->path = NULL;
    pthread_mutex_destroy(&lg->mu);
}

void srv_log(struct srv_log *lg, const char *level, const char *event, const char *fmt, ...)
{
    char ts[24];
    va_list ap;

    ota_time_text(ts, ota_clock_now(lg->clock));
    pthread_mutex_lock(&lg->mu);
    fprintf(lg->f, "ts=%s level=%s event=%s", ts, level, event);
    if (fmt != NULL && fmt[0] != '\0') {
        fputc(' ', lg->f);
        va_start(ap, fmt);
        vfprintf(lg->f, fmt, ap);
        va_end(ap);
    }
    fputc('\n', lg->f);
    fflush(lg->f);
    pthread_mutex_unlock(&lg->mu);
}

const char *srv_log_q(char *out, size_t cap, const char *s)
{
    bool quote = false;
    size_t o = 0;

    if (cap < 4) {
        if (cap > 0)
            out[0] = '\0';
        return out;
    }
    if (s == NULL || s[0] == '\0') {
        snprintf(out, cap, "-");
        return out;
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
            quote = true;
    }
    if (!quote) {
        snprintf(out, cap, "%s", s);
        return out;
    }
    out[o++] = '"';
    for (const char *p = s; *p && o + 6 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
