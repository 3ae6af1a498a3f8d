/*
 * test_plugin_delete_local.c — ABI minor 6's topic_delete_local through
 * libtierstore-plugin.so, as the broker calls it when its replicas belong to
 * an older incarnation of a topic: refused while a partition of the topic is
 * open; then every local partition directory of the topic goes (and only
 * its: topic "t-1"'s "t-1-0" is not topic "t"'s), the bucket keeps every
 * object, and a later open recovers the tiered offsets from it.
 *
 * Only include/tierstore_plugin.h describes the plugin; common/batch.h
 * builds batches (test scaffolding). `--plugin PATH`.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/batch.h"
#include "tests/broker-plugin/plugin_host.h"

static char g_data[600], g_bucket[600];

static tsp_status open_engine(tsp_engine **eng, char *err, size_t errlen)
{
    char url[720];
    snprintf(url, sizeof url, "file://%s", g_bucket);
    tsp_property props[] = {
        {"log.dirs", g_data},
        {"remote.storage.url", url},
        {"log.segment.bytes", "16384"},
        {"remote.log.manager.task.interval.ms", "100"},
    };
    return load()->engine_open(props, sizeof props / sizeof props[0], 0, eng, err, errlen);
}

/* Appends 20 batches of 10 records (about 20 KiB) and tiers the closed ones. */
static tsp_status fill(tsp_partition *p, char *err, size_t errlen)
{
    const tsp_plugin *pl = load();
    static char v[100];
    const void *vals[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        vals[i] = v;
        lens[i] = sizeof v;
    }
    for (int i = 0; i < 20; i++) {
        uint8_t *b = NULL;
        size_t len = 0;
        int64_t first, last;
        if (ts_batch_build(vals, lens, 10, (int64_t)time(NULL) * 1000, &b, &len) != TS_OK)
            return TSP_E_NOMEM;
        tsp_status st = pl->append(p, b, len, &first, &last, err, errlen);
        free(b);
        if (st) return st;
    }
    tsp_status st = pl->roll(p, err, errlen);
    return st ? st : pl->wait_uploaded(p, 30000, err, errlen);
}

static int g_nobj;
static int count_cb(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    (void)sb;
    (void)f;
    if (type == FTW_F && strstr(path, "/t/") && !strstr(path, "/.tmp/")) g_nobj++;
    return 0;
}

static int bucket_objects(void)
{
    g_nobj = 0;
    nftw(g_bucket, count_cb, 16, FTW_PHYS);
    return g_nobj;
}

static int exists(const char *name)
{
    char path[800];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", g_data, name);
    return stat(path, &sb) == 0;
}

TT_TEST(deletes_local_only)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl && TSP_HAS(pl, topic_delete_local));
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_partition *p0 = NULL, *p1 = NULL, *o = NULL;
    TT_OKE(open_engine(&eng, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t", 0, TSP_PART_CREATE, &p0, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t", 1, TSP_PART_CREATE, &p1, err, sizeof err), err);
    TT_CHECK_OKE(pl->partition_open(eng, "t-1", 0, TSP_PART_CREATE, &o, err, sizeof err), err);
    TT_CHECK_OKE(fill(p0, err, sizeof err), err);
    tsp_offsets before = {.struct_size = sizeof before};
    TT_CHECK_OKE(pl->offsets(p0, &before), err);
    int nobj = bucket_objects();
    TT_CHECK_MSG(nobj > 0 && before.remote_end_offset > 0, "nothing tiered (%d objects)", nobj);
    int32_t n = -1;
    TT_CHECK_EQ_INT(pl->topic_delete_local(eng, "t", &n, err, sizeof err), TSP_E_INVAL);
    TT_CHECK_MSG(strstr(err, "is open") != NULL, "message: %s", err);
    TT_CHECK(exists("t-0") && exists("t-1"));
    pl->engine_close(eng);
    eng = NULL;

    TT_CHECK_OKE(open_engine(&eng, err, sizeof err), err);
    TT_CHECK_OKE(pl->topic_delete_local(eng, "t", &n, err, sizeof err), err);
    TT_CHECK_EQ_INT(n, 2);
    TT_CHECK(!exists("t-0") && !exists("t-1"));
    TT_CHECK_MSG(exists("t-1-0"), "topic t-1's partition went with topic t");
    TT_CHECK_EQ_INT(bucket_objects(), nobj);
    TT_CHECK_OKE(pl->topic_delete_local(eng, "t", &n, err, sizeof err), err); /* none left */
    TT_CHECK_EQ_INT(n, 0);
    /* The bucket still holds the partition: an open recovers it. */
    TT_CHECK_OKE(pl->partition_open(eng, "t", 0, 0, &p0, err, sizeof err), err);
    tsp_offsets after = {.struct_size = sizeof after};
    TT_CHECK_OKE(pl->offsets(p0, &after), err);
    TT_CHECK_EQ_INT(after.remote_end_offset, before.remote_end_offset);
    TT_CHECK_EQ_INT(pl->topic_delete_local(eng, "bad/name", &n, err, sizeof err), TSP_E_INVAL);
done:
    pl->engine_close(eng);
}

int main(int argc, char **argv)
{
    int rc = host_init(argc, argv, "test_plugin_delete_local", "delete-local");
    if (rc) return rc;
    snprintf(g_data, sizeof g_data, "%s/data", g_dir);
    snprintf(g_bucket, sizeof g_bucket, "%s/bucket", g_dir);
    TT_RUN(deletes_local_only);
    return host_finish();
}
