/*
 * s3.c — the S3 backend: every ts_objstore operation as SigV4-signed HTTP
 * requests over libcurl, for AWS S3, MinIO and Ceph RGW.
 *
 * Shape:
 *  - One store is shared by all threads. libcurl handles are not: each
 *    request borrows a handle from a small pool (mutex-protected stack) and
 *    gives it back, so a handle serves one thread at a time while its
 *    connection cache is reused across requests (keep-alive).
 *  - Every operation runs under one ts_retry: the deadline is
 *    remote.storage.operation.timeout.ms, each attempt is capped by
 *    remote.storage.request.timeout.ms (and by what is left of the
 *    deadline). Retriable failures (5xx, SlowDown, RequestTimeout, resets,
 *    timeouts, truncated bodies) back off with full jitter; everything else
 *    returns at once. 401/403 never retry and name the endpoint and the
 *    access key id, never the secret.
 *  - Requests are re-signed on every attempt (fresh x-amz-date). Bodies
 *    are signed (x-amz-content-sha256 is the SHA-256 of the payload) and
 *    carry Content-MD5, so the store verifies what it receives.
 *  - The streaming writer buffers one part; an object that fits in one
 *    part is one PUT, larger ones become a multipart upload whose parts
 *    are sent by up to s3.multipart.parallelism threads. Part buffers come
 *    from a per-writer budget of exactly `parallelism` buffers (the one
 *    being filled included), so memory is part size x parallelism.
 *  - Downloads are checked: Content-Length and Content-Range must match the
 *    bytes received and the range asked for, and a whole-object GET of a
 *    single-PUT object must match its MD5 ETag. A mismatch is retried,
 *    never returned.
 *
 * Threads: every function here may run on any thread; the handle pool and
 * the writer state have their own mutexes, noted where they are taken.
 */
#include "s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/config_table.h"
#include "common/err.h"
#include "common/log.h"
#include "common/retry.h"
#include "s3_creds.h"
#include "s3_sign.h"
#include "s3_xml.h"

#define MOD "s3"
#define RETRY_BASE_MS 100
#define RETRY_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 10000
#define POOL_MAX_IDLE 64
#define GET_MAX_BYTES ((size_t)4 << 30)  /* cap of one whole-object GET */
#define XML_MAX_BYTES ((size_t)16 << 20) /* cap of an XML response */
#define ERR_BODY_MAX ((size_t)64 << 10)  /* cap of an error body kept */
#define MAX_PARTS 10000
#define DELETE_BATCH 1000

typedef struct s3_store {
    ts_objstore base;
    char bucket[256];
    char prefix[TS_S3_KEY_MAX + 1]; /* "" or "a/b/" */
    char scheme[8];                 /* "http" / "https" */
    char host[512];                 /* Host header value (with the bucket when virtual) */
    char base_path[256];            /* endpoint path, "" or "/p" */
    char endpoint_desc[1100];       /* for messages: the endpoint URL */
    int path_style;
    int tls_verify;
    ts_s3_creds creds;
    int64_t req_timeout_ms, op_timeout_ms;
    size_t part_bytes;
    int parallelism;
    atomic_int list_page;
    atomic_int inm_unsupported; /* store answered 501 to If-None-Match */
    atomic_int multi_del_unsupported;
    atomic_int auth_logged;

    pthread_mutex_t pool_mu; /* guards pool/npool */
    CURL *pool[POOL_MAX_IDLE];
    int npool;

    atomic_uint_fast64_t n_requests, n_retries, part_bytes_now, part_bytes_peak, n_sent, n_received;
} s3_store;

/* ------------------------------------------------------------------------
 * Global init and the handle pool
 * ------------------------------------------------------------------------ */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void do_global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ts_status ts_objstore_s3_global_init(void)
{
    pthread_once(&g_once, do_global_init);
    return g_init_rc == CURLE_OK ? TS_OK : TS_E_UNSUPPORTED;
}

/* Any thread; takes pool_mu. */
static CURL *handle_get(s3_store *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool) h = s->pool[--s->npool];
    pthread_mutex_unlock(&s->pool_mu);
    if (h)
        curl_easy_reset(h); /* keeps the connection cache */
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(s3_store *s, CURL *h)
{
    if (!h) return;
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool < POOL_MAX_IDLE) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------------
 * One request, with retries
 * ------------------------------------------------------------------------ */
typedef struct s3_resp s3_resp;
typedef struct s3_req s3_req;

struct s3_req {
    const char *method; /* GET HEAD PUT POST DELETE */
    const char *key;    /* object key under the prefix; NULL = the bucket */
    const ts_s3_kv *query;
    size_t nquery;
    const ts_s3_kv *hdrs; /* extra headers, signed and sent */
    size_t nhdrs;
    const uint8_t *body;
    size_t body_len;
    size_t resp_max;  /* cap on the response body (0 = XML_MAX_BYTES) */
    const char *what; /* "PUT", "GET range", … for messages */
    /* Called on a 2xx answer; may turn it into a failure (e.g. truncated). */
    ts_status (*check)(const s3_req *rq, const char *name, s3_resp *rs, void *arg, char *errstr,
                       size_t errlen);
    void *check_arg;
};

struct s3_resp {
    long status;
    ts_buf body;
    int overflow;
    char etag[128];
    int64_t content_length; /* -1 when absent */
    char content_range[128];
    char err_code[64];
    char err_msg[256];
    int unanswered; /* attempts that got no HTTP answer (lost in flight) */
    int attempts;
};

static void resp_init(s3_resp *rs, size_t max)
{
    memset(rs, 0, sizeof(*rs));
    ts_buf_init(&rs->body, max);
}

static void resp_reset_attempt(s3_resp *rs)
{
    rs->status = 0;
    ts_buf_reset(&rs->body);
    rs->overflow = 0;
    rs->etag[0] = '\0';
    rs->content_length = -1;
    rs->content_range[0] = '\0';
    rs->err_code[0] = rs->err_msg[0] = '\0';
}

static void resp_free(s3_resp *rs) { ts_buf_free(&rs->body); }

typedef struct body_reader {
    const uint8_t *p;
    size_t len, off;
} body_reader;

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ud)
{
    body_reader *b = ud;
    size_t n = size * nmemb, left = b->len - b->off;
    if (n > left) n = left;
    memcpy(dst, b->p + b->off, n);
    b->off += n;
    return n;
}

/* libcurl rewinds the body when it must resend it on a new connection
 * (the server answered early, a kept-alive connection died). */
static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    body_reader *b = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > b->len) return CURL_SEEKFUNC_FAIL;
    b->off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud)
{
    s3_resp *rs = ud;
    size_t n = size * nmemb;
    if (ts_buf_append(&rs->body, src, n) != TS_OK) {
        rs->overflow = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

static int hdr_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':') return 0;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *ud)
{
    s3_resp *rs = ud;
    size_t len = size * nmemb;
    const char *v;
    size_t vl;
    if (len >= 5 && !strncmp(line, "HTTP/", 5)) { /* a new response (100-continue…) */
        rs->etag[0] = '\0';
        rs->content_length = -1;
        rs->content_range[0] = '\0';
    } else if (hdr_is(line, len, "ETag", &v, &vl)) {
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v++;
            vl -= 2;
        }
        if (vl < sizeof(rs->etag)) {
            memcpy(rs->etag, v, vl);
            rs->etag[vl] = '\0';
        }
    } else if (hdr_is(line, len, "Content-Length", &v, &vl)) {
        char tmp[32];
        if (vl < sizeof(tmp)) {
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            char *end;
            errno = 0;
            long long n = strtoll(tmp, &end, 10);
            if (!errno && *end == '\0' && n >= 0) rs->content_length = n;
        }
    } else if (hdr_is(line, len, "Content-Range", &v, &vl)) {
        if (vl < sizeof(rs->content_range)) {
            memcpy(rs->content_range, v, vl);
            rs->content_range[vl] = '\0';
        }
    }
    return len;
}

