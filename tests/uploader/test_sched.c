/*
 * test_sched.c — the upload scheduler (uploader/sched.h): several segments
 * of one partition build their objects in parallel, their entries commit in
 * offset order; a failure of a middle segment stops the commits after it
 * and they go again in order; objects that finished together commit as one
 * group (one manifest version, one head PUT), and a failed, fenced or
 * refused group keeps the guarantees of single commits. Real file:// store
 * and real index, wrapped in the fault injector (objstore/faulty.c) for
 * per-key delays and failures, and to count manifest PUTs; a group's head
 * PUT in flight holds no build: the next segments build meanwhile, up to
 * the bound on built, uncommitted objects.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "objstore/faulty.h"
#include "objstore/objstore.h"
#include "tt.h"
#include "uploader/sched.h"

#define NSEG 4
#define SEG_RECS 200 /* records per segment: segment k holds [k * 200, k * 200 + 199] */

static char g_root[256];

/* Writes segment k (20 batches of 10 records) under dir; path into out. */
static void write_segment(const char *dir, int k, char *out, size_t outlen)
{
    ts_buf b;
    ts_buf_init(&b, 0);
    int64_t off = (int64_t)k * SEG_RECS;
    snprintf(out, outlen, "%s/%020lld.log", dir, (long long)off);
    for (int i = 0; i < 20; i++) {
        const void *v[10];
        size_t l[10];
        char val[300];
        memset(val, 'a' + (k * 3 + i) % 26, sizeof(val));
        for (int r = 0; r < 10; r++) {
            v[r] = val;
            l[r] = sizeof(val);
        }
        uint8_t *bb;
        size_t bl;
        ts_batch_build(v, l, 10, 1000 + k * 100 + i, &bb, &bl);
        ts_batch_set_base_offset(bb, off);
        off += 10;
        ts_buf_append(&b, bb, bl);
        free(bb);
    }
    ts_fs_write_atomic(out, b.data, b.len, NULL, 0);
    ts_buf_free(&b);
}

static int count_cb(const char *k, uint64_t s, void *o)
{
    (void)k;
    (void)s;
    (*(int *)o)++;
    return 0;
}

static int count_objects(ts_objstore *os)
{
    int n = 0;
    char err[256];
    ts_objstore_list(os, "t/0/segments/", count_cb, &n, err, sizeof(err));
    return n;
}

/* What the owner sees: results in the order done() was called. */
typedef struct owner {
    ts_objstore *os;
    ts_index *idx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ndone;
    int built; /* room() calls: builds ended */
    int order[3 * NSEG];
    ts_status st[3 * NSEG];
    int committed[3 * NSEG], discarded[3 * NSEG];
    /* gate: segment 0's build waits until this many objects exist (0: none) */
    int gate;
    int others_built_before_first; /* objects seen when segment 0 started */
    int cancel;                    /* cancelled() answers this */
    /* late: segment `late` starts only once `late_after` are done (0: none) */
    int late, late_after;
    size_t entries_when_gate_opened;
} owner;

static ts_status prepare_cb(void *o, void *item, ts_upload_req *req, char *errstr, size_t errlen)
{
    owner *w = o;
    (void)req;
    (void)errstr;
    (void)errlen;
    if (w->late_after && (int)(intptr_t)item == w->late) {
        int64_t deadline = ts_mono_ms() + 20000;
        for (;;) {
            pthread_mutex_lock(&w->mu);
            int n = w->ndone;
            pthread_mutex_unlock(&w->mu);
            if (n >= w->late_after || ts_mono_ms() > deadline) return TS_OK;
            ts_sleep_ms(5);
        }
    }
    if ((int)(intptr_t)item != 0 || !w->gate) return TS_OK;
    /* Segment 0 starts only once the later segments' objects are durable:
     * they finish first, whatever the machine's speed. 20 s: a stuck
     * scheduler fails the test below, not this wait. */
    int64_t deadline = ts_mono_ms() + 20000;
    int n = 0;
    while ((n = count_objects(w->os)) < w->gate && ts_mono_ms() < deadline) ts_sleep_ms(5);
    w->others_built_before_first = n;
    ts_index_summary sum;
    ts_index_summary_get(w->idx, &sum);
    w->entries_when_gate_opened = sum.count;
    return TS_OK;
}

