/*
 * meta_log.c — records of the committed-offsets log (format in
 * meta_log.h). Separate from topics.c so that the format, the part a crash
 * or a hostile client could break, is tested byte by byte on its own.
 *
 * Thread: any.
 */
#include "meta_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void meta_hex(kw *w, const char *s)
{
    static const char d[] = "0123456789abcdef";
    for (; *s; s++) {
        char two[2] = {d[(unsigned char)*s >> 4], d[(unsigned char)*s & 15]};
        kw_raw(w, two, 2);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *meta_unhex(const char *s, size_t n)
{
    if (n % 2) return NULL;
    char *o = malloc(n / 2 + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(o);
            return NULL;
        }
        o[i] = (char)(hi << 4 | lo);
    }
    o[n / 2] = 0;
    return o;
}

static void crc_hex(const char *p, size_t n, char out[9])
{
    snprintf(out, 9, "%08lx", (unsigned long)crc32(0L, (const Bytef *)p, (uInt)n));
}

/* type 'o' carries offset and metadata, type 'd' neither. */
static void encode_record(kw *w, char type, const char *group, const char *topic,
                          int32_t partition, int64_t offset, const char *metadata)
{
    size_t start = w->len;
    char head[12];
    snprintf(head, sizeof head, "%c 00000000 ", type);
    kw_raw(w, head, 11);
    size_t body = w->len;
    char num[64];
    meta_hex(w, group);
    kw_raw(w, " ", 1);
    meta_hex(w, topic);
    int n = type == 'o' ? snprintf(num, sizeof num, " %d %lld ", partition, (long long)offset)
                        : snprintf(num, sizeof num, " %d", partition);
    kw_raw(w, num, (size_t)n);
    if (type == 'o') meta_hex(w, metadata ? metadata : "");
    if (w->err) return;
    char crc[9];
    crc_hex((const char *)w->d + body, w->len - body, crc);
    memcpy(w->d + start + 2, crc, 8);
    kw_raw(w, "\n", 1);
}

void meta_log_encode(kw *w, const char *group, const char *topic, int32_t partition,
                     int64_t offset, const char *metadata)
{
    encode_record(w, 'o', group, topic, partition, offset, metadata);
}

void meta_log_encode_delete(kw *w, const char *group, const char *topic, int32_t partition)
{
    encode_record(w, 'd', group, topic, partition, -1, NULL);
}

/* A signed decimal, digits only (and a leading '-'). */
static int parse_dec(const char *s, size_t n, int64_t *out)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (i == 0 && s[i] == '-' && n > 1))) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno) return -1;
    *out = v;
    return 0;
}

int meta_log_decode(const char *line, size_t len, meta_log_rec *out)
{
    memset(out, 0, sizeof(*out));
    const char *f[7];
    size_t fl[7];
    int nf = 0;
    const char *p = line, *end = line + len;
    while (nf < 7) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        f[nf] = p;
        fl[nf] = (size_t)((sp ? sp : end) - p);
        nf++;
        if (!sp) break;
        p = sp + 1;
    }
    int64_t part, off = -1;
    char want[9];
    if (nf < 1 || fl[0] != 1) goto fail;
    int del = f[0][0] == 'd';
    if (!del && f[0][0] != 'o') goto fail;
    if (nf != (del ? 5 : 7) || f[nf - 1] + fl[nf - 1] != end || fl[1] != 8) goto fail;
    crc_hex(f[2], (size_t)(end - f[2]), want);
    if (memcmp(want, f[1], 8)) goto fail;
    if (parse_dec(f[4], fl[4], &part) || part < 0 || part > INT32_MAX) goto fail;
    if (!del && parse_dec(f[5], fl[5], &off)) goto fail;
    out->group = meta_unhex(f[2], fl[2]);
    out->topic = meta_unhex(f[3], fl[3]);
    out->metadata = del ? calloc(1, 1) : meta_unhex(f[6], fl[6]);
    if (!out->group || !out->topic || !out->metadata) goto fail;
    out->partition = (int32_t)part;
    out->offset = off;
    out->deleted = del;
    return 0;
fail:
    meta_log_rec_free(out);
    return -1;
}

void meta_log_rec_free(meta_log_rec *r)
{
    free(r->group);
    free(r->topic);
    free(r->metadata);
    memset(r, 0, sizeof(*r));
}
