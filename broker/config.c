/*
 * config.c — tierbroker's properties: one table of the broker's own keys
 * (name, default, bounds, description) drives validation and --help; every
 * other key of the file goes to the storage plugin, which rejects the ones
 * it does not know (so a typo fails at startup rather than being ignored).
 *
 * File syntax as Kafka's: `key=value` or `key: value`, `#`/`!` comments —
 * parsed by common/properties.c (ts_props), the engine's parser too.
 * Thread: loop thread at startup only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "common/properties.h"

typedef struct bkey {
    const char *name;
    const char *def;
    int is_int;
    int64_t min, max;
    int also_engine; /* passed to the plugin as well */
    const char *doc;
} bkey;

/* Keys of g_keys whose values are a closed set: "a|b" accepted, `why` the
 * reason Kafka's other values are refused (NULL: not a value at all). */
typedef struct bchoice {
    const char *name, *allowed, *why;
} bchoice;

static const bchoice g_choices[] = {
    {"auto.create.topics.enable", "true|false", NULL},
    {"remote.log.recover.topics", "true|false", NULL},
    {"allow.everyone.if.no.acl.found", "true|false", NULL},
    {"unclean.leader.election.enable", "true|false", NULL},
    {"compression.type", "producer",
     "tierbroker keeps the producer's compression and never recompresses"},
    {"log.cleanup.policy", "delete", "log compaction is not supported"},
    {"log.message.timestamp.type", "CreateTime",
     "LogAppendTime would rewrite batches, which tierbroker does not do"},
    {"log.message.downconversion.enable", "true|false", NULL},
    {"fetch.zero.copy.enable", "true|false", NULL},
};
#define NCHOICES (sizeof(g_choices) / sizeof(g_choices[0]))

