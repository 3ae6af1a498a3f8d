/*
 * test_plugin_abi.c — loads libtierstore-plugin.so the way a broker does
 * (dlopen + the one entry symbol) and exercises every entry of the table.
 *
 * Only include/tierstore_plugin.h describes the plugin here; tt.h and the
 * batch builder of common/ are test scaffolding. The plugin path comes from
 * `--plugin PATH` (ctest passes the built .so).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/batch.h"
#include "tests/broker-plugin/plugin_host.h"

/* retention_ms: log.retention.ms (NULL: the default), which local retention
 * by time follows too. make_batch's timestamps are of 1970, so under the
 * default (7 days) every segment leaves local disk on the uploader's thread
 * just after its upload commits; a test that compares two snapshots of a
 * partition passes "-1" so that nothing moves between them. */
static tsp_status open_engine(tsp_engine **eng, const char *sub, const char *retention_ms,
                              char *err, size_t errlen)
{
    char data[600], bucket[700], url[720];
    snprintf(data, sizeof data, "%s/%s-data", g_dir, sub);
    snprintf(bucket, sizeof bucket, "%s/%s-bucket", g_dir, sub);
    snprintf(url, sizeof url, "file://%s", bucket);
    tsp_property props[] = {
        {"log.dirs", data},
        {"remote.storage.url", url},
        {"log.segment.bytes", "4096"},
        {"listeners", "PLAINTEXT://127.0.0.1:0"}, /* a host key: skipped */
        {"log.retention.ms", retention_ms},
    };
    size_t n = sizeof props / sizeof props[0] - (retention_ms ? 0 : 1);
    return load()->engine_open(props, n, TSP_OPEN_IGNORE_UNKNOWN, eng, err, errlen);
}

static uint8_t *make_batch(int n, int64_t ts, size_t *len)
{
    const void *vals[64];
    size_t lens[64];
    static const char v[] = "value-bytes-of-a-record";
    for (int i = 0; i < n; i++) {
        vals[i] = v;
        lens[i] = sizeof v - 1;
    }
    uint8_t *b = NULL;
    if (ts_batch_build(vals, lens, n, ts, &b, len) != TS_OK) return NULL;
    return b;
}

TT_TEST(entry_and_exports)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT_EQ_INT(pl->abi_major, TSP_ABI_MAJOR);
    TT_ASSERT_EQ_INT(pl->abi_minor, TSP_ABI_MINOR);
    TT_ASSERT(pl->struct_size >= sizeof(tsp_plugin));
    TT_ASSERT_STR(pl->impl_name, "tierstore");
    TT_ASSERT(TSP_HAS(pl, partition_delete));
    /* Another major is refused with a message. */
    tsp_entry_fn entry = (tsp_entry_fn)dlsym(g_dl, TSP_ENTRY_SYMBOL);
    char err[256] = "";
    TT_ASSERT(entry(TSP_ABI_MAJOR + 1, err, sizeof err) == NULL);
    TT_ASSERT(strstr(err, "ABI") != NULL);
    /* Nothing of the engine leaks out of the .so. */
    TT_ASSERT(dlsym(g_dl, "ts_engine_open") == NULL);
    TT_ASSERT(dlsym(g_dl, "ts_config_create") == NULL);
    TT_ASSERT(dlsym(g_dl, "ts_crc32c") == NULL);
}

TT_TEST(status_helpers)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT_STR(pl->status_name(TSP_OK), "TSP_OK");
    TT_ASSERT_STR(pl->status_name(TSP_E_CORRUPT), "TSP_E_CORRUPT");
    TT_ASSERT_STR(pl->status_name(TSP_E_MSG_TOO_LARGE), "TSP_E_MSG_TOO_LARGE");
    TT_ASSERT_STR(pl->status_name(TSP_E_OBJECT_MISSING), "TSP_E_OBJECT_MISSING");
    TT_ASSERT(!pl->status_is_retriable(TSP_E_OBJECT_MISSING));
    TT_ASSERT_STR(pl->status_name(-999), "TSP_E_UNKNOWN");
    TT_ASSERT(pl->status_is_retriable(TSP_E_BACKPRESSURE));
    TT_ASSERT(pl->status_is_retriable(TSP_E_REMOTE_RETRIABLE));
    TT_ASSERT(!pl->status_is_retriable(TSP_E_CORRUPT));
    TT_ASSERT(!pl->status_is_retriable(-999));
    char *desc = NULL;
    size_t dlen = 0;
    TT_ASSERT_EQ_INT(pl->config_describe(&desc, &dlen), TSP_OK);
    TT_ASSERT(desc && dlen > 0 && strstr(desc, "log.segment.bytes"));
    pl->buffer_free(desc);
    pl->buffer_free(NULL);
}

