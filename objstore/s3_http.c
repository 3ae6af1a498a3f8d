/*
 * s3_http.c — one S3 request over libcurl, signed, bounded and retried.
 *
 * One store is shared by all threads; libcurl handles are not. Each
 * request borrows a handle from a small pool (a mutex-protected stack) and
 * gives it back, so a handle serves one thread at a time while its
 * connection cache is reused from request to request (keep-alive).
 *
 * Every operation runs under one ts_retry whose deadline is
 * remote.storage.operation.timeout.ms; each attempt is capped by
 * remote.storage.request.timeout.ms and by what is left of the deadline.
 * Retriable failures (5xx, SlowDown, RequestTimeout, resets, timeouts,
 * bodies that fail their check) back off with full jitter; everything
 * else returns at once. 401/403 never retry: the message names the
 * endpoint and the access key id, never the secret, and is logged once
 * per store. Requests are re-signed on every attempt (fresh x-amz-date).
 * Bodies are signed (x-amz-content-sha256 = SHA-256 of the payload, which
 * the store checks before it keeps the bytes); POST bodies, and PUT bodies
 * when s3.content.md5 is on, also carry Content-MD5. A body's digests are
 * computed once per operation and reused by every attempt:
 * they are the client's largest CPU cost, and on a small machine the
 * store's own hashing competes with them for the same cores.
 *
 * curl_global_init runs once per process through
 * ts_objstore_s3_global_init() (see s3.h for who calls it and when).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "s3_internal.h"

/* ------------------------------------------------------------------------
 * The handle pool
 * ------------------------------------------------------------------------ */
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
    if (s->npool < S3_POOL_MAX_IDLE) {
        s->pool[s->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------------
 * One request, with retries
 * ------------------------------------------------------------------------ */

void s3_resp_init(s3_resp *rs, size_t max)
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

void s3_resp_free(s3_resp *rs) { ts_buf_free(&rs->body); }

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
void s3_obj_name(const s3_store *s, const char *key, char *out, size_t len)
{
    snprintf(out, len, "s3://%s/%s%s", s->addr.bucket, s->addr.prefix, key ? key : "");
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

/* What to do about a rejected request, by S3 error code. */
static const char *auth_hint(const char *code)
{
    if (!strcmp(code, "SignatureDoesNotMatch"))
        return "the secret key does not belong to this access key id; fix the secret";
    if (!strcmp(code, "InvalidAccessKeyId"))
        return "the store does not know this access key id; fix the key id or the endpoint";
    if (!strcmp(code, "RequestTimeTooSkewed"))
        return "the local clock differs from the server's; fix the time (NTP)";
    if (!strcmp(code, "ExpiredToken") || !strcmp(code, "InvalidToken"))
        return "the session token is expired or invalid; refresh the temporary credentials";
    if (!strcmp(code, "AuthorizationHeaderMalformed"))
        return "the request was signed for another region; set aws.region / AWS_REGION";
    return "the key lacks permission for this bucket or operation; check its policy";
}

/* The digests of one request's body; computed once per operation. */
typedef struct body_digests {
    char sha256[65]; /* x-amz-content-sha256 */
    char md5b64[25]; /* Content-MD5; "" when not sent */
} body_digests;

/* Content-MD5 goes with every POST body (DeleteObjects requires it) and
 * with PUT bodies when s3.content.md5 asks for it: a PUT's signed SHA-256,
 * which the store verifies, already covers its bytes. */
static int wants_md5(const s3_store *s, const s3_req *rq)
{
    if (!strcmp(rq->method, "POST")) return 1;
    return s->content_md5 && !strcmp(rq->method, "PUT");
}

/* Any thread. Two passes over the body cost no more than one that feeds
 * both digests slice by slice (measured: MD5 is compute-bound here). */
static void digest_body(s3_store *s, const s3_req *rq, body_digests *d)
{
    const void *body = rq->body ? (const void *)rq->body : "";
    ts_s3_sha256_hex(body, rq->body_len, d->sha256);
    d->md5b64[0] = '\0';
    if (wants_md5(s, rq)) ts_s3_md5(body, rq->body_len, NULL, d->md5b64);
    atomic_fetch_add(&s->n_hashed, rq->body_len);
}

/* Everything one attempt prepares before it talks to the server. */
typedef struct attempt_ctx {
    char name[TS_S3_KEY_MAX + 300]; /* s3://bucket/prefix/key, for messages */
    ts_buf path, url, auth;
    char amz_date[17];
    const body_digests *dg;
    ts_s3_kv hs[S3_REQ_HEADERS_MAX]; /* every signed header */
    size_t nh;
    struct curl_slist *hl; /* what curl sends: hs, Authorization and two unsigned ones */
    ts_s3_keys *keys;      /* a reference held until the request is signed */
} attempt_ctx;

static void ctx_init(attempt_ctx *c, const s3_store *s, const s3_req *rq, const body_digests *dg)
{
    s3_obj_name(s, rq->key, c->name, sizeof(c->name));
    c->dg = dg;
    ts_buf_init(&c->path, 16384);
    ts_buf_init(&c->url, 32768);
    ts_buf_init(&c->auth, 4096);
    c->nh = 0;
    c->hl = NULL;
    c->keys = NULL;
}

static void ctx_free(attempt_ctx *c)
{
    ts_s3_keys_release(c->keys);
    curl_slist_free_all(c->hl);
    ts_buf_free(&c->path);
    ts_buf_free(&c->url);
    ts_buf_free(&c->auth);
}

/* The signed headers: the ones S3 needs, then the caller's. A request that
 * needs more than S3_REQ_HEADERS_MAX is refused with an error naming the
 * limit, never sent with some left out. */
static ts_status collect_headers(attempt_ctx *c, const s3_store *s, const s3_req *rq, char *errstr,
                                 size_t errlen)
{
    ts_s3_amz_date(time(NULL), c->amz_date);
    c->hs[c->nh++] = (ts_s3_kv){"host", s->addr.host};
    c->hs[c->nh++] = (ts_s3_kv){"x-amz-date", c->amz_date};
    c->hs[c->nh++] = (ts_s3_kv){"x-amz-content-sha256", c->dg->sha256};
    if (c->keys->session_token[0])
        c->hs[c->nh++] = (ts_s3_kv){"x-amz-security-token", c->keys->session_token};
    if (c->dg->md5b64[0]) c->hs[c->nh++] = (ts_s3_kv){"content-md5", c->dg->md5b64};
    if (rq->nhdrs > S3_REQ_HEADERS_MAX - c->nh)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s %s: %zu extra request headers exceed the limit of %zu "
                          "(S3_REQ_HEADERS_MAX %d, %zu taken by the signature); nothing was sent",
                          rq->what, c->name, rq->nhdrs, S3_REQ_HEADERS_MAX - c->nh,
                          S3_REQ_HEADERS_MAX, c->nh);
    for (size_t i = 0; i < rq->nhdrs; i++) c->hs[c->nh++] = rq->hdrs[i];
    return TS_OK;
}

static ts_status slist_add(struct curl_slist **hl, const char *name, const char *value,
                           char *errstr, size_t errlen)
{
    char line[8192];
    snprintf(line, sizeof(line), "%s:%s%s", name, value ? " " : "", value ? value : "");
    struct curl_slist *n = curl_slist_append(*hl, line);
    if (!n) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    *hl = n;
    return TS_OK;
}

/* Signs the collected headers and lists what curl sends. */
static ts_status sign_headers(attempt_ctx *c, const s3_store *s, const s3_req *rq, char *errstr,
                              size_t errlen)
{
    ts_s3_sign_req sr = {
        .method = rq->method,
        .path = (const char *)c->path.data,
        .query = rq->query,
        .nquery = rq->nquery,
        .headers = c->hs,
        .nheaders = c->nh,
        .payload_hash = c->dg->sha256,
        .amz_date = c->amz_date,
        .region = s->creds.region,
        .service = "s3",
        .access_key_id = c->keys->access_key_id,
        .secret_access_key = c->keys->secret_access_key,
    };
    ts_status st = ts_s3_sign(&sr, &c->auth, NULL, NULL);
    if (st)
        return ts_err_set(errstr, errlen, st, "%s %s: cannot sign the request", rq->what, c->name);
    for (size_t i = 0; i < c->nh; i++)
        if ((st = slist_add(&c->hl, c->hs[i].name, c->hs[i].value, errstr, errlen))) return st;
    if ((st = slist_add(&c->hl, "Authorization", (const char *)c->auth.data, errstr, errlen)))
        return st;
    /* Best effort, as before: an empty "Expect:" only saves a 100-continue
     * round trip, and POST bodies are XML either way. */
    (void)slist_add(&c->hl, "Expect", NULL, NULL, 0);
    if (!strcmp(rq->method, "POST"))
        (void)slist_add(&c->hl, "Content-Type", "application/xml", NULL, 0);
    return TS_OK;
}

/* Sets every option of one transfer; br and curl_err outlive it. */
static void set_options(CURL *h, const s3_store *s, const s3_req *rq, s3_resp *rs,
                        const attempt_ctx *c, body_reader *br, char *curl_err, int64_t timeout_ms)
{
    curl_easy_setopt(h, CURLOPT_URL, (const char *)c->url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(
        h, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(timeout_ms < S3_CONNECT_TIMEOUT_MS ? timeout_ms : S3_CONNECT_TIMEOUT_MS));
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
        curl_easy_setopt(h, CURLOPT_READDATA, br);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, br);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (!strcmp(rq->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
}

/* A transfer that got no complete HTTP answer. */
static ts_status transport_failure(const s3_store *s, const s3_req *rq, s3_resp *rs,
                                   const char *name, CURLcode rc, const char *curl_err,
                                   char *errstr, size_t errlen)
{
    if (rs->overflow)
        return ts_err_set(errstr, errlen, TS_E_NOMEM,
                          "%s %s: response larger than the %zu-byte cap", rq->what, name,
                          rs->body.max);
    if (rs->status == 0) rs->unanswered++;
    ts_status st = classify_curl(rc);
    ts_err_set(errstr, errlen, st, "%s %s: %s (%s) talking to %s%s", rq->what, name,
               curl_easy_strerror(rc), curl_err[0] ? curl_err : "no detail", s->addr.endpoint,
               rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE
                   ? "; set aws.ca.bundle (or AWS_CA_BUNDLE) to the CA that signed the "
                     "server's certificate"
                   : "");
    return st;
}

/* A non-2xx answer: its S3 error code decides the status and the message. */
static ts_status http_failure(const s3_store *s, const s3_req *rq, s3_resp *rs, const char *name,
                              const ts_s3_keys *keys, char *errstr, size_t errlen)
{
    ts_s3_xml_parse_error((const char *)rs->body.data, rs->body.len, rs->err_code,
                          sizeof(rs->err_code), rs->err_msg, sizeof(rs->err_msg));
    ts_status st = classify_http(rq, rs);
    if (st == TS_E_AUTH) {
        ts_err_set(errstr, errlen, TS_E_AUTH,
                   "%s %s: the S3 endpoint %s rejected access key id '%s' (HTTP %ld %s%s%s): "
                   "%s (credentials from %s)",
                   rq->what, name, s->addr.endpoint, keys->access_key_id, rs->status,
                   rs->err_code[0] ? rs->err_code : "Forbidden", rs->err_msg[0] ? ": " : "",
                   rs->err_msg, auth_hint(rs->err_code), keys->source);
    } else if (st == TS_E_REMOTE && !strcmp(rs->err_code, "NoSuchBucket")) {
        ts_err_set(errstr, errlen, st, "%s %s: bucket '%s' does not exist at %s", rq->what, name,
                   s->addr.bucket, s->addr.endpoint);
    } else {
        ts_err_set(errstr, errlen, st, "%s %s: HTTP %ld %s%s%s", rq->what, name, rs->status,
                   rs->err_code[0] ? rs->err_code : "", rs->err_msg[0] ? " - " : "", rs->err_msg);
    }
    return st;
}

/* Sends the prepared request on a pooled handle and maps the outcome. */
static ts_status perform(s3_store *s, const s3_req *rq, s3_resp *rs, const attempt_ctx *c,
                         int64_t timeout_ms, char *errstr, size_t errlen)
{
    CURL *h = handle_get(s);
    if (!h) return ts_err_set(errstr, errlen, TS_E_NOMEM, "curl_easy_init failed");
    char curl_err[CURL_ERROR_SIZE];
    curl_err[0] = '\0';
    body_reader br = {rq->body, rq->body_len, 0};
    set_options(h, s, rq, rs, c, &br, curl_err, timeout_ms);
    atomic_fetch_add(&s->n_requests, 1);
    ts_log_debug(S3_MOD, "%s %s", rq->method, (const char *)c->url.data);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    ts_status st;
    if (rc != CURLE_OK)
        st = transport_failure(s, rq, rs, c->name, rc, curl_err, errstr, errlen);
    else if (rs->status < 200 || rs->status >= 300)
        st = http_failure(s, rq, rs, c->name, c->keys, errstr, errlen);
    else
        st = rq->check ? rq->check(rq, c->name, rs, rq->check_arg, errstr, errlen) : TS_OK;
    handle_put(s, h);
    return st;
}

/* One attempt: keys, address, collect and sign the headers, send, map.
 * Fills rs; returns the mapped status and writes a message. *used gets a
 * reference to the keys it signed with (NULL when it had none). */
static ts_status attempt(s3_store *s, const s3_req *rq, const body_digests *dg, s3_resp *rs,
                         int64_t timeout_ms, ts_s3_keys **used, char *errstr, size_t errlen)
{
    attempt_ctx c;
    ctx_init(&c, s, rq, dg);
    resp_reset_attempt(rs);
    *used = NULL;
    ts_status st;
    if ((st = ts_s3_provider_get(s->provider, &c.keys, errstr, errlen)))
        ts_err_prefix(errstr, errlen, st, "%s %s", rq->what, c.name);
    else if (ts_s3_addr_target(&s->addr, rq->key, rq->query, rq->nquery, &c.path, &c.url))
        st = ts_err_set(errstr, errlen, TS_E_INVAL, "%s %s: key too long to address", rq->what,
                        c.name);
    else if (!(st = collect_headers(&c, s, rq, errstr, errlen)) &&
             !(st = sign_headers(&c, s, rq, errstr, errlen)) &&
             !(st = perform(s, rq, rs, &c, timeout_ms, errstr, errlen))) {
        atomic_fetch_add(&s->n_sent, rq->body_len);
        atomic_fetch_add(&s->n_received, rs->body.len);
    }
    if (c.keys) {
        *used = c.keys;
        c.keys = NULL;
    }
    ctx_free(&c);
    return st;
}

/* The server says the session token is no longer good, although the
 * provider still had it as valid (revoked, or clocks apart). */
static int token_rejected(const s3_resp *rs)
{
    return !strcmp(rs->err_code, "ExpiredToken") || !strcmp(rs->err_code, "InvalidToken") ||
           !strcmp(rs->err_code, "TokenRefreshRequired");
}

/* Runs rq under the retry budget r. Any thread. */
ts_status s3_do(s3_store *s, const s3_req *rq, s3_resp *rs, ts_retry *r, char *errstr,
                size_t errlen)
{
    body_digests dg;
    digest_body(s, rq, &dg);
    ts_status st = TS_E_TIMEOUT;
    int64_t t0 = ts_mono_ms();
    int refreshed = 0;
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
        ts_s3_keys *used;
        st = attempt(s, rq, &dg, rs, tmo, &used, errstr, errlen);
        /* Temporary keys the server calls expired: refresh them and try
         * once more, at once (not a backoff matter). */
        int again = st == TS_E_AUTH && used && !refreshed && token_rejected(rs) &&
                    ts_s3_provider_invalidate(s->provider, used);
        ts_s3_keys_release(used);
        if (st == TS_OK) return TS_OK;
        if (again) {
            refreshed = 1;
            ts_log_info(S3_MOD, "%s; refreshing the credentials and retrying once", errstr);
            continue;
        }
        if (st == TS_E_AUTH) {
            if (!atomic_exchange(&s->auth_logged, 1)) ts_log_error(S3_MOD, "%s", errstr);
            return st;
        }
        if (!ts_retry_next(r, st)) break;
        atomic_fetch_add(&s->n_retries, 1);
        ts_log_debug(S3_MOD, "retrying after: %s", errstr);
    }
    if (ts_status_is_retriable(st) && rs->attempts > 1)
        ts_err_prefix(
            errstr, errlen, st,
            "gave up after %d attempts in %lld ms (remote.storage.operation.timeout.ms=%lld)",
            rs->attempts, (long long)(ts_mono_ms() - t0), (long long)s->op_timeout_ms);
    return st;
}

void s3_retry_init(const s3_store *s, ts_retry *r)
{
    ts_retry_init(r, s->op_timeout_ms, S3_RETRY_BASE_MS, S3_RETRY_MAX_MS, 0);
}

ts_status s3_do_fresh(s3_store *s, const s3_req *rq, s3_resp *rs, size_t max, char *errstr,
                      size_t errlen)
{
    s3_resp_init(rs, max);
    ts_retry r;
    s3_retry_init(s, &r);
    return s3_do(s, rq, rs, &r, errstr, errlen);
}

void s3_pool_destroy(s3_store *s)
{
    for (int i = 0; i < s->npool; i++) curl_easy_cleanup(s->pool[i]);
    s->npool = 0;
    pthread_mutex_destroy(&s->pool_mu);
}
