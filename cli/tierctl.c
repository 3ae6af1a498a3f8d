/*
 * tierctl — the admin CLI: "where does this offset live?" and friends.
 *
 * Uses only the public headers (include/): it reads the data directory and
 * the bucket read-only, so it works whether or not an engine (or the
 * broker) is running on the same config. The exceptions are `rekey`, which
 * writes manifests, and `recover`, which fills the data directory: they
 * open an engine on the config, so they take the data directory's lock and
 * refuse while the broker runs.
 *
 *   tierctl -c CONFIG placement TOPIC [PARTITION] [--json]
 *   tierctl -c CONFIG partitions TOPIC
 *   tierctl -c CONFIG locate TOPIC PARTITION OFFSET [--json]
 *   tierctl -c CONFIG verify TOPIC [PARTITION]
 *   tierctl -c CONFIG status [TOPIC] [--json]
 *   tierctl -c CONFIG manifest TOPIC PARTITION   (the manifest as JSON)
 *   tierctl -c CONFIG rekey TOPIC   (re-wrap data keys under the active key)
 *   tierctl -c CONFIG recover [TOPIC...]   (restore topics from the bucket; writes)
 *   tierctl -c CONFIG cluster [TOPIC] [--json]   (leaders and ISRs, from etcd)
 *   tierctl config-doc            (prints CONFIGURATION.md)
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_args.h"
#include "progress.h"
#include "tierctl_cluster.h"
#include "tierctl_users.h"
#include "tierstore.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tierctl -c CONFIG placement TOPIC [PARTITION] [--json]\n"
            "       tierctl -c CONFIG partitions TOPIC\n"
            "       tierctl -c CONFIG locate TOPIC PARTITION OFFSET [--json]\n"
            "       tierctl -c CONFIG verify TOPIC [PARTITION] [--quiet]\n"
            "       tierctl -c CONFIG status [TOPIC] [--json]\n"
            "       tierctl -c CONFIG manifest TOPIC PARTITION\n"
            "       tierctl -c CONFIG rekey TOPIC\n"
            "       tierctl -c CONFIG recover [TOPIC...] [--quiet]\n"
            "       tierctl -c CONFIG cluster [TOPIC] [--json]\n"
            "       tierctl -c CONFIG users add|delete NAME [--mechanism M] [--iterations N]\n"
            "       tierctl -c CONFIG users list\n"
            "       tierctl config-doc\n"
            "       tierctl --help | --version\n"
            "\n"
            "placement   one row per segment: offsets, timestamps, raw and stored bytes,\n"
            "            location (local, remote, local+remote, or missing: the manifest\n"
            "            names an object the bucket lacks) and object key.\n"
            "            --json prints an array of objects for scripts.\n"
            "partitions  the partitions of TOPIC found locally or in the bucket.\n"
            "locate      where one offset lives: its segment, location, object and the\n"
            "            chunk (byte range of its zstd frame) a cold read would fetch.\n"
            "status      per partition: log start/end, local and remote bytes, segments\n"
            "            still waiting for upload (the upload lag).\n"
            "verify      downloads every remote chunk and checks its CRC-32Cs and every\n"
            "            record batch inside; MISSING marks a segment whose object the\n"
            "            manifest names and the bucket lacks; exit status 1 if anything fails.\n"
            "            On a terminal, a progress line (segments, bytes, rate, ETA) on\n"
            "            stderr; none with --quiet or when stderr is not a terminal.\n"
            "manifest    the partition's manifest as one JSON document (pipe it to jq):\n"
            "            {\"head\": the newest head, \"pieces\": [every piece it names]}.\n"
            "rekey       re-wraps the data key of every encrypted remote segment of TOPIC\n"
            "            under remote.storage.encryption.active.key (one new manifest version\n"
            "            per partition, no object rewritten); afterwards older keys may leave\n"
            "            the key ring. Writes: stop the broker first (it takes the lock).\n"
            "recover     restores every topic of the bucket (or the TOPICs named) into the\n"
            "            data directory: each with its partition count (the bucket's topic\n"
            "            descriptors) and its configs, every partition opened from its\n"
            "            manifest so every tiered offset reads back. Present partitions are\n"
            "            left as they are: a second run changes nothing. Progress on a\n"
            "            terminal (topics, partitions, manifest bytes, ETA) unless --quiet.\n"
            "            Writes: stop the broker first (it takes the lock).\n"
            "cluster     a cluster's brokers (metadata.store.url in CONFIG), its controller\n"
            "            and epoch, and per partition the leader, leader epoch, replicas,\n"
            "            ISR and offline replicas, as etcd holds them.\n"
            "users       the broker's SASL users (<log.dirs>/.broker/users): add reads the\n"
            "            password from stdin and stores only SCRAM keys (--mechanism\n"
            "            SCRAM-SHA-512 (default) or SCRAM-SHA-256, --iterations >= 4096,\n"
            "            default 8192); delete removes NAME (one mechanism with --mechanism);\n"
            "            a running broker picks changes up within a second.\n"
            "config-doc  the configuration reference (Markdown).\n"
            "CONFIG is the engine's or the broker's properties file.\n");
}

static void fmt_ts(int64_t ms, char *out, size_t len)
{
    if (ms < 0) {
        snprintf(out, len, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void fmt_bytes(uint64_t b, char *out, size_t len)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0) snprintf(out, len, "%llu B", (unsigned long long)b);
    else snprintf(out, len, "%.1f %s", v, u[i]);
}

static int load_cfg(const char *path, ts_config **cfg)
{
    char err[1024];
    *cfg = ts_config_create();
    if (!*cfg) return 1;
    /* The broker's file also holds broker settings: keep them, validate ours. */
    if (ts_config_load_file(*cfg, path, 1, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    return 0;
}

static int parse_part(const char *s, int32_t *out)
{
    int64_t v;
    if (cli_parse_i64("tierctl", "PARTITION", s, 0, INT32_MAX, &v)) return -1;
    *out = (int32_t)v;
    return 0;
}

typedef struct place_out {
    int json;
    size_t rows;
} place_out;

static int print_row(const ts_segment_info *s, void *opaque)
{
    place_out *po = opaque;
    if (po->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "partition", s->partition);
        cJSON_AddNumberToObject(o, "base_offset", (double)s->base_offset);
        cJSON_AddNumberToObject(o, "last_offset", (double)s->last_offset);
        cJSON_AddNumberToObject(o, "first_timestamp", (double)s->first_timestamp);
        cJSON_AddNumberToObject(o, "max_timestamp", (double)s->max_timestamp);
        cJSON_AddNumberToObject(o, "size_bytes", (double)s->size_bytes);
        cJSON_AddNumberToObject(o, "stored_bytes", (double)s->stored_bytes);
        cJSON_AddStringToObject(o, "location", ts_location_name(s->location));
        if (s->object_key[0]) cJSON_AddStringToObject(o, "object_key", s->object_key);
        else cJSON_AddNullToObject(o, "object_key");
        cJSON_AddBoolToObject(o, "active", s->active);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt) printf("%s\n %s", po->rows ? "," : "", txt);
        free(txt);
        cJSON_Delete(o);
    } else {
        char f[32], m[32], sz[16], stb[16];
        fmt_ts(s->first_timestamp, f, sizeof(f));
        fmt_ts(s->max_timestamp, m, sizeof(m));
        fmt_bytes(s->size_bytes, sz, sizeof(sz));
        if (s->stored_bytes) fmt_bytes(s->stored_bytes, stb, sizeof(stb));
        else snprintf(stb, sizeof(stb), "-");
        printf("%-5d %20lld %20lld %-24s %-24s %10s %10s %-13s %s%s\n", s->partition,
               (long long)s->base_offset, (long long)s->last_offset, f, m, sz, stb,
               ts_location_name(s->location), s->object_key[0] ? s->object_key : "-",
               s->active ? "  (active)" : "");
    }
    po->rows++;
    return 0;
}

