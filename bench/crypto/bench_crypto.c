/*
 * bench_crypto.c — what encryption at rest costs: the same data written
 * twice through the engine on file:// buckets, once plain and once
 * encrypted (remote.storage.encryption.*), then read back cold (empty
 * chunk cache, every chunk fetched, opened, decompressed and verified),
 * alternating plain / encrypted rounds in one process, ratio printed.
 * Also the upload (offload) time of each, and the raw AES-256-GCM seal
 * and open rate of common/crypt.c on one chunk as a ceiling.
 *
 * Why shaped so: the machine is shared and noisy (2 cores), so the two
 * variants run interleaved several times and the median of each is
 * compared, never absolute figures across runs. Batches come from
 * tests/integration/gen.h (JSON-ish, zstd ratio ~3), generated before
 * anything is timed. Not part of ctest: no timing decides a test.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/crypt.h"
#include "common/fsutil.h"
#include "gen.h"
#include "tierstore.h"

#define MiB (1024.0 * 1024.0)
#define ROUNDS_MAX 15

typedef struct variant {
    const char *name;
    int encrypted;
    char dir[600], data[700], bucket[700], url[800], ring[700];
    double offload_s, read_mibs[ROUNDS_MAX];
    uint64_t raw, stored;
} variant;

static uint64_t g_mib = 256;
static int g_rounds = 3;
static char g_root[400] = "/tmp/ts-bench-crypto";

static ts_config *make_cfg(const variant *v)
{
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", v->data, NULL, 0);
    ts_config_set(c, "remote.storage.url", v->url, NULL, 0);
    ts_config_set(c, "log.segment.bytes", "33554432", NULL, 0);
    ts_config_set(c, "log.local.retention.bytes", "0", NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(c, "remote.log.cache.bytes", "2147483648", NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "remote.log.manager.task.interval.ms", "100", NULL, 0);
    if (v->encrypted) {
        ts_config_set(c, "remote.storage.encryption.enable", "true", NULL, 0);
        ts_config_set(c, "remote.storage.encryption.keyring", v->ring, NULL, 0);
        ts_config_set(c, "remote.storage.encryption.active.key", "bench", NULL, 0);
    }
    return c;
}

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "bench_crypto: %s: %s\n", what, err);
    return 1;
}

/* An engine on v's config and its one partition. 0, or 1 after a message. */
static int open_variant(const variant *v, int create, ts_config **cfg, ts_engine **eng,
                        ts_partition **p)
{
    char err[1024];
    *cfg = make_cfg(v);
    *eng = NULL;
    if (ts_engine_open(*cfg, eng, err, sizeof(err)) ||
        ts_partition_open(*eng, "bench", 0, create, p, err, sizeof(err)))
        return fail(v->name, err);
    return 0;
}

/* Appends g_mib of generated batches, rolls and waits for every upload;
 * the local copies then leave local disk (local retention 0). */
static int write_variant(variant *v, uint8_t **pool, size_t *lens, size_t npool)
{
    char err[1024];
    ts_config *cfg;
    ts_engine *eng;
    ts_partition *p;
    if (open_variant(v, 1, &cfg, &eng, &p)) return 1;
    int64_t t0 = ts_mono_ms();
    uint64_t done = 0;
    for (size_t i = 0; done < (g_mib << 20); i++) {
        ts_status st;
        while ((st = ts_partition_append(p, pool[i % npool], lens[i % npool], NULL, NULL, err,
                                         sizeof(err))) == TS_E_BACKPRESSURE)
            ts_sleep_ms(1);
        if (st) return fail(v->name, err);
        done += lens[i % npool];
    }
    ts_status st;
    while ((st = ts_partition_roll(p, err, sizeof(err))) == TS_E_BACKPRESSURE) ts_sleep_ms(5);
    if (st || ts_partition_wait_uploaded(p, 600000, err, sizeof(err)) ||
        ts_partition_enforce_retention(p, err, sizeof(err)))
        return fail(v->name, err);
    v->offload_s = (double)(ts_mono_ms() - t0) / 1000.0;
    ts_engine_stats es;
    ts_engine_stats_get(eng, &es);
    v->raw = done;
    v->stored = es.remote_bytes;
    ts_engine_close(eng);
    ts_config_destroy(cfg);
    return 0;
}

/* One cold sequential read of everything: a fresh engine, an empty cache. */
static int read_variant(variant *v, int round)
{
    char err[1024], cache[800];
    snprintf(cache, sizeof(cache), "%s/.chunk-cache", v->data);
    ts_fs_rmtree(cache, NULL, 0);
    ts_config *cfg;
    ts_engine *eng;
    ts_partition *p;
    if (open_variant(v, 0, &cfg, &eng, &p)) return 1;
    int64_t t0 = ts_mono_us(), off = 0;
    uint64_t bytes = 0;
    for (;;) {
        uint8_t *d = NULL;
        size_t len = 0;
        if (ts_partition_read(p, off, 1 << 20, &d, &len, err, sizeof(err))) return fail(v->name, err);
        if (!len) break;
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            if (ts_batch_parse_header(d + pos, len - pos, 1 << 24, &h, err, sizeof(err)))
                return fail(v->name, err);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        bytes += len;
        free(d);
    }
    double s = (double)(ts_mono_us() - t0) / 1e6;
    v->read_mibs[round] = (double)bytes / MiB / s;
    ts_engine_close(eng);
    ts_config_destroy(cfg);
    return bytes == v->raw ? 0 : fail(v->name, "read back fewer bytes than written");
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    double s[ROUNDS_MAX];
    memcpy(s, v, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), cmp_d);
    return s[n / 2];
}

