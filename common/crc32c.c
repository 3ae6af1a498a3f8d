/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Hardware path: the SSE4.2 crc32 instruction, 8 bytes per step, chosen at
 * run time with __builtin_cpu_supports so one binary runs everywhere. One
 * chain of crc32 instructions is bound by their latency (~2.5 GB/s here), so
 * long inputs run three independent chains over three adjacent blocks and
 * join them: the CRC state is linear, state(s, AB) = shift(state(s, A), |B|)
 * ^ state(0, B), and shifting by a fixed block size is a 32-bit linear map
 * kept as four 256-entry tables (one per state byte). The cold read path
 * checks every batch it serves from the chunk cache, so this speed is read
 * speed (reader/README.md).
 * Software path: slicing-by-8 tables built once.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t g_table[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_hw;

/* Interleaved hardware path: block sizes per chain (a round covers three
 * blocks) and the shift-by-one-block map of each, g_shift[tier][byte][v]. */
static const size_t g_blk[2] = {8192, 256};
static uint32_t g_shift[2][4][256];

/* Product of two polynomials modulo POLY, reflected (bit 31 = x^0). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
    }
    return p;
}

/* x^(8 * n) modulo POLY: the map that moves a CRC state past n zero bytes. */
static uint32_t x8n(size_t n)
{
    uint32_t r = 1u << 31, sq = 1u << 23; /* x^0, and x^8 */
    for (; n; n >>= 1, sq = multmodp(sq, sq))
        if (n & 1) r = multmodp(sq, r);
    return r;
}

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
    for (int t = 0; t < 2; t++) {
        uint32_t k = x8n(g_blk[t]);
        for (int j = 0; j < 4; j++)
            for (uint32_t v = 0; v < 256; v++) g_shift[t][j][v] = multmodp(k, v << (8 * j));
    }
}

/* A state moved past one block of tier t (linear: one table per byte). */
static inline uint32_t shift_blk(int t, uint32_t c)
{
    return g_shift[t][0][c & 0xff] ^ g_shift[t][1][(c >> 8) & 0xff] ^
           g_shift[t][2][(c >> 16) & 0xff] ^ g_shift[t][3][c >> 24];
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
    for (int t = 0; t < 2; t++) {
        size_t blk = g_blk[t];
        while (len >= 3 * blk) {
            uint64_t c1 = 0, c2 = 0;
            for (size_t i = 0; i < blk; i += 8) {
                uint64_t v0, v1, v2;
                memcpy(&v0, p + i, 8);
                memcpy(&v1, p + blk + i, 8);
                memcpy(&v2, p + 2 * blk + i, 8);
                c = __builtin_ia32_crc32di(c, v0);
                c1 = __builtin_ia32_crc32di(c1, v1);
                c2 = __builtin_ia32_crc32di(c2, v2);
            }
            c = shift_blk(t, shift_blk(t, (uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
            p += 3 * blk;
            len -= 3 * blk;
        }
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

/* With the pre- and post-inversions, crc(A B) = crc(A) moved past |B| zero
 * bytes, xor crc(B): the inversions of A's end and B's start cancel. */
uint32_t ts_crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b)
{
    return multmodp(x8n(len_b), crc_a) ^ crc_b;
}

/* The table path, whatever the CPU has (crc32c.h). */
uint32_t ts_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&g_once, init_tables);
    return ~crc_sw(~crc, data, len);
}
