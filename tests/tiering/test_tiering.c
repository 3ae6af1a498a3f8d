/*
 * test_tiering.c — unit tests of the engine (tiering/ + uploader/): local
 * log, recovery, reads, uploads, retention, recovery from the bucket.
 * Object store: a file:// bucket in a temp dir (and the fault injector).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/config_table.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "index/manifest_json.h"
#include "objstore/objstore.h"
#include "tierstore.h"
#include "tiering/segment.h"
#include "tt.h"

static char g_root[256];
static int g_case;

typedef struct env {
    char dir[512], data[600], bucket[600], url[700];
    ts_config *cfg;
    ts_engine *eng;
    char err[1024];
} env;

static void env_init(env *e, const char *const *kv)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s/case%d", g_root, ++g_case);
    snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
    snprintf(e->bucket, sizeof(e->bucket), "%s/bucket", e->dir);
    snprintf(e->url, sizeof(e->url), "file://%s", e->bucket);
    ts_fs_mkdirs(e->dir, NULL, 0);
    e->cfg = ts_config_create();
    ts_config_set(e->cfg, "log.dirs", e->data, NULL, 0);
    ts_config_set(e->cfg, "remote.storage.url", e->url, NULL, 0);
    ts_config_set(e->cfg, "remote.log.manager.task.interval.ms", "20", NULL, 0);
    ts_config_set(e->cfg, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(e->cfg, "remote.storage.chunk.bytes", "65536", NULL, 0);
    for (; kv && kv[0]; kv += 2)
        if (ts_config_set(e->cfg, kv[0], kv[1], e->err, sizeof(e->err)))
            fprintf(stderr, "config: %s\n", e->err);
}

static ts_status env_open(env *e) { return ts_engine_open(e->cfg, &e->eng, e->err, sizeof(e->err)); }

static void env_done(env *e)
{
    ts_engine_close(e->eng);
    e->eng = NULL;
    ts_config_destroy(e->cfg);
}

/* A batch of n records of `size` bytes each, values derived from tag. */
static uint8_t *mk_batch(int n, size_t size, int tag, int64_t ts, size_t *len)
{
    char **v = malloc((size_t)n * sizeof(char *));
    size_t *l = malloc((size_t)n * sizeof(size_t));
    for (int i = 0; i < n; i++) {
        v[i] = malloc(size);
        for (size_t j = 0; j < size; j++) v[i][j] = (char)('a' + (tag * 7 + i + (int)j / 13) % 26);
        l[i] = size;
    }
    uint8_t *b;
    ts_batch_build((const void *const *)v, l, n, ts, &b, len);
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
    free(l);
    return b;
}

static ts_status append_n(ts_partition *p, int batches, int recs, size_t size, int64_t ts0,
                          char *err, size_t errlen)
{
    for (int i = 0; i < batches; i++) {
        size_t len;
        uint8_t *b = mk_batch(recs, size, i, ts0 + i, &len);
        ts_status st;
        while ((st = ts_partition_append(p, b, len, NULL, NULL, err, errlen)) == TS_E_BACKPRESSURE)
            ts_sleep_ms(2);
        free(b);
        if (st) return st;
    }
    return TS_OK;
}

/* Reads from `from` to the end; returns the number of records, -1 on error,
 * checking offsets are contiguous. */
static long read_all(ts_partition *p, int64_t from, char *err, size_t errlen)
{
    int64_t off = from;
    long recs = 0;
    for (;;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 100000, &d, &len, err, errlen)) return -1;
        if (!len) return recs;
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 1 << 24, &h, err, errlen)) {
                free(d);
                return -1;
            }
            if (h.base_offset > off) { /* only allowed at the very start (off mid-batch) */
                snprintf(err, errlen, "gap: expected offset %lld, got batch %lld", (long long)off,
                         (long long)h.base_offset);
                free(d);
                return -1;
            }
            recs += (long)(ts_batch_last_offset(&h) - (off > h.base_offset ? off : h.base_offset) + 1);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
}

/* Rolls, waiting while local disk is at its bound (uploads catching up). */
static ts_status roll(ts_partition *p, char *err, size_t errlen)
{
    ts_status st;
    for (int i = 0; i < 3000; i++) {
        st = ts_partition_roll(p, err, errlen);
        if (st != TS_E_BACKPRESSURE) return st;
        ts_sleep_ms(5);
    }
    return st;
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        if (l > s && !strcmp(de->d_name + l - s, suffix)) n++;
    }
    if (d) closedir(d);
    return n;
}

TT_TEST(append_rejects_bad_batches_atomically)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    size_t l1, l2;
    uint8_t *b1 = mk_batch(3, 10, 1, 1000, &l1), *b2 = mk_batch(2, 10, 2, 1001, &l2);
    uint8_t *two = malloc(l1 + l2);
    memcpy(two, b1, l1);
    memcpy(two + l1, b2, l2);
    two[l1 + l2 - 1] ^= 0x40; /* bad CRC in the second batch */
    TT_ASSERT_EQ_INT(ts_partition_append(p, two, l1 + l2, NULL, NULL, e.err, sizeof(e.err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(e.err, "CRC") && strstr(e.err, "nothing appended"));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_end_offset, 0);
    ts_wr32(two + 8, 1 << 30); /* bad length in the first batch */
    TT_ASSERT(ts_partition_append(p, two, l1 + l2, NULL, NULL, e.err, sizeof(e.err)) != TS_OK);
    TT_ASSERT_EQ_INT(ts_partition_append(p, two, 20, NULL, NULL, e.err, sizeof(e.err)), TS_E_CORRUPT);
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_end_offset, 0);
    char path[800];
    snprintf(path, sizeof(path), "%s/t-0/%020d.log", e.data, 0);
    struct stat sb;
    TT_ASSERT(stat(path, &sb) == 0 && sb.st_size == 0);
    int64_t first, last;
    TT_OKE(ts_partition_append(p, b1, l1, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(first, 0);
    TT_ASSERT_EQ_INT(last, 2);
    TT_OKE(ts_partition_append(p, b2, l2, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(first, 3);
    TT_ASSERT_EQ_INT(last, 4);
    TT_ASSERT_EQ_INT(ts_partition_open(e.eng, "bad/topic", 0, 1, &p, e.err, sizeof(e.err)), TS_E_INVAL);
    free(b1);
    free(b2);
    free(two);
    env_done(&e);
}

/* Issue 7 #2: the frame of a batch was checked, its records were not. A
 * batch claiming 2^31-1 records with none moved the log end by 2^31; one
 * whose record runs past the batch stalled every consumer. Both are refused
 * and nothing moves. */
TT_TEST(append_refuses_batches_whose_records_do_not_parse)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint8_t b[TS_BATCH_HEADER_SIZE + 4];
    memset(b, 0, sizeof(b));
    size_t n = TS_BATCH_HEADER_SIZE;
    ts_wr32(b + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    b[16] = 2;
    ts_wr32(b + 23, INT32_MAX - 1);
    ts_wr64(b + 43, (uint64_t)-1);
    ts_wr32(b + 53, (uint32_t)-1);
    ts_wr32(b + 57, INT32_MAX);
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    TT_ASSERT_EQ_INT(ts_partition_append(p, b, n, NULL, NULL, e.err, sizeof(e.err)),
                     TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(e.err, "nothing appended") && strstr(e.err, "2147483647"), "%s", e.err);
    /* One record whose length (10000) runs past the 3 bytes present. */
    n = TS_BATCH_HEADER_SIZE + 4;
    ts_wr32(b + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    ts_wr32(b + 23, 0);
    ts_wr32(b + 57, 1);
    b[61] = 0xa0, b[62] = 0x9c, b[63] = 0x01; /* varint 10000 */
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    TT_ASSERT_EQ_INT(ts_partition_append(p, b, n, NULL, NULL, e.err, sizeof(e.err)),
                     TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(e.err, "record 0:"), "%s", e.err);
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_end_offset, 0);
    size_t l1;
    uint8_t *b1 = mk_batch(3, 10, 1, 1000, &l1);
    int64_t first, last;
    TT_OKE(ts_partition_append(p, b1, l1, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(last, 2);
    free(b1);
    env_done(&e);
}

TT_TEST(reads_roll_and_ranges)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "4096",
                                   "log.index.interval.bytes", "512", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 200, 4, 50, 5000, e.err, sizeof(e.err)), e.err); /* 800 records */
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/t-0", e.data);
    TT_ASSERT(count_files(dir, ".log") > 5);
    /* Each read starts with the batch holding the offset, whole batches. */
    for (int64_t off = 0; off < 800; off += 37) {
        uint8_t *d;
        size_t len;
        TT_OKE(ts_partition_read(p, off, 1, &d, &len, e.err, sizeof(e.err)), e.err);
        ts_batch_hdr h;
        TT_OK(ts_batch_validate(d, len, 1 << 20, &h, e.err, sizeof(e.err)));
        TT_ASSERT(h.base_offset <= off && ts_batch_last_offset(&h) >= off);
        TT_ASSERT_EQ_INT(len, ts_batch_total_size(&h)); /* max_bytes 1 still yields one batch */
        free(d);
    }
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
    TT_ASSERT_EQ_INT(read_all(p, 401, e.err, sizeof(e.err)), 399);
    uint8_t *d;
    size_t len;
    TT_OK(ts_partition_read(p, 800, 1000, &d, &len, e.err, sizeof(e.err)));
    TT_ASSERT(d == NULL && len == 0);
    TT_ASSERT_EQ_INT(ts_partition_read(p, 801, 1000, &d, &len, e.err, sizeof(e.err)), TS_E_OFFSET_OUT_OF_RANGE);
    TT_ASSERT(strstr(e.err, "801") != NULL);
    int64_t o;
    TT_OK(ts_partition_offset_for_time(p, 5000 + 120, &o, e.err, sizeof(e.err)));
    /* Batch i holds records with timestamps 5000+i .. 5003+i at offsets
     * 4i .. 4i+3: the first record with ts >= 5120 is the last one of
     * batch 117 (offset 471), as Kafka's ListOffsets answers. */
    TT_ASSERT_EQ_INT(o, 471);
    TT_OK(ts_partition_offset_for_time(p, 0, &o, e.err, sizeof(e.err)));
    TT_ASSERT_EQ_INT(o, 0);
    TT_ASSERT_EQ_INT(ts_partition_offset_for_time(p, 99999, &o, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
    env_done(&e);
}

static void append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

TT_TEST(recovery_truncates_torn_tail_and_rebuilds_indexes)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "8192",
                                   "log.index.interval.bytes", "256", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 100, 3, 40, 100, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_flush(p, e.err, sizeof(e.err)));
    ts_offsets o1;
    ts_partition_offsets(p, &o1);
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* A torn write: half a batch at the end of the active segment. */
    char dir[700], path[800];
    snprintf(dir, sizeof(dir), "%s/t-0", e.data);
    DIR *d = opendir(dir);
    struct dirent *de;
    char last[64] = "", first[64] = "~";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log")) {
            if (strcmp(de->d_name, last) > 0) snprintf(last, sizeof(last), "%s", de->d_name);
            if (strcmp(de->d_name, first) < 0) snprintf(first, sizeof(first), "%s", de->d_name);
        }
    closedir(d);
    size_t bl;
    uint8_t *b = mk_batch(3, 40, 7, 1, &bl);
    snprintf(path, sizeof(path), "%s/%s", dir, last);
    struct stat sb;
    stat(path, &sb);
    off_t before = sb.st_size;
    append_raw(path, b, bl / 2);
    free(b);
    /* Damaged and missing indexes of a closed segment. */
    snprintf(path, sizeof(path), "%s/%.20s.index", dir, first);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%.20s.timeindex", dir, first);
    append_raw(path, "xyz", 3);

    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "t", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o2;
    ts_partition_offsets(p, &o2);
    TT_ASSERT_EQ_INT(o2.log_end_offset, o1.log_end_offset);
    snprintf(path, sizeof(path), "%s/%s", dir, last);
    stat(path, &sb);
    TT_ASSERT_EQ_INT(sb.st_size, before); /* the torn tail was cut off */
    snprintf(path, sizeof(path), "%s/%.20s.index", dir, first);
    TT_ASSERT(access(path, F_OK) == 0); /* rebuilt */
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 300);
    int64_t ts_off;
    TT_OK(ts_partition_offset_for_time(p, 150, &ts_off, e.err, sizeof(e.err)));
    TT_ASSERT_EQ_INT(ts_off, 146); /* batch 48: ts 148..150 at offsets 144..146 */
    TT_OKE(append_n(p, 1, 3, 40, 9999, e.err, sizeof(e.err)), e.err);
    ts_partition_offsets(p, &o2);
    TT_ASSERT_EQ_INT(o2.log_end_offset, o1.log_end_offset + 3);
    env_done(&e);
}

