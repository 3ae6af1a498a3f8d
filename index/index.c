/*
 * index.c — the shadow index of one partition: the resident entry array,
 * its lookups, and its persistent copies (local files, bucket objects).
 *
 * Why it is shaped so:
 *  - Resident state is a sorted array of 64-byte entries (ts_index_entry:
 *    offsets, running max timestamp, sizes, the key's attempt id, chunk
 *    count). Chunk tables are not resident: each object carries its own
 *    (chunk_table.c), loaded on demand into a byte-capped cache. Only
 *    entries read from format-1 manifests ("legacy": their objects have no
 *    table frame) and keys not in the standard form sit in a side table.
 *  - Format 2 on disk and in the bucket: a small head (versioned,
 *    If-None-Match) lists immutable pieces and holds a tail of at most
 *    head_segments newest entries. A commit writes the head; when the tail
 *    is full, its entries move into one new piece, written (locally, then
 *    remotely) before the head that names it. Bytes per commit therefore do
 *    not depend on the history's length (index/README.md has the numbers).
 *    Entries go only into the tail: nothing is inserted below a piece.
 *    The tail keeps the fields the resident array drops (its real max
 *    timestamps, upload times, CRCs, the version that added each) in
 *    `td`, because they are needed to write its piece.
 *  - Two locks. `mu` guards the state and is held only for short copies,
 *    so lookups (on the cold-read path) never wait for I/O and do not
 *    allocate. `wmu` serialises mutators across their file and network I/O;
 *    only `wmu` holders change the state, so a `wmu` holder may read it
 *    without `mu`. Lock order: wmu, then mu.
 *  - Prepare, persist, commit. A mutation renders the next state from views
 *    of the current one, writes the local files (pieces first, then the
 *    head: the commit point), and only then installs it in memory.
 *  - Versions and durability. Every change bumps `version`; the bucket gets
 *    a new head per version. `remote_version` is the newest head durable
 *    there. A tail entry records the version that added it; an entry in a
 *    piece counts as added when its piece was (conservative: it may have
 *    been durable earlier, in a tail). Durable iff added <= remote_version.
 *  - A head put refused with TS_E_EXISTS: same content means an earlier
 *    attempt of ours landed; other content is never overwritten (move above
 *    the highest version and put again). Pieces have random ids, so a
 *    piece collision is not ours: refused.
 *  - Garbage: pieces dropped by retention are deleted once no kept head
 *    names them (their drop version is <= the oldest kept head); pieces no
 *    head ever named (a crash between piece and head) go in the orphan
 *    sweep (ts_index_bucket_references).
 */
#include "index/index.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config_table.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/retry.h"
#include "chunk_table.h"
#include "manifest_json.h"

#define LOG_MOD "index"
#define LOCAL_FILE "remote_manifest.json"
#define PIECES_DIR "manifest-pieces"
#define DEFAULT_KEEP_VERSIONS 3
#define DEFAULT_TIMEOUT_MS 120000
#define DEFAULT_HEAD_SEGMENTS 1000
#define RETRY_BASE_MS 50
#define RETRY_MAX_MS 5000
#define MAX_VERSION_BUMPS 5
#define MAX_LISTED_VERSIONS 1000000 /* caps memory when cleanup has fallen behind */

/* What the tail keeps beyond the resident entry (see the file comment). */
typedef struct tail_detail {
    int64_t max_ts;
    int64_t upload_time_ms;
    uint64_t added;
    uint32_t seg_crc;
    uint32_t pad;
    /* Sealed entries only: the envelope (the head re-renders the tail on
     * every commit; pieces keep theirs, read on demand: envelope_from_piece).
     * A pointer, so partitions without encryption pay 8 bytes per tail
     * entry, not the envelope's 93. Owned; freed when the entry leaves the
     * tail (td_free_envs). */
    struct tail_env *env;
} tail_detail;

typedef struct tail_env {
    char key_id[TS_CRYPT_KEY_ID_MAX + 1];
    uint8_t wrapped_key[TS_CRYPT_WRAPPED_LEN];
} tail_env;

static void td_free_envs(tail_detail *td, size_t n)
{
    for (size_t i = 0; td && i < n; i++) {
        free(td[i].env);
        td[i].env = NULL;
    }
}

/* Legacy chunk tables and odd keys, by base offset (few). */
typedef struct side_ent {
    int64_t base;
    char *key;             /* odd key, or NULL */
    ts_chunk_meta *chunks; /* legacy table, or NULL */
    uint32_t nchunks;
    uint32_t seg_crc;
} side_ent;

struct ts_index {
    pthread_mutex_t mu;  /* state below the marker */
    pthread_mutex_t wmu; /* one mutator at a time, held across its I/O */
    char topic[TS_TOPIC_NAME_MAX + 1];
    int32_t partition;
    char local_dir[4096];
    char local_path[4096 + sizeof(LOCAL_FILE) + 1];
    char pieces_dir[4096 + sizeof(PIECES_DIR) + 1];
    char manifest_prefix[TS_INDEX_KEY_MAX];
    char seg_prefix[TS_INDEX_KEY_MAX];
    char piece_prefix[TS_INDEX_KEY_MAX];
    ts_objstore *os;      /* not owned; may be NULL */
    ts_chunk_table_cache *ctc; /* not owned; may be NULL */
    int keep_versions;    /* wmu */
    int memory_only;      /* never writes the local file (ts_index_set_memory_only) */
    int64_t timeout_ms;   /* wmu */
    size_t head_segments; /* wmu */
    /* --- state: written under wmu + mu, read under either --- */
    ts_index_entry *e;
    size_t n, cap;
    size_t tail_start;    /* e[tail_start..n) are the head's tail */
    tail_detail *td;      /* n - tail_start entries */
    size_t td_cap;
    ts_manifest_piece *pieces;
    size_t np;
    side_ent *side;
    size_t nside;
    int64_t log_start;
    int64_t leader_epoch; /* written into heads; >= 0 fences commits (push_remote) */
    ts_index_epoch *epochs; /* the head's leader_epochs */
    size_t nepochs;
    uint64_t version;
    uint64_t remote_version;
    char **pending;       /* keys removed by retention, not yet handed out */
    size_t npending;
    char **dropped;       /* piece keys dropped from the head ... */
    uint64_t *dropped_v;  /* ... at this version */
    size_t ndropped;
    uint64_t raw_total, stored_total; /* sums over e[]: summaries run every tick */
    /* counters (mu) */
    uint64_t put_bytes, puts, gets;
    int pruned; /* wmu: local piece files checked against the head */
};

/* ------------------------------------------------------------------------
 * Segment meta helpers
 * ------------------------------------------------------------------------ */

void ts_segment_meta_clear(ts_segment_meta *seg)
{
    if (!seg) return;
    free(seg->chunks);
    seg->chunks = NULL;
    seg->chunk_count = 0;
}

ts_status ts_segment_meta_copy(ts_segment_meta *dst, const ts_segment_meta *src)
{
    *dst = *src;
    dst->chunks = NULL;
    if (src->chunk_count && src->chunks) {
        dst->chunks = malloc((size_t)src->chunk_count * sizeof(*dst->chunks));
        if (!dst->chunks) {
            dst->chunk_count = 0;
            return TS_E_NOMEM;
        }
        memcpy(dst->chunks, src->chunks, (size_t)src->chunk_count * sizeof(*dst->chunks));
    }
    return TS_OK;
}

void ts_index_snapshot_free(ts_segment_meta *segs, size_t n)
{
    if (!segs) return;
    for (size_t i = 0; i < n; i++) ts_segment_meta_clear(&segs[i]);
    free(segs);
}

/* ------------------------------------------------------------------------
 * Create / destroy / options
 * ------------------------------------------------------------------------ */

ts_status ts_index_create(const char *topic, int32_t partition, const char *local_dir,
                          ts_objstore *os, ts_index **out, char *errstr, size_t errlen)
{
    *out = NULL;
    if (!topic || !ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "index: topic '%.64s' breaks Kafka's rules ([A-Za-z0-9._-], 1..249 chars)",
                          topic ? topic : "(null)");
    if (partition < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "index: partition %" PRId32 " is negative",
                          partition);
    if (!local_dir || !*local_dir || strlen(local_dir) >= 4096)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "index %s/%" PRId32 ": local directory is empty or too long", topic,
                          partition);
    ts_index *idx = calloc(1, sizeof(*idx));
    if (!idx) return ts_err_set(errstr, errlen, TS_E_NOMEM, "index: out of memory");
    pthread_mutex_init(&idx->mu, NULL);
    pthread_mutex_init(&idx->wmu, NULL);
    memcpy(idx->topic, topic, strlen(topic) + 1);
    idx->partition = partition;
    memcpy(idx->local_dir, local_dir, strlen(local_dir) + 1);
    snprintf(idx->local_path, sizeof(idx->local_path), "%s/%s", local_dir, LOCAL_FILE);
    snprintf(idx->pieces_dir, sizeof(idx->pieces_dir), "%s/%s", local_dir, PIECES_DIR);
    ts_index_manifest_prefix(topic, partition, idx->manifest_prefix, sizeof(idx->manifest_prefix));
    ts_index_segment_prefix(topic, partition, idx->seg_prefix, sizeof(idx->seg_prefix));
    ts_index_piece_prefix(topic, partition, idx->piece_prefix, sizeof(idx->piece_prefix));
    idx->os = os;
    idx->keep_versions = DEFAULT_KEEP_VERSIONS;
    idx->timeout_ms = DEFAULT_TIMEOUT_MS;
    idx->head_segments = DEFAULT_HEAD_SEGMENTS;
    idx->leader_epoch = -1;
    *out = idx;
    return TS_OK;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

static void side_free_all(side_ent *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].key);
        free(s[i].chunks);
    }
    free(s);
}

void ts_index_destroy(ts_index *idx)
{
    if (!idx) return;
    free(idx->e);
    td_free_envs(idx->td, idx->n - idx->tail_start);
    free(idx->td);
    free(idx->pieces);
    side_free_all(idx->side, idx->nside);
    free_keys(idx->pending, idx->npending);
    free_keys(idx->dropped, idx->ndropped);
    free(idx->dropped_v);
    free(idx->epochs);
    pthread_mutex_destroy(&idx->mu);
    pthread_mutex_destroy(&idx->wmu);
    free(idx);
}

void ts_index_set_memory_only(ts_index *idx) { idx->memory_only = 1; }

void ts_index_set_keep_versions(ts_index *idx, int keep)
{
    pthread_mutex_lock(&idx->wmu);
    idx->keep_versions = keep < 1 ? 1 : keep;
    pthread_mutex_unlock(&idx->wmu);
}

void ts_index_set_remote_timeout_ms(ts_index *idx, int64_t timeout_ms)
{
    pthread_mutex_lock(&idx->wmu);
    idx->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    pthread_mutex_unlock(&idx->wmu);
}

void ts_index_set_head_segments(ts_index *idx, int n)
{
    pthread_mutex_lock(&idx->wmu);
    idx->head_segments = n < 1 ? 1 : (size_t)n;
    pthread_mutex_unlock(&idx->wmu);
}

void ts_index_set_leader_epoch(ts_index *idx, int64_t epoch)
{
    pthread_mutex_lock(&idx->wmu);
    idx->leader_epoch = epoch < -1 ? -1 : epoch;
    pthread_mutex_unlock(&idx->wmu);
}

void ts_index_set_chunk_table_cache(ts_index *idx, ts_chunk_table_cache *c)
{
    pthread_mutex_lock(&idx->wmu);
    idx->ctc = c;
    pthread_mutex_unlock(&idx->wmu);
}

void ts_index_apply_config(ts_index *idx, const ts_config *cfg)
{
    if (!cfg) return;
    const ts_settings *set = ts_config_settings(cfg);
    ts_index_set_keep_versions(idx, (int)set->remote_log_manifest_keep_versions);
    ts_index_set_remote_timeout_ms(idx, set->remote_storage_operation_timeout_ms);
    ts_index_set_head_segments(idx, (int)set->remote_log_manifest_head_segments);
}

/* ------------------------------------------------------------------------
 * Entries, keys, side table
 * ------------------------------------------------------------------------ */

/* First index whose base_offset >= off. Caller holds mu or wmu. */
static size_t lower_bound_base(const ts_index *idx, int64_t off)
{
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->e[mid].base_offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static side_ent *side_find(const ts_index *idx, int64_t base)
{
    size_t lo = 0, hi = idx->nside;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->side[mid].base < base) lo = mid + 1;
        else hi = mid;
    }
    return lo < idx->nside && idx->side[lo].base == base ? &idx->side[lo] : NULL;
}

/* The attempt id of a key in the standard form
 * "<segments prefix><base:20>-<16 lowercase hex>.log.zst", or -1. */
static int standard_attempt(const ts_index *idx, const char *key, int64_t base, uint64_t *attempt)
{
    char want[TS_INDEX_KEY_MAX];
    int n = snprintf(want, sizeof(want), "%s%020" PRId64 "-", idx->seg_prefix, base);
    if (n < 0 || strncmp(key, want, (size_t)n)) return -1;
    const char *h = key + n;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = h[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else return -1;
        v = v << 4 | d;
    }
    if (strcmp(h + 16, ".log.zst")) return -1;
    *attempt = v;
    return 0;
}

static void entry_key(const ts_index *idx, const ts_index_entry *e, char *out, size_t outlen)
{
    if (e->flags & TS_INDEX_ENTRY_ODD_KEY) {
        const side_ent *s = side_find(idx, e->base_offset);
        snprintf(out, outlen, "%s", s && s->key ? s->key : "");
        return;
    }
    char att[17];
    snprintf(att, sizeof(att), "%016" PRIx64, e->attempt);
    ts_index_segment_key(idx->topic, idx->partition, e->base_offset, att, out, outlen);
}

void ts_index_entry_key(ts_index *idx, const ts_index_entry *e, char *out, size_t outlen)
{
    pthread_mutex_lock(&idx->mu);
    entry_key(idx, e, out, outlen);
    pthread_mutex_unlock(&idx->mu);
}

static void td_envelope_get(const tail_detail *t, ts_segment_meta *m)
{
    if (!t->env) return;
    memcpy(m->key_id, t->env->key_id, sizeof(m->key_id));
    memcpy(m->wrapped_key, t->env->wrapped_key, sizeof(m->wrapped_key));
}

/* Gives t m's envelope (allocating it: TS_E_NOMEM), or none when m is not
 * sealed. */
static ts_status td_envelope_set(tail_detail *t, const ts_segment_meta *m)
{
    if (!m->sealed) {
        free(t->env);
        t->env = NULL;
        return TS_OK;
    }
    if (!t->env && !(t->env = malloc(sizeof(*t->env)))) return TS_E_NOMEM;
    memcpy(t->env->key_id, m->key_id, sizeof(t->env->key_id));
    memcpy(t->env->wrapped_key, m->wrapped_key, sizeof(t->env->wrapped_key));
    return TS_OK;
}

/* The entry as a ts_segment_meta, without chunks (no allocation). For a
 * tail entry the details it keeps are filled in. Caller holds mu or wmu. */
