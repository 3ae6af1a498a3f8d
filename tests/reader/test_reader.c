/*
 * test_reader.c — unit tests of reader/: the disk chunk cache (hits,
 * misses, LRU eviction under a cap, adoption after restart, single-flight,
 * verification and refetch, retries) and the cold read path over a real
 * `file://` bucket and a real index (whole batches from any offset, across
 * chunks and segments, max_bytes, stop_offset, offset_for_time, prefetch).
 *
 * Remote objects are built here the way the uploader writes them: raw
 * segment bytes cut into chunks at batch boundaries, one zstd frame per
 * chunk (content size and checksum on), frames back to back, then a zstd
 * seekable-format seek table. GETs are counted by a small wrapper store that
 * can also hold GETs at a gate, fail them retriably or cut their body short,
 * so concurrency is tested by state, never by timing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "tests/tt.h"
#include "common/batch.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "objstore/objstore.h"
#include "reader/reader.h"

/* ------------------------------------------------- counting wrapper store */

typedef struct cstore {
    ts_objstore base; /* first: the store interface */
    ts_objstore *inner;
    atomic_int gets;
    atomic_int fail_next;     /* next N GETs fail TS_E_REMOTE_RETRIABLE */
    atomic_int truncate_next; /* next N GETs return a body one byte short */
    atomic_int delay_ms;      /* each GET sleeps this long (widens races; never asserted) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate_closed; /* GETs wait while set */
} cstore;

#define INNER(os) (((cstore *)(os))->inner)

