/*
 * segment.c — local segment files, sparse indexes and crash recovery
 * (formats in segment.h).
 */
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

#define OIDX_SIZE 8
#define TIDX_SIZE 12

void ts_segment_file_path(const char *dir, int64_t base, const char *ext, char *out, size_t len)
{
    snprintf(out, len, "%s/%020lld%s", dir, (long long)base, ext);
}

int ts_segment_parse_name(const char *name, int64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".log")) return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

ts_status ts_segment_list(const char *dir, int64_t **bases, size_t *n, char *errstr,
                          size_t errlen)
{
    *bases = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ts_err_set(errstr, errlen, TS_E_IO, "cannot list %s: %s", dir, strerror(errno));
    int64_t *v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t b;
        if (ts_segment_parse_name(de->d_name, &b)) continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 32;
            int64_t *nb = realloc(v, cap * sizeof(*nb));
            if (!nb) {
                free(v);
                closedir(d);
                return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
            }
            v = nb;
        }
        v[nv++] = b;
    }
    closedir(d);
    if (nv) qsort(v, nv, sizeof(*v), cmp_i64);
    *bases = v;
    *n = nv;
    return TS_OK;
}

static void stem_path(const ts_segment *s, const char *ext, char *out, size_t len)
{
    size_t n = strlen(s->path) - 4; /* strip ".log" */
    snprintf(out, len, "%.*s%s", (int)n, s->path, ext);
}

static ts_segment *seg_alloc(const char *dir, int64_t base, uint32_t interval)
{
    ts_segment *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    s->base_offset = base;
    s->last_offset = base - 1;
    s->first_ts = s->max_ts = -1;
    s->fd = s->oidx_fd = s->tidx_fd = -1;
    s->index_interval = interval;
    s->created_ms = -1;
    ts_segment_file_path(dir, base, ".log", s->path, sizeof(s->path));
    return s;
}

void ts_segment_remove_files(ts_segment *s)
{
    char p[PATH_MAX];
    ts_fs_unlink(s->path);
    stem_path(s, ".index", p, sizeof(p));
    ts_fs_unlink(p);
    stem_path(s, ".timeindex", p, sizeof(p));
    ts_fs_unlink(p);
    atomic_store(&s->files_removed, 1);
}

static void seg_free(ts_segment *s)
{
    if (s->fd >= 0) close(s->fd);
    if (s->oidx_fd >= 0) close(s->oidx_fd);
    if (s->tidx_fd >= 0) close(s->tidx_fd);
    if (s->deleted && !atomic_load(&s->files_removed)) ts_segment_remove_files(s);
    free(s->oidx);
    free(s->tidx);
    free(s);
}

void ts_segment_ref(ts_segment *s) { atomic_fetch_add(&s->refs, 1); }

void ts_segment_unref(ts_segment *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) seg_free(s);
}

static int push_oidx(ts_segment *s, uint32_t rel, uint32_t pos)
{
    if (s->n_oidx == s->cap_oidx) {
        size_t nc = s->cap_oidx ? s->cap_oidx * 2 : 64;
        ts_oidx_entry *n = realloc(s->oidx, nc * sizeof(*n));
        if (!n) return -1;
        s->oidx = n;
        s->cap_oidx = nc;
    }
    s->oidx[s->n_oidx++] = (ts_oidx_entry){rel, pos};
    return 0;
}

static int push_tidx(ts_segment *s, int64_t ts, uint32_t rel)
{
    if (s->n_tidx == s->cap_tidx) {
        size_t nc = s->cap_tidx ? s->cap_tidx * 2 : 64;
        ts_tidx_entry *n = realloc(s->tidx, nc * sizeof(*n));
        if (!n) return -1;
        s->tidx = n;
        s->cap_tidx = nc;
    }
    s->tidx[s->n_tidx++] = (ts_tidx_entry){ts, rel};
    return 0;
}

/* Records one batch in the in-memory state and, when due, the indexes.
 * Returns the number of index entries added (bit 0 offset, bit 1 time) so
 * the caller can persist them, or -1 on allocation failure. */
