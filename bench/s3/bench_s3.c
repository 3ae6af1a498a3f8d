/*
 * bench_s3.c — S3 backend benchmarks (not part of ctest; see run.sh).
 *
 *   bench_s3 upload FILE KEY        streams FILE through ts_objstore_writer
 *                                   (multipart, s3.multipart.* from the env
 *                                   TS_BENCH_PART_BYTES / TS_BENCH_PARALLELISM,
 *                                   s3.content.md5 from TS_BENCH_CONTENT_MD5)
 *                                   and prints MiB/s and the CPU seconds the
 *                                   upload took (the machine's cores are
 *                                   shared with the store)
 *   bench_s3 cold-read KEY N BYTES  N ranged GETs of BYTES at random offsets
 *                                   of KEY (nothing cached: every read goes to
 *                                   the store); prints p50/p99/max latency and
 *                                   bytes fetched per read
 *
 *   bench_s3 engine-cold DIR MIB N  the engine on the bucket (issue 13 item
 *                                   2): MIB of generated batches appended,
 *                                   uploaded and dropped from local disk;
 *                                   then a sequential read of everything
 *                                   with an empty chunk cache next to GETs
 *                                   of the same objects whole (what the
 *                                   store delivers) and every chunk GET and
 *                                   decompressed on the reader's thread
 *                                   count (what store and machine allow
 *                                   together), and N random 64 KiB
 *                                   reads with no cache next to ranged GETs
 *                                   of one chunk (and GET + decompress)
 *
 * The store is s3://$TS_S3_TEST_BUCKET/bench with endpoint and credentials
 * from the AWS_* environment, like the integration suite.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "gen.h"
#include "objstore/objstore.h"
#include "objstore/s3.h"
#include "tierstore.h"

static char err[2048];

static ts_objstore *open_bench(void)
{
    const char *bucket = getenv("TS_S3_TEST_BUCKET");
    if (!bucket || !getenv("AWS_ENDPOINT_URL")) {
        fprintf(stderr, "bench_s3: set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                        "and TS_S3_TEST_BUCKET (bench/s3/run.sh does)\n");
        exit(2);
    }
    char url[512];
    snprintf(url, sizeof(url), "s3://%s/bench", bucket);
    ts_config *cfg = ts_config_create();
    const char *pb = getenv("TS_BENCH_PART_BYTES"), *par = getenv("TS_BENCH_PARALLELISM"),
               *md5 = getenv("TS_BENCH_CONTENT_MD5");
    if (pb && ts_config_set(cfg, "s3.multipart.part.bytes", pb, err, sizeof(err))) goto bad;
    if (par && ts_config_set(cfg, "s3.multipart.parallelism", par, err, sizeof(err))) goto bad;
    if (md5 && ts_config_set(cfg, "s3.content.md5", md5, err, sizeof(err))) goto bad;
    ts_objstore *os;
    if (ts_objstore_open(url, cfg, &os, err, sizeof(err))) goto bad;
    ts_config_destroy(cfg);
    return os;
bad:
    fprintf(stderr, "bench_s3: %s\n", err);
    exit(1);
}

/* CPU seconds of this process so far, every thread's. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int upload(const char *file, const char *key)
{
    ts_objstore *os = open_bench();
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 1;
    }
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    ts_objstore_writer *w;
    int64_t t0 = ts_mono_us();
    double cpu0 = cpu_seconds();
    if (ts_objstore_writer_open(os, key, &w, err, sizeof(err))) goto fail;
    size_t n;
    uint64_t total = 0;
    while ((n = fread(buf, 1, cap, f)) > 0) {
        if (ts_objstore_writer_write(w, buf, n, err, sizeof(err))) {
            ts_objstore_writer_abort(w);
            goto fail;
        }
        total += n;
    }
    if (ts_objstore_writer_commit(w, err, sizeof(err))) goto fail;
    double s = (double)(ts_mono_us() - t0) / 1e6, cpu = cpu_seconds() - cpu0;
    ts_s3_stats st;
    ts_objstore_s3_stats(os, &st);
    printf("tierstore upload: %.1f MiB in %.2f s = %.1f MiB/s (%llu requests, part buffers "
           "peak %llu MiB)\n",
           (double)total / 1048576, s, (double)total / 1048576 / s,
           (unsigned long long)st.requests, (unsigned long long)(st.part_buf_peak >> 20));
    printf("SECONDS %.3f\n", s);
    printf("CPU_SECONDS %.3f\n", cpu);
    fclose(f);
    free(buf);
    ts_objstore_destroy(os);
    return 0;
fail:
    fprintf(stderr, "bench_s3 upload: %s\n", err);
    return 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cold_read(const char *key, int n, uint64_t bytes)
{
    ts_objstore *os = open_bench();
    uint64_t size;
    if (ts_objstore_head(os, key, &size, err, sizeof(err))) {
        fprintf(stderr, "bench_s3 cold-read: %s\n", err);
        return 1;
    }
    if (bytes > size) bytes = size;
    int64_t *lat = calloc((size_t)n, sizeof(*lat));
    ts_s3_stats before;
    ts_objstore_s3_stats(os, &before);
    srand(42);
    for (int i = 0; i < n; i++) {
        uint64_t off = ((uint64_t)rand() * 65536u + (uint64_t)rand()) % (size - bytes + 1);
        uint8_t *out;
        size_t got;
        int64_t t0 = ts_mono_us();
        if (ts_objstore_get(os, key, off, bytes, &out, &got, err, sizeof(err)) || got != bytes) {
            fprintf(stderr, "bench_s3 cold-read: %s\n", err);
            return 1;
        }
        lat[i] = ts_mono_us() - t0;
        free(out);
    }
    ts_s3_stats after;
    ts_objstore_s3_stats(os, &after);
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    printf("cold ranged GET of %llu KiB x %d: p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
           "%.0f bytes fetched per read, %.2f requests per read\n",
           (unsigned long long)(bytes >> 10), n, lat[n / 2] / 1e3, lat[(n * 99) / 100] / 1e3,
           lat[n - 1] / 1e3, (double)(after.bytes_received - before.bytes_received) / n,
           (double)(after.requests - before.requests) / n);
    free(lat);
    ts_objstore_destroy(os);
    return 0;
}

/* ---- engine-cold ----------------------------------------------------- */

