/*
 * test_tiering_retention.c — unit tests of retention in the engine: total retention
 * (objects, then local files, and the log start), the local bound and
 * local retention across partitions, the retention pass's error,
 * DeleteRecords with and without remote storage.
 * Object store: a file:// bucket in a temp dir.
 */
#include "tiering_test.h"

TT_TEST(total_retention_deletes_objects_and_advances_start)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.retention.bytes", "60000",
                                   "log.local.retention.bytes", "0", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "ret", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 100, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK(o.log_start_offset > 0);
    uint8_t *d;
    size_t len;
    TT_CHECK_EQ_INT(ts_partition_read(p, 0, 1000, &d, &len, e.err, sizeof(e.err)), TS_E_OFFSET_OUT_OF_RANGE);
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += rows[i].size_bytes;
    TT_CHECK_MSG(total <= 60000 + 20000, "kept %llu bytes", (unsigned long long)total);
    free(rows);
    char segdir[900];
    snprintf(segdir, sizeof(segdir), "%s/ret/0/segments", e.bucket);
    size_t objs = count_files(segdir, ".zst");
    TT_CHECK_MSG(objs <= 4, "%zu objects remain in the bucket", objs);
    TT_CHECK_EQ_INT(read_all(p, o.log_start_offset, e.err, sizeof(e.err)), 1000 - o.log_start_offset);
done:
    env_done(&e);
}

/* Regression (review #2): recovery from a bucket whose manifest retention
 * emptied must continue offsets after the old log end, never reuse them. */
TT_TEST(recovery_after_retention_emptied_manifest_keeps_offsets)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "0",
                                   "log.retention.bytes", "1", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "em", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o1;
    TT_CHECK_OK(ts_partition_offsets(p, &o1));
    TT_CHECK_EQ_INT(o1.log_end_offset, 300);
    env_close(&e);
    e.eng = NULL;
    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "em", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o2;
    TT_CHECK_OK(ts_partition_offsets(p, &o2));
    TT_CHECK_EQ_INT(o2.log_end_offset, 300);
    int64_t first;
    size_t len;
    uint8_t *b = mk_batch(2, 10, 1, 1, &len);
    TT_CHECK_OKE(ts_partition_append(p, b, len, &first, NULL, e.err, sizeof(e.err)), e.err);
    free(b);
    TT_CHECK_EQ_INT(first, 300);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
done:
    env_done(&e);
}

/* Regression (review #3): time-based rolls keep the local disk bound. */
TT_TEST(time_rolls_respect_the_local_bound)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.ms", "10", "log.local.retention.bytes", "20000",
                                   NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?err_rate=1.0&ops=put,writer&seed=1", e.bucket);
    TT_CHECK_OK(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)));
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "tb", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    for (int i = 0; i < 300; i++) {
        size_t len;
        uint8_t *b = mk_batch(1, 2000, i, i, &len);
        ts_status st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err));
        free(b);
        TT_CHECK(st == TS_OK || st == TS_E_BACKPRESSURE);
        if (i % 10 == 0) ts_sleep_ms(15); /* let time rolls happen */
    }
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/tb-0", e.data);
    uint64_t closed = 0, first = 0, biggest = 0;
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    for (size_t i = 0; i < n; i++) {
        if (rows[i].active) continue;
        if (!first) first = rows[i].size_bytes;
        if (rows[i].size_bytes > biggest) biggest = rows[i].size_bytes;
        closed += rows[i].size_bytes;
    }
    free(rows);
    /* The bound is max(local retention, first closed segment): the first
     * roll is always allowed (no closed bytes yet), every later one waits
     * for uploads, so at most one segment more than the bound is closed.
     * How big a time-rolled segment gets depends on the machine's load (a
     * late roll makes a bigger one), so the bound is taken from the
     * segments themselves. Before the fix this grew to ~600 KB of 2 KB
     * batches rolled every ~10. */
    uint64_t bound = first > 20000 ? first : 20000;
    TT_CHECK_MSG(closed <= bound + biggest,
                 "closed local bytes %llu over the bound %llu + one segment of at most %llu",
                 (unsigned long long)closed, (unsigned long long)bound,
                 (unsigned long long)biggest);