static ts_status c_put(ts_objstore *os, const char *key, const void *data, size_t len,
                       unsigned flags, char *e, size_t el)
{
    return ts_objstore_put(INNER(os), key, data, len, flags, e, el);
}
static ts_status c_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                               char *e, size_t el)
{
    return ts_objstore_writer_open(INNER(os), key, out, e, el);
}
static ts_status c_get(ts_objstore *os, const char *key, uint64_t off, uint64_t len,
                       uint8_t **out, size_t *out_len, char *e, size_t el)
{
    cstore *c = (cstore *)os;
    atomic_fetch_add(&c->gets, 1);
    pthread_mutex_lock(&c->mu);
    while (c->gate_closed) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    int d = atomic_load(&c->delay_ms);
    if (d) usleep((useconds_t)d * 1000);
    int n = atomic_load(&c->fail_next);
    while (n > 0 && !atomic_compare_exchange_weak(&c->fail_next, &n, n - 1)) {
    }
    if (n > 0) {
        snprintf(e, el, "injected 503 SlowDown");
        return TS_E_REMOTE_RETRIABLE;
    }
    ts_status st = ts_objstore_get(INNER(os), key, off, len, out, out_len, e, el);
    n = atomic_load(&c->truncate_next);
    while (n > 0 && !atomic_compare_exchange_weak(&c->truncate_next, &n, n - 1)) {
    }
    if (st == TS_OK && n > 0 && *out_len > 0) (*out_len)--;
    return st;
}
static ts_status c_head(ts_objstore *os, const char *key, uint64_t *size, char *e, size_t el)
{
    return ts_objstore_head(INNER(os), key, size, e, el);
}
static ts_status c_del(ts_objstore *os, const char *key, char *e, size_t el)
{
    return ts_objstore_delete(INNER(os), key, e, el);
}
static ts_status c_del_many(ts_objstore *os, const char *const *keys, size_t n, char *e, size_t el)
{
    return ts_objstore_delete_many(INNER(os), keys, n, e, el);
}
static ts_status c_list(ts_objstore *os, const char *prefix,
                        int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                        char *e, size_t el)
{
    return ts_objstore_list(INNER(os), prefix, cb, opaque, e, el);
}
static void c_destroy(ts_objstore *os)
{
    cstore *c = (cstore *)os;
    ts_objstore_destroy(c->inner);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static const ts_objstore_ops cstore_ops = {"counting", c_put,  c_writer_open, c_get,
                                           c_head,     c_del,  c_del_many,    c_list,
                                           c_destroy};

static cstore *cstore_open(const char *root)
{
    char err[256];
    cstore *c = calloc(1, sizeof(*c));
    if (!c) abort();
    if (ts_objstore_fs_open(root, &c->inner, err, sizeof(err)) != TS_OK) {
        fprintf(stderr, "fs open %s: %s\n", root, err);
        abort();
    }
    c->base.ops = &cstore_ops;
    snprintf(c->base.url, sizeof(c->base.url), "counting+file://%s", root);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void cstore_gate(cstore *c, int closed)
{
    pthread_mutex_lock(&c->mu);
    c->gate_closed = closed;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------- segment builder */

#define MAX_BATCHES 256

typedef struct seg_build {
    uint8_t *raw;
    size_t raw_len;
    uint8_t *obj;
    size_t obj_len;
    ts_segment_meta meta;
} seg_build;

/* One batch of the test log, for expectations. */
typedef struct gbatch {
    int seg;
    int64_t base, last, max_ts;
    size_t pos, size; /* in the segment's raw bytes */
} gbatch;

typedef struct tlog {
    seg_build segs[4];
    int nsegs;
    gbatch b[MAX_BATCHES];
    int nb;
} tlog;

static void append(uint8_t **p, size_t *len, const void *data, size_t n)
{
    *p = realloc(*p, *len + n);
    if (!*p) abort();
    memcpy(*p + *len, data, n);
    *len += n;
}

static void wr32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* Compresses raw[from, to) into one frame appended to sb->obj and adds its
 * chunk meta. */
static void add_chunk(seg_build *sb, size_t from, size_t to, int64_t first_offset, int64_t max_ts)
{
    size_t len = to - from;
    size_t bound = ZSTD_compressBound(len);
    uint8_t *dst = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    size_t n = ZSTD_compress2(cctx, dst, bound, sb->raw + from, len);
    if (ZSTD_isError(n)) abort();
    ZSTD_freeCCtx(cctx);
    ts_segment_meta *m = &sb->meta;
    m->chunks = realloc(m->chunks, (m->chunk_count + 1) * sizeof(*m->chunks));
    ts_chunk_meta *cm = &m->chunks[m->chunk_count++];
    cm->raw_pos = from;
    cm->raw_len = (uint32_t)len;
    cm->stored_pos = sb->obj_len;
    cm->stored_len = (uint32_t)n;
    cm->first_offset = first_offset;
    cm->max_timestamp = max_ts;
    cm->stored_crc32c = ts_crc32c(0, dst, n);
    cm->raw_crc32c = ts_crc32c(0, sb->raw + from, len);
    append(&sb->obj, &sb->obj_len, dst, n);
    free(dst);
}

/* Appends the seekable-format seek table (no per-frame checksums). */
static void add_seek_table(seg_build *sb)
{
    uint32_t nf = sb->meta.chunk_count;
    size_t body = (size_t)nf * 8 + 9;
    uint8_t *t = calloc(1, 8 + body);
    wr32le(t, 0x184D2A5Eu);
    wr32le(t + 4, (uint32_t)body);
    for (uint32_t i = 0; i < nf; i++) {
        wr32le(t + 8 + i * 8, sb->meta.chunks[i].stored_len);
        wr32le(t + 12 + i * 8, sb->meta.chunks[i].raw_len);
    }
    wr32le(t + 8 + nf * 8, nf);
    t[8 + nf * 8 + 4] = 0;
    wr32le(t + 8 + nf * 8 + 5, 0x8F92EAB1u);
    append(&sb->obj, &sb->obj_len, t, 8 + body);
    free(t);
}

/* Builds a segment of nbatches batches of recs records each, starting at
 * base_offset; batch big_batch (if >= 0) has values big enough to exceed
 * chunk_bytes on its own. Batch timestamps: 1000 + 10 * global index. */
static void build_segment(tlog *lg, const char *key, int64_t base_offset, int nbatches, int recs,
                          size_t chunk_bytes, int big_batch)
{
    seg_build *sb = &lg->segs[lg->nsegs];
    memset(sb, 0, sizeof(*sb));
    int64_t off = base_offset;
    size_t chunk_from = 0;
    int64_t chunk_first = off, chunk_max_ts = -1;
    for (int b = 0; b < nbatches; b++) {
        size_t vlen = b == big_batch ? chunk_bytes + 100 : 100;
        char *vals[16];
        const void *vp[16];
        size_t vl[16];
        for (int i = 0; i < recs; i++) {
            vals[i] = malloc(vlen);
            for (size_t k = 0; k < vlen; k++) vals[i][k] = (char)('a' + (off + i + k) % 26);
            vp[i] = vals[i];
            vl[i] = vlen;
        }
        uint8_t *batch;
        size_t blen;
        int64_t ts = 1000 + 10 * lg->nb;
        if (ts_batch_build(vp, vl, recs, ts, &batch, &blen) != TS_OK) abort();
        for (int i = 0; i < recs; i++) free(vals[i]);
        ts_batch_set_base_offset(batch, off);
        /* Cut before a batch that would overflow a non-empty chunk. */
        if (sb->raw_len > chunk_from && sb->raw_len - chunk_from + blen > chunk_bytes) {
            add_chunk(sb, chunk_from, sb->raw_len, chunk_first, chunk_max_ts);
            chunk_from = sb->raw_len;
            chunk_first = off;
            chunk_max_ts = -1;
        }
        gbatch *g = &lg->b[lg->nb++];
        g->seg = lg->nsegs;
        g->base = off;
        g->last = off + recs - 1;
        g->max_ts = ts + recs - 1;
        g->pos = sb->raw_len;
        g->size = blen;
        append(&sb->raw, &sb->raw_len, batch, blen);
        free(batch);
        if (g->max_ts > chunk_max_ts) chunk_max_ts = g->max_ts;
        off += recs;
        if (sb->raw_len - chunk_from >= chunk_bytes) {
            add_chunk(sb, chunk_from, sb->raw_len, chunk_first, chunk_max_ts);
            chunk_from = sb->raw_len;
            chunk_first = off;
            chunk_max_ts = -1;
        }
    }
    if (sb->raw_len > chunk_from) add_chunk(sb, chunk_from, sb->raw_len, chunk_first, chunk_max_ts);
    add_seek_table(sb);
    ts_segment_meta *m = &sb->meta;
    m->base_offset = base_offset;
    m->last_offset = off - 1;
    m->first_timestamp = lg->b[lg->nb - nbatches].max_ts - (recs - 1);
    m->max_timestamp = lg->b[lg->nb - 1].max_ts;
    m->size_bytes = sb->raw_len;
    m->stored_bytes = sb->obj_len;
    m->upload_time_ms = 1700000000000;
    m->segment_crc32c = ts_crc32c(0, sb->raw, sb->raw_len);
    snprintf(m->object_key, sizeof(m->object_key), "%s", key);
    lg->nsegs++;
}

static void tlog_free(tlog *lg)
{
    for (int i = 0; i < lg->nsegs; i++) {
        free(lg->segs[i].raw);
        free(lg->segs[i].obj);
        free(lg->segs[i].meta.chunks);
    }
    memset(lg, 0, sizeof(*lg));
}

/* Index of the batch holding offset o, or -1. */
static int batch_at(const tlog *lg, int64_t o)
{
    for (int i = 0; i < lg->nb; i++)
        if (lg->b[i].base <= o && o <= lg->b[i].last) return i;
    return -1;
}

/* Non-zero when data equals batches [first, first + n) back to back. */
static int same_batches(const tlog *lg, const uint8_t *data, size_t len, int first, int n)
{
    size_t pos = 0;
    for (int i = first; i < first + n; i++) {
        if (i >= lg->nb) return 0;
        const gbatch *g = &lg->b[i];
        if (pos + g->size > len) return 0;
        if (memcmp(data + pos, lg->segs[g->seg].raw + g->pos, g->size)) return 0;
        pos += g->size;
    }
    return pos == len;
}

/* Number of whole batches in data (headers only). */
static int count_batches(const uint8_t *data, size_t len)
{
    int n = 0;
    for (size_t pos = 0; pos < len; n++) {
        ts_batch_hdr h;
        if (ts_batch_parse_header(data + pos, len - pos, SIZE_MAX, &h, NULL, 0)) return -1;
        pos += ts_batch_total_size(&h);
    }
    return n;
}

/* --------------------------------------------------------------- fixture */

typedef struct fixture {
    char dir[256], bucket[300], cache_dir[300], idx_dir[300];
    ts_objstore *fs; /* for the index and uploads */
    cstore *cs;      /* what the reader GETs through */
    ts_index *idx;
    ts_chunk_cache *cache;
    ts_reader *rd;
    tlog lg;
    char err[1024];
} fixture;

/* The standard test log: segment 0 offsets 0..35 and segment 1 36..71 (12
 * batches of 3 records, ~3 batches per chunk); segment 2 72..92 with a
 * batch larger than a chunk in the middle. Uploaded and indexed. */
static int fx_open(fixture *fx, uint64_t cap, int threads, int prefetch)
{
    memset(fx, 0, sizeof(*fx));
    tt_tmpdir(fx->dir, sizeof(fx->dir), "reader");
    snprintf(fx->bucket, sizeof(fx->bucket), "%s/bucket", fx->dir);
    snprintf(fx->cache_dir, sizeof(fx->cache_dir), "%s/cache", fx->dir);
    snprintf(fx->idx_dir, sizeof(fx->idx_dir), "%s/part", fx->dir);
    if (ts_fs_mkdirs(fx->bucket, fx->err, sizeof(fx->err)) ||
        ts_fs_mkdirs(fx->idx_dir, fx->err, sizeof(fx->err)))
        return -1;
    if (ts_objstore_fs_open(fx->bucket, &fx->fs, fx->err, sizeof(fx->err))) return -1;
    fx->cs = cstore_open(fx->bucket);
    char key[TS_INDEX_KEY_MAX];
    ts_index_segment_key("t", 0, 0, "a1", key, sizeof(key));
    build_segment(&fx->lg, key, 0, 12, 3, 1000, -1);
    ts_index_segment_key("t", 0, 36, "a1", key, sizeof(key));
    build_segment(&fx->lg, key, 36, 12, 3, 1000, -1);
    ts_index_segment_key("t", 0, 72, "a1", key, sizeof(key));
    build_segment(&fx->lg, key, 72, 7, 3, 1000, 3);
    if (ts_index_create("t", 0, fx->idx_dir, fx->fs, &fx->idx, fx->err, sizeof(fx->err)))
        return -1;
    for (int i = 0; i < fx->lg.nsegs; i++) {
        seg_build *sb = &fx->lg.segs[i];
        if (ts_objstore_put(fx->fs, sb->meta.object_key, sb->obj, sb->obj_len, 0, fx->err,
                            sizeof(fx->err)))
            return -1;
        if (ts_index_add(fx->idx, &sb->meta, fx->err, sizeof(fx->err))) return -1;
    }
    if (ts_chunk_cache_create(fx->cache_dir, cap, &fx->cache, fx->err, sizeof(fx->err)))
        return -1;
    /* These tests exercise the disk cache: no RAM layer unless a test asks. */
    ts_chunk_cache_set_memory(fx->cache, 0);
    ts_chunk_cache_set_retry(fx->cache, 10000, 1, 5, 3);
    if (ts_reader_create(&fx->cs->base, fx->cache, threads, prefetch, &fx->rd, fx->err,
                         sizeof(fx->err)))
        return -1;
    return 0;
}

static void fx_close(fixture *fx)
{
    ts_reader_destroy(fx->rd);
    ts_chunk_cache_destroy(fx->cache);
    ts_index_destroy(fx->idx);
    ts_objstore_destroy(&fx->cs->base);
    ts_objstore_destroy(fx->fs);
    tlog_free(&fx->lg);
    ts_fs_rmtree(fx->dir, NULL, 0);
}

#define FX_OPEN(fx, cap, threads, prefetch)                                                      \
    TT_ASSERT_MSG(fx_open(&(fx), (cap), (threads), (prefetch)) == 0, "fixture: %s", (fx).err)

static int gets(fixture *fx) { return atomic_load(&fx->cs->gets); }

static ts_chunk_cache_stats stats(ts_chunk_cache *c)
{
    ts_chunk_cache_stats s;
    ts_chunk_cache_stats_get(c, &s);
    return s;
}

/* Bytes of the chunk file chunk idx of seg makes (header + body). */
static uint64_t file_bytes(const ts_segment_meta *seg, uint32_t idx)
{
    return 22 + strlen(seg->object_key) + seg->chunks[idx].raw_len;
}

static int chunk_is(const ts_chunk *ch, const seg_build *sb, uint32_t idx)
{
    const ts_chunk_meta *cm = &sb->meta.chunks[idx];
    return ch && ch->len == cm->raw_len && !memcmp(ch->data, sb->raw + cm->raw_pos, cm->raw_len);
}

/* Gets and releases a chunk; returns the status. */
static ts_status get_release(fixture *fx, int seg, uint32_t idx)
{
    ts_chunk *ch = NULL;
    ts_status st = ts_chunk_cache_get(fx->cache, &fx->cs->base, &fx->lg.segs[seg].meta, idx, &ch,
                                      fx->err, sizeof(fx->err));
    if (st == TS_OK && !chunk_is(ch, &fx->lg.segs[seg], idx)) st = TS_E_CORRUPT;
    ts_chunk_release(ch);
    return st;
}

/* ------------------------------------------------------------ cache tests */

TT_TEST(cache_miss_then_hit)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    TT_ASSERT(m->chunk_count >= 3);
    ts_chunk *ch = NULL;
    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, 1, &ch, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    ts_chunk_release(ch);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.misses, 1);
    TT_ASSERT_EQ_INT(s.hits, 0);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(s.fetched_bytes, m->chunks[1].stored_len);
    TT_ASSERT_EQ_INT(s.bytes, file_bytes(m, 1));
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 1));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));

    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, 1, &ch, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    TT_ASSERT_EQ_INT(gets(&fx), 1); /* served from disk */
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 1);
    /* A chunk stays valid while held, even when its file goes away. */
    ts_chunk_cache_forget_object(fx.cache, m->object_key);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    ts_chunk_release(ch);
    /* Out-of-range index is refused, nothing fetched. */
    ch = NULL;
    TT_ASSERT_EQ_INT(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, m->chunk_count, &ch, fx.err,
                                        sizeof(fx.err)),
                     TS_E_INVAL);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    fx_close(&fx);
}

