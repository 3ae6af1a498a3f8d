/*
 * test_out.c — the output queue's frame parts (broker/out.c): memory and
 * file-range parts sent in order over a non-blocking socketpair whose
 * reader drains a few bytes at a time, so every part is cut by partial
 * sends (sendfile and the pread copy path alike); a TLS-like writer taking
 * a few bytes per call with EAGAIN in between; a file shorter than its part
 * ends with BOUT_SHORT after exactly the file's own bytes (never others);
 * an unlinked file still sends (retention while a response is queued); the
 * descriptor cap. Real sockets and files; no doubles besides the TLS-like
 * writer (a function standing in for SSL_write's partial writes).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/out.h"
#include "tt.h"

static ssize_t plain_send(void *ctx, const void *buf, size_t n)
{
    return send(*(int *)ctx, buf, n, MSG_NOSIGNAL);
}

/* SSL_write-like: at most 7 bytes a call, and every other call "would block". */
typedef struct tiny {
    int fd;
    int calls;
} tiny;

static ssize_t tiny_send(void *ctx, const void *buf, size_t n)
{
    tiny *t = ctx;
    if (t->calls++ % 2) {
        errno = EAGAIN;
        return -1;
    }
    return send(t->fd, buf, n < 7 ? n : 7, MSG_NOSIGNAL);
}

