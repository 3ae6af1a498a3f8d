/* buf.c — capped growable buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ts_buf_init(ts_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX;
}

void ts_buf_free(ts_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ts_buf_reset(ts_buf *b) { b->len = 0; }

ts_status ts_buf_reserve(ts_buf *b, size_t extra)
{
    if (extra > b->max - b->len) return TS_E_NOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap) return TS_OK;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max) ncap = b->max;
    uint8_t *nd = realloc(b->data, ncap + 1); /* +1 keeps room for a NUL */
    if (!nd) return TS_E_NOMEM;
    b->data = nd;
    b->cap = ncap;
    return TS_OK;
}

ts_status ts_buf_append(ts_buf *b, const void *data, size_t len)
{
    if (!len) return TS_OK;
    ts_status st = ts_buf_reserve(b, len);
    if (st) return st;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return TS_OK;
}

ts_status ts_buf_printf(ts_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return TS_E_INVAL;
    ts_status st = ts_buf_reserve(b, (size_t)n + 1);
    if (st) return st;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TS_OK;
}

uint8_t *ts_buf_steal(ts_buf *b, size_t *len)
{
    uint8_t *d = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
