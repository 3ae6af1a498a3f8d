/*
 * test_engine_e2e.c — the engine end to end, on whatever store
 * TS_TEST_REMOTE_URL names (default: a file:// bucket in a temp dir; the
 * RGW suite sets s3://...). Writes TS_E2E_BYTES (default 1 GiB) of varied,
 * compressible batches across 3 partitions with 16 MiB segments and 64 MiB
 * local retention, sampling local disk use throughout; then reads every
 * batch back byte for byte — also after reopening the engine and after
 * deleting the chunk cache — and checks tierctl's --json placement against
 * where the data really is.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "gen.h"
#include "objstore/objstore.h"
#include "tierstore.h"
#include "tt.h"

#define NPART 3
#define SEG_BYTES (16u << 20)
#define LOCAL_RET (64u << 20)
#define CACHE_CAP (64u << 20)

typedef struct wrote {
    int64_t base;
    uint64_t k;
} wrote;

static wrote *g_w[NPART];
static size_t g_nw[NPART];
static char g_dir[256], g_data[300], g_cache[300], g_url[600], g_cfgpath[320];
static int64_t g_ts0;
static atomic_ullong g_max_du;
static atomic_int g_stop;
static uint64_t g_bytes_written;

static void *monitor(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_stop)) {
        uint64_t du = ts_fs_du(g_data) + ts_fs_du(g_cache); /* segments + cache */
        if (du > atomic_load(&g_max_du)) atomic_store(&g_max_du, du);
        ts_sleep_ms(20);
    }
    return NULL;
}

static ts_config *make_cfg(void)
{
    ts_config *c = ts_config_create();
    char v[64];
    ts_config_set(c, "log.dirs", g_data, NULL, 0);
    ts_config_set(c, "remote.storage.url", g_url, NULL, 0);
    snprintf(v, sizeof(v), "%u", SEG_BYTES);
    ts_config_set(c, "log.segment.bytes", v, NULL, 0);
    snprintf(v, sizeof(v), "%u", LOCAL_RET);
    ts_config_set(c, "log.local.retention.bytes", v, NULL, 0);
    snprintf(v, sizeof(v), "%u", CACHE_CAP);
    ts_config_set(c, "remote.log.cache.bytes", v, NULL, 0);
    ts_config_set(c, "remote.log.cache.dir", g_cache, NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "remote.log.manager.task.interval.ms", "100", NULL, 0);
    return c;
}

static const wrote *find_wrote(int p, int64_t base)
{
    size_t lo = 0, hi = g_nw[p];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_w[p][mid].base < base) lo = mid + 1;
        else hi = mid;
    }
    return lo < g_nw[p] && g_w[p][lo].base == base ? &g_w[p][lo] : NULL;
}

/* Reads partition p from offset 0 to the end; every batch must equal the
 * regenerated one. Returns the number of mismatches (0 = all good). */
static long verify_partition(ts_engine *eng, int p, char *why, size_t whylen)
{
    ts_partition *part;
    char err[1024];
    if (ts_partition_open(eng, "e2e", p, 0, &part, err, sizeof(err))) {
        snprintf(why, whylen, "open: %s", err);
        return -1;
    }
    int64_t off = 0;
    size_t seen = 0;
    while (seen < g_nw[p]) {
        uint8_t *data;
        size_t len;
        ts_status st = ts_partition_read(part, off, 1 << 20, &data, &len, err, sizeof(err));
        if (st || !len) {
            snprintf(why, whylen, "p%d read at %lld: %s (%s)", p, (long long)off, ts_status_name(st),
                     st ? err : "empty");
            return -1;
        }
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            if (ts_batch_validate(data + pos, len - pos, 8 << 20, &h, err, sizeof(err))) {
                snprintf(why, whylen, "p%d bad batch at offset %lld: %s", p, (long long)off, err);
                free(data);
                return -1;
            }
            const wrote *w = find_wrote(p, h.base_offset);
            if (!w || h.base_offset < off) {
                snprintf(why, whylen, "p%d unexpected batch base %lld (reading from %lld)", p,
                         (long long)h.base_offset, (long long)off);
                free(data);
                return -1;
            }
            size_t glen;
            uint8_t *g = gen_batch(p, w->k, g_ts0, &glen, NULL);
            ts_batch_set_base_offset(g, h.base_offset);
            int same = glen == ts_batch_total_size(&h) && !memcmp(g, data + pos, glen);
            free(g);
            if (!same) {
                snprintf(why, whylen, "p%d batch at %lld differs from what was written", p,
                         (long long)h.base_offset);
                free(data);
                return 1;
            }
            seen++;
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(data);
    }
    return 0;
}

