/*
 * test_reader_cold.c — cold reads on a miss (issue 13 item 2): the fetch
 * planning of reader/reader.c over a real `file://` bucket and a real index.
 *  - a read spanning several chunks fetches each once, in parallel (shown
 *    by state: all its GETs are in flight at once behind a closed gate,
 *    which a one-after-another fetch could never reach), and returns them
 *    in order;
 *  - a chunk failing in the middle of such a read: the batches before it,
 *    then the error on the next read;
 *  - random reads prefetch nothing and fetch one chunk per read (GETs
 *    counted by the fault-injecting store objstore/faulty.c, with no
 *    faults: the real store behind a counter);
 *  - a sequential reader's prefetch depth grows while it consumes what was
 *    prefetched, never past the max, and shrinks when the cache is too
 *    small to keep what it prefetched.
 * No timing decides anything here.
 */
#include "reader_test.h"
#include "objstore/faulty.h"

/* Reads and checks the result is exactly batches [first, first + n). */
static ts_status read_check(fixture *fx, ts_reader *rd, int64_t offset, size_t max_bytes,
                            int64_t stop, int first, int n, int *ok)
{
    ts_buf out;
    ts_buf_init(&out, 0);
    ts_status st = ts_reader_read(rd, fx->idx, offset, max_bytes, stop, &out, fx->err,
                                  sizeof(fx->err));
    *ok = st == TS_OK && same_batches(&fx->lg, out.data, out.len, first, n);
    if (st == TS_OK && !*ok)
        fprintf(stderr, "    read %lld got %d batches, wanted %d from batch %d\n",
                (long long)offset, count_batches(out.data, out.len), n, first);
    ts_buf_free(&out);
    return st;
}

typedef struct bg_read {
    fixture *fx;
    int64_t offset, stop;
    int first, n;
    ts_status st;
    int ok;
} bg_read;

static void *bg_read_main(void *p)
{
    bg_read *a = p;
    a->st = read_check(a->fx, a->fx->rd, a->offset, SIZE_MAX, a->stop, a->first, a->n, &a->ok);
    return NULL;
}

/* Waits (up to 20 s: a generous bound for a loaded machine, not a timing
 * assertion) until the store has seen n GETs; returns how many it saw. */
static int wait_gets(fixture *fx, int n)
{
    for (int i = 0; i < 2000 && gets(fx) < n; i++) usleep(10000);
    return gets(fx);
}

TT_TEST(cold_read_spanning_three_chunks_fetches_them_in_parallel)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    TT_ASSERT(m->chunk_count >= 4);
    /* Offsets 0 .. chunk 3: chunks 0, 1 and 2 exactly. */
    int n = batch_at(&fx.lg, m->chunks[3].first_offset);
    bg_read a = {&fx, 0, m->chunks[3].first_offset, 0, n, TS_OK, 0};
    cstore_gate(fx.cs, 1);
    pthread_t th;
    pthread_create(&th, NULL, bg_read_main, &a);
    /* The reading thread fetches chunk 0 and two pool workers chunks 1 and
     * 2: three GETs in flight while none can finish. */
    int seen = wait_gets(&fx, 3);
    cstore_gate(fx.cs, 0);
    pthread_join(th, NULL);
    TT_ASSERT_EQ_INT(seen, 3);
    TT_OKE(a.st, fx.err);
    TT_ASSERT_MSG(a.ok, "the three chunks' batches, in order");
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 3); /* each chunk once */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.misses, 3);
    TT_ASSERT_EQ_INT(s.fetched_bytes, m->chunks[0].stored_len + m->chunks[1].stored_len +
                                          m->chunks[2].stored_len);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 3)); /* past stop_offset */
    /* Again: all hits, nothing fetched. */
    int ok;
    TT_OKE(read_check(&fx, fx.rd, 0, SIZE_MAX, m->chunks[3].first_offset, 0, n, &ok), fx.err);
    TT_ASSERT(ok);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    /* max_bytes bounds the plan too: a one-batch read fetches one chunk. */
    TT_OKE(read_check(&fx, fx.rd, fx.lg.segs[1].meta.base_offset, 0, INT64_MAX,
                      batch_at(&fx.lg, fx.lg.segs[1].meta.base_offset), 1, &ok),
           fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 4);
    fx_close(&fx);
}

