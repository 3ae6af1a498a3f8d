/*
 * faulty.c — the fault-injecting store (see faulty.h for the URL syntax).
 *
 * Each call of a selected operation asks one question under the mutex —
 * "which fault, if any, does this call get?" — drawing from a seeded
 * splitmix64 PRNG, then drops the mutex before it sleeps or calls the inner
 * store, so a latency spike on one thread never stalls the others and the
 * inner store's own concurrency is untouched. With one thread the sequence
 * of faults is a pure function of the seed and the call sequence; with many
 * threads the sequence of draws is still the seed's, only their assignment
 * to threads varies.
 *
 * Error faults fire before the inner store is called, so an injected failure
 * never has side effects (a put that "failed" did not happen), except for
 * truncation and corruption, which by nature come after a successful GET.
 * A writer whose commit is refused aborts its inner writer, so nothing the
 * caller was told failed becomes visible.
 */
#include "objstore/faulty.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"

typedef struct faulty {
    ts_objstore base;
    ts_objstore *inner;
    int own_inner;
    pthread_mutex_t mu;       /* guards everything below */
    ts_faulty_opts opts;
    uint64_t rng;             /* splitmix64 state */
    int64_t puts_reserved;    /* puts admitted since the options were set */
    uint64_t gen;             /* bumped by set_opts: stale reservations are not returned */
    ts_faulty_counters c;
} faulty;

typedef struct faulty_writer {
    ts_objstore_writer base;
    faulty *f;
    ts_objstore_writer *inner;
    ts_status failed; /* TS_OK, or the status of the write that failed */
    char key[1025];
} faulty_writer;

/* A fault decision's outcome, taken under the lock and acted on outside. */
typedef struct verdict {
    ts_status st;      /* TS_OK: go ahead */
    const char *what;  /* message for st */
    uint32_t sleep_ms;
    int reserved_put;  /* a fail_after_puts slot was taken: give it back on failure */
    uint64_t gen;
} verdict;

static const ts_objstore_ops faulty_ops;
static const ts_objstore_writer_ops faulty_writer_ops;

static uint64_t rng_next(faulty *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Draws only when the outcome is uncertain, so that turning one fault kind
 * on or off at rate 0/1 does not shift the other kinds' sequence. */
static int roll(faulty *f, double rate)
{
    if (rate <= 0.0) return 0;
    if (rate >= 1.0) return 1;
    return (double)(rng_next(f) >> 11) * 0x1.0p-53 < rate;
}

static ts_status check_opts(const ts_faulty_opts *o, char *errstr, size_t errlen)
{
    const double rates[] = {o->err_rate, o->fatal_rate, o->latency_rate, o->truncate_rate,
                            o->corrupt_rate};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        if (!(rates[i] >= 0.0 && rates[i] <= 1.0))
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "faulty store: rate %g is not a probability in [0, 1]", rates[i]);
    if (o->ops & ~TS_FAULTY_OP_ALL)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "faulty store: unknown op bits 0x%x",
                          o->ops & ~TS_FAULTY_OP_ALL);
    if (o->fail_after_puts < -1)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "faulty store: fail_after_puts %lld must be -1 (off) or >= 0",
                          (long long)o->fail_after_puts);
    return TS_OK;
}

void ts_faulty_opts_init(ts_faulty_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->ops = TS_FAULTY_OP_ALL;
    o->latency_rate = 1.0;
    o->fail_after_puts = -1;
}

/* ---- query-string parser ------------------------------------------------ */

static int slice_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(s, lit, n);
}

/* Copies a value slice into buf for strto*; 0 when it does not fit. */
static int slice_cstr(const char *s, size_t n, char *buf, size_t buflen)
{
    if (n == 0 || n >= buflen) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 1;
}

static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    char buf[32], *end;
    if (!slice_cstr(s, n, buf, sizeof(buf)) || buf[0] < '0' || buf[0] > '9') return 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end || v > max) return 0;
    *out = v;
    return 1;
}

static int parse_rate(const char *s, size_t n, double *out)
{
    char buf[32], *end;
    if (!slice_cstr(s, n, buf, sizeof(buf))) return 0;
    double v = strtod(buf, &end);
    if (*end || !(v >= 0.0 && v <= 1.0)) return 0;
    *out = v;
    return 1;
}

