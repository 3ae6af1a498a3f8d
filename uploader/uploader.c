/*
 * uploader.c — one closed segment -> one seekable-zstd object -> manifest
 * entry (see uploader.h for the format and the commit order).
 */
#include "uploader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/batch.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

#define SKIPPABLE_MAGIC 0x184D2A5Eu
#define SEEKABLE_MAGIC 0x8F92EAB1u

static void wr32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

size_t ts_uploader_seek_table(const ts_chunk_meta *chunks, uint32_t n, uint8_t *out)
{
    size_t pos = 0;
    wr32le(out + pos, SKIPPABLE_MAGIC); pos += 4;
    wr32le(out + pos, 8 * n + 9); pos += 4;
    for (uint32_t i = 0; i < n; i++) {
        wr32le(out + pos, chunks[i].stored_len); pos += 4;
        wr32le(out + pos, chunks[i].raw_len); pos += 4;
    }
    wr32le(out + pos, n); pos += 4;
    out[pos++] = 0;
    wr32le(out + pos, SEEKABLE_MAGIC); pos += 4;
    return pos;
}

/* Upload state for one attempt; freed by upload_cleanup. */
typedef struct up {
    int fd;
    uint8_t *raw, *zbuf;
    size_t raw_cap, zcap;
    ZSTD_CCtx *cctx;
    ts_objstore_writer *w;
    ts_segment_meta meta;
    uint32_t chunk_cap;
} up;

static void upload_cleanup(up *u)
{
    if (u->fd >= 0) close(u->fd);
    free(u->raw);
    free(u->zbuf);
    ZSTD_freeCCtx(u->cctx);
    if (u->w) ts_objstore_writer_abort(u->w);
    ts_segment_meta_clear(&u->meta);
}

static ts_status add_chunk(up *u, const ts_upload_req *req, size_t raw_len, uint64_t raw_pos,
                           uint64_t *stored_pos, int64_t first_offset, int64_t max_ts,
                           char *errstr, size_t errlen)
{
    size_t bound = ZSTD_compressBound(raw_len);
    if (bound > u->zcap) {
        uint8_t *nz = realloc(u->zbuf, bound);
        if (!nz) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory compressing chunk");
        u->zbuf = nz;
        u->zcap = bound;
    }
    size_t z = ZSTD_compress2(u->cctx, u->zbuf, u->zcap, u->raw, raw_len);
    if (ZSTD_isError(z))
        return ts_err_set(errstr, errlen, TS_E_IO, "zstd compression failed: %s",
                          ZSTD_getErrorName(z));
    ts_status st = ts_objstore_writer_write(u->w, u->zbuf, z, errstr, errlen);
    if (st) return st;
    if (u->meta.chunk_count == u->chunk_cap) {
        uint32_t nc = u->chunk_cap ? u->chunk_cap * 2 : 16;
        ts_chunk_meta *ncm = realloc(u->meta.chunks, nc * sizeof(*ncm));
        if (!ncm) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (chunk table)");
        u->meta.chunks = ncm;
        u->chunk_cap = nc;
    }
    ts_chunk_meta *c = &u->meta.chunks[u->meta.chunk_count++];
    memset(c, 0, sizeof(*c));
    c->raw_pos = raw_pos;
    c->raw_len = (uint32_t)raw_len;
    c->stored_pos = *stored_pos;
    c->stored_len = (uint32_t)z;
    c->first_offset = first_offset;
    c->max_timestamp = max_ts;
    c->stored_crc32c = ts_crc32c(0, u->zbuf, z);
    c->raw_crc32c = ts_crc32c(0, u->raw, raw_len);
    *stored_pos += z;
    (void)req;
    return TS_OK;
}

