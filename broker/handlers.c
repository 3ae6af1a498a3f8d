/*
 * handlers.c — ApiVersions, Metadata, Produce, Fetch, ListOffsets,
 * CreateTopics, DeleteTopics and InitProducerId.
 *
 * Every handler starts on the loop thread with a parsed request and a
 * reply. What can block goes to a pool and the reply is finished in the
 * job's `done` (loop thread again):
 *   Produce     append on the loop (page cache), acks=-1 fsync on io_pool
 *   Fetch       reads on hot_pool, or cold_pool when any offset is below the
 *               local start; long-poll parks the request until an append
 *               or MaxWaitMs
 *   ListOffsets by timestamp on cold_pool (the search may hit the bucket)
 * Response field order and version gates follow Kafka's message schemas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

#define TS_MIN_INT32 (-2147483647 - 1)

/* ----------------------------------------------------------- ApiVersions */

void handle_ApiVersions(broker *b, reply *r, kafka_request *q)
{
    kw w;
    reply_begin(r, &w);
    kafka_write_ApiVersionsResponse(&w, r->hdr.api_version, KAFKA_NONE);
    reply_end(b, r, &w);
}

/* -------------------------------------------------------------- Metadata */

static void write_topic_md(broker *b, kw *w, int v, int f, const char *name, btopic *t,
                           int16_t err)
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
    if (v >= 8) kw_i32(w, TS_MIN_INT32); /* TopicAuthorizedOperations */
    kw_tags(w, f);
}

void handle_Metadata(broker *b, reply *r, kafka_request *q)
{
    kafka_MetadataRequest *m = &q->u.metadata;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    /* Auto-create first so the answer lists the new topics. */
    for (int32_t i = 0; i < m->ntopics; i++) {
        if (topic_find(b, m->topics[i])) continue;
        if (b->auto_create && m->allow_auto_topic_creation && topic_name_valid(m->topics[i])) {
            char msg[256];
            topic_create(b, m->topics[i], -1, NULL, 0, 0, msg, sizeof msg);
        }
    }
    kw w;
    reply_begin(r, &w);
    if (v >= 3) kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_array(&w, f, 1);        /* Brokers */
    kw_i32(&w, b->node_id);
    kw_str(&w, f, b->adv_host);
    kw_i32(&w, b->adv_port);
    if (v >= 1) kw_str(&w, f, NULL); /* Rack */
    kw_tags(&w, f);
    if (v >= 2) kw_str(&w, f, b->cluster_id);
    if (v >= 1) kw_i32(&w, b->node_id); /* ControllerId */
    if (m->ntopics < 0) {
        int32_t n = 0;
        for (btopic *t = b->topics; t; t = t->next) n++;
        kw_array(&w, f, n);
        for (btopic *t = b->topics; t; t = t->next) write_topic_md(b, &w, v, f, t->name, t, 0);
    } else {
        kw_array(&w, f, m->ntopics);
        for (int32_t i = 0; i < m->ntopics; i++) {
            btopic *t = topic_find(b, m->topics[i]);
            int16_t err = t ? KAFKA_NONE
                            : (topic_name_valid(m->topics[i]) ? KAFKA_UNKNOWN_TOPIC_OR_PARTITION
                                                               : KAFKA_INVALID_TOPIC_EXCEPTION);
            write_topic_md(b, &w, v, f, m->topics[i], t, err);
        }
    }
    if (v >= 8 && v <= 10) kw_i32(&w, TS_MIN_INT32); /* ClusterAuthorizedOperations */
    kw_tags(&w, f);
    reply_end(b, r, &w);
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
} produce_res;

