/*
 * broker.h — tierbroker internals shared by its files.
 *
 * Threads:
 *  - the network loop (one thread, net.c) owns every structure below:
 *    connections, response slots, topics, groups, offsets, producer state.
 *  - worker pools (bpool_*, in net.c) run plugin calls that may block: reads
 *    (a hot pool and a cold pool, so a cold consumer never queues ahead of a
 *    hot one), acks=-1 flushes (the io pool), metadata-file writes (the meta pool, one
 *    thread, so writes land in order) and topic lookups, creates and
 *    deletes (the topic pool: directory scans, bucket LISTs, partition
 *    opens and recovery). A job's `run` executes on a worker
 *    and must touch only the job; its `done` runs back on the loop thread,
 *    woken through an eventfd.
 *
 * Responses keep request order per connection (clients pipeline): every
 * request gets a slot when it is read; slots are written out strictly in
 * order as they fill, whatever thread finished the work.
 */
#ifndef TS_BROKER_BROKER_H
#define TS_BROKER_BROKER_H

#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "acl.h"
#include "admin.h"
#include "cluster.h"
#include "kafka_proto.h"
#include "kafka_wire.h"
#include "tierstore_names.h" /* ts_topic_name_valid, shared with the engine */
#include "tierstore_plugin.h"

typedef struct broker broker;
typedef struct conn conn;

