/*
 * handlers.c — ApiVersions, Metadata, Produce, Fetch, ListOffsets,
 * CreateTopics, DeleteTopics and InitProducerId.
 *
 * Every handler starts on the loop thread with a parsed request and a
 * reply. What can block goes to a pool and the reply is finished in the
 * job's `done` (loop thread again):
 *   Produce     append on the loop (page cache), acks=-1 fsync on io_pool;
 *               an entry refused for backpressure (local disk bound) is held
 *               and retried, its connection muted, until it fits or its
 *               timeout passes (REQUEST_TIMED_OUT), never answered with an
 *               error a non-idempotent client would retry out of order
 *   Fetch       reads on hot_pool, or cold_pool when any offset is below the
 *               local start; long-poll parks the request until an append
 *               or MaxWaitMs
 *   ListOffsets by timestamp, max timestamp (-3) and latest tiered (-5) on
 *               cold_pool (the search may hit the bucket, the others read
 *               the placement)
 *   Metadata, CreateTopics
 *               names the registry does not hold: lookup / create jobs on
 *               topic_pool (topics.c); Produce and Fetch never wait for
 *               those: their partitions answer UNKNOWN_TOPIC_OR_PARTITION
 *               (retriable) until the topic is open
 * Response field order and version gates follow Kafka's message schemas.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "kafka_batch.h"
#include "out.h"
#include "replica.h"

#define TS_MIN_INT32 (-2147483647 - 1)

/* ----------------------------------------------------------- ApiVersions */

void handle_ApiVersions(broker *b, reply *r, kafka_request *q)
{
    kw w;
    reply_begin(r, &w);
    kafka_write_ApiVersionsResponse(&w, r->hdr.api_version, KAFKA_NONE, b->cluster_mode);
    reply_end(b, r, &w);
}

/* -------------------------------------------------------------- Metadata */

/* ops: TopicAuthorizedOperations (INT32_MIN: not asked for). */
static void write_topic_md(broker *b, kw *w, int v, int f, const char *name, btopic *t,
                           int16_t err, int32_t ops)
{
    kw_i16(w, err);
    kw_str(w, f, name);
    if (v >= 1) kw_i8(w, 0); /* IsInternal */
    int32_t n = t ? t->npartitions : 0;
    kw_array(w, f, n);
    for (int32_t i = 0; i < n; i++) {
        kw_i16(w, KAFKA_NONE);
        kw_i32(w, i);
        kw_i32(w, b->node_id);     /* LeaderId */
        if (v >= 7) kw_i32(w, 0); /* LeaderEpoch */
        kw_array(w, f, 1);
        kw_i32(w, b->node_id); /* ReplicaNodes */
        kw_array(w, f, 1);
        kw_i32(w, b->node_id); /* IsrNodes */
        if (v >= 5) kw_array(w, f, 0); /* OfflineReplicas */
        kw_tags(w, f);
    }
    if (v >= 8) kw_i32(w, ops); /* TopicAuthorizedOperations */
    kw_tags(w, f);
}

/* A Metadata request naming topics the registry does not hold waits (its
 * reply kept) for their lookup/auto-create jobs; the answer is written once
 * the last one is done. */
typedef struct md_ent {
    struct md_op *op;
    char *name;
    int16_t err; /* when not registered at answer time */
    int rounds;
    int denied;      /* no DESCRIBE: TOPIC_AUTHORIZATION_FAILED, never looked up */
    int auto_create; /* the request's, and CREATE on the cluster or the topic */
} md_ent;

typedef struct md_op {
    broker *b;
    reply r;
    int all; /* null topic array: every topic */
    int auto_create;
    int topic_ops, cluster_ops; /* AuthorizedOperations asked for (v8+) */
    int32_t n;
    md_ent *e;
    int pending; /* jobs waited for */
} md_op;

static void md_free(md_op *o)
{
    for (int32_t i = 0; i < o->n; i++) free(o->e[i].name);
    free(o->e);
    free(o);
}

static int32_t md_topic_ops(broker *b, md_op *o, const char *name)
{
    return o->topic_ops ? acl_authorized_ops(b, &o->r, ACL_RES_TOPIC, name, ACL_TOPIC_OPS)
                        : TS_MIN_INT32;
}

