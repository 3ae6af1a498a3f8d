/*
 * group_cluster.c — the group coordinator's cluster side (issue 10): which
 * broker coordinates a group, committed offsets and producer-id blocks in
 * etcd. Active when metadata.store.url is set (b->gc); the single node keeps
 * its .broker/ files and never comes here.
 *
 * Coordination is Kafka's: a group hashes onto a partition of the
 * pseudo-topic __consumer_offsets (group_partition_for), whose leader, as
 * the controller elected it (cluster.h's view), coordinates the group. That
 * topic holds no data; its partitions' leadership is all it is for.
 *
 * Committed offsets live in etcd, one key per (group, topic, partition)
 * (group_kv.h), chosen over a replicated offsets topic because etcd already
 * is the cluster's replicated store: a commit is durable on a quorum when
 * etcd answers, it survives any broker and every local disk, and storage
 * grows with groups x partitions (each commit overwrites its key; etcd's
 * history is bounded by its auto-compaction), not with the number of commits.
 * Each OffsetCommit is written in as few txns as etcd allows (--max-txn-ops,
 * 128 by default; --max-request-bytes), and every txn compares the offsets
 * partition's state key at the version this broker saw itself leader at: a
 * deposed coordinator (its view stale) cannot write, the new one loads
 * everything written before it was elected. Group membership stays in the
 * coordinator's memory, as in Kafka: members rejoin after a coordinator move.
 *
 * Per offsets partition this broker is in one of three states: UNLOADED (not
 * its leader: group requests get NOT_COORDINATOR), LOADING (leader, offsets
 * being read from etcd: COORDINATOR_LOAD_IN_PROGRESS), LOADED. The tick
 * follows the view: leadership gained starts a load, lost (or a new leader
 * epoch, which means it was lost in between) unloads the groups of that
 * partition; a load that finds its partition changed meanwhile is dropped.
 *
 * Producer ids: blocks of PRODUCER_ID_BLOCK reserved by CAS on the
 * producer_ids key (Kafka's ZooKeeper ProducerIdManager), so no two brokers
 * ever hand out the same id; etcd unreachable -> the request waits for the
 * reservation and gets a retriable error, never an id out of no block.
 *
 * Threads: etcd calls run on the one-thread "group-store" pool, so commits,
 * loads and reservations reach etcd in the order the loop issued them;
 * everything else (the state table, groups) is the loop's.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "etcd/etcd.h"
#include "group_kv.h"

enum { GP_UNLOADED, GP_LOADING, GP_LOADED };

/* etcd's default --max-txn-ops and a request-size margin under its default
 * --max-request-bytes (1.5 MiB, with base64 growing keys and values by 4/3). */
#define GC_TXN_MAX_OPS 128
#define GC_TXN_MAX_BYTES (1u << 20)
/* After a call found etcd unreachable, calls of the next this-many ms fail
 * at once instead of queueing behind each other for a whole timeout each. */
#define GC_DOWN_HOLD_MS 1000
/* A failed load is retried after this long. */
#define GC_LOAD_RETRY_MS 500
/* CAS rounds for one producer-id block before giving up (retriable). */
#define GC_PID_CAS_ROUNDS 20
/* Ids below this came from older versions (clock-based ids, single nodes'
 * counters start here): an empty cluster starts at least here. */
#define GC_PID_FIRST 1000000000000000LL

typedef struct gc_part {
    int state;
    uint32_t gen;         /* bumps on every load and unload: stale jobs are dropped */
    int32_t leader_epoch; /* of the leadership the load was for */
} gc_part;

struct gcluster {
    ts_etcd *etcd;
    bpool *pool;
    char prefix[320]; /* "/<cluster.name>/" */
    int32_t nparts;
    gc_part *parts;
    int64_t retry_at; /* loads wait until then after a failed one */
    int64_t pid_first;
    _Atomic int64_t down_until; /* group-store thread; bclock_ms */
};

/* ---------------------------------------------------------- jobs (pool) */

