/*
 * config.c — the engine property table and Kafka-style properties files.
 *
 * The table below is the single source of truth for every engine setting:
 * parsing and validation (ts_config_set), --help (ts_config_describe_help)
 * and CONFIGURATION.md (ts_config_describe_markdown; a test keeps the
 * committed file equal to its output). Names follow Kafka's broker config
 * where Kafka has one.
 */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_table.h"
#include "err.h"
#include "fsutil.h"
#include "properties.h"

typedef enum { CT_INT, CT_BOOL, CT_STRING, CT_ENUM } ct_type;

typedef struct prop {
    const char *name;
    ct_type type;
    size_t off;        /* of the typed field in ts_settings */
    const char *field; /* its name, for the table check */
    const char *def;
    int64_t min, max;    /* CT_INT bounds */
    const char *allowed; /* CT_ENUM: "a|b|c" */
    int dynamic;         /* may change while running (via topic overrides) */
    const char *doc;
} prop;

/* F(kind, field): the entry's type, the offset of its ts_settings field and
 * the field's name. The _Generic has no default, so a field whose C type is
 * not the one of its kind (int64_t, int, const char *) does not compile, and
 * neither does a field that does not exist. */
#define FIELD_INT(f) _Generic(((ts_settings *)0)->f, int64_t: offsetof(ts_settings, f))
#define FIELD_BOOL(f) _Generic(((ts_settings *)0)->f, int: offsetof(ts_settings, f))
#define FIELD_STRING(f) _Generic(((ts_settings *)0)->f, const char *: offsetof(ts_settings, f))
#define FIELD_ENUM(f) FIELD_STRING(f)
#define F(kind, f) CT_##kind, FIELD_##kind(f), #f

