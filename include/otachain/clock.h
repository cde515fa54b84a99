/* Time as an input (STYLE rule 13).
 *
 * Library code never reads the clock: it takes "now" from its caller, as
 * seconds since the Unix epoch, or OTA_TIME_NONE when there is no reading
 * at all. OTA_TIME_NONE is distinct from 0: a board without a real-time
 * clock boots at 0 (1970), which is a reading, just a wrong one, and the
 * time floor (DESIGN.md §6) decides what to make of it.
 *
 * Programs read their clock through struct ota_clock, so that a test can
 * inject one (include/otachain/test_hooks.h) instead of sleeping.
 */
#ifndef OTACHAIN_CLOCK_H
#define OTACHAIN_CLOCK_H

#include <stdint.h>

/* "No clock reading": never a valid time. */
#define OTA_TIME_NONE INT64_MIN

/* A source of "now". now returns seconds since the epoch, or
 * OTA_TIME_NONE when it has no reading; ctx is passed through. */
struct ota_clock {
    int64_t (*now)(void *ctx);
    void *ctx;
};

/* Reads c: c->now(c->ctx), or the system's real-time clock (CLOCK_REALTIME)
 * when c is NULL or has no function. OTA_TIME_NONE if the system clock
 * cannot be read. */
int64_t ota_clock_now(const struct ota_clock *c);

/* The time this library was built, in seconds since the epoch: fixed
 * reproducibly when the build is configured (SOURCE_DATE_EPOCH, else the
 * commit date of the sources; scripts/build-time). A device's time floor
 * starts there (DESIGN.md §6): whatever its clock says, it is never
 * earlier than the software it runs. */
int64_t ota_build_time(void);

/* t as RFC 3339 in UTC ("2026-12-07T01:24:11Z"), "-" for OTA_TIME_NONE,
 * decimal seconds when gmtime cannot represent it. */
#define OTA_TIME_TEXT_LEN 24
void ota_time_text(char out[OTA_TIME_TEXT_LEN], int64_t t);

#endif
