/*
 * mem_plugin.c — an in-memory implementation of tierstore_plugin.h for
 * broker tests that must not depend on the engine (protocol behaviour,
 * groups, long-poll). Batches are kept in RAM per partition; "cold" data
 * does not exist. Everything is under one mutex. The replication entries
 * (minor 2) keep a role, a high watermark and a leader epoch cache in
 * memory; reset_local is TSP_E_UNSUPPORTED (there is no remote tier).
 *
 * Built as libtierstore-memplugin.so; tierbroker loads it through
 * plugin.path exactly as it loads the real one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierstore_plugin.h"

typedef struct mbatch {
    int64_t base, last, max_ts;
    uint8_t *data;
    size_t len;
} mbatch;

struct tsp_partition {
    char topic[256];
    int32_t id;
    mbatch *b;
    size_t n, cap;
    int64_t next;
    int replicated, is_leader;
    int32_t role_epoch;          /* -1: no role set */
    int64_t hw;
    int32_t ep_epoch[256];       /* leader epoch cache: epoch -> start offset */
    int64_t ep_start[256];
    size_t nep;
    int64_t start; /* log start (delete_records) */
    struct tsp_partition *next_part;
};

struct tsp_engine {
    pthread_mutex_t mu;
    struct tsp_partition *parts;
};

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t rd64(const uint8_t *p) { return ((uint64_t)rd32(p) << 32) | rd32(p + 4); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static const char *m_status_name(tsp_status st) { return st ? "TSP_E_SOMETHING" : "TSP_OK"; }
static int m_retriable(tsp_status st) { return st == TSP_E_BACKPRESSURE; }
static void m_free(void *p) { free(p); }
static tsp_status m_describe(char **out, size_t *len)
{
    *out = strdup("  (in-memory test plugin: no settings)\n");
    *len = strlen(*out);
    return TSP_OK;
}
static tsp_engine *g_eng; /* one engine per process in tests: set at open, before any
                            * partition call (they run on several threads) */

static tsp_status m_open(const tsp_property *props, size_t n, uint32_t flags, tsp_engine **out,
                         char *err, size_t errlen)
{
    tsp_engine *e = calloc(1, sizeof(*e));
    pthread_mutex_init(&e->mu, NULL);
    g_eng = e;
    *out = e;
    return TSP_OK;
}
static void m_close(tsp_engine *e)
{
    if (!e) return;
    struct tsp_partition *p = e->parts;
    while (p) {
        struct tsp_partition *n = p->next_part;
        for (size_t i = 0; i < p->n; i++) free(p->b[i].data);
        free(p->b);
        free(p);
        p = n;
    }
    free(e);
}
static void m_stats(tsp_engine *e, tsp_engine_stats *s) {}

static struct tsp_partition *find(tsp_engine *e, const char *t, int32_t id)
{
    for (struct tsp_partition *p = e->parts; p; p = p->next_part)
        if (p->id == id && !strcmp(p->topic, t)) return p;
    return NULL;
}

static tsp_status m_popen(tsp_engine *e, const char *topic, int32_t id, uint32_t flags,
                          tsp_partition **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->mu);
    struct tsp_partition *p = find(e, topic, id);
    if (!p && (flags & TSP_PART_CREATE)) {
        p = calloc(1, sizeof(*p));
        snprintf(p->topic, sizeof p->topic, "%s", topic);
        p->id = id;
        p->role_epoch = -1;
        p->next_part = e->parts;
        e->parts = p;
    }
    if (p && (flags & TSP_PART_REPLICATED)) p->replicated = 1;
    pthread_mutex_unlock(&e->mu);
    if (!p) return TSP_E_NOT_FOUND;
    *out = p;
    return TSP_OK;
}
static tsp_status m_setcfg(tsp_engine *e, const char *t, const tsp_property *p, size_t n,
                           char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].key, "bogus.key")) {
            snprintf(err, errlen, "unknown topic config %s", p[i].key);
            return TSP_E_CONFIG;
        }
    return TSP_OK;
}
static tsp_status m_parts(tsp_engine *e, const char *topic, int32_t **parts, size_t *n,
                          char *err, size_t errlen)
{
    pthread_mutex_lock(&e->mu);
    size_t c = 0;
    int32_t *o = malloc(1024 * sizeof(int32_t));
    for (struct tsp_partition *p = e->parts; p && c < 1024; p = p->next_part)
        if (!strcmp(p->topic, topic)) o[c++] = p->id;
    pthread_mutex_unlock(&e->mu);
    *parts = o;
    *n = c;
    return c ? TSP_OK : TSP_E_NOT_FOUND;
}
static tsp_status check_batches(const uint8_t *d, size_t len)
{
    size_t off = 0;
    while (off < len) { /* validate: header present, magic 2, length fits */
        if (len - off < 61 || d[off + 16] != 2) return TSP_E_CORRUPT;
        size_t bl = 12 + rd32(d + off + 8);
        if (bl < 61 || bl > len - off) return TSP_E_CORRUPT;
        off += bl;
    }
    return TSP_OK;
}

