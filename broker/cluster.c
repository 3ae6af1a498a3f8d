/*
 * cluster.c — tierbroker as one broker of a cluster (issue 10): the etcd
 * session (lease, registration under brokers/<id>, the keeper), the cluster
 * thread, the watch, and the loop's view of brokers, controller, topics and
 * partition states (cluster.h has the key layout).
 *
 * Shape: etcd calls block, so none runs on the loop. The cluster thread owns
 * the session: it registers, re-registers after a lost lease, reads every
 * key once (and again after a compaction) and runs the controller
 * (controller.c). The watch thread turns events into posts. Both hand what
 * they learn to the loop as cl_kv lists (net_post), where view_apply updates
 * the view, the topic registry and the replicas (replica_on_state) — so the
 * view needs no lock, and the loop never waits on etcd.
 *
 * Fencing: the loop counts itself registered only while a keepalive was
 * answered within the session timeout (renewed_at_ms, watched by the cluster
 * thread), so a broker frozen past its session (SIGSTOP) stops leading the
 * moment it runs again, before its keeper even notices the lease is gone.
 *
 * Threads: loop (view_*, cluster_* of cluster.h), cluster thread
 * (session_*, snapshot_read, controller.c), watch thread (on_watch), topic
 * pool (open_run, sweep_run), cluster pool (isr_run).
 *
 * Topic incarnations (KIP-516): each replica open first checks the topic id
 * recorded on this disk (topic_id.h) against etcd's; a different one means
 * the name was deleted and re-created while this broker was away, and the
 * local data goes (the plugin's topic_delete_local: never the bucket, which
 * the new incarnation may already use) before anything opens it. After the
 * first full view, recorded topics etcd no longer has are swept likewise.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cluster_internal.h"
#include "topic_id.h"

/* ------------------------------------------------------------ helpers */

int cluster_key(const bcluster *c, char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(out, outlen, "%s", c->prefix);
    int m = vsnprintf(out + n, outlen - (size_t)n, fmt, ap);
    va_end(ap);
    return n + m;
}

void cluster_b64url(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = 0;
}

/* A stable 16-byte id from cluster.name (two FNV-1a 64 passes): every broker
 * of the cluster reports the same ClusterId without storing one. */
static void cluster_id_from_name(const char *name, char *out)
{
    uint8_t h[16];
    for (int pass = 0; pass < 2; pass++) {
        uint64_t x = 1469598103934665603ULL ^ (uint64_t)(pass * 0x9e3779b97f4a7c15ULL);
        for (const char *p = "tierstore-cluster:"; *p; p++) x = (x ^ (uint8_t)*p) * 1099511628211ULL;
        for (const char *p = name; *p; p++) x = (x ^ (uint8_t)*p) * 1099511628211ULL;
        for (int i = 0; i < 8; i++) h[pass * 8 + i] = (uint8_t)(x >> (8 * i));
    }
    cluster_b64url(h, 16, out);
}

void cluster_new_topic_id(char *out)
{
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t x = (uint64_t)bclock_wall_ms() * 6364136223846793005ULL ^ (uint64_t)getpid();
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (uint8_t)(x >> 56);
        }
    }
    cluster_b64url(r, sizeof r, out);
}

char *cluster_topic_json(const char *id, int32_t nparts, int32_t rf, const int32_t *assign,
                         const bprop *cfg, size_t ncfg)
{
    cJSON *o = cJSON_CreateObject(), *parts = cJSON_CreateArray(), *cf = cJSON_CreateObject();
    char *s = NULL;
    if (!o || !parts || !cf) goto out;
    cJSON_AddStringToObject(o, "id", id);
    for (int32_t p = 0; p < nparts; p++) {
        cJSON *r = cJSON_CreateArray();
        if (!r) goto out;
        for (int32_t k = 0; k < rf; k++) cJSON_AddItemToArray(r, cJSON_CreateNumber(assign[p * rf + k]));
        cJSON_AddItemToArray(parts, r);
    }
    cJSON_AddItemToObject(o, "partitions", parts);
    parts = NULL;
    for (size_t i = 0; i < ncfg; i++) cJSON_AddStringToObject(cf, cfg[i].key, cfg[i].value);
    cJSON_AddItemToObject(o, "configs", cf);
    cf = NULL;
    s = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(parts);
    cJSON_Delete(cf);
    cJSON_Delete(o);
    return s;
}

int cluster_json_ids(const cJSON *a, int32_t *out, int32_t max)
{
    int32_t n = 0;
    const cJSON *e;
    if (!cJSON_IsArray(a)) return -1;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e) || n >= max) return -1;
        out[n++] = (int32_t)e->valuedouble;
    }
    return n;
}

int cluster_parse_pstate(const char *json, cl_pstate *st)
{
    cJSON *o = cJSON_Parse(json);
    int rc = -1;
    if (!o) return -1;
    const cJSON *l = cJSON_GetObjectItem(o, "leader"), *e = cJSON_GetObjectItem(o, "leader_epoch");
    const cJSON *ce = cJSON_GetObjectItem(o, "controller_epoch");
    if (cJSON_IsNumber(l) && cJSON_IsNumber(e)) {
        int32_t n = cluster_json_ids(cJSON_GetObjectItem(o, "isr"), st->isr, CLUSTER_MAX_REPLICAS);
        if (n >= 0) {
            st->nisr = n;
            st->leader = (int32_t)l->valuedouble;
            st->leader_epoch = (int32_t)e->valuedouble;
            st->controller_epoch = cJSON_IsNumber(ce) ? (int64_t)ce->valuedouble : 0;
            rc = 0;
        }
    }
    cJSON_Delete(o);
    return rc;
}

char *cluster_pstate_json(const cl_pstate *st)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "{\"leader\":%d,\"leader_epoch\":%d,\"isr\":[", st->leader,
                     st->leader_epoch);
    for (int32_t i = 0; i < st->nisr; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", i ? "," : "", st->isr[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, "],\"controller_epoch\":%lld}",
             (long long)st->controller_epoch);
    return strdup(buf);
}

void cluster_topic_free(ctopic *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nconfigs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->ps);
    free(t->name);
    free(t);
}

static int parse_topic_configs(const cJSON *cfg, ctopic *t)
{
    if (!cJSON_IsObject(cfg)) return 0;
    size_t n = (size_t)cJSON_GetArraySize(cfg);
    t->configs = n ? calloc(n, sizeof(*t->configs)) : NULL;
    if (n && !t->configs) return -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, cfg)
    {
        if (!cJSON_IsString(e)) continue;
        t->configs[t->nconfigs].key = strdup(e->string);
        t->configs[t->nconfigs].value = strdup(e->valuestring);
        t->nconfigs++;
        if (!t->configs[t->nconfigs - 1].key || !t->configs[t->nconfigs - 1].value) return -1;
    }
    return 0;
}

int cluster_parse_topic(const char *json, ctopic *t)
{
    cJSON *o = cJSON_Parse(json);
    int rc = -1;
    if (!o) return -1;
    const cJSON *id = cJSON_GetObjectItem(o, "id"), *parts = cJSON_GetObjectItem(o, "partitions");
    int32_t n = cJSON_IsArray(parts) ? cJSON_GetArraySize(parts) : 0;
    if (!cJSON_IsString(id) || n <= 0) goto out;
    snprintf(t->id, sizeof t->id, "%s", id->valuestring);
    t->ps = calloc((size_t)n, sizeof(*t->ps));
    if (!t->ps) goto out;
    t->npartitions = n;
    for (int32_t i = 0; i < n; i++) {
        cl_pstate *st = &t->ps[i];
        st->nreplicas = cluster_json_ids(cJSON_GetArrayItem(parts, i), st->replicas,
                                       CLUSTER_MAX_REPLICAS);
        if (st->nreplicas <= 0) goto out;
        st->leader = -1;
    }
    rc = parse_topic_configs(cJSON_GetObjectItem(o, "configs"), t);
out:
    cJSON_Delete(o);
    return rc;
}

