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
    {KAFKA_API_ListOffsets, 1, 7, 6},
    {KAFKA_API_Metadata, 0, 9, 9},
    {KAFKA_API_OffsetCommit, 0, 8, 8},
    {KAFKA_API_OffsetFetch, 0, 7, 6},
    {KAFKA_API_FindCoordinator, 0, 3, 3},
    {KAFKA_API_JoinGroup, 0, 7, 6},
    {KAFKA_API_Heartbeat, 0, 4, 4},
    {KAFKA_API_LeaveGroup, 0, 4, 4},
    {KAFKA_API_SyncGroup, 0, 5, 4},
    {KAFKA_API_ApiVersions, 0, 3, 3},
    {KAFKA_API_CreateTopics, 0, 5, 5},
    {KAFKA_API_DeleteTopics, 0, 5, 4},
    {KAFKA_API_InitProducerId, 0, 4, 2},
    {KAFKA_API_SaslHandshake, 0, 1, NEVER},
    {KAFKA_API_SaslAuthenticate, 0, 2, 2},
    {KAFKA_API_DescribeUserScramCredentials, 0, 0, 0},
    {KAFKA_API_AlterUserScramCredentials, 0, 0, 0},
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
    case KAFKA_API_SaslHandshake: return "SaslHandshake";
    case KAFKA_API_SaslAuthenticate: return "SaslAuthenticate";
    case KAFKA_API_DescribeUserScramCredentials: return "DescribeUserScramCredentials";
    case KAFKA_API_AlterUserScramCredentials: return "AlterUserScramCredentials";
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
            int32_t epoch, max_num;
            I32(t->partitions[j].partition_index);
            if (v >= 4) I32(epoch);
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
        int8_t b;
        if (v <= 10) I8(b); /* IncludeClusterAuthorizedOperations */
        I8(b);              /* IncludeTopicAuthorizedOperations */
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
    ARRAY(q->ntopics, q->topic_names, 0, 1);
    for (int32_t i = 0; i < q->ntopics; i++) STR(q->topic_names[i]);
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
            int32_t epoch;
            int64_t ts;
            I32(p->partition_index);
            I64(p->committed_offset);
            if (v >= 6) I32(epoch);
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

static int parse_offset_fetch(kr *r, karena *a, int v, int f, kafka_OffsetFetchRequest *q)
{
    STR(q->group_id);
    ARRAY(q->ntopics, q->topics, v >= 2, 2);
    for (int32_t i = 0; i < q->ntopics; i++) {
        kafka_OffsetFetchTopic *t = &q->topics[i];
        STR(t->name);
        ARRAY(t->npartitions, t->partition_indexes, 0, 4);
        for (int32_t j = 0; j < t->npartitions; j++) I32(t->partition_indexes[j]);
        TAGS();
    }
    if (v >= 7) I8(q->require_stable);
    TAGS();
    return 0;
fail:
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

void kafka_write_ApiVersionsResponse(kw *w, int16_t v, int16_t error_code)
{
    int f = v >= 3;
    kw_i16(w, error_code);
    kw_array(w, f, (int32_t)kafka_api_nranges);
    for (size_t i = 0; i < kafka_api_nranges; i++) {
        kw_i16(w, kafka_api_ranges[i].api_key);
        kw_i16(w, kafka_api_ranges[i].min_version);
        kw_i16(w, kafka_api_ranges[i].max_version);
        kw_tags(w, f);
    }
    if (v >= 1) kw_i32(w, 0); /* ThrottleTimeMs */
    kw_tags(w, f);
}
