/*
 * tiering_test.h — what the engine unit tests (test_tiering.c: the local log;
 * test_tiering_remote.c: uploads, cold reads, recovery from the bucket;
 * test_tiering_retention.c: retention, the local bound, DeleteRecords) share:
 * the per-case environment (data dir, file:// bucket, config, engine) and
 * batch, append, read and roll helpers. Header-only (static inline), like tt.h.
 */
#ifndef TS_TESTS_TIERING_TEST_H
#define TS_TESTS_TIERING_TEST_H

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

/* The per-executable temp root (main sets it) and the case counter that
 * gives every env its own directory under it. */
static char g_root[256];
static int g_case;

typedef struct env {
    char dir[512], data[600], bucket[600], url[700];
    ts_config *cfg;
    ts_engine *eng;
    char err[1024];
} env;

static inline void env_init(env *e, const char *const *kv)
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

static inline ts_status env_open(env *e) { return ts_engine_open(e->cfg, &e->eng, e->err, sizeof(e->err)); }

/* Closes the engine (a restart within a test reopens it with env_open). */
static inline void env_close(env *e)
{
    ts_engine_close(e->eng);
    e->eng = NULL;
}

/* The end of every test that opened an env, after its `done:` label: the
 * tests check with TT_CHECK*, so a failed check still lands here and closes
 * the engine instead of leaving its threads and lock to the next test. */
static inline void env_done(env *e)
{
    env_close(e);
    ts_config_destroy(e->cfg);
}

/* A batch of n records of `size` bytes each, values derived from tag. */
static inline uint8_t *mk_batch(int n, size_t size, int tag, int64_t ts, size_t *len)
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

static inline ts_status append_n(ts_partition *p, int batches, int recs, size_t size, int64_t ts0,
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
static inline long read_all(ts_partition *p, int64_t from, char *err, size_t errlen)
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
static inline ts_status roll(ts_partition *p, char *err, size_t errlen)
{
    ts_status st;
    for (int i = 0; i < 3000; i++) {
        st = ts_partition_roll(p, err, errlen);
        if (st != TS_E_BACKPRESSURE) return st;
        ts_sleep_ms(5);
    }
    return st;
}

static inline size_t count_files(const char *dir, const char *suffix)
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

#endif