#define I64MAX "9223372036854775807"
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static const prop g_props[] = {
    {"log.dirs", F(STRING, log_dirs), "/tmp/tierstore-data", 0, 0, NULL, 0,
     "Directory holding one sub-directory per partition (`<topic>-<partition>`)."},
    {"log.segment.bytes", F(INT, log_segment_bytes), "1073741824", 1 * KiB, INT32_MAX, NULL, 1,
     "Roll the active segment when the next batch would make it larger than this."},
    {"log.segment.ms", F(INT, log_segment_ms), "604800000", 1, INT64_MAX, NULL, 1,
     "Roll the active segment when its first batch is older than this (ms)."},
    {"log.index.interval.bytes", F(INT, log_index_interval_bytes), "4096", 0, INT32_MAX, NULL, 1,
     "Bytes between entries of the sparse offset and time indexes."},
    {"log.flush.interval.messages", F(INT, log_flush_interval_messages),
     I64MAX, 1, INT64_MAX, NULL, 1,
     "fsync the active segment after this many appended records: queued to the sync worker, "
     "the append does not wait for it (acks=-1 produce waits for an explicit flush)."},
    {"log.flush.interval.ms", F(INT, log_flush_interval_ms), "1000", 1, INT64_MAX, NULL, 1,
     "fsync the active segment when unflushed data is older than this (ms); checked by the "
     "background task, run by the sync worker."},
    {"log.retention.bytes", F(INT, log_retention_bytes), "-1", -1, INT64_MAX, NULL, 1,
     "Total retention per partition (local + remote) in bytes; -1 = unlimited."},
    {"log.retention.ms", F(INT, log_retention_ms), "604800000", -1, INT64_MAX, NULL, 1,
     "Total retention per partition by batch max timestamp (ms); -1 = unlimited."},
    {"log.local.retention.bytes", F(INT, log_local_retention_bytes),
     "2147483648", -2, INT64_MAX, NULL, 1,
     "Bytes of closed segments kept on local disk once uploaded (remote storage enabled); "
     "-2 = log.retention.bytes (Kafka's default), -1 = unlimited. The default, two default "
     "segments, bounds local disk per partition at about this plus the active segment. "
     "Uploads that lag beyond this make appends fail with a retriable error."},
    {"retention.local.target.capacity.bytes", F(INT, retention_local_target_capacity_bytes),
     "-1", -1, INT64_MAX, NULL, 0,
     "Broker-wide local disk budget: the sum of every partition's local segment bytes. "
     "When full, uploaded segments leave local disk oldest first across partitions; a "
     "segment not yet durable remotely never does, so while uploads lag appends to tiered "
     "partitions fail with a retriable error. -1 = no budget (per-partition bounds only). "
     "After Redpanda's retention_local_target_capacity_bytes."},
    {"log.local.retention.ms", F(INT, log_local_retention_ms), "-2", -2, INT64_MAX, NULL, 1,
     "Age after which uploaded segments leave local disk (ms); -2 = log.retention.ms."},
    {"message.max.bytes", F(INT, message_max_bytes), "1048588", 64, INT32_MAX, NULL, 1,
     "Largest record batch accepted by append, and the most a compressed batch may inflate "
     "to when append validates its records."},
    {"remote.storage.enable", F(BOOL, remote_storage_enable), "true", 0, 0, NULL, 0,
     "Upload closed segments to the object store and serve cold reads from it."},
    {"remote.storage.url", F(STRING, remote_storage_url), "", 0, 0, NULL, 0,
     "Object store: `file:///abs/dir` (local directory, the embedded default) or "
     "`s3://bucket[/prefix]`. Required when remote.storage.enable=true. "
     "`faulty+<url>?<faults>` wraps a store with fault injection (tests only)."},
    {"remote.storage.chunk.bytes", F(INT, remote_storage_chunk_bytes),
     "4194304", 64 * KiB, 256 * MiB, NULL, 0,
     "Raw segment bytes per independently compressed chunk of a remote object."},
    {"remote.storage.compression.level", F(INT, remote_storage_compression_level),
     "3", 1, 19, NULL, 0,
     "zstd compression level of remote chunks."},
    {"remote.storage.encryption.enable", F(BOOL, remote_storage_encryption_enable), "false", 0,
     0, NULL, 0,
     "Encrypt segment objects at rest (AES-256-GCM, envelope style): each new object gets its "
     "own random data key, wrapped by the key ring's active key and recorded in the manifest; "
     "every chunk is sealed on its own. Objects already in the bucket stay as they are; "
     "encrypted ones need the key ring to be read whatever this says."},
    {"remote.storage.encryption.keyring", F(STRING, remote_storage_encryption_keyring), "", 0, 0,
     NULL, 0,
     "Key ring file: `id=base64(32 bytes)` lines (ids of [A-Za-z0-9._-], at most 32 "
     "characters). Must be owned by the process's user with mode 0600 or stricter, else the "
     "engine refuses to start. Required when encryption is enabled; keep every key that "
     "objects still name (`tierctl rekey` moves them to the active key)."},
    {"remote.storage.encryption.active.key", F(STRING, remote_storage_encryption_active_key), "",
     0, 0, NULL, 0,
     "Id of the key-encryption key that new objects (and `tierctl rekey`) use; must be in the "
     "key ring. Changing it leaves old objects readable with their own key."},
    {"remote.log.manager.thread.pool.size", F(INT, remote_log_manager_thread_pool_size),
     "2", 1, 64, NULL, 0,
     "Upload worker threads."},
    {"remote.log.reader.threads", F(INT, remote_log_reader_threads), "8", 1, 64, NULL, 0,
     "Cold-read worker threads: prefetch, and the parallel chunk fetches of a read that spans "
     "several chunks. They mostly wait for GETs, so more than the cores pays on S3 (a chunk's "
     "GET is tens of ms there, its decompression a few); each holds at most one chunk's "
     "stored and raw bytes (~2 x 4 MiB)."},
    {"remote.log.manager.task.interval.ms", F(INT, remote_log_manager_task_interval_ms),
     "1000", 10, INT64_MAX, NULL, 0,
     "Interval of the background task that rolls by time, flushes, retries uploads and "
     "applies retention (ms)."},
    {"remote.log.cache.dir", F(STRING, remote_log_cache_dir), "", 0, 0, NULL, 0,
     "Directory of the disk chunk cache; empty = `<log.dirs>/.chunk-cache`."},
    {"remote.log.cache.bytes", F(INT, remote_log_cache_bytes), "268435456", 0, INT64_MAX, NULL, 0,
     "Byte cap of the disk chunk cache (LRU eviction)."},
    {"remote.log.cache.memory.bytes", F(INT, remote_log_cache_memory_bytes),
     "33554432", 0, INT64_MAX, NULL, 0,
     "RAM of the disk chunk cache: an eighth for its files' batch indexes, the rest for "
     "recently fetched, verified chunks; 0 disables both."},
    {"remote.log.prefetch.chunks", F(INT, remote_log_prefetch_chunks), "1", 0, 64, NULL, 0,
     "Chunks a sequential cold reader prefetches ahead at first (the depth then adapts, up to "
     "remote.log.prefetch.max.chunks); 0 disables prefetch."},
    {"remote.log.prefetch.max.chunks", F(INT, remote_log_prefetch_max_chunks), "8", 0, 64, NULL,
     0,
     "Deepest prefetch of one sequential cold reader: its depth doubles while it keeps consuming "
     "prefetched chunks and halves when they leave the cache before it reads them. Random "
     "readers never prefetch."},
    {"remote.log.manifest.keep.versions", F(INT, remote_log_manifest_keep_versions),
     "3", 1, 1000, NULL, 0,
     "Remote manifest versions kept in the bucket per partition."},
    {"remote.log.manifest.head.segments", F(INT, remote_log_manifest_head_segments), "1000", 1,
     1000000, NULL, 0,
     "Newest entries a manifest head holds before they move into an immutable piece; bounds the "
     "bytes of one manifest commit."},
    {"remote.log.index.cache.bytes", F(INT, remote_log_index_cache_bytes), "67108864", 0,
     INT64_MAX, NULL, 0,
     "RAM for chunk tables of remote segments (read from the objects on first use, LRU)."},
    {"remote.log.upload.retry.backoff.max.ms", F(INT, remote_log_upload_retry_backoff_max_ms),
     "30000", 1, INT64_MAX, NULL, 0,
     "Ceiling of the backoff between failed upload attempts of one segment (ms)."},
    {"remote.storage.request.timeout.ms", F(INT, remote_storage_request_timeout_ms),
     "30000", 100, INT64_MAX, NULL, 0,
     "Timeout of one object-store request (ms)."},
    {"remote.storage.operation.timeout.ms", F(INT, remote_storage_operation_timeout_ms),
     "120000", 100, INT64_MAX, NULL, 0,
     "Deadline of one object-store operation including its retries (ms)."},
    {"aws.region", F(STRING, aws_region), "", 0, 0, NULL, 0,
     "S3 region; empty = AWS_REGION, AWS_DEFAULT_REGION, the profile's region, or us-east-1."},
    {"aws.endpoint.url", F(STRING, aws_endpoint_url), "", 0, 0, NULL, 0,
     "S3 endpoint for MinIO/Ceph (`http://127.0.0.1:9000`); empty = AWS_ENDPOINT_URL or AWS."},
    {"aws.access.key.id", F(STRING, aws_access_key_id), "", 0, 0, NULL, 0,
     "Access key id; empty = AWS_ACCESS_KEY_ID, a web identity (AWS_ROLE_ARN), the shared "
     "files, or the EC2 instance metadata service (objstore/README-s3.md)."},
    {"aws.secret.access.key", F(STRING, aws_secret_access_key), "", 0, 0, NULL, 0,
     "Secret access key; empty = from the same place as the key id. Never logged."},
    {"aws.session.token", F(STRING, aws_session_token), "", 0, 0, NULL, 0,
     "Session token for temporary credentials; empty = AWS_SESSION_TOKEN."},
    {"aws.profile", F(STRING, aws_profile), "", 0, 0, NULL, 0,
     "Profile of the shared credentials/config files; empty = AWS_PROFILE or `default`."},
    {"aws.ca.bundle", F(STRING, aws_ca_bundle), "", 0, 0, NULL, 0,
     "CA bundle for TLS peer verification; empty = AWS_CA_BUNDLE or the system default."},
    {"s3.path.style.access", F(ENUM, s3_path_style_access), "auto", 0, 0, "auto|true|false", 0,
     "Path-style addressing; auto = path style when an endpoint URL is set."},
    {"s3.tls.verify", F(BOOL, s3_tls_verify), "true", 0, 0, NULL, 0,
     "Verify the TLS peer certificate and host name."},
    {"s3.multipart.part.bytes", F(INT, s3_multipart_part_bytes),
     "8388608", 5 * MiB, 5 * GiB, NULL, 0,
     "Part size of multipart uploads; objects up to this size use one PUT."},
    {"s3.multipart.parallelism", F(INT, s3_multipart_parallelism), "4", 1, 64, NULL, 0,
     "Parts in flight per multipart upload (memory = part size x parallelism)."},
    {"s3.content.md5", F(BOOL, s3_content_md5), "false", 0, 0, NULL, 0,
     "Send Content-MD5 with every PUT and UploadPart too. Their bodies are always signed with "
     "their SHA-256, which the store checks; turn this on for buckets with S3 Object Lock, or a "
     "store that does not check x-amz-content-sha256. DeleteObjects always carries it."},
    {"log.level", F(ENUM, log_level), "info", 0, 0, "error|warn|info|debug", 0,
     "Log verbosity (also TS_LOG_LEVEL)."},
    {"log.format", F(ENUM, log_format), "text", 0, 0, "text|json", 0,
     "Log line format on stderr: text, or json (one JSON object per line: ts, level, logger, "
     "msg) for log shippers. tierbroker writes its own lines in the same format."},
    {"remote.log.upload.max.inflight", F(INT, remote_log_upload_max_inflight), "0", 0, 64, NULL,
     0,
     "Segments of one partition building their objects at once: compressed and put in "
     "parallel, their manifest entries still committed in offset order. Bounds the upload "
     "memory one partition takes; twice as many more may wait built for their commit (the next "
     "segments build while a group's manifest PUT is in flight); 0 = "
     "remote.log.manager.thread.pool.size."},
};
#define NPROPS (sizeof(g_props) / sizeof(g_props[0]))

