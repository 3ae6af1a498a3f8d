/*
 * kafka_errors.c — the one place where plugin status codes become Kafka
 * ErrorCodes. Retriable storage conditions map to codes clients retry.
 * Thread: any.
 */
#include "broker.h"

int16_t kafka_error_from_status(tsp_status st)
{
    switch (st) {
    case TSP_OK: return KAFKA_NONE;
    case TSP_E_CORRUPT:
    case TSP_E_CHECKSUM: return KAFKA_CORRUPT_MESSAGE;
    case TSP_E_NOT_FOUND: return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    case TSP_E_OFFSET_OUT_OF_RANGE: return KAFKA_OFFSET_OUT_OF_RANGE;
    case TSP_E_CONFIG: return KAFKA_INVALID_CONFIG;
    case TSP_E_MSG_TOO_LARGE: return KAFKA_MESSAGE_TOO_LARGE;
    case TSP_E_INVALID_RECORD: return KAFKA_INVALID_RECORD;
    case TSP_E_TIMEOUT: return KAFKA_REQUEST_TIMED_OUT;
    case TSP_E_INVAL: return KAFKA_INVALID_REQUEST;
    case TSP_E_FENCED: return KAFKA_FENCED_LEADER_EPOCH;
    /* Retriable in Kafka clients: the storage is momentarily unable. */
    case TSP_E_BACKPRESSURE:
    case TSP_E_REMOTE_RETRIABLE:
    case TSP_E_NOSPACE:
    case TSP_E_IO:
    case TSP_E_CLOSED:
    /* Kafka's answer for an offline log: the consumer retries and never
     * moves past the offsets whose object is gone (no silent skip). */
    case TSP_E_OBJECT_MISSING: return KAFKA_KAFKA_STORAGE_ERROR;
    default: return KAFKA_UNKNOWN_SERVER_ERROR;
    }
}
