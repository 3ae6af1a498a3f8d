/*
 * kafka_proto.h — the Kafka requests tierbroker understands: API keys,
 * supported version ranges, ErrorCode values, and the parsed form of each
 * request (fields keep Kafka's names from the message JSON schemas in
 * apache/kafka clients/src/main/resources/common/message/).
 *
 * Parsing is pure: kafka_parse_request() reads one request frame (without
 * the 4-byte size prefix) through a bounded reader into structs allocated
 * from the caller's arena; byte fields (Produce records, group metadata,
 * assignments) point into the frame, which must outlive the parsed form.
 * No engine, plugin or network here, so unit tests and the fuzzer use it
 * alone.
 *
 * Thread: any; the broker calls it on the network-loop thread.
 */
#ifndef TS_BROKER_KAFKA_PROTO_H
#define TS_BROKER_KAFKA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "kafka_wire.h"

/* ApiKey values. */
enum {
    KAFKA_API_Produce = 0,
    KAFKA_API_Fetch = 1,
    KAFKA_API_ListOffsets = 2,
    KAFKA_API_Metadata = 3,
    KAFKA_API_OffsetCommit = 8,
    KAFKA_API_OffsetFetch = 9,
    KAFKA_API_FindCoordinator = 10,
    KAFKA_API_JoinGroup = 11,
    KAFKA_API_Heartbeat = 12,
    KAFKA_API_LeaveGroup = 13,
    KAFKA_API_SyncGroup = 14,
    KAFKA_API_DescribeGroups = 15,
    KAFKA_API_ListGroups = 16,
    KAFKA_API_ApiVersions = 18,
    KAFKA_API_CreateTopics = 19,
    KAFKA_API_DeleteTopics = 20,
    KAFKA_API_SaslHandshake = 17,
    KAFKA_API_InitProducerId = 22,
    KAFKA_API_DeleteRecords = 21,
    KAFKA_API_DescribeConfigs = 32,
    KAFKA_API_AlterConfigs = 33,
    KAFKA_API_DescribeLogDirs = 35,
    KAFKA_API_CreatePartitions = 37,
    KAFKA_API_DeleteGroups = 42,
    KAFKA_API_IncrementalAlterConfigs = 44,
    KAFKA_API_OffsetDelete = 47,
    KAFKA_API_DescribeCluster = 60,
    KAFKA_API_OffsetForLeaderEpoch = 23,
    KAFKA_API_SaslAuthenticate = 36,
    KAFKA_API_DescribeUserScramCredentials = 50,
    KAFKA_API_AlterUserScramCredentials = 51,
    KAFKA_API_DescribeAcls = 29,
    KAFKA_API_CreateAcls = 30,
    KAFKA_API_DeleteAcls = 31,
};

/* ConfigResource types and DescribeConfigs' ConfigSource values. */
enum {
    KAFKA_RESOURCE_TOPIC = 2,
    KAFKA_RESOURCE_BROKER = 4,
    KAFKA_SOURCE_DYNAMIC_TOPIC_CONFIG = 1,
    KAFKA_SOURCE_DYNAMIC_BROKER_CONFIG = 2,
    KAFKA_SOURCE_STATIC_BROKER_CONFIG = 4,
    KAFKA_SOURCE_DEFAULT_CONFIG = 5,
};
/* IncrementalAlterConfigs operations. */
enum { KAFKA_OP_SET = 0, KAFKA_OP_DELETE = 1, KAFKA_OP_APPEND = 2, KAFKA_OP_SUBTRACT = 3 };

/* Kafka ErrorCode values (the protocol's, not tierstore's status codes;
 * the mapping lives in broker/kafka_errors.c). */
