/*
 * test_s3_suite.c — the S3 integration suite: every objstore operation
 * against a real S3-compatible server, plus interop with the AWS CLI and
 * failures injected by faultproxy.py sitting between the client and the
 * server.
 *
 * The server comes from the environment, so the same suite runs against
 * Ceph RGW here (tests/rgw/start.sh), MinIO (minio-compose/) or AWS:
 *   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
 *   TS_S3_TEST_BUCKET (an existing bucket; each run works under a fresh
 *   random prefix and deletes it at the end).
 * Without them every group exits 77, which ctest reports as skipped.
 *
 *   test_s3_suite --group ops|list|multipart|conditional|auth|interop|tls|faults|big [test...]
 *
 * The tls group also needs TS_S3_TEST_TLS_ENDPOINT (an https:// endpoint of
 * the same server) and TS_S3_TEST_CA_BUNDLE (the CA that signed it), which
 * tests/rgw/start.sh provides; without them it checks nothing.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "objstore/objstore.h"
#include "objstore/s3.h"
#include "tt.h"

extern char **environ;

#define MiB (1024 * 1024)

static char g_bucket[256];
static char g_prefix[128];   /* "ts-test-<hex>" */
static char g_url[512];      /* s3://bucket/prefix */
static char g_endpoint[512]; /* AWS_ENDPOINT_URL */
static char err[2048];
static uint64_t hsize; /* HEAD results the tests ignore */

/* ------------------------------------------------------------------ helpers */

/* Deterministic content: byte i of object `seed`. */
static void gen(uint32_t seed, uint64_t off, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull + seed;
        out[i] = (uint8_t)(x >> 56 ^ x >> 29);
    }
}

static int check_gen(uint32_t seed, uint64_t off, const uint8_t *p, size_t n)
{
    uint8_t buf[4096];
    for (size_t at = 0; at < n; at += sizeof(buf)) {
        size_t k = n - at < sizeof(buf) ? n - at : sizeof(buf);
        gen(seed, off + at, buf, k);
        if (memcmp(buf, p + at, k)) return 0;
    }
    return 1;
}

static ts_config *base_cfg(void)
{
    ts_config *c = ts_config_create();
    ts_config_set(c, "remote.storage.request.timeout.ms", "20000", NULL, 0);
    ts_config_set(c, "remote.storage.operation.timeout.ms", "60000", NULL, 0);
    return c;
}

static ts_objstore *open_store(ts_config *cfg)
{
    ts_objstore *os = NULL;
    ts_status st = ts_objstore_open(g_url, cfg, &os, err, sizeof(err));
    if (st) {
        fprintf(stderr, "    cannot open %s: %s\n", g_url, err);
        return NULL;
    }
    return os;
}

/* What almost every test sets up: the suite's config plus the test's own
 * "key=value" settings (NULL-terminated), and a store opened with it,
 * directly or through the fault proxy (open_via_proxy, below). Tests check
 * the store with TT_CHECK and end in `done: fixture_close(&fx);`, so a failed
 * check still closes the store. Between writer_open and its commit/abort
 * they use TT_ASSERT instead: the writer's part threads use the store, so a
 * failure there returns without closing it (it leaks, as before, rather
 * than being freed under those threads). */
typedef struct fixture {
    ts_config *cfg;
    ts_objstore *os;
} fixture;

enum { DIRECT, VIA_PROXY };

static ts_objstore *open_via_proxy(ts_config *cfg);

static ts_objstore *fixture_open(fixture *f, int how, ...)
{
    f->cfg = base_cfg();
    f->os = NULL;
    va_list ap;
    va_start(ap, how);
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        char key[128];
        const char *eq = strchr(kv, '=');
        snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - kv) : 0, kv);
        if (!eq || ts_config_set(f->cfg, key, eq + 1, err, sizeof(err))) {
            fprintf(stderr, "    fixture setting '%s': %s\n", kv, eq ? err : "no '='");
            va_end(ap);
            return NULL;
        }
    }
    va_end(ap);
    f->os = how == VIA_PROXY ? open_via_proxy(f->cfg) : open_store(f->cfg);
    return f->os;
}

/* Opens the store again with f->cfg as the test changed it. */
static ts_objstore *fixture_reopen(fixture *f, int how)
{
    ts_objstore_destroy(f->os);
    f->os = how == VIA_PROXY ? open_via_proxy(f->cfg) : open_store(f->cfg);
    return f->os;
}

static void fixture_close(fixture *f)
{
    ts_objstore_destroy(f->os);
    ts_config_destroy(f->cfg);
    f->os = NULL;
    f->cfg = NULL;
}

static ts_s3_stats stats(ts_objstore *os)
{
    ts_s3_stats s;
    ts_objstore_s3_stats(os, &s);
    return s;
}

static int count_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (*(size_t *)opaque)++;
    return 0;
}

/* Removes everything under the run's prefix. */
static int collect_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    ts_buf *b = opaque;
    return ts_buf_append(b, key, strlen(key) + 1) != TS_OK;
}

