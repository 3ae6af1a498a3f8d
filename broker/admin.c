/*
 * admin.c — the admin HTTP listener: GET /metrics (Prometheus text),
 * /healthz, /readyz and /v1/partitions/<topic>/<partition> (placement and
 * upload status as JSON, the fields of `tierctl placement --json`).
 *
 * HTTP is libmicrohttpd's (Debian libmicrohttpd-dev), on its own threads:
 * one polling thread plus one thread per admin connection (at most
 * ADMIN_MAX_CONNS, each timed out after ADMIN_CONN_TIMEOUT_S idle), so a
 * slow or stuck admin client holds one of those threads, never the network
 * loop nor another admin client.
 *
 * Synchronization with the loop: every structure of broker.h belongs to the
 * network loop, so a handler never reads it. It posts a snapshot request
 * (net_post: the loop's completion queue and eventfd) and waits, bounded by
 * ADMIN_LOOP_WAIT_MS, for the loop to fill it: a copy of the broker's
 * metrics, readiness, and the (topic, partition, handle) list. So that the
 * handles stay valid while the handler calls the plugin with them (the
 * plugin's stats and placement are thread-safe and may block on disk), the
 * loop counts the snapshot in jobs_inflight, which holds off the reaping
 * (partition_delete) of a topic deleted meanwhile, exactly as for a pool
 * job; a second post releases it. A lock shared with the loop would instead
 * let a slow handler stall the loop; atomics alone could not keep handles
 * alive. A loop that does not answer in time is itself the answer: /readyz
 * says so and /metrics fails with 503.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "broker.h"
#include "prom.h"

#define ADMIN_MAX_CONNS 16
#define ADMIN_CONN_TIMEOUT_S 10
#define ADMIN_LOOP_WAIT_MS 2000
#define ADMIN_MAX_BODY (16u << 20) /* bounded responses: 503 past it */

const double bmetrics_bounds[BMETRICS_NBOUNDS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                  5,      10,    30,     60};

void bmetrics_observe(bmetrics_hist *h, double seconds)
{
    if (seconds < 0) seconds = 0;
    size_t i = 0;
    while (i < BMETRICS_NBOUNDS && seconds > bmetrics_bounds[i]) i++;
    h->counts[i]++;
    h->sum += seconds;
}

struct badmin {
    struct MHD_Daemon *d;
    broker *b;
    pthread_mutex_t mu; /* snapshot states and the condition below */
    pthread_cond_t cv;
};

typedef struct snap_part {
    char topic[TS_TOPIC_NAME_LEN_MAX + 1];
    int32_t partition;
    tsp_partition *h;
} snap_part;

enum { SNAP_PENDING, SNAP_FILLED, SNAP_ABANDONED };

/* One round trip. job first: the loop gets it back as a bjob. */
typedef struct snap {
    bjob job;
    struct badmin *a;
    int state;            /* a->mu */
    int want_all;         /* every partition; else only want_topic/want_part */
    char want_topic[TS_TOPIC_NAME_LEN_MAX + 1];
    int32_t want_part;
    int topic_known;      /* want_topic is registered */
    bmetrics m;
    snap_part *parts;
    size_t nparts;
    int held;             /* counted in jobs_inflight: release when done */
    int ready;
    char not_ready[256];
} snap;

static void snap_free(snap *s)
{
    if (!s) return;
    free(s->parts);
    free(s);
}

/* Loop thread: fills the snapshot (or frees it when its handler gave up).
 * a->mu is held throughout, so a handler cannot give up half way (which
 * would leave jobs_inflight counted forever); filling touches memory only,
 * and handlers hold a->mu only to test and set the state. */