/* Returns the path of the first segment object in the fs bucket. */
static int find_object(const char *bucket, const char *topic, int part, char *out, size_t len)
{
    char dir[900];
    snprintf(dir, sizeof(dir), "%s/%s/%d/segments", bucket, topic, part);
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    int found = -1;
    char best[300] = "~";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log.zst") && strcmp(de->d_name, best) < 0) {
            snprintf(best, sizeof(best), "%s", de->d_name);
            found = 0;
        }
    closedir(d);
    if (!found) snprintf(out, len, "%s/%s", dir, best);
    return found;
}

TT_TEST(uploaded_object_is_plain_zstd_of_the_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "300000", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "z", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 60, 20, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char obj[1200], cmd[3000], out[800], seg[800];
    TT_ASSERT(find_object(e.bucket, "z", 0, obj, sizeof(obj)) == 0);
    snprintf(out, sizeof(out), "%s/decompressed", e.dir);
    snprintf(seg, sizeof(seg), "%s/z-0/%020d.log", e.data, 0);
    snprintf(cmd, sizeof(cmd), "zstd -q -d -c '%s' > '%s' && cmp -s '%s' '%s'", obj, out, out, seg);
    TT_ASSERT_MSG(system(cmd) == 0, "zstd -d of %s differs from %s", obj, seg);
    /* Several chunks (65536-byte chunks of a ~270 KB segment). */
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_ASSERT(n >= 1 && rows[0].location == TS_LOC_LOCAL_REMOTE && rows[0].stored_bytes > 0);
    TT_ASSERT(rows[0].stored_bytes < rows[0].size_bytes); /* compressible data got smaller */
    free(rows);
    env_done(&e);
}

static void count_verified(const ts_segment_info *s, ts_status st, const char *msg, void *o)
{
    (void)s;
    (void)msg;
    if (st == TS_OK) (*(int *)o)++;
}

TT_TEST(cold_reads_verify_and_name_the_object)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "100000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "c", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 50, 10, 300, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_start_offset, 0);
    TT_ASSERT(o.local_start_offset > 0); /* old segments left local disk */
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 500);
    ts_engine_close(e.eng);
    e.eng = NULL;
    int vrows = 0;
    TT_OKE(ts_verify_offline(e.cfg, "c", 0, count_verified, &vrows, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(vrows >= 2);
    ts_offset_location loc;
    TT_OKE(ts_locate_offline(e.cfg, "c", 0, 5, &loc, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(loc.segment.location == TS_LOC_REMOTE && loc.chunk_index == 0 && loc.chunk_count >= 1);
    TT_ASSERT(loc.segment.base_offset == 0 && loc.segment.object_key[0]);
    TT_ASSERT_EQ_INT(ts_locate_offline(e.cfg, "c", 0, 100000, &loc, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    /* Flip one byte inside the first frame; empty the cache. */
    char obj[1200], cache[800];
    TT_ASSERT(find_object(e.bucket, "c", 0, obj, sizeof(obj)) == 0);
    int fd = open(obj, O_RDWR);
    uint8_t byte;
    TT_ASSERT(pread(fd, &byte, 1, 100) == 1);
    byte ^= 0x10;
    TT_ASSERT(pwrite(fd, &byte, 1, 100) == 1);
    close(fd);
    snprintf(cache, sizeof(cache), "%s/.chunk-cache", e.data);
    ts_fs_rmtree(cache, NULL, 0);
    /* tierctl verify's engine: the damaged segment fails, naming its object. */
    vrows = 0;
    TT_ASSERT_EQ_INT(ts_verify_offline(e.cfg, "c", 0, count_verified, &vrows, e.err, sizeof(e.err)),
                     TS_E_CHECKSUM);
    TT_ASSERT(strstr(e.err, "c/0/segments/") != NULL);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "c", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    uint8_t *d = NULL;
    size_t len = 0;
    ts_status st = ts_partition_read(p, 0, 10000, &d, &len, e.err, sizeof(e.err));
    TT_ASSERT_EQ_INT(st, TS_E_CHECKSUM);
    TT_ASSERT(d == NULL && len == 0);
    const char *key = strstr(obj, "c/0/segments/");
    TT_ASSERT_MSG(key && strstr(e.err, key), "error does not name the object: %s", e.err);
    env_done(&e);
}

/* Issue 7 item 1: an object the manifest names and the bucket lacks is
 * corruption. Reads of its offsets fail with TS_E_OBJECT_MISSING naming the
 * object (before, a 404 read as a retention gap and the read skipped to the
 * first local offset); offsets outside it are served; verify and placement
 * say so. */
TT_TEST(missing_object_is_an_error_not_a_gap)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "m", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_segment_info *rows = NULL;
    size_t n = 0;
    TT_OKE(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)), e.err);
    /* the hole: the second of at least three remote-only segments */
    TT_ASSERT_MSG(n >= 4 && rows[0].location == TS_LOC_REMOTE &&
                      rows[1].location == TS_LOC_REMOTE && rows[2].location == TS_LOC_REMOTE,
                  "want >= 3 remote-only segments, have %zu rows", n);
    ts_segment_info hole = rows[1], after = rows[2];
    free(rows);
    ts_engine_close(e.eng);
    e.eng = NULL;

    /* Lose the object (the cache too, as on another broker or after a
     * cache wipe), restart. */
    ts_objstore *os;
    TT_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_objstore_delete(os, hole.object_key, e.err, sizeof(e.err)), e.err);
    ts_objstore_destroy(os);
    char cache[800];
    snprintf(cache, sizeof(cache), "%s/.chunk-cache", e.data);
    ts_fs_rmtree(cache, NULL, 0);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "m", 0, 0, &p, e.err, sizeof(e.err)), e.err);

    int64_t probes[] = {hole.base_offset, hole.base_offset + 5, hole.last_offset};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint8_t *d = NULL;
        size_t len = 0;
        e.err[0] = '\0';
        ts_status st = ts_partition_read(p, probes[i], 100000, &d, &len, e.err, sizeof(e.err));
        TT_ASSERT_MSG(st == TS_E_OBJECT_MISSING, "read at %lld: %s (%zu bytes) %s",
                      (long long)probes[i], ts_status_name(st), len, e.err);
        TT_ASSERT(d == NULL && len == 0);
        TT_ASSERT_MSG(strstr(e.err, hole.object_key), "error does not name the object: %s", e.err);
    }
    /* A reader from 0 gets the first segment, then the error: never a
     * batch at or beyond the hole. */
    int64_t off = 0;
    ts_status st = TS_OK;
    for (int guard = 0; guard < 1000 && st == TS_OK; guard++) {
        uint8_t *d = NULL;
        size_t len = 0;
        st = ts_partition_read(p, off, 4096, &d, &len, e.err, sizeof(e.err));
        if (st) break;
        TT_ASSERT(len > 0);
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            TT_OKE(ts_batch_validate(d + pos, len - pos, 1 << 24, &h, e.err, sizeof(e.err)), e.err);
            TT_ASSERT_MSG(h.base_offset == off && h.base_offset < hole.base_offset,
                          "batch %lld served, want %lld (hole at %lld)", (long long)h.base_offset,
                          (long long)off, (long long)hole.base_offset);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
    TT_ASSERT_EQ_INT(st, TS_E_OBJECT_MISSING);
    TT_ASSERT_EQ_INT(off, hole.base_offset);
    /* Offsets outside the hole are fine: the next remote segment, local data. */
    TT_ASSERT_EQ_INT(read_all(p, after.base_offset, e.err, sizeof(e.err)), 800 - after.base_offset);
    /* The partition's own view still lists it (it is in the manifest). */
    ts_engine_close(e.eng);
    e.eng = NULL;

    /* tierctl's engine: verify fails naming the object; placement marks it. */
    int vrows = 0;
    TT_ASSERT_EQ_INT(ts_verify_offline(e.cfg, "m", 0, count_verified, &vrows, e.err, sizeof(e.err)),
                     TS_E_OBJECT_MISSING);
    TT_ASSERT_MSG(strstr(e.err, hole.object_key), "verify: %s", e.err);
    TT_OKE(ts_placement_offline(e.cfg, "m", 0, &rows, &n, e.err, sizeof(e.err)), e.err);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        int is_hole = rows[i].base_offset == hole.base_offset;
        TT_ASSERT_MSG((rows[i].location == TS_LOC_MISSING) == is_hole, "row %lld is %s",
                      (long long)rows[i].base_offset, ts_location_name(rows[i].location));
        missing += is_hole;
    }
    TT_ASSERT_EQ_INT(missing, 1);
    TT_ASSERT_STR(ts_location_name(TS_LOC_MISSING), "missing");
    free(rows);
    env_done(&e);
}