/* Whether etcd was found unreachable very recently (fail fast). */
static int store_down(gcluster *gc) { return bclock_ms() < atomic_load(&gc->down_until); }

static void store_note(gcluster *gc, ts_etcd_status st)
{
    if (ts_etcd_status_is_retriable(st)) atomic_store(&gc->down_until, bclock_ms() + GC_DOWN_HOLD_MS);
}

typedef struct load_rec {
    char *group, *topic;
    int32_t partition;
    group_kv_value v;
} load_rec;

typedef struct load_job {
    bjob j;
    broker *b;
    uint32_t *gens; /* per offsets partition: the gen it loads for, 0 = not in it */
    load_rec *recs;
    size_t nrecs, cap;
    int ok;
    char err[512];
} load_job;

static void load_rec_free(load_rec *r)
{
    free(r->group);
    free(r->topic);
    free(r->v.metadata);
}

/* Keeps one key of the range when its group hashes onto a partition being
 * loaded; skips (with a warning) what does not parse. */
static void load_take(load_job *lj, const ts_etcd_kv *kv, size_t plen)
{
    gcluster *gc = lj->b->gc;
    load_rec r = {0};
    if (group_kv_key_parse(kv->key, kv->key_len, plen, &r.group, &r.topic, &r.partition) != 0 ||
        !lj->gens[group_partition_for(r.group, gc->nparts)]) {
        load_rec_free(&r);
        return;
    }
    if (group_kv_decode(kv->value, kv->value_len, &r.v) != 0) {
        blog_warn("group store: %.*s holds no committed offset; ignored", (int)kv->key_len, kv->key);
        load_rec_free(&r);
        return;
    }
    if (lj->nrecs == lj->cap) {
        size_t cap = lj->cap ? lj->cap * 2 : 64;
        load_rec *n = realloc(lj->recs, cap * sizeof(*n));
        if (!n) {
            load_rec_free(&r);
            lj->ok = 0;
            return;
        }
        lj->recs = n;
        lj->cap = cap;
    }
    lj->recs[lj->nrecs++] = r;
}

static void load_run(bjob *j)
{
    load_job *lj = (load_job *)j;
    gcluster *gc = lj->b->gc;
    char key[400];
    int plen = snprintf(key, sizeof key, "%sgroups/", gc->prefix);
    ts_etcd_resp resp = {0};
    if (store_down(gc)) {
        snprintf(lj->err, sizeof lj->err, "etcd was unreachable a moment ago");
        return;
    }
    ts_etcd_status st = ts_etcd_get(gc->etcd, key, (size_t)plen, 1, 0, &resp, lj->err, sizeof lj->err);
    store_note(gc, st);
    if (st != TS_ETCD_OK) return;
    lj->ok = 1;
    for (size_t i = 0; i < resp.nkvs && lj->ok; i++) load_take(lj, &resp.kvs[i], (size_t)plen);
    if (!lj->ok) snprintf(lj->err, sizeof lj->err, "out of memory");
    ts_etcd_resp_free(&resp);
}

static void load_done(bjob *j)
{
    load_job *lj = (load_job *)j;
    broker *b = lj->b;
    gcluster *gc = b->gc;
    size_t installed = 0;
    int nloaded = 0;
    for (int32_t p = 0; p < gc->nparts; p++) {
        if (!lj->gens[p] || gc->parts[p].gen != lj->gens[p] || gc->parts[p].state != GP_LOADING)
            lj->gens[p] = 0; /* unloaded or reloaded meanwhile: this answer is stale */
        else if (lj->ok) {
            gc->parts[p].state = GP_LOADED;
            nloaded++;
        } else
            gc->parts[p].state = GP_UNLOADED;
    }
    for (size_t i = 0; i < lj->nrecs; i++) {
        load_rec *r = &lj->recs[i];
        bgroup *g = lj->ok && lj->gens[group_partition_for(r->group, gc->nparts)]
                        ? group_find(b, r->group, 1)
                        : NULL;
        if (g && group_commit_offset(g, r->topic, r->partition, r->v.offset, r->v.leader_epoch,
                                     r->v.metadata) >= 0)
            installed++;
        load_rec_free(r);
    }
    if (!lj->ok) {
        gc->retry_at = bclock_ms() + GC_LOAD_RETRY_MS;
        blog_warn("group coordinator: loading committed offsets from etcd failed (retrying): %s",
                  lj->err);
    } else if (nloaded) {
        blog_info("group coordinator: now coordinating %d more __consumer_offsets partition(s); "
                  "%zu committed offset(s) loaded from etcd",
                  nloaded, installed);
    }
    free(lj->recs);
    free(lj->gens);
    free(lj);
}

