/*
 * bench_s3.c — S3 backend benchmarks (not part of ctest; see run.sh).
 *
 *   bench_s3 upload FILE KEY        streams FILE through ts_objstore_writer
 *                                   (multipart, s3.multipart.* from the env
 *                                   TS_BENCH_PART_BYTES / TS_BENCH_PARALLELISM)
 *                                   and prints MiB/s
 *   bench_s3 cold-read KEY N BYTES  N ranged GETs of BYTES at random offsets
 *                                   of KEY (nothing cached: every read goes to
 *                                   the store); prints p50/p99/max latency and
 *                                   bytes fetched per read
 *
 * The store is s3://$TS_S3_TEST_BUCKET/bench with endpoint and credentials
 * from the AWS_* environment, like the integration suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "objstore/objstore.h"
#include "objstore/s3.h"

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
    const char *pb = getenv("TS_BENCH_PART_BYTES"), *par = getenv("TS_BENCH_PARALLELISM");
    if (pb && ts_config_set(cfg, "s3.multipart.part.bytes", pb, err, sizeof(err))) goto bad;
    if (par && ts_config_set(cfg, "s3.multipart.parallelism", par, err, sizeof(err))) goto bad;
    ts_objstore *os;
    if (ts_objstore_open(url, cfg, &os, err, sizeof(err))) goto bad;
    ts_config_destroy(cfg);
    return os;
bad:
    fprintf(stderr, "bench_s3: %s\n", err);
    exit(1);
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
    double s = (double)(ts_mono_us() - t0) / 1e6;
    ts_s3_stats st;
    ts_objstore_s3_stats(os, &st);
    printf("tierstore upload: %.1f MiB in %.2f s = %.1f MiB/s (%llu requests, part buffers "
           "peak %llu MiB)\n",
           (double)total / 1048576, s, (double)total / 1048576 / s,
           (unsigned long long)st.requests, (unsigned long long)(st.part_buf_peak >> 20));
    printf("SECONDS %.3f\n", s);
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

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "upload")) return upload(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "cold-read"))
        return cold_read(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: bench_s3 upload FILE KEY | bench_s3 cold-read KEY N BYTES\n");
    return 2;
}
