/*
 * test_kafka_batch.c — unit test of broker/kafka_batch.c: the record batch
 * header reader gives every field at its Kafka offset, refuses a short
 * buffer, and reads at the reader's position (several batches in a row);
 * kr_varlong, which walks record fields, within its bounds; whole batches
 * below an offset (kbatch_whole_prefix).
 */
#include <stdint.h>
#include <string.h>

#include "broker/kafka_batch.h"
#include "tests/tt.h"

/* A header with distinct values in every field, written field by field. */
static void put_header(kw *w, int64_t base, int32_t blen, int16_t attrs)
{
    kw_i64(w, base);
    kw_i32(w, blen);
    kw_i32(w, 7);             /* partitionLeaderEpoch */
    kw_i8(w, 2);              /* magic */
    kw_i32(w, (int32_t)0xdeadbeef); /* crc */
    kw_i16(w, attrs);
    kw_i32(w, 4);             /* lastOffsetDelta */
    kw_i64(w, 1700000000000); /* baseTimestamp */
    kw_i64(w, 1700000000009); /* maxTimestamp */
    kw_i64(w, 0x0102030405060708LL);
    kw_i16(w, 3);             /* producerEpoch */
    kw_i32(w, INT32_MAX - 1); /* baseSequence */
    kw_i32(w, 5);             /* recordsCount */
}

TT_TEST(batch_header_fields)
{
    kw w;
    kw_init(&w, 1024);
    put_header(&w, 42, KBATCH_MIN_LENGTH + 3, (int16_t)(KBATCH_ATTR_TRANSACTIONAL | 4));
    kw_raw(&w, "xyz", 3);
    put_header(&w, 99, KBATCH_MIN_LENGTH, 0);
    TT_ASSERT(!w.err);
    TT_ASSERT_EQ_INT(w.len, 2 * KBATCH_HEADER_LEN + 3);

    kbatch_header h;
    TT_ASSERT_EQ_INT(kbatch_header_at(w.d, w.len, &h), 0);
    TT_ASSERT_EQ_INT(h.base_offset, 42);
    TT_ASSERT_EQ_INT(h.batch_length, KBATCH_MIN_LENGTH + 3);
    TT_ASSERT_EQ_INT(kbatch_size(&h), KBATCH_HEADER_LEN + 3);
    TT_ASSERT_EQ_INT(h.partition_leader_epoch, 7);
    TT_ASSERT_EQ_INT(h.magic, 2);
    TT_ASSERT(h.crc == 0xdeadbeefu);
    TT_ASSERT(h.attributes & KBATCH_ATTR_TRANSACTIONAL);
    TT_ASSERT_EQ_INT(h.attributes & KBATCH_ATTR_CODEC_MASK, KBATCH_CODEC_ZSTD);
    TT_ASSERT_EQ_INT(h.last_offset_delta, 4);
    TT_ASSERT_EQ_INT(h.base_timestamp, 1700000000000);
    TT_ASSERT_EQ_INT(h.max_timestamp, 1700000000009);
    TT_ASSERT(h.producer_id == 0x0102030405060708LL);
    TT_ASSERT_EQ_INT(h.producer_epoch, 3);
    TT_ASSERT_EQ_INT(h.base_sequence, INT32_MAX - 1);
    TT_ASSERT_EQ_INT(h.records_count, 5);

    /* Through a reader: the second header follows the first batch. */
    kr r;
    kr_init(&r, w.d, w.len);
    TT_ASSERT_EQ_INT(kbatch_read_header(&r, &h), 0);
    TT_ASSERT_EQ_INT(r.pos, KBATCH_HEADER_LEN);
    TT_ASSERT_EQ_INT(kr_skip(&r, kbatch_size(&h) - KBATCH_HEADER_LEN), 0);
    TT_ASSERT_EQ_INT(kbatch_read_header(&r, &h), 0);
    TT_ASSERT_EQ_INT(h.base_offset, 99);
    TT_ASSERT_EQ_INT(kr_left(&r), 0);

    /* One byte short of a header: refused, reader unchanged. */
    kr_init(&r, w.d, KBATCH_HEADER_LEN - 1);
    TT_ASSERT_EQ_INT(kbatch_read_header(&r, &h), -1);
    TT_ASSERT_EQ_INT(r.pos, 0);
    TT_ASSERT_EQ_INT(kbatch_header_at(w.d, 0, &h), -1);
    /* A negative batchLength reads as the unsigned length a log reader sees. */
    kw_put_i32_at(&w, 8, -1);
    TT_ASSERT_EQ_INT(kbatch_header_at(w.d, w.len, &h), 0);
    TT_ASSERT(kbatch_size(&h) == 12 + (size_t)UINT32_MAX);
    kw_free(&w);
}

TT_TEST(varlong_bounds)
{
    static const struct {
        uint8_t b[11];
        size_t n;
        int ok;
        int64_t v;
    } cases[] = {
        {{0x00}, 1, 1, 0},
        {{0x01}, 1, 1, -1},
        {{0x02}, 1, 1, 1},
        {{0xd8, 0x04}, 2, 1, 300},
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 1, INT64_MIN},
        {{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 1, INT64_MAX},
        {{0xd8}, 1, 0, 0},                                                        /* short */
        {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 11, 0, 0}, /* > 10 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kr r;
        kr_init(&r, cases[i].b, cases[i].n);
        int64_t v = 42;
        int rc = kr_varlong(&r, &v);
        TT_ASSERT_MSG((rc == 0) == cases[i].ok, "case %zu: rc %d", i, rc);
        if (cases[i].ok) {
            TT_ASSERT_MSG(v == cases[i].v, "case %zu: %lld", i, (long long)v);
            TT_ASSERT_EQ_INT(kr_left(&r), 0);
        }
    }
}

/* Whole batches below an end offset: the consumer's cut at the HW and the
 * follower's cut of an answer to whole batches. */
TT_TEST(batch_whole_prefix)
{
    kw w;
    kw_init(&w, 1024);
    /* offsets 10-14, 15-19, 20-24 (lastOffsetDelta 4), 3 payload bytes each */
    for (int i = 0; i < 3; i++) {
        put_header(&w, 10 + 5 * i, KBATCH_MIN_LENGTH + 3, 0);
        kw_raw(&w, "abc", 3);
    }
    TT_ASSERT(!w.err);
    size_t one = KBATCH_HEADER_LEN + 3;
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, INT64_MAX), 3 * one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 25), 3 * one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 24), 2 * one); /* last offset 24 not below */
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 20), 2 * one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 15), one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 14), 0);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, 0), 0);
    /* A batch cut short (a read that ended inside it) is left out. */
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len - 1, INT64_MAX), 2 * one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, one + 10, INT64_MAX), one);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, 0, INT64_MAX), 0);
    /* An impossible length (shorter than a header) stops the walk. */
    kw_put_i32_at(&w, one + 8, 3);
    TT_ASSERT_EQ_INT(kbatch_whole_prefix(w.d, w.len, INT64_MAX), one);
    kw_free(&w);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(batch_header_fields);
    TT_RUN(batch_whole_prefix);
    TT_RUN(varlong_bounds);
    return tt_summary();
}
