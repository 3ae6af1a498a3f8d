/*
 * chunk_cache.c — the disk chunk cache of the cold read path (reader.h has
 * the interface; reader/README.md the cache file format and the RAM bound).
 *
 * A remote segment object is a sequence of independent zstd frames
 * ("chunks"). A cold read needs one chunk, so the cache keeps decompressed
 * chunks as files, one per (object key, chunk index), named by the SHA-256 of
 * that pair. Shaped so because:
 *  - the disk is the cache, RAM is not: in memory we keep only a small record
 *    per file (map + LRU links), a byte-capped share of the files' batch
 *    indexes, and the chunks callers hold;
 *  - remote bytes are verified before they are used: stored CRC-32C before
 *    decompression (zstd never sees unverified input), then length and raw
 *    CRC-32C after it. That is the one time a whole chunk is checked: it is
 *    then parsed into a per-batch position index (base offset -> position;
 *    each batch's own Kafka CRC-32C is checked here too) that goes into the
 *    file's header;
 *  - a read (ts_chunk_cache_read) costs what it serves: it finds its first
 *    batch in the index and preads only the batches it returns. Disk rot
 *    after verification is still caught: every served batch is checked on
 *    the served bytes (its Kafka CRC-32C over attributes..end, and a CRC-32C
 *    of its first 21 bytes kept in the index), the index has its own CRC,
 *    and a mismatch drops the file, counts a verify failure and refetches;
 *  - concurrent misses on one chunk share one ranged GET (single-flight), so a
 *    burst of consumers on a cold offset costs one request;
 *  - returned chunks and indexes own their bytes (refcounted), so eviction,
 *    which only unlinks files, never pulls memory from under a reader.
 *
 * Locking: one mutex, c->mu, guards the map, the LRU list, the in-flight
 * table, the RAM layers and the byte accounting. It is also held across the
 * rename() that publishes a file and the unlink() that evicts one, so the
 * directory and the map never disagree and the directory never holds more
 * than the cap (these are metadata-only syscalls; reads, writes, GETs and
 * decompression run without the lock). Counters are atomics so stats never
 * take the lock.
 */
#include "reader/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_forceIgnoreChecksum (decompress) */
#include <zstd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/retry.h"

#define HOT_SLOTS 16 /* in-RAM verified chunks (see struct ts_chunk_cache) */
/* Hard cap on one chunk's raw and stored size: the uploader cuts chunks at
 * remote.storage.chunk.bytes (<= 256 MiB) unless a single batch is larger,
 * and no sane batch reaches 1 GiB. A manifest claiming more is refused
 * rather than allowed to make us allocate it. */
#define CHUNK_MAX_BYTES (1u << 30)

/* Cache file header (format 2, magic "TSC2"): HDR_FIXED bytes of fixed
 * fields, the object key and a CRC-32C of both; then the batch index (IDX_ENT
 * bytes per batch) and its own CRC-32C; the body follows. Laid out byte by
 * byte, with why the key is in the file, in reader/README.md ("Cache file
 * format"), the one place it is documented. */
#define HDR_MAGIC 0x54534332u /* "TSC2" */
#define HDR_MAGIC_V1 0x54534331u /* "TSC1": no batch index; dropped at start */
#define HDR_FIXED 26
#define HDR_KEYED(klen) ((size_t)HDR_FIXED + (klen) + 4)
#define HDR_KEYED_MAX HDR_KEYED(TS_INDEX_KEY_MAX)
#define IDX_ENT 20
#define HDR_LEN(klen, n) (HDR_KEYED(klen) + (size_t)IDX_ENT * (n) + 4)
/* Bytes of a batch before attributes: what Kafka's CRC does not cover. */
#define BATCH_HEAD 21
#define FILE_SUFFIX ".chunk"
#define TMP_MARK ".tmp-"
#define ID_LEN 32 /* SHA-256 */

/* Defaults of ts_chunk_cache_set_retry. */
#define RETRY_TIMEOUT_MS 30000
#define RETRY_BASE_MS 50
#define RETRY_MAX_MS 2000
#define RETRY_ATTEMPTS 5
/* A file's mtime (the LRU order a restart adopts) is refreshed at most this
 * often: a futimens per read would dirty the inode on every hit. */
#define TOUCH_EVERY_S 1

/* One batch of a cached chunk. */
typedef struct bent {
    int64_t base;        /* baseOffset */
    uint32_t pos;        /* byte position in the chunk */
    uint32_t last_delta; /* lastOffsetDelta (>= 0) */
    uint32_t head_crc;   /* CRC-32C of the batch's first BATCH_HEAD bytes */
} bent;

/* The batch index of one chunk: its whole batches in order, back to back
 * from byte 0 to `end`. end < raw_len means the bytes at end are not a batch
 * that lies within the chunk (the object is corrupt from there on). Built
 * once when a chunk enters the cache, immutable, refcounted (an entry, a
 * chunk and readers share it). */
typedef struct bidx {
    atomic_int refs;
    uint32_t n, end, raw_len;
    size_t hdr_len; /* where the body starts in the cache file */
    size_t ram;     /* bytes this index takes in RAM */
    bent e[];
} bidx;

/* A chunk handed to callers: pub must stay first (ts_chunk_release casts
 * back). buf is the allocation pub.data points into (a whole cache file
 * image when loaded from disk, the bare body when fetched). */
typedef struct chunk_impl {
    ts_chunk pub;
    atomic_int refs;
    uint8_t *buf;
    bidx *ix;
} chunk_impl;

/* One cache file. Everything the cache keeps in RAM per file. */
typedef struct entry {
    uint8_t id[ID_LEN];   /* SHA-256(key, chunk index): the file name */
    uint64_t key_hash;    /* FNV-1a of the object key, for forget_object */
    uint64_t size;        /* file bytes (header + body) */
    uint64_t gen;         /* unique per insert: tells a refetched file from the old one */
    bidx *ix;             /* its batch index while in RAM (idx_bytes), else NULL */
    uint32_t touched_s;   /* monotonic seconds of the last mtime refresh */
    struct entry *hnext;  /* hash chain */
    struct entry *prev, *next; /* LRU: head = most recently used */
} entry;

/* A fetch in progress. The leader (the thread that created it) fetches;
 * waiters sleep on c->flight_cv until done. Freed by the last of them. */
typedef struct flight {
    uint8_t id[ID_LEN];
    uint64_t key_hash;
    int done;
    int forgotten;        /* forget_object ran meanwhile: do not cache the result */
    int refs;             /* leader + waiters; under c->mu */
    ts_status st;
    chunk_impl *result;   /* one reference owned by the flight */
    char err[512];
    struct flight *next;
} flight;

struct ts_chunk_cache {
    char dir[PATH_MAX];
    uint64_t cap;

    pthread_mutex_t mu;
    pthread_cond_t flight_cv;
    entry **buckets;      /* under mu */
    size_t nbuckets, nentries;
    entry *lru_head, *lru_tail;
    flight *flights;
    uint64_t reserved;    /* bytes promised to files being written; under mu */
    uint64_t next_gen;

    int64_t retry_timeout_ms, retry_base_ms, retry_max_ms;
    int retry_attempts;
    const ts_keyring *keyring; /* opens sealed chunks (not owned; set before sharing) */

    /* RAM layers, both within remote.log.cache.memory.bytes (mem_cap):
     * batch indexes of cache files (idx_bytes <= mem_cap / 8), so a read
     * preads only its batches, not the index; and a few recently fetched or
     * fully loaded, verified chunks (hot_bytes <= the rest, HOT_SLOTS
     * entries), so a sequential reader right behind a fetch copies from RAM.
     * Under mu. */
    struct hot_slot {
        uint8_t id[ID_LEN];
        uint64_t key_hash;
        chunk_impl *ch;
        uint64_t tick;
    } hot[HOT_SLOTS];
    uint64_t hot_bytes, hot_cap, hot_tick;
    uint64_t idx_bytes, idx_cap;

    /* Written under mu (bytes, files) or anywhere (the rest); read lock-free. */
    _Atomic uint64_t bytes, files, hits, misses, fetched_bytes, evictions, verify_failures,
        read_bytes;
};

/* ---------------------------------------------------------------- helpers */

uint64_t ts_chunk_cache_key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* SHA-256 of (key length, key, chunk index): lengths framed so that no two
 * (key, index) pairs hash the same input. */
static void chunk_id(const char *key, uint32_t idx, uint8_t id[ID_LEN])
{
    uint8_t in[4 + TS_INDEX_KEY_MAX + 4];
    size_t klen = strnlen(key, TS_INDEX_KEY_MAX);
    ts_wr32(in, (uint32_t)klen);
    memcpy(in + 4, key, klen);
    ts_wr32(in + 4 + klen, idx);
    unsigned int mdlen = 0;
    EVP_Digest(in, 8 + klen, id, &mdlen, EVP_sha256(), NULL);
}

static void id_hex(const uint8_t id[ID_LEN], char out[2 * ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ID_LEN; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * ID_LEN] = '\0';
}

static void file_path(const ts_chunk_cache *c, const uint8_t id[ID_LEN], char *out, size_t len)
{
    char hex[2 * ID_LEN + 1];
    id_hex(id, hex);
    snprintf(out, len, "%s/%s" FILE_SUFFIX, c->dir, hex);
}

/* ------------------------------------------------------------ batch index */

