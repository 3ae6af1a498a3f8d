/*
 * test_kafka_client.c — unit tests of broker/kafka_client.c, the broker's
 * side as a client of its leader: the Fetch v12 and OffsetForLeaderEpoch v4
 * requests it writes parse back (through the broker's own request parser,
 * kafka_parse.c) into the fields written; the answers, built here field by
 * field as Kafka's schemas lay them out, parse into the expected fields,
 * unknown tagged fields are skipped, and every truncation of an answer is
 * refused without reading past it. OffsetForLeaderEpoch v2 (librdkafka's)
 * and ApiVersions with and without the cluster APIs.
 */
#include <stdint.h>
#include <string.h>

#include "broker/kafka_client.h"
#include "broker/kafka_proto.h"
#include "tests/tt.h"

/* Parses a frame written with its size prefix. */
static kafka_parse_result parse_frame(const kw *w, karena *a, kafka_request *q)
{
    char err[256];
    return kafka_parse_request(w->d + 4, w->len - 4, a, q, err, sizeof err);
}

static int32_t frame_size(const kw *w)
{
    return (int32_t)(((uint32_t)w->d[0] << 24) | ((uint32_t)w->d[1] << 16) |
                     ((uint32_t)w->d[2] << 8) | w->d[3]);
}

TT_TEST(fetch_request_roundtrip)
{
    kc_fetch_part parts[] = {
        {"orders", 0, 7, 1000, 6, 12, 1048576},
        {"orders", 2, 7, 55, -1, 0, 4096},
        {"audit", 1, 3, 0, 2, -1, 65536},
    };
    kc_fetch_req q = {.replica_id = 2, .max_wait_ms = 500, .min_bytes = 1, .max_bytes = 10485760,
                      .isolation_level = 0, .nparts = 3, .parts = parts};
    kw w;
    kw_init(&w, 1 << 16);
    kafka_write_FetchRequest(&w, 77, "tierbroker-2", &q);
    TT_ASSERT(!w.err);
    TT_ASSERT_EQ_INT(frame_size(&w), w.len - 4);
    karena a;
    karena_init(&a, 1 << 20);
    kafka_request r;
    TT_ASSERT_EQ_INT(parse_frame(&w, &a, &r), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(r.hdr.api_key, KAFKA_API_Fetch);
    TT_ASSERT_EQ_INT(r.hdr.api_version, 12);
    TT_ASSERT_EQ_INT(r.hdr.correlation_id, 77);
    TT_ASSERT_STR(r.hdr.client_id, "tierbroker-2");
    kafka_FetchRequest *f = &r.u.fetch;
    TT_ASSERT_EQ_INT(f->replica_id, 2);
    TT_ASSERT_EQ_INT(f->max_wait_ms, 500);
    TT_ASSERT_EQ_INT(f->min_bytes, 1);
    TT_ASSERT_EQ_INT(f->max_bytes, 10485760);
    TT_ASSERT_EQ_INT(f->session_id, 0);
    TT_ASSERT_EQ_INT(f->session_epoch, -1);
    TT_ASSERT_EQ_INT(f->ntopics, 2); /* consecutive entries of one topic share it */
    TT_ASSERT_STR(f->topics[0].topic, "orders");
    TT_ASSERT_EQ_INT(f->topics[0].npartitions, 2);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[0].partition, 0);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[0].current_leader_epoch, 7);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[0].fetch_offset, 1000);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[0].log_start_offset, 12);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[0].partition_max_bytes, 1048576);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[1].partition, 2);
    TT_ASSERT_EQ_INT(f->topics[0].partitions[1].fetch_offset, 55);
    TT_ASSERT_STR(f->topics[1].topic, "audit");
    TT_ASSERT_EQ_INT(f->topics[1].npartitions, 1);
    TT_ASSERT_EQ_INT(f->topics[1].partitions[0].current_leader_epoch, 3);
    TT_ASSERT_EQ_INT(f->topics[1].partitions[0].log_start_offset, -1);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(epoch_request_roundtrip)
{
    kc_epoch_part parts[] = {{"orders", 0, 9, 8}, {"orders", 1, 9, 5}, {"x", 4, 2, 2}};
    kw w;
    kw_init(&w, 1 << 16);
    kafka_write_OffsetForLeaderEpochRequest(&w, 5, "f", 3, parts, 3);
    TT_ASSERT(!w.err);
    karena a;
    karena_init(&a, 1 << 20);
    kafka_request r;
    TT_ASSERT_EQ_INT(parse_frame(&w, &a, &r), KAFKA_PARSE_OK);
    TT_ASSERT_EQ_INT(r.hdr.api_key, KAFKA_API_OffsetForLeaderEpoch);
    TT_ASSERT_EQ_INT(r.hdr.api_version, 4);
    TT_ASSERT(r.hdr.flexible);
    kafka_OffsetForLeaderEpochRequest *e = &r.u.offset_for_leader_epoch;
    TT_ASSERT_EQ_INT(e->replica_id, 3);
    TT_ASSERT_EQ_INT(e->ntopics, 2);
    TT_ASSERT_EQ_INT(e->topics[0].npartitions, 2);
    TT_ASSERT_EQ_INT(e->topics[0].partitions[1].partition, 1);
    TT_ASSERT_EQ_INT(e->topics[0].partitions[1].current_leader_epoch, 9);
    TT_ASSERT_EQ_INT(e->topics[0].partitions[1].leader_epoch, 5);
    TT_ASSERT_STR(e->topics[1].topic, "x");
    TT_ASSERT_EQ_INT(e->topics[1].partitions[0].leader_epoch, 2);
    kw_free(&w);
    karena_free(&a);
}

