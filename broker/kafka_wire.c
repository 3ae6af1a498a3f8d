/*
 * kafka_wire.c — bounded reader, capped writer and arena of kafka_wire.h.
 * Thread: any (no shared state).
 */
#include "kafka_wire.h"

#include <stdlib.h>
#include <string.h>

struct karena_blk {
    karena_blk *next;
    size_t size, used;
    _Alignas(8) uint8_t data[];
};

void karena_init(karena *a, size_t max)
{
    a->head = NULL;
    a->used = 0;
    a->max = max;
}

void karena_free(karena *a)
{
    karena_blk *b = a->head;
    while (b) {
        karena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}

void *karena_alloc(karena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    if (n > a->max || a->used + n > a->max) return NULL;
    karena_blk *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > 16384 ? n : 16384;
        b = malloc(sizeof(*b) + sz);
        if (!b) return NULL;
        b->size = sz;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

/* ---------------------------------------------------------------- reader */

int kr_skip(kr *r, size_t n)
{
    if (kr_left(r) < n) return -1;
    r->pos += n;
    return 0;
}

int kr_i8(kr *r, int8_t *v)
{
    if (kr_left(r) < 1) return -1;
    *v = (int8_t)r->p[r->pos++];
    return 0;
}

int kr_i16(kr *r, int16_t *v)
{
    if (kr_left(r) < 2) return -1;
    const uint8_t *p = r->p + r->pos;
    *v = (int16_t)(uint16_t)((p[0] << 8) | p[1]);
    r->pos += 2;
    return 0;
}

int kr_i32(kr *r, int32_t *v)
{
    if (kr_left(r) < 4) return -1;
    const uint8_t *p = r->p + r->pos;
    *v = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]);
    r->pos += 4;
    return 0;
}

int kr_i64(kr *r, int64_t *v)
{
    if (kr_left(r) < 8) return -1;
    const uint8_t *p = r->p + r->pos;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
    *v = (int64_t)x;
    r->pos += 8;
    return 0;
}

int kr_uvarint(kr *r, uint32_t *v)
{
    uint32_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (kr_left(r) < 1) return -1;
        uint8_t b = r->p[r->pos++];
        if (shift == 28 && (b & 0xf0)) return -1; /* more than 32 bits */
        x |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int kr_varint(kr *r, int32_t *v)
{
    uint32_t u;
    if (kr_uvarint(r, &u)) return -1;
    *v = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return 0;
}

int kr_varlong(kr *r, int64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (kr_left(r) < 1) return -1;
        uint8_t b = r->p[r->pos++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = (int64_t)((x >> 1) ^ (~(x & 1) + 1));
            return 0;
        }
    }
    return -1;
}

int kr_uuid(kr *r, uint8_t out[16])
{
    if (kr_left(r) < 16) return -1;
    memcpy(out, r->p + r->pos, 16);
    r->pos += 16;
    return 0;
}

/* Reads a length prefix: compact (uvarint n+1, 0 = null) or classic. */
static int read_len(kr *r, int flex, int wide, int32_t *n)
{
    if (flex) {
        uint32_t u;
        if (kr_uvarint(r, &u)) return -1;
        if (u > (uint32_t)INT32_MAX) return -1;
        *n = (int32_t)u - 1;
        return 0;
    }
    if (wide) return kr_i32(r, n);
    int16_t s;
    if (kr_i16(r, &s)) return -1;
    *n = s;
    return 0;
}

static int read_view(kr *r, int flex, int wide, kslice *out)
{
    int32_t n;
    if (read_len(r, flex, wide, &n)) return -1;
    if (n < -1) return -1;
    if (n == -1) {
        out->p = NULL;
        out->len = -1;
        return 0;
    }
    if (kr_left(r) < (size_t)n) return -1;
    out->p = r->p + r->pos;
    out->len = n;
    r->pos += (size_t)n;
    return 0;
}

int kr_str(kr *r, int flex, kslice *out) { return read_view(r, flex, 0, out); }
int kr_bytes(kr *r, int flex, kslice *out) { return read_view(r, flex, 1, out); }