TT_TEST(cold_read_with_more_chunks_than_workers)
{
    /* One worker, a read over a whole segment and into the next: the plan
     * runs at most one chunk ahead, the reading thread takes back jobs the
     * pool has not started, and every batch comes back once, in order. */
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    int ok;
    int64_t stop = fx.lg.segs[2].meta.base_offset;
    TT_OKE(read_check(&fx, fx.rd, 0, SIZE_MAX, stop, 0, batch_at(&fx.lg, stop), &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    int chunks = (int)(fx.lg.segs[0].meta.chunk_count + fx.lg.segs[1].meta.chunk_count);
    TT_ASSERT_EQ_INT(gets(&fx), chunks);
    TT_ASSERT_EQ_INT(stats(fx.cache).misses, chunks);
    fx_close(&fx);
}

static const ts_segment_meta *add_long_segment(fixture *fx);

TT_TEST(cold_read_over_many_chunks_reuses_the_plan)
{
    /* One read over 40 chunks with one and with two workers: the plan's
     * ring of PAR_MAX jobs wraps several times (a job slot reused after 8
     * chunks must never hand back an old job), every chunk is fetched once
     * and the batches come back in order. */
    for (int threads = 1; threads <= 2; threads++) {
        fixture fx;
        FX_OPEN(fx, 1 << 20, threads, 0);
        const ts_segment_meta *m = add_long_segment(&fx);
        int first = batch_at(&fx.lg, 93), ok;
        TT_OKE(read_check(&fx, fx.rd, 93, SIZE_MAX, INT64_MAX, first, fx.lg.nb - first, &ok),
               fx.err);
        TT_ASSERT(ok);
        ts_reader_drain(fx.rd);
        TT_ASSERT_EQ_INT(gets(&fx), (int)m->chunk_count);
        /* And read in pieces of ~5 chunks: the plan starts again and again. */
        int b = first;
        while (b < fx.lg.nb) {
            ts_buf out;
            ts_buf_init(&out, 0);
            TT_OKE(ts_reader_read(fx.rd, fx.idx, fx.lg.b[b].base, 5 * fx.lg.b[b].size, INT64_MAX,
                                  &out, fx.err, sizeof(fx.err)),
                   fx.err);
            int n = count_batches(out.data, out.len);
            TT_ASSERT(n > 0 && same_batches(&fx.lg, out.data, out.len, b, n));
            ts_buf_free(&out);
            b += n;
        }
        fx_close(&fx);
    }
}

/* Flips one byte of chunk ci of segment si in the bucket. */
static void damage_chunk(fixture *fx, int si, uint32_t ci)
{
    seg_build *sb = &fx->lg.segs[si];
    uint8_t *copy = malloc(sb->obj_len);
    memcpy(copy, sb->obj, sb->obj_len);
    copy[sb->meta.chunks[ci].stored_pos + sb->meta.chunks[ci].stored_len / 2] ^= 0x40;
    if (ts_objstore_put(fx->fs, sb->meta.object_key, copy, sb->obj_len, 0, NULL, 0)) abort();
    free(copy);
}

TT_TEST(cold_read_failing_middle_chunk_returns_batches_before_it)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    damage_chunk(&fx, 0, 1);
    int64_t stop = m->chunks[3].first_offset;
    int n0 = batch_at(&fx.lg, m->chunks[1].first_offset); /* batches of chunk 0 */
    int ok;
    /* Chunks 1 and 2 are fetched in parallel with 0; 1 fails its CRC on
     * every attempt. The read returns chunk 0's batches, whole. */
    TT_OKE(read_check(&fx, fx.rd, 0, SIZE_MAX, stop, 0, n0, &ok), fx.err);
    TT_ASSERT(ok);
    /* The next read starts at the failing batch and reports why. */
    ts_buf out;
    ts_buf_init(&out, 0);
    ts_status st = ts_reader_read(fx.rd, fx.idx, m->chunks[1].first_offset, SIZE_MAX, stop, &out,
                                  fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CHECKSUM);
    TT_ASSERT_EQ_INT(out.len, 0);
    TT_ASSERT_MSG(strstr(fx.err, "chunk 1") && strstr(fx.err, m->object_key), "message: %s",
                  fx.err);
    ts_buf_free(&out);
    TT_ASSERT(stats(fx.cache).verify_failures > 0);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 1)); /* never cached */
    /* Chunk 2 is fine and readable on its own. */
    TT_OKE(read_check(&fx, fx.rd, m->chunks[2].first_offset, SIZE_MAX, stop,
                      batch_at(&fx.lg, m->chunks[2].first_offset),
                      batch_at(&fx.lg, stop) - batch_at(&fx.lg, m->chunks[2].first_offset), &ok),
           fx.err);
    TT_ASSERT(ok);
    fx_close(&fx);
}