/* librdkafka's OffsetForLeaderEpoch v2: not flexible, no ReplicaId. */
TT_TEST(epoch_request_v2)
{
    kw w;
    kw_init(&w, 1024);
    kw_i16(&w, KAFKA_API_OffsetForLeaderEpoch);
    kw_i16(&w, 2);
    kw_i32(&w, 11);
    kw_str(&w, 0, "rdkafka");
    kw_array(&w, 0, 1);
    kw_str(&w, 0, "t");
    kw_array(&w, 0, 1);
    kw_i32(&w, 3);  /* partition */
    kw_i32(&w, 4);  /* current leader epoch */
    kw_i32(&w, 2);  /* leader epoch */
    karena a;
    karena_init(&a, 1 << 16);
    kafka_request r;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_parse_request(w.d, w.len, &a, &r, err, sizeof err), KAFKA_PARSE_OK);
    TT_ASSERT(!r.hdr.flexible);
    TT_ASSERT_EQ_INT(r.u.offset_for_leader_epoch.replica_id, -1);
    TT_ASSERT_EQ_INT(r.u.offset_for_leader_epoch.topics[0].partitions[0].partition, 3);
    TT_ASSERT_EQ_INT(r.u.offset_for_leader_epoch.topics[0].partitions[0].current_leader_epoch, 4);
    TT_ASSERT_EQ_INT(r.u.offset_for_leader_epoch.topics[0].partitions[0].leader_epoch, 2);
    /* Cut anywhere: malformed, never a read past the end. */
    for (size_t n = 8; n < w.len; n++)
        TT_ASSERT_EQ_INT(kafka_parse_request(w.d, n, &a, &r, err, sizeof err),
                         KAFKA_PARSE_MALFORMED);
    kw_free(&w);
    karena_free(&a);
}

/* A Fetch v12 answer as a leader writes it: one topic, two partitions; the
 * first carries records, the local log start tag and an unknown tag. */