static bidx *bidx_ref(bidx *ix)
{
    atomic_fetch_add(&ix->refs, 1);
    return ix;
}

static void bidx_put(bidx *ix)
{
    if (ix && atomic_fetch_sub(&ix->refs, 1) == 1) free(ix);
}

static bidx *bidx_alloc(uint32_t n, uint32_t end, uint32_t raw_len, size_t hdr_len)
{
    size_t ram = sizeof(bidx) + (size_t)n * sizeof(bent);
    bidx *ix = malloc(ram);
    if (!ix) return NULL;
    atomic_init(&ix->refs, 1);
    ix->n = n;
    ix->end = end;
    ix->raw_len = raw_len;
    ix->hdr_len = hdr_len;
    ix->ram = ram;
    return ix;
}

/* Bytes of batch i. */
static uint32_t bent_len(const bidx *ix, uint32_t i)
{
    return (i + 1 < ix->n ? ix->e[i + 1].pos : ix->end) - ix->e[i].pos;
}

/* Length of the whole, well-formed batch at p (len bytes left in the chunk),
 * or 0 when there is none: header, magic 2, lastOffsetDelta >= 0, lying
 * within the chunk, and its Kafka CRC-32C (attributes..end) matching. */
static size_t batch_ok(const uint8_t *p, size_t len, ts_batch_hdr *h)
{
    if (ts_batch_parse_header(p, len, SIZE_MAX, h, NULL, 0) || h->magic != 2 ||
        h->last_offset_delta < 0 || ts_batch_total_size(h) > len)
        return 0;
    size_t total = ts_batch_total_size(h);
    if (ts_crc32c(0, p + BATCH_HEAD, total - BATCH_HEAD) != h->crc) return 0;
    return total;
}

/* The CRC-32C of the whole batch at p (total bytes) after batch_ok passed:
 * its head's CRC joined to the Kafka CRC batch_ok just checked, so the
 * batch's bytes are read once for both. */
static uint32_t batch_crc(const uint8_t *p, size_t total, const ts_batch_hdr *h)
{
    return ts_crc32c_combine(ts_crc32c(0, p, BATCH_HEAD), h->crc, total - BATCH_HEAD);
}

/* Builds the batch index of a decompressed chunk: one pass for the count
 * (headers and Kafka CRCs), one to fill. Indexing stops at the first bytes
 * that are not a well-formed batch or whose offsets do not follow the
 * previous batch's (end < raw_len then). *raw_crc receives the CRC-32C of
 * all raw_len bytes, joined from the batches' CRCs and one pass over the
 * bytes past end, so the caller checks the manifest's raw CRC without a
 * second pass over the chunk. NULL only when out of memory. Runs on the
 * fetching thread without c->mu. */
static bidx *bidx_build(const uint8_t *raw, uint32_t raw_len, size_t klen, uint32_t *raw_crc)
{
    uint32_t n = 0, pos = 0, crc = 0;
    int64_t next = INT64_MIN; /* lowest base offset the next batch may have */
    ts_batch_hdr h;
    for (size_t t; pos < raw_len && (t = batch_ok(raw + pos, raw_len - pos, &h)); n++) {
        if (h.base_offset < next || h.base_offset > INT64_MAX - h.last_offset_delta) break;
        next = ts_batch_last_offset(&h) + 1;
        crc = ts_crc32c_combine(crc, batch_crc(raw + pos, t, &h), t);
        pos += (uint32_t)t;
    }
    *raw_crc = ts_crc32c_combine(crc, ts_crc32c(0, raw + pos, raw_len - pos), raw_len - pos);
    bidx *ix = bidx_alloc(n, pos, raw_len, HDR_LEN(klen, n));
    if (!ix) return NULL;
    pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        (void)ts_batch_parse_header(raw + pos, raw_len - pos, SIZE_MAX, &h, NULL, 0);
        ix->e[i].base = h.base_offset;
        ix->e[i].pos = pos;
        ix->e[i].last_delta = (uint32_t)h.last_offset_delta;
        ix->e[i].head_crc = ts_crc32c(0, raw + pos, BATCH_HEAD);
        pos += (uint32_t)ts_batch_total_size(&h);
    }
    return ix;
}

static chunk_impl *chunk_new(uint8_t *buf, size_t data_off, size_t raw_len, bidx *ix)
{
    chunk_impl *ch = malloc(sizeof(*ch));
    if (!ch) return NULL;
    ch->buf = buf;
    ch->pub.data = buf + data_off;
    ch->pub.len = raw_len;
    ch->ix = ix;
    atomic_init(&ch->refs, 1);
    return ch;
}

static chunk_impl *chunk_ref(chunk_impl *ch)
{
    atomic_fetch_add(&ch->refs, 1);
    return ch;
}

static void hot_drop_slot(ts_chunk_cache *c, struct hot_slot *h) /* mu held */
{
    c->hot_bytes -= h->ch->pub.len;
    ts_chunk_release(&h->ch->pub);
    h->ch = NULL;
}

/* Returns a new reference to a verified in-RAM chunk, or NULL. mu held. */
static chunk_impl *hot_get(ts_chunk_cache *c, const uint8_t *id)
{
    for (int i = 0; i < HOT_SLOTS; i++) {
        struct hot_slot *h = &c->hot[i];
        if (h->ch && !memcmp(h->id, id, ID_LEN)) {
            h->tick = ++c->hot_tick;
            return chunk_ref(h->ch);
        }
    }
    return NULL;
}

/* Keeps a reference to a just-verified chunk, evicting the least recently
 * used slots to stay within hot_cap. Takes mu. */
static void hot_put(ts_chunk_cache *c, const uint8_t *id, uint64_t key_hash, chunk_impl *ch)
{
    if (!c->hot_cap || ch->pub.len > c->hot_cap) return;
    pthread_mutex_lock(&c->mu);
    struct hot_slot *free_slot = NULL;
    for (int i = 0; i < HOT_SLOTS; i++)
        if (c->hot[i].ch && !memcmp(c->hot[i].id, id, ID_LEN)) {
            pthread_mutex_unlock(&c->mu); /* another thread put it first */
            return;
        }
    for (;;) {
        struct hot_slot *lru = NULL;
        free_slot = NULL;
        for (int i = 0; i < HOT_SLOTS; i++) {
            if (!c->hot[i].ch) free_slot = &c->hot[i];
            else if (!lru || c->hot[i].tick < lru->tick) lru = &c->hot[i];
        }
        if (free_slot && c->hot_bytes + ch->pub.len <= c->hot_cap) break;
        if (!lru) break;
        hot_drop_slot(c, lru);
    }
    if (free_slot) {
        memcpy(free_slot->id, id, ID_LEN);
        free_slot->key_hash = key_hash;
        free_slot->ch = chunk_ref(ch);
        free_slot->tick = ++c->hot_tick;
        c->hot_bytes += ch->pub.len;
    }
    pthread_mutex_unlock(&c->mu);
}

void ts_chunk_release(ts_chunk *pub)
{
    if (!pub) return;
    chunk_impl *ch = (chunk_impl *)pub;
    if (atomic_fetch_sub(&ch->refs, 1) == 1) {
        bidx_put(ch->ix);
        free(ch->buf);
        free(ch);
    }
}

/* Builds the cache file header of a chunk with batch index ix (format in
 * reader/README.md); ix->hdr_len bytes, caller frees. */
static uint8_t *hdr_build(const char *key, uint32_t idx, uint32_t raw_crc, const bidx *ix)
{
    size_t klen = strnlen(key, TS_INDEX_KEY_MAX);
    uint8_t *h = malloc(ix->hdr_len);
    if (!h) return NULL;
    ts_wr32(h, HDR_MAGIC);
    ts_wr32(h + 4, idx);
    ts_wr32(h + 8, ix->raw_len);
    ts_wr32(h + 12, raw_crc);
    ts_wr32(h + 16, ix->n);
    ts_wr32(h + 20, ix->end);
    ts_wr16(h + 24, (uint16_t)klen);
    memcpy(h + HDR_FIXED, key, klen);
    ts_wr32(h + HDR_FIXED + klen, ts_crc32c(0, h, HDR_FIXED + klen));
    uint8_t *p = h + HDR_KEYED(klen), *ent = p;
    for (uint32_t i = 0; i < ix->n; i++, p += IDX_ENT) {
        ts_wr64(p, (uint64_t)ix->e[i].base);
        ts_wr32(p + 8, ix->e[i].pos);
        ts_wr32(p + 12, ix->e[i].last_delta);
        ts_wr32(p + 16, ix->e[i].head_crc);
    }
    ts_wr32(p, ts_crc32c(0, ent, (size_t)IDX_ENT * ix->n));
    return h;
}

typedef struct hdr_info {
    uint32_t magic, idx, raw_len, raw_crc, n, end;
    size_t key_len, hdr_len;
    char key[TS_INDEX_KEY_MAX + 1];
} hdr_info;

/* Parses the fixed part and the key of a header from len bytes at h
 * (bounded slice), checking their CRC and that the counts are possible for
 * raw_len bytes (a batch is at least 61 bytes). 0 on success; hi->magic is
 * set as soon as 4 bytes are there (to tell an old-format file). */