/* "s3://bucket/prefix/key" for messages. */
static void obj_name(const s3_store *s, const char *key, char *out, size_t len)
{
    snprintf(out, len, "s3://%s/%s%s", s->bucket, s->prefix, key ? key : "");
}

/* Builds URL and canonical URI. */
static ts_status build_target(const s3_store *s, const s3_req *rq, ts_buf *path, ts_buf *url,
                              ts_buf *query)
{
    ts_status st = TS_OK;
    ts_buf raw;
    ts_buf_init(&raw, 8192);
    st = ts_buf_printf(&raw, "%s/", s->base_path);
    if (!st && s->path_style) st = ts_buf_printf(&raw, "%s", s->bucket);
    if (!st && rq->key)
        st = ts_buf_printf(&raw, "%s%s%s", s->path_style ? "/" : "", s->prefix, rq->key);
    if (!st) st = ts_s3_uri_encode(path, (const char *)raw.data, raw.len, 0);
    ts_buf_free(&raw);
    if (st) return st;
    /* Query: encoded and sorted the way the signature sorts it. */
    size_t order[16];
    size_t nq = rq->nquery < 16 ? rq->nquery : 16;
    for (size_t i = 0; i < nq; i++) order[i] = i;
    for (size_t i = 1; i < nq; i++) /* insertion sort by raw name: names are plain ASCII */
        for (size_t j = i;
             j > 0 && strcmp(rq->query[order[j - 1]].name, rq->query[order[j]].name) > 0; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    ts_buf_printf(query, "%s", "");
    for (size_t i = 0; i < nq && !st; i++) {
        const ts_s3_kv *q = &rq->query[order[i]];
        if (i) st = ts_buf_append(query, "&", 1);
        if (!st) st = ts_s3_uri_encode(query, q->name, strlen(q->name), 1);
        if (!st) st = ts_buf_append(query, "=", 1);
        if (!st) st = ts_s3_uri_encode(query, q->value, strlen(q->value), 1);
    }
    if (!st) st = ts_buf_append(query, "", 1), query->len--;
    if (!st)
        st = ts_buf_printf(url, "%s://%s%s%s%s", s->scheme, s->host, (const char *)path->data,
                           query->len ? "?" : "", query->len ? (const char *)query->data : "");
    return st;
}

/* Maps a curl failure. */
static ts_status classify_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return TS_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING: return TS_E_REMOTE_RETRIABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: return TS_E_REMOTE;
    default: return TS_E_REMOTE;
    }
}

/* Maps an HTTP answer. */
static ts_status classify_http(const s3_req *rq, const s3_resp *rs)
{
    long c = rs->status;
    const char *code = rs->err_code;
    if (c >= 200 && c < 300) return TS_OK;
    if (c == 401 || c == 403) return TS_E_AUTH;
    if (c == 404) {
        if (!strcmp(code, "NoSuchBucket")) return TS_E_REMOTE;
        return TS_E_NOT_FOUND;
    }
    if (c == 412) return TS_E_EXISTS;
    if (c == 416) return TS_E_OFFSET_OUT_OF_RANGE;
    if (c == 400) {
        if (!strcmp(code, "RequestTimeout") || !strcmp(code, "SlowDown"))
            return TS_E_REMOTE_RETRIABLE;
        if (!strcmp(code, "BadDigest") || !strcmp(code, "XAmzContentSHA256Mismatch") ||
            !strcmp(code, "InvalidDigest") || !strcmp(code, "IncompleteBody"))
            return TS_E_CHECKSUM;
        if (!strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidToken") ||
            !strcmp(code, "AuthorizationHeaderMalformed"))
            return TS_E_AUTH;
        return TS_E_REMOTE;
    }
    if (c == 409 &&
        (!strcmp(code, "OperationAborted") || !strcmp(code, "ConditionalRequestConflict")))
        return TS_E_REMOTE_RETRIABLE;
    if (c == 408 || c == 429) return TS_E_REMOTE_RETRIABLE;
    if (c == 501 || !strcmp(code, "NotImplemented")) return TS_E_UNSUPPORTED;
    if (c >= 500) return TS_E_REMOTE_RETRIABLE;
    (void)rq;
    return TS_E_REMOTE;
}

