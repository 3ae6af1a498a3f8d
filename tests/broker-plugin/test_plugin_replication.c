/*
 * test_plugin_replication.c — the replication entries of plugin ABI minor 2
 * (partition_set_role, append_replica, truncate, epoch_end_offset,
 * set_high_watermark, reset_local), through libtierstore-plugin.so the way
 * a broker calls them: the leader epoch cache learned and persisted
 * (reopen, simulated crash), follower offset checks, truncation, the high
 * watermark, leader-only uploads below it, fencing of a deposed leader by
 * manifest epoch, follower manifest refresh and reset_local.
 *
 * Only include/tierstore_plugin.h describes the plugin; common/batch.h
 * builds and inspects batches (test scaffolding). `--plugin PATH`.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "tests/broker-plugin/plugin_host.h"

static tsp_status open_engine3(tsp_engine **eng, const char *data, const char *bucket_name,
                               const char *local_retention_ms, char *err, size_t errlen)
{
    char dir[600], bucket[700], url[720];
    snprintf(dir, sizeof dir, "%s/%s-data", g_dir, data);
    snprintf(bucket, sizeof bucket, "%s/%s-bucket", g_dir, bucket_name);
    snprintf(url, sizeof url, "file://%s", bucket);
    tsp_property props[] = {
        {"log.dirs", dir},
        {"remote.storage.url", url},
        {"log.segment.bytes", "4096"},
        {"log.local.retention.bytes", "-1"},
        {"log.local.retention.ms", local_retention_ms},
        {"remote.log.manager.task.interval.ms", "100"},
    };
    return load()->engine_open(props, sizeof props / sizeof props[0], 0, eng, err, errlen);
}

static tsp_status open_engine2(tsp_engine **eng, const char *data, const char *bucket_name,
                               char *err, size_t errlen)
{
    return open_engine3(eng, data, bucket_name, "-2", err, errlen);
}

static tsp_status open_engine(tsp_engine **eng, const char *sub, char *err, size_t errlen)
{
    return open_engine2(eng, sub, sub, err, errlen);
}

static tsp_status open_part(tsp_engine *eng, tsp_partition **p, uint32_t flags, char *err,
                            size_t errlen)
{
    return load()->partition_open(eng, "orders", 0, TSP_PART_CREATE | flags, p, err, errlen);
}

/* One batch of n records as a leader would send it: baseOffset base,
 * partitionLeaderEpoch epoch. */
static uint8_t *make_batch(int n, int64_t base, int32_t epoch, size_t *len)
{
    const void *vals[64];
    size_t lens[64];
    static const char v[] = "value-bytes-of-a-record";
    for (int i = 0; i < n; i++) {
        vals[i] = v;
        lens[i] = sizeof v - 1;
    }
    uint8_t *b = NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* recent: no retention.ms applies */
    int64_t ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (ts_batch_build(vals, lens, n, ts, &b, len) != TS_OK) return NULL;
    ts_batch_set_base_offset(b, base);
    ts_batch_set_leader_epoch(b, epoch);
    return b;
}

/* append_replica of nbatches batches of 10 records from offset base. */
static tsp_status replicate(tsp_partition *p, int64_t base, int nbatches, int32_t epoch,
                            char *err, size_t errlen)
{
    for (int i = 0; i < nbatches; i++) {
        size_t len;
        uint8_t *b = make_batch(10, base + 10 * i, epoch, &len);
        int64_t last = -1;
        tsp_status st = load()->append_replica(p, b, len, &last, err, errlen);
        free(b);
        if (st) return st;
        if (last != base + 10 * i + 9) return TSP_E_INVAL;
    }
    return TSP_OK;
}

static tsp_offsets offsets_of(tsp_partition *p)
{
    tsp_offsets o;
    memset(&o, 0x55, sizeof o);
    o.struct_size = sizeof o;
    load()->offsets(p, &o);
    return o;
}

/* The epoch cache's answer for epoch, as "found:end". */
static const char *eeo(tsp_partition *p, int32_t epoch)
{
    static char out[64];
    int32_t found = -7;
    int64_t end = -7;
    char err[256];
    tsp_status st = load()->epoch_end_offset(p, epoch, &found, &end, err, sizeof err);
    snprintf(out, sizeof out, st ? "error %d" : "%d:%lld", st ? st : found, (long long)end);
    return out;
}

/* The base offset and leader epoch of the batch read at offset. */
static int read_batch_at(tsp_partition *p, int64_t offset, int64_t *base, int32_t *epoch)
{
    uint8_t *d = NULL;
    size_t len = 0;
    char err[256];
    if (load()->read(p, offset, 1, &d, &len, err, sizeof err) || len < 61) {
        load()->buffer_free(d);
        return -1;
    }
    ts_batch_hdr h;
    int bad = ts_batch_validate(d, len, 1 << 20, &h, err, sizeof err) != TS_OK;
    *base = h.base_offset;
    *epoch = h.leader_epoch;
    load()->buffer_free(d);
    return bad ? -1 : 0;
}

