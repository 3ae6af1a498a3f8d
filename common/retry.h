/*
 * retry.h — retries with a deadline and exponential backoff with full
 * jitter. A ts_retry is created by the caller with the overall deadline of
 * the operation (Redpanda's retry_chain_node, in miniature). Only code that
 * hands it down stays inside that deadline: inside the S3 backend, a PUT and
 * the HEAD that settles its lost answer share one ts_retry. The
 * ts_objstore_* interface takes no deadline, so a retry loop around
 * object-store calls (index/index.c, reader/chunk_cache.c) may spend up to
 * remote.storage.operation.timeout.ms inside each call on top of its own
 * budget: a known gap, listed in docs/ARCHITECTURE.md ("Not (yet) kept").
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
