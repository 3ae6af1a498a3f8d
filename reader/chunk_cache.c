/*
 * chunk_cache.c — the disk chunk cache of the cold read path (reader.h has
 * the interface; reader/README.md the cache file format and the RAM bound).
 *
 * A remote segment object is a sequence of independent zstd frames
 * ("chunks"). A cold read needs one chunk, so the cache keeps decompressed
 * chunks as files, one per (object key, chunk index), named by the SHA-256 of
 * that pair. Shaped so because:
 *  - the disk is the cache, RAM is not: in memory we keep only a small record
 *    per file (map + LRU links, ~110 bytes) and the chunks callers hold; a hit
 *    reads the file back and verifies it again, so a damaged file is never
 *    served (it is dropped and the chunk refetched);
 *  - remote bytes are verified before they are used: stored CRC-32C before
 *    decompression (zstd never sees unverified input), then length and raw
 *    CRC-32C after it;
 *  - concurrent misses on one chunk share one ranged GET (single-flight), so a
 *    burst of consumers on a cold offset costs one request;
 *  - returned chunks own their bytes (refcounted), so eviction, which only
 *    unlinks files, never pulls memory from under a reader.
 *
 * Locking: one mutex, c->mu, guards the map, the LRU list, the in-flight
 * table and the byte accounting. It is also held across the rename() that
 * publishes a file and the unlink() that evicts one, so the directory and the
 * map never disagree and the directory never holds more than the cap (these
 * are metadata-only syscalls; reads, writes, GETs and decompression run
 * without the lock). Counters are atomics so stats never take the lock.
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
#include <unistd.h>
#include <zstd.h>

#include "common/batch.h"
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

/* Cache file header: magic "TSC1", then HDR_FIXED bytes of fixed fields,
 * the object key and a CRC-32C of all of it; the body follows. Laid out
 * byte by byte, with why the key is in the file, in reader/README.md
 * ("Cache file format"), the one place it is documented. */
#define HDR_MAGIC 0x54534331u /* "TSC1" */
#define HDR_FIXED 18
#define HDR_LEN(klen) ((size_t)HDR_FIXED + (klen) + 4)
#define HDR_MAX HDR_LEN(TS_INDEX_KEY_MAX)
#define FILE_SUFFIX ".chunk"
#define TMP_MARK ".tmp-"
#define ID_LEN 32 /* SHA-256 */

/* Defaults of ts_chunk_cache_set_retry. */
#define RETRY_TIMEOUT_MS 30000
#define RETRY_BASE_MS 50
#define RETRY_MAX_MS 2000
#define RETRY_ATTEMPTS 5

/* A chunk handed to callers: pub must stay first (ts_chunk_release casts
 * back). buf holds a cache-file image (header + body) so that a freshly
 * fetched chunk is written to disk and served from the same allocation. */
typedef struct chunk_impl {
    ts_chunk pub;
    atomic_int refs;
    uint8_t *buf;
} chunk_impl;

