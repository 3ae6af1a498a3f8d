/*
 * fuzz_kafka_request.c — libFuzzer target for tierbroker's request parser
 * (broker/kafka_parse.c over broker/kafka_wire.c).
 *
 * Input: one request frame without its size prefix, exactly what the
 * network loop hands to kafka_parse_request(). Any result is fine; reading
 * out of bounds, leaking, or allocating past the arena cap is not. Parsed
 * requests are also walked so that every pointer the parser returns is
 * dereferenced under ASan, and the response header/ApiVersions encoders run.
 * JoinGroup protocol metadata also goes through the consumer-subscription
 * parser (OffsetDelete reads members' subscriptions with it).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/kafka_proto.h"

static volatile size_t g_sink;

static void touch(const char *s)
{
    if (s) g_sink += strlen(s);
}

static void touch_slice(kslice s)
{
    if (s.len > 0) g_sink += s.p[0] + s.p[s.len - 1];
}

/* A JoinGroup's protocol metadata is what OffsetDelete later reads as a
 * consumer subscription (broker/admin_api.c): client bytes too. */
static void subscription(kslice md)
{
    if (md.len < 0) return;
    karena a;
    karena_init(&a, 4 * (size_t)md.len + 65536);
    const char **topics;
    int32_t n;
    if (kafka_parse_consumer_subscription(md.p, (size_t)md.len, &a, &topics, &n) == 0)
        for (int32_t i = 0; i < n; i++) touch(topics[i]);
    karena_free(&a);
}

static void acl(const kafka_AclBinding *b)
{
    touch(b->resource_name);
    touch(b->principal);
    touch(b->host);
    g_sink += (size_t)(b->resource_type + b->pattern_type + b->operation + b->permission_type);
}