ts_status ts_uploader_upload_segment(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                     ts_segment_meta *out, char *errstr, size_t errlen)
{
    up u;
    memset(&u, 0, sizeof(u));
    u.fd = -1;
    ts_status st;
    char attempt[17];
    ts_rand_hex(attempt, 8);

    u.fd = open(req->segment_path, O_RDONLY | O_CLOEXEC);
    if (u.fd < 0) {
        st = ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open segment %s: %s",
                        req->segment_path, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(u.fd, &sb) != 0 || sb.st_size == 0) {
        st = ts_err_set(errstr, errlen, TS_E_INVAL, "segment %s is empty or unreadable",
                        req->segment_path);
        goto out;
    }
    uint64_t seg_size = (uint64_t)sb.st_size;
    if (req->start_pos >= seg_size) {
        st = ts_err_set(errstr, errlen, TS_E_INVAL, "segment %s has nothing from position %llu",
                        req->segment_path, (unsigned long long)req->start_pos);
        goto out;
    }
    u.raw_cap = req->chunk_bytes + req->max_batch_bytes;
    u.raw = malloc(u.raw_cap);
    u.cctx = ZSTD_createCCtx();
    if (!u.raw || !u.cctx) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory for upload buffers");
        goto out;
    }
    ZSTD_CCtx_setParameter(u.cctx, ZSTD_c_compressionLevel, req->compression_level);
    ZSTD_CCtx_setParameter(u.cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(u.cctx, ZSTD_c_contentSizeFlag, 1);

    u.meta.base_offset = req->base_offset;
    u.meta.first_timestamp = -1;
    u.meta.max_timestamp = -1;
    u.meta.last_offset = req->base_offset - 1;
    ts_index_segment_key(req->topic, req->partition, req->base_offset, attempt,
                         u.meta.object_key, sizeof(u.meta.object_key));
    st = ts_objstore_writer_open(os, u.meta.object_key, &u.w, errstr, errlen);
    if (st) goto out;

    /* Walk the segment batch by batch, filling a raw chunk buffer; cut a
     * chunk when the next batch would push it past chunk_bytes. */
    uint64_t pos = req->start_pos, chunk_start = req->start_pos, stored_pos = 0;
    size_t raw_len = 0;
    int64_t chunk_first = -1, chunk_max_ts = -1;
    uint32_t seg_crc = 0;
    while (pos < seg_size) {
        uint8_t hdrb[TS_BATCH_HEADER_SIZE];
        ts_batch_hdr h;
        if (ts_fs_read_full(u.fd, hdrb, sizeof(hdrb), (int64_t)pos) != (ssize_t)sizeof(hdrb) ||
            ts_batch_parse_header(hdrb, sizeof(hdrb), req->max_batch_bytes, &h, errstr, errlen)) {
            st = ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "segment %s at position %llu",
                               req->segment_path, (unsigned long long)pos);
            goto out;
        }
        size_t bsz = ts_batch_total_size(&h);
        if (pos + bsz > seg_size) {
            st = ts_err_set(errstr, errlen, TS_E_CORRUPT,
                            "segment %s: batch at position %llu runs past the end",
                            req->segment_path, (unsigned long long)pos);
            goto out;
        }
        if (pos == req->start_pos && h.base_offset != req->base_offset) {
            st = ts_err_set(errstr, errlen, TS_E_INVAL,
                            "segment %s: the batch at position %llu starts at offset %lld, not "
                            "%lld", req->segment_path, (unsigned long long)pos,
                            (long long)h.base_offset, (long long)req->base_offset);
            goto out;
        }
        if (raw_len && raw_len + bsz > req->chunk_bytes) {
            st = add_chunk(&u, req, raw_len, chunk_start - req->start_pos, &stored_pos,
                           chunk_first, chunk_max_ts, errstr, errlen);
            if (st) goto out;
            chunk_start = pos;
            raw_len = 0;
            chunk_first = -1;
            chunk_max_ts = -1;
        }
        if (raw_len + bsz > u.raw_cap) {
            uint8_t *nr = realloc(u.raw, raw_len + bsz);
            if (!nr) {
                st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (batch of %zu bytes)", bsz);
                goto out;
            }
            u.raw = nr;
            u.raw_cap = raw_len + bsz;
        }
        if (ts_fs_read_full(u.fd, u.raw + raw_len, bsz, (int64_t)pos) != (ssize_t)bsz) {
            st = ts_err_set(errstr, errlen, TS_E_IO, "short read of segment %s at %llu",
                            req->segment_path, (unsigned long long)pos);
            goto out;
        }
        /* The uploaded bytes must be what was appended: re-check the CRC so
         * local bit rot is caught before it is made durable remotely. */
        if (ts_batch_validate(u.raw + raw_len, bsz, req->max_batch_bytes, &h, errstr, errlen)) {
            st = ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "segment %s at position %llu",
                               req->segment_path, (unsigned long long)pos);
            goto out;
        }
        seg_crc = ts_crc32c(seg_crc, u.raw + raw_len, bsz);
        if (chunk_first < 0) chunk_first = h.base_offset;
        if (h.max_timestamp > chunk_max_ts) chunk_max_ts = h.max_timestamp;
        if (u.meta.first_timestamp < 0) u.meta.first_timestamp = h.max_timestamp;
        if (h.max_timestamp > u.meta.max_timestamp) u.meta.max_timestamp = h.max_timestamp;
        u.meta.last_offset = ts_batch_last_offset(&h);
        raw_len += bsz;
        pos += bsz;
    }
    seg_size -= req->start_pos; /* the object holds the range from start_pos */
    if (raw_len) {
        st = add_chunk(&u, req, raw_len, chunk_start - req->start_pos, &stored_pos, chunk_first,
                       chunk_max_ts, errstr, errlen);
        if (st) goto out;
    }
    /* The object's own chunk table (a skippable frame, index/chunk_table.c),
     * then the seek table: the manifest entry only says where the first is. */
    u.meta.segment_crc32c = seg_crc;
    u.meta.size_bytes = seg_size;
    size_t ctlen = TS_CHUNK_TABLE_LEN(u.meta.chunk_count);
    uint8_t *table = malloc(ctlen + 8 * (size_t)u.meta.chunk_count + 17);
    if (!table) {
        st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (chunk and seek tables)");
        goto out;
    }
    ts_chunk_table_encode(&u.meta, table);
    size_t tlen = ctlen + ts_uploader_seek_table(u.meta.chunks, u.meta.chunk_count, table + ctlen);
    st = ts_objstore_writer_write(u.w, table, tlen, errstr, errlen);
    free(table);
    if (st) goto out;
    u.meta.chunk_table_pos = stored_pos;
    u.meta.chunk_table_len = (uint32_t)ctlen;
    ts_objstore_writer *w = u.w;
    u.w = NULL; /* commit frees the writer, success or not */
    st = ts_objstore_writer_commit(w, errstr, errlen);
    if (st) {
        ts_err_prefix(errstr, errlen, st, "upload of %s", u.meta.object_key);
        goto out;
    }
    u.meta.size_bytes = seg_size;
    u.meta.stored_bytes = stored_pos + tlen;
    u.meta.segment_crc32c = seg_crc;
    u.meta.upload_time_ms = ts_now_ms();

    /* Object durable: now, and only now, the manifest entry. */
    st = ts_index_add_epochs(idx, &u.meta, req->epochs, req->nepochs, errstr, errlen);
    if (st == TS_E_EXISTS || st == TS_E_INVAL) {
        /* Another attempt of this segment is already committed: ours is an
         * orphan. Remove it so the bucket holds one object per segment. */
        char e2[256];
        ts_objstore_delete(os, u.meta.object_key, e2, sizeof(e2));
        goto out;
    }
    if (st) {
        /* Either the entry is committed locally and only the remote
         * manifest put failed (the engine retries it with
         * ts_index_sync_remote: keep the object), or it was never added
         * (the object is an orphan: delete it). */
        ts_segment_meta chk;
        memset(&chk, 0, sizeof(chk));
        /* Fenced by a newer leader: the entry is in our local manifest
         * only and never reaches the bucket; the object stays an orphan
         * for the sweep (the engine reloads the manifest). */
        int committed = st != TS_E_FENCED &&
                        ts_index_lookup_offset(idx, req->base_offset, &chk) == TS_OK &&
                        !strcmp(chk.object_key, u.meta.object_key);
        ts_segment_meta_clear(&chk);
        if (!committed && st != TS_E_FENCED) {
            char e2[256];
            ts_objstore_delete(os, u.meta.object_key, e2, sizeof(e2));
        }
        ts_err_prefix(errstr, errlen, st, "segment %020lld (%s)%s", (long long)req->base_offset,
                      u.meta.object_key, committed ? ", remote manifest pending" : "");
        if (committed && out) {
            *out = u.meta;
            memset(&u.meta, 0, sizeof(u.meta));
        }
        goto out;
    }
    if (out) {
        *out = u.meta;
        memset(&u.meta, 0, sizeof(u.meta));
    }
    st = TS_OK;
out:
    upload_cleanup(&u);
    return st;
}
