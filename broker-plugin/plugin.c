/*
 * plugin.c — libtierstore-plugin.so: the engine (include/tierstore.h) behind
 * the versioned function table of include/tierstore_plugin.h.
 *
 * This file is a thin adapter on purpose: every entry forwards to the
 * engine call of the same meaning, translating handles and structs, so the
 * ABI can stay frozen while the engine API evolves behind it. The status
 * codes of the two headers are kept numerically equal by static asserts
 * generated from the status table, include/tierstore_status.def (the ABI
 * header keeps its TSP_ constants literal and must not include tierstore.h).
 *
 * Threading: as documented in tierstore_plugin.h; the engine is thread-safe
 * and this adapter keeps no mutable state of its own besides the engine
 * wrapper, which is written only by engine_open/engine_close.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierstore.h"
#include "tierstore_plugin.h"
#include "common/config_table.h"

#define TSP_EXPORT __attribute__((visibility("default")))

/* Every code of the status table has its literal TSP_ twin, equal to it. */
#define TS_STATUS_X(id, code, retriable, message) \
    _Static_assert(TSP_##id == (code) && TS_##id == (code), "status mirror: " #id);
#include "tierstore_status.def"
#undef TS_STATUS_X
_Static_assert(TSP_LOC_LOCAL == TS_LOC_LOCAL, "location mirror");
_Static_assert(TSP_PART_CREATE == TS_PART_CREATE && TSP_PART_REPLICATED == TS_PART_REPLICATED,
               "partition flag mirror");
_Static_assert(TSP_LOC_REMOTE == TS_LOC_REMOTE, "location mirror");
_Static_assert(TSP_LOC_LOCAL_REMOTE == TS_LOC_LOCAL_REMOTE, "location mirror");
_Static_assert(TSP_LOC_MISSING == TS_LOC_MISSING, "location mirror");
_Static_assert(TSP_OBJSTORE_OP_PUT == TS_OBJSTORE_OP_PUT && TSP_OBJSTORE_OP_GET == TS_OBJSTORE_OP_GET &&
                   TSP_OBJSTORE_OP_LIST == TS_OBJSTORE_OP_LIST &&
                   TSP_OBJSTORE_OP_DELETE == TS_OBJSTORE_OP_DELETE &&
                   TSP_OBJSTORE_OP_HEAD == TS_OBJSTORE_OP_HEAD,
               "object-store operation mirror");
_Static_assert(TSP_OBJSTORE_OUTCOME_OK == TS_OBJSTORE_OUTCOME_OK &&
                   TSP_OBJSTORE_OUTCOME_NOTFOUND == TS_OBJSTORE_OUTCOME_NOTFOUND &&
                   TSP_OBJSTORE_OUTCOME_ERROR == TS_OBJSTORE_OUTCOME_ERROR,
               "object-store outcome mirror");
_Static_assert(sizeof(((tsp_engine_stats *)0)->objstore_requests) ==
                   sizeof(((ts_engine_stats *)0)->objstore_requests),
               "object-store counter table size");
_Static_assert(sizeof(((tsp_segment_info *)0)->object_key) ==
                   sizeof(((ts_segment_info *)0)->object_key),
               "object key size");

/* The engine plus the config it was opened with. */
struct tsp_engine {
    ts_engine *eng;
    ts_config *cfg;
};

static void set_err(char *errstr, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (errstr && errlen) snprintf(errstr, errlen, fmt, a, b);
}

/* Names and retriability come from the status table; an unknown code (a
 * newer engine's, or garbage) is "TSP_E_UNKNOWN" and not retriable. */
static const char *p_status_name(tsp_status st)
{
    switch (st) {
#define TS_STATUS_X(id, code, retriable, message) \
    case TSP_##id: return "TSP_" #id;
#include "tierstore_status.def"
#undef TS_STATUS_X
    }
    return "TSP_E_UNKNOWN";
}

static int p_status_is_retriable(tsp_status st)
{
    switch (st) {
#define TS_STATUS_X(id, code, retriable, message) \
    case TSP_##id: return (retriable);
#include "tierstore_status.def"
#undef TS_STATUS_X
    }
    return 0;
}

static void p_buffer_free(void *buf) { free(buf); }

static tsp_status p_config_describe(char **out, size_t *out_len)
{
    if (!out || !out_len) return TSP_E_INVAL;
    size_t need = ts_config_describe_help(NULL, 0);
    char *buf = malloc(need + 1);
    if (!buf) return TSP_E_NOMEM;
    ts_config_describe_help(buf, need + 1);
    *out = buf;
    *out_len = need;
    return TSP_OK;
}

static tsp_status p_engine_open(const tsp_property *props, size_t nprops, uint32_t flags,
                                tsp_engine **out, char *errstr, size_t errlen)
{
    if (!out || (nprops && !props)) {
        set_err(errstr, errlen, "engine_open: %s%s", "invalid arguments", "");
        return TSP_E_INVAL;
    }
    *out = NULL;
    tsp_engine *e = calloc(1, sizeof(*e));
    ts_config *cfg = ts_config_create();
    if (!e || !cfg) {
        free(e);
        ts_config_destroy(cfg);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < nprops; i++) {
        if (!props[i].key || !props[i].value) continue;
        /* ts_config_get returns NULL only for keys outside the table. */
        if ((flags & TSP_OPEN_IGNORE_UNKNOWN) && !ts_config_get(cfg, props[i].key)) continue;
        ts_status st = ts_config_set(cfg, props[i].key, props[i].value, errstr, errlen);
        if (st != TS_OK) {
            ts_config_destroy(cfg);
            free(e);
            return st;
        }
    }
    ts_status st = ts_engine_open(cfg, &e->eng, errstr, errlen);
    if (st != TS_OK) {
        ts_config_destroy(cfg);
        free(e);
        return st;
    }
    e->cfg = cfg;
    *out = e;
    return TSP_OK;
}

static void p_engine_close(tsp_engine *e)
{
    if (!e) return;
    ts_engine_close(e->eng);
    ts_config_destroy(e->cfg);
    free(e);
}

static void p_engine_stats(tsp_engine *e, tsp_engine_stats *out)
{
    if (!e || !out || out->struct_size < sizeof(uint32_t)) return;
    ts_engine_stats s;
    memset(&s, 0, sizeof(s));
    ts_engine_stats_get(e->eng, &s);
    tsp_engine_stats full = {
        .struct_size = out->struct_size,
        .local_bytes = s.local_bytes,
        .cache_bytes = s.cache_bytes,
        .remote_bytes = s.remote_bytes,
        .remote_raw_bytes = s.remote_raw_bytes,
        .remote_objects = s.remote_objects,
        .uploads_done = s.uploads_done,
        .uploads_failed = s.uploads_failed,
        .cache_hits = s.cache_hits,
        .cache_misses = s.cache_misses,
        .remote_get_bytes = s.remote_get_bytes,
        .cache_evictions = s.cache_evictions,
        .objstore_bytes_put = s.objstore_bytes_put,
        .objstore_bytes_got = s.objstore_bytes_got,
    };
    memcpy(full.objstore_requests, s.objstore_requests, sizeof(full.objstore_requests));
    size_t n = out->struct_size < sizeof(full) ? out->struct_size : sizeof(full);
    memcpy(out, &full, n);
}

static tsp_status p_partition_open(tsp_engine *e, const char *topic, int32_t partition,
                                   uint32_t flags, tsp_partition **out, char *errstr,
                                   size_t errlen)
{
    if (!e || !topic || !out) {
        set_err(errstr, errlen, "partition_open: %s%s", "invalid arguments", "");
        return TSP_E_INVAL;
    }
    ts_partition *p = NULL;
    ts_status st = ts_partition_open(e->eng, topic, partition,
                                     (int)(flags & (TSP_PART_CREATE | TSP_PART_REPLICATED)), &p,
                                     errstr, errlen);
    if (st != TS_OK) return st;
    *out = (tsp_partition *)p;
    return TSP_OK;
}

/* The engine takes parallel key/value arrays; the ABI takes pairs. */
static tsp_status p_topic_set_config(tsp_engine *e, const char *topic, const tsp_property *props,
                                     size_t n, char *errstr, size_t errlen)
{
    if (!e || !topic || (n && !props)) return TSP_E_INVAL;
    if (n == 0) return TSP_OK;
    const char **keys = calloc(n, sizeof(*keys));
    const char **vals = calloc(n, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = props[i].key ? props[i].key : "";
        vals[i] = props[i].value ? props[i].value : "";
    }
    ts_status st = ts_topic_set_config(e->eng, topic, keys, vals, n, errstr, errlen);
    free(keys);
    free(vals);
    return st;
}

static tsp_status p_topic_partitions(tsp_engine *e, const char *topic, int32_t **parts,
                                     size_t *nparts, char *errstr, size_t errlen)
{
    if (!e || !topic || !parts || !nparts) return TSP_E_INVAL;
    return ts_topic_partitions(e->eng, topic, parts, nparts, errstr, errlen);
}

static tsp_status p_append(tsp_partition *p, const void *data, size_t len, int64_t *first,
                           int64_t *last, char *errstr, size_t errlen)
{
    if (!p || (!data && len)) return TSP_E_INVAL;
    return ts_partition_append((ts_partition *)p, data, len, first, last, errstr, errlen);
}

static tsp_status p_read(tsp_partition *p, int64_t offset, size_t max_bytes, uint8_t **out,
                         size_t *out_len, char *errstr, size_t errlen)
{
    if (!p || !out || !out_len) return TSP_E_INVAL;
    return ts_partition_read((ts_partition *)p, offset, max_bytes, out, out_len, errstr, errlen);
}

/* The host's struct may be older (smaller) or newer than ours: write only
 * the fields both know, as struct_size says. */
static tsp_status p_read_file(tsp_partition *p, int64_t offset, size_t max_bytes,
                              int64_t stop_offset, tsp_file_range *out, char *errstr,
                              size_t errlen)
{
    if (!p || !out || out->struct_size < offsetof(tsp_file_range, next_offset) + sizeof(int64_t))
        return TSP_E_INVAL;
    ts_file_range r;
    tsp_status st = ts_partition_read_file((ts_partition *)p, offset, max_bytes, stop_offset, &r,
                                           errstr, errlen);
    out->fd = st == TSP_OK ? r.fd : -1;
    out->file_offset = st == TSP_OK ? r.file_offset : 0;
    out->length = st == TSP_OK ? r.length : 0;
    out->first_offset = st == TSP_OK ? r.first_offset : offset;
    out->next_offset = st == TSP_OK ? r.next_offset : offset;
    return st;
}

static tsp_status p_flush(tsp_partition *p, char *errstr, size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_flush((ts_partition *)p, errstr, errlen);
}

static tsp_status p_roll(tsp_partition *p, char *errstr, size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_roll((ts_partition *)p, errstr, errlen);
}

static tsp_status p_wait_uploaded(tsp_partition *p, int64_t timeout_ms, char *errstr,
                                  size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_wait_uploaded((ts_partition *)p, timeout_ms, errstr, errlen);
}

static tsp_status p_enforce_retention(tsp_partition *p, char *errstr, size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_enforce_retention((ts_partition *)p, errstr, errlen);
}

static tsp_status p_offsets(tsp_partition *p, tsp_offsets *out)
{
    if (!p || !out || out->struct_size < sizeof(uint32_t)) return TSP_E_INVAL;
    ts_offsets o;
    ts_status st = ts_partition_offsets((ts_partition *)p, &o);
    if (st != TS_OK) return st;
    tsp_offsets full = {.struct_size = out->struct_size,
                        .log_start_offset = o.log_start_offset,
                        .local_start_offset = o.local_start_offset,
                        .log_end_offset = o.log_end_offset,
                        .high_watermark = o.high_watermark,
                        .remote_end_offset = o.remote_end_offset,
                        .leader_epoch = o.leader_epoch};
    size_t n = out->struct_size < sizeof(full) ? out->struct_size : sizeof(full);
    memcpy(out, &full, n);
    return TSP_OK;
}

static tsp_status p_offset_for_time(tsp_partition *p, int64_t ts, int64_t *offset, char *errstr,
                                    size_t errlen)
{
    if (!p || !offset) return TSP_E_INVAL;
    return ts_partition_offset_for_time((ts_partition *)p, ts, offset, errstr, errlen);
}

static tsp_status p_placement(tsp_partition *p, tsp_segment_info **rows, size_t *nrows,
                              size_t *row_size, char *errstr, size_t errlen)
{
    if (!p || !rows || !nrows || !row_size) return TSP_E_INVAL;
    ts_segment_info *in = NULL;
    size_t n = 0;
    ts_status st = ts_partition_placement((ts_partition *)p, &in, &n, errstr, errlen);
    if (st != TS_OK) return st;
    tsp_segment_info *o = calloc(n ? n : 1, sizeof(*o));
    if (!o) {
        free(in);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        o[i].partition = in[i].partition;
        o[i].location = (int32_t)in[i].location;
        o[i].base_offset = in[i].base_offset;
        o[i].last_offset = in[i].last_offset;
        o[i].first_timestamp = in[i].first_timestamp;
        o[i].max_timestamp = in[i].max_timestamp;
        o[i].size_bytes = in[i].size_bytes;
        o[i].stored_bytes = in[i].stored_bytes;
        o[i].active = in[i].active;
        memcpy(o[i].object_key, in[i].object_key, sizeof(o[i].object_key));
        o[i].object_key[sizeof(o[i].object_key) - 1] = 0;
    }
    free(in);
    *rows = o;
    *nrows = n;
    *row_size = sizeof(*o);
    return TSP_OK;
}

static tsp_status p_partition_delete(tsp_engine *e, const char *topic, int32_t partition,
                                     char *errstr, size_t errlen)
{
    if (!e || !topic) return TSP_E_INVAL;
    return ts_partition_delete(e->eng, topic, partition, errstr, errlen);
}

/* Counters from the engine; sizes and lags from one placement snapshot
 * (rows ordered by offset, the last one active). */
static tsp_status p_partition_stats(tsp_partition *p, tsp_partition_stats *out, char *errstr,
                                    size_t errlen)
{
    if (!p || !out || out->struct_size < sizeof(uint32_t)) return TSP_E_INVAL;
    ts_partition *tp = (ts_partition *)p;
    ts_partition_counters c;
    ts_partition_counters_get(tp, &c);
    ts_offsets o;
    ts_status st = ts_partition_offsets(tp, &o);
    ts_segment_info *rows = NULL;
    size_t n = 0;
    if (st == TS_OK) st = ts_partition_placement(tp, &rows, &n, errstr, errlen);
    if (st != TS_OK) return st;
    tsp_partition_stats full = {
        .struct_size = out->struct_size,
        .remote_copy_bytes = c.copy_bytes,
        .remote_copy_requests = c.copy_requests,
        .remote_copy_errors = c.copy_errors,
        .remote_fetch_bytes = c.fetch_bytes,
        .remote_fetch_requests = c.fetch_requests,
        .remote_fetch_errors = c.fetch_errors,
        .log_start_offset = o.log_start_offset,
        .local_start_offset = o.local_start_offset,
        .log_end_offset = o.log_end_offset,
        .last_tiered_offset = -1,
    };
    for (size_t i = 0; i < n; i++) {
        const ts_segment_info *r = &rows[i];
        int local = r->location == TS_LOC_LOCAL || r->location == TS_LOC_LOCAL_REMOTE;
        int remote = r->location == TS_LOC_REMOTE || r->location == TS_LOC_LOCAL_REMOTE;
        if (local) {
            full.local_log_bytes += r->size_bytes;
            full.local_segments++;
        }
        if (remote) {
            full.remote_log_bytes += r->stored_bytes;
            full.remote_raw_bytes += r->size_bytes;
            full.remote_segments++;
            if (r->last_offset > full.last_tiered_offset) full.last_tiered_offset = r->last_offset;
            if (r->last_offset < o.log_start_offset) {
                full.remote_delete_lag_bytes += r->stored_bytes;
                full.remote_delete_lag_segments++;
            }
        }
        if (r->location == TS_LOC_LOCAL && !r->active && r->size_bytes > 0) {
            full.remote_copy_lag_bytes += r->size_bytes;
            full.remote_copy_lag_segments++;
        }
    }
    free(rows);
    size_t k = out->struct_size < sizeof(full) ? out->struct_size : sizeof(full);
    memcpy(out, &full, k);
    return TSP_OK;
}

/* ---- minor 2: replication (the engine's ts_partition_* of the same names) */

static tsp_status p_partition_set_role(tsp_partition *p, int32_t leader_epoch, int is_leader,
                                       char *errstr, size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_set_role((ts_partition *)p, leader_epoch, is_leader, errstr, errlen);
}

static tsp_status p_append_replica(tsp_partition *p, const void *data, size_t len,
                                   int64_t *last_offset, char *errstr, size_t errlen)
{
    if (!p || (!data && len)) return TSP_E_INVAL;
    return ts_partition_append_replica((ts_partition *)p, data, len, last_offset, errstr, errlen);
}

static tsp_status p_truncate(tsp_partition *p, int64_t offset, int64_t *new_end, char *errstr,
                             size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_truncate((ts_partition *)p, offset, new_end, errstr, errlen);
}

static tsp_status p_epoch_end_offset(tsp_partition *p, int32_t epoch, int32_t *found_epoch,
                                     int64_t *end_offset, char *errstr, size_t errlen)
{
    if (!p || !found_epoch || !end_offset) return TSP_E_INVAL;
    return ts_partition_epoch_end_offset((ts_partition *)p, epoch, found_epoch, end_offset, errstr,
                                         errlen);
}

static tsp_status p_set_high_watermark(tsp_partition *p, int64_t hw, char *errstr,
                                       size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_set_high_watermark((ts_partition *)p, hw, errstr, errlen);
}

static tsp_status p_reset_local(tsp_partition *p, int64_t offset, char *errstr, size_t errlen)
{
    if (!p) return TSP_E_INVAL;
    return ts_partition_reset_local((ts_partition *)p, offset, errstr, errlen);
}

/* ---- minor 3: configs and records ----------------------------------------- */

_Static_assert(TSP_CONFIG_TOPIC_SET == TS_CONFIG_TOPIC_SET && TSP_CONFIG_SET == TS_CONFIG_SET &&
                   TSP_CONFIG_ALTERED == TS_CONFIG_ALTERED &&
                   TSP_CONFIG_DYNAMIC == TS_CONFIG_DYNAMIC &&
                   TSP_CONFIG_SENSITIVE == TS_CONFIG_SENSITIVE &&
                   TSP_CONFIG_STORED == TS_CONFIG_STORED,
               "config flag mirror");
_Static_assert(TSP_ALTER_REPLACE == TS_TOPIC_CONFIG_REPLACE &&
                   TSP_ALTER_VALIDATE_ONLY == TS_TOPIC_CONFIG_VALIDATE_ONLY,
               "alter flag mirror");
_Static_assert(sizeof(tsp_config_info) == sizeof(ts_config_row), "config row mirror");

static tsp_status p_config_list(tsp_engine *e, const char *topic, tsp_config_info **rows,
                                size_t *nrows, size_t *row_size, char *errstr, size_t errlen)
{
    if (!e || !rows || !nrows || !row_size) return TSP_E_INVAL;
    ts_config_row *in = NULL;
    size_t n = 0;
    ts_status st = ts_config_list(e->eng, topic, &in, &n, errstr, errlen);
    if (st != TS_OK) return st;
    tsp_config_info *o = calloc(n ? n : 1, sizeof(*o));
    if (!o) {
        free(in);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(o[i].name, in[i].name, sizeof(o[i].name));
        memcpy(o[i].synonym, in[i].synonym, sizeof(o[i].synonym));
        memcpy(o[i].value, in[i].value, sizeof(o[i].value));
        memcpy(o[i].default_value, in[i].default_value, sizeof(o[i].default_value));
        memcpy(o[i].doc, in[i].doc, sizeof(o[i].doc));
        o[i].type = in[i].type;
        o[i].flags = in[i].flags;
    }
    free(in);
    *rows = o;
    *nrows = n;
    *row_size = sizeof(*o);
    return TSP_OK;
}

_Static_assert(sizeof(((tsp_topic_info *)0)->name) == sizeof(((ts_topic_info *)0)->name),
               "topic row mirror");

static tsp_status p_topic_delete_local(tsp_engine *e, const char *topic, int32_t *ndeleted,
                                       char *errstr, size_t errlen)
{
    if (!e) return TSP_E_INVAL;
    return ts_topic_delete_local(e->eng, topic, ndeleted, errstr, errlen);
}

static tsp_status p_topics_list(tsp_engine *e, const char *after, size_t max,
                                tsp_topic_info **rows, size_t *nrows, size_t *row_size,
                                char *errstr, size_t errlen)
{
    if (!e || !rows || !nrows || !row_size) return TSP_E_INVAL;
    ts_topic_info *in = NULL;
    size_t n = 0;
    ts_status st = ts_topics_list(e->eng, after, max, &in, &n, errstr, errlen);
    if (st != TS_OK) return st;
    tsp_topic_info *o = calloc(n ? n : 1, sizeof(*o));
    if (!o) {
        free(in);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(o[i].name, in[i].name, sizeof(o[i].name));
        o[i].partitions = in[i].partitions;
    }
    free(in);
    *rows = o;
    *nrows = n;
    *row_size = sizeof(*o);
    return TSP_OK;
}

/* Pairs -> the engine's parallel arrays; a NULL value stays NULL (delete). */
static tsp_status split_props(const tsp_property *props, size_t n, const char ***keys,
                              const char ***vals)
{
    *keys = calloc(n ? n : 1, sizeof(**keys));
    *vals = calloc(n ? n : 1, sizeof(**vals));
    if (!*keys || !*vals) {
        free(*keys);
        free(*vals);
        return TSP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        (*keys)[i] = props[i].key ? props[i].key : "";
        (*vals)[i] = props[i].value;
    }
    return TSP_OK;
}

static tsp_status p_topic_alter_config(tsp_engine *e, const char *topic,
                                       const tsp_property *props, size_t n, uint32_t flags,
                                       char *errstr, size_t errlen)
{
    if (!e || !topic || (n && !props)) return TSP_E_INVAL;
    const char **keys, **vals;
    if (split_props(props, n, &keys, &vals) != TSP_OK) return TSP_E_NOMEM;
    ts_status st = ts_topic_alter_config(e->eng, topic, keys, vals, n, flags, errstr, errlen);
    free(keys);
    free(vals);
    return st;
}

static tsp_status p_engine_alter_config(tsp_engine *e, const tsp_property *props, size_t n,
                                        uint32_t flags, char *errstr, size_t errlen)
{
    if (!e || (n && !props)) return TSP_E_INVAL;
    const char **keys, **vals;
    if (split_props(props, n, &keys, &vals) != TSP_OK) return TSP_E_NOMEM;
    ts_status st = ts_engine_alter_config(e->eng, keys, vals, n, flags, errstr, errlen);
    free(keys);
    free(vals);
    return st;
}

static tsp_status p_delete_records(tsp_partition *p, int64_t offset, int64_t *low_watermark,
                                   char *errstr, size_t errlen)
{
    if (!p || !low_watermark) return TSP_E_INVAL;
    return ts_partition_delete_records((ts_partition *)p, offset, low_watermark, errstr, errlen);
}

static const tsp_plugin g_plugin_v1 = {
    .abi_major = 1,
    .abi_minor = TSP_ABI_MINOR,
    .struct_size = sizeof(tsp_plugin),
    .impl_name = "tierstore",
    .impl_version = TS_VERSION,
    .status_name = p_status_name,
    .status_is_retriable = p_status_is_retriable,
    .buffer_free = p_buffer_free,
    .config_describe = p_config_describe,
    .engine_open = p_engine_open,
    .engine_close = p_engine_close,
    .engine_stats = p_engine_stats,
    .partition_open = p_partition_open,
    .topic_set_config = p_topic_set_config,
    .topic_partitions = p_topic_partitions,
    .append = p_append,
    .read = p_read,
    .flush = p_flush,
    .roll = p_roll,
    .wait_uploaded = p_wait_uploaded,
    .enforce_retention = p_enforce_retention,
    .offsets = p_offsets,
    .offset_for_time = p_offset_for_time,
    .placement = p_placement,
    .partition_delete = p_partition_delete,
    .partition_stats = p_partition_stats,
    .partition_set_role = p_partition_set_role,
    .append_replica = p_append_replica,
    .truncate = p_truncate,
    .epoch_end_offset = p_epoch_end_offset,
    .set_high_watermark = p_set_high_watermark,
    .reset_local = p_reset_local,
    .config_list = p_config_list,
    .topic_alter_config = p_topic_alter_config,
    .engine_alter_config = p_engine_alter_config,
    .delete_records = p_delete_records,
    .topics_list = p_topics_list,
    .read_file = p_read_file,
    .topic_delete_local = p_topic_delete_local,
};

TSP_EXPORT const tsp_plugin *tierstore_plugin_entry(uint32_t requested_abi_major, char *errstr,
                                                    size_t errlen)
{
    if (requested_abi_major == 1) return &g_plugin_v1;
    if (errstr && errlen)
        snprintf(errstr, errlen,
                 "tierstore plugin implements ABI major 1, host asked for %u: upgrade the %s",
                 requested_abi_major, requested_abi_major > 1 ? "plugin" : "host");
    return NULL;
}
