/*
 * tierstore-demo — the engine end to end on the embedded default (a
 * file:// bucket under a local directory, no S3 server needed):
 * writes realistic records across several partitions with a small local
 * bound, lets the uploader offload closed segments, shows placement, reads
 * every record back and verifies it, and prints a summary.
 *
 *   tierstore-demo [--dir DIR] [--mb N] [--partitions N]
 *
 * Uses only the public API (include/tierstore.h). Record values are
 * regenerated from (partition, batch number) to verify every byte read back.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_args.h"
#include "progress.h"
#include "demo_disk.h"
#include "demo_events.h"
#include "tierstore.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The demo encodes its batches itself (zigzag varints, big-endian fields,
 * CRC-32C) instead of calling common/batch.c, on purpose: it uses only the
 * public API, and an encoder written apart from the engine's parser
 * cross-checks it, where a shared helper would carry one bug to both sides.
 * (duplicates pairs put_varint with common/batch.c; the pair is kept.) */

/* Varint/zigzag writer for the record format (Kafka's record v2). */
static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void be64(uint8_t *p, uint64_t v) { be32(p, (uint32_t)(v >> 32)); be32(p + 4, (uint32_t)v); }

/* CRC-32C for the batch header: the demo builds batches the way a Kafka
 * producer would, so it computes the checksum itself. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    static uint32_t t[256];
    if (!t[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[i] = c;
        }
    uint32_t c = ~0u;
    while (n--) c = t[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* Batch `b` of partition `p`: 1..100 events. Returns a malloc'd batch. */
static uint8_t *make_batch(int p, uint64_t b, int64_t ts, size_t *len, int *nrec)
{
    uint64_t r = demo_mix64(((uint64_t)p << 48) ^ b);
    int n = 1 + (int)(r % 100);
    size_t cap = 61 + (size_t)n * 8192;
    uint8_t *buf = calloc(1, cap);
    size_t pos = 61;
    char ev[8192];
    for (int i = 0; i < n; i++) {
        size_t vl = demo_event(p, (b << 8) + (uint64_t)i, ev, sizeof(ev));
        uint8_t hdr[40];
        size_t hl = 0;
        hdr[hl++] = 0;
        hl += put_varint(hdr + hl, i);  /* timestamp delta */
        hl += put_varint(hdr + hl, i);  /* offset delta */
        hl += put_varint(hdr + hl, -1); /* null key */
        hl += put_varint(hdr + hl, (int64_t)vl);
        pos += put_varint(buf + pos, (int64_t)(hl + vl + 1));
        memcpy(buf + pos, hdr, hl);
        pos += hl;
        memcpy(buf + pos, ev, vl);
        pos += vl;
        buf[pos++] = 0; /* no headers */
    }
    be32(buf + 8, (uint32_t)(pos - 12));
    buf[16] = 2;
    be32(buf + 23, (uint32_t)(n - 1));
    be64(buf + 27, (uint64_t)ts);
    be64(buf + 35, (uint64_t)(ts + n - 1));
    be64(buf + 43, (uint64_t)-1);
    buf[51] = buf[52] = 0xff;
    be32(buf + 53, (uint32_t)-1);
    be32(buf + 57, (uint32_t)n);
    be32(buf + 17, crc32c(buf + 21, pos - 21));
    *len = pos;
    *nrec = n;
    return buf;
}

static uint64_t rd_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void human(uint64_t b, char *out, size_t n)
{
    if (b >= (1ull << 30)) snprintf(out, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= (1ull << 20)) snprintf(out, n, "%.1f MiB", b / 1048576.0);
    else snprintf(out, n, "%.1f KiB", b / 1024.0);
}

/* What the demo writes, where, and what it wrote (for the read-back). */
typedef struct demo {
    const char *dir;
    int64_t mb;
    int nparts;
    char data[1024], bucket[1024], url[1100], cfgpath[1100];
    ts_config *cfg;
    ts_engine *eng;
    ts_partition **parts;
    uint64_t *batches;  /* batches written per partition */
    int64_t ts0;        /* timestamp of batch 0 */
    uint64_t written, records, retries, peak_local;
    uint64_t local_written; /* local disk once everything was written */
    int64_t write_ms;
    int quiet; /* --quiet: no progress line even on a terminal */
} demo;

