/*
 * index.h — the shadow index: for one partition, the manifest of its
 * remote segments, and where each offset lives inside their objects.
 *
 * A manifest lists remote segments in offset order. Each entry carries the
 * segment's offset and time range, raw and stored sizes, the immutable
 * object key, and a chunk table: the object is a sequence of independent
 * zstd frames ("chunks"), each starting at a record-batch boundary, so the
 * chunk table doubles as the segment's sparse offset and time index.
 *
 * Persistence (format 2, in index/README.md): a small versioned *head*
 * (partition metadata, the list of immutable *pieces*, and a bounded tail
 * of the newest entries) plus the pieces themselves (each holds a run of
 * older entries). A commit writes the head, and, when the tail is full, one
 * new piece first, so it costs the same however long the history is.
 *  - locally: <partition dir>/remote_manifest.json (the head, replaced
 *    atomically) and <partition dir>/manifest-pieces/<piece>.json;
 *  - in the bucket: <topic>/<partition>/manifests/<version:20>.json (heads,
 *    If-None-Match) and manifests/pieces/<base:20>-<last:20>-<id>.json.
 *    The highest head that reads (with all its pieces) wins on recovery;
 *    older heads are deleted once a newer one is durable (keeping a few).
 *  - chunk tables are not in the manifest: each object carries its own in
 *    a zstd skippable frame before the seek table (chunk_table.c), fetched
 *    by ranged GET on first use and kept in a byte-capped cache. Entries
 *    of format-1 buckets keep theirs inline ("legacy", resident).
 *
 * Thread safety: a ts_index has its own mutex; every function may be called
 * from any thread. Lookups return copies, so callers never hold the lock.
 */
#ifndef TS_INDEX_H
#define TS_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"
#include "common/crypt.h"
#include "objstore/objstore.h"

#define TS_INDEX_KEY_MAX 512

/* Hard caps applied to every manifest read or written (manifests come back
 * from the bucket and are parsed as untrusted input). */
#define TS_MANIFEST_MAX_BYTES (256 * 1024 * 1024)
#define TS_MANIFEST_MAX_SEGMENTS 1000000
#define TS_MANIFEST_MAX_CHUNKS 1000000 /* per segment */

typedef struct ts_chunk_meta {
    uint64_t raw_pos;       /* position of the chunk in the raw segment */
    uint32_t raw_len;       /* decompressed bytes */
    uint64_t stored_pos;    /* position of the zstd frame in the object */
    uint32_t stored_len;    /* bytes of the zstd frame */
    int64_t first_offset;   /* base offset of the chunk's first batch */
    int64_t max_timestamp;  /* max batch timestamp within the chunk */
    uint32_t stored_crc32c; /* CRC-32C of the stored (compressed) bytes */
    uint32_t raw_crc32c;    /* CRC-32C of the raw bytes */
} ts_chunk_meta;

typedef struct ts_segment_meta {
    int64_t base_offset;
    int64_t last_offset;
    int64_t first_timestamp;
    int64_t max_timestamp;
    uint64_t size_bytes;    /* raw segment bytes */
    uint64_t stored_bytes;  /* object bytes (frames + seek table) */
    int64_t upload_time_ms;
    uint32_t segment_crc32c; /* CRC-32C of the whole raw segment */
    char object_key[TS_INDEX_KEY_MAX];
    uint32_t chunk_count;
    ts_chunk_meta *chunks;  /* owned; chunk_count entries, raw_pos ascending; NULL from
                             * lookups until ts_index_load_chunks */
    /* Where the object's own chunk table frame lies (chunk_table.c); 0/0: the
     * object has none (format-1 uploads) and the chunks live in the manifest. */
    uint64_t chunk_table_pos;
    uint32_t chunk_table_len;
    /* Encryption at rest (common/crypt.h), opaque to the index: sealed != 0
     * when every chunk is sealed with the object's own data key, which the
     * manifest keeps wrapped under the key-encryption key key_id. Lookups
     * of entries in pieces leave key_id empty ("" = not loaded) until
     * ts_index_load_chunks fetches the envelope with the chunk table. */
    int sealed;
    char key_id[TS_CRYPT_KEY_ID_MAX + 1];
    uint8_t wrapped_key[TS_CRYPT_WRAPPED_LEN];
} ts_segment_meta;

