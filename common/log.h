/*
 * log.h — leveled logging to stderr. The level comes from TS_LOG_LEVEL
 * (error, warn, info, debug; default info) and may be changed at run time,
 * as may the line format (text or JSON lines: logline.h, `log.format`).
 * Thread-safe: each line is written with one write(2).
 * Never log secrets: the S3 client logs access key ids, never secret keys.
 */
#ifndef TS_COMMON_LOG_H
#define TS_COMMON_LOG_H

#include "err.h"
#include "logline.h"

typedef enum ts_log_level {
    TS_LOG_ERROR = 0,
    TS_LOG_WARN = 1,
    TS_LOG_INFO = 2,
    TS_LOG_DEBUG = 3
} ts_log_level;

void ts_log_set_level(ts_log_level lvl);
/* Lines as JSON objects (1) or text (0, the default); see logline.h. */
void ts_log_set_format(int json);
ts_log_level ts_log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int ts_log_level_parse(const char *s);
void ts_log(ts_log_level lvl, const char *module, const char *fmt, ...) TS_PRINTF(3, 4);

#define ts_log_error(mod, ...) ts_log(TS_LOG_ERROR, mod, __VA_ARGS__)
#define ts_log_warn(mod, ...) ts_log(TS_LOG_WARN, mod, __VA_ARGS__)
#define ts_log_info(mod, ...) ts_log(TS_LOG_INFO, mod, __VA_ARGS__)
#define ts_log_debug(mod, ...)                                                                   \
    do {                                                                                         \
        if (ts_log_get_level() >= TS_LOG_DEBUG) ts_log(TS_LOG_DEBUG, mod, __VA_ARGS__);          \
    } while (0)

#endif
