/*
 * bench_index.c — the shadow index at months of retention (issue 9): for
 * synthetic partitions of 1k, 10k and 100k remote segments at the default
 * shape (1 GiB segments, 4 MiB chunks: 256 chunks each), on a file:// bucket
 * in a temp directory:
 *
 *   - bytes PUT per commit and time per commit (averaged over one full tail
 *     cycle of remote.log.manifest.head.segments commits, so each run
 *     includes exactly one piece spill);
 *   - resident bytes per segment (ts_index_stats: entries, pieces, side
 *     tables, tail details);
 *   - open time from local state (head + pieces files) and from the bucket
 *     alone (LIST, GET head, GET every piece), with the GET count;
 *   - lookup time by offset and by timestamp (random probes).
 *
 * Each figure is printed next to the previous size's, so growth shows as a
 * ratio (goals: bytes and time per commit <= 1.2x from 1k to 100k, <= 64 B
 * per segment, open <= 1 s at 100k, lookup <= 2 us).
 *
 * Why it is shaped so: committing 100k segments one by one would take hours
 * of fsyncs, so the history is laid down directly as the pieces and the head
 * a long-lived partition would have (rendered by index/'s own writer, so
 * the open paths parse exactly what the engine writes); only the measured
 * commits go through ts_index_add. For reference, at the smallest size it
 * also prints what one format-1 commit (the whole manifest with every chunk
 * table, today's format before this change) would have PUT.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "index/manifest_json.h"
#include "objstore/objstore.h"

#define SEG_BYTES (1ull << 30)
#define CHUNKS 256u
#define OFFSETS_PER_SEG 1000000
#define HEAD_SEGMENTS 1000

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Segment i of the synthetic partition (its table lives in the object). */
static void synth(ts_segment_meta *s, int64_t i)
{
    memset(s, 0, sizeof(*s));
    s->base_offset = i * OFFSETS_PER_SEG;
    s->last_offset = s->base_offset + OFFSETS_PER_SEG - 1;
    s->first_timestamp = 1700000000000LL + i * 60000;
    s->max_timestamp = s->first_timestamp + 59999;
    s->size_bytes = SEG_BYTES;
    s->chunk_count = CHUNKS;
    s->chunk_table_len = TS_CHUNK_TABLE_LEN(CHUNKS);
    s->chunk_table_pos = 400ull << 20; /* ~40% compression */
    s->stored_bytes = s->chunk_table_pos + s->chunk_table_len + 8 * CHUNKS + 17;
    s->upload_time_ms = s->max_timestamp + 5000;
    s->segment_crc32c = (uint32_t)(i * 2654435761u);
    char att[17];
    snprintf(att, sizeof(att), "%016" PRIx64, xorshift());
    ts_index_segment_key("orders", 0, s->base_offset, att, s->object_key, sizeof(s->object_key));
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_index: %s: %s\n", what, err);
    exit(1);
}

static void put_file(ts_objstore *os, const char *local, const char *key, const char *data,
                     size_t len)
{
    char err[512];
    if (ts_fs_write_atomic(local, data, len, err, sizeof(err))) die(local, err);
    if (ts_objstore_put(os, key, data, len, TS_PUT_IF_NONE_MATCH, err, sizeof(err))) die(key, err);
}

/* Lays down n segments as pieces of HEAD_SEGMENTS plus a half-full tail,
 * locally under dir and in the bucket. Returns the head version. */