#define MiB (1024.0 * 1024.0)

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_s3 engine-cold: %s: %s\n", what, msg);
    exit(1);
}

static ts_engine *eng_open(const char *dir, const char *url, uint64_t cache_bytes,
                           const char *cache_sub)
{
    char v[1200];
    ts_config *c = ts_config_create();
    const char *kv[][2] = {{"remote.storage.url", url},
                           {"remote.storage.enable", "true"},
                           {"log.retention.ms", "-1"},
                           {"log.retention.bytes", "-1"},
                           {"log.segment.bytes", "33554432"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (ts_config_set(c, kv[i][0], kv[i][1], err, sizeof(err))) die(kv[i][0], err);
    snprintf(v, sizeof(v), "%s/data", dir);
    if (ts_config_set(c, "log.dirs", v, err, sizeof(err))) die("log.dirs", err);
    snprintf(v, sizeof(v), "%s/%s", dir, cache_sub);
    if (ts_config_set(c, "remote.log.cache.dir", v, err, sizeof(err))) die("cache dir", err);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)cache_bytes);
    if (ts_config_set(c, "remote.log.cache.bytes", v, err, sizeof(err))) die("cache", err);
    /* Cold-read tuning from the environment (unset: engine defaults). */
    const char *env[][2] = {{"TS_BENCH_READER_THREADS", "remote.log.reader.threads"},
                            {"TS_BENCH_PREFETCH_MAX", "remote.log.prefetch.max.chunks"}};
    for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
        const char *val = getenv(env[i][0]);
        if (val && *val && ts_config_set(c, env[i][1], val, err, sizeof(err))) die(env[i][1], err);
    }
    ts_engine *e;
    if (ts_engine_open(c, &e, err, sizeof(err))) die("ts_engine_open", err);
    ts_config_destroy(c);
    return e;
}

static uint64_t eng_gets(ts_engine *e)
{
    ts_engine_stats s;
    ts_engine_stats_get(e, &s);
    return s.objstore_requests[TS_OBJSTORE_OP_GET][TS_OBJSTORE_OUTCOME_OK];
}

typedef struct obj_list {
    char (*keys)[1100];
    uint64_t *sizes;
    int n, cap;
} obj_list;

static int list_cb(const char *key, uint64_t size, void *opaque)
{
    obj_list *l = opaque;
    size_t n = strlen(key);
    if (n < 8 || strcmp(key + n - 8, ".log.zst")) return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->keys = realloc(l->keys, (size_t)l->cap * sizeof(*l->keys));
        l->sizes = realloc(l->sizes, (size_t)l->cap * sizeof(*l->sizes));
        if (!l->keys || !l->sizes) die("list", "out of memory");
    }
    snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
    l->sizes[l->n++] = size;
    return 0;
}

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct frame_ref {
    int obj;
    uint64_t pos;
    uint32_t len, raw;
} frame_ref;

