/* retry.c — deadline-bounded exponential backoff with full jitter. */
#include "retry.h"

#include <openssl/rand.h>

#include "clock.h"

void ts_retry_init(ts_retry *r, int64_t timeout_ms, int64_t base_ms, int64_t max_ms,
                   int max_attempts)
{
    r->deadline_mono_ms = ts_mono_ms() + timeout_ms;
    r->base_ms = base_ms > 0 ? base_ms : 1;
    r->max_ms = max_ms >= r->base_ms ? max_ms : r->base_ms;
    r->attempt = 0;
    r->max_attempts = max_attempts;
}

int64_t ts_retry_remaining_ms(const ts_retry *r)
{
    int64_t left = r->deadline_mono_ms - ts_mono_ms();
    return left > 0 ? left : 0;
}

int ts_retry_next(ts_retry *r, ts_status st)
{
    r->attempt++;
    if (!ts_status_is_retriable(st)) return 0;
    if (r->max_attempts && r->attempt >= r->max_attempts) return 0;
    int64_t ceiling = r->base_ms;
    for (int i = 1; i < r->attempt && ceiling < r->max_ms; i++) ceiling *= 2;
    if (ceiling > r->max_ms) ceiling = r->max_ms;
    uint32_t rnd = 0;
    if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1) rnd = (uint32_t)ts_mono_us();
    int64_t sleep_ms = (int64_t)(rnd % (uint64_t)(ceiling + 1)); /* full jitter */
    if (ts_mono_ms() + sleep_ms >= r->deadline_mono_ms) return 0;
    ts_sleep_ms(sleep_ms);
    return 1;
}