static const bkey g_keys[] = {
    {"listeners", "PLAINTEXT://127.0.0.1:9092", 0, 0, 0, 0,
     "Comma-separated NAME://host:port the broker listens on (host empty = all); NAME's "
     "security protocol (listener.security.protocol.map) is PLAINTEXT, SSL, SASL_PLAINTEXT "
     "or SASL_SSL."},
    {"listener.security.protocol.map",
     "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", 0, 0, 0, 0,
     "Listener name -> security protocol (NAME:PROTOCOL,...), as Kafka's."},
    {"advertised.listeners", "", 0, 0, 0, 0,
     "NAME://host:port per listener name, the address Metadata gives a client that came in "
     "on that listener; a plain host:port entry applies to the first listener; a listener "
     "without an entry advertises its own address (0.0.0.0 as 127.0.0.1)."},
    /* TLS (tls.c): each key may also be given per listener as
     * listener.name.<lower-case listener name>.<key>, as in Kafka. */
    {"ssl.keystore.type", "PEM", 0, 0, 0, 0, "Keystore format; only PEM."},
    {"ssl.keystore.location", "", 0, 0, 0, 0,
     "PEM file holding the private key and the certificate chain (leaf first) of SSL and "
     "SASL_SSL listeners; reloaded when it changes."},
    {"ssl.keystore.certificate.chain", "", 0, 0, 0, 0,
     "Inline PEM certificate chain (instead of ssl.keystore.location)."},
    {"ssl.keystore.key", "", 0, 0, 0, 0, "Inline PEM private key (with ssl.keystore.certificate.chain)."},
    {"ssl.key.password", "", 0, 0, 0, 0, "Password of an encrypted private key."},
    {"ssl.truststore.type", "PEM", 0, 0, 0, 0, "Truststore format; only PEM."},
    {"ssl.truststore.location", "", 0, 0, 0, 0,
     "PEM bundle of the CAs client certificates are checked against; reloaded when it changes."},
    {"ssl.client.auth", "none", 0, 0, 0, 0,
     "none | requested | required: whether clients must present a certificate signed by the "
     "truststore (mTLS); its subject is the principal on SSL listeners."},
    {"ssl.principal.mapping.rules", "DEFAULT", 0, 0, 0, 0,
     "Certificate subject (RFC 2253) -> principal: comma-separated DEFAULT or "
     "RULE:pattern/replacement/[L|U] (POSIX extended regex, $1..$9), first match wins."},
    {"ssl.enabled.protocols", "TLSv1.2,TLSv1.3", 0, 0, 0, 0,
     "TLS versions accepted (TLSv1.2 and/or TLSv1.3)."},
    {"ssl.cipher.suites", "", 0, 0, 0, 0,
     "Comma-separated cipher suites (IANA names as Kafka, or OpenSSL names); empty = "
     "OpenSSL's defaults."},
    /* SASL (sasl.c); users: <log.dirs>/.broker/users, `tierctl users`. */
    {"sasl.enabled.mechanisms", "GSSAPI", 0, 0, 0, 0,
     "Mechanisms of SASL_PLAINTEXT and SASL_SSL listeners: PLAIN, SCRAM-SHA-256, "
     "SCRAM-SHA-512 (Kafka's default GSSAPI is not supported: set this with a SASL listener)."},
    {"connections.max.reauth.ms", "0", 1, 0, INT64_MAX, 0,
     "SASL session lifetime told to clients (KIP-368); a connection past it that has not "
     "re-authenticated is closed at its next request. 0 = sessions never expire."},
    {"super.users", "", 0, 0, 0, 0,
     "Semicolon-separated principals (User:name) allowed everything by the authorizer "
     "(authorizer.class.name); without one, the principals allowed to describe and alter "
     "SCRAM credentials (empty = everyone, as Kafka without an authorizer)."},
    /* ACLs (acl.c, admin_acls.c). */
    {"authorizer.class.name", "", 0, 0, 0, 0,
     "Empty = no authorization (every principal may use every API). "
     "kafka.security.authorizer.AclAuthorizer or "
     "org.apache.kafka.metadata.authorizer.StandardAuthorizer = the built-in ACL authorizer: "
     "Kafka's ACLs (CreateAcls/DescribeAcls/DeleteAcls) on every API, kept in "
     "<log.dirs>/.broker/acls (in a cluster: etcd). Any other value is a startup error."},
    {"allow.everyone.if.no.acl.found", "false", 0, 0, 0, 0,
     "With an authorizer: whether a resource no ACL applies to is open to everyone "
     "(true|false)."},
    {"ssl.handshake.timeout.ms", "10000", 1, 100, 600000, 0,
     "A TLS handshake must finish within this long of the accept, else the connection is "
     "closed (stalled handshakes cannot pile up)."},
    {"ssl.reload.check.ms", "10000", 1, 0, 86400000, 0,
     "How often the keystore and truststore files are checked for changes (0 = never); new "
     "connections use the new certificates."},
    {"log.dirs", "/tmp/tierstore-data", 0, 0, 0, 1,
     "Data directory (shared with the engine); broker metadata lives in <log.dirs>/.broker."},
    {"plugin.path", "", 0, 0, 0, 0,
     "Storage plugin; empty = libtierstore-plugin.so next to the binary, then "
     "../broker-plugin/, then the dynamic linker's search path."},
    {"node.id", "-1", 1, -1, 1000000, 0,
     "This broker's id in Metadata; -1 = 0 on a single node. Required (>= 0) in a cluster "
     "(metadata.store.url set), unique among the cluster's brokers."},
    {"broker.id", "-1", 1, -1, 1000000, 0, "Alias of node.id (used when >= 0)."},
    {"cluster.id", "tierstore-cluster", 0, 0, 0, 0,
     "Cluster id reported in Metadata by a single node (a cluster reports an id derived "
     "from cluster.name)."},
    {"num.partitions", "1", 1, 1, 100000, 0, "Partitions of an auto-created topic."},
    {"auto.create.topics.enable", "true", 0, 0, 0, 0,
     "Create a topic on first Metadata request for it (true|false)."},
    {"remote.log.recover.topics", "false", 0, 0, 0, 0,
     "At startup, adopt every topic the bucket holds (its topic descriptors and partition "
     "manifests) that the broker does not know, with its partition count and configs, so "
     "that a broker started on an empty data dir lists them in Metadata before any is named "
     "(true|false). Runs on the topic pool; needs a plugin of ABI minor 4."},
    {"default.replication.factor", "1", 1, 1, 16, 0,
     "Replicas of a topic created with replication factor -1 (and of auto-created topics) "
     "in a cluster; a single node always has 1."},
    /* The cluster (cluster.c, controller.c): unset metadata.store.url = one node. */
    {"metadata.store.url", "", 0, 0, 0, 0,
     "etcd://host:port[,host:port...]: the cluster's coordination store (broker "
     "registrations, the controller, topics, partition leaders and ISRs). Empty = a "
     "single-node broker keeping its metadata under <log.dirs>/.broker."},
    {"cluster.name", "tierstore", 0, 0, 0, 0,
     "The cluster's key prefix in etcd (/<cluster.name>/...): brokers with the same store "
     "and name form one cluster."},
    {"broker.rack", "", 0, 0, 0, 0,
     "This broker's rack (Metadata; CreateTopics spreads a partition's replicas across "
     "racks)."},
    {"broker.session.timeout.ms", "9000", 1, 1000, 600000, 0,
     "The broker's etcd lease: a broker not heard from for this long is dead to the cluster "
     "(its partitions get new leaders); a broker that notices it lost its lease stops "
     "leading and registers again."},
    {"unclean.leader.election.enable", "false", 0, 0, 0, 0,
     "When no in-sync replica of a partition is alive, elect another live replica (data "
     "loss) instead of leaving the partition offline (true|false)."},
    {"offsets.topic.num.partitions", "50", 1, 1, 1000, 0,
     "Partitions of the pseudo-topic __consumer_offsets, whose leaders coordinate the "
     "consumer groups hashed onto them."},
    {"auto.leader.rebalance.enable", "true", 0, 0, 0, 0,
     "The controller moves leadership back to each partition's preferred (first) replica "
     "once it is in the ISR again (true|false)."},
    {"leader.imbalance.check.interval.seconds", "300", 1, 1, 86400, 0,
     "How often the controller checks for partitions not led by their preferred replica."},
    {"metadata.store.timeout.ms", "15000", 1, 1000, 600000, 0,
     "At startup in a cluster: how long to try reaching etcd and registering before giving "
     "up with an error."},
    {"num.io.threads", "2", 1, 1, 64, 0, "Threads for hot reads and for fsyncs (each pool)."},
    {"num.cold.read.threads", "4", 1, 1, 64, 0,
     "Threads for reads that go to the object store; separate so cold consumers never "
     "delay hot ones. Each cold partition of a Fetch is a job of its own, and at most half "
     "of these threads (at least one) read one partition at a time."},
    {"remote.fetch.max.wait.ms", "500", 1, 1, 600000, 0,
     "How long a Fetch waits for its cold partitions' reads before it is answered with what "
     "is done (a partition still reading gives no records that time and is fetched again), "
     "as Kafka's (KIP-1018)."},
    {"group.initial.rebalance.delay.ms", "300", 1, 0, 600000, 0,
     "The first rebalance of an empty group waits this long for more members."},
    {"group.min.session.timeout.ms", "1000", 1, 1, 86400000, 0,
     "Smallest session.timeout.ms a consumer may ask for."},
    {"group.max.session.timeout.ms", "1800000", 1, 1, 86400000, 0,
     "Largest session.timeout.ms a consumer may ask for."},
    {"offset.metadata.max.bytes", "4096", 1, 0, 1048576, 0,
     "Largest metadata string of one committed offset; a bigger one gets "
     "OFFSET_METADATA_TOO_LARGE."},
    {"socket.request.max.bytes", "104857600", 1, 1024, 1073741824, 0,
     "Largest request frame; a bigger one closes the connection."},
    {"queued.max.request.bytes", "104857600", 1, -1, INT64_MAX, 0,
     "Memory for requests being read, all connections together (each connection's first "
     "64 KiB excepted); a connection whose next request does not fit stops being read "
     "until memory is freed. -1 = unbounded (Kafka's default); otherwise at least "
     "socket.request.max.bytes."},
    {"queued.max.response.bytes", "16777216", 1, 65536, INT64_MAX, 0,
     "Per connection: unsent response bytes at which the broker stops reading that "
     "connection's requests until the client has read them (a client that sends without "
     "reading only fills its own queue)."},
    {"fetch.max.bytes", "57671680", 1, 1024, 2147483647, 0,
     "Largest Fetch response: a request's MaxBytes is clamped to it. The first partition "
     "with data still returns one whole batch if that is larger (up to message.max.bytes), "
     "as in Kafka."},
    {"produce.backpressure.max.ms", "30000", 1, 0, 600000, 0,
     "Longest a Produce is held while its partition is at its local disk bound (uploads "
     "behind); the request's TimeoutMs applies when shorter. Then REQUEST_TIMED_OUT "
     "(retriable). While held, the connection's later requests wait."},
    {"connections.max.idle.ms", "600000", 1, 100, 2147483647, 0,
     "Close a connection after this long without a byte read or written (and no "
     "request of it still being answered)."},
    {"request.timeout.ms", "30000", 1, 100, 2147483647, 0,
     "A request must arrive completely within this long of its first byte, else the "
     "connection is closed (a client trickling a frame cannot hold a socket forever); "
     "the default matches Kafka clients' own request.timeout.ms."},
    {"fetch.zero.copy.enable", "true", 0, 0, 0, 0,
     "Consumers' hot Fetch data goes from the segment files to the socket with sendfile "
     "(plaintext listeners; TLS ones read it into the TLS session) instead of through a "
     "copy in the broker's memory. false: always copy (the plugin's read)."},
    /* Kafka's broker-wide topic defaults: accepted under Kafka's names with
     * the values that hold here (kafka_names.c has the other Kafka keys). */
    {"compression.type", "producer", 0, 0, 0, 0,
     "Batches are stored as the producer compressed them (Kafka's default)."},
    {"log.cleanup.policy", "delete", 0, 0, 0, 0,
     "Old segments are deleted by retention (Kafka's default)."},
    {"log.message.timestamp.type", "CreateTime", 0, 0, 0, 0,
     "Records keep the producer's timestamps (Kafka's default)."},
    {"log.message.downconversion.enable", "true", 0, 0, 0, 0,
     "Kafka's; no effect: Fetch below v4 (the only reason to down-convert) is not served."},
    /* Replication in a cluster (replica.c, fetcher.c), Kafka's names and defaults. */
    {"min.insync.replicas", "1", 1, 1, 16, 0,
     "acks=all: a Produce is refused with NOT_ENOUGH_REPLICAS while a partition's ISR has "
     "fewer members (a topic's own min.insync.replicas overrides it)."},
    {"replica.lag.time.max.ms", "30000", 1, 100, 86400000, 0,
     "A follower that has not caught up with the leader's log end for this long leaves "
     "the ISR; it rejoins once it reaches the high watermark."},
    {"replica.fetch.wait.max.ms", "500", 1, 0, 60000, 0,
     "How long a follower's Fetch waits at the leader for new data."},
    {"replica.fetch.max.bytes", "1048576", 1, 1024, 1073741824, 0,
     "Bytes a follower asks per partition in one Fetch (one larger batch still comes)."},
    {"replica.fetch.response.max.bytes", "10485760", 1, 1024, 1073741824, 0,
     "Bytes a follower asks in one Fetch over all its partitions of that leader."},
    {"replica.socket.timeout.ms", "30000", 1, 1000, 600000, 0,
     "A follower's connection to its leader is given up (and opened again) when a request "
     "is not answered within this long."},
    /* Inter-broker security in a cluster (fetcher.c, tls.c's client side). */
    {"inter.broker.listener.name", "", 0, 0, 0, 0,
     "In a cluster, the listener followers fetch from (the leader's registered address on "
     "it, with its security protocol); unset = the listener named by "
     "security.inter.broker.protocol. Set at most one of the two, as Kafka."},
    {"security.inter.broker.protocol", "PLAINTEXT", 0, 0, 0, 0,
     "In a cluster, names the inter-broker listener when inter.broker.listener.name is "
     "unset (the listener of that name: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)."},
    {"sasl.mechanism.inter.broker.protocol", "GSSAPI", 0, 0, 0, 0,
     "SASL mechanism of a follower logging in to its leader on a SASL inter-broker listener: "
     "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default GSSAPI is not supported). The "
     "broker's own user and password come from "
     "listener.name.<listener>.<mechanism>.sasl.jaas.config (username=\"...\" "
     "password=\"...\"), and that user must exist in every broker's users file."},
    {"ssl.endpoint.identification.algorithm", "https", 0, 0, 0, 0,
     "A follower connecting to an SSL/SASL_SSL inter-broker listener checks that the leader's "
     "certificate names its advertised host (https); empty = no host check (the "
     "certificate must still chain to ssl.truststore.location)."},
    /* Admin HTTP listener (admin.c). */
    {"admin.listeners", "", 0, 0, 0, 0,
     "http://host:port of the admin HTTP listener (GET /metrics, /healthz, /readyz, "
     "/v1/partitions/<topic>/<partition>); empty = off. Bind it to loopback or a private "
     "network: it has no authentication."},
};
#define NKEYS (sizeof(g_keys) / sizeof(g_keys[0]))

