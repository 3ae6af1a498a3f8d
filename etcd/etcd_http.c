/*
 * etcd_http.c — the client and one gateway call over libcurl: deadline,
 * retries with full-jitter backoff, failover between members.
 *
 * A call has one deadline (op_timeout_ms, or the caller's, e.g. the lease
 * keeper's time left before expiry); each attempt is capped by
 * request_timeout_ms and what is left of the deadline. Retriable failures
 * (connect refused/reset, timeouts, 5xx, gRPC UNAVAILABLE: "no leader",
 * "leader changed", "request timed out") move the current endpoint to the
 * next member and try again at once; after a full round of members without
 * an answer the call backs off (base * 2^round, capped, full jitter). The
 * endpoint that answers stays current, so the next call starts there.
 * Anything else returns at once.
 *
 * Mutations are retried too: an attempt that timed out may have been
 * applied, so a retried txn can find its own write and report its compare
 * failed, a retried put bumps the revision twice. The controller's CAS
 * writes are safe under this (they re-read on a failed compare); a retried
 * lease grant may leave an unused lease, which expires.
 *
 * Handles: a mutex-protected stack of idle CURL handles, each used by one
 * thread at a time and keeping its connections alive between calls.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "etcd_internal.h"
#include "etcd_json.h"

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */
int64_t etcd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void etcd_sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1) {
    }
}

int64_t etcd_backoff_ms(const ts_etcd *c, int round)
{
    int64_t ceiling = c->o.retry_base_ms;
    for (int i = 0; i < round && ceiling < c->o.retry_max_ms; i++) ceiling *= 2;
    if (ceiling > c->o.retry_max_ms) ceiling = c->o.retry_max_ms;
    uint32_t rnd = 0;
    if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1) rnd = (uint32_t)etcd_mono_ms();
    return (int64_t)(rnd % (uint64_t)(ceiling + 1));
}

void etcd_body_free(etcd_body *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->overflow = b->nomem = 0;
}

/* ------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------ */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void ts_etcd_global_init(void) { pthread_once(&global_once, global_init_once); }

void ts_etcd_opts_default(ts_etcd_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->op_timeout_ms = 5000;
    o->request_timeout_ms = 2000;
    o->connect_timeout_ms = 1000;
    o->retry_base_ms = 50;
    o->retry_max_ms = 1000;
    o->max_attempts = 0;
    o->max_response_bytes = 8u << 20;
    o->max_value_bytes = 1536u << 10;
}

/* Splits "etcd://h:p,http://h:p" into c->endpoints. */
static ts_etcd_status parse_endpoints(ts_etcd *c, const char *list, char *errstr, size_t errlen)
{
    if (!list || !*list)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL,
                        "etcd: no endpoints given (expected host:port[,host:port...])");
    if (!strncmp(list, "etcd://", 7)) list += 7;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t')) s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '/')) n--;
        if (n >= 7 && !strncmp(s, "http://", 7)) s += 7, n -= 7;
        if (n >= 8 && !strncmp(s, "https://", 8))
            return etcd_err(errstr, errlen, TS_ETCD_E_INVAL,
                            "etcd endpoint '%.*s': https is not supported by this client",
                            (int)n, s);
        const char *colon = memrchr(s, ':', n);
        if (!n || !colon || colon == s || colon == s + n - 1 || n >= ETCD_ENDPOINT_MAX)
            return etcd_err(errstr, errlen, TS_ETCD_E_INVAL,
                            "etcd endpoint '%.*s' in '%s' is not host:port", (int)n, s, list);
        for (const char *q = colon + 1; q < s + n; q++)
            if (*q < '0' || *q > '9')
                return etcd_err(errstr, errlen, TS_ETCD_E_INVAL,
                                "etcd endpoint '%.*s': the port is not a number", (int)n, s);
        if (c->nendpoints >= ETCD_MAX_ENDPOINTS)
            return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: more than %d endpoints",
                            ETCD_MAX_ENDPOINTS);
        memcpy(c->endpoints[c->nendpoints], s, n);
        c->endpoints[c->nendpoints][n] = '\0';
        memcpy(c->urls[c->nendpoints], "http://", 7);
        memcpy(c->urls[c->nendpoints] + 7, s, n);
        c->urls[c->nendpoints][7 + n] = '\0';
        c->nendpoints++;
        if (!e) break;
        p = e + 1;
    }
    if (!c->nendpoints)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: no endpoints in '%s'", list);
    return TS_ETCD_OK;
}

