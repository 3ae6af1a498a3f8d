/*
 * cluster_delete.c — durable topic deletion in a cluster: Kafka's
 * ZooKeeper-era /admin/delete_topics/<t>, here the etcd key deletes/<t>.
 *
 * Why a marker: both incarnations of a name share the bucket's
 * <topic>/<partition>/ keys (architecture 6.1), so the old incarnation's
 * objects must be gone before the name is created again, and nothing of the
 * old one may write or delete under that prefix afterwards. Neither holds if
 * the replicas alone delete the bucket's objects: a topic deleted while none
 * of its replicas runs keeps them (a re-create then recovers the old
 * manifest), and a slow replica's LIST-and-delete can run after a re-create.
 *
 * The protocol:
 *   1. DeleteTopics removes topics/<t> and partitions/<t>/ and writes
 *      deletes/<t> = {"id","partitions","pending"} in one txn; "pending" =
 *      every replica of the deleted assignment.
 *   2. Each broker in "pending", once its local delete of the topic ended
 *      (topics.c's reap returned: no handle of the old incarnation is left
 *      and none of its uploads or bucket deletes runs; no open of its
 *      replicas runs either), drops itself from
 *      "pending" (CAS on the marker's mod_revision). A broker that was down
 *      does so as soon as it sees the marker: it never opens a topic etcd
 *      lacks, and its sweep of local leftovers never touches the bucket.
 *   3. The controller, on each pass, takes a marker none of whose pending
 *      brokers is live (a dead broker holds nothing open) and has its own
 *      broker delete every partition through the plugin's partition_delete
 *      (local files, if any, and the bucket's objects, also of partitions it
 *      never held), then deletes the marker in a txn comparing the controller
 *      epoch and the marker's create_revision.
 *   4. CreateTopics compares deletes/<t> absent in its create-only txn.
 * A crash anywhere leaves the marker and the next pass, or the next
 * controller, does the rest again: every step is idempotent.
 *
 * Threads: loop (the view's markers, the confirmations' and the purges'
 * bookkeeping), cluster pool (ack_run, unmark_run, and
 * cluster_delete_write for DeleteTopics), topic pool (purge_run: the
 * bucket deletes), cluster thread (cluster_delete_purge_post, controller.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cluster_internal.h"

#define DELETE_RMW_ATTEMPTS 5
#define PURGE_RETRY_MS 5000
#define ACK_RETRY_MS 1000

/* ------------------------------------------------------------ the value */

