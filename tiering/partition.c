/*
 * partition.c — one partition: its local segments, the append and read
 * paths, rolling, upload scheduling and retention.
 *
 * Threads: append/read/flush/roll run on the caller's thread; uploads on
 * the engine's upload scheduler (uploader/sched.h: several segments of a
 * partition at once, oldest first, entries committed in offset order so
 * the manifest grows without gaps), handed over the moment a segment
 * closes; ticks (time-based roll and flush, upload
 * retries, manifest re-sync, retention) on the engine's background thread.
 * Cold reads run on the caller's thread without the partition lock, so
 * they never block appends or hot reads. The appending thread (the
 * broker's network loop) never fsyncs or unlinks: flush.messages and
 * flush.ms queue a sync pass, and removed segments are unlinked, on the
 * engine's sync worker; only an explicit ts_partition_flush (acks=-1, on
 * the broker's io pool) syncs on the caller's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/config_table.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strlist.h"
#include "common/log.h"
#include "internal.h"
#include "uploader/sched.h"

void ts_part_settings_resolve(const ts_config *cfg, ts_part_settings *s)
{
    const ts_settings *cs = ts_config_settings(cfg);
    s->segment_bytes = cs->log_segment_bytes;
    s->segment_ms = cs->log_segment_ms;
    s->index_interval = cs->log_index_interval_bytes;
    s->flush_messages = cs->log_flush_interval_messages;
    s->flush_ms = cs->log_flush_interval_ms;
    s->retention_bytes = cs->log_retention_bytes;
    s->retention_ms = cs->log_retention_ms;
    s->local_retention_bytes = cs->log_local_retention_bytes;
    s->local_retention_ms = cs->log_local_retention_ms;
    if (s->local_retention_bytes == -2) s->local_retention_bytes = s->retention_bytes;
    if (s->local_retention_ms == -2) s->local_retention_ms = s->retention_ms;
    /* Read without the partition lock by validation, uploads and time
     * lookups (ts_part_max_batch): the one field a dynamic config change may
     * write while they run. */
    __atomic_store_n(&s->max_batch, cs->message_max_bytes, __ATOMIC_RELAXED);
    s->remote_enable = cs->remote_storage_enable;
}

/* ---- helpers (partition lock held unless said otherwise) ---------------- */

static ts_segment *active_seg(ts_partition *p) { return p->segs[p->nsegs - 1]; }

ts_status ts_part_push_seg(ts_partition *p, ts_segment *s)
{
    if (p->nsegs == p->capsegs) {
        size_t nc = p->capsegs ? p->capsegs * 2 : 16;
        ts_segment **n = realloc(p->segs, nc * sizeof(*n));
        if (!n) return TS_E_NOMEM;
        p->segs = n;
        p->capsegs = nc;
    }
    p->segs[p->nsegs++] = s;
    return TS_OK;
}

typedef struct remove_ctx {
    ts_partition *p;
    ts_segment *s;
    uint64_t bytes;
} remove_ctx;

static void remove_job(void *arg)
{
    remove_ctx *c = arg;
    ts_segment_remove_files(c->s);
    pthread_mutex_lock(&c->p->mu);
    c->p->removes_pending--;
    c->p->removes_bytes -= c->bytes;
    pthread_cond_broadcast(&c->p->cv);
    pthread_mutex_unlock(&c->p->mu);
    ts_segment_unref(c->s);
    free(c);
}

/* Removes segs[i] from the list; its files are unlinked on the sync worker
 * (this may run on the appending thread), or at the last unref when no
 * worker takes the job. Its bytes leave the engine's local total now.
 * ts_partition_delete waits for pending removals, so that none can unlink
 * a file of the same name in a partition created again after it. */
static void drop_seg(ts_partition *p, size_t i)
{
    ts_segment *s = p->segs[i];
    memmove(&p->segs[i], &p->segs[i + 1], (p->nsegs - i - 1) * sizeof(*p->segs));
    p->nsegs--;
    s->deleted = 1;
    atomic_fetch_sub(&p->eng->local_bytes, (long long)s->size);
    remove_ctx *c = p->eng->sync_pool ? malloc(sizeof(*c)) : NULL;
    if (c) {
        c->p = p;
        c->s = s;
        c->bytes = s->size;
        p->removes_pending++;
        p->removes_bytes += c->bytes;
        if (ts_pool_submit(p->eng->sync_pool, remove_job, c) == TS_OK) return;
        p->removes_pending--;
        p->removes_bytes -= c->bytes;
        free(c);
    }
    ts_segment_unref(s);
}

void ts_part_remove_seg_now(ts_partition *p, size_t i)
{
    ts_segment *s = p->segs[i];
    memmove(&p->segs[i], &p->segs[i + 1], (p->nsegs - i - 1) * sizeof(*p->segs));
    p->nsegs--;
    s->deleted = 1;
    atomic_fetch_sub(&p->eng->local_bytes, (long long)s->size);
    ts_segment_remove_files(s);
    ts_segment_unref(s);
}

/* Takes len bytes of the broker-wide local budget (always counted; refused
 * only when check is set and the budget would be exceeded). A compare-and-
 * swap, so concurrent appends of other partitions cannot overshoot it. */
static int budget_reserve(ts_engine *eng, uint64_t len, int check)
{
    long long cur = atomic_load(&eng->local_bytes);
    do {
        if (check && eng->local_capacity >= 0 &&
            (uint64_t)cur + len > (uint64_t)eng->local_capacity)
            return 0;
    } while (!atomic_compare_exchange_weak(&eng->local_bytes, &cur, cur + (long long)len));
    return 1;
}

static uint64_t closed_bytes(ts_partition *p)
{
    uint64_t b = 0;
    for (size_t i = 0; i + 1 < p->nsegs; i++) b += p->segs[i]->size;
    return b;
}

/* Rolling now would leave more closed bytes than local retention allows
 * (uploads lag). Segments dropped but not yet unlinked by the sync worker
 * count too: their files are still on the disk the bound is about, and a
 * sync worker behind on fsyncs (a loaded machine) let local disk pass the
 * bound by a segment per partition (integration.engine_e2e). Partition lock
 * held. */
static int over_local_bound(ts_partition *p)
{
    if (!p->set.remote_enable || p->set.local_retention_bytes < 0) return 0;
    uint64_t closed = closed_bytes(p) + p->removes_bytes;
    return closed > 0 && closed + active_seg(p)->size > (uint64_t)p->set.local_retention_bytes;
}

/* The invariant's test: a local segment may leave local disk only when its
 * whole range is in manifest entries durable in the bucket (a replica's
 * segments need not match the leader's entries one to one). p->mu held. */
static int seg_durably_remote(ts_partition *p, const ts_segment *s)
{
    return s->remote && !s->uploading &&
           ts_index_covers(p->idx, s->base_offset, s->last_offset, 1);
}

ts_segment *ts_part_seg_for_locked(ts_partition *p, int64_t offset)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (p->segs[mid]->base_offset <= offset) lo = mid;
        else hi = mid;
    }
    while (lo + 1 < p->nsegs && p->segs[lo]->last_offset < offset) lo++;
    return p->segs[lo];
}

int64_t ts_part_log_start_locked(ts_partition *p)
{
    int64_t start = p->nsegs ? p->segs[0]->base_offset : p->leo;
    if (p->idx) {
        int64_t remote_start = ts_index_start_offset(p->idx);
        if (remote_start >= 0 && remote_start < start) start = remote_start;
    }
    /* DeleteRecords may have moved it inside the first segment. */
    if (start < p->records_start) start = p->records_start < p->leo ? p->records_start : p->leo;
    return start;
}

#define log_start_locked ts_part_log_start_locked

/* ---- uploads: what to hand to the scheduler, and what its results mean ---
 *
 * The scheduler (uploader/sched.h) owns the workers, the parallelism, the
 * commit order and the backoff; the partition decides which segments are
 * due (oldest closed one not yet remote first, leader-only and below the
 * high watermark for replicas, never a retiring one) and applies each
 * outcome under its lock. p->uploads_queued counts segments handed over;
 * p->upload_inflight is set while it is non-zero, or while an exclusive
 * holder (the orphan sweep, a replica's epoch commit or manifest re-read)
 * keeps uploads out. */

#define schedule_upload ts_part_schedule_upload

static void enforce_local_retention(ts_partition *p, uint64_t incoming);

/* Where the next upload of s starts: its base, or, for a replica whose
 * manifest (written by an earlier leader) ends inside s, the manifest's
 * end, so the new entry continues it without gap or overlap. > last: s is
 * covered already. The segments handed over before s continue the
 * manifest up to s's base. p->mu held. */
static int64_t upload_start_locked(ts_partition *p, const ts_segment *s)
{
    if (!p->replicated) return s->base_offset;
    int64_t remote_end = ts_part_remote_end(p);
    return remote_end > s->base_offset ? remote_end : s->base_offset;
}

/* Hands s, starting at offset start, to the partition's upload queue.
 * Non-zero when it could not (the caller stops for now). p->mu held. */
