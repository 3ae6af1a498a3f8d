/*
 * test_parallel_upload.c — one partition's upload backlog through the
 * upload scheduler (uploader/sched.h) in the engine: segments upload in
 * parallel, the manifest still grows in offset order without gaps, a
 * failed middle segment retries in order, a crash (SIGKILL) with objects
 * finished but not committed leaves orphans the sweep collects and loses
 * nothing, so does a crash while a group commit's head PUT is in flight,
 * and a size roll starts its upload without a tick.
 * Object store: a file:// bucket in a temp dir, wrapped in the fault
 * injector (objstore/faulty.c: per-key delays and failures).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "objstore/faulty.h"
#include "objstore/objstore.h"
#include "tierstore.h"
#include "tiering/internal.h"
#include "tt.h"

#define NSEG 5
#define BATCHES 10 /* per segment */
#define RECS 10    /* per batch: segment k holds offsets [k * 100, k * 100 + 99] */

static char g_root[256];
static int g_case;

typedef struct env {
    char dir[512], data[600], bucket[600];
    ts_config *cfg;
    ts_engine *eng;
    ts_partition *p;
    char err[1024];
} env;

/* An engine with a 1 h tick (so every upload here starts from a roll or a
 * retry's wake-up, never from the periodic tick) on url_fmt % bucket. */
static ts_status env_open(env *e, const char *url_query, const char *const *kv)
{
    char url[1200];
    if (!e->dir[0]) {
        snprintf(e->dir, sizeof(e->dir), "%s/case%d", g_root, ++g_case);
        snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
        snprintf(e->bucket, sizeof(e->bucket), "%s/bucket", e->dir);
        ts_fs_mkdirs(e->bucket, NULL, 0);
    }
    if (url_query) snprintf(url, sizeof(url), "faulty+file://%s?%s", e->bucket, url_query);
    else snprintf(url, sizeof(url), "file://%s", e->bucket);
    e->cfg = ts_config_create();
    ts_config_set(e->cfg, "log.dirs", e->data, NULL, 0);
    ts_config_set(e->cfg, "remote.storage.url", url, NULL, 0);
    ts_config_set(e->cfg, "remote.log.manager.task.interval.ms", "3600000", NULL, 0);
    ts_config_set(e->cfg, "remote.log.manager.thread.pool.size", "4", NULL, 0);
    ts_config_set(e->cfg, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(e->cfg, "remote.storage.chunk.bytes", "4096", NULL, 0);
    for (; kv && kv[0]; kv += 2)
        if (ts_config_set(e->cfg, kv[0], kv[1], e->err, sizeof(e->err))) return TS_E_CONFIG;
    ts_status st = ts_engine_open(e->cfg, &e->eng, e->err, sizeof(e->err));
    if (!st) st = ts_partition_open(e->eng, "pu", 0, 1, &e->p, e->err, sizeof(e->err));
    return st;
}

static void env_close(env *e)
{
    ts_engine_close(e->eng);
    e->eng = NULL;
    e->p = NULL;
    ts_config_destroy(e->cfg);
    e->cfg = NULL;
}

/* Appends segments from..to-1 (BATCHES batches of RECS records each,
 * then an admin roll). */
static ts_status append_range(ts_partition *p, int from, int to, char *err, size_t errlen)
{
    for (int k = from; k < to; k++) {
        for (int i = 0; i < BATCHES; i++) {
            const void *v[RECS];
            size_t l[RECS];
            char val[200];
            memset(val, 'a' + (k + i) % 26, sizeof(val));
            for (int r = 0; r < RECS; r++) {
                v[r] = val;
                l[r] = sizeof(val);
            }
            uint8_t *b;
            size_t len;
            ts_batch_build(v, l, RECS, 1000 + k * 100 + i, &b, &len);
            ts_status st = ts_partition_append(p, b, len, NULL, NULL, err, errlen);
            free(b);
            if (st) return st;
        }
        ts_status st = ts_partition_roll(p, err, errlen);
        if (st) return st;
    }
    return TS_OK;
}

/* Appends all NSEG segments. */
static ts_status append_segments(ts_partition *p, char *err, size_t errlen)
{
    return append_range(p, 0, NSEG, err, errlen);
}

static int count_cb(const char *k, uint64_t s, void *o)
{
    (void)k;
    (void)s;
    (*(int *)o)++;
    return 0;
}

/* Segment objects in the bucket (committed or not). */
static int count_objects(const char *bucket)
{
    char url[700], err[256];
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    if (ts_objstore_open(url, NULL, &os, err, sizeof(err))) return -1;
    int n = 0;
    ts_objstore_list(os, "pu/0/segments/", count_cb, &n, err, sizeof(err));
    ts_objstore_destroy(os);
    return n;
}

static size_t manifest_entries(ts_partition *p)
{
    ts_index_summary sum;
    ts_index_summary_get(p->idx, &sum);
    return sum.count;
}

/* The manifest starts at 0 and each entry starts right after the one
 * before: no gap, no overlap, offset order. Returns its end (+1), -1 if not. */
static int64_t manifest_contiguous_end(ts_partition *p)
{
    ts_index_entry *e;
    size_t n;
    if (ts_index_snapshot_entries(p->idx, &e, &n)) return -1;
    int64_t next = 0;
    for (size_t i = 0; i < n && next >= 0; i++)
        next = e[i].base_offset == next ? e[i].last_offset + 1 : -1;
    free(e);
    return next;
}

/* Every record from 0 to the end reads back, in order (cold ones too). */
static long read_all(ts_partition *p, char *err, size_t errlen)
{
    int64_t off = 0;
    long recs = 0;
    for (;;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 100000, &d, &len, err, errlen)) return -1;
        if (!len) return recs;
        for (size_t pos = 0; pos < len;) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 1 << 24, &h, err, errlen) ||
                h.base_offset != off) {
                free(d);
                return -1;
            }
            recs += (long)(ts_batch_last_offset(&h) - off + 1);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
}