static int cancelled_cb(void *o) { return ((owner *)o)->cancel; }

static void done_cb(void *o, const ts_upload_result *r)
{
    owner *w = o;
    pthread_mutex_lock(&w->mu);
    int i = w->ndone++;
    w->order[i] = (int)(intptr_t)r->item;
    w->st[i] = r->st;
    w->committed[i] = r->committed;
    w->discarded[i] = r->discarded;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void room_cb(void *o)
{
    owner *w = o;
    pthread_mutex_lock(&w->mu);
    w->built++;
    pthread_mutex_unlock(&w->mu);
}

static const ts_upload_queue_ops g_ops = {prepare_cb, cancelled_cb, done_cb, room_cb};

/* Waits (30 s at most) until the owner's counter *c reaches n; its value. */
static int wait_count(owner *w, const int *c, int n)
{
    int64_t deadline = ts_mono_ms() + 30000;
    pthread_mutex_lock(&w->mu);
    while (*c < n && ts_mono_ms() < deadline) {
        pthread_mutex_unlock(&w->mu);
        ts_sleep_ms(5);
        pthread_mutex_lock(&w->mu);
    }
    int got = *c;
    pthread_mutex_unlock(&w->mu);
    return got;
}

static int wait_done(owner *w, int n) { return wait_count(w, &w->ndone, n); }

typedef struct fixture {
    char dir[400], paths[NSEG][500];
    ts_objstore *inner, *os;
    ts_index *idx;
    ts_upload_sched *sched;
    ts_upload_queue *q;
    owner w;
    char err[1024];
} fixture;

static ts_status fixture_open(fixture *f, const char *name, const ts_faulty_opts *fo)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s/%s", g_root, name);
    ts_fs_mkdirs(f->dir, NULL, 0);
    for (int k = 0; k < NSEG; k++) write_segment(f->dir, k, f->paths[k], sizeof(f->paths[k]));
    char url[600];
    snprintf(url, sizeof(url), "file://%s/bucket", f->dir);
    ts_status st = ts_objstore_open(url, NULL, &f->inner, f->err, sizeof(f->err));
    if (!st) st = ts_objstore_faulty_wrap(f->inner, 1, fo, &f->os, f->err, sizeof(f->err));
    if (!st) st = ts_index_create("t", 0, f->dir, f->os, &f->idx, f->err, sizeof(f->err));
    if (!st) st = ts_upload_sched_create(NSEG, &f->sched, f->err, sizeof(f->err));
    f->w.os = f->os;
    f->w.idx = f->idx;
    pthread_mutex_init(&f->w.mu, NULL);
    pthread_cond_init(&f->w.cv, NULL);
    if (!st) st = ts_upload_queue_create(f->sched, f->os, f->idx, 0, 30000, &g_ops, &f->w, &f->q,
                                         f->err, sizeof(f->err));
    return st;
}

static void fixture_close(fixture *f)
{
    ts_upload_sched_destroy(f->sched);
    ts_upload_queue_destroy(f->q);
    ts_index_destroy(f->idx);
    ts_objstore_destroy(f->os);
    pthread_mutex_destroy(&f->w.mu);
    pthread_cond_destroy(&f->w.cv);
}

/* Hands segment k (its file at path) to q. */
static ts_status submit_to(ts_upload_queue *q, const char *path, int k)
{
    ts_upload_req req = {"t", 0, path, (int64_t)k * SEG_RECS, 4096, 3, 1 << 20,
                         NULL, NULL, 0, NULL, 0};
    return ts_upload_queue_submit(q, &req, (void *)(intptr_t)k);
}

static ts_status submit(fixture *f, int k) { return submit_to(f->q, f->paths[k], k); }

