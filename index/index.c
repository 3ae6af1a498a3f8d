/*
 * index.c — the shadow index of one partition: the in-memory manifest,
 * its lookups, and its two persistent copies (local file, bucket objects).
 *
 * Why it is shaped so:
 *  - Two locks. `mu` guards the in-memory state and is held only for short
 *    copies, so lookups (on the cold-read path) never wait for I/O. `wmu`
 *    serialises the mutators (add, truncate, sync, load) and is held across
 *    their file and network I/O. Only `wmu` holders change the state, so a
 *    `wmu` holder may read the state without `mu`; it takes `mu` to write.
 *    Lock order: wmu, then mu.
 *  - Prepare, persist, commit. A mutation first builds the next state as a
 *    shallow view, writes it to the local file (the commit point), and only
 *    then installs it in memory, so a failed local write leaves nothing to
 *    roll back.
 *  - Versions. Every change bumps `version`; the bucket gets a new immutable
 *    object per version. `remote_version` is the newest version known to be
 *    durable there, and each entry remembers the version that introduced it
 *    (`added`), so "is this entry remote-durable" is added <= remote_version.
 *    The local file records both, so a restart keeps the answer.
 *  - A put refused with TS_E_EXISTS means an object of that version is
 *    already there: either an earlier attempt of ours landed (a timeout
 *    that actually succeeded, or a crash between put and the local record of
 *    it) or someone else wrote it (a corrupt leftover the last recovery
 *    skipped, a second writer). Same content: it is our put, done. Other
 *    content: never overwrite; move our version above the highest one in the
 *    bucket and put again.
 */
#include "index/index.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config_table.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/retry.h"
#include "manifest_json.h"

#define LOG_MOD "index"
#define LOCAL_FILE "remote_manifest.json"
#define DEFAULT_KEEP_VERSIONS 3
#define DEFAULT_TIMEOUT_MS 120000
#define RETRY_BASE_MS 50
#define RETRY_MAX_MS 5000
#define MAX_VERSION_BUMPS 5
#define MAX_LISTED_VERSIONS 1000000 /* caps memory when cleanup has fallen behind */