static void snap_fill(bjob *j)
{
    snap *s = (snap *)j;
    broker *b = s->a->b;
    pthread_mutex_lock(&s->a->mu);
    if (s->state == SNAP_ABANDONED) {
        pthread_mutex_unlock(&s->a->mu);
        snap_free(s);
        return;
    }
    s->m = b->metrics;
    size_t n = 0, unopened = 0;
    for (btopic *t = b->topics; t; t = t->next)
        for (int32_t i = 0; i < t->npartitions; i++) n++;
    s->parts = calloc(n ? n : 1, sizeof(*s->parts));
    for (btopic *t = b->topics; t && s->parts; t = t->next) {
        int match = s->want_all || !strcmp(s->want_topic, t->name);
        if (match && !s->want_all) s->topic_known = 1;
        for (int32_t i = 0; i < t->npartitions; i++) {
            const bpart *bp = topic_part_at(t, i);
            if (!bp || !bp->h) {
                if (cluster_holds(b, t->name, bp ? bp->index : (int32_t)i)) unopened++;
                continue;
            }
            if (!match || (!s->want_all && bp->index != s->want_part)) continue;
            snap_part *p = &s->parts[s->nparts++];
            snprintf(p->topic, sizeof p->topic, "%s", t->name);
            p->partition = bp->index;
            p->h = bp->h;
        }
    }
    /* Ready: the listeners are up and the loop runs (it answered), in a
     * cluster the broker is registered, and every registered partition it
     * holds (those opened at startup among them) is open. */
    if (!b->serving || b->nlisteners == 0)
        snprintf(s->not_ready, sizeof s->not_ready, "Kafka listeners are not up");
    else if (b->cluster && !cluster_is_registered(b))
        snprintf(s->not_ready, sizeof s->not_ready,
                 "not registered in the cluster (no live etcd lease)");
    else if (unopened)
        snprintf(s->not_ready, sizeof s->not_ready, "%zu partition(s) not open", unopened);
    else if (!s->parts && n)
        snprintf(s->not_ready, sizeof s->not_ready, "out of memory");
    else
        s->ready = 1;
    if (s->nparts) {
        b->jobs_inflight++;
        s->held = 1;
    }
    s->state = SNAP_FILLED;
    pthread_cond_broadcast(&s->a->cv);
    pthread_mutex_unlock(&s->a->mu);
}

/* Loop thread: the handler is done with the snapshot's handles. */
static void snap_release(bjob *j)
{
    snap *s = (snap *)j;
    s->a->b->jobs_inflight--;
    snap_free(s);
}

/* Handler thread: NULL when the loop did not answer in time. topic NULL:
 * every partition; "" none (readiness and broker metrics only). */
