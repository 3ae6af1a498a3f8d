/*
 * tierstore_plugin.h — the versioned C ABI through which a broker delegates
 * partition storage to tierstore (libtierstore-plugin.so).
 *
 * Why a separate ABI instead of linking include/tierstore.h: a broker built
 * once must keep loading newer plugins (and a newer broker older plugins)
 * without recompiling. So this header includes no other project header,
 * mirrors the status codes as plain integers, and hands out one table of
 * function pointers that only ever grows at its end.
 *
 * Reference: Kafka KIP-405 (RemoteStorageManager: copy/fetch/delete of log
 * segments; RemoteLogMetadataManager: which segments are where). tierstore
 * widens that to the whole log: the broker does not keep local segments at
 * all, the plugin does (append, read, roll, placement, offsets, retention,
 * delete), and tiering is internal to the plugin.
 *
 * ---------------------------------------------------------------------------
 * Loading
 *   void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
 *   tsp_entry_fn entry = (tsp_entry_fn)dlsym(h, TSP_ENTRY_SYMBOL);
 *   const tsp_plugin *pl = entry(TSP_ABI_MAJOR, errstr, sizeof errstr);
 * The only exported symbol is `tierstore_plugin_entry`. It returns NULL
 * (with a message) when the plugin does not implement the requested major
 * version. Otherwise the table stays valid until dlclose.
 *
 * Versioning
 *   - abi_major changes only when an existing entry changes meaning; a
 *     plugin may serve several majors from one entry point.
 *   - Within a major, new entries are appended; abi_minor grows and
 *     struct_size grows. A host checks TSP_HAS(pl, member) before calling
 *     any entry added after the minor it was built against.
 *   - Structs passed by pointer (tsp_offsets, tsp_engine_stats) carry their
 *     size from the caller where they may grow; rows handed back by the
 *     plugin (tsp_segment_info) come with the row size the plugin used.
 *
 * Errors
 *   Every fallible entry returns a tsp_status (TSP_OK = 0, failures
 *   negative, never renumbered) and writes one line into the caller-owned
 *   buffer (errstr, errlen): what failed, on which partition/offset, why.
 *   errstr may be NULL when errlen is 0. status_name() and
 *   status_is_retriable() interpret codes, including codes newer than the
 *   host (unknown codes are non-retriable failures).
 *
 * Threading
 *   - entry, engine_open and engine_close: call from one thread, not
 *     concurrently with anything else on the same engine.
 *   - Every other entry is thread-safe: any number of threads may append,
 *     read, flush, ... on the same or different partitions. Appends to one
 *     partition are serialized inside the plugin in call order.
 *   - Entries may block on disk I/O (append, flush) and, for read and
 *     offset_for_time of cold offsets, on object-store requests of up to
 *     remote.storage.operation.timeout.ms. A host with a non-blocking
 *     network loop calls read/flush/offset_for_time/placement from worker
 *     threads (the tierbroker does; see broker/README.md).
 *   - The plugin runs its own background threads (uploads, prefetch,
 *     retention); it never calls back into the host.
 *
 * Ownership
 *   - Strings and buffers passed in are only borrowed for the call.
 *   - Handles: a tsp_engine is owned by the host until engine_close; a
 *     tsp_partition is owned by its engine (never freed by the host) and is
 *     valid until engine_close or partition_delete of that partition.
 *   - Buffers handed out (read data, placement rows, partition lists,
 *     config descriptions) are allocated by the plugin and MUST be released
 *     with the table's buffer_free, never with the host's free(): plugin
 *     and host may use different allocators.
 *   - (minor 5) File descriptors handed out (read_file) are the host's:
 *     it closes each with close(2) exactly once.
 * ---------------------------------------------------------------------------
 */
#ifndef TIERSTORE_PLUGIN_H
#define TIERSTORE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSP_ABI_MAJOR 1
#define TSP_ABI_MINOR 6
#define TSP_ENTRY_SYMBOL "tierstore_plugin_entry"

/* Status codes: literal here so the ABI stays frozen, numerically equal to
 * the engine's status table tierstore_status.def (checked at compile time
 * inside the plugin by asserts generated from that table). Append only. */
