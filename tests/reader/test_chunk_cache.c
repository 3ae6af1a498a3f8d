/*
 * test_chunk_cache.c — unit tests of the disk chunk cache
 * (reader/chunk_cache.c): hits, misses, LRU eviction under a cap, adoption
 * after restart, single-flight, verification and refetch, retries, the RAM
 * layer, forgetting an object, reads of only the batches served (and disk
 * rot caught on them), and concurrent gets and reads under a small cap.
 * Objects, store and fixture: reader_test.h.
 */
#include "reader_test.h"

/* ------------------------------------------------------------ cache tests */

TT_TEST(cache_miss_then_hit)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    TT_ASSERT(m->chunk_count >= 3);
    ts_chunk *ch = NULL;
    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, 1, &ch, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    ts_chunk_release(ch);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.misses, 1);
    TT_ASSERT_EQ_INT(s.hits, 0);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(s.fetched_bytes, m->chunks[1].stored_len);
    TT_ASSERT_EQ_INT(s.bytes, file_bytes(&fx.lg.segs[0], 1));
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 1));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));

    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, 1, &ch, fx.err, sizeof(fx.err)), fx.err);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    TT_ASSERT_EQ_INT(gets(&fx), 1); /* served from disk */
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 1);
    /* A chunk stays valid while held, even when its file goes away. */
    ts_chunk_cache_forget_object(fx.cache, m->object_key);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    TT_ASSERT(chunk_is(ch, &fx.lg.segs[0], 1));
    ts_chunk_release(ch);
    /* Out-of-range index is refused, nothing fetched. */
    ch = NULL;
    TT_ASSERT_EQ_INT(ts_chunk_cache_get(fx.cache, &fx.cs->base, m, m->chunk_count, &ch, fx.err,
                                        sizeof(fx.err)),
                     TS_E_INVAL);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    fx_close(&fx);
}

TT_TEST(cache_lru_eviction_order)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    const ts_segment_meta *m = &fx.lg.segs[0].meta;
    uint64_t f = file_bytes(&fx.lg.segs[0], 0);
    TT_ASSERT_EQ_INT(file_bytes(&fx.lg.segs[0], 1), f);
    TT_ASSERT_EQ_INT(file_bytes(&fx.lg.segs[0], 2), f);
    ts_reader_destroy(fx.rd);
    ts_chunk_cache_destroy(fx.cache);
    /* Room for two chunk files, not three. */
    TT_OKE(ts_chunk_cache_create(fx.cache_dir, 2 * f + f / 2, &fx.cache, fx.err, sizeof(fx.err)),
           fx.err);
    ts_chunk_cache_set_memory(fx.cache, 0);
    TT_OK(ts_reader_create(&fx.cs->base, fx.cache, 1, 0, &fx.rd, NULL, 0));

    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A */
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* B */
    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A again: now B is least recent */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_OKE(get_release(&fx, 0, 2), fx.err); /* C evicts B */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.evictions, 1);
    TT_ASSERT_EQ_INT(s.files, 2);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 0));
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 1));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(ts_fs_du(fx.cache_dir) <= 2 * f + f / 2);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_OKE(get_release(&fx, 0, 0), fx.err); /* A: hit */
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* B: miss, evicts C (A was just used) */
    TT_ASSERT_EQ_INT(gets(&fx), 4);
    TT_ASSERT(!ts_chunk_cache_has(fx.cache, m->object_key, 2));
    TT_ASSERT(ts_chunk_cache_has(fx.cache, m->object_key, 0));
    TT_ASSERT_EQ_INT(stats(fx.cache).evictions, 2);
    fx_close(&fx);
}

TT_TEST(cache_cap_never_exceeded)
{
    fixture fx;
    const uint64_t cap = 3000;
    FX_OPEN(fx, cap, 1, 0);
    /* Every chunk of every segment, several passes in a scrambled order. */
    int total = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int s = 0; s < fx.lg.nsegs; s++) {
            uint32_t n = fx.lg.segs[s].meta.chunk_count;
            for (uint32_t k = 0; k < n; k++) {
                uint32_t i = (k * 7 + (uint32_t)pass) % n;
                TT_OKE(get_release(&fx, s, i), fx.err);
                uint64_t du = ts_fs_du(fx.cache_dir);
                TT_ASSERT_MSG(du <= cap, "cache dir holds %llu bytes, cap %llu",
                              (unsigned long long)du, (unsigned long long)cap);
                TT_ASSERT_EQ_INT(stats(fx.cache).bytes, du);
                total++;
            }
        }
    }
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT(s.evictions > 0);
    TT_ASSERT_EQ_INT(s.hits + s.misses, total);
    fx_close(&fx);
}