int kr_strdup(kr *r, int flex, int nullable, karena *a, const char **out)
{
    kslice s;
    if (kr_str(r, flex, &s)) return -1;
    if (s.len < 0) {
        if (!nullable) return -1;
        *out = NULL;
        return 0;
    }
    char *c = karena_alloc(a, (size_t)s.len + 1);
    if (!c) return -1;
    memcpy(c, s.p, (size_t)s.len);
    c[s.len] = 0;
    *out = c;
    return 0;
}

int kr_array(kr *r, int flex, int nullable, size_t min_elem, int32_t *count)
{
    int32_t n;
    if (read_len(r, flex, 1, &n)) return -1;
    if (n < -1 || (n == -1 && !nullable)) return -1;
    if (n > 0 && min_elem && (size_t)n > kr_left(r) / min_elem) return -1;
    *count = n;
    return 0;
}

int kr_tags(kr *r, int flex)
{
    if (!flex) return 0;
    uint32_t n;
    if (kr_uvarint(r, &n)) return -1;
    if (n > kr_left(r)) return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tag, size;
        if (kr_uvarint(r, &tag) || kr_uvarint(r, &size)) return -1;
        if (kr_skip(r, size)) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- writer */

void kw_init(kw *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void kw_free(kw *w)
{
    free(w->d);
    memset(w, 0, sizeof(*w));
}

int kw_reserve(kw *w, size_t n)
{
    if (w->err) return -1;
    if (n > w->max || w->len > w->max - n) {
        w->err = 1;
        return -1;
    }
    if (w->len + n <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap *= 2;
    if (cap > w->max) cap = w->max;
    uint8_t *d = realloc(w->d, cap);
    if (!d) {
        w->err = 1;
        return -1;
    }
    w->d = d;
    w->cap = cap;
    return 0;
}

void kw_raw(kw *w, const void *p, size_t n)
{
    if (n == 0 || kw_reserve(w, n)) return;
    memcpy(w->d + w->len, p, n);
    w->len += n;
}

void kw_i8(kw *w, int8_t v) { kw_raw(w, &v, 1); }

void kw_i16(kw *w, int16_t v)
{
    uint8_t b[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    kw_raw(w, b, 2);
}

void kw_i32(kw *w, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    kw_raw(w, b, 4);
}

void kw_i64(kw *w, int64_t v)
{
    kw_i32(w, (int32_t)((uint64_t)v >> 32));
    kw_i32(w, (int32_t)(uint32_t)(uint64_t)v);
}

void kw_uvarint(kw *w, uint32_t v)
{
    uint8_t b[5];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    kw_raw(w, b, n);
}

void kw_uuid_zero(kw *w)
{
    static const uint8_t z[16];
    kw_raw(w, z, 16);
}

void kw_strn(kw *w, int flex, const char *s, int32_t n)
{
    if (!s) n = -1;
    if (flex)
        kw_uvarint(w, (uint32_t)(n + 1));
    else
        kw_i16(w, (int16_t)n);
    if (n > 0) kw_raw(w, s, (size_t)n);
}

void kw_str(kw *w, int flex, const char *s) { kw_strn(w, flex, s, s ? (int32_t)strlen(s) : -1); }

void kw_bytes(kw *w, int flex, const void *p, int32_t n)
{
    if (flex)
        kw_uvarint(w, (uint32_t)(n + 1));
    else
        kw_i32(w, n);
    if (n > 0) kw_raw(w, p, (size_t)n);
}

void kw_array(kw *w, int flex, int32_t n)
{
    if (flex)
        kw_uvarint(w, (uint32_t)(n + 1));
    else
        kw_i32(w, n);
}

void kw_tags(kw *w, int flex)
{
    if (flex) kw_uvarint(w, 0);
}

void kw_put_i32_at(kw *w, size_t pos, int32_t v)
{
    if (w->err || pos + 4 > w->len) return;
    uint32_t u = (uint32_t)v;
    w->d[pos] = (uint8_t)(u >> 24);
    w->d[pos + 1] = (uint8_t)(u >> 16);
    w->d[pos + 2] = (uint8_t)(u >> 8);
    w->d[pos + 3] = (uint8_t)u;
}
