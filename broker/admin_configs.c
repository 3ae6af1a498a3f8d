/*
 * admin_configs.c — DescribeConfigs (v0-4), AlterConfigs (v0-2) and
 * IncrementalAlterConfigs (v0-1), for topics and for the broker.
 *
 * Values come from the plugin (config_list: every Kafka topic config of a
 * topic, or every engine setting, with the value in effect) and from the
 * broker's own properties; where each comes from is answered as Kafka's
 * ConfigSource:
 *   DYNAMIC_TOPIC_CONFIG   the topic overrides it (CreateTopics, AlterConfigs)
 *   DYNAMIC_BROKER_CONFIG  changed while running (AlterConfigs on the broker;
 *                          kept in .broker/dynamic-configs, applied again at
 *                          startup over the properties file)
 *   STATIC_BROKER_CONFIG   set in the properties file (or --override)
 *   DEFAULT_CONFIG         nobody set it
 * Synonyms list the whole chain, most precise first: retention.ms (topic)
 * <- log.retention.ms (dynamic, static) <- log.retention.minutes,
 * log.retention.hours (static; kafka_names.c's aliases) <- the default.
 *
 * Topic alters replace (AlterConfigs) or edit (IncrementalAlterConfigs:
 * SET, DELETE, and APPEND/SUBTRACT for list-valued configs) the topic's
 * override set through the plugin's topic_alter_config, which validates,
 * persists (locally and in the bucket) and applies it. Broker alters take
 * the settings the engine may change while running (rows flagged
 * TSP_CONFIG_DYNAMIC: segment, flush and retention defaults,
 * message.max.bytes), under their engine or Kafka names (log.roll.ms,
 * log.retention.hours, ... via the aliases); any other key answers
 * INVALID_REQUEST naming it (read-only: set it in the properties file and
 * restart). validate_only checks and changes nothing.
 *
 * Every plugin call runs on the topic pool (a topic alter PUTs to the
 * bucket; config_list takes the engine lock, which a partition recovery
 * may hold); the answer is written on the loop, in `done`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define TS_MIN_INT32 (-2147483647 - 1)
#define CFG_TYPE_BOOLEAN 1
#define CFG_TYPE_STRING 2
#define CFG_TYPE_INT 3
#define CFG_TYPE_LIST 7

typedef struct cfg_res {
    int8_t type;
    char *name;
    int16_t err;
    char msg[512];
    int32_t nentries; /* describe: -1 = every key */
    bprop *entries;   /* alters: value NULL = delete */
    int8_t *ops;
    tsp_config_info *rows; /* describe: the plugin's rows */
    size_t nrows, row_size;
    bconfig dyn; /* broker alters: the dynamic set after success */
} cfg_res;

typedef struct cfg_op {
    bjob j;
    broker *b;
    reply r;
    int synonyms, docs, validate_only;
    int32_t n;
    cfg_res *res;
    bconfig dyn; /* snapshot of b->dyn (broker alters) */
} cfg_op;

static void op_free(broker *b, cfg_op *o)
{
    for (int32_t i = 0; i < o->n; i++) {
        cfg_res *s = &o->res[i];
        free(s->name);
        for (int32_t k = 0; s->entries && k < s->nentries; k++) {
            free(s->entries[k].key);
            free(s->entries[k].value);
        }
        free(s->entries);
        free(s->ops);
        b->pl->buffer_free(s->rows);
        bconfig_free(&s->dyn);
    }
    free(o->res);
    bconfig_free(&o->dyn);
    free(o);
}

static const tsp_config_info *row_at(const cfg_res *s, size_t i)
{
    return (const tsp_config_info *)((const char *)s->rows + i * s->row_size);
}

static const tsp_config_info *row_find(const cfg_res *s, const char *name)
{
    for (size_t i = 0; i < s->nrows; i++)
        if (!strcmp(row_at(s, i)->name, name)) return row_at(s, i);
    return NULL;
}

/* ------------------------------------------------------------ copying in */

