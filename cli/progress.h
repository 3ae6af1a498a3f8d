/*
 * progress.h — a progress line for long work in the command-line tools
 * (tierctl verify, the demos' read-back phases): counts, bytes, rate and an
 * ETA, redrawn in place on stderr at most 5 times a second.
 *
 * Shown only when stderr is a terminal and --quiet was not given, so
 * scripts and CI logs (pipes, files) get none of it; the tools' results
 * still go to stdout as before. A tool printing rows to the same terminal
 * calls cli_progress_clear first so a row never lands inside the line.
 *
 * Header-only (static) like cli_args.h, for the Kafka demo that links
 * nothing of tierstore. Thread: the caller's (one thread).
 */
#ifndef TS_CLI_PROGRESS_H
#define TS_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef struct cli_progress {
    const char *what;   /* "verify" */
    const char *unit;   /* "segments", "records" */
    int on;             /* drawing at all */
    int drawn;          /* a line is on the terminal */
    uint64_t items, total_items, bytes, total_bytes; /* totals 0 = unknown */
    int64_t t0_ms, last_ms;
} cli_progress;

static inline int64_t cli_progress_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void cli_progress_human(double b, char *out, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) b /= 1024, i++;
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static inline void cli_progress_start(cli_progress *p, const char *what, const char *unit,
                                      uint64_t total_items, uint64_t total_bytes, int quiet)
{
    *p = (cli_progress){.what = what, .unit = unit, .total_items = total_items,
                        .total_bytes = total_bytes};
    p->on = !quiet && isatty(STDERR_FILENO);
    p->t0_ms = cli_progress_now_ms();
}

static inline void cli_progress_clear(cli_progress *p)
{
    if (!p->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}

static inline void cli_progress_draw(cli_progress *p, int64_t now)
{
    double secs = (double)(now - p->t0_ms) / 1000.0;
    char done[32], total[32] = "", rate[32] = "", eta[32] = "";
    cli_progress_human((double)p->bytes, done, sizeof done);
    if (p->total_bytes) {
        char t[24];
        cli_progress_human((double)p->total_bytes, t, sizeof t);
        snprintf(total, sizeof total, " of %s", t);
    }
    if (secs > 0.2) {
        double bps = (double)p->bytes / secs;
        char r[24];
        cli_progress_human(bps, r, sizeof r);
        snprintf(rate, sizeof rate, ", %s/s", r);
        long s = -1;
        if (p->total_bytes > p->bytes && bps > 0)
            s = (long)((double)(p->total_bytes - p->bytes) / bps + 0.5);
        else if (!p->total_bytes && p->total_items > p->items && p->items)
            /* bytes unknown up front (tierctl recover): by items done */
            s = (long)(secs * (double)(p->total_items - p->items) / (double)p->items + 0.5);
        if (s >= 0) snprintf(eta, sizeof eta, ", ETA %ld:%02ld", s / 60, s % 60);
    }
    char count[48];
    if (p->total_items)
        snprintf(count, sizeof count, "%llu/%llu", (unsigned long long)p->items,
                 (unsigned long long)p->total_items);
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)p->items);
    fprintf(stderr, "\r\033[K%s: %s %s, %s%s%s%s", p->what, count, p->unit, done, total, rate,
            eta);
    fflush(stderr);
    p->drawn = 1;
    p->last_ms = now;
}

/* Counts work done; redraws when 200 ms passed since the last draw. */
static inline void cli_progress_add(cli_progress *p, uint64_t items, uint64_t bytes)
{
    p->items += items;
    p->bytes += bytes;
    if (!p->on) return;
    int64_t now = cli_progress_now_ms();
    if (!p->drawn || now - p->last_ms >= 200) cli_progress_draw(p, now);
}

/* The work is over: the line goes away (the tool prints its summary). */
static inline void cli_progress_end(cli_progress *p) { cli_progress_clear(p); }

#endif
