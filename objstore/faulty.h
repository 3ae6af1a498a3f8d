/*
 * faulty.h — a fault-injecting object store that wraps any other one.
 *
 * Failure tests run the real stores (fs, S3 against MinIO/RGW) and, in
 * addition, this wrapper, so that the failures a real store produces rarely
 * and at random (503 SlowDown, a body cut short, a flipped bit, a store
 * that disappears) happen on demand and reproducibly. It is reachable
 * through the one engine setting remote.storage.url:
 *
 *   faulty+<inner-url>?<name>=<value>&<name>=<value>...
 *
 *   seed=N             PRNG seed (default 1): same seed, same call order,
 *                      same faults
 *   ops=a,b,...        operations the faults apply to: put, get, head,
 *                      delete (also delete_many), list, writer (open, write,
 *                      commit), all (default all)
 *   err_rate=P         retriable error, TS_E_REMOTE_RETRIABLE "injected 503
 *                      SlowDown", before the inner store is called
 *   fatal_rate=P       non-retriable error, TS_E_REMOTE "injected 400
 *                      InvalidRequest", before the inner store is called
 *   latency_ms=N       sleep N ms before the call...
 *   latency_rate=P     ...with probability P (default 1: every call)
 *   truncate_rate=P    GET returns TS_OK with fewer bytes than it should
 *                      (a body cut short that a lower layer missed)
 *   corrupt_rate=P     GET returns TS_OK with one byte flipped
 *   fail_after_puts=N  after N successful puts (put or writer commit), every
 *                      further put fails TS_E_REMOTE_RETRIABLE "injected:
 *                      store unavailable" (a store that went away);
 *                      applies whatever ops says
 *   fail_next=N        the next N calls of the selected ops fail retriably
 *   key=S              per-key faults: puts and writer commits of keys that
 *                      contain S (up to 127 bytes), whatever ops says...
 *   key_latency_ms=N   ...sleep N ms first (e.g. one segment's object
 *                      finishing after the next one's)
 *   key_fail=N         ...and the next N of them fail retriably
 *   keys=S             faults apply only to calls whose object key (a
 *                      list's prefix) contains S, e.g. one topic's
 *                      "slowtopic/" (default: every key)
 *
 * P is a probability in [0, 1]. Parameters are checked: an unknown name or
 * a bad value is TS_E_CONFIG naming it. The inner URL ends at the first
 * '?', so it cannot carry a query of its own, and faulty+ cannot nest.
 *
 * Thread safety: like every store, all calls are safe concurrently; the
 * options, the PRNG and the counters sit under one mutex that is never held
 * while the inner store runs or while a latency spike sleeps.
 */
#ifndef TS_OBJSTORE_FAULTY_H
#define TS_OBJSTORE_FAULTY_H

#include <stddef.h>
#include <stdint.h>

#include "objstore/objstore.h"

/* Operation bits for ts_faulty_opts.ops. */
#define TS_FAULTY_OP_PUT 0x01u
#define TS_FAULTY_OP_GET 0x02u
#define TS_FAULTY_OP_HEAD 0x04u
#define TS_FAULTY_OP_DELETE 0x08u
#define TS_FAULTY_OP_LIST 0x10u
#define TS_FAULTY_OP_WRITER 0x20u
#define TS_FAULTY_OP_ALL 0x3fu

typedef struct ts_faulty_opts {
    uint64_t seed;           /* PRNG seed */
    unsigned ops;            /* TS_FAULTY_OP_* mask for the faults below */
    double err_rate;         /* retriable error (503 SlowDown) */
    double fatal_rate;       /* non-retriable error (TS_E_REMOTE) */
    uint32_t latency_ms;     /* latency spike length */
    double latency_rate;     /* probability of a spike */
    double truncate_rate;    /* GET only: short body with TS_OK */
    double corrupt_rate;     /* GET only: one flipped byte with TS_OK */
    int64_t fail_after_puts; /* -1 = never; N = puts after the Nth successful one fail */
    uint32_t fail_next;      /* the next N selected calls fail retriably */
    char key[128];           /* per-key faults: puts/commits of keys containing it ("": none) */
    uint32_t key_latency_ms; /* ...sleep first */
    uint32_t key_fail;       /* ...the next N fail retriably */
    char keys[128];          /* "": every key; else only keys containing it */
} ts_faulty_opts;

/* Fault counts since the wrapper was created (never reset). */
typedef struct ts_faulty_counters {
    uint64_t calls;         /* calls of a selected op (faulted or not) */
    uint64_t retriable;     /* injected 503s from err_rate */
    uint64_t fatal;         /* injected non-retriable errors */
    uint64_t latency;       /* latency spikes slept */
    uint64_t truncated;     /* GET bodies cut short */
    uint64_t corrupted;     /* GET bodies with a flipped byte */
    uint64_t puts_refused;  /* puts/commits refused by fail_after_puts */
    uint64_t fail_next;     /* calls failed by the fail_next counter */
    uint64_t puts_ok;       /* successful puts/commits counted by fail_after_puts */
    uint64_t key_delayed;   /* puts/commits of the key= keys slept */
    uint64_t key_failed;    /* puts/commits of the key= keys failed by key_fail */
} ts_faulty_counters;

/* Sets the "no faults" defaults: seed 1, ops all, every rate 0,
 * latency_rate 1, fail_after_puts -1. A zeroed struct is NOT fault-free
 * (fail_after_puts 0 refuses every put): always start from this. */
void ts_faulty_opts_init(ts_faulty_opts *opts);

/* Parses the query-string part of a faulty+ URL (without the '?') into
 * opts, starting from ts_faulty_opts_init. TS_E_CONFIG naming the bad
 * parameter and what is allowed. */
ts_status ts_faulty_opts_parse(const char *query, ts_faulty_opts *opts, char *errstr,
                               size_t errlen);

/* Wraps inner. With own_inner non-zero the wrapper destroys inner when it
 * is destroyed, and also when wrapping fails; otherwise inner must outlive
 * the wrapper. opts is copied (NULL = no faults). */
ts_status ts_objstore_faulty_wrap(ts_objstore *inner, int own_inner, const ts_faulty_opts *opts,
                                  ts_objstore **out, char *errstr, size_t errlen);

/* Replaces the options at run time (thread-safe; calls already past their
 * fault decision are not affected). Reseeds the PRNG from opts->seed and
 * restarts the fail_after_puts count, so "fail_after_puts = 0 from now on"
 * means what it says. TS_E_INVAL when os is not a faulty store. */
ts_status ts_objstore_faulty_set_opts(ts_objstore *os, const ts_faulty_opts *opts);

/* Copies the current options / the counters. TS_E_INVAL when os is not a
 * faulty store. */
ts_status ts_objstore_faulty_get_opts(ts_objstore *os, ts_faulty_opts *out);
ts_status ts_objstore_faulty_counters(ts_objstore *os, ts_faulty_counters *out);

/* The wrapped store, to look behind the faults (tests); NULL when os is
 * not a faulty store. Owned by the wrapper when own_inner was set. */
ts_objstore *ts_objstore_faulty_inner(ts_objstore *os);

#endif
