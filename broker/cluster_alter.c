/*
 * cluster_alter.c — CreatePartitions and topic AlterConfigs /
 * IncrementalAlterConfigs when the broker is one of a cluster.
 *
 * Both change topics/<t> in etcd, the topic's one description (cluster.h),
 * by read-modify-write: read the key, edit its JSON, write it back in a txn
 * comparing its mod_revision, and start over when another writer got there
 * first (a few times, then REQUEST_TIMED_OUT asks the client to retry). The
 * topic id is checked on every read, so a topic deleted and re-created
 * meanwhile is never edited by a request meant for the old one. Nothing
 * else is written: every broker applies the change from its watch
 * (cluster.c: new partitions join the registry and open where held, the
 * controller gives them states; configs go to each broker's storage), as
 * Kafka's brokers follow the topic znode.
 *
 * CreatePartitions keeps the topic's replication factor and places the new
 * partitions with the rack-aware assignment over the live brokers, then
 * waits (as CreateTopics does) until the controller has written their
 * states or the request's timeout passes. Config alters are validated
 * first: storage keys by the storage (a validate-only replace of the whole
 * new set), the broker's topic-level keys here; an alter answers once etcd
 * holds it.
 *
 * Threads: cluster_grow_topic runs on the loop, its etcd work on the cluster
 * pool; cluster_alter_topic_configs blocks and runs on a pool thread (the
 * topic pool: admin_configs.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cluster_internal.h"

#define RMW_ATTEMPTS 5
#define PARTITIONS_MAX 100000

/* Edits a topics/<t> JSON in place: KAFKA_NONE, or a Kafka error with msg. */
typedef int16_t (*topic_edit_fn)(cJSON *topic, void *arg, char *msg, size_t msglen);

/* One compare-and-swap of topics/<name> (key) from mod_revision rev to
 * val: KAFKA_NONE with *ok = whether the compare held, or
 * REQUEST_TIMED_OUT with msg when etcd did not answer in time. */
static int16_t topic_cas(bcluster *c, const char *key, const char *name, int64_t rev,
                         const char *val, int *ok, char *msg, size_t msglen)
{
    char err[512] = "";
    ts_etcd_cmp same = {.key = key, .key_len = strlen(key), .target = TS_ETCD_CMP_MOD,
                        .result = TS_ETCD_EQUAL, .number = rev};
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key),
                      .value = val, .value_len = strlen(val)};
    ts_etcd_txn_result tr;
    ts_etcd_status st = ts_etcd_txn(c->etcd, &same, 1, &put, 1, NULL, 0, &tr, err, sizeof err);
    if (st != TS_ETCD_OK) {
        /* A timed-out attempt may still be applied when etcd wakes up. */
        snprintf(msg, msglen,
                 "writing topics/%s to the metadata store: %s (the change may still be applied: "
                 "describe the topic before retrying)",
                 name, err);
        return KAFKA_REQUEST_TIMED_OUT;
    }
    *ok = tr.succeeded;
    ts_etcd_txn_result_free(&tr);
    return KAFKA_NONE;
}

/* Blocking (not the loop). want_id: the topic's id as the caller saw it
 * ("" for any). validate_only: edit and check, write nothing.
 *
 * A failed compare is not always another writer: the etcd client retries a
 * txn whose attempt timed out (etcd frozen or slow), and when that attempt
 * was applied after all the retry finds our own write and fails. Editing
 * again would then refuse the request for what it did itself
 * (CreatePartitions: "already has N partitions") although the topic holds
 * exactly the change asked for. So after a failed compare the key is first
 * compared with the value last written: the same bytes mean the change is
 * in etcd, and the request succeeded. */