static int hdr_parse(const uint8_t *h, size_t len, hdr_info *hi)
{
    hi->magic = len >= 4 ? ts_rd32(h) : 0;
    if (len < HDR_FIXED || hi->magic != HDR_MAGIC) goto fail;
    hi->idx = ts_rd32(h + 4);
    hi->raw_len = ts_rd32(h + 8);
    hi->raw_crc = ts_rd32(h + 12);
    hi->n = ts_rd32(h + 16);
    hi->end = ts_rd32(h + 20);
    hi->key_len = ts_rd16(h + 24);
    if (hi->key_len == 0 || hi->key_len > TS_INDEX_KEY_MAX) goto fail;
    if (len < HDR_KEYED(hi->key_len)) goto fail;
    if (ts_rd32(h + HDR_FIXED + hi->key_len) != ts_crc32c(0, h, HDR_FIXED + hi->key_len))
        goto fail;
    if (hi->raw_len > CHUNK_MAX_BYTES || hi->end > hi->raw_len ||
        hi->n > hi->end / TS_BATCH_HEADER_SIZE || (hi->n == 0) != (hi->end == 0))
        goto fail;
    hi->hdr_len = HDR_LEN(hi->key_len, hi->n);
    memcpy(hi->key, h + HDR_FIXED, hi->key_len);
    hi->key[hi->key_len] = '\0';
    if (strlen(hi->key) != hi->key_len) goto fail;
    return 0;
fail:
    return -1;
}

/* Parses the batch index that follows a parsed header (p: IDX_ENT * n + 4
 * bytes). Checks its CRC and that it describes whole batches back to back
 * from 0 to end with ascending base offsets, so that serving from it can
 * trust positions and lengths. NULL when damaged (or out of memory: *nomem). */
static bidx *bidx_parse(const uint8_t *p, const hdr_info *hi, int *nomem)
{
    *nomem = 0;
    size_t len = (size_t)IDX_ENT * hi->n;
    if (ts_rd32(p + len) != ts_crc32c(0, p, len)) return NULL;
    bidx *ix = bidx_alloc(hi->n, hi->end, hi->raw_len, hi->hdr_len);
    if (!ix) {
        *nomem = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < hi->n; i++, p += IDX_ENT) {
        bent *b = &ix->e[i];
        b->base = (int64_t)ts_rd64(p);
        b->pos = ts_rd32(p + 8);
        b->last_delta = ts_rd32(p + 12);
        b->head_crc = ts_rd32(p + 16);
        uint32_t want_pos = i ? ix->e[i - 1].pos + TS_BATCH_HEADER_SIZE : 0;
        if ((i == 0 && b->pos != 0) || (i && b->pos < want_pos) || b->pos > hi->end ||
            b->last_delta > INT32_MAX || b->base > INT64_MAX - (int64_t)b->last_delta ||
            (i && b->base <= ix->e[i - 1].base + (int64_t)ix->e[i - 1].last_delta))
            goto bad;
    }
    if (hi->n && hi->end - ix->e[hi->n - 1].pos < TS_BATCH_HEADER_SIZE) goto bad;
    return ix;
bad:
    free(ix);
    return NULL;
}
/* ------------------------------------------------------ map and LRU (mu) */

static size_t bucket_of(const ts_chunk_cache *c, const uint8_t id[ID_LEN])
{
    uint64_t h;
    memcpy(&h, id, sizeof(h));
    return (size_t)(h % c->nbuckets);
}

/* Caller holds c->mu. */
static entry *map_find(ts_chunk_cache *c, const uint8_t id[ID_LEN])
{
    for (entry *e = c->buckets[bucket_of(c, id)]; e; e = e->hnext)
        if (!memcmp(e->id, id, ID_LEN)) return e;
    return NULL;
}

/* Doubles the bucket array when the load passes 1. On allocation failure the
 * map keeps working with longer chains. Caller holds c->mu. */
static void map_grow(ts_chunk_cache *c)
{
    if (c->nentries < c->nbuckets) return;
    size_t nb = c->nbuckets * 2;
    entry **b = calloc(nb, sizeof(*b));
    if (!b) return;
    entry **old = c->buckets;
    size_t oldn = c->nbuckets;
    c->buckets = b;
    c->nbuckets = nb;
    for (size_t i = 0; i < oldn; i++) {
        entry *e = old[i];
        while (e) {
            entry *nx = e->hnext;
            size_t k = bucket_of(c, e->id);
            e->hnext = b[k];
            b[k] = e;
            e = nx;
        }
    }
    free(old);
}

static void lru_unlink(ts_chunk_cache *c, entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else c->lru_head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(ts_chunk_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head) c->lru_head->prev = e;
    c->lru_head = e;
    if (!c->lru_tail) c->lru_tail = e;
}

/* Adds e as most recently used. Caller holds c->mu. */
static void map_insert(ts_chunk_cache *c, entry *e)
{
    map_grow(c);
    size_t k = bucket_of(c, e->id);
    e->hnext = c->buckets[k];
    c->buckets[k] = e;
    lru_push_head(c, e);
    c->nentries++;
    atomic_fetch_add(&c->bytes, e->size);
    atomic_fetch_add(&c->files, 1);
}

/* Removes e from the map (and unlinks its file when unlink_file) and frees
 * it. Caller holds c->mu. */
static void map_remove(ts_chunk_cache *c, entry *e, int unlink_file)
{
    entry **pp = &c->buckets[bucket_of(c, e->id)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->nentries--;
    atomic_fetch_sub(&c->bytes, e->size);
    atomic_fetch_sub(&c->files, 1);
    if (e->ix) {
        c->idx_bytes -= e->ix->ram;
        bidx_put(e->ix);
    }
    if (unlink_file) {
        char path[PATH_MAX];
        file_path(c, e->id, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT)
            ts_log_warn("reader", "cannot remove cache file %s: %s", path, strerror(errno));
    }
    free(e);
}

/* Evicts least recently used files until `need` more bytes fit under the
 * cap (counting space reserved by concurrent writers). Returns 0 when they
 * fit. Caller holds c->mu. */
static int make_room(ts_chunk_cache *c, uint64_t need)
{
    while (c->lru_tail && atomic_load(&c->bytes) + c->reserved + need > c->cap) {
        map_remove(c, c->lru_tail, 1);
        atomic_fetch_add(&c->evictions, 1);
    }
    return atomic_load(&c->bytes) + c->reserved + need > c->cap ? -1 : 0;
}

/* Drops the RAM copies of batch indexes, least recently used files first,
 * until need more bytes fit under idx_cap; keep's is spared. 0 when they
 * fit. Caller holds c->mu. */
static int idx_make_room(ts_chunk_cache *c, uint64_t need, const entry *keep)
{
    for (entry *e = c->lru_tail; e && c->idx_bytes + need > c->idx_cap; e = e->prev) {
        if (e == keep || !e->ix) continue;
        c->idx_bytes -= e->ix->ram;
        bidx_put(e->ix);
        e->ix = NULL;
    }
    return c->idx_bytes + need > c->idx_cap ? -1 : 0;
}

/* Keeps a reference to ix with e (its file's index) when it fits the
 * budget. Caller holds c->mu. */
static void idx_attach(ts_chunk_cache *c, entry *e, bidx *ix)
{
    if (e->ix || !ix || ix->ram > c->idx_cap || idx_make_room(c, ix->ram, e)) return;
    e->ix = bidx_ref(ix);
    c->idx_bytes += ix->ram;
}

static flight *flight_find(ts_chunk_cache *c, const uint8_t id[ID_LEN])
{
    for (flight *f = c->flights; f; f = f->next)
        if (!memcmp(f->id, id, ID_LEN)) return f;
    return NULL;
}

/* Drops one reference to f, freeing it with the last. Caller holds c->mu. */
static void flight_put(flight *f)
{
    if (--f->refs) return;
    if (f->result) ts_chunk_release(&f->result->pub);
    free(f);
}

/* ------------------------------------------------------------ cache files */

/* Checks a parsed header against the chunk the caller wants and the file's
 * size. 0 when it is this chunk's file. */
static int hdr_matches(const hdr_info *hi, const ts_segment_meta *seg, uint32_t idx,
                       uint64_t file_size)
{
    const ts_chunk_meta *cm = &seg->chunks[idx];
    return hi->idx == idx && hi->raw_len == cm->raw_len && hi->raw_crc == cm->raw_crc32c &&
                   strcmp(hi->key, seg->object_key) == 0 &&
                   file_size == hi->hdr_len + (uint64_t)hi->raw_len
               ? 0
               : -1;
}

static int open_file(ts_chunk_cache *c, const uint8_t id[ID_LEN], char *path, size_t plen)
{
    file_path(c, id, path, plen);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Reads and verifies the whole cache file of chunk idx of seg (header,
 * index, body against the manifest's raw CRC-32C): the get path, which hands
 * out the whole chunk. On success *out holds the bytes. TS_E_NOT_FOUND when
 * the file is gone (evicted meanwhile), TS_E_CHECKSUM / TS_E_CORRUPT when it
 * is damaged or not this chunk's. Runs on the calling reader or prefetch
 * thread, without c->mu: files are only replaced by rename and removed by
 * unlink, so an open descriptor always sees one complete file. */
static ts_status file_load(ts_chunk_cache *c, const uint8_t id[ID_LEN], const ts_segment_meta *seg,
                           uint32_t idx, chunk_impl **out, char *errstr, size_t errlen)
{
    const ts_chunk_meta *cm = &seg->chunks[idx];
    char path[PATH_MAX];
    int fd = open_file(c, id, path, sizeof(path));
    if (fd < 0)
        return ts_err_set(errstr, errlen, errno == ENOENT ? TS_E_NOT_FOUND : TS_E_IO,
                          "cannot open cache file %s: %s", path, strerror(errno));
    ts_status st = TS_OK;
    uint8_t *buf = NULL;
    bidx *ix = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ts_err_set(errstr, errlen, TS_E_IO, "cannot stat cache file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    /* The most a header can take for this chunk: key, one entry per 61 bytes. */
    size_t klen = strnlen(seg->object_key, TS_INDEX_KEY_MAX);
    uint64_t most = HDR_LEN(klen, cm->raw_len / TS_BATCH_HEADER_SIZE) + (uint64_t)cm->raw_len;
    size_t size = (size_t)sb.st_size;
    if ((uint64_t)sb.st_size > most || size < HDR_KEYED(klen) + (size_t)cm->raw_len) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "cache file %s of chunk %u of object %s is %lld bytes, not a size its "
                        "%u raw bytes can make",
                        path, idx, seg->object_key, (long long)sb.st_size, cm->raw_len);
        goto out;
    }
    buf = malloc(size ? size : 1);
    if (!buf) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading cache file %s", path);
        goto out;
    }
    if (ts_fs_read_full(fd, buf, size, 0) != (ssize_t)size) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "short read of cache file %s", path);
        goto out;
    }
    atomic_fetch_add(&c->read_bytes, size);
    hdr_info hi;
    int nomem = 0;
    if (hdr_parse(buf, size, &hi) || hdr_matches(&hi, seg, idx, size) ||
        !(ix = bidx_parse(buf + HDR_KEYED(hi.key_len), &hi, &nomem))) {
        st = nomem ? ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading %s", path)
                   : ts_err_set(errstr, errlen, TS_E_CORRUPT,
                                "cache file %s has a damaged header or index or belongs to "
                                "another chunk (wanted chunk %u of object %s)",
                                path, idx, seg->object_key);
        goto out;
    }
    uint32_t crc = ts_crc32c(0, buf + hi.hdr_len, cm->raw_len);
    if (crc != cm->raw_crc32c) {
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "cache file %s of chunk %u of object %s fails CRC-32C: manifest says "
                        "0x%08x, file gives 0x%08x",
                        path, idx, seg->object_key, cm->raw_crc32c, crc);
        goto out;
    }
    /* The mtime is the LRU order a restart adopts; keep it current. */
    (void)futimens(fd, NULL);
    *out = chunk_new(buf, hi.hdr_len, cm->raw_len, ix);
    if (!*out) st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    else buf = NULL, ix = NULL;