static int hand_over_locked(ts_partition *p, ts_segment *s, int64_t start)
{
    ts_engine *eng = p->eng;
    ts_index_epoch *epochs = NULL;
    size_t nepochs = 0;
    if (p->replicated &&
        ts_part_repl_segment_epochs_locked(p, start, s->last_offset, &epochs, &nepochs))
        return 1;
    ts_upload_req req = {
        .topic = p->topic,
        .partition = p->id,
        .segment_path = s->path,
        .base_offset = start,
        .chunk_bytes = (size_t)eng->set->remote_storage_chunk_bytes,
        .compression_level = (int)eng->set->remote_storage_compression_level,
        .max_batch_bytes = ts_part_max_batch(p),
        .epochs = epochs,
        .nepochs = nepochs,
        .keyring = eng->set->remote_storage_encryption_enable ? eng->keyring : NULL,
        .key_id = eng->set->remote_storage_encryption_active_key,
    };
    ts_segment_ref(s);
    ts_status st = ts_upload_queue_submit(p->upq, &req, s);
    free(epochs);
    if (st) {
        ts_segment_unref(s);
        return 1;
    }
    s->uploading = 1;
    p->uploads_queued++;
    p->upload_inflight = 1;
    return 0;
}

/* Hands every due segment to the upload queue while it has room, oldest
 * first; the ones already handed over are skipped, so each goes after the
 * one before it (partition lock held). */
void ts_part_schedule_upload(ts_partition *p)
{
    if (!p->idx || !p->upq || !p->set.remote_enable || p->deleted) return;
    if (p->upload_inflight && !p->uploads_queued) return; /* an exclusive holder */
    int room = ts_upload_queue_room(p->upq);
    for (size_t i = 0; room > 0 && i + 1 < p->nsegs; i++) {
        ts_segment *s = p->segs[i];
        if (s->remote || s->uploading || s->size == 0 || s->retiring) continue;
        if (!ts_part_repl_may_upload(p, s)) return;
        int64_t start = upload_start_locked(p, s);
        if (start > s->last_offset) {
            s->remote = ts_index_covers(p->idx, s->base_offset, s->last_offset, 0);
            if (s->remote) continue;
            return; /* a hole below the manifest end: the replica waits for a reload */
        }
        if (hand_over_locked(p, s, start)) return;
        room--;
    }
}

/* Byte position of the batch at `start` in the closed segment s (its base:
 * 0). Closed segments never change, so no lock is needed. TS_E_INVAL when
 * no batch starts there. */
static ts_status upload_start_pos(ts_partition *p, ts_segment *s, int64_t start, uint64_t *pos,
                                  char *errstr, size_t errlen)
{
    *pos = 0;
    if (start == s->base_offset) return TS_OK;
    int64_t base = -1;
    ts_status st = ts_part_batch_holding(p, s, start, pos, &base, errstr, errlen);
    if (st || base == start) return st;
    return ts_err_set(errstr, errlen, TS_E_INVAL,
                      "%s-%d: no batch of segment %020lld starts at offset %lld, where the "
                      "manifest ends; the replica's log differs from the tiered one",
                      p->topic, p->id, (long long)s->base_offset, (long long)start);
}

/* Scheduler callbacks (upload worker, no lock held). */
static ts_status upload_prepare(void *owner, void *item, ts_upload_req *req, char *errstr,
                                size_t errlen)
{
    ts_partition *p = owner;
    if (p->deleted) return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    return upload_start_pos(p, item, req->base_offset, &req->start_pos, errstr, errlen);
}

static int upload_cancelled(void *owner) { return ((ts_partition *)owner)->deleted; }

/* The copy counters of one attempt (ts_partition_counters). */
static void count_copy(ts_partition *p, const ts_upload_result *r)
{
    if (r->discarded || r->st == TS_E_CLOSED || r->st == TS_E_NOT_FOUND) return;
    atomic_fetch_add(&p->copy_requests, 1);
    if (r->committed) atomic_fetch_add(&p->copy_bytes, r->stored_bytes);
    else atomic_fetch_add(&p->copy_errors, 1);
}

/* One segment's outcome: remote, fenced, failed (backoff) or discarded
 * behind an earlier failure (it goes again after it). p->mu held. */
static void apply_upload_locked(ts_partition *p, ts_segment *s, const ts_upload_result *r)
{
    ts_engine *eng = p->eng;
    s->uploading = 0;
    if (--p->uploads_queued == 0) p->upload_inflight = 0;
    if (r->committed) {
        s->remote = 1;
        atomic_fetch_add(&eng->uploads_done, 1);
        ts_log_debug("uploader", "%s-%d: segment %020lld uploaded", p->topic, p->id,
                     (long long)s->base_offset);
    } else if (r->st == TS_E_FENCED) {
        ts_log_warn("uploader", "%s-%d: upload of segment %020lld fenced; its object stays an "
                    "orphan: %s", p->topic, p->id, (long long)s->base_offset, r->err);
    } else if (r->discarded) {
        ts_log_debug("uploader", "%s-%d: segment %020lld not committed: %s", p->topic, p->id,
                     (long long)s->base_offset, r->err);
    } else if (r->st != TS_E_NOT_FOUND && r->st != TS_E_CLOSED) {
        atomic_fetch_add(&eng->uploads_failed, 1);
        int64_t wait = r->retry_at_ms ? r->retry_at_ms - ts_mono_ms() : 0;
        ts_log_warn("uploader", "%s-%d: upload of segment %020lld failed (attempt %d, retry in "
                    "%lld ms): %s", p->topic, p->id, (long long)s->base_offset, r->failures,
                    (long long)(wait > 0 ? wait : 0), r->err);
    }
    if (r->committed) schedule_upload(p);
}

static void upload_done(void *owner, const ts_upload_result *r)
{
    ts_partition *p = owner;
    ts_segment *s = r->item;
    ts_engine *eng = p->eng;
    if (r->st == TS_E_FENCED) ts_part_repl_fenced(p, r->err);
    count_copy(p, r);
    pthread_mutex_lock(&p->mu);
    apply_upload_locked(p, s, r);
    /* A retry is due after its backoff, not at the next periodic tick
     * (which may be a minute away); so is the re-sync of a manifest whose
     * remote write failed after the entry was committed locally (the tick
     * does it; 200 ms is the first upload backoff). */
    int64_t retry_at = r->st == TS_OK ? 0
                       : r->committed ? ts_mono_ms() + 200
                                      : r->retry_at_ms;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (retry_at) ts_eng_wake_at(eng, retry_at);
    if (r->st == TS_OK) {
        enforce_local_retention(p, 0);
        ts_eng_trim_local(eng, 0);
    }
    ts_segment_unref(s);
}

/* An object finished building: the queue has build room again while the
 * segment still waits for its commit, so the next due segments go now and
 * build while the group's head PUT is in flight. */
static void upload_room(void *owner)
{
    ts_partition *p = owner;
    pthread_mutex_lock(&p->mu);
    schedule_upload(p);
    pthread_mutex_unlock(&p->mu);
}

static const ts_upload_queue_ops g_upload_ops = {upload_prepare, upload_cancelled, upload_done,
                                                 upload_room};

/* The partition's upload queue (tiered partitions). */
static ts_status upload_queue_open(ts_partition *p, char *errstr, size_t errlen)
{
    ts_engine *eng = p->eng;
    if (!p->idx || !eng->uploads) return TS_OK;
    return ts_upload_queue_create(eng->uploads, eng->os, p->idx,
                                  (int)eng->set->remote_log_upload_max_inflight,
                                  eng->set->remote_log_upload_retry_backoff_max_ms, &g_upload_ops,
                                  p, &p->upq, errstr, errlen);
}

/* ---- durability of closed segments -------------------------------------- */

/* Small per-partition files holding one decimal offset: recovery-point
 * and log-start-offset. */
static ts_status write_offset_file(ts_partition *p, const char *name, int64_t v, char *errstr,
                                   size_t errlen)
{
    char path[PATH_MAX + 32], txt[32];
    snprintf(path, sizeof(path), "%s/%s", p->dir, name);
    int n = snprintf(txt, sizeof(txt), "%lld\n", (long long)v);
    return ts_fs_write_atomic(path, txt, (size_t)n, errstr, errlen);
}

/* The file's offset, or 0 when it is absent or does not hold one. */
static int64_t read_offset_file(const char *dir, const char *name)
{
    char path[PATH_MAX + 32];
    uint8_t *d;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (ts_fs_read_all(path, 64, &d, &len, NULL, 0)) return 0;
    char *end;
    long long v = strtoll((char *)d, &end, 10);
    int ok = end != (char *)d && (*end == '\n' || !*end) && v >= 0;
    free(d);
    return ok ? v : 0;
}

#define write_recovery_point ts_part_write_recovery_point
void ts_part_write_recovery_point(ts_partition *p, int64_t rp)
{
    char err[512];
    if (write_offset_file(p, "recovery-point", rp, err, sizeof(err)))
        ts_log_warn("tiering", "%s-%d: cannot write the recovery point: %s", p->topic, p->id, err);
}

/* Unknown (0): recovery scans everything. */
static int64_t read_recovery_point(const char *dir) { return read_offset_file(dir, "recovery-point"); }

/* The log start DeleteRecords set (also in the manifest when tiered). */
static int64_t read_records_start(const char *dir) { return read_offset_file(dir, "log-start-offset"); }

static ts_status write_records_start(ts_partition *p, int64_t offset, char *errstr, size_t errlen)
{
    return write_offset_file(p, "log-start-offset", offset, errstr, errlen);
}

/* fsyncs every closed segment not yet synced (and the active one when
 * with_active), plus the directory when segments were created since the
 * last sync; then advances the recovery point. Runs on the caller's thread
 * (flush, acks=-1) or the sync pool (after a roll); never holds p->mu while
 * it waits on the disk. */