/* A reader over the fixture's bucket through a fault-free faulty store, so
 * its GETs are counted by the store's own counters. */
static ts_objstore *counted_store(fixture *fx)
{
    ts_faulty_opts o;
    ts_faulty_opts_init(&o);
    o.ops = TS_FAULTY_OP_GET;
    ts_objstore *inner = NULL, *fs = NULL;
    if (ts_objstore_fs_open(fx->bucket, &inner, fx->err, sizeof(fx->err))) return NULL;
    if (ts_objstore_faulty_wrap(inner, 1, &o, &fs, fx->err, sizeof(fx->err))) return NULL;
    return fs;
}

static uint64_t store_gets(ts_objstore *fs)
{
    ts_faulty_counters c;
    ts_objstore_faulty_counters(fs, &c);
    return c.calls;
}

TT_TEST(cold_random_reads_do_not_prefetch)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 2);
    ts_objstore *fs = counted_store(&fx);
    TT_ASSERT_MSG(fs != NULL, "%s", fx.err);
    ts_reader *rd = NULL;
    TT_OKE(ts_reader_create(fs, fx.cache, 2, 2, &rd, fx.err, sizeof(fx.err)), fx.err);
    TT_OK(ts_reader_set_prefetch_max(rd, 8, NULL, 0));
    /* Every batch once, one batch per read, in a scrambled order (stride 7
     * over 24 batches of segments 0 and 1), each read one record into its
     * batch: no read starts where an earlier one ended or started. */
    int nb = batch_at(&fx.lg, fx.lg.segs[2].meta.base_offset);
    TT_ASSERT_EQ_INT(nb, 24);
    int reads = 0, ok;
    int seen[64] = {0}; /* chunks touched: segment * 32 + chunk */
    int distinct = 0;
    for (int k = 0; k < nb; k++) {
        int b = (k * 7) % nb;
        const gbatch *g = &fx.lg.b[b];
        TT_OKE(read_check(&fx, rd, g->base + 1, 0, INT64_MAX, b, 1, &ok), fx.err);
        TT_ASSERT(ok);
        reads++;
        ts_reader_drain(rd);
        const ts_segment_meta *m = &fx.lg.segs[g->seg].meta;
        uint32_t ci = 0;
        while (ci + 1 < m->chunk_count && m->chunks[ci + 1].first_offset <= g->base) ci++;
        if (!seen[g->seg * 32 + ci]++) distinct++;
        /* Never more than one chunk fetched per read, so far. */
        TT_ASSERT((int)store_gets(fs) <= reads);
    }
    ts_reader_stats rs;
    ts_reader_stats_get(rd, &rs);
    TT_ASSERT_EQ_INT(rs.prefetch_queued, 0);
    TT_ASSERT_EQ_INT(rs.prefetch_depth_max, 0);
    TT_ASSERT_EQ_INT(store_gets(fs), distinct); /* each chunk the reads touched, once */
    TT_ASSERT_EQ_INT(stats(fx.cache).misses, distinct);
    /* The same reader does prefetch for a sequential one: read on from
     * where the last read ended. */
    const gbatch *last = &fx.lg.b[((nb - 1) * 7) % nb];
    int b = batch_at(&fx.lg, last->last + 1);
    TT_OKE(read_check(&fx, rd, last->last + 1, 0, INT64_MAX, b, 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(rd);
    ts_reader_stats_get(rd, &rs);
    TT_ASSERT(rs.prefetch_depth_max == 2);
    ts_reader_destroy(rd);
    ts_objstore_destroy(fs);
    fx_close(&fx);
}

/* A fixture whose segment 3 (offsets 93..) has one batch per chunk, 40
 * chunks: room for the depth to grow. Returns its meta. */
static const ts_segment_meta *add_long_segment(fixture *fx)
{
    char key[TS_INDEX_KEY_MAX];
    ts_index_segment_key("t", 0, 93, "a1", key, sizeof(key));
    build_segment(&fx->lg, key, 93, 40, 2, 1, -1);
    seg_build *sb = &fx->lg.segs[fx->lg.nsegs - 1];
    if (ts_objstore_put(fx->fs, key, sb->obj, sb->obj_len, 0, NULL, 0)) abort();
    if (ts_index_add(fx->idx, &sb->meta, fx->err, sizeof(fx->err))) abort();
    return &sb->meta;
}

TT_TEST(cold_sequential_prefetch_depth_grows_to_the_max)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 1);
    TT_OK(ts_reader_set_prefetch_max(fx.rd, 4, NULL, 0));
    const ts_segment_meta *m = add_long_segment(&fx);
    TT_ASSERT_EQ_INT(m->chunk_count, 40);
    int first = batch_at(&fx.lg, 93);
    int ok, depths[40];
    int64_t off = 93;
    for (uint32_t ci = 0; ci < 30; ci++) {
        TT_OKE(read_check(&fx, fx.rd, off, 0, INT64_MAX, first + (int)ci, 1, &ok), fx.err);
        TT_ASSERT(ok);
        off = fx.lg.b[first + (int)ci].last + 1; /* the next read continues this one */
        ts_reader_drain(fx.rd);
        ts_reader_stats rs;
        ts_reader_stats_get(fx.rd, &rs);
        depths[ci] = rs.prefetch_depth_max;
        TT_ASSERT_MSG(depths[ci] <= 4, "depth %d after chunk %u", depths[ci], ci);
        /* Never more queued than the depth allows: nothing past ci + 4. */
        for (uint32_t k = ci + 5; k < m->chunk_count; k++)
            TT_ASSERT_MSG(!ts_chunk_cache_has(fx.cache, m->object_key, k),
                          "chunk %u cached after reading chunk %u", k, ci);
    }
    /* The first read of a stream prefetches nothing; the second starts at
     * depth 1; consuming prefetched chunks doubles it: 2, then 4, the max. */
    TT_ASSERT_EQ_INT(depths[0], 0);
    TT_ASSERT_EQ_INT(depths[1], 1);
    TT_ASSERT_EQ_INT(depths[2], 2);
    TT_ASSERT_EQ_INT(depths[3], 4);
    TT_ASSERT_EQ_INT(depths[29], 4);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 33)); /* 29 + 4 */
    /* Each chunk was fetched once: the reads found every later one cached. */
    TT_ASSERT_EQ_INT(gets(&fx), 34);
    TT_ASSERT_EQ_INT(stats(fx.cache).misses, 34);
    fx_close(&fx);
}