#define DEMO_USAGE                                                                              \
    "usage: tierstore-demo [--dir DIR] [--mb N] [--partitions N] [--quiet]\n"                             \
    "       tierstore-demo --help | --version\n\n"                                                 \
    "The engine's main job in one run, on its public C API: writes N MiB of record\n"             \
    "batches into fresh partitions, offloads closed segments to a file:// bucket,\n"              \
    "deletes local copies under local retention and reads every offset back.\n\n"                 \
    "  --dir DIR         work directory (data and bucket; default /tmp/tierstore-demo)\n"          \
    "  --mb N            MiB to write (default 300)\n"                                             \
    "  --partitions N    partitions, 1-64 (default 4)\n"                                          \
    "  --quiet           no progress line (there is none unless stderr is a terminal)\n"

/* Returns 0, or 2 (the exit status) after a message on a bad argument. */
static int parse_args(int argc, char **argv, demo *d)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"mb", required_argument, NULL, 'm'},
        {"partitions", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t np = 4;
    d->dir = "/tmp/tierstore-demo";
    d->mb = 300;
    int opt, bad = 0;
    while (!bad && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': d->dir = optarg; break;
        case 'm': bad = cli_parse_i64("tierstore-demo", "--mb", optarg, 1, 1 << 30, &d->mb); break;
        case 'p': bad = cli_parse_i64("tierstore-demo", "--partitions", optarg, 1, 64, &np); break;
        case 'q': d->quiet = 1; break;
        case 'V': printf("tierstore-demo (tierstore) %s\n", TS_VERSION); exit(0);
        case 'h': printf(DEMO_USAGE); exit(0);
        default: bad = 1;
        }
    }
    if (bad || optind < argc) {
        fprintf(stderr, DEMO_USAGE);
        return 2;
    }
    d->nparts = (int)np;
    return 0;
}

/* Starts from an empty data dir and bucket, writes the demo's properties
 * file, opens the engine on it and the partitions. Returns 0 or 1. */
static int open_demo(demo *d)
{
    char err[1024], cmd[2300];
    snprintf(d->data, sizeof(d->data), "%s/data", d->dir);
    snprintf(d->bucket, sizeof(d->bucket), "%s/bucket", d->dir);
    snprintf(d->url, sizeof(d->url), "file://%s", d->bucket);
    snprintf(d->cfgpath, sizeof(d->cfgpath), "%s/demo.properties", d->dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/data' '%s/bucket' && mkdir -p '%s'", d->dir, d->dir,
             d->dir);
    if (system(cmd) != 0) return 1;
    FILE *f = fopen(d->cfgpath, "w");
    if (!f) {
        perror(d->cfgpath);
        return 1;
    }
    fprintf(f,
            "# tierstore demo: small segments and a small local bound so most data goes remote\n"
            "log.dirs=%s\nremote.storage.url=%s\nlog.segment.bytes=8388608\n"
            "log.local.retention.bytes=16777216\nlog.retention.ms=-1\n"
            "remote.log.cache.bytes=33554432\nremote.log.manager.task.interval.ms=200\n"
            "message.max.bytes=4194304\n",
            d->data, d->url);
    fclose(f);
    d->cfg = ts_config_create();
    if (ts_config_load_file(d->cfg, d->cfgpath, 0, err, sizeof(err)) ||
        ts_engine_open(d->cfg, &d->eng, err, sizeof(err))) {
        fprintf(stderr, "tierstore-demo: %s\n", err);
        return 1;
    }
    printf("tierstore demo: %lld MB across %d partitions of topic 'events'\n", (long long)d->mb,
           d->nparts);
    printf("  data dir %s, bucket %s\n  segment 8 MiB, local retention 16 MiB per partition, "
           "chunk cache 32 MiB\n\n", d->data, d->url);
    d->parts = calloc((size_t)d->nparts, sizeof(*d->parts));
    d->batches = calloc((size_t)d->nparts, sizeof(uint64_t));
    for (int p = 0; p < d->nparts; p++)
        if (ts_partition_open(d->eng, "events", p, 1, &d->parts[p], err, sizeof(err))) {
            fprintf(stderr, "tierstore-demo: %s\n", err);
            return 1;
        }
    return 0;
}