static int in_ids(const int32_t *v, int32_t n, int32_t x)
{
    for (int32_t i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* ------------------------------------------------------- the loop's view */

ctopic *cluster_topic(const bcluster *c, const char *name)
{
    for (ctopic *t = c->topics; t; t = t->next)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

int cluster_live(const bcluster *c, int32_t id)
{
    for (size_t i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id) return 1;
    return 0;
}

size_t cluster_brokers(const broker *b, const cl_broker **out)
{
    *out = b->cluster ? b->cluster->brokers : NULL;
    return b->cluster ? b->cluster->nbrokers : 0;
}

const cl_broker *cluster_broker(const broker *b, int32_t id)
{
    for (size_t i = 0; b->cluster && i < b->cluster->nbrokers; i++)
        if (b->cluster->brokers[i].id == id) return &b->cluster->brokers[i];
    return NULL;
}

int32_t cluster_controller_id(const broker *b) { return b->cluster ? b->cluster->controller : -1; }

const char *cluster_id_get(const broker *b) { return b->cluster ? b->cluster->cluster_id : b->cluster_id; }

const cl_pstate *cluster_pstate(const broker *b, const char *topic, int32_t partition)
{
    ctopic *t = b->cluster ? cluster_topic(b->cluster, topic) : NULL;
    if (!t || partition < 0 || partition >= t->npartitions) return NULL;
    return &t->ps[partition];
}

int cluster_holds(const broker *b, const char *topic, int32_t partition)
{
    if (!b->cluster) return 1;
    const cl_pstate *st = cluster_pstate(b, topic, partition);
    return st && in_ids(st->replicas, st->nreplicas, b->node_id);
}

/* Fresh: a keepalive answered within the session timeout (less a margin for
 * the keepalive's own round trip and the poll). */
static int lease_fresh(const bcluster *c)
{
    int64_t margin = c->session_ms / 4 < 500 ? c->session_ms / 4 : 500;
    return atomic_load(&c->lease) != 0 && !atomic_load(&c->lease_lost) &&
           bclock_ms() - atomic_load(&c->renewed_at_ms) <= c->session_ms - margin;
}

int cluster_is_registered(const broker *b)
{
    return b->cluster && b->cluster->registered && lease_fresh(b->cluster);
}

int16_t cluster_check_leader(const broker *b, const char *topic, int32_t partition, int32_t epoch)
{
    const cl_pstate *st = cluster_pstate(b, topic, partition);
    if (!st) return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (epoch >= 0 && st->version) {
        if (epoch < st->leader_epoch) return KAFKA_FENCED_LEADER_EPOCH;
        if (epoch > st->leader_epoch) return KAFKA_UNKNOWN_LEADER_EPOCH;
    }
    if (st->leader != b->node_id || !cluster_is_registered(b))
        return KAFKA_NOT_LEADER_OR_FOLLOWER;
    /* Led here but not open yet (the open job runs): clients retry. */
    btopic *bt = topic_find((broker *)b, topic);
    bpart *bp = bt && partition < bt->npartitions ? topic_part_at(bt, partition) : NULL;
    if (!bp || !bp->h) return KAFKA_NOT_LEADER_OR_FOLLOWER;
    return KAFKA_NONE;
}

/* ------------------------------------------------ local replicas (loop) */

/* Every broker applies a topic's configs from etcd to its storage (so
 * DescribeConfigs answers the same on every broker), one apply job per
 * topic at a time (a change arriving meanwhile runs after it: changes land
 * in etcd order); a topic's local replicas open only after its configs
 * first applied, so a new replica starts with them. Partitions added by
 * CreatePartitions open in a job of their own ([first, end) below). */

typedef struct cfg_job {
    bjob j;
    broker *b;
    char *name;
    char id[32];
    bprop *cfg;
    size_t ncfg;
    int first; /* the topic's first apply: an empty set changes nothing */
} cfg_job;

typedef struct open_job {
    bjob j;
    broker *b;
    char *name;
    char id[32];
    int32_t first, end; /* opens the partitions [first, end) held here */
    uint8_t *want;      /* end - first: open partition first + i here */
    bpart *parts;       /* end - first: opened handles and rebuilt producer state */
    struct open_job *next_running; /* bcluster.opens */
} open_job;

int cluster_opening(const bcluster *c, const char *name)
{
    for (const open_job *o = c->opens; o; o = o->next_running)
        if (!strcmp(o->name, name)) return 1;
    return 0;
}

static void opens_unlink(bcluster *c, open_job *o)
{
    for (open_job **pp = c ? &c->opens : NULL; pp && *pp; pp = &(*pp)->next_running)
        if (*pp == o) {
            *pp = o->next_running;
            return;
        }
}

static void open_job_free(open_job *o)
{
    if (o->parts) bparts_free(o->parts, o->end - o->first);
    free(o->want);
    free(o->name);
    free(o);
}

/* Topic-level keys the broker applies itself (not the storage's). */
static int broker_topic_key(const char *k)
{
    return !strcmp(k, "min.insync.replicas") || !strcmp(k, "unclean.leader.election.enable");
}

/* Topic pool: the storage's part of the topic's configs, as the whole
 * override set (keys gone from etcd go back to the defaults). */
static void cfg_run(bjob *jb)
{
    cfg_job *o = (cfg_job *)jb;
    broker *b = o->b;
    tsp_property props[64];
    size_t np = 0;
    for (size_t i = 0; i < o->ncfg && np < 64; i++)
        if (!broker_topic_key(o->cfg[i].key)) props[np++] = (tsp_property){o->cfg[i].key, o->cfg[i].value};
    if (o->first && !np) return;
    char err[512] = "";
    tsp_status st = TSP_HAS(b->pl, topic_alter_config)
                        ? b->pl->topic_alter_config(b->eng, o->name, props, np, TSP_ALTER_REPLACE,
                                                    err, sizeof err)
                        : b->pl->topic_set_config(b->eng, o->name, props, np, err, sizeof err);
    if (st != TSP_OK)
        blog_error("topic %s: its configs from etcd were refused by the storage: %s; its "
                   "replicas here keep the configs they had (the defaults when new)",
                   o->name, err);
}

static void view_open_local(broker *b, ctopic *ct);
static void cfg_done(bjob *jb);

static void cfg_kick(broker *b, ctopic *ct)
{
    if (ct->cfg_busy) {
        ct->cfg_dirty = 1;
        return;
    }
    if (!b->topic_pool) return;
    cfg_job *o = calloc(1, sizeof(*o));
    if (!o || !(o->name = strdup(ct->name)) ||
        bprops_copy(ct->configs, ct->nconfigs, &o->cfg, &o->ncfg)) {
        if (o) {
            bprops_free(o->cfg, o->ncfg);
            free(o->cfg);
            free(o->name);
        }
        free(o);
        blog_error("topic %s: out of memory applying its configs", ct->name);
        return;
    }
    o->j.run = cfg_run;
    o->j.done = cfg_done;
    o->b = b;
    o->first = !ct->cfg_applied;
    snprintf(o->id, sizeof o->id, "%s", ct->id);
    ct->cfg_busy = 1;
    ct->cfg_dirty = 0;
    bpool_submit(b->topic_pool, &o->j);
}

static void cfg_done(bjob *jb)
{
    cfg_job *o = (cfg_job *)jb;
    broker *b = o->b;
    ctopic *ct = b->cluster ? cluster_topic(b->cluster, o->name) : NULL;
    if (ct && !strcmp(ct->id, o->id)) {
        ct->cfg_busy = 0;
        ct->cfg_applied = 1;
        topic_set_configs(b, ct->name, o->cfg, o->ncfg);
        if (ct->cfg_dirty) cfg_kick(b, ct);
        view_open_local(b, ct);
    }
    bprops_free(o->cfg, o->ncfg);
    free(o->cfg);
    free(o->name);
    free(o);
}

static void ids_dir(const broker *b, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/topic-ids", b->meta_dir);
}

/* Deletes this disk's partitions of topic through the plugin (the bucket
 * untouched); a plugin older than ABI minor 6 cannot, and says so in err.
 * Topic pool. */
static tsp_status delete_local(broker *b, const char *topic, int32_t *n, char *err,
                               size_t errlen)
{
    if (TSP_HAS(b->pl, topic_delete_local) && b->pl->topic_delete_local)
        return b->pl->topic_delete_local(b->eng, topic, n, err, errlen);
    snprintf(err, errlen, "plugin ABI minor %u lacks topic_delete_local (minor 6)",
             b->pl->abi_minor);
    return TSP_E_UNSUPPORTED;
}

/* Topic pool, before any replica of topic opens: makes this disk's replicas
 * the incarnation `id`. The same id recorded: nothing to do. Another one: the
 * local data is an older incarnation's (deleted and re-created while this
 * broker was away) and is deleted here, the bucket left alone, then the new
 * id is recorded. None: recorded (replicas from before topic ids adopt it).
 * An unreadable record keeps the replicas closed (whose data it is cannot be
 * told). Returns 0 when the replicas may open. One job per topic at a time
 * (ct->opening), so no other writer of this topic's record runs. */
static int replicas_claim(broker *b, const char *topic, const char *id)
{
    char dir[1100], rec[TOPIC_ID_LEN + 1], err[1400] = "";
    ids_dir(b, dir, sizeof dir);
    int rc = topic_id_read(dir, topic, rec, err, sizeof err);
    if (rc < 0) {
        blog_error("topic %s: its topic id record is unreadable: %s; its replicas here stay "
                   "closed: remove that file to adopt etcd's id %s with the local data, or "
                   "remove it and the topic's local directories to start them afresh",
                   topic, err, id);
        return -1;
    }
    if (rc == 1 && !strcmp(rec, id)) return 0;
    if (rc == 1) {
        int32_t n = 0;
        tsp_status st = delete_local(b, topic, &n, err, sizeof err);
        if (st != TSP_OK) {
            blog_error("topic %s: local replicas belong to topic id %s, etcd's is %s, and "
                       "deleting them failed: %s: %s; its replicas here stay closed",
                       topic, rec, id, b->pl->status_name(st), err);
            return -1;
        }
        blog_info("topic %s: local replicas belong to topic id %s, etcd's is %s (deleted and "
                  "re-created meanwhile): deleted %d local partition director%s, nothing in "
                  "the bucket", topic, rec, id, n, n == 1 ? "y" : "ies");
    } else {
        blog_info("topic %s: recording topic id %s here (none was recorded: local replicas "
                  "from before topic ids, if any, adopt it)", topic, id);
    }
    if (topic_id_write(dir, topic, id, err, sizeof err) != 0) {
        blog_error("topic %s: recording its topic id %s: %s; its replicas here stay closed",
                   topic, id, err);
        return -1;
    }
    return 0;
}

/* Topic pool: each wanted replica of [first, end), opened replicated
 * (created when new: a follower starts empty), once the disk's replicas
 * are known to be this incarnation's. */
static void open_run(bjob *jb)
{
    open_job *o = (open_job *)jb;
    broker *b = o->b;
    char err[512] = "";
    if (replicas_claim(b, o->name, o->id) != 0) return; /* handles stay NULL: offline */
    for (int32_t k = 0; k < o->end - o->first; k++) {
        if (!o->want[k]) continue;
        int32_t i = o->first + k;
        o->parts[k].index = i;
        tsp_status st = b->pl->partition_open(b->eng, o->name, i,
                                              TSP_PART_REPLICATED | TSP_PART_CREATE,
                                              &o->parts[k].h, err, sizeof err);
        if (st != TSP_OK) {
            blog_error("opening replica %s-%d: %s: %s; it stays offline here", o->name, i,
                       b->pl->status_name(st), err);
            o->parts[k].h = NULL;
            continue;
        }
        idempotence_rebuild(b, &o->parts[k]);
    }
}

static void replicas_announce(broker *b, ctopic *ct, btopic *bt, int32_t first, int32_t end)
{
    for (int32_t i = first; i < end && i < ct->npartitions && i < bt->npartitions; i++) {
        bpart *p = topic_part_at(bt, i);
        if (p && p->h && ct->ps[i].version) replica_on_state(b, bt, p, NULL, &ct->ps[i]);
    }
}

/* Loop: hands the handles o opened to the reap of its deleted topic. */
static void open_job_doom(broker *b, open_job *o)
{
    int32_t n = 0;
    for (int32_t k = 0; k < o->end - o->first; k++)
        if (o->parts[k].h) n = o->first + k + 1;
    if (!n) return;
    bpart *parts = calloc((size_t)n, sizeof(*parts));
    if (!parts) {
        blog_error("topic %s: out of memory while deleting replicas opened after its delete; "
                   "they are deleted at the next start", o->name);
        return;
    }
    for (int32_t k = 0; k < o->end - o->first && o->first + k < n; k++) {
        parts[o->first + k] = o->parts[k];
        o->parts[k].pids = NULL;
        o->parts[k].h = NULL;
    }
    for (int32_t i = 0; i < n; i++) parts[i].index = i;
    topic_doom_opened(b, o->name, parts, n);
}

static void open_done(bjob *jb)
{
    open_job *o = (open_job *)jb;
    broker *b = o->b;
    bcluster *c = b->cluster;
    ctopic *ct = c ? cluster_topic(c, o->name) : NULL;
    btopic *bt = topic_find(b, o->name);
    opens_unlink(c, o);
    if (!ct || strcmp(ct->id, o->id) || !bt || bt->npartitions < o->end) {
        /* Changed meanwhile: the handles are the engine's partitions of that
         * name; a topic still registered keeps them. A deleted one's reap
         * passed them by (they had no handle yet): reaped now, else they
         * stayed open in the storage and a re-create's reset of the name
         * failed ("is open") until a restart. Its marker waits meanwhile
         * (topic_is_doomed), so no re-create runs beside the delete. */
        blog_info("topic %s changed while its replicas opened; dropping the open", o->name);
        if (ct && !strcmp(ct->id, o->id)) ct->opening = 0;
        if (!bt) open_job_doom(b, o);
        open_job_free(o);
        return;
    }
    for (int32_t k = 0; k < o->end - o->first; k++) {
        bpart *p = topic_part_at(bt, o->first + k);
        if (!o->want[k] || !o->parts[k].h || !p) continue;
        p->h = o->parts[k].h;
        p->pids = o->parts[k].pids;
        o->parts[k].pids = NULL;
    }
    ct->opening = 0;
    ct->nopened = o->end;
    blog_info("topic %s: local replicas of partitions %d..%d open", o->name, o->first, o->end - 1);
    replicas_announce(b, ct, bt, o->first, o->end);
    open_job_free(o);
    view_open_local(b, ct); /* partitions added meanwhile */
}

/* The sweep of topic ids gone from etcd (after the first full view): the
 * topics of that view are kept (their opens check their ids themselves);
 * every other recorded topic's local directories and record go. */
typedef struct sweep_job {
    bjob j;
    broker *b;
    char **keep; /* the first view's topic names, immutable while the job runs */
    size_t nkeep;
} sweep_job;

static int sweep_keeps(const sweep_job *s, const char *name)
{
    for (size_t i = 0; i < s->nkeep; i++)
        if (!strcmp(s->keep[i], name)) return 1;
    return 0;
}

static void sweep_one(const char *topic, void *arg)
{
    sweep_job *s = arg;
    broker *b = s->b;
    if (sweep_keeps(s, topic)) return;
    char dir[1100], id[TOPIC_ID_LEN + 1], err[1400] = "";
    int32_t n = 0;
    ids_dir(b, dir, sizeof dir);
    if (topic_id_read(dir, topic, id, err, sizeof err) != 1) snprintf(id, sizeof id, "unreadable");
    tsp_status st = delete_local(b, topic, &n, err, sizeof err);
    if (st != TSP_OK || topic_id_remove(dir, topic, err, sizeof err) != 0) {
        blog_error("topic %s (id %s) is not in the cluster, and sweeping its local replicas "
                   "here failed: %s; retried at the next start", topic, id, err);
        return;
    }
    blog_info("swept topic %s (id %s): not in the cluster; deleted %d local partition "
              "director%s here, nothing in the bucket", topic, id, n, n == 1 ? "y" : "ies");
}

static void sweep_run(bjob *jb)
{
    sweep_job *s = (sweep_job *)jb;
    char dir[1100], err[1200] = "";
    ids_dir(s->b, dir, sizeof dir);
    if (topic_id_list(dir, sweep_one, s, err, sizeof err) != 0)
        blog_error("sweeping deleted topics' local replicas: %s", err);
}

static void sweep_done(bjob *jb)
{
    sweep_job *s = (sweep_job *)jb;
    if (s->b->cluster && s->b->cluster->sweep == s) s->b->cluster->sweep = NULL;
    for (size_t i = 0; i < s->nkeep; i++) free(s->keep[i]);
    free(s->keep);
    free(s); /* opens that waited start on the next tick */
}

/* Loop, at the end of the first full view: starts the sweep. Until it is
 * done, topics not in that view (created since) wait to open, so the sweep
 * never deletes a new incarnation's replicas. */
static void sweep_start(broker *b)
{
    bcluster *c = b->cluster;
    if (c->swept || !b->topic_pool) return;
    sweep_job *s = calloc(1, sizeof(*s));
    size_t n = 0;
    for (ctopic *t = c->topics; t; t = t->next) n++;
    if (!s || !(s->keep = calloc(n + 1, sizeof(char *)))) {
        free(s);
        return; /* retried with the next snapshot */
    }
    for (ctopic *t = c->topics; t; t = t->next)
        if (!(s->keep[s->nkeep++] = strdup(t->name))) { /* a name missing would be swept */
            s->j.done = sweep_done;
            s->b = b;
            sweep_done(&s->j);
            return; /* retried on the tick */
        }
    s->j.run = sweep_run;
    s->j.done = sweep_done;
    s->b = b;
    c->swept = 1;
    c->sweep = s;
    bpool_submit(b->topic_pool, &s->j);
}

/* Starts opening the local replicas of ct not opened yet (topic pool),
 * once its configs applied. A name whose previous incarnation is still
 * being deleted waits (retried on the tick), as does one the sweep of
 * deleted topics may still be removing. */
static void view_open_local(broker *b, ctopic *ct)
{
    if (!ct->cfg_applied || ct->opening || ct->nopened >= ct->npartitions || !b->topic_pool ||
        topic_is_doomed(b, ct->name))
        return;
    if (b->cluster->sweep && !sweep_keeps(b->cluster->sweep, ct->name)) return;
    int32_t first = ct->nopened, end = ct->npartitions, any = 0;
    open_job *o = calloc(1, sizeof(*o));
    if (!o) return;
    o->j.run = open_run;
    o->j.done = open_done;
    o->b = b;
    o->first = first;
    o->end = end;
    snprintf(o->id, sizeof o->id, "%s", ct->id);
    o->name = strdup(ct->name);
    o->want = calloc((size_t)(end - first), 1);
    o->parts = calloc((size_t)(end - first), sizeof(*o->parts));
    if (!o->name || !o->want || !o->parts) {
        open_job_free(o);
        return;
    }
    for (int32_t i = first; i < end; i++)
        any |= o->want[i - first] = (uint8_t)in_ids(ct->ps[i].replicas, ct->ps[i].nreplicas, b->node_id);
    if (!any) { /* nothing of these is held here */
        ct->nopened = end;
        open_job_free(o);
        return;
    }
    ct->opening = 1;
    o->next_running = b->cluster->opens;
    b->cluster->opens = o;
    bpool_submit(b->topic_pool, &o->j);
}

/* A topic of the view enters the registry (every topic, so lookups by name
 * work on every broker; partitions not held here keep no handle). */
static void view_topic_added(broker *b, ctopic *ct)
{
    char msg[256] = "";
    if (topic_find(b, ct->name) == NULL &&
        topic_register_cluster(b, ct->name, ct->npartitions, ct->configs, ct->nconfigs, msg,
                               sizeof msg) != KAFKA_NONE)
        blog_error("registering topic %s from etcd: %s", ct->name, msg);
    cfg_kick(b, ct);
}

/* CreatePartitions wrote a longer assignment: the new partitions join the
 * view (no state yet: the controller writes it) and the registry, and the
 * ones held here open. Partitions never go away while the topic lives. */
static void view_topic_grow(broker *b, ctopic *ct, const ctopic *nt)
{
    int32_t first = ct->npartitions, n = nt->npartitions - first;
    cl_pstate *ps = realloc(ct->ps, (size_t)nt->npartitions * sizeof(*ps));
    bpart *parts = ps ? calloc((size_t)n, sizeof(*parts)) : NULL;
    if (ps) ct->ps = ps;
    if (!parts) {
        blog_error("topic %s: out of memory adding partitions %d..%d", ct->name, first,
                   nt->npartitions - 1);
        return;
    }
    for (int32_t i = first; i < nt->npartitions; i++) ct->ps[i] = nt->ps[i];
    for (int32_t k = 0; k < n; k++) parts[k].index = first + k;
    ct->npartitions = nt->npartitions;
    if (topic_grow(b, ct->name, first, n, parts) != 0)
        blog_error("topic %s: its registry did not take partitions %d..%d", ct->name, first,
                   ct->npartitions - 1);
    blog_info("topic %s: %d partitions in etcd (was %d)", ct->name, ct->npartitions, first);
    view_open_local(b, ct);
}

static int configs_equal(const ctopic *a, const ctopic *b)
{
    if (a->nconfigs != b->nconfigs) return 0;
    for (size_t i = 0; i < a->nconfigs; i++) {
        size_t k = 0;
        while (k < b->nconfigs && strcmp(a->configs[i].key, b->configs[k].key)) k++;
        if (k == b->nconfigs || strcmp(a->configs[i].value, b->configs[k].value)) return 0;
    }
    return 1;
}

/* topics/<t> changed in place (same id): partitions added, configs altered. */
static void view_topic_changed(broker *b, ctopic *ct, ctopic *nt)
{
    if (nt->npartitions < ct->npartitions)
        blog_error("etcd: topics/%s lists %d partitions, fewer than the %d it had; partitions "
                   "are never removed, the new list is ignored",
                   ct->name, nt->npartitions, ct->npartitions);
    else if (nt->npartitions > ct->npartitions)
        view_topic_grow(b, ct, nt);
    if (!configs_equal(ct, nt)) {
        bprop *cf = ct->configs;
        size_t n = ct->nconfigs;
        ct->configs = nt->configs;
        ct->nconfigs = nt->nconfigs;
        nt->configs = cf;
        nt->nconfigs = n;
        blog_info("topic %s: configs changed in etcd (%zu override(s))", ct->name, ct->nconfigs);
        cfg_kick(b, ct);
    }
}

static void view_topic_removed(broker *b, ctopic *ct)
{
    char msg[256];
    blog_info("topic %s is gone from etcd: deleting its replicas here", ct->name);
    replica_on_topic_removed(b, ct->name);
    if (topic_find(b, ct->name)) topic_delete(b, ct->name, msg, sizeof msg);
}

/* A partition state changed: tell the replica when it is open here. */
static void view_state_changed(broker *b, ctopic *ct, int32_t p, const cl_pstate *prev)
{
    btopic *bt = topic_find(b, ct->name);
    bpart *bp = bt && p < bt->npartitions ? topic_part_at(bt, p) : NULL;
    if (!bp || !bp->h) return;
    replica_on_state(b, bt, bp, prev && prev->version ? prev : NULL, &ct->ps[p]);
}

/* ------------------------------------------------ applying kvs (loop) */

static int security_parse(const char *name)
{
    for (int p = BSEC_PLAINTEXT; p <= BSEC_SASL_SSL; p++)
        if (!strcmp(name, bsecurity_name(p))) return p;
    return -1;
}

/* The "listeners" array of a registration into out->endpoints; entries
 * without a name, host or port are skipped, a fifth and more ignored. */
static void parse_endpoints(const cJSON *arr, cl_broker *out)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (out->nendpoints == CLUSTER_MAX_ENDPOINTS) break;
        const cJSON *name = cJSON_GetObjectItem(e, "name"), *host = cJSON_GetObjectItem(e, "host");
        const cJSON *port = cJSON_GetObjectItem(e, "port");
        const cJSON *proto = cJSON_GetObjectItem(e, "security_protocol");
        if (!cJSON_IsString(name) || !*name->valuestring || !cJSON_IsString(host) ||
            !cJSON_IsNumber(port))
            continue;
        cl_endpoint *ep = &out->endpoints[out->nendpoints++];
        snprintf(ep->name, sizeof ep->name, "%s", name->valuestring);
        snprintf(ep->host, sizeof ep->host, "%s", host->valuestring);
        ep->port = (int32_t)port->valuedouble;
        ep->proto = cJSON_IsString(proto) ? security_parse(proto->valuestring) : -1;
    }
}

int cluster_parse_broker(const char *json, cl_broker *out)
{
    cJSON *o = cJSON_Parse(json);
    if (!o) return -1;
    const cJSON *id = cJSON_GetObjectItem(o, "id"), *host = cJSON_GetObjectItem(o, "host");
    const cJSON *port = cJSON_GetObjectItem(o, "port"), *rack = cJSON_GetObjectItem(o, "rack");
    const cJSON *eps = cJSON_GetObjectItem(o, "listeners");
    int rc = -1;
    if (cJSON_IsNumber(id) && cJSON_IsString(host) && cJSON_IsNumber(port)) {
        memset(out, 0, sizeof *out);
        out->id = (int32_t)id->valuedouble;
        snprintf(out->host, sizeof out->host, "%s", host->valuestring);
        out->port = (int32_t)port->valuedouble;
        if (cJSON_IsString(rack)) snprintf(out->rack, sizeof out->rack, "%s", rack->valuestring);
        if (cJSON_IsArray(eps)) parse_endpoints(eps, out);
        if (out->nendpoints == 0) { /* an older broker: one address for every listener */
            out->nendpoints = 1;
            out->endpoints[0].proto = -1;
            snprintf(out->endpoints[0].host, sizeof out->endpoints[0].host, "%s", out->host);
            out->endpoints[0].port = out->port;
        }
        rc = 0;
    }
    cJSON_Delete(o);
    return rc;
}

const cl_endpoint *cluster_endpoint(const cl_broker *cb, const char *listener)
{
    if (cb->nendpoints == 1 && !cb->endpoints[0].name[0]) return &cb->endpoints[0];
    for (int i = 0; i < cb->nendpoints; i++)
        if (!strcmp(cb->endpoints[i].name, listener)) return &cb->endpoints[i];
    return NULL;
}

static void brokers_put(bcluster *c, const cl_broker *nb)
{
    size_t i = 0;
    while (i < c->nbrokers && c->brokers[i].id < nb->id) i++;
    if (i < c->nbrokers && c->brokers[i].id == nb->id) {
        c->brokers[i] = *nb;
        return;
    }
    cl_broker *n = realloc(c->brokers, (c->nbrokers + 1) * sizeof(*n));
    if (!n) return;
    c->brokers = n;
    memmove(&n[i + 1], &n[i], (c->nbrokers - i) * sizeof(*n));
    n[i] = *nb;
    c->nbrokers++;
}

static void brokers_del(bcluster *c, int32_t id)
{
    for (size_t i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id) {
            memmove(&c->brokers[i], &c->brokers[i + 1], (c->nbrokers - i - 1) * sizeof(cl_broker));
            c->nbrokers--;
            return;
        }
}

static void topic_unlink(bcluster *c, ctopic *t)
{
    for (ctopic **pp = &c->topics; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

static void apply_topic(broker *b, const cl_kv *kv, const char *name)
{
    bcluster *c = b->cluster;
    ctopic *old = cluster_topic(c, name);
    if (kv->del) {
        if (!old) return;
        topic_unlink(c, old);
        view_topic_removed(b, old);
        cluster_topic_free(old);
        return;
    }
    ctopic *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name)) || cluster_parse_topic(kv->value, t) != 0) {
        blog_error("etcd: topics/%s does not hold a topic; ignored", name);
        cluster_topic_free(t);
        return;
    }
    if (old && !strcmp(old->id, t->id)) { /* same topic: a snapshot again, or changed */
        old->seen = 1;
        if (kv->mod_revision > old->mod_revision) {
            old->mod_revision = kv->mod_revision;
            view_topic_changed(b, old, t);
        }
        cluster_topic_free(t);
        return;
    }
    if (old) { /* re-created under the same name while we were not looking */
        topic_unlink(c, old);
        view_topic_removed(b, old);
        cluster_topic_free(old);
    }
    t->seen = 1;
    t->create_revision = kv->create_revision;
    t->mod_revision = kv->mod_revision;
    t->next = c->topics;
    c->topics = t;
    view_topic_added(b, t);
}