TT_TEST(cold_sequential_prefetch_crosses_into_the_next_segment)
{
    /* A stream at depth 2 reading the last chunks of segment 0 has the
     * first two chunks of segment 1 queued, and no more, before it gets
     * there; it then reads on in segment 1 without a miss on them. */
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 2);
    const ts_segment_meta *m0 = &fx.lg.segs[0].meta, *m1 = &fx.lg.segs[1].meta;
    int ok;
    int last0 = batch_at(&fx.lg, m0->last_offset);
    for (int b = 0; b <= last0; b++) {
        TT_OKE(read_check(&fx, fx.rd, fx.lg.b[b].base, 0, INT64_MAX, b, 1, &ok), fx.err);
        TT_ASSERT(ok);
        ts_reader_drain(fx.rd);
    }
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 0));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 1));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m1->object_key, 2));
    ts_chunk_cache_stats before = stats(fx.cache);
    TT_OKE(read_check(&fx, fx.rd, fx.lg.b[last0].last + 1, 0, INT64_MAX, last0 + 1, 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    ts_chunk_cache_stats after = stats(fx.cache);
    TT_ASSERT_EQ_INT(after.hits, before.hits + 1); /* a hit: it was prefetched */
    /* The only fetch since: the stream's window moving on to chunk 2. */
    TT_ASSERT_EQ_INT(after.misses, before.misses + 1);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 2));
    /* Never past stop_offset: a stream whose reads stop before segment 1
     * (the local tier starts there) queues none of it. */
    fx_close(&fx);
    FX_OPEN(fx, 1 << 20, 2, 2);
    m1 = &fx.lg.segs[1].meta;
    for (int b = 0; b <= last0; b++) {
        TT_OKE(read_check(&fx, fx.rd, fx.lg.b[b].base, 0, m1->base_offset, b, 1, &ok), fx.err);
        TT_ASSERT(ok);
        ts_reader_drain(fx.rd);
    }
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m1->object_key, 0));
    fx_close(&fx);
}

