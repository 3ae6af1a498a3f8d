/*
 * admin_records.c — CreatePartitions (v0-3) and DeleteRecords (v0-2).
 *
 * CreatePartitions only grows a topic: a count at or below the current one
 * answers INVALID_PARTITIONS, manual assignments INVALID_REPLICA_ASSIGNMENT
 * (not kept by the request parser). In a cluster the assignment in etcd
 * grows instead (cluster_alter.c) and every broker follows. On one node the
 * new partitions are created (the topic's overrides apply to them) on the
 * topic pool, then added to the registry in a block of
 * their own (no bpart moves: jobs and parked fetches point at them) and
 * the topic list is saved; the storage knows them too (directories,
 * bucket), so an adoption from the bucket finds the new count.
 *
 * DeleteRecords moves each partition's log start through the plugin's
 * delete_records (remote data included: manifest entries wholly below and
 * their objects go), on the topic pool (manifest PUTs, object deletes).
 * Offset -1 means the high watermark (the log end on one node); past it:
 * OFFSET_OUT_OF_RANGE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define PARTITIONS_MAX 100000

/* -------------------------------------------------------- CreatePartitions */

typedef struct cp_ent {
    char *name;
    int32_t first, count; /* grow [first, count) */
    int16_t err;
    char msg[512];
    int run; /* open partitions on the pool */
    int cl;  /* a cluster's: grown in etcd (cluster_alter.c) */
    bpart *parts;
    struct cp_op *op;
} cp_ent;

typedef struct cp_op {
    bjob j;
    broker *b;
    reply r;
    int32_t n;
    cp_ent *e;
    int pending; /* cluster entries not answered yet */
} cp_op;

static void cp_free(cp_op *o)
{
    for (int32_t i = 0; i < o->n; i++) {
        free(o->e[i].name);
        free(o->e[i].parts); /* only set when never handed over (no pids yet) */
    }
    free(o->e);
    free(o);
}

static void cp_run(bjob *j)
{
    cp_op *o = (cp_op *)j;
    for (int32_t i = 0; i < o->n; i++) {
        cp_ent *e = &o->e[i];
        if (!e->run) continue;
        tsp_status st = topic_parts_open(o->b, e->name, e->first, e->count - e->first, &e->parts,
                                         e->msg, sizeof e->msg);
        if (st != TSP_OK) {
            e->err = kafka_error_from_status(st);
            if (e->err == KAFKA_NONE) e->err = KAFKA_UNKNOWN_SERVER_ERROR;
        }
    }
}

static void cp_done(bjob *j)
{
    cp_op *o = (cp_op *)j;
    broker *b = o->b;
    int f = o->r.hdr.flexible;
    for (int32_t i = 0; i < o->n; i++) {
        cp_ent *e = &o->e[i];
        btopic *t = e->run ? topic_find(b, e->name) : NULL;
        if (t) t->growing = 0;
        if (!e->run || e->err) continue;
        int rc = topic_grow(b, e->name, e->first, e->count - e->first, e->parts);
        e->parts = NULL;
        if (rc) {
            e->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(e->msg, sizeof e->msg, "topic '%s' was deleted meanwhile", e->name);
        } else {
            blog_info("topic %s: %d partitions (was %d)", e->name, e->count, e->first);
        }
    }
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        kw_str(&w, f, o->e[i].name);
        kw_i16(&w, o->e[i].err);
        kw_str(&w, f, o->e[i].err ? o->e[i].msg : NULL);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
    cp_free(o);
}

