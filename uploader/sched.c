/*
 * sched.c — the upload workers and the per-partition ordered queues (see
 * sched.h for the contract).
 *
 * A queue is a list of slots in submission order. A slot's job builds its
 * object on a ts-upload worker and marks the slot finished; the build that
 * finishes the head of a queue without a committer hands a commit job to
 * a ts-commit worker (so the group's head PUT never holds a build worker),
 * which walks the list from the head while the head is finished: the run
 * of finished slots there commits
 * as one group (one manifest version, one head PUT: objects that finished
 * together do not pay one PUT round trip each), or, while draining,
 * the head is discarded; pop, report, in order. So commits never run
 * concurrently for one partition and never out of order, and no worker
 * ever waits for another: a later segment that finishes first just leaves
 * its slot finished.
 */
#include "uploader/sched.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"

struct ts_upload_sched {
    ts_pool *pool;             /* builds ("ts-upload") */
    ts_pool *commits;          /* group commits ("ts-commit"), as many threads */
    pthread_mutex_t mu;        /* guards commits_open against destroy */
    int commits_open;          /* 0 once destroy began: builds commit inline */
    int threads;
};

enum { SLOT_RUNNING, SLOT_BUILT, SLOT_FAILED };

typedef struct slot {
    struct slot *next;
    ts_upload_queue *q;
    void *item;
    ts_upload_req req;         /* strings and epochs below are its own copies */
    char *topic, *path;
    ts_index_epoch *epochs;
    int state;                 /* SLOT_*, under q->mu */
    ts_status st;              /* SLOT_FAILED: why */
    ts_segment_meta meta;      /* SLOT_BUILT: the durable, uncommitted object */
    char err[1024];
} slot;

struct ts_upload_queue {
    ts_upload_sched *sched;
    ts_objstore *os;
    ts_index *idx;
    const ts_upload_queue_ops *ops;
    void *owner;
    int max_inflight;          /* slots building at once */
    int max_slots;             /* slots not done (building + built): 3 x max_inflight */
    int64_t backoff_max_ms;
    pthread_mutex_t mu;        /* guards everything below */
    slot *head, *tail;
    int n;                     /* slots handed over, not yet done */
    int building;              /* of them, not finished building (SLOT_RUNNING) */
    int committing;            /* a worker is walking the list */
    int draining;              /* the head failed: what follows is discarded */
    int failures;              /* consecutive */
    int64_t retry_at_ms;       /* monotonic; 0: no backoff */
    /* The committer's own (max_slots each): a group and its outcomes. */
    ts_upload_commit *group;
    ts_upload_result *results;
};

ts_status ts_upload_sched_create(int threads, ts_upload_sched **out, char *errstr, size_t errlen)
{
    ts_upload_sched *s = calloc(1, sizeof(*s));
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (upload scheduler)");
    s->threads = threads > 0 ? threads : 1;
    pthread_mutex_init(&s->mu, NULL);
    ts_status st = ts_pool_create("ts-upload", s->threads, 0, &s->pool);
    if (!st) st = ts_pool_create("ts-commit", s->threads, 0, &s->commits);
    if (st) {
        ts_pool_destroy(s->pool);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ts_err_set(errstr, errlen, st, "cannot start %d upload workers", threads);
    }
    s->commits_open = 1;
    *out = s;
    return TS_OK;
}

/* The committers go first: their queued commits run to the end (a done()
 * may still hand a build to the open build pool); a build that finishes
 * after that commits on its own worker. Then the builds, whose new
 * hand-overs the stopping pool refuses. */