/* One remote segment as the index keeps it resident: 64 bytes, sorted by
 * base offset; the object key is rebuilt from it (keys.c). max_timestamp is
 * the running maximum over this and all earlier entries, which is what
 * time lookups and time retention need (Kafka's time index is monotone the
 * same way). */
typedef struct ts_index_entry {
    int64_t base_offset;
    int64_t last_offset;
    int64_t first_timestamp;
    int64_t max_timestamp; /* running maximum, see above */
    uint64_t size_bytes;
    uint64_t stored_bytes;
    uint64_t attempt;      /* the key's 16-hex attempt id as a number, or a side-table slot */
    uint32_t chunk_count;
    uint32_t flags;        /* TS_INDEX_ENTRY_* */
} ts_index_entry;
#define TS_INDEX_ENTRY_LEGACY 1u  /* no chunk table frame: chunks inline, kept resident */
#define TS_INDEX_ENTRY_ODD_KEY 2u /* key not in the standard form: kept in a side table */
#define TS_INDEX_ENTRY_SEALED 4u  /* chunks encrypted; envelope in the tail or the piece */

/* Chunk table frame: a zstd skippable frame, little-endian, placed just
 * before the seek table (layout in chunk_table.c and index/README.md). */
#define TS_CHUNK_TABLE_MAGIC 0x184D2A5Bu
#define TS_CHUNK_TABLE_LEN(n) (48u + 40u * (uint32_t)(n))
/* Encodes seg's chunk table (chunk_count entries) into out
 * (TS_CHUNK_TABLE_LEN bytes). */
void ts_chunk_table_encode(const ts_segment_meta *seg, uint8_t *out);
/* Decodes and verifies a frame against seg (base offset, sizes, count); on
 * success seg->chunks is malloc'd and filled and segment_crc32c and
 * first_timestamp are set. TS_E_CHECKSUM on a CRC mismatch, TS_E_CORRUPT
 * otherwise. */
ts_status ts_chunk_table_decode(const uint8_t *frame, size_t len, ts_segment_meta *seg,
                                char *errstr, size_t errlen);

/* A byte-capped LRU of chunk tables, shared by the indexes of one engine.
 * Thread-safe. */
typedef struct ts_chunk_table_cache ts_chunk_table_cache;
ts_status ts_chunk_table_cache_create(uint64_t max_bytes, ts_chunk_table_cache **out);
void ts_chunk_table_cache_destroy(ts_chunk_table_cache *c);
typedef struct ts_chunk_table_cache_stats {
    uint64_t hits, misses, bytes, entries, evictions;
} ts_chunk_table_cache_stats;
void ts_chunk_table_cache_stats_get(ts_chunk_table_cache *c, ts_chunk_table_cache_stats *out);

/* Frees seg->chunks (not seg itself). NULL-safe. */
void ts_segment_meta_clear(ts_segment_meta *seg);
/* Deep copy. */
ts_status ts_segment_meta_copy(ts_segment_meta *dst, const ts_segment_meta *src);

typedef struct ts_index ts_index;

/* One leader epoch and the first offset written in it (the cluster's
 * leader epoch cache, KIP-101). A head carries the epochs of the tiered
 * range (`leader_epochs`), so a replica starting from the bucket alone
 * rebuilds its epoch cache. */
typedef struct ts_index_epoch {
    int32_t epoch;
    int64_t start_offset;
} ts_index_epoch;
#define TS_INDEX_MAX_EPOCHS 100000

/* Creates an empty index for topic/partition whose local file lives in
 * local_dir. os may be NULL (offline, local only). Does not load. */
ts_status ts_index_create(const char *topic, int32_t partition, const char *local_dir,
                          ts_objstore *os, ts_index **out, char *errstr, size_t errlen);
void ts_index_destroy(ts_index *idx);

/* A read-only view (tierctl, safe beside a running engine): the index never
 * writes its local manifest file; ts_index_load_remote loads the bucket's
 * newest manifest into memory only. Call before loading. */
void ts_index_set_memory_only(ts_index *idx);
/* Remote manifest versions kept in the bucket (older ones are deleted,
 * best-effort, after each new version is durable). Default 3; values < 1
 * are raised to 1. */
