/*
 * retry.h — retries with a deadline and exponential backoff with full
 * jitter. A ts_retry is created by the caller with the overall deadline of
 * the operation and handed down, so nested retries never outlive their
 * caller (Redpanda's retry_chain_node, in miniature).
 */
#ifndef TS_COMMON_RETRY_H
#define TS_COMMON_RETRY_H

#include <stdint.h>
#include "tierstore.h"

typedef struct ts_retry {
    int64_t deadline_mono_ms;  /* absolute, ts_mono_ms() clock */
    int64_t base_ms;           /* first backoff ceiling */
    int64_t max_ms;            /* backoff ceiling cap */
    int attempt;               /* attempts made so far */
    int max_attempts;          /* 0 = limited by the deadline only */
} ts_retry;

void ts_retry_init(ts_retry *r, int64_t timeout_ms, int64_t base_ms, int64_t max_ms,
                   int max_attempts);
/* Called after a failed attempt with its status. Returns 1 after sleeping a
 * jittered backoff when another attempt should be made, 0 when the status
 * is not retriable, the attempts are used up or the deadline would pass. */
int ts_retry_next(ts_retry *r, ts_status st);
/* Milliseconds left before the deadline (never negative). */
int64_t ts_retry_remaining_ms(const ts_retry *r);

#endif
