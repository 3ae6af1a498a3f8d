/*
 * replica.c — a partition as one replica of a replicated partition (the
 * cluster, Kafka's protocol): its role and leader epoch, the leader epoch
 * cache, the high watermark and its checkpoint, truncation, and the gate
 * in front of uploads. The contract of each entry is the plugin ABI's
 * (include/tierstore_plugin.h, minor 2); tiering/README.md says how it is
 * kept.
 *
 * Files in the partition directory (each replaced atomically):
 *   replication-state        "replicated=1\nleader_epoch=E\nleader=0|1\n"
 *   leader-epoch-checkpoint  Kafka's layout (epoch_cache.h); written before
 *                            any batch of a new epoch is, so a crash never
 *                            leaves a batch whose epoch the cache lacks
 *   high-watermark           one decimal offset and a newline; written
 *                            lazily (background tick, close): after a crash
 *                            it may be older, never newer
 *
 * Threads: the entries run on the caller's thread under p->mu (the
 * checkpoint writes of a new epoch included: they are rare, once per
 * leader change); the lazy high-watermark checkpoint runs on the engine's
 * background thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "internal.h"

static void part_file(const ts_partition *p, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", p->dir, name);
}

/* ---- persisted state ------------------------------------------------------ */

static ts_status write_state(ts_partition *p, char *errstr, size_t errlen)
{
    char path[PATH_MAX + 32], txt[96];
    part_file(p, "replication-state", path, sizeof(path));
    int n = snprintf(txt, sizeof(txt), "replicated=1\nleader_epoch=%d\nleader=%d\n",
                     p->role_epoch, p->is_leader);
    return ts_fs_write_atomic(path, txt, (size_t)n, errstr, errlen);
}

/* Reads replication-state; absent: not replicated. */
static void read_state(ts_partition *p)
{
    char path[PATH_MAX + 32];
    uint8_t *d;
    size_t len;
    part_file(p, "replication-state", path, sizeof(path));
    if (ts_fs_read_all(path, 4096, &d, &len, NULL, 0)) return;
    char *txt = realloc(d, len + 1);
    if (!txt) {
        free(d);
        return;
    }
    txt[len] = 0;
    int rep = 0, epoch = -1, leader = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        sscanf(line, "replicated=%d", &rep);
        sscanf(line, "leader_epoch=%d", &epoch);
        sscanf(line, "leader=%d", &leader);
    }
    free(txt);
    p->replicated = rep == 1;
    p->role_epoch = epoch >= 0 ? epoch : -1;
    p->is_leader = p->role_epoch >= 0 && leader == 1;
}

static int64_t read_offset_file(const ts_partition *p, const char *name)
{
    char path[PATH_MAX + 32];
    uint8_t *d;
    size_t len;
    part_file(p, name, path, sizeof(path));
    if (ts_fs_read_all(path, 64, &d, &len, NULL, 0)) return -1;
    char txt[65];
    memcpy(txt, d, len);
    txt[len] = 0;
    free(d);
    char *end;
    long long v = strtoll(txt, &end, 10);
    return end != txt && (*end == '\n' || !*end) && v >= 0 ? v : -1;
}

static void write_hw(ts_partition *p, int64_t hw)
{
    char path[PATH_MAX + 32], txt[32], err[512];
    part_file(p, "high-watermark", path, sizeof(path));
    int n = snprintf(txt, sizeof(txt), "%lld\n", (long long)hw);
    if (ts_fs_write_atomic(path, txt, (size_t)n, err, sizeof(err)))
        ts_log_warn("tiering", "%s-%d: cannot checkpoint the high watermark: %s", p->topic, p->id,
                    err);
}

static ts_status write_epochs(ts_partition *p, char *errstr, size_t errlen)
{
    char path[PATH_MAX + 32];
    part_file(p, "leader-epoch-checkpoint", path, sizeof(path));
    ts_status st = ts_epoch_cache_write(&p->epochs, path, errstr, errlen);
    if (st)
        ts_err_prefix(errstr, errlen, st, "%s-%d: cannot write the leader epoch checkpoint",
                      p->topic, p->id);
    return st;
}

