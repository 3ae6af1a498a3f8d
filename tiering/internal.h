/*
 * internal.h — the engine's and partitions' private state, shared by the
 * files of tiering/ only.
 *
 * Names: the public API keeps include/tierstore.h's names (ts_engine_*,
 * ts_partition_*, ts_topic_*, ..._offline); functions shared between the
 * files of tiering/ are ts_part_* (partition.c: one partition) and ts_eng_*
 * (engine.c: the registry, the budget, the background task); segment.h's
 * are ts_segment_*; file-local ones are static and unprefixed.
 *
 * Locking: engine->mu protects the partition registry and topic configs;
 * partition->mu protects its segment list, offsets, flags and settings,
 * except `deleted`, which is atomic: set once (under mu) by
 * ts_partition_delete, and read without mu by entry points that refuse a
 * deleted handle early (they check again under mu where it matters).
 * Lock order: engine->mu before partition->mu; never hold partition->mu
 * across object-store calls, uploads or cold reads (they run on workers or
 * on the caller's thread without locks).
 */
#ifndef TS_TIERING_INTERNAL_H
#define TS_TIERING_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/config_table.h"
#include "common/pool.h"
#include "index/index.h"
#include "objstore/objstore.h"
#include "reader/reader.h"
#include "epoch_cache.h"
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
    int64_t records_start;      /* log start set by DeleteRecords (or the manifest's); 0: none */
    ts_index *idx;              /* shadow index (NULL when remote disabled) */
    ts_part_settings set;
    int64_t unflushed_msgs;
    int64_t first_unflushed_ms; /* -1 when all flushed */
    int upload_inflight;        /* uploads_queued > 0, or an exclusive holder keeps uploads out */
    int uploads_queued;         /* segments handed to upq and not yet done */
    struct ts_upload_queue *upq; /* the scheduler's queue for this partition (tiered only) */
    atomic_int deleted;         /* atomic, not under mu: see the header comment */
    int counted;                /* its bytes are in engine->local_bytes */
    int removes_pending;        /* dropped segments whose files the sync worker has yet to unlink */
    uint64_t removes_bytes;     /* their bytes: still on disk, so inside the local bound */
    int orphans_checked;        /* the one-time orphan sweep ran (bg thread) */
    /* Durability of closed segments, synced off the appending thread:
     * recovery_point is the base of the first segment not known synced
     * (persisted in <dir>/recovery-point; recovery fully scans from there). */
    int64_t recovery_point;
    int sync_inflight;          /* a background sync job is queued or running */
    int sync_pending;           /* a sync pass was asked for since the job last looked */
    int sync_want_active;       /* ...and it must include the active segment */
    uint64_t dir_gen, dir_synced_gen; /* directory entries created / fsynced */
    pthread_mutex_t sync_mu;    /* serialises sync passes and checkpoint writes */
    pthread_mutex_t retention_mu; /* serialises retention passes */
    int64_t missing_logged_ms;  /* mu: last ERROR about a missing object (mono) */
    uint64_t missing_quiet;     /* mu: missing-object reads not logged since */
    /* Replication (TS_PART_REPLICATED; replica.c). Under mu. */
    int replicated;             /* persisted in <dir>/replication-state */
    int is_leader;              /* the role partition_set_role gave (persisted) */
    int32_t role_epoch;         /* the epoch of that role; -1: none set */
    int epoch_committed;        /* leader: the first commit at role_epoch is in the bucket */
    int fenced;                 /* a commit met a newer leader epoch: no uploads until a new role */
    int64_t hw;                 /* high watermark (replicated partitions; else leo is used) */
    int64_t hw_checkpointed;    /* value in <dir>/high-watermark */
    int64_t next_refresh_ms;    /* follower: monotonic time of the next manifest re-read */
    ts_epoch_cache epochs;      /* leader epoch cache, persisted in leader-epoch-checkpoint */
    /* ts_partition_counters (upload job, cold reads; any thread reads). */
    atomic_ullong copy_bytes, copy_requests, copy_errors;
    atomic_ullong fetch_bytes, fetch_requests, fetch_errors;
};