static void md_respond(broker *b, md_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    if (v >= 3) kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_array(&w, f, 1);        /* Brokers */
    kw_i32(&w, b->node_id);
    kw_str(&w, f, reply_listener(b, &o->r)->adv_host); /* the client's own listener */
    kw_i32(&w, reply_listener(b, &o->r)->adv_port);
    if (v >= 1) kw_str(&w, f, NULL); /* Rack */
    kw_tags(&w, f);
    if (v >= 2) kw_str(&w, f, b->cluster_id);
    if (v >= 1) kw_i32(&w, b->node_id); /* ControllerId */
    if (o->all) {
        /* Every topic the principal may describe (the others are hidden). */
        int32_t n = 0;
        for (btopic *t = b->topics; t; t = t->next)
            n += acl_check_quiet(b, &o->r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->name);
        kw_array(&w, f, n);
        for (btopic *t = b->topics; t; t = t->next)
            if (acl_check_quiet(b, &o->r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->name))
                write_topic_md(b, &w, v, f, t->name, t, 0, md_topic_ops(b, o, t->name));
    } else {
        kw_array(&w, f, o->n);
        for (int32_t i = 0; i < o->n; i++) {
            if (o->e[i].denied) {
                write_topic_md(b, &w, v, f, o->e[i].name, NULL, KAFKA_TOPIC_AUTHORIZATION_FAILED,
                               TS_MIN_INT32);
                continue;
            }
            btopic *t = topic_find(b, o->e[i].name);
            int16_t err = t ? KAFKA_NONE
                            : (o->e[i].err ? o->e[i].err : KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            write_topic_md(b, &w, v, f, o->e[i].name, t, err,
                           t ? md_topic_ops(b, o, o->e[i].name) : TS_MIN_INT32);
        }
    }
    if (v >= 8 && v <= 10) /* ClusterAuthorizedOperations */
        kw_i32(&w, o->cluster_ops
                       ? acl_authorized_ops(b, &o->r, ACL_RES_CLUSTER, NULL, ACL_CLUSTER_OPS)
                       : TS_MIN_INT32);
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void md_wait_done(broker *b, void *arg, int16_t err, const char *msg);

/* Resolves entry i now, or counts a job to wait for. */
static void md_resolve(broker *b, md_op *o, md_ent *e)
{
    int waiting = 0;
    e->err = topic_lookup(b, e->name, e->auto_create, md_wait_done, e, &waiting);
    if (waiting) o->pending++;
}

static void md_wait_done(broker *b, void *arg, int16_t err, const char *msg)
{
    md_ent *e = arg;
    md_op *o = e->op;
    o->pending--;
    e->err = KAFKA_NONE;
    if (err == KAFKA_UNKNOWN_TOPIC_OR_PARTITION) {
        /* The job was another request's plain lookup: now known absent,
         * create it if this request may (bounded: no endless rounds). */
        if (e->auto_create && ++e->rounds < 3)
            md_resolve(b, o, e);
        else
            e->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    } else if (err != KAFKA_NONE && err != KAFKA_TOPIC_ALREADY_EXISTS) {
        /* Lookup or create failed (logged by the job): retriable here. */
        (void)msg;
        e->err = KAFKA_LEADER_NOT_AVAILABLE;
    }
    if (o->pending == 0) {
        md_respond(b, o);
        md_free(o);
    }
}

void handle_Metadata(broker *b, reply *r, kafka_request *q)
{
    if (b->cluster) {
        cluster_handle_metadata(b, r, q);
        return;
    }
    kafka_MetadataRequest *m = &q->u.metadata;
    md_op *o = calloc(1, sizeof(*o));
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->all = m->ntopics < 0;
    o->auto_create = b->auto_create && m->allow_auto_topic_creation;
    o->topic_ops = m->include_topic_authorized_operations;
    o->cluster_ops = m->include_cluster_authorized_operations;
    if (!o->all && m->ntopics > 0) {
        o->e = calloc((size_t)m->ntopics, sizeof(*o->e));
        if (!o->e) goto oom;
        for (int32_t i = 0; i < m->ntopics; i++) {
            o->e[i].op = o;
            o->e[i].name = strdup(m->topics[i]);
            if (!o->e[i].name) goto oom;
            o->n++;
            o->e[i].denied = !acl_check(b, &o->r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, m->topics[i]);
            o->e[i].auto_create =
                o->auto_create && !o->e[i].denied && !topic_find(b, m->topics[i]) &&
                (acl_check_quiet(b, &o->r, ACL_OP_CREATE, ACL_RES_CLUSTER, NULL) ||
                 acl_check(b, &o->r, ACL_OP_CREATE, ACL_RES_TOPIC, m->topics[i]));
        }
    }
    /* Counted as one pending wait until every name is resolved, so that a
     * job cannot finish the op half way through this loop. */
    o->pending = 1;
    for (int32_t i = 0; i < o->n; i++)
        if (!o->e[i].denied) md_resolve(b, o, &o->e[i]);
    if (--o->pending == 0) {
        md_respond(b, o);
        md_free(o);
    }
    return;
oom:
    if (o) {
        reply_drop(b, &o->r);
        md_free(o);
    } else
        reply_drop(b, r);
}

/* --------------------------------------------------------------- Produce */

typedef struct produce_res {
    const char *topic; /* points into prod_op->names */
    int32_t partition;
    int16_t error;
    int64_t base_offset;
    int64_t log_start;
    bpart *p; /* appended to: needs an fsync for acks=-1 */
    char msg[160];
    /* Held on backpressure: not appended yet; its own copy of the records
     * (the request frame is gone once the handler returns). */
    int waiting;
    uint8_t *records;
    size_t records_len;
    /* acks=-1 in a cluster: answered once the HW reaches end_offset (the
     * batch's last offset + 1) at the leader epoch it was appended at. */
    int64_t end_offset; /* 0: not waiting for the HW */
    int32_t epoch;
} produce_res;

typedef struct prod_op {
    bjob j;
    broker *b;
    reply r;
    struct prod_op *next_held;
    struct prod_op *next_ack; /* b->acks_waiting */
    int64_t ack_deadline;
    int32_t timeout_ms;
    int16_t acks;
    int nwaiting;           /* entries with `waiting` set */
    int64_t held_since, deadline;
    int32_t throttle_ms;    /* how long it was held */
    int ntopics;
    struct {
        char *name;
        int n;
        produce_res *res;
    } *topics;
    tsp_partition **to_flush;
    int nflush;
    tsp_status flush_st;
    char flush_err[256];
} prod_op;

static void prod_free(prod_op *o)
{
    for (int i = 0; i < o->ntopics; i++) {
        for (int k = 0; k < o->topics[i].n; k++) free(o->topics[i].res[k].records);
        free(o->topics[i].name);
        free(o->topics[i].res);
    }
    free(o->topics);
    free(o->to_flush);
    free(o);
}

/* RecordErrors (v8+): the plugin names the record at fault in an
 * INVALID_RECORD message as "record <i>:" (tierstore_plugin.h); Kafka
 * reports it by its index in the batch. -1 when no one record is named. */
static int32_t produce_bad_record(const produce_res *pr)
{
    if (pr->error != KAFKA_INVALID_RECORD) return -1;
    for (const char *s = strstr(pr->msg, "record "); s; s = strstr(s + 7, "record ")) {
        char *end;
        long i = strtol(s + 7, &end, 10);
        if (end != s + 7 && *end == ':' && i >= 0 && i <= INT32_MAX) return (int32_t)i;
    }
    return -1;
}

/* Client policy on one Produce partition entry, before the plugin checks
 * the CRC and walks the records (Kafka: ProduceRequest.validateRecords and
 * LogValidator.validateBatch for client appends). Every version served is
 * v3+: exactly one magic-2 batch per entry. Returns KAFKA_NONE or the error
 * with msg set; nothing of a refused entry is appended. */
static int16_t produce_entry_check(int version, const uint8_t *rec, int32_t len, char *msg,
                                   size_t msglen)
{
    if (len <= 0) {
        snprintf(msg, msglen, "Produce requests with version %d must have at least one record "
                 "batch per partition", version);
        return KAFKA_INVALID_RECORD;
    }
    kbatch_header h;
    if (kbatch_header_at(rec, (size_t)len, &h) != 0) {
        snprintf(msg, msglen, "record batch of %d bytes is shorter than its %d-byte header", len,
                 KBATCH_HEADER_LEN);
        return KAFKA_CORRUPT_MESSAGE;
    }
    int attrs = h.attributes;
    int64_t pid = h.producer_id;
    int32_t base_seq = h.base_sequence, blen = h.batch_length;
    /* Kafka answers a transactional batch without an authorized
     * transactional id so; this broker has no transactions at all. */
    if (attrs & KBATCH_ATTR_TRANSACTIONAL) {
        snprintf(msg, msglen, "transactional record batch refused: this broker does not support "
                 "transactions");
        return KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    }
    if (h.magic != 2) {
        snprintf(msg, msglen, "Produce requests with version %d are only allowed to contain record "
                 "batches with magic version 2", version);
        return KAFKA_INVALID_RECORD;
    }
    if (blen >= KBATCH_MIN_LENGTH && (int64_t)blen + KBATCH_LOG_OVERHEAD < len) {
        snprintf(msg, msglen, "Produce requests with version %d are only allowed to contain exactly "
                 "one record batch per partition", version);
        return KAFKA_INVALID_RECORD;
    }
    if ((attrs & KBATCH_ATTR_CODEC_MASK) == KBATCH_CODEC_ZSTD && version < 7) {
        snprintf(msg, msglen, "Produce requests with version %d are not allowed to use ZStandard "
                 "compression", version);
        return KAFKA_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (attrs & KBATCH_ATTR_CONTROL) {
        snprintf(msg, msglen, "Clients are not allowed to write control records");
        return KAFKA_INVALID_RECORD;
    }
    if (pid >= 0 && base_seq < 0) {
        snprintf(msg, msglen, "Invalid sequence number %d in record batch with producerId %lld",
                 base_seq, (long long)pid);
        return KAFKA_INVALID_RECORD;
    }
    return KAFKA_NONE;
}

static void prod_respond(broker *b, prod_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    kw_array(&w, f, o->ntopics);
    for (int i = 0; i < o->ntopics; i++) {
        kw_str(&w, f, o->topics[i].name);
        kw_array(&w, f, o->topics[i].n);
        for (int k = 0; k < o->topics[i].n; k++) {
            produce_res *pr = &o->topics[i].res[k];
            kw_i32(&w, pr->partition);
            kw_i16(&w, pr->error);
            kw_i64(&w, pr->base_offset);
            if (v >= 2) kw_i64(&w, -1); /* LogAppendTimeMs: CreateTime topics */
            if (v >= 5) kw_i64(&w, pr->log_start);
            if (v >= 8) {
                int32_t bad = produce_bad_record(pr);
                kw_array(&w, f, bad >= 0 ? 1 : 0); /* RecordErrors */
                if (bad >= 0) {
                    kw_i32(&w, bad); /* BatchIndex */
                    kw_str(&w, f, pr->msg);
                    kw_tags(&w, f);
                }
                kw_str(&w, f, pr->error && pr->msg[0] ? pr->msg : NULL);
            }
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_i32(&w, o->throttle_ms); /* ThrottleTimeMs: time held on backpressure */
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

/* io_pool worker: fsync every partition the request appended to. */
static void prod_flush_run(bjob *j)
{
    prod_op *o = (prod_op *)j;
    o->flush_st = TSP_OK;
    for (int i = 0; i < o->nflush; i++) {
        tsp_status st = o->b->pl->flush(o->to_flush[i], o->flush_err, sizeof o->flush_err);
        if (st != TSP_OK) o->flush_st = st;
    }
}

static void prod_flush_done(bjob *j)
{
    prod_op *o = (prod_op *)j;
    if (o->flush_st != TSP_OK) {
        /* The data may be in the log but is not known durable: fail the
         * partitions so an acks=-1 producer retries (idempotence drops the
         * duplicate when the producer is idempotent). */
        blog_error("fsync after produce: %s", o->flush_err);
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++)
                if (o->topics[i].res[k].p) o->topics[i].res[k].error = KAFKA_KAFKA_STORAGE_ERROR;
    }
    prod_respond(o->b, o);
    prod_free(o);
}

/* Idempotence: returns KAFKA_NONE to append, KAFKA_DUPLICATE_SEQUENCE_NUMBER
 * with *dup_offset set for a retried batch already in the log, or an
 * error. Kafka requires exactly one batch per partition for v3+ produce. */
/* Sequence numbers wrap from INT32_MAX to 0 (Kafka's
 * DefaultRecordBatch.incrementSequence); computed wide, so a batch whose
 * sequences cross the wrap is not signed overflow. */
static int32_t seq_add(int32_t seq, int32_t inc)
{
    int64_t v = (int64_t)seq + inc;
    if (v > INT32_MAX) v -= (int64_t)INT32_MAX + 1;
    return (int32_t)v;
}

static int idempotence_check(bpart *p, const uint8_t *batch, size_t len, kbatch_header *h,
                             pid_state **st_out, int64_t *dup_offset)
{
    *st_out = NULL;
    if (kbatch_header_at(batch, len, h) != 0) return KAFKA_CORRUPT_MESSAGE;
    int64_t pid = h->producer_id;
    int16_t epoch = h->producer_epoch;
    int32_t base_seq = h->base_sequence;
    int32_t last_delta = h->last_offset_delta;
    if (pid < 0 || base_seq < 0) return KAFKA_NONE;
    int32_t last_seq = seq_add(base_seq, last_delta);
    pid_state *s = p->pids;
    while (s && s->producer_id != pid) s = s->next;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return KAFKA_UNKNOWN_SERVER_ERROR;
        s->producer_id = pid;
        s->epoch = epoch;
        s->last_seq = base_seq - 1; /* first sight (or after restart): accept */
        s->next = p->pids;
        p->pids = s;
    }
    *st_out = s;
    if (epoch < s->epoch) return KAFKA_INVALID_PRODUCER_EPOCH;
    if (epoch > s->epoch) {
        s->epoch = epoch;
        s->ncached = 0;
        s->last_seq = base_seq - 1;
    }
    for (int i = 0; i < s->ncached; i++)
        if (s->cached[i].first_seq == base_seq && s->cached[i].last_seq == last_seq) {
            *dup_offset = s->cached[i].base_offset;
            return KAFKA_DUPLICATE_SEQUENCE_NUMBER;
        }
    if (base_seq != seq_add(s->last_seq, 1)) return KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    return KAFKA_NONE;
}

/* Remembers the sequence range of an appended (or, on rebuild, read back)
 * batch whose header is h. */
static void idempotence_record(pid_state *s, const kbatch_header *h, int64_t base_offset)
{
    if (!s) return;
    int32_t base_seq = h->base_sequence;
    int32_t delta = h->last_offset_delta;
    if (s->ncached == BROKER_MAX_SEQ_CACHE) {
        memmove(&s->cached[0], &s->cached[1], sizeof(s->cached[0]) * (BROKER_MAX_SEQ_CACHE - 1));
        s->ncached--;
    }
    s->cached[s->ncached].first_seq = base_seq;
    s->cached[s->ncached].last_seq = seq_add(base_seq, delta);
    s->cached[s->ncached].base_offset = base_offset;
    s->ncached++;
    s->last_seq = s->cached[s->ncached - 1].last_seq;
}

/* Records read back per partition when rebuilding producer state: enough
 * for the last BROKER_MAX_SEQ_CACHE batches of every recently active
 * producer in practice; older producers start fresh (as before a rebuild). */
#define REBUILD_TAIL_RECORDS 20000

void idempotence_rebuild(broker *b, bpart *p)
{
    tsp_offsets o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    if (b->pl->offsets(p->h, &o) != TSP_OK) return;
    int64_t off = o.log_end_offset - REBUILD_TAIL_RECORDS;
    if (off < o.local_start_offset) off = o.local_start_offset; /* never a cold read here */
    size_t producers = 0;
    while (off < o.log_end_offset) {
        uint8_t *d = NULL;
        size_t n = 0;
        char err[256];
        if (b->pl->read(p->h, off, 1u << 20, &d, &n, err, sizeof err) != TSP_OK || !d) break;
        size_t pos = 0;
        kbatch_header h;
        while (kbatch_header_at(d + pos, n - pos, &h) == 0) {
            size_t sz = kbatch_size(&h);
            int64_t base = h.base_offset;
            int32_t delta = h.last_offset_delta;
            int64_t pid = h.producer_id;
            int16_t epoch = h.producer_epoch;
            int32_t base_seq = h.base_sequence;
            if (sz < KBATCH_HEADER_LEN || pos + sz > n) break;
            if (pid >= 0 && base_seq >= 0) {
                pid_state *s = p->pids;
                while (s && s->producer_id != pid) s = s->next;
                if (!s && (s = calloc(1, sizeof(*s)))) {
                    s->producer_id = pid;
                    s->epoch = epoch;
                    s->next = p->pids;
                    p->pids = s;
                    producers++;
                }
                if (s && epoch > s->epoch) {
                    s->epoch = epoch;
                    s->ncached = 0;
                }
                if (s && epoch == s->epoch) idempotence_record(s, &h, base);
            }
            off = base + delta + 1;
            pos += sz;
        }
        b->pl->buffer_free(d);
        if (pos == 0) break;
    }
    if (producers) blog_info("rebuilt idempotent state of %zu producer(s) for a partition", producers);
}

/* LogStartOffset of a Produce answer; -1 when the plugin cannot say. */
static int64_t prod_log_start(broker *b, bpart *p)
{
    tsp_offsets off = {.struct_size = sizeof off};
    return b->pl->offsets(p->h, &off) == TSP_OK ? off.log_start_offset : -1;
}

/* Appends one partition entry of a Produce. Returns 1 when the entry is
 * finished (pr->error or pr->base_offset set), 0 when the partition is at
 * its local disk bound: nothing was appended and the entry must wait. Loop
 * thread. */
static int prod_append_entry(broker *b, prod_op *o, produce_res *pr, bpart *p, const char *topic,
                             const uint8_t *records, size_t len)
{
    pid_state *ps = NULL;
    int64_t dup = -1;
    kbatch_header bh; /* filled whenever ps is set */
    int ie = idempotence_check(p, records, len, &bh, &ps, &dup);
    if (ie == KAFKA_DUPLICATE_SEQUENCE_NUMBER) {
        /* Kafka answers a duplicate as a success, with the original
         * batch's base offset and the log start, as the first answer had. */
        pr->base_offset = dup;
        pr->end_offset = dup + bh.last_offset_delta + 1; /* acks=-1: once replicated */
        pr->log_start = prod_log_start(b, p);
        return 1;
    }
    if (ie != KAFKA_NONE) {
        pr->error = (int16_t)ie;
        return 1;
    }
    int64_t first = -1, last = -1;
    tsp_status st = b->pl->append(p->h, records, len, &first, &last, pr->msg, sizeof pr->msg);
    if (st == TSP_E_BACKPRESSURE) {
        /* Kafka never refuses a write for this: the request is held (and
         * its connection muted) until uploads make room. */
        static int64_t last_held_log;
        if (bclock_ms() - last_held_log >= 1000) {
            last_held_log = bclock_ms();
            blog_info("produce to %s-%d from %s held: %s", topic, pr->partition,
                      conn_peer(o->r.c), pr->msg);
        }
        pr->msg[0] = 0;
        return 0;
    }
    if (st != TSP_OK) {
        /* Retriable refusals come in bursts: log them at most once a second. */
        static int64_t last_retriable_log;
        int retriable = b->pl->status_is_retriable(st);
        pr->error = kafka_error_from_status(st);
        if (!retriable || bclock_ms() - last_retriable_log >= 1000) {
            if (retriable) last_retriable_log = bclock_ms();
            blog_warn("produce to %s-%d from %s: %s: %s", topic, pr->partition,
                      conn_peer(o->r.c), b->pl->status_name(st), pr->msg);
        }
        return 1;
    }
    idempotence_record(ps, &bh, first);
    p->appends++;
    b->appends_total++;
    pr->base_offset = first;
    pr->end_offset = last + 1;
    replica_on_append(b, topic, pr->partition);
    pr->p = p;
    pr->log_start = prod_log_start(b, p);
    o->to_flush[o->nflush++] = p->h;
    return 1;
}

/* Whether a held request ahead of `upto` (NULL: any held request) still
 * waits for room in topic-partition: later entries for the same partition
 * queue behind it, so that room going free is taken in arrival order. */
static int prod_partition_waits(broker *b, const char *topic, int32_t partition,
                                const prod_op *upto)
{
    for (prod_op *h = b->held; h && h != upto; h = h->next_held)
        for (int i = 0; i < h->ntopics; i++) {
            if (strcmp(h->topics[i].name, topic)) continue;
            for (int k = 0; k < h->topics[i].n; k++)
                if (h->topics[i].res[k].waiting && h->topics[i].res[k].partition == partition)
                    return 1;
        }
    return 0;
}

/* Answers (or, acks=-1, fsyncs then answers) a Produce whose entries are
 * all finished. Takes ownership of o. */
static void prod_finish(broker *b, prod_op *o)
{
    if (o->acks == 0) {
        reply_drop(b, &o->r);
        prod_free(o);
        return;
    }
    if (o->acks == -1 && b->cluster) {
        /* Kafka: acks=all is answered once the ISR has the batch (the HW
         * passed it), not after an fsync. */
        o->ack_deadline = bclock_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 0);
        o->next_ack = b->acks_waiting;
        b->acks_waiting = o;
        produce_acks_check(b);
        return;
    }
    if (o->acks == -1 && o->nflush > 0) {
        o->j.run = prod_flush_run;
        o->j.done = prod_flush_done;
        bpool_submit(b->io_pool, &o->j);
        return;
    }
    prod_respond(b, o);
    prod_free(o);
}

/* Holds a Produce with entries waiting for room: copies their records,
 * charges the copies to queued.max.request.bytes and mutes the connection
 * until the request is finished, so none of its later batches can overtake
 * this one. A request whose TimeoutMs is 0 is answered at once. */
static int prod_hold(broker *b, prod_op *o, const kafka_ProduceRequest *pq)
{
    int64_t now = bclock_ms();
    int64_t wait = pq->timeout_ms < b->produce_hold_max_ms ? pq->timeout_ms : b->produce_hold_max_ms;
    o->held_since = now;
    o->deadline = now + (wait > 0 ? wait : 0);
    for (int32_t i = 0; i < pq->ntopics; i++)
        for (int32_t k = 0; k < pq->topics[i].npartitions; k++) {
            produce_res *pr = &o->topics[i].res[k];
            if (!pr->waiting) continue;
            const kslice *rs = &pq->topics[i].partitions[k].records;
            pr->records = malloc((size_t)rs->len);
            if (!pr->records) return -1; /* prod_free frees the copies made */
            memcpy(pr->records, rs->p, (size_t)rs->len);
        }
    for (int32_t i = 0; i < pq->ntopics; i++)
        for (int32_t k = 0; k < pq->topics[i].npartitions; k++) {
            produce_res *pr = &o->topics[i].res[k];
            if (!pr->waiting) continue;
            pr->records_len = (size_t)pq->topics[i].partitions[k].records.len;
            net_charge(b, pr->records_len);
        }
    o->next_held = NULL;
    prod_op **tail = &b->held;
    while (*tail) tail = &(*tail)->next_held;
    *tail = o;
    conn_hold(b, o->r.c);
    if (wait <= 0) produce_retry_held(b);
    return 0;
}

static void prod_unwait(broker *b, produce_res *pr)
{
    pr->waiting = 0;
    net_uncharge(b, pr->records_len);
    free(pr->records);
    pr->records = NULL;
    pr->records_len = 0;
}

int produce_retry_held(broker *b)
{
    int64_t now = bclock_ms();
    prod_op **pp = &b->held;
    while (*pp) {
        prod_op *o = *pp;
        conn *c = o->r.c;
        if (conn_closed(c)) {
            /* The client gave up on it and will send it again: appending
             * it now would duplicate and reorder its batches. */
            *pp = o->next_held;
            for (int i = 0; i < o->ntopics; i++)
                for (int k = 0; k < o->topics[i].n; k++)
                    if (o->topics[i].res[k].waiting) prod_unwait(b, &o->topics[i].res[k]);
            reply_drop(b, &o->r);
            prod_free(o);
            continue;
        }
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++) {
                produce_res *pr = &o->topics[i].res[k];
                if (!pr->waiting || prod_partition_waits(b, o->topics[i].name, pr->partition, o))
                    continue;
                bpart *p = topic_part(b, o->topics[i].name, pr->partition, &pr->error);
                if (!p || prod_append_entry(b, o, pr, p, o->topics[i].name, pr->records,
                                            pr->records_len)) {
                    prod_unwait(b, pr);
                    o->nwaiting--;
                }
            }
        if (o->nwaiting > 0 && now < o->deadline) {
            pp = &o->next_held;
            continue;
        }
        if (o->nwaiting > 0) {
            /* Kafka's answer to a produce not done within its timeout;
             * clients retry it. */
            for (int i = 0; i < o->ntopics; i++)
                for (int k = 0; k < o->topics[i].n; k++) {
                    produce_res *pr = &o->topics[i].res[k];
                    if (!pr->waiting) continue;
                    prod_unwait(b, pr);
                    pr->error = KAFKA_REQUEST_TIMED_OUT;
                    snprintf(pr->msg, sizeof pr->msg,
                             "held %lld ms: local disk bound reached while uploads catch up",
                             (long long)(now - o->held_since));
                }
            o->nwaiting = 0;
        }
        *pp = o->next_held;
        int64_t held = now - o->held_since;
        o->throttle_ms = (int32_t)(held > INT32_MAX ? INT32_MAX : held);
        bmetrics_observe(&b->metrics.throttle, (double)held / 1000.0);
        conn_ref(c);
        prod_finish(b, o);
        conn_release(b, c);
        conn_unref(b, c);
    }
    return b->held != NULL;
}

void produce_abort_all(broker *b)
{
    while (b->held) {
        prod_op *o = b->held;
        b->held = o->next_held;
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++)
                if (o->topics[i].res[k].waiting) prod_unwait(b, &o->topics[i].res[k]);
        conn *c = o->r.c;
        conn_ref(c);
        reply_drop(b, &o->r);
        conn_release(b, c);
        conn_unref(b, c);
        prod_free(o);
    }
}

/* acks=-1 purgatory (Kafka's DelayedProduce): 1 when every entry of o is
 * answered (HW passed, error, leadership lost, or the deadline passed). */
static int prod_acks_settled(broker *b, prod_op *o, int64_t now)
{
    int left = 0;
    for (int i = 0; i < o->ntopics; i++) {
        btopic *t = NULL;
        for (int k = 0; k < o->topics[i].n; k++) {
            produce_res *pr = &o->topics[i].res[k];
            if (pr->error || pr->end_offset <= 0) continue;
            if (!t) t = topic_find(b, o->topics[i].name);
            int st = replica_ack_state(b, t, pr->partition, pr->epoch, pr->end_offset);
            if (st == -2 && now >= o->ack_deadline) st = KAFKA_REQUEST_TIMED_OUT;
            if (st == -2) {
                left++;
                continue;
            }
            pr->error = (int16_t)st;
            pr->end_offset = 0;
            if (st != KAFKA_NONE) pr->base_offset = -1;
        }
    }
    return left == 0;
}

void produce_acks_check(broker *b)
{
    static int running; /* answering may move HWs: no nested walk */
    if (running) return;
    running = 1;
    int64_t now = bclock_ms();
    prod_op **pp = &b->acks_waiting;
    while (*pp) {
        prod_op *o = *pp;
        if (conn_closed(o->r.c)) {
            *pp = o->next_ack;
            reply_drop(b, &o->r);
            prod_free(o);
        } else if (prod_acks_settled(b, o, now)) {
            *pp = o->next_ack;
            prod_respond(b, o);
            prod_free(o);
        } else
            pp = &o->next_ack;
    }
    running = 0;
}

void produce_acks_abort_all(broker *b)
{
    while (b->acks_waiting) {
        prod_op *o = b->acks_waiting;
        b->acks_waiting = o->next_ack;
        reply_drop(b, &o->r);
        prod_free(o);
    }
}

/* One partition entry of a Produce: request-level refusals, the partition,
 * the client policy of the batch, then the append — or a place in the queue
 * of a partition at its local disk bound. Loop thread. */
static void prod_entry_start(broker *b, prod_op *o, const kafka_ProduceRequest *pq, btopic *bt,
                             const char *topic, const kafka_ProducePartition *pp,
                             produce_res *pr)
{
    pr->partition = pp->index;
    pr->base_offset = -1;
    pr->log_start = -1;
    if (pq->transactional_id) {
        pr->error = KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return;
    }
    if (pq->acks != 0 && pq->acks != 1 && pq->acks != -1) {
        pr->error = KAFKA_INVALID_REQUIRED_ACKS;
        return;
    }
    /* In a cluster only the partition's leader appends (clients re-route). */
    if (b->cluster && (pr->error = cluster_check_leader(b, topic, pp->index, -1))) return;
    bpart *p = topic_part_of(bt, pp->index, &pr->error);
    if (!p) return;
    pr->error = replica_check_produce(b, bt, pp->index, pq->acks, &pr->epoch);
    if (pr->error) return;
    pr->error = produce_entry_check(o->r.hdr.api_version, pp->records.p, pp->records.len, pr->msg,
                                    sizeof pr->msg);
    if (pr->error) {
        blog_warn("produce to %s-%d from %s refused: %s", topic, pp->index, conn_peer(o->r.c),
                  pr->msg);
        return;
    }
    if (b->held && prod_partition_waits(b, topic, pp->index, NULL)) {
        /* Others wait for room in this partition: queue behind them. */
        pr->waiting = 1;
        o->nwaiting++;
        return;
    }
    if (prod_append_entry(b, o, pr, p, topic, pp->records.p, (size_t)pp->records.len) == 0) {
        pr->waiting = 1;
        o->nwaiting++;
    }
}

/* The per-topic and flush arrays of a new Produce operation, sized from the
 * request. -1 when out of memory. */
static int prod_op_alloc(prod_op *o, const kafka_ProduceRequest *pq)
{
    int total = 0;
    o->topics = calloc((size_t)(pq->ntopics ? pq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) return -1;
    for (int32_t i = 0; i < pq->ntopics; i++) total += pq->topics[i].npartitions;
    o->to_flush = calloc((size_t)(total ? total : 1), sizeof(*o->to_flush));
    if (!o->to_flush) return -1;
    o->ntopics = pq->ntopics;
    return 0;
}

void handle_Produce(broker *b, reply *r, kafka_request *q)
{
    kafka_ProduceRequest *pq = &q->u.produce;
    prod_op *o = calloc(1, sizeof(*o));
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    o->acks = (int16_t)pq->acks;
    o->timeout_ms = pq->timeout_ms;
    r->c = NULL;
    if (prod_op_alloc(o, pq) != 0) goto oom;
    for (int32_t i = 0; i < pq->ntopics; i++) {
        kafka_ProduceTopic *t = &pq->topics[i];
        o->topics[i].name = strdup(t->name);
        o->topics[i].n = t->npartitions;
        o->topics[i].res = calloc((size_t)(t->npartitions ? t->npartitions : 1),
                                  sizeof(produce_res));
        if (!o->topics[i].name || !o->topics[i].res) goto oom;
        if (!acl_check(b, &o->r, ACL_OP_WRITE, ACL_RES_TOPIC, t->name)) {
            for (int32_t k = 0; k < t->npartitions; k++) {
                produce_res *pr = &o->topics[i].res[k];
                pr->partition = t->partitions[k].index;
                pr->base_offset = pr->log_start = -1;
                pr->error = KAFKA_TOPIC_AUTHORIZATION_FAILED;
            }
            continue;
        }
        /* Once per topic, from memory: an unknown name starts one lookup
         * and its partitions answer UNKNOWN_TOPIC_OR_PARTITION meanwhile. */
        btopic *bt = topic_resolve(b, t->name);
        for (int32_t k = 0; k < t->npartitions; k++)
            prod_entry_start(b, o, pq, bt, t->name, &t->partitions[k], &o->topics[i].res[k]);
    }
    if (o->nwaiting > 0) {
        if (prod_hold(b, o, pq) != 0) goto oom;
        return;
    }
    prod_finish(b, o);
    return;
oom:
    if (o) {
        conn *c = o->r.c;
        if (c) {
            conn_ref(c);
            reply_drop(b, &o->r);
            conn_close(b, c, "out of memory in Produce");
            conn_unref(b, c);
        }
        prod_free(o);
    } else {
        reply_drop(b, r);
    }
}

/* ----------------------------------------------------------------- Fetch */

typedef struct fetch_tp {
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    bpart *p;
    int16_t error;
    int64_t hwm, log_start;
    int64_t local_start; /* answered to replicas (KAFKA_TAG_LOCAL_LOG_START) */
    int64_t limit;       /* reads stop below: the HW for consumers, the log end for replicas */
    int32_t current_leader_epoch;
    uint8_t *data;
    size_t len;          /* bytes of data, or of fr when fr.fd >= 0 */
    tsp_file_range fr;   /* the batches as a file range (zero-copy), fd -1: none */
    tsp_status read_st;
    char err[160];
    int cold;     /* fetch_offset below the local start: read on the cold pool */
    int inflight; /* its read job is not done: data, len, read_st are the worker's */
} fetch_tp;

struct fetch_op;
/* One read job of a split fetch: one cold partition (tp), or every hot
 * partition of the request (tp NULL). */
typedef struct fetch_sub {
    bjob j; /* first: the pools see a bjob */
    struct fetch_op *o;
    fetch_tp *tp;
    atomic_int cancel; /* the fetch was answered: do not start the read */
} fetch_sub;

typedef struct fetch_op {
    bjob j;
    struct fetch_op *next_parked;
    broker *b;
    reply r;
    int32_t max_wait_ms, min_bytes, max_bytes;
    int32_t replica_id; /* >= 0: a follower's fetch (cluster) */
    int64_t deadline;
    int ntopics;
    struct {
        char *name;
        int n;
        fetch_tp *tps;
    } *topics;
    int cold;
    int in_pool;
    /* Split fetches (some partition is cold): loop thread only. */
    fetch_sub *subs;
    int nsubs, pending;  /* read jobs, and those whose done has not run */
    int answered;        /* responded while reads were pending: free at the last */
    int64_t cold_deadline;
    struct fetch_op *next_waiting; /* in b->cold_waiting */
} fetch_op;

/* Lets go of what a partition read: its buffer or its file range. */
static void fetch_tp_release(const tsp_plugin *pl, fetch_tp *tp)
{
    pl->buffer_free(tp->data);
    tp->data = NULL;
    if (tp->fr.fd >= 0) {
        bout_part pt = {.fd = tp->fr.fd, .off = 0, .len = 0};
        bout_parts_close(&pt, 1);
        tp->fr.fd = -1;
    }
    tp->len = 0;
}

static void fetch_free(fetch_op *o)
{
    free(o->subs);
    for (int i = 0; i < o->ntopics; i++) {
        for (int k = 0; k < o->topics[i].n; k++) fetch_tp_release(o->b->pl, &o->topics[i].tps[k]);
        free(o->topics[i].name);
        free(o->topics[i].tps);
    }
    free(o->topics);
    free(o);
}

/* The response: header bytes, and each partition's records either inline
 * (a copy) or as a file range the output queue sends with sendfile (out.h),
 * between the bytes before and after it. */
static void fetch_respond(broker *b, fetch_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    size_t nr = 0, cap_r = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) cap_r += o->topics[i].tps[k].fr.fd >= 0;
    size_t *at = cap_r ? calloc(cap_r, sizeof(*at)) : NULL;
    bout_part *fr = cap_r ? calloc(cap_r, sizeof(*fr)) : NULL;
    if (cap_r && (!at || !fr)) { /* answer without the records: clients fetch again */
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++)
                if (o->topics[i].tps[k].fr.fd >= 0) fetch_tp_release(b->pl, &o->topics[i].tps[k]);
        cap_r = 0;
    }
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs */
    if (v >= 7) {
        kw_i16(&w, KAFKA_NONE);
        kw_i32(&w, 0); /* SessionId: no incremental fetch sessions */
    }
    kw_array(&w, f, o->ntopics);
    for (int i = 0; i < o->ntopics; i++) {
        kw_str(&w, f, o->topics[i].name);
        kw_array(&w, f, o->topics[i].n);
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            kw_i32(&w, tp->partition);
            kw_i16(&w, tp->error);
            kw_i64(&w, tp->hwm);
            kw_i64(&w, tp->hwm); /* LastStableOffset: no transactions */
            if (v >= 5) kw_i64(&w, tp->log_start);
            kw_array(&w, f, -1); /* AbortedTransactions */
            if (v >= 11) kw_i32(&w, -1); /* PreferredReadReplica */
            /* A read still running (answered at remote.fetch.max.wait.ms)
             * gives no records this time: the client fetches it again. */
            if (tp->inflight) {
                kw_bytes(&w, f, NULL, 0);
            } else if (tp->fr.fd >= 0) { /* the length here, the bytes from the file */
                if (f)
                    kw_uvarint(&w, (uint32_t)tp->len + 1);
                else
                    kw_i32(&w, (int32_t)tp->len);
                at[nr] = w.len;
                fr[nr++] = (bout_part){.fd = tp->fr.fd, .off = tp->fr.file_offset, .len = tp->len};
                tp->fr.fd = -1; /* the frame owns it now */
            } else {
                kw_bytes(&w, f, tp->data, (int32_t)tp->len);
            }
            if (f && o->replica_id >= 0 && b->cluster) {
                kw_uvarint(&w, 1); /* one tagged field: the leader's local log start */
                kw_uvarint(&w, KAFKA_TAG_LOCAL_LOG_START);
                kw_uvarint(&w, 8);
                kw_i64(&w, tp->local_start);
            } else
                kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    if (nr)
        reply_end_parts(b, &o->r, &w, at, fr, nr);
    else
        reply_end(b, &o->r, &w);
    free(at);
    free(fr);
}

/* Refreshes offsets and errors of every partition; returns how many have
 * data past their fetch offset. Loop thread. */
static int fetch_refresh(broker *b, fetch_op *o, int *cold)
{
    int avail = 0;
    *cold = 0;
    for (int i = 0; i < o->ntopics; i++) {
        btopic *bt = NULL;
        int resolved = 0; /* once per topic and refresh, from memory */
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error) continue;
            if (!tp->p) {
                if (!resolved) bt = topic_resolve(b, o->topics[i].name);
                resolved = 1;
                tp->p = topic_part_of(bt, tp->partition, &tp->error);
                if (!tp->p) continue;
            }
            tsp_offsets off = {.struct_size = sizeof off};
            tsp_status st = b->pl->offsets(tp->p->h, &off);
            if (st != TSP_OK) {
                tp->error = kafka_error_from_status(st);
                continue;
            }
            tp->hwm = replica_visible_end(b, &off);
            tp->log_start = off.log_start_offset;
            tp->local_start = off.local_start_offset;
            int replica = o->replica_id >= 0 && b->cluster;
            tp->limit = replica ? off.log_end_offset : tp->hwm;
            if (tp->fetch_offset < off.log_start_offset || tp->fetch_offset > off.log_end_offset) {
                tp->error = KAFKA_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (replica && tp->fetch_offset < off.local_start_offset) {
                /* KIP-405: a follower restarts at the local log start. */
                tp->error = KAFKA_OFFSET_MOVED_TO_TIERED_STORAGE;
                continue;
            }
            tp->cold = 0;
            if (tp->fetch_offset < tp->limit) {
                avail++;
                if (tp->fetch_offset < off.local_start_offset) *cold = tp->cold = 1;
            }
        }
    }
    return avail;
}