void ts_upload_sched_destroy(ts_upload_sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->commits_open = 0;
    pthread_mutex_unlock(&s->mu);
    ts_pool_destroy(s->commits);
    ts_pool_destroy(s->pool);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ts_upload_sched_threads(const ts_upload_sched *s) { return s->threads; }

ts_pool *ts_upload_sched_pool(ts_upload_sched *s) { return s->pool; }

ts_status ts_upload_queue_create(ts_upload_sched *s, ts_objstore *os, ts_index *idx,
                                 int max_inflight, int64_t backoff_max_ms,
                                 const ts_upload_queue_ops *ops, void *owner,
                                 ts_upload_queue **out, char *errstr, size_t errlen)
{
    ts_upload_queue *q = calloc(1, sizeof(*q));
    if (!q) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (upload queue)");
    q->sched = s;
    q->os = os;
    q->idx = idx;
    q->ops = ops;
    q->owner = owner;
    q->max_inflight = max_inflight > 0 ? max_inflight : s->threads;
    q->max_slots = 3 * q->max_inflight;
    q->backoff_max_ms = backoff_max_ms;
    pthread_mutex_init(&q->mu, NULL);
    q->group = calloc((size_t)q->max_slots, sizeof(*q->group));
    q->results = calloc((size_t)q->max_slots, sizeof(*q->results));
    if (!q->group || !q->results) {
        ts_upload_queue_destroy(q);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (upload queue of %d)",
                          q->max_slots);
    }
    *out = q;
    return TS_OK;
}

void ts_upload_queue_destroy(ts_upload_queue *q)
{
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    free(q->group);
    free(q->results);
    free(q);
}

/* Builds may start while fewer than max_inflight run and fewer than
 * max_slots are not done: 2 x max_inflight built (the group committing and
 * the one finishing during its head PUT) beside max_inflight building
 * (the orphans a crash may leave). q->mu held. */
static int room_locked(ts_upload_queue *q)
{
    int room = q->max_inflight - q->building;
    if (room > q->max_slots - q->n) room = q->max_slots - q->n;
    if (q->draining || (q->retry_at_ms && ts_mono_ms() < q->retry_at_ms)) room = 0;
    return room > 0 ? room : 0;
}

int ts_upload_queue_room(ts_upload_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int room = room_locked(q);
    pthread_mutex_unlock(&q->mu);
    return room;
}

int64_t ts_upload_queue_retry_at(ts_upload_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int64_t t = q->retry_at_ms;
    pthread_mutex_unlock(&q->mu);
    return t;
}

static void slot_free(slot *s)
{
    if (!s) return;
    ts_segment_meta_clear(&s->meta);
    free(s->topic);
    free(s->path);
    free(s->epochs);
    free(s);
}

static slot *slot_new(ts_upload_queue *q, const ts_upload_req *req, void *item)
{
    slot *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->q = q;
    s->item = item;
    s->req = *req;
    s->topic = strdup(req->topic);
    s->path = strdup(req->segment_path);
    if (req->nepochs) s->epochs = malloc(req->nepochs * sizeof(*s->epochs));
    if (!s->topic || !s->path || (req->nepochs && !s->epochs)) {
        slot_free(s);
        return NULL;
    }
    if (req->nepochs) memcpy(s->epochs, req->epochs, req->nepochs * sizeof(*s->epochs));
    s->req.topic = s->topic;
    s->req.segment_path = s->path;
    s->req.epochs = s->epochs;
    s->state = SLOT_RUNNING;
    return s;
}

/* ---- the committer ------------------------------------------------------ */

/* Counts a failure and sets the backoff. q->mu held. */
static void note_failure(ts_upload_queue *q, ts_status st)
{
    q->failures++;
    int64_t backoff = 100LL << (q->failures < 9 ? q->failures : 9);
    /* A refusal that cannot succeed by retrying (the index rejects the
     * entry, the segment is corrupt) waits the longest: an operator has to
     * look, and the log says why. */
    if (!ts_status_is_retriable(st) && st != TS_E_IO && st != TS_E_NOSPACE)
        backoff = q->backoff_max_ms;
    if (backoff > q->backoff_max_ms) backoff = q->backoff_max_ms;
    q->retry_at_ms = ts_mono_ms() + backoff;
}

static int is_outcome(ts_status st)
{
    return st == TS_E_FENCED || st == TS_E_CLOSED || st == TS_E_NOT_FOUND;
}

/* An earlier attempt's entry for this very range (TS_E_EXISTS, or a
 * retry of a segment already in the manifest): the segment is committed
 * all the same. */