typedef enum kafka_error {
    KAFKA_UNKNOWN_SERVER_ERROR = -1,
    KAFKA_NONE = 0,
    KAFKA_OFFSET_OUT_OF_RANGE = 1,
    KAFKA_CORRUPT_MESSAGE = 2,
    KAFKA_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KAFKA_LEADER_NOT_AVAILABLE = 5,
    KAFKA_NOT_LEADER_OR_FOLLOWER = 6,
    KAFKA_REQUEST_TIMED_OUT = 7,
    KAFKA_BROKER_NOT_AVAILABLE = 8,
    KAFKA_REPLICA_NOT_AVAILABLE = 9,
    KAFKA_MESSAGE_TOO_LARGE = 10,
    KAFKA_OFFSET_METADATA_TOO_LARGE = 12,
    KAFKA_COORDINATOR_LOAD_IN_PROGRESS = 14,
    KAFKA_COORDINATOR_NOT_AVAILABLE = 15,
    KAFKA_NOT_COORDINATOR = 16,
    KAFKA_INVALID_TOPIC_EXCEPTION = 17,
    KAFKA_NOT_ENOUGH_REPLICAS = 19,
    KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    KAFKA_INVALID_REQUIRED_ACKS = 21,
    KAFKA_ILLEGAL_GENERATION = 22,
    KAFKA_INCONSISTENT_GROUP_PROTOCOL = 23,
    KAFKA_INVALID_GROUP_ID = 24,
    KAFKA_UNKNOWN_MEMBER_ID = 25,
    KAFKA_INVALID_SESSION_TIMEOUT = 26,
    KAFKA_REBALANCE_IN_PROGRESS = 27,
    KAFKA_UNSUPPORTED_VERSION = 35,
    KAFKA_TOPIC_ALREADY_EXISTS = 36,
    KAFKA_INVALID_PARTITIONS = 37,
    KAFKA_INVALID_REPLICATION_FACTOR = 38,
    KAFKA_INVALID_REPLICA_ASSIGNMENT = 39,
    KAFKA_INVALID_CONFIG = 40,
    KAFKA_NOT_CONTROLLER = 41,
    KAFKA_INVALID_REQUEST = 42,
    KAFKA_POLICY_VIOLATION = 44,
    KAFKA_TOPIC_AUTHORIZATION_FAILED = 29,
    KAFKA_GROUP_AUTHORIZATION_FAILED = 30,
    KAFKA_CLUSTER_AUTHORIZATION_FAILED = 31,
    KAFKA_SECURITY_DISABLED = 54,
    KAFKA_UNSUPPORTED_SASL_MECHANISM = 33,
    KAFKA_ILLEGAL_SASL_STATE = 34,
    KAFKA_SASL_AUTHENTICATION_FAILED = 58,
    KAFKA_RESOURCE_NOT_FOUND = 91,
    KAFKA_DUPLICATE_RESOURCE = 92,
    KAFKA_UNACCEPTABLE_CREDENTIAL = 93,
    KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    KAFKA_DUPLICATE_SEQUENCE_NUMBER = 46,
    KAFKA_INVALID_PRODUCER_EPOCH = 47,
    KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    KAFKA_KAFKA_STORAGE_ERROR = 56,
    KAFKA_UNKNOWN_PRODUCER_ID = 59,
    KAFKA_NON_EMPTY_GROUP = 68,
    KAFKA_GROUP_ID_NOT_FOUND = 69,
    KAFKA_FENCED_LEADER_EPOCH = 74,
    KAFKA_UNKNOWN_LEADER_EPOCH = 75,
    KAFKA_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KAFKA_MEMBER_ID_REQUIRED = 79,
    KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    KAFKA_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    KAFKA_INVALID_RECORD = 87,
    KAFKA_THROTTLING_QUOTA_EXCEEDED = 89,
    KAFKA_OFFSET_MOVED_TO_TIERED_STORAGE = 109,
    KAFKA_MISMATCHED_ENDPOINT_TYPE = 114,
    KAFKA_UNSUPPORTED_ENDPOINT_TYPE = 115,
} kafka_error;

/* Supported versions and the first flexible version of each API. */
typedef struct kafka_api_range {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
    int16_t first_flexible; /* INT16_MAX when never flexible here */
} kafka_api_range;

extern const kafka_api_range kafka_api_ranges[];
extern const size_t kafka_api_nranges;
/* NULL when the API is not served. */
const kafka_api_range *kafka_api_find(int16_t api_key);
const char *kafka_api_name(int16_t api_key);

/* ------------------------------------------------------------ requests */
typedef struct kafka_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    const char *client_id; /* may be NULL */
    int flexible;          /* request header v2 / flexible body */
} kafka_header;