TT_TEST(cache_chunk_larger_than_cap_served_not_kept)
{
    fixture fx;
    FX_OPEN(fx, 100, 1, 0); /* smaller than any chunk */
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 0);
    TT_ASSERT_EQ_INT(s.bytes, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    fx_close(&fx);
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    utimensat(AT_FDCWD, path, ts, 0);
}

/* Path of the single file in dir that is not in `known` (NUL-separated). */
static int newest_file(const char *dir, char *known, size_t known_len, char *out, size_t outlen)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    int found = -1;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (strstr(known, de->d_name)) continue;
        snprintf(out, outlen, "%s/%s", dir, de->d_name);
        size_t kl = strlen(known);
        snprintf(known + kl, known_len - kl, "%s,", de->d_name);
        found = 0;
        break;
    }
    closedir(d);
    return found;
}

TT_TEST(cache_adopt_on_restart)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    uint64_t f = file_bytes(&fx.lg.segs[0], 0);
    char known[2048] = "", pa[1024], pb[1024], pc[1024];
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pa, sizeof(pa)) == 0);
    TT_OKE(get_release(&fx, 0, 1), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pb, sizeof(pb)) == 0);
    TT_OKE(get_release(&fx, 0, 2), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), pc, sizeof(pc)) == 0);
    /* Make the LRU order explicit: B oldest, then A, then C. */
    time_t now = time(NULL);
    set_mtime(pb, now - 300);
    set_mtime(pa, now - 200);
    set_mtime(pc, now - 100);
    /* Debris a crash can leave: a temp file and a torn chunk file. */
    char junk[1100];
    snprintf(junk, sizeof(junk), "%s.tmp-0123456789abcdef", pa);
    TT_OK(ts_fs_write_atomic(junk, "partial", 7, NULL, 0));
    snprintf(junk, sizeof(junk), "%s/%064d.chunk", fx.cache_dir, 7);
    TT_OK(ts_fs_write_atomic(junk, "TSC1torn", 8, NULL, 0));
    ts_reader_destroy(fx.rd);
    fx.rd = NULL;
    ts_chunk_cache_destroy(fx.cache);

    /* Restart with room for two: the oldest (B) goes, the debris too. */
    TT_OKE(ts_chunk_cache_create(fx.cache_dir, 2 * f + f / 2, &fx.cache, fx.err, sizeof(fx.err)),
           fx.err);
    ts_chunk_cache_set_memory(fx.cache, 0);
    TT_OK(ts_reader_create(&fx.cs->base, fx.cache, 1, 0, &fx.rd, NULL, 0));
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 2);
    TT_ASSERT_EQ_INT(s.bytes, 2 * f);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 2 * f);
    TT_ASSERT(access(pb, F_OK) != 0);
    TT_ASSERT(access(pa, F_OK) == 0 && access(pc, F_OK) == 0);
    int g = gets(&fx);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 2), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g); /* both adopted files served */
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 2);
    TT_OKE(get_release(&fx, 0, 1), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g + 1);
    fx_close(&fx);
}

typedef struct sf_arg {
    fixture *fx;
    int seg;
    uint32_t idx;
    ts_status st;
    ts_chunk *ch;
    char err[512];
} sf_arg;

static void *sf_thread(void *p)
{
    sf_arg *a = p;
    a->st = ts_chunk_cache_get(a->fx->cache, &a->fx->cs->base, &a->fx->lg.segs[a->seg].meta,
                               a->idx, &a->ch, a->err, sizeof(a->err));
    return NULL;
}

/* Waits (bounded, as a safety net only) until the cache counts n misses. */
static int wait_misses(ts_chunk_cache *c, uint64_t n)
{
    for (int i = 0; i < 20000; i++) {
        if (stats(c).misses >= n) return 0;
        usleep(1000);
    }
    return -1;
}