/* One cache file. Everything the cache keeps in RAM per file. */
typedef struct entry {
    uint8_t id[ID_LEN];   /* SHA-256(key, chunk index): the file name */
    uint64_t key_hash;    /* FNV-1a of the object key, for forget_object */
    uint64_t size;        /* file bytes (header + body) */
    uint64_t gen;         /* unique per insert: tells a refetched file from the old one */
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

    /* A few recently served, verified chunks kept in RAM (refcounted), so a
     * sequential reader taking a 4 MiB chunk in 1 MiB fetches reads and
     * checks the cache file once, not four times. Bounded by hot_cap bytes
     * and HOT_SLOTS entries; under mu. */
    struct hot_slot {
        uint8_t id[ID_LEN];
        uint64_t key_hash;
        chunk_impl *ch;
        uint64_t tick;
    } hot[HOT_SLOTS];
    uint64_t hot_bytes, hot_cap, hot_tick;

    /* Written under mu (bytes, files) or anywhere (the rest); read lock-free. */
    _Atomic uint64_t bytes, files, hits, misses, fetched_bytes, evictions, verify_failures;
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

static chunk_impl *chunk_new(uint8_t *buf, size_t hdr_len, size_t raw_len)
{
    chunk_impl *ch = malloc(sizeof(*ch));
    if (!ch) return NULL;
    ch->buf = buf;
    ch->pub.data = buf + hdr_len;
    ch->pub.len = raw_len;
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

void ts_chunk_cache_set_memory(ts_chunk_cache *c, uint64_t bytes)
{
    pthread_mutex_lock(&c->mu);
    c->hot_cap = bytes;
    for (int i = 0; i < HOT_SLOTS; i++)
        if (c->hot[i].ch && c->hot_bytes > c->hot_cap) hot_drop_slot(c, &c->hot[i]);
    pthread_mutex_unlock(&c->mu);
}

void ts_chunk_release(ts_chunk *pub)
{
    if (!pub) return;
    chunk_impl *ch = (chunk_impl *)pub;
    if (atomic_fetch_sub(&ch->refs, 1) == 1) {
        free(ch->buf);
        free(ch);
    }
}

/* Writes the header for (key, idx, raw_len, raw_crc) into h; returns its length. */
static size_t hdr_write(uint8_t *h, const char *key, uint32_t idx, uint32_t raw_len,
                        uint32_t raw_crc)
{
    size_t klen = strnlen(key, TS_INDEX_KEY_MAX);
    ts_wr32(h, HDR_MAGIC);
    ts_wr32(h + 4, idx);
    ts_wr32(h + 8, raw_len);
    ts_wr32(h + 12, raw_crc);
    ts_wr16(h + 16, (uint16_t)klen);
    memcpy(h + HDR_FIXED, key, klen);
    ts_wr32(h + HDR_FIXED + klen, ts_crc32c(0, h, HDR_FIXED + klen));
    return HDR_LEN(klen);
}

typedef struct hdr_info {
    uint32_t idx, raw_len, raw_crc;
    size_t key_len, hdr_len;
    char key[TS_INDEX_KEY_MAX + 1];
} hdr_info;

/* Parses a header from len bytes at h through a bounded slice. 0 on success. */
static int hdr_parse(const uint8_t *h, size_t len, hdr_info *hi)
{
    if (len < HDR_FIXED) goto fail;
    if (ts_rd32(h) != HDR_MAGIC) goto fail;
    hi->idx = ts_rd32(h + 4);
    hi->raw_len = ts_rd32(h + 8);
    hi->raw_crc = ts_rd32(h + 12);
    hi->key_len = ts_rd16(h + 16);
    if (hi->key_len == 0 || hi->key_len > TS_INDEX_KEY_MAX) goto fail;
    hi->hdr_len = HDR_LEN(hi->key_len);
    if (len < hi->hdr_len) goto fail;
    if (ts_rd32(h + HDR_FIXED + hi->key_len) != ts_crc32c(0, h, HDR_FIXED + hi->key_len))
        goto fail;
    memcpy(hi->key, h + HDR_FIXED, hi->key_len);
    hi->key[hi->key_len] = '\0';
    if (strlen(hi->key) != hi->key_len) goto fail;
    return 0;
fail:
    return -1;
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

/* Reads and verifies the cache file of chunk idx of seg. On success *out
 * holds the bytes. TS_E_NOT_FOUND when the file is gone (evicted meanwhile),
 * TS_E_CHECKSUM / TS_E_CORRUPT when it is damaged or not this chunk's.
 * Runs on the calling reader or prefetch thread, without c->mu: files are
 * only replaced by rename and removed by unlink, so an open descriptor
 * always sees one complete file. */
static ts_status file_load(ts_chunk_cache *c, const uint8_t id[ID_LEN], const ts_segment_meta *seg,
                           uint32_t idx, chunk_impl **out, char *errstr, size_t errlen)
{
    const ts_chunk_meta *cm = &seg->chunks[idx];
    char path[PATH_MAX];
    file_path(c, id, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_err_set(errstr, errlen, errno == ENOENT ? TS_E_NOT_FOUND : TS_E_IO,
                          "cannot open cache file %s: %s", path, strerror(errno));
    ts_status st = TS_OK;
    uint8_t *buf = NULL;
    size_t hlen = HDR_LEN(strnlen(seg->object_key, TS_INDEX_KEY_MAX));
    size_t want = hlen + cm->raw_len;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ts_err_set(errstr, errlen, TS_E_IO, "cannot stat cache file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    if ((uint64_t)sb.st_size != want) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "cache file %s of chunk %u of object %s is %lld bytes, expected %zu", path,
                        idx, seg->object_key, (long long)sb.st_size, want);
        goto out;
    }
    buf = malloc(want ? want : 1);
    if (!buf) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading cache file %s", path);
        goto out;
    }
    if (ts_fs_read_full(fd, buf, want, 0) != (ssize_t)want) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "short read of cache file %s", path);
        goto out;
    }
    hdr_info hi;
    if (hdr_parse(buf, want, &hi) || hi.hdr_len != hlen || hi.idx != idx ||
        hi.raw_len != cm->raw_len || hi.raw_crc != cm->raw_crc32c ||
        strcmp(hi.key, seg->object_key) != 0) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "cache file %s has a damaged header or belongs to another chunk "
                        "(wanted chunk %u of object %s)",
                        path, idx, seg->object_key);
        goto out;
    }
    uint32_t crc = ts_crc32c(0, buf + hlen, cm->raw_len);
    if (crc != cm->raw_crc32c) {
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "cache file %s of chunk %u of object %s fails CRC-32C: manifest says "
                        "0x%08x, file gives 0x%08x",
                        path, idx, seg->object_key, cm->raw_crc32c, crc);
        goto out;
    }
    /* The mtime is the LRU order a restart adopts; keep it current. */
    (void)futimens(fd, NULL);
    *out = chunk_new(buf, hlen, cm->raw_len);
    if (!*out) st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    else buf = NULL;