static int res_copy(cfg_res *s, const kafka_ConfigResource *in, int describe)
{
    s->type = in->resource_type;
    s->name = strdup(in->resource_name ? in->resource_name : "");
    s->nentries = in->nconfigs;
    if (!s->name) return -1;
    if (in->nconfigs <= 0) return 0;
    s->entries = calloc((size_t)in->nconfigs, sizeof(*s->entries));
    s->ops = calloc((size_t)in->nconfigs, sizeof(*s->ops));
    if (!s->entries || !s->ops) return -1;
    for (int32_t k = 0; k < in->nconfigs; k++) {
        s->entries[k].key = strdup(in->configs[k].name);
        if (!s->entries[k].key) return -1;
        if (!describe && in->configs[k].value &&
            !(s->entries[k].value = strdup(in->configs[k].value)))
            return -1;
        s->ops[k] = in->configs[k].op;
    }
    return 0;
}

static int broker_name_ok(broker *b, const char *name)
{
    char id[16];
    snprintf(id, sizeof id, "%d", b->node_id);
    return !name[0] || !strcmp(name, id);
}

/* Loop: what can be answered without the plugin. */
static void res_precheck(broker *b, cfg_res *s)
{
    if (s->type == KAFKA_RESOURCE_TOPIC) {
        if (!topic_resolve(b, s->name)) {
            s->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(s->msg, sizeof s->msg, "topic '%s' does not exist", s->name);
        }
    } else if (s->type == KAFKA_RESOURCE_BROKER) {
        if (!broker_name_ok(b, s->name)) {
            s->err = KAFKA_INVALID_REQUEST;
            snprintf(s->msg, sizeof s->msg, "broker '%s' is not this broker (node.id %d)",
                     s->name, b->node_id);
        }
    } else {
        s->err = KAFKA_INVALID_REQUEST;
        snprintf(s->msg, sizeof s->msg, "resource type %d is not supported (topic 2, broker 4)",
                 s->type);
    }
}

/* DESCRIBE_CONFIGS or ALTER_CONFIGS on the topic, or on the cluster for
 * the broker resource; 0 with the resource's error set when refused. */
static int res_authorized(broker *b, const reply *r, cfg_res *s, int describe)
{
    int op = describe ? ACL_OP_DESCRIBE_CONFIGS : ACL_OP_ALTER_CONFIGS;
    if (s->type == KAFKA_RESOURCE_TOPIC && !acl_check(b, r, op, ACL_RES_TOPIC, s->name)) {
        s->err = KAFKA_TOPIC_AUTHORIZATION_FAILED;
        snprintf(s->msg, sizeof s->msg, "%s on topic '%s' is needed", acl_op_name(op), s->name);
        return 0;
    }
    if (s->type == KAFKA_RESOURCE_BROKER && !acl_check(b, r, op, ACL_RES_CLUSTER, NULL)) {
        s->err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        snprintf(s->msg, sizeof s->msg, "%s on the cluster is needed", acl_op_name(op));
        return 0;
    }
    return 1;
}

static cfg_op *op_new(broker *b, reply *r, const kafka_ConfigsRequest *q, int describe)
{
    cfg_op *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->b = b;
    o->synonyms = q->include_synonyms;
    o->docs = q->include_documentation;
    o->validate_only = q->validate_only;
    o->res = calloc((size_t)(q->nresources > 0 ? q->nresources : 1), sizeof(*o->res));
    if (!o->res) {
        free(o);
        return NULL;
    }
    for (int32_t i = 0; i < q->nresources; i++) {
        o->n++;
        if (res_copy(&o->res[i], &q->resources[i], describe)) goto oom;
        if (!res_authorized(b, r, &o->res[i], describe)) continue;
        res_precheck(b, &o->res[i]);
    }
    for (size_t i = 0; i < b->dyn.n; i++)
        if (bconfig_set(&o->dyn, b->dyn.items[i].key, b->dyn.items[i].value)) goto oom;
    o->r = *r;
    r->c = NULL;
    return o;
oom:
    op_free(b, o);
    return NULL;
}

static void res_fail(broker *b, cfg_res *s, tsp_status st, const char *err)
{
    s->err = st == TSP_E_CONFIG ? KAFKA_INVALID_CONFIG : kafka_error_from_status(st);
    if (s->err == KAFKA_NONE) s->err = KAFKA_UNKNOWN_SERVER_ERROR;
    snprintf(s->msg, sizeof s->msg, "%s", err && err[0] ? err : b->pl->status_name(st));
}

static int res_list(broker *b, cfg_res *s)
{
    char err[512] = "";
    const char *topic = s->type == KAFKA_RESOURCE_TOPIC ? s->name : NULL;
    tsp_status st = b->pl->config_list(b->eng, topic, &s->rows, &s->nrows, &s->row_size, err,
                                       sizeof err);
    if (st != TSP_OK) res_fail(b, s, st, err);
    return st == TSP_OK ? 0 : -1;
}

