/*
 * cluster_internal.h — what cluster.c (the session, the view), controller.c
 * (the controller's duties) and cluster_admin.c (Metadata, CreateTopics,
 * DeleteTopics in a cluster) share. Not for the rest of the broker: it uses
 * cluster.h.
 *
 * Threads: fields are grouped by the thread that owns them. The loop owns
 * the view; the cluster thread owns the session (lease, keeper, watch) and
 * the controller state; the atomics are read across.
 */
#ifndef TS_BROKER_CLUSTER_INTERNAL_H
#define TS_BROKER_CLUSTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker.h"
#include "etcd/etcd.h"
#include "placement.h"

#define CLUSTER_OFFSETS_TOPIC "__consumer_offsets"

/* One topic as the loop knows it from topics/<t> and partitions/<t>/<p>. */
typedef struct ctopic {
    struct ctopic *next;
    char *name;
    char id[32];
    int32_t npartitions;
    cl_pstate *ps;   /* npartitions: replicas from the assignment, the rest from
                        partitions/<t>/<p> (version 0: not written yet) */
    bprop *configs;  /* as in etcd */
    size_t nconfigs;
    int32_t nopened; /* partitions [0, nopened) had their local replicas opened */
    int opening;     /* an open job runs (cluster.c) */
    int cfg_busy, cfg_dirty; /* a configs apply job runs; configs changed meanwhile */
    int cfg_applied; /* the configs were applied to the storage once */
    int seen;        /* reset: present in the snapshot */
    int64_t create_revision; /* of topics/<t> (the controller's compares) */
    int64_t mod_revision;    /* of topics/<t> as last applied */
} ctopic;

/* One key of a snapshot or a watch event, below the cluster prefix. */
typedef struct cl_kv {
    int del;
    char *key;   /* e.g. "brokers/1", "partitions/t/0" */
    char *value; /* NUL-terminated JSON; NULL for deletes */
    int64_t mod_revision, create_revision;
} cl_kv;

struct cl_wait; /* cluster_admin.c: CreateTopics waiting for partition states */

#define CLUSTER_DELETE_MAX_PENDING 256
#define CLUSTER_DELETE_RETRY_MS 1000 /* CreateTopics' ThrottleTimeMs while a name is marked */

/* A topic delete still in progress, deletes/<t> (cluster_delete.c): the
 * deleted incarnation's id and partition count, and the replicas that have
 * not yet confirmed that their local delete ended. */
typedef struct cdelete {
    struct cdelete *next;
    char *name;
    char id[32];
    int32_t npartitions;
    int32_t npending;
    int32_t pending[CLUSTER_DELETE_MAX_PENDING];
    int64_t mod_revision, create_revision;
    int seen;             /* reset: present in the snapshot */
    int acking;           /* this broker's confirmation is being written */
    int64_t ack_after_ms; /* a failed confirmation is tried again then */
} cdelete;

struct cl_purge; /* cluster_delete.c: the controller's bucket deletes in flight */

struct bcluster {
    broker *b;
    ts_etcd *etcd;
    char prefix[300]; /* "/<cluster.name>/" */
    size_t prefix_len;
    int64_t session_ms, ttl_s, store_timeout_ms;
    char self_json[4096]; /* brokers/<id> value */
    cl_interbroker ib;     /* inter-broker listener and credentials (immutable) */
    char cluster_id[32];
    int unclean, auto_rebalance;
    int64_t rebalance_interval_ms;
    int32_t offsets_partitions;
    int32_t default_rf;

    /* Cluster thread (mu/cv wake it). */
    pthread_t thr;
    int thr_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, wake;
    int watch_broken; /* set by the watch thread: compacted or failed */
    ts_etcd_keeper *keeper;
    ts_etcd_watch *watch;
    int64_t prev_lease;      /* the lease lost last (etcd may still hold it) */
    int ctl_dirty;           /* the watch saw changes: the controller looks again */
    int64_t ctl_next_ms;     /* else it looks again at this time */
    int64_t ctl_epoch;       /* > 0: this broker is the controller at that epoch */
    int64_t ctl_since_ms;
    int64_t last_balance_ms;

    /* Read by the loop, written by the cluster thread. */
    _Atomic int64_t lease;         /* 0: not registered */
    _Atomic int lease_lost;        /* the keeper reported the lease gone */
    _Atomic int64_t renewed_at_ms; /* when a keepalive was last seen answered */

