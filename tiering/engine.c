/*
 * engine.c — the engine: configuration, object store, worker pools, the
 * partition registry, topic-level overrides and the background task.
 *
 * The background thread wakes every remote.log.manager.task.interval.ms and
 * runs each partition's tick (time-based roll and flush, upload retries,
 * remote manifest re-sync, retention), earlier when an upload retry falls
 * due (ts_eng_wake_at). Uploads run on the upload pool, fsyncs and
 * unlinks on the sync worker. The broker-wide local budget
 * (retention.local.target.capacity.bytes, after Redpanda's
 * retention_local_target_capacity_bytes) is kept here: one number for
 * thousands of partitions, trimmed oldest first across them.
 * A lock file (flock on <log.dirs>/.lock) keeps two engines off one data
 * directory; offline readers (tierctl) do not take it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/config_table.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/strlist.h"
#include "common/log.h"
#include "internal.h"
#include "uploader/sched.h"

/* Only Kafka's topic-level keys (topic_keys.c) are a topic's to set: a
 * broker-wide key (log.dirs, log.*) is not, whatever CreateTopics carries. */
/* An engine key a topic override may hold (what engine_key_for maps to). */
static int is_topic_engine_key(const char *ek) { return ts_topic_key_for_engine(ek) != NULL; }

/* A Kafka key kept verbatim with the overrides (min.insync.replicas, ...). */
static int is_topic_stored_key(const char *k)
{
    const ts_topic_key *t = ts_topic_key_find(k);
    return t && !t->engine_key;
}

static ssize_t topic_idx(ts_engine *eng, const char *topic)
{
    for (size_t i = 0; i < eng->ntopics; i++)
        if (!strcmp(eng->topic_names[i], topic)) return (ssize_t)i;
    return -1;
}

typedef struct merge_ctx {
    ts_config *dst;
} merge_ctx;

/* Stored overrides written before topic keys were checked may hold other
 * keys (log.dirs=...): they are not applied, and dropped at the next write. */
static void merge_kv(const char *k, const char *v, void *opaque)
{
    merge_ctx *m = opaque;
    if (is_topic_engine_key(k)) ts_config_set(m->dst, k, v, NULL, 0);
}

ts_config *ts_eng_topic_config(ts_engine *eng, const char *topic)
{
    pthread_mutex_lock(&eng->mu);
    ts_config *c = ts_config_dup(eng->cfg);
    ssize_t i = topic_idx(eng, topic);
    if (c && i >= 0) {
        merge_ctx m = {c};
        ts_config_foreach_set(eng->topic_cfgs[i], merge_kv, &m);
    }
    pthread_mutex_unlock(&eng->mu);
    return c;
}

static void write_kv(const char *k, const char *v, void *opaque)
{
    ts_buf_printf(opaque, "%s=%s\n", k, v);
}

/* Where a topic's overrides live locally: <log.dirs>/.topics/<topic>/topic.properties.
 * A directory per topic, because every valid name (up to 249 chars) fits a
 * directory entry, while "<topic>.properties" plus the temp suffix of an
 * atomic write does not past ~222 chars. Older data dirs have
 * .topics/<topic>.properties: still read, and removed once rewritten. */
#define TOPIC_CONFIG_FILE "topic.properties"

static void topic_config_path(const ts_engine *eng, const char *topic, char *out, size_t len)
{
    snprintf(out, len, "%s/.topics/%s/" TOPIC_CONFIG_FILE, eng->data_dir, topic);
}

static void topic_config_legacy_path(const ts_engine *eng, const char *topic, char *out, size_t len)
{
    snprintf(out, len, "%s/.topics/%s.properties", eng->data_dir, topic);
}

/* The ms of a new topic-config object: now, but strictly above the last one
 * this engine wrote, so that "newest wins" on recovery holds for two changes
 * in one millisecond (a set then a delete: the delete must win). */