/* --------------------------------------------------------- DescribeConfigs */

static void describe_run(bjob *j)
{
    cfg_op *o = (cfg_op *)j;
    for (int32_t i = 0; i < o->n; i++)
        if (!o->res[i].err) res_list(o->b, &o->res[i]);
}

/* Kafka's broker-level name of a stored topic config (the ones config.c
 * knows as Kafka's broker-wide topic defaults). */
static const char *stored_broker_key(const char *topic_key)
{
    static const char *const map[][2] = {
        {"min.insync.replicas", "min.insync.replicas"},
        {"unclean.leader.election.enable", "unclean.leader.election.enable"},
        {"compression.type", "compression.type"},
        {"cleanup.policy", "log.cleanup.policy"},
        {"message.timestamp.type", "log.message.timestamp.type"},
        {"message.downconversion.enable", "log.message.downconversion.enable"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], topic_key)) return map[i][1];
    return NULL;
}

/* One entry as answered: value, source and the broker-level key whose
 * chain backs it (synonyms). */
typedef struct cfg_ent {
    const char *name, *value, *doc;
    const char *broker_key; /* the broker-level setting behind it; NULL none */
    const char *def;
    int8_t source, type;
    int read_only, sensitive;
} cfg_ent;

static void kw_synonym(kw *w, int f, const char *name, const char *value, int8_t source)
{
    kw_str(w, f, name);
    kw_str(w, f, value);
    kw_i8(w, source);
    kw_tags(w, f);
}

/* Whether the static value of key only came from an alias of it in the
 * file (log.retention.hours=168 sets log.retention.ms): then the alias is
 * the synonym, as in Kafka, not the key. */
static int derived_from_alias(broker *b, const char *key, const char *value)
{
    size_t na = 0;
    const bkafka_alias *al = bkafka_aliases_of(key, &na);
    for (size_t i = 0; i < na; i++) {
        const char *v = bconfig_lookup(&b->cfg, al[i].name);
        char conv[64], err[128];
        if (v) return !bkafka_alias_value(&al[i], v, conv, sizeof conv, err, sizeof err) &&
                      !strcmp(conv, value);
    }
    return 0;
}

/* The broker-level chain of key: dynamic, static, static aliases, default. */
static int32_t write_chain(broker *b, kw *w, int f, const char *key, const char *def, int count)
{
    int32_t n = 0;
    const char *v = bconfig_lookup(&b->dyn, key);
    if (v && ++n && !count) kw_synonym(w, f, key, v, KAFKA_SOURCE_DYNAMIC_BROKER_CONFIG);
    v = bconfig_lookup(&b->cfg, key);
    if (v && derived_from_alias(b, key, v)) v = NULL;
    if (v && ++n && !count) kw_synonym(w, f, key, v, KAFKA_SOURCE_STATIC_BROKER_CONFIG);
    size_t na = 0;
    const bkafka_alias *al = bkafka_aliases_of(key, &na);
    for (size_t i = 0; i < na; i++) {
        v = bconfig_lookup(&b->cfg, al[i].name);
        if (v && ++n && !count) kw_synonym(w, f, al[i].name, v, KAFKA_SOURCE_STATIC_BROKER_CONFIG);
    }
    if (def && ++n && !count) kw_synonym(w, f, key, def, KAFKA_SOURCE_DEFAULT_CONFIG);
    return n;
}

static void write_synonyms(broker *b, kw *w, int f, const cfg_ent *e)
{
    int topic = e->source == KAFKA_SOURCE_DYNAMIC_TOPIC_CONFIG;
    const char *key = e->broker_key ? e->broker_key : e->name;
    int32_t n = topic + (e->broker_key || !topic ? write_chain(b, w, f, key, e->def, 1) : 0);
    kw_array(w, f, n);
    if (topic) kw_synonym(w, f, e->name, e->value, KAFKA_SOURCE_DYNAMIC_TOPIC_CONFIG);
    if (e->broker_key || !topic) write_chain(b, w, f, key, e->def, 0);
}