static int verify_all(ts_engine *eng, char *why, size_t whylen)
{
    for (int p = 0; p < NPART; p++)
        if (verify_partition(eng, p, why, whylen)) return -1;
    return 0;
}

TT_TEST(e2e_write_offload_read_back)
{
    char err[1024];
    uint64_t target = 1ull << 30;
    const char *env = getenv("TS_E2E_BYTES");
    if (env && *env) target = strtoull(env, NULL, 10);
    ts_config *cfg = make_cfg();
    ts_engine *eng;
    TT_OKE(ts_engine_open(cfg, &eng, err, sizeof(err)), err);
    ts_partition *parts[NPART];
    for (int p = 0; p < NPART; p++) TT_OKE(ts_partition_open(eng, "e2e", p, 1, &parts[p], err, sizeof(err)), err);

    pthread_t mon;
    pthread_create(&mon, NULL, monitor, NULL);
    size_t cap[NPART] = {0};
    uint64_t k[NPART] = {0};
    long backpressure = 0;
    int64_t t0 = ts_mono_ms();
    while (g_bytes_written < target) {
        for (int p = 0; p < NPART; p++) {
            size_t len;
            uint8_t *b = gen_batch(p, k[p], g_ts0, &len, NULL);
            int64_t first;
            ts_status st;
            while ((st = ts_partition_append(parts[p], b, len, &first, NULL, err, sizeof(err))) ==
                   TS_E_BACKPRESSURE) {
                backpressure++;
                ts_sleep_ms(5);
            }
            free(b);
            TT_OKE(st, err);
            if (g_nw[p] == cap[p]) {
                cap[p] = cap[p] ? cap[p] * 2 : 4096;
                g_w[p] = realloc(g_w[p], cap[p] * sizeof(wrote));
            }
            g_w[p][g_nw[p]++] = (wrote){first, k[p]};
            k[p]++;
            g_bytes_written += len;
        }
    }
    for (int p = 0; p < NPART; p++) {
        ts_status rst;
        while ((rst = ts_partition_roll(parts[p], err, sizeof(err))) == TS_E_BACKPRESSURE)
            ts_sleep_ms(5);
        TT_OKE(rst, err);
        TT_OKE(ts_partition_wait_uploaded(parts[p], 300000, err, sizeof(err)), err);
        TT_OKE(ts_partition_enforce_retention(parts[p], err, sizeof(err)), err);
    }
    int64_t write_ms = ts_mono_ms() - t0;
    atomic_store(&g_stop, 1);
    pthread_join(mon, NULL);
    uint64_t bound = NPART * ((uint64_t)LOCAL_RET + SEG_BYTES + (8u << 20)) + CACHE_CAP;
    ts_engine_stats es;
    ts_engine_stats_get(eng, &es);
    fprintf(stderr,
            "    wrote %.1f MiB in %lld ms (%ld backpressure retries); peak local disk %.1f MiB "
            "(bound %.1f MiB); remote %llu objects, %.1f MiB stored for %.1f MiB raw (ratio %.2f)\n",
            g_bytes_written / 1048576.0, (long long)write_ms, backpressure,
            atomic_load(&g_max_du) / 1048576.0, bound / 1048576.0,
            (unsigned long long)es.remote_objects, es.remote_bytes / 1048576.0,
            es.remote_raw_bytes / 1048576.0,
            es.remote_bytes ? (double)es.remote_raw_bytes / (double)es.remote_bytes : 0.0);
    TT_ASSERT_MSG(atomic_load(&g_max_du) <= bound, "local disk peaked at %llu > bound %llu",
                  (unsigned long long)atomic_load(&g_max_du), (unsigned long long)bound);
    TT_ASSERT(es.remote_objects >= NPART * (target / SEG_BYTES / NPART) - NPART);

    /* Placement: all but the newest segments are remote only. */
    for (int p = 0; p < NPART; p++) {
        ts_segment_info *rows;
        size_t n;
        TT_OKE(ts_partition_placement(parts[p], &rows, &n, err, sizeof(err)), err);
        size_t remote_only = 0;
        for (size_t i = 0; i < n; i++) remote_only += rows[i].location == TS_LOC_REMOTE;
        /* At most local retention's worth of closed segments + the
         * active one stay local; the rest is in the bucket only. */
        TT_ASSERT_MSG(remote_only + 1 + LOCAL_RET / SEG_BYTES >= n,
                      "p%d: only %zu of %zu segments remote-only", p, remote_only, n);
        if (target / NPART > 2ull * (LOCAL_RET + SEG_BYTES)) TT_ASSERT(remote_only > 0);
        free(rows);
    }

    /* tierctl --json agrees with the engine and with reality. */
    const char *tierctl = getenv("TS_TIERCTL");
    if (tierctl && *tierctl) {
        FILE *f = fopen(g_cfgpath, "w");
        fprintf(f, "log.dirs=%s\nremote.storage.url=%s\nremote.log.cache.dir=%s\n", g_data, g_url, g_cache);
        fclose(f);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s -c %s placement e2e --json", tierctl, g_cfgpath);
        FILE *pp = popen(cmd, "r");
        TT_ASSERT(pp != NULL);
        ts_buf out;
        ts_buf_init(&out, 64 << 20);
        char chunk[4096];
        size_t r;
        while ((r = fread(chunk, 1, sizeof(chunk), pp)) > 0) ts_buf_append(&out, chunk, r);
        TT_ASSERT_EQ_INT(pclose(pp), 0);
        ts_buf_append(&out, "", 1);
        cJSON *arr = cJSON_Parse((char *)out.data);
        ts_buf_free(&out);
        TT_ASSERT_MSG(arr && cJSON_IsArray(arr), "tierctl --json output does not parse");
        ts_objstore *os;
        TT_OKE(ts_objstore_open(g_url, NULL, &os, err, sizeof(err)), err);
        int rows = 0;
        cJSON *o;
        cJSON_ArrayForEach(o, arr)
        {
            rows++;
            int p = cJSON_GetObjectItem(o, "partition")->valueint;
            int64_t base = (int64_t)cJSON_GetObjectItem(o, "base_offset")->valuedouble;
            const char *loc = cJSON_GetObjectItem(o, "location")->valuestring;
            cJSON *key = cJSON_GetObjectItem(o, "object_key");
            char path[600];
            snprintf(path, sizeof(path), "%s/e2e-%d/%020lld.log", g_data, p, (long long)base);
            int local = access(path, F_OK) == 0;
            int want_local = !strcmp(loc, "local") || !strcmp(loc, "local+remote");
            int want_remote = !strcmp(loc, "remote") || !strcmp(loc, "local+remote");
            TT_ASSERT_MSG(local == want_local, "p%d base %lld: location %s but local file %s", p,
                          (long long)base, loc, local ? "exists" : "is absent");
            if (want_remote) {
                uint64_t sz;
                TT_ASSERT(cJSON_IsString(key));
                TT_OKE(ts_objstore_head(os, key->valuestring, &sz, err, sizeof(err)), err);
                TT_ASSERT_EQ_INT(sz, (int64_t)cJSON_GetObjectItem(o, "stored_bytes")->valuedouble);
            }
        }
        TT_ASSERT(rows > NPART);
        cJSON_Delete(arr);
        ts_objstore_destroy(os);
    }

    char why[2048] = "";
    int64_t r0 = ts_mono_ms();
    TT_ASSERT_MSG(verify_all(eng, why, sizeof(why)) == 0, "first read-back: %s", why);
    fprintf(stderr, "    read back all batches in %lld ms\n", (long long)(ts_mono_ms() - r0));
    ts_engine_close(eng);

    TT_OKE(ts_engine_open(cfg, &eng, err, sizeof(err)), err);
    TT_ASSERT_MSG(verify_all(eng, why, sizeof(why)) == 0, "after reopen: %s", why);
    ts_engine_close(eng);

    TT_OK(ts_fs_rmtree(g_cache, err, sizeof(err)));
    TT_OKE(ts_engine_open(cfg, &eng, err, sizeof(err)), err);
    TT_ASSERT_MSG(verify_all(eng, why, sizeof(why)) == 0, "after deleting the cache: %s", why);
    ts_engine_stats_get(eng, &es);
    if (target / NPART > 2ull * (LOCAL_RET + SEG_BYTES)) TT_ASSERT(es.cache_misses > 0);
    TT_ASSERT(ts_fs_du(g_cache) <= CACHE_CAP);
    ts_engine_close(eng);
    ts_config_destroy(cfg);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_dir, sizeof(g_dir), "e2e");
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_cache, sizeof(g_cache), "%s/cache", g_dir);
    snprintf(g_cfgpath, sizeof(g_cfgpath), "%s/tierctl.properties", g_dir);
    const char *url = getenv("TS_TEST_REMOTE_URL");
    if (url && *url) {
        /* A per-run prefix keeps runs on a shared bucket apart. */
        snprintf(g_url, sizeof(g_url), "%s/e2e-%s", url, strrchr(g_dir, '-') + 1);
    } else {
        snprintf(g_url, sizeof(g_url), "file://%s/bucket", g_dir);
    }
    g_ts0 = ts_now_ms();
    TT_RUN(e2e_write_offload_read_back);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_dir, NULL, 0);
    return tt_summary();
}
