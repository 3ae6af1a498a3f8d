/*
 * out.c — sends a response frame from its parts (memory and file ranges):
 * sendfile(2) on plaintext sockets, pread into one bounded staging buffer
 * through TLS. See out.h for the rules; net.c owns the queue of frames.
 *
 * Never wrong bytes: a file part is promised whole by the storage plugin
 * (tierstore_plugin.h, read_file); if the file nevertheless ends early
 * (sendfile or pread returning 0 before the part's end) the frame cannot be
 * finished honestly, since its size prefix is already on the wire, so the
 * result is BOUT_SHORT and the caller closes the connection.
 *
 * Threading: bout_write runs on the loop thread; the descriptor count is
 * atomic (Fetch workers take, the loop gives back).
 */
#include "out.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* One sendfile call moves at most this much (the kernel caps a call near
 * 2 GiB anyway; smaller calls keep the loop responsive). */
#define BOUT_SENDFILE_MAX (8u << 20)

void bout_cursor_reset(bout_cursor *cur)
{
    free(cur->stage);
    memset(cur, 0, sizeof(*cur));
}

void bout_parts_close(bout_part *parts, size_t nparts)
{
    int n = 0;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].fd >= 0) {
            close(parts[i].fd);
            parts[i].fd = -1;
            n++;
        }
    if (n) bout_fds_give(n);
}

/* Sends memory bytes through send_fn; 1 sent some, 0 would block, -1 error. */
static int send_some(bout_send_fn send_fn, void *ctx, const uint8_t *p, size_t n, size_t *put,
                     char *err, size_t errlen)
{
    for (;;) {
        ssize_t w = send_fn(ctx, p, n);
        if (w > 0) {
            *put = (size_t)w;
            return 1;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (err && errlen && !err[0]) snprintf(err, errlen, "send: %s", w < 0 ? strerror(errno) : "wrote nothing");
        return -1;
    }
}

/* The copy path of a file part: refill the staging buffer when empty, send
 * from it. The buffer stays unchanged until fully sent (TLS retries must see
 * the same bytes). */
static bout_result stage_step(const bout_part *pt, bout_cursor *cur, bout_send_fn send_fn,
                              void *ctx, size_t *sent, char *err, size_t errlen)
{
    if (cur->stage_off == cur->stage_len) {
        if (!cur->stage && !(cur->stage = malloc(BOUT_STAGE))) {
            snprintf(err, errlen, "out of memory for a %d-byte send buffer", BOUT_STAGE);
            return BOUT_ERROR;
        }
        uint64_t left = pt->len - cur->done;
        size_t want = left < BOUT_STAGE ? (size_t)left : BOUT_STAGE;
        ssize_t r;
        do r = pread(pt->fd, cur->stage, want, (off_t)(pt->off + cur->done));
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            snprintf(err, errlen, "pread of a queued file range at %llu: %s",
                     (unsigned long long)(pt->off + cur->done), strerror(errno));
            return BOUT_ERROR;
        }
        if (r == 0) {
            snprintf(err, errlen, "queued file range ends at %llu, %llu bytes before its promised end",
                     (unsigned long long)(pt->off + cur->done), (unsigned long long)left);
            return BOUT_SHORT;
        }
        cur->stage_len = (size_t)r;
        cur->stage_off = 0;
    }
    size_t put = 0;
    int rc = send_some(send_fn, ctx, cur->stage + cur->stage_off, cur->stage_len - cur->stage_off,
                       &put, err, errlen);
    if (rc < 0) return BOUT_ERROR;
    if (rc == 0) return BOUT_AGAIN;
    cur->stage_off += put;
    cur->done += put;
    *sent += put;
    if (cur->stage_off == cur->stage_len) cur->stage_off = cur->stage_len = 0;
    return BOUT_DONE;
}

bout_result bout_write(const uint8_t *data, const bout_part *parts, size_t nparts,
                       bout_cursor *cur, int sock, bout_send_fn send_fn, void *ctx,
                       size_t *sent, char *err, size_t errlen)
{
    while (cur->part < nparts) {
        const bout_part *pt = &parts[cur->part];
        if (cur->done >= pt->len) {
            cur->part++;
            cur->done = 0;
            cur->stage_len = cur->stage_off = 0;
            continue;
        }
        if (pt->fd < 0) {
            size_t put = 0;
            int rc = send_some(send_fn, ctx, data + pt->off + cur->done,
                               (size_t)(pt->len - cur->done), &put, err, errlen);
            if (rc < 0) return BOUT_ERROR;
            if (rc == 0) return BOUT_AGAIN;
            cur->done += put;
            *sent += put;
            continue;
        }
        /* A part begun through the staging buffer finishes there (its
         * bytes are already read). */
        if (sock >= 0 && cur->stage_len == 0) {
            off_t o = (off_t)(pt->off + cur->done);
            uint64_t left = pt->len - cur->done;
            size_t n = left < BOUT_SENDFILE_MAX ? (size_t)left : BOUT_SENDFILE_MAX;
            ssize_t w = sendfile(sock, pt->fd, &o, n);
            if (w > 0) {
                cur->done += (uint64_t)w;
                *sent += (size_t)w;
                continue;
            }
            if (w == 0) {
                snprintf(err, errlen,
                         "queued file range ends at %llu, %llu bytes before its promised end",
                         (unsigned long long)(pt->off + cur->done), (unsigned long long)left);
                return BOUT_SHORT;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return BOUT_AGAIN;
            if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
                snprintf(err, errlen, "sendfile: %s", strerror(errno));
                return BOUT_ERROR;
            }
            /* The file system refuses sendfile: copy this part instead. */
        }
        bout_result r = stage_step(pt, cur, send_fn, ctx, sent, err, errlen);
        if (r != BOUT_DONE) return r;
    }
    return BOUT_DONE;
}

static atomic_long g_fds_held;
static long g_fds_cap = -1;

static long fds_cap(void)
{
    long cap = __atomic_load_n(&g_fds_cap, __ATOMIC_RELAXED);
    if (cap >= 0) return cap;
    struct rlimit rl;
    cap = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        cap = (long)(rl.rlim_cur / 4);
    if (cap < 16) cap = 16;
    __atomic_store_n(&g_fds_cap, cap, __ATOMIC_RELAXED);
    return cap;
}

int bout_fds_take(void)
{
    long cap = fds_cap();
    long cur = atomic_load(&g_fds_held);
    while (cur < cap)
        if (atomic_compare_exchange_weak(&g_fds_held, &cur, cur + 1)) return 1;
    return 0;
}

void bout_fds_give(int n) { atomic_fetch_sub(&g_fds_held, n); }

long bout_fds_held(void) { return atomic_load(&g_fds_held); }
