/*
 * kafka_client.c — encoders of the requests a follower sends its leader and
 * parsers of the answers (kafka_client.h). Field order and version gates
 * follow Kafka's FetchRequest/FetchResponse.json (v12) and
 * OffsetForLeaderEpochRequest/Response.json (v4); both versions are
 * flexible: request header v2, compact strings/arrays, tagged fields.
 * Thread: any.
 */
#include "kafka_client.h"

#include <stdio.h>
#include <string.h>

#define KAFKA_API_Fetch_KEY 1

/* Size placeholder + request header v2 (client id stays a plain nullable
 * string in every header version). */
static size_t req_begin_v(kw *w, int16_t api_key, int16_t version, int32_t correlation_id,
                          const char *client_id, int flex)
{
    size_t at = w->len;
    kw_i32(w, 0);
    kw_i16(w, api_key);
    kw_i16(w, version);
    kw_i32(w, correlation_id);
    kw_str(w, 0, client_id);
    kw_tags(w, flex);
    return at;
}

static size_t req_begin(kw *w, int16_t api_key, int16_t version, int32_t correlation_id,
                        const char *client_id)
{
    return req_begin_v(w, api_key, version, correlation_id, client_id, 1);
}

static void req_end(kw *w, size_t at) { kw_put_i32_at(w, at, (int32_t)(w->len - at - 4)); }

/* Number of consecutive entries from i on whose topic equals the i-th. */
#define RUN_OF(parts, n, i, out)                                                                 \
    do {                                                                                         \
        (out) = 1;                                                                               \
        while ((i) + (out) < (n) && !strcmp((parts)[(i) + (out)].topic, (parts)[i].topic))      \
            (out)++;                                                                             \
    } while (0)

static size_t topic_runs_fetch(const kc_fetch_part *p, size_t n)
{
    size_t runs = 0, len;
    for (size_t i = 0; i < n; i += len, runs++) RUN_OF(p, n, i, len);
    return runs;
}

void kafka_write_FetchRequest(kw *w, int32_t correlation_id, const char *client_id,
                              const kc_fetch_req *q)
{
    size_t at = req_begin(w, KAFKA_API_Fetch_KEY, KAFKA_FETCH_REPLICA_VERSION, correlation_id,
                          client_id);
    kw_i32(w, q->replica_id);
    kw_i32(w, q->max_wait_ms);
    kw_i32(w, q->min_bytes);
    kw_i32(w, q->max_bytes);
    kw_i8(w, q->isolation_level);
    kw_i32(w, 0);  /* SessionId: full fetches */
    kw_i32(w, -1); /* SessionEpoch: -1 = no session (FINAL_EPOCH) */
    kw_array(w, 1, (int32_t)topic_runs_fetch(q->parts, q->nparts));
    size_t len;
    for (size_t i = 0; i < q->nparts; i += len) {
        RUN_OF(q->parts, q->nparts, i, len);
        kw_str(w, 1, q->parts[i].topic);
        kw_array(w, 1, (int32_t)len);
        for (size_t k = i; k < i + len; k++) {
            const kc_fetch_part *p = &q->parts[k];
            kw_i32(w, p->partition);
            kw_i32(w, p->current_leader_epoch);
            kw_i64(w, p->fetch_offset);
            kw_i32(w, p->last_fetched_epoch);
            kw_i64(w, p->log_start_offset);
            kw_i32(w, p->partition_max_bytes);
            kw_tags(w, 1);
        }
        kw_tags(w, 1);
    }
    kw_array(w, 1, 0);  /* ForgottenTopicsData */
    kw_str(w, 1, "");   /* RackId */
    kw_tags(w, 1);
    req_end(w, at);
}

void kafka_write_OffsetForLeaderEpochRequest(kw *w, int32_t correlation_id,
                                             const char *client_id, int32_t replica_id,
                                             const kc_epoch_part *parts, size_t nparts)
{
    size_t at = req_begin(w, KAFKA_API_OffsetForLeaderEpoch_KEY,
                          KAFKA_OFFSET_FOR_LEADER_EPOCH_VERSION, correlation_id, client_id);
    kw_i32(w, replica_id);
    size_t runs = 0, len;
    for (size_t i = 0; i < nparts; i += len, runs++) RUN_OF(parts, nparts, i, len);
    kw_array(w, 1, (int32_t)runs);
    for (size_t i = 0; i < nparts; i += len) {
        RUN_OF(parts, nparts, i, len);
        kw_str(w, 1, parts[i].topic);
        kw_array(w, 1, (int32_t)len);
        for (size_t k = i; k < i + len; k++) {
            kw_i32(w, parts[k].partition);
            kw_i32(w, parts[k].current_leader_epoch);
            kw_i32(w, parts[k].leader_epoch);
            kw_tags(w, 1);
        }
        kw_tags(w, 1);
    }
    kw_tags(w, 1);
    req_end(w, at);
}

