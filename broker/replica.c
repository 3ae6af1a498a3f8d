/*
 * replica.c — leader and follower roles of each replicated partition
 * (replica.h): the role jobs, the leader's follower tracking, high
 * watermark and ISR changes, and the follower's handling of the leader's
 * answers (appends, truncation, reset to the leader's local log start).
 *
 * Kafka references, read for their semantics: Partition.scala
 * (makeLeader/makeFollower, updateFollowerFetchState, maybeIncrementLeaderHW,
 * maybeShrinkIsr/maybeExpandIsr, checkEnoughReplicasReachOffset) and
 * AbstractFetcherThread/ReplicaFetcherThread (truncation by
 * OffsetForLeaderEpoch, KIP-279; out-of-range and OFFSET_MOVED_TO_TIERED_
 * STORAGE handling, KIP-405).
 *
 * Thread: loop, except the `run` of the jobs (topic pool), which touch only
 * their job and thread-safe plugin calls (and, becoming leader, the
 * partition's producer state, which no loop path reads while the role is
 * not applied).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_batch.h"
#include "replica.h"

#define REPLICA_RETRY_MS 500   /* a refused fetch or a failed job waits this long */
#define REPLICA_RESET_RETRY_MS 1000

static int64_t cfg_int(const broker *b, const char *key, int64_t def)
{
    const char *v = bconfig_get(&b->cfg, key);
    return v && *v ? strtoll(v, NULL, 10) : def;
}

/* min.insync.replicas: the topic's setting, else the broker's. */
static int32_t min_isr(const broker *b, const btopic *t)
{
    for (size_t i = 0; t && i < t->nconfigs; i++)
        if (!strcmp(t->configs[i].key, "min.insync.replicas"))
            return (int32_t)strtol(t->configs[i].value, NULL, 10);
    return (int32_t)cfg_int(b, "min.insync.replicas", 1);
}

/* ------------------------------------------------------------- registry */

rpart *replica_find(broker *b, const char *topic, int32_t partition)
{
    for (rpart *rp = b->replica_parts; rp; rp = rp->next)
        if (rp->partition == partition && !strcmp(rp->topic, topic)) return rp;
    return NULL;
}

static rpart *replica_get(broker *b, const char *topic, int32_t partition)
{
    rpart *rp = replica_find(b, topic, partition);
    if (rp) return rp;
    rp = calloc(1, sizeof(*rp));
    if (!rp || !(rp->topic = strdup(topic))) {
        free(rp);
        return NULL;
    }
    rp->partition = partition;
    rp->epoch = rp->want_epoch = -1;
    rp->leader = rp->want_leader = -1;
    rp->next = b->replica_parts;
    b->replica_parts = rp;
    return rp;
}

bpart *replica_part(broker *b, const rpart *rp)
{
    btopic *t = topic_find(b, rp->topic);
    if (!t || rp->partition < 0 || rp->partition >= t->npartitions) return NULL;
    bpart *p = topic_part_at(t, rp->partition);
    return p && p->h ? p : NULL;
}

static int offsets_of(broker *b, const bpart *p, tsp_offsets *off)
{
    memset(off, 0, sizeof(*off));
    off->struct_size = sizeof(*off);
    off->high_watermark = -1;
    off->leader_epoch = -1;
    return b->pl->offsets(p->h, off) == TSP_OK ? 0 : -1;
}

int64_t replica_visible_end(const broker *b, const tsp_offsets *off)
{
    if (!b->cluster || off->high_watermark < 0) return off->log_end_offset;
    return off->high_watermark < off->log_end_offset ? off->high_watermark : off->log_end_offset;
}

