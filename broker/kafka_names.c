/*
 * kafka_names.c — Kafka's broker settings under Kafka's names, so that a
 * stock Kafka server.properties starts tierbroker.
 *
 * Three kinds of Kafka keys besides the broker's and the engine's own:
 *  - aliases: Kafka names (and their unit variants) of a setting the
 *    engine has under another name or unit: log.retention.hours/minutes ->
 *    log.retention.ms, log.roll.hours/ms -> log.segment.ms,
 *    remote.log.storage.system.enable -> remote.storage.enable, log.dir ->
 *    log.dirs. As in Kafka, the most precise one set wins (ms over minutes
 *    over hours; the engine's own name over every alias).
 *  - settings that have no meaning here (KRaft quorum, ZooKeeper, thread
 *    counts, socket buffers, internal topics' replication, ...): accepted,
 *    one WARN each naming it, never passed on.
 *  - everything else goes to the plugin, which refuses a key it does not
 *    know (a typo fails at startup).
 * The same table answers DescribeConfigs' synonyms (admin_configs.c).
 * Thread: loop thread (startup, admin requests).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"

/* Aliases, for each target most precise first (Kafka's precedence). */
static const bkafka_alias g_aliases[] = {
    {"log.retention.minutes", "log.retention.ms", 60000},
    {"log.retention.hours", "log.retention.ms", 3600000},
    {"log.roll.ms", "log.segment.ms", 1},
    {"log.roll.hours", "log.segment.ms", 3600000},
    {"remote.log.storage.system.enable", "remote.storage.enable", 0},
    {"log.dir", "log.dirs", 0},
};
#define NALIASES (sizeof(g_aliases) / sizeof(g_aliases[0]))

typedef struct ignored_key {
    const char *name; /* ending in '.': every key with this prefix */
    const char *why;
} ignored_key;

static const ignored_key g_ignored[] = {
    {"process.roles", "KRaft roles: tierbroker is its own controller"},
    {"controller.quorum.voters", "KRaft quorum"},
    {"controller.quorum.bootstrap.servers", "KRaft quorum"},
    {"controller.quorum.", "KRaft quorum"},
    {"controller.listener.names", "its listeners are not served: no KRaft controller"},
    {"inter.broker.listener.name", "no inter-broker traffic on a single node"},
    {"security.inter.broker.protocol", "no inter-broker traffic on a single node"},
    {"metadata.log.dir", "no KRaft metadata log"},
    {"metadata.log.", "no KRaft metadata log"},
    {"num.network.threads", "one network loop"},
    {"num.recovery.threads.per.data.dir", "partitions are recovered by the engine"},
    {"num.replica.fetchers", "no replication on a single node"},
    {"num.replica.alter.log.dirs.threads", "one data directory"},
    {"background.threads", "the engine's background task"},
    {"socket.send.buffer.bytes", "kernel socket buffer defaults are used"},
    {"socket.receive.buffer.bytes", "kernel socket buffer defaults are used"},
    {"socket.listen.backlog.size", "the kernel's default backlog is used"},
    {"offsets.topic.replication.factor", "offsets live in .broker/offsets, not in a topic"},
    {"offsets.topic.num.partitions", "offsets live in .broker/offsets, not in a topic"},
    {"offsets.topic.segment.bytes", "offsets live in .broker/offsets, not in a topic"},
    {"offsets.retention.minutes", "committed offsets are kept until deleted"},
    {"transaction.state.log.", "no transactions"},
    {"transaction.", "no transactions"},
    {"share.coordinator.", "no share groups"},
    {"log.retention.check.interval.ms",
     "retention runs on every remote.log.manager.task.interval.ms tick"},
    {"log.flush.scheduler.interval.ms", "log.flush.interval.ms is checked on every engine tick"},
    {"log.flush.offset.checkpoint.interval.ms", "the engine checkpoints on its own"},
    {"log.flush.start.offset.checkpoint.interval.ms", "the engine checkpoints on its own"},
    {"log.cleaner.", "no log compaction"},
    {"log.roll.jitter.ms", "no roll jitter"},
    {"log.roll.jitter.hours", "no roll jitter"},
    {"log.preallocate", "segments are not preallocated"},
    {"replica.", "no replication on a single node"},
    {"auto.leader.rebalance.enable", "no leader election on a single node"},
    {"leader.imbalance.", "no leader election on a single node"},
    {"group.coordinator.", "the single-node group coordinator"},
    {"zookeeper.", "no ZooKeeper"},
    {"remote.log.metadata.manager.", "the engine keeps remote log metadata itself"},
    {"remote.log.storage.manager.", "the engine is the remote storage manager"},
    {"kafka.metrics.", "metrics: see admin.listeners (/metrics)"},
    {"metric.reporters", "metrics: see admin.listeners (/metrics)"},
    {"metrics.", "metrics: see admin.listeners (/metrics)"},
    {"confluent.", "a Confluent Platform setting"},
};
#define NIGNORED (sizeof(g_ignored) / sizeof(g_ignored[0]))