out:
    free(buf);
    close(fd);
    return st;
}

/* Writes buf[0..len) to a new temp file in the cache dir, returning its path
 * in tmp. No fsync: the cache is a copy of remote data, a file torn by a
 * crash fails its CRC on the next read and is refetched, and paying an fsync
 * per chunk would slow cold reads for no durability anyone needs. The temp +
 * rename is still needed so no reader ever opens a half-written file.
 * Runs on the fetching thread without c->mu. */
static int file_write_tmp(ts_chunk_cache *c, const uint8_t id[ID_LEN], const uint8_t *buf,
                          size_t len, char *tmp, size_t tmplen)
{
    char hex[2 * ID_LEN + 1], rnd[17];
    id_hex(id, hex);
    ts_rand_hex(rnd, 8);
    snprintf(tmp, tmplen, "%s/%s" TMP_MARK "%s", c->dir, hex, rnd);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int ok = ts_fs_write_full(fd, buf, len, TS_FS_AT_POS) >= 0;
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

/* One attempt: ranged GET of the frame, verify, decompress, verify. On
 * success *out holds a cache-file image (header + raw bytes). Runs on the
 * leader thread without c->mu. */
static ts_status fetch_once(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                            uint32_t idx, uint8_t **out, size_t *out_hlen, char *errstr,
                            size_t errlen)
{
    const ts_chunk_meta *cm = &seg->chunks[idx];
    uint8_t *stored = NULL, *img = NULL;
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
    size_t hlen = HDR_LEN(strnlen(seg->object_key, TS_INDEX_KEY_MAX));
    img = malloc(hlen + cm->raw_len + 1);
    if (!img) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory for chunk %u of object %s",
                        idx, seg->object_key);
        goto fail;
    }
    size_t n = ZSTD_decompress(img + hlen, cm->raw_len, frame, got);
    if (ZSTD_isError(n) || n != cm->raw_len) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                        "chunk %u of object %s does not decompress to %u bytes: %s", idx,
                        seg->object_key, cm->raw_len,
                        ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
        goto fail;
    }
    crc = ts_crc32c(0, img + hlen, n);
    if (crc != cm->raw_crc32c) {
        atomic_fetch_add(&c->verify_failures, 1);
        st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                        "chunk %u of object %s fails CRC-32C of its raw bytes: manifest says "
                        "0x%08x, decompressed bytes give 0x%08x",
                        idx, seg->object_key, cm->raw_crc32c, crc);
        goto fail;
    }
    hdr_write(img, seg->object_key, idx, cm->raw_len, cm->raw_crc32c);
    free(stored);
    *out = img;
    *out_hlen = hlen;
    return TS_OK;
