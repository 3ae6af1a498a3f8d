/*
 * gen.h — deterministic, compressible, varied test data for the engine
 * tests: batch k of partition p is always the same bytes, so a reader can
 * regenerate what was written and compare byte for byte.
 */
#ifndef TS_TEST_GEN_H
#define TS_TEST_GEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"

static inline uint64_t gen_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static const char *const gen_words[] = {
    "order", "created", "user", "payment", "status", "pending", "shipped", "warehouse",
    "amount", "currency", "EUR", "USD", "item", "quantity", "sku", "customer", "region",
    "eu-west", "us-east", "latency_ms", "retry", "session", "click", "view", "cart",
    "checkout", "true", "false", "null", "event", "timestamp", "version"};
#define GEN_NWORDS (sizeof(gen_words) / sizeof(gen_words[0]))

/* Builds batch k of partition p (timestamps from ts0 + k). Sizes vary from
 * ~100 B to ~128 KiB; content is JSON-ish text (zstd ratio ~3-6x). */
static inline uint8_t *gen_batch(int p, uint64_t k, int64_t ts0, size_t *len, int *nrec)
{
    uint64_t r = gen_mix(((uint64_t)p << 40) ^ k);
    int n = 1 + (int)(r % 64);
    if ((r >> 8) % 16 == 0) n = 1 + (int)((r >> 16) % 400);
    char **vals = malloc((size_t)n * sizeof(char *));
    size_t *lens = malloc((size_t)n * sizeof(size_t));
    for (int i = 0; i < n; i++) {
        uint64_t x = gen_mix(r + (uint64_t)i);
        size_t target = 40 + (size_t)(x % 600);
        if ((x >> 20) % 50 == 0) target = 2000 + (size_t)((x >> 24) % 8000);
        char *v = malloc(target + 64);
        size_t pos = 0;
        pos += (size_t)snprintf(v, 64, "{\"p\":%d,\"k\":%llu,\"i\":%d", p, (unsigned long long)k, i);
        while (pos < target) {
            x = gen_mix(x);
            const char *w = gen_words[x % GEN_NWORDS];
            pos += (size_t)snprintf(v + pos, target + 64 - pos, ",\"%s\":%llu", w,
                                    (unsigned long long)((x >> 8) % 100000));
        }
        v[pos++] = '}';
        vals[i] = v;
        lens[i] = pos;
    }
    uint8_t *b = NULL;
    ts_batch_build((const void *const *)vals, lens, n, ts0 + (int64_t)k, &b, len);
    for (int i = 0; i < n; i++) free(vals[i]);
    free(vals);
    free(lens);
    if (nrec) *nrec = n;
    return b;
}

#endif
