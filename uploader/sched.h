/*
 * sched.h — the upload scheduler: the engine's upload workers, and one
 * ordered queue per partition that the partition hands its closed segments
 * to.
 *
 * Why a queue per partition: one partition's backlog (a burst of rolls, an
 * outage that just ended) should drain at the speed of every upload thread,
 * not one core's zstd. So up to max_inflight segments of a partition build
 * their objects at once (read, compress, PUT: ts_uploader_build_object),
 * while their manifest entries still join in offset order: a segment whose
 * object is finished waits, holding it, until every segment handed over
 * before it is committed; when the oldest one finishes, a committer (on a
 * ts-commit worker, not the build worker) commits it and every finished
 * one behind it as one group (one manifest version, one head PUT:
 * ts_uploader_commit_group), then the next run (one committer at a time
 * per queue, outside the queue lock).
 *
 * Why commits run apart: a group's head PUT is a store round trip as long
 * as an object PUT. Run on the build worker, and with the group's slots
 * counted against max_inflight, nothing of the partition would build
 * during it, and with S3-like latencies half the drain time went to head
 * PUTs. So a finished (built) slot stops counting against max_inflight;
 * the built-but-uncommitted ones are bounded apart, at 2 x max_inflight
 * (the group committing and the one finishing during its head PUT; with
 * 1 x, builds and commits of equal latency lock into groups of one), so
 * at most 3 x max_inflight objects wait uncommitted: the orphans a crash
 * may leave for the sweep. So the next builds run while a group commits.
 *
 * Failures: when the oldest segment fails (its object or its commit), the
 * queue "drains": the segments behind it are not committed, their objects
 * are deleted as each finishes (a crash meanwhile leaves orphans, which the
 * engine's sweep collects), and nothing new starts until the queue is empty
 * and the backoff has passed; the owner then hands the same segments over
 * again, oldest first (new keys: objects are immutable). Backoff after n
 * consecutive failures: 100 ms * 2^min(n, 9), capped by backoff_max_ms; a
 * failure that retrying cannot cure (not retriable, other than TS_E_IO and
 * TS_E_NOSPACE) waits the cap. TS_E_FENCED, TS_E_CLOSED and TS_E_NOT_FOUND
 * are outcomes, not failures: no backoff.
 *
 * What the queue does not know: which segments to hand over, when, or from
 * which position (the owner decides, under its own lock, through room() and
 * submit()); partitions, replicas or epochs beyond what a ts_upload_req
 * carries.
 *
 * Threads and locks: submit/room from any thread (tiering calls them under
 * the partition lock: partition.mu -> queue mu); the ops callbacks run on
 * an upload (prepare, room) or commit (cancelled, done) worker with no
 * queue lock held, done() strictly in submission order, exactly once per
 * submitted segment.
 */
#ifndef TS_UPLOADER_SCHED_H
#define TS_UPLOADER_SCHED_H

#include <stdint.h>
#include "common/pool.h"
#include "uploader/uploader.h"

typedef struct ts_upload_sched ts_upload_sched;
typedef struct ts_upload_queue ts_upload_queue;

/* Starts `threads` upload workers ("ts-upload-<i>": builds) and as many
 * commit workers ("ts-commit-<i>": group commits, mostly a head PUT's
 * wait). */
ts_status ts_upload_sched_create(int threads, ts_upload_sched **out, char *errstr, size_t errlen);
/* Runs every queued job to completion (their done callbacks included), then
 * joins the workers. NULL: no-op. */
void ts_upload_sched_destroy(ts_upload_sched *s);
int ts_upload_sched_threads(const ts_upload_sched *s);
/* The workers, for other work that belongs on upload threads (a new
 * leader's first manifest commit). */
ts_pool *ts_upload_sched_pool(ts_upload_sched *s);

/* How one handed-over segment ended. */
typedef struct ts_upload_result {
    void *item;            /* as submitted */
    ts_status st;          /* TS_OK: committed and remote-durable */
    const char *err;       /* why, when st != TS_OK */
    int committed;         /* the entry is in the manifest (st may say "remote pending") */
    int discarded;         /* not attempted to the end: an earlier segment failed, or the
                            * owner cancelled; its object (if any) was deleted */
    uint64_t stored_bytes; /* committed: the object's size */
    int failures;          /* consecutive failures so far (st a failure: including this one) */
    int64_t retry_at_ms;   /* monotonic time new uploads may start (0: now) */
} ts_upload_result;

typedef struct ts_upload_queue_ops {
    /* Before the object is built: the owner's last look (may set
     * req->start_pos, the only field it may change). Non-OK: the segment
     * is not uploaded and done() gets this status. */
    ts_status (*prepare)(void *owner, void *item, ts_upload_req *req, char *errstr,
                         size_t errlen);
    /* Before an entry is committed: non-zero discards it (and every one
     * behind it) with TS_E_CLOSED. */
    int (*cancelled)(void *owner);
    /* Once per segment, in submission order. */
    void (*done)(void *owner, const ts_upload_result *r);
    /* A segment's object finished building (its done() comes later):
     * room() may have grown, the owner may hand over more now. NULL: not
     * called. */
    void (*room)(void *owner);
} ts_upload_queue_ops;

/* A queue for one partition's segments. max_inflight bounds the segments
 * building at once (<= 0: the scheduler's thread count), and twice as many
 * may wait built, not yet committed; os and idx must outlive it, as must
 * ops and owner. */
ts_status ts_upload_queue_create(ts_upload_sched *s, ts_objstore *os, ts_index *idx,
                                 int max_inflight, int64_t backoff_max_ms,
                                 const ts_upload_queue_ops *ops, void *owner,
                                 ts_upload_queue **out, char *errstr, size_t errlen);
/* The queue must be idle (no segment handed over and not done). NULL: no-op. */
void ts_upload_queue_destroy(ts_upload_queue *q);

/* How many more segments may be handed over now: 0 while max_inflight
 * build or 3 x max_inflight are not done, while a failure drains the
 * queue, or during the backoff after one. */
int ts_upload_queue_room(ts_upload_queue *q);
/* Hands over the next segment (the one after the previous submission, in
 * offset order; the caller checked room()). req is copied with its strings
 * and epochs. TS_E_BACKPRESSURE when room() is 0. On failure nothing was
 * queued and done() is not called. */
ts_status ts_upload_queue_submit(ts_upload_queue *q, const ts_upload_req *req, void *item);
/* Monotonic time the backoff ends (0: none). */
int64_t ts_upload_queue_retry_at(ts_upload_queue *q);

#endif
