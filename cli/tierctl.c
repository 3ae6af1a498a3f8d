/*
 * tierctl — the admin CLI: "where does this offset live?" and friends.
 *
 * Uses only the public headers (include/): it reads the data directory and
 * the bucket read-only, so it works whether or not an engine (or the
 * broker) is running on the same config.
 *
 *   tierctl -c CONFIG placement TOPIC [PARTITION] [--json]
 *   tierctl -c CONFIG partitions TOPIC
 *   tierctl config-doc            (prints CONFIGURATION.md)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tierstore.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tierctl -c CONFIG placement TOPIC [PARTITION] [--json]\n"
            "       tierctl -c CONFIG partitions TOPIC\n"
            "       tierctl config-doc\n"
            "\n"
            "placement   one row per segment: offsets, timestamps, raw and stored bytes,\n"
            "            location (local, remote, local+remote) and object key.\n"
            "            --json prints an array of objects for scripts.\n"
            "partitions  the partitions of TOPIC found locally or in the bucket.\n"
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

static int cmd_placement(ts_config *cfg, const char *topic, const char *part_arg, int json)
{
    char err[1024];
    int32_t *parts = NULL;
    size_t nparts = 0;
    if (part_arg) {
        char *end;
        long v = strtol(part_arg, &end, 10);
        if (*end || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "tierctl: invalid partition '%s'\n", part_arg);
            return 2;
        }
        parts = malloc(sizeof(int32_t));
        parts[0] = (int32_t)v;
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
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    int rc = 0;
    if (!json)
        printf("%-5s %20s %20s %-24s %-24s %10s %10s %-13s %s\n", "PART", "BASE_OFFSET",
               "LAST_OFFSET", "FIRST_TIMESTAMP", "MAX_TIMESTAMP", "SIZE", "STORED", "LOCATION",
               "OBJECT_KEY");
    for (size_t i = 0; i < nparts; i++) {
        ts_segment_info *rows = NULL;
        size_t n = 0;
        ts_status st = ts_placement_offline(cfg, topic, parts[i], &rows, &n, err, sizeof(err));
        if (st) {
            fprintf(stderr, "tierctl: %s\n", err);
            rc = 1;
            continue;
        }
        for (size_t r = 0; r < n; r++) {
            ts_segment_info *s = &rows[r];
            if (json) {
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
                cJSON_AddItemToArray(arr, o);
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
        }
        free(rows);
    }
    if (json) {
        char *txt = cJSON_Print(arr);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(arr);
    }
    free(parts);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL;
    int json = 0;
    const char *args[8];
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (nargs < 8) args[nargs++] = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (nargs == 0) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(args[0], "config-doc")) {
        size_t need = ts_config_describe_markdown(NULL, 0);
        char *buf = malloc(need);
        ts_config_describe_markdown(buf, need);
        fputs(buf, stdout);
        free(buf);
        return 0;
    }
    if (!cfg_path) {
        fprintf(stderr, "tierctl: -c CONFIG is required for '%s'\n", args[0]);
        return 2;
    }
    ts_config *cfg;
    if (load_cfg(cfg_path, &cfg)) {
        ts_config_destroy(cfg);
        return 1;
    }
    int rc;
    if (!strcmp(args[0], "placement") && (nargs == 2 || nargs == 3)) {
        rc = cmd_placement(cfg, args[1], nargs == 3 ? args[2] : NULL, json);
    } else if (!strcmp(args[0], "partitions") && nargs == 2) {
        int32_t *parts;
        size_t n;
        char err[1024];
        rc = 0;
        if (ts_topic_partitions_offline(cfg, args[1], &parts, &n, err, sizeof(err))) {
            fprintf(stderr, "tierctl: %s\n", err);
            rc = 1;
        } else {
            for (size_t i = 0; i < n; i++) printf("%d\n", parts[i]);
            free(parts);
        }
    } else {
        usage(stderr);
        rc = 2;
    }
    ts_config_destroy(cfg);
    return rc;
}
