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
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_table.h"
#include "err.h"
#include "fsutil.h"

typedef enum { CT_INT, CT_BOOL, CT_STRING, CT_ENUM } ct_type;

typedef struct prop {
    const char *name;
    ct_type type;
    const char *def;
    int64_t min, max;    /* CT_INT bounds */
    const char *allowed; /* CT_ENUM: "a|b|c" */
    int dynamic;         /* may change while running (via topic overrides) */
    const char *doc;
} prop;

#define I64MAX "9223372036854775807"
#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static const prop g_props[] = {
    {"log.dirs", CT_STRING, "/tmp/tierstore-data", 0, 0, NULL, 0,
     "Directory holding one sub-directory per partition (`<topic>-<partition>`)."},
    {"log.segment.bytes", CT_INT, "1073741824", 1 * KiB, INT32_MAX, NULL, 1,
     "Roll the active segment when the next batch would make it larger than this."},
    {"log.segment.ms", CT_INT, "604800000", 1, INT64_MAX, NULL, 1,
     "Roll the active segment when its first batch is older than this (ms)."},
    {"log.index.interval.bytes", CT_INT, "4096", 0, INT32_MAX, NULL, 1,
     "Bytes between entries of the sparse offset and time indexes."},
    {"log.flush.interval.messages", CT_INT, I64MAX, 1, INT64_MAX, NULL, 1,
     "fsync the active segment after this many appended records."},
    {"log.flush.interval.ms", CT_INT, "1000", 1, INT64_MAX, NULL, 1,
     "fsync the active segment when unflushed data is older than this (ms); background task."},
    {"log.retention.bytes", CT_INT, "-1", -1, INT64_MAX, NULL, 1,
     "Total retention per partition (local + remote) in bytes; -1 = unlimited."},
    {"log.retention.ms", CT_INT, "604800000", -1, INT64_MAX, NULL, 1,
     "Total retention per partition by batch max timestamp (ms); -1 = unlimited."},
    {"log.local.retention.bytes", CT_INT, "-2", -2, INT64_MAX, NULL, 1,
     "Bytes of closed segments kept on local disk once uploaded; -2 = log.retention.bytes. "
     "Uploads that lag beyond this make appends fail with a retriable error."},
    {"log.local.retention.ms", CT_INT, "-2", -2, INT64_MAX, NULL, 1,
     "Age after which uploaded segments leave local disk (ms); -2 = log.retention.ms."},
    {"message.max.bytes", CT_INT, "1048588", 64, INT32_MAX, NULL, 1,
     "Largest record batch accepted by append."},
    {"remote.storage.enable", CT_BOOL, "true", 0, 0, NULL, 0,
     "Upload closed segments to the object store and serve cold reads from it."},
    {"remote.storage.url", CT_STRING, "", 0, 0, NULL, 0,
     "Object store: `file:///abs/dir` (local directory, the embedded default) or "
     "`s3://bucket[/prefix]`. Required when remote.storage.enable=true. "
     "`faulty+<url>?<faults>` wraps a store with fault injection (tests only)."},
    {"remote.storage.chunk.bytes", CT_INT, "4194304", 64 * KiB, 256 * MiB, NULL, 0,
     "Raw segment bytes per independently compressed chunk of a remote object."},
    {"remote.storage.compression.level", CT_INT, "3", 1, 19, NULL, 0,
     "zstd compression level of remote chunks."},
    {"remote.log.manager.thread.pool.size", CT_INT, "2", 1, 64, NULL, 0,
     "Upload worker threads."},
    {"remote.log.reader.threads", CT_INT, "2", 1, 64, NULL, 0,
     "Cold-read prefetch worker threads."},
    {"remote.log.manager.task.interval.ms", CT_INT, "1000", 10, INT64_MAX, NULL, 0,
     "Interval of the background task that rolls by time, flushes, retries uploads and "
     "applies retention (ms)."},
    {"remote.log.cache.dir", CT_STRING, "", 0, 0, NULL, 0,
     "Directory of the disk chunk cache; empty = `<log.dirs>/.chunk-cache`."},
    {"remote.log.cache.bytes", CT_INT, "268435456", 0, INT64_MAX, NULL, 0,
     "Byte cap of the disk chunk cache (LRU eviction)."},
    {"remote.log.cache.memory.bytes", CT_INT, "33554432", 0, INT64_MAX, NULL, 0,
     "RAM for recently served, verified chunks (on top of the disk cache); 0 disables."},
    {"remote.log.prefetch.chunks", CT_INT, "1", 0, 64, NULL, 0,
     "Chunks a sequential cold reader prefetches ahead; 0 disables prefetch."},
    {"remote.log.manifest.keep.versions", CT_INT, "3", 1, 1000, NULL, 0,
     "Remote manifest versions kept in the bucket per partition."},
    {"remote.log.manifest.head.segments", CT_INT, "1000", 1, 1000000, NULL, 0,
     "Newest entries a manifest head holds before they move into an immutable piece; bounds the "
     "bytes of one manifest commit."},
    {"remote.log.index.cache.bytes", CT_INT, "67108864", 0, INT64_MAX, NULL, 0,
     "RAM for chunk tables of remote segments (read from the objects on first use, LRU)."},
    {"remote.log.upload.retry.backoff.max.ms", CT_INT, "30000", 1, INT64_MAX, NULL, 0,
     "Ceiling of the backoff between failed upload attempts of one segment (ms)."},
    {"remote.storage.request.timeout.ms", CT_INT, "30000", 100, INT64_MAX, NULL, 0,
     "Timeout of one object-store request (ms)."},
    {"remote.storage.operation.timeout.ms", CT_INT, "120000", 100, INT64_MAX, NULL, 0,
     "Deadline of one object-store operation including its retries (ms)."},
    {"aws.region", CT_STRING, "", 0, 0, NULL, 0,
     "S3 region; empty = AWS_REGION, AWS_DEFAULT_REGION, the profile's region, or us-east-1."},
    {"aws.endpoint.url", CT_STRING, "", 0, 0, NULL, 0,
     "S3 endpoint for MinIO/Ceph (`http://127.0.0.1:9000`); empty = AWS_ENDPOINT_URL or AWS."},
    {"aws.access.key.id", CT_STRING, "", 0, 0, NULL, 0,
     "Access key id; empty = AWS_ACCESS_KEY_ID or the shared credentials file."},
    {"aws.secret.access.key", CT_STRING, "", 0, 0, NULL, 0,
     "Secret access key; empty = AWS_SECRET_ACCESS_KEY or the shared credentials file. "
     "Never logged."},
    {"aws.session.token", CT_STRING, "", 0, 0, NULL, 0,
     "Session token for temporary credentials; empty = AWS_SESSION_TOKEN."},
    {"aws.profile", CT_STRING, "", 0, 0, NULL, 0,
     "Profile of the shared credentials/config files; empty = AWS_PROFILE or `default`."},
    {"aws.ca.bundle", CT_STRING, "", 0, 0, NULL, 0,
     "CA bundle for TLS peer verification; empty = AWS_CA_BUNDLE or the system default."},
    {"s3.path.style.access", CT_ENUM, "auto", 0, 0, "auto|true|false", 0,
     "Path-style addressing; auto = path style when an endpoint URL is set."},
    {"s3.tls.verify", CT_BOOL, "true", 0, 0, NULL, 0,
     "Verify the TLS peer certificate and host name."},
    {"s3.multipart.part.bytes", CT_INT, "8388608", 5 * MiB, 5 * GiB, NULL, 0,
     "Part size of multipart uploads; objects up to this size use one PUT."},
    {"s3.multipart.parallelism", CT_INT, "4", 1, 64, NULL, 0,
     "Parts in flight per multipart upload (memory = part size x parallelism)."},
    {"log.level", CT_ENUM, "info", 0, 0, "error|warn|info|debug", 1,
     "Log verbosity (also TS_LOG_LEVEL)."},
};
#define NPROPS (sizeof(g_props) / sizeof(g_props[0]))

