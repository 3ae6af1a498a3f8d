/*
 * replica.h — replication between tierbrokers, Kafka's protocol
 * (ReplicaManager / Partition / ReplicaFetcherThread, KIP-101/279/405).
 *
 * One rpart per partition this broker replicates, keyed by (topic,
 * partition) and never freed before shutdown (jobs and fetch answers name
 * partitions by key, so nothing dangles when a topic goes away). Its role
 * follows the partition state in etcd (cluster_pstate): the view says what
 * is *wanted*; the role is *applied* by a job (partition_set_role, then, as
 * leader, the idempotent producer state rebuilt from the log) and only an
 * applied role acts: a leader whose role is not applied yet answers
 * NOT_LEADER_OR_FOLLOWER, a follower does not fetch. At most one job per
 * partition runs at a time, so role changes apply in order.
 *
 * Leader: tracks each follower's log end (its Fetch offset) and when it was
 * last caught up; HW = min log end over the ISR (the ISR as written in
 * etcd: a shrink counts only once its CAS succeeded); shrinks the ISR of
 * followers not caught up for replica.lag.time.max.ms and adds followers
 * that reached the HW, one cluster_update_isr at a time.
 *
 * Follower: one fetcher per leader broker (fetcher.c, a thread holding a
 * Kafka client connection); answers are applied here, on the loop:
 * append_replica, set_high_watermark from the leader's HW; truncation
 * after OffsetForLeaderEpoch and reset_local run as jobs on the topic pool
 * (they unlink files, reset_local reads the bucket).
 *
 * Thread: loop, except where a function says otherwise.
 */
#ifndef TS_BROKER_REPLICA_H
#define TS_BROKER_REPLICA_H

#include <stdint.h>

#include "broker.h"
#include "cluster.h"
#include "kafka_client.h"

typedef struct fetcher fetcher;

enum { RP_NONE = 0, RP_LEADER = 1, RP_FOLLOWER = 2 };
/* A follower's step: ask OffsetForLeaderEpoch and truncate, fetch, or wait
 * for a job (truncate / reset_local) to finish. */
enum { RF_EPOCH = 0, RF_FETCH = 1, RF_JOB = 2 };

typedef struct rfollower {
    int32_t id;
    int64_t leo;               /* its last Fetch offset; -1 before its first Fetch */
    int64_t last_fetch_ms;
    int64_t leo_at_last_fetch; /* the leader's log end at that Fetch */
    int64_t caught_up_ms;      /* Kafka's lastCaughtUpTimeMs */
} rfollower;

typedef struct rpart {
    struct rpart *next;
    char *topic;
    int32_t partition;
    /* wanted, from the view */
    int want_role;
    int32_t want_epoch, want_leader;
    /* applied */
    int role;
    int32_t epoch, leader;
    int busy; /* a job on this partition runs */
    int64_t role_retry_ms; /* a failed role job is tried again then */
    /* leader */
    rfollower f[CLUSTER_MAX_REPLICAS];
    int nf;
    int isr_busy; /* a cluster_update_isr is in flight */
    /* follower */
    int step;
    int64_t fetch_offset;
    int64_t retry_at_ms; /* a refused fetch waits until then */
    fetcher *fetcher;
    /* Bumped when the topic leaves the view: a role job of the old incarnation
     * finishing later applies nothing (rjob.incarnation). */
    uint32_t incarnation;
} rpart;

/* The rpart of (topic, partition), or NULL. */
rpart *replica_find(broker *b, const char *topic, int32_t partition);
/* The partition's handle when the topic is registered, else NULL. */
bpart *replica_part(broker *b, const rpart *rp);

/* Produce: KAFKA_NONE when this broker may append (applied leader at the
 * view's epoch, registered) and, for acks=-1, the ISR has at least
 * min.insync.replicas members; *epoch = the leader epoch appended at.
 * Single node (no cluster): always KAFKA_NONE. */
int16_t replica_check_produce(broker *b, btopic *t, int32_t partition, int acks,
                              int32_t *epoch);
/* After an append as leader: the HW moves when the ISR is only this broker. */
void replica_on_append(broker *b, const char *topic, int32_t partition);
/* acks=-1: KAFKA_NONE when the HW passed end_offset (exclusive) at `epoch`,
 * -2 to keep waiting, else the error to answer (leadership lost:
 * NOT_LEADER_OR_FOLLOWER; ISR below min.insync.replicas:
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND). */
int replica_ack_state(broker *b, btopic *t, int32_t partition, int32_t epoch,
                      int64_t end_offset);
/* The offset consumers may read below (the HW in a cluster, the log end on
 * the single node), from an offsets() answer. */
int64_t replica_visible_end(const broker *b, const tsp_offsets *off);

/* A Fetch from replica `replica_id` (>= 0) at fetch_offset: KAFKA_NONE when
 * this broker leads the partition at current_leader_epoch and the sender is
 * one of its replicas; records the follower's log end, moves the HW,
 * maintains the ISR. */
int16_t replica_follower_fetch(broker *b, const char *topic, int32_t partition,
                               int32_t replica_id, int32_t current_leader_epoch,
                               int64_t fetch_offset);
/* Loop tick: ISR shrink of lagging followers, acks=-1 timeouts. */
void replica_tick(broker *b);
/* Stops every fetcher and joins its thread (main thread, after the loop);
 * no role job or fetcher starts after it. replica_free_all frees the rparts
 * once no job can finish any more (after the pools are drained). */
void replica_shutdown(broker *b);
void replica_free_all(broker *b);

/* ---- fetcher.c: the follower's connection to one leader ------------ */
/* The fetcher of leader broker `leader_id` (started on first use); NULL
 * when it cannot be started or the broker is not live. */
fetcher *fetcher_for(broker *b, int32_t leader_id);
/* Adds rp (step and fetch offset as set) or updates its entry. */
void fetcher_set(broker *b, fetcher *f, rpart *rp);
void fetcher_remove(broker *b, fetcher *f, rpart *rp);
/* Live brokers changed: fetchers of dead or moved brokers reconnect. */
void fetcher_on_brokers(broker *b);
void fetcher_shutdown_all(broker *b);

/* Called by fetcher.c on the loop with a leader's answers. */
void replica_apply_fetch(broker *b, fetcher *f, const kc_fetch_part *req, size_t nreq,
                         const kc_fetch_resp *resp);
void replica_apply_epochs(broker *b, fetcher *f, const kc_fetch_part *req, size_t nreq,
                          const kc_epoch_resp *resp);
int32_t fetcher_leader(const fetcher *f);

#endif
