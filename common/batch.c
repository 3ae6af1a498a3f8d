/*
 * batch.c — record batch v2 parsing, validation and building (see batch.h).
 *
 * Two levels of checking. ts_batch_validate looks at the frame only (header,
 * length, CRC): cheap, and enough for bytes the engine wrote itself (segment
 * recovery, upload, placement). ts_batch_validate_records walks every record
 * as Kafka's LogValidator does, decompressing gzip/snappy/lz4/zstd with the
 * system libraries; the append path runs it on bytes from outside, so that a
 * batch whose records do not parse never reaches the log (a consumer of such
 * a partition would stall on it forever).
 *
 * The walk pulls decompressed bytes through a 64 KiB window and never keeps
 * the whole decompressed batch: memory per call is the window plus the
 * codec's own state (raw snappy, which has no streaming form, holds its
 * declared size, checked against the bound before allocating), and a bomb is
 * refused as soon as its output passes the bound. The window and the
 * decompression contexts are kept between calls and reset for each batch: a
 * zstd context holds its frame window (2 MiB for a level-3 stream without a
 * content size), which cost more than the decompression itself when made
 * afresh for every ~20 KiB batch.
 */
#include "batch.h"

#include <lz4frame.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "crc32c.h"
#include "err.h"

/* Smallest batchLength: header bytes after the length field, no records. */
#define MIN_BATCH_LENGTH (TS_BATCH_HEADER_SIZE - TS_BATCH_LOG_OVERHEAD)

ts_status ts_batch_parse_header(const uint8_t *p, size_t len, size_t max_batch, ts_batch_hdr *h,
                                char *errstr, size_t errlen)
{
    if (len < TS_BATCH_HEADER_SIZE)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch header truncated: %zu bytes, need %d", len,
                          TS_BATCH_HEADER_SIZE);
    h->base_offset = (int64_t)ts_rd64(p);
    h->batch_length = (int32_t)ts_rd32(p + 8);
    h->leader_epoch = (int32_t)ts_rd32(p + 12);
    h->magic = (int8_t)p[16];
    h->crc = ts_rd32(p + 17);
    h->attributes = (int16_t)ts_rd16(p + 21);
    h->last_offset_delta = (int32_t)ts_rd32(p + 23);
    h->base_timestamp = (int64_t)ts_rd64(p + 27);
    h->max_timestamp = (int64_t)ts_rd64(p + 35);
    h->producer_id = (int64_t)ts_rd64(p + 43);
    h->producer_epoch = (int16_t)ts_rd16(p + 51);
    h->base_sequence = (int32_t)ts_rd32(p + 53);
    h->records_count = (int32_t)ts_rd32(p + 57);
    if (h->batch_length < MIN_BATCH_LENGTH)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch length %d is below the minimum %d", h->batch_length,
                          MIN_BATCH_LENGTH);
    if ((size_t)h->batch_length + TS_BATCH_LOG_OVERHEAD > max_batch)
        return ts_err_set(errstr, errlen, TS_E_MSG_TOO_LARGE,
                          "record batch of %d bytes exceeds message.max.bytes=%zu", h->batch_length,
                          max_batch);
    return TS_OK;
}

ts_status ts_batch_validate(const uint8_t *p, size_t len, size_t max_batch, ts_batch_hdr *h,
                            char *errstr, size_t errlen)
{
    ts_status st = ts_batch_parse_header(p, len, max_batch, h, errstr, errlen);
    if (st) return st;
    if (h->magic != 2)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch magic is %d; only magic 2 (Kafka 0.11+) is supported",
                          h->magic);
    size_t total = ts_batch_total_size(h);
    if (total > len)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch length %d runs past the end of the data (%zu bytes left)",
                          h->batch_length, len - TS_BATCH_LOG_OVERHEAD);
    uint32_t crc = ts_crc32c(0, p + 21, total - 21);
    if (crc != h->crc)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch CRC mismatch: header says 0x%08x, data gives 0x%08x", h->crc,
                          crc);
    /* Producers always send lastOffsetDelta = recordsCount - 1 (Kafka's
     * validator insists on it too); anything else would let one small batch
     * claim billions of offsets. */
    if (h->records_count < 1 || h->last_offset_delta != h->records_count - 1)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "record batch lastOffsetDelta %d inconsistent with %d records",
                          h->last_offset_delta, h->records_count);
    return TS_OK;
}

