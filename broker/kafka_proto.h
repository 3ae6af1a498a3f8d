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
    KAFKA_API_ApiVersions = 18,
    KAFKA_API_CreateTopics = 19,
    KAFKA_API_DeleteTopics = 20,
    KAFKA_API_SaslHandshake = 17,
    KAFKA_API_InitProducerId = 22,
    KAFKA_API_SaslAuthenticate = 36,
    KAFKA_API_DescribeUserScramCredentials = 50,
    KAFKA_API_AlterUserScramCredentials = 51,
};

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
    KAFKA_CLUSTER_AUTHORIZATION_FAILED = 31,
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
    KAFKA_GROUP_ID_NOT_FOUND = 69,
    KAFKA_FENCED_LEADER_EPOCH = 74,
    KAFKA_UNKNOWN_LEADER_EPOCH = 75,
    KAFKA_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KAFKA_MEMBER_ID_REQUIRED = 79,
    KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
    KAFKA_INVALID_RECORD = 87,
    KAFKA_OFFSET_MOVED_TO_TIERED_STORAGE = 109,
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

typedef struct kafka_ListOffsetsPartition {
    int32_t partition_index;
    int64_t timestamp; /* -1 latest, -2 earliest, -3 max timestamp */
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

typedef struct kafka_OffsetFetchTopic {
    const char *name;
    int32_t npartitions;
    int32_t *partition_indexes;
} kafka_OffsetFetchTopic;
typedef struct kafka_OffsetFetchRequest {
    const char *group_id;
    int32_t ntopics; /* -1: all topics of the group */
    kafka_OffsetFetchTopic *topics;
    int8_t require_stable;
} kafka_OffsetFetchRequest;

typedef struct kafka_InitProducerIdRequest {
    const char *transactional_id;
    int32_t transaction_timeout_ms;
    int64_t producer_id;
    int16_t producer_epoch;
} kafka_InitProducerIdRequest;

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
        kafka_SaslHandshakeRequest sasl_handshake;
        kafka_SaslAuthenticateRequest sasl_authenticate;
        kafka_DescribeUserScramCredentialsRequest describe_scram;
        kafka_AlterUserScramCredentialsRequest alter_scram;
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

/* Response header: correlation id, plus an empty tag section when the
 * response is flexible (never for ApiVersions, whose response header stays
 * v0 so that any client can read it). */
void kafka_write_response_header(kw *w, const kafka_header *h);

/* Encodes the ApiVersions response (body only) for version v. */
void kafka_write_ApiVersionsResponse(kw *w, int16_t v, int16_t error_code);

#endif