/* One attempt. Fills rs; returns the mapped status and writes a message. */
static ts_status attempt(s3_store *s, const s3_req *rq, s3_resp *rs, int64_t timeout_ms,
                         char *errstr, size_t errlen)
{
    ts_status st;
    char name[TS_S3_KEY_MAX + 300];
    obj_name(s, rq->key, name, sizeof(name));
    ts_buf path, url, query, auth;
    ts_buf_init(&path, 16384);
    ts_buf_init(&url, 32768);
    ts_buf_init(&query, 16384);
    ts_buf_init(&auth, 4096);
    struct curl_slist *hl = NULL;
    CURL *h = NULL;
    resp_reset_attempt(rs);

    st = build_target(s, rq, &path, &url, &query);
    if (st) {
        ts_err_set(errstr, errlen, TS_E_INVAL, "%s %s: key too long to address", rq->what, name);
        st = TS_E_INVAL;
        goto out;
    }
    char amz_date[17], payload_hash[65], md5b64[25];
    ts_s3_amz_date(time(NULL), amz_date);
    int has_body = rq->body != NULL || !strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST");
    ts_s3_sha256_hex(rq->body ? (const void *)rq->body : "", rq->body_len, payload_hash);
    if (has_body) ts_s3_md5(rq->body ? (const void *)rq->body : "", rq->body_len, NULL, md5b64);

    ts_s3_kv hs[24];
    size_t nh = 0;
    hs[nh++] = (ts_s3_kv){"host", s->host};
    hs[nh++] = (ts_s3_kv){"x-amz-date", amz_date};
    hs[nh++] = (ts_s3_kv){"x-amz-content-sha256", payload_hash};
    if (s->creds.session_token[0])
        hs[nh++] = (ts_s3_kv){"x-amz-security-token", s->creds.session_token};
    if (has_body) hs[nh++] = (ts_s3_kv){"content-md5", md5b64};
    for (size_t i = 0; i < rq->nhdrs && nh < 24; i++) hs[nh++] = rq->hdrs[i];
    ts_s3_sign_req sr = {
        .method = rq->method,
        .path = (const char *)path.data,
        .query = rq->query,
        .nquery = rq->nquery,
        .headers = hs,
        .nheaders = nh,
        .payload_hash = payload_hash,
        .amz_date = amz_date,
        .region = s->creds.region,
        .service = "s3",
        .access_key_id = s->creds.access_key_id,
        .secret_access_key = s->creds.secret_access_key,
    };
    st = ts_s3_sign(&sr, &auth, NULL, NULL);
    if (st) {
        ts_err_set(errstr, errlen, st, "%s %s: cannot sign the request", rq->what, name);
        goto out;
    }
    for (size_t i = 0; i < nh; i++) {
        char line[8192];
        snprintf(line, sizeof(line), "%s: %s", hs[i].name, hs[i].value);
        struct curl_slist *n = curl_slist_append(hl, line);
        if (!n) {
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
            goto out;
        }
        hl = n;
    }
    {
        char line[4200];
        snprintf(line, sizeof(line), "Authorization: %s", (const char *)auth.data);
        struct curl_slist *n = curl_slist_append(hl, line);
        if (!n) {
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
            goto out;
        }
        hl = n;
        n = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
        if (n) hl = n;
        if (!strcmp(rq->method, "POST")) {
            n = curl_slist_append(hl, "Content-Type: application/xml");
            if (n) hl = n;
        }
    }

    h = handle_get(s);
    if (!h) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "curl_easy_init failed");
        goto out;
    }
    char curl_err[CURL_ERROR_SIZE];
    curl_err[0] = '\0';
    body_reader br = {rq->body, rq->body_len, 0};
    curl_easy_setopt(h, CURLOPT_URL, (const char *)url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->tls_verify ? 2L : 0L);
    if (s->creds.ca_bundle[0]) curl_easy_setopt(h, CURLOPT_CAINFO, s->creds.ca_bundle);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(rq->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &br);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &br);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (!strcmp(rq->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    atomic_fetch_add(&s->n_requests, 1);
    ts_log_debug(MOD, "%s %s", rq->method, (const char *)url.data);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    if (rc != CURLE_OK) {
        if (rs->overflow) {
            st = ts_err_set(errstr, errlen, TS_E_NOMEM,
                            "%s %s: response larger than the %zu-byte cap", rq->what, name,
                            rs->body.max);
            goto out;
        }
        if (rs->status == 0) rs->unanswered++;
        st = classify_curl(rc);
        ts_err_set(errstr, errlen, st, "%s %s: %s (%s) talking to %s", rq->what, name,
                   curl_easy_strerror(rc), curl_err[0] ? curl_err : "no detail", s->endpoint_desc);
        goto out;
    }
    if (rs->status < 200 || rs->status >= 300) {
        ts_s3_xml_parse_error((const char *)rs->body.data, rs->body.len, rs->err_code,
                              sizeof(rs->err_code), rs->err_msg, sizeof(rs->err_msg));
        st = classify_http(rq, rs);
        if (st == TS_E_AUTH) {
            ts_err_set(errstr, errlen, TS_E_AUTH,
                       "%s %s: the S3 endpoint %s rejected the credentials of access key id "
                       "'%s' (HTTP %ld %s%s%s%s); check the secret key and permissions "
                       "(credentials from %s)%s",
                       rq->what, name, s->endpoint_desc, s->creds.access_key_id, rs->status,
                       rs->err_code[0] ? rs->err_code : "Forbidden", rs->err_msg[0] ? ": " : "",
                       rs->err_msg, "", s->creds.source,
                       !strcmp(rs->err_code, "RequestTimeTooSkewed")
                           ? "; the local clock differs from the server's: fix the time"
                           : "");
        } else if (st == TS_E_REMOTE && !strcmp(rs->err_code, "NoSuchBucket")) {
            ts_err_set(errstr, errlen, st, "%s %s: bucket '%s' does not exist at %s", rq->what,
                       name, s->bucket, s->endpoint_desc);
        } else {
            ts_err_set(errstr, errlen, st, "%s %s: HTTP %ld %s%s%s", rq->what, name, rs->status,
                       rs->err_code[0] ? rs->err_code : "", rs->err_msg[0] ? " - " : "",
                       rs->err_msg);
        }
        goto out;
    }
    st = rq->check ? rq->check(rq, name, rs, rq->check_arg, errstr, errlen) : TS_OK;
    if (!st) {
        atomic_fetch_add(&s->n_sent, rq->body_len);
        atomic_fetch_add(&s->n_received, rs->body.len);
    }
out:
    handle_put(s, h);
    curl_slist_free_all(hl);
    ts_buf_free(&path);
    ts_buf_free(&url);
    ts_buf_free(&query);
    ts_buf_free(&auth);
    return st;
}

/* Runs rq under the retry budget r. Any thread. */
static ts_status s3_do(s3_store *s, const s3_req *rq, s3_resp *rs, ts_retry *r, char *errstr,
                       size_t errlen)
{
    ts_status st = TS_E_TIMEOUT;
    int64_t t0 = ts_mono_ms();
    for (;;) {
        int64_t left = ts_retry_remaining_ms(r);
        int64_t tmo = s->req_timeout_ms < left ? s->req_timeout_ms : left;
        if (tmo < 1) {
            if (!rs->attempts)
                return ts_err_set(errstr, errlen, TS_E_TIMEOUT, "%s: operation deadline passed",
                                  rq->what);
            break;
        }
        rs->attempts++;
        st = attempt(s, rq, rs, tmo, errstr, errlen);
        if (st == TS_OK) return TS_OK;
        if (st == TS_E_AUTH) {
            if (!atomic_exchange(&s->auth_logged, 1)) ts_log_error(MOD, "%s", errstr);
            return st;
        }
        if (!ts_retry_next(r, st)) break;
        atomic_fetch_add(&s->n_retries, 1);
        ts_log_debug(MOD, "retrying after: %s", errstr);
    }
    if (ts_status_is_retriable(st) && rs->attempts > 1)
        ts_err_prefix(
            errstr, errlen, st,
            "gave up after %d attempts in %lld ms (remote.storage.operation.timeout.ms=%lld)",
            rs->attempts, (long long)(ts_mono_ms() - t0), (long long)s->op_timeout_ms);
    return st;
}

static void retry_init(const s3_store *s, ts_retry *r)
{
    ts_retry_init(r, s->op_timeout_ms, RETRY_BASE_MS, RETRY_MAX_MS, 0);
}

static ts_status check_key(const s3_store *s, const char *key, char *errstr, size_t errlen)
{
    if (!key || !*key)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "empty object key in %s", s->base.url);
    if (strlen(s->prefix) + strlen(key) > TS_S3_KEY_MAX)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "object key '%.80s…' longer than %d bytes",
                          key, TS_S3_KEY_MAX);
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * HEAD, PUT, GET, DELETE
 * ------------------------------------------------------------------------ */
static ts_status head_in(s3_store *s, const char *key, uint64_t *size, char *etag, size_t etaglen,
                         ts_retry *r, char *errstr, size_t errlen)
{
    s3_req rq = {.method = "HEAD", .key = key, .what = "HEAD"};
    s3_resp rs;
    resp_init(&rs, ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    if (!st) {
        if (rs.content_length < 0) {
            char name[TS_S3_KEY_MAX + 300];
            obj_name(s, key, name, sizeof(name));
            st = ts_err_set(errstr, errlen, TS_E_REMOTE, "HEAD %s: no Content-Length", name);
        } else {
            if (size) *size = (uint64_t)rs.content_length;
            if (etag) snprintf(etag, etaglen, "%s", rs.etag);
        }
    }
    resp_free(&rs);
    return st;
}

static ts_status s3_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                         size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    retry_init(s, &r);
    return head_in(s, key, size, NULL, 0, &r, errstr, errlen);
}

