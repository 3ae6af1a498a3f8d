/*
 * test_plugin_read_file.c — ABI minor 5's read_file through
 * libtierstore-plugin.so, as the broker calls it: the range holds exactly
 * the bytes read returns cut below stop_offset (many offsets, sizes and
 * stops, across segments); the log end, out-of-range and cold offsets
 * (TSP_E_NOT_FOUND: the host reads those); a minor-4 table has no entry; a
 * range's bytes survive retention removing its segment (the file unlinked
 * while the fd is held) and, on a replicated partition, a follower's
 * truncate: the range never passes the high watermark and the truncate
 * never goes below it, so new bytes written after it land elsewhere.
 *
 * Only include/tierstore_plugin.h describes the plugin; common/batch.h
 * builds and parses batches (test scaffolding). `--plugin PATH`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "tests/broker-plugin/plugin_host.h"

static tsp_status open_engine(tsp_engine **eng, const char *sub, const char *local_ret_ms,
                              char *err, size_t errlen)
{
    char dir[600], url[720];
    snprintf(dir, sizeof dir, "%s/%s-data", g_dir, sub);
    snprintf(url, sizeof url, "file://%s/%s-bucket", g_dir, sub);
    tsp_property props[] = {
        {"log.dirs", dir},
        {"remote.storage.url", url},
        {"log.segment.bytes", "16384"},
        {"log.index.interval.bytes", "1024"},
        {"log.local.retention.bytes", "-1"},
        {"log.local.retention.ms", local_ret_ms},
        {"remote.log.manager.task.interval.ms", "100"},
    };
    return load()->engine_open(props, sizeof props / sizeof props[0], 0, eng, err, errlen);
}

/* One batch of n records of vlen bytes each; baseOffset base, epoch. */
static uint8_t *make_batch(int n, size_t vlen, int64_t base, int32_t epoch, char fillc,
                           size_t *len)
{
    const void *vals[64];
    size_t lens[64];
    static char v[2048];
    memset(v, fillc, sizeof v);
    for (int i = 0; i < n; i++) {
        vals[i] = v;
        lens[i] = vlen;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    uint8_t *b = NULL;
    if (ts_batch_build(vals, lens, n, ts, &b, len) != TS_OK) return NULL;
    ts_batch_set_base_offset(b, base);
    ts_batch_set_leader_epoch(b, epoch);
    return b;
}

/* The bytes of a range, read back from its fd. */
static uint8_t *range_bytes(const tsp_file_range *r)
{
    uint8_t *d = malloc(r->length ? r->length : 1);
    if (!d) return NULL;
    if (pread(r->fd, d, r->length, (off_t)r->file_offset) != (ssize_t)r->length) {
        free(d);
        return NULL;
    }
    return d;
}

/* Whole batches of d whose last offset < stop: the broker's cut. */
static size_t cut_below(const uint8_t *d, size_t len, int64_t stop, int64_t *next)
{
    size_t pos = 0;
    ts_batch_hdr h;
    while (pos + TS_BATCH_HEADER_SIZE <= len &&
           ts_batch_parse_header(d + pos, len - pos, 1 << 24, &h, NULL, 0) == TS_OK) {
        size_t sz = ts_batch_total_size(&h);
        if (sz > len - pos || ts_batch_last_offset(&h) >= stop) break;
        pos += sz;
        *next = ts_batch_last_offset(&h) + 1;
    }
    return pos;
}

static tsp_file_range range_init(void)
{
    tsp_file_range r;
    memset(&r, 0x5a, sizeof r);
    r.struct_size = sizeof r;
    return r;
}

TT_TEST(entry_present_minor4_absent)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT(pl->abi_minor >= 5);
    TT_ASSERT(TSP_HAS(pl, read_file));
    tsp_plugin old = *pl; /* a minor-4 plugin's table ends before read_file */
    old.struct_size = (uint32_t)offsetof(tsp_plugin, read_file);
    old.abi_minor = 4;
    TT_ASSERT(!TSP_HAS(&old, read_file));
}

/* Batches of 1..17 records of 10..1009 bytes: sizes vary, several segments. */
static tsp_status fill_varied(tsp_partition *p, int nbatches, int64_t *leo, char *err,
                              size_t errlen)
{
    for (int i = 0; i < nbatches; i++) {
        size_t len;
        uint8_t *b = make_batch(1 + i % 17, 10 + (size_t)(i * 37) % 1000, 0, 0, (char)('a' + i % 26), &len);
        if (!b) return TSP_E_NOMEM;
        int64_t first, last;
        tsp_status st = load()->append(p, b, len, &first, &last, err, errlen);
        free(b);
        if (st) return st;
        *leo = last + 1;
    }
    return TSP_OK;
}