static void apply_partition(broker *b, const cl_kv *kv, const char *rest)
{
    const char *slash = strrchr(rest, '/');
    if (!slash) return;
    char name[256];
    size_t nl = (size_t)(slash - rest);
    if (nl >= sizeof name) return;
    memcpy(name, rest, nl);
    name[nl] = 0;
    int32_t p = atoi(slash + 1);
    ctopic *t = cluster_topic(b->cluster, name);
    if (!t || p < 0 || p >= t->npartitions) return;
    cl_pstate *st = &t->ps[p], prev = *st;
    if (kv->del) {
        st->version = 0;
        st->leader = -1;
        st->nisr = 0;
        return;
    }
    if (kv->mod_revision <= st->version) return; /* already applied (our own write) */
    cl_pstate n = *st;
    if (cluster_parse_pstate(kv->value, &n) != 0) {
        blog_error("etcd: partitions/%s/%d does not hold a partition state; ignored", name, p);
        return;
    }
    n.version = kv->mod_revision;
    *st = n;
    view_state_changed(b, t, p, &prev);
}

/* Returns 1 when the live broker set changed. */
static int apply_kv(broker *b, const cl_kv *kv)
{
    bcluster *c = b->cluster;
    if (!strncmp(kv->key, "brokers/", 8)) {
        cl_broker nb;
        if (kv->del) {
            brokers_del(c, atoi(kv->key + 8));
        } else if (cluster_parse_broker(kv->value, &nb) == 0) {
            brokers_put(c, &nb);
        }
        return 1;
    }
    if (!strcmp(kv->key, "controller")) {
        cJSON *o = kv->del ? NULL : cJSON_Parse(kv->value);
        const cJSON *id = o ? cJSON_GetObjectItem(o, "id") : NULL;
        c->controller = cJSON_IsNumber(id) ? (int32_t)id->valuedouble : -1;
        cJSON_Delete(o);
    } else if (!strncmp(kv->key, "topics/", 7)) {
        apply_topic(b, kv, kv->key + 7);
    } else if (!strncmp(kv->key, "partitions/", 11)) {
        apply_partition(b, kv, kv->key + 11);
    } else if (!strncmp(kv->key, "acls/", 5)) {
        acl_cluster_apply(b, kv->key, kv->del ? NULL : kv->value);
    } else if (!strncmp(kv->key, "deletes/", 8)) {
        cluster_delete_apply(b, kv, kv->key + 8);
    }
    return 0;
}