typedef struct kv {
    char *key;
    char *value;
} kv;

struct ts_config {
    kv *items; /* insertion order */
    size_t n, cap;
    ts_settings s; /* typed view of items + defaults, updated by put_kv */
};

static const prop *find_prop(const char *key)
{
    for (size_t i = 0; i < NPROPS; i++)
        if (!strcmp(g_props[i].name, key)) return &g_props[i];
    return NULL;
}

static kv *find_kv(const ts_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->items[i].key, key)) return &cfg->items[i];
    return NULL;
}

static int parse_i64(const char *s, int64_t *out);
static int parse_bool(const char *s, int *out);

/* Stores value (validated, or the table default) in p's typed field. */
static void settings_store(ts_settings *s, const prop *p, const char *value)
{
    char *field = (char *)s + p->off;
    switch (p->type) {
    case CT_INT: {
        int64_t v = 0;
        if (parse_i64(value, &v)) parse_i64(p->def, &v);
        memcpy(field, &v, sizeof(v));
        break;
    }
    case CT_BOOL: {
        int b = 0;
        if (parse_bool(value, &b)) parse_bool(p->def, &b);
        memcpy(field, &b, sizeof(b));
        break;
    }
    case CT_STRING:
    case CT_ENUM:
        memcpy(field, &value, sizeof(value));
        break;
    }
}

