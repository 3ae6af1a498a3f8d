/*
 * manifest_json.c — the manifest as JSON: writer, validator and parser.
 *
 * The format is specified field by field in index/README.md; this file is
 * its only implementation. Manifests come back from the bucket, which other
 * processes and people can write, so parsing treats them as untrusted:
 * the input size, the entry and chunk counts are capped, every field's type
 * and range is checked, entries must be sorted and disjoint, and chunk
 * tables must tile the segment exactly. Any defect yields TS_E_CORRUPT with
 * a message naming the field and the entry ("segments[3].chunks[2].raw_pos").
 *
 * 64-bit integers: cJSON keeps numbers as doubles, exact only up to 2^53.
 * The writer emits integers within ±(2^53-1) as JSON numbers and anything
 * larger as a decimal string ("18446744073709551615"); the parser accepts
 * both forms for every integer field and refuses numbers beyond ±(2^53-1)
 * instead of silently rounding them. Offsets in practice stay numbers, so
 * `jq` sees natural JSON, yet every int64/uint64 round-trips exactly.
 *
 * The JSON text is produced here by hand rather than by cJSON's printer:
 * the byte layout (one segment and one chunk per line) stays stable and
 * readable, and the integer rule above is applied in one place.
 */
#include "manifest_json.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

/* Largest magnitude a double holds exactly together with all its smaller
 * neighbours: beyond it a JSON number may already have been rounded. */
#define JSON_SAFE_INT 9007199254740991ULL /* 2^53 - 1 */

/* ------------------------------------------------------------------------
 * Shared checks
 * ------------------------------------------------------------------------ */

/* Object keys end up as file paths in the fs backend and URL paths in S3:
 * refuse anything that could escape the store's root or be ambiguous. */
static const char *key_defect(const char *key)
{
    size_t len = strnlen(key, TS_INDEX_KEY_MAX);
    if (len == 0) return "is empty";
    if (len >= TS_INDEX_KEY_MAX) return "is longer than 511 bytes";
    if (key[0] == '/' || key[len - 1] == '/') return "starts or ends with '/'";
    const char *comp = key;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i < len && (c < 0x20 || c == 0x7f)) return "contains a control character";
        if (i < len && c == '\\') return "contains a backslash";
        if (i == len || c == '/') {
            size_t clen = (size_t)(key + i - comp);
            if (clen == 0) return "has an empty path component ('//')";
            if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
                return "has a '.' or '..' path component";
            comp = key + i + 1;
        }
    }
    return NULL;
}

ts_status ts_manifest_check_segment(const ts_segment_meta *s, const char *what, char *errstr,
                                    size_t errlen)
{
#define SEGFAIL(...)                                                                             \
    do {                                                                                         \
        char m_[256];                                                                            \
        snprintf(m_, sizeof(m_), __VA_ARGS__);                                                   \
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%s: %s", what, m_);                     \
    } while (0)
    if (s->base_offset < 0) SEGFAIL("base_offset %" PRId64 " is negative", s->base_offset);
    if (s->last_offset < s->base_offset)
        SEGFAIL("last_offset %" PRId64 " is below base_offset %" PRId64, s->last_offset,
                s->base_offset);
    if (s->first_timestamp < -1) SEGFAIL("first_timestamp %" PRId64 " < -1", s->first_timestamp);
    if (s->max_timestamp < -1) SEGFAIL("max_timestamp %" PRId64 " < -1", s->max_timestamp);
    if (s->size_bytes == 0) SEGFAIL("size_bytes is 0 (empty segments are never tiered)");
    if (s->stored_bytes == 0) SEGFAIL("stored_bytes is 0");
    if (s->upload_time_ms < 0) SEGFAIL("upload_time_ms %" PRId64 " is negative", s->upload_time_ms);
    const char *kd = key_defect(s->object_key);
    if (kd) SEGFAIL("object_key %s", kd);
    if (s->chunk_count == 0 || (!s->chunks && !s->chunk_table_len))
        SEGFAIL("chunks: the chunk table is empty");
    if (s->chunk_count > TS_MANIFEST_MAX_CHUNKS)
        SEGFAIL("chunks: %" PRIu32 " chunks, more than the %d allowed", s->chunk_count,
                TS_MANIFEST_MAX_CHUNKS);
    /* key_id "" = not loaded yet (a piece entry's lookup copy) */
    if (s->sealed && (!s->chunk_table_len || (s->key_id[0] && !ts_crypt_key_id_valid(s->key_id))))
        SEGFAIL("encryption: a sealed entry needs its chunk table in the object and a key_id of "
                "1..%d characters [A-Za-z0-9._-]", TS_CRYPT_KEY_ID_MAX);
    if (s->chunk_table_len) {
        /* The frame sits right before the seek table (8 n + 17 bytes), so
         * its place follows from the sizes; anything else is not ours. */
        uint64_t tail = (uint64_t)s->chunk_table_len + 8u * (uint64_t)s->chunk_count + 17u;
        if (s->chunk_table_len != TS_CHUNK_TABLE_LEN(s->chunk_count))
            SEGFAIL("chunk_table_len %" PRIu32 " should be %" PRIu32 " for %" PRIu32 " chunks",
                    s->chunk_table_len, TS_CHUNK_TABLE_LEN(s->chunk_count), s->chunk_count);
        if (s->stored_bytes < tail || s->chunk_table_pos != s->stored_bytes - tail)
            SEGFAIL("chunk_table_pos %" PRIu64 " is not just before the seek table (stored_bytes "
                    "%" PRIu64 ", %" PRIu32 " chunks)",
                    s->chunk_table_pos, s->stored_bytes, s->chunk_count);
        if (!s->chunks) return TS_OK;
    }
    uint64_t raw_next = 0, stored_min = 0;
    for (uint32_t i = 0; i < s->chunk_count; i++) {
        const ts_chunk_meta *c = &s->chunks[i];
        if (c->raw_pos != raw_next)
            SEGFAIL("chunks[%" PRIu32 "].raw_pos %" PRIu64 " should be %" PRIu64
                    " (chunks tile the segment without gaps)",
                    i, c->raw_pos, raw_next);
        if (c->raw_len == 0) SEGFAIL("chunks[%" PRIu32 "].raw_len is 0", i);
        if (c->raw_len > s->size_bytes - c->raw_pos)
            SEGFAIL("chunks[%" PRIu32 "] raw range %" PRIu64 "+%" PRIu32
                    " runs past size_bytes %" PRIu64,
                    i, c->raw_pos, c->raw_len, s->size_bytes);
        raw_next = c->raw_pos + c->raw_len;
        if (c->stored_len == 0) SEGFAIL("chunks[%" PRIu32 "].stored_len is 0", i);
        if (c->stored_pos < stored_min)
            SEGFAIL("chunks[%" PRIu32 "].stored_pos %" PRIu64
                    " overlaps the previous chunk (ends at %" PRIu64 ")",
                    i, c->stored_pos, stored_min);
        if (c->stored_pos > s->stored_bytes || c->stored_len > s->stored_bytes - c->stored_pos)
            SEGFAIL("chunks[%" PRIu32 "] stored range %" PRIu64 "+%" PRIu32
                    " runs past stored_bytes %" PRIu64,
                    i, c->stored_pos, c->stored_len, s->stored_bytes);
        stored_min = c->stored_pos + c->stored_len;
        if (i == 0 && c->first_offset != s->base_offset)
            SEGFAIL("chunks[0].first_offset %" PRId64 " differs from base_offset %" PRId64,
                    c->first_offset, s->base_offset);
        if (i > 0 && c->first_offset <= s->chunks[i - 1].first_offset)
            SEGFAIL("chunks[%" PRIu32 "].first_offset %" PRId64
                    " is not above the previous chunk's %" PRId64,
                    i, c->first_offset, s->chunks[i - 1].first_offset);
        if (c->first_offset > s->last_offset)
            SEGFAIL("chunks[%" PRIu32 "].first_offset %" PRId64 " is beyond last_offset %" PRId64,
                    i, c->first_offset, s->last_offset);
        if (c->max_timestamp < -1)
            SEGFAIL("chunks[%" PRIu32 "].max_timestamp %" PRId64 " < -1", i, c->max_timestamp);
    }
    if (raw_next != s->size_bytes)
        SEGFAIL("chunks cover %" PRIu64 " raw bytes but size_bytes is %" PRIu64, raw_next,
                s->size_bytes);
    return TS_OK;
#undef SEGFAIL
}

int ts_segment_meta_equal(const ts_segment_meta *a, const ts_segment_meta *b)
{
    if (a->base_offset != b->base_offset || a->last_offset != b->last_offset ||
        a->first_timestamp != b->first_timestamp || a->max_timestamp != b->max_timestamp ||
        a->size_bytes != b->size_bytes || a->stored_bytes != b->stored_bytes ||
        a->upload_time_ms != b->upload_time_ms || a->segment_crc32c != b->segment_crc32c ||
        a->chunk_count != b->chunk_count || strcmp(a->object_key, b->object_key) ||
        a->chunk_table_pos != b->chunk_table_pos || a->chunk_table_len != b->chunk_table_len ||
        !a->chunks != !b->chunks || !a->sealed != !b->sealed ||
        (a->sealed && (strcmp(a->key_id, b->key_id) ||
                       memcmp(a->wrapped_key, b->wrapped_key, sizeof(a->wrapped_key)))))
        return 0;
    for (uint32_t i = 0; a->chunks && i < a->chunk_count; i++) {
        const ts_chunk_meta *x = &a->chunks[i], *y = &b->chunks[i];
        if (x->raw_pos != y->raw_pos || x->raw_len != y->raw_len ||
            x->stored_pos != y->stored_pos || x->stored_len != y->stored_len ||
            x->first_offset != y->first_offset || x->max_timestamp != y->max_timestamp ||
            x->stored_crc32c != y->stored_crc32c || x->raw_crc32c != y->raw_crc32c)
            return 0;
    }
    return 1;
}

/* Cross-entry rule: sorted by base offset and disjoint. */
static ts_status check_order(const ts_segment_meta *prev, const ts_segment_meta *cur, size_t i,
                             char *errstr, size_t errlen)
{
    if (cur->base_offset <= prev->last_offset)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "segments[%zu]: base_offset %" PRId64
                          " is not above segments[%zu]'s last_offset %" PRId64
                          " (entries must be sorted and must not overlap)",
                          i, cur->base_offset, i - 1, prev->last_offset);
    return TS_OK;
}

