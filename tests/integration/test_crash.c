/*
 * test_crash.c — SIGKILL the writer at random moments (during appends,
 * rolls, uploads and manifest commits), reopen, and check:
 *  - every batch the writer logged as flushed is readable at the offset it
 *    was given, byte-identical;
 *  - every batch in the log appears exactly once and in order (k = 0, 1,
 *    2, ... with strictly increasing offsets);
 *  - no manifest entry points at a missing object;
 *  - once the reopened engine has tiered its closed segments, a fresh
 *    engine on an empty data directory reads every one of those offsets
 *    from the bucket alone (manifest heads + pieces), byte-identical (every
 *    3rd trial and the last; TS_CRASH_BUCKET_EVERY=1 for all).
 * The writer keeps 2 entries per manifest head, so commits write pieces and
 * kills hit the window between a piece and its head.
 * TS_CRASH_TRIALS (default 24) kills; TS_TEST_REMOTE_URL picks the store.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "gen.h"
#include "objstore/objstore.h"
#include "tierstore.h"
#include "tt.h"

static char g_dir[256], g_data[300], g_url[600], g_log[320], g_writer[512], g_fresh[300];
static int g_trials = 24, g_bucket_every = 3;

static int64_t batch_k(const uint8_t *b, size_t len)
{
    for (size_t i = 0; i + 4 < len; i++)
        if (!memcmp(b + i, "\"k\":", 4)) return strtoll((const char *)b + i + 4, NULL, 10);
    return -1;
}

/* An engine on an empty data directory reads [log start, remote_end] from
 * the bucket alone: every batch in order, as written. */
static int check_bucket_alone(int trial, int64_t remote_end, char *why, size_t whylen)
{
    char err[1024];
    ts_fs_rmtree(g_fresh, NULL, 0);
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", g_fresh, NULL, 0);
    ts_config_set(c, "remote.storage.url", g_url, NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0);
    ts_engine *eng;
    ts_partition *p;
    int rc = -1;
    if (ts_engine_open(c, &eng, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: fresh engine: %s", trial, err);
        ts_config_destroy(c);
        return -1;
    }
    int64_t off = 0, expect_k = 0;
    if (ts_partition_open(eng, "crash", 0, 0, &p, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: open from the bucket alone: %s", trial, err);
        goto out;
    }
    while (off <= remote_end) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 1 << 20, &d, &len, err, sizeof(err)) || !len) {
            snprintf(why, whylen, "trial %d: from the bucket alone, offset %lld (tiered up to "
                     "%lld): %s", trial, (long long)off, (long long)remote_end,
                     len ? err : "nothing");
            goto out;
        }
        for (size_t pos = 0; pos < len;) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 8 << 20, &h, err, sizeof(err))) {
                snprintf(why, whylen, "trial %d: bucket alone: invalid batch: %s", trial, err);
                free(d);
                goto out;
            }
            size_t sz = ts_batch_total_size(&h), glen;
            int64_t k = batch_k(d + pos, sz);
            uint8_t *g = gen_batch(0, (uint64_t)k, 1700000000000LL, &glen, NULL);
            ts_batch_set_base_offset(g, h.base_offset);
            int same = k == expect_k && glen == sz && !memcmp(g, d + pos, sz);
            free(g);
            if (!same) {
                snprintf(why, whylen, "trial %d: bucket alone: batch at %lld is k=%lld, expected "
                         "k=%lld as written", trial, (long long)h.base_offset, (long long)k,
                         (long long)expect_k);
                free(d);
                goto out;
            }
            expect_k++;
            off = ts_batch_last_offset(&h) + 1;
            pos += sz;
        }
        free(d);
    }
    rc = 0;
out:
    ts_engine_close(eng);
    ts_config_destroy(c);
    ts_fs_rmtree(g_fresh, NULL, 0);
    return rc;
}

