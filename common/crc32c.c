/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Hardware path: the SSE4.2 crc32 instruction, 8 bytes per step, chosen at
 * run time with __builtin_cpu_supports so one binary runs everywhere.
 * Software path: slicing-by-8 tables built once.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t g_table[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_hw;

static void init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        g_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            g_table[t][i] = (g_table[t - 1][i] >> 8) ^ g_table[0][g_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    g_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = g_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc; /* little-endian hosts only (x86_64, aarch64) */
        crc = g_table[7][v & 0xff] ^ g_table[6][(v >> 8) & 0xff] ^ g_table[5][(v >> 16) & 0xff] ^
              g_table[4][(v >> 24) & 0xff] ^ g_table[3][(v >> 32) & 0xff] ^
              g_table[2][(v >> 40) & 0xff] ^ g_table[1][(v >> 48) & 0xff] ^
              g_table[0][(v >> 56) & 0xff];
        p += 8;
        len -= 8;
    }
    while (len--) crc = g_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                          size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    while (len--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

uint32_t ts_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&g_once, init_tables);
    crc = ~crc;
#if defined(__x86_64__)
    if (g_hw) return ~crc_hw(crc, data, len);
#endif
    return ~crc_sw(crc, data, len);
}

/* The table path, whatever the CPU has (crc32c.h). */
uint32_t ts_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&g_once, init_tables);
    return ~crc_sw(~crc, data, len);
}