static void settings_defaults(ts_settings *s)
{
    for (size_t i = 0; i < NPROPS; i++) settings_store(s, &g_props[i], g_props[i].def);
}

static ts_settings g_default_settings;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
static void default_settings_init(void) { settings_defaults(&g_default_settings); }

const ts_settings *ts_config_settings(const ts_config *cfg)
{
    if (cfg) return &cfg->s;
    pthread_once(&g_default_once, default_settings_init);
    return &g_default_settings;
}

static size_t field_size(const prop *p)
{
    return p->type == CT_INT ? sizeof(int64_t) : p->type == CT_BOOL ? sizeof(int) : sizeof(char *);
}

int ts_config_table_check(char *errstr, size_t errlen)
{
    for (size_t i = 0; i < NPROPS; i++) {
        const prop *p = &g_props[i];
        char want[128];
        snprintf(want, sizeof(want), "%s", p->name);
        for (char *c = want; *c; c++)
            if (*c == '.') *c = '_';
        if (strcmp(want, p->field)) {
            snprintf(errstr, errlen, "property %s has field %s, expected %s", p->name, p->field,
                     want);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (g_props[j].off == p->off) {
                snprintf(errstr, errlen, "properties %s and %s share a field", g_props[j].name,
                         p->name);
                return -1;
            }
    }
    /* Every field has an entry: walking the struct by offset, no gap is as
     * wide as a field (narrower gaps are the padding after an int). */
    size_t end = 0;
    for (;;) {
        const prop *next = NULL;
        for (size_t i = 0; i < NPROPS; i++)
            if (g_props[i].off >= end && (!next || g_props[i].off < next->off)) next = &g_props[i];
        size_t at = next ? next->off : sizeof(ts_settings);
        if (at - end >= sizeof(int64_t)) {
            snprintf(errstr, errlen, "ts_settings bytes %zu..%zu belong to no table entry", end,
                     at);
            return -1;
        }
        if (!next) return 0;
        end = next->off + field_size(next);
    }
}

ts_config *ts_config_create(void)
{
    ts_config *c = calloc(1, sizeof(ts_config));
    if (c) settings_defaults(&c->s);
    return c;
}

void ts_config_destroy(ts_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->items[i].key);
        free(cfg->items[i].value);
    }
    free(cfg->items);
    free(cfg);
}