static int in_list(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static rfollower *follower_of(rpart *rp, int32_t id)
{
    for (int i = 0; i < rp->nf; i++)
        if (rp->f[i].id == id) return &rp->f[i];
    return NULL;
}

/* ------------------------------------------------------------ role jobs */

typedef struct rjob {
    bjob j;
    broker *b;
    rpart *rp;
    bpart *p; /* kept valid by jobs_inflight (a doomed topic waits for it) */
    int kind;  /* RJ_ROLE, RJ_TRUNCATE, RJ_RESET */
    int role;
    int32_t epoch, leader;
    int64_t offset, new_end;
    uint32_t incarnation; /* rp's when submitted */
    tsp_status st;
    char err[256];
} rjob;

enum { RJ_ROLE, RJ_TRUNCATE, RJ_RESET };

static void replica_step(broker *b, rpart *rp);
static void leader_init(broker *b, rpart *rp);
static void hw_update(broker *b, rpart *rp);

static void rjob_run(bjob *j)
{
    rjob *r = (rjob *)j;
    const tsp_plugin *pl = r->b->pl;
    switch (r->kind) {
    case RJ_ROLE:
        r->st = pl->partition_set_role(r->p->h, r->epoch, r->role == RP_LEADER, r->err,
                                       sizeof r->err);
        /* Kafka: a new leader's producer state comes from the replicated log. */
        if (r->st == TSP_OK && r->role == RP_LEADER) idempotence_rebuild(r->b, r->p);
        break;
    case RJ_TRUNCATE:
        r->st = pl->truncate(r->p->h, r->offset, &r->new_end, r->err, sizeof r->err);
        break;
    case RJ_RESET:
        r->st = pl->reset_local(r->p->h, r->offset, r->err, sizeof r->err);
        r->new_end = r->offset;
        break;
    }
}

static void follower_resume(broker *b, rpart *rp, int step, int64_t offset, int64_t retry_ms)
{
    rp->step = step;
    if (offset >= 0) rp->fetch_offset = offset;
    rp->retry_at_ms = retry_ms ? bclock_ms() + retry_ms : 0;
    if (rp->fetcher) fetcher_set(b, rp->fetcher, rp);
}

static void rjob_role_done(broker *b, rjob *r, rpart *rp)
{
    if (r->st != TSP_OK) {
        blog_warn("%s-%d: cannot become %s at epoch %d: %s", rp->topic, rp->partition,
                  r->role == RP_LEADER ? "leader" : "follower", r->epoch, r->err);
        rp->role_retry_ms = bclock_ms() + REPLICA_RETRY_MS;
        return;
    }
    rp->role = r->role;
    rp->epoch = r->epoch;
    rp->leader = r->leader;
    blog_info("%s-%d: %s at leader epoch %d", rp->topic, rp->partition,
              r->role == RP_LEADER ? "leader" : "follower", r->epoch);
    if (r->role == RP_LEADER) {
        leader_init(b, rp);
        return;
    }
    tsp_offsets off;
    int have = offsets_of(b, r->p, &off) == 0;
    /* A log without epochs (empty) cannot diverge: fetch at once. */
    rp->step = have && off.leader_epoch >= 0 ? RF_EPOCH : RF_FETCH;
    rp->fetch_offset = have ? off.log_end_offset : 0;
    rp->retry_at_ms = 0;
}

static void rjob_done(bjob *j)
{
    rjob *r = (rjob *)j;
    broker *b = r->b;
    rpart *rp = r->rp;
    rp->busy = 0;
    if (r->incarnation != rp->incarnation) /* the topic left the view meanwhile */
        ;
    else if (r->kind == RJ_ROLE)
        rjob_role_done(b, r, rp);
    else if (r->st == TSP_OK) {
        blog_info("%s-%d: %s at %lld", rp->topic, rp->partition,
                  r->kind == RJ_TRUNCATE ? "truncated" : "local log restarted",
                  (long long)r->new_end);
        follower_resume(b, rp, RF_FETCH, r->new_end, 0);
    } else {
        blog_warn("%s-%d: %s at %lld failed: %s", rp->topic, rp->partition,
                  r->kind == RJ_TRUNCATE ? "truncate" : "reset_local", (long long)r->offset,
                  r->err);
        follower_resume(b, rp, r->kind == RJ_TRUNCATE ? RF_EPOCH : RF_FETCH, -1,
                        r->kind == RJ_TRUNCATE ? REPLICA_RETRY_MS : REPLICA_RESET_RETRY_MS);
    }
    free(r);
    replica_step(b, rp);
    produce_acks_check(b);
}

/* Starts a job on the partition (busy until its done). -1 when it cannot. */
static int rjob_submit(broker *b, rpart *rp, int kind, int64_t offset)
{
    bpart *p = replica_part(b, rp);
    rjob *r = p ? calloc(1, sizeof(*r)) : NULL;
    if (!r) return -1;
    r->j.run = rjob_run;
    r->j.done = rjob_done;
    r->b = b;
    r->rp = rp;
    r->p = p;
    r->kind = kind;
    r->role = rp->want_role;
    r->epoch = rp->want_epoch;
    r->leader = rp->want_leader;
    r->offset = offset;
    r->incarnation = rp->incarnation;
    rp->busy = 1;
    if (kind != RJ_ROLE) rp->step = RF_JOB;
    if (rp->fetcher) fetcher_set(b, rp->fetcher, rp); /* inactive while the job runs */
    bpool_submit(b->topic_pool, &r->j);
    return 0;
}

static void pids_clear(bpart *p)
{
    while (p->pids) {
        pid_state *s = p->pids;
        p->pids = s->next;
        free(s);
    }
}

static void follower_detach(broker *b, rpart *rp)
{
    if (rp->fetcher) fetcher_remove(b, rp->fetcher, rp);
    rp->fetcher = NULL;
}

/* Moves the applied role towards the wanted one, one job at a time. */
static void replica_step(broker *b, rpart *rp)
{
    if (b->stop || rp->busy || rp->role_retry_ms > bclock_ms()) return; /* b->stop: shutting down */
    int same = rp->role == rp->want_role && rp->epoch == rp->want_epoch &&
               (rp->role != RP_FOLLOWER || rp->leader == rp->want_leader);
    if (!same) {
        if (rp->role == RP_FOLLOWER) follower_detach(b, rp);
        if (rp->want_role == RP_NONE || rp->want_epoch < 0) {
            rp->role = RP_NONE; /* state lost: neither leads nor fetches */
            rp->epoch = rp->want_epoch;
            return;
        }
        rp->role = RP_NONE; /* nothing acts until the new role is applied */
        bpart *p = replica_part(b, rp);
        if (!p || !TSP_HAS(b->pl, partition_set_role)) return;
        if (rp->want_role == RP_LEADER) pids_clear(p);
        rjob_submit(b, rp, RJ_ROLE, -1);
        return;
    }
    if (rp->role != RP_FOLLOWER) return;
    fetcher *f = rp->leader >= 0 ? fetcher_for(b, rp->leader) : NULL;
    if (f != rp->fetcher) follower_detach(b, rp);
    rp->fetcher = f;
    if (f) fetcher_set(b, f, rp);
}

/* ---------------------------------------------------------------- seams */

void replica_on_state(broker *b, btopic *t, bpart *p, const cl_pstate *prev,
                      const cl_pstate *now)
{
    (void)prev;
    rpart *rp = replica_get(b, t->name, p->index);
    if (!rp) return;
    int32_t self = b->node_id;
    if (!now || now->leader_epoch < 0) {
        rp->want_role = RP_NONE;
    } else if (now->leader == self) {
        rp->want_role = RP_LEADER;
    } else if (in_list(now->replicas, now->nreplicas, self)) {
        rp->want_role = RP_FOLLOWER;
    } else {
        rp->want_role = RP_NONE;
    }
    rp->want_epoch = now ? now->leader_epoch : -1;
    rp->want_leader = now ? now->leader : -1;
    rp->role_retry_ms = 0;
    replica_step(b, rp);
    if (rp->role == RP_LEADER && rp->epoch == rp->want_epoch) hw_update(b, rp);
    produce_acks_check(b);
}

void replica_on_brokers(broker *b)
{
    fetcher_on_brokers(b);
    for (rpart *rp = b->replica_parts; rp; rp = rp->next) replica_step(b, rp);
}

void replica_on_topic_removed(broker *b, const char *topic)
{
    for (rpart *rp = b->replica_parts; rp; rp = rp->next) {
        if (strcmp(rp->topic, topic)) continue;
        follower_detach(b, rp);
        rp->incarnation++;
        rp->role = rp->want_role = RP_NONE;
        rp->epoch = rp->want_epoch = -1;
        rp->leader = rp->want_leader = -1;
        rp->nf = 0; /* followers' positions were the old log's */
        rp->step = RF_FETCH;
        rp->fetch_offset = 0;
        rp->retry_at_ms = rp->role_retry_ms = 0;
    }
}

void replica_shutdown(broker *b) { fetcher_shutdown_all(b); }

void replica_free_all(broker *b)
{
    while (b->replica_parts) {
        rpart *rp = b->replica_parts;
        b->replica_parts = rp->next;
        free(rp->topic);
        free(rp);
    }
}

/* --------------------------------------------------------------- leader */

static void leader_init(broker *b, rpart *rp)
{
    const cl_pstate *ps = cluster_pstate(b, rp->topic, rp->partition);
    int64_t now = bclock_ms();
    rp->nf = 0;
    for (int32_t i = 0; ps && i < ps->nreplicas && rp->nf < CLUSTER_MAX_REPLICAS; i++) {
        if (ps->replicas[i] == b->node_id) continue;
        rfollower *f = &rp->f[rp->nf++];
        f->id = ps->replicas[i];
        f->leo = -1;
        f->leo_at_last_fetch = -1;
        f->last_fetch_ms = 0;
        f->caught_up_ms = now; /* Kafka: a new leader gives every follower the lag time */
    }
    hw_update(b, rp);
}

/* Whether rp is the applied leader at the view's epoch. */
static const cl_pstate *leading(broker *b, rpart *rp)
{
    const cl_pstate *ps = cluster_pstate(b, rp->topic, rp->partition);
    if (!ps || rp->role != RP_LEADER || ps->leader != b->node_id || ps->leader_epoch != rp->epoch)
        return NULL;
    return ps;
}

static void isr_done(broker *b, void *arg, int ok)
{
    rpart *rp = arg;
    rp->isr_busy = 0;
    if (ok) hw_update(b, rp);
    produce_acks_check(b);
}

static void isr_write(broker *b, rpart *rp, const cl_pstate *ps, const int32_t *isr, int32_t n,
                      const char *why, int32_t who)
{
    blog_info("%s-%d: ISR %s broker %d (%d member(s))", rp->topic, rp->partition, why, who, n);
    rp->isr_busy = 1;
    cluster_update_isr(b, rp->topic, rp->partition, ps->version, isr, n, isr_done, rp);
}

/* Adds the follower that just fetched when it reached the HW and is caught
 * up (Kafka: maybeExpandIsr, run on a follower's fetch, so a follower that
 * stopped fetching is never added back from its old position). */
static void isr_maybe_expand(broker *b, rpart *rp, rfollower *f)
{
    const cl_pstate *ps = leading(b, rp);
    bpart *p = ps ? replica_part(b, rp) : NULL;
    tsp_offsets off;
    if (!p || rp->isr_busy || ps->nisr >= CLUSTER_MAX_REPLICAS || offsets_of(b, p, &off) != 0)
        return;
    if (in_list(ps->isr, ps->nisr, f->id) || f->leo < off.high_watermark) return;
    if (bclock_ms() - f->caught_up_ms > cfg_int(b, "replica.lag.time.max.ms", 30000)) return;
    int32_t isr[CLUSTER_MAX_REPLICAS];
    memcpy(isr, ps->isr, sizeof(int32_t) * (size_t)ps->nisr);
    isr[ps->nisr] = f->id;
    isr_write(b, rp, ps, isr, ps->nisr + 1, "adds", f->id);
}

/* Removes followers not caught up for replica.lag.time.max.ms (Kafka:
 * maybeShrinkIsr). The leader stays. */
static void isr_maybe_shrink(broker *b, rpart *rp, const cl_pstate *ps, int64_t now)
{
    if (rp->isr_busy) return;
    int64_t lag_ms = cfg_int(b, "replica.lag.time.max.ms", 30000);
    int32_t isr[CLUSTER_MAX_REPLICAS], n = 0, out = -1;
    for (int32_t i = 0; i < ps->nisr; i++) {
        int32_t id = ps->isr[i];
        rfollower *f = id == b->node_id ? NULL : follower_of(rp, id);
        if (f && now - f->caught_up_ms > lag_ms && out < 0) {
            out = id; /* one at a time: each change is its own CAS and log line */
            continue;
        }
        isr[n++] = id;
    }
    if (out >= 0 && n > 0) isr_write(b, rp, ps, isr, n, "drops", out);
}

/* HW = min log end over the ISR; moves only forward (Kafka:
 * maybeIncrementLeaderHW). Wakes consumers and acks=-1 waiters. */
static void hw_update(broker *b, rpart *rp)
{
    const cl_pstate *ps = leading(b, rp);
    bpart *p = ps ? replica_part(b, rp) : NULL;
    tsp_offsets off;
    if (!p || offsets_of(b, p, &off) != 0) return;
    int64_t hw = off.log_end_offset;
    for (int32_t i = 0; i < ps->nisr; i++) {
        if (ps->isr[i] == b->node_id) continue;
        rfollower *f = follower_of(rp, ps->isr[i]);
        if (!f || f->leo < 0) return; /* not heard from under this leadership yet */
        if (f->leo < hw) hw = f->leo;
    }
    if (hw > off.high_watermark) {
        char err[256];
        if (b->pl->set_high_watermark(p->h, hw, err, sizeof err) != TSP_OK) {
            blog_warn("%s-%d: set_high_watermark %lld: %s", rp->topic, rp->partition,
                      (long long)hw, err);
            return;
        }
        p->appends++;
        b->appends_total++; /* parked consumer fetches see the new HW */
        produce_acks_check(b);
    }
}

int16_t replica_follower_fetch(broker *b, const char *topic, int32_t partition,
                               int32_t replica_id, int32_t current_leader_epoch,
                               int64_t fetch_offset)
{
    if (!b->cluster) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    int16_t err = cluster_check_leader(b, topic, partition, current_leader_epoch);
    if (err) return err;
    rpart *rp = replica_find(b, topic, partition);
    rfollower *f = rp && leading(b, rp) ? follower_of(rp, replica_id) : NULL;
    bpart *p = f ? replica_part(b, rp) : NULL;
    tsp_offsets off;
    if (!p || offsets_of(b, p, &off) != 0) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    if (fetch_offset > off.log_end_offset) return KAFKA_NONE; /* diverged: out of range */
    int64_t now = bclock_ms();
    if (fetch_offset >= off.log_end_offset)
        f->caught_up_ms = now;
    else if (f->leo_at_last_fetch >= 0 && fetch_offset >= f->leo_at_last_fetch &&
             f->last_fetch_ms > f->caught_up_ms)
        f->caught_up_ms = f->last_fetch_ms;
    f->leo = fetch_offset;
    f->leo_at_last_fetch = off.log_end_offset;
    f->last_fetch_ms = now;
    hw_update(b, rp);
    isr_maybe_expand(b, rp, f);
    return KAFKA_NONE;
}

void replica_on_append(broker *b, const char *topic, int32_t partition)
{
    rpart *rp = b->cluster ? replica_find(b, topic, partition) : NULL;
    if (rp) hw_update(b, rp);
}

int16_t replica_check_produce(broker *b, btopic *t, int32_t partition, int acks,
                              int32_t *epoch)
{
    *epoch = -1;
    if (!b->cluster) return KAFKA_NONE;
    rpart *rp = replica_find(b, t->name, partition);
    const cl_pstate *ps = rp ? leading(b, rp) : NULL;
    if (!ps || !cluster_is_registered(b)) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    if (acks == -1 && ps->nisr < min_isr(b, t)) return KAFKA_NOT_ENOUGH_REPLICAS;
    *epoch = rp->epoch;
    return KAFKA_NONE;
}

int replica_ack_state(broker *b, btopic *t, int32_t partition, int32_t epoch,
                      int64_t end_offset)
{
    rpart *rp = t ? replica_find(b, t->name, partition) : NULL;
    const cl_pstate *ps = rp ? leading(b, rp) : NULL;
    if (!ps || rp->epoch != epoch || !cluster_is_registered(b))
        return KAFKA_NOT_LEADER_OR_FOLLOWER;
    bpart *p = replica_part(b, rp);
    tsp_offsets off;
    if (!p || offsets_of(b, p, &off) != 0) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    if (off.high_watermark < end_offset) return -2;
    return ps->nisr < min_isr(b, t) ? KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND : KAFKA_NONE;
}

void replica_tick(broker *b)
{
    int64_t now = bclock_ms();
    for (rpart *rp = b->replica_parts; rp; rp = rp->next) {
        const cl_pstate *ps = leading(b, rp);
        if (ps)
            isr_maybe_shrink(b, rp, ps, now);
        else if (!rp->busy && rp->role_retry_ms <= now &&
                 (rp->role != rp->want_role || rp->epoch != rp->want_epoch ||
                  (rp->role == RP_FOLLOWER && !rp->fetcher && rp->leader >= 0)))
            replica_step(b, rp); /* a failed job, a partition opened later, a leader back */
    }
    produce_acks_check(b);
}

/* ------------------------------------------------------------- follower */

/* The request entry for (topic, partition), NULL when it was not asked. */
static const kc_fetch_part *req_of(const kc_fetch_part *req, size_t n, const char *topic,
                                   int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (req[i].partition == partition && !strcmp(req[i].topic, topic)) return &req[i];
    return NULL;
}

/* The follower an answer is for: still following f's broker at the epoch
 * and offset the request carried. */
static rpart *answer_target(broker *b, fetcher *f, const kc_fetch_part *rq)
{
    rpart *rp = rq ? replica_find(b, rq->topic, rq->partition) : NULL;
    if (!rp || rp->fetcher != f || rp->role != RP_FOLLOWER || rp->busy) return NULL;
    if (rp->epoch != rq->current_leader_epoch || rp->fetch_offset != rq->fetch_offset) return NULL;
    return rp;
}

/* Whole batches of d, from the first one ending at or past `from`. */
static const uint8_t *batches_from(const uint8_t *d, size_t len, int64_t from, size_t *out_len)
{
    size_t pos = 0;
    kbatch_header h;
    while (kbatch_header_at(d + pos, len - pos, &h) == 0 &&
           h.base_offset + h.last_offset_delta < from && kbatch_size(&h) <= len - pos)
        pos += kbatch_size(&h);
    *out_len = kbatch_whole_prefix(d + pos, len - pos, INT64_MAX);
    return d + pos;
}

static void follower_append(broker *b, rpart *rp, const kc_fetch_resp_part *a)
{
    bpart *p = replica_part(b, rp);
    if (!p) return;
    size_t n = 0;
    const uint8_t *d = a->records.len > 0
                           ? batches_from(a->records.p, (size_t)a->records.len, rp->fetch_offset, &n)
                           : NULL;
    char err[256];
    if (n > 0) {
        int64_t last = -1;
        tsp_status st = b->pl->append_replica(p->h, d, n, &last, err, sizeof err);
        if (st == TSP_E_OFFSET_OUT_OF_RANGE) {
            blog_warn("%s-%d: leader's batches do not continue the log at %lld (%s): "
                      "asking where the logs diverge", rp->topic, rp->partition,
                      (long long)rp->fetch_offset, err);
            follower_resume(b, rp, RF_EPOCH, -1, 0);
            return;
        }
        if (st != TSP_OK) {
            blog_warn("%s-%d: append_replica at %lld: %s", rp->topic, rp->partition,
                      (long long)rp->fetch_offset, err);
            follower_resume(b, rp, RF_FETCH, -1, REPLICA_RETRY_MS);
            return;
        }
        rp->fetch_offset = last + 1;
    }
    if (a->high_watermark >= 0) {
        int64_t hw = a->high_watermark < rp->fetch_offset ? a->high_watermark : rp->fetch_offset;
        b->pl->set_high_watermark(p->h, hw, err, sizeof err);
    }
    follower_resume(b, rp, RF_FETCH, -1, 0);
}

/* The leader cannot serve this replica's offset from its local log: the
 * follower restarts its own at the leader's local log start (KIP-405). */
static void follower_reset(broker *b, rpart *rp, const kc_fetch_resp_part *a)
{
    int64_t at = a->local_log_start_offset;
    if (at < 0 || !TSP_HAS(b->pl, reset_local) || rjob_submit(b, rp, RJ_RESET, at) != 0) {
        follower_resume(b, rp, RF_FETCH, -1, REPLICA_RESET_RETRY_MS);
        return;
    }
    blog_info("%s-%d: restarting the local log at the leader's local start %lld (was at %lld)",
              rp->topic, rp->partition, (long long)at, (long long)rp->fetch_offset);
}

void replica_apply_fetch(broker *b, fetcher *f, const kc_fetch_part *req, size_t nreq,
                         const kc_fetch_resp *resp)
{
    for (size_t i = 0; i < resp->nparts; i++) {
        const kc_fetch_resp_part *a = &resp->parts[i];
        rpart *rp = answer_target(b, f, req_of(req, nreq, a->topic, a->partition));
        if (!rp) continue;
        switch (a->error) {
        case KAFKA_NONE: follower_append(b, rp, a); break;
        case KAFKA_OFFSET_MOVED_TO_TIERED_STORAGE: follower_reset(b, rp, a); break;
        case KAFKA_OFFSET_OUT_OF_RANGE:
            if (rp->fetch_offset < a->log_start_offset || rp->fetch_offset < a->local_log_start_offset)
                follower_reset(b, rp, a);
            else
                follower_resume(b, rp, RF_EPOCH, -1, 0); /* ahead of the leader: diverged */
            break;
        default:
            /* NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH, ...: the
             * view changes soon; until then ask again now and then. */
            blog_debug("%s-%d: leader %d refused the fetch: error %d", rp->topic, rp->partition,
                       fetcher_leader(f), a->error);
            follower_resume(b, rp, RF_FETCH, -1, REPLICA_RETRY_MS);
            break;
        }
    }
}

/* Where to truncate after the leader answered (epoch, end) for this
 * replica's latest epoch (KIP-279), never below the HW nor what is tiered. */
static int64_t truncation_point(broker *b, bpart *p, const tsp_offsets *off, int32_t asked,
                                const kc_epoch_resp_part *a)
{
    int64_t target = off->log_end_offset;
    if (a->leader_epoch < 0 || a->end_offset < 0) {
        target = off->high_watermark; /* the leader knows none of our epochs */
    } else if (a->leader_epoch < asked) {
        /* The leader never had our epoch: our end of its latest epoch. */
        int32_t fe = -1;
        int64_t ours = -1;
        char err[128];
        if (b->pl->epoch_end_offset(p->h, a->leader_epoch, &fe, &ours, err, sizeof err) ==
                TSP_OK && ours >= 0 && ours < target)
            target = ours;
        if (a->end_offset < target) target = a->end_offset;
    } else if (a->end_offset < target) {
        target = a->end_offset;
    }
    if (target < off->high_watermark) target = off->high_watermark;
    if (target < off->remote_end_offset) target = off->remote_end_offset;
    return target;
}

void replica_apply_epochs(broker *b, fetcher *f, const kc_fetch_part *req, size_t nreq,
                          const kc_epoch_resp *resp)
{
    for (size_t i = 0; i < resp->nparts; i++) {
        const kc_epoch_resp_part *a = &resp->parts[i];
        const kc_fetch_part *rq = req_of(req, nreq, a->topic, a->partition);
        rpart *rp = answer_target(b, f, rq);
        bpart *p = rp ? replica_part(b, rp) : NULL;
        tsp_offsets off;
        if (!p || offsets_of(b, p, &off) != 0) continue;
        if (a->error) {
            follower_resume(b, rp, RF_EPOCH, -1, REPLICA_RETRY_MS);
            continue;
        }
        if (rq->last_fetched_epoch < 0) { /* no epochs here: nothing can diverge */
            follower_resume(b, rp, RF_FETCH, off.log_end_offset, 0);
            continue;
        }
        int64_t target = truncation_point(b, p, &off, rq->last_fetched_epoch, a);
        if (target < off.log_end_offset && rjob_submit(b, rp, RJ_TRUNCATE, target) == 0) {
            blog_info("%s-%d: log diverges from leader %d's at %lld (end %lld): truncating",
                      rp->topic, rp->partition, fetcher_leader(f), (long long)target,
                      (long long)off.log_end_offset);
            continue;
        }
        follower_resume(b, rp, RF_FETCH, off.log_end_offset, 0);
    }
}

/* --------------------------------------------------- OffsetForLeaderEpoch */

/* One partition's answer: the largest epoch <= the asked one and its end
 * (epoch_end_offset), from the leader only (Kafka: fetchOnlyFromLeader). */
static int16_t epoch_answer(broker *b, const char *topic,
                            const kafka_OffsetForLeaderEpochPartition *q, int32_t *epoch,
                            int64_t *end)
{
    *epoch = -1;
    *end = -1;
    int16_t err = KAFKA_NONE;
    if (b->cluster) err = cluster_check_leader(b, topic, q->partition, q->current_leader_epoch);
    if (err) return err;
    bpart *p = topic_part(b, topic, q->partition, &err);
    if (!p) return err ? err : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (b->cluster) {
        rpart *rp = replica_find(b, topic, q->partition);
        if (!rp || !leading(b, rp)) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    }
    if (!TSP_HAS(b->pl, epoch_end_offset)) return KAFKA_UNSUPPORTED_VERSION;
    char msg[256];
    tsp_status st = b->pl->epoch_end_offset(p->h, q->leader_epoch, epoch, end, msg, sizeof msg);
    if (st != TSP_OK) {
        blog_warn("OffsetForLeaderEpoch %s-%d epoch %d: %s", topic, q->partition, q->leader_epoch,
                  msg);
        return kafka_error_from_status(st);
    }
    return KAFKA_NONE;
}

void handle_OffsetForLeaderEpoch(broker *b, reply *r, kafka_request *q)
{
    const kafka_OffsetForLeaderEpochRequest *eq = &q->u.offset_for_leader_epoch;
    int f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs (v2+) */
    kw_array(&w, f, eq->ntopics);
    /* A replica needs CLUSTER_ACTION on the cluster, a client DESCRIBE on the topic. */
    int replica_ok = eq->replica_id < 0 ||
                     acl_check(b, r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, NULL);
    for (int32_t i = 0; i < eq->ntopics; i++) {
        const kafka_OffsetForLeaderEpochTopic *t = &eq->topics[i];
        int allowed = eq->replica_id >= 0
                          ? replica_ok
                          : acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->topic);
        kw_str(&w, f, t->topic);
        kw_array(&w, f, t->npartitions);
        for (int32_t k = 0; k < t->npartitions; k++) {
            int32_t epoch = -1;
            int64_t end = -1;
            int16_t err = allowed ? epoch_answer(b, t->topic, &t->partitions[k], &epoch, &end)
                                  : KAFKA_TOPIC_AUTHORIZATION_FAILED;
            kw_i16(&w, err);
            kw_i32(&w, t->partitions[k].partition);
            kw_i32(&w, epoch);
            kw_i64(&w, end);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}
