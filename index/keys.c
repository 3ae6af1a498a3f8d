/*
 * keys.c — the bucket layout. Every object key tierstore writes is built
 * here, so the layout of index/README.md has one implementation:
 *
 *   <topic>/<partition>/segments/<base_offset:20>-<attempt>.log.zst
 *   <topic>/<partition>/manifests/<version:20>.json              heads
 *   <topic>/<partition>/manifests/pieces/<base:20>-<last:20>-<id>.json
 *   <topic>/config/<ms:20>-<rand>.properties                    topic overrides
 *   <topic>/descriptor/<ms:20>-<rand>.json                      partition count
 *
 * Offsets and versions are zero-padded to 20 digits (the width of
 * UINT64_MAX) so that lexicographic LIST order is numeric order; the
 * attempt id makes every upload attempt a new key, because remote objects
 * are never overwritten.
 *
 * Listings of a topic read keys back through ts_index_key_manifest_partition
 * and ts_index_key_is_topic_desc, the only parsers of the layout.
 *
 * The manifest parser checks every object key it reads against
 * ts_index_segment_prefix: a manifest may only name its own partition's
 * segment objects, because retention deletes what the manifest names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "index/index.h"

void ts_index_topic_prefix(const char *topic, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/", topic);
}

void ts_index_partition_prefix(const char *topic, int32_t partition, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/", topic, partition);
}

void ts_index_segment_prefix(const char *topic, int32_t partition, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/segments/", topic, partition);
}

void ts_index_segment_key(const char *topic, int32_t partition, int64_t base_offset,
                          const char *attempt_id, char *out, size_t outlen)
{
    char prefix[TS_INDEX_KEY_MAX];
    ts_index_segment_prefix(topic, partition, prefix, sizeof(prefix));
    snprintf(out, outlen, "%s%020" PRId64 "-%s.log.zst", prefix, base_offset,
             attempt_id ? attempt_id : "0");
}

void ts_index_manifest_prefix(const char *topic, int32_t partition, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/manifests/", topic, partition);
}

void ts_index_manifest_key(const char *topic, int32_t partition, uint64_t version, char *out,
                           size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/manifests/%020" PRIu64 ".json", topic, partition,
             version);
}

void ts_index_topic_config_prefix(const char *topic, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/config/", topic);
}

void ts_index_topic_config_key(const char *topic, int64_t ms, const char *rand, char *out,
                               size_t outlen)
{
    snprintf(out, outlen, "%s/config/%020" PRId64 "-%s.properties", topic, ms, rand);
}

void ts_index_topic_desc_prefix(const char *topic, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/descriptor/", topic);
}

void ts_index_topic_desc_key(const char *topic, int64_t ms, const char *rand, char *out,
                             size_t outlen)
{
    snprintf(out, outlen, "%s/descriptor/%020" PRId64 "-%s.json", topic, ms, rand);
}

void ts_index_piece_prefix(const char *topic, int32_t partition, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/manifests/pieces/", topic, partition);
}

void ts_index_piece_key(const char *topic, int32_t partition, int64_t base, int64_t last,
                        const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%" PRId32 "/manifests/pieces/%020" PRId64 "-%020" PRId64 "-%s.json",
             topic, partition, base, last, id);
}

int32_t ts_index_key_manifest_partition(const char *rest)
{
    int64_t p = 0;
    const char *c = rest;
    for (; *c >= '0' && *c <= '9'; c++)
        if ((p = p * 10 + (*c - '0')) > INT32_MAX) return -1;
    if (c == rest || strncmp(c, "/manifests/", 11)) return -1;
    return (int32_t)p;
}

int ts_index_key_is_topic_desc(const char *rest)
{
    size_t n = strlen(rest);
    return !strncmp(rest, "descriptor/", 11) && n > 5 && !strcmp(rest + n - 5, ".json");
}