static ts_status put_kv(ts_config *cfg, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v) return TS_E_NOMEM;
    const prop *p = find_prop(key);
    kv *e = find_kv(cfg, key);
    if (e) {
        free(e->value);
        e->value = v;
        if (p) settings_store(&cfg->s, p, v);
        return TS_OK;
    }
    if (cfg->n == cfg->cap) {
        size_t nc = cfg->cap ? cfg->cap * 2 : 16;
        kv *ni = realloc(cfg->items, nc * sizeof(kv));
        if (!ni) {
            free(v);
            return TS_E_NOMEM;
        }
        cfg->items = ni;
        cfg->cap = nc;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return TS_E_NOMEM;
    }
    cfg->items[cfg->n].key = k;
    cfg->items[cfg->n].value = v;
    cfg->n++;
    if (p) settings_store(&cfg->s, p, v);
    return TS_OK;
}

ts_config *ts_config_dup(const ts_config *cfg)
{
    ts_config *c = ts_config_create();
    if (!c) return NULL;
    for (size_t i = 0; cfg && i < cfg->n; i++) {
        if (put_kv(c, cfg->items[i].key, cfg->items[i].value)) {
            ts_config_destroy(c);
            return NULL;
        }
    }
    return c;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true")) *out = 1;
    else if (!strcmp(s, "false")) *out = 0;
    else return -1;
    return 0;
}

static ts_status validate(const prop *p, const char *value, char *errstr, size_t errlen)
{
    switch (p->type) {
    case CT_INT: {
        int64_t v;
        if (parse_i64(value, &v) || v < p->min || v > p->max)
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "invalid value '%s' for %s: expected an integer from %lld to %lld",
                              value, p->name, (long long)p->min, (long long)p->max);
        return TS_OK;
    }
    case CT_BOOL: {
        int b;
        if (parse_bool(value, &b))
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "invalid value '%s' for %s: expected true or false", value, p->name);
        return TS_OK;
    }
    case CT_ENUM: {
        size_t vl = strlen(value);
        const char *a = p->allowed;
        while (*a) {
            const char *bar = strchr(a, '|');
            size_t l = bar ? (size_t)(bar - a) : strlen(a);
            if (l == vl && !strncmp(a, value, l)) return TS_OK;
            a += l + (bar ? 1 : 0);
        }
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "invalid value '%s' for %s: expected one of %s", value, p->name,
                          p->allowed);
    }
    case CT_STRING:
        if (!strcmp(p->name, "remote.storage.url") && *value && strncmp(value, "file:///", 8) &&
            strncmp(value, "s3://", 5) && strncmp(value, "faulty+", 7))
            return ts_err_set(errstr, errlen, TS_E_CONFIG,
                              "invalid value '%s' for remote.storage.url: expected "
                              "file:///absolute/dir or s3://bucket[/prefix]",
                              value);
        return TS_OK;
    }
    return TS_OK;
}

