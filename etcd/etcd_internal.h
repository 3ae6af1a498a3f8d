/*
 * etcd_internal.h — what the module's files share: the client, one
 * request with deadline, retries and failover (etcd_http.c), error text.
 */
#ifndef TS_ETCD_INTERNAL_H
#define TS_ETCD_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "etcd/etcd.h"
#include "etcd_json.h" /* etcd_err */

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_ENDPOINT_MAX 256
#define ETCD_POOL_MAX_IDLE 8

struct ts_etcd {
    ts_etcd_opts o;
    char endpoints[ETCD_MAX_ENDPOINTS][ETCD_ENDPOINT_MAX]; /* "host:port" */
    char urls[ETCD_MAX_ENDPOINTS][ETCD_ENDPOINT_MAX + 8];  /* "http://host:port" */
    int nendpoints;
    atomic_int cur; /* index of the endpoint tried first */
    pthread_mutex_t pool_mu;
    CURL *pool[ETCD_POOL_MAX_IDLE];
    int npool;
    atomic_uint_least64_t n_requests, n_retries, n_failovers;
};

typedef struct etcd_body {
    char *data;
    size_t len, cap, max;
    int overflow; /* the answer passed max */
    int nomem;
} etcd_body;
void etcd_body_free(etcd_body *b);

int64_t etcd_mono_ms(void);
void etcd_sleep_ms(int64_t ms);
/* Full-jitter backoff: a random duration in [0, min(base*2^round, max)]. */
int64_t etcd_backoff_ms(const ts_etcd *c, int round);

/* One POST of body to path under a deadline of timeout_ms (0: the client's
 * op_timeout_ms), retried on retriable failures, failing over between
 * endpoints. what/subject name the call in messages ("put", "key 'x'").
 * On TS_ETCD_OK, resp holds a 200 body without an error object; free it
 * with etcd_body_free in every case. Any thread. */
ts_etcd_status etcd_call(ts_etcd *c, const char *what, const char *subject, const char *path,
                         const char *body, int64_t timeout_ms, etcd_body *resp, char *errstr,
                         size_t errlen);

/* The request headers every call sends (NULL out of memory). */
struct curl_slist *etcd_headers(void);

/* Maps an etcd error (gRPC code + message) to a status. */
ts_etcd_status etcd_classify_grpc(int code, const char *msg);
/* Maps a curl failure to a status. */
ts_etcd_status etcd_classify_curl(CURLcode rc);

/* Handles for the watch thread, which drives its own. */
CURL *etcd_handle_get(ts_etcd *c);
void etcd_handle_put(ts_etcd *c, CURL *h);
/* Moves the current endpoint past idx when it is still idx. */
void etcd_fail_over(ts_etcd *c, int idx);

#endif
