/*
 * test_placement.c — Kafka's replica assignment (broker/placement.c): every
 * partition gets rf distinct brokers; leaders (first replicas) and replicas
 * spread evenly over the brokers; with racks, a partition's replicas span
 * min(rf, racks) racks; brokers without a rack (any of them) mean rack-unaware;
 * one broker, rf 1. Every random start and shift (srand over many seeds).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/placement.h"
#include "tt.h"

static void brokers(cl_broker *b, int n, const char *const *racks)
{
    memset(b, 0, sizeof(*b) * (size_t)n);
    for (int i = 0; i < n; i++) {
        b[i].id = 10 + (n - i); /* ids not in list order: the list is sorted by id */
        if (racks) strcpy(b[i].rack, racks[i]);
    }
}

static const char *rack_of(const cl_broker *b, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (b[i].id == id) return b[i].rack;
    return NULL;
}

/* rf distinct known ids per partition; leader counts within one of even. */
static int check_spread(const cl_broker *b, int n, int32_t nparts, int32_t rf,
                        const int32_t *out)
{
    int lead[64] = {0}, rep[64] = {0};
    for (int32_t p = 0; p < nparts; p++)
        for (int32_t k = 0; k < rf; k++) {
            int32_t id = out[p * rf + k];
            if (!rack_of(b, n, id)) return 0;
            for (int32_t j = 0; j < k; j++)
                if (out[p * rf + j] == id) return 0;
            if (k == 0) lead[id - 10]++;
            rep[id - 10]++;
        }
    int lo = nparts / n, hi = (nparts + n - 1) / n;
    for (int i = 1; i <= n; i++)
        if (lead[i] < lo || lead[i] > hi) return 0;
    return 1;
}

TT_TEST(rack_unaware_spread)
{
    cl_broker b[5];
    brokers(b, 5, NULL);
    int32_t out[20 * 3];
    for (unsigned seed = 1; seed < 200; seed++) {
        srand(seed);
        cluster_assign(b, 5, 20, 3, out);
        TT_ASSERT_MSG(check_spread(b, 5, 20, 3, out), "seed %u", seed);
    }
}

TT_TEST(rack_aware_spans_racks)
{
    static const char *const racks[6] = {"a", "a", "b", "b", "c", "c"};
    cl_broker b[6];
    brokers(b, 6, racks);
    int32_t out[12 * 3], out2[12 * 2];
    for (unsigned seed = 1; seed < 200; seed++) {
        srand(seed);
        cluster_assign(b, 6, 12, 3, out);
        TT_ASSERT_MSG(check_spread(b, 6, 12, 3, out), "seed %u", seed);
        for (int p = 0; p < 12; p++) {
            const char *r0 = rack_of(b, 6, out[p * 3]), *r1 = rack_of(b, 6, out[p * 3 + 1]),
                       *r2 = rack_of(b, 6, out[p * 3 + 2]);
            TT_ASSERT_MSG(strcmp(r0, r1) && strcmp(r0, r2) && strcmp(r1, r2),
                          "seed %u partition %d: racks %s %s %s", seed, p, r0, r1, r2);
        }
        srand(seed);
        cluster_assign(b, 6, 12, 2, out2);
        for (int p = 0; p < 12; p++)
            TT_ASSERT(strcmp(rack_of(b, 6, out2[p * 2]), rack_of(b, 6, out2[p * 2 + 1])));
    }
}

TT_TEST(more_replicas_than_racks)
{
    static const char *const racks[4] = {"x", "x", "y", "y"};
    cl_broker b[4];
    brokers(b, 4, racks);
    int32_t out[8 * 4];
    for (unsigned seed = 1; seed < 100; seed++) {
        srand(seed);
        cluster_assign(b, 4, 8, 4, out); /* rf = brokers: every broker, racks repeat */
        TT_ASSERT_MSG(check_spread(b, 4, 8, 4, out), "seed %u", seed);
        for (int p = 0; p < 8; p++) /* the first two replicas on different racks */
            TT_ASSERT(strcmp(rack_of(b, 4, out[p * 4]), rack_of(b, 4, out[p * 4 + 1])));
    }
}

TT_TEST(one_rack_missing_is_unaware)
{
    static const char *const racks[3] = {"a", "a", ""};
    cl_broker b[3];
    brokers(b, 3, racks);
    int32_t out[6 * 2];
    srand(7);
    cluster_assign(b, 3, 6, 2, out);
    TT_ASSERT(check_spread(b, 3, 6, 2, out));
}

TT_TEST(single_broker)
{
    cl_broker b[1];
    brokers(b, 1, NULL);
    int32_t out[4];
    cluster_assign(b, 1, 4, 1, out);
    for (int p = 0; p < 4; p++) TT_ASSERT_EQ_INT(out[p], b[0].id);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(rack_unaware_spread);
    TT_RUN(rack_aware_spans_racks);
    TT_RUN(more_replicas_than_racks);
    TT_RUN(one_rack_missing_is_unaware);
    TT_RUN(single_broker);
    return tt_summary();
}