void ts_batch_set_base_offset(uint8_t *p, int64_t base_offset) { ts_wr64(p, (uint64_t)base_offset); }
void ts_batch_set_leader_epoch(uint8_t *p, int32_t leader_epoch)
{
    ts_wr32(p + 12, (uint32_t)leader_epoch);
}

/* Reads a zigzag varint (at most 10 bytes) from [*p, end). */
static int get_varlong(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

ts_status ts_batch_offset_for_time(const uint8_t *p, size_t len, int64_t ts, int64_t *offset)
{
    ts_batch_hdr h;
    if (ts_batch_parse_header(p, len, SIZE_MAX, &h, NULL, 0) || ts_batch_total_size(&h) > len)
        return TS_E_CORRUPT;
    if (h.max_timestamp < ts) return TS_E_NOT_FOUND;
    if ((h.attributes & 0x7) != 0) {
        *offset = h.base_offset;
        return TS_OK;
    }
    const uint8_t *r = p + TS_BATCH_HEADER_SIZE, *end = p + ts_batch_total_size(&h);
    for (int32_t i = 0; i < h.records_count; i++) {
        int64_t rlen, tsd, od;
        if (get_varlong(&r, end, &rlen) || rlen < 3 || rlen > end - r) goto fail;
        const uint8_t *rec = r, *rend = r + rlen;
        rec++; /* attributes */
        if (get_varlong(&rec, rend, &tsd) || get_varlong(&rec, rend, &od)) goto fail;
        if (h.base_timestamp + tsd >= ts) {
            *offset = h.base_offset + od;
            return TS_OK;
        }
        r = rend;
    }
    /* maxTimestamp said yes but no record did (e.g. LogAppendTime). */
    *offset = h.base_offset;
    return TS_OK;
fail:
    return TS_E_CORRUPT;
}

static size_t put_varlong(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

ts_status ts_batch_build(const void *const *values, const size_t *value_lens, int n,
                         int64_t base_ts, uint8_t **out, size_t *out_len)
{
    if (n <= 0) return TS_E_INVAL;
    size_t cap = TS_BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++) cap += value_lens[i] + 5 * 10;
    uint8_t *b = calloc(1, cap);
    if (!b) return TS_E_NOMEM;
    size_t pos = TS_BATCH_HEADER_SIZE;
    uint8_t tmp[64];
    for (int i = 0; i < n; i++) {
        size_t hl = 0;
        tmp[hl++] = 0;                           /* attributes */
        hl += put_varlong(tmp + hl, i);          /* timestampDelta */
        hl += put_varlong(tmp + hl, i);          /* offsetDelta */
        hl += put_varlong(tmp + hl, -1);         /* key: null */
        hl += put_varlong(tmp + hl, (int64_t)value_lens[i]);
        size_t body = hl + value_lens[i] + 1;    /* + headers count (0) */
        pos += put_varlong(b + pos, (int64_t)body);
        memcpy(b + pos, tmp, hl);
        pos += hl;
        memcpy(b + pos, values[i], value_lens[i]);
        pos += value_lens[i];
        pos += put_varlong(b + pos, 0);
    }
    ts_wr64(b, 0);
    ts_wr32(b + 8, (uint32_t)(pos - TS_BATCH_LOG_OVERHEAD));
    ts_wr32(b + 12, 0);
    b[16] = 2;
    ts_wr16(b + 21, 0);
    ts_wr32(b + 23, (uint32_t)(n - 1));
    ts_wr64(b + 27, (uint64_t)base_ts);
    ts_wr64(b + 35, (uint64_t)(base_ts + n - 1));
    ts_wr64(b + 43, (uint64_t)-1);
    ts_wr16(b + 51, (uint16_t)-1);
    ts_wr32(b + 53, (uint32_t)-1);
    ts_wr32(b + 57, (uint32_t)n);
    ts_wr32(b + 17, ts_crc32c(0, b + 21, pos - 21));
    *out = b;
    *out_len = pos;
    return TS_OK;
}

/* ---- record walk ----------------------------------------------------------
 *
 * Record layout (Kafka DefaultRecord; varints are zig-zag):
 *   length          varint   bytes of the record after this field
 *   attributes      int8     (unused)
 *   timestampDelta  varlong
 *   offsetDelta     varint   == the record's index in the batch
 *   keyLength       varint   -1 = null
 *   key             bytes
 *   valueLength     varint   -1 = null
 *   value           bytes
 *   headersCount    varint   >= 0
 *   headers         headerKeyLength varint (>= 0), key, headerValueLength
 *                   varint (-1 = null), value
 */

#define WALK_WINDOW (64u * 1024u)

static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};