/* Every key a manifest names lies under its own partition's segment prefix
 * (keys.c). Retention and partition deletion delete the objects a manifest
 * names, so a damaged or foreign manifest naming "orders/1/..." from
 * orders-0, or one of its own manifest objects, must be refused, not acted
 * on. Pending deletions (local file) are checked alike. */
static ts_status check_keys_owned(const ts_manifest_doc *d, char *errstr, size_t errlen)
{
    char prefix[TS_INDEX_KEY_MAX];
    ts_index_segment_prefix(d->topic, d->partition, prefix, sizeof(prefix));
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < d->n + (d->local ? d->npending : 0); i++) {
        const char *key = i < d->n ? d->segs[i].object_key : d->pending_deletes[i - d->n];
        if (!strncmp(key, prefix, plen) && key[plen]) continue;
        char what[48];
        if (i < d->n) snprintf(what, sizeof(what), "segments[%zu].object_key", i);
        else snprintf(what, sizeof(what), "pending_deletes[%zu].key", i - d->n);
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "%s '%.128s' is not under this partition's prefix '%.300s' (a manifest "
                          "of %.249s/%" PRId32 " names only its own objects: retention deletes "
                          "what it names)",
                          what, key, prefix, d->topic, d->partition);
    }
    return TS_OK;
}

int ts_manifest_piece_key_owned(const char *topic, int32_t partition, const char *key)
{
    char prefix[TS_INDEX_KEY_MAX];
    ts_index_piece_prefix(topic, partition, prefix, sizeof(prefix));
    size_t plen = strlen(prefix);
    return !strncmp(key, prefix, plen) && key[plen] && !strchr(key + plen, '/') &&
           !key_defect(key);
}

/* Format-2 rules: pieces sorted and disjoint, the tail after them, every
 * piece key under this partition's pieces/ prefix; a piece's entries lie
 * inside its range. */
static ts_status check_doc2(const ts_manifest_doc *d, char *errstr, size_t errlen)
{
    if (d->kind == TS_MANIFEST_PIECE) {
        if (d->n == 0)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT, "piece: segments is empty");
        if (d->segs[0].base_offset != d->piece_base || d->segs[d->n - 1].last_offset != d->piece_last)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "piece: base_offset/last_offset %" PRId64 "..%" PRId64
                              " differ from its entries' %" PRId64 "..%" PRId64,
                              d->piece_base, d->piece_last, d->segs[0].base_offset,
                              d->segs[d->n - 1].last_offset);
        return TS_OK;
    }
    if (d->npieces > TS_MANIFEST_MAX_PIECES)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%zu pieces, more than the %d allowed",
                          d->npieces, TS_MANIFEST_MAX_PIECES);
    for (size_t i = 0; i < d->npieces; i++) {
        const ts_manifest_piece *pc = &d->pieces[i];
        if (!ts_manifest_piece_key_owned(d->topic, d->partition, pc->key))
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "pieces[%zu].key '%.128s' is not a piece of %.249s/%" PRId32, i,
                              pc->key, d->topic, d->partition);
        if (pc->base_offset < 0 || pc->last_offset < pc->base_offset || pc->count == 0 ||
            pc->bytes == 0 || pc->bytes > TS_MANIFEST_MAX_BYTES)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "pieces[%zu]: range %" PRId64 "..%" PRId64 ", count %" PRIu64
                              " or bytes %" PRIu64 " out of range",
                              i, pc->base_offset, pc->last_offset, pc->count, pc->bytes);
        if (i > 0 && pc->base_offset <= d->pieces[i - 1].last_offset)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "pieces[%zu] starts at %" PRId64 ", not above pieces[%zu]'s end "
                              "%" PRId64 " (pieces must be sorted and disjoint)",
                              i, pc->base_offset, i - 1, d->pieces[i - 1].last_offset);
        if (pc->last_offset < d->log_start_offset)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "pieces[%zu] ends at %" PRId64 ", below log_start_offset %" PRId64
                              " (it should have been dropped)",
                              i, pc->last_offset, d->log_start_offset);
        if (d->local && pc->added_version > d->version)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "pieces[%zu].added_version is above version %" PRIu64, i, d->version);
    }
    if (d->npieces && d->n && d->segs[0].base_offset <= d->pieces[d->npieces - 1].last_offset)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "segments[0] starts at %" PRId64 ", inside the last piece (ends at "
                          "%" PRId64 ")",
                          d->segs[0].base_offset, d->pieces[d->npieces - 1].last_offset);
    for (size_t i = 0; d->local && i < d->ndropped; i++)
        if (!ts_manifest_piece_key_owned(d->topic, d->partition, d->dropped[i]))
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "dropped_pieces[%zu].key is not a piece of this partition", i);
    return TS_OK;
}

