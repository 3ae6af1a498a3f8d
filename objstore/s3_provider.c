/*
 * s3_provider.c — the refreshing, thread-safe holder of the S3 client's keys
 * (see s3_provider.h for the policy), and the small HTTP helper the
 * credential sources share.
 *
 * Shaped around one mutex and one condition variable: the lock guards only
 * pointers and timestamps, never I/O. A refresh is claimed under the lock
 * (refreshing = 1), run without it, and published under it; readers that
 * still hold valid keys never wait for it, readers whose keys have expired
 * wait on the condition variable. Key sets are refcounted so the one a
 * request signs with outlives any refresh that replaces it.
 */
#include "s3_provider.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define PROV_MOD "s3"
#define REFRESH_AHEAD_MS (5 * 60 * 1000) /* refresh 5 min before Expiration ... */
#define REFRESH_SHORT_PERMILLE 800       /* ... or at 80% of a short lifetime */
#define GUARD_MAX_MS 10000               /* stop using keys this close to expiry */
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
#define STS_TIMEOUT_MS 10000 /* cap of one STS request */

void ts_s3_keys_release(ts_s3_keys *k)
{
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1) return;
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

static ts_s3_keys *keys_ref(ts_s3_keys *k)
{
    atomic_fetch_add(&k->refs, 1);
    return k;
}

typedef struct fetcher {
    ts_s3_creds_kind kind;
    ts_s3_imds imds; /* only the refreshing thread touches it */
    ts_s3_sts sts;
} fetcher;

struct ts_s3_provider {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu: */
    ts_s3_keys *cur;          /* NULL only before the first fetch succeeds */
    int64_t refresh_at_ms;    /* wall clock: refresh from here on */
    int64_t usable_until_ms;  /* wall clock: do not sign with cur past this */
    int refreshing;           /* a thread is fetching */
    int failures;             /* consecutive failed refreshes */
    int64_t next_try_mono;    /* after a failure: no new attempt before this */
    int64_t first_fail_ms;    /* wall clock of the first failure of the streak */
    ts_status last_st;
    char last_err[1024];
    uint64_t n_fetches, n_failures;
    /* fixed after create: */
    int64_t backoff_base_ms, backoff_max_ms;
    char what[1200]; /* the source, for messages */
    fetcher f;
};

static void iso_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What to check when a source fails, by source. */
static const char *source_hint(const ts_s3_provider *p)
{
    if (p->f.kind == TS_S3_CREDS_IMDS)
        return "check that the instance has an IAM role (instance profile) and that the "
               "metadata service answers (in a container the PUT token hop limit must be 2 or "
               "more), or set AWS_EC2_METADATA_DISABLED=true and configure keys";
    return "check that the token file is current (the kubelet rotates it), that the role's "
           "trust policy allows this identity provider and audience, and that STS is "
           "reachable (AWS_ENDPOINT_URL_STS overrides the endpoint)";
}

/* Runs the source's fetch. Called by the one refreshing thread, no lock. */
static ts_status fetch(ts_s3_provider *p, ts_s3_keys **out, char *errstr, size_t errlen)
{
    ts_s3_keys *k = calloc(1, sizeof(*k));
    if (!k) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    atomic_init(&k->refs, 1);
    ts_status st = p->f.kind == TS_S3_CREDS_IMDS ? ts_s3_imds_fetch(&p->f.imds, k, errstr, errlen)
                                                : ts_s3_sts_fetch(&p->f.sts, k, errstr, errlen);
    if (!st && k->expires_ms && k->expires_ms <= ts_now_ms()) {
        char exp[32], now[32];
        iso_time(k->expires_ms, exp);
        iso_time(ts_now_ms(), now);
        st = ts_err_set(errstr, errlen, TS_E_AUTH,
                        "the keys handed out had already expired (Expiration %s, local clock "
                        "%s); fix the local time (NTP)",
                        exp, now);
    }
    if (st) {
        ts_s3_keys_release(k);
        return st;
    }
    snprintf(k->source, sizeof(k->source), "%s", p->what);
    *out = k;
    return TS_OK;
}