out:
    bidx_put(ix);
    free(buf);
    close(fd);
    return st;
}

/* Reads and checks the header and batch index of an open cache file of
 * chunk idx of seg (the index was not in RAM): two preads, of the header
 * and of the index, never the body. TS_E_CORRUPT when damaged or not this
 * chunk's. Runs without c->mu. */
static ts_status index_load(ts_chunk_cache *c, int fd, const char *path,
                            const ts_segment_meta *seg, uint32_t idx, bidx **out, char *errstr,
                            size_t errlen)
{
    uint8_t h[HDR_KEYED_MAX];
    struct stat sb;
    ssize_t n = pread(fd, h, HDR_KEYED(strnlen(seg->object_key, TS_INDEX_KEY_MAX)), 0);
    if (n < 0 || fstat(fd, &sb) != 0)
        return ts_err_set(errstr, errlen, TS_E_IO, "cannot read cache file %s: %s", path,
                          strerror(errno));
    atomic_fetch_add(&c->read_bytes, (uint64_t)n);
    hdr_info hi;
    if (hdr_parse(h, (size_t)n, &hi) || hdr_matches(&hi, seg, idx, (uint64_t)sb.st_size))
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "cache file %s has a damaged header or belongs to another chunk "
                          "(wanted chunk %u of object %s)",
                          path, idx, seg->object_key);
    size_t ilen = (size_t)IDX_ENT * hi.n + 4;
    uint8_t *ib = malloc(ilen);
    if (!ib) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading %s", path);
    ts_status st = TS_OK;
    if (ts_fs_read_full(fd, ib, ilen, (int64_t)HDR_KEYED(hi.key_len)) != (ssize_t)ilen) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "short read of cache file %s", path);
        goto out;
    }
    atomic_fetch_add(&c->read_bytes, ilen);
    int nomem = 0;
    *out = bidx_parse(ib, &hi, &nomem);
    if (!*out)
        st = nomem ? ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading %s", path)
                   : ts_err_set(errstr, errlen, TS_E_CORRUPT,
                                "cache file %s of chunk %u of object %s has a damaged batch "
                                "index (CRC-32C or layout)",
                                path, idx, seg->object_key);
out:
    free(ib);
    return st;
}

/* Which batches of a chunk one ts_chunk_cache_read call serves. */
typedef struct plan {
    uint32_t first, last; /* batches [first, last) */
    size_t bytes;
    int full;             /* stop_offset, max_bytes or the buffer's cap reached */
    int malformed;        /* the read needs the bytes at ix->end, which are no batch */
    int too_big;          /* the read's first batch does not fit the buffer */
} plan;

/* Picks the batches of ix a read continues with: from the one holding
 * rq->want, whole batches up to rq->max_bytes (the read's first batch even
 * when bigger) and room bytes, stopping before the first whose base offset
 * reaches rq->stop_offset. Pure computation on the index. */
static void plan_read(const bidx *ix, const ts_chunk_read *rq, size_t room, plan *p)
{
    memset(p, 0, sizeof(*p));
    uint32_t lo = 0, hi = ix->n; /* first batch whose last offset >= want */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ix->e[mid].base + (int64_t)ix->e[mid].last_delta < rq->want) lo = mid + 1;
        else hi = mid;
    }
    p->first = p->last = lo;
    size_t taken = rq->nbatches, added = rq->added;
    for (uint32_t i = lo; i < ix->n; i++) {
        size_t total = bent_len(ix, i);
        if (ix->e[i].base >= rq->stop_offset) {
            p->full = 1;
            return;
        }
        if (taken && (added >= rq->max_bytes || total > rq->max_bytes - added)) {
            p->full = 1;
            return;
        }
        if (total > room - p->bytes) {
            if (taken) p->full = 1;
            else p->too_big = 1;
            return;
        }
        p->bytes += total;
        p->last = i + 1;
        taken++;
        added += total;
        if (added >= rq->max_bytes) {
            p->full = 1;
            return;
        }
    }
    p->malformed = ix->end < ix->raw_len;
}

/* Advances rq past the batches p served. */
static void plan_commit(const bidx *ix, const plan *p, ts_chunk_read *rq)
{
    if (p->last > p->first) {
        const bent *b = &ix->e[p->last - 1];
        rq->want = b->base + (int64_t)b->last_delta + 1;
        rq->nbatches += p->last - p->first;
        rq->added += p->bytes;
    }
    if (p->full) rq->full = 1;
}

/* Checks batches [p->first, p->last) of ix as read back into dst: each
 * one's first BATCH_HEAD bytes against the index's CRC-32C of them and the
 * rest against the batch's own Kafka CRC-32C. Cost: one CRC pass over the
 * served bytes. Returns the index of the first bad batch, or p->last. */
static uint32_t batches_check(const bidx *ix, const plan *p, const uint8_t *dst)
{
    const uint8_t *b = dst;
    for (uint32_t i = p->first; i < p->last; i++) {
        uint32_t len = bent_len(ix, i);
        if (ts_crc32c(0, b, BATCH_HEAD) != ix->e[i].head_crc ||
            ts_crc32c(0, b + BATCH_HEAD, len - BATCH_HEAD) != ts_rd32(b + 17))
            return i;
        b += len;
    }
    return p->last;
}

/* Serves rq from the cache file of chunk idx of seg: its batch index (ix if
 * the caller has it in RAM, else read from the file and handed back in
 * *loaded), then one pread of just the batches served, straight into out,
 * checked before out's length moves. On success *p says what was served.
 * TS_E_CHECKSUM / TS_E_CORRUPT: the file is damaged or not this chunk's;
 * TS_E_NOT_FOUND: it is gone (the caller drops it and refetches);
 * TS_E_NOMEM: out (or the index) cannot grow. Runs without c->mu. */