static void write_entry(broker *b, kw *w, int v, int f, const cfg_op *o, const cfg_ent *e)
{
    kw_str(w, f, e->name);
    kw_str(w, f, e->sensitive ? NULL : e->value);
    kw_i8(w, (int8_t)e->read_only);
    if (v == 0) kw_i8(w, e->source == KAFKA_SOURCE_DEFAULT_CONFIG);
    if (v >= 1) kw_i8(w, e->source);
    kw_i8(w, (int8_t)e->sensitive);
    if (v >= 1) {
        if (o->synonyms)
            write_synonyms(b, w, f, e);
        else
            kw_array(w, f, 0);
    }
    if (v >= 3) {
        kw_i8(w, e->type);
        kw_str(w, f, o->docs ? e->doc : NULL);
    }
    kw_tags(w, f);
}

static int wanted(const cfg_res *s, const char *name)
{
    if (s->nentries < 0) return 1;
    for (int32_t k = 0; k < s->nentries; k++)
        if (!strcmp(s->entries[k].key, name)) return 1;
    return 0;
}

static int8_t engine_source(uint32_t flags)
{
    return flags & TSP_CONFIG_ALTERED ? KAFKA_SOURCE_DYNAMIC_BROKER_CONFIG
           : flags & TSP_CONFIG_SET   ? KAFKA_SOURCE_STATIC_BROKER_CONFIG
                                      : KAFKA_SOURCE_DEFAULT_CONFIG;
}

/* A topic row as answered. */
static cfg_ent topic_ent(broker *b, const tsp_config_info *r)
{
    cfg_ent e = {.name = r->name, .value = r->value, .doc = r->doc, .def = r->default_value,
                 .type = (int8_t)r->type, .sensitive = (r->flags & TSP_CONFIG_SENSITIVE) != 0};
    e.broker_key = r->synonym[0] ? r->synonym : stored_broker_key(r->name);
    if (r->flags & TSP_CONFIG_TOPIC_SET) {
        e.source = KAFKA_SOURCE_DYNAMIC_TOPIC_CONFIG;
    } else if (r->synonym[0]) {
        e.source = engine_source(r->flags);
    } else {
        const char *bv = e.broker_key ? bconfig_lookup(&b->cfg, e.broker_key) : NULL;
        e.source = bv ? KAFKA_SOURCE_STATIC_BROKER_CONFIG : KAFKA_SOURCE_DEFAULT_CONFIG;
        if (bv) e.value = bv;
    }
    return e;
}

/* The broker's own topic-level keys, which the storage does not know: in a
 * cluster they are topic configs too (topics/<t>, cluster_alter.c). */
static const struct {
    const char *name, *def, *doc;
    int8_t type;
} broker_topic_rows[] = {
    {"min.insync.replicas", "1", "The fewest in-sync replicas an acks=all write needs.",
     CFG_TYPE_INT},
    {"unclean.leader.election.enable", "false",
     "Whether a replica outside the ISR may become leader (losing records).", CFG_TYPE_BOOLEAN},
};

static int32_t write_broker_topic_entries(broker *b, kw *w, int v, int f, const cfg_op *o,
                                          const cfg_res *s, int count)
{
    btopic *t = b->cluster ? topic_find(b, s->name) : NULL;
    int32_t n = 0;
    for (size_t i = 0; t && i < sizeof broker_topic_rows / sizeof broker_topic_rows[0]; i++) {
        const char *key = broker_topic_rows[i].name;
        if (!wanted(s, key)) continue;
        n++;
        if (count) continue;
        cfg_ent e = {.name = key, .doc = broker_topic_rows[i].doc, .broker_key = key,
                     .def = broker_topic_rows[i].def, .type = broker_topic_rows[i].type};
        for (size_t k = 0; k < t->nconfigs && !e.value; k++)
            if (!strcmp(t->configs[k].key, key)) e.value = t->configs[k].value;
        if (e.value) {
            e.source = KAFKA_SOURCE_DYNAMIC_TOPIC_CONFIG;
        } else if ((e.value = bconfig_lookup(&b->cfg, key))) {
            e.source = KAFKA_SOURCE_STATIC_BROKER_CONFIG;
        } else {
            e.value = e.def;
            e.source = KAFKA_SOURCE_DEFAULT_CONFIG;
        }
        write_entry(b, w, v, f, o, &e);
    }
    return n;
}

static int is_broker_topic_row(const char *name)
{
    for (size_t i = 0; i < sizeof broker_topic_rows / sizeof broker_topic_rows[0]; i++)
        if (!strcmp(broker_topic_rows[i].name, name)) return 1;
    return 0;
}