/* ------------------------------------------------------------- parsers */

/* Grows *arr (arena) by n elements of size sz, keeping the first *have. */
static void *arena_grow(karena *a, void *arr, size_t have, size_t n, size_t sz)
{
    if (n == 0) return arr;
    void *p = karena_alloc(a, (have + n) * sz);
    if (p && have) memcpy(p, arr, have * sz);
    return p;
}

/* A Fetch response partition's tagged fields: the two this broker reads,
 * every other skipped. */
static int read_fetch_part_tags(kr *r, kc_fetch_resp_part *p)
{
    uint32_t n;
    if (kr_uvarint(r, &n) || n > kr_left(r)) return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tag, size;
        if (kr_uvarint(r, &tag) || kr_uvarint(r, &size) || size > kr_left(r)) return -1;
        kr sub;
        kr_init(&sub, r->p + r->pos, size);
        if (tag == KAFKA_TAG_LOCAL_LOG_START) {
            if (kr_i64(&sub, &p->local_log_start_offset)) return -1;
        } else if (tag == KAFKA_TAG_DIVERGING_EPOCH) {
            if (kr_i32(&sub, &p->diverging_epoch) || kr_i64(&sub, &p->diverging_end_offset))
                return -1;
        }
        r->pos += size;
    }
    return 0;
}

static int read_fetch_part(kr *r, const char *topic, void *arr, size_t idx)
{
    kc_fetch_resp_part *p = &((kc_fetch_resp_part *)arr)[idx];
    int32_t naborted;
    p->topic = topic;
    p->local_log_start_offset = -1;
    p->diverging_epoch = -1;
    p->diverging_end_offset = -1;
    KR_CHECK(kr_i32(r, &p->partition));
    KR_CHECK(kr_i16(r, &p->error));
    KR_CHECK(kr_i64(r, &p->high_watermark));
    KR_CHECK(kr_i64(r, &p->last_stable_offset));
    KR_CHECK(kr_i64(r, &p->log_start_offset));
    KR_CHECK(kr_array(r, 1, 1, 17, &naborted)); /* AbortedTransactions: skipped */
    for (int32_t i = 0; i < naborted; i++) {
        KR_CHECK(kr_skip(r, 16));
        KR_CHECK(kr_tags(r, 1));
    }
    int32_t preferred;
    KR_CHECK(kr_i32(r, &preferred));
    KR_CHECK(kr_bytes(r, 1, &p->records));
    KR_CHECK(read_fetch_part_tags(r, p));
    return 0;
fail:
    return -1;
}

/* One partition entry: element i of arr, for topic (arena). */
typedef int (*part_reader)(kr *r, const char *topic, void *arr, size_t i);

/* The topics array of a response: each topic's partitions are read by fn
 * into one flat array (*arr, *n), grown in the arena; min_part is the
 * smallest wire size of a partition entry (bounds the counts). */
static int read_topics(kr *r, karena *a, size_t min_part, size_t elem, void **arr, size_t *n,
                       part_reader fn)
{
    int32_t ntopics;
    KR_CHECK(kr_array(r, 1, 0, 2, &ntopics));
    for (int32_t t = 0; t < ntopics; t++) {
        const char *topic;
        int32_t np;
        KR_CHECK(kr_strdup(r, 1, 0, a, &topic));
        KR_CHECK(kr_array(r, 1, 0, min_part, &np));
        *arr = arena_grow(a, *arr, *n, (size_t)np, elem);
        if (np > 0 && !*arr) goto fail;
        for (int32_t k = 0; k < np; k++) KR_CHECK(fn(r, topic, *arr, (*n)++));
        KR_CHECK(kr_tags(r, 1));
    }
    KR_CHECK(kr_tags(r, 1));
    return 0;
fail:
    return -1;
}

static int read_epoch_part(kr *r, const char *topic, void *arr, size_t i)
{
    kc_epoch_resp_part *p = &((kc_epoch_resp_part *)arr)[i];
    p->topic = topic;
    KR_CHECK(kr_i16(r, &p->error));
    KR_CHECK(kr_i32(r, &p->partition));
    KR_CHECK(kr_i32(r, &p->leader_epoch));
    KR_CHECK(kr_i64(r, &p->end_offset));
    KR_CHECK(kr_tags(r, 1));
    return 0;
fail:
    return -1;
}

static void parse_error(char *err, size_t errlen, const char *what, const kr *r)
{
    if (err && errlen)
        snprintf(err, errlen, "malformed %s at byte %zu of %zu", what, r->pos, r->len);
}

