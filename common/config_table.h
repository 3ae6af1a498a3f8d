/*
 * config_table.h — internal access to the engine property table.
 *
 * One table (common/config.c) names every property with its type, default,
 * bounds, description and whether it can change at run time. It drives
 * parsing, validation, --help text and CONFIGURATION.md.
 */
#ifndef TS_COMMON_CONFIG_TABLE_H
#define TS_COMMON_CONFIG_TABLE_H

#include <stdint.h>
#include "tierstore.h"

/* Typed getters for keys of the table. They abort on a key that is not in
 * the table (a programming error, not an input error). */
int64_t ts_config_get_int(const ts_config *cfg, const char *key);
int ts_config_get_bool(const ts_config *cfg, const char *key);
const char *ts_config_get_str(const ts_config *cfg, const char *key);
/* Non-zero when the key was set explicitly (file or ts_config_set). */
int ts_config_is_set(const ts_config *cfg, const char *key);

/* Writes "  key  (type, default X)  description" lines for --help. */
size_t ts_config_describe_help(char *buf, size_t len);

/* Iterates every key=value that was set (table keys and unknown keys kept
 * by ts_config_load_file), in insertion order. */
typedef void (*ts_config_iter_fn)(const char *key, const char *value, void *opaque);
void ts_config_foreach_set(const ts_config *cfg, ts_config_iter_fn fn, void *opaque);

#endif
