/*
 * s3_suite.h — what the S3 integration suite's programs share: the server
 * from the environment, a fresh random prefix per run (wiped at the end),
 * deterministic content, the store fixture, and the start of main().
 * Header-only (static inline), like tt.h.
 *
 * The server comes from the environment, so the same suite runs against
 * Ceph RGW here (tests/rgw/start.sh), MinIO (minio-compose/) or AWS:
 *   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
 *   TS_S3_TEST_BUCKET (an existing bucket; each run works under a fresh
 *   random prefix and deletes it at the end).
 * Without them every group exits 77, which ctest reports as skipped.
 *
 * The programs, by topic (ctest s3.<group> runs `PROGRAM --group <group>`):
 *   test_s3_suite      ops, list, conditional, auth
 *   test_s3_multipart  multipart, big (the 1 GiB upload, s3big.*)
 *   test_s3_compat     interop (the AWS CLI reads what we wrote), tls
 *   test_s3_faults     faults (faultproxy.py between client and server)
 */
#ifndef TS_TESTS_S3_SUITE_H
#define TS_TESTS_S3_SUITE_H

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
static const char *g_group; /* --group, NULL = all of the program's groups */
static uint64_t hsize;      /* HEAD results the tests ignore */

/* ------------------------------------------------------------------ helpers */

/* Deterministic content: byte i of object `seed`. */
static inline void gen(uint32_t seed, uint64_t off, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull + seed;
        out[i] = (uint8_t)(x >> 56 ^ x >> 29);
    }
}

static inline int check_gen(uint32_t seed, uint64_t off, const uint8_t *p, size_t n)
{
    uint8_t buf[4096];
    for (size_t at = 0; at < n; at += sizeof(buf)) {
        size_t k = n - at < sizeof(buf) ? n - at : sizeof(buf);
        gen(seed, off + at, buf, k);
        if (memcmp(buf, p + at, k)) return 0;
    }
    return 1;
}

static inline ts_config *base_cfg(void)
{
    ts_config *c = ts_config_create();
    ts_config_set(c, "remote.storage.request.timeout.ms", "20000", NULL, 0);
    ts_config_set(c, "remote.storage.operation.timeout.ms", "60000", NULL, 0);
    return c;
}

static inline ts_objstore *open_store(ts_config *cfg)
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
 * with open_store or through the fault proxy (open_via_proxy). Tests check
 * the store with TT_CHECK and end in `done: fixture_close(&fx);`, so a failed
 * check still closes the store. Between writer_open and its commit/abort
 * they use TT_ASSERT instead: the writer's part threads use the store, so a
 * failure there returns without closing it (it leaks, as before, rather
 * than being freed under those threads). */
typedef struct fixture {
    ts_config *cfg;
    ts_objstore *os;
} fixture;

/* How a fixture opens its store: open_store, or open_via_proxy
 * (test_s3_faults.c) to put faultproxy.py in between. */
typedef ts_objstore *(*store_opener)(ts_config *cfg);

static inline ts_objstore *fixture_open(fixture *f, store_opener open, ...)
{
    f->cfg = base_cfg();
    f->os = NULL;
    va_list ap;
    va_start(ap, open);
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
    f->os = open(f->cfg);
    return f->os;
}

/* Opens the store again with f->cfg as the test changed it. */
static inline ts_objstore *fixture_reopen(fixture *f, store_opener open)
{
    ts_objstore_destroy(f->os);
    f->os = open(f->cfg);
    return f->os;
}

static inline void fixture_close(fixture *f)
{
    ts_objstore_destroy(f->os);
    ts_config_destroy(f->cfg);
    f->os = NULL;
    f->cfg = NULL;
}

static inline ts_s3_stats stats(ts_objstore *os)
{
    ts_s3_stats s;
    ts_objstore_s3_stats(os, &s);
    return s;
}

static inline int count_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (*(size_t *)opaque)++;
    return 0;
}

/* Removes everything under the run's prefix. */
static inline int collect_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    ts_buf *b = opaque;
    return ts_buf_append(b, key, strlen(key) + 1) != TS_OK;
}

static inline void wipe_prefix(void)
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
static inline int sh(const char *fmt, ...) TS_PRINTF(1, 2);
static inline int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static inline ts_status write_gen(ts_objstore_writer *w, uint32_t seed, uint64_t total,
                                  size_t chunk)
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

static inline int verify_ranges(ts_objstore *os, const char *key, uint32_t seed, uint64_t total,
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

/* ------------------------------------------------------------------ main */

/* Whether the run includes `name`: the --group given, or every group of
 * the program when none was (big never runs unasked). */
#define GROUP(name) (!g_group || !strcmp(g_group, name))

/* The start of every suite program's main: `--group NAME` picks one group
 * of its tests (ctest runs one group per test), the rest of argv names
 * single tests (TT_INIT). Returns 77 (skip) without an S3 endpoint, else 0
 * with g_url pointing at the run's fresh prefix, which wipe_prefix()
 * removes at the end. */
static inline int s3_suite_start(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--group")) {
        g_group = argv[2];
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
    snprintf(g_prefix, sizeof(g_prefix), "ts-test-%s-%s", g_group ? g_group : "all", rnd);
    snprintf(g_url, sizeof(g_url), "s3://%s/%s", g_bucket, g_prefix);
    ts_objstore_s3_global_init();
    fprintf(stderr, "S3 suite against %s, %s\n", g_endpoint, g_url);
    return 0;
}

#endif
