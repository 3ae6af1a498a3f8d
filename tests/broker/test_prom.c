/*
 * test_prom.c — the Prometheus text writer (broker/prom.c): label values
 * escape backslash, quote and newline; HELP escapes backslash and newline
 * only; histograms are cumulative with +Inf, _sum and _count; the hard
 * maximum marks the body incomplete instead of truncating silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/prom.h"

static int failures;

#define EXPECT_STR(got, want)                                                                    \
    do {                                                                                         \
        if (strcmp((got) ? (got) : "", (want)) != 0) {                                           \
            fprintf(stderr, "%s:%d: got\n%s\nwant\n%s\n", __FILE__, __LINE__, (got), (want));      \
            failures++;                                                                          \
        }                                                                                        \
    } while (0)
#define EXPECT(c)                                                                                \
    do {                                                                                         \
        if (!(c)) {                                                                              \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #c);                     \
            failures++;                                                                          \
        }                                                                                        \
    } while (0)

static void test_escaping(void)
{
    bprom w;
    bprom_init(&w, 1 << 20);
    bprom_family(&w, "x_total", "counter", "a \\ back\nslash \"q\"");
    bprom_label l[2] = {{"topic", "a\\b\"c\nd"}, {"partition", "0"}};
    bprom_sample(&w, "x_total", l, 2, 42);
    bprom_sample(&w, "y", NULL, 0, 0.25);
    EXPECT(!w.err);
    EXPECT_STR(w.d, "# HELP x_total a \\\\ back\\nslash \"q\"\n"
                    "# TYPE x_total counter\n"
                    "x_total{topic=\"a\\\\b\\\"c\\nd\",partition=\"0\"} 42\n"
                    "y 0.25\n");
    bprom_free(&w);
}

static void test_histogram(void)
{
    bprom w;
    bprom_init(&w, 1 << 20);
    const double bounds[2] = {0.1, 1};
    const uint64_t counts[3] = {2, 3, 1};
    bprom_label l = {"api", "Produce"};
    bprom_histogram(&w, "h_seconds", &l, 1, bounds, counts, 2, 3.5);
    EXPECT_STR(w.d, "h_seconds_bucket{api=\"Produce\",le=\"0.1\"} 2\n"
                    "h_seconds_bucket{api=\"Produce\",le=\"1\"} 5\n"
                    "h_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 6\n"
                    "h_seconds_sum{api=\"Produce\"} 3.5\n"
                    "h_seconds_count{api=\"Produce\"} 6\n");
    bprom_free(&w);
}

static void test_bound(void)
{
    bprom w;
    bprom_init(&w, 64);
    for (int i = 0; i < 10; i++) bprom_sample(&w, "some_metric_name", NULL, 0, i);
    EXPECT(w.err);
    EXPECT(w.len < 64);
    bprom_free(&w);
}

int main(void)
{
    test_escaping();
    test_histogram();
    test_bound();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
