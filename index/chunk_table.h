/*
 * chunk_table.h — internal to index/: the calls index.c makes on the
 * chunk-table cache (index/chunk_table.c). The cache's public half (create,
 * destroy, stats) and the frame codec are in index/index.h.
 */
#ifndef TS_INDEX_CHUNK_TABLE_H
#define TS_INDEX_CHUNK_TABLE_H

#include "index/index.h"

/* Copies a cached table into seg (chunks malloc'd). 1 on a hit. NULL-safe
 * (a miss). */
int ts_chunk_table_cache_lookup(ts_chunk_table_cache *c, ts_segment_meta *seg);

/* Keeps a copy of seg's (verified) table. Best-effort: out of memory or a
 * table larger than the cap simply is not kept. */
void ts_chunk_table_cache_insert(ts_chunk_table_cache *c, const ts_segment_meta *seg);

/* Drops the cached table of key, if any (a rekey changed its envelope). */
void ts_chunk_table_cache_forget(ts_chunk_table_cache *c, const char *key);

#endif
