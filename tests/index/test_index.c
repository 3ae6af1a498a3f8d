/*
 * test_index.c — unit tests of index/: lookups at boundaries, retention,
 * local and remote persistence against the real fs object store, recovery
 * into an empty directory, fallback past a corrupt newest manifest, keep-N
 * cleanup, pieces (round trip, a crash between piece and head, a damaged
 * piece), the format-1 local file, concurrent lookups while adding,
 * remote-durability transitions driven by a store whose puts fail on
 * demand, fencing by leader epoch. The formats (manifest JSON, chunk-table
 * frame, keys) are in test_manifest_json.c.
 *
 * The failing store (`flaky`) is a test double: a ts_objstore that wraps
 * the real fs store and fails or misreports puts when told to, so each
 * crash/timeout case is reproduced exactly rather than by chance.
 */
#include "index_test.h"

static int add_seg(ts_index *idx, int64_t base, int64_t last, int64_t max_ts, char *err,
                   size_t errlen)
{
    ts_segment_meta s;
    mkseg(&s, base, last, 2, max_ts);
    ts_status st = ts_index_add(idx, &s, err, errlen);
    ts_segment_meta_clear(&s);
    return st;
}

/* ------------------------------------------------------------------------
 * flaky: a ts_objstore test double wrapping the fs store
 * ------------------------------------------------------------------------ */

typedef struct flaky {
    ts_objstore base;
    ts_objstore *inner;
    pthread_mutex_t mu;
    int fail_puts;          /* next N puts fail with fail_status (-1 = all) */
    ts_status fail_status;
    int land_then_fail;     /* next N puts reach the store, then report fail_status */
    int puts;               /* puts attempted */
    const char *fail_match; /* puts of keys containing this fail with fail_status */
} flaky;

static ts_status flaky_put(ts_objstore *os, const char *key, const void *data, size_t len,
                           unsigned flags, char *errstr, size_t errlen)
{
    flaky *f = (flaky *)os;
    pthread_mutex_lock(&f->mu);
    f->puts++;
    int fail = f->fail_puts != 0 || (f->fail_match && strstr(key, f->fail_match)),
        land = !fail && f->land_then_fail > 0;
    if (f->fail_puts > 0 && !(f->fail_match && strstr(key, f->fail_match))) f->fail_puts--;
    if (land) f->land_then_fail--;
    ts_status fst = f->fail_status;
    pthread_mutex_unlock(&f->mu);
    if (fail) {
        snprintf(errstr, errlen, "flaky: injected %s on put %s", ts_status_name(fst), key);
        return fst;
    }
    ts_status st = ts_objstore_put(f->inner, key, data, len, flags, errstr, errlen);
    if (!st && land) {
        snprintf(errstr, errlen, "flaky: put %s landed but the reply was lost (%s)", key,
                 ts_status_name(fst));
        return fst;
    }
    return st;
}
static ts_status flaky_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                                   char *errstr, size_t errlen)
{
    return ts_objstore_writer_open(((flaky *)os)->inner, key, out, errstr, errlen);
}
static ts_status flaky_get(ts_objstore *os, const char *key, uint64_t off, uint64_t len,
                           uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    return ts_objstore_get(((flaky *)os)->inner, key, off, len, out, out_len, errstr, errlen);
}
static ts_status flaky_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                            size_t errlen)
{
    return ts_objstore_head(((flaky *)os)->inner, key, size, errstr, errlen);
}
static ts_status flaky_del(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    return ts_objstore_delete(((flaky *)os)->inner, key, errstr, errlen);
}
static ts_status flaky_del_many(ts_objstore *os, const char *const *keys, size_t n, char *errstr,
                                size_t errlen)
{
    return ts_objstore_delete_many(((flaky *)os)->inner, keys, n, errstr, errlen);
}
static ts_status flaky_list(ts_objstore *os, const char *prefix,
                            int (*cb)(const char *, uint64_t, void *), void *opaque, char *errstr,
                            size_t errlen)
{
    return ts_objstore_list(((flaky *)os)->inner, prefix, cb, opaque, errstr, errlen);
}
static void flaky_destroy(ts_objstore *os)
{
    flaky *f = (flaky *)os;
    ts_objstore_destroy(f->inner);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
static const ts_objstore_ops flaky_ops = {
    "flaky", flaky_put, flaky_writer_open, flaky_get, flaky_head, flaky_del, flaky_del_many,
    flaky_list, flaky_destroy};

static flaky *flaky_open(const char *bucket_dir)
{
    char url[600], err[256];
    flaky *f = calloc(1, sizeof(*f));
    f->base.ops = &flaky_ops;
    snprintf(f->base.url, sizeof(f->base.url), "flaky+file://%s", bucket_dir);
    snprintf(url, sizeof(url), "file://%s", bucket_dir);
    pthread_mutex_init(&f->mu, NULL);
    if (ts_objstore_open(url, NULL, &f->inner, err, sizeof(err))) {
        fprintf(stderr, "cannot open %s: %s\n", url, err);
        exit(2);
    }
    return f;
}

static void flaky_set(flaky *f, int fail_puts, ts_status st, int land_then_fail)
{
    pthread_mutex_lock(&f->mu);
    f->fail_puts = fail_puts;
    f->fail_status = st;
    f->land_then_fail = land_then_fail;
    pthread_mutex_unlock(&f->mu);
}

static int count_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key; (void)size;
    (*(int *)opaque)++;
    return 0;
}

static int count_manifests(ts_objstore *os, const char *topic, int32_t part)
{
    char prefix[300];
    int n = 0;
    snprintf(prefix, sizeof(prefix), "%s/%d/manifests/", topic, part);
    if (ts_objstore_list(os, prefix, count_cb, &n, NULL, 0)) return -1;
    return n;
}

static int exists(ts_objstore *os, const char *key)
{
    uint64_t sz;
    return ts_objstore_head(os, key, &sz, NULL, 0) == TS_OK;
}

/* ------------------------------------------------------------------------
 * Lookups, add, truncate (local only)
 * ------------------------------------------------------------------------ */