ts_status ts_config_set(ts_config *cfg, const char *key, const char *value, char *errstr,
                        size_t errlen)
{
    const prop *p = find_prop(key);
    if (!p) return ts_err_set(errstr, errlen, TS_E_CONFIG, "unknown configuration key '%s'", key);
    ts_status st = validate(p, value, errstr, errlen);
    if (st) return st;
    if (put_kv(cfg, key, value)) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    return TS_OK;
}

/* One entry of a file being loaded (ts_props_parse callback). */
typedef struct load_ctx {
    ts_config *cfg;
    const char *path;
    int ignore_unknown;
    char *errstr;
    size_t errlen;
    ts_status st;
} load_ctx;

static int load_entry(void *opaque, int lineno, char *k, char *v)
{
    load_ctx *c = opaque;
    if (find_prop(k)) {
        c->st = ts_config_set(c->cfg, k, v, c->errstr, c->errlen);
        if (c->st) {
            ts_err_prefix(c->errstr, c->errlen, c->st, "%s:%d", c->path, lineno);
            return 1;
        }
    } else if (c->ignore_unknown) {
        if (put_kv(c->cfg, k, v)) {
            c->st = ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory");
            return 1;
        }
    } else {
        c->st = ts_err_set(c->errstr, c->errlen, TS_E_CONFIG,
                           "%s:%d: unknown configuration key '%s' (see CONFIGURATION.md)",
                           c->path, lineno, k);
        return 1;
    }
    return 0;
}

/* The line syntax is common/properties.c's (shared with tierbroker). */
ts_status ts_config_load_file(ts_config *cfg, const char *path, int ignore_unknown, char *errstr,
                              size_t errlen)
{
    uint8_t *data;
    size_t len;
    ts_status st = ts_fs_read_all(path, 16 * 1024 * 1024, &data, &len, errstr, errlen);
    if (st) return ts_err_prefix(errstr, errlen, st, "cannot load config");
    load_ctx c = {cfg, path, ignore_unknown, errstr, errlen, TS_OK};
    int lineno = 0;
    const char *bad = NULL;
    int rc = ts_props_parse((char *)data, load_entry, &c, &lineno, &bad);
    if (rc == TS_PROPS_SYNTAX)
        st = ts_err_set(errstr, errlen, TS_E_CONFIG, "%s:%d: expected key=value, got '%.80s'",
                        path, lineno, bad);
    else
        st = rc ? c.st : TS_OK;
    free(data);
    return st;
}

const char *ts_config_get(const ts_config *cfg, const char *key)
{
    const kv *e = cfg ? find_kv(cfg, key) : NULL;
    if (e) return e->value;
    const prop *p = find_prop(key);
    return p ? p->def : NULL;
}

static const prop *must_prop(const char *key)
{
    const prop *p = find_prop(key);
    if (!p) {
        fprintf(stderr, "tierstore: internal error: config key '%s' not in the table\n", key);
        abort();
    }
    return p;
}

/* The by-name getters read the typed fields too, so both views agree:
 * copies key's field into out when the key is of that type (else out keeps
 * the caller's zero). */
static void get_typed(const ts_config *cfg, const char *key, ct_type type, void *out, size_t n)
{
    const prop *p = must_prop(key);
    if (p->type == type) memcpy(out, (const char *)ts_config_settings(cfg) + p->off, n);
}