static const bkey *find_key(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(g_keys[i].name, k)) return &g_keys[i];
    return NULL;
}

int bconfig_is_table_key(const char *key) { return find_key(key) != NULL; }

int bconfig_is_broker_key(const char *key)
{
    if (!strncmp(key, "listener.name.", 14)) return 1; /* per-listener ssl.*, sasl.* */
    const bkey *k = find_key(key);
    return (k && !k->also_engine) || bkafka_consumed(key);
}

/* "a|b|c" holds v. */
static int allowed_has(const char *allowed, const char *v)
{
    size_t vl = strlen(v);
    for (const char *a = allowed; *a;) {
        size_t l = strcspn(a, "|");
        if (l == vl && !strncmp(a, v, l)) return 1;
        a += l + (a[l] ? 1 : 0);
    }
    return 0;
}

int bconfig_set(bconfig *c, const char *key, const char *value)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->items[i].key, key)) {
            char *v = strdup(value);
            if (!v) return -1;
            free(c->items[i].value);
            c->items[i].value = v;
            return 0;
        }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        bprop *n = realloc(c->items, cap * sizeof(*n));
        if (!n) return -1;
        c->items = n;
        c->cap = cap;
    }
    c->items[c->n].key = strdup(key);
    c->items[c->n].value = strdup(value);
    if (!c->items[c->n].key || !c->items[c->n].value) return -1;
    c->n++;
    return 0;
}

