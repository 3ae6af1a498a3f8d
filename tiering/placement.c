/*
 * placement.c — "where does this offset live?" without opening an engine:
 * reads the partition's local segment files read-only and its manifest
 * (the local copy, or the bucket's newest when there is no local copy).
 * Safe while an engine runs on the same data directory: it takes no lock
 * and tolerates a segment being appended to or deleted under it.
 * Also: locate one offset (down to the remote chunk) and verify every
 * remote segment end to end, for tierctl.
 *
 * Placement does not take the manifest's word that an object exists: one
 * LIST of the partition's segments/ prefix marks a remote-only segment
 * whose object is gone TS_LOC_MISSING (an object the manifest names and the
 * store lacks is data loss, and an admin tool must not call it "remote").
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/config_table.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strlist.h"
#include "common/log.h"
#include "index/index.h"
#include "internal.h"
#include "objstore/objstore.h"
#include "reader/reader.h"
#include "segment.h"

static ts_status open_store(const ts_config *cfg, ts_objstore **os, char *errstr, size_t errlen)
{
    *os = NULL;
    if (!ts_config_settings(cfg)->remote_storage_enable) return TS_OK;
    const char *url = ts_config_settings(cfg)->remote_storage_url;
    if (!url[0]) return TS_OK;
    return ts_objstore_open(url, cfg, os, errstr, errlen);
}

/* Local segment rows of a partition directory (read-only scan). */
static ts_status scan_local(const char *dir, int32_t partition, size_t max_batch,
                            ts_segment_info **out, size_t *nout, int *dir_exists, char *errstr,
                            size_t errlen)
{
    *out = NULL;
    *nout = 0;
    int64_t *bases;
    size_t n;
    /* An unlistable directory reads as an absent one (no local rows). */
    ts_status st = ts_segment_list(dir, &bases, &n, NULL, 0);
    *dir_exists = st != TS_E_IO;
    if (st == TS_E_IO) return TS_OK;
    if (st) return ts_err_set(errstr, errlen, st, "out of memory");
    ts_segment_info *local = n ? calloc(n, sizeof(*local)) : NULL;
    if (n && !local) {
        free(bases);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    size_t nlocal = 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        ts_segment_file_path(dir, bases[i], ".log", path, sizeof(path));
        int64_t last, fts, mts;
        uint64_t size;
        if (ts_segment_scan_file(path, max_batch, &last, &fts, &mts, &size, NULL, 0) ||
            size == 0)
            continue; /* vanished (retention) or empty active segment */
        ts_segment_info *r = &local[nlocal++];
        r->partition = partition;
        r->base_offset = bases[i];
        r->last_offset = last;
        r->first_timestamp = fts;
        r->max_timestamp = mts;
        r->size_bytes = size;
        r->location = TS_LOC_LOCAL;
    }
    /* The active segment is the newest file, even empty. */
    if (nlocal) local[nlocal - 1].active = local[nlocal - 1].base_offset == bases[n - 1];
    free(bases);
    *out = local;
    *nout = nlocal;
    return TS_OK;
}

/* The partition's remote manifest entries: the local copy of the manifest,
 * or the bucket's newest when there is none (without writing anything
 * locally: this is a read-only view). *os stays open for the caller. */
/* The partition's index: the local manifest files, or the bucket's newest
 * when there are none (loaded into a temp dir: this is a read-only view and
 * never writes to the data directory). *os stays open for the caller;
 * *idxp is NULL when neither exists. */
static ts_status open_index(const ts_config *cfg, const char *topic, int32_t partition,
                            const char *dir, int dir_exists, ts_objstore **os, ts_index **idxp,
                            char *errstr, size_t errlen)
{
    *idxp = NULL;
    ts_index *idx = NULL;
    ts_status st = open_store(cfg, os, errstr, errlen);
    if (st || (!*os && !dir_exists)) return st;
    /* With the store attached, chunk tables can be read from the objects
     * (locate, verify); loading never writes to the data directory. */
    st = ts_index_create(topic, partition, dir, *os, &idx, errstr, errlen);
    if (st) return st;
    st = dir_exists ? ts_index_load_local(idx, errstr, errlen) : TS_E_NOT_FOUND;
    if (st == TS_E_CORRUPT && *os)
        /* The engine recovers such a partition from the bucket when it
         * opens it; show what it will serve, and say why. */
        ts_log_warn("tiering", "%s; showing the bucket's newest manifest instead", errstr);
    if ((st == TS_E_NOT_FOUND || st == TS_E_CORRUPT) && *os) {
        ts_index_destroy(idx);
        idx = NULL;
        st = ts_index_create(topic, partition, dir, *os, &idx, errstr, errlen);
        if (!st) {
            ts_index_set_memory_only(idx); /* the local file stays as it is, or absent */
            st = ts_index_load_remote(idx, errstr, errlen);
        }
    }
    if (st == TS_E_NOT_FOUND) st = TS_OK;
    if (st) ts_index_destroy(idx);
    else *idxp = idx;
    return st;
}

