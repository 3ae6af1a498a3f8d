/*
 * topic_desc.c — the bucket describes its topics: a descriptor object per
 * change of a topic's partition count, and the listing of every topic of
 * the bucket (ts_topics_list) that recovery into an empty data directory
 * starts from (tierctl recover, tierbroker's remote.log.recover.topics).
 *
 * Without a descriptor a topic's partition count had to be guessed from
 * its manifests, so a partition that never uploaded (empty, or its data
 * still all local when the disk was lost) came back missing. Now every
 * partition open records max(count, id + 1) (ts_eng_desc_note): creates,
 * CreatePartitions, and the first open of a topic of an older bucket. A
 * failed PUT is retried by the background tick. Deleting the last
 * partition of a topic deletes its descriptors; deleting its highest one
 * (a failed create undone) lowers the count.
 *
 * Thread: any; desc_mu serialises descriptor writes and the count cache
 * (one entry per topic seen by this engine) and is held across their
 * object-store calls (never with engine->mu or a partition lock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/strlist.h"
#include "internal.h"

struct ts_desc_entry {
    char *topic;
    int32_t count;   /* recorded in the bucket (0: none) */
    int32_t pending; /* count still to write after a failed PUT (0: none) */
};

typedef struct newest_ctx {
    const char *suffix;
    char *key;
    size_t len;
} newest_ctx;

static int newest_cb(const char *key, uint64_t size, void *opaque)
{
    newest_ctx *c = opaque;
    (void)size;
    size_t n = strlen(key), sl = strlen(c->suffix);
    if (n > sl && !strcmp(key + n - sl, c->suffix) && strcmp(key, c->key) > 0)
        snprintf(c->key, c->len, "%s", key);
    return 0;
}

ts_status ts_eng_list_newest(ts_objstore *os, const char *prefix, const char *suffix, char *out,
                             size_t outlen, char *errstr, size_t errlen)
{
    newest_ctx c = {suffix, out, outlen};
    out[0] = '\0';
    return ts_objstore_list(os, prefix, newest_cb, &c, errstr, errlen);
}

ts_status ts_eng_desc_read(ts_objstore *os, const char *topic, const char *key, int32_t *count,
                           char *errstr, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_status st = ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &data, &len, errstr, errlen);
    if (st) ts_err_prefix(errstr, errlen, st, "topic %s: reading descriptor %s", topic, key);
    else st = ts_index_topic_desc_parse(key, topic, data, len, count, errstr, errlen);
    free(data);
    return st;
}

/* The newest descriptor's count, 0 when the topic has none. */
static ts_status desc_count_remote(ts_objstore *os, const char *topic, int32_t *count,
                                   char *errstr, size_t errlen)
{
    char prefix[TS_INDEX_KEY_MAX], key[TS_INDEX_KEY_MAX];
    ts_index_topic_desc_prefix(topic, prefix, sizeof(prefix));
    *count = 0;
    ts_status st = ts_eng_list_newest(os, prefix, ".json", key, sizeof(key), errstr, errlen);
    if (st || !key[0]) return st;
    return ts_eng_desc_read(os, topic, key, count, errstr, errlen);
}

/* A new descriptor object; keys strictly increase within this engine, so
 * "newest wins" holds for two changes in one millisecond. desc_mu held. */
static ts_status desc_put(ts_engine *eng, const char *topic, int32_t count, char *errstr,
                          size_t errlen)
{
    int64_t ms = ts_now_ms();
    if (ms <= eng->desc_last_ms) ms = eng->desc_last_ms + 1;
    char *json = ts_index_topic_desc_json(topic, count, ms);
    if (!json) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    char key[TS_INDEX_KEY_MAX], rnd[9];
    ts_rand_hex(rnd, 4);
    ts_index_topic_desc_key(topic, ms, rnd, key, sizeof(key));
    ts_status st = ts_objstore_put(eng->os, key, json, strlen(json), TS_PUT_IF_NONE_MATCH,
                                   errstr, errlen);
    free(json);
    if (!st) eng->desc_last_ms = ms;
    return st;
}

/* The cache entry of topic, created (count read from the bucket) if need
 * be. NULL when out of memory or the bucket could not say. desc_mu held. */
static ts_desc_entry *desc_entry(ts_engine *eng, const char *topic)
{
    for (size_t i = 0; i < eng->ndescs; i++)
        if (!strcmp(eng->descs[i].topic, topic)) return &eng->descs[i];
    char err[512];
    int32_t count = 0;
    if (desc_count_remote(eng->os, topic, &count, err, sizeof(err))) {
        ts_log_warn("tiering", "topic %s: %s; its descriptor is written later", topic, err);
        return NULL;
    }
    ts_desc_entry *nd = realloc(eng->descs, (eng->ndescs + 1) * sizeof(*nd));
    if (!nd) return NULL;
    eng->descs = nd;
    ts_desc_entry *e = &nd[eng->ndescs];
    if (!(e->topic = strdup(topic))) return NULL;
    e->count = count;
    e->pending = 0;
    eng->ndescs++;
    return e;
}

