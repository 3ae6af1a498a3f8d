/*
 * test_objstore_faulty.c — unit tests of the fault-injecting wrapper
 * (objstore/faulty.c) on top of the real fs store: each fault kind, seeded
 * probabilities, option parsing, the faulty:// URL and its counters under
 * threads. `test_objstore_faulty name...` runs only the named tests.
 */
#include "objstore_test.h"

/* ---- faulty wrapper ----------------------------------------------------- */

static ts_objstore *open_faulty(char *dir, size_t dlen, const char *tag, const ts_faulty_opts *o)
{
    ts_objstore *fs = open_fs(dir, dlen, tag), *f = NULL;
    if (ts_objstore_faulty_wrap(fs, 1, o, &f, ERR) != TS_OK) {
        fprintf(stderr, "faulty wrap: %s\n", g_err);
        exit(2);
    }
    return f;
}

TT_TEST(faulty_retriable_error)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_PUT;
    o.err_rate = 1.0;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-f503", &o);
    TT_OKE(ts_objstore_put(ts_objstore_faulty_inner(os), "pre", "v", 1, 0, ERR), g_err);
    ts_status st = ts_objstore_put(os, "k", "v", 1, 0, ERR);
    TT_ASSERT_EQ_INT(st, TS_E_REMOTE_RETRIABLE);
    TT_ASSERT(ts_status_is_retriable(st));
    TT_ASSERT_MSG(strstr(g_err, "injected 503 SlowDown") && strstr(g_err, "'k'"), "msg: %s",
                  g_err);
    /* An injected failure has no side effect. */
    uint64_t size;
    TT_ASSERT_EQ_INT(ts_objstore_head(ts_objstore_faulty_inner(os), "k", &size, ERR),
                     TS_E_NOT_FOUND);
    /* Ops not selected pass through. */
    TT_ASSERT(get_equals(os, "pre", "v", 1));
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.retriable, 1);
    TT_ASSERT_EQ_INT(c.calls, 1);
    TT_ASSERT_STR(os->ops->scheme, "faulty");
    cleanup(os, dir);
}

TT_TEST(faulty_fatal_error)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_HEAD | TS_FAULTY_OP_LIST;
    o.fatal_rate = 1.0;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-ffatal", &o);
    TT_OKE(ts_objstore_put(os, "k", "v", 1, 0, ERR), g_err);
    uint64_t size;
    ts_status st = ts_objstore_head(os, "k", &size, ERR);
    TT_ASSERT_EQ_INT(st, TS_E_REMOTE);
    TT_ASSERT(!ts_status_is_retriable(st));
    TT_ASSERT_MSG(strstr(g_err, "injected") && strstr(g_err, "not retriable"), "msg: %s", g_err);
    listing l;
    TT_ASSERT_EQ_INT(list_all(os, "", &l), TS_E_REMOTE);
    TT_ASSERT_EQ_INT(l.n, 0);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.fatal, 2);
    cleanup(os, dir);
}

TT_TEST(faulty_latency_spike)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_GET;
    o.latency_ms = 40;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-flat", &o);
    TT_OKE(ts_objstore_put(os, "k", "v", 1, 0, ERR), g_err);
    int64_t t0 = ts_mono_ms();
    TT_ASSERT(get_equals(os, "k", "v", 1));
    int64_t took = ts_mono_ms() - t0;
    /* A lower bound only: a sleep never ends early, so this cannot flake. */
    TT_ASSERT_MSG(took >= 39, "get took %lld ms, want >= 40", (long long)took);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.latency, 1);
    /* latency_rate 0 turns the spikes off. */
    o.latency_rate = 0.0;
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_ASSERT(get_equals(os, "k", "v", 1));
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.latency, 1);
    cleanup(os, dir);
}

TT_TEST(faulty_truncated_body)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.truncate_rate = 1.0;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-ftrunc", &o);
    uint8_t data[4096];
    for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t)(i * 13 + 1);
    TT_OKE(ts_objstore_put(os, "k", data, sizeof(data), 0, ERR), g_err);
    for (int round = 0; round < 20; round++) {
        uint8_t *b = NULL;
        size_t n = 0;
        TT_OKE(ts_objstore_get(os, "k", 0, TS_OBJSTORE_TO_END, &b, &n, ERR), g_err);
        int prefix_ok = n < sizeof(data) && !memcmp(b, data, n);
        free(b);
        TT_ASSERT_MSG(prefix_ok, "round %d: %zu bytes, want a strict prefix", round, n);
    }
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.truncated, 20);
    cleanup(os, dir);
}