struct ts_index {
    pthread_mutex_t mu;  /* state below the marker */
    pthread_mutex_t wmu; /* one mutator at a time, held across its I/O */
    char topic[TS_TOPIC_NAME_MAX + 1];
    int32_t partition;
    char local_dir[4096];
    char local_path[4096 + sizeof(LOCAL_FILE) + 1];
    char manifest_prefix[TS_INDEX_KEY_MAX];
    ts_objstore *os;      /* not owned; may be NULL */
    int keep_versions;    /* wmu */
    int memory_only;      /* never writes the local file (ts_index_set_memory_only) */
    int64_t timeout_ms;   /* wmu */
    /* --- state: written under wmu + mu, read under either --- */
    ts_segment_meta *segs;
    uint64_t *added;      /* version that introduced segs[i] */
    int64_t *pmax;        /* max(segs[0..i].max_timestamp): monotone, for time lookups */
    size_t n, cap;
    int64_t log_start;
    uint64_t version;
    uint64_t remote_version;
    char **pending;       /* keys removed by retention, not yet handed out */
    size_t npending;
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
    if (src->chunk_count) {
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
    if (!topic || !ts_manifest_topic_valid(topic))
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
    snprintf(idx->manifest_prefix, sizeof(idx->manifest_prefix), "%s/%" PRId32 "/manifests/",
             topic, partition);
    idx->os = os;
    idx->keep_versions = DEFAULT_KEEP_VERSIONS;
    idx->timeout_ms = DEFAULT_TIMEOUT_MS;
    *out = idx;
    return TS_OK;
}

static void free_pending(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

void ts_index_destroy(ts_index *idx)
{
    if (!idx) return;
    ts_index_snapshot_free(idx->segs, idx->n);
    free(idx->added);
    free(idx->pmax);
    free_pending(idx->pending, idx->npending);
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

void ts_index_apply_config(ts_index *idx, const ts_config *cfg)
{
    if (!cfg) return;
    ts_index_set_keep_versions(idx,
                               (int)ts_config_get_int(cfg, "remote.log.manifest.keep.versions"));
    ts_index_set_remote_timeout_ms(idx,
                                   ts_config_get_int(cfg, "remote.storage.operation.timeout.ms"));
}

/* ------------------------------------------------------------------------
 * State helpers
 * ------------------------------------------------------------------------ */

/* First index whose base_offset >= off. Caller holds mu or wmu. */
static size_t lower_bound_base(const ts_index *idx, int64_t off)
{
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->segs[mid].base_offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Recomputes the prefix maxima from entry `from` on. Caller holds mu. */
static void recompute_pmax(ts_index *idx, size_t from)
{
    for (size_t i = from; i < idx->n; i++) {
        int64_t m = idx->segs[i].max_timestamp;
        idx->pmax[i] = (i > 0 && idx->pmax[i - 1] > m) ? idx->pmax[i - 1] : m;
    }
}

static ts_status reserve(ts_index *idx, size_t need)
{
    if (need <= idx->cap) return TS_OK;
    size_t ncap = idx->cap ? idx->cap * 2 : 16;
    if (ncap < need) ncap = need;
    ts_segment_meta *s = realloc(idx->segs, ncap * sizeof(*s));
    if (!s) return TS_E_NOMEM;
    idx->segs = s;
    uint64_t *a = realloc(idx->added, ncap * sizeof(*a));
    if (!a) return TS_E_NOMEM;
    idx->added = a;
    int64_t *p = realloc(idx->pmax, ncap * sizeof(*p));
    if (!p) return TS_E_NOMEM;
    idx->pmax = p;
    idx->cap = ncap;
    return TS_OK;
}

/* A shallow document view of (a proposed) state, for rendering. */
static void doc_view(const ts_index *idx, ts_manifest_doc *d, int local)
{
    memset(d, 0, sizeof(*d));
    memcpy(d->topic, idx->topic, sizeof(d->topic));
    d->partition = idx->partition;
    d->version = idx->version;
    d->log_start_offset = idx->log_start;
    d->segs = idx->segs;
    d->n = idx->n;
    d->local = local;
    d->remote_version = idx->remote_version;
    d->added_versions = idx->added;
    d->pending_deletes = idx->pending;
    d->npending = idx->npending;
}

/* Writes the local file from a document view. Caller holds wmu. */
static ts_status write_local_doc(ts_index *idx, const ts_manifest_doc *d, char *errstr,
                                 size_t errlen)
{
    if (idx->memory_only) return TS_OK;
    char *json = NULL;
    size_t len = 0;
    ts_status st = ts_manifest_render(d, &json, &len, errstr, errlen);
    if (!st) st = ts_fs_mkdirs(idx->local_dir, errstr, errlen);
    if (!st) st = ts_fs_write_atomic(idx->local_path, json, len, errstr, errlen);
    free(json);
    if (st)
        ts_err_prefix(errstr, errlen, st, "index %s/%" PRId32 ": cannot persist manifest v%" PRIu64
                      " locally", idx->topic, idx->partition, d->version);
    return st;
}

static ts_status write_local(ts_index *idx, char *errstr, size_t errlen)
{
    ts_manifest_doc d;
    doc_view(idx, &d, 1);
    return write_local_doc(idx, &d, errstr, errlen);
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
    } while (st && st != TS_E_EXISTS && ts_retry_next(&r, st));
    return st;
}

static ts_status get_retry(ts_index *idx, const char *key, uint8_t **out, size_t *out_len,
                           char *errstr, size_t errlen)
{
    ts_retry r;
    ts_status st;
    init_retry(idx, &r);
    do {
        st = ts_objstore_get(idx->os, key, 0, TS_OBJSTORE_TO_END, out, out_len, errstr, errlen);
    } while (st && ts_retry_next(&r, st));
    return st;
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

static int docs_equal(const ts_manifest_doc *a, const ts_manifest_doc *b)
{
    if (strcmp(a->topic, b->topic) || a->partition != b->partition || a->version != b->version ||
        a->log_start_offset != b->log_start_offset || a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!ts_segment_meta_equal(&a->segs[i], &b->segs[i])) return 0;
    return 1;
}

/* After TS_E_EXISTS: is the object at `key` the very manifest we tried to
 * put (an earlier attempt of ours that landed)? Compares meaning, not
 * bytes, so a differently formatted writer of the same state also counts. */
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
        ts_manifest_doc theirs, ours;
        if (!ts_manifest_parse((const char *)data, dlen, 0, &theirs, err, sizeof(err))) {
            if (!ts_manifest_parse(json, len, 0, &ours, err, sizeof(err))) {
                same = docs_equal(&theirs, &ours);
                ts_manifest_doc_free(&ours);
            }
            ts_manifest_doc_free(&theirs);
        }
    }
    free(data);
    return same;
}

/* Deletes manifest versions older than `v` beyond the newest keep_versions
 * (v included). Best-effort: a failure leaves extra versions behind, which
 * the next cleanup removes; it never affects correctness. (Kept older
 * versions may name segment objects that retention has since deleted: they
 * are a fallback against a damaged newest object, not a time machine.) Versions above v
 * (another writer's, or a corrupt leftover) are not ours to delete. */
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
    char **keys = calloc(nv ? nv : 1, sizeof(char *));
    for (size_t i = 0; keys && i < nv; i++) {
        if (vers[i].version >= v) continue;
        if (kept < (size_t)idx->keep_versions) {
            kept++;
            continue;
        }
        keys[ndel] = malloc(TS_INDEX_KEY_MAX);
        if (!keys[ndel]) break;
        ts_index_manifest_key(idx->topic, idx->partition, vers[i].version, keys[ndel],
                              TS_INDEX_KEY_MAX);
        ndel++;
    }
    if (ndel) {
        ts_status st =
            ts_objstore_delete_many(idx->os, (const char *const *)keys, ndel, err, sizeof(err));
        if (st)
            ts_log_warn(LOG_MOD,
                        "%s/%" PRId32 ": deleting %zu old manifest versions failed (%s): %s; "
                        "they will be retried after the next change",
                        idx->topic, idx->partition, ndel, ts_status_name(st), err);
    }
    for (size_t i = 0; i < ndel; i++) free(keys[i]);
    free(keys);
    free(vers);
}

/* Makes the current state durable in the bucket as a new immutable
 * version. On success records remote_version (in memory and, best-effort,
 * in the local file) and, when take_pending is given, hands out the keys
 * waiting for deletion. Caller holds wmu; idx->os is set. */
static ts_status push_remote(ts_index *idx, char ***take_pending, size_t *ntaken, char *errstr,
                             size_t errlen)
{
    ts_status st = TS_OK;
    char key[TS_INDEX_KEY_MAX];
    char err[256];
    if (idx->version == idx->remote_version) {
        /* Already durable: only hand out keys, if any wait. */
        if (take_pending && idx->npending) {
            pthread_mutex_lock(&idx->mu);
            *take_pending = idx->pending;
            *ntaken = idx->npending;
            idx->pending = NULL;
            idx->npending = 0;
            pthread_mutex_unlock(&idx->mu);
            if (write_local(idx, err, sizeof(err)))
                ts_log_warn(LOG_MOD, "%s/%" PRId32 ": cannot clear pending deletions locally "
                            "(they will be handed out again; deleting twice is harmless): %s",
                            idx->topic, idx->partition, err);
        }
        return TS_OK;
    }
    int durable = 0;
    for (int bump = 0; !durable; bump++) {
        if (bump > MAX_VERSION_BUMPS)
            return ts_err_set(errstr, errlen, TS_E_REMOTE,
                              "index %s/%" PRId32 ": manifest versions keep colliding with "
                              "foreign objects under %s; is another writer active?",
                              idx->topic, idx->partition, idx->manifest_prefix);
        ts_manifest_doc d;
        char *json = NULL;
        size_t len = 0;
        doc_view(idx, &d, 0);
        if ((st = ts_manifest_render(&d, &json, &len, errstr, errlen))) return st;
        ts_index_manifest_key(idx->topic, idx->partition, idx->version, key, sizeof(key));
        st = put_retry(idx, key, json, len, errstr, errlen);
        if (st == TS_E_EXISTS) {
            if (same_as_existing(idx, key, json, len)) {
                st = TS_OK;
            } else {
                /* Not ours: never overwrite. Move above everything listed. */
                listed *vers = NULL;
                size_t nv = 0;
                st = list_versions(idx, &vers, &nv, errstr, errlen);
                uint64_t top = nv ? vers[0].version : 0;
                free(vers);
                if (st) {
                    free(json);
                    return ts_err_prefix(errstr, errlen, st,
                                         "index %s/%" PRId32 ": %s is taken by a different "
                                         "manifest and listing failed",
                                         idx->topic, idx->partition, key);
                }
                uint64_t next = (top > idx->version ? top : idx->version) + 1;
                ts_log_warn(LOG_MOD,
                            "%s/%" PRId32 ": %s already holds a different manifest; writing "
                            "version %" PRIu64 " instead (objects are never overwritten)",
                            idx->topic, idx->partition, key, next);
                pthread_mutex_lock(&idx->mu);
                idx->version = next;
                pthread_mutex_unlock(&idx->mu);
                free(json);
                continue;
            }
        }
        free(json);
        if (st)
            return ts_err_prefix(errstr, errlen, st,
                                 "index %s/%" PRId32 ": put of manifest %s failed", idx->topic,
                                 idx->partition, key);
        durable = 1;
    }

    pthread_mutex_lock(&idx->mu);
    idx->remote_version = idx->version;
    if (take_pending) {
        *take_pending = idx->pending;
        *ntaken = idx->npending;
        idx->pending = NULL;
        idx->npending = 0;
    }
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

/* Installs a parsed document as the state (takes its arrays). Caller holds
 * wmu. */
static ts_status install_doc(ts_index *idx, ts_manifest_doc *d, int all_durable)
{
    int64_t *pmax = d->n ? malloc(d->n * sizeof(*pmax)) : NULL;
    uint64_t *added = d->added_versions;
    if (!added && d->n) added = malloc(d->n * sizeof(*added));
    if (d->n && (!pmax || !added)) {
        free(pmax);
        if (added != d->added_versions) free(added);
        return TS_E_NOMEM;
    }
    if (all_durable)
        for (size_t i = 0; i < d->n; i++) added[i] = d->version;

    pthread_mutex_lock(&idx->mu);
    ts_index_snapshot_free(idx->segs, idx->n);
    free(idx->added);
    free(idx->pmax);
    idx->segs = d->segs;
    idx->added = added;
    idx->pmax = pmax;
    idx->n = idx->cap = d->n;
    idx->log_start = d->log_start_offset;
    idx->version = d->version;
    idx->remote_version = all_durable ? d->version : d->remote_version;
    if (d->local) {
        free_pending(idx->pending, idx->npending);
        idx->pending = d->pending_deletes;
        idx->npending = d->npending;
        d->pending_deletes = NULL;
        d->npending = 0;
    } else {
        /* Keys still referenced by the adopted manifest must not be
         * deleted; the others stay pending. */
        size_t k = 0;
        for (size_t i = 0; i < idx->npending; i++) {
            int referenced = 0;
            for (size_t j = 0; j < idx->n && !referenced; j++)
                referenced = !strcmp(idx->pending[i], idx->segs[j].object_key);
            if (referenced)
                free(idx->pending[i]);
            else
                idx->pending[k++] = idx->pending[i];
        }
        idx->npending = k;
    }
    recompute_pmax(idx, 0);
    pthread_mutex_unlock(&idx->mu);

    d->segs = NULL;
    d->added_versions = NULL;
    d->n = 0;
    return TS_OK;
}

ts_status ts_index_load_local(ts_index *idx, char *errstr, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ts_manifest_doc d;
    memset(&d, 0, sizeof(d));
    pthread_mutex_lock(&idx->wmu);
    ts_status st = ts_fs_read_all(idx->local_path, TS_MANIFEST_MAX_BYTES, &data, &len, errstr,
                                  errlen);
    if (st) goto fail;
    if ((st = ts_manifest_parse((const char *)data, len, 1, &d, errstr, errlen))) goto fail;
    if (strcmp(d.topic, idx->topic) || d.partition != idx->partition) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "describes %s/%" PRId32 ", not this partition",
                        d.topic, d.partition);
        goto fail;
    }
    if ((st = install_doc(idx, &d, 0))) {
        ts_err_set(errstr, errlen, st, "out of memory");
        goto fail;
    }
    ts_manifest_doc_free(&d);
    free(data);
    pthread_mutex_unlock(&idx->wmu);
    return TS_OK;
fail:
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
    /* Newest first; a version that cannot be read or parsed is skipped with
     * a warning (a torn or damaged object must not make the partition
     * unrecoverable while an older intact version exists). */
    char key[TS_INDEX_KEY_MAX], why[512];
    size_t skipped = 0;
    st = TS_E_CORRUPT;
    for (size_t i = 0; i < nv; i++) {
        ts_index_manifest_key(idx->topic, idx->partition, vers[i].version, key, sizeof(key));
        uint8_t *data = NULL;
        size_t len = 0;
        ts_manifest_doc d;
        memset(&d, 0, sizeof(d));
        if (vers[i].size > TS_MANIFEST_MAX_BYTES) {
            snprintf(why, sizeof(why), "%" PRIu64 " bytes is above the %d-byte cap",
                     vers[i].size, TS_MANIFEST_MAX_BYTES);
        } else if ((st = get_retry(idx, key, &data, &len, why, sizeof(why)))) {
            if (!ts_status_is_retriable(st) && st != TS_E_NOT_FOUND) {
                /* auth and the like: falling back would hide the real problem */
                pthread_mutex_unlock(&idx->wmu);
                free(vers);
                return ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": get %s: %s",
                                  idx->topic, idx->partition, key, why);
            }
        } else if (!(st = ts_manifest_parse((const char *)data, len, 0, &d, why, sizeof(why)))) {
            if (strcmp(d.topic, idx->topic) || d.partition != idx->partition ||
                d.version != vers[i].version) {
                snprintf(why, sizeof(why),
                         "describes %s/%" PRId32 " version %" PRIu64 ", not what its key says",
                         d.topic, d.partition, d.version);
            } else {
                free(data);
                st = install_doc(idx, &d, 1);
                ts_manifest_doc_free(&d);
                if (st) {
                    ts_err_set(errstr, errlen, st, "index %s/%" PRId32 ": out of memory",
                               idx->topic, idx->partition);
                    break;
                }
                if (skipped)
                    ts_log_warn(LOG_MOD,
                                "%s/%" PRId32 ": recovered from manifest v%" PRIu64
                                " after skipping %zu newer unreadable version(s)",
                                idx->topic, idx->partition, vers[i].version, skipped);
                st = write_local(idx, errstr, errlen);
                break;
            }
        }
        free(data);
        ts_manifest_doc_free(&d);
        skipped++;
        st = TS_E_CORRUPT;
        ts_log_warn(LOG_MOD, "%s/%" PRId32 ": skipping remote manifest %s: %s", idx->topic,
                    idx->partition, key, why);
    }
    if (st && skipped == nv)
        ts_err_set(errstr, errlen, TS_E_CORRUPT,
                   "index %s/%" PRId32 ": none of the %zu manifests under %s is readable "
                   "(last: %s: %s); inspect them with `jq`",
                   idx->topic, idx->partition, nv, idx->manifest_prefix, key, why);
    free(vers);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

