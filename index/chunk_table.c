/*
 * chunk_table.c — a segment object's own chunk table, and the cache that
 * keeps the tables recently used.
 *
 * Why in the object: a chunk table (256 chunks at the default 1 GiB / 4 MiB
 * shape, ~50 KB as JSON) used to sit in every manifest, so the manifest
 * grew by it per segment, every commit rewrote all of them and every
 * broker kept all of them in RAM. The object is immutable and written once,
 * so its table is too: the uploader writes it into the object as a zstd
 * skippable frame right before the seek table. `zstd -d` skips it (the
 * object stays a plain zstd stream), there is no extra PUT per upload, the
 * object describes itself, and a reader fetches it with one ranged GET the
 * first time it touches the segment. The manifest entry keeps only where
 * the frame is (derivable from stored_bytes and chunk_count) and the count.
 *
 * Frame layout, little-endian, TS_CHUNK_TABLE_LEN(n) = 48 + 40 n bytes:
 *   0  u32 0x184D2A5B (zstd skippable magic, 0x184D2A5? family)
 *   4  u32 frame size = 40 + 40 n (bytes after this field)
 *   8  "TSCT"   12 u32 1 (table version)   16 u32 n   20 u32 segment CRC-32C
 *   24 i64 base offset   32 i64 first timestamp   40 u32 flags: 1 = chunks sealed
 *      (encrypted, common/crypt.h), else 0; must agree with the manifest entry
 *   44 n x { i64 first_offset, i64 max_timestamp, u64 stored_pos,
 *            u32 stored_len, u32 raw_len, u32 stored_crc32c, u32 raw_crc32c }
 *   44+40n u32 CRC-32C of bytes [8, 44 + 40 n)
 * raw_pos is not stored: chunks tile the raw segment, so it is the sum of
 * the previous raw lengths. The frame is verified (CRC, then every rule of
 * ts_manifest_check_segment) before a reader uses it.
 *
 * The cache is keyed by object key, byte-capped (remote.log.index.cache.bytes)
 * with LRU eviction, one per engine shared by its partitions. Callers get
 * copies, so nothing handed out is ever freed under them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "chunk_table.h"
#include "index/index.h"
#include "manifest_json.h"

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

void ts_chunk_table_encode(const ts_segment_meta *seg, uint8_t *out)
{
    uint32_t n = seg->chunk_count;
    uint32_t len = TS_CHUNK_TABLE_LEN(n);
    wr32(out, TS_CHUNK_TABLE_MAGIC);
    wr32(out + 4, len - 8);
    memcpy(out + 8, "TSCT", 4);
    wr32(out + 12, 1);
    wr32(out + 16, n);
    wr32(out + 20, seg->segment_crc32c);
    wr64(out + 24, (uint64_t)seg->base_offset);
    wr64(out + 32, (uint64_t)seg->first_timestamp);
    wr32(out + 40, seg->sealed ? 1u : 0u);
    uint8_t *p = out + 44;
    for (uint32_t i = 0; i < n; i++, p += 40) {
        const ts_chunk_meta *c = &seg->chunks[i];
        wr64(p, (uint64_t)c->first_offset);
        wr64(p + 8, (uint64_t)c->max_timestamp);
        wr64(p + 16, c->stored_pos);
        wr32(p + 24, c->stored_len);
        wr32(p + 28, c->raw_len);
        wr32(p + 32, c->stored_crc32c);
        wr32(p + 36, c->raw_crc32c);
    }
    wr32(p, ts_crc32c(0, out + 8, (size_t)(p - out - 8)));
}

ts_status ts_chunk_table_decode(const uint8_t *f, size_t len, ts_segment_meta *seg, char *errstr,
                                size_t errlen)
{
    ts_chunk_meta *chunks = NULL;
    ts_status st = TS_E_CORRUPT;
    const char *why = NULL;
    uint32_t n = seg->chunk_count;
    if (n == 0 || n > TS_MANIFEST_MAX_CHUNKS || len != TS_CHUNK_TABLE_LEN(n)) {
        why = "has the wrong length for the entry's chunk count";
        goto fail;
    }
    if (rd32(f) != TS_CHUNK_TABLE_MAGIC || rd32(f + 4) != len - 8 || memcmp(f + 8, "TSCT", 4)) {
        why = "is not a chunk table frame (magic, size or tag)";
        goto fail;
    }
    if (rd32(f + 40 + 4 + 40 * (size_t)n) != ts_crc32c(0, f + 8, 36 + 40 * (size_t)n)) {
        st = TS_E_CHECKSUM;
        why = "fails its CRC-32C";
        goto fail;
    }
    if (rd32(f + 12) != 1) {
        st = TS_E_UNSUPPORTED;
        why = "has an unknown table version";
        goto fail;
    }
    if (rd32(f + 40) != (seg->sealed ? 1u : 0u)) {
        why = seg->sealed ? "says its chunks are plain but the manifest says they are sealed"
                          : "says its chunks are sealed (encrypted) but the manifest has no "
                            "encryption envelope for it";
        goto fail;
    }
    if (rd32(f + 16) != n || (int64_t)rd64(f + 24) != seg->base_offset) {
        why = "describes another segment (count or base offset differ from the manifest)";
        goto fail;
    }
    if (!(chunks = calloc(n, sizeof(*chunks)))) {
        st = TS_E_NOMEM;
        why = "cannot be held (out of memory)";
        goto fail;
    }
    uint64_t raw_pos = 0;
    const uint8_t *p = f + 44;
    for (uint32_t i = 0; i < n; i++, p += 40) {
        ts_chunk_meta *c = &chunks[i];
        c->first_offset = (int64_t)rd64(p);
        c->max_timestamp = (int64_t)rd64(p + 8);
        c->stored_pos = rd64(p + 16);
        c->stored_len = rd32(p + 24);
        c->raw_len = rd32(p + 28);
        c->stored_crc32c = rd32(p + 32);
        c->raw_crc32c = rd32(p + 36);
        c->raw_pos = raw_pos;
        raw_pos += c->raw_len;
        if (c->stored_pos + c->stored_len > seg->chunk_table_pos) {
            why = "has a chunk that overlaps the table itself";
            goto fail;
        }
    }
    ts_segment_meta chk = *seg;
    chk.chunks = chunks;
    chk.segment_crc32c = rd32(f + 20);
    chk.first_timestamp = (int64_t)rd64(f + 32);
    if ((st = ts_manifest_check_segment(&chk, "chunk table", errstr, errlen))) {
        free(chunks);
        return ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "object %s", seg->object_key);
    }
    free(seg->chunks);
    *seg = chk;
    return TS_OK;
fail:
    free(chunks);
    return ts_err_set(errstr, errlen, st, "object %s: chunk table frame at %" PRIu64 "+%zu %s",
                      seg->object_key, seg->chunk_table_pos, len, why);
}

/* ------------------------------------------------------------------------
 * Cache
 * ------------------------------------------------------------------------ */

