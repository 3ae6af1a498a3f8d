/*
 * prom.c — Prometheus text exposition writer (see prom.h). Single-threaded
 * per writer; the admin listener builds one per scrape.
 */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bprom_init(bprom *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void bprom_free(bprom *w)
{
    free(w->d);
    memset(w, 0, sizeof(*w));
}

static void put(bprom *w, const char *s, size_t n)
{
    if (w->err) return;
    if (w->len + n + 1 > w->max) {
        w->err = 1;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4096;
        while (nc < w->len + n + 1) nc *= 2;
        if (nc > w->max) nc = w->max;
        char *nd = realloc(w->d, nc);
        if (!nd) {
            w->err = 1;
            return;
        }
        w->d = nd;
        w->cap = nc;
    }
    memcpy(w->d + w->len, s, n);
    w->len += n;
    w->d[w->len] = 0;
}

static void puts_(bprom *w, const char *s) { put(w, s, strlen(s)); }

static void putf(bprom *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(bprom *w, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        w->err = 1;
        return;
    }
    put(w, buf, (size_t)n);
}

/* label_value: also escapes '"'; HELP text does not. */
static void put_escaped(bprom *w, const char *s, int label_value)
{
    for (; *s; s++) {
        if (*s == '\\') puts_(w, "\\\\");
        else if (*s == '\n') puts_(w, "\\n");
        else if (*s == '"' && label_value) puts_(w, "\\\"");
        else put(w, s, 1);
    }
}

static void put_value(bprom *w, double v)
{
    if (isnan(v)) puts_(w, "NaN");
    else if (isinf(v)) puts_(w, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9.007199254740992e15) putf(w, "%.0f", v);
    else putf(w, "%.17g", v);
}

void bprom_family(bprom *w, const char *name, const char *type, const char *help)
{
    putf(w, "# HELP %s ", name);
    put_escaped(w, help, 0);
    putf(w, "\n# TYPE %s %s\n", name, type);
}

/* name{l...,extra="extra_value"} */
static void put_series(bprom *w, const char *name, const char *suffix, const bprom_label *l,
                       size_t nl, const char *extra, const char *extra_value)
{
    puts_(w, name);
    puts_(w, suffix);
    if (nl || extra) {
        puts_(w, "{");
        for (size_t i = 0; i < nl; i++) {
            if (i) puts_(w, ",");
            puts_(w, l[i].name);
            puts_(w, "=\"");
            put_escaped(w, l[i].value, 1);
            puts_(w, "\"");
        }
        if (extra) {
            if (nl) puts_(w, ",");
            puts_(w, extra);
            puts_(w, "=\"");
            put_escaped(w, extra_value, 1);
            puts_(w, "\"");
        }
        puts_(w, "}");
    }
    puts_(w, " ");
}

void bprom_sample(bprom *w, const char *name, const bprom_label *l, size_t nl, double value)
{
    put_series(w, name, "", l, nl, NULL, NULL);
    put_value(w, value);
    puts_(w, "\n");
}

void bprom_histogram(bprom *w, const char *name, const bprom_label *l, size_t nl,
                     const double *bounds, const uint64_t *counts, size_t nb, double sum)
{
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i < nb; i++) {
        cum += counts[i];
        snprintf(le, sizeof le, "%g", bounds[i]);
        put_series(w, name, "_bucket", l, nl, "le", le);
        put_value(w, (double)cum);
        puts_(w, "\n");
    }
    cum += counts[nb];
    put_series(w, name, "_bucket", l, nl, "le", "+Inf");
    put_value(w, (double)cum);
    puts_(w, "\n");
    put_series(w, name, "_sum", l, nl, NULL, NULL);
    put_value(w, sum);
    puts_(w, "\n");
    put_series(w, name, "_count", l, nl, NULL, NULL);
    put_value(w, (double)cum);
    puts_(w, "\n");
}