/* Names of "<dir>/remote_manifest.json.corrupt-*" files into first (count returned). */
static int count_set_aside(const char *dir, char *first, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "remote_manifest.json.corrupt-", 29)) {
            if (!n++) snprintf(first, len, "%s/%s", dir, de->d_name);
        }
    closedir(d);
    return n;
}

/* Issue 7 item 13: a corrupt local manifest no longer keeps its partition
 * closed when the bucket holds a good copy: the file is set aside (kept),
 * the manifest recovered from the bucket, every offset readable. With no
 * usable copy in the bucket either, that partition fails to open with a
 * clear error and nothing changes, while other partitions open. */
TT_TEST(corrupt_local_manifest_recovers_from_the_bucket)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    const char *topics[] = {"cm", "fine"};
    for (int t = 0; t < 2; t++) {
        ts_partition *p;
        TT_OKE(ts_partition_open(e.eng, topics[t], 0, 1, &p, e.err, sizeof(e.err)), e.err);
        TT_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
        TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
        TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
        TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    }
    ts_engine_close(e.eng);
    e.eng = NULL;

    char dir[800], path[900], aside[1200];
    snprintf(dir, sizeof(dir), "%s/cm-0", e.data);
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);
    static const char junk[] = "{\"format\":1,\"topic\":\"cm\",\"parti";
    TT_OK(ts_fs_write_atomic(path, junk, sizeof(junk) - 1, e.err, sizeof(e.err)));
    /* tierctl's read-only view shows the bucket's manifest meanwhile. */
    ts_segment_info *rows = NULL;
    size_t nrows = 0;
    TT_OKE(ts_placement_offline(e.cfg, "cm", 0, &rows, &nrows, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(nrows >= 2 && rows[0].location == TS_LOC_REMOTE && rows[0].base_offset == 0);
    free(rows);

    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT_EQ_INT(o.log_start_offset, 0);
    TT_ASSERT_EQ_INT(o.log_end_offset, 800);
    TT_ASSERT(o.local_start_offset > 0); /* the early offsets are remote-only */
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
    TT_OKE(append_n(p, 1, 10, 200, 5000, e.err, sizeof(e.err)), e.err);
    /* The damaged file is kept, byte for byte, beside a rebuilt one. */
    TT_ASSERT_EQ_INT(count_set_aside(dir, aside, sizeof(aside)), 1);
    uint8_t *txt = NULL;
    size_t tl = 0;
    TT_OKE(ts_fs_read_all(aside, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(tl == sizeof(junk) - 1 && !memcmp(txt, junk, tl));
    free(txt);
    ts_engine_close(e.eng);
    e.eng = NULL;
    TT_OKE(env_open(&e), e.err); /* the rebuilt local file loads as it is */
    TT_OKE(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 810);
    ts_engine_close(e.eng);
    e.eng = NULL;

    /* Now the bucket's copies are damaged too. */
    TT_OK(ts_fs_write_atomic(path, junk, sizeof(junk) - 1, e.err, sizeof(e.err)));
    char mdir[900];
    snprintf(mdir, sizeof(mdir), "%s/cm/0/manifests", e.bucket);
    DIR *d = opendir(mdir);
    TT_ASSERT(d != NULL);
    struct dirent *de;
    int damaged = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char mp[1200];
        snprintf(mp, sizeof(mp), "%s/%s", mdir, de->d_name);
        TT_OK(ts_fs_write_atomic(mp, "{}", 2, e.err, sizeof(e.err)));
        damaged++;
    }
    closedir(d);
    TT_ASSERT(damaged >= 1);
    TT_OKE(env_open(&e), e.err);
    TT_ASSERT_EQ_INT(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), TS_E_CORRUPT);
    TT_ASSERT_MSG(strstr(e.err, "remote_manifest.json") && strstr(e.err, "cm/0/manifests/") &&
                      strstr(e.err, "nothing was changed"),
                  "message: %s", e.err);
    TT_OKE(ts_fs_read_all(path, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(tl == sizeof(junk) - 1 && !memcmp(txt, junk, tl)); /* left where it was */
    free(txt);
    TT_ASSERT_EQ_INT(count_set_aside(dir, aside, sizeof(aside)), 1); /* only the first one */
    TT_OKE(ts_partition_open(e.eng, "fine", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
    env_done(&e);
}

/* Offsets no manifest entry covers are a gap: a read there continues at the
 * next offset holding data, which is the next remote segment when there is
 * one (before, always the first local offset, skipping remote data). */
TT_TEST(gap_in_the_manifest_skips_to_the_next_remote_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "g", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* Drop the second entry from the local manifest (a hole no entry covers). */
    char path[900];
    snprintf(path, sizeof(path), "%s/g-0/remote_manifest.json", e.data);
    uint8_t *txt = NULL;
    size_t tl = 0;
    TT_OKE(ts_fs_read_all(path, 1 << 24, &txt, &tl, e.err, sizeof(e.err)), e.err);
    ts_segment_meta *segs = NULL;
    size_t n = 0;
    uint64_t version = 0;
    int64_t lso = 0;
    TT_OKE(ts_manifest_from_json((const char *)txt, tl, NULL, 0, NULL, &version, &lso, &segs, &n,
                                 e.err, sizeof(e.err)),
           e.err);
    free(txt);
    TT_ASSERT(n >= 3);
    int64_t hole = segs[1].base_offset, next = segs[2].base_offset;
    ts_segment_meta_clear(&segs[1]);
    memmove(&segs[1], &segs[2], (n - 2) * sizeof(*segs));
    char *json = NULL;
    size_t jl = 0;
    TT_OK(ts_manifest_to_json("g", 0, version + 1, lso, segs, n - 1, &json, &jl));
    ts_index_snapshot_free(segs, n - 1);
    TT_OK(ts_fs_write_atomic(path, json, jl, e.err, sizeof(e.err)));
    free(json);

    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "g", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT(o.local_start_offset > next);
    uint8_t *d = NULL;
    size_t len = 0;
    TT_OKE(ts_partition_read(p, hole + 3, 4096, &d, &len, e.err, sizeof(e.err)), e.err);
    ts_batch_hdr h;
    TT_ASSERT(len > 0);
    TT_OKE(ts_batch_validate(d, len, 1 << 24, &h, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_MSG(h.base_offset == next, "read in the hole at %lld served batch %lld, want %lld",
                  (long long)(hole + 3), (long long)h.base_offset, (long long)next);
    free(d);
    env_done(&e);
}

TT_TEST(recover_everything_from_the_bucket)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", NULL});
    TT_OKE(env_open(&e), e.err);
    const char *keys[] = {"retention.ms", "segment.bytes"};
    const char *vals[] = {"-1", "60000"};
    TT_OKE(ts_topic_set_config(e.eng, "r", keys, vals, 2, e.err, sizeof(e.err)), e.err);
    const char *bad[] = {"segment.bytes"}, *badv[] = {"lots"};
    TT_ASSERT_EQ_INT(ts_topic_set_config(e.eng, "r", bad, badv, 1, e.err, sizeof(e.err)), TS_E_CONFIG);
    TT_ASSERT(strstr(e.err, "lots") != NULL);
    for (int part = 0; part < 2; part++) {
        ts_partition *p;
        TT_OKE(ts_partition_open(e.eng, "r", part, 1, &p, e.err, sizeof(e.err)), e.err);
        TT_OKE(append_n(p, 40, 10, 200, 1000, e.err, sizeof(e.err)), e.err);
        TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
        TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    }
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* Lose the whole data directory: the bucket must describe itself. */
    TT_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_OKE(env_open(&e), e.err);
    int32_t *parts;
    size_t np;
    TT_OKE(ts_topic_partitions(e.eng, "r", &parts, &np, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(np, 2);
    free(parts);
    for (int part = 0; part < 2; part++) {
        ts_partition *p;
        TT_OKE(ts_partition_open(e.eng, "r", part, 0, &p, e.err, sizeof(e.err)), e.err);
        ts_offsets o;
        ts_partition_offsets(p, &o);
        TT_ASSERT_EQ_INT(o.log_end_offset, 400);
        TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 400);
        int64_t off;
        TT_OK(ts_partition_offset_for_time(p, 1020, &off, e.err, sizeof(e.err)));
        /* A timestamp that lives only in the bucket: batch 11 holds ts
         * 1011..1020 at offsets 110..119. */
        TT_ASSERT_EQ_INT(off, 119);
        int64_t first;
        TT_OKE(append_n(p, 1, 10, 200, 5000, e.err, sizeof(e.err)), e.err);
        ts_partition_offsets(p, &o);
        TT_ASSERT_EQ_INT(o.log_end_offset, 410);
        (void)first;
    }
    char tc[900];
    snprintf(tc, sizeof(tc), "%s/.topics/r/topic.properties", e.data);
    uint8_t *txt;
    size_t tl;
    TT_OKE(ts_fs_read_all(tc, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(strstr((char *)txt, "log.segment.bytes=60000") != NULL);
    free(txt);
    ts_partition *none;
    TT_ASSERT_EQ_INT(ts_partition_open(e.eng, "nope", 0, 0, &none, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
    env_done(&e);
}

TT_TEST(total_retention_deletes_objects_and_advances_start)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.retention.bytes", "60000",
                                   "log.local.retention.bytes", "0", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "ret", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 100, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT(o.log_start_offset > 0);
    uint8_t *d;
    size_t len;
    TT_ASSERT_EQ_INT(ts_partition_read(p, 0, 1000, &d, &len, e.err, sizeof(e.err)), TS_E_OFFSET_OUT_OF_RANGE);
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += rows[i].size_bytes;
    TT_ASSERT_MSG(total <= 60000 + 20000, "kept %llu bytes", (unsigned long long)total);
    free(rows);
    char segdir[900];
    snprintf(segdir, sizeof(segdir), "%s/ret/0/segments", e.bucket);
    size_t objs = count_files(segdir, ".zst");
    TT_ASSERT_MSG(objs <= 4, "%zu objects remain in the bucket", objs);
    TT_ASSERT_EQ_INT(read_all(p, o.log_start_offset, e.err, sizeof(e.err)), 1000 - o.log_start_offset);
    env_done(&e);
}

TT_TEST(backpressure_when_uploads_fail)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "40000",
                                   NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?err_rate=1.0&ops=put,writer&seed=1", e.bucket);
    TT_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "bp", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    ts_status st = TS_OK;
    int i;
    for (i = 0; i < 500 && st == TS_OK; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 150, i, i, &len);
        st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err));
        free(b);
    }
    TT_ASSERT_EQ_INT(st, TS_E_BACKPRESSURE);
    TT_ASSERT(ts_status_is_retriable(st));
    TT_ASSERT(strstr(e.err, "log.local.retention.bytes") != NULL);
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/bp-0", e.data);
    uint64_t du = ts_fs_du(dir);
    TT_ASSERT_MSG(du <= 40000 + 20000 + 8192, "local bytes %llu over the bound", (unsigned long long)du);
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), (long)(i - 1) * 10); /* nothing lost */
    env_done(&e);
}

TT_TEST(time_based_roll_uploads_idle_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.ms", "50", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "tr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 3, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    int remote = 0;
    for (int t = 0; t < 500 && !remote; t++) {
        ts_sleep_ms(20);
        ts_segment_info *rows;
        size_t n;
        TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
        remote = n && rows[0].location == TS_LOC_LOCAL_REMOTE;
        free(rows);
    }
    TT_ASSERT_MSG(remote, "the idle segment was never rolled and uploaded");
    env_done(&e);
}

TT_TEST(orphan_objects_are_swept)
{
    env e;
    env_init(&e, NULL);
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "o", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 5, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* What a crash between object put and manifest commit leaves behind. */
    ts_objstore *os;
    TT_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    const char *orphan = "o/0/segments/00000000000000000010-deadbeefdeadbeef.log.zst";
    TT_OKE(ts_objstore_put(os, orphan, "x", 1, 0, e.err, sizeof(e.err)), e.err);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "o", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    uint64_t sz;
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        ts_sleep_ms(20);
        gone = ts_objstore_head(os, orphan, &sz, e.err, sizeof(e.err)) == TS_E_NOT_FOUND;
    }
    TT_ASSERT_MSG(gone, "orphan object was not swept");
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_ASSERT(n >= 1 && rows[0].object_key[0]);
    TT_OKE(ts_objstore_head(os, rows[0].object_key, &sz, e.err, sizeof(e.err)), e.err); /* kept */
    free(rows);
    ts_objstore_destroy(os);
    env_done(&e);
}

/* In a child with its own mount namespace: the data dir on a 1 MiB tmpfs.
 * Exit 0 pass, 1 fail (message on stderr), 77 cannot set up. */
static int disk_full_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0)
        return 77;
    char data[600], filler[700], err[1024];
    snprintf(data, sizeof(data), "%s/data", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    static uint8_t junk[256 * 1024];
    if (ts_fs_write_atomic(filler, junk, sizeof(junk), err, sizeof(err))) return 1;
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", data, NULL, 0);
    ts_config_set(c, "remote.storage.enable", "false", NULL, 0);
    ts_config_set(c, "log.segment.bytes", "200000", NULL, 0);
    ts_engine *eng;
    ts_partition *p;
    if (ts_engine_open(c, &eng, err, sizeof(err)) ||
        ts_partition_open(eng, "full", 0, 1, &p, err, sizeof(err))) {
        fprintf(stderr, "    %s\n", err);
        return 1;
    }
    ts_status st = TS_OK;
    long ok = 0;
    for (int i = 0; i < 10000 && st == TS_OK; i++) {
        size_t len;
        uint8_t *b = mk_batch(5, 200, i, i, &len);
        st = ts_partition_append(p, b, len, NULL, NULL, err, sizeof(err));
        free(b);
        if (st == TS_OK) ok += 5;
    }
    if (st != TS_E_NOSPACE || !strstr(err, "No space")) {
        fprintf(stderr, "    expected TS_E_NOSPACE, got %s: %s\n", ts_status_name(st), err);
        return 1;
    }
    /* Nothing half-written: every acknowledged record reads back, and after
     * a restart too; once space is freed, appends resume where they were. */
    if (read_all(p, 0, err, sizeof(err)) != ok) return 1;
    ts_engine_close(eng);
    unlink(filler);
    if (ts_engine_open(c, &eng, err, sizeof(err)) ||
        ts_partition_open(eng, "full", 0, 0, &p, err, sizeof(err))) {
        fprintf(stderr, "    reopen: %s\n", err);
        return 1;
    }
    if (read_all(p, 0, err, sizeof(err)) != ok) return 1;
    int64_t first;
    size_t len;
    uint8_t *b = mk_batch(5, 200, 1, 1, &len);
    st = ts_partition_append(p, b, len, &first, NULL, err, sizeof(err));
    free(b);
    if (st || first != ok) {
        fprintf(stderr, "    append after freeing space: %s (first %lld, want %ld)\n", err,
                (long long)first, ok);
        return 1;
    }
    ts_engine_close(eng);
    ts_config_destroy(c);
    return 0;
}

TT_TEST(disk_full_is_a_clear_error_and_loses_nothing)
{
    char mnt[512];
    snprintf(mnt, sizeof(mnt), "%s/full-mnt", g_root);
    ts_fs_mkdirs(mnt, NULL, 0);
    fflush(NULL);
    pid_t pid = fork();
    TT_ASSERT(pid >= 0);
    if (pid == 0) _exit(disk_full_child(mnt));
    int ws = 0;
    TT_ASSERT(waitpid(pid, &ws, 0) == pid);
    TT_ASSERT(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) TT_SKIP("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)");
    TT_ASSERT_EQ_INT(WEXITSTATUS(ws), 0);
}

/* Regression (review #2): recovery from a bucket whose manifest retention
 * emptied must continue offsets after the old log end, never reuse them. */
TT_TEST(recovery_after_retention_emptied_manifest_keeps_offsets)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "0",
                                   "log.retention.bytes", "1", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "em", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o1;
    TT_OK(ts_partition_offsets(p, &o1));
    TT_ASSERT_EQ_INT(o1.log_end_offset, 300);
    ts_engine_close(e.eng);
    e.eng = NULL;
    TT_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "em", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o2;
    TT_OK(ts_partition_offsets(p, &o2));
    TT_ASSERT_EQ_INT(o2.log_end_offset, 300);
    int64_t first;
    size_t len;
    uint8_t *b = mk_batch(2, 10, 1, 1, &len);
    TT_OKE(ts_partition_append(p, b, len, &first, NULL, e.err, sizeof(e.err)), e.err);
    free(b);
    TT_ASSERT_EQ_INT(first, 300);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
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
    TT_OK(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)));
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "tb", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    for (int i = 0; i < 300; i++) {
        size_t len;
        uint8_t *b = mk_batch(1, 2000, i, i, &len);
        ts_status st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err));
        free(b);
        TT_ASSERT(st == TS_OK || st == TS_E_BACKPRESSURE);
        if (i % 10 == 0) ts_sleep_ms(15); /* let time rolls happen */
    }
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/tb-0", e.data);
    uint64_t closed = 0;
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    for (size_t i = 0; i < n; i++)
        if (!rows[i].active) closed += rows[i].size_bytes;
    free(rows);
    /* The bound is max(local retention, first closed segment): the first
     * roll is always allowed (no closed bytes yet), every later one waits
     * for uploads. Before the fix this grew to ~600 KB. */
    TT_ASSERT_MSG(closed <= 20000 + 12 * 2100, "closed local bytes %llu over the bound",
                  (unsigned long long)closed);
    env_done(&e);
}