static int64_t next_config_ms(ts_engine *eng)
{
    int64_t now = ts_now_ms(), last = __atomic_load_n(&eng->config_last_ms, __ATOMIC_RELAXED);
    int64_t ms;
    do {
        ms = now > last ? now : last + 1;
    } while (!__atomic_compare_exchange_n(&eng->config_last_ms, &last, ms, 0, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return ms;
}

/* Persists a topic's overrides: locally (topic_config_path) and in the
 * bucket as a new immutable object <topic>/config/<ms:20>-<rand>.properties
 * (newest wins on recovery). */
static ts_status persist_topic_config(ts_engine *eng, const char *topic, const ts_config *tc,
                                      char *errstr, size_t errlen)
{
    ts_buf b;
    ts_buf_init(&b, 1 << 20);
    ts_buf_printf(&b, "# topic-level overrides of %s (written by tierstore)\n", topic);
    ts_config_foreach_set(tc, write_kv, &b);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.topics/%s", eng->data_dir, topic);
    ts_status st = ts_fs_mkdirs(path, errstr, errlen);
    topic_config_path(eng, topic, path, sizeof(path));
    if (!st) st = ts_fs_write_atomic(path, b.data, b.len, errstr, errlen);
    if (!st) {
        topic_config_legacy_path(eng, topic, path, sizeof(path));
        unlink(path); /* superseded; absent in most data dirs */
    }
    if (!st && eng->os) {
        char key[600], rnd[9];
        ts_rand_hex(rnd, 4);
        ts_index_topic_config_key(topic, next_config_ms(eng), rnd, key, sizeof(key));
        st = ts_objstore_put(eng->os, key, b.data, b.len, TS_PUT_IF_NONE_MATCH, errstr, errlen);
    }
    ts_buf_free(&b);
    return st;
}

static ts_status load_topic_file(ts_engine *eng, const char *topic, const char *path)
{
    ts_config *tc = ts_config_create();
    char err[512];
    if (!tc) return TS_E_NOMEM;
    /* Keys outside the engine's table are kept raw: the stored Kafka keys. */
    if (ts_config_load_file(tc, path, 1, err, sizeof(err))) {
        ts_log_warn("tiering", "ignoring topic config %s: %s", path, err);
        ts_config_destroy(tc);
        return TS_OK;
    }
    char **nn = realloc(eng->topic_names, (eng->ntopics + 1) * sizeof(char *));
    if (nn) eng->topic_names = nn;
    ts_config **nc = realloc(eng->topic_cfgs, (eng->ntopics + 1) * sizeof(ts_config *));
    if (nc) eng->topic_cfgs = nc;
    if (!nn || !nc) {
        ts_config_destroy(tc);
        return TS_E_NOMEM;
    }
    eng->topic_names[eng->ntopics] = strdup(topic);
    eng->topic_cfgs[eng->ntopics] = tc;
    eng->ntopics++;
    return TS_OK;
}

/* Both layouts: .topics/<topic>/topic.properties first, then older
 * .topics/<topic>.properties files for topics not found the new way. */
static void load_topic_configs(ts_engine *eng)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/.topics", eng->data_dir);
    for (int legacy = 0; legacy < 2; legacy++) {
        DIR *d = opendir(dir);
        if (!d) return;
        struct dirent *de;
        while ((de = readdir(d))) {
            char topic[256], path[PATH_MAX];
            struct stat st;
            size_t n = strlen(de->d_name);
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            if (stat(path, &st) != 0) continue;
            if (!legacy) {
                if (!S_ISDIR(st.st_mode) || !ts_topic_name_valid(de->d_name)) continue;
                snprintf(topic, sizeof(topic), "%s", de->d_name);
                topic_config_path(eng, topic, path, sizeof(path));
                if (access(path, F_OK) != 0) continue;
            } else {
                if (!S_ISREG(st.st_mode) || n <= 11 || strcmp(de->d_name + n - 11, ".properties"))
                    continue;
                snprintf(topic, sizeof(topic), "%.*s", (int)(n - 11), de->d_name);
                if (!ts_topic_name_valid(topic) || topic_idx(eng, topic) >= 0) continue;
            }
            load_topic_file(eng, topic, path);
        }
        closedir(d);
    }
}

/* A topic with no local config but one in the bucket (recovery into an
 * empty data directory) gets it back. Engine lock NOT held (object store). */
static void recover_topic_config(ts_engine *eng, const char *topic)
{
    if (!eng->os) return;
    pthread_mutex_lock(&eng->mu);
    int known = topic_idx(eng, topic) >= 0;
    pthread_mutex_unlock(&eng->mu);
    if (known) return;
    char prefix[300], err[512], key[600];
    ts_index_topic_config_prefix(topic, prefix, sizeof(prefix));
    if (ts_eng_list_newest(eng->os, prefix, ".properties", key, sizeof(key), err, sizeof(err)) ||
        !key[0])
        return;
    uint8_t *data;
    size_t len;
    if (ts_objstore_get(eng->os, key, 0, TS_OBJSTORE_TO_END, &data, &len, err, sizeof(err)))
        return;
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/.topics/%s", eng->data_dir, topic);
    topic_config_path(eng, topic, path, sizeof(path));
    if (!ts_fs_mkdirs(dir, err, sizeof(err)) && !ts_fs_write_atomic(path, data, len, err, sizeof(err))) {
        pthread_mutex_lock(&eng->mu);
        if (topic_idx(eng, topic) < 0) load_topic_file(eng, topic, path);
        pthread_mutex_unlock(&eng->mu);
        ts_log_info("tiering", "topic %s: recovered its configuration from %s", topic, key);
    }
    free(data);
}

/* Copies a topic's stored overrides into a new set, without the keys an
 * alter names (they are set again or deleted) and without keys of no
 * topic (written before keys were checked). */
static void copy_kv(const char *k, const char *v, void *opaque)
{
    ts_copy_ctx *c = opaque;
    for (size_t i = 0; i < c->nskip; i++)
        if (c->skip[i] && !strcmp(c->skip[i], k)) return;
    if (is_topic_engine_key(k))
        ts_config_set(c->dst, k, v, NULL, 0);
    else if (is_topic_stored_key(k))
        ts_config_put_raw(c->dst, k, v);
}

void ts_eng_copy_overrides(const ts_config *src, ts_config *dst, const char *const *skip,
                           size_t nskip)
{
    ts_copy_ctx c = {dst, skip, nskip};
    ts_config_foreach_set(src, copy_kv, &c);
}

/* Sets one Kafka topic key into tc under the name it is stored with. */
static ts_status topic_key_set(ts_config *tc, const char *topic, const char *key,
                               const char *value, char *errstr, size_t errlen)
{
    const ts_topic_key *t = ts_topic_key_find(key);
    if (!t) {
        char known[1024];
        ts_topic_key_names(known, sizeof(known));
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "topic %s: '%s' is not a supported topic-level config (supported: %s)",
                          topic, key, known);
    }
    if (!value) return TS_OK; /* a delete: not copied from the old set */
    ts_status st = t->engine_key ? ts_config_set(tc, t->engine_key, value, errstr, errlen)
                                 : ts_topic_key_check(t, value, errstr, errlen);
    if (!st && !t->engine_key && ts_config_put_raw(tc, key, value))
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (st) ts_err_prefix(errstr, errlen, st, "topic %s", topic);
    return st;
}