const char *bconfig_lookup(const bconfig *c, const char *key)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->items[i].key, key)) return c->items[i].value;
    return NULL;
}

const char *bconfig_key_at(size_t i, const char **def, const char **doc, int *is_int,
                           int *also_engine)
{
    if (i >= NKEYS) return NULL;
    *def = g_keys[i].def;
    *doc = g_keys[i].doc;
    *is_int = g_keys[i].is_int;
    *also_engine = g_keys[i].also_engine;
    return g_keys[i].name;
}

const char *bconfig_get(const bconfig *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->items[i].key, key)) return c->items[i].value;
    const bkey *k = find_key(key);
    return k ? k->def : NULL;
}

int64_t bconfig_int(const bconfig *c, const char *key)
{
    const char *v = bconfig_get(c, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

/* Largest properties file read (the engine's limit for its own files). */
#define BCONFIG_FILE_MAX (16u << 20)

/* The whole file, NUL-terminated; NULL with err set when it cannot be read
 * or exceeds BCONFIG_FILE_MAX. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open properties file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    int ok = 1;
    for (;;) {
        if (cap - len < 4096) {
            if (cap >= BCONFIG_FILE_MAX) {
                snprintf(err, errlen, "properties file %s is larger than %u bytes", path,
                         BCONFIG_FILE_MAX);
                ok = 0;
                break;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *t = realloc(text, ncap);
            if (!t) {
                snprintf(err, errlen, "out of memory");
                ok = 0;
                break;
            }
            text = t;
            cap = ncap;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "cannot read properties file %s: %s", path,
                         strerror(errno));
                ok = 0;
            }
            break;
        }
    }
    fclose(f);
    if (!ok) {
        free(text);
        return NULL;
    }
    text[len] = 0;
    return text;
}

static int load_entry(void *opaque, int lineno, char *key, char *value)
{
    (void)lineno;
    return bconfig_set((bconfig *)opaque, key, value) != 0 ? 1 : 0;
}

/* The line syntax is common/properties.c's, shared with the engine. */
int bconfig_load(bconfig *c, const char *path, char *err, size_t errlen)
{
    char *text = read_file(path, err, errlen);
    if (!text) return -1;
    int lineno = 0;
    const char *bad = NULL;
    int rc = ts_props_parse(text, load_entry, c, &lineno, &bad);
    if (rc == TS_PROPS_SYNTAX)
        snprintf(err, errlen, "%s:%d: expected key=value, got '%s'", path, lineno, bad);
    else if (rc)
        snprintf(err, errlen, "out of memory");
    free(text);
    return rc ? -1 : 0;
}

int bconfig_validate(const bconfig *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const bkey *k = &g_keys[i];
        const char *v = bconfig_get(c, k->name);
        if (k->is_int) {
            char *end = NULL;
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno || !*v || *end || x < k->min || x > k->max) {
                snprintf(err, errlen, "%s=%s: expected an integer in [%lld, %lld]", k->name, v,
                         (long long)k->min, (long long)k->max);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < NCHOICES; i++) {
        const bchoice *ch = &g_choices[i];
        const char *v = bconfig_get(c, ch->name);
        if (!allowed_has(ch->allowed, v)) {
            snprintf(err, errlen, "%s=%s: %s (expected %s)", ch->name, v,
                     ch->why ? ch->why : "not a valid value", ch->allowed);
            return -1;
        }
    }
    int64_t qmax = bconfig_int(c, "queued.max.request.bytes");
    if (qmax >= 0 && qmax < bconfig_int(c, "socket.request.max.bytes")) {
        snprintf(err, errlen,
                 "queued.max.request.bytes=%lld is below socket.request.max.bytes=%lld: the "
                 "largest request could never be read (raise it, or -1 = unbounded)",
                 (long long)qmax, (long long)bconfig_int(c, "socket.request.max.bytes"));
        return -1;
    }
    static const char *const bools[] = {"auto.create.topics.enable",
                                        "unclean.leader.election.enable",
                                        "auto.leader.rebalance.enable"};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        const char *v = bconfig_get(c, bools[i]);
        if (strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(err, errlen, "%s=%s: expected true or false", bools[i], v);
            return -1;
        }
    }
    const char *url = bconfig_get(c, "metadata.store.url");
    if (*url && bconfig_int(c, "node.id") < 0 && bconfig_int(c, "broker.id") < 0) {
        snprintf(err, errlen,
                 "metadata.store.url is set (a cluster) but node.id is not: give every broker "
                 "of the cluster its own node.id (>= 0)");
        return -1;
    }
    if (*url && strncmp(url, "etcd://", 7)) {
        snprintf(err, errlen, "metadata.store.url=%s: expected etcd://host:port[,host:port...]",
                 url);
        return -1;
    }
    return 0;
}

static const char *const g_sec_names[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

const char *bsecurity_name(int proto)
{
    return proto >= 0 && proto < 4 ? g_sec_names[proto] : "?";
}

/* The protocol mapped to listener name `name` by listener.security.protocol.map,
 * copied trimmed into p; 0 when the name is not in the map. */
static int map_lookup(const bconfig *c, const char *name, char *p, size_t plen)
{
    char map[4096];
    snprintf(map, sizeof map, "%s", bconfig_get(c, "listener.security.protocol.map"));
    char *save = NULL;
    for (char *e = strtok_r(map, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        while (*e == ' ') e++;
        char *colon = strchr(e, ':');
        if (!colon) continue;
        *colon = 0;
        if (strcasecmp(e, name)) continue;
        const char *proto = colon + 1;
        while (*proto == ' ') proto++;
        snprintf(p, plen, "%s", proto);
        for (size_t n = strlen(p); n && p[n - 1] == ' ';) p[--n] = 0;
        return 1;
    }
    return 0;
}

/* The security protocol of one `listeners` entry, through
 * listener.security.protocol.map (Kafka's default map when unset). */
int bconfig_listener_protocol(const bconfig *c, const char *listener, char *name, size_t namelen,
                              char *err, size_t errlen)
{
    const char *sep = strstr(listener, "://");
    if (!sep) {
        snprintf(name, namelen, "PLAINTEXT");
        return BSEC_PLAINTEXT;
    }
    size_t nl = (size_t)(sep - listener);
    if (nl == 0 || nl >= namelen || nl > 63) {
        snprintf(err, errlen, "listeners: '%s' has no listener name before ://", listener);
        return -1;
    }
    memcpy(name, listener, nl);
    name[nl] = 0;
    char p[64];
    if (!map_lookup(c, name, p, sizeof p)) {
        snprintf(err, errlen,
                 "listeners: listener name %s (in '%s') is not in listener.security.protocol.map "
                 "(%s)",
                 name, listener, bconfig_get(c, "listener.security.protocol.map"));
        return -1;
    }
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(p, g_sec_names[i])) return i;
    snprintf(err, errlen,
             "listeners: '%s' maps to security protocol %s in listener.security.protocol.map; "
             "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
             listener, p);
    return -1;
}

void bconfig_help(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "  %-36s (%s, default \"%s\")\n      %s\n", g_keys[i].name,
                g_keys[i].is_int ? "int" : "string", g_keys[i].def, g_keys[i].doc);
}

void bconfig_free(bconfig *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].key);
        free(c->items[i].value);
    }
    free(c->items);
    memset(c, 0, sizeof(*c));
}