typedef struct kv {
    char *key;
    char *value;
} kv;

struct ts_config {
    kv *items; /* insertion order */
    size_t n, cap;
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

ts_config *ts_config_create(void) { return calloc(1, sizeof(ts_config)); }

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
    kv *e = find_kv(cfg, key);
    if (e) {
        free(e->value);
        e->value = v;
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

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

ts_status ts_config_load_file(ts_config *cfg, const char *path, int ignore_unknown, char *errstr,
                              size_t errlen)
{
    uint8_t *data;
    size_t len;
    ts_status st = ts_fs_read_all(path, 16 * 1024 * 1024, &data, &len, errstr, errlen);
    if (st) return ts_err_prefix(errstr, errlen, st, "cannot load config");
    char *save = NULL;
    int lineno = 0;
    char *text = (char *)data;
    /* strtok_r drops empty lines, so count them by hand. */
    char *line = text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *l = trim(line);
        if (*l && *l != '#' && *l != '!') {
            char *sep = strpbrk(l, "=:");
            if (!sep) {
                st = ts_err_set(errstr, errlen, TS_E_CONFIG,
                                "%s:%d: expected key=value, got '%.80s'", path, lineno, l);
                goto out;
            }
            *sep = '\0';
            char *k = trim(l), *v = trim(sep + 1);
            if (find_prop(k)) {
                st = ts_config_set(cfg, k, v, errstr, errlen);
                if (st) {
                    ts_err_prefix(errstr, errlen, st, "%s:%d", path, lineno);
                    goto out;
                }
            } else if (ignore_unknown) {
                if (put_kv(cfg, k, v)) {
                    st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
                    goto out;
                }
            } else {
                st = ts_err_set(errstr, errlen, TS_E_CONFIG,
                                "%s:%d: unknown configuration key '%s' (see CONFIGURATION.md)",
                                path, lineno, k);
                goto out;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    (void)save;
    st = TS_OK;
out:
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

int64_t ts_config_get_int(const ts_config *cfg, const char *key)
{
    const prop *p = must_prop(key);
    int64_t v = 0;
    if (parse_i64(ts_config_get(cfg, key), &v)) parse_i64(p->def, &v);
    return v;
}

int ts_config_get_bool(const ts_config *cfg, const char *key)
{
    const prop *p = must_prop(key);
    int b = 0;
    if (parse_bool(ts_config_get(cfg, key), &b)) parse_bool(p->def, &b);
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
                      "Files use Kafka's properties format: `key=value`, `#` comments.\n\n"
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
                      *p->def ? p->def : "", allowed, p->dynamic ? "topic" : "no", p->doc);
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
