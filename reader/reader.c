/*
 * reader.c — the cold read path: offset -> remote segment (index) -> chunk
 * (binary search of the chunk table) -> verified chunk (chunk cache) ->
 * whole record batches.
 *
 * The chunk table is the segment's sparse offset and time index: each chunk
 * starts at a batch boundary and records its first offset and max
 * timestamp, so one chunk is the most a lookup ever reads. Inside a chunk
 * the cache's per-batch index finds the first batch (ts_chunk_cache_read),
 * and only the batches served are read from the cache file. Batches are
 * copied whole into the caller's buffer; a batch never straddles chunks
 * (the uploader cuts at batch boundaries), and one that claims to is
 * reported as corrupt rather than served cut.
 *
 * Prefetch: the reader remembers, per object (a small direct-mapped table,
 * so memory stays fixed), the last chunk a read reached. A read that moves
 * into the chunk after that one, or that continues into the next chunk or
 * segment by itself, is sequential and queues background fetches of the
 * next prefetch_chunks chunks on the reader's pool. Submission never
 * blocks: a full queue or an already cached or in-flight chunk is skipped.
 */
#include "reader/reader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "common/err.h"
#include "common/log.h"
#include "common/pool.h"

#define SEQ_SLOTS 64          /* objects whose read position is remembered */
#define PREFETCH_QUEUE_MAX 256 /* queued prefetch jobs; beyond it prefetch is skipped */

typedef struct seq_slot {
    uint64_t key_hash;
    uint32_t last_chunk;
    int used;
} seq_slot;

struct ts_reader {
    ts_objstore *os;      /* borrowed */
    ts_chunk_cache *cache; /* borrowed */
    ts_pool *pool;
    int prefetch_chunks;
    atomic_int closing;   /* set by destroy: queued prefetches return at once */
    pthread_mutex_t mu;   /* guards seq */
    seq_slot seq[SEQ_SLOTS];
};

/* A segment meta shared by the prefetch jobs of one submission: the jobs
 * outlive the read that queued them, so they cannot borrow its copy. */
typedef struct pf_seg {
    atomic_int refs;
    ts_segment_meta meta;
} pf_seg;

typedef struct pf_job {
    ts_reader *r;
    pf_seg *seg;
    uint32_t idx;
} pf_job;

static void pf_seg_put(pf_seg *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        ts_segment_meta_clear(&s->meta);
        free(s);
    }
}

/* Runs on a prefetch pool worker; takes no reader lock (the cache locks
 * itself). A failure is only logged: the read that needs the chunk will
 * fetch it again and report the error to its caller. */
static void prefetch_job(void *arg)
{
    pf_job *j = arg;
    if (!atomic_load(&j->r->closing)) {
        char err[512] = "";
        ts_status st =
            ts_chunk_cache_warm(j->r->cache, j->r->os, &j->seg->meta, j->idx, err, sizeof(err));
        if (st)
            ts_log_debug("reader", "prefetch of chunk %u of object %s failed: %s", j->idx,
                         j->seg->meta.object_key, err);
    }
    pf_seg_put(j->seg);
    free(j);
}

/* Queues prefetch of chunks after ci. Runs on the reading thread; never
 * blocks on I/O (ts_chunk_cache_has is an in-memory lookup). */
static void prefetch_after(ts_reader *r, const ts_segment_meta *seg, uint32_t ci)
{
    pf_seg *shared = NULL;
    for (uint32_t k = 1; k <= (uint32_t)r->prefetch_chunks; k++) {
        if (ci + k >= seg->chunk_count) break;
        uint32_t idx = ci + k;
        if (ts_chunk_cache_has(r->cache, seg->object_key, idx)) continue;
        if (!shared) {
            shared = calloc(1, sizeof(*shared));
            if (!shared) return;
            if (ts_segment_meta_copy(&shared->meta, seg) != TS_OK) {
                free(shared);
                return;
            }
            atomic_init(&shared->refs, 1); /* ours, dropped below */
        }
        pf_job *j = malloc(sizeof(*j));
        if (!j) break;
        j->r = r;
        j->seg = shared;
        j->idx = idx;
        atomic_fetch_add(&shared->refs, 1);
        if (ts_pool_submit(r->pool, prefetch_job, j) != TS_OK) {
            atomic_fetch_sub(&shared->refs, 1);
            free(j);
            break; /* queue full or closing: prefetch is best effort */
        }
    }
    if (shared) pf_seg_put(shared);
}

