/*
 * main.c — tierbroker: a single-node Kafka-protocol broker whose storage is
 * the tierstore plugin (include/tierstore_plugin.h, loaded with dlopen).
 *
 *   tierbroker server.properties [--override key=value]...
 *   tierbroker --help
 *
 * Startup order: properties -> plugin -> engine -> broker metadata
 * (topics, committed offsets) -> worker pools -> listeners -> loop.
 * SIGINT/SIGTERM stop the loop; in-flight jobs finish, then the engine
 * closes (flushing every partition).
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "replica.h"

static broker *g_broker;

static void on_signal(int sig)
{
    (void)sig;
    if (g_broker) g_broker->stop = 1;
}

static void usage(FILE *out, const tsp_plugin *pl)
{
    fprintf(out,
            "usage: tierbroker server.properties [--override key=value]...\n"
            "       tierbroker --help | --version\n\n"
            "A single-node Kafka-protocol broker storing partitions through the tierstore\n"
            "plugin. The properties file uses Kafka's syntax; keys below are the broker's,\n"
            "every other key is passed to the storage plugin.\n\n"
            "Broker settings:\n");
    bconfig_help(out);
    if (pl) {
        char *desc = NULL;
        size_t n = 0;
        if (pl->config_describe(&desc, &n) == TSP_OK) {
            fprintf(out, "\nStorage settings (plugin %s %s):\n%.*s", pl->impl_name,
                    pl->impl_version, (int)n, desc);
            pl->buffer_free(desc);
        }
    } else {
        fprintf(out, "\n(Storage settings are listed when the plugin can be loaded.)\n");
    }
}

/* The default plugin: next to the binary, then where `cmake --install` puts
 * it relative to the binary (<prefix>/lib/<arch>/tierstore/), then the build
 * tree's broker-plugin/, then the dynamic linker's path. */
static void *load_plugin(const char *configured, const tsp_plugin **out, char *err, size_t errlen)
{
    char candidates[4][PATH_MAX];
    int n = 0;
    if (configured && *configured) {
        snprintf(candidates[n++], PATH_MAX, "%s", configured);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len > 0) {
            exe[len] = 0;
            char *dir = dirname(exe);
            snprintf(candidates[n++], PATH_MAX, "%s/libtierstore-plugin.so", dir);
            snprintf(candidates[n++], PATH_MAX, "%s/%s/libtierstore-plugin.so", dir,
                     TS_PLUGIN_RELDIR);
            snprintf(candidates[n++], PATH_MAX, "%s/../broker-plugin/libtierstore-plugin.so", dir);
        }
        snprintf(candidates[n++], PATH_MAX, "libtierstore-plugin.so");
    }
    char last[PATH_MAX + 256] = "";
    for (int i = 0; i < n; i++) {
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(last, sizeof last, "%s", dlerror());
            continue;
        }
        tsp_entry_fn entry = (tsp_entry_fn)dlsym(h, TSP_ENTRY_SYMBOL);
        if (!entry) {
            snprintf(last, sizeof last, "%s has no %s symbol", candidates[i], TSP_ENTRY_SYMBOL);
            dlclose(h);
            continue;
        }
        const tsp_plugin *pl = entry(TSP_ABI_MAJOR, last, sizeof last);
        if (!pl || pl->struct_size < offsetof(tsp_plugin, partition_delete) + sizeof(void *)) {
            if (pl) snprintf(last, sizeof last, "%s: function table too small", candidates[i]);
            dlclose(h);
            continue;
        }
        *out = pl;
        blog_info("storage plugin %s %s (ABI %u.%u) from %s", pl->impl_name, pl->impl_version,
                  pl->abi_major, pl->abi_minor, candidates[i]);
        return h;
    }
    snprintf(err, errlen, "cannot load the storage plugin (%.600s); set plugin.path", last);
    return NULL;
}

