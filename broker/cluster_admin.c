/*
 * cluster_admin.c — Metadata, CreateTopics and DeleteTopics when the broker
 * is one of a cluster (metadata.store.url set); handlers.c calls in here
 * and keeps its single-node paths untouched.
 *
 * Metadata answers from the loop's view (cluster.c) at once. CreateTopics
 * places replicas (Kafka's rack-aware round robin over the live brokers),
 * writes topics/<t> with a create-only txn on the cluster pool, then waits
 * (cl_wait) until the controller has written every partition's state or the
 * request's timeout passes (REQUEST_TIMED_OUT, the topic stays created, as
 * in Kafka; a timeout of 0, librdkafka's default operation timeout, answers
 * once topics/<t> is written). DeleteTopics removes topics/<t> and
 * partitions/<t>/ and writes the marker deletes/<t> in one txn
 * (cluster_delete.c), then waits (same timeout rule) until this broker's
 * view has dropped the marker too: every replica deleted its own copy and
 * the controller the bucket's objects. CreateTopics of a name with a marker
 * is refused, retriably, until then.
 *
 * Thread: loop, except the *_run functions (cluster pool).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"

#define TS_MIN_INT32 (-2147483647 - 1)
#define CLUSTER_AUTO_TTL_MS 5000
#define CLUSTER_WAIT_MAX_MS 60000

/* ------------------------------------------------------------ waiting */

enum { WAIT_STATES = 0, WAIT_GONE = 1 };

/* ok: 1 ready, 0 timed out (or out of memory), -1 not waited for. */
typedef void (*cl_wait_fn)(broker *b, void *arg, int ok);

struct cl_wait {
    struct cl_wait *next;
    int kind;
    char name[256];
    char id[32];
    int32_t min_parts; /* WAIT_STATES: the view must know at least these */
    int64_t deadline;
    cl_wait_fn fn;
    void *arg;
};

static int wait_ready(bcluster *c, const struct cl_wait *w)
{
    ctopic *t = cluster_topic(c, w->name);
    if (w->kind == WAIT_GONE) {
        const cdelete *d = cluster_delete_find(c, w->name);
        return (!t || strcmp(t->id, w->id)) && (!d || strcmp(d->id, w->id));
    }
    if (!t || strcmp(t->id, w->id) || t->npartitions < w->min_parts) return 0;
    for (int32_t i = 0; i < t->npartitions; i++)
        if (!t->ps[i].version) return 0;
    return 1;
}

/* timeout_ms <= 0: Kafka's "do not wait": fn runs now with what the view
 * says (CreateTopics then answers success with the states still pending). */
static void wait_add(broker *b, int kind, const char *name, const char *id, int32_t min_parts,
                     int64_t timeout_ms, cl_wait_fn fn, void *arg)
{
    struct cl_wait *w = timeout_ms > 0 ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        fn(b, arg, timeout_ms <= 0 ? -1 : 0);
        return;
    }
    w->kind = kind;
    w->min_parts = min_parts;
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->id, sizeof w->id, "%s", id);
    if (timeout_ms > CLUSTER_WAIT_MAX_MS) timeout_ms = CLUSTER_WAIT_MAX_MS;
    w->deadline = bclock_ms() + timeout_ms;
    w->fn = fn;
    w->arg = arg;
    w->next = b->cluster->waits;
    b->cluster->waits = w;
    cluster_waits_check(b, 0);
}

void cluster_wait_states(broker *b, const char *name, const char *id, int32_t nparts,
                         int64_t timeout_ms, void (*fn)(broker *b, void *arg, int ok), void *arg)
{
    wait_add(b, WAIT_STATES, name, id, nparts, timeout_ms, fn, arg);
}

void cluster_waits_check(broker *b, int timeout_only)
{
    (void)timeout_only;
    bcluster *c = b->cluster;
    int64_t now = bclock_ms();
    struct cl_wait **pp = &c->waits;
    while (*pp) {
        struct cl_wait *w = *pp;
        int ok = wait_ready(c, w);
        if (!ok && now < w->deadline) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->fn(b, w->arg, ok);
        free(w);
        pp = &c->waits; /* fn may have added or removed waits */
    }
}