/* A partition the topic's listing names (its descriptor records it) that
 * holds nothing yet, locally or remotely: empty, not an error. Only for
 * partitions from a listing: one asked for by number stays an error. */
static int listed_empty(ts_status st, const char *part_arg)
{
    return st == TS_E_NOT_FOUND && !part_arg;
}

static int cmd_placement(ts_config *cfg, const char *topic, const char *part_arg, int json)
{
    char err[1024];
    int32_t *parts = NULL;
    size_t nparts = 0;
    if (part_arg) {
        int32_t one;
        if (parse_part(part_arg, &one)) return 2;
        parts = malloc(sizeof(int32_t));
        parts[0] = one;
        nparts = 1;
    } else if (ts_topic_partitions_offline(cfg, topic, &parts, &nparts, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    if (nparts == 0) {
        fprintf(stderr, "tierctl: topic '%s' has no partitions here or in the bucket\n", topic);
        free(parts);
        return 1;
    }
    int rc = 0;
    if (!json)
        printf("%-5s %20s %20s %-24s %-24s %10s %10s %-13s %s\n", "PART", "BASE_OFFSET",
               "LAST_OFFSET", "FIRST_TIMESTAMP", "MAX_TIMESTAMP", "SIZE", "STORED", "LOCATION",
               "OBJECT_KEY");
    else
        printf("[");
    /* Rows are printed as they come: a partition with 100k remote segments
     * never sits in memory as rows (or as a cJSON tree). */
    place_out po = {json, 0};
    for (size_t i = 0; i < nparts; i++) {
        ts_status st = ts_placement_offline_each(cfg, topic, parts[i], print_row, &po, err,
                                                 sizeof(err));
        if (st && !listed_empty(st, part_arg)) {
            fprintf(stderr, "tierctl: %s\n", err);
            rc = 1;
        }
    }
    if (json) printf("%s]\n", po.rows ? "\n" : "");
    free(parts);
    return rc;
}

static int cmd_locate(ts_config *cfg, const char *topic, const char *part, const char *off, int json)
{
    int32_t p;
    int64_t o;
    char err[1024];
    if (parse_part(part, &p)) return 2;
    if (cli_parse_i64("tierctl", "OFFSET", off, 0, INT64_MAX, &o)) return 2;
    ts_offset_location loc;
    if (ts_locate_offline(cfg, topic, p, o, &loc, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    const ts_segment_info *s = &loc.segment;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "topic", topic);
        cJSON_AddNumberToObject(j, "partition", p);
        cJSON_AddNumberToObject(j, "offset", (double)o);
        cJSON_AddStringToObject(j, "location", ts_location_name(s->location));
        cJSON_AddNumberToObject(j, "segment_base_offset", (double)s->base_offset);
        cJSON_AddNumberToObject(j, "segment_last_offset", (double)s->last_offset);
        if (s->object_key[0]) {
            cJSON_AddStringToObject(j, "object_key", s->object_key);
            cJSON_AddNumberToObject(j, "chunk_index", loc.chunk_index);
            cJSON_AddNumberToObject(j, "chunk_count", loc.chunk_count);
            cJSON_AddNumberToObject(j, "chunk_stored_pos", (double)loc.chunk_stored_pos);
            cJSON_AddNumberToObject(j, "chunk_stored_len", (double)loc.chunk_stored_len);
            cJSON_AddNumberToObject(j, "chunk_raw_pos", (double)loc.chunk_raw_pos);
            cJSON_AddNumberToObject(j, "chunk_raw_len", (double)loc.chunk_raw_len);
        } else {
            cJSON_AddNullToObject(j, "object_key");
        }
        char *t = cJSON_Print(j);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(j);
        return 0;
    }
    printf("%s-%d offset %lld\n", topic, p, (long long)o);
    printf("  segment    %lld..%lld (%s)%s\n", (long long)s->base_offset,
           (long long)s->last_offset, ts_location_name(s->location), s->active ? ", active" : "");
    if (s->location == TS_LOC_LOCAL || s->location == TS_LOC_LOCAL_REMOTE)
        printf("  local      %s-%d/%020lld.log (served from local disk)\n", topic, p,
               (long long)s->base_offset);
    if (s->location == TS_LOC_MISSING)
        printf("  MISSING    the bucket lacks this object: these offsets cannot be read\n");
    if (s->object_key[0])
        printf("  object     %s\n  chunk      %d of %d: bytes %llu..%llu of the object "
               "(raw %llu..%llu, first offset %lld)\n",
               s->object_key, loc.chunk_index, loc.chunk_count,
               (unsigned long long)loc.chunk_stored_pos,
               (unsigned long long)(loc.chunk_stored_pos + loc.chunk_stored_len - 1),
               (unsigned long long)loc.chunk_raw_pos,
               (unsigned long long)(loc.chunk_raw_pos + loc.chunk_raw_len - 1),
               (long long)loc.chunk_first_offset);
    return 0;
}

typedef struct verify_ctx {
    int ok, bad, missing;
    cli_progress prog;
} verify_ctx;

/* Totals for the progress line: remote segments and their stored bytes. */
static int count_remote(const ts_segment_info *r, void *opaque)
{
    cli_progress *p = opaque;
    if (r->location != TS_LOC_LOCAL) {
        p->total_items++;
        p->total_bytes += r->stored_bytes;
    }
    return 0;
}

/* A missing object gets its own word: it is not a damaged download that a
 * retry might fix but data the manifest promises and the bucket lost. */
static void verify_row(const ts_segment_info *s, ts_status st, const char *msg, void *opaque)
{
    verify_ctx *v = opaque;
    cli_progress_clear(&v->prog);
    if (st == TS_OK) v->ok++;
    else v->bad++;
    if (st == TS_E_OBJECT_MISSING) v->missing++;
    printf("%-5d %20lld %-7s %s\n", s->partition, (long long)s->base_offset,
           st == TS_OK ? "ok" : st == TS_E_OBJECT_MISSING ? "MISSING" : "FAIL", msg);
    fflush(stdout);
    cli_progress_add(&v->prog, 1, s->stored_bytes);
}

static int cmd_verify(ts_config *cfg, const char *topic, const char *part_arg, int quiet)
{
    char err[1024];
    int32_t *parts = NULL;
    size_t nparts = 0;
    if (part_arg) {
        parts = malloc(sizeof(int32_t));
        if (parse_part(part_arg, &parts[0])) {
            free(parts);
            return 2;
        }
        nparts = 1;
    } else if (ts_topic_partitions_offline(cfg, topic, &parts, &nparts, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    verify_ctx v = {0};
    cli_progress_start(&v.prog, "verify", "segments", 0, 0, quiet);
    for (size_t i = 0; v.prog.on && i < nparts; i++)
        ts_placement_offline_each(cfg, topic, parts[i], count_remote, &v.prog, err, sizeof(err));
    int rc = 0;
    for (size_t i = 0; i < nparts; i++) {
        ts_status st = ts_verify_offline(cfg, topic, parts[i], verify_row, &v, err, sizeof(err));
        if (st && !listed_empty(st, part_arg)) {
            rc = 1;
            if (!v.bad) fprintf(stderr, "tierctl: %s\n", err);
        }
    }
    free(parts);
    cli_progress_end(&v.prog);
    printf("verified %d remote segment(s): %d ok, %d failed", v.ok + v.bad, v.ok, v.bad);
    if (v.missing)
        printf(" (%d with the object missing from the bucket: their offsets cannot be read)",
               v.missing);
    printf("\n");
    return rc || v.bad ? 1 : 0;
}

typedef struct status_acc {
    uint64_t local, raw_remote, stored, lag_bytes;
    int nlocal, nremote, lag, nmissing;
    size_t n;
    long long start, end;
} status_acc;

static int status_row(const ts_segment_info *r, void *opaque)
{
    status_acc *a = opaque;
    if (r->location == TS_LOC_LOCAL || r->location == TS_LOC_LOCAL_REMOTE) {
        a->local += r->size_bytes;
        a->nlocal++;
    }
    if (r->location == TS_LOC_MISSING) a->nmissing++;
    if (r->location != TS_LOC_LOCAL) {
        a->raw_remote += r->size_bytes;
        a->stored += r->stored_bytes;
        a->nremote++;
    }
    if (r->location == TS_LOC_LOCAL && !r->active) {
        a->lag++;
        a->lag_bytes += r->size_bytes;
    }
    if (!a->n) a->start = (long long)r->base_offset;
    a->end = (long long)r->last_offset + 1;
    a->n++;
    return 0;
}

static int status_topic(ts_config *cfg, const char *topic, cJSON *arr)
{
    char err[1024];
    int32_t *parts = NULL;
    size_t nparts = 0;
    if (ts_topic_partitions_offline(cfg, topic, &parts, &nparts, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < nparts; i++) {
        status_acc a;
        memset(&a, 0, sizeof(a));
        ts_status pst = ts_placement_offline_each(cfg, topic, parts[i], status_row, &a, err,
                                                  sizeof(err));
        if (pst && !listed_empty(pst, NULL)) {
            fprintf(stderr, "tierctl: %s\n", err);
            rc = 1;
            continue;
        }
        uint64_t local = a.local, raw_remote = a.raw_remote, stored = a.stored,
                 lag_bytes = a.lag_bytes;
        int nlocal = a.nlocal, nremote = a.nremote, lag = a.lag, nmissing = a.nmissing;
        long long start = a.n ? a.start : 0;
        long long end = a.n ? a.end : 0;
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "topic", topic);
            cJSON_AddNumberToObject(o, "partition", parts[i]);
            cJSON_AddNumberToObject(o, "log_start_offset", (double)start);
            cJSON_AddNumberToObject(o, "log_end_offset", (double)end);
            cJSON_AddNumberToObject(o, "local_segments", nlocal);
            cJSON_AddNumberToObject(o, "local_bytes", (double)local);
            cJSON_AddNumberToObject(o, "remote_segments", nremote);
            cJSON_AddNumberToObject(o, "remote_raw_bytes", (double)raw_remote);
            cJSON_AddNumberToObject(o, "remote_stored_bytes", (double)stored);
            cJSON_AddNumberToObject(o, "awaiting_upload_segments", lag);
            cJSON_AddNumberToObject(o, "awaiting_upload_bytes", (double)lag_bytes);
            cJSON_AddNumberToObject(o, "missing_segments", nmissing);
            cJSON_AddItemToArray(arr, o);
        } else {
            char lb[16], rb[16], sb[16], gb[16];
            fmt_bytes(local, lb, sizeof(lb));
            fmt_bytes(raw_remote, rb, sizeof(rb));
            fmt_bytes(stored, sb, sizeof(sb));
            fmt_bytes(lag_bytes, gb, sizeof(gb));
            printf("%-24s %5d %14lld %14lld %4d %10s %4d %10s %10s %4d %10s%s\n", topic, parts[i],
                   start, end, nlocal, lb, nremote, rb, sb, lag, gb,
                   nmissing ? "  (segment objects MISSING from the bucket: run verify)" : "");
        }
    }
    free(parts);
    return rc;
}

static int cmd_status(ts_config *cfg, const char *topic, int json)
{
    char err[1024];
    char **topics = NULL;
    size_t ntopics = 0;
    if (topic) {
        topics = malloc(sizeof(char *));
        topics[0] = strdup(topic);
        ntopics = 1;
    } else if (ts_topics_offline(cfg, &topics, &ntopics, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json)
        printf("%-24s %5s %14s %14s %4s %10s %4s %10s %10s %4s %10s\n", "TOPIC", "PART",
               "LOG_START", "LOG_END", "LSEG", "LOCAL", "RSEG", "REMOTE_RAW", "STORED", "LAG",
               "LAG_BYTES");
    int rc = 0;
    for (size_t i = 0; i < ntopics; i++) rc |= status_topic(cfg, topics[i], arr);
    if (json) {
        char *t = cJSON_Print(arr);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(arr);
    }
    ts_topics_free(topics, ntopics);
    return rc;
}

static int cmd_rekey(ts_config *cfg, const char *topic)
{
    char err[1024];
    ts_engine *eng = NULL;
    int32_t *parts = NULL;
    size_t nparts = 0, total = 0;
    int rc = 1;
    if (ts_engine_open(cfg, &eng, err, sizeof(err)) ||
        ts_topic_partitions(eng, topic, &parts, &nparts, err, sizeof(err))) {
        fprintf(stderr, "tierctl: rekey %s: %s\n", topic, err);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < nparts; i++) {
        ts_partition *p;
        size_t n = 0;
        if (ts_partition_open(eng, topic, parts[i], 0, &p, err, sizeof(err)) ||
            ts_partition_rekey(p, &n, err, sizeof(err))) {
            fprintf(stderr, "tierctl: rekey %s-%d: %s\n", topic, parts[i], err);
            rc = 1;
            continue;
        }
        printf("%s-%d: re-wrapped %zu data key(s)\n", topic, parts[i], n);
        total += n;
    }
    printf("rekey %s: %zu data key(s) re-wrapped in %zu partition(s)%s\n", topic, total, nparts,
           rc ? ", with errors" : "");
out:
    free(parts);
    ts_engine_close(eng);
    return rc;
}

/* ---- recover -------------------------------------------------------------- */

typedef struct recover_ctx {
    ts_engine *eng;
    cli_progress prog;
    size_t topics, restored, present, failed;
    uint64_t bytes;
} recover_ctx;

static uint64_t bytes_fetched(ts_engine *eng)
{
    ts_engine_stats s;
    ts_engine_stats_get(eng, &s);
    return s.objstore_bytes_got;
}

/* The topic's overrides as "k=v,k=v" ("-" when none). */
static void overrides_text(ts_engine *eng, const char *topic, char *out, size_t len)
{
    ts_config_row *rows = NULL;
    size_t n = 0, at = 0;
    char err[256];
    snprintf(out, len, "-");
    if (ts_config_list(eng, topic, &rows, &n, err, sizeof(err))) return;
    for (size_t i = 0; i < n; i++)
        if ((rows[i].flags & TS_CONFIG_TOPIC_SET) && at + 1 < len)
            at += (size_t)snprintf(out + at, len - at, "%s%s=%s", at ? "," : "", rows[i].name,
                                   rows[i].value);
    free(rows);
}

static int recover_topic(recover_ctx *r, const char *topic)
{
    char err[1024];
    int32_t *parts = NULL;
    size_t nparts = 0, restored = 0, failed = 0;
    if (ts_topic_partitions(r->eng, topic, &parts, &nparts, err, sizeof(err)) || !nparts) {
        cli_progress_clear(&r->prog);
        fprintf(stderr, "tierctl: recover %s: %s\n", topic,
                nparts ? err : "no partitions here or in the bucket");
        free(parts);
        r->failed++;
        return 1;
    }
    for (size_t i = 0; i < nparts; i++) {
        ts_partition *p;
        int present = ts_partition_exists_local(r->eng, topic, parts[i]);
        uint64_t before = bytes_fetched(r->eng);
        if (ts_partition_open(r->eng, topic, parts[i], 1, &p, err, sizeof(err))) {
            cli_progress_clear(&r->prog);
            fprintf(stderr, "tierctl: recover %s-%d: %s\n", topic, parts[i], err);
            failed++;
        } else if (present) {
            r->present++;
        } else {
            restored++;
        }
        uint64_t got = bytes_fetched(r->eng) - before;
        r->bytes += got;
        cli_progress_add(&r->prog, 1, got);
    }
    char cfg[2048];
    overrides_text(r->eng, topic, cfg, sizeof(cfg));
    cli_progress_clear(&r->prog);
    printf("%-24s %5zu partition(s): %zu restored, %zu present%s; overrides: %s\n", topic, nparts,
           restored, nparts - restored - failed, failed ? ", some FAILED" : "", cfg);
    fflush(stdout);
    r->restored += restored;
    r->failed += failed;
    r->topics++;
    free(parts);
    return failed ? 1 : 0;
}

/* Every topic of the bucket, page by page, into *all (names). */
static int recover_list(ts_engine *eng, ts_topic_info **all, size_t *nall, uint64_t *nparts)
{
    char err[1024], after[256] = "";
    *all = NULL;
    *nall = *nparts = 0;
    for (;;) {
        ts_topic_info *rows = NULL;
        size_t n = 0;
        if (ts_topics_list(eng, after, 1024, &rows, &n, err, sizeof(err))) {
            fprintf(stderr, "tierctl: recover: listing the bucket's topics: %s\n", err);
            return 1;
        }
        ts_topic_info *grown = n ? realloc(*all, (*nall + n) * sizeof(**all)) : *all;
        if (n && !grown) {
            free(rows);
            fprintf(stderr, "tierctl: recover: out of memory\n");
            return 1;
        }
        *all = grown;
        for (size_t i = 0; i < n; i++) {
            (*all)[(*nall)++] = rows[i];
            *nparts += rows[i].partitions > 0 ? (uint64_t)rows[i].partitions : 1;
        }
        if (n) snprintf(after, sizeof(after), "%s", rows[n - 1].name);
        free(rows);
        if (n < 1024) return 0;
    }
}

static int cmd_recover(ts_config *cfg, const char *const *names, int nnames, int quiet)
{
    char err[1024];
    recover_ctx r = {0};
    /* The rows say what each partition did: the engine's INFO lines (one
     * per recovered manifest) would only break into the progress line. */
    const char *lvl = ts_config_get(cfg, "log.level");
    if (!getenv("TS_LOG_LEVEL") && lvl && !strcmp(lvl, "info"))
        ts_config_set(cfg, "log.level", "warn", NULL, 0);
    if (ts_engine_open(cfg, &r.eng, err, sizeof(err))) {
        fprintf(stderr, "tierctl: recover: %s\n", err);
        if (strstr(err, "in use"))
            fprintf(stderr, "tierctl: recover writes the data directory: stop the broker (or "
                            "the process holding the lock) first\n");
        return 1;
    }
    ts_topic_info *all = NULL;
    size_t nall = 0;
    uint64_t total = 0;
    int rc = !nnames && recover_list(r.eng, &all, &nall, &total);
    size_t n = rc ? 0 : nnames ? (size_t)nnames : nall;
    cli_progress_start(&r.prog, "recover", "partitions", total, 0, quiet);
    /* One bad topic (an unreadable descriptor) does not stop the others. */
    for (size_t i = 0; i < n; i++) rc |= recover_topic(&r, nnames ? names[i] : all[i].name);
    cli_progress_end(&r.prog);
    char b[32];
    fmt_bytes(r.bytes, b, sizeof(b));
    printf("recovered %zu topic(s): %zu partition(s) restored from the bucket, %zu already "
           "present, %s of manifests fetched%s\n",
           r.topics, r.restored, r.present, b, r.failed ? "; some FAILED (see above)" : "");
    free(all);
    ts_engine_close(r.eng);
    return rc || r.failed ? 1 : 0;
}

/* What the options set; the command and its arguments follow them. */
typedef struct tierctl_opts {
    const char *cfg_path, *mechanism;
    int json, quiet;
    int64_t iterations;
} tierctl_opts;

/* -1 to go on, else the exit code (help, version, a bad option). */
static int parse_options(int argc, char **argv, tierctl_opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"mechanism", required_argument, NULL, 'm'},
        {"iterations", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    int c;
    /* GNU getopt permutes: options may follow the command and its
     * arguments ("placement events --json"). */
    while ((c = getopt_long(argc, argv, "c:hq", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->cfg_path = optarg; break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'm': o->mechanism = optarg; break;
        case 'i':
            if (cli_parse_i64("tierctl", "--iterations", optarg, 4096, 1000000, &o->iterations))
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("tierctl (tierstore) %s\n", TS_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    return -1;
}

static int cmd_config_doc(void)
{
    size_t need = ts_config_describe_markdown(NULL, 0);
    char *buf = malloc(need);
    ts_config_describe_markdown(buf, need);
    fputs(buf, stdout);
    free(buf);
    return 0;
}

static int cmd_manifest(ts_config *cfg, const char *topic, const char *part_arg)
{
    int32_t part;
    char err[1024];
    if (parse_part(part_arg, &part)) return 2;
    if (ts_manifest_dump_offline(cfg, topic, part, stdout, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    return 0;
}

static int cmd_partitions(ts_config *cfg, const char *topic)
{
    int32_t *parts;
    size_t n;
    char err[1024];
    if (ts_topic_partitions_offline(cfg, topic, &parts, &n, err, sizeof(err))) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++) printf("%d\n", parts[i]);
    free(parts);
    return 0;
}

/* The commands that need a configuration; 2 and the usage for a command
 * that does not exist or has the wrong number of arguments. */
static int run_command(ts_config *cfg, const char *const *args, int nargs, const tierctl_opts *o)
{
    const char *cmd = args[0];
    if (!strcmp(cmd, "placement") && (nargs == 2 || nargs == 3))
        return cmd_placement(cfg, args[1], nargs == 3 ? args[2] : NULL, o->json);
    if (!strcmp(cmd, "locate") && nargs == 4)
        return cmd_locate(cfg, args[1], args[2], args[3], o->json);
    if (!strcmp(cmd, "verify") && (nargs == 2 || nargs == 3))
        return cmd_verify(cfg, args[1], nargs == 3 ? args[2] : NULL, o->quiet);
    if (!strcmp(cmd, "status") && (nargs == 1 || nargs == 2))
        return cmd_status(cfg, nargs == 2 ? args[1] : NULL, o->json);
    if (!strcmp(cmd, "manifest") && nargs == 3) return cmd_manifest(cfg, args[1], args[2]);
    if (!strcmp(cmd, "recover")) return cmd_recover(cfg, args + 1, nargs - 1, o->quiet);
    if (!strcmp(cmd, "users") && nargs >= 2)
        return tierctl_users(ts_config_get(cfg, "log.dirs"), args + 1, nargs - 1, o->mechanism,
                             (int)o->iterations);
    if (!strcmp(cmd, "rekey") && nargs == 2) return cmd_rekey(cfg, args[1]);
    if (!strcmp(cmd, "cluster") && (nargs == 1 || nargs == 2))
        return tierctl_cluster(ts_config_get(cfg, "metadata.store.url"),
                               ts_config_get(cfg, "cluster.name"), nargs == 2 ? args[1] : NULL,
                               o->json);
    if (!strcmp(cmd, "partitions") && nargs == 2) return cmd_partitions(cfg, args[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    tierctl_opts o = {.iterations = 8192};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    const char *const *args = (const char *const *)argv + optind;
    int nargs = argc - optind;
    if (nargs == 0 || nargs > 8) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(args[0], "config-doc")) return cmd_config_doc();
    if (!o.cfg_path) {
        fprintf(stderr, "tierctl: -c CONFIG is required for '%s'\n", args[0]);
        return 2;
    }
    ts_config *cfg;
    if (load_cfg(o.cfg_path, &cfg)) {
        ts_config_destroy(cfg);
        return 1;
    }
    rc = run_command(cfg, args, nargs, &o);
    ts_config_destroy(cfg);
    return rc;
}
