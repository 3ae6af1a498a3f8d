/*
 * s3.h — internals of the S3 backend that tests, benchmarks and the CLI may
 * use on a store opened by ts_objstore_s3_open(). Everything else goes
 * through objstore.h.
 */
#ifndef TS_OBJSTORE_S3_H
#define TS_OBJSTORE_S3_H

#include <stdint.h>

#include "objstore.h"

/* Runs curl_global_init() once per process (pthread_once).
 * ts_objstore_s3_open calls it; the engine opens its object store in
 * ts_engine_open before any worker thread starts, which satisfies libcurl's
 * rule that global init happens before threads. A host that also uses
 * libcurl may call curl_global_init itself first: calls are counted. */
ts_status ts_objstore_s3_global_init(void);

typedef struct ts_s3_stats {
    uint64_t requests;       /* HTTP requests sent (every attempt counts) */
    uint64_t retries;        /* attempts that followed a retriable failure */
    uint64_t part_buf_bytes; /* multipart part buffers allocated now */
    uint64_t part_buf_peak;  /* high-water mark of part_buf_bytes */
    uint64_t bytes_sent;     /* request body bytes of successful attempts */
    uint64_t bytes_received; /* response body bytes of successful attempts */
    uint64_t bytes_hashed;   /* request body bytes digested: once per operation, not per attempt */
} ts_s3_stats;

/* Non-zero when os is an S3 store. */
int ts_objstore_is_s3(const ts_objstore *os);
/* Counters since open. os must be an S3 store. */
void ts_objstore_s3_stats(ts_objstore *os, ts_s3_stats *out);
/* Page size of ListObjectsV2 (max-keys, 1..1000; default 1000). Tests use a
 * small page to exercise continuation tokens. */
void ts_objstore_s3_set_list_page(ts_objstore *os, int max_keys);
/* Backoff of failed credential refreshes (first delay, cap) for stores
 * opened afterwards; 0, 0 = the defaults (0.5 s, 30 s). Tests shorten it. */
void ts_objstore_s3_set_creds_backoff(int64_t base_ms, int64_t max_ms);
/* Credential fetches (the first included) and failed ones since open. */
void ts_objstore_s3_creds_stats(ts_objstore *os, uint64_t *fetches, uint64_t *failures);

#endif