static int parse_ops(const char *s, size_t n, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        {"put", TS_FAULTY_OP_PUT},       {"get", TS_FAULTY_OP_GET},
        {"head", TS_FAULTY_OP_HEAD},     {"delete", TS_FAULTY_OP_DELETE},
        {"list", TS_FAULTY_OP_LIST},     {"writer", TS_FAULTY_OP_WRITER},
        {"all", TS_FAULTY_OP_ALL},
    };
    unsigned mask = 0;
    const char *end = s + n;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t len = comma ? (size_t)(comma - s) : (size_t)(end - s);
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (slice_eq(s, len, names[i].name)) break;
        if (i == sizeof(names) / sizeof(names[0])) return 0;
        mask |= names[i].bit;
        s += len + (comma ? 1 : 0);
    }
    if (!mask) return 0;
    *out = mask;
    return 1;
}

/* The field of the option named (name, nl) when it is one of the
 * probabilities, else NULL: they all parse the same way. */
static double *rate_field(ts_faulty_opts *o, const char *name, size_t nl)
{
    if (slice_eq(name, nl, "err_rate")) return &o->err_rate;
    if (slice_eq(name, nl, "fatal_rate")) return &o->fatal_rate;
    if (slice_eq(name, nl, "latency_rate")) return &o->latency_rate;
    if (slice_eq(name, nl, "truncate_rate")) return &o->truncate_rate;
    if (slice_eq(name, nl, "corrupt_rate")) return &o->corrupt_rate;
    return NULL;
}

ts_status ts_faulty_opts_parse(const char *query, ts_faulty_opts *opts, char *errstr,
                               size_t errlen)
{
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    const char *p = query ? query : "";
    const char *name = "", *why = "";
    size_t nl = 0;
    size_t qlen = strnlen(p, 4096);
    const char *end = p + qlen;
    if (qlen == 4096) {
        why = "fault options longer than 4095 bytes";
        goto fail;
    }
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        name = p;
        nl = (size_t)((eq ? eq : pend) - p);
        const char *v = eq ? eq + 1 : pend;
        size_t vl = (size_t)(pend - v);
        uint64_t u = 0;
        double *rate;
        if (nl == 0 && !eq) { /* "a=1&&b=2" or a trailing '&' */
            p = pend + (amp ? 1 : 0);
            continue;
        }
        if (!eq) {
            why = "has no value (expected name=value)";
            goto fail;
        }
        if (slice_eq(name, nl, "seed")) {
            why = "expected an unsigned integer";
            if (!parse_u64(v, vl, UINT64_MAX, &o.seed)) goto fail;
        } else if (slice_eq(name, nl, "ops")) {
            why = "expected a comma-separated list of put, get, head, delete, list, writer, all";
            if (!parse_ops(v, vl, &o.ops)) goto fail;
        } else if ((rate = rate_field(&o, name, nl))) {
            why = "expected a probability in [0, 1]";
            if (!parse_rate(v, vl, rate)) goto fail;
        } else if (slice_eq(name, nl, "latency_ms")) {
            why = "expected milliseconds, 0..600000";
            if (!parse_u64(v, vl, 600000, &u)) goto fail;
            o.latency_ms = (uint32_t)u;
        } else if (slice_eq(name, nl, "fail_after_puts")) {
            why = "expected a count >= 0";
            if (!parse_u64(v, vl, INT64_MAX, &u)) goto fail;
            o.fail_after_puts = (int64_t)u;
        } else if (slice_eq(name, nl, "keys")) {
            why = "expected a key substring of 1..127 bytes";
            if (!slice_cstr(v, vl, o.keys, sizeof(o.keys))) goto fail;
        } else if (slice_eq(name, nl, "fail_next")) {
            why = "expected a count, 0..4294967295";
            if (!parse_u64(v, vl, UINT32_MAX, &u)) goto fail;
            o.fail_next = (uint32_t)u;
        } else if (slice_eq(name, nl, "key")) {
            why = "expected 1..127 bytes of a key";
            if (!vl || !slice_cstr(v, vl, o.key, sizeof(o.key))) goto fail;
        } else if (slice_eq(name, nl, "key_latency_ms")) {
            why = "expected milliseconds, 0..600000";
            if (!parse_u64(v, vl, 600000, &u)) goto fail;
            o.key_latency_ms = (uint32_t)u;
        } else if (slice_eq(name, nl, "key_fail")) {
            why = "expected a count, 0..4294967295";
            if (!parse_u64(v, vl, UINT32_MAX, &u)) goto fail;
            o.key_fail = (uint32_t)u;
        } else {
            why = "unknown option; allowed: seed, ops, err_rate, fatal_rate, latency_ms, "
                  "latency_rate, truncate_rate, corrupt_rate, fail_after_puts, fail_next, key, "
                  "key_latency_ms, key_fail, keys";
            goto fail;
        }
        p = pend + (amp ? 1 : 0);
    }
    *opts = o;
    return TS_OK;