static void entry_meta(const ts_index *idx, size_t i, ts_segment_meta *m)
{
    const ts_index_entry *e = &idx->e[i];
    memset(m, 0, offsetof(ts_segment_meta, object_key));
    m->base_offset = e->base_offset;
    m->last_offset = e->last_offset;
    m->first_timestamp = e->first_timestamp;
    m->max_timestamp = e->max_timestamp;
    m->size_bytes = e->size_bytes;
    m->stored_bytes = e->stored_bytes;
    entry_key(idx, e, m->object_key, sizeof(m->object_key));
    m->chunk_count = e->chunk_count;
    m->chunks = NULL;
    m->sealed = (e->flags & TS_INDEX_ENTRY_SEALED) != 0;
    m->key_id[0] = '\0';
    if (e->flags & TS_INDEX_ENTRY_LEGACY) {
        m->chunk_table_pos = 0;
        m->chunk_table_len = 0;
        const side_ent *s = side_find(idx, e->base_offset);
        if (s) m->segment_crc32c = s->seg_crc;
    } else {
        m->chunk_table_len = TS_CHUNK_TABLE_LEN(e->chunk_count);
        m->chunk_table_pos =
            e->stored_bytes - m->chunk_table_len - (8u * (uint64_t)e->chunk_count + 17u);
    }
    if (i >= idx->tail_start) {
        const tail_detail *t = &idx->td[i - idx->tail_start];
        m->upload_time_ms = t->upload_time_ms;
        m->segment_crc32c = t->seg_crc;
        if (m->sealed) td_envelope_get(t, m);
    }
}

/* The tail entry i with its real max timestamp, as written to a head or
 * a piece; legacy chunks are borrowed from the side table. */
static void tail_meta(const ts_index *idx, size_t i, ts_segment_meta *m)
{
    entry_meta(idx, i, m);
    m->max_timestamp = idx->td[i - idx->tail_start].max_ts;
    if (idx->e[i].flags & TS_INDEX_ENTRY_LEGACY) {
        const side_ent *s = side_find(idx, idx->e[i].base_offset);
        m->chunks = s ? s->chunks : NULL;
    }
}

/* Builds the resident entry (and, when needed, a side entry) for seg.
 * The side entry's allocations are the caller's until installed. */
static ts_status make_entry(const ts_index *idx, const ts_segment_meta *seg, int64_t prev_max,
                            ts_index_entry *e, side_ent *side, int *has_side)
{
    memset(e, 0, sizeof(*e));
    memset(side, 0, sizeof(*side));
    *has_side = 0;
    e->base_offset = seg->base_offset;
    e->last_offset = seg->last_offset;
    e->first_timestamp = seg->first_timestamp;
    e->max_timestamp = seg->max_timestamp > prev_max ? seg->max_timestamp : prev_max;
    e->size_bytes = seg->size_bytes;
    e->stored_bytes = seg->stored_bytes;
    e->chunk_count = seg->chunk_count;
    if (seg->sealed) e->flags |= TS_INDEX_ENTRY_SEALED;
    side->base = seg->base_offset;
    side->seg_crc = seg->segment_crc32c;
    if (standard_attempt(idx, seg->object_key, seg->base_offset, &e->attempt)) {
        e->flags |= TS_INDEX_ENTRY_ODD_KEY;
        if (!(side->key = strdup(seg->object_key))) return TS_E_NOMEM;
        *has_side = 1;
    }
    if (!seg->chunk_table_len) {
        e->flags |= TS_INDEX_ENTRY_LEGACY;
        side->chunks = malloc((size_t)seg->chunk_count * sizeof(*side->chunks));
        if (!side->chunks) {
            free(side->key);
            return TS_E_NOMEM;
        }
        memcpy(side->chunks, seg->chunks, (size_t)seg->chunk_count * sizeof(*side->chunks));
        side->nchunks = seg->chunk_count;
        *has_side = 1;
    }
    return TS_OK;
}

/* Inserts a side entry (keeps base order). Caller holds mu. */
static ts_status side_insert(ts_index *idx, const side_ent *s)
{
    side_ent *ns = realloc(idx->side, (idx->nside + 1) * sizeof(*ns));
    if (!ns) return TS_E_NOMEM;
    idx->side = ns;
    size_t lo = 0;
    while (lo < idx->nside && idx->side[lo].base < s->base) lo++;
    memmove(idx->side + lo + 1, idx->side + lo, (idx->nside - lo) * sizeof(*ns));
    idx->side[lo] = *s;
    idx->nside++;
    return TS_OK;
}

/* Drops side entries below `base`. Caller holds mu. */
static void side_drop_below(ts_index *idx, int64_t base)
{
    size_t k = 0;
    while (k < idx->nside && idx->side[k].base < base) {
        free(idx->side[k].key);
        free(idx->side[k].chunks);
        k++;
    }
    if (k) memmove(idx->side, idx->side + k, (idx->nside - k) * sizeof(*idx->side));
    idx->nside -= k;
}

/* Grows by an eighth (at least 1024 entries): the array is the per-segment
 * cost, so its slack stays within 12.5% instead of doubling's 100%. */
static ts_status reserve_entries(ts_index *idx, size_t need)
{
    if (need <= idx->cap) return TS_OK;
    size_t ncap = idx->cap + idx->cap / 8 + 1024;
    if (ncap < need) ncap = need;
    ts_index_entry *e = realloc(idx->e, ncap * sizeof(*e));
    if (!e) return TS_E_NOMEM;
    idx->e = e;
    idx->cap = ncap;
    return TS_OK;
}

static ts_status reserve_td(ts_index *idx, size_t need)
{
    if (need <= idx->td_cap) return TS_OK;
    size_t ncap = idx->td_cap ? idx->td_cap * 2 : 16;
    if (ncap < need) ncap = need;
    tail_detail *t = realloc(idx->td, ncap * sizeof(*t));
    if (!t) return TS_E_NOMEM;
    idx->td = t;
    idx->td_cap = ncap;
    return TS_OK;
}

/* The piece holding entry base, or NULL (tail). Caller holds mu or wmu. */
static const ts_manifest_piece *piece_of(const ts_index *idx, int64_t base)
{
    size_t lo = 0, hi = idx->np;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->pieces[mid].last_offset < base) lo = mid + 1;
        else hi = mid;
    }
    return lo < idx->np && idx->pieces[lo].base_offset <= base ? &idx->pieces[lo] : NULL;
}

/* ------------------------------------------------------------------------
 * Documents: what a head or a piece holds, built from views of the state
 * ------------------------------------------------------------------------ */

/* The next state as a mutation proposes it; every array is borrowed. */
typedef struct proposal {
    const ts_manifest_piece *pieces;
    size_t np;
    const ts_segment_meta *tail;
    const uint64_t *tail_added;
    size_t ntail;
    int64_t log_start;
    uint64_t version;
    uint64_t remote_version;
    char **pending;
    size_t npending;
    char **dropped;
    uint64_t *dropped_v;
    size_t ndropped;
    const ts_index_epoch *epochs;
    size_t nepochs;
} proposal;

static void head_doc(const ts_index *idx, const proposal *p, int local, ts_manifest_doc *d)
{
    memset(d, 0, sizeof(*d));
    d->format = TS_MANIFEST_FORMAT_2;
    d->kind = TS_MANIFEST_HEAD;
    memcpy(d->topic, idx->topic, sizeof(d->topic));
    d->partition = idx->partition;
    d->version = p->version;
    d->leader_epoch = idx->leader_epoch;
    d->log_start_offset = p->log_start;
    d->epochs = (ts_index_epoch *)p->epochs;
    d->nepochs = p->nepochs;
    d->pieces = (ts_manifest_piece *)p->pieces;
    d->npieces = p->np;
    d->segs = (ts_segment_meta *)p->tail;
    d->n = p->ntail;
    d->local = local;
    d->remote_version = p->remote_version;
    d->added_versions = (uint64_t *)p->tail_added;
    d->pending_deletes = p->pending;
    d->npending = p->npending;
    d->dropped = p->dropped;
    d->dropped_versions = p->dropped_v;
    d->ndropped = p->ndropped;
}

/* The current tail as metas and added versions (malloc'd). Caller holds
 * wmu or mu. */
static ts_status current_tail(const ts_index *idx, ts_segment_meta **segs, uint64_t **added,
                              size_t extra)
{
    size_t nt = idx->n - idx->tail_start;
    *segs = malloc((nt + extra + 1) * sizeof(**segs));
    *added = malloc((nt + extra + 1) * sizeof(**added));
    if (!*segs || !*added) {
        free(*segs);
        free(*added);
        *segs = NULL;
        *added = NULL;
        return TS_E_NOMEM;
    }
    for (size_t i = 0; i < nt; i++) {
        tail_meta(idx, idx->tail_start + i, &(*segs)[i]);
        (*added)[i] = idx->td[i].added;
    }
    return TS_OK;
}

/* Takes wmu and the current tail (current_tail); on failure wmu is not
 * held. */
static ts_status lock_with_tail(ts_index *idx, ts_segment_meta **tail, uint64_t **added,
                                char *errstr, size_t errlen)
{
    pthread_mutex_lock(&idx->wmu);
    if (!current_tail(idx, tail, added, 0)) return TS_OK;
    pthread_mutex_unlock(&idx->wmu);
    return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
}

static void current_proposal(const ts_index *idx, const ts_segment_meta *tail,
                             const uint64_t *added, proposal *p)
{
    memset(p, 0, sizeof(*p));
    p->pieces = idx->pieces;
    p->np = idx->np;
    p->tail = tail;
    p->tail_added = added;
    p->ntail = idx->n - idx->tail_start;
    p->log_start = idx->log_start;
    p->version = idx->version;
    p->remote_version = idx->remote_version;
    p->pending = idx->pending;
    p->npending = idx->npending;
    p->dropped = idx->dropped;
    p->dropped_v = idx->dropped_v;
    p->ndropped = idx->ndropped;
    p->epochs = idx->epochs;
    p->nepochs = idx->nepochs;
}

static const char *piece_basename(const ts_index *idx, const char *key)
{
    return key + strlen(idx->piece_prefix);
}

static void piece_path(const ts_index *idx, const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", idx->pieces_dir, piece_basename(idx, key));
}

/* Renders segs[0..n) as a new piece, writes it to the local pieces
 * directory (durably: temp, fsync, rename, fsync) and describes it in *pc.
 * Caller holds wmu. */
static ts_status make_piece(ts_index *idx, const ts_segment_meta *segs, size_t n,
                            const ts_index_epoch *epochs, size_t nepochs, uint64_t version,
                            ts_manifest_piece *pc, char *errstr, size_t errlen)
{
    ts_manifest_doc d;
    memset(&d, 0, sizeof(d));
    d.format = TS_MANIFEST_FORMAT_2;
    d.kind = TS_MANIFEST_PIECE;
    memcpy(d.topic, idx->topic, sizeof(d.topic));
    d.partition = idx->partition;
    d.piece_base = segs[0].base_offset;
    d.piece_last = segs[n - 1].last_offset;
    d.segs = (ts_segment_meta *)segs;
    d.n = n;
    d.epochs = (ts_index_epoch *)epochs; /* each entry's own, in the piece */
    d.nepochs = nepochs;
    char *json = NULL;
    size_t len = 0;
    ts_status st = ts_manifest_render(&d, &json, &len, errstr, errlen);
    if (st) return st;
    memset(pc, 0, sizeof(*pc));
    char id[17];
    ts_rand_hex(id, 8);
    ts_index_piece_key(idx->topic, idx->partition, d.piece_base, d.piece_last, id, pc->key,
                       sizeof(pc->key));
    pc->base_offset = d.piece_base;
    pc->last_offset = d.piece_last;
    pc->min_timestamp = -1;
    pc->max_timestamp = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t f = segs[i].first_timestamp;
        if (f >= 0 && (pc->min_timestamp < 0 || f < pc->min_timestamp)) pc->min_timestamp = f;
        if (segs[i].max_timestamp > pc->max_timestamp) pc->max_timestamp = segs[i].max_timestamp;
        pc->raw_bytes += segs[i].size_bytes;
        pc->stored_bytes += segs[i].stored_bytes;
    }
    pc->count = n;
    pc->bytes = len;
    pc->crc32c = ts_crc32c(0, json, len);
    pc->added_version = version;
    char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
    piece_path(idx, pc->key, path, sizeof(path));
    st = idx->memory_only ? TS_OK : ts_fs_mkdirs(idx->pieces_dir, errstr, errlen);
    if (!st && !idx->memory_only) st = ts_fs_write_atomic(path, json, len, errstr, errlen);
    free(json);
    if (st)
        ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": cannot write piece %s locally",
                      idx->topic, idx->partition, path);
    return st;
}

static void remove_local_piece(const ts_index *idx, const char *key)
{
    char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
    piece_path(idx, key, path, sizeof(path));
    unlink(path);
}

static void prune_local_pieces(ts_index *idx, const ts_manifest_piece *pieces, size_t np);

/* Writes the local head of a proposal. Caller holds wmu. */
static ts_status write_local_prop(ts_index *idx, const proposal *p, char *errstr, size_t errlen)
{
    if (idx->memory_only) return TS_OK; /* a read-only view (ts_index_set_memory_only) */
    ts_manifest_doc d;
    head_doc(idx, p, 1, &d);
    char *json = NULL;
    size_t len = 0;
    ts_status st = ts_manifest_render(&d, &json, &len, errstr, errlen);
    if (!st) st = ts_fs_mkdirs(idx->local_dir, errstr, errlen);
    if (!st) st = ts_fs_write_atomic(idx->local_path, json, len, errstr, errlen);
    free(json);
    if (st)
        return ts_err_prefix(errstr, errlen, st,
                             "index %s/%" PRId32 ": cannot persist manifest v%" PRIu64 " locally",
                             idx->topic, idx->partition, p->version);
    /* The first write of a process also clears piece files no head names
     * (a crash between a piece and its head); loading never writes, so
     * offline readers leave the directory alone. */
    if (!idx->pruned) {
        idx->pruned = 1;
        prune_local_pieces(idx, p->pieces, p->np);
    }
    return TS_OK;
}

static ts_status write_local(ts_index *idx, char *errstr, size_t errlen)
{
    ts_segment_meta *tail;
    uint64_t *added;
    if (current_tail(idx, &tail, &added, 0))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    proposal p;
    current_proposal(idx, tail, added, &p);
    ts_status st = write_local_prop(idx, &p, errstr, errlen);
    free(tail);
    free(added);
    return st;
}

/* ------------------------------------------------------------------------
 * Remote helpers (caller holds wmu)
 * ------------------------------------------------------------------------ */

static void init_retry(const ts_index *idx, ts_retry *r)
{
    ts_retry_init(r, idx->timeout_ms, RETRY_BASE_MS, RETRY_MAX_MS, 0);
}

static ts_status put_retry(ts_index *idx, const char *key, const char *data, size_t len,
                           char *errstr, size_t errlen)
{
    ts_retry r;
    ts_status st;
    init_retry(idx, &r);
    do {
        st = ts_objstore_put(idx->os, key, data, len, TS_PUT_IF_NONE_MATCH, errstr, errlen);
        pthread_mutex_lock(&idx->mu);
        idx->puts++;
        idx->put_bytes += len;
        pthread_mutex_unlock(&idx->mu);
    } while (st && st != TS_E_EXISTS && ts_retry_next(&r, st));
    return st;
}