/* Epoch cache: a new epoch above the latest starts at start. */
static void assign_epoch(struct tsp_partition *p, int32_t epoch, int64_t start)
{
    if (epoch < 0 || (p->nep && epoch <= p->ep_epoch[p->nep - 1])) return;
    while (p->nep && p->ep_start[p->nep - 1] >= start) p->nep--;
    if (p->nep == 256) return;
    p->ep_epoch[p->nep] = epoch;
    p->ep_start[p->nep++] = start;
}

/* Stores the batches; keep: their offsets are kept (replica), else
 * assigned. Engine lock held. */
static void store_batches(struct tsp_partition *p, const uint8_t *d, size_t len, int keep)
{
    size_t off = 0;
    while (off < len) {
        size_t bl = 12 + rd32(d + off + 8);
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 64;
            p->b = realloc(p->b, p->cap * sizeof(*p->b));
        }
        mbatch *b = &p->b[p->n++];
        b->data = malloc(bl);
        memcpy(b->data, d + off, bl);
        if (!keep) wr64(b->data, (uint64_t)p->next);
        if (!keep && p->replicated && p->is_leader) wr32(b->data + 12, (uint32_t)p->role_epoch);
        if (keep) assign_epoch(p, (int32_t)rd32(b->data + 12), p->next);
        b->base = p->next;
        b->last = p->next + (int32_t)rd32(d + off + 23);
        b->max_ts = (int64_t)rd64(d + off + 35);
        b->len = bl;
        p->next = b->last + 1;
        off += bl;
    }
}

static tsp_status m_append(tsp_partition *p, const void *data, size_t len, int64_t *first,
                           int64_t *last, char *err, size_t errlen)
{
    if (check_batches(data, len)) return TSP_E_CORRUPT;
    pthread_mutex_lock(&g_eng->mu);
    if (p->replicated && p->role_epoch >= 0 && !p->is_leader) {
        pthread_mutex_unlock(&g_eng->mu);
        return TSP_E_FENCED;
    }
    int64_t f = p->next;
    store_batches(p, data, len, 0);
    if (first) *first = f;
    if (last) *last = p->next - 1;
    pthread_mutex_unlock(&g_eng->mu);
    return TSP_OK;
}

static tsp_status m_append_replica(tsp_partition *p, const void *data, size_t len,
                                   int64_t *last, char *err, size_t errlen)
{
    const uint8_t *d = data;
    if (check_batches(d, len)) return TSP_E_CORRUPT;
    pthread_mutex_lock(&g_eng->mu);
    int64_t next = p->next;
    for (size_t off = 0; off < len; off += 12 + rd32(d + off + 8)) {
        if ((int64_t)rd64(d + off) != next) {
            pthread_mutex_unlock(&g_eng->mu);
            if (err && errlen) snprintf(err, errlen, "replica batch does not start at %lld", (long long)next);
            return TSP_E_OFFSET_OUT_OF_RANGE;
        }
        next += (int32_t)rd32(d + off + 23) + 1;
    }
    store_batches(p, d, len, 1);
    if (last) *last = p->next - 1;
    pthread_mutex_unlock(&g_eng->mu);
    return TSP_OK;
}

static tsp_status m_set_role(tsp_partition *p, int32_t epoch, int is_leader, char *err,
                             size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    tsp_status st = !p->replicated || epoch < 0 ? TSP_E_INVAL
                    : epoch < p->role_epoch     ? TSP_E_FENCED
                                                : TSP_OK;
    if (!st) {
        p->role_epoch = epoch;
        p->is_leader = !!is_leader;
        if (is_leader) assign_epoch(p, epoch, p->next);
    }
    pthread_mutex_unlock(&g_eng->mu);
    return st;
}

