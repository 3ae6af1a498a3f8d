/*
 * properties.h — the syntax of Kafka-style .properties files, and nothing
 * else: no keys, no types, no engine.
 *
 * Its own tiny library (ts_props, libc only) because two programs read the
 * same files: the engine's config (common/config.c: ts_config_load_file)
 * and tierbroker (broker/config.c), which may link no engine library. The
 * broker's build floor exposes this one header of common/ (top
 * CMakeLists.txt, ts_module_floor HEADERS).
 *
 * Syntax, one entry per line ('\n'; a trailing '\r' is whitespace):
 *   - leading and trailing whitespace (isspace) is ignored;
 *   - empty lines and lines starting with '#' or '!' are comments;
 *   - otherwise the first '=' or ':' splits key from value, both trimmed;
 *     a line with neither is a syntax error.
 * There are no escapes and no continuation lines (neither reader ever had
 * them). The text ends at its first NUL.
 *
 * Thread: any (pure; works in the caller's buffer).
 */
#ifndef TS_COMMON_PROPERTIES_H
#define TS_COMMON_PROPERTIES_H

/* Returned by ts_props_parse for a line that is no key=value. */
#define TS_PROPS_SYNTAX (-1)

/* One key=value line: key and value are trimmed and NUL-terminated inside
 * the parsed text; lineno counts from 1. Returns 0 to go on, or a positive
 * value that stops the parse and is returned by it. */
typedef int (*ts_props_fn)(void *opaque, int lineno, char *key, char *value);

/* Parses text in place (it is modified), calling fn for each entry in file
 * order. Returns 0 when every line was read, fn's positive value when fn
 * stopped it, or TS_PROPS_SYNTAX with *bad_lineno and *bad_line (the trimmed
 * line, inside text) set. */
int ts_props_parse(char *text, ts_props_fn fn, void *opaque, int *bad_lineno,
                   const char **bad_line);

#endif