/* One OffsetCommit's writes. */
typedef struct commit_job {
    bjob j;
    broker *b;
    char *group;
    gc_commit *recs;
    size_t n;
    int32_t opart;      /* the group's offsets partition */
    uint32_t gen;       /* its gen when the commit was issued */
    char cmp_key[400];  /* partitions/__consumer_offsets/<p> */
    int64_t cmp_version;
    int64_t now_ms;
    gc_commit_fn done;
    void *arg;
} commit_job;

/* Writes recs[0..k) in one txn fenced by the offsets partition's state. */
static int16_t commit_txn(commit_job *cj, gc_commit *recs, size_t k, char **keys, char **vals)
{
    gcluster *gc = cj->b->gc;
    ts_etcd_op *ops = calloc(k, sizeof(*ops));
    if (!ops) return KAFKA_COORDINATOR_NOT_AVAILABLE;
    for (size_t i = 0; i < k; i++) {
        ops[i].type = TS_ETCD_OP_PUT;
        ops[i].key = keys[i];
        ops[i].key_len = strlen(keys[i]);
        ops[i].value = vals[i];
        ops[i].value_len = strlen(vals[i]);
    }
    ts_etcd_cmp cmp = {.key = cj->cmp_key, .key_len = strlen(cj->cmp_key), .target = TS_ETCD_CMP_MOD,
                       .result = TS_ETCD_EQUAL, .number = cj->cmp_version};
    ts_etcd_txn_result res = {0};
    char err[512] = "";
    ts_etcd_status st = store_down(gc) ? TS_ETCD_E_UNAVAILABLE
                                       : ts_etcd_txn(gc->etcd, &cmp, 1, ops, k, NULL, 0, &res, err,
                                                     sizeof err);
    store_note(gc, st);
    free(ops);
    int16_t e = KAFKA_NONE;
    if (st != TS_ETCD_OK) {
        blog_warn("group %s: committing %zu offset(s) to etcd failed: %s", cj->group, k,
                  err[0] ? err : "etcd was unreachable a moment ago");
        e = KAFKA_COORDINATOR_NOT_AVAILABLE;
    } else if (!res.succeeded) {
        blog_info("group %s: commit refused: __consumer_offsets partition %d changed in etcd "
                  "(this broker may no longer coordinate it)",
                  cj->group, cj->opart);
        e = KAFKA_NOT_COORDINATOR;
    }
    ts_etcd_txn_result_free(&res);
    for (size_t i = 0; i < k; i++) recs[i].err = e;
    return e;
}

/* Encodes every record's key and value; NULL entries on out of memory. */
static int commit_encode(commit_job *cj, char **keys, char **vals, size_t *sizes)
{
    gcluster *gc = cj->b->gc;
    for (size_t i = 0; i < cj->n; i++) {
        gc_commit *r = &cj->recs[i];
        char key[1400];
        int kl = group_kv_key(key, sizeof key, gc->prefix, cj->group, r->topic, r->partition);
        group_kv_value v = {r->offset, r->leader_epoch, r->metadata, cj->now_ms};
        keys[i] = kl < 0 ? NULL : strdup(key);
        vals[i] = group_kv_encode(&v);
        if (!keys[i] || !vals[i]) return -1;
        sizes[i] = (size_t)kl + strlen(vals[i]);
    }
    return 0;
}