/* The ceiling: seal + open of one 1.3 MiB (a compressed 4 MiB) chunk. */
static void aead_rate(void)
{
    size_t n = 1400000;
    uint8_t *in = malloc(n), *sealed = malloc(n + TS_CRYPT_CHUNK_OVERHEAD), *out = malloc(n);
    uint8_t key[TS_CRYPT_KEY_LEN];
    char err[256];
    for (size_t i = 0; i < n; i++) in[i] = (uint8_t)(i * 31);
    ts_crypt_new_data_key(key, err, sizeof(err));
    int reps = 100;
    int64_t t0 = ts_mono_us();
    for (int i = 0; i < reps; i++) ts_crypt_seal_chunk(key, "k", (uint32_t)i, in, n, sealed, err, 256);
    int64_t t1 = ts_mono_us();
    for (int i = 0; i < reps; i++)
        ts_crypt_open_chunk(key, "k", (uint32_t)(reps - 1), sealed, n + TS_CRYPT_CHUNK_OVERHEAD, out,
                            err, sizeof(err));
    int64_t t2 = ts_mono_us();
    printf("aes-256-gcm (common/crypt.c, one %zu-byte chunk): seal %.0f MiB/s, open %.0f MiB/s\n",
           n, (double)n * reps / MiB / ((double)(t1 - t0) / 1e6),
           (double)n * reps / MiB / ((double)(t2 - t1) / 1e6));
    free(in);
    free(sealed);
    free(out);
}

static int parse(int argc, char **argv)
{
    static const struct option o[] = {{"mib", required_argument, NULL, 'm'},
                                      {"rounds", required_argument, NULL, 'r'},
                                      {"dir", required_argument, NULL, 'd'},
                                      {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
        if (c == 'm') g_mib = strtoull(optarg, NULL, 10);
        else if (c == 'r') g_rounds = atoi(optarg);
        else if (c == 'd') snprintf(g_root, sizeof(g_root), "%s", optarg);
        else return -1;
    }
    if (g_mib < 1 || g_rounds < 1 || g_rounds > ROUNDS_MAX) return -1;
    return 0;
}

static void variant_init(variant *v, const char *name, int encrypted)
{
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->encrypted = encrypted;
    snprintf(v->dir, sizeof(v->dir), "%s/%s", g_root, name);
    snprintf(v->data, sizeof(v->data), "%s/data", v->dir);
    snprintf(v->bucket, sizeof(v->bucket), "%s/bucket", v->dir);
    snprintf(v->url, sizeof(v->url), "file://%s", v->bucket);
    snprintf(v->ring, sizeof(v->ring), "%s/keyring", v->dir);
    ts_fs_mkdirs(v->dir, NULL, 0);
    FILE *f = fopen(v->ring, "w");
    if (f) {
        fputs("bench=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", f);
        fclose(f);
    }
    chmod(v->ring, 0600);
}

int main(int argc, char **argv)
{
    if (parse(argc, argv)) {
        fprintf(stderr, "usage: bench_crypto [--mib N (256)] [--rounds N (3, <= 15)] [--dir D]\n");
        return 2;
    }
    ts_fs_rmtree(g_root, NULL, 0);
    size_t npool = 2048, lens[2048];
    uint8_t *pool[2048];
    for (size_t i = 0; i < npool; i++) {
        int nrec;
        pool[i] = gen_batch(0, i, 1700000000000, &lens[i], &nrec);
    }
    variant v[2];
    variant_init(&v[0], "plain", 0);
    variant_init(&v[1], "encrypted", 1);
    for (int i = 0; i < 2; i++)
        if (write_variant(&v[i], pool, lens, npool)) return 1;
    for (int r = 0; r < g_rounds; r++)
        for (int i = 0; i < 2; i++)
            if (read_variant(&v[(r + i) % 2], r)) return 1; /* alternate which goes first */
    printf("%llu MiB of gen.h batches, 32 MiB segments, 4 MiB chunks, %d cold read rounds\n",
           (unsigned long long)g_mib, g_rounds);
    for (int i = 0; i < 2; i++) {
        printf("%-10s offload %.2f s  stored %.1f MiB  cold read median %.1f MiB/s (", v[i].name,
               v[i].offload_s, (double)v[i].stored / MiB, median(v[i].read_mibs, g_rounds));
        for (int r = 0; r < g_rounds; r++) printf("%s%.1f", r ? " " : "", v[i].read_mibs[r]);
        printf(")\n");
    }
    printf("encrypted / plain: cold read %.2fx, offload time %.2fx, stored bytes %.4fx\n",
           median(v[1].read_mibs, g_rounds) / median(v[0].read_mibs, g_rounds),
           v[1].offload_s / v[0].offload_s, (double)v[1].stored / (double)v[0].stored);
    aead_rate();
    for (size_t i = 0; i < npool; i++) free(pool[i]);
    ts_fs_rmtree(g_root, NULL, 0);
    return 0;
}