static void pct(int64_t *lat, int n, double *p50, double *p99)
{
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    *p50 = (double)lat[n / 2] / 1e3;
    *p99 = (double)lat[(n * 99) / 100] / 1e3;
}

/* The chunk frames of every object, from each object's zstd seek table
 * (its last 8 x frames + 17 bytes: two ranged GETs per object, not
 * timed). */
static frame_ref *frames_list(ts_objstore *os, const obj_list *ol, size_t *nout)
{
    frame_ref *fr = NULL;
    size_t nfr = 0, cap = 0;
    for (int i = 0; i < ol->n; i++) {
        uint8_t *foot;
        size_t got;
        if (ts_objstore_get(os, ol->keys[i], ol->sizes[i] - 9, 9, &foot, &got, err,
                            sizeof(err)) ||
            got != 9 || rd32le(foot + 5) != 0x8F92EAB1u)
            die(ol->keys[i], "no seek table");
        uint32_t nf = rd32le(foot);
        size_t esz = (foot[4] & 0x80) ? 12 : 8;
        free(foot);
        uint8_t *t;
        if (ts_objstore_get(os, ol->keys[i], ol->sizes[i] - 9 - nf * esz, nf * esz, &t, &got, err,
                            sizeof(err)))
            die(ol->keys[i], err);
        uint64_t pos = 0;
        for (uint32_t f = 0; f < nf; f++) {
            if (nfr == cap) {
                cap = cap ? 2 * cap : 256;
                fr = realloc(fr, cap * sizeof(*fr));
                if (!fr) die("frames", "out of memory");
            }
            fr[nfr] = (frame_ref){i, pos, rd32le(t + f * esz), rd32le(t + f * esz + 4)};
            pos += fr[nfr++].len;
        }
        free(t);
    }
    *nout = nfr;
    return fr;
}

/* The ceiling of a cold sequential reader on this store and machine: every
 * chunk frame ranged-GET and decompressed, nothing else (no verification,
 * no cache), on `threads` threads each taking the next frame. */
typedef struct par_ref {
    ts_objstore *os;
    const obj_list *ol;
    const frame_ref *fr;
    size_t nfr;
    atomic_size_t next;
    _Atomic uint64_t raw;
} par_ref;

static void *par_ref_main(void *arg)
{
    par_ref *p = arg;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    char e[512];
    for (size_t i; d && (i = atomic_fetch_add(&p->next, 1)) < p->nfr;) {
        const frame_ref *f = &p->fr[i];
        uint8_t *buf = NULL, *raw = malloc(f->raw ? f->raw : 1);
        size_t got = 0;
        if (!raw || ts_objstore_get(p->os, p->ol->keys[f->obj], f->pos, f->len, &buf, &got, e,
                                    sizeof(e)))
            die("reference GET", e);
        size_t n = ZSTD_decompressDCtx(d, raw, f->raw, buf, got);
        if (ZSTD_isError(n) || n != f->raw) die("reference", "chunk does not decompress");
        atomic_fetch_add(&p->raw, n);
        free(buf);
        free(raw);
    }
    ZSTD_freeDCtx(d);
    return NULL;
}

