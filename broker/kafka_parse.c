/*
 * kafka_parse.c — request parsers for the APIs of kafka_proto.h.
 *
 * One function per request, each reading through the bounded reader with a
 * single `fail:` exit. Field order and the versions each field appears in
 * follow Kafka's message JSON schemas; comments name the version gates.
 * Unknown tagged fields are skipped. Thread: any.
 */
#include "kafka_proto.h"

#include <stdio.h>
#include <string.h>

#define NEVER INT16_MAX

const kafka_api_range kafka_api_ranges[] = {
    {KAFKA_API_Produce, 3, 9, 9},
    {KAFKA_API_Fetch, 4, 12, 12},
    {KAFKA_API_ListOffsets, 1, 9, 6},
    {KAFKA_API_Metadata, 0, 9, 9},
    {KAFKA_API_OffsetCommit, 0, 8, 8},
    {KAFKA_API_OffsetFetch, 0, 7, 6},
    {KAFKA_API_FindCoordinator, 0, 3, 3},
    {KAFKA_API_JoinGroup, 0, 7, 6},
    {KAFKA_API_Heartbeat, 0, 4, 4},
    {KAFKA_API_LeaveGroup, 0, 4, 4},
    {KAFKA_API_SyncGroup, 0, 5, 4},
    {KAFKA_API_DescribeGroups, 0, 5, 5},
    {KAFKA_API_ListGroups, 0, 4, 3},
    {KAFKA_API_ApiVersions, 0, 3, 3},
    {KAFKA_API_CreateTopics, 0, 5, 5},
    {KAFKA_API_DeleteTopics, 0, 5, 4},
    {KAFKA_API_InitProducerId, 0, 4, 2},
    {KAFKA_API_DescribeLogDirs, 0, 4, 2},
    {KAFKA_API_DeleteGroups, 0, 2, 2},
    {KAFKA_API_OffsetDelete, 0, 0, NEVER},
    {KAFKA_API_DescribeCluster, 0, 1, 0},
    {KAFKA_API_DeleteRecords, 0, 2, 2},
    {KAFKA_API_DescribeConfigs, 0, 4, 4},
    {KAFKA_API_AlterConfigs, 0, 2, 2},
    {KAFKA_API_CreatePartitions, 0, 3, 2},
    {KAFKA_API_IncrementalAlterConfigs, 0, 1, 1},
    {KAFKA_API_OffsetForLeaderEpoch, 2, 4, 4},
    {KAFKA_API_SaslHandshake, 0, 1, NEVER},
    {KAFKA_API_SaslAuthenticate, 0, 2, 2},
    {KAFKA_API_DescribeUserScramCredentials, 0, 0, 0},
    {KAFKA_API_AlterUserScramCredentials, 0, 0, 0},
    {KAFKA_API_DescribeAcls, 0, 3, 2},
    {KAFKA_API_CreateAcls, 0, 3, 2},
    {KAFKA_API_DeleteAcls, 0, 3, 2},
};
const size_t kafka_api_nranges = sizeof(kafka_api_ranges) / sizeof(kafka_api_ranges[0]);

const kafka_api_range *kafka_api_find(int16_t api_key)
{
    for (size_t i = 0; i < kafka_api_nranges; i++)
        if (kafka_api_ranges[i].api_key == api_key) return &kafka_api_ranges[i];
    return NULL;
}