void ts_index_set_keep_versions(ts_index *idx, int keep);
/* Deadline of one remote manifest operation including its retries of
 * retriable object-store errors (ms). Default 120000. */
void ts_index_set_remote_timeout_ms(ts_index *idx, int64_t timeout_ms);
/* Applies remote.log.manifest.keep.versions and
 * remote.storage.operation.timeout.ms from cfg (NULL: no-op). */
void ts_index_apply_config(ts_index *idx, const ts_config *cfg);
/* Entries the head's tail holds before they move into a new piece
 * (remote.log.manifest.head.segments; default 1000, min 1). */
void ts_index_set_head_segments(ts_index *idx, int n);
/* The leader epoch written into every head from now on (default -1). With
 * an epoch >= 0 commits are fenced: a head put that collides with a
 * version someone else wrote, when the newest head in the bucket carries a
 * higher epoch, fails with TS_E_FENCED (the entry stays local, never
 * durable; the caller stops and reloads from the bucket). */
void ts_index_set_leader_epoch(ts_index *idx, int64_t epoch);
/* Writes a new head version carrying `epoch` and no other change (a new
 * leader's first commit: it fences older leaders' later commits, whose
 * versions now collide). TS_E_FENCED as above. */
ts_status ts_index_commit_epoch(ts_index *idx, int64_t epoch, char *errstr, size_t errlen);
/* The head's leader epochs (malloc'd copy, ascending; *out NULL when none). */
ts_status ts_index_epochs(ts_index *idx, ts_index_epoch **out, size_t *n);
/* 1 when every offset in [from, to] lies in entries of the manifest (and,
 * with durable, in entries of a version durable in the bucket): the rule
 * for marking a local segment remote, and for deleting it. */
int ts_index_covers(ts_index *idx, int64_t from, int64_t to, int durable);
/* Chunk-table cache to use (not owned; NULL: none, every load GETs). */
void ts_index_set_chunk_table_cache(ts_index *idx, ts_chunk_table_cache *c);

/* Loads the local manifest file if present (TS_E_NOT_FOUND when absent;
 * TS_E_CORRUPT when it does not parse). */
ts_status ts_index_load_local(ts_index *idx, char *errstr, size_t errlen);
/* Loads the newest remote manifest (TS_E_NOT_FOUND when the bucket has
 * none) and makes it the current state; also writes it locally. */
ts_status ts_index_load_remote(ts_index *idx, char *errstr, size_t errlen);

/* Recovery from a damaged local manifest: moves the local file aside to
 * "<file>.corrupt-<ms since epoch>" (never deletes it: it is evidence, and
 * may hold entries the bucket lacks) and fsyncs the directory. The new path
 * is written to aside (aside_len bytes). Afterwards ts_index_load_remote
 * can rebuild the file from the bucket; if that fails,
 * ts_index_restore_local puts the file back so nothing changed. */
ts_status ts_index_set_aside_local(ts_index *idx, char *aside, size_t aside_len, char *errstr,
                                   size_t errlen);
/* Moves a file set aside by ts_index_set_aside_local back in place. */
ts_status ts_index_restore_local(ts_index *idx, const char *aside, char *errstr, size_t errlen);

/* Adds a committed segment. Order: persists the new state locally, then
 * puts the new remote manifest version. Entries must not overlap existing
 * ones (TS_E_INVAL), except an exact duplicate base offset, which is
 * refused with TS_E_EXISTS (the caller then deletes its orphan object).
 * Returns TS_OK only when the remote manifest is durable. When the local
 * write succeeds but the remote put fails, the entry stays committed
 * locally and ts_index_is_remote_durable() is 0 for it until
 * ts_index_sync_remote (or a later add) succeeds. With no store (os NULL)
 * TS_OK means durable locally. Segments entirely below the log start offset
 * are refused (TS_E_INVAL). */
ts_status ts_index_add(ts_index *idx, const ts_segment_meta *seg, char *errstr, size_t errlen);
/* ts_index_add that also records the segment's leader epochs (ascending,
 * the first starting at or before its base) in the head's leader_epochs:
 * each epoch above the head's latest joins it. */
ts_status ts_index_add_epochs(ts_index *idx, const ts_segment_meta *seg,
                              const ts_index_epoch *epochs, size_t nepochs, char *errstr,
                              size_t errlen);