void ts_s3_provider_schedule(int64_t now_ms, int64_t expires_ms, int64_t *refresh_at_ms,
                             int64_t *usable_until_ms)
{
    if (!expires_ms) {
        *refresh_at_ms = *usable_until_ms = INT64_MAX;
        return;
    }
    int64_t life = expires_ms - now_ms;
    if (life < 0) life = 0;
    int64_t ahead = life / 1000 * (1000 - REFRESH_SHORT_PERMILLE) +
                    life % 1000 * (1000 - REFRESH_SHORT_PERMILLE) / 1000;
    if (ahead > REFRESH_AHEAD_MS) ahead = REFRESH_AHEAD_MS;
    int64_t guard = life / 10 < GUARD_MAX_MS ? life / 10 : GUARD_MAX_MS;
    *refresh_at_ms = expires_ms - ahead;
    *usable_until_ms = expires_ms - guard;
}

/* Installs fresh keys. Caller holds mu; returns the old set to release
 * after unlocking. */
static ts_s3_keys *install(ts_s3_provider *p, ts_s3_keys *k)
{
    ts_s3_keys *old = p->cur;
    p->cur = k;
    ts_s3_provider_schedule(ts_now_ms(), k->expires_ms, &p->refresh_at_ms, &p->usable_until_ms);
    return old;
}

/* A failed refresh: counts, backoff, last error. Caller holds mu. */
static void note_failure(ts_s3_provider *p, ts_status st, const char *err)
{
    p->n_failures++;
    if (!p->failures++) p->first_fail_ms = ts_now_ms();
    int64_t b = p->backoff_base_ms;
    for (int i = 1; i < p->failures && b < p->backoff_max_ms; i++) b *= 2;
    if (b > p->backoff_max_ms) b = p->backoff_max_ms;
    p->next_try_mono = ts_mono_ms() + b;
    p->last_st = st;
    snprintf(p->last_err, sizeof(p->last_err), "%s", err);
}

static int kind_dynamic(const ts_s3_provider *p) { return p->f.kind != TS_S3_CREDS_STATIC; }

ts_status ts_s3_provider_get(ts_s3_provider *p, ts_s3_keys **out, char *errstr, size_t errlen)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int64_t now = ts_now_ms();
        int usable = p->cur && now < p->usable_until_ms;
        if (usable && (now < p->refresh_at_ms || p->refreshing ||
                       ts_mono_ms() < p->next_try_mono)) {
            *out = keys_ref(p->cur);
            pthread_mutex_unlock(&p->mu);
            return TS_OK;
        }
        if (p->refreshing) { /* expired: wait for the refresh in flight */
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        if (!usable && ts_mono_ms() < p->next_try_mono) {
            char exp[32] = "", first[32];
            if (p->cur) iso_time(p->cur->expires_ms, exp);
            iso_time(p->first_fail_ms, first);
            ts_status st = p->last_st == TS_E_TIMEOUT || ts_status_is_retriable(p->last_st)
                               ? TS_E_REMOTE_RETRIABLE
                               : TS_E_AUTH;
            int in_margin = p->cur && now < p->cur->expires_ms;
            ts_err_set(errstr, errlen, st,
                       "S3 credentials from %s %s%s%s and could not be refreshed (%d attempts "
                       "failed since %s; next in %lld ms): %s; %s",
                       p->what, in_margin ? "expire at " : "expired at ", exp,
                       in_margin ? " (inside the safety margin)" : "", p->failures, first,
                       (long long)(p->next_try_mono - ts_mono_ms()), p->last_err,
                       source_hint(p));
            pthread_mutex_unlock(&p->mu);
            return st;
        }
        /* Due (or expired and past the backoff): this thread refreshes. */
        p->refreshing = 1;
        p->n_fetches++;
        pthread_mutex_unlock(&p->mu);
        char err[1024];
        ts_s3_keys *k = NULL;
        ts_status st = fetch(p, &k, err, sizeof(err));
        ts_s3_keys *old = NULL;
        pthread_mutex_lock(&p->mu);
        p->refreshing = 0;
        if (!st) {
            old = install(p, k);
            if (p->failures)
                ts_log_info(PROV_MOD, "S3 credentials from %s refreshed after %d failed attempts",
                            p->what, p->failures);
            p->failures = 0;
            p->next_try_mono = 0;
        } else {
            note_failure(p, st, err);
            /* One line per doubling of the streak: a long outage does not
             * flood the log, and every line says whether keys are left. */
            if (!(p->failures & (p->failures - 1)))
                ts_log_warn(PROV_MOD,
                            "refreshing S3 credentials from %s failed (%d in a row; %s): %s",
                            p->what, p->failures,
                            p->cur && ts_now_ms() < p->usable_until_ms
                                ? "the current keys are still valid"
                                : "no valid keys left, requests fail until it works",
                            err);
        }
        pthread_cond_broadcast(&p->cv);
        if (old) {
            pthread_mutex_unlock(&p->mu);
            ts_s3_keys_release(old);
            pthread_mutex_lock(&p->mu);
        }
    }
}

