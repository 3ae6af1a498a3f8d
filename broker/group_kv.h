/*
 * group_kv.h — the group coordinator's records in etcd, as keys and JSON
 * values (issue 10): which __consumer_offsets partition a group hashes to,
 * the committed-offset keys and values, how an OffsetCommit is cut into
 * transactions, the producer-id counter's value. Pure (libc + cJSON): no
 * loop, no etcd call; unit-tested alone (unit.broker_group_kv).
 *
 * Keys, under the cluster prefix "/<cluster.name>/" (cluster.h):
 *   groups/<group>/<topic>/<partition>   one committed offset
 *       {"offset": n, "leader_epoch": n, "metadata": "...", "commit_timestamp": ms}
 *   producer_ids                         {"next": n}: the first id no block holds
 * Numbers are JSON numbers while they are exact in a double (|n| < 2^53) and
 * decimal strings beyond; both forms are read. A group id may hold '/', a
 * topic name and a partition number cannot, so a key is split from its end.
 *
 * Thread: any; no shared state.
 */
#ifndef TS_BROKER_GROUP_KV_H
#define TS_BROKER_GROUP_KV_H

#include <stddef.h>
#include <stdint.h>

/* Java's String.hashCode of the UTF-16 form of the UTF-8 string s (bytes
 * that are not UTF-8 count as U+FFFD, as Java's decoder makes them). */
int32_t group_java_hash(const char *s);
/* Kafka's GroupMetadataManager.partitionFor: Utils.abs(hash) % n (n > 0). */
int32_t group_partition_for(const char *group, int32_t n);

/* "<prefix>groups/<group>/<topic>/<p>" into buf; its length, or -1 when it
 * does not fit. prefix ends with '/'. */
int group_kv_key(char *buf, size_t cap, const char *prefix, const char *group, const char *topic,
                 int32_t partition);
/* Splits a key read under "<prefix>groups/" (prefix_len bytes of it are the
 * prefix with "groups/"). 0 with *group and *topic malloc'd, -1 when the key
 * is not one of ours. */
int group_kv_key_parse(const char *key, size_t len, size_t prefix_len, char **group, char **topic,
                       int32_t *partition);

typedef struct group_kv_value {
    int64_t offset;
    int32_t leader_epoch; /* -1: unknown */
    char *metadata;       /* NULL: none */
    int64_t commit_ms;    /* wall clock of the commit */
} group_kv_value;
/* The JSON text, malloc'd (NULL: out of memory). */
char *group_kv_encode(const group_kv_value *v);
/* 0 with v filled (v->metadata malloc'd or NULL), -1 when it is not such a
 * value. */
int group_kv_decode(const char *json, size_t len, group_kv_value *v);

/* How many of the next records (their encoded key + value sizes in
 * sizes[0..n)) go into one transaction: at most max_ops, and at most
 * max_bytes of keys and values together (always at least one, so a record
 * too big alone fails on its own in etcd). n = 0 gives 0. */
size_t group_kv_chunk(const size_t *sizes, size_t n, size_t max_ops, size_t max_bytes);

/* producer_ids' value: {"next": n}. */
char *pid_block_encode(int64_t next);
int pid_block_decode(const char *json, size_t len, int64_t *next);

#endif