TT_TEST(entries_present)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT(pl->abi_minor >= 2);
    TT_ASSERT(TSP_HAS(pl, partition_set_role));
    TT_ASSERT(TSP_HAS(pl, append_replica));
    TT_ASSERT(TSP_HAS(pl, truncate));
    TT_ASSERT(TSP_HAS(pl, epoch_end_offset));
    TT_ASSERT(TSP_HAS(pl, set_high_watermark));
    TT_ASSERT(TSP_HAS(pl, reset_local));
}

/* The cache learns each epoch above its latest from the batch headers,
 * answers OffsetForLeaderEpoch, and survives a clean reopen and a crash. */
TT_TEST(epoch_cache_learned_and_persisted)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    TT_OKE(open_engine(&eng, "epochs", err, sizeof err), err);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_STR(eeo(p, 0), "-1:-1"); /* empty cache */
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, -1);
    TT_CHECK_OKE(replicate(p, 0, 2, 1, err, sizeof err), err);   /* epoch 1: 0..19 */
    TT_CHECK_OKE(replicate(p, 20, 3, 2, err, sizeof err), err);  /* epoch 2: 20..49 */
    TT_CHECK_OKE(replicate(p, 50, 1, 5, err, sizeof err), err);  /* epoch 5: 50..59 */
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, 5);
    TT_CHECK_STR(eeo(p, 0), "-1:-1"); /* older than every epoch */
    TT_CHECK_STR(eeo(p, 1), "1:20");
    TT_CHECK_STR(eeo(p, 2), "2:50");
    TT_CHECK_STR(eeo(p, 4), "2:50");  /* the largest epoch <= 4: a middle one */
    TT_CHECK_STR(eeo(p, 5), "5:60");  /* the latest: the log end */
    TT_CHECK_STR(eeo(p, 9), "5:60");
    pl->engine_close(eng);
    eng = NULL;
    /* Clean reopen. */
    TT_OKE(open_engine(&eng, "epochs", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_STR(eeo(p, 0), "-1:-1");
    TT_CHECK_STR(eeo(p, 1), "1:20");
    TT_CHECK_STR(eeo(p, 3), "2:50");
    TT_CHECK_STR(eeo(p, 5), "5:60");
    pl->engine_close(eng);
    eng = NULL;
    /* A crash right after a batch of a new epoch was appended: the child
     * exits without closing anything. */
    pid_t pid = fork();
    if (pid == 0) {
        tsp_engine *ce = NULL;
        tsp_partition *cp = NULL;
        char e2[512];
        if (open_engine(&ce, "epochs", e2, sizeof e2) ||
            pl->partition_open(ce, "orders", 0, 0, &cp, e2, sizeof e2) ||
            replicate(cp, 60, 1, 8, e2, sizeof e2))
            _exit(3);
        _exit(0);
    }
    int status = 0;
    TT_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    TT_OKE(open_engine(&eng, "epochs", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).log_end_offset, 70);
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, 8);
    TT_CHECK_STR(eeo(p, 5), "5:60");
    TT_CHECK_STR(eeo(p, 8), "8:70");
done:
    pl->engine_close(eng);
}

/* Follower appends keep the leader's offsets and epochs; a batch that does
 * not continue the log exactly is refused and nothing is written. */