/* A background read of one batch, started while the store's gate may be
 * closed: done tells, without a timing, whether it came back. */
typedef struct gated_read {
    fixture *fx;
    ts_index *idx;
    int64_t offset;
    ts_status st;
    atomic_int done;
} gated_read;

static void *gated_read_main(void *p)
{
    gated_read *a = p;
    ts_buf out;
    ts_buf_init(&out, 0);
    a->st = ts_reader_read(a->fx->rd, a->idx, a->offset, 0, INT64_MAX, &out, a->fx->err,
                           sizeof(a->fx->err));
    ts_buf_free(&out);
    atomic_store(&a->done, 1);
    return NULL;
}

/* Segments 0 and 1 of the fixture again, with their chunk tables in the
 * objects (a frame appended, as the uploader writes them), in an index over
 * the counting store: loading a table is a ranged GET the gate holds. */
static ts_index *index_with_table_frames(fixture *fx, ts_chunk_table_cache *ctc)
{
    char dir[320];
    snprintf(dir, sizeof(dir), "%s/part2", fx->dir);
    ts_index *idx = NULL;
    if (ts_fs_mkdirs(dir, fx->err, sizeof(fx->err)) ||
        ts_index_create("t", 0, dir, &fx->cs->base, &idx, fx->err, sizeof(fx->err)))
        return NULL;
    ts_index_set_chunk_table_cache(idx, ctc);
    for (int i = 0; i < 2; i++) {
        ts_segment_meta m;
        if (ts_segment_meta_copy(&m, &fx->lg.segs[i].meta)) abort();
        const seg_build *sb = &fx->lg.segs[i];
        /* frames | chunk table | seek table (8 n + 17 bytes) */
        uint32_t tl = TS_CHUNK_TABLE_LEN(m.chunk_count);
        size_t frames = sb->obj_len - (8u * m.chunk_count + 17u);
        uint8_t *obj = malloc(sb->obj_len + tl);
        if (!obj) abort();
        memcpy(obj, sb->obj, frames);
        memcpy(obj + frames + tl, sb->obj + frames, sb->obj_len - frames);
        m.chunk_table_pos = frames;
        m.chunk_table_len = tl;
        m.stored_bytes = sb->obj_len + tl;
        ts_chunk_table_encode(&m, obj + frames);
        if (ts_objstore_put(fx->fs, m.object_key, obj, sb->obj_len + tl, 0, fx->err,
                            sizeof(fx->err)) ||
            ts_index_add(idx, &m, fx->err, sizeof(fx->err))) {
            fprintf(stderr, "    %s\n", fx->err);
            abort();
        }
        free(obj);
        ts_segment_meta_clear(&m);
    }
    return idx;
}

TT_TEST(cold_sequential_read_does_not_wait_for_the_next_segments_chunk_table)
{
    /* A stream reading segment 0 one batch per read: every read after the
     * first runs with the store's GETs held at a closed gate and must come
     * back, so none of them waits for a GET: its own chunk was prefetched,
     * and the next segment's chunk table, which its window reaches near the
     * end of segment 0, is loaded on the pool. Segment 1's first chunks are
     * then prefetched, and reading on into it hits them. */
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 2);
    ts_chunk_table_cache *ctc = NULL;
    TT_OK(ts_chunk_table_cache_create(1 << 20, &ctc));
    ts_index *idx = index_with_table_frames(&fx, ctc);
    TT_ASSERT_MSG(idx != NULL, "%s", fx.err);
    const ts_segment_meta *m1 = &fx.lg.segs[1].meta;
    int last0 = batch_at(&fx.lg, fx.lg.segs[0].meta.last_offset);
    int stuck = -1;
    for (int b = 0; b <= last0 && stuck < 0; b++) {
        gated_read a = {&fx, idx, fx.lg.b[b].base, TS_OK, 0};
        int before = gets(&fx);
        if (b > 0) cstore_gate(fx.cs, 1);
        pthread_t th;
        pthread_create(&th, NULL, gated_read_main, &a);
        /* Up to 20 s: a generous bound for a loaded machine, not a timing. */
        for (int i = 0; i < 2000 && !atomic_load(&a.done); i++) usleep(10000);
        if (!atomic_load(&a.done)) {
            stuck = b;
            fprintf(stderr, "    read of batch %d waits with %d GETs held\n", b,
                    gets(&fx) - before);
        }
        cstore_gate(fx.cs, 0);
        pthread_join(th, NULL);
        TT_OKE(a.st, fx.err);
        ts_reader_drain(fx.rd);
    }
    TT_ASSERT_MSG(stuck < 0, "the read of batch %d waited for a GET", stuck);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 0));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m1->object_key, 1));
    ts_chunk_cache_stats before = stats(fx.cache);
    gated_read a = {&fx, idx, fx.lg.b[last0].last + 1, TS_OK, 0};
    gated_read_main(&a);
    TT_OKE(a.st, fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, before.hits + 1);
    ts_reader_drain(fx.rd);
    ts_index_destroy(idx);
    ts_chunk_table_cache_destroy(ctc);
    fx_close(&fx);
}