int ts_s3_provider_invalidate(ts_s3_provider *p, const ts_s3_keys *k)
{
    if (!kind_dynamic(p)) return 0;
    pthread_mutex_lock(&p->mu);
    int hit = p->cur == k;
    if (hit) {
        p->refresh_at_ms = p->usable_until_ms = 0;
        p->next_try_mono = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return hit;
}

void ts_s3_provider_get_stats(ts_s3_provider *p, ts_s3_provider_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->fetches = p->n_fetches;
    out->failures = p->n_failures;
    pthread_mutex_unlock(&p->mu);
}

ts_status ts_s3_provider_create(const ts_s3_creds *c, const ts_s3_provider_opts *o,
                                ts_s3_provider **out, char *errstr, size_t errlen)
{
    *out = NULL;
    ts_s3_provider *p = calloc(1, sizeof(*p));
    if (!p) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->backoff_base_ms = o && o->backoff_base_ms > 0 ? o->backoff_base_ms : BACKOFF_BASE_MS;
    p->backoff_max_ms = o && o->backoff_max_ms > 0 ? o->backoff_max_ms : BACKOFF_MAX_MS;
    if (p->backoff_max_ms < p->backoff_base_ms) p->backoff_max_ms = p->backoff_base_ms;
    p->f.kind = c->kind;
    snprintf(p->what, sizeof(p->what), "%s", c->source);
    ts_status st = TS_OK;
    if (c->kind == TS_S3_CREDS_STATIC) {
        ts_s3_keys *k = calloc(1, sizeof(*k));
        if (!k) {
            ts_s3_provider_destroy(p);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        atomic_init(&k->refs, 1);
        memcpy(k->access_key_id, c->access_key_id, sizeof(k->access_key_id));
        memcpy(k->secret_access_key, c->secret_access_key, sizeof(k->secret_access_key));
        memcpy(k->session_token, c->session_token, sizeof(k->session_token));
        snprintf(k->source, sizeof(k->source), "%s", c->source);
        install(p, k);
        *out = p;
        return TS_OK;
    }
    if (c->kind == TS_S3_CREDS_IMDS) {
        snprintf(p->f.imds.endpoint, sizeof(p->f.imds.endpoint), "%s", c->imds_endpoint);
        p->f.imds.timeout_ms = c->imds_timeout_ms > 0 ? c->imds_timeout_ms : 1000;
        p->f.imds.attempts = c->imds_attempts > 0 ? c->imds_attempts : 1;
    } else {
        ts_s3_sts *w = &p->f.sts;
        snprintf(w->endpoint, sizeof(w->endpoint), "%s", c->sts_endpoint);
        snprintf(w->role_arn, sizeof(w->role_arn), "%s", c->role_arn);
        snprintf(w->token_file, sizeof(w->token_file), "%s", c->web_identity_token_file);
        if (c->role_session_name[0])
            snprintf(w->session_name, sizeof(w->session_name), "%s", c->role_session_name);
        else
            snprintf(w->session_name, sizeof(w->session_name), "tierstore-%lld",
                     (long long)ts_now_ms());
        snprintf(w->ca_bundle, sizeof(w->ca_bundle), "%s", c->ca_bundle);
        w->http.timeout_ms = o && o->http_timeout_ms > 0 && o->http_timeout_ms < STS_TIMEOUT_MS
                                 ? o->http_timeout_ms
                                 : STS_TIMEOUT_MS;
        w->http.connect_timeout_ms = w->http.timeout_ms;
        w->http.tls_verify = o ? o->tls_verify : 1;
        w->http.ca_bundle = w->ca_bundle[0] ? w->ca_bundle : NULL;
    }
    char err[1024];
    ts_s3_keys *k = NULL;
    p->n_fetches = 1;
    st = fetch(p, &k, err, sizeof(err));
    if (st) {
        if (c->kind == TS_S3_CREDS_IMDS)
            ts_err_set(errstr, errlen, TS_E_CONFIG,
                       "%s; the instance metadata service at %s, the last place looked at, "
                       "failed: %s (set AWS_EC2_METADATA_DISABLED=true to skip it)",
                       c->not_found, c->imds_endpoint, err);
        else
            ts_err_set(errstr, errlen, st, "cannot get S3 credentials from %s: %s; %s", p->what,
                       err, source_hint(p));
        ts_s3_provider_destroy(p);
        return st == TS_E_CONFIG || c->kind == TS_S3_CREDS_IMDS ? TS_E_CONFIG : st;
    }
    install(p, k);
    *out = p;
    return TS_OK;
}

void ts_s3_provider_destroy(ts_s3_provider *p)
{
    if (!p) return;
    ts_s3_keys_release(p->cur);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

/* ------------------------------------------------------------------------
 * The HTTP helper of the sources
 * ------------------------------------------------------------------------ */

static size_t sink_cb(char *src, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return ts_buf_append(ud, src, n) == TS_OK ? n : 0;
}

ts_status ts_s3_cred_http(const char *method, const char *url, const char *const *hdrs,
                          const char *body, const ts_s3_http_opts *o, long *status, ts_buf *resp,
                          char *errstr, size_t errlen)
{
    *status = 0;
    ts_buf_reset(resp);
    CURL *h = curl_easy_init();
    if (!h) return ts_err_set(errstr, errlen, TS_E_NOMEM, "curl_easy_init failed");
    struct curl_slist *hl = NULL;
    ts_status st = TS_OK;
    for (size_t i = 0; hdrs && hdrs[i]; i++) {
        struct curl_slist *n = curl_slist_append(hl, hdrs[i]);
        if (!n) {
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
            goto done;
        }
        hl = n;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout_ms ? o->connect_timeout_ms : o->timeout_ms));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->tls_verify ? 2L : 0L);
    if (o->ca_bundle) curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_bundle);
    if (o->no_proxy) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    if (strcmp(method, body ? "POST" : "GET")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        *status = 0;
        st = ts_err_set(errstr, errlen, TS_E_TIMEOUT, "%s %s: no answer within %lld ms (%s)",
                        method, url, (long long)o->timeout_ms,
                        curl_err[0] ? curl_err : "timed out");
    } else if (rc != CURLE_OK) {
        *status = 0;
        st = ts_err_set(errstr, errlen, TS_E_REMOTE_RETRIABLE, "%s %s: %s (%s)", method, url,
                        curl_easy_strerror(rc), curl_err[0] ? curl_err : "no detail");
    }
done:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return st;
}

/* ------------------------------------------------------------------------
 * Timestamps
 * ------------------------------------------------------------------------ */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int64_t ts_s3_parse_iso8601(const char *s)
{
    int Y, M, D, h, m, sec;
    if (!s || strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) ||
        s[7] != '-' || digits(s + 8, 2, &D) || s[10] != 'T' || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 1970)
        return -1;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        int scale = 100, nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
        if (!nd) return -1;
    }
    if (strcmp(p, "Z") && strcmp(p, "+00:00")) return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    return (int64_t)t * 1000 + ms;
}