TT_TEST(cache_lru_eviction_order)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    uint64_t f = file_bytes(m, 0);
    TT_ASSERT_EQ_INT(file_bytes(m, 1), f);
    TT_ASSERT_EQ_INT(file_bytes(m, 2), f);
    ts_reader_destroy(fx.rd);
    ts_chunk_cache_destroy(fx.cache);
    /* Room for two chunk files, not three. */
    TT_OKE(ts_chunk_cache_create(fx.cache_dir, 2 * f + f / 2, &fx.cache, fx.err, sizeof(fx.err)),
           fx.err);
    ts_chunk_cache_set_memory(fx.cache, 0);
    TT_OK(ts_reader_create(&fx.cs->base, fx.cache, 1, 0, &fx.rd, NULL, 0));

    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A */
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* B */
    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A again: now B is least recent */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_OKE(get_release(&fx, 0, 2), fx.err); /* C evicts B */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.evictions, 1);
    TT_ASSERT_EQ_INT(s.files, 2);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 0));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 1));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(ts_fs_du(fx.cache_dir) <= 2 * f + f / 2);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A: hit */
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* B: miss, evicts C (A was just used) */
    TT_ASSERT_EQ_INT(gets(&fx), 4);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 0));
    TT_ASSERT_EQ_INT(stats(fx.cache).evictions, 2);
    fx_close(&fx);
}

