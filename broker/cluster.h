/*
 * cluster.h — tierbroker as one broker of a cluster (issue 10): membership,
 * the controller, topic and partition state in etcd, and the seams where
 * replication (replica.c) and the group coordinator (group.c) plug in.
 *
 * Single node: metadata.store.url unset -> b->cluster == NULL, and every
 * caller keeps the single-node path unchanged (tests hold it so).
 *
 * What lives in etcd, under "/<cluster.name>/" (values are JSON objects; a
 * key's mod_revision is its CAS version, as Kafka used znode versions):
 *   brokers/<id>                 leased (broker.session.timeout.ms):
 *                                {"id","host","port","rack","admin",
 *                                 "listeners": [{"name": "SASL_SSL",
 *                                   "security_protocol": "SASL_SSL",
 *                                   "host": "b1.example", "port": 9093}, ...]}
 *                                one entry per listener, advertised address
 *                                (Kafka's endpoints); "host"/"port" stay the
 *                                first listener's, for older readers. A
 *                                registration without "listeners" (an older
 *                                broker) is read as one address serving every
 *                                listener name, as before.
 *   controller                   leased: {"id"}; its create_revision is the
 *                                controller epoch. Every controller write is a
 *                                txn comparing controller's create_revision.
 *   topics/<topic>               {"id": "<22-char base64url uuid>",
 *                                 "partitions": [[1,2,3],[2,3,1],...] (index =
 *                                 partition, replica ids, first = preferred),
 *                                 "configs": {"key": "value", ...}}
 *                                created only by CreateTopics; CreatePartitions
 *                                appends replica lists and AlterConfigs edits
 *                                configs (CAS on mod_revision, same id).
 *                                Each broker records the id its local
 *                                replicas belong to (.broker/topic-ids/,
 *                                topic_id.h) and resets them when it differs.
 *   partitions/<topic>/<p>       {"leader": id|-1, "leader_epoch": n,
 *                                 "isr": [ids], "controller_epoch": n}
 *                                written by the controller (leader elections)
 *                                and by the leader (ISR shrink/expand), both
 *                                by CAS on mod_revision.
 *   deletes/<topic>              {"id": "<the deleted topic id>",
 *                                 "partitions": n, "pending": [ids]}
 *                                a topic delete not yet complete (Kafka's
 *                                /admin/delete_topics/<t>): put by DeleteTopics
 *                                in the txn deleting topics/<t> and
 *                                partitions/<t>/; each replica drops its id
 *                                from "pending" once its local delete ended
 *                                (CAS on mod_revision); the controller deletes
 *                                the bucket's objects of partitions [0, n) once
 *                                no pending broker is live, then the key (txn
 *                                comparing its epoch and the key's
 *                                create_revision). CreateTopics compares it
 *                                absent (cluster_delete.c).
 *   producer_ids                 {"next": n}: blocks handed out by CAS.
 *   groups/<group>/<topic>/<p>   committed offsets, one key each (group.c).
 *   acls/<type>/<pattern>/<name>/<principal>/<host>/<op>/<perm>
 *                                one ACL binding each (admin_acls.c; fields
 *                                percent-encoded, acl_entry_key), its JSON
 *                                record as value (acl.h); read with every
 *                                snapshot and applied from the watch.
 *   The pseudo-topic "__consumer_offsets" (offsets.topic.num.partitions
 *   partitions, no data) is created by the controller: the leader of
 *   partition hash(group) % n coordinates the group, as in Kafka.
 *
 * Threads: etcd calls never run on the loop. A cluster thread owns the etcd
 * session (lease keeper, watches); what it learns is posted to the loop
 * (net_post), where the view below is updated and read. Loop functions
 * here never block.
 */
#ifndef TS_BROKER_CLUSTER_H
#define TS_BROKER_CLUSTER_H

#include <stdint.h>

typedef struct broker broker;
typedef struct bcluster bcluster;
typedef struct btopic btopic;
typedef struct bpart bpart;

#define CLUSTER_MAX_REPLICAS 16

#define CLUSTER_MAX_ENDPOINTS 4 /* as blistener listeners[] */

/* One listener of a broker as registered: its name, security protocol
 * (bsecurity) and advertised address. */
typedef struct cl_endpoint {
    char name[64]; /* "" in an older registration (one address for every name) */
    int proto;     /* bsecurity; -1 when unknown (older registration) */
    char host[256];
    int32_t port;
} cl_endpoint;

/* A live broker, as registered. */
typedef struct cl_broker {
    int32_t id;
    char host[256]; /* its first listener's address */
    int32_t port;
    char rack[64]; /* "" when unset */
    int nendpoints;
    cl_endpoint endpoints[CLUSTER_MAX_ENDPOINTS];
} cl_broker;

/* cb's address on the listener named `listener` (case-sensitive, as
 * Kafka's names), NULL when it has none (Kafka leaves such a broker out of
 * what that listener's clients see). An older registration answers its one
 * address for every name. Any thread (pure). */
const cl_endpoint *cluster_endpoint(const cl_broker *cb, const char *listener);

/* How this broker reaches the others (a follower's fetchers): the listener
 * from inter.broker.listener.name or security.inter.broker.protocol and, on
 * a SASL listener, the mechanism and this broker's own credentials from
 * listener.name.<listener>.<mechanism>.sasl.jaas.config. Set by
 * cluster_start, immutable after: any thread. */