static tsp_status m_truncate(tsp_partition *p, int64_t offset, int64_t *new_end, char *err,
                             size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    tsp_status st = !p->replicated || offset < p->hw ? TSP_E_INVAL : TSP_OK;
    size_t keep = p->n; /* batches before the one holding offset stay */
    while (keep && p->b[keep - 1].last >= offset) keep--;
    if (!st && keep < p->n && p->b[keep].base < p->hw) st = TSP_E_INVAL; /* nothing changed */
    while (!st && p->n > keep) {
        p->next = p->b[p->n - 1].base;
        free(p->b[--p->n].data);
    }
    while (p->nep && p->ep_start[p->nep - 1] >= p->next) p->nep--;
    if (new_end) *new_end = p->next;
    pthread_mutex_unlock(&g_eng->mu);
    return st;
}

static tsp_status m_epoch_end(tsp_partition *p, int32_t epoch, int32_t *found, int64_t *end,
                              char *err, size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    size_t i = p->nep;
    while (i > 0 && p->ep_epoch[i - 1] > epoch) i--;
    *found = i ? p->ep_epoch[i - 1] : -1;
    *end = !i ? -1 : i < p->nep ? p->ep_start[i] : p->next;
    pthread_mutex_unlock(&g_eng->mu);
    return TSP_OK;
}

static tsp_status m_set_hw(tsp_partition *p, int64_t hw, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    if (hw > p->next) hw = p->next;
    if (hw > p->hw) p->hw = hw;
    pthread_mutex_unlock(&g_eng->mu);
    return hw < 0 ? TSP_E_INVAL : TSP_OK;
}

static tsp_status m_reset_local(tsp_partition *p, int64_t offset, char *err, size_t errlen)
{
    if (err && errlen) snprintf(err, errlen, "the in-memory plugin has no remote tier");
    return TSP_E_UNSUPPORTED;
}
static tsp_status m_read(tsp_partition *p, int64_t offset, size_t max, uint8_t **out,
                         size_t *out_len, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    *out = NULL;
    *out_len = 0;
    if (offset < p->start || offset > p->next) {
        pthread_mutex_unlock(&g_eng->mu);
        return TSP_E_OFFSET_OUT_OF_RANGE;
    }
    size_t i = 0;
    while (i < p->n && p->b[i].last < offset) i++;
    size_t total = 0, j = i;
    while (j < p->n && (j == i || total + p->b[j].len <= max)) total += p->b[j++].len;
    if (total) {
        *out = malloc(total);
        size_t o = 0;
        for (size_t k = i; k < j; k++) {
            memcpy(*out + o, p->b[k].data, p->b[k].len);
            o += p->b[k].len;
        }
        *out_len = total;
    }
    pthread_mutex_unlock(&g_eng->mu);
    return TSP_OK;
}
static tsp_status m_ok(tsp_partition *p, char *err, size_t errlen) { return TSP_OK; }
static tsp_status m_wait(tsp_partition *p, int64_t t, char *err, size_t errlen) { return TSP_OK; }
static tsp_status m_offsets(tsp_partition *p, tsp_offsets *o)
{
    pthread_mutex_lock(&g_eng->mu);
    o->log_start_offset = p->start;
    o->local_start_offset = p->start;
    o->log_end_offset = p->next;
    if (o->struct_size >= sizeof(tsp_offsets)) {
        o->high_watermark = p->replicated ? p->hw : p->next;
        o->remote_end_offset = 0;
        o->leader_epoch = p->nep ? p->ep_epoch[p->nep - 1] : -1;
    }
    pthread_mutex_unlock(&g_eng->mu);
    return TSP_OK;
}
static tsp_status m_oft(tsp_partition *p, int64_t ts, int64_t *off, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    tsp_status st = TSP_E_NOT_FOUND;
    for (size_t i = 0; i < p->n; i++)
        if (p->b[i].max_ts >= ts) {
            *off = p->b[i].base;
            st = TSP_OK;
            break;
        }
    pthread_mutex_unlock(&g_eng->mu);
    return st;
}
static tsp_status m_placement(tsp_partition *p, tsp_segment_info **rows, size_t *n, size_t *rs,
                              char *err, size_t errlen)
{
    *rows = calloc(1, sizeof(tsp_segment_info));
    *n = 0;
    *rs = sizeof(tsp_segment_info);
    return TSP_OK;
}
static tsp_status m_delete(tsp_engine *e, const char *topic, int32_t id, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->mu);
    struct tsp_partition **pp = &e->parts;
    while (*pp && !((*pp)->id == id && !strcmp((*pp)->topic, topic))) pp = &(*pp)->next_part;
    struct tsp_partition *p = *pp;
    if (p) *pp = p->next_part;
    pthread_mutex_unlock(&e->mu);
    if (!p) return TSP_E_NOT_FOUND;
    for (size_t i = 0; i < p->n; i++) free(p->b[i].data);
    free(p->b);
    free(p);
    return TSP_OK;
}