/* Plain or conditional single PUT of a whole body. */
static ts_status put_in(s3_store *s, const char *key, const void *data, size_t len, int if_none,
                        ts_retry *r, char *errstr, size_t errlen)
{
    char name[TS_S3_KEY_MAX + 300];
    obj_name(s, key, name, sizeof(name));
    if (if_none && atomic_load(&s->inm_unsupported)) {
        /* Fallback for stores without conditional PUT: HEAD, then PUT. Not
         * atomic: a concurrent writer of the same key can still win. */
        ts_status st = head_in(s, key, NULL, NULL, 0, r, errstr, errlen);
        if (st == TS_OK)
            return ts_err_set(errstr, errlen, TS_E_EXISTS, "PUT %s: the object already exists",
                              name);
        if (st != TS_E_NOT_FOUND) return st;
        if_none = 0;
    }
    ts_s3_kv hdr[1] = {{"if-none-match", "*"}};
    s3_req rq = {.method = "PUT",
                 .key = key,
                 .hdrs = hdr,
                 .nhdrs = if_none ? 1 : 0,
                 .body = data ? data : (const void *)"",
                 .body_len = len,
                 .what = "PUT"};
    s3_resp rs;
    resp_init(&rs, ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    int unanswered = rs.unanswered;
    resp_free(&rs);
    if (st == TS_E_EXISTS && if_none && unanswered) {
        /* An earlier attempt may have landed without us hearing back: if
         * the object there is ours (same MD5), the PUT succeeded. */
        char md5hex[33], etag[128];
        ts_s3_md5(data ? data : (const void *)"", len, md5hex, NULL);
        char e2[512];
        if (head_in(s, key, NULL, etag, sizeof(etag), r, e2, sizeof(e2)) == TS_OK &&
            !strcasecmp(etag, md5hex))
            return TS_OK;
        return ts_err_set(errstr, errlen, TS_E_EXISTS, "PUT %s: the object already exists", name);
    }
    if (st == TS_E_EXISTS)
        return ts_err_set(errstr, errlen, TS_E_EXISTS,
                          "PUT %s: the object already exists (If-None-Match)", name);
    if (st == TS_E_UNSUPPORTED && if_none) {
        if (!atomic_exchange(&s->inm_unsupported, 1))
            ts_log_warn(MOD,
                        "%s does not support conditional PUT (If-None-Match: *); falling back to "
                        "HEAD then PUT, which is not atomic",
                        s->endpoint_desc);
        return put_in(s, key, data, len, 1, r, errstr, errlen);
    }
    return st;
}

static ts_status s3_put(ts_objstore *os, const char *key, const void *data, size_t len,
                        unsigned flags, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    retry_init(s, &r);
    return put_in(s, key, data, len, (flags & TS_PUT_IF_NONE_MATCH) != 0, &r, errstr, errlen);
}

typedef struct get_ctx {
    uint64_t off, len; /* len TS_OBJSTORE_TO_END for the rest */
    int ranged;
} get_ctx;

static int is_md5_etag(const char *e)
{
    if (strlen(e) != 32) return 0;
    for (const char *c = e; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F')))
            return 0;
    return 1;
}

/* Verifies a 2xx GET answer: never let a short or mismatched body through. */
static ts_status check_get(const s3_req *rq, const char *name, s3_resp *rs, void *arg, char *errstr,
                           size_t errlen)
{
    get_ctx *g = arg;
    size_t got = rs->body.len;
    if (rs->content_length >= 0 && (uint64_t)rs->content_length != got)
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "%s: truncated body: %zu of %lld bytes", name, got,
                          (long long)rs->content_length);
    if (rs->status == 206) {
        unsigned long long a, b, total;
        if (sscanf(rs->content_range, "bytes %llu-%llu/%llu", &a, &b, &total) != 3 || a > b ||
            b >= total)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE, "%s: bad Content-Range '%s'",
                              name, rs->content_range);
        uint64_t want_end = g->len == TS_OBJSTORE_TO_END || g->len > total - g->off
                                ? total - 1
                                : g->off + g->len - 1;
        if (a != g->off || b != want_end || b - a + 1 != got)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "%s: asked for bytes %llu-%llu, got %zu bytes as '%s'", name,
                              (unsigned long long)g->off, (unsigned long long)want_end, got,
                              rs->content_range);
        return TS_OK;
    }
    if (rs->status != 200)
        return ts_err_set(errstr, errlen, TS_E_REMOTE, "%s: unexpected HTTP %ld", name, rs->status);
    if (!g->ranged && is_md5_etag(rs->etag)) {
        char md5hex[33];
        ts_s3_md5(rs->body.data ? (const void *)rs->body.data : "", got, md5hex, NULL);
        if (strcasecmp(md5hex, rs->etag))
            return ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                              "%s: body MD5 %s does not match ETag %s", name, md5hex, rs->etag);
    }
    return TS_OK;
}

static ts_status s3_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                        uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    *out = NULL;
    *out_len = 0;
    ts_status st = check_key(s, key, errstr, errlen);
    if (st) return st;
    if (len == 0) {
        *out = malloc(1);
        return *out ? TS_OK : TS_E_NOMEM;
    }
    char range[80];
    get_ctx g = {offset, len, !(offset == 0 && len == TS_OBJSTORE_TO_END)};
    if (len == TS_OBJSTORE_TO_END)
        snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
    else if (len > UINT64_MAX - offset)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "GET %s: range overflows", key);
    else
        snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
                 (unsigned long long)(offset + len - 1));
    size_t cap = len == TS_OBJSTORE_TO_END || len > GET_MAX_BYTES ? GET_MAX_BYTES : (size_t)len;
    if (g.ranged && cap < ERR_BODY_MAX) cap = ERR_BODY_MAX; /* room for an error document */
    ts_s3_kv hdr[1] = {{"range", range}};
    s3_req rq = {.method = "GET",
                 .key = key,
                 .hdrs = hdr,
                 .nhdrs = g.ranged ? 1 : 0,
                 .resp_max = cap,
                 .what = g.ranged ? "GET range" : "GET",
                 .check = check_get,
                 .check_arg = &g};
    s3_resp rs;
    resp_init(&rs, cap);
    ts_retry r;
    retry_init(s, &r);
    st = s3_do(s, &rq, &rs, &r, errstr, errlen);
    if (st == TS_E_OFFSET_OUT_OF_RANGE) { /* 416: the range starts at or past the end */
        resp_free(&rs);
        *out = malloc(1);
        return *out ? TS_OK : TS_E_NOMEM;
    }
    if (st) {
        resp_free(&rs);
        return st;
    }
    if (rs.status == 200 && g.ranged) { /* a store that ignored Range */
        size_t total = rs.body.len;
        size_t a = offset < total ? (size_t)offset : total;
        size_t n = total - a;
        if (len != TS_OBJSTORE_TO_END && len < n) n = (size_t)len;
        memmove(rs.body.data, rs.body.data + a, n);
        rs.body.len = n;
    }
    if (!rs.body.data) {
        *out = malloc(1);
        if (!*out) return TS_E_NOMEM;
    } else {
        *out = ts_buf_steal(&rs.body, out_len);
    }
    resp_free(&rs);
    return TS_OK;
}