/* A group commit: a run of segments in offset order added as ONE new
 * version (one local head write, the commit point of all of them, then
 * one remote head put), so a backlog of finished uploads costs one head
 * PUT, not one each. Each item is checked as ts_index_add_epochs checks
 * one, in order; the longest prefix that can join goes in: *added
 * receives its length. *added == 0: nothing changed, and the status (and
 * errstr) say why items[0] cannot join (TS_E_EXISTS, TS_E_INVAL, a local
 * write failure ...), as ts_index_add_epochs would. *added > 0: those
 * entries are committed locally, and the status is the remote put's, as
 * ts_index_add_epochs's after its local commit (TS_OK: durable; a failure:
 * remote pending, ts_index_sync_remote retries; TS_E_FENCED: none of them
 * reaches the bucket). Items after the prefix were only checked: add them
 * again (alone, the call says why one cannot join). */
typedef struct ts_index_add_item {
    const ts_segment_meta *seg;
    const ts_index_epoch *epochs; /* its leader epochs, as for ts_index_add_epochs */
    size_t nepochs;
} ts_index_add_item;
ts_status ts_index_add_group(ts_index *idx, const ts_index_add_item *items, size_t n,
                             size_t *added, char *errstr, size_t errlen);

/* Retention: removes entries entirely below new_start_offset (their whole
 * range < new_start_offset) and persists (local then remote). The removed
 * object keys are returned (malloc'd array of malloc'd strings) for the
 * caller to delete after this returns. When the remote put fails, the
 * entries stay removed locally, *removed_keys is NULL and the keys are kept
 * (persisted locally) until a later ts_index_truncate_before succeeds and
 * returns them: a key is never handed out while a durable remote manifest
 * may still reference its object. */
ts_status ts_index_truncate_before(ts_index *idx, int64_t new_start_offset, char ***removed_keys,
                                   size_t *nremoved, char *errstr, size_t errlen);

/* A replica that does not commit (a follower): re-reads the bucket's
 * newest head (ts_index_load_remote) when it is not the version this index
 * holds durably; *changed says whether it did. TS_E_NOT_FOUND when the
 * bucket holds none. */
ts_status ts_index_refresh_remote(ts_index *idx, int *changed, char *errstr, size_t errlen);

/* Retries persisting a remote manifest after an earlier failure. TS_OK
 * when the remote copy is up to date. */
ts_status ts_index_sync_remote(ts_index *idx, char *errstr, size_t errlen);

/* Lookups fill *out without a chunk table (chunks NULL until
 * ts_index_load_chunks; chunk_count is the table's size), without
 * allocating and without I/O; max_timestamp is the running maximum (see
 * ts_index_entry); segment_crc32c and upload_time_ms are known for tail
 * entries only, else 0 (ts_index_load_chunks sets the CRC).
 * Copies the entry holding offset (base <= offset <= last) into *out.
 * TS_E_NOT_FOUND if no entry covers it. O(log n). */
ts_status ts_index_lookup_offset(ts_index *idx, int64_t offset, ts_segment_meta *out);
/* Copies the first entry whose max_timestamp >= ts. TS_E_NOT_FOUND if none. */
ts_status ts_index_lookup_time(ts_index *idx, int64_t ts, ts_segment_meta *out);
/* Copies the entry with the smallest base offset > offset (the next
 * segment), for reads that cross segments. */
ts_status ts_index_lookup_next(ts_index *idx, int64_t offset, ts_segment_meta *out);

typedef struct ts_index_summary {
    size_t count;
    int64_t start_offset;     /* base of the first entry, -1 if empty */
    int64_t end_offset;       /* last offset of the last entry, -1 if empty */
    uint64_t raw_bytes;
    uint64_t stored_bytes;
    uint64_t version;         /* local manifest version */
    uint64_t remote_version;  /* last version durable in the bucket */
    int64_t log_start_offset; /* manifest log start (advanced by retention); 0 if never set */
} ts_index_summary;
void ts_index_summary_get(ts_index *idx, ts_index_summary *out);

/* Fills seg->chunks (malloc'd; freed by ts_segment_meta_clear) for an entry
 * from a lookup: from the cache, else by one ranged GET of the object's
 * chunk table frame, verified (legacy entries: from memory). No index lock
 * is held across the GET. */