static int note_batch(ts_segment *s, const ts_batch_hdr *h, uint64_t pos)
{
    int added = 0;
    size_t sz = ts_batch_total_size(h);
    uint32_t rel = (uint32_t)(h->base_offset - s->base_offset);
    if (s->n_oidx == 0 || s->bytes_since_entry >= s->index_interval) {
        if (push_oidx(s, rel, (uint32_t)pos)) return -1;
        added |= 1;
        s->bytes_since_entry = 0;
        /* Entry carries the max timestamp so far including this batch (it
         * may have grown between index points), and this batch's offset: a
         * search for ts lands here or later. */
        int64_t m = h->max_timestamp > s->max_ts ? h->max_timestamp : s->max_ts;
        if (m > (s->n_tidx ? s->tidx[s->n_tidx - 1].ts : -1)) {
            if (push_tidx(s, m, rel)) return -1;
            added |= 2;
        }
    }
    s->bytes_since_entry += sz;
    if (s->first_ts < 0) s->first_ts = h->max_timestamp;
    if (h->max_timestamp > s->max_ts) s->max_ts = h->max_timestamp;
    s->last_offset = ts_batch_last_offset(h);
    s->size = pos + sz;
    return added;
}

static ts_status open_index_fds(ts_segment *s, char *errstr, size_t errlen)
{
    char p[PATH_MAX];
    stem_path(s, ".index", p, sizeof(p));
    s->oidx_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->oidx_fd < 0) goto fail;
    stem_path(s, ".timeindex", p, sizeof(p));
    s->tidx_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->tidx_fd < 0) goto fail;
    return TS_OK;
fail:
    return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open index %s: %s", p,
                      strerror(errno));
}

static ts_status write_indexes(ts_segment *s, char *errstr, size_t errlen)
{
    char p[PATH_MAX];
    uint8_t *b = malloc(s->n_oidx * OIDX_SIZE + s->n_tidx * TIDX_SIZE + 1);
    if (!b) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory writing indexes");
    for (size_t i = 0; i < s->n_oidx; i++) {
        ts_wr32(b + i * OIDX_SIZE, s->oidx[i].rel);
        ts_wr32(b + i * OIDX_SIZE + 4, s->oidx[i].pos);
    }
    stem_path(s, ".index", p, sizeof(p));
    ts_status st = ts_fs_write_atomic(p, b, s->n_oidx * OIDX_SIZE, errstr, errlen);
    if (!st) {
        for (size_t i = 0; i < s->n_tidx; i++) {
            ts_wr64(b + i * TIDX_SIZE, (uint64_t)s->tidx[i].ts);
            ts_wr32(b + i * TIDX_SIZE + 8, s->tidx[i].rel);
        }
        stem_path(s, ".timeindex", p, sizeof(p));
        st = ts_fs_write_atomic(p, b, s->n_tidx * TIDX_SIZE, errstr, errlen);
    }
    free(b);
    return st;
}

ts_status ts_segment_create(const char *dir, int64_t base_offset, uint32_t index_interval,
                            ts_segment **out, char *errstr, size_t errlen)
{
    ts_segment *s = seg_alloc(dir, base_offset, index_interval);
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        ts_status st = ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                                  "cannot create segment %s: %s", s->path, strerror(errno));
        seg_free(s);
        return st;
    }
    char p[PATH_MAX];
    stem_path(s, ".index", p, sizeof(p));
    ts_fs_unlink(p);
    stem_path(s, ".timeindex", p, sizeof(p));
    ts_fs_unlink(p);
    /* No directory fsync here (it would block the appending thread at
     * every roll): the partition fsyncs the directory with the next flush. */
    ts_status st = open_index_fds(s, errstr, errlen);
    if (st) {
        seg_free(s);
        return st;
    }
    *out = s;
    return TS_OK;
}

/* Scans batches from pos to the end of the file, noting each; validate
 * checks CRCs. Stops at the first bad batch and reports its position in
 * *bad_pos (UINT64_MAX when the whole file is valid). */