static ts_status get_range_retry(ts_index *idx, const char *key, uint64_t off, uint64_t len,
                                 uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    ts_retry r;
    ts_status st;
    init_retry(idx, &r);
    do {
        st = ts_objstore_get(idx->os, key, off, len, out, out_len, errstr, errlen);
        pthread_mutex_lock(&idx->mu);
        idx->gets++;
        pthread_mutex_unlock(&idx->mu);
    } while (st && ts_retry_next(&r, st));
    return st;
}

static ts_status get_retry(ts_index *idx, const char *key, uint8_t **out, size_t *out_len,
                           char *errstr, size_t errlen)
{
    return get_range_retry(idx, key, 0, TS_OBJSTORE_TO_END, out, out_len, errstr, errlen);
}

typedef struct listed {
    uint64_t version;
    uint64_t size;
} listed;

typedef struct list_acc {
    const char *prefix;
    size_t plen;
    listed *v;
    size_t n, cap;
    int oom;
} list_acc;

/* Accepts exactly "<prefix><20 digits>.json"; anything else under the
 * prefix is not a manifest version and is ignored. */
static int list_cb(const char *key, uint64_t size, void *opaque)
{
    list_acc *a = opaque;
    if (strncmp(key, a->prefix, a->plen)) return 0;
    const char *name = key + a->plen;
    if (strlen(name) != 25 || strcmp(name + 20, ".json")) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        unsigned dg = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - dg) / 10) return 0;
        v = v * 10 + dg;
    }
    if (a->n == a->cap) {
        if (a->cap >= MAX_LISTED_VERSIONS) return 1; /* enough to act on; stop */
        size_t ncap = a->cap ? a->cap * 2 : 16;
        listed *nv = realloc(a->v, ncap * sizeof(*nv));
        if (!nv) {
            a->oom = 1;
            return 1;
        }
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n].version = v;
    a->v[a->n].size = size;
    a->n++;
    return 0;
}

static int cmp_listed_desc(const void *x, const void *y)
{
    uint64_t a = ((const listed *)x)->version, b = ((const listed *)y)->version;
    return a < b ? 1 : a > b ? -1 : 0;
}

/* Lists the manifest versions in the bucket, newest first (malloc'd). */
static ts_status list_versions(ts_index *idx, listed **out, size_t *n, char *errstr,
                               size_t errlen)
{
    ts_retry r;
    ts_status st;
    list_acc a;
    init_retry(idx, &r);
    do {
        memset(&a, 0, sizeof(a));
        a.prefix = idx->manifest_prefix;
        a.plen = strlen(a.prefix);
        st = ts_objstore_list(idx->os, idx->manifest_prefix, list_cb, &a, errstr, errlen);
        if (st) free(a.v);
    } while (st && ts_retry_next(&r, st));
    if (st) return st;
    if (a.oom) {
        free(a.v);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory listing %s",
                          idx->manifest_prefix);
    }
    if (a.n) qsort(a.v, a.n, sizeof(*a.v), cmp_listed_desc);
    *out = a.v;
    *n = a.n;
    return TS_OK;
}

/* After TS_E_EXISTS on a head: is the object at `key` the very head we
 * tried to put (an earlier attempt of ours that landed)? Same bytes, or the
 * same meaning (pieces and tail), so a differently formatted writer of the
 * same state also counts. */
static int same_as_existing(ts_index *idx, const char *key, const char *json, size_t len)
{
    char err[256];
    uint8_t *data = NULL;
    size_t dlen = 0;
    int same = 0;
    if (get_retry(idx, key, &data, &dlen, err, sizeof(err))) {
        ts_log_warn(LOG_MOD, "%s exists but cannot be read back: %s", key, err);
        return 0;
    }
    if (dlen == len && !memcmp(data, json, len)) {
        same = 1;
    } else {
        ts_manifest_doc a, b;
        if (!ts_manifest_parse((const char *)data, dlen, 0, &a, err, sizeof(err))) {
            if (!ts_manifest_parse(json, len, 0, &b, err, sizeof(err))) {
                same = a.format == b.format && a.version == b.version &&
                       a.log_start_offset == b.log_start_offset && a.n == b.n &&
                       a.npieces == b.npieces && !strcmp(a.topic, b.topic) &&
                       a.partition == b.partition;
                for (size_t i = 0; same && i < a.npieces; i++)
                    same = !strcmp(a.pieces[i].key, b.pieces[i].key) &&
                           a.pieces[i].crc32c == b.pieces[i].crc32c;
                for (size_t i = 0; same && i < a.n; i++)
                    same = ts_segment_meta_equal(&a.segs[i], &b.segs[i]);
                ts_manifest_doc_free(&b);
            }
            ts_manifest_doc_free(&a);
        }
    }
    free(data);
    return same;
}

/* Deletes head versions older than `v` beyond the newest keep_versions (v
 * included), then the pieces retention dropped that no remaining head can
 * name (dropped at a version <= the oldest head left). Best-effort: a
 * failure leaves extra objects behind, which the next cleanup removes; it
 * never affects correctness. (Kept older heads may name segment objects
 * that retention has since deleted: they are a fallback against a damaged
 * newest object, not a time machine.) Versions above v (another writer's,
 * or a corrupt leftover) are not ours to delete. */
static void cleanup_old_versions(ts_index *idx, uint64_t v)
{
    char err[256];
    listed *vers = NULL;
    size_t nv = 0;
    if (list_versions(idx, &vers, &nv, err, sizeof(err))) {
        ts_log_warn(LOG_MOD, "%s/%" PRId32 ": cannot list old manifests for cleanup: %s",
                    idx->topic, idx->partition, err);
        return;
    }
    size_t kept = 1; /* v itself */
    size_t ndel = 0;
    uint64_t oldest_kept = v;
    char **keys = calloc(nv ? nv : 1, sizeof(char *));
    for (size_t i = 0; keys && i < nv; i++) {
        if (vers[i].version >= v) continue;
        if (kept < (size_t)idx->keep_versions) {
            kept++;
            oldest_kept = vers[i].version;
            continue;
        }
        keys[ndel] = malloc(TS_INDEX_KEY_MAX);
        if (!keys[ndel]) break;
        ts_index_manifest_key(idx->topic, idx->partition, vers[i].version, keys[ndel],
                              TS_INDEX_KEY_MAX);
        ndel++;
    }
    int heads_gone = keys != NULL;
    if (ndel) {
        ts_status st =
            ts_objstore_delete_many(idx->os, (const char *const *)keys, ndel, err, sizeof(err));
        if (st) {
            heads_gone = 0;
            ts_log_warn(LOG_MOD,
                        "%s/%" PRId32 ": deleting %zu old manifest versions failed (%s): %s; "
                        "they will be retried after the next change",
                        idx->topic, idx->partition, ndel, ts_status_name(st), err);
        }
    }
    for (size_t i = 0; i < ndel; i++) free(keys[i]);
    free(keys);
    free(vers);
    if (!heads_gone || !idx->ndropped) return;
    /* Dropped pieces whose every naming head is gone. */
    char **gone = calloc(idx->ndropped, sizeof(char *));
    size_t ngone = 0;
    for (size_t i = 0; gone && i < idx->ndropped; i++)
        if (idx->dropped_v[i] <= oldest_kept) gone[ngone++] = idx->dropped[i];
    if (ngone && !ts_objstore_delete_many(idx->os, (const char *const *)gone, ngone, err,
                                          sizeof(err))) {
        pthread_mutex_lock(&idx->mu);
        size_t k = 0;
        for (size_t i = 0; i < idx->ndropped; i++) {
            if (idx->dropped_v[i] <= oldest_kept) {
                free(idx->dropped[i]);
                continue;
            }
            idx->dropped[k] = idx->dropped[i];
            idx->dropped_v[k++] = idx->dropped_v[i];
        }
        idx->ndropped = k;
        pthread_mutex_unlock(&idx->mu);
        if (write_local(idx, err, sizeof(err)))
            ts_log_warn(LOG_MOD, "%s/%" PRId32 ": cannot record deleted pieces locally (they will "
                        "be deleted again; harmless): %s", idx->topic, idx->partition, err);
    } else if (ngone) {
        ts_log_warn(LOG_MOD, "%s/%" PRId32 ": deleting %zu dropped pieces failed: %s; retried "
                    "after the next change", idx->topic, idx->partition, ngone, err);
    }
    free(gone);
}

/* Puts the pieces the current head names that are not yet known durable
 * (added after remote_version), from their local files. Pieces are named
 * by random ids: an existing object with other bytes is not ours. */
static ts_status push_pieces(ts_index *idx, char *errstr, size_t errlen)
{
    for (size_t i = 0; i < idx->np; i++) {
        const ts_manifest_piece *pc = &idx->pieces[i];
        if (pc->added_version <= idx->remote_version) continue;
        char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
        piece_path(idx, pc->key, path, sizeof(path));
        uint8_t *data = NULL;
        size_t len = 0;
        ts_status st = ts_fs_read_all(path, TS_MANIFEST_MAX_BYTES, &data, &len, errstr, errlen);
        if (!st && (len != pc->bytes || ts_crc32c(0, data, len) != pc->crc32c))
            st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                            "local piece %s does not match its head (length or CRC-32C)", path);
        if (!st) st = put_retry(idx, pc->key, (const char *)data, len, errstr, errlen);
        if (st == TS_E_EXISTS) {
            uint8_t *theirs = NULL;
            size_t tlen = 0;
            char e2[256];
            int same = !get_retry(idx, pc->key, &theirs, &tlen, e2, sizeof(e2)) && tlen == len &&
                       !memcmp(theirs, data, len);
            free(theirs);
            st = same ? TS_OK
                      : ts_err_set(errstr, errlen, TS_E_REMOTE,
                                   "piece %s already exists with other content; is another "
                                   "writer active?",
                                   pc->key);
        }
        free(data);
        if (st)
            return ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": put of piece %s",
                                 idx->topic, idx->partition, pc->key);
    }
    return TS_OK;
}

/* Makes the current state durable in the bucket: its new pieces, then the
 * head as a new immutable version. On success records remote_version (in
 * memory and, best-effort, in the local file) and, when take_pending is
 * given, hands out the keys waiting for deletion. Caller holds wmu;
 * idx->os is set. */
/* A commit at our leader epoch collided with a head someone else wrote:
 * TS_E_FENCED when the newest head (version top) carries a higher epoch (a
 * newer leader has taken over: its versions win, ours must never land). */
static ts_status check_not_fenced(ts_index *idx, uint64_t top, char *errstr, size_t errlen)
{
    char key[TS_INDEX_KEY_MAX], err[256];
    uint8_t *data = NULL;
    size_t len = 0;
    ts_index_manifest_key(idx->topic, idx->partition, top, key, sizeof(key));
    ts_status st = get_retry(idx, key, &data, &len, err, sizeof(err));
    if (st) return ts_err_set(errstr, errlen, st, "cannot read the newest head %s: %s", key, err);
    ts_manifest_doc d;
    st = ts_manifest_parse((const char *)data, len, 0, &d, err, sizeof(err));
    int64_t theirs = d.leader_epoch;
    ts_manifest_doc_free(&d);
    free(data);
    if (st) return TS_OK; /* a damaged head fences nobody; recovery skips it */
    if (theirs > idx->leader_epoch)
        return ts_err_set(errstr, errlen, TS_E_FENCED,
                          "index %s/%" PRId32 ": the bucket's newest head %s is at leader epoch "
                          "%" PRId64 ", above ours (%" PRId64 "): a newer leader commits this "
                          "partition, our commit is refused",
                          idx->topic, idx->partition, key, theirs, idx->leader_epoch);
    return TS_OK;
}

/* An index committing at a leader epoch checks the bucket's newest head
 * before each head put when it is not the last one it knows durable: a
 * collision alone misses a newer leader's heads when our version skips
 * past them (our earlier puts failed) or lands in a slot its cleanup
 * already emptied. One LIST per leader commit. */
static ts_status check_gap_not_fenced(ts_index *idx, char *errstr, size_t errlen)
{
    if (idx->leader_epoch < 0) return TS_OK;
    listed *vers = NULL;
    size_t nv = 0;
    ts_status st = list_versions(idx, &vers, &nv, errstr, errlen);
    uint64_t top = nv ? vers[0].version : 0;
    free(vers);
    if (st) return st;
    return top > idx->remote_version ? check_not_fenced(idx, top, errstr, errlen) : TS_OK;
}

/* Moves the keys waiting for deletion to the caller. Caller holds idx->mu. */
static void take_pending_locked(ts_index *idx, char ***take_pending, size_t *ntaken)
{
    *take_pending = idx->pending;
    *ntaken = idx->npending;
    idx->pending = NULL;
    idx->npending = 0;
}

/* The head version we tried to put is held by a different manifest: never
 * overwrite, move above everything listed (unless a newer leader's head
 * fences us). */
static ts_status skip_foreign_version(ts_index *idx, const char *key, char *errstr, size_t errlen)
{
    listed *vers = NULL;
    size_t nv = 0;
    ts_status st = list_versions(idx, &vers, &nv, errstr, errlen);
    uint64_t top = nv ? vers[0].version : 0;
    free(vers);
    if (!st && idx->leader_epoch >= 0 && top) st = check_not_fenced(idx, top, errstr, errlen);
    if (st == TS_E_FENCED) return st;
    if (st) {
        ts_err_prefix(errstr, errlen, st,
                      "index %s/%" PRId32 ": %s is taken by a different "
                      "manifest and listing failed",
                      idx->topic, idx->partition, key);
        return st;
    }
    uint64_t next = (top > idx->version ? top : idx->version) + 1;
    ts_log_warn(LOG_MOD,
                "%s/%" PRId32 ": %s already holds a different manifest; writing "
                "version %" PRIu64 " instead (objects are never overwritten)",
                idx->topic, idx->partition, key, next);
    pthread_mutex_lock(&idx->mu);
    idx->version = next;
    pthread_mutex_unlock(&idx->mu);
    return TS_OK;
}

/* One attempt to put the head at idx->version (If-None-Match). TS_OK with
 * *again set when that version was taken and idx->version moved past it;
 * TS_OK with *again clear when the head is durable (ours, or the same bytes
 * already there). */
static ts_status put_head_version(ts_index *idx, ts_segment_meta *tail, uint64_t *added,
                                  int *again, char *errstr, size_t errlen)
{
    char key[TS_INDEX_KEY_MAX];
    proposal p;
    current_proposal(idx, tail, added, &p);
    ts_manifest_doc d;
    char *json = NULL;
    size_t len = 0;
    head_doc(idx, &p, 0, &d);
    ts_status st = ts_manifest_render(&d, &json, &len, errstr, errlen);
    if (st) return st;
    ts_index_manifest_key(idx->topic, idx->partition, idx->version, key, sizeof(key));
    st = put_retry(idx, key, json, len, errstr, errlen);
    if (st == TS_E_EXISTS) {
        if (same_as_existing(idx, key, json, len)) {
            st = TS_OK;
        } else {
            free(json);
            st = skip_foreign_version(idx, key, errstr, errlen);
            *again = !st;
            return st;
        }
    }
    free(json);
    if (st)
        ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": put of manifest %s failed",
                      idx->topic, idx->partition, key);
    return st;
}