struct ts_engine {
    ts_config *cfg;             /* in effect: as opened + cfg_dynamic (engine->mu) */
    ts_config *cfg_opened;      /* as opened, once ts_engine_alter_config replaced cfg (else NULL);
                                 * `set` points into it, so it lives until close */
    ts_config *cfg_dynamic;     /* settings changed while running (engine->mu; NULL: none) */
    const ts_settings *set;     /* typed view of cfg (common/config_table.h) */
    char data_dir[PATH_MAX];
    char cache_dir[PATH_MAX];
    int lock_fd;
    ts_objstore *os;            /* NULL when remote storage is disabled */
    ts_chunk_cache *cache;
    ts_keyring *keyring;        /* remote.storage.encryption.keyring, or NULL */
    ts_chunk_table_cache *ctcache; /* chunk tables of remote segments (remote.log.index.cache.bytes) */
    ts_reader *reader;
    struct ts_upload_sched *uploads; /* the upload workers and the partitions' queues */
    ts_pool *upload_pool;       /* the same workers (borrowed), for a new leader's epoch commit */
    ts_pool *sync_pool;         /* fsyncs (rolls, flush.messages, flush.ms) and unlinks:
                                 * the disk waits the appending thread never does */
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
    int64_t bg_wake_ms;         /* monotonic: run the ticks early (a retry is due); 0 = none */
    /* Broker-wide local disk budget (retention.local.target.capacity.bytes,
     * -1 = none) against the sum of every open partition's local segment
     * bytes, kept up to date by append and by segment removal. */
    int64_t local_capacity;
    atomic_llong local_bytes;
    pthread_mutex_t trim_mu;    /* serialises budget trims */
    atomic_ullong uploads_done, uploads_failed;
    /* Topic descriptors (topic_desc.c): recorded partition count per topic
     * seen, under desc_mu; desc_pending: a write to retry on the tick. */
    pthread_mutex_t desc_mu;
    struct ts_desc_entry *descs;
    size_t ndescs;
    int64_t desc_last_ms;
    int64_t config_last_ms;    /* newest topic-config object key's ms (atomic): keys strictly
                                  increase within this engine, as descriptors' do */
    _Atomic int desc_pending;
};

/* engine.c */
/* Loads remote.storage.encryption.keyring when set (else *out NULL) and,
 * with encryption enabled, checks that it is set and holds the active key.
 * TS_E_CONFIG naming the file or the key. Shared with the offline tools. */
ts_status ts_engine_keyring_open(const ts_settings *set, ts_keyring **out, char *errstr,
                                 size_t errlen);

/* partition.c */
/* tc: the topic's effective config (engine config + overrides). Called
 * with engine->mu held. */
ts_status ts_part_open(ts_engine *eng, const char *topic, int32_t id, int create,
                       const ts_config *tc, ts_partition **out, char *errstr, size_t errlen);
void ts_part_close(ts_partition *p);
/* Background duties of one partition (engine bg thread). */
void ts_part_tick(ts_partition *p);
/* message.max.bytes of a partition, read without its lock (validation,
 * uploads, time lookups): the field a dynamic config change may write while
 * they run, so it is stored and loaded atomically. */
static inline size_t ts_part_max_batch(const ts_partition *p)
{
    return (size_t)__atomic_load_n(&p->set.max_batch, __ATOMIC_RELAXED);
}
void ts_part_settings_resolve(const ts_config *cfg, ts_part_settings *s);
uint64_t ts_part_local_bytes(ts_partition *p);
/* Budget trim step: drops the oldest local segment of p if its remote copy
 * is durable and p is not its only local segment; *max_ts receives that
 * segment's max timestamp when it is a candidate. do_drop=0 only asks.
 * Returns 1 when a candidate exists (and, with do_drop, was dropped).
 * Thread: any; takes p->mu. */
int ts_part_trim_oldest(ts_partition *p, int do_drop, int64_t *max_ts);
/* 1 when p has a closed segment that is not yet remote (an upload is due). */
int ts_part_upload_pending(ts_partition *p);
/* Bytes of p's active segment (0 when p is not tiered or was deleted). */
uint64_t ts_part_active_bytes(ts_partition *p);
/* Rolls p's active segment (budget: so its bytes can be uploaded and leave
 * local disk), unless the partition's own local bound forbids it. */
void ts_part_roll_for_budget(ts_partition *p);
/* qsort comparator of ts_segment_info rows by base offset. */
int ts_part_info_cmp_base(const void *a, const void *b);
/* Merges local segment rows and remote manifest entries by base offset
 * into *rows (malloc'd, sorted). Any thread; no locks (the engine's
 * placement and the offline view both use it). */