static ts_status sync_partition(ts_partition *p, int with_active, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&p->sync_mu);
    pthread_mutex_lock(&p->mu);
    if (p->deleted) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->sync_mu);
        return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    }
    size_t n = 0;
    ts_segment **todo = malloc((p->nsegs + 1) * sizeof(*todo));
    if (!todo) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->sync_mu);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i + 1 < p->nsegs; i++)
        if (!p->segs[i]->synced) ts_segment_ref(todo[n++] = p->segs[i]);
    ts_segment *a = with_active ? active_seg(p) : NULL;
    int afds[2] = {-1, -1};
    if (a) {
        ts_segment_ref(a);
        ts_segment_hold_index_fds(a, afds);
    }
    uint64_t gen = p->dir_gen;
    int64_t msgs = p->unflushed_msgs;
    pthread_mutex_unlock(&p->mu);

    ts_status st = TS_OK;
    for (size_t i = 0; i < n && !st; i++) st = ts_segment_sync(todo[i], errstr, errlen);
    if (a && !st) st = ts_segment_flush(a, afds, errstr, errlen); /* closes afds */
    for (int i = 0; i < 2; i++)
        if (afds[i] >= 0) close(afds[i]);
    if (!st && gen != p->dir_synced_gen) st = ts_fs_fsync_dir(p->dir, errstr, errlen);

    pthread_mutex_lock(&p->mu);
    if (!st) {
        for (size_t i = 0; i < n; i++) todo[i]->synced = 1;
        p->dir_synced_gen = gen;
        if (a && p->unflushed_msgs == msgs) {
            p->unflushed_msgs = 0;
            p->first_unflushed_ms = -1;
        }
    }
    int64_t rp = p->nsegs ? active_seg(p)->base_offset : p->recovery_point;
    for (size_t i = 0; i + 1 < p->nsegs; i++)
        if (!p->segs[i]->synced) {
            rp = p->segs[i]->base_offset;
            break;
        }
    int advance = !st && !p->deleted && rp > p->recovery_point;
    if (advance) p->recovery_point = rp;
    pthread_mutex_unlock(&p->mu);
    if (advance) write_recovery_point(p, rp);
    pthread_mutex_unlock(&p->sync_mu);
    for (size_t i = 0; i < n; i++) ts_segment_unref(todo[i]);
    if (a) ts_segment_unref(a);
    free(todo);
    return st;
}

/* Runs sync passes while some are asked for: a request made while a pass
 * runs gets a pass of its own (what it asked to be synced may have been
 * appended after the running pass took its snapshot). */
static void sync_job(void *arg)
{
    ts_partition *p = arg;
    char err[1024];
    pthread_mutex_lock(&p->mu);
    while (p->sync_pending && !p->deleted) {
        int with_active = p->sync_want_active;
        p->sync_pending = p->sync_want_active = 0;
        pthread_mutex_unlock(&p->mu);
        ts_status st = sync_partition(p, with_active, err, sizeof(err));
        if (st && st != TS_E_CLOSED)
            ts_log_error("tiering", "%s-%d: background fsync failed (the next flush retries): "
                         "%s", p->topic, p->id, err);
        pthread_mutex_lock(&p->mu);
    }
    p->sync_inflight = 0;
    pthread_mutex_unlock(&p->mu);
}

/* Queues a background sync pass: of closed segments not yet synced, and of
 * the active segment too when with_active (flush.messages / flush.ms).
 * Partition lock held. */
static void schedule_sync(ts_partition *p, int with_active)
{
    if (!p->eng->sync_pool) return;
    p->sync_pending = 1;
    if (with_active) p->sync_want_active = 1;
    if (p->sync_inflight) return;
    p->sync_inflight = 1;
    if (ts_pool_submit(p->eng->sync_pool, sync_job, p) != TS_OK) p->sync_inflight = 0;
}

/* Closes the active segment and opens a new one at the log end. No fsync
 * here: this runs on the appending thread (the broker's network loop);
 * the closed segment is synced in the background (recovery scans it fully
 * until then) and by the next flush. */
static ts_status roll_locked(ts_partition *p, char *errstr, size_t errlen)
{
    ts_segment *a = active_seg(p);
    if (a->size == 0) return TS_OK;
    ts_status st = ts_segment_seal(a, errstr, errlen);
    if (st) return st;
    ts_segment *n;
    st = ts_segment_create(p->dir, p->leo, (uint32_t)p->set.index_interval, &n, errstr, errlen);
    if (st) return st;
    if (ts_part_push_seg(p, n)) {
        ts_segment_unref(n);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    p->dir_gen++;
    schedule_sync(p, 0);
    schedule_upload(p); /* the closed segment's upload starts now, not at the next tick */
    return TS_OK;
}

/* ---- open / close ------------------------------------------------------- */

static ts_status load_segments(ts_partition *p, char *errstr, size_t errlen)
{
    int64_t *bases;
    size_t n;
    ts_status st = ts_segment_list(p->dir, &bases, &n, errstr, errlen);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        ts_segment *s;
        st = ts_segment_open(p->dir, bases[i], i == n - 1, bases[i] >= p->recovery_point,
                             (uint32_t)p->set.index_interval, ts_part_max_batch(p), &s,
                             errstr, errlen);
        if (st) break;
        if (i + 1 < n && s->size == 0) {
            /* An empty closed segment (a torn roll): nothing to keep. */
            s->deleted = 1;
            ts_segment_unref(s);
            continue;
        }
        ts_part_push_seg(p, s);
    }
    free(bases);
    return st;
}

/* The local manifest does not parse (a disk fault, a torn or hand-edited
 * file): the bucket holds the durable copy, so one bad file must not keep
 * the partition (and a broker opening it at start) down. The file is moved
 * aside, never deleted, and the manifest rebuilt from the bucket; local
 * segments are kept, and any entry the bucket lacked is uploaded again
 * from them (its object can only still be local: a local segment is
 * deleted only once its entry is durable remotely). When the bucket has no
 * usable copy the file goes back where it was and the open fails, naming
 * both problems: nothing is changed or lost. Called by ts_part_open with
 * engine->mu held; errstr holds the local load error. */
static ts_status recover_corrupt_manifest(ts_partition *p, char *errstr, size_t errlen)
{
    char why[1024], aside[PATH_MAX + 64], err[1024];
    snprintf(why, sizeof(why), "%s", errstr ? errstr : "");
    ts_status st = ts_index_set_aside_local(p->idx, aside, sizeof(aside), err, sizeof(err));
    if (st)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s-%d: %s; and %s", p->topic, p->id, why,
                          err);
    ts_log_error("tiering", "%s-%d: %s; moved it aside to %s, recovering the manifest from the "
                 "bucket", p->topic, p->id, why, aside);
    st = ts_index_load_remote(p->idx, err, sizeof(err));
    if (st == TS_OK) {
        ts_index_summary sum;
        ts_index_summary_get(p->idx, &sum);
        ts_log_warn("tiering", "%s-%d: manifest recovered from the bucket (version %llu, %zu "
                    "remote segments); the damaged file is kept at %s", p->topic, p->id,
                    (unsigned long long)sum.version, sum.count, aside);
        return TS_OK;
    }
    char rerr[512] = "";
    char where[PATH_MAX + 128] = " and nothing was changed";
    if (ts_index_restore_local(p->idx, aside, rerr, sizeof(rerr))) {
        ts_log_error("tiering", "%s-%d: %s", p->topic, p->id, rerr);
        snprintf(where, sizeof(where), "; the damaged file is at %s", aside);
    }
    return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                      "%s-%d: %s; and the bucket has no usable copy to recover from (%s): the "
                      "partition stays closed%s; repair the file or move it away to start this "
                      "partition from its local segments",
                      p->topic, p->id, why, err, where);
}

/* A partition handle with its locks and effective settings, nothing on
 * disk yet. NULL when out of memory. */
static ts_partition *part_alloc(ts_engine *eng, const char *topic, int32_t id,
                                const ts_config *tc)
{
    ts_partition *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->eng = eng;
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->id = id;
    snprintf(p->dir, sizeof(p->dir), "%s/%s-%d", eng->data_dir, topic, id);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->retention_mu, NULL);
    pthread_mutex_init(&p->sync_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->first_unflushed_ms = -1;
    ts_part_settings_resolve(tc ? tc : eng->cfg, &p->set);
    if (!eng->os) p->set.remote_enable = 0;
    return p;
}

/* Loads the partition's manifest (tiered engines): the local copy, a
 * damaged local copy set aside and recovered from the bucket, or, with no
 * local directory, the bucket's newest. TS_E_NOT_FOUND when the partition
 * exists neither locally nor in the bucket and create is 0. */
static ts_status load_manifest(ts_partition *p, int local, int create, char *errstr,
                               size_t errlen)
{
    ts_engine *eng = p->eng;
    ts_status st;
    if (eng->os) {
        st = ts_index_create(p->topic, p->id, p->dir, eng->os, &p->idx, errstr, errlen);
        if (st) return st;
        ts_index_apply_config(p->idx, eng->cfg);
        ts_index_set_chunk_table_cache(p->idx, eng->ctcache);
    }
    int have_manifest = 0;
    if (p->idx && local) {
        st = ts_index_load_local(p->idx, errstr, errlen);
        if (st == TS_OK) have_manifest = 1;
        else if (st == TS_E_CORRUPT) {
            st = recover_corrupt_manifest(p, errstr, errlen);
            if (st) return st;
            have_manifest = 1;
        } else if (st != TS_E_NOT_FOUND) return st;
    }
    if (p->idx && !have_manifest) {
        /* Empty data directory (or none yet) plus the bucket: recover the
         * partition's remote tier from its newest manifest. */
        if (!local) {
            st = ts_fs_mkdirs(p->dir, errstr, errlen);
            if (st) return st;
        }
        st = ts_index_load_remote(p->idx, errstr, errlen);
        if (st == TS_OK) {
            have_manifest = 1;
            ts_log_info("tiering", "%s-%d: recovered remote manifest from the bucket", p->topic,
                        p->id);
        } else if (st != TS_E_NOT_FOUND) {
            return st;
        }
    }
    if (!local && !have_manifest && !create) {
        if (p->idx) rmdir(p->dir);
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND, "partition %s-%d does not exist",
                          p->topic, p->id);
    }
    return TS_OK;
}