/* Makes the current version durable in the bucket: pieces first, then the
 * head, at the first version no foreign manifest holds; then records that
 * locally and hands out the keys waiting for deletion (take_pending). */
static ts_status push_remote(ts_index *idx, char ***take_pending, size_t *ntaken, char *errstr,
                             size_t errlen)
{
    ts_status st = TS_OK;
    char err[256];
    if (idx->version == idx->remote_version) {
        /* Already durable: only hand out keys, if any wait. */
        if (take_pending && idx->npending) {
            pthread_mutex_lock(&idx->mu);
            take_pending_locked(idx, take_pending, ntaken);
            pthread_mutex_unlock(&idx->mu);
            if (write_local(idx, err, sizeof(err)))
                ts_log_warn(LOG_MOD, "%s/%" PRId32 ": cannot clear pending deletions locally "
                            "(they will be handed out again; deleting twice is harmless): %s",
                            idx->topic, idx->partition, err);
        }
        return TS_OK;
    }
    if ((st = check_gap_not_fenced(idx, errstr, errlen))) return st;
    /* Pieces first: no head ever names a piece that is not in the bucket. */
    if ((st = push_pieces(idx, errstr, errlen))) return st;
    ts_segment_meta *tail;
    uint64_t *added;
    if (current_tail(idx, &tail, &added, 0))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    for (int bump = 0;; bump++) {
        if (bump > MAX_VERSION_BUMPS) {
            st = ts_err_set(errstr, errlen, TS_E_REMOTE,
                            "index %s/%" PRId32 ": manifest versions keep colliding with "
                            "foreign objects under %s; is another writer active?",
                            idx->topic, idx->partition, idx->manifest_prefix);
            break;
        }
        int again = 0;
        st = put_head_version(idx, tail, added, &again, errstr, errlen);
        if (st || !again) break;
    }
    free(tail);
    free(added);
    if (st) return st;

    pthread_mutex_lock(&idx->mu);
    idx->remote_version = idx->version;
    if (take_pending) take_pending_locked(idx, take_pending, ntaken);
    pthread_mutex_unlock(&idx->mu);

    /* Record remote durability locally. If this write fails, a restart
     * merely believes the version is not durable and re-puts it, which then
     * finds the same content (TS_E_EXISTS, same) and is done. */
    if (write_local(idx, err, sizeof(err)))
        ts_log_warn(LOG_MOD, "%s/%" PRId32 ": remote manifest v%" PRIu64
                    " is durable but recording that locally failed: %s",
                    idx->topic, idx->partition, idx->version, err);
    cleanup_old_versions(idx, idx->version);
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------ */

typedef struct built {
    ts_index_entry *e;
    size_t n, cap;
    size_t tail_start;
    tail_detail *td;
    size_t ntd; /* entries of td (their envelopes are owned) */
    side_ent *side;
    size_t nside, side_cap;
    int64_t pmax;
} built;

static void built_free(built *b)
{
    free(b->e);
    td_free_envs(b->td, b->ntd);
    free(b->td);
    side_free_all(b->side, b->nside);
    memset(b, 0, sizeof(*b));
}

static ts_status built_add(const ts_index *idx, built *b, const ts_segment_meta *s)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        ts_index_entry *ne = realloc(b->e, nc * sizeof(*ne));
        if (!ne) return TS_E_NOMEM;
        b->e = ne;
        b->cap = nc;
    }
    side_ent side;
    int has_side;
    ts_status st = make_entry(idx, s, b->n ? b->pmax : INT64_MIN, &b->e[b->n], &side, &has_side);
    if (st) return st;
    if (has_side) {
        if (b->nside == b->side_cap) {
            size_t nc = b->side_cap ? b->side_cap * 2 : 16;
            side_ent *ns = realloc(b->side, nc * sizeof(*ns));
            if (!ns) {
                free(side.key);
                free(side.chunks);
                return TS_E_NOMEM;
            }
            b->side = ns;
            b->side_cap = nc;
        }
        b->side[b->nside++] = side;
    }
    b->pmax = b->e[b->n].max_timestamp;
    b->n++;
    return TS_OK;
}

/* Builds the resident state of a head (format 1 or 2) piece by piece, so
 * that only one parsed piece is in memory at a time: build_piece for each
 * piece in order, then build_tail. Entries of pieces below the head's log
 * start are left out (retention already removed them; the piece stays
 * until wholly expired). */
static ts_status build_piece(const ts_index *idx, const ts_manifest_doc *head,
                             const ts_manifest_doc *pd, built *b)
{
    ts_status st = TS_OK;
    for (size_t i = 0; !st && i < pd->n; i++)
        if (pd->segs[i].last_offset >= head->log_start_offset) st = built_add(idx, b, &pd->segs[i]);
    return st;
}

static ts_status build_tail(const ts_index *idx, const ts_manifest_doc *head, int all_durable,
                            built *b)
{
    ts_status st = TS_OK;
    b->tail_start = b->n;
    if (head->n && !(b->td = calloc(head->n, sizeof(*b->td)))) st = TS_E_NOMEM;
    if (!st) b->ntd = head->n;
    for (size_t i = 0; !st && i < head->n; i++) {
        const ts_segment_meta *s = &head->segs[i];
        st = built_add(idx, b, s);
        b->td[i].max_ts = s->max_timestamp;
        b->td[i].upload_time_ms = s->upload_time_ms;
        b->td[i].seg_crc = s->segment_crc32c;
        if (!st) st = td_envelope_set(&b->td[i], s);
        b->td[i].added = all_durable || !head->added_versions ? head->version
                                                              : head->added_versions[i];
    }
    if (!st && b->cap > b->n + 1024) { /* shrink to fit: load once, then grow slowly */
        ts_index_entry *e = realloc(b->e, (b->n + 1024) * sizeof(*e));
        if (e) {
            b->e = e;
            b->cap = b->n + 1024;
        }
    }
    return st;
}

/* Checks a parsed piece against the head's description of it. */
static ts_status check_piece(const ts_index *idx, const ts_manifest_piece *pc,
                             const ts_manifest_doc *pd, char *errstr, size_t errlen)
{
    if (pd->format != TS_MANIFEST_FORMAT_2 || pd->kind != TS_MANIFEST_PIECE ||
        strcmp(pd->topic, idx->topic) || pd->partition != idx->partition ||
        pd->piece_base != pc->base_offset || pd->piece_last != pc->last_offset ||
        pd->n != pc->count)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "piece %s is not the piece its head describes (kind, partition, "
                          "range or count differ)",
                          pc->key);
    return TS_OK;
}

static ts_status parse_piece_bytes(const ts_index *idx, const ts_manifest_piece *pc,
                                   const uint8_t *data, size_t len, ts_manifest_doc *pd,
                                   char *errstr, size_t errlen)
{
    memset(pd, 0, sizeof(*pd));
    if (len != pc->bytes || ts_crc32c(0, data, len) != pc->crc32c)
        return ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                          "piece %s: %zu bytes / CRC-32C differ from its head's %" PRIu64
                          " bytes / 0x%08" PRIx32,
                          pc->key, len, pc->bytes, pc->crc32c);
    ts_status st = ts_manifest_parse((const char *)data, len, 0, pd, errstr, errlen);
    if (st) return ts_err_prefix(errstr, errlen, st, "piece %s", pc->key);
    return check_piece(idx, pc, pd, errstr, errlen);
}


/* Installs a built state and the head's metadata. Caller holds wmu. */
static void install(ts_index *idx, built *b, ts_manifest_doc *d, int all_durable)
{
    pthread_mutex_lock(&idx->mu);
    free(idx->e);
    td_free_envs(idx->td, idx->n - idx->tail_start);
    free(idx->td);
    side_free_all(idx->side, idx->nside);
    free(idx->pieces);
    idx->e = b->e;
    idx->n = b->n;
    idx->cap = b->cap;
    idx->raw_total = idx->stored_total = 0;
    for (size_t i = 0; i < idx->n; i++) {
        idx->raw_total += idx->e[i].size_bytes;
        idx->stored_total += idx->e[i].stored_bytes;
    }
    idx->tail_start = b->tail_start;
    idx->td = b->td;
    idx->td_cap = b->n - b->tail_start;
    idx->side = b->side;
    idx->nside = b->nside;
    memset(b, 0, sizeof(*b));
    idx->pieces = d->pieces;
    idx->np = d->npieces;
    for (size_t i = 0; all_durable && i < idx->np; i++) idx->pieces[i].added_version = d->version;
    d->pieces = NULL;
    d->npieces = 0;
    idx->log_start = d->log_start_offset;
    free(idx->epochs);
    idx->epochs = d->epochs;
    idx->nepochs = d->nepochs;
    d->epochs = NULL;
    d->nepochs = 0;
    idx->version = d->version;
    idx->remote_version = all_durable ? d->version : d->remote_version;
    if (d->local) {
        free_keys(idx->pending, idx->npending);
        idx->pending = d->pending_deletes;
        idx->npending = d->npending;
        d->pending_deletes = NULL;
        d->npending = 0;
        free_keys(idx->dropped, idx->ndropped);
        free(idx->dropped_v);
        idx->dropped = d->dropped;
        idx->dropped_v = d->dropped_versions;
        idx->ndropped = d->ndropped;
        d->dropped = NULL;
        d->dropped_versions = NULL;
        d->ndropped = 0;
    } else {
        /* Keys still referenced by the adopted manifest must not be
         * deleted; the others stay pending. */
        size_t k = 0;
        for (size_t i = 0; i < idx->npending; i++) {
            int referenced = 0;
            char key[TS_INDEX_KEY_MAX];
            for (size_t j = 0; j < idx->n && !referenced; j++) {
                entry_key(idx, &idx->e[j], key, sizeof(key));
                referenced = !strcmp(idx->pending[i], key);
            }
            if (referenced)
                free(idx->pending[i]);
            else
                idx->pending[k++] = idx->pending[i];
        }
        idx->npending = k;
    }
    pthread_mutex_unlock(&idx->mu);
}

/* Removes local piece files the head does not name (written before a crash
 * that lost their head, or dropped by retention). Best-effort. */
static void prune_local_pieces(ts_index *idx, const ts_manifest_piece *pieces, size_t np)
{
    DIR *dir = opendir(idx->pieces_dir);
    if (!dir) return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.') continue;
        int named = 0;
        for (size_t i = 0; i < np && !named; i++)
            named = !strcmp(piece_basename(idx, pieces[i].key), de->d_name);
        if (named) continue;
        char path[sizeof(idx->pieces_dir) + 300];
        snprintf(path, sizeof(path), "%s/%s", idx->pieces_dir, de->d_name);
        unlink(path);
    }
    closedir(dir);
}

ts_status ts_index_load_local(ts_index *idx, char *errstr, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_manifest_doc d;
    built b;
    memset(&d, 0, sizeof(d));
    memset(&b, 0, sizeof(b));
    pthread_mutex_lock(&idx->wmu);
    ts_status st = ts_fs_read_all(idx->local_path, TS_MANIFEST_MAX_BYTES, &data, &len, errstr,
                                  errlen);
    if (st) goto fail;
    if ((st = ts_manifest_parse((const char *)data, len, 1, &d, errstr, errlen))) goto fail;
    free(data);
    data = NULL;
    if (strcmp(d.topic, idx->topic) || d.partition != idx->partition ||
        d.kind != TS_MANIFEST_HEAD) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "describes %s/%" PRId32 ", not this partition",
                        d.topic, d.partition);
        goto fail;
    }
    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i < d.npieces; i++) {
        char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
        ts_manifest_doc pd;
        memset(&pd, 0, sizeof(pd));
        piece_path(idx, d.pieces[i].key, path, sizeof(path));
        if ((st = ts_fs_read_all(path, TS_MANIFEST_MAX_BYTES, &data, &len, errstr, errlen)) ||
            (st = parse_piece_bytes(idx, &d.pieces[i], data, len, &pd, errstr, errlen))) {
            /* A missing or damaged piece makes the local copy unusable: the
             * caller recovers from the bucket as for a damaged head. */
            ts_manifest_doc_free(&pd);
            st = ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "local piece %s", path);
            goto fail;
        }
        free(data);
        data = NULL;
        st = build_piece(idx, &d, &pd, &b);
        ts_manifest_doc_free(&pd);
        if (st) {
            ts_err_set(errstr, errlen, st, "out of memory");
            goto fail;
        }
    }
    if ((st = build_tail(idx, &d, 0, &b))) {
        ts_err_set(errstr, errlen, st, "out of memory");
        goto fail;
    }
    install(idx, &b, &d, 0);
    ts_manifest_doc_free(&d);
    pthread_mutex_unlock(&idx->wmu);
    return TS_OK;
fail:
    built_free(&b);
    ts_manifest_doc_free(&d);
    free(data);
    pthread_mutex_unlock(&idx->wmu);
    if (st == TS_E_NOT_FOUND) return st; /* the message from read_all says which file */
    return ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": local manifest %s",
                         idx->topic, idx->partition, idx->local_path);
}

ts_status ts_index_set_aside_local(ts_index *idx, char *aside, size_t aside_len, char *errstr,
                                   size_t errlen)
{
    pthread_mutex_lock(&idx->wmu);
    int n = snprintf(aside, aside_len, "%s.corrupt-%" PRId64, idx->local_path, ts_now_ms());
    ts_status st = TS_OK;
    if (n < 0 || (size_t)n >= aside_len)
        st = ts_err_set(errstr, errlen, TS_E_INVAL, "index %s/%" PRId32 ": path too long",
                        idx->topic, idx->partition);
    else if (rename(idx->local_path, aside) != 0)
        st = ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                        "index %s/%" PRId32 ": cannot move %s aside to %s: %s", idx->topic,
                        idx->partition, idx->local_path, aside, strerror(errno));
    else
        st = ts_fs_fsync_dir(idx->local_dir, errstr, errlen);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

ts_status ts_index_restore_local(ts_index *idx, const char *aside, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&idx->wmu);
    ts_status st = TS_OK;
    if (rename(aside, idx->local_path) != 0)
        st = ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                        "index %s/%" PRId32 ": cannot move %s back to %s: %s", idx->topic,
                        idx->partition, aside, idx->local_path, strerror(errno));
    else
        st = ts_fs_fsync_dir(idx->local_dir, errstr, errlen);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* Parallel GETs of a head's pieces (cold open). Each worker takes the next
 * index; results land in per-piece slots. */
#define FETCH_THREADS 8

typedef struct piece_fetch {
    ts_index *idx;
    const ts_manifest_piece *pieces;
    size_t np;
    uint8_t **bytes;
    size_t *lens;
    ts_status *sts;
    char (*whys)[256];
    size_t next; /* __atomic */
} piece_fetch;

static void *fetch_worker(void *arg)
{
    piece_fetch *f = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
        if (i >= f->np) return NULL;
        f->sts[i] = get_retry(f->idx, f->pieces[i].key, &f->bytes[i], &f->lens[i], f->whys[i],
                              sizeof(f->whys[i]));
    }
}