/* One line of progress: written, local disk (peak kept), remote. */
static void report_progress(demo *d)
{
    uint64_t l = demo_du(d->data, NULL);
    if (l > d->peak_local) d->peak_local = l;
    ts_engine_stats st;
    ts_engine_stats_get(d->eng, &st);
    char a[32], b[32], c[32];
    human(d->written, a, sizeof(a));
    human(l, b, sizeof(b));
    human(st.remote_bytes, c, sizeof(c));
    printf("  written %-10s local disk %-10s remote %-10s (%llu objects)\n", a, b, c,
           (unsigned long long)st.remote_objects);
    fflush(stdout);
}

/* Appends batches round-robin until --mb is written (waiting out
 * backpressure), then rolls, waits for every upload and applies
 * retention. Returns 0 or 1. */
static int write_all(demo *d)
{
    char err[1024];
    d->ts0 = now_ms() - 3600 * 1000;
    int64_t t0 = now_ms(), next_report = 0;
    uint64_t target = (uint64_t)d->mb << 20;
    while (d->written < target) {
        for (int p = 0; p < d->nparts; p++) {
            size_t len;
            int n;
            uint8_t *b = make_batch(p, d->batches[p], d->ts0 + (int64_t)d->batches[p], &len, &n);
            ts_status st;
            while ((st = ts_partition_append(d->parts[p], b, len, NULL, NULL, err,
                                             sizeof(err))) == TS_E_BACKPRESSURE) {
                d->retries++;
                usleep(2000);
            }
            free(b);
            if (st) {
                fprintf(stderr, "tierstore-demo: append failed: %s\n", err);
                return 1;
            }
            d->batches[p]++;
            d->written += len;
            d->records += (uint64_t)n;
        }
        if (now_ms() >= next_report) {
            report_progress(d);
            next_report = now_ms() + 2000;
        }
    }
    for (int p = 0; p < d->nparts; p++) {
        while (ts_partition_roll(d->parts[p], err, sizeof(err)) == TS_E_BACKPRESSURE) usleep(5000);
        if (ts_partition_wait_uploaded(d->parts[p], 600000, err, sizeof(err))) {
            fprintf(stderr, "tierstore-demo: %s\n", err);
            return 1;
        }
        if (ts_partition_enforce_retention(d->parts[p], err, sizeof(err)))
            fprintf(stderr, "tierstore-demo: retention of events-%d: %s\n", p, err);
    }
    d->write_ms = now_ms() - t0;
    d->local_written = demo_du(d->data, NULL);
    if (d->local_written > d->peak_local) d->peak_local = d->local_written;
    return 0;
}

/* The placement of partition 0, first and last five rows. */
static void print_placement(demo *d)
{
    char err[1024];
    printf("\nplacement of events-0 (tierctl -c %s placement events 0):\n", d->cfgpath);
    ts_segment_info *rows;
    size_t nrows;
    if (ts_partition_placement(d->parts[0], &rows, &nrows, err, sizeof(err)) != TS_OK) return;
    printf("  %12s %12s %10s %10s  %-13s %s\n", "BASE", "LAST", "SIZE", "STORED", "LOCATION",
           "OBJECT_KEY");
    for (size_t i = 0; i < nrows; i++) {
        if (nrows > 12 && i == 5) printf("  ... %zu more ...\n", nrows - 10);
        if (nrows > 12 && i >= 5 && i < nrows - 5) continue;
        char s1[32], s2[32] = "-";
        human(rows[i].size_bytes, s1, sizeof(s1));
        if (rows[i].stored_bytes) human(rows[i].stored_bytes, s2, sizeof(s2));
        printf("  %12lld %12lld %10s %10s  %-13s %s\n", (long long)rows[i].base_offset,
               (long long)rows[i].last_offset, s1, s2, ts_location_name(rows[i].location),
               rows[i].object_key[0] ? rows[i].object_key : "-");
    }
    free(rows);
}

/* Reads everything back (cold data through the chunk cache) and compares
 * every batch with a fresh copy of what was written. Returns 0 or 1 (a
 * read failed); counts in *verified (records) and *bad (batches). */