TT_TEST(open_rejects_bad_config)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    char err[256] = "";
    tsp_engine *eng = NULL;
    tsp_property bad[] = {{"log.segment.bytes", "not-a-number"}};
    TT_ASSERT_EQ_INT(pl->engine_open(bad, 1, 0, &eng, err, sizeof err), TSP_E_CONFIG);
    TT_ASSERT(eng == NULL && strstr(err, "log.segment.bytes"));
    tsp_property unknown[] = {{"no.such.key", "1"}};
    TT_ASSERT_EQ_INT(pl->engine_open(unknown, 1, 0, &eng, err, sizeof err), TSP_E_CONFIG);
    pl->engine_close(NULL);
}

TT_TEST(log_lifecycle)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    char err[512] = "";
    tsp_engine *eng = NULL;
    TT_CHECK_MSG(open_engine(&eng, "life", NULL, err, sizeof err) == TSP_OK, "open: %s", err);

    tsp_partition *p = NULL, *p2 = NULL;
    TT_CHECK_EQ_INT(pl->partition_open(eng, "t1", 0, 0, &p, err, sizeof err), TSP_E_NOT_FOUND);
    TT_CHECK_MSG(pl->partition_open(eng, "t1", 0, TSP_PART_CREATE, &p, err, sizeof err) == TSP_OK,
                 "%s", err);
    TT_CHECK_EQ_INT(pl->partition_open(eng, "t1", 0, 0, &p2, err, sizeof err), TSP_OK);
    TT_CHECK(p == p2);
    TT_CHECK_EQ_INT(pl->partition_open(eng, "t1", 1, TSP_PART_CREATE, &p2, err, sizeof err),
                    TSP_OK);
    tsp_property cfg[] = {{"retention.ms", "-1"}, {"segment.bytes", "4096"}};
    TT_CHECK_MSG(pl->topic_set_config(eng, "t1", cfg, 2, err, sizeof err) == TSP_OK, "%s", err);
    tsp_property badcfg[] = {{"no.such.topic.key", "1"}};
    TT_CHECK_EQ_INT(pl->topic_set_config(eng, "t1", badcfg, 1, err, sizeof err), TSP_E_CONFIG);

    int32_t *parts = NULL;
    size_t nparts = 0;
    TT_CHECK_MSG(pl->topic_partitions(eng, "t1", &parts, &nparts, err, sizeof err) == TSP_OK, "%s",
                 err);
    TT_CHECK_EQ_INT(nparts, 2);
    TT_CHECK(parts[0] == 0 && parts[1] == 1);
    pl->buffer_free(parts);

    /* Append 40 batches of 10 records; timestamps 1000 + 100*i. */
    int64_t first = -1, last = -1;
    for (int i = 0; i < 40; i++) {
        size_t blen = 0;
        uint8_t *b = make_batch(10, 1000 + 100 * i, &blen);
        TT_CHECK(b != NULL);
        tsp_status st = pl->append(p, b, blen, &first, &last, err, sizeof err);
        free(b);
        TT_CHECK_MSG(st == TSP_OK, "append: %s", err);
        TT_CHECK_EQ_INT(first, 10 * i);
        TT_CHECK_EQ_INT(last, 10 * i + 9);
    }
    /* A corrupt batch is refused and nothing is appended. */
    size_t blen = 0;
    uint8_t *b = make_batch(3, 0, &blen);
    b[blen - 1] ^= 0xff;
    TT_CHECK_EQ_INT(pl->append(p, b, blen, NULL, NULL, err, sizeof err), TSP_E_CORRUPT);
    free(b);

    tsp_offsets off = {.struct_size = sizeof off};
    TT_CHECK_EQ_INT(pl->offsets(p, &off), TSP_OK);
    TT_CHECK_EQ_INT(off.log_end_offset, 400);
    TT_CHECK_EQ_INT(off.log_start_offset, 0);

    TT_CHECK_MSG(pl->flush(p, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->roll(p, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->wait_uploaded(p, 30000, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->enforce_retention(p, err, sizeof err) == TSP_OK, "%s", err);

    uint8_t *data = NULL;
    size_t dlen = 0;
    TT_CHECK_MSG(pl->read(p, 155, 1, &data, &dlen, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK(data != NULL && dlen > 61);
    TT_CHECK_EQ_INT((int64_t)ts_rd64(data), 150); /* the batch holding 155 */
    pl->buffer_free(data);
    TT_CHECK_EQ_INT(pl->read(p, 400, 1024, &data, &dlen, err, sizeof err), TSP_OK);
    TT_CHECK(data == NULL && dlen == 0);
    TT_CHECK_EQ_INT(pl->read(p, 401, 1024, &data, &dlen, err, sizeof err),
                    TSP_E_OFFSET_OUT_OF_RANGE);

    int64_t o = -1;
    TT_CHECK_MSG(pl->offset_for_time(p, 1000 + 100 * 7 + 5, &o, err, sizeof err) == TSP_OK, "%s",
                 err);
    /* Record-exact (Kafka's semantics); a batch-granular engine would give 70. */
    TT_CHECK(o == 75 || o == 70);
    TT_CHECK_EQ_INT(pl->offset_for_time(p, 1000000, &o, err, sizeof err), TSP_E_NOT_FOUND);

    tsp_segment_info *rows = NULL;
    size_t nrows = 0, rsz = 0;
    TT_CHECK_MSG(pl->placement(p, &rows, &nrows, &rsz, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK(nrows >= 2 && rsz >= sizeof(tsp_segment_info));
    const tsp_segment_info *r0 = (const tsp_segment_info *)(const void *)rows;
    TT_CHECK_EQ_INT(r0->base_offset, 0);
    TT_CHECK(r0->location == TSP_LOC_REMOTE || r0->location == TSP_LOC_LOCAL_REMOTE);
    TT_CHECK(r0->object_key[0] != 0);
    pl->buffer_free(rows);

    tsp_engine_stats stats = {.struct_size = sizeof stats};
    pl->engine_stats(eng, &stats);
    TT_CHECK(stats.remote_objects >= 1);
    TT_CHECK(stats.uploads_done >= 1);

    TT_CHECK_MSG(pl->partition_delete(eng, "t1", 1, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->topic_partitions(eng, "t1", &parts, &nparts, err, sizeof err) == TSP_OK, "%s",
                 err);
    TT_CHECK_EQ_INT(nparts, 1);
    pl->buffer_free(parts);
    pl->engine_close(eng);

    /* Reopen: the data survives the close. */
    eng = NULL;
    TT_CHECK_MSG(open_engine(&eng, "life", NULL, err, sizeof err) == TSP_OK, "reopen: %s", err);
    TT_CHECK_EQ_INT(pl->partition_open(eng, "t1", 0, 0, &p, err, sizeof err), TSP_OK);
    off.struct_size = sizeof off;
    TT_CHECK_EQ_INT(pl->offsets(p, &off), TSP_OK);
    TT_CHECK_EQ_INT(off.log_end_offset, 400);
    TT_CHECK_EQ_INT(pl->read(p, 0, 1 << 20, &data, &dlen, err, sizeof err), TSP_OK);
    TT_CHECK(data && dlen > 0);
    pl->buffer_free(data);
done: /* a failed check lands here too: the engine's threads stop */
    pl->engine_close(eng);
}

/* Minor 1: partition_stats agrees with the placement (copy bytes are the
 * stored bytes of the remote rows), a short struct_size is honoured, and the
 * engine stats carry the object-store counters. */
TT_TEST(partition_stats)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT(pl->abi_minor >= 1 && TSP_HAS(pl, partition_stats));
    char err[512] = "";
    tsp_engine *eng = NULL;
    TT_CHECK_MSG(open_engine(&eng, "stats", "-1", err, sizeof err) == TSP_OK, "open: %s", err);
    tsp_partition *p = NULL;
    TT_CHECK_MSG(pl->partition_open(eng, "s1", 0, TSP_PART_CREATE, &p, err, sizeof err) == TSP_OK,
                 "%s", err);
    for (int i = 0; i < 40; i++) {
        size_t blen = 0;
        uint8_t *b = make_batch(10, 1000 + 100 * i, &blen);
        TT_CHECK(b != NULL);
        tsp_status st = pl->append(p, b, blen, NULL, NULL, err, sizeof err);
        free(b);
        TT_CHECK_MSG(st == TSP_OK, "append: %s", err);
    }
    TT_CHECK_MSG(pl->roll(p, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->wait_uploaded(p, 30000, err, sizeof err) == TSP_OK, "%s", err);

    tsp_segment_info *rows = NULL;
    size_t nrows = 0, rsz = 0;
    TT_CHECK_MSG(pl->placement(p, &rows, &nrows, &rsz, err, sizeof err) == TSP_OK, "%s", err);
    uint64_t stored = 0, local = 0, nremote = 0, remote_raw = 0;
    int64_t last_tiered = -1;
    for (size_t i = 0; i < nrows; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)(const void *)((char *)rows + i * rsz);
        if (r->location == TSP_LOC_REMOTE || r->location == TSP_LOC_LOCAL_REMOTE) {
            stored += r->stored_bytes;
            remote_raw += r->size_bytes;
            nremote++;
            if (r->last_offset > last_tiered) last_tiered = r->last_offset;
        }
        if (r->location == TSP_LOC_LOCAL || r->location == TSP_LOC_LOCAL_REMOTE)
            local += r->size_bytes;
    }
    pl->buffer_free(rows);
    TT_CHECK(nremote >= 2);
    TT_CHECK(local > 0); /* retention off: the uploaded segments stay on local disk too */

    tsp_partition_stats ps;
    memset(&ps, 0, sizeof ps);
    ps.struct_size = sizeof ps;
    TT_CHECK_MSG(pl->partition_stats(p, &ps, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_EQ_INT(ps.remote_copy_bytes, stored);
    TT_CHECK_EQ_INT(ps.remote_log_bytes, stored);
    TT_CHECK_EQ_INT(ps.remote_segments, nremote);
    TT_CHECK(ps.remote_copy_requests >= nremote);
    TT_CHECK_EQ_INT(ps.remote_copy_errors, 0);
    TT_CHECK_EQ_INT(ps.remote_copy_lag_segments, 0);
    TT_CHECK_EQ_INT(ps.local_log_bytes, local);
    TT_CHECK_EQ_INT(ps.remote_delete_lag_segments, 0);
    /* Appended in minor 2: offsets and the last tiered offset (ListOffsets
     * -5) with the placement they were taken with. */
    tsp_offsets off = {.struct_size = sizeof off};
    TT_CHECK(pl->offsets(p, &off) == TSP_OK);
    TT_CHECK_EQ_INT(ps.log_start_offset, off.log_start_offset);
    TT_CHECK_EQ_INT(ps.local_start_offset, off.local_start_offset);
    TT_CHECK_EQ_INT(ps.log_end_offset, 400);
    TT_CHECK_EQ_INT(ps.last_tiered_offset, last_tiered);
    TT_CHECK_EQ_INT(ps.last_tiered_offset, 399); /* rolled and uploaded: all of it */
    TT_CHECK_EQ_INT(ps.remote_raw_bytes, remote_raw);

    /* A minor-1 host's struct ends at local_segments: nothing past it written. */
    memset(&ps, 0xab, sizeof ps);
    ps.struct_size = (uint32_t)offsetof(tsp_partition_stats, log_start_offset);
    TT_CHECK_MSG(pl->partition_stats(p, &ps, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_EQ_INT(ps.local_log_bytes, local);
    TT_CHECK(ps.log_start_offset == (int64_t)0xababababababababULL);

    /* An older host's shorter struct: fields past its size stay untouched. */
    memset(&ps, 0xab, sizeof ps);
    ps.struct_size = (uint32_t)offsetof(tsp_partition_stats, remote_copy_requests);
    TT_CHECK_MSG(pl->partition_stats(p, &ps, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_EQ_INT(ps.remote_copy_bytes, stored);
    TT_CHECK(ps.remote_copy_requests == 0xababababababababULL);
    ps.struct_size = 0;
    TT_CHECK_EQ_INT(pl->partition_stats(p, &ps, err, sizeof err), TSP_E_INVAL);

    tsp_engine_stats es;
    memset(&es, 0, sizeof es);
    es.struct_size = sizeof es;
    pl->engine_stats(eng, &es);
    TT_CHECK(es.objstore_requests[TSP_OBJSTORE_OP_PUT][TSP_OBJSTORE_OUTCOME_OK] >= nremote);
    TT_CHECK(es.objstore_bytes_put >= stored);
    TT_CHECK_EQ_INT(es.objstore_requests[TSP_OBJSTORE_OP_PUT][TSP_OBJSTORE_OUTCOME_ERROR], 0);
done:
    pl->engine_close(eng);
}

/* Minor 3 through the ABI: config_list rows (their row size, flags and
 * values), topic_alter_config with a NULL value (delete) and replace,
 * engine_alter_config's dynamic-only rule, delete_records. */
TT_TEST(configs_and_records)
{
    const tsp_plugin *pl = load();
    TT_ASSERT(pl != NULL);
    TT_ASSERT(pl->abi_minor >= 3 && TSP_HAS(pl, config_list) && TSP_HAS(pl, topic_alter_config) &&
              TSP_HAS(pl, engine_alter_config) && TSP_HAS(pl, delete_records));
    char err[512] = "";
    tsp_engine *eng = NULL;
    tsp_config_info *rows = NULL;
    size_t n = 0, rsz = 0;
    TT_CHECK_MSG(open_engine(&eng, "configs", NULL, err, sizeof err) == TSP_OK, "open: %s", err);
    tsp_property set[] = {{"retention.ms", "4321"}, {"min.insync.replicas", "2"}};
    TT_CHECK_MSG(pl->topic_alter_config(eng, "c", set, 2, 0, err, sizeof err) == TSP_OK, "%s", err);
    tsp_property del[] = {{"retention.ms", NULL}};
    TT_CHECK_MSG(pl->topic_alter_config(eng, "c", del, 1, 0, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_MSG(pl->config_list(eng, "c", &rows, &n, &rsz, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK(rsz >= sizeof(tsp_config_info) && n > 20);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        const tsp_config_info *r = (const tsp_config_info *)(const void *)((char *)rows + i * rsz);
        if (!strcmp(r->name, "retention.ms"))
            seen += !(r->flags & TSP_CONFIG_TOPIC_SET) && !strcmp(r->synonym, "log.retention.ms");
        if (!strcmp(r->name, "min.insync.replicas"))
            seen += (r->flags & TSP_CONFIG_TOPIC_SET) && !strcmp(r->value, "2");
    }
    TT_CHECK_EQ_INT(seen, 2);
    pl->buffer_free(rows);
    rows = NULL;
    tsp_property ro[] = {{"log.dirs", "/tmp"}};
    TT_CHECK_EQ_INT(pl->engine_alter_config(eng, ro, 1, 0, err, sizeof err), TSP_E_CONFIG);
    tsp_property dyn[] = {{"log.retention.bytes", "12345"}};
    TT_CHECK_MSG(pl->engine_alter_config(eng, dyn, 1, 0, err, sizeof err) == TSP_OK, "%s", err);
    tsp_partition *p = NULL;
    TT_CHECK_MSG(pl->partition_open(eng, "c", 0, TSP_PART_CREATE, &p, err, sizeof err) == TSP_OK,
                 "%s", err);
    size_t blen = 0;
    uint8_t *b = make_batch(10, 100, &blen);
    TT_CHECK(b != NULL);
    tsp_status st = pl->append(p, b, blen, NULL, NULL, err, sizeof err);
    free(b);
    TT_CHECK_MSG(st == TSP_OK, "append: %s", err);
    int64_t low = -1;
    TT_CHECK_MSG(pl->delete_records(p, 4, &low, err, sizeof err) == TSP_OK, "%s", err);
    TT_CHECK_EQ_INT(low, 4);
    TT_CHECK_EQ_INT(pl->delete_records(p, 11, &low, err, sizeof err), TSP_E_OFFSET_OUT_OF_RANGE);
    tsp_offsets o = {.struct_size = sizeof o};
    TT_CHECK(pl->offsets(p, &o) == TSP_OK && o.log_start_offset == 4);
done:
    pl->buffer_free(rows);
    pl->engine_close(eng);
}

int main(int argc, char **argv)
{
    int rc = host_init(argc, argv, "test_plugin_abi", "plugin");
    if (rc) return rc;
    TT_RUN(entry_and_exports);
    TT_RUN(status_helpers);
    TT_RUN(open_rejects_bad_config);
    TT_RUN(log_lifecycle);
    TT_RUN(partition_stats);
    TT_RUN(configs_and_records);
    return host_finish();
}