static void fetch_free(piece_fetch *f)
{
    for (size_t i = 0; f->bytes && i < f->np; i++) free(f->bytes[i]);
    free(f->bytes);
    free(f->lens);
    free(f->sts);
    free(f->whys);
    memset(f, 0, sizeof(*f));
}

static ts_status fetch_pieces(ts_index *idx, const ts_manifest_piece *pieces, size_t np,
                              piece_fetch *f)
{
    memset(f, 0, sizeof(*f));
    f->idx = idx;
    f->pieces = pieces;
    f->np = np;
    f->bytes = calloc(np, sizeof(*f->bytes));
    f->lens = calloc(np, sizeof(*f->lens));
    f->sts = calloc(np, sizeof(*f->sts));
    f->whys = calloc(np, sizeof(*f->whys));
    if (!f->bytes || !f->lens || !f->sts || !f->whys) {
        fetch_free(f);
        return TS_E_NOMEM;
    }
    pthread_t th[FETCH_THREADS];
    size_t nth = 0;
    while (nth < FETCH_THREADS && nth + 1 < np && pthread_create(&th[nth], NULL, fetch_worker, f) == 0)
        nth++;
    fetch_worker(f); /* this thread works too (and alone when threads fail) */
    for (size_t t = 0; t < nth; t++) pthread_join(th[t], NULL);
    return TS_OK;
}

/* Gets and parses head `version` into *d and checks it is the head its key
 * names. Statuses as adopt_remote_version's. */
static ts_status fetch_head_doc(ts_index *idx, uint64_t version, uint64_t size, ts_manifest_doc *d,
                                char *why, size_t whylen, char *errstr, size_t errlen)
{
    char key[TS_INDEX_KEY_MAX];
    ts_index_manifest_key(idx->topic, idx->partition, version, key, sizeof(key));
    if (size > TS_MANIFEST_MAX_BYTES) {
        snprintf(why, whylen, "%" PRIu64 " bytes is above the %d-byte cap", size,
                 TS_MANIFEST_MAX_BYTES);
        return TS_E_CORRUPT;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    ts_status st = get_retry(idx, key, &data, &len, why, whylen);
    if (st) {
        if (ts_status_is_retriable(st) || st == TS_E_NOT_FOUND) return TS_E_CORRUPT;
        return ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": get %s: %s", idx->topic,
                          idx->partition, key, why);
    }
    st = ts_manifest_parse((const char *)data, len, 0, d, why, whylen);
    free(data);
    if (st) return TS_E_CORRUPT;
    if (strcmp(d->topic, idx->topic) || d->partition != idx->partition || d->version != version ||
        d->kind != TS_MANIFEST_HEAD) {
        snprintf(why, whylen, "describes %s/%" PRId32 " version %" PRIu64 ", not what its key says",
                 d->topic, d->partition, d->version);
        return TS_E_CORRUPT;
    }
    return TS_OK;
}

/* Piece i of head d, already fetched into pf: check, parse, add its entries
 * to b, write its local file (pieces before the head that names them),
 * free its bytes. Statuses as adopt_remote_version's. */
static ts_status adopt_piece(ts_index *idx, const ts_manifest_doc *d, size_t i, piece_fetch *pf,
                             built *b, char *why, size_t whylen, char *errstr, size_t errlen)
{
    uint8_t *pb = pf->bytes[i];
    size_t plen = pf->lens[i];
    pf->bytes[i] = NULL;
    ts_manifest_doc pd;
    memset(&pd, 0, sizeof(pd));
    ts_status st = pf->sts[i];
    if (st) {
        snprintf(why, whylen, "%s", pf->whys[i]);
        if (ts_status_is_retriable(st) || st == TS_E_NOT_FOUND) {
            ts_err_prefix(why, whylen, st, "its piece %s", d->pieces[i].key);
            return TS_E_CORRUPT;
        }
        return ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": get %s: %s", idx->topic,
                          idx->partition, d->pieces[i].key, why);
    }
    if (parse_piece_bytes(idx, &d->pieces[i], pb, plen, &pd, why, whylen)) {
        ts_manifest_doc_free(&pd);
        free(pb);
        return TS_E_CORRUPT;
    }
    st = build_piece(idx, d, &pd, b);
    ts_manifest_doc_free(&pd);
    char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
    piece_path(idx, d->pieces[i].key, path, sizeof(path));
    if (st)
        ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": out of memory", idx->topic,
                   idx->partition);
    else if (!idx->memory_only && !(st = ts_fs_mkdirs(idx->pieces_dir, errstr, errlen)))
        st = ts_fs_write_atomic(path, pb, plen, errstr, errlen);
    free(pb);
    return st;
}

/* Reads one head version and its pieces from the bucket, installs it as
 * fully remote-durable and writes it locally (pieces first). `why` gets the
 * reason when the version is unusable (TS_E_CORRUPT / not found); other
 * statuses are returned as they are. Caller holds wmu. */
static ts_status adopt_remote_version(ts_index *idx, uint64_t version, uint64_t size,
                                      char *why, size_t whylen, char *errstr, size_t errlen)
{
    ts_manifest_doc d;
    memset(&d, 0, sizeof(d));
    piece_fetch pf;
    memset(&pf, 0, sizeof(pf));
    built b;
    memset(&b, 0, sizeof(b));
    ts_status st = fetch_head_doc(idx, version, size, &d, why, whylen, errstr, errlen);
    if (st) goto out;
    size_t np = d.npieces;
    /* The GETs run in parallel (the cold-open latency is one round trip per
     * FETCH_THREADS pieces, not per piece); then one piece at a time. */
    if (np && (st = fetch_pieces(idx, d.pieces, np, &pf))) {
        ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": out of memory", idx->topic,
                   idx->partition);
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        if ((st = adopt_piece(idx, &d, i, &pf, &b, why, whylen, errstr, errlen))) goto out;
    if ((st = build_tail(idx, &d, 1, &b))) {
        ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": out of memory", idx->topic,
                   idx->partition);
        goto out;
    }
    install(idx, &b, &d, 1);
    st = write_local(idx, errstr, errlen);
out:
    fetch_free(&pf);
    built_free(&b);
    ts_manifest_doc_free(&d);
    return st;
}

ts_status ts_index_load_remote(ts_index *idx, char *errstr, size_t errlen)
{
    if (!idx->os)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "index %s/%" PRId32 ": no object store to load a manifest from",
                          idx->topic, idx->partition);
    pthread_mutex_lock(&idx->wmu);
    listed *vers = NULL;
    size_t nv = 0;
    ts_status st = list_versions(idx, &vers, &nv, errstr, errlen);
    if (st) {
        pthread_mutex_unlock(&idx->wmu);
        return ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": listing %s failed",
                             idx->topic, idx->partition, idx->manifest_prefix);
    }
    if (nv == 0) {
        pthread_mutex_unlock(&idx->wmu);
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "index %s/%" PRId32 ": the bucket holds no manifest under %s",
                          idx->topic, idx->partition, idx->manifest_prefix);
    }
    /* Newest first; a version that cannot be read or parsed (or one of
     * whose pieces cannot) is skipped with a warning: a torn or damaged
     * object must not make the partition unrecoverable while an older
     * intact version exists. */
    char key[TS_INDEX_KEY_MAX], why[512] = "";
    size_t skipped = 0;
    st = TS_E_CORRUPT;
    for (size_t i = 0; i < nv; i++) {
        ts_index_manifest_key(idx->topic, idx->partition, vers[i].version, key, sizeof(key));
        why[0] = '\0';
        st = adopt_remote_version(idx, vers[i].version, vers[i].size, why, sizeof(why), errstr,
                                  errlen);
        if (st != TS_E_CORRUPT) {
            if (!st && skipped)
                ts_log_warn(LOG_MOD,
                            "%s/%" PRId32 ": recovered from manifest v%" PRIu64
                            " after skipping %zu newer unreadable version(s)",
                            idx->topic, idx->partition, vers[i].version, skipped);
            break;
        }
        skipped++;
        ts_log_warn(LOG_MOD, "%s/%" PRId32 ": skipping remote manifest %s: %s", idx->topic,
                    idx->partition, key, why);
    }
    if (st == TS_E_CORRUPT && skipped == nv)
        ts_err_set(errstr, errlen, TS_E_CORRUPT,
                   "index %s/%" PRId32 ": none of the %zu manifests under %s is readable "
                   "(last: %s: %s); inspect them with `jq`",
                   idx->topic, idx->partition, nv, idx->manifest_prefix, key, why);
    free(vers);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

ts_status ts_index_refresh_remote(ts_index *idx, int *changed, char *errstr, size_t errlen)
{
    *changed = 0;
    if (!idx->os) return ts_index_load_remote(idx, errstr, errlen);
    pthread_mutex_lock(&idx->wmu);
    listed *vers = NULL;
    size_t nv = 0;
    ts_status st = list_versions(idx, &vers, &nv, errstr, errlen);
    uint64_t top = nv ? vers[0].version : 0;
    free(vers);
    int same = top && top == idx->version && idx->remote_version == idx->version;
    pthread_mutex_unlock(&idx->wmu);
    if (st) return st;
    if (!top)
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "index %s/%" PRId32 ": the bucket holds no manifest under %s",
                          idx->topic, idx->partition, idx->manifest_prefix);
    if (same) return TS_OK;
    st = ts_index_load_remote(idx, errstr, errlen);
    if (!st) *changed = 1;
    return st;
}

/* ------------------------------------------------------------------------
 * Mutations
 * ------------------------------------------------------------------------ */

/* Epochs base[0..nbase) with those of a new segment merged in (each epoch
 * above the latest joins, starting at max(its start, the segment base)).
 * *out malloc'd (NULL when none). */
static ts_status merge_epochs(const ts_index_epoch *base, size_t nbase, const ts_segment_meta *seg,
                              const ts_index_epoch *add, size_t nadd, ts_index_epoch **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (nbase + nadd == 0) return TS_OK;
    ts_index_epoch *v = malloc((nbase + nadd) * sizeof(*v));
    if (!v) return TS_E_NOMEM;
    size_t k = nbase;
    if (k) memcpy(v, base, k * sizeof(*v));
    for (size_t i = 0; i < nadd; i++) {
        if (k && add[i].epoch <= v[k - 1].epoch) continue;
        if (k >= TS_INDEX_MAX_EPOCHS) break;
        int64_t start = add[i].start_offset > seg->base_offset ? add[i].start_offset
                                                               : seg->base_offset;
        if (k && start < v[k - 1].start_offset) start = v[k - 1].start_offset;
        v[k].epoch = add[i].epoch;
        v[k++].start_offset = start;
    }
    *out = v;
    *n = k;
    return TS_OK;
}

/* The head's epochs after a group: each entry's merged in, in order.
 * *out malloc'd (NULL when none). wmu held. */
static ts_status group_epochs(const ts_index *idx, const ts_index_add_item *items, size_t k,
                              ts_index_epoch **out, size_t *n)
{
    const ts_index_epoch *cur = idx->epochs;
    size_t ncur = idx->nepochs;
    ts_index_epoch *mine = NULL;
    for (size_t i = 0; i < k; i++) {
        ts_index_epoch *next;
        size_t nnext;
        ts_status st = merge_epochs(cur, ncur, items[i].seg, items[i].epochs, items[i].nepochs,
                                    &next, &nnext);
        free(mine); /* merge_epochs copied it */
        if (st) return st;
        cur = mine = next;
        ncur = nnext;
    }
    *out = mine;
    *n = ncur;
    return TS_OK;
}

ts_status ts_index_add(ts_index *idx, const ts_segment_meta *seg, char *errstr, size_t errlen)
{
    return ts_index_add_epochs(idx, seg, NULL, 0, errstr, errlen);
}

/* What an entry must be to join any manifest (before the index is looked
 * at). */
static ts_status check_segment(const ts_segment_meta *seg, const char *what, char *errstr,
                               size_t errlen)
{
    if (ts_manifest_check_segment(seg, what, errstr, errlen)) return TS_E_INVAL;
    if (!seg->chunk_table_len && !seg->chunks)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "%s: no chunk table", what);
    if (seg->sealed && !seg->key_id[0])
        return ts_err_set(errstr, errlen, TS_E_INVAL, "%s: sealed without a key id", what);
    return TS_OK;
}

/* Why seg cannot join the manifest at position pos (the first entry whose
 * base is not below seg's), or TS_OK. wmu held. */
static ts_status check_new_entry(const ts_index *idx, const ts_segment_meta *seg, size_t pos,
                                 const char *what, char *errstr, size_t errlen)
{
    if (pos < idx->n && idx->e[pos].base_offset == seg->base_offset) {
        char k[TS_INDEX_KEY_MAX];
        entry_key(idx, &idx->e[pos], k, sizeof(k));
        return ts_err_set(errstr, errlen, TS_E_EXISTS,
                          "%s is already in the manifest (object %s); delete the orphan %s", what,
                          k, seg->object_key);
    }
    if (seg->last_offset < idx->log_start)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s ends at %" PRId64 ", below the log start offset %" PRId64
                          " (already removed by retention)",
                          what, seg->last_offset, idx->log_start);
    const ts_index_entry *prev = pos > 0 ? &idx->e[pos - 1] : NULL;
    const ts_index_entry *next = pos < idx->n ? &idx->e[pos] : NULL;
    if ((prev && prev->last_offset >= seg->base_offset) ||
        (next && next->base_offset <= seg->last_offset)) {
        const ts_index_entry *o = prev && prev->last_offset >= seg->base_offset ? prev : next;
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s [%" PRId64 "..%" PRId64 "] overlaps the entry [%" PRId64
                          "..%" PRId64 "]",
                          what, seg->base_offset, seg->last_offset, o->base_offset,
                          o->last_offset);
    }
    if (pos < idx->tail_start ||
        (idx->np && seg->base_offset <= idx->pieces[idx->np - 1].last_offset))
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "%s lies below the newest piece (ends at %" PRId64
                          "): pieces are immutable, entries only join the head's tail",
                          what, idx->np ? idx->pieces[idx->np - 1].last_offset : -1);
    if (idx->n >= TS_MANIFEST_MAX_SEGMENTS)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "%s: the manifest already holds %d entries",
                          what, TS_MANIFEST_MAX_SEGMENTS);
    return TS_OK;
}

static void segment_what(const ts_index *idx, const ts_segment_meta *seg, char *out, size_t len)
{
    snprintf(out, len, "index %s/%" PRId32 ": segment %" PRId64, idx->topic, idx->partition,
             seg->base_offset);
}

/* The longest prefix of items that joins as one group: every entry passes
 * the checks, all go in at one place of the array (no existing entry
 * between them) and each starts after the one before. *pos receives that
 * place. 0 when the first cannot join (*st and errstr say why); a later
 * one that cannot just ends the group (the caller adds it again, alone,
 * and learns why). wmu held. */