/* The manifest holds segments [0, upto) exactly, contiguous, in order. */
static int manifest_is(fixture *f, int upto)
{
    ts_index_entry *e;
    size_t n;
    if (ts_index_snapshot_entries(f->idx, &e, &n)) return 0;
    int ok = n == (size_t)upto;
    for (size_t i = 0; ok && i < n; i++)
        ok = e[i].base_offset == (int64_t)i * SEG_RECS &&
             e[i].last_offset == (int64_t)(i + 1) * SEG_RECS - 1;
    free(e);
    return ok;
}

/* Segments 0..n-1 were reported in order, committed, none discarded, each
 * with st (segment odd, if >= 0: with st_odd). */
static void expect_committed(const owner *w, int n, ts_status st, int odd, ts_status st_odd)
{
    for (int i = 0; i < n; i++) {
        TT_ASSERT_EQ_INT(w->order[i], i);
        TT_ASSERT_EQ_INT(w->st[i], i == odd ? st_odd : st);
        TT_ASSERT(w->committed[i] && !w->discarded[i]);
    }
}

TT_TEST(later_segments_finish_first_and_commit_after_the_first)
{
    ts_faulty_opts fo;
    ts_faulty_opts_init(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "order", &fo), f.err);
    f.w.gate = NSEG - 1;
    TT_ASSERT(ts_upload_queue_room(f.q) == NSEG); /* max_inflight 0 = the thread count */
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(ts_upload_queue_room(f.q), 0);
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    /* The later objects were durable before segment 0 began, and none of
     * them had joined the manifest: they waited, holding their objects. */
    TT_ASSERT_EQ_INT(f.w.others_built_before_first, NSEG - 1);
    TT_ASSERT_EQ_INT(f.w.entries_when_gate_opened, 0);
    expect_committed(&f.w, NSEG, TS_OK, -1, TS_OK);
    TT_ASSERT(manifest_is(&f, NSEG));
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG);
    TT_ASSERT_EQ_INT(ts_upload_queue_room(f.q), NSEG);
    fixture_close(&f);
}

TT_TEST(a_failed_middle_segment_stops_the_commits_after_it)
{
    ts_faulty_opts fo;
    ts_faulty_opts_init(&fo);
    /* Segment 1's object fails once; segment 2 and 3 are slow enough that
     * segment 1 is settled first... or not: the outcome must not depend on
     * it. */
    snprintf(fo.key, sizeof(fo.key), "segments/%020d-", SEG_RECS);
    fo.key_fail = 1;
    fixture f;
    TT_OKE(fixture_open(&f, "fail", &fo), f.err);
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    TT_ASSERT_EQ_INT(f.w.order[0], 0);
    TT_ASSERT(f.w.committed[0] && f.w.st[0] == TS_OK);
    TT_ASSERT_EQ_INT(f.w.order[1], 1);
    TT_ASSERT(!f.w.committed[1] && !f.w.discarded[1]);
    TT_ASSERT_EQ_INT(f.w.st[1], TS_E_REMOTE_RETRIABLE);
    for (int i = 2; i < NSEG; i++) {
        TT_ASSERT_EQ_INT(f.w.order[i], i);
        TT_ASSERT(!f.w.committed[i] && f.w.discarded[i]);
    }
    /* Only segment 0 is in the manifest, and only its object is left: the
     * failed one was never published, the ones behind it were deleted. */
    TT_ASSERT(manifest_is(&f, 1));
    TT_ASSERT_EQ_INT(count_objects(f.os), 1);
    TT_ASSERT(ts_upload_queue_retry_at(f.q) > 0);
    /* After the backoff they go again, in order, and all commit. */
    int64_t deadline = ts_mono_ms() + 20000;
    while (!ts_upload_queue_room(f.q) && ts_mono_ms() < deadline) ts_sleep_ms(10);
    TT_ASSERT(ts_upload_queue_room(f.q) > 0);
    for (int k = 1; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, 2 * NSEG - 1), 2 * NSEG - 1);
    for (int i = NSEG; i < 2 * NSEG - 1; i++) {
        TT_ASSERT_EQ_INT(f.w.order[i], i - NSEG + 1);
        TT_ASSERT(f.w.committed[i] && f.w.st[i] == TS_OK);
    }
    TT_ASSERT(manifest_is(&f, NSEG));
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG);
    TT_ASSERT_EQ_INT(ts_upload_queue_retry_at(f.q), 0); /* a success resets the backoff */
    fixture_close(&f);
}

