/*
 * recover_fixture.c — writes and checks the bucket test_recover.sh recovers
 * with `tierctl recover` (issue 12 item 5).
 *
 *   recover_fixture write DIR   engine on DIR/data + file://DIR/bucket:
 *     alpha  1 partition, 30 records tiered; overrides retention.ms and
 *            min.insync.replicas set, segment.ms set then deleted (AlterConfigs)
 *     beta   2 partitions: 0 with 20 records tiered, 1 never uploaded (empty)
 *     gamma  1 partition, 10 records tiered + 5 only local (lost with the disk)
 *     delta  1 partition, created and deleted: must not come back
 *     and DIR/expected: "topic partition tiered_end" lines.
 *   recover_fixture check DIR   (after the data dir was wiped and tierctl
 *     recover ran) every expected partition is on local disk again, the
 *     partition counts and overrides are back, every tiered offset reads
 *     back from 0, contiguous. Exit status 0 when all holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "tierstore.h"

static char g_err[1024];

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "recover_fixture: " __VA_ARGS__);                                   \
            fprintf(stderr, " (%s)\n", g_err);                                                  \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

static ts_engine *open_engine(const char *dir)
{
    ts_config *cfg = ts_config_create();
    char v[4096];
    snprintf(v, sizeof v, "%s/data", dir);
    CHECK(!ts_config_set(cfg, "log.dirs", v, g_err, sizeof g_err), "log.dirs");
    snprintf(v, sizeof v, "file://%s/bucket", dir);
    CHECK(!ts_config_set(cfg, "remote.storage.url", v, g_err, sizeof g_err), "url");
    CHECK(!ts_config_set(cfg, "remote.storage.enable", "true", g_err, sizeof g_err), "enable");
    ts_engine *eng = NULL;
    CHECK(!ts_engine_open(cfg, &eng, g_err, sizeof g_err), "engine open");
    ts_config_destroy(cfg);
    return eng;
}

static void append(ts_partition *p, int n)
{
    const void *vals[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        vals[i] = "recover-me";
        lens[i] = 10;
    }
    for (int b = 0; b < n / 10; b++) {
        uint8_t *batch;
        size_t len;
        int64_t first, last;
        CHECK(!ts_batch_build(vals, lens, 10, 1700000000000LL + b, &batch, &len), "batch");
        CHECK(!ts_partition_append(p, batch, len, &first, &last, g_err, sizeof g_err), "append");
        free(batch);
    }
}

/* n records tiered, then `tail` records only local. */
static void fill(ts_engine *eng, FILE *exp, const char *topic, int32_t id, int n, int tail)
{
    ts_partition *p;
    CHECK(!ts_partition_open(eng, topic, id, 1, &p, g_err, sizeof g_err), "open %s-%d", topic, id);
    if (n) {
        append(p, n);
        CHECK(!ts_partition_roll(p, g_err, sizeof g_err), "roll");
        CHECK(!ts_partition_wait_uploaded(p, 60000, g_err, sizeof g_err), "upload %s-%d", topic, id);
        append(p, tail);
    }
    fprintf(exp, "%s %d %d\n", topic, id, n);
}

static void set_config(ts_engine *eng, const char *topic, const char *k, const char *v)
{
    const char *keys[] = {k}, *vals[] = {v};
    CHECK(!ts_topic_alter_config(eng, topic, keys, vals, 1, 0, g_err, sizeof g_err), "config %s", k);
}