/* Records that a read reached chunk ci of seg and, when the read is
 * sequential, queues prefetch. continuing: the same read call moved here
 * from the previous chunk or segment. Runs on the reading thread; takes
 * r->mu briefly. */
static void note_chunk(ts_reader *r, const ts_segment_meta *seg, uint32_t ci, int continuing)
{
    if (r->prefetch_chunks <= 0) return;
    uint64_t kh = ts_chunk_cache_key_hash(seg->object_key);
    pthread_mutex_lock(&r->mu);
    seq_slot *s = &r->seq[kh % SEQ_SLOTS];
    int same = s->used && s->key_hash == kh;
    int sequential = continuing || (same && ci > 0 && s->last_chunk == ci - 1);
    s->used = 1;
    s->key_hash = kh;
    s->last_chunk = ci;
    pthread_mutex_unlock(&r->mu);
    if (sequential) prefetch_after(r, seg, ci);
}

ts_status ts_reader_create(ts_objstore *os, ts_chunk_cache *cache, int threads,
                           int prefetch_chunks, ts_reader **out, char *errstr, size_t errlen)
{
    if (!os || !cache || !out || prefetch_chunks < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "reader needs an object store, a chunk cache and prefetch_chunks >= 0");
    ts_reader *r = calloc(1, sizeof(*r));
    if (!r) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    r->os = os;
    r->cache = cache;
    r->prefetch_chunks = prefetch_chunks;
    atomic_init(&r->closing, 0);
    ts_status st = ts_pool_create("ts-prefetch", threads > 0 ? threads : 1, PREFETCH_QUEUE_MAX,
                                  &r->pool);
    if (st) {
        free(r);
        return ts_err_set(errstr, errlen, st, "cannot start the reader's prefetch pool");
    }
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return TS_OK;
}

void ts_reader_drain(ts_reader *r)
{
    if (r) ts_pool_drain(r->pool);
}

void ts_reader_destroy(ts_reader *r)
{
    if (!r) return;
    /* Queued jobs still run (the pool runs its queue before joining) but see
     * closing and return at once; running fetches finish. Each job owns its
     * segment copy, so nothing they touch is freed under them. */
    atomic_store(&r->closing, 1);
    ts_pool_destroy(r->pool);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Index of the chunk holding offset: the last whose first_offset <= offset
 * (0 when the offset precedes them all). */
static uint32_t find_chunk(const ts_segment_meta *seg, int64_t offset)
{
    uint32_t lo = 0, hi = seg->chunk_count; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->chunks[mid].first_offset <= offset) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Parses the batch at pos of chunk ci, requiring it to lie wholly inside
 * the chunk (the time lookup walks a whole chunk). */
static ts_status chunk_batch(const ts_segment_meta *seg, uint32_t ci, const ts_chunk *ch,
                             size_t pos, ts_batch_hdr *h, char *errstr, size_t errlen)
{
    char perr[256];
    ts_status st = ts_batch_parse_header(ch->data + pos, ch->len - pos, SIZE_MAX, h, perr,
                                         sizeof(perr));
    if (st)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s at byte %zu: %s", ci, seg->object_key, pos, perr);
    if (h->magic != 2 || ts_batch_total_size(h) > ch->len - pos || h->last_offset_delta < 0)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s at byte %zu: batch (magic %d, %zu bytes) does not "
                          "lie within the chunk's %zu bytes",
                          ci, seg->object_key, pos, h->magic, ts_batch_total_size(h), ch->len);
    return TS_OK;
}