static uint64_t lay_down(ts_objstore *os, const char *dir, int64_t n)
{
    char err[512], path[1200], pdir[1100];
    snprintf(pdir, sizeof(pdir), "%s/manifest-pieces", dir);
    if (ts_fs_mkdirs(pdir, err, sizeof(err))) die(pdir, err);
    int64_t tail = HEAD_SEGMENTS / 2;
    if (tail > n) tail = n;
    int64_t inpieces = n - tail;
    size_t np = (size_t)(inpieces / HEAD_SEGMENTS);
    tail = n - (int64_t)np * HEAD_SEGMENTS;
    ts_manifest_piece *pieces = calloc(np + 1, sizeof(*pieces));
    ts_segment_meta *segs = calloc(HEAD_SEGMENTS + (size_t)tail + 1, sizeof(*segs));
    uint64_t version = (uint64_t)n; /* one head version per commit so far */
    for (size_t p = 0; p < np; p++) {
        for (int j = 0; j < HEAD_SEGMENTS; j++) synth(&segs[j], (int64_t)p * HEAD_SEGMENTS + j);
        ts_manifest_doc d;
        memset(&d, 0, sizeof(d));
        d.format = TS_MANIFEST_FORMAT_2;
        d.kind = TS_MANIFEST_PIECE;
        snprintf(d.topic, sizeof(d.topic), "orders");
        d.piece_base = segs[0].base_offset;
        d.piece_last = segs[HEAD_SEGMENTS - 1].last_offset;
        d.segs = segs;
        d.n = HEAD_SEGMENTS;
        char *json;
        size_t len;
        if (ts_manifest_render(&d, &json, &len, err, sizeof(err))) die("render piece", err);
        ts_manifest_piece *pc = &pieces[p];
        char id[17];
        snprintf(id, sizeof(id), "%016" PRIx64, xorshift());
        ts_index_piece_key("orders", 0, d.piece_base, d.piece_last, id, pc->key, sizeof(pc->key));
        pc->base_offset = d.piece_base;
        pc->last_offset = d.piece_last;
        pc->min_timestamp = segs[0].first_timestamp;
        pc->max_timestamp = segs[HEAD_SEGMENTS - 1].max_timestamp;
        pc->count = HEAD_SEGMENTS;
        for (int j = 0; j < HEAD_SEGMENTS; j++) {
            pc->raw_bytes += segs[j].size_bytes;
            pc->stored_bytes += segs[j].stored_bytes;
        }
        pc->bytes = len;
        pc->crc32c = ts_crc32c(0, json, len);
        pc->added_version = version;
        snprintf(path, sizeof(path), "%s/%s", pdir, strrchr(pc->key, '/') + 1);
        put_file(os, path, pc->key, json, len);
        free(json);
    }
    for (int64_t j = 0; j < tail; j++) synth(&segs[j], (int64_t)np * HEAD_SEGMENTS + j);
    uint64_t *added = calloc((size_t)tail + 1, sizeof(*added));
    for (int64_t j = 0; j < tail; j++) added[j] = version;
    ts_manifest_doc h;
    memset(&h, 0, sizeof(h));
    h.format = TS_MANIFEST_FORMAT_2;
    h.kind = TS_MANIFEST_HEAD;
    snprintf(h.topic, sizeof(h.topic), "orders");
    h.version = version;
    h.leader_epoch = -1;
    h.pieces = pieces;
    h.npieces = np;
    h.segs = segs;
    h.n = (size_t)tail;
    char *json;
    size_t len;
    char key[TS_INDEX_KEY_MAX];
    ts_index_manifest_key("orders", 0, version, key, sizeof(key));
    if (ts_manifest_render(&h, &json, &len, err, sizeof(err))) die("render head", err);
    if (ts_objstore_put(os, key, json, len, TS_PUT_IF_NONE_MATCH, err, sizeof(err))) die(key, err);
    free(json);
    h.local = 1;
    h.remote_version = version;
    h.added_versions = added;
    if (ts_manifest_render(&h, &json, &len, err, sizeof(err))) die("render local head", err);
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);
    if (ts_fs_write_atomic(path, json, len, err, sizeof(err))) die(path, err);
    free(json);
    free(added);
    free(segs);
    free(pieces);
    return version;
}

typedef struct fig {
    int64_t n;
    double put_bytes, commit_ms, resident, entry_b, part_kb, open_local_s, open_bucket_s, lookup_ns, lookup_t_ns;
    uint64_t open_gets;
    double f1_bytes;
} fig;