/* ------------------------------------------------------------------------
 * Mutations
 * ------------------------------------------------------------------------ */

ts_status ts_index_add(ts_index *idx, const ts_segment_meta *seg, char *errstr, size_t errlen)
{
    char what[96];
    snprintf(what, sizeof(what), "index %s/%" PRId32 ": segment %" PRId64, idx->topic,
             idx->partition, seg->base_offset);
    if (ts_manifest_check_segment(seg, what, errstr, errlen)) return TS_E_INVAL;

    pthread_mutex_lock(&idx->wmu);
    ts_status st = TS_OK;
    ts_segment_meta copy;
    memset(&copy, 0, sizeof(copy));
    size_t pos = lower_bound_base(idx, seg->base_offset);
    if (pos < idx->n && idx->segs[pos].base_offset == seg->base_offset) {
        st = ts_err_set(errstr, errlen, TS_E_EXISTS,
                        "%s is already in the manifest (object %s); delete the orphan %s", what,
                        idx->segs[pos].object_key, seg->object_key);
        goto out;
    }
    if (seg->last_offset < idx->log_start) {
        st = ts_err_set(errstr, errlen, TS_E_INVAL,
                        "%s ends at %" PRId64 ", below the log start offset %" PRId64
                        " (already removed by retention)",
                        what, seg->last_offset, idx->log_start);
        goto out;
    }
    const ts_segment_meta *prev = pos > 0 ? &idx->segs[pos - 1] : NULL;
    const ts_segment_meta *next = pos < idx->n ? &idx->segs[pos] : NULL;
    if ((prev && prev->last_offset >= seg->base_offset) ||
        (next && next->base_offset <= seg->last_offset)) {
        const ts_segment_meta *o = prev && prev->last_offset >= seg->base_offset ? prev : next;
        st = ts_err_set(errstr, errlen, TS_E_INVAL,
                        "%s [%" PRId64 "..%" PRId64 "] overlaps the entry [%" PRId64 "..%" PRId64
                        "]",
                        what, seg->base_offset, seg->last_offset, o->base_offset, o->last_offset);
        goto out;
    }
    if (idx->n >= TS_MANIFEST_MAX_SEGMENTS) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "%s: the manifest already holds %d entries",
                        what, TS_MANIFEST_MAX_SEGMENTS);
        goto out;
    }
    /* Prepare: capacity and the copy first, so the in-memory commit below
     * cannot fail after the local file already says the entry exists. */
    pthread_mutex_lock(&idx->mu); /* realloc may move what lookups read */
    st = reserve(idx, idx->n + 1);
    pthread_mutex_unlock(&idx->mu);
    if (st || (st = ts_segment_meta_copy(&copy, seg))) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "%s: out of memory", what);
        goto out;
    }

    /* Persist the proposed state: the arrays have room for one more, so
     * build it in place past the end and render a view with it inserted. */
    {
        size_t n = idx->n;
        ts_segment_meta *tmp_s = malloc((n + 1) * sizeof(*tmp_s));
        uint64_t *tmp_a = malloc((n + 1) * sizeof(*tmp_a));
        if (!tmp_s || !tmp_a) {
            free(tmp_s);
            free(tmp_a);
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "%s: out of memory", what);
            goto out;
        }
        memcpy(tmp_s, idx->segs, pos * sizeof(*tmp_s));
        tmp_s[pos] = copy;
        memcpy(tmp_s + pos + 1, idx->segs + pos, (n - pos) * sizeof(*tmp_s));
        memcpy(tmp_a, idx->added, pos * sizeof(*tmp_a));
        tmp_a[pos] = idx->version + 1;
        memcpy(tmp_a + pos + 1, idx->added + pos, (n - pos) * sizeof(*tmp_a));
        ts_manifest_doc d;
        doc_view(idx, &d, 1);
        d.segs = tmp_s;
        d.added_versions = tmp_a;
        d.n = n + 1;
        d.version = idx->version + 1;
        st = write_local_doc(idx, &d, errstr, errlen);
        free(tmp_s);
        free(tmp_a);
        if (st) goto out;
    }

    /* Commit in memory. */
    pthread_mutex_lock(&idx->mu);
    memmove(idx->segs + pos + 1, idx->segs + pos, (idx->n - pos) * sizeof(*idx->segs));
    memmove(idx->added + pos + 1, idx->added + pos, (idx->n - pos) * sizeof(*idx->added));
    idx->segs[pos] = copy;
    copy.chunks = NULL; /* owned by the index now */
    idx->n++;
    idx->version++;
    idx->added[pos] = idx->version;
    recompute_pmax(idx, pos);
    pthread_mutex_unlock(&idx->mu);

    if (idx->os && (st = push_remote(idx, NULL, NULL, errstr, errlen)))
        ts_err_prefix(errstr, errlen, st,
                      "%s is committed locally (v%" PRIu64 ") but not yet durable remotely",
                      what, idx->version);