static const ignored_key *ignored_find(const char *key)
{
    for (size_t i = 0; i < NIGNORED; i++) {
        const char *n = g_ignored[i].name;
        size_t l = strlen(n);
        if (n[l - 1] == '.' ? !strncmp(key, n, l) : !strcmp(key, n)) return &g_ignored[i];
    }
    return NULL;
}

int bkafka_is_ignored(const char *key) { return ignored_find(key) != NULL; }

const bkafka_alias *bkafka_alias_find(const char *key)
{
    for (size_t i = 0; i < NALIASES; i++)
        if (!strcmp(g_aliases[i].name, key)) return &g_aliases[i];
    return NULL;
}

const bkafka_alias *bkafka_aliases_of(const char *target, size_t *n)
{
    size_t first = NALIASES;
    *n = 0;
    for (size_t i = 0; i < NALIASES; i++)
        if (!strcmp(g_aliases[i].target, target)) {
            if (first == NALIASES) first = i;
            (*n)++;
        }
    return *n ? &g_aliases[first] : NULL;
}

int bkafka_consumed(const char *key) { return bkafka_is_ignored(key) || bkafka_alias_find(key); }

/* value * scale, checked: "-1" stays -1 (Kafka's "unlimited"). */
int bkafka_alias_value(const bkafka_alias *a, const char *value, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    if (!a->scale) {
        snprintf(out, outlen, "%s", value);
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || !*value || *end || v < -1 || (v > 0 && v > INT64_MAX / a->scale)) {
        snprintf(err, errlen, "%s=%s: expected an integer from -1 to %lld", a->name, value,
                 (long long)(INT64_MAX / a->scale));
        return -1;
    }
    snprintf(out, outlen, "%lld", v < 0 ? -1LL : v * (long long)a->scale);
    return 0;
}

/* Sets each alias target the file did not set from its most precise alias
 * that it did. */
static int apply_aliases(bconfig *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NALIASES; i++) {
        const bkafka_alias *a = &g_aliases[i];
        if (i > 0 && !strcmp(g_aliases[i - 1].target, a->target)) continue; /* group done */
        int target_set = 0;
        for (size_t k = 0; k < c->n; k++)
            if (!strcmp(c->items[k].key, a->target)) target_set = 1;
        for (size_t j = i; j < NALIASES && !strcmp(g_aliases[j].target, a->target); j++) {
            const char *v = NULL;
            for (size_t k = 0; k < c->n; k++)
                if (!strcmp(c->items[k].key, g_aliases[j].name)) v = c->items[k].value;
            if (!v) continue;
            char conv[64];
            if (bkafka_alias_value(&g_aliases[j], v, conv, sizeof conv, err, errlen)) return -1;
            if (target_set) {
                blog_unlimited("INFO", "%s=%s: %s is set too and wins (Kafka's precedence)", g_aliases[j].name,
                          v, a->target);
                continue;
            }
            if (bconfig_set(c, a->target, conv) != 0) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            blog_unlimited("INFO", "%s=%s (Kafka's name) sets %s=%s", g_aliases[j].name, v, a->target, conv);
            target_set = 1;
        }
    }
    return 0;
}

int bkafka_apply(bconfig *c, char *err, size_t errlen)
{
    /* In a cluster the keys ignored "on a single node" (inter-broker
     * listener, replica.*) apply: no WARN for them there. */
    int cluster = 0;
    for (size_t k = 0; k < c->n; k++)
        if (!strcmp(c->items[k].key, "metadata.store.url") && c->items[k].value[0]) cluster = 1;
    for (size_t k = 0; k < c->n; k++) {
        const ignored_key *ig = ignored_find(c->items[k].key);
        /* In a cluster a key of the broker's own table is used too
         * (offsets.topic.num.partitions, leader.imbalance.*), even where a
         * prefix here names its neighbours. */
        if (ig && cluster &&
            (strstr(ig->why, "on a single node") || bconfig_is_table_key(c->items[k].key)))
            continue;
        if (ig)
            blog_unlimited("WARN", "%s=%s: a Kafka setting that does not apply to tierbroker (%s); ignored",
                      c->items[k].key, c->items[k].value, ig->why);
    }
    const char *dirs = NULL;
    if (apply_aliases(c, err, errlen)) return -1;
    for (size_t k = 0; k < c->n; k++)
        if (!strcmp(c->items[k].key, "log.dirs")) dirs = c->items[k].value;
    if (dirs && strchr(dirs, ',')) {
        snprintf(err, errlen,
                 "log.dirs=%s: tierbroker keeps one data directory (the bucket holds the rest); "
                 "name one",
                 dirs);
        return -1;
    }
    return 0;
}

/* controller.listener.names: those listeners belong to a KRaft controller,
 * which tierbroker does not run. */
int bkafka_is_controller_listener(const bconfig *c, const char *listener)
{
    const char *names = NULL;
    for (size_t k = 0; k < c->n; k++)
        if (!strcmp(c->items[k].key, "controller.listener.names")) names = c->items[k].value;
    const char *sep = strstr(listener, "://");
    if (!names || !sep) return 0;
    size_t nl = (size_t)(sep - listener);
    for (const char *p = names; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t l = strcspn(p, ", ");
        if (l && l == nl && !strncasecmp(p, listener, nl)) return 1;
        p += l;
    }
    return 0;
}