ts_status ts_part_placement_merge(int32_t partition, ts_segment_info *local, size_t nlocal,
                                  const ts_segment_meta *remote, size_t nremote,
                                  ts_segment_info **rows, size_t *nrows);

/* Shared by partition.c and replica.c (p->mu held unless said otherwise). */
/* Removes segs[i] and unlinks its files now, on the caller's thread (a
 * truncation recreates files of the same names at once). */
void ts_part_remove_seg_now(ts_partition *p, size_t i);
ts_status ts_part_push_seg(ts_partition *p, ts_segment *s);
/* Persists the recovery point (no lock needed: p->sync_mu held by caller
 * or no sync can run). */
void ts_part_write_recovery_point(ts_partition *p, int64_t rp);
/* Starts the next upload when one is due (p->mu held). */
void ts_part_schedule_upload(ts_partition *p);
/* Drops local segments whose whole range is durable in the remote
 * manifest, under local retention (takes p->mu). */
void ts_part_enforce_local_retention(ts_partition *p);
/* First readable offset, local or remote (DeleteRecords included). p->mu held. */
int64_t ts_part_log_start_locked(ts_partition *p);
/* The local segment a hot read of offset starts in: the last with base <=
 * offset, or the first after a gap (p->nsegs > 0). Partition lock held. */
ts_segment *ts_part_seg_for_locked(ts_partition *p, int64_t offset);
/* First offset not covered by the manifest (its end + 1, or where
 * retention left its log start; 0 when nothing was ever remote). */
int64_t ts_part_remote_end(ts_partition *p);

/* replica.c */
/* Byte position and base offset of the batch of s holding offset (the
 * first batch whose last offset >= offset; past the last: its size and
 * last offset + 1). p->mu held, or s closed (it no longer changes). */
ts_status ts_part_batch_holding(ts_partition *p, ts_segment *s, int64_t offset, uint64_t *pos,
                                int64_t *base, char *errstr, size_t errlen);
/* Loads (or, with want_replicated, creates) the replication state of a
 * partition being opened, after its segments and offsets are known: the
 * flag and role, the epoch cache (trimmed to the log end), the high
 * watermark (clamped to it). No lock: the partition is not shared yet. */
ts_status ts_part_repl_open(ts_partition *p, int want_replicated, char *errstr, size_t errlen);
void ts_part_repl_close(ts_partition *p);
/* Background duty: the lazy high-watermark checkpoint; a follower's
 * manifest re-read and local retention. Thread: the engine's bg thread. */
void ts_part_repl_tick(ts_partition *p);
/* May this closed segment be uploaded now (p->mu held)? Always on a
 * partition that is not replicated; otherwise only as an unfenced leader
 * whose first commit at its epoch is done, for a segment wholly below the
 * high watermark. */
int ts_part_repl_may_upload(ts_partition *p, const ts_segment *s);
/* Append as leader: refuses a follower or a fenced leader (TS_E_FENCED);
 * stamps partitionLeaderEpoch into n batches at data+rel[i] (outside the
 * CRC). p->mu held. */
struct ts_batch_hdr;
ts_status ts_part_repl_stamp_locked(ts_partition *p, uint8_t *data, struct ts_batch_hdr *hdrs,
                                    const size_t *rel, size_t n, char *errstr, size_t errlen);
/* Follower append: the epoch cache learns each batch epoch above its
 * latest, persisted before the batches are written. p->mu held. */
ts_status ts_part_repl_learn_locked(ts_partition *p, const struct ts_batch_hdr *hdrs, size_t n,
                                    char *errstr, size_t errlen);
/* An upload's commit met a newer leader epoch: stop uploading until a new
 * role is set (takes p->mu). */
void ts_part_repl_fenced(ts_partition *p, const char *why);
/* The epochs of [base, last] from the epoch cache as manifest entry epochs
 * (malloc'd *out, *n entries; the first starts at base). p->mu held. */
ts_status ts_part_repl_segment_epochs_locked(ts_partition *p, int64_t base, int64_t last,
                                             ts_epoch_entry **out, size_t *n);

/* engine.c */
/* Trims local copies of uploaded segments, oldest first across partitions,
 * while the local bytes plus `incoming` exceed the broker-wide budget; only
 * list changes here (the unlinks go to the sync worker), and it never waits
 * for a lock another trim or a partition recovery holds, so the appending
 * thread may call it. Returns 1 when the budget then holds `incoming` more
 * bytes. Thread: any; no partition lock held. */
