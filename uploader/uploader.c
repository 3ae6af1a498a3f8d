/*
 * uploader.c — one closed segment -> one seekable-zstd object -> manifest
 * entry (see uploader.h for the format and the commit order).
 */
#include "uploader.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
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
    uint8_t *raw, *zbuf, *sbuf; /* sbuf: the sealed chunk (encrypted objects) */
    size_t raw_cap, zcap, scap;
    uint8_t data_key[TS_CRYPT_KEY_LEN]; /* meta.sealed: the object's own key */
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
    free(u->sbuf);
    OPENSSL_cleanse(u->data_key, sizeof(u->data_key));
    ZSTD_freeCCtx(u->cctx);
    if (u->w) ts_objstore_writer_abort(u->w);
    ts_segment_meta_clear(&u->meta);
}

/* Seals the compressed chunk in u->zbuf (zlen bytes) into u->sbuf: the
 * bytes that are stored (and CRC'd) instead. */
static ts_status seal_chunk(up *u, size_t zlen, const uint8_t **stored, size_t *slen, char *errstr,
                            size_t errlen)
{
    size_t need = zlen + TS_CRYPT_CHUNK_OVERHEAD;
    if (need > u->scap) {
        uint8_t *ns = realloc(u->sbuf, need);
        if (!ns) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory sealing chunk");
        u->sbuf = ns;
        u->scap = need;
    }
    ts_status st = ts_crypt_seal_chunk(u->data_key, u->meta.object_key, u->meta.chunk_count,
                                       u->zbuf, zlen, u->sbuf, errstr, errlen);
    if (st) return st;
    *stored = u->sbuf;
    *slen = need;
    return TS_OK;
}

/* A new data key for the object, wrapped under the active key. */
static ts_status start_sealed(up *u, const ts_upload_req *req, char *errstr, size_t errlen)
{
    if (!req->keyring) return TS_OK;
    ts_status st = ts_crypt_new_data_key(u->data_key, errstr, errlen);
    if (!st) st = ts_crypt_wrap(req->keyring, req->key_id, u->meta.object_key, u->data_key,
                                u->meta.wrapped_key, errstr, errlen);
    if (st) return st;
    snprintf(u->meta.key_id, sizeof(u->meta.key_id), "%s", req->key_id);
    u->meta.sealed = 1;
    return TS_OK;
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
    const uint8_t *stored = u->zbuf;
    ts_status st = u->meta.sealed ? seal_chunk(u, z, &stored, &z, errstr, errlen) : TS_OK;
    if (!st) st = ts_objstore_writer_write(u->w, stored, z, errstr, errlen);
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
    c->stored_crc32c = ts_crc32c(0, stored, z);
    c->raw_crc32c = ts_crc32c(0, u->raw, raw_len);
    *stored_pos += z;
    (void)req;
    return TS_OK;
}

/* ---- building the object, step by step ----------------------------------- */

/* Opens the segment and checks there is something to upload from
 * req->start_pos; *seg_size receives the file's size. */
static ts_status open_segment(up *u, const ts_upload_req *req, uint64_t *seg_size, char *errstr,
                              size_t errlen)
{
    u->fd = open(req->segment_path, O_RDONLY | O_CLOEXEC);
    if (u->fd < 0)
        return ts_err_set(errstr, errlen, ts_status_from_errno(errno), "cannot open segment %s: %s",
                          req->segment_path, strerror(errno));
    struct stat sb;
    if (fstat(u->fd, &sb) != 0 || sb.st_size == 0)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "segment %s is empty or unreadable",
                          req->segment_path);
    *seg_size = (uint64_t)sb.st_size;
    if (req->start_pos >= *seg_size)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "segment %s has nothing from position %llu",
                          req->segment_path, (unsigned long long)req->start_pos);
    return TS_OK;
}

/* Buffers, compressor, the entry's identity (a fresh attempt key), the data
 * key when sealing, and the object writer. */