static snap *snap_take(struct badmin *a, const char *topic, int32_t part)
{
    snap *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->a = a;
    s->job.done = snap_fill;
    s->want_all = topic == NULL;
    snprintf(s->want_topic, sizeof s->want_topic, "%s", topic ? topic : "");
    s->want_part = part;
    net_post(a->b, &s->job);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ADMIN_LOOP_WAIT_MS / 1000;
    dl.tv_nsec += (long)(ADMIN_LOOP_WAIT_MS % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (s->state == SNAP_PENDING)
        if (pthread_cond_timedwait(&a->cv, &a->mu, &dl) == ETIMEDOUT) break;
    if (s->state == SNAP_PENDING) {
        s->state = SNAP_ABANDONED; /* the loop frees it when it gets there */
        pthread_mutex_unlock(&a->mu);
        return NULL;
    }
    pthread_mutex_unlock(&a->mu);
    return s;
}

/* Handler thread: gives the snapshot back (its handles to the loop). */
static void snap_done(struct badmin *a, snap *s)
{
    if (!s) return;
    if (!s->held) {
        snap_free(s);
        return;
    }
    s->job.done = snap_release;
    net_post(a->b, &s->job);
}

/* ------------------------------------------------------------ responses */

static enum MHD_Result respond(struct MHD_Connection *hc, unsigned status, const char *type,
                               char *body, size_t len, int owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(hc, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *hc, unsigned status, const char *fmt,
                                    const char *arg)
{
    char buf[512];
    snprintf(buf, sizeof buf, fmt, arg);
    return respond(hc, status, "text/plain; charset=utf-8", buf, strlen(buf), 0);
}

/* -------------------------------------------------------------- /metrics */

typedef struct fam {
    const char *name, *type, *help;
} fam;

/* Per-partition families, in the order of fam_values below. */
static const fam g_part_fams[] = {
    {"tierstore_remote_copy_bytes_total", "counter",
     "Stored bytes of segment objects this partition committed to the object store."},
    {"tierstore_remote_copy_requests_total", "counter", "Segment upload attempts."},
    {"tierstore_remote_copy_errors_total", "counter", "Segment upload attempts that failed."},
    {"tierstore_remote_fetch_bytes_total", "counter", "Bytes returned by reads of remote data."},
    {"tierstore_remote_fetch_requests_total", "counter", "Reads served from remote data."},
    {"tierstore_remote_fetch_errors_total", "counter", "Reads of remote data that failed."},
    {"tierstore_remote_copy_lag_bytes", "gauge", "Bytes of closed segments not yet uploaded."},
    {"tierstore_remote_copy_lag_segments", "gauge", "Closed segments not yet uploaded."},
    {"tierstore_remote_delete_lag_bytes", "gauge",
     "Stored bytes of remote segments below the log start, not yet deleted."},
    {"tierstore_remote_delete_lag_segments", "gauge",
     "Remote segments below the log start, not yet deleted."},
    {"tierstore_remote_log_size_bytes", "gauge", "Stored bytes of the partition's remote segments."},
    {"tierstore_remote_log_segments", "gauge", "Remote segments of the partition."},
    {"tierstore_local_log_size_bytes", "gauge", "Bytes of the partition's segments on local disk."},
    {"tierstore_local_log_segments", "gauge", "Segments of the partition on local disk."},
};
#define NPART_FAMS (sizeof g_part_fams / sizeof g_part_fams[0])

static void fam_values(const tsp_partition_stats *st, double *v)
{
    const uint64_t u[NPART_FAMS] = {
        st->remote_copy_bytes,       st->remote_copy_requests,       st->remote_copy_errors,
        st->remote_fetch_bytes,      st->remote_fetch_requests,      st->remote_fetch_errors,
        st->remote_copy_lag_bytes,   st->remote_copy_lag_segments,   st->remote_delete_lag_bytes,
        st->remote_delete_lag_segments, st->remote_log_bytes,         st->remote_segments,
        st->local_log_bytes,         st->local_segments};
    for (size_t i = 0; i < NPART_FAMS; i++) v[i] = (double)u[i];
}

static void write_engine(bprom *w, const broker *b)
{
    tsp_engine_stats es;
    memset(&es, 0, sizeof es);
    es.struct_size = sizeof es;
    b->pl->engine_stats(b->eng, &es);
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } g[] = {
        {"tierstore_chunk_cache_hits_total", "counter", "Chunk cache lookups served locally.",
         offsetof(tsp_engine_stats, cache_hits)},
        {"tierstore_chunk_cache_misses_total", "counter",
         "Chunk cache lookups that fetched from the object store.",
         offsetof(tsp_engine_stats, cache_misses)},
        {"tierstore_chunk_cache_evictions_total", "counter", "Chunks evicted from the cache.",
         offsetof(tsp_engine_stats, cache_evictions)},
        {"tierstore_chunk_cache_size_bytes", "gauge", "Bytes of the chunk cache on local disk.",
         offsetof(tsp_engine_stats, cache_bytes)},
        {"tierstore_local_disk_bytes", "gauge", "Segment and index bytes on local disk.",
         offsetof(tsp_engine_stats, local_bytes)},
        {"tierstore_remote_stored_bytes", "gauge",
         "Stored bytes of every committed remote segment.",
         offsetof(tsp_engine_stats, remote_bytes)},
        {"tierstore_objstore_put_bytes_total", "counter",
         "Payload bytes sent to the object store (the cost model's ingress).",
         offsetof(tsp_engine_stats, objstore_bytes_put)},
        {"tierstore_objstore_get_bytes_total", "counter",
         "Payload bytes read from the object store (the cost model's egress).",
         offsetof(tsp_engine_stats, objstore_bytes_got)},
    };
    int minor1 = b->pl->abi_minor >= 1;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        if (!minor1 && g[i].off >= offsetof(tsp_engine_stats, cache_evictions)) continue;
        bprom_family(w, g[i].name, g[i].type, g[i].help);
        uint64_t v;
        memcpy(&v, (const char *)&es + g[i].off, sizeof v);
        bprom_sample(w, g[i].name, NULL, 0, (double)v);
    }
    if (!minor1) return;
    static const char *ops[] = {"put", "get", "list", "delete", "head"};
    static const char *outs[] = {"ok", "notfound", "error"};
    bprom_family(w, "tierstore_objstore_requests_total", "counter",
                 "Object-store requests by operation and outcome.");
    for (int op = 0; op < 5; op++)
        for (int o = 0; o < 3; o++) {
            bprom_label l[2] = {{"op", ops[op]}, {"outcome", outs[o]}};
            bprom_sample(w, "tierstore_objstore_requests_total", l, 2,
                         (double)es.objstore_requests[op][o]);
        }
}