/* hot_pool / cold_pool worker: reads every partition with data. Touches
 * only the op and thread-safe plugin calls.
 * Sizes as Kafka's: each partition reads at most min(its MaxBytes, what is
 * left of the request's MaxBytes, itself clamped to fetch.max.bytes). Only
 * the first partition with data may exceed that, by returning its first
 * whole batch (so a batch larger than the limits is still consumable);
 * a later partition whose first batch does not fit returns nothing this
 * time. So a response holds at most max_bytes plus one batch. */
/* Consumers see whole batches below the HW only (the limit). */
static void fetch_cut(const tsp_plugin *pl, fetch_tp *tp)
{
    size_t keep = kbatch_whole_prefix(tp->data, tp->len, tp->limit);
    if (keep == tp->len) return;
    tp->len = keep;
    if (keep == 0) {
        pl->buffer_free(tp->data);
        tp->data = NULL;
    }
}

/* Zero-copy (minor-5 plugins, consumers): the same whole batches below the
 * limit as a file range; 0 when the caller must read them instead (a cold
 * offset, no descriptor to spare, any error: read then gives the answer). */
static int fetch_read_file(const tsp_plugin *pl, fetch_tp *tp, int64_t want)
{
    if (!bout_fds_take()) return 0;
    memset(&tp->fr, 0, sizeof tp->fr);
    tp->fr.struct_size = sizeof tp->fr;
    tsp_status st = pl->read_file(tp->p->h, tp->fetch_offset, (size_t)want, tp->limit, &tp->fr,
                                  tp->err, sizeof tp->err);
    if (st != TSP_OK || tp->fr.length == 0 || tp->fr.length > (uint64_t)INT32_MAX ||
        tp->fr.fd < 0) {
        if (tp->fr.fd >= 0 && st == TSP_OK) close(tp->fr.fd);
        tp->fr.fd = -1;
        bout_fds_give(1);
        tp->err[0] = 0;
        /* Nothing below the limit is an answer; anything else goes to read. */
        if (st == TSP_OK && tp->fr.length == 0) {
            tp->read_st = TSP_OK;
            tp->len = 0;
            return 1;
        }
        return 0;
    }
    tp->read_st = TSP_OK;
    tp->len = (size_t)tp->fr.length;
    return 1;
}