TT_TEST(faulty_corrupted_body)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.corrupt_rate = 1.0;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fcorrupt", &o);
    uint8_t data[1000];
    memset(data, 0x5a, sizeof(data));
    TT_OKE(ts_objstore_put(os, "k", data, sizeof(data), 0, ERR), g_err);
    for (int round = 0; round < 20; round++) {
        uint8_t *b = NULL;
        size_t n = 0;
        TT_OKE(ts_objstore_get(os, "k", 100, 500, &b, &n, ERR), g_err);
        TT_ASSERT_EQ_INT(n, 500);
        int diffs = 0, one_bit = 1;
        for (size_t i = 0; i < n; i++) {
            if (b[i] == data[100 + i]) continue;
            diffs++;
            uint8_t x = (uint8_t)(b[i] ^ data[100 + i]);
            one_bit = one_bit && (x & (x - 1)) == 0;
        }
        free(b);
        TT_ASSERT_MSG(diffs == 1 && one_bit, "round %d: %d bytes differ", round, diffs);
    }
    /* The stored object itself is intact. */
    TT_ASSERT(get_equals(ts_objstore_faulty_inner(os), "k", data, sizeof(data)));
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.corrupted, 20);
    TT_ASSERT_EQ_INT(c.truncated, 0);
    cleanup(os, dir);
}

TT_TEST(faulty_fail_after_puts)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.fail_after_puts = 3;
    o.ops = TS_FAULTY_OP_GET; /* fail_after_puts applies whatever ops says */
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fafter", &o);
    /* A failed put (bad key) does not use up the budget. */
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "/bad", "v", 1, 0, ERR), TS_E_INVAL);
    TT_OKE(ts_objstore_put(os, "p1", "v", 1, 0, ERR), g_err);
    TT_OKE(ts_objstore_put(os, "p2", "v", 1, 0, ERR), g_err);
    ts_objstore_writer *w = NULL;
    TT_OKE(ts_objstore_writer_open(os, "p3", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "v", 1, ERR), g_err);
    TT_OKE(ts_objstore_writer_commit(w, ERR), g_err);
    for (int i = 0; i < 3; i++) {
        ts_status st = ts_objstore_put(os, "p4", "v", 1, 0, ERR);
        TT_ASSERT_EQ_INT(st, TS_E_REMOTE_RETRIABLE);
        TT_ASSERT_MSG(strstr(g_err, "store unavailable"), "msg: %s", g_err);
    }
    /* Writer commits are puts too; the refused one leaves nothing. */
    TT_OKE(ts_objstore_writer_open(os, "p5", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "v", 1, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_writer_commit(w, ERR), TS_E_REMOTE_RETRIABLE);
    listing l;
    TT_OKE(list_all(os, "", &l), g_err);
    TT_ASSERT_EQ_INT(l.n, 3);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.puts_refused, 4);
    TT_ASSERT_EQ_INT(c.puts_ok, 3);
    /* The store "comes back" when the options change at run time. */
    o.fail_after_puts = -1;
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_OKE(ts_objstore_put(os, "p4", "v", 1, 0, ERR), g_err);
    o.fail_after_puts = 0; /* ...and goes away again, from now on */
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "p6", "v", 1, 0, ERR), TS_E_REMOTE_RETRIABLE);
    cleanup(os, dir);
}

TT_TEST(faulty_fail_next)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.fail_next = 2;
    o.ops = TS_FAULTY_OP_DELETE;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fnext", &o);
    TT_OKE(ts_objstore_put(os, "k", "v", 1, 0, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_delete(os, "k", ERR), TS_E_REMOTE_RETRIABLE);
    const char *keys[] = {"k", "other"};
    TT_ASSERT_EQ_INT(ts_objstore_delete_many(os, keys, 2, ERR), TS_E_REMOTE_RETRIABLE);
    uint64_t size;
    TT_OKE(ts_objstore_head(os, "k", &size, ERR), g_err); /* nothing deleted yet */
    TT_OKE(ts_objstore_delete(os, "k", ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_head(os, "k", &size, ERR), TS_E_NOT_FOUND);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.fail_next, 2);
    ts_faulty_opts now;
    TT_OK(ts_objstore_faulty_get_opts(os, &now));
    TT_ASSERT_EQ_INT(now.fail_next, 0);
    cleanup(os, dir);
}