/* After load_segments: marks the local segments the manifest holds as
 * remote and sets the log end offset, which continues after the remote
 * tier when the local log is empty. */
static void resume_offsets(ts_partition *p)
{
    int64_t remote_end = -1;
    if (p->idx) {
        ts_index_summary sum;
        ts_index_summary_get(p->idx, &sum);
        if (sum.count) remote_end = sum.end_offset;
        /* Retention may have emptied the manifest: its log start still says
         * where offsets continue (offsets are never reused). */
        if (sum.log_start_offset - 1 > remote_end) remote_end = sum.log_start_offset - 1;
        p->records_start = sum.log_start_offset;
        for (size_t i = 0; i < p->nsegs; i++) {
            ts_segment_meta m;
            memset(&m, 0, sizeof(m));
            if (ts_index_lookup_offset(p->idx, p->segs[i]->base_offset, &m) == TS_OK &&
                m.base_offset == p->segs[i]->base_offset)
                p->segs[i]->remote = 1;
            ts_segment_meta_clear(&m);
        }
    }
    int64_t rs = read_records_start(p->dir);
    if (rs > p->records_start) p->records_start = rs;
    if (p->nsegs) {
        ts_segment *a = active_seg(p);
        p->leo = a->last_offset + 1;
        if (a->size == 0 && remote_end + 1 > p->leo) p->leo = remote_end + 1;
    } else {
        p->leo = remote_end + 1;
    }
}

/* The active segment starts at the log end offset: creates it when there
 * is none or an empty one sits at another base. */
static ts_status ensure_active_segment(ts_partition *p, char *errstr, size_t errlen)
{
    if (p->nsegs && !(active_seg(p)->size == 0 && active_seg(p)->base_offset != p->leo))
        return TS_OK;
    if (p->nsegs) drop_seg(p, p->nsegs - 1);
    ts_segment *s;
    ts_status st =
        ts_segment_create(p->dir, p->leo, (uint32_t)p->set.index_interval, &s, errstr, errlen);
    if (st) return st;
    ts_part_push_seg(p, s);
    return TS_OK;
}

ts_status ts_part_open(ts_engine *eng, const char *topic, int32_t id, int create,
                       const ts_config *tc, ts_partition **out, char *errstr, size_t errlen)
{
    ts_partition *p = part_alloc(eng, topic, id, tc);
    if (!p) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    struct stat sb;
    int local = stat(p->dir, &sb) == 0;
    ts_status st = load_manifest(p, local, create & TS_PART_CREATE, errstr, errlen);
    if (!st) st = ts_fs_mkdirs(p->dir, errstr, errlen);
    if (st) goto fail;
    p->recovery_point = read_recovery_point(p->dir);
    st = load_segments(p, errstr, errlen);
    if (st) goto fail;
    resume_offsets(p);
    st = ensure_active_segment(p, errstr, errlen);
    if (!st) st = ts_part_repl_open(p, (create & TS_PART_REPLICATED) != 0, errstr, errlen);
    if (st) goto fail;
    /* Everything below the active segment was scanned and synced above (or
     * known synced): the recovery point moves to the active segment. */
    p->recovery_point = active_seg(p)->base_offset;
    write_recovery_point(p, p->recovery_point);
    p->dir_gen = 1; /* the directory may hold entries a crash left unsynced */
    if ((st = upload_queue_open(p, errstr, errlen))) goto fail;
    pthread_mutex_lock(&p->mu);
    uint64_t local_bytes = 0;
    for (size_t i = 0; i < p->nsegs; i++) local_bytes += p->segs[i]->size;
    budget_reserve(eng, local_bytes, 0); /* counted; a reopened log is never refused */
    p->counted = 1;
    schedule_upload(p);
    pthread_mutex_unlock(&p->mu);
    *out = p;
    return TS_OK;
fail:
    ts_part_close(p);
    return st;
}

void ts_part_close(ts_partition *p)
{
    if (!p) return;
    char err[256];
    if (!p->deleted && p->nsegs) sync_partition(p, 1, err, sizeof(err)); /* clean shutdown */
    if (p->counted && !p->deleted)
        atomic_fetch_sub(&p->eng->local_bytes, (long long)ts_part_local_bytes(p));
    ts_part_repl_close(p);
    for (size_t i = 0; i < p->nsegs; i++) ts_segment_unref(p->segs[i]);
    free(p->segs);
    ts_upload_queue_destroy(p->upq); /* idle: the engine's workers are gone */
    ts_index_destroy(p->idx);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->retention_mu);
    pthread_mutex_destroy(&p->sync_mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* ---- append ------------------------------------------------------------- */

/* The batches of one append, validated, in a private copy whose base
 * offsets are rewritten when offsets are assigned. */
typedef struct append_batches {
    uint8_t *copy;
    ts_batch_hdr *hdrs;
    size_t *rel;     /* byte position of each batch in copy */
    size_t n, cap;
    int64_t records; /* records of all batches */
    int64_t span;    /* offsets this call assigns */
} append_batches;

static void append_batches_free(append_batches *b)
{
    free(b->hdrs);
    free(b->rel);
    free(b->copy);
}

static int append_batches_grow(append_batches *b)
{
    size_t cap = b->cap ? b->cap * 2 : 16;
    ts_batch_hdr *nh = realloc(b->hdrs, cap * sizeof(*nh));
    if (nh) b->hdrs = nh;
    size_t *nr = nh ? realloc(b->rel, cap * sizeof(*nr)) : NULL;
    if (nr) b->rel = nr;
    if (!nh || !nr) return -1;
    b->cap = cap;
    return 0;
}

/* Copies data and validates every batch in it before anything touches the
 * log: one bad batch rejects the whole call. Then every record (Kafka's
 * LogValidator): this engine owns log integrity for any host, and a batch
 * that does not parse stalls every consumer of the partition. Any thread;
 * no lock (reads max_batch through ts_part_max_batch). */
static ts_status validate_batches(ts_partition *p, const void *data, size_t len,
                                  append_batches *b, char *errstr, size_t errlen)
{
    size_t max = ts_part_max_batch(p);
    b->copy = malloc(len);
    if (!b->copy || append_batches_grow(b))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    memcpy(b->copy, data, len);
    for (size_t pos = 0; pos < len;) {
        if (b->n == b->cap && append_batches_grow(b))
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        ts_batch_hdr *h = &b->hdrs[b->n];
        ts_status st = ts_batch_validate(b->copy + pos, len - pos, max, h, errstr, errlen);
        if (!st) st = ts_batch_validate_records(b->copy + pos, h, max, errstr, errlen);
        if (st)
            return ts_err_prefix(errstr, errlen, st,
                                 "%s-%d: batch %zu at byte %zu rejected, nothing appended",
                                 p->topic, p->id, b->n, pos);
        b->rel[b->n++] = pos;
        b->records += h->records_count;
        b->span += (int64_t)h->last_offset_delta + 1;
        pos += ts_batch_total_size(h);
    }
    if (b->span - 1 > (int64_t)UINT32_MAX)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s-%d: one append may not span more than 2^32 offsets (got %lld)",
                          p->topic, p->id, (long long)b->span);
    return TS_OK;
}

/* The local disk bound before a roll: closed segments may leave local disk
 * only once uploaded, so while uploads lag a roll would grow local disk
 * past log.local.retention.bytes + the active segment. Makes room through
 * local retention first (p->mu is dropped meanwhile). Returns TS_OK when
 * the roll may go ahead, TS_E_CLOSED when p was deleted meanwhile, and
 * TS_E_BACKPRESSURE (an upload scheduled) while still over the bound; no
 * message: the callers say what could not be done. p->mu held. */
static ts_status room_to_roll(ts_partition *p)
{
    if (!over_local_bound(p)) return TS_OK;
    uint64_t incoming = active_seg(p)->size;
    pthread_mutex_unlock(&p->mu);
    enforce_local_retention(p, incoming);
    pthread_mutex_lock(&p->mu);
    if (p->deleted) return TS_E_CLOSED;
    if (!over_local_bound(p)) return TS_OK;
    schedule_upload(p);
    return TS_E_BACKPRESSURE;
}

/* Rolls the active segment when len more bytes would pass
 * log.segment.bytes, or span more offsets would pass the 32-bit relative
 * offsets of its index entries; within the local disk bound. p->mu held. */
static ts_status roll_if_full_locked(ts_partition *p, size_t len, int64_t span, char *errstr,
                                     size_t errlen)
{
    ts_segment *a = active_seg(p);
    int span_full = a->size > 0 && p->leo + span - 1 - a->base_offset > (int64_t)UINT32_MAX;
    if (!(a->size > 0 && a->size + len > (uint64_t)p->set.segment_bytes) && !span_full)
        return TS_OK;
    ts_status st = room_to_roll(p);
    if (st == TS_E_CLOSED)
        return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    if (st)
        return ts_err_set(errstr, errlen, TS_E_BACKPRESSURE,
                          "%s-%d: local disk bound reached (%llu bytes of closed segments "
                          "await upload, log.local.retention.bytes=%lld); retry later",
                          p->topic, p->id, (unsigned long long)closed_bytes(p),
                          (long long)p->set.local_retention_bytes);
    a = active_seg(p);
    if (a->size > 0 && (a->size + len > (uint64_t)p->set.segment_bytes || span_full))
        return roll_locked(p, errstr, errlen);
    return TS_OK;
}