static size_t group_prefix(const ts_index *idx, const ts_index_add_item *items, size_t n,
                           size_t *pos, ts_status *st, char *errstr, size_t errlen)
{
    char what[96], scratch[256];
    segment_what(idx, items[0].seg, what, sizeof(what));
    *pos = lower_bound_base(idx, items[0].seg->base_offset);
    *st = check_segment(items[0].seg, what, errstr, errlen);
    if (!*st) *st = check_new_entry(idx, items[0].seg, *pos, what, errstr, errlen);
    if (*st) return 0;
    size_t k = 1;
    for (; k < n && idx->n + k < TS_MANIFEST_MAX_SEGMENTS; k++) {
        const ts_segment_meta *seg = items[k].seg;
        segment_what(idx, seg, what, sizeof(what));
        if (seg->base_offset <= items[k - 1].seg->last_offset ||
            lower_bound_base(idx, seg->base_offset) != *pos ||
            check_segment(seg, what, scratch, sizeof(scratch)) ||
            check_new_entry(idx, seg, *pos, what, scratch, sizeof(scratch)))
            break;
    }
    return k;
}

/* One entry of a group, prepared. */
typedef struct add_one {
    ts_index_entry ne;         /* the resident entry */
    side_ent side;             /* its side entry (key, chunk table), when it has one */
    int has_side;
    tail_env *env;             /* its envelope (sealed) */
} add_one;

/* Everything an add prepares before the local file names its entries, so
 * that the in-memory commit after it cannot fail. */
typedef struct add_plan {
    size_t pos;                /* where the group goes in idx->e */
    size_t k;                  /* its entries, in offset order */
    add_one *one;              /* k of them */
    ts_segment_meta *tail;     /* the new tail, the group inserted at tp */
    uint64_t *added;
    size_t ntail, tp, off;     /* tail length; group's place; first entry left after spilling */
    ts_manifest_piece *newp;   /* the pieces after the add: old ones, then nspill new */
    size_t nspill;
    ts_index_epoch *neps;      /* the head's epochs after the add */
    size_t nneps;
} add_plan;

/* The resident entries, side entries and envelopes of the group. wmu
 * held. */
static ts_status prepare_entries(const ts_index *idx, const ts_index_add_item *items, add_plan *a)
{
    if (!(a->one = calloc(a->k, sizeof(*a->one)))) return TS_E_NOMEM;
    int64_t prev_max = a->pos ? idx->e[a->pos - 1].max_timestamp : INT64_MIN;
    for (size_t i = 0; i < a->k; i++) {
        const ts_segment_meta *seg = items[i].seg;
        add_one *o = &a->one[i];
        ts_status st = make_entry(idx, seg, prev_max, &o->ne, &o->side, &o->has_side);
        if (!st && seg->sealed) {
            tail_detail t = {0};
            st = td_envelope_set(&t, seg);
            o->env = t.env;
        }
        if (st) return st;
        prev_max = o->ne.max_timestamp;
    }
    return TS_OK;
}

/* Prepare: capacity, the entries and the views first; then the new tail,
 * whose oldest entries become pieces (written locally before the head
 * that names them) while it is fuller than head_segments. wmu held. */
static ts_status prepare_add(ts_index *idx, const ts_index_add_item *items, const char *what,
                             add_plan *a, char *errstr, size_t errlen)
{
    size_t pos = a->pos, k = a->k, ntail = idx->n - idx->tail_start;
    pthread_mutex_lock(&idx->mu); /* realloc may move what lookups read */
    ts_status st = reserve_entries(idx, idx->n + k);
    if (!st) st = reserve_td(idx, ntail + k);
    pthread_mutex_unlock(&idx->mu);
    if (!st) st = prepare_entries(idx, items, a);
    if (!st) st = current_tail(idx, &a->tail, &a->added, k);
    if (!st) st = group_epochs(idx, items, k, &a->neps, &a->nneps);
    size_t H = idx->head_segments;
    if (!st && !(a->newp = malloc((idx->np + (ntail + k) / H + 1) * sizeof(*a->newp))))
        st = TS_E_NOMEM;
    if (st) return ts_err_set(errstr, errlen, TS_E_NOMEM, "%s: out of memory", what);
    size_t tp = a->tp = pos - idx->tail_start;
    memmove(a->tail + tp + k, a->tail + tp, (ntail - tp) * sizeof(*a->tail));
    memmove(a->added + tp + k, a->added + tp, (ntail - tp) * sizeof(*a->added));
    for (size_t i = 0; i < k; i++) {
        a->tail[tp + i] = *items[i].seg;
        a->added[tp + i] = idx->version + 1;
    }
    a->ntail = ntail + k;
    if (idx->np) memcpy(a->newp, idx->pieces, idx->np * sizeof(*a->newp));
    while (a->ntail - a->off > H) {
        st = make_piece(idx, a->tail + a->off, H, a->neps, a->nneps, idx->version + 1,
                        &a->newp[idx->np + a->nspill], errstr, errlen);
        if (st) return st;
        a->nspill++;
        a->off += H;
    }
    return TS_OK;
}

/* The prepared add in memory: the entries, their tail details, the running
 * maxima after them, the spilled entries out of the tail, the new pieces
 * and epochs, the next version (one for the group). Cannot fail. Caller
 * holds wmu and mu. */
static void commit_add_locked(ts_index *idx, const ts_index_add_item *items, add_plan *a)
{
    size_t pos = a->pos, k = a->k, tp = a->tp, ntail = a->ntail, off = a->off;
    tail_detail *td = idx->td;
    memmove(idx->e + pos + k, idx->e + pos, (idx->n - pos) * sizeof(*idx->e));
    memmove(td + tp + k, td + tp, (ntail - k - tp) * sizeof(*td));
    for (size_t i = 0; i < k; i++) {
        const ts_segment_meta *seg = items[i].seg;
        add_one *o = &a->one[i];
        idx->e[pos + i] = o->ne;
        idx->raw_total += o->ne.size_bytes;
        idx->stored_total += o->ne.stored_bytes;
        if (o->has_side && side_insert(idx, &o->side) == TS_OK) o->has_side = 0;
        td[tp + i].max_ts = seg->max_timestamp;
        td[tp + i].upload_time_ms = seg->upload_time_ms;
        td[tp + i].added = idx->version + 1;
        td[tp + i].seg_crc = seg->segment_crc32c;
        td[tp + i].pad = 0;
        td[tp + i].env = o->env; /* allocated while preparing */
        o->env = NULL;
    }
    idx->n += k;
    for (size_t i = pos + 1; i < idx->n; i++) { /* running maxima after the first new entry */
        int64_t m = td[i - idx->tail_start].max_ts;
        idx->e[i].max_timestamp = m > idx->e[i - 1].max_timestamp ? m : idx->e[i - 1].max_timestamp;
    }
    if (off) {
        td_free_envs(td, off); /* these entries now live in pieces */
        memmove(td, td + off, (ntail - off) * sizeof(*td));
        idx->tail_start += off;
    }
    free(idx->pieces);
    idx->pieces = a->newp;
    idx->np += a->nspill;
    a->newp = NULL;
    a->nspill = 0;
    free(idx->epochs);
    idx->epochs = a->neps;
    idx->nepochs = a->nneps;
    a->neps = NULL;
    idx->version++;
}

/* Frees what a plan still owns; pieces it wrote locally but no committed
 * head names are removed. wmu held. */
static void add_plan_free(ts_index *idx, add_plan *a)
{
    for (size_t i = 0; a->newp && i < a->nspill; i++)
        remove_local_piece(idx, a->newp[idx->np + i].key);
    free(a->newp);
    free(a->neps);
    free(a->tail);
    free(a->added);
    for (size_t i = 0; a->one && i < a->k; i++) {
        if (a->one[i].has_side) {
            free(a->one[i].side.key);
            free(a->one[i].side.chunks);
        }
        free(a->one[i].env);
    }
    free(a->one);
}

ts_status ts_index_add_epochs(ts_index *idx, const ts_segment_meta *seg,
                              const ts_index_epoch *epochs, size_t nepochs, char *errstr,
                              size_t errlen)
{
    ts_index_add_item item = {seg, epochs, nepochs};
    size_t added;
    return ts_index_add_group(idx, &item, 1, &added, errstr, errlen);
}

ts_status ts_index_add_group(ts_index *idx, const ts_index_add_item *items, size_t n,
                             size_t *added, char *errstr, size_t errlen)
{
    *added = 0;
    if (!n) return TS_OK;
    pthread_mutex_lock(&idx->wmu);
    add_plan a;
    memset(&a, 0, sizeof(a));
    ts_status st;
    char what[128];
    if (!(a.k = group_prefix(idx, items, n, &a.pos, &st, errstr, errlen))) goto out;
    if (a.k == 1)
        segment_what(idx, items[0].seg, what, sizeof(what));
    else
        snprintf(what, sizeof(what), "index %s/%" PRId32 ": segments %" PRId64 "..%" PRId64
                 " (%zu)", idx->topic, idx->partition, items[0].seg->base_offset,
                 items[a.k - 1].seg->base_offset, a.k);
    if ((st = prepare_add(idx, items, what, &a, errstr, errlen))) goto out;
    proposal p;
    current_proposal(idx, a.tail + a.off, a.added + a.off, &p);
    p.pieces = a.newp;
    p.np = idx->np + a.nspill;
    p.ntail = a.ntail - a.off;
    p.version = idx->version + 1;
    p.epochs = a.neps;
    p.nepochs = a.nneps;
    /* The commit point of the whole group: one local head names them all. */
    if ((st = write_local_prop(idx, &p, errstr, errlen))) goto out;

    pthread_mutex_lock(&idx->mu);
    commit_add_locked(idx, items, &a);
    pthread_mutex_unlock(&idx->mu);
    *added = a.k;
    for (size_t i = 0; i < a.k; i++)
        if (a.one[i].has_side) /* out of memory for the side table: the key or table is lost */
            ts_log_error(LOG_MOD, "%s: out of memory keeping the side entry of %" PRId64, what,
                         items[i].seg->base_offset);

    if (idx->os && (st = push_remote(idx, NULL, NULL, errstr, errlen)))
        ts_err_prefix(errstr, errlen, st,
                      "%s %s committed locally (v%" PRIu64 ") but not yet durable remotely",
                      what, a.k == 1 ? "is" : "are", idx->version);
out:
    add_plan_free(idx, &a);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* Leading leader epochs that end at or below start (the next one starts
 * there or earlier): retention drops them with the entries. */
static size_t epochs_below(const ts_index *idx, int64_t start)
{
    size_t k = 0;
    while (k + 1 < idx->nepochs && idx->epochs[k + 1].start_offset <= start) k++;
    return k;
}

/* A truncation prepared and written locally, not yet in memory: the first
 * k entries and kp pieces go, the pending list grows by the removed keys,
 * the dropped list by the removed pieces (bucket-backed indexes only). */
typedef struct trunc_plan {
    size_t k, kp;
    int64_t new_start;
    char **pending;
    size_t np;
    char **dropped;
    uint64_t *dropped_v;
    size_t nd;
} trunc_plan;

/* Builds the grown lists and writes the local file without the removed
 * entries and pieces. On failure nothing is left allocated. wmu held. */
static ts_status prepare_truncation(ts_index *idx, trunc_plan *t, char *errstr, size_t errlen)
{
    size_t k = t->k, kp = t->kp;
    ts_status st;
    t->np = idx->npending + k;
    char **pending = t->pending = malloc((t->np ? t->np : 1) * sizeof(char *));
    t->nd = idx->ndropped + (idx->os ? kp : 0);
    char **dropped = t->dropped = malloc((t->nd ? t->nd : 1) * sizeof(char *));
    uint64_t *dropped_v = t->dropped_v = malloc((t->nd ? t->nd : 1) * sizeof(uint64_t));
    ts_segment_meta *tail = NULL;
    uint64_t *added = NULL;
    size_t made = 0, madep = 0;
    int oom = !pending || !dropped || !dropped_v || current_tail(idx, &tail, &added, 0);
    for (; !oom && made < k; made++) {
        char key[TS_INDEX_KEY_MAX];
        entry_key(idx, &idx->e[made], key, sizeof(key));
        if (!(pending[idx->npending + made] = strdup(key))) oom = 1;
    }
    if (!oom && idx->os)
        for (; !oom && madep < kp; madep++) {
            if (!(dropped[idx->ndropped + madep] = strdup(idx->pieces[madep].key))) oom = 1;
            dropped_v[idx->ndropped + madep] = idx->version + 1;
        }
    if (!oom) {
        if (idx->npending) memcpy(pending, idx->pending, idx->npending * sizeof(char *));
        if (idx->ndropped) {
            memcpy(dropped, idx->dropped, idx->ndropped * sizeof(char *));
            memcpy(dropped_v, idx->dropped_v, idx->ndropped * sizeof(uint64_t));
        }
        size_t toff = k > idx->tail_start ? k - idx->tail_start : 0;
        proposal p;
        current_proposal(idx, tail + toff, added + toff, &p);
        p.pieces = idx->pieces + kp;
        p.np = idx->np - kp;
        p.ntail = idx->n - idx->tail_start - toff;
        p.log_start = t->new_start;
        p.version = idx->version + 1;
        p.pending = pending;
        p.npending = t->np;
        p.dropped = dropped;
        p.dropped_v = dropped_v;
        p.ndropped = t->nd;
        p.epochs = idx->nepochs ? idx->epochs + epochs_below(idx, t->new_start) : NULL;
        p.nepochs = idx->nepochs - epochs_below(idx, t->new_start);
        st = write_local_prop(idx, &p, errstr, errlen);
    } else {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "index %s/%" PRId32 ": out of memory",
                        idx->topic, idx->partition);
    }
    free(tail);
    free(added);
    if (st) {
        for (size_t i = 0; pending && i < made; i++) free(pending[idx->npending + i]);
        for (size_t i = 0; dropped && i < madep; i++) free(dropped[idx->ndropped + i]);
        free(pending);
        free(dropped);
        free(dropped_v);
        t->pending = t->dropped = NULL;
        t->dropped_v = NULL;
    }
    return st;
}

/* The prepared truncation in memory; the plan's lists become the index's.
 * Cannot fail. Caller holds wmu and mu. */
static void commit_truncation_locked(ts_index *idx, const trunc_plan *t)
{
    size_t k = t->k, kp = t->kp;
    side_drop_below(idx, k < idx->n ? idx->e[k].base_offset : INT64_MAX);
    for (size_t i = 0; i < k; i++) {
        idx->raw_total -= idx->e[i].size_bytes;
        idx->stored_total -= idx->e[i].stored_bytes;
    }
    if (k) memmove(idx->e, idx->e + k, (idx->n - k) * sizeof(*idx->e));
    size_t toff = k > idx->tail_start ? k - idx->tail_start : 0;
    if (toff) {
        td_free_envs(idx->td, toff);
        memmove(idx->td, idx->td + toff, (idx->n - idx->tail_start - toff) * sizeof(*idx->td));
    }
    idx->tail_start = k > idx->tail_start ? 0 : idx->tail_start - k;
    idx->n -= k;
    for (size_t i = 0; i < kp; i++) remove_local_piece(idx, idx->pieces[i].key);
    if (kp) memmove(idx->pieces, idx->pieces + kp, (idx->np - kp) * sizeof(*idx->pieces));
    idx->np -= kp;
    size_t ke = epochs_below(idx, t->new_start);
    if (ke) memmove(idx->epochs, idx->epochs + ke, (idx->nepochs - ke) * sizeof(*idx->epochs));
    idx->nepochs -= ke;
    idx->log_start = t->new_start;
    idx->version++;
    free(idx->pending);
    idx->pending = t->pending;
    idx->npending = t->np;
    free(idx->dropped);
    free(idx->dropped_v);
    idx->dropped = t->dropped;
    idx->dropped_v = t->dropped_v;
    idx->ndropped = t->nd;
}