/* Writes e->pending when it is above the recorded count. desc_mu held. */
static void desc_flush(ts_engine *eng, ts_desc_entry *e)
{
    if (e->pending <= e->count) {
        e->pending = 0;
        return;
    }
    char err[512];
    if (desc_put(eng, e->topic, e->pending, err, sizeof(err))) {
        ts_log_warn("tiering", "topic %s: writing its descriptor (%d partitions): %s; retried "
                    "on the next tick", e->topic, e->pending, err);
        eng->desc_pending = 1;
        return;
    }
    e->count = e->pending;
    e->pending = 0;
}

void ts_eng_desc_note(ts_engine *eng, const char *topic, int32_t id)
{
    if (!eng->os) return;
    pthread_mutex_lock(&eng->desc_mu);
    ts_desc_entry *e = desc_entry(eng, topic);
    if (e && id + 1 > e->count) {
        if (id + 1 > e->pending) e->pending = id + 1;
        desc_flush(eng, e);
    } else if (!e) {
        eng->desc_pending = 1; /* the tick asks the bucket again */
    }
    pthread_mutex_unlock(&eng->desc_mu);
}

void ts_eng_desc_retry(ts_engine *eng)
{
    if (!eng->os || !eng->desc_pending) return;
    pthread_mutex_lock(&eng->desc_mu);
    eng->desc_pending = 0;
    for (size_t i = 0; i < eng->ndescs; i++)
        if (eng->descs[i].pending) desc_flush(eng, &eng->descs[i]);
    pthread_mutex_unlock(&eng->desc_mu);
    /* Topics whose count could not be read are noted again at their next
     * open; the open partitions are re-noted here so none is forgotten. */
    size_t n = 0;
    if (pthread_mutex_trylock(&eng->mu) != 0) { /* a recovery runs: next tick */
        eng->desc_pending = 1;
        return;
    }
    n = eng->nparts;
    ts_partition **ps = malloc((n + 1) * sizeof(*ps));
    if (ps && n) memcpy(ps, eng->parts, n * sizeof(*ps));
    pthread_mutex_unlock(&eng->mu);
    for (size_t i = 0; ps && i < n; i++)
        if (!ps[i]->deleted) ts_eng_desc_note(eng, ps[i]->topic, ps[i]->id);
    free(ps);
}

/* ts_objstore_list callback: stops at the first key of any partition. */
static int any_part_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    const char *r = strchr(key, '/');
    if (r && r[1] >= '0' && r[1] <= '9') {
        *(int *)opaque = 1;
        return 1;
    }
    return 0;
}

static int collect_desc_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    return ts_strlist_add(opaque, key) ? 1 : 0;
}

/* Whether any partition of topic is left: open, on local disk, or with
 * objects in the bucket. */
static int topic_has_partitions(ts_engine *eng, const char *topic)
{
    int any = 0;
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->nparts && !any; i++)
        any = !eng->parts[i]->deleted && !strcmp(eng->parts[i]->topic, topic);
    pthread_mutex_unlock(&eng->mu);
    int32_t *v = NULL;
    size_t n = 0;
    if (!any && !ts_eng_partitions_scan(eng->data_dir, NULL, topic, &v, &n, NULL, 0)) any = n > 0;
    free(v);
    char prefix[300];
    ts_index_topic_prefix(topic, prefix, sizeof(prefix));
    if (!any && ts_objstore_list(eng->os, prefix, any_part_cb, &any, NULL, 0)) any = 1;
    return any;
}

void ts_eng_desc_forget(ts_engine *eng, const char *topic, int32_t id)
{
    if (!eng->os) return;
    char err[512], prefix[TS_INDEX_KEY_MAX];
    pthread_mutex_lock(&eng->desc_mu);
    ts_desc_entry *e = desc_entry(eng, topic);
    if (!topic_has_partitions(eng, topic)) {
        ts_strlist keys = {0};
        ts_index_topic_desc_prefix(topic, prefix, sizeof(prefix));
        if (ts_objstore_list(eng->os, prefix, collect_desc_cb, &keys, err, sizeof(err)) ||
            (keys.n && ts_objstore_delete_many(eng->os, (const char *const *)keys.v, keys.n,
                                               err, sizeof(err))))
            ts_log_warn("tiering", "topic %s: deleting its descriptors: %s", topic, err);
        else if (e)
            e->count = e->pending = 0;
        ts_strlist_free(&keys);
    } else if (e && id + 1 == e->count && id > 0) {
        /* The highest partition went (a failed create undone): partitions
         * are contiguous, so id of them are left. */
        if (desc_put(eng, topic, id, err, sizeof(err)))
            ts_log_warn("tiering", "topic %s: lowering its descriptor to %d: %s", topic, id, err);
        else
            e->count = id;
    }
    pthread_mutex_unlock(&eng->desc_mu);
}