static ts_status scan_from(ts_segment *s, uint64_t pos, uint64_t file_size, int validate,
                           size_t max_batch, uint64_t *bad_pos, char *errstr, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    *bad_pos = UINT64_MAX;
    while (pos < file_size) {
        uint8_t hb[TS_BATCH_HEADER_SIZE];
        ts_batch_hdr h;
        char e[256];
        if (file_size - pos < TS_BATCH_HEADER_SIZE ||
            ts_fs_read_full(s->fd, hb, sizeof(hb), pos) != (ssize_t)sizeof(hb) ||
            ts_batch_parse_header(hb, sizeof(hb), max_batch, &h, e, sizeof(e)) ||
            pos + ts_batch_total_size(&h) > file_size || h.base_offset <= s->last_offset ||
            h.base_offset < s->base_offset ||
            ts_batch_last_offset(&h) - s->base_offset > (int64_t)UINT32_MAX) {
            *bad_pos = pos;
            break;
        }
        size_t sz = ts_batch_total_size(&h);
        if (validate) {
            if (sz > cap) {
                uint8_t *nb = realloc(buf, sz);
                if (!nb) {
                    free(buf);
                    return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
                }
                buf = nb;
                cap = sz;
            }
            if (ts_fs_read_full(s->fd, buf, sz, pos) != (ssize_t)sz ||
                ts_batch_validate(buf, sz, max_batch, &h, e, sizeof(e))) {
                *bad_pos = pos;
                break;
            }
        }
        if (note_batch(s, &h, pos) < 0) {
            free(buf);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        pos += sz;
    }
    free(buf);
    return TS_OK;
}

static void reset_state(ts_segment *s)
{
    s->n_oidx = s->n_tidx = 0;
    s->bytes_since_entry = 0;
    s->last_offset = s->base_offset - 1;
    s->first_ts = s->max_ts = -1;
    s->size = 0;
}

/* Loads the index files; returns 0 when they are present and consistent
 * with a file of file_size bytes. */
static int load_indexes(ts_segment *s, uint64_t file_size)
{
    char p[PATH_MAX];
    uint8_t *b = NULL;
    size_t len = 0;
    stem_path(s, ".index", p, sizeof(p));
    if (ts_fs_read_all(p, 1u << 30, &b, &len, NULL, 0) || len % OIDX_SIZE) goto fail;
    for (size_t i = 0; i < len / OIDX_SIZE; i++) {
        uint32_t rel = ts_rd32(b + i * OIDX_SIZE), pos = ts_rd32(b + i * OIDX_SIZE + 4);
        if (pos >= file_size || (s->n_oidx && (rel <= s->oidx[s->n_oidx - 1].rel ||
                                               pos <= s->oidx[s->n_oidx - 1].pos)))
            goto fail;
        if (push_oidx(s, rel, pos)) goto fail;
    }
    free(b);
    b = NULL;
    if (file_size && (s->n_oidx == 0 || s->oidx[0].pos != 0)) goto fail;
    stem_path(s, ".timeindex", p, sizeof(p));
    if (ts_fs_read_all(p, 1u << 30, &b, &len, NULL, 0) || len % TIDX_SIZE) goto fail;
    for (size_t i = 0; i < len / TIDX_SIZE; i++) {
        int64_t ts = (int64_t)ts_rd64(b + i * TIDX_SIZE);
        uint32_t rel = ts_rd32(b + i * TIDX_SIZE + 8);
        if (s->n_tidx && (ts <= s->tidx[s->n_tidx - 1].ts || rel <= s->tidx[s->n_tidx - 1].rel))
            goto fail;
        if (s->n_oidx == 0 || rel > s->oidx[s->n_oidx - 1].rel) goto fail;
        if (push_tidx(s, ts, rel)) goto fail;
    }
    free(b);
    return 0;
fail:
    free(b);
    s->n_oidx = s->n_tidx = 0;
    return -1;
}

ts_status ts_segment_open(const char *dir, int64_t base_offset, int active, int full_scan,
                          uint32_t index_interval, size_t max_batch, ts_segment **out,
                          char *errstr, size_t errlen)
{
    ts_segment *s = seg_alloc(dir, base_offset, index_interval);
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    ts_status st;
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        st = ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open segment %s: %s",
                        s->path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) {
        st = ts_err_set(errstr, errlen, TS_E_IO, "cannot stat %s: %s", s->path, strerror(errno));
        goto fail;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    uint64_t bad = UINT64_MAX;
    int rebuilt = 0;
    if (!active && !full_scan && load_indexes(s, file_size) == 0) {
        /* Restore state from the last indexed batch, then scan the tail
         * (less than one index interval, plus the last batch). */
        uint64_t pos = 0;
        if (s->n_oidx) {
            const ts_oidx_entry *last = &s->oidx[s->n_oidx - 1];
            pos = last->pos;
            s->last_offset = s->base_offset + (int64_t)last->rel - 1;
            s->max_ts = s->n_tidx ? s->tidx[s->n_tidx - 1].ts : -1;
            s->bytes_since_entry = 0;
            uint8_t hb[TS_BATCH_HEADER_SIZE];
            ts_batch_hdr h;
            if (ts_fs_read_full(s->fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb) &&
                !ts_batch_parse_header(hb, sizeof(hb), max_batch, &h, NULL, 0))
                s->first_ts = h.max_timestamp;
        }
        st = scan_from(s, pos, file_size, 1, max_batch, &bad, errstr, errlen);
        if (st) goto fail;
    } else {
        reset_state(s);
        st = scan_from(s, 0, file_size, 1, max_batch, &bad, errstr, errlen);
        if (st) goto fail;
        rebuilt = 1;
    }
    if (bad != UINT64_MAX) {
        ts_log_warn("tiering", "segment %s: invalid or torn batch at position %llu of %llu; "
                    "truncating the segment there",
                    s->path, (unsigned long long)bad, (unsigned long long)file_size);
        if (ftruncate(s->fd, (off_t)bad) != 0 || ts_fs_fsync_fd(s->fd) != 0) {
            st = ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                            "cannot truncate %s: %s", s->path, strerror(errno));
            goto fail;
        }
        rebuilt = 1;
    }
    if (rebuilt || active || full_scan) {
        st = write_indexes(s, errstr, errlen);
        if (st) goto fail;
    }
    if (full_scan && !active) {
        /* Validated now: make it durable so the recovery point can move. */
        if (fdatasync(s->fd) != 0) {
            st = ts_err_set(errstr, errlen, ts_status_from_errno(errno), "fsync of %s failed: %s",
                            s->path, strerror(errno));
            goto fail;
        }
    }
    s->size = bad != UINT64_MAX ? bad : file_size;
    if (active) {
        st = open_index_fds(s, errstr, errlen);
        if (st) goto fail;
    } else {
        s->closed = 1;
        s->synced = 1; /* scanned above the recovery point: synced; below it: known synced */
    }
    *out = s;
    return TS_OK;
fail:
    seg_free(s);
    return st;
}