TT_TEST(test_lookups_at_boundaries)
{
    char dir[256], err[512];
    tt_tmpdir(dir, sizeof(dir), "idx-lookup");
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    /* [0..99] [100..199] gap [300..399]; max timestamps not monotone. */
    TT_OKE(add_seg(idx, 300, 399, 2000, err, sizeof(err)), err); /* out of order on purpose */
    TT_OKE(add_seg(idx, 0, 99, 1000, err, sizeof(err)), err);
    TT_OKE(add_seg(idx, 100, 199, 3000, err, sizeof(err)), err);

    ts_segment_meta m;
    static const struct { int64_t off; int64_t base; } at[] = {
        {0, 0}, {99, 0}, {100, 100}, {199, 100}, {200, -1}, {250, -1}, {299, -1},
        {300, 300}, {399, 300}, {400, -1}, {-1, -1}, {INT64_MAX, -1}, {INT64_MIN, -1}};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        ts_status st = ts_index_lookup_offset(idx, at[i].off, &m);
        if (at[i].base < 0) {
            TT_ASSERT_MSG(st == TS_E_NOT_FOUND, "offset %" PRId64 " found", at[i].off);
        } else {
            TT_ASSERT_MSG(st == TS_OK && m.base_offset == at[i].base,
                          "offset %" PRId64 ": %s", at[i].off, ts_status_name(st));
            /* Lookups carry no chunk table; these legacy-style entries keep
             * theirs in memory, so loading it needs no store. */
            TT_ASSERT(m.chunk_count == 2 && !m.chunks);
            TT_OKE(ts_index_load_chunks(idx, &m, err, sizeof(err)), err);
            TT_ASSERT(m.chunks && m.chunks[0].first_offset == at[i].base);
            ts_segment_meta_clear(&m);
        }
    }
    static const struct { int64_t off; int64_t base; } nx[] = {
        {-5, 0}, {0, 100}, {99, 100}, {150, 300}, {250, 300}, {300, -1}, {399, -1},
        {INT64_MAX, -1}};
    for (size_t i = 0; i < sizeof(nx) / sizeof(nx[0]); i++) {
        ts_status st = ts_index_lookup_next(idx, nx[i].off, &m);
        if (nx[i].base < 0) {
            TT_ASSERT_MSG(st == TS_E_NOT_FOUND, "next after %" PRId64 " found", nx[i].off);
        } else {
            TT_ASSERT_MSG(st == TS_OK && m.base_offset == nx[i].base, "next after %" PRId64,
                          nx[i].off);
            ts_segment_meta_clear(&m);
        }
    }
    /* Time: first entry (in offset order) with max_timestamp >= ts. */
    static const struct { int64_t ts; int64_t base; } tm[] = {
        {INT64_MIN, 0}, {0, 0}, {1000, 0}, {1001, 100}, {2000, 100}, {2500, 100}, {3000, 100},
        {3001, -1}};
    for (size_t i = 0; i < sizeof(tm) / sizeof(tm[0]); i++) {
        ts_status st = ts_index_lookup_time(idx, tm[i].ts, &m);
        if (tm[i].base < 0) {
            TT_ASSERT_MSG(st == TS_E_NOT_FOUND, "time %" PRId64 " found", tm[i].ts);
        } else {
            TT_ASSERT_MSG(st == TS_OK && m.base_offset == tm[i].base,
                          "time %" PRId64 " -> %s base %" PRId64, tm[i].ts, ts_status_name(st),
                          st == TS_OK ? m.base_offset : -1);
            ts_segment_meta_clear(&m);
        }
    }

    /* Refusals. */
    TT_ASSERT_EQ_INT(add_seg(idx, 100, 150, 1, err, sizeof(err)), TS_E_EXISTS);
    TT_ASSERT(strstr(err, "already in the manifest"));
    TT_ASSERT_EQ_INT(add_seg(idx, 150, 250, 1, err, sizeof(err)), TS_E_INVAL);
    TT_ASSERT(strstr(err, "overlaps the entry [100..199]"));
    TT_ASSERT_EQ_INT(add_seg(idx, 250, 300, 1, err, sizeof(err)), TS_E_INVAL);
    TT_ASSERT(strstr(err, "overlaps the entry [300..399]"));
    ts_segment_meta bad;
    mkseg(&bad, 200, 299, 2, 1);
    bad.chunks[1].raw_pos = 99; /* chunk table with an overlap */
    TT_ASSERT_EQ_INT(ts_index_add(idx, &bad, err, sizeof(err)), TS_E_INVAL);
    TT_ASSERT(strstr(err, "orders/3") && strstr(err, "chunks[1].raw_pos 99 should be 100"));
    ts_segment_meta_clear(&bad);
    TT_OKE(add_seg(idx, 200, 299, 1, err, sizeof(err)), err); /* fills the gap */

    ts_index_summary sum;
    ts_index_summary_get(idx, &sum);
    TT_ASSERT_EQ_INT(sum.count, 4);
    TT_ASSERT_EQ_INT(sum.start_offset, 0);
    TT_ASSERT_EQ_INT(sum.end_offset, 399);
    TT_ASSERT_EQ_INT(sum.raw_bytes, 800);
    TT_ASSERT_EQ_INT(sum.version, 4);
    TT_ASSERT_EQ_INT(sum.remote_version, 0);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 0)); /* no store at all */

    ts_segment_meta *snap;
    size_t n;
    TT_OK(ts_index_snapshot(idx, &snap, &n));
    TT_ASSERT_EQ_INT(n, 4);
    for (size_t i = 0; i < n; i++) TT_ASSERT_EQ_INT(snap[i].base_offset, (int64_t)i * 100);
    ts_index_snapshot_free(snap, n);
    ts_index_destroy(idx);
    rmrf(dir);
}