TT_TEST(a_bounded_queue_refuses_more_than_its_limit)
{
    ts_faulty_opts fo;
    ts_faulty_opts_init(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "bound", &fo), f.err);
    ts_upload_queue *q2;
    TT_OKE(ts_upload_queue_create(f.sched, f.os, f.idx, 2, 30000, &g_ops, &f.w, &q2, f.err,
                                  sizeof(f.err)), f.err);
    TT_ASSERT_EQ_INT(ts_upload_queue_room(q2), 2);
    ts_upload_queue_destroy(q2);
    /* A bad segment (its first batch is not where the entry says) fails
     * clearly and leaves nothing; the next one, finished first (the gate),
     * is discarded behind it, its object deleted. */
    f.w.gate = 1;
    ts_upload_req bad = {"t", 0, f.paths[0], 5, 4096, 3, 1 << 20, NULL, NULL, 0, NULL, 0};
    TT_OK(ts_upload_queue_submit(f.q, &bad, (void *)(intptr_t)0));
    TT_OK(submit(&f, 1));
    TT_ASSERT_EQ_INT(wait_done(&f.w, 2), 2);
    TT_ASSERT_EQ_INT(f.w.others_built_before_first, 1);
    TT_ASSERT_EQ_INT(f.w.st[0], TS_E_INVAL);
    TT_ASSERT(!f.w.committed[0] && f.w.discarded[1] && !f.w.committed[1]);
    TT_ASSERT(manifest_is(&f, 0));
    TT_ASSERT_EQ_INT(count_objects(f.os), 0);
    /* Not retriable: the backoff is the cap, so nothing starts now, and a
     * hand-over that did not ask first is refused. */
    TT_ASSERT_EQ_INT(ts_upload_queue_room(f.q), 0);
    TT_ASSERT_EQ_INT(submit(&f, 0), TS_E_BACKPRESSURE);
    fixture_close(&f);
}

TT_TEST(a_cancelled_queue_commits_nothing_and_leaves_no_object)
{
    ts_faulty_opts fo;
    ts_faulty_opts_init(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "cancel", &fo), f.err);
    f.w.cancel = 1; /* the partition was deleted while its segments uploaded */
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    for (int i = 0; i < NSEG; i++) {
        TT_ASSERT_EQ_INT(f.w.order[i], i);
        TT_ASSERT_EQ_INT(f.w.st[i], TS_E_CLOSED);
        TT_ASSERT(f.w.discarded[i] && !f.w.committed[i]);
    }
    TT_ASSERT(manifest_is(&f, 0));
    TT_ASSERT_EQ_INT(count_objects(f.os), 0);
    /* An outcome, not a failure: no backoff. */
    TT_ASSERT_EQ_INT(ts_upload_queue_retry_at(f.q), 0);
    fixture_close(&f);
}

/* Faults for the group-commit tests: segment 0's object commits 500 ms
 * late after its gate opened (so the objects that finished before it are
 * marked finished when it is: they join its group), and the store counts
 * the manifest PUTs (calls of op put on keys with "/manifests/"). */
static void group_opts(ts_faulty_opts *fo)
{
    ts_faulty_opts_init(fo);
    snprintf(fo->key, sizeof(fo->key), "segments/%020d-", 0);
    fo->key_latency_ms = 500;
    fo->ops = TS_FAULTY_OP_PUT;
    snprintf(fo->keys, sizeof(fo->keys), "/manifests/");
}

static uint64_t manifest_puts(fixture *f)
{
    ts_faulty_counters c;
    if (ts_objstore_faulty_counters(f->os, &c)) return UINT64_MAX;
    return c.calls;
}

/* Entries of the bucket's newest manifest (-1: none readable), through a
 * scratch index on the store behind the faults. */