static void check_committed(ts_upload_queue *q, const slot *s, ts_upload_result *r)
{
    if (r->committed || r->st == TS_E_FENCED) return;
    ts_segment_meta chk;
    memset(&chk, 0, sizeof(chk));
    if (ts_index_lookup_offset(q->idx, s->req.base_offset, &chk) == TS_OK &&
        chk.base_offset == s->req.base_offset) {
        r->committed = 1;
        r->stored_bytes = chk.stored_bytes;
    }
    ts_segment_meta_clear(&chk);
}

/* Settles the head slot s that cannot commit (it failed, or an earlier
 * one did: draining) outside the lock: reports why, deleting a built
 * object. */
static void settle_one(ts_upload_queue *q, slot *s, int draining, ts_upload_result *r)
{
    r->item = s->item;
    r->err = s->err;
    r->st = s->st;
    if (!draining) { /* SLOT_FAILED */
        check_committed(q, s, r);
        return;
    }
    if (s->state == SLOT_BUILT) {
        ts_uploader_discard_object(q->os, &s->meta);
        if (!s->st) {
            s->st = r->st = TS_E_CLOSED;
            ts_err_set(s->err, sizeof(s->err), TS_E_CLOSED,
                       "an earlier segment failed; retried after it");
        }
    }
    r->discarded = 1;
}

/* Settles the finished head of the queue outside the lock: the n >= 1
 * built slots from s commit as one group (one manifest version, one head
 * put), or the head alone reports why it cannot (n == 0: it failed, or
 * draining). Fills r[0..m) for the m slots settled (m >= 1, the first m
 * from s) and returns m; the rest stay finished for the next round.
 * Only the committer runs it (q->committing). */
static size_t settle(ts_upload_queue *q, slot *s, size_t n, int draining, ts_upload_result *r)
{
    memset(r, 0, (n ? n : 1) * sizeof(*r));
    if (n && q->ops->cancelled(q->owner)) {
        ts_err_set(s->err, sizeof(s->err), TS_E_CLOSED, "partition deleted or closed");
        s->st = TS_E_CLOSED;
        n = 0;
        draining = 1;
    }
    if (!n) {
        settle_one(q, s, draining, r);
        return 1;
    }
    /* Outside the lock the walk never reads the group's last ->next: a
     * submit may be linking a new tail behind it (the slots before it are
     * linked for good). */
    ts_upload_commit *c = q->group;
    slot *t = s;
    for (size_t i = 0; i < n; i++) {
        c[i] = (ts_upload_commit){&t->req, &t->meta, TS_OK, 0, t->err, sizeof(t->err)};
        if (i + 1 < n) t = t->next;
    }
    size_t m = ts_uploader_commit_group(q->os, q->idx, c, n);
    t = s;
    for (size_t i = 0; i < m; i++) {
        if (i) t = t->next;
        r[i].item = t->item;
        r[i].err = t->err;
        r[i].st = c[i].st;
        r[i].committed = c[i].committed;
        if (r[i].committed) r[i].stored_bytes = t->meta.stored_bytes;
        check_committed(q, t, &r[i]);
    }
    return m;
}

/* Walks the list from the head while the head is finished, a group at a
 * time. Entered with q->mu held and q->committing set by the caller;
 * returns with it released and q->committing cleared. */
static void commit_ready(ts_upload_queue *q)
{
    while (q->head && q->head->state != SLOT_RUNNING) {
        slot *s = q->head;
        int draining = q->draining;
        size_t n = 0; /* the run of built slots at the head: one group */
        for (slot *t = s; !draining && t && t->state == SLOT_BUILT; t = t->next) n++;
        pthread_mutex_unlock(&q->mu);
        ts_upload_result *r = q->results;
        size_t m = settle(q, s, n, draining, r);
        pthread_mutex_lock(&q->mu);
        for (size_t i = 0; i < m; i++) {
            s = q->head;
            if (r[i].committed) {
                q->failures = 0;
                q->retry_at_ms = 0;
            } else {
                q->draining = 1; /* nothing behind it may commit */
                if (!r[i].discarded && !is_outcome(r[i].st)) note_failure(q, r[i].st);
            }
            q->head = s->next;
            if (!q->head) q->tail = NULL;
            if (--q->n == 0) q->draining = 0;
            r[i].failures = q->failures;
            r[i].retry_at_ms = q->retry_at_ms;
            pthread_mutex_unlock(&q->mu);
            q->ops->done(q->owner, &r[i]);
            slot_free(s);
            pthread_mutex_lock(&q->mu);
        }
    }
    q->committing = 0;
    pthread_mutex_unlock(&q->mu);
}