static ts_status check_doc(const ts_manifest_doc *d, char *errstr, size_t errlen)
{
    char what[48];
    ts_status st_;
    if (!ts_topic_name_valid(d->topic))
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "topic '%.64s' breaks Kafka's rules ([A-Za-z0-9._-], 1..249 chars)",
                          d->topic);
    if (d->partition < 0)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "partition %" PRId32 " is negative",
                          d->partition);
    if (d->log_start_offset < 0)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "log_start_offset %" PRId64 " is negative",
                          d->log_start_offset);
    if (d->n > TS_MANIFEST_MAX_SEGMENTS)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT, "%zu segments, more than the %d allowed",
                          d->n, TS_MANIFEST_MAX_SEGMENTS);
    for (size_t i = 0; i < d->n; i++) {
        snprintf(what, sizeof(what), "segments[%zu]", i);
        ts_status st = ts_manifest_check_segment(&d->segs[i], what, errstr, errlen);
        if (st) return st;
        if (d->format != TS_MANIFEST_FORMAT_2 && !d->segs[i].chunks)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "%s: format 1 lists every chunk (this entry has none)", what);
        if (i > 0 && (st = check_order(&d->segs[i - 1], &d->segs[i], i, errstr, errlen)))
            return st;
    }
    if (d->format == TS_MANIFEST_FORMAT_2 && (st_ = check_doc2(d, errstr, errlen))) return st_;
    if (d->kind != TS_MANIFEST_PIECE && d->n > 0 && d->segs[0].last_offset < d->log_start_offset)
        return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                          "segments[0] ends at %" PRId64 ", below log_start_offset %" PRId64
                          " (it should have been removed)",
                          d->segs[0].last_offset, d->log_start_offset);
    /* Last, so the field checks above report their own defects first. */
    ts_status st = check_keys_owned(d, errstr, errlen);
    if (st) return st;
    if (d->local) {
        if (d->remote_version > d->version)
            return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                              "remote_version %" PRIu64 " is above version %" PRIu64,
                              d->remote_version, d->version);
        for (size_t i = 0; d->added_versions && i < d->n; i++)
            if (d->added_versions[i] > d->version)
                return ts_err_set(errstr, errlen, TS_E_CORRUPT,
                                  "segments[%zu].added_version %" PRIu64
                                  " is above version %" PRIu64,
                                  i, d->added_versions[i], d->version);
        for (size_t i = 0; i < d->npending; i++) {
            const char *kd = key_defect(d->pending_deletes[i]);
            if (kd)
                return ts_err_set(errstr, errlen, TS_E_CORRUPT, "pending_deletes[%zu] %s", i, kd);
        }
    }
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------ */

/* Appends "name":<int> using the 64-bit rule of the file comment. */
static ts_status put_i64(ts_buf *b, const char *sep, const char *name, int64_t v)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (mag <= JSON_SAFE_INT) return ts_buf_printf(b, "%s\"%s\":%" PRId64, sep, name, v);
    return ts_buf_printf(b, "%s\"%s\":\"%" PRId64 "\"", sep, name, v);
}

static ts_status put_u64(ts_buf *b, const char *sep, const char *name, uint64_t v)
{
    if (v <= JSON_SAFE_INT) return ts_buf_printf(b, "%s\"%s\":%" PRIu64, sep, name, v);
    return ts_buf_printf(b, "%s\"%s\":\"%" PRIu64 "\"", sep, name, v);
}

static ts_status put_str(ts_buf *b, const char *sep, const char *name, const char *s)
{
    ts_status st = ts_buf_printf(b, "%s\"%s\":\"", sep, name);
    for (const unsigned char *p = (const unsigned char *)s; !st && *p; p++) {
        if (*p == '"' || *p == '\\')
            st = ts_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            st = ts_buf_printf(b, "\\u%04x", *p);
        else
            st = ts_buf_append(b, p, 1);
    }
    return st ? st : ts_buf_append(b, "\"", 1);
}

/* "encryption":{"cipher":"aes-256-gcm","key_id":..,"wrapped_key":<base64>}:
 * the envelope of a sealed object (common/crypt.h). No secret: the data
 * key is wrapped. */
static ts_status put_encryption(ts_buf *b, const ts_segment_meta *s)
{
    char w[TS_B64_LEN(TS_CRYPT_WRAPPED_LEN)];
    ts_b64_encode(s->wrapped_key, sizeof(s->wrapped_key), w);
    ts_status st = ts_buf_printf(b, ",\"encryption\":{");
    if (!st) st = put_str(b, "", "cipher", "aes-256-gcm");
    if (!st) st = put_str(b, ",", "key_id", s->key_id);
    if (!st) st = put_str(b, ",", "wrapped_key", w);
    return st ? st : ts_buf_append(b, "}", 1);
}

/* One entry, on its own line. Format 2 entries whose object carries its
 * chunk table name the frame instead of listing the chunks. */
/* An entry's own leader epochs (KIP-405's segmentLeaderEpochs), cut from
 * the document's list: each epoch overlapping [base, last], the first
 * starting at base. Readers ignore it (the head's list is what is read). */
static ts_status render_segment_epochs(ts_buf *b, const ts_manifest_doc *d,
                                       const ts_segment_meta *s)
{
    int first = 1;
    ts_status st = TS_OK;
    for (size_t k = 0; !st && k < d->nepochs; k++) {
        int64_t next = k + 1 < d->nepochs ? d->epochs[k + 1].start_offset : INT64_MAX;
        if (next <= s->base_offset || d->epochs[k].start_offset > s->last_offset) continue;
        int64_t start = d->epochs[k].start_offset > s->base_offset ? d->epochs[k].start_offset
                                                                   : s->base_offset;
        st = ts_buf_printf(b, "%s[%" PRId32 ",%" PRId64 "]", first ? ",\"leader_epochs\":[" : ",",
                           d->epochs[k].epoch, start);
        first = 0;
    }
    return st || first ? st : ts_buf_printf(b, "]");
}

