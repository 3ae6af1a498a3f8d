/* test_batch.c — unit tests of the record walk (ts_batch_validate_records):
 * every malformed batch issue 7 found accepted, and valid batches of every
 * codec Kafka clients send, compressed here with the same libraries. */
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include "common/batch.h"
#include "common/crc32c.h"
#include "tt.h"

#define MAXB (1u << 20) /* message.max.bytes of these tests */

static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/* n records "value-<i>" with a key on odd records and one header on every
 * third, offsetDelta = i. Returns the bytes in a malloc'd buffer. */
static uint8_t *records(int n, size_t *len)
{
    uint8_t *b = malloc((size_t)n * 96 + 16), *q = b;
    for (int i = 0; i < n; i++) {
        uint8_t body[96];
        size_t m = 0;
        char val[32], key[16];
        int vl = snprintf(val, sizeof(val), "value-%d", i), kl = snprintf(key, sizeof(key), "k%d", i);
        body[m++] = 0;
        m += put_varint(body + m, i * 3); /* timestampDelta */
        m += put_varint(body + m, i);     /* offsetDelta */
        if (i & 1) {
            m += put_varint(body + m, kl);
            memcpy(body + m, key, (size_t)kl);
            m += (size_t)kl;
        } else {
            m += put_varint(body + m, -1);
        }
        m += put_varint(body + m, vl);
        memcpy(body + m, val, (size_t)vl);
        m += (size_t)vl;
        if (i % 3 == 0) {
            m += put_varint(body + m, 1);
            m += put_varint(body + m, 2);
            memcpy(body + m, "hk", 2);
            m += 2;
            m += put_varint(body + m, -1); /* null header value */
        } else {
            m += put_varint(body + m, 0);
        }
        q += put_varint(q, (int64_t)m);
        memcpy(q, body, m);
        q += m;
    }
    *len = (size_t)(q - b);
    return b;
}

/* A batch around an (already compressed) payload, CRC set. */
static uint8_t *wrap(int16_t attrs, int32_t count, const void *payload, size_t plen, size_t *len)
{
    size_t n = TS_BATCH_HEADER_SIZE + plen;
    uint8_t *b = calloc(1, n);
    ts_wr32(b + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    b[16] = 2;
    ts_wr16(b + 21, (uint16_t)attrs);
    ts_wr32(b + 23, (uint32_t)(count - 1));
    ts_wr64(b + 27, 1700000000000ULL);
    ts_wr64(b + 35, 1700000000000ULL);
    ts_wr64(b + 43, (uint64_t)-1);
    ts_wr16(b + 51, (uint16_t)-1);
    ts_wr32(b + 53, (uint32_t)-1);
    ts_wr32(b + 57, (uint32_t)count);
    if (plen) memcpy(b + TS_BATCH_HEADER_SIZE, payload, plen);
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    *len = n;
    return b;
}

/* Frame check then the walk, as ts_partition_append runs them. */
static ts_status check(const uint8_t *b, size_t n, size_t bound, char *err, size_t errlen)
{
    ts_batch_hdr h;
    ts_status st = ts_batch_validate(b, n, bound, &h, err, errlen);
    return st ? st : ts_batch_validate_records(b, &h, bound, err, errlen);
}

static uint8_t *gzip_of(const uint8_t *src, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, len) + 64;
    uint8_t *o = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)len;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return o;
}

static uint8_t *snappy_raw_of(const uint8_t *src, size_t len, size_t *out_len)
{
    size_t cap = snappy_max_compressed_length(len);
    uint8_t *o = malloc(cap);
    snappy_compress((const char *)src, len, (char *)o, &cap);
    *out_len = cap;
    return o;
}

/* snappy-java's SnappyOutputStream: 16-byte header, then [int32 len][block]
 * per `block` input bytes; `twice` repeats the header mid-stream, as two
 * concatenated streams do. */