/* Before a snapshot: nothing is seen; after it, what was not seen is gone. */
static void snapshot_begin(bcluster *c)
{
    c->nbrokers = 0;
    c->controller = -1;
    for (ctopic *t = c->topics; t; t = t->next) t->seen = 0;
    cluster_deletes_snapshot_begin(c);
}

static void snapshot_end(broker *b)
{
    bcluster *c = b->cluster;
    ctopic **pp = &c->topics;
    while (*pp) {
        ctopic *t = *pp;
        if (t->seen) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        view_topic_removed(b, t);
        cluster_topic_free(t);
    }
    cluster_deletes_snapshot_end(c);
    sweep_start(b);
}

/* Lost, or back: the replicas hear it (a leader that lost its lease stops
 * leading at once; back, each replica gets the state as now read). */
static void view_set_registered(broker *b, int reg)
{
    bcluster *c = b->cluster;
    if (c->registered == reg) return;
    c->registered = reg;
    blog_info("%s", reg ? "registered in the cluster" : "not registered in the cluster (lease lost): "
                                                        "no longer leading any partition");
    for (ctopic *t = c->topics; t; t = t->next) {
        btopic *bt = topic_find(b, t->name);
        for (int32_t i = 0; bt && i < t->npartitions && i < bt->npartitions; i++) {
            bpart *bp = topic_part_at(bt, i);
            if (!bp || !bp->h || !t->ps[i].version) continue;
            cl_pstate cleared = t->ps[i];
            cleared.leader = -1;
            if (reg)
                replica_on_state(b, bt, bp, &cleared, &t->ps[i]);
            else if (t->ps[i].leader == b->node_id)
                replica_on_state(b, bt, bp, &t->ps[i], &cleared);
        }
    }
}