TT_TEST(cache_single_flight)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    enum { N = 8 };
    sf_arg a[N];
    pthread_t th[N];
    cstore_gate(fx.cs, 1); /* the one GET waits until every thread has asked */
    for (int i = 0; i < N; i++) {
        a[i] = (sf_arg){.fx = &fx, .seg = 1, .idx = 2};
        pthread_create(&th[i], NULL, sf_thread, &a[i]);
    }
    int all_in = wait_misses(fx.cache, N);
    cstore_gate(fx.cs, 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    TT_ASSERT_MSG(all_in == 0, "threads never all reached the cache");
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    for (int i = 0; i < N; i++) {
        TT_ASSERT_MSG(a[i].st == TS_OK, "thread %d: %s", i, a[i].err);
        TT_ASSERT(chunk_is(a[i].ch, &fx.lg.segs[1], 2));
        ts_chunk_release(a[i].ch);
    }
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 1);

    /* Waiters share the leader's error too. */
    ts_chunk_cache_set_retry(fx.cache, 10000, 1, 5, 1);
    atomic_store(&fx.cs->fail_next, 1);
    cstore_gate(fx.cs, 1);
    uint64_t base = stats(fx.cache).misses;
    for (int i = 0; i < N; i++) {
        a[i] = (sf_arg){.fx = &fx, .seg = 1, .idx = 3};
        pthread_create(&th[i], NULL, sf_thread, &a[i]);
    }
    all_in = wait_misses(fx.cache, base + N);
    cstore_gate(fx.cs, 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    TT_ASSERT(all_in == 0);
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    for (int i = 0; i < N; i++) {
        TT_ASSERT_EQ_INT(a[i].st, TS_E_REMOTE_RETRIABLE);
        TT_ASSERT(a[i].ch == NULL);
        TT_ASSERT_MSG(strstr(a[i].err, "chunk 3") && strstr(a[i].err, fx.lg.segs[1].meta.object_key),
                      "message: %s", a[i].err);
    }
    fx_close(&fx);
}

TT_TEST(cache_flipped_stored_byte_is_checksum_error)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    /* The same object with one byte of chunk 1's frame flipped, under its
     * own key, described by the good object's manifest entry. */
    seg_build *sb = &fx.lg.segs[0];
    ts_segment_meta bad;
    TT_OK(ts_segment_meta_copy(&bad, &sb->meta));
    snprintf(bad.object_key, sizeof(bad.object_key), "t/0/segments/bad-object.log.zst");
    uint8_t *obj = malloc(sb->obj_len);
    memcpy(obj, sb->obj, sb->obj_len);
    obj[bad.chunks[1].stored_pos + bad.chunks[1].stored_len / 2] ^= 0x10;
    TT_OK(ts_objstore_put(fx.fs, bad.object_key, obj, sb->obj_len, 0, NULL, 0));
    free(obj);

    ts_chunk *ch = (ts_chunk *)1;
    ts_status st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &bad, 1, &ch, fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CHECKSUM);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_MSG(strstr(fx.err, bad.object_key) && strstr(fx.err, "chunk 1"), "message: %s",
                  fx.err);
    char crcs[2][16];
    snprintf(crcs[0], sizeof(crcs[0]), "0x%08x", bad.chunks[1].stored_crc32c);
    TT_ASSERT_MSG(strstr(fx.err, crcs[0]), "message lacks the expected CRC: %s", fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 3); /* retried: a damaged download may be transient */
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.verify_failures, 3);
    TT_ASSERT_EQ_INT(s.files, 0);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), 0);
    /* The other chunks of that object are intact and served. */
    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, &bad, 0, &ch, fx.err, sizeof(fx.err)),
           fx.err);
    TT_ASSERT(chunk_is(ch, sb, 0));
    ts_chunk_release(ch);
    ts_segment_meta_clear(&bad);
    fx_close(&fx);
}

/* The raw CRC is joined from the batches' CRCs on entry (no second pass
 * over the chunk): a manifest CRC that does not match the decompressed
 * bytes is still refused, and bytes past the last whole batch (a damaged
 * tail the uploader never writes) still count in it, exactly. */
