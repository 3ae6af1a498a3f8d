/*
 * admin.h — the admin HTTP listener (admin.c, libmicrohttpd) and the
 * broker-side metrics it exports (bmetrics, counted by the network loop).
 *
 * Threads: bmetrics lives in the broker struct and is written only by the
 * network loop (plain integers, no atomics); the admin listener never reads
 * it there. It asks the loop for a copy instead (an eventfd round trip, see
 * admin.c), together with the partition handles it then queries through the
 * plugin on its own threads.
 */
#ifndef TS_BROKER_ADMIN_H
#define TS_BROKER_ADMIN_H

#include <stdint.h>

/* Upper bounds, in seconds, of the latency and throttle histograms. */
#define BMETRICS_NBOUNDS 16
extern const double bmetrics_bounds[BMETRICS_NBOUNDS];
/* Kafka API keys counted (keys at or above it are counted as the last). */
#define BMETRICS_NAPIS 128

typedef struct bmetrics_hist {
    uint64_t counts[BMETRICS_NBOUNDS + 1]; /* per bucket; the last is +Inf */
    double sum;                            /* seconds */
} bmetrics_hist;

typedef struct bmetrics {
    uint64_t requests[BMETRICS_NAPIS];       /* requests read, by API key */
    bmetrics_hist latency[BMETRICS_NAPIS];   /* read to answered (or dropped) */
    uint64_t conns_accepted;
    int64_t conns_open;
    bmetrics_hist throttle;                  /* Produce held on backpressure */
} bmetrics;

/* Loop thread. */
void bmetrics_observe(bmetrics_hist *h, double seconds);
static inline int bmetrics_api_slot(int api_key)
{
    return api_key < 0 ? BMETRICS_NAPIS - 1 : api_key >= BMETRICS_NAPIS ? BMETRICS_NAPIS - 1 : api_key;
}

struct broker;
/* Starts the listener of admin.listeners (empty: none; returns 0). Main
 * thread, before the loop runs. 0, or -1 with a message. */
int badmin_start(struct broker *b, char *err, size_t errlen);
/* Stops it, waiting for its handlers (each waits at most the loop round-trip
 * timeout). Main thread, after the loop returned, before pools stop. */
void badmin_stop(struct broker *b);

#endif