static ts_status load_remote(const ts_config *cfg, const char *topic, int32_t partition,
                             const char *dir, int dir_exists, ts_objstore **os, ts_index **idxp,
                             ts_segment_meta **segs, size_t *nsegs, char *errstr, size_t errlen)
{
    *segs = NULL;
    *nsegs = 0;
    ts_status st = open_index(cfg, topic, partition, dir, dir_exists, os, idxp, errstr, errlen);
    if (!st && *idxp && (st = ts_index_snapshot_meta(*idxp, segs, nsegs))) {
        ts_index_destroy(*idxp);
        *idxp = NULL;
    }
    return st;
}

typedef struct view {
    ts_objstore *os;
    ts_segment_info *rows;
    size_t nrows;
    ts_index *idx; /* loads chunk tables on demand */
    ts_segment_meta *remote; /* without chunk tables */
    size_t nremote;
} view;

static void view_free(view *v)
{
    free(v->rows);
    ts_index_snapshot_free(v->remote, v->nremote);
    ts_index_destroy(v->idx);
    ts_objstore_destroy(v->os);
    memset(v, 0, sizeof(*v));
}

static ts_status view_open(const ts_config *cfg, const char *topic, int32_t partition, view *v,
                           char *errstr, size_t errlen)
{
    memset(v, 0, sizeof(*v));
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    const char *data_dir = ts_config_settings(cfg)->log_dirs;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s-%d", data_dir, topic, partition);
    ts_segment_info *local = NULL;
    size_t nlocal = 0;
    int exists = 0;
    ts_status st = scan_local(dir, partition, (size_t)ts_config_settings(cfg)->message_max_bytes,
                              &local, &nlocal, &exists, errstr, errlen);
    if (!st) st = load_remote(cfg, topic, partition, dir, exists, &v->os, &v->idx, &v->remote,
                              &v->nremote, errstr, errlen);
    if (!st && !exists && v->nremote == 0)
        st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                        "partition %s-%d not found in %s nor in the bucket", topic, partition,
                        data_dir);
    if (!st) {
        st = ts_part_placement_merge(partition, local, nlocal, v->remote, v->nremote, &v->rows,
                                &v->nrows);
        if (st) ts_err_set(errstr, errlen, st, "out of memory");
    }
    free(local);
    if (st) view_free(v);
    return st;
}

typedef struct keylist {
    ts_strlist l;
    int oom;
} keylist;

static int keylist_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    keylist *l = opaque;
    if (ts_strlist_add(&l->l, key)) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

/* Marks remote-only rows whose object the bucket does not list as
 * TS_LOC_MISSING. A failed LIST leaves the rows as the manifest says and
 * warns: placement stays usable offline, and verify is the full check. */
static void mark_missing(view *v, const char *topic, int32_t partition)
{
    int any = 0;
    for (size_t i = 0; i < v->nrows; i++) any |= v->rows[i].location == TS_LOC_REMOTE;
    if (!v->os || !any) return;
    char prefix[TS_INDEX_KEY_MAX], err[512];
    ts_index_segment_prefix(topic, partition, prefix, sizeof(prefix));
    keylist l = {0};
    ts_status st = ts_objstore_list(v->os, prefix, keylist_cb, &l, err, sizeof(err));
    if (!st && l.oom) st = ts_err_set(err, sizeof(err), TS_E_NOMEM, "out of memory");
    if (st) {
        ts_log_warn("tiering", "%s-%d: cannot list %s to check that segment objects exist: %s",
                    topic, partition, prefix, err);
    } else {
        ts_strlist_sort(&l.l);
        for (size_t i = 0; i < v->nrows; i++) {
            ts_segment_info *r = &v->rows[i];
            const char *key = r->object_key;
            if (r->location == TS_LOC_REMOTE &&
                !ts_strlist_sorted_has(&l.l, key))
                r->location = TS_LOC_MISSING;
        }
    }
    ts_strlist_free(&l.l);
}