TT_TEST(test_truncate_before)
{
    char dir[256], err[512];
    tt_tmpdir(dir, sizeof(dir), "idx-trunc");
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    for (int i = 0; i < 4; i++) TT_OKE(add_seg(idx, i * 100, i * 100 + 99, i, err, sizeof(err)), err);

    char **keys = NULL;
    size_t nk = 0;
    /* Offset 150 lies inside [100..199]: only [0..99] goes. */
    TT_OKE(ts_index_truncate_before(idx, 150, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 1);
    char want[TS_INDEX_KEY_MAX];
    ts_index_segment_key("orders", 3, 0, "a1b2", want, sizeof(want));
    TT_ASSERT_STR(keys[0], want);
    for (size_t i = 0; i < nk; i++) free(keys[i]);
    free(keys);

    ts_segment_meta m;
    TT_ASSERT_EQ_INT(ts_index_lookup_offset(idx, 50, &m), TS_E_NOT_FOUND);
    TT_OK(ts_index_lookup_offset(idx, 150, &m));
    ts_segment_meta_clear(&m);
    /* Below the new log start: refused. */
    TT_ASSERT_EQ_INT(add_seg(idx, 0, 99, 1, err, sizeof(err)), TS_E_INVAL);
    TT_ASSERT(strstr(err, "below the log start offset 150"));

    /* Exactly at a boundary: [100..199] and [200..299] go. */
    TT_OKE(ts_index_truncate_before(idx, 300, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 2);
    for (size_t i = 0; i < nk; i++) free(keys[i]);
    free(keys);
    /* Lower than the current start: nothing changes. */
    ts_index_summary s0, s1;
    ts_index_summary_get(idx, &s0);
    TT_OKE(ts_index_truncate_before(idx, 10, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 0);
    ts_index_summary_get(idx, &s1);
    TT_ASSERT_EQ_INT(s1.version, s0.version);
    TT_ASSERT_EQ_INT(s1.count, 1);
    TT_ASSERT_EQ_INT(s1.start_offset, 300);
    /* Beyond everything: empty, and the start survives a reload. */
    TT_OKE(ts_index_truncate_before(idx, 1000, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 1);
    for (size_t i = 0; i < nk; i++) free(keys[i]);
    free(keys);
    ts_index_destroy(idx);

    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    ts_index_summary_get(idx, &s1);
    TT_ASSERT_EQ_INT(s1.count, 0);
    TT_ASSERT_EQ_INT(s1.start_offset, -1);
    TT_ASSERT_EQ_INT(add_seg(idx, 900, 999, 1, err, sizeof(err)), TS_E_INVAL);
    TT_OKE(add_seg(idx, 1000, 1099, 1, err, sizeof(err)), err);
    ts_index_destroy(idx);
    rmrf(dir);
}

TT_TEST(test_local_persistence)
{
    char dir[256], err[512], path[300];
    tt_tmpdir(dir, sizeof(dir), "idx-local");
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_local(idx, err, sizeof(err)), TS_E_NOT_FOUND);
    TT_OKE(add_seg(idx, 0, 99, 10, err, sizeof(err)), err);
    TT_OKE(add_seg(idx, 100, 199, 20, err, sizeof(err)), err);
    ts_segment_meta *a, *b;
    size_t na, nb;
    TT_OK(ts_index_snapshot(idx, &a, &na));
    ts_index_destroy(idx);

    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_OK(ts_index_snapshot(idx, &b, &nb));
    TT_ASSERT_EQ_INT(na, nb);
    for (size_t i = 0; i < na; i++) TT_ASSERT(seg_eq(&a[i], &b[i]));
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.version, 2);
    ts_index_snapshot_free(a, na);
    ts_index_snapshot_free(b, nb);
    ts_index_destroy(idx);

    /* Another partition's file is refused. */
    TT_OKE(ts_index_create("orders", 4, dir, NULL, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_local(idx, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "describes orders/3"));
    ts_index_destroy(idx);

    /* A damaged file is refused with the path in the message. */
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);
    TT_OK(ts_fs_write_atomic(path, "{\"format\":1,", 12, err, sizeof(err)));
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_local(idx, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "remote_manifest.json") && strstr(err, "orders/3"));
    ts_index_destroy(idx);
    rmrf(dir);
}

/* ------------------------------------------------------------------------
 * Remote persistence against the fs store
 * ------------------------------------------------------------------------ */

TT_TEST(test_remote_persist_and_recover)
{
    char dir[256], dir2[256], bucket[256], url[300], err[512], key[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-rl");
    tt_tmpdir(dir2, sizeof(dir2), "idx-rl2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-bucket");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);

    ts_index *idx, *idx2;
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, dir2, os, &idx2, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_remote(idx2, err, sizeof(err)), TS_E_NOT_FOUND);

    TT_OKE(add_seg(idx, 0, 99, 10, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 0));
    TT_OKE(add_seg(idx, 100, 199, 20, err, sizeof(err)), err);
    ts_index_manifest_key("orders", 3, 2, key, sizeof(key));
    TT_ASSERT_STR(key, "orders/3/manifests/00000000000000000002.json");
    TT_ASSERT(exists(os, key));
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 2);
    char **keys;
    size_t nk;
    TT_OKE(ts_index_truncate_before(idx, 100, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 1);
    free(keys[0]);
    free(keys);
    TT_OKE(add_seg(idx, 200, 299, 30, err, sizeof(err)), err);
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.version, 4);
    TT_ASSERT_EQ_INT(s.remote_version, 4);
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 3); /* keep 3 by default */

    /* An empty data directory plus the bucket recovers everything. */
    rmrf(dir2);
    TT_OKE(ts_index_load_remote(idx2, err, sizeof(err)), err);
    ts_segment_meta *a, *b;
    size_t na, nb;
    TT_OK(ts_index_snapshot(idx, &a, &na));
    TT_OK(ts_index_snapshot(idx2, &b, &nb));
    TT_ASSERT_EQ_INT(na, 2);
    TT_ASSERT_EQ_INT(nb, 2);
    for (size_t i = 0; i < na; i++) TT_ASSERT(seg_eq(&a[i], &b[i]));
    ts_index_snapshot_free(a, na);
    ts_index_snapshot_free(b, nb);
    TT_ASSERT(ts_index_is_remote_durable(idx2, 100));
    TT_ASSERT(ts_index_is_remote_durable(idx2, 200));
    ts_segment_meta m;
    TT_ASSERT_EQ_INT(ts_index_lookup_offset(idx2, 50, &m), TS_E_NOT_FOUND);
    ts_index_destroy(idx2);

    /* load_remote also wrote the local file: a local-only restart works. */
    TT_OKE(ts_index_create("orders", 3, dir2, NULL, &idx2, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx2, err, sizeof(err)), err);
    ts_index_summary_get(idx2, &s);
    TT_ASSERT_EQ_INT(s.count, 2);
    TT_ASSERT_EQ_INT(s.version, 4);
    TT_ASSERT_EQ_INT(s.remote_version, 4);
    ts_index_destroy(idx2);

    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}