static int32_t write_topic_entries(broker *b, kw *w, int v, int f, const cfg_op *o,
                                   const cfg_res *s, int count)
{
    int32_t n = 0;
    for (size_t i = 0; i < s->nrows; i++) {
        const tsp_config_info *r = row_at(s, i);
        if (!wanted(s, r->name)) continue;
        /* In a cluster the storage never gets these (etcd holds them): the
         * broker's row below answers, once. */
        if (b->cluster && is_broker_topic_row(r->name)) continue;
        n++;
        if (count) continue;
        cfg_ent e = topic_ent(b, r);
        write_entry(b, w, v, f, o, &e);
    }
    return n + write_broker_topic_entries(b, w, v, f, o, s, count);
}

/* Kafka's PASSWORD-type keys: described as sensitive, with a null value. */
static int broker_key_sensitive(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, "ssl.keystore.key") || strstr(name, "jaas.config") ||
           (n >= 9 && !strcmp(name + n - 9, ".password"));
}

/* Broker rows: the engine's settings, the broker's own (read-only) and the
 * Kafka aliases set in the properties file. */
static int32_t write_broker_entries(broker *b, kw *w, int v, int f, const cfg_op *o,
                                    const cfg_res *s, int count)
{
    int32_t n = 0;
    for (size_t i = 0; i < s->nrows; i++) {
        const tsp_config_info *r = row_at(s, i);
        if (!wanted(s, r->name) || ++n == 0 || count) continue;
        cfg_ent e = {.name = r->name, .value = r->value, .doc = r->doc, .def = r->default_value,
                     .type = (int8_t)r->type, .source = engine_source(r->flags),
                     .read_only = !(r->flags & TSP_CONFIG_DYNAMIC),
                     .sensitive = (r->flags & TSP_CONFIG_SENSITIVE) != 0};
        write_entry(b, w, v, f, o, &e);
    }
    const char *def, *doc, *name;
    int is_int, also_engine;
    for (size_t i = 0; (name = bconfig_key_at(i, &def, &doc, &is_int, &also_engine)); i++) {
        if (also_engine || !wanted(s, name) || ++n == 0 || count) continue;
        const char *set = bconfig_lookup(&b->cfg, name);
        cfg_ent e = {.name = name, .value = set ? set : def, .doc = doc, .def = def,
                     .type = is_int ? CFG_TYPE_INT : CFG_TYPE_STRING, .read_only = 1,
                     .sensitive = broker_key_sensitive(name),
                     .source = set ? KAFKA_SOURCE_STATIC_BROKER_CONFIG : KAFKA_SOURCE_DEFAULT_CONFIG};
        write_entry(b, w, v, f, o, &e);
    }
    for (size_t i = 0; i < b->cfg.n; i++) {
        const bkafka_alias *a = bkafka_alias_find(b->cfg.items[i].key);
        if (!a || !wanted(s, a->name) || ++n == 0 || count) continue;
        const tsp_config_info *t = row_find(s, a->target);
        cfg_ent e = {.name = a->name, .value = b->cfg.items[i].value, .doc = t ? t->doc : "",
                     .type = CFG_TYPE_STRING, .read_only = !t || !(t->flags & TSP_CONFIG_DYNAMIC),
                     .source = KAFKA_SOURCE_STATIC_BROKER_CONFIG};
        write_entry(b, w, v, f, o, &e);
    }
    return n;
}

static void describe_done(bjob *j)
{
    cfg_op *o = (cfg_op *)j;
    broker *b = o->b;
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        cfg_res *s = &o->res[i];
        int topic = s->type == KAFKA_RESOURCE_TOPIC;
        kw_i16(&w, s->err);
        kw_str(&w, f, s->err ? s->msg : NULL);
        kw_i8(&w, s->type);
        kw_str(&w, f, s->name);
        int32_t (*entries)(broker *, kw *, int, int, const cfg_op *, const cfg_res *, int) =
            topic ? write_topic_entries : write_broker_entries;
        kw_array(&w, f, s->err ? 0 : entries(b, &w, v, f, o, s, 1));
        if (!s->err) entries(b, &w, v, f, o, s, 0);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
    op_free(b, o);
}

/* Without the minor-3 entries the plugin cannot answer. */
static int plugin_has_configs(const broker *b)
{
    return TSP_HAS(b->pl, config_list) && TSP_HAS(b->pl, topic_alter_config) &&
           TSP_HAS(b->pl, engine_alter_config);
}

