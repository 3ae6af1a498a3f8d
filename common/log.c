/* log.c — leveled logging to stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = -1;

int ts_log_level_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "error")) return TS_LOG_ERROR;
    if (!strcmp(s, "warn")) return TS_LOG_WARN;
    if (!strcmp(s, "info")) return TS_LOG_INFO;
    if (!strcmp(s, "debug")) return TS_LOG_DEBUG;
    return -1;
}

ts_log_level ts_log_get_level(void)
{
    int l = atomic_load(&g_level);
    if (l < 0) {
        l = ts_log_level_parse(getenv("TS_LOG_LEVEL"));
        if (l < 0) l = TS_LOG_INFO;
        atomic_store(&g_level, l);
    }
    return (ts_log_level)l;
}

void ts_log_set_level(ts_log_level lvl) { atomic_store(&g_level, (int)lvl); }

void ts_log(ts_log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (lvl > ts_log_get_level()) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[lvl], module);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line)) n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(line) - 1) n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
