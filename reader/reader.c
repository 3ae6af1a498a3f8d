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
 * Fetch planning, shaped so that a miss costs what the read needs and no
 * more:
 *  - a read fetches only the chunks it reaches. When it enters a chunk it
 *    estimates, from the chunk table, which following chunks its max_bytes
 *    will also need (chunks_ahead) and starts those on the reader's pool
 *    (par_*), so a read spanning several chunks waits for one round trip,
 *    not one per chunk. It then consumes them in order; a job still queued
 *    when the read reaches it is taken back and fetched by the reading
 *    thread, so a busy pool never makes a read slower than fetching in
 *    line.
 *  - prefetch follows read streams, not objects: a stream is "the next read
 *    starts where the previous one ended" (same index, offset == the end of
 *    an earlier read). A read that continues no stream is random and
 *    prefetches nothing. A stream's depth starts at prefetch_chunks, doubles
 *    each time the reader enters a chunk its prefetch queued (it is
 *    consuming them, or outrunning the pool) up to prefetch_max, and halves
 *    when a chunk its prefetch fetched is gone from the cache before the
 *    reader got there (the reader is slower than the cache keeps chunks). The stream table is a fixed array
 *    (STREAM_SLOTS), so the state stays bounded however many readers come
 *    and go; random readers only ever displace unconfirmed slots while any
 *    exist, so they cannot flush the sequential streams out.
 * Submission never blocks: a full queue skips prefetch and leaves parallel
 * chunks to the reading thread.
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

#define STREAM_SLOTS 64        /* read streams whose position is remembered */
#define PREFETCH_QUEUE_MAX 256 /* queued pool jobs; beyond it prefetch is skipped */
#define PAR_MAX 8              /* chunks one read fetches ahead of itself at most */

/* One read stream. A slot is confirmed (reads > 0) once a read continued it. */
typedef struct stream {
    const void *idx;  /* the partition's index: streams of different partitions never match */
    int64_t next;     /* offset right after the last read's last batch */
    int64_t start;    /* where the last read started: reading it again is no jump */
    uint64_t tick;    /* LRU */
    uint64_t gen;     /* changes when the slot is reused */
    int reads;        /* reads that continued this stream */
    int depth;        /* prefetch depth now (0: not sequential yet) */
    uint64_t pf_key;  /* key hash of the object of the prefetch window */
    uint32_t pf_upto; /* chunks of pf_key below this were queued (or found cached) */
    uint64_t pf_done; /* bit idx % 64: chunk idx of pf_key was fetched by this stream's
                       * prefetch (cleared when queued, set when its job completed) */
    uint32_t last_ci; /* the chunk the stream was in last */
    int nx_pending;   /* a next_job for this stream is queued or running... */
    int64_t nx_base;  /* ...for the segment after the one based here */
    int used;
} stream;

struct ts_reader {
    ts_objstore *os;      /* borrowed */
    ts_chunk_cache *cache; /* borrowed */
    ts_pool *pool;
    int threads;
    int prefetch_chunks;  /* initial depth */
    int prefetch_max;     /* depth limit */
    atomic_int closing;   /* set by destroy: queued jobs return at once */
    pthread_mutex_t mu;   /* guards streams, tick, gen and every par_job's state */
    pthread_cond_t par_cv; /* a par_job finished */
    stream streams[STREAM_SLOTS];
    uint64_t tick, gen;
    _Atomic uint64_t prefetch_queued; /* prefetch jobs submitted (tests, benchmarks) */
    _Atomic int depth_seen;           /* the deepest prefetch depth any stream reached */
};

/* A segment meta shared by the pool jobs of one submission: the jobs
 * outlive the read that queued them, so they cannot borrow its copy. */
typedef struct pf_seg {
    atomic_int refs;
    ts_segment_meta meta;
} pf_seg;

typedef struct pf_job {
    ts_reader *r;
    pf_seg *seg;
    uint32_t idx;
    int slot;      /* the stream that queued it (-1: none to tell) */
    uint64_t gen;  /* that slot's generation */
    uint64_t key;  /* key hash of seg */
} pf_job;