static ts_status start_object(up *u, ts_objstore *os, const ts_upload_req *req, char *errstr,
                              size_t errlen)
{
    u->raw_cap = req->chunk_bytes + req->max_batch_bytes;
    u->raw = malloc(u->raw_cap);
    u->cctx = ZSTD_createCCtx();
    if (!u->raw || !u->cctx)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory for upload buffers");
    ZSTD_CCtx_setParameter(u->cctx, ZSTD_c_compressionLevel, req->compression_level);
    ZSTD_CCtx_setParameter(u->cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(u->cctx, ZSTD_c_contentSizeFlag, 1);
    char attempt[17];
    ts_rand_hex(attempt, 8);
    u->meta.base_offset = req->base_offset;
    u->meta.first_timestamp = -1;
    u->meta.max_timestamp = -1;
    u->meta.last_offset = req->base_offset - 1;
    ts_index_segment_key(req->topic, req->partition, req->base_offset, attempt,
                         u->meta.object_key, sizeof(u->meta.object_key));
    ts_status st = start_sealed(u, req, errstr, errlen);
    if (!st) st = ts_objstore_writer_open(os, u->meta.object_key, &u->w, errstr, errlen);
    return st;
}

/* Reads and checks the header of the batch at pos into *h. */
static ts_status read_header(up *u, const ts_upload_req *req, uint64_t pos, uint64_t seg_size,
                             ts_batch_hdr *h, char *errstr, size_t errlen)
{
    uint8_t hdrb[TS_BATCH_HEADER_SIZE];
    if (ts_fs_read_full(u->fd, hdrb, sizeof(hdrb), (int64_t)pos) != (ssize_t)sizeof(hdrb) ||
        ts_batch_parse_header(hdrb, sizeof(hdrb), req->max_batch_bytes, h, errstr, errlen))
        return ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "segment %s at position %llu",
                             req->segment_path, (unsigned long long)pos);
    if (pos + ts_batch_total_size(h) > seg_size)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "segment %s: batch at position %llu runs past the end",
                          req->segment_path, (unsigned long long)pos);
    if (pos == req->start_pos && h->base_offset != req->base_offset)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "segment %s: the batch at position %llu starts at offset %lld, not "
                          "%lld", req->segment_path, (unsigned long long)pos,
                          (long long)h->base_offset, (long long)req->base_offset);
    return TS_OK;
}

/* Reads the batch at pos (header h) onto the end of the raw chunk
 * (u->raw + raw_len), re-checking its CRC so local bit rot is caught before
 * it is made durable remotely. */
static ts_status read_body(up *u, const ts_upload_req *req, uint64_t pos, size_t raw_len,
                           ts_batch_hdr *h, char *errstr, size_t errlen)
{
    size_t bsz = ts_batch_total_size(h);
    if (raw_len + bsz > u->raw_cap) {
        uint8_t *nr = realloc(u->raw, raw_len + bsz);
        if (!nr)
            return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (batch of %zu bytes)", bsz);
        u->raw = nr;
        u->raw_cap = raw_len + bsz;
    }
    if (ts_fs_read_full(u->fd, u->raw + raw_len, bsz, (int64_t)pos) != (ssize_t)bsz)
        return ts_err_set(errstr, errlen, TS_E_IO, "short read of segment %s at %llu",
                          req->segment_path, (unsigned long long)pos);
    if (ts_batch_validate(u->raw + raw_len, bsz, req->max_batch_bytes, h, errstr, errlen))
        return ts_err_prefix(errstr, errlen, TS_E_CORRUPT, "segment %s at position %llu",
                             req->segment_path, (unsigned long long)pos);
    return TS_OK;
}

/* The chunk being filled while the segment is walked. */
typedef struct chunk_fill {
    uint64_t start;   /* file position of its first batch */
    size_t len;       /* raw bytes in u->raw */
    int64_t first, max_ts;
} chunk_fill;