static void run(const char *root, int64_t n, fig *f)
{
    char err[512], bucket[600], url[700], dir[600], dir2[600];
    memset(f, 0, sizeof(*f));
    f->n = n;
    snprintf(bucket, sizeof(bucket), "%s/bucket-%" PRId64, root, n);
    snprintf(dir, sizeof(dir), "%s/data-%" PRId64 "/orders-0", root, n); /* a log.dirs layout */
    snprintf(dir2, sizeof(dir2), "%s/cold-%" PRId64, root, n);
    snprintf(url, sizeof(url), "file://%s", bucket);
    ts_fs_mkdirs(bucket, NULL, 0);
    ts_objstore *os;
    if (ts_objstore_open(url, NULL, &os, err, sizeof(err))) die(url, err);
    lay_down(os, dir, n);

    /* Open from local state. */
    ts_index *idx;
    double t0 = now_s();
    if (ts_index_create("orders", 0, dir, os, &idx, err, sizeof(err)) ||
        ts_index_load_local(idx, err, sizeof(err)))
        die("open from local", err);
    f->open_local_s = now_s() - t0;
    ts_index_stats st;
    ts_index_stats_get(idx, &st);
    if ((int64_t)st.entries != n) die("open from local", "wrong entry count");
    f->resident = (double)st.resident_bytes / (double)n;
    f->entry_b = (double)st.entry_bytes / (double)n;
    f->part_kb = (double)st.partition_bytes / 1024.0;

    /* Lookups: random offsets inside the history, and random times. */
    const int probes = 1000000;
    ts_segment_meta m;
    t0 = now_s();
    for (int i = 0; i < probes; i++) {
        int64_t off = (int64_t)(xorshift() % (uint64_t)(n * OFFSETS_PER_SEG));
        if (ts_index_lookup_offset(idx, off, &m) || m.base_offset > off) die("lookup", "miss");
    }
    f->lookup_ns = (now_s() - t0) / probes * 1e9;
    t0 = now_s();
    for (int i = 0; i < probes; i++) {
        int64_t ts = 1700000000000LL + (int64_t)(xorshift() % (uint64_t)(n * 60000));
        if (ts_index_lookup_time(idx, ts, &m)) die("lookup_time", "miss");
    }
    f->lookup_t_ns = (now_s() - t0) / probes * 1e9;

    /* Commits: one full tail cycle, so exactly one piece spill is included. */
    ts_index_set_head_segments(idx, HEAD_SEGMENTS);
    uint64_t put0 = st.put_bytes;
    t0 = now_s();
    for (int i = 0; i < HEAD_SEGMENTS; i++) {
        ts_segment_meta s;
        synth(&s, n + i);
        if (ts_index_add(idx, &s, err, sizeof(err))) die("commit", err);
    }
    double dt = now_s() - t0;
    ts_index_stats_get(idx, &st);
    f->put_bytes = (double)(st.put_bytes - put0) / HEAD_SEGMENTS;
    f->commit_ms = dt / HEAD_SEGMENTS * 1e3;
    ts_index_destroy(idx);

    /* Open from the bucket alone (an empty data directory). */
    t0 = now_s();
    if (ts_index_create("orders", 0, dir2, os, &idx, err, sizeof(err)) ||
        ts_index_load_remote(idx, err, sizeof(err)))
        die("open from the bucket", err);
    f->open_bucket_s = now_s() - t0;
    ts_index_stats_get(idx, &st);
    f->open_gets = st.gets;
    if ((int64_t)st.entries != n + HEAD_SEGMENTS) die("open from the bucket", "wrong count");
    ts_index_destroy(idx);

    /* Reference: one format-1 commit of this history (all chunk tables). */
    if (n <= 1000) {
        ts_segment_meta *segs = calloc((size_t)n, sizeof(*segs));
        for (int64_t i = 0; i < n; i++) {
            synth(&segs[i], i);
            segs[i].chunk_table_len = 0;
            segs[i].chunks = calloc(CHUNKS, sizeof(ts_chunk_meta));
            for (uint32_t c = 0; c < CHUNKS; c++) {
                ts_chunk_meta *cm = &segs[i].chunks[c];
                cm->raw_pos = (uint64_t)c * (SEG_BYTES / CHUNKS);
                cm->raw_len = (uint32_t)(SEG_BYTES / CHUNKS);
                cm->stored_pos = (uint64_t)c * 1638400;
                cm->stored_len = 1638400;
                cm->first_offset = segs[i].base_offset + c * (OFFSETS_PER_SEG / CHUNKS);
                cm->max_timestamp = segs[i].first_timestamp + c * 234;
                cm->stored_crc32c = (uint32_t)xorshift();
                cm->raw_crc32c = (uint32_t)xorshift();
            }
        }
        char *json;
        size_t len;
        if (ts_manifest_to_json("orders", 0, 1, 0, segs, (size_t)n, &json, &len) == TS_OK) {
            f->f1_bytes = (double)len;
            free(json);
        }
        ts_index_snapshot_free(segs, (size_t)n);
    }
    ts_objstore_destroy(os);
    ts_fs_rmtree(dir2, NULL, 0);
    if (getenv("BENCH_INDEX_KEEP")) { /* for `tierctl placement` against it */
        char cfg[1400];
        snprintf(cfg, sizeof(cfg), "%s/tierctl-%" PRId64 ".properties", root, n);
        FILE *fp = fopen(cfg, "w");
        if (fp) {
            fprintf(fp, "log.dirs=%s/data-%" PRId64 "\nremote.storage.url=%s\n", root, n, url);
            fclose(fp);
        }
        printf("  (kept: tierctl -c %s placement orders 0)\n", cfg);
        return;
    }
    ts_fs_rmtree(bucket, NULL, 0);
    char data[700];
    snprintf(data, sizeof(data), "%s/data-%" PRId64, root, n);
    ts_fs_rmtree(data, NULL, 0);
}