static int all_remote(ts_partition *p)
{
    pthread_mutex_lock(&p->mu);
    int ok = 1;
    for (size_t i = 0; i + 1 < p->nsegs; i++) ok &= p->segs[i]->remote;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* Waits (no tick will help: it is an hour away) until every closed segment
 * is remote; 20 s is generous, not a timing assertion. */
static int wait_all_remote(ts_partition *p)
{
    for (int i = 0; i < 2000 && !all_remote(p); i++) ts_sleep_ms(10);
    return all_remote(p);
}

TT_TEST(segments_upload_in_parallel_and_commit_in_order)
{
    env e = {0};
    /* Segment 0's object takes 5 s to commit: the others finish first and
     * must wait for it, holding their objects. */
    TT_OKE(env_open(&e, "key=segments/00000000000000000000-&key_latency_ms=5000", NULL), e.err);
    TT_OKE(append_segments(e.p, e.err, sizeof(e.err)), e.err);
    int seen = 0;
    for (int i = 0; i < 2000 && !seen && manifest_entries(e.p) == 0; i++) {
        seen = count_objects(e.bucket) >= 3; /* 4 in flight: 1..3 finished, 0 waits */
        if (!seen) ts_sleep_ms(5);
    }
    TT_ASSERT_MSG(seen, "no parallel upload observed: %zu entries, %d objects",
                  manifest_entries(e.p), count_objects(e.bucket));
    TT_ASSERT_EQ_INT(manifest_entries(e.p), 0); /* none committed before segment 0 */
    TT_ASSERT(wait_all_remote(e.p));
    TT_ASSERT_EQ_INT(manifest_entries(e.p), NSEG);
    TT_ASSERT_EQ_INT(manifest_contiguous_end(e.p), NSEG * BATCHES * RECS);
    TT_ASSERT_EQ_INT(count_objects(e.bucket), NSEG);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(e.eng->os, &c));
    TT_ASSERT_EQ_INT(c.key_delayed, 1);
    ts_engine_stats s;
    ts_engine_stats_get(e.eng, &s);
    TT_ASSERT_EQ_INT(s.uploads_done, NSEG);
    TT_ASSERT_EQ_INT(s.uploads_failed, 0);
    env_close(&e);
}

