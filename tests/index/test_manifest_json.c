/*
 * test_manifest_json.c — unit tests of index/'s formats: manifest JSON (round
 * trip, 64-bit values, a table of malformed inputs, keys owned by the
 * partition, the encryption envelope), the chunk-table frame, the 64-byte
 * resident entry, the bucket's key builders and parsers.
 */
#include "index_test.h"

/* ------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

TT_TEST(test_json_roundtrip_large_values)
{
    ts_segment_meta in[3];
    mkseg(&in[0], 0, 99, 1, 1000);
    mkseg(&in[1], 100, 199, 3, 2000);
    /* Beyond 2^53: must come back exactly (written as decimal strings). */
    mkseg(&in[2], INT64_MAX - 1000, INT64_MAX - 1, 2, INT64_MAX);
    in[2].size_bytes = 200;
    in[2].stored_bytes = UINT64_MAX;
    in[2].chunks[1].stored_pos = UINT64_MAX - 100;
    in[2].chunks[1].stored_len = 100;
    in[2].first_timestamp = -1;
    in[2].upload_time_ms = (INT64_C(1) << 53) + 1;
    in[2].chunks[0].raw_crc32c = 0xffffffffu;
    in[2].chunks[1].max_timestamp = -1;

    char *json = NULL;
    size_t len = 0;
    TT_OK(ts_manifest_to_json("orders", 3, UINT64_MAX, 50, in, 3, &json, &len));
    TT_ASSERT(strlen(json) == len);
    TT_ASSERT(strstr(json, "\"version\":\"18446744073709551615\""));
    TT_ASSERT(strstr(json, "\"log_start_offset\":50,"));
    TT_ASSERT(strstr(json, "\"base_offset\":\"9223372036854774807\""));
    TT_ASSERT(strstr(json, "\"base_offset\":100,")); /* small values stay numbers */
    TT_ASSERT(strstr(json, "\"upload_time_ms\":\"9007199254740993\""));

    char topic[256], err[512] = "";
    int32_t part = -1;
    uint64_t version = 0;
    int64_t lso = 0;
    ts_segment_meta *out = NULL;
    size_t n = 0;
    TT_OKE(ts_manifest_from_json(json, len, topic, sizeof(topic), &part, &version, &lso, &out, &n,
                                 err, sizeof(err)),
           err);
    TT_ASSERT_STR(topic, "orders");
    TT_ASSERT_EQ_INT(part, 3);
    TT_ASSERT(version == UINT64_MAX);
    TT_ASSERT(lso == 50);
    TT_ASSERT_EQ_INT(n, 3);
    for (int i = 0; i < 3; i++) TT_ASSERT_MSG(seg_eq(&in[i], &out[i]), "segment %d differs", i);

    /* Re-rendering the parsed state yields the same bytes (stable format). */
    char *json2 = NULL;
    size_t len2 = 0;
    TT_OK(ts_manifest_to_json(topic, part, version, lso, out, n, &json2, &len2));
    TT_ASSERT(len2 == len && !memcmp(json, json2, len));

    /* Every strict prefix is refused, never crashes. */
    for (size_t cut = 0; cut < len - 1; cut++) {
        ts_segment_meta *o2 = NULL;
        size_t n2 = 0;
        ts_status st = ts_manifest_from_json(json, cut, NULL, 0, NULL, NULL, NULL, &o2, &n2, err,
                                             sizeof(err));
        TT_ASSERT_MSG(st != TS_OK, "prefix of %zu bytes parsed", cut);
    }
    free(json);
    free(json2);
    ts_index_snapshot_free(out, n);
    for (int i = 0; i < 3; i++) ts_segment_meta_clear(&in[i]);
}

TT_TEST(test_json_empty_manifest)
{
    char *json = NULL;
    size_t len = 0;
    TT_OK(ts_manifest_to_json("t", 0, 1, 0, NULL, 0, &json, &len));
    ts_segment_meta *out = (ts_segment_meta *)1;
    size_t n = 9;
    char err[256];
    TT_OKE(ts_manifest_from_json(json, len, NULL, 0, NULL, NULL, NULL, &out, &n, err, sizeof(err)),
           err);
    TT_ASSERT_EQ_INT(n, 0);
    TT_ASSERT(out == NULL);
    free(json);
    /* The writer refuses what the parser would refuse. */
    ts_segment_meta bad[2];
    mkseg(&bad[0], 0, 99, 1, 1);
    mkseg(&bad[1], 50, 150, 1, 1);
    TT_ASSERT_EQ_INT(ts_manifest_to_json("t", 0, 1, 0, bad, 2, &json, &len), TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_manifest_to_json("bad/topic", 0, 1, 0, NULL, 0, &json, &len), TS_E_INVAL);
    ts_segment_meta_clear(&bad[0]);
    ts_segment_meta_clear(&bad[1]);
}

