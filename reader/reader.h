/*
 * reader.h — the cold read path: offset -> remote segment -> chunk ->
 * disk chunk cache -> verified, decompressed bytes -> whole record batches.
 *
 * Chunk cache: decompressed chunks as files under a cache directory, with a
 * byte cap and LRU eviction. Concurrent misses on one chunk cost one fetch
 * (single-flight). Every chunk is verified once, when it enters the cache:
 * the stored bytes against the manifest's CRC-32C before decompression, the
 * raw bytes against the raw CRC-32C after it; it is then indexed by batch.
 * A read from a cache file (ts_chunk_cache_read) preads only the batches it
 * returns and checks each one's CRC-32C on those bytes, so disk rot is still
 * caught (the file is dropped and the chunk refetched, never served).
 *
 * On a miss a read fetches only the chunks it reaches; when its max_bytes
 * spans several chunks it fetches the following ones in parallel on the
 * reader's worker pool. A sequential reader (a read that starts where an
 * earlier read of the same index ended) prefetches the chunks ahead of it
 * on the same pool, with a depth that grows while it consumes them (up to
 * the prefetch max) and shrinks when they age out before it gets there; a
 * random reader prefetches nothing.
 *
 * Thread safety: all functions may be called from any thread.
 */
#ifndef TS_READER_H
#define TS_READER_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"
#include "common/buf.h"
#include "index/index.h"
#include "objstore/objstore.h"

typedef struct ts_chunk_cache ts_chunk_cache;

/* A verified, decompressed chunk. Refcounted: release when done. */
typedef struct ts_chunk {
    const uint8_t *data;
    size_t len;
} ts_chunk;

typedef struct ts_chunk_cache_stats {
    uint64_t bytes;        /* bytes of chunk files on disk now */
    uint64_t files;
    uint64_t hits;
    uint64_t misses;
    uint64_t fetched_bytes;  /* stored bytes downloaded */
    uint64_t evictions;
    uint64_t verify_failures;
    uint64_t read_bytes;     /* bytes read back from cache files (hits) */
} ts_chunk_cache_stats;

/* Opens (creating if needed) the cache directory; existing chunk files are
 * adopted (their LRU order taken from mtime) and the cap enforced. */
ts_status ts_chunk_cache_create(const char *dir, uint64_t cap_bytes, ts_chunk_cache **out,
                                char *errstr, size_t errlen);
void ts_chunk_cache_destroy(ts_chunk_cache *c);

/* Returns chunk chunk_idx of seg, verified. On a miss fetches it with one
 * ranged GET (single-flight across threads). Errors name the object key and
 * the chunk index. An object the store lacks is TS_E_OBJECT_MISSING (the
 * manifest names it: corruption), never TS_E_NOT_FOUND. */
ts_status ts_chunk_cache_get(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                             uint32_t chunk_idx, ts_chunk **out, char *errstr, size_t errlen);
void ts_chunk_release(ts_chunk *ch);

/* A read's progress across chunks: ts_chunk_cache_read continues it in one
 * chunk and updates it. Fill want, stop_offset and max_bytes, zero the rest
 * at the start of a read; pass the same struct for each chunk. */
typedef struct ts_chunk_read {
    int64_t want;        /* in/out: the next offset the read needs */
    int64_t stop_offset; /* stop before the first batch whose base offset is >= it */
    size_t max_bytes;    /* byte budget of the whole read (its first batch is taken whole) */
    size_t added;        /* out: bytes appended so far */
    size_t nbatches;     /* out: batches appended so far */
    int full;            /* out: stop_offset, max_bytes or out's cap reached: stop reading */
} ts_chunk_read;

/* Appends to out whole batches of chunk chunk_idx of seg, from the one
 * holding rq->want on, up to rq->max_bytes / rq->stop_offset / out's cap,
 * and advances rq. A cached chunk is served by a pread of only those batches,
 * each checked against its CRC-32C (a damaged file is dropped, counted in
 * verify_failures, and the chunk refetched); a missing one is fetched as by
 * ts_chunk_cache_get. TS_E_CORRUPT (naming the object, chunk and byte) when
 * the read reaches bytes of the chunk that are no whole batch: batches
 * appended before them stay appended and are counted in rq. TS_E_NOMEM when
 * the read's first batch does not fit out (nothing appended). */
ts_status ts_chunk_cache_read(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                              uint32_t chunk_idx, ts_chunk_read *rq, ts_buf *out, char *errstr,
                              size_t errlen);
/* 64-bit FNV-1a of an object key: how the cache and the reader's sequential
 * detection bucket objects (collisions only cost a refetch or a prefetch). */
uint64_t ts_chunk_cache_key_hash(const char *key);
/* RAM for the batch indexes of cache files (an eighth) and recently fetched
 * or loaded verified chunks (the rest): default 32 MiB; 0 disables both
 * (reads then also pread the file's index). */