TT_TEST(test_remote_newest_corrupt_fallback)
{
    char dir[256], dir2[256], dir3[256], bucket[256], url[300], err[512], key[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-cf");
    tt_tmpdir(dir2, sizeof(dir2), "idx-cf2");
    tt_tmpdir(dir3, sizeof(dir3), "idx-cf3");
    tt_tmpdir(bucket, sizeof(bucket), "idx-cfb");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    TT_OKE(add_seg(idx, 0, 99, 10, err, sizeof(err)), err);
    TT_OKE(add_seg(idx, 100, 199, 20, err, sizeof(err)), err);
    ts_index_destroy(idx);

    /* A torn version 3 and a version 4 that describes another partition. */
    ts_index_manifest_key("orders", 3, 3, key, sizeof(key));
    TT_OKE(ts_objstore_put(os, key, "{\"format\":1,\"top", 16, TS_PUT_IF_NONE_MATCH, err,
                           sizeof(err)),
           err);
    char *other;
    size_t olen;
    TT_OK(ts_manifest_to_json("orders", 9, 4, 0, NULL, 0, &other, &olen));
    ts_index_manifest_key("orders", 3, 4, key, sizeof(key));
    TT_OKE(ts_objstore_put(os, key, other, olen, TS_PUT_IF_NONE_MATCH, err, sizeof(err)), err);
    free(other);

    TT_OKE(ts_index_create("orders", 3, dir2, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.count, 2);
    TT_ASSERT_EQ_INT(s.version, 2);

    /* The next change must not overwrite v3/v4: it goes above them. */
    TT_OKE(add_seg(idx, 200, 299, 30, err, sizeof(err)), err);
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.version, 5);
    TT_ASSERT_EQ_INT(s.remote_version, 5);
    TT_ASSERT(ts_index_is_remote_durable(idx, 200));
    ts_index_destroy(idx);

    TT_OKE(ts_index_create("orders", 3, dir3, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.count, 3);
    TT_ASSERT_EQ_INT(s.version, 5);
    ts_index_destroy(idx);

    /* Nothing readable at all: TS_E_CORRUPT naming the prefix. */
    TT_OK(ts_fs_rmtree(bucket, err, sizeof(err)));
    ts_objstore_destroy(os);
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    ts_index_manifest_key("orders", 3, 7, key, sizeof(key));
    TT_OKE(ts_objstore_put(os, key, "garbage", 7, 0, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, dir3, os, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_remote(idx, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "orders/3/manifests/"));
    ts_index_destroy(idx);

    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(dir2);
    rmrf(dir3);
    rmrf(bucket);
}

TT_TEST(test_remote_keep_n_cleanup)
{
    char dir[256], bucket[256], url[300], err[512], key[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-keep");
    tt_tmpdir(bucket, sizeof(bucket), "idx-keepb");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    /* Something else under the partition prefix is left alone. */
    TT_OKE(ts_objstore_put(os, "orders/3/manifests/README", "x", 1, 0, err, sizeof(err)), err);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    ts_index_set_keep_versions(idx, 2);
    for (int i = 0; i < 5; i++) TT_OKE(add_seg(idx, i * 100, i * 100 + 99, i, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 3); /* v4, v5 and README */
    for (uint64_t v = 1; v <= 5; v++) {
        ts_index_manifest_key("orders", 3, v, key, sizeof(key));
        TT_ASSERT_MSG(exists(os, key) == (v >= 4), "version %" PRIu64, v);
    }
    TT_ASSERT(exists(os, "orders/3/manifests/README"));
    /* keep.versions from the config table. */
    ts_config *cfg = ts_config_create();
    TT_OKE(ts_config_set(cfg, "remote.log.manifest.keep.versions", "1", err, sizeof(err)), err);
    ts_index_apply_config(idx, cfg);
    ts_config_destroy(cfg);
    TT_OKE(add_seg(idx, 500, 599, 1, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 2);
    ts_index_manifest_key("orders", 3, 6, key, sizeof(key));
    TT_ASSERT(exists(os, key));
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(bucket);
}

TT_TEST(test_remote_durability_transitions)
{
    char dir[256], bucket[256], err[512];
    tt_tmpdir(dir, sizeof(dir), "idx-dur");
    tt_tmpdir(bucket, sizeof(bucket), "idx-durb");
    flaky *f = flaky_open(bucket);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    ts_index_set_remote_timeout_ms(idx, 2000);

    TT_OKE(add_seg(idx, 0, 99, 1, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 0));

    /* A store that refuses: committed locally, not remote-durable. */
    flaky_set(f, -1, TS_E_REMOTE, 0);
    TT_ASSERT_EQ_INT(add_seg(idx, 100, 199, 2, err, sizeof(err)), TS_E_REMOTE);
    TT_ASSERT(strstr(err, "committed locally") && strstr(err, "orders/3"));
    ts_segment_meta m;
    TT_OK(ts_index_lookup_offset(idx, 150, &m));
    ts_segment_meta_clear(&m);
    TT_ASSERT(ts_index_is_remote_durable(idx, 0));
    TT_ASSERT(!ts_index_is_remote_durable(idx, 100));
    TT_ASSERT_EQ_INT(ts_index_sync_remote(idx, err, sizeof(err)), TS_E_REMOTE);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 100));

    /* Retention while the store refuses: no key handed out yet. */
    char **keys = (char **)1;
    size_t nk = 7;
    TT_ASSERT_EQ_INT(ts_index_truncate_before(idx, 100, &keys, &nk, err, sizeof(err)),
                     TS_E_REMOTE);
    TT_ASSERT(keys == NULL && nk == 0);

    /* A restart in between keeps "not durable". */
    ts_index_destroy(idx);
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    ts_index_set_remote_timeout_ms(idx, 2000);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 100));

    /* Retriable failures are retried within the deadline. */
    flaky_set(f, 2, TS_E_REMOTE_RETRIABLE, 0);
    TT_OKE(ts_index_sync_remote(idx, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 100));
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.remote_version, s.version);
    /* The pending deletion is handed out once the manifest is durable. */
    TT_OKE(ts_index_truncate_before(idx, 100, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 1);
    TT_ASSERT(strstr(keys[0], "/00000000000000000000-"));
    free(keys[0]);
    free(keys);
    TT_OKE(ts_index_truncate_before(idx, 100, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 0);

    /* A put that lands but whose reply is lost: the retry finds the same
     * manifest already there and counts it as durable (no version bump). */
    flaky_set(f, 0, TS_E_TIMEOUT, 1);
    TT_OKE(add_seg(idx, 200, 299, 3, err, sizeof(err)), err);
    ts_index_summary s2;
    ts_index_summary_get(idx, &s2);
    TT_ASSERT_EQ_INT(s2.version, s.version + 1);
    TT_ASSERT(ts_index_is_remote_durable(idx, 200));

    /* Crash between the local commit and the remote put of the same
     * version: the put landed, the local file says not durable. sync
     * reconciles without writing a second version. */
    flaky_set(f, 0, TS_E_REMOTE, 1); /* not retried: the add reports failure */
    ts_status st = add_seg(idx, 300, 399, 4, err, sizeof(err));
    TT_ASSERT_MSG(st == TS_E_REMOTE, "add -> %s: %s", ts_status_name(st), err);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 300));
    ts_index_destroy(idx);
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 300));
    int puts_before = f->puts;
    TT_OKE(ts_index_sync_remote(idx, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 300));
    TT_ASSERT_EQ_INT(f->puts, puts_before + 1);
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.version, s2.version + 1);
    TT_ASSERT_EQ_INT(s.remote_version, s.version);

    ts_index_destroy(idx);
    ts_objstore_destroy(&f->base);
    rmrf(dir);
    rmrf(bucket);
}

/* ------------------------------------------------------------------------
 * Format 2: head + pieces (issue 9)
 * ------------------------------------------------------------------------ */

static int count_prefix(ts_objstore *os, const char *prefix)
{
    int n = 0;
    char err[256];
    ts_objstore_list(os, prefix, count_cb, &n, err, sizeof(err));
    return n;
}

/* Every entry [i*100, i*100+99] for i in [from, to) is found, with its chunk
 * table; nothing below `from`. */
static int check_range(ts_index *idx, int from, int to, char *why, size_t whylen)
{
    for (int i = 0; i < to; i++) {
        ts_segment_meta m;
        char err[256];
        ts_status st = ts_index_lookup_offset(idx, i * 100 + 50, &m);
        if (i < from) {
            if (st != TS_E_NOT_FOUND) {
                snprintf(why, whylen, "offset %d found below the start", i * 100 + 50);
                return -1;
            }
            continue;
        }
        if (st || m.base_offset != i * 100 || ts_index_load_chunks(idx, &m, err, sizeof(err)) ||
            m.chunk_count != 2 || m.chunks[1].first_offset != i * 100 + 50) {
            snprintf(why, whylen, "entry %d: %s", i, ts_status_name(st));
            ts_segment_meta_clear(&m);
            return -1;
        }
        ts_segment_meta_clear(&m);
    }
    return 0;
}

/* Far more entries than one head holds: the full tail keeps moving into
 * immutable pieces; the head stays small; everything comes back from the
 * local files and from the bucket alone; retention drops whole pieces. */
