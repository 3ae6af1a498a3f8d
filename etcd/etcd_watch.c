/*
 * etcd_watch.c — one streamed POST /v3/watch on its own thread.
 *
 * The gateway answers a watch with a chunked body of newline-delimited
 * JSON objects: {"result":{"created":true}} first, then one object per
 * batch of events. libcurl hands the body over in pieces that cut objects
 * anywhere, so the write callback feeds a line splitter whose buffer is
 * capped (max_response_bytes); each whole line is parsed and delivered.
 *
 * Resume: the thread remembers next_revision = last delivered event's
 * mod_revision + 1 (or, watching "from now", the creation header's
 * revision + 1). When the stream breaks (member killed, reset, idle
 * timeout, gateway error) it reports DISCONNECTED, fails over to the next
 * member, backs off when nothing was received, and opens a new watch with
 * start_revision = next_revision: events are neither lost nor repeated
 * (events below next_revision are dropped, should a member resend them).
 * If next_revision has been compacted away etcd cancels the watch with
 * compact_revision: that is reported as COMPACTED and the watch ends,
 * because only the caller can re-read the state it watches.
 *
 * A connection whose watch is not created within request_timeout_ms (a
 * member that accepts and never answers) is abandoned the same way.
 *
 * The transfer runs in a curl multi handle so ts_etcd_watch_stop can wake
 * it at once (curl_multi_wakeup), also during a backoff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "etcd_json.h"

struct ts_etcd_watch {
    ts_etcd *c;
    unsigned char *key;
    size_t key_len;
    int prefix;
    int64_t idle_timeout_ms;
    ts_etcd_watch_cb cb;
    void *arg;
    CURLM *multi;
    pthread_t thr;
    atomic_int stop;
    atomic_int_least64_t next_rev;

    /* Watch thread only, per connection. */
    ts_etcd_lines lines;
    int ep;
    int got_created;      /* this connection's watch was created */
    int ended;            /* COMPACTED or FAILED delivered: the thread ends */
    ts_etcd_status conn_st; /* why this connection was abandoned by us */
    char conn_msg[768];
    int64_t last_data_ms;
};

static void deliver(ts_etcd_watch *w, ts_etcd_watch_update *u)
{
    u->endpoint = w->c->endpoints[w->ep];
    u->next_revision = atomic_load(&w->next_rev);
    w->cb(w->arg, u);
}

/* Ends the watch with COMPACTED or FAILED. */
static void end_watch(ts_etcd_watch *w, ts_etcd_watch_kind kind, ts_etcd_status st,
                      int64_t header_rev, int64_t compact_rev, const char *msg)
{
    ts_etcd_watch_update u = {.kind = kind, .status = st, .header_revision = header_rev,
                              .compact_revision = compact_rev, .message = msg};
    deliver(w, &u);
    w->ended = 1;
}

