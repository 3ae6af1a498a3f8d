/*
 * internal.h — the engine's and partitions' private state, shared by the
 * files of tiering/ only.
 *
 * Locking: engine->mu protects the partition registry and topic configs;
 * partition->mu protects its segment list, offsets, flags and settings.
 * Lock order: engine->mu before partition->mu; never hold partition->mu
 * across object-store calls, uploads or cold reads (they run on workers or
 * on the caller's thread without locks).
 */
#ifndef TS_TIERING_INTERNAL_H
#define TS_TIERING_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/pool.h"
#include "index/index.h"
#include "objstore/objstore.h"
#include "reader/reader.h"
#include "segment.h"
#include "tierstore.h"

/* Effective settings of one partition: engine config + topic overrides. */
typedef struct ts_part_settings {
    int64_t segment_bytes, segment_ms, index_interval;
    int64_t flush_messages, flush_ms;
    int64_t retention_bytes, retention_ms;
    int64_t local_retention_bytes, local_retention_ms; /* resolved: -1 = unlimited */
    int64_t max_batch;
    int remote_enable;
} ts_part_settings;

struct ts_partition {
    ts_engine *eng;
    char topic[256];
    int32_t id;
    char dir[PATH_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* signalled when an upload finishes */
    ts_segment **segs;          /* ascending base offset; last = active */
    size_t nsegs, capsegs;
    int64_t leo;                /* log end offset: next offset to assign */
    ts_index *idx;              /* shadow index (NULL when remote disabled) */
    ts_part_settings set;
    int64_t unflushed_msgs;
    int64_t first_unflushed_ms; /* -1 when all flushed */
    int upload_inflight;
    int upload_failures;        /* consecutive, for backoff */
    int64_t next_upload_ms;     /* monotonic: earliest next attempt */
    int deleted;
    int orphans_checked;        /* the one-time orphan sweep ran (bg thread) */
    /* Durability of closed segments, synced off the appending thread:
     * recovery_point is the base of the first segment not known synced
     * (persisted in <dir>/recovery-point; recovery fully scans from there). */
    int64_t recovery_point;
    int sync_inflight;          /* a background sync job is queued or running */
    uint64_t dir_gen, dir_synced_gen; /* directory entries created / fsynced */
    pthread_mutex_t sync_mu;    /* serialises sync passes and checkpoint writes */
    pthread_mutex_t retention_mu; /* serialises retention passes */
    int64_t missing_logged_ms;  /* mu: last ERROR about a missing object (mono) */
    uint64_t missing_quiet;     /* mu: missing-object reads not logged since */
};

struct ts_engine {
    ts_config *cfg;
    char data_dir[PATH_MAX];
    char cache_dir[PATH_MAX];
    int lock_fd;
    ts_objstore *os;            /* NULL when remote storage is disabled */
    ts_chunk_cache *cache;
    ts_chunk_table_cache *ctcache; /* chunk tables of remote segments (remote.log.index.cache.bytes) */
    ts_reader *reader;
    ts_pool *upload_pool;
    ts_pool *sync_pool;         /* fsyncs of closed segments after a roll */
    pthread_mutex_t mu;
    ts_partition **parts;
    size_t nparts, capparts;
    /* topic overrides: parallel arrays of topic name and its config */
    char **topic_names;
    ts_config **topic_cfgs;
    size_t ntopics;
    pthread_t bg;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    int stopping;
    int64_t task_interval_ms;
    atomic_ullong uploads_done, uploads_failed;
};

/* partition.c */
/* tc: the topic's effective config (engine config + overrides). Called
 * with engine->mu held. */
ts_status ts_part_open(ts_engine *eng, const char *topic, int32_t id, int create,
                       const ts_config *tc, ts_partition **out, char *errstr, size_t errlen);
void ts_part_close(ts_partition *p);
/* Background duties of one partition (engine bg thread). */
void ts_part_tick(ts_partition *p);
void ts_part_settings_resolve(const ts_config *cfg, ts_part_settings *s);
uint64_t ts_part_local_bytes(ts_partition *p);

/* engine.c */
/* Effective config of a topic: engine config with the topic's overrides
 * applied. Caller destroys. */
ts_config *ts_engine_topic_config(ts_engine *eng, const char *topic);
int ts_topic_name_valid(const char *topic);

#endif