static ts_status render_segment(ts_buf *b, const ts_manifest_doc *d, size_t i)
{
    const ts_segment_meta *s = &d->segs[i];
    ts_status st = ts_buf_printf(b, "%s\n {", i ? "," : "");
    if (!st) st = put_i64(b, "", "base_offset", s->base_offset);
    if (!st) st = put_i64(b, ",", "last_offset", s->last_offset);
    if (!st) st = put_i64(b, ",", "first_timestamp", s->first_timestamp);
    if (!st) st = put_i64(b, ",", "max_timestamp", s->max_timestamp);
    if (!st) st = put_u64(b, ",", "size_bytes", s->size_bytes);
    if (!st) st = put_u64(b, ",", "stored_bytes", s->stored_bytes);
    if (!st) st = put_i64(b, ",", "upload_time_ms", s->upload_time_ms);
    if (!st) st = put_u64(b, ",", "segment_crc32c", s->segment_crc32c);
    if (!st) st = put_str(b, ",", "object_key", s->object_key);
    if (!st) st = put_str(b, ",", "compression", "zstd");
    if (!st && d->nepochs) st = render_segment_epochs(b, d, s);
    if (!st && s->sealed) st = put_encryption(b, s);
    if (!st && d->local && d->added_versions)
        st = put_u64(b, ",", "added_version", d->added_versions[i]);
    if (d->format == TS_MANIFEST_FORMAT_2 && s->chunk_table_len) {
        if (!st) st = put_u64(b, ",", "chunk_count", s->chunk_count);
        if (!st) st = put_u64(b, ",", "chunk_table_pos", s->chunk_table_pos);
        if (!st) st = put_u64(b, ",", "chunk_table_len", s->chunk_table_len);
        return st ? st : ts_buf_append(b, "}", 1);
    }
    if (!st) st = ts_buf_printf(b, ",\"chunks\":[");
    for (uint32_t j = 0; !st && j < s->chunk_count; j++) {
        const ts_chunk_meta *c = &s->chunks[j];
        st = ts_buf_printf(b, "%s\n  {", j ? "," : "");
        if (!st) st = put_u64(b, "", "raw_pos", c->raw_pos);
        if (!st) st = put_u64(b, ",", "raw_len", c->raw_len);
        if (!st) st = put_u64(b, ",", "stored_pos", c->stored_pos);
        if (!st) st = put_u64(b, ",", "stored_len", c->stored_len);
        if (!st) st = put_i64(b, ",", "first_offset", c->first_offset);
        if (!st) st = put_i64(b, ",", "max_timestamp", c->max_timestamp);
        if (!st) st = put_u64(b, ",", "stored_crc32c", c->stored_crc32c);
        if (!st) st = put_u64(b, ",", "raw_crc32c", c->raw_crc32c);
        if (!st) st = ts_buf_append(b, "}", 1);
    }
    return st ? st : ts_buf_printf(b, "]}");
}

/* "leader_epochs":[[epoch,start_offset],...] (only when there are any). */
static ts_status render_epochs(ts_buf *b, const ts_manifest_doc *d)
{
    ts_status st = ts_buf_printf(b, ",\"leader_epochs\":[");
    for (size_t i = 0; !st && i < d->nepochs; i++)
        st = ts_buf_printf(b, "%s[%" PRId32 ",%" PRId64 "]", i ? "," : "", d->epochs[i].epoch,
                           d->epochs[i].start_offset);
    return st ? st : ts_buf_printf(b, "]");
}

static ts_status render_pieces(ts_buf *b, const ts_manifest_doc *d)
{
    ts_status st = ts_buf_printf(b, ",\"pieces\":[");
    for (size_t i = 0; !st && i < d->npieces; i++) {
        const ts_manifest_piece *pc = &d->pieces[i];
        st = ts_buf_printf(b, "%s\n {", i ? "," : "");
        if (!st) st = put_str(b, "", "key", pc->key);
        if (!st) st = put_i64(b, ",", "base_offset", pc->base_offset);
        if (!st) st = put_i64(b, ",", "last_offset", pc->last_offset);
        if (!st) st = put_i64(b, ",", "min_timestamp", pc->min_timestamp);
        if (!st) st = put_i64(b, ",", "max_timestamp", pc->max_timestamp);
        if (!st) st = put_u64(b, ",", "count", pc->count);
        if (!st) st = put_u64(b, ",", "raw_bytes", pc->raw_bytes);
        if (!st) st = put_u64(b, ",", "stored_bytes", pc->stored_bytes);
        if (!st) st = put_u64(b, ",", "bytes", pc->bytes);
        if (!st) st = put_u64(b, ",", "crc32c", pc->crc32c);
        if (!st && d->local) st = put_u64(b, ",", "added_version", pc->added_version);
        if (!st) st = ts_buf_append(b, "}", 1);
    }
    return st ? st : ts_buf_printf(b, "%s]", d->npieces ? "\n" : "");
}

ts_status ts_manifest_render(const ts_manifest_doc *d, char **out, size_t *out_len, char *errstr,
                             size_t errlen)
{
    ts_status st = check_doc(d, errstr, errlen);
    if (st) return ts_err_prefix(errstr, errlen, TS_E_INVAL, "refusing to write manifest");
    int v2 = d->format == TS_MANIFEST_FORMAT_2;
    int piece = v2 && d->kind == TS_MANIFEST_PIECE;
    ts_buf b;
    ts_buf_init(&b, TS_MANIFEST_MAX_BYTES);
    st = ts_buf_printf(&b, "{\"format\":%d", v2 ? TS_MANIFEST_FORMAT_2 : TS_MANIFEST_FORMAT);
    if (!st && v2) st = ts_buf_printf(&b, ",\"kind\":\"%s\"", piece ? "piece" : "head");
    if (!st) st = put_str(&b, ",", "topic", d->topic);
    if (!st) st = ts_buf_printf(&b, ",\"partition\":%" PRId32, d->partition);
    if (piece) {
        if (!st) st = put_i64(&b, ",", "base_offset", d->piece_base);
        if (!st) st = put_i64(&b, ",", "last_offset", d->piece_last);
    } else {
        if (!st) st = put_u64(&b, ",", "version", d->version);
        if (!st && v2) st = put_i64(&b, ",", "leader_epoch", d->leader_epoch);
        if (!st && v2 && d->nepochs) st = render_epochs(&b, d);
        if (!st) st = put_i64(&b, ",", "log_start_offset", d->log_start_offset);
        if (!st && d->local) st = put_u64(&b, ",", "remote_version", d->remote_version);
        if (!st && v2) st = render_pieces(&b, d);
    }
    if (!st) st = ts_buf_printf(&b, ",\"segments\":[");
    for (size_t i = 0; !st && i < d->n; i++) st = render_segment(&b, d, i);
    if (!st) st = ts_buf_printf(&b, "%s]", d->n ? "\n" : "");
    if (!st && d->local) {
        st = ts_buf_printf(&b, ",\"pending_deletes\":[");
        for (size_t i = 0; !st && i < d->npending; i++) {
            /* Objects rather than bare strings keep the array extensible. */
            st = ts_buf_printf(&b, "%s\n {", i ? "," : "");
            if (!st) st = put_str(&b, "", "key", d->pending_deletes[i]);
            if (!st) st = ts_buf_append(&b, "}", 1);
        }
        if (!st) st = ts_buf_printf(&b, "%s]", d->npending ? "\n" : "");
        if (!st && v2) st = ts_buf_printf(&b, ",\"dropped_pieces\":[");
        for (size_t i = 0; !st && v2 && i < d->ndropped; i++) {
            st = ts_buf_printf(&b, "%s\n {", i ? "," : "");
            if (!st) st = put_str(&b, "", "key", d->dropped[i]);
            if (!st) st = put_u64(&b, ",", "version", d->dropped_versions[i]);
            if (!st) st = ts_buf_append(&b, "}", 1);
        }
        if (!st && v2) st = ts_buf_printf(&b, "%s]", d->ndropped ? "\n" : "");
    }
    if (!st) st = ts_buf_printf(&b, "}\n");
    if (st) {
        ts_buf_free(&b);
        return ts_err_set(errstr, errlen, TS_E_NOMEM,
                          "manifest of %s/%" PRId32 " exceeds %d bytes (or out of memory)",
                          d->topic, d->partition, TS_MANIFEST_MAX_BYTES);
    }
    *out = (char *)ts_buf_steal(&b, out_len);
    (*out)[*out_len] = '\0'; /* ts_buf keeps a spare byte for the NUL */
    return TS_OK;
}