TT_TEST(cache_cap_never_exceeded)
{
    fixture fx;
    const uint64_t cap = 3000;
    FX_OPEN(fx, cap, 1, 0);
    /* Every chunk of every segment, several passes in a scrambled order. */
    int total = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int s = 0; s < fx.lg.nsegs; s++) {
            uint32_t n = fx.lg.segs[s].meta.chunk_count;
            for (uint32_t k = 0; k < n; k++) {
                uint32_t i = (k * 7 + (uint32_t)pass) % n;
                TT_OKE(get_release(&fx, s, i), fx.err);
                uint64_t du = ts_fs_du(fx.cache_dir);
                TT_ASSERT_MSG(du <= cap, "cache dir holds %llu bytes, cap %llu",
                              (unsigned long long)du, (unsigned long long)cap);
                TT_ASSERT_EQ_INT(stats(fx.cache).bytes, du);
                total++;
            }
        }
    }
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT(s.evictions > 0);
    TT_ASSERT_EQ_INT(s.hits + s.misses, total);
    fx_close(&fx);
}

TT_TEST(cache_chunk_larger_than_cap_served_not_kept)
{
    fixture fx;
    FX_OPEN(fx, 100, 1, 0); /* smaller than any chunk */
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 0);
    TT_ASSERT_EQ_INT(s.bytes, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    fx_close(&fx);
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    utimensat(AT_FDCWD, path, ts, 0);
}

/* Path of the single file in dir that is not in `known` (NUL-separated). */
static int newest_file(const char *dir, char *known, size_t known_len, char *out, size_t outlen)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    int found = -1;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (strstr(known, de->d_name)) continue;
        snprintf(out, outlen, "%s/%s", dir, de->d_name);
        size_t kl = strlen(known);
        snprintf(known + kl, known_len - kl, "%s,", de->d_name);
        found = 0;
        break;
    }
    closedir(d);
    return found;
}

TT_TEST(cache_adopt_on_restart)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    uint64_t f = file_bytes(m, 0);
    char known[2048] = "", pa[1024], pb[1024], pc[1024];
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pa, sizeof(pa)) == 0);
    TT_OKE(get_release(&fx, 0, 1), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pb, sizeof(pb)) == 0);
    TT_OKE(get_release(&fx, 0, 2), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pc, sizeof(pc)) == 0);
    /* Make the LRU order explicit: B oldest, then A, then C. */
    time_t now = time(NULL);
    set_mtime(pb, now - 300);
    set_mtime(pa, now - 200);
    set_mtime(pc, now - 100);
    /* Debris a crash can leave: a temp file and a torn chunk file. */
    char junk[1100];
    snprintf(junk, sizeof(junk), "%s.tmp-0123456789abcdef", pa);
    TT_OK(ts_fs_write_atomic(junk, "partial", 7, NULL, 0));
    snprintf(junk, sizeof(junk), "%s/%064d.chunk", fx.cache_dir, 7);
    TT_OK(ts_fs_write_atomic(junk, "TSC1torn", 8, NULL, 0));
    ts_reader_destroy(fx.rd);
    fx.rd = NULL;
    ts_chunk_cache_destroy(fx.cache);

    /* Restart with room for two: the oldest (B) goes, the debris too. */
    TT_OKE(ts_chunk_cache_create(fx.cache_dir, 2 * f + f / 2, &fx.cache, fx.err, sizeof(fx.err)),
           fx.err);
    ts_chunk_cache_set_memory(fx.cache, 0);
    TT_OK(ts_reader_create(&fx.cs->base, fx.cache, 1, 0, &fx.rd, NULL, 0));
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 2);
    TT_ASSERT_EQ_INT(s.bytes, 2 * f);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 2 * f);
    TT_ASSERT(access(pb, F_OK) != 0);
    TT_ASSERT(access(pa, F_OK) == 0 && access(pc, F_OK) == 0);
    int g = gets(&fx);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 2), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g); /* both adopted files served */
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 2);
    TT_OKE(get_release(&fx, 0, 1), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g + 1);
    fx_close(&fx);
}

typedef struct sf_arg {
    fixture *fx;
    int seg;
    uint32_t idx;
    ts_status st;
    ts_chunk *ch;
    char err[512];
} sf_arg;

static void *sf_thread(void *p)
{
    sf_arg *a = p;
    a->st = ts_chunk_cache_get(a->fx->cache, &a->fx->cs->base, &a->fx->lg.segs[a->seg].meta,
                               a->idx, &a->ch, a->err, sizeof(a->err));
    return NULL;
}

/* Waits (bounded, as a safety net only) until the cache counts n misses. */
static int wait_misses(ts_chunk_cache *c, uint64_t n)
{
    for (int i = 0; i < 20000; i++) {
        if (stats(c).misses >= n) return 0;
        usleep(1000);
    }
    return -1;
}