TT_TEST(append_replica_offset_checks)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    uint8_t *two = NULL;
    TT_OKE(open_engine(&eng, "offsets", err, sizeof err), err);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    size_t l1, l2;
    uint8_t *b = make_batch(10, 3, 1, &l1); /* gap: the log ends at 0 */
    TT_CHECK_EQ_INT(pl->append_replica(p, b, l1, NULL, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    free(b);
    TT_CHECK(strstr(err, "expected 0") != NULL);
    /* Two batches, the second leaving a gap: the whole call is refused. */
    uint8_t *a = make_batch(10, 0, 1, &l1);
    b = make_batch(10, 11, 1, &l2);
    two = malloc(l1 + l2);
    memcpy(two, a, l1);
    memcpy(two + l1, b, l2);
    free(a);
    free(b);
    TT_CHECK_EQ_INT(pl->append_replica(p, two, l1 + l2, NULL, err, sizeof err),
                    TSP_E_OFFSET_OUT_OF_RANGE);
    TT_CHECK_EQ_INT(offsets_of(p).log_end_offset, 0);
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, -1); /* nothing learned either */
    TT_CHECK_OKE(replicate(p, 0, 2, 1, err, sizeof err), err);
    b = make_batch(10, 15, 1, &l1); /* overlap */
    TT_CHECK_EQ_INT(pl->append_replica(p, b, l1, NULL, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    free(b);
    b = make_batch(10, 20, 1, &l1);
    b[l1 - 1] ^= 0xff; /* CRC broken: the same validation as append */
    TT_CHECK_EQ_INT(pl->append_replica(p, b, l1, NULL, err, sizeof err), TSP_E_CORRUPT);
    free(b);
    TT_CHECK_EQ_INT(offsets_of(p).log_end_offset, 20);
    int64_t base = -1;
    int32_t epoch = -1;
    TT_CHECK(read_batch_at(p, 13, &base, &epoch) == 0);
    TT_CHECK_EQ_INT(base, 10);
    TT_CHECK_EQ_INT(epoch, 1);
done:
    free(two);
    pl->engine_close(eng);
}

/* A leader stamps its epoch into every batch it appends (CRC still
 * valid); a follower's leader append and an older epoch are fenced. */
TT_TEST(role_stamps_and_fences)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL, *plain = NULL;
    TT_OKE(open_engine(&eng, "role", err, sizeof err), err);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(replicate(p, 0, 1, 3, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(p, 7, 1, err, sizeof err), err);
    TT_CHECK_STR(eeo(p, 7), "7:10");
    size_t len;
    uint8_t *b = make_batch(5, 0, -1, &len);
    int64_t first = -1, last = -1;
    TT_CHECK_OKE(pl->append(p, b, len, &first, &last, err, sizeof err), err);
    free(b);
    TT_CHECK_EQ_INT(first, 10);
    int64_t base;
    int32_t epoch;
    TT_CHECK(read_batch_at(p, 12, &base, &epoch) == 0);
    TT_CHECK_EQ_INT(epoch, 7);
    TT_CHECK_STR(eeo(p, 6), "3:10");
    TT_CHECK_STR(eeo(p, 7), "7:15");
    TT_CHECK_EQ_INT(pl->partition_set_role(p, 6, 1, err, sizeof err), TSP_E_FENCED);
    TT_CHECK_OKE(pl->partition_set_role(p, 8, 0, err, sizeof err), err);
    b = make_batch(5, 0, -1, &len);
    TT_CHECK_EQ_INT(pl->append(p, b, len, NULL, NULL, err, sizeof err), TSP_E_FENCED);
    free(b);
    /* A partition that is not replicated has no role. */
    TT_CHECK_OKE(pl->partition_open(eng, "plain", 0, TSP_PART_CREATE, &plain, err, sizeof err), err);
    TT_CHECK_EQ_INT(pl->partition_set_role(plain, 1, 1, err, sizeof err), TSP_E_INVAL);
    TT_CHECK_EQ_INT(pl->truncate(plain, 0, NULL, err, sizeof err), TSP_E_INVAL);
    pl->engine_close(eng);
    eng = NULL;
    /* The role and the flag are remembered (opened again without it). */
    TT_OKE(open_engine(&eng, "role", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_EQ_INT(pl->partition_set_role(p, 7, 1, err, sizeof err), TSP_E_FENCED);
    b = make_batch(5, 0, -1, &len);
    TT_CHECK_EQ_INT(pl->append(p, b, len, NULL, NULL, err, sizeof err), TSP_E_FENCED);
    free(b);
done:
    pl->engine_close(eng);
}

/* The high watermark: = log end without replication; clamped to the log
 * end, never moving back, checkpointed and reloaded. */
TT_TEST(high_watermark)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL, *plain = NULL;
    TT_OKE(open_engine(&eng, "hw", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "plain", 0, TSP_PART_CREATE, &plain, err, sizeof err), err);
    size_t len;
    uint8_t *b = make_batch(4, 0, -1, &len);
    TT_CHECK_OKE(pl->append(plain, b, len, NULL, NULL, err, sizeof err), err);
    free(b);
    tsp_offsets o = offsets_of(plain);
    TT_CHECK_EQ_INT(o.high_watermark, 4);
    TT_CHECK_EQ_INT(o.remote_end_offset, 0);
    TT_CHECK_EQ_INT(o.leader_epoch, -1);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(replicate(p, 0, 3, 0, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).high_watermark, 0);
    TT_CHECK_OKE(pl->set_high_watermark(p, 12, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).high_watermark, 12);
    TT_CHECK_OKE(pl->set_high_watermark(p, 5, err, sizeof err), err); /* never back */
    TT_CHECK_EQ_INT(offsets_of(p).high_watermark, 12);
    TT_CHECK_OKE(pl->set_high_watermark(p, 1000, err, sizeof err), err); /* clamped */
    TT_CHECK_EQ_INT(offsets_of(p).high_watermark, 30);
    TT_CHECK_EQ_INT(pl->set_high_watermark(p, -1, err, sizeof err), TSP_E_INVAL);
    pl->engine_close(eng);
    eng = NULL;
    TT_OKE(open_engine(&eng, "hw", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).high_watermark, 30);
done:
    pl->engine_close(eng);
}

/* Truncation inside a segment and across segments, refused below the
 * high watermark; a straddling batch goes whole; appends continue. */
TT_TEST(truncate_mid_and_across_segments)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    tsp_segment_info *rows = NULL;
    TT_OKE(open_engine(&eng, "trunc", err, sizeof err), err);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(replicate(p, 0, 20, 1, err, sizeof err), err);  /* 0..199 */
    TT_CHECK_OKE(replicate(p, 200, 20, 3, err, sizeof err), err); /* 200..399 */
    size_t n = 0, rs = 0;
    TT_CHECK_OKE(pl->placement(p, &rows, &n, &rs, err, sizeof err), err);
    pl->buffer_free(rows);
    rows = NULL;
    TT_CHECK_MSG(n >= 4, "expected several segments, got %zu", n);
    TT_CHECK_OKE(pl->set_high_watermark(p, 100, err, sizeof err), err);
    int64_t end = -1;
    TT_CHECK_EQ_INT(pl->truncate(p, 99, &end, err, sizeof err), TSP_E_INVAL);
    TT_CHECK_EQ_INT(end, 400);
    TT_CHECK_OKE(pl->truncate(p, 255, &end, err, sizeof err), err); /* mid-batch 250..259 */
    TT_CHECK_EQ_INT(end, 250);
    TT_CHECK_EQ_INT(offsets_of(p).log_end_offset, 250);
    TT_CHECK_STR(eeo(p, 3), "3:250");
    int64_t base;
    int32_t epoch;
    TT_CHECK(read_batch_at(p, 249, &base, &epoch) == 0 && base == 240 && epoch == 3);
    TT_CHECK_OKE(pl->truncate(p, 130, &end, err, sizeof err), err); /* across segments */
    TT_CHECK_EQ_INT(end, 130);
    TT_CHECK_STR(eeo(p, 3), "1:130"); /* epoch 3 started at 200: gone */
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, 1);
    size_t len;
    uint8_t *b = make_batch(10, 250, 4, &len);
    TT_CHECK_EQ_INT(pl->append_replica(p, b, len, NULL, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    free(b);
    TT_CHECK_OKE(replicate(p, 130, 5, 4, err, sizeof err), err);
    TT_CHECK_STR(eeo(p, 4), "4:180");
    TT_CHECK_STR(eeo(p, 2), "1:130");
    pl->engine_close(eng);
    eng = NULL;
    TT_OKE(open_engine(&eng, "trunc", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).log_end_offset, 180);
    for (int64_t off = 0; off < 180; off += 10) {
        TT_CHECK_MSG(read_batch_at(p, off, &base, &epoch) == 0 && base == off,
                     "offset %lld reads back wrong", (long long)off);
        TT_CHECK_EQ_INT(epoch, off < 130 ? 1 : 4);
    }
    TT_CHECK_STR(eeo(p, 4), "4:180");
done:
    pl->buffer_free(rows);
    pl->engine_close(eng);
}


/* Leader appends of nbatches batches of 10 records. */
static tsp_status produce(tsp_partition *p, int nbatches, char *err, size_t errlen)
{
    for (int i = 0; i < nbatches; i++) {
        size_t len;
        uint8_t *b = make_batch(10, 0, -1, &len);
        tsp_status st = load()->append(p, b, len, NULL, NULL, err, errlen);
        free(b);
        if (st) return st;
    }
    return TSP_OK;
}

/* What a follower's fetcher does: reads the leader from `from` to `to` and
 * appends the batches with their offsets. */
static tsp_status copy_log(tsp_partition *leader, tsp_partition *follower, int64_t from,
                           int64_t to, char *err, size_t errlen)
{
    while (from < to) {
        uint8_t *d = NULL;
        size_t len = 0;
        tsp_status st = load()->read(leader, from, 1024, &d, &len, err, errlen);
        if (!st && !len) st = TSP_E_NOT_FOUND;
        int64_t last = -1;
        if (!st) st = load()->append_replica(follower, d, len, &last, err, errlen);
        load()->buffer_free(d);
        if (st) return st;
        from = last + 1;
    }
    return TSP_OK;
}

static void nap(void)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits (30 s at most) until the offsets of p satisfy cond. */
#define WAIT_OFFSETS(p, o, cond)                                                                 \
    do {                                                                                         \
        for (int w_ = 0; w_ < 600; w_++) {                                                       \
            o = offsets_of(p);                                                                   \
            if (cond) break;                                                                     \
            nap();                                                                               \
        }                                                                                        \
    } while (0)

/* Remote rows of p's placement: count, and whether each ends below limit. */
static int remote_rows(tsp_partition *p, int64_t limit, int *all_below)
{
    tsp_segment_info *rows = NULL;
    size_t n = 0, rs = 0;
    char err[256];
    *all_below = 1;
    if (load()->placement(p, &rows, &n, &rs, err, sizeof err)) return -1;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)((const char *)rows + i * rs);
        if (r->location != TSP_LOC_REMOTE && r->location != TSP_LOC_LOCAL_REMOTE) continue;
        count++;
        if (r->last_offset >= limit) *all_below = 0;
    }
    load()->buffer_free(rows);
    return count;
}

/* Nothing is uploaded above the high watermark, nor by a follower; what
 * lies wholly below it is. */
TT_TEST(hw_gated_uploads)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL, *f = NULL;
    TT_OKE(open_engine(&eng, "gate", err, sizeof err), err);
    TT_CHECK_OKE(open_part(eng, &p, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(p, 0, 1, err, sizeof err), err);
    TT_CHECK_OKE(produce(p, 40, err, sizeof err), err); /* 0..399, several closed segments */
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 1, TSP_PART_CREATE | TSP_PART_REPLICATED, &f,
                                    err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(f, 0, 0, err, sizeof err), err);
    TT_CHECK_OKE(copy_log(p, f, 0, 400, err, sizeof err), err);
    TT_CHECK_OKE(pl->set_high_watermark(f, 400, err, sizeof err), err);
    /* The high watermark is 0: nothing may go, however long we wait. */
    TT_CHECK_EQ_INT(pl->wait_uploaded(p, 1500, err, sizeof err), TSP_E_TIMEOUT);
    int below = 0;
    TT_CHECK_EQ_INT(remote_rows(p, 0, &below), 0);
    TT_CHECK_OKE(pl->set_high_watermark(p, 150, err, sizeof err), err);
    tsp_offsets o;
    WAIT_OFFSETS(p, o, o.remote_end_offset > 0);
    TT_CHECK_MSG(o.remote_end_offset > 0 && o.remote_end_offset <= 150,
                 "remote end %lld after the high watermark moved to 150",
                 (long long)o.remote_end_offset);
    TT_CHECK_EQ_INT(pl->wait_uploaded(p, 1500, err, sizeof err), TSP_E_TIMEOUT);
    TT_CHECK(remote_rows(p, 150, &below) > 0);
    TT_CHECK_MSG(below, "a segment reaching past the high watermark was uploaded");
    TT_CHECK_MSG(offsets_of(p).remote_end_offset <= 150, "remote end passed the high watermark");
    /* All committed and closed: everything goes. */
    TT_CHECK_OKE(pl->set_high_watermark(p, 400, err, sizeof err), err);
    TT_CHECK_OKE(pl->roll(p, err, sizeof err), err);
    TT_CHECK_OKE(pl->wait_uploaded(p, 30000, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(p).remote_end_offset, 400);
    /* The follower, with its high watermark at its end, uploaded nothing
     * (its own remote end is what the leader tiered: one bucket). */
    TT_CHECK_EQ_INT(pl->roll(f, err, sizeof err), TSP_OK);
    TT_CHECK_EQ_INT(pl->wait_uploaded(f, 1000, err, sizeof err), TSP_E_TIMEOUT);
    TT_CHECK_EQ_INT(remote_rows(f, 0, &below), 0);
    /* Tiered data is committed: truncating below the remote end fails. */
    TT_CHECK_EQ_INT(pl->truncate(p, 399, NULL, err, sizeof err), TSP_E_INVAL);
done:
    pl->engine_close(eng);
}

/* Does any manifest object (head or piece) in the bucket name key? */
static int bucket_names(const char *bucket, const char *key)
{
    char dirs[2][800];
    snprintf(dirs[0], sizeof dirs[0], "%s/orders/0/manifests", bucket);
    snprintf(dirs[1], sizeof dirs[1], "%s/orders/0/manifests/pieces", bucket);
    int found = 0;
    for (int k = 0; k < 2 && !found; k++) {
        DIR *d = opendir(dirs[k]);
        struct dirent *de;
        while (d && !found && (de = readdir(d))) {
            if (!strstr(de->d_name, ".json")) continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dirs[k], de->d_name);
            FILE *fp = fopen(path, "rb");
            if (!fp) continue;
            static char buf[1 << 20];
            size_t n = fread(buf, 1, sizeof buf - 1, fp);
            fclose(fp);
            buf[n] = 0;
            found = strstr(buf, key) != NULL;
        }
        if (d) closedir(d);
    }
    return found;
}

