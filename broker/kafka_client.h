/*
 * kafka_client.h — the broker as a Kafka *client* of another broker: the
 * requests a follower's fetcher sends to its leader (Fetch v12 with its
 * replica id, OffsetForLeaderEpoch v4) and the parsers of their responses.
 *
 * Why here and not in kafka_parse.c: those parse what clients send us; these
 * parse what a peer broker answers. Both read through the same bounded
 * reader with one `fail:` exit, since a peer's bytes are as untrusted as a
 * client's (a restarted, older or broken peer). Responses are parsed into
 * structs allocated from the caller's arena; Records point into the
 * response buffer, which must outlive the parsed form.
 *
 * Frames written by the encoders start with the 4-byte size prefix;
 * the parsers take a response frame without it (from the correlation id).
 *
 * tierstore's one addition to the wire: a Fetch response partition carries
 * the leader's *local* log start offset in tagged field
 * KAFKA_TAG_LOCAL_LOG_START (a follower that cannot continue from its own
 * log restarts at that offset, KIP-405's "earliest local" without a
 * ListOffsets round trip). Clients skip unknown tags.
 *
 * Thread: any (pure).
 */
#ifndef TS_BROKER_KAFKA_CLIENT_H
#define TS_BROKER_KAFKA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "kafka_wire.h"

#define KAFKA_API_OffsetForLeaderEpoch_KEY 23
#define KAFKA_FETCH_REPLICA_VERSION 12
#define KAFKA_OFFSET_FOR_LEADER_EPOCH_VERSION 4
/* Fetch response, partition level: the leader's local log start (int64). */
#define KAFKA_TAG_LOCAL_LOG_START 1000
/* Kafka's tagged field 0 of a Fetch response partition (KIP-320). */
#define KAFKA_TAG_DIVERGING_EPOCH 0

/* ---- Fetch v12, as a follower sends it ------------------------------ */
typedef struct kc_fetch_part {
    const char *topic; /* consecutive parts with the same topic share one topic entry */
    int32_t partition;
    int32_t current_leader_epoch;
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t log_start_offset;
    int32_t partition_max_bytes;
} kc_fetch_part;

typedef struct kc_fetch_req {
    int32_t replica_id, max_wait_ms, min_bytes, max_bytes;
    int8_t isolation_level;
    size_t nparts;
    const kc_fetch_part *parts;
} kc_fetch_req;

void kafka_write_FetchRequest(kw *w, int32_t correlation_id, const char *client_id,
                              const kc_fetch_req *q);

typedef struct kc_fetch_resp_part {
    const char *topic; /* arena */
    int32_t partition;
    int16_t error;
    int64_t high_watermark, last_stable_offset, log_start_offset;
    int64_t local_log_start_offset; /* KAFKA_TAG_LOCAL_LOG_START; -1 when absent */
    int32_t diverging_epoch;        /* KAFKA_TAG_DIVERGING_EPOCH; -1 when absent */
    int64_t diverging_end_offset;
    kslice records; /* len -1 or 0: none */
} kc_fetch_resp_part;

typedef struct kc_fetch_resp {
    int32_t correlation_id, throttle_ms, session_id;
    int16_t error;
    size_t nparts;
    kc_fetch_resp_part *parts; /* every partition of every topic, in order */
} kc_fetch_resp;

/* 0, or -1 with err saying where the frame is malformed. */
int kafka_read_FetchResponse(const uint8_t *frame, size_t len, karena *a, kc_fetch_resp *out,
                             char *err, size_t errlen);

/* ---- OffsetForLeaderEpoch v4 ------------------------------------------ */
typedef struct kc_epoch_part {
    const char *topic;
    int32_t partition;
    int32_t current_leader_epoch;
    int32_t leader_epoch;
} kc_epoch_part;

void kafka_write_OffsetForLeaderEpochRequest(kw *w, int32_t correlation_id,
                                             const char *client_id, int32_t replica_id,
                                             const kc_epoch_part *parts, size_t nparts);

typedef struct kc_epoch_resp_part {
    const char *topic; /* arena */
    int32_t partition;
    int16_t error;
    int32_t leader_epoch;
    int64_t end_offset;
} kc_epoch_resp_part;

typedef struct kc_epoch_resp {
    int32_t correlation_id, throttle_ms;
    size_t nparts;
    kc_epoch_resp_part *parts;
} kc_epoch_resp;

int kafka_read_OffsetForLeaderEpochResponse(const uint8_t *frame, size_t len, karena *a,
                                            kc_epoch_resp *out, char *err, size_t errlen);

/* ---- SASL, as a broker logging in to another ------------------------ */
/* SaslHandshake v1 (header v1, not flexible) names the mechanism; then
 * SaslAuthenticate v2 (flexible) carries each client message. */
#define KAFKA_API_SaslHandshake_KEY 17
#define KAFKA_API_SaslAuthenticate_KEY 36
#define KAFKA_SASL_HANDSHAKE_VERSION 1
#define KAFKA_SASL_AUTHENTICATE_VERSION 2

void kafka_write_SaslHandshakeRequest(kw *w, int32_t correlation_id, const char *client_id,
                                      const char *mechanism);
void kafka_write_SaslAuthenticateRequest(kw *w, int32_t correlation_id, const char *client_id,
                                         const void *auth_bytes, size_t len);

typedef struct kc_sasl_handshake_resp {
    int32_t correlation_id;
    int16_t error;
    size_t nmechanisms;
    const char **mechanisms; /* arena */
} kc_sasl_handshake_resp;

typedef struct kc_sasl_auth_resp {
    int32_t correlation_id;
    int16_t error;
    const char *error_message; /* arena; NULL when none */
    kslice auth_bytes;         /* into the frame */
    int64_t session_lifetime_ms;
} kc_sasl_auth_resp;

int kafka_read_SaslHandshakeResponse(const uint8_t *frame, size_t len, karena *a,
                                     kc_sasl_handshake_resp *out, char *err, size_t errlen);
int kafka_read_SaslAuthenticateResponse(const uint8_t *frame, size_t len, karena *a,
                                        kc_sasl_auth_resp *out, char *err, size_t errlen);

#endif