/* ---- the jobs ------------------------------------------------------------- */

/* On a ts-commit worker: the queue's committer, handed over by the build
 * that finished its head (q->committing already set). */
static void commit_job(void *arg)
{
    ts_upload_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    commit_ready(q);
}

/* Hands the commit of q's finished head to a ts-commit worker, so the
 * build worker goes on building while the group's head PUT is in flight.
 * Non-zero when it could not (the scheduler is closing, no memory): the
 * caller commits itself. q->committing set, q->mu not held. */
static int hand_to_committer(ts_upload_queue *q)
{
    ts_upload_sched *s = q->sched;
    pthread_mutex_lock(&s->mu);
    ts_status st = s->commits_open ? ts_pool_submit(s->commits, commit_job, q) : TS_E_CLOSED;
    pthread_mutex_unlock(&s->mu);
    return st != TS_OK;
}

/* On a ts-upload worker: prepare, build the object, then make the slot
 * finished and, if it finished the head and nobody commits, start the
 * committer. */
static void build_job(void *arg)
{
    slot *s = arg;
    ts_upload_queue *q = s->q;
    ts_status st = q->ops->prepare(q->owner, s->item, &s->req, s->err, sizeof(s->err));
    pthread_mutex_lock(&q->mu);
    int draining = q->draining; /* an earlier one failed: save the work */
    pthread_mutex_unlock(&q->mu);
    if (!st && draining) st = ts_err_set(s->err, sizeof(s->err), TS_E_CLOSED,
                                         "an earlier segment failed; retried after it");
    if (!st) st = ts_uploader_build_object(q->os, &s->req, &s->meta, s->err, sizeof(s->err));
    pthread_mutex_lock(&q->mu);
    q->building--;
    pthread_mutex_unlock(&q->mu);
    /* The build room grew: the owner may hand over the next segment now,
     * not when this one is committed. The slot is still running, so no
     * committer can report it: the owner and the queue stay. */
    if (q->ops->room) q->ops->room(q->owner);
    pthread_mutex_lock(&q->mu);
    s->state = st ? SLOT_FAILED : SLOT_BUILT;
    s->st = st;
    if (q->committing || q->head->state == SLOT_RUNNING) { /* a committer will reach it */
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->committing = 1;
    pthread_mutex_unlock(&q->mu);
    if (!hand_to_committer(q)) return;
    pthread_mutex_lock(&q->mu);
    commit_ready(q);
}

ts_status ts_upload_queue_submit(ts_upload_queue *q, const ts_upload_req *req, void *item)
{
    slot *s = slot_new(q, req, item);
    if (!s) return TS_E_NOMEM;
    pthread_mutex_lock(&q->mu);
    if (room_locked(q) <= 0) { /* the order would break: the caller asks room() first */
        pthread_mutex_unlock(&q->mu);
        slot_free(s);
        return TS_E_BACKPRESSURE;
    }
    if (q->tail) q->tail->next = s;
    else q->head = s;
    q->tail = s;
    q->n++;
    q->building++;
    pthread_mutex_unlock(&q->mu);
    ts_status st = ts_pool_submit(q->sched->pool, build_job, s);
    if (st == TS_OK) return TS_OK;
    /* Not queued: take it back (still running, so no committer has
     * passed it). */
    pthread_mutex_lock(&q->mu);
    slot **pp = &q->head, *prev = NULL;
    while (*pp != s) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = s->next;
    if (q->tail == s) q->tail = prev;
    q->n--;
    q->building--;
    pthread_mutex_unlock(&q->mu);
    slot_free(s);
    return st;
}
