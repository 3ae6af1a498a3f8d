/* logline.c — one log line, text or JSON (see logline.h). */
#include "logline.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int ts_logline_format_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "text")) return TS_LOGLINE_TEXT;
    if (!strcmp(s, "json")) return TS_LOGLINE_JSON;
    return -1;
}

/* Appends s JSON-escaped at buf[*n], keeping room for `reserve` bytes. */
static void put_escaped(char *buf, size_t cap, size_t reserve, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[7];
        size_t k;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, k = 2;
        } else if (*p == '\n') {
            esc[0] = '\\', esc[1] = 'n', k = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4], esc[5] = hex[*p & 15], k = 6;
        } else {
            esc[0] = (char)*p, k = 1;
        }
        if (*n + k + reserve > cap) return;
        memcpy(buf + *n, esc, k);
        *n += k;
    }
}

static void put_raw(char *buf, size_t cap, size_t reserve, size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (*n + reserve >= cap) return;
    if (k > cap - reserve - *n) k = cap - reserve - *n;
    memcpy(buf + *n, s, k);
    *n += k;
}

static void timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static size_t render_text(char *buf, size_t cap, const char *ts, const char *level,
                          const char *logger, const char *msg, unsigned long suppressed)
{
    int n = snprintf(buf, cap, "%s %-5s [%s] ", ts, level, logger);
    size_t len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
    put_raw(buf, cap, 2, &len, msg);
    if (suppressed) {
        char tail[64];
        snprintf(tail, sizeof tail, " (%lu similar lines suppressed)", suppressed);
        put_raw(buf, cap, 2, &len, tail);
    }
    buf[len++] = '\n';
    return len;
}

/* The closing part ("}\n" or ",\"suppressed\":N}\n") always fits: it is
 * reserved while the message is written. */
static size_t render_json(char *buf, size_t cap, const char *ts, const char *level,
                          const char *logger, const char *msg, unsigned long suppressed)
{
    char tail[48];
    if (suppressed)
        snprintf(tail, sizeof tail, "\",\"suppressed\":%lu}\n", suppressed);
    else
        snprintf(tail, sizeof tail, "\"}\n");
    size_t reserve = strlen(tail) + 1, len = 0;
    put_raw(buf, cap, reserve, &len, "{\"ts\":\"");
    put_raw(buf, cap, reserve, &len, ts);
    put_raw(buf, cap, reserve, &len, "\",\"level\":\"");
    put_escaped(buf, cap, reserve, &len, level);
    put_raw(buf, cap, reserve, &len, "\",\"logger\":\"");
    put_escaped(buf, cap, reserve, &len, logger);
    put_raw(buf, cap, reserve, &len, "\",\"msg\":\"");
    put_escaped(buf, cap, reserve, &len, msg);
    memcpy(buf + len, tail, reserve - 1);
    return len + reserve - 1;
}

size_t ts_logline_render(char *buf, size_t cap, ts_logline_format fmt, const char *level,
                         const char *logger, const char *msg, unsigned long suppressed)
{
    char ts[32];
    timestamp(ts);
    if (fmt == TS_LOGLINE_JSON) return render_json(buf, cap, ts, level, logger, msg, suppressed);
    return render_text(buf, cap, ts, level, logger, msg, suppressed);
}