enum { POST_KVS = 0, POST_SNAPSHOT = 1, POST_LOST = 2 };

typedef struct cl_post {
    bjob j;
    broker *b;
    int kind;
    cl_kv *kvs;
    size_t n;
    int64_t revision; /* POST_SNAPSHOT: the revision read at */
} cl_post;

static void post_free(cl_post *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->kvs[i].key);
        free(p->kvs[i].value);
    }
    free(p->kvs);
    free(p);
}

static void view_apply(broker *b, int kind, const cl_kv *kvs, size_t n, int64_t revision)
{
    bcluster *c = b->cluster;
    if (kind == POST_LOST) {
        c->lost = 1;
        view_set_registered(b, 0);
        return;
    }
    /* A snapshot older than an event already applied (the watch ran ahead of
     * the read's post) would roll the view back: only its registration counts. */
    int stale = kind == POST_SNAPSHOT && revision < c->applied_revision;
    if (kind == POST_SNAPSHOT && !stale) {
        snapshot_begin(c);
        acl_cluster_snapshot_begin(b);
    }
    int brokers_changed = kind == POST_SNAPSHOT && !stale;
    for (size_t i = 0; i < n && !stale; i++) {
        if (kind == POST_KVS && kvs[i].mod_revision <= c->view_revision) continue;
        brokers_changed |= apply_kv(b, &kvs[i]);
        if (kvs[i].mod_revision > c->applied_revision) c->applied_revision = kvs[i].mod_revision;
    }
    if (kind == POST_SNAPSHOT) {
        if (!stale) {
            c->view_revision = revision;
            c->applied_revision = revision;
            snapshot_end(b);
        }
        c->lost = 0;
        view_set_registered(b, 1);
    }
    if (brokers_changed) replica_on_brokers(b);
    cluster_waits_check(b, 0);
}

static void post_done(bjob *j)
{
    cl_post *p = (cl_post *)j;
    if (p->b->cluster) view_apply(p->b, p->kind, p->kvs, p->n, p->revision);
    post_free(p);
}

static void post(bcluster *c, int kind, cl_kv *kvs, size_t n, int64_t revision)
{
    cl_post *p = calloc(1, sizeof(*p));
    if (!p) return; /* a lost event: the next snapshot repairs it */
    p->j.done = post_done;
    p->b = c->b;
    p->kind = kind;
    p->kvs = kvs;
    p->n = n;
    p->revision = revision;
    net_post(c->b, &p->j);
}

/* -------------------------------------------- reading etcd (off the loop) */