fail:
    if (nl > 64) nl = 64;
    return ts_err_set(errstr, errlen, TS_E_CONFIG, "bad fault option '%.*s': %s", (int)nl, name,
                      why);
}

/* ---- fault decisions ---------------------------------------------------- */

/* The per-key faults (key=) of a put or commit of key. f->mu held. */
static void decide_key(faulty *f, const char *key, verdict *v)
{
    ts_faulty_opts *o = &f->opts;
    if (!key || !o->key[0] || !strstr(key, o->key)) return;
    if (o->key_latency_ms) {
        v->sleep_ms += o->key_latency_ms;
        f->c.key_delayed++;
    }
    if (o->key_fail > 0) {
        o->key_fail--;
        f->c.key_failed++;
        v->st = TS_E_REMOTE_RETRIABLE;
        v->what = "injected 503 SlowDown (key_fail)";
    }
}

/* Decides the fate of one call. is_put: a put or a writer commit, which
 * fail_after_puts and the per-key faults govern whatever opts.ops says;
 * key: the call's object key (a list's prefix); with opts.keys set, only
 * calls whose key contains it are selected.
 * @locks takes and releases f->mu. */
static verdict decide(faulty *f, unsigned op, int is_put, const char *key)
{
    verdict v = {TS_OK, NULL, 0, 0, 0};
    pthread_mutex_lock(&f->mu);
    const ts_faulty_opts *o = &f->opts;
    if (is_put) decide_key(f, key, &v);
    if (v.st != TS_OK) goto out;
    int selected = (o->ops & op) != 0 && (!o->keys[0] || (key && strstr(key, o->keys)));
    if (selected) {
        f->c.calls++;
        if (o->latency_ms && roll(f, o->latency_rate)) {
            v.sleep_ms = o->latency_ms;
            f->c.latency++;
        }
    }
    if (is_put && o->fail_after_puts >= 0) {
        if (f->puts_reserved >= o->fail_after_puts) {
            f->c.puts_refused++;
            v.st = TS_E_REMOTE_RETRIABLE;
            v.what = "injected: store unavailable (fail_after_puts reached)";
            goto out;
        }
        /* Taken now, not after the inner put returns, so concurrent puts
         * cannot overshoot the limit. */
        f->puts_reserved++;
        v.reserved_put = 1;
        v.gen = f->gen;
    }
    if (selected) {
        if (f->opts.fail_next > 0) {
            f->opts.fail_next--;
            f->c.fail_next++;
            v.st = TS_E_REMOTE_RETRIABLE;
            v.what = "injected 503 SlowDown (fail_next)";
        } else if (roll(f, o->err_rate)) {
            f->c.retriable++;
            v.st = TS_E_REMOTE_RETRIABLE;
            v.what = "injected 503 SlowDown";
        } else if (roll(f, o->fatal_rate)) {
            f->c.fatal++;
            v.st = TS_E_REMOTE;
            v.what = "injected 400 InvalidRequest (not retriable)";
        }
    }
    if (v.st != TS_OK && v.reserved_put) {
        f->puts_reserved--;
        v.reserved_put = 0;
    }
out:
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* Records how an admitted put ended. @locks takes f->mu. */
static void put_done(faulty *f, const verdict *v, ts_status st)
{
    pthread_mutex_lock(&f->mu);
    if (st == TS_OK) f->c.puts_ok++;
    else if (v->reserved_put && v->gen == f->gen) f->puts_reserved--;
    pthread_mutex_unlock(&f->mu);
}

/* Sleeps the spike, then reports the injected error if there is one. */
static ts_status apply(const verdict *v, const char *opname, const char *key, char *errstr,
                       size_t errlen)
{
    if (v->sleep_ms) ts_sleep_ms(v->sleep_ms);
    if (v->st == TS_OK) return TS_OK;
    return ts_err_set(errstr, errlen, v->st, "%s of '%s' failed: %s by the faulty+ test store",
                      opname, key, v->what);
}

/* ---- store ops ---------------------------------------------------------- */

static ts_status f_put(ts_objstore *os, const char *key, const void *data, size_t len,
                       unsigned flags, char *errstr, size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_PUT, 1, key);
    ts_status st = apply(&v, "put", key, errstr, errlen);
    if (st != TS_OK) return st;
    st = ts_objstore_put(f->inner, key, data, len, flags, errstr, errlen);
    put_done(f, &v, st);
    return st;
}