static void write_broker(bprom *w, const bmetrics *m)
{
    char key[16];
    bprom_family(w, "tierstore_kafka_requests_total", "counter", "Kafka requests read, by API.");
    for (int k = 0; k < BMETRICS_NAPIS; k++) {
        if (!m->requests[k]) continue;
        const char *name = kafka_api_name((int16_t)k);
        if (!strcmp(name, "Unknown")) snprintf(key, sizeof key, "key%d", k), name = key;
        bprom_label l = {"api", name};
        bprom_sample(w, "tierstore_kafka_requests_total", &l, 1, (double)m->requests[k]);
    }
    bprom_family(w, "tierstore_kafka_request_duration_seconds", "histogram",
                 "Time from a request read to its response queued (or dropped), by API.");
    for (int k = 0; k < BMETRICS_NAPIS; k++) {
        if (!m->requests[k]) continue;
        const char *name = kafka_api_name((int16_t)k);
        if (!strcmp(name, "Unknown")) snprintf(key, sizeof key, "key%d", k), name = key;
        bprom_label l = {"api", name};
        bprom_histogram(w, "tierstore_kafka_request_duration_seconds", &l, 1, bmetrics_bounds,
                        m->latency[k].counts, BMETRICS_NBOUNDS, m->latency[k].sum);
    }
    bprom_family(w, "tierstore_connections", "gauge", "Open Kafka client connections.");
    bprom_sample(w, "tierstore_connections", NULL, 0, (double)m->conns_open);
    bprom_family(w, "tierstore_connections_accepted_total", "counter",
                 "Kafka client connections accepted.");
    bprom_sample(w, "tierstore_connections_accepted_total", NULL, 0, (double)m->conns_accepted);
    bprom_family(w, "tierstore_produce_throttle_seconds", "histogram",
                 "How long Produce requests were held on backpressure (local disk bound).");
    bprom_histogram(w, "tierstore_produce_throttle_seconds", NULL, 0, bmetrics_bounds,
                    m->throttle.counts, BMETRICS_NBOUNDS, m->throttle.sum);
}

static enum MHD_Result serve_metrics(struct badmin *a, struct MHD_Connection *hc)
{
    snap *s = snap_take(a, NULL, 0);
    if (!s)
        return respond_text(hc, MHD_HTTP_SERVICE_UNAVAILABLE, "%s\n",
                            "the network loop did not answer in time");
    const broker *b = a->b;
    int has_pstats = TSP_HAS(b->pl, partition_stats);
    double *vals = calloc(s->nparts ? s->nparts : 1, NPART_FAMS * sizeof(double));
    char *ok = calloc(s->nparts ? s->nparts : 1, 1);
    for (size_t i = 0; vals && ok && has_pstats && i < s->nparts; i++) {
        tsp_partition_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        char err[256];
        if (b->pl->partition_stats(s->parts[i].h, &st, err, sizeof err) != TSP_OK) continue;
        fam_values(&st, vals + i * NPART_FAMS);
        ok[i] = 1;
    }
    bprom w;
    bprom_init(&w, ADMIN_MAX_BODY);
    for (size_t f = 0; vals && ok && has_pstats && f < NPART_FAMS; f++) {
        bprom_family(&w, g_part_fams[f].name, g_part_fams[f].type, g_part_fams[f].help);
        for (size_t i = 0; i < s->nparts; i++) {
            if (!ok[i]) continue;
            char pn[16];
            snprintf(pn, sizeof pn, "%d", s->parts[i].partition);
            bprom_label l[2] = {{"topic", s->parts[i].topic}, {"partition", pn}};
            bprom_sample(&w, g_part_fams[f].name, l, 2, vals[i * NPART_FAMS + f]);
        }
    }
    free(vals);
    free(ok);
    write_engine(&w, b);
    write_broker(&w, &s->m);
    snap_done(a, s);
    if (w.err) {
        bprom_free(&w);
        return respond_text(hc, MHD_HTTP_SERVICE_UNAVAILABLE, "%s\n",
                            "metrics exceed the response bound");
    }
    char *body = w.d ? w.d : strdup("");
    return respond(hc, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, w.len, 1);
}

/* ---------------------------------------------------- /v1/partitions/... */

static const char *loc_name(int32_t loc)
{
    switch (loc) {
    case TSP_LOC_LOCAL: return "local";
    case TSP_LOC_REMOTE: return "remote";
    case TSP_LOC_LOCAL_REMOTE: return "local+remote";
    case TSP_LOC_MISSING: return "missing";
    }
    return "unknown";
}

static enum MHD_Result json_error(struct MHD_Connection *hc, unsigned status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return MHD_NO;
    return respond(hc, status, "application/json", txt, strlen(txt), 1);
}