static int read_back(demo *d, uint64_t *verified, uint64_t *bad)
{
    char err[1024];
    cli_progress prog;
    cli_progress_start(&prog, "read back", "records", d->records, d->written, d->quiet);
    for (int p = 0; p < d->nparts; p++) {
        int64_t off = 0;
        uint64_t b = 0;
        while (b < d->batches[p]) {
            uint8_t *data;
            size_t len;
            if (ts_partition_read(d->parts[p], off, 1 << 20, &data, &len, err, sizeof(err)) ||
                !len) {
                cli_progress_end(&prog);
                fprintf(stderr, "tierstore-demo: read of events-%d at %lld failed: %s\n", p,
                        (long long)off, err);
                return 1;
            }
            size_t pos = 0;
            while (pos + 61 <= len) {
                size_t sz = 12 + rd_be32(data + pos + 8);
                size_t glen;
                int n;
                uint8_t *g = make_batch(p, b, d->ts0 + (int64_t)b, &glen, &n);
                memcpy(g, data + pos, 8); /* the engine assigned the base offset */
                if (glen != sz || memcmp(g, data + pos, sz)) (*bad)++;
                else *verified += (uint64_t)n;
                free(g);
                cli_progress_add(&prog, (uint64_t)n, sz);
                off = (int64_t)rd_be64(data + pos) + (int64_t)rd_be32(data + pos + 23) + 1;
                pos += sz;
                b++;
            }
            free(data);
        }
    }
    cli_progress_end(&prog);
    return 0;
}

static void print_summary(demo *d, uint64_t verified, uint64_t bad, int64_t read_ms)
{
    ts_engine_stats st;
    ts_engine_stats_get(d->eng, &st);
    char w[32], lo[32], pk[32], rb[32], rr[32], cb[32];
    human(d->written, w, sizeof(w));
    human(d->local_written, lo, sizeof(lo));
    human(d->peak_local, pk, sizeof(pk));
    human(st.remote_bytes, rb, sizeof(rb));
    human(st.remote_raw_bytes, rr, sizeof(rr));
    human(st.cache_bytes, cb, sizeof(cb));
    printf("\nsummary\n");
    printf("  bytes written        %s (%llu records, %.1f MB/s, %llu backpressure retries)\n", w,
           (unsigned long long)d->records, d->written / 1048576.0 / (d->write_ms / 1000.0 + 1e-9),
           (unsigned long long)d->retries);
    printf("  local bytes          %s now, peak %s (bound: %d x (16 MiB local retention + 8 MiB "
           "active) + 32 MiB cache)\n", lo, pk, d->nparts);
    printf("  remote bytes         %s stored for %s of segments in %llu objects\n", rb, rr,
           (unsigned long long)st.remote_objects);
    printf("  compression ratio    %.2fx\n",
           st.remote_bytes ? (double)st.remote_raw_bytes / (double)st.remote_bytes : 0.0);
    printf("  read-back            %llu records verified, %llu mismatched, in %.1f s "
           "(cache %s, %llu hits, %llu misses)\n",
           (unsigned long long)verified, (unsigned long long)bad, read_ms / 1000.0, cb,
           (unsigned long long)st.cache_hits, (unsigned long long)st.cache_misses);
    printf("  result               %s\n", bad == 0 && verified == d->records
                                              ? "OK: every record read back verified"
                                              : "FAILED");
    printf("\ntry: tierctl -c %s placement events --json\n", d->cfgpath);
}

int main(int argc, char **argv)
{
    demo d;
    memset(&d, 0, sizeof(d));
    int rc = parse_args(argc, argv, &d);
    if (rc) return rc;
    if (open_demo(&d) || write_all(&d)) return 1;
    print_placement(&d);
    printf("\nreading every record back and verifying it...\n");
    int64_t r0 = now_ms();
    uint64_t verified = 0, bad = 0;
    if (read_back(&d, &verified, &bad)) return 1;
    print_summary(&d, verified, bad, now_ms() - r0);
    ts_engine_close(d.eng);
    ts_config_destroy(d.cfg);
    free(d.parts);
    free(d.batches);
    return bad == 0 && verified == d.records ? 0 : 1;
}