TT_TEST(cache_single_flight)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    enum { N = 8 };
    sf_arg a[N];
    pthread_t th[N];
    cstore_gate(fx.cs, 1); /* the one GET waits until every thread has asked */
    for (int i = 0; i < N; i++) {
        a[i] = (sf_arg){.fx = &fx, .seg = 1, .idx = 2};
        pthread_create(&th[i], NULL, sf_thread, &a[i]);
    }
    int all_in = wait_misses(fx.cache, N);
    cstore_gate(fx.cs, 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    TT_ASSERT_MSG(all_in == 0, "threads never all reached the cache");
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    for (int i = 0; i < N; i++) {
        TT_ASSERT_MSG(a[i].st == TS_OK, "thread %d: %s", i, a[i].err);
        TT_ASSERT(chunk_is(a[i].ch, &fx.lg.segs[1], 2));
        ts_chunk_release(a[i].ch);
    }
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 1);

    /* Waiters share the leader's error too. */
    ts_chunk_cache_set_retry(fx.cache, 10000, 1, 5, 1);
    atomic_store(&fx.cs->fail_next, 1);
    cstore_gate(fx.cs, 1);
    uint64_t base = stats(fx.cache).misses;
    for (int i = 0; i < N; i++) {
        a[i] = (sf_arg){.fx = &fx, .seg = 1, .idx = 3};
        pthread_create(&th[i], NULL, sf_thread, &a[i]);
    }
    all_in = wait_misses(fx.cache, base + N);
    cstore_gate(fx.cs, 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    TT_ASSERT(all_in == 0);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    for (int i = 0; i < N; i++) {
        TT_ASSERT_EQ_INT(a[i].st, TS_E_REMOTE_RETRIABLE);
        TT_ASSERT(a[i].ch == NULL);
        TT_ASSERT_MSG(strstr(a[i].err, "chunk 3") && strstr(a[i].err, fx.lg.segs[1].meta.object_key),
                      "message: %s", a[i].err);
    }
    fx_close(&fx);
}

TT_TEST(cache_flipped_stored_byte_is_checksum_error)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    /* The same object with one byte of chunk 1's frame flipped, under its
     * own key, described by the good object's manifest entry. */
    seg_build *sb = &fx.lg.segs[0];
    ts_segment_meta bad;
    TT_OK(ts_segment_meta_copy(&bad, &sb->meta));
    snprintf(bad.object_key, sizeof(bad.object_key), "t/0/segments/bad-object.log.zst");
    uint8_t *obj = malloc(sb->obj_len);
    memcpy(obj, sb->obj, sb->obj_len);
    obj[bad.chunks[1].stored_pos + bad.chunks[1].stored_len / 2] ^= 0x10;
    TT_OK(ts_objstore_put(fx.fs, bad.object_key, obj, sb->obj_len, 0, NULL, 0));
    free(obj);

    ts_chunk *ch = (ts_chunk *)1;
    ts_status st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &bad, 1, &ch, fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CHECKSUM);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_MSG(strstr(fx.err, bad.object_key) && strstr(fx.err, "chunk 1"), "message: %s",
                  fx.err);
    char crcs[2][16];
    snprintf(crcs[0], sizeof(crcs[0]), "0x%08x", bad.chunks[1].stored_crc32c);
    TT_ASSERT_MSG(strstr(fx.err, crcs[0]), "message lacks the expected CRC: %s", fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 3); /* retried: a damaged download may be transient */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.verify_failures, 3);
    TT_ASSERT_EQ_INT(s.files, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    /* The other chunks of that object are intact and served. */
    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, &bad, 0, &ch, fx.err, sizeof(fx.err)),
           fx.err);
    TT_ASSERT(chunk_is(ch, sb, 0));
    ts_chunk_release(ch);
    ts_segment_meta_clear(&bad);
    fx_close(&fx);
}

TT_TEST(cache_retries_transient_failures)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    atomic_store(&fx.cs->fail_next, 1);     /* attempt 1: 503 */
    atomic_store(&fx.cs->truncate_next, 1); /* attempt 2: body cut short */
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* attempt 3 succeeds */
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, 1);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 1);

    /* Out of attempts: the final error names object and chunk. */
    atomic_store(&fx.cs->fail_next, 5);
    ts_chunk *ch = NULL;
    ts_status st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &fx.lg.segs[0].meta, 2, &ch, fx.err,
                                      sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_REMOTE_RETRIABLE);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_MSG(strstr(fx.err, "chunk 2") && strstr(fx.err, fx.lg.segs[0].meta.object_key) &&
                      strstr(fx.err, "3 attempts"),
                  "message: %s", fx.err);
    atomic_store(&fx.cs->fail_next, 0);
    /* A missing object is not retried, and is not TS_E_NOT_FOUND (which
     * callers read as "no segment covers this offset" and skip): the
     * manifest names it, so its absence is data loss (issue 7 item 1). */
    ts_segment_meta gone;
    TT_OK(ts_segment_meta_copy(&gone, &fx.lg.segs[0].meta));
    snprintf(gone.object_key, sizeof(gone.object_key), "t/0/segments/deleted.log.zst");
    int g = gets(&fx);
    st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &gone, 0, &ch, fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_OBJECT_MISSING);
    TT_ASSERT_MSG(strstr(fx.err, "t/0/segments/deleted.log.zst") && strstr(fx.err, "missing"),
                  "message: %s", fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g + 1);
    ts_segment_meta_clear(&gone);
    fx_close(&fx);
}

TT_TEST(cache_damaged_file_refetched)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    char known[256] = "", path[1024];
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), path, sizeof(path)) == 0);
    /* Flip one body byte on disk (bit rot, a torn write). */
    FILE *f = fopen(path, "r+b");
    TT_ASSERT(f != NULL);
    fseek(f, -10, SEEK_END);
    int c = fgetc(f);
    fseek(f, -10, SEEK_END);
    fputc(c ^ 0x01, f);
    fclose(f);
    TT_OKE(get_release(&fx, 1, 0), fx.err); /* correct bytes, refetched */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.verify_failures, 1);
    TT_ASSERT_EQ_INT(s.hits, 0);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_OKE(get_release(&fx, 1, 0), fx.err); /* the rewritten file is good */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 1);

    /* A file truncated on disk is dropped the same way. */
    TT_ASSERT(truncate(path, 30) == 0);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), stats(fx.cache).bytes);
    fx_close(&fx);
}

/* The RAM layer: a repeated get of one chunk is served from memory (no GET,
 * no file read), a damaged cache file does not matter while the verified
 * copy is in RAM, and forgetting the object drops it. */
