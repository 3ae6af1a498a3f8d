/* fuzz_batch.c — libFuzzer target: record batch v2 validation, the record
 * walk of append validation (every codec: gzip, snappy raw and xerial, lz4,
 * zstd, decompressed under a bound) and the record walk of
 * ListOffsets-by-time, on arbitrary bytes (what a producer or a damaged
 * segment can hand the engine). */
#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"

/* Small, so that bombs are cut short and runs stay fast. */
#define FUZZ_BOUND (256u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        ts_batch_hdr h;
        if (ts_batch_validate(data + pos, size - pos, 1 << 20, &h, NULL, 0) != TS_OK) break;
        int64_t off;
        ts_batch_offset_for_time(data + pos, size - pos, h.base_timestamp + 1, &off);
        ts_batch_validate_records(data + pos, &h, FUZZ_BOUND, NULL, 0);
        pos += ts_batch_total_size(&h);
    }
    /* The walks must also be safe on batches whose CRC was never checked
     * (the fuzzer rarely forges a CRC): only the frame's length is trusted. */
    ts_batch_hdr h;
    if (ts_batch_parse_header(data, size, 1 << 20, &h, NULL, 0) == TS_OK &&
        ts_batch_total_size(&h) <= size) {
        char err[256];
        ts_batch_validate_records(data, &h, FUZZ_BOUND, err, sizeof(err));
    }
    int64_t off;
    if (size >= 8) ts_batch_offset_for_time(data, size, (int64_t)data[0] << 8, &off);
    return 0;
}
