/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of Kafka record batches and
 * of tierstore's remote chunks. Uses the SSE4.2 crc32 instruction when the
 * CPU has it, a slicing-by-8 table otherwise (Debian ships no C library for
 * CRC-32C; zlib's crc32 is a different polynomial).
 */
#ifndef TS_COMMON_CRC32C_H
#define TS_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: pass 0 to start. crc32c("123456789") == 0xE3069283. */
uint32_t ts_crc32c(uint32_t crc, const void *data, size_t len);

/* The CRC of A followed by B from crc_a = ts_crc32c(0, A), crc_b =
 * ts_crc32c(0, B) and B's length, without reading either: lets a check that
 * already ran over every piece of a buffer (each batch's Kafka CRC) also
 * give the whole buffer's CRC, instead of a second pass over its bytes.
 * O(log len_b) multiplications. */
uint32_t ts_crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

/* The same through the slicing-by-8 table even on a CPU with SSE4.2:
 * exposed for the unit test, which checks both paths agree. */
uint32_t ts_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