/* Reads one partition, at most want bytes (whole batches below its
 * limit): as a file range when zero_copy and the offset is local, else a
 * copy. Worker thread. */
static void fetch_read_one(const tsp_plugin *pl, fetch_tp *tp, int64_t want, int zero_copy)
{
    if (zero_copy && tp->fetch_offset >= tp->local_start && fetch_read_file(pl, tp, want)) return;
    tp->read_st = pl->read(tp->p->h, tp->fetch_offset, (size_t)want, &tp->data, &tp->len,
                           tp->err, sizeof tp->err);
    if (tp->read_st == TSP_OK && tp->len) fetch_cut(pl, tp);
}

/* Reads every partition with data in request order under one budget
 * (only the hot ones when hot_only: the cold ones have jobs of their own).
 * Worker thread. */
static void fetch_read_all(fetch_op *o, int hot_only)
{
    const tsp_plugin *pl = o->b->pl;
    int64_t left = o->max_bytes;
    int got_any = 0;
    /* A follower's fetch reads up to the log end, above the high watermark,
     * where a range's bytes could be truncated: it copies. */
    int zero_copy = TSP_HAS(pl, read_file) && !(o->replica_id >= 0 && o->b->cluster) &&
                    !o->b->fetch_copy;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error || !tp->p || tp->fetch_offset >= tp->limit) continue;
            if (hot_only && tp->cold) continue;
            if (got_any && left <= 0) continue;
            int64_t want = tp->max_bytes > 0 ? tp->max_bytes : 1;
            if (want > left) want = left > 0 ? left : 1;
            fetch_read_one(pl, tp, want, zero_copy);
            if (tp->read_st == TSP_OK && tp->len) {
                if (got_any && (int64_t)tp->len > left) {
                    fetch_tp_release(pl, tp);
                    continue;
                }
                got_any = 1;
                left -= (int64_t)tp->len;
            }
        }
}