done:
    env_done(&e);
}

/* ---- issue 7 #16: a bounded default and a broker-wide local budget ------ */

TT_TEST(default_local_retention_is_bounded)
{
    ts_config *c = ts_config_create();
    int64_t lb = ts_config_get_int(c, "log.local.retention.bytes");
    TT_ASSERT_MSG(lb >= 0, "log.local.retention.bytes defaults to %lld (unbounded)", (long long)lb);
    /* A few default segments, not the whole log. */
    TT_ASSERT(lb <= 4 * ts_config_get_int(c, "log.segment.bytes"));
    char err[256];
    TT_OKE(ts_config_set(c, "retention.local.target.capacity.bytes", "1073741824", err,
                         sizeof(err)), err);
    ts_config_destroy(c);
}

#define BUDGET_PARTS 4

/* Bytes of the files in dir whose names end with suffix. */
static uint64_t bytes_of_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    uint64_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        char path[1200];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (l > s && !strcmp(de->d_name + l - s, suffix) && stat(path, &sb) == 0)
            n += (uint64_t)sb.st_size;
    }
    if (d) closedir(d);
    return n;
}

/* Several partitions, each unbounded on its own, share one local budget:
 * appends never take the total past it (they get TS_E_BACKPRESSURE while
 * uploads catch up), uploaded segments leave local disk oldest first
 * across partitions, and every record stays readable. */