static int16_t topic_rmw(bcluster *c, const char *name, const char *want_id, topic_edit_fn edit,
                         void *arg, int validate_only, char *msg, size_t msglen)
{
    char key[600], err[512] = "";
    char *tried = NULL; /* the value of the last txn whose compare failed */
    int16_t e = KAFKA_REQUEST_TIMED_OUT;
    cluster_key(c, key, sizeof key, "topics/%s", name);
    for (int attempt = 0; attempt < RMW_ATTEMPTS; attempt++) {
        ts_etcd_resp r;
        memset(&r, 0, sizeof r);
        if (ts_etcd_get(c->etcd, key, strlen(key), 0, 0, &r, err, sizeof err) != TS_ETCD_OK) {
            snprintf(msg, msglen, "reading topics/%s from the metadata store: %s", name, err);
            goto out;
        }
        if (r.nkvs == 0) {
            ts_etcd_resp_free(&r);
            snprintf(msg, msglen, "topic '%s' does not exist", name);
            e = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            goto out;
        }
        if (tried && r.kvs[0].value_len == strlen(tried) &&
            !memcmp(r.kvs[0].value, tried, r.kvs[0].value_len)) {
            ts_etcd_resp_free(&r);
            blog_info("topic %s: a retried write to the metadata store found its own change "
                      "applied",
                      name);
            e = KAFKA_NONE;
            goto out;
        }
        free(tried);
        tried = NULL;
        int64_t rev = r.kvs[0].mod_revision;
        cJSON *o = cJSON_Parse(r.kvs[0].value);
        ts_etcd_resp_free(&r);
        const cJSON *id = o ? cJSON_GetObjectItem(o, "id") : NULL;
        if (!cJSON_IsString(id)) {
            cJSON_Delete(o);
            snprintf(msg, msglen, "topics/%s in the metadata store is not a topic", name);
            e = KAFKA_UNKNOWN_SERVER_ERROR;
            goto out;
        }
        if (want_id[0] && strcmp(id->valuestring, want_id)) {
            cJSON_Delete(o);
            snprintf(msg, msglen, "topic '%s' was deleted and created again meanwhile", name);
            e = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            goto out;
        }
        e = edit(o, arg, msg, msglen);
        char *val = e == KAFKA_NONE && !validate_only ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (e != KAFKA_NONE || validate_only) goto out;
        if (!val) {
            snprintf(msg, msglen, "out of memory");
            e = KAFKA_UNKNOWN_SERVER_ERROR;
            goto out;
        }
        int ok = 0;
        e = topic_cas(c, key, name, rev, val, &ok, msg, msglen);
        if (e != KAFKA_NONE || ok) {
            free(val);
            goto out;
        }
        tried = val;
        e = KAFKA_REQUEST_TIMED_OUT;
    }
    snprintf(msg, msglen, "topic '%s' kept changing under %d attempts; retry", name, RMW_ATTEMPTS);
out:
    free(tried);
    return e;
}

/* ------------------------------------------------------ CreatePartitions */

typedef struct grow_job {
    bjob j;
    broker *b;
    char name[256];
    char id[32];
    int32_t count, timeout_ms;
    int validate_only;
    cl_broker *live; /* the live brokers when asked (placement) */
    size_t nlive;
    int16_t err;
    char msg[512];
    cluster_grow_fn done;
    void *arg;
} grow_job;