ts_status ts_reader_read(ts_reader *r, ts_index *idx, int64_t offset, size_t max_bytes,
                         int64_t stop_offset, ts_buf *out, char *errstr, size_t errlen)
{
    if (!r || !idx || !out)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "ts_reader_read: NULL argument");
    ts_segment_meta seg;
    memset(&seg, 0, sizeof(seg));
    ts_status st = ts_index_lookup_offset(idx, offset, &seg);
    if (st == TS_E_NOT_FOUND)
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "offset %lld is not in any remote segment", (long long)offset);
    if (st) return ts_err_set(errstr, errlen, st, "index lookup of offset %lld failed",
                              (long long)offset);
    /* The read's progress, carried across chunks and segments. */
    ts_chunk_read rq = {.want = offset, .stop_offset = stop_offset, .max_bytes = max_bytes};
    int continuing = 0;
    while (!rq.full) {
        if (seg.base_offset >= stop_offset) break;
        /* Lookups carry no chunk table: it comes from the index's cache or
         * the object's own table frame (one ranged GET on first use). */
        if ((st = ts_index_load_chunks(idx, &seg, errstr, errlen))) goto fail;
        for (uint32_t ci = seg.chunk_count ? find_chunk(&seg, rq.want) : 0;
             ci < seg.chunk_count && !rq.full && rq.want <= seg.last_offset; ci++) {
            if (seg.chunks[ci].first_offset >= stop_offset) {
                rq.full = 1;
                break;
            }
            note_chunk(r, &seg, ci, continuing);
            /* Only the batches served are read from the cache (reader/README.md). */
            st = ts_chunk_cache_read(r->cache, r->os, &seg, ci, &rq, out, errstr, errlen);
            if (st) goto fail;
            continuing = 1;
        }
        if (rq.full) break;
        int64_t base = seg.base_offset;
        ts_segment_meta_clear(&seg);
        memset(&seg, 0, sizeof(seg));
        st = ts_index_lookup_next(idx, base, &seg);
        if (st == TS_E_NOT_FOUND) break; /* end of the remote tier */
        if (st) {
            ts_err_set(errstr, errlen, st, "index lookup after segment %lld failed",
                       (long long)base);
            goto fail;
        }
        if (rq.want < seg.base_offset) rq.want = seg.base_offset;
    }
    ts_segment_meta_clear(&seg);
    return TS_OK;
fail:
    ts_segment_meta_clear(&seg);
    /* Batches already appended are whole and verified: return them, as a
     * Kafka fetch returns what it has; the next read starts at the failing
     * batch and reports the error then. */
    if (rq.nbatches) {
        ts_log_debug("reader", "read stopped early at offset %lld: %s", (long long)rq.want,
                     errstr ? errstr : "");
        return TS_OK;
    }
    return st;
}

ts_status ts_reader_offset_for_time(ts_reader *r, ts_index *idx, int64_t ts, int64_t *offset,
                                    char *errstr, size_t errlen)
{
    if (!r || !idx || !offset)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "ts_reader_offset_for_time: NULL argument");
    ts_segment_meta seg;
    memset(&seg, 0, sizeof(seg));
    ts_status st = ts_index_lookup_time(idx, ts, &seg);
    if (st == TS_E_NOT_FOUND)
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "no remote batch has a timestamp >= %lld", (long long)ts);
    if (st) return ts_err_set(errstr, errlen, st, "index lookup of timestamp %lld failed",
                              (long long)ts);
    /* max_timestamp is not monotonic across chunks (producers set
     * timestamps), so this is a scan for the first qualifying chunk, not a
     * binary search. The index's running maximum may still count a segment
     * that retention removed, so a segment none of whose chunks reaches ts
     * passes the search on to the next one. */
    uint32_t ci = 0;
    for (;;) {
        if ((st = ts_index_load_chunks(idx, &seg, errstr, errlen))) goto out;
        ci = 0;
        while (ci < seg.chunk_count && seg.chunks[ci].max_timestamp < ts) ci++;
        if (ci < seg.chunk_count) break;
        int64_t base = seg.base_offset;
        ts_segment_meta_clear(&seg);
        memset(&seg, 0, sizeof(seg));
        st = ts_index_lookup_next(idx, base, &seg);
        if (st == TS_E_NOT_FOUND) {
            st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                            "no remote batch has a timestamp >= %lld", (long long)ts);
            goto out;
        }
        if (st) goto out;
    }
    ts_chunk *ch = NULL;
    st = ts_chunk_cache_get(r->cache, r->os, &seg, ci, &ch, errstr, errlen);
    if (st) goto out;
    int found = 0;
    for (size_t pos = 0; pos < ch->len && !found;) {
        ts_batch_hdr h;
        st = chunk_batch(&seg, ci, ch, pos, &h, errstr, errlen);
        if (st) break;
        if (h.max_timestamp >= ts) {
            *offset = h.base_offset;
            found = 1;
        }
        pos += ts_batch_total_size(&h);
    }
    if (!st && !found)
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "chunk %u of object %s: max timestamp %lld >= %lld but no batch reaches it",
                        ci, seg.object_key, (long long)seg.chunks[ci].max_timestamp,
                        (long long)ts);
    ts_chunk_release(ch);
out:
    ts_segment_meta_clear(&seg);
    return st;
}