static void fetch_run(bjob *j)
{
    fetch_read_all((fetch_op *)j, 0);
}

/* Bytes of the whole batches at the start of p (len bytes) that fit in
 * max bytes. */
static size_t fetch_fit(const uint8_t *p, size_t len, size_t max)
{
    size_t pos = 0;
    kbatch_header h;
    while (pos < len && kbatch_header_at(p + pos, len - pos, &h) == 0) {
        size_t n = kbatch_size(&h);
        if (n > len - pos || n > max - pos) break;
        pos += n;
    }
    return pos;
}

/* The request's budget over partitions read in parallel, as fetch_read_all
 * applies it to partitions read in turn: in request order, once one
 * partition returned data, a later one keeps only the whole batches that
 * fit in what is left of max_bytes. Loop thread; reads finished only. */
static void fetch_budget(fetch_op *o)
{
    const tsp_plugin *pl = o->b->pl;
    int64_t left = o->max_bytes;
    int got_any = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->inflight || tp->read_st != TSP_OK || !tp->len) continue;
            if (got_any && (int64_t)tp->len > left && tp->fr.fd >= 0) {
                /* A file range is not cut (its batches are not in memory):
                 * it returns nothing this time, as a partition whose first
                 * batch does not fit. */
                fetch_tp_release(pl, tp);
                continue;
            }
            if (got_any && (int64_t)tp->len > left) {
                tp->len = left > 0 ? fetch_fit(tp->data, tp->len, (size_t)left) : 0;
                if (!tp->len) {
                    pl->buffer_free(tp->data);
                    tp->data = NULL;
                    continue;
                }
            }
            got_any = 1;
            left -= (int64_t)tp->len;
        }
}

static void fetch_park(broker *b, fetch_op *o)
{
    o->next_parked = b->parked;
    b->parked = o;
}

static void fetch_done(bjob *j);
static void fetch_sub_run(bjob *j);
static void fetch_sub_done(bjob *j);

/* Starts the reads of o. Only hot partitions: one job on the hot pool
 * reads them in turn. With a cold partition the reads are split so that
 * nothing waits behind a slow bucket: the hot partitions are one job on
 * the hot pool, each cold partition a job of its own on the cold pool,
 * keyed by partition (the pool's key limit keeps one slow partition from
 * taking every cold thread), and the answer waits for them at most
 * remote.fetch.max.wait.ms (fetch_wake). Loop thread. */
static void fetch_submit(broker *b, fetch_op *o, int cold)
{
    o->cold = cold;
    o->in_pool = 1;
    if (!cold) {
        bpool_submit(b->hot_pool, &o->j);
        return;
    }
    int ncold = 0, nhot = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error || !tp->p || tp->fetch_offset >= tp->limit) continue;
            if (tp->cold) ncold++;
            else nhot++;
        }
    free(o->subs);
    o->subs = calloc((size_t)(ncold + (nhot > 0)), sizeof(*o->subs));
    if (!o->subs) { /* no memory for the split: read in turn on the cold pool */
        bpool_submit(b->cold_pool, &o->j);
        return;
    }
    o->nsubs = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error || !tp->p || tp->fetch_offset >= tp->limit) continue;
            tp->inflight = 1;
            if (!tp->cold) continue;
            fetch_sub *sb = &o->subs[o->nsubs++];
            sb->tp = tp;
        }
    if (nhot) o->subs[o->nsubs++].tp = NULL;
    o->pending = o->nsubs;
    o->cold_deadline = bclock_ms() + b->remote_fetch_max_wait_ms;
    o->next_waiting = b->cold_waiting;
    b->cold_waiting = o;
    for (int i = 0; i < o->nsubs; i++) {
        fetch_sub *sb = &o->subs[i];
        sb->o = o;
        sb->j.run = fetch_sub_run;
        sb->j.done = fetch_sub_done;
        atomic_init(&sb->cancel, 0);
        if (sb->tp) bpool_submit_keyed(b->cold_pool, &sb->j, sb->tp->p);
        else bpool_submit(b->hot_pool, &sb->j);
    }
}

/* Hot or cold pool worker: one read job of a split fetch. Touches only its
 * partition(s) of the op. */
static void fetch_sub_run(bjob *j)
{
    fetch_sub *sb = (fetch_sub *)j;
    fetch_op *o = sb->o;
    if (atomic_load(&sb->cancel)) return; /* answered without it meanwhile */
    if (!sb->tp) {
        fetch_read_all(o, 1);
        return;
    }
    fetch_tp *tp = sb->tp;
    int64_t want = tp->max_bytes > 0 ? tp->max_bytes : 1;
    if (o->max_bytes > 0 && want > o->max_bytes) want = o->max_bytes;
    fetch_read_one(o->b->pl, tp, want, 0); /* cold: never local */
}

