/*
 * segment.h — one local log segment and its two sparse indexes.
 *
 * Files of a segment with base offset B, in the partition directory (names
 * and layouts as Kafka's, so operators recognise them):
 *   <B:20>.log        record batches v2 back to back (common/batch.h)
 *   <B:20>.index      8-byte entries, big-endian:
 *                       u32 relative offset (batch base - B) | u32 file position
 *   <B:20>.timeindex  12-byte entries, big-endian:
 *                       i64 max timestamp so far | u32 relative offset of the batch
 * An offset-index entry is written for the first batch and then whenever
 * log.index.interval.bytes have been appended since the last entry; a
 * time-index entry whenever the segment's max timestamp grows at such a
 * point. Indexes are an optimisation: they are rebuilt from the .log
 * whenever missing or inconsistent.
 *
 * Concurrency: a segment is refcounted. The partition mutex protects the
 * mutable fields (size, last_offset, indexes, flags); readers take a
 * reference and a snapshot of `size` under the mutex, then pread outside
 * it (bytes below a snapshotted size never change). Files are unlinked
 * when the last reference of a segment marked deleted goes away, unless
 * ts_segment_remove_files already did (the partition hands removal to a
 * worker so the appending thread never waits on an unlink; open fds of
 * readers stay valid after the unlink).
 */
#ifndef TS_TIERING_SEGMENT_H
#define TS_TIERING_SEGMENT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "tierstore.h"

typedef struct ts_oidx_entry {
    uint32_t rel;
    uint32_t pos;
} ts_oidx_entry;

typedef struct ts_tidx_entry {
    int64_t ts;
    uint32_t rel;
} ts_tidx_entry;

typedef struct ts_segment {
    atomic_int refs;
    int64_t base_offset;
    int64_t last_offset;  /* base_offset - 1 while empty */
    int64_t first_ts;     /* max timestamp of the first batch; -1 while empty */
    int64_t max_ts;       /* -1 while empty */
    uint64_t size;
    int fd;               /* .log, O_RDWR */
    int oidx_fd, tidx_fd; /* index files, open for appending while active */
    char path[PATH_MAX];  /* .log path; the indexes share its stem */
    ts_oidx_entry *oidx;
    size_t n_oidx, cap_oidx;
    ts_tidx_entry *tidx;
    size_t n_tidx, cap_tidx;
    uint64_t bytes_since_entry;
    uint32_t index_interval;
    int64_t created_ms;   /* wall clock of the first append (segment.ms roll) */
    int closed;           /* no more appends */
    int deleted;          /* unlink on last unref */
    atomic_int files_removed; /* ts_segment_remove_files ran: nothing left to unlink */
    int remote;           /* committed to the shadow index */
    int uploading;        /* an upload job holds it */
    int retiring;         /* total retention is removing it: never upload */
    int synced;           /* closed and fsynced (data and indexes) */
} ts_segment;

/* Creates a new empty segment (truncating leftovers of a crashed roll). */
ts_status ts_segment_create(const char *dir, int64_t base_offset, uint32_t index_interval,
                            ts_segment **out, char *errstr, size_t errlen);

/* Opens an existing segment. active or full_scan: scans every batch
 * validating its CRC, truncates a torn tail and rebuilds both indexes (for
 * the active segment and every segment at or past the recovery point, whose
 * data may not have reached the disk before a crash). Otherwise loads the
 * indexes (rebuilding them when missing or inconsistent) and scans only the
 * tail after the last index entry. active also opens it for appending. */
ts_status ts_segment_open(const char *dir, int64_t base_offset, int active, int full_scan,
                          uint32_t index_interval, size_t max_batch, ts_segment **out,
                          char *errstr, size_t errlen);

/* Appends pre-validated batches (offsets already assigned). `n` batches,
 * their starting positions relative to data in rel_pos[], headers in hdrs. */
struct ts_batch_hdr;
ts_status ts_segment_append(ts_segment *s, const uint8_t *data, size_t len,
                            const struct ts_batch_hdr *hdrs, const size_t *rel_pos, size_t n,
                            char *errstr, size_t errlen);