static void wipe_prefix(void)
{
    ts_config *cfg = base_cfg();
    ts_objstore *os = open_store(cfg);
    ts_config_destroy(cfg);
    if (!os) return;
    ts_buf b;
    ts_buf_init(&b, 0);
    if (ts_objstore_list(os, "", collect_cb, &b, err, sizeof(err)) == TS_OK && b.len) {
        size_t n = 0;
        for (size_t i = 0; i < b.len; i++) n += b.data[i] == '\0';
        const char **keys = calloc(n, sizeof(*keys));
        size_t k = 0;
        for (size_t i = 0; i < b.len; i += strlen((char *)b.data + i) + 1)
            keys[k++] = (char *)b.data + i;
        if (ts_objstore_delete_many(os, keys, n, err, sizeof(err)))
            fprintf(stderr, "cleanup of %s failed: %s\n", g_url, err);
        free(keys);
    }
    ts_buf_free(&b);
    ts_objstore_destroy(os);
}

/* Runs a shell command with the AWS env; returns its exit status. */
static int sh(const char *fmt, ...) TS_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* ------------------------------------------------------------------ ops */

TT_TEST(put_get_head_delete)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    const char *key = "ops/odd name+=&%~ü/obj.bin";
    size_t n = 100000;
    uint8_t *data = malloc(n);
    gen(1, 0, data, n);
    TT_CHECK_OKE(ts_objstore_put(os, key, data, n, 0, err, sizeof(err)), err);
    uint64_t size = 0;
    TT_CHECK_OKE(ts_objstore_head(os, key, &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, n);
    uint8_t *out;
    size_t out_len;
    TT_CHECK_OKE(ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
                 err);
    TT_CHECK(out_len == n && !memcmp(out, data, n));
    free(out);
    /* Ranges: middle, to the end, running past the end. */
    TT_CHECK_OKE(ts_objstore_get(os, key, 4321, 777, &out, &out_len, err, sizeof(err)), err);
    TT_CHECK(out_len == 777 && !memcmp(out, data + 4321, 777));
    free(out);
    TT_CHECK_OKE(
        ts_objstore_get(os, key, n - 10, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
        err);
    TT_CHECK(out_len == 10 && !memcmp(out, data + n - 10, 10));
    free(out);
    TT_CHECK_OKE(ts_objstore_get(os, key, n - 5, 100, &out, &out_len, err, sizeof(err)), err);
    TT_CHECK(out_len == 5 && !memcmp(out, data + n - 5, 5));
    free(out);
    /* A range starting at the end is refused like the fs backend does. */
    TT_CHECK_EQ_INT(ts_objstore_get(os, key, n, 100, &out, &out_len, err, sizeof(err)), TS_E_INVAL);
    TT_CHECK(out == NULL && strstr(err, "not satisfiable"));
    /* Overwrite, then delete twice (missing is fine), then it is gone. */
    TT_CHECK_OKE(ts_objstore_put(os, key, data, 10, 0, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_head(os, key, &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 10);
    TT_CHECK_OKE(ts_objstore_delete(os, key, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_delete(os, key, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(ts_objstore_head(os, key, &size, err, sizeof(err)), TS_E_NOT_FOUND);
    TT_CHECK_EQ_INT(ts_objstore_get(os, key, 0, 10, &out, &out_len, err, sizeof(err)),
                    TS_E_NOT_FOUND);
    TT_CHECK_MSG(strstr(err, "ops/odd") != NULL, "message names the key: %s", err);
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(empty_object)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_put(os, "ops/empty", "", 0, 0, err, sizeof(err)), err);
    uint64_t size = 1;
    TT_CHECK_OKE(ts_objstore_head(os, "ops/empty", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 0);
    uint8_t *out;
    size_t out_len = 9;
    TT_CHECK_OKE(
        ts_objstore_get(os, "ops/empty", 0, TS_OBJSTORE_TO_END, &out, &out_len, err, sizeof(err)),
        err);
    TT_CHECK_EQ_INT(out_len, 0);
    free(out);
    /* An empty writer commits an empty object with one PUT. */
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/empty-w", &w, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_OKE(ts_objstore_head(os, "ops/empty-w", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, 0);
done:
    fixture_close(&fx);
}
TT_TEST(writer_small_is_one_put)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    uint8_t buf[3000];
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/small-w", &w, err, sizeof(err)), err);
    for (int i = 0; i < 100; i++) {
        gen(2, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
        TT_OKE(ts_objstore_writer_write(w, buf, sizeof(buf), err, sizeof(err)), err);
    }
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(
        ts_objstore_get(os, "ops/small-w", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)), err);
    TT_CHECK(n == 300000 && check_gen(2, 0, out, n));
    free(out);
    /* Abort before commit: nothing appears. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "ops/aborted-w", &w, err, sizeof(err)), err);
    TT_OKE(ts_objstore_writer_write(w, buf, sizeof(buf), err, sizeof(err)), err);
    ts_objstore_writer_abort(w);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "ops/aborted-w", &hsize, err, sizeof(err)),
                    TS_E_NOT_FOUND);
done:
    fixture_close(&fx);
}
TT_TEST(delete_many_batches)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    char names[30][64];
    const char *keys[31];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "del/k%02d&<'\">", i);
        keys[i] = names[i];
        TT_CHECK_OKE(ts_objstore_put(os, keys[i], "x", 1, 0, err, sizeof(err)), err);
    }
    keys[30] = "del/never-existed";
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, 31, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1); /* one DeleteObjects */
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "del/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ list */

#define NKEYS 1105

typedef struct put_job {
    ts_objstore *os;
    int from, to;
    ts_status st;
    char err[512];
} put_job;

static void *put_range(void *arg)
{
    put_job *j = arg;
    for (int i = j->from; i < j->to && !j->st; i++) {
        char key[64];
        snprintf(key, sizeof(key), "many/key-%05d", i);
        j->st = ts_objstore_put(j->os, key, key, (size_t)(i % 7), 0, j->err, sizeof(j->err));
    }
    return NULL;
}

typedef struct seen {
    int n, sorted, sizes_ok, stop_at;
    char last[64];
} seen;

static int seen_cb(const char *key, uint64_t size, void *opaque)
{
    seen *s = opaque;
    int i;
    if (sscanf(key, "many/key-%05d", &i) != 1 || size != (uint64_t)(i % 7)) s->sizes_ok = 0;
    if (s->n && strcmp(s->last, key) >= 0) s->sorted = 0;
    snprintf(s->last, sizeof(s->last), "%s", key);
    s->n++;
    return s->stop_at && s->n >= s->stop_at;
}

TT_TEST(list_pagination)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    pthread_t t[8];
    put_job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (put_job){os, i * NKEYS / 8, (i + 1) * NKEYS / 8, TS_OK, ""};
        pthread_create(&t[i], NULL, put_range, &jobs[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) TT_CHECK_MSG(jobs[i].st == TS_OK, "put: %s", jobs[i].err);
    TT_CHECK_OKE(ts_objstore_put(os, "other/x", "x", 1, 0, err, sizeof(err)), err);

    /* Default pages of 1000: two ListObjectsV2 requests. */
    seen s = {.sorted = 1, .sizes_ok = 1};
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s.n, NKEYS);
    TT_CHECK(s.sorted && s.sizes_ok);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);

    /* Small pages: many continuation tokens, same answer. */
    ts_objstore_s3_set_list_page(os, 97);
    seen s2 = {.sorted = 1, .sizes_ok = 1};
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s2, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s2.n, NKEYS);
    TT_CHECK(s2.sorted && s2.sizes_ok);
    TT_CHECK_EQ_INT(stats(os).requests - before, (NKEYS + 96) / 97);

    /* Early stop stops paging. */
    seen s3 = {.sorted = 1, .sizes_ok = 1, .stop_at = 150};
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", seen_cb, &s3, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(s3.n, 150);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);

    /* The whole run prefix holds the extra key too; an unknown prefix nothing. */
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "other/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 1);
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "nothing-here/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);

    /* Delete them all: two DeleteObjects batches (1000 + 105). */
    static char names[NKEYS][32];
    static const char *keys[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "many/key-%05d", i);
        keys[i] = names[i];
    }
    ts_objstore_s3_set_list_page(os, 1000);
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, NKEYS, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 2);
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "many/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ multipart */

static ts_status write_gen(ts_objstore_writer *w, uint32_t seed, uint64_t total, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    ts_status st = TS_OK;
    for (uint64_t off = 0; off < total && !st; off += chunk) {
        size_t k = total - off < chunk ? (size_t)(total - off) : chunk;
        gen(seed, off, buf, k);
        st = ts_objstore_writer_write(w, buf, k, err, sizeof(err));
    }
    free(buf);
    return st;
}

static int verify_ranges(ts_objstore *os, const char *key, uint32_t seed, uint64_t total,
                         const uint64_t *offs, size_t n, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *out;
        size_t got;
        if (ts_objstore_get(os, key, offs[i], len, &out, &got, err, sizeof(err))) return 0;
        size_t want = offs[i] + len > total ? (size_t)(total - offs[i]) : len;
        int ok = got == want && check_gen(seed, offs[i], out, got);
        free(out);
        if (!ok) return 0;
    }
    return 1;
}

TT_TEST(multipart_parallel_bounded)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=3", NULL);
    TT_CHECK(os);
    uint64_t total = 23 * MiB + 12345;
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/23m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 3, total, 1000003), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    ts_s3_stats s = stats(os);
    TT_CHECK_MSG(s.part_buf_peak <= 3ull * 5 * MiB, "part buffers peaked at %llu",
                 (unsigned long long)s.part_buf_peak);
    TT_CHECK_EQ_INT(s.part_buf_bytes, 0);
    uint64_t size;
    TT_CHECK_OKE(ts_objstore_head(os, "mp/23m", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, total);
    uint64_t offs[] = {0, 5 * MiB - 100, 10 * MiB - 1, 20 * MiB + 7, total - 50};
    TT_CHECK_MSG(verify_ranges(os, "mp/23m", 3, total, offs, 5, 4096), "range mismatch %s", err);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "mp/23m", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
                 err);
    TT_CHECK(n == total && check_gen(3, 0, out, n));
    free(out);
