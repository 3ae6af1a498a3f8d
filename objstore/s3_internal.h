/*
 * s3_internal.h — what the S3 backend's files share: the store, one
 * request and its answer, and the request runner. Not for use outside
 * objstore/s3*.c.
 *
 *   s3.c         the ts_objstore operations and ts_objstore_s3_open
 *   s3_http.c    libcurl handle pool, one signed request, retries
 *   s3_writer.c  the streaming writer (single PUT or parallel multipart)
 *   s3_addr.c    bucket/prefix/endpoint addressing
 *   s3_sign.c    SigV4;  s3_xml.c  response parsing;  s3_creds.c  credentials
 *   s3_provider.c  the refreshing keys; s3_imds.c, s3_sts.c  their sources
 */
#ifndef TS_OBJSTORE_S3_INTERNAL_H
#define TS_OBJSTORE_S3_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/retry.h"
#include "s3.h"
#include "s3_addr.h"
#include "s3_creds.h"
#include "s3_provider.h"
#include "s3_sign.h"
#include "s3_xml.h"

#define S3_MOD "s3"
#define S3_RETRY_BASE_MS 100
#define S3_RETRY_MAX_MS 5000
#define S3_CONNECT_TIMEOUT_MS 10000
#define S3_POOL_MAX_IDLE 64
#define S3_GET_MAX_BYTES ((size_t)4 << 30)  /* cap of one whole-object GET */
#define S3_XML_MAX_BYTES ((size_t)16 << 20) /* cap of an XML response */
#define S3_ERR_BODY_MAX ((size_t)64 << 10)  /* cap of an error body kept */
#define S3_MAX_PARTS 10000
#define S3_DELETE_BATCH 1000
/* Signed headers of one request, the caller's included; a request needing
 * more is refused (TS_E_INVAL), never sent with some left out. */
#define S3_REQ_HEADERS_MAX 24

typedef struct s3_store {
    ts_objstore base;
    ts_s3_addr addr;
    ts_s3_creds creds;        /* region, endpoint, CA; its keys are wiped after open */
    ts_s3_provider *provider; /* the keys every request signs with */
    int tls_verify;
    int64_t req_timeout_ms, op_timeout_ms;
    size_t part_bytes;
    int parallelism;
    int content_md5; /* s3.content.md5: Content-MD5 on PUT bodies too */
    atomic_int list_page;
    atomic_int inm_unsupported;       /* the store answered 501 to If-None-Match */
    atomic_int multi_del_unsupported; /* the store refused DeleteObjects */
    atomic_int auth_logged;           /* the one log line for rejected credentials */

    pthread_mutex_t pool_mu; /* guards pool/npool */
    CURL *pool[S3_POOL_MAX_IDLE];
    int npool;

    atomic_uint_fast64_t n_requests, n_retries, part_bytes_now, part_bytes_peak, n_sent, n_received,
        n_hashed;
} s3_store;

typedef struct s3_resp s3_resp;
typedef struct s3_req s3_req;

/* Called on a 2xx answer; may turn it into a failure (truncated body,
 * unreadable XML) that is then retried like any other. */
typedef ts_status (*s3_check_fn)(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                                 char *errstr, size_t errlen);

struct s3_req {
    const char *method;    /* GET HEAD PUT POST DELETE */
    const char *key;       /* object key under the prefix; NULL = the bucket */
    const ts_s3_kv *query; /* raw query parameters */
    size_t nquery;
    const ts_s3_kv *hdrs; /* extra headers, signed and sent (at most
                           * S3_REQ_HEADERS_MAX less the 3..5 s3_do adds) */
    size_t nhdrs;
    const uint8_t *body;
    size_t body_len;
    const char *what; /* "PUT", "GET range", … for messages */
    s3_check_fn check;
    void *check_arg;
};

struct s3_resp {
    long status;
    ts_buf body;
    int overflow;
    char etag[128];         /* without quotes */
    int64_t content_length; /* -1 when absent */
    char content_range[128];
    char err_code[64];
    char err_msg[256];
    int unanswered; /* attempts that got no HTTP answer (lost in flight) */
    int attempts;
};

/* s3_http.c */
void s3_resp_init(s3_resp *rs, size_t max);
void s3_resp_free(s3_resp *rs);
/* Runs rq until it succeeds, fails for good, or r's deadline passes.
 * Any thread; borrows a libcurl handle from the store's pool. */
ts_status s3_do(s3_store *s, const s3_req *rq, s3_resp *rs, ts_retry *r, char *errstr,
                size_t errlen);
void s3_retry_init(const s3_store *s, ts_retry *r);
/* One whole operation: s3_resp_init(rs, max), then s3_do under a fresh
 * retry budget (the operation deadline starts now). The caller frees rs
 * whatever the outcome. Any thread. */
ts_status s3_do_fresh(s3_store *s, const s3_req *rq, s3_resp *rs, size_t max, char *errstr,
                      size_t errlen);
/* "s3://bucket/prefix/key" for messages. */
void s3_obj_name(const s3_store *s, const char *key, char *out, size_t len);
void s3_pool_destroy(s3_store *s);

/* s3.c, used by the writer */
/* TS_E_INVAL when prefix + key is empty or longer than S3 allows. */
ts_status s3_check_key(const s3_store *s, const char *key, char *errstr, size_t errlen);
ts_status s3_head_in(s3_store *s, const char *key, uint64_t *size, char *etag, size_t etaglen,
                     ts_retry *r, char *errstr, size_t errlen);
ts_status s3_put_in(s3_store *s, const char *key, const void *data, size_t len, int if_none,
                    ts_retry *r, char *errstr, size_t errlen);

/* s3_writer.c */
ts_status s3_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out, char *errstr,
                         size_t errlen);

#endif