ts_status ts_index_load_chunks(ts_index *idx, ts_segment_meta *seg, char *errstr, size_t errlen);

/* Re-wraps data keys (`tierctl rekey`): rewrap is called for every sealed
 * entry whose key_id is not want_key_id and replaces seg->key_id and
 * seg->wrapped_key (return non-zero with errstr set to stop: nothing is
 * committed). The result is one new manifest version, committed like any
 * change (local first, then the bucket): pieces holding such entries are
 * written anew under fresh keys and the old ones dropped (deleted once no
 * kept head names them), the tail is rewritten in the head. Objects are
 * not touched. *count receives the number of entries re-wrapped (0: no
 * new version). */
typedef ts_status (*ts_index_rewrap_fn)(ts_segment_meta *seg, void *opaque, char *errstr,
                                        size_t errlen);
ts_status ts_index_rewrap(ts_index *idx, const char *want_key_id, ts_index_rewrap_fn rewrap,
                          void *opaque, size_t *count, char *errstr, size_t errlen);

/* Non-zero when the entry with this base offset is in a manifest version
 * that is durable in the bucket (so the local copy may be deleted). */
int ts_index_is_remote_durable(ts_index *idx, int64_t base_offset);

/* Copies all entries (malloc'd array; each with its chunks) in order.
 * Loads every chunk table (one GET each on a cache miss): for offline tools. */
ts_status ts_index_snapshot(ts_index *idx, ts_segment_meta **out, size_t *n);
/* The same without chunk tables (chunks NULL until ts_index_load_chunks): offsets,
 * timestamps, sizes and keys only, for retention, placement and sweeps that
 * run often and never read chunks. Free with ts_index_snapshot_free. */
ts_status ts_index_snapshot_meta(ts_index *idx, ts_segment_meta **out, size_t *n);
/* Base offset of the first entry, or -1 when empty. O(1): the read path
 * asks it on every fetch. */
int64_t ts_index_start_offset(ts_index *idx);
/* Copies the resident entries (64 bytes each; malloc'd, free()) in order:
 * the cheap snapshot for retention and placement. */
ts_status ts_index_snapshot_entries(ts_index *idx, ts_index_entry **out, size_t *n);
/* Rebuilds the object key of an entry of this index. */
void ts_index_entry_key(ts_index *idx, const ts_index_entry *e, char *out, size_t outlen);

/* Every segment object key that any head version in the bucket names,
 * directly or through its pieces, is passed to cb (return non-zero to
 * stop). TS_OK only when every head and piece could be read and parsed:
 * otherwise the caller must not treat unnamed objects as orphans. Pieces
 * that no head names (a crash between a piece and its head) are deleted on
 * the way, under the same rule. For the orphan sweep. */
ts_status ts_index_bucket_references(ts_index *idx, int (*cb)(const char *key, void *opaque),
                                     void *opaque, char *errstr, size_t errlen);

/* Writes the manifest as one JSON document through write (return non-zero
 * to stop): {"head":<the head as the bucket holds it>,"pieces":[<each piece
 * object, byte for byte>,...]}. Pieces come from the local files, else from
 * the bucket; one at a time, so memory stays bounded. The JSON view of
 * `tierctl manifest`. */
ts_status ts_index_write_json(ts_index *idx, int (*write)(const void *data, size_t len, void *opaque),
                              void *opaque, char *errstr, size_t errlen);

typedef struct ts_index_stats {
    size_t entries, pieces, legacy_entries;
    uint64_t resident_bytes;  /* all of the below + side tables (legacy tables, odd keys) */
    uint64_t entry_bytes;     /* the entry array (64 B per segment + growth slack) */
    uint64_t partition_bytes; /* per partition, bounded by the head: tail details, pieces */
    uint64_t put_bytes;       /* bytes PUT for manifests (heads + pieces) since create */
    uint64_t puts, gets;      /* manifest object PUTs / GETs since create */
} ts_index_stats;
void ts_index_stats_get(ts_index *idx, ts_index_stats *out);
void ts_index_snapshot_free(ts_segment_meta *segs, size_t n);

/* Manifest JSON (exposed for tests, the CLI and fuzzing). The writer emits
 * format 1 (the legacy layout, kept so that tests can build old buckets)
 * when every entry lists its chunks, else a format-2 head without pieces.
 * The parser reads format 1 and format-2 heads and pieces (their segments;
 * chunks absent for entries whose object carries its chunk table). */