static ts_status flush_chunk(up *u, const ts_upload_req *req, chunk_fill *c, uint64_t *stored_pos,
                             char *errstr, size_t errlen)
{
    ts_status st = add_chunk(u, req, c->len, c->start - req->start_pos, stored_pos, c->first,
                             c->max_ts, errstr, errlen);
    c->len = 0;
    c->first = -1;
    c->max_ts = -1;
    return st;
}

/* Walks the segment batch by batch, filling a raw chunk buffer; cuts a
 * chunk when the next batch would push it past chunk_bytes. *stored_pos
 * receives the bytes written (the chunk table's position). */
static ts_status write_chunks(up *u, const ts_upload_req *req, uint64_t seg_size,
                              uint64_t *stored_pos, char *errstr, size_t errlen)
{
    chunk_fill c = {req->start_pos, 0, -1, -1};
    uint64_t pos = req->start_pos;
    uint32_t seg_crc = 0;
    *stored_pos = 0;
    while (pos < seg_size) {
        ts_batch_hdr h;
        ts_status st = read_header(u, req, pos, seg_size, &h, errstr, errlen);
        if (st) return st;
        if (c.len && c.len + ts_batch_total_size(&h) > req->chunk_bytes) {
            if ((st = flush_chunk(u, req, &c, stored_pos, errstr, errlen))) return st;
            c.start = pos;
        }
        if ((st = read_body(u, req, pos, c.len, &h, errstr, errlen))) return st;
        size_t bsz = ts_batch_total_size(&h);
        seg_crc = ts_crc32c(seg_crc, u->raw + c.len, bsz);
        if (c.first < 0) c.first = h.base_offset;
        if (h.max_timestamp > c.max_ts) c.max_ts = h.max_timestamp;
        if (u->meta.first_timestamp < 0) u->meta.first_timestamp = h.max_timestamp;
        if (h.max_timestamp > u->meta.max_timestamp) u->meta.max_timestamp = h.max_timestamp;
        u->meta.last_offset = ts_batch_last_offset(&h);
        c.len += bsz;
        pos += bsz;
    }
    u->meta.segment_crc32c = seg_crc;
    u->meta.size_bytes = seg_size - req->start_pos; /* the object holds the range from start_pos */
    return c.len ? flush_chunk(u, req, &c, stored_pos, errstr, errlen) : TS_OK;
}

/* The object's own chunk table (a skippable frame, index/chunk_table.c),
 * then the seek table: the manifest entry only says where the first is. */
static ts_status write_tables(up *u, uint64_t stored_pos, char *errstr, size_t errlen)
{
    size_t ctlen = TS_CHUNK_TABLE_LEN(u->meta.chunk_count);
    uint8_t *table = malloc(ctlen + 8 * (size_t)u->meta.chunk_count + 17);
    if (!table) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory (chunk and seek tables)");
    ts_chunk_table_encode(&u->meta, table);
    size_t tlen = ctlen + ts_uploader_seek_table(u->meta.chunks, u->meta.chunk_count, table + ctlen);
    ts_status st = ts_objstore_writer_write(u->w, table, tlen, errstr, errlen);
    free(table);
    u->meta.chunk_table_pos = stored_pos;
    u->meta.chunk_table_len = (uint32_t)ctlen;
    u->meta.stored_bytes = stored_pos + tlen;
    return st;
}

ts_status ts_uploader_build_object(ts_objstore *os, const ts_upload_req *req,
                                   ts_segment_meta *meta, char *errstr, size_t errlen)
{
    up u;
    memset(&u, 0, sizeof(u));
    u.fd = -1;
    uint64_t seg_size = 0, stored_pos = 0;
    ts_status st = open_segment(&u, req, &seg_size, errstr, errlen);
    if (!st) st = start_object(&u, os, req, errstr, errlen);
    if (!st) st = write_chunks(&u, req, seg_size, &stored_pos, errstr, errlen);
    if (!st) st = write_tables(&u, stored_pos, errstr, errlen);
    if (!st) {
        ts_objstore_writer *w = u.w;
        u.w = NULL; /* commit frees the writer, success or not */
        st = ts_objstore_writer_commit(w, errstr, errlen);
        if (st) ts_err_prefix(errstr, errlen, st, "upload of %s", u.meta.object_key);
    }
    if (!st) {
        u.meta.upload_time_ms = ts_now_ms();
        *meta = u.meta;
        memset(&u.meta, 0, sizeof(u.meta));
    }
    upload_cleanup(&u);
    return st;
}