TT_TEST(cache_raw_crc_joined_from_batches)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    seg_build *sb = &fx.lg.segs[0];
    /* 1. The good object under a manifest entry whose raw CRC is off. */
    ts_segment_meta bad;
    TT_OK(ts_segment_meta_copy(&bad, &sb->meta));
    bad.chunks[1].raw_crc32c ^= 0x00400000u;
    ts_chunk *ch = (ts_chunk *)1;
    ts_status st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &bad, 1, &ch, fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CHECKSUM);
    TT_ASSERT(ch == NULL);
    char want[16];
    snprintf(want, sizeof(want), "0x%08x", sb->meta.chunks[1].raw_crc32c);
    TT_ASSERT_MSG(strstr(fx.err, "raw bytes") && strstr(fx.err, want), "message: %s", fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 0);
    ts_segment_meta_clear(&bad);
    uint64_t rot = stats(fx.cache).verify_failures;

    /* 2. Chunk 0's batches plus 37 bytes that are no batch, as one frame
     * with the CRC of all of it: accepted (the CRC holds), its batches
     * served, the tail reported as corrupt, nothing counted as rot. */
    const ts_chunk_meta *c0 = &sb->meta.chunks[0];
    seg_build t;
    memset(&t, 0, sizeof(t));
    append(&t.raw, &t.raw_len, sb->raw + c0->raw_pos, c0->raw_len);
    uint8_t junk[37];
    for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 7 + 1);
    append(&t.raw, &t.raw_len, junk, sizeof(junk));
    add_chunk(&t, 0, t.raw_len, c0->first_offset, c0->max_timestamp);
    add_seek_table(&t);
    t.meta.base_offset = sb->meta.base_offset;
    t.meta.last_offset = sb->meta.last_offset;
    snprintf(t.meta.object_key, sizeof(t.meta.object_key), "t/0/segments/tail-object.log.zst");
    TT_OK(ts_objstore_put(fx.fs, t.meta.object_key, t.obj, t.obj_len, 0, NULL, 0));
    TT_OKE(ts_chunk_cache_get(fx.cache, &fx.cs->base, &t.meta, 0, &ch, fx.err, sizeof(fx.err)),
           fx.err);
    TT_ASSERT_EQ_INT(ch->len, t.raw_len);
    TT_ASSERT(memcmp(ch->data, t.raw, t.raw_len) == 0);
    ts_chunk_release(ch);
    ts_buf out;
    ts_buf_init(&out, 0);
    ts_chunk_read rq = {.want = c0->first_offset, .stop_offset = INT64_MAX, .max_bytes = 1 << 30};
    st = ts_chunk_cache_read(fx.cache, &fx.cs->base, &t.meta, 0, &rq, &out, fx.err,
                             sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_CORRUPT);
    TT_ASSERT_EQ_INT(out.len, c0->raw_len);
    TT_ASSERT(memcmp(out.data, t.raw, c0->raw_len) == 0);
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, rot);
    ts_buf_free(&out);
    free(t.raw);
    free(t.obj);
    ts_segment_meta_clear(&t.meta);
    fx_close(&fx);
}

TT_TEST(cache_retries_transient_failures)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    atomic_store(&fx.cs->fail_next, 1);     /* attempt 1: 503 */
    atomic_store(&fx.cs->truncate_next, 1); /* attempt 2: body cut short */
    TT_OKE(get_release(&fx, 0, 1), fx.err); /* attempt 3 succeeds */
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, 1);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 1);

    /* Out of attempts: the final error names object and chunk. */
    atomic_store(&fx.cs->fail_next, 5);
    ts_chunk *ch = NULL;
    ts_status st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &fx.lg.segs[0].meta, 2, &ch, fx.err,
                                      sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_REMOTE_RETRIABLE);
    TT_ASSERT(ch == NULL);
    TT_ASSERT_MSG(strstr(fx.err, "chunk 2") && strstr(fx.err, fx.lg.segs[0].meta.object_key) &&
                      strstr(fx.err, "3 attempts"),
                  "message: %s", fx.err);
    atomic_store(&fx.cs->fail_next, 0);
    /* A missing object is not retried, and is not TS_E_NOT_FOUND (which
     * callers read as "no segment covers this offset" and skip): the
     * manifest names it, so its absence is data loss (issue 7 item 1). */
    ts_segment_meta gone;
    TT_OK(ts_segment_meta_copy(&gone, &fx.lg.segs[0].meta));
    snprintf(gone.object_key, sizeof(gone.object_key), "t/0/segments/deleted.log.zst");
    int g = gets(&fx);
    st = ts_chunk_cache_get(fx.cache, &fx.cs->base, &gone, 0, &ch, fx.err, sizeof(fx.err));
    TT_ASSERT_EQ_INT(st, TS_E_OBJECT_MISSING);
    TT_ASSERT_MSG(strstr(fx.err, "t/0/segments/deleted.log.zst") && strstr(fx.err, "missing"),
                  "message: %s", fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), g + 1);
    ts_segment_meta_clear(&gone);
    fx_close(&fx);
}