ts_status ts_index_truncate_before(ts_index *idx, int64_t new_start_offset, char ***removed_keys,
                                   size_t *nremoved, char *errstr, size_t errlen)
{
    *removed_keys = NULL;
    *nremoved = 0;
    pthread_mutex_lock(&idx->wmu);
    ts_status st = TS_OK;
    /* Entries are sorted and disjoint, so last offsets ascend too: the
     * removed entries are a prefix, and so are the wholly expired pieces. */
    trunc_plan t;
    memset(&t, 0, sizeof(t));
    while (t.k < idx->n && idx->e[t.k].last_offset < new_start_offset) t.k++;
    t.new_start = new_start_offset > idx->log_start ? new_start_offset : idx->log_start;
    while (t.kp < idx->np && idx->pieces[t.kp].last_offset < t.new_start) t.kp++;

    if (t.k > 0 || t.kp > 0 || t.new_start != idx->log_start) {
        if ((st = prepare_truncation(idx, &t, errstr, errlen))) goto out;
        pthread_mutex_lock(&idx->mu);
        commit_truncation_locked(idx, &t);
        pthread_mutex_unlock(&idx->mu);
    }

    if (idx->os) {
        if ((st = push_remote(idx, removed_keys, nremoved, errstr, errlen)))
            ts_err_prefix(errstr, errlen, st,
                          "index %s/%" PRId32 ": retention to offset %" PRId64
                          " is committed locally; its %zu object(s) wait for a durable remote "
                          "manifest before deletion",
                          idx->topic, idx->partition, new_start_offset, idx->npending);
    } else {
        pthread_mutex_lock(&idx->mu);
        take_pending_locked(idx, removed_keys, nremoved);
        pthread_mutex_unlock(&idx->mu);
    }
out:
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

ts_status ts_index_commit_epoch(ts_index *idx, int64_t epoch, char *errstr, size_t errlen)
{
    ts_segment_meta *tail;
    uint64_t *added;
    ts_status st = lock_with_tail(idx, &tail, &added, errstr, errlen);
    if (st) return st;
    int64_t old = idx->leader_epoch;
    pthread_mutex_lock(&idx->mu);
    idx->leader_epoch = epoch;
    pthread_mutex_unlock(&idx->mu);
    proposal p;
    current_proposal(idx, tail, added, &p);
    p.version = idx->version + 1;
    st = write_local_prop(idx, &p, errstr, errlen);
    free(tail);
    free(added);
    if (!st) {
        pthread_mutex_lock(&idx->mu);
        idx->version++;
        pthread_mutex_unlock(&idx->mu);
        if (idx->os) st = push_remote(idx, NULL, NULL, errstr, errlen);
    } else {
        idx->leader_epoch = old;
    }
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

ts_status ts_index_epochs(ts_index *idx, ts_index_epoch **out, size_t *n)
{
    pthread_mutex_lock(&idx->mu);
    *n = idx->nepochs;
    *out = idx->nepochs ? malloc(idx->nepochs * sizeof(**out)) : NULL;
    if (*out) memcpy(*out, idx->epochs, idx->nepochs * sizeof(**out));
    ts_status st = idx->nepochs && !*out ? TS_E_NOMEM : TS_OK;
    pthread_mutex_unlock(&idx->mu);
    return st;
}

ts_status ts_index_sync_remote(ts_index *idx, char *errstr, size_t errlen)
{
    if (!idx->os)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "index %s/%" PRId32 ": no object store to sync to", idx->topic,
                          idx->partition);
    pthread_mutex_lock(&idx->wmu);
    ts_status st = push_remote(idx, NULL, NULL, errstr, errlen);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* ------------------------------------------------------------------------
 * Lookups (mu only; never wait for I/O, never allocate)
 * ------------------------------------------------------------------------ */

static ts_status copy_out(ts_index *idx, size_t i, ts_segment_meta *out)
{
    ts_status st = TS_E_NOT_FOUND;
    if (i < idx->n) {
        entry_meta(idx, i, out);
        st = TS_OK;
    }
    pthread_mutex_unlock(&idx->mu);
    return st;
}

ts_status ts_index_lookup_offset(ts_index *idx, int64_t offset, ts_segment_meta *out)
{
    pthread_mutex_lock(&idx->mu);
    /* The candidate is the last entry with base <= offset. */
    size_t i = lower_bound_base(idx, offset == INT64_MAX ? offset : offset + 1);
    if (i == 0 || idx->e[i - 1].last_offset < offset) return copy_out(idx, idx->n, out);
    return copy_out(idx, i - 1, out);
}

ts_status ts_index_lookup_next(ts_index *idx, int64_t offset, ts_segment_meta *out)
{
    pthread_mutex_lock(&idx->mu);
    if (offset == INT64_MAX) return copy_out(idx, idx->n, out);
    return copy_out(idx, lower_bound_base(idx, offset + 1), out);
}

ts_status ts_index_lookup_time(ts_index *idx, int64_t ts, ts_segment_meta *out)
{
    pthread_mutex_lock(&idx->mu);
    /* The first entry with max_timestamp >= ts is the first whose running
     * maximum reaches ts, and running maxima are monotone. */
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->e[mid].max_timestamp < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return copy_out(idx, lo, out);
}

static ts_status envelope_from_piece(ts_index *idx, ts_segment_meta *seg, char *errstr,
                                     size_t errlen);

ts_status ts_index_load_chunks(ts_index *idx, ts_segment_meta *seg, char *errstr, size_t errlen)
{
    if (seg->chunks) return TS_OK;
    if (!seg->chunk_table_len) {
        /* Legacy entry: its table came with the manifest and stays resident. */
        ts_status st = TS_OK;
        pthread_mutex_lock(&idx->mu);
        const side_ent *s = side_find(idx, seg->base_offset);
        if (!s || !s->chunks || s->nchunks != seg->chunk_count)
            st = TS_E_NOT_FOUND;
        else if (!(seg->chunks = malloc((size_t)s->nchunks * sizeof(*seg->chunks))))
            st = TS_E_NOMEM;
        else {
            memcpy(seg->chunks, s->chunks, (size_t)s->nchunks * sizeof(*seg->chunks));
            seg->segment_crc32c = s->seg_crc;
        }
        pthread_mutex_unlock(&idx->mu);
        if (st)
            return ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": no chunk table for %s",
                              idx->topic, idx->partition, seg->object_key);
        return TS_OK;
    }
    if (ts_chunk_table_cache_lookup(idx->ctc, seg))
        return seg->sealed && !seg->key_id[0] ? envelope_from_piece(idx, seg, errstr, errlen)
                                              : TS_OK;
    if (!idx->os)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "index %s/%" PRId32 ": %s keeps its chunk table in the object and no "
                          "object store is configured",
                          idx->topic, idx->partition, seg->object_key);
    uint8_t *frame = NULL;
    size_t flen = 0;
    ts_status st = get_range_retry(idx, seg->object_key, seg->chunk_table_pos,
                                   seg->chunk_table_len, &frame, &flen, errstr, errlen);
    if (st == TS_E_NOT_FOUND)
        return ts_err_set(errstr, errlen, TS_E_OBJECT_MISSING,
                          "object %s named by the manifest of %s/%" PRId32 " is missing",
                          seg->object_key, idx->topic, idx->partition);
    if (st) return ts_err_prefix(errstr, errlen, st, "chunk table of %s", seg->object_key);
    st = ts_chunk_table_decode(frame, flen, seg, errstr, errlen);
    free(frame);
    if (!st && seg->sealed && !seg->key_id[0]) st = envelope_from_piece(idx, seg, errstr, errlen);
    if (!st) ts_chunk_table_cache_insert(idx->ctc, seg);
    return st;
}

void ts_index_summary_get(ts_index *idx, ts_index_summary *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&idx->mu);
    out->count = idx->n;
    out->start_offset = idx->n ? idx->e[0].base_offset : -1;
    out->end_offset = idx->n ? idx->e[idx->n - 1].last_offset : -1;
    out->raw_bytes = idx->raw_total;
    out->stored_bytes = idx->stored_total;
    out->version = idx->version;
    out->remote_version = idx->remote_version;
    out->log_start_offset = idx->log_start;
    pthread_mutex_unlock(&idx->mu);
}

/* Entry i is in a version durable in the bucket. mu held. */
static int entry_durable_locked(const ts_index *idx, size_t i)
{
    if (!idx->os) return 0;
    if (i >= idx->tail_start) return idx->td[i - idx->tail_start].added <= idx->remote_version;
    const ts_manifest_piece *pc = piece_of(idx, idx->e[i].base_offset);
    return pc && pc->added_version <= idx->remote_version;
}

int ts_index_covers(ts_index *idx, int64_t from, int64_t to, int durable)
{
    pthread_mutex_lock(&idx->mu);
    if (from < idx->log_start) from = idx->log_start; /* below: removed by retention */
    size_t i = lower_bound_base(idx, from);
    if (i == idx->n || idx->e[i].base_offset > from) i = i ? i - 1 : idx->n;
    int64_t cur = from;
    int ok = 1;
    for (; ok && cur <= to; i++) {
        ok = i < idx->n && idx->e[i].base_offset <= cur && idx->e[i].last_offset >= cur &&
             (!durable || entry_durable_locked(idx, i));
        if (ok) cur = idx->e[i].last_offset + 1;
    }
    pthread_mutex_unlock(&idx->mu);
    return ok && cur > to;
}

int ts_index_is_remote_durable(ts_index *idx, int64_t base_offset)
{
    pthread_mutex_lock(&idx->mu);
    size_t i = lower_bound_base(idx, base_offset);
    int durable = 0;
    if (idx->os && i < idx->n && idx->e[i].base_offset == base_offset) {
        if (i >= idx->tail_start) {
            durable = idx->td[i - idx->tail_start].added <= idx->remote_version;
        } else {
            const ts_manifest_piece *pc = piece_of(idx, base_offset);
            durable = pc && pc->added_version <= idx->remote_version;
        }
    }
    pthread_mutex_unlock(&idx->mu);
    return durable;
}

ts_status ts_index_snapshot_meta(ts_index *idx, ts_segment_meta **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&idx->mu);
    ts_segment_meta *s = idx->n ? malloc(idx->n * sizeof(*s)) : NULL;
    if (idx->n && !s) {
        pthread_mutex_unlock(&idx->mu);
        return TS_E_NOMEM;
    }
    for (size_t i = 0; i < idx->n; i++) {
        entry_meta(idx, i, &s[i]);
    }
    *out = s;
    *n = idx->n;
    pthread_mutex_unlock(&idx->mu);
    return TS_OK;
}

ts_status ts_index_snapshot_entries(ts_index *idx, ts_index_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&idx->mu);
    ts_index_entry *e = idx->n ? malloc(idx->n * sizeof(*e)) : NULL;
    if (idx->n && !e) {
        pthread_mutex_unlock(&idx->mu);
        return TS_E_NOMEM;
    }
    if (idx->n) memcpy(e, idx->e, idx->n * sizeof(*e));
    *out = e;
    *n = idx->n;
    pthread_mutex_unlock(&idx->mu);
    return TS_OK;
}

int64_t ts_index_start_offset(ts_index *idx)
{
    pthread_mutex_lock(&idx->mu);
    int64_t start = idx->n ? idx->e[0].base_offset : -1;
    pthread_mutex_unlock(&idx->mu);
    return start;
}

ts_status ts_index_snapshot(ts_index *idx, ts_segment_meta **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&idx->mu);
    ts_segment_meta *s = idx->n ? calloc(idx->n, sizeof(*s)) : NULL;
    size_t cnt = idx->n;
    if (cnt && !s) {
        pthread_mutex_unlock(&idx->mu);
        return TS_E_NOMEM;
    }
    for (size_t i = 0; i < cnt; i++) entry_meta(idx, i, &s[i]);
    pthread_mutex_unlock(&idx->mu);
    for (size_t i = 0; i < cnt; i++) {
        char err[512];
        ts_status st = ts_index_load_chunks(idx, &s[i], err, sizeof(err));
        if (st) {
            ts_log_warn(LOG_MOD, "snapshot: %s", err);
            ts_index_snapshot_free(s, cnt);
            return st;
        }
    }
    *out = s;
    *n = cnt;
    return TS_OK;
}

void ts_index_stats_get(ts_index *idx, ts_index_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&idx->mu);
    out->entries = idx->n;
    out->pieces = idx->np;
    for (size_t i = 0; i < idx->nside; i++) {
        if (idx->side[i].chunks) out->legacy_entries++;
        out->resident_bytes += sizeof(side_ent) + (uint64_t)idx->side[i].nchunks *
                               sizeof(ts_chunk_meta) + (idx->side[i].key ? strlen(idx->side[i].key) + 1 : 0);
    }
    out->entry_bytes = (uint64_t)idx->cap * sizeof(ts_index_entry);
    out->partition_bytes = (uint64_t)idx->td_cap * sizeof(tail_detail) +
                           (uint64_t)idx->np * sizeof(ts_manifest_piece) + sizeof(*idx);
    out->resident_bytes += out->entry_bytes + out->partition_bytes;
    out->put_bytes = idx->put_bytes;
    out->puts = idx->puts;
    out->gets = idx->gets;
    pthread_mutex_unlock(&idx->mu);
}

/* ------------------------------------------------------------------------
 * What the bucket's heads name (orphan sweep)
 * ------------------------------------------------------------------------ */

typedef struct strset {
    char **v;
    size_t n, cap;
} strset;

static int strset_add(strset *s, const char *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], k)) return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(k))) return -1;
    s->n++;
    return 0;
}

static int collect_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    return strset_add(opaque, key) ? 1 : 0;
}

