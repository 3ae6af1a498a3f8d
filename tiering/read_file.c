/*
 * read_file.c — hot reads handed out as file ranges (ts_partition_read_file,
 * the plugin's read_file), so the broker can sendfile(2) them instead of
 * copying them through a buffer.
 *
 * Why the bytes of a range cannot change under a queued response: the range
 * is a duplicated fd plus (offset, length) below a size snapshot and below
 * the high watermark. Segment removal (retention, DeleteRecords, delete,
 * reset_local) only unlinks files, and an open fd keeps the inode; the only
 * in-place cut, a replica's truncate (replica.c cut_segment), refuses to go
 * below the high watermark; appends write past the snapshot. So the only
 * way a range goes short is outside the engine (someone truncating the
 * file by hand), which the sender detects (sendfile returning 0) and answers
 * by closing the connection, never with other bytes.
 *
 * Threading: any thread; p->mu only for the segment lookup, the header
 * scan runs unlocked on a segment reference, as ts_partition_read does.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "internal.h"

ts_status ts_partition_read_file(ts_partition *p, int64_t offset, size_t max_bytes,
                                 int64_t stop_offset, ts_file_range *out, char *errstr,
                                 size_t errlen)
{
    out->fd = -1;
    out->file_offset = out->length = 0;
    out->first_offset = out->next_offset = offset;
    pthread_mutex_lock(&p->mu);
    if (p->deleted) {
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, TS_E_CLOSED, "%s-%d was deleted", p->topic, p->id);
    }
    int64_t start = ts_part_log_start_locked(p), leo = p->leo;
    if (offset < start || offset > leo) {
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, TS_E_OFFSET_OUT_OF_RANGE,
                          "%s-%d: offset %lld is out of range [%lld, %lld]", p->topic, p->id,
                          (long long)offset, (long long)start, (long long)leo);
    }
    /* The high watermark bounds what a range may hold: below it nothing is
     * ever cut in place (see the top of this file). */
    int64_t stop = p->replicated && p->hw < leo ? p->hw : leo;
    if (stop_offset < stop) stop = stop_offset;
    if (offset >= stop) {
        pthread_mutex_unlock(&p->mu);
        return TS_OK;
    }
    if (offset < p->segs[0]->base_offset && p->idx) {
        pthread_mutex_unlock(&p->mu);
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "%s-%d: offset %lld is not on local disk (local start %lld)", p->topic,
                          p->id, (long long)offset, (long long)p->segs[0]->base_offset);
    }
    ts_segment *s = ts_part_seg_for_locked(p, offset); /* the one ts_partition_read reads */
    ts_segment_ref(s);
    uint64_t limit = s->size;
    uint64_t pos = ts_segment_lookup_pos(s, offset);
    size_t max_batch = ts_part_max_batch(p);
    pthread_mutex_unlock(&p->mu);

    uint64_t at = 0, len = 0;
    int64_t first = offset, next = offset;
    ts_status st = ts_segment_locate(s, pos, limit, offset, stop, max_bytes, max_batch, &at, &len,
                                     &first, &next, errstr, errlen);
    if (st == TS_OK && len) {
        int fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            st = ts_err_set(errstr, errlen, errno == EMFILE || errno == ENFILE ? TS_E_NOMEM : TS_E_IO,
                            "%s-%d: cannot duplicate the descriptor of %s: %s", p->topic, p->id,
                            s->path, strerror(errno));
        } else {
            out->fd = fd;
            out->file_offset = at;
            out->length = len;
            out->first_offset = first;
            out->next_offset = next;
        }
    }
    ts_segment_unref(s);
    if (st)
        return ts_err_prefix(errstr, errlen, st, "%s-%d read at offset %lld", p->topic, p->id,
                             (long long)offset);
    return TS_OK;
}
