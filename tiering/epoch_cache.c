/*
 * epoch_cache.c — the leader epoch cache and its checkpoint file (see
 * epoch_cache.h for the layout).
 */
#include "epoch_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"

void ts_epoch_cache_free(ts_epoch_cache *c)
{
    if (!c) return;
    free(c->v);
    memset(c, 0, sizeof(*c));
}

int32_t ts_epoch_cache_latest(const ts_epoch_cache *c)
{
    return c->n ? c->v[c->n - 1].epoch : -1;
}

static int push(ts_epoch_cache *c, int32_t epoch, int64_t start)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        ts_epoch_entry *nv = realloc(c->v, nc * sizeof(*nv));
        if (!nv) return -1;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n].epoch = epoch;
    c->v[c->n].start_offset = start;
    c->n++;
    return 0;
}

int ts_epoch_cache_assign(ts_epoch_cache *c, int32_t epoch, int64_t start)
{
    if (epoch < 0 || epoch <= ts_epoch_cache_latest(c)) return 0;
    if (c->n >= TS_EPOCH_CACHE_MAX) return -1;
    ts_epoch_cache_truncate_from_end(c, start);
    return push(c, epoch, start) ? -1 : 1;
}

int ts_epoch_cache_truncate_from_end(ts_epoch_cache *c, int64_t end)
{
    size_t n = c->n;
    while (c->n && c->v[c->n - 1].start_offset >= end) c->n--;
    return c->n != n;
}

void ts_epoch_cache_end_offset(const ts_epoch_cache *c, int32_t epoch, int64_t log_end,
                               int32_t *found_epoch, int64_t *end_offset)
{
    *found_epoch = -1;
    *end_offset = -1;
    size_t i = c->n;
    while (i > 0 && c->v[i - 1].epoch > epoch) i--;
    if (i == 0) return;
    *found_epoch = c->v[i - 1].epoch;
    *end_offset = i < c->n ? c->v[i].start_offset : log_end;
}

int ts_epoch_cache_copy(ts_epoch_cache *dst, const ts_epoch_cache *src)
{
    ts_epoch_entry *v = NULL;
    if (src->n) {
        v = malloc(src->n * sizeof(*v));
        if (!v) return -1;
        memcpy(v, src->v, src->n * sizeof(*v));
    }
    free(dst->v);
    dst->v = v;
    dst->n = dst->cap = src->n;
    return 0;
}

/* One decimal number per field; *pp moves past it and its trailing blank. */
static int parse_num(char **pp, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(*pp, &end, 10);
    if (end == *pp || v < lo || v > hi) return -1;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    *pp = end;
    *out = v;
    return 0;
}

ts_status ts_epoch_cache_load(ts_epoch_cache *c, const char *path, char *errstr, size_t errlen)
{
    uint8_t *d;
    size_t len;
    ts_epoch_cache_free(c);
    if (ts_fs_read_all(path, 16u << 20, &d, &len, NULL, 0)) return TS_OK; /* absent */
    char *txt = realloc(d, len + 1);
    if (!txt) {
        free(d);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    txt[len] = 0;
    char *p = txt;
    long long version, n, epoch, start;
    ts_status st = TS_OK;
    if (parse_num(&p, 0, 0, &version) || parse_num(&p, 0, TS_EPOCH_CACHE_MAX, &n)) goto fail;
    for (long long i = 0; i < n; i++) {
        if (parse_num(&p, 0, INT32_MAX, &epoch) || parse_num(&p, 0, INT64_MAX, &start)) goto fail;
        if (c->n && (epoch <= c->v[c->n - 1].epoch || start < c->v[c->n - 1].start_offset))
            goto fail;
        if (push(c, (int32_t)epoch, start)) {
            st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (*p) goto fail;
    goto out;
fail:
    st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                    "%s does not parse as a leader epoch checkpoint (entry %zu): expected "
                    "\"0\", a count, then ascending \"epoch start_offset\" lines",
                    path, c->n);
    ts_epoch_cache_free(c);
out:
    free(txt);
    return st;
}

ts_status ts_epoch_cache_write(const ts_epoch_cache *c, const char *path, char *errstr,
                               size_t errlen)
{
    size_t cap = 32 + c->n * 34;
    char *txt = malloc(cap);
    if (!txt) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    size_t len = (size_t)snprintf(txt, cap, "0\n%zu\n", c->n);
    for (size_t i = 0; i < c->n; i++)
        len += (size_t)snprintf(txt + len, cap - len, "%d %lld\n", c->v[i].epoch,
                                (long long)c->v[i].start_offset);
    ts_status st = ts_fs_write_atomic(path, txt, len, errstr, errlen);
    free(txt);
    return st;
}
