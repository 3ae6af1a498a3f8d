/* batch.c — record batch v2 parsing, validation and building (see batch.h). */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

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
