/*
 * bench_batch.c — what the record walk (ts_batch_validate_records) costs on
 * zstd-compressed produce, against the frame-only check it was added to.
 *
 * The engine validates inside ts_partition_append and has no switch to skip
 * the walk (it must not have one), so the comparison is built from pieces
 * timed side by side in one process, several rounds interleaved:
 *   frame  ts_batch_validate (header, length, CRC-32C) over every batch
 *   full   the same plus ts_batch_validate_records (zstd decompression in the
 *          64 KiB window and the record walk)
 *   append ts_partition_append of every batch (remote storage off: the
 *          append path alone), which runs "full" inside
 * and the header-only append is estimated as append - (full - frame).
 * Batches: tests/integration/gen.h (JSON-ish records), their records
 * recompressed with zstd level 3 as librdkafka's default does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "gen.h"
#include "tierstore.h"

#define MiB (1024.0 * 1024.0)

typedef struct pool {
    uint8_t *data;
    size_t *off, *len, n, cap, ncap;
    uint64_t bytes, raw_bytes;
} pool;

static char err[1024];

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_batch: %s: %s\n", what, msg);
    exit(1);
}

static void pool_add(pool *pl, const uint8_t *b, size_t len)
{
    if (pl->bytes + len > pl->cap) {
        pl->cap = (pl->cap + len) * 2;
        if (!(pl->data = realloc(pl->data, pl->cap))) die("pool", "out of memory");
    }
    if (pl->n == pl->ncap) {
        pl->ncap = pl->ncap ? pl->ncap * 2 : 1024;
        pl->off = realloc(pl->off, pl->ncap * sizeof(size_t));
        pl->len = realloc(pl->len, pl->ncap * sizeof(size_t));
        if (!pl->off || !pl->len) die("pool", "out of memory");
    }
    memcpy(pl->data + pl->bytes, b, len);
    pl->off[pl->n] = (size_t)pl->bytes;
    pl->len[pl->n++] = len;
    pl->bytes += len;
}

/* The batch b with its records zstd-compressed (attributes codec 4). */
static void pool_add_zstd(pool *pl, const uint8_t *b, size_t len, ZSTD_CCtx *cc)
{
    size_t rl = len - TS_BATCH_HEADER_SIZE, cap = TS_BATCH_HEADER_SIZE + ZSTD_compressBound(rl);
    uint8_t *z = malloc(cap);
    memcpy(z, b, TS_BATCH_HEADER_SIZE);
    size_t cl = ZSTD_compressCCtx(cc, z + TS_BATCH_HEADER_SIZE, cap - TS_BATCH_HEADER_SIZE,
                                  b + TS_BATCH_HEADER_SIZE, rl, 3);
    if (ZSTD_isError(cl)) die("zstd", ZSTD_getErrorName(cl));
    size_t n = TS_BATCH_HEADER_SIZE + cl;
    ts_wr32(z + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    ts_wr16(z + 21, 4);
    ts_wr32(z + 17, ts_crc32c(0, z + 21, n - 21));
    pool_add(pl, z, n);
    free(z);
}

static double check_pass(const pool *pl, size_t max_batch, int walk)
{
    int64_t t0 = ts_mono_us();
    for (size_t i = 0; i < pl->n; i++) {
        ts_batch_hdr h;
        const uint8_t *b = pl->data + pl->off[i];
        if (ts_batch_validate(b, pl->len[i], max_batch, &h, err, sizeof(err))) die("frame", err);
        if (walk && ts_batch_validate_records(b, &h, max_batch, err, sizeof(err))) die("walk", err);
    }
    return (double)(ts_mono_us() - t0) / 1e6;
}

/* Floor: one-shot ZSTD_decompressDCtx of every batch's records into a
 * buffer big enough, no walk (what decompression alone costs). */
static double zstd_floor(const pool *pl, size_t max_batch)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    uint8_t *out = malloc(max_batch);
    int64_t t0 = ts_mono_us();
    for (size_t i = 0; i < pl->n; i++) {
        const uint8_t *b = pl->data + pl->off[i];
        size_t r = ZSTD_decompressDCtx(d, out, max_batch, b + TS_BATCH_HEADER_SIZE,
                                       pl->len[i] - TS_BATCH_HEADER_SIZE);
        if (ZSTD_isError(r)) die("zstd floor", ZSTD_getErrorName(r));
    }
    double s = (double)(ts_mono_us() - t0) / 1e6;
    free(out);
    ZSTD_freeDCtx(d);
    return s;
}