static void walk(const kafka_request *q)
{
    touch(q->hdr.client_id);
    switch (q->hdr.api_key) {
    case KAFKA_API_Produce:
        for (int32_t i = 0; i < q->u.produce.ntopics; i++) {
            touch(q->u.produce.topics[i].name);
            for (int32_t k = 0; k < q->u.produce.topics[i].npartitions; k++)
                touch_slice(q->u.produce.topics[i].partitions[k].records);
        }
        break;
    case KAFKA_API_Fetch:
        for (int32_t i = 0; i < q->u.fetch.ntopics; i++) {
            touch(q->u.fetch.topics[i].topic);
            for (int32_t k = 0; k < q->u.fetch.topics[i].npartitions; k++)
                g_sink += (size_t)q->u.fetch.topics[i].partitions[k].fetch_offset;
        }
        break;
    case KAFKA_API_Metadata:
        for (int32_t i = 0; i < q->u.metadata.ntopics; i++) touch(q->u.metadata.topics[i]);
        break;
    case KAFKA_API_CreateTopics:
        for (int32_t i = 0; i < q->u.create_topics.ntopics; i++) {
            touch(q->u.create_topics.topics[i].name);
            for (int32_t k = 0; k < q->u.create_topics.topics[i].nconfigs; k++) {
                touch(q->u.create_topics.topics[i].configs[k].name);
                touch(q->u.create_topics.topics[i].configs[k].value);
            }
        }
        break;
    case KAFKA_API_JoinGroup:
        touch(q->u.join_group.member_id);
        for (int32_t i = 0; i < q->u.join_group.nprotocols; i++) {
            touch(q->u.join_group.protocols[i].name);
            touch_slice(q->u.join_group.protocols[i].metadata);
            subscription(q->u.join_group.protocols[i].metadata);
        }
        break;
    case KAFKA_API_ListGroups:
        for (int32_t i = 0; i < q->u.list_groups.nstates; i++)
            touch(q->u.list_groups.states_filter[i]);
        break;
    case KAFKA_API_DescribeGroups:
        for (int32_t i = 0; i < q->u.describe_groups.ngroups; i++)
            touch(q->u.describe_groups.groups[i]);
        break;
    case KAFKA_API_DeleteGroups:
        for (int32_t i = 0; i < q->u.delete_groups.ngroups; i++)
            touch(q->u.delete_groups.groups_names[i]);
        break;
    case KAFKA_API_OffsetDelete:
        touch(q->u.offset_delete.group_id);
        for (int32_t i = 0; i < q->u.offset_delete.ntopics; i++) {
            touch(q->u.offset_delete.topics[i].name);
            for (int32_t k = 0; k < q->u.offset_delete.topics[i].npartitions; k++)
                g_sink += (size_t)q->u.offset_delete.topics[i].partition_indexes[k];
        }
        break;
    case KAFKA_API_DescribeLogDirs:
        for (int32_t i = 0; i < q->u.describe_log_dirs.ntopics; i++) {
            touch(q->u.describe_log_dirs.topics[i].name);
            for (int32_t k = 0; k < q->u.describe_log_dirs.topics[i].npartitions; k++)
                g_sink += (size_t)q->u.describe_log_dirs.topics[i].partition_indexes[k];
        }
        break;
    case KAFKA_API_ListOffsets:
        for (int32_t i = 0; i < q->u.list_offsets.ntopics; i++)
            for (int32_t k = 0; k < q->u.list_offsets.topics[i].npartitions; k++)
                g_sink += (size_t)kafka_list_offsets_min_version(
                    q->u.list_offsets.topics[i].partitions[k].timestamp);
        break;
    case KAFKA_API_SyncGroup:
        for (int32_t i = 0; i < q->u.sync_group.nassignments; i++) {
            touch(q->u.sync_group.assignments[i].member_id);
            touch_slice(q->u.sync_group.assignments[i].assignment);
        }
        break;
    case KAFKA_API_OffsetCommit:
        for (int32_t i = 0; i < q->u.offset_commit.ntopics; i++)
            for (int32_t k = 0; k < q->u.offset_commit.topics[i].npartitions; k++)
                touch(q->u.offset_commit.topics[i].partitions[k].committed_metadata);
        break;
    case KAFKA_API_OffsetFetch:
        for (int32_t i = 0; i < q->u.offset_fetch.ntopics; i++)
            for (int32_t k = 0; k < q->u.offset_fetch.topics[i].npartitions; k++)
                g_sink += (size_t)q->u.offset_fetch.topics[i].partition_indexes[k];
        break;
    case KAFKA_API_LeaveGroup:
        for (int32_t i = 0; i < q->u.leave_group.nmembers; i++) touch(q->u.leave_group.member_ids[i]);
        break;
    case KAFKA_API_DeleteTopics:
        for (int32_t i = 0; i < q->u.delete_topics.ntopics; i++)
            touch(q->u.delete_topics.topic_names[i]);
        break;
    case KAFKA_API_CreateAcls:
        for (int32_t i = 0; i < q->u.create_acls.ncreations; i++) acl(&q->u.create_acls.creations[i]);
        break;
    case KAFKA_API_DescribeAcls: acl(&q->u.describe_acls.filter); break;
    case KAFKA_API_DeleteAcls:
        for (int32_t i = 0; i < q->u.delete_acls.nfilters; i++) acl(&q->u.delete_acls.filters[i]);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    karena a;
    /* The same cap the broker uses per request. */
    karena_init(&a, 4 * size + 65536);
    kafka_request q;
    char err[256];
    kafka_parse_result r = kafka_parse_request(data, size, &a, &q, err, sizeof err);
    if (r == KAFKA_PARSE_OK) {
        walk(&q);
        kw w;
        kw_init(&w, 1 << 20);
        kafka_write_response_header(&w, &q.hdr);
        if (q.hdr.api_key == KAFKA_API_ApiVersions)
            kafka_write_ApiVersionsResponse(&w, q.hdr.api_version, 0, 1);
        kw_free(&w);
    }
    karena_free(&a);
    return 0;
}