static void commit_run(bjob *j)
{
    commit_job *cj = (commit_job *)j;
    char **keys = calloc(cj->n, sizeof(char *)), **vals = calloc(cj->n, sizeof(char *));
    size_t *sizes = calloc(cj->n, sizeof(size_t));
    size_t at = 0;
    if (keys && vals && sizes && commit_encode(cj, keys, vals, sizes) == 0) {
        /* After a failed txn the rest is not tried: it would fail alike. */
        while (at < cj->n) {
            size_t k = group_kv_chunk(sizes + at, cj->n - at, GC_TXN_MAX_OPS, GC_TXN_MAX_BYTES);
            if (commit_txn(cj, cj->recs + at, k, keys + at, vals + at) != KAFKA_NONE) break;
            at += k;
        }
    }
    int16_t rest = at < cj->n && cj->recs[at].err ? cj->recs[at].err : KAFKA_COORDINATOR_NOT_AVAILABLE;
    for (size_t i = at; i < cj->n; i++) cj->recs[i].err = rest;
    for (size_t i = 0; keys && vals && i < cj->n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    free(sizes);
}

/* Applies what etcd acknowledged to the loaded group (when this broker
 * still coordinates it at the same load), then answers. */
static void commit_done(bjob *j)
{
    commit_job *cj = (commit_job *)j;
    broker *b = cj->b;
    gcluster *gc = b->gc;
    gc_part *s = &gc->parts[cj->opart];
    bgroup *g = s->state == GP_LOADED && s->gen == cj->gen ? group_find(b, cj->group, 1) : NULL;
    for (size_t i = 0; g && i < cj->n; i++)
        if (!cj->recs[i].err)
            group_commit_offset(g, cj->recs[i].topic, cj->recs[i].partition, cj->recs[i].offset,
                                cj->recs[i].leader_epoch, cj->recs[i].metadata);
    cj->done(b, cj->arg, cj->recs, cj->n);
    free(cj->group);
    free(cj);
}

typedef struct pid_job {
    bjob j;
    broker *b;
    int64_t block, start;
    int ok;
    char err[512];
    gc_pids_fn done;
} pid_job;

/* One CAS round on producer_ids: 1 reserved, 0 lost the race, -1 failed. */
static int pid_cas(pid_job *pj, const char *key)
{
    gcluster *gc = pj->b->gc;
    ts_etcd_resp r = {0};
    ts_etcd_status st = ts_etcd_get(gc->etcd, key, strlen(key), 0, 0, &r, pj->err, sizeof pj->err);
    store_note(gc, st);
    if (st != TS_ETCD_OK) return -1;
    int64_t next = gc->pid_first, rev = 0;
    if (r.nkvs && pid_block_decode(r.kvs[0].value, r.kvs[0].value_len, &next) != 0) {
        snprintf(pj->err, sizeof pj->err, "%s holds no {\"next\": n}", key);
        ts_etcd_resp_free(&r);
        return -1;
    }
    if (r.nkvs) rev = r.kvs[0].mod_revision;
    ts_etcd_resp_free(&r);
    if (next < 0 || next > INT64_MAX - pj->block) {
        snprintf(pj->err, sizeof pj->err, "producer ids exhausted (%s = %lld)", key, (long long)next);
        return -1;
    }
    char *val = pid_block_encode(next + pj->block);
    if (!val) return -1;
    /* Absent: create it (create_revision 0); present: at the version read. */
    ts_etcd_cmp cmp = {.key = key, .key_len = strlen(key),
                       .target = rev ? TS_ETCD_CMP_MOD : TS_ETCD_CMP_CREATE,
                       .result = TS_ETCD_EQUAL, .number = rev};
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val)};
    ts_etcd_txn_result res = {0};
    st = ts_etcd_txn(gc->etcd, &cmp, 1, &put, 1, NULL, 0, &res, pj->err, sizeof pj->err);
    store_note(gc, st);
    free(val);
    int won = st == TS_ETCD_OK && res.succeeded;
    ts_etcd_txn_result_free(&res);
    if (st != TS_ETCD_OK) return -1;
    if (won) pj->start = next;
    return won;
}