void ts_uploader_discard_object(ts_objstore *os, const ts_segment_meta *meta)
{
    char e2[256];
    if (meta && meta->object_key[0]) ts_objstore_delete(os, meta->object_key, e2, sizeof(e2));
}

/* ---- committing the entry ------------------------------------------------- */

/* The first entry of a group could not join the manifest: nothing of the
 * group was added, so its object is an orphan. Remove it so the bucket
 * holds one object per segment (TS_E_EXISTS: another attempt of this
 * segment is already committed; TS_E_INVAL: the entry cannot join; else
 * the local commit failed). */
static void refused(ts_objstore *os, ts_upload_commit *c, ts_status st)
{
    c->committed = 0;
    ts_uploader_discard_object(os, c->meta);
    c->st = st == TS_E_EXISTS || st == TS_E_INVAL
                ? st
                : ts_err_prefix(c->err, c->errlen, st, "segment %020lld (%s)",
                                (long long)c->req->base_offset, c->meta->object_key);
}

size_t ts_uploader_commit_group(ts_objstore *os, ts_index *idx, ts_upload_commit *c, size_t n)
{
    ts_index_add_item one, *items = n > 1 ? malloc(n * sizeof(*items)) : NULL;
    if (!items) { /* out of memory: a group of one still commits */
        items = &one;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].seg = c[i].meta;
        items[i].epochs = c[i].req->epochs;
        items[i].nepochs = c[i].req->nepochs;
    }
    /* Objects durable: now, and only now, their manifest entries. */
    size_t k = 0;
    ts_status st = ts_index_add_group(idx, items, n, &k, c[0].err, c[0].errlen);
    if (items != &one) free(items);
    if (k == 0) {
        refused(os, &c[0], st);
        return 1;
    }
    /* All k are in the local manifest. Only the remote put may have failed:
     * remote pending, the engine retries it with ts_index_sync_remote (keep
     * the objects). Fenced by a newer leader: the entries are in our local
     * manifest only and never reach the bucket; the objects stay orphans for
     * the sweep (the engine reloads the manifest). */
    for (size_t i = 0; i < k; i++) {
        c[i].committed = st != TS_E_FENCED;
        c[i].st = st;
        if (!st) continue;
        if (i) ts_strlcpy(c[i].err, c[0].err, c[i].errlen);
    }
    for (size_t i = 0; st && i < k; i++)
        ts_err_prefix(c[i].err, c[i].errlen, st, "segment %020lld (%s)%s",
                      (long long)c[i].req->base_offset, c[i].meta->object_key,
                      c[i].committed ? ", remote manifest pending" : "");
    return k;
}

ts_status ts_uploader_commit_entry(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                   const ts_segment_meta *meta, int *committed, char *errstr,
                                   size_t errlen)
{
    ts_upload_commit c = {req, meta, TS_OK, 0, errstr, errlen};
    ts_uploader_commit_group(os, idx, &c, 1);
    *committed = c.committed;
    return c.st;
}

ts_status ts_uploader_upload_segment(ts_objstore *os, ts_index *idx, const ts_upload_req *req,
                                     ts_segment_meta *out, char *errstr, size_t errlen)
{
    ts_segment_meta meta;
    memset(&meta, 0, sizeof(meta));
    int committed = 0;
    ts_status st = ts_uploader_build_object(os, req, &meta, errstr, errlen);
    if (!st) st = ts_uploader_commit_entry(os, idx, req, &meta, &committed, errstr, errlen);
    if (committed && out) {
        *out = meta;
        memset(&meta, 0, sizeof(meta));
    }
    ts_segment_meta_clear(&meta);
    return st;
}