static uint8_t *snappy_xerial_of(const uint8_t *src, size_t len, size_t block, int twice,
                                 size_t *out_len)
{
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    size_t cap = 32 + 2 * len + 64 * (len / block + 2);
    uint8_t *o = malloc(cap), *q = o;
    memcpy(q, hdr, 16);
    q += 16;
    for (size_t off = 0; off < len; off += block) {
        size_t m = len - off < block ? len - off : block;
        if (twice && off > 0 && off / block == 1) {
            memcpy(q, hdr, 16);
            q += 16;
        }
        size_t cl = snappy_max_compressed_length(m);
        snappy_compress((const char *)src + off, m, (char *)q + 4, &cl);
        ts_wr32(q, (uint32_t)cl);
        q += 4 + cl;
    }
    *out_len = (size_t)(q - o);
    return o;
}

static uint8_t *lz4_of(const uint8_t *src, size_t len, size_t *out_len)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t cap = LZ4F_compressFrameBound(len, &prefs);
    uint8_t *o = malloc(cap);
    *out_len = LZ4F_compressFrame(o, cap, src, len, &prefs);
    return o;
}

static uint8_t *zstd_of(const uint8_t *src, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *o = malloc(cap);
    *out_len = ZSTD_compress(o, cap, src, len, 3);
    return o;
}

TT_TEST(valid_batches_of_every_codec_pass)
{
    size_t rl, cl, n;
    uint8_t *recs = records(700, &rl), *c, *b;
    char err[256] = "";
    ts_batch_hdr h;
    b = wrap(0, 700, recs, rl, &n);
    TT_OKE(check(b, n, MAXB, err, sizeof(err)), err);
    free(b);
    /* ts_batch_build's batches (the engine's own tests and bench) too. */
    const char *vals[] = {"a", "bb", ""};
    size_t lens[] = {1, 2, 0};
    TT_OK(ts_batch_build((const void *const *)vals, lens, 3, 5, &b, &n));
    TT_OKE(check(b, n, MAXB, err, sizeof(err)), err);
    free(b);

    struct {
        const char *name;
        int codec;
        uint8_t *data;
        size_t len;
    } cases[] = {
        {"gzip", 1, gzip_of(recs, rl, &cl), cl},
        {"snappy raw (librdkafka)", 2, snappy_raw_of(recs, rl, &cl), cl},
        {"snappy xerial (Java)", 2, snappy_xerial_of(recs, rl, 4096, 0, &cl), cl},
        {"snappy xerial concatenated", 2, snappy_xerial_of(recs, rl, 4096, 1, &cl), cl},
        {"lz4 frame", 3, lz4_of(recs, rl, &cl), cl},
        {"zstd", 4, zstd_of(recs, rl, &cl), cl},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = cases[i].data;
        b = wrap((int16_t)cases[i].codec, 700, c, cases[i].len, &n);
        ts_status st = check(b, n, MAXB, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_OK, "%s: %s", cases[i].name, err);
        /* The same payload cut short is refused, never half-walked. */
        free(b);
        b = wrap((int16_t)cases[i].codec, 700, c, cases[i].len - 7, &n);
        st = check(b, n, MAXB, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_E_INVALID_RECORD, "%s truncated: %d %s", cases[i].name, st, err);
        /* And claiming one record more than it holds. */
        free(b);
        b = wrap((int16_t)cases[i].codec, 701, c, cases[i].len, &n);
        st = check(b, n, MAXB, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_E_INVALID_RECORD && strstr(err, "700 of its 701"), "%s count+1: %s",
                      cases[i].name, err);
        free(b);
        free(c);
    }
    /* Control and transactional bits do not change the walk: whether a
     * client may send them is the broker's policy (it refuses them). */
    b = wrap(0x30, 700, recs, rl, &n);
    TT_OKE(ts_batch_validate(b, n, MAXB, &h, err, sizeof(err)), err);
    TT_OKE(ts_batch_validate_records(b, &h, MAXB, err, sizeof(err)), err);
    free(b);
    free(recs);
}

