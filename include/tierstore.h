/*
 * tierstore.h — the public API of the tierstore engine.
 *
 * tierstore keeps a partitioned log of Kafka record batches (format v2,
 * magic 2) on local disk, uploads closed segments to an object store in the
 * background, and reads cold offsets back from the bucket transparently.
 *
 * Conventions (the whole API follows them):
 *  - Every call returns a ts_status: TS_OK (0) or a negative code.
 *  - Calls that can fail take a caller-owned error buffer (errstr, errlen)
 *    and write one line into it saying what failed, on what, and why.
 *    errstr may be NULL when errlen is 0.
 *  - create/open pairs with destroy/close; destroy(NULL) is a no-op.
 *  - All engine and partition calls are thread-safe unless noted.
 */
#ifndef TIERSTORE_H
#define TIERSTORE_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "tierstore_names.h" /* ts_topic_name_valid */

#ifdef __cplusplus
extern "C" {
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 1

/*
 * Status codes: TS_OK or a negative TS_E_*, listed with their meaning and
 * whether a retry may help in tierstore_status.def (the one table). Never
 * renumbered, never reused: append new codes at the end of that file.
 */
typedef enum ts_status {
#define TS_STATUS_X(id, code, retriable, message) TS_##id = (code),
#include "tierstore_status.def"
#undef TS_STATUS_X
} ts_status;

/* Short constant name of a status ("TS_E_CORRUPT"). */
const char *ts_status_name(ts_status st);
/* Non-zero when the same call may succeed if retried later. */
int ts_status_is_retriable(ts_status st);

/* ------------------------------------------------------------------------
 * Configuration: Kafka-style properties (key=value). See CONFIGURATION.md.
 * ------------------------------------------------------------------------ */
typedef struct ts_config ts_config;

ts_config *ts_config_create(void);
void ts_config_destroy(ts_config *cfg);
ts_config *ts_config_dup(const ts_config *cfg);

/* Sets one property after validating it against the property table.
 * Unknown keys and bad values return TS_E_CONFIG with a message naming the
 * key, the value and what is allowed. */
ts_status ts_config_set(ts_config *cfg, const char *key, const char *value,
                        char *errstr, size_t errlen);

/* Loads a properties file. Lines: `key=value` or `key: value`; `#` and `!`
 * start comments. With ignore_unknown non-zero, keys not in the engine's
 * property table are kept (retrievable with ts_config_get) but not
 * validated: a host such as the broker validates its own keys. */
ts_status ts_config_load_file(ts_config *cfg, const char *path, int ignore_unknown,
                              char *errstr, size_t errlen);

/* Current value of a key (the default when unset), or NULL when unknown.
 * The pointer stays valid until the key is set again or cfg destroyed. */
const char *ts_config_get(const ts_config *cfg, const char *key);

/* Writes the property table as Markdown (CONFIGURATION.md) to buf.
 * Returns the number of bytes needed (like snprintf). */
size_t ts_config_describe_markdown(char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Engine and partitions
 * ------------------------------------------------------------------------ */
typedef struct ts_engine ts_engine;
typedef struct ts_partition ts_partition;

/* Opens the engine: data directory, object store, worker pools. Existing
 * partitions on disk are recovered lazily by ts_partition_open.
 * cfg is copied; the caller keeps ownership. */
ts_status ts_engine_open(const ts_config *cfg, ts_engine **out, char *errstr, size_t errlen);

/* Stops workers (waiting for in-flight uploads to finish or abort cleanly),
 * flushes every partition and frees everything. */
void ts_engine_close(ts_engine *eng);

/* Opens a partition, creating it when create is non-zero and it does not
 * exist locally. When it exists neither locally nor as a manifest in the
 * bucket and create is 0, returns TS_E_NOT_FOUND. When the data directory
 * has no trace of it but the bucket does, the partition is recovered from
 * the bucket's manifest. A local manifest that does not parse is moved
 * aside (remote_manifest.json.corrupt-<ms>) and the manifest recovered from
 * the bucket; with no usable copy there the open fails with TS_E_CORRUPT and
 * nothing is changed. The handle is owned by the engine: do not free it;
 * it stays valid until ts_engine_close. Topic names follow Kafka's rules:
 * [A-Za-z0-9._-], 1..249 characters. */
#define TS_PART_CREATE 0x1     /* create when it exists neither locally nor remotely */
#define TS_PART_REPLICATED 0x2 /* a replica of a replicated partition (remembered) */
/* `create` is a set of TS_PART_* flags (1, as before, creates). With
 * TS_PART_REPLICATED the partition becomes a replica (the flag is persisted
 * and kept by later opens without it): uploads are gated by the high
 * watermark and the leader role (ts_partition_set_role). */
ts_status ts_partition_open(ts_engine *eng, const char *topic, int32_t partition, int create,
                            ts_partition **out, char *errstr, size_t errlen);

/* Appends one or more record batches (v2), back to back, in `data`. Each
 * batch is validated (length, magic 2, CRC-32C: TS_E_CORRUPT; then every
 * record, decompressing within message.max.bytes: TS_E_INVALID_RECORD or
 * TS_E_MSG_TOO_LARGE) before anything is written: one bad batch rejects the
 * whole call and nothing is appended. The engine
 * assigns offsets (rewriting each batch's baseOffset). On success the
 * first and last assigned offsets are stored in *first_offset / *last_offset
 * (either may be NULL). Returns TS_E_BACKPRESSURE (retriable) when local
 * disk is at its bound because uploads lag. */
ts_status ts_partition_append(ts_partition *p, const void *data, size_t len,
                              int64_t *first_offset, int64_t *last_offset,
                              char *errstr, size_t errlen);

/* Reads whole record batches starting with the batch that contains
 * `offset`, up to max_bytes (at least one whole batch is returned even if it
 * is larger than max_bytes, as Kafka does). Local segments are read from
 * disk; remote ones through the chunk cache, verified before they are
 * returned. On success *out is a malloc'd buffer the caller frees (NULL and
 * *out_len 0 when offset equals the log end offset).
 * TS_E_OFFSET_OUT_OF_RANGE when offset < log start or > log end.
 * TS_E_OBJECT_MISSING when offset lies in a remote segment whose object the
 * manifest names but the store lacks (logged as an ERROR naming the object,
 * at most once a minute per partition). Offsets no manifest entry covers
 * (a retention gap) are skipped: the read starts at the next offset that
 * holds data. */
ts_status ts_partition_read(ts_partition *p, int64_t offset, size_t max_bytes,
                            uint8_t **out, size_t *out_len, char *errstr, size_t errlen);

/* Where ts_partition_read_file's batches are: `length` bytes at
 * `file_offset` of `fd`, a duplicate of the segment's file the caller owns
 * (close(2) it). fd is -1 when length is 0. */
typedef struct ts_file_range {
    int fd;
    uint64_t file_offset;
    uint64_t length;
    int64_t first_offset; /* base offset of the first batch */
    int64_t next_offset;  /* last offset of the last batch + 1; = offset when empty */
} ts_file_range;

/* The hot path of ts_partition_read without the copy: the same whole
 * batches (headers checked the same way, at least one, up to max_bytes,
 * one segment), as a file range, never a batch whose last offset is >=
 * stop_offset nor, on a replicated partition, >= its high watermark.
 * TS_E_NOT_FOUND when offset is below the first local segment (read it
 * with ts_partition_read). The range's bytes never change while the fd is
 * open: segment removal only unlinks, truncation never goes below the high
 * watermark, appends land past it (tiering/read_file.c). */
ts_status ts_partition_read_file(ts_partition *p, int64_t offset, size_t max_bytes,
                                 int64_t stop_offset, ts_file_range *out, char *errstr,
                                 size_t errlen);

/* fsyncs the active segment and its indexes, every closed segment not yet
 * synced (a roll queues their sync on the engine's sync worker), and the
 * partition directory: every record appended before the call survives a
 * crash once it returns TS_OK. Synchronous; not for the appending thread. */
ts_status ts_partition_flush(ts_partition *p, char *errstr, size_t errlen);

/* Closes the active segment now (if non-empty) so it becomes eligible for
 * upload. Used by tests, the CLI and the broker's admin paths. */
ts_status ts_partition_roll(ts_partition *p, char *errstr, size_t errlen);

/* Waits until every closed segment is uploaded and committed to the remote
 * manifest, or timeout_ms passes (TS_E_TIMEOUT). */
ts_status ts_partition_wait_uploaded(ts_partition *p, int64_t timeout_ms,
                                     char *errstr, size_t errlen);

/* Runs retention (local and total) now instead of waiting for the
 * background task. */
ts_status ts_partition_enforce_retention(ts_partition *p, char *errstr, size_t errlen);

typedef struct ts_offsets {
    int64_t log_start_offset;    /* first readable offset (local or remote) */
    int64_t local_start_offset;  /* first offset held on local disk */
    int64_t log_end_offset;      /* next offset to be assigned */
    int64_t high_watermark;      /* committed below; = log end unless replicated */
    int64_t remote_end_offset;   /* first offset the manifest does not cover (0: none) */
    int32_t leader_epoch;        /* latest epoch of the epoch cache, -1 none */
} ts_offsets;

ts_status ts_partition_offsets(ts_partition *p, ts_offsets *out);

/* ------------------------------------------------------------------------
 * Replication (partitions opened with TS_PART_REPLICATED). The contract of
 * each call is the plugin ABI's (include/tierstore_plugin.h, minor 2):
 * set_role, append_replica, truncate, epoch_end_offset,
 * set_high_watermark, reset_local. tiering/README.md says how.
 * ------------------------------------------------------------------------ */
ts_status ts_partition_set_role(ts_partition *p, int32_t leader_epoch, int is_leader,
                                char *errstr, size_t errlen);
ts_status ts_partition_append_replica(ts_partition *p, const void *data, size_t len,
                                      int64_t *last_offset, char *errstr, size_t errlen);
ts_status ts_partition_truncate(ts_partition *p, int64_t offset, int64_t *new_end,
                                char *errstr, size_t errlen);
ts_status ts_partition_epoch_end_offset(ts_partition *p, int32_t epoch, int32_t *found_epoch,
                                        int64_t *end_offset, char *errstr, size_t errlen);
ts_status ts_partition_set_high_watermark(ts_partition *p, int64_t hw, char *errstr,
                                          size_t errlen);
ts_status ts_partition_reset_local(ts_partition *p, int64_t offset, char *errstr,
                                   size_t errlen);

/* Earliest offset whose batch has max timestamp >= ts (Kafka ListOffsets by
 * timestamp), searching the remote tier and local segments.
 * TS_E_NOT_FOUND when no batch qualifies. */
ts_status ts_partition_offset_for_time(ts_partition *p, int64_t timestamp_ms, int64_t *offset,
                                       char *errstr, size_t errlen);

/* Topic-level overrides, Kafka's topic config names: segment.bytes,
 * segment.ms, retention.bytes, retention.ms, local.retention.bytes,
 * local.retention.ms, flush.messages, flush.ms, max.message.bytes,
 * remote.storage.enable. Applies to the topic's open and future partitions
 * and is persisted with the data (locally and in the bucket) so a recovered
 * topic keeps it. Unknown keys or bad values: TS_E_CONFIG naming them. */
ts_status ts_topic_set_config(ts_engine *eng, const char *topic, const char *const *keys,
                              const char *const *values, size_t n, char *errstr, size_t errlen);

/* Encryption at rest: re-wraps the data key of every encrypted remote
 * segment of p whose key-encryption key is not
 * remote.storage.encryption.active.key under that key, as one new manifest
 * version; no object is rewritten. Afterwards older keys the partition
 * named may leave the key ring. A key the ring lacks is TS_E_CONFIG naming
 * its id (nothing committed). *rewrapped: how many keys moved (0: nothing
 * to do, no new version). `tierctl rekey TOPIC` runs it for a topic. */
ts_status ts_partition_rekey(ts_partition *p, size_t *rewrapped, char *errstr, size_t errlen);

/* Changes a topic's overrides: each key is set to its value, a NULL value
 * deletes it (the engine setting applies again); with
 * TS_TOPIC_CONFIG_REPLACE the keys given become the whole set (Kafka's
 * AlterConfigs). Every Kafka 3.x topic config is accepted at its Kafka
 * default: the ones the engine has no use for (min.insync.replicas,
 * unclean.leader.election.enable, ...) are validated and kept verbatim for
 * the host; values it cannot honour (cleanup.policy=compact) are
 * TS_E_CONFIG with the reason. TS_TOPIC_CONFIG_VALIDATE_ONLY checks and
 * changes nothing. Persisted as ts_topic_set_config (which is this without
 * flags: the keys given merge into the set). */
#define TS_TOPIC_CONFIG_REPLACE 0x1u
#define TS_TOPIC_CONFIG_VALIDATE_ONLY 0x2u
ts_status ts_topic_alter_config(ts_engine *eng, const char *topic, const char *const *keys,
                                const char *const *values, size_t n, unsigned flags,
                                char *errstr, size_t errlen);

/* One configuration entry (ts_config_list), topic-level or engine-wide. */
#define TS_CONFIG_TOPIC_SET 0x1u   /* topic rows: the topic overrides it */
#define TS_CONFIG_SET 0x2u         /* the engine setting (topic rows: its synonym) was set at open */
#define TS_CONFIG_ALTERED 0x4u     /* ...or changed since by ts_engine_alter_config */
#define TS_CONFIG_DYNAMIC 0x8u     /* ts_engine_alter_config may change it */
#define TS_CONFIG_SENSITIVE 0x10u  /* a credential: value withheld ("") */
#define TS_CONFIG_STORED 0x20u     /* topic rows: kept for the host, the engine does not apply it */
typedef struct ts_config_row {
    char name[128];
    char synonym[128];        /* topic rows: the engine setting used when not overridden */
    char value[1024];         /* in effect (truncated beyond) */
    char default_value[256];
    char doc[1024];
    int32_t type;             /* Kafka's ConfigType: 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE,
                                 7 LIST, 9 PASSWORD */
    uint32_t flags;           /* TS_CONFIG_* */
} ts_config_row;

/* Every Kafka topic config of a topic with its value in effect (topic not
 * NULL), or every engine setting (topic NULL). *rows malloc'd. */
ts_status ts_config_list(ts_engine *eng, const char *topic, ts_config_row **rows, size_t *nrows,
                         char *errstr, size_t errlen);

/* Changes engine settings while running (Kafka's dynamic broker configs):
 * only settings marked dynamic (the ones a topic may override: segment,
 * flush and retention settings, message.max.bytes); a NULL value goes back
 * to the value the engine was opened with. Applies to every open partition
 * not overriding it, at once. Not persisted: the host stores them and
 * applies them again after ts_engine_open. Others: TS_E_CONFIG naming the
 * key. TS_TOPIC_CONFIG_VALIDATE_ONLY checks and changes nothing. */
ts_status ts_engine_alter_config(ts_engine *eng, const char *const *keys,
                                 const char *const *values, size_t n, unsigned flags,
                                 char *errstr, size_t errlen);

/* Kafka's DeleteRecords: moves the log start offset up to `offset` (-1: the
 * log end). Manifest entries wholly below it leave the manifest (durable
 * locally and in the bucket first) and their objects are deleted; local
 * segments wholly below it go; reads below it answer
 * TS_E_OFFSET_OUT_OF_RANGE. The new start survives a restart and a
 * recovery from the bucket. An offset below the log start changes nothing;
 * past the log end: TS_E_OFFSET_OUT_OF_RANGE. *low_watermark = the log
 * start after the call. */
ts_status ts_partition_delete_records(ts_partition *p, int64_t offset, int64_t *low_watermark,
                                      char *errstr, size_t errlen);

/* Deletes a partition everywhere: local segments, its remote objects and
 * manifests. The handle (if open) becomes invalid. */
ts_status ts_partition_delete(ts_engine *eng, const char *topic, int32_t partition,
                              char *errstr, size_t errlen);

/* Deletes the local files of every partition of `topic` on this disk
 * (segments, indexes, local manifest, epoch cache, high watermark): what a
 * broker drops when its local replicas belong to an older incarnation of the
 * topic (KIP-516). The bucket is untouched: a newer incarnation of the same
 * name may already have objects there. Refused (TS_E_INVAL, nothing deleted)
 * while a partition of the topic is open: the caller deletes before it opens.
 * The topic's local config file stays (a host applies the new configs first).
 * *ndeleted (may be NULL) = the partition directories removed. */
ts_status ts_topic_delete_local(ts_engine *eng, const char *topic, int32_t *ndeleted,
                                char *errstr, size_t errlen);

/* Lists the partitions of a topic the engine knows (open, on local disk, or
 * in the bucket: manifests, and [0, n) for a descriptor recording n;
 * TS_E_CORRUPT naming the descriptor object when it is unreadable), ascending. *parts is malloc'd. The listings share one
 * pattern: ts_topic_partitions (running engine), ts_topic_partitions_offline
 * and ts_topics_offline (read-only, from a config); this one was
 * ts_engine_topic_partitions (no alias: the plugin ABI calls it
 * topic_partitions and is unchanged). */
ts_status ts_topic_partitions(ts_engine *eng, const char *topic, int32_t **parts,
                                     size_t *nparts, char *errstr, size_t errlen);

/* One topic of the bucket (ts_topics_list). partitions: the count its
 * newest descriptor (<topic>/descriptor/) records, or more when manifests
 * of higher partitions exist; -1 when its descriptor is unreadable
 * (ts_topic_partitions then says why, naming the object). */
typedef struct ts_topic_info {
    char name[256];
    int32_t partitions;
} ts_topic_info;

/* Every topic of the bucket (a descriptor or a partition manifest under
 * "<topic>/"), a page at a time: up to max (<= 4096) topics after `after`
 * (NULL or "" for the first page) in the bucket's key order (the order of
 * "<topic>/"). A page shorter than max is the last. One LIST of the bucket
 * per page (it walks every key, so: admin tools and startup, not hot
 * paths), then one GET per topic with a descriptor; memory is bounded by
 * the page. *rows malloc'd. None without a remote tier. */
ts_status ts_topics_list(ts_engine *eng, const char *after, size_t max, ts_topic_info **rows,
                         size_t *nrows, char *errstr, size_t errlen);

/* Whether the partition has its directory in the engine's data dir (a
 * recovery tells restored partitions from present ones). */
int ts_partition_exists_local(ts_engine *eng, const char *topic, int32_t partition);

/* ------------------------------------------------------------------------
 * Placement: where each segment of a partition lives.
 * ------------------------------------------------------------------------ */
typedef enum ts_location {
    TS_LOC_LOCAL = 1,         /* only on local disk */
    TS_LOC_REMOTE = 2,        /* only in the bucket */
    TS_LOC_LOCAL_REMOTE = 3,  /* on both */
    TS_LOC_MISSING = 4        /* not on local disk, and the bucket lacks the object its manifest
                                 entry names: data loss (reads fail; see tierctl verify) */
} ts_location;

typedef struct ts_segment_info {
    int32_t partition;
    int64_t base_offset;
    int64_t last_offset;
    int64_t first_timestamp;  /* -1 when unknown or empty */
    int64_t max_timestamp;    /* -1 when unknown or empty */
    uint64_t size_bytes;      /* raw segment bytes */
    uint64_t stored_bytes;    /* bytes in the bucket (0 when not remote) */
    ts_location location;
    int active;               /* the segment being appended to */
    char object_key[512];     /* empty when not remote */
} ts_segment_info;

/* Lists every segment of the partition in offset order. *rows is malloc'd
 * (caller frees). */
ts_status ts_partition_placement(ts_partition *p, ts_segment_info **rows, size_t *nrows,
                                 char *errstr, size_t errlen);

/* Read-only placement without opening an engine for writing: reads the
 * local segment files and the local/remote manifest of topic/partition
 * under the given config. Safe while another process runs the engine.
 * Lists the partition's segment objects once (one LIST) so that a
 * remote-only segment whose object is gone says TS_LOC_MISSING. */
ts_status ts_placement_offline(const ts_config *cfg, const char *topic, int32_t partition,
                               ts_segment_info **rows, size_t *nrows,
                               char *errstr, size_t errlen);

/* The same rows streamed to cb in offset order (return non-zero to stop),
 * holding one row at a time plus the index's 64-byte entries, not an array
 * of rows: for partitions with many remote segments. */
typedef int (*ts_placement_cb)(const ts_segment_info *row, void *opaque);
ts_status ts_placement_offline_each(const ts_config *cfg, const char *topic, int32_t partition,
                                    ts_placement_cb cb, void *opaque, char *errstr, size_t errlen);

/* Writes the partition's manifest (local copy, else the bucket's newest) to
 * out as one JSON document: {"head":<head>,"pieces":[<piece>,...]}, the
 * objects as stored (index/README.md). Read-only, one piece at a time. */
ts_status ts_manifest_dump_offline(const ts_config *cfg, const char *topic, int32_t partition,
                                   FILE *out, char *errstr, size_t errlen);

/* Lists the partitions of a topic known locally or in the bucket
 * (ascending). *parts is malloc'd. */
ts_status ts_topic_partitions_offline(const ts_config *cfg, const char *topic,
                                      int32_t **parts, size_t *nparts,
                                      char *errstr, size_t errlen);

const char *ts_location_name(ts_location loc);

/* Topics known locally (partition directories, topic configs) or in the
 * bucket (partition manifests), sorted. Lists the whole bucket: meant for
 * admin tools, not hot paths. *topics is a malloc'd array of malloc'd
 * strings; free with ts_topics_free. */
ts_status ts_topics_offline(const ts_config *cfg, char ***topics, size_t *ntopics,
                            char *errstr, size_t errlen);
void ts_topics_free(char **topics, size_t ntopics);

/* Where one offset lives (read-only, like ts_placement_offline). */
typedef struct ts_offset_location {
    ts_segment_info segment;   /* the segment holding the offset */
    int32_t chunk_index;       /* remote chunk holding its batch; -1 if not remote */
    int32_t chunk_count;
    uint64_t chunk_raw_pos;    /* chunk's position in the raw segment */
    uint64_t chunk_raw_len;
    uint64_t chunk_stored_pos; /* byte range of the chunk's zstd frame in the object */
    uint64_t chunk_stored_len;
    int64_t chunk_first_offset;
} ts_offset_location;

/* TS_E_OFFSET_OUT_OF_RANGE when no segment holds the offset. */
ts_status ts_locate_offline(const ts_config *cfg, const char *topic, int32_t partition,
                            int64_t offset, ts_offset_location *out, char *errstr, size_t errlen);

/* Verifies every remote segment of a partition end to end: downloads each
 * chunk, checks the stored CRC-32C, decompresses, checks the raw CRC-32C
 * and every record batch's CRC-32C inside it. cb is called once per
 * segment with its status and a message (TS_OK: "ok, N chunks, M batches").
 * Returns TS_OK when every segment verified, else the first failure. */
typedef void (*ts_verify_cb)(const ts_segment_info *seg, ts_status st, const char *msg,
                             void *opaque);
ts_status ts_verify_offline(const ts_config *cfg, const char *topic, int32_t partition,
                            ts_verify_cb cb, void *opaque, char *errstr, size_t errlen);

/* ------------------------------------------------------------------------
 * Engine statistics (for the demo, the CLI, benchmarks and the broker's
 * metrics).
 * ------------------------------------------------------------------------ */
/* Object-store operations and outcomes counted per request. */
typedef enum ts_objstore_op {
    TS_OBJSTORE_OP_PUT = 0,
    TS_OBJSTORE_OP_GET,
    TS_OBJSTORE_OP_LIST,
    TS_OBJSTORE_OP_DELETE,
    TS_OBJSTORE_OP_HEAD,
    TS_OBJSTORE_OP_COUNT
} ts_objstore_op;
typedef enum ts_objstore_outcome {
    TS_OBJSTORE_OUTCOME_OK = 0,
    TS_OBJSTORE_OUTCOME_NOTFOUND, /* TS_E_NOT_FOUND */
    TS_OBJSTORE_OUTCOME_ERROR,    /* any other failure */
    TS_OBJSTORE_OUTCOME_COUNT
} ts_objstore_outcome;

typedef struct ts_engine_stats {
    uint64_t local_bytes;         /* segment + index bytes on local disk */
    uint64_t cache_bytes;         /* chunk cache bytes on local disk */
    uint64_t remote_bytes;        /* stored bytes of committed remote segments */
    uint64_t remote_raw_bytes;    /* raw bytes of committed remote segments */
    uint64_t remote_objects;      /* committed remote segment objects */
    uint64_t uploads_done;
    uint64_t uploads_failed;      /* attempts that failed and will be retried */
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t remote_get_bytes;    /* bytes fetched from the object store */
    uint64_t unflushed_records;   /* appended, not yet known fsynced */
    /* Appended for the broker's metrics (issue 12). */
    uint64_t cache_evictions;     /* chunks dropped from the chunk cache */
    /* Object-store requests as the engine issued them (one per ts_objstore_*
     * call; a streaming upload counts as one put, at its commit), by
     * operation and outcome, and the payload bytes moved: the cost model. */
    uint64_t objstore_requests[TS_OBJSTORE_OP_COUNT][TS_OBJSTORE_OUTCOME_COUNT];
    uint64_t objstore_bytes_put;
    uint64_t objstore_bytes_got;
} ts_engine_stats;

void ts_engine_stats_get(ts_engine *eng, ts_engine_stats *out);

/* Remote copy and fetch counters of one partition since it was opened
 * (KIP-405's RemoteCopy* and RemoteFetch*). copy_bytes are the stored bytes
 * of every segment object committed, so while nothing remote was deleted
 * they equal the sum of the placement's stored_bytes of remote segments. */
typedef struct ts_partition_counters {
    uint64_t copy_bytes, copy_requests, copy_errors;
    uint64_t fetch_bytes, fetch_requests, fetch_errors; /* cold reads: raw bytes returned */
} ts_partition_counters;
void ts_partition_counters_get(ts_partition *p, ts_partition_counters *out);

#ifdef __cplusplus
}
#endif
#endif /* TIERSTORE_H */