/* Results of pulling bytes from a walk. */
enum { WK_OK = 0, WK_PAST_RECORD = 1, WK_END = 2, WK_ERROR = 3 };

typedef struct walk {
    const uint8_t *p, *end; /* unread bytes of the current window */
    uint64_t consumed;      /* record-stream bytes handed to the walker */
    uint64_t limit;         /* end of the current record in the stream */
    uint64_t produced;      /* decompressed bytes so far */
    size_t bound;
    int codec;
    const uint8_t *in; /* compressed payload */
    size_t in_len, in_pos;
    uint8_t *win;
    size_t win_cap;
    int done;           /* gzip: member finished; raw snappy: block taken */
    size_t hint;        /* lz4/zstd: non-zero while a frame is unfinished */
    int snappy_framed;
    uint8_t *own_win; /* snappy's block buffer (sized by the blocks) */
    z_stream *z;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
    ts_status st; /* set with msg when a pull ends in WK_ERROR */
    char msg[200];
} walk;

/* Scratch of the walk: the window and the decompression contexts, reset for
 * each batch and kept in a small idle list between calls (at most
 * SCRATCH_IDLE_MAX kept; more concurrent callers get blocks freed after
 * use). A list rather than thread-local storage: nothing is left to run at
 * thread exit, so a host may dlclose the plugin while its threads live on. */
#define SCRATCH_IDLE_MAX 8

typedef struct walk_scratch {
    struct walk_scratch *next;
    uint8_t *win; /* WALK_WINDOW bytes */
    z_stream z;
    int z_ok;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
} walk_scratch;

static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static walk_scratch *scratch_idle;
static int scratch_nidle;

static void scratch_free(walk_scratch *t)
{
    if (!t) return;
    if (t->z_ok) inflateEnd(&t->z);
    if (t->lz4) LZ4F_freeDecompressionContext(t->lz4);
    ZSTD_freeDCtx(t->zstd);
    free(t->win);
    free(t);
}

static walk_scratch *scratch_get(void)
{
    pthread_mutex_lock(&scratch_mu);
    walk_scratch *t = scratch_idle;
    if (t) {
        scratch_idle = t->next;
        scratch_nidle--;
    }
    pthread_mutex_unlock(&scratch_mu);
    if (t) return t;
    t = calloc(1, sizeof(*t));
    if (!t || !(t->win = malloc(WALK_WINDOW))) {
        free(t);
        return NULL;
    }
    return t;
}

static void scratch_put(walk_scratch *t)
{
    pthread_mutex_lock(&scratch_mu);
    if (scratch_nidle < SCRATCH_IDLE_MAX) {
        t->next = scratch_idle;
        scratch_idle = t;
        scratch_nidle++;
        t = NULL;
    }
    pthread_mutex_unlock(&scratch_mu);
    scratch_free(t);
}

/* Library unload (dlclose of the plugin, process exit). */
__attribute__((destructor)) static void scratch_unload(void)
{
    pthread_mutex_lock(&scratch_mu);
    while (scratch_idle) {
        walk_scratch *t = scratch_idle;
        scratch_idle = t->next;
        scratch_free(t);
    }
    scratch_nidle = 0;
    pthread_mutex_unlock(&scratch_mu);
}

static int w_error(walk *w, ts_status st, const char *fmt, const char *detail)
{
    w->st = st;
    snprintf(w->msg, sizeof(w->msg), fmt, codec_names[w->codec], detail ? detail : "");
    return -1;
}

static int w_too_large(walk *w)
{
    w->st = TS_E_MSG_TOO_LARGE;
    snprintf(w->msg, sizeof(w->msg),
             "%s-compressed records inflate to more than %zu bytes (message.max.bytes); "
             "refused without decompressing further",
             codec_names[w->codec], w->bound);
    return -1;
}

/* Accounts for `got` fresh bytes in the window: 1, or -1 past the bound. */
static int w_took(walk *w, size_t got)
{
    w->produced += got;
    if (w->produced > w->bound) return w_too_large(w);
    w->p = w->win;
    w->end = w->win + got;
    return 1;
}