/* ------------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------------ */

typedef struct pctx {
    char *errstr;
    size_t errlen;
    char where[64]; /* "", "segments[3]." or "segments[3].chunks[2]." */
} pctx;

static ts_status perr(pctx *c, const char *field, const char *fmt, ...) TS_PRINTF(3, 4);
static ts_status perr(pctx *c, const char *field, const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    size_t wl = strlen(c->where);
    if (!*field && wl) wl--; /* "segments[3]: ..." rather than "segments[3].: ..." */
    return ts_err_set(c->errstr, c->errlen, TS_E_CORRUPT, "%.*s%s: %s", (int)wl, c->where, field,
                      m);
}

/* Finds member `name` of obj; a key that appears twice is refused because
 * readers could disagree about which one counts. *it NULL when absent. */
static ts_status member(pctx *c, const cJSON *obj, const char *name, int required, const cJSON **it)
{
    *it = NULL;
    for (const cJSON *ch = obj->child; ch; ch = ch->next) {
        if (!ch->string || strcmp(ch->string, name)) continue;
        if (*it) return perr(c, name, "appears twice");
        *it = ch;
    }
    if (!*it && required) return perr(c, name, "is missing");
    return TS_OK;
}

/* Reads an integer in either accepted form into sign + magnitude. */
static ts_status json_int(pctx *c, const char *name, const cJSON *it, int *neg, uint64_t *mag)
{
    if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (!isfinite(d)) return perr(c, name, "is not a finite number");
        double a = d < 0 ? -d : d;
        if (a > (double)JSON_SAFE_INT)
            return perr(c, name,
                        "number beyond 2^53-1 cannot be read exactly; write it as a decimal string");
        if ((double)(int64_t)d != d) return perr(c, name, "is not an integer");
        *neg = d < 0;
        *mag = (uint64_t)a;
        return TS_OK;
    }
    if (cJSON_IsString(it) && it->valuestring) {
        const char *p = it->valuestring;
        *neg = (*p == '-');
        if (*neg) p++;
        size_t nd = strlen(p);
        if (nd == 0 || nd > 20 || (p[0] == '0' && nd > 1) || (*neg && !strcmp(p, "0")))
            return perr(c, name, "string '%.32s' is not a canonical decimal integer",
                        it->valuestring);
        uint64_t v = 0;
        for (size_t i = 0; i < nd; i++) {
            if (p[i] < '0' || p[i] > '9')
                return perr(c, name, "string '%.32s' is not a decimal integer", it->valuestring);
            unsigned dg = (unsigned)(p[i] - '0');
            if (v > (UINT64_MAX - dg) / 10) return perr(c, name, "overflows 64 bits");
            v = v * 10 + dg;
        }
        *mag = v;
        return TS_OK;
    }
    return perr(c, name, "expected an integer (number or decimal string)");
}

static ts_status get_i64(pctx *c, const cJSON *obj, const char *name, int64_t min, int64_t max,
                         int64_t *out)
{
    const cJSON *it;
    int neg;
    uint64_t mag;
    ts_status st = member(c, obj, name, 1, &it);
    if (!st) st = json_int(c, name, it, &neg, &mag);
    if (st) return st;
    int64_t v;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return perr(c, name, "is below the int64 range");
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return perr(c, name, "is above the int64 range");
        v = (int64_t)mag;
    }
    if (v < min || v > max)
        return perr(c, name, "%" PRId64 " is outside [%" PRId64 ", %" PRId64 "]", v, min, max);
    *out = v;
    return TS_OK;
}

static ts_status get_u64(pctx *c, const cJSON *obj, const char *name, int required, uint64_t min,
                         uint64_t max, uint64_t *out)
{
    const cJSON *it;
    int neg;
    uint64_t mag;
    ts_status st = member(c, obj, name, required, &it);
    if (st || !it) return st;
    if ((st = json_int(c, name, it, &neg, &mag))) return st;
    if (neg && mag) return perr(c, name, "is negative");
    if (mag < min || mag > max)
        return perr(c, name, "%" PRIu64 " is outside [%" PRIu64 ", %" PRIu64 "]", mag, min, max);
    *out = mag;
    return TS_OK;
}

static ts_status get_u32(pctx *c, const cJSON *obj, const char *name, uint32_t min, uint32_t *out)
{
    uint64_t v = 0;
    ts_status st = get_u64(c, obj, name, 1, min, UINT32_MAX, &v);
    if (!st) *out = (uint32_t)v;
    return st;
}

static ts_status get_str(pctx *c, const cJSON *obj, const char *name, const char **out)
{
    const cJSON *it;
    ts_status st = member(c, obj, name, 1, &it);
    if (st) return st;
    if (!cJSON_IsString(it) || !it->valuestring) return perr(c, name, "expected a string");
    *out = it->valuestring;
    return TS_OK;
}

static ts_status get_array(pctx *c, const cJSON *obj, const char *name, int required, size_t max,
                           const cJSON **arr, size_t *count)
{
    ts_status st = member(c, obj, name, required, arr);
    if (st) return st;
    *count = 0;
    if (!*arr) return TS_OK;
    if (!cJSON_IsArray(*arr)) return perr(c, name, "expected an array");
    for (const cJSON *ch = (*arr)->child; ch; ch = ch->next)
        if (++*count > max) return perr(c, name, "has more than %zu elements", max);
    return TS_OK;
}

static ts_status parse_chunk(pctx *c, const cJSON *o, ts_chunk_meta *ch)
{
    ts_status st;
    uint64_t v;
    if (!cJSON_IsObject(o)) return perr(c, "", "expected an object");
    if ((st = get_u64(c, o, "raw_pos", 1, 0, UINT64_MAX, &ch->raw_pos))) return st;
    if ((st = get_u32(c, o, "raw_len", 1, &ch->raw_len))) return st;
    if ((st = get_u64(c, o, "stored_pos", 1, 0, UINT64_MAX, &ch->stored_pos))) return st;
    if ((st = get_u32(c, o, "stored_len", 1, &ch->stored_len))) return st;
    if ((st = get_i64(c, o, "first_offset", 0, INT64_MAX, &ch->first_offset))) return st;
    if ((st = get_i64(c, o, "max_timestamp", -1, INT64_MAX, &ch->max_timestamp))) return st;
    if ((st = get_u64(c, o, "stored_crc32c", 1, 0, UINT32_MAX, &v))) return st;
    ch->stored_crc32c = (uint32_t)v;
    if ((st = get_u64(c, o, "raw_crc32c", 1, 0, UINT32_MAX, &v))) return st;
    ch->raw_crc32c = (uint32_t)v;
    return TS_OK;
}