typedef int32_t tsp_status;
#define TSP_OK 0
#define TSP_E_INVAL (-1)                /* invalid argument or state */
#define TSP_E_NOMEM (-2)                /* allocation failed / cap hit */
#define TSP_E_IO (-3)                   /* local file-system error */
#define TSP_E_CORRUPT (-4)              /* malformed batch (length, magic, CRC) */
#define TSP_E_NOT_FOUND (-5)            /* no such partition / entry */
#define TSP_E_OFFSET_OUT_OF_RANGE (-6)  /* offset below log start or past log end */
#define TSP_E_CONFIG (-7)               /* bad configuration value or unknown key */
#define TSP_E_BACKPRESSURE (-8)         /* local disk bound reached: retry later */
#define TSP_E_REMOTE (-9)               /* object store refused (not retriable) */
#define TSP_E_REMOTE_RETRIABLE (-10)    /* object store 5xx / throttled / reset */
#define TSP_E_AUTH (-11)                /* object store rejected credentials */
#define TSP_E_TIMEOUT (-12)             /* deadline passed */
#define TSP_E_EXISTS (-13)              /* already exists */
#define TSP_E_CHECKSUM (-14)            /* remote bytes failed verification */
#define TSP_E_CLOSED (-15)              /* engine/partition shutting down */
#define TSP_E_NOSPACE (-16)             /* local disk full */
#define TSP_E_UNSUPPORTED (-17)         /* not supported by this plugin build */
#define TSP_E_MSG_TOO_LARGE (-18)       /* batch larger than message.max.bytes */
#define TSP_E_OBJECT_MISSING (-19)      /* an object the manifest names is missing from the
                                           store: data loss; reads of its offsets fail, they
                                           are never skipped (Kafka: KAFKA_STORAGE_ERROR) */
#define TSP_E_INVALID_RECORD (-20)      /* intact batch whose records break the format
                                           (unknown codec, undecodable compressed data,
                                           malformed records, count mismatch). When one
                                           record is at fault the message names it as
                                           "record <i>:" (its index in the batch, from 0),
                                           which a host may report per record (Kafka
                                           RecordErrors). */
#define TSP_E_FENCED (-21)              /* a newer leader epoch exists: this replica's
                                           append/upload/commit is refused (Kafka
                                           FENCED_LEADER_EPOCH) */

typedef struct tsp_engine tsp_engine;
typedef struct tsp_partition tsp_partition;

/* One configuration property (Kafka-style key = value). */
typedef struct tsp_property {
    const char *key;
    const char *value;
} tsp_property;

/* engine_open flags */
#define TSP_OPEN_IGNORE_UNKNOWN 0x1u /* skip keys the plugin does not know (host keys) */

/* partition_open flags */
#define TSP_PART_CREATE 0x1u /* create when it exists neither locally nor remotely */
/* (minor 2) A replica of a replicated partition (the cluster): uploads are
 * gated by the high watermark and the leader role (partition_set_role), and
 * the high watermark survives restarts. Without it a partition behaves as on
 * the single node: high watermark = log end, it always uploads. The flag is
 * remembered with the partition; opening it later without the flag keeps it. */
#define TSP_PART_REPLICATED 0x2u

typedef struct tsp_offsets {
    uint32_t struct_size;        /* caller sets sizeof(tsp_offsets) */
    int64_t log_start_offset;    /* first readable offset, local or remote */
    int64_t local_start_offset;  /* first offset still on local disk */
    int64_t log_end_offset;      /* next offset to be assigned */
    /* --- minor 2 (a minor-1 plugin leaves these as the caller set them) --- */
    int64_t high_watermark;      /* offsets below are committed; = log end unless
                                    TSP_PART_REPLICATED */
    int64_t remote_end_offset;   /* last tiered offset + 1 (the manifest's end; 0 when
                                    nothing is remote): data below is committed for good */
    int32_t leader_epoch;        /* latest epoch in the epoch cache (-1: none) */
    int32_t reserved0;
} tsp_offsets;

#define TSP_LOC_LOCAL 1         /* only on local disk */
#define TSP_LOC_REMOTE 2        /* only in the object store */
#define TSP_LOC_LOCAL_REMOTE 3  /* on both */
#define TSP_LOC_MISSING 4       /* manifest names an object the store lacks (tierctl only) */

typedef struct tsp_segment_info {
    int32_t partition;
    int32_t location;           /* TSP_LOC_* */
    int64_t base_offset;
    int64_t last_offset;
    int64_t first_timestamp;    /* -1 when unknown */
    int64_t max_timestamp;      /* -1 when unknown */
    uint64_t size_bytes;        /* raw segment bytes */
    uint64_t stored_bytes;      /* bytes in the object store (0 when not remote) */
    int32_t active;             /* non-zero for the segment being appended to */
    char object_key[512];       /* empty when not remote */
} tsp_segment_info;

