/*
 * reader_test.h — what the reader/ unit tests share: remote objects built
 * the way the uploader writes them (raw segment bytes cut into chunks at
 * batch boundaries, one zstd frame per chunk with content size and checksum
 * on, frames back to back, then a zstd seekable-format seek table), a small
 * wrapper store that counts GETs and can hold them at a gate, fail them
 * retriably or cut their body short (so concurrency is tested by state,
 * never by timing), and the fixture: bucket, index, cache and reader.
 * Header-only (static inline), like tt.h.
 */
#ifndef TS_TESTS_READER_TEST_H
#define TS_TESTS_READER_TEST_H

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

static inline ts_status c_put(ts_objstore *os, const char *key, const void *data, size_t len,
                       unsigned flags, char *e, size_t el)
{
    return ts_objstore_put(INNER(os), key, data, len, flags, e, el);
}
static inline ts_status c_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                               char *e, size_t el)
{
    return ts_objstore_writer_open(INNER(os), key, out, e, el);
}
static inline ts_status c_get(ts_objstore *os, const char *key, uint64_t off, uint64_t len,
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
static inline ts_status c_head(ts_objstore *os, const char *key, uint64_t *size, char *e, size_t el)
{
    return ts_objstore_head(INNER(os), key, size, e, el);
}
static inline ts_status c_del(ts_objstore *os, const char *key, char *e, size_t el)
{
    return ts_objstore_delete(INNER(os), key, e, el);
}
static inline ts_status c_del_many(ts_objstore *os, const char *const *keys, size_t n, char *e, size_t el)
{
    return ts_objstore_delete_many(INNER(os), keys, n, e, el);
}
static inline ts_status c_list(ts_objstore *os, const char *prefix,
                        int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                        char *e, size_t el)
{
    return ts_objstore_list(INNER(os), prefix, cb, opaque, e, el);
}
static inline void c_destroy(ts_objstore *os)
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

static inline cstore *cstore_open(const char *root)
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

static inline void cstore_gate(cstore *c, int closed)
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

static inline void append(uint8_t **p, size_t *len, const void *data, size_t n)
{
    *p = realloc(*p, *len + n);
    if (!*p) abort();
    memcpy(*p + *len, data, n);
    *len += n;
}

static inline void wr32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* Compresses raw[from, to) into one frame appended to sb->obj and adds its
 * chunk meta. */
static inline void add_chunk(seg_build *sb, size_t from, size_t to, int64_t first_offset, int64_t max_ts)
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
static inline void add_seek_table(seg_build *sb)
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
static inline void build_segment(tlog *lg, const char *key, int64_t base_offset, int nbatches, int recs,
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

static inline void tlog_free(tlog *lg)
{
    for (int i = 0; i < lg->nsegs; i++) {
        free(lg->segs[i].raw);
        free(lg->segs[i].obj);
        free(lg->segs[i].meta.chunks);
    }
    memset(lg, 0, sizeof(*lg));
}

/* Index of the batch holding offset o, or -1. */
static inline int batch_at(const tlog *lg, int64_t o)
{
    for (int i = 0; i < lg->nb; i++)
        if (lg->b[i].base <= o && o <= lg->b[i].last) return i;
    return -1;
}

/* Non-zero when data equals batches [first, first + n) back to back. */
static inline int same_batches(const tlog *lg, const uint8_t *data, size_t len, int first, int n)
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
static inline int count_batches(const uint8_t *data, size_t len)
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
static inline int fx_open(fixture *fx, uint64_t cap, int threads, int prefetch)
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

static inline void fx_close(fixture *fx)
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

static inline int gets(fixture *fx) { return atomic_load(&fx->cs->gets); }

static inline ts_chunk_cache_stats stats(ts_chunk_cache *c)
{
    ts_chunk_cache_stats s;
    ts_chunk_cache_stats_get(c, &s);
    return s;
}

/* Bytes of the chunk file chunk idx of sb makes: header (34 bytes, the key,
 * 20 per batch: reader/README.md "Cache file format") + body. */
static inline uint64_t file_bytes(const seg_build *sb, uint32_t idx)
{
    const ts_chunk_meta *cm = &sb->meta.chunks[idx];
    int n = count_batches(sb->raw + cm->raw_pos, cm->raw_len);
    return 34 + strlen(sb->meta.object_key) + 20 * (uint64_t)n + cm->raw_len;
}

static inline int chunk_is(const ts_chunk *ch, const seg_build *sb, uint32_t idx)
{
    const ts_chunk_meta *cm = &sb->meta.chunks[idx];
    return ch && ch->len == cm->raw_len && !memcmp(ch->data, sb->raw + cm->raw_pos, cm->raw_len);
}

/* Gets and releases a chunk; returns the status. */
static inline ts_status get_release(fixture *fx, int seg, uint32_t idx)
{
    ts_chunk *ch = NULL;
    ts_status st = ts_chunk_cache_get(fx->cache, &fx->cs->base, &fx->lg.segs[seg].meta, idx, &ch,
                                      fx->err, sizeof(fx->err));
    if (st == TS_OK && !chunk_is(ch, &fx->lg.segs[seg], idx)) st = TS_E_CORRUPT;
    ts_chunk_release(ch);
    return st;
}

#endif