static void pf_seg_put(pf_seg *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        ts_segment_meta_clear(&s->meta);
        free(s);
    }
}

/* A new shared copy of seg with one reference, or NULL. */
static pf_seg *pf_seg_new(const ts_segment_meta *seg)
{
    pf_seg *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    if (ts_segment_meta_copy(&s->meta, seg) != TS_OK) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    return s;
}

/* ------------------------------------------------------------- prefetch */

/* A prefetch job of the stream in slot (generation gen) fetched chunk idx
 * of the object with key hash key. Prefetch worker; takes r->mu. */
static void stream_fetched(ts_reader *r, int slot, uint64_t gen, uint64_t key, uint32_t idx)
{
    pthread_mutex_lock(&r->mu);
    stream *s = &r->streams[slot];
    if (s->used && s->gen == gen && s->pf_key == key) s->pf_done |= 1ull << (idx % 64);
    pthread_mutex_unlock(&r->mu);
}

/* Runs on a prefetch pool worker; takes no reader lock (the cache locks
 * itself) but r->mu briefly to tell its stream the chunk came. A failure is only logged: the read that needs the chunk will
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
        else if (j->slot >= 0)
            stream_fetched(j->r, j->slot, j->gen, j->key, j->idx);
    }
    pf_seg_put(j->seg);
    free(j);
}

/* Queues warm jobs for chunks [from, to) of seg that are neither cached nor
 * in flight, for the stream in slot/gen (slot -1: none). Runs on the
 * reading thread without r->mu; never blocks on I/O (ts_chunk_cache_has is
 * an in-memory lookup). */
static void prefetch_range(ts_reader *r, const ts_segment_meta *seg, uint32_t from, uint32_t to,
                           int slot, uint64_t gen)
{
    uint64_t kh = ts_chunk_cache_key_hash(seg->object_key);
    pf_seg *shared = NULL;
    if (to > seg->chunk_count) to = seg->chunk_count;
    for (uint32_t idx = from; idx < to; idx++) {
        if (ts_chunk_cache_has(r->cache, seg->object_key, idx)) continue;
        if (!shared && !(shared = pf_seg_new(seg))) return;
        pf_job *j = malloc(sizeof(*j));
        if (!j) break;
        j->r = r;
        j->seg = shared;
        j->idx = idx;
        j->slot = slot;
        j->gen = gen;
        j->key = kh;
        atomic_fetch_add(&shared->refs, 1);
        if (ts_pool_submit(r->pool, prefetch_job, j) != TS_OK) {
            atomic_fetch_sub(&shared->refs, 1);
            free(j);
            break; /* queue full or closing: prefetch is best effort */
        }
        atomic_fetch_add(&r->prefetch_queued, 1);
    }
    pf_seg_put(shared);
}

/* What one ts_reader_read knows of its stream. */
typedef struct read_stream {
    int slot;      /* -1: prefetch off */
    uint64_t gen;  /* the slot's generation when the read began */
    int seq;       /* this read continues a stream */
} read_stream;

/* Finds the stream offset continues, or starts a new one in the least
 * recently used slot (unconfirmed slots first). Reading thread; takes
 * r->mu briefly. */