static void fetch_unlink_waiting(broker *b, fetch_op *o)
{
    for (fetch_op **pp = &b->cold_waiting; *pp; pp = &(*pp)->next_waiting)
        if (*pp == o) {
            *pp = o->next_waiting;
            break;
        }
    o->next_waiting = NULL;
}

/* Marks the partitions of a finished read job as done. Loop thread. */
static void fetch_sub_mark(fetch_op *o, fetch_sub *sb)
{
    if (sb->tp) {
        sb->tp->inflight = 0;
        return;
    }
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++)
            if (!o->topics[i].tps[k].cold) o->topics[i].tps[k].inflight = 0;
}

/* Loop thread: one read job of a split fetch finished. The last one
 * finishes the fetch, unless it was answered already (then it frees it). */
static void fetch_sub_done(bjob *j)
{
    fetch_sub *sb = (fetch_sub *)j;
    fetch_op *o = sb->o;
    broker *b = o->b;
    fetch_sub_mark(o, sb);
    if (--o->pending > 0) return;
    if (o->answered) {
        fetch_free(o);
        return;
    }
    fetch_unlink_waiting(b, o);
    fetch_budget(o);
    fetch_done(&o->j);
}

/* Loop thread (the tick): answers split fetches whose cold reads outlast
 * remote.fetch.max.wait.ms with what is done, as Kafka answers a remote
 * fetch that times out (KIP-1018): a partition still reading gives no
 * records this time and the client asks again. Reads not started yet are
 * cancelled; running ones finish and are dropped. */
static void fetch_cold_expire(broker *b, int64_t now)
{
    fetch_op **pp = &b->cold_waiting;
    while (*pp) {
        fetch_op *o = *pp;
        if (now < o->cold_deadline) {
            pp = &o->next_waiting;
            continue;
        }
        *pp = o->next_waiting;
        o->next_waiting = NULL;
        for (int i = 0; i < o->nsubs; i++) atomic_store(&o->subs[i].cancel, 1);
        o->answered = 1;
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++) {
                fetch_tp *tp = &o->topics[i].tps[k];
                if (tp->inflight || tp->read_st == TSP_OK || tp->error) continue;
                tp->error = kafka_error_from_status(tp->read_st);
            }
        fetch_budget(o);
        if (conn_closed(o->r.c)) reply_drop(b, &o->r);
        else fetch_respond(b, o);
        /* fetch_sub_done frees it with the last read. */
    }
}

/* Loop thread: every read of o is done (o->j's own job, or the last read
 * job of a split fetch): answer, or park while MinBytes is not reached. */
static void fetch_done(bjob *j)
{
    fetch_op *o = (fetch_op *)j;
    broker *b = o->b;
    o->in_pool = 0;
    size_t total = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->read_st != TSP_OK && !tp->error) {
                tp->error = kafka_error_from_status(tp->read_st);
                /* A lost object fails every retry of the consumer; the
                 * plugin reports it as an ERROR at most once a minute. */
                if (tp->read_st != TSP_E_OBJECT_MISSING)
                    blog_warn("fetch %s-%d at %lld: %s: %s", o->topics[i].name,
                              tp->partition, (long long)tp->fetch_offset,
                              b->pl->status_name(tp->read_st), tp->err);
            }
            total += tp->len;
        }
    if (conn_closed(o->r.c)) {
        reply_drop(b, &o->r);
        fetch_free(o);
        return;
    }
    if (total < (size_t)(o->min_bytes > 0 ? o->min_bytes : 0) && bclock_ms() < o->deadline) {
        /* Not enough yet: drop what we read and wait for more appends.
         * Partitions are looked up again (the topic may be gone by then). */
        for (int i = 0; i < o->ntopics; i++)
            for (int k = 0; k < o->topics[i].n; k++) {
                fetch_tp_release(b->pl, &o->topics[i].tps[k]);
                o->topics[i].tps[k].p = NULL;
            }
        fetch_park(b, o);
        return;
    }
    fetch_respond(b, o);
    fetch_free(o);
}

/* Loop thread: after appends or on the tick, start parked fetches that have
 * data or whose MaxWaitMs passed, and answer split fetches whose cold reads
 * take too long. */
void fetch_wake(broker *b)
{
    b->parked_seen_appends = b->appends_total;
    fetch_op *list = b->parked;
    b->parked = NULL;
    int64_t now = bclock_ms();
    if (b->cold_waiting) fetch_cold_expire(b, now);
    while (list) {
        fetch_op *o = list;
        list = o->next_parked;
        if (conn_closed(o->r.c)) {
            reply_drop(b, &o->r);
            fetch_free(o);
            continue;
        }
        int cold = 0;
        int avail = fetch_refresh(b, o, &cold);
        if (avail > 0)
            fetch_submit(b, o, cold);
        else if (now >= o->deadline) {
            fetch_respond(b, o);
            fetch_free(o);
        } else
            fetch_park(b, o);
    }
}

/* Answers every parked fetch now (before a topic's partitions go away). */
void fetch_abort_all(broker *b)
{
    fetch_op *list = b->parked;
    b->parked = NULL;
    while (list) {
        fetch_op *o = list;
        list = o->next_parked;
        fetch_respond(b, o);
        fetch_free(o);
    }
}

void handle_Fetch(broker *b, reply *r, kafka_request *q)
{
    kafka_FetchRequest *fq = &q->u.fetch;
    fetch_op *o = calloc(1, sizeof(*o));
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->j.run = fetch_run;
    o->j.done = fetch_done;
    o->max_wait_ms = fq->max_wait_ms;
    o->min_bytes = fq->min_bytes;
    o->replica_id = fq->replica_id;
    /* Kafka: min(MaxBytes, fetch.max.bytes). */
    o->max_bytes = fq->max_bytes < 0 ? 0 : fq->max_bytes;
    if (o->max_bytes > b->fetch_max_bytes) o->max_bytes = (int32_t)b->fetch_max_bytes;
    o->deadline = bclock_ms() + (fq->max_wait_ms > 0 ? fq->max_wait_ms : 0);
    o->topics = calloc((size_t)(fq->ntopics ? fq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) goto oom;
    o->ntopics = fq->ntopics;
    /* A follower needs CLUSTER_ACTION on the cluster, a consumer READ on each topic. */
    int follower_ok = fq->replica_id < 0 ||
                      acl_check(b, &o->r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, NULL);
    for (int32_t i = 0; i < fq->ntopics; i++) {
        kafka_FetchTopic *t = &fq->topics[i];
        o->topics[i].name = strdup(t->topic);
        o->topics[i].n = t->npartitions;
        o->topics[i].tps = calloc((size_t)(t->npartitions ? t->npartitions : 1), sizeof(fetch_tp));
        if (!o->topics[i].tps) o->topics[i].n = 0;
        for (int32_t k = 0; k < o->topics[i].n; k++) o->topics[i].tps[k].fr.fd = -1; /* not 0 */
        if (!o->topics[i].name || !o->topics[i].tps) goto oom;
        int allowed = fq->replica_id >= 0
                          ? follower_ok
                          : acl_check(b, &o->r, ACL_OP_READ, ACL_RES_TOPIC, t->topic);
        for (int32_t k = 0; k < t->npartitions; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            tp->partition = t->partitions[k].partition;
            tp->fetch_offset = t->partitions[k].fetch_offset;
            tp->max_bytes = t->partitions[k].partition_max_bytes;
            tp->hwm = -1;
            tp->log_start = -1;
            tp->local_start = -1;
            if (!allowed)
                tp->error = KAFKA_TOPIC_AUTHORIZATION_FAILED;
            else if (b->cluster && fq->replica_id >= 0) /* a follower: replica.c checks it */
                tp->error = replica_follower_fetch(b, t->topic, tp->partition, fq->replica_id,
                                                   t->partitions[k].current_leader_epoch,
                                                   tp->fetch_offset);
            else if (b->cluster) /* a consumer reads from the leader at its epoch (v9+) */
                tp->error = cluster_check_leader(b, t->topic, tp->partition,
                                                 t->partitions[k].current_leader_epoch);
        }
    }
    int cold = 0;
    int avail = fetch_refresh(b, o, &cold);
    if (avail > 0)
        fetch_submit(b, o, cold);
    else if (fq->max_wait_ms > 0 && fq->min_bytes > 0)
        fetch_park(b, o);
    else {
        fetch_respond(b, o);
        fetch_free(o);
    }
    return;
oom:
    if (o) {
        reply_drop(b, &o->r);
        fetch_free(o);
    } else
        reply_drop(b, r);
}

/* ----------------------------------------------------------- ListOffsets */

typedef struct lo_part {
    int32_t partition;
    int64_t timestamp;
    bpart *p;
    int16_t error;
    int64_t offset, ts_out;
    int32_t leader_epoch; /* the partition's (cluster), else 0 */
} lo_part;

typedef struct lo_op {
    bjob j;
    broker *b;
    reply r;
    int32_t replica_id;
    int ntopics;
    struct {
        char *name;
        int n;
        lo_part *ps;
    } *topics;
} lo_op;

static void lo_free(lo_op *o)
{
    for (int i = 0; i < o->ntopics; i++) {
        free(o->topics[i].name);
        free(o->topics[i].ps);
    }
    free(o->topics);
    free(o);
}

/* Kafka answers ListOffsets with the first *record* whose timestamp >= ts;
 * the plugin finds the batch. This walks the records of that (uncompressed)
 * batch to the exact offset. A compressed batch answers with its first
 * offset (still a correct lower bound for a consumer to start from).
 * Runs on a cold-pool worker. */
static void refine_offset_for_time(const tsp_plugin *pl, tsp_partition *h, int64_t ts,
                                   int64_t *offset, int64_t *ts_out)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char err[128];
    if (pl->read(h, *offset, 1, &d, &n, err, sizeof err) != TSP_OK || !d) return;
    size_t pos = 0;
    kbatch_header bh;
    while (kbatch_header_at(d + pos, n - pos, &bh) == 0) {
        const uint8_t *b = d + pos;
        size_t blen = kbatch_size(&bh);
        if (blen < KBATCH_HEADER_LEN || blen > n - pos) break;
        int64_t base = bh.base_offset, base_ts = bh.base_timestamp, max_ts = bh.max_timestamp;
        int compressed = (bh.attributes & KBATCH_ATTR_CODEC_MASK) != 0;
        if (max_ts >= ts && !compressed) {
            kr rr; /* the records, bounded by this batch */
            kr_init(&rr, b + KBATCH_HEADER_LEN, blen - KBATCH_HEADER_LEN);
            int32_t count = bh.records_count;
            for (int32_t i = 0; i < count; i++) {
                int64_t rlen, tsd, offd;
                if (kr_varlong(&rr, &rlen) || rlen < 0 || (uint64_t)rlen > kr_left(&rr)) break;
                size_t next = rr.pos + (size_t)rlen;
                /* attributes, timestampDelta, offsetDelta */
                if (kr_skip(&rr, 1) || kr_varlong(&rr, &tsd) || kr_varlong(&rr, &offd)) break;
                if (base_ts + tsd >= ts) {
                    *offset = base + offd;
                    *ts_out = base_ts + tsd;
                    pl->buffer_free(d);
                    return;
                }
                rr.pos = next;
            }
        }
        if (max_ts >= ts) {
            *offset = base;
            break;
        }
        pos += blen;
    }
    pl->buffer_free(d);
}