/* Makes the active segment ready for len bytes: rolls it if full, then
 * takes len from the broker-wide local budget
 * (retention.local.target.capacity.bytes). Once the budget is full,
 * uploaded segments of any partition leave local disk (oldest first) to
 * make room, once; what is not yet remote never does, so while uploads lag
 * the append is refused (retriable). p->mu held (dropped for the trim). */
static ts_status prepare_active_locked(ts_partition *p, size_t len, int64_t span, char *errstr,
                                       size_t errlen)
{
    for (int budget_tried = 0;; budget_tried = 1) {
        if (p->deleted)
            return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
        ts_status st = roll_if_full_locked(p, len, span, errstr, errlen);
        if (st) return st;
        if (budget_reserve(p->eng, len, p->set.remote_enable)) return TS_OK;
        schedule_upload(p);
        if (budget_tried)
            return ts_err_set(errstr, errlen, TS_E_BACKPRESSURE,
                              "%s-%d: broker-wide local disk budget reached (%lld local bytes, "
                              "retention.local.target.capacity.bytes=%lld; closed segments "
                              "await upload); retry later",
                              p->topic, p->id, (long long)atomic_load(&p->eng->local_bytes),
                              (long long)p->eng->local_capacity);
        pthread_mutex_unlock(&p->mu);
        ts_eng_trim_local(p->eng, len);
        pthread_mutex_lock(&p->mu);
    }
}

/* Assigns offsets and writes the batches to the active segment (len bytes
 * reserved by prepare_active_locked). p->mu held. */
static ts_status write_batches_locked(ts_partition *p, append_batches *b, size_t len,
                                      int keep_offsets, int64_t *first_offset,
                                      int64_t *last_offset, char *errstr, size_t errlen)
{
    ts_segment *a = active_seg(p);
    uint64_t size_before = a->size;
    int64_t first = p->leo;
    for (size_t i = 0; i < b->n; i++) {
        b->hdrs[i].base_offset = p->leo; /* a replica's batches start there: checked */
        if (!keep_offsets) ts_batch_set_base_offset(b->copy + b->rel[i], p->leo);
        p->leo += (int64_t)b->hdrs[i].last_offset_delta + 1;
    }
    ts_status st = ts_segment_append(a, b->copy, len, b->hdrs, b->rel, b->n, errstr, errlen);
    /* The reservation becomes what the segment really grew by. */
    atomic_fetch_add(&p->eng->local_bytes, (long long)(a->size - size_before) - (long long)len);
    if (st) {
        p->leo = first;
        return st;
    }
    p->unflushed_msgs += b->records;
    if (p->first_unflushed_ms < 0) p->first_unflushed_ms = ts_mono_ms();
    /* log.flush.interval.messages reached: the sync worker fsyncs (any
     * client may set flush.messages=1; an fsync here would stall the
     * broker's network loop). Until it has, the records count as
     * unflushed and the recovery point does not pass them; a failed sync
     * is retried by the next flush. acks=-1 waits in ts_partition_flush. */
    if (p->unflushed_msgs >= p->set.flush_messages) schedule_sync(p, 1);
    if (first_offset) *first_offset = first;
    if (last_offset) *last_offset = p->leo - 1;
    return TS_OK;
}

/* A follower's batches continue its log exactly: the first starts at the
 * log end and each one where the previous ended. p->mu held. */
static ts_status check_replica_offsets_locked(ts_partition *p, const append_batches *b,
                                              char *errstr, size_t errlen)
{
    int64_t next = p->leo;
    for (size_t i = 0; i < b->n; i++) {
        if (b->hdrs[i].base_offset != next)
            return ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                              "%s-%d: replica batch %zu starts at offset %lld, expected %lld "
                              "(%s); nothing appended",
                              p->topic, p->id, i, (long long)b->hdrs[i].base_offset,
                              (long long)next, i ? "batches must be contiguous" : "the log end");
        next = ts_batch_last_offset(&b->hdrs[i]) + 1;
    }
    return TS_OK;
}

/* The appends: validate everything, then under the lock either stamp the
 * leader's epoch and assign offsets (append) or check the leader's offsets
 * and learn its epochs (replica), roll and write. */
static ts_status append_any(ts_partition *p, const void *data, size_t len, int replica,
                            int64_t *first_offset, int64_t *last_offset, char *errstr,
                            size_t errlen)
{
    if (!p || (!data && len)) return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid argument");
    if (len == 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "%s-%d: empty append", p->topic, p->id);
    append_batches b;
    memset(&b, 0, sizeof(b));
    ts_status st = validate_batches(p, data, len, &b, errstr, errlen);
    if (!st) {
        pthread_mutex_lock(&p->mu);
        st = replica ? check_replica_offsets_locked(p, &b, errstr, errlen)
                     : ts_part_repl_stamp_locked(p, b.copy, b.hdrs, b.rel, b.n, errstr, errlen);
        if (!st) st = prepare_active_locked(p, len, b.span, errstr, errlen);
        /* prepare may drop the lock (budget trim): a replica checks again */
        if (!st && replica) st = check_replica_offsets_locked(p, &b, errstr, errlen);
        if (!st && replica) st = ts_part_repl_learn_locked(p, b.hdrs, b.n, errstr, errlen);
        if (!st)
            st = write_batches_locked(p, &b, len, replica, first_offset, last_offset, errstr,
                                      errlen);
        pthread_mutex_unlock(&p->mu);
    }
    append_batches_free(&b);
    return st;
}

ts_status ts_partition_append(ts_partition *p, const void *data, size_t len,
                              int64_t *first_offset, int64_t *last_offset, char *errstr,
                              size_t errlen)
{
    return append_any(p, data, len, 0, first_offset, last_offset, errstr, errlen);
}

ts_status ts_partition_append_replica(ts_partition *p, const void *data, size_t len,
                                      int64_t *last_offset, char *errstr, size_t errlen)
{
    return append_any(p, data, len, 1, NULL, last_offset, errstr, errlen);
}

/* ---- read ---------------------------------------------------------------- */

#define MISSING_LOG_INTERVAL_MS 60000 /* one ERROR line per partition per minute */

/* Non-zero when a manifest entry still covers offset. */
static int manifest_covers(ts_partition *p, int64_t offset)
{
    ts_segment_meta m;
    memset(&m, 0, sizeof(m));
    ts_status st = ts_index_lookup_offset(p->idx, offset, &m);
    ts_segment_meta_clear(&m);
    return st != TS_E_NOT_FOUND; /* out of memory: assume covered, never skip */
}

/* Logs a read that found an object of the manifest missing: an ERROR
 * naming the object (the reader's message), at most once a minute per
 * partition, because a consumer retries the same fetch until an operator
 * acts. The lines in between are counted, not dropped silently. Thread:
 * the reading thread; takes p->mu briefly. */
static void report_missing(ts_partition *p, int64_t offset, const char *why)
{
    int64_t now = ts_mono_ms();
    pthread_mutex_lock(&p->mu);
    int due = p->missing_logged_ms == 0 || now - p->missing_logged_ms >= MISSING_LOG_INTERVAL_MS;
    uint64_t quiet = p->missing_quiet;
    if (due) {
        p->missing_logged_ms = now ? now : 1;
        p->missing_quiet = 0;
    } else {
        p->missing_quiet++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!due) return;
    char more[96] = "";
    if (quiet)
        snprintf(more, sizeof(more), " (%llu more such read(s) since the last report)",
                 (unsigned long long)quiet);
    ts_log_error("tiering",
                 "%s-%d: read at offset %lld failed: %s; reads of these offsets fail until the "
                 "object is restored%s",
                 p->topic, p->id, (long long)offset, why ? why : "", more);
}

ts_status ts_partition_read(ts_partition *p, int64_t offset, size_t max_bytes, uint8_t **out,
                            size_t *out_len, char *errstr, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    ts_buf buf;
    ts_status st;
    pthread_mutex_lock(&p->mu);
    if (p->deleted) {
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    }
    int64_t start = log_start_locked(p), leo = p->leo;
    size_t max_batch = ts_part_max_batch(p);
    if (offset < start || offset > leo) {
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                          "%s-%d: offset %lld is out of range [%lld, %lld]", p->topic, p->id,
                          (long long)offset, (long long)start, (long long)leo);
    }
    if (offset == leo) {
        pthread_mutex_unlock(&p->mu);
        return TS_OK;
    }
    ts_buf_init(&buf, (max_bytes > max_batch ? max_bytes : max_batch) + TS_BATCH_HEADER_SIZE);
    int64_t first_local = p->segs[0]->base_offset;
    if (offset >= first_local || !p->idx) {
        ts_segment *s = ts_part_seg_for_locked(p, offset);
        ts_segment_ref(s);
        uint64_t limit = s->size;
        uint64_t pos = ts_segment_lookup_pos(s, offset);
        pthread_mutex_unlock(&p->mu);
        st = ts_segment_read(s, pos, limit, offset, max_bytes, max_batch, &buf, errstr, errlen);
        ts_segment_unref(s);
    } else {
        pthread_mutex_unlock(&p->mu);
        /* Cold path: through the chunk cache; never past the first local
         * offset, so local+remote ranges are served from local disk. */
        st = ts_reader_read(p->eng->reader, p->idx, offset, max_bytes, first_local, &buf, errstr,
                            errlen);
        atomic_fetch_add(&p->fetch_requests, 1);
        if (st == TS_OK) atomic_fetch_add(&p->fetch_bytes, buf.len);
        else if (st != TS_E_NOT_FOUND) atomic_fetch_add(&p->fetch_errors, 1);
        /* The object of an entry that retention removed while this read
         * ran is gone for a reason: that is a gap like any other. An entry
         * still in the manifest whose object is gone is data loss. */
        if (st == TS_E_OBJECT_MISSING && !manifest_covers(p, offset)) st = TS_E_NOT_FOUND;
        if (st == TS_E_OBJECT_MISSING) report_missing(p, offset, errstr);
        if (st == TS_E_NOT_FOUND) {
            /* No manifest entry covers offset (retention raced the read,
             * or the manifest has a hole): continue at the next offset
             * that holds data, remote or local, as Kafka skips ahead. */
            ts_buf_free(&buf);
            pthread_mutex_lock(&p->mu);
            int gone = p->deleted;
            first_local = p->segs[0]->base_offset;
            pthread_mutex_unlock(&p->mu);
            if (gone) return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
            int64_t next = first_local;
            ts_segment_meta m;
            memset(&m, 0, sizeof(m));
            if (ts_index_lookup_next(p->idx, offset, &m) == TS_OK && m.base_offset < next)
                next = m.base_offset;
            ts_segment_meta_clear(&m);
            if (next > offset)
                return ts_partition_read(p, next, max_bytes, out, out_len, errstr, errlen);
            return st;
        }
    }
    if (st) {
        ts_buf_free(&buf);
        return ts_err_prefix(errstr, errlen, st, "%s-%d read at offset %lld", p->topic, p->id,
                             (long long)offset);
    }
    *out = ts_buf_steal(&buf, out_len);
    if (*out_len == 0) {
        free(*out);
        *out = NULL;
    }
    return TS_OK;
}

