/*
 * test_kafka_codec.c — unit tests of broker/kafka_wire.c and
 * broker/kafka_parse.c: primitives round-trip, every bound is enforced, and
 * requests as clients encode them parse into the expected fields.
 * No engine and no plugin involved.
 */
#include <stdint.h>
#include <string.h>

#include "broker/kafka_proto.h"
#include "tests/tt.h"

/* Builds a request frame (without the size prefix) in w. */
static void hdr(kw *w, int16_t key, int16_t ver, int32_t corr, int flex)
{
    kw_i16(w, key);
    kw_i16(w, ver);
    kw_i32(w, corr);
    kw_str(w, 0, "test-client");
    kw_tags(w, flex);
}

TT_TEST(varint_roundtrip)
{
    uint32_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, 0x0fffffff, 0xffffffff};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        kw w;
        kw_init(&w, 64);
        kw_uvarint(&w, vals[i]);
        kr r;
        kr_init(&r, w.d, w.len);
        uint32_t got = 0;
        TT_ASSERT(kr_uvarint(&r, &got) == 0);
        TT_ASSERT_EQ_INT(got, vals[i]);
        TT_ASSERT_EQ_INT(kr_left(&r), 0);
        kw_free(&w);
    }
    /* Six continuation bytes are too long for 32 bits. */
    uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kr r;
    kr_init(&r, bad, sizeof bad);
    uint32_t v;
    TT_ASSERT(kr_uvarint(&r, &v) != 0);
    /* zig-zag: 1 -> -1 */
    uint8_t one = 1;
    int32_t sv;
    kr_init(&r, &one, 1);
    TT_ASSERT(kr_varint(&r, &sv) == 0 && sv == -1);
}

TT_TEST(strings_and_bounds)
{
    karena a;
    karena_init(&a, 1 << 16);
    kw w;
    kw_init(&w, 1024);
    kw_str(&w, 1, "hello");
    kw_str(&w, 1, NULL);
    kw_str(&w, 0, "abc");
    kr r;
    kr_init(&r, w.d, w.len);
    const char *s = NULL;
    TT_ASSERT(kr_strdup(&r, 1, 0, &a, &s) == 0);
    TT_ASSERT_STR(s, "hello");
    TT_ASSERT(kr_strdup(&r, 1, 1, &a, &s) == 0 && s == NULL);
    TT_ASSERT(kr_strdup(&r, 0, 0, &a, &s) == 0);
    TT_ASSERT_STR(s, "abc");
    /* A string longer than the slice fails. */
    uint8_t trunc[] = {0x00, 0x10, 'a', 'b'};
    kr_init(&r, trunc, sizeof trunc);
    TT_ASSERT(kr_strdup(&r, 0, 0, &a, &s) != 0);
    /* A null where none is allowed fails. */
    uint8_t nul[] = {0xff, 0xff};
    kr_init(&r, nul, sizeof nul);
    TT_ASSERT(kr_strdup(&r, 0, 0, &a, &s) != 0);
    /* An array count larger than the bytes left is refused before allocating. */
    uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0};
    int32_t n;
    kr_init(&r, huge, sizeof huge);
    TT_ASSERT(kr_array(&r, 0, 0, 4, &n) != 0);
    uint8_t nullarr[] = {0xff, 0xff, 0xff, 0xff};
    kr_init(&r, nullarr, sizeof nullarr);
    TT_ASSERT(kr_array(&r, 0, 0, 4, &n) != 0);
    kr_init(&r, nullarr, sizeof nullarr);
    TT_ASSERT(kr_array(&r, 0, 1, 4, &n) == 0 && n == -1);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(writer_cap)
{
    kw w;
    kw_init(&w, 8);
    kw_i64(&w, 1);
    TT_ASSERT(!w.err);
    kw_i8(&w, 1);
    TT_ASSERT(w.err);
    kw_free(&w);
}

TT_TEST(arena_cap)
{
    karena a;
    karena_init(&a, 100);
    TT_ASSERT(karena_alloc(&a, 64) != NULL);
    TT_ASSERT(karena_alloc(&a, 64) == NULL);
    karena_free(&a);
}

