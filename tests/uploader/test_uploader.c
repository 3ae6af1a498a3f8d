/*
 * test_uploader.c — one closed segment -> one object -> one manifest entry:
 * chunk boundaries at batches, the seek table, checksums, the commit order,
 * orphan handling, and failures that must leave no manifest entry.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/batch.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "index/index.h"
#include "objstore/faulty.h"
#include "objstore/objstore.h"
#include "tt.h"
#include "uploader/uploader.h"

static char g_root[256];

/* Writes a segment of n batches (varied sizes) and returns its bytes. */
static uint8_t *write_segment(const char *path, int n, size_t *len)
{
    ts_buf b;
    ts_buf_init(&b, 0);
    int64_t off = 100;
    for (int i = 0; i < n; i++) {
        int recs = 1 + i % 7;
        size_t vl = 100 + (size_t)(i * 37 % 3000);
        char **v = malloc((size_t)recs * sizeof(char *));
        size_t *l = malloc((size_t)recs * sizeof(size_t));
        for (int r = 0; r < recs; r++) {
            v[r] = malloc(vl);
            for (size_t j = 0; j < vl; j++) v[r][j] = (char)('A' + (i + r + (int)j / 5) % 20);
            l[r] = vl;
        }
        uint8_t *bb;
        size_t bl;
        ts_batch_build((const void *const *)v, l, recs, 1000 + i, &bb, &bl);
        ts_batch_set_base_offset(bb, off);
        off += recs;
        ts_buf_append(&b, bb, bl);
        free(bb);
        for (int r = 0; r < recs; r++) free(v[r]);
        free(v);
        free(l);
    }
    ts_fs_write_atomic(path, b.data, b.len, NULL, 0);
    return ts_buf_steal(&b, len);
}

static int count_cb(const char *k, uint64_t s, void *o)
{
    (void)k;
    (void)s;
    (*(int *)o)++;
    return 0;
}

