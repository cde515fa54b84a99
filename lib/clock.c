/* The clock as an input: see include/otachain/clock.h. */
#include "otachain/clock.h"

#include <stddef.h>
#include <time.h>

int64_t ota_clock_now(const struct ota_clock *c)
{
    struct timespec ts;

    if (c != NULL && c->now != NULL)
        return c->now(c->ctx);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return OTA_TIME_NONE;
    return (int64_t)ts.tv_sec;
}