TT_TEST(parse_api_versions_v3)
{
    kw w;
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_ApiVersions, 3, 42, 1);
    kw_str(&w, 1, "librdkafka");
    kw_str(&w, 1, "2.0.2");
    /* one unknown tagged field, skipped */
    kw_uvarint(&w, 1);
    kw_uvarint(&w, 7);
    kw_uvarint(&w, 2);
    kw_raw(&w, "xy", 2);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.hdr.correlation_id, 42);
    TT_ASSERT(q.hdr.flexible);
    TT_ASSERT_STR(q.hdr.client_id, "test-client");
    TT_ASSERT_STR(q.u.api_versions.client_software_name, "librdkafka");
    /* The response header of ApiVersions stays v0 (no tag byte). */
    kw out;
    kw_init(&out, 4096);
    kafka_write_response_header(&out, &q.hdr);
    TT_ASSERT_EQ_INT(out.len, 4);
    kafka_write_ApiVersionsResponse(&out, 3, 0, 0);
    TT_ASSERT(out.len > 4 + 2 + 1 + 15 * 7);
    kw_free(&out);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_unsupported_version)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_Produce, 99, 7, 0);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err),
                     KAFKA_PARSE_UNSUPPORTED);
    TT_ASSERT_EQ_INT(q.hdr.correlation_id, 7);
    kw_free(&w);
    kw_init(&w, 256);
    hdr(&w, 1234, 0, 8, 0);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err),
                     KAFKA_PARSE_UNSUPPORTED);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_produce_v7_and_truncations)
{
    static const uint8_t records[70] = {0};
    kw w;
    kw_init(&w, 4096);
    hdr(&w, KAFKA_API_Produce, 7, 1, 0);
    kw_str(&w, 0, NULL); /* transactional id */
    kw_i16(&w, -1);
    kw_i32(&w, 30000);
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "orders");
    kw_array(&w, 0, 1);
    kw_i32(&w, 3);
    kw_bytes(&w, 0, records, sizeof records);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    kafka_ProduceRequest *p = &q.u.produce;
    TT_ASSERT_EQ_INT(p->acks, -1);
    TT_ASSERT_EQ_INT(p->ntopics, 1);
    TT_ASSERT_STR(p->topics[0].name, "orders");
    TT_ASSERT_EQ_INT(p->topics[0].partitions[0].index, 3);
    TT_ASSERT_EQ_INT(p->topics[0].partitions[0].records.len, 70);
    /* Every truncation is refused, never read past the end. */
    for (size_t cut = 8; cut < w.len; cut++) {
        karena b;
        karena_init(&b, 1 << 16);
        TT_ASSERT_EQ_INT(kafka_parse_request(w.d, cut, &b, &q, err, sizeof err),
                         KAFKA_PARSE_MALFORMED);
        karena_free(&b);
    }
    TT_ASSERT(strstr(err, "Produce") != NULL);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_metadata_flexible_null_topics)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_Metadata, 9, 5, 1);
    kw_array(&w, 1, -1); /* all topics */
    kw_i8(&w, 1);
    kw_i8(&w, 0);
    kw_i8(&w, 0);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.metadata.ntopics, -1);
    TT_ASSERT_EQ_INT(q.u.metadata.allow_auto_topic_creation, 1);
    kafka_write_response_header(&w, &q.hdr); /* flexible: correlation id + tag byte */
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_fetch_v11_and_offset_fetch_v7)
{
    kw w;
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_Fetch, 11, 9, 0);
    kw_i32(&w, -1);
    kw_i32(&w, 500);
    kw_i32(&w, 1);
    kw_i32(&w, 52428800);
    kw_i8(&w, 0);
    kw_i32(&w, 0);
    kw_i32(&w, -1);
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "t");
    kw_array(&w, 0, 1);
    kw_i32(&w, 0);
    kw_i32(&w, -1);
    kw_i64(&w, 123);
    kw_i64(&w, -1);
    kw_i32(&w, 1048576);
    kw_array(&w, 0, 0);
    kw_str(&w, 0, "");
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.fetch.max_wait_ms, 500);
    TT_ASSERT_EQ_INT(q.u.fetch.topics[0].partitions[0].fetch_offset, 123);
    kw_free(&w);

    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_OffsetFetch, 7, 10, 1);
    kw_str(&w, 1, "g1");
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "t");
    kw_array(&w, 1, 2);
    kw_i32(&w, 0);
    kw_i32(&w, 1);
    kw_tags(&w, 1);
    kw_i8(&w, 1);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_STR(q.u.offset_fetch.group_id, "g1");
    TT_ASSERT_EQ_INT(q.u.offset_fetch.topics[0].npartitions, 2);
    TT_ASSERT_EQ_INT(q.u.offset_fetch.topics[0].partition_indexes[1], 1);
    TT_ASSERT_EQ_INT(q.u.offset_fetch.require_stable, 1);
    kw_free(&w);
    karena_free(&a);
}

