/*
 * logline.h — the shape of one log line, text or JSON, and nothing else.
 *
 * Its own tiny library (ts_logline, libc only) because two programs write
 * the same lines: the engine (common/log.c, inside the plugin) and
 * tierbroker (broker/net.c: blog), which may link no engine library. Both
 * honour `log.format` (text | json) with this one formatter, so an operator
 * who ships logs as JSON lines gets every line of the process as JSON.
 *
 *   text: 2026-12-02T01:02:03.456Z INFO  [upload] message
 *   json: {"ts":"2026-12-02T01:02:03.456Z","level":"INFO","logger":"upload","msg":"message"}
 *         plus "suppressed":N when a rate limiter dropped similar lines.
 * JSON strings are escaped per RFC 8259 (quote, backslash, control
 * characters as \uXXXX); bytes >= 0x80 pass through (messages are UTF-8 or
 * ASCII). A line longer than the buffer is cut, never left unterminated.
 *
 * Thread: any (pure, apart from reading the clock).
 */
#ifndef TS_COMMON_LOGLINE_H
#define TS_COMMON_LOGLINE_H

#include <stddef.h>

typedef enum ts_logline_format { TS_LOGLINE_TEXT = 0, TS_LOGLINE_JSON = 1 } ts_logline_format;

/* Parses "text" | "json"; -1 otherwise (NULL too). */
int ts_logline_format_parse(const char *s);

/* Writes one whole line, '\n' included, into buf (cap >= 64) and returns
 * its length. level is "INFO"/"WARN"/...; suppressed 0 when none. */
size_t ts_logline_render(char *buf, size_t cap, ts_logline_format fmt, const char *level,
                         const char *logger, const char *msg, unsigned long suppressed);

#endif