TT_TEST(malformed_records_are_refused)
{
    char err[256];
    size_t n, rl;
    uint8_t *b;
    /* An inner record length of 10000 with 3 bytes present. */
    uint8_t trunc[8];
    size_t m = put_varint(trunc, 10000);
    trunc[m++] = 0;
    trunc[m++] = 0;
    trunc[m++] = 0;
    b = wrap(0, 1, trunc, m, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "record 0:") && strstr(err, "10000"), "%s", err);
    free(b);
    /* Garbage records (a valid frame and CRC around random bytes). */
    uint8_t junk[300];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    b = wrap(0, 5, junk, sizeof(junk), &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    free(b);
    /* recordsCount = 2^31-1 (lastOffsetDelta consistent) and no records:
     * the frame check passes, the walk does not. */
    b = wrap(0, INT32_MAX, NULL, 0, &n);
    ts_batch_hdr h;
    TT_OK(ts_batch_validate(b, n, MAXB, &h, err, sizeof(err)));
    TT_ASSERT_EQ_INT(ts_batch_validate_records(b, &h, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "0 of its 2147483647"), "%s", err);
    free(b);
    /* Fewer claimed than present; offsetDelta not the index; a field that
     * runs past its record; a negative header count. */
    uint8_t *recs = records(4, &rl);
    b = wrap(0, 3, recs, rl, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "bytes left after its 3 records"), "%s", err);
    free(b);
    uint8_t one[32];
    size_t k = 0;
    one[k++] = 6; /* length 3 (zig-zag) */
    one[k++] = 0;
    one[k++] = 0;
    one[k++] = 2; /* offsetDelta 1 in record 0 */
    b = wrap(0, 1, one, k, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "record 0: invalid offsetDelta 1"), "%s", err);
    free(b);
    k = 0;
    one[k++] = 2 * 5; /* length 5 */
    one[k++] = 0, one[k++] = 0, one[k++] = 0;
    one[k++] = 1;       /* key: null */
    one[k++] = 2 * 4;   /* value of 4 bytes: past the record's 5 */
    memcpy(one + k, "abcd", 4), k += 4;
    one[k++] = 0;
    b = wrap(0, 1, one, k, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "record 0: value runs past"), "%s", err);
    free(b);
    k = 0;
    one[k++] = 2 * 6;
    one[k++] = 0, one[k++] = 0, one[k++] = 0, one[k++] = 1, one[k++] = 1;
    one[k++] = 1; /* headers count -1 */
    b = wrap(0, 1, one, k, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
    TT_ASSERT_MSG(strstr(err, "headers count -1"), "%s", err);
    free(b);
    /* Unknown codecs (5, 6, 7) and "gzip" (and the others) that are not. */
    for (int codec = 5; codec <= 7; codec++) {
        b = wrap((int16_t)codec, 4, recs, rl, &n);
        TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
        TT_ASSERT_MSG(strstr(err, "codec"), "%s", err);
        free(b);
    }
    for (int codec = 1; codec <= 4; codec++) {
        b = wrap((int16_t)codec, 4, recs, rl, &n);
        TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_INVALID_RECORD);
        TT_ASSERT_MSG(strstr(err, "decompress") || strstr(err, "ends"), "codec %d: %s", codec, err);
        free(b);
    }
    free(recs);
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* One record whose value is `vlen` zero bytes (a valid record, so only the
 * bound stops it): writes the record's head into head[] and its tail byte
 * (headers count 0) into *tail. */
static size_t bomb_head(uint8_t *head, uint64_t vlen)
{
    uint8_t body[32];
    size_t m = 0;
    body[m++] = 0;
    m += put_varint(body + m, 0);
    m += put_varint(body + m, 0);
    m += put_varint(body + m, -1);
    m += put_varint(body + m, (int64_t)vlen);
    size_t k = put_varint(head, (int64_t)(m + vlen + 1));
    memcpy(head + k, body, m);
    return k + m;
}