out:
    ts_segment_meta_clear(&copy);
    pthread_mutex_unlock(&idx->wmu);
    return st;
}

ts_status ts_index_truncate_before(ts_index *idx, int64_t new_start_offset, char ***removed_keys,
                                   size_t *nremoved, char *errstr, size_t errlen)
{
    *removed_keys = NULL;
    *nremoved = 0;
    pthread_mutex_lock(&idx->wmu);
    ts_status st = TS_OK;
    /* Entries are sorted and disjoint, so last offsets ascend too: the
     * removed entries are a prefix. */
    size_t k = 0;
    while (k < idx->n && idx->segs[k].last_offset < new_start_offset) k++;
    int64_t new_start = new_start_offset > idx->log_start ? new_start_offset : idx->log_start;

    if (k > 0 || new_start != idx->log_start) {
        /* Prepare: the pending list grows by the removed keys. */
        size_t np = idx->npending + k;
        char **pending = malloc((np ? np : 1) * sizeof(char *));
        size_t made = 0;
        for (; pending && made < k; made++)
            if (!(pending[idx->npending + made] = strdup(idx->segs[made].object_key))) break;
        if (!pending || made < k) {
            for (size_t i = 0; pending && i < made; i++) free(pending[idx->npending + i]);
            free(pending);
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "index %s/%" PRId32 ": out of memory",
                            idx->topic, idx->partition);
            goto out;
        }
        if (idx->npending) memcpy(pending, idx->pending, idx->npending * sizeof(char *));

        ts_manifest_doc d;
        doc_view(idx, &d, 1);
        d.segs = idx->segs + k;
        d.added_versions = idx->added + k;
        d.n = idx->n - k;
        d.log_start_offset = new_start;
        d.version = idx->version + 1;
        d.pending_deletes = pending;
        d.npending = np;
        if ((st = write_local_doc(idx, &d, errstr, errlen))) {
            for (size_t i = 0; i < k; i++) free(pending[idx->npending + i]);
            free(pending);
            goto out;
        }

        pthread_mutex_lock(&idx->mu);
        for (size_t i = 0; i < k; i++) ts_segment_meta_clear(&idx->segs[i]);
        if (k) { /* the arrays may still be NULL when the index is empty */
            memmove(idx->segs, idx->segs + k, (idx->n - k) * sizeof(*idx->segs));
            memmove(idx->added, idx->added + k, (idx->n - k) * sizeof(*idx->added));
        }
        idx->n -= k;
        idx->log_start = new_start;
        idx->version++;
        free(idx->pending);
        idx->pending = pending;
        idx->npending = np;
        recompute_pmax(idx, 0);
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
        *removed_keys = idx->pending;
        *nremoved = idx->npending;
        idx->pending = NULL;
        idx->npending = 0;
        pthread_mutex_unlock(&idx->mu);
    }
