/*
 * placement.c — "where does this offset live?" without opening an engine:
 * reads the partition's local segment files read-only and its manifest
 * (the local copy, or the bucket's newest when there is no local copy).
 * Safe while an engine runs on the same data directory: it takes no lock
 * and tolerates a segment being appended to or deleted under it.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config_table.h"
#include "common/err.h"
#include "index/index.h"
#include "internal.h"
#include "objstore/objstore.h"
#include "segment.h"

ts_status ts_placement_merge(int32_t partition, ts_segment_info *local, size_t nlocal,
                             const ts_segment_meta *remote, size_t nremote,
                             ts_segment_info **rows, size_t *nrows);
ts_status ts_topic_partitions_scan(const char *data_dir, ts_objstore *os, const char *topic,
                                   int32_t **parts, size_t *nparts, char *errstr, size_t errlen);

static int cmp_base(const void *a, const void *b)
{
    const ts_segment_info *x = a, *y = b;
    return x->base_offset < y->base_offset ? -1 : x->base_offset > y->base_offset;
}

static ts_status open_store(const ts_config *cfg, ts_objstore **os, char *errstr, size_t errlen)
{
    *os = NULL;
    if (!ts_config_get_bool(cfg, "remote.storage.enable")) return TS_OK;
    const char *url = ts_config_get_str(cfg, "remote.storage.url");
    if (!url[0]) return TS_OK;
    return ts_objstore_open(url, cfg, os, errstr, errlen);
}

ts_status ts_placement_offline(const ts_config *cfg, const char *topic, int32_t partition,
                               ts_segment_info **rows, size_t *nrows, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    const char *data_dir = ts_config_get_str(cfg, "log.dirs");
    size_t max_batch = (size_t)ts_config_get_int(cfg, "message.max.bytes");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s-%d", data_dir, topic, partition);

    ts_segment_info *local = NULL;
    size_t nlocal = 0, cap = 0;
    ts_status st = TS_OK;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            int64_t base;
            if (ts_segment_parse_name(de->d_name, &base)) continue;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            int64_t last, fts, mts;
            uint64_t size;
            if (ts_segment_scan_file(path, max_batch, &last, &fts, &mts, &size, NULL, 0) ||
                size == 0)
                continue; /* vanished (retention) or empty active segment */
            if (nlocal == cap) {
                cap = cap ? cap * 2 : 32;
                ts_segment_info *nl = realloc(local, cap * sizeof(*nl));
                if (!nl) {
                    closedir(d);
                    free(local);
                    return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
                }
                local = nl;
            }
            ts_segment_info *r = &local[nlocal++];
            memset(r, 0, sizeof(*r));
            r->partition = partition;
            r->base_offset = base;
            r->last_offset = last;
            r->first_timestamp = fts;
            r->max_timestamp = mts;
            r->size_bytes = size;
            r->location = TS_LOC_LOCAL;
        }
        closedir(d);
        if (nlocal) {
            qsort(local, nlocal, sizeof(*local), cmp_base);
            local[nlocal - 1].active = 1;
        }
    }

    ts_objstore *os = NULL;
    ts_index *idx = NULL;
    ts_segment_meta *remote = NULL;
    size_t nremote = 0;
    st = open_store(cfg, &os, errstr, errlen);
    if (st) goto out;
    if (os || d) {
        st = ts_index_create(topic, partition, dir, NULL, &idx, errstr, errlen);
        if (st) goto out;
        st = d ? ts_index_load_local(idx, errstr, errlen) : TS_E_NOT_FOUND;
        if (st == TS_E_NOT_FOUND && os) {
            /* No local copy: read the bucket's newest manifest (without
             * writing anything locally: this is a read-only view). */
            ts_index_destroy(idx);
            idx = NULL;
            char tmp[] = "/tmp/tierctl-XXXXXX";
            if (!mkdtemp(tmp)) {
                st = ts_err_set(errstr, errlen, TS_E_IO, "cannot create a temp dir");
                goto out;
            }
            st = ts_index_create(topic, partition, tmp, os, &idx, errstr, errlen);
            if (!st) st = ts_index_load_remote(idx, errstr, errlen);
            char m[PATH_MAX + 32];
            snprintf(m, sizeof(m), "%s/remote_manifest.json", tmp);
            remove(m);
            rmdir(tmp);
        }
        if (st == TS_E_NOT_FOUND) st = TS_OK;
        if (st) goto out;
        st = ts_index_snapshot(idx, &remote, &nremote);
        if (st) goto out;
    }
    if (!d && nremote == 0) {
        st = ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                        "partition %s-%d not found in %s nor in the bucket", topic, partition,
                        data_dir);
        goto out;
    }
    st = ts_placement_merge(partition, local, nlocal, remote, nremote, rows, nrows);
    if (st) ts_err_set(errstr, errlen, st, "out of memory");
out:
    ts_index_snapshot_free(remote, nremote);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    free(local);
    return st;
}

ts_status ts_topic_partitions_offline(const ts_config *cfg, const char *topic, int32_t **parts,
                                      size_t *nparts, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    ts_objstore *os = NULL;
    ts_status st = open_store(cfg, &os, errstr, errlen);
    if (st) return st;
    st = ts_topic_partitions_scan(ts_config_get_str(cfg, "log.dirs"), os, topic, parts, nparts,
                                  errstr, errlen);
    ts_objstore_destroy(os);
    return st;
}