static void stream_begin(ts_reader *r, const void *idx, int64_t offset, read_stream *rs)
{
    rs->slot = -1;
    rs->seq = 0;
    rs->gen = 0;
    if (r->prefetch_chunks <= 0) return;
    pthread_mutex_lock(&r->mu);
    int found = -1, victim = -1;
    for (int i = 0; i < STREAM_SLOTS && found < 0; i++) {
        stream *s = &r->streams[i];
        if (s->used && s->idx == idx && (s->next == offset || s->start == offset)) {
            found = i;
            continue;
        }
        if (victim >= 0 && !r->streams[victim].used) continue; /* a free slot wins */
        if (victim < 0 || !s->used) {
            victim = i;
            continue;
        }
        const stream *v = &r->streams[victim];
        int conf = s->reads > 0, vconf = v->reads > 0;
        if (conf < vconf || (conf == vconf && s->tick < v->tick)) victim = i;
    }
    stream *s;
    if (found >= 0) {
        s = &r->streams[found];
        rs->seq = 1;
        if (s->next == offset && s->start != offset) s->reads++;
        if (!s->depth) s->depth = r->prefetch_chunks < r->prefetch_max ? r->prefetch_chunks
                                                                         : r->prefetch_max;
        rs->slot = found;
    } else {
        s = &r->streams[victim];
        memset(s, 0, sizeof(*s));
        s->used = 1;
        s->idx = idx;
        s->gen = ++r->gen;
        s->next = offset;
        rs->slot = victim;
    }
    s->start = offset;
    s->tick = ++r->tick;
    rs->gen = s->gen;
    pthread_mutex_unlock(&r->mu);
}

/* Records where the read ended: the offset its stream continues at. */
static void stream_end(ts_reader *r, const read_stream *rs, int64_t next)
{
    if (rs->slot < 0) return;
    pthread_mutex_lock(&r->mu);
    stream *s = &r->streams[rs->slot];
    if (s->used && s->gen == rs->gen && next > s->next) s->next = next;
    pthread_mutex_unlock(&r->mu);
}

/* The stream's window runs past the end of a segment: a pool job queues
 * the first chunks of the next segment (below stop_offset), so a
 * sequential reader does not wait at each segment boundary. The lookup is
 * in memory, but the next segment's chunk table may cost one ranged GET
 * (tens of ms on S3, more under load), which the reading thread must not
 * wait for: it has the rest of this segment to read meanwhile (and the job
 * starts when the stream enters a segment, ahead of the queued chunk
 * prefetches, so that the GET is done by the time the window reaches the
 * next one). One job per stream and segment at a time (nx_pending,
 * nx_base): it queues as far as the window reaches into the next segment
 * when it looks, and looks again until the window stops growing, so a
 * window that grows while the table is fetched is not lost and the table
 * is not fetched twice. */
typedef struct next_job {
    ts_reader *r;
    ts_index *idx;      /* borrowed: outlives the pool (ts_reader_read) */
    int64_t base;       /* base offset of the segment the window runs past */
    uint32_t count;     /* its chunk count */
    uint64_t key;       /* key hash of its object */
    int64_t stop_offset;
    int slot;
    uint64_t gen;
} next_job;

/* How many chunks of the next segment the stream of job j wants now (0: it
 * moved on, or the slot was reused); clears nx_pending when that is no more
 * than done, so that the next window growth submits a new job. Takes r->mu. */