#define HDR "{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":1,\"log_start_offset\":0,"
#define CHUNK(rp, rl, sp, sl, fo)                                                                \
    "{\"raw_pos\":" #rp ",\"raw_len\":" #rl ",\"stored_pos\":" #sp ",\"stored_len\":" #sl         \
    ",\"first_offset\":" #fo ",\"max_timestamp\":5,\"stored_crc32c\":1,\"raw_crc32c\":2}"
#define SEGX(base, last, size, stored, key, comp, chunks)                                        \
    "{\"base_offset\":" #base ",\"last_offset\":" #last                                          \
    ",\"first_timestamp\":1,\"max_timestamp\":5,\"size_bytes\":" #size                           \
    ",\"stored_bytes\":" #stored ",\"upload_time_ms\":7,\"segment_crc32c\":3,\"object_key\":\""   \
    key "\",\"compression\":\"" comp "\",\"chunks\":[" chunks "]}"
#define SEG(base, last, key, chunks) SEGX(base, last, 200, 100, key, "zstd", chunks)
#define TWO(base, next) CHUNK(0, 100, 0, 50, base) "," CHUNK(100, 100, 50, 50, next)
#define DOC(segs) HDR "\"segments\":[" segs "]}"

TT_TEST(test_json_rejects_bad_input)
{
    static const struct {
        const char *json;
        const char *expect; /* substring of the error message */
    } cases[] = {
        {"", "bytes"},
        {"{", "not valid JSON"},
        {"[]", "expected a JSON object"},
        {"{\"format\":1}", "topic: is missing"},
        {"{\"topic\":\"t\"}", "format: is missing"},
        {"{\"format\":3,\"topic\":\"t\"}", "not supported"},
        {"{\"format\":1,\"topic\":\"a/b\",\"partition\":0}", "topic: 'a/b'"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":-1}", "partition: -1 is outside"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":1.5}", "version: is not an integer"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":9007199254740993}",
         "version: number beyond 2^53-1"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":\"007\"}", "canonical"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":\"18446744073709551616\"}",
         "overflows"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":true}", "expected an integer"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":1,\"version\":2}",
         "version: appears twice"},
        {HDR "\"segments\":{}}", "segments: expected an array"},
        {HDR "\"segments\":[]} x", "trailing bytes"},
        {HDR "\"segments\":[1]}", "segments[0]: expected an object"},
        {DOC(SEG(-1, 10, "k", TWO(0, 1))), "segments[0].base_offset: -1 is outside"},
        {DOC(SEG(10, 5, "k", CHUNK(0, 100, 0, 50, 10) "," CHUNK(100, 100, 50, 50, 11))),
         "segments[0]: last_offset 5 is below base_offset 10"},
        {DOC(SEG(0, 9, "a/x", TWO(0, 1)) "," SEG(5, 20, "a/y", TWO(5, 6))),
         "segments[1]: base_offset 5 is not above segments[0]'s last_offset 9"},
        {DOC(SEG(10, 19, "a/x", TWO(10, 11)) "," SEG(0, 9, "a/y", TWO(0, 1))),
         "segments[1]: base_offset 0 is not above"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0) "," CHUNK(150, 50, 50, 50, 1))),
         "segments[0]: chunks[1].raw_pos 150 should be 100"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0))), "chunks cover 100 raw bytes but size_bytes is 200"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0) "," CHUNK(100, 100, 90, 50, 1))),
         "runs past stored_bytes 100"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0) "," CHUNK(100, 100, 20, 50, 1))),
         "chunks[1].stored_pos 20 overlaps"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 3) "," CHUNK(100, 100, 50, 50, 4))),
         "chunks[0].first_offset 3 differs from base_offset 0"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0) "," CHUNK(100, 100, 50, 50, 10))),
         "chunks[1].first_offset 10 is beyond last_offset 9"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 100, 0, 50, 0) "," CHUNK(100, 100, 50, 50, 0))),
         "chunks[1].first_offset 0 is not above"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 0, 0, 50, 0) "," CHUNK(0, 200, 50, 50, 1))),
         "segments[0].chunks[0].raw_len: 0 is outside"},
        {DOC(SEG(0, 9, "k", CHUNK(0, 4294967296, 0, 50, 0))), "raw_len: 4294967296 is outside"},
        {DOC(SEG(0, 9, "k", "7")), "segments[0].chunks[0]: expected an object"},
        {DOC(SEG(0, 9, "k", "")), "segments[0].chunks: is empty"},
        {DOC(SEG(0, 9, "../etc/passwd", TWO(0, 1))), "object_key has a '.' or '..' path component"},
        {DOC(SEG(0, 9, "/abs", TWO(0, 1))), "object_key starts or ends with '/'"},
        {DOC(SEG(0, 9, "a//b", TWO(0, 1))), "empty path component"},
        {DOC(SEG(0, 9, "", TWO(0, 1))), "object_key is empty"},
        {DOC(SEG(0, 9, "a\\u0001b", TWO(0, 1))), "control character"},
        {DOC(SEGX(0, 9, 200, 100, "k", "gzip", TWO(0, 1))), "compression: 'gzip' is not supported"},
        {DOC(SEGX(0, 9, 0, 100, "k", "zstd", TWO(0, 1))), "size_bytes: 0 is outside"},
        {DOC(SEGX(0, 9, 200, -100, "k", "zstd", TWO(0, 1))), "stored_bytes: is negative"},
        {"{\"format\":1,\"topic\":\"t\",\"partition\":0,\"version\":1,\"log_start_offset\":50,"
         "\"segments\":[" SEG(0, 9, "k", TWO(0, 1)) "]}",
         "below log_start_offset 50"},
        {DOC("{\"base_offset\":0}"), "segments[0].last_offset: is missing"},
        {DOC(SEG(0, 9, "k",
                 "{\"raw_pos\":0,\"raw_len\":200,\"stored_pos\":0,\"stored_len\":1,"
                 "\"first_offset\":0,\"max_timestamp\":5,\"stored_crc32c\":1}")),
         "segments[0].chunks[0].raw_crc32c: is missing"},
        {DOC(SEG(0, 9, "k",
                 "{\"raw_pos\":0,\"raw_len\":200,\"stored_pos\":0,\"stored_len\":1,"
                 "\"first_offset\":0,\"max_timestamp\":5,\"stored_crc32c\":4294967296,"
                 "\"raw_crc32c\":1}")),
         "stored_crc32c: 4294967296 is outside"},
    };
    /* Sanity: the fixtures themselves are fine when nothing is wrong. */
    const char *good =
        DOC(SEG(0, 9, "t/0/segments/x", TWO(0, 1)) "," SEG(10, 20, "t/0/segments/y", TWO(10, 11)));
    char err[512] = "";
    ts_segment_meta *segs = NULL;
    size_t n = 0;
    TT_OKE(ts_manifest_from_json(good, strlen(good), NULL, 0, NULL, NULL, NULL, &segs, &n, err,
                                 sizeof(err)),
           err);
    TT_ASSERT_EQ_INT(n, 2);
    ts_index_snapshot_free(segs, n);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].json);
        err[0] = '\0';
        segs = NULL;
        n = 0;
        ts_status st = ts_manifest_from_json(cases[i].json, len, NULL, 0, NULL, NULL, NULL, &segs,
                                             &n, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_E_CORRUPT || st == TS_E_UNSUPPORTED,
                      "case %zu parsed (%s): %s", i, ts_status_name(st), cases[i].json);
        TT_ASSERT_MSG(strstr(err, cases[i].expect), "case %zu: error '%s' lacks '%s'", i, err,
                      cases[i].expect);
        TT_ASSERT(segs == NULL);
    }
    /* An embedded NUL ends the document early: the rest is trailing bytes. */
    static const char nul[] = HDR "\"segments\":[]}\0 ";
    TT_ASSERT_EQ_INT(ts_manifest_from_json(nul, sizeof(nul) - 1, NULL, 0, NULL, NULL, NULL, &segs,
                                           &n, err, sizeof(err)),
                     TS_E_CORRUPT);
    TT_ASSERT(strstr(err, "trailing bytes"));
    /* Numbers and decimal strings are both accepted for every integer. */
    static const char strs[] = "{\"format\":\"1\",\"topic\":\"t\",\"partition\":\"2\","
                               "\"version\":\"-0\",\"log_start_offset\":0,\"segments\":[]}";
    TT_ASSERT_EQ_INT(ts_manifest_from_json(strs, sizeof(strs) - 1, NULL, 0, NULL, NULL, NULL,
                                           &segs, &n, err, sizeof(err)),
                     TS_E_CORRUPT); /* "-0" is not canonical */
    static const char strs2[] = "{\"format\":\"1\",\"topic\":\"t\",\"partition\":\"2\","
                                "\"version\":\"9\",\"log_start_offset\":"
                                "\"9223372036854775807\",\"segments\":[],\"future\":{}}";
    uint64_t version = 0;
    int64_t lso = 0;
    int32_t part = 0;
    TT_OKE(ts_manifest_from_json(strs2, sizeof(strs2) - 1, NULL, 0, &part, &version, &lso, &segs,
                                 &n, err, sizeof(err)),
           err);
    TT_ASSERT(part == 2 && version == 9 && lso == INT64_MAX && n == 0);
}