    /* The loop's view. */
    cl_broker *brokers; /* ascending id */
    size_t nbrokers;
    int32_t controller;
    ctopic *topics;
    int registered;          /* the loop's idea: registered and lease fresh */
    int lost;                /* the lease was lost: only the next snapshot (read
                                after registering again) makes it registered */
    int64_t view_revision;   /* the last snapshot's revision: watch events at or
                                below it (a watch catching up after a newer
                                snapshot) are dropped; the watch itself delivers
                                each event once, in order */
    int64_t applied_revision; /* the newest revision applied (snapshot or event): a
                                 snapshot read before it (posted after the watch
                                 delivered newer events) is older than the view */
    int swept;               /* the first full view started the sweep of topic ids */
    struct sweep_job *sweep; /* the sweep in flight (opens of names it may touch wait) */
    struct open_job *opens;  /* replica opens running on the topic pool */
    bpool *pool;             /* etcd writes asked by the loop */
    struct cl_wait *waits;   /* CreateTopics waiting for their states */
    struct cl_auto *autos;   /* names being auto-created */
    cdelete *deletes;        /* deletes/<t> markers as in etcd */
    struct cl_purge *purges; /* the controller's bucket deletes, running or backing off */
};

/* cluster.c */
ctopic *cluster_topic(const bcluster *c, const char *name);
/* Whether an open of the topic's replicas runs (loop): a topic deleted
 * meanwhile may still get handles of its old incarnation until it ends. */
int cluster_opening(const bcluster *c, const char *name);
int cluster_key(const bcluster *c, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cluster_live(const bcluster *c, int32_t id);
/* Parses a partitions/<t>/<p> value into st (leader, epoch, isr,
 * controller_epoch); -1 when it is not one. */
int cluster_parse_pstate(const char *json, cl_pstate *st);
/* The JSON of a partition state (malloc'd). */
char *cluster_pstate_json(const cl_pstate *st);
/* Parses a topics/<t> value: id, per-partition replica lists, configs. */
int cluster_parse_topic(const char *json, ctopic *t);
void cluster_topic_free(ctopic *t);
/* base64url of n bytes (no padding) into out. */
void cluster_b64url(const uint8_t *in, size_t n, char *out);
int cluster_parse_broker(const char *json, cl_broker *out);
/* A JSON array of broker ids into out (at most max); -1 when a is not one. */
struct cJSON;
int cluster_json_ids(const struct cJSON *a, int32_t *out, int32_t max);
/* A new topic id: 16 random bytes, base64url (22 chars). */
void cluster_new_topic_id(char *out);
/* The topics/<t> value (malloc'd): id, assignment (nparts lists of rf ids),
 * configs. */
char *cluster_topic_json(const char *id, int32_t nparts, int32_t rf, const int32_t *assign,
                         const bprop *cfg, size_t ncfg);


/* cluster_delete.c: durable topic deletes (deletes/<t>). */
/* The marker's JSON (malloc'd) and its parser (-1: not a marker). Pure. */
char *cluster_delete_json(const char *id, int32_t nparts, const int32_t *pending, int32_t n);
int cluster_parse_delete(const char *json, cdelete *d);
void cluster_delete_free(cdelete *d);
/* Loop: the view's markers (apply_kv, the snapshot's begin and end). */
cdelete *cluster_delete_find(const bcluster *c, const char *name);
void cluster_delete_apply(broker *b, const cl_kv *kv, const char *name);
void cluster_deletes_snapshot_begin(bcluster *c);
void cluster_deletes_snapshot_end(bcluster *c);
void cluster_deletes_free(bcluster *c);
/* Loop, on every tick and view change: confirms each marker naming this
 * broker once its local delete of the topic ended. */
void cluster_deletes_tick(broker *b);
/* CreateTopics' message for a name marked for deletion (cluster.h has
 * cluster_delete_pending). */
void cluster_delete_refusal_msg(const char *name, char *msg, size_t msglen);
/* Cluster pool (DeleteTopics): topics/<t> and partitions/<t>/ deleted and
 * deletes/<t> written in one txn; id = the deleted incarnation's. */
int16_t cluster_delete_write(bcluster *c, const char *name, char *id, char *msg, size_t msglen);
/* Cluster thread (the controller): a marker no live broker still waits on;
 * the loop starts its bucket delete unless one runs (or failed a moment ago). */
void cluster_delete_purge_post(bcluster *c, const cdelete *d, int64_t epoch);

/* controller.c (cluster thread) */
void controller_step(bcluster *c);
void controller_resign(bcluster *c);

/* cluster_admin.c (loop) */
void cluster_waits_check(broker *b, int timeout_only);
/* Calls fn (loop) once the view holds topic `name` with this id, at least
 * nparts partitions and a state for each (ok 1), or when timeout_ms passed
 * (ok 0); timeout_ms <= 0: at once with ok -1. */
void cluster_wait_states(broker *b, const char *name, const char *id, int32_t nparts,
                         int64_t timeout_ms, void (*fn)(broker *b, void *arg, int ok), void *arg);
void cluster_waits_abort(broker *b);
void cluster_autos_free(bcluster *c);
/* Starts creating a topic in etcd (create-only txn); done on the loop with
 * the Kafka error and a message. */
typedef void (*cluster_create_fn)(broker *b, void *arg, int16_t err, const char *msg,
                                  const char *id);
int16_t cluster_create_topic(broker *b, const char *name, int32_t nparts, int32_t rf,
                             const bprop *cfg, size_t ncfg, cluster_create_fn done, void *arg,
                             char *msg, size_t msglen);

#endif