int64_t ts_config_get_int(const ts_config *cfg, const char *key)
{
    int64_t v = 0;
    get_typed(cfg, key, CT_INT, &v, sizeof(v));
    return v;
}

int ts_config_get_bool(const ts_config *cfg, const char *key)
{
    int b = 0;
    get_typed(cfg, key, CT_BOOL, &b, sizeof(b));
    return b;
}

const char *ts_config_get_str(const ts_config *cfg, const char *key)
{
    must_prop(key);
    return ts_config_get(cfg, key);
}

int ts_config_is_set(const ts_config *cfg, const char *key) { return cfg && find_kv(cfg, key) != NULL; }

void ts_config_foreach_set(const ts_config *cfg, ts_config_iter_fn fn, void *opaque)
{
    for (size_t i = 0; cfg && i < cfg->n; i++) fn(cfg->items[i].key, cfg->items[i].value, opaque);
}

static const char *type_name(const prop *p)
{
    switch (p->type) {
    case CT_INT: return "int";
    case CT_BOOL: return "bool";
    case CT_ENUM: return "enum";
    default: return "string";
    }
}

static void key_info(const prop *p, ts_config_key_info *out)
{
    out->name = p->name;
    out->def = p->def;
    out->doc = p->doc;
    out->type = type_name(p);
    out->dynamic = p->dynamic;
}

int ts_config_key_at(size_t i, ts_config_key_info *out)
{
    if (i >= NPROPS) return 0;
    key_info(&g_props[i], out);
    return 1;
}

int ts_config_key_find(const char *key, ts_config_key_info *out)
{
    const prop *p = find_prop(key);
    if (p) key_info(p, out);
    return p != NULL;
}

ts_status ts_config_put_raw(ts_config *cfg, const char *key, const char *value)
{
    return put_kv(cfg, key, value);
}

static size_t emit(ts_buf *b, char *out, size_t len)
{
    size_t need = b->len + 1;
    if (out && len) {
        size_t n = b->len < len - 1 ? b->len : len - 1;
        if (n) memcpy(out, b->data, n);
        out[n] = '\0';
    }
    ts_buf_free(b);
    return need;
}

size_t ts_config_describe_markdown(char *out, size_t len)
{
    ts_buf b;
    ts_buf_init(&b, 0);
    ts_buf_printf(&b, "# tierstore configuration\n\n"
                      "Generated from the property table in `common/config.c` "
                      "(`tierctl config-doc`); a test keeps this file in sync.\n"
                      "Files use Kafka's properties format: `key=value`, `#` comments.\n"
                      "dynamic: `topic, broker` = a topic may override it (its Kafka topic-level "
                      "name) and it may change while running (tierbroker: AlterConfigs on the "
                      "broker); `no` = set it in the file and restart.\n\n"
                      "| key | type | default | range | dynamic | description |\n"
                      "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NPROPS; i++) {
        const prop *p = &g_props[i];
        char range[96] = "";
        if (p->type == CT_INT) snprintf(range, sizeof(range), "%lld .. %lld", (long long)p->min, (long long)p->max);
        else if (p->type == CT_ENUM) snprintf(range, sizeof(range), "%s", p->allowed);
        else if (p->type == CT_BOOL) snprintf(range, sizeof(range), "true, false");
        char allowed[96];
        snprintf(allowed, sizeof(allowed), "%s", range);
        for (char *c = allowed; *c; c++)
            if (*c == '|') *c = ',';
        ts_buf_printf(&b, "| `%s` | %s | `%s` | %s | %s | %s |\n", p->name, type_name(p),
                      *p->def ? p->def : "", allowed, p->dynamic ? "topic, broker" : "no", p->doc);
    }
    return emit(&b, out, len);
}

size_t ts_config_describe_help(char *out, size_t len)
{
    ts_buf b;
    ts_buf_init(&b, 0);
    for (size_t i = 0; i < NPROPS; i++) {
        const prop *p = &g_props[i];
        ts_buf_printf(&b, "  %-40s %s, default '%s'\n      %s\n", p->name, type_name(p), p->def,
                      p->doc);
    }
    return emit(&b, out, len);
}
