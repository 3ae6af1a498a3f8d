/*
 * topic_keys.c — Kafka's topic-level configs (TopicConfig of Kafka 3.x):
 * which engine setting each one overrides, and how the others are kept.
 *
 * Two kinds:
 *  - engine keys (segment.bytes -> log.segment.bytes, retention.ms ->
 *    log.retention.ms, ...): validated by the engine's property table and
 *    applied to the topic's partitions;
 *  - stored keys (min.insync.replicas, unclean.leader.election.enable,
 *    cleanup.policy, ...): validated here and kept verbatim with the
 *    topic's overrides (locally and in the bucket) for the host, which
 *    gives them their Kafka meaning where it has one (the cluster reads
 *    min.insync.replicas). Values the engine cannot honour are refused
 *    with the reason (cleanup.policy=compact: no compaction), Kafka's
 *    defaults are always accepted.
 * Thread: any (the table is constant).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

#define L_MAX "9223372036854775807"

static const ts_topic_key g_keys[] = {
    /* name, engine key, type, Kafka default, min, allowed, why others are refused, doc */
    {"cleanup.policy", NULL, TS_TK_LIST, "delete", 0, "delete",
     "log compaction is not supported (only cleanup.policy=delete)",
     "Old segments are deleted by retention; compaction is not supported."},
    {"compression.type", NULL, TS_TK_STRING, "producer", 0, "producer",
     "batches are stored as the producer compressed them; the broker never recompresses",
     "Batches keep the producer's compression."},
    {"delete.retention.ms", NULL, TS_TK_LONG, "86400000", 0, NULL, NULL,
     "Kafka's tombstone retention for compacted topics; kept, no effect (no compaction)."},
    {"file.delete.delay.ms", NULL, TS_TK_LONG, "60000", 0, NULL, NULL,
     "Kafka's delay before deleting a file; kept, no effect (files go when unreferenced)."},
    {"flush.messages", "log.flush.interval.messages", TS_TK_LONG, NULL, 0, NULL, NULL,
     "fsync after this many records."},
    {"flush.ms", "log.flush.interval.ms", TS_TK_LONG, NULL, 0, NULL, NULL,
     "fsync when unflushed data is older than this (ms)."},
    {"follower.replication.throttled.replicas", NULL, TS_TK_LIST, "", 0, NULL, NULL,
     "Kafka's replication throttle list; kept for the cluster."},
    {"index.interval.bytes", "log.index.interval.bytes", TS_TK_INT, NULL, 0, NULL, NULL,
     "Bytes between entries of the offset and time indexes."},
    {"leader.replication.throttled.replicas", NULL, TS_TK_LIST, "", 0, NULL, NULL,
     "Kafka's replication throttle list; kept for the cluster."},
    {"local.retention.bytes", "log.local.retention.bytes", TS_TK_LONG, NULL, 0, NULL, NULL,
     "Bytes of uploaded segments kept on local disk; -2 = retention.bytes."},
    {"local.retention.ms", "log.local.retention.ms", TS_TK_LONG, NULL, 0, NULL, NULL,
     "Age after which uploaded segments leave local disk (ms); -2 = retention.ms."},
    {"max.compaction.lag.ms", NULL, TS_TK_LONG, L_MAX, 1, NULL, NULL,
     "Kafka's compaction lag; kept, no effect (no compaction)."},
    {"max.message.bytes", "message.max.bytes", TS_TK_INT, NULL, 0, NULL, NULL,
     "Largest record batch accepted."},
    {"message.downconversion.enable", NULL, TS_TK_BOOLEAN, "true", 0, NULL, NULL,
     "Kafka's down-conversion switch; kept, no effect (Fetch below v4 is not served)."},
    {"message.format.version", NULL, TS_TK_STRING, "3.0-IV1", 0, NULL, NULL,
     "Deprecated in Kafka 3; kept, no effect (batches are always v2)."},
    {"message.timestamp.after.max.ms", NULL, TS_TK_LONG, L_MAX, 0, NULL, NULL,
     "Kafka's bound on future timestamps; kept, not enforced."},
    {"message.timestamp.before.max.ms", NULL, TS_TK_LONG, L_MAX, 0, NULL, NULL,
     "Kafka's bound on past timestamps; kept, not enforced."},
    {"message.timestamp.difference.max.ms", NULL, TS_TK_LONG, L_MAX, 0, NULL, NULL,
     "Kafka's bound on timestamp skew; kept, not enforced."},
    {"message.timestamp.type", NULL, TS_TK_STRING, "CreateTime", 0, "CreateTime",
     "LogAppendTime would rewrite batch timestamps, which the engine does not do",
     "Records keep the producer's timestamps (CreateTime)."},
    {"min.cleanable.dirty.ratio", NULL, TS_TK_DOUBLE, "0.5", 0, NULL, NULL,
     "Kafka's compaction trigger; kept, no effect (no compaction)."},
    {"min.compaction.lag.ms", NULL, TS_TK_LONG, "0", 0, NULL, NULL,
     "Kafka's compaction lag; kept, no effect (no compaction)."},
    {"min.insync.replicas", NULL, TS_TK_INT, "1", 1, NULL, NULL,
     "Replicas that must acknowledge an acks=all write; kept for the cluster."},
    {"preallocate", NULL, TS_TK_BOOLEAN, "false", 0, NULL, NULL,
     "Kafka's segment preallocation; kept, no effect."},
    {"remote.log.copy.disable", NULL, TS_TK_BOOLEAN, "false", 0, "false",
     "stopping uploads of a tiered topic is not supported",
     "Kafka 3.9's switch to stop copying to the remote tier."},
    {"remote.log.delete.on.disable", NULL, TS_TK_BOOLEAN, "false", 0, "false",
     "deleting the remote tier when tiering is disabled is not supported",
     "Kafka 3.9's switch to delete the remote tier when disabling it."},
    {"remote.storage.enable", "remote.storage.enable", TS_TK_BOOLEAN, NULL, 0, NULL, NULL,
     "Upload closed segments to the object store."},
    {"retention.bytes", "log.retention.bytes", TS_TK_LONG, NULL, 0, NULL, NULL,
     "Total retention per partition in bytes; -1 = unlimited."},
    {"retention.ms", "log.retention.ms", TS_TK_LONG, NULL, 0, NULL, NULL,
     "Total retention per partition by batch max timestamp (ms); -1 = unlimited."},
    {"segment.bytes", "log.segment.bytes", TS_TK_INT, NULL, 0, NULL, NULL,
     "Roll the active segment beyond this size."},
    {"segment.index.bytes", NULL, TS_TK_INT, "10485760", 4, NULL, NULL,
     "Kafka's preallocated index size; kept, no effect (indexes grow as needed)."},
    {"segment.jitter.ms", NULL, TS_TK_LONG, "0", 0, NULL, NULL,
     "Kafka's roll jitter; kept, no effect."},
    {"segment.ms", "log.segment.ms", TS_TK_LONG, NULL, 0, NULL, NULL,
     "Roll the active segment when its first batch is older than this (ms)."},
    {"unclean.leader.election.enable", NULL, TS_TK_BOOLEAN, "false", 0, NULL, NULL,
     "Whether an out-of-sync replica may become leader; kept for the cluster."},
};
#define NKEYS (sizeof(g_keys) / sizeof(g_keys[0]))