static ts_status del_in(s3_store *s, const char *key, ts_retry *r, char *errstr, size_t errlen)
{
    s3_req rq = {.method = "DELETE", .key = key, .what = "DELETE"};
    s3_resp rs;
    resp_init(&rs, ERR_BODY_MAX);
    ts_status st = s3_do(s, &rq, &rs, r, errstr, errlen);
    resp_free(&rs);
    return st == TS_E_NOT_FOUND ? TS_OK : st;
}

static ts_status s3_del(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = check_key(s, key, errstr, errlen);
    if (st) return st;
    ts_retry r;
    retry_init(s, &r);
    return del_in(s, key, &r, errstr, errlen);
}

/* ------------------------------------------------------------------------
 * DeleteObjects
 * ------------------------------------------------------------------------ */
static ts_status xml_escape(ts_buf *b, const char *s)
{
    ts_status st = TS_OK;
    for (; *s && !st; s++) {
        switch (*s) {
        case '&': st = ts_buf_printf(b, "&amp;"); break;
        case '<': st = ts_buf_printf(b, "&lt;"); break;
        case '>': st = ts_buf_printf(b, "&gt;"); break;
        case '"': st = ts_buf_printf(b, "&quot;"); break;
        case '\'': st = ts_buf_printf(b, "&apos;"); break;
        default: st = ts_buf_append(b, s, 1);
        }
    }
    return st;
}

typedef struct del_errs {
    s3_store *s;
    const char *failed[DELETE_BATCH]; /* keys (relative) to retry one by one */
    size_t nfailed;
    const char *const *batch;
    size_t nbatch;
} del_errs;

static void on_del_error(const char *key, const char *code, const char *msg, void *opaque)
{
    del_errs *d = opaque;
    if (!strcmp(code, "NoSuchKey")) return;
    size_t pl = strlen(d->s->prefix);
    if (strncmp(key, d->s->prefix, pl)) return;
    for (size_t i = 0; i < d->nbatch && d->nfailed < DELETE_BATCH; i++)
        if (!strcmp(d->batch[i], key + pl)) {
            d->failed[d->nfailed++] = d->batch[i];
            break;
        }
    ts_log_debug(MOD, "DeleteObjects: %s: %s %s", key, code, msg);
}

static void del_dry_cb(const char *key, const char *code, const char *msg, void *opaque)
{
    (void)key;
    (void)code;
    (void)msg;
    (void)opaque;
}

static ts_status check_delete(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                              char *errstr, size_t errlen)
{
    size_t ndel;
    (void)rq;
    (void)arg;
    if (ts_s3_xml_parse_delete((const char *)rs->body.data, rs->body.len, del_dry_cb, NULL, &ndel))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "DeleteObjects: unreadable DeleteResult (%zu bytes)", rs->body.len);
    return TS_OK;
}

static ts_status s3_del_many(ts_objstore *os, const char *const *keys, size_t n, char *errstr,
                             size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = TS_OK;
    for (size_t i = 0; i < n; i++)
        if ((st = check_key(s, keys[i], errstr, errlen))) return st;
    for (size_t at = 0; at < n; at += DELETE_BATCH) {
        size_t cnt = n - at < DELETE_BATCH ? n - at : DELETE_BATCH;
        ts_retry r;
        retry_init(s, &r);
        if (atomic_load(&s->multi_del_unsupported)) goto singles;
        ts_buf body;
        ts_buf_init(&body, XML_MAX_BYTES);
        st = ts_buf_printf(&body,
                           "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
        for (size_t i = 0; i < cnt && !st; i++) {
            st = ts_buf_printf(&body, "<Object><Key>");
            if (!st) st = xml_escape(&body, s->prefix);
            if (!st) st = xml_escape(&body, keys[at + i]);
            if (!st) st = ts_buf_printf(&body, "</Key></Object>");
        }
        if (!st) st = ts_buf_printf(&body, "</Delete>");
        if (st) {
            ts_buf_free(&body);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "DeleteObjects: request too large");
        }
        ts_s3_kv q[1] = {{"delete", ""}};
        s3_req rq = {.method = "POST",
                     .query = q,
                     .nquery = 1,
                     .body = body.data,
                     .body_len = body.len,
                     .what = "DeleteObjects",
                     .check = check_delete};
        s3_resp rs;
        resp_init(&rs, XML_MAX_BYTES);
        st = s3_do(s, &rq, &rs, &r, errstr, errlen);
        ts_buf_free(&body);
        if (st == TS_E_UNSUPPORTED ||
            (st == TS_E_REMOTE && (rs.status == 405 || rs.status == 400))) {
            if (!atomic_exchange(&s->multi_del_unsupported, 1))
                ts_log_warn(MOD, "%s does not support DeleteObjects (%s); deleting one by one",
                            s->endpoint_desc, errstr);
            resp_free(&rs);
            goto singles;
        }
        if (st) {
            resp_free(&rs);
            return st;
        }
        del_errs *d = calloc(1, sizeof(*d));
        if (!d) {
            resp_free(&rs);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        d->s = s;
        d->batch = keys + at;
        d->nbatch = cnt;
        size_t ndel;
        st =
            ts_s3_xml_parse_delete((const char *)rs.body.data, rs.body.len, on_del_error, d, &ndel);
        resp_free(&rs);
        if (st) {
            free(d);
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "DeleteObjects in %s: unreadable DeleteResult", s->base.url);
        }
        /* Keys the batch could not delete: one by one, with their own retries. */
        for (size_t i = 0; i < d->nfailed && !st; i++)
            st = del_in(s, d->failed[i], &r, errstr, errlen);
        free(d);
        if (st) return st;
        continue;
    singles:
        for (size_t i = 0; i < cnt; i++)
            if ((st = del_in(s, keys[at + i], &r, errstr, errlen))) return st;
    }
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * ListObjectsV2
 * ------------------------------------------------------------------------ */
typedef struct list_ctx {
    s3_store *s;
    int (*cb)(const char *key, uint64_t size, void *opaque);
    void *opaque;
} list_ctx;

static int list_cb(const char *key, uint64_t size, void *opaque)
{
    list_ctx *l = opaque;
    size_t pl = strlen(l->s->prefix);
    if (strncmp(key, l->s->prefix, pl)) return 0; /* not ours: the store ignored prefix */
    return l->cb(key + pl, size, l->opaque);
}

static int list_dry_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (void)opaque;
    return 0;
}

/* A page that does not parse (cut short on the way) is retried. */
static ts_status check_list(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                            char *errstr, size_t errlen)
{
    int stopped, truncated;
    size_t nkeys;
    char next[4096];
    (void)arg;
    if (ts_s3_xml_parse_list((const char *)rs->body.data, rs->body.len, list_dry_cb, NULL, &stopped,
                             &truncated, next, sizeof(next), &nkeys))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "ListObjectsV2: unreadable result (%zu bytes)", rs->body.len);
    (void)rq;
    return TS_OK;
}