static ts_status file_serve(ts_chunk_cache *c, const uint8_t id[ID_LEN], const ts_segment_meta *seg,
                            uint32_t idx, const bidx *ix, int touch, bidx **loaded,
                            const ts_chunk_read *rq, ts_buf *out, plan *p, char *errstr,
                            size_t errlen)
{
    char path[PATH_MAX];
    memset(p, 0, sizeof(*p));
    int fd = open_file(c, id, path, sizeof(path));
    if (fd < 0)
        return ts_err_set(errstr, errlen, errno == ENOENT ? TS_E_NOT_FOUND : TS_E_IO,
                          "cannot open cache file %s: %s", path, strerror(errno));
    ts_status st = TS_OK;
    if (!ix) {
        if ((st = index_load(c, fd, path, seg, idx, loaded, errstr, errlen))) goto out;
        ix = *loaded;
    }
    plan_read(ix, rq, out->max - out->len, p);
    if (!p->bytes) goto out;
    if ((st = ts_buf_reserve(out, p->bytes))) {
        st = ts_err_set(errstr, errlen, st, "out of memory for %zu bytes of chunk %u of object %s",
                        p->bytes, idx, seg->object_key);
        goto out;
    }
    uint8_t *dst = out->data + out->len;
    ssize_t got = ts_fs_read_full(fd, dst, p->bytes, (int64_t)(ix->hdr_len + ix->e[p->first].pos));
    if (got < 0) {
        st = ts_err_set(errstr, errlen, TS_E_IO, "cannot read cache file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    atomic_fetch_add(&c->read_bytes, (uint64_t)got);
    uint32_t bad = (size_t)got == p->bytes ? batches_check(ix, p, dst) : p->first;
    if (bad != p->last) {
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "cache file %s of chunk %u of object %s: the batch at offset %lld "
                        "(byte %u) fails its CRC-32C on disk (or the file is short)",
                        path, idx, seg->object_key, (long long)ix->e[bad].base, ix->e[bad].pos);
        goto out;
    }
    out->len += p->bytes;
    /* The mtime is the LRU order a restart adopts; keep it roughly current. */
    if (touch) (void)futimens(fd, NULL);
out:
    close(fd);
    return st;
}

/* Serves rq from a verified chunk in RAM (fetched or hot): a copy of the
 * batches the index picks, no check (its bytes were verified on entry and
 * never touched a disk since). */
static ts_status ram_serve(const chunk_impl *ch, const ts_segment_meta *seg, uint32_t idx,
                           const ts_chunk_read *rq, ts_buf *out, plan *p, char *errstr, size_t errlen)
{
    plan_read(ch->ix, rq, out->max - out->len, p);
    if (!p->bytes) return TS_OK;
    ts_status st = ts_buf_append(out, ch->pub.data + ch->ix->e[p->first].pos, p->bytes);
    if (st)
        return ts_err_set(errstr, errlen, st, "out of memory for %zu bytes of chunk %u of object %s",
                          p->bytes, idx, seg->object_key);
    return TS_OK;
}

/* Writes a cache file image (hdr, then body) to a new temp file in the cache
 * dir, returning its path in tmp. No fsync: the cache is a copy of remote
 * data, a file torn by a crash fails its checks on the next read and is
 * refetched, and paying an fsync per chunk would slow cold reads for no
 * durability anyone needs. The temp + rename is still needed so no reader
 * ever opens a half-written file. Runs on the fetching thread without c->mu. */
static int file_write_tmp(ts_chunk_cache *c, const uint8_t id[ID_LEN], const uint8_t *hdr,
                          size_t hlen, const uint8_t *body, size_t blen, char *tmp, size_t tmplen)
{
    char hex[2 * ID_LEN + 1], rnd[17];
    id_hex(id, hex);
    ts_rand_hex(rnd, 8);
    snprintf(tmp, tmplen, "%s/%s" TMP_MARK "%s", c->dir, hex, rnd);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int ok = ts_fs_write_full(fd, hdr, hlen, TS_FS_AT_POS) >= 0 &&
             ts_fs_write_full(fd, body, blen, TS_FS_AT_POS) >= 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        e = errno;
        ok = 0;
    }
    if (!ok) {
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ fetch */

/* A sealed object is served only while the ring can open it, from the
 * cache too: removing a key from the ring makes its objects unreadable
 * here at once (crypto-shredding), not after their cache files age out.
 * One unwrap of 32 bytes, no chunk I/O. */
static ts_status key_present(ts_chunk_cache *c, const ts_segment_meta *seg, char *errstr,
                             size_t errlen)
{
    uint8_t dk[TS_CRYPT_KEY_LEN];
    ts_status st = c->keyring ? ts_crypt_unwrap(c->keyring, seg->key_id, seg->object_key,
                                                seg->wrapped_key, dk, errstr, errlen)
                              : ts_err_set(errstr, errlen, TS_E_CONFIG,
                                           "object %s is encrypted (key '%s') but no key ring is "
                                           "configured: set remote.storage.encryption.keyring",
                                           seg->object_key, seg->key_id);
    OPENSSL_cleanse(dk, sizeof(dk));
    return st;
}

/* Opens the sealed bytes of chunk idx (stored, *len; CRC already checked)
 * in place: *frame and *len then give the zstd frame inside them: unwrap the object's data key
 * with the key ring, then AES-256-GCM open (the tag binds the bytes to the
 * object key and chunk index). A tag mismatch is TS_E_CHECKSUM naming the
 * object and chunk, and nothing is served; a key the ring lacks is
 * TS_E_CONFIG naming its id. Runs on the leader thread without c->mu. */
static ts_status open_sealed(ts_chunk_cache *c, const ts_segment_meta *seg, uint32_t idx,
                             uint8_t *stored, size_t *len, const uint8_t **frame, char *errstr,
                             size_t errlen)
{
    if (!c->keyring) return key_present(c, seg, errstr, errlen);
    uint8_t dk[TS_CRYPT_KEY_LEN];
    ts_status st = ts_crypt_unwrap(c->keyring, seg->key_id, seg->object_key, seg->wrapped_key, dk,
                                   errstr, errlen);
    if (st) return ts_err_prefix(errstr, errlen, st, "chunk %u", idx);
    /* In place: the plain frame replaces the ciphertext right after the nonce. */
    st = ts_crypt_open_chunk(dk, seg->object_key, idx, stored, *len, stored + TS_CRYPT_NONCE_LEN,
                             errstr, errlen);
    OPENSSL_cleanse(dk, sizeof(dk));
    if (st) {
        if (st == TS_E_CHECKSUM) atomic_fetch_add(&c->verify_failures, 1);
        return st;
    }
    *frame = stored + TS_CRYPT_NONCE_LEN;
    *len -= TS_CRYPT_CHUNK_OVERHEAD;
    return TS_OK;
}

void ts_chunk_cache_set_keyring(ts_chunk_cache *c, const ts_keyring *ring)
{
    c->keyring = ring;
}

/* Decompresses frame (len bytes) into dst, which must receive exactly
 * raw_len bytes. zstd's own XXH64 content checksum is not computed: the
 * manifest's CRC-32C of the raw bytes, checked right after, covers the same
 * bytes, and one pass fewer over a 4 MiB chunk is ~5% of a cold read. */
static ts_status decompress(uint8_t *dst, uint32_t raw_len, const uint8_t *frame, size_t len,
                            const ts_segment_meta *seg, uint32_t idx, char *errstr, size_t errlen)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory decompressing chunk %u of "
                          "object %s", idx, seg->object_key);
    /* Unknown to an older libzstd: then it checks, which is only slower. */
    (void)ZSTD_DCtx_setParameter(d, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
    size_t n = ZSTD_decompressDCtx(d, dst, raw_len, frame, len);
    ZSTD_freeDCtx(d);
    if (ZSTD_isError(n) || n != raw_len)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s does not decompress to %u bytes: %s", idx,
                          seg->object_key, raw_len,
                          ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
    return TS_OK;
}

/* One attempt: ranged GET of the frame, verify, decompress, verify, index.
 * On success *out holds the raw bytes and *out_ix their batch index. Runs
 * on the leader thread without c->mu. */
static ts_status fetch_once(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                            uint32_t idx, uint8_t **out, bidx **out_ix, char *errstr,
                            size_t errlen)
{
    const ts_chunk_meta *cm = &seg->chunks[idx];
    uint8_t *stored = NULL, *img = NULL;
    bidx *ix = NULL;
    size_t got = 0;
    ts_status st = ts_objstore_get(os, seg->object_key, cm->stored_pos, cm->stored_len, &stored,
                                   &got, errstr, errlen);
    /* The segment meta comes from a manifest: an absent object is data the
     * manifest promises and the store lost, not an offset retention
     * removed. A distinct status keeps callers from mistaking it for
     * TS_E_NOT_FOUND (a gap they would skip). Only the caller, who can look
     * at the manifest again, may decide that retention raced the read. */
    if (st == TS_E_NOT_FOUND)
        return ts_err_prefix(errstr, errlen, TS_E_OBJECT_MISSING,
                             "object %s (offsets %lld..%lld) is named by the manifest but "
                             "missing from the object store; the data is lost unless a copy "
                             "exists (run `tierctl verify`)",
                             seg->object_key, (long long)seg->base_offset,
                             (long long)seg->last_offset);
    if (st)
        return ts_err_prefix(errstr, errlen, st, "GET of chunk %u of object %s (bytes %llu+%u)",
                             idx, seg->object_key, (unsigned long long)cm->stored_pos,
                             cm->stored_len);
    atomic_fetch_add(&c->fetched_bytes, got);
    /* A short body is a truncated download: retriable, never served. */
    if (got != cm->stored_len) {
        atomic_fetch_add(&c->verify_failures, 1);
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "chunk %u of object %s: GET returned %zu bytes, the manifest says %u "
                        "(truncated download or wrong object)",
                        idx, seg->object_key, got, cm->stored_len);
        goto fail;
    }
    uint32_t crc = ts_crc32c(0, stored, got);
    if (crc != cm->stored_crc32c) {
        atomic_fetch_add(&c->verify_failures, 1);
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "chunk %u of object %s fails CRC-32C of its stored bytes: manifest says "
                        "0x%08x, downloaded bytes give 0x%08x",
                        idx, seg->object_key, cm->stored_crc32c, crc);
        goto fail;
    }
    const uint8_t *frame = stored; /* the zstd frame (inside the sealed bytes when sealed) */
    if (seg->sealed && (st = open_sealed(c, seg, idx, stored, &got, &frame, errstr, errlen)))
        goto fail;
    /* The stored CRC matched, so from here on a mismatch means the object and
     * its manifest entry disagree: corrupt, not worth retrying. */
    size_t fsz = ZSTD_findFrameCompressedSize(frame, got);
    unsigned long long csz = ZSTD_getFrameContentSize(frame, got);
    if (ZSTD_isError(fsz) || fsz != got || csz != cm->raw_len) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "chunk %u of object %s is not one zstd frame of %u raw bytes "
                        "(frame size %s, content size %llu)",
                        idx, seg->object_key, cm->raw_len,
                        ZSTD_isError(fsz) ? ZSTD_getErrorName(fsz) : "mismatch", csz);
        goto fail;
    }
    img = malloc((size_t)cm->raw_len + 1);
    if (!img) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory for chunk %u of object %s",
                        idx, seg->object_key);
        goto fail;
    }
    if ((st = decompress(img, cm->raw_len, frame, got, seg, idx, errstr, errlen))) goto fail;
    /* The one time the whole chunk is parsed, into its index; the parse
     * also gives the raw CRC. */
    ix = bidx_build(img, cm->raw_len, strnlen(seg->object_key, TS_INDEX_KEY_MAX), &crc);
    if (!ix) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM,
                        "out of memory indexing chunk %u of object %s", idx, seg->object_key);
        goto fail;
    }
    if (crc != cm->raw_crc32c) {
        atomic_fetch_add(&c->verify_failures, 1);
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "chunk %u of object %s fails CRC-32C of its raw bytes: manifest says "
                        "0x%08x, decompressed bytes give 0x%08x",
                        idx, seg->object_key, cm->raw_crc32c, crc);
        goto fail;
    }
    free(stored);
    *out = img;
    *out_ix = ix;
    return TS_OK;