ts_status ts_segment_append(ts_segment *s, const uint8_t *data, size_t len,
                            const ts_batch_hdr *hdrs, const size_t *rel_pos, size_t n,
                            char *errstr, size_t errlen)
{
    uint64_t start = s->size;
    if (ts_fs_write_full(s->fd, data, len, (int64_t)start) < 0) {
        int e = errno;
        /* Leave no partial batch behind: the next append or recovery must
         * find the log ending on a batch boundary. */
        if (ftruncate(s->fd, (off_t)start) != 0) { /* recovery truncates it */ }
        return ts_err_set(errstr, errlen, ts_status_from_errno(e), "append to %s failed: %s",
                          s->path, strerror(e));
    }
    if (s->created_ms < 0) s->created_ms = ts_now_ms();
    /* Snapshot of the in-memory state, restored if indexing fails, so the
     * log and its state never disagree about what was appended. */
    int64_t last0 = s->last_offset, first_ts0 = s->first_ts, max_ts0 = s->max_ts;
    size_t n_oidx0 = s->n_oidx, n_tidx0 = s->n_tidx;
    uint64_t since0 = s->bytes_since_entry;
    for (size_t i = 0; i < n; i++) {
        int added = note_batch(s, &hdrs[i], start + rel_pos[i]);
        if (added < 0) {
            s->last_offset = last0;
            s->first_ts = first_ts0;
            s->max_ts = max_ts0;
            s->n_oidx = n_oidx0;
            s->n_tidx = n_tidx0;
            s->bytes_since_entry = since0;
            s->size = start;
            if (ftruncate(s->fd, (off_t)start) != 0) { /* recovery truncates it */ }
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (index)");
        }
        uint8_t e[TIDX_SIZE];
        if (added & 1) {
            ts_wr32(e, s->oidx[s->n_oidx - 1].rel);
            ts_wr32(e + 4, s->oidx[s->n_oidx - 1].pos);
            if (ts_fs_write_full(s->oidx_fd, e, OIDX_SIZE, TS_FS_AT_POS) < 0) goto idx_fail;
        }
        if (added & 2) {
            ts_wr64(e, (uint64_t)s->tidx[s->n_tidx - 1].ts);
            ts_wr32(e + 8, s->tidx[s->n_tidx - 1].rel);
            if (ts_fs_write_full(s->tidx_fd, e, TIDX_SIZE, TS_FS_AT_POS) < 0) goto idx_fail;
        }
    }
    return TS_OK;
idx_fail:
    /* The log itself is intact; a damaged index is rebuilt on open. */
    ts_log_warn("tiering", "index write for %s failed: %s (rebuilt on next open)", s->path,
                strerror(errno));
    return TS_OK;
}

