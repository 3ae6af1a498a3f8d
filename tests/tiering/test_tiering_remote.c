/*
 * test_tiering_remote.c — unit tests of the engine with its remote tier (tiering/ +
 * uploader/ + reader/): the uploaded object, cold reads and what they
 * verify, missing objects and manifest gaps, recovery from the bucket (a
 * corrupt local manifest, an empty data dir, many pieces, a format-1
 * bucket), backpressure, time rolls, the orphan sweep, the read-only
 * placement view. Object store: a file:// bucket in a temp dir (and the
 * fault injector).
 */
#include "tiering_test.h"

/* Returns the path of the first segment object in the fs bucket. */
static int find_object(const char *bucket, const char *topic, int part, char *out, size_t len)
{
    char dir[900];
    snprintf(dir, sizeof(dir), "%s/%s/%d/segments", bucket, topic, part);
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    int found = -1;
    char best[300] = "~";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log.zst") && strcmp(de->d_name, best) < 0) {
            snprintf(best, sizeof(best), "%s", de->d_name);
            found = 0;
        }
    closedir(d);
    if (!found) snprintf(out, len, "%s/%s", dir, best);
    return found;
}

TT_TEST(uploaded_object_is_plain_zstd_of_the_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "300000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "z", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 60, 20, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char obj[1200], cmd[3000], out[800], seg[800];
    TT_CHECK(find_object(e.bucket, "z", 0, obj, sizeof(obj)) == 0);
    snprintf(out, sizeof(out), "%s/decompressed", e.dir);
    snprintf(seg, sizeof(seg), "%s/z-0/%020d.log", e.data, 0);
    snprintf(cmd, sizeof(cmd), "zstd -q -d -c '%s' > '%s' && cmp -s '%s' '%s'", obj, out, out, seg);
    TT_CHECK_MSG(system(cmd) == 0, "zstd -d of %s differs from %s", obj, seg);
    /* Several chunks (65536-byte chunks of a ~270 KB segment). */
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_CHECK(n >= 1 && rows[0].location == TS_LOC_LOCAL_REMOTE && rows[0].stored_bytes > 0);
    TT_CHECK(rows[0].stored_bytes < rows[0].size_bytes); /* compressible data got smaller */
    free(rows);
done:
    env_done(&e);
}

static void count_verified(const ts_segment_info *s, ts_status st, const char *msg, void *o)
{
    (void)s;
    (void)msg;
    if (st == TS_OK) (*(int *)o)++;
}

TT_TEST(cold_reads_verify_and_name_the_object)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "100000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "c", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 50, 10, 300, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_start_offset, 0);
    TT_CHECK(o.local_start_offset > 0); /* old segments left local disk */
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 500);
    env_close(&e);
    e.eng = NULL;
    int vrows = 0;
    TT_CHECK_OKE(ts_verify_offline(e.cfg, "c", 0, count_verified, &vrows, e.err, sizeof(e.err)), e.err);
    TT_CHECK(vrows >= 2);
    ts_offset_location loc;
    TT_CHECK_OKE(ts_locate_offline(e.cfg, "c", 0, 5, &loc, e.err, sizeof(e.err)), e.err);
    TT_CHECK(loc.segment.location == TS_LOC_REMOTE && loc.chunk_index == 0 && loc.chunk_count >= 1);
    TT_CHECK(loc.segment.base_offset == 0 && loc.segment.object_key[0]);
    TT_CHECK_EQ_INT(ts_locate_offline(e.cfg, "c", 0, 100000, &loc, e.err, sizeof(e.err)),
                     TS_E_OFFSET_OUT_OF_RANGE);
    /* Flip one byte inside the first frame; empty the cache. */
    char obj[1200], cache[800];
    TT_CHECK(find_object(e.bucket, "c", 0, obj, sizeof(obj)) == 0);
    int fd = open(obj, O_RDWR);
    uint8_t byte;
    TT_CHECK(pread(fd, &byte, 1, 100) == 1);
    byte ^= 0x10;
    TT_CHECK(pwrite(fd, &byte, 1, 100) == 1);
    close(fd);
    snprintf(cache, sizeof(cache), "%s/.chunk-cache", e.data);
    ts_fs_rmtree(cache, NULL, 0);
    /* tierctl verify's engine: the damaged segment fails, naming its object. */
    vrows = 0;
    TT_CHECK_EQ_INT(ts_verify_offline(e.cfg, "c", 0, count_verified, &vrows, e.err, sizeof(e.err)),
                     TS_E_CHECKSUM);
    TT_CHECK(strstr(e.err, "c/0/segments/") != NULL);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "c", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    uint8_t *d = NULL;
    size_t len = 0;
    ts_status st = ts_partition_read(p, 0, 10000, &d, &len, e.err, sizeof(e.err));
    TT_CHECK_EQ_INT(st, TS_E_CHECKSUM);
    TT_CHECK(d == NULL && len == 0);
    const char *key = strstr(obj, "c/0/segments/");
    TT_CHECK_MSG(key && strstr(e.err, key), "error does not name the object: %s", e.err);
