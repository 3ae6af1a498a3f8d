/*
 * etcd_lease.c — lease grant, keepalive, revoke, and the keeper thread.
 *
 * A keepalive is one POST /v3/lease/keepalive with one request: the
 * gateway turns it into a one-message gRPC stream and answers
 * {"result":{...,"TTL":"n"}}; a lease that is gone answers without a TTL.
 *
 * The keeper sends one every ttl/3. Its clock is conservative: a keepalive
 * answered proves the lease alive at the moment it was *sent*, so the lease
 * counts as lost once ttl has passed since the send time of the last one
 * answered, whatever the retries. Each keepalive runs under a deadline of
 * what is left of that window (at most op_timeout_ms), so a member that
 * never answers costs at most the window, and the other members are tried
 * in between (etcd_call fails over).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd_internal.h"
#include "etcd_json.h"

ts_etcd_status ts_etcd_lease_grant(ts_etcd *c, int64_t ttl_s, int64_t id_hint, int64_t *id,
                                   int64_t *granted_ttl, char *errstr, size_t errlen)
{
    if (id) *id = 0;
    if (granted_ttl) *granted_ttl = 0;
    if (!c || ttl_s <= 0)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd lease grant: ttl must be > 0 s");
    char subject[64];
    snprintf(subject, sizeof(subject), "of %lld s", (long long)ttl_s);
    char *body = ts_etcd_json_lease_grant(ttl_s, id_hint);
    if (!body) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    etcd_body resp = {0};
    ts_etcd_status st =
        etcd_call(c, "lease grant", subject, "/v3/lease/grant", body, 0, &resp, errstr, errlen);
    free(body);
    if (!st) {
        int64_t xid = 0, xttl = 0;
        char jerr[256];
        st = ts_etcd_json_parse_lease(resp.data, resp.len, &xid, &xttl, NULL, jerr, sizeof(jerr));
        if (!st && (xid == 0 || xttl <= 0))
            st = etcd_err(jerr, sizeof(jerr), TS_ETCD_E_PROTOCOL, "no lease ID or TTL");
        if (st)
            etcd_err(errstr, errlen, st, "etcd lease grant %s at %s: %s", subject,
                     ts_etcd_current_endpoint(c), jerr);
        else {
            if (id) *id = xid;
            if (granted_ttl) *granted_ttl = xttl;
        }
    }
    etcd_body_free(&resp);
    return st;
}

static ts_etcd_status keepalive(ts_etcd *c, int64_t id, int64_t timeout_ms, int64_t *ttl,
                                char *errstr, size_t errlen)
{
    if (ttl) *ttl = 0;
    if (!c) return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: no client");
    char subject[64];
    snprintf(subject, sizeof(subject), "lease %lld", (long long)id);
    char *body = ts_etcd_json_lease_id(id);
    if (!body) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    etcd_body resp = {0};
    ts_etcd_status st = etcd_call(c, "keepalive", subject, "/v3/lease/keepalive", body,
                                  timeout_ms, &resp, errstr, errlen);
    free(body);
    if (!st) {
        int64_t xttl = 0;
        char jerr[256];
        st = ts_etcd_json_parse_lease(resp.data, resp.len, NULL, &xttl, NULL, jerr, sizeof(jerr));
        if (st)
            etcd_err(errstr, errlen, st, "etcd keepalive %s at %s: %s", subject,
                     ts_etcd_current_endpoint(c), jerr);
        else if (xttl <= 0)
            st = etcd_err(errstr, errlen, TS_ETCD_E_NOT_FOUND,
                          "etcd keepalive %s at %s: the lease is gone (expired or revoked)",
                          subject, ts_etcd_current_endpoint(c));
        else if (ttl)
            *ttl = xttl;
    }
    etcd_body_free(&resp);
    return st;
}

ts_etcd_status ts_etcd_lease_keepalive(ts_etcd *c, int64_t id, int64_t *ttl, char *errstr,
                                       size_t errlen)
{
    return keepalive(c, id, 0, ttl, errstr, errlen);
}

ts_etcd_status ts_etcd_lease_revoke(ts_etcd *c, int64_t id, char *errstr, size_t errlen)
{
    if (!c) return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd: no client");
    char subject[64];
    snprintf(subject, sizeof(subject), "lease %lld", (long long)id);
    char *body = ts_etcd_json_lease_id(id);
    if (!body) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    etcd_body resp = {0};
    ts_etcd_status st =
        etcd_call(c, "lease revoke", subject, "/v3/lease/revoke", body, 0, &resp, errstr, errlen);
    free(body);
    if (!st) {
        char jerr[256];
        st = ts_etcd_json_parse_lease(resp.data, resp.len, NULL, NULL, NULL, jerr, sizeof(jerr));
        if (st)
            etcd_err(errstr, errlen, st, "etcd lease revoke %s: %s", subject, jerr);
    }
    etcd_body_free(&resp);
    return st;
}

/* ------------------------------------------------------------------------
 * Keeper
 * ------------------------------------------------------------------------ */