done:
    fixture_close(&fx);
}
TT_TEST(multipart_exact_multiple_and_exact_part)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=2", NULL);
    TT_CHECK(os);
    ts_objstore_writer *w;
    /* Exactly one part: a single PUT. */
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/5m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 4, 5 * MiB, 65536), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1);
    /* Exactly two parts: create, 2 parts, complete, HEAD check; no empty part. */
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/10m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 5, 10 * MiB, 5 * MiB), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 5);
    uint64_t offs[] = {0, 5 * MiB - 1, 10 * MiB - 4096};
    TT_CHECK(verify_ranges(os, "mp/10m", 5, 10 * MiB, offs, 3, 4096));
    /* Abort after parts went up: nothing visible. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/aborted", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 6, 12 * MiB, MiB), err);
    ts_objstore_writer_abort(w);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "mp/aborted", &hsize, err, sizeof(err)), TS_E_NOT_FOUND);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ conditional */

TT_TEST(put_if_none_match)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, NULL);
    TT_CHECK(os);
    TT_CHECK_OKE(
        ts_objstore_put(os, "cond/manifest", "first", 5, TS_PUT_IF_NONE_MATCH, err, sizeof(err)),
        err);
    ts_status st =
        ts_objstore_put(os, "cond/manifest", "second", 6, TS_PUT_IF_NONE_MATCH, err, sizeof(err));
    TT_CHECK_MSG(st == TS_E_EXISTS, "second conditional put: %s (%s)", ts_status_name(st), err);
    TT_CHECK(strstr(err, "cond/manifest") != NULL);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(
        ts_objstore_get(os, "cond/manifest", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
        err);
    TT_CHECK(n == 5 && !memcmp(out, "first", 5));
    free(out);
    /* A plain put still overwrites. */
    TT_CHECK_OKE(ts_objstore_put(os, "cond/manifest", "third", 5, 0, err, sizeof(err)), err);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ auth */

TT_TEST(wrong_secret_one_clear_error)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *bad_secret = "definitely-not-the-secret-0123456789abcdef";
    char id_kv[300], secret_kv[300];
    snprintf(id_kv, sizeof(id_kv), "aws.access.key.id=%s", id);
    snprintf(secret_kv, sizeof(secret_kv), "aws.secret.access.key=%s", bad_secret);
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, id_kv, secret_kv, NULL);
    TT_CHECK(os);
    int64_t t0 = ts_mono_ms();
    ts_status st = ts_objstore_put(os, "auth/x", "x", 1, 0, err, sizeof(err));
    int64_t took = ts_mono_ms() - t0;
    fprintf(stderr, "    message: %s\n", err);
    TT_CHECK_EQ_INT(st, TS_E_AUTH);
    TT_CHECK_EQ_INT(stats(os).requests, 1); /* no retry storm */
    TT_CHECK_EQ_INT(stats(os).retries, 0);
    TT_CHECK(took < 5000);
    TT_CHECK_MSG(strstr(err, id) != NULL, "names the access key id");
    TT_CHECK_MSG(strstr(err, g_endpoint) != NULL, "names the endpoint");
    TT_CHECK_MSG(strstr(err, bad_secret) == NULL, "never the secret");
    TT_CHECK(strstr(err, getenv("AWS_SECRET_ACCESS_KEY")) == NULL);
    /* Reads and listings fail the same way, once each. */
    uint8_t *out;
    size_t n;
    TT_CHECK_EQ_INT(ts_objstore_get(os, "auth/x", 0, 10, &out, &n, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "auth/x", &hsize, err, sizeof(err)), TS_E_AUTH);
    size_t cnt = 0;
    TT_CHECK_EQ_INT(ts_objstore_list(os, "", count_cb, &cnt, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK_EQ_INT(stats(os).requests, 4);
    /* An unknown access key id too. */
    ts_config_set(fx.cfg, "aws.access.key.id", "TSNOSUCHKEYID0000000", NULL, 0);
    os = fixture_reopen(&fx, DIRECT);
    TT_CHECK(os);
    TT_CHECK_EQ_INT(ts_objstore_put(os, "auth/x", "x", 1, 0, err, sizeof(err)), TS_E_AUTH);
    TT_CHECK(strstr(err, "TSNOSUCHKEYID0000000") != NULL);
    TT_CHECK_EQ_INT(stats(os).requests, 1);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ interop */

TT_TEST(aws_cli_reads_what_we_wrote)
{
    if (access("/usr/bin/aws", X_OK)) {
        fprintf(stderr, "    /usr/bin/aws not installed; nothing to check against\n");
        TT_ASSERT(!"/usr/bin/aws missing (apt-get install awscli)");
    }
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, "s3.multipart.part.bytes=5242880", NULL);
    TT_CHECK(os);
    char dir[256];
    tt_tmpdir(dir, sizeof(dir), "s3interop");
    /* One single-PUT object and one multipart object. */
    size_t small = 123457;
    uint8_t *data = malloc(small);
    gen(7, 0, data, small);
    TT_CHECK_OKE(ts_objstore_put(os, "interop/small.bin", data, small, 0, err, sizeof(err)), err);
    ts_objstore_writer *w;
    uint64_t big = 13 * MiB + 5;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "interop/big.bin", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 8, big, 777777), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);

    char ls[512];
    snprintf(ls, sizeof(ls), "%s/ls.txt", dir);
    TT_CHECK_EQ_INT(sh("/usr/bin/aws --endpoint-url '%s' s3 ls 's3://%s/%s/interop/' > '%s'",
                       g_endpoint, g_bucket, g_prefix, ls),
                    0);
    uint8_t *txt;
    size_t tl;
    TT_CHECK_OKE(ts_fs_read_all(ls, 1 << 20, &txt, &tl, err, sizeof(err)), err);
    txt = realloc(txt, tl + 1);
    txt[tl] = 0;
    char want[128];
    snprintf(want, sizeof(want), "%zu small.bin", small);
    TT_CHECK_MSG(strstr((char *)txt, want) && strstr((char *)txt, "13631493 big.bin"),
                 "aws s3 ls output:\n%s", (char *)txt);
    free(txt);
    const char *names[2] = {"small.bin", "big.bin"};
    uint32_t seeds[2] = {7, 8};
    uint64_t sizes[2] = {small, big};
    for (int i = 0; i < 2; i++) {
        char local[512];
        snprintf(local, sizeof(local), "%s/%s", dir, names[i]);
        TT_CHECK_EQ_INT(
            sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet 's3://%s/%s/interop/%s' '%s'",
               g_endpoint, g_bucket, g_prefix, names[i], local),
            0);
        uint8_t *got;
        size_t gl;
        TT_CHECK_OKE(ts_fs_read_all(local, 64 * MiB, &got, &gl, err, sizeof(err)), err);
        TT_CHECK_MSG(gl == sizes[i] && check_gen(seeds[i], 0, got, gl), "%s differs", names[i]);
        free(got);
    }
    /* And the other way round: what the AWS CLI uploads (multipart at its
     * 8 MiB threshold) we read back. */
    char up[512];
    snprintf(up, sizeof(up), "%s/up.bin", dir);
    FILE *f = fopen(up, "wb");
    uint8_t *chunk = malloc(MiB);
    for (int i = 0; i < 9; i++) {
        gen(9, (uint64_t)i * MiB, chunk, MiB);
        fwrite(chunk, 1, MiB, f);
    }
    fclose(f);
    free(chunk);
    TT_CHECK_EQ_INT(
        sh("/usr/bin/aws --endpoint-url '%s' s3 cp --quiet '%s' 's3://%s/%s/interop/from-cli.bin'",
           g_endpoint, up, g_bucket, g_prefix),
        0);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "interop/from-cli.bin", 0, TS_OBJSTORE_TO_END, &out, &n, err,
                                 sizeof(err)),
                 err);
    TT_CHECK(n == 9 * MiB && check_gen(9, 0, out, n));
    free(out);
    /* Aborted uploads leave no multipart upload behind. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "interop/aborted.bin", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 10, 11 * MiB, MiB), err);
    ts_objstore_writer_abort(w);
    char mpu[512];
    snprintf(mpu, sizeof(mpu), "%s/mpu.txt", dir);
    TT_CHECK_EQ_INT(
        sh("/usr/bin/aws --endpoint-url '%s' s3api list-multipart-uploads --bucket '%s' "
           "--prefix '%s/interop/' --output text > '%s'",
           g_endpoint, g_bucket, g_prefix, mpu),
        0);
    TT_CHECK_OKE(ts_fs_read_all(mpu, 1 << 20, &txt, &tl, err, sizeof(err)), err);
    txt = realloc(txt, tl + 1);
    txt[tl] = 0;
    TT_CHECK_MSG(!strstr((char *)txt, "aborted.bin"), "upload left behind:\n%s", (char *)txt);
    free(txt);
    free(data);
    sh("rm -rf '%s'", dir);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ tls */

