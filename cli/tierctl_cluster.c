/*
 * tierctl_cluster.c — `tierctl cluster [TOPIC]`: the cluster as etcd holds
 * it (issue 10), read when the config names metadata.store.url: live
 * brokers, the controller and its epoch, and per partition the leader,
 * leader epoch, replicas, ISR and replicas that are not live.
 *
 * Read-only, through the etcd module's client (etcd/etcd.h); the key layout
 * is broker/cluster.h's. One range per prefix.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcd.h"
#include "tierctl_cluster.h"

typedef struct cl_ctx {
    ts_etcd *c;
    char prefix[300];
    int json;
    cJSON *out; /* --json: the document being built */
} cl_ctx;

static int range(cl_ctx *x, const char *suffix, int prefix, ts_etcd_resp *r)
{
    char key[600], err[1024] = "";
    snprintf(key, sizeof key, "%s%s", x->prefix, suffix);
    if (ts_etcd_get(x->c, key, strlen(key), prefix, 0, r, err, sizeof err) != TS_ETCD_OK) {
        fprintf(stderr, "tierctl: %s\n", err);
        return -1;
    }
    return 0;
}

static cJSON *parse_value(const ts_etcd_kv *kv)
{
    return cJSON_ParseWithLength(kv->value, kv->value_len);
}

static void ids_text(const cJSON *a, char *out, size_t len)
{
    size_t o = 0;
    const cJSON *e;
    out[0] = 0;
    cJSON_ArrayForEach(e, a)
    {
        if (o + 16 >= len) break;
        o += (size_t)snprintf(out + o, len - o, "%s%d", o ? "," : "", (int)e->valuedouble);
    }
}

static int id_in(const cJSON *a, int id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if ((int)e->valuedouble == id) return 1;
    }
    return 0;
}

static int show_brokers(cl_ctx *x, cJSON **live)
{
    ts_etcd_resp r, c;
    if (range(x, "brokers/", 1, &r)) return -1;
    if (range(x, "controller", 0, &c)) {
        ts_etcd_resp_free(&r);
        return -1;
    }
    *live = cJSON_CreateArray();
    cJSON *jb = cJSON_CreateArray();
    if (!x->json) printf("brokers (%zu live):\n", r.nkvs);
    for (size_t i = 0; i < r.nkvs; i++) {
        cJSON *b = parse_value(&r.kvs[i]);
        if (!b) continue;
        const cJSON *id = cJSON_GetObjectItem(b, "id"), *host = cJSON_GetObjectItem(b, "host");
        const cJSON *port = cJSON_GetObjectItem(b, "port"), *rack = cJSON_GetObjectItem(b, "rack");
        if (cJSON_IsNumber(id)) cJSON_AddItemToArray(*live, cJSON_CreateNumber(id->valuedouble));
        if (!x->json)
            printf("  %d  %s:%d%s%s\n", cJSON_IsNumber(id) ? (int)id->valuedouble : -1,
                   cJSON_IsString(host) ? host->valuestring : "?",
                   cJSON_IsNumber(port) ? (int)port->valuedouble : 0,
                   cJSON_IsString(rack) && rack->valuestring[0] ? "  rack " : "",
                   cJSON_IsString(rack) ? rack->valuestring : "");
        cJSON_AddItemToArray(jb, b);
    }
    cJSON *ctl = c.nkvs ? parse_value(&c.kvs[0]) : NULL;
    const cJSON *cid = ctl ? cJSON_GetObjectItem(ctl, "id") : NULL;
    int ctl_id = cJSON_IsNumber(cid) ? (int)cid->valuedouble : -1;
    long long epoch = c.nkvs ? (long long)c.kvs[0].create_revision : 0;
    if (!x->json)
        printf("controller: %d (epoch %lld)\n", ctl_id, epoch);
    cJSON_AddItemToObject(x->out, "brokers", jb);
    cJSON_AddNumberToObject(x->out, "controller", ctl_id);
    cJSON_AddNumberToObject(x->out, "controller_epoch", (double)epoch);
    cJSON_Delete(ctl);
    ts_etcd_resp_free(&r);
    ts_etcd_resp_free(&c);
    return 0;
}