done:
    env_done(&e);
}

/* Issue 7 item 1: an object the manifest names and the bucket lacks is
 * corruption. Reads of its offsets fail with TS_E_OBJECT_MISSING naming the
 * object (before, a 404 read as a retention gap and the read skipped to the
 * first local offset); offsets outside it are served; verify and placement
 * say so. */
TT_TEST(missing_object_is_an_error_not_a_gap)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "m", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_segment_info *rows = NULL;
    size_t n = 0;
    TT_CHECK_OKE(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)), e.err);
    /* the hole: the second of at least three remote-only segments */
    TT_CHECK_MSG(n >= 4 && rows[0].location == TS_LOC_REMOTE &&
                      rows[1].location == TS_LOC_REMOTE && rows[2].location == TS_LOC_REMOTE,
                  "want >= 3 remote-only segments, have %zu rows", n);
    ts_segment_info hole = rows[1], after = rows[2];
    free(rows);
    env_close(&e);
    e.eng = NULL;

    /* Lose the object (the cache too, as on another broker or after a
     * cache wipe), restart. */
    ts_objstore *os;
    TT_CHECK_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_objstore_delete(os, hole.object_key, e.err, sizeof(e.err)), e.err);
    ts_objstore_destroy(os);
    char cache[800];
    snprintf(cache, sizeof(cache), "%s/.chunk-cache", e.data);
    ts_fs_rmtree(cache, NULL, 0);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "m", 0, 0, &p, e.err, sizeof(e.err)), e.err);

    int64_t probes[] = {hole.base_offset, hole.base_offset + 5, hole.last_offset};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint8_t *d = NULL;
        size_t len = 0;
        e.err[0] = '\0';
        ts_status st = ts_partition_read(p, probes[i], 100000, &d, &len, e.err, sizeof(e.err));
        TT_CHECK_MSG(st == TS_E_OBJECT_MISSING, "read at %lld: %s (%zu bytes) %s",
                      (long long)probes[i], ts_status_name(st), len, e.err);
        TT_CHECK(d == NULL && len == 0);
        TT_CHECK_MSG(strstr(e.err, hole.object_key), "error does not name the object: %s", e.err);
    }
    /* A reader from 0 gets the first segment, then the error: never a
     * batch at or beyond the hole. */
    int64_t off = 0;
    ts_status st = TS_OK;
    for (int guard = 0; guard < 1000 && st == TS_OK; guard++) {
        uint8_t *d = NULL;
        size_t len = 0;
        st = ts_partition_read(p, off, 4096, &d, &len, e.err, sizeof(e.err));
        if (st) break;
        TT_CHECK(len > 0);
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            TT_CHECK_OKE(ts_batch_validate(d + pos, len - pos, 1 << 24, &h, e.err, sizeof(e.err)), e.err);
            TT_CHECK_MSG(h.base_offset == off && h.base_offset < hole.base_offset,
                          "batch %lld served, want %lld (hole at %lld)", (long long)h.base_offset,
                          (long long)off, (long long)hole.base_offset);
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
    TT_CHECK_EQ_INT(st, TS_E_OBJECT_MISSING);
    TT_CHECK_EQ_INT(off, hole.base_offset);
    /* Offsets outside the hole are fine: the next remote segment, local data. */
    TT_CHECK_EQ_INT(read_all(p, after.base_offset, e.err, sizeof(e.err)), 800 - after.base_offset);
    /* The partition's own view still lists it (it is in the manifest). */
    env_close(&e);
    e.eng = NULL;

    /* tierctl's engine: verify fails naming the object; placement marks it. */
    int vrows = 0;
    TT_CHECK_EQ_INT(ts_verify_offline(e.cfg, "m", 0, count_verified, &vrows, e.err, sizeof(e.err)),
                     TS_E_OBJECT_MISSING);
    TT_CHECK_MSG(strstr(e.err, hole.object_key), "verify: %s", e.err);
    TT_CHECK_OKE(ts_placement_offline(e.cfg, "m", 0, &rows, &n, e.err, sizeof(e.err)), e.err);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        int is_hole = rows[i].base_offset == hole.base_offset;
        TT_CHECK_MSG((rows[i].location == TS_LOC_MISSING) == is_hole, "row %lld is %s",
                      (long long)rows[i].base_offset, ts_location_name(rows[i].location));
        missing += is_hole;
    }
    TT_CHECK_EQ_INT(missing, 1);
    TT_CHECK_STR(ts_location_name(TS_LOC_MISSING), "missing");
    free(rows);
