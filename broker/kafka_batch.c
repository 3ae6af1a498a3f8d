/*
 * kafka_batch.c — reads the record batch v2 header into named fields (see
 * kafka_batch.h) through the bounded slice reader of kafka_wire.c.
 */
#include "kafka_batch.h"

int kbatch_read_header(kr *r, kbatch_header *h)
{
    if (kr_left(r) < KBATCH_HEADER_LEN) return -1;
    int32_t crc;
    /* Cannot fail after the length check; KR_CHECK keeps the one exit anyway. */
    KR_CHECK(kr_i64(r, &h->base_offset));
    KR_CHECK(kr_i32(r, &h->batch_length));
    KR_CHECK(kr_i32(r, &h->partition_leader_epoch));
    KR_CHECK(kr_i8(r, &h->magic));
    KR_CHECK(kr_i32(r, &crc));
    h->crc = (uint32_t)crc;
    KR_CHECK(kr_i16(r, &h->attributes));
    KR_CHECK(kr_i32(r, &h->last_offset_delta));
    KR_CHECK(kr_i64(r, &h->base_timestamp));
    KR_CHECK(kr_i64(r, &h->max_timestamp));
    KR_CHECK(kr_i64(r, &h->producer_id));
    KR_CHECK(kr_i16(r, &h->producer_epoch));
    KR_CHECK(kr_i32(r, &h->base_sequence));
    KR_CHECK(kr_i32(r, &h->records_count));
    return 0;
fail:
    return -1;
}

int kbatch_header_at(const uint8_t *p, size_t len, kbatch_header *h)
{
    kr r;
    kr_init(&r, p, len);
    return kbatch_read_header(&r, h);
}

size_t kbatch_whole_prefix(const uint8_t *p, size_t len, int64_t end)
{
    size_t pos = 0;
    kbatch_header h;
    while (kbatch_header_at(p + pos, len - pos, &h) == 0) {
        size_t sz = kbatch_size(&h);
        if (sz < KBATCH_HEADER_LEN || sz > len - pos) break;
        if (h.base_offset + (int64_t)h.last_offset_delta >= end) break;
        pos += sz;
    }
    return pos;
}