/* The topic's new override set: the old one (unless replacing) without
 * the keys named, then the keys named with a value. */
static ts_status topic_config_build(ts_engine *eng, const char *topic, const char *const *keys,
                                    const char *const *values, size_t n, unsigned flags,
                                    ts_config **out, char *errstr, size_t errlen)
{
    ts_config *tc = ts_config_create();
    const char **skip = calloc(n ? n : 1, sizeof(*skip));
    if (!tc || !skip) {
        ts_config_destroy(tc);
        free(skip);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const ts_topic_key *t = ts_topic_key_find(keys[i]);
        skip[i] = t ? (t->engine_key ? t->engine_key : t->name) : NULL;
    }
    pthread_mutex_lock(&eng->mu);
    ssize_t ti = topic_idx(eng, topic);
    if (ti >= 0 && !(flags & TS_TOPIC_CONFIG_REPLACE)) {
        ts_eng_copy_overrides(eng->topic_cfgs[ti], tc, skip, n);
    }
    pthread_mutex_unlock(&eng->mu);
    free(skip);
    ts_status st = TS_OK;
    for (size_t i = 0; i < n && !st; i++)
        st = topic_key_set(tc, topic, keys[i], values[i], errstr, errlen);
    if (st) {
        ts_config_destroy(tc);
        return st;
    }
    *out = tc;
    return TS_OK;
}

ts_status ts_topic_set_config(ts_engine *eng, const char *topic, const char *const *keys,
                              const char *const *values, size_t n, char *errstr, size_t errlen)
{
    return ts_topic_alter_config(eng, topic, keys, values, n, 0, errstr, errlen);
}