done:
    env_done(&e);
}

/* Names of "<dir>/remote_manifest.json.corrupt-*" files into first (count returned). */
static int count_set_aside(const char *dir, char *first, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "remote_manifest.json.corrupt-", 29)) {
            if (!n++) snprintf(first, len, "%s/%s", dir, de->d_name);
        }
    closedir(d);
    return n;
}

/* Issue 7 item 13: a corrupt local manifest no longer keeps its partition
 * closed when the bucket holds a good copy: the file is set aside (kept),
 * the manifest recovered from the bucket, every offset readable. With no
 * usable copy in the bucket either, that partition fails to open with a
 * clear error and nothing changes, while other partitions open. */
TT_TEST(corrupt_local_manifest_recovers_from_the_bucket)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *topics[] = {"cm", "fine"};
    for (int t = 0; t < 2; t++) {
        ts_partition *p;
        TT_CHECK_OKE(ts_partition_open(e.eng, topics[t], 0, 1, &p, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    }
    env_close(&e);
    e.eng = NULL;

    char dir[800], path[900], aside[1200];
    snprintf(dir, sizeof(dir), "%s/cm-0", e.data);
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);
    static const char junk[] = "{\"format\":1,\"topic\":\"cm\",\"parti";
    TT_CHECK_OK(ts_fs_write_atomic(path, junk, sizeof(junk) - 1, e.err, sizeof(e.err)));
    /* tierctl's read-only view shows the bucket's manifest meanwhile. */
    ts_segment_info *rows = NULL;
    size_t nrows = 0;
    TT_CHECK_OKE(ts_placement_offline(e.cfg, "cm", 0, &rows, &nrows, e.err, sizeof(e.err)), e.err);
    TT_CHECK(nrows >= 2 && rows[0].location == TS_LOC_REMOTE && rows[0].base_offset == 0);
    free(rows);

    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK_EQ_INT(o.log_start_offset, 0);
    TT_CHECK_EQ_INT(o.log_end_offset, 800);
    TT_CHECK(o.local_start_offset > 0); /* the early offsets are remote-only */
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
    TT_CHECK_OKE(append_n(p, 1, 10, 200, 5000, e.err, sizeof(e.err)), e.err);
    /* The damaged file is kept, byte for byte, beside a rebuilt one. */
    TT_CHECK_EQ_INT(count_set_aside(dir, aside, sizeof(aside)), 1);
    uint8_t *txt = NULL;
    size_t tl = 0;
    TT_CHECK_OKE(ts_fs_read_all(aside, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_CHECK(tl == sizeof(junk) - 1 && !memcmp(txt, junk, tl));
    free(txt);
    env_close(&e);
    e.eng = NULL;
    TT_CHECK_OKE(env_open(&e), e.err); /* the rebuilt local file loads as it is */
    TT_CHECK_OKE(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 810);
    env_close(&e);
    e.eng = NULL;

    /* Now the bucket's copies are damaged too. */
    TT_CHECK_OK(ts_fs_write_atomic(path, junk, sizeof(junk) - 1, e.err, sizeof(e.err)));
    char mdir[900];
    snprintf(mdir, sizeof(mdir), "%s/cm/0/manifests", e.bucket);
    DIR *d = opendir(mdir);
    TT_CHECK(d != NULL);
    struct dirent *de;
    int damaged = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char mp[1200];
        snprintf(mp, sizeof(mp), "%s/%s", mdir, de->d_name);
        TT_CHECK_OK(ts_fs_write_atomic(mp, "{}", 2, e.err, sizeof(e.err)));
        damaged++;
    }
    closedir(d);
    TT_CHECK(damaged >= 1);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(ts_partition_open(e.eng, "cm", 0, 0, &p, e.err, sizeof(e.err)), TS_E_CORRUPT);
    TT_CHECK_MSG(strstr(e.err, "remote_manifest.json") && strstr(e.err, "cm/0/manifests/") &&
                      strstr(e.err, "nothing was changed"),
                  "message: %s", e.err);
    TT_CHECK_OKE(ts_fs_read_all(path, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_CHECK(tl == sizeof(junk) - 1 && !memcmp(txt, junk, tl)); /* left where it was */
    free(txt);
    TT_CHECK_EQ_INT(count_set_aside(dir, aside, sizeof(aside)), 1); /* only the first one */
    TT_CHECK_OKE(ts_partition_open(e.eng, "fine", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
done:
    env_done(&e);
}

/* Offsets no manifest entry covers are a gap: a read there continues at the
 * next offset holding data, which is the next remote segment when there is
 * one (before, always the first local offset, skipping remote data). */
TT_TEST(gap_in_the_manifest_skips_to_the_next_remote_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", "log.local.retention.bytes", "0",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "g", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 80, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    env_close(&e);
    e.eng = NULL;
    /* Drop the second entry from the local manifest (a hole no entry covers). */
    char path[900];
    snprintf(path, sizeof(path), "%s/g-0/remote_manifest.json", e.data);
    uint8_t *txt = NULL;
    size_t tl = 0;
    TT_CHECK_OKE(ts_fs_read_all(path, 1 << 24, &txt, &tl, e.err, sizeof(e.err)), e.err);
    ts_segment_meta *segs = NULL;
    size_t n = 0;
    uint64_t version = 0;
    int64_t lso = 0;
    TT_CHECK_OKE(ts_manifest_from_json((const char *)txt, tl, NULL, 0, NULL, &version, &lso, &segs, &n,
                                 e.err, sizeof(e.err)),
           e.err);
    free(txt);
    TT_CHECK(n >= 3);
    int64_t hole = segs[1].base_offset, next = segs[2].base_offset;
    ts_segment_meta_clear(&segs[1]);
    memmove(&segs[1], &segs[2], (n - 2) * sizeof(*segs));
    char *json = NULL;
    size_t jl = 0;
    TT_CHECK_OK(ts_manifest_to_json("g", 0, version + 1, lso, segs, n - 1, &json, &jl));
    ts_index_snapshot_free(segs, n - 1);
    TT_CHECK_OK(ts_fs_write_atomic(path, json, jl, e.err, sizeof(e.err)));
    free(json);

    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "g", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    TT_CHECK(o.local_start_offset > next);
    uint8_t *d = NULL;
    size_t len = 0;
    TT_CHECK_OKE(ts_partition_read(p, hole + 3, 4096, &d, &len, e.err, sizeof(e.err)), e.err);
    ts_batch_hdr h;
    TT_CHECK(len > 0);
    TT_CHECK_OKE(ts_batch_validate(d, len, 1 << 24, &h, e.err, sizeof(e.err)), e.err);
    TT_CHECK_MSG(h.base_offset == next, "read in the hole at %lld served batch %lld, want %lld",
                  (long long)(hole + 3), (long long)h.base_offset, (long long)next);
    free(d);
done:
    env_done(&e);
}

TT_TEST(recover_everything_from_the_bucket)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    const char *keys[] = {"retention.ms", "segment.bytes"};
    const char *vals[] = {"-1", "60000"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "r", keys, vals, 2, e.err, sizeof(e.err)), e.err);
    const char *bad[] = {"segment.bytes"}, *badv[] = {"lots"};
    TT_CHECK_EQ_INT(ts_topic_set_config(e.eng, "r", bad, badv, 1, e.err, sizeof(e.err)), TS_E_CONFIG);
    TT_CHECK(strstr(e.err, "lots") != NULL);
    for (int part = 0; part < 2; part++) {
        ts_partition *p;
        TT_CHECK_OKE(ts_partition_open(e.eng, "r", part, 1, &p, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(append_n(p, 40, 10, 200, 1000, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    }
    env_close(&e);
    e.eng = NULL;
    /* Lose the whole data directory: the bucket must describe itself. */
    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    int32_t *parts;
    size_t np;
    TT_CHECK_OKE(ts_topic_partitions(e.eng, "r", &parts, &np, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(np, 2);
    free(parts);
    for (int part = 0; part < 2; part++) {
        ts_partition *p;
        TT_CHECK_OKE(ts_partition_open(e.eng, "r", part, 0, &p, e.err, sizeof(e.err)), e.err);
        ts_offsets o;
        ts_partition_offsets(p, &o);
        TT_CHECK_EQ_INT(o.log_end_offset, 400);
        TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 400);
        int64_t off;
        TT_CHECK_OK(ts_partition_offset_for_time(p, 1020, &off, e.err, sizeof(e.err)));
        /* A timestamp that lives only in the bucket: batch 11 holds ts
         * 1011..1020 at offsets 110..119. */
        TT_CHECK_EQ_INT(off, 119);
        int64_t first;
        TT_CHECK_OKE(append_n(p, 1, 10, 200, 5000, e.err, sizeof(e.err)), e.err);
        ts_partition_offsets(p, &o);
        TT_CHECK_EQ_INT(o.log_end_offset, 410);
        (void)first;
    }
    char tc[900];
    snprintf(tc, sizeof(tc), "%s/.topics/r/topic.properties", e.data);
    uint8_t *txt;
    size_t tl;
    TT_CHECK_OKE(ts_fs_read_all(tc, 1 << 20, &txt, &tl, e.err, sizeof(e.err)), e.err);
    TT_CHECK(strstr((char *)txt, "log.segment.bytes=60000") != NULL);
    free(txt);
    ts_partition *none;
    TT_CHECK_EQ_INT(ts_partition_open(e.eng, "nope", 0, 0, &none, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
done:
    env_done(&e);
}

TT_TEST(backpressure_when_uploads_fail)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", "log.local.retention.bytes", "40000",
                                   NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?err_rate=1.0&ops=put,writer&seed=1", e.bucket);
    TT_CHECK_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "bp", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    ts_status st = TS_OK;
    int i;
    for (i = 0; i < 500 && st == TS_OK; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 150, i, i, &len);
        st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err));
        free(b);
    }
    TT_CHECK_EQ_INT(st, TS_E_BACKPRESSURE);
    TT_CHECK(ts_status_is_retriable(st));
    TT_CHECK(strstr(e.err, "log.local.retention.bytes") != NULL);
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/bp-0", e.data);
    uint64_t du = ts_fs_du(dir);
    TT_CHECK_MSG(du <= 40000 + 20000 + 8192, "local bytes %llu over the bound", (unsigned long long)du);
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), (long)(i - 1) * 10); /* nothing lost */
done:
    env_done(&e);
}

TT_TEST(time_based_roll_uploads_idle_segment)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.ms", "50", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "tr", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 3, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    int remote = 0;
    for (int t = 0; t < 500 && !remote; t++) {
        ts_sleep_ms(20);
        ts_segment_info *rows;
        size_t n;
        TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
        remote = n && rows[0].location == TS_LOC_LOCAL_REMOTE;
        free(rows);
    }
    TT_CHECK_MSG(remote, "the idle segment was never rolled and uploaded");
done:
    env_done(&e);
}

TT_TEST(orphan_objects_are_swept)
{
    env e;
    env_init(&e, NULL);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "o", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 5, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    env_close(&e);
    e.eng = NULL;
    /* What a crash between object put and manifest commit leaves behind. */
    ts_objstore *os;
    TT_CHECK_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    const char *orphan = "o/0/segments/00000000000000000010-deadbeefdeadbeef.log.zst";
    TT_CHECK_OKE(ts_objstore_put(os, orphan, "x", 1, 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "o", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    uint64_t sz;
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        ts_sleep_ms(20);
        gone = ts_objstore_head(os, orphan, &sz, e.err, sizeof(e.err)) == TS_E_NOT_FOUND;
    }
    TT_CHECK_MSG(gone, "orphan object was not swept");
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_CHECK(n >= 1 && rows[0].object_key[0]);
    TT_CHECK_OKE(ts_objstore_head(os, rows[0].object_key, &sz, e.err, sizeof(e.err)), e.err); /* kept */
    free(rows);
    ts_objstore_destroy(os);
done:
    env_done(&e);
}

/* Upload progress of the partition: how many closed segments are remote. */
static int remote_closed(ts_partition *p, int *closed)
{
    ts_segment_info *rows;
    size_t n;
    int r = 0;
    *closed = 0;
    if (ts_partition_placement(p, &rows, &n, NULL, 0)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].active) continue;
        (*closed)++;
        if (rows[i].location != TS_LOC_LOCAL) r++;
    }
    free(rows);
    return r;
}

/* Regression (issue 7 #15): a closed segment is uploaded as soon as it
 * closes, and a failed attempt is retried after its backoff, never only on
 * the next periodic tick (here an hour away). */
TT_TEST(rolled_segment_uploads_without_waiting_for_the_tick)
{
    env e;
    env_init(&e, (const char *[]){"remote.log.manager.task.interval.ms", "3600000", NULL});
    char url[800];
    snprintf(url, sizeof(url), "faulty+file://%s?ops=put,writer&fail_next=1", e.bucket);
    TT_CHECK_OKE(ts_config_set(e.cfg, "remote.storage.url", url, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "up", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    for (int seg = 1; seg <= 3; seg++) {
        TT_CHECK_OKE(append_n(p, 5, 2, 50, seg * 10, e.err, sizeof(e.err)), e.err);
        TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err); /* admin roll; size rolls go the same way */
        int closed = 0, remote = 0;
        for (int t = 0; t < 1000; t++) { /* generous: 10 s, the tick is 1 h */
            remote = remote_closed(p, &closed);
            if (remote == closed) break;
            ts_sleep_ms(10);
        }
        TT_CHECK_MSG(remote == seg && closed == seg,
                      "segment %d: %d of %d closed segments uploaded", seg, remote, closed);
    }
done:
    env_done(&e);
}

/* mkdtemp(3) interposed: counts the temporary directories the engine's
 * offline views make (the read-only placement view made one under /tmp to
 * let the index write a manifest it then threw away). */
static atomic_int g_mkdtemps;
char *mkdtemp(char *tmpl)
{
    static char *(*real)(char *);
    if (!real) real = (char *(*)(char *))dlsym(RTLD_NEXT, "mkdtemp");
    atomic_fetch_add(&g_mkdtemps, 1);
    return real(tmpl);
}

/* The read-only placement view of a partition only the bucket holds writes
 * nothing: no temporary directory, no local manifest, no partition dir. */
TT_TEST(offline_placement_writes_nothing)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "50000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "ro", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 20, 10, 200, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    env_close(&e);
    e.eng = NULL;
    char pdir[700];
    snprintf(pdir, sizeof(pdir), "%s/ro-0", e.data);
    TT_CHECK_OK(ts_fs_rmtree(pdir, e.err, sizeof(e.err)));
    int before = atomic_load(&g_mkdtemps);
    ts_segment_info *rows = NULL;
    size_t n = 0;
    TT_CHECK_OKE(ts_placement_offline(e.cfg, "ro", 0, &rows, &n, e.err, sizeof(e.err)), e.err);
    TT_CHECK(n >= 1 && rows[0].location == TS_LOC_REMOTE);
    free(rows);
    TT_CHECK_EQ_INT(atomic_load(&g_mkdtemps) - before, 0);
    struct stat sb;
    TT_CHECK_MSG(stat(pdir, &sb) != 0, "%s was created by a read-only view", pdir);
done:
    env_done(&e);
}

/* ------------------------------------------------------------------------
 * Format-2 manifests at scale (issue 9)
 * ------------------------------------------------------------------------ */

static int count_under_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key;
    (void)size;
    (*(int *)opaque)++;
    return 0;
}

static int count_under(const char *url, const char *prefix)
{
    ts_objstore *os;
    char err[256];
    int n = 0;
    if (ts_objstore_open(url, NULL, &os, err, sizeof(err))) return -1;
    ts_objstore_list(os, prefix, count_under_cb, &n, err, sizeof(err));
    ts_objstore_destroy(os);
    return n;
}

/* Reads from `from` to the end and checks every batch byte for byte against
 * mk_batch(recs, size, k, ts0 + k) (batch k at offset k * recs). Returns the
 * records read or -1 (why in err). */
static long read_check(ts_partition *p, int64_t from, int recs, size_t size, int64_t ts0,
                       char *err, size_t errlen)
{
    int64_t off = from;
    long n = 0;
    for (;;) {
        uint8_t *d;
        size_t len;
        if (ts_partition_read(p, off, 100000, &d, &len, err, errlen)) return -1;
        if (!len) return n;
        for (size_t pos = 0; pos < len;) {
            ts_batch_hdr h;
            if (ts_batch_validate(d + pos, len - pos, 1 << 24, &h, err, errlen)) {
                free(d);
                return -1;
            }
            size_t sz = ts_batch_total_size(&h), glen;
            int k = (int)(h.base_offset / recs);
            uint8_t *g = mk_batch(recs, size, k, ts0 + k, &glen);
            ts_batch_set_base_offset(g, h.base_offset);
            int same = h.base_offset % recs == 0 && glen == sz && !memcmp(g, d + pos, sz) &&
                       h.base_offset <= (off > from ? off : from);
            free(g);
            if (!same) {
                snprintf(err, errlen, "batch at %lld (reading %lld) is not batch %d as written",
                         (long long)h.base_offset, (long long)off, k);
                free(d);
                return -1;
            }
            n += (long)(ts_batch_last_offset(&h) + 1 - (off > h.base_offset ? off : h.base_offset));
            off = ts_batch_last_offset(&h) + 1;
            pos += sz;
        }
        free(d);
    }
}

/* Many more segments than one manifest head holds (3 per head here): every
 * offset reads back cold after a restart, after losing the data directory
 * and after retention removed old pieces; the orphan sweep (which runs on
 * the first ticks) leaves every piece-named object alone. */
TT_TEST(many_pieces_read_back_after_restart_loss_and_retention)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "6000", "log.local.retention.bytes", "0",
                                   "remote.log.manifest.head.segments", "3",
                                   "remote.log.manifest.keep.versions", "1", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "pc", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 300, 10, 50, 1000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 60000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK_MSG(o.local_start_offset >= 2900, "local start %lld", (long long)o.local_start_offset);
    char prefix[TS_INDEX_KEY_MAX];
    ts_index_piece_prefix("pc", 0, prefix, sizeof(prefix));
    int pieces = count_under(e.url, prefix);
    TT_CHECK_MSG(pieces >= 8, "only %d pieces", pieces);
    TT_CHECK_EQ_INT(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)), 3000);
    env_close(&e);
    e.eng = NULL;

    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_sleep_ms(300); /* the background ticks, and the one orphan sweep */
    TT_CHECK_MSG(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)) == 3000, "restart: %s", e.err);
    env_close(&e);
    e.eng = NULL;

    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_sleep_ms(300);
    TT_CHECK_MSG(read_check(p, 0, 10, 50, 1000, e.err, sizeof(e.err)) == 3000, "from the bucket: %s",
                  e.err);
    TT_CHECK_EQ_INT(count_under(e.url, prefix), pieces);

    /* Total retention down to ~1/3: whole pieces leave the head and the
     * bucket; the rest still reads, also from the bucket alone. */
    const char *k[] = {"retention.bytes"}, *v[] = {"70000"};
    TT_CHECK_OKE(ts_topic_set_config(e.eng, "pc", k, v, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    ts_partition_offsets(p, &o);
    int64_t start = o.log_start_offset;
    TT_CHECK_MSG(start >= 1500, "log start %lld", (long long)start);
    int left = count_under(e.url, prefix);
    TT_CHECK_MSG(left < pieces - 3, "%d of %d pieces left", left, pieces);
    TT_CHECK_EQ_INT(read_check(p, start, 10, 50, 1000, e.err, sizeof(e.err)), 3000 - start);
    env_close(&e);
    e.eng = NULL;
    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "pc", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_start_offset, start);
    TT_CHECK_MSG(read_check(p, start, 10, 50, 1000, e.err, sizeof(e.err)) == 3000 - start,
                  "after retention, from the bucket: %s", e.err);
done:
    env_done(&e);
}