int kafka_read_FetchResponse(const uint8_t *frame, size_t len, karena *a, kc_fetch_resp *out,
                             char *err, size_t errlen)
{
    kr rd, *r = &rd;
    memset(out, 0, sizeof(*out));
    kr_init(r, frame, len);
    void *arr = NULL;
    KR_CHECK(kr_i32(r, &out->correlation_id));
    KR_CHECK(kr_tags(r, 1)); /* response header v1 */
    KR_CHECK(kr_i32(r, &out->throttle_ms));
    KR_CHECK(kr_i16(r, &out->error));
    KR_CHECK(kr_i32(r, &out->session_id));
    KR_CHECK(read_topics(r, a, 36, sizeof(*out->parts), &arr, &out->nparts, read_fetch_part));
    out->parts = arr;
    return 0;
fail:
    out->parts = arr;
    parse_error(err, errlen, "Fetch response", r);
    return -1;
}

int kafka_read_OffsetForLeaderEpochResponse(const uint8_t *frame, size_t len, karena *a,
                                            kc_epoch_resp *out, char *err, size_t errlen)
{
    kr rd, *r = &rd;
    memset(out, 0, sizeof(*out));
    kr_init(r, frame, len);
    void *arr = NULL;
    KR_CHECK(kr_i32(r, &out->correlation_id));
    KR_CHECK(kr_tags(r, 1));
    KR_CHECK(kr_i32(r, &out->throttle_ms));
    KR_CHECK(read_topics(r, a, 19, sizeof(*out->parts), &arr, &out->nparts, read_epoch_part));
    out->parts = arr;
    return 0;
fail:
    out->parts = arr;
    parse_error(err, errlen, "OffsetForLeaderEpoch response", r);
    return -1;
}

/* ---------------------------------------------------------------- SASL */

void kafka_write_SaslHandshakeRequest(kw *w, int32_t correlation_id, const char *client_id,
                                      const char *mechanism)
{
    size_t at = req_begin_v(w, KAFKA_API_SaslHandshake_KEY, KAFKA_SASL_HANDSHAKE_VERSION,
                            correlation_id, client_id, 0);
    kw_str(w, 0, mechanism);
    req_end(w, at);
}

void kafka_write_SaslAuthenticateRequest(kw *w, int32_t correlation_id, const char *client_id,
                                         const void *auth_bytes, size_t len)
{
    size_t at = req_begin(w, KAFKA_API_SaslAuthenticate_KEY, KAFKA_SASL_AUTHENTICATE_VERSION,
                          correlation_id, client_id);
    kw_bytes(w, 1, auth_bytes, (int32_t)len);
    kw_tags(w, 1);
    req_end(w, at);
}

int kafka_read_SaslHandshakeResponse(const uint8_t *frame, size_t len, karena *a,
                                     kc_sasl_handshake_resp *out, char *err, size_t errlen)
{
    kr rd, *r = &rd;
    memset(out, 0, sizeof(*out));
    kr_init(r, frame, len);
    int32_t n;
    KR_CHECK(kr_i32(r, &out->correlation_id)); /* response header v0 */
    KR_CHECK(kr_i16(r, &out->error));
    KR_CHECK(kr_array(r, 0, 0, 2, &n));
    out->mechanisms = karena_alloc(a, ((size_t)n + 1) * sizeof(*out->mechanisms));
    if (!out->mechanisms) goto fail;
    for (int32_t i = 0; i < n; i++) KR_CHECK(kr_strdup(r, 0, 0, a, &out->mechanisms[i]));
    out->nmechanisms = (size_t)n;
    return 0;
fail:
    parse_error(err, errlen, "SaslHandshake response", r);
    return -1;
}

int kafka_read_SaslAuthenticateResponse(const uint8_t *frame, size_t len, karena *a,
                                        kc_sasl_auth_resp *out, char *err, size_t errlen)
{
    kr rd, *r = &rd;
    memset(out, 0, sizeof(*out));
    kr_init(r, frame, len);
    KR_CHECK(kr_i32(r, &out->correlation_id));
    KR_CHECK(kr_tags(r, 1)); /* response header v1 */
    KR_CHECK(kr_i16(r, &out->error));
    KR_CHECK(kr_strdup(r, 1, 1, a, &out->error_message));
    KR_CHECK(kr_bytes(r, 1, &out->auth_bytes));
    KR_CHECK(kr_i64(r, &out->session_lifetime_ms));
    KR_CHECK(kr_tags(r, 1));
    return 0;
fail:
    parse_error(err, errlen, "SaslAuthenticate response", r);
    return -1;
}