ts_status ts_manifest_to_json(const char *topic, int32_t partition, uint64_t version,
                              int64_t log_start_offset, const ts_segment_meta *segs, size_t n,
                              char **out, size_t *out_len);
/* Parses a manifest. Validates ranges (entries sorted and non-overlapping,
 * chunk tables contiguous). *segs malloc'd (free with ts_index_snapshot_free). */
ts_status ts_manifest_from_json(const char *json, size_t len, char *topic_out, size_t topic_len,
                                int32_t *partition, uint64_t *version, int64_t *log_start_offset,
                                ts_segment_meta **segs, size_t *n, char *errstr, size_t errlen);

/* Object-key helpers: every key tierstore writes is built here so the
 * bucket layout is defined in one place. */
/* "<topic>/": everything of one topic. */
void ts_index_topic_prefix(const char *topic, char *out, size_t outlen);
/* "<topic>/<partition>/" */
void ts_index_partition_prefix(const char *topic, int32_t partition, char *out, size_t outlen);
/* "<topic>/<partition>/segments/": every segment object of the partition,
 * and the only keys its manifest may name (checked on every parse). */
void ts_index_segment_prefix(const char *topic, int32_t partition, char *out, size_t outlen);
/* "<topic>/<partition>/segments/<base:20>-<attempt>.log.zst" */
void ts_index_segment_key(const char *topic, int32_t partition, int64_t base_offset,
                          const char *attempt_id, char *out, size_t outlen);
/* "<topic>/<partition>/manifests/": the partition's heads and pieces. */
void ts_index_manifest_prefix(const char *topic, int32_t partition, char *out, size_t outlen);
/* "<topic>/<partition>/manifests/<version:20>.json" */
void ts_index_manifest_key(const char *topic, int32_t partition, uint64_t version, char *out,
                           size_t outlen);
/* "<topic>/config/" and "<topic>/config/<ms:20>-<rand>.properties": a
 * topic's overrides (tiering/engine.c), a new object per change, newest
 * (highest key) wins. */
void ts_index_topic_config_prefix(const char *topic, char *out, size_t outlen);
void ts_index_topic_config_key(const char *topic, int64_t ms, const char *rand, char *out,
                               size_t outlen);
/* "<topic>/descriptor/" and "<topic>/descriptor/<ms:20>-<rand>.json": the
 * topic descriptor (its partition count), a new object per change, newest
 * (highest key) wins; written by tiering/topic_desc.c. */
void ts_index_topic_desc_prefix(const char *topic, char *out, size_t outlen);
void ts_index_topic_desc_key(const char *topic, int64_t ms, const char *rand, char *out,
                             size_t outlen);
/* The descriptor document (topic_desc.c; index/README.md "Topic
 * descriptors"): {"format":1,"topic":T,"partitions":N,"written_ms":MS}.
 * _json returns a malloc'd string (NULL: out of memory). _parse checks the
 * format, that the topic is `topic` and that 1 <= partitions <= 1000000;
 * TS_E_CORRUPT naming `key` otherwise. */
char *ts_index_topic_desc_json(const char *topic, int32_t partitions, int64_t written_ms);
ts_status ts_index_topic_desc_parse(const char *key, const char *topic, const uint8_t *data,
                                    size_t len, int32_t *partitions, char *errstr, size_t errlen);
/* "<topic>/<partition>/manifests/pieces/" */
void ts_index_piece_prefix(const char *topic, int32_t partition, char *out, size_t outlen);
/* "<topic>/<partition>/manifests/pieces/<base:20>-<last:20>-<id>.json" */
void ts_index_piece_key(const char *topic, int32_t partition, int64_t base, int64_t last,
                        const char *id, char *out, size_t outlen);

/* Reading keys back (listings of "<topic>/"); `rest` is the key after
 * "<topic>/". The partition when rest is "<decimal p>/manifests/..." (a
 * head or piece of partition p: digits only, p <= INT32_MAX), else -1. */
int32_t ts_index_key_manifest_partition(const char *rest);
/* 1 when rest is a topic descriptor, "descriptor/....json", else 0. */
int ts_index_key_is_topic_desc(const char *rest);

#endif