/* The optional "encryption" member of a format-2 entry (put_encryption).
 * Errors name "segments[i].encryption.<field>". */
static ts_status parse_envelope(pctx *c, const cJSON *e, ts_segment_meta *s)
{
    const char *str;
    ts_status st;
    if (!cJSON_IsObject(e)) return perr(c, "", "expected an object");
    if ((st = get_str(c, e, "cipher", &str))) return st;
    if (strcmp(str, "aes-256-gcm"))
        return perr(c, "cipher", "'%.32s' is not supported (only \"aes-256-gcm\")", str);
    if ((st = get_str(c, e, "key_id", &str))) return st;
    if (!ts_crypt_key_id_valid(str))
        return perr(c, "key_id", "'%.40s' is not 1..%d characters [A-Za-z0-9._-]", str,
                    TS_CRYPT_KEY_ID_MAX);
    memcpy(s->key_id, str, strlen(str) + 1);
    if ((st = get_str(c, e, "wrapped_key", &str))) return st;
    if (ts_b64_decode_exact(str, strlen(str), s->wrapped_key, sizeof(s->wrapped_key)))
        return perr(c, "wrapped_key", "is not the base64 of %d bytes", TS_CRYPT_WRAPPED_LEN);
    s->sealed = 1;
    return TS_OK;
}

static ts_status parse_encryption(pctx *c, const cJSON *o, ts_segment_meta *s)
{
    const cJSON *e;
    ts_status st = member(c, o, "encryption", 0, &e);
    if (st || !e) return st;
    size_t wl = strlen(c->where);
    snprintf(c->where + wl, sizeof(c->where) - wl, "encryption.");
    st = parse_envelope(c, e, s);
    c->where[wl] = '\0';
    return st;
}

static ts_status parse_segment(pctx *c, const cJSON *o, size_t idx, ts_segment_meta *s,
                               uint64_t *added, int format)
{
    ts_status st;
    uint64_t v;
    const char *str;
    snprintf(c->where, sizeof(c->where), "segments[%zu].", idx);
    if (!cJSON_IsObject(o)) return perr(c, "", "expected an object");
    if ((st = get_i64(c, o, "base_offset", 0, INT64_MAX, &s->base_offset))) return st;
    if ((st = get_i64(c, o, "last_offset", 0, INT64_MAX, &s->last_offset))) return st;
    if ((st = get_i64(c, o, "first_timestamp", -1, INT64_MAX, &s->first_timestamp))) return st;
    if ((st = get_i64(c, o, "max_timestamp", -1, INT64_MAX, &s->max_timestamp))) return st;
    if ((st = get_u64(c, o, "size_bytes", 1, 1, UINT64_MAX, &s->size_bytes))) return st;
    if ((st = get_u64(c, o, "stored_bytes", 1, 1, UINT64_MAX, &s->stored_bytes))) return st;
    if ((st = get_i64(c, o, "upload_time_ms", 0, INT64_MAX, &s->upload_time_ms))) return st;
    if ((st = get_u64(c, o, "segment_crc32c", 1, 0, UINT32_MAX, &v))) return st;
    s->segment_crc32c = (uint32_t)v;
    if ((st = get_str(c, o, "object_key", &str))) return st;
    if (strlen(str) >= sizeof(s->object_key))
        return perr(c, "object_key", "is longer than %zu bytes", sizeof(s->object_key) - 1);
    memcpy(s->object_key, str, strlen(str) + 1);
    if ((st = get_str(c, o, "compression", &str))) return st;
    if (strcmp(str, "zstd"))
        return perr(c, "compression", "'%.32s' is not supported (only \"zstd\")", str);
    if (added && (st = get_u64(c, o, "added_version", 0, 0, UINT64_MAX, added))) return st;
    const cJSON *arr;
    size_t nch;
    if (format == TS_MANIFEST_FORMAT_2) {
        const cJSON *it;
        if ((st = member(c, o, "chunk_table_len", 0, &it))) return st;
        if (it) {
            /* The object carries the table; the manifest says where. */
            uint64_t len = 0, cnt = 0;
            if ((st = get_u64(c, o, "chunk_table_len", 1, 1, UINT32_MAX, &len))) return st;
            if ((st = get_u64(c, o, "chunk_table_pos", 1, 0, UINT64_MAX, &s->chunk_table_pos)))
                return st;
            if ((st = get_u64(c, o, "chunk_count", 1, 1, TS_MANIFEST_MAX_CHUNKS, &cnt))) return st;
            if ((st = member(c, o, "chunks", 0, &it))) return st;
            if (it) return perr(c, "chunks", "must be absent when chunk_table_len is given");
            if ((st = parse_encryption(c, o, s))) return st;
            s->chunk_table_len = (uint32_t)len;
            s->chunk_count = (uint32_t)cnt;
            c->where[0] = '\0';
            return TS_OK;
        }
    }
    if ((st = get_array(c, o, "chunks", 1, TS_MANIFEST_MAX_CHUNKS, &arr, &nch))) return st;
    if (nch == 0) return perr(c, "chunks", "is empty");
    s->chunks = calloc(nch, sizeof(*s->chunks));
    if (!s->chunks) return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory");
    s->chunk_count = (uint32_t)nch;
    size_t j = 0;
    for (const cJSON *ch = arr->child; ch; ch = ch->next, j++) {
        snprintf(c->where, sizeof(c->where), "segments[%zu].chunks[%zu].", idx, j);
        if ((st = parse_chunk(c, ch, &s->chunks[j]))) return st;
    }
    c->where[0] = '\0';
    return TS_OK;
}

static ts_status parse_pieces(pctx *c, const cJSON *root, int local, ts_manifest_doc *d)
{
    const cJSON *arr;
    size_t count;
    ts_status st = get_array(c, root, "pieces", 1, TS_MANIFEST_MAX_PIECES, &arr, &count);
    if (st) return st;
    if (count && !(d->pieces = calloc(count, sizeof(*d->pieces))))
        return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory for %zu pieces", count);
    for (const cJSON *o = arr->child; o; o = o->next) {
        ts_manifest_piece *pc = &d->pieces[d->npieces];
        const char *str;
        uint64_t v;
        snprintf(c->where, sizeof(c->where), "pieces[%zu].", d->npieces);
        if (!cJSON_IsObject(o)) return perr(c, "", "expected an object");
        if ((st = get_str(c, o, "key", &str))) return st;
        if (strlen(str) >= sizeof(pc->key)) return perr(c, "key", "is too long");
        memcpy(pc->key, str, strlen(str) + 1);
        if ((st = get_i64(c, o, "base_offset", 0, INT64_MAX, &pc->base_offset))) return st;
        if ((st = get_i64(c, o, "last_offset", 0, INT64_MAX, &pc->last_offset))) return st;
        if ((st = get_i64(c, o, "min_timestamp", -1, INT64_MAX, &pc->min_timestamp))) return st;
        if ((st = get_i64(c, o, "max_timestamp", -1, INT64_MAX, &pc->max_timestamp))) return st;
        if ((st = get_u64(c, o, "count", 1, 1, UINT64_MAX, &pc->count))) return st;
        if ((st = get_u64(c, o, "raw_bytes", 1, 0, UINT64_MAX, &pc->raw_bytes))) return st;
        if ((st = get_u64(c, o, "stored_bytes", 1, 0, UINT64_MAX, &pc->stored_bytes))) return st;
        if ((st = get_u64(c, o, "bytes", 1, 1, UINT64_MAX, &pc->bytes))) return st;
        if ((st = get_u64(c, o, "crc32c", 1, 0, UINT32_MAX, &v))) return st;
        pc->crc32c = (uint32_t)v;
        pc->added_version = d->version; /* absent: "not known durable" */
        if (local &&
            (st = get_u64(c, o, "added_version", 0, 0, UINT64_MAX, &pc->added_version)))
            return st;
        d->npieces++;
    }
    c->where[0] = '\0';
    return TS_OK;
}