const char *kafka_api_name(int16_t k)
{
    switch (k) {
    case KAFKA_API_Produce: return "Produce";
    case KAFKA_API_Fetch: return "Fetch";
    case KAFKA_API_ListOffsets: return "ListOffsets";
    case KAFKA_API_Metadata: return "Metadata";
    case KAFKA_API_OffsetCommit: return "OffsetCommit";
    case KAFKA_API_OffsetFetch: return "OffsetFetch";
    case KAFKA_API_FindCoordinator: return "FindCoordinator";
    case KAFKA_API_JoinGroup: return "JoinGroup";
    case KAFKA_API_Heartbeat: return "Heartbeat";
    case KAFKA_API_LeaveGroup: return "LeaveGroup";
    case KAFKA_API_SyncGroup: return "SyncGroup";
    case KAFKA_API_ApiVersions: return "ApiVersions";
    case KAFKA_API_CreateTopics: return "CreateTopics";
    case KAFKA_API_DeleteTopics: return "DeleteTopics";
    case KAFKA_API_InitProducerId: return "InitProducerId";
    case KAFKA_API_DescribeGroups: return "DescribeGroups";
    case KAFKA_API_ListGroups: return "ListGroups";
    case KAFKA_API_DescribeLogDirs: return "DescribeLogDirs";
    case KAFKA_API_DeleteGroups: return "DeleteGroups";
    case KAFKA_API_OffsetDelete: return "OffsetDelete";
    case KAFKA_API_DescribeCluster: return "DescribeCluster";
    case KAFKA_API_DeleteRecords: return "DeleteRecords";
    case KAFKA_API_DescribeConfigs: return "DescribeConfigs";
    case KAFKA_API_AlterConfigs: return "AlterConfigs";
    case KAFKA_API_CreatePartitions: return "CreatePartitions";
    case KAFKA_API_IncrementalAlterConfigs: return "IncrementalAlterConfigs";
    case KAFKA_API_OffsetForLeaderEpoch: return "OffsetForLeaderEpoch";
    case KAFKA_API_SaslHandshake: return "SaslHandshake";
    case KAFKA_API_SaslAuthenticate: return "SaslAuthenticate";
    case KAFKA_API_DescribeUserScramCredentials: return "DescribeUserScramCredentials";
    case KAFKA_API_AlterUserScramCredentials: return "AlterUserScramCredentials";
    case KAFKA_API_DescribeAcls: return "DescribeAcls";
    case KAFKA_API_CreateAcls: return "CreateAcls";
    case KAFKA_API_DeleteAcls: return "DeleteAcls";
    default: return "Unknown";
    }
}

/* Shorthands: r, a (arena), v (version), f (flexible) are in scope. */
#define I8(x) KR_CHECK(kr_i8(r, &(x)))
#define I16(x) KR_CHECK(kr_i16(r, &(x)))
#define I32(x) KR_CHECK(kr_i32(r, &(x)))
#define I64(x) KR_CHECK(kr_i64(r, &(x)))
#define STR(x) KR_CHECK(kr_strdup(r, f, 0, a, &(x)))
#define NSTR(x) KR_CHECK(kr_strdup(r, f, 1, a, &(x)))
#define BYTES(x) KR_CHECK(kr_bytes(r, f, &(x)))
#define TAGS() KR_CHECK(kr_tags(r, f))
/* Array of n elements of type T, each at least min bytes on the wire. */
#define ARRAY(n, ptr, nullable, min)                                                             \
    do {                                                                                         \
        KR_CHECK(kr_array(r, f, nullable, min, &(n)));                                           \
        (ptr) = NULL;                                                                            \
        if ((n) > 0) {                                                                           \
            (ptr) = karena_alloc(a, (size_t)(n) * sizeof(*(ptr)));                               \
            if (!(ptr)) goto fail;                                                               \
        }                                                                                        \
    } while (0)

/* []string (non-nullable), the strings copied into the arena. */
static int parse_strings(kr *r, karena *a, int f, int32_t *n, const char ***out)
{
    ARRAY(*n, *out, 0, 1);
    for (int32_t i = 0; i < *n; i++) STR((*out)[i]);
    return 0;
fail:
    return -1;
}