TT_TEST(local_budget_trims_uploaded_segments_across_partitions)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "-1",
                                   NULL});
    TT_CHECK_OKE(ts_config_set(e.cfg, "retention.local.target.capacity.bytes", "100000", e.err,
                         sizeof(e.err)), e.err);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *ps[BUDGET_PARTS];
    for (int i = 0; i < BUDGET_PARTS; i++)
        TT_CHECK_OKE(ts_partition_open(e.eng, "bud", i, 1, &ps[i], e.err, sizeof(e.err)), e.err);
    uint64_t peak = 0;
    int refused = 0;
    for (int b = 0; b < 150; b++) {
        for (int i = 0; i < BUDGET_PARTS; i++) {
            size_t len;
            uint8_t *batch = mk_batch(10, 150, b, b, &len);
            ts_status st;
            int tries = 0;
            while ((st = ts_partition_append(ps[i], batch, len, NULL, NULL, e.err,
                                             sizeof(e.err))) == TS_E_BACKPRESSURE &&
                   tries++ < 5000) {
                refused++;
                ts_sleep_ms(2);
            }
            free(batch);
            TT_CHECK_OKE(st, e.err);
            ts_engine_stats es;
            ts_engine_stats_get(e.eng, &es);
            if (es.local_bytes > peak) peak = es.local_bytes;
        }
    }
    printf("    local budget 100000: peak %llu local bytes, %d appends refused meanwhile\n",
           (unsigned long long)peak, refused);
    TT_CHECK_MSG(peak <= 100000, "local bytes peaked at %llu", (unsigned long long)peak);
    for (int i = 0; i < BUDGET_PARTS; i++) {
        TT_CHECK_OKE(roll(ps[i], e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(ts_partition_wait_uploaded(ps[i], 30000, e.err, sizeof(e.err)), e.err);
    }
    ts_engine_stats es;
    ts_engine_stats_get(e.eng, &es);
    TT_CHECK_MSG(es.local_bytes <= 100000, "%llu local bytes", (unsigned long long)es.local_bytes);
    uint64_t du = 0;
    for (int i = 0; i < BUDGET_PARTS; i++) {
        char dir[800];
        snprintf(dir, sizeof(dir), "%s/bud-%d", e.data, i);
        ts_segment_info *rows;
        size_t n;
        TT_CHECK_OK(ts_partition_placement(ps[i], &rows, &n, e.err, sizeof(e.err)));
        int oldest_remote = n > 0 && rows[0].location == TS_LOC_REMOTE;
        free(rows);
        TT_CHECK(oldest_remote); /* the oldest data left local disk */
        TT_CHECK_EQ_INT(read_all(ps[i], 0, e.err, sizeof(e.err)), 1500);
    }
    /* On disk too, once the sync worker has unlinked what left. */
    for (int t = 0; t < 1000; t++) {
        du = 0;
        for (int i = 0; i < BUDGET_PARTS; i++) {
            char dir[800];
            snprintf(dir, sizeof(dir), "%s/bud-%d", e.data, i);
            du += bytes_of_files(dir, ".log");
        }
        if (du <= 100000) break;
        ts_sleep_ms(10);
    }
    TT_CHECK_MSG(du <= 100000, "%llu segment bytes on disk", (unsigned long long)du);
done:
    env_done(&e);
}

/* With every upload failing, the budget holds by refusing appends
 * (retriable), never by deleting a segment that is not durably remote. */
TT_TEST(local_budget_never_deletes_unuploaded_data)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "-1",
                                   NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?err_rate=1.0&ops=put,writer&seed=1", e.bucket);
    TT_CHECK_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_config_set(e.cfg, "retention.local.target.capacity.bytes", "60000", e.err,
                         sizeof(e.err)), e.err);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *ps[3];
    long ok[3] = {0};
    for (int i = 0; i < 3; i++)
        TT_CHECK_OKE(ts_partition_open(e.eng, "bf", i, 1, &ps[i], e.err, sizeof(e.err)), e.err);
    ts_status last = TS_OK;
    for (int b = 0; b < 200; b++)
        for (int i = 0; i < 3; i++) {
            size_t len;
            uint8_t *batch = mk_batch(10, 150, b, b, &len);
            ts_status st = ts_partition_append(ps[i], batch, len, NULL, NULL, e.err, sizeof(e.err));
            free(batch);
            TT_CHECK(st == TS_OK || st == TS_E_BACKPRESSURE);
            if (st == TS_OK) ok[i]++;
            else last = st;
        }
    TT_CHECK_EQ_INT(last, TS_E_BACKPRESSURE);
    TT_CHECK(strstr(e.err, "retention.local.target.capacity.bytes") != NULL);
    ts_engine_stats es;
    ts_engine_stats_get(e.eng, &es);
    TT_CHECK_MSG(es.local_bytes <= 60000, "%llu local bytes", (unsigned long long)es.local_bytes);
    for (int i = 0; i < 3; i++) {
        TT_CHECK(ok[i] > 0);
        TT_CHECK_EQ_INT(read_all(ps[i], 0, e.err, sizeof(e.err)), ok[i] * 10); /* nothing lost */
    }
done:
    env_done(&e);
}

/* ts_partition_enforce_retention returns what failed (it returned TS_OK
 * whatever happened): here the remote manifest update, its directory in
 * the bucket replaced by a file (the index keeps the new log start locally
 * and the objects until a remote manifest is durable). Once the bucket is
 * whole again the same call succeeds. */
TT_TEST(enforce_retention_returns_its_error)
{
    env e;
    /* No background tick: it would run the same retention first (and fail
     * on the sabotaged manifest itself), leaving the call under test with
     * nothing to do; seen under load in `ctest -L unit -j2`. */
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   "remote.log.manager.task.interval.ms", "3600000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "rerr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 40, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    const char *k[] = {"retention.bytes"}, *v[] = {"1"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "rerr", k, v, 1, e.err, sizeof(e.err)), e.err);
    char mdir[900], aside[920];
    snprintf(mdir, sizeof(mdir), "%s/rerr/0/manifests", e.bucket);
    snprintf(aside, sizeof(aside), "%s.aside", mdir);
    TT_CHECK(rename(mdir, aside) == 0);
    FILE *f = fopen(mdir, "w");
    TT_CHECK(f != NULL);
    fclose(f);
    ts_offsets before, after;
    TT_CHECK_OK(ts_partition_offsets(p, &before));
    ts_status st = ts_partition_enforce_retention(p, e.err, sizeof(e.err));
    TT_CHECK_MSG(st != TS_OK, "retention reported TS_OK with the manifest unwritable");
    TT_CHECK_MSG(strstr(e.err, "rerr-0") && strstr(e.err, "manifest"), "message: %s", e.err);
    TT_CHECK(unlink(mdir) == 0 && rename(aside, mdir) == 0);
    TT_CHECK_OKE(ts_partition_enforce_retention(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_offsets(p, &after));
    TT_CHECK(after.log_start_offset > before.log_start_offset);
done:
    env_done(&e);
}

