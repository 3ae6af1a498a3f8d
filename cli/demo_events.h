/*
 * demo_events.h — the realistic, deterministic events both demos write:
 * event `seq` of partition `p` is always the same JSON document, a few
 * hundred bytes, now and then a few KiB of cart items, so a reader can
 * regenerate what was written and compare every byte.
 */
#ifndef TS_DEMO_EVENTS_H
#define TS_DEMO_EVENTS_H

#include <stdint.h>
#include <stdio.h>

static inline uint64_t demo_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static inline size_t demo_event(int p, uint64_t seq, char *out, size_t cap)
{
    static const char *const kinds[] = {"page_view", "add_to_cart", "checkout", "payment",
                                        "refund", "search", "login", "logout"};
    static const char *const cities[] = {"Berlin", "Lisbon", "Osaka", "Austin",
                                         "Nairobi", "Lima", "Oslo", "Pune"};
    uint64_t r = demo_mix64(((uint64_t)p << 48) ^ seq);
    size_t n = (size_t)snprintf(out, cap,
                                "{\"p\":%d,\"seq\":%llu,\"event\":\"%s\",\"user\":\"u%06llu\","
                                "\"city\":\"%s\",\"session\":\"%016llx\",\"amount_cents\":%llu,"
                                "\"items\":[",
                                p, (unsigned long long)seq, kinds[r % 8],
                                (unsigned long long)((r >> 8) % 500000), cities[(r >> 16) % 8],
                                (unsigned long long)demo_mix64(r),
                                (unsigned long long)((r >> 24) % 100000));
    int items = (int)((r >> 40) % 6);
    if ((r >> 50) % 25 == 0) items = 20 + (int)((r >> 52) % 60);
    for (int i = 0; i < items && n + 64 < cap; i++) {
        uint64_t x = demo_mix64(r + (uint64_t)i);
        n += (size_t)snprintf(out + n, cap - n, "%s{\"sku\":\"SKU-%05llu\",\"qty\":%llu}",
                              i ? "," : "", (unsigned long long)(x % 20000),
                              (unsigned long long)(1 + x % 4));
    }
    n += (size_t)snprintf(out + n, cap - n, "]}");
    return n;
}

#endif