void ts_segment_hold_index_fds(const ts_segment *s, int fds[2])
{
    fds[0] = s->oidx_fd >= 0 ? fcntl(s->oidx_fd, F_DUPFD_CLOEXEC, 0) : -1;
    fds[1] = s->tidx_fd >= 0 ? fcntl(s->tidx_fd, F_DUPFD_CLOEXEC, 0) : -1;
}

ts_status ts_segment_flush(ts_segment *s, int fds[2], char *errstr, size_t errlen)
{
    ts_status st = TS_OK;
    if (ts_fs_fdatasync_fd(s->fd) != 0)
        st = ts_err_set(errstr, errlen, ts_status_from_errno(errno), "fsync of %s failed: %s",
                        s->path, strerror(errno));
    for (int i = 0; i < 2; i++) {
        /* An index that fails to sync is rebuilt from the log on open. */
        if (fds[i] >= 0 && !st) ts_fs_fdatasync_fd(fds[i]);
        if (fds[i] >= 0) close(fds[i]);
        fds[i] = -1;
    }
    return st;
}

ts_status ts_segment_seal(ts_segment *s, char *errstr, size_t errlen)
{
    (void)errstr;
    (void)errlen;
    if (s->oidx_fd >= 0) close(s->oidx_fd);
    if (s->tidx_fd >= 0) close(s->tidx_fd);
    s->oidx_fd = s->tidx_fd = -1;
    s->closed = 1;
    return TS_OK;
}

ts_status ts_segment_sync(ts_segment *s, char *errstr, size_t errlen)
{
    int none[2] = {-1, -1}; /* sealed: the index fds are closed, synced by path below */
    ts_status st = ts_segment_flush(s, none, errstr, errlen);
    if (st) return st;
    /* The index files' fds are closed once sealed: sync them by path. */
    const char *exts[] = {".index", ".timeindex"};
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX];
        stem_path(s, exts[i], p, sizeof(p));
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (ts_fs_fsync_fd(fd) != 0) { /* rebuilt from the log if damaged */ }
            close(fd);
        }
    }
    return TS_OK;
}

uint64_t ts_segment_lookup_pos(const ts_segment *s, int64_t offset)
{
    if (offset <= s->base_offset || s->n_oidx == 0) return 0;
    uint64_t rel = (uint64_t)(offset - s->base_offset);
    size_t lo = 0, hi = s->n_oidx; /* find last entry with rel <= target */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->oidx[mid].rel <= rel) lo = mid;
        else hi = mid;
    }
    return s->oidx[lo].rel <= rel ? s->oidx[lo].pos : 0;
}

uint64_t ts_segment_lookup_time_pos(const ts_segment *s, int64_t ts)
{
    size_t lo = 0, hi = s->n_tidx; /* first entry with ts >= target */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->tidx[mid].ts < ts) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    /* The answer lies after the previous entry's batch. */
    return ts_segment_lookup_pos(s, s->base_offset + s->tidx[lo - 1].rel);
}