static int fill_gzip(walk *w)
{
    for (;;) {
        if (w->done) {
            if (w->in_pos == w->in_len) return 0;
            inflateReset(w->z); /* another gzip member follows (GZIPInputStream reads them) */
            w->done = 0;
        }
        w->z->next_in = (Bytef *)(uintptr_t)(w->in + w->in_pos);
        w->z->avail_in = (uInt)(w->in_len - w->in_pos);
        w->z->next_out = w->win;
        w->z->avail_out = (uInt)w->win_cap;
        int zr = inflate(w->z, Z_NO_FLUSH);
        w->in_pos = w->in_len - w->z->avail_in;
        size_t got = w->win_cap - w->z->avail_out;
        if (zr == Z_STREAM_END)
            w->done = 1;
        else if (zr == Z_BUF_ERROR && got == 0)
            return w_error(w, TS_E_INVALID_RECORD, "%s stream ends before its end marker%s", NULL);
        else if (zr != Z_OK)
            return w_error(w, TS_E_INVALID_RECORD, "%s data does not decompress: %s",
                           w->z->msg ? w->z->msg : "zlib error");
        if (got) return w_took(w, got);
    }
}

static int fill_zstd(walk *w)
{
    for (;;) {
        if (w->in_pos == w->in_len && w->hint == 0) return 0;
        ZSTD_inBuffer ib = {w->in, w->in_len, w->in_pos};
        ZSTD_outBuffer ob = {w->win, w->win_cap, 0};
        size_t r = ZSTD_decompressStream(w->zstd, &ob, &ib);
        w->in_pos = ib.pos;
        if (ZSTD_isError(r))
            return w_error(w, TS_E_INVALID_RECORD, "%s data does not decompress: %s",
                           ZSTD_getErrorName(r));
        w->hint = r;
        if (ob.pos) return w_took(w, ob.pos);
        if (w->in_pos == w->in_len && r != 0)
            return w_error(w, TS_E_INVALID_RECORD, "%s stream ends inside a frame%s", NULL);
    }
}

static int fill_lz4(walk *w)
{
    for (;;) {
        if (w->in_pos == w->in_len && w->hint == 0) return 0;
        size_t outsz = w->win_cap, insz = w->in_len - w->in_pos;
        size_t r = LZ4F_decompress(w->lz4, w->win, &outsz, w->in + w->in_pos, &insz, NULL);
        w->in_pos += insz;
        if (LZ4F_isError(r))
            return w_error(w, TS_E_INVALID_RECORD, "%s data does not decompress: %s",
                           LZ4F_getErrorName(r));
        w->hint = r;
        if (outsz) return w_took(w, outsz);
        if ((w->in_pos == w->in_len && r != 0) || insz == 0)
            return w_error(w, TS_E_INVALID_RECORD, "%s stream ends inside a frame%s", NULL);
    }
}

/* xerial snappy-java's stream header: magic, version 1, compatible version 1. */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

/* Decompresses one raw snappy block of [in_pos, in_pos + clen) into the window. */
static int snappy_block(walk *w, size_t clen)
{
    const char *src = (const char *)w->in + w->in_pos;
    size_t ulen;
    if (snappy_uncompressed_length(src, clen, &ulen) != SNAPPY_OK)
        return w_error(w, TS_E_INVALID_RECORD, "%s data does not decompress: %s",
                       "bad length preamble");
    /* The preamble declares the size: refuse a bomb before allocating. */
    if (ulen > w->bound - w->produced) return w_too_large(w);
    if (ulen > w->win_cap) {
        uint8_t *nw = realloc(w->own_win, ulen);
        if (!nw) return w_error(w, TS_E_NOMEM, "out of memory decompressing %s%s", NULL);
        w->win = w->own_win = nw;
        w->win_cap = ulen;
    }
    size_t got = ulen;
    if (snappy_uncompress(src, clen, (char *)w->win, &got) != SNAPPY_OK || got != ulen)
        return w_error(w, TS_E_INVALID_RECORD, "%s data does not decompress: %s", "bad block");
    w->in_pos += clen;
    return got ? w_took(w, got) : 0;
}

static int fill_snappy(walk *w)
{
    if (!w->snappy_framed) { /* raw snappy (librdkafka): one block, the whole payload */
        if (w->done) return 0;
        w->done = 1;
        return snappy_block(w, w->in_len - w->in_pos);
    }
    /* xerial framing (Java clients): [int32 length][raw snappy block]...;
     * a concatenated stream repeats the 16-byte header. */
    for (;;) {
        size_t left = w->in_len - w->in_pos;
        if (left == 0) return 0;
        const uint8_t *q = w->in + w->in_pos;
        if (left >= 16 && !memcmp(q, xerial_magic, 8)) {
            w->in_pos += 16;
            continue;
        }
        if (left < 4)
            return w_error(w, TS_E_INVALID_RECORD, "%s (xerial framing) block length truncated%s",
                           NULL);
        size_t clen = ts_rd32(q);
        if (clen > left - 4)
            return w_error(w, TS_E_INVALID_RECORD,
                           "%s (xerial framing) block runs past the end of the batch%s", NULL);
        w->in_pos += 4;
        int r = snappy_block(w, clen);
        if (r) return r;
    }
}