void cluster_waits_abort(broker *b)
{
    bcluster *c = b->cluster;
    while (c && c->waits) {
        struct cl_wait *w = c->waits;
        c->waits = w->next;
        w->fn(b, w->arg, 0);
        free(w);
    }
}

/* ---------------------------------------------------- topic create job */

typedef struct create_job {
    bjob j;
    broker *b;
    char key[600], mkey[600]; /* topics/<t>, deletes/<t> */
    char *value;
    char id[32];
    int status; /* 1 created, 0 exists, 2 marked for deletion, -1 etcd failed */
    char name[256];
    char err[1024];
    cluster_create_fn done;
    void *arg;
} create_job;

/* Create-only, and only while no delete of the name is pending: a marker
 * means the old incarnation's objects may still be under the prefix. */
static void create_run(bjob *jb)
{
    create_job *o = (create_job *)jb;
    ts_etcd_cmp absent[2] = {
        {.key = o->key, .key_len = strlen(o->key), .target = TS_ETCD_CMP_CREATE,
         .result = TS_ETCD_EQUAL, .number = 0},
        {.key = o->mkey, .key_len = strlen(o->mkey), .target = TS_ETCD_CMP_CREATE,
         .result = TS_ETCD_EQUAL, .number = 0},
    };
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = o->key, .key_len = strlen(o->key),
                      .value = o->value, .value_len = strlen(o->value)};
    ts_etcd_op marker = {.type = TS_ETCD_OP_RANGE, .key = o->mkey, .key_len = strlen(o->mkey)};
    ts_etcd_txn_result r;
    o->status = -1;
    if (ts_etcd_txn(o->b->cluster->etcd, absent, 2, &put, 1, &marker, 1, &r, o->err,
                    sizeof o->err) != TS_ETCD_OK)
        return;
    o->status = r.succeeded;
    if (!r.succeeded && r.nresponses == 1 && r.responses[0].nkvs) o->status = 2;
    ts_etcd_txn_result_free(&r);
}

static void create_done(bjob *jb)
{
    create_job *o = (create_job *)jb;
    if (o->status == 1)
        o->done(o->b, o->arg, KAFKA_NONE, NULL, o->id);
    else if (o->status == 0)
        o->done(o->b, o->arg, KAFKA_TOPIC_ALREADY_EXISTS, "topic already exists", NULL);
    else if (o->status == 2) {
        char msg[512];
        cluster_delete_refusal_msg(o->name, msg, sizeof msg);
        o->done(o->b, o->arg, KAFKA_THROTTLING_QUOTA_EXCEEDED, msg, NULL);
    } else
        o->done(o->b, o->arg, KAFKA_REQUEST_TIMED_OUT, o->err, NULL);
    free(o->value);
    free(o);
}