typedef struct kafka_ProducePartition {
    int32_t index;
    kslice records; /* record batches v2, back to back; len -1 = null */
} kafka_ProducePartition;
typedef struct kafka_ProduceTopic {
    const char *name;
    int32_t npartitions;
    kafka_ProducePartition *partitions;
} kafka_ProduceTopic;
typedef struct kafka_ProduceRequest {
    const char *transactional_id;
    int16_t acks;
    int32_t timeout_ms;
    int32_t ntopics;
    kafka_ProduceTopic *topics;
} kafka_ProduceRequest;

typedef struct kafka_FetchPartition {
    int32_t partition;
    int32_t current_leader_epoch;
    int64_t fetch_offset;
    int64_t log_start_offset;
    int32_t partition_max_bytes;
} kafka_FetchPartition;
typedef struct kafka_FetchTopic {
    const char *topic;
    int32_t npartitions;
    kafka_FetchPartition *partitions;
} kafka_FetchTopic;
typedef struct kafka_FetchRequest {
    int32_t replica_id, max_wait_ms, min_bytes, max_bytes;
    int8_t isolation_level;
    int32_t session_id, session_epoch;
    int32_t ntopics;
    kafka_FetchTopic *topics;
} kafka_FetchRequest;

/* ListOffsets' special timestamps and the first version serving each
 * (Kafka's ReplicaManager answers an older version UNSUPPORTED_VERSION for
 * that partition). */
#define KAFKA_TS_LATEST (-1)
#define KAFKA_TS_EARLIEST (-2)
#define KAFKA_TS_MAX_TIMESTAMP (-3)  /* KIP-734, v7+ */
#define KAFKA_TS_EARLIEST_LOCAL (-4) /* KIP-405, v8+: the local log start */
#define KAFKA_TS_LATEST_TIERED (-5)  /* KIP-1005, v9+: the last offset in remote storage */
/* The first ListOffsets version that serves timestamp ts (< 0), or -1 when
 * no version does. */
int kafka_list_offsets_min_version(int64_t ts);

typedef struct kafka_ListOffsetsPartition {
    int32_t partition_index;
    int32_t current_leader_epoch; /* -1: not given (before v4) */
    int64_t timestamp; /* >= 0, or one of KAFKA_TS_* */
} kafka_ListOffsetsPartition;
typedef struct kafka_ListOffsetsTopic {
    const char *name;
    int32_t npartitions;
    kafka_ListOffsetsPartition *partitions;
} kafka_ListOffsetsTopic;
typedef struct kafka_ListOffsetsRequest {
    int32_t replica_id;
    int8_t isolation_level;
    int32_t ntopics;
    kafka_ListOffsetsTopic *topics;
} kafka_ListOffsetsRequest;

typedef struct kafka_MetadataRequest {
    int32_t ntopics; /* -1: all topics */
    const char **topics;
    int8_t allow_auto_topic_creation;
    int8_t include_cluster_authorized_operations; /* v8-10 */
    int8_t include_topic_authorized_operations;   /* v8+ */
} kafka_MetadataRequest;

typedef struct kafka_CreatableTopicConfig {
    const char *name;
    const char *value; /* may be NULL */
} kafka_CreatableTopicConfig;
typedef struct kafka_CreatableTopic {
    const char *name;
    int32_t num_partitions;     /* -1: broker default */
    int16_t replication_factor; /* -1: broker default */
    int32_t nassignments;
    int32_t nconfigs;
    kafka_CreatableTopicConfig *configs;
} kafka_CreatableTopic;
typedef struct kafka_CreateTopicsRequest {
    int32_t ntopics;
    kafka_CreatableTopic *topics;
    int32_t timeout_ms;
    int8_t validate_only;
} kafka_CreateTopicsRequest;

typedef struct kafka_DeleteTopicsRequest {
    int32_t ntopics;
    const char **topic_names;
    int32_t timeout_ms;
} kafka_DeleteTopicsRequest;

typedef struct kafka_FindCoordinatorRequest {
    const char *key;
    int8_t key_type; /* 0 group, 1 transaction */
} kafka_FindCoordinatorRequest;