static ts_status s3_list(ts_objstore *os, const char *prefix,
                         int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                         char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    char full[TS_S3_KEY_MAX * 2 + 2], token[4096] = "", maxkeys[16];
    snprintf(full, sizeof(full), "%s%s", s->prefix, prefix ? prefix : "");
    snprintf(maxkeys, sizeof(maxkeys), "%d", atomic_load(&s->list_page));
    list_ctx l = {s, cb, opaque};
    for (;;) {
        ts_s3_kv q[4] = {{"list-type", "2"},
                         {"prefix", full},
                         {"max-keys", maxkeys},
                         {"continuation-token", token}};
        s3_req rq = {.method = "GET",
                     .query = q,
                     .nquery = token[0] ? 4 : 3,
                     .what = "ListObjectsV2",
                     .check = check_list};
        s3_resp rs;
        resp_init(&rs, XML_MAX_BYTES);
        ts_retry r;
        retry_init(s, &r);
        ts_status st = s3_do(s, &rq, &rs, &r, errstr, errlen);
        if (st) {
            resp_free(&rs);
            return st;
        }
        int stopped, truncated;
        size_t nkeys;
        char next[4096];
        st = ts_s3_xml_parse_list((const char *)rs.body.data, rs.body.len, list_cb, &l, &stopped,
                                  &truncated, next, sizeof(next), &nkeys);
        resp_free(&rs);
        if (st)
            return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                              "ListObjectsV2 %s prefix '%s': unreadable result", s->base.url, full);
        if (stopped || !truncated) return TS_OK;
        if (!next[0] || !strcmp(next, token))
            return ts_err_set(errstr, errlen, TS_E_REMOTE,
                              "ListObjectsV2 %s: truncated page without a new continuation token",
                              s->base.url);
        memcpy(token, next, sizeof(token));
    }
}

/* ------------------------------------------------------------------------
 * Streaming writer: one PUT, or a multipart upload with bounded memory
 * ------------------------------------------------------------------------ */
typedef struct s3_writer {
    ts_objstore_writer base;
    s3_store *s;
    char key[TS_S3_KEY_MAX + 1];
    uint8_t *cur; /* part being filled (NULL until the first write) */
    size_t cur_len;
    uint64_t total;
    int nparts; /* parts submitted */
    char upload_id[1024];

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    uint8_t *free_bufs[64];
    int nfree;
    int nalloc;   /* buffers allocated (<= parallelism) */
    int inflight; /* part threads running */
    char (*etags)[80];
    int etags_cap;
    ts_status fail_st;
    char fail_msg[512];
} s3_writer;

typedef struct part_job {
    s3_writer *w;
    int partno;
    uint8_t *buf;
    size_t len;
} part_job;

static void buf_account(s3_store *s, int64_t delta)
{
    uint64_t now = atomic_fetch_add(&s->part_bytes_now, (uint64_t)delta) + (uint64_t)delta;
    uint64_t peak = atomic_load(&s->part_bytes_peak);
    while (now > peak && !atomic_compare_exchange_weak(&s->part_bytes_peak, &peak, now)) {
    }
}

/* Writer thread; takes w->mu. Waits for a free buffer within the budget. */
static uint8_t *wbuf_get(s3_writer *w)
{
    uint8_t *b = NULL;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->nfree) {
            b = w->free_bufs[--w->nfree];
            break;
        }
        if (w->nalloc < w->s->parallelism) {
            w->nalloc++;
            pthread_mutex_unlock(&w->mu);
            b = malloc(w->s->part_bytes);
            pthread_mutex_lock(&w->mu);
            if (!b)
                w->nalloc--;
            else
                buf_account(w->s, (int64_t)w->s->part_bytes);
            break;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return b;
}

/* Any thread; caller holds w->mu. */
static void wbuf_put_locked(s3_writer *w, uint8_t *b)
{
    if (!b) return;
    w->free_bufs[w->nfree++] = b;
    pthread_cond_broadcast(&w->cv);
}

static void wbuf_free_all(s3_writer *w)
{
    for (int i = 0; i < w->nfree; i++) {
        free(w->free_bufs[i]);
        buf_account(w->s, -(int64_t)w->s->part_bytes);
    }
    w->nfree = 0;
    w->nalloc = 0;
}

static ts_status check_part(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                            char *errstr, size_t errlen)
{
    (void)arg;
    if (!rs->etag[0])
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "UploadPart %s: no ETag in the answer", name);
    return TS_OK;
}

/* Part thread: uploads one part, records its ETag or the first failure. */
static void *part_main(void *arg)
{
    part_job *j = arg;
    s3_writer *w = j->w;
    s3_store *s = w->s;
    char pn[16], err[512] = "";
    snprintf(pn, sizeof(pn), "%d", j->partno);
    ts_s3_kv q[2] = {{"partNumber", pn}, {"uploadId", w->upload_id}};
    s3_req rq = {.method = "PUT",
                 .key = w->key,
                 .query = q,
                 .nquery = 2,
                 .body = j->buf,
                 .body_len = j->len,
                 .what = "UploadPart",
                 .check = check_part};
    s3_resp rs;
    resp_init(&rs, ERR_BODY_MAX);
    ts_retry r;
    retry_init(s, &r);
    pthread_mutex_lock(&w->mu);
    int skip = w->fail_st != TS_OK;
    pthread_mutex_unlock(&w->mu);
    ts_status st = skip ? TS_E_CLOSED : s3_do(s, &rq, &rs, &r, err, sizeof(err));
    pthread_mutex_lock(&w->mu);
    if (st == TS_OK) {
        snprintf(w->etags[j->partno - 1], sizeof(w->etags[0]), "%s", rs.etag);
    } else if (w->fail_st == TS_OK) {
        w->fail_st = st;
        snprintf(w->fail_msg, sizeof(w->fail_msg), "part %d: %s", j->partno, err);
    }
    wbuf_put_locked(w, j->buf);
    w->inflight--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    resp_free(&rs);
    free(j);
    return NULL;
}

static ts_status wr_fail(s3_writer *w, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    ts_status st = w->fail_st;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", w->fail_msg);
    pthread_mutex_unlock(&w->mu);
    if (st == TS_OK) return TS_OK;
    char name[TS_S3_KEY_MAX + 300];
    obj_name(w->s, w->key, name, sizeof(name));
    return ts_err_set(errstr, errlen, st, "multipart upload of %s: %s", name, msg);
}

static ts_status check_create(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                              char *errstr, size_t errlen)
{
    char id[1024];
    (void)arg;
    if (ts_s3_xml_parse_upload_id((const char *)rs->body.data, rs->body.len, id, sizeof(id)))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "CreateMultipartUpload %s: no UploadId in the answer", name);
    return TS_OK;
}

static ts_status mp_create(s3_writer *w, char *errstr, size_t errlen)
{
    ts_s3_kv q[1] = {{"uploads", ""}};
    s3_req rq = {.method = "POST",
                 .key = w->key,
                 .query = q,
                 .nquery = 1,
                 .what = "CreateMultipartUpload",
                 .check = check_create};
    s3_resp rs;
    resp_init(&rs, XML_MAX_BYTES);
    ts_retry r;
    retry_init(w->s, &r);
    ts_status st = s3_do(w->s, &rq, &rs, &r, errstr, errlen);
    if (!st && ts_s3_xml_parse_upload_id((const char *)rs.body.data, rs.body.len, w->upload_id,
                                         sizeof(w->upload_id)))
        st = ts_err_set(errstr, errlen, TS_E_REMOTE,
                        "CreateMultipartUpload %s: no UploadId in the answer", w->key);
    resp_free(&rs);
    return st;
}

/* Writer thread: hands w->cur to a part thread (waits while `parallelism`
 * parts are in flight). */