TT_TEST(tls_verified_with_ca_bundle)
{
    const char *ep = getenv("TS_S3_TEST_TLS_ENDPOINT"), *ca = getenv("TS_S3_TEST_CA_BUNDLE");
    TT_ASSERT_MSG(ep && ca, "needs TS_S3_TEST_TLS_ENDPOINT and TS_S3_TEST_CA_BUNDLE");
    char ep_kv[600];
    snprintf(ep_kv, sizeof(ep_kv), "aws.endpoint.url=%s", ep);
    /* 1. The default: verification on, system CAs: a self-signed server is
     *    refused at once, without retries, and the message says why. */
    fixture fx;
    ts_objstore *os =
        fixture_open(&fx, DIRECT, ep_kv, "remote.storage.operation.timeout.ms=5000", NULL);
    TT_CHECK(os);
    ts_status st = ts_objstore_put(os, "tls/x", "x", 1, 0, err, sizeof(err));
    fprintf(stderr, "    without the CA: %s: %s\n", ts_status_name(st), err);
    TT_CHECK_EQ_INT(st, TS_E_REMOTE);
    TT_CHECK(strstr(err, "certificate") != NULL && strstr(err, "aws.ca.bundle") != NULL);
    TT_CHECK_EQ_INT(stats(os).requests, 1);
    /* 2. With the CA bundle: verified and working. */
    ts_config_set(fx.cfg, "aws.ca.bundle", ca, NULL, 0);
    os = fixture_reopen(&fx, DIRECT);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_put(os, "tls/x", "over tls", 8, 0, err, sizeof(err)), err);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "tls/x", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
                 err);
    TT_CHECK(n == 8 && !memcmp(out, "over tls", 8));
    free(out);
    /* 3. Verification off (s3.tls.verify=false): works without the CA. */
    ts_config_set(fx.cfg, "aws.ca.bundle", "", NULL, 0);
    ts_config_set(fx.cfg, "s3.tls.verify", "false", NULL, 0);
    os = fixture_reopen(&fx, DIRECT);
    TT_CHECK(os);
    TT_CHECK_OKE(ts_objstore_head(os, "tls/x", &hsize, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(hsize, 8);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ faults */

static pid_t g_proxy_pid = -1;
static int g_proxy_port;

static int proxy_start(void)
{
    const char *ep = g_endpoint;
    const char *hp = strstr(ep, "://");
    if (!hp || strncmp(ep, "http://", 7)) {
        fprintf(stderr, "    faults need a plain http endpoint, not %s\n", ep);
        return -1;
    }
    char upstream[256];
    snprintf(upstream, sizeof(upstream), "%s", hp + 3);
    upstream[strcspn(upstream, "/")] = '\0';
    if (!strchr(upstream, ':')) strcat(upstream, ":80");
    int fds[2];
    if (pipe(fds)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {"/usr/bin/python3", TS_FAULTPROXY, "--upstream", upstream, NULL};
    int rc = posix_spawn(&g_proxy_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc) {
        fprintf(stderr, "    cannot start faultproxy: %s\n", strerror(rc));
        close(fds[0]);
        return -1;
    }
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    if (!fgets(line, sizeof(line), f) || sscanf(line, "PORT %d", &g_proxy_port) != 1) {
        fprintf(stderr, "    faultproxy did not report its port\n");
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static void proxy_stop(void)
{
    if (g_proxy_pid > 0) {
        kill(g_proxy_pid, SIGTERM);
        waitpid(g_proxy_pid, NULL, 0);
        g_proxy_pid = -1;
    }
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    ts_buf *b = ud;
    ts_buf_append(b, p, s * n);
    return s * n;
}

static long g_proxy_faults; /* faults the proxy injected, as of the last proxy_ctl */

/* Sends a control request; returns the number of requests the proxy saw
 * (and sets g_proxy_faults), -1 on failure. */
static long proxy_ctl(const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__faults__/%s", g_proxy_port, path);
    CURL *h = curl_easy_init();
    ts_buf b;
    ts_buf_init(&b, 4096);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    long reqs = -1;
    ts_buf_append(&b, "", 1);
    if (rc == CURLE_OK && code == 200)
        sscanf((char *)b.data, "requests=%ld faults=%ld", &reqs, &g_proxy_faults);
    ts_buf_free(&b);
    return reqs;
}

static ts_objstore *open_via_proxy(ts_config *cfg)
{
    char ep[128];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", g_proxy_port);
    ts_config_set(cfg, "aws.endpoint.url", ep, NULL, 0);
    return open_store(cfg);
}

TT_TEST(faults_put_retries_5xx_and_drops)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, VIA_PROXY, NULL);
    TT_CHECK(os);
    size_t n = 200000;
    uint8_t *data = malloc(n);
    gen(11, 0, data, n);
    TT_CHECK(proxy_ctl("set?rules=slowdown:2:PUT,err500:1:PUT,drop_req:1:PUT") >= 0);
    TT_CHECK_OKE(ts_objstore_put(os, "faults/put", data, n, 0, err, sizeof(err)), err);
    ts_s3_stats s = stats(os);
    /* libcurl itself resends once on a connection that died before any
     * answer, so the proxy may see one request more than we count. */
    TT_CHECK_EQ_INT(proxy_ctl("stats"), 5);
    TT_CHECK_EQ_INT(g_proxy_faults, 4);
    TT_CHECK(s.retries >= 3 && s.requests >= 4);
    proxy_ctl("reset");
    uint8_t *out;
    size_t got;
    TT_CHECK_OKE(
        ts_objstore_get(os, "faults/put", 0, TS_OBJSTORE_TO_END, &out, &got, err, sizeof(err)),
        err);
    TT_CHECK(got == n && !memcmp(out, data, n));
    free(out);
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(faults_conditional_put_answer_lost)
{
    /* The PUT lands but its answer is dropped; the retry meets 412 and must
     * recognise its own object instead of reporting TS_E_EXISTS. */
    fixture fx;
    ts_objstore *os = fixture_open(&fx, VIA_PROXY, NULL);
    TT_CHECK(os);
    const char *body = "{\"manifest\": 1, \"padding\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    proxy_ctl("set?rules=drop_resp:1:PUT");
    TT_CHECK_OKE(ts_objstore_put(os, "faults/cond", body, strlen(body), TS_PUT_IF_NONE_MATCH, err,
                                 sizeof(err)),
                 err);
    proxy_ctl("reset");
    /* Someone else's object is still refused. */
    TT_CHECK_EQ_INT(
        ts_objstore_put(os, "faults/cond", "other", 5, TS_PUT_IF_NONE_MATCH, err, sizeof(err)),
        TS_E_EXISTS);
done:
    fixture_close(&fx);
}
TT_TEST(faults_get_retries_and_never_returns_truncated)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, VIA_PROXY, "remote.storage.operation.timeout.ms=3000",
                                   "remote.storage.request.timeout.ms=1000", NULL);
    TT_CHECK(os);
    size_t n = 300000;
    uint8_t *data = malloc(n);
    gen(12, 0, data, n);
    proxy_ctl("reset");
    TT_CHECK_OKE(ts_objstore_put(os, "faults/get", data, n, 0, err, sizeof(err)), err);
    uint8_t *out = NULL;
    size_t got = 0;
    /* Transient: 500, SlowDown, dropped mid-body, short body, latency spike. */
    const char *rules[] = {"err500:2:GET", "slowdown:2:GET", "drop_resp:2:GET", "short:2:GET",
                           "delay:1:GET:1500"};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        char q[128];
        snprintf(q, sizeof(q), "set?rules=%s", rules[i]);
        TT_CHECK(proxy_ctl(q) >= 0);
        TT_CHECK_OKE(ts_objstore_get(os, "faults/get", 1000, 200000, &out, &got, err, sizeof(err)),
                     err);
        TT_CHECK_MSG(got == 200000 && !memcmp(out, data + 1000, got), "ranged get under %s",
                     rules[i]);
        free(out);
        TT_CHECK(proxy_ctl(q) >= 0);
        TT_CHECK_OKE(
            ts_objstore_get(os, "faults/get", 0, TS_OBJSTORE_TO_END, &out, &got, err, sizeof(err)),
            err);
        TT_CHECK_MSG(got == n && !memcmp(out, data, n), "full get under %s", rules[i]);
        free(out);
    }
    /* Persistent truncation: fails (retriable) once the deadline passes,
     * and never hands out the short bytes. */
    const char *forever[] = {"short:-1:GET", "drop_resp:-1:GET", "slowdown:-1:GET"};
    for (size_t i = 0; i < 3; i++) {
        char q[128];
        snprintf(q, sizeof(q), "set?rules=%s", forever[i]);
        proxy_ctl(q);
        out = (uint8_t *)"sentinel";
        got = 12345;
        int64_t t0 = ts_mono_ms();
        ts_status st = ts_objstore_get(os, "faults/get", 0, 100000, &out, &got, err, sizeof(err));
        int64_t took = ts_mono_ms() - t0;
        fprintf(stderr, "    %s -> %s in %lld ms: %s\n", forever[i], ts_status_name(st),
                (long long)took, err);
        TT_CHECK(st != TS_OK && ts_status_is_retriable(st));
        TT_CHECK(out == NULL && got == 0);
        TT_CHECK(strstr(err, "gave up after") != NULL);
        TT_CHECK_MSG(took < 3000 + 1500, "deadline respected (%lld ms)", (long long)took);
    }
    /* A latency spike longer than the deadline: TS_E_TIMEOUT. */
    proxy_ctl("set?rules=delay:-1:GET:5000");
    ts_status st = ts_objstore_get(os, "faults/get", 0, 100, &out, &got, err, sizeof(err));
    fprintf(stderr, "    delay:-1 -> %s: %s\n", ts_status_name(st), err);
    TT_CHECK_EQ_INT(st, TS_E_TIMEOUT);
    proxy_ctl("reset");
    free(data);
done:
    fixture_close(&fx);
}
TT_TEST(faults_multipart_completes)
{
    fixture fx, fx2 = {0};
    ts_objstore *os = fixture_open(&fx, VIA_PROXY, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=3", NULL);
    TT_CHECK(os);
    uint64_t total = 17 * MiB + 3;
    TT_CHECK(proxy_ctl("set?rules=slowdown:2:PUT,drop_req:1:PUT,err500:1:POST,drop_resp:1:PUT,"
                       "delay:2:PUT:300") >= 0);
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "faults/mp", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 13, total, 999999), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    proxy_ctl("stats");
    TT_CHECK_EQ_INT(g_proxy_faults, 7); /* every injected fault was hit and survived */
    /* libcurl resends on its own when a connection dies before any answer
     * (drop_req), so not every injected fault is one of our retries. */
    TT_CHECK(stats(os).retries >= 3);
    proxy_ctl("reset");
    uint64_t offs[] = {0, 5 * MiB - 3, 15 * MiB + 1, total - 10};
    TT_CHECK(verify_ranges(os, "faults/mp", 13, total, offs, 4, 65536));
    /* A part that keeps failing: commit fails, the upload is aborted. */
    ts_objstore *os2 = fixture_open(&fx2, VIA_PROXY, "s3.multipart.part.bytes=5242880",
                                    "s3.multipart.parallelism=3",
                                    "remote.storage.operation.timeout.ms=2000", NULL);
    TT_CHECK(os2);
    TT_CHECK_OKE(ts_objstore_writer_open(os2, "faults/mp-fail", &w, err, sizeof(err)), err);
    proxy_ctl("set?rules=err500:-1:PUT");
    ts_status st = write_gen(w, 14, 12 * MiB, MiB);
    if (st == TS_OK)
        st = ts_objstore_writer_commit(w, err, sizeof(err));
    else
        ts_objstore_writer_abort(w);
    fprintf(stderr, "    failing parts -> %s: %s\n", ts_status_name(st), err);
    TT_CHECK(st != TS_OK);
    proxy_ctl("reset");
    TT_CHECK_EQ_INT(ts_objstore_head(os2, "faults/mp-fail", &hsize, err, sizeof(err)),
                    TS_E_NOT_FOUND);
done:
    fixture_close(&fx2);
    fixture_close(&fx);
}

TT_TEST(faults_list_and_delete_many)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, VIA_PROXY, NULL);
    TT_CHECK(os);
    proxy_ctl("reset");
    char names[40][32];
    const char *keys[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "faults/l/%02d", i);
        keys[i] = names[i];
        TT_CHECK_OKE(ts_objstore_put(os, keys[i], "y", 1, 0, err, sizeof(err)), err);
    }
    ts_objstore_s3_set_list_page(os, 7);
    proxy_ctl("set?rules=err500:2:GET,drop_resp:1:GET,short:1:GET");
    size_t n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "faults/l/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 40);
    proxy_ctl("set?rules=slowdown:1:POST,drop_req:1:POST");
    TT_CHECK_OKE(ts_objstore_delete_many(os, keys, 40, err, sizeof(err)), err);
    proxy_ctl("reset");
    n = 0;
    TT_CHECK_OKE(ts_objstore_list(os, "faults/l/", count_cb, &n, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(n, 0);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ big */

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

TT_TEST(multipart_1gib_bounded_memory)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, DIRECT, "s3.multipart.part.bytes=8388608",
                                   "s3.multipart.parallelism=4", NULL);
    TT_CHECK(os);
    const uint64_t total = 1024ull * MiB;
    const uint64_t bound = 8ull * MiB * 4;
    /* Reset the peak-RSS counter, so VmHWM measures this upload only. */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    long rss0 = vm_rss_kb();
    int64_t t0 = ts_mono_ms();
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "big/1g", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 21, total, MiB), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    int64_t ms = ts_mono_ms() - t0;
    long hwm = vm_hwm_kb();
    ts_s3_stats s = stats(os);
    fprintf(stderr,
            "    1 GiB in %lld ms (%.1f MiB/s); part buffers peak %llu MiB (bound %llu MiB); "
            "RSS %ld -> peak %ld MiB\n",
            (long long)ms, 1024.0 * 1000 / (double)(ms ? ms : 1),
            (unsigned long long)(s.part_buf_peak / MiB), (unsigned long long)(bound / MiB),
            rss0 / 1024, hwm / 1024);
    TT_CHECK(s.part_buf_peak <= bound);
    TT_CHECK(s.part_buf_peak >= 2 * 8ull * MiB); /* it did run parts in parallel */
    /* Peak RSS grew by at most the part budget plus 48 MiB for libcurl,
     * OpenSSL, threads and the 1 MiB write chunk. */
    TT_CHECK_MSG(hwm - rss0 <= (long)(bound / 1024) + 48 * 1024, "peak RSS grew by %ld MiB",
                 (hwm - rss0) / 1024);
    uint64_t size;
    TT_CHECK_OKE(ts_objstore_head(os, "big/1g", &size, err, sizeof(err)), err);
    TT_CHECK(size == total);
    uint64_t offs[8];
    for (int i = 0; i < 8; i++)
        offs[i] = (uint64_t)i * (total / 8) + (uint64_t)i * 4097 + 8 * MiB - 2000;
    TT_CHECK(verify_ranges(os, "big/1g", 21, total, offs, 8, 1 << 20));
    TT_CHECK_OKE(ts_objstore_delete(os, "big/1g", err, sizeof(err)), err);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *group = NULL;
    if (argc >= 3 && !strcmp(argv[1], "--group")) {
        group = argv[2];
        argv[2] = argv[0];
        argv += 2;
        argc -= 2;
    }
    TT_INIT(argc, argv);
    const char *ep = getenv("AWS_ENDPOINT_URL"), *bucket = getenv("TS_S3_TEST_BUCKET");
    if (!ep || !*ep || !bucket || !*bucket || !getenv("AWS_ACCESS_KEY_ID") ||
        !getenv("AWS_SECRET_ACCESS_KEY")) {
        printf("SKIP: no S3 endpoint: set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
               "AWS_SECRET_ACCESS_KEY, AWS_REGION and TS_S3_TEST_BUCKET (tests/rgw/start.sh "
               "then `source tests/rgw/env.sh` does it for a local Ceph RGW)\n");
        return 77;
    }
    snprintf(g_endpoint, sizeof(g_endpoint), "%s", ep);
    size_t el = strlen(g_endpoint);
    while (el && g_endpoint[el - 1] == '/') g_endpoint[--el] = '\0';
    snprintf(g_bucket, sizeof(g_bucket), "%s", bucket);
    char rnd[17];
    ts_rand_hex(rnd, 8);
    snprintf(g_prefix, sizeof(g_prefix), "ts-test-%s-%s", group ? group : "all", rnd);
    snprintf(g_url, sizeof(g_url), "s3://%s/%s", g_bucket, g_prefix);
    ts_objstore_s3_global_init();
    fprintf(stderr, "S3 suite against %s, %s\n", g_endpoint, g_url);
