/* test_fsutil.c — unit tests of the full read/write pair of common/fsutil:
 * EINTR-free loops over short transfers, end of file, offsets versus the
 * file position, and the one return convention (bytes moved, or -1 with
 * errno). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "tt.h"

static char g_dir[] = "/tmp/ts-test-fsutil-XXXXXX";

static int open_tmp(const char *name, int flags)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    return open(path, flags | O_CLOEXEC, 0644);
}

TT_TEST(write_then_read_at_offsets_and_position)
{
    int fd = open_tmp("a", O_RDWR | O_CREAT | O_TRUNC);
    TT_ASSERT(fd >= 0);
    TT_ASSERT_EQ_INT(ts_fs_write_full(fd, "hello ", 6, TS_FS_AT_POS), 6);
    TT_ASSERT_EQ_INT(ts_fs_write_full(fd, "world", 5, TS_FS_AT_POS), 5);
    /* pwrite at an offset leaves the position where it was (11). */
    TT_ASSERT_EQ_INT(ts_fs_write_full(fd, "W", 1, 6), 1);
    TT_ASSERT_EQ_INT(lseek(fd, 0, SEEK_CUR), 11);
    char buf[32] = {0};
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, 11, 0), 11);
    TT_ASSERT(memcmp(buf, "hello World", 11) == 0);
    /* A read past the end is short; at the end it is 0 (EOF), not an error. */
    memset(buf, 0, sizeof(buf));
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, sizeof(buf), 6), 5);
    TT_ASSERT(memcmp(buf, "World", 5) == 0);
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, sizeof(buf), 11), 0);
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, sizeof(buf), 1000), 0);
    /* TS_FS_AT_POS reads from and advances the file position. */
    TT_ASSERT_EQ_INT(lseek(fd, 6, SEEK_SET), 6);
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, 3, TS_FS_AT_POS), 3);
    TT_ASSERT_EQ_INT(lseek(fd, 0, SEEK_CUR), 9);
    TT_ASSERT_EQ_INT(ts_fs_read_full(fd, buf, 0, 0), 0);
    close(fd);
}

typedef struct {
    int fd;
} writer_arg;

/* Writes "abc", waits, "defg", closes: the reader sees two short reads and
 * then end of file. */
static void *slow_writer(void *opaque)
{
    writer_arg *a = opaque;
    (void)!write(a->fd, "abc", 3);
    ts_sleep_ms(30);
    (void)!write(a->fd, "defg", 4);
    close(a->fd);
    return NULL;
}

TT_TEST(read_gathers_short_reads_until_eof)
{
    int p[2];
    TT_ASSERT(pipe(p) == 0);
    writer_arg a = {p[1]};
    pthread_t t;
    TT_ASSERT(pthread_create(&t, NULL, slow_writer, &a) == 0);
    char buf[16] = {0};
    /* Asks for 5: gets "abc" then "de" from the second write. */
    TT_ASSERT_EQ_INT(ts_fs_read_full(p[0], buf, 5, TS_FS_AT_POS), 5);
    TT_ASSERT(memcmp(buf, "abcde", 5) == 0);
    /* Asks for more than is left: the rest, short, at EOF. */
    TT_ASSERT_EQ_INT(ts_fs_read_full(p[0], buf, sizeof(buf), TS_FS_AT_POS), 2);
    TT_ASSERT(memcmp(buf, "fg", 2) == 0);
    TT_ASSERT_EQ_INT(ts_fs_read_full(p[0], buf, sizeof(buf), TS_FS_AT_POS), 0);
    pthread_join(t, NULL);
    close(p[0]);
}

TT_TEST(errors_return_minus_one_with_errno)
{
    char buf[4];
    errno = 0;
    TT_ASSERT_EQ_INT(ts_fs_read_full(-1, buf, sizeof(buf), 0), -1);
    TT_ASSERT_EQ_INT(errno, EBADF);
    int fd = open_tmp("b", O_RDONLY | O_CREAT);
    TT_ASSERT(fd >= 0);
    errno = 0;
    TT_ASSERT_EQ_INT(ts_fs_write_full(fd, "x", 1, TS_FS_AT_POS), -1);
    TT_ASSERT_EQ_INT(errno, EBADF);
    errno = 0;
    TT_ASSERT_EQ_INT(ts_fs_write_full(fd, "x", 1, 0), -1);
    TT_ASSERT_EQ_INT(errno, EBADF);
    close(fd);
    /* A pipe nobody reads: EPIPE (SIGPIPE ignored, as the broker does). */
    int p[2];
    TT_ASSERT(pipe(p) == 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    TT_ASSERT_EQ_INT(ts_fs_write_full(p[1], "x", 1, TS_FS_AT_POS), -1);
    TT_ASSERT_EQ_INT(errno, EPIPE);
    close(p[1]);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (!mkdtemp(g_dir)) return 1;
    TT_RUN(write_then_read_at_offsets_and_position);
    TT_RUN(read_gathers_short_reads_until_eof);
    TT_RUN(errors_return_minus_one_with_errno);
    char err[256];
    ts_fs_rmtree(g_dir, err, sizeof(err));
    return tt_summary();
}