/* Keys of interest below the prefix: the view's and the controller's. */
static int key_wanted(const char *k)
{
    return !strncmp(k, "brokers/", 8) || !strcmp(k, "controller") || !strncmp(k, "topics/", 7) ||
           !strncmp(k, "partitions/", 11) || !strncmp(k, "acls/", 5) || !strncmp(k, "deletes/", 8);
}

static int kv_fill(bcluster *c, cl_kv *out, const ts_etcd_kv *kv, int del)
{
    if (kv->key_len < c->prefix_len || memcmp(kv->key, c->prefix, c->prefix_len)) return -1;
    if (!key_wanted(kv->key + c->prefix_len)) return -1;
    out->del = del;
    out->key = strdup(kv->key + c->prefix_len);
    out->value = del ? NULL : strndup(kv->value, kv->value_len);
    out->mod_revision = kv->mod_revision;
    out->create_revision = kv->create_revision;
    return out->key && (del || out->value) ? 0 : -1;
}

/* Every key the view needs, at one revision (one txn of six ranges).
 * Returns the revision, 0 on failure. Cluster thread. */
static int64_t snapshot_read(bcluster *c)
{
    char k[6][320];
    const char *names[6] = {"brokers/", "controller", "topics/", "partitions/", "acls/",
                            "deletes/"};
    ts_etcd_op ops[6];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 6; i++) {
        cluster_key(c, k[i], sizeof k[i], "%s", names[i]);
        ops[i].type = TS_ETCD_OP_RANGE;
        ops[i].key = k[i];
        ops[i].key_len = strlen(k[i]);
        ops[i].prefix = i != 1;
    }
    ts_etcd_txn_result r;
    char err[1024] = "";
    if (ts_etcd_txn(c->etcd, NULL, 0, ops, 6, NULL, 0, &r, err, sizeof err) != TS_ETCD_OK) {
        blog_warn("cluster: reading the cluster's state from etcd: %s", err);
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < r.nresponses; i++) total += r.responses[i].nkvs;
    cl_kv *kvs = calloc(total ? total : 1, sizeof(*kvs));
    size_t n = 0;
    for (size_t i = 0; kvs && i < r.nresponses; i++)
        for (size_t k2 = 0; k2 < r.responses[i].nkvs; k2++)
            if (kv_fill(c, &kvs[n], &r.responses[i].kvs[k2], 0) == 0) n++;
    int64_t rev = r.revision;
    ts_etcd_txn_result_free(&r);
    if (!kvs) return 0;
    post(c, POST_SNAPSHOT, kvs, n, rev);
    return rev;
}