/* ------------------------------------------------------------- logging */
void blog(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Not rate-limited: for lines whose number is bounded by their input (one
 * per key of the properties file at startup). */
void blog_unlimited(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define blog_info(...) blog("INFO", __VA_ARGS__)
#define blog_warn(...) blog("WARN", __VA_ARGS__)
#define blog_error(...) blog("ERROR", __VA_ARGS__)
extern int g_blog_debug;
/* "text" (default) or "json": log.format, shared with the engine's lines. */
void blog_set_format(const char *format);
#define blog_debug(...)                                                                          \
    do {                                                                                         \
        if (g_blog_debug) blog("DEBUG", __VA_ARGS__);                                            \
    } while (0)

int64_t bclock_ms(void);      /* monotonic */
int64_t bclock_wall_ms(void);  /* realtime */

/* --------------------------------------------------------------- config */
typedef struct bprop {
    char *key, *value;
} bprop;

typedef struct bconfig {
    bprop *items; /* every key of the file and --override, in order */
    size_t n, cap;
} bconfig;

int bconfig_load(bconfig *c, const char *path, char *err, size_t errlen);
int bconfig_set(bconfig *c, const char *key, const char *value);
const char *bconfig_get(const bconfig *c, const char *key); /* default when unset */
const char *bconfig_lookup(const bconfig *c, const char *key); /* NULL when unset */
/* The i-th key of the broker's table (NULL past its end) and its facts. */
const char *bconfig_key_at(size_t i, const char **def, const char **doc, int *is_int,
                           int *also_engine);
int64_t bconfig_int(const bconfig *c, const char *key);
int bconfig_is_broker_key(const char *key);
/* Whether the broker's property table (config.c) has this key itself. */
int bconfig_is_table_key(const char *key);
/* Validates the broker's own keys (types, bounds). */
int bconfig_validate(const bconfig *c, char *err, size_t errlen);
/* The security protocol of one `listeners` entry ("NAME://host:port", or
 * "host:port" = PLAINTEXT) through listener.security.protocol.map, and its
 * listener name into name; -1 and a message naming the setting when the
 * entry cannot be served. */
typedef enum bsecurity {
    BSEC_PLAINTEXT = 0,
    BSEC_SSL = 1,
    BSEC_SASL_PLAINTEXT = 2,
    BSEC_SASL_SSL = 3,
} bsecurity;
int bconfig_listener_protocol(const bconfig *c, const char *listener, char *name, size_t namelen,
                              char *err, size_t errlen);
const char *bsecurity_name(int proto);
void bconfig_help(FILE *out);
void bconfig_free(bconfig *c);

/* Kafka's broker settings under Kafka's names (kafka_names.c). An alias is
 * a Kafka name of a setting known under another name or unit (value *
 * scale; scale 0 copies the value). */
typedef struct bkafka_alias {
    const char *name, *target;
    int64_t scale;
} bkafka_alias;
/* Sets alias targets from the aliases set (most precise wins), warns once
 * about each Kafka setting that does not apply; -1 and err on a bad value. */
int bkafka_apply(bconfig *c, char *err, size_t errlen);
/* An alias or an ignored Kafka key: never passed to the plugin. */
int bkafka_consumed(const char *key);
int bkafka_is_ignored(const char *key);
const bkafka_alias *bkafka_alias_find(const char *key);
/* The aliases of target, most precise first (*n of them; NULL when none). */
const bkafka_alias *bkafka_aliases_of(const char *target, size_t *n);
int bkafka_alias_value(const bkafka_alias *a, const char *value, char *out, size_t outlen,
                       char *err, size_t errlen);
/* A `listeners` entry named in controller.listener.names (not served). */
int bkafka_is_controller_listener(const bconfig *c, const char *listener);

/* ---------------------------------------------------------------- pools */
typedef struct bjob bjob;
typedef void (*bjob_fn)(bjob *j);
struct bjob {
    bjob *next;
    bjob_fn run;  /* on a worker thread */
    bjob_fn done; /* on the loop thread */
    const void *key; /* set by the submit call (bpool_submit_keyed) */
};
typedef struct bpool bpool;
bpool *bpool_create(broker *b, const char *name, int nthreads);
void bpool_submit(bpool *p, bjob *j);
/* As bpool_submit, for a job of one key (a partition): while the pool's
 * per-key limit of jobs of that key run, workers pass over it and take the
 * next job of another key, so one slow key holds at most that many
 * threads. Loop thread. */
void bpool_submit_keyed(bpool *p, bjob *j, const void *key);
/* Jobs of one key that may run at once (0 = no limit, the default). Before
 * the first submit. */
void bpool_set_key_limit(bpool *p, int max_running_per_key);
void bpool_destroy(bpool *p); /* joins; pending jobs still complete */

/* ----------------------------------------------------------- responses */
typedef struct slot {
    struct slot *next;
    int ready;
    int is_fetch;  /* counts in its connection's fetches in flight until ready */
    uint8_t *data; /* whole frame: size prefix + header + body */
    size_t len;
    /* When set (a Fetch with file ranges, out.h): the frame is these parts
     * in order, memory ones pointing into data (len is then the frame's
     * total); owned by the slot, file parts' fds closed when it goes. */
    struct bout_part *parts;
    size_t nparts;
} slot;

/* A handle to answer one request later: keeps the connection alive. */
typedef struct reply {
    conn *c;
    slot *s;
    kafka_header hdr; /* client_id not kept */
    int64_t t0_us;    /* when the request was read (latency metric) */
} reply;

/* Starts a response: size placeholder + response header. */
void reply_begin(const reply *r, kw *w);
/* Finishes: patches the size, hands the bytes to the slot, releases the
 * connection reference and writes what is in order. On a writer error
 * (cap hit) the connection is closed. Loop thread. */
void reply_end(broker *b, reply *r, kw *w);
/* reply_end for a frame of parts (out.h): w's bytes with the file ranges
 * franges[i] inserted at byte at[i] of w (ascending). Takes the ranges' fds
 * (closed whatever happens). */
struct bout_part;
void reply_end_parts(broker *b, reply *r, kw *w, const size_t *at,
                     const struct bout_part *franges, size_t n);
/* Drops a reply without answering (acks=0 or a closed connection). */
void reply_drop(broker *b, reply *r);

void conn_ref(conn *c);
void conn_unref(broker *b, conn *c);
int conn_closed(const conn *c);
/* Holds a connection: no further request of it is dispatched (and it is
 * not read) until conn_release; a held Produce keeps its connection's later
 * batches behind it. Counted: holds nest. Loop thread. */
void conn_hold(broker *b, conn *c);
void conn_release(broker *b, conn *c);
/* Charges (or returns) bytes of a request kept past its dispatch, such as a
 * held Produce's records, to queued.max.request.bytes. Loop thread. */
void net_charge(broker *b, size_t n);
void net_uncharge(broker *b, size_t n);
void conn_close(broker *b, conn *c, const char *why);
const char *conn_peer(const conn *c);

/* --------------------------------------------------------------- topics */
#define BROKER_MAX_SEQ_CACHE 5

typedef struct pid_state {
    struct pid_state *next;
    int64_t producer_id;
    int16_t epoch;
    int32_t last_seq;
    int ncached;
    struct {
        int32_t first_seq, last_seq;
        int64_t base_offset;
    } cached[BROKER_MAX_SEQ_CACHE];
} pid_state;

typedef struct bpart {
    int32_t index;
    tsp_partition *h;
    uint64_t appends; /* bumps on every append: wakes long-poll fetches */
    pid_state *pids;
} bpart;

/* Partitions added by CreatePartitions: a block of their own, so that no
 * bpart ever moves (jobs and parked fetches hold pointers to them). */
typedef struct bpart_block {
    struct bpart_block *next;
    int32_t first, n;
    bpart *parts;
} bpart_block;

typedef struct btopic {
    struct btopic *next;
    char *name;
    int32_t npartitions;
    bpart *parts;         /* [0, nbase) */
    int32_t nbase;
    bpart_block *more;    /* [nbase, npartitions), in order */
    int growing;          /* a CreatePartitions of it is running */
    size_t nconfigs;
    bprop *configs; /* topic-level overrides as created */
} btopic;

/* The registry in memory only; never blocks, never asks the storage. */
btopic *topic_find(broker *b, const char *name);

/* Runs on the loop thread when a topic job finishes: err is KAFKA_NONE when
 * the job opened the topic (it is in the registry now), UNKNOWN_TOPIC_OR_
 * PARTITION when the storage does not know it, TOPIC_ALREADY_EXISTS when a
 * create found it in the storage (adopted), or the failure (msg says why). */
typedef void (*topic_wait_fn)(broker *b, void *arg, int16_t err, const char *msg);

/* Most topic lookups/creates in flight; past this, unknown names get a
 * retriable error without a lookup (each may hold a topic-pool thread for
 * an object-store timeout). */
#define TOPIC_MAX_JOBS 64
/* How long a name the storage does not know is answered from memory, and
 * how many such names are remembered. */
#define TOPIC_NEG_TTL_MS 10000
#define TOPIC_NEG_MAX 4096

/* Resolves a name without blocking. KAFKA_NONE: registered.
 * INVALID_TOPIC_EXCEPTION, or UNKNOWN_TOPIC_OR_PARTITION: absent (negative
 * cache, being deleted). LEADER_NOT_AVAILABLE: being looked up (by a job
 * this call started if none was running; with auto_create the job creates
 * num.partitions partitions when the storage does not know the name); then,
 * when fn is given, *waiting = 1 and fn runs once the job is done (fn is not
 * queued when too many jobs run: *waiting stays 0). Loop thread. */
int16_t topic_lookup(broker *b, const char *name, int auto_create, topic_wait_fn fn, void *arg,
                     int *waiting);
/* The registered topic, or NULL after starting a lookup (Produce, Fetch:
 * their partitions answer UNKNOWN_TOPIC_OR_PARTITION, retriable, meanwhile). */
btopic *topic_resolve(broker *b, const char *name);
bpart *topic_part_of(btopic *t, int32_t partition, int16_t *err);
/* Partition i of t whether open or not (NULL past its end). */
bpart *topic_part_at(btopic *t, int32_t i);
/* CreatePartitions: opens (creates) partitions [first, first + n) of a
 * topic into *parts (malloc'd); on failure deletes the ones it made.
 * Blocking: a topic-pool worker. */
tsp_status topic_parts_open(broker *b, const char *name, int32_t first, int32_t n, bpart **parts,
                            char *msg, size_t msglen);
/* Loop: adds them to the topic (which must still have `first`
 * partitions) and saves the topic list; takes ownership of parts. -1 when
 * the topic is gone (the parts are freed, their storage left to the reap
 * of the deleted topic, which covers every partition it had). */
int topic_grow(broker *b, const char *name, int32_t first, int32_t n, bpart *parts);
bpart *topic_part(broker *b, const char *topic, int32_t partition, int16_t *err);

/* Rebuilds a partition's idempotent-producer state from the tail of its log
 * (the local part only), so a producer retrying a batch it sent before a
 * restart gets its original offset instead of a second copy. Called when
 * the partition is opened, on a topic-pool worker (or at startup) before
 * the partition is visible to the loop: touches only p and the plugin. */
void idempotence_rebuild(broker *b, bpart *p);

/* Creates a topic on the topic pool (or adopts it when the storage knows it,
 * answered TOPIC_ALREADY_EXISTS). Returns a kafka_error now, or KAFKA_NONE
 * with *waiting = TOPIC_WAIT_OWN (fn gets the create's result) or
 * TOPIC_WAIT_OTHER (another job holds the name: ask again in fn). A create
 * that fails half way deletes the partitions it made. Loop thread. */
#define TOPIC_WAIT_OWN 1
#define TOPIC_WAIT_OTHER 2
int topic_create(broker *b, const char *name, int32_t nparts, const bprop *cfg, size_t ncfg,
                 int validate_only, topic_wait_fn fn, void *arg, int *waiting, char *msg,
                 size_t msglen);
int topic_delete(broker *b, const char *name, char *msg, size_t msglen);
/* Cluster mode: registers a topic known from etcd with nparts partitions and
 * no handle yet (cluster.c opens the local replicas and fills them in).
 * Loop thread. */
int topic_register_cluster(broker *b, const char *name, int32_t nparts, const bprop *cfg,
                           size_t ncfg, char *msg, size_t msglen);
/* Cluster mode: the topic's configs as etcd now holds them (copied), read
 * by the broker's topic-level keys (min.insync.replicas, ...). Loop. */
int topic_set_configs(broker *b, const char *name, const bprop *cfg, size_t ncfg);
/* Copies n properties into a new array (*out, NULL when n is 0), a NULL
 * value as "". *nout counts the entries filled, so that bprops_free(*out,
 * *nout) cleans up also after a failure. 0, or -1 when out of memory. */
int bprops_copy(const bprop *src, size_t n, bprop **out, size_t *nout);
/* Frees the strings of n properties (not the array: it may be on the stack). */
void bprops_free(bprop *p, size_t n);
/* Whether a deleted topic of that name is still being removed. */
int topic_is_doomed(broker *b, const char *name);
/* Deletes doomed topics from the plugin (on the topic pool) once no job can
 * still use their partition handles. Loop thread. */
void topic_reap_doomed(broker *b);
/* Cluster mode, loop: parts[0..n) (indexed by partition; NULL handles
 * skipped) were opened for a topic deleted while the open ran, after the
 * delete's reap passed them by: they are reaped like the topic's other
 * partitions (partition_delete), so none stays open in the storage, where
 * it would block a re-create's reset of the name. Takes ownership of parts. */
void topic_doom_opened(broker *b, const char *name, bpart *parts, int32_t n);
/* Frees n partitions' producer states and the array. */
void bparts_free(bpart *parts, int32_t n);
void topic_free_all(broker *b);
/* remote.log.recover.topics: adopts every topic the plugin's store holds
 * (topics_list, a page at a time on the topic pool, each topic then looked
 * up as on first use), so Metadata lists them before any is named. Loop
 * thread, once the pools run. */
void topic_recover_start(broker *b);

/* ------------------------------------------------------- metadata files */
/* Persist topics, committed offsets and the producer-id counter under
 * <log.dirs>/.broker (formats: topics.c). Writes are serialized on the meta
 * pool; `done` (may be NULL) runs on the loop after the file is durable, with
 * ok = 0 when it is not (the previous durable content stays). */
typedef void (*meta_done_fn)(broker *b, void *arg, int ok);
void meta_save_topics(broker *b, meta_done_fn done, void *arg);
/* One committed offset as logged. */
typedef struct meta_commit {
    const char *group, *topic, *metadata;
    int32_t partition;
    int64_t offset;
    int deleted; /* a deletion (OffsetDelete, DeleteGroups): offset, metadata unused */
} meta_commit;
/* Makes the n commits or deletions (already applied in memory) durable:
 * appended to the offsets log, or a compacted rewrite of every committed
 * offset when the log outgrew the live set. */
void meta_log_offsets(broker *b, const meta_commit *c, size_t n, meta_done_fn done, void *arg);
/* Durably records that producer ids below `end` may be handed out. */
void meta_save_producer_ids(broker *b, int64_t end, meta_done_fn done, void *arg);
/* Durably writes b->dyn (the dynamic broker configs) as properties. */
void meta_save_dynamic_configs(broker *b, meta_done_fn done, void *arg);
int meta_load(broker *b, char *err, size_t errlen);

/* --------------------------------------------------------------- groups */
typedef struct committed {
    struct committed *next;
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch; /* -1: unknown (always, on a single node) */
    char *metadata;
} committed;

typedef struct bgroup bgroup;
typedef struct bmember bmember;
bgroup *group_find(broker *b, const char *id, int create);
committed *group_offsets(bgroup *g);
const char *group_id(const bgroup *g);
bgroup *group_first(broker *b);
bgroup *group_next(bgroup *g);
/* Returns 1 when (topic, partition) is new to the group, 0 when updated,
 * -1 out of memory. */
int group_set_offset(bgroup *g, const char *topic, int32_t partition, int64_t offset,
                     const char *metadata);
/* The same with the committed leader epoch (a cluster keeps it). */
int group_commit_offset(bgroup *g, const char *topic, int32_t partition, int64_t offset,
                        int32_t leader_epoch, const char *metadata);
/* Forgets every group hashed onto offsets partition p of n (this broker no
 * longer coordinates them): parked JoinGroup/SyncGroup answers get
 * NOT_COORDINATOR. Returns how many groups went. */
int group_drop_partition(broker *b, int32_t p);
void group_tick(broker *b);
void group_free_all(broker *b);
/* Removes a committed offset from memory; 1 when it was there. */
int group_delete_offset(bgroup *g, const char *topic, int32_t partition);
/* Unlinks and frees a group (its offsets too); only for a group without
 * members (nothing of it is parked). */
void group_remove(broker *b, bgroup *g);

/* What the group admin APIs show of a group and its members: pointers into
 * the group, valid until the loop next changes it. Loop thread. */
typedef struct group_info {
    const char *state;         /* Kafka's name: Empty, PreparingRebalance, ... */
    const char *protocol_type; /* "" when none */
    const char *protocol_name; /* "" before a generation chose one */
    int stable;
    int nmembers;
} group_info;
typedef struct member_info {
    const char *member_id, *client_id, *client_host;
    const uint8_t *metadata; /* of the group's protocol (its subscription) */
    int32_t metadata_len;
    const uint8_t *assignment; /* NULL before the leader's SyncGroup */
    int32_t assignment_len;
} member_info;
void group_view(const bgroup *g, group_info *out);
bmember *group_members(bgroup *g);
bmember *member_next(bmember *m);
void member_view(const bgroup *g, const bmember *m, member_info *out);

/* ---------------------------------------- groups in a cluster (group_cluster.c) */
/* metadata.store.url set: the coordinator's etcd side, b->gc (NULL on a
 * single node, which keeps every group path as it was). */
typedef struct gcluster gcluster;
struct cl_broker;
int group_cluster_start(broker *b, char *err, size_t errlen); /* main thread, before net_run */
void group_cluster_stop(broker *b); /* after the loop; finishes etcd jobs */
void group_cluster_tick(broker *b); /* follows leadership of __consumer_offsets: load/unload */
/* The group's __consumer_offsets partition. */
int32_t group_cluster_partition(const broker *b, const char *group);
/* KAFKA_NONE when this broker coordinates the group and has its offsets
 * loaded; NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS otherwise. */
int16_t group_cluster_check(broker *b, const char *group);
/* The group's coordinator as the view has it; NULL: none alive. */
const struct cl_broker *group_cluster_coordinator(broker *b, const char *group);
/* One partition of an OffsetCommit to write; err is the outcome. */
typedef struct gc_commit {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int16_t err;
} gc_commit;
/* Runs on the loop once etcd answered: recs[i].err per partition
 * (COORDINATOR_NOT_AVAILABLE: etcd failed, NOT_COORDINATOR: fenced); the
 * acknowledged ones are already in the group's memory. recs stay the
 * caller's. */
typedef void (*gc_commit_fn)(broker *b, void *arg, gc_commit *recs, size_t n);
void group_cluster_commit(broker *b, const char *group, gc_commit *recs, size_t n,
                          gc_commit_fn done, void *arg);
/* Reserves producer ids [start, end) in etcd; done on the loop. */
typedef void (*gc_pids_fn)(broker *b, int ok, int64_t start, int64_t end);
void group_cluster_reserve_pids(broker *b, int64_t block, gc_pids_fn done);

void handle_FindCoordinator(broker *b, reply *r, kafka_request *q);
void handle_JoinGroup(broker *b, reply *r, kafka_request *q);
void handle_SyncGroup(broker *b, reply *r, kafka_request *q);
void handle_Heartbeat(broker *b, reply *r, kafka_request *q);
void handle_LeaveGroup(broker *b, reply *r, kafka_request *q);
void handle_OffsetCommit(broker *b, reply *r, kafka_request *q);
void handle_OffsetFetch(broker *b, reply *r, kafka_request *q);

/* admin_api.c: group and cluster introspection. */
void handle_ListGroups(broker *b, reply *r, kafka_request *q);
void handle_DescribeGroups(broker *b, reply *r, kafka_request *q);
void handle_DeleteGroups(broker *b, reply *r, kafka_request *q);
void handle_OffsetDelete(broker *b, reply *r, kafka_request *q);
void handle_DescribeCluster(broker *b, reply *r, kafka_request *q);
void handle_DescribeLogDirs(broker *b, reply *r, kafka_request *q);

/* ------------------------------------------------------------- handlers */
void handle_ApiVersions(broker *b, reply *r, kafka_request *q);
void handle_Metadata(broker *b, reply *r, kafka_request *q);
void handle_Produce(broker *b, reply *r, kafka_request *q);
void handle_Fetch(broker *b, reply *r, kafka_request *q);
void handle_ListOffsets(broker *b, reply *r, kafka_request *q);
void handle_CreateTopics(broker *b, reply *r, kafka_request *q);
void handle_DeleteTopics(broker *b, reply *r, kafka_request *q);
void handle_InitProducerId(broker *b, reply *r, kafka_request *q);
/* admin_configs.c */
void handle_DescribeConfigs(broker *b, reply *r, kafka_request *q);
void handle_AlterConfigs(broker *b, reply *r, kafka_request *q);
void handle_IncrementalAlterConfigs(broker *b, reply *r, kafka_request *q);
/* Dynamic broker configs of .broker/dynamic-configs, applied to the engine
 * at startup (after engine_open). 0, or -1 with err. */
int bdynamic_load(broker *b, char *err, size_t errlen);
/* admin_records.c */
void handle_CreatePartitions(broker *b, reply *r, kafka_request *q);
void handle_DeleteRecords(broker *b, reply *r, kafka_request *q);
/* Cluster mode (cluster_admin.c): the answers from the cluster's view. */
void cluster_handle_metadata(broker *b, reply *r, kafka_request *q);
void cluster_handle_create_topics(broker *b, reply *r, kafka_request *q);
void cluster_handle_delete_topics(broker *b, reply *r, kafka_request *q);
/* cluster_alter.c: CreatePartitions grows topics/<t> to count partitions
 * (loop; done on the loop with KAFKA_NONE or an error and its message);
 * KAFKA_NONE when started, else the error at once. */
typedef void (*cluster_grow_fn)(broker *b, void *arg, int16_t err, const char *msg);
int16_t cluster_grow_topic(broker *b, const char *name, int32_t count, int validate_only,
                           int32_t timeout_ms, cluster_grow_fn done, void *arg, char *msg,
                           size_t msglen);
/* cluster_alter.c: a topic's configs in etcd: props (value NULL: back to the
 * default) become the whole override set (replace) or edit it. Blocks (etcd
 * round trips): a pool thread, never the loop. */
int16_t cluster_alter_topic_configs(broker *b, const char *name, const tsp_property *props,
                                    size_t n, int replace, int validate_only, char *msg,
                                    size_t msglen);
/* replica.c: the leader's epoch end offsets (KIP-101/279), for followers and clients. */
void handle_OffsetForLeaderEpoch(broker *b, reply *r, kafka_request *q);
/* Re-evaluates parked long-poll fetches (after appends or on the tick). */
void fetch_wake(broker *b);
void fetch_abort_all(broker *b);
/* Retries Produce requests held on backpressure; answers the ones past
 * their timeout. Returns whether any is still held. Loop thread. */
int produce_retry_held(broker *b);
void produce_abort_all(broker *b);
/* acks=-1 in a cluster (the purgatory): answers the Produce requests whose
 * entries the HW passed, whose leadership was lost or whose TimeoutMs
 * passed. Called when a HW moves, the view changes, and on the tick. */
void produce_acks_check(broker *b);
void produce_acks_abort_all(broker *b);

/* Status of the plugin -> Kafka ErrorCode (kafka_errors.c). */
int16_t kafka_error_from_status(tsp_status st);

/* ----------------------------------------------------------------- sasl */
/* Per connection (net.c owns it, sasl.c fills it). */
typedef struct bauth {
    int step;           /* 0 idle, 1 after SaslHandshake, 2 SCRAM challenge sent,
                           3 PLAIN being checked on the sasl pool */
    int mech;           /* sasl.c's mechanism number */
    int authenticated;
    char principal[256]; /* the SASL user once authenticated */
    int64_t lifetime_ms; /* session_lifetime_ms answered */
    int64_t expires_ms;  /* connections.max.reauth.ms deadline; 0 = none */
    struct ts_scram_server *scram;
} bauth;
bauth *conn_auth(conn *c);
/* The principal name of c (without "User:"): the SASL user, else the TLS
 * client certificate's mapped subject, else ANONYMOUS. */
const char *conn_principal(const conn *c);
/* Closes c once everything queued for it is written (a failed login's
 * answer reaches the client); nothing more of it is read. */
void conn_close_after_reply(broker *b, conn *c);

typedef struct bsasl bsasl;
/* Loads the users file, reads sasl.enabled.mechanisms (needed: a SASL
 * listener exists, so an unsupported or empty list is an error). */
int sasl_init(broker *b, int needed, char *err, size_t errlen);
void sasl_free(broker *b);
void sasl_tick(broker *b, int64_t now); /* re-reads a changed users file */
void sasl_conn_free(bauth *a);           /* a connection's exchange state */
/* 0 (with *why) when a request of api_key must close c: a SASL listener's
 * connection not (or no longer) authenticated. */
int sasl_request_allowed(broker *b, conn *c, int16_t api_key, const char **why);
void sasl_authenticate(broker *b, reply *r, const uint8_t *tok, size_t len);
void handle_SaslHandshake(broker *b, reply *r, kafka_request *q);
void handle_SaslAuthenticate(broker *b, reply *r, kafka_request *q);
void handle_DescribeUserScramCredentials(broker *b, reply *r, kafka_request *q);
void handle_AlterUserScramCredentials(broker *b, reply *r, kafka_request *q);

/* ------------------------------------------------------------------ tls */
/* One per SSL/SASL_SSL listener (tls.c): the SSL_CTX built from the ssl.*
 * keys (listener.name.<name>.ssl.* first), reloaded when its files change.
 * Loop thread. */
typedef struct btls btls;
btls *tls_create(const bconfig *cfg, const char *listener, char *err, size_t errlen);
void tls_destroy(btls *t);
/* Every ssl.reload.check.ms: rebuilds the context when the keystore or
 * truststore file changed; new connections get the new one. */
void tls_maybe_reload(btls *t, int64_t now);
/* A server-side SSL (void * keeps OpenSSL out of broker.h) on fd, or NULL. */
void *tls_accept(btls *t, int fd);
void tls_free(void *ssl);
int tls_handshake_done(void *ssl);
/* tls_read/tls_write: bytes moved (> 0), 0 = closed by the peer, TLS_AGAIN
 * with *want = TLS_WANT_READ or TLS_WANT_WRITE (wait for that socket event),
 * or -1 with err set. The handshake runs inside them. */
#define TLS_AGAIN (-2)
#define TLS_WANT_READ 1
#define TLS_WANT_WRITE 2
ssize_t tls_read(void *ssl, void *buf, size_t n, int *want, char *err, size_t errlen);
ssize_t tls_write(void *ssl, const void *buf, size_t n, int *want, char *err, size_t errlen);
/* The client certificate's subject (RFC 2253) mapped by
 * ssl.principal.mapping.rules into out; 0 when no certificate was sent. */
int tls_peer_principal(void *ssl, const char *rules, char *out, size_t outlen);
void tls_map_principal(const char *rules, const char *dn, char *out, size_t outlen);
/* Client side (a fetcher to its leader; any thread, blocking fd): the TLS
 * handshake with the keys of listener `listener`, checking the certificate
 * against the truststore and, with verify_host, against host. The SSL, or
 * NULL with err saying why (an untrusted certificate is named so). */
void *tls_client_connect(const bconfig *cfg, const char *listener, int fd, const char *host,
                         int verify_host, char *err, size_t errlen);
ssize_t tls_client_read(void *ssl, void *buf, size_t n);        /* 0: closed, -1: error */
ssize_t tls_client_write(void *ssl, const void *buf, size_t n); /* -1: error */

/* ------------------------------------------------------------------ net */
int net_init(broker *b);
/* Binds host:port; the listener is b->listeners[b->nlisteners - 1] after. */
int net_listen(broker *b, const char *host, int port, char *err, size_t errlen);
/* The listener a connection came in on (Metadata advertises its address). */
const struct blistener *conn_listener(const conn *c);
/* The listener of the connection a reply answers (the first one when it has
 * none): Metadata and FindCoordinator advertise its address. */
const struct blistener *reply_listener(const broker *b, const reply *r);
void net_run(broker *b);       /* until b->stop */
void net_shutdown(broker *b);  /* closes listeners */
void net_drain(broker *b);     /* runs `done` of finished jobs */
/* Queues j for its `done` on the loop from any thread that is not a pool
 * worker (the admin listener): j->run must be NULL, and the job does not
 * count in jobs_inflight. */
void net_post(broker *b, bjob *j);
int64_t bclock_us(void);      /* monotonic */

/* --------------------------------------------------------------- broker */
typedef struct blistener {
    int fd;
    char host[256];
    int port;
    char name[64];       /* listener name (PLAINTEXT, SASL_SSL, a custom one) */
    int proto;           /* bsecurity */
    btls *tls;           /* SSL, SASL_SSL: its context; else NULL */
    char adv_host[256];  /* what Metadata answers a client of this listener */
    int adv_port;
    int64_t paused_until_ms; /* out of descriptors: not polled until then; 0 = polled */
} blistener;

struct broker {
    bconfig cfg;
    bconfig dyn; /* dynamic broker configs (engine names), .broker/dynamic-configs */
    const tsp_plugin *pl;
    void *dl;
    tsp_engine *eng;

    int epfd;
    int evfd; /* completions from pools */
    pthread_mutex_t done_mu;
    bjob *done_head, *done_tail;

    blistener listeners[4];
    int nlisteners;
    char adv_host[256];
    int adv_port;
    int32_t node_id;
    char cluster_id[64];

    bpool *hot_pool, *cold_pool, *io_pool, *meta_pool;
    bpool *topic_pool; /* topic lookups, creates, deletes: may wait on the bucket */

    btopic *topics;
    btopic *doomed;        /* deleted, waiting for in-flight jobs to finish */
    struct reap_job *reaping;  /* deleted, storage being removed (topic pool) */
    struct topic_job *opening; /* lookups/creates in flight, one per name */
    int nopening;
    struct topic_neg *neg_head, *neg_tail; /* names the storage does not know */
    size_t nneg;
    int64_t jobs_inflight; /* submitted to a pool, `done` not yet run */
    struct fetch_op *parked; /* long-poll fetches waiting for data */
    uint64_t appends_total;
    uint64_t parked_seen_appends;

    struct bgroup *groups;
    gcluster *gc; /* groups and producer ids in etcd; NULL on a single node */
    size_t offsets_live;   /* committed offsets in memory */
    size_t offsets_logged; /* records in .broker/offsets (estimate, loop's view) */
    int offsets_rewrite;   /* next save must rewrite the file whole */
    size_t offset_metadata_max;

    int64_t next_producer_id;  /* next id to hand out */
    int64_t producer_id_limit; /* end of the durably reserved block */
    int64_t pid_reserving_end;
    int pid_reserving;
    struct pid_wait *pid_waiters;

    char meta_dir[1024];
    int32_t num_partitions;
    int auto_create;
    int recover_topics;                 /* remote.log.recover.topics */
    struct topic_recover *recovering;   /* that recovery, while it runs */
    int64_t initial_rebalance_delay_ms;
    int64_t min_session_ms, max_session_ms;
    size_t max_request_bytes;
    int64_t idle_ms;            /* connections.max.idle.ms */
    int64_t request_timeout_ms; /* request.timeout.ms: one frame, first to last byte */
    int64_t handshake_timeout_ms; /* ssl.handshake.timeout.ms */
    bsasl *sasl;                  /* users and mechanisms (sasl.c) */
    struct bacl *acl;             /* the authorizer (admin_acls.c); NULL: none */
    int sasl_needed;              /* a SASL_* listener is configured */
    conn *conns;                /* open connections (idle and frame timers) */
    uint64_t next_conn_id;

    /* Memory bounds (net.c): a connection is not read while its queued,
     * unsent responses reach max_queued_response_bytes; the input bytes of
     * all connections beyond a small base each (frames being read, held
     * Produce records) are charged to queued_max_request_bytes (< 0:
     * unbounded), and a connection whose next frame does not fit waits,
     * first come first served, on budget_wait. */
    size_t max_queued_response_bytes;
    int64_t queued_max_request_bytes;
    int64_t request_bytes_charged;
    conn *budget_wait_head, *budget_wait_tail;
    conn *kick_head, *kick_tail; /* to resume once this loop pass ends */
    int64_t fetch_max_bytes;
    int fetch_copy;             /* fetch.zero.copy.enable=false: Fetch always copies */
    int64_t produce_hold_max_ms;
    struct prod_op *held; /* Produce requests held on backpressure, in arrival order */
    volatile int stop;

    /* Admin HTTP listener and metrics (admin.h). */
    bmetrics metrics;         /* loop thread only */
    struct badmin *admin;     /* NULL when admin.listeners is empty */
    int serving;              /* loop: listeners up and the loop running */

    /* The cluster (cluster.h): NULL and 0 on a single node. cluster_mode is
     * set from the settings before anything loads; cluster once registered. */
    bcluster *cluster;
    int cluster_mode;
    /* Replication (replica.h): every replicated partition, the fetchers by
     * leader, acks=-1 Produce waiting for the HW (the purgatory). */
    struct rpart *replica_parts;
    struct fetcher *replica_fetchers;
    struct prod_op *acks_waiting;
    /* Fetches whose cold partitions read on the cold pool, each partition a
     * job of its own (handlers.c): answered when every read is done, or
     * remote.fetch.max.wait.ms after they started with what is done then. */
    struct fetch_op *cold_waiting;
    int64_t remote_fetch_max_wait_ms;
};

#endif