typedef struct tsp_engine_stats {
    uint32_t struct_size;       /* caller sets sizeof(tsp_engine_stats) */
    uint64_t local_bytes;
    uint64_t cache_bytes;
    uint64_t remote_bytes;
    uint64_t remote_raw_bytes;
    uint64_t remote_objects;
    uint64_t uploads_done;
    uint64_t uploads_failed;
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t remote_get_bytes;
    /* --- minor 1 (a minor-0 plugin leaves these as the caller set them) --- */
    uint64_t cache_evictions;
    /* Object-store requests by operation and outcome, and payload bytes:
     * objstore_requests[TSP_OBJSTORE_OP_*][TSP_OBJSTORE_OUTCOME_*]. */
    uint64_t objstore_requests[5][3];
    uint64_t objstore_bytes_put;
    uint64_t objstore_bytes_got;
} tsp_engine_stats;

#define TSP_OBJSTORE_OP_PUT 0
#define TSP_OBJSTORE_OP_GET 1
#define TSP_OBJSTORE_OP_LIST 2
#define TSP_OBJSTORE_OP_DELETE 3
#define TSP_OBJSTORE_OP_HEAD 4
#define TSP_OBJSTORE_OUTCOME_OK 0
#define TSP_OBJSTORE_OUTCOME_NOTFOUND 1
#define TSP_OBJSTORE_OUTCOME_ERROR 2

/* Per-partition statistics (minor 1), KIP-405's per-partition set. Counters
 * count since the partition was opened by this process; sizes and lags are
 * computed from the placement at the call. */
typedef struct tsp_partition_stats {
    uint32_t struct_size;          /* caller sets sizeof(tsp_partition_stats) */
    uint64_t remote_copy_bytes;    /* stored bytes of segment objects committed */
    uint64_t remote_copy_requests; /* segment upload attempts */
    uint64_t remote_copy_errors;   /* attempts that failed (retried later) */
    uint64_t remote_fetch_bytes;   /* bytes returned by cold reads */
    uint64_t remote_fetch_requests;
    uint64_t remote_fetch_errors;
    uint64_t remote_copy_lag_bytes;    /* closed segments not yet remote */
    uint64_t remote_copy_lag_segments;
    uint64_t remote_delete_lag_bytes;  /* remote segments below the log start */
    uint64_t remote_delete_lag_segments;
    uint64_t remote_log_bytes;     /* stored bytes of remote segments */
    uint64_t remote_segments;
    uint64_t local_log_bytes;      /* raw bytes of segments on local disk */
    uint64_t local_segments;
    /* --- appended in minor 2 (an older plugin leaves these as the caller set
     * them: a host presets -1 / 0 and reads -1 as "not reported") --------- */
    int64_t log_start_offset;      /* as tsp_offsets, taken with the placement above */
    int64_t local_start_offset;
    int64_t log_end_offset;
    int64_t last_tiered_offset;    /* last offset of the newest remote segment; -1 when
                                      nothing is remote (Kafka ListOffsets -5, KIP-1005) */
    uint64_t remote_raw_bytes;     /* raw (uncompressed segment) bytes of remote segments */
} tsp_partition_stats;

/* (minor 3) One configuration entry (config_list): a topic-level config
 * under Kafka's topic name, or an engine setting. */
#define TSP_CONFIG_TOPIC_SET 0x1u  /* topic rows: the topic overrides it */
#define TSP_CONFIG_SET 0x2u        /* the engine setting (topic rows: the synonym) was set at open */
#define TSP_CONFIG_ALTERED 0x4u    /* ...or changed since by engine_alter_config */
#define TSP_CONFIG_DYNAMIC 0x8u    /* engine rows: engine_alter_config may change it */
#define TSP_CONFIG_SENSITIVE 0x10u /* a credential: value withheld ("") */
#define TSP_CONFIG_STORED 0x20u    /* topic rows: kept for the host, not applied by the engine
                                      (min.insync.replicas, unclean.leader.election.enable) */
typedef struct tsp_config_info {
    char name[128];
    char synonym[128];          /* topic rows: the engine setting used when not overridden */
    char value[1024];           /* in effect */
    char default_value[256];
    char doc[1024];
    int32_t type;               /* Kafka's ConfigType: 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG,
                                   6 DOUBLE, 7 LIST, 9 PASSWORD */
    uint32_t flags;             /* TSP_CONFIG_* */
} tsp_config_info;