/* One line of the stream. Returns non-zero to abandon the connection. */
static int on_line(void *arg, const char *line, size_t len)
{
    ts_etcd_watch *w = arg;
    ts_etcd_watch_msg m;
    char err[256];
    const char *epn = w->c->endpoints[w->ep];
    ts_etcd_status st = ts_etcd_json_parse_watch(line, len, w->c->o.max_value_bytes, &m, err,
                                                 sizeof(err));
    if (st) {
        w->conn_st = st;
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: %s", epn, err);
        return 1;
    }
    int rc = 0;
    if (m.is_error) {
        st = etcd_classify_grpc(m.grpc_code, m.cancel_reason);
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: %s (gRPC code %d)", epn,
                 m.cancel_reason, m.grpc_code);
        if (st == TS_ETCD_E_REFUSED && m.grpc_code == 1) st = TS_ETCD_E_UNAVAILABLE; /* canceled */
        if (ts_etcd_status_is_retriable(st)) {
            w->conn_st = st;
        } else if (st == TS_ETCD_E_COMPACTED) {
            end_watch(w, TS_ETCD_WATCH_COMPACTED, st, 0, 0, w->conn_msg);
        } else {
            end_watch(w, TS_ETCD_WATCH_FAILED, st, 0, 0, w->conn_msg);
        }
        rc = 1;
        goto out;
    }
    if (m.created) {
        w->got_created = 1;
        if (atomic_load(&w->next_rev) == 0) atomic_store(&w->next_rev, m.header_revision + 1);
    }
    if (m.canceled) {
        if (m.compact_revision > 0) {
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "etcd watch at %s: revision %lld has been compacted (oldest available "
                     "%lld); re-read and watch again",
                     epn, (long long)atomic_load(&w->next_rev), (long long)m.compact_revision);
            end_watch(w, TS_ETCD_WATCH_COMPACTED, TS_ETCD_E_COMPACTED, m.header_revision,
                      m.compact_revision, msg);
        } else {
            char msg[512];
            snprintf(msg, sizeof(msg), "etcd watch at %s: canceled by etcd: %s", epn,
                     m.cancel_reason[0] ? m.cancel_reason : "no reason given");
            end_watch(w, TS_ETCD_WATCH_FAILED, TS_ETCD_E_REFUSED, m.header_revision, 0, msg);
        }
        rc = 1;
        goto out;
    }
    if (m.nevents) {
        int64_t next = atomic_load(&w->next_rev);
        size_t skip = 0;
        while (skip < m.nevents && m.events[skip].kv.mod_revision < next) skip++;
        if (skip < m.nevents) {
            atomic_store(&w->next_rev, m.events[m.nevents - 1].kv.mod_revision + 1);
            ts_etcd_watch_update u = {.kind = TS_ETCD_WATCH_EVENTS,
                                      .events = m.events + skip,
                                      .nevents = m.nevents - skip,
                                      .header_revision = m.header_revision};
            deliver(w, &u);
        }
    }
out:
    ts_etcd_watch_msg_free(&m);
    return rc;
}

static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud)
{
    ts_etcd_watch *w = ud;
    size_t n = size * nmemb;
    w->last_data_ms = etcd_mono_ms();
    if (atomic_load(&w->stop)) return 0;
    int rc = ts_etcd_lines_feed(&w->lines, src, n, on_line, w);
    if (rc < 0) {
        w->conn_st = TS_ETCD_E_TOO_LARGE;
        snprintf(w->conn_msg, sizeof(w->conn_msg),
                 "etcd watch at %s: a line longer than the %zu-byte cap", w->c->endpoints[w->ep],
                 w->lines.max);
        return 0;
    }
    return rc ? 0 : n;
}

/* Sleeps ms unless stopped; returns 1 when stopped. */
static int watch_sleep(ts_etcd_watch *w, int64_t ms)
{
    int64_t until = etcd_mono_ms() + ms;
    while (!atomic_load(&w->stop)) {
        int64_t left = until - etcd_mono_ms();
        if (left <= 0) return 0;
        curl_multi_poll(w->multi, NULL, 0, (int)(left > 1000 ? 1000 : left), NULL);
    }
    return 1;
}

/* The POST of the watch request to the connection's member: body and
 * curl_err must outlive the transfer. */
static void set_watch_options(ts_etcd_watch *w, CURL *h, struct curl_slist *hl, const char *body,
                              char *curl_err)
{
    ts_etcd *c = w->c;
    char url[ETCD_ENDPOINT_MAX + 32];
    snprintf(url, sizeof(url), "%s/v3/watch", c->urls[w->ep]);
    curl_easy_setopt(h, CURLOPT_URL, url); /* libcurl copies it */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
}

/* Drives the transfer until it ends, stop, the write callback gives up or
 * the watch ended, or one of the two timeouts abandons it (not created
 * within request_timeout_ms; nothing received for idle_timeout_ms). */