TT_TEST(cache_ram_layer_serves_repeats)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    ts_chunk_cache_set_memory(fx.cache, 8 << 20);
    char known[256] = "", path[1024];
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), path, sizeof(path)) == 0);
    TT_ASSERT(truncate(path, 30) == 0); /* would fail verification if read */
    for (int i = 0; i < 5; i++) TT_OKE(get_release(&fx, 1, 0), fx.err);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT_EQ_INT(s.hits, 5);
    TT_ASSERT_EQ_INT(s.verify_failures, 0);
    ts_chunk_cache_forget_object(fx.cache, fx.lg.segs[1].meta.object_key);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 2); /* forgotten: fetched again */
    /* A cap smaller than a chunk keeps nothing in RAM. */
    ts_chunk_cache_set_memory(fx.cache, 16);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 6); /* the second came from the disk file */
    fx_close(&fx);
}

TT_TEST(cache_forget_object)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    for (uint32_t i = 0; i < 3; i++) TT_OKE(get_release(&fx, 0, i), fx.err);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 4);
    ts_chunk_cache_forget_object(fx.cache, fx.lg.segs[0].meta.object_key);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(s.bytes, file_bytes(&fx.lg.segs[1].meta, 0));
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, fx.lg.segs[1].meta.object_key, 0));
    fx_close(&fx);
}

typedef struct stress_arg {
    fixture *fx;
    int seed;
    int failures;
} stress_arg;

static void *stress_thread(void *p)
{
    stress_arg *a = p;
    unsigned x = (unsigned)a->seed * 2654435761u + 1;
    char err[512];
    for (int i = 0; i < 150; i++) {
        x = x * 1103515245u + 12345u;
        int s = (int)((x >> 8) % (unsigned)a->fx->lg.nsegs);
        uint32_t n = a->fx->lg.segs[s].meta.chunk_count;
        uint32_t idx = (x >> 16) % n;
        ts_chunk *ch = NULL;
        ts_status st = ts_chunk_cache_get(a->fx->cache, &a->fx->cs->base,
                                          &a->fx->lg.segs[s].meta, idx, &ch, err, sizeof(err));
        if (st != TS_OK || !chunk_is(ch, &a->fx->lg.segs[s], idx)) a->failures++;
        ts_chunk_release(ch);
        if (i % 50 == 25) ts_chunk_cache_forget_object(a->fx->cache, a->fx->lg.segs[s].meta.object_key);
    }
    return NULL;
}

TT_TEST(cache_concurrent_gets_small_cap)
{
    fixture fx;
    const uint64_t cap = 4000;
    FX_OPEN(fx, cap, 1, 0);
    enum { N = 6 };
    pthread_t th[N];
    stress_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (stress_arg){.fx = &fx, .seed = i + 1};
        pthread_create(&th[i], NULL, stress_thread, &a[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) TT_ASSERT_EQ_INT(a[i].failures, 0);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.hits + s.misses, N * 150);
    TT_ASSERT(s.bytes <= cap);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    fx_close(&fx);
}

/* ----------------------------------------------------------- reader tests */

/* Reads and checks the result is exactly batches [first, first + n). */
static ts_status read_check(fixture *fx, int64_t offset, size_t max_bytes, int64_t stop,
                            int first, int n, int *ok)
{
    ts_buf out;
    ts_buf_init(&out, 0);
    ts_status st = ts_reader_read(fx->rd, fx->idx, offset, max_bytes, stop, &out, fx->err,
                                  sizeof(fx->err));
    *ok = st == TS_OK && same_batches(&fx->lg, out.data, out.len, first, n);
    if (st == TS_OK && !*ok)
        fprintf(stderr, "    read %lld got %d batches, wanted %d from batch %d\n",
                (long long)offset, count_batches(out.data, out.len), n, first);
    ts_buf_free(&out);
    return st;
}

TT_TEST(reader_reads_whole_batches_from_any_offset)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 0);
    tlog *lg = &fx.lg;
    int ok;
    /* Everything, across chunks and segments (incl. the oversized batch). */
    TT_OKE(read_check(&fx, 0, SIZE_MAX, INT64_MAX, 0, lg->nb, &ok), fx.err);
    TT_ASSERT(ok);
    TT_ASSERT(lg->segs[2].meta.chunk_count >= 3);
    /* Mid-batch: offset 4 is inside batch [3..5]. */
    TT_OKE(read_check(&fx, 4, 1, INT64_MAX, 1, 1, &ok), fx.err);
    TT_ASSERT(ok);
    /* Every offset of the log, one batch each: the batch holding it. */
    for (int64_t o = 0; o <= lg->b[lg->nb - 1].last; o++) {
        TT_OKE(read_check(&fx, o, 0, INT64_MAX, batch_at(lg, o), 1, &ok), fx.err);
        TT_ASSERT_MSG(ok, "offset %lld", (long long)o);
    }
    /* Mid-chunk start, to the end. */
    const ts_segment_meta *m0 = &lg->segs[0].meta;
    int64_t mid = m0->chunks[1].first_offset + 4;
    int bi = batch_at(lg, mid);
    TT_ASSERT(lg->b[bi].base > m0->chunks[1].first_offset);
    TT_OKE(read_check(&fx, mid, SIZE_MAX, INT64_MAX, bi, lg->nb - bi, &ok), fx.err);
    TT_ASSERT(ok);
    /* Segment boundaries: last offset of segment 0, first of segment 1. */
    int last0 = batch_at(lg, m0->last_offset);
    TT_OKE(read_check(&fx, m0->last_offset, SIZE_MAX, INT64_MAX, last0, lg->nb - last0, &ok),
           fx.err);
    TT_ASSERT(ok);
    TT_OKE(read_check(&fx, lg->segs[1].meta.base_offset, SIZE_MAX, INT64_MAX, last0 + 1,
                      lg->nb - last0 - 1, &ok),
           fx.err);
    TT_ASSERT(ok);
    /* Reading past the remote tier. */
    ts_buf out;
    ts_buf_init(&out, 0);
    TT_ASSERT_EQ_INT(ts_reader_read(fx.rd, fx.idx, lg->b[lg->nb - 1].last + 1, 1000, INT64_MAX,
                                    &out, fx.err, sizeof(fx.err)),
                     TS_E_NOT_FOUND);
    TT_ASSERT_EQ_INT(out.len, 0);
    ts_buf_free(&out);
    fx_close(&fx);
}