static long bucket_entries(fixture *f, const char *name)
{
    char dir[600], err[512];
    snprintf(dir, sizeof(dir), "%s/%s", f->dir, name);
    ts_index *idx = NULL;
    long n = -1;
    if (!ts_index_create("t", 0, dir, ts_objstore_faulty_inner(f->os), &idx, err, sizeof(err)) &&
        !ts_index_load_remote(idx, err, sizeof(err))) {
        ts_index_summary sum;
        ts_index_summary_get(idx, &sum);
        n = (long)sum.count;
    }
    ts_index_destroy(idx);
    return n;
}

TT_TEST(finished_segments_commit_as_one_group_with_one_head_put)
{
    ts_faulty_opts fo;
    group_opts(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "group", &fo), f.err);
    f.w.gate = NSEG - 1;
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    TT_ASSERT_EQ_INT(f.w.others_built_before_first, NSEG - 1);
    expect_committed(&f.w, NSEG, TS_OK, -1, TS_OK);
    TT_ASSERT(manifest_is(&f, NSEG));
    /* One manifest version for the four, one head PUT. */
    TT_ASSERT_EQ_INT(manifest_puts(&f), 1);
    ts_index_summary sum;
    ts_index_summary_get(f.idx, &sum);
    TT_ASSERT_EQ_INT(sum.version, 1);
    TT_ASSERT_EQ_INT(sum.remote_version, 1);
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look"), NSEG);
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG);
    fixture_close(&f);
}

TT_TEST(a_failed_head_put_leaves_the_group_committed_and_the_sync_pushes_it)
{
    ts_faulty_opts fo;
    group_opts(&fo);
    fo.fatal_rate = 1; /* every manifest PUT fails, not retriably: one attempt per push */
    fixture f;
    TT_OKE(fixture_open(&f, "headfail", &fo), f.err);
    f.w.gate = NSEG - 1;
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    /* Each entry is in the local manifest (committed: "remote manifest
     * pending"), none remote-durable, all from one failed head PUT. */
    expect_committed(&f.w, NSEG, TS_E_REMOTE, -1, TS_OK);
    for (int i = 0; i < NSEG; i++)
        TT_ASSERT(!ts_index_is_remote_durable(f.idx, (int64_t)i * SEG_RECS));
    TT_ASSERT_EQ_INT(manifest_puts(&f), 1);
    TT_ASSERT(manifest_is(&f, NSEG));
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look1"), -1); /* no head in the bucket */
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG);       /* the objects are kept */
    /* A committed entry is no failure: no backoff. */
    TT_ASSERT_EQ_INT(ts_upload_queue_retry_at(f.q), 0);
    /* The store is back: the next sync pushes the whole group. */
    fo.fatal_rate = 0;
    TT_OK(ts_objstore_faulty_set_opts(f.os, &fo));
    TT_OKE(ts_index_sync_remote(f.idx, f.err, sizeof(f.err)), f.err);
    for (int i = 0; i < NSEG; i++)
        TT_ASSERT(ts_index_is_remote_durable(f.idx, (int64_t)i * SEG_RECS));
    TT_ASSERT_EQ_INT(manifest_puts(&f), 2);
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look2"), NSEG);
    fixture_close(&f);
}

TT_TEST(a_fenced_group_reaches_no_manifest_and_later_segments_are_discarded)
{
    ts_faulty_opts fo;
    group_opts(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "fenced", &fo), f.err);
    /* We lead at epoch 1; a newer leader has already written its first
     * head at epoch 2 into the bucket. */
    ts_index_set_leader_epoch(f.idx, 1);
    char ndir[600];
    snprintf(ndir, sizeof(ndir), "%s/newer", f.dir);
    ts_index *newer = NULL;
    TT_OKE(ts_index_create("t", 0, ndir, ts_objstore_faulty_inner(f.os), &newer, f.err,
                           sizeof(f.err)), f.err);
    TT_OKE(ts_index_commit_epoch(newer, 2, f.err, sizeof(f.err)), f.err);
    ts_index_destroy(newer);
    /* Segments 0..2 finish together (one group); 3 starts after they are
     * done. */
    f.w.gate = NSEG - 2;
    f.w.late = NSEG - 1;
    f.w.late_after = NSEG - 1;
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    for (int i = 0; i < NSEG - 1; i++) {
        TT_ASSERT_EQ_INT(f.w.order[i], i);
        TT_ASSERT_EQ_INT(f.w.st[i], TS_E_FENCED);
        TT_ASSERT(!f.w.committed[i] && !f.w.discarded[i]);
    }
    TT_ASSERT_EQ_INT(f.w.order[NSEG - 1], NSEG - 1);
    TT_ASSERT_EQ_INT(f.w.st[NSEG - 1], TS_E_CLOSED);
    TT_ASSERT(!f.w.committed[NSEG - 1] && f.w.discarded[NSEG - 1]);
    /* The bucket's manifest is the newer leader's, without any of them;
     * the group's objects stay for the sweep, the later one never got
     * one. */
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look"), 0);
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG - 1);
    TT_ASSERT_EQ_INT(ts_upload_queue_retry_at(f.q), 0); /* an outcome: no backoff */
    fixture_close(&f);
}