typedef struct prod_op {
    bjob j;
    broker *b;
    reply r;
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
#define RD32(o) ((uint32_t)rec[o] << 24 | (uint32_t)rec[o + 1] << 16 | (uint32_t)rec[o + 2] << 8 | rec[o + 3])
    if (len <= 0) {
        snprintf(msg, msglen, "Produce requests with version %d must have at least one record "
                 "batch per partition", version);
        return KAFKA_INVALID_RECORD;
    }
    if (len < 61) {
        snprintf(msg, msglen, "record batch of %d bytes is shorter than its 61-byte header", len);
        return KAFKA_CORRUPT_MESSAGE;
    }
    int attrs = rec[21] << 8 | rec[22];
    int64_t pid = (int64_t)((uint64_t)RD32(43) << 32 | RD32(47));
    int32_t base_seq = (int32_t)RD32(53), blen = (int32_t)RD32(8);
#undef RD32
    /* Kafka answers a transactional batch without an authorized
     * transactional id so; this broker has no transactions at all. */
    if (attrs & 0x10) {
        snprintf(msg, msglen, "transactional record batch refused: this broker does not support "
                 "transactions");
        return KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    }
    if (rec[16] != 2) {
        snprintf(msg, msglen, "Produce requests with version %d are only allowed to contain record "
                 "batches with magic version 2", version);
        return KAFKA_INVALID_RECORD;
    }
    if (blen >= 49 && (int64_t)blen + 12 < len) {
        snprintf(msg, msglen, "Produce requests with version %d are only allowed to contain exactly "
                 "one record batch per partition", version);
        return KAFKA_INVALID_RECORD;
    }
    if ((attrs & 0x7) == 4 && version < 7) {
        snprintf(msg, msglen, "Produce requests with version %d are not allowed to use ZStandard "
                 "compression", version);
        return KAFKA_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (attrs & 0x20) {
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
    kw_i32(&w, 0); /* ThrottleTimeMs */
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
static int idempotence_check(bpart *p, const uint8_t *batch, size_t len, pid_state **st_out,
                             int64_t *dup_offset)
{
    *st_out = NULL;
    if (len < 61) return KAFKA_CORRUPT_MESSAGE;
    const uint8_t *h = batch;
#define RD32(o) ((int32_t)(((uint32_t)h[o] << 24) | ((uint32_t)h[o + 1] << 16) | ((uint32_t)h[o + 2] << 8) | h[o + 3]))
    int64_t pid = (int64_t)(((uint64_t)(uint32_t)RD32(43) << 32) | (uint32_t)RD32(47));
    int16_t epoch = (int16_t)((h[51] << 8) | h[52]);
    int32_t base_seq = RD32(53);
    int32_t last_delta = RD32(23);
#undef RD32
    if (pid < 0 || base_seq < 0) return KAFKA_NONE;
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
        if (s->cached[i].first_seq == base_seq && s->cached[i].last_seq == base_seq + last_delta) {
            *dup_offset = s->cached[i].base_offset;
            return KAFKA_DUPLICATE_SEQUENCE_NUMBER;
        }
    if (base_seq != s->last_seq + 1 && !(s->last_seq == INT32_MAX && base_seq == 0))
        return KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    return KAFKA_NONE;
}

static void idempotence_record(pid_state *s, const uint8_t *batch, int64_t base_offset)
{
    if (!s) return;
    const uint8_t *h = batch;
    int32_t base_seq = (int32_t)(((uint32_t)h[53] << 24) | ((uint32_t)h[54] << 16) |
                                 ((uint32_t)h[55] << 8) | h[56]);
    int32_t delta = (int32_t)(((uint32_t)h[23] << 24) | ((uint32_t)h[24] << 16) |
                              ((uint32_t)h[25] << 8) | h[26]);
    if (s->ncached == BROKER_MAX_SEQ_CACHE) {
        memmove(&s->cached[0], &s->cached[1], sizeof(s->cached[0]) * (BROKER_MAX_SEQ_CACHE - 1));
        s->ncached--;
    }
    s->cached[s->ncached].first_seq = base_seq;
    s->cached[s->ncached].last_seq = base_seq + delta;
    s->cached[s->ncached].base_offset = base_offset;
    s->ncached++;
    s->last_seq = base_seq + delta;
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
        while (pos + 61 <= n) {
            const uint8_t *h = d + pos;
#define RD32(x) ((uint32_t)h[x] << 24 | (uint32_t)h[x + 1] << 16 | (uint32_t)h[x + 2] << 8 | h[x + 3])
            size_t sz = 12 + (size_t)RD32(8);
            int64_t base = (int64_t)((uint64_t)RD32(0) << 32 | RD32(4));
            int32_t delta = (int32_t)RD32(23);
            int64_t pid = (int64_t)((uint64_t)RD32(43) << 32 | RD32(47));
            int16_t epoch = (int16_t)((h[51] << 8) | h[52]);
            int32_t base_seq = (int32_t)RD32(53);
#undef RD32
            if (sz < 61 || pos + sz > n) break;
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
                if (s && epoch == s->epoch) idempotence_record(s, h, base);
            }
            off = base + delta + 1;
            pos += sz;
        }
        b->pl->buffer_free(d);
        if (pos == 0) break;
    }
    if (producers) blog_info("rebuilt idempotent state of %zu producer(s) for a partition", producers);
}

void handle_Produce(broker *b, reply *r, kafka_request *q)
{
    kafka_ProduceRequest *pq = &q->u.produce;
    int acks = pq->acks;
    prod_op *o = calloc(1, sizeof(*o));
    int total = 0;
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->topics = calloc((size_t)(pq->ntopics ? pq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) goto oom;
    for (int32_t i = 0; i < pq->ntopics; i++) total += pq->topics[i].npartitions;
    o->to_flush = calloc((size_t)(total ? total : 1), sizeof(*o->to_flush));
    if (!o->to_flush) goto oom;
    o->ntopics = pq->ntopics;
    for (int32_t i = 0; i < pq->ntopics; i++) {
        kafka_ProduceTopic *t = &pq->topics[i];
        o->topics[i].name = strdup(t->name);
        o->topics[i].n = t->npartitions;
        o->topics[i].res = calloc((size_t)(t->npartitions ? t->npartitions : 1),
                                  sizeof(produce_res));
        if (!o->topics[i].name || !o->topics[i].res) goto oom;
        for (int32_t k = 0; k < t->npartitions; k++) {
            kafka_ProducePartition *pp = &t->partitions[k];
            produce_res *pr = &o->topics[i].res[k];
            pr->partition = pp->index;
            pr->base_offset = -1;
            pr->log_start = -1;
            if (pq->transactional_id) {
                pr->error = KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                continue;
            }
            if (acks != 0 && acks != 1 && acks != -1) {
                pr->error = KAFKA_INVALID_REQUIRED_ACKS;
                continue;
            }
            bpart *p = topic_part(b, t->name, pp->index, &pr->error);
            if (!p) continue;
            pr->error = produce_entry_check(o->r.hdr.api_version, pp->records.p, pp->records.len,
                                            pr->msg, sizeof pr->msg);
            if (pr->error) {
                blog_warn("produce to %s-%d from %s refused: %s", t->name, pp->index,
                          conn_peer(o->r.c), pr->msg);
                continue;
            }
            pid_state *ps = NULL;
            int64_t dup = -1;
            int ie = idempotence_check(p, pp->records.p, (size_t)pp->records.len, &ps, &dup);
            if (ie == KAFKA_DUPLICATE_SEQUENCE_NUMBER) {
                pr->base_offset = dup; /* Kafka answers a duplicate as a success */
                continue;
            }
            if (ie != KAFKA_NONE) {
                pr->error = (int16_t)ie;
                continue;
            }
            int64_t first = -1, last = -1;
            tsp_status st = b->pl->append(p->h, pp->records.p, (size_t)pp->records.len, &first,
                                          &last, pr->msg, sizeof pr->msg);
            if (st != TSP_OK) {
                /* Retriable refusals (backpressure) come in bursts while
                 * uploads catch up: log them at most once a second. */
                static int64_t last_retriable_log;
                int retriable = b->pl->status_is_retriable(st);
                pr->error = kafka_error_from_status(st);
                if (!retriable || bclock_ms() - last_retriable_log >= 1000) {
                    if (retriable) last_retriable_log = bclock_ms();
                    blog_warn("produce to %s-%d from %s: %s: %s", t->name, pp->index,
                              conn_peer(o->r.c), b->pl->status_name(st), pr->msg);
                }
                continue;
            }
            idempotence_record(ps, pp->records.p, first);
            p->appends++;
            b->appends_total++;
            pr->base_offset = first;
            pr->p = p;
            tsp_offsets off = {.struct_size = sizeof off};
            if (b->pl->offsets(p->h, &off) == TSP_OK) pr->log_start = off.log_start_offset;
            o->to_flush[o->nflush++] = p->h;
        }
    }
    if (acks == 0) {
        reply_drop(b, &o->r);
        prod_free(o);
        return;
    }
    if (acks == -1 && o->nflush > 0) {
        o->j.run = prod_flush_run;
        o->j.done = prod_flush_done;
        bpool_submit(b->io_pool, &o->j);
        return;
    }
    prod_respond(b, o);
    prod_free(o);
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
    uint8_t *data;
    size_t len;
    tsp_status read_st;
    char err[160];
} fetch_tp;

typedef struct fetch_op {
    bjob j;
    struct fetch_op *next_parked;
    broker *b;
    reply r;
    int32_t max_wait_ms, min_bytes, max_bytes;
    int64_t deadline;
    int ntopics;
    struct {
        char *name;
        int n;
        fetch_tp *tps;
    } *topics;
    int cold;
    int in_pool;
} fetch_op;

static void fetch_free(fetch_op *o)
{
    for (int i = 0; i < o->ntopics; i++) {
        for (int k = 0; k < o->topics[i].n; k++) o->b->pl->buffer_free(o->topics[i].tps[k].data);
        free(o->topics[i].name);
        free(o->topics[i].tps);
    }
    free(o->topics);
    free(o);
}

static void fetch_respond(broker *b, fetch_op *o)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
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
            kw_bytes(&w, f, tp->data, (int32_t)tp->len);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

/* Refreshes offsets and errors of every partition; returns how many have
 * data past their fetch offset. Loop thread. */
static int fetch_refresh(broker *b, fetch_op *o, int *cold)
{
    int avail = 0;
    *cold = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error) continue;
            if (!tp->p) {
                tp->p = topic_part(b, o->topics[i].name, tp->partition, &tp->error);
                if (!tp->p) continue;
            }
            tsp_offsets off = {.struct_size = sizeof off};
            tsp_status st = b->pl->offsets(tp->p->h, &off);
            if (st != TSP_OK) {
                tp->error = kafka_error_from_status(st);
                continue;
            }
            tp->hwm = off.log_end_offset;
            tp->log_start = off.log_start_offset;
            if (tp->fetch_offset < off.log_start_offset || tp->fetch_offset > off.log_end_offset) {
                tp->error = KAFKA_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (tp->fetch_offset < off.log_end_offset) {
                avail++;
                if (tp->fetch_offset < off.local_start_offset) *cold = 1;
            }
        }
    return avail;
}

/* hot_pool / cold_pool worker: reads every partition with data. Touches
 * only the op and thread-safe plugin calls. */
static void fetch_run(bjob *j)
{
    fetch_op *o = (fetch_op *)j;
    const tsp_plugin *pl = o->b->pl;
    int64_t left = o->max_bytes > 0 ? o->max_bytes : INT32_MAX;
    int got_any = 0;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            if (tp->error || !tp->p || tp->fetch_offset >= tp->hwm) continue;
            if (got_any && left <= 0) continue;
            int64_t want = tp->max_bytes > 0 ? tp->max_bytes : 1;
            if (want > left && got_any) want = left;
            tp->read_st = pl->read(tp->p->h, tp->fetch_offset, (size_t)want, &tp->data, &tp->len,
                                   tp->err, sizeof tp->err);
            if (tp->read_st == TSP_OK && tp->len) {
                got_any = 1;
                left -= (int64_t)tp->len;
            }
        }
}