ts_status ts_segment_read(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t offset,
                          size_t max_bytes, size_t max_batch, ts_buf *out, char *errstr,
                          size_t errlen)
{
    uint64_t pos = start_pos;
    uint8_t hb[TS_BATCH_HEADER_SIZE];
    ts_batch_hdr h;
    /* Skip to the batch containing offset (at most one index interval). */
    for (;;) {
        if (pos + TS_BATCH_HEADER_SIZE > limit) return TS_OK; /* nothing at/after offset */
        if (ts_fs_read_full(s->fd, hb, sizeof(hb), pos) != (ssize_t)sizeof(hb))
            return ts_err_set(errstr, errlen, TS_E_IO, "read of %s at %llu failed", s->path,
                              (unsigned long long)pos);
        ts_status st = ts_batch_parse_header(hb, sizeof(hb), max_batch, &h, errstr, errlen);
        if (st) return ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "%s at position %llu", s->path,
                                     (unsigned long long)pos);
        if (ts_batch_last_offset(&h) >= offset) break;
        pos += ts_batch_total_size(&h);
    }
    /* Take whole batches: read a window, then trim at the last boundary. */
    size_t first = ts_batch_total_size(&h);
    size_t want = max_bytes > first ? max_bytes : first;
    if (want > limit - pos) want = (size_t)(limit - pos);
    ts_status st = ts_buf_reserve(out, want);
    if (st) return ts_err_set(errstr, errlen, st, "read buffer limit reached");
    uint8_t *dst = out->data + out->len;
    if (ts_fs_read_full(s->fd, dst, want, pos) != (ssize_t)want)
        return ts_err_set(errstr, errlen, TS_E_IO, "read of %s at %llu failed", s->path,
                          (unsigned long long)pos);
    size_t used = 0;
    while (used + TS_BATCH_HEADER_SIZE <= want) {
        if (ts_batch_parse_header(dst + used, want - used, max_batch, &h, NULL, 0)) break;
        size_t sz = ts_batch_total_size(&h);
        if (used + sz > want) break;
        used += sz;
    }
    if (used == 0)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s: no whole batch at position %llu",
                          s->path, (unsigned long long)pos);
    out->len += used;
    return TS_OK;
}

/* A window of a segment file for reading batch headers one after another
 * with a syscall per 4 KiB rather than per batch (small batches share it). */
typedef struct hdr_window {
    uint8_t b[4096];
    uint64_t pos;
    size_t len;
} hdr_window;

/* The header at pos: 0, 1 when no whole header lies below limit, -1 on a
 * read error, -2 when it does not parse. */
static int hdr_window_at(ts_segment *s, hdr_window *w, uint64_t pos, uint64_t limit,
                         size_t max_batch, ts_batch_hdr *h)
{
    if (pos + TS_BATCH_HEADER_SIZE > limit) return 1;
    if (pos < w->pos || pos + TS_BATCH_HEADER_SIZE > w->pos + w->len) {
        size_t want = sizeof(w->b);
        if (want > limit - pos) want = (size_t)(limit - pos);
        ssize_t n = ts_fs_read_full(s->fd, w->b, want, (int64_t)pos);
        if (n < (ssize_t)TS_BATCH_HEADER_SIZE) {
            w->len = 0;
            return -1;
        }
        w->pos = pos;
        w->len = (size_t)n;
    }
    const uint8_t *p = w->b + (pos - w->pos);
    return ts_batch_parse_header(p, TS_BATCH_HEADER_SIZE, max_batch, h, NULL, 0) ? -2 : 0;
}