/* The first offset whose record timestamp >= ts (offset -1 when none). */
static void lo_by_time(const tsp_plugin *pl, lo_part *lp, int64_t ts)
{
    char err[256];
    int64_t o = -1;
    tsp_status st = pl->offset_for_time(lp->p->h, ts, &o, err, sizeof err);
    if (st == TSP_E_NOT_FOUND) {
        lp->offset = -1;
    } else if (st != TSP_OK) {
        lp->error = kafka_error_from_status(st);
        blog_warn("ListOffsets by time %lld: %s", (long long)ts, err);
    } else {
        lp->offset = o;
        lp->ts_out = ts;
        refine_offset_for_time(pl, lp->p->h, ts, &lp->offset, &lp->ts_out);
    }
}

/* KIP-734 (-3): the first record with the largest timestamp, found as the
 * first record whose timestamp >= that largest one, from the segments'
 * max timestamps (placement: a worker's call). Offset -1 on an empty log. */
static void lo_max_timestamp(const tsp_plugin *pl, lo_part *lp)
{
    tsp_segment_info *rows = NULL;
    size_t n = 0, rsz = 0;
    char err[256];
    tsp_status st = pl->placement(lp->p->h, &rows, &n, &rsz, err, sizeof err);
    if (st != TSP_OK) {
        lp->error = kafka_error_from_status(st);
        blog_warn("ListOffsets max timestamp: %s", err);
        return;
    }
    int64_t max_ts = -1;
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *r = (const tsp_segment_info *)(const void *)((char *)rows + i * rsz);
        if (r->max_timestamp > max_ts) max_ts = r->max_timestamp;
    }
    pl->buffer_free(rows);
    lp->offset = -1;
    if (max_ts >= 0) lo_by_time(pl, lp, max_ts);
}

/* KIP-1005 (-5): the last offset in remote storage, -1 when none (or the
 * plugin does not report it). */
static void lo_latest_tiered(const tsp_plugin *pl, lo_part *lp)
{
    tsp_partition_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    st.last_tiered_offset = -1;
    char err[256];
    tsp_status rc = TSP_HAS(pl, partition_stats) ? pl->partition_stats(lp->p->h, &st, err, sizeof err)
                                                  : TSP_OK;
    if (rc != TSP_OK) {
        lp->error = kafka_error_from_status(rc);
        blog_warn("ListOffsets latest tiered: %s", err);
        return;
    }
    lp->offset = st.last_tiered_offset;
}

/* Any thread: resolves one partition (offset_for_time may hit the bucket,
 * placement and partition_stats read the disk: lo_on_pool decides). */
static void lo_resolve(const broker *b, int replica, lo_part *lp)
{
    const tsp_plugin *pl = b->pl;
    if (lp->error || !lp->p) return;
    tsp_offsets off = {.struct_size = sizeof off, .high_watermark = -1};
    tsp_status st = pl->offsets(lp->p->h, &off);
    if (st != TSP_OK) {
        lp->error = kafka_error_from_status(st);
        return;
    }
    lp->ts_out = -1;
    switch (lp->timestamp) {
    case KAFKA_TS_LATEST:
        /* Consumers: the HW (Kafka's isolation READ_UNCOMMITTED latest). */
        lp->offset = replica ? off.log_end_offset : replica_visible_end(b, &off);
        break;
    case KAFKA_TS_EARLIEST: lp->offset = off.log_start_offset; break;
    case KAFKA_TS_EARLIEST_LOCAL: lp->offset = off.local_start_offset; break;
    case KAFKA_TS_MAX_TIMESTAMP: lo_max_timestamp(pl, lp); break;
    case KAFKA_TS_LATEST_TIERED: lo_latest_tiered(pl, lp); break;
    default: lo_by_time(pl, lp, lp->timestamp); break; /* >= 0: checked by the handler */
    }
}

/* Whether resolving a timestamp may block (a worker's job). */
static int lo_on_pool(int64_t ts)
{
    return ts >= 0 || ts == KAFKA_TS_MAX_TIMESTAMP || ts == KAFKA_TS_LATEST_TIERED;
}

static void lo_run(bjob *j)
{
    lo_op *o = (lo_op *)j;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++)
            lo_resolve(o->b, o->replica_id >= 0, &o->topics[i].ps[k]);
}