#define GROUP(name) (!group || !strcmp(group, name))
    if (GROUP("ops")) {
        TT_RUN(put_get_head_delete);
        TT_RUN(empty_object);
        TT_RUN(writer_small_is_one_put);
        TT_RUN(delete_many_batches);
    }
    if (GROUP("list")) TT_RUN(list_pagination);
    if (GROUP("multipart")) {
        TT_RUN(multipart_parallel_bounded);
        TT_RUN(multipart_exact_multiple_and_exact_part);
    }
    if (GROUP("conditional")) TT_RUN(put_if_none_match);
    if (GROUP("auth")) TT_RUN(wrong_secret_one_clear_error);
    if (GROUP("interop")) TT_RUN(aws_cli_reads_what_we_wrote);
    int have_tls = getenv("TS_S3_TEST_TLS_ENDPOINT") && getenv("TS_S3_TEST_CA_BUNDLE");
    if (group && !strcmp(group, "tls") && !have_tls) {
        printf("SKIP: set TS_S3_TEST_TLS_ENDPOINT and TS_S3_TEST_CA_BUNDLE (https endpoint of the "
               "same server and its CA; tests/rgw/start.sh provides them)\n");
        wipe_prefix();
        return 77;
    }
    if (GROUP("tls") && have_tls) TT_RUN(tls_verified_with_ca_bundle);
    if (GROUP("faults")) {
        if (proxy_start()) {
            printf("faultproxy failed to start\n");
            return 1;
        }
        TT_RUN(faults_put_retries_5xx_and_drops);
        TT_RUN(faults_conditional_put_answer_lost);
        TT_RUN(faults_get_retries_and_never_returns_truncated);
        TT_RUN(faults_multipart_completes);
        TT_RUN(faults_list_and_delete_many);
        proxy_stop();
    }
    if (group && !strcmp(group, "big")) TT_RUN(multipart_1gib_bounded_memory);
    wipe_prefix();
    return tt_summary();
}