/* "PLAINTEXT://host:port" or "host:port" -> host, port. */
static int parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *p = strstr(s, "://");
    p = p ? p + 3 : s;
    const char *colon = strrchr(p, ':');
    if (!colon) return -1;
    size_t hl = (size_t)(colon - p);
    if (hl >= hostlen) return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end = NULL;
    long v = strtol(colon + 1, &end, 10);
    if (!end || *end || v < 0 || v > 65535) return -1;
    *port = (int)v;
    return 0;
}

/* Each startup step below returns the process exit code to stop with, or 0
 * to go on: 2 for a usage or configuration error, 1 for a failure to start. */

/* --override key=value pairs into b->cfg (they win over the file), the
 * properties path, --help (*want_help = 1) and --version (2). */
static int parse_args(broker *b, int argc, char **argv, const char **props_path, int *want_help)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            *want_help = 1;
        } else if (!strcmp(argv[i], "--version")) {
            *want_help = 2;
        } else if (!strcmp(argv[i], "--override") && i + 1 < argc) {
            char *kv = argv[++i];
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "--override %s: expected key=value\n", kv);
                return 2;
            }
            *eq = 0;
            bconfig_set(&b->cfg, kv, eq + 1);
            *eq = '=';
        } else if (!*props_path && argv[i][0] != '-') {
            *props_path = argv[i];
        } else {
            fprintf(stderr, "unexpected argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    return 0;
}

/* The properties file under the command-line overrides, validated; a
 * listener that asks for security is refused before anything opens, so it
 * never comes up as plaintext. */
static int load_properties(broker *b, const char *props_path)
{
    char err[1024] = "";
    bconfig file = {0};
    if (bconfig_load(&file, props_path, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 2;
    }
    for (size_t i = 0; i < file.n; i++) {
        int overridden = 0;
        for (size_t k = 0; k < b->cfg.n; k++)
            if (!strcmp(b->cfg.items[k].key, file.items[i].key)) overridden = 1;
        if (!overridden) bconfig_set(&b->cfg, file.items[i].key, file.items[i].value);
    }
    bconfig_free(&file);
    /* The engine validates both keys (they are its settings too); the broker
     * writes its own lines the same way from the start. */
    blog_set_format(bconfig_get(&b->cfg, "log.format"));
    const char *level = bconfig_get(&b->cfg, "log.level");
    if (level && !strcmp(level, "debug")) g_blog_debug = 1;
    if (bkafka_apply(&b->cfg, err, sizeof err) != 0 ||
        bconfig_validate(&b->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s: %s\n", props_path, err);
        return 2;
    }
    char lst[2048];
    snprintf(lst, sizeof lst, "%s", bconfig_get(&b->cfg, "listeners"));
    char *save = NULL;
    for (char *tok = strtok_r(lst, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (bkafka_is_controller_listener(&b->cfg, tok)) {
            blog_warn("listeners: %s is a KRaft controller listener (controller.listener.names); "
                      "not served",
                      tok);
            continue;
        }
        char name[64];
        int proto = bconfig_listener_protocol(&b->cfg, tok, name, sizeof name, err, sizeof err);
        if (proto < 0) {
            fprintf(stderr, "tierbroker: %s: %s\n", props_path, err);
            return 2;
        }
        if (proto == BSEC_SASL_PLAINTEXT || proto == BSEC_SASL_SSL) b->sasl_needed = 1;
    }
    return 0;
}

/* Loads the plugin and opens the engine with every key that is not the
 * broker's own (log.dirs is both). */
static int open_engine(broker *b)
{
    char err[1024] = "";
    b->dl = load_plugin(bconfig_get(&b->cfg, "plugin.path"), &b->pl, err, sizeof err);
    if (!b->dl) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 2;
    }
    tsp_property *props = calloc(b->cfg.n + 1, sizeof(*props));
    size_t n = 0;
    int has_dirs = 0;
    for (size_t i = 0; props && i < b->cfg.n; i++) {
        if (bconfig_is_broker_key(b->cfg.items[i].key)) continue;
        if (!strcmp(b->cfg.items[i].key, "log.dirs")) has_dirs = 1;
        props[n].key = b->cfg.items[i].key;
        props[n].value = b->cfg.items[i].value;
        n++;
    }
    if (props && !has_dirs) {
        props[n].key = "log.dirs";
        props[n].value = bconfig_get(&b->cfg, "log.dirs");
        n++;
    }
    tsp_status st =
        props ? b->pl->engine_open(props, n, 0, &b->eng, err, sizeof err) : TSP_E_NOMEM;
    free(props);
    if (st != TSP_OK) {
        fprintf(stderr, "tierbroker: opening the storage engine: %s: %s\n",
                b->pl->status_name(st), err);
        return 1;
    }
    return 0;
}

/* <log.dirs>/.broker and the settings the loop reads as plain fields. */
static int apply_settings(broker *b)
{
    const char *dirs = bconfig_get(&b->cfg, "log.dirs");
    snprintf(b->meta_dir, sizeof b->meta_dir, "%s/.broker", dirs);
    if (mkdir(b->meta_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tierbroker: cannot create %s: %s\n", b->meta_dir, strerror(errno));
        return 1;
    }
    int64_t bid = bconfig_int(&b->cfg, "broker.id");
    b->node_id = (int32_t)(bid >= 0 ? bid : bconfig_int(&b->cfg, "node.id"));
    if (b->node_id < 0) b->node_id = 0; /* a single node; a cluster requires it (validate) */
    b->cluster_mode = *bconfig_get(&b->cfg, "metadata.store.url") != 0;
    snprintf(b->cluster_id, sizeof b->cluster_id, "%s", bconfig_get(&b->cfg, "cluster.id"));
    b->num_partitions = (int32_t)bconfig_int(&b->cfg, "num.partitions");
    b->auto_create = !strcmp(bconfig_get(&b->cfg, "auto.create.topics.enable"), "true");
    b->recover_topics = !strcmp(bconfig_get(&b->cfg, "remote.log.recover.topics"), "true");
    b->initial_rebalance_delay_ms = bconfig_int(&b->cfg, "group.initial.rebalance.delay.ms");
    b->min_session_ms = bconfig_int(&b->cfg, "group.min.session.timeout.ms");
    b->max_session_ms = bconfig_int(&b->cfg, "group.max.session.timeout.ms");
    b->max_request_bytes = (size_t)bconfig_int(&b->cfg, "socket.request.max.bytes");
    b->queued_max_request_bytes = bconfig_int(&b->cfg, "queued.max.request.bytes");
    b->max_queued_response_bytes = (size_t)bconfig_int(&b->cfg, "queued.max.response.bytes");
    b->fetch_max_bytes = bconfig_int(&b->cfg, "fetch.max.bytes");
    b->fetch_copy = strcmp(bconfig_get(&b->cfg, "fetch.zero.copy.enable"), "true") != 0;
    b->produce_hold_max_ms = bconfig_int(&b->cfg, "produce.backpressure.max.ms");
    b->offset_metadata_max = (size_t)bconfig_int(&b->cfg, "offset.metadata.max.bytes");
    b->idle_ms = bconfig_int(&b->cfg, "connections.max.idle.ms");
    b->request_timeout_ms = bconfig_int(&b->cfg, "request.timeout.ms");
    b->handshake_timeout_ms = bconfig_int(&b->cfg, "ssl.handshake.timeout.ms");
    char err[512];
    if (sasl_init(b, b->sasl_needed, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 2;
    }
    if (acl_init(b, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 2;
    }
    return 0;
}

/* epoll + eventfd, the worker pools, then the broker metadata files (whose
 * topics open their partitions). */
static int start_pools(broker *b)
{
    char err[1024] = "";
    if (net_init(b) != 0) {
        fprintf(stderr, "tierbroker: epoll/eventfd: %s\n", strerror(errno));
        return 1;
    }
    int nio = (int)bconfig_int(&b->cfg, "num.io.threads");
    b->hot_pool = bpool_create(b, "hot-read", nio);
    b->io_pool = bpool_create(b, "io", nio);
    b->cold_pool = bpool_create(b, "cold-read", (int)bconfig_int(&b->cfg, "num.cold.read.threads"));
    /* One slow partition holds at most half the cold threads. */
    if (b->cold_pool) {
        int n = (int)bconfig_int(&b->cfg, "num.cold.read.threads") / 2;
        bpool_set_key_limit(b->cold_pool, n > 0 ? n : 1);
    }
    b->remote_fetch_max_wait_ms = bconfig_int(&b->cfg, "remote.fetch.max.wait.ms");
    b->meta_pool = bpool_create(b, "meta", 1);
    /* Topic lookups and creates wait on the bucket (LIST, config PUT,
     * partition recovery): a few threads, so one hung request does not hold
     * every other topic's. */
    b->topic_pool = bpool_create(b, "topic", 4);
    if (!b->hot_pool || !b->io_pool || !b->cold_pool || !b->meta_pool || !b->topic_pool) {
        fprintf(stderr, "tierbroker: cannot start worker threads\n");
        return 1;
    }
    if (bdynamic_load(b, err, sizeof err) != 0 || meta_load(b, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 1;
    }
    if (b->recover_topics) topic_recover_start(b);
    return 0;
}

/* In a cluster: the group coordinator's etcd side (group_cluster.c); after
 * meta_load, whose producer-id counter the cluster's first block passes. */
static int start_group_store(broker *b)
{
    char err[1024] = "";
    if (group_cluster_start(b, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 1;
    }
    return 0;
}

/* advertised.listeners for listener l: its NAME:// entry, else a plain
 * host:port entry for the first listener, else its own address (0.0.0.0
 * and an empty host as 127.0.0.1). */
static int listener_advertise(broker *b, blistener *l, int first)
{
    char adv[2048];
    snprintf(adv, sizeof adv, "%s", bconfig_get(&b->cfg, "advertised.listeners"));
    char *save = NULL;
    for (char *tok = strtok_r(adv, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        const char *sep = strstr(tok, "://");
        size_t nl = sep ? (size_t)(sep - tok) : 0;
        int mine = sep ? nl == strlen(l->name) && !strncasecmp(tok, l->name, nl) : first;
        if (!mine) continue;
        if (parse_hostport(tok, l->adv_host, sizeof l->adv_host, &l->adv_port) != 0) {
            fprintf(stderr, "tierbroker: advertised.listeners: cannot parse '%s'\n", tok);
            return 2;
        }
        return 0;
    }
    snprintf(l->adv_host, sizeof l->adv_host, "%s",
             l->host[0] && strcmp(l->host, "0.0.0.0") ? l->host : "127.0.0.1");
    l->adv_port = l->port;
    return 0;
}

/* One `listeners` entry: bound, its protocol and TLS context set, its
 * advertised address chosen. */
static int open_listener(broker *b, const char *tok)
{
    char err[1024] = "", host[256], name[64];
    int port;
    int proto = bconfig_listener_protocol(&b->cfg, tok, name, sizeof name, err, sizeof err);
    if (proto < 0 || parse_hostport(tok, host, sizeof host, &port) != 0) {
        fprintf(stderr, "tierbroker: listeners: cannot parse '%s' (NAME://host:port)\n", tok);
        return 2;
    }
    btls *tls = NULL;
    if (proto == BSEC_SSL || proto == BSEC_SASL_SSL) {
        tls = tls_create(&b->cfg, name, err, sizeof err);
        if (!tls) {
            fprintf(stderr, "tierbroker: listeners: %s (%s): %s\n", tok, bsecurity_name(proto), err);
            return 2;
        }
    }
    if (net_listen(b, host, port, err, sizeof err) != 0) {
        tls_destroy(tls);
        fprintf(stderr, "tierbroker: %s\n", err);
        return 1;
    }
    blistener *l = &b->listeners[b->nlisteners - 1];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->proto = proto;
    l->tls = tls;
    return listener_advertise(b, l, b->nlisteners == 1);
}

/* Binds every listener; b->adv_host/adv_port (the first listener's
 * advertised address) name this broker where no connection is at hand. */
static int open_listeners(broker *b)
{
    char lst[2048];
    snprintf(lst, sizeof lst, "%s", bconfig_get(&b->cfg, "listeners"));
    char *save = NULL;
    int rc;
    for (char *tok = strtok_r(lst, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (bkafka_is_controller_listener(&b->cfg, tok)) continue;
        if ((rc = open_listener(b, tok))) return rc;
    }
    if (b->nlisteners == 0) {
        fprintf(stderr, "tierbroker: listeners is empty\n");
        return 2;
    }
    snprintf(b->adv_host, sizeof b->adv_host, "%s", b->listeners[0].adv_host);
    b->adv_port = b->listeners[0].adv_port;
    return 0;
}

/* The cluster session (metadata.store.url set): registers in etcd, after the
 * listeners so the advertised address is known. A duplicate node.id or an
 * etcd out of reach ends the start with a message. */
static int start_cluster(broker *b)
{
    char err[2048] = "";
    if (cluster_start(b, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        blog_error("%s", err);
        return 1;
    }
    return 0;
}

/* The admin HTTP listener (admin.listeners), after the Kafka listeners so
 * /readyz can be asked as soon as it answers. */
static int start_admin(broker *b)
{
    char err[1024] = "";
    if (badmin_start(b, err, sizeof err) != 0) {
        fprintf(stderr, "tierbroker: %s\n", err);
        return 1;
    }
    return 0;
}

static void install_signals(broker *b)
{
    g_broker = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* After the loop: in-flight jobs finish, then the engine closes (flushing
 * every partition). */
static void shut_down(broker *b)
{
    blog_info("shutting down");
    badmin_stop(b);
    net_shutdown(b);
    fetch_abort_all(b);
    produce_abort_all(b);
    produce_acks_abort_all(b);
    replica_shutdown(b); /* fetcher threads joined before the engine closes */
    cluster_stop(b); /* deregisters: the controller moves leadership at once */
    /* Topic jobs first: their `done` may save the topic list on the meta
     * pool and must run while that pool exists. */
    bpool_destroy(b->topic_pool);
    b->topic_pool = NULL;
    net_drain(b);
    bpool_destroy(b->hot_pool);
    bpool_destroy(b->cold_pool);
    bpool_destroy(b->io_pool);
    bpool_destroy(b->meta_pool);
    net_drain(b);
    group_cluster_stop(b); /* its commits still answered */
    replica_free_all(b);
    group_free_all(b);
    topic_free_all(b);
    sasl_free(b);
    acl_free(b);
    b->pl->engine_close(b->eng);
    blog_info("stopped");
}

int main(int argc, char **argv)
{
    static broker B;
    broker *b = &B;
    const char *props_path = NULL;
    int want_help = 0, rc;
    const char *dbg = getenv("TS_LOG_LEVEL");
    if (dbg && !strcmp(dbg, "debug")) g_blog_debug = 1;

    if ((rc = parse_args(b, argc, argv, &props_path, &want_help))) return rc;
    if (want_help == 2) {
        printf("tierbroker (tierstore) %s\nplugin ABI %d.%d\n", TS_VERSION, TSP_ABI_MAJOR,
               TSP_ABI_MINOR);
        return 0;
    }
    if (want_help) {
        char err[1024] = "";
        void *h = load_plugin(bconfig_get(&b->cfg, "plugin.path"), &b->pl, err, sizeof err);
        usage(stdout, h ? b->pl : NULL);
        return 0;
    }
    if (!props_path) {
        usage(stderr, NULL);
        return 2;
    }
    if ((rc = load_properties(b, props_path)) || (rc = open_engine(b)) ||
        (rc = apply_settings(b)) || (rc = start_pools(b)) || (rc = start_group_store(b)) ||
        (rc = open_listeners(b)) || (rc = start_cluster(b)) || (rc = start_admin(b)))
        return rc;
    install_signals(b);
    blog_info("tierbroker node %d listening on %s, advertised %s:%d, data in %s", b->node_id,
              bconfig_get(&b->cfg, "listeners"), b->adv_host, b->adv_port,
              bconfig_get(&b->cfg, "log.dirs"));
    b->serving = 1;
    net_run(b);
    b->serving = 0;
    shut_down(b);
    return 0;
}