ts_status ts_placement_offline(const ts_config *cfg, const char *topic, int32_t partition,
                               ts_segment_info **rows, size_t *nrows, char *errstr, size_t errlen)
{
    view v;
    ts_status st = view_open(cfg, topic, partition, &v, errstr, errlen);
    if (st) return st;
    mark_missing(&v, topic, partition);
    *rows = v.rows;
    *nrows = v.nrows;
    v.rows = NULL;
    view_free(&v);
    return TS_OK;
}

ts_status ts_locate_offline(const ts_config *cfg, const char *topic, int32_t partition,
                            int64_t offset, ts_offset_location *out, char *errstr, size_t errlen)
{
    view v;
    ts_status st = view_open(cfg, topic, partition, &v, errstr, errlen);
    if (st) return st;
    mark_missing(&v, topic, partition);
    memset(out, 0, sizeof(*out));
    out->chunk_index = -1;
    st = ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                    "offset %lld of %s-%d is in no segment (log holds %lld..%lld)",
                    (long long)offset, topic, partition,
                    (long long)(v.nrows ? v.rows[0].base_offset : -1),
                    (long long)(v.nrows ? v.rows[v.nrows - 1].last_offset : -1));
    for (size_t i = 0; i < v.nrows; i++) {
        if (offset < v.rows[i].base_offset || offset > v.rows[i].last_offset) continue;
        out->segment = v.rows[i];
        st = TS_OK;
        for (size_t j = 0; j < v.nremote; j++) {
            ts_segment_meta *m = &v.remote[j];
            if (m->base_offset != v.rows[i].base_offset) continue;
            out->chunk_count = (int32_t)m->chunk_count;
            /* The chunk table lives in the object: none to show for a missing one. */
            if (out->segment.location == TS_LOC_MISSING) break;
            ts_status ls = ts_index_load_chunks(v.idx, m, errstr, errlen);
            if (ls) {
                st = ls;
                break;
            }
            out->chunk_count = (int32_t)m->chunk_count;
            for (uint32_t c = 0; c < m->chunk_count; c++) {
                if (m->chunks[c].first_offset > offset) break;
                out->chunk_index = (int32_t)c;
                out->chunk_raw_pos = m->chunks[c].raw_pos;
                out->chunk_raw_len = m->chunks[c].raw_len;
                out->chunk_stored_pos = m->chunks[c].stored_pos;
                out->chunk_stored_len = m->chunks[c].stored_len;
                out->chunk_first_offset = m->chunks[c].first_offset;
            }
        }
        break;
    }
    view_free(&v);
    return st;
}

/* Checks every batch of a verified chunk (CRC-32C, contiguity). */
static ts_status check_batches(const ts_chunk *ch, size_t max_batch, size_t *nbatches,
                               char *msg, size_t msglen)
{
    size_t pos = 0;
    while (pos < ch->len) {
        ts_batch_hdr h;
        char e[256];
        ts_status st = ts_batch_validate(ch->data + pos, ch->len - pos, max_batch, &h, e, sizeof(e));
        if (st) return ts_err_set(msg, msglen, st, "batch at chunk position %zu: %s", pos, e);
        pos += ts_batch_total_size(&h);
        (*nbatches)++;
    }
    return TS_OK;
}