static void line(const char *what, const char *unit, double v, double prev, int has_prev)
{
    if (has_prev && prev > 0)
        printf("  %-34s %12.2f %-6s  (%.2fx the previous size)\n", what, v, unit, v / prev);
    else
        printf("  %-34s %12.2f %s\n", what, v, unit);
}

int main(int argc, char **argv)
{
    int64_t sizes[8] = {1000, 10000, 100000};
    int nsizes = 3;
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 8; i++) sizes[nsizes++] = atoll(argv[i]);
    }
    char root[] = "/tmp/bench-index-XXXXXX";
    if (!mkdtemp(root)) die("mkdtemp", "failed");
    printf("bench_index: %d B resident entry; %u chunks per 1 GiB segment; head holds %d entries; "
           "file:// bucket in %s\n",
           (int)sizeof(ts_index_entry), CHUNKS, HEAD_SEGMENTS, root);
    fig prev = {0};
    for (int i = 0; i < nsizes; i++) {
        fig f;
        run(root, sizes[i], &f);
        int hp = i > 0;
        printf("%" PRId64 " segments per partition:\n", f.n);
        line("bytes PUT per commit", "B", f.put_bytes, prev.put_bytes, hp);
        line("time per commit", "ms", f.commit_ms, prev.commit_ms, hp);
        line("resident bytes per segment (all)", "B", f.resident, prev.resident, hp);
        line("  of which the entry array", "B", f.entry_b, prev.entry_b, hp);
        line("  + per partition (tail, pieces)", "KiB", f.part_kb, prev.part_kb, hp);
        line("open from local state", "s", f.open_local_s, prev.open_local_s, hp);
        line("open from the bucket alone", "s", f.open_bucket_s, prev.open_bucket_s, hp);
        printf("  %-34s %12" PRIu64 "        (+1 LIST)\n", "GETs of a cold open", f.open_gets);
        line("lookup by offset", "ns", f.lookup_ns, prev.lookup_ns, hp);
        line("lookup by timestamp", "ns", f.lookup_t_ns, prev.lookup_t_ns, hp);
        if (f.f1_bytes > 0)
            printf("  %-34s %12.0f B       (format 1: the whole manifest, every chunk table)\n",
                   "format-1 commit of this history", f.f1_bytes);
        fflush(stdout);
        prev = f;
    }
    if (!getenv("BENCH_INDEX_KEEP")) ts_fs_rmtree(root, NULL, 0);
    return 0;
}