ts_status ts_topic_alter_config(ts_engine *eng, const char *topic, const char *const *keys,
                                const char *const *values, size_t n, unsigned flags,
                                char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    ts_config *tc = NULL;
    ts_status st = topic_config_build(eng, topic, keys, values, n, flags, &tc, errstr, errlen);
    if (st) return st;
    if (flags & TS_TOPIC_CONFIG_VALIDATE_ONLY) {
        ts_config_destroy(tc);
        return TS_OK;
    }
    st = persist_topic_config(eng, topic, tc, errstr, errlen);
    if (st) {
        ts_config_destroy(tc);
        return st;
    }
    pthread_mutex_lock(&eng->mu);
    ssize_t ti = topic_idx(eng, topic);
    if (ti >= 0) {
        ts_config_destroy(eng->topic_cfgs[ti]);
        eng->topic_cfgs[ti] = tc;
    } else {
        char **nn = realloc(eng->topic_names, (eng->ntopics + 1) * sizeof(char *));
        if (nn) eng->topic_names = nn;
        ts_config **nc = realloc(eng->topic_cfgs, (eng->ntopics + 1) * sizeof(ts_config *));
        if (nc) eng->topic_cfgs = nc;
        if (!nn || !nc) {
            pthread_mutex_unlock(&eng->mu);
            ts_config_destroy(tc);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        eng->topic_names[eng->ntopics] = strdup(topic);
        eng->topic_cfgs[eng->ntopics++] = tc;
    }
    ts_eng_apply_settings(eng, topic);
    pthread_mutex_unlock(&eng->mu);
    return TS_OK;
}

void ts_eng_apply_settings(ts_engine *eng, const char *topic)
{
    for (size_t i = 0; i < eng->nparts; i++) {
        ts_partition *p = eng->parts[i];
        if (topic && strcmp(p->topic, topic)) continue;
        ts_config *eff = ts_config_dup(eng->cfg);
        if (!eff) continue; /* out of memory: keeps its settings */
        ssize_t ti = topic_idx(eng, p->topic);
        merge_ctx m = {eff};
        if (ti >= 0) ts_config_foreach_set(eng->topic_cfgs[ti], merge_kv, &m);
        pthread_mutex_lock(&p->mu);
        ts_part_settings_resolve(eff, &p->set);
        if (!eng->os) p->set.remote_enable = 0;
        pthread_mutex_unlock(&p->mu);
        ts_config_destroy(eff);
    }
}

ts_config *ts_eng_topic_overrides(ts_engine *eng, const char *topic)
{
    pthread_mutex_lock(&eng->mu);
    ssize_t ti = topic ? topic_idx(eng, topic) : -1;
    ts_config *c = ti >= 0 ? ts_config_dup(eng->topic_cfgs[ti]) : NULL;
    pthread_mutex_unlock(&eng->mu);
    return c;
}

/* ---- broker-wide local budget ---------------------------------------------- */

/* Snapshot of the open partitions (they are freed only at engine close).
 * NULL when the engine lock is busy: a partition being recovered from the
 * bucket holds it for a while, and no trim is worth waiting for that. */
static ts_partition **parts_snapshot(ts_engine *eng, size_t *n)
{
    if (pthread_mutex_trylock(&eng->mu) != 0) return NULL;
    *n = eng->nparts;
    ts_partition **ps = malloc((*n + 1) * sizeof(*ps));
    if (ps && *n) memcpy(ps, eng->parts, *n * sizeof(*ps));
    pthread_mutex_unlock(&eng->mu);
    return ps;
}

static int budget_fits(ts_engine *eng, uint64_t incoming)
{
    return (uint64_t)atomic_load(&eng->local_bytes) + incoming <= (uint64_t)eng->local_capacity;
}

int ts_eng_trim_local(ts_engine *eng, uint64_t incoming)
{
    if (eng->local_capacity < 0 || budget_fits(eng, incoming)) return 1;
    /* A trim already running makes the room; the caller retries. */
    if (pthread_mutex_trylock(&eng->trim_mu) != 0) return 0;
    size_t n = 0;
    ts_partition **ps = parts_snapshot(eng, &n);
    /* Oldest first across partitions: each step drops the candidate (the
     * oldest local segment of a partition, durable remotely) with the
     * smallest max timestamp. O(partitions) per segment dropped. */
    for (size_t guard = 0; ps && !budget_fits(eng, incoming) && guard < 100000; guard++) {
        ts_partition *best = NULL;
        int64_t best_ts = 0, t;
        for (size_t i = 0; i < n; i++)
            if (ts_part_trim_oldest(ps[i], 0, &t) && (!best || t < best_ts)) {
                best = ps[i];
                best_ts = t;
            }
        if (!best) break;
        ts_part_trim_oldest(best, 1, &t);
    }
    int fits = budget_fits(eng, incoming);
    if (ps && !fits) {
        /* Nothing left to trim and no upload on its way: the bytes sit in
         * active segments, which only a roll lets leave. Roll the largest
         * (its upload starts at once) rather than refuse appends forever. */
        int pending = 0;
        ts_partition *big = NULL;
        uint64_t big_bytes = 0;
        for (size_t i = 0; i < n && !pending; i++) {
            pending = ts_part_upload_pending(ps[i]);
            uint64_t b = ts_part_active_bytes(ps[i]);
            if (b > big_bytes) {
                big = ps[i];
                big_bytes = b;
            }
        }
        if (!pending && big) ts_part_roll_for_budget(big);
    }
    free(ps);
    pthread_mutex_unlock(&eng->trim_mu);
    return fits;
}

/* ---- background task ----------------------------------------------------- */

void ts_eng_wake_at(ts_engine *eng, int64_t mono_ms)
{
    if (mono_ms <= 0) mono_ms = 1;
    pthread_mutex_lock(&eng->bg_mu);
    if (eng->bg_wake_ms == 0 || mono_ms < eng->bg_wake_ms) {
        eng->bg_wake_ms = mono_ms;
        pthread_cond_broadcast(&eng->bg_cv);
    }
    pthread_mutex_unlock(&eng->bg_mu);
}

static void *bg_main(void *arg)
{
    ts_engine *eng = arg;
    pthread_setname_np(pthread_self(), "ts-bg");
    pthread_mutex_lock(&eng->bg_mu);
    int64_t next_tick = ts_mono_ms() + eng->task_interval_ms;
    while (!eng->stopping) {
        int64_t now = ts_mono_ms(), due = next_tick;
        if (eng->bg_wake_ms > 0 && eng->bg_wake_ms < due) due = eng->bg_wake_ms;
        if (now < due) {
            int64_t wait = due - now > 3600000 ? 3600000 : due - now;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (wait % 1000) * 1000000;
            ts.tv_sec += wait / 1000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&eng->bg_cv, &eng->bg_mu, &ts);
            continue; /* woken early (a retry fell due, or stopping): look again */
        }
        if (now >= next_tick) next_tick = now + eng->task_interval_ms;
        eng->bg_wake_ms = 0;
        pthread_mutex_unlock(&eng->bg_mu);
        /* A partition being recovered from the bucket holds the engine lock
         * for a while: skip this tick rather than stall every partition. */
        if (pthread_mutex_trylock(&eng->mu) != 0) {
            pthread_mutex_lock(&eng->bg_mu);
            continue;
        }
        size_t n = eng->nparts;
        ts_partition **ps = malloc((n + 1) * sizeof(*ps));
        if (ps && n) memcpy(ps, eng->parts, n * sizeof(*ps));
        pthread_mutex_unlock(&eng->mu);
        for (size_t i = 0; ps && i < n; i++) ts_part_tick(ps[i]);
        free(ps);
        ts_eng_trim_local(eng, 0);
        ts_eng_desc_retry(eng);
        pthread_mutex_lock(&eng->bg_mu);
    }
    pthread_mutex_unlock(&eng->bg_mu);
    return NULL;
}