static ts_status submit_part(s3_writer *w, char *errstr, size_t errlen)
{
    ts_status st;
    if (!w->upload_id[0] && (st = mp_create(w, errstr, errlen))) return st;
    if (w->nparts >= MAX_PARTS)
        return ts_err_set(errstr, errlen, TS_E_MSG_TOO_LARGE,
                          "%s: object needs more than %d parts; raise s3.multipart.part.bytes",
                          w->key, MAX_PARTS);
    if ((st = wr_fail(w, errstr, errlen))) return st;
    part_job *j = malloc(sizeof(*j));
    if (!j) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    pthread_mutex_lock(&w->mu);
    if (w->nparts >= w->etags_cap) {
        int nc = w->etags_cap ? w->etags_cap * 2 : 64;
        if (nc > MAX_PARTS) nc = MAX_PARTS;
        void *ne = realloc(w->etags, (size_t)nc * sizeof(w->etags[0]));
        if (!ne) {
            pthread_mutex_unlock(&w->mu);
            free(j);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        w->etags = ne;
        w->etags_cap = nc;
    }
    w->nparts++;
    w->etags[w->nparts - 1][0] = '\0';
    *j = (part_job){w, w->nparts, w->cur, w->cur_len};
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
    w->cur = NULL;
    w->cur_len = 0;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, part_main, j);
    pthread_attr_destroy(&at);
    if (rc) {
        pthread_mutex_lock(&w->mu);
        w->inflight--;
        wbuf_put_locked(w, j->buf);
        if (w->fail_st == TS_OK) {
            w->fail_st = TS_E_NOMEM;
            snprintf(w->fail_msg, sizeof(w->fail_msg), "cannot start a part thread: %s",
                     strerror(rc));
        }
        pthread_mutex_unlock(&w->mu);
        free(j);
        return wr_fail(w, errstr, errlen);
    }
    return TS_OK;
}

static void wait_idle(s3_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->inflight) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void writer_free(s3_writer *w)
{
    wait_idle(w);
    pthread_mutex_lock(&w->mu);
    wbuf_put_locked(w, w->cur);
    w->cur = NULL;
    wbuf_free_all(w);
    pthread_mutex_unlock(&w->mu);
    free(w->etags);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

static ts_status wr_write(ts_objstore_writer *base, const void *data, size_t len, char *errstr,
                          size_t errlen)
{
    s3_writer *w = (s3_writer *)base;
    const uint8_t *p = data;
    ts_status st;
    while (len) {
        if (!w->cur) {
            if ((st = wr_fail(w, errstr, errlen))) return st;
            if (!(w->cur = wbuf_get(w)))
                return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        if (w->cur_len == w->s->part_bytes) { /* full, and more follows: ship it */
            if ((st = submit_part(w, errstr, errlen))) return st;
            continue;
        }
        size_t n = w->s->part_bytes - w->cur_len;
        if (n > len) n = len;
        memcpy(w->cur + w->cur_len, p, n);
        w->cur_len += n;
        w->total += n;
        p += n;
        len -= n;
    }
    return TS_OK;
}

static void mp_abort(s3_writer *w)
{
    if (!w->upload_id[0]) return;
    wait_idle(w);
    ts_s3_kv q[1] = {{"uploadId", w->upload_id}};
    s3_req rq = {
        .method = "DELETE", .key = w->key, .query = q, .nquery = 1, .what = "AbortMultipartUpload"};
    s3_resp rs;
    resp_init(&rs, ERR_BODY_MAX);
    ts_retry r;
    ts_retry_init(&r, w->s->op_timeout_ms < 30000 ? w->s->op_timeout_ms : 30000, RETRY_BASE_MS,
                  RETRY_MAX_MS, 0);
    char err[512];
    ts_status st = s3_do(w->s, &rq, &rs, &r, err, sizeof(err));
    if (st && st != TS_E_NOT_FOUND)
        ts_log_warn(MOD,
                    "could not abort multipart upload of %s (the bucket's lifecycle rule "
                    "for incomplete uploads will reclaim it): %s",
                    w->key, err);
    resp_free(&rs);
}

static void wr_abort(ts_objstore_writer *base)
{
    s3_writer *w = (s3_writer *)base;
    if (!w) return;
    mp_abort(w);
    writer_free(w);
}

static ts_status check_complete(const s3_req *rq, const char *name, s3_resp *rs, void *arg,
                                char *errstr, size_t errlen)
{
    (void)arg;
    /* A 200 may still carry an <Error> (the store failed while streaming). */
    if (ts_s3_xml_parse_error((const char *)rs->body.data, rs->body.len, rs->err_code,
                              sizeof(rs->err_code), rs->err_msg, sizeof(rs->err_msg))) {
        ts_status st = TS_E_REMOTE_RETRIABLE; /* InternalError, SlowDown… */
        if (!strcmp(rs->err_code, "NoSuchUpload"))
            st = TS_E_NOT_FOUND;
        else if (!strcmp(rs->err_code, "InvalidPart") ||
                 !strcmp(rs->err_code, "InvalidPartOrder") ||
                 !strcmp(rs->err_code, "EntityTooSmall") || !strcmp(rs->err_code, "AccessDenied"))
            st = TS_E_REMOTE;
        return ts_err_set(errstr, errlen, st, "CompleteMultipartUpload %s: %s %s", name,
                          rs->err_code, rs->err_msg);
    }
    if (ts_s3_xml_parse_complete((const char *)rs->body.data, rs->body.len))
        return ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE,
                          "CompleteMultipartUpload %s: unreadable answer", name);
    return TS_OK;
}

static ts_status mp_complete(s3_writer *w, char *errstr, size_t errlen)
{
    ts_buf body;
    ts_buf_init(&body, (size_t)MAX_PARTS * 160 + 256);
    ts_status st = ts_buf_printf(&body, "<CompleteMultipartUpload>");
    for (int i = 0; i < w->nparts && !st; i++)
        st = ts_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>",
                           i + 1, w->etags[i]);
    if (!st) st = ts_buf_printf(&body, "</CompleteMultipartUpload>");
    if (st) {
        ts_buf_free(&body);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    ts_s3_kv q[1] = {{"uploadId", w->upload_id}};
    s3_req rq = {.method = "POST",
                 .key = w->key,
                 .query = q,
                 .nquery = 1,
                 .body = body.data,
                 .body_len = body.len,
                 .what = "CompleteMultipartUpload",
                 .check = check_complete};
    s3_resp rs;
    resp_init(&rs, XML_MAX_BYTES);
    ts_retry r;
    retry_init(w->s, &r);
    st = s3_do(w->s, &rq, &rs, &r, errstr, errlen);
    int unanswered = rs.unanswered;
    resp_free(&rs);
    ts_buf_free(&body);
    /* The object's size must be what we wrote; this also settles a retried
     * complete whose first answer was lost (NoSuchUpload the second time). */
    if (st == TS_OK || (st == TS_E_NOT_FOUND && unanswered)) {
        uint64_t size = 0;
        char e2[512];
        ts_status hs = head_in(w->s, w->key, &size, NULL, 0, &r, e2, sizeof(e2));
        if (hs == TS_OK && size == w->total) return TS_OK;
        if (st == TS_OK)
            return ts_err_set(errstr, errlen, hs ? hs : TS_E_REMOTE,
                              "CompleteMultipartUpload %s: object size %llu after completing, "
                              "wrote %llu%s%s",
                              w->key, (unsigned long long)size, (unsigned long long)w->total,
                              hs ? ": " : "", hs ? e2 : "");
    }
    return st;
}

static ts_status wr_commit(ts_objstore_writer *base, char *errstr, size_t errlen)
{
    s3_writer *w = (s3_writer *)base;
    ts_status st;
    if (!w->upload_id[0]) { /* fits in one part: one PUT */
        ts_retry r;
        retry_init(w->s, &r);
        st = put_in(w->s, w->key, w->cur, w->cur_len, 0, &r, errstr, errlen);
        writer_free(w);
        return st;
    }
    st = submit_part(w, errstr, errlen);
    wait_idle(w);
    if (!st) st = wr_fail(w, errstr, errlen);
    if (!st) st = mp_complete(w, errstr, errlen);
    if (st) mp_abort(w);
    writer_free(w);
    return st;
}

static const ts_objstore_writer_ops g_writer_ops = {wr_write, wr_commit, wr_abort};

static ts_status s3_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                                char *errstr, size_t errlen)
{
    s3_store *s = (s3_store *)os;
    ts_status st = check_key(s, key, errstr, errlen);
    if (st) return st;
    s3_writer *w = calloc(1, sizeof(*w));
    if (!w) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    w->base.ops = &g_writer_ops;
    w->s = s;
    snprintf(w->key, sizeof(w->key), "%s", key);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    *out = &w->base;
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * Open / destroy
 * ------------------------------------------------------------------------ */
static void s3_destroy(ts_objstore *os)
{
    s3_store *s = (s3_store *)os;
    if (!s) return;
    for (int i = 0; i < s->npool; i++) curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->pool_mu);
    ts_s3_creds_wipe(&s->creds);
    free(s);
}