/* Checks the partition after a crash. Returns 0 when everything holds. */
static int check(int trial, char *why, size_t whylen, int64_t *nbatches)
{
    char err[1024];
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", g_data, NULL, 0);
    ts_config_set(c, "remote.storage.url", g_url, NULL, 0);
    ts_config_set(c, "message.max.bytes", "8388608", NULL, 0);
    ts_config_set(c, "log.retention.ms", "-1", NULL, 0);
    ts_config_set(c, "log.segment.bytes", "262144", NULL, 0);
    ts_config_set(c, "remote.log.manifest.head.segments", "2", NULL, 0);
    ts_engine *eng;
    int rc = -1;
    int64_t remote_end = -1;
    if (ts_engine_open(c, &eng, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: reopen failed: %s", trial, err);
        ts_config_destroy(c);
        return -1;
    }
    ts_partition *p;
    int64_t *kat = NULL; /* kat[k] = base offset read back */
    size_t kcap = 0;
    int64_t expect_k = 0, off = 0, prev_base = -1;
    if (ts_partition_open(eng, "crash", 0, 0, &p, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: partition open failed: %s", trial, err);
        goto out;
    }
    for (;;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 1 << 20, &d, &len, err, sizeof(err))) {
            snprintf(why, whylen, "trial %d: read at %lld: %s", trial, (long long)off, err);
            goto out;
        }
        if (!len) break;
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 8 << 20, &h, err, sizeof(err))) {
                snprintf(why, whylen, "trial %d: invalid batch at %lld: %s", trial, (long long)off, err);
                free(d);
                goto out;
            }
            size_t sz = ts_batch_total_size(&h);
            int64_t k = batch_k(d + pos, sz);
            if (k != expect_k || h.base_offset <= prev_base) {
                snprintf(why, whylen, "trial %d: batch at %lld is k=%lld, expected k=%lld "
                         "(duplicate, gap or reorder)", trial, (long long)h.base_offset,
                         (long long)k, (long long)expect_k);
                free(d);
                goto out;
            }
            size_t glen;
            uint8_t *g = gen_batch(0, (uint64_t)k, 1700000000000LL, &glen, NULL);
            ts_batch_set_base_offset(g, h.base_offset);
            int same = glen == sz && !memcmp(g, d + pos, sz);
            free(g);
            if (!same) {
                snprintf(why, whylen, "trial %d: batch k=%lld differs from what was written",
                         trial, (long long)k);
                free(d);
                goto out;
            }
            if ((size_t)k >= kcap) {
                kcap = kcap ? kcap * 2 : 1024;
                while ((size_t)k >= kcap) kcap *= 2;
                kat = realloc(kat, kcap * sizeof(int64_t));
            }
            kat[k] = h.base_offset;
            prev_base = h.base_offset;
            expect_k++;
            off = ts_batch_last_offset(&h) + 1;
            pos += sz;
        }
        free(d);
    }
    /* Every flushed batch is there, at its offset. */
    FILE *f = fopen(g_log, "r");
    long long k, base;
    long flushed = 0;
    while (f && fscanf(f, "%lld %lld", &k, &base) == 2) {
        flushed++;
        if (k >= expect_k || kat[k] != base) {
            snprintf(why, whylen, "trial %d: flushed batch k=%lld at offset %lld is missing "
                     "(log holds %lld batches)", trial, k, base, (long long)expect_k);
            fclose(f);
            goto out;
        }
    }
    if (f) fclose(f);
    /* No manifest entry without its object. */
    ts_segment_info *rows;
    size_t n;
    if (ts_partition_placement(p, &rows, &n, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: placement: %s", trial, err);
        goto out;
    }
    ts_objstore *os;
    ts_objstore_open(g_url, NULL, &os, err, sizeof(err));
    for (size_t i = 0; i < n; i++) {
        uint64_t sz;
        if (rows[i].object_key[0] &&
            ts_objstore_head(os, rows[i].object_key, &sz, err, sizeof(err)) != TS_OK) {
            snprintf(why, whylen, "trial %d: manifest names %s but: %s", trial, rows[i].object_key, err);
            free(rows);
            ts_objstore_destroy(os);
            goto out;
        }
    }
    free(rows);
    ts_objstore_destroy(os);
    /* Tier everything closed, then note how far the bucket must reach. */
    if (ts_partition_wait_uploaded(p, 60000, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: wait_uploaded: %s", trial, err);
        goto out;
    }
    if (ts_partition_placement(p, &rows, &n, err, sizeof(err))) {
        snprintf(why, whylen, "trial %d: placement: %s", trial, err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].location == TS_LOC_REMOTE || rows[i].location == TS_LOC_LOCAL_REMOTE)
            if (rows[i].last_offset > remote_end) remote_end = rows[i].last_offset;
    free(rows);
    *nbatches = expect_k;
    fprintf(stderr, "    trial %2d: %lld batches, %ld flushed, all present once and in order\n",
            trial, (long long)expect_k, flushed);
    rc = 0;
out:
    free(kat);
    ts_engine_close(eng);
    ts_config_destroy(c);
    /* The bucket-alone read costs a cold read of everything tiered: every
     * g_bucket_every-th trial and the last one (TS_CRASH_BUCKET_EVERY). */
    if (rc == 0 && remote_end >= 0 && (trial % g_bucket_every == 0 || trial == g_trials))
        rc = check_bucket_alone(trial, remote_end, why, whylen);
    return rc;
}

TT_TEST(crash_sigkill_trials)
{
    int trials = 24;
    const char *e = getenv("TS_CRASH_TRIALS");
    if (e && *e) trials = atoi(e);
    g_trials = trials;
    e = getenv("TS_CRASH_BUCKET_EVERY");
    if (e && atoi(e) > 0) g_bucket_every = atoi(e);
    srand((unsigned)ts_now_ms());
    int64_t last = 0;
    for (int t = 1; t <= trials; t++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl(g_writer, g_writer, g_data, g_url, g_log, (char *)NULL);
            _exit(127);
        }
        TT_ASSERT(pid > 0);
        ts_sleep_ms(150 + rand() % 900);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        TT_ASSERT_MSG(WIFSIGNALED(status), "writer exited on its own (status %d): see its stderr",
                      status);
        char why[1024] = "";
        int64_t n = 0;
        TT_ASSERT_MSG(check(t, why, sizeof(why), &n) == 0, "%s", why);
        TT_ASSERT_MSG(n >= last, "trial %d: log shrank from %lld to %lld batches", t, (long long)last,
                      (long long)n);
        last = n;
    }
    TT_ASSERT(last > 0);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (argc > 1 && argv[1][0] == '/') {
        snprintf(g_writer, sizeof(g_writer), "%s", argv[1]);
        argc--, argv++;
        TT_INIT(argc, argv);
    } else {
        snprintf(g_writer, sizeof(g_writer), "./crash_writer");
    }
    tt_tmpdir(g_dir, sizeof(g_dir), "crash");
    snprintf(g_data, sizeof(g_data), "%s/data", g_dir);
    snprintf(g_log, sizeof(g_log), "%s/flushed.log", g_dir);
    snprintf(g_fresh, sizeof(g_fresh), "%s/fresh", g_dir);
    const char *url = getenv("TS_TEST_REMOTE_URL");
    if (url && *url) snprintf(g_url, sizeof(g_url), "%s/crash-%s", url, strrchr(g_dir, '-') + 1);
    else snprintf(g_url, sizeof(g_url), "file://%s/bucket", g_dir);
    TT_RUN(crash_sigkill_trials);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_dir, NULL, 0);
    return tt_summary();
}