/* ---- open / close -------------------------------------------------------- */

/* The data directory: log.dirs made absolute, created, and locked
 * (flock on <dir>/.lock) so that one engine at a time uses it. */
static ts_status open_data_dir(ts_engine *eng, char *errstr, size_t errlen)
{
    const char *dir = eng->set->log_dirs;
    if (!dir[0] || dir[0] != '/') {
        char cwd[PATH_MAX];
        if (!dir[0] || !getcwd(cwd, sizeof(cwd)))
            return ts_err_set(errstr, errlen, TS_E_CONFIG, "log.dirs must name a directory");
        snprintf(eng->data_dir, sizeof(eng->data_dir), "%s/%s", cwd, dir);
    } else {
        snprintf(eng->data_dir, sizeof(eng->data_dir), "%s", dir);
    }
    if (strchr(eng->data_dir, ','))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "log.dirs=%s: only one directory is supported", eng->data_dir);
    ts_status st = ts_fs_mkdirs(eng->data_dir, errstr, errlen);
    if (st) return st;
    char lockp[PATH_MAX];
    snprintf(lockp, sizeof(lockp), "%s/.lock", eng->data_dir);
    eng->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (eng->lock_fd < 0 || flock(eng->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return ts_err_set(errstr, errlen, TS_E_IO,
                          "data directory %s is in use by another tierstore process (lock %s)",
                          eng->data_dir, lockp);
    return TS_OK;
}

ts_status ts_engine_keyring_open(const ts_settings *set, ts_keyring **out, char *errstr,
                                 size_t errlen)
{
    *out = NULL;
    const char *path = set->remote_storage_encryption_keyring;
    const char *active = set->remote_storage_encryption_active_key;
    if (!path[0]) {
        if (!set->remote_storage_encryption_enable) return TS_OK;
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "remote.storage.encryption.enable=true needs "
                          "remote.storage.encryption.keyring (a file of id=base64(32 bytes) "
                          "lines, mode 0600)");
    }
    ts_status st = ts_keyring_load(path, out, errstr, errlen);
    if (st || !set->remote_storage_encryption_enable) return st;
    if (!active[0] || !ts_keyring_find(*out, active)) {
        st = ts_err_set(errstr, errlen, TS_E_CONFIG,
                        active[0] ? "remote.storage.encryption.active.key '%s' is not in the key "
                                    "ring %s"
                                  : "remote.storage.encryption.active.key is not set%s (key ring "
                                    "%s): name the key new objects use",
                        active, path);
        ts_keyring_destroy(*out);
        *out = NULL;
    }
    return st;
}

/* The remote tier (remote.storage.enable): object store, chunk cache,
 * cold-read workers and upload workers. */
static ts_status open_remote_tier(ts_engine *eng, char *errstr, size_t errlen)
{
    const ts_settings *set = eng->set;
    const char *url = set->remote_storage_url;
    if (!url[0])
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "remote.storage.url is not set: set it to file:///path/to/bucket-dir "
                          "or s3://bucket/prefix, or set remote.storage.enable=false");
    ts_status st = ts_objstore_open(url, eng->cfg, &eng->os, errstr, errlen);
    if (st) return st;
    const char *cd = set->remote_log_cache_dir;
    if (cd[0]) snprintf(eng->cache_dir, sizeof(eng->cache_dir), "%s", cd);
    else snprintf(eng->cache_dir, sizeof(eng->cache_dir), "%s/.chunk-cache", eng->data_dir);
    st = ts_chunk_cache_create(eng->cache_dir, (uint64_t)set->remote_log_cache_bytes,
                               &eng->cache, errstr, errlen);
    if (st) return st;
    /* A cold read retries a damaged or truncated download (and what the
     * store's own retries gave up on) a few times, within the operation
     * deadline; a persistent mismatch is an error. */
    ts_chunk_cache_set_memory(eng->cache, (uint64_t)set->remote_log_cache_memory_bytes);
    ts_chunk_cache_set_retry(eng->cache, set->remote_storage_operation_timeout_ms, 50, 2000, 4);
    if ((st = ts_engine_keyring_open(set, &eng->keyring, errstr, errlen))) return st;
    ts_chunk_cache_set_keyring(eng->cache, eng->keyring);
    if (ts_chunk_table_cache_create((uint64_t)set->remote_log_index_cache_bytes, &eng->ctcache))
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (chunk-table cache)");
    st = ts_reader_create(eng->os, eng->cache, (int)set->remote_log_reader_threads,
                          (int)set->remote_log_prefetch_chunks, &eng->reader, errstr, errlen);
    if (st) return st;
    st = ts_reader_set_prefetch_max(eng->reader, (int)set->remote_log_prefetch_max_chunks, errstr,
                                    errlen);
    if (st) return st;
    st = ts_upload_sched_create((int)set->remote_log_manager_thread_pool_size, &eng->uploads,
                                errstr, errlen);
    if (st) return st;
    eng->upload_pool = ts_upload_sched_pool(eng->uploads);
    return TS_OK;
}