/* Parses w, then every truncation of it must be refused (never read past
 * the end). The request stays parsed in *q from the whole frame. */
static int parse_all_cuts(const kw *w, karena *a, kafka_request *q)
{
    char err[256];
    kafka_request tmp;
    for (size_t cut = 8; cut < w->len; cut++) {
        karena b;
        karena_init(&b, 1 << 16);
        int rc = kafka_parse_request(w->d, cut, &b, &tmp, err, sizeof err);
        karena_free(&b);
        if (rc != KAFKA_PARSE_MALFORMED) return -(int)cut;
    }
    return kafka_parse_request(w->d, w->len, a, q, err, sizeof err);
}

TT_TEST(parse_list_groups_v4_states_filter)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_ListGroups, 4, 3, 1);
    kw_array(&w, 1, 2);
    kw_str(&w, 1, "Stable");
    kw_str(&w, 1, "Empty");
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT(q.hdr.flexible);
    TT_ASSERT_EQ_INT(q.u.list_groups.nstates, 2);
    TT_ASSERT_STR(q.u.list_groups.states_filter[1], "Empty");
    kw_free(&w);
    /* v0: no body at all, no filter */
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_ListGroups, 0, 4, 0);
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.list_groups.nstates, 0);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_describe_groups_v5_and_v0)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeGroups, 5, 1, 1);
    kw_array(&w, 1, 2);
    kw_str(&w, 1, "g1");
    kw_str(&w, 1, "g2");
    kw_i8(&w, 1);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_groups.ngroups, 2);
    TT_ASSERT_STR(q.u.describe_groups.groups[1], "g2");
    TT_ASSERT_EQ_INT(q.u.describe_groups.include_authorized_operations, 1);
    kw_free(&w);
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeGroups, 0, 2, 0);
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "solo");
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_STR(q.u.describe_groups.groups[0], "solo");
    TT_ASSERT_EQ_INT(q.u.describe_groups.include_authorized_operations, 0);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_delete_groups_and_offset_delete)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DeleteGroups, 2, 1, 1);
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "gone");
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.delete_groups.ngroups, 1);
    TT_ASSERT_STR(q.u.delete_groups.groups_names[0], "gone");
    kw_free(&w);

    kw_init(&w, 256);
    hdr(&w, KAFKA_API_OffsetDelete, 0, 2, 0); /* never flexible */
    kw_str(&w, 0, "g");
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "t");
    kw_array(&w, 0, 2);
    kw_i32(&w, 0);
    kw_i32(&w, 7);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT(!q.hdr.flexible);
    TT_ASSERT_STR(q.u.offset_delete.group_id, "g");
    TT_ASSERT_STR(q.u.offset_delete.topics[0].name, "t");
    TT_ASSERT_EQ_INT(q.u.offset_delete.topics[0].npartitions, 2);
    TT_ASSERT_EQ_INT(q.u.offset_delete.topics[0].partition_indexes[1], 7);
    kw_free(&w);
    /* v1 does not exist */
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_OffsetDelete, 1, 3, 0);
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err),
                     KAFKA_PARSE_UNSUPPORTED);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_describe_cluster_and_log_dirs)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeCluster, 1, 1, 1); /* flexible from v0 */
    kw_i8(&w, 1);
    kw_i8(&w, 2);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_cluster.include_cluster_authorized_operations, 1);
    TT_ASSERT_EQ_INT(q.u.describe_cluster.endpoint_type, 2);
    kw_free(&w);
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeCluster, 0, 2, 1);
    kw_i8(&w, 0);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_cluster.endpoint_type, 1); /* v0: brokers */
    kw_free(&w);

    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeLogDirs, 4, 3, 1);
    kw_array(&w, 1, -1); /* every topic */
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_log_dirs.ntopics, -1);
    kw_free(&w);
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_DescribeLogDirs, 1, 4, 0);
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "t");
    kw_array(&w, 0, 1);
    kw_i32(&w, 3);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_log_dirs.ntopics, 1);
    TT_ASSERT_STR(q.u.describe_log_dirs.topics[0].name, "t");
    TT_ASSERT_EQ_INT(q.u.describe_log_dirs.topics[0].partition_indexes[0], 3);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_list_offsets_v9_and_gates)
{
    kw w;
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_ListOffsets, 9, 1, 1);
    kw_i32(&w, -1);
    kw_i8(&w, 0);
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "t");
    kw_array(&w, 1, 2);
    kw_i32(&w, 0);
    kw_i32(&w, -1);
    kw_i64(&w, KAFKA_TS_LATEST_TIERED);
    kw_tags(&w, 1);
    kw_i32(&w, 1);
    kw_i32(&w, -1);
    kw_i64(&w, KAFKA_TS_EARLIEST_LOCAL);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.list_offsets.topics[0].partitions[0].timestamp, -5);
    TT_ASSERT_EQ_INT(q.u.list_offsets.topics[0].partitions[1].partition_index, 1);
    kw_free(&w);
    /* Kafka's ReplicaManager gates: -3 from v7, -4 from v8, -5 from v9 */
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-1), 0);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-2), 0);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-3), 7);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-4), 8);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-5), 9);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(-6), -1);
    TT_ASSERT_EQ_INT(kafka_list_offsets_min_version(1700000000000), 0);
    /* v10 (KIP-1075's TimeoutMs) is not served */
    kw_init(&w, 256);
    hdr(&w, KAFKA_API_ListOffsets, 10, 2, 1);
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err),
                     KAFKA_PARSE_UNSUPPORTED);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(consumer_subscription)
{
    kw w;
    kw_init(&w, 256);
    kw_i16(&w, 1); /* ConsumerProtocolSubscription v1 */
    kw_array(&w, 0, 2);
    kw_str(&w, 0, "orders");
    kw_str(&w, 0, "audit");
    kw_bytes(&w, 0, NULL, -1); /* UserData */
    kw_array(&w, 0, 0);        /* OwnedPartitions */
    karena a;
    karena_init(&a, 1 << 16);
    const char **topics;
    int32_t n;
    TT_ASSERT_EQ_INT(kafka_parse_consumer_subscription(w.d, w.len, &a, &topics, &n), 0);
    TT_ASSERT_EQ_INT(n, 2);
    TT_ASSERT_STR(topics[0], "orders");
    TT_ASSERT_STR(topics[1], "audit");
    /* cut inside the topics: refused; after them: the topics are known */
    for (size_t cut = 0; cut < 2 + 4 + 8 + 7; cut++)
        TT_ASSERT_MSG(kafka_parse_consumer_subscription(w.d, cut, &a, &topics, &n) != 0,
                      "cut at %zu accepted", cut);
    uint8_t neg[] = {0xff, 0xff, 0, 0, 0, 0};
    TT_ASSERT(kafka_parse_consumer_subscription(neg, sizeof neg, &a, &topics, &n) != 0);
    kw_free(&w);
    karena_free(&a);
}