/* Duplicates the active segment's index fds (-1 where none) so that a
 * flush outside the partition lock never touches an fd a concurrent roll
 * closes (ts_segment_seal). Partition lock held; the flush closes them. */
void ts_segment_hold_index_fds(const ts_segment *s, int fds[2]);
/* fdatasyncs the log and the held index fds (from ts_segment_hold_index_fds,
 * or {-1, -1}), closing the latter. Thread: any (no lock). */
ts_status ts_segment_flush(ts_segment *s, int fds[2], char *errstr, size_t errlen);
/* Marks the segment closed and closes its index files, without fsync: a
 * roll on the appending thread (the broker's network loop) must not wait on
 * the disk. The partition syncs closed segments in the background and on
 * flush (ts_segment_sync), and recovery fully scans segments that were not
 * known synced. */
ts_status ts_segment_seal(ts_segment *s, char *errstr, size_t errlen);
/* fsyncs a closed segment's log and index files. Thread: any (no lock). */
ts_status ts_segment_sync(ts_segment *s, char *errstr, size_t errlen);

/* Position of the last indexed batch whose base offset <= offset (0 if none). */
uint64_t ts_segment_lookup_pos(const ts_segment *s, int64_t offset);
/* Position to start a time search: the batch before the first time-index
 * entry with ts >= target (0 if none). */
uint64_t ts_segment_lookup_time_pos(const ts_segment *s, int64_t ts);

/* Reads whole batches starting with the one containing offset, scanning
 * from start_pos, never past limit (a size snapshot), up to max_bytes
 * (at least one batch). Appends to out. Runs without the partition lock. */
ts_status ts_segment_read(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t offset,
                          size_t max_bytes, size_t max_batch, ts_buf *out, char *errstr,
                          size_t errlen);

/* Where ts_segment_read's batches are, without copying them: the same
 * whole batches (same header checks, at least one, up to max_bytes) at
 * *pos, *len bytes, cut before the first batch whose last offset is >=
 * stop_offset (*len 0 when the first one is). *first / *next: base offset
 * of the first batch, last offset of the last + 1. Reads only batch headers
 * (a 4 KiB window at a time). Runs without the partition lock. */
ts_status ts_segment_locate(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t offset,
                            int64_t stop_offset, size_t max_bytes, size_t max_batch,
                            uint64_t *pos, uint64_t *len, int64_t *first, int64_t *next,
                            char *errstr, size_t errlen);

/* First batch with max timestamp >= ts, scanning from start_pos to limit.
 * TS_E_NOT_FOUND if none. */
ts_status ts_segment_find_time(ts_segment *s, uint64_t start_pos, uint64_t limit, int64_t ts,
                               size_t max_batch, int64_t *offset, char *errstr, size_t errlen);

/* Scans a .log file read-only (for offline placement): last offset, first
 * and max timestamp, valid size. Tolerates a torn tail. */
ts_status ts_segment_scan_file(const char *path, size_t max_batch, int64_t *last_offset,
                               int64_t *first_ts, int64_t *max_ts, uint64_t *valid_size,
                               char *errstr, size_t errlen);

void ts_segment_ref(ts_segment *s);
void ts_segment_unref(ts_segment *s);
/* Unlinks the segment's files now (readers holding it keep their fds).
 * Thread: a worker (never the appending thread); no lock needed. */
void ts_segment_remove_files(ts_segment *s);

/* "<dir>/<base:20><ext>" */
void ts_segment_file_path(const char *dir, int64_t base, const char *ext, char *out, size_t len);
/* Parses "<20 digits>.log"; returns 0 and sets *base on success. */
int ts_segment_parse_name(const char *name, int64_t *base);
/* The base offsets of the segment files (names ts_segment_parse_name
 * accepts) in dir, ascending, in a malloc'd *bases (NULL when there are
 * none). TS_E_IO when dir cannot be listed, TS_E_NOMEM. */
ts_status ts_segment_list(const char *dir, int64_t **bases, size_t *n, char *errstr,
                          size_t errlen);

#endif