static int tmp_file(const uint8_t *data, size_t len, char *path)
{
    strcpy(path, "/tmp/test_out_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    if (write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* Sends the parts through (sock or send_fn), reading `chunk` bytes from the
 * peer whenever the socket is full, into got. Returns the last result;
 * *agains counts the times the writer had to wait. */
static bout_result pump(const uint8_t *data, const bout_part *parts, size_t n, int use_sendfile,
                        bout_send_fn fn, void *ctx, int wfd, int rfd, uint8_t *got, size_t cap,
                        size_t *got_len, size_t chunk, int *agains)
{
    bout_cursor cur;
    memset(&cur, 0, sizeof cur);
    *got_len = 0;
    *agains = 0;
    bout_result r;
    size_t sent_total = 0;
    for (;;) {
        char err[256] = "";
        size_t sent = 0;
        r = bout_write(data, parts, n, &cur, use_sendfile ? wfd : -1, fn, ctx, &sent, err,
                       sizeof err);
        sent_total += sent;
        if (r != BOUT_AGAIN) break;
        (*agains)++;
        ssize_t k = read(rfd, got + *got_len, cap - *got_len < chunk ? cap - *got_len : chunk);
        if (k > 0) *got_len += (size_t)k;
        if (*agains > 10000000) break;
    }
    for (;;) { /* what is left in the socket */
        ssize_t k = read(rfd, got + *got_len, cap - *got_len);
        if (k <= 0) break;
        *got_len += (size_t)k;
    }
    bout_cursor_reset(&cur);
    if (sent_total != *got_len) return BOUT_ERROR;
    return r;
}

static int sockpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return -1;
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    return 0;
}

/* header | file range A | middle | file range B (from offset 1000) | trailer */
static void run_mixed(int use_sendfile, int tls_like)
{
    enum { FA = 300000, FB = 200000 };
    uint8_t *fa = malloc(FA), *fb = malloc(FB + 1000), mem[64];
    size_t cap = 64 + FA + FB + 64;
    uint8_t *want = malloc(cap), *got = malloc(cap);
    char pa[64], pb[64];
    int sv[2] = {-1, -1}, a = -1, bfd = -1;
    TT_CHECK(fa && fb && want && got);
    fill(fa, FA, 1);
    fill(fb, FB + 1000, 2);
    fill(mem, sizeof mem, 3);
    a = tmp_file(fa, FA, pa);
    bfd = tmp_file(fb, FB + 1000, pb);
    TT_CHECK(a >= 0 && bfd >= 0);
    unlink(pa);
    unlink(pb);
    TT_CHECK(sockpair(sv) == 0);
    bout_part parts[5] = {
        {.fd = -1, .off = 0, .len = 10},     {.fd = a, .off = 0, .len = FA},
        {.fd = -1, .off = 10, .len = 30},    {.fd = bfd, .off = 1000, .len = FB},
        {.fd = -1, .off = 40, .len = 24},
    };
    size_t wl = 0;
    memcpy(want + wl, mem, 10), wl += 10;
    memcpy(want + wl, fa, FA), wl += FA;
    memcpy(want + wl, mem + 10, 30), wl += 30;
    memcpy(want + wl, fb + 1000, FB), wl += FB;
    memcpy(want + wl, mem + 40, 24), wl += 24;
    tiny t = {.fd = sv[0]};
    size_t got_len = 0;
    int agains = 0;
    bout_result r = pump(mem, parts, 5, use_sendfile, tls_like ? tiny_send : plain_send,
                         tls_like ? (void *)&t : (void *)&sv[0], sv[0], sv[1], got, cap, &got_len,
                         tls_like ? 100000 : 1500, &agains);
    TT_CHECK_EQ_INT(r, BOUT_DONE);
    TT_CHECK_EQ_INT(got_len, wl);
    TT_CHECK(memcmp(got, want, wl) == 0);
    TT_CHECK_MSG(agains > 10, "only %d partial sends: the test did not cut the parts", agains);
done:
    if (sv[0] >= 0) close(sv[0]), close(sv[1]);
    if (a >= 0) close(a);
    if (bfd >= 0) close(bfd);
    free(fa), free(fb), free(want), free(got);
}

TT_TEST(mixed_sendfile_partial) { run_mixed(1, 0); }
TT_TEST(mixed_copy_partial) { run_mixed(0, 0); }
TT_TEST(mixed_tls_like_writer) { run_mixed(0, 1); }

/* A part promising more than the file holds: BOUT_SHORT after exactly the
 * bytes the file has (the frame is cut, never padded with other bytes). */
static void run_short(int use_sendfile)
{
    enum { FL = 100000 };
    uint8_t *f = malloc(FL), *got = malloc(FL + 100);
    uint8_t hdr[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char path[64];
    int sv[2] = {-1, -1}, fd = -1;
    TT_CHECK(f && got);
    fill(f, FL, 9);
    fd = tmp_file(f, FL, path);
    TT_CHECK(fd >= 0);
    unlink(path);
    TT_CHECK(ftruncate(fd, FL / 2) == 0); /* someone cut the file under us */
    TT_CHECK(sockpair(sv) == 0);
    bout_part parts[2] = {{.fd = -1, .off = 0, .len = 8}, {.fd = fd, .off = 0, .len = FL}};
    size_t got_len = 0;
    int agains = 0;
    bout_result r = pump(hdr, parts, 2, use_sendfile, plain_send, &sv[0], sv[0], sv[1], got,
                         FL + 100, &got_len, 4096, &agains);
    TT_CHECK_EQ_INT(r, BOUT_SHORT);
    TT_CHECK_EQ_INT(got_len, 8 + FL / 2);
    TT_CHECK(memcmp(got, hdr, 8) == 0);
    TT_CHECK(memcmp(got + 8, f, FL / 2) == 0);
done:
    if (sv[0] >= 0) close(sv[0]), close(sv[1]);
    if (fd >= 0) close(fd);
    free(f), free(got);
}

TT_TEST(short_file_sendfile) { run_short(1); }
TT_TEST(short_file_copy) { run_short(0); }

/* A closed peer: an error, not a hang or a success. */
TT_TEST(peer_closed_is_error)
{
    uint8_t f[5000];
    fill(f, sizeof f, 4);
    char path[64];
    int sv[2] = {-1, -1};
    int fd = tmp_file(f, sizeof f, path);
    TT_CHECK(fd >= 0);
    unlink(path);
    TT_CHECK(sockpair(sv) == 0);
    close(sv[1]);
    sv[1] = -1;
    bout_part part = {.fd = fd, .off = 0, .len = sizeof f};
    bout_cursor cur;
    memset(&cur, 0, sizeof cur);
    char err[256] = "";
    size_t sent = 0;
    bout_result r = bout_write(NULL, &part, 1, &cur, sv[0], plain_send, &sv[0], &sent, err,
                               sizeof err);
    TT_CHECK_EQ_INT(r, BOUT_ERROR);
    TT_CHECK(err[0] != 0);
    bout_cursor_reset(&cur);
done:
    if (sv[0] >= 0) close(sv[0]);
    if (fd >= 0) close(fd);
}

TT_TEST(parts_close_and_fd_cap)
{
    long before = bout_fds_held();
    int taken = 0;
    while (bout_fds_take()) taken++;
    TT_ASSERT(taken > 0);
    TT_ASSERT(!bout_fds_take()); /* at the cap: the Fetch copies instead */
    bout_fds_give(taken);
    TT_ASSERT_EQ_INT(bout_fds_held(), before);
    TT_ASSERT(bout_fds_take());
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    TT_ASSERT(fd >= 0);
    bout_part parts[2] = {{.fd = -1, .off = 0, .len = 1}, {.fd = fd, .off = 0, .len = 1}};
    bout_parts_close(parts, 2);
    TT_ASSERT_EQ_INT(parts[1].fd, -1);
    TT_ASSERT(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
    TT_ASSERT_EQ_INT(bout_fds_held(), before);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* as tierbroker: sendfile has no MSG_NOSIGNAL */
    TT_RUN(mixed_sendfile_partial);
    TT_RUN(mixed_copy_partial);
    TT_RUN(mixed_tls_like_writer);
    TT_RUN(short_file_sendfile);
    TT_RUN(short_file_copy);
    TT_RUN(peer_closed_is_error);
    TT_RUN(parts_close_and_fd_cap);
    return tt_summary();
}
