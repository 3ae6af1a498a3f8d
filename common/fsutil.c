/* fsutil.c — durable file helpers (see fsutil.h). */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"

ssize_t ts_fs_read_full(int fd, void *buf, size_t len, int64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = off < 0 ? read(fd, (uint8_t *)buf + got, len - got)
                            : pread(fd, (uint8_t *)buf + got, len - got, (off_t)off + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break; /* end of file */
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t ts_fs_write_full(int fd, const void *buf, size_t len, int64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = off < 0 ? write(fd, (const uint8_t *)buf + done, len - done)
                            : pwrite(fd, (const uint8_t *)buf + done, len - done,
                                     (off_t)off + (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}

ts_status ts_fs_mkdirs(const char *path, char *errstr, size_t errlen)
{
    char tmp[PATH_MAX];
    if (ts_strlcpy(tmp, path, sizeof(tmp)))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                              "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno),
                          "cannot create directory %s: %s", tmp, strerror(errno));
    return TS_OK;
}

static _Thread_local uint64_t t_fsyncs, t_unlinks;
static atomic_ullong g_fsyncs, g_unlinks;

int ts_fs_fsync_fd(int fd)
{
    t_fsyncs++;
    atomic_fetch_add(&g_fsyncs, 1);
    return fsync(fd);
}

int ts_fs_fdatasync_fd(int fd)
{
    t_fsyncs++;
    atomic_fetch_add(&g_fsyncs, 1);
    return fdatasync(fd);
}

int ts_fs_unlink(const char *path)
{
    int rc = unlink(path);
    if (rc == 0) { /* a missing file cost nothing worth counting */
        t_unlinks++;
        atomic_fetch_add(&g_unlinks, 1);
    }
    return rc;
}

void ts_fs_thread_io_counts(uint64_t *fsyncs, uint64_t *unlinks)
{
    if (fsyncs) *fsyncs = t_fsyncs;
    if (unlinks) *unlinks = t_unlinks;
}

void ts_fs_total_io_counts(uint64_t *fsyncs, uint64_t *unlinks)
{
    if (fsyncs) *fsyncs = atomic_load(&g_fsyncs);
    if (unlinks) *unlinks = atomic_load(&g_unlinks);
}

ts_status ts_fs_fsync_dir(const char *dir, char *errstr, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open directory %s: %s",
                          dir, strerror(errno));
    int rc = ts_fs_fsync_fd(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(e), "fsync of directory %s failed: %s",
                          dir, strerror(e));
    return TS_OK;
}

ts_status ts_fs_write_atomic(const char *path, const void *data, size_t len, char *errstr,
                             size_t errlen)
{
    char tmp[PATH_MAX], dir[PATH_MAX], rnd[17];
    ts_rand_hex(rnd, 8);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, rnd) >= (int)sizeof(tmp))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot create %s: %s", tmp,
                          strerror(errno));
    if (ts_fs_write_full(fd, data, len, TS_FS_AT_POS) < 0) goto fail;
    if (ts_fs_fsync_fd(fd) != 0) goto fail;
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    ts_strlcpy(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = '\0';
    else strcpy(dir, slash ? "/" : ".");
    return ts_fs_fsync_dir(dir, errstr, errlen);
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return ts_err_set(errstr, errlen, ts_status_from_errno(e), "cannot write %s: %s", path,
                      strerror(e));
}

ts_status ts_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *out_len,
                         char *errstr, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "%s is %lld bytes, more than the %zu allowed",
                          path, (long long)st.st_size, max);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory reading %s", path);
    }
    ssize_t got = ts_fs_read_full(fd, buf, len, 0);
    close(fd);
    if (got != (ssize_t)len) {
        free(buf);
        return ts_err_set(errstr, errlen, TS_E_IO, "short read of %s", path);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return TS_OK;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

ts_status ts_fs_rmtree(const char *path, char *errstr, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) return TS_OK;
    if (nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return ts_err_set(errstr, errlen, TS_E_IO, "cannot remove %s: %s", path, strerror(errno));
    return TS_OK;
}

static __thread uint64_t g_du;
static int du_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path; (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode)) g_du += (uint64_t)sb->st_size;
    return 0;
}

uint64_t ts_fs_du(const char *path)
{
    g_du = 0;
    nftw(path, du_cb, 32, FTW_PHYS);
    return g_du;
}

ts_status ts_strlcpy(char *dst, const char *src, size_t dstlen)
{
    size_t n = strlen(src);
    if (n >= dstlen) {
        if (dstlen) {
            memcpy(dst, src, dstlen - 1);
            dst[dstlen - 1] = '\0';
        }
        return TS_E_INVAL;
    }
    memcpy(dst, src, n + 1);
    return TS_OK;
}

void ts_rand_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof(raw)) nbytes = sizeof(raw);
    if (RAND_bytes(raw, (int)nbytes) != 1) {
        uint64_t x = (uint64_t)ts_mono_us() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < nbytes; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}