ts_status ts_segment_locate(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t offset,
                            int64_t stop_offset, size_t max_bytes, size_t max_batch,
                            uint64_t *pos_out, uint64_t *len_out, int64_t *first_out,
                            int64_t *next_out, char *errstr, size_t errlen)
{
    hdr_window win, *w = &win;
    w->pos = 0;
    w->len = 0;
    ts_status st = TS_OK;
    uint64_t pos = start_pos;
    ts_batch_hdr h;
    *pos_out = start_pos;
    *len_out = 0;
    *first_out = *next_out = offset;
    /* Skip to the batch containing offset, as ts_segment_read does. */
    for (;;) {
        int r = hdr_window_at(s, w, pos, limit, max_batch, &h);
        if (r == 1) goto out; /* nothing at/after offset */
        if (r == -1) {
            st = ts_err_set(errstr, errlen, TS_E_IO, "read of %s at %llu failed", s->path,
                            (unsigned long long)pos);
            goto out;
        }
        if (r == -2) {
            st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s at position %llu: bad batch header",
                            s->path, (unsigned long long)pos);
            goto out;
        }
        if (ts_batch_last_offset(&h) >= offset) break;
        pos += ts_batch_total_size(&h);
    }
    size_t first = ts_batch_total_size(&h);
    if (first > limit - pos) {
        st = ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s: no whole batch at position %llu",
                        s->path, (unsigned long long)pos);
        goto out;
    }
    /* The copy path's window: whole batches within max(max_bytes, first),
     * then the host's cut below stop_offset. A header that does not parse
     * ends the range (the next read starting there reports it). */
    uint64_t want = max_bytes > first ? max_bytes : first;
    if (want > limit - pos) want = limit - pos;
    uint64_t used = 0;
    int64_t next = h.base_offset;
    *first_out = h.base_offset;
    for (;;) {
        if (used) {
            int r = hdr_window_at(s, w, pos + used, pos + want, max_batch, &h);
            if (r == -1) {
                st = ts_err_set(errstr, errlen, TS_E_IO, "read of %s at %llu failed", s->path,
                                (unsigned long long)(pos + used));
                goto out;
            }
            if (r) break;
        }
        size_t sz = ts_batch_total_size(&h);
        if (used + sz > want || ts_batch_last_offset(&h) >= stop_offset) break;
        used += sz;
        next = ts_batch_last_offset(&h) + 1;
    }
    *pos_out = pos;
    *len_out = used;
    *next_out = used ? next : offset;
out:
    return st;
}

ts_status ts_segment_find_time(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t ts,
                               size_t max_batch, int64_t *offset, char *errstr, size_t errlen)
{
    uint64_t pos = start_pos;
    while (pos + TS_BATCH_HEADER_SIZE <= limit) {
        uint8_t hb[TS_BATCH_HEADER_SIZE];
        ts_batch_hdr h;
        if (ts_fs_read_full(s->fd, hb, sizeof(hb), pos) != (ssize_t)sizeof(hb) ||
            ts_batch_parse_header(hb, sizeof(hb), max_batch, &h, errstr, errlen))
            return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s: bad batch at %llu", s->path,
                              (unsigned long long)pos);
        if (h.max_timestamp >= ts) {
            *offset = h.base_offset;
            return TS_OK;
        }
        pos += ts_batch_total_size(&h);
    }
    return TS_E_NOT_FOUND;
}

ts_status ts_segment_scan_file(const char *path, size_t max_batch, int64_t *last_offset,
                               int64_t *first_ts, int64_t *max_ts, uint64_t *valid_size,
                               char *errstr, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open %s: %s", path,
                          strerror(errno));
    struct stat sb;
    fstat(fd, &sb);
    uint64_t size = (uint64_t)sb.st_size, pos = 0;
    *last_offset = -1;
    *first_ts = *max_ts = -1;
    while (pos + TS_BATCH_HEADER_SIZE <= size) {
        uint8_t hb[TS_BATCH_HEADER_SIZE];
        ts_batch_hdr h;
        if (ts_fs_read_full(fd, hb, sizeof(hb), pos) != (ssize_t)sizeof(hb) ||
            ts_batch_parse_header(hb, sizeof(hb), max_batch, &h, NULL, 0) ||
            pos + ts_batch_total_size(&h) > size)
            break;
        *last_offset = ts_batch_last_offset(&h);
        if (*first_ts < 0) *first_ts = h.max_timestamp;
        if (h.max_timestamp > *max_ts) *max_ts = h.max_timestamp;
        pos += ts_batch_total_size(&h);
    }
    close(fd);
    *valid_size = pos;
    return TS_OK;
}