TT_TEST(test_pieces_roundtrip_and_retention)
{
    char dir[256], dir2[256], bucket[256], url[300], err[512], why[256], prefix[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-pc");
    tt_tmpdir(dir2, sizeof(dir2), "idx-pc2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-pcb");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    ts_index_set_head_segments(idx, 4);
    ts_index_set_keep_versions(idx, 2);
    uint64_t max_head = 0;
    for (int i = 0; i < 60; i++) {
        TT_OKE(add_seg(idx, i * 100, i * 100 + 99, 1000 + i, err, sizeof(err)), err);
        ts_index_summary s;
        ts_index_summary_get(idx, &s);
        char key[TS_INDEX_KEY_MAX];
        ts_index_manifest_key("orders", 3, s.version, key, sizeof(key));
        uint64_t sz = 0;
        TT_OK(ts_objstore_head(os, key, &sz, err, sizeof(err)));
        if (i >= 20 && sz > max_head) max_head = sz;
        TT_ASSERT(ts_index_is_remote_durable(idx, i * 100));
    }
    ts_index_stats st;
    ts_index_stats_get(idx, &st);
    TT_ASSERT_EQ_INT(st.entries, 60);
    TT_ASSERT_EQ_INT(st.pieces, 14); /* 56 entries in pieces of 4, 4 in the tail */
    ts_index_piece_prefix("orders", 3, prefix, sizeof(prefix));
    TT_ASSERT_EQ_INT(count_prefix(os, prefix), 14);
    /* The head holds at most 4 entries with their chunks plus one line per
     * piece, never the history. */
    TT_ASSERT_MSG(max_head < 8000, "head grew to %llu bytes", (unsigned long long)max_head);
    TT_ASSERT_MSG(check_range(idx, 0, 60, why, sizeof(why)) == 0, "%s", why);
    ts_index_destroy(idx);

    /* Restart: local head + local pieces, no bucket needed. */
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 60, why, sizeof(why)) == 0, "local: %s", why);
    ts_index_destroy(idx);

    /* Empty data directory: the bucket alone. */
    TT_OKE(ts_index_create("orders", 3, dir2, os, &idx, err, sizeof(err)), err);
    ts_index_set_head_segments(idx, 4);
    ts_index_set_keep_versions(idx, 1);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 60, why, sizeof(why)) == 0, "bucket: %s", why);
    TT_ASSERT(ts_index_is_remote_durable(idx, 0) && ts_index_is_remote_durable(idx, 5900));

    /* Retention into the middle of piece 3 (entries 12..15): pieces 0-2
     * go, piece 3 stays until wholly expired, its first entries leave. */
    char **keys = NULL;
    size_t nk = 0;
    TT_OKE(ts_index_truncate_before(idx, 1350, &keys, &nk, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(nk, 13);
    for (size_t i = 0; i < nk; i++) free(keys[i]);
    free(keys);
    ts_index_stats_get(idx, &st);
    TT_ASSERT_EQ_INT(st.pieces, 11);
    ts_index_summary s0;
    ts_index_summary_get(idx, &s0);
    TT_ASSERT_EQ_INT(s0.raw_bytes, 47 * 200); /* 60 - 13 removed */
    /* keep.versions 1: no older head names the dropped pieces any more. */
    TT_ASSERT_EQ_INT(count_prefix(os, prefix), 11);
    TT_ASSERT_MSG(check_range(idx, 13, 60, why, sizeof(why)) == 0, "after retention: %s", why);
    TT_OKE(add_seg(idx, 6000, 6099, 2000, err, sizeof(err)), err);
    ts_index_destroy(idx);
    rmrf(dir);
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 13, 61, why, sizeof(why)) == 0, "bucket after retention: %s",
                  why);
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.count, 48);
    TT_ASSERT_EQ_INT(s.raw_bytes, 48 * 200);
    TT_ASSERT_EQ_INT(s.log_start_offset, 1350);
    /* Entries join the tail only: nothing may land below a piece. */
    TT_ASSERT_EQ_INT(add_seg(idx, 6200, 6299, 1, err, sizeof(err)), TS_OK);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}

/* The window between a piece and the head that names it: the piece is in
 * the bucket, the head put fails, the process dies. Recovery from the
 * bucket alone sees the previous head (the piece is garbage a sweep may
 * delete); the local files still hold the commit, and the next sync puts
 * the piece (again) before the head. */
TT_TEST(test_crash_between_piece_and_head)
{
    char dir[256], dir2[256], bucket[256], err[512], why[256], prefix[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-ph");
    tt_tmpdir(dir2, sizeof(dir2), "idx-ph2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-phb");
    flaky *f = flaky_open(bucket);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    ts_index_set_head_segments(idx, 2);
    ts_index_set_remote_timeout_ms(idx, 500);
    TT_OKE(add_seg(idx, 0, 99, 1, err, sizeof(err)), err);
    TT_OKE(add_seg(idx, 100, 199, 2, err, sizeof(err)), err);
    /* The third entry fills the tail: piece [0..199] first, then the head. */
    f->fail_status = TS_E_REMOTE;
    f->fail_match = "/manifests/0";
    TT_ASSERT_EQ_INT(add_seg(idx, 200, 299, 3, err, sizeof(err)), TS_E_REMOTE);
    ts_index_piece_prefix("orders", 3, prefix, sizeof(prefix));
    TT_ASSERT_EQ_INT(count_prefix(f->inner, prefix), 1);
    ts_index_destroy(idx); /* "crash" */
    f->fail_match = NULL;

    ts_index *other;
    TT_OKE(ts_index_create("orders", 3, dir2, &f->base, &other, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(other, err, sizeof(err)), err);
    ts_index_summary s;
    ts_index_summary_get(other, &s);
    TT_ASSERT_EQ_INT(s.count, 2);
    TT_ASSERT_MSG(check_range(other, 0, 2, why, sizeof(why)) == 0, "%s", why);
    /* No head names the piece: the sweep's reference walk deletes it. */
    TT_OKE(ts_index_bucket_references(other, NULL, NULL, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(count_prefix(f->inner, prefix), 0);
    ts_index_destroy(other);

    /* Restart from the local files: the commit is there, not durable. */
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 3, why, sizeof(why)) == 0, "%s", why);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 0) && !ts_index_is_remote_durable(idx, 200));
    TT_OKE(ts_index_sync_remote(idx, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 0) && ts_index_is_remote_durable(idx, 200));
    TT_ASSERT_EQ_INT(count_prefix(f->inner, prefix), 1);
    ts_index_destroy(idx);
    rmrf(dir2);
    TT_OKE(ts_index_create("orders", 3, dir2, &f->base, &other, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(other, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(other, 0, 3, why, sizeof(why)) == 0, "%s", why);
    ts_index_destroy(other);
    ts_objstore_destroy(&f->base);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}

/* A damaged piece in the bucket makes its head unusable: recovery falls
 * back to an older head, or says so. A head's piece that does not match
 * its description (bytes, CRC) is refused. */
TT_TEST(test_damaged_piece_is_refused)
{
    char dir[256], dir2[256], bucket[256], url[300], err[512];
    tt_tmpdir(dir, sizeof(dir), "idx-dp");
    tt_tmpdir(dir2, sizeof(dir2), "idx-dp2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-dpb");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, os, &idx, err, sizeof(err)), err);
    ts_index_set_head_segments(idx, 2);
    for (int i = 0; i < 3; i++) TT_OKE(add_seg(idx, i * 100, i * 100 + 99, 1, err, sizeof(err)), err);
    ts_index_destroy(idx);
    /* Flip a byte of the one piece, locally and in the bucket. */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "for f in %s/orders/3/manifests/pieces/*.json %s/manifest-pieces/*.json; do "
             "printf 'X' | dd of=$f bs=1 seek=40 conv=notrunc status=none; done",
             bucket, dir);
    TT_ASSERT(system(cmd) == 0);
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_local(idx, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT_MSG(strstr(err, "piece"), "%s", err);
    ts_index_destroy(idx);
    TT_OKE(ts_index_create("orders", 3, dir2, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err); /* an older head (2 entries) */
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.count, 2);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}