static void pump_transfer(ts_etcd_watch *w)
{
    ts_etcd *c = w->c;
    int running = 1;
    int64_t t_open = etcd_mono_ms();
    while (running && !atomic_load(&w->stop) && !w->conn_st && !w->ended) {
        if (curl_multi_perform(w->multi, &running) != CURLM_OK) break;
        if (!running) break;
        if (!w->got_created && etcd_mono_ms() - t_open > c->o.request_timeout_ms) {
            w->conn_st = TS_ETCD_E_TIMEOUT;
            snprintf(w->conn_msg, sizeof(w->conn_msg),
                     "etcd watch at %s: not created within %lld ms", c->endpoints[w->ep],
                     (long long)c->o.request_timeout_ms);
            break;
        }
        if (w->idle_timeout_ms > 0 && etcd_mono_ms() - w->last_data_ms > w->idle_timeout_ms) {
            w->conn_st = TS_ETCD_E_TIMEOUT;
            snprintf(w->conn_msg, sizeof(w->conn_msg),
                     "etcd watch at %s: nothing received for %lld ms", c->endpoints[w->ep],
                     (long long)w->idle_timeout_ms);
            break;
        }
        curl_multi_poll(w->multi, NULL, 0, 500, NULL);
    }
}

/* Why a connection that nobody abandoned ended: an error answer (a body
 * that ended without a newline; a final one ends the watch), a transfer
 * error, an HTTP status, or a stream that simply ended. */
static void explain_end(ts_etcd_watch *w, long http_status, CURLcode result, const char *curl_err)
{
    ts_etcd *c = w->c;
    if (!w->conn_st && !w->ended && !atomic_load(&w->stop) && w->lines.len) {
        int code;
        char m[512];
        if (ts_etcd_json_error(w->lines.buf, w->lines.len, &code, m, sizeof(m))) {
            ts_etcd_status st = etcd_classify_grpc(code, m);
            if (st == TS_ETCD_E_REFUSED && http_status >= 500) st = TS_ETCD_E_UNAVAILABLE;
            snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: HTTP %ld, %s (gRPC code %d)",
                     c->endpoints[w->ep], http_status, m, code);
            if (ts_etcd_status_is_retriable(st))
                w->conn_st = st;
            else
                end_watch(w, st == TS_ETCD_E_COMPACTED ? TS_ETCD_WATCH_COMPACTED
                                                       : TS_ETCD_WATCH_FAILED,
                          st, 0, 0, w->conn_msg);
        }
    }
    if (w->conn_st || w->ended || atomic_load(&w->stop)) return;
    w->conn_st = TS_ETCD_E_UNAVAILABLE;
    if (result != CURLE_OK) {
        w->conn_st = etcd_classify_curl(result);
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: %s (%s)",
                 c->endpoints[w->ep], curl_easy_strerror(result),
                 curl_err[0] ? curl_err : "no detail");
        if (!ts_etcd_status_is_retriable(w->conn_st)) w->conn_st = TS_ETCD_E_UNAVAILABLE;
    } else if (http_status != 200) {
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: HTTP %ld",
                 c->endpoints[w->ep], http_status);
    } else {
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch at %s: the stream ended",
                 c->endpoints[w->ep]);
    }
}

/* One connection: runs until it breaks, is abandoned, or stop. */
static void run_connection(ts_etcd_watch *w, long *http_status, CURLcode *result)
{
    ts_etcd *c = w->c;
    ts_etcd_status jst;
    char jerr[256];
    *http_status = 0;
    *result = CURLE_OK;
    char *body = ts_etcd_json_watch_create(w->key, w->key_len, w->prefix,
                                           atomic_load(&w->next_rev), c->o.max_value_bytes, &jst,
                                           jerr, sizeof(jerr));
    if (!body) {
        w->conn_st = jst;
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch: %s", jerr);
        return;
    }
    CURL *h = curl_easy_init();
    struct curl_slist *hl = etcd_headers();
    if (!h || !hl) {
        free(body);
        curl_easy_cleanup(h);
        curl_slist_free_all(hl);
        w->conn_st = TS_ETCD_E_NOMEM;
        snprintf(w->conn_msg, sizeof(w->conn_msg), "etcd watch: out of memory");
        return;
    }
    char curl_err[CURL_ERROR_SIZE];
    curl_err[0] = '\0';
    set_watch_options(w, h, hl, body, curl_err);
    ts_etcd_lines_reset(&w->lines);
    w->got_created = 0;
    w->last_data_ms = etcd_mono_ms();
    curl_multi_add_handle(w->multi, h);
    atomic_fetch_add(&c->n_requests, 1);
    pump_transfer(w);
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(w->multi, &left)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) *result = msg->data.result;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http_status);
    curl_multi_remove_handle(w->multi, h);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    free(body);
    explain_end(w, *http_status, *result, curl_err);
}