TT_TEST(reader_max_bytes_and_stop_offset)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 0);
    tlog *lg = &fx.lg;
    int ok;
    /* At least one batch, whatever max_bytes says. */
    TT_OKE(read_check(&fx, 3, 0, INT64_MAX, 1, 1, &ok), fx.err);
    TT_ASSERT(ok);
    /* The oversized batch is returned whole when it comes first... */
    int big = 0;
    for (int i = 0; i < lg->nb; i++)
        if (lg->b[i].size > lg->b[big].size) big = i;
    TT_OKE(read_check(&fx, lg->b[big].base, 100, INT64_MAX, big, 1, &ok), fx.err);
    TT_ASSERT(ok);
    /* ...and not appended after another batch when it does not fit. */
    TT_OKE(read_check(&fx, lg->b[big - 1].base, lg->b[big - 1].size + 100, INT64_MAX, big - 1, 1,
                      &ok),
           fx.err);
    TT_ASSERT(ok);
    /* Exactly two batches fit; the third would pass max_bytes. */
    size_t two = lg->b[1].size + lg->b[2].size;
    TT_OKE(read_check(&fx, 3, two + lg->b[3].size - 1, INT64_MAX, 1, 2, &ok), fx.err);
    TT_ASSERT(ok);
    TT_OKE(read_check(&fx, 3, two, INT64_MAX, 1, 2, &ok), fx.err);
    TT_ASSERT(ok);
    /* A budget that crosses chunk and segment boundaries. */
    size_t many = 0;
    for (int i = 10; i < 15; i++) many += lg->b[i].size;
    TT_OKE(read_check(&fx, lg->b[10].base, many, INT64_MAX, 10, 5, &ok), fx.err);
    TT_ASSERT(ok);
    /* stop_offset: stop before the first batch whose base is >= it. */
    TT_OKE(read_check(&fx, 0, SIZE_MAX, 9, 0, 3, &ok), fx.err);
    TT_ASSERT(ok);
    TT_OKE(read_check(&fx, 0, SIZE_MAX, 10, 0, 4, &ok), fx.err);
    TT_ASSERT(ok);
    TT_OKE(read_check(&fx, 30, SIZE_MAX, lg->segs[1].meta.base_offset, 10, 2, &ok), fx.err);
    TT_ASSERT(ok);
    /* Appends after what the buffer already holds. */
    ts_buf out;
    ts_buf_init(&out, 0);
    TT_OK(ts_buf_append(&out, "xyz", 3));
    TT_OKE(ts_reader_read(fx.rd, fx.idx, 0, 0, INT64_MAX, &out, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT(out.len == 3 + lg->b[0].size && !memcmp(out.data, "xyz", 3));
    TT_ASSERT(same_batches(lg, out.data + 3, out.len - 3, 0, 1));
    ts_buf_free(&out);
    /* A capped buffer too small for the first batch: nothing appended. */
    ts_buf_init(&out, 10);
    TT_ASSERT_EQ_INT(ts_reader_read(fx.rd, fx.idx, 0, 0, INT64_MAX, &out, fx.err, sizeof(fx.err)),
                     TS_E_NOMEM);
    TT_ASSERT_EQ_INT(out.len, 0);
    ts_buf_free(&out);
    fx_close(&fx);
}

TT_TEST(reader_offset_for_time)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    tlog *lg = &fx.lg;
    int64_t off = -1;
    TT_OKE(ts_reader_offset_for_time(fx.rd, fx.idx, 0, &off, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT_EQ_INT(off, 0);
    for (int i = 0; i < lg->nb; i++) {
        /* Inside the batch's range of timestamps, and just past its max. */
        TT_OKE(ts_reader_offset_for_time(fx.rd, fx.idx, lg->b[i].max_ts - 1, &off, fx.err,
                                         sizeof(fx.err)),
               fx.err);
        TT_ASSERT_EQ_INT(off, lg->b[i].base);
        if (i + 1 < lg->nb) {
            TT_OKE(ts_reader_offset_for_time(fx.rd, fx.idx, lg->b[i].max_ts + 1, &off, fx.err,
                                             sizeof(fx.err)),
                   fx.err);
            TT_ASSERT_EQ_INT(off, lg->b[i + 1].base);
        }
    }
    TT_ASSERT_EQ_INT(ts_reader_offset_for_time(fx.rd, fx.idx, lg->b[lg->nb - 1].max_ts + 1, &off,
                                               fx.err, sizeof(fx.err)),
                     TS_E_NOT_FOUND);
    fx_close(&fx);
}

TT_TEST(reader_prefetch_sequential)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 1);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    int ok;
    /* A first read is not sequential: no prefetch. */
    TT_OKE(read_check(&fx, 0, 0, INT64_MAX, 0, 1, &ok), fx.err);
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 1));
    /* The next read lands in chunk 1: sequential, so chunk 2 is prefetched. */
    int64_t o1 = m->chunks[1].first_offset;
    TT_OKE(read_check(&fx, o1, 0, INT64_MAX, batch_at(&fx.lg, o1), 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.misses, 3);
    TT_ASSERT_EQ_INT(s.fetched_bytes, m->chunks[0].stored_len + m->chunks[1].stored_len +
                                          m->chunks[2].stored_len);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 3));
    /* Reading into chunk 2 is now a hit. */
    int64_t o2 = m->chunks[2].first_offset;
    TT_OKE(read_check(&fx, o2, 0, INT64_MAX, batch_at(&fx.lg, o2), 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd); /* ...and prefetched chunk 3 */
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 1);
    TT_ASSERT_EQ_INT(gets(&fx), 4);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 3));
    /* A read that runs on into the next segment prefetches there. */
    const ts_segment_meta *m1 = &fx.lg.segs[1].meta;
    TT_OKE(read_check(&fx, m->chunks[3].first_offset, SIZE_MAX, m1->chunks[0].first_offset + 1,
                      batch_at(&fx.lg, m->chunks[3].first_offset),
                      batch_at(&fx.lg, m1->base_offset) -
                          batch_at(&fx.lg, m->chunks[3].first_offset) + 1,
                      &ok),
           fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 1));
    fx_close(&fx);

    /* prefetch_chunks 0: the same reads fetch only what they read. */
    FX_OPEN(fx, 1 << 20, 2, 0);
    m = &fx.lg.segs[0].meta;
    TT_OKE(read_check(&fx, 0, 0, INT64_MAX, 0, 1, &ok), fx.err);
    TT_OKE(read_check(&fx, m->chunks[1].first_offset, 0, INT64_MAX,
                      batch_at(&fx.lg, m->chunks[1].first_offset), 1, &ok),
           fx.err);
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));
    fx_close(&fx);
}