/* The whole bomb record in memory (for the codecs compressed in one call). */
static uint8_t *bomb_record(size_t vlen, size_t *len)
{
    uint8_t head[48];
    size_t hl = bomb_head(head, vlen);
    uint8_t *r = calloc(1, hl + vlen + 1);
    memcpy(r, head, hl);
    *len = hl + vlen + 1;
    return r;
}

TT_TEST(compression_bombs_stop_at_the_bound)
{
    /* ~200 KB of gzip that inflates to one 200 MiB record, compressed here
     * in 1 MiB steps so that the test itself never holds 200 MiB. */
    const size_t total = 200u << 20, step = 1u << 20;
    uint8_t *zeros = calloc(1, step), head[48];
    size_t hl = bomb_head(head, total);
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
    size_t cap = 1u << 20, used = 0;
    uint8_t *gz = malloc(cap);
    /* Round 0: the record's head; rounds 1..200: 1 MiB of the value each;
     * the last: its headers count. */
    for (size_t round = 0; round <= total / step + 1; round++) {
        int last = round == total / step + 1;
        z.next_in = round == 0 ? head : last ? (Bytef *)"" : zeros;
        z.avail_in = round == 0 ? (uInt)hl : last ? 1 : (uInt)step;
        do {
            z.next_out = gz + used;
            z.avail_out = (uInt)(cap - used);
            deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
            used = cap - z.avail_out;
        } while (z.avail_in > 0 || (last && z.avail_out == 0));
    }
    deflateEnd(&z);
    free(zeros);
    TT_ASSERT(used < 400 * 1024);
    char err[256];
    size_t n;
    long rss0 = max_rss_kb();
    uint8_t *b = wrap(1, 1, gz, used, &n);
    TT_ASSERT_EQ_INT(check(b, n, MAXB, err, sizeof(err)), TS_E_MSG_TOO_LARGE);
    TT_ASSERT_MSG(strstr(err, "gzip") && strstr(err, "1048576"), "%s", err);
    /* Peak memory did not follow the 200 MiB (the walk holds a 64 KiB window). */
    long grew_kb = max_rss_kb() - rss0;
    printf("    gzip bomb: %zu compressed bytes for %zu MiB, peak RSS grew %ld KiB\n", used,
           total >> 20, grew_kb);
    TT_ASSERT_MSG(grew_kb < 16 * 1024, "peak RSS grew %ld KiB", grew_kb);
    /* The same bomb is fine under a bound that holds it (it is valid). */
    TT_OKE(check(b, n, 256u << 20, err, sizeof(err)), err);
    free(b);
    free(gz);

    /* zstd, lz4 and snappy (both framings) bombs of 8 MiB against the 1 MiB
     * bound; raw snappy declares its size up front and is refused before
     * allocating. */
    size_t rl, cl;
    uint8_t *rec = bomb_record(8u << 20, &rl);
    for (int k = 0; k < 4; k++) {
        int codec = k == 0 ? 4 : k == 1 ? 3 : 2;
        uint8_t *c = k == 0   ? zstd_of(rec, rl, &cl)
                     : k == 1 ? lz4_of(rec, rl, &cl)
                     : k == 2 ? snappy_raw_of(rec, rl, &cl)
                              : snappy_xerial_of(rec, rl, 32768, 0, &cl);
        b = wrap((int16_t)codec, 1, c, cl, &n);
        ts_status st = check(b, n, MAXB, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_E_MSG_TOO_LARGE, "bomb %d: %d %s", k, st, err);
        st = check(b, n, 16u << 20, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_OK, "bomb %d under a 16 MiB bound: %d %s", k, st, err);
        free(b);
        free(c);
    }
    free(rec);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(valid_batches_of_every_codec_pass);
    TT_RUN(malformed_records_are_refused);
    TT_RUN(compression_bombs_stop_at_the_bound);
    return tt_summary();
}