fail:
    free(stored);
    free(img);
    bidx_put(ix);
    return st;
}

/* Fetches with retries under the cache's retry policy. Runs on the leader
 * thread without c->mu. */
static ts_status fetch_retry(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                             uint32_t idx, uint8_t **out, bidx **ix, char *errstr,
                             size_t errlen)
{
    ts_retry r;
    ts_retry_init(&r, c->retry_timeout_ms, c->retry_base_ms, c->retry_max_ms,
                  c->retry_attempts);
    for (;;) {
        ts_status st = fetch_once(c, os, seg, idx, out, ix, errstr, errlen);
        if (st == TS_OK) return st;
        ts_log_debug("reader", "fetch attempt %d failed: %s", r.attempt + 1, errstr ? errstr : "");
        if (!ts_retry_next(&r, st)) {
            if (ts_status_is_retriable(st))
                ts_err_prefix(errstr, errlen, st, "giving up after %d attempts", r.attempt);
            return st;
        }
    }
}

/* Renames the written temp file of flight f to its cache name and enters
 * it (size fsz, index ix), replacing an older entry; drops the temp file
 * when the object was forgotten meanwhile. Caller holds c->mu. */
static void publish_file(ts_chunk_cache *c, const flight *f, const char *tmp, uint64_t fsz,
                         bidx *ix)
{
    char path[PATH_MAX];
    file_path(c, f->id, path, sizeof(path));
    entry *e = NULL;
    if (!f->forgotten && (e = calloc(1, sizeof(*e))) && rename(tmp, path) == 0) {
        entry *old = map_find(c, f->id);
        if (old) map_remove(c, old, 0); /* its file was just replaced */
        memcpy(e->id, f->id, ID_LEN);
        e->key_hash = f->key_hash;
        e->size = fsz;
        e->gen = ++c->next_gen;
        map_insert(c, e);
        idx_attach(c, e, ix);
    } else {
        free(e);
        unlink(tmp);
    }
}

/* Leader path: fetch, complete the flight (waiters and the RAM layer get
 * the chunk at once: a reader behind a prefetch waits for the decompression,
 * not also for the cache file, which costs about as much again), then write
 * and publish the file (unless it exceeds the cap or the object was
 * forgotten meanwhile) and only then retire the flight, so the chunk is
 * always findable (ts_chunk_cache_has) and never fetched twice. Takes c->mu
 * only to complete, reserve space and publish. Returns the fetched chunk
 * (one reference for the caller) on success. */
static ts_status lead_fetch(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                            uint32_t idx, flight *f, chunk_impl **out, char *errstr,
                            size_t errlen)
{
    uint8_t *img = NULL, *hdr = NULL;
    bidx *ix = NULL;
    chunk_impl *ch = NULL;
    ts_status st = fetch_retry(c, os, seg, idx, &img, &ix, errstr, errlen);
    if (st == TS_OK) {
        ch = chunk_new(img, 0, seg->chunks[idx].raw_len, ix);
        if (!ch) {
            free(img);
            bidx_put(ix);
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
    }
    pthread_mutex_lock(&c->mu);
    f->done = 1;
    f->st = st;
    if (ch) f->result = chunk_ref(ch);
    else if (errstr && errlen) snprintf(f->err, sizeof(f->err), "%s", errstr);
    pthread_cond_broadcast(&c->flight_cv);
    pthread_mutex_unlock(&c->mu);
    if (ch) hot_put(c, f->id, f->key_hash, ch);

    uint64_t fsz = ch ? (uint64_t)ch->ix->hdr_len + seg->chunks[idx].raw_len : 0;
    int reserved = 0;
    /* Without a header (out of memory) the chunk is served uncached. */
    if (ch && fsz <= c->cap &&
        (hdr = hdr_build(seg->object_key, idx, seg->chunks[idx].raw_crc32c, ch->ix))) {
        pthread_mutex_lock(&c->mu);
        if (!f->forgotten && make_room(c, fsz) == 0) {
            c->reserved += fsz;
            reserved = 1;
        }
        pthread_mutex_unlock(&c->mu);
    }
    char tmp[PATH_MAX];
    int wrote = reserved && file_write_tmp(c, f->id, hdr, ch->ix->hdr_len, ch->pub.data,
                                           ch->pub.len, tmp, sizeof(tmp)) == 0;
    free(hdr);
    if (reserved && !wrote)
        ts_log_warn("reader", "cannot write cache file for chunk %u of object %s in %s: %s "
                    "(served uncached)", idx, seg->object_key, c->dir, strerror(errno));

    pthread_mutex_lock(&c->mu);
    if (reserved) c->reserved -= fsz;
    if (wrote) publish_file(c, f, tmp, fsz, ch->ix);
    flight **pp = &c->flights;
    while (*pp != f) pp = &(*pp)->next;
    *pp = f->next;
    flight_put(f);
    pthread_mutex_unlock(&c->mu);
    *out = ch;
    return st;
}

/* Drops the entry for id if it is still the file generation gen (a damaged
 * or vanished file); a newer file published meanwhile is kept. Takes c->mu. */
static void drop_if_gen(ts_chunk_cache *c, const uint8_t id[ID_LEN], uint64_t gen)
{
    pthread_mutex_lock(&c->mu);
    entry *e = map_find(c, id);
    if (e && e->gen == gen) map_remove(c, e, 1);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------ get, warm, read */

/* What every get, warm and read checks before looking anything up: the
 * chunk is in its table and within the size limit, and a sealed object's
 * key is still in the ring. Computes the chunk's id. */
static ts_status req_check(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                           uint32_t idx, uint8_t id[ID_LEN], char *errstr, size_t errlen)
{
    if (!c || !os || !seg || !seg->chunks || idx >= seg->chunk_count)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "chunk %u of object %s is not in its chunk table (%u chunks)", idx,
                          seg ? seg->object_key : "(null)", seg ? seg->chunk_count : 0);
    const ts_chunk_meta *cm = &seg->chunks[idx];
    if (cm->raw_len > CHUNK_MAX_BYTES || cm->stored_len > CHUNK_MAX_BYTES)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s claims %u raw / %u stored bytes, over the %u "
                          "byte limit",
                          idx, seg->object_key, cm->raw_len, cm->stored_len, CHUNK_MAX_BYTES);
    ts_status st = seg->sealed ? key_present(c, seg, errstr, errlen) : TS_OK;
    if (st) return st;
    chunk_id(seg->object_key, idx, id);
    return TS_OK;
}

typedef enum { FOUND_NOTHING, FOUND_HOT, FOUND_FILE, FOUND_FLIGHT } found_kind;

/* Where lookup found a chunk. */
typedef struct found {
    found_kind kind;
    chunk_impl *ch; /* FOUND_HOT: a new reference */
    uint64_t gen;   /* FOUND_FILE: the file's generation */
    int touch;      /* FOUND_FILE: refresh its mtime */
    bidx *ix;       /* FOUND_FILE: a new reference to its index when in RAM, else NULL */
    flight *f;      /* FOUND_FLIGHT: the fetch in progress */
} found;

/* Looks chunk id up in the RAM layer, then the files (unless use_files is 0:
 * after a few rounds of failing files), then the fetches in flight. A file
 * found becomes the most recently used. Caller holds c->mu. */