static void fetch_answer(kw *w)
{
    kw_i32(w, 77); /* correlation id */
    kw_tags(w, 1);
    kw_i32(w, 0);  /* throttle */
    kw_i16(w, 0);
    kw_i32(w, 0);  /* session id */
    kw_array(w, 1, 1);
    kw_str(w, 1, "orders");
    kw_array(w, 1, 2);
    kw_i32(w, 0);
    kw_i16(w, 0);
    kw_i64(w, 900);  /* HW */
    kw_i64(w, 900);  /* LSO */
    kw_i64(w, 0);    /* log start */
    kw_array(w, 1, -1);
    kw_i32(w, -1);
    kw_bytes(w, 1, "BATCHES", 7);
    kw_uvarint(w, 2); /* two tags: an unknown one, then the local log start */
    kw_uvarint(w, 55);
    kw_uvarint(w, 3);
    kw_raw(w, "zzz", 3);
    kw_uvarint(w, KAFKA_TAG_LOCAL_LOG_START);
    kw_uvarint(w, 8);
    kw_i64(w, 640);
    kw_i32(w, 1);
    kw_i16(w, 109); /* OFFSET_MOVED_TO_TIERED_STORAGE */
    kw_i64(w, 50);
    kw_i64(w, 50);
    kw_i64(w, 0);
    kw_array(w, 1, 1); /* one aborted transaction, skipped */
    kw_i64(w, 9);
    kw_i64(w, 10);
    kw_tags(w, 1);
    kw_i32(w, -1);
    kw_bytes(w, 1, NULL, -1);
    kw_uvarint(w, 1); /* Kafka's DivergingEpoch {epoch 3, end 44} */
    kw_uvarint(w, KAFKA_TAG_DIVERGING_EPOCH);
    kw_uvarint(w, 13);
    kw_i32(w, 3);
    kw_i64(w, 44);
    kw_tags(w, 1);
    kw_tags(w, 1);
    kw_tags(w, 1);
}

TT_TEST(fetch_response_parse)
{
    kw w;
    kw_init(&w, 4096);
    fetch_answer(&w);
    TT_ASSERT(!w.err);
    karena a;
    karena_init(&a, 1 << 20);
    kc_fetch_resp r;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_read_FetchResponse(w.d, w.len, &a, &r, err, sizeof err), 0);
    TT_ASSERT_EQ_INT(r.correlation_id, 77);
    TT_ASSERT_EQ_INT(r.nparts, 2);
    TT_ASSERT_STR(r.parts[0].topic, "orders");
    TT_ASSERT_EQ_INT(r.parts[0].high_watermark, 900);
    TT_ASSERT_EQ_INT(r.parts[0].local_log_start_offset, 640);
    TT_ASSERT_EQ_INT(r.parts[0].diverging_epoch, -1);
    TT_ASSERT_EQ_INT(r.parts[0].records.len, 7);
    TT_ASSERT(!memcmp(r.parts[0].records.p, "BATCHES", 7));
    TT_ASSERT_EQ_INT(r.parts[1].partition, 1);
    TT_ASSERT_EQ_INT(r.parts[1].error, 109);
    TT_ASSERT_EQ_INT(r.parts[1].local_log_start_offset, -1);
    TT_ASSERT_EQ_INT(r.parts[1].records.len, -1);
    TT_ASSERT_EQ_INT(r.parts[1].diverging_epoch, 3);
    TT_ASSERT_EQ_INT(r.parts[1].diverging_end_offset, 44);
    for (size_t n = 0; n < w.len; n++) {
        karena_free(&a);
        karena_init(&a, 1 << 20);
        TT_ASSERT_MSG(kafka_read_FetchResponse(w.d, n, &a, &r, err, sizeof err) == -1,
                      "cut at %zu accepted", n);
    }
    /* A tag whose size exceeds what is left: refused. */
    kw_free(&w);
    kw_init(&w, 4096);
    fetch_answer(&w);
    size_t at = 0;
    for (size_t i = 0; i + 1 < w.len; i++)
        if (w.d[i] == 55 && w.d[i + 1] == 3) at = i + 1;
    TT_ASSERT(at > 0);
    w.d[at] = 100;
    TT_ASSERT_EQ_INT(kafka_read_FetchResponse(w.d, w.len, &a, &r, err, sizeof err), -1);
    TT_ASSERT(strstr(err, "Fetch response") != NULL);
    kw_free(&w);
    karena_free(&a);
}