/* topic_alter_config / engine_alter_config flags (minor 3) */
#define TSP_ALTER_REPLACE 0x1u       /* the keys given become the whole override set */
#define TSP_ALTER_VALIDATE_ONLY 0x2u /* check, change nothing */

/* (minor 4) One topic of the bucket (topics_list). */
typedef struct tsp_topic_info {
    char name[256];
    int32_t partitions;         /* its partition count; -1: its descriptor is unreadable
                                   (topic_partitions answers why, naming the object) */
    int32_t reserved0;
} tsp_topic_info;

/* (minor 5) Where read_file's batches are: `length` bytes at `file_offset`
 * of the open file `fd` (a duplicate the host owns), whole record batches
 * back to back, exactly the bytes read would have returned. */
typedef struct tsp_file_range {
    uint32_t struct_size;       /* caller sets sizeof(tsp_file_range) */
    int32_t fd;                 /* -1 when length is 0 */
    uint64_t file_offset;
    uint64_t length;            /* 0: nothing below stop_offset / at the log end */
    int64_t first_offset;       /* base offset of the first batch */
    int64_t next_offset;        /* last offset of the last batch + 1 (the next read's offset);
                                   = offset when length is 0 */
} tsp_file_range;

/* The function table, ABI major 1. Never reorder; append at the end. */
typedef struct tsp_plugin {
    uint32_t abi_major;         /* == requested major */
    uint32_t abi_minor;         /* entries up to this minor are present */
    uint32_t struct_size;       /* sizeof(tsp_plugin) as the plugin was built */
    uint32_t reserved0;
    const char *impl_name;      /* "tierstore" */
    const char *impl_version;   /* "0.1.0" */

    /* --- minor 0 -------------------------------------------------------- */
    const char *(*status_name)(tsp_status st);   /* "TSP_E_CORRUPT"; never NULL */
    int (*status_is_retriable)(tsp_status st);

    /* Frees any buffer the plugin handed out. NULL is a no-op. */
    void (*buffer_free)(void *buf);

    /* Writes "  key  (type, default X)  description" lines for every setting
     * the plugin accepts into a buffer the caller frees with buffer_free. */
    tsp_status (*config_describe)(char **out, size_t *out_len);

    /* Engine lifecycle. props are copied. With TSP_OPEN_IGNORE_UNKNOWN,
     * keys the plugin does not know are skipped (the host validates its own
     * keys); without it they fail with TSP_E_CONFIG. */
    tsp_status (*engine_open)(const tsp_property *props, size_t nprops, uint32_t flags,
                              tsp_engine **out, char *errstr, size_t errlen);
    /* Waits for in-flight uploads to settle, flushes and frees. NULL no-op. */
    void (*engine_close)(tsp_engine *eng);
    void (*engine_stats)(tsp_engine *eng, tsp_engine_stats *out);

    /* Opens (or with TSP_PART_CREATE creates) a partition. A partition known
     * only from the object store is recovered. Topic names: [A-Za-z0-9._-],
     * 1..249 chars. Opening an open partition returns the same handle. */
    tsp_status (*partition_open)(tsp_engine *eng, const char *topic, int32_t partition,
                                 uint32_t flags, tsp_partition **out, char *errstr,
                                 size_t errlen);

    /* Topic-level overrides with Kafka's topic config names (segment.bytes,
     * segment.ms, retention.ms, retention.bytes, local.retention.ms,
     * local.retention.bytes, flush.messages, flush.ms, max.message.bytes,
     * remote.storage.enable). Applies to open and future partitions of the
     * topic and is persisted with the data (locally and in the bucket).
     * Unknown keys or bad values: TSP_E_CONFIG naming them, nothing set. */
    tsp_status (*topic_set_config)(tsp_engine *eng, const char *topic,
                                   const tsp_property *props, size_t nprops, char *errstr,
                                   size_t errlen);

    /* Lists partitions of a topic known locally or remotely, ascending.
     * *parts is freed with buffer_free. TSP_E_NOT_FOUND when none. */
    tsp_status (*topic_partitions)(tsp_engine *eng, const char *topic, int32_t **parts,
                                   size_t *nparts, char *errstr, size_t errlen);

    /* Appends record batches v2 back to back. Validates every batch (length,
     * magic 2, CRC-32C; then every record, decompressed within
     * message.max.bytes) before writing anything; assigns offsets (rewriting
     * baseOffset). TSP_E_CORRUPT, TSP_E_INVALID_RECORD or TSP_E_MSG_TOO_LARGE
     * reject the whole call. TSP_E_BACKPRESSURE is retriable. */
    tsp_status (*append)(tsp_partition *p, const void *data, size_t len,
                         int64_t *first_offset, int64_t *last_offset, char *errstr,
                         size_t errlen);

    /* Reads whole batches from the one containing offset, up to max_bytes
     * (at least one batch). *out freed with buffer_free; NULL/0 at the log
     * end. May block on the object store for cold offsets.
     * TSP_E_OBJECT_MISSING when offset lies in a remote segment whose object
     * the store lost: the data is gone, not skipped (answer the client with a
     * storage error; never move its position past it). */
    tsp_status (*read)(tsp_partition *p, int64_t offset, size_t max_bytes, uint8_t **out,
                       size_t *out_len, char *errstr, size_t errlen);

    /* fsync: every append that returned before this call survives a crash. */
    tsp_status (*flush)(tsp_partition *p, char *errstr, size_t errlen);

    /* Segment lifecycle: close the active segment now (eligible for upload). */
    tsp_status (*roll)(tsp_partition *p, char *errstr, size_t errlen);

    /* Waits until every closed segment is committed remotely, or timeout. */
    tsp_status (*wait_uploaded)(tsp_partition *p, int64_t timeout_ms, char *errstr,
                                size_t errlen);

    /* Applies local and total retention now. */
    tsp_status (*enforce_retention)(tsp_partition *p, char *errstr, size_t errlen);

    /* Offsets; out->struct_size must be set by the caller. */
    tsp_status (*offsets)(tsp_partition *p, tsp_offsets *out);

    /* Earliest offset whose record timestamp >= timestamp_ms, local or
     * remote (Kafka ListOffsets); an engine that only indexes batches may
     * return the first offset of the batch holding it (a lower bound).
     * TSP_E_NOT_FOUND when none. May block on the object store. */
    tsp_status (*offset_for_time)(tsp_partition *p, int64_t timestamp_ms, int64_t *offset,
                                  char *errstr, size_t errlen);

    /* Every segment in offset order. *rows freed with buffer_free; rows are
     * *row_size bytes apart (>= the tsp_segment_info the host knows). */
    tsp_status (*placement)(tsp_partition *p, tsp_segment_info **rows, size_t *nrows,
                            size_t *row_size, char *errstr, size_t errlen);

    /* Deletes a partition everywhere: local segments, its remote objects and
     * manifests. The handle becomes invalid: the host must have stopped
     * every other call on it first (and must not hold read buffers' handle
     * assumptions: buffers already handed out stay valid). */
    tsp_status (*partition_delete)(tsp_engine *eng, const char *topic, int32_t partition,
                                   char *errstr, size_t errlen);

    /* --- minor 1 -------------------------------------------------------- */
    /* Fills out (up to out->struct_size bytes, which the caller sets). May
     * read the partition's placement; thread-safe like placement. */
    tsp_status (*partition_stats)(tsp_partition *p, tsp_partition_stats *out, char *errstr,
                                  size_t errlen);

    /* --- minor 2: replication (the cluster, Kafka's protocol) -------------
     * Used on partitions opened with TSP_PART_REPLICATED. Kafka references:
     * KIP-101/279 (leader epoch cache, truncation by OffsetForLeaderEpoch),
     * KIP-405 (only the leader copies, followers build state from the
     * remote tier, OFFSET_MOVED_TO_TIERED_STORAGE). */

    /* This replica's role at leader epoch `leader_epoch` (>= 0). As leader:
     * append stamps partitionLeaderEpoch = leader_epoch into every batch
     * (outside the CRC) and the epoch cache gets (leader_epoch, log end)
     * when the epoch is new; uploads run for segments wholly below the high
     * watermark; each manifest commit carries the epoch, and a commit finds
     * the bucket's head at a higher epoch -> TSP_E_FENCED, the object stays
     * an orphan, never a manifest entry; the first commit at a new epoch
     * is written at once (it fences older leaders' later commits). As
     * follower: no uploads; the remote manifest is re-read from the bucket
     * (remote.log.manager.task.interval.ms) so local retention deletes what
     * the leader tiered. An epoch below the one set -> TSP_E_FENCED.
     * Persisted with the partition. */
    tsp_status (*partition_set_role)(tsp_partition *p, int32_t leader_epoch, int is_leader,
                                     char *errstr, size_t errlen);

    /* Follower append: batches as fetched from the leader, keeping their
     * baseOffset and partitionLeaderEpoch. Same validation as append
     * (nothing written on failure); the first batch must start at the log
     * end and batches must be contiguous, else TSP_E_OFFSET_OUT_OF_RANGE.
     * The epoch cache learns each batch epoch greater than its latest.
     * *last_offset = the last offset written. */
    tsp_status (*append_replica)(tsp_partition *p, const void *data, size_t len,
                                 int64_t *last_offset, char *errstr, size_t errlen);

    /* Removes every batch with an offset >= offset from the local log (a
     * batch straddling `offset` goes whole); *new_end = the log end after.
     * Epoch cache entries starting at or past the new end go too.
     * TSP_E_INVAL when offset < remote_end_offset (tiered = committed) or
     * below the high watermark; the high watermark never moves back. */
    tsp_status (*truncate)(tsp_partition *p, int64_t offset, int64_t *new_end, char *errstr,
                           size_t errlen);

    /* Kafka's OffsetForLeaderEpoch for this replica: the largest epoch <=
     * `epoch` in the cache (*found_epoch) and its end offset (*end_offset:
     * the start of the next greater epoch, or the log end for the latest).
     * No such epoch (empty cache, epoch older than all): -1 and -1. */
    tsp_status (*epoch_end_offset)(tsp_partition *p, int32_t epoch, int32_t *found_epoch,
                                   int64_t *end_offset, char *errstr, size_t errlen);

    /* Sets the high watermark (the leader from its ISR's positions, a
     * follower from the leader's fetch answers); clamped to the log end,
     * never moves back; persisted lazily (a checkpoint, as Kafka's
     * replication-offset-checkpoint: after a crash it may be older, never
     * newer). */
    tsp_status (*set_high_watermark)(tsp_partition *p, int64_t hw, char *errstr,
                                     size_t errlen);

    /* A follower whose log cannot continue the leader's (empty disk, or the
     * leader's local log starts past this log's end): drops the local log
     * and restarts it empty at `offset` (the leader's local log start),
     * after re-reading the manifest from the bucket, which must cover every
     * offset below `offset` (else TSP_E_OFFSET_OUT_OF_RANGE, nothing
     * changed); the epoch cache is rebuilt from the manifest's entries.
     * Reads below `offset` are served from the bucket. */
    tsp_status (*reset_local)(tsp_partition *p, int64_t offset, char *errstr, size_t errlen);

    /* --- minor 3: configs and records, Kafka's admin APIs ---------------- */

    /* Every Kafka topic config of `topic` with its value in effect (the
     * topic's override, else its engine setting, else Kafka's default), or
     * with topic NULL every engine setting. *rows freed with buffer_free;
     * rows are *row_size bytes apart. */
    tsp_status (*config_list)(tsp_engine *eng, const char *topic, tsp_config_info **rows,
                              size_t *nrows, size_t *row_size, char *errstr, size_t errlen);

    /* Changes a topic's overrides (Kafka's topic config names): each prop
     * sets its key, a NULL value deletes it (the engine setting applies
     * again); TSP_ALTER_REPLACE makes the props the whole set. Every Kafka
     * 3.x topic config is accepted at its Kafka default; values the engine
     * cannot honour, unknown keys and bad values: TSP_E_CONFIG naming them,
     * nothing changed. Persisted and applied as topic_set_config. */
    tsp_status (*topic_alter_config)(tsp_engine *eng, const char *topic,
                                     const tsp_property *props, size_t nprops, uint32_t flags,
                                     char *errstr, size_t errlen);

    /* Changes engine settings while running (Kafka's dynamic broker
     * configs): only rows flagged TSP_CONFIG_DYNAMIC; a NULL value goes
     * back to the value of engine_open. Applies to open partitions at once.
     * Not persisted: the host keeps them and applies them again after
     * engine_open. Others: TSP_E_CONFIG naming the key. */
    tsp_status (*engine_alter_config)(tsp_engine *eng, const tsp_property *props, size_t nprops,
                                      uint32_t flags, char *errstr, size_t errlen);

    /* Kafka's DeleteRecords: moves the log start offset to `offset` (-1:
     * the log end), remote data included: manifest entries wholly below it
     * leave the manifest (durable first) and their objects are deleted,
     * local segments wholly below it go; reads below it answer
     * TSP_E_OFFSET_OUT_OF_RANGE. Survives restarts and recovery from the
     * bucket. Below the log start: no change; past the log end:
     * TSP_E_OFFSET_OUT_OF_RANGE. *low_watermark = the log start after. */
    tsp_status (*delete_records)(tsp_partition *p, int64_t offset, int64_t *low_watermark,
                                 char *errstr, size_t errlen);

    /* --- minor 4: the bucket describes itself ----------------------------- */

    /* Every topic the store holds (a topic descriptor or a partition
     * manifest in the bucket) with its partition count, a page at a time:
     * up to max (<= 4096) topics after `after` (NULL or "" for the first
     * page) in the store's key order; a page shorter than max is the last.
     * One LIST of the whole bucket per page: call from a worker thread.
     * *rows freed with buffer_free; rows are *row_size bytes apart. No
     * remote tier: none. topic_partitions (and partition_open with
     * TSP_PART_CREATE) of each then brings the topic back. */
    tsp_status (*topics_list)(tsp_engine *eng, const char *after, size_t max,
                              tsp_topic_info **rows, size_t *nrows, size_t *row_size,
                              char *errstr, size_t errlen);

    /* --- minor 5: zero-copy hot reads -------------------------------------- */

    /* The batches read(p, offset, max_bytes) would return, handed out as a
     * range of a local segment file instead of a copy, so a host can
     * sendfile(2) them: whole batches from the one holding offset, at most
     * max_bytes (at least one batch), every batch header checked as read
     * checks it, and never a batch whose last offset is >= stop_offset (the
     * high watermark: consumers never see bytes above it; on a
     * TSP_PART_REPLICATED partition the plugin also stops below its own high
     * watermark). One segment per call, like read. length 0: nothing there
     * yet (offset at the log end, or the first batch reaches stop_offset).
     * TSP_E_NOT_FOUND when offset is not on local disk (below the local
     * start): the host reads it with read. TSP_E_NOMEM/TSP_E_IO when no fd
     * could be duplicated (EMFILE): read still works.
     *
     * Ownership and lifetime: out->fd is a fresh duplicate (FD_CLOEXEC) of
     * the segment's file, owned by the host, closed with close(2). The
     * range's bytes stay as they were for as long as the host keeps the fd
     * open, whatever the plugin does meanwhile: retention, DeleteRecords,
     * partition_delete and reset_local only unlink segment files (the open
     * fd keeps the inode and its bytes), and truncate, the only call that
     * cuts a file in place, never goes below the high watermark, which the
     * range never passes. Bytes are appended past a range, never rewritten
     * inside it. A host that reads past the range gets no such promise.
     * Thread-safe like read; never blocks on the object store (local file
     * reads of batch headers only). */
    tsp_status (*read_file)(tsp_partition *p, int64_t offset, size_t max_bytes,
                            int64_t stop_offset, tsp_file_range *out, char *errstr,
                            size_t errlen);

    /* --- minor 6: topic incarnations (KIP-516) ----------------------------- */

    /* Deletes this disk's files of every partition of `topic` and nothing in
     * the bucket: a host whose local replicas belong to an older incarnation
     * of the name (a topic id it recorded differs from the cluster's) drops
     * them before opening the new one, whose objects may already share the
     * old key prefix. TSP_E_INVAL (nothing deleted) while a partition of the
     * topic is open. *ndeleted (may be NULL) = partition directories removed. */
    tsp_status (*topic_delete_local)(tsp_engine *eng, const char *topic, int32_t *ndeleted,
                                     char *errstr, size_t errlen);
} tsp_plugin;

/* Whether the table holds `member` (for entries added after minor 0). */
#define TSP_HAS(pl, member)                                                                     \
    ((pl)->struct_size >= offsetof(tsp_plugin, member) + sizeof((pl)->member) &&               \
     (pl)->member != NULL)

/* The one exported symbol. */
typedef const tsp_plugin *(*tsp_entry_fn)(uint32_t requested_abi_major, char *errstr,
                                          size_t errlen);
const tsp_plugin *tierstore_plugin_entry(uint32_t requested_abi_major, char *errstr,
                                         size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* TIERSTORE_PLUGIN_H */
