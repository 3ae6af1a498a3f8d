/*
 * epoch_cache.h — a partition's leader epoch cache (KIP-101/279): for each
 * leader epoch, the first offset written in it, ascending in both epoch and
 * start offset. Kafka's LeaderEpochFileCache, with its file layout
 * (`<partition dir>/leader-epoch-checkpoint`, replaced atomically: temp file,
 * fsync, rename, fsync of the directory):
 *
 *   0              version
 *   2              number of entries
 *   0 0            epoch start_offset
 *   3 150
 *
 * Pure data plus the file: no locks of its own (the partition's mutex
 * guards it), no knowledge of segments or manifests.
 */
#ifndef TS_TIERING_EPOCH_CACHE_H
#define TS_TIERING_EPOCH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "index/index.h"
#include "tierstore.h"

#define TS_EPOCH_CACHE_MAX 100000 /* entries; a checkpoint with more is refused */

/* The same pair the manifest heads record (index.h). */
typedef ts_index_epoch ts_epoch_entry;

typedef struct ts_epoch_cache {
    ts_epoch_entry *v;
    size_t n, cap;
} ts_epoch_cache;

void ts_epoch_cache_free(ts_epoch_cache *c);
/* Latest epoch (-1 when empty). */
int32_t ts_epoch_cache_latest(const ts_epoch_cache *c);
/* Kafka's assign: (epoch, start) becomes the last entry when epoch is above
 * the latest; entries at or past start go first (a new epoch starting where
 * an older one started replaces it). An epoch <= the latest changes
 * nothing. Returns 1 when the cache changed, 0 when not, -1 out of memory. */
int ts_epoch_cache_assign(ts_epoch_cache *c, int32_t epoch, int64_t start);
/* Removes entries whose start offset >= end (a truncated log end). Returns
 * 1 when the cache changed. */
int ts_epoch_cache_truncate_from_end(ts_epoch_cache *c, int64_t end);
/* Kafka's OffsetForLeaderEpoch: the largest epoch <= epoch and its end (the
 * next entry's start, or log_end for the latest). -1/-1 when the cache is
 * empty or epoch is older than every entry. */
void ts_epoch_cache_end_offset(const ts_epoch_cache *c, int32_t epoch, int64_t log_end,
                               int32_t *found_epoch, int64_t *end_offset);
/* Copies src into dst (dst's old entries are freed). */
int ts_epoch_cache_copy(ts_epoch_cache *dst, const ts_epoch_cache *src);

/* Loads the checkpoint file at path (absent: empty cache, TS_OK; a file that
 * does not parse: TS_E_CORRUPT naming the line). */
ts_status ts_epoch_cache_load(ts_epoch_cache *c, const char *path, char *errstr, size_t errlen);
/* Writes the checkpoint atomically (durable when it returns TS_OK). */
ts_status ts_epoch_cache_write(const ts_epoch_cache *c, const char *path, char *errstr,
                               size_t errlen);

#endif