TT_TEST(an_entry_already_there_ends_the_group_and_keeps_the_ones_before_it)
{
    ts_faulty_opts fo;
    group_opts(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "exists", &fo), f.err);
    /* An earlier attempt of segment 2 is already committed. */
    ts_upload_req req2 = {"t", 0, f.paths[2], 2 * SEG_RECS, 4096, 3, 1 << 20,
                          NULL, NULL, 0, NULL, 0};
    TT_OKE(ts_uploader_upload_segment(f.os, f.idx, &req2, NULL, f.err, sizeof(f.err)), f.err);
    f.w.gate = NSEG; /* its object and those of 1..3 */
    for (int k = 0; k < NSEG; k++) TT_OK(submit(&f, k));
    TT_ASSERT_EQ_INT(wait_done(&f.w, NSEG), NSEG);
    expect_committed(&f.w, NSEG, TS_OK, 2, TS_E_EXISTS);
    TT_ASSERT(manifest_is(&f, NSEG));
    /* 0 and 1 went in as one group, 3 after the refused 2: with the
     * earlier attempt's, three head PUTs; our duplicate of 2 is deleted. */
    TT_ASSERT_EQ_INT(manifest_puts(&f), 3);
    TT_ASSERT_EQ_INT(count_objects(f.os), NSEG);
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look"), NSEG);
    fixture_close(&f);
}

TT_TEST(a_failed_build_of_a_segment_already_in_the_manifest_counts_as_committed)
{
    ts_faulty_opts fo;
    ts_faulty_opts_init(&fo);
    fixture f;
    TT_OKE(fixture_open(&f, "already", &fo), f.err);
    ts_upload_req req = {"t", 0, f.paths[0], 0, 4096, 3, 1 << 20, NULL, NULL, 0, NULL, 0};
    TT_OKE(ts_uploader_upload_segment(f.os, f.idx, &req, NULL, f.err, sizeof(f.err)), f.err);
    /* A second attempt of segment 0 fails to build (its file does not
     * start at offset 0): the segment is in the manifest all the same. */
    req.segment_path = f.paths[1];
    TT_OK(ts_upload_queue_submit(f.q, &req, (void *)(intptr_t)0));
    TT_ASSERT_EQ_INT(wait_done(&f.w, 1), 1);
    TT_ASSERT_EQ_INT(f.w.st[0], TS_E_INVAL);
    TT_ASSERT(f.w.committed[0] && !f.w.discarded[0]);
    TT_ASSERT_EQ_INT(ts_upload_queue_retry_at(f.q), 0);
    TT_ASSERT(manifest_is(&f, 1));
    fixture_close(&f);
}

