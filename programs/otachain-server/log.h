/* Structured log lines of otachain-server (docs/server.md "Logs"): one
 * line per event, "ts=<RFC 3339> level=<info|warn|error> event=<name>"
 * followed by key=value pairs; values with spaces, quotes or control
 * bytes are quoted and escaped, so a line is always one line. Written
 * from the event loop and the database thread (a mutex orders them);
 * SIGHUP reopens the file, so logrotate can move it away. */
#ifndef OTACHAIN_SERVER_LOG_H
#define OTACHAIN_SERVER_LOG_H

#include <pthread.h>
#include <stdio.h>

#include "otachain/buf.h"
#include "otachain/clock.h"
#include "otachain/err.h"

struct srv_log {
    pthread_mutex_t mu;
    FILE *f;
    char *path; /* NULL: standard error */
    const struct ota_clock *clock;
};

/* Opens path ("-": standard error) for appending. */
OTA_WUR int srv_log_open(struct srv_log *lg, const char *path, const struct ota_clock *clock,
                         struct ota_detail *det);

/* Reopens the file (SIGHUP); on failure keeps the old one and says so. */
void srv_log_reopen(struct srv_log *lg);

void srv_log_close(struct srv_log *lg);

/* One line: level, event, then the printf-formatted pairs (already
 * "key=value ..."; use srv_log_q for values from outside). */
void srv_log(struct srv_log *lg, const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* s as a logfmt value into out (quoted and escaped when it must be,
 * truncated to fit; "-" for NULL or empty). Returns out. */
const char *srv_log_q(char *out, size_t cap, const char *s);

#endif
