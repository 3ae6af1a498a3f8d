/* fuzz_batch.c — libFuzzer target: record batch v2 validation and the
 * record walk of ListOffsets-by-time, on arbitrary bytes (what a producer
 * or a damaged segment can hand the engine). */
#include <stddef.h>
#include <stdint.h>

#include "common/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        ts_batch_hdr h;
        if (ts_batch_validate(data + pos, size - pos, 1 << 20, &h, NULL, 0) != TS_OK) break;
        int64_t off;
        ts_batch_offset_for_time(data + pos, size - pos, h.base_timestamp + 1, &off);
        pos += ts_batch_total_size(&h);
    }
    /* The walk must also be safe on batches whose CRC was never checked. */
    int64_t off;
    if (size >= 8) ts_batch_offset_for_time(data, size, (int64_t)data[0] << 8, &off);
    return 0;
}