/* Refills the window: 1 with bytes, 0 at the clean end of the records, -1
 * on an error (w->st, w->msg). */
static int w_fill(walk *w)
{
    switch (w->codec) {
    case 1: return fill_gzip(w);
    case 2: return fill_snappy(w);
    case 3: return fill_lz4(w);
    case 4: return fill_zstd(w);
    default: return 0; /* uncompressed: the one window was the whole batch */
    }
}

static int w_byte(walk *w, uint8_t *b)
{
    if (w->consumed >= w->limit) return WK_PAST_RECORD;
    if (w->p == w->end) {
        int r = w_fill(w);
        if (r <= 0) return r ? WK_ERROR : WK_END;
    }
    *b = *w->p++;
    w->consumed++;
    return WK_OK;
}

static int w_skip(walk *w, uint64_t n)
{
    if (n > w->limit - w->consumed) return WK_PAST_RECORD;
    while (n > 0) {
        if (w->p == w->end) {
            int r = w_fill(w);
            if (r <= 0) return r ? WK_ERROR : WK_END;
        }
        size_t take = (size_t)(w->end - w->p);
        if (take > n) take = (size_t)n;
        w->p += take;
        w->consumed += take;
        n -= take;
    }
    return WK_OK;
}

/* Zig-zag varint of at most `max` bytes (5: int32, 10: int64); WK_ERROR with
 * w->st = 0 when longer (Kafka: "varint is too long"). */
static int w_varint(walk *w, int max, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < max; i++) {
        uint8_t b;
        int r = w_byte(w, &b);
        if (r) return r;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (max == 5 && v > UINT32_MAX) break;
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return WK_OK;
        }
    }
    w->st = TS_OK;
    return WK_ERROR;
}

/* Reads a length-prefixed field (key, value, header key/value) and skips it. */
static int w_field(walk *w, int64_t min_len, int64_t *len)
{
    int r = w_varint(w, 5, len);
    if (r) return r;
    if (*len < min_len) {
        w->st = TS_OK;
        return WK_ERROR;
    }
    return *len > 0 ? w_skip(w, (uint64_t)*len) : WK_OK;
}

static ts_status walk_records(walk *w, const ts_batch_hdr *h, char *errstr, size_t errlen)
{
    const char *field = "length";
    int32_t i = 0;
    int r = WK_OK;
    int64_t v = 0, rlen = 0;
    for (; i < h->records_count; i++) {
        w->limit = UINT64_MAX;
        field = "length";
        if ((r = w_varint(w, 5, &rlen))) goto fail;
        if (rlen < 0) {
            v = rlen;
            goto bad_value;
        }
        if (w->codec == 0 && rlen > w->end - w->p)
            return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                              "record %d: length %lld runs past the end of the batch (%zu bytes "
                              "left)",
                              i, (long long)rlen, (size_t)(w->end - w->p));
        w->limit = w->consumed + (uint64_t)rlen;
        uint8_t attr;
        field = "attributes";
        if ((r = w_byte(w, &attr))) goto fail;
        field = "timestampDelta";
        if ((r = w_varint(w, 10, &v))) goto fail;
        field = "offsetDelta";
        if ((r = w_varint(w, 5, &v))) goto fail;
        if (v != i) goto bad_value;
        field = "key";
        if ((r = w_field(w, -1, &v))) goto fail;
        field = "value";
        if ((r = w_field(w, -1, &v))) goto fail;
        int64_t nh;
        field = "headers count";
        if ((r = w_varint(w, 5, &nh))) goto fail;
        if (nh < 0) {
            v = nh;
            goto bad_value;
        }
        for (int64_t k = 0; k < nh; k++) {
            field = "header key";
            if ((r = w_field(w, 0, &v))) goto fail;
            field = "header value";
            if ((r = w_field(w, -1, &v))) goto fail;
        }
        if (w->consumed != w->limit)
            return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                              "record %d: length says %lld bytes but its fields end after %llu",
                              i, (long long)rlen,
                              (unsigned long long)(w->consumed - (w->limit - (uint64_t)rlen)));
    }
    /* Exactly recordsCount records and nothing after them (Kafka: "Incorrect
     * declared batch size, records still remaining"). */
    w->limit = UINT64_MAX;
    if (w->p != w->end || (r = w_fill(w)) > 0)
        return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                          "record batch has bytes left after its %d records (recordsCount does not "
                          "match the records)",
                          h->records_count);
    if (r < 0) return ts_err_set(errstr, errlen, w->st, "%s", w->msg);
    return TS_OK;