TT_TEST(faulty_writer_faults)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_WRITER;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fwriter", &o);
    ts_objstore *inner = ts_objstore_faulty_inner(os);
    uint64_t size;
    /* Commit fails: the inner upload is aborted, nothing is visible. */
    ts_objstore_writer *w = NULL;
    TT_OKE(ts_objstore_writer_open(os, "w1", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "abc", 3, ERR), g_err);
    o.fail_next = 1;
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_ASSERT_EQ_INT(ts_objstore_writer_commit(w, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT_MSG(strstr(g_err, "commit of 'w1'"), "msg: %s", g_err);
    TT_ASSERT_EQ_INT(ts_objstore_head(inner, "w1", &size, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    /* Write fails: the writer stays failed, commit is refused, nothing
     * visible. */
    TT_OKE(ts_objstore_writer_open(os, "w2", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "abc", 3, ERR), g_err);
    o.fail_next = 1;
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_ASSERT_EQ_INT(ts_objstore_writer_write(w, "def", 3, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT_EQ_INT(ts_objstore_writer_write(w, "ghi", 3, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT_MSG(strstr(g_err, "earlier write failed"), "msg: %s", g_err);
    TT_ASSERT(ts_objstore_writer_commit(w, ERR) != TS_OK);
    TT_ASSERT_EQ_INT(ts_objstore_head(inner, "w2", &size, ERR), TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    /* Open fails: no writer, no temp file. */
    o.fail_next = 1;
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    w = (ts_objstore_writer *)1;
    TT_ASSERT_EQ_INT(ts_objstore_writer_open(os, "w3", &w, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT(w == NULL);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    /* Abort through the wrapper cleans the inner writer. */
    TT_OKE(ts_objstore_writer_open(os, "w4", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "abc", 3, ERR), g_err);
    ts_objstore_writer_abort(w);
    TT_ASSERT_EQ_INT(count_tmp(dir), 0);
    /* And without faults the wrapper's writer stores the object. */
    TT_OKE(ts_objstore_writer_open(os, "w5", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "abc", 3, ERR), g_err);
    TT_OKE(ts_objstore_writer_commit(w, ERR), g_err);
    TT_ASSERT(get_equals(inner, "w5", "abc", 3));
    cleanup(os, dir);
}

/* Runs `calls` heads and records which failed. */
static int fail_pattern(ts_objstore *os, uint8_t *pattern, int calls)
{
    int fails = 0;
    uint64_t size;
    for (int i = 0; i < calls; i++) {
        ts_status st = ts_objstore_head(os, "k", &size, g_err, sizeof(g_err));
        pattern[i] = st != TS_OK;
        fails += pattern[i];
    }
    return fails;
}

TT_TEST(faulty_seeded_probability)
{
    char d1[512], d2[512], d3[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.seed = 7;
    o.err_rate = 0.3;
    ts_objstore *a = open_faulty(d1, sizeof(d1), "os-fseed1", &o);
    ts_objstore *b = open_faulty(d2, sizeof(d2), "os-fseed2", &o);
    o.seed = 8;
    ts_objstore *c = open_faulty(d3, sizeof(d3), "os-fseed3", &o);
    TT_OKE(ts_objstore_put(ts_objstore_faulty_inner(a), "k", "v", 1, 0, ERR), g_err);
    TT_OKE(ts_objstore_put(ts_objstore_faulty_inner(b), "k", "v", 1, 0, ERR), g_err);
    TT_OKE(ts_objstore_put(ts_objstore_faulty_inner(c), "k", "v", 1, 0, ERR), g_err);
    static uint8_t pa[2000], pb[2000], pc[2000];
    int fa = fail_pattern(a, pa, 2000), fb = fail_pattern(b, pb, 2000);
    fail_pattern(c, pc, 2000);
    TT_ASSERT(!memcmp(pa, pb, sizeof(pa))); /* same seed, same faults */
    TT_ASSERT(memcmp(pa, pc, sizeof(pa)));  /* another seed, other faults */
    TT_ASSERT_EQ_INT(fa, fb);
    /* 2000 draws at p=0.3: mean 600, sd ~20; the seed fixes the count, the
     * bounds only catch a broken rate. */
    TT_ASSERT_MSG(fa > 500 && fa < 700, "%d of 2000 failed at rate 0.3", fa);
    ts_faulty_counters ca;
    TT_OK(ts_objstore_faulty_counters(a, &ca));
    TT_ASSERT_EQ_INT(ca.retriable, fa);
    TT_ASSERT_EQ_INT(ca.calls, 2000);
    /* Reseeding at run time replays the sequence. */
    TT_OK(ts_objstore_faulty_set_opts(c, &(ts_faulty_opts){.seed = 7,
                                                           .ops = TS_FAULTY_OP_ALL,
                                                           .err_rate = 0.3,
                                                           .latency_rate = 1.0,
                                                           .fail_after_puts = -1}));
    fail_pattern(c, pc, 2000);
    TT_ASSERT(!memcmp(pa, pc, sizeof(pa)));
    cleanup(a, d1);
    cleanup(b, d2);
    cleanup(c, d3);
}

TT_TEST(faulty_bad_opts_rejected)
{
    char dir[512];
    ts_objstore *fs = open_fs(dir, sizeof(dir), "os-fbad"), *f = (ts_objstore *)1;
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.err_rate = 1.5;
    TT_ASSERT_EQ_INT(ts_objstore_faulty_wrap(fs, 0, &o, &f, ERR), TS_E_INVAL);
    TT_ASSERT(f == NULL);
    TT_ASSERT(strstr(g_err, "1.5"));
    ts_faulty_opts_init(&o);
    o.fail_after_puts = -2;
    TT_ASSERT_EQ_INT(ts_objstore_faulty_wrap(fs, 0, &o, &f, ERR), TS_E_INVAL);
    /* A non-faulty store has no fault options. */
    ts_faulty_counters c;
    TT_ASSERT_EQ_INT(ts_objstore_faulty_set_opts(fs, &o), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_objstore_faulty_counters(fs, &c), TS_E_INVAL);
    TT_ASSERT(ts_objstore_faulty_inner(fs) == NULL);
    /* NULL opts: no faults; not owned: fs outlives the wrapper. */
    TT_OKE(ts_objstore_faulty_wrap(fs, 0, NULL, &f, ERR), g_err);
    TT_OKE(ts_objstore_put(f, "k", "v", 1, 0, ERR), g_err);
    ts_faulty_opts_init(&o);
    o.corrupt_rate = -0.1;
    TT_ASSERT_EQ_INT(ts_objstore_faulty_set_opts(f, &o), TS_E_INVAL);
    ts_objstore_destroy(f);
    TT_ASSERT(get_equals(fs, "k", "v", 1));
    cleanup(fs, dir);
}

TT_TEST(faulty_opts_parse)
{
    ts_faulty_opts o;
    TT_OKE(ts_faulty_opts_parse("seed=7&err_rate=0.2&ops=put,get&latency_ms=5&truncate_rate=0.1"
                                "&corrupt_rate=0.1&fail_after_puts=9&fatal_rate=0.05&fail_next=3&",
                                &o, ERR),
           g_err);
    TT_ASSERT_EQ_INT(o.seed, 7);
    TT_ASSERT(o.err_rate == 0.2 && o.truncate_rate == 0.1 && o.corrupt_rate == 0.1);
    TT_ASSERT(o.fatal_rate == 0.05);
    TT_ASSERT_EQ_INT(o.ops, TS_FAULTY_OP_PUT | TS_FAULTY_OP_GET);
    TT_ASSERT_EQ_INT(o.latency_ms, 5);
    TT_ASSERT(o.latency_rate == 1.0);
    TT_ASSERT_EQ_INT(o.fail_after_puts, 9);
    TT_ASSERT_EQ_INT(o.fail_next, 3);
    TT_OKE(ts_faulty_opts_parse("", &o, ERR), g_err);
    TT_ASSERT(o.err_rate == 0.0 && o.fail_after_puts == -1 && o.ops == TS_FAULTY_OP_ALL);
    TT_OKE(ts_faulty_opts_parse("ops=all&latency_rate=0.25&latency_ms=100", &o, ERR), g_err);
    TT_ASSERT(o.latency_rate == 0.25 && o.ops == TS_FAULTY_OP_ALL);
    TT_OKE(ts_faulty_opts_parse("ops=writer,delete,list,head", &o, ERR), g_err);
    TT_ASSERT_EQ_INT(o.ops, TS_FAULTY_OP_WRITER | TS_FAULTY_OP_DELETE | TS_FAULTY_OP_LIST |
                                TS_FAULTY_OP_HEAD);
    const char *bad[] = {"err_rate=", "err_rate=nan", "err_rate=-0.1", "seed=-1", "seed=1x",
                         "ops=", "ops=put,,get", "latency_ms=600001", "fail_next=4294967296",
                         "=1", "x=1", "fail_after_puts=1e3", "key=", "key_fail=x",
                         "key_latency_ms=600001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.seed = 12345;
        TT_ASSERT_MSG(ts_faulty_opts_parse(bad[i], &o, ERR) == TS_E_CONFIG, "'%s' accepted",
                      bad[i]);
        TT_ASSERT_MSG(strstr(g_err, "bad fault option"), "'%s': %s", bad[i], g_err);
        TT_ASSERT_MSG(o.seed == 12345, "'%s': opts written on failure", bad[i]);
    }
}

/* Per-key faults hit only puts and commits of matching keys, whatever
 * ops says; other keys and other operations pass through. */
TT_TEST(faulty_per_key)
{
    char dir[512];
    ts_faulty_opts o;
    TT_OKE(ts_faulty_opts_parse("ops=get&key=seg-2&key_fail=2&key_latency_ms=1", &o, ERR), g_err);
    TT_ASSERT_STR(o.key, "seg-2");
    TT_ASSERT_EQ_INT(o.key_fail, 2);
    TT_ASSERT_EQ_INT(o.key_latency_ms, 1);
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fkey", &o);
    TT_OKE(ts_objstore_put(os, "seg-1", "v", 1, 0, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "a/seg-2", "v", 1, 0, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT_MSG(strstr(g_err, "key_fail") && strstr(g_err, "'a/seg-2'"), "msg: %s", g_err);
    ts_objstore_writer *w;
    TT_OKE(ts_objstore_writer_open(os, "b/seg-2", &w, ERR), g_err);
    TT_OKE(ts_objstore_writer_write(w, "vv", 2, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_writer_commit(w, ERR), TS_E_REMOTE_RETRIABLE);
    uint64_t size;
    TT_ASSERT_EQ_INT(ts_objstore_head(ts_objstore_faulty_inner(os), "b/seg-2", &size, ERR),
                     TS_E_NOT_FOUND); /* a refused commit publishes nothing */
    TT_OKE(ts_objstore_put(os, "a/seg-2", "v", 1, 0, ERR), g_err); /* the count is spent */
    TT_ASSERT(get_equals(os, "a/seg-2", "v", 1));
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.key_failed, 2);
    TT_ASSERT_EQ_INT(c.key_delayed, 3);
    cleanup(os, dir);
}

TT_TEST(faulty_keys_filter)
{
    /* keys=S: only calls on keys containing S get faults (one topic's
     * objects stall, the others do not); body faults too. */
    char dir[512];
    ts_faulty_opts o;
    TT_OKE(ts_faulty_opts_parse("ops=get&keys=slow/&err_rate=1", &o, ERR), g_err);
    TT_ASSERT_STR(o.keys, "slow/");
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fkeys", &o);
    TT_OKE(ts_objstore_put(os, "slow/0/a", "v", 1, 0, ERR), g_err);
    TT_OKE(ts_objstore_put(os, "fast/0/a", "w", 1, 0, ERR), g_err);
    TT_ASSERT(get_equals(os, "fast/0/a", "w", 1));
    uint8_t *out = NULL;
    size_t n = 0;
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "slow/0/a", 0, 1, &out, &n, ERR), TS_E_REMOTE_RETRIABLE);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.calls, 1); /* the fast GET was not selected */
    TT_ASSERT_EQ_INT(c.retriable, 1);
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_GET;
    o.corrupt_rate = 1.0;
    snprintf(o.keys, sizeof(o.keys), "slow/");
    TT_OK(ts_objstore_faulty_set_opts(os, &o));
    TT_ASSERT(get_equals(os, "fast/0/a", "w", 1));
    TT_ASSERT(!get_equals(os, "slow/0/a", "v", 1));
    const char *bad[] = {"keys=", "keys=0123456789012345678901234567890123456789012345678901234567"
                                  "890123456789012345678901234567890123456789012345678901234567"
                                  "890123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        TT_ASSERT_MSG(ts_faulty_opts_parse(bad[i], &o, ERR) == TS_E_CONFIG &&
                          strstr(g_err, "keys"),
                      "'%s': %s", bad[i], g_err);
    cleanup(os, dir);
}

TT_TEST(faulty_via_url)
{
    char dir[512], url[800];
    tt_tmpdir(dir, sizeof(dir), "os-furl");
    snprintf(url, sizeof(url), "faulty+file://%s?seed=7&ops=get&truncate_rate=1&fail_next=1", dir);
    ts_objstore *os = NULL;
    TT_OKE(ts_objstore_open(url, NULL, &os, ERR), g_err);
    TT_ASSERT_STR(os->url, url);
    TT_ASSERT_STR(os->ops->scheme, "faulty");
    TT_ASSERT(ts_objstore_faulty_inner(os) != NULL);
    TT_ASSERT_STR(ts_objstore_faulty_inner(os)->ops->scheme, "file");
    TT_OKE(ts_objstore_put(os, "k", "0123456789", 10, 0, ERR), g_err);
    uint8_t *b = NULL;
    size_t n = 0;
    TT_ASSERT_EQ_INT(ts_objstore_get(os, "k", 0, 10, &b, &n, ERR), TS_E_REMOTE_RETRIABLE);
    TT_OKE(ts_objstore_get(os, "k", 0, 10, &b, &n, ERR), g_err);
    free(b);
    TT_ASSERT(n < 10);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.fail_next, 1);
    TT_ASSERT_EQ_INT(c.truncated, 1);
    ts_objstore_destroy(os);
    /* The inner store was owned and closed; the data stays on disk. */
    snprintf(url, sizeof(url), "faulty+file://%s?ops=put&fail_after_puts=0", dir);
    TT_OKE(ts_objstore_open(url, NULL, &os, ERR), g_err);
    TT_ASSERT_EQ_INT(ts_objstore_put(os, "k2", "v", 1, 0, ERR), TS_E_REMOTE_RETRIABLE);
    TT_ASSERT(get_equals(os, "k", "0123456789", 10));
    /* An empty fault list is a transparent wrapper. */
    ts_objstore_destroy(os);
    snprintf(url, sizeof(url), "faulty+file://%s", dir);
    TT_OKE(ts_objstore_open(url, NULL, &os, ERR), g_err);
    TT_OKE(ts_objstore_put(os, "k2", "v", 1, 0, ERR), g_err);
    cleanup(os, dir);
}

typedef struct fthread_arg {
    ts_objstore *os;
    int id, ok, failed, other;
} fthread_arg;

static void *faulty_worker(void *p)
{
    fthread_arg *a = p;
    char err[256];
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof(key), "t%d/%d", a->id, i);
        ts_status st = ts_objstore_put(a->os, key, "v", 1, 0, err, sizeof(err));
        if (st == TS_OK) a->ok++;
        else if (st == TS_E_REMOTE_RETRIABLE) a->failed++;
        else a->other++;
    }
    return NULL;
}

TT_TEST(faulty_threads_counters)
{
    char dir[512];
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.err_rate = 0.5;
    o.seed = 99;
    ts_objstore *os = open_faulty(dir, sizeof(dir), "os-fthreads", &o);
    pthread_t th[4];
    fthread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (fthread_arg){os, i, 0, 0, 0};
        pthread_create(&th[i], NULL, faulty_worker, &args[i]);
    }
    int ok = 0, failed = 0, other = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        failed += args[i].failed;
        other += args[i].other;
    }
    TT_ASSERT_EQ_INT(other, 0);
    TT_ASSERT_EQ_INT(ok + failed, 1200);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(os, &c));
    TT_ASSERT_EQ_INT(c.calls, 1200);
    TT_ASSERT_EQ_INT(c.retriable, failed);
    TT_ASSERT_EQ_INT(c.puts_ok, ok);
    int cnt = 0;
    TT_OKE(ts_objstore_list(ts_objstore_faulty_inner(os), "", count_cb, &cnt, ERR), g_err);
    TT_ASSERT_EQ_INT(cnt, ok); /* exactly the puts reported OK exist */
    cleanup(os, dir);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(faulty_retriable_error);
    TT_RUN(faulty_fatal_error);
    TT_RUN(faulty_latency_spike);
    TT_RUN(faulty_truncated_body);
    TT_RUN(faulty_corrupted_body);
    TT_RUN(faulty_fail_after_puts);
    TT_RUN(faulty_fail_next);
    TT_RUN(faulty_writer_faults);
    TT_RUN(faulty_seeded_probability);
    TT_RUN(faulty_bad_opts_rejected);
    TT_RUN(faulty_opts_parse);
    TT_RUN(faulty_per_key);
    TT_RUN(faulty_keys_filter);
    TT_RUN(faulty_via_url);
    TT_RUN(faulty_threads_counters);
    return tt_summary();
}