static ts_status f_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                       uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_GET, 0, key);
    ts_status st = apply(&v, "get", key, errstr, errlen);
    if (st != TS_OK) return st;
    st = ts_objstore_get(f->inner, key, offset, len, out, out_len, errstr, errlen);
    if (st != TS_OK || *out_len == 0) return st;
    /* Body faults come after a real GET: the caller sees TS_OK and must
     * catch the damage itself, by length or checksum. */
    pthread_mutex_lock(&f->mu);
    if ((f->opts.ops & TS_FAULTY_OP_GET) && (!f->opts.keys[0] || strstr(key, f->opts.keys))) {
        if (roll(f, f->opts.truncate_rate)) {
            *out_len = (size_t)(rng_next(f) % *out_len);
            f->c.truncated++;
        }
        if (*out_len && roll(f, f->opts.corrupt_rate)) {
            uint64_t r = rng_next(f);
            (*out)[r % *out_len] ^= (uint8_t)(1u << ((r >> 32) % 8));
            f->c.corrupted++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return TS_OK;
}

static ts_status f_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                        size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_HEAD, 0, key);
    ts_status st = apply(&v, "head", key, errstr, errlen);
    if (st != TS_OK) return st;
    return ts_objstore_head(f->inner, key, size, errstr, errlen);
}

static ts_status f_del(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_DELETE, 0, key);
    ts_status st = apply(&v, "delete", key, errstr, errlen);
    if (st != TS_OK) return st;
    return ts_objstore_delete(f->inner, key, errstr, errlen);
}

/* One decision per batch, as S3's DeleteObjects is one request. */
static ts_status f_del_many(ts_objstore *os, const char *const *keys, size_t n, char *errstr,
                            size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_DELETE, 0, n ? keys[0] : NULL);
    ts_status st = apply(&v, "delete_many", keys[0], errstr, errlen);
    if (st != TS_OK) return st;
    return ts_objstore_delete_many(f->inner, keys, n, errstr, errlen);
}

static ts_status f_list(ts_objstore *os, const char *prefix,
                        int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                        char *errstr, size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_LIST, 0, prefix);
    ts_status st = apply(&v, "list", prefix, errstr, errlen);
    if (st != TS_OK) return st;
    return ts_objstore_list(f->inner, prefix, cb, opaque, errstr, errlen);
}

static ts_status f_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                               char *errstr, size_t errlen)
{
    faulty *f = (faulty *)os;
    verdict v = decide(f, TS_FAULTY_OP_WRITER, 0, key);
    ts_status st = apply(&v, "writer_open", key, errstr, errlen);
    if (st != TS_OK) return st;
    faulty_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "writer_open of '%s': out of memory", key);
    st = ts_objstore_writer_open(f->inner, key, &w->inner, errstr, errlen);
    if (st != TS_OK) {
        free(w);
        return st;
    }
    w->base.ops = &faulty_writer_ops;
    w->f = f;
    ts_strlcpy(w->key, key, sizeof(w->key)); /* fits: keys are checked to be <= 1024 bytes */
    *out = &w->base;
    return TS_OK;
}

static ts_status fw_write(ts_objstore_writer *wb, const void *data, size_t len, char *errstr,
                          size_t errlen)
{
    faulty_writer *w = (faulty_writer *)wb;
    if (w->failed != TS_OK)
        return ts_err_set(errstr, errlen, w->failed,
                          "write to '%s' after an earlier write failed; abort the writer", w->key);
    verdict v = decide(w->f, TS_FAULTY_OP_WRITER, 0, w->key);
    ts_status st = apply(&v, "write", w->key, errstr, errlen);
    if (st == TS_OK) st = ts_objstore_writer_write(w->inner, data, len, errstr, errlen);
    if (st != TS_OK) w->failed = st;
    return st;
}