static int parse_produce(kr *r, karena *a, int v, int f, kafka_ProduceRequest *q)
{
    if (v >= 3) NSTR(q->transactional_id);
    I16(q->acks);
    I32(q->timeout_ms);
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_ProduceTopic *t = &q->topics[i];
        STR(t->name);
        ARRAY(t->npartitions, t->partitions, 0, 5);
        for (int32_t j = 0; j < t->npartitions; j++) {
            I32(t->partitions[j].index);
            BYTES(t->partitions[j].records);
            TAGS();
        }
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_fetch(kr *r, karena *a, int v, int f, kafka_FetchRequest *q)
{
    kslice ignored;
    I32(q->replica_id);
    I32(q->max_wait_ms);
    I32(q->min_bytes);
    q->max_bytes = INT32_MAX;
    if (v >= 3) I32(q->max_bytes);
    if (v >= 4) I8(q->isolation_level);
    q->session_epoch = -1;
    if (v >= 7) {
        I32(q->session_id);
        I32(q->session_epoch);
    }
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_FetchTopic *t = &q->topics[i];
        STR(t->topic);
        ARRAY(t->npartitions, t->partitions, 0, 16);
        for (int32_t j = 0; j < t->npartitions; j++) {
            kafka_FetchPartition *p = &t->partitions[j];
            int32_t last_fetched_epoch;
            I32(p->partition);
            p->current_leader_epoch = -1;
            if (v >= 9) I32(p->current_leader_epoch);
            I64(p->fetch_offset);
            if (v >= 12) I32(last_fetched_epoch);
            p->log_start_offset = -1;
            if (v >= 5) I64(p->log_start_offset);
            I32(p->partition_max_bytes);
            TAGS();
        }
        TAGS();
    }
    if (v >= 7) {
        int32_t nforgotten;
        KR_CHECK(kr_array(r, f, 0, 2, &nforgotten));
        for (int32_t i = 0; i < nforgotten; i++) {
            int32_t np;
            KR_CHECK(kr_str(r, f, &ignored));
            KR_CHECK(kr_array(r, f, 0, 4, &np));
            KR_CHECK(kr_skip(r, (size_t)np * 4));
            TAGS();
        }
    }
    if (v >= 11) KR_CHECK(kr_str(r, f, &ignored)); /* RackId */
    TAGS();
    return 0;
fail:
    return -1;
}

int kafka_list_offsets_min_version(int64_t ts)
{
    switch (ts) {
    case KAFKA_TS_LATEST:
    case KAFKA_TS_EARLIEST: return 0;
    case KAFKA_TS_MAX_TIMESTAMP: return 7;
    case KAFKA_TS_EARLIEST_LOCAL: return 8;
    case KAFKA_TS_LATEST_TIERED: return 9;
    default: return ts >= 0 ? 0 : -1;
    }
}

