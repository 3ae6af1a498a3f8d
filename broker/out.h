/*
 * out.h — the pieces a response frame is sent from: bytes in memory, and
 * ranges of files (a Fetch's record batches, zero-copy). Used by net.c's
 * output queue; kept apart so the sending rules are unit-tested with a
 * socketpair (tests/broker/test_out.c).
 *
 * A frame is a list of parts sent in order. A memory part is `len` bytes at
 * `off` of the frame's data buffer; a file part is `len` bytes at `off` of
 * the file `fd`, which the frame owns (bout_parts_close closes it). File
 * parts go out with sendfile(2) on plaintext sockets; through a TLS session
 * (or where sendfile is refused: EINVAL/ENOSYS) they are pread into a
 * staging buffer of BOUT_STAGE bytes and written like memory, so a
 * connection holds at most one such buffer whatever the response size.
 */
#ifndef TS_BROKER_OUT_H
#define TS_BROKER_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BOUT_STAGE 65536

typedef struct bout_part {
    int fd;       /* -1: memory */
    uint64_t off; /* memory: offset into the data; file: file offset */
    uint64_t len;
} bout_part;

/* Where the sending of a frame stands; zeroed by bout_cursor_reset. */
typedef struct bout_cursor {
    size_t part;     /* index of the part being sent */
    uint64_t done;   /* bytes of it sent */
    uint8_t *stage;  /* copy path: file bytes [done, done + stage_len) of the part */
    size_t stage_len, stage_off;
} bout_cursor;

/* send(2)-like: bytes written, or -1 with errno (EAGAIN: try later). */
typedef ssize_t (*bout_send_fn)(void *ctx, const void *buf, size_t n);

typedef enum bout_result {
    BOUT_DONE = 0,  /* every part sent */
    BOUT_AGAIN,     /* the socket is full: call again once writable */
    BOUT_ERROR,     /* a send or read failed: close the connection (err says why) */
    BOUT_SHORT      /* a file ended before its part did: close the connection, the
                       frame cannot be completed with the right bytes */
} bout_result;

/* Sends from cur on, in order, until every part is out or the socket would
 * block. sock >= 0 allows sendfile(2) to it (plaintext); sock < 0 sends
 * everything through send_fn (TLS). *sent += the bytes written. sendfile
 * has no MSG_NOSIGNAL: the process must ignore SIGPIPE (tierbroker does). */
bout_result bout_write(const uint8_t *data, const bout_part *parts, size_t nparts,
                       bout_cursor *cur, int sock, bout_send_fn send_fn, void *ctx,
                       size_t *sent, char *err, size_t errlen);

/* Frees the staging buffer and rewinds cur (after a frame, or on close). */
void bout_cursor_reset(bout_cursor *cur);

/* Closes the fds of file parts (a frame sent or dropped). */
void bout_parts_close(bout_part *parts, size_t nparts);

/* File descriptors held by queued file parts, process-wide: a Fetch stops
 * handing out ranges (and copies instead) past bout_fds_cap(), a quarter of
 * RLIMIT_NOFILE, so queued responses never starve accept() of descriptors.
 * Any thread. */
int bout_fds_take(void);   /* 1: one more may be held (counted), 0: at the cap */
void bout_fds_give(int n); /* n ranges' fds were closed or never used */
long bout_fds_held(void);

#endif