typedef struct kafka_JoinGroupProtocol {
    const char *name;
    kslice metadata;
} kafka_JoinGroupProtocol;
typedef struct kafka_JoinGroupRequest {
    const char *group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    const char *member_id;
    const char *group_instance_id;
    const char *protocol_type;
    int32_t nprotocols;
    kafka_JoinGroupProtocol *protocols;
} kafka_JoinGroupRequest;

typedef struct kafka_SyncGroupAssignment {
    const char *member_id;
    kslice assignment;
} kafka_SyncGroupAssignment;
typedef struct kafka_SyncGroupRequest {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id;
    const char *protocol_type;
    const char *protocol_name;
    int32_t nassignments;
    kafka_SyncGroupAssignment *assignments;
} kafka_SyncGroupRequest;

typedef struct kafka_HeartbeatRequest {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id;
} kafka_HeartbeatRequest;

typedef struct kafka_LeaveGroupRequest {
    const char *group_id;
    int32_t nmembers;
    const char **member_ids; /* v0-2: one member */
} kafka_LeaveGroupRequest;

typedef struct kafka_OffsetCommitPartition {
    int32_t partition_index;
    int64_t committed_offset;
    int32_t committed_leader_epoch; /* v6+; -1 before */
    const char *committed_metadata;
} kafka_OffsetCommitPartition;
typedef struct kafka_OffsetCommitTopic {
    const char *name;
    int32_t npartitions;
    kafka_OffsetCommitPartition *partitions;
} kafka_OffsetCommitTopic;
typedef struct kafka_OffsetCommitRequest {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id;
    int32_t ntopics;
    kafka_OffsetCommitTopic *topics;
} kafka_OffsetCommitRequest;

/* A topic and partition indexes: the topic entries of OffsetFetch,
 * OffsetDelete and DescribeLogDirs (Topic/Partitions there) share it. */
typedef struct kafka_TopicPartitions {
    const char *name;
    int32_t npartitions;
    int32_t *partition_indexes;
} kafka_TopicPartitions;
typedef kafka_TopicPartitions kafka_OffsetFetchTopic;
typedef struct kafka_OffsetFetchRequest {
    const char *group_id;
    int32_t ntopics; /* -1: all topics of the group */
    kafka_OffsetFetchTopic *topics;
    int8_t require_stable;
} kafka_OffsetFetchRequest;

typedef struct kafka_ListGroupsRequest {
    int32_t nstates; /* v4+: StatesFilter; 0 = every state */
    const char **states_filter;
} kafka_ListGroupsRequest;

typedef struct kafka_DescribeGroupsRequest {
    int32_t ngroups;
    const char **groups;
    int8_t include_authorized_operations; /* v3+ */
} kafka_DescribeGroupsRequest;

typedef struct kafka_DeleteGroupsRequest {
    int32_t ngroups;
    const char **groups_names;
} kafka_DeleteGroupsRequest;

typedef struct kafka_OffsetDeleteRequest {
    const char *group_id;
    int32_t ntopics;
    kafka_TopicPartitions *topics;
} kafka_OffsetDeleteRequest;

typedef struct kafka_DescribeClusterRequest {
    int8_t include_cluster_authorized_operations;
    int8_t endpoint_type; /* v1+; 1 brokers (the default), 2 controllers */
} kafka_DescribeClusterRequest;

typedef struct kafka_DescribeLogDirsRequest {
    int32_t ntopics; /* -1 (null): every topic */
    kafka_TopicPartitions *topics;
} kafka_DescribeLogDirsRequest;

typedef struct kafka_InitProducerIdRequest {
    const char *transactional_id;
    int32_t transaction_timeout_ms;
    int64_t producer_id;
    int16_t producer_epoch;
} kafka_InitProducerIdRequest;

/* DescribeConfigs, AlterConfigs, IncrementalAlterConfigs: one resource. */
typedef struct kafka_ConfigEntry {
    const char *name;
    const char *value; /* may be NULL */
    int8_t op;         /* IncrementalAlterConfigs: KAFKA_OP_*; AlterConfigs: SET */
} kafka_ConfigEntry;
typedef struct kafka_ConfigResource {
    int8_t resource_type;
    const char *resource_name;
    int32_t nconfigs; /* DescribeConfigs: -1 = every key */
    kafka_ConfigEntry *configs;
} kafka_ConfigResource;
typedef struct kafka_ConfigsRequest {
    int32_t nresources;
    kafka_ConfigResource *resources;
    int8_t include_synonyms;      /* DescribeConfigs v1+ */
    int8_t include_documentation; /* DescribeConfigs v3+ */
    int8_t validate_only;         /* the two alters */
} kafka_ConfigsRequest;