/* Issue 7 item 3: a manifest names only its own partition's segment
 * objects. Retention deletes what a manifest names, so a damaged or foreign
 * one naming another partition's (or its own manifest) objects is refused on
 * every load path, never acted on. */
TT_TEST(test_manifest_keys_owned_by_partition)
{
    static const char *const foreign[] = {
        "t/1/segments/x",   /* another partition of the topic */
        "u/0/segments/x",   /* another topic */
        "t/00/segments/x",  /* not how keys.c spells partition 0 */
        "tt/0/segments/x",  /* a topic the prefix only starts */
        "t/0/manifests/00000000000000000001.json", /* its own manifest object */
        "t/0/segmentsx/a",
        "t/0/segments",
        "x",
    };
    char json[2048], err[512];
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        snprintf(json, sizeof(json),
                 HDR "\"segments\":[" SEG(0, 9, "t/0/segments/ok", TWO(0, 1)) ",%s]}",
                 SEG(10, 20, "@KEY@", TWO(10, 11)));
        char *at = strstr(json, "@KEY@");
        TT_ASSERT(at != NULL);
        char tail[2048];
        snprintf(tail, sizeof(tail), "%s", at + 5);
        snprintf(at, sizeof(json) - (size_t)(at - json), "%s%s", foreign[i], tail);
        ts_segment_meta *segs = NULL;
        size_t n = 0;
        err[0] = '\0';
        ts_status st = ts_manifest_from_json(json, strlen(json), NULL, 0, NULL, NULL, NULL, &segs,
                                             &n, err, sizeof(err));
        TT_ASSERT_MSG(st == TS_E_CORRUPT, "key '%s' accepted (%s)", foreign[i], ts_status_name(st));
        TT_ASSERT_MSG(strstr(err, "segments[1].object_key") &&
                          strstr(err, "not under this partition's prefix 't/0/segments/'"),
                      "key '%s': message '%s'", foreign[i], err);
        TT_ASSERT(segs == NULL);
    }

    char dir[256], dir2[256], bucket[256], url[300], path[300], key[TS_INDEX_KEY_MAX];
    tt_tmpdir(dir, sizeof(dir), "idx-own");
    tt_tmpdir(dir2, sizeof(dir2), "idx-own2");
    tt_tmpdir(bucket, sizeof(bucket), "idx-ownb");
    snprintf(url, sizeof(url), "file://%s", bucket);
    snprintf(path, sizeof(path), "%s/remote_manifest.json", dir);

    /* Local file: a pending deletion of another partition's object. */
    static const char local_doc[] =
        "{\"format\":1,\"topic\":\"orders\",\"partition\":3,\"version\":2,\"log_start_offset\":0,"
        "\"remote_version\":2,\"segments\":[],"
        "\"pending_deletes\":[{\"key\":\"orders/4/segments/00000000000000000000-a.log.zst\"}]}";
    TT_OK(ts_fs_write_atomic(path, local_doc, sizeof(local_doc) - 1, err, sizeof(err)));
    ts_index *idx;
    TT_OKE(ts_index_create("orders", 3, dir, NULL, &idx, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_index_load_local(idx, err, sizeof(err)), TS_E_CORRUPT);
    TT_ASSERT_MSG(strstr(err, "pending_deletes[0].key") && strstr(err, "orders/3/segments/") &&
                      strstr(err, "remote_manifest.json"),
                  "message: %s", err);
    ts_index_destroy(idx);

    /* Bucket: v1 is good, v2 names orders-4's object. Recovery skips v2. */
    ts_objstore *os;
    TT_OKE(ts_objstore_open(url, NULL, &os, err, sizeof(err)), err);
    ts_segment_meta seg;
    mkseg(&seg, 0, 99, 2, 10);
    char *good = NULL;
    size_t glen = 0;
    TT_OK(ts_manifest_to_json("orders", 3, 1, 0, &seg, 1, &good, &glen));
    ts_index_manifest_key("orders", 3, 1, key, sizeof(key));
    TT_OKE(ts_objstore_put(os, key, good, glen, TS_PUT_IF_NONE_MATCH, err, sizeof(err)), err);
    char *bad = strdup(good);
    TT_ASSERT(bad != NULL);
    char *k = strstr(bad, "orders/3/segments/");
    TT_ASSERT(k != NULL);
    k[7] = '4';
    char *v = strstr(bad, "\"version\":1");
    TT_ASSERT(v != NULL);
    v[10] = '2';
    ts_index_manifest_key("orders", 3, 2, key, sizeof(key));
    TT_OKE(ts_objstore_put(os, key, bad, glen, TS_PUT_IF_NONE_MATCH, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(ts_manifest_from_json(bad, glen, NULL, 0, NULL, NULL, NULL, NULL, NULL, err,
                                           sizeof(err)),
                     TS_E_CORRUPT);
    TT_OKE(ts_index_create("orders", 3, dir2, os, &idx, err, sizeof(err)), err);
    TT_OKE(ts_index_load_remote(idx, err, sizeof(err)), err);
    ts_index_summary s;
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.version, 1);
    ts_segment_meta m;
    memset(&m, 0, sizeof(m));
    TT_OK(ts_index_lookup_offset(idx, 5, &m));
    TT_ASSERT(strncmp(m.object_key, "orders/3/segments/", 18) == 0);
    ts_segment_meta_clear(&m);

    /* The writer refuses such an entry too: nothing is committed. */
    ts_segment_meta other;
    mkseg(&other, 100, 199, 2, 20);
    ts_index_segment_key("orders", 4, 100, "zz", other.object_key, sizeof(other.object_key));
    TT_ASSERT(ts_index_add(idx, &other, err, sizeof(err)) != TS_OK);
    TT_ASSERT_MSG(strstr(err, "not under this partition's prefix"), "message: %s", err);
    ts_index_summary_get(idx, &s);
    TT_ASSERT_EQ_INT(s.count, 1);
    TT_ASSERT_EQ_INT(s.version, 1);
    ts_index_destroy(idx);

    ts_segment_meta_clear(&other);
    ts_segment_meta_clear(&seg);
    free(good);
    free(bad);
    ts_objstore_destroy(os);
    rmrf(dir);
    rmrf(dir2);
    rmrf(bucket);
}

/* The chunk table frame: what the uploader writes is what the reader
 * accepts; a flipped bit or a table of another segment is refused. */
TT_TEST(test_chunk_table_frame)
{
    char err[512];
    ts_segment_meta s, r;
    mkseg(&s, 1000, 1999, 3, 77);
    s.chunk_table_len = TS_CHUNK_TABLE_LEN(3);
    s.stored_bytes = 40 * 3 + s.chunk_table_len + 8 * 3 + 17;
    s.chunk_table_pos = 40 * 3;
    uint8_t *f = malloc(s.chunk_table_len);
    ts_chunk_table_encode(&s, f);
    TT_ASSERT_EQ_INT(f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24, TS_CHUNK_TABLE_MAGIC);
    r = s;
    r.chunks = NULL;
    r.segment_crc32c = 0;
    TT_OKE(ts_chunk_table_decode(f, s.chunk_table_len, &r, err, sizeof(err)), err);
    TT_ASSERT(seg_eq(&s, &r));
    ts_segment_meta_clear(&r);
    f[60] ^= 1;
    r = s;
    r.chunks = NULL;
    TT_ASSERT_EQ_INT(ts_chunk_table_decode(f, s.chunk_table_len, &r, err, sizeof(err)),
                     TS_E_CHECKSUM);
    TT_ASSERT(!r.chunks);
    f[60] ^= 1;
    r = s;
    r.chunks = NULL;
    r.base_offset = 1001;
    TT_ASSERT_EQ_INT(ts_chunk_table_decode(f, s.chunk_table_len, &r, err, sizeof(err)),
                     TS_E_CORRUPT);
    /* Where the frame lies is checked too: just before the seek table. */
    r = s;
    r.chunks = NULL;
    r.chunk_table_pos += 1;
    TT_ASSERT_EQ_INT(ts_manifest_check_segment(&r, "r", err, sizeof(err)), TS_E_CORRUPT);
    free(f);
    ts_segment_meta_clear(&s);
}

/* Encryption at rest: an entry's envelope round-trips through the JSON
 * ("encryption" member) and every defect in it is refused naming the field;
 * the chunk-table frame's "sealed" flag must agree with the entry. */
static ts_status parse_one(const char *json, ts_segment_meta **out, char *err, size_t errlen)
{
    size_t n = 0;
    *out = NULL;
    return ts_manifest_from_json(json, strlen(json), NULL, 0, NULL, NULL, NULL, out, &n, err,
                                 errlen);
}

static char *replaced(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) return NULL;
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return o;
}