ts_etcd_status ts_etcd_create(const ts_etcd_opts *o, ts_etcd **out, char *errstr, size_t errlen)
{
    *out = NULL;
    if (!o) return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: no options");
    ts_etcd_global_init();
    ts_etcd *c = calloc(1, sizeof(*c));
    if (!c) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    c->o = *o;
    ts_etcd_opts d;
    ts_etcd_opts_default(&d);
    if (c->o.op_timeout_ms <= 0) c->o.op_timeout_ms = d.op_timeout_ms;
    if (c->o.request_timeout_ms <= 0) c->o.request_timeout_ms = d.request_timeout_ms;
    if (c->o.connect_timeout_ms <= 0) c->o.connect_timeout_ms = d.connect_timeout_ms;
    if (c->o.retry_base_ms <= 0) c->o.retry_base_ms = d.retry_base_ms;
    if (c->o.retry_max_ms < c->o.retry_base_ms) c->o.retry_max_ms = c->o.retry_base_ms;
    if (!c->o.max_response_bytes) c->o.max_response_bytes = d.max_response_bytes;
    if (!c->o.max_value_bytes) c->o.max_value_bytes = d.max_value_bytes;
    if (c->o.max_attempts < 0) c->o.max_attempts = 0;
    c->o.endpoints = NULL; /* not kept: the caller's string */
    ts_etcd_status st = parse_endpoints(c, o->endpoints, errstr, errlen);
    if (st) {
        free(c);
        return st;
    }
    pthread_mutex_init(&c->pool_mu, NULL);
    atomic_init(&c->cur, 0);
    *out = c;
    return TS_ETCD_OK;
}

void ts_etcd_destroy(ts_etcd *c)
{
    if (!c) return;
    for (int i = 0; i < c->npool; i++) curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_mu);
    free(c);
}

const char *ts_etcd_current_endpoint(const ts_etcd *c)
{
    return c->endpoints[atomic_load(&((ts_etcd *)c)->cur) % c->nendpoints];
}

void ts_etcd_get_stats(const ts_etcd *c, ts_etcd_stats *out)
{
    ts_etcd *m = (ts_etcd *)c;
    out->requests = atomic_load(&m->n_requests);
    out->retries = atomic_load(&m->n_retries);
    out->failovers = atomic_load(&m->n_failovers);
}

void etcd_fail_over(ts_etcd *c, int idx)
{
    if (c->nendpoints < 2) return;
    int want = idx;
    if (atomic_compare_exchange_strong(&c->cur, &want, (idx + 1) % c->nendpoints))
        atomic_fetch_add(&c->n_failovers, 1);
}

/* Any thread; takes pool_mu. */
CURL *etcd_handle_get(ts_etcd *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool) h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_mu);
    if (h)
        curl_easy_reset(h); /* keeps the connection cache */
    else
        h = curl_easy_init();
    return h;
}

void etcd_handle_put(ts_etcd *c, CURL *h)
{
    if (!h) return;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool < ETCD_POOL_MAX_IDLE) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------------
 * Classification
 * ------------------------------------------------------------------------ */
ts_etcd_status etcd_classify_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return TS_ETCD_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY: return TS_ETCD_E_UNAVAILABLE;
    case CURLE_OUT_OF_MEMORY: return TS_ETCD_E_NOMEM;
    default: return TS_ETCD_E_REFUSED;
    }
}

/* gRPC codes: 3 INVALID_ARGUMENT, 4 DEADLINE_EXCEEDED, 5 NOT_FOUND,
 * 8 RESOURCE_EXHAUSTED, 9 FAILED_PRECONDITION, 11 OUT_OF_RANGE,
 * 14 UNAVAILABLE. etcd's own messages decide where codes overlap. */
ts_etcd_status etcd_classify_grpc(int code, const char *msg)
{
    if (strstr(msg, "compacted")) return TS_ETCD_E_COMPACTED;
    if (strstr(msg, "too large")) return TS_ETCD_E_TOO_LARGE;
    if (strstr(msg, "leader changed") || strstr(msg, "no leader") ||
        strstr(msg, "request timed out") || strstr(msg, "too many requests") ||
        strstr(msg, "not capable") || strstr(msg, "unhealthy"))
        return TS_ETCD_E_UNAVAILABLE;
    switch (code) {
    case 4:
    case 8:
    case 14: return TS_ETCD_E_UNAVAILABLE;
    case 5: return TS_ETCD_E_NOT_FOUND;
    case 11: return TS_ETCD_E_COMPACTED;
    case 3: return TS_ETCD_E_INVAL;
    default: return TS_ETCD_E_REFUSED;
    }
}

/* ------------------------------------------------------------------------
 * One call
 * ------------------------------------------------------------------------ */
static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud)
{
    etcd_body *b = ud;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->overflow = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->len + n + 1) nc *= 2;
        char *d = realloc(b->data, nc);
        if (!d) {
            b->nomem = 1;
            return 0;
        }
        b->data = d;
        b->cap = nc;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