/* The segment rows carry tierctl placement --json's fields and names. */
static cJSON *partition_json(const broker *b, const snap_part *p, char *err, size_t errlen,
                             tsp_status *stp)
{
    tsp_segment_info *rows = NULL;
    size_t n = 0, rs = 0;
    tsp_status st = b->pl->placement(p->h, &rows, &n, &rs, err, errlen);
    tsp_offsets off = {.struct_size = sizeof off};
    if (st == TSP_OK) st = b->pl->offsets(p->h, &off);
    tsp_partition_stats ps;
    memset(&ps, 0, sizeof ps);
    ps.struct_size = sizeof ps;
    int has_stats = TSP_HAS(b->pl, partition_stats);
    if (st == TSP_OK && has_stats) st = b->pl->partition_stats(p->h, &ps, err, errlen);
    *stp = st;
    if (st != TSP_OK) {
        b->pl->buffer_free(rows);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", p->topic);
    cJSON_AddNumberToObject(o, "partition", p->partition);
    cJSON_AddNumberToObject(o, "log_start_offset", (double)off.log_start_offset);
    cJSON_AddNumberToObject(o, "local_start_offset", (double)off.local_start_offset);
    cJSON_AddNumberToObject(o, "log_end_offset", (double)off.log_end_offset);
    if (has_stats) {
        cJSON *u = cJSON_AddObjectToObject(o, "upload");
        cJSON_AddNumberToObject(u, "copy_lag_bytes", (double)ps.remote_copy_lag_bytes);
        cJSON_AddNumberToObject(u, "copy_lag_segments", (double)ps.remote_copy_lag_segments);
        cJSON_AddNumberToObject(u, "copied_bytes", (double)ps.remote_copy_bytes);
        cJSON_AddNumberToObject(u, "copy_requests", (double)ps.remote_copy_requests);
        cJSON_AddNumberToObject(u, "copy_errors", (double)ps.remote_copy_errors);
        cJSON_AddNumberToObject(u, "remote_log_bytes", (double)ps.remote_log_bytes);
        cJSON_AddNumberToObject(u, "local_log_bytes", (double)ps.local_log_bytes);
    }
    cJSON *arr = cJSON_AddArrayToObject(o, "segments");
    for (size_t i = 0; i < n; i++) {
        const tsp_segment_info *s = (const tsp_segment_info *)((const char *)rows + i * rs);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "partition", s->partition);
        cJSON_AddNumberToObject(r, "base_offset", (double)s->base_offset);
        cJSON_AddNumberToObject(r, "last_offset", (double)s->last_offset);
        cJSON_AddNumberToObject(r, "first_timestamp", (double)s->first_timestamp);
        cJSON_AddNumberToObject(r, "max_timestamp", (double)s->max_timestamp);
        cJSON_AddNumberToObject(r, "size_bytes", (double)s->size_bytes);
        cJSON_AddNumberToObject(r, "stored_bytes", (double)s->stored_bytes);
        cJSON_AddStringToObject(r, "location", loc_name(s->location));
        if (s->object_key[0]) cJSON_AddStringToObject(r, "object_key", s->object_key);
        else cJSON_AddNullToObject(r, "object_key");
        cJSON_AddBoolToObject(r, "active", s->active);
        cJSON_AddItemToArray(arr, r);
    }
    b->pl->buffer_free(rows);
    return o;
}