/* MiB/s of raw bytes par_ref_main makes on `threads` threads. */
static double par_get_decode(ts_objstore *os, const obj_list *ol, const frame_ref *fr, size_t nfr,
                             int threads)
{
    par_ref p = {.os = os, .ol = ol, .fr = fr, .nfr = nfr};
    atomic_init(&p.next, 0);
    atomic_init(&p.raw, 0);
    pthread_t th[64];
    if (threads > 64) threads = 64;
    int64_t t0 = ts_mono_us();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, par_ref_main, &p);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    return (double)atomic_load(&p.raw) / MiB / ((double)(ts_mono_us() - t0) / 1e6);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int engine_cold(const char *dir, uint64_t mib, int nreads)
{
    const char *bucket = getenv("TS_S3_TEST_BUCKET");
    if (!bucket) die("environment", "TS_S3_TEST_BUCKET is not set");
    char prefix[64], url[512];
    snprintf(prefix, sizeof(prefix), "engine-%d", (int)getpid());
    snprintf(url, sizeof(url), "s3://%s/%s", bucket, prefix);
    /* 1. the data: generated batches, one per append, uploaded, then only
     * in the bucket (local retention 0). */
    ts_engine *e = eng_open(dir, url, 1ull << 30, "cache-seq");
    ts_partition *pt;
    if (ts_partition_open(e, "bench", 0, 1, &pt, err, sizeof(err))) die("partition", err);
    uint64_t target = mib << 20, appended = 0;
    int64_t ts0 = ts_now_ms();
    for (uint64_t k = 0; appended < target; k++) {
        size_t len;
        int nrec;
        uint8_t *b = gen_batch(0, k, ts0, &len, &nrec);
        if (!b) die("gen_batch", "failed");
        if (len <= (1u << 20)) {
            ts_status st;
            while ((st = ts_partition_append(pt, b, len, NULL, NULL, err, sizeof(err))) ==
                   TS_E_BACKPRESSURE)
                ts_sleep_ms(1);
            if (st) die("append", err);
            appended += len;
        }
        free(b);
    }
    if (ts_partition_roll(pt, err, sizeof(err)) ||
        ts_partition_wait_uploaded(pt, 1200000, err, sizeof(err)))
        die("upload", err);
    const char *k[] = {"local.retention.bytes"}, *v[] = {"0"};
    if (ts_topic_set_config(e, "bench", k, v, 1, err, sizeof(err))) die("set_config", err);
    if (ts_partition_enforce_retention(pt, err, sizeof(err))) die("retention", err);
    ts_offsets o;
    ts_partition_offsets(pt, &o);
    ts_engine_stats s;
    ts_engine_stats_get(e, &s);
    printf("engine on RGW: %.0f MiB appended, %llu objects, %.1f MiB stored (%.2fx), local "
           "start %lld = log end %lld\n",
           (double)appended / MiB, (unsigned long long)s.remote_objects,
           (double)s.remote_bytes / MiB, s.remote_bytes ? (double)s.remote_raw_bytes /
                                                              (double)s.remote_bytes : 0,
           (long long)o.local_start_offset, (long long)o.log_end_offset);
    double ratio = s.remote_bytes ? (double)s.remote_raw_bytes / (double)s.remote_bytes : 1;

    /* 2. sequential, empty cache, 1 MiB per read, next to whole-object GETs. */
    /* A store of our own at the engine's prefix (not its store: its GETs
     * are the engine's figures). */
    ts_objstore *os = NULL;
    obj_list ol = {0};
    ts_config *cfg = ts_config_create();
    if (ts_objstore_open(url, cfg, &os, err, sizeof(err))) die("store", err);
    ts_config_destroy(cfg);
    if (ts_objstore_list(os, "", list_cb, &ol, err, sizeof(err))) die("list", err);
    if (!ol.n) die("list", "no segment objects");
    size_t nfr = 0;
    frame_ref *fr = frames_list(os, &ol, &nfr);
    uint64_t g0 = eng_gets(e), served = 0;
    double c0 = cpu_s();
    int64_t t0 = ts_mono_us();
    for (int64_t off = o.log_start_offset; off < o.log_end_offset;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(pt, off, 1 << 20, &d, &len, err, sizeof(err))) die("read", err);
        if (!len) die("read", "empty before the log end");
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            if (ts_batch_parse_header(d + pos, len - pos, SIZE_MAX, &h, err, sizeof(err)))
                die("batch", err);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        served += len;
        free(d);
    }
    double eng_s = (double)(ts_mono_us() - t0) / 1e6, eng_cpu = cpu_s() - c0;
    uint64_t seq_gets = eng_gets(e) - g0;
    uint64_t stored = 0;
    t0 = ts_mono_us();
    for (int i = 0; i < ol.n; i++) {
        uint8_t *d;
        size_t got;
        if (ts_objstore_get(os, ol.keys[i], 0, ol.sizes[i], &d, &got, err, sizeof(err)))
            die(ol.keys[i], err);
        stored += got;
        free(d);
    }
    double get_s = (double)(ts_mono_us() - t0) / 1e6;
    double eng_mibs = (double)served / MiB / eng_s, get_mibs = (double)stored / MiB / get_s;
    printf("cold sequential, empty cache (1 MiB per read): engine %.1f MiB/s served (goal >= "
           "500), %llu GETs | whole-object GETs one after another: %.1f MiB/s stored = %.1f "
           "MiB/s of raw bytes at %.2fx | ratio engine / GET-bound raw %.2fx\n",
           eng_mibs, (unsigned long long)seq_gets, get_mibs, get_mibs * ratio, ratio,
           eng_mibs / (get_mibs * ratio));
    /* The same chunks GET and decompressed by a plain loop on as many
     * threads as the reader has (remote.log.reader.threads): what the
     * machine, RGW included, makes of them, run right after the engine. */
    const char *rt = getenv("TS_BENCH_READER_THREADS");
    int threads = rt && *rt ? atoi(rt) : 8;
    double ref = par_get_decode(os, &ol, fr, nfr, threads);
    printf("  reference: every chunk ranged-GET and decompressed on %d threads, nothing else: "
           "%.1f MiB/s raw | engine / that %.2fx | engine CPU %.2f s = %.1f ms per MiB served "
           "(this process, user + sys)\n",
           threads, ref, eng_mibs / ref, eng_cpu, eng_cpu * 1e3 / ((double)served / MiB));
    ts_engine_close(e);

    /* 3. random 64 KiB with no cache (cap 0), each read followed by one
     * ranged GET of a random chunk (and its decompression), so the engine
     * and the reference share the machine's load read by read. */
    e = eng_open(dir, url, 0, "cache-none");
    if (ts_partition_open(e, "bench", 0, 0, &pt, err, sizeof(err))) die("partition", err);
    int64_t *lat = malloc((size_t)nreads * sizeof(*lat));
    int64_t *lg = malloc((size_t)nreads * sizeof(*lg)), *ld = malloc((size_t)nreads * sizeof(*ld));
    uint64_t bx = 777, gb = 0;
    ts_engine_stats a, b2;
    ts_engine_stats_get(e, &a);
    uint64_t x = 42;
    for (int i = 0; i < nreads; i++) {
        x = gen_mix(x);
        int64_t off = o.log_start_offset +
                      (int64_t)(x % (uint64_t)(o.log_end_offset - o.log_start_offset));
        uint8_t *d;
        size_t len;
        int64_t r0 = ts_mono_us();
        if (ts_partition_read(pt, off, 64 << 10, &d, &len, err, sizeof(err))) die("read", err);
        lat[i] = ts_mono_us() - r0;
        free(d);
        bx = gen_mix(bx);
        const frame_ref *f = &fr[bx % nfr];
        size_t got;
        r0 = ts_mono_us();
        if (ts_objstore_get(os, ol.keys[f->obj], f->pos, f->len, &d, &got, err, sizeof(err)))
            die("chunk GET", err);
        int64_t r1 = ts_mono_us();
        uint8_t *raw = malloc(f->raw ? f->raw : 1);
        size_t n = raw ? ZSTD_decompress(raw, f->raw, d, got) : 0;
        if (ZSTD_isError(n) || n != f->raw) die("chunk", "does not decompress");
        free(raw);
        free(d);
        lg[i] = r1 - r0;
        ld[i] = ts_mono_us() - r0;
        gb += got;
    }
    ts_engine_stats_get(e, &b2);
    double e50, e99;
    pct(lat, nreads, &e50, &e99);
    uint64_t rg = b2.objstore_requests[TS_OBJSTORE_OP_GET][TS_OBJSTORE_OUTCOME_OK] -
                  a.objstore_requests[TS_OBJSTORE_OP_GET][TS_OBJSTORE_OUTCOME_OK];
    printf("random 64 KiB, empty cache x %d: p50 %.2f ms, p99 %.2f ms | %.3f GETs and %.3f "
           "chunks fetched per read, %.0f bytes fetched per read\n",
           nreads, e50, e99, (double)rg / nreads,
           (double)(b2.cache_misses - a.cache_misses) / nreads,
           (double)(b2.remote_get_bytes - a.remote_get_bytes) / nreads);
    ts_engine_close(e);
    double g50, g99, d50, d99;
    pct(lg, nreads, &g50, &g99);
    pct(ld, nreads, &d50, &d99);
    printf("one ranged GET of one chunk x %d (one after each read above): p50 %.2f ms, p99 %.2f ms (%.0f bytes); with "
           "ZSTD_decompress: p50 %.2f ms, p99 %.2f ms\n",
           nreads, g50, g99, (double)gb / nreads, d50, d99);
    printf("  empty-cache random read / one chunk GET: p50 %.2fx, p99 %.2fx (goal p99 <= 2x); "
           "/ GET+decode: p50 %.2fx, p99 %.2fx\n",
           e50 / g50, e99 / g99, e50 / d50, e99 / d99);
    free(lg);
    free(ld);
    free(lat);
    free(fr);
    free(ol.keys);
    free(ol.sizes);
    ts_objstore_destroy(os);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "engine-cold"))
        return engine_cold(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "upload")) return upload(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "cold-read"))
        return cold_read(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: bench_s3 upload FILE KEY | bench_s3 cold-read KEY N BYTES | "
                    "bench_s3 engine-cold DIR MIB N\n");
    return 2;
}