struct curl_slist *etcd_headers(void)
{
    static const char *const hs[] = {
        "Content-Type: application/json",
        "Expect:",
        /* gRPC metadata through the gateway: a member that has lost its leader answers
         * "no leader" at once (and ends a watch stream) instead of holding the request */
        "Grpc-Metadata-hasleader: true",
    };
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
        struct curl_slist *n = curl_slist_append(l, hs[i]);
        if (!n) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

/* One attempt on endpoint ep. */
static ts_etcd_status attempt(ts_etcd *c, int ep, const char *what, const char *subject,
                              const char *path, const char *body, int64_t tmo,
                              etcd_body *resp, char *errstr, size_t errlen)
{
    ts_etcd_status st;
    char url[ETCD_ENDPOINT_MAX + 64];
    char curl_err[CURL_ERROR_SIZE];
    struct curl_slist *hl = NULL;
    snprintf(url, sizeof(url), "%s%s", c->urls[ep], path);
    resp->len = 0;
    resp->overflow = resp->nomem = 0;
    if (resp->data) resp->data[0] = '\0';
    CURL *h = etcd_handle_get(c);
    if (!h) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "curl_easy_init failed");
    hl = etcd_headers();
    if (!hl) {
        curl_slist_free_all(hl);
        etcd_handle_put(c, h);
        return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    }
    curl_err[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)tmo);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(tmo < c->o.connect_timeout_ms ? tmo : c->o.connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    atomic_fetch_add(&c->n_requests, 1);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    etcd_handle_put(c, h);
    const char *epn = c->endpoints[ep];
    if (rc != CURLE_OK) {
        if (resp->overflow)
            return etcd_err(errstr, errlen, TS_ETCD_E_TOO_LARGE,
                            "etcd %s %s at %s: answer larger than the %zu-byte cap "
                            "(max_response_bytes; read large prefixes with a limit)",
                            what, subject, epn, resp->max);
        if (resp->nomem)
            return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM,
                            "etcd %s %s at %s: out of memory reading the answer", what, subject,
                            epn);
        st = etcd_classify_curl(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return etcd_err(errstr, errlen, st,
                            "etcd %s %s at %s: no answer within %lld ms (%s)", what, subject,
                            epn, (long long)tmo, curl_err[0] ? curl_err : "timed out");
        return etcd_err(errstr, errlen, st, "etcd %s %s at %s: %s (%s)", what, subject, epn,
                        curl_easy_strerror(rc), curl_err[0] ? curl_err : "no detail");
    }
    int code;
    char msg[512];
    if (ts_etcd_json_error(resp->data, resp->len, &code, msg, sizeof(msg))) {
        st = etcd_classify_grpc(code, msg);
        if (st == TS_ETCD_E_REFUSED && status >= 500) st = TS_ETCD_E_UNAVAILABLE;
        return etcd_err(errstr, errlen, st, "etcd %s %s at %s: HTTP %ld, %s (gRPC code %d)",
                        what, subject, epn, status, msg, code);
    }
    if (status != 200) {
        st = status >= 500 || status == 429 || status == 408 ? TS_ETCD_E_UNAVAILABLE
             : status == 404                                 ? TS_ETCD_E_PROTOCOL
                                                             : TS_ETCD_E_REFUSED;
        return etcd_err(errstr, errlen, st, "etcd %s %s at %s: HTTP %ld%s%.*s%s", what, subject,
                        epn, status, resp->len ? ": " : "",
                        (int)(resp->len > 200 ? 200 : resp->len), resp->data ? resp->data : "",
                        status == 404 ? " (is it etcd 3.4 or later, with its /v3 gateway?)" : "");
    }
    return TS_ETCD_OK;
}

ts_etcd_status etcd_call(ts_etcd *c, const char *what, const char *subject, const char *path,
                         const char *body, int64_t timeout_ms, etcd_body *resp, char *errstr,
                         size_t errlen)
{
    ts_etcd_status st = TS_ETCD_E_TIMEOUT;
    resp->max = c->o.max_response_bytes;
    int64_t t0 = etcd_mono_ms();
    int64_t deadline = t0 + (timeout_ms > 0 ? timeout_ms : c->o.op_timeout_ms);
    int attempts = 0, since_backoff = 0, round = 0;
    char last[1024];
    last[0] = '\0';
    for (;;) {
        int64_t left = deadline - etcd_mono_ms();
        int64_t tmo = c->o.request_timeout_ms < left ? c->o.request_timeout_ms : left;
        if (tmo < 1) break;
        int ep = atomic_load(&c->cur) % c->nendpoints;
        if (attempts) atomic_fetch_add(&c->n_retries, 1);
        attempts++;
        st = attempt(c, ep, what, subject, path, body, tmo, resp, last, sizeof(last));
        if (st == TS_ETCD_OK) return TS_ETCD_OK;
        if (!ts_etcd_status_is_retriable(st)) {
            etcd_err(errstr, errlen, st, "%s", last);
            return st;
        }
        etcd_fail_over(c, ep);
        if (c->o.max_attempts && attempts >= c->o.max_attempts) break;
        if (++since_backoff >= c->nendpoints) {
            since_backoff = 0;
            int64_t sl = etcd_backoff_ms(c, round++);
            if (etcd_mono_ms() + sl >= deadline) break;
            etcd_sleep_ms(sl);
        }
    }
    if (!attempts)
        return etcd_err(errstr, errlen, TS_ETCD_E_TIMEOUT, "etcd %s %s: deadline passed",
                        what, subject);
    etcd_err(errstr, errlen, st,
             "etcd %s %s: gave up after %d attempt%s in %lld ms over %d endpoint%s; last: %s",
             what, subject, attempts, attempts == 1 ? "" : "s",
             (long long)(etcd_mono_ms() - t0), c->nendpoints, c->nendpoints == 1 ? "" : "s",
             last);
    return st;
}