ts_status ts_verify_offline(const ts_config *cfg, const char *topic, int32_t partition,
                            ts_verify_cb cb, void *opaque, char *errstr, size_t errlen)
{
    view v;
    ts_status st = view_open(cfg, topic, partition, &v, errstr, errlen);
    if (st) return st;
    if (!v.os) {
        view_free(&v);
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "no object store configured (remote.storage.url): nothing to verify");
    }
    /* A cache with a zero cap verifies and returns chunks without keeping
     * them: the same checks a cold read makes, and no disk use. */
    char tmp[PATH_MAX];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmp, sizeof(tmp), "%s/tierctl-verify-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    ts_chunk_cache *cache = NULL;
    if (!mkdtemp(tmp)) {
        int e = errno;
        view_free(&v);
        return ts_err_set(errstr, errlen, TS_E_IO, "cannot create a temp dir %s: %s (set TMPDIR)",
                          tmp, strerror(e));
    }
    ts_keyring *ring = NULL;
    st = ts_chunk_cache_create(tmp, 0, &cache, errstr, errlen);
    if (!st) st = ts_engine_keyring_open(ts_config_settings(cfg), &ring, errstr, errlen);
    if (!st) ts_chunk_cache_set_keyring(cache, ring);
    size_t max_batch = (size_t)ts_config_settings(cfg)->message_max_bytes;
    ts_status first_fail = TS_OK;
    for (size_t i = 0; !st && i < v.nremote; i++) {
        ts_segment_meta *m = &v.remote[i];
        ts_segment_info row;
        memset(&row, 0, sizeof(row));
        for (size_t r = 0; r < v.nrows; r++)
            if (v.rows[r].base_offset == m->base_offset) row = v.rows[r];
        char msg[1024] = "";
        size_t nbatches = 0;
        ts_status vs = TS_OK;
        uint32_t seg_crc = 0;
        vs = ts_index_load_chunks(v.idx, m, msg, sizeof(msg));
        for (uint32_t c = 0; !vs && c < m->chunk_count; c++) {
            ts_chunk *ch = NULL;
            vs = ts_chunk_cache_get(cache, v.os, m, c, &ch, msg, sizeof(msg));
            if (!vs) {
                vs = check_batches(ch, max_batch, &nbatches, msg, sizeof(msg));
                if (vs) ts_err_prefix(msg, sizeof(msg), vs, "%s chunk %u", m->object_key, c);
                seg_crc = ts_crc32c(seg_crc, ch->data, ch->len);
            }
            ts_chunk_release(ch);
        }
        if (!vs && m->segment_crc32c && seg_crc != m->segment_crc32c)
            vs = ts_err_set(msg, sizeof(msg), TS_E_CHECKSUM,
                            "%s: whole-segment CRC-32C 0x%08x, manifest says 0x%08x",
                            m->object_key, seg_crc, m->segment_crc32c);
        if (!vs)
            snprintf(msg, sizeof(msg), "ok: %u chunks, %zu batches, %llu raw bytes", m->chunk_count,
                     nbatches, (unsigned long long)m->size_bytes);
        if (vs && !first_fail) {
            first_fail = vs;
            ts_err_set(errstr, errlen, vs, "%s", msg);
        }
        if (cb) cb(&row, vs, msg, opaque);
    }
    ts_chunk_cache_destroy(cache);
    ts_keyring_destroy(ring);
    ts_fs_rmtree(tmp, NULL, 0);
    view_free(&v);
    return st ? st : first_fail;
}

ts_status ts_topic_partitions_offline(const ts_config *cfg, const char *topic, int32_t **parts,
                                      size_t *nparts, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    ts_objstore *os = NULL;
    ts_status st = open_store(cfg, &os, errstr, errlen);
    if (st) return st;
    st = ts_eng_partitions_scan(ts_config_settings(cfg)->log_dirs, os, topic, parts, nparts,
                                  errstr, errlen);
    ts_objstore_destroy(os);
    return st;
}

/* ---- topic listing ------------------------------------------------------- */

/* Adds the topic name name[0..len) unless invalid or already there. */
static void names_add(ts_strlist *s, const char *name, size_t len)
{
    char t[256];
    if (len == 0 || len >= sizeof(t)) return;
    memcpy(t, name, len);
    t[len] = '\0';
    if (!ts_topic_name_valid(t)) return;
    if (!ts_strlist_has(s, t)) (void)ts_strlist_add(s, t);
}

static int manifest_topic_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    /* "<topic>/<partition>/manifests/..." */
    const char *slash = strchr(key, '/');
    if (slash && ts_index_key_manifest_partition(slash + 1) >= 0)
        names_add(opaque, key, (size_t)(slash - key));
    return 0;
}

ts_status ts_topics_offline(const ts_config *cfg, char ***topics, size_t *ntopics, char *errstr,
                            size_t errlen)
{
    ts_strlist s = {0};
    const char *data_dir = ts_config_settings(cfg)->log_dirs;
    DIR *d = opendir(data_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *dash = strrchr(de->d_name, '-');
        if (!dash || !dash[1]) continue;
        char *end;
        strtol(dash + 1, &end, 10);
        if (*end) continue;
        names_add(&s, de->d_name, (size_t)(dash - de->d_name));
    }
    if (d) closedir(d);
    ts_objstore *os = NULL;
    ts_status st = open_store(cfg, &os, errstr, errlen);
    if (!st && os) st = ts_objstore_list(os, "", manifest_topic_cb, &s, errstr, errlen);
    ts_objstore_destroy(os);
    if (st) {
        ts_topics_free(s.v, s.n);
        return st;
    }
    ts_strlist_sort(&s);
    *topics = s.v;
    *ntopics = s.n;
    return TS_OK;
}