/* Optional "leader_epochs": pairs [epoch, start_offset], both ascending. */
static ts_status parse_epochs(pctx *c, const cJSON *root, ts_manifest_doc *d)
{
    const cJSON *arr;
    size_t count;
    ts_status st = get_array(c, root, "leader_epochs", 0, TS_INDEX_MAX_EPOCHS, &arr, &count);
    if (st || !arr || !count) return st;
    if (!(d->epochs = calloc(count, sizeof(*d->epochs))))
        return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory");
    for (const cJSON *o = arr->child; o; o = o->next) {
        snprintf(c->where, sizeof(c->where), "leader_epochs[%zu]", d->nepochs);
        const cJSON *e = cJSON_IsArray(o) ? o->child : NULL, *s = e ? e->next : NULL;
        if (!e || !s || s->next || !cJSON_IsNumber(e) || !cJSON_IsNumber(s) ||
            e->valuedouble < 0 || e->valuedouble > INT32_MAX || s->valuedouble < 0 ||
            s->valuedouble > 9007199254740991.0 || e->valuedouble != (double)(int64_t)e->valuedouble ||
            s->valuedouble != (double)(int64_t)s->valuedouble)
            return perr(c, "", "should be [epoch, start_offset] (non-negative integers)");
        ts_index_epoch *x = &d->epochs[d->nepochs];
        x->epoch = (int32_t)e->valuedouble;
        x->start_offset = (int64_t)s->valuedouble;
        if (d->nepochs && (x->epoch <= x[-1].epoch || x->start_offset < x[-1].start_offset))
            return perr(c, "", "is not above the previous epoch and its start");
        d->nepochs++;
    }
    c->where[0] = '\0';
    return TS_OK;
}

void ts_manifest_doc_free(ts_manifest_doc *d)
{
    if (!d) return;
    free(d->epochs);
    d->epochs = NULL;
    d->nepochs = 0;
    ts_index_snapshot_free(d->segs, d->n);
    free(d->added_versions);
    for (size_t i = 0; i < d->npending; i++) free(d->pending_deletes[i]);
    free(d->pending_deletes);
    for (size_t i = 0; i < d->ndropped; i++) free(d->dropped[i]);
    free(d->dropped);
    free(d->dropped_versions);
    free(d->pieces);
    d->dropped = NULL;
    d->dropped_versions = NULL;
    d->pieces = NULL;
    d->ndropped = d->npieces = 0;
    d->segs = NULL;
    d->added_versions = NULL;
    d->pending_deletes = NULL;
    d->n = d->npending = 0;
}

/* Step 1: the bytes as one JSON object. The size is capped before cJSON
 * sees it; cJSON wants a NUL-terminated string, and a copy also makes an
 * embedded NUL end the parse early, which the trailing-bytes check then
 * catches. On success the caller owns *copy and *root. */
static ts_status parse_json_object(pctx *c, const char *json, size_t len, char **copy,
                                   cJSON **root)
{
    if (len == 0 || len > TS_MANIFEST_MAX_BYTES)
        return ts_err_set(c->errstr, c->errlen, TS_E_CORRUPT,
                          "manifest is %zu bytes (allowed 1..%d)", len, TS_MANIFEST_MAX_BYTES);
    char *text = *copy = malloc(len + 1);
    if (!text)
        return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory parsing a manifest");
    memcpy(text, json, len);
    text[len] = '\0';
    const char *end = NULL;
    *root = cJSON_ParseWithOpts(text, &end, 0);
    if (!*root) {
        const char *at = cJSON_GetErrorPtr();
        size_t pos = at && at >= text && at <= text + len ? (size_t)(at - text) : len;
        return ts_err_set(c->errstr, c->errlen, TS_E_CORRUPT,
                          "manifest is not valid JSON (error near byte %zu of %zu)", pos, len);
    }
    while (end && end < text + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (!end || end != text + len)
        return ts_err_set(c->errstr, c->errlen, TS_E_CORRUPT,
                          "manifest has trailing bytes at byte %zu",
                          end ? (size_t)(end - text) : 0);
    if (!cJSON_IsObject(*root)) return perr(c, "(document)", "expected a JSON object");
    return TS_OK;
}

/* Step 2: format and kind, the partition it belongs to. */
static ts_status parse_identity(pctx *c, const cJSON *root, ts_manifest_doc *d)
{
    ts_status st;
    int64_t i64;
    const char *str;
    if ((st = get_i64(c, root, "format", INT64_MIN, INT64_MAX, &i64))) return st;
    if (i64 != TS_MANIFEST_FORMAT && i64 != TS_MANIFEST_FORMAT_2)
        return ts_err_set(c->errstr, c->errlen, TS_E_UNSUPPORTED,
                          "format: manifest format %" PRId64 " is not supported (this build reads "
                          "1 and 2)",
                          i64);
    d->format = (int)i64;
    d->leader_epoch = -1;
    if (d->format == TS_MANIFEST_FORMAT_2) {
        if ((st = get_str(c, root, "kind", &str))) return st;
        if (!strcmp(str, "head"))
            d->kind = TS_MANIFEST_HEAD;
        else if (!strcmp(str, "piece"))
            d->kind = TS_MANIFEST_PIECE;
        else
            return perr(c, "kind", "'%.32s' is neither \"head\" nor \"piece\"", str);
    }
    if ((st = get_str(c, root, "topic", &str))) return st;
    if (!ts_topic_name_valid(str))
        return perr(c, "topic", "'%.64s' breaks Kafka's rules ([A-Za-z0-9._-], 1..249 chars)",
                    str);
    memcpy(d->topic, str, strlen(str) + 1);
    if ((st = get_i64(c, root, "partition", 0, INT32_MAX, &i64))) return st;
    d->partition = (int32_t)i64;
    return TS_OK;
}

/* Step 3: what only a piece (its range) or only a head (version, epochs,
 * log start, local remote_version, pieces) carries. */
static ts_status parse_piece_or_head(pctx *c, const cJSON *root, int local, ts_manifest_doc *d)
{
    ts_status st;
    if (d->kind == TS_MANIFEST_PIECE) {
        if ((st = get_i64(c, root, "base_offset", 0, INT64_MAX, &d->piece_base))) return st;
        return get_i64(c, root, "last_offset", 0, INT64_MAX, &d->piece_last);
    }
    if ((st = get_u64(c, root, "version", 1, 0, UINT64_MAX, &d->version))) return st;
    if (d->format == TS_MANIFEST_FORMAT_2) {
        const cJSON *it;
        if ((st = member(c, root, "leader_epoch", 0, &it))) return st;
        if (it && (st = get_i64(c, root, "leader_epoch", -1, INT64_MAX, &d->leader_epoch)))
            return st;
        if ((st = parse_epochs(c, root, d))) return st;
    }
    if ((st = get_i64(c, root, "log_start_offset", 0, INT64_MAX, &d->log_start_offset)))
        return st;
    if (local) {
        uint64_t u64 = 0;
        if ((st = get_u64(c, root, "remote_version", 0, 0, UINT64_MAX, &u64))) return st;
        d->remote_version = u64;
    }
    if (d->format == TS_MANIFEST_FORMAT_2) return parse_pieces(c, root, local, d);
    return TS_OK;
}

/* Step 4: the entries, with their added versions in a local file. */
static ts_status parse_segments(pctx *c, const cJSON *root, int local, ts_manifest_doc *d)
{
    ts_status st;
    const cJSON *arr;
    size_t count;
    if ((st = get_array(c, root, "segments", 1, TS_MANIFEST_MAX_SEGMENTS, &arr, &count)))
        return st;
    if (count) {
        d->segs = calloc(count, sizeof(*d->segs));
        if (local) d->added_versions = calloc(count, sizeof(*d->added_versions));
        if (!d->segs || (local && !d->added_versions))
            return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory for %zu segments",
                              count);
    }
    for (const cJSON *s = arr->child; s; s = s->next) {
        uint64_t *added = local ? &d->added_versions[d->n] : NULL;
        if (added) *added = d->version; /* absent: "not known durable" */
        st = parse_segment(c, s, d->n, &d->segs[d->n], added, d->format);
        d->n++; /* counted even on failure so that its chunks are freed */
        if (st) return st;
    }
    return TS_OK;
}