TT_TEST(reader_destroy_drains_prefetch)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 8);
    atomic_store(&fx.cs->delay_ms, 5); /* keep prefetch jobs queued at destroy */
    int ok;
    const ts_segment_meta *m = &fx.lg.segs[1].meta;
    TT_OKE(read_check(&fx, m->chunks[0].first_offset, 0, INT64_MAX,
                      batch_at(&fx.lg, m->chunks[0].first_offset), 1, &ok),
           fx.err);
    /* Sequential into chunk 1: prefetch of the rest of the segment. */
    TT_OKE(read_check(&fx, m->chunks[1].first_offset, 0, INT64_MAX,
                      batch_at(&fx.lg, m->chunks[1].first_offset), 1, &ok),
           fx.err);
    TT_ASSERT(ok);
    ts_reader_destroy(fx.rd); /* must wait for running jobs, free queued ones */
    fx.rd = NULL;
    /* The cache is consistent afterwards: every file it counts is there. */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    fx_close(&fx);
}

TT_TEST(reader_batch_overrunning_chunk_is_corrupt)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    /* A segment whose only chunk ends 10 bytes into... before the end of its
     * last batch; CRCs are computed over the cut bytes, so only the framing
     * check can catch it. */
    tlog bad;
    memset(&bad, 0, sizeof(bad));
    build_segment(&bad, "t/1/segments/cut.log.zst", 0, 2, 3, 1 << 20, -1);
    seg_build *sb = &bad.segs[0];
    free(sb->obj);
    sb->obj = NULL;
    sb->obj_len = 0;
    free(sb->meta.chunks);
    sb->meta.chunks = NULL;
    sb->meta.chunk_count = 0;
    sb->raw_len -= 10;
    add_chunk(sb, 0, sb->raw_len, 0, bad.b[1].max_ts);
    add_seek_table(sb);
    sb->meta.size_bytes = sb->raw_len;
    sb->meta.stored_bytes = sb->obj_len;
    sb->meta.segment_crc32c = ts_crc32c(0, sb->raw, sb->raw_len);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/part1", fx.dir);
    TT_OK(ts_fs_mkdirs(dir, NULL, 0));
    ts_index *idx = NULL;
    TT_OKE(ts_index_create("t", 1, dir, fx.fs, &idx, fx.err, sizeof(fx.err)), fx.err);
    TT_OK(ts_objstore_put(fx.fs, sb->meta.object_key, sb->obj, sb->obj_len, 0, NULL, 0));
    TT_OKE(ts_index_add(idx, &sb->meta, fx.err, sizeof(fx.err)), fx.err);
    ts_buf out;
    ts_buf_init(&out, 0);
    /* The first batch is whole and is served; the cut one is reported. */
    TT_OKE(ts_reader_read(fx.rd, idx, 0, SIZE_MAX, INT64_MAX, &out, fx.err, sizeof(fx.err)),
           fx.err);
    TT_ASSERT(same_batches(&bad, out.data, out.len, 0, 1));
    ts_buf_reset(&out);
    ts_status st = ts_reader_read(fx.rd, idx, 3, SIZE_MAX, INT64_MAX, &out, fx.err,
                                  sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CORRUPT);
    TT_ASSERT_EQ_INT(out.len, 0);
    TT_ASSERT_MSG(strstr(fx.err, "chunk 0") && strstr(fx.err, sb->meta.object_key), "message: %s",
                  fx.err);
    ts_buf_free(&out);
    ts_index_destroy(idx);
    tlog_free(&bad);
    fx_close(&fx);
}

typedef struct rd_arg {
    fixture *fx;
    int start;
    int failures;
} rd_arg;

/* A consumer: reads the whole remote log from batch `start` with a small
 * max_bytes, checking every answer. */
static void *consumer_thread(void *p)
{
    rd_arg *a = p;
    fixture *fx = a->fx;
    char err[512];
    ts_buf out;
    ts_buf_init(&out, 0);
    int b = a->start;
    while (b < fx->lg.nb) {
        ts_buf_reset(&out);
        ts_status st = ts_reader_read(fx->rd, fx->idx, fx->lg.b[b].base + 1, 900, INT64_MAX, &out,
                                      err, sizeof(err));
        int n = st == TS_OK ? count_batches(out.data, out.len) : -1;
        if (n <= 0 || !same_batches(&fx->lg, out.data, out.len, b, n)) {
            a->failures++;
            break;
        }
        b += n;
    }
    ts_buf_free(&out);
    return NULL;
}

TT_TEST(reader_concurrent_consumers)
{
    fixture fx;
    const uint64_t cap = 5000; /* a few chunks: constant eviction */
    FX_OPEN(fx, cap, 3, 2);
    enum { N = 6 };
    pthread_t th[N];
    rd_arg a[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            a[i] = (rd_arg){.fx = &fx, .start = (i * 5 + round) % fx.lg.nb};
            pthread_create(&th[i], NULL, consumer_thread, &a[i]);
        }
        for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < N; i++) TT_ASSERT_EQ_INT(a[i].failures, 0);
    }
    ts_reader_drain(fx.rd);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT(s.bytes <= cap);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_ASSERT(s.hits > 0);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(cache_miss_then_hit);
    TT_RUN(cache_lru_eviction_order);
    TT_RUN(cache_cap_never_exceeded);
    TT_RUN(cache_chunk_larger_than_cap_served_not_kept);
    TT_RUN(cache_adopt_on_restart);
    TT_RUN(cache_single_flight);
    TT_RUN(cache_flipped_stored_byte_is_checksum_error);
    TT_RUN(cache_retries_transient_failures);
    TT_RUN(cache_damaged_file_refetched);
    TT_RUN(cache_ram_layer_serves_repeats);
    TT_RUN(cache_forget_object);
    TT_RUN(cache_concurrent_gets_small_cap);
    TT_RUN(reader_reads_whole_batches_from_any_offset);
    TT_RUN(reader_max_bytes_and_stop_offset);
    TT_RUN(reader_offset_for_time);
    TT_RUN(reader_prefetch_sequential);
    TT_RUN(reader_destroy_drains_prefetch);
    TT_RUN(reader_batch_overrunning_chunk_is_corrupt);
    TT_RUN(reader_concurrent_consumers);
    return tt_summary();
}