/* A data directory of the format-1 release: its local manifest (format 1
 * with the local extras) loads as it is, every entry durable as recorded;
 * the next change rewrites it as a format-2 head with pieces. */
TT_TEST(test_local_format1_file_upgrades)
{
    char dir[256], err[512], why[256], path[400];
    tt_tmpdir(dir, sizeof(dir), "idx-f1l");
    ts_segment_meta segs[5];
    uint64_t added[5];
    for (int i = 0; i < 5; i++) {
        mkseg(&segs[i], i * 100, i * 100 + 99, 2, 10 + i);
        segs[i].chunks[1].first_offset = i * 100 + 50;
        added[i] = (uint64_t)i + 1;
    }
    ts_manifest_doc d;
    memset(&d, 0, sizeof(d));
    d.format = 1;
    snprintf(d.topic, sizeof(d.topic), "orders");
    d.partition = 3;
    d.version = 5;
    d.segs = segs;
    d.n = 5;
    d.local = 1;
    d.remote_version = 4; /* the last entry is not durable yet */
    d.added_versions = added;
    char *json;
    size_t len;
    TT_OKE(ts_manifest_render(&d, &json, &len, err, sizeof(err)), err);
    TT_ASSERT(strstr(json, "\"format\":1"));
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);
    TT_OKE(ts_fs_write_atomic(path, json, len, err, sizeof(err)), err);
    free(json);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 5, why, sizeof(why)) == 0, "%s", why);
    ts_index_stats st;
    ts_index_stats_get(idx, &st);
    TT_ASSERT_EQ_INT(st.legacy_entries, 5);
    ts_index_set_head_segments(idx, 2);
    TT_OKE(add_seg(idx, 500, 599, 20, err, sizeof(err)), err);
    ts_index_stats_get(idx, &st);
    TT_ASSERT_EQ_INT(st.pieces, 2); /* 6 entries: two pieces of 2, a tail of 2 */
    ts_index_destroy(idx);
    uint8_t *txt;
    TT_OKE(ts_fs_read_all(path, 1 << 20, &txt, &len, err, sizeof(err)), err);
    TT_ASSERT(strstr((char *)txt, "\"format\":2") && strstr((char *)txt, "\"kind\":\"head\""));
    free(txt);
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_local(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 6, why, sizeof(why)) == 0, "%s", why);
    ts_index_destroy(idx);
    for (int i = 0; i < 5; i++) ts_segment_meta_clear(&segs[i]);
    rmrf(dir);
}

/* ------------------------------------------------------------------------
 * Concurrency
 * ------------------------------------------------------------------------ */

#define CONC_SEGS 60

typedef struct conc {
    ts_index *idx;
    int done; /* __atomic */
    int errors;
} conc;

static void *reader_thread(void *arg)
{
    conc *c = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
        int64_t off = rand_r(&seed) % (CONC_SEGS * 100);
        ts_segment_meta m;
        ts_status st = ts_index_lookup_offset(c->idx, off, &m);
        char e[256];
        if (st == TS_OK && ts_index_load_chunks(c->idx, &m, e, sizeof(e)) != TS_OK)
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
        else if (st == TS_OK) {
            if (m.base_offset != off - off % 100 || m.chunk_count != 2 ||
                m.chunks[0].first_offset != m.base_offset)
                __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
            ts_segment_meta_clear(&m);
        } else if (st != TS_E_NOT_FOUND) {
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
        }
        ts_segment_meta *snap;
        size_t n;
        if (ts_index_snapshot(c->idx, &snap, &n) == TS_OK) {
            for (size_t i = 1; i < n; i++)
                if (snap[i].base_offset <= snap[i - 1].last_offset)
                    __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
            ts_index_snapshot_free(snap, n);
        }
    }
    return NULL;
}

TT_TEST(test_concurrent_lookups_while_adding)
{
    char dir[256], err[512];
    tt_tmpdir(dir, sizeof(dir), "idx-conc");
    conc c = {0};
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &c.idx, err, sizeof(err)), err);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, reader_thread, &c);
    /* Even bases first, then odd ones, so inserts land in the middle too. */
    int failed = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = pass; i < CONC_SEGS; i += 2)
            if (add_seg(c.idx, i * 100, i * 100 + 99, i, err, sizeof(err))) failed++;
    __atomic_store_n(&c.done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    TT_ASSERT_MSG(!failed, "%d adds failed: %s", failed, err);
    TT_ASSERT_EQ_INT(c.errors, 0);
    ts_index_summary s;
    ts_index_summary_get(c.idx, &s);
    TT_ASSERT_EQ_INT(s.count, CONC_SEGS);
    ts_index_destroy(c.idx);
    rmrf(dir);
}

struct jbuf {
    char *p;
    size_t cap, *len;
};
static int collect_json(const void *data, size_t len, void *opaque)
{
    struct jbuf *j = opaque;
    if (*j->len + len + 1 > j->cap) return 1;
    memcpy(j->p + *j->len, data, len);
    *j->len += len;
    j->p[*j->len] = 0;
    return 0;
}

/* Fencing by leader epoch (issue 10): a new leader's epoch commit makes an
 * older leader's later commit fail TS_E_FENCED, both when its head put
 * collides and when it would skip past the newer head (its own earlier
 * puts failed); the head's leader_epochs round-trip; ranges are covered. */