TT_TEST(same_bytes_as_read)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    uint8_t *d = NULL, *rb = NULL;
    int64_t leo = 0;
    int compared = 0, nonempty = 0;
    TT_OKE(open_engine(&eng, "same", "-2", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t", 0, TSP_PART_CREATE, &p, err, sizeof err), err);
    TT_CHECK_OKE(fill_varied(p, 120, &leo, err, sizeof err), err);
    size_t nseg = 0, rs = 0;
    tsp_segment_info *rows = NULL;
    TT_CHECK_OKE(pl->placement(p, &rows, &nseg, &rs, err, sizeof err), err);
    pl->buffer_free(rows);
    TT_CHECK_MSG(nseg >= 4, "expected several segments, got %zu", nseg);
    static const size_t maxes[] = {1, 200, 3000, 20000, 1 << 20};
    for (int64_t off = 0; off < leo; off += 1 + off % 7) {
        const int64_t stops[] = {leo, off + 1, off + 9, off + 40, INT64_MAX};
        for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++)
            for (size_t si = 0; si < sizeof stops / sizeof stops[0]; si++) {
                int64_t stop = stops[si];
                size_t dlen = 0;
                TT_CHECK_OKE(pl->read(p, off, maxes[mi], &d, &dlen, err, sizeof err), err);
                int64_t want_next = off;
                size_t want = cut_below(d, dlen, stop, &want_next);
                tsp_file_range r = range_init();
                TT_CHECK_OKE(pl->read_file(p, off, maxes[mi], stop, &r, err, sizeof err), err);
                TT_CHECK_MSG(r.length == want, "offset %lld max %zu stop %lld: range %llu, read %zu",
                             (long long)off, maxes[mi], (long long)stop,
                             (unsigned long long)r.length, want);
                TT_CHECK_EQ_INT(r.next_offset, want_next);
                if (want) {
                    TT_CHECK(r.fd >= 0);
                    TT_CHECK((rb = range_bytes(&r)) != NULL);
                    TT_CHECK(memcmp(rb, d, want) == 0);
                    TT_CHECK_EQ_INT(r.first_offset, (int64_t)ts_rd64(d));
                    free(rb);
                    rb = NULL;
                    close(r.fd);
                    nonempty++;
                } else {
                    TT_CHECK_EQ_INT(r.fd, -1);
                }
                pl->buffer_free(d);
                d = NULL;
                compared++;
            }
    }
    TT_CHECK(nonempty > 100 && compared > nonempty);
    /* The log end: nothing; past it: out of range. */
    tsp_file_range r = range_init();
    TT_CHECK_OKE(pl->read_file(p, leo, 1024, INT64_MAX, &r, err, sizeof err), err);
    TT_CHECK(r.length == 0 && r.fd == -1 && r.next_offset == leo);
    r = range_init();
    TT_CHECK_EQ_INT(pl->read_file(p, leo + 1, 1024, INT64_MAX, &r, err, sizeof err),
                    TSP_E_OFFSET_OUT_OF_RANGE);
    TT_CHECK_EQ_INT(r.fd, -1);
    /* A struct too small for the fields: refused, not overrun. */
    r = range_init();
    r.struct_size = 8;
    TT_CHECK_EQ_INT(pl->read_file(p, 0, 1024, INT64_MAX, &r, err, sizeof err), TSP_E_INVAL);
done:
    free(rb);
    pl->buffer_free(d);
    pl->engine_close(eng);
}

/* A count of the segment files (*.log) in the partition's directory. */
static int count_logs(const char *sub)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls '%s/%s-data/t-0/' 2>/dev/null | grep -c '\\.log$'", g_dir, sub);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