TT_TEST(cache_damaged_file_refetched)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    char known[256] = "", path[1024];
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), path, sizeof(path)) == 0);
    /* Flip one body byte on disk (bit rot, a torn write). */
    FILE *f = fopen(path, "r+b");
    TT_ASSERT(f != NULL);
    fseek(f, -10, SEEK_END);
    int c = fgetc(f);
    fseek(f, -10, SEEK_END);
    fputc(c ^ 0x01, f);
    fclose(f);
    TT_OKE(get_release(&fx, 1, 0), fx.err); /* correct bytes, refetched */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.verify_failures, 1);
    TT_ASSERT_EQ_INT(s.hits, 0);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_OKE(get_release(&fx, 1, 0), fx.err); /* the rewritten file is good */
    TT_ASSERT_EQ_INT(gets(&fx), 2);
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 1);

    /* A file truncated on disk is dropped the same way. */
    TT_ASSERT(truncate(path, 30) == 0);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 3);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), stats(fx.cache).bytes);
    fx_close(&fx);
}

/* The RAM layer: a repeated get of one chunk is served from memory (no GET,
 * no file read), a damaged cache file does not matter while the verified
 * copy is in RAM, and forgetting the object drops it. */
TT_TEST(cache_ram_layer_serves_repeats)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    ts_chunk_cache_set_memory(fx.cache, 8 << 20);
    char known[256] = "", path[1024];
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), path, sizeof(path)) == 0);
    TT_ASSERT(truncate(path, 30) == 0); /* would fail verification if read */
    for (int i = 0; i < 5; i++) TT_OKE(get_release(&fx, 1, 0), fx.err);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT_EQ_INT(s.hits, 5);
    TT_ASSERT_EQ_INT(s.verify_failures, 0);
    ts_chunk_cache_forget_object(fx.cache, fx.lg.segs[1].meta.object_key);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(gets(&fx), 2); /* forgotten: fetched again */
    /* A cap smaller than a chunk keeps nothing in RAM. */
    ts_chunk_cache_set_memory(fx.cache, 16);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_OKE(get_release(&fx, 0, 0), fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).hits, 6); /* the second came from the disk file */
    fx_close(&fx);
}

TT_TEST(cache_forget_object)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    for (uint32_t i = 0; i < 3; i++) TT_OKE(get_release(&fx, 0, i), fx.err);
    TT_OKE(get_release(&fx, 1, 0), fx.err);
    TT_ASSERT_EQ_INT(stats(fx.cache).files, 4);
    ts_chunk_cache_forget_object(fx.cache, fx.lg.segs[0].meta.object_key);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.files, 1);
    TT_ASSERT_EQ_INT(s.bytes, file_bytes(&fx.lg.segs[1], 0));
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    TT_ASSERT(ts_chunk_cache_has(fx.cache, fx.lg.segs[1].meta.object_key, 0));
    fx_close(&fx);
}

/* ---------------------------------------------- reads of only what is served */

/* Batches of chunk idx of seg (index of its first in lg, count). */
static int chunk_batches(const tlog *lg, int seg, uint32_t idx, int *first)
{
    const seg_build *sb = &lg->segs[seg];
    const ts_chunk_meta *cm = &sb->meta.chunks[idx];
    *first = batch_at(lg, cm->first_offset);
    return count_batches(sb->raw + cm->raw_pos, cm->raw_len);
}