/* Loop: what is answered without the storage. */
static void cp_check(broker *b, cp_ent *e, const kafka_CreatePartitionsTopic *t, int validate)
{
    btopic *bt = topic_resolve(b, e->name);
    if (!bt) {
        /* In a cluster a name deleted but whose data is not yet is retriable. */
        e->err = cluster_delete_pending(b, e->name, e->msg, sizeof e->msg);
        if (!e->err) {
            e->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(e->msg, sizeof e->msg, "topic '%s' does not exist", e->name);
        }
    } else if (t->nassignments >= 0) {
        e->err = KAFKA_INVALID_REPLICA_ASSIGNMENT;
        snprintf(e->msg, sizeof e->msg, "manual replica assignments are not supported");
    } else if (t->count <= bt->npartitions) {
        e->err = KAFKA_INVALID_PARTITIONS;
        snprintf(e->msg, sizeof e->msg,
                 t->count == bt->npartitions
                     ? "topic '%s' already has %d partitions"
                     : "topic '%s' has %d partitions: CreatePartitions only adds partitions",
                 e->name, bt->npartitions);
    } else if (t->count > PARTITIONS_MAX) {
        e->err = KAFKA_INVALID_PARTITIONS;
        snprintf(e->msg, sizeof e->msg, "%d partitions: at most %d", t->count, PARTITIONS_MAX);
    } else if (bt->growing) {
        e->err = KAFKA_REQUEST_TIMED_OUT;
        snprintf(e->msg, sizeof e->msg, "another CreatePartitions of '%s' is running; retry",
                 e->name);
    } else if (b->cluster) {
        /* The assignment lives in etcd (topics/<t>): grown there, then
         * every broker follows (cluster_alter.c). */
        e->cl = 1;
    } else if (!validate) {
        e->first = bt->npartitions;
        e->count = t->count;
        e->run = 1;
        bt->growing = 1;
    }
}

static void cp_cl_done(broker *b, void *arg, int16_t err, const char *msg)
{
    cp_ent *e = arg;
    (void)b;
    e->err = err;
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "");
    if (--e->op->pending == 0) cp_done(&e->op->j);
}

/* Starts the cluster entries; the answer waits for the last of them. */
static void cp_cluster_start(broker *b, cp_op *o, const kafka_CreatePartitionsRequest *cq)
{
    o->pending = 1; /* held while starting */
    for (int32_t i = 0; i < o->n; i++) {
        cp_ent *e = &o->e[i];
        if (!e->cl || e->err) continue;
        e->op = o;
        o->pending++;
        e->err = cluster_grow_topic(b, e->name, cq->topics[i].count, cq->validate_only,
                                    cq->timeout_ms, cp_cl_done, e, e->msg, sizeof e->msg);
        if (e->err) o->pending--;
    }
    if (--o->pending == 0) cp_done(&o->j);
}

void handle_CreatePartitions(broker *b, reply *r, kafka_request *q)
{
    kafka_CreatePartitionsRequest *cq = &q->u.create_partitions;
    cp_op *o = calloc(1, sizeof(*o));
    if (o) o->e = calloc((size_t)(cq->ntopics > 0 ? cq->ntopics : 1), sizeof(*o->e));
    if (!o || !o->e) {
        free(o);
        reply_drop(b, r);
        return;
    }
    o->b = b;
    o->r = *r;
    r->c = NULL;
    int any = 0;
    for (int32_t i = 0; i < cq->ntopics; i++) {
        cp_ent *e = &o->e[o->n++];
        e->name = strdup(cq->topics[i].name);
        if (!e->name) {
            e->err = KAFKA_UNKNOWN_SERVER_ERROR;
            continue;
        }
        if (!acl_check(b, &o->r, ACL_OP_ALTER, ACL_RES_TOPIC, e->name)) {
            e->err = KAFKA_TOPIC_AUTHORIZATION_FAILED;
            snprintf(e->msg, sizeof e->msg, "ALTER on topic '%s' is needed", e->name);
            continue;
        }
        cp_check(b, e, &cq->topics[i], cq->validate_only);
        any |= e->run;
    }
    o->j.run = cp_run;
    o->j.done = cp_done;
    if (b->cluster)
        cp_cluster_start(b, o, cq);
    else if (any)
        bpool_submit(b->topic_pool, &o->j);
    else
        cp_done(&o->j);
}

/* ----------------------------------------------------------- DeleteRecords */