/* One partition: its state from partitions/<t>/<p> (NULL: not written). */
static void show_partition(cl_ctx *x, cJSON *jparts, int p, const cJSON *replicas,
                           const cJSON *st, const cJSON *live)
{
    const cJSON *isr = st ? cJSON_GetObjectItem(st, "isr") : NULL;
    const cJSON *l = st ? cJSON_GetObjectItem(st, "leader") : NULL;
    const cJSON *e = st ? cJSON_GetObjectItem(st, "leader_epoch") : NULL;
    cJSON *offline = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, replicas)
    {
        if (!id_in(live, (int)r->valuedouble))
            cJSON_AddItemToArray(offline, cJSON_CreateNumber(r->valuedouble));
    }
    int leader = cJSON_IsNumber(l) ? (int)l->valuedouble : -1;
    int epoch = cJSON_IsNumber(e) ? (int)e->valuedouble : -1;
    if (!x->json) {
        char rs[200], is[200], os[200];
        ids_text(replicas, rs, sizeof rs);
        ids_text(isr, is, sizeof is);
        ids_text(offline, os, sizeof os);
        printf("  %-9d %-7d %-7d %-14s %-14s %s\n", p, leader, epoch, rs, st ? is : "-",
               os[0] ? os : "-");
        cJSON_Delete(offline);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "partition", p);
    cJSON_AddNumberToObject(o, "leader", leader);
    cJSON_AddNumberToObject(o, "leader_epoch", epoch);
    cJSON_AddItemToObject(o, "replicas", cJSON_Duplicate(replicas, 1));
    cJSON_AddItemToObject(o, "isr", isr ? cJSON_Duplicate(isr, 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "offline_replicas", offline);
    cJSON_AddItemToArray(jparts, o);
}

/* The partition a state key's last segment names, or -1 unless it is a
 * plain decimal below n (etcd keys are anyone's to write: "7x" or "" must
 * not land on a real partition the way atoi's 7 and 0 did). */
static int state_key_partition(const char *s, int n)
{
    if (!*s) return -1;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v >= n) return -1;
    }
    return (int)v;
}

static void show_topic(cl_ctx *x, cJSON *jtopics, const char *name, const cJSON *t,
                       const cJSON *live)
{
    const cJSON *parts = cJSON_GetObjectItem(t, "partitions");
    int n = cJSON_GetArraySize(parts);
    ts_etcd_resp r;
    char suffix[400];
    snprintf(suffix, sizeof suffix, "partitions/%s/", name);
    memset(&r, 0, sizeof r);
    range(x, suffix, 1, &r);
    cJSON **st = calloc((size_t)(n > 0 ? n : 1), sizeof(*st));
    for (size_t i = 0; st && i < r.nkvs; i++) {
        int p = state_key_partition(r.kvs[i].key + strlen(x->prefix) + strlen(suffix), n);
        if (p >= 0 && !st[p]) st[p] = parse_value(&r.kvs[i]);
    }
    cJSON *jt = cJSON_CreateObject(), *jparts = cJSON_CreateArray();
    if (!x->json) {
        printf("\ntopic %s (%d partitions)\n", name, n);
        printf("  %-9s %-7s %-7s %-14s %-14s %s\n", "partition", "leader", "epoch", "replicas",
               "isr", "offline");
    }
    for (int p = 0; st && p < n; p++) show_partition(x, jparts, p, cJSON_GetArrayItem(parts, p), st[p], live);
    for (int p = 0; st && p < n; p++) cJSON_Delete(st[p]);
    free(st);
    ts_etcd_resp_free(&r);
    cJSON_AddStringToObject(jt, "topic", name);
    cJSON_AddItemToObject(jt, "partitions", jparts);
    cJSON_AddItemToArray(jtopics, jt);
}

static int show_topics(cl_ctx *x, const char *only, const cJSON *live)
{
    ts_etcd_resp r;
    if (range(x, only ? "topics/" : "topics/", 1, &r)) return -1;
    cJSON *jtopics = cJSON_CreateArray();
    int found = 0;
    for (size_t i = 0; i < r.nkvs; i++) {
        const char *name = r.kvs[i].key + strlen(x->prefix) + strlen("topics/");
        if (only && strcmp(only, name)) continue;
        cJSON *t = parse_value(&r.kvs[i]);
        if (!t) continue;
        show_topic(x, jtopics, name, t, live);
        cJSON_Delete(t);
        found = 1;
    }
    cJSON_AddItemToObject(x->out, "topics", jtopics);
    ts_etcd_resp_free(&r);
    if (only && !found) {
        fprintf(stderr, "tierctl: topic %s is not in the cluster's etcd\n", only);
        return 1;
    }
    return 0;
}

int tierctl_cluster(const char *url, const char *cluster_name, const char *topic, int json)
{
    if (!url || !*url) {
        fprintf(stderr, "tierctl: the config names no metadata.store.url (not a cluster)\n");
        return 2;
    }
    ts_etcd_opts o;
    ts_etcd_opts_default(&o);
    o.endpoints = url;
    cl_ctx x = {.json = json};
    char err[1024] = "";
    if (ts_etcd_create(&o, &x.c, err, sizeof err) != TS_ETCD_OK) {
        fprintf(stderr, "tierctl: metadata.store.url=%s: %s\n", url, err);
        return 1;
    }
    snprintf(x.prefix, sizeof x.prefix, "/%s/", cluster_name && *cluster_name ? cluster_name : "tierstore");
    x.out = cJSON_CreateObject();
    cJSON *live = NULL;
    int rc = show_brokers(&x, &live) ? 1 : show_topics(&x, topic, live);
    if (json && rc == 0) {
        char *s = cJSON_Print(x.out);
        if (s) puts(s);
        free(s);
    }
    cJSON_Delete(live);
    cJSON_Delete(x.out);
    ts_etcd_destroy(x.c);
    return rc;
}