static const ts_objstore_ops g_ops = {
    .scheme = "s3",
    .put = s3_put,
    .writer_open = s3_writer_open,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .del_many = s3_del_many,
    .list = s3_list,
    .destroy = s3_destroy,
};

int ts_objstore_is_s3(const ts_objstore *os) { return os && os->ops == &g_ops; }

void ts_objstore_s3_stats(ts_objstore *os, ts_s3_stats *out)
{
    s3_store *s = (s3_store *)os;
    out->requests = atomic_load(&s->n_requests);
    out->retries = atomic_load(&s->n_retries);
    out->part_buf_bytes = atomic_load(&s->part_bytes_now);
    out->part_buf_peak = atomic_load(&s->part_bytes_peak);
    out->bytes_sent = atomic_load(&s->n_sent);
    out->bytes_received = atomic_load(&s->n_received);
}

void ts_objstore_s3_set_list_page(ts_objstore *os, int max_keys)
{
    if (max_keys < 1) max_keys = 1;
    if (max_keys > 1000) max_keys = 1000;
    atomic_store(&((s3_store *)os)->list_page, max_keys);
}

/* Splits "http[s]://host[:port][/path]" of the endpoint. */
static ts_status parse_endpoint(s3_store *s, const char *ep, char *errstr, size_t errlen)
{
    const char *rest;
    if (!strncmp(ep, "http://", 7)) {
        strcpy(s->scheme, "http");
        rest = ep + 7;
    } else if (!strncmp(ep, "https://", 8)) {
        strcpy(s->scheme, "https");
        rest = ep + 8;
    } else {
        return ts_err_set(
            errstr, errlen, TS_E_CONFIG,
            "invalid S3 endpoint '%s': expected http://host[:port] or https://host[:port]", ep);
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || hl >= sizeof(s->host) - 260)
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 endpoint '%s': bad host", ep);
    char host[512];
    memcpy(host, rest, hl);
    host[hl] = '\0';
    const char *path = rest + hl;
    size_t pl = strcspn(path, "?#");
    while (pl && path[pl - 1] == '/') pl--;
    if (pl >= sizeof(s->base_path))
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 endpoint '%s': path too long",
                          ep);
    memcpy(s->base_path, path, pl);
    s->base_path[pl] = '\0';
    if (s->path_style)
        snprintf(s->host, sizeof(s->host), "%s", host);
    else
        snprintf(s->host, sizeof(s->host), "%s.%s", s->bucket, host);
    snprintf(s->endpoint_desc, sizeof(s->endpoint_desc), "%s://%s%s", s->scheme, host,
             s->base_path);
    return TS_OK;
}

ts_status ts_objstore_s3_open(const char *url, const ts_config *cfg, ts_objstore **out,
                              char *errstr, size_t errlen)
{
    *out = NULL;
    if (strncmp(url, "s3://", 5))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid S3 URL '%s': expected s3://bucket[/prefix]", url);
    if (ts_objstore_s3_global_init())
        return ts_err_set(errstr, errlen, TS_E_UNSUPPORTED, "curl_global_init failed");
    s3_store *s = calloc(1, sizeof(*s));
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    s->base.ops = &g_ops;
    snprintf(s->base.url, sizeof(s->base.url), "%s", url);
    pthread_mutex_init(&s->pool_mu, NULL);
    atomic_store(&s->list_page, 1000);
    ts_status st;

    const char *b = url + 5;
    size_t bl = strcspn(b, "/");
    if (bl == 0 || bl >= sizeof(s->bucket) ||
        strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < bl) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 URL '%s': bad bucket name", url);
        goto fail;
    }
    memcpy(s->bucket, b, bl);
    const char *p = b + bl;
    while (*p == '/') p++;
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/') pl--;
    if (pl + 1 >= sizeof(s->prefix)) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "invalid S3 URL '%s': prefix too long", url);
        goto fail;
    }
    if (pl) {
        memcpy(s->prefix, p, pl);
        s->prefix[pl] = '/';
    }

    if ((st = ts_s3_creds_resolve(cfg, NULL, NULL, &s->creds, errstr, errlen))) goto fail;
    const char *ps = ts_config_get_str(cfg, "s3.path.style.access");
    s->path_style = !strcmp(ps, "true") || (!strcmp(ps, "auto") && s->creds.endpoint[0]);
    s->tls_verify = ts_config_get_bool(cfg, "s3.tls.verify");
    s->req_timeout_ms = ts_config_get_int(cfg, "remote.storage.request.timeout.ms");
    s->op_timeout_ms = ts_config_get_int(cfg, "remote.storage.operation.timeout.ms");
    s->part_bytes = (size_t)ts_config_get_int(cfg, "s3.multipart.part.bytes");
    s->parallelism = (int)ts_config_get_int(cfg, "s3.multipart.parallelism");
    if (s->creds.endpoint[0]) {
        if ((st = parse_endpoint(s, s->creds.endpoint, errstr, errlen))) goto fail;
    } else {
        char aws[128];
        snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com", s->creds.region);
        if ((st = parse_endpoint(s, aws, errstr, errlen))) goto fail;
    }
    if (!s->tls_verify && !strcmp(s->scheme, "https"))
        ts_log_warn(MOD, "TLS peer verification is off for %s (s3.tls.verify=false)",
                    s->endpoint_desc);
    ts_log_info(MOD, "%s: endpoint %s, region %s, %s-style, access key id %s (from %s)", url,
                s->endpoint_desc, s->creds.region, s->path_style ? "path" : "virtual-hosted",
                s->creds.access_key_id, s->creds.source);
    *out = &s->base;
    return TS_OK;
fail:
    s3_destroy(&s->base);
    return st;
}