TT_TEST(test_encryption_envelope_json_and_frame_flag)
{
    char err[512];
    ts_segment_meta s, *out = NULL;
    mkseg(&s, 1000, 1999, 3, 77);
    free(s.chunks);
    s.chunks = NULL;
    s.chunk_table_len = TS_CHUNK_TABLE_LEN(3);
    s.stored_bytes = 40 * 3 + s.chunk_table_len + 8 * 3 + 17;
    s.chunk_table_pos = 40 * 3;
    s.sealed = 1;
    snprintf(s.key_id, sizeof(s.key_id), "kek-2026.a");
    for (int i = 0; i < TS_CRYPT_WRAPPED_LEN; i++) s.wrapped_key[i] = (uint8_t)(i * 7 + 3);
    char *json = NULL;
    size_t len = 0;
    TT_OK(ts_manifest_to_json("orders", 3, 5, 0, &s, 1, &json, &len));
    TT_ASSERT_MSG(strstr(json, "\"encryption\":{\"cipher\":\"aes-256-gcm\",\"key_id\":\"kek-2026.a\","
                               "\"wrapped_key\":\""),
                  "%s", json);
    TT_OKE(parse_one(json, &out, err, sizeof(err)), err);
    TT_ASSERT(out[0].sealed && !strcmp(out[0].key_id, "kek-2026.a"));
    TT_ASSERT(!memcmp(out[0].wrapped_key, s.wrapped_key, TS_CRYPT_WRAPPED_LEN));
    TT_ASSERT(ts_segment_meta_equal(&s, &out[0]));
    ts_index_snapshot_free(out, 1);
    static const char *const bad[][3] = {
        {"\"aes-256-gcm\"", "\"aes-128-gcm\"", "encryption.cipher"},
        {"\"kek-2026.a\"", "\"kek/2026\"", "encryption.key_id"},
        {"\"kek-2026.a\"", "\"\"", "encryption.key_id"},
        {"\"wrapped_key\":\"", "\"wrapped_key\":\"AAAA", "encryption.wrapped_key"},
        {"\"key_id\"", "\"kid\"", "encryption.key_id: is missing"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *j = replaced(json, bad[i][0], bad[i][1]);
        TT_ASSERT(j != NULL);
        ts_status st = parse_one(j, &out, err, sizeof(err));
        free(j);
        ts_index_snapshot_free(out, out ? 1 : 0);
        TT_ASSERT_EQ_INT(st, TS_E_CORRUPT);
        TT_ASSERT_MSG(strstr(err, bad[i][2]) != NULL, "'%s' should name %s", err, bad[i][2]);
    }
    free(json);
    /* The frame says sealed; an entry without the envelope is refused. */
    mkseg(&s, 1000, 1999, 3, 77);
    s.chunk_table_len = TS_CHUNK_TABLE_LEN(3);
    s.stored_bytes = 40 * 3 + s.chunk_table_len + 8 * 3 + 17;
    s.chunk_table_pos = 40 * 3;
    s.sealed = 1;
    snprintf(s.key_id, sizeof(s.key_id), "k1");
    uint8_t *f = malloc(s.chunk_table_len);
    ts_chunk_table_encode(&s, f);
    ts_segment_meta r = s;
    r.chunks = NULL;
    TT_OKE(ts_chunk_table_decode(f, s.chunk_table_len, &r, err, sizeof(err)), err);
    TT_ASSERT(r.sealed && !strcmp(r.key_id, "k1"));
    ts_segment_meta_clear(&r);
    r = s;
    r.chunks = NULL;
    r.sealed = 0;
    TT_ASSERT_EQ_INT(ts_chunk_table_decode(f, s.chunk_table_len, &r, err, sizeof(err)),
                     TS_E_CORRUPT);
    TT_ASSERT_MSG(strstr(err, "sealed") != NULL, "%s", err);
    free(f);
    ts_segment_meta_clear(&s);
}

/* The resident entry is the 64 bytes issue 9 asks for. */
TT_TEST(test_entry_size)
{
    TT_ASSERT_EQ_INT(sizeof(ts_index_entry), 64);
}

TT_TEST(test_keys)
{
    char out[TS_INDEX_KEY_MAX];
    ts_index_topic_prefix("orders", out, sizeof(out));
    TT_ASSERT_STR(out, "orders/");
    ts_index_partition_prefix("orders", 3, out, sizeof(out));
    TT_ASSERT_STR(out, "orders/3/");
    ts_index_segment_key("orders", 3, 42, "x9", out, sizeof(out));
    TT_ASSERT_STR(out, "orders/3/segments/00000000000000000042-x9.log.zst");
    ts_index_segment_key("t", 0, INT64_MAX, "a", out, sizeof(out));
    TT_ASSERT_STR(out, "t/0/segments/09223372036854775807-a.log.zst");
    ts_index_manifest_key("t", 0, UINT64_MAX, out, sizeof(out));
    TT_ASSERT_STR(out, "t/0/manifests/18446744073709551615.json");
    ts_index_manifest_prefix("t", 7, out, sizeof(out));
    TT_ASSERT_STR(out, "t/7/manifests/");

    /* Reading keys back: what the builders write parses to its partition;
     * anything else under "<topic>/" is not a manifest of a partition. */
    ts_index_manifest_key("t", 12, 3, out, sizeof(out));
    TT_ASSERT_EQ_INT(ts_index_key_manifest_partition(out + 2), 12);
    ts_index_piece_key("t", 2147483647, 0, 9, "ab", out, sizeof(out));
    TT_ASSERT_EQ_INT(ts_index_key_manifest_partition(out + 2), 2147483647);
    static const char *const not_manifests[] = {
        "2147483648/manifests/1.json", "/manifests/1.json", "+1/manifests/1.json",
        "-1/manifests/1.json", " 1/manifests/1.json", "1x/manifests/1.json",
        "1/segments/0-a.log.zst", "1/manifests", "config/0-a.properties", ""};
    for (size_t i = 0; i < sizeof(not_manifests) / sizeof(not_manifests[0]); i++)
        TT_ASSERT_MSG(ts_index_key_manifest_partition(not_manifests[i]) == -1, "'%s' parsed",
                      not_manifests[i]);
    ts_index_topic_desc_key("t", 5, "ab", out, sizeof(out));
    TT_ASSERT(ts_index_key_is_topic_desc(out + 2));
    ts_index_topic_config_key("t", 5, "ab", out, sizeof(out));
    TT_ASSERT(!ts_index_key_is_topic_desc(out + 2));
    TT_ASSERT(!ts_index_key_is_topic_desc("descriptor/x.json.tmp"));
    TT_ASSERT(!ts_index_key_is_topic_desc("0/descriptor/x.json"));
    ts_index *idx;
    char err[256];
    TT_ASSERT_EQ_INT(ts_index_create("bad topic", 0, "/tmp", NULL, &idx, err, sizeof(err)),
                     TS_E_INVAL);
    TT_ASSERT_EQ_INT(ts_index_create("t", -1, "/tmp", NULL, &idx, err, sizeof(err)), TS_E_INVAL);
    ts_index_destroy(NULL);
}
int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    if (!getenv("TS_LOG_LEVEL")) ts_log_set_level(TS_LOG_ERROR); /* expected warnings */
    TT_RUN(test_json_roundtrip_large_values);
    TT_RUN(test_json_empty_manifest);
    TT_RUN(test_json_rejects_bad_input);
    TT_RUN(test_manifest_keys_owned_by_partition);
    TT_RUN(test_keys);
    TT_RUN(test_chunk_table_frame);
    TT_RUN(test_entry_size);
    TT_RUN(test_encryption_envelope_json_and_frame_flag);
    return tt_summary();
}