TT_TEST(a_failed_middle_segment_retries_in_order)
{
    env e = {0};
    /* Segment 2's object fails twice; the ones behind it must not commit
     * before it does. */
    TT_OKE(env_open(&e, "key=segments/00000000000000000200-&key_fail=2", NULL), e.err);
    TT_OKE(append_segments(e.p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(wait_all_remote(e.p));
    TT_ASSERT_EQ_INT(manifest_entries(e.p), NSEG);
    TT_ASSERT_EQ_INT(manifest_contiguous_end(e.p), NSEG * BATCHES * RECS);
    /* The objects of the discarded attempts were deleted: one per segment. */
    TT_ASSERT_EQ_INT(count_objects(e.bucket), NSEG);
    ts_faulty_counters c;
    TT_OK(ts_objstore_faulty_counters(e.eng->os, &c));
    TT_ASSERT_EQ_INT(c.key_failed, 2);
    ts_engine_stats s;
    ts_engine_stats_get(e.eng, &s);
    TT_ASSERT_EQ_INT(s.uploads_failed, 2);
    TT_ASSERT_EQ_INT(s.uploads_done, NSEG);
    ts_partition_counters pc;
    ts_partition_counters_get(e.p, &pc);
    TT_ASSERT_EQ_INT(pc.copy_errors, 2);
    TT_ASSERT_EQ_INT(pc.copy_requests, NSEG + 2); /* discarded attempts do not count */
    long n = read_all(e.p, e.err, sizeof(e.err));
    TT_ASSERT_MSG(n == NSEG * BATCHES * RECS, "read %ld records: %s", n, e.err);
    env_close(&e);
}

/* The child: appends NSEG segments; segment 2's object never commits (60 s
 * delay), so 0 and 1 commit, 3 and 4 finish and wait uncommitted; the
 * parent kills it there. */
static int crash_child(env *e)
{
    if (env_open(e, "key=segments/00000000000000000200-&key_latency_ms=60000", NULL)) {
        fprintf(stderr, "child: %s\n", e->err);
        return 1;
    }
    if (append_segments(e->p, e->err, sizeof(e->err))) {
        fprintf(stderr, "child: %s\n", e->err);
        return 1;
    }
    ts_sleep_ms(60000);
    return 0;
}

/* Entries in the bucket's newest manifest (-1: none readable); *end (if
 * not NULL) receives its last offset. Read through a scratch index. */
static long bucket_entries(env *e, int64_t *end)
{
    char url[700], tmp[700], err[512];
    snprintf(url, sizeof(url), "file://%s", e->bucket);
    snprintf(tmp, sizeof(tmp), "%s/look", e->dir);
    ts_fs_rmtree(tmp, NULL, 0);
    ts_fs_mkdirs(tmp, NULL, 0);
    ts_objstore *os;
    ts_index *idx = NULL;
    long n = -1;
    if (ts_objstore_open(url, NULL, &os, err, sizeof(err))) return -1;
    if (!ts_index_create("pu", 0, tmp, os, &idx, err, sizeof(err)) &&
        !ts_index_load_remote(idx, err, sizeof(err))) {
        ts_index_summary sum;
        ts_index_summary_get(idx, &sum);
        n = (long)sum.count;
        if (end) *end = sum.end_offset;
    }
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    return n;
}

/* A fresh case directory, and a child process running child(e) on it;
 * the parent gets its pid (-1: fork failed). */
static pid_t fork_case(env *e, int (*child)(env *))
{
    snprintf(e->dir, sizeof(e->dir), "%s/case%d", g_root, ++g_case);
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    snprintf(e->bucket, sizeof(e->bucket), "%s/bucket", e->dir);
    ts_fs_mkdirs(e->bucket, NULL, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(child(e));
    return pid;
}

/* Orphans are swept on the first tick with no upload in flight; the tick
 * is an hour away, so wake it until one object per entry is left (else
 * the count it had last). */
static int sweep_until(env *e, int want)
{
    int left = -1;
    for (int i = 0; i < 2000 && left != want; i++) {
        ts_eng_wake_at(e->eng, ts_mono_ms());
        ts_sleep_ms(10);
        left = count_objects(e->bucket);
    }
    return left;
}

TT_TEST(crash_with_finished_uncommitted_objects_loses_nothing)
{
    env e = {0};
    pid_t pid = fork_case(&e, crash_child);
    TT_ASSERT(pid >= 0);
    /* Kill once 0 and 1 are in the bucket's manifest and the objects of 3
     * and 4 are there too (2's commit sleeps). */
    int objects = 0;
    long entries = 0;
    for (int i = 0; i < 2000 && (objects < NSEG - 1 || entries < 2); i++) {
        objects = count_objects(e.bucket);
        entries = bucket_entries(&e, NULL);
        if (objects < NSEG - 1 || entries < 2) ts_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    int ws = 0;
    TT_ASSERT(waitpid(pid, &ws, 0) == pid);
    TT_ASSERT_MSG(WIFSIGNALED(ws), "the child ended before the kill (status %d)", ws);
    TT_ASSERT_MSG(objects == NSEG - 1, "%d objects before the kill", objects);
    /* The bucket's manifest names 0 and 1 only: 3 and 4 are orphans (a
     * commit of either before 2's would be a gap). */
    int64_t end = -1;
    TT_ASSERT_EQ_INT(bucket_entries(&e, &end), 2);
    TT_ASSERT_EQ_INT(end, 2 * BATCHES * RECS - 1);
    TT_OKE(env_open(&e, NULL, NULL), e.err);
    TT_OKE(ts_partition_wait_uploaded(e.p, 20000, e.err, sizeof(e.err)), e.err);
    end = manifest_contiguous_end(e.p);
    ts_offsets o;
    TT_OK(ts_partition_offsets(e.p, &o));
    TT_ASSERT_EQ_INT(end, o.log_end_offset);
    TT_ASSERT_EQ_INT(end, NSEG * BATCHES * RECS);
    long n = read_all(e.p, e.err, sizeof(e.err));
    TT_ASSERT_MSG(n == NSEG * BATCHES * RECS, "read %ld records: %s", n, e.err);
    /* The sweep removes the orphans: one object per entry remains. */
    int left = sweep_until(&e, NSEG);
    TT_ASSERT_MSG(left == NSEG, "%d objects for %d entries: orphans not collected", left, NSEG);
    env_close(&e);
}

/* Entries and version of the local manifest in the partition directory
 * (-1: none readable), read by a memory-only index beside the writer. */
static long local_entries(env *e, uint64_t *version)
{
    char dir[700], err[512];
    snprintf(dir, sizeof(dir), "%s/pu-0", e->data);
    ts_index *idx = NULL;
    long n = -1;
    if (!ts_index_create("pu", 0, dir, NULL, &idx, err, sizeof(err))) {
        ts_index_set_memory_only(idx);
        if (!ts_index_load_local(idx, err, sizeof(err))) {
            ts_index_summary sum;
            ts_index_summary_get(idx, &sum);
            n = (long)sum.count;
            *version = sum.version;
        }
    }
    ts_index_destroy(idx);
    return n;
}

/* The child: segment 0's object finishes 3 s late, so 1..3 wait for it
 * and the four commit as one group; every manifest head PUT then hangs
 * for 60 s. Once the group is in the local manifest, segment 4 closes:
 * its object is built while the group's head PUT hangs (the commit holds
 * neither a build worker nor build room). So when the parent kills it,
 * the group is local only, and segment 4's object is built, uncommitted. */
static int crash_group_child(env *e)
{
    if (env_open(e, "key=segments/00000000000000000000-&key_latency_ms=3000&ops=put&"
                    "keys=/manifests/&latency_ms=60000", NULL) ||
        append_range(e->p, 0, NSEG - 1, e->err, sizeof(e->err))) {
        fprintf(stderr, "child: %s\n", e->err);
        return 1;
    }
    uint64_t version = 0;
    for (int i = 0; i < 2000 && local_entries(e, &version) < NSEG - 1; i++) ts_sleep_ms(10);
    if (append_range(e->p, NSEG - 1, NSEG, e->err, sizeof(e->err))) {
        fprintf(stderr, "child: %s\n", e->err);
        return 1;
    }
    ts_sleep_ms(60000);
    return 0;
}

TT_TEST(crash_mid_group_commit_loses_nothing)
{
    env e = {0};
    pid_t pid = fork_case(&e, crash_group_child);
    TT_ASSERT(pid >= 0);
    /* Kill once the group (4 entries) is in the local manifest while its
     * head PUT hangs, and segment 4's object is in the bucket. */
    long local = -1;
    uint64_t version = 0;
    int objects = 0;
    for (int i = 0; i < 2000 && (local < NSEG - 1 || objects < NSEG); i++) {
        local = local_entries(&e, &version);
        objects = count_objects(e.bucket);
        if (local < NSEG - 1 || objects < NSEG) ts_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    int ws = 0;
    TT_ASSERT(waitpid(pid, &ws, 0) == pid);
    TT_ASSERT_MSG(WIFSIGNALED(ws), "the child ended before the kill (status %d)", ws);
    TT_ASSERT_MSG(local == NSEG - 1, "%ld entries in the local manifest before the kill", local);
    TT_ASSERT_EQ_INT(version, 1); /* one version for the four: a group */
    TT_ASSERT_EQ_INT(bucket_entries(&e, NULL), -1); /* no head reached the bucket */
    /* Segment 4 was built during the hanging head PUT. */
    TT_ASSERT_MSG(objects == NSEG, "%d objects before the kill: the head PUT stalled the builds",
                  objects);
    /* Restart without faults: the local manifest (contiguous, four entries)
     * is pushed, segment 4 goes again (its first object is an orphan the
     * sweep removes), every record reads back. */
    TT_OKE(env_open(&e, NULL, NULL), e.err);
    TT_ASSERT_EQ_INT(manifest_contiguous_end(e.p), (NSEG - 1) * BATCHES * RECS);
    TT_OKE(ts_partition_wait_uploaded(e.p, 20000, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(manifest_contiguous_end(e.p), NSEG * BATCHES * RECS);
    int64_t end = -1;
    TT_ASSERT_EQ_INT(bucket_entries(&e, &end), NSEG);
    TT_ASSERT_EQ_INT(end, NSEG * BATCHES * RECS - 1);
    long n = read_all(e.p, e.err, sizeof(e.err));
    TT_ASSERT_MSG(n == NSEG * BATCHES * RECS, "read %ld records: %s", n, e.err);
    int left = sweep_until(&e, NSEG);
    TT_ASSERT_MSG(left == NSEG, "%d objects for %d entries: orphans not collected", left, NSEG);
    env_close(&e);
}

TT_TEST(a_size_roll_starts_its_upload_without_a_tick)
{
    env e = {0};
    TT_OKE(env_open(&e, NULL, (const char *[]){"log.segment.bytes", "8192", NULL}), e.err);
    for (int i = 0; i < 20; i++) {
        const void *v[4];
        size_t l[4];
        char val[500];
        memset(val, 'x', sizeof(val));
        for (int r = 0; r < 4; r++) {
            v[r] = val;
            l[r] = sizeof(val);
        }
        uint8_t *b;
        size_t len;
        ts_batch_build(v, l, 4, 1000 + i, &b, &len);
        TT_OKE(ts_partition_append(e.p, b, len, NULL, NULL, e.err, sizeof(e.err)), e.err);
        free(b);
    }
    pthread_mutex_lock(&e.p->mu);
    size_t closed = e.p->nsegs - 1;
    pthread_mutex_unlock(&e.p->mu);
    TT_ASSERT(closed >= 4); /* 20 batches of ~2 KiB over 8 KiB segments */
    TT_ASSERT(wait_all_remote(e.p));
    TT_ASSERT_EQ_INT(manifest_entries(e.p), closed);
    TT_ASSERT(manifest_contiguous_end(e.p) > 0);
    env_close(&e);
}

TT_TEST(bad_max_inflight_is_refused)
{
    env e = {0};
    TT_ASSERT_EQ_INT(env_open(&e, NULL, (const char *[]){"remote.log.upload.max.inflight", "-1",
                                                         NULL}),
                     TS_E_CONFIG);
    TT_ASSERT(strstr(e.err, "remote.log.upload.max.inflight"));
    ts_config_destroy(e.cfg);
    e.cfg = NULL;
    /* A bound of 1: one segment at a time, still every segment, in order. */
    memset(&e, 0, sizeof(e));
    TT_OKE(env_open(&e, NULL, (const char *[]){"remote.log.upload.max.inflight", "1", NULL}), e.err);
    TT_OKE(append_segments(e.p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(wait_all_remote(e.p));
    TT_ASSERT_EQ_INT(manifest_contiguous_end(e.p), NSEG * BATCHES * RECS);
    env_close(&e);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "parallel_upload");
    TT_RUN(segments_upload_in_parallel_and_commit_in_order);
    TT_RUN(a_failed_middle_segment_retries_in_order);
    TT_RUN(crash_with_finished_uncommitted_objects_loses_nothing);
    TT_RUN(crash_mid_group_commit_loses_nothing);
    TT_RUN(a_size_roll_starts_its_upload_without_a_tick);
    TT_RUN(bad_max_inflight_is_refused);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
