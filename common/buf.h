/*
 * buf.h — a growable byte buffer with a hard maximum (as curl's dynbuf):
 * every buffer that grows from untrusted or remote input has a cap, so a
 * bad peer or a huge object fails cleanly with TS_E_NOMEM instead of
 * exhausting memory.
 */
#ifndef TS_COMMON_BUF_H
#define TS_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"

typedef struct ts_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;  /* hard limit on len */
} ts_buf;

void ts_buf_init(ts_buf *b, size_t max);
void ts_buf_free(ts_buf *b);
void ts_buf_reset(ts_buf *b);  /* len = 0, keeps the allocation */
ts_status ts_buf_reserve(ts_buf *b, size_t extra);
ts_status ts_buf_append(ts_buf *b, const void *data, size_t len);
ts_status ts_buf_printf(ts_buf *b, const char *fmt, ...);
/* Hands the bytes to the caller (who frees them) and resets b. */
uint8_t *ts_buf_steal(ts_buf *b, size_t *len);

#endif