/* The admin APIs of issue 12: flexible DescribeConfigs v4 (null key list),
 * IncrementalAlterConfigs v1 with a null value, CreatePartitions v3 and
 * DeleteRecords v2; a truncated request is malformed. */
TT_TEST(parse_admin_configs_partitions_records)
{
    kw w;
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_DescribeConfigs, 4, 1, 1);
    kw_array(&w, 1, 1);
    kw_i8(&w, 2);
    kw_str(&w, 1, "t");
    kw_array(&w, 1, -1);
    kw_tags(&w, 1);
    kw_i8(&w, 1);
    kw_i8(&w, 1);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request q;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.configs.nresources, 1);
    TT_ASSERT_EQ_INT(q.u.configs.resources[0].nconfigs, -1);
    TT_ASSERT_EQ_INT(q.u.configs.include_documentation, 1);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len - 3, &a, &q, err, sizeof err),
                     KAFKA_PARSE_MALFORMED);
    kw_free(&w);

    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_IncrementalAlterConfigs, 1, 2, 1);
    kw_array(&w, 1, 1);
    kw_i8(&w, 4);
    kw_str(&w, 1, "0");
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "log.retention.ms");
    kw_i8(&w, KAFKA_OP_DELETE);
    kw_str(&w, 1, NULL);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    kw_i8(&w, 1);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_STR(q.u.configs.resources[0].configs[0].name, "log.retention.ms");
    TT_ASSERT_EQ_INT(q.u.configs.resources[0].configs[0].op, KAFKA_OP_DELETE);
    TT_ASSERT(q.u.configs.resources[0].configs[0].value == NULL);
    TT_ASSERT_EQ_INT(q.u.configs.validate_only, 1);
    kw_free(&w);

    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_CreatePartitions, 3, 3, 1);
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "t");
    kw_i32(&w, 6);
    kw_array(&w, 1, -1);
    kw_tags(&w, 1);
    kw_i32(&w, 30000);
    kw_i8(&w, 0);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.create_partitions.topics[0].count, 6);
    TT_ASSERT_EQ_INT(q.u.create_partitions.topics[0].nassignments, -1);
    kw_free(&w);

    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_DeleteRecords, 2, 4, 1);
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "t");
    kw_array(&w, 1, 1);
    kw_i32(&w, 2);
    kw_i64(&w, -1);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    kw_i32(&w, 30000);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.delete_records.topics[0].partitions[0].partition_index, 2);
    TT_ASSERT_EQ_INT(q.u.delete_records.topics[0].partitions[0].offset, -1);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_sasl_handshake_and_authenticate)
{
    kw w;
    karena a;
    kafka_request q;
    kw_init(&w, 1024);
    karena_init(&a, 1 << 16);
    hdr(&w, KAFKA_API_SaslHandshake, 1, 7, 0);
    kw_str(&w, 0, "SCRAM-SHA-512");
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_STR(q.u.sasl_handshake.mechanism, "SCRAM-SHA-512");
    TT_ASSERT_EQ_INT(q.hdr.flexible, 0);
    kw_free(&w);
    /* v2 is flexible: compact bytes and tags */
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_SaslAuthenticate, 2, 8, 1);
    kw_bytes(&w, 1, "n,,n=u,r=abc", 12);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.hdr.flexible, 1);
    TT_ASSERT_EQ_INT(q.u.sasl_authenticate.auth_bytes.len, 12);
    TT_ASSERT(!memcmp(q.u.sasl_authenticate.auth_bytes.p, "n,,n=u,r=abc", 12));
    kw_free(&w);
    /* null auth bytes are malformed */
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_SaslAuthenticate, 1, 9, 0);
    kw_bytes(&w, 0, NULL, -1);
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &q, err, sizeof err),
                     KAFKA_PARSE_MALFORMED);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(parse_user_scram_credentials)
{
    kw w;
    karena a;
    kafka_request q;
    kw_init(&w, 1024);
    karena_init(&a, 1 << 16);
    hdr(&w, KAFKA_API_AlterUserScramCredentials, 0, 3, 1);
    kw_array(&w, 1, 1); /* deletions */
    kw_str(&w, 1, "old");
    kw_i8(&w, 1);
    kw_tags(&w, 1);
    kw_array(&w, 1, 1); /* upsertions */
    kw_str(&w, 1, "carol");
    kw_i8(&w, 2);
    kw_i32(&w, 8192);
    kw_bytes(&w, 1, "salt", 4);
    kw_bytes(&w, 1, "0123456789012345678901234567890123456789012345678901234567890123", 64);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    kafka_AlterUserScramCredentialsRequest *x = &q.u.alter_scram;
    TT_ASSERT_EQ_INT(x->ndeletions, 1);
    TT_ASSERT_STR(x->deletions[0].name, "old");
    TT_ASSERT_EQ_INT(x->deletions[0].mechanism, 1);
    TT_ASSERT_EQ_INT(x->nupsertions, 1);
    TT_ASSERT_STR(x->upsertions[0].name, "carol");
    TT_ASSERT_EQ_INT(x->upsertions[0].iterations, 8192);
    TT_ASSERT_EQ_INT(x->upsertions[0].salt.len, 4);
    TT_ASSERT_EQ_INT(x->upsertions[0].salted_password.len, 64);
    kw_free(&w);
    kw_init(&w, 1024);
    hdr(&w, KAFKA_API_DescribeUserScramCredentials, 0, 4, 1);
    kw_array(&w, 1, 2);
    kw_str(&w, 1, "a");
    kw_tags(&w, 1);
    kw_str(&w, 1, "b");
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    TT_ASSERT_EQ_INT(parse_all_cuts(&w, &a, &q), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(q.u.describe_scram.nusers, 2);
    TT_ASSERT_STR(q.u.describe_scram.users[1], "b");
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(every_api_has_a_range)
{
    int16_t keys[] = {0,  1,  2,  3,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18,
                      19, 20, 21, 22, 23, 32, 33, 35, 36, 37, 42, 44, 47, 50, 51, 60};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const kafka_api_range *r = kafka_api_find(keys[i]);
        TT_ASSERT(r != NULL);
        TT_ASSERT(r->min_version <= r->max_version);
        TT_ASSERT(strcmp(kafka_api_name(keys[i]), "Unknown") != 0);
    }
    /* What librdkafka 2.x needs (issue 4). */
    TT_ASSERT(kafka_api_find(KAFKA_API_Produce)->max_version >= 7);
    TT_ASSERT(kafka_api_find(KAFKA_API_Fetch)->max_version >= 11);
    TT_ASSERT(kafka_api_find(KAFKA_API_OffsetFetch)->max_version >= 7);
    TT_ASSERT(kafka_api_find(KAFKA_API_JoinGroup)->max_version >= 5);
    /* Issue 12: the admin APIs at the versions Kafka's clients use. */
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_ListOffsets)->max_version, 9);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_ListGroups)->max_version, 4);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_DescribeGroups)->max_version, 5);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_DeleteGroups)->max_version, 2);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_OffsetDelete)->max_version, 0);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_DescribeCluster)->max_version, 1);
    TT_ASSERT_EQ_INT(kafka_api_find(KAFKA_API_DescribeLogDirs)->max_version, 4);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(varint_roundtrip);
    TT_RUN(strings_and_bounds);
    TT_RUN(writer_cap);
    TT_RUN(arena_cap);
    TT_RUN(parse_api_versions_v3);
    TT_RUN(parse_unsupported_version);
    TT_RUN(parse_produce_v7_and_truncations);
    TT_RUN(parse_metadata_flexible_null_topics);
    TT_RUN(parse_fetch_v11_and_offset_fetch_v7);
    TT_RUN(parse_list_groups_v4_states_filter);
    TT_RUN(parse_describe_groups_v5_and_v0);
    TT_RUN(parse_delete_groups_and_offset_delete);
    TT_RUN(parse_describe_cluster_and_log_dirs);
    TT_RUN(parse_list_offsets_v9_and_gates);
    TT_RUN(consumer_subscription);
    TT_RUN(parse_admin_configs_partitions_records);
    TT_RUN(parse_sasl_handshake_and_authenticate);
    TT_RUN(parse_user_scram_credentials);
    TT_RUN(every_api_has_a_range);
    return tt_summary();
}
