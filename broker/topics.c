/*
 * topics.c — the broker's topic registry and its metadata files.
 *
 * The plugin stores partitions; it does not enumerate topics. The broker
 * keeps the list (name, partition count, overrides as created) in
 * <log.dirs>/.broker/topics, committed offsets in .broker/offsets and the
 * producer-id counter in .broker/producer-ids, written on the meta pool's
 * single thread so the newest version always wins (formats below, at the
 * metadata files section). A topic missing from
 * the file but known to the plugin (data dir rebuilt from the bucket) is
 * adopted on first use.
 *
 * The registry answers from memory only, so a request never waits on the
 * storage on the loop thread: a name it does not hold is looked up (and,
 * for auto-create and CreateTopics, created) by one job on the topic pool
 * (b->opening: one job per name at a time; requests needing the name
 * meanwhile wait for that job or get a retriable error), and a name the
 * storage does not know either is remembered for TOPIC_NEG_TTL_MS (the
 * negative cache) so that a stream of requests for it costs no LISTs.
 *
 * Thread: loop thread, except job_run, reap_run (topic pool workers) and
 * meta_run (meta pool worker).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "topic_id.h"
#include "meta_log.h"

void bparts_free(bpart *parts, int32_t n)
{
    for (int32_t i = 0; parts && i < n; i++) {
        pid_state *p = parts[i].pids;
        while (p) {
            pid_state *nx = p->next;
            free(p);
            p = nx;
        }
        parts[i].pids = NULL;
    }
    free(parts);
}

void bprops_free(bprop *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
}

int bprops_copy(const bprop *src, size_t n, bprop **out, size_t *nout)
{
    *nout = 0;
    *out = n ? calloc(n, sizeof(**out)) : NULL;
    if (n && !*out) return -1;
    for (size_t i = 0; i < n; i++) {
        (*out)[i].key = strdup(src[i].key);
        (*out)[i].value = strdup(src[i].value ? src[i].value : "");
        (*nout)++;
        if (!(*out)[i].key || !(*out)[i].value) return -1;
    }
    return 0;
}

static void topic_free(btopic *t)
{
    if (!t) return;
    bparts_free(t->parts, t->nbase);
    while (t->more) {
        bpart_block *blk = t->more;
        t->more = blk->next;
        bparts_free(blk->parts, blk->n);
        free(blk);
    }
    bprops_free(t->configs, t->nconfigs);
    free(t->configs);
    free(t->name);
    free(t);
}

/* Links a topic whose partitions are open into the registry; takes
 * ownership of parts (also on failure). Loop thread. */