static void pid_run(bjob *j)
{
    pid_job *pj = (pid_job *)j;
    gcluster *gc = pj->b->gc;
    char key[400];
    snprintf(key, sizeof key, "%sproducer_ids", gc->prefix);
    if (store_down(gc)) {
        snprintf(pj->err, sizeof pj->err, "etcd was unreachable a moment ago");
        return;
    }
    for (int round = 0; round < GC_PID_CAS_ROUNDS; round++) {
        int rc = pid_cas(pj, key);
        if (rc != 0) {
            pj->ok = rc > 0;
            return;
        }
    }
    snprintf(pj->err, sizeof pj->err, "%d CAS rounds on %s lost to other brokers", GC_PID_CAS_ROUNDS,
             key);
}

static void pid_done(bjob *j)
{
    pid_job *pj = (pid_job *)j;
    if (pj->ok)
        blog_info("producer ids %lld..%lld reserved in etcd", (long long)pj->start,
                  (long long)(pj->start + pj->block - 1));
    else
        blog_warn("reserving producer ids in etcd failed (InitProducerId answers "
                  "COORDINATOR_NOT_AVAILABLE, retriable): %s",
                  pj->err);
    pj->done(pj->b, pj->ok, pj->start, pj->start + pj->block);
    free(pj);
}

/* ------------------------------------------------------------ the loop */

static const char OFFSETS_TOPIC[] = "__consumer_offsets";