/* Replaces the fixture's cache and reader with a cache of cap bytes in
 * <dir>/small (its path in dir; no RAM layer) and a reader on `threads`
 * workers whose streams start at depth 1 and may grow to 8. */
static ts_status small_cache(fixture *fx, uint64_t cap, int threads, char *dir, size_t dlen)
{
    ts_reader_destroy(fx->rd);
    fx->rd = NULL;
    ts_chunk_cache_destroy(fx->cache);
    fx->cache = NULL;
    snprintf(dir, dlen, "%s/small", fx->dir);
    ts_status st = ts_chunk_cache_create(dir, cap, &fx->cache, fx->err, sizeof(fx->err));
    if (st) return st;
    ts_chunk_cache_set_memory(fx->cache, 0);
    ts_chunk_cache_set_retry(fx->cache, 10000, 1, 5, 3);
    st = ts_reader_create(&fx->cs->base, fx->cache, threads, 1, &fx->rd, fx->err, sizeof(fx->err));
    return st ? st : ts_reader_set_prefetch_max(fx->rd, 8, fx->err, sizeof(fx->err));
}

TT_TEST(cold_sequential_prefetch_shrinks_when_the_cache_drops_it)
{
    /* A cache of about 3 chunk files and a depth that would reach 8: what
     * the stream prefetches far ahead is evicted before it gets there, so
     * the depth comes back down instead of refetching 8 chunks per chunk. */
    fixture fx;
    FX_OPEN(fx, 1 << 20, 2, 1);
    const seg_build *sb = (add_long_segment(&fx), &fx.lg.segs[fx.lg.nsegs - 1]);
    char dir[320];
    TT_OKE(small_cache(&fx, 3 * file_bytes(sb, 0) + 10, 2, dir, sizeof(dir)), fx.err);
    int first = batch_at(&fx.lg, 93);
    int ok;
    int64_t off = 93;
    for (int ci = 0; ci < 30; ci++) {
        TT_OKE(read_check(&fx, fx.rd, off, 0, INT64_MAX, first + ci, 1, &ok), fx.err);
        TT_ASSERT(ok);
        off = fx.lg.b[first + ci].last + 1;
        ts_reader_drain(fx.rd);
    }
    ts_reader_stats rs;
    ts_reader_stats_get(fx.rd, &rs);
    /* It grew (to 4 at least: 1, 2, 4 fit a 3-chunk cache for a while)... */
    TT_ASSERT(rs.prefetch_depth_max >= 4);
    /* ...and came back down: at 8 ahead the cache would drop most of what
     * it prefetched before the reader gets there. */
    int g = gets(&fx);
    fprintf(stderr, "    figures: %d GETs for 30 chunks read, deepest depth %d, now %d\n", g,
            rs.prefetch_depth_max, rs.prefetch_depth_now);
    TT_ASSERT_MSG(rs.prefetch_depth_now < 8, "depth now %d", rs.prefetch_depth_now);
    TT_ASSERT(rs.prefetch_depth_now >= 1);
    TT_ASSERT_MSG(g < 30 * 3, "%d GETs", g);
    fx_close(&fx);
}