/* The epoch cache becomes the manifest head's leader_epochs starting below
 * end, persisted. p->mu held or p not shared yet. */
static ts_status adopt_manifest_epochs(ts_partition *p, int64_t end, char *errstr,
                                       size_t errlen)
{
    ts_epoch_entry *eps = NULL;
    size_t neps = 0;
    if (ts_index_epochs(p->idx, &eps, &neps))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    ts_epoch_cache_free(&p->epochs);
    p->epochs.v = eps;
    p->epochs.n = p->epochs.cap = neps;
    ts_epoch_cache_truncate_from_end(&p->epochs, end);
    return write_epochs(p, errstr, errlen);
}

ts_status ts_part_repl_open(ts_partition *p, int want_replicated, char *errstr, size_t errlen)
{
    char path[PATH_MAX + 32];
    p->role_epoch = -1;
    read_state(p);
    int converted = want_replicated && !p->replicated;
    if (converted) {
        p->replicated = 1;
        ts_status st = write_state(p, errstr, errlen);
        if (st) return st;
    }
    part_file(p, "leader-epoch-checkpoint", path, sizeof(path));
    ts_status st = ts_epoch_cache_load(&p->epochs, path, errstr, errlen);
    if (st) return st;
    /* A replica recovered from the bucket alone (no local log, no cache)
     * takes the epochs of the tiered range from the manifest. */
    if (p->replicated && !p->epochs.n && p->idx && p->nsegs == 1 && p->segs[0]->size == 0) {
        st = adopt_manifest_epochs(p, p->leo, errstr, errlen);
        if (st) return st;
    }
    /* Entries past the recovered log end name batches that never reached
     * the disk (one starting at the log end is a role assigned there). */
    if (ts_epoch_cache_truncate_from_end(&p->epochs, p->leo + 1)) {
        st = write_epochs(p, errstr, errlen);
        if (st) return st;
    }
    /* Tiered data is committed; a log that was not replicated before was
     * committed as a whole. */
    int64_t hw = converted ? p->leo : read_offset_file(p, "high-watermark");
    int64_t remote_end = ts_part_remote_end(p);
    if (hw < remote_end) hw = remote_end;
    if (hw > p->leo) hw = p->leo;
    p->hw = p->hw_checkpointed = hw < 0 ? 0 : hw;
    if (p->replicated && read_offset_file(p, "high-watermark") != p->hw) write_hw(p, p->hw);
    p->epoch_committed = 0;
    return TS_OK;
}

void ts_part_repl_close(ts_partition *p)
{
    if (p->replicated && !p->deleted && p->hw != p->hw_checkpointed) write_hw(p, p->hw);
    ts_epoch_cache_free(&p->epochs);
}

/* ---- the gate in front of appends and uploads ---------------------------- */

int ts_part_repl_may_upload(ts_partition *p, const ts_segment *s)
{
    if (!p->replicated) return 1;
    return p->is_leader && !p->fenced && p->epoch_committed && s->last_offset < p->hw;
}

ts_status ts_part_repl_stamp_locked(ts_partition *p, uint8_t *data, ts_batch_hdr *hdrs,
                                    const size_t *rel, size_t n, char *errstr, size_t errlen)
{
    if (!p->replicated || p->role_epoch < 0) return TS_OK;
    if (!p->is_leader || p->fenced)
        return ts_err_set(errstr, errlen, TS_E_FENCED,
                          "%s-%d: this replica is %s at leader epoch %d: only the leader "
                          "appends; nothing appended",
                          p->topic, p->id, p->is_leader ? "a fenced leader" : "a follower",
                          p->role_epoch);
    for (size_t i = 0; i < n; i++) {
        ts_batch_set_leader_epoch(data + rel[i], p->role_epoch);
        hdrs[i].leader_epoch = p->role_epoch;
    }
    return TS_OK;
}