static void thread_wake(bcluster *c)
{
    pthread_mutex_lock(&c->mu);
    c->wake = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Watch thread. */
static void on_watch(void *arg, const ts_etcd_watch_update *u)
{
    bcluster *c = arg;
    if (u->kind == TS_ETCD_WATCH_COMPACTED || u->kind == TS_ETCD_WATCH_FAILED) {
        blog_warn("cluster: the etcd watch ended (%s): reading everything again",
                  u->message ? u->message : "");
        pthread_mutex_lock(&c->mu);
        c->watch_broken = 1;
        pthread_mutex_unlock(&c->mu);
        thread_wake(c);
        return;
    }
    if (u->kind != TS_ETCD_WATCH_EVENTS || !u->nevents) return;
    cl_kv *kvs = calloc(u->nevents, sizeof(*kvs));
    size_t n = 0;
    for (size_t i = 0; kvs && i < u->nevents; i++)
        if (kv_fill(c, &kvs[n], &u->events[i].kv, u->events[i].type == TS_ETCD_EV_DELETE) == 0)
            n++;
        else {
            free(kvs[n].key);
            free(kvs[n].value);
            memset(&kvs[n], 0, sizeof kvs[n]);
        }
    if (!n) {
        free(kvs);
        return;
    }
    post(c, POST_KVS, kvs, n, 0);
    pthread_mutex_lock(&c->mu);
    c->ctl_dirty = 1; /* the controller looks again */
    pthread_mutex_unlock(&c->mu);
    thread_wake(c);
}

static int watch_start(bcluster *c, int64_t from)
{
    ts_etcd_watch_opts wo = {.key = c->prefix,
                             .key_len = c->prefix_len,
                             .prefix = 1,
                             .start_revision = from,
                             .idle_timeout_ms = 0,
                             .cb = on_watch,
                             .arg = c};
    char err[1024] = "";
    if (ts_etcd_watch_start(c->etcd, &wo, &c->watch, err, sizeof err) != TS_ETCD_OK) {
        blog_warn("cluster: watching etcd: %s", err);
        c->watch = NULL;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------- the session */

static void on_lease_lost(void *arg, int64_t lease, ts_etcd_status why, const char *message)
{
    bcluster *c = arg;
    blog_warn("cluster: lease %llx lost (%s: %s)", (unsigned long long)lease,
              ts_etcd_status_name(why), message ? message : "");
    atomic_store(&c->lease_lost, 1);
    thread_wake(c);
}

/* One attempt at brokers/<id> under a new lease: 1 registered, 0 the key is
 * held by another live lease (*holder says whose), -1 etcd failed. */
static int register_once(bcluster *c, int64_t lease, char *holder, size_t hl, char *err,
                         size_t errlen)
{
    char key[320];
    cluster_key(c, key, sizeof key, "brokers/%d", c->b->node_id);
    ts_etcd_cmp absent = {.key = key, .key_len = strlen(key), .target = TS_ETCD_CMP_CREATE,
                          .result = TS_ETCD_EQUAL, .number = 0};
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key),
                      .value = c->self_json, .value_len = strlen(c->self_json), .lease = lease};
    ts_etcd_op get = {.type = TS_ETCD_OP_RANGE, .key = key, .key_len = strlen(key)};
    ts_etcd_txn_result r;
    if (ts_etcd_txn(c->etcd, &absent, 1, &put, 1, &get, 1, &r, err, errlen) != TS_ETCD_OK)
        return -1;
    int rc = r.succeeded;
    if (!rc && r.nresponses && r.responses[0].nkvs) {
        const ts_etcd_kv *kv = &r.responses[0].kvs[0];
        if (kv->lease == lease) {
            rc = 1; /* our own retried write */
        } else if (kv->lease == c->prev_lease) {
            /* Our own registration of before (etcd restored the lease on a
             * restart): drop it and try again at once. */
            ts_etcd_lease_revoke(c->etcd, kv->lease, NULL, 0);
            rc = -1;
            snprintf(err, errlen, "dropped this broker's previous registration");
        } else
            snprintf(holder, hl, "%.*s (lease %llx)", (int)(kv->value_len > 300 ? 300 : kv->value_len),
                     kv->value, (unsigned long long)kv->lease);
    }
    ts_etcd_txn_result_free(&r);
    return rc;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One grant + registration: 1 registered (keeper running), 0 brokers/<id>
 * held by another lease (*holder), -1 etcd failed. */
static int session_attempt(bcluster *c, char *holder, size_t hl, char *err, size_t errlen)
{
    int64_t lease = 0;
    if (ts_etcd_lease_grant(c->etcd, c->ttl_s, 0, &lease, NULL, err, errlen) != TS_ETCD_OK)
        return -1;
    int rc = register_once(c, lease, holder, hl, err, errlen);
    if (rc == 1 && ts_etcd_keeper_start(c->etcd, lease, c->ttl_s, on_lease_lost, c, &c->keeper,
                                        err, errlen) == TS_ETCD_OK) {
        atomic_store(&c->lease_lost, 0);
        atomic_store(&c->renewed_at_ms, bclock_ms());
        atomic_store(&c->lease, lease);
        blog_info("cluster: registered as broker %d (lease %llx, session %lld ms)",
                  c->b->node_id, (unsigned long long)lease, (long long)c->session_ms);
        return 1;
    }
    ts_etcd_lease_revoke(c->etcd, lease, NULL, 0);
    return rc == 1 ? -1 : rc;
}

/* Grants a lease and registers under it, retrying until deadline (0: until
 * stopped; -1 returned then). A key held by another lease is waited for
 * whatever the deadline: a broker killed a moment ago still holds it until
 * its lease expires, but a live one renews it for ever — after the session
 * timeout twice over it is a duplicate (-2, at startup only). */
static int session_open(bcluster *c, int64_t deadline, char *err, size_t errlen)
{
    int64_t dup_since = 0, last_log = bclock_ms();
    char holder[400] = "";
    for (;;) {
        holder[0] = 0;
        int rc = session_attempt(c, holder, sizeof holder, err, errlen);
        if (rc == 1) return 0;
        int64_t now = bclock_ms();
        dup_since = rc == 0 ? (dup_since ? dup_since : now) : 0;
        if (dup_since && deadline && now - dup_since > 2 * c->session_ms + 1000) {
            snprintf(err, errlen,
                     "node.id %d is already registered in etcd by a live broker: %s; every "
                     "broker of the cluster needs its own node.id (refusing to start)",
                     c->b->node_id, holder);
            return -2;
        }
        if (c->stop || (deadline && !dup_since && now >= deadline)) return -1;
        if (now - last_log >= 5000) {
            last_log = now;
            blog_warn("cluster: still registering as broker %d: %s%s%s", c->b->node_id,
                      dup_since ? "" : err, holder[0] ? "brokers/<id> held by " : "", holder);
        }
        sleep_ms(250);
    }
}

static void session_close(bcluster *c, int revoke)
{
    ts_etcd_keeper_stop(c->keeper);
    c->keeper = NULL;
    int64_t lease = atomic_exchange(&c->lease, 0);
    if (lease) c->prev_lease = lease;
    if (revoke && lease) ts_etcd_lease_revoke(c->etcd, lease, NULL, 0);
    controller_resign(c);
}

/* Publishes when the last answered keepalive was sent (the loop's freshness
 * test reads it; both clocks are CLOCK_MONOTONIC). */
static void session_poll(bcluster *c)
{
    if (c->keeper) atomic_store(&c->renewed_at_ms, ts_etcd_keeper_alive_ms(c->keeper));
}

/* After a lost lease: stop leading at once, then register again. */
static void session_renew(bcluster *c)
{
    post(c, POST_LOST, NULL, 0, 0);
    session_close(c, 1);
    char err[1024] = "";
    while (!c->stop) {
        if (session_open(c, 0, err, sizeof err) == 0) {
            snapshot_read(c); /* re-delivers every state as it is now */
            return;
        }
        blog_warn("cluster: registering again: %s", err);
    }
}

static void *cluster_thread(void *arg)
{
    bcluster *c = arg;
    while (!c->stop) {
        session_poll(c);
        if (atomic_load(&c->lease_lost)) session_renew(c);
        pthread_mutex_lock(&c->mu);
        int broken = c->watch_broken;
        c->watch_broken = 0;
        pthread_mutex_unlock(&c->mu);
        if (broken || !c->watch) {
            ts_etcd_watch_stop(c->watch);
            c->watch = NULL;
            int64_t rev = snapshot_read(c);
            if (rev) watch_start(c, rev + 1);
        }
        if (atomic_load(&c->lease) && !atomic_load(&c->lease_lost)) controller_step(c);
        pthread_mutex_lock(&c->mu);
        if (!c->wake && !c->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        c->wake = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* ------------------------------------------------------ start and stop */

static int self_json(bcluster *c, char *err, size_t errlen)
{
    broker *b = c->b;
    cJSON *o = cJSON_CreateObject();
    if (!o) return -1;
    cJSON_AddNumberToObject(o, "id", b->node_id);
    cJSON_AddStringToObject(o, "host", b->adv_host);
    cJSON_AddNumberToObject(o, "port", b->adv_port);
    cJSON_AddStringToObject(o, "rack", bconfig_get(&b->cfg, "broker.rack"));
    cJSON_AddStringToObject(o, "admin", bconfig_get(&b->cfg, "admin.listeners"));
    cJSON *eps = cJSON_AddArrayToObject(o, "listeners");
    for (int i = 0; eps && i < b->nlisteners; i++) {
        const blistener *l = &b->listeners[i];
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "name", l->name);
        cJSON_AddStringToObject(e, "security_protocol", bsecurity_name(l->proto));
        cJSON_AddStringToObject(e, "host", l->adv_host);
        cJSON_AddNumberToObject(e, "port", l->adv_port);
        cJSON_AddItemToArray(eps, e);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s || strlen(s) >= sizeof c->self_json) {
        free(s);
        snprintf(err, errlen, "broker registration too large");
        return -1;
    }
    snprintf(c->self_json, sizeof c->self_json, "%s", s);
    free(s);
    return 0;
}

static bcluster *cluster_new(broker *b, char *err, size_t errlen)
{
    bcluster *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->b = b;
    c->controller = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    const bconfig *cfg = &b->cfg;
    c->prefix_len = (size_t)snprintf(c->prefix, sizeof c->prefix, "/%s/",
                                     bconfig_get(cfg, "cluster.name"));
    cluster_id_from_name(bconfig_get(cfg, "cluster.name"), c->cluster_id);
    c->session_ms = bconfig_int(cfg, "broker.session.timeout.ms");
    c->ttl_s = (c->session_ms + 999) / 1000;
    c->store_timeout_ms = bconfig_int(cfg, "metadata.store.timeout.ms");
    c->unclean = !strcmp(bconfig_get(cfg, "unclean.leader.election.enable"), "true");
    c->auto_rebalance = !strcmp(bconfig_get(cfg, "auto.leader.rebalance.enable"), "true");
    c->rebalance_interval_ms = bconfig_int(cfg, "leader.imbalance.check.interval.seconds") * 1000;
    c->offsets_partitions = (int32_t)bconfig_int(cfg, "offsets.topic.num.partitions");
    c->default_rf = (int32_t)bconfig_int(cfg, "default.replication.factor");
    if (self_json(c, err, errlen) != 0 || cluster_interbroker_resolve(b, &c->ib, err, errlen) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------- inter-broker settings */

/* listener.name.<lower-case listener>.<key>, then <key> (Kafka's order);
 * NULL when neither is set. */
static const char *listener_setting(const bconfig *cfg, const char *listener, const char *key)
{
    char k[256];
    size_t o = (size_t)snprintf(k, sizeof k, "listener.name.");
    for (const char *p = listener; *p && o + 1 < sizeof k; p++)
        k[o++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    snprintf(k + o, sizeof k - o, ".%s", key);
    const char *v = bconfig_lookup(cfg, k);
    return v ? v : bconfig_lookup(cfg, key);
}

/* The value of option `key` of a JAAS line ("<LoginModule> required
 * username=\"x\" password=\"y\";"): quoted (backslash escapes the next
 * character) or bare up to a blank or ';'. 0, or -1 when absent or too long. */
static int jaas_option(const char *jaas, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = jaas;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        const char *tok = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != ';') p++;
        int match = *p == '=' && (size_t)(p - tok) == kl && !strncmp(tok, key, kl);
        if (*p != '=') {
            if (*p) p++;
            continue;
        }
        p++; /* past '=' */
        size_t o = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) p++;
                if (match && o + 1 >= outlen) return -1;
                if (match) out[o++] = *p;
            }
            if (*p == '"') p++;
        } else {
            for (; *p && *p != ' ' && *p != '\t' && *p != ';'; p++) {
                if (match && o + 1 >= outlen) return -1;
                if (match) out[o++] = *p;
            }
        }
        if (match) {
            out[o] = 0;
            return 0;
        }
    }
    return -1;
}

int cluster_interbroker_resolve(const broker *b, cl_interbroker *out, char *err, size_t errlen)
{
    const bconfig *cfg = &b->cfg;
    memset(out, 0, sizeof *out);
    const char *name = bconfig_lookup(cfg, "inter.broker.listener.name");
    const char *proto = bconfig_lookup(cfg, "security.inter.broker.protocol");
    if (name && *name && proto && *proto) {
        snprintf(err, errlen,
                 "set only one of inter.broker.listener.name (%s) and "
                 "security.inter.broker.protocol (%s), as Kafka requires",
                 name, proto);
        return -1;
    }
    const char *want = name && *name ? name : proto && *proto ? proto : "PLAINTEXT";
    const blistener *l = NULL;
    char names[512] = "";
    for (int i = 0; i < b->nlisteners; i++) {
        if (!strcasecmp(b->listeners[i].name, want)) l = &b->listeners[i];
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 b->listeners[i].name);
    }
    if (!l) {
        snprintf(err, errlen,
                 "%s=%s: no listener has that name (listeners: %s); followers fetch from "
                 "the other brokers on that listener: set inter.broker.listener.name to one of "
                 "them",
                 name && *name   ? "inter.broker.listener.name"
                 : proto && *proto ? "security.inter.broker.protocol"
                                   : "inter.broker.listener.name (unset, so PLAINTEXT)",
                 want, names);
        return -1;
    }
    snprintf(out->listener, sizeof out->listener, "%s", l->name);
    out->proto = l->proto;
    const char *alg = listener_setting(cfg, l->name, "ssl.endpoint.identification.algorithm");
    out->verify_host = !alg || *alg; /* Kafka's default: https */
    if (l->proto != BSEC_SASL_PLAINTEXT && l->proto != BSEC_SASL_SSL) return 0;
    const char *mech = bconfig_get(cfg, "sasl.mechanism.inter.broker.protocol");
    if (strcmp(mech, "PLAIN") && strcmp(mech, "SCRAM-SHA-256") && strcmp(mech, "SCRAM-SHA-512")) {
        snprintf(err, errlen,
                 "inter-broker listener %s is %s, but sasl.mechanism.inter.broker.protocol=%s is "
                 "not supported: set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                 l->name, bsecurity_name(l->proto), mech);
        return -1;
    }
    snprintf(out->mech, sizeof out->mech, "%s", mech);
    char key[256], lname[64], lmech[32];
    size_t i;
    for (i = 0; l->name[i] && i + 1 < sizeof lname; i++)
        lname[i] = (char)((l->name[i] >= 'A' && l->name[i] <= 'Z') ? l->name[i] + 32 : l->name[i]);
    lname[i] = 0;
    for (i = 0; mech[i] && i + 1 < sizeof lmech; i++)
        lmech[i] = (char)((mech[i] >= 'A' && mech[i] <= 'Z') ? mech[i] + 32 : mech[i]);
    lmech[i] = 0;
    snprintf(key, sizeof key, "listener.name.%s.%s.sasl.jaas.config", lname, lmech);
    snprintf(out->jaas_key, sizeof out->jaas_key, "%s", key);
    const char *jaas = bconfig_lookup(cfg, key);
    if (!jaas || !*jaas) {
        snprintf(err, errlen,
                 "inter-broker listener %s uses SASL %s: set %s=... required username=\"<this "
                 "broker's user>\" password=\"...\"; (the user must exist on every broker)",
                 l->name, mech, key);
        return -1;
    }
    if (jaas_option(jaas, "username", out->user, sizeof out->user) != 0 || !out->user[0] ||
        jaas_option(jaas, "password", out->password, sizeof out->password) != 0) {
        snprintf(err, errlen, "%s: needs username=\"...\" and password=\"...\" options", key);
        explicit_bzero(out->password, sizeof out->password);
        return -1;
    }
    return 0;
}

const cl_interbroker *cluster_interbroker(const broker *b)
{
    return b->cluster ? &b->cluster->ib : NULL;
}

static void cluster_free(bcluster *c)
{
    while (c->topics) {
        ctopic *t = c->topics;
        c->topics = t->next;
        cluster_topic_free(t);
    }
    cluster_autos_free(c);
    cluster_deletes_free(c);
    free(c->brokers);
    explicit_bzero(&c->ib, sizeof c->ib); /* the inter-broker password */
    ts_etcd_destroy(c->etcd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

int cluster_start(broker *b, char *err, size_t errlen)
{
    const char *url = bconfig_get(&b->cfg, "metadata.store.url");
    if (!url || !*url) return 0;
    bcluster *c = cluster_new(b, err, errlen);
    if (!c) return -1;
    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = url;
    o.op_timeout_ms = c->session_ms < 5000 ? c->session_ms : 5000;
    o.request_timeout_ms = o.op_timeout_ms < 2000 ? o.op_timeout_ms : 2000;
    char e2[1024] = "";
    if (ts_etcd_create(&o, &c->etcd, e2, sizeof e2) != TS_ETCD_OK) {
        snprintf(err, errlen, "metadata.store.url=%s: %s", url, e2);
        cluster_free(c);
        return -1;
    }
    int rc = session_open(c, bclock_ms() + c->store_timeout_ms, e2, sizeof e2);
    if (rc != 0) {
        if (rc == -2)
            snprintf(err, errlen, "%s", e2);
        else
            snprintf(err, errlen,
                     "cannot register in the cluster's etcd (metadata.store.url=%s) within "
                     "metadata.store.timeout.ms=%lld: %s; is etcd running and reachable?",
                     url, (long long)c->store_timeout_ms, e2);
        cluster_free(c);
        return -1;
    }
    c->pool = bpool_create(b, "cluster", 2);
    b->cluster = c;
    /* The first view before serving (this is the loop thread, before net_run):
     * a Metadata answered from an empty view would name no controller and no
     * other broker, and clients cache that. On failure the thread retries. */
    int64_t rev = snapshot_read(c);
    net_drain(b);
    if (rev) watch_start(c, rev + 1);
    if (!c->pool || pthread_create(&c->thr, NULL, cluster_thread, c) != 0) {
        snprintf(err, errlen, "cannot start the cluster threads");
        cluster_stop(b);
        return -1;
    }
    c->thr_started = 1;
    return 0;
}

void cluster_stop(broker *b)
{
    bcluster *c = b->cluster;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->thr_started) pthread_join(c->thr, NULL);
    ts_etcd_watch_stop(c->watch);
    c->watch = NULL;
    session_close(c, 1); /* revoking deletes brokers/<id> (and controller) at once */
    bpool_destroy(c->pool);
    c->pool = NULL;
    net_drain(b);
    cluster_waits_abort(b);
    b->cluster = NULL;
    cluster_free(c);
    blog_info("cluster: deregistered");
}

void cluster_tick(broker *b)
{
    bcluster *c = b->cluster;
    if (!c) return;
    /* A keepalive late past the session (etcd slow, or this process frozen)
     * stops leadership at once; answered again without the lease lost, it
     * resumes. A lost lease resumes only with the snapshot read after the new
     * registration (the states may have moved meanwhile). */
    int fresh = lease_fresh(c);
    if (c->registered && !fresh) view_set_registered(b, 0);
    else if (!c->registered && fresh && !c->lost && c->view_revision) view_set_registered(b, 1);
    if (!c->swept && c->view_revision) sweep_start(b); /* the first view came before the pools */
    for (ctopic *t = c->topics; t; t = t->next) {
        if (!t->cfg_applied && !t->cfg_busy) cfg_kick(b, t); /* its first apply failed to start */
        view_open_local(b, t);
    }
    cluster_deletes_tick(b);
    cluster_waits_check(b, 1);
}

/* ---------------------------------------------------- ISR writes (leader) */

typedef struct isr_job {
    bjob j;
    broker *b;
    char key[320];
    char *value;
    int64_t expect, revision;
    int ok;
    char topic[256];
    int32_t partition;
    cl_pstate next;
    cluster_done_fn done;
    void *arg;
} isr_job;

static void isr_run(bjob *jb)
{
    isr_job *o = (isr_job *)jb;
    bcluster *c = o->b->cluster;
    ts_etcd_cmp cmp = {.key = o->key, .key_len = strlen(o->key), .target = TS_ETCD_CMP_MOD,
                       .result = TS_ETCD_EQUAL, .number = o->expect};
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = o->key, .key_len = strlen(o->key),
                      .value = o->value, .value_len = strlen(o->value)};
    ts_etcd_txn_result r;
    char err[1024] = "";
    if (ts_etcd_txn(c->etcd, &cmp, 1, &put, 1, NULL, 0, &r, err, sizeof err) != TS_ETCD_OK) {
        blog_warn("cluster: ISR update of %s: %s", o->key, err);
        return;
    }
    o->ok = r.succeeded;
    o->revision = r.revision;
    ts_etcd_txn_result_free(&r);
}

static void isr_done(bjob *jb)
{
    isr_job *o = (isr_job *)jb;
    broker *b = o->b;
    ctopic *t = b->cluster ? cluster_topic(b->cluster, o->topic) : NULL;
    if (o->ok && t && o->partition < t->npartitions && t->ps[o->partition].version == o->expect) {
        cl_pstate prev = t->ps[o->partition];
        o->next.version = o->revision;
        t->ps[o->partition] = o->next;
        view_state_changed(b, t, o->partition, &prev);
    }
    if (o->done) o->done(b, o->arg, o->ok);
    free(o->value);
    free(o);
}

void cluster_update_isr(broker *b, const char *topic, int32_t partition, int64_t expect_version,
                        const int32_t *isr, int32_t nisr, cluster_done_fn done, void *arg)
{
    const cl_pstate *st = cluster_pstate(b, topic, partition);
    isr_job *o = st && b->cluster && b->cluster->pool && nisr > 0 &&
                         nisr <= CLUSTER_MAX_REPLICAS && strlen(topic) < 256
                     ? calloc(1, sizeof(*o))
                     : NULL;
    if (!o) {
        if (done) done(b, arg, 0);
        return;
    }
    o->j.run = isr_run;
    o->j.done = isr_done;
    o->b = b;
    o->expect = expect_version;
    snprintf(o->topic, sizeof o->topic, "%s", topic);
    o->partition = partition;
    o->next = *st;
    memcpy(o->next.isr, isr, (size_t)nisr * sizeof(*isr));
    o->next.nisr = nisr;
    cluster_key(b->cluster, o->key, sizeof o->key, "partitions/%s/%d", topic, partition);
    o->value = cluster_pstate_json(&o->next);
    o->done = done;
    o->arg = arg;
    if (!o->value) {
        free(o);
        if (done) done(b, arg, 0);
        return;
    }
    bpool_submit(b->cluster->pool, &o->j);
}