static uint32_t next_job_want(const next_job *j, uint32_t done, int ok)
{
    ts_reader *r = j->r;
    pthread_mutex_lock(&r->mu);
    stream *s = &r->streams[j->slot];
    int mine = s->used && s->gen == j->gen;
    uint32_t want = 0;
    if (mine && ok && !atomic_load(&r->closing) && s->pf_key == j->key && s->pf_upto > j->count)
        want = s->pf_upto - j->count;
    if (want <= done) {
        if (mine && s->nx_base == j->base) s->nx_pending = 0;
        want = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return want;
}

/* Pool worker: finds the segment after j->base, loads its chunk table and
 * queues the chunks the stream's window covers (prefetch_range never
 * blocks). A failure only skips the prefetch: the stream's read reports it
 * when it gets there. */
static void next_job_run(void *arg)
{
    next_job *j = arg;
    ts_segment_meta next;
    memset(&next, 0, sizeof(next));
    char err[512];
    int ok = !atomic_load(&j->r->closing) &&
             ts_index_lookup_next(j->idx, j->base, &next) == TS_OK &&
             next.base_offset < j->stop_offset &&
             ts_index_load_chunks(j->idx, &next, err, sizeof(err)) == TS_OK;
    for (uint32_t done = 0, want; (want = next_job_want(j, done, ok)) != 0; done = want) {
        uint32_t to = want < next.chunk_count ? want : next.chunk_count;
        while (to > done && next.chunks[to - 1].first_offset >= j->stop_offset) to--;
        if (to > done) prefetch_range(j->r, &next, done, to, -1, 0);
    }
    ts_segment_meta_clear(&next);
    free(j);
}

/* Starts the next_job of the stream in slot/gen, which prefetch_note has
 * marked nx_pending. Reading thread, without r->mu. */
static void next_job_submit(ts_reader *r, ts_index *idx, const ts_segment_meta *seg, int slot,
                            uint64_t gen, int64_t stop_offset)
{
    next_job *j = malloc(sizeof(*j));
    if (j) {
        *j = (next_job){r, idx, seg->base_offset, seg->chunk_count,
                        ts_chunk_cache_key_hash(seg->object_key), stop_offset, slot, gen};
        /* Ahead of the queued chunk prefetches: the next segment's ones
         * come only after this job's table load. */
        if (ts_pool_submit_first(r->pool, next_job_run, j) == TS_OK) {
            atomic_fetch_add(&r->prefetch_queued, 1);
            return;
        }
        free(j);
    }
    pthread_mutex_lock(&r->mu); /* queue full: the next chunk entered tries again */
    stream *s = &r->streams[slot];
    if (s->used && s->gen == gen && s->nx_base == seg->base_offset) s->nx_pending = 0;
    pthread_mutex_unlock(&r->mu);
}

/* The read entered chunk ci of seg (after ahead, the first chunk its own
 * parallel fetches do not cover): adapt the stream's depth and queue what
 * it now wants, into the next segment when the window passes this one's
 * end. Reading thread; takes r->mu briefly. */
static void prefetch_note(ts_reader *r, const read_stream *rs, ts_index *idx,
                          const ts_segment_meta *seg, uint32_t ci, uint32_t ahead,
                          int64_t stop_offset)
{
    if (rs->slot < 0 || !rs->seq) return;
    uint64_t kh = ts_chunk_cache_key_hash(seg->object_key);
    /* Looked up before the lock: the cache takes its own. */
    int present = ts_chunk_cache_has(r->cache, seg->object_key, ci);
    pthread_mutex_lock(&r->mu);
    stream *s = &r->streams[rs->slot];
    if (!s->used || s->gen != rs->gen) { /* the slot was reused meanwhile */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    int same = s->pf_key == kh;
    if (!same) s->pf_done = 0;
    if (same && ci < s->pf_upto && ci != s->last_ci) {
        /* A chunk the stream's prefetch queued. Cached or in flight: the
         * reader consumes what prefetch brings, so look further ahead.
         * Neither, and its job had not completed: the reader outran the
         * pool, look further ahead too. Neither, though its job completed:
         * the cache dropped it before the reader got there (the reader is
         * slower than the cache keeps chunks), so look less far. */
        int fetched = (s->pf_done >> (ci % 64)) & 1;
        if (present || !fetched)
            s->depth = s->depth * 2 < r->prefetch_max ? s->depth * 2 : r->prefetch_max;
        else if (s->depth > 1)
            s->depth /= 2;
    }
    s->last_ci = ci;
    uint32_t from = ci + 1 > ahead ? ci + 1 : ahead;
    if (same && s->pf_upto > from) from = s->pf_upto;
    uint32_t to = ci + 1 + (uint32_t)s->depth;
    /* The window reaches into the next segment (pf_upto counts past this
     * segment's end for that): its job queues what it covers. A stream
     * entering a segment starts one too, which only loads the next
     * segment's chunk table: its GET is then done, not queued behind this
     * segment's chunks, when the window gets there. */
    int next = idx && (to > seg->chunk_count || !same) &&
               !(s->nx_pending && s->nx_base == seg->base_offset);
    if (next) {
        s->nx_pending = 1;
        s->nx_base = seg->base_offset; /* a job still running for an older one finishes alone */
    }
    if (!same || to > s->pf_upto) s->pf_upto = to;
    s->pf_key = kh;
    for (uint32_t i = from; i < to && i < seg->chunk_count; i++) s->pf_done &= ~(1ull << (i % 64));
    int slot = rs->slot;
    uint64_t gen = rs->gen;
    int d = s->depth, seen = atomic_load(&r->depth_seen);
    while (d > seen && !atomic_compare_exchange_weak(&r->depth_seen, &seen, d)) {
    }
    pthread_mutex_unlock(&r->mu);
    if (from < to) prefetch_range(r, seg, from, to, slot, gen);
    if (next) next_job_submit(r, idx, seg, slot, gen, stop_offset);
}

/* ---------------------------------------------- parallel chunks of a read */

enum { PJ_QUEUED, PJ_RUNNING, PJ_DONE, PJ_TAKEN };

/* A chunk one read fetches ahead of itself on the pool. Two references: the
 * read's and the pool job's; state and refs under r->mu. */
typedef struct par_job {
    ts_reader *r;
    pf_seg *seg;
    uint32_t idx;
    int state;
    int refs;
    ts_status st;
    ts_chunk *ch; /* the result, owned by the job until the read takes it */
    char err[512];
} par_job;

/* The read's chunks in flight: jobs for chunks [first, next) of one
 * segment, at most PAR_MAX, in order. */
typedef struct read_plan {
    pf_seg *seg;      /* shared with the jobs; NULL until the first job */
    uint64_t key;     /* key hash of seg */
    uint32_t first, next;
    par_job *jobs[PAR_MAX];
} read_plan;

/* Drops one reference; the last frees the job and its unclaimed chunk.
 * Caller holds r->mu. */
static void par_put(par_job *j)
{
    if (--j->refs) return;
    ts_chunk_release(j->ch);
    pf_seg_put(j->seg);
    free(j);
}

/* Pool worker: fetches the chunk unless the read took it back or the reader
 * is closing. Takes r->mu only to change state. */
static void par_run(void *arg)
{
    par_job *j = arg;
    ts_reader *r = j->r;
    pthread_mutex_lock(&r->mu);
    int go = j->state == PJ_QUEUED && !atomic_load(&r->closing);
    if (go) j->state = PJ_RUNNING;
    pthread_mutex_unlock(&r->mu);
    ts_status st = TS_E_CLOSED;
    ts_chunk *ch = NULL;
    char err[512] = "the reader is closing";
    /* Into the cache only: the read serves it from there (a cached chunk
     * costs nothing here, and no whole-chunk copy is made). */
    if (go) st = ts_chunk_cache_warm(r->cache, r->os, &j->seg->meta, j->idx, err, sizeof(err));
    pthread_mutex_lock(&r->mu);
    if (j->state != PJ_TAKEN) { /* done, or closing before it ran */
        j->st = st;
        j->ch = ch;
        memcpy(j->err, err, sizeof(err));
        j->state = PJ_DONE;
        pthread_cond_broadcast(&r->par_cv);
    }
    par_put(j);
    pthread_mutex_unlock(&r->mu);
}

/* Gives up every job of the plan: queued ones will not run, running ones
 * finish and free themselves (their chunks stay in the cache). */
static void plan_clear(ts_reader *r, read_plan *p)
{
    pthread_mutex_lock(&r->mu);
    for (uint32_t i = p->first; i < p->next; i++) {
        par_job *j = p->jobs[i % PAR_MAX];
        if (j->state == PJ_QUEUED) j->state = PJ_TAKEN;
        par_put(j);
    }
    pthread_mutex_unlock(&r->mu);
    pf_seg_put(p->seg);
    memset(p, 0, sizeof(*p));
}

/* How many chunks after ci the read will most likely reach: it needs
 * `left` more bytes, gets about the part of chunk ci from offset `want` on
 * (estimated from offsets, the chunk table has no batch positions), then
 * whole chunks, never past stop_offset or the segment. An estimate too
 * high costs one chunk fetched for nothing (it lands in the cache), too
 * low one round trip more. */
static uint32_t chunks_ahead(const ts_segment_meta *seg, uint32_t ci, int64_t want, size_t left,
                             int64_t stop_offset, uint32_t limit)
{
    const ts_chunk_meta *c = &seg->chunks[ci];
    int64_t end = ci + 1 < seg->chunk_count ? seg->chunks[ci + 1].first_offset
                                             : seg->last_offset + 1;
    double got = c->raw_len;
    if (want > c->first_offset && end > c->first_offset)
        got = (double)c->raw_len * (double)(end - want) / (double)(end - c->first_offset);
    uint32_t n = 0;
    while (n < limit && got < (double)left && ci + 1 + n < seg->chunk_count &&
           seg->chunks[ci + 1 + n].first_offset < stop_offset &&
           seg->chunks[ci + 1 + n].first_offset <= seg->last_offset) {
        got += seg->chunks[ci + 1 + n].raw_len;
        n++;
    }
    return n;
}

/* Starts jobs for the chunks after ci that chunks_ahead says the read
 * needs and that are not started yet. Reading thread. */
static void plan_extend(ts_reader *r, read_plan *p, const ts_segment_meta *seg, uint32_t ci,
                        int64_t want, size_t left, int64_t stop_offset)
{
    uint64_t kh = ts_chunk_cache_key_hash(seg->object_key);
    if (p->seg && (p->key != kh || ci < p->first)) plan_clear(r, p);
    int limit = r->threads < PAR_MAX ? r->threads : PAR_MAX;
    uint32_t to = ci + 1 + chunks_ahead(seg, ci, want, left, stop_offset, (uint32_t)limit);
    if (p->seg && p->first < p->next && p->next < ci + 1)
        plan_clear(r, p); /* its jobs are behind the read: cannot happen, chunks go in order */
    /* No job outstanding: the window starts after ci. */
    if (!p->seg || p->first == p->next) p->first = p->next = ci + 1;
    while (p->next < to && p->next - p->first < (uint32_t)limit) {
        if (!p->seg) {
            if (!(p->seg = pf_seg_new(seg))) return;
            p->key = kh;
        }
        par_job *j = calloc(1, sizeof(*j));
        if (!j) return;
        j->r = r;
        j->seg = p->seg;
        atomic_fetch_add(&p->seg->refs, 1);
        j->idx = p->next;
        j->state = PJ_QUEUED;
        j->refs = 2;
        if (ts_pool_submit(r->pool, par_run, j) != TS_OK) {
            pf_seg_put(j->seg);
            free(j);
            return; /* the reading thread fetches it when it gets there */
        }
        p->jobs[p->next % PAR_MAX] = j;
        p->next++;
    }
}

/* Returns chunk ci: from the plan's job when it has one (waiting for it to
 * finish, or taking it back while still queued), else fetched here.
 * Reading thread. */
/* Waits for the planned fetch of chunk ci, if there is one; a job the pool
 * has not started yet is taken back (the read's own cache read fetches the
 * chunk). Reading thread. */
static ts_status plan_wait(ts_reader *r, read_plan *p, const ts_segment_meta *seg, uint32_t ci,
                           char *errstr, size_t errlen)
{
    par_job *j = NULL;
    if (p->seg) {
        int same = p->key == ts_chunk_cache_key_hash(seg->object_key);
        if (same && ci == p->first && p->first < p->next) {
            j = p->jobs[p->first % PAR_MAX];
            p->jobs[p->first % PAR_MAX] = NULL;
            p->first++;
        } else if (!same || ci > p->first) {
            plan_clear(r, p); /* the read left the plan's path */
        } /* else ci precedes the plan: the chunk it was planned from */
    }
    if (!j) return TS_OK;
    pthread_mutex_lock(&r->mu);
    if (j->state == PJ_QUEUED) {
        j->state = PJ_TAKEN;
        par_put(j);
        pthread_mutex_unlock(&r->mu);
        return TS_OK;
    }
    while (j->state != PJ_DONE) pthread_cond_wait(&r->par_cv, &r->mu);
    ts_status st = j->st;
    ts_chunk *ch = j->ch;
    j->ch = NULL;
    if (st) ts_err_set(errstr, errlen, st, "%s", j->err);
    par_put(j);
    pthread_mutex_unlock(&r->mu);
    ts_chunk_release(ch);
    return st;
}

/* Serves chunk ci to a read (rq: where it stands, what is left): first
 * starts the chunks after it the read will need, and the stream's prefetch
 * beyond those, waits for ci's own planned fetch, then appends only the
 * batches served from the cache (reader/README.md). Reading thread. */
static ts_status read_chunk(ts_reader *r, read_plan *p, const read_stream *rs, ts_index *idx,
                            const ts_segment_meta *seg, uint32_t ci, ts_chunk_read *rq,
                            ts_buf *out, char *errstr, size_t errlen)
{
    size_t left = rq->added < rq->max_bytes ? rq->max_bytes - rq->added : 0;
    plan_extend(r, p, seg, ci, rq->want, left, rq->stop_offset);
    prefetch_note(r, rs, idx, seg, ci, p->seg ? p->next : ci + 1, rq->stop_offset);
    ts_status st = plan_wait(r, p, seg, ci, errstr, errlen);
    if (st) return st;
    return ts_chunk_cache_read(r->cache, r->os, seg, ci, rq, out, errstr, errlen);
}

/* --------------------------------------------------------------- reader */

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
    r->threads = threads > 0 ? threads : 1;
    r->prefetch_chunks = prefetch_chunks;
    r->prefetch_max = prefetch_chunks;
    atomic_init(&r->closing, 0);
    atomic_init(&r->prefetch_queued, 0);
    atomic_init(&r->depth_seen, 0);
    ts_status st = ts_pool_create("ts-prefetch", r->threads, PREFETCH_QUEUE_MAX, &r->pool);
    if (st) {
        free(r);
        return ts_err_set(errstr, errlen, st, "cannot start the reader's prefetch pool");
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->par_cv, NULL);
    *out = r;
    return TS_OK;
}

ts_status ts_reader_set_prefetch_max(ts_reader *r, int max_chunks, char *errstr, size_t errlen)
{
    if (!r || max_chunks < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "prefetch max must be >= 0 chunks");
    pthread_mutex_lock(&r->mu);
    r->prefetch_max = max_chunks;
    if (r->prefetch_chunks > max_chunks) r->prefetch_chunks = max_chunks;
    for (int i = 0; i < STREAM_SLOTS; i++)
        if (r->streams[i].depth > max_chunks) r->streams[i].depth = max_chunks;
    pthread_mutex_unlock(&r->mu);
    return TS_OK;
}

void ts_reader_stats_get(ts_reader *r, ts_reader_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!r) return;
    out->prefetch_queued = atomic_load(&r->prefetch_queued);
    out->prefetch_depth_max = atomic_load(&r->depth_seen);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < STREAM_SLOTS; i++) {
        if (!r->streams[i].used) continue;
        out->streams++;
        if (r->streams[i].depth > out->prefetch_depth_now)
            out->prefetch_depth_now = r->streams[i].depth;
    }
    pthread_mutex_unlock(&r->mu);
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
    pthread_cond_destroy(&r->par_cv);
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
    read_stream rs;
    read_plan plan;
    memset(&plan, 0, sizeof(plan));
    stream_begin(r, idx, offset, &rs);
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
            st = read_chunk(r, &plan, &rs, idx, &seg, ci, &rq, out, errstr, errlen);
            if (st) goto fail;
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
    plan_clear(r, &plan);
    stream_end(r, &rs, rq.want);
    ts_segment_meta_clear(&seg);
    return TS_OK;
fail:
    plan_clear(r, &plan);
    stream_end(r, &rs, rq.want);
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