static enum MHD_Result serve_partition(struct badmin *a, struct MHD_Connection *hc,
                                       const char *rest)
{
    char topic[TS_TOPIC_NAME_LEN_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t tl = slash ? (size_t)(slash - rest) : 0;
    if (!slash || tl == 0 || tl > TS_TOPIC_NAME_LEN_MAX)
        return json_error(hc, MHD_HTTP_NOT_FOUND, "expected /v1/partitions/<topic>/<partition>");
    memcpy(topic, rest, tl);
    topic[tl] = 0;
    char *end = NULL;
    errno = 0;
    long part = strtol(slash + 1, &end, 10);
    if (!ts_topic_name_valid(topic) || !slash[1] || *end || errno || part < 0 || part > INT32_MAX)
        return json_error(hc, MHD_HTTP_NOT_FOUND, "no such topic or partition");
    snap *s = snap_take(a, topic, (int32_t)part);
    if (!s)
        return json_error(hc, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "the network loop did not answer in time");
    if (s->nparts == 0) {
        int known = s->topic_known;
        snap_done(a, s);
        return json_error(hc, MHD_HTTP_NOT_FOUND,
                          known ? "no such partition of this topic" : "unknown topic");
    }
    char err[512] = "";
    tsp_status st;
    cJSON *o = partition_json(a->b, &s->parts[0], err, sizeof err, &st);
    snap_done(a, s);
    if (!o) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", a->b->pl->status_name(st), err);
        return json_error(hc, MHD_HTTP_INTERNAL_SERVER_ERROR, msg);
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return json_error(hc, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    size_t len = strlen(txt);
    if (len > ADMIN_MAX_BODY) {
        free(txt);
        return json_error(hc, MHD_HTTP_SERVICE_UNAVAILABLE, "placement exceeds the response bound");
    }
    return respond(hc, MHD_HTTP_OK, "application/json", txt, len, 1);
}

/* ---------------------------------------------------------------- routing */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *hc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    static int g_started;
    struct badmin *a = cls;
    (void)version;
    (void)upload_data;
    if (!*con_cls) { /* headers only: answer once the body (if any) is in */
        *con_cls = &g_started;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a body we do not want: discard it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    int known = !strcmp(url, "/metrics") || !strcmp(url, "/healthz") ||
                !strcmp(url, "/readyz") || !strncmp(url, "/v1/partitions/", 15);
    if (!known) return respond_text(hc, MHD_HTTP_NOT_FOUND, "no such path: %s\n", url);
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return respond_text(hc, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed: GET only\n",
                            method);
    if (!strcmp(url, "/healthz")) return respond_text(hc, MHD_HTTP_OK, "%s\n", "ok");
    if (!strcmp(url, "/readyz")) {
        snap *s = snap_take(a, "", -1); /* no topic is named "": no handles */
        if (!s)
            return respond_text(hc, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: %s\n",
                                "the network loop did not answer in time");
        char why[sizeof s->not_ready];
        int ready = s->ready;
        snprintf(why, sizeof why, "%s", s->not_ready);
        snap_done(a, s);
        return ready ? respond_text(hc, MHD_HTTP_OK, "%s\n", "ready")
                     : respond_text(hc, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: %s\n", why);
    }
    if (!strcmp(url, "/metrics")) return serve_metrics(a, hc);
    return serve_partition(a, hc, url + 15);
}

/* "http://host:port" -> a socket address. */
static int parse_admin_url(const char *url, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                           size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "admin.listeners: '%s' is not http://host:port", url);
        return -1;
    }
    const char *hp = url + 7;
    const char *colon = strrchr(hp, ':');
    char host[256];
    if (!colon || (size_t)(colon - hp) >= sizeof host || !colon[1]) {
        snprintf(err, errlen, "admin.listeners: '%s' is not http://host:port", url);
        return -1;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = 0;
    if (host[0] == '[') {
        size_t l = strlen(host);
        if (l < 2 || host[l - 1] != ']') {
            snprintf(err, errlen, "admin.listeners: bad IPv6 host in '%s'", url);
            return -1;
        }
        memmove(host, host + 1, l - 2);
        host[l - 2] = 0;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "admin.listeners: bad port in '%s'", url);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "admin.listeners: cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* libmicrohttpd's messages (mostly clients that went away mid-request) go to
 * the broker's log at debug level: a client must not be able to flood it. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    blog_debug("admin HTTP: %s", buf);
}

int badmin_start(broker *b, char *err, size_t errlen)
{
    const char *url = bconfig_get(&b->cfg, "admin.listeners");
    if (!url || !*url) return 0;
    if (strchr(url, ',')) {
        snprintf(err, errlen, "admin.listeners: one http://host:port only ('%s')", url);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (parse_admin_url(url, &ss, &sl, err, errlen) != 0) return -1;
    struct badmin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "admin.listeners: out of memory");
        return -1;
    }
    a->b = b;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    a->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)ADMIN_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)ADMIN_CONN_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                            NULL, MHD_OPTION_END);
    if (!a->d) {
        snprintf(err, errlen,
                 "admin.listeners: cannot listen on %s: %s (is another broker running?)", url,
                 strerror(errno));
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
        return -1;
    }
    b->admin = a;
    blog_info("admin HTTP listener on %s", url);
    return 0;
}

void badmin_stop(broker *b)
{
    struct badmin *a = b->admin;
    if (!a) return;
    MHD_stop_daemon(a->d); /* joins every handler */
    /* Snapshots still queued (abandoned ones, releases) point at a: run them
     * now, on this thread, which is the loop's once net_run returned. */
    net_drain(b);
    b->admin = NULL;
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