static void *watch_main(void *arg)
{
    ts_etcd_watch *w = arg;
    ts_etcd *c = w->c;
    int round = 0;
    while (!atomic_load(&w->stop)) {
        w->ep = atomic_load(&c->cur) % c->nendpoints;
        w->conn_st = TS_ETCD_OK;
        w->conn_msg[0] = '\0';
        long status;
        CURLcode res;
        run_connection(w, &status, &res);
        if (atomic_load(&w->stop) || w->ended) break;
        if (w->conn_st == TS_ETCD_E_TOO_LARGE || w->conn_st == TS_ETCD_E_NOMEM ||
            w->conn_st == TS_ETCD_E_INVAL) {
            end_watch(w, TS_ETCD_WATCH_FAILED, w->conn_st, 0, 0, w->conn_msg);
            break;
        }
        ts_etcd_watch_update u = {.kind = TS_ETCD_WATCH_DISCONNECTED, .status = w->conn_st,
                                  .message = w->conn_msg};
        deliver(w, &u);
        etcd_fail_over(c, w->ep);
        atomic_fetch_add(&c->n_retries, 1);
        if (w->got_created) round = 0; /* it worked for a while: reconnect at once */
        if (!w->got_created && watch_sleep(w, etcd_backoff_ms(c, round++))) break;
    }
    return NULL;
}

ts_etcd_status ts_etcd_watch_start(ts_etcd *c, const ts_etcd_watch_opts *o, ts_etcd_watch **out,
                                   char *errstr, size_t errlen)
{
    *out = NULL;
    if (!c || !o || !o->cb || (!o->key && o->key_len))
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd watch: key and callback required");
    if (o->key_len > c->o.max_value_bytes)
        return etcd_err(errstr, errlen, TS_ETCD_E_TOO_LARGE, "etcd watch: key too long");
    ts_etcd_watch *w = calloc(1, sizeof(*w));
    if (!w) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    w->key = malloc(o->key_len ? o->key_len : 1);
    w->multi = curl_multi_init();
    if (!w->key || !w->multi) {
        free(w->key);
        if (w->multi) curl_multi_cleanup(w->multi);
        free(w);
        return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    }
    if (o->key_len) memcpy(w->key, o->key, o->key_len);
    w->c = c;
    w->key_len = o->key_len;
    w->prefix = o->prefix;
    w->idle_timeout_ms = o->idle_timeout_ms;
    w->cb = o->cb;
    w->arg = o->arg;
    atomic_init(&w->stop, 0);
    atomic_init(&w->next_rev, o->start_revision > 0 ? o->start_revision : 0);
    ts_etcd_lines_init(&w->lines, c->o.max_response_bytes);
    int rc = pthread_create(&w->thr, NULL, watch_main, w);
    if (rc) {
        curl_multi_cleanup(w->multi);
        free(w->key);
        free(w);
        return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "etcd watch: pthread_create: %s",
                        strerror(rc));
    }
    *out = w;
    return TS_ETCD_OK;
}

int64_t ts_etcd_watch_next_revision(const ts_etcd_watch *w)
{
    return atomic_load(&((ts_etcd_watch *)w)->next_rev);
}

void ts_etcd_watch_stop(ts_etcd_watch *w)
{
    if (!w) return;
    atomic_store(&w->stop, 1);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thr, NULL);
    curl_multi_cleanup(w->multi);
    ts_etcd_lines_free(&w->lines);
    free(w->key);
    free(w);
}
