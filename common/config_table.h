/*
 * config_table.h — internal access to the engine property table.
 *
 * One table (common/config.c) names every property with its type, default,
 * bounds, description and whether it can change at run time. It drives
 * parsing, validation, --help text and CONFIGURATION.md, and fills the
 * typed ts_settings below: code reads s->log_segment_bytes, so a misspelt
 * setting fails to compile instead of aborting at run time (librdkafka's
 * _RK(field) offsets are the model).
 */
#ifndef TS_COMMON_CONFIG_TABLE_H
#define TS_COMMON_CONFIG_TABLE_H

#include <stdint.h>
#include "tierstore.h"

/* Every property of the table as a typed field, named as its key with '.'
 * replaced by '_'; kept in table order. Each table entry carries the offset
 * of its field, checked at compile time against the field's C type
 * (int64_t for int, int for bool, const char * for string and enum); a
 * unit test checks names and that every field has an entry. Strings point
 * into the ts_config (or at the table's default) and live as long as it. */
typedef struct ts_settings {
    const char *log_dirs;
    int64_t log_segment_bytes;
    int64_t log_segment_ms;
    int64_t log_index_interval_bytes;
    int64_t log_flush_interval_messages;
    int64_t log_flush_interval_ms;
    int64_t log_retention_bytes;
    int64_t log_retention_ms;
    int64_t log_local_retention_bytes;
    int64_t retention_local_target_capacity_bytes;
    int64_t log_local_retention_ms;
    int64_t message_max_bytes;
    int remote_storage_enable;  /* 0 or 1 */
    const char *remote_storage_url;
    int64_t remote_storage_chunk_bytes;
    int64_t remote_storage_compression_level;
    int remote_storage_encryption_enable;  /* 0 or 1 */
    const char *remote_storage_encryption_keyring;
    const char *remote_storage_encryption_active_key;
    int64_t remote_log_manager_thread_pool_size;
    int64_t remote_log_reader_threads;
    int64_t remote_log_manager_task_interval_ms;
    const char *remote_log_cache_dir;
    int64_t remote_log_cache_bytes;
    int64_t remote_log_cache_memory_bytes;
    int64_t remote_log_prefetch_chunks;
    int64_t remote_log_prefetch_max_chunks;
    int64_t remote_log_manifest_keep_versions;
    int64_t remote_log_manifest_head_segments;
    int64_t remote_log_index_cache_bytes;
    int64_t remote_log_upload_retry_backoff_max_ms;
    int64_t remote_storage_request_timeout_ms;
    int64_t remote_storage_operation_timeout_ms;
    const char *aws_region;
    const char *aws_endpoint_url;
    const char *aws_access_key_id;
    const char *aws_secret_access_key;
    const char *aws_session_token;
    const char *aws_profile;
    const char *aws_ca_bundle;
    const char *s3_path_style_access;  /* one of the enum values */
    int s3_tls_verify;  /* 0 or 1 */
    int64_t s3_multipart_part_bytes;
    int64_t s3_multipart_parallelism;
    int s3_content_md5; /* 0 or 1 */
    const char *log_level;  /* one of the enum values */
    const char *log_format; /* one of the enum values */
    int64_t remote_log_upload_max_inflight;
} ts_settings;

/* The typed settings of cfg: defaults for keys not set; cfg NULL = all
 * defaults. Valid while cfg lives and is not changed; O(1), no lookups. */
const ts_settings *ts_config_settings(const ts_config *cfg);

/* Checks the table against ts_settings (field names are the keys with
 * '_' for '.', offsets distinct, every field covered). 0 when it holds,
 * else -1 and a message naming the first mismatch. For the unit test. */
int ts_config_table_check(char *errstr, size_t errlen);

/* Typed getters for keys of the table (by name: for index/ until its
 * rewrite lands, and tools). They abort on a key that is not in
 * the table (a programming error, not an input error). */
int64_t ts_config_get_int(const ts_config *cfg, const char *key);
int ts_config_get_bool(const ts_config *cfg, const char *key);
const char *ts_config_get_str(const ts_config *cfg, const char *key);
/* Non-zero when the key was set explicitly (file or ts_config_set). */
int ts_config_is_set(const ts_config *cfg, const char *key);

/* One property of the table, for listings (DescribeConfigs through the
 * plugin): strings are the table's (static). dynamic: may change while
 * running (a topic override, or the engine's runtime alter). */
typedef struct ts_config_key_info {
    const char *name, *def, *doc, *type; /* type: "int", "bool", "string", "enum" */
    int dynamic;
} ts_config_key_info;
/* The i-th property of the table: 1, or 0 when i is past its end. */
int ts_config_key_at(size_t i, ts_config_key_info *out);
/* The property named key: 1, or 0 when the table has none. */
int ts_config_key_find(const char *key, ts_config_key_info *out);
/* Stores key=value as given, without the table (a key outside it: topic
 * configs the engine keeps for its host, such as min.insync.replicas). */
ts_status ts_config_put_raw(ts_config *cfg, const char *key, const char *value);

/* Writes "  key  (type, default X)  description" lines for --help. */
size_t ts_config_describe_help(char *buf, size_t len);

/* Iterates every key=value that was set (table keys and unknown keys kept
 * by ts_config_load_file), in insertion order. */
typedef void (*ts_config_iter_fn)(const char *key, const char *value, void *opaque);
void ts_config_foreach_set(const ts_config *cfg, ts_config_iter_fn fn, void *opaque);

#endif
