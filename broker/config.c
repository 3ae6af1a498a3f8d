/*
 * config.c — tierbroker's properties: one table of the broker's own keys
 * (name, default, bounds, description) drives validation and --help; every
 * other key of the file goes to the storage plugin, which rejects the ones
 * it does not know (so a typo fails at startup rather than being ignored).
 *
 * File syntax as Kafka's: `key=value` or `key: value`, `#`/`!` comments.
 * Thread: loop thread at startup only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

typedef struct bkey {
    const char *name;
    const char *def;
    int is_int;
    int64_t min, max;
    int also_engine; /* passed to the plugin as well */
    const char *doc;
} bkey;

static const bkey g_keys[] = {
    {"listeners", "PLAINTEXT://127.0.0.1:9092", 0, 0, 0, 0,
     "Comma-separated PLAINTEXT://host:port the broker listens on (host empty = all)."},
    {"advertised.listeners", "", 0, 0, 0, 0,
     "host:port clients are told to connect to; empty = the first listener."},
    {"log.dirs", "/tmp/tierstore-data", 0, 0, 0, 1,
     "Data directory (shared with the engine); broker metadata lives in <log.dirs>/.broker."},
    {"plugin.path", "", 0, 0, 0, 0,
     "Storage plugin; empty = libtierstore-plugin.so next to the binary, then "
     "../broker-plugin/, then the dynamic linker's search path."},
    {"node.id", "0", 1, 0, 1000000, 0, "This broker's id in Metadata."},
    {"broker.id", "-1", 1, -1, 1000000, 0, "Alias of node.id (used when >= 0)."},
    {"cluster.id", "tierstore-cluster", 0, 0, 0, 0, "Cluster id reported in Metadata."},
    {"num.partitions", "1", 1, 1, 100000, 0, "Partitions of an auto-created topic."},
    {"auto.create.topics.enable", "true", 0, 0, 0, 0,
     "Create a topic on first Metadata request for it (true|false)."},
    {"default.replication.factor", "1", 1, 1, 1, 0, "Always 1 on this single-node broker."},
    {"num.io.threads", "2", 1, 1, 64, 0, "Threads for hot reads and for fsyncs (each pool)."},
    {"num.cold.read.threads", "4", 1, 1, 64, 0,
     "Threads for reads that go to the object store; separate so cold consumers never "
     "delay hot ones."},
    {"group.initial.rebalance.delay.ms", "300", 1, 0, 600000, 0,
     "The first rebalance of an empty group waits this long for more members."},
    {"group.min.session.timeout.ms", "1000", 1, 1, 86400000, 0,
     "Smallest session.timeout.ms a consumer may ask for."},
    {"group.max.session.timeout.ms", "1800000", 1, 1, 86400000, 0,
     "Largest session.timeout.ms a consumer may ask for."},
    {"socket.request.max.bytes", "104857600", 1, 1024, 1073741824, 0,
     "Largest request frame; a bigger one closes the connection."},
    {"connections.max.idle.ms", "600000", 1, 100, 2147483647, 0,
     "Close a connection after this long without a byte read or written (and no "
     "request of it still being answered)."},
    {"request.timeout.ms", "30000", 1, 100, 2147483647, 0,
     "A request must arrive completely within this long of its first byte, else the "
     "connection is closed (a client trickling a frame cannot hold a socket forever); "
     "the default matches Kafka clients' own request.timeout.ms."},
};
#define NKEYS (sizeof(g_keys) / sizeof(g_keys[0]))

static const bkey *find_key(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(g_keys[i].name, k)) return &g_keys[i];
    return NULL;
}

int bconfig_is_broker_key(const char *key)
{
    const bkey *k = find_key(key);
    return k && !k->also_engine;
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

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

int bconfig_load(bconfig *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open properties file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        char *sep = strpbrk(s, "=:");
        if (!sep) {
            snprintf(err, errlen, "%s:%d: expected key=value, got '%s'", path, lineno, s);
            fclose(f);
            return -1;
        }
        *sep = 0;
        if (bconfig_set(c, trim(s), trim(sep + 1)) != 0) {
            fclose(f);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    fclose(f);
    return 0;
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
    const char *ac = bconfig_get(c, "auto.create.topics.enable");
    if (strcmp(ac, "true") && strcmp(ac, "false")) {
        snprintf(err, errlen, "auto.create.topics.enable=%s: expected true or false", ac);
        return -1;
    }
    return 0;
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
