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
#include "tierstore_plugin.h"
#include "tests/tt.h"

static const char *g_path;
static void *g_dl;
static const tsp_plugin *g_pl;
static char g_dir[512];

static const tsp_plugin *load(void)
{
    if (g_pl) return g_pl;
    g_dl = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    if (!g_dl) {
        fprintf(stderr, "dlopen %s: %s\n", g_path, dlerror());
        return NULL;
    }
    tsp_entry_fn entry = (tsp_entry_fn)dlsym(g_dl, TSP_ENTRY_SYMBOL);
    char err[256] = "";
    g_pl = entry ? entry(TSP_ABI_MAJOR, err, sizeof err) : NULL;
    return g_pl;
}

/* An engine on <g_dir>/<data>-data with the bucket <g_dir>/<bucket>-bucket
 * (two engines share a bucket by naming the same one). */
static tsp_status open_engine2(tsp_engine **eng, const char *data, const char *bucket_name,
                               char *err, size_t errlen)
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
        {"remote.log.manager.task.interval.ms", "100"},
    };
    return load()->engine_open(props, sizeof props / sizeof props[0], 0, eng, err, errlen);
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
    if (ts_batch_build(vals, lens, n, 1700000000000LL + base, &b, len) != TS_OK) return NULL;
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
    TT_CHECK_OKE(replicate(p, 0, 2, 0, err, sizeof err), err);   /* epoch 0: 0..19 */
    TT_CHECK_OKE(replicate(p, 20, 3, 2, err, sizeof err), err);  /* epoch 2: 20..49 */
    TT_CHECK_OKE(replicate(p, 50, 1, 5, err, sizeof err), err);  /* epoch 5: 50..59 */
    TT_CHECK_EQ_INT(offsets_of(p).leader_epoch, 5);
    TT_CHECK_STR(eeo(p, 0), "0:20");
    TT_CHECK_STR(eeo(p, 1), "0:20");  /* the largest epoch <= 1 */
    TT_CHECK_STR(eeo(p, 2), "2:50");
    TT_CHECK_STR(eeo(p, 4), "2:50");
    TT_CHECK_STR(eeo(p, 5), "5:60");  /* the latest: the log end */
    TT_CHECK_STR(eeo(p, 9), "5:60");
    pl->engine_close(eng);
    eng = NULL;
    /* Clean reopen. */
    TT_OKE(open_engine(&eng, "epochs", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "orders", 0, 0, &p, err, sizeof err), err);
    TT_CHECK_STR(eeo(p, 1), "0:20");
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

int main(int argc, char **argv)
{
    char *rest[64];
    int nrest = 0;
    for (int i = 0; i < argc && nrest < 63; i++) {
        if (!strcmp(argv[i], "--plugin") && i + 1 < argc) {
            g_path = argv[++i];
            continue;
        }
        rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    if (!g_path) g_path = getenv("TIERSTORE_PLUGIN");
    if (!g_path) {
        fprintf(stderr, "usage: test_plugin_replication --plugin PATH [test...]\n");
        return 2;
    }
    TT_INIT(nrest, rest);
    tt_tmpdir(g_dir, sizeof g_dir, "replication");
    if (!load()) return 1;
    TT_RUN(entries_present);
    TT_RUN(epoch_cache_learned_and_persisted);
    TT_RUN(append_replica_offset_checks);
    TT_RUN(role_stamps_and_fences);
    TT_RUN(high_watermark);
    TT_RUN(truncate_mid_and_across_segments);
    if (g_dl) dlclose(g_dl);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tt_summary();
}