typedef struct cl_interbroker {
    char listener[64];
    int proto;      /* bsecurity */
    char mech[32];  /* sasl.mechanism.inter.broker.protocol (SASL_* only) */
    char user[256], password[256];
    char jaas_key[160]; /* the setting they came from, for messages */
    int verify_host; /* ssl.endpoint.identification.algorithm non-empty */
} cl_interbroker;
const cl_interbroker *cluster_interbroker(const broker *b);
/* Resolves and checks those settings (cluster_start calls it); 0, or -1
 * with err naming the setting to fix. Pure but for reading cfg. */
int cluster_interbroker_resolve(const broker *b, cl_interbroker *out, char *err, size_t errlen);

/* One partition's state as last seen in etcd. */
typedef struct cl_pstate {
    int32_t leader;       /* -1: offline */
    int32_t leader_epoch;
    int32_t nreplicas, nisr;
    int32_t replicas[CLUSTER_MAX_REPLICAS]; /* assignment (topics/<t>) */
    int32_t isr[CLUSTER_MAX_REPLICAS];
    int64_t controller_epoch;
    int64_t version; /* mod_revision of partitions/<t>/<p>; 0 = not created yet */
} cl_pstate;

/* Starts the cluster session (connects, registers, starts the cluster
 * thread) when metadata.store.url is set; b->cluster stays NULL otherwise.
 * Returns -1 with a message when the store is set but unusable. Main
 * thread, before net_run. */
int cluster_start(broker *b, char *err, size_t errlen);
void cluster_stop(broker *b); /* deregisters (revokes the lease), joins */

/* ---- the loop's view (loop thread) ---------------------------------- */
/* Live brokers, ascending id. */
size_t cluster_brokers(const broker *b, const cl_broker **out);
const cl_broker *cluster_broker(const broker *b, int32_t id); /* NULL: not live */
int32_t cluster_controller_id(const broker *b);                /* -1: none */
const char *cluster_id_get(const broker *b); /* what Metadata reports as ClusterId */
/* Metadata's and DescribeCluster's broker array for a client of listener
 * l: every live broker at its address on l's name (this broker at l's
 * advertised address), those without such a listener left out; rack when
 * with_rack. Returns how many were written. */
struct blistener;
struct kw;
int32_t cluster_write_brokers(broker *b, const struct blistener *l, struct kw *w, int flexible,
                              int with_rack);
/* The partition's state, NULL when the topic/partition is not in etcd. */
const cl_pstate *cluster_pstate(const broker *b, const char *topic, int32_t partition);
/* KAFKA_NONE when this broker leads the partition at `epoch` (-1: any);
 * else NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH (epoch older than the
 * leader's), UNKNOWN_LEADER_EPOCH (newer), UNKNOWN_TOPIC_OR_PARTITION. */
int16_t cluster_check_leader(const broker *b, const char *topic, int32_t partition,
                             int32_t epoch);
/* Whether this broker holds a replica of the partition (1 on a single node:
 * it holds everything it registered). */
int cluster_holds(const broker *b, const char *topic, int32_t partition);
/* KAFKA_THROTTLING_QUOTA_EXCEEDED, with msg saying why, while a delete of
 * `name` is pending (deletes/<name>: its old incarnation's objects may still
 * be in the bucket): CreateTopics and CreatePartitions of the name are
 * refused until it is complete. KAFKA_NONE otherwise and on a single node. */
int16_t cluster_delete_pending(const broker *b, const char *name, char *msg, size_t msglen);
/* Whether this broker is registered and its lease alive (readyz, acks):
 * a keepalive answered within broker.session.timeout.ms (less a margin). */
int cluster_is_registered(const broker *b);
/* The loop's 50 ms tick: notices a lease gone stale, retries replica opens
 * that waited, expires CreateTopics/DeleteTopics waits. */
void cluster_tick(broker *b);

/* ---- writes (loop thread; the etcd call runs off the loop) ---------- */
/* Called by the partition's leader to change its ISR: a CAS on the state's
 * version `expect_version`, keeping leader and leader_epoch. done runs on
 * the loop: ok = 1 when written (the new state is in the view), 0 when the
 * CAS lost (a newer state is being delivered: re-evaluate then) or etcd is
 * unreachable. */
typedef void (*cluster_done_fn)(broker *b, void *arg, int ok);
void cluster_update_isr(broker *b, const char *topic, int32_t partition, int64_t expect_version,
                        const int32_t *isr, int32_t nisr, cluster_done_fn done, void *arg);

/* ---- the seams (implemented by others, called by cluster.c) --------- */
/* replica.c: a partition's state changed in the view (or appeared), on the
 * loop thread. It becomes leader/follower of `p` accordingly (opens the
 * partition TSP_PART_REPLICATED, partition_set_role, starts or stops
 * fetching). prev is NULL the first time. */
void replica_on_state(broker *b, btopic *t, bpart *p, const cl_pstate *prev,
                      const cl_pstate *now);
/* replica.c: a broker left or joined the live set. */
void replica_on_brokers(broker *b);
/* replica.c: the topic left the view (deleted, or re-created under its name):
 * its replicas forget their applied roles, followers' positions and fetch
 * offsets, so a new incarnation at the same leader and epoch applies its
 * role afresh instead of inheriting the old one's. */
void replica_on_topic_removed(broker *b, const char *topic);

#endif
