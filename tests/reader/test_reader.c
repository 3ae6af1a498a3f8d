/*
 * test_reader.c — unit tests of the cold read path (reader/reader.c) over a
 * real `file://` bucket and a real index: whole batches from any offset,
 * across chunks and segments, max_bytes, stop_offset, offset_for_time,
 * prefetch, corrupt batches and concurrent consumers. The chunk cache under
 * it is tested in test_chunk_cache.c; objects, store and fixture are in
 * reader_test.h.
 */
#include "reader_test.h"

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
    /* A read that jumps (does not start where the last one ended) is not
     * sequential either, even into the next chunk. */
    int64_t o1 = m->chunks[1].first_offset;
    TT_ASSERT(o1 > fx.lg.b[0].last + 1);
    TT_OKE(read_check(&fx, o1 + 1, 0, INT64_MAX, batch_at(&fx.lg, o1), 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));
    /* The read that continues it is: chunk 2 is prefetched (depth 1, the
     * max by default, so not chunk 3). */
    int b1 = batch_at(&fx.lg, o1);
    TT_OKE(read_check(&fx, fx.lg.b[b1].last + 1, 0, INT64_MAX, b1 + 1, 1, &ok), fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT(fx.lg.b[b1 + 1].base < m->chunks[2].first_offset); /* still in chunk 1 */
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_ASSERT_EQ_INT(s.misses, 3);
    TT_ASSERT_EQ_INT(s.fetched_bytes, m->chunks[0].stored_len + m->chunks[1].stored_len +
                                          m->chunks[2].stored_len);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 3));
    /* Reading on into chunk 2 is now a hit, and prefetches chunk 3. */
    int64_t o2 = m->chunks[2].first_offset;
    TT_OKE(read_check(&fx, fx.lg.b[b1 + 1].last + 1, SIZE_MAX, o2 + 1, b1 + 2,
                      batch_at(&fx.lg, o2) - b1 - 1, &ok),
           fx.err);
    TT_ASSERT(ok);
    ts_reader_drain(fx.rd);
    TT_ASSERT(stats(fx.cache).hits >= 1);
    TT_ASSERT_EQ_INT(stats(fx.cache).misses, 4); /* only chunk 3's prefetch */
    TT_ASSERT_EQ_INT(gets(&fx), 4);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 3));
    /* A stream that runs on into the next segment prefetches there. */
    const ts_segment_meta *m1 = &fx.lg.segs[1].meta;
    TT_OKE(read_check(&fx, m->chunks[3].first_offset, SIZE_MAX, m1->chunks[0].first_offset + 1,
                      batch_at(&fx.lg, m->chunks[3].first_offset),
                      batch_at(&fx.lg, m1->base_offset) -
                          batch_at(&fx.lg, m->chunks[3].first_offset) + 1,
                      &ok),
           fx.err);
    TT_ASSERT(ok);
    TT_OKE(read_check(&fx, fx.lg.b[batch_at(&fx.lg, m1->base_offset)].last + 1, 0, INT64_MAX,
                      batch_at(&fx.lg, m1->base_offset) + 1, 1, &ok),
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
    TT_RUN(reader_reads_whole_batches_from_any_offset);
    TT_RUN(reader_max_bytes_and_stop_offset);
    TT_RUN(reader_offset_for_time);
    TT_RUN(reader_prefetch_sequential);
    TT_RUN(reader_destroy_drains_prefetch);
    TT_RUN(reader_batch_overrunning_chunk_is_corrupt);
    TT_RUN(reader_concurrent_consumers);
    return tt_summary();
}