/* ---- flush, roll, offsets, time ------------------------------------------ */

/* Makes every appended record durable: the active segment, closed
 * segments not yet synced, and the directory entries of new segments. */
static ts_status flush_active(ts_partition *p, char *errstr, size_t errlen)
{
    return sync_partition(p, 1, errstr, errlen);
}

ts_status ts_partition_flush(ts_partition *p, char *errstr, size_t errlen)
{
    return flush_active(p, errstr, errlen);
}

ts_status ts_partition_roll(ts_partition *p, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    ts_status st = p->deleted ? TS_E_CLOSED : room_to_roll(p);
    if (st == TS_OK)
        st = roll_locked(p, errstr, errlen);
    else if (st == TS_E_CLOSED)
        ts_err_set(errstr, errlen, st, "%s-%d was deleted", p->topic, p->id);
    else
        ts_err_set(errstr, errlen, st,
                   "%s-%d: cannot roll now: closed segments awaiting upload fill "
                   "log.local.retention.bytes=%lld; retry later",
                   p->topic, p->id, (long long)p->set.local_retention_bytes);
    pthread_mutex_unlock(&p->mu);
    return st;
}

ts_status ts_partition_offsets(ts_partition *p, ts_offsets *out)
{
    pthread_mutex_lock(&p->mu);
    if (p->deleted) {
        pthread_mutex_unlock(&p->mu);
        return TS_E_CLOSED;
    }
    out->log_start_offset = log_start_locked(p);
    out->local_start_offset = p->segs[0]->base_offset;
    out->log_end_offset = p->leo;
    out->high_watermark = p->replicated ? p->hw : p->leo;
    out->leader_epoch = ts_epoch_cache_latest(&p->epochs);
    pthread_mutex_unlock(&p->mu);
    out->remote_end_offset = ts_part_remote_end(p);
    return TS_OK;
}

/* Batch-level search: the base offset of the first batch whose max
 * timestamp >= ts, remote tier first (it holds the oldest data). */
static ts_status batch_for_time(ts_partition *p, int64_t timestamp_ms, int64_t *offset,
                                char *errstr, size_t errlen)
{
    if (p->idx) {
        ts_status st = ts_reader_offset_for_time(p->eng->reader, p->idx, timestamp_ms, offset,
                                                 errstr, errlen);
        if (st != TS_E_NOT_FOUND) return st;
    }
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nsegs; i++) {
        ts_segment *s = p->segs[i];
        if (s->size == 0 || s->max_ts < timestamp_ms) continue;
        ts_segment_ref(s);
        uint64_t limit = s->size, pos = ts_segment_lookup_time_pos(s, timestamp_ms);
        pthread_mutex_unlock(&p->mu);
        ts_status st = ts_segment_find_time(s, pos, limit, timestamp_ms, ts_part_max_batch(p),
                                            offset, errstr, errlen);
        ts_segment_unref(s);
        return st;
    }
    pthread_mutex_unlock(&p->mu);
    return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                      "%s-%d: no batch with timestamp >= %lld", p->topic, p->id,
                      (long long)timestamp_ms);
}

ts_status ts_partition_offset_for_time(ts_partition *p, int64_t timestamp_ms, int64_t *offset,
                                       char *errstr, size_t errlen)
{
    int64_t base;
    ts_status st = batch_for_time(p, timestamp_ms, &base, errstr, errlen);
    if (st) return st;
    /* Refine to the first record with timestamp >= ts inside that batch,
     * as Kafka's ListOffsets does. */
    uint8_t *d;
    size_t len;
    st = ts_partition_read(p, base, 1, &d, &len, errstr, errlen);
    if (st) return st;
    *offset = base;
    if (len && ts_batch_offset_for_time(d, len, timestamp_ms, offset) == TS_E_CORRUPT)
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s-%d: malformed records in batch %lld",
                        p->topic, p->id, (long long)base);
    free(d);
    return st;
}

ts_status ts_partition_wait_uploaded(ts_partition *p, int64_t timeout_ms, char *errstr,
                                     size_t errlen)
{
    int64_t deadline = ts_mono_ms() + timeout_ms;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i + 1 < p->nsegs; i++)
            if (!p->segs[i]->remote && p->segs[i]->size) pending++;
        int durable = 1;
        if (p->idx) {
            ts_index_summary sum;
            ts_index_summary_get(p->idx, &sum);
            durable = sum.version == sum.remote_version;
        }
        if ((!pending && durable) || !p->set.remote_enable) break;
        schedule_upload(p);
        if (ts_mono_ms() >= deadline) {
            pthread_mutex_unlock(&p->mu);
            return ts_err_set(errstr, errlen, TS_E_TIMEOUT,
                              "%s-%d: %d segment(s) still awaiting upload after %lld ms", p->topic,
                              p->id, pending, (long long)timeout_ms);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (!durable && !p->upload_inflight) {
            pthread_mutex_unlock(&p->mu);
            char e[256];
            ts_index_sync_remote(p->idx, e, sizeof(e));
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return TS_OK;
}

int64_t ts_part_remote_end(ts_partition *p)
{
    if (!p->idx) return 0;
    ts_index_summary sum;
    ts_index_summary_get(p->idx, &sum);
    int64_t end = sum.count ? sum.end_offset + 1 : 0;
    return sum.log_start_offset > end ? sum.log_start_offset : end;
}

void ts_part_enforce_local_retention(ts_partition *p) { enforce_local_retention(p, 0); }

/* ---- retention ----------------------------------------------------------- */

/* Local retention: closed segments whose remote copy is durable leave local
 * disk when beyond local.retention.bytes / .ms. Oldest first, and never past
 * a segment that is not durable remotely: the local log stays contiguous.
 * `incoming` counts bytes about to be closed (the active segment at a
 * roll), so that after the roll closed bytes stay within the bound.
 * Thread: any; takes the partition lock. */
static void enforce_local_retention(ts_partition *p, uint64_t incoming)
{
    if (!p->idx || !p->set.remote_enable) return;
    int64_t now = ts_now_ms();
    pthread_mutex_lock(&p->mu);
    uint64_t closed = closed_bytes(p) + incoming;
    while (p->nsegs > 1 && !p->deleted) {
        ts_segment *s = p->segs[0];
        int over_bytes = p->set.local_retention_bytes >= 0 &&
                         closed > (uint64_t)p->set.local_retention_bytes;
        int over_time = p->set.local_retention_ms >= 0 && s->max_ts >= 0 &&
                        s->max_ts < now - p->set.local_retention_ms;
        if (!over_bytes && !over_time) break;
        if (!seg_durably_remote(p, s)) break;
        closed -= s->size;
        ts_log_debug("tiering", "%s-%d: segment %020lld leaves local disk (remote copy durable)",
                     p->topic, p->id, (long long)s->base_offset);
        drop_seg(p, 0);
    }
    pthread_mutex_unlock(&p->mu);
}

/* The new log start under total retention (-1: nothing to remove), over
 * units oldest first: remote entries below the first local segment, then
 * local segments; the active segment is never removed. Marks the local
 * segments below it retiring so that no upload starts on them (it would
 * commit an entry below the new log start). p->mu held. */
static int64_t retention_new_start_locked(ts_partition *p, const ts_index_entry *remote,
                                          size_t nremote, int64_t now)
{
    int64_t first_local = p->segs[0]->base_offset;
    uint64_t total = 0;
    for (size_t i = 0; i < nremote; i++)
        if (remote[i].base_offset < first_local) total += remote[i].size_bytes;
    for (size_t i = 0; i < p->nsegs; i++) total += p->segs[i]->size;
    int64_t new_start = -1;
    size_t ri = 0;
    for (; ri < nremote && remote[ri].base_offset < first_local; ri++) {
        int over_b = p->set.retention_bytes >= 0 && total > (uint64_t)p->set.retention_bytes;
        int over_t = p->set.retention_ms >= 0 && remote[ri].max_timestamp >= 0 &&
                     remote[ri].max_timestamp < now - p->set.retention_ms;
        if (!over_b && !over_t) break;
        total -= remote[ri].size_bytes;
        new_start = remote[ri].last_offset + 1;
    }
    int stopped_in_remote = ri < nremote && remote[ri].base_offset < first_local;
    for (size_t li = 0; !stopped_in_remote && li + 1 < p->nsegs; li++) {
        ts_segment *s = p->segs[li];
        int over_b = p->set.retention_bytes >= 0 && total > (uint64_t)p->set.retention_bytes;
        int over_t = p->set.retention_ms >= 0 && s->max_ts >= 0 &&
                     s->max_ts < now - p->set.retention_ms;
        if (!over_b && !over_t) break;
        total -= s->size;
        new_start = s->last_offset + 1;
    }
    for (size_t i = 0; new_start >= 0 && i + 1 < p->nsegs; i++)
        if (p->segs[i]->last_offset < new_start && !p->segs[i]->uploading) p->segs[i]->retiring = 1;
    return new_start;
}

/* Moves the manifest's log start to new_start, then deletes the objects it
 * no longer names. Manifest first (durable), objects after: a crash in
 * between leaves orphans for the sweep, never an entry without its object.
 * A failed delete only warns (the orphan sweep removes them later); a
 * failed manifest update is the error, and the segments stop retiring. */
static ts_status retention_truncate_remote(ts_partition *p, int64_t new_start, char *errstr,
                                           size_t errlen)
{
    char **keys = NULL;
    size_t nkeys = 0;
    char err[1024];
    ts_status st = ts_index_truncate_before(p->idx, new_start, &keys, &nkeys, err, sizeof(err));
    if (st) {
        ts_log_warn("tiering", "%s-%d: retention could not update the manifest: %s", p->topic,
                    p->id, err);
        for (size_t i = 0; i < nkeys; i++) free(keys[i]);
        free(keys);
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < p->nsegs; i++) p->segs[i]->retiring = 0;
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, st, "%s-%d: retention could not update the manifest: %s",
                          p->topic, p->id, err);
    }
    if (nkeys) {
        st = ts_objstore_delete_many(p->eng->os, (const char *const *)keys, nkeys, err,
                                     sizeof(err));
        if (st)
            ts_log_warn("tiering", "%s-%d: retention left %zu orphan object(s): %s", p->topic,
                        p->id, nkeys, err);
        for (size_t i = 0; i < nkeys; i++) {
            ts_chunk_cache_forget_object(p->eng->cache, keys[i]);
            free(keys[i]);
        }
    }
    free(keys); /* an empty list may still be an allocated array */
    return TS_OK;
}