static void lo_respond(broker *b, lo_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    if (v >= 2) kw_i32(&w, 0);
    kw_array(&w, f, o->ntopics);
    for (int i = 0; i < o->ntopics; i++) {
        kw_str(&w, f, o->topics[i].name);
        kw_array(&w, f, o->topics[i].n);
        for (int k = 0; k < o->topics[i].n; k++) {
            lo_part *lp = &o->topics[i].ps[k];
            kw_i32(&w, lp->partition);
            kw_i16(&w, lp->error);
            kw_i64(&w, lp->error ? -1 : lp->ts_out);
            kw_i64(&w, lp->error ? -1 : lp->offset);
            if (v >= 4) kw_i32(&w, lp->error || lp->offset < 0 ? -1 : lp->leader_epoch); /* LeaderEpoch */
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void lo_done(bjob *j)
{
    lo_op *o = (lo_op *)j;
    lo_respond(o->b, o);
    lo_free(o);
}

void handle_ListOffsets(broker *b, reply *r, kafka_request *q)
{
    kafka_ListOffsetsRequest *lq = &q->u.list_offsets;
    lo_op *o = calloc(1, sizeof(*o));
    int on_pool = 0;
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    o->replica_id = lq->replica_id;
    r->c = NULL;
    o->topics = calloc((size_t)(lq->ntopics ? lq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) goto oom;
    o->ntopics = lq->ntopics;
    /* Clients need DESCRIBE on the topic, a replica CLUSTER_ACTION on the cluster. */
    int replica_ok = lq->replica_id < 0 ||
                     acl_check(b, &o->r, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, NULL);
    for (int32_t i = 0; i < lq->ntopics; i++) {
        o->topics[i].name = strdup(lq->topics[i].name);
        o->topics[i].n = lq->topics[i].npartitions;
        o->topics[i].ps = calloc((size_t)(o->topics[i].n ? o->topics[i].n : 1), sizeof(lo_part));
        if (!o->topics[i].name || !o->topics[i].ps) goto oom;
        int allowed = lq->replica_id >= 0 ? replica_ok
                                          : acl_check(b, &o->r, ACL_OP_DESCRIBE, ACL_RES_TOPIC,
                                                      lq->topics[i].name);
        for (int k = 0; k < o->topics[i].n; k++) {
            lo_part *lp = &o->topics[i].ps[k];
            lp->partition = lq->topics[i].partitions[k].partition_index;
            lp->timestamp = lq->topics[i].partitions[k].timestamp;
            if (!allowed) {
                lp->error = KAFKA_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            const cl_pstate *st = cluster_pstate(b, o->topics[i].name, lp->partition);
            lp->leader_epoch = st ? st->leader_epoch : 0;
            /* In a cluster the leader answers, at the client's epoch (v4+). */
            const kafka_ListOffsetsPartition *rp = &lq->topics[i].partitions[k];
            if (b->cluster &&
                (lp->error = cluster_check_leader(b, o->topics[i].name, lp->partition,
                                                  rp->current_leader_epoch)))
                continue;
            lp->p = topic_part(b, o->topics[i].name, lp->partition, &lp->error);
            /* A special timestamp before the version that defines it (or
             * one no version defines): Kafka's per-partition refusal. */
            int min_v = kafka_list_offsets_min_version(lp->timestamp);
            if (min_v < 0 || r->hdr.api_version < min_v) lp->error = KAFKA_UNSUPPORTED_VERSION;
            if (!lp->error && lo_on_pool(lp->timestamp)) on_pool = 1;
        }
    }
    if (on_pool) {
        o->j.run = lo_run;
        o->j.done = lo_done;
        bpool_submit(b->cold_pool, &o->j);
        return;
    }
    lo_run(&o->j);
    lo_done(&o->j);
    return;
oom:
    if (o) {
        reply_drop(b, &o->r);
        lo_free(o);
    } else
        reply_drop(b, r);
}

/* ---------------------------------------------------- CreateTopics/Delete */

/* CreateTopics: each topic is created by a job on the topic pool (the
 * plugin writes its configuration to the bucket and opens or recovers its
 * partitions); the reply is written when the last one is done. */
typedef struct ct_ent {
    struct ct_op *op;
    char *name;
    int32_t num_partitions;
    bprop *cfg;
    size_t ncfg;
    int16_t rc;
    int rounds;
    char msg[512];
} ct_ent;

typedef struct ct_op {
    reply r;
    int validate_only;
    int32_t n;
    ct_ent *e;
    int pending;
} ct_op;

static void ct_free(ct_op *o)
{
    for (int32_t i = 0; i < o->n; i++) {
        free(o->e[i].name);
        for (size_t k = 0; k < o->e[i].ncfg; k++) {
            free(o->e[i].cfg[k].key);
            free(o->e[i].cfg[k].value);
        }
        free(o->e[i].cfg);
    }
    free(o->e);
    free(o);
}

static void ct_respond(broker *b, ct_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    if (v >= 2) kw_i32(&w, 0);
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        ct_ent *e = &o->e[i];
        int rc = e->rc;
        btopic *bt = rc == KAFKA_NONE ? topic_find(b, e->name) : NULL;
        kw_str(&w, f, e->name);
        kw_i16(&w, (int16_t)rc);
        if (v >= 1) kw_str(&w, f, rc ? e->msg : NULL);
        if (v >= 5) {
            kw_i32(&w, bt ? bt->npartitions : (rc ? -1 : e->num_partitions));
            kw_i16(&w, rc ? -1 : 1);
            kw_array(&w, f, -1); /* Configs */
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void ct_wait_done(broker *b, void *arg, int16_t err, const char *msg);

static void ct_start(broker *b, ct_op *o, ct_ent *e)
{
    int waiting = 0;
    e->rc = (int16_t)topic_create(b, e->name, e->num_partitions, e->cfg, e->ncfg, o->validate_only,
                                  ct_wait_done, e, &waiting, e->msg, sizeof e->msg);
    if (waiting == TOPIC_WAIT_OWN)
        e->rounds = -1; /* the result comes with the callback */
    if (waiting) o->pending++;
}

static void ct_wait_done(broker *b, void *arg, int16_t err, const char *msg)
{
    ct_ent *e = arg;
    ct_op *o = e->op;
    o->pending--;
    if (e->rounds < 0) {
        e->rc = err;
        snprintf(e->msg, sizeof e->msg, "%s", err && msg && msg[0] ? msg : "");
        if (err == KAFKA_TOPIC_ALREADY_EXISTS && !e->msg[0])
            snprintf(e->msg, sizeof e->msg, "topic '%s' already exists", e->name);
    } else if (++e->rounds < 3) {
        ct_start(b, o, e); /* another job held the name: ask again */
    } else {
        e->rc = KAFKA_REQUEST_TIMED_OUT;
        snprintf(e->msg, sizeof e->msg, "topic '%s' is busy; retry", e->name);
    }
    if (o->pending == 0) {
        ct_respond(b, o);
        ct_free(o);
    }
}

void handle_CreateTopics(broker *b, reply *r, kafka_request *q)
{
    if (b->cluster) {
        cluster_handle_create_topics(b, r, q);
        return;
    }
    kafka_CreateTopicsRequest *cq = &q->u.create_topics;
    ct_op *o = calloc(1, sizeof(*o));
    if (!o) goto oom;
    o->r = *r;
    r->c = NULL;
    o->validate_only = cq->validate_only;
    o->e = calloc((size_t)(cq->ntopics > 0 ? cq->ntopics : 1), sizeof(*o->e));
    if (!o->e) goto oom;
    for (int32_t i = 0; i < cq->ntopics; i++) {
        kafka_CreatableTopic *t = &cq->topics[i];
        ct_ent *e = &o->e[i];
        e->op = o;
        e->num_partitions = t->num_partitions;
        e->name = strdup(t->name);
        o->n++;
        size_t n = t->nconfigs > 64 ? 64 : (size_t)(t->nconfigs > 0 ? t->nconfigs : 0);
        e->cfg = n ? calloc(n, sizeof(*e->cfg)) : NULL;
        if (!e->name || (n && !e->cfg)) goto oom;
        for (size_t k = 0; k < n; k++) {
            e->cfg[k].key = strdup(t->configs[k].name);
            e->cfg[k].value = strdup(t->configs[k].value ? t->configs[k].value : "");
            e->ncfg++;
            if (!e->cfg[k].key || !e->cfg[k].value) goto oom;
        }
    }
    o->pending = 1; /* until every topic is started */
    for (int32_t i = 0; i < o->n; i++) {
        kafka_CreatableTopic *t = &cq->topics[i];
        ct_ent *e = &o->e[i];
        if (!acl_check_quiet(b, &o->r, ACL_OP_CREATE, ACL_RES_CLUSTER, NULL) &&
            !acl_check(b, &o->r, ACL_OP_CREATE, ACL_RES_TOPIC, e->name)) {
            snprintf(e->msg, sizeof e->msg, "CREATE on the cluster or on topic '%s' is needed",
                     e->name);
            e->rc = KAFKA_TOPIC_AUTHORIZATION_FAILED;
        } else if (t->replication_factor != -1 && t->replication_factor != 1) {
            snprintf(e->msg, sizeof e->msg, "replication factor %d: this single-node broker has 1",
                     t->replication_factor);
            e->rc = KAFKA_INVALID_REPLICATION_FACTOR;
        } else if (t->nassignments > 0) {
            snprintf(e->msg, sizeof e->msg, "manual replica assignments are not supported");
            e->rc = KAFKA_INVALID_REQUEST;
        } else {
            ct_start(b, o, e);
        }
    }
    if (--o->pending == 0) {
        ct_respond(b, o);
        ct_free(o);
    }
    return;
oom:
    if (o) {
        reply_drop(b, &o->r);
        ct_free(o);
    } else
        reply_drop(b, r);
}

void handle_DeleteTopics(broker *b, reply *r, kafka_request *q)
{
    if (b->cluster) {
        cluster_handle_delete_topics(b, r, q);
        return;
    }
    kafka_DeleteTopicsRequest *dq = &q->u.delete_topics;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_array(&w, f, dq->ntopics);
    for (int32_t i = 0; i < dq->ntopics; i++) {
        char msg[512];
        int rc = KAFKA_TOPIC_AUTHORIZATION_FAILED;
        if (acl_check(b, r, ACL_OP_DELETE, ACL_RES_TOPIC, dq->topic_names[i]))
            rc = topic_delete(b, dq->topic_names[i], msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "DELETE on topic '%s' is needed", dq->topic_names[i]);
        kw_str(&w, f, dq->topic_names[i]);
        kw_i16(&w, (int16_t)rc);
        if (v >= 5) kw_str(&w, f, rc ? msg : NULL);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

/* -------------------------------------------------------- InitProducerId */

/* Producer ids come from a durable counter, never from the clock (a clock
 * step would hand out an id again, and a batch of the new producer could
 * then be taken for a duplicate of the old one and dropped). Like Kafka's
 * ProducerIdManager, ids are reserved in blocks: .broker/producer-ids holds
 * the end of the newest reserved block and is durable before any id of the
 * block is handed out, so a restart (which starts at that end) never reuses
 * one. The next block is reserved once half of the current one is used, so
 * a request waits for an fsync only when ids are handed out faster than
 * that; waiting requests are answered in arrival order. In a cluster the
 * blocks come from etcd instead (CAS on producer_ids, group_cluster.c), as
 * Kafka's ProducerIdManager took them from ZooKeeper, so no two brokers hand
 * out one id; a block is reserved when the current one is used up. Loop
 * thread. */
#define PRODUCER_ID_BLOCK 1000

typedef struct pid_wait {
    struct pid_wait *next;
    reply r;
} pid_wait;

static void pid_answer(broker *b, reply *r, int16_t err, int64_t pid, int16_t epoch)
{
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0);
    kw_i16(&w, err);
    kw_i64(&w, err ? -1 : pid);
    kw_i16(&w, err ? -1 : epoch);
    kw_tags(&w, r->hdr.flexible);
    reply_end(b, r, &w);
}

static void pid_maybe_reserve(broker *b);
static void pid_reserved(broker *b, void *arg, int ok);

/* Cluster: a block [start, end) reserved in etcd (group_cluster.c); it
 * replaces what is left of the current one. */
static void pid_block_reserved(broker *b, int ok, int64_t start, int64_t end)
{
    if (ok) {
        b->next_producer_id = start;
        b->pid_reserving_end = end;
    }
    pid_reserved(b, NULL, ok);
}

static void pid_reserved(broker *b, void *arg, int ok)
{
    (void)arg;
    b->pid_reserving = 0;
    if (ok) b->producer_id_limit = b->pid_reserving_end;
    while (b->pid_waiters && (!ok || b->next_producer_id < b->producer_id_limit)) {
        pid_wait *wt = b->pid_waiters;
        b->pid_waiters = wt->next;
        if (ok)
            pid_answer(b, &wt->r, KAFKA_NONE, b->next_producer_id++, 0);
        else /* retriable: the client asks again */
            pid_answer(b, &wt->r, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
        free(wt);
    }
    if (ok) pid_maybe_reserve(b);
}

static void pid_maybe_reserve(broker *b)
{
    if (b->pid_reserving) return;
    if (b->gc) { /* blocks from etcd, shared by the cluster: one when this one is used up */
        if (!b->pid_waiters) return;
        b->pid_reserving = 1;
        group_cluster_reserve_pids(b, PRODUCER_ID_BLOCK, pid_block_reserved);
        return;
    }
    if (!b->pid_waiters && b->producer_id_limit - b->next_producer_id > PRODUCER_ID_BLOCK / 2)
        return;
    if (b->producer_id_limit > INT64_MAX - PRODUCER_ID_BLOCK) { /* ids exhausted */
        blog_error("producer ids exhausted (%s/producer-ids)", b->meta_dir);
        pid_reserved(b, NULL, 0); /* answers the waiters with an error */
        return;
    }
    b->pid_reserving = 1;
    b->pid_reserving_end = b->producer_id_limit + PRODUCER_ID_BLOCK;
    meta_save_producer_ids(b, b->pid_reserving_end, pid_reserved, NULL);
}

void handle_InitProducerId(broker *b, reply *r, kafka_request *q)
{
    kafka_InitProducerIdRequest *iq = &q->u.init_producer_id;
    if (iq->transactional_id) {
        pid_answer(b, r, KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1); /* no transactions */
        return;
    }
    /* Idempotence: IDEMPOTENT_WRITE on the cluster, or WRITE on any topic (KIP-679). */
    if (!acl_check_quiet(b, r, ACL_OP_IDEMPOTENT_WRITE, ACL_RES_CLUSTER, NULL) &&
        !acl_check_any(b, r, ACL_OP_WRITE, ACL_RES_TOPIC)) {
        acl_check(b, r, ACL_OP_IDEMPOTENT_WRITE, ACL_RES_CLUSTER, NULL); /* logs the refusal */
        pid_answer(b, r, KAFKA_CLUSTER_AUTHORIZATION_FAILED, -1, -1);
        return;
    }
    if (iq->producer_id >= 0) {
        /* Bumping the epoch of a known id (KIP-360). */
        pid_answer(b, r, KAFKA_NONE, iq->producer_id, (int16_t)(iq->producer_epoch + 1));
        return;
    }
    if (!b->pid_waiters && b->next_producer_id < b->producer_id_limit) {
        pid_answer(b, r, KAFKA_NONE, b->next_producer_id++, 0);
        pid_maybe_reserve(b);
        return;
    }
    pid_wait *wt = calloc(1, sizeof(*wt));
    if (!wt) {
        pid_answer(b, r, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    wt->r = *r;
    r->c = NULL; /* the waiter owns the reply now */
    pid_wait **pp = &b->pid_waiters;
    while (*pp) pp = &(*pp)->next;
    *pp = wt;
    pid_maybe_reserve(b);
}