/* Steps 5 and 6 (local files only): an optional array `name` of objects
 * {"key": ...} — with "version" too when versions is given — into *keys
 * (and *versions), counting *n as entries are taken. */
static ts_status parse_key_list(pctx *c, const cJSON *root, const char *name, size_t max,
                                char ***keys, uint64_t **versions, size_t *n)
{
    ts_status st;
    const cJSON *arr;
    const char *str = NULL;
    size_t count;
    if ((st = get_array(c, root, name, 0, max, &arr, &count))) return st;
    if (count && (!(*keys = calloc(count, sizeof(char *))) ||
                  (versions && !(*versions = calloc(count, sizeof(uint64_t))))))
        return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory");
    for (const cJSON *p = arr ? arr->child : NULL; p; p = p->next) {
        snprintf(c->where, sizeof(c->where), "%s[%zu].", name, *n);
        if (!cJSON_IsObject(p)) return perr(c, "", "expected an object");
        if ((st = get_str(c, p, "key", &str))) return st;
        if (versions && (st = get_u64(c, p, "version", 1, 0, UINT64_MAX, &(*versions)[*n])))
            return st;
        if (!((*keys)[*n] = strdup(str)))
            return ts_err_set(c->errstr, c->errlen, TS_E_NOMEM, "out of memory");
        (*n)++;
    }
    c->where[0] = '\0';
    return TS_OK;
}

/* The steps in document order, then the whole-document checks (order,
 * ownership of keys, pieces against entries). */
ts_status ts_manifest_parse(const char *json, size_t len, int local, ts_manifest_doc *d,
                            char *errstr, size_t errlen)
{
    pctx c = {errstr, errlen, ""};
    ts_status st;
    cJSON *root = NULL;
    char *copy = NULL;
    memset(d, 0, sizeof(*d));
    d->local = local;

    if ((st = parse_json_object(&c, json, len, &copy, &root))) goto fail;
    if ((st = parse_identity(&c, root, d))) goto fail;
    if ((st = parse_piece_or_head(&c, root, local, d))) goto fail;
    if ((st = parse_segments(&c, root, local, d))) goto fail;
    /* Objects whose delete is still owed; in a format-2 head also the pieces
     * retention dropped, with the head version that dropped each. */
    if (local && (st = parse_key_list(&c, root, "pending_deletes", TS_MANIFEST_MAX_SEGMENTS,
                                      &d->pending_deletes, NULL, &d->npending)))
        goto fail;
    if (local && d->format == TS_MANIFEST_FORMAT_2 && d->kind == TS_MANIFEST_HEAD &&
        (st = parse_key_list(&c, root, "dropped_pieces", TS_MANIFEST_MAX_PIECES, &d->dropped,
                             &d->dropped_versions, &d->ndropped)))
        goto fail;
    if ((st = check_doc(d, errstr, errlen))) goto fail;
    cJSON_Delete(root);
    free(copy);
    return TS_OK;

fail:
    cJSON_Delete(root);
    free(copy);
    ts_manifest_doc_free(d);
    return st ? st : TS_E_CORRUPT;
}

/* ------------------------------------------------------------------------
 * Public wrappers (index.h)
 * ------------------------------------------------------------------------ */

ts_status ts_manifest_to_json(const char *topic, int32_t partition, uint64_t version,
                              int64_t log_start_offset, const ts_segment_meta *segs, size_t n,
                              char **out, size_t *out_len)
{
    ts_manifest_doc d;
    memset(&d, 0, sizeof(d));
    if (!topic || ts_strlcpy(d.topic, topic, sizeof(d.topic))) return TS_E_INVAL;
    d.partition = partition;
    d.version = version;
    d.log_start_offset = log_start_offset;
    d.segs = (ts_segment_meta *)segs; /* read only: render takes a const doc */
    d.n = n;
    /* Format 1 while every entry lists its chunks (the legacy layout, which
     * tests use to build old buckets); a format-2 head without pieces once
     * an entry's table lives in its object. */
    d.format = TS_MANIFEST_FORMAT;
    d.leader_epoch = -1;
    for (size_t i = 0; i < n; i++)
        if (!segs[i].chunks) d.format = TS_MANIFEST_FORMAT_2;
    return ts_manifest_render(&d, out, out_len, NULL, 0);
}

ts_status ts_manifest_from_json(const char *json, size_t len, char *topic_out, size_t topic_len,
                                int32_t *partition, uint64_t *version, int64_t *log_start_offset,
                                ts_segment_meta **segs, size_t *n, char *errstr, size_t errlen)
{
    ts_manifest_doc d;
    ts_status st = ts_manifest_parse(json, len, 0, &d, errstr, errlen);
    if (st) return st;
    if (topic_out) {
        size_t tl = strlen(d.topic);
        if (tl >= topic_len) {
            ts_manifest_doc_free(&d);
            return ts_err_set(errstr, errlen, TS_E_INVAL,
                              "topic '%s' does not fit the %zu-byte buffer", d.topic, topic_len);
        }
        memcpy(topic_out, d.topic, tl + 1);
    }
    if (partition) *partition = d.partition;
    if (version) *version = d.version;
    if (log_start_offset) *log_start_offset = d.log_start_offset;
    if (segs) {
        *segs = d.segs;
        d.segs = NULL;
        if (n) *n = d.n;
        d.n = 0;
    } else if (n) {
        *n = d.n;
    }
    ts_manifest_doc_free(&d);
    return TS_OK;
}