struct ts_etcd_keeper {
    ts_etcd *c;
    int64_t lease, ttl_ms;
    ts_etcd_lease_lost_cb on_lost;
    void *arg;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stop;          /* under mu */
    atomic_int lost;
    atomic_uint_least64_t renewals;
    atomic_int_least64_t alive_at; /* send time of the last keepalive answered */
};

/* Waits until mono time `until` or stop; returns 1 when stopped. Keeper thread. */
static int keeper_wait(ts_etcd_keeper *k, int64_t until)
{
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        int64_t now = etcd_mono_ms();
        if (now >= until) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (until - now) % 1000 * 1000000;
        ts.tv_sec += (until - now) / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    int s = k->stop;
    pthread_mutex_unlock(&k->mu);
    return s;
}

static int keeper_stopped(ts_etcd_keeper *k)
{
    pthread_mutex_lock(&k->mu);
    int s = k->stop;
    pthread_mutex_unlock(&k->mu);
    return s;
}

static void *keeper_main(void *arg)
{
    ts_etcd_keeper *k = arg;
    int64_t interval = k->ttl_ms / 3 > 0 ? k->ttl_ms / 3 : 1;
    int64_t alive_at = atomic_load(&k->alive_at); /* send time of the last one answered */
    int64_t next = alive_at + interval;
    char err[1024];
    ts_etcd_status st = TS_ETCD_OK;
    for (;;) {
        if (keeper_wait(k, next)) return NULL;
        int64_t sent = etcd_mono_ms();
        int64_t left = alive_at + k->ttl_ms - sent;
        if (left <= 0) {
            if (!st) st = TS_ETCD_E_TIMEOUT;
            char why[1200];
            snprintf(why, sizeof(why),
                     "etcd lease %lld: no keepalive answered for its %lld ms TTL; last error: %s",
                     (long long)k->lease, (long long)k->ttl_ms, err[0] ? err : "none");
            snprintf(err, sizeof(err), "%s", why);
            break;
        }
        int64_t ttl = 0;
        err[0] = '\0';
        st = keepalive(k->c, k->lease, left < k->c->o.op_timeout_ms ? left : k->c->o.op_timeout_ms,
                       &ttl, err, sizeof(err));
        if (st == TS_ETCD_OK) {
            alive_at = sent;
            atomic_store(&k->alive_at, sent);
            atomic_fetch_add(&k->renewals, 1);
            next = sent + interval;
            continue;
        }
        if (st == TS_ETCD_E_NOT_FOUND || !ts_etcd_status_is_retriable(st)) break;
        if (keeper_stopped(k)) return NULL;
        next = etcd_mono_ms() + 100; /* retry soon; the window decides */
    }
    atomic_store(&k->lost, 1);
    if (k->on_lost) k->on_lost(k->arg, k->lease, st, err);
    return NULL;
}

ts_etcd_status ts_etcd_keeper_start(ts_etcd *c, int64_t lease, int64_t ttl_s,
                                    ts_etcd_lease_lost_cb on_lost, void *arg,
                                    ts_etcd_keeper **out, char *errstr, size_t errlen)
{
    *out = NULL;
    if (!c || ttl_s <= 0 || !lease)
        return etcd_err(errstr, errlen, TS_ETCD_E_INVAL, "etcd keeper: lease and ttl required");
    ts_etcd_keeper *k = calloc(1, sizeof(*k));
    if (!k) return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "out of memory");
    k->c = c;
    k->lease = lease;
    k->ttl_ms = ttl_s * 1000;
    k->on_lost = on_lost;
    k->arg = arg;
    atomic_store(&k->alive_at, etcd_mono_ms());
    pthread_mutex_init(&k->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&k->thr, NULL, keeper_main, k);
    if (rc) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return etcd_err(errstr, errlen, TS_ETCD_E_NOMEM, "etcd keeper: pthread_create: %s",
                        strerror(rc));
    }
    *out = k;
    return TS_ETCD_OK;
}

int ts_etcd_keeper_lost(const ts_etcd_keeper *k)
{
    return atomic_load(&((ts_etcd_keeper *)k)->lost);
}

int64_t ts_etcd_keeper_alive_ms(const ts_etcd_keeper *k)
{
    return atomic_load(&((ts_etcd_keeper *)k)->alive_at);
}

uint64_t ts_etcd_keeper_renewals(const ts_etcd_keeper *k)
{
    return atomic_load(&((ts_etcd_keeper *)k)->renewals);
}

void ts_etcd_keeper_stop(ts_etcd_keeper *k)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thr, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}