int16_t cluster_create_topic(broker *b, const char *name, int32_t nparts, int32_t rf,
                             const bprop *cfg, size_t ncfg, cluster_create_fn done, void *arg,
                             char *msg, size_t msglen)
{
    bcluster *c = b->cluster;
    if (rf < 1 || (size_t)rf > c->nbrokers || rf > CLUSTER_MAX_REPLICAS) {
        snprintf(msg, msglen, "replication factor %d: the cluster has %zu live broker(s)", rf,
                 c->nbrokers);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    int32_t *assign = calloc((size_t)nparts * (size_t)rf, sizeof(*assign));
    create_job *o = assign ? calloc(1, sizeof(*o)) : NULL;
    if (!o) {
        free(assign);
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    cluster_assign(c->brokers, c->nbrokers, nparts, rf, assign);
    cluster_new_topic_id(o->id);
    o->value = cluster_topic_json(o->id, nparts, rf, assign, cfg, ncfg);
    free(assign);
    if (!o->value) {
        free(o);
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    o->j.run = create_run;
    o->j.done = create_done;
    o->b = b;
    o->done = done;
    o->arg = arg;
    cluster_key(c, o->key, sizeof o->key, "topics/%s", name);
    cluster_key(c, o->mkey, sizeof o->mkey, "deletes/%s", name);
    snprintf(o->name, sizeof o->name, "%s", name);
    bpool_submit(c->pool, &o->j);
    return KAFKA_NONE;
}

/* ------------------------------------------------------------ Metadata */

typedef struct cl_auto {
    struct cl_auto *next;
    int64_t expires;
    char name[];
} cl_auto;

void cluster_autos_free(bcluster *c)
{
    while (c->autos) {
        cl_auto *a = c->autos;
        c->autos = a->next;
        free(a);
    }
}

static void auto_created(broker *b, void *arg, int16_t err, const char *msg, const char *id)
{
    char *name = arg;
    (void)id;
    if (err == KAFKA_THROTTLING_QUOTA_EXCEEDED) /* its old incarnation goes first */
        blog_info("auto-creating topic %s: %s", name, msg ? msg : "");
    else if (err && err != KAFKA_TOPIC_ALREADY_EXISTS)
        blog_warn("auto-creating topic %s: %s", name, msg ? msg : "");
    else if (!err)
        blog_info("auto-created topic %s in the cluster", name);
    free(name);
}

/* Auto-create through CreateTopics' path, once per name every few seconds. */
static void auto_create(broker *b, const char *name)
{
    bcluster *c = b->cluster;
    int64_t now = bclock_ms();
    cl_auto **pp = &c->autos;
    while (*pp) {
        cl_auto *a = *pp;
        if (a->expires <= now) {
            *pp = a->next;
            free(a);
            continue;
        }
        if (!strcmp(a->name, name)) return;
        pp = &a->next;
    }
    cl_auto *a = malloc(sizeof(*a) + strlen(name) + 1);
    char *arg = strdup(name);
    if (!a || !arg) {
        free(a);
        free(arg);
        return;
    }
    strcpy(a->name, name);
    a->expires = now + CLUSTER_AUTO_TTL_MS;
    a->next = c->autos;
    c->autos = a;
    int32_t rf = c->default_rf < (int32_t)c->nbrokers ? c->default_rf : (int32_t)c->nbrokers;
    char msg[256];
    int16_t err = cluster_create_topic(b, name, b->num_partitions, rf, NULL, 0, auto_created, arg,
                                       msg, sizeof msg);
    if (err) {
        blog_warn("auto-creating topic %s: %s", name, msg);
        free(arg);
    }
}

static void md_ids(kw *w, int f, const int32_t *v, int32_t n)
{
    kw_array(w, f, n);
    for (int32_t i = 0; i < n; i++) kw_i32(w, v[i]);
}

static void md_partition(bcluster *c, kw *w, int v, int f, int32_t i, const cl_pstate *st)
{
    int32_t offline[CLUSTER_MAX_REPLICAS], noff = 0;
    for (int32_t k = 0; k < st->nreplicas; k++)
        if (!cluster_live(c, st->replicas[k])) offline[noff++] = st->replicas[k];
    int32_t leader = st->version ? st->leader : -1;
    kw_i16(w, leader < 0 ? KAFKA_LEADER_NOT_AVAILABLE : KAFKA_NONE);
    kw_i32(w, i);
    kw_i32(w, leader);
    if (v >= 7) kw_i32(w, st->version ? st->leader_epoch : -1);
    md_ids(w, f, st->replicas, st->nreplicas);
    md_ids(w, f, st->isr, st->version ? st->nisr : 0);
    if (v >= 5) md_ids(w, f, offline, noff);
    kw_tags(w, f);
}

/* ops: TopicAuthorizedOperations (INT32_MIN: not asked for). */
static void md_topic(bcluster *c, kw *w, int v, int f, const char *name, const ctopic *t,
                     int16_t err, int32_t ops)
{
    kw_i16(w, err);
    kw_str(w, f, name);
    if (v >= 1) kw_i8(w, t && !strcmp(t->name, CLUSTER_OFFSETS_TOPIC)); /* IsInternal */
    kw_array(w, f, t ? t->npartitions : 0);
    for (int32_t i = 0; t && i < t->npartitions; i++) md_partition(c, w, v, f, i, &t->ps[i]);
    if (v >= 8) kw_i32(w, ops); /* TopicAuthorizedOperations */
    kw_tags(w, f);
}

/* Every live broker at its address on the listener the client came in on
 * (this one at that listener's advertised address); a broker that
 * registered no listener of that name is left out, as Kafka does. */
int32_t cluster_write_brokers(broker *b, const blistener *l, kw *w, int f, int with_rack)
{
    bcluster *c = b->cluster;
    int self_missing = !cluster_live(c, b->node_id) && c->nbrokers == 0;
    int32_t n = self_missing;
    for (size_t i = 0; i < c->nbrokers; i++)
        n += c->brokers[i].id == b->node_id || cluster_endpoint(&c->brokers[i], l->name) != NULL;
    kw_array(w, f, n);
    for (size_t i = 0; i < c->nbrokers; i++) {
        const cl_broker *cb = &c->brokers[i];
        int self = cb->id == b->node_id;
        const cl_endpoint *ep = self ? NULL : cluster_endpoint(cb, l->name);
        if (!self && !ep) continue;
        kw_i32(w, cb->id);
        kw_str(w, f, self ? l->adv_host : ep->host);
        kw_i32(w, self ? l->adv_port : ep->port);
        if (with_rack) kw_str(w, f, cb->rack[0] ? cb->rack : NULL);
        kw_tags(w, f);
    }
    if (self_missing) { /* not registered yet: clients still need an address */
        kw_i32(w, b->node_id);
        kw_str(w, f, l->adv_host);
        kw_i32(w, l->adv_port);
        if (with_rack) kw_str(w, f, NULL);
        kw_tags(w, f);
    }
    return n;
}

static void md_brokers(broker *b, const reply *r, kw *w, int v, int f)
{
    cluster_write_brokers(b, reply_listener(b, r), w, f, v >= 1);
}

static int16_t md_absent(broker *b, const char *name, int allow_auto)
{
    if (!ts_topic_name_valid(name)) return KAFKA_INVALID_TOPIC_EXCEPTION;
    if (allow_auto && b->auto_create && strcmp(name, CLUSTER_OFFSETS_TOPIC)) {
        auto_create(b, name);
        return KAFKA_LEADER_NOT_AVAILABLE;
    }
    return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
}

void cluster_handle_metadata(broker *b, reply *r, kafka_request *q)
{
    bcluster *c = b->cluster;
    kafka_MetadataRequest *m = &q->u.metadata;
    int v = r->hdr.api_version, f = r->hdr.flexible;
#define MD_OPS(name)                                                                             \
    (m->include_topic_authorized_operations                                                      \
         ? acl_authorized_ops(b, r, ACL_RES_TOPIC, name, ACL_TOPIC_OPS)                          \
         : TS_MIN_INT32)
    kw w;
    reply_begin(r, &w);
    if (v >= 3) kw_i32(&w, 0); /* ThrottleTimeMs */
    md_brokers(b, r, &w, v, f);
    if (v >= 2) kw_str(&w, f, c->cluster_id);
    if (v >= 1) kw_i32(&w, c->controller);
    if (m->ntopics < 0) { /* topics the principal may not describe are hidden */
        int32_t n = 0;
        for (ctopic *t = c->topics; t; t = t->next)
            n += acl_check_quiet(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->name);
        kw_array(&w, f, n);
        for (ctopic *t = c->topics; t; t = t->next)
            if (acl_check_quiet(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->name))
                md_topic(c, &w, v, f, t->name, t, KAFKA_NONE, MD_OPS(t->name));
    } else {
        kw_array(&w, f, m->ntopics);
        for (int32_t i = 0; i < m->ntopics; i++) {
            if (!acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, m->topics[i])) {
                md_topic(c, &w, v, f, m->topics[i], NULL, KAFKA_TOPIC_AUTHORIZATION_FAILED,
                         TS_MIN_INT32);
                continue;
            }
            ctopic *t = cluster_topic(c, m->topics[i]);
            int may_create = m->allow_auto_topic_creation && !t &&
                             (acl_check_quiet(b, r, ACL_OP_CREATE, ACL_RES_CLUSTER, NULL) ||
                              acl_check(b, r, ACL_OP_CREATE, ACL_RES_TOPIC, m->topics[i]));
            int16_t err = t ? KAFKA_NONE : md_absent(b, m->topics[i], may_create);
            md_topic(c, &w, v, f, m->topics[i], t, err, t ? MD_OPS(m->topics[i]) : TS_MIN_INT32);
        }
    }
    if (v >= 8 && v <= 10) /* ClusterAuthorizedOperations */
        kw_i32(&w, m->include_cluster_authorized_operations
                       ? acl_authorized_ops(b, r, ACL_RES_CLUSTER, NULL, ACL_CLUSTER_OPS)
                       : TS_MIN_INT32);
    kw_tags(&w, f);
    reply_end(b, r, &w);
#undef MD_OPS
}

/* -------------------------------------------------------- CreateTopics */

typedef struct cc_ent {
    struct cc_op *op;
    char *name;
    int32_t nparts;
    int16_t rf;
    int16_t rc;
    char msg[512];
} cc_ent;

typedef struct cc_op {
    reply r;
    int32_t n;
    cc_ent *e;
    int pending;
    int32_t timeout_ms;
} cc_op;

static void cc_free(cc_op *o)
{
    for (int32_t i = 0; i < o->n; i++) free(o->e[i].name);
    free(o->e);
    free(o);
}

static void cc_respond(broker *b, cc_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    int32_t throttle = 0; /* a name marked for deletion: the retry hint of KIP-599 */
    for (int32_t i = 0; i < o->n; i++)
        if (o->e[i].rc == KAFKA_THROTTLING_QUOTA_EXCEEDED) throttle = CLUSTER_DELETE_RETRY_MS;
    reply_begin(&o->r, &w);
    if (v >= 2) kw_i32(&w, throttle);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        cc_ent *e = &o->e[i];
        kw_str(&w, f, e->name);
        kw_i16(&w, e->rc);
        if (v >= 1) kw_str(&w, f, e->rc ? e->msg : NULL);
        if (v >= 5) {
            kw_i32(&w, e->rc ? -1 : e->nparts);
            kw_i16(&w, e->rc ? -1 : e->rf);
            kw_array(&w, f, -1); /* Configs */
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void cc_one_done(broker *b, cc_op *o)
{
    if (--o->pending == 0) {
        cc_respond(b, o);
        cc_free(o);
    }
}

static void cc_states(broker *b, void *arg, int ok)
{
    cc_ent *e = arg;
    if (ok == 0) {
        e->rc = KAFKA_REQUEST_TIMED_OUT;
        snprintf(e->msg, sizeof e->msg,
                 "topic %s created; its partition states are not written yet (is a controller "
                 "running?)",
                 e->name);
    }
    cc_one_done(b, e->op);
}

static void cc_created(broker *b, void *arg, int16_t err, const char *msg, const char *id)
{
    cc_ent *e = arg;
    if (err || !b->cluster) {
        e->rc = err ? err : KAFKA_REQUEST_TIMED_OUT;
        snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "shutting down");
        cc_one_done(b, e->op);
        return;
    }
    blog_info("created topic %s in the cluster (%d partitions, replication factor %d)", e->name,
              e->nparts, e->rf);
    wait_add(b, WAIT_STATES, e->name, id, 0, e->op->timeout_ms, cc_states, e);
}

/* Request-level checks of one topic; KAFKA_NONE when it may be created. */
static int16_t cc_check(broker *b, const kafka_CreatableTopic *t, cc_ent *e)
{
    bcluster *c = b->cluster;
    e->nparts = t->num_partitions == -1 ? b->num_partitions : t->num_partitions;
    e->rf = t->replication_factor == -1 ? (int16_t)c->default_rf : t->replication_factor;
    if (!ts_topic_name_valid(t->name)) {
        snprintf(e->msg, sizeof e->msg, "topic name '%s' must be 1..249 chars of [A-Za-z0-9._-]",
                 t->name);
        return KAFKA_INVALID_TOPIC_EXCEPTION;
    }
    if (cluster_topic(c, t->name)) {
        snprintf(e->msg, sizeof e->msg, "topic '%s' already exists", t->name);
        return KAFKA_TOPIC_ALREADY_EXISTS;
    }
    int16_t marked = cluster_delete_pending(b, t->name, e->msg, sizeof e->msg);
    if (marked) return marked;
    if (e->nparts <= 0 || e->nparts > 100000) {
        snprintf(e->msg, sizeof e->msg, "number of partitions %d must be 1..100000", e->nparts);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (e->rf < 1 || (size_t)e->rf > c->nbrokers || e->rf > CLUSTER_MAX_REPLICAS) {
        snprintf(e->msg, sizeof e->msg,
                 "replication factor %d is larger than the %zu live broker(s) of the cluster",
                 e->rf, c->nbrokers);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    if (t->nassignments > 0) {
        snprintf(e->msg, sizeof e->msg, "manual replica assignments are not supported");
        return KAFKA_INVALID_REQUEST;
    }
    for (int32_t k = 0; k < t->nconfigs; k++)
        if (bconfig_is_broker_key(t->configs[k].name) &&
            strcmp(t->configs[k].name, "unclean.leader.election.enable") &&
            strcmp(t->configs[k].name, "min.insync.replicas")) { /* topic-level too */
            snprintf(e->msg, sizeof e->msg, "%s is a broker setting, not a topic config",
                     t->configs[k].name);
            return KAFKA_INVALID_CONFIG;
        }
    return KAFKA_NONE;
}

static void cc_start(broker *b, cc_op *o, const kafka_CreatableTopic *t, cc_ent *e)
{
    bprop cfg[64];
    size_t n = 0;
    for (int32_t k = 0; k < t->nconfigs && n < 64; k++) {
        cfg[n].key = (char *)t->configs[k].name;
        cfg[n].value = (char *)(t->configs[k].value ? t->configs[k].value : "");
        n++;
    }
    o->pending++;
    e->rc = cluster_create_topic(b, e->name, e->nparts, e->rf, cfg, n, cc_created, e, e->msg,
                                 sizeof e->msg);
    if (e->rc) o->pending--;
}

void cluster_handle_create_topics(broker *b, reply *r, kafka_request *q)
{
    kafka_CreateTopicsRequest *cq = &q->u.create_topics;
    cc_op *o = calloc(1, sizeof(*o));
    if (!o || !(o->e = calloc((size_t)(cq->ntopics > 0 ? cq->ntopics : 1), sizeof(*o->e)))) {
        free(o);
        reply_drop(b, r);
        return;
    }
    o->r = *r;
    r->c = NULL;
    o->timeout_ms = cq->timeout_ms;
    o->pending = 1; /* until every topic is started */
    for (int32_t i = 0; i < cq->ntopics; i++) {
        cc_ent *e = &o->e[i];
        e->op = o;
        e->name = strdup(cq->topics[i].name);
        o->n++;
        if (!e->name) {
            e->rc = KAFKA_UNKNOWN_SERVER_ERROR;
            continue;
        }
        if (!acl_check_quiet(b, &o->r, ACL_OP_CREATE, ACL_RES_CLUSTER, NULL) &&
            !acl_check(b, &o->r, ACL_OP_CREATE, ACL_RES_TOPIC, e->name)) {
            e->rc = KAFKA_TOPIC_AUTHORIZATION_FAILED;
            snprintf(e->msg, sizeof e->msg, "CREATE on the cluster or on topic '%s' is needed",
                     e->name);
            continue;
        }
        e->rc = cc_check(b, &cq->topics[i], e);
        if (e->rc == KAFKA_NONE && !cq->validate_only) cc_start(b, o, &cq->topics[i], e);
    }
    cc_one_done(b, o);
}

/* -------------------------------------------------------- DeleteTopics */

typedef struct dt_ent {
    struct dt_op *op;
    char *name;
    char id[32];
    int16_t rc;
    char msg[512];
} dt_ent;

typedef struct dt_op {
    bjob j;
    broker *b;
    reply r;
    int32_t n;
    dt_ent *e;
    int pending;
    int32_t timeout_ms;
} dt_op;

static void dt_free(dt_op *o)
{
    for (int32_t i = 0; i < o->n; i++) free(o->e[i].name);
    free(o->e);
    free(o);
}

static void dt_respond(broker *b, dt_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        kw_str(&w, f, o->e[i].name);
        kw_i16(&w, o->e[i].rc);
        if (v >= 5) kw_str(&w, f, o->e[i].rc ? o->e[i].msg : NULL);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void dt_one_done(broker *b, dt_op *o)
{
    if (--o->pending == 0) {
        dt_respond(b, o);
        dt_free(o);
    }
}

/* Cluster pool: one txn per topic (it must still exist), with its marker. */
static void dt_run(bjob *jb)
{
    dt_op *o = (dt_op *)jb;
    for (int32_t i = 0; i < o->n; i++) {
        dt_ent *e = &o->e[i];
        if (e->rc == -1)
            e->rc = cluster_delete_write(o->b->cluster, e->name, e->id, e->msg, sizeof e->msg);
    }
}

/* ok 0: the timeout passed with the delete still pending (Kafka answered
 * REQUEST_TIMED_OUT then too); the delete goes on. */
static void dt_gone(broker *b, void *arg, int ok)
{
    dt_ent *e = arg;
    if (ok == 0) {
        e->rc = KAFKA_REQUEST_TIMED_OUT;
        snprintf(e->msg, sizeof e->msg,
                 "topic '%s' is deleted from the cluster; its data is still being deleted (a "
                 "replica has not finished its local delete, or the controller is deleting the "
                 "bucket's objects): the name can be created again once deletes/%s is gone",
                 e->name, e->name);
    }
    dt_one_done(b, e->op);
}

static void dt_done(bjob *jb)
{
    dt_op *o = (dt_op *)jb;
    broker *b = o->b;
    o->pending = 1;
    for (int32_t i = 0; i < o->n; i++) {
        dt_ent *e = &o->e[i];
        if (e->rc != KAFKA_NONE || !b->cluster || !e->id[0]) continue;
        blog_info("deleted topic %s from the cluster", e->name);
        o->pending++;
        wait_add(b, WAIT_GONE, e->name, e->id, 0, o->timeout_ms, dt_gone, e);
    }
    dt_one_done(b, o);
}

void cluster_handle_delete_topics(broker *b, reply *r, kafka_request *q)
{
    kafka_DeleteTopicsRequest *dq = &q->u.delete_topics;
    dt_op *o = calloc(1, sizeof(*o));
    if (!o || !(o->e = calloc((size_t)(dq->ntopics > 0 ? dq->ntopics : 1), sizeof(*o->e)))) {
        free(o);
        reply_drop(b, r);
        return;
    }
    o->j.run = dt_run;
    o->j.done = dt_done;
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->timeout_ms = dq->timeout_ms;
    for (int32_t i = 0; i < dq->ntopics; i++) {
        dt_ent *e = &o->e[i];
        e->op = o;
        e->name = strdup(dq->topic_names[i] ? dq->topic_names[i] : "");
        o->n++;
        ctopic *t = e->name ? cluster_topic(b->cluster, e->name) : NULL;
        e->rc = -1; /* to delete */
        if (!e->name) {
            e->rc = KAFKA_UNKNOWN_SERVER_ERROR;
        } else if (!acl_check(b, &o->r, ACL_OP_DELETE, ACL_RES_TOPIC, e->name)) {
            e->rc = KAFKA_TOPIC_AUTHORIZATION_FAILED;
            snprintf(e->msg, sizeof e->msg, "DELETE on topic '%s' is needed", e->name);
        } else if (!strcmp(e->name, CLUSTER_OFFSETS_TOPIC)) {
            e->rc = KAFKA_INVALID_REQUEST;
            snprintf(e->msg, sizeof e->msg, "%s is internal and cannot be deleted", e->name);
        } else if (t) {
            snprintf(e->id, sizeof e->id, "%s", t->id);
        }
    }
    bpool_submit(b->cluster->pool, &o->j);
}