static void fetch_park(broker *b, fetch_op *o)
{
    o->next_parked = b->parked;
    b->parked = o;
}

static void fetch_submit(broker *b, fetch_op *o, int cold)
{
    o->cold = cold;
    o->in_pool = 1;
    bpool_submit(cold ? b->cold_pool : b->hot_pool, &o->j);
}

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
                blog_warn("fetch %s-%d at %lld: %s: %s", o->topics[i].name, tp->partition,
                          (long long)tp->fetch_offset, b->pl->status_name(tp->read_st), tp->err);
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
                b->pl->buffer_free(o->topics[i].tps[k].data);
                o->topics[i].tps[k].data = NULL;
                o->topics[i].tps[k].len = 0;
                o->topics[i].tps[k].p = NULL;
            }
        fetch_park(b, o);
        return;
    }
    fetch_respond(b, o);
    fetch_free(o);
}

/* Loop thread: after appends or on the tick, start parked fetches that have
 * data or whose MaxWaitMs passed. */
void fetch_wake(broker *b)
{
    b->parked_seen_appends = b->appends_total;
    fetch_op *list = b->parked;
    b->parked = NULL;
    int64_t now = bclock_ms();
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
    o->max_bytes = fq->max_bytes;
    o->deadline = bclock_ms() + (fq->max_wait_ms > 0 ? fq->max_wait_ms : 0);
    o->topics = calloc((size_t)(fq->ntopics ? fq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) goto oom;
    o->ntopics = fq->ntopics;
    for (int32_t i = 0; i < fq->ntopics; i++) {
        kafka_FetchTopic *t = &fq->topics[i];
        o->topics[i].name = strdup(t->topic);
        o->topics[i].n = t->npartitions;
        o->topics[i].tps = calloc((size_t)(t->npartitions ? t->npartitions : 1), sizeof(fetch_tp));
        if (!o->topics[i].name || !o->topics[i].tps) goto oom;
        for (int32_t k = 0; k < t->npartitions; k++) {
            fetch_tp *tp = &o->topics[i].tps[k];
            tp->partition = t->partitions[k].partition;
            tp->fetch_offset = t->partitions[k].fetch_offset;
            tp->max_bytes = t->partitions[k].partition_max_bytes;
            tp->hwm = -1;
            tp->log_start = -1;
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
} lo_part;

typedef struct lo_op {
    bjob j;
    broker *b;
    reply r;
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

/* Reads a zig-zag varint of up to 64 bits; -1 on a short/overlong input. */
static int rd_varlong(const uint8_t *p, size_t len, size_t *pos, int64_t *out)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)((x >> 1) ^ (~(x & 1) + 1));
            return 0;
        }
    }
    return -1;
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
    while (n - pos >= 61) {
        const uint8_t *b = d + pos;
        size_t blen = 12 + (size_t)(((uint32_t)b[8] << 24) | ((uint32_t)b[9] << 16) |
                                    ((uint32_t)b[10] << 8) | b[11]);
        if (blen < 61 || blen > n - pos) break;
        int64_t base = 0, base_ts = 0, max_ts = 0;
        for (int i = 0; i < 8; i++) {
            base = (base << 8) | b[i];
            base_ts = (base_ts << 8) | b[27 + i];
            max_ts = (max_ts << 8) | b[35 + i];
        }
        int compressed = (b[22] & 7) != 0;
        if (max_ts >= ts && !compressed) {
            size_t rp = 61;
            int32_t count = (int32_t)(((uint32_t)b[57] << 24) | ((uint32_t)b[58] << 16) |
                                      ((uint32_t)b[59] << 8) | b[60]);
            for (int32_t i = 0; i < count; i++) {
                int64_t rlen, tsd, offd;
                if (rd_varlong(b, blen, &rp, &rlen) || rlen < 0 || (size_t)rlen > blen - rp) break;
                size_t next = rp + (size_t)rlen;
                rp++; /* attributes */
                if (rd_varlong(b, blen, &rp, &tsd) || rd_varlong(b, blen, &rp, &offd)) break;
                if (base_ts + tsd >= ts) {
                    *offset = base + offd;
                    *ts_out = base_ts + tsd;
                    pl->buffer_free(d);
                    return;
                }
                rp = next;
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

/* Any thread: resolves one partition (offset_for_time may hit the bucket,
 * so timestamps >= 0 run on cold_pool). */
static void lo_resolve(const tsp_plugin *pl, lo_part *lp)
{
    if (lp->error || !lp->p) return;
    tsp_offsets off = {.struct_size = sizeof off};
    tsp_status st = pl->offsets(lp->p->h, &off);
    if (st != TSP_OK) {
        lp->error = kafka_error_from_status(st);
        return;
    }
    lp->ts_out = -1;
    if (lp->timestamp == -1) {
        lp->offset = off.log_end_offset;
    } else if (lp->timestamp == -2) {
        lp->offset = off.log_start_offset;
    } else if (lp->timestamp < 0) {
        lp->error = KAFKA_UNSUPPORTED_VERSION; /* -3 max timestamp: not served */
    } else {
        char err[256];
        int64_t o = -1;
        st = pl->offset_for_time(lp->p->h, lp->timestamp, &o, err, sizeof err);
        if (st == TSP_E_NOT_FOUND) {
            lp->offset = -1;
        } else if (st != TSP_OK) {
            lp->error = kafka_error_from_status(st);
            blog_warn("ListOffsets by time %lld: %s", (long long)lp->timestamp, err);
        } else {
            lp->offset = o;
            lp->ts_out = lp->timestamp;
            refine_offset_for_time(pl, lp->p->h, lp->timestamp, &lp->offset, &lp->ts_out);
        }
    }
}

static void lo_run(bjob *j)
{
    lo_op *o = (lo_op *)j;
    for (int i = 0; i < o->ntopics; i++)
        for (int k = 0; k < o->topics[i].n; k++) lo_resolve(o->b->pl, &o->topics[i].ps[k]);
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
            if (v >= 4) kw_i32(&w, lp->error ? -1 : 0); /* LeaderEpoch */
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
    int by_time = 0;
    if (!o) goto oom;
    o->b = b;
    o->r = *r;
    r->c = NULL;
    o->topics = calloc((size_t)(lq->ntopics ? lq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) goto oom;
    o->ntopics = lq->ntopics;
    for (int32_t i = 0; i < lq->ntopics; i++) {
        o->topics[i].name = strdup(lq->topics[i].name);
        o->topics[i].n = lq->topics[i].npartitions;
        o->topics[i].ps = calloc((size_t)(o->topics[i].n ? o->topics[i].n : 1), sizeof(lo_part));
        if (!o->topics[i].name || !o->topics[i].ps) goto oom;
        for (int k = 0; k < o->topics[i].n; k++) {
            lo_part *lp = &o->topics[i].ps[k];
            lp->partition = lq->topics[i].partitions[k].partition_index;
            lp->timestamp = lq->topics[i].partitions[k].timestamp;
            lp->p = topic_part(b, o->topics[i].name, lp->partition, &lp->error);
            if (lp->timestamp >= 0) by_time = 1;
        }
    }
    if (by_time) {
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

void handle_CreateTopics(broker *b, reply *r, kafka_request *q)
{
    kafka_CreateTopicsRequest *cq = &q->u.create_topics;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    if (v >= 2) kw_i32(&w, 0);
    kw_array(&w, f, cq->ntopics);
    for (int32_t i = 0; i < cq->ntopics; i++) {
        kafka_CreatableTopic *t = &cq->topics[i];
        char msg[512] = "";
        int rc;
        if (t->replication_factor != -1 && t->replication_factor != 1) {
            snprintf(msg, sizeof msg, "replication factor %d: this single-node broker has 1",
                     t->replication_factor);
            rc = KAFKA_INVALID_REPLICATION_FACTOR;
        } else if (t->nassignments > 0) {
            snprintf(msg, sizeof msg, "manual replica assignments are not supported");
            rc = KAFKA_INVALID_REQUEST;
        } else {
            bprop cfg[64];
            size_t n = 0;
            for (int32_t k = 0; k < t->nconfigs && n < 64; k++) {
                cfg[n].key = (char *)t->configs[k].name;
                cfg[n].value = (char *)(t->configs[k].value ? t->configs[k].value : "");
                n++;
            }
            rc = topic_create(b, t->name, t->num_partitions, cfg, n, cq->validate_only, msg,
                              sizeof msg);
        }
        btopic *bt = rc == KAFKA_NONE ? topic_find(b, t->name) : NULL;
        kw_str(&w, f, t->name);
        kw_i16(&w, (int16_t)rc);
        if (v >= 1) kw_str(&w, f, rc ? msg : NULL);
        if (v >= 5) {
            kw_i32(&w, bt ? bt->npartitions : (rc ? -1 : t->num_partitions));
            kw_i16(&w, rc ? -1 : 1);
            kw_array(&w, f, -1); /* Configs */
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

void handle_DeleteTopics(broker *b, reply *r, kafka_request *q)
{
    kafka_DeleteTopicsRequest *dq = &q->u.delete_topics;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_array(&w, f, dq->ntopics);
    for (int32_t i = 0; i < dq->ntopics; i++) {
        char msg[512];
        int rc = topic_delete(b, dq->topic_names[i], msg, sizeof msg);
        kw_str(&w, f, dq->topic_names[i]);
        kw_i16(&w, (int16_t)rc);
        if (v >= 5) kw_str(&w, f, rc ? msg : NULL);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

/* -------------------------------------------------------- InitProducerId */

void handle_InitProducerId(broker *b, reply *r, kafka_request *q)
{
    kafka_InitProducerIdRequest *iq = &q->u.init_producer_id;
    int f = r->hdr.flexible;
    int16_t err = KAFKA_NONE;
    int64_t pid = -1;
    int16_t epoch = -1;
    if (iq->transactional_id) {
        err = KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* no transactions here */
    } else if (iq->producer_id >= 0) {
        /* Bumping the epoch of a known id (KIP-360). */
        pid = iq->producer_id;
        epoch = (int16_t)(iq->producer_epoch + 1);
    } else {
        pid = b->next_producer_id++;
        epoch = 0;
    }
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0);
    kw_i16(&w, err);
    kw_i64(&w, pid);
    kw_i16(&w, epoch);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}
