/*
 * pool.h — a fixed-size worker pool fed by a FIFO job queue.
 *
 * Uploads, cold fetches, prefetches and fsyncs run here so the caller's
 * thread (the broker's network loop) never blocks on them. Jobs are plain
 * function pointers; a job that must report back does so itself (callback,
 * condition variable or eventfd).
 */
#ifndef TS_COMMON_POOL_H
#define TS_COMMON_POOL_H

#include <stddef.h>
#include "tierstore.h"

typedef struct ts_pool ts_pool;
typedef void (*ts_pool_fn)(void *arg);

/* Starts nthreads workers named "<name>-<i>". max_queued bounds the queue:
 * submit fails with TS_E_BACKPRESSURE beyond it (0 = unbounded). */
ts_status ts_pool_create(const char *name, int nthreads, size_t max_queued, ts_pool **out);
/* Runs fn(arg) on a worker. On failure fn is not called. Thread-safe. */
ts_status ts_pool_submit(ts_pool *p, ts_pool_fn fn, void *arg);
/* The same, ahead of every job still queued: for a small job that later
 * ones depend on (the reader's next-segment chunk-table lookup, which its
 * chunk prefetches wait behind otherwise). Same bound, same failures. */
ts_status ts_pool_submit_first(ts_pool *p, ts_pool_fn fn, void *arg);
/* Number of jobs queued or running. */
size_t ts_pool_pending(ts_pool *p);
/* Waits until the queue is empty and no job runs. */
void ts_pool_drain(ts_pool *p);
/* Runs the queued jobs to completion, then joins the workers. */
void ts_pool_destroy(ts_pool *p);

#endif