TT_TEST(range_survives_retention_and_cold_is_not_found)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    uint8_t *before = NULL, *after = NULL, *d = NULL;
    int64_t leo = 0;
    TT_OKE(open_engine(&eng, "ret", "-2", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t", 0, TSP_PART_CREATE, &p, err, sizeof err), err);
    TT_CHECK_OKE(fill_varied(p, 60, &leo, err, sizeof err), err);
    int logs = count_logs("ret");
    TT_CHECK_MSG(logs >= 3, "expected several segment files, found %d", logs);
    tsp_file_range r = range_init();
    TT_CHECK_OKE(pl->read_file(p, 0, 1 << 20, INT64_MAX, &r, err, sizeof err), err);
    TT_CHECK(r.length > 0 && r.fd >= 0 && r.first_offset == 0);
    TT_CHECK((before = range_bytes(&r)) != NULL);
    /* Everything closed goes remote, then local retention (0 ms) drops it. */
    tsp_property lr[] = {{"local.retention.ms", "0"}};
    TT_CHECK_OKE(pl->topic_alter_config(eng, "t", lr, 1, 0, err, sizeof err), err);
    TT_CHECK_OKE(pl->roll(p, err, sizeof err), err);
    TT_CHECK_OKE(pl->wait_uploaded(p, 30000, err, sizeof err), err);
    TT_CHECK_OKE(pl->enforce_retention(p, err, sizeof err), err);
    tsp_offsets off = {.struct_size = sizeof off};
    TT_CHECK_EQ_INT(pl->offsets(p, &off), TSP_OK);
    TT_CHECK_MSG(off.local_start_offset >= r.next_offset,
                 "retention kept the range's segment (local start %lld)",
                 (long long)off.local_start_offset);
    for (int i = 0; i < 100 && count_logs("ret") >= logs; i++) usleep(20000); /* unlink worker */
    TT_CHECK_MSG(count_logs("ret") < logs, "the segment files were not removed");
    TT_CHECK((after = range_bytes(&r)) != NULL);
    TT_CHECK(memcmp(before, after, r.length) == 0);
    close(r.fd);
    r.fd = -1;
    /* Offset 0 now lives only in the bucket: read_file says so, read serves it. */
    tsp_file_range c = range_init();
    TT_CHECK_EQ_INT(pl->read_file(p, 0, 1 << 20, INT64_MAX, &c, err, sizeof err),
                    TSP_E_NOT_FOUND);
    TT_CHECK_EQ_INT(c.fd, -1);
    size_t dlen = 0;
    TT_CHECK_OKE(pl->read(p, 0, 1 << 20, &d, &dlen, err, sizeof err), err);
    TT_CHECK(dlen > 0 && (int64_t)ts_rd64(d) == 0);
done:
    if (r.fd >= 0) close(r.fd);
    free(before);
    free(after);
    pl->buffer_free(d);
    pl->engine_close(eng);
}

TT_TEST(replicated_range_below_hw_survives_truncate)
{
    const tsp_plugin *pl = load();
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p = NULL;
    uint8_t *before = NULL, *after = NULL, *d = NULL;
    TT_OKE(open_engine(&eng, "repl", "-2", err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t", 0, TSP_PART_CREATE | TSP_PART_REPLICATED, &p, err,
                                    sizeof err), err);
    for (int i = 0; i < 20; i++) { /* 0..199 in batches of 10, one segment */
        size_t len;
        uint8_t *b = make_batch(10, 20, 10 * i, 1, 'x', &len);
        TT_CHECK(b != NULL);
        tsp_status st = pl->append_replica(p, b, len, NULL, err, sizeof err);
        free(b);
        TT_CHECK_OKE(st, err);
    }
    TT_CHECK_OKE(pl->set_high_watermark(p, 100, err, sizeof err), err);
    /* Asked for everything: stops below the plugin's high watermark. */
    tsp_file_range r = range_init();
    TT_CHECK_OKE(pl->read_file(p, 50, 1 << 20, INT64_MAX, &r, err, sizeof err), err);
    TT_CHECK_EQ_INT(r.first_offset, 50);
    TT_CHECK_EQ_INT(r.next_offset, 100); /* the HW, not the log end (200) */
    TT_CHECK((before = range_bytes(&r)) != NULL);
    /* The follower truncates to the HW and takes a new leader's batches,
     * other bytes, at the same offsets the old ones had above it. */
    int64_t end = -1;
    TT_CHECK_OKE(pl->truncate(p, 100, &end, err, sizeof err), err);
    TT_CHECK_EQ_INT(end, 100);
    for (int i = 0; i < 10; i++) {
        size_t len;
        uint8_t *b = make_batch(10, 20, 100 + 10 * i, 2, 'y', &len);
        TT_CHECK(b != NULL);
        tsp_status st = pl->append_replica(p, b, len, NULL, err, sizeof err);
        free(b);
        TT_CHECK_OKE(st, err);
    }
    TT_CHECK((after = range_bytes(&r)) != NULL);
    TT_CHECK(memcmp(before, after, r.length) == 0);
    /* And the range is what read gives below the HW. */
    size_t dlen = 0;
    TT_CHECK_OKE(pl->read(p, 50, 1 << 20, &d, &dlen, err, sizeof err), err);
    int64_t nx = 50;
    TT_CHECK_EQ_INT(cut_below(d, dlen, 100, &nx), r.length);
    TT_CHECK(memcmp(d, after, r.length) == 0);
    /* At the HW: nothing yet. */
    tsp_file_range z = range_init();
    TT_CHECK_OKE(pl->read_file(p, 100, 1 << 20, INT64_MAX, &z, err, sizeof err), err);
    TT_CHECK(z.length == 0 && z.fd == -1);
done:
    if (r.fd >= 0) close(r.fd);
    free(before);
    free(after);
    pl->buffer_free(d);
    pl->engine_close(eng);
}

int main(int argc, char **argv)
{
    int rc = host_init(argc, argv, "test_plugin_read_file", "read-file");
    if (rc) return rc;
    TT_RUN(entry_present_minor4_absent);
    TT_RUN(same_bytes_as_read);
    TT_RUN(range_survives_retention_and_cold_is_not_found);
    TT_RUN(replicated_range_below_hw_survives_truncate);
    return host_finish();
}