char *cluster_delete_json(const char *id, int32_t nparts, const int32_t *pending, int32_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_CreateIntArray(pending, n);
    char *s = NULL;
    if (o && a) {
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddNumberToObject(o, "partitions", nparts);
        cJSON_AddItemToObject(o, "pending", a);
        a = NULL;
        s = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(a);
    cJSON_Delete(o);
    return s;
}

int cluster_parse_delete(const char *json, cdelete *d)
{
    cJSON *o = cJSON_Parse(json);
    int rc = -1;
    if (!o) return -1;
    const cJSON *id = cJSON_GetObjectItem(o, "id"), *n = cJSON_GetObjectItem(o, "partitions");
    int32_t np = cluster_json_ids(cJSON_GetObjectItem(o, "pending"), d->pending,
                                  CLUSTER_DELETE_MAX_PENDING);
    if (cJSON_IsString(id) && strlen(id->valuestring) < sizeof d->id && cJSON_IsNumber(n) &&
        n->valuedouble >= 1 && n->valuedouble <= 1000000 && np >= 0) {
        snprintf(d->id, sizeof d->id, "%s", id->valuestring);
        d->npartitions = (int32_t)n->valuedouble;
        d->npending = np;
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

void cluster_delete_free(cdelete *d)
{
    if (!d) return;
    free(d->name);
    free(d);
}

static int pending_has(const cdelete *d, int32_t id)
{
    for (int32_t i = 0; i < d->npending; i++)
        if (d->pending[i] == id) return 1;
    return 0;
}

static void pending_drop(cdelete *d, int32_t id)
{
    int32_t k = 0;
    for (int32_t i = 0; i < d->npending; i++)
        if (d->pending[i] != id) d->pending[k++] = d->pending[i];
    d->npending = k;
}

/* Every broker that holds a replica of t, once each. */
static int32_t replicas_union(const ctopic *t, int32_t *out)
{
    int32_t n = 0;
    for (int32_t p = 0; p < t->npartitions; p++)
        for (int32_t k = 0; k < t->ps[p].nreplicas; k++) {
            int32_t r = t->ps[p].replicas[k], dup = 0;
            for (int32_t i = 0; i < n; i++) dup |= out[i] == r;
            if (!dup && n < CLUSTER_DELETE_MAX_PENDING) out[n++] = r;
        }
    return n;
}

/* ---------------------------------------------------- DeleteTopics' txn */

/* The marker for the topics/<t> value json (malloc'd), its id into id. */
static char *marker_for(const char *json, char *id)
{
    ctopic *t = calloc(1, sizeof(*t));
    char *val = NULL;
    if (t && cluster_parse_topic(json, t) == 0) {
        int32_t pend[CLUSTER_DELETE_MAX_PENDING];
        int32_t n = replicas_union(t, pend);
        snprintf(id, 32, "%s", t->id);
        val = cluster_delete_json(t->id, t->npartitions, pend, n);
    }
    cluster_topic_free(t);
    return val;
}

int16_t cluster_delete_write(bcluster *c, const char *name, char *id, char *msg, size_t msglen)
{
    char kt[600], kp[600], kd[600];
    cluster_key(c, kt, sizeof kt, "topics/%s", name);
    cluster_key(c, kp, sizeof kp, "partitions/%s/", name);
    cluster_key(c, kd, sizeof kd, "deletes/%s", name);
    for (int attempt = 0; attempt < DELETE_RMW_ATTEMPTS; attempt++) {
        ts_etcd_resp r;
        memset(&r, 0, sizeof r);
        if (ts_etcd_get(c->etcd, kt, strlen(kt), 0, 0, &r, msg, msglen) != TS_ETCD_OK)
            return KAFKA_REQUEST_TIMED_OUT;
        if (r.nkvs == 0) {
            ts_etcd_resp_free(&r);
            snprintf(msg, msglen, "topic '%s' does not exist", name);
            return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        }
        int64_t rev = r.kvs[0].mod_revision;
        char *val = marker_for(r.kvs[0].value, id);
        ts_etcd_resp_free(&r);
        if (!val) {
            snprintf(msg, msglen, "topics/%s in the metadata store is not a topic", name);
            return KAFKA_UNKNOWN_SERVER_ERROR;
        }
        ts_etcd_cmp same = {.key = kt, .key_len = strlen(kt), .target = TS_ETCD_CMP_MOD,
                            .result = TS_ETCD_EQUAL, .number = rev};
        ts_etcd_op ops[3] = {
            {.type = TS_ETCD_OP_DELETE, .key = kt, .key_len = strlen(kt)},
            {.type = TS_ETCD_OP_DELETE, .key = kp, .key_len = strlen(kp), .prefix = 1},
            {.type = TS_ETCD_OP_PUT, .key = kd, .key_len = strlen(kd), .value = val,
             .value_len = strlen(val)},
        };
        ts_etcd_txn_result tr;
        ts_etcd_status st = ts_etcd_txn(c->etcd, &same, 1, ops, 3, NULL, 0, &tr, msg, msglen);
        free(val);
        if (st != TS_ETCD_OK) return KAFKA_REQUEST_TIMED_OUT;
        int ok = tr.succeeded;
        ts_etcd_txn_result_free(&tr);
        if (ok) return KAFKA_NONE;
        /* topics/<t> changed in between (CreatePartitions, AlterConfigs): again */
    }
    snprintf(msg, msglen, "topics/%s kept changing while it was being deleted; try again", name);
    return KAFKA_REQUEST_TIMED_OUT;
}

/* ------------------------------------------------- the view (loop) */

cdelete *cluster_delete_find(const bcluster *c, const char *name)
{
    for (cdelete *d = c->deletes; d; d = d->next)
        if (!strcmp(d->name, name)) return d;
    return NULL;
}

static void delete_unlink(bcluster *c, cdelete *d)
{
    for (cdelete **pp = &c->deletes; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            return;
        }
}

void cluster_delete_apply(broker *b, const cl_kv *kv, const char *name)
{
    bcluster *c = b->cluster;
    cdelete *d = cluster_delete_find(c, name);
    if (kv->del) {
        if (!d) return;
        blog_info("topic %s (id %s): its delete is complete", name, d->id);
        delete_unlink(c, d);
        cluster_delete_free(d);
        return;
    }
    cdelete n;
    memset(&n, 0, sizeof n);
    if (cluster_parse_delete(kv->value, &n) != 0) {
        blog_error("etcd: deletes/%s does not hold a topic delete; ignored", name);
        return;
    }
    if (!d) {
        if (!(d = calloc(1, sizeof(*d))) || !(d->name = strdup(name))) {
            cluster_delete_free(d);
            return; /* the next snapshot brings it again */
        }
        d->next = c->deletes;
        c->deletes = d;
    }
    if (d->create_revision != kv->create_revision) d->ack_after_ms = 0; /* another delete */
    memcpy(d->id, n.id, sizeof d->id);
    d->npartitions = n.npartitions;
    d->npending = n.npending;
    memcpy(d->pending, n.pending, sizeof d->pending);
    d->mod_revision = kv->mod_revision;
    d->create_revision = kv->create_revision;
    d->seen = 1;
    cluster_deletes_tick(b);
}

void cluster_deletes_snapshot_begin(bcluster *c)
{
    for (cdelete *d = c->deletes; d; d = d->next) d->seen = 0;
}

void cluster_deletes_snapshot_end(bcluster *c)
{
    cdelete **pp = &c->deletes;
    while (*pp) {
        cdelete *d = *pp;
        if (d->seen) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        cluster_delete_free(d);
    }
}

void cluster_delete_refusal_msg(const char *name, char *msg, size_t msglen)
{
    snprintf(msg, msglen,
             "topic '%s' is marked for deletion: the data of its previous incarnation is still "
             "being deleted (deletes/%s in the metadata store); retry shortly",
             name, name);
}

int16_t cluster_delete_pending(const broker *b, const char *name, char *msg, size_t msglen)
{
    if (!b->cluster || !cluster_delete_find(b->cluster, name)) return KAFKA_NONE;
    cluster_delete_refusal_msg(name, msg, msglen);
    return KAFKA_THROTTLING_QUOTA_EXCEEDED;
}

/* ------------------------------------ a replica's confirmation (step 2) */

typedef struct ack_job {
    bjob j;
    broker *b;
    char name[256];
    int64_t create_revision;
    int ok;
    char err[512];
} ack_job;

/* Cluster pool: drops this broker from the marker's "pending" (CAS on its
 * mod_revision, retried against the other replicas' confirmations). A
 * marker gone, or another delete of the name, needs nothing. */
static void ack_run(bjob *jb)
{
    ack_job *a = (ack_job *)jb;
    bcluster *c = a->b->cluster;
    char key[600];
    cluster_key(c, key, sizeof key, "deletes/%s", a->name);
    for (int attempt = 0; attempt < DELETE_RMW_ATTEMPTS; attempt++) {
        ts_etcd_resp r;
        cdelete d;
        memset(&r, 0, sizeof r);
        memset(&d, 0, sizeof d);
        if (ts_etcd_get(c->etcd, key, strlen(key), 0, 0, &r, a->err, sizeof a->err) != TS_ETCD_OK)
            return;
        if (r.nkvs == 0 || r.kvs[0].create_revision != a->create_revision ||
            cluster_parse_delete(r.kvs[0].value, &d) != 0 || !pending_has(&d, a->b->node_id)) {
            ts_etcd_resp_free(&r);
            a->ok = 1;
            return;
        }
        int64_t rev = r.kvs[0].mod_revision;
        ts_etcd_resp_free(&r);
        pending_drop(&d, a->b->node_id);
        char *val = cluster_delete_json(d.id, d.npartitions, d.pending, d.npending);
        if (!val) return;
        ts_etcd_cmp same = {.key = key, .key_len = strlen(key), .target = TS_ETCD_CMP_MOD,
                            .result = TS_ETCD_EQUAL, .number = rev};
        ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key),
                          .value = val, .value_len = strlen(val)};
        ts_etcd_txn_result tr;
        ts_etcd_status st = ts_etcd_txn(c->etcd, &same, 1, &put, 1, NULL, 0, &tr, a->err,
                                        sizeof a->err);
        free(val);
        if (st != TS_ETCD_OK) return;
        a->ok = tr.succeeded;
        ts_etcd_txn_result_free(&tr);
        if (a->ok) return;
    }
    snprintf(a->err, sizeof a->err, "deletes/%s kept changing", a->name);
}

static void ack_done(bjob *jb)
{
    ack_job *a = (ack_job *)jb;
    bcluster *c = a->b->cluster;
    cdelete *d = c ? cluster_delete_find(c, a->name) : NULL;
    if (d) {
        d->acking = 0;
        if (!a->ok) {
            d->ack_after_ms = bclock_ms() + ACK_RETRY_MS;
            blog_warn("topic %s: confirming in the metadata store that its local delete ended "
                      "here: %s; retried in %d ms", a->name, a->err, ACK_RETRY_MS);
        }
    }
    free(a);
}

void cluster_deletes_tick(broker *b)
{
    bcluster *c = b->cluster;
    int64_t now = bclock_ms();
    for (cdelete *d = c->deletes; d; d = d->next) {
        if (d->acking || now < d->ack_after_ms || !pending_has(d, b->node_id) || !c->pool)
            continue;
        /* Its local delete still runs here (or the view still has it, or an
         * open of its replicas that may recover the old manifest runs). */
        if (cluster_topic(c, d->name) || topic_find(b, d->name) || topic_is_doomed(b, d->name) ||
            cluster_opening(c, d->name))
            continue;
        ack_job *a = calloc(1, sizeof(*a));
        if (!a) return;
        a->j.run = ack_run;
        a->j.done = ack_done;
        a->b = b;
        snprintf(a->name, sizeof a->name, "%s", d->name);
        a->create_revision = d->create_revision;
        d->acking = 1;
        bpool_submit(c->pool, &a->j);
    }
}

/* ------------------------------- the controller's bucket delete (step 3) */

struct cl_purge {
    struct cl_purge *next;
    char name[256];
    char id[32];
    int32_t npartitions;
    int64_t create_revision; /* of the marker */
    int64_t epoch;           /* the controller epoch that asked */
    int running;             /* its bucket delete or its marker delete runs */
    int64_t retry_at_ms;     /* failed: not again before this */
};

typedef struct purge_job {
    bjob j;
    broker *b;
    struct cl_purge p; /* a copy: the loop's entry may go meanwhile */
    int ok, status;    /* status: of the marker's delete (1 done, 0 compare failed, -1 etcd) */
    char err[1024];
} purge_job;

static struct cl_purge *purge_find(const bcluster *c, const char *name)
{
    for (struct cl_purge *p = c->purges; p; p = p->next)
        if (!strcmp(p->name, name)) return p;
    return NULL;
}

static void purge_forget(bcluster *c, const char *name)
{
    for (struct cl_purge **pp = &c->purges; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->name, name)) {
            struct cl_purge *p = *pp;
            *pp = p->next;
            free(p);
            return;
        }
}