static void lookup(ts_chunk_cache *c, const uint8_t id[ID_LEN], int use_files, found *fd)
{
    memset(fd, 0, sizeof(*fd));
    if ((fd->ch = hot_get(c, id))) {
        fd->kind = FOUND_HOT;
        return;
    }
    entry *e = use_files ? map_find(c, id) : NULL;
    if (e) {
        lru_unlink(c, e);
        lru_push_head(c, e);
        fd->kind = FOUND_FILE;
        fd->gen = e->gen;
        uint32_t now = (uint32_t)(ts_mono_ms() / 1000);
        if (now - e->touched_s >= TOUCH_EVERY_S || !e->touched_s) {
            e->touched_s = now ? now : 1;
            fd->touch = 1;
        }
        fd->ix = e->ix ? bidx_ref(e->ix) : NULL;
        return;
    }
    if ((fd->f = flight_find(c, id))) fd->kind = FOUND_FLIGHT;
}

/* Joins the fetch in progress f: the same chunk (a new reference in *out)
 * or the same error. Caller holds c->mu (the wait releases it meanwhile). */
static ts_status flight_join(ts_chunk_cache *c, flight *f, chunk_impl **out, char *errstr,
                             size_t errlen)
{
    atomic_fetch_add(&c->misses, 1);
    f->refs++;
    while (!f->done) pthread_cond_wait(&c->flight_cv, &c->mu);
    ts_status st = f->st;
    if (f->result) *out = chunk_ref(f->result);
    else ts_err_set(errstr, errlen, st, "%s", f->err);
    flight_put(f);
    return st;
}

/* Becomes the leader of a fetch of chunk idx (id): registers the flight,
 * then fetches, publishes and keeps the chunk in the RAM layer. Called with
 * c->mu held, returns without it. errstr must be a real buffer (the flight
 * copies the leader's message for its joiners). */
static ts_status flight_lead(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                             uint32_t idx, const uint8_t id[ID_LEN], chunk_impl **out,
                             char *errstr, size_t errlen)
{
    flight *f = calloc(1, sizeof(*f));
    if (!f) {
        pthread_mutex_unlock(&c->mu);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    uint64_t kh = ts_chunk_cache_key_hash(seg->object_key);
    memcpy(f->id, id, ID_LEN);
    f->key_hash = kh;
    f->refs = 1;
    f->next = c->flights;
    c->flights = f;
    atomic_fetch_add(&c->misses, 1);
    pthread_mutex_unlock(&c->mu);
    return lead_fetch(c, os, seg, idx, f, out, errstr, errlen);
}

/* After a cache file failed to serve: a damaged one is dropped (a verify
 * failure) and the chunk refetched, a vanished one dropped; any other
 * failure (EMFILE…) keeps it (the file may be fine; after a few rounds the
 * chunk is fetched instead). Takes c->mu. */
static void file_failed(ts_chunk_cache *c, const uint8_t id[ID_LEN], uint64_t gen, ts_status st,
                        const char *msg)
{
    if (st == TS_E_CHECKSUM || st == TS_E_CORRUPT) {
        atomic_fetch_add(&c->verify_failures, 1);
        ts_log_warn("reader", "%s; dropping it and refetching", msg);
        drop_if_gen(c, id, gen);
    } else if (st == TS_E_NOT_FOUND) {
        drop_if_gen(c, id, gen); /* evicted meanwhile, or removed behind our back */
    } else {
        ts_log_warn("reader", "%s", msg);
    }
}

/* Shared by get (warm == 0) and warm (warm != 0: never waits for another
 * thread's fetch, never reads a cached file, returns no chunk). Runs on
 * reader or prefetch threads; takes c->mu for map and flight updates only. */
static ts_status cache_get(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                           uint32_t idx, int warm, ts_chunk **out, char *errstr, size_t errlen)
{
    char lerr[512];
    if (!errstr || !errlen) {
        errstr = lerr;
        errlen = sizeof(lerr);
    }
    if (out) *out = NULL;
    uint8_t id[ID_LEN];
    ts_status st = req_check(c, os, seg, idx, id, errstr, errlen);
    if (st) return st;
    /* A few rounds at most: a file can vanish (eviction) or fail
     * verification between the lookup and the read. */
    for (int round = 0;; round++) {
        found fd;
        chunk_impl *ch = NULL;
        pthread_mutex_lock(&c->mu);
        lookup(c, id, warm || round < 3, &fd);
        if (fd.kind == FOUND_HOT) {
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->hits, 1);
            ch = fd.ch;
        } else if (warm && fd.kind != FOUND_NOTHING) {
            pthread_mutex_unlock(&c->mu);
            bidx_put(fd.ix);
            return TS_OK; /* cached, or another thread fetches it */
        } else if (fd.kind == FOUND_FILE) {
            pthread_mutex_unlock(&c->mu);
            bidx_put(fd.ix);
            char ferr[512];
            if ((st = file_load(c, id, seg, idx, &ch, ferr, sizeof(ferr)))) {
                file_failed(c, id, fd.gen, st, ferr);
                continue;
            }
            atomic_fetch_add(&c->hits, 1);
            hot_put(c, id, ts_chunk_cache_key_hash(seg->object_key), ch);
        } else if (fd.kind == FOUND_FLIGHT) {
            st = flight_join(c, fd.f, &ch, errstr, errlen);
            pthread_mutex_unlock(&c->mu);
            if (st) return st;
        } else if ((st = flight_lead(c, os, seg, idx, id, &ch, errstr, errlen))) {
            return st;
        }
        if (warm) ts_chunk_release(&ch->pub);
        else *out = &ch->pub;
        return TS_OK;
    }
}

/* Moves rq past what p served and turns the plan's stops into errors: the
 * read's first batch not fitting out, or the read reaching bytes of the
 * chunk that are no batch. */
static ts_status read_finish(const bidx *ix, const plan *p, const ts_segment_meta *seg,
                             uint32_t idx, ts_chunk_read *rq, char *errstr, size_t errlen)
{
    plan_commit(ix, p, rq);
    if (p->too_big)
        return ts_err_set(errstr, errlen, TS_E_NOMEM,
                          "batch at offset %lld (%u bytes) does not fit the read buffer",
                          (long long)ix->e[p->first].base, bent_len(ix, p->first));
    if (p->malformed)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "chunk %u of object %s at byte %u: no whole record batch (magic 2, "
                          "within the chunk's %u bytes, CRC-32C matching, offsets ascending) "
                          "starts here",
                          idx, seg->object_key, ix->end, ix->raw_len);
    return TS_OK;
}

/* A file hit of cache_read (fd from lookup, c->mu not held): serves rq from
 * the file and keeps an index it had to load. Returns 1 when done, with *st
 * the read's status (the file served, or out cannot grow); 0 when the file
 * failed (dropped when damaged or gone) and the caller goes another round. */
static int read_file_hit(ts_chunk_cache *c, const ts_segment_meta *seg, uint32_t idx,
                         const uint8_t id[ID_LEN], found *fd, ts_chunk_read *rq, ts_buf *out,
                         ts_status *st, char *errstr, size_t errlen)
{
    bidx *loaded = NULL;
    char ferr[512];
    plan p;
    *st = file_serve(c, id, seg, idx, fd->ix, fd->touch, &loaded, rq, out, &p, ferr,
                     sizeof(ferr));
    int done = 1;
    if (*st == TS_OK) {
        if (loaded) { /* keep it for the next read of this file */
            pthread_mutex_lock(&c->mu);
            entry *e = map_find(c, id);
            if (e && e->gen == fd->gen) idx_attach(c, e, loaded);
            pthread_mutex_unlock(&c->mu);
        }
        atomic_fetch_add(&c->hits, 1);
        *st = read_finish(fd->ix ? fd->ix : loaded, &p, seg, idx, rq, errstr, errlen);
    } else if (*st == TS_E_NOMEM) {
        ts_err_set(errstr, errlen, *st, "%s", ferr);
    } else {
        file_failed(c, id, fd->gen, *st, ferr);
        done = 0;
    }
    bidx_put(fd->ix);
    bidx_put(loaded);
    return done;
}

/* ts_chunk_cache_read: the lookup rounds of cache_get, with a file hit
 * served by file_serve (only the batches returned) instead of a whole-file
 * load. */
static ts_status cache_read(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                            uint32_t idx, const uint8_t id[ID_LEN], ts_chunk_read *rq,
                            ts_buf *out, char *errstr, size_t errlen)
{
    for (int round = 0;; round++) {
        found fd;
        chunk_impl *ch = NULL;
        plan p;
        ts_status st;
        pthread_mutex_lock(&c->mu);
        lookup(c, id, round < 3, &fd);
        if (fd.kind == FOUND_HOT) {
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->hits, 1);
            ch = fd.ch;
        } else if (fd.kind == FOUND_FILE) {
            pthread_mutex_unlock(&c->mu);
            if (read_file_hit(c, seg, idx, id, &fd, rq, out, &st, errstr, errlen)) return st;
            continue;
        } else if (fd.kind == FOUND_FLIGHT) {
            st = flight_join(c, fd.f, &ch, errstr, errlen);
            pthread_mutex_unlock(&c->mu);
            if (st) return st;
        } else if ((st = flight_lead(c, os, seg, idx, id, &ch, errstr, errlen))) {
            return st;
        }
        st = ram_serve(ch, seg, idx, rq, out, &p, errstr, errlen);
        if (st == TS_OK) st = read_finish(ch->ix, &p, seg, idx, rq, errstr, errlen);
        ts_chunk_release(&ch->pub);
        return st;
    }
}

/* ------------------------------------------------------------- public API */