/* Everything is local: local size and offsets only, no remote counters. */
static tsp_status m_pstats(tsp_partition *p, tsp_partition_stats *out, char *err, size_t errlen)
{
    if (!p || !out || out->struct_size < sizeof(uint32_t)) return TSP_E_INVAL;
    tsp_partition_stats full = {.struct_size = out->struct_size, .last_tiered_offset = -1};
    pthread_mutex_lock(&g_eng->mu);
    for (size_t i = 0; i < p->n; i++) full.local_log_bytes += p->b[i].len;
    full.log_end_offset = p->next; /* log and local start stay 0: nothing is ever removed */
    full.local_segments = 1;
    pthread_mutex_unlock(&g_eng->mu);
    size_t k = out->struct_size < sizeof(full) ? out->struct_size : sizeof(full);
    memcpy(out, &full, k);
    return TSP_OK;
}

/* Moves the log start (batches stay in RAM: reads below it are refused). */
static tsp_status m_delrec(tsp_partition *p, int64_t offset, int64_t *low, char *err,
                           size_t errlen)
{
    pthread_mutex_lock(&g_eng->mu);
    if (offset == -1) offset = p->next;
    tsp_status st = offset < 0 || offset > p->next ? TSP_E_OFFSET_OUT_OF_RANGE : TSP_OK;
    if (!st && offset > p->start) p->start = offset;
    *low = p->start;
    pthread_mutex_unlock(&g_eng->mu);
    if (st) snprintf(err, errlen, "offset %lld is past the log end", (long long)offset);
    return st;
}

/* Every topic held (RAM is this plugin's bucket), ascending by name. */
static tsp_status m_topics(tsp_engine *e, const char *after, size_t max, tsp_topic_info **rows,
                           size_t *nrows, size_t *rs, char *err, size_t errlen)
{
    tsp_topic_info *o = calloc(max ? max : 1, sizeof(*o));
    size_t n = 0;
    if (!o) return TSP_E_NOMEM;
    pthread_mutex_lock(&e->mu);
    for (;;) { /* the smallest name above the last one taken, max times */
        const char *best = NULL, *floor = n ? o[n - 1].name : after ? after : "";
        for (struct tsp_partition *p = e->parts; p; p = p->next_part)
            if (strcmp(p->topic, floor) > 0 && (!best || strcmp(p->topic, best) < 0))
                best = p->topic;
        if (!best || n == max) break;
        snprintf(o[n].name, sizeof o[n].name, "%s", best);
        for (struct tsp_partition *p = e->parts; p; p = p->next_part)
            if (!strcmp(p->topic, best) && p->id + 1 > o[n].partitions) o[n].partitions = p->id + 1;
        n++;
    }
    pthread_mutex_unlock(&e->mu);
    *rows = o;
    *nrows = n;
    *rs = sizeof(*o);
    return TSP_OK;
}

static const tsp_plugin g_mem = {
    .abi_major = 1, .abi_minor = TSP_ABI_MINOR, .struct_size = sizeof(tsp_plugin),
    .impl_name = "memplugin", .impl_version = "test",
    .status_name = m_status_name, .status_is_retriable = m_retriable, .buffer_free = m_free,
    .config_describe = m_describe, .engine_open = m_open, .engine_close = m_close,
    .engine_stats = m_stats, .partition_open = m_popen, .topic_set_config = m_setcfg,
    .topic_partitions = m_parts, .append = m_append, .read = m_read, .flush = m_ok,
    .roll = m_ok, .wait_uploaded = m_wait, .enforce_retention = m_ok, .offsets = m_offsets,
    .offset_for_time = m_oft, .placement = m_placement, .partition_delete = m_delete,
    .partition_stats = m_pstats, .partition_set_role = m_set_role,
    .append_replica = m_append_replica, .truncate = m_truncate, .epoch_end_offset = m_epoch_end,
    .set_high_watermark = m_set_hw, .reset_local = m_reset_local,
    /* minor 3: configs left NULL (the broker answers without them), records */
    .delete_records = m_delrec,
    /* minor 4 */
    .topics_list = m_topics,
    /* minor 5: read_file left NULL: memory has no files, the broker copies
     * (the *_mem scenarios keep the copy path covered) */
};

__attribute__((visibility("default"))) const tsp_plugin *
tierstore_plugin_entry(uint32_t major, char *err, size_t errlen)
{
    return major == 1 ? &g_mem : NULL;
}