out:
    pthread_mutex_unlock(&idx->wmu);
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
 * Lookups (mu only; never wait for I/O)
 * ------------------------------------------------------------------------ */

static ts_status copy_out(ts_index *idx, size_t i, ts_segment_meta *out)
{
    ts_status st = i < idx->n ? ts_segment_meta_copy(out, &idx->segs[i]) : TS_E_NOT_FOUND;
    pthread_mutex_unlock(&idx->mu);
    return st;
}

ts_status ts_index_lookup_offset(ts_index *idx, int64_t offset, ts_segment_meta *out)
{
    pthread_mutex_lock(&idx->mu);
    /* The candidate is the last entry with base <= offset. */
    size_t i = lower_bound_base(idx, offset == INT64_MAX ? offset : offset + 1);
    if (i == 0 || idx->segs[i - 1].last_offset < offset) return copy_out(idx, idx->n, out);
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
    /* The first entry with max_timestamp >= ts is the first whose prefix
     * maximum reaches ts, and prefix maxima are monotone. */
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->pmax[mid] < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return copy_out(idx, lo, out);
}

void ts_index_summary_get(ts_index *idx, ts_index_summary *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&idx->mu);
    out->count = idx->n;
    out->start_offset = idx->n ? idx->segs[0].base_offset : -1;
    out->end_offset = idx->n ? idx->segs[idx->n - 1].last_offset : -1;
    for (size_t i = 0; i < idx->n; i++) {
        out->raw_bytes += idx->segs[i].size_bytes;
        out->stored_bytes += idx->segs[i].stored_bytes;
    }
    out->version = idx->version;
    out->remote_version = idx->remote_version;
    out->log_start_offset = idx->log_start;
    pthread_mutex_unlock(&idx->mu);
}