bad_value:
    return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD, "record %d: invalid %s %lld%s", i,
                      field, (long long)v,
                      !strcmp(field, "offsetDelta") ? " (must equal the record's index)" : "");
fail:
    if (r == WK_END) {
        if (!strcmp(field, "length") && w->limit == UINT64_MAX)
            return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                              "record batch ends after %d of its %d records (recordsCount does "
                              "not match the records)",
                              i, h->records_count);
        return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                          "record %d: truncated in its %s (length %lld, the batch ends first)", i,
                          field, (long long)rlen);
    }
    if (r == WK_PAST_RECORD)
        return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                          "record %d: %s runs past the record's length %lld", i, field,
                          (long long)rlen);
    if (w->st == TS_OK)
        return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                          "record %d: malformed %s (varint too long or negative length)", i, field);
    /* The compressed stream is at fault, not one record: no "record <i>:". */
    return ts_err_set(errstr, errlen, w->st, "%s (reading record %d)", w->msg, i);
}

ts_status ts_batch_validate_records(const uint8_t *p, const ts_batch_hdr *h, size_t max_bytes,
                                    char *errstr, size_t errlen)
{
    walk w;
    memset(&w, 0, offsetof(walk, msg));
    w.codec = h->attributes & 0x7;
    w.bound = max_bytes;
    w.limit = UINT64_MAX;
    const uint8_t *rec = p + TS_BATCH_HEADER_SIZE;
    size_t rec_len = ts_batch_total_size(h) - TS_BATCH_HEADER_SIZE;
    ts_status st = TS_OK;
    if (w.codec > 4)
        return ts_err_set(errstr, errlen, TS_E_INVALID_RECORD,
                          "record batch uses compression codec %d; Kafka defines 0 none, 1 gzip, "
                          "2 snappy, 3 lz4 and 4 zstd",
                          w.codec);
    if (w.codec == 0) {
        w.p = rec;
        w.end = rec + rec_len;
        return walk_records(&w, h, errstr, errlen);
    }
    w.in = rec;
    w.in_len = rec_len;
    w.hint = 1;
    if (w.codec == 2) {
        /* Kafka reads snappy through snappy-java's SnappyInputStream, which
         * takes xerial-framed data (Java clients) and falls back to one raw
         * block (librdkafka); so does this. */
        w.snappy_framed = rec_len >= 16 && !memcmp(rec, xerial_magic, 8);
        st = walk_records(&w, h, errstr, errlen);
        free(w.own_win);
        return st;
    }
    walk_scratch *t = scratch_get();
    if (!t) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    w.win = t->win;
    w.win_cap = WALK_WINDOW;
    if (w.codec == 1) {
        /* 16 + MAX_WBITS: the gzip wrapper only, as Kafka's GZIPInputStream. */
        if (!t->z_ok && inflateInit2(&t->z, 16 + MAX_WBITS) == Z_OK) t->z_ok = 1;
        if (t->z_ok) inflateReset(&t->z);
        w.z = t->z_ok ? &t->z : NULL;
    } else if (w.codec == 3) {
        if (!t->lz4 && LZ4F_isError(LZ4F_createDecompressionContext(&t->lz4, LZ4F_VERSION)))
            t->lz4 = NULL;
        if (t->lz4) LZ4F_resetDecompressionContext(t->lz4);
        w.lz4 = t->lz4;
    } else {
        if (!t->zstd) t->zstd = ZSTD_createDCtx();
        if (t->zstd) ZSTD_DCtx_reset(t->zstd, ZSTD_reset_session_only);
        w.zstd = t->zstd;
    }
    if (!w.z && !w.lz4 && !w.zstd)
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (%s decompression context)",
                        codec_names[w.codec]);
    else
        st = walk_records(&w, h, errstr, errlen);
    scratch_put(t);
    return st;
}