static int topic_link(broker *b, const char *name, int32_t nparts, bpart *parts, const bprop *cfg,
                      size_t ncfg)
{
    btopic *t = calloc(1, sizeof(*t));
    if (!t) {
        bparts_free(parts, nparts);
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    t->parts = parts;
    t->npartitions = nparts;
    t->nbase = nparts;
    t->name = strdup(name);
    if (!t->name || bprops_copy(cfg, ncfg, &t->configs, &t->nconfigs)) goto oom;
    t->next = b->topics;
    b->topics = t;
    return KAFKA_NONE;
oom:
    topic_free(t);
    return KAFKA_UNKNOWN_SERVER_ERROR;
}

static int in_list(const int32_t *v, size_t n, int32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* Opens (creating it if need be) partition i of a topic into *p and
 * rebuilds its producer state from its log. Blocking. */
static tsp_status part_open(broker *b, const char *name, int32_t i, bpart *p, char *err,
                            size_t errlen)
{
    p->index = i;
    tsp_status st = b->pl->partition_open(b->eng, name, i, TSP_PART_CREATE, &p->h, err, errlen);
    if (st == TSP_OK) idempotence_rebuild(b, p);
    return st;
}

/* Opens partitions [0, n) of a topic into parts and rebuilds their producer
 * state. When one fails, the partitions this call created (`undo`: every
 * index not in existing[]) are deleted again, so that a create that fails
 * half way (out of file descriptors, disk full) leaves neither open handles
 * nor directories behind and the next create can succeed.
 * Blocking: a topic-pool worker, or the loop thread before serving. */
static tsp_status open_partitions(broker *b, const char *name, int32_t n, bpart *parts, int undo,
                                  const int32_t *existing, size_t nexisting, char *msg,
                                  size_t msglen)
{
    for (int32_t i = 0; i < n; i++) {
        char err[512] = "";
        tsp_status st = part_open(b, name, i, &parts[i], err, sizeof err);
        if (st == TSP_OK) continue;
        blog_error("opening %s-%d of %d: %s: %s", name, i, n, b->pl->status_name(st), err);
        snprintf(msg, msglen, "opening partition %d of %d: %s", i, n, err);
        int32_t removed = 0;
        /* Newest first, and the one that failed (it may have left a
         * directory) last, once the others gave their descriptors back. */
        for (int32_t m = 0; undo && m <= i; m++) {
            int32_t k = m < i ? i - 1 - m : i;
            if (in_list(existing, nexisting, k)) continue;
            char derr[512] = "";
            tsp_status ds = b->pl->partition_delete(b->eng, name, k, derr, sizeof derr);
            if (ds != TSP_OK && ds != TSP_E_NOT_FOUND)
                blog_error("removing %s-%d of a failed create: %s: %s", name, k,
                           b->pl->status_name(ds), derr);
            else
                removed++;
        }
        if (undo) blog_info("removed %d partition(s) of the failed create of %s", removed, name);
        return st;
    }
    return TSP_OK;
}

/* Startup (before serving): opens a topic of the metadata file. A
 * partition that fails to open here stays offline (h NULL: its requests
 * answer KAFKA_STORAGE_ERROR) instead of keeping the broker from starting,
 * as Kafka takes one bad log dir offline; creates and adoptions, on the
 * topic pool, undo the whole topic instead (open_partitions). open = 0
 * (a cluster's topic): registered without handles, cluster.c opens the
 * replicas this broker holds. */
static int topic_register(broker *b, const char *name, int32_t nparts, const bprop *cfg,
                          size_t ncfg, int open, char *msg, size_t msglen)
{
    if (nparts <= 0) {
        snprintf(msg, msglen, "bad partition count %d", nparts);
        return KAFKA_INVALID_PARTITIONS;
    }
    bpart *parts = calloc((size_t)nparts, sizeof(*parts));
    if (!parts) return KAFKA_UNKNOWN_SERVER_ERROR;
    for (int32_t i = 0; i < nparts; i++) {
        char err[512] = "";
        parts[i].index = i;
        if (!open) continue;
        tsp_status st = part_open(b, name, i, &parts[i], err, sizeof err);
        if (st == TSP_OK) continue;
        blog_error("opening %s-%d: %s: %s; the partition stays offline (its requests answer "
                   "KAFKA_STORAGE_ERROR) until the broker restarts with it repaired",
                   name, i, b->pl->status_name(st), err);
        parts[i].h = NULL;
    }
    return topic_link(b, name, nparts, parts, cfg, ncfg);
}

int topic_register_cluster(broker *b, const char *name, int32_t nparts, const bprop *cfg,
                           size_t ncfg, char *msg, size_t msglen)
{
    return topic_register(b, name, nparts, cfg, ncfg, 0, msg, msglen);
}

int topic_set_configs(broker *b, const char *name, const bprop *cfg, size_t ncfg)
{
    btopic *t = topic_find(b, name);
    bprop *n = NULL;
    size_t nn = 0;
    if (!t) return -1;
    if (bprops_copy(cfg, ncfg, &n, &nn)) {
        bprops_free(n, nn);
        free(n);
        return -1;
    }
    bprops_free(t->configs, t->nconfigs);
    free(t->configs);
    t->configs = n;
    t->nconfigs = nn;
    return 0;
}

/* Deleted topics whose storage is being removed on the topic pool. */
struct reap_job {
    bjob j;
    struct reap_job *next; /* b->reaping */
    broker *b;
    btopic *list;
};
typedef struct reap_job reap_job;

static int is_doomed(broker *b, const char *name)
{
    for (btopic *t = b->doomed; t; t = t->next)
        if (!strcmp(t->name, name)) return 1;
    for (reap_job *r = b->reaping; r; r = r->next)
        for (btopic *t = r->list; t; t = t->next)
            if (!strcmp(t->name, name)) return 1;
    return 0;
}

int topic_is_doomed(broker *b, const char *name) { return is_doomed(b, name); }

btopic *topic_find(broker *b, const char *name)
{
    for (btopic *t = b->topics; t; t = t->next)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

/* ------------------------------------------------ the negative cache */

/* Names the storage did not know, answered without asking it again for
 * TOPIC_NEG_TTL_MS (a topic recovered into the bucket by another process
 * shows up after that). Oldest first: every entry has the same TTL. */
typedef struct topic_neg {
    struct topic_neg *next;
    int64_t expires;
    char name[];
} topic_neg;

static void neg_expire(broker *b)
{
    int64_t now = bclock_ms();
    while (b->neg_head && (b->neg_head->expires <= now || b->nneg > TOPIC_NEG_MAX)) {
        topic_neg *e = b->neg_head;
        b->neg_head = e->next;
        if (!b->neg_head) b->neg_tail = NULL;
        b->nneg--;
        free(e);
    }
}

static int neg_hit(broker *b, const char *name)
{
    neg_expire(b);
    for (topic_neg *e = b->neg_head; e; e = e->next)
        if (!strcmp(e->name, name)) return 1;
    return 0;
}

static void neg_del(broker *b, const char *name)
{
    topic_neg **pp = &b->neg_head, *prev = NULL;
    while (*pp) {
        topic_neg *e = *pp;
        if (!strcmp(e->name, name)) {
            *pp = e->next;
            if (b->neg_tail == e) b->neg_tail = prev;
            b->nneg--;
            free(e);
            return;
        }
        prev = e;
        pp = &e->next;
    }
}

static void neg_add(broker *b, const char *name)
{
    neg_del(b, name);
    size_t n = strlen(name);
    topic_neg *e = malloc(sizeof(*e) + n + 1);
    if (!e) return;
    memcpy(e->name, name, n + 1);
    e->expires = bclock_ms() + TOPIC_NEG_TTL_MS;
    e->next = NULL;
    if (b->neg_tail)
        b->neg_tail->next = e;
    else
        b->neg_head = e;
    b->neg_tail = e;
    b->nneg++;
    neg_expire(b);
}

static void recover_shutdown(broker *b);

void topic_free_all(broker *b)
{
    recover_shutdown(b);
    while (b->neg_head) {
        topic_neg *e = b->neg_head;
        b->neg_head = e->next;
        free(e);
    }
    b->neg_tail = NULL;
    b->nneg = 0;
    while (b->topics) {
        btopic *t = b->topics;
        b->topics = t->next;
        topic_free(t);
    }
}

/* ------------------------------------------ lookup and create jobs */

typedef struct topic_waiter {
    struct topic_waiter *next;
    topic_wait_fn fn;
    void *arg;
} topic_waiter;

/* One job per topic name at a time (b->opening): every request that needs
 * the name while it runs waits for this job instead of starting another. */
typedef struct topic_job topic_job;
struct topic_job {
    bjob j;
    struct topic_job *next;
    broker *b;
    char *name;
    int lookup;          /* ask the storage first; adopt what it knows */
    int explicit_create; /* CreateTopics: a topic the storage knows is TOPIC_ALREADY_EXISTS */
    int32_t create_n;    /* unknown to the storage: create this many (0 = do not) */
    bprop *cfg;
    size_t ncfg;
    /* Results (the worker writes them; `done` reads them). */
    int16_t err; /* KAFKA_NONE: open; UNKNOWN_TOPIC_OR_PARTITION: absent */
    int created;
    char msg[512];
    int32_t nparts;
    bpart *parts;
    topic_waiter *waiters, **wtail;
};

static topic_job *opening_find(broker *b, const char *name)
{
    for (topic_job *j = b->opening; j; j = j->next)
        if (!strcmp(j->name, name)) return j;
    return NULL;
}

static void job_free(topic_job *j)
{
    bprops_free(j->cfg, j->ncfg);
    free(j->cfg);
    bparts_free(j->parts, j->nparts);
    free(j->name);
    free(j);
}

/* Topic-pool worker: every blocking call of a topic's lookup or creation
 * (directory scan, bucket LIST, configuration PUT, partition opens and
 * recovery). Touches only the job and thread-safe plugin entries. */
static void job_run(bjob *jb)
{
    topic_job *j = (topic_job *)jb;
    broker *b = j->b;
    int32_t *existing = NULL;
    size_t nexisting = 0;
    int32_t found = 0;
    j->err = KAFKA_NONE;
    if (j->lookup) {
        char err[512] = "";
        blog_info("looking up topic %s in the storage engine", j->name);
        tsp_status st = b->pl->topic_partitions(b->eng, j->name, &existing, &nexisting, err,
                                                sizeof err);
        if (st != TSP_OK && st != TSP_E_NOT_FOUND) {
            blog_warn("looking up topic %s: %s: %s", j->name, b->pl->status_name(st), err);
            snprintf(j->msg, sizeof j->msg, "looking up topic %s: %s", j->name, err);
            j->err = kafka_error_from_status(st);
            if (j->err == KAFKA_NONE) j->err = KAFKA_UNKNOWN_SERVER_ERROR;
            b->pl->buffer_free(existing);
            return;
        }
        for (size_t i = 0; i < nexisting; i++)
            if (existing[i] + 1 > found) found = existing[i] + 1;
    }
    int32_t n = found;
    if (found && j->explicit_create) {
        snprintf(j->msg, sizeof j->msg, "topic '%s' already exists (in the storage)", j->name);
    } else if (!found) {
        if (!j->create_n) {
            j->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            b->pl->buffer_free(existing);
            return;
        }
        n = j->create_n;
        if (j->ncfg) {
            tsp_property *props = calloc(j->ncfg, sizeof(*props));
            tsp_status st = TSP_E_NOMEM;
            if (props) {
                for (size_t i = 0; i < j->ncfg; i++) {
                    props[i].key = j->cfg[i].key;
                    props[i].value = j->cfg[i].value;
                }
                st = b->pl->topic_set_config(b->eng, j->name, props, j->ncfg, j->msg,
                                             sizeof j->msg);
                free(props);
            }
            if (st != TSP_OK) {
                j->err = st == TSP_E_CONFIG ? KAFKA_INVALID_CONFIG : kafka_error_from_status(st);
                b->pl->buffer_free(existing);
                return;
            }
        }
        j->created = 1;
    }
    j->parts = calloc((size_t)n, sizeof(*j->parts));
    if (!j->parts) {
        j->err = KAFKA_UNKNOWN_SERVER_ERROR;
        b->pl->buffer_free(existing);
        return;
    }
    j->nparts = n;
    tsp_status st = open_partitions(b, j->name, n, j->parts, j->created, existing, nexisting,
                                    j->msg, sizeof j->msg);
    b->pl->buffer_free(existing);
    if (st != TSP_OK) {
        j->err = kafka_error_from_status(st);
        if (j->err == KAFKA_NONE) j->err = KAFKA_UNKNOWN_SERVER_ERROR;
        bparts_free(j->parts, j->nparts);
        j->parts = NULL;
        j->nparts = 0;
    }
}

static void recover_pump(broker *b);

static void job_done(bjob *jb)
{
    topic_job *j = (topic_job *)jb;
    broker *b = j->b;
    for (topic_job **pp = &b->opening; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            b->nopening--;
            break;
        }
    int16_t err = j->err;
    if (err == KAFKA_NONE && j->nparts > 0) {
        err = (int16_t)topic_link(b, j->name, j->nparts, j->parts, j->cfg, j->ncfg);
        j->parts = NULL;
        j->nparts = 0;
        if (err == KAFKA_NONE) {
            neg_del(b, j->name);
            if (j->created)
                blog_info("created topic %s with %d partitions", j->name, b->topics->npartitions);
            else
                blog_info("adopted topic %s (%d partitions) known to the storage engine", j->name,
                          b->topics->npartitions);
            meta_save_topics(b, NULL, NULL);
            if (!j->created && j->explicit_create) err = KAFKA_TOPIC_ALREADY_EXISTS;
        }
    } else if (err == KAFKA_UNKNOWN_TOPIC_OR_PARTITION) {
        neg_add(b, j->name);
    }
    topic_waiter *w = j->waiters;
    while (w) {
        topic_waiter *nx = w->next;
        w->fn(b, w->arg, err, j->msg);
        free(w);
        w = nx;
    }
    job_free(j);
    recover_pump(b); /* a job slot is free */
}

/* Queues fn behind job j. Returns 0, or -1 when out of memory. */
static int job_wait(topic_job *j, topic_wait_fn fn, void *arg)
{
    if (!fn) return 0;
    topic_waiter *w = calloc(1, sizeof(*w));
    if (!w) return -1;
    w->fn = fn;
    w->arg = arg;
    *j->wtail = w;
    j->wtail = &w->next;
    return 0;
}

static topic_job *job_start(broker *b, const char *name, int lookup, int explicit_create,
                            int32_t create_n, const bprop *cfg, size_t ncfg)
{
    /* No pool: shutting down (a waiter of the last jobs asking again). */
    if (b->nopening >= TOPIC_MAX_JOBS || !b->topic_pool) return NULL;
    topic_job *j = calloc(1, sizeof(*j));
    if (!j) return NULL;
    j->j.run = job_run;
    j->j.done = job_done;
    j->b = b;
    j->lookup = lookup;
    j->explicit_create = explicit_create;
    j->create_n = create_n;
    j->wtail = &j->waiters;
    j->name = strdup(name);
    if (!j->name || bprops_copy(cfg, ncfg, &j->cfg, &j->ncfg)) goto oom;
    j->next = b->opening;
    b->opening = j;
    b->nopening++;
    bpool_submit(b->topic_pool, &j->j);
    return j;
oom:
    job_free(j);
    return NULL;
}

int16_t topic_lookup(broker *b, const char *name, int auto_create, topic_wait_fn fn, void *arg,
                     int *waiting)
{
    if (waiting) *waiting = 0;
    if (topic_find(b, name)) return KAFKA_NONE;
    /* A cluster's topics come from etcd (cluster.c), never from a storage
     * lookup: a name the registry lacks does not exist (yet). */
    if (b->cluster_mode) return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (!ts_topic_name_valid(name)) return KAFKA_INVALID_TOPIC_EXCEPTION;
    if (is_doomed(b, name)) return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    topic_job *j = opening_find(b, name);
    if (!j) {
        int absent = neg_hit(b, name);
        if (absent && !auto_create) return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        j = job_start(b, name, !absent, 0, auto_create ? b->num_partitions : 0, NULL, 0);
        if (!j) return KAFKA_LEADER_NOT_AVAILABLE; /* too many at once: retry */
    }
    if (fn && job_wait(j, fn, arg) == 0 && waiting) *waiting = 1;
    return KAFKA_LEADER_NOT_AVAILABLE;
}

btopic *topic_resolve(broker *b, const char *name)
{
    btopic *t = topic_find(b, name);
    if (!t) topic_lookup(b, name, 0, NULL, NULL, NULL);
    return t;
}

bpart *topic_part_at(btopic *t, int32_t i)
{
    if (i < t->nbase) return &t->parts[i];
    for (bpart_block *blk = t->more; blk; blk = blk->next)
        if (i >= blk->first && i < blk->first + blk->n) return &blk->parts[i - blk->first];
    return NULL;
}

bpart *topic_part_of(btopic *t, int32_t partition, int16_t *err)
{
    bpart *p = t && partition >= 0 && partition < t->npartitions ? topic_part_at(t, partition)
                                                                 : NULL;
    if (!p) {
        *err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (!p->h) { /* offline since startup (topic_register) */
        *err = KAFKA_KAFKA_STORAGE_ERROR;
        return NULL;
    }
    *err = KAFKA_NONE;
    return p;
}

/* ------------------------------------ remote.log.recover.topics */

#define RECOVER_PAGE 1024

/* One page of the store's topics (listed on the topic pool), then one
 * lookup job per topic (the same adoption as a first use: partitions
 * counted by the plugin, opened and recovered, the list saved), started as
 * job slots free up; then the next page. */
struct topic_recover {
    bjob j;
    broker *b;
    char after[256];
    tsp_topic_info *rows;
    size_t nrows, row_size, next;
    int listing; /* the page is being listed */
    size_t looked_up;
    tsp_status st;
    char msg[512];
};

static void recover_run(bjob *jb)
{
    struct topic_recover *r = (struct topic_recover *)jb;
    broker *b = r->b;
    r->rows = NULL;
    r->nrows = r->next = 0;
    r->st = b->pl->topics_list(b->eng, r->after, RECOVER_PAGE, &r->rows, &r->nrows, &r->row_size,
                               r->msg, sizeof r->msg);
}

static void recover_end(broker *b, const char *why)
{
    struct topic_recover *r = b->recovering;
    blog_info("remote.log.recover.topics: %s; %zu topic(s) of the store looked up", why,
              r->looked_up);
    b->pl->buffer_free(r->rows);
    free(r);
    b->recovering = NULL;
}

/* A page listed but never pumped (the pools are gone): freed here. */
static void recover_shutdown(broker *b)
{
    if (b->recovering && !b->recovering->listing) recover_end(b, "stopped by the shutdown");
}

static void recover_done(bjob *jb)
{
    struct topic_recover *r = (struct topic_recover *)jb;
    broker *b = r->b;
    r->listing = 0;
    if (r->st != TSP_OK) {
        blog_error("remote.log.recover.topics: listing the store's topics: %s: %s",
                   b->pl->status_name(r->st), r->msg);
        recover_end(b, "stopped");
        return;
    }
    recover_pump(b);
}

static const tsp_topic_info *recover_row(struct topic_recover *r, size_t i)
{
    return (const tsp_topic_info *)(const void *)((const char *)r->rows + i * r->row_size);
}

static void recover_pump(broker *b)
{
    struct topic_recover *r = b->recovering;
    if (!r || r->listing) return;
    if (!b->topic_pool) {
        recover_end(b, "stopped by the shutdown");
        return;
    }
    for (; r->next < r->nrows; r->next++) {
        const char *name = recover_row(r, r->next)->name;
        if (topic_find(b, name) || is_doomed(b, name) || opening_find(b, name)) continue;
        /* A quarter of the job slots at most: requests naming topics keep
         * theirs. No slot: the next job_done pumps again. */
        if (b->nopening >= TOPIC_MAX_JOBS / 4 || !job_start(b, name, 1, 0, 0, NULL, 0)) return;
        r->looked_up++;
    }
    if (r->nrows < RECOVER_PAGE) {
        recover_end(b, "done");
        return;
    }
    snprintf(r->after, sizeof r->after, "%s", recover_row(r, r->nrows - 1)->name);
    b->pl->buffer_free(r->rows);
    r->rows = NULL;
    r->nrows = 0;
    r->listing = 1;
    bpool_submit(b->topic_pool, &r->j);
}

void topic_recover_start(broker *b)
{
    if (!TSP_HAS(b->pl, topics_list)) {
        blog_warn("remote.log.recover.topics=true, but the plugin (ABI %u.%u) cannot list its "
                  "topics (minor 4): topics are adopted on first use only",
                  b->pl->abi_major, b->pl->abi_minor);
        return;
    }
    struct topic_recover *r = calloc(1, sizeof(*r));
    if (!r) return;
    r->j.run = recover_run;
    r->j.done = recover_done;
    r->b = b;
    r->listing = 1;
    b->recovering = r;
    blog_info("remote.log.recover.topics: listing the store's topics");
    bpool_submit(b->topic_pool, &r->j);
}

/* ---------------------------------------------- CreatePartitions */

tsp_status topic_parts_open(broker *b, const char *name, int32_t first, int32_t n, bpart **out,
                            char *msg, size_t msglen)
{
    bpart *parts = calloc((size_t)n, sizeof(*parts));
    if (!parts) return TSP_E_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        char err[512] = "";
        tsp_status st = part_open(b, name, first + i, &parts[i], err, sizeof err);
        if (st == TSP_OK) continue;
        snprintf(msg, msglen, "opening partition %d: %s", first + i, err);
        blog_error("adding partition %s-%d: %s: %s", name, first + i, b->pl->status_name(st),
                   err);
        for (int32_t k = i; k >= 0; k--) { /* newest first; none of them existed */
            char derr[512] = "";
            tsp_status ds = b->pl->partition_delete(b->eng, name, first + k, derr, sizeof derr);
            if (ds != TSP_OK && ds != TSP_E_NOT_FOUND)
                blog_error("removing %s-%d of a failed CreatePartitions: %s", name, first + k,
                           derr);
        }
        bparts_free(parts, i);
        return st;
    }
    *out = parts;
    return TSP_OK;
}

/* The topic (registered, or deleted and waiting to be reaped) named. */
static btopic *topic_find_any(broker *b, const char *name)
{
    btopic *t = topic_find(b, name);
    for (btopic *d = b->doomed; !t && d; d = d->next)
        if (!strcmp(d->name, name)) t = d;
    return t;
}

int topic_grow(broker *b, const char *name, int32_t first, int32_t n, bpart *parts)
{
    btopic *t = topic_find_any(b, name);
    bpart_block *blk = t && t->npartitions == first ? calloc(1, sizeof(*blk)) : NULL;
    if (!blk) { /* reaped meanwhile (or out of memory): nothing may use them */
        bparts_free(parts, n);
        return -1;
    }
    blk->first = first;
    blk->n = n;
    blk->parts = parts;
    bpart_block **pp = &t->more;
    while (*pp) pp = &(*pp)->next;
    *pp = blk;
    t->npartitions = first + n;
    if (t == topic_find(b, name)) meta_save_topics(b, NULL, NULL);
    return 0;
}

bpart *topic_part(broker *b, const char *topic, int32_t partition, int16_t *err)
{
    return topic_part_of(topic_resolve(b, topic), partition, err);
}

int topic_create(broker *b, const char *name, int32_t nparts, const bprop *cfg, size_t ncfg,
                 int validate_only, topic_wait_fn fn, void *arg, int *waiting, char *msg,
                 size_t msglen)
{
    msg[0] = 0;
    *waiting = 0;
    if (!ts_topic_name_valid(name)) {
        snprintf(msg, msglen, "topic name '%s' must be 1..249 chars of [A-Za-z0-9._-]", name);
        return KAFKA_INVALID_TOPIC_EXCEPTION;
    }
    if (topic_find(b, name)) {
        snprintf(msg, msglen, "topic '%s' already exists", name);
        return KAFKA_TOPIC_ALREADY_EXISTS;
    }
    if (is_doomed(b, name)) {
        snprintf(msg, msglen, "topic '%s' is still being deleted; retry shortly", name);
        return KAFKA_TOPIC_ALREADY_EXISTS;
    }
    if (nparts == -1) nparts = b->num_partitions;
    if (nparts <= 0 || nparts > 100000) {
        snprintf(msg, msglen, "number of partitions %d must be 1..100000", nparts);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (validate_only) return KAFKA_NONE;
    topic_job *j = opening_find(b, name);
    if (j) {
        /* Someone's lookup or create of this name is running: wait for it,
         * then the caller asks again (it will exist or be known absent). */
        if (job_wait(j, fn, arg) != 0) return KAFKA_UNKNOWN_SERVER_ERROR;
        *waiting = TOPIC_WAIT_OTHER;
        return KAFKA_NONE;
    }
    /* Asks the storage even when the negative cache says absent: a create
     * must not overwrite a topic recovered into the bucket meanwhile. */
    j = job_start(b, name, 1, 1, nparts, cfg, ncfg);
    if (!j) {
        snprintf(msg, msglen, "too many topic operations in progress; retry shortly");
        return KAFKA_REQUEST_TIMED_OUT;
    }
    if (job_wait(j, fn, arg) != 0) return KAFKA_UNKNOWN_SERVER_ERROR;
    *waiting = TOPIC_WAIT_OWN;
    return KAFKA_NONE;
}

int topic_delete(broker *b, const char *name, char *msg, size_t msglen)
{
    msg[0] = 0;
    btopic **pp = &b->topics, *t = NULL;
    while (*pp) {
        if (!strcmp((*pp)->name, name)) {
            t = *pp;
            break;
        }
        pp = &(*pp)->next;
    }
    if (!t) {
        snprintf(msg, msglen, "topic '%s' does not exist", name);
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    /* Parked fetches may hold partition pointers of this topic; jobs in the
     * pools may hold its plugin handles: the plugin delete waits for them. */
    fetch_abort_all(b);
    *pp = t->next;
    t->next = b->doomed;
    b->doomed = t;
    blog_info("deleting topic %s", name);
    meta_save_topics(b, NULL, NULL);
    if (b->jobs_inflight == 0) topic_reap_doomed(b);
    return KAFKA_NONE;
}

void topic_doom_opened(broker *b, const char *name, bpart *parts, int32_t n)
{
    btopic *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        bparts_free(parts, n);
        blog_error("topic %s: out of memory: replicas opened after its delete stay until the "
                   "next start", name);
        return;
    }
    t->parts = parts;
    t->nbase = t->npartitions = n;
    t->next = b->doomed;
    b->doomed = t;
    if (b->jobs_inflight == 0) topic_reap_doomed(b);
}

/* Topic-pool worker, a cluster's reap: local leftovers of the topic (a replica
 * held here whose open failed has no handle, so partition_delete skipped it)
 * go too, locally only, then the topic id record (topic_id.h). While anything
 * is left (a failed delete, a partition still open in the storage) the record
 * stays: a re-create of the name then resets the rest, a start sweeps it. */
static void topic_forget_id(broker *b, const char *name, int failed)
{
    char dir[1100], err[1400] = "";
    int32_t n = 0;
    snprintf(dir, sizeof dir, "%s/topic-ids", b->meta_dir);
    if (failed || !TSP_HAS(b->pl, topic_delete_local) || !b->pl->topic_delete_local) return;
    tsp_status st = b->pl->topic_delete_local(b->eng, name, &n, err, sizeof err);
    if (st != TSP_OK) {
        blog_info("topic %s: its topic id record stays until what is left here goes: %s", name,
                  err);
        return;
    }
    if (n) blog_info("topic %s: deleted %d more local partition director%s", name, n,
                     n == 1 ? "y" : "ies");
    if (topic_id_remove(dir, name, err, sizeof err) != 0)
        blog_error("deleting topic %s: %s", name, err);
}

/* Topic-pool worker: partition_delete removes local files and lists and
 * deletes the bucket's objects. Until `done`, the names stay reserved
 * (is_doomed), so a create of the same name waits for the old data to go. */
static void reap_run(bjob *jb)
{
    reap_job *r = (reap_job *)jb;
    broker *b = r->b;
    for (btopic *t = r->list; t; t = t->next) {
        int failed = 0;
        for (int32_t i = 0; i < t->npartitions; i++) {
            char msg[512] = "";
            /* A cluster's broker deletes the replicas it holds, nothing else
             * (a grown topic's later partitions are in t->more). */
            const bpart *p = topic_part_at(t, i);
            if (b->cluster_mode && (!p || !p->h)) continue;
            tsp_status st = b->pl->partition_delete(b->eng, t->name, i, msg, sizeof msg);
            if (st != TSP_OK && st != TSP_E_NOT_FOUND) {
                blog_error("deleting %s-%d: %s: %s", t->name, i, b->pl->status_name(st), msg);
                failed = 1;
            }
        }
        if (b->cluster_mode) topic_forget_id(b, t->name, failed);
    }
}

static void reap_free(reap_job *r)
{
    while (r->list) {
        btopic *t = r->list;
        r->list = t->next;
        blog_info("deleted topic %s", t->name);
        topic_free(t);
    }
    free(r);
}

static void reap_done(bjob *jb)
{
    reap_job *r = (reap_job *)jb;
    for (reap_job **pp = &r->b->reaping; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    reap_free(r);
}

void topic_reap_doomed(broker *b)
{
    if (!b->doomed) return;
    reap_job *r = calloc(1, sizeof(*r));
    if (!r) return; /* retried after the next job */
    r->j.run = reap_run;
    r->j.done = reap_done;
    r->b = b;
    r->list = b->doomed;
    b->doomed = NULL;
    if (!b->topic_pool) { /* shutting down: the pools are gone */
        reap_run(&r->j);
        reap_free(r);
        return;
    }
    r->next = b->reaping;
    b->reaping = r;
    bpool_submit(b->topic_pool, &r->j);
}
/* ------------------------------------------------------- metadata files */

/*
 * <log.dirs>/.broker/ holds three files, each written only by the meta
 * pool's single thread (so writes land in submission order):
 *
 *  topics        one topic per line: name TAB partitions (TAB hex(key)=hex(value))*
 *                Names are validated ([A-Za-z0-9._-]), configs hex, so no field
 *                can hold a TAB or newline. Rewritten whole (tmp + fsync +
 *                rename + fsync dir) on every create/delete: it is small and
 *                changes rarely.
 *  offsets       an append-only log of commits, one record per committed
 *                partition (byte format in meta_log.h: hex fields and a
 *                CRC-32, so a client's bytes can never end a record or start
 *                another one). Load replays records in order (a later one
 *                wins); a record that does not parse or check (the torn tail
 *                of a crash during an append) is skipped. An OffsetCommit appends its records and
 *                fsyncs; when the log holds more than OFFSETS_COMPACT_FACTOR
 *                times the live offsets (+ OFFSETS_COMPACT_SLACK), the next
 *                commit rewrites it whole instead (tmp + rename), so a commit
 *                costs O(its size) amortized and the file stays within a
 *                constant factor of the live set. The first save after a start
 *                and any save after a failed one is such a rewrite, so a torn
 *                tail never ends up in the middle of the log. OffsetDelete and
 *                DeleteGroups append delete records (one per offset removed);
 *                a rewrite holds only live offsets, so no delete record. Files of older
 *                versions (lines "hex(group) TAB topic TAB partition TAB
 *                offset TAB hex(metadata)") are still read.
 *  producer-ids  one decimal and a newline: the end of the newest reserved
 *                block of producer ids (handlers.c); replaced atomically.
 *
 * A save whose data would exceed its hard maximum fails: the old file stays
 * and `done` gets ok = 0 (an OffsetCommit then answers an error).
 */

#define META_TOPICS_MAX (256u << 20)
#define META_OFFSETS_MAX (1u << 30)
#define OFFSETS_COMPACT_FACTOR 4
#define OFFSETS_COMPACT_SLACK 1024
/* Producer ids of older versions came from the clock, below 10^14: a data
 * dir without a counter starts above them. */
#define PRODUCER_ID_FIRST 1000000000000000LL

typedef struct meta_job {
    bjob j;
    broker *b;
    char path[1100];
    char *data;
    size_t len;
    int append; /* append data (then fsync) instead of replacing the file */
    int offsets;
    int ok;
    char err[1400];
    meta_done_fn done;
    void *arg;
} meta_job;

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* Meta pool worker: appends to the log; on failure cuts the file back to
 * where it was, so no partial record stays behind. */
static void meta_append(meta_job *m)
{
    int fd = open(m->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(m->err, sizeof m->err, "open %s: %s", m->path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(m->err, sizeof m->err, "stat %s: %s", m->path, strerror(errno));
        close(fd);
        return;
    }
    int rc = st.st_size == 0 ? write_all(fd, META_OFFSETS_HEADER, strlen(META_OFFSETS_HEADER)) : 0;
    if (rc == 0) rc = write_all(fd, m->data, m->len);
    if (rc == 0) rc = fsync(fd);
    if (rc != 0) {
        int e = errno;
        if (ftruncate(fd, st.st_size) == 0) fsync(fd);
        snprintf(m->err, sizeof m->err, "append to %s: %s", m->path, strerror(e));
        close(fd);
        return;
    }
    close(fd);
    if (st.st_size == 0) fsync_dir(m->b->meta_dir);
    m->ok = 1;
}

/* Meta pool worker: durable replace of one file. */
static void meta_run(bjob *j)
{
    meta_job *m = (meta_job *)j;
    m->ok = 0;
    if (m->append) {
        meta_append(m);
        return;
    }
    char tmp[1110];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(m->err, sizeof m->err, "open %s: %s", tmp, strerror(errno));
        return;
    }
    if (write_all(fd, m->data, m->len) != 0) {
        snprintf(m->err, sizeof m->err, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, m->path) != 0) {
        snprintf(m->err, sizeof m->err, "fsync/rename %s: %s", m->path, strerror(errno));
        unlink(tmp);
        return;
    }
    fsync_dir(m->b->meta_dir);
    m->ok = 1;
}

static void meta_done(bjob *j)
{
    meta_job *m = (meta_job *)j;
    if (!m->ok) blog_error("saving broker metadata: %s", m->err);
    /* Memory may now be ahead of the file: the next save rewrites it whole. */
    if (!m->ok && m->offsets) m->b->offsets_rewrite = 1;
    if (m->done) m->done(m->b, m->arg, m->ok);
    free(m->data);
    free(m);
}

/* Takes the writer's bytes; a writer that hit its cap fails the save. */
static void meta_submit(broker *b, const char *file, kw *w, int append, meta_done_fn done,
                        void *arg)
{
    int offsets = !strcmp(file, "offsets");
    if (w->err) {
        blog_error("saving broker metadata: %s/%s would exceed %zu bytes; keeping the previous "
                   "file",
                   b->meta_dir, file, w->max);
        kw_free(w);
        if (offsets) b->offsets_rewrite = 1;
        if (done) done(b, arg, 0);
        return;
    }
    meta_job *m = calloc(1, sizeof(*m));
    if (!m) {
        kw_free(w);
        if (offsets) b->offsets_rewrite = 1;
        if (done) done(b, arg, 0);
        return;
    }
    m->j.run = meta_run;
    m->j.done = meta_done;
    m->b = b;
    snprintf(m->path, sizeof m->path, "%s/%s", b->meta_dir, file);
    m->data = (char *)w->d;
    m->len = w->len;
    m->append = append;
    m->offsets = offsets;
    m->done = done;
    m->arg = arg;
    w->d = NULL;
    bpool_submit(b->meta_pool, &m->j);
}

static void hex(kw *w, const char *s) { meta_hex(w, s); }

/* For the topics file and offsets files of older versions. */
static char *unhex(const char *s) { return meta_unhex(s, strlen(s)); }

static void kw_text(kw *w, const char *s) { kw_raw(w, s, strlen(s)); }

void meta_save_topics(broker *b, meta_done_fn done, void *arg)
{
    if (b->cluster_mode) { /* the cluster's topic list is etcd's */
        if (done) done(b, arg, 1);
        return;
    }
    kw w;
    kw_init(&w, META_TOPICS_MAX);
    for (btopic *t = b->topics; t; t = t->next) {
        char num[32];
        snprintf(num, sizeof num, "\t%d", t->npartitions);
        kw_text(&w, t->name);
        kw_text(&w, num);
        for (size_t i = 0; i < t->nconfigs; i++) {
            kw_text(&w, "\t");
            hex(&w, t->configs[i].key);
            kw_text(&w, "=");
            hex(&w, t->configs[i].value);
        }
        kw_text(&w, "\n");
    }
    meta_submit(b, "topics", &w, 0, done, arg);
}

/* The whole live set: replaces the log. */
static void offsets_rewrite(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, META_OFFSETS_MAX);
    kw_text(&w, META_OFFSETS_HEADER);
    size_t n = 0;
    for (bgroup *g = group_first(b); g; g = group_next(g))
        for (committed *c = group_offsets(g); c; c = c->next, n++)
            meta_log_encode(&w, group_id(g), c->topic, c->partition, c->offset, c->metadata);
    b->offsets_live = n;
    b->offsets_logged = n;
    b->offsets_rewrite = 0;
    meta_submit(b, "offsets", &w, 0, done, arg);
}

void meta_log_offsets(broker *b, const meta_commit *c, size_t n, meta_done_fn done, void *arg)
{
    if (b->offsets_rewrite ||
        b->offsets_logged + n > OFFSETS_COMPACT_FACTOR * b->offsets_live + OFFSETS_COMPACT_SLACK) {
        offsets_rewrite(b, done, arg);
        return;
    }
    kw w;
    kw_init(&w, META_OFFSETS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (c[i].deleted)
            meta_log_encode_delete(&w, c[i].group, c[i].topic, c[i].partition);
        else
            meta_log_encode(&w, c[i].group, c[i].topic, c[i].partition, c[i].offset,
                            c[i].metadata);
    }
    b->offsets_logged += n;
    meta_submit(b, "offsets", &w, 1, done, arg);
}

void meta_save_producer_ids(broker *b, int64_t end, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, 64);
    char num[32];
    snprintf(num, sizeof num, "%lld\n", (long long)end);
    kw_text(&w, num);
    meta_submit(b, "producer-ids", &w, 0, done, arg);
}

void meta_save_dynamic_configs(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, 1u << 20);
    kw_text(&w, "# dynamic broker configs (AlterConfigs), written by tierbroker\n");
    for (size_t i = 0; i < b->dyn.n; i++) {
        kw_text(&w, b->dyn.items[i].key);
        kw_text(&w, "=");
        kw_text(&w, b->dyn.items[i].value);
        kw_text(&w, "\n");
    }
    meta_submit(b, "dynamic-configs", &w, 0, done, arg);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    kw w;
    kw_init(&w, (size_t)META_OFFSETS_MAX + 1);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kw_raw(&w, buf, n);
    fclose(f);
    if (len) *len = w.len;
    kw_raw(&w, "", 1);
    if (w.err) {
        kw_free(&w);
        return NULL;
    }
    return (char *)w.d;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || !(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'))) return -1;
    *out = v;
    return 0;
}

/* A delete record: the offset goes, and the group with its last offset
 * (at startup a group has no members: what is left would be a deleted
 * group listed again). */
static void offsets_apply_delete(broker *b, const meta_log_rec *r)
{
    bgroup *g = group_find(b, r->group, 0);
    if (!g) return;
    if (group_delete_offset(g, r->topic, r->partition)) b->offsets_live--;
    if (!group_offsets(g)) group_remove(b, g);
}

/* One record of the log (without its newline); 0 when applied. */
static int offsets_apply_record(broker *b, const char *line, size_t len)
{
    meta_log_rec r;
    if (meta_log_decode(line, len, &r) != 0) return -1;
    if (r.deleted) {
        offsets_apply_delete(b, &r);
        meta_log_rec_free(&r);
        return 0;
    }
    bgroup *g = r.group[0] && ts_topic_name_valid(r.topic) ? group_find(b, r.group, 1) : NULL;
    int rc = g ? group_set_offset(g, r.topic, r.partition, r.offset,
                                  r.metadata[0] ? r.metadata : NULL)
               : -1;
    if (rc > 0) b->offsets_live++;
    meta_log_rec_free(&r);
    return rc < 0 ? -1 : 0;
}

/* Offsets files written before the log format. */
static size_t offsets_load_v0(broker *b, char *data)
{
    size_t count = 0;
    char *save_line = NULL;
    for (char *line = strtok_r(data, "\n", &save_line); line;
         line = strtok_r(NULL, "\n", &save_line)) {
        char *f[5] = {0};
        char *save = NULL;
        f[0] = strtok_r(line, "\t", &save);
        for (int i = 1; i < 5; i++) f[i] = strtok_r(NULL, "\t", &save);
        if (!f[0] || !f[1] || !f[2] || !f[3] || !ts_topic_name_valid(f[1])) continue;
        char *gid = unhex(f[0]);
        char *md = unhex(f[4] ? f[4] : "");
        bgroup *g = gid && gid[0] ? group_find(b, gid, 1) : NULL;
        int rc = g ? group_set_offset(g, f[1], atoi(f[2]), strtoll(f[3], NULL, 10),
                                      md && md[0] ? md : NULL)
                   : -1;
        if (rc > 0) b->offsets_live++;
        free(gid);
        free(md);
        count++;
    }
    return count;
}

/* The topics file: one line a topic, name, partition count and its
 * hex-encoded configuration overrides, tab-separated. */
static int meta_load_topics(broker *b, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/topics", b->meta_dir);
    char *data = slurp(path, NULL);
    for (char *line = data ? strtok(data, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *save = NULL;
        char *name = strtok_r(line, "\t", &save);
        char *np = strtok_r(NULL, "\t", &save);
        if (!name || !np) continue;
        bprop cfg[64];
        size_t ncfg = 0;
        char *kv;
        while ((kv = strtok_r(NULL, "\t", &save)) && ncfg < 64) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            cfg[ncfg].key = unhex(kv);
            cfg[ncfg].value = unhex(eq + 1);
            if (!cfg[ncfg].key || !cfg[ncfg].value) {
                free(cfg[ncfg].key);
                free(cfg[ncfg].value);
                continue;
            }
            ncfg++;
        }
        char msg[512] = "";
        int rc = topic_register(b, name, atoi(np), cfg, ncfg, 1, msg, sizeof msg);
        bprops_free(cfg, ncfg);
        if (rc != KAFKA_NONE) {
            snprintf(err, errlen, "opening topic %s from %s: %s", name, path, msg);
            free(data);
            return -1;
        }
    }
    free(data);
    return 0;
}

/* The committed-offsets log (or its older whole-file form). */
static int meta_load_offsets(broker *b, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/offsets", b->meta_dir);
    size_t len = 0, count = 0, bad = 0;
    char *data = slurp(path, &len);
    if (!data && access(path, F_OK) == 0) {
        snprintf(err, errlen, "cannot read %s (more than %u bytes?)", path, META_OFFSETS_MAX);
        return -1;
    }
    if (data && !strncmp(data, META_OFFSETS_HEADER, strlen(META_OFFSETS_HEADER))) {
        const char *p = data + strlen(META_OFFSETS_HEADER), *end = data + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) { /* torn tail: the append that was cut never answered */
                bad++;
                break;
            }
            if (offsets_apply_record(b, p, (size_t)(nl - p)) == 0)
                count++;
            else
                bad++;
            p = nl + 1;
        }
    } else if (data) {
        count = offsets_load_v0(b, data);
    }
    free(data);
    if (count) blog_info("loaded %zu committed offsets", count);
    if (bad) blog_warn("%s: skipped %zu damaged record(s) (a torn tail after a crash)", path, bad);
    /* The first save rewrites the log whole: drops a torn tail, converts an
     * older file. */
    b->offsets_logged = count + bad;
    b->offsets_rewrite = 1;
    return 0;
}

/* The producer-id counter: one decimal, above every id handed out. */
static int meta_load_producer_ids(broker *b, char *err, size_t errlen)
{
    char path[1200];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/producer-ids", b->meta_dir);
    char *data = slurp(path, &len);
    b->next_producer_id = PRODUCER_ID_FIRST;
    if (data) {
        int64_t v;
        size_t n = len && data[len - 1] == '\n' ? len - 1 : len;
        if (parse_i64(data, n, &v) || v < 0) {
            snprintf(err, errlen,
                     "%s does not hold a producer id counter; it must be one decimal above "
                     "every producer id handed out (restore it from a backup)",
                     path);
            free(data);
            return -1;
        }
        b->next_producer_id = v;
        free(data);
    } else if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    b->producer_id_limit = b->next_producer_id; /* nothing of a new block handed out yet */
    return 0;
}

/* Startup, loop thread (before serving). */
int meta_load(broker *b, char *err, size_t errlen)
{
    if (!b->cluster_mode && meta_load_topics(b, err, errlen)) return -1;
    /* A cluster's committed offsets are etcd's (group_cluster.c). */
    if (!b->cluster_mode && meta_load_offsets(b, err, errlen)) return -1;
    return meta_load_producer_ids(b, err, errlen);
}