typedef struct kafka_CreatePartitionsTopic {
    const char *name;
    int32_t count;
    int32_t nassignments; /* -1: null (the broker assigns) */
} kafka_CreatePartitionsTopic;
typedef struct kafka_CreatePartitionsRequest {
    int32_t ntopics;
    kafka_CreatePartitionsTopic *topics;
    int32_t timeout_ms;
    int8_t validate_only;
} kafka_CreatePartitionsRequest;

typedef struct kafka_DeleteRecordsPartition {
    int32_t partition_index;
    int64_t offset; /* -1: the high watermark */
} kafka_DeleteRecordsPartition;
typedef struct kafka_DeleteRecordsTopic {
    const char *name;
    int32_t npartitions;
    kafka_DeleteRecordsPartition *partitions;
} kafka_DeleteRecordsTopic;
typedef struct kafka_DeleteRecordsRequest {
    int32_t ntopics;
    kafka_DeleteRecordsTopic *topics;
    int32_t timeout_ms;
} kafka_DeleteRecordsRequest;
/* OffsetForLeaderEpoch (KIP-101/279): v2 from consumers (librdkafka
 * validates its position after a leader change), v3+ carry ReplicaId. */
typedef struct kafka_OffsetForLeaderEpochPartition {
    int32_t partition;
    int32_t current_leader_epoch; /* -1: not checked */
    int32_t leader_epoch;
} kafka_OffsetForLeaderEpochPartition;
typedef struct kafka_OffsetForLeaderEpochTopic {
    const char *topic;
    int32_t npartitions;
    kafka_OffsetForLeaderEpochPartition *partitions;
} kafka_OffsetForLeaderEpochTopic;
typedef struct kafka_OffsetForLeaderEpochRequest {
    int32_t replica_id; /* -1 (consumer) before v3 */
    int32_t ntopics;
    kafka_OffsetForLeaderEpochTopic *topics;
} kafka_OffsetForLeaderEpochRequest;

typedef struct kafka_ApiVersionsRequest {
    const char *client_software_name;
    const char *client_software_version;
} kafka_ApiVersionsRequest;

typedef struct kafka_SaslHandshakeRequest {
    const char *mechanism;
} kafka_SaslHandshakeRequest;

typedef struct kafka_SaslAuthenticateRequest {
    kslice auth_bytes; /* points into the frame */
} kafka_SaslAuthenticateRequest;

/* KIP-554. Mechanism: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512 (as auth/scram.h). */
typedef struct kafka_DescribeUserScramCredentialsRequest {
    int32_t nusers; /* -1: every user */
    const char **users;
} kafka_DescribeUserScramCredentialsRequest;
typedef struct kafka_ScramCredentialDeletion {
    const char *name;
    int8_t mechanism;
} kafka_ScramCredentialDeletion;
typedef struct kafka_ScramCredentialUpsertion {
    const char *name;
    int8_t mechanism;
    int32_t iterations;
    kslice salt, salted_password;
} kafka_ScramCredentialUpsertion;
typedef struct kafka_AlterUserScramCredentialsRequest {
    int32_t ndeletions;
    kafka_ScramCredentialDeletion *deletions;
    int32_t nupsertions;
    kafka_ScramCredentialUpsertion *upsertions;
} kafka_AlterUserScramCredentialsRequest;

/* CreateAcls (30), DescribeAcls (29), DeleteAcls (31): one binding or
 * filter, codes as broker/acl.h (ResourceType, PatternType, AclOperation,
 * AclPermissionType). Before v1 there is no pattern type: LITERAL. Filters
 * may have NULL name, principal and host (any). */