#define NBUCKETS 16384

typedef struct ct_ent {
    struct ct_ent *hnext, *prev, *next; /* hash chain; LRU (head = newest) */
    char *key;
    uint64_t hash;
    ts_chunk_meta *chunks;
    uint32_t n;
    uint32_t seg_crc;
    int64_t first_ts;
    uint64_t bytes;
    char key_id[TS_CRYPT_KEY_ID_MAX + 1]; /* envelope of a sealed entry ("" none) */
    uint8_t wrapped_key[TS_CRYPT_WRAPPED_LEN];
} ct_ent;

struct ts_chunk_table_cache {
    pthread_mutex_t mu;
    uint64_t max_bytes;
    ct_ent *buckets[NBUCKETS];
    ct_ent *head, *tail;
    ts_chunk_table_cache_stats stats;
};

static uint64_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

ts_status ts_chunk_table_cache_create(uint64_t max_bytes, ts_chunk_table_cache **out)
{
    ts_chunk_table_cache *c = calloc(1, sizeof(*c));
    if (!c) return TS_E_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    *out = c;
    return TS_OK;
}

static void ent_free(ct_ent *e)
{
    free(e->key);
    free(e->chunks);
    free(e);
}

void ts_chunk_table_cache_destroy(ts_chunk_table_cache *c)
{
    if (!c) return;
    for (ct_ent *e = c->head, *nx; e; e = nx) {
        nx = e->next;
        ent_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void lru_unlink(ts_chunk_table_cache *c, ct_ent *e)
{
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(ts_chunk_table_cache *c, ct_ent *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void evict(ts_chunk_table_cache *c, ct_ent *e)
{
    ct_ent **pp = &c->buckets[e->hash % NBUCKETS];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->stats.bytes -= e->bytes;
    c->stats.entries--;
    ent_free(e);
}

/* Copies a cached table into seg (chunks malloc'd). 1 on a hit. */
int ts_chunk_table_cache_lookup(ts_chunk_table_cache *c, ts_segment_meta *seg)
{
    if (!c) return 0;
    uint64_t h = hash_key(seg->object_key);
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    for (ct_ent *e = c->buckets[h % NBUCKETS]; e; e = e->hnext) {
        if (e->hash != h || strcmp(e->key, seg->object_key) || e->n != seg->chunk_count) continue;
        ts_chunk_meta *copy = malloc((size_t)e->n * sizeof(*copy));
        if (copy) {
            memcpy(copy, e->chunks, (size_t)e->n * sizeof(*copy));
            free(seg->chunks);
            seg->chunks = copy;
            seg->segment_crc32c = e->seg_crc;
            seg->first_timestamp = e->first_ts;
            if (seg->sealed && !seg->key_id[0] && e->key_id[0]) { /* a piece entry's envelope */
                memcpy(seg->key_id, e->key_id, sizeof(seg->key_id));
                memcpy(seg->wrapped_key, e->wrapped_key, sizeof(seg->wrapped_key));
            }
            lru_unlink(c, e);
            lru_front(c, e);
            hit = 1;
        }
        break;
    }
    if (hit) c->stats.hits++;
    else c->stats.misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Keeps a copy of seg's (verified) table. Best-effort: out of memory or a
 * table larger than the cap simply is not kept. */
void ts_chunk_table_cache_insert(ts_chunk_table_cache *c, const ts_segment_meta *seg)
{
    if (!c || !seg->chunks) return;
    uint64_t bytes = (uint64_t)seg->chunk_count * sizeof(ts_chunk_meta) + sizeof(ct_ent) +
                     strlen(seg->object_key) + 1;
    if (bytes > c->max_bytes) return;
    ct_ent *e = calloc(1, sizeof(*e));
    if (!e) return;
    e->key = strdup(seg->object_key);
    e->chunks = malloc((size_t)seg->chunk_count * sizeof(*e->chunks));
    if (!e->key || !e->chunks) {
        ent_free(e);
        return;
    }
    memcpy(e->chunks, seg->chunks, (size_t)seg->chunk_count * sizeof(*e->chunks));
    e->n = seg->chunk_count;
    e->seg_crc = seg->segment_crc32c;
    e->first_ts = seg->first_timestamp;
    if (seg->sealed) {
        memcpy(e->key_id, seg->key_id, sizeof(e->key_id));
        memcpy(e->wrapped_key, seg->wrapped_key, sizeof(e->wrapped_key));
    }
    e->bytes = bytes;
    e->hash = hash_key(e->key);
    pthread_mutex_lock(&c->mu);
    for (ct_ent *o = c->buckets[e->hash % NBUCKETS]; o; o = o->hnext)
        if (o->hash == e->hash && !strcmp(o->key, e->key)) {
            evict(c, o); /* a racing fetch of the same table: keep the newest */
            break;
        }
    while (c->tail && c->stats.bytes + bytes > c->max_bytes) {
        evict(c, c->tail);
        c->stats.evictions++;
    }
    e->hnext = c->buckets[e->hash % NBUCKETS];
    c->buckets[e->hash % NBUCKETS] = e;
    lru_front(c, e);
    c->stats.bytes += bytes;
    c->stats.entries++;
    pthread_mutex_unlock(&c->mu);
}

/* Drops the cached table of key, if any (a rekey changed its envelope). */
void ts_chunk_table_cache_forget(ts_chunk_table_cache *c, const char *key)
{
    if (!c) return;
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&c->mu);
    for (ct_ent *e = c->buckets[h % NBUCKETS]; e; e = e->hnext)
        if (e->hash == h && !strcmp(e->key, key)) {
            evict(c, e);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

void ts_chunk_table_cache_stats_get(ts_chunk_table_cache *c, ts_chunk_table_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