TT_TEST(test_fencing_by_leader_epoch)
{
    char da[256], db[256], dc[256], bucket[256], url[300], err[512];
    tt_tmpdir(da, sizeof(da), "idx-fa");
    tt_tmpdir(db, sizeof(db), "idx-fb");
    tt_tmpdir(dc, sizeof(dc), "idx-fc");
    tt_tmpdir(bucket, sizeof(bucket), "idx-fbk");
    snprintf(url, sizeof(url), "file://%s", bucket);
    flaky *f = flaky_open(bucket);
    ts_objstore *os = NULL;
    ts_index *a = NULL, *b = NULL, *c = NULL;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, da, &f->base, &a, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, db, os, &b, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, dc, os, &c, err, sizeof(err)), err);
    ts_index_set_remote_timeout_ms(a, 2000);
    ts_index_set_leader_epoch(a, 1);
    ts_segment_meta m;
    mkseg(&m, 0, 99, 2, 10);
    ts_index_epoch e1[] = {{1, 0}};
    TT_OKE(ts_index_add_epochs(a, &m, e1, 1, err, sizeof(err)), err);
    ts_segment_meta_clear(&m);
    /* a's next two commits stay local (the store refuses) */
    flaky_set(f, -1, TS_E_REMOTE, 0);
    TT_ASSERT_EQ_INT(add_seg(a, 100, 199, 20, err, sizeof(err)), TS_E_REMOTE);
    TT_ASSERT_EQ_INT(add_seg(a, 200, 299, 30, err, sizeof(err)), TS_E_REMOTE);
    flaky_set(f, 0, TS_OK, 0);
    /* b takes over at epoch 2 from what the bucket holds (version 1) */
    TT_OKE(ts_index_load_remote(b, err, sizeof(err)), err);
    TT_OKE(ts_index_commit_epoch(b, 2, err, sizeof(err)), err);
    /* a's version 3 would not collide with b's 2: it is fenced anyway */
    TT_ASSERT_EQ_INT(ts_index_sync_remote(a, err, sizeof(err)), TS_E_FENCED);
    TT_ASSERT(strstr(err, "leader epoch 2") != NULL);
    TT_ASSERT(!ts_index_is_remote_durable(a, 100));
    /* b continues; a's commit collides and is fenced too */
    mkseg(&m, 100, 199, 2, 20);
    ts_index_epoch e2[] = {{1, 100}, {2, 150}};
    TT_OKE(ts_index_add_epochs(b, &m, e2, 2, err, sizeof(err)), err);
    ts_segment_meta_clear(&m);
    TT_ASSERT_EQ_INT(add_seg(a, 300, 399, 40, err, sizeof(err)), TS_E_FENCED);
    /* the bucket's newest head is b's: entries 0..199, epochs (1,0) (2,150) */
    TT_OKE(ts_index_load_remote(c, err, sizeof(err)), err);
    ts_index_summary sum;
    ts_index_summary_get(c, &sum);
    TT_ASSERT_EQ_INT(sum.count, 2);
    TT_ASSERT_EQ_INT(sum.end_offset, 199);
    ts_index_epoch *eps = NULL;
    size_t neps = 0;
    TT_OK(ts_index_epochs(c, &eps, &neps));
    TT_ASSERT_EQ_INT(neps, 2);
    TT_ASSERT(eps[0].epoch == 1 && eps[0].start_offset == 0);
    TT_ASSERT(eps[1].epoch == 2 && eps[1].start_offset == 150);
    free(eps);
    /* Each entry carries its own epochs too (KIP-405 segmentLeaderEpochs). */
    char json[8192];
    size_t jl = 0;
    TT_OKE(ts_index_write_json(c, collect_json, &(struct jbuf){json, sizeof json, &jl}, err,
                               sizeof(err)), err);
    TT_ASSERT_MSG(strstr(json, "\"leader_epochs\":[[1,0],[2,150]]") != NULL, "%s", json);
    TT_ASSERT(strstr(json, "\"compression\":\"zstd\",\"leader_epochs\":[[1,100],[2,150]]") != NULL);
    TT_ASSERT(strstr(json, "\"compression\":\"zstd\",\"leader_epochs\":[[1,0]]") != NULL);
    TT_ASSERT(ts_index_covers(c, 50, 150, 1));
    TT_ASSERT(ts_index_covers(c, 0, 199, 1));
    TT_ASSERT(!ts_index_covers(c, 150, 200, 1));
    TT_ASSERT(!ts_index_covers(a, 150, 250, 1)); /* a's 200..299 never became durable */
    TT_ASSERT(ts_index_covers(a, 150, 250, 0));
    /* Retention drops the epochs that ended below the new start. */
    char **keys = NULL;
    size_t nk = 0;
    TT_OKE(ts_index_truncate_before(c, 160, &keys, &nk, err, sizeof(err)), err);
    for (size_t i = 0; i < nk; i++) free(keys[i]);
    free(keys);
    TT_OK(ts_index_epochs(c, &eps, &neps));
    TT_ASSERT(neps == 1 && eps[0].epoch == 2);
    free(eps);
    ts_index_destroy(a);
    ts_index_destroy(b);
    ts_index_destroy(c);
    ts_objstore_destroy(&f->base);
    ts_objstore_destroy(os);
    rmrf(da);
    rmrf(db);
    rmrf(dc);
    rmrf(bucket);
}

/* The new leader's cleanup emptied the version slot the deposed leader
 * would put next: no collision, and still fenced. */
TT_TEST(test_fencing_into_emptied_slot)
{
    char da[256], db[256], bucket[256], url[300], err[512];
    tt_tmpdir(da, sizeof(da), "idx-ea");
    tt_tmpdir(db, sizeof(db), "idx-eb");
    tt_tmpdir(bucket, sizeof(bucket), "idx-ebk");
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_objstore *os = NULL;
    ts_index *a = NULL, *b = NULL;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, da, os, &a, err, sizeof(err)), err);
    TT_OKE(ts_index_create("orders", 3, db, os, &b, err, sizeof(err)), err);
    ts_index_set_leader_epoch(a, 1);
    TT_OKE(add_seg(a, 0, 99, 10, err, sizeof(err)), err);          /* v1 */
    ts_index_set_keep_versions(b, 1);
    TT_OKE(ts_index_load_remote(b, err, sizeof(err)), err);
    TT_OKE(ts_index_commit_epoch(b, 2, err, sizeof(err)), err);    /* v2 */
    TT_OKE(add_seg(b, 100, 199, 20, err, sizeof(err)), err);       /* v3 */
    TT_OKE(add_seg(b, 200, 299, 30, err, sizeof(err)), err);       /* v4; v2, v3 deleted */
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 1);
    TT_ASSERT_EQ_INT(add_seg(a, 100, 199, 40, err, sizeof(err)), TS_E_FENCED);
    TT_ASSERT_EQ_INT(count_manifests(os, "orders", 3), 1);
    ts_index_destroy(a);
    ts_index_destroy(b);
    ts_objstore_destroy(os);
    rmrf(da);
    rmrf(db);
    rmrf(bucket);
}
/* Adds segments [i*100, i*100+99] for i in [from, to) as one group, each
 * with the epoch (e, i*100); *added as ts_index_add_group returns it. */
static ts_status add_group(ts_index *idx, int from, int to, int32_t e, size_t *added, char *err,
                           size_t errlen)
{
    ts_segment_meta segs[16];
    ts_index_epoch eps[16];
    ts_index_add_item items[16];
    int n = to - from;
    if (n < 1 || n > 16) return TS_E_INVAL;
    for (int i = 0; i < n; i++) {
        int64_t b = (int64_t)(from + i) * 100;
        mkseg(&segs[i], b, b + 99, 2, 1000 + from + i);
        eps[i] = (ts_index_epoch){e, b};
        items[i] = (ts_index_add_item){&segs[i], &eps[i], 1};
    }
    ts_status st = ts_index_add_group(idx, items, (size_t)n, added, err, errlen);
    for (int i = 0; i < n; i++) ts_segment_meta_clear(&segs[i]);
    return st;
}