const ts_topic_key *ts_topic_key_at(size_t i) { return i < NKEYS ? &g_keys[i] : NULL; }

const ts_topic_key *ts_topic_key_find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(g_keys[i].name, name)) return &g_keys[i];
    return NULL;
}

const ts_topic_key *ts_topic_key_for_engine(const char *engine_key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (g_keys[i].engine_key && !strcmp(g_keys[i].engine_key, engine_key)) return &g_keys[i];
    return NULL;
}

/* "a|b|c" holds the n bytes at v. */
static int allowed_has(const char *allowed, const char *v, size_t vl)
{
    for (const char *a = allowed; *a;) {
        size_t l = strcspn(a, "|");
        if (l == vl && !strncmp(a, v, l)) return 1;
        a += l + (a[l] ? 1 : 0);
    }
    return 0;
}

static ts_status check_number(const ts_topic_key *k, const char *v, char *errstr, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    if (k->type == TS_TK_DOUBLE) {
        double d = strtod(v, &end);
        if (*v && !*end && !errno && d >= 0 && d <= 1) return TS_OK;
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid value '%s' for %s: expected a number from 0 to 1", v, k->name);
    }
    long long x = strtoll(v, &end, 10);
    long long max = k->type == TS_TK_INT ? 2147483647LL : INT64_MAX;
    if (*v && !*end && !errno && x >= k->min && x <= max) return TS_OK;
    return ts_err_set(errstr, errlen, TS_E_CONFIG,
                      "invalid value '%s' for %s: expected an integer from %lld to %lld", v,
                      k->name, (long long)k->min, max);
}

/* Each element of a comma list (a single value for other types) must be
 * one of k->allowed. */
static ts_status check_allowed(const ts_topic_key *k, const char *v, char *errstr, size_t errlen)
{
    const char *p = v;
    do {
        size_t l = k->type == TS_TK_LIST ? strcspn(p, ",") : strlen(p);
        const char *s = p;
        size_t sl = l;
        while (sl && *s == ' ') s++, sl--;
        while (sl && s[sl - 1] == ' ') sl--;
        if (!allowed_has(k->allowed, s, sl))
            return ts_err_set(errstr, errlen, TS_E_CONFIG, "%s=%s refused: %s", k->name, v,
                              k->why);
        p += l + (p[l] ? 1 : 0);
    } while (*p);
    return TS_OK;
}

ts_status ts_topic_key_check(const ts_topic_key *k, const char *v, char *errstr, size_t errlen)
{
    if (k->type == TS_TK_BOOLEAN && strcmp(v, "true") && strcmp(v, "false"))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid value '%s' for %s: expected true or false", v, k->name);
    if (k->type == TS_TK_INT || k->type == TS_TK_LONG || k->type == TS_TK_DOUBLE) {
        ts_status st = check_number(k, v, errstr, errlen);
        if (st) return st;
    }
    return k->allowed ? check_allowed(k, v, errstr, errlen) : TS_OK;
}

/* The supported names, for an error about an unknown one. */
void ts_topic_key_names(char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < NKEYS && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", g_keys[i].name);
}