ts_status ts_part_repl_learn_locked(ts_partition *p, const ts_batch_hdr *hdrs, size_t n,
                                    char *errstr, size_t errlen)
{
    ts_epoch_cache before = {0};
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
        if (hdrs[i].leader_epoch <= ts_epoch_cache_latest(&p->epochs)) continue;
        if (!changed && ts_epoch_cache_copy(&before, &p->epochs))
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        int r = ts_epoch_cache_assign(&p->epochs, hdrs[i].leader_epoch, hdrs[i].base_offset);
        if (r < 0) {
            ts_epoch_cache_free(&p->epochs);
            p->epochs = before;
            return ts_err_set(errstr, errlen, TS_E_NOMEM,
                              "%s-%d: the leader epoch cache is full", p->topic, p->id);
        }
        changed = 1;
    }
    if (!changed) return TS_OK;
    ts_status st = write_epochs(p, errstr, errlen);
    if (st) {
        ts_epoch_cache_free(&p->epochs);
        p->epochs = before;
        return st;
    }
    ts_epoch_cache_free(&before);
    return TS_OK;
}

void ts_part_repl_fenced(ts_partition *p, const char *why)
{
    pthread_mutex_lock(&p->mu);
    if (!p->fenced)
        ts_log_warn("tiering", "%s-%d: fenced at leader epoch %d, uploads stop until a new role "
                    "is set: %s", p->topic, p->id, p->role_epoch, why ? why : "");
    p->fenced = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

ts_status ts_part_repl_segment_epochs_locked(ts_partition *p, int64_t base, int64_t last,
                                             ts_epoch_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t first = 0, count = 0;
    for (size_t i = 0; i < p->epochs.n; i++) {
        int64_t next = i + 1 < p->epochs.n ? p->epochs.v[i + 1].start_offset : INT64_MAX;
        if (next <= base || p->epochs.v[i].start_offset > last) continue;
        if (!count) first = i;
        count++;
    }
    if (!count) return TS_OK;
    ts_epoch_entry *v = malloc(count * sizeof(*v));
    if (!v) return TS_E_NOMEM;
    memcpy(v, &p->epochs.v[first], count * sizeof(*v));
    if (v[0].start_offset < base) v[0].start_offset = base;
    *out = v;
    *n = count;
    return TS_OK;
}

static void start_epoch_commit_locked(ts_partition *p);

/* ---- entries ---------------------------------------------------------------- */

static ts_status refuse_unreplicated(ts_partition *p, const char *what, char *errstr,
                                     size_t errlen)
{
    return ts_err_set(errstr, errlen, TS_E_INVAL,
                      "%s-%d: %s needs a partition opened as a replica (TSP_PART_REPLICATED)",
                      p->topic, p->id, what);
}

ts_status ts_partition_set_role(ts_partition *p, int32_t leader_epoch, int is_leader,
                                char *errstr, size_t errlen)
{
    if (!p || leader_epoch < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "set_role: invalid leader epoch %d",
                          leader_epoch);
    pthread_mutex_lock(&p->mu);
    ts_status st = TS_OK;
    if (p->deleted) st = ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    else if (!p->replicated) st = refuse_unreplicated(p, "set_role", errstr, errlen);
    else if (leader_epoch < p->role_epoch)
        st = ts_err_set(errstr, errlen, TS_E_FENCED,
                        "%s-%d: leader epoch %d is older than the epoch %d already set", p->topic,
                        p->id, leader_epoch, p->role_epoch);
    if (st || (leader_epoch == p->role_epoch && !!is_leader == p->is_leader && !p->fenced)) {
        pthread_mutex_unlock(&p->mu);
        return st;
    }
    int32_t old_epoch = p->role_epoch;
    int old_leader = p->is_leader;
    p->role_epoch = leader_epoch;
    p->is_leader = !!is_leader;
    st = write_state(p, errstr, errlen);
    if (!st && is_leader && ts_epoch_cache_assign(&p->epochs, leader_epoch, p->leo) > 0)
        st = write_epochs(p, errstr, errlen);
    if (st) {
        p->role_epoch = old_epoch;
        p->is_leader = old_leader;
        pthread_mutex_unlock(&p->mu);
        return st;
    }
    p->fenced = 0;
    p->epoch_committed = 0;
    p->next_refresh_ms = 0;
    start_epoch_commit_locked(p); /* a leader's first commit at its epoch, at once */
    pthread_mutex_unlock(&p->mu);
    ts_log_info("tiering", "%s-%d: %s at leader epoch %d", p->topic, p->id,
                is_leader ? "leader" : "follower", leader_epoch);
    return TS_OK;
}

ts_status ts_partition_epoch_end_offset(ts_partition *p, int32_t epoch, int32_t *found_epoch,
                                        int64_t *end_offset, char *errstr, size_t errlen)
{
    if (!p || !found_epoch || !end_offset)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "epoch_end_offset: invalid argument");
    pthread_mutex_lock(&p->mu);
    ts_epoch_cache_end_offset(&p->epochs, epoch, p->leo, found_epoch, end_offset);
    pthread_mutex_unlock(&p->mu);
    return TS_OK;
}

