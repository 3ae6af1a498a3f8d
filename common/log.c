/* log.c — leveled logging to stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static atomic_int g_json = 0;

void ts_log_set_format(int json) { atomic_store(&g_json, json ? 1 : 0); }

void ts_log(ts_log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (lvl > ts_log_get_level()) return;
    char msg[1800], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = ts_logline_render(line, sizeof line,
                                 atomic_load(&g_json) ? TS_LOGLINE_JSON : TS_LOGLINE_TEXT,
                                 names[lvl], module, msg, 0);
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