/* The number of segments done so far. */
static int ndone(owner *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->ndone;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Waits until n builds have ended (the queue called room() n times: it
 * counted them out of max_inflight first); how many did. */
static int wait_built(owner *w, int n) { return wait_count(w, &w->built, n); }

TT_TEST(the_next_segments_build_while_a_group_head_put_hangs)
{
    ts_faulty_opts fo;
    group_opts(&fo);
    fo.latency_ms = 3000; /* every manifest head PUT takes 3 s */
    fixture f;
    TT_OKE(fixture_open(&f, "hang", &fo), f.err);
    /* Two build at once (the queue's max_inflight), four may wait built:
     * six uncommitted objects at most. Segments 4..6 beside the fixture's. */
    enum { MORE = 3, ALL = NSEG + MORE };
    char more[MORE][500];
    for (int k = NSEG; k < ALL; k++) write_segment(f.dir, k, more[k - NSEG], sizeof(more[0]));
    ts_upload_queue *q;
    TT_OKE(ts_upload_queue_create(f.sched, f.os, f.idx, 2, 30000, &g_ops, &f.w, &q, f.err,
                                  sizeof(f.err)), f.err);
    f.w.gate = 1; /* 0 builds after 1: the two commit as one group */
    for (int k = 0; k < 2; k++) TT_OK(submit_to(q, f.paths[k], k));
    TT_ASSERT_EQ_INT(ts_upload_queue_room(q), 0);
    int64_t deadline = ts_mono_ms() + 20000;
    while (manifest_puts(&f) < 1 && ts_mono_ms() < deadline) ts_sleep_ms(5);
    /* The group's head PUT is in flight: its two slots no longer build, so
     * two more may, and two more once those are built. */
    TT_ASSERT_EQ_INT(manifest_puts(&f), 1);
    TT_ASSERT_EQ_INT(ts_upload_queue_room(q), 2);
    for (int k = 2; k < 4; k++) TT_OK(submit_to(q, f.paths[k], k));
    TT_ASSERT_EQ_INT(wait_built(&f.w, 4), 4);
    TT_ASSERT_EQ_INT(ndone(&f.w), 0);
    TT_ASSERT_EQ_INT(ts_upload_queue_room(q), 2);
    for (int k = 4; k < 6; k++) TT_OK(submit_to(q, more[k - NSEG], k));
    TT_ASSERT_EQ_INT(wait_built(&f.w, 6), 6);
    /* All four were built during the same head PUT: nothing is done yet,
     * and the bound (3 x max_inflight not done) refuses a seventh. */
    TT_ASSERT_EQ_INT(count_objects(f.os), 6);
    TT_ASSERT_EQ_INT(ndone(&f.w), 0);
    TT_ASSERT_EQ_INT(manifest_puts(&f), 1);
    TT_ASSERT_EQ_INT(ts_upload_queue_room(q), 0);
    TT_ASSERT_EQ_INT(submit_to(q, more[ALL - 1 - NSEG], ALL - 1), TS_E_BACKPRESSURE);
    TT_ASSERT_EQ_INT(wait_done(&f.w, 6), 6);
    expect_committed(&f.w, 6, TS_OK, -1, TS_OK);
    TT_ASSERT(manifest_is(&f, 6));
    /* 2..5 waited built for the first group and joined the second. */
    TT_ASSERT_EQ_INT(manifest_puts(&f), 2);
    TT_ASSERT_EQ_INT(bucket_entries(&f, "look"), 6);
    ts_upload_sched_destroy(f.sched); /* the committer may still hold q's lock */
    f.sched = NULL;
    ts_upload_queue_destroy(q);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "upload_sched");
    TT_RUN(later_segments_finish_first_and_commit_after_the_first);
    TT_RUN(a_failed_middle_segment_stops_the_commits_after_it);
    TT_RUN(a_bounded_queue_refuses_more_than_its_limit);
    TT_RUN(a_cancelled_queue_commits_nothing_and_leaves_no_object);
    TT_RUN(finished_segments_commit_as_one_group_with_one_head_put);
    TT_RUN(a_failed_head_put_leaves_the_group_committed_and_the_sync_pushes_it);
    TT_RUN(a_fenced_group_reaches_no_manifest_and_later_segments_are_discarded);
    TT_RUN(an_entry_already_there_ends_the_group_and_keeps_the_ones_before_it);
    TT_RUN(a_failed_build_of_a_segment_already_in_the_manifest_counts_as_committed);
    TT_RUN(the_next_segments_build_while_a_group_head_put_hangs);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