static int parse_list_offsets(kr *r, karena *a, int v, int f, kafka_ListOffsetsRequest *q)
{
    I32(q->replica_id);
    if (v >= 2) I8(q->isolation_level);
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_ListOffsetsTopic *t = &q->topics[i];
        STR(t->name);
        ARRAY(t->npartitions, t->partitions, 0, 12);
        for (int32_t j = 0; j < t->npartitions; j++) {
            int32_t max_num;
            I32(t->partitions[j].partition_index);
            t->partitions[j].current_leader_epoch = -1;
            if (v >= 4) I32(t->partitions[j].current_leader_epoch);
            I64(t->partitions[j].timestamp);
            if (v == 0) I32(max_num);
            TAGS();
        }
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_metadata(kr *r, karena *a, int v, int f, kafka_MetadataRequest *q)
{
    ARRAY(q->ntopics, q->topics, v >= 1, 2);
    if (v == 0 && q->ntopics == 0) q->ntopics = -1; /* v0: empty = all */
    for (int32_t i = 0; i < q->ntopics; i++) {
        STR(q->topics[i]);
        TAGS();
    }
    q->allow_auto_topic_creation = 1;
    if (v >= 4) I8(q->allow_auto_topic_creation);
    if (v >= 8) {
        if (v <= 10) I8(q->include_cluster_authorized_operations);
        I8(q->include_topic_authorized_operations);
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_create_topics(kr *r, karena *a, int v, int f, kafka_CreateTopicsRequest *q)
{
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_CreatableTopic *t = &q->topics[i];
        STR(t->name);
        I32(t->num_partitions);
        I16(t->replication_factor);
        KR_CHECK(kr_array(r, f, 0, 5, &t->nassignments));
        for (int32_t j = 0; j < t->nassignments; j++) {
            int32_t pidx, nb;
            I32(pidx);
            KR_CHECK(kr_array(r, f, 0, 4, &nb));
            KR_CHECK(kr_skip(r, (size_t)nb * 4));
            TAGS();
        }
        ARRAY(t->nconfigs, t->configs, 0, 3);
        for (int32_t j = 0; j < t->nconfigs; j++) {
            STR(t->configs[j].name);
            NSTR(t->configs[j].value);
            TAGS();
        }
        TAGS();
    }
    I32(q->timeout_ms);
    if (v >= 1) I8(q->validate_only);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_delete_topics(kr *r, karena *a, int v, int f, kafka_DeleteTopicsRequest *q)
{
    if (parse_strings(r, a, f, &q->ntopics, &q->topic_names)) goto fail;
    I32(q->timeout_ms);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_find_coordinator(kr *r, karena *a, int v, int f, kafka_FindCoordinatorRequest *q)
{
    STR(q->key);
    if (v >= 1) I8(q->key_type);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_join_group(kr *r, karena *a, int v, int f, kafka_JoinGroupRequest *q)
{
    STR(q->group_id);
    I32(q->session_timeout_ms);
    q->rebalance_timeout_ms = q->session_timeout_ms;
    if (v >= 1) I32(q->rebalance_timeout_ms);
    STR(q->member_id);
    if (v >= 5) NSTR(q->group_instance_id);
    STR(q->protocol_type);
    ARRAY(q->nprotocols, q->protocols, 0, 2);
    for (int32_t i = 0; i < q->nprotocols; i++) {
        STR(q->protocols[i].name);
        BYTES(q->protocols[i].metadata);
        if (q->protocols[i].metadata.len < 0) goto fail;
        TAGS();
    }
    if (v >= 8) {
        const char *reason;
        NSTR(reason);
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_sync_group(kr *r, karena *a, int v, int f, kafka_SyncGroupRequest *q)
{
    STR(q->group_id);
    I32(q->generation_id);
    STR(q->member_id);
    if (v >= 3) NSTR(q->group_instance_id);
    if (v >= 5) {
        NSTR(q->protocol_type);
        NSTR(q->protocol_name);
    }
    ARRAY(q->nassignments, q->assignments, 0, 2);
    for (int32_t i = 0; i < q->nassignments; i++) {
        STR(q->assignments[i].member_id);
        BYTES(q->assignments[i].assignment);
        if (q->assignments[i].assignment.len < 0) goto fail;
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_heartbeat(kr *r, karena *a, int v, int f, kafka_HeartbeatRequest *q)
{
    STR(q->group_id);
    I32(q->generation_id);
    STR(q->member_id);
    if (v >= 3) NSTR(q->group_instance_id);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_leave_group(kr *r, karena *a, int v, int f, kafka_LeaveGroupRequest *q)
{
    STR(q->group_id);
    if (v <= 2) {
        q->nmembers = 1;
        q->member_ids = karena_alloc(a, sizeof(*q->member_ids));
        if (!q->member_ids) goto fail;
        STR(q->member_ids[0]);
    } else {
        ARRAY(q->nmembers, q->member_ids, 0, 2);
        for (int32_t i = 0; i < q->nmembers; i++) {
            const char *instance, *reason;
            STR(q->member_ids[i]);
            NSTR(instance);
            if (v >= 5) NSTR(reason);
            TAGS();
        }
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_offset_commit(kr *r, karena *a, int v, int f, kafka_OffsetCommitRequest *q)
{
    STR(q->group_id);
    q->generation_id = -1;
    q->member_id = "";
    if (v >= 1) {
        I32(q->generation_id);
        STR(q->member_id);
    }
    if (v >= 7) NSTR(q->group_instance_id);
    if (v >= 2 && v <= 4) {
        int64_t retention;
        I64(retention);
    }
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_OffsetCommitTopic *t = &q->topics[i];
        STR(t->name);
        ARRAY(t->npartitions, t->partitions, 0, 14);
        for (int32_t j = 0; j < t->npartitions; j++) {
            kafka_OffsetCommitPartition *p = &t->partitions[j];
            int64_t ts;
            I32(p->partition_index);
            I64(p->committed_offset);
            p->committed_leader_epoch = -1;
            if (v >= 6) I32(p->committed_leader_epoch);
            if (v == 1) I64(ts);
            NSTR(p->committed_metadata);
            TAGS();
        }
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

/* Name, []int32 partition indexes, tags (none when not flexible). */
static int parse_topic_partitions(kr *r, karena *a, int f, kafka_TopicPartitions *t)
{
    STR(t->name);
    ARRAY(t->npartitions, t->partition_indexes, 0, 4);
    for (int32_t j = 0; j < t->npartitions; j++) I32(t->partition_indexes[j]);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_offset_fetch(kr *r, karena *a, int v, int f, kafka_OffsetFetchRequest *q)
{
    STR(q->group_id);
    ARRAY(q->ntopics, q->topics, v >= 2, 2);
    for (int32_t i = 0; i < q->ntopics; i++)
        if (parse_topic_partitions(r, a, f, &q->topics[i])) goto fail;
    if (v >= 7) I8(q->require_stable);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_list_groups(kr *r, karena *a, int v, int f, kafka_ListGroupsRequest *q)
{
    if (v >= 4 && parse_strings(r, a, f, &q->nstates, &q->states_filter)) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_groups(kr *r, karena *a, int v, int f, kafka_DescribeGroupsRequest *q)
{
    if (parse_strings(r, a, f, &q->ngroups, &q->groups)) goto fail;
    if (v >= 3) I8(q->include_authorized_operations);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_delete_groups(kr *r, karena *a, int v, int f, kafka_DeleteGroupsRequest *q)
{
    if (parse_strings(r, a, f, &q->ngroups, &q->groups_names)) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

/* Never flexible (TAGS() reads nothing). */
static int parse_offset_delete(kr *r, karena *a, int v, int f, kafka_OffsetDeleteRequest *q)
{
    STR(q->group_id);
    ARRAY(q->ntopics, q->topics, 0, 6);
    for (int32_t i = 0; i < q->ntopics; i++)
        if (parse_topic_partitions(r, a, f, &q->topics[i])) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_cluster(kr *r, karena *a, int v, int f, kafka_DescribeClusterRequest *q)
{
    I8(q->include_cluster_authorized_operations);
    q->endpoint_type = 1;
    if (v >= 1) I8(q->endpoint_type);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_log_dirs(kr *r, karena *a, int v, int f, kafka_DescribeLogDirsRequest *q)
{
    ARRAY(q->ntopics, q->topics, 1, 2);
    for (int32_t i = 0; i < q->ntopics; i++)
        if (parse_topic_partitions(r, a, f, &q->topics[i])) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

int kafka_parse_consumer_subscription(const uint8_t *p, size_t len, karena *a,
                                      const char ***topics, int32_t *ntopics)
{
    kr rd, *r = &rd;
    int f = 0; /* the consumer protocol is never flexible */
    int16_t version;
    kr_init(r, p, len);
    *topics = NULL;
    *ntopics = 0;
    I16(version);
    if (version < 0 || parse_strings(r, a, f, ntopics, topics)) goto fail;
    /* UserData, OwnedPartitions, GenerationId, RackId follow by version:
     * not needed to know what the member subscribes to. */
    return 0;
fail:
    *topics = NULL;
    *ntopics = 0;
    return -1;
}

static int parse_init_producer_id(kr *r, karena *a, int v, int f, kafka_InitProducerIdRequest *q)
{
    NSTR(q->transactional_id);
    I32(q->transaction_timeout_ms);
    q->producer_id = -1;
    q->producer_epoch = -1;
    if (v >= 3) {
        I64(q->producer_id);
        I16(q->producer_epoch);
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_offset_for_leader_epoch(kr *r, karena *a, int v, int f,
                                         kafka_OffsetForLeaderEpochRequest *q)
{
    q->replica_id = -1;
    if (v >= 3) I32(q->replica_id);
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_OffsetForLeaderEpochTopic *t = &q->topics[i];
        STR(t->topic);
        ARRAY(t->npartitions, t->partitions, 0, 12);
        for (int32_t j = 0; j < t->npartitions; j++) {
            kafka_OffsetForLeaderEpochPartition *p = &t->partitions[j];
            I32(p->partition);
            I32(p->current_leader_epoch); /* v2+ */
            I32(p->leader_epoch);
            TAGS();
        }
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_api_versions(kr *r, karena *a, int v, int f, kafka_ApiVersionsRequest *q)
{
    if (v >= 3) {
        STR(q->client_software_name);
        STR(q->client_software_version);
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_configs(kr *r, karena *a, int v, int f, kafka_ConfigsRequest *q)
{
    ARRAY(q->nresources, q->resources, 0, 4);
    for (int32_t i = 0; i < q->nresources; i++) {
        kafka_ConfigResource *res = &q->resources[i];
        I8(res->resource_type);
        STR(res->resource_name);
        ARRAY(res->nconfigs, res->configs, 1, 1);
        for (int32_t j = 0; j < res->nconfigs; j++) STR(res->configs[j].name);
        TAGS();
    }
    if (v >= 1) I8(q->include_synonyms);
    if (v >= 3) I8(q->include_documentation);
    TAGS();
    return 0;
fail:
    return -1;
}

/* AlterConfigs (incremental = 0) and IncrementalAlterConfigs. */
static int parse_alter_configs(kr *r, karena *a, int f, int incremental, kafka_ConfigsRequest *q)
{
    ARRAY(q->nresources, q->resources, 0, 4);
    for (int32_t i = 0; i < q->nresources; i++) {
        kafka_ConfigResource *res = &q->resources[i];
        I8(res->resource_type);
        STR(res->resource_name);
        ARRAY(res->nconfigs, res->configs, 0, 2);
        for (int32_t j = 0; j < res->nconfigs; j++) {
            STR(res->configs[j].name);
            res->configs[j].op = KAFKA_OP_SET;
            if (incremental) I8(res->configs[j].op);
            NSTR(res->configs[j].value);
            TAGS();
        }
        TAGS();
    }
    I8(q->validate_only);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_create_partitions(kr *r, karena *a, int v, int f,
                                   kafka_CreatePartitionsRequest *q)
{
    ARRAY(q->ntopics, q->topics, 0, 7);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_CreatePartitionsTopic *t = &q->topics[i];
        STR(t->name);
        I32(t->count);
        KR_CHECK(kr_array(r, f, 1, 1, &t->nassignments));
        for (int32_t j = 0; j < t->nassignments; j++) {
            int32_t nb;
            KR_CHECK(kr_array(r, f, 0, 4, &nb));
            KR_CHECK(kr_skip(r, (size_t)nb * 4));
            TAGS();
        }
        TAGS();
    }
    I32(q->timeout_ms);
    I8(q->validate_only);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_delete_records(kr *r, karena *a, int v, int f, kafka_DeleteRecordsRequest *q)
{
    ARRAY(q->ntopics, q->topics, 0, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_DeleteRecordsTopic *t = &q->topics[i];
        STR(t->name);
        ARRAY(t->npartitions, t->partitions, 0, 12);
        for (int32_t j = 0; j < t->npartitions; j++) {
            I32(t->partitions[j].partition_index);
            I64(t->partitions[j].offset);
            TAGS();
        }
        TAGS();
    }
    I32(q->timeout_ms);
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_sasl_handshake(kr *r, karena *a, int v, int f, kafka_SaslHandshakeRequest *q)
{
    STR(q->mechanism);
    return 0;
fail:
    return -1;
}

static int parse_sasl_authenticate(kr *r, karena *a, int v, int f,
                                   kafka_SaslAuthenticateRequest *q)
{
    BYTES(q->auth_bytes);
    if (q->auth_bytes.len < 0) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_scram(kr *r, karena *a, int v, int f,
                                kafka_DescribeUserScramCredentialsRequest *q)
{
    ARRAY(q->nusers, q->users, 1, 2);
    for (int32_t i = 0; i < q->nusers; i++) {
        STR(q->users[i]);
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_alter_scram(kr *r, karena *a, int v, int f,
                             kafka_AlterUserScramCredentialsRequest *q)
{
    ARRAY(q->ndeletions, q->deletions, 0, 3);
    for (int32_t i = 0; i < q->ndeletions; i++) {
        STR(q->deletions[i].name);
        I8(q->deletions[i].mechanism);
        TAGS();
    }
    ARRAY(q->nupsertions, q->upsertions, 0, 8);
    for (int32_t i = 0; i < q->nupsertions; i++) {
        kafka_ScramCredentialUpsertion *u = &q->upsertions[i];
        STR(u->name);
        I8(u->mechanism);
        I32(u->iterations);
        BYTES(u->salt);
        BYTES(u->salted_password);
        if (u->salt.len < 0 || u->salted_password.len < 0) goto fail;
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

/* One ACL binding (CreateAcls: every string required) or filter (nullable
 * name, principal, host); PatternType from v1, LITERAL before. */
static int parse_acl_binding(kr *r, karena *a, int v, int f, int filter, kafka_AclBinding *b)
{
    I8(b->resource_type);
    if (filter)
        NSTR(b->resource_name);
    else
        STR(b->resource_name);
    b->pattern_type = 3; /* LITERAL */
    if (v >= 1) I8(b->pattern_type);
    if (filter) {
        NSTR(b->principal);
        NSTR(b->host);
    } else {
        STR(b->principal);
        STR(b->host);
    }
    I8(b->operation);
    I8(b->permission_type);
    return 0;
fail:
    return -1;
}

static int parse_create_acls(kr *r, karena *a, int v, int f, kafka_CreateAclsRequest *q)
{
    ARRAY(q->ncreations, q->creations, 0, 7);
    for (int32_t i = 0; i < q->ncreations; i++) {
        if (parse_acl_binding(r, a, v, f, 0, &q->creations[i]) != 0) goto fail;
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_describe_acls(kr *r, karena *a, int v, int f, kafka_DescribeAclsRequest *q)
{
    if (parse_acl_binding(r, a, v, f, 1, &q->filter) != 0) goto fail;
    TAGS();
    return 0;
fail:
    return -1;
}

static int parse_delete_acls(kr *r, karena *a, int v, int f, kafka_DeleteAclsRequest *q)
{
    ARRAY(q->nfilters, q->filters, 0, 7);
    for (int32_t i = 0; i < q->nfilters; i++) {
        if (parse_acl_binding(r, a, v, f, 1, &q->filters[i]) != 0) goto fail;
        TAGS();
    }
    TAGS();
    return 0;
fail:
    return -1;
}

kafka_parse_result kafka_parse_request(const uint8_t *frame, size_t len, karena *a,
                                       kafka_request *req, char *errbuf, size_t errlen)
{
    kr rd, *r = &rd;
    int f = 0, v, rc = -1;
    const char *what = "request header";
    memset(req, 0, sizeof(*req));
    kr_init(r, frame, len);
    kafka_header *h = &req->hdr;

    I16(h->api_key);
    I16(h->api_version);
    I32(h->correlation_id);
    const kafka_api_range *range = kafka_api_find(h->api_key);
    v = h->api_version;
    if (!range || v < range->min_version || v > range->max_version) {
        /* ApiVersions must be answerable at any version: its header is v1. */
        return KAFKA_PARSE_UNSUPPORTED;
    }
    KR_CHECK(kr_strdup(r, 0, 1, a, &h->client_id)); /* never compact, even in header v2 */
    h->flexible = v >= range->first_flexible;
    f = h->flexible;
    TAGS();

    what = kafka_api_name(h->api_key);
    switch (h->api_key) {
    case KAFKA_API_Produce: rc = parse_produce(r, a, v, f, &req->u.produce); break;
    case KAFKA_API_Fetch: rc = parse_fetch(r, a, v, f, &req->u.fetch); break;
    case KAFKA_API_ListOffsets: rc = parse_list_offsets(r, a, v, f, &req->u.list_offsets); break;
    case KAFKA_API_Metadata: rc = parse_metadata(r, a, v, f, &req->u.metadata); break;
    case KAFKA_API_CreateTopics: rc = parse_create_topics(r, a, v, f, &req->u.create_topics); break;
    case KAFKA_API_DeleteTopics: rc = parse_delete_topics(r, a, v, f, &req->u.delete_topics); break;
    case KAFKA_API_FindCoordinator:
        rc = parse_find_coordinator(r, a, v, f, &req->u.find_coordinator);
        break;
    case KAFKA_API_JoinGroup: rc = parse_join_group(r, a, v, f, &req->u.join_group); break;
    case KAFKA_API_SyncGroup: rc = parse_sync_group(r, a, v, f, &req->u.sync_group); break;
    case KAFKA_API_Heartbeat: rc = parse_heartbeat(r, a, v, f, &req->u.heartbeat); break;
    case KAFKA_API_LeaveGroup: rc = parse_leave_group(r, a, v, f, &req->u.leave_group); break;
    case KAFKA_API_OffsetCommit: rc = parse_offset_commit(r, a, v, f, &req->u.offset_commit); break;
    case KAFKA_API_OffsetFetch: rc = parse_offset_fetch(r, a, v, f, &req->u.offset_fetch); break;
    case KAFKA_API_InitProducerId:
        rc = parse_init_producer_id(r, a, v, f, &req->u.init_producer_id);
        break;
    case KAFKA_API_ApiVersions: rc = parse_api_versions(r, a, v, f, &req->u.api_versions); break;
    case KAFKA_API_ListGroups: rc = parse_list_groups(r, a, v, f, &req->u.list_groups); break;
    case KAFKA_API_DescribeGroups:
        rc = parse_describe_groups(r, a, v, f, &req->u.describe_groups);
        break;
    case KAFKA_API_DeleteGroups: rc = parse_delete_groups(r, a, v, f, &req->u.delete_groups); break;
    case KAFKA_API_OffsetDelete: rc = parse_offset_delete(r, a, v, f, &req->u.offset_delete); break;
    case KAFKA_API_DescribeCluster:
        rc = parse_describe_cluster(r, a, v, f, &req->u.describe_cluster);
        break;
    case KAFKA_API_DescribeLogDirs:
        rc = parse_describe_log_dirs(r, a, v, f, &req->u.describe_log_dirs);
        break;
    case KAFKA_API_DescribeConfigs: rc = parse_describe_configs(r, a, v, f, &req->u.configs); break;
    case KAFKA_API_AlterConfigs: rc = parse_alter_configs(r, a, f, 0, &req->u.configs); break;
    case KAFKA_API_IncrementalAlterConfigs:
        rc = parse_alter_configs(r, a, f, 1, &req->u.configs);
        break;
    case KAFKA_API_CreatePartitions:
        rc = parse_create_partitions(r, a, v, f, &req->u.create_partitions);
        break;
    case KAFKA_API_DeleteRecords: rc = parse_delete_records(r, a, v, f, &req->u.delete_records); break;
    case KAFKA_API_OffsetForLeaderEpoch:
        rc = parse_offset_for_leader_epoch(r, a, v, f, &req->u.offset_for_leader_epoch);
        break;
    case KAFKA_API_SaslHandshake:
        rc = parse_sasl_handshake(r, a, v, f, &req->u.sasl_handshake);
        break;
    case KAFKA_API_SaslAuthenticate:
        rc = parse_sasl_authenticate(r, a, v, f, &req->u.sasl_authenticate);
        break;
    case KAFKA_API_DescribeUserScramCredentials:
        rc = parse_describe_scram(r, a, v, f, &req->u.describe_scram);
        break;
    case KAFKA_API_AlterUserScramCredentials:
        rc = parse_alter_scram(r, a, v, f, &req->u.alter_scram);
        break;
    case KAFKA_API_CreateAcls: rc = parse_create_acls(r, a, v, f, &req->u.create_acls); break;
    case KAFKA_API_DescribeAcls: rc = parse_describe_acls(r, a, v, f, &req->u.describe_acls); break;
    case KAFKA_API_DeleteAcls: rc = parse_delete_acls(r, a, v, f, &req->u.delete_acls); break;
    default: rc = -1; break;
    }
    if (rc != 0) goto fail;
    /* Trailing bytes are tolerated (a newer client's fields we skip only
     * through tags); Kafka itself ignores them too. */
    return KAFKA_PARSE_OK;
fail:
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "malformed %s v%d (correlation id %d) at byte %zu of %zu", what,
                 (int)h->api_version, (int)h->correlation_id, r->pos, len);
    return KAFKA_PARSE_MALFORMED;
}

void kafka_write_response_header(kw *w, const kafka_header *h)
{
    kw_i32(w, h->correlation_id);
    if (h->flexible && h->api_key != KAFKA_API_ApiVersions) kw_tags(w, 1);
}

/* APIs a single-node broker parses but does not advertise: a client that
 * sees OffsetForLeaderEpoch validates its positions with it, which only
 * means something with leader epochs (the cluster). */
static int api_cluster_only(int16_t api_key) { return api_key == KAFKA_API_OffsetForLeaderEpoch; }

void kafka_write_ApiVersionsResponse(kw *w, int16_t v, int16_t error_code, int cluster)
{
    int f = v >= 3;
    int32_t n = 0;
    for (size_t i = 0; i < kafka_api_nranges; i++)
        n += cluster || !api_cluster_only(kafka_api_ranges[i].api_key);
    kw_i16(w, error_code);
    kw_array(w, f, n);
    for (size_t i = 0; i < kafka_api_nranges; i++) {
        if (!cluster && api_cluster_only(kafka_api_ranges[i].api_key)) continue;
        kw_i16(w, kafka_api_ranges[i].api_key);
        kw_i16(w, kafka_api_ranges[i].min_version);
        kw_i16(w, kafka_api_ranges[i].max_version);
        kw_tags(w, f);
    }
    if (v >= 1) kw_i32(w, 0); /* ThrottleTimeMs */
    kw_tags(w, f);
}
