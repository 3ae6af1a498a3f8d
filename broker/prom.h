/*
 * prom.h — a bounded writer of Prometheus' text exposition format (0.0.4).
 *
 * Pure (libc only) so the unit test can check escaping and layout without a
 * broker. Every write goes into one buffer with a hard maximum: past it the
 * writer only sets `err` (the admin listener then answers 503 rather than a
 * truncated scrape that would read as counters going backwards).
 *
 * Escaping follows the format: in label values backslash, double quote and
 * newline become \\, \" and \n; in HELP text backslash and newline.
 */
#ifndef TS_BROKER_PROM_H
#define TS_BROKER_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct bprom {
    char *d;
    size_t len, cap, max;
    int err; /* max reached or out of memory: the body is incomplete */
} bprom;

/* A label set: n pairs, names are fixed identifiers, values are escaped. */
typedef struct bprom_label {
    const char *name, *value;
} bprom_label;

void bprom_init(bprom *w, size_t max);
void bprom_free(bprom *w);
/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void bprom_family(bprom *w, const char *name, const char *type, const char *help);
/* name{labels} value, value printed as an integer when integral. */
void bprom_sample(bprom *w, const char *name, const bprom_label *l, size_t nl, double value);
/* One histogram's series: cumulative _bucket{le=...} per bound, +Inf, _sum, _count.
 * counts[i] are per-bucket (not cumulative) for bounds[i]; counts[nb] is the
 * overflow bucket. */
void bprom_histogram(bprom *w, const char *name, const bprom_label *l, size_t nl,
                     const double *bounds, const uint64_t *counts, size_t nb, double sum);

#endif