/* Regression (review #4): a handle used after ts_partition_delete fails
 * cleanly (the sanitizer build catches any use of freed segments). */
/* Descriptors of this process open on a file under dir. */
static int fds_under(const char *dir)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        char link[300], target[1024];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(link, target, sizeof(target) - 1);
        if (k <= 0) continue;
        target[k] = 0;
        if (!strncmp(target, dir, strlen(dir))) n++;
    }
    closedir(d);
    return n;
}

TT_TEST(deleted_partition_handle_fails_cleanly)
{
    env e;
    env_init(&e, NULL);
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "del", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 5, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char pdir[800];
    snprintf(pdir, sizeof(pdir), "%s/del-0/", e.data);
    TT_ASSERT(fds_under(pdir) > 0);
    TT_OKE(ts_partition_delete(e.eng, "del", 0, e.err, sizeof(e.err)), e.err);
    /* Regression (issue 7 #7): the segments' descriptors are closed by the
     * delete, not at engine close (a broker undoing a create that ran out
     * of descriptors needs them back). */
    TT_ASSERT_EQ_INT(fds_under(pdir), 0);
    ts_offsets o;
    TT_ASSERT_EQ_INT(ts_partition_offsets(p, &o), TS_E_CLOSED);
    TT_ASSERT_EQ_INT(ts_partition_flush(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    TT_ASSERT_EQ_INT(ts_partition_enforce_retention(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    TT_ASSERT_EQ_INT(ts_partition_roll(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    uint8_t *d;
    size_t len;
    TT_ASSERT_EQ_INT(ts_partition_read(p, 0, 100, &d, &len, e.err, sizeof(e.err)), TS_E_CLOSED);
    ts_sleep_ms(100); /* background ticks run over the deleted partition */
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/del", e.bucket);
    TT_ASSERT(ts_fs_du(dir) == 0); /* its objects and manifests are gone */
    ts_partition *p2;
    TT_ASSERT_EQ_INT(ts_partition_open(e.eng, "del", 0, 0, &p2, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
    env_done(&e);
}

/* Regression (review #5): a segment's max timestamp survives a restart even
 * when it grew between time-index entries (out-of-order CreateTime). */
TT_TEST(max_timestamp_survives_restart)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.index.interval.bytes",
                                   "100", "log.segment.bytes", "1024", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "mt", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    const int64_t ts[] = {100, 500, 50, 60};
    for (int i = 0; i < 4; i++) {
        size_t len;
        uint8_t *b = mk_batch(1, 40, i, ts[i], &len);
        TT_OKE(ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err)), e.err);
        free(b);
    }
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    int64_t off;
    TT_OK(ts_partition_offset_for_time(p, 300, &off, e.err, sizeof(e.err)));
    TT_ASSERT_EQ_INT(off, 1);
    ts_engine_close(e.eng);
    e.eng = NULL;
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "mt", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_offset_for_time(p, 300, &off, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(off, 1);
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_ASSERT(n >= 1 && rows[0].max_timestamp == 500);
    free(rows);
    env_done(&e);
}

/* Rolls do not fsync on the appending thread: closed segments are synced
 * in the background and the recovery point (the first segment not known
 * synced) follows; segments past it are fully validated on open. */
TT_TEST(recovery_point_follows_background_sync)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "4096",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "rp", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 60, 4, 50, 1, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_OK(ts_partition_offsets(p, &o));
    char path[800];
    snprintf(path, sizeof(path), "%s/rp-0/recovery-point", e.data);
    long long rp = -1;
    for (int i = 0; i < 500; i++) { /* the background sync catches up */
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%lld", &rp) != 1) rp = -1;
            fclose(f);
        }
        ts_segment_info *rows;
        size_t n;
        TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
        int64_t active_base = n ? rows[n - 1].base_offset : 0;
        free(rows);
        if (rp == active_base) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT(rp > 0);
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* Pretend nothing was known synced and damage a closed segment in the
     * middle: the full scan on open must find it and cut there. */
    FILE *f = fopen(path, "w");
    fputs("0\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/rp-0/%020d.log", e.data, 0);
    int fd = open(path, O_RDWR);
    uint8_t x;
    TT_ASSERT(pread(fd, &x, 1, 700) == 1);
    x ^= 0x20;
    TT_ASSERT(pwrite(fd, &x, 1, 700) == 1);
    close(fd);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "rp", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    long recs = 0;
    int64_t off = 0;
    for (;;) { /* every batch served is valid; the damaged tail of segment 0 is gone */
        uint8_t *d;
        size_t len;
        TT_OKE(ts_partition_read(p, off, 100000, &d, &len, e.err, sizeof(e.err)), e.err);
        if (!len) break;
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            TT_OKE(ts_batch_validate(d + pos, len - pos, 1 << 20, &h, e.err, sizeof(e.err)), e.err);
            recs += h.records_count;
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
    TT_ASSERT(recs < 240 && recs > 150); /* segment 0 lost its damaged tail only */
    env_done(&e);
}

TT_TEST(bad_config_is_named)
{
    env e;
    env_init(&e, NULL);
    TT_OK(ts_config_set(e.cfg, "remote.storage.url", "", e.err, sizeof(e.err)));
    TT_ASSERT_EQ_INT(env_open(&e), TS_E_CONFIG);
    TT_ASSERT(strstr(e.err, "remote.storage.url") != NULL);
    ts_engine *eng2;
    TT_OK(ts_config_set(e.cfg, "remote.storage.enable", "false", e.err, sizeof(e.err)));
    TT_OKE(env_open(&e), e.err);
    TT_ASSERT_EQ_INT(ts_engine_open(e.cfg, &eng2, e.err, sizeof(e.err)), TS_E_IO);
    TT_ASSERT(strstr(e.err, "in use") != NULL); /* one engine per data directory */
    env_done(&e);
}

/* ---- issue 7: the appending thread never waits on the disk ------------- */

static long long read_recovery_point_file(const char *data, const char *part)
{
    char path[900];
    snprintf(path, sizeof(path), "%s/%s/recovery-point", data, part);
    long long rp = -1;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &rp) != 1) rp = -1;
        fclose(f);
    }
    return rp;
}

static int64_t active_base(ts_partition *p)
{
    ts_segment_info *rows;
    size_t n;
    if (ts_partition_placement(p, &rows, &n, NULL, 0)) return -1;
    int64_t b = n ? rows[n - 1].base_offset : 0;
    free(rows);
    return b;
}

/* Regression (issue 7 #6): with flush.messages=1 (which any client may set
 * through CreateTopics) the appending thread — the broker's network loop —
 * performs no fsync and no unlink: the sync worker makes the records
 * durable (observed: unflushed records drop to 0, the recovery point
 * reaches the active segment) and local retention's deletions run on a
 * worker. An explicit flush (acks=-1) stays synchronous and durable. */
TT_TEST(flush_messages_and_deletes_stay_off_the_appending_thread)
{
    env e;
    env_init(&e, (const char *[]){"log.flush.interval.messages", "1", "log.flush.interval.ms",
                                   "3600000", "log.segment.bytes", "20000",
                                   "log.local.retention.bytes", "20000", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "fm", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint64_t s0, u0, s1, u1;
    ts_fs_thread_io_counts(&s0, &u0);
    for (int i = 0; i < 120; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 150, i, i, &len);
        ts_status st;
        int tries = 0;
        while ((st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err))) ==
                   TS_E_BACKPRESSURE && tries++ < 5000)
            ts_sleep_ms(2);
        free(b);
        TT_OKE(st, e.err);
    }
    ts_fs_thread_io_counts(&s1, &u1);
    TT_ASSERT_MSG(s1 == s0 && u1 == u0, "the appending thread ran %llu fsync(s) and %llu unlink(s)",
                  (unsigned long long)(s1 - s0), (unsigned long long)(u1 - u0));
    /* ...and yet the data becomes durable, through the worker. */
    ts_engine_stats es;
    for (int t = 0; t < 1000; t++) {
        ts_engine_stats_get(e.eng, &es);
        if (es.unflushed_records == 0) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT_EQ_INT(es.unflushed_records, 0);
    long long rp = -1;
    for (int t = 0; t < 1000; t++) {
        rp = read_recovery_point_file(e.data, "fm-0");
        if (rp == active_base(p)) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT_EQ_INT(rp, active_base(p));
    TT_ASSERT(rp > 0);
    /* Segments that left local disk are gone from it (the worker unlinked). */
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/fm-0", e.data);
    size_t logs = 99;
    for (int t = 0; t < 1000; t++) {
        TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
        if ((logs = count_files(dir, ".log")) <= 3) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT_MSG(logs <= 3, "%zu segment files left locally", logs);
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 1200);
    /* An explicit flush is synchronous: it fsyncs on the caller's thread. */
    TT_OKE(append_n(p, 1, 1, 10, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_flush(p, e.err, sizeof(e.err)), e.err);
    ts_engine_stats_get(e.eng, &es);
    TT_ASSERT_EQ_INT(es.unflushed_records, 0);
    env_done(&e);
}

/* The same without remote storage: the sync worker exists for every engine. */
TT_TEST(flush_messages_off_the_appending_thread_without_remote_storage)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.flush.interval.messages",
                                   "1", "log.flush.interval.ms", "3600000", "log.segment.bytes",
                                   "20000", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "fl", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint64_t s0, s1;
    ts_fs_thread_io_counts(&s0, NULL);
    TT_OKE(append_n(p, 60, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    ts_fs_thread_io_counts(&s1, NULL);
    TT_ASSERT_MSG(s1 == s0, "the appending thread ran %llu fsync(s)",
                  (unsigned long long)(s1 - s0));
    ts_engine_stats es;
    for (int t = 0; t < 1000; t++) {
        ts_engine_stats_get(e.eng, &es);
        if (es.unflushed_records == 0) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT_EQ_INT(es.unflushed_records, 0);
    long long rp = -1;
    for (int t = 0; t < 1000; t++) {
        if ((rp = read_recovery_point_file(e.data, "fl-0")) == active_base(p)) break;
        ts_sleep_ms(10);
    }
    TT_ASSERT(rp > 0 && rp == active_base(p));
    env_done(&e);
}

/* Found while moving unlinks to the worker: a deleted partition's segments
 * were unlinked by name at their last unref (engine close), which removed
 * the files of the partition created again under the same name. */
TT_TEST(recreated_partition_survives_the_old_ones_close)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "again", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_delete(e.eng, "again", 0, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_open(e.eng, "again", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    ts_engine_close(e.eng);
    e.eng = NULL;
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "again", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 300);
    env_done(&e);
}

/* Upload progress of the partition: how many closed segments are remote. */
static int remote_closed(ts_partition *p, int *closed)
{
    ts_segment_info *rows;
    size_t n;
    int r = 0;
    *closed = 0;
    if (ts_partition_placement(p, &rows, &n, NULL, 0)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].active) continue;
        (*closed)++;
        if (rows[i].location != TS_LOC_LOCAL) r++;
    }
    free(rows);
    return r;
}

/* Regression (issue 7 #15): a closed segment is uploaded as soon as it
 * closes, and a failed attempt is retried after its backoff, never only on
 * the next periodic tick (here an hour away). */
TT_TEST(rolled_segment_uploads_without_waiting_for_the_tick)
{
    env e;
    env_init(&e, (const char *[]){"remote.log.manager.task.interval.ms", "3600000", NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?ops=put,writer&fail_next=1", e.bucket);
    TT_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "up", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    for (int seg = 1; seg <= 3; seg++) {
        TT_OKE(append_n(p, 5, 2, 50, seg * 10, e.err, sizeof(e.err)), e.err);
        TT_OKE(roll(p, e.err, sizeof(e.err)), e.err); /* admin roll; size rolls go the same way */
        int closed = 0, remote = 0;
        for (int t = 0; t < 1000; t++) { /* generous: 10 s, the tick is 1 h */
            remote = remote_closed(p, &closed);
            if (remote == closed) break;
            ts_sleep_ms(10);
        }
        TT_ASSERT_MSG(remote == seg && closed == seg,
                      "segment %d: %d of %d closed segments uploaded", seg, remote, closed);
    }
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
    TT_OKE(ts_config_set(e.cfg, "retention.local.target.capacity.bytes", "100000", e.err,
                         sizeof(e.err)), e.err);
    TT_OKE(env_open(&e), e.err);
    ts_partition *ps[BUDGET_PARTS];
    for (int i = 0; i < BUDGET_PARTS; i++)
        TT_OKE(ts_partition_open(e.eng, "bud", i, 1, &ps[i], e.err, sizeof(e.err)), e.err);
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
            TT_OKE(st, e.err);
            ts_engine_stats es;
            ts_engine_stats_get(e.eng, &es);
            if (es.local_bytes > peak) peak = es.local_bytes;
        }
    }
    printf("    local budget 100000: peak %llu local bytes, %d appends refused meanwhile\n",
           (unsigned long long)peak, refused);
    TT_ASSERT_MSG(peak <= 100000, "local bytes peaked at %llu", (unsigned long long)peak);
    for (int i = 0; i < BUDGET_PARTS; i++) {
        TT_OKE(roll(ps[i], e.err, sizeof(e.err)), e.err);
        TT_OKE(ts_partition_wait_uploaded(ps[i], 30000, e.err, sizeof(e.err)), e.err);
    }
    ts_engine_stats es;
    ts_engine_stats_get(e.eng, &es);
    TT_ASSERT_MSG(es.local_bytes <= 100000, "%llu local bytes", (unsigned long long)es.local_bytes);
    uint64_t du = 0;
    for (int i = 0; i < BUDGET_PARTS; i++) {
        char dir[800];
        snprintf(dir, sizeof(dir), "%s/bud-%d", e.data, i);
        ts_segment_info *rows;
        size_t n;
        TT_OK(ts_partition_placement(ps[i], &rows, &n, e.err, sizeof(e.err)));
        int oldest_remote = n > 0 && rows[0].location == TS_LOC_REMOTE;
        free(rows);
        TT_ASSERT(oldest_remote); /* the oldest data left local disk */
        TT_ASSERT_EQ_INT(read_all(ps[i], 0, e.err, sizeof(e.err)), 1500);
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
    TT_ASSERT_MSG(du <= 100000, "%llu segment bytes on disk", (unsigned long long)du);
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
    TT_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_config_set(e.cfg, "retention.local.target.capacity.bytes", "60000", e.err,
                         sizeof(e.err)), e.err);
    TT_OKE(env_open(&e), e.err);
    ts_partition *ps[3];
    long ok[3] = {0};
    for (int i = 0; i < 3; i++)
        TT_OKE(ts_partition_open(e.eng, "bf", i, 1, &ps[i], e.err, sizeof(e.err)), e.err);
    ts_status last = TS_OK;
    for (int b = 0; b < 200; b++)
        for (int i = 0; i < 3; i++) {
            size_t len;
            uint8_t *batch = mk_batch(10, 150, b, b, &len);
            ts_status st = ts_partition_append(ps[i], batch, len, NULL, NULL, e.err, sizeof(e.err));
            free(batch);
            TT_ASSERT(st == TS_OK || st == TS_E_BACKPRESSURE);
            if (st == TS_OK) ok[i]++;
            else last = st;
        }
    TT_ASSERT_EQ_INT(last, TS_E_BACKPRESSURE);
    TT_ASSERT(strstr(e.err, "retention.local.target.capacity.bytes") != NULL);
    ts_engine_stats es;
    ts_engine_stats_get(e.eng, &es);
    TT_ASSERT_MSG(es.local_bytes <= 60000, "%llu local bytes", (unsigned long long)es.local_bytes);
    for (int i = 0; i < 3; i++) {
        TT_ASSERT(ok[i] > 0);
        TT_ASSERT_EQ_INT(read_all(ps[i], 0, e.err, sizeof(e.err)), ok[i] * 10); /* nothing lost */
    }
    env_done(&e);
}

/* mkdtemp(3) interposed: counts the temporary directories the engine's
 * offline views make (the read-only placement view made one under /tmp to
 * let the index write a manifest it then threw away). */
static atomic_int g_mkdtemps;
char *mkdtemp(char *tmpl)
{
    static char *(*real)(char *);
    if (!real) real = (char *(*)(char *))dlsym(RTLD_NEXT, "mkdtemp");
    atomic_fetch_add(&g_mkdtemps, 1);
    return real(tmpl);
}

/* The read-only placement view of a partition only the bucket holds writes
 * nothing: no temporary directory, no local manifest, no partition dir. */
TT_TEST(offline_placement_writes_nothing)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "ro", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 20, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    ts_engine_close(e.eng);
    e.eng = NULL;
    char pdir[700];
    snprintf(pdir, sizeof(pdir), "%s/ro-0", e.data);
    TT_OK(ts_fs_rmtree(pdir, e.err, sizeof(e.err)));
    int before = atomic_load(&g_mkdtemps);
    ts_segment_info *rows = NULL;
    size_t n = 0;
    TT_OKE(ts_placement_offline(e.cfg, "ro", 0, &rows, &n, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(n >= 1 && rows[0].location == TS_LOC_REMOTE);
    free(rows);
    TT_ASSERT_EQ_INT(atomic_load(&g_mkdtemps) - before, 0);
    struct stat sb;
    TT_ASSERT_MSG(stat(pdir, &sb) != 0, "%s was created by a read-only view", pdir);
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
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "rerr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 40, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    const char *k[] = {"retention.bytes"}, *v[] = {"1"};
    TT_OKE(ts_topic_set_config(e.eng, "rerr", k, v, 1, e.err, sizeof(e.err)), e.err);
    char mdir[900], aside[920];
    snprintf(mdir, sizeof(mdir), "%s/rerr/0/manifests", e.bucket);
    snprintf(aside, sizeof(aside), "%s.aside", mdir);
    TT_ASSERT(rename(mdir, aside) == 0);
    FILE *f = fopen(mdir, "w");
    TT_ASSERT(f != NULL);
    fclose(f);
    ts_offsets before, after;
    TT_OK(ts_partition_offsets(p, &before));
    ts_status st = ts_partition_enforce_retention(p, e.err, sizeof(e.err));
    TT_ASSERT_MSG(st != TS_OK, "retention reported TS_OK with the manifest unwritable");
    TT_ASSERT_MSG(strstr(e.err, "rerr-0") && strstr(e.err, "manifest"), "message: %s", e.err);
    TT_ASSERT(unlink(mdir) == 0 && rename(aside, mdir) == 0);
    TT_OKE(ts_partition_enforce_retention(p, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_offsets(p, &after));
    TT_ASSERT(after.log_start_offset > before.log_start_offset);
    env_done(&e);
}

/* ------------------------------------------------------------------------
 * Format-2 manifests at scale (issue 9)
 * ------------------------------------------------------------------------ */

static int count_under_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (*(int *)opaque)++;
    return 0;
}

static int count_under(const char *url, const char *prefix)
{
    ts_objstore *os;
    char err[256];
    int n = 0;
    if (ts_objstore_open(url, NULL, &os, err, sizeof(err))) return -1;
    ts_objstore_list(os, prefix, count_under_cb, &n, err, sizeof(err));
    ts_objstore_destroy(os);
    return n;
}

/* Reads from `from` to the end and checks every batch byte for byte against
 * mk_batch(recs, size, k, ts0 + k) (batch k at offset k * recs). Returns the
 * records read or -1 (why in err). */
static long read_check(ts_partition *p, int64_t from, int recs, size_t size, int64_t ts0,
                       char *err, size_t errlen)
{
    int64_t off = from;
    long n = 0;
    for (;;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 100000, &d, &len, err, errlen)) return -1;
        if (!len) return n;
        for (size_t pos = 0; pos < len;) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 1 << 24, &h, err, errlen)) {
                free(d);
                return -1;
            }
            size_t sz = ts_batch_total_size(&h), glen;
            int k = (int)(h.base_offset / recs);
            uint8_t *g = mk_batch(recs, size, k, ts0 + k, &glen);
            ts_batch_set_base_offset(g, h.base_offset);
            int same = h.base_offset % recs == 0 && glen == sz && !memcmp(g, d + pos, sz) &&
                       h.base_offset <= (off > from ? off : from);
            free(g);
            if (!same) {
                snprintf(err, errlen, "batch at %lld (reading %lld) is not batch %d as written",
                         (long long)h.base_offset, (long long)off, k);
                free(d);
                return -1;
            }
            n += (long)(ts_batch_last_offset(&h) + 1 - (off > h.base_offset ? off : h.base_offset));
            off = ts_batch_last_offset(&h) + 1;
            pos += sz;
        }
        free(d);
    }
}

/* Many more segments than one manifest head holds (3 per head here): every
 * offset reads back cold after a restart, after losing the data directory
 * and after retention removed old pieces; the orphan sweep (which runs on
 * the first ticks) leaves every piece-named object alone. */
TT_TEST(many_pieces_read_back_after_restart_loss_and_retention)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "6000", "log.local.retention.bytes", "0",
                                   "remote.log.manifest.head.segments", "3",
                                   "remote.log.manifest.keep.versions", "1", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "pc", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 300, 10, 50, 1000, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 60000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT_MSG(o.local_start_offset >= 2900, "local start %lld", (long long)o.local_start_offset);
    char prefix[TS_INDEX_KEY_MAX];
    ts_index_piece_prefix("pc", 0, prefix, sizeof(prefix));
    int pieces = count_under(e.url, prefix);
    TT_ASSERT_MSG(pieces >= 8, "only %d pieces", pieces);
    TT_ASSERT_EQ_INT(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)), 3000);
    ts_engine_close(e.eng);
    e.eng = NULL;

    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_sleep_ms(300); /* the background ticks, and the one orphan sweep */
    TT_ASSERT_MSG(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)) == 3000, "restart: %s", e.err);
    ts_engine_close(e.eng);
    e.eng = NULL;

    TT_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_sleep_ms(300);
    TT_ASSERT_MSG(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)) == 3000, "from the bucket: %s",
                  e.err);
    TT_ASSERT_EQ_INT(count_under(e.url, prefix), pieces);

    /* Total retention down to ~1/3: whole pieces leave the head and the
     * bucket; the rest still reads, also from the bucket alone. */
    const char *k[] = {"retention.bytes"}, *v[] = {"70000"};
    TT_OKE(ts_topic_set_config(e.eng, "pc", k, v, 1, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_partition_offsets(p, &o);
    int64_t start = o.log_start_offset;
    TT_ASSERT_MSG(start >= 1500, "log start %lld", (long long)start);
    int left = count_under(e.url, prefix);
    TT_ASSERT_MSG(left < pieces - 3, "%d of %d pieces left", left, pieces);
    TT_ASSERT_EQ_INT(read_check(p, start, 10, 50, 1000, e.err, sizeof(e.err)), 3000 - start);
    ts_engine_close(e.eng);
    e.eng = NULL;
    TT_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_start_offset, start);
    TT_ASSERT_MSG(read_check(p, start, 10, 50, 1000, e.err, sizeof(e.err)) == 3000 - start,
                  "after retention, from the bucket: %s", e.err);
    env_done(&e);
}