static double append_pass(const pool *pl, const char *root, int round)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/r%d", root, round);
    ts_config *c = ts_config_create();
    if (ts_config_set(c, "log.dirs", dir, err, sizeof(err)) ||
        ts_config_set(c, "remote.storage.enable", "false", err, sizeof(err)) ||
        ts_config_set(c, "log.segment.bytes", "33554432", err, sizeof(err)))
        die("config", err);
    ts_engine *e;
    ts_partition *p;
    if (ts_engine_open(c, &e, err, sizeof(err))) die("ts_engine_open", err);
    if (ts_partition_open(e, "bench", 0, 1, &p, err, sizeof(err))) die("ts_partition_open", err);
    int64_t t0 = ts_mono_us();
    for (size_t i = 0; i < pl->n; i++)
        if (ts_partition_append(p, pl->data + pl->off[i], pl->len[i], NULL, NULL, err,
                                sizeof(err)))
            die("append", err);
    double s = (double)(ts_mono_us() - t0) / 1e6;
    ts_engine_close(e);
    ts_config_destroy(c);
    return s;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 128;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const size_t max_batch = 1048588; /* message.max.bytes default */
    char root[] = "/tmp/bench-batch-XXXXXX";
    if (!mkdtemp(root)) die("mkdtemp", "failed");

    pool raw = {0}, zp = {0};
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    for (uint64_t k = 0; raw.bytes < mib << 20; k++) {
        size_t len;
        uint8_t *b = gen_batch(0, k, 1700000000000LL, &len, NULL);
        if (len <= max_batch) {
            pool_add(&raw, b, len);
            pool_add_zstd(&zp, b, len, cc);
        }
        free(b);
    }
    ZSTD_freeCCtx(cc);
    printf("# %zu batches, %.1f MiB of records, zstd-3 to %.1f MiB (%.2fx); %d rounds\n", zp.n,
           (double)raw.bytes / MiB, (double)zp.bytes / MiB, (double)raw.bytes / (double)zp.bytes,
           rounds);
    printf("# MiB/s are of the batches' uncompressed bytes\n");
    for (int r = 0; r < rounds; r++) {
        double frame = check_pass(&zp, max_batch, 0), full = check_pass(&zp, max_batch, 1);
        double rframe = check_pass(&raw, max_batch, 0), rfull = check_pass(&raw, max_batch, 1);
        double floor_s = zstd_floor(&zp, max_batch);
        double app = append_pass(&zp, root, r);
        double walk = full - frame, est = app - walk;
        double u = (double)raw.bytes / MiB;
        printf("round %d: zstd frame check %.0f MiB/s, frame+walk %.0f MiB/s (walk %.3f s); "
               "uncompressed frame %.0f, frame+walk %.0f MiB/s\n",
               r + 1, u / frame, u / full, walk, u / rframe, u / rfull);
        printf("         zstd one-shot decompression alone %.0f MiB/s (walk / that: %.2fx)\n",
               u / floor_s, walk / floor_s);
        printf("         append zstd (with walk) %.0f MiB/s, estimated header-only %.0f MiB/s: "
               "ratio with/without %.2fx (walk = %.0f%% of append time)\n",
               u / app, u / est, est / app, 100.0 * walk / app);
    }
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd)) fprintf(stderr, "bench_batch: could not remove %s\n", root);
    return 0;
}