/* Segment objects in the bucket that no manifest names, whose key starts at
 * base offset `base`. */
static int orphans_at(const char *bucket, int64_t base)
{
    char dir[800], want[32];
    snprintf(dir, sizeof dir, "%s/orders/0/segments", bucket);
    snprintf(want, sizeof want, "%020lld-", (long long)base);
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, want, strlen(want))) continue;
        char key[600];
        snprintf(key, sizeof key, "orders/0/segments/%s", de->d_name);
        if (!bucket_names(bucket, key)) n++;
    }
    if (d) closedir(d);
    return n;
}

/* Checks that the bucket's manifest, as an empty replica recovers it,
 * covers [0, end) with contiguous entries and that every batch reads back. */
static int check_bucket_log(const char *data, const char *bucket, int64_t end, char *why,
                            size_t whylen)
{
    tsp_engine *e = NULL;
    tsp_partition *p = NULL;
    tsp_segment_info *rows = NULL;
    size_t n = 0, rs = 0;
    char err[512] = "";
    int bad = 1;
    if (open_engine2(&e, data, bucket, err, sizeof err) ||
        load()->partition_open(e, "orders", 0, 0, &p, err, sizeof err) ||
        load()->placement(p, &rows, &n, &rs, err, sizeof err)) {
        snprintf(why, whylen, "recovery failed: %s", err);
        goto out;
    }
    int64_t next = 0;
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)((const char *)rows + i * rs);
        if (r->location != TSP_LOC_REMOTE) continue;
        if (r->base_offset != next) {
            snprintf(why, whylen, "entry %zu starts at %lld, expected %lld (gap or duplicate)", i,
                     (long long)r->base_offset, (long long)next);
            goto out;
        }
        next = r->last_offset + 1;
    }
    if (next != end) {
        snprintf(why, whylen, "the manifest ends at %lld, expected %lld", (long long)next,
                 (long long)end);
        goto out;
    }
    for (int64_t off = 0; off < end; off += 10) {
        int64_t base;
        int32_t epoch;
        if (read_batch_at(p, off, &base, &epoch) || base != off) {
            snprintf(why, whylen, "offset %lld does not read back from the bucket", (long long)off);
            goto out;
        }
    }
    bad = 0;