static int do_write(const char *dir)
{
    ts_engine *eng = open_engine(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/expected", dir);
    FILE *exp = fopen(path, "w");
    CHECK(exp != NULL, "cannot write %s", path);
    set_config(eng, "alpha", "retention.ms", "86400000");
    set_config(eng, "alpha", "min.insync.replicas", "1");
    set_config(eng, "alpha", "segment.ms", "600000");
    set_config(eng, "alpha", "segment.ms", NULL); /* deleted: must not come back */
    fill(eng, exp, "alpha", 0, 30, 0);
    set_config(eng, "beta", "retention.bytes", "1073741824");
    fill(eng, exp, "beta", 0, 20, 0);
    fill(eng, exp, "beta", 1, 0, 0);
    fill(eng, exp, "gamma", 0, 10, 5);
    ts_partition *p;
    CHECK(!ts_partition_open(eng, "delta", 0, 1, &p, g_err, sizeof g_err), "open delta");
    CHECK(!ts_partition_delete(eng, "delta", 0, g_err, sizeof g_err), "delete delta");
    fclose(exp);
    ts_engine_close(eng);
    return 0;
}

static int32_t be32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)(uint32_t)be32(p) << 32 | (uint32_t)be32(p + 4));
}

/* Reads [0, end) batch by batch: every offset there, in order. */
static void read_back(ts_partition *p, const char *topic, int32_t id, int64_t end)
{
    int64_t next = 0;
    while (next < end) {
        uint8_t *buf = NULL;
        size_t len = 0;
        CHECK(!ts_partition_read(p, next, 1 << 20, &buf, &len, g_err, sizeof g_err),
              "read %s-%d at %lld", topic, id, (long long)next);
        CHECK(len >= 27, "%s-%d: nothing at %lld", topic, id, (long long)next);
        for (size_t at = 0; at + 27 <= len && next < end;) {
            int64_t base = be64(buf + at);
            int32_t blen = be32(buf + at + 8);
            CHECK(base == next, "%s-%d: batch at %lld, expected %lld", topic, id, (long long)base,
                  (long long)next);
            next = base + be32(buf + at + 23) + 1;
            at += 12 + (size_t)blen;
        }
        free(buf);
    }
}

static int has_override(ts_engine *eng, const char *topic, const char *k, const char *v)
{
    ts_config_row *rows = NULL;
    size_t n = 0;
    int found = 0;
    CHECK(!ts_config_list(eng, topic, &rows, &n, g_err, sizeof g_err), "config_list %s", topic);
    for (size_t i = 0; i < n; i++)
        if ((rows[i].flags & TS_CONFIG_TOPIC_SET) && !strcmp(rows[i].name, k))
            found = !v || !strcmp(rows[i].value, v);
    free(rows);
    return found;
}

static int do_check(const char *dir)
{
    ts_engine *eng = open_engine(dir);
    char path[4096], topic[256];
    snprintf(path, sizeof path, "%s/expected", dir);
    FILE *exp = fopen(path, "r");
    CHECK(exp != NULL, "cannot read %s", path);
    int id, end;
    while (fscanf(exp, "%255s %d %d", topic, &id, &end) == 3) {
        CHECK(ts_partition_exists_local(eng, topic, id), "%s-%d was not restored", topic, id);
        ts_partition *p;
        CHECK(!ts_partition_open(eng, topic, id, 0, &p, g_err, sizeof g_err), "open %s-%d", topic, id);
        read_back(p, topic, id, end);
        printf("%s-%d: offsets 0..%d read back\n", topic, id, end);
    }
    fclose(exp);
    int32_t *parts = NULL;
    size_t n = 0;
    CHECK(!ts_topic_partitions(eng, "beta", &parts, &n, g_err, sizeof g_err), "beta partitions");
    CHECK(n == 2 && parts[0] == 0 && parts[1] == 1, "beta has %zu partitions, expected 2", n);
    free(parts);
    CHECK(has_override(eng, "alpha", "retention.ms", "86400000"), "alpha retention.ms");
    CHECK(has_override(eng, "alpha", "min.insync.replicas", "1"), "alpha min.insync.replicas");
    CHECK(!has_override(eng, "alpha", "segment.ms", NULL), "alpha: deleted segment.ms is back");
    CHECK(has_override(eng, "beta", "retention.bytes", "1073741824"), "beta retention.bytes");
    CHECK(!ts_partition_exists_local(eng, "delta", 0), "the deleted topic delta came back");
    ts_engine_close(eng);
    printf("check ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "write")) return do_write(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "check")) return do_check(argv[2]);
    fprintf(stderr, "usage: recover_fixture write|check DIR\n");
    return 2;
}