/* A group commit: a run of entries joins as one version (one local head,
 * one head put, a piece spilled inside the same commit), its epochs merged
 * in order; an entry of the group that cannot join ends the group after
 * the ones before it, which stay committed; a refused first entry changes
 * nothing. */
TT_TEST(test_group_add_is_one_version)
{
    char dir[256], dir2[256], bucket[256], err[512], why[256];
    tt_tmpdir(dir, sizeof(dir), "idx-grp");
    tt_tmpdir(dir2, sizeof(dir2), "idx-grp2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-grpb");
    flaky *f = flaky_open(bucket);
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, &f->base, &idx, err, sizeof(err)), err);
    ts_index_set_head_segments(idx, 3);
    TT_OKE(add_seg(idx, 0, 99, 1000, err, sizeof(err)), err); /* v1 */
    int puts0 = f->puts;
    size_t added = 99;
    /* 1..5 in one group: the tail (6 > 3) spills a piece of 0..2 in it. */
    TT_OKE(add_group(idx, 1, 6, 1, &added, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(added, 5);
    TT_ASSERT_EQ_INT(f->puts - puts0, 2); /* the piece, then ONE head */
    ts_index_summary sum;
    ts_index_summary_get(idx, &sum);
    TT_ASSERT_EQ_INT(sum.version, 2);
    TT_ASSERT_EQ_INT(sum.remote_version, 2);
    TT_ASSERT_EQ_INT(sum.count, 6);
    TT_ASSERT_MSG(check_range(idx, 0, 6, why, sizeof(why)) == 0, "%s", why);
    TT_ASSERT(ts_index_is_remote_durable(idx, 500));
    ts_segment_meta m;
    TT_OK(ts_index_lookup_time(idx, 1004, &m)); /* running maxima across the group */
    TT_ASSERT_EQ_INT(m.base_offset, 400);
    /* 6, 7 join; 8 overlaps 7 (ends the group); 9 is not looked at. */
    ts_segment_meta segs[4];
    ts_index_add_item items[4];
    mkseg(&segs[0], 600, 699, 2, 1006);
    mkseg(&segs[1], 700, 799, 2, 1007);
    mkseg(&segs[2], 750, 899, 2, 1008);
    mkseg(&segs[3], 900, 999, 2, 1009);
    for (int i = 0; i < 4; i++) items[i] = (ts_index_add_item){&segs[i], NULL, 0};
    puts0 = f->puts;
    TT_OKE(ts_index_add_group(idx, items, 4, &added, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(added, 2);
    TT_ASSERT_EQ_INT(f->puts - puts0, 2); /* 3..5 spill as a piece, then one head */
    TT_ASSERT_EQ_INT(ts_index_add_group(idx, items + 2, 2, &added, err, sizeof(err)), TS_E_INVAL);
    TT_ASSERT_EQ_INT(added, 0);
    TT_ASSERT(strstr(err, "overlaps") != NULL);
    /* A first entry already there: TS_E_EXISTS, nothing changes. */
    TT_ASSERT_EQ_INT(ts_index_add_group(idx, items, 2, &added, err, sizeof(err)), TS_E_EXISTS);
    TT_ASSERT_EQ_INT(added, 0);
    ts_index_summary_get(idx, &sum);
    TT_ASSERT_EQ_INT(sum.version, 3);
    TT_ASSERT_EQ_INT(sum.count, 8);
    for (int i = 0; i < 4; i++) ts_segment_meta_clear(&segs[i]);
    /* An entry already between two of the group ends it before the gap. */
    TT_OKE(add_seg(idx, 1000, 1099, 1010, err, sizeof(err)), err); /* v4 */
    mkseg(&segs[0], 800, 899, 2, 1008);
    mkseg(&segs[1], 900, 999, 2, 1009);
    mkseg(&segs[2], 1100, 1199, 2, 1011);
    for (int i = 0; i < 3; i++) items[i] = (ts_index_add_item){&segs[i], NULL, 0};
    TT_OKE(ts_index_add_group(idx, items, 3, &added, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(added, 2);
    TT_OKE(ts_index_add_group(idx, items + 2, 1, &added, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(added, 1);
    for (int i = 0; i < 3; i++) ts_segment_meta_clear(&segs[i]);
    TT_ASSERT_MSG(check_range(idx, 0, 12, why, sizeof(why)) == 0, "%s", why);
    /* A failed head put: the whole group stays committed locally, remote
     * pending, and the next sync makes it durable. */
    flaky_set(f, -1, TS_E_REMOTE, 0);
    TT_ASSERT_EQ_INT(add_group(idx, 12, 15, 2, &added, err, sizeof(err)), TS_E_REMOTE);
    TT_ASSERT_EQ_INT(added, 3);
    TT_ASSERT(strstr(err, "segments 1200..1400 (3) are committed locally") != NULL);
    TT_ASSERT(!ts_index_is_remote_durable(idx, 1200) && !ts_index_is_remote_durable(idx, 1400));
    TT_ASSERT(ts_index_covers(idx, 1200, 1499, 0));
    flaky_set(f, 0, TS_OK, 0);
    TT_OKE(ts_index_sync_remote(idx, err, sizeof(err)), err);
    TT_ASSERT(ts_index_is_remote_durable(idx, 1400));
    ts_index_destroy(idx);
    /* The bucket alone has every entry, and the epochs of both groups. */
    TT_OKE(ts_index_create("orders", 3, dir2, f->inner, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    TT_ASSERT_MSG(check_range(idx, 0, 15, why, sizeof(why)) == 0, "bucket: %s", why);
    ts_index_epoch *eps = NULL;
    size_t neps = 0;
    TT_OK(ts_index_epochs(idx, &eps, &neps));
    TT_ASSERT_EQ_INT(neps, 2);
    TT_ASSERT(eps[0].epoch == 1 && eps[0].start_offset == 100);
    TT_ASSERT(eps[1].epoch == 2 && eps[1].start_offset == 1200);
    free(eps);
    ts_index_destroy(idx);
    ts_objstore_destroy(&f->base);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}
int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (!getenv("TS_LOG_LEVEL")) ts_log_set_level(TS_LOG_ERROR); /* expected warnings */
    TT_RUN(test_lookups_at_boundaries);
    TT_RUN(test_truncate_before);
    TT_RUN(test_local_persistence);
    TT_RUN(test_remote_persist_and_recover);
    TT_RUN(test_remote_newest_corrupt_fallback);
    TT_RUN(test_remote_keep_n_cleanup);
    TT_RUN(test_remote_durability_transitions);
    TT_RUN(test_fencing_by_leader_epoch);
    TT_RUN(test_fencing_into_emptied_slot);
    TT_RUN(test_group_add_is_one_version);
    TT_RUN(test_concurrent_lookups_while_adding);
    TT_RUN(test_pieces_roundtrip_and_retention);
    TT_RUN(test_crash_between_piece_and_head);
    TT_RUN(test_damaged_piece_is_refused);
    TT_RUN(test_local_format1_file_upgrades);
    return tt_summary();
}
