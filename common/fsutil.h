/*
 * fsutil.h — durable file-system helpers. "Durable" means: data fsynced,
 * renamed into place, and the directory fsynced, so that after a crash the
 * file is either absent or complete.
 */
#ifndef TS_COMMON_FSUTIL_H
#define TS_COMMON_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "tierstore.h"

/* The one full read/write pair of the tree: both retry EINTR and short
 * transfers until len bytes moved. off >= 0 reads/writes at that offset
 * (pread/pwrite, the file position is untouched); TS_FS_AT_POS (-1) uses and
 * advances the file position (read/write).
 *
 * Return convention (both): the number of bytes transferred, or -1 with
 * errno set. A read returns less than len only at end of file (0 = EOF at
 * once); a write returns len or -1 (a write(2) that moves nothing is EIO). */
#define TS_FS_AT_POS ((int64_t)-1)
ssize_t ts_fs_read_full(int fd, void *buf, size_t len, int64_t off);
ssize_t ts_fs_write_full(int fd, const void *buf, size_t len, int64_t off);

ts_status ts_fs_mkdirs(const char *path, char *errstr, size_t errlen);
ts_status ts_fs_fsync_dir(const char *dir, char *errstr, size_t errlen);
/* Writes path atomically: tmp file in the same directory, fsync, rename,
 * fsync the directory. */
ts_status ts_fs_write_atomic(const char *path, const void *data, size_t len,
                             char *errstr, size_t errlen);
/* Reads a whole file (up to max bytes) into a malloc'd buffer. */
ts_status ts_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *out_len,
                         char *errstr, size_t errlen);
/* Removes a directory tree (like rm -rf). Missing is OK. */
ts_status ts_fs_rmtree(const char *path, char *errstr, size_t errlen);
/* Sum of the sizes of regular files under path (recursive). */
uint64_t ts_fs_du(const char *path);
/* fsync(2) / unlink(2) that count, per thread and in total, the calls
 * that did work: the engine keeps both off the appending thread (the
 * broker's network loop) and tests prove it by reading the calling
 * thread's counts. Same return values as the system calls. */
int ts_fs_fsync_fd(int fd);
int ts_fs_fdatasync_fd(int fd);
int ts_fs_unlink(const char *path);
/* Counts of the calling thread (either pointer may be NULL). */
void ts_fs_thread_io_counts(uint64_t *fsyncs, uint64_t *unlinks);
/* Counts of every thread of the process. */
void ts_fs_total_io_counts(uint64_t *fsyncs, uint64_t *unlinks);
/* Copies at most dstlen-1 chars; returns TS_E_INVAL when it would truncate. */
ts_status ts_strlcpy(char *dst, const char *src, size_t dstlen);
/* Fills out with 2*nbytes lowercase hex chars of OpenSSL randomness + NUL. */
void ts_rand_hex(char *out, size_t nbytes);

#endif