/* A bucket written by the format-1 engine (tests/index/fixtures, see
 * make_format1.c there: manifests with inline chunk tables, objects without
 * a chunk-table frame) opens from the bucket alone and reads every offset;
 * the next commit moves it to format 2 (legacy entries into pieces, their
 * chunk tables inline), which again reads everything from the bucket. */
TT_TEST(format1_bucket_reads_and_migrates)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "150000", "log.local.retention.bytes", "0",
                                   "remote.storage.chunk.bytes", "65536",
                                   "remote.log.manifest.head.segments", "3", NULL});
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp -r %s/tests/index/fixtures/format1-bucket/legacy %s/",
             e.bucket, TS_SOURCE_DIR, e.bucket);
    TT_CHECK(system(cmd) == 0);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "legacy", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_end_offset, 7000);
    TT_CHECK_MSG(read_check(p, 0, 10, 200, 1000000, e.err, sizeof(e.err)) == 7000, "format 1: %s",
                  e.err);
    int64_t off = -1;
    TT_CHECK_OK(ts_partition_offset_for_time(p, 1000000 + 350, &off, e.err, sizeof(e.err)));
    TT_CHECK_MSG(off >= 3400 && off <= 3509, "time lookup gave %lld", (long long)off);
    /* The next commit: 100 more batches (k = 700..799), uploaded. */
    for (int i = 700; i < 800; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 200, i, 1000000 + i, &len);
        TT_CHECK_OKE(ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err)), e.err);
        free(b);
    }
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 60000, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
    env_close(&e);
    e.eng = NULL;
    /* The newest head is format 2 and its pieces hold the legacy entries
     * with their chunk tables inline. */
    ts_objstore *os;
    TT_CHECK_OKE(ts_objstore_open(e.url, NULL, &os, e.err, sizeof(e.err)), e.err);
    ts_index *idx;
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s/inspect", e.dir);
    TT_CHECK_OKE(ts_index_create("legacy", 0, tmp, os, &idx, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_index_load_remote(idx, e.err, sizeof(e.err)), e.err);
    ts_index_summary sum;
    ts_index_summary_get(idx, &sum);
    char key[TS_INDEX_KEY_MAX];
    ts_index_manifest_key("legacy", 0, sum.version, key, sizeof(key));
    uint8_t *data;
    size_t dl;
    TT_CHECK_OKE(ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &data, &dl, e.err, sizeof(e.err)), e.err);
    ts_manifest_doc d;
    TT_CHECK_OKE(ts_manifest_parse((const char *)data, dl, 0, &d, e.err, sizeof(e.err)), e.err);
    free(data);
    TT_CHECK_EQ_INT(d.format, 2);
    TT_CHECK_MSG(d.npieces >= 4, "%zu pieces", d.npieces);
    TT_CHECK_OKE(ts_objstore_get(os, d.pieces[0].key, 0, TS_OBJSTORE_TO_END, &data, &dl, e.err,
                           sizeof(e.err)),
           e.err);
    TT_CHECK(strstr((char *)data, "\"chunks\":[") != NULL); /* legacy: inline */
    free(data);
    ts_index_stats ist;
    ts_index_stats_get(idx, &ist);
    TT_CHECK_EQ_INT(ist.legacy_entries, 11);
    ts_manifest_doc_free(&d);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);

    TT_CHECK_OK(ts_fs_rmtree(e.data, NULL, 0));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "legacy", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_MSG(read_check(p, 0, 10, 200, 1000000, e.err, sizeof(e.err)) == 8000,
                  "after migration, from the bucket: %s", e.err);
done:
    env_done(&e);
}
int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "tiering-remote");
    TT_RUN(offline_placement_writes_nothing);
    TT_RUN(uploaded_object_is_plain_zstd_of_the_segment);
    TT_RUN(cold_reads_verify_and_name_the_object);
    TT_RUN(missing_object_is_an_error_not_a_gap);
    TT_RUN(corrupt_local_manifest_recovers_from_the_bucket);
    TT_RUN(gap_in_the_manifest_skips_to_the_next_remote_segment);
    TT_RUN(recover_everything_from_the_bucket);
    TT_RUN(backpressure_when_uploads_fail);
    TT_RUN(time_based_roll_uploads_idle_segment);
    TT_RUN(orphan_objects_are_swept);
    TT_RUN(rolled_segment_uploads_without_waiting_for_the_tick);
    TT_RUN(many_pieces_read_back_after_restart_loss_and_retention);
    TT_RUN(format1_bucket_reads_and_migrates);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