static void op_start(broker *b, cfg_op *o, bjob_fn run, bjob_fn done)
{
    o->j.run = run;
    o->j.done = done;
    if (!plugin_has_configs(b)) {
        for (int32_t i = 0; i < o->n; i++)
            if (!o->res[i].err) {
                o->res[i].err = KAFKA_INVALID_REQUEST;
                snprintf(o->res[i].msg, sizeof o->res[i].msg,
                         "the storage plugin (ABI %u.%u) has no config entries (minor 3)",
                         b->pl->abi_major, b->pl->abi_minor);
            }
        done(&o->j);
        return;
    }
    bpool_submit(b->topic_pool, &o->j);
}

void handle_DescribeConfigs(broker *b, reply *r, kafka_request *q)
{
    cfg_op *o = op_new(b, r, &q->u.configs, 1);
    if (!o) {
        reply_drop(b, r);
        return;
    }
    op_start(b, o, describe_run, describe_done);
}

/* ------------------------------------------------------------ topic alters */

/* Whether the comma list `list` holds the n-byte element e. */
static int list_has(const char *list, const char *e, size_t n)
{
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && !strncmp(p, e, n)) return 1;
        p += l + (p[l] ? 1 : 0);
    }
    return 0;
}

/* APPEND (elements of arg not yet in cur, at the end) or SUBTRACT (cur
 * without the elements of arg) on comma lists. */
static char *list_edit(const char *cur, const char *arg, int append)
{
    size_t cap = strlen(cur) + strlen(arg) + 2;
    char *out = calloc(1, cap);
    if (!out) return NULL;
    for (int pass = 0; pass < 1 + append; pass++)
        for (const char *p = pass ? arg : cur; *p;) {
            size_t l = strcspn(p, ","), len = strlen(out);
            int keep = pass ? !list_has(out, p, l) : append || !list_has(arg, p, l);
            if (l && keep) snprintf(out + len, cap - len, "%s%.*s", len ? "," : "", (int)l, p);
            p += l + (p[l] ? 1 : 0);
        }
    return out;
}

/* The value an IncrementalAlterConfigs entry asks for (APPEND/SUBTRACT on
 * the current list); *val NULL = delete. 0, or -1 with s->err set. */
static int incremental_value(broker *b, cfg_res *s, int k, char **val)
{
    const char *key = s->entries[k].key, *arg = s->entries[k].value;
    int8_t op = s->ops[k];
    *val = NULL;
    if (op == KAFKA_OP_DELETE) return 0;
    if (op == KAFKA_OP_SET) {
        *val = strdup(arg ? arg : "");
        return *val ? 0 : -1;
    }
    if (op != KAFKA_OP_APPEND && op != KAFKA_OP_SUBTRACT) {
        s->err = KAFKA_INVALID_REQUEST;
        snprintf(s->msg, sizeof s->msg, "%s: unknown operation %d", key, op);
        return -1;
    }
    if (!s->rows && res_list(b, s)) return -1;
    const tsp_config_info *row = row_find(s, key);
    if (!row || row->type != CFG_TYPE_LIST) {
        s->err = row ? KAFKA_INVALID_REQUEST : KAFKA_INVALID_CONFIG;
        snprintf(s->msg, sizeof s->msg, "%s: %s", key,
                 row ? "APPEND and SUBTRACT apply to list-valued configs only"
                     : "not a topic config");
        return -1;
    }
    *val = list_edit(row->value, arg ? arg : "", op == KAFKA_OP_APPEND);
    return *val ? 0 : -1;
}

static void topic_alter(broker *b, cfg_res *s, int incremental, int validate_only)
{
    tsp_property *props = calloc((size_t)(s->nentries > 0 ? s->nentries : 1), sizeof(*props));
    char **vals = calloc((size_t)(s->nentries > 0 ? s->nentries : 1), sizeof(*vals));
    size_t n = 0;
    int bad = !props || !vals;
    for (int32_t k = 0; !bad && k < s->nentries; k++) {
        if (!incremental && !s->entries[k].value) continue; /* AlterConfigs: absent = default */
        if (incremental && incremental_value(b, s, k, &vals[k])) {
            bad = 1;
            break;
        }
        props[n].key = s->entries[k].key;
        props[n].value = incremental ? vals[k] : s->entries[k].value;
        n++;
    }
    if (!bad && b->cluster) {
        /* A topic's configs live in etcd (topics/<t>): written there, every
         * broker's storage follows from its watch (cluster_alter.c). */
        int16_t e = cluster_alter_topic_configs(b, s->name, props, n, !incremental,
                                                validate_only, s->msg, sizeof s->msg);
        if (e) s->err = e;
    } else if (!bad) {
        char err[512] = "";
        uint32_t flags = (incremental ? 0 : TSP_ALTER_REPLACE) |
                         (validate_only ? TSP_ALTER_VALIDATE_ONLY : 0);
        tsp_status st = b->pl->topic_alter_config(b->eng, s->name, props, n, flags, err, sizeof err);
        if (st != TSP_OK) res_fail(b, s, st, err);
    } else if (!s->err) {
        s->err = KAFKA_UNKNOWN_SERVER_ERROR;
        snprintf(s->msg, sizeof s->msg, "out of memory");
    }
    for (int32_t k = 0; vals && k < s->nentries; k++) free(vals[k]);
    free(vals);
    free(props);
}