void ts_eng_desc_free(ts_engine *eng)
{
    for (size_t i = 0; i < eng->ndescs; i++) free(eng->descs[i].topic);
    free(eng->descs);
    eng->descs = NULL;
    eng->ndescs = 0;
}

/* ---- listing every topic of the bucket ----------------------------------- */

/* One LIST of the whole bucket, in key order, so the keys of one topic
 * ("<topic>/...") arrive together: one topic is looked at at a time and
 * memory is bounded by the page (max rows), whatever the bucket holds. */
typedef struct list_ctx {
    const char *after_slash; /* "<after>/" or "" */
    size_t max, n;
    ts_topic_info *rows;
    char (*desc_keys)[TS_INDEX_KEY_MAX];
    char cur[249 + 2]; /* "<topic>/" being looked at */
    size_t cur_len;
    int32_t cur_max_id;              /* highest partition with a manifest, -1 */
    char cur_desc[TS_INDEX_KEY_MAX]; /* its newest descriptor, "" */
} list_ctx;

static void list_finish(list_ctx *c)
{
    if (!c->cur_len) return;
    int keep = (c->cur_max_id >= 0 || c->cur_desc[0]) && c->n < c->max;
    if (keep) {
        ts_topic_info *r = &c->rows[c->n];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%.*s", (int)(c->cur_len - 1), c->cur);
        r->partitions = c->cur_max_id + 1;
        snprintf(c->desc_keys[c->n], TS_INDEX_KEY_MAX, "%s", c->cur_desc);
        c->n++;
    }
    c->cur_len = 0;
}

static void list_start(list_ctx *c, const char *key, size_t tl)
{
    memcpy(c->cur, key, tl + 1);
    c->cur[tl + 1] = '\0';
    c->cur_len = tl + 1;
    c->cur_max_id = -1;
    c->cur_desc[0] = '\0';
}

static void list_note(list_ctx *c, const char *rest)
{
    int32_t id = ts_index_key_manifest_partition(rest);
    if (id > c->cur_max_id) c->cur_max_id = id;
    if (ts_index_key_is_topic_desc(rest) && strcmp(rest - c->cur_len, c->cur_desc) > 0)
        snprintf(c->cur_desc, sizeof(c->cur_desc), "%s", rest - c->cur_len);
}

static int list_cb(const char *key, uint64_t size, void *opaque)
{
    list_ctx *c = opaque;
    (void)size;
    const char *slash = strchr(key, '/');
    size_t tl = slash ? (size_t)(slash - key) : 0;
    if (!tl || tl > 249) return 0;
    if (c->cur_len != tl + 1 || strncmp(c->cur, key, tl + 1)) {
        list_finish(c);
        if (c->n >= c->max) return 1; /* the page is full: stop listing */
        char t[249 + 2];
        memcpy(t, key, tl + 1);
        t[tl + 1] = '\0';
        if (strcmp(t, c->after_slash) <= 0) return 0;
        t[tl] = '\0';
        if (!ts_topic_name_valid(t)) return 0;
        list_start(c, key, tl);
    }
    list_note(c, key + tl + 1);
    return 0;
}

ts_status ts_topics_list(ts_engine *eng, const char *after, size_t max, ts_topic_info **rows,
                         size_t *nrows, char *errstr, size_t errlen)
{
    *rows = NULL;
    *nrows = 0;
    if (!eng->os || max == 0) return TS_OK;
    if (max > 4096) max = 4096;
    char after_slash[249 + 2] = "";
    if (after && after[0]) ts_index_topic_prefix(after, after_slash, sizeof(after_slash));
    list_ctx c = {.after_slash = after_slash, .max = max};
    c.rows = calloc(max, sizeof(*c.rows));
    c.desc_keys = calloc(max, sizeof(*c.desc_keys));
    if (!c.rows || !c.desc_keys) {
        free(c.rows);
        free(c.desc_keys);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    ts_status st = ts_objstore_list(eng->os, "", list_cb, &c, errstr, errlen);
    list_finish(&c);
    for (size_t i = 0; !st && i < c.n; i++) {
        int32_t count = 0;
        char err[512];
        if (!c.desc_keys[i][0]) continue;
        if (ts_eng_desc_read(eng->os, c.rows[i].name, c.desc_keys[i], &count, err, sizeof(err))) {
            ts_log_warn("tiering", "%s", err);
            c.rows[i].partitions = -1; /* ts_topic_partitions reports why */
        } else if (count > c.rows[i].partitions) {
            c.rows[i].partitions = count;
        }
    }
    free(c.desc_keys);
    if (st) {
        free(c.rows);
        return st;
    }
    *rows = c.rows;
    *nrows = c.n;
    return TS_OK;
}

int ts_partition_exists_local(ts_engine *eng, const char *topic, int32_t partition)
{
    char dir[PATH_MAX];
    struct stat sb;
    snprintf(dir, sizeof(dir), "%s/%s-%d", eng->data_dir, topic, partition);
    return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}