void ts_topics_free(char **topics, size_t ntopics)
{
    for (size_t i = 0; i < ntopics; i++) free(topics[i]);
    free(topics);
}

/* ------------------------------------------------------------------------
 * Streaming placement and the JSON view (tierctl placement/status/manifest)
 * ------------------------------------------------------------------------ */

ts_status ts_placement_offline_each(const ts_config *cfg, const char *topic, int32_t partition,
                                    ts_placement_cb cb, void *opaque, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    const char *data_dir = ts_config_settings(cfg)->log_dirs;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s-%d", data_dir, topic, partition);
    ts_segment_info *local = NULL;
    size_t nlocal = 0;
    int exists = 0;
    ts_objstore *os = NULL;
    ts_index *idx = NULL;
    ts_index_entry *e = NULL;
    size_t ne = 0;
    keylist l = {0};
    ts_status st = scan_local(dir, partition, (size_t)ts_config_settings(cfg)->message_max_bytes,
                              &local, &nlocal, &exists, errstr, errlen);
    if (!st) st = open_index(cfg, topic, partition, dir, exists, &os, &idx, errstr, errlen);
    if (!st && idx && ts_index_snapshot_entries(idx, &e, &ne))
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (!st && !exists && ne == 0)
        st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                        "partition %s-%d not found in %s nor in the bucket", topic, partition,
                        data_dir);
    /* One LIST says which objects exist (placement must not call a missing
     * object remote); a failed LIST warns and trusts the manifest. */
    int listed = 0;
    if (!st && os && ne) {
        char prefix[TS_INDEX_KEY_MAX], err[512];
        ts_index_segment_prefix(topic, partition, prefix, sizeof(prefix));
        ts_status ls = ts_objstore_list(os, prefix, keylist_cb, &l, err, sizeof(err));
        if (!ls && l.oom) ls = ts_err_set(err, sizeof(err), TS_E_NOMEM, "out of memory");
        if (ls)
            ts_log_warn("tiering", "%s-%d: cannot list %s to check that segment objects exist: %s",
                        topic, partition, prefix, err);
        else
            ts_strlist_sort(&l.l);
        listed = !ls;
    }
    for (size_t i = 0, j = 0; !st && (i < nlocal || j < ne);) {
        ts_segment_info row;
        int take_local = i < nlocal && (j >= ne || local[i].base_offset <= e[j].base_offset);
        int take_remote = j < ne && (i >= nlocal || e[j].base_offset <= local[i].base_offset);
        if (take_local) {
            row = local[i++];
        } else {
            memset(&row, 0, sizeof(row));
            row.partition = partition;
            row.base_offset = e[j].base_offset;
            row.last_offset = e[j].last_offset;
            row.first_timestamp = e[j].first_timestamp;
            row.max_timestamp = e[j].max_timestamp;
            row.size_bytes = e[j].size_bytes;
            row.location = TS_LOC_REMOTE;
        }
        if (take_remote) {
            if (take_local) row.location = TS_LOC_LOCAL_REMOTE;
            row.stored_bytes = e[j].stored_bytes;
            ts_index_entry_key(idx, &e[j], row.object_key, sizeof(row.object_key));
            const char *key = row.object_key;
            if (row.location == TS_LOC_REMOTE && listed && !ts_strlist_sorted_has(&l.l, key))
                row.location = TS_LOC_MISSING;
            j++;
        }
        if (cb(&row, opaque)) break;
    }
    ts_strlist_free(&l.l);
    free(e);
    free(local);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    return st;
}

static int write_file_cb(const void *data, size_t len, void *opaque)
{
    return fwrite(data, 1, len, opaque) != len;
}

ts_status ts_manifest_dump_offline(const ts_config *cfg, const char *topic, int32_t partition,
                                   FILE *out, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    const char *data_dir = ts_config_settings(cfg)->log_dirs;
    char dir[PATH_MAX];
    struct stat sb;
    snprintf(dir, sizeof(dir), "%s/%s-%d", data_dir, topic, partition);
    ts_objstore *os = NULL;
    ts_index *idx = NULL;
    ts_status st = open_index(cfg, topic, partition, dir, stat(dir, &sb) == 0, &os, &idx, errstr,
                              errlen);
    if (!st && !idx)
        st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                        "partition %s-%d has no manifest in %s nor in the bucket", topic, partition,
                        data_dir);
    if (!st) st = ts_index_write_json(idx, write_file_cb, out, errstr, errlen);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    return st;
}
