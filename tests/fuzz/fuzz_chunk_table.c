/*
 * fuzz_chunk_table.c — libFuzzer target for the chunk-table frame a reader
 * fetches from a segment object (index/chunk_table.c).
 *
 * Objects are in the bucket, which others can write, so the decoder must
 * survive any bytes: no crash, no leak, no out-of-bounds read; whatever it
 * accepts must satisfy the chunk-table rules (re-checked here) and encode
 * back to the same bytes.
 *
 * Input: 4 bytes of chunk count, then the frame. The entry it is checked
 * against is derived from the frame's own header where it can be (base
 * offset), so the fuzzer can reach the accept path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "index/manifest_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 + 48) return 0;
    uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8;
    const uint8_t *f = data + 4;
    size_t flen = size - 4;
    ts_segment_meta s;
    memset(&s, 0, sizeof(s));
    s.chunk_count = n;
    memcpy(&s.base_offset, f + 24, 8); /* little-endian hosts: what the frame says */
    s.last_offset = INT64_MAX;
    s.first_timestamp = -1;
    s.max_timestamp = -1;
    uint64_t raw = 0;
    for (size_t i = 0; 44 + i + 40 <= flen && i / 40 < n; i += 40) {
        const uint8_t *r = f + 44 + i + 28;
        raw += (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    }
    s.size_bytes = raw ? raw : 1;
    s.chunk_table_len = (uint32_t)flen;
    s.chunk_table_pos = UINT32_MAX;
    s.stored_bytes = s.chunk_table_pos + flen + 8ull * n + 17;
    strcpy(s.object_key, "t/0/segments/x.log.zst");
    char err[256];
    if (ts_chunk_table_decode(f, flen, &s, err, sizeof(err)) != TS_OK) {
        if (s.chunks) abort(); /* refused: nothing handed out */
        return 0;
    }
    if (!s.chunks || ts_manifest_check_segment(&s, "fuzz", err, sizeof(err)) != TS_OK) abort();
    uint8_t *again = malloc(flen);
    ts_chunk_table_encode(&s, again);
    if (memcmp(again, f, flen)) abort();
    free(again);
    ts_segment_meta_clear(&s);
    return 0;
}