ts_status ts_chunk_cache_get(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                             uint32_t chunk_idx, ts_chunk **out, char *errstr, size_t errlen)
{
    if (!out) return ts_err_set(errstr, errlen, TS_E_INVAL, "ts_chunk_cache_get: out is NULL");
    return cache_get(c, os, seg, chunk_idx, 0, out, errstr, errlen);
}

ts_status ts_chunk_cache_read(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                              uint32_t chunk_idx, ts_chunk_read *rq, ts_buf *out, char *errstr,
                              size_t errlen)
{
    char lerr[512];
    if (!errstr || !errlen) {
        errstr = lerr;
        errlen = sizeof(lerr);
    }
    if (!rq || !out)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "ts_chunk_cache_read: NULL argument");
    uint8_t id[ID_LEN];
    ts_status st = req_check(c, os, seg, chunk_idx, id, errstr, errlen);
    if (st) return st;
    return cache_read(c, os, seg, chunk_idx, id, rq, out, errstr, errlen);
}

void ts_chunk_cache_set_memory(ts_chunk_cache *c, uint64_t bytes)
{
    pthread_mutex_lock(&c->mu);
    c->idx_cap = bytes / 8;
    c->hot_cap = bytes - c->idx_cap;
    for (int i = 0; i < HOT_SLOTS; i++)
        if (c->hot[i].ch && c->hot_bytes > c->hot_cap) hot_drop_slot(c, &c->hot[i]);
    idx_make_room(c, 0, NULL);
    pthread_mutex_unlock(&c->mu);
}

ts_status ts_chunk_cache_warm(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                              uint32_t chunk_idx, char *errstr, size_t errlen)
{
    return cache_get(c, os, seg, chunk_idx, 1, NULL, errstr, errlen);
}

int ts_chunk_cache_has(ts_chunk_cache *c, const char *object_key, uint32_t chunk_idx)
{
    uint8_t id[ID_LEN];
    chunk_id(object_key, chunk_idx, id);
    pthread_mutex_lock(&c->mu);
    int has = map_find(c, id) != NULL || flight_find(c, id) != NULL;
    pthread_mutex_unlock(&c->mu);
    return has;
}

void ts_chunk_cache_set_retry(ts_chunk_cache *c, int64_t timeout_ms, int64_t base_ms,
                              int64_t max_ms, int max_attempts)
{
    /* Read by fetches without the lock: set before sharing the cache. */
    c->retry_timeout_ms = timeout_ms;
    c->retry_base_ms = base_ms;
    c->retry_max_ms = max_ms;
    c->retry_attempts = max_attempts;
}

void ts_chunk_cache_stats_get(ts_chunk_cache *c, ts_chunk_cache_stats *out)
{
    out->bytes = atomic_load(&c->bytes);
    out->files = atomic_load(&c->files);
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->fetched_bytes = atomic_load(&c->fetched_bytes);
    out->evictions = atomic_load(&c->evictions);
    out->verify_failures = atomic_load(&c->verify_failures);
    out->read_bytes = atomic_load(&c->read_bytes);
}

void ts_chunk_cache_forget_object(ts_chunk_cache *c, const char *object_key)
{
    if (!c || !object_key) return;
    uint64_t kh = ts_chunk_cache_key_hash(object_key);
    pthread_mutex_lock(&c->mu);
    /* A walk over every entry: retention is rare and the list is in RAM.
     * A key-hash collision drops another object's files too, which only
     * costs a refetch. */
    entry *e = c->lru_head;
    while (e) {
        entry *nx = e->next;
        if (e->key_hash == kh) map_remove(c, e, 1);
        e = nx;
    }
    for (flight *f = c->flights; f; f = f->next)
        if (f->key_hash == kh) f->forgotten = 1;
    for (int i = 0; i < HOT_SLOTS; i++)
        if (c->hot[i].ch && c->hot[i].key_hash == kh) hot_drop_slot(c, &c->hot[i]);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------- create / adopt */

typedef struct adopt_item {
    entry *e;
    struct timespec mtime;
} adopt_item;

static int adopt_cmp(const void *a, const void *b)
{
    const adopt_item *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec) return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec) return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

static int is_hex_name(const char *name)
{
    size_t n = strlen(name), sl = strlen(FILE_SUFFIX);
    if (n != 2 * ID_LEN + sl || strcmp(name + 2 * ID_LEN, FILE_SUFFIX)) return 0;
    for (size_t i = 0; i < 2 * ID_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    return 1;
}

/* Checks one existing file: header parses, its (key, index) hashes to the
 * file name, its size matches. Returns a new entry or NULL (caller unlinks).
 * Runs in create, before the cache is shared. */
static entry *adopt_one(ts_chunk_cache *c, const char *name, struct timespec *mtime, int *old)
{
    *old = 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= (int)sizeof(path)) return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    uint8_t h[HDR_KEYED_MAX];
    struct stat sb;
    entry *e = NULL;
    ssize_t n = pread(fd, h, sizeof(h), 0);
    hdr_info hi;
    if (n <= 0 || fstat(fd, &sb) != 0 || hdr_parse(h, (size_t)n, &hi)) {
        if (n >= 4 && hi.magic == HDR_MAGIC_V1 && (*old = 1))
            ts_log_info("reader", "removing chunk cache file %s of the old format (TSC1, no "
                        "batch index): its chunk is refetched when read", path);
        goto out;
    }
    if ((uint64_t)sb.st_size != hi.hdr_len + (uint64_t)hi.raw_len) goto out;
    uint8_t id[ID_LEN];
    char hex[2 * ID_LEN + 1];
    chunk_id(hi.key, hi.idx, id);
    id_hex(id, hex);
    if (strncmp(hex, name, 2 * ID_LEN)) goto out;
    e = calloc(1, sizeof(*e));
    if (!e) goto out;
    memcpy(e->id, id, ID_LEN);
    e->key_hash = ts_chunk_cache_key_hash(hi.key);
    e->size = (uint64_t)sb.st_size;
    e->gen = ++c->next_gen;
    *mtime = sb.st_mtim;
out:
    close(fd);
    return e;
}

/* Adopts the files already in the directory: leftover temp files and files
 * that fail the header check are removed, the rest enter the LRU in mtime
 * order (oldest evicted first), then the cap is enforced. Runs in create. */
static ts_status adopt_existing(ts_chunk_cache *c, char *errstr, size_t errlen)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                          "cannot open chunk cache directory %s: %s", c->dir, strerror(errno));
    adopt_item *items = NULL;
    size_t n = 0, cap = 0;
    ts_status st = TS_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= (int)sizeof(path)) continue;
        if (strstr(name, TMP_MARK) && strlen(name) > 2 * ID_LEN) {
            unlink(path); /* a write cut short by a crash */
            continue;
        }
        if (!is_hex_name(name)) continue; /* not ours: leave it alone */
        struct timespec mt;
        int old = 0;
        entry *e = adopt_one(c, name, &mt, &old);
        if (!e) {
            if (!old) ts_log_warn("reader", "removing damaged chunk cache file %s", path);
            unlink(path);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            adopt_item *ni = realloc(items, ncap * sizeof(*ni));
            if (!ni) {
                free(e);
                st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory adopting %s", c->dir);
                break;
            }
            items = ni;
            cap = ncap;
        }
        items[n].e = e;
        items[n].mtime = mt;
        n++;
    }
    closedir(d);
    if (st) {
        for (size_t i = 0; i < n; i++) free(items[i].e);
        free(items);
        return st;
    }
    if (n) qsort(items, n, sizeof(*items), adopt_cmp);
    for (size_t i = 0; i < n; i++) map_insert(c, items[i].e); /* newest ends at the head */
    free(items);
    make_room(c, 0);
    return TS_OK;
}

ts_status ts_chunk_cache_create(const char *dir, uint64_t cap_bytes, ts_chunk_cache **out,
                                char *errstr, size_t errlen)
{
    if (!dir || !*dir || !out)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "chunk cache needs a directory");
    ts_chunk_cache *c = calloc(1, sizeof(*c));
    if (!c) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (ts_strlcpy(c->dir, dir, sizeof(c->dir)) || strlen(dir) + 2 * ID_LEN + 40 >= PATH_MAX) {
        free(c);
        return ts_err_set(errstr, errlen, TS_E_INVAL, "chunk cache directory path too long: %s",
                          dir);
    }
    c->cap = cap_bytes;
    c->hot_cap = 32u << 20;
    c->idx_cap = c->hot_cap / 8;
    c->hot_cap -= c->idx_cap;
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->flight_cv, NULL);
    ts_chunk_cache_set_retry(c, RETRY_TIMEOUT_MS, RETRY_BASE_MS, RETRY_MAX_MS, RETRY_ATTEMPTS);
    ts_status st = ts_fs_mkdirs(dir, errstr, errlen);
    if (!st) st = adopt_existing(c, errstr, errlen);
    if (st) {
        ts_chunk_cache_destroy(c);
        return st;
    }
    *out = c;
    return TS_OK;
}

void ts_chunk_cache_destroy(ts_chunk_cache *c)
{
    if (!c) return;
    /* Callers stop using the cache first; chunks they still hold own their
     * bytes and stay valid. Files stay on disk for the next start. */
    for (int i = 0; i < HOT_SLOTS; i++)
        if (c->hot[i].ch) hot_drop_slot(c, &c->hot[i]);
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry *e = c->buckets[i];
        while (e) {
            entry *nx = e->hnext;
            bidx_put(e->ix);
            free(e);
            e = nx;
        }
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->flight_cv);
    free(c);
}