fail:
    free(stored);
    free(img);
    return st;
}

/* Fetches with retries under the cache's retry policy. Runs on the leader
 * thread without c->mu. */
static ts_status fetch_retry(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                             uint32_t idx, uint8_t **out, size_t *hlen, char *errstr,
                             size_t errlen)
{
    ts_retry r;
    ts_retry_init(&r, c->retry_timeout_ms, c->retry_base_ms, c->retry_max_ms,
                  c->retry_attempts);
    for (;;) {
        ts_status st = fetch_once(c, os, seg, idx, out, hlen, errstr, errlen);
        if (st == TS_OK) return st;
        ts_log_debug("reader", "fetch attempt %d failed: %s", r.attempt + 1, errstr ? errstr : "");
        if (!ts_retry_next(&r, st)) {
            if (ts_status_is_retriable(st))
                ts_err_prefix(errstr, errlen, st, "giving up after %d attempts", r.attempt);
            return st;
        }
    }
}

/* Leader path: fetch, then publish the file (unless it exceeds the cap or
 * the object was forgotten meanwhile), then complete the flight and wake
 * the waiters. Takes c->mu only to reserve space and to publish. Returns
 * the fetched chunk (one reference for the caller) on success. */
static ts_status lead_fetch(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                            uint32_t idx, flight *f, chunk_impl **out, char *errstr,
                            size_t errlen)
{
    uint8_t *img = NULL;
    size_t hlen = 0;
    chunk_impl *ch = NULL;
    ts_status st = fetch_retry(c, os, seg, idx, &img, &hlen, errstr, errlen);
    if (st == TS_OK) {
        ch = chunk_new(img, hlen, seg->chunks[idx].raw_len);
        if (!ch) {
            free(img);
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
    }
    uint64_t fsz = (uint64_t)hlen + seg->chunks[idx].raw_len;
    int reserved = 0;
    if (ch && fsz <= c->cap) {
        pthread_mutex_lock(&c->mu);
        if (!f->forgotten && make_room(c, fsz) == 0) {
            c->reserved += fsz;
            reserved = 1;
        }
        pthread_mutex_unlock(&c->mu);
    }
    char tmp[PATH_MAX];
    int wrote = reserved && file_write_tmp(c, f->id, ch->buf, (size_t)fsz, tmp, sizeof(tmp)) == 0;
    if (reserved && !wrote)
        ts_log_warn("reader", "cannot write cache file for chunk %u of object %s in %s: %s "
                    "(served uncached)", idx, seg->object_key, c->dir, strerror(errno));

    pthread_mutex_lock(&c->mu);
    if (reserved) c->reserved -= fsz;
    if (wrote) {
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
        } else {
            free(e);
            unlink(tmp);
        }
    }
    f->done = 1;
    f->st = st;
    if (ch) f->result = chunk_ref(ch);
    else if (errstr && errlen) snprintf(f->err, sizeof(f->err), "%s", errstr);
    flight **pp = &c->flights;
    while (*pp != f) pp = &(*pp)->next;
    *pp = f->next;
    pthread_cond_broadcast(&c->flight_cv);
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

/* Shared by get (warm == 0) and warm (warm != 0: never waits for another
 * thread's fetch, never reads a cached file, returns no chunk). Runs on
 * reader or prefetch threads; takes c->mu for map and flight updates only. */
static ts_status cache_get(ts_chunk_cache *c, ts_objstore *os, const ts_segment_meta *seg,
                           uint32_t idx, int warm, ts_chunk **out, char *errstr, size_t errlen)
{
    char lerr[512];
    if (!errstr || !errlen) { /* the flight copies the leader's message for its waiters */
        errstr = lerr;
        errlen = sizeof(lerr);
    }
    if (out) *out = NULL;
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
    ts_status kst = seg->sealed ? key_present(c, seg, errstr, errlen) : TS_OK;
    if (kst) return kst;
    uint8_t id[ID_LEN];
    chunk_id(seg->object_key, idx, id);

    /* A few rounds at most: a file can vanish (eviction) or fail
     * verification between the lookup and the read. */
    for (int round = 0;; round++) {
        pthread_mutex_lock(&c->mu);
        chunk_impl *hot = hot_get(c, id);
        if (hot) {
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->hits, 1);
            if (warm) ts_chunk_release(&hot->pub);
            else *out = &hot->pub;
            return TS_OK;
        }
        entry *e = map_find(c, id);
        if (e && warm) {
            pthread_mutex_unlock(&c->mu);
            return TS_OK;
        }
        if (e && round < 3) {
            lru_unlink(c, e);
            lru_push_head(c, e);
            uint64_t gen = e->gen;
            pthread_mutex_unlock(&c->mu);
            chunk_impl *ch = NULL;
            char ferr[512];
            ts_status st = file_load(c, id, seg, idx, &ch, ferr, sizeof(ferr));
            if (st == TS_OK) {
                atomic_fetch_add(&c->hits, 1);
                hot_put(c, id, ts_chunk_cache_key_hash(seg->object_key), ch);
                *out = &ch->pub;
                return TS_OK;
            }
            if (st == TS_E_CHECKSUM || st == TS_E_CORRUPT) {
                atomic_fetch_add(&c->verify_failures, 1);
                ts_log_warn("reader", "%s; dropping it and refetching", ferr);
                drop_if_gen(c, id, gen);
            } else if (st == TS_E_NOT_FOUND) {
                drop_if_gen(c, id, gen); /* evicted meanwhile, or removed behind our back */
            } else {
                /* EMFILE, ENOMEM…: the file may be fine, keep it; after a
                 * few rounds we fetch instead. */
                ts_log_warn("reader", "%s", ferr);
            }
            continue;
        }
        flight *f = flight_find(c, id);
        if (f) {
            if (warm) {
                pthread_mutex_unlock(&c->mu);
                return TS_OK;
            }
            /* Join the fetch in progress: same bytes or same error. */
            atomic_fetch_add(&c->misses, 1);
            f->refs++;
            while (!f->done) pthread_cond_wait(&c->flight_cv, &c->mu);
            ts_status st = f->st;
            if (f->result) *out = &chunk_ref(f->result)->pub;
            else ts_err_set(errstr, errlen, st, "%s", f->err);
            flight_put(f);
            pthread_mutex_unlock(&c->mu);
            return st;
        }
        f = calloc(1, sizeof(*f));
        if (!f) {
            pthread_mutex_unlock(&c->mu);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        memcpy(f->id, id, ID_LEN);
        f->key_hash = ts_chunk_cache_key_hash(seg->object_key);
        f->refs = 1;
        f->next = c->flights;
        c->flights = f;
        atomic_fetch_add(&c->misses, 1);
        pthread_mutex_unlock(&c->mu);

        chunk_impl *ch = NULL;
        ts_status st = lead_fetch(c, os, seg, idx, f, &ch, errstr, errlen);
        if (st == TS_OK) hot_put(c, id, ts_chunk_cache_key_hash(seg->object_key), ch);
        if (st == TS_OK) {
            if (warm) ts_chunk_release(&ch->pub);
            else *out = &ch->pub;
        }
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
static entry *adopt_one(ts_chunk_cache *c, const char *name, struct timespec *mtime)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= (int)sizeof(path)) return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    uint8_t h[HDR_MAX];
    struct stat sb;
    entry *e = NULL;
    ssize_t n = pread(fd, h, sizeof(h), 0);
    hdr_info hi;
    if (n <= 0 || fstat(fd, &sb) != 0 || hdr_parse(h, (size_t)n, &hi)) goto out;
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
        entry *e = adopt_one(c, name, &mt);
        if (!e) {
            ts_log_warn("reader", "removing damaged chunk cache file %s", path);
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
            free(e);
            e = nx;
        }
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->flight_cv);
    free(c);
}