ts_status ts_engine_open(const ts_config *cfg, ts_engine **out, char *errstr, size_t errlen)
{
    ts_engine *eng = calloc(1, sizeof(*eng));
    if (!eng) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    eng->lock_fd = -1;
    pthread_mutex_init(&eng->mu, NULL);
    pthread_mutex_init(&eng->bg_mu, NULL);
    pthread_mutex_init(&eng->trim_mu, NULL);
    pthread_mutex_init(&eng->desc_mu, NULL);
    pthread_cond_init(&eng->bg_cv, NULL);
    ts_status st;
    eng->cfg = ts_config_dup(cfg);
    if (!eng->cfg) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        goto fail;
    }
    const ts_settings *set = eng->set = ts_config_settings(eng->cfg);
    int lvl = ts_log_level_parse(set->log_level);
    if (ts_config_is_set(eng->cfg, "log.level") && lvl >= 0) ts_log_set_level((ts_log_level)lvl);
    if (ts_config_is_set(eng->cfg, "log.format"))
        ts_log_set_format(ts_logline_format_parse(set->log_format) == TS_LOGLINE_JSON);
    st = open_data_dir(eng, errstr, errlen);
    if (st) goto fail;
    eng->task_interval_ms = set->remote_log_manager_task_interval_ms;
    eng->local_capacity = set->retention_local_target_capacity_bytes;
    /* fsyncs (flush.messages, flush.ms, rolls) and unlinks run here for
     * every partition, tiered or not: never on the appending thread. */
    st = ts_pool_create("ts-sync", 1, 0, &eng->sync_pool);
    if (st) {
        ts_err_set(errstr, errlen, st, "cannot start the sync worker");
        goto fail;
    }
    if (set->remote_storage_enable) {
        st = open_remote_tier(eng, errstr, errlen);
        if (st) goto fail;
    }
    load_topic_configs(eng);
    if (pthread_create(&eng->bg, NULL, bg_main, eng) != 0) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "cannot start the background thread");
        goto fail;
    }
    ts_log_info("tiering", "engine open: data in %s, remote tier %s", set->log_dirs,
                set->remote_storage_enable ? set->remote_storage_url : "off");
    *out = eng;
    return TS_OK;
fail:
    eng->bg = 0;
    ts_engine_close(eng);
    return st;
}

void ts_engine_close(ts_engine *eng)
{
    if (!eng) return;
    if (eng->bg) {
        pthread_mutex_lock(&eng->bg_mu);
        eng->stopping = 1;
        pthread_cond_broadcast(&eng->bg_cv);
        pthread_mutex_unlock(&eng->bg_mu);
        pthread_join(eng->bg, NULL);
    }
    /* In-flight uploads finish (or fail cleanly); nothing new is queued
     * because the background thread is gone and partitions are closing. */
    ts_upload_sched_destroy(eng->uploads);
    eng->uploads = NULL;
    eng->upload_pool = NULL;
    if (eng->sync_pool) ts_pool_destroy(eng->sync_pool); /* runs queued syncs and unlinks */
    eng->sync_pool = NULL;
    ts_reader_destroy(eng->reader);
    for (size_t i = 0; i < eng->nparts; i++) ts_part_close(eng->parts[i]);
    free(eng->parts);
    ts_chunk_cache_destroy(eng->cache);
    ts_keyring_destroy(eng->keyring);
    ts_chunk_table_cache_destroy(eng->ctcache);
    ts_objstore_destroy(eng->os);
    for (size_t i = 0; i < eng->ntopics; i++) {
        free(eng->topic_names[i]);
        ts_config_destroy(eng->topic_cfgs[i]);
    }
    free(eng->topic_names);
    free(eng->topic_cfgs);
    ts_config_destroy(eng->cfg);
    ts_config_destroy(eng->cfg_opened);
    ts_config_destroy(eng->cfg_dynamic);
    if (eng->lock_fd >= 0) close(eng->lock_fd);
    pthread_mutex_destroy(&eng->mu);
    pthread_mutex_destroy(&eng->bg_mu);
    pthread_mutex_destroy(&eng->trim_mu);
    ts_eng_desc_free(eng);
    pthread_mutex_destroy(&eng->desc_mu);
    pthread_cond_destroy(&eng->bg_cv);
    free(eng);
}