void ts_chunk_cache_set_memory(ts_chunk_cache *c, uint64_t bytes);
void ts_chunk_cache_stats_get(ts_chunk_cache *c, ts_chunk_cache_stats *out);
/* Drops every cached file of an object (after retention deleted it). */
void ts_chunk_cache_forget_object(ts_chunk_cache *c, const char *object_key);

/* Retry policy of fetches (a failed attempt with a retriable status, a
 * checksum failure included, is retried with jittered backoff):
 * timeout_ms bounds the whole fetch, base_ms/max_ms the backoff, and
 * max_attempts the attempts (0 = deadline only). Defaults: 30000, 50,
 * 2000, 5. Applies to fetches started afterwards. */
void ts_chunk_cache_set_retry(ts_chunk_cache *c, int64_t timeout_ms, int64_t base_ms,
                              int64_t max_ms, int max_attempts);
/* Key ring that opens sealed (encrypted) chunks (common/crypt.h; borrowed,
 * must outlive the cache; set before sharing the cache). Without one a
 * sealed chunk fails with TS_E_CONFIG. Cache files hold the opened,
 * decompressed chunk: the local tier is not encrypted. */
void ts_chunk_cache_set_keyring(ts_chunk_cache *c, const ts_keyring *ring);
/* Fetches chunk chunk_idx of seg into the cache without returning it (the
 * prefetch path). Returns TS_OK at once when the chunk is cached or already
 * being fetched by another thread. */
ts_status ts_chunk_cache_warm(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                              uint32_t chunk_idx, char *errstr, size_t errlen);
/* Non-zero when the chunk has a cache file or a fetch in flight. Cheap (no
 * I/O): the prefetcher uses it to skip work. */
int ts_chunk_cache_has(ts_chunk_cache *c, const char *object_key, uint32_t chunk_idx);

typedef struct ts_reader ts_reader;

/* prefetch_chunks: how many chunks ahead a sequential reader prefetches at
 * first (0 disables prefetch). threads: size of the pool that runs
 * prefetches and the parallel chunk fetches of multi-chunk reads (a read
 * runs at most min(threads, 8) chunks ahead of itself). os and cache are
 * borrowed: they must outlive the reader. */
ts_status ts_reader_create(ts_objstore *os, ts_chunk_cache *cache, int threads,
                           int prefetch_chunks, ts_reader **out, char *errstr, size_t errlen);
/* The depth a sequential stream's prefetch may grow to (it doubles each
 * time the reader enters a chunk its prefetch queued). Default:
 * prefetch_chunks (a fixed depth). A max below prefetch_chunks lowers the
 * starting depth too. Set before sharing the reader. */
ts_status ts_reader_set_prefetch_max(ts_reader *r, int max_chunks, char *errstr, size_t errlen);

typedef struct ts_reader_stats {
    uint64_t prefetch_queued; /* prefetch jobs submitted since create */
    int prefetch_depth_max;   /* the deepest depth any stream reached */
    int prefetch_depth_now;   /* the deepest depth of the streams remembered now */
    int streams;              /* stream slots in use (at most 64) */
} ts_reader_stats;
void ts_reader_stats_get(ts_reader *r, ts_reader_stats *out);
/* Drops queued prefetches, waits for running ones, then frees the reader. */
void ts_reader_destroy(ts_reader *r);
/* Waits until no prefetch is queued or running (tests, benchmarks). */
void ts_reader_drain(ts_reader *r);

/* Appends to out whole record batches from the remote tier of idx, starting
 * with the batch that contains offset, continuing across chunks and
 * segments, up to max_bytes (at least one whole batch). Stops at the end of
 * the remote tier or before the first batch whose base offset is >=
 * stop_offset (pass INT64_MAX for no limit). TS_E_NOT_FOUND when no remote
 * segment covers offset; TS_E_OBJECT_MISSING when one does but its object
 * is gone from the store. When a later chunk fails (fetch, verification) after
 * at least one batch was appended, returns TS_OK with those batches; the next
 * read, starting at the failing batch, returns the error. On error nothing is
 * appended. idx is borrowed beyond the call: a sequential stream's prefetch
 * looks up the next segment in it on the reader's pool, so it must outlive
 * the reader (or a ts_reader_drain after its last read). */
ts_status ts_reader_read(ts_reader *r, ts_index *idx, int64_t offset, size_t max_bytes,
                         int64_t stop_offset, ts_buf *out, char *errstr, size_t errlen);

/* Earliest offset in the remote tier whose batch has max timestamp >= ts.
 * Reads the one chunk the chunk table points at. */
ts_status ts_reader_offset_for_time(ts_reader *r, ts_index *idx, int64_t ts, int64_t *offset,
                                    char *errstr, size_t errlen);

#endif