TT_TEST(epoch_response_parse)
{
    kw w;
    kw_init(&w, 1024);
    kw_i32(&w, 5);
    kw_tags(&w, 1);
    kw_i32(&w, 0);
    kw_array(&w, 1, 1);
    kw_str(&w, 1, "orders");
    kw_array(&w, 1, 2);
    kw_i16(&w, 0);
    kw_i32(&w, 0);
    kw_i32(&w, 4);
    kw_i64(&w, 321);
    kw_tags(&w, 1);
    kw_i16(&w, 74); /* FENCED_LEADER_EPOCH */
    kw_i32(&w, 1);
    kw_i32(&w, -1);
    kw_i64(&w, -1);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    kw_tags(&w, 1);
    karena a;
    karena_init(&a, 1 << 16);
    kc_epoch_resp r;
    char err[256];
    TT_ASSERT_EQ_INT(kafka_read_OffsetForLeaderEpochResponse(w.d, w.len, &a, &r, err, sizeof err),
                     0);
    TT_ASSERT_EQ_INT(r.correlation_id, 5);
    TT_ASSERT_EQ_INT(r.nparts, 2);
    TT_ASSERT_STR(r.parts[1].topic, "orders");
    TT_ASSERT_EQ_INT(r.parts[0].leader_epoch, 4);
    TT_ASSERT_EQ_INT(r.parts[0].end_offset, 321);
    TT_ASSERT_EQ_INT(r.parts[1].error, 74);
    TT_ASSERT_EQ_INT(r.parts[1].end_offset, -1);
    for (size_t n = 0; n < w.len; n++)
        TT_ASSERT_MSG(kafka_read_OffsetForLeaderEpochResponse(w.d, n, &a, &r, err, sizeof err) ==
                          -1,
                      "cut at %zu accepted", n);
    /* An array count larger than the bytes could hold fails before allocating. */
    kw_free(&w);
    kw_init(&w, 64);
    kw_i32(&w, 5);
    kw_tags(&w, 1);
    kw_i32(&w, 0);
    kw_uvarint(&w, 0x7fffffff);
    TT_ASSERT_EQ_INT(kafka_read_OffsetForLeaderEpochResponse(w.d, w.len, &a, &r, err, sizeof err),
                     -1);
    kw_free(&w);
    karena_free(&a);
}

/* Counts the api keys of an ApiVersions v3 body and whether key is one. */
static int api_count(int cluster, int16_t key, int *has)
{
    kw w;
    kw_init(&w, 4096);
    kafka_write_ApiVersionsResponse(&w, 3, 0, cluster);
    kr r;
    kr_init(&r, w.d, w.len);
    int16_t ec;
    uint32_t n1;
    kr_i16(&r, &ec);
    kr_uvarint(&r, &n1);
    *has = 0;
    for (uint32_t i = 0; i + 1 < n1; i++) {
        int16_t k, lo, hi;
        kr_i16(&r, &k);
        kr_i16(&r, &lo);
        kr_i16(&r, &hi);
        kr_tags(&r, 1);
        if (k == key) *has = 1;
    }
    kw_free(&w);
    return (int)n1 - 1;
}

TT_TEST(api_versions_cluster_only)
{
    int has_single, has_cluster;
    int n_single = api_count(0, KAFKA_API_OffsetForLeaderEpoch, &has_single);
    int n_cluster = api_count(1, KAFKA_API_OffsetForLeaderEpoch, &has_cluster);
    TT_ASSERT(!has_single);
    TT_ASSERT(has_cluster);
    TT_ASSERT_EQ_INT(n_cluster, n_single + 1);
    TT_ASSERT_EQ_INT(n_cluster, (int)kafka_api_nranges);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(fetch_request_roundtrip);
    TT_RUN(epoch_request_roundtrip);
    TT_RUN(epoch_request_v2);
    TT_RUN(fetch_response_parse);
    TT_RUN(epoch_response_parse);
    TT_RUN(api_versions_cluster_only);
    return tt_summary();
}