/* Total retention: the oldest data leaves the manifest and the bucket (and
 * local disk) when beyond retention.bytes / retention.ms. The active
 * segment is never removed. */
static ts_status enforce_total_retention(ts_partition *p, char *errstr, size_t errlen)
{
    if (p->set.retention_bytes < 0 && p->set.retention_ms < 0) return TS_OK;
    if (p->replicated && (!p->is_leader || p->fenced)) return TS_OK; /* the leader's duty */
    int64_t now = ts_now_ms();
    ts_index_entry *remote = NULL; /* 64 B each: this runs every tick */
    size_t nremote = 0;
    if (p->idx && ts_index_snapshot_entries(p->idx, &remote, &nremote) != TS_OK)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "%s-%d: retention: out of memory",
                          p->topic, p->id);
    pthread_mutex_lock(&p->mu);
    int64_t new_start = p->deleted ? -1 : retention_new_start_locked(p, remote, nremote, now);
    pthread_mutex_unlock(&p->mu);
    free(remote);
    if (new_start < 0) return TS_OK;
    if (p->idx) {
        ts_status st = retention_truncate_remote(p, new_start, errstr, errlen);
        if (st) return st;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->deleted && p->nsegs > 1 && p->segs[0]->last_offset < new_start &&
           !p->segs[0]->uploading)
        drop_seg(p, 0);
    pthread_mutex_unlock(&p->mu);
    return TS_OK;
}

/* ---- DeleteRecords -------------------------------------------------------- */

/* Marks the closed segments wholly below offset retiring (no upload starts
 * on them) and waits, up to the operation timeout, for an upload of one of
 * them to finish, so that none commits an entry below the new start while
 * the manifest moves. p->mu held. */
static void records_quiesce_locked(ts_partition *p, int64_t offset)
{
    int64_t deadline = ts_mono_ms() + p->eng->set->remote_storage_operation_timeout_ms;
    for (;;) {
        int busy = 0;
        for (size_t i = 0; i + 1 < p->nsegs; i++)
            if (p->segs[i]->last_offset < offset) {
                p->segs[i]->retiring = 1;
                busy |= p->segs[i]->uploading;
            }
        if (!busy || ts_mono_ms() >= deadline || p->deleted) return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
}

/* The checks and the in-memory move; 1 when there is more to do. */
static int records_begin(ts_partition *p, int64_t *offset, int64_t *low, ts_status *st,
                         char *errstr, size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    int64_t leo = p->leo, start = log_start_locked(p);
    if (*offset == -1) *offset = leo;
    *low = start;
    *st = TS_OK;
    if (p->deleted)
        *st = ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    else if (*offset < 0 || *offset > leo)
        *st = ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                         "%s-%d: cannot delete records below %lld: the log ends at %lld",
                         p->topic, p->id, (long long)*offset, (long long)leo);
    int more = !*st && *offset > start;
    if (more) records_quiesce_locked(p, *offset);
    pthread_mutex_unlock(&p->mu);
    return more;
}

ts_status ts_partition_delete_records(ts_partition *p, int64_t offset, int64_t *low_watermark,
                                      char *errstr, size_t errlen)
{
    pthread_mutex_lock(&p->retention_mu);
    ts_status st;
    if (!records_begin(p, &offset, low_watermark, &st, errstr, errlen)) {
        pthread_mutex_unlock(&p->retention_mu);
        return st;
    }
    /* Durable before anyone is told: locally, then in the manifest (which a
     * recovery from the bucket reads), then the objects wholly below go. */
    st = write_records_start(p, offset, errstr, errlen);
    pthread_mutex_lock(&p->mu);
    if (!st) p->records_start = offset;
    int owns_manifest = !p->replicated || (p->is_leader && !p->fenced); /* a follower's is the leader's */
    pthread_mutex_unlock(&p->mu);
    if (!st && p->idx && owns_manifest) st = retention_truncate_remote(p, offset, errstr, errlen);
    pthread_mutex_lock(&p->mu);
    while (!st && !p->deleted && p->nsegs > 1 && p->segs[0]->last_offset < offset &&
           !p->segs[0]->uploading)
        drop_seg(p, 0);
    *low_watermark = log_start_locked(p);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->retention_mu);
    if (!st)
        ts_log_info("tiering", "%s-%d: records below %lld deleted (log start %lld)", p->topic,
                    p->id, (long long)offset, (long long)*low_watermark);
    return st;
}

/* Closed segments wholly below the DeleteRecords start that were still
 * uploading when it moved (their upload is refused: an entry below the log
 * start) leave on a later tick. Local only: the manifest never names them. */
static void drop_below_records_start(ts_partition *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->deleted && p->nsegs > 1 && p->segs[0]->last_offset < p->records_start &&
           !p->segs[0]->uploading && !p->segs[0]->remote)
        drop_seg(p, 0);
    pthread_mutex_unlock(&p->mu);
}

ts_status ts_partition_enforce_retention(ts_partition *p, char *errstr, size_t errlen)
{
    if (p->deleted) return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    pthread_mutex_lock(&p->retention_mu);
    drop_below_records_start(p);
    ts_status st = enforce_total_retention(p, errstr, errlen);
    /* Local retention even when total retention failed: it only drops
     * local copies of durable remote segments. */
    enforce_local_retention(p, 0);
    pthread_mutex_unlock(&p->retention_mu);
    return st;
}

static int collect_key_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    return ts_strlist_add(opaque, key) ? 1 : 0;
}

static int add_ref_cb(const char *key, void *opaque)
{
    return ts_strlist_add(opaque, key) ? 1 : 0;
}

/* Adds every object key named by any manifest version in the bucket
 * (heads and their pieces; the index also drops pieces no head names).
 * Returns -1 if any version cannot be read: then nothing may be swept. */
static int referenced_by_bucket(ts_partition *p, ts_strlist *ref)
{
    char err[1024];
    ts_status st = ts_index_bucket_references(p->idx, add_ref_cb, ref, err, sizeof(err));
    if (st) ts_log_warn("tiering", "%s-%d: orphan sweep skipped: %s", p->topic, p->id, err);
    return st ? -1 : 0;
}

/* Deletes segment objects that no manifest names: leftovers of uploads
 * that crashed between writing the object and committing its entry, or of
 * retention that crashed between the manifest and the deletes. Runs once
 * per partition, from the background thread, while no upload of this
 * partition is in flight (this engine owns the partition's uploads: one
 * engine per data directory). Conservative: only when the local manifest is
 * durable remotely, and never a key that any manifest version still in the
 * bucket names (an older version may be what a recovery would read). */