/* A bucket written by the format-1 engine (tests/index/fixtures, see
 * make_format1.c there: manifests with inline chunk tables, objects without
 * a chunk-table frame) opens from the bucket alone and reads every offset;
 * the next commit moves it to format 2 (legacy entries into pieces, their
 * chunk tables inline), which again reads everything from the bucket. */
TT_TEST(format1_bucket_reads_and_migrates)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "150000", "log.local.retention.bytes", "0",
                                   "remote.storage.chunk.bytes", "65536",
                                   "remote.log.manifest.head.segments", "3", NULL});
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp -r %s/tests/index/fixtures/format1-bucket/legacy %s/",
             e.bucket, TS_SOURCE_DIR, e.bucket);
    TT_ASSERT(system(cmd) == 0);
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "legacy", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_ASSERT_EQ_INT(o.log_end_offset, 7000);
    TT_ASSERT_MSG(read_check(p, 0, 10, 200, 1000000, e.err, sizeof(e.err)) == 7000, "format 1: %s",
                  e.err);
    int64_t off = -1;
    TT_OK(ts_partition_offset_for_time(p, 1000000 + 350, &off, e.err, sizeof(e.err)));
    TT_ASSERT_MSG(off >= 3400 && off <= 3509, "time lookup gave %lld", (long long)off);
    /* The next commit: 100 more batches (k = 700..799), uploaded. */
    for (int i = 700; i < 800; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 200, i, 1000000 + i, &len);
        TT_OKE(ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err)), e.err);
        free(b);
    }
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 60000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_engine_close(e.eng);
    e.eng = NULL;
    /* The newest head is format 2 and its pieces hold the legacy entries
     * with their chunk tables inline. */
    ts_objstore *os;
    TT_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    ts_index *idx;
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s/inspect", e.dir);
    TT_OKE(ts_index_create("legacy", 0, tmp, os, &idx, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_index_load_remote(idx, e.err, sizeof(e.err)), e.err);
    ts_index_summary sum;
    ts_index_summary_get(idx, &sum);
    char key[TS_INDEX_KEY_MAX];
    ts_index_manifest_key("legacy", 0, sum.version, key, sizeof(key));
    uint8_t *data;
    size_t dl;
    TT_OKE(ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &data, &dl, e.err, sizeof(e.err)), e.err);
    ts_manifest_doc d;
    TT_OKE(ts_manifest_parse((const char *)data, dl, 0, &d, e.err, sizeof(e.err)), e.err);
    free(data);
    TT_ASSERT_EQ_INT(d.format, 2);
    TT_ASSERT_MSG(d.npieces >= 4, "%zu pieces", d.npieces);
    TT_OKE(ts_objstore_get(os, d.pieces[0].key, 0, TS_OBJSTORE_TO_END, &data, &dl, e.err,
                           sizeof(e.err)),
           e.err);
    TT_ASSERT(strstr((char *)data, "\"chunks\":[") != NULL); /* legacy: inline */
    free(data);
    ts_index_stats ist;
    ts_index_stats_get(idx, &ist);
    TT_ASSERT_EQ_INT(ist.legacy_entries, 11);
    ts_manifest_doc_free(&d);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);

    TT_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "legacy", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_MSG(read_check(p, 0, 10, 200, 1000000, e.err, sizeof(e.err)) == 8000,
                  "after migration, from the bucket: %s", e.err);
    env_done(&e);
}