ts_status ts_partition_open(ts_engine *eng, const char *topic, int32_t partition, int create,
                            ts_partition **out, char *errstr, size_t errlen)
{
    if (!eng || !out) return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid argument");
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "invalid topic name '%s': use 1-249 characters of [A-Za-z0-9._-]",
                          topic ? topic : "");
    if (partition < 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid partition %d", partition);
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->nparts; i++) {
        ts_partition *p = eng->parts[i];
        if (p->id == partition && !strcmp(p->topic, topic) && !p->deleted) {
            *out = p;
            pthread_mutex_unlock(&eng->mu);
            return TS_OK;
        }
    }
    pthread_mutex_unlock(&eng->mu);
    recover_topic_config(eng, topic);
    /* Opened under the engine lock so two opens of one partition cannot
     * race. Recovery from the bucket may take a while and blocks other
     * opens meanwhile, never appends or reads of open partitions. */
    ts_partition *p;
    ts_config *tc = ts_eng_topic_config(eng, topic);
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->nparts; i++) {
        p = eng->parts[i];
        if (p->id == partition && !strcmp(p->topic, topic) && !p->deleted) {
            pthread_mutex_unlock(&eng->mu);
            ts_config_destroy(tc);
            *out = p;
            return TS_OK;
        }
    }
    ts_status st = ts_part_open(eng, topic, partition, create, tc, &p, errstr, errlen);
    ts_config_destroy(tc);
    if (st) {
        pthread_mutex_unlock(&eng->mu);
        return st;
    }
    if (eng->nparts == eng->capparts) {
        size_t nc = eng->capparts ? eng->capparts * 2 : 16;
        ts_partition **np = realloc(eng->parts, nc * sizeof(*np));
        if (!np) {
            pthread_mutex_unlock(&eng->mu);
            ts_part_close(p);
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        }
        eng->parts = np;
        eng->capparts = nc;
    }
    eng->parts[eng->nparts++] = p;
    pthread_mutex_unlock(&eng->mu);
    ts_eng_desc_note(eng, topic, partition); /* the bucket knows the partition count */
    *out = p;
    return TS_OK;
}

/* ts_objstore_list callback: collects every key; stops when out of memory. */
static int collect_cb(const char *key, uint64_t size, void *opaque)
{
    (void)size;
    return ts_strlist_add(opaque, key) ? 1 : 0;
}

ts_status ts_partition_delete(ts_engine *eng, const char *topic, int32_t partition, char *errstr,
                              size_t errlen)
{
    ts_partition *p = NULL;
    ts_status st = ts_partition_open(eng, topic, partition, 0, &p, errstr, errlen);
    if (st) return st;
    pthread_mutex_lock(&p->mu);
    p->deleted = 1;
    while (p->upload_inflight || p->removes_pending) pthread_cond_wait(&p->cv, &p->mu);
    /* Segments stay in the list (files unlinked below, memory freed at
     * engine close) so a handle used after delete never sees an empty log;
     * every entry point checks p->deleted. Their files go with the tree
     * below: their last unref must not unlink by name, which would remove
     * the files of a partition of the same name created meanwhile. Their
     * descriptors are closed now, not at engine close: the host has stopped
     * every call on the handle (ABI), and a broker removing the partitions
     * of a create that ran out of descriptors needs them back for the next. */
    uint64_t local = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        ts_segment *s = p->segs[i];
        s->deleted = 1;
        atomic_store(&s->files_removed, 1);
        local += s->size;
        int *fds[3] = {&s->fd, &s->oidx_fd, &s->tidx_fd};
        for (int k = 0; k < 3; k++)
            if (*fds[k] >= 0) {
                close(*fds[k]);
                *fds[k] = -1;
            }
    }
    if (p->counted) atomic_fetch_sub(&eng->local_bytes, (long long)local);
    pthread_mutex_unlock(&p->mu);
    st = ts_fs_rmtree(p->dir, errstr, errlen);
    if (st) return st;
    if (eng->os) {
        ts_strlist c = {0};
        char prefix[300];
        ts_index_partition_prefix(topic, partition, prefix, sizeof(prefix));
        st = ts_objstore_list(eng->os, prefix, collect_cb, &c, errstr, errlen);
        if (!st && c.n)
            st = ts_objstore_delete_many(eng->os, (const char *const *)c.v, c.n, errstr, errlen);
        for (size_t i = 0; i < c.n; i++) ts_chunk_cache_forget_object(eng->cache, c.v[i]);
        ts_strlist_free(&c);
        if (!st) ts_eng_desc_forget(eng, topic, partition);
    }
    return st;
}

/* Under eng->mu, so that no open of the topic starts while its directories go
 * (an open takes eng->mu for its whole length). */
ts_status ts_topic_delete_local(ts_engine *eng, const char *topic, int32_t *ndeleted,
                                char *errstr, size_t errlen)
{
    if (ndeleted) *ndeleted = 0;
    if (!eng || !ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'",
                          topic ? topic : "");
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->nparts; i++)
        if (!eng->parts[i]->deleted && !strcmp(eng->parts[i]->topic, topic)) {
            int32_t id = eng->parts[i]->id;
            pthread_mutex_unlock(&eng->mu);
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "%s-%d is open: local data is deleted only before a partition of "
                              "the topic opens", topic, id);
        }
    int32_t *v = NULL;
    size_t n = 0;
    ts_status st = ts_eng_partitions_scan(eng->data_dir, NULL, topic, &v, &n, errstr, errlen);
    for (size_t i = 0; !st && i < n; i++) {
        char dir[sizeof(((ts_partition *)0)->dir)];
        snprintf(dir, sizeof(dir), "%s/%s-%d", eng->data_dir, topic, v[i]);
        st = ts_fs_rmtree(dir, errstr, errlen);
        if (!st && ndeleted) (*ndeleted)++;
    }
    pthread_mutex_unlock(&eng->mu);
    free(v);
    if (!st && n) st = ts_fs_fsync_dir(eng->data_dir, errstr, errlen);
    return st;
}