out:
    load()->buffer_free(rows);
    load()->engine_close(e);
    return bad;
}

/* Two engines on one bucket: the old leader (epoch 1) is deposed by a new
 * one (epoch 2) whose first commit fences it; its late upload is refused
 * (FENCED), leaves an orphan object and no manifest entry; the new leader
 * continues exactly at the manifest's end although its own segments are
 * cut elsewhere. */
TT_TEST(fencing_two_leaders)
{
    const tsp_plugin *pl = load();
    char err[512] = "", why[512] = "", bucket[700];
    tsp_engine *ea = NULL, *eb = NULL;
    tsp_partition *a = NULL, *b = NULL;
    snprintf(bucket, sizeof bucket, "%s/fence-bucket", g_dir);
    TT_OKE(open_engine2(&ea, "fence-a", "fence", err, sizeof err), err);
    TT_CHECK_OKE(open_engine2(&eb, "fence-b", "fence", err, sizeof err), err);
    TT_CHECK_OKE(open_part(ea, &a, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(open_part(eb, &b, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(a, 1, 1, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(b, 1, 0, err, sizeof err), err);
    TT_CHECK_OKE(produce(a, 30, err, sizeof err), err); /* 0..299 */
    TT_CHECK_OKE(pl->set_high_watermark(a, 300, err, sizeof err), err);
    TT_CHECK_OKE(pl->roll(a, err, sizeof err), err);
    TT_CHECK_OKE(pl->wait_uploaded(a, 30000, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(a).remote_end_offset, 300);
    TT_CHECK_OKE(produce(a, 30, err, sizeof err), err); /* 300..599, closed segments */
    TT_CHECK_OKE(copy_log(a, b, 0, 600, err, sizeof err), err);
    /* b rolled by size only: a segment of b straddles 300, the manifest end */
    tsp_segment_info *rows = NULL;
    size_t n = 0, rs = 0;
    int straddles = 0;
    TT_CHECK_OKE(pl->placement(b, &rows, &n, &rs, err, sizeof err), err);
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)((const char *)rows + i * rs);
        if (r->location != TSP_LOC_REMOTE && r->base_offset < 300 && r->last_offset >= 300)
            straddles = 1;
    }
    pl->buffer_free(rows);
    TT_CHECK_MSG(straddles, "setup: no local segment of the new leader straddles offset 300");
    /* b becomes leader at epoch 2: its first commit is written at once. */
    TT_CHECK_OKE(pl->partition_set_role(b, 2, 1, err, sizeof err), err);
    int fenced_head = 0;
    for (int w = 0; w < 600 && !fenced_head; w++) {
        fenced_head = bucket_names(bucket, "\"leader_epoch\":2");
        if (!fenced_head) nap();
    }
    TT_CHECK_MSG(fenced_head, "no head at leader epoch 2 reached the bucket");
    /* a, not told yet, uploads a segment above 300: fenced. */
    TT_CHECK_OKE(pl->set_high_watermark(a, 600, err, sizeof err), err);
    tsp_status st = TSP_OK;
    for (int w = 0; w < 600 && st != TSP_E_FENCED; w++) {
        size_t len;
        uint8_t *bt = make_batch(1, 0, -1, &len);
        st = pl->append(a, bt, len, NULL, NULL, err, sizeof err);
        free(bt);
        if (st != TSP_E_FENCED) nap();
    }
    TT_CHECK_MSG(st == TSP_E_FENCED, "the deposed leader was never fenced");
    /* The fenced attempt's object: the deposed leader's own (local-only)
     * manifest names it; no manifest in the bucket does. It is an orphan
     * (or already swept by the new leader's orphan sweep). */
    char fenced_key[600] = "", path[1400];
    TT_CHECK_OKE(pl->placement(a, &rows, &n, &rs, err, sizeof err), err);
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)((const char *)rows + i * rs);
        if (r->base_offset == 300 && r->object_key[0])
            snprintf(fenced_key, sizeof fenced_key, "%s", r->object_key);
    }
    pl->buffer_free(rows);
    TT_CHECK_MSG(fenced_key[0], "the deposed leader never attempted the upload at 300");
    TT_CHECK_MSG(!bucket_names(bucket, fenced_key), "a manifest names the fenced object %s",
                 fenced_key);
    snprintf(path, sizeof path, "%s/%s", bucket, fenced_key);
    TT_CHECK_MSG(access(path, F_OK) != 0 || orphans_at(bucket, 300) >= 1,
                 "the fenced object is neither an orphan nor gone");
    /* b continues from the manifest's end: no gap, no duplicate entry. */
    TT_CHECK_OKE(pl->set_high_watermark(b, 600, err, sizeof err), err);
    TT_CHECK_OKE(pl->roll(b, err, sizeof err), err);
    TT_CHECK_OKE(pl->wait_uploaded(b, 30000, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(b).remote_end_offset, 600);
    TT_CHECK_MSG(check_bucket_log("fence-c", "fence", 600, why, sizeof why) == 0, "%s", why);
    TT_CHECK_MSG(!bucket_names(bucket, fenced_key), "a manifest names the fenced object %s",
                 fenced_key);
    /* The deposed leader, told it follows now, refuses the old epoch and
     * takes the bucket's manifest back. */
    TT_CHECK_EQ_INT(pl->partition_set_role(a, 0, 1, err, sizeof err), TSP_E_FENCED);
    TT_CHECK_OKE(pl->partition_set_role(a, 2, 0, err, sizeof err), err);
    tsp_offsets o;
    WAIT_OFFSETS(a, o, o.remote_end_offset == 600);
    TT_CHECK_EQ_INT(o.remote_end_offset, 600);
done:
    pl->engine_close(ea);
    pl->engine_close(eb);
}

/* A follower deletes local segments under local retention once the leader
 * has tiered them (its manifest re-read from the bucket), never before. */
TT_TEST(follower_refresh_and_local_retention)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *el = NULL, *ef = NULL;
    tsp_partition *l = NULL, *f = NULL;
    TT_OKE(open_engine3(&el, "refresh-l", "refresh", "-2", err, sizeof err), err);
    TT_CHECK_OKE(open_engine3(&ef, "refresh-f", "refresh", "0", err, sizeof err), err);
    TT_CHECK_OKE(open_part(el, &l, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(open_part(ef, &f, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(l, 1, 1, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(f, 1, 0, err, sizeof err), err);
    TT_CHECK_OKE(produce(l, 40, err, sizeof err), err);
    TT_CHECK_OKE(copy_log(l, f, 0, 400, err, sizeof err), err);
    TT_CHECK_OKE(pl->set_high_watermark(f, 400, err, sizeof err), err);
    /* Nothing tiered yet: the follower keeps everything, whatever its
     * local retention says. */
    for (int i = 0; i < 10; i++) {
        TT_CHECK_OKE(pl->enforce_retention(f, err, sizeof err), err);
        nap();
    }
    TT_CHECK_EQ_INT(offsets_of(f).local_start_offset, 0);
    /* The leader tiers 0..249 (high watermark 250). */
    TT_CHECK_OKE(pl->set_high_watermark(l, 250, err, sizeof err), err);
    tsp_offsets o;
    WAIT_OFFSETS(l, o, o.remote_end_offset > 150);
    TT_CHECK(o.remote_end_offset > 150);
    WAIT_OFFSETS(f, o, o.local_start_offset > 0);
    TT_CHECK_MSG(o.local_start_offset > 0, "the follower kept segments the leader tiered");
    /* Its remote end only grows: what it deleted was below it then. */
    TT_CHECK_MSG(o.local_start_offset <= o.remote_end_offset && o.remote_end_offset <= 250,
                 "the follower deleted offsets up to %lld, the manifest ends at %lld",
                 (long long)o.local_start_offset, (long long)o.remote_end_offset);
    TT_CHECK_EQ_INT(o.log_start_offset, 0);
    int64_t base;
    int32_t epoch;
    TT_CHECK(read_batch_at(f, 0, &base, &epoch) == 0 && base == 0 && epoch == 1);
done:
    pl->engine_close(el);
    pl->engine_close(ef);
}

/* An empty follower restarts its log at the leader's local start: reads
 * below come from the bucket, appends continue there, the epoch cache comes
 * from the manifest. A start the bucket does not reach is refused. */
TT_TEST(reset_local_empty_follower)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *el = NULL, *ee = NULL;
    tsp_partition *l = NULL, *e = NULL;
    TT_OKE(open_engine2(&el, "reset-l", "reset", err, sizeof err), err);
    TT_CHECK_OKE(open_part(el, &l, TSP_PART_REPLICATED, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_set_role(l, 3, 1, err, sizeof err), err);
    TT_CHECK_OKE(produce(l, 40, err, sizeof err), err);
    /* Everything committed and tiered, durably: the bucket holds 0..399. */
    TT_CHECK_OKE(pl->set_high_watermark(l, 400, err, sizeof err), err);
    TT_CHECK_OKE(pl->roll(l, err, sizeof err), err);
    TT_CHECK_OKE(pl->wait_uploaded(l, 30000, err, sizeof err), err);
    tsp_offsets o;
    TT_CHECK_OKE(open_engine2(&ee, "reset-e", "reset", err, sizeof err), err);
    TT_CHECK_OKE(open_part(ee, &e, TSP_PART_REPLICATED, err, sizeof err), err);
    /* Recovered from the bucket alone: its log starts at the remote end and
     * its epoch cache comes from the manifest. */
    o = offsets_of(e);
    TT_CHECK_EQ_INT(o.log_end_offset, 400);
    TT_CHECK_EQ_INT(o.remote_end_offset, 400);
    TT_CHECK_EQ_INT(o.leader_epoch, 3);
    TT_CHECK_OKE(pl->partition_set_role(e, 3, 0, err, sizeof err), err);
    /* 450: beyond what the bucket holds */
    TT_CHECK_EQ_INT(pl->reset_local(e, 450, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    TT_CHECK_EQ_INT(offsets_of(e).log_end_offset, 400); /* nothing changed */
    TT_CHECK_OKE(pl->reset_local(e, 200, err, sizeof err), err);
    o = offsets_of(e);
    TT_CHECK_EQ_INT(o.local_start_offset, 200);
    TT_CHECK_EQ_INT(o.log_end_offset, 200);
    TT_CHECK_EQ_INT(o.log_start_offset, 0);
    TT_CHECK_EQ_INT(o.high_watermark, 200);
    TT_CHECK_EQ_INT(o.leader_epoch, 3);
    TT_CHECK_STR(eeo(e, 3), "3:200");
    TT_CHECK_STR(eeo(e, 2), "-1:-1");
    int64_t base;
    int32_t epoch;
    for (int64_t off = 0; off < 200; off += 10)
        TT_CHECK_MSG(read_batch_at(e, off, &base, &epoch) == 0 && base == off && epoch == 3,
                     "offset %lld does not read from the bucket", (long long)off);
    size_t len;
    uint8_t *bt = make_batch(10, 0, 3, &len);
    TT_CHECK_EQ_INT(pl->append_replica(e, bt, len, NULL, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    free(bt);
    TT_CHECK_OKE(copy_log(l, e, 200, 400, err, sizeof err), err);
    TT_CHECK_EQ_INT(offsets_of(e).log_end_offset, 400);
    TT_CHECK(read_batch_at(e, 350, &base, &epoch) == 0 && base == 350);
    pl->engine_close(ee);
    ee = NULL;
    TT_CHECK_OKE(open_engine2(&ee, "reset-e", "reset", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(ee, "orders", 0, 0, &e, err, sizeof err), err);
    o = offsets_of(e);
    TT_CHECK_EQ_INT(o.local_start_offset, 200);
    TT_CHECK_EQ_INT(o.log_end_offset, 400);
    TT_CHECK_STR(eeo(e, 3), "3:400");
done:
    pl->engine_close(ee);
    pl->engine_close(el);
}

int main(int argc, char **argv)
{
    int rc = host_init(argc, argv, "test_plugin_replication", "replication");
    if (rc) return rc;
    if (!load()) return 1;
    TT_RUN(entries_present);
    if (!TSP_HAS(g_pl, reset_local)) { /* a plugin older than minor 2: nothing else can run */
        fprintf(stderr, "the plugin lacks the replication entries\n");
        return 1;
    }
    TT_RUN(epoch_cache_learned_and_persisted);
    TT_RUN(append_replica_offset_checks);
    TT_RUN(role_stamps_and_fences);
    TT_RUN(high_watermark);
    TT_RUN(truncate_mid_and_across_segments);
    TT_RUN(hw_gated_uploads);
    TT_RUN(fencing_two_leaders);
    TT_RUN(follower_refresh_and_local_retention);
    TT_RUN(reset_local_empty_follower);
    return host_finish();
}