static ts_status fw_commit(ts_objstore_writer *wb, char *errstr, size_t errlen)
{
    faulty_writer *w = (faulty_writer *)wb;
    faulty *f = w->f;
    ts_status st;
    if (w->failed != TS_OK) {
        /* Committing after a failed write would publish a hole. */
        ts_objstore_writer_abort(w->inner);
        st = ts_err_set(errstr, errlen, w->failed,
                        "commit of '%s' refused: an earlier write failed; the upload was aborted",
                        w->key);
        free(w);
        return st;
    }
    verdict v = decide(f, TS_FAULTY_OP_WRITER, 1, w->key);
    st = apply(&v, "commit", w->key, errstr, errlen);
    if (st != TS_OK) {
        ts_objstore_writer_abort(w->inner); /* nothing becomes visible */
    } else {
        st = ts_objstore_writer_commit(w->inner, errstr, errlen);
        put_done(f, &v, st);
    }
    free(w);
    return st;
}

static void fw_abort(ts_objstore_writer *wb)
{
    faulty_writer *w = (faulty_writer *)wb;
    ts_objstore_writer_abort(w->inner);
    free(w);
}

static void f_destroy(ts_objstore *os)
{
    faulty *f = (faulty *)os;
    if (f->own_inner) ts_objstore_destroy(f->inner);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static const ts_objstore_ops faulty_ops = {
    .scheme = "faulty",
    .put = f_put,
    .writer_open = f_writer_open,
    .get = f_get,
    .head = f_head,
    .del = f_del,
    .del_many = f_del_many,
    .list = f_list,
    .destroy = f_destroy,
};

static const ts_objstore_writer_ops faulty_writer_ops = {
    .write = fw_write,
    .commit = fw_commit,
    .abort = fw_abort,
};

/* ---- public ------------------------------------------------------------- */

ts_status ts_objstore_faulty_wrap(ts_objstore *inner, int own_inner, const ts_faulty_opts *opts,
                                  ts_objstore **out, char *errstr, size_t errlen)
{
    ts_faulty_opts o;
    ts_status st;
    if (!inner || !out) {
        st = ts_err_set(errstr, errlen, TS_E_INVAL, "faulty wrap: inner store or out is NULL");
        goto fail;
    }
    *out = NULL;
    if (opts) o = *opts;
    else ts_faulty_opts_init(&o);
    st = check_opts(&o, errstr, errlen);
    if (st != TS_OK) goto fail;
    faulty *f = calloc(1, sizeof(*f));
    if (!f) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "faulty wrap of %s: out of memory", inner->url);
        goto fail;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->base.ops = &faulty_ops;
    /* For messages only: a long inner URL is cut short, which is harmless. */
    memcpy(f->base.url, "faulty+", 7);
    ts_strlcpy(f->base.url + 7, inner->url, sizeof(f->base.url) - 7);
    f->inner = inner;
    f->own_inner = own_inner;
    f->opts = o;
    f->rng = o.seed;
    *out = &f->base;
    return TS_OK;
fail:
    if (own_inner) ts_objstore_destroy(inner);
    return st;
}

static faulty *as_faulty(ts_objstore *os)
{
    return os && os->ops == &faulty_ops ? (faulty *)os : NULL;
}

ts_status ts_objstore_faulty_set_opts(ts_objstore *os, const ts_faulty_opts *opts)
{
    faulty *f = as_faulty(os);
    if (!f || !opts || check_opts(opts, NULL, 0) != TS_OK) return TS_E_INVAL;
    pthread_mutex_lock(&f->mu);
    f->opts = *opts;
    f->rng = opts->seed;
    f->puts_reserved = 0;
    f->gen++;
    pthread_mutex_unlock(&f->mu);
    return TS_OK;
}

ts_status ts_objstore_faulty_get_opts(ts_objstore *os, ts_faulty_opts *out)
{
    faulty *f = as_faulty(os);
    if (!f || !out) return TS_E_INVAL;
    pthread_mutex_lock(&f->mu);
    *out = f->opts;
    pthread_mutex_unlock(&f->mu);
    return TS_OK;
}

ts_status ts_objstore_faulty_counters(ts_objstore *os, ts_faulty_counters *out)
{
    faulty *f = as_faulty(os);
    if (!f || !out) return TS_E_INVAL;
    pthread_mutex_lock(&f->mu);
    *out = f->c;
    pthread_mutex_unlock(&f->mu);
    return TS_OK;
}

ts_objstore *ts_objstore_faulty_inner(ts_objstore *os)
{
    faulty *f = as_faulty(os);
    return f ? f->inner : NULL;
}