/* ----------------------------------------------------------- broker alters */

/* A broker entry under the engine's name (an alias translated): 0, or -1
 * with s->err naming the key. */
static int broker_entry(broker *b, cfg_res *s, int k, char *key, size_t klen, char *val,
                        size_t vlen)
{
    const char *name = s->entries[k].key, *v = s->entries[k].value;
    const bkafka_alias *a = bkafka_alias_find(name);
    snprintf(key, klen, "%s", a ? a->target : name);
    val[0] = 0;
    if (v && a && bkafka_alias_value(a, v, val, vlen, s->msg, sizeof s->msg)) {
        s->err = KAFKA_INVALID_CONFIG;
        return -1;
    }
    if (v && !a) snprintf(val, vlen, "%s", v);
    const tsp_config_info *row = row_find(s, key);
    if (s->ops[k] == KAFKA_OP_APPEND || s->ops[k] == KAFKA_OP_SUBTRACT || !row ||
        !(row->flags & TSP_CONFIG_DYNAMIC)) {
        int known = row || bconfig_is_broker_key(name);
        s->err = known ? KAFKA_INVALID_REQUEST : KAFKA_INVALID_CONFIG;
        snprintf(s->msg, sizeof s->msg, "%s: %s", name,
                 !known ? "unknown broker config"
                 : s->ops[k] == KAFKA_OP_APPEND || s->ops[k] == KAFKA_OP_SUBTRACT
                     ? "not a list-valued config"
                     : "read-only: it cannot change while running; set it in the properties "
                       "file and restart (dynamic: the segment, flush and retention defaults "
                       "and message.max.bytes)");
        return -1;
    }
    return 0;
}

/* The new dynamic set into s->dyn and the engine's props (NULL values:
 * back to the static value). */
static int broker_plan(broker *b, cfg_op *o, cfg_res *s, int incremental, tsp_property **props,
                       size_t *n)
{
    if (incremental)
        for (size_t i = 0; i < o->dyn.n; i++)
            if (bconfig_set(&s->dyn, o->dyn.items[i].key, o->dyn.items[i].value)) return -1;
    for (int32_t k = 0; k < s->nentries; k++) {
        char key[256], val[1024];
        if (broker_entry(b, s, k, key, sizeof key, val, sizeof val)) return -1;
        int del = incremental ? s->ops[k] == KAFKA_OP_DELETE : !s->entries[k].value;
        if (!del && bconfig_set(&s->dyn, key, val)) return -1;
        if (del) /* removed from the new set */
            for (size_t i = 0; i < s->dyn.n; i++)
                if (!strcmp(s->dyn.items[i].key, key)) s->dyn.items[i].value[0] = 0;
    }
    /* The engine gets the new set in full; keys of the old one not in it go back. */
    *props = calloc(s->dyn.n + o->dyn.n + 1, sizeof(**props));
    if (!*props) return -1;
    *n = 0;
    for (size_t i = 0; i < s->dyn.n; i++)
        (*props)[(*n)++] = (tsp_property){s->dyn.items[i].key,
                                          s->dyn.items[i].value[0] ? s->dyn.items[i].value : NULL};
    for (size_t i = 0; i < o->dyn.n; i++)
        if (!bconfig_lookup(&s->dyn, o->dyn.items[i].key))
            (*props)[(*n)++] = (tsp_property){o->dyn.items[i].key, NULL};
    return 0;
}

