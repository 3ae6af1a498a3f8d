/*
 * index_test.h — what the index/ unit tests (test_index.c: the index and its
 * persistence; test_manifest_json.c: the formats) share: a segment entry
 * built to order, entry equality, a temp-dir remover. Header-only (static
 * inline), like tt.h.
 */
#ifndef TS_TESTS_INDEX_TEST_H
#define TS_TESTS_INDEX_TEST_H

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "index/index.h"
#include "index/manifest_json.h"
#include "tt.h"

/* ------------------------------------------------------------------------
 * Fixtures
 * ------------------------------------------------------------------------ */

/* A segment [base, last] of `nchunks` chunks of 100 raw bytes each. */
static inline void mkseg(ts_segment_meta *s, int64_t base, int64_t last, uint32_t nchunks,
                         int64_t max_ts)
{
    memset(s, 0, sizeof(*s));
    s->base_offset = base;
    s->last_offset = last;
    s->first_timestamp = max_ts >= 10 ? max_ts - 10 : max_ts;
    s->max_timestamp = max_ts;
    s->size_bytes = 100ull * nchunks;
    s->stored_bytes = 40ull * nchunks + 16;
    s->upload_time_ms = 1700000000000LL;
    s->segment_crc32c = 0xdeadbeef;
    ts_index_segment_key("orders", 3, base, "a1b2", s->object_key, sizeof(s->object_key));
    s->chunk_count = nchunks;
    s->chunks = calloc(nchunks, sizeof(*s->chunks));
    int64_t span = (last - base + 1) / nchunks;
    for (uint32_t i = 0; i < nchunks; i++) {
        ts_chunk_meta *c = &s->chunks[i];
        c->raw_pos = 100ull * i;
        c->raw_len = 100;
        c->stored_pos = 40ull * i;
        c->stored_len = 40;
        c->first_offset = base + (int64_t)i * (span > 0 ? span : 1);
        c->max_timestamp = max_ts;
        c->stored_crc32c = 0x1000 + i;
        c->raw_crc32c = 0xffffffffu - i;
    }
}

static inline int seg_eq(const ts_segment_meta *a, const ts_segment_meta *b)
{
    if (a->base_offset != b->base_offset || a->last_offset != b->last_offset ||
        a->first_timestamp != b->first_timestamp || a->max_timestamp != b->max_timestamp ||
        a->size_bytes != b->size_bytes || a->stored_bytes != b->stored_bytes ||
        a->upload_time_ms != b->upload_time_ms || a->segment_crc32c != b->segment_crc32c ||
        strcmp(a->object_key, b->object_key) || a->chunk_count != b->chunk_count)
        return 0;
    return !memcmp(a->chunks, b->chunks, a->chunk_count * sizeof(ts_chunk_meta));
}

static inline void rmrf(const char *dir) { ts_fs_rmtree(dir, NULL, 0); }

#endif