int ts_index_is_remote_durable(ts_index *idx, int64_t base_offset)
{
    pthread_mutex_lock(&idx->mu);
    size_t i = lower_bound_base(idx, base_offset);
    int durable = idx->os && i < idx->n && idx->segs[i].base_offset == base_offset &&
                  idx->added[i] <= idx->remote_version;
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
        s[i] = idx->segs[i];
        s[i].chunks = NULL;
        s[i].chunk_count = 0;
    }
    *out = s;
    *n = idx->n;
    pthread_mutex_unlock(&idx->mu);
    return TS_OK;
}

int64_t ts_index_start_offset(ts_index *idx)
{
    pthread_mutex_lock(&idx->mu);
    int64_t start = idx->n ? idx->segs[0].base_offset : -1;
    pthread_mutex_unlock(&idx->mu);
    return start;
}

ts_status ts_index_snapshot(ts_index *idx, ts_segment_meta **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&idx->mu);
    ts_segment_meta *s = idx->n ? calloc(idx->n, sizeof(*s)) : NULL;
    if (idx->n && !s) {
        pthread_mutex_unlock(&idx->mu);
        return TS_E_NOMEM;
    }
    for (size_t i = 0; i < idx->n; i++) {
        if (ts_segment_meta_copy(&s[i], &idx->segs[i])) {
            pthread_mutex_unlock(&idx->mu);
            ts_index_snapshot_free(s, i);
            return TS_E_NOMEM;
        }
    }
    *out = s;
    *n = idx->n;
    pthread_mutex_unlock(&idx->mu);
    return TS_OK;
}
