/*
 * kafka_batch.h — the record batch v2 header as the broker reads it: named
 * fields, read through kafka_wire's bounded reader (kr_*), so no handler
 * indexes a batch by magic offsets.
 *
 * The broker reads headers only for its own policy (Produce entry checks,
 * idempotence, rebuilding producer state, the ListOffsets refine); the
 * plugin validates CRCs and walks records. The byte layout (Kafka's
 * DefaultRecordBatch, 61 bytes big-endian) is documented once, in
 * common/batch.h; the fields below are read in that order. The struct
 * mirrors the engine's ts_batch_hdr because the broker may include no
 * engine header (docs/ARCHITECTURE.md section 3).
 *
 * Thread: any (pure).
 */
#ifndef TS_BROKER_KAFKA_BATCH_H
#define TS_BROKER_KAFKA_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kafka_wire.h"

#define KBATCH_HEADER_LEN 61
/* batchLength counts the bytes after itself: a whole batch is 12 + it. */
#define KBATCH_LOG_OVERHEAD 12
/* batchLength of a batch that is only a header (61 - 12). */
#define KBATCH_MIN_LENGTH (KBATCH_HEADER_LEN - KBATCH_LOG_OVERHEAD)

/* attributes */
#define KBATCH_ATTR_CODEC_MASK 0x07 /* 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd */
#define KBATCH_CODEC_ZSTD 4
#define KBATCH_ATTR_TRANSACTIONAL 0x10
#define KBATCH_ATTR_CONTROL 0x20

typedef struct kbatch_header {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} kbatch_header;

/* Reads the header at r's position and advances past it. -1 (r unchanged)
 * when fewer than KBATCH_HEADER_LEN bytes are left. No field is checked. */
int kbatch_read_header(kr *r, kbatch_header *h);
/* The same on a buffer: the header of the batch at p (len bytes there). */
int kbatch_header_at(const uint8_t *p, size_t len, kbatch_header *h);
/* Bytes of the whole batch the header announces (12 + batchLength, with
 * batchLength read as unsigned, as a log reader does). */
static inline size_t kbatch_size(const kbatch_header *h)
{
    return KBATCH_LOG_OVERHEAD + (size_t)(uint32_t)h->batch_length;
}

/* Bytes of the whole batches at the start of p (len bytes) whose last
 * offset is below `end`: a consumer's read cut at the high watermark, a
 * follower's fetch answer cut to whole batches (end = INT64_MAX). Stops at
 * the first batch that is cut short or whose length is impossible. */
size_t kbatch_whole_prefix(const uint8_t *p, size_t len, int64_t end);

#endif