/* Topic pool: every partition of the deleted incarnation, through the
 * plugin's partition_delete: it opens the partition (a partition this
 * broker never held is recovered from the bucket's manifest), deletes the
 * local files and LISTs and deletes everything under <topic>/<p>/.
 * NOT_FOUND: neither here nor in the bucket. */
static void purge_run(bjob *jb)
{
    purge_job *j = (purge_job *)jb;
    broker *b = j->b;
    j->ok = 1;
    for (int32_t i = 0; i < j->p.npartitions; i++) {
        char msg[512] = "";
        tsp_status st = b->pl->partition_delete(b->eng, j->p.name, i, msg, sizeof msg);
        if (st != TSP_OK && st != TSP_E_NOT_FOUND) {
            snprintf(j->err, sizeof j->err, "partition %d: %s: %s", i, b->pl->status_name(st),
                     msg);
            j->ok = 0;
            return;
        }
    }
}

/* Cluster pool: the marker goes, if this broker is still the controller that
 * asked and the marker is still the one purged. */
static void unmark_run(bjob *jb)
{
    purge_job *j = (purge_job *)jb;
    bcluster *c = j->b->cluster;
    char kc[320], kd[600];
    cluster_key(c, kc, sizeof kc, "controller");
    cluster_key(c, kd, sizeof kd, "deletes/%s", j->p.name);
    ts_etcd_cmp cmps[2] = {
        {.key = kc, .key_len = strlen(kc), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = j->p.epoch},
        {.key = kd, .key_len = strlen(kd), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = j->p.create_revision},
    };
    ts_etcd_op del = {.type = TS_ETCD_OP_DELETE, .key = kd, .key_len = strlen(kd)};
    ts_etcd_txn_result r;
    j->status = -1;
    if (ts_etcd_txn(c->etcd, cmps, 2, &del, 1, NULL, 0, &r, j->err, sizeof j->err) != TS_ETCD_OK)
        return;
    j->status = r.succeeded;
    ts_etcd_txn_result_free(&r);
}