static ts_status read_chunk(fixture *fx, int seg, uint32_t idx, ts_chunk_read *rq, ts_buf *out)
{
    return ts_chunk_cache_read(fx->cache, &fx->cs->base, &fx->lg.segs[seg].meta, idx, rq, out,
                               fx->err, sizeof(fx->err));
}

/* A read inside a cached chunk reads the file's header and batch index (or
 * nothing of them once the index is in RAM) and the batches it returns,
 * never the rest of the chunk; max_bytes, stop_offset and the buffer's cap
 * stop it as ts_reader_read documents. */
TT_TEST(cache_read_costs_what_it_serves)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    tlog *lg = &fx.lg;
    const seg_build *sb = &lg->segs[0];
    int b0, nb = chunk_batches(lg, 0, 1, &b0);
    TT_ASSERT(nb >= 2);
    const gbatch *g = &lg->b[b0 + 1];
    ts_buf out;
    ts_buf_init(&out, 0);

    /* A miss: fetched, served from the fetched bytes. */
    ts_chunk_read rq = {.want = g->base + 1, .stop_offset = INT64_MAX, .max_bytes = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, b0 + 1, 1));
    TT_ASSERT_EQ_INT(rq.nbatches, 1);
    TT_ASSERT_EQ_INT(rq.added, g->size);
    TT_ASSERT_EQ_INT(rq.want, g->last + 1);
    TT_ASSERT(rq.full);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT_EQ_INT(stats(fx.cache).read_bytes, 0);

    /* A hit, index not in RAM (the fixture keeps no RAM layer): header and
     * index, then that one batch. */
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, b0 + 1, 1));
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT_EQ_INT(s.hits, 1);
    uint64_t hdr = 34 + strlen(sb->meta.object_key) + 20 * (uint64_t)nb;
    TT_ASSERT_EQ_INT(s.read_bytes, hdr + g->size);
    TT_ASSERT(s.read_bytes < file_bytes(sb, 1));

    /* With RAM for indexes, the first read keeps the index, and the next
     * reads exactly the bytes it serves. */
    ts_chunk_cache_set_memory(fx.cache, 1 << 20);
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    uint64_t r0 = stats(fx.cache).read_bytes;
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, b0 + 1, 1));
    TT_ASSERT_EQ_INT(stats(fx.cache).read_bytes - r0, g->size);

    /* From the chunk's start, no limit: all its batches, and the read goes
     * on to the next chunk (not full). */
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = sb->meta.chunks[1].first_offset, .stop_offset = INT64_MAX,
                         .max_bytes = SIZE_MAX};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, b0, nb));
    TT_ASSERT(!rq.full);
    TT_ASSERT_EQ_INT(rq.want, sb->meta.chunks[2].first_offset);
    /* Continuing a read: stop_offset at the second batch stops after the
     * first; a read that already has a batch does not take one over its
     * budget. */
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = lg->b[b0].base, .stop_offset = g->base, .max_bytes = SIZE_MAX};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, b0, 1));
    TT_ASSERT(rq.full);
    ts_buf_reset(&out);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = 100,
                         .added = 99, .nbatches = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &out), fx.err);
    TT_ASSERT_EQ_INT(out.len, 0);
    TT_ASSERT(rq.full);
    /* A buffer too small for the first batch: an error, nothing appended;
     * with a batch already in the read, it just stops. */
    ts_buf small;
    ts_buf_init(&small, 10);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = SIZE_MAX};
    TT_ASSERT_EQ_INT(read_chunk(&fx, 0, 1, &rq, &small), TS_E_NOMEM);
    TT_ASSERT_EQ_INT(small.len, 0);
    TT_ASSERT_EQ_INT(rq.nbatches, 0);
    rq = (ts_chunk_read){.want = g->base, .stop_offset = INT64_MAX, .max_bytes = SIZE_MAX,
                         .nbatches = 1};
    TT_OKE(read_chunk(&fx, 0, 1, &rq, &small), fx.err);
    TT_ASSERT(rq.full);
    TT_ASSERT_EQ_INT(small.len, 0);
    ts_buf_free(&small);
    /* Bad arguments are refused, nothing fetched. */
    TT_ASSERT_EQ_INT(ts_chunk_cache_read(fx.cache, &fx.cs->base, &sb->meta, 1, NULL, &out, NULL,
                                         0),
                     TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_chunk_cache_read(fx.cache, &fx.cs->base, &sb->meta,
                                         sb->meta.chunk_count, &rq, &out, NULL, 0),
                     TS_E_INVAL);
    TT_ASSERT_EQ_INT(gets(&fx), 1);
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, 0);
    ts_buf_free(&out);
    fx_close(&fx);
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    if (!f) abort();
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