int group_cluster_start(broker *b, char *err, size_t errlen)
{
    const char *url = bconfig_get(&b->cfg, "metadata.store.url");
    if (!url || !*url) return 0;
    gcluster *gc = calloc(1, sizeof(*gc));
    if (!gc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *name = bconfig_get(&b->cfg, "cluster.name");
    snprintf(gc->prefix, sizeof gc->prefix, "/%s/", name && *name ? name : "tierstore");
    int64_t n = bconfig_int(&b->cfg, "offsets.topic.num.partitions");
    gc->nparts = (int32_t)(n > 0 ? n : 50);
    gc->parts = calloc((size_t)gc->nparts, sizeof(*gc->parts));
    /* A single node turned into a cluster member may have handed out ids
     * from its own counter: the cluster's first block starts past them. */
    gc->pid_first = b->producer_id_limit > GC_PID_FIRST ? b->producer_id_limit : GC_PID_FIRST;
    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = url;
    o.op_timeout_ms = 5000;
    o.max_response_bytes = 256u << 20; /* the whole groups/ range in one answer */
    char eerr[512] = "";
    if (!gc->parts || ts_etcd_create(&o, &gc->etcd, eerr, sizeof eerr) != TS_ETCD_OK ||
        !(gc->pool = bpool_create(b, "group-store", 1))) {
        snprintf(err, errlen, "group coordinator: %s", eerr[0] ? eerr : "out of memory");
        ts_etcd_destroy(gc->etcd);
        free(gc->parts);
        free(gc);
        return -1;
    }
    b->gc = gc; /* .broker/offsets was not loaded (meta_load): groups are etcd's */
    /* Ids come from etcd blocks only: the local counter is not used. */
    b->next_producer_id = b->producer_id_limit = 0;
    return 0;
}

void group_cluster_stop(broker *b)
{
    gcluster *gc = b->gc;
    if (!gc) return;
    bpool_destroy(gc->pool); /* jobs finish; their `done` is queued */
    gc->pool = NULL;
    net_drain(b);
    ts_etcd_destroy(gc->etcd);
    free(gc->parts);
    free(gc);
    b->gc = NULL;
}

int32_t group_cluster_partition(const broker *b, const char *group)
{
    return group_partition_for(group, b->gc->nparts);
}

/* The offsets partition's state when this broker leads it, else NULL. */
static const cl_pstate *led_state(const broker *b, int32_t p)
{
    const cl_pstate *ps = cluster_pstate(b, OFFSETS_TOPIC, p);
    return ps && ps->leader == b->node_id && cluster_is_registered(b) ? ps : NULL;
}

int16_t group_cluster_check(broker *b, const char *group)
{
    int32_t p = group_cluster_partition(b, group);
    const cl_pstate *ps = led_state(b, p);
    if (!ps) return KAFKA_NOT_COORDINATOR;
    gc_part *s = &b->gc->parts[p];
    if (s->state != GP_LOADED || s->leader_epoch != ps->leader_epoch)
        return KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
    return KAFKA_NONE;
}

const cl_broker *group_cluster_coordinator(broker *b, const char *group)
{
    const cl_pstate *ps = cluster_pstate(b, OFFSETS_TOPIC, group_cluster_partition(b, group));
    return ps && ps->leader >= 0 ? cluster_broker(b, ps->leader) : NULL;
}

static void part_unload(broker *b, int32_t p)
{
    gc_part *s = &b->gc->parts[p];
    int was = s->state;
    s->state = GP_UNLOADED;
    s->gen++;
    int n = group_drop_partition(b, p);
    if (was == GP_LOADED)
        blog_info("group coordinator: no longer coordinating __consumer_offsets partition %d "
                  "(%d group(s) unloaded)",
                  p, n);
}

void group_cluster_tick(broker *b)
{
    gcluster *gc = b->gc;
    load_job *lj = NULL;
    int64_t now = bclock_ms();
    for (int32_t p = 0; p < gc->nparts; p++) {
        const cl_pstate *ps = led_state(b, p);
        gc_part *s = &gc->parts[p];
        if (s->state != GP_UNLOADED && (!ps || ps->leader_epoch != s->leader_epoch))
            part_unload(b, p);
        if (!ps || s->state != GP_UNLOADED || now < gc->retry_at) continue;
        if (!lj && (!(lj = calloc(1, sizeof(*lj))) ||
                    !(lj->gens = calloc((size_t)gc->nparts, sizeof(uint32_t))))) {
            free(lj);
            return; /* out of memory: the next tick tries again */
        }
        s->state = GP_LOADING;
        if (++s->gen == 0) s->gen = 1; /* 0 means "not in the job" */
        s->leader_epoch = ps->leader_epoch;
        lj->gens[p] = s->gen;
    }
    if (!lj) return;
    lj->b = b;
    lj->j.run = load_run;
    lj->j.done = load_done;
    bpool_submit(gc->pool, &lj->j);
}

void group_cluster_commit(broker *b, const char *group, gc_commit *recs, size_t n,
                          gc_commit_fn done, void *arg)
{
    gcluster *gc = b->gc;
    int32_t p = group_cluster_partition(b, group);
    const cl_pstate *ps = led_state(b, p);
    commit_job *cj = ps ? calloc(1, sizeof(*cj)) : NULL;
    if (!cj || !(cj->group = strdup(group))) {
        for (size_t i = 0; i < n; i++) recs[i].err = ps ? KAFKA_COORDINATOR_NOT_AVAILABLE : KAFKA_NOT_COORDINATOR;
        free(cj);
        done(b, arg, recs, n);
        return;
    }
    cj->b = b;
    cj->recs = recs;
    cj->n = n;
    cj->opart = p;
    cj->gen = gc->parts[p].gen;
    snprintf(cj->cmp_key, sizeof cj->cmp_key, "%spartitions/%s/%d", gc->prefix, OFFSETS_TOPIC, p);
    cj->cmp_version = ps->version;
    cj->now_ms = bclock_wall_ms();
    cj->done = done;
    cj->arg = arg;
    cj->j.run = commit_run;
    cj->j.done = commit_done;
    bpool_submit(gc->pool, &cj->j);
}

void group_cluster_reserve_pids(broker *b, int64_t block, gc_pids_fn done)
{
    pid_job *pj = calloc(1, sizeof(*pj));
    if (!pj) {
        done(b, 0, 0, 0);
        return;
    }
    pj->b = b;
    pj->block = block;
    pj->done = done;
    pj->j.run = pid_run;
    pj->j.done = pid_done;
    bpool_submit(b->gc->pool, &pj->j);
}