/* ---- listing and stats --------------------------------------------------- */

static int add_part(int32_t **v, size_t *n, size_t *cap, int32_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == id) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        int32_t *nv = realloc(*v, nc * sizeof(int32_t));
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = id;
    return 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct plist_ctx {
    const char *topic;
    int32_t **v;
    size_t *n, *cap;
    char desc[TS_INDEX_KEY_MAX]; /* the newest "<topic>/descriptor/...json", "" */
} plist_ctx;

static int plist_cb(const char *key, uint64_t size, void *opaque)
{
    plist_ctx *c = opaque;
    (void)size;
    const char *r = key + strlen(c->topic) + 1; /* listed under "<topic>/" */
    if (ts_index_key_is_topic_desc(r) && strcmp(key, c->desc) > 0)
        snprintf(c->desc, sizeof(c->desc), "%s", key);
    int32_t id = ts_index_key_manifest_partition(r);
    if (id >= 0) add_part(c->v, c->n, c->cap, id);
    return 0;
}

ts_status ts_eng_partitions_scan(const char *data_dir, ts_objstore *os, const char *topic,
                                 int32_t **parts, size_t *nparts, char *errstr, size_t errlen)
{
    int32_t *v = NULL;
    size_t n = 0, cap = 0;
    size_t tl = strlen(topic);
    DIR *d = opendir(data_dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strncmp(de->d_name, topic, tl) || de->d_name[tl] != '-') continue;
            const char *r = de->d_name + tl + 1;
            char *end;
            long id = strtol(r, &end, 10);
            if (end == r || *end || id < 0 || id > INT32_MAX) continue;
            add_part(&v, &n, &cap, (int32_t)id);
        }
        closedir(d);
    }
    if (os) {
        char prefix[300];
        ts_index_topic_prefix(topic, prefix, sizeof(prefix));
        plist_ctx c = {topic, &v, &n, &cap, ""};
        ts_status st = ts_objstore_list(os, prefix, plist_cb, &c, errstr, errlen);
        int32_t count = 0;
        if (!st && c.desc[0]) st = ts_eng_desc_read(os, topic, c.desc, &count, errstr, errlen);
        for (int32_t i = 0; !st && i < count; i++)
            if (add_part(&v, &n, &cap, i)) st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
        if (st) {
            free(v);
            return st;
        }
    }
    if (n) qsort(v, n, sizeof(*v), cmp_i32);
    *parts = v;
    *nparts = n;
    return TS_OK;
}

ts_status ts_topic_partitions(ts_engine *eng, const char *topic, int32_t **parts,
                                     size_t *nparts, char *errstr, size_t errlen)
{
    if (!ts_topic_name_valid(topic))
        return ts_err_set(errstr, errlen, TS_E_INVAL, "invalid topic name '%s'", topic ? topic : "");
    return ts_eng_partitions_scan(eng->data_dir, eng->os, topic, parts, nparts, errstr, errlen);
}

void ts_engine_stats_get(ts_engine *eng, ts_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&eng->mu);
    size_t n = eng->nparts;
    ts_partition **ps = malloc((n + 1) * sizeof(*ps));
    if (ps && n) memcpy(ps, eng->parts, n * sizeof(*ps));
    pthread_mutex_unlock(&eng->mu);
    for (size_t i = 0; ps && i < n; i++) {
        if (ps[i]->deleted) continue;
        out->local_bytes += ts_part_local_bytes(ps[i]);
        pthread_mutex_lock(&ps[i]->mu);
        out->unflushed_records += (uint64_t)ps[i]->unflushed_msgs;
        pthread_mutex_unlock(&ps[i]->mu);
        if (ps[i]->idx) {
            ts_index_summary sum;
            ts_index_summary_get(ps[i]->idx, &sum);
            out->remote_bytes += sum.stored_bytes;
            out->remote_raw_bytes += sum.raw_bytes;
            out->remote_objects += sum.count;
        }
    }
    free(ps);
    if (eng->cache) {
        ts_chunk_cache_stats cs;
        ts_chunk_cache_stats_get(eng->cache, &cs);
        out->cache_bytes = cs.bytes;
        out->cache_hits = cs.hits;
        out->cache_misses = cs.misses;
        out->remote_get_bytes = cs.fetched_bytes;
        out->cache_evictions = cs.evictions;
    }
    if (eng->os) {
        ts_objstore_counters oc;
        ts_objstore_counters_get(eng->os, &oc);
        memcpy(out->objstore_requests, oc.requests, sizeof(out->objstore_requests));
        out->objstore_bytes_put = oc.bytes_put;
        out->objstore_bytes_got = oc.bytes_got;
    }
    out->uploads_done = atomic_load(&eng->uploads_done);
    out->uploads_failed = atomic_load(&eng->uploads_failed);
}

const char *ts_location_name(ts_location loc)
{
    switch (loc) {
    case TS_LOC_LOCAL: return "local";
    case TS_LOC_REMOTE: return "remote";
    case TS_LOC_LOCAL_REMOTE: return "local+remote";
    case TS_LOC_MISSING: return "missing";
    }
    return "unknown";
}