static void unmark_done(bjob *jb)
{
    purge_job *j = (purge_job *)jb;
    bcluster *c = j->b->cluster;
    struct cl_purge *p = c ? purge_find(c, j->p.name) : NULL;
    if (j->status == 1)
        blog_info("controller (epoch %lld): topic %s (id %s): deleted its %d partition(s) from "
                  "the bucket and its marker: the delete is complete",
                  (long long)j->p.epoch, j->p.name, j->p.id, j->p.npartitions);
    else if (j->status == 0)
        blog_info("controller (epoch %lld): topic %s: its marker changed meanwhile (or this "
                  "broker is no longer the controller); looking again",
                  (long long)j->p.epoch, j->p.name);
    else
        blog_warn("controller: topic %s: deleting its marker deletes/%s: %s; retried",
                  j->p.name, j->p.name, j->err);
    if (p && j->status >= 0) purge_forget(c, j->p.name);
    else if (p) {
        p->running = 0;
        p->retry_at_ms = bclock_ms() + PURGE_RETRY_MS;
    }
    free(j);
}

static void purge_done(bjob *jb)
{
    purge_job *j = (purge_job *)jb;
    bcluster *c = j->b->cluster;
    struct cl_purge *p = c ? purge_find(c, j->p.name) : NULL;
    if (p && j->ok && c->pool) {
        j->j.run = unmark_run;
        j->j.done = unmark_done;
        bpool_submit(c->pool, &j->j);
        return;
    }
    if (p) {
        blog_warn("controller: topic %s (id %s): deleting the old incarnation from the bucket: "
                  "%s; the name stays marked for deletion, retried in %d ms",
                  j->p.name, j->p.id, j->err, PURGE_RETRY_MS);
        p->running = 0;
        p->retry_at_ms = bclock_ms() + PURGE_RETRY_MS;
    }
    free(j);
}