ts_status ts_index_bucket_references(ts_index *idx, int (*cb)(const char *key, void *opaque),
                                     void *opaque, char *errstr, size_t errlen)
{
    if (!idx->os)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "index %s/%" PRId32 ": no object store",
                          idx->topic, idx->partition);
    pthread_mutex_lock(&idx->wmu); /* no commit may put a piece while we judge pieces */
    listed *vers = NULL;
    size_t nv = 0;
    strset named = {0}, all = {0};
    ts_status st = list_versions(idx, &vers, &nv, errstr, errlen);
    int stop = 0;
    for (size_t i = 0; !st && i < nv; i++) {
        char key[TS_INDEX_KEY_MAX];
        ts_index_manifest_key(idx->topic, idx->partition, vers[i].version, key, sizeof(key));
        uint8_t *data = NULL;
        size_t len = 0;
        ts_manifest_doc d;
        memset(&d, 0, sizeof(d));
        if ((st = get_retry(idx, key, &data, &len, errstr, errlen)) ||
            (st = ts_manifest_parse((const char *)data, len, 0, &d, errstr, errlen))) {
            ts_err_prefix(errstr, errlen, st, "%s", key);
            free(data);
            break;
        }
        free(data);
        for (size_t j = 0; cb && !stop && j < d.n; j++) stop = cb(d.segs[j].object_key, opaque);
        for (size_t p = 0; !st && p < d.npieces; p++) {
            /* Kept heads share most pieces: read each one once. */
            int seen = 0;
            for (size_t q = 0; q < named.n && !seen; q++) seen = !strcmp(named.v[q], d.pieces[p].key);
            if (seen) continue;
            if (strset_add(&named, d.pieces[p].key)) st = TS_E_NOMEM;
            ts_manifest_doc pd;
            if (!st && !(st = get_retry(idx, d.pieces[p].key, &data, &len, errstr, errlen)))
                st = parse_piece_bytes(idx, &d.pieces[p], data, len, &pd, errstr, errlen);
            free(data);
            data = NULL;
            if (st) break;
            for (size_t j = 0; cb && !stop && j < pd.n; j++) stop = cb(pd.segs[j].object_key, opaque);
            ts_manifest_doc_free(&pd);
        }
        ts_manifest_doc_free(&d);
    }
    /* Pieces no head names: a crash between a piece and its head, or a
     * dropped piece whose heads are gone. */
    if (!st && (st = ts_objstore_list(idx->os, idx->piece_prefix, collect_cb, &all, errstr,
                                      errlen)) == TS_OK) {
        char **orphans = calloc(all.n + 1, sizeof(char *));
        size_t no = 0;
        for (size_t i = 0; orphans && i < all.n; i++) {
            int keep = 0;
            for (size_t j = 0; j < named.n && !keep; j++) keep = !strcmp(named.v[j], all.v[i]);
            for (size_t j = 0; j < idx->np && !keep; j++) keep = !strcmp(idx->pieces[j].key, all.v[i]);
            if (!keep) orphans[no++] = all.v[i];
        }
        if (no) {
            ts_log_info(LOG_MOD, "%s/%" PRId32 ": deleting %zu piece(s) no head names",
                        idx->topic, idx->partition, no);
            char e2[256];
            if (ts_objstore_delete_many(idx->os, (const char *const *)orphans, no, e2, sizeof(e2)))
                ts_log_warn(LOG_MOD, "%s/%" PRId32 ": deleting unnamed pieces: %s", idx->topic,
                            idx->partition, e2);
        }
        free(orphans);
    }
    for (size_t i = 0; i < named.n; i++) free(named.v[i]);
    free(named.v);
    for (size_t i = 0; i < all.n; i++) free(all.v[i]);
    free(all.v);
    free(vers);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* ------------------------------------------------------------------------
 * JSON view (tierctl manifest)
 * ------------------------------------------------------------------------ */

ts_status ts_index_write_json(ts_index *idx, int (*write)(const void *data, size_t len, void *opaque),
                              void *opaque, char *errstr, size_t errlen)
{
    ts_segment_meta *tail;
    uint64_t *added;
    ts_status st = lock_with_tail(idx, &tail, &added, errstr, errlen);
    if (st) return st;
    proposal p;
    current_proposal(idx, tail, added, &p);
    ts_manifest_doc d;
    head_doc(idx, &p, 0, &d);
    char *json = NULL;
    size_t len = 0;
    st = ts_manifest_render(&d, &json, &len, errstr, errlen);
    free(tail);
    free(added);
    int stop = 0;
    if (!st) {
        stop = write("{\"head\":", 8, opaque) || write(json, len - 1, opaque) ||
               write(",\n\"pieces\":[", 12, opaque);
        free(json);
    }
    for (size_t i = 0; !st && !stop && i < idx->np; i++) {
        char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
        piece_path(idx, idx->pieces[i].key, path, sizeof(path));
        uint8_t *data = NULL;
        size_t dl = 0;
        char e2[256];
        if (ts_fs_read_all(path, TS_MANIFEST_MAX_BYTES, &data, &dl, e2, sizeof(e2))) {
            if (!idx->os) {
                st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND, "piece %s: %s", idx->pieces[i].key, e2);
                break;
            }
            if ((st = get_retry(idx, idx->pieces[i].key, &data, &dl, errstr, errlen))) break;
        }
        if (dl != idx->pieces[i].bytes || ts_crc32c(0, data, dl) != idx->pieces[i].crc32c)
            st = ts_err_set(errstr, errlen, TS_E_CHECKSUM,
                            "piece %s does not match its head (length or CRC-32C)",
                            idx->pieces[i].key);
        while (!st && dl && (data[dl - 1] == '\n' || data[dl - 1] == ' ')) dl--;
        if (!st) stop = (i && write(",\n", 2, opaque)) || write(data, dl, opaque);
        free(data);
    }
    if (!st && !stop) write("]}\n", 3, opaque);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* ------------------------------------------------------------------------
 * Envelopes of sealed entries (encryption at rest, common/crypt.h)
 *
 * The index keeps them opaque: a key id and a wrapped data key per sealed
 * entry, in the JSON of the tail and the pieces. Resident are only the
 * tail's (tail_detail, bounded by the head); an entry in a piece gets its
 * envelope from the piece on first use, and the chunk-table cache keeps
 * it with the table, so the 64-byte resident entries do not grow.
 * ------------------------------------------------------------------------ */

/* Reads and checks piece pc: the local file, else the bucket. No index
 * lock needed (pieces are immutable). */
static ts_status read_piece(ts_index *idx, const ts_manifest_piece *pc, ts_manifest_doc *pd,
                            char *errstr, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char path[sizeof(idx->pieces_dir) + TS_INDEX_KEY_MAX];
    piece_path(idx, pc->key, path, sizeof(path));
    ts_status st = ts_fs_read_all(path, TS_MANIFEST_MAX_BYTES, &data, &len, errstr, errlen);
    if (st && idx->os) st = get_retry(idx, pc->key, &data, &len, errstr, errlen);
    if (!st) st = parse_piece_bytes(idx, pc, data, len, pd, errstr, errlen);
    free(data);
    return st;
}

static ts_status envelope_from_piece(ts_index *idx, ts_segment_meta *seg, char *errstr,
                                     size_t errlen)
{
    ts_manifest_piece pc;
    pthread_mutex_lock(&idx->mu);
    const ts_manifest_piece *p = piece_of(idx, seg->base_offset);
    if (p) pc = *p;
    pthread_mutex_unlock(&idx->mu);
    ts_status st = TS_E_NOT_FOUND;
    ts_manifest_doc pd;
    memset(&pd, 0, sizeof(pd));
    if (p) st = read_piece(idx, &pc, &pd, errstr, errlen);
    for (size_t i = 0; st == TS_OK && i < pd.n; i++) {
        const ts_segment_meta *s = &pd.segs[i];
        if (s->base_offset != seg->base_offset) continue;
        if (!s->sealed || strcmp(s->object_key, seg->object_key)) break;
        memcpy(seg->key_id, s->key_id, sizeof(seg->key_id));
        memcpy(seg->wrapped_key, s->wrapped_key, sizeof(seg->wrapped_key));
        ts_manifest_doc_free(&pd);
        return TS_OK;
    }
    ts_manifest_doc_free(&pd);
    if (st == TS_OK || st == TS_E_NOT_FOUND)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "index %s/%" PRId32 ": no encryption envelope for sealed object %s "
                          "(its piece does not list it as sealed)",
                          idx->topic, idx->partition, seg->object_key);
    return ts_err_prefix(errstr, errlen, st, "envelope of %s", seg->object_key);
}

static int needs_rewrap(const ts_segment_meta *s, const char *want)
{
    return s->sealed && strcmp(s->key_id, want) != 0;
}

/* The rekey of a run of entries; counts what it re-wrapped. */
static ts_status rewrap_run(ts_index *idx, ts_segment_meta *segs, size_t n, const char *want,
                            ts_index_rewrap_fn fn, void *opaque, size_t *count, char *errstr,
                            size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!needs_rewrap(&segs[i], want)) continue;
        ts_status st = fn(&segs[i], opaque, errstr, errlen);
        if (st) return st;
        (*count)++;
    }
    return TS_OK;
}

/* What a rekey proposes: new piece descriptors (the changed ones written
 * anew) and the replaced pieces, dropped at the new version. */
typedef struct rekey_plan {
    ts_manifest_piece *pieces;
    char **dropped;
    uint64_t *dropped_v;
    size_t *at;  /* which pieces[] were written anew */
    size_t nnew; /* how many (and dropped entries added) */
} rekey_plan;

static void plan_free(ts_index *idx, rekey_plan *pl, int remove_new)
{
    for (size_t i = 0; i < pl->nnew; i++) {
        if (remove_new) remove_local_piece(idx, pl->pieces[pl->at[i]].key);
        if (pl->dropped) free(pl->dropped[idx->ndropped + i]);
    }
    free(pl->at);
    free(pl->pieces);
    free(pl->dropped);
    free(pl->dropped_v);
    memset(pl, 0, sizeof(*pl));
}

/* Re-wraps the entries of every piece, writing a new piece for each one
 * that changed. Caller holds wmu. */
static ts_status plan_pieces(ts_index *idx, const char *want, ts_index_rewrap_fn fn,
                             void *opaque, rekey_plan *pl, size_t *count, char *errstr,
                             size_t errlen)
{
    size_t nd = idx->ndropped + idx->np;
    pl->pieces = malloc((idx->np ? idx->np : 1) * sizeof(*pl->pieces));
    pl->dropped = malloc((nd ? nd : 1) * sizeof(char *));
    pl->dropped_v = malloc((nd ? nd : 1) * sizeof(uint64_t));
    pl->at = malloc((idx->np ? idx->np : 1) * sizeof(size_t));
    if (!pl->pieces || !pl->dropped || !pl->dropped_v || !pl->at)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (idx->np) memcpy(pl->pieces, idx->pieces, idx->np * sizeof(*pl->pieces));
    ts_status st = TS_OK;
    for (size_t i = 0; !st && i < idx->np; i++) {
        ts_manifest_doc pd;
        memset(&pd, 0, sizeof(pd));
        size_t before = *count;
        st = read_piece(idx, &idx->pieces[i], &pd, errstr, errlen);
        if (!st) st = rewrap_run(idx, pd.segs, pd.n, want, fn, opaque, count, errstr, errlen);
        if (!st && *count > before) {
            /* pl->pieces[i] is replaced; the old key is dropped (deleted once
             * no kept head names it). nnew counts both, in step. */
            char *old = strdup(idx->pieces[i].key);
            st = old ? make_piece(idx, pd.segs, pd.n, idx->epochs, idx->nepochs, idx->version + 1,
                                  &pl->pieces[i], errstr, errlen)
                     : TS_E_NOMEM;
            if (st) free(old);
            else {
                pl->dropped[idx->ndropped + pl->nnew] = old;
                pl->dropped_v[idx->ndropped + pl->nnew] = idx->version + 1;
                pl->at[pl->nnew++] = i;
            }
        }
        ts_manifest_doc_free(&pd);
    }
    return st;
}

/* Installs a committed rekey in memory. Caller holds wmu. */
static void rekey_install(ts_index *idx, rekey_plan *pl, const ts_segment_meta *tail)
{
    pthread_mutex_lock(&idx->mu);
    /* Only sealed entries changed, and they have their envelope already:
     * td_envelope_set allocates nothing here. */
    for (size_t i = 0; i < idx->n - idx->tail_start; i++) td_envelope_set(&idx->td[i], &tail[i]);
    for (size_t i = 0; i < pl->nnew; i++) remove_local_piece(idx, idx->pieces[pl->at[i]].key);
    free(idx->pieces);
    idx->pieces = pl->pieces;
    if (idx->os) { /* pl->dropped already starts with idx->dropped (ts_index_rewrap) */
        free(idx->dropped);
        free(idx->dropped_v);
        idx->dropped = pl->dropped;
        idx->dropped_v = pl->dropped_v;
        idx->ndropped += pl->nnew;
    } else {
        for (size_t i = 0; i < pl->nnew; i++) free(pl->dropped[idx->ndropped + i]);
        free(pl->dropped);
        free(pl->dropped_v);
    }
    idx->version++;
    /* Cached tables carry the envelopes of piece entries: drop those of
     * sealed entries so the next load reads the new ones. */
    for (size_t i = 0; i < idx->n; i++) {
        if (!(idx->e[i].flags & TS_INDEX_ENTRY_SEALED)) continue;
        char key[TS_INDEX_KEY_MAX];
        entry_key(idx, &idx->e[i], key, sizeof(key));
        ts_chunk_table_cache_forget(idx->ctc, key);
    }
    pthread_mutex_unlock(&idx->mu);
    free(pl->at);
    memset(pl, 0, sizeof(*pl));
}

ts_status ts_index_rewrap(ts_index *idx, const char *want_key_id, ts_index_rewrap_fn rewrap,
                          void *opaque, size_t *count, char *errstr, size_t errlen)
{
    *count = 0;
    pthread_mutex_lock(&idx->wmu);
    ts_segment_meta *tail = NULL;
    uint64_t *added = NULL;
    rekey_plan pl;
    memset(&pl, 0, sizeof(pl));
    ts_status st = current_tail(idx, &tail, &added, 0)
                       ? ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory")
                       : TS_OK;
    size_t ntail = idx->n - idx->tail_start;
    if (!st) st = rewrap_run(idx, tail, ntail, want_key_id, rewrap, opaque, count, errstr, errlen);
    if (!st) st = plan_pieces(idx, want_key_id, rewrap, opaque, &pl, count, errstr, errlen);
    if (!st && *count) {
        proposal p;
        current_proposal(idx, tail, added, &p);
        p.pieces = pl.pieces;
        p.version = idx->version + 1;
        if (idx->os) { /* the replaced pieces join the dropped list, as retention's do */
            if (idx->ndropped) {
                memcpy(pl.dropped, idx->dropped, idx->ndropped * sizeof(char *));
                memcpy(pl.dropped_v, idx->dropped_v, idx->ndropped * sizeof(uint64_t));
            }
            p.dropped = pl.dropped;
            p.dropped_v = pl.dropped_v;
            p.ndropped = idx->ndropped + pl.nnew;
        }
        st = write_local_prop(idx, &p, errstr, errlen);
        if (!st) rekey_install(idx, &pl, tail);
        else *count = 0; /* nothing committed */
    } else if (st) {
        *count = 0;
    }
    plan_free(idx, &pl, 1);
    free(tail);
    free(added);
    if (!st && *count && idx->os && (st = push_remote(idx, NULL, NULL, errstr, errlen)))
        ts_err_prefix(errstr, errlen, st,
                      "index %s/%" PRId32 ": re-wrapped keys are committed locally (v%" PRIu64
                      ") but not yet durable remotely",
                      idx->topic, idx->partition, idx->version);
    pthread_mutex_unlock(&idx->wmu);
    return st ? ts_err_prefix(errstr, errlen, st, "rekey of %s/%" PRId32, idx->topic,
                              idx->partition)
              : TS_OK;
}