typedef struct kafka_AclBinding {
    int8_t resource_type;
    const char *resource_name;
    int8_t pattern_type;
    const char *principal, *host;
    int8_t operation, permission_type;
} kafka_AclBinding;
typedef struct kafka_CreateAclsRequest {
    int32_t ncreations;
    kafka_AclBinding *creations;
} kafka_CreateAclsRequest;
typedef struct kafka_DescribeAclsRequest {
    kafka_AclBinding filter;
} kafka_DescribeAclsRequest;
typedef struct kafka_DeleteAclsRequest {
    int32_t nfilters;
    kafka_AclBinding *filters;
} kafka_DeleteAclsRequest;

typedef struct kafka_request {
    kafka_header hdr;
    union {
        kafka_ProduceRequest produce;
        kafka_FetchRequest fetch;
        kafka_ListOffsetsRequest list_offsets;
        kafka_MetadataRequest metadata;
        kafka_CreateTopicsRequest create_topics;
        kafka_DeleteTopicsRequest delete_topics;
        kafka_FindCoordinatorRequest find_coordinator;
        kafka_JoinGroupRequest join_group;
        kafka_SyncGroupRequest sync_group;
        kafka_HeartbeatRequest heartbeat;
        kafka_LeaveGroupRequest leave_group;
        kafka_OffsetCommitRequest offset_commit;
        kafka_OffsetFetchRequest offset_fetch;
        kafka_InitProducerIdRequest init_producer_id;
        kafka_ApiVersionsRequest api_versions;
        kafka_ListGroupsRequest list_groups;
        kafka_DescribeGroupsRequest describe_groups;
        kafka_DeleteGroupsRequest delete_groups;
        kafka_OffsetDeleteRequest offset_delete;
        kafka_DescribeClusterRequest describe_cluster;
        kafka_DescribeLogDirsRequest describe_log_dirs;
        kafka_ConfigsRequest configs; /* DescribeConfigs, AlterConfigs, IncrementalAlterConfigs */
        kafka_CreatePartitionsRequest create_partitions;
        kafka_DeleteRecordsRequest delete_records;
        kafka_OffsetForLeaderEpochRequest offset_for_leader_epoch;
        kafka_SaslHandshakeRequest sasl_handshake;
        kafka_SaslAuthenticateRequest sasl_authenticate;
        kafka_DescribeUserScramCredentialsRequest describe_scram;
        kafka_AlterUserScramCredentialsRequest alter_scram;
        kafka_CreateAclsRequest create_acls;
        kafka_DescribeAclsRequest describe_acls;
        kafka_DeleteAclsRequest delete_acls;
    } u;
} kafka_request;

typedef enum kafka_parse_result {
    KAFKA_PARSE_OK = 0,
    KAFKA_PARSE_UNSUPPORTED = 1, /* header read; API or version not served */
    KAFKA_PARSE_MALFORMED = -1,  /* the connection must be closed */
} kafka_parse_result;

/* Parses one request frame. On KAFKA_PARSE_UNSUPPORTED, req->hdr holds the
 * api key, version and correlation id (enough to answer ApiVersions with
 * UNSUPPORTED_VERSION or to log). On KAFKA_PARSE_MALFORMED, errbuf says what
 * and where. */
kafka_parse_result kafka_parse_request(const uint8_t *frame, size_t len, karena *arena,
                                       kafka_request *req, char *errbuf, size_t errlen);

/* The topics of a consumer-protocol subscription (ConsumerProtocolSubscription,
 * versions 0-3: Version int16 then Topics []string; never flexible), the
 * member metadata a "consumer" group's JoinGroup carries. 0 and *topics
 * allocated from the arena, or -1 when the bytes are not such a
 * subscription. */
int kafka_parse_consumer_subscription(const uint8_t *p, size_t len, karena *a,
                                      const char ***topics, int32_t *ntopics);

/* Response header: correlation id, plus an empty tag section when the
 * response is flexible (never for ApiVersions, whose response header stays
 * v0 so that any client can read it). */
void kafka_write_response_header(kw *w, const kafka_header *h);

/* Encodes the ApiVersions response (body only) for version v; cluster = 0
 * leaves out the APIs only a cluster member serves (OffsetForLeaderEpoch). */
void kafka_write_ApiVersionsResponse(kw *w, int16_t v, int16_t error_code, int cluster);

#endif