/* Kafka's DeleteRecords (ts_partition_delete_records): the start moves inside
 * a remote segment, the objects wholly below leave the bucket, reads below
 * are out of range, and the start survives a restart and a lost data dir. */
TT_TEST(delete_records_moves_the_start_everywhere)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "100000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "dr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 100, 10, 300, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_CHECK(n >= 3 && rows[0].location == TS_LOC_REMOTE && rows[1].location == TS_LOC_REMOTE);
    int64_t target = rows[1].base_offset + 3, low = -1, end = 0;
    char gone[1400], kept[1400];
    snprintf(gone, sizeof(gone), "%s/%s", e.bucket, rows[0].object_key);
    snprintf(kept, sizeof(kept), "%s/%s", e.bucket, rows[1].object_key);
    free(rows);
    TT_CHECK(access(gone, F_OK) == 0 && access(kept, F_OK) == 0);
    TT_CHECK_OKE(ts_partition_delete_records(p, target, &low, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(low, target);
    TT_CHECK(access(gone, F_OK) != 0 && access(kept, F_OK) == 0);
    ts_offsets o;
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK_EQ_INT(o.log_start_offset, target);
    end = o.log_end_offset;
    uint8_t *d = NULL;
    size_t len = 0;
    TT_CHECK_EQ_INT(ts_partition_read(p, target - 1, 65536, &d, &len, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    TT_CHECK_OKE(ts_partition_read(p, target, 65536, &d, &len, e.err, sizeof(e.err)), e.err);
    TT_CHECK(len > 0);
    free(d);
    /* below the start: no change; past the end: refused, no change */
    TT_CHECK_OKE(ts_partition_delete_records(p, 1, &low, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(low, target);
    TT_CHECK_EQ_INT(ts_partition_delete_records(p, end + 1, &low, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    env_close(&e);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "dr", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK_EQ_INT(o.log_start_offset, target);
    env_close(&e);
    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0)); /* lost data dir: the manifest has it */
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "dr", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK_EQ_INT(o.log_start_offset, target);
    TT_CHECK_EQ_INT(ts_partition_read(p, target - 1, 65536, &d, &len, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
done:
    env_done(&e);
}

/* Without remote storage the start is kept in the partition directory. */
TT_TEST(delete_records_without_remote_storage)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "dl", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 10, 10, 100, 1, e.err, sizeof(e.err)), e.err);
    int64_t low = -1;
    TT_CHECK_OKE(ts_partition_delete_records(p, -1, &low, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(low, 100); /* -1: the log end */
    env_close(&e);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "dl", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK_EQ_INT(o.log_start_offset, 100);
    TT_CHECK_EQ_INT(o.log_end_offset, 100);
done:
    env_done(&e);
}
int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "tiering-retention");
    TT_RUN(enforce_retention_returns_its_error);
    TT_RUN(total_retention_deletes_objects_and_advances_start);
    TT_RUN(recovery_after_retention_emptied_manifest_keeps_offsets);
    TT_RUN(time_rolls_respect_the_local_bound);
    TT_RUN(default_local_retention_is_bounded);
    TT_RUN(local_budget_trims_uploaded_segments_across_partitions);
    TT_RUN(local_budget_never_deletes_unuploaded_data);
    TT_RUN(delete_records_moves_the_start_everywhere);
    TT_RUN(delete_records_without_remote_storage);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