typedef struct dr_part {
    int32_t partition;
    int64_t offset, low;
    tsp_partition *h;
    int16_t err;
} dr_part;

typedef struct dr_topic {
    char *name;
    int32_t n;
    dr_part *ps;
} dr_topic;

typedef struct dr_op {
    bjob j;
    broker *b;
    reply r;
    int32_t n;
    dr_topic *t;
} dr_op;

static void dr_free(dr_op *o)
{
    for (int32_t i = 0; i < o->n; i++) {
        free(o->t[i].name);
        free(o->t[i].ps);
    }
    free(o->t);
    free(o);
}

static void dr_run(bjob *j)
{
    dr_op *o = (dr_op *)j;
    const tsp_plugin *pl = o->b->pl;
    for (int32_t i = 0; i < o->n; i++)
        for (int32_t k = 0; k < o->t[i].n; k++) {
            dr_part *p = &o->t[i].ps[k];
            if (p->err) continue;
            char err[512] = "";
            tsp_status st = pl->delete_records(p->h, p->offset, &p->low, err, sizeof err);
            if (st == TSP_OK) continue;
            p->err = kafka_error_from_status(st);
            if (p->err == KAFKA_NONE) p->err = KAFKA_UNKNOWN_SERVER_ERROR;
            blog_warn("DeleteRecords %s-%d below %lld: %s: %s", o->t[i].name, p->partition,
                      (long long)p->offset, pl->status_name(st), err);
        }
}

static void dr_done(bjob *j)
{
    dr_op *o = (dr_op *)j;
    int f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        kw_str(&w, f, o->t[i].name);
        kw_array(&w, f, o->t[i].n);
        for (int32_t k = 0; k < o->t[i].n; k++) {
            const dr_part *p = &o->t[i].ps[k];
            kw_i32(&w, p->partition);
            kw_i64(&w, p->err ? -1 : p->low);
            kw_i16(&w, p->err);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(o->b, &o->r, &w);
    dr_free(o);
}

static int dr_copy(broker *b, const reply *r, dr_op *o, const kafka_DeleteRecordsRequest *dq)
{
    int has = TSP_HAS(b->pl, delete_records);
    for (int32_t i = 0; i < dq->ntopics; i++) {
        dr_topic *t = &o->t[o->n++];
        const kafka_DeleteRecordsTopic *in = &dq->topics[i];
        t->name = strdup(in->name);
        t->ps = calloc((size_t)(in->npartitions > 0 ? in->npartitions : 1), sizeof(*t->ps));
        if (!t->name || !t->ps) return -1;
        int allowed = acl_check(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, t->name);
        btopic *bt = allowed ? topic_resolve(b, t->name) : NULL;
        for (int32_t k = 0; k < in->npartitions; k++) {
            dr_part *p = &t->ps[t->n++];
            p->partition = in->partitions[k].partition_index;
            p->offset = in->partitions[k].offset;
            if (!allowed) {
                p->err = KAFKA_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            bpart *bp = topic_part_of(bt, p->partition, &p->err);
            if (bp) p->h = bp->h;
            if (!p->err && !has) p->err = KAFKA_INVALID_REQUEST; /* plugin older than 1.3 */
            if (!p->err && p->offset < -1) p->err = KAFKA_OFFSET_OUT_OF_RANGE;
        }
    }
    return 0;
}

void handle_DeleteRecords(broker *b, reply *r, kafka_request *q)
{
    kafka_DeleteRecordsRequest *dq = &q->u.delete_records;
    dr_op *o = calloc(1, sizeof(*o));
    if (o) o->t = calloc((size_t)(dq->ntopics > 0 ? dq->ntopics : 1), sizeof(*o->t));
    if (!o || !o->t || dr_copy(b, r, o, dq)) {
        if (o && o->t) dr_free(o);
        else free(o);
        reply_drop(b, r);
        return;
    }
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->j.run = dr_run;
    o->j.done = dr_done;
    bpool_submit(b->topic_pool, &o->j);
}
