/*
 * batch.h — Kafka record batch v2 (magic 2) header parsing, validation of
 * the frame and of every record.
 *
 * On-disk and on-wire layout of a record batch (all integers big-endian):
 *
 *   off  size  field
 *     0     8  baseOffset            (assigned by the log; not under the CRC)
 *     8     4  batchLength           (bytes after this field: total = 12 + batchLength)
 *    12     4  partitionLeaderEpoch  (not under the CRC)
 *    16     1  magic                 (must be 2)
 *    17     4  crc                   (CRC-32C of bytes 21 .. end)
 *    21     2  attributes            (bits 0-2 compression, 3 timestamp type,
 *                                     4 transactional, 5 control)
 *    23     4  lastOffsetDelta
 *    27     8  baseTimestamp
 *    35     8  maxTimestamp
 *    43     8  producerId
 *    51     2  producerEpoch
 *    53     4  baseSequence
 *    57     4  recordsCount
 *    61     …  records
 *
 * tierstore stores these bytes unchanged except baseOffset, which the log
 * rewrites on append; the CRC does not cover it, so batches stay valid.
 */
#ifndef TS_COMMON_BATCH_H
#define TS_COMMON_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "tierstore.h"

#define TS_BATCH_HEADER_SIZE 61
#define TS_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */

typedef struct ts_batch_hdr {
    int64_t base_offset;
    int32_t batch_length;
    int32_t leader_epoch;
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
} ts_batch_hdr;

/* Total bytes of the batch on disk (12 + batchLength). */
static inline size_t ts_batch_total_size(const ts_batch_hdr *h)
{
    return (size_t)TS_BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}
static inline int64_t ts_batch_last_offset(const ts_batch_hdr *h)
{
    return h->base_offset + h->last_offset_delta;
}

/* Parses the 61-byte header at p (len bytes available). Checks only that the
 * header is present and batchLength is sane (>= 49, <= max_batch), not the
 * CRC. TS_E_CORRUPT with a message otherwise. */
ts_status ts_batch_parse_header(const uint8_t *p, size_t len, size_t max_batch, ts_batch_hdr *h,
                                char *errstr, size_t errlen);

/* Parses and fully validates one batch at p: header, magic 2, batch present
 * in full within len, CRC-32C, lastOffsetDelta >= 0 and consistent with
 * recordsCount. */
ts_status ts_batch_validate(const uint8_t *p, size_t len, size_t max_batch, ts_batch_hdr *h,
                            char *errstr, size_t errlen);

/* Walks every record of one batch as Kafka's LogValidator does. Requires
 * h parsed from p (ts_batch_parse_header) and ts_batch_total_size(h) bytes
 * present at p; the CRC need not have been checked. Compressed batches
 * (gzip, snappy raw or xerial-framed, lz4 frame, zstd) are decompressed in a
 * bounded window, never more than max_bytes of output in all. Each record
 * must parse (varint length, attributes, timestampDelta, offsetDelta equal
 * to its index, key, value, headers), consume exactly its length, and the
 * batch must hold exactly recordsCount records and nothing after them.
 * Returns TS_E_INVALID_RECORD (message "record <i>: ..." when one record is
 * at fault), TS_E_MSG_TOO_LARGE when the records inflate past max_bytes,
 * TS_E_NOMEM. Control and transactional batches are walked like any other:
 * whether a client may send them is the host's policy. Thread: any. */
ts_status ts_batch_validate_records(const uint8_t *p, const ts_batch_hdr *h, size_t max_bytes,
                                    char *errstr, size_t errlen);

/* Rewrites the baseOffset field in place. */
void ts_batch_set_base_offset(uint8_t *p, int64_t base_offset);
/* Rewrites the partitionLeaderEpoch field in place (outside the CRC, like
 * baseOffset: a leader stamps its epoch into every batch it appends). */
void ts_batch_set_leader_epoch(uint8_t *p, int32_t leader_epoch);

/* Big-endian helpers. */
static inline uint16_t ts_rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t ts_rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t ts_rd64(const uint8_t *p)
{
    return ((uint64_t)ts_rd32(p) << 32) | ts_rd32(p + 4);
}
static inline void ts_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void ts_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void ts_wr64(uint8_t *p, uint64_t v)
{
    ts_wr32(p, (uint32_t)(v >> 32)); ts_wr32(p + 4, (uint32_t)v);
}

/* Offset of the first record in the batch whose timestamp >= ts (Kafka's
 * ListOffsets semantics), walking the records of an uncompressed batch.
 * For a compressed batch (attributes bits 0-2 != 0) returns the batch's
 * base offset: its records are opaque without decompression.
 * TS_E_NOT_FOUND when the batch's max timestamp < ts; TS_E_CORRUPT on a
 * malformed record. */
ts_status ts_batch_offset_for_time(const uint8_t *p, size_t len, int64_t ts, int64_t *offset);

/* Builds a valid batch (for tests, benchmarks and the demo): `n` records
 * with the given values (NULL keys), timestamps base_ts + i. Writes into a
 * malloc'd buffer. Compression none. */
ts_status ts_batch_build(const void *const *values, const size_t *value_lens, int n,
                         int64_t base_ts, uint8_t **out, size_t *out_len);

#endif
