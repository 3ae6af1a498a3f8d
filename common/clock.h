/* clock.h — wall-clock and monotonic milliseconds, and sleeping. */
#ifndef TS_COMMON_CLOCK_H
#define TS_COMMON_CLOCK_H

#include <stdint.h>

int64_t ts_now_ms(void);   /* CLOCK_REALTIME, ms since the epoch */
int64_t ts_mono_ms(void);  /* CLOCK_MONOTONIC, ms */
int64_t ts_mono_us(void);  /* CLOCK_MONOTONIC, us */
void ts_sleep_ms(int64_t ms);

#endif