static void broker_alter(broker *b, cfg_op *o, cfg_res *s, int incremental)
{
    if (res_list(b, s)) return;
    tsp_property *props = NULL;
    size_t n = 0;
    if (broker_plan(b, o, s, incremental, &props, &n)) {
        if (!s->err) {
            s->err = KAFKA_UNKNOWN_SERVER_ERROR;
            snprintf(s->msg, sizeof s->msg, "out of memory");
        }
        free(props);
        return;
    }
    char err[512] = "";
    tsp_status st = b->pl->engine_alter_config(b->eng, props, n,
                                               o->validate_only ? TSP_ALTER_VALIDATE_ONLY : 0, err,
                                               sizeof err);
    if (st != TSP_OK) res_fail(b, s, st, err);
    free(props);
}

static void alter_run_mode(bjob *j, int incremental)
{
    cfg_op *o = (cfg_op *)j;
    for (int32_t i = 0; i < o->n; i++) {
        cfg_res *s = &o->res[i];
        if (s->err) continue;
        if (s->type == KAFKA_RESOURCE_TOPIC)
            topic_alter(o->b, s, incremental, o->validate_only);
        else
            broker_alter(o->b, o, s, incremental);
    }
}

static void alter_run(bjob *j) { alter_run_mode(j, 0); }
static void incremental_run(bjob *j) { alter_run_mode(j, 1); }

/* Loop: the broker resources that succeeded become b->dyn, saved. */
static void alter_done(bjob *j)
{
    cfg_op *o = (cfg_op *)j;
    broker *b = o->b;
    int f = o->r.hdr.flexible, saved = 0;
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        cfg_res *s = &o->res[i];
        if (!s->err && s->type == KAFKA_RESOURCE_BROKER && !o->validate_only && !saved) {
            bconfig_free(&b->dyn);
            for (size_t k = 0; k < s->dyn.n; k++)
                if (s->dyn.items[k].value[0])
                    bconfig_set(&b->dyn, s->dyn.items[k].key, s->dyn.items[k].value);
            meta_save_dynamic_configs(b, NULL, NULL);
            saved = 1;
        }
        kw_i16(&w, s->err);
        kw_str(&w, f, s->err ? s->msg : NULL);
        kw_i8(&w, s->type);
        kw_str(&w, f, s->name);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
    op_free(b, o);
}

static void alter_start(broker *b, reply *r, kafka_request *q, bjob_fn run)
{
    cfg_op *o = op_new(b, r, &q->u.configs, 0);
    if (!o) {
        reply_drop(b, r);
        return;
    }
    int nbroker = 0;
    for (int32_t i = 0; i < o->n; i++)
        if (!o->res[i].err && o->res[i].type == KAFKA_RESOURCE_BROKER && nbroker++) {
            o->res[i].err = KAFKA_INVALID_REQUEST;
            snprintf(o->res[i].msg, sizeof o->res[i].msg, "one broker resource per request");
        }
    op_start(b, o, run, alter_done);
}

void handle_AlterConfigs(broker *b, reply *r, kafka_request *q)
{
    alter_start(b, r, q, alter_run);
}

void handle_IncrementalAlterConfigs(broker *b, reply *r, kafka_request *q)
{
    alter_start(b, r, q, incremental_run);
}

/* ---------------------------------------------------------------- startup */

int bdynamic_load(broker *b, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/dynamic-configs", b->meta_dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    fclose(f);
    if (bconfig_load(&b->dyn, path, err, errlen)) return -1;
    if (!b->dyn.n) return 0;
    if (!TSP_HAS(b->pl, engine_alter_config)) {
        snprintf(err, errlen, "%s: the storage plugin cannot apply dynamic configs (ABI < 1.3)",
                 path);
        return -1;
    }
    tsp_property *props = calloc(b->dyn.n, sizeof(*props));
    if (!props) return -1;
    for (size_t i = 0; i < b->dyn.n; i++)
        props[i] = (tsp_property){b->dyn.items[i].key, b->dyn.items[i].value};
    char perr[512] = "";
    tsp_status st = b->pl->engine_alter_config(b->eng, props, b->dyn.n, 0, perr, sizeof perr);
    free(props);
    if (st != TSP_OK) {
        snprintf(err, errlen, "%s: %s", path, perr);
        return -1;
    }
    for (size_t i = 0; i < b->dyn.n; i++)
        blog_info("dynamic broker config %s=%s (AlterConfigs, %s)", b->dyn.items[i].key,
                  b->dyn.items[i].value, path);
    return 0;
}