/* ts_segment_list: only names of the 20-digit ".log" form, ascending; an
 * unlistable directory is TS_E_IO, an empty one no bases. */
TT_TEST(segment_list_sorts_and_filters)
{
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/seglist-%d", g_root, ++g_case);
    TT_ASSERT(mkdir(dir, 0755) == 0);
    int64_t *bases = NULL;
    size_t n = 99;
    char err[256];
    TT_OKE(ts_segment_list(dir, &bases, &n, err, sizeof(err)), err);
    TT_ASSERT(n == 0 && bases == NULL);
    const char *names[] = {"00000000000000000300.log", "00000000000000000007.log",
                           "00000000000000000300.index", "0000000000000000001.log", "x.log",
                           "00000000000000000042.log"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        TT_ASSERT(f != NULL);
        fclose(f);
    }
    TT_OKE(ts_segment_list(dir, &bases, &n, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(n, 3);
    TT_ASSERT(bases[0] == 7 && bases[1] == 42 && bases[2] == 300);
    free(bases);
    snprintf(path, sizeof(path), "%s/absent", dir);
    TT_ASSERT(ts_segment_list(path, &bases, &n, err, sizeof(err)) == TS_E_IO);
    TT_ASSERT(strstr(err, "cannot list") != NULL);
}

/* Kafka's DeleteRecords (ts_partition_delete_records): the start moves inside
 * a remote segment, the objects wholly below leave the bucket, reads below
 * are out of range, and the start survives a restart and a lost data dir. */
TT_TEST(delete_records_moves_the_start_everywhere)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "100000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "dr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 100, 10, 300, 1, e.err, sizeof(e.err)), e.err);
    TT_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_segment_info *rows;
    size_t n;
    TT_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_ASSERT(n >= 3 && rows[0].location == TS_LOC_REMOTE && rows[1].location == TS_LOC_REMOTE);
    int64_t target = rows[1].base_offset + 3, low = -1, end = 0;
    char gone[1400], kept[1400];
    snprintf(gone, sizeof(gone), "%s/%s", e.bucket, rows[0].object_key);
    snprintf(kept, sizeof(kept), "%s/%s", e.bucket, rows[1].object_key);
    free(rows);
    TT_ASSERT(access(gone, F_OK) == 0 && access(kept, F_OK) == 0);
    TT_OKE(ts_partition_delete_records(p, target, &low, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(low, target);
    TT_ASSERT(access(gone, F_OK) != 0 && access(kept, F_OK) == 0);
    ts_offsets o;
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT_EQ_INT(o.log_start_offset, target);
    end = o.log_end_offset;
    uint8_t *d = NULL;
    size_t len = 0;
    TT_ASSERT_EQ_INT(ts_partition_read(p, target - 1, 65536, &d, &len, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    TT_OKE(ts_partition_read(p, target, 65536, &d, &len, e.err, sizeof(e.err)), e.err);
    TT_ASSERT(len > 0);
    free(d);
    /* below the start: no change; past the end: refused, no change */
    TT_OKE(ts_partition_delete_records(p, 1, &low, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(low, target);
    TT_ASSERT_EQ_INT(ts_partition_delete_records(p, end + 1, &low, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    ts_engine_close(e.eng);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "dr", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT_EQ_INT(o.log_start_offset, target);
    ts_engine_close(e.eng);
    TT_OK(ts_fs_rmtree(e.data, NULL, 0)); /* lost data dir: the manifest has it */
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "dr", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT_EQ_INT(o.log_start_offset, target);
    TT_ASSERT_EQ_INT(ts_partition_read(p, target - 1, 65536, &d, &len, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    env_done(&e);
}

/* Without remote storage the start is kept in the partition directory. */
TT_TEST(delete_records_without_remote_storage)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_OKE(ts_partition_open(e.eng, "dl", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_OKE(append_n(p, 10, 10, 100, 1, e.err, sizeof(e.err)), e.err);
    int64_t low = -1;
    TT_OKE(ts_partition_delete_records(p, -1, &low, e.err, sizeof(e.err)), e.err);
    TT_ASSERT_EQ_INT(low, 100); /* -1: the log end */
    ts_engine_close(e.eng);
    TT_OKE(env_open(&e), e.err);
    TT_OKE(ts_partition_open(e.eng, "dl", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_OK(ts_partition_offsets(p, &o));
    TT_ASSERT_EQ_INT(o.log_start_offset, 100);
    TT_ASSERT_EQ_INT(o.log_end_offset, 100);
    env_done(&e);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "tiering");
    TT_RUN(segment_list_sorts_and_filters);
    TT_RUN(append_rejects_bad_batches_atomically);
    TT_RUN(enforce_retention_returns_its_error);
    TT_RUN(offline_placement_writes_nothing);
    TT_RUN(append_refuses_batches_whose_records_do_not_parse);
    TT_RUN(reads_roll_and_ranges);
    TT_RUN(recovery_truncates_torn_tail_and_rebuilds_indexes);
    TT_RUN(uploaded_object_is_plain_zstd_of_the_segment);
    TT_RUN(cold_reads_verify_and_name_the_object);
    TT_RUN(missing_object_is_an_error_not_a_gap);
    TT_RUN(corrupt_local_manifest_recovers_from_the_bucket);
    TT_RUN(gap_in_the_manifest_skips_to_the_next_remote_segment);
    TT_RUN(recover_everything_from_the_bucket);
    TT_RUN(total_retention_deletes_objects_and_advances_start);
    TT_RUN(backpressure_when_uploads_fail);
    TT_RUN(time_based_roll_uploads_idle_segment);
    TT_RUN(orphan_objects_are_swept);
    TT_RUN(disk_full_is_a_clear_error_and_loses_nothing);
    TT_RUN(recovery_after_retention_emptied_manifest_keeps_offsets);
    TT_RUN(time_rolls_respect_the_local_bound);
    TT_RUN(deleted_partition_handle_fails_cleanly);
    TT_RUN(max_timestamp_survives_restart);
    TT_RUN(recovery_point_follows_background_sync);
    TT_RUN(bad_config_is_named);
    TT_RUN(flush_messages_and_deletes_stay_off_the_appending_thread);
    TT_RUN(flush_messages_off_the_appending_thread_without_remote_storage);
    TT_RUN(recreated_partition_survives_the_old_ones_close);
    TT_RUN(rolled_segment_uploads_without_waiting_for_the_tick);
    TT_RUN(default_local_retention_is_bounded);
    TT_RUN(local_budget_trims_uploaded_segments_across_partitions);
    TT_RUN(local_budget_never_deletes_unuploaded_data);
    TT_RUN(many_pieces_read_back_after_restart_loss_and_retention);
    TT_RUN(format1_bucket_reads_and_migrates);
    TT_RUN(delete_records_moves_the_start_everywhere);
    TT_RUN(delete_records_without_remote_storage);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