static int16_t grow_edit(cJSON *topic, void *arg, char *msg, size_t msglen)
{
    grow_job *o = arg;
    cJSON *parts = cJSON_GetObjectItem(topic, "partitions");
    int32_t cur = cJSON_IsArray(parts) ? cJSON_GetArraySize(parts) : 0;
    const cJSON *p0 = cur ? cJSON_GetArrayItem(parts, 0) : NULL;
    int32_t rf = cJSON_IsArray(p0) ? cJSON_GetArraySize(p0) : 0;
    if (cur <= 0 || rf <= 0) {
        snprintf(msg, msglen, "topics/%s in the metadata store has no partitions", o->name);
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    if (o->count <= cur) {
        snprintf(msg, msglen,
                 o->count == cur ? "topic '%s' already has %d partitions"
                                 : "topic '%s' has %d partitions: CreatePartitions only adds partitions",
                 o->name, cur);
        return KAFKA_INVALID_PARTITIONS;
    }
    if ((size_t)rf > o->nlive) {
        snprintf(msg, msglen,
                 "topic '%s' has replication factor %d; the cluster has %zu live broker(s) to "
                 "place new partitions on",
                 o->name, rf, o->nlive);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    int32_t n = o->count - cur;
    int32_t *assign = calloc((size_t)n * (size_t)rf, sizeof(*assign));
    if (!assign) {
        snprintf(msg, msglen, "out of memory");
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    cluster_assign(o->live, o->nlive, n, rf, assign);
    for (int32_t p = 0; p < n; p++) {
        cJSON *r = cJSON_CreateArray();
        for (int32_t k = 0; r && k < rf; k++)
            cJSON_AddItemToArray(r, cJSON_CreateNumber(assign[p * rf + k]));
        if (!r || !cJSON_AddItemToArray(parts, r)) {
            cJSON_Delete(r);
            free(assign);
            snprintf(msg, msglen, "out of memory");
            return KAFKA_UNKNOWN_SERVER_ERROR;
        }
    }
    free(assign);
    return KAFKA_NONE;
}

static void grow_run(bjob *jb)
{
    grow_job *o = (grow_job *)jb;
    o->err = topic_rmw(o->b->cluster, o->name, o->id, grow_edit, o, o->validate_only, o->msg,
                       sizeof o->msg);
}

static void grow_free(grow_job *o)
{
    free(o->live);
    free(o);
}

static void grow_states(broker *b, void *arg, int ok)
{
    grow_job *o = arg;
    if (ok == 0) {
        o->err = KAFKA_REQUEST_TIMED_OUT;
        snprintf(o->msg, sizeof o->msg,
                 "topic %s has %d partitions in the metadata store; the new ones have no state "
                 "yet (is a controller running?)",
                 o->name, o->count);
    }
    o->done(b, o->arg, o->err, o->err ? o->msg : NULL);
    grow_free(o);
}

static void grow_done(bjob *jb)
{
    grow_job *o = (grow_job *)jb;
    broker *b = o->b;
    if (o->err || o->validate_only || !b->cluster) {
        o->done(b, o->arg, o->err, o->err ? o->msg : NULL);
        grow_free(o);
        return;
    }
    blog_info("topic %s: grown to %d partitions in the cluster", o->name, o->count);
    cluster_wait_states(b, o->name, o->id, o->count, o->timeout_ms, grow_states, o);
}

int16_t cluster_grow_topic(broker *b, const char *name, int32_t count, int validate_only,
                           int32_t timeout_ms, cluster_grow_fn done, void *arg, char *msg,
                           size_t msglen)
{
    bcluster *c = b->cluster;
    ctopic *ct = cluster_topic(c, name);
    int16_t marked = ct ? KAFKA_NONE : cluster_delete_pending(b, name, msg, msglen);
    if (marked) return marked;
    if (!ct) {
        snprintf(msg, msglen, "topic '%s' does not exist", name);
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (!strcmp(name, CLUSTER_OFFSETS_TOPIC)) {
        snprintf(msg, msglen, "%s is the group coordinators' topic; its partition count is "
                              "offsets.topic.num.partitions", name);
        return KAFKA_INVALID_REQUEST;
    }
    if (count > PARTITIONS_MAX) {
        snprintf(msg, msglen, "%d partitions: at most %d", count, PARTITIONS_MAX);
        return KAFKA_INVALID_PARTITIONS;
    }
    grow_job *o = calloc(1, sizeof(*o));
    if (o) o->live = calloc(c->nbrokers ? c->nbrokers : 1, sizeof(*o->live));
    if (!o || !o->live) {
        free(o);
        snprintf(msg, msglen, "out of memory");
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    memcpy(o->live, c->brokers, c->nbrokers * sizeof(*o->live));
    o->nlive = c->nbrokers;
    o->j.run = grow_run;
    o->j.done = grow_done;
    o->b = b;
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->id, sizeof o->id, "%s", ct->id);
    o->count = count;
    o->timeout_ms = timeout_ms;
    o->validate_only = validate_only;
    o->done = done;
    o->arg = arg;
    bpool_submit(c->pool, &o->j);
    return KAFKA_NONE;
}

/* ------------------------------------------------------------ AlterConfigs */

typedef struct alter_ctx {
    broker *b;
    const char *name;
    const tsp_property *props; /* value NULL: back to the default */
    size_t n;
    int replace;
} alter_ctx;

/* The broker's own topic-level keys (not the storage's). */
static int16_t broker_key_check(const char *key, const char *value, char *msg, size_t msglen)
{
    if (!strcmp(key, "min.insync.replicas")) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > CLUSTER_MAX_REPLICAS) {
            snprintf(msg, msglen, "min.insync.replicas=%s: must be an integer 1..%d", value,
                     CLUSTER_MAX_REPLICAS);
            return KAFKA_INVALID_CONFIG;
        }
    } else if (!strcmp(key, "unclean.leader.election.enable")) {
        if (strcmp(value, "true") && strcmp(value, "false")) {
            snprintf(msg, msglen, "unclean.leader.election.enable=%s: must be true or false",
                     value);
            return KAFKA_INVALID_CONFIG;
        }
    } else {
        snprintf(msg, msglen, "%s is a broker setting, not a topic config", key);
        return KAFKA_INVALID_CONFIG;
    }
    return KAFKA_NONE;
}

static int is_topic_level_broker_key(const char *k)
{
    return !strcmp(k, "min.insync.replicas") || !strcmp(k, "unclean.leader.election.enable");
}

/* The new override set in cfg (edited in place), checked. */
static int16_t alter_edit(cJSON *topic, void *arg, char *msg, size_t msglen)
{
    alter_ctx *a = arg;
    cJSON *cfg = cJSON_GetObjectItem(topic, "configs");
    if (!cJSON_IsObject(cfg)) {
        cJSON_DeleteItemFromObject(topic, "configs");
        cfg = cJSON_AddObjectToObject(topic, "configs");
    } else if (a->replace) {
        cJSON_DeleteItemFromObject(topic, "configs");
        cfg = cJSON_AddObjectToObject(topic, "configs");
    }
    if (!cfg) goto oom;
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->props[i].key, *v = a->props[i].value;
        if (v && (bconfig_is_broker_key(k) || is_topic_level_broker_key(k))) {
            int16_t e = broker_key_check(k, v, msg, msglen);
            if (e) return e;
        }
        cJSON_DeleteItemFromObject(cfg, k);
        if (v && !cJSON_AddStringToObject(cfg, k, v)) goto oom;
    }
    /* The storage checks the whole set it would be given. */
    size_t n = (size_t)cJSON_GetArraySize(cfg), np = 0;
    tsp_property *sp = calloc(n ? n : 1, sizeof(*sp));
    if (!sp) goto oom;
    const cJSON *e;
    cJSON_ArrayForEach(e, cfg)
    {
        if (cJSON_IsString(e) && !is_topic_level_broker_key(e->string))
            sp[np++] = (tsp_property){e->string, e->valuestring};
    }
    char err[512] = "";
    tsp_status st = a->b->pl->topic_alter_config(a->b->eng, a->name, sp, np,
                                                 TSP_ALTER_REPLACE | TSP_ALTER_VALIDATE_ONLY, err,
                                                 sizeof err);
    free(sp);
    if (st != TSP_OK) {
        snprintf(msg, msglen, "%s", err);
        return st == TSP_E_CONFIG || st == TSP_E_INVAL ? KAFKA_INVALID_CONFIG
                                                       : kafka_error_from_status(st);
    }
    return KAFKA_NONE;
oom:
    snprintf(msg, msglen, "out of memory");
    return KAFKA_UNKNOWN_SERVER_ERROR;
}

int16_t cluster_alter_topic_configs(broker *b, const char *name, const tsp_property *props,
                                    size_t n, int replace, int validate_only, char *msg,
                                    size_t msglen)
{
    alter_ctx a = {.b = b, .name = name, .props = props, .n = n, .replace = replace};
    int16_t e = topic_rmw(b->cluster, name, "", alter_edit, &a, validate_only, msg, msglen);
    if (e == KAFKA_NONE && !validate_only)
        blog_info("topic %s: configs altered in the cluster (%zu key(s))", name, n);
    return e;
}