/* Loop: starts the purge `want` unless one of the name runs or failed a
 * moment ago, or this broker's own delete of the name still runs. */
static void purge_begin(broker *b, const struct cl_purge *want)
{
    bcluster *c = b->cluster;
    struct cl_purge *p = purge_find(c, want->name);
    const cdelete *d = cluster_delete_find(c, want->name);
    if (p && (p->running || (p->create_revision == want->create_revision &&
                             bclock_ms() < p->retry_at_ms)))
        return;
    /* A pass that read the marker just before its delete, or ahead of this
     * view: the next pass asks again if it is still there. */
    if (!d || d->create_revision != want->create_revision) return;
    if (!b->topic_pool || topic_find(b, want->name) || topic_is_doomed(b, want->name) ||
        cluster_opening(c, want->name))
        return;
    purge_job *j = calloc(1, sizeof(*j));
    if (!p && j && (p = calloc(1, sizeof(*p)))) {
        p->next = c->purges;
        c->purges = p;
    }
    if (!j || !p) {
        free(j);
        return; /* the controller's next pass asks again */
    }
    struct cl_purge *next = p->next;
    *p = *want;
    p->next = next;
    p->running = 1;
    j->j.run = purge_run;
    j->j.done = purge_done;
    j->b = b;
    j->p = *p;
    blog_info("controller (epoch %lld): topic %s (id %s): no live broker holds it any more; "
              "deleting its %d partition(s) from the bucket",
              (long long)p->epoch, p->name, p->id, p->npartitions);
    bpool_submit(b->topic_pool, &j->j);
}

typedef struct purge_post {
    bjob j;
    broker *b;
    struct cl_purge p;
} purge_post;

static void purge_post_done(bjob *jb)
{
    purge_post *pp = (purge_post *)jb;
    if (pp->b->cluster) purge_begin(pp->b, &pp->p);
    free(pp);
}

void cluster_delete_purge_post(bcluster *c, const cdelete *d, int64_t epoch)
{
    purge_post *pp = calloc(1, sizeof(*pp));
    if (!pp) return; /* the next pass posts again */
    pp->j.done = purge_post_done;
    pp->b = c->b;
    snprintf(pp->p.name, sizeof pp->p.name, "%s", d->name);
    memcpy(pp->p.id, d->id, sizeof pp->p.id);
    pp->p.npartitions = d->npartitions;
    pp->p.create_revision = d->create_revision;
    pp->p.epoch = epoch;
    net_post(c->b, &pp->j);
}

void cluster_deletes_free(bcluster *c)
{
    while (c->deletes) {
        cdelete *d = c->deletes;
        c->deletes = d->next;
        cluster_delete_free(d);
    }
    while (c->purges) {
        struct cl_purge *p = c->purges;
        c->purges = p->next;
        free(p);
    }
}