static uint32_t rd32le(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

TT_TEST(object_layout_chunks_and_seek_table)
{
    char dir[400], seg[500], url[500], err[1024];
    snprintf(dir, sizeof(dir), "%s/a", g_root);
    ts_fs_mkdirs(dir, NULL, 0);
    snprintf(seg, sizeof(seg), "%s/00000000000000000100.log", dir);
    snprintf(url, sizeof(url), "file://%s/bucket", dir);
    size_t raw_len;
    uint8_t *raw = write_segment(seg, 300, &raw_len);
    ts_objstore *os;
    ts_index *idx;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    TT_OKE(ts_index_create("t", 3, dir, os, &idx, err, sizeof(err)), err);
    ts_upload_req req = {"t", 3, seg, 100, 65536, 3, 1 << 20, 0, NULL, 0};
    ts_segment_meta m;
    memset(&m, 0, sizeof(m));
    TT_OKE(ts_uploader_upload_segment(os, idx, &req, &m, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(m.base_offset, 100);
    TT_ASSERT_EQ_INT(m.size_bytes, raw_len);
    TT_ASSERT(m.chunk_count > 3);
    TT_ASSERT(strncmp(m.object_key, "t/3/segments/00000000000000000100-", 34) == 0);
    uint8_t *obj;
    size_t olen;
    TT_OKE(ts_objstore_get(os, m.object_key, 0, TS_OBJSTORE_TO_END, &obj, &olen, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(olen, m.stored_bytes);
    /* Every chunk: starts at a batch boundary, is one zstd frame whose CRCs
     * match, and decompresses to its raw range; chunks tile the segment. */
    uint64_t raw_pos = 0;
    for (uint32_t i = 0; i < m.chunk_count; i++) {
        ts_chunk_meta *c = &m.chunks[i];
        TT_ASSERT_EQ_INT(c->raw_pos, raw_pos);
        TT_ASSERT(c->raw_len <= 65536 || i == 0);
        ts_batch_hdr h;
        TT_OK(ts_batch_parse_header(raw + c->raw_pos, raw_len - c->raw_pos, 1 << 20, &h, NULL, 0));
        TT_ASSERT_EQ_INT(h.base_offset, c->first_offset);
        TT_ASSERT_EQ_INT(ts_crc32c(0, obj + c->stored_pos, c->stored_len), c->stored_crc32c);
        uint8_t *out = malloc(c->raw_len);
        size_t d = ZSTD_decompress(out, c->raw_len, obj + c->stored_pos, c->stored_len);
        TT_ASSERT_EQ_INT(d, c->raw_len);
        TT_ASSERT(!memcmp(out, raw + c->raw_pos, c->raw_len));
        TT_ASSERT_EQ_INT(ts_crc32c(0, out, c->raw_len), c->raw_crc32c);
        free(out);
        raw_pos += c->raw_len;
    }
    TT_ASSERT_EQ_INT(raw_pos, raw_len);
    TT_ASSERT_EQ_INT(m.segment_crc32c, ts_crc32c(0, raw, raw_len));
    /* Seek table: skippable frame at the end, per zstd's seekable format. */
    const uint8_t *foot = obj + olen - 9;
    TT_ASSERT_EQ_INT(rd32le(foot + 5), 0x8F92EAB1u);
    TT_ASSERT_EQ_INT(rd32le(foot), m.chunk_count);
    const uint8_t *st = obj + olen - (8 * m.chunk_count + 17);
    TT_ASSERT_EQ_INT(rd32le(st), 0x184D2A5Eu);
    TT_ASSERT_EQ_INT(rd32le(st + 8), m.chunks[0].stored_len);
    TT_ASSERT_EQ_INT(rd32le(st + 12), m.chunks[0].raw_len);
    /* The object's own chunk table sits right before the seek table and is
     * what a reader gets back from the index (issue 9). */
    TT_ASSERT_EQ_INT(m.chunk_table_len, TS_CHUNK_TABLE_LEN(m.chunk_count));
    TT_ASSERT_EQ_INT(m.chunk_table_pos + m.chunk_table_len, olen - (8 * m.chunk_count + 17));
    TT_ASSERT_EQ_INT(rd32le(obj + m.chunk_table_pos), TS_CHUNK_TABLE_MAGIC);
    ts_segment_meta lk;
    TT_OK(ts_index_lookup_offset(idx, 100, &lk));
    TT_ASSERT(!lk.chunks && lk.chunk_count == m.chunk_count);
    TT_OKE(ts_index_load_chunks(idx, &lk, err, sizeof(err)), err);
    TT_ASSERT(!memcmp(lk.chunks, m.chunks, m.chunk_count * sizeof(*m.chunks)));
    TT_ASSERT_EQ_INT(lk.segment_crc32c, m.segment_crc32c);
    ts_segment_meta_clear(&lk);
    /* Still a plain zstd stream: decoders skip both skippable frames and
     * the whole object decompresses to the segment (what `zstd -d` does). */
    uint8_t *whole = malloc(raw_len + 1);
    TT_ASSERT_EQ_INT(ZSTD_decompress(whole, raw_len + 1, obj, olen), raw_len);
    TT_ASSERT(!memcmp(whole, raw, raw_len));
    free(whole);
    /* The manifest entry is durable remotely. */
    TT_ASSERT(ts_index_is_remote_durable(idx, 100));
    /* A second upload of the same segment: refused, its orphan removed. */
    ts_segment_meta m2;
    memset(&m2, 0, sizeof(m2));
    TT_ASSERT_EQ_INT(ts_uploader_upload_segment(os, idx, &req, &m2, err, sizeof(err)), TS_E_EXISTS);
    int objects = 0;
    char prefix[64] = "t/3/segments/";
    TT_OK(ts_objstore_list(os, prefix, count_cb, &objects, err, sizeof(err)));
    TT_ASSERT_EQ_INT(objects, 1);
    free(obj);
    free(raw);
    ts_segment_meta_clear(&m);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
}

TT_TEST(failed_upload_leaves_no_entry_and_no_object)
{
    char dir[400], seg[500], url[600], err[1024];
    snprintf(dir, sizeof(dir), "%s/b", g_root);
    ts_fs_mkdirs(dir, NULL, 0);
    snprintf(seg, sizeof(seg), "%s/00000000000000000100.log", dir);
    size_t raw_len;
    free(write_segment(seg, 50, &raw_len));
    /* The object write fails at commit: nothing may become visible. */
    snprintf(url, sizeof(url), "faulty+file://%s/bucket?ops=writer&fatal_rate=1", dir);
    ts_objstore *os;
    ts_index *idx;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    TT_OKE(ts_index_create("t", 0, dir, os, &idx, err, sizeof(err)), err);
    ts_upload_req req = {"t", 0, seg, 100, 65536, 3, 1 << 20, 0, NULL, 0};
    TT_ASSERT(ts_uploader_upload_segment(os, idx, &req, NULL, err, sizeof(err)) != TS_OK);
    ts_index_summary sum;
    ts_index_summary_get(idx, &sum);
    TT_ASSERT_EQ_INT(sum.count, 0);
    int objects = 0;
    TT_OK(ts_objstore_list(os, "t/", count_cb, &objects, err, sizeof(err)));
    TT_ASSERT_EQ_INT(objects, 0);
    /* A corrupt local segment is refused before anything is uploaded. */
    int fd = open(seg, O_RDWR);
    uint8_t x;
    TT_ASSERT(pread(fd, &x, 1, 200) == 1);
    x ^= 1;
    TT_ASSERT(pwrite(fd, &x, 1, 200) == 1);
    close(fd);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
    snprintf(url, sizeof(url), "file://%s/bucket2", dir);
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    TT_OKE(ts_index_create("t", 0, dir, os, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_uploader_upload_segment(os, idx, &req, NULL, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT(strstr(err, seg) != NULL);
    ts_index_summary_get(idx, &sum);
    TT_ASSERT_EQ_INT(sum.count, 0);
    objects = 0;
    TT_OK(ts_objstore_list(os, "t/", count_cb, &objects, err, sizeof(err)));
    TT_ASSERT_EQ_INT(objects, 0);
    ts_index_destroy(idx);
    ts_objstore_destroy(os);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "uploader");
    TT_RUN(object_layout_chunks_and_seek_table);
    TT_RUN(failed_upload_leaves_no_entry_and_no_object);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