ts_status ts_partition_set_high_watermark(ts_partition *p, int64_t hw, char *errstr,
                                          size_t errlen)
{
    if (!p || hw < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "set_high_watermark: invalid offset %lld",
                          (long long)hw);
    pthread_mutex_lock(&p->mu);
    ts_status st = TS_OK;
    if (p->deleted) st = ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    else if (p->replicated) {
        if (hw > p->leo) hw = p->leo;
        if (hw > p->hw) {
            p->hw = hw;
            ts_part_schedule_upload(p); /* a closed segment may now lie below it */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

/* ---- truncation ------------------------------------------------------------ */

/* Index of the segment holding offset (the last with base <= offset). */
static size_t seg_for_offset(ts_partition *p, int64_t offset)
{
    size_t i = p->nsegs - 1;
    while (i > 0 && p->segs[i]->base_offset > offset) i--;
    return i;
}

ts_status ts_part_batch_holding(ts_partition *p, ts_segment *s, int64_t offset, uint64_t *pos,
                                int64_t *base, char *errstr, size_t errlen)
{
    uint64_t at = ts_segment_lookup_pos(s, offset);
    while (at < s->size) {
        uint8_t hb[TS_BATCH_HEADER_SIZE];
        ts_batch_hdr h;
        if (ts_fs_read_full(s->fd, hb, sizeof(hb), (int64_t)at) != (ssize_t)sizeof(hb) ||
            ts_batch_parse_header(hb, sizeof(hb), (size_t)p->set.max_batch, &h, NULL, 0))
            return ts_err_set(errstr, errlen, TS_E_IO, "%s-%d: cannot read the batch at byte "
                              "%llu of %s", p->topic, p->id, (unsigned long long)at, s->path);
        if (ts_batch_last_offset(&h) >= offset) {
            *pos = at;
            *base = h.base_offset;
            return TS_OK;
        }
        at += ts_batch_total_size(&h);
    }
    *pos = s->size;
    *base = s->last_offset + 1;
    return TS_OK;
}

/* Cuts segs[i] at byte pos (> 0) and reopens it as the active segment. */
static ts_status cut_segment(ts_partition *p, size_t i, uint64_t pos, char *errstr,
                             size_t errlen)
{
    ts_segment *s = p->segs[i], *n;
    if (ftruncate(s->fd, (off_t)pos) != 0 || ts_fs_fsync_fd(s->fd) != 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot truncate %s: %s",
                          s->path, strerror(errno));
    ts_status st = ts_segment_open(p->dir, s->base_offset, 1, 1, (uint32_t)p->set.index_interval,
                                   (size_t)p->set.max_batch, &n, errstr, errlen);
    if (st) return st;
    atomic_fetch_sub(&p->eng->local_bytes, (long long)s->size - (long long)n->size);
    p->segs[i] = n;
    ts_segment_unref(s);
    return TS_OK;
}

/* Removes everything from byte pos of segs[i] on (pos 0: the whole segment)
 * and every later segment; the log ends at new_end after. p->mu held. */
static ts_status cut_log_locked(ts_partition *p, size_t i, uint64_t pos, int64_t new_end,
                                char *errstr, size_t errlen)
{
    while (p->nsegs > i + 1) ts_part_remove_seg_now(p, p->nsegs - 1);
    ts_status st;
    if (pos > 0) {
        st = cut_segment(p, i, pos, errstr, errlen);
    } else {
        ts_part_remove_seg_now(p, i);
        if (p->nsegs) {
            ts_segment *last = p->segs[p->nsegs - 1];
            if (!last->closed && (st = ts_segment_seal(last, errstr, errlen))) return st;
        }
        ts_segment *n;
        st = ts_segment_create(p->dir, new_end, (uint32_t)p->set.index_interval, &n, errstr,
                               errlen);
        if (!st && ts_part_push_seg(p, n)) {
            ts_segment_unref(n);
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        p->dir_gen++;
    }
    if (st) return st;
    p->leo = new_end;
    int64_t active_base = p->segs[p->nsegs - 1]->base_offset;
    if (p->recovery_point > active_base) {
        p->recovery_point = active_base;
        ts_part_write_recovery_point(p, active_base);
    }
    /* The unlinks must stick: removed batches coming back after a crash
     * would be a log the epoch cache no longer describes. */
    return ts_fs_fsync_dir(p->dir, errstr, errlen);
}

/* Waits until no upload holds a segment at index >= i. p->mu held. */
static void wait_uploads_from(ts_partition *p, int64_t offset)
{
    for (;;) {
        int busy = 0;
        for (size_t j = seg_for_offset(p, offset); j < p->nsegs; j++) busy |= p->segs[j]->uploading;
        if (!busy || p->deleted) return;
        pthread_cond_wait(&p->cv, &p->mu);
    }
}

static ts_status truncate_locked(ts_partition *p, int64_t offset, char *errstr, size_t errlen)
{
    int64_t remote_end = ts_part_remote_end(p);
    int64_t floor = p->hw > remote_end ? p->hw : remote_end;
    if (offset < floor)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s-%d: cannot truncate to %lld: offsets below %lld are committed "
                          "(high watermark %lld, remote end %lld)",
                          p->topic, p->id, (long long)offset, (long long)floor,
                          (long long)p->hw, (long long)remote_end);
    if (offset >= p->leo) return TS_OK;
    wait_uploads_from(p, offset);
    if (p->deleted) return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    size_t i = seg_for_offset(p, offset);
    uint64_t pos = 0;
    int64_t new_end = p->leo;
    ts_status st = ts_part_batch_holding(p, p->segs[i], offset, &pos, &new_end, errstr, errlen);
    if (st) return st;
    if (new_end < floor)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s-%d: cannot truncate to %lld: the batch holding it starts at %lld, "
                          "below the committed offset %lld", p->topic, p->id, (long long)offset,
                          (long long)new_end, (long long)floor);
    st = cut_log_locked(p, i, pos, new_end, errstr, errlen);
    if (st) return st;
    if (ts_epoch_cache_truncate_from_end(&p->epochs, new_end)) st = write_epochs(p, errstr, errlen);
    ts_log_info("tiering", "%s-%d: truncated to offset %lld (asked %lld)", p->topic, p->id,
                (long long)new_end, (long long)offset);
    return st;
}

ts_status ts_partition_truncate(ts_partition *p, int64_t offset, int64_t *new_end, char *errstr,
                                size_t errlen)
{
    if (!p || offset < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "truncate: invalid offset %lld",
                          (long long)offset);
    pthread_mutex_lock(&p->retention_mu); /* no retention pass drops segments meanwhile */
    pthread_mutex_lock(&p->mu);
    ts_status st;
    if (p->deleted) st = ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    else if (!p->replicated) st = refuse_unreplicated(p, "truncate", errstr, errlen);
    else st = truncate_locked(p, offset, errstr, errlen);
    if (new_end) *new_end = p->leo;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->retention_mu);
    return st;
}

/* ---- the leader's first commit, the follower's refresh -------------------- */

/* Marks the closed segments whose whole range the manifest covers as
 * remote (and the others not: a reload may have dropped entries this
 * replica committed only locally). p->mu held. */
static void mark_covered_locked(ts_partition *p)
{
    for (size_t i = 0; i + 1 < p->nsegs; i++) {
        ts_segment *s = p->segs[i];
        if (!s->uploading && s->size)
            s->remote = ts_index_covers(p->idx, s->base_offset, s->last_offset, 0);
    }
}

/* A new leader's first commit (upload pool): the bucket's newest manifest
 * becomes this replica's (it may have been written by earlier leaders),
 * then a head at the new epoch is put, which fences older leaders' later
 * commits. Runs with upload_inflight set, so no upload races it. */
static void epoch_commit_job(void *arg)
{
    ts_partition *p = arg;
    char err[1024] = "";
    pthread_mutex_lock(&p->mu);
    int32_t epoch = p->role_epoch;
    int run = p->is_leader && !p->fenced && !p->deleted;
    pthread_mutex_unlock(&p->mu);
    ts_status st = TS_E_CLOSED;
    if (run) {
        st = ts_index_load_remote(p->idx, err, sizeof(err));
        if (st == TS_E_NOT_FOUND) st = TS_OK; /* nothing tiered yet */
        if (!st) st = ts_index_commit_epoch(p->idx, epoch, err, sizeof(err));
    }
    pthread_mutex_lock(&p->mu);
    p->upload_inflight = 0;
    if (!st && p->role_epoch == epoch && p->is_leader) {
        p->epoch_committed = 1;
        mark_covered_locked(p);
        ts_log_info("tiering", "%s-%d: manifest committed at leader epoch %d, uploads continue at "
                    "offset %lld", p->topic, p->id, epoch, (long long)ts_part_remote_end(p));
    } else if (st == TS_E_FENCED) {
        p->fenced = 1;
        ts_log_warn("tiering", "%s-%d: fenced at leader epoch %d: %s", p->topic, p->id, epoch, err);
    } else if (st && st != TS_E_CLOSED) {
        ts_log_warn("tiering", "%s-%d: the first manifest commit at leader epoch %d failed (the "
                    "next tick retries): %s", p->topic, p->id, epoch, err);
    }
    ts_part_schedule_upload(p);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Starts the first commit of a new leader when due. p->mu held. */
static void start_epoch_commit_locked(ts_partition *p)
{
    if (!p->replicated || !p->is_leader || p->fenced || p->epoch_committed || p->deleted) return;
    if (!p->idx) {
        p->epoch_committed = 1; /* nothing remote to fence */
        return;
    }
    if (p->upload_inflight) return; /* the next tick retries */
    p->upload_inflight = 1;
    if (ts_pool_submit(p->eng->upload_pool, epoch_commit_job, p) != TS_OK) p->upload_inflight = 0;
}

/* A closed segment the manifest does not cover yet: what a re-read may
 * change. p->mu held. */
static int awaits_tiering_locked(ts_partition *p)
{
    for (size_t i = 0; i + 1 < p->nsegs; i++)
        if (!p->segs[i]->remote && p->segs[i]->size) return 1;
    return 0;
}

/* A follower re-reads the manifest the leader commits, so local retention
 * can drop what the leader tiered: one LIST per interval (and the head and
 * new pieces when it changed), only while some closed segment is not known
 * tiered. Background thread. */
static void follower_refresh(ts_partition *p)
{
    char err[1024];
    pthread_mutex_lock(&p->mu);
    int64_t now = ts_mono_ms();
    int due = p->replicated && !p->is_leader && p->idx && !p->deleted && !p->upload_inflight &&
              now >= p->next_refresh_ms && awaits_tiering_locked(p);
    if (due) {
        p->next_refresh_ms = now + p->eng->task_interval_ms;
        p->upload_inflight = 1; /* no epoch commit or upload meanwhile */
    }
    pthread_mutex_unlock(&p->mu);
    if (!due) return;
    int changed = 0;
    ts_status st = ts_index_refresh_remote(p->idx, &changed, err, sizeof(err));
    if (st && st != TS_E_NOT_FOUND)
        ts_log_warn("tiering", "%s-%d: follower could not re-read the manifest: %s", p->topic,
                    p->id, err);
    pthread_mutex_lock(&p->mu);
    p->upload_inflight = 0;
    if (!st) mark_covered_locked(p);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (!st) ts_part_enforce_local_retention(p);
}

/* ---- background ---------------------------------------------------------- */

void ts_part_repl_tick(ts_partition *p)
{
    pthread_mutex_lock(&p->mu);
    start_epoch_commit_locked(p);
    int64_t hw = p->hw;
    int due = p->replicated && !p->deleted && hw != p->hw_checkpointed;
    pthread_mutex_unlock(&p->mu);
    follower_refresh(p);
    if (!due) return;
    write_hw(p, hw);
    pthread_mutex_lock(&p->mu);
    p->hw_checkpointed = hw;
    pthread_mutex_unlock(&p->mu);
}

/* ---- reset_local ------------------------------------------------------------ */

/* The bucket's manifest (re-read) must cover every offset below offset. */
static ts_status reset_check_remote(ts_partition *p, int64_t offset, char *errstr,
                                    size_t errlen)
{
    char err[1024] = "";
    ts_status st = p->idx ? ts_index_load_remote(p->idx, err, sizeof(err)) : TS_E_NOT_FOUND;
    if (st && st != TS_E_NOT_FOUND)
        return ts_err_set(errstr, errlen, st, "%s-%d: reset_local cannot re-read the manifest: %s",
                          p->topic, p->id, err);
    if (offset == 0) return TS_OK;
    int covered = p->idx && ts_part_remote_end(p) >= offset &&
                  ts_index_covers(p->idx, 0, offset - 1, 1);
    if (!covered)
        return ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                          "%s-%d: cannot restart the local log at %lld: the bucket's manifest "
                          "covers offsets only up to %lld; nothing changed",
                          p->topic, p->id, (long long)offset, (long long)ts_part_remote_end(p));
    return TS_OK;
}

/* Drops every local segment and starts an empty one at offset; the epoch
 * cache becomes the manifest's epochs below offset. p->mu held. */
static ts_status reset_log_locked(ts_partition *p, int64_t offset, char *errstr, size_t errlen)
{
    while (p->removes_pending) pthread_cond_wait(&p->cv, &p->mu); /* same names may come back */
    while (p->nsegs) ts_part_remove_seg_now(p, p->nsegs - 1);
    ts_segment *n;
    ts_status st = ts_segment_create(p->dir, offset, (uint32_t)p->set.index_interval, &n, errstr,
                                     errlen);
    if (!st && ts_part_push_seg(p, n)) {
        ts_segment_unref(n);
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    if (st) return st;
    p->dir_gen++;
    p->leo = offset;
    p->hw = offset;
    p->recovery_point = offset;
    ts_part_write_recovery_point(p, offset);
    p->unflushed_msgs = 0;
    p->first_unflushed_ms = -1;
    ts_epoch_cache_free(&p->epochs);
    st = p->idx ? adopt_manifest_epochs(p, offset, errstr, errlen) : write_epochs(p, errstr, errlen);
    write_hw(p, offset);
    p->hw_checkpointed = offset;
    if (!st) st = ts_fs_fsync_dir(p->dir, errstr, errlen); /* the dropped log stays dropped */
    return st;
}

ts_status ts_partition_reset_local(ts_partition *p, int64_t offset, char *errstr, size_t errlen)
{
    if (!p || offset < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "reset_local: invalid offset %lld",
                          (long long)offset);
    if (!p->replicated) return refuse_unreplicated(p, "reset_local", errstr, errlen);
    pthread_mutex_lock(&p->retention_mu);
    pthread_mutex_lock(&p->mu);
    ts_status st = p->is_leader ? ts_err_set(errstr, errlen, TS_E_INVAL,
                                             "%s-%d: reset_local is for a follower, this replica "
                                             "leads", p->topic, p->id)
                                : TS_OK;
    while (!st && p->upload_inflight && !p->deleted) pthread_cond_wait(&p->cv, &p->mu);
    if (!st) p->upload_inflight = 1; /* no refresh re-reads the manifest meanwhile */
    pthread_mutex_unlock(&p->mu);
    if (!st) st = reset_check_remote(p, offset, errstr, errlen);
    pthread_mutex_lock(&p->mu);
    if (!st && p->deleted) st = ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    if (!st) st = reset_log_locked(p, offset, errstr, errlen);
    p->upload_inflight = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->retention_mu);
    if (!st)
        ts_log_info("tiering", "%s-%d: local log restarted empty at offset %lld (below it: the "
                    "bucket)", p->topic, p->id, (long long)offset);
    return st;
}