/* Disk rot after a chunk was verified: a byte flipped in a cached file under
 * a reader, in a batch's records (its Kafka CRC-32C), in its
 * partitionLeaderEpoch (which Kafka's CRC does not cover: the index's CRC of
 * the first 21 bytes does) and in the batch index itself. Each time the
 * read still returns the right batches, the cache counts a verify failure,
 * drops the file and refetches the chunk once. */
TT_TEST(cache_read_catches_rot_under_a_reader)
{
    fixture fx;
    FX_OPEN(fx, 1 << 20, 1, 0);
    tlog *lg = &fx.lg;
    const seg_build *sb = &lg->segs[1];
    TT_ASSERT(sb->meta.chunk_count >= 3);
    /* Cache the segment's first three chunks, noting their files. */
    char known[1024] = "", path[3][1024];
    for (uint32_t i = 0; i < 3; i++) {
        TT_OKE(get_release(&fx, 1, i), fx.err);
        TT_ASSERT(newest_file(fx.cache_dir, known, sizeof(known), path[i], sizeof(path[i])) == 0);
    }
    int g0 = gets(&fx);
    ts_buf out;
    ts_buf_init(&out, 0);
    /* Indexes in RAM: a warm pass loads them, so the body checks alone must
     * catch what follows. */
    ts_chunk_cache_set_memory(fx.cache, 1 << 20);
    int first = batch_at(lg, sb->meta.base_offset);
    TT_OKE(ts_reader_read(fx.rd, fx.idx, sb->meta.base_offset, SIZE_MAX, INT64_MAX, &out, fx.err,
                          sizeof(fx.err)),
           fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, first, lg->nb - first));
    int g1 = gets(&fx);
    TT_ASSERT(g1 > g0); /* the chunks not cached above */
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, 0);

    struct { uint32_t chunk; int which; long at; } cases[3] = {
        {0, 1, 80}, /* the 2nd batch of chunk 0, inside its records */
        {1, 0, 12}, /* the 1st batch of chunk 1: partitionLeaderEpoch */
        {2, -1, 0}, /* chunk 2: a byte of the batch index (read with the index not in RAM) */
    };
    for (int k = 0; k < 3; k++) {
        uint32_t ci = cases[k].chunk;
        int b0, nb = chunk_batches(lg, 1, ci, &b0);
        long hdr = 34 + (long)strlen(sb->meta.object_key) + 20L * nb;
        long off;
        if (cases[k].which >= 0) {
            const gbatch *g = &lg->b[b0 + cases[k].which];
            off = hdr + (long)(g->pos - sb->meta.chunks[ci].raw_pos) + cases[k].at;
            TT_ASSERT(cases[k].at < (long)g->size);
        } else {
            ts_chunk_cache_set_memory(fx.cache, 0);
            off = hdr - 4 - 20 + 9; /* the last entry's position field */
        }
        flip_byte(path[ci], off);
        ts_buf_reset(&out);
        int64_t from = sb->meta.chunks[ci].first_offset;
        TT_OKE(ts_reader_read(fx.rd, fx.idx, from, SIZE_MAX, INT64_MAX, &out, fx.err,
                              sizeof(fx.err)),
               fx.err);
        TT_ASSERT_MSG(same_batches(lg, out.data, out.len, b0, lg->nb - b0), "case %d", k);
        TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, k + 1);
        TT_ASSERT_EQ_INT(gets(&fx), g1 + k + 1);
        TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), stats(fx.cache).bytes);
    }
    /* The refetched files are good: another pass fetches nothing. */
    ts_buf_reset(&out);
    TT_OKE(ts_reader_read(fx.rd, fx.idx, sb->meta.base_offset, SIZE_MAX, INT64_MAX, &out, fx.err,
                          sizeof(fx.err)),
           fx.err);
    TT_ASSERT(same_batches(lg, out.data, out.len, first, lg->nb - first));
    TT_ASSERT_EQ_INT(gets(&fx), g1 + 3);
    TT_ASSERT_EQ_INT(stats(fx.cache).verify_failures, 3);
    ts_buf_free(&out);
    fx_close(&fx);
}