TT_TEST(cold_sequential_prefetch_over_a_corrupt_chunk_never_serves_wrong_bytes)
{
    /* Segment 3 (one batch per chunk) with chunk 10 damaged in the bucket
     * (a flipped byte: every download fails its stored CRC), read by a
     * stream whose prefetch grows to 8 chunks on 4 workers, through a cache
     * of about 3 chunk files: every read returns exactly its batches or the
     * error, the error only at the damaged chunk, and the cache directory
     * never holds more than its cap. Then a read spanning the damage on the
     * parallel path: the batches before it, and the error on the next read. */
    fixture fx;
    FX_OPEN(fx, 1 << 20, 4, 1);
    const ts_segment_meta *m = add_long_segment(&fx);
    const seg_build *sb = &fx.lg.segs[fx.lg.nsegs - 1];
    uint8_t *obj = malloc(sb->obj_len);
    TT_ASSERT(obj != NULL);
    memcpy(obj, sb->obj, sb->obj_len);
    obj[m->chunks[10].stored_pos + m->chunks[10].stored_len / 2] ^= 0x10;
    TT_OK(ts_objstore_put(fx.fs, m->object_key, obj, sb->obj_len, 0, NULL, 0));
    free(obj);
    char dir[320];
    uint64_t cap = 3 * file_bytes(sb, 0) + 10;
    TT_OKE(small_cache(&fx, cap, 4, dir, sizeof(dir)), fx.err);
    int first = batch_at(&fx.lg, 93), ok;
    for (int ci = 0; ci < 40; ci++) {
        int64_t off = fx.lg.b[first + ci].base;
        ts_status st = read_check(&fx, fx.rd, off, 0, INT64_MAX, first + ci, 1, &ok);
        if (ci == 10) {
            TT_ASSERT_MSG(st == TS_E_CHECKSUM, "chunk 10: status %d (%s)", st, fx.err);
        } else {
            TT_OKE(st, fx.err);
            TT_ASSERT_MSG(ok, "chunk %d: wrong bytes", ci);
        }
        uint64_t du = ts_fs_du(dir);
        TT_ASSERT_MSG(du <= cap, "cache dir holds %llu bytes, cap %llu after chunk %d",
                      (unsigned long long)du, (unsigned long long)cap, ci);
    }
    ts_reader_drain(fx.rd);
    ts_reader_stats rs;
    ts_reader_stats_get(fx.rd, &rs);
    TT_ASSERT(rs.prefetch_depth_max >= 4); /* the prefetch did run ahead */
    TT_ASSERT(ts_fs_du(dir) <= cap);
    TT_ASSERT(stats(fx.cache).bytes <= cap);
    /* Chunks 5..12 in one read (parallel fetches): batches 5..9, TS_OK. */
    int64_t stop = m->chunks[13].first_offset;
    TT_OKE(read_check(&fx, fx.rd, fx.lg.b[first + 5].base, SIZE_MAX, stop, first + 5, 5, &ok), fx.err);
    TT_ASSERT_MSG(ok, "the batches before the damaged chunk, exactly");
    TT_ASSERT_EQ_INT(read_check(&fx, fx.rd, fx.lg.b[first + 10].base, SIZE_MAX, stop, first + 10, 3,
                                  &ok),
                     TS_E_CHECKSUM);
    ts_reader_drain(fx.rd);
    TT_ASSERT(ts_fs_du(dir) <= cap);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(cold_read_spanning_three_chunks_fetches_them_in_parallel);
    TT_RUN(cold_read_with_more_chunks_than_workers);
    TT_RUN(cold_read_over_many_chunks_reuses_the_plan);
    TT_RUN(cold_read_failing_middle_chunk_returns_batches_before_it);
    TT_RUN(cold_random_reads_do_not_prefetch);
    TT_RUN(cold_sequential_prefetch_depth_grows_to_the_max);
    TT_RUN(cold_sequential_prefetch_crosses_into_the_next_segment);
    TT_RUN(cold_sequential_read_does_not_wait_for_the_next_segments_chunk_table);
    TT_RUN(cold_sequential_prefetch_shrinks_when_the_cache_drops_it);
    TT_RUN(cold_sequential_prefetch_over_a_corrupt_chunk_never_serves_wrong_bytes);
    return tt_summary();
}