int ts_eng_trim_local(ts_engine *eng, uint64_t incoming);
/* Makes the background thread run the partition ticks at (monotonic) ms,
 * before the next periodic tick if earlier. Thread: any; no locks held. */
void ts_eng_wake_at(ts_engine *eng, int64_t mono_ms);

/* Partitions of a topic from the local data dir and the bucket (os may be
 * NULL), ascending; *parts malloc'd. Any thread; no locks (the engine's
 * listing and the offline view both use it). */
ts_status ts_eng_partitions_scan(const char *data_dir, ts_objstore *os, const char *topic,
                                 int32_t **parts, size_t *nparts, char *errstr, size_t errlen);

/* topic_desc.c — topic descriptors (<topic>/descriptor/). */
typedef struct ts_desc_entry ts_desc_entry;
/* The greatest key under prefix ending in suffix ("" when none): the
 * newest of a "new immutable object per change" series. */
ts_status ts_eng_list_newest(ts_objstore *os, const char *prefix, const char *suffix, char *out,
                             size_t outlen, char *errstr, size_t errlen);
/* GET and parse one descriptor object: TS_E_CORRUPT naming it. */
ts_status ts_eng_desc_read(ts_objstore *os, const char *topic, const char *key, int32_t *count,
                           char *errstr, size_t errlen);
/* After partition `id` of topic opened: the bucket records >= id + 1
 * partitions (a PUT when it did not; a failed one retried by the tick).
 * Takes desc_mu; not with engine->mu held. */
void ts_eng_desc_note(ts_engine *eng, const char *topic, int32_t id);
/* Background tick: retries failed descriptor writes. */
void ts_eng_desc_retry(ts_engine *eng);
/* After partition `id` of topic was deleted: no partition left -> its
 * descriptors go; the highest one went -> the count becomes id. */
void ts_eng_desc_forget(ts_engine *eng, const char *topic, int32_t id);
void ts_eng_desc_free(ts_engine *eng);

/* Effective config of a topic: engine config with the topic's overrides
 * applied. Caller destroys. */
ts_config *ts_eng_topic_config(ts_engine *eng, const char *topic);

/* Re-resolves the settings of the open partitions of topic (NULL: all)
 * from the engine config and their topic's overrides. engine->mu held. */
void ts_eng_apply_settings(ts_engine *eng, const char *topic);
/* Copies the overrides of src (topic keys: engine settings and stored
 * Kafka keys) into dst, except the keys in skip (NULL entries ignored). */
typedef struct ts_copy_ctx {
    ts_config *dst;
    const char *const *skip;
    size_t nskip;
} ts_copy_ctx;
void ts_eng_copy_overrides(const ts_config *src, ts_config *dst, const char *const *skip,
                           size_t nskip);
/* A copy of the topic's stored overrides (NULL when it has none). */
ts_config *ts_eng_topic_overrides(ts_engine *eng, const char *topic);

/* topic_keys.c: Kafka's topic-level configs. Types are Kafka's ConfigType
 * numbers (DescribeConfigs reports them). */
enum { TS_TK_BOOLEAN = 1, TS_TK_STRING = 2, TS_TK_INT = 3, TS_TK_LONG = 5, TS_TK_DOUBLE = 6,
       TS_TK_LIST = 7 };
typedef struct ts_topic_key {
    const char *name;       /* Kafka's topic config name */
    const char *engine_key; /* the engine setting it overrides; NULL: stored for the host */
    int type;               /* TS_TK_* */
    const char *def;        /* stored keys: Kafka's default (engine keys: the engine's) */
    int64_t min;            /* stored INT/LONG keys: least value */
    const char *allowed;    /* stored keys: accepted values "a|b" (NULL: any of the type) */
    const char *why;        /* ...and why Kafka's others are refused */
    const char *doc;
} ts_topic_key;
const ts_topic_key *ts_topic_key_at(size_t i); /* NULL past the end */
const ts_topic_key *ts_topic_key_find(const char *name);
const ts_topic_key *ts_topic_key_for_engine(const char *engine_key);
/* Validates a value of a stored key (TS_E_CONFIG naming key and reason). */
ts_status ts_topic_key_check(const ts_topic_key *k, const char *value, char *errstr,
                             size_t errlen);
void ts_topic_key_names(char *out, size_t outlen);

#endif