typedef struct stress_arg {
    fixture *fx;
    int seed;
    int failures;
} stress_arg;

static void *stress_thread(void *p)
{
    stress_arg *a = p;
    unsigned x = (unsigned)a->seed * 2654435761u + 1;
    char err[512];
    for (int i = 0; i < 150; i++) {
        x = x * 1103515245u + 12345u;
        int s = (int)((x >> 8) % (unsigned)a->fx->lg.nsegs);
        uint32_t n = a->fx->lg.segs[s].meta.chunk_count;
        uint32_t idx = (x >> 16) % n;
        const seg_build *sb = &a->fx->lg.segs[s];
        if (i % 2) { /* the read path: the chunk's batches, whole */
            ts_buf out;
            ts_buf_init(&out, 0);
            ts_chunk_read rq = {.want = sb->meta.chunks[idx].first_offset,
                                .stop_offset = INT64_MAX, .max_bytes = SIZE_MAX};
            ts_status st = ts_chunk_cache_read(a->fx->cache, &a->fx->cs->base, &sb->meta, idx,
                                               &rq, &out, err, sizeof(err));
            const ts_chunk_meta *cm = &sb->meta.chunks[idx];
            if (st != TS_OK || out.len != cm->raw_len ||
                memcmp(out.data, sb->raw + cm->raw_pos, cm->raw_len))
                a->failures++;
            ts_buf_free(&out);
        } else {
            ts_chunk *ch = NULL;
            ts_status st = ts_chunk_cache_get(a->fx->cache, &a->fx->cs->base, &sb->meta, idx, &ch,
                                              err, sizeof(err));
            if (st != TS_OK || !chunk_is(ch, sb, idx)) a->failures++;
            ts_chunk_release(ch);
        }
        if (i % 50 == 25) ts_chunk_cache_forget_object(a->fx->cache, a->fx->lg.segs[s].meta.object_key);
    }
    return NULL;
}

TT_TEST(cache_concurrent_gets_small_cap)
{
    fixture fx;
    const uint64_t cap = 4000;
    FX_OPEN(fx, cap, 1, 0);
    enum { N = 6 };
    pthread_t th[N];
    stress_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (stress_arg){.fx = &fx, .seed = i + 1};
        pthread_create(&th[i], NULL, stress_thread, &a[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) TT_ASSERT_EQ_INT(a[i].failures, 0);
    ts_chunk_cache_stats s = stats(fx.cache);
    TT_ASSERT_EQ_INT(s.hits + s.misses, N * 150);
    TT_ASSERT(s.bytes <= cap);
    TT_ASSERT_EQ_INT(ts_fs_du(fx.cache_dir), s.bytes);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(cache_miss_then_hit);
    TT_RUN(cache_lru_eviction_order);
    TT_RUN(cache_cap_never_exceeded);
    TT_RUN(cache_chunk_larger_than_cap_served_not_kept);
    TT_RUN(cache_adopt_on_restart);
    TT_RUN(cache_single_flight);
    TT_RUN(cache_flipped_stored_byte_is_checksum_error);
    TT_RUN(cache_raw_crc_joined_from_batches);
    TT_RUN(cache_retries_transient_failures);
    TT_RUN(cache_damaged_file_refetched);
    TT_RUN(cache_ram_layer_serves_repeats);
    TT_RUN(cache_forget_object);
    TT_RUN(cache_read_costs_what_it_serves);
    TT_RUN(cache_read_catches_rot_under_a_reader);
    TT_RUN(cache_concurrent_gets_small_cap);
    return tt_summary();
}