static void sweep_orphans(ts_partition *p)
{
    char prefix[600], err[1024];
    ts_index_summary sum;
    ts_index_summary_get(p->idx, &sum);
    if (sum.version != sum.remote_version) return;
    ts_strlist ref = {0}, all = {0}, orphans = {0};
    ts_index_entry *ents = NULL;
    size_t nents = 0;
    ts_index_partition_prefix(p->topic, p->id, prefix, sizeof(prefix));
    if (ts_index_snapshot_entries(p->idx, &ents, &nents)) return;
    for (size_t i = 0; i < nents; i++) {
        char key[TS_INDEX_KEY_MAX];
        ts_index_entry_key(p->idx, &ents[i], key, sizeof(key));
        ts_strlist_add(&ref, key);
    }
    free(ents);
    char sprefix[TS_INDEX_KEY_MAX];
    ts_index_segment_prefix(p->topic, p->id, sprefix, sizeof(sprefix));
    ts_status st = TS_OK;
    if (referenced_by_bucket(p, &ref) == 0 &&
        (st = ts_objstore_list(p->eng->os, sprefix, collect_key_cb, &all, err, sizeof(err))) == TS_OK) {
        ts_strlist_sort(&ref); /* 100k named keys x 300k listed at months of retention */
        for (size_t i = 0; i < all.n; i++)
            if (!ts_strlist_sorted_has(&ref, all.v[i])) ts_strlist_add(&orphans, all.v[i]);
        if (orphans.n) {
            ts_log_info("tiering", "%s-%d: deleting %zu orphan object(s) left by an interrupted "
                        "upload or retention", p->topic, p->id, orphans.n);
            st = ts_objstore_delete_many(p->eng->os, (const char *const *)orphans.v, orphans.n,
                                         err, sizeof(err));
        }
    }
    if (st) ts_log_warn("tiering", "%s-%d: orphan sweep: %s", p->topic, p->id, err);
    ts_strlist_free(&ref);
    ts_strlist_free(&all);
    ts_strlist_free(&orphans);
}

/* Background duties. Thread: the engine's background thread. */
void ts_part_tick(ts_partition *p)
{
    char err[1024];
    pthread_mutex_lock(&p->mu);
    if (p->deleted) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    ts_segment *a = active_seg(p);
    /* A time roll never takes local disk past its bound: while uploads lag
     * the active segment keeps growing until the size roll pushes back. */
    if (a->size > 0 && a->created_ms >= 0 && ts_now_ms() - a->created_ms >= p->set.segment_ms &&
        !over_local_bound(p)) {
        if (roll_locked(p, err, sizeof(err)))
            ts_log_warn("tiering", "%s-%d: time-based roll failed: %s", p->topic, p->id, err);
    }
    int need_flush = p->first_unflushed_ms >= 0 &&
                     ts_mono_ms() - p->first_unflushed_ms >= p->set.flush_ms;
    int sweep = 0;
    /* A replica sweeps only as the leader that commits the manifest: a
     * follower would take the leader's upload in flight for an orphan. */
    int may_sweep = !p->replicated || (p->is_leader && p->epoch_committed && !p->fenced);
    if (p->idx && may_sweep && !p->orphans_checked && !p->upload_inflight) {
        /* Hold back uploads while the sweep lists the bucket, so a fresh
         * upload's object is never mistaken for an orphan. */
        p->orphans_checked = 1;
        p->upload_inflight = 1;
        sweep = 1;
    }
    if (!sweep) schedule_upload(p);
    int inflight = p->upload_inflight;
    pthread_mutex_unlock(&p->mu);
    if (sweep) {
        sweep_orphans(p);
        pthread_mutex_lock(&p->mu);
        p->upload_inflight = 0;
        schedule_upload(p);
        inflight = p->upload_inflight;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (need_flush) {
        pthread_mutex_lock(&p->mu);
        if (!p->deleted) schedule_sync(p, 1);
        pthread_mutex_unlock(&p->mu);
    }
    if (p->idx && !inflight && !p->deleted && (!p->replicated || (p->is_leader && !p->fenced))) {
        ts_index_summary sum;
        ts_index_summary_get(p->idx, &sum);
        if (sum.version != sum.remote_version && ts_index_sync_remote(p->idx, err, sizeof(err)))
            ts_log_warn("tiering", "%s-%d: remote manifest still pending: %s", p->topic, p->id, err);
    }
    ts_part_repl_tick(p);
    /* A failure was logged as a WARN where it happened; the next tick retries. */
    (void)ts_partition_enforce_retention(p, err, sizeof(err));
}

uint64_t ts_part_local_bytes(ts_partition *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t b = 0;
    for (size_t i = 0; i < p->nsegs; i++) b += p->segs[i]->size;
    pthread_mutex_unlock(&p->mu);
    return b;
}

/* ---- broker-wide local budget (driven by engine.c) ---------------------- */

/* The oldest local segment may leave under the budget when it is closed,
 * its remote copy is durable, and no upload holds it: the local log stays
 * contiguous and nothing that is not remote is ever deleted. */
int ts_part_trim_oldest(ts_partition *p, int do_drop, int64_t *max_ts)
{
    int ok = 0;
    pthread_mutex_lock(&p->mu);
    if (!p->deleted && p->idx && p->set.remote_enable && p->nsegs > 1) {
        ts_segment *s = p->segs[0];
        ok = seg_durably_remote(p, s);
        if (ok) *max_ts = s->max_ts;
        if (ok && do_drop) {
            ts_log_debug("tiering", "%s-%d: segment %020lld leaves local disk (local budget; "
                         "remote copy durable)", p->topic, p->id, (long long)s->base_offset);
            drop_seg(p, 0);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int ts_part_upload_pending(ts_partition *p)
{
    int pending = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; !p->deleted && p->set.remote_enable && i + 1 < p->nsegs; i++)
        if (!p->segs[i]->remote && p->segs[i]->size) pending = 1;
    pthread_mutex_unlock(&p->mu);
    return pending;
}

uint64_t ts_part_active_bytes(ts_partition *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t b = !p->deleted && p->set.remote_enable && p->nsegs ? active_seg(p)->size : 0;
    pthread_mutex_unlock(&p->mu);
    return b;
}

void ts_part_roll_for_budget(ts_partition *p)
{
    char err[512];
    pthread_mutex_lock(&p->mu);
    if (!p->deleted && !over_local_bound(p) && roll_locked(p, err, sizeof(err)))
        ts_log_warn("tiering", "%s-%d: roll for the local budget failed: %s", p->topic, p->id, err);
    pthread_mutex_unlock(&p->mu);
}

/* ---- placement ----------------------------------------------------------- */

int ts_part_info_cmp_base(const void *a, const void *b)
{
    const ts_segment_info *x = a, *y = b;
    return x->base_offset < y->base_offset ? -1 : x->base_offset > y->base_offset;
}

ts_status ts_part_placement_merge(int32_t partition, ts_segment_info *local, size_t nlocal,
                                  const ts_segment_meta *remote, size_t nremote,
                                  ts_segment_info **rows, size_t *nrows)
{
    ts_segment_info *r = calloc(nlocal + nremote + 1, sizeof(*r));
    if (!r) return TS_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nlocal; i++) r[n++] = local[i];
    for (size_t j = 0; j < nremote; j++) {
        const ts_segment_meta *m = &remote[j];
        ts_segment_info *hit = NULL;
        for (size_t i = 0; i < nlocal; i++)
            if (r[i].base_offset == m->base_offset) hit = &r[i];
        if (!hit) {
            hit = &r[n++];
            hit->partition = partition;
            hit->base_offset = m->base_offset;
            hit->last_offset = m->last_offset;
            hit->first_timestamp = m->first_timestamp;
            hit->max_timestamp = m->max_timestamp;
            hit->size_bytes = m->size_bytes;
            hit->location = TS_LOC_REMOTE;
        } else {
            hit->location = TS_LOC_LOCAL_REMOTE;
        }
        hit->stored_bytes = m->stored_bytes;
        snprintf(hit->object_key, sizeof(hit->object_key), "%s", m->object_key);
    }
    qsort(r, n, sizeof(*r), ts_part_info_cmp_base);
    *rows = r;
    *nrows = n;
    return TS_OK;
}

ts_status ts_partition_placement(ts_partition *p, ts_segment_info **rows, size_t *nrows,
                                 char *errstr, size_t errlen)
{
    ts_segment_meta *remote = NULL;
    size_t nremote = 0;
    if (p->idx && ts_index_snapshot_meta(p->idx, &remote, &nremote) != TS_OK)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    pthread_mutex_lock(&p->mu);
    ts_segment_info *local = calloc(p->nsegs + 1, sizeof(*local));
    size_t nlocal = 0;
    for (size_t i = 0; local && i < p->nsegs; i++) {
        ts_segment *s = p->segs[i];
        if (s->size == 0) continue;
        ts_segment_info *r = &local[nlocal++];
        r->partition = p->id;
        r->base_offset = s->base_offset;
        r->last_offset = s->last_offset;
        r->first_timestamp = s->first_ts;
        r->max_timestamp = s->max_ts;
        r->size_bytes = s->size;
        r->location = TS_LOC_LOCAL;
        r->active = i + 1 == p->nsegs;
    }
    pthread_mutex_unlock(&p->mu);
    ts_status st = local ? ts_part_placement_merge(p->id, local, nlocal, remote, nremote, rows, nrows)
                         : TS_E_NOMEM;
    free(local);
    ts_index_snapshot_free(remote, nremote);
    if (st) return ts_err_set(errstr, errlen, st, "out of memory");
    return TS_OK;
}

void ts_partition_counters_get(ts_partition *p, ts_partition_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (!p) return;
    out->copy_bytes = atomic_load(&p->copy_bytes);
    out->copy_requests = atomic_load(&p->copy_requests);
    out->copy_errors = atomic_load(&p->copy_errors);
    out->fetch_bytes = atomic_load(&p->fetch_bytes);
    out->fetch_requests = atomic_load(&p->fetch_requests);
    out->fetch_errors = atomic_load(&p->fetch_errors);
}
