/*
 * admin_api.c — the Kafka admin APIs that look at groups and at the broker:
 * ListGroups, DescribeGroups, DeleteGroups, OffsetDelete, DescribeCluster,
 * DescribeLogDirs.
 *
 * Groups are the coordinator's (group.c), read through group_view and
 * member_view. The two deleting APIs follow Kafka's GroupCoordinator:
 * DeleteGroups removes only an Empty group (NON_EMPTY_GROUP while it has
 * members, GROUP_ID_NOT_FOUND when there is none), OffsetDelete removes any
 * offset of an Empty group and, while a "consumer" group has members, only
 * those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC; a
 * subscription that cannot be read counts as subscribed to everything, as
 * Kafka's unknown subscription does). Both are applied in memory first and
 * answered once their delete records are in the offsets log and fsynced
 * (meta_log_offsets), so a group or offset they deleted stays deleted after
 * a restart. A group left with neither members nor offsets is removed, as
 * Kafka moves it to Dead.
 *
 * DescribeLogDirs reads every partition's statistics through the plugin
 * (partition_stats reads the placement), so it runs on the io pool; the rest
 * answers on the loop from memory. There is one log dir: log.dirs.
 *
 * Thread: loop thread, except ld_run (io pool, touches only its job).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "broker.h"

#define TS_MIN_INT32 (-2147483647 - 1)

/* AuthorizedOperations without an authorizer: every operation Kafka's ACLs
 * know for the resource (AclOperation codes as bits) that this broker
 * serves: a group READ (3), DELETE (6), DESCRIBE (8); the cluster CREATE
 * (5), ALTER (7), DESCRIBE (8), CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10),
 * ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12). */
#define GROUP_AUTHORIZED_OPS ((1 << 3) | (1 << 6) | (1 << 8))
#define CLUSTER_AUTHORIZED_OPS                                                                   \
    ((1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12))

/* ------------------------------------------------------------ ListGroups */

/* StatesFilter (v4+): Kafka's state names, compared case-insensitively as
 * the KIP-848 coordinator does; empty = every group. */
static int group_listed(const group_info *gi, const kafka_ListGroupsRequest *lq)
{
    if (lq->nstates <= 0) return 1;
    for (int32_t i = 0; i < lq->nstates; i++)
        if (!strcasecmp(lq->states_filter[i], gi->state)) return 1;
    return 0;
}

void handle_ListGroups(broker *b, reply *r, kafka_request *q)
{
    const kafka_ListGroupsRequest *lq = &q->u.list_groups;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    int32_t n = 0;
    group_info gi;
    /* DESCRIBE on the cluster lists every group, else those the principal may describe. */
    int all = acl_check_quiet(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, NULL);
#define LISTED(g) (group_listed(&gi, lq) && (all || acl_check_quiet(b, r, ACL_OP_DESCRIBE, \
                                                                   ACL_RES_GROUP, group_id(g))))
    for (bgroup *g = group_first(b); g; g = group_next(g)) {
        group_view(g, &gi);
        n += LISTED(g);
    }
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_i16(&w, KAFKA_NONE);
    kw_array(&w, f, n);
    for (bgroup *g = group_first(b); g; g = group_next(g)) {
        group_view(g, &gi);
        if (!LISTED(g)) continue;
        kw_str(&w, f, group_id(g));
        kw_str(&w, f, gi.protocol_type);
        if (v >= 4) kw_str(&w, f, gi.state);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
#undef LISTED
}

/* -------------------------------------------------------- DescribeGroups */

/* One DescribedGroup. A group the coordinator does not know is "Dead" with
 * no error (Kafka's answer up to v5). Metadata, assignments and the
 * protocol are shown only while the group is Stable, as Kafka does. */
static void describe_one(kw *w, int v, int f, bgroup *g, const char *id, int16_t err,
                         int32_t ops)
{
    group_info gi = {.state = "Dead", .protocol_type = "", .protocol_name = ""};
    if (err) g = NULL;
    if (g) group_view(g, &gi);
    kw_i16(w, err);
    kw_str(w, f, id);
    kw_str(w, f, gi.state);
    kw_str(w, f, gi.protocol_type);
    kw_str(w, f, gi.stable ? gi.protocol_name : "");
    kw_array(w, f, gi.nmembers);
    for (bmember *m = g ? group_members(g) : NULL; m; m = member_next(m)) {
        member_info mi;
        member_view(g, m, &mi);
        kw_str(w, f, mi.member_id);
        if (v >= 4) kw_str(w, f, NULL); /* GroupInstanceId: no static members */
        kw_str(w, f, mi.client_id);
        kw_str(w, f, mi.client_host);
        kw_bytes(w, f, mi.metadata, gi.stable && mi.metadata ? mi.metadata_len : 0);
        kw_bytes(w, f, mi.assignment, gi.stable && mi.assignment ? mi.assignment_len : 0);
        kw_tags(w, f);
    }
    if (v >= 3) kw_i32(w, ops);
    kw_tags(w, f);
}

void handle_DescribeGroups(broker *b, reply *r, kafka_request *q)
{
    const kafka_DescribeGroupsRequest *dq = &q->u.describe_groups;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_array(&w, f, dq->ngroups);
    for (int32_t i = 0; i < dq->ngroups; i++) {
        const char *id = dq->groups[i];
        int16_t err = acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, id)
                          ? KAFKA_NONE
                          : KAFKA_GROUP_AUTHORIZATION_FAILED;
        int32_t ops = dq->include_authorized_operations && !err
                          ? acl_authorized_ops(b, r, ACL_RES_GROUP, id, GROUP_AUTHORIZED_OPS)
                          : TS_MIN_INT32;
        describe_one(&w, v, f, group_find(b, id, 0), id, err, ops);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

/* ------------------------------------------------ deletions (durable) */

/* The delete records of one request, made durable before it is answered.
 * Strings are owned: the groups they came from may be freed meanwhile. */
typedef struct del_log {
    meta_commit *recs;
    size_t n, cap;
} del_log;

static int del_add(broker *b, del_log *d, const char *group, const char *topic, int32_t partition)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        meta_commit *nr = realloc(d->recs, cap * sizeof(*nr));
        if (!nr) return -1;
        d->recs = nr;
        d->cap = cap;
    }
    char *g = strdup(group), *t = strdup(topic);
    if (!g || !t) {
        free(g);
        free(t);
        return -1;
    }
    d->recs[d->n++] = (meta_commit){.group = g, .topic = t, .partition = partition, .deleted = 1};
    if (b->offsets_live) b->offsets_live--;
    return 0;
}

static void del_free(del_log *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free((char *)d->recs[i].group);
        free((char *)d->recs[i].topic);
    }
    free(d->recs);
    d->recs = NULL;
    d->n = d->cap = 0;
}

/* Logs the deletions (already applied in memory); done runs once durable
 * (ok = 0: the save failed), at once when there is nothing to log. */
static void del_commit(broker *b, del_log *d, meta_done_fn done, void *arg)
{
    if (d->n == 0) {
        done(b, arg, 1);
        return;
    }
    meta_log_offsets(b, d->recs, d->n, done, arg);
    del_free(d); /* encoded by meta_log_offsets already */
}

/* The group loses nothing more to say once it has neither members nor
 * offsets: removed (Kafka: Dead). */
static void group_maybe_drop(broker *b, bgroup *g)
{
    group_info gi;
    group_view(g, &gi);
    if (gi.nmembers == 0 && !group_offsets(g)) group_remove(b, g);
}

/* ---------------------------------------------------------- DeleteGroups */

typedef struct dg_op {
    reply r;
    int32_t n;
    char **ids;
    int16_t *errs;
} dg_op;

static void dg_free(dg_op *o)
{
    for (int32_t i = 0; i < o->n; i++) free(o->ids[i]);
    free(o->ids);
    free(o->errs);
    free(o);
}

static void dg_durable(broker *b, void *arg, int ok)
{
    dg_op *o = arg;
    int f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_array(&w, f, o->n);
    for (int32_t i = 0; i < o->n; i++) {
        kw_str(&w, f, o->ids[i] ? o->ids[i] : "");
        kw_i16(&w, o->errs[i] ? o->errs[i] : (ok ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE));
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
    dg_free(o);
}

/* Deletes one group (its offsets into d); the error for its result. */
static int16_t dg_delete(broker *b, const char *id, del_log *d)
{
    bgroup *g = group_find(b, id, 0);
    if (!g) return KAFKA_GROUP_ID_NOT_FOUND;
    group_info gi;
    group_view(g, &gi);
    if (gi.nmembers > 0) return KAFKA_NON_EMPTY_GROUP;
    for (committed *c = group_offsets(g); c; c = c->next)
        if (del_add(b, d, id, c->topic, c->partition) != 0) return KAFKA_UNKNOWN_SERVER_ERROR;
    group_remove(b, g);
    blog_info("group %s deleted (DeleteGroups)", id);
    return KAFKA_NONE;
}

void handle_DeleteGroups(broker *b, reply *r, kafka_request *q)
{
    const kafka_DeleteGroupsRequest *dq = &q->u.delete_groups;
    dg_op *o = calloc(1, sizeof(*o));
    size_t n = (size_t)(dq->ngroups > 0 ? dq->ngroups : 1);
    if (!o || !(o->ids = calloc(n, sizeof(char *))) || !(o->errs = calloc(n, sizeof(int16_t)))) {
        if (o) dg_free(o);
        reply_drop(b, r);
        return;
    }
    o->r = *r;
    r->c = NULL;
    del_log d = {0};
    for (int32_t i = 0; i < dq->ngroups; i++) {
        o->ids[i] = strdup(dq->groups_names[i]);
        o->n = i + 1;
        if (!o->ids[i])
            o->errs[i] = KAFKA_UNKNOWN_SERVER_ERROR;
        else if (!acl_check(b, &o->r, ACL_OP_DELETE, ACL_RES_GROUP, o->ids[i]))
            o->errs[i] = KAFKA_GROUP_AUTHORIZATION_FAILED;
        else
            o->errs[i] = dg_delete(b, dq->groups_names[i], &d);
    }
    del_commit(b, &d, dg_durable, o);
}

/* ---------------------------------------------------------- OffsetDelete */

typedef struct od_op {
    reply r;
    int16_t err;
    int32_t ntopics;
    struct {
        char *name;
        int32_t n;
        int32_t *parts;
        int16_t *errs;
    } *topics;
} od_op;

static void od_free(od_op *o)
{
    for (int32_t i = 0; i < o->ntopics; i++) {
        free(o->topics[i].name);
        free(o->topics[i].parts);
        free(o->topics[i].errs);
    }
    free(o->topics);
    free(o);
}

static void od_durable(broker *b, void *arg, int ok)
{
    od_op *o = arg;
    kw w;
    reply_begin(&o->r, &w);
    kw_i16(&w, o->err ? o->err : (ok ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE));
    kw_i32(&w, 0); /* ThrottleTimeMs */
    int32_t nt = 0;
    for (int32_t i = 0; i < o->ntopics; i++) nt += o->topics[i].n > 0;
    kw_array(&w, 0, nt);
    for (int32_t i = 0; i < o->ntopics; i++) {
        if (o->topics[i].n == 0) continue;
        kw_str(&w, 0, o->topics[i].name);
        kw_array(&w, 0, o->topics[i].n);
        for (int32_t k = 0; k < o->topics[i].n; k++) {
            kw_i32(&w, o->topics[i].parts[k]);
            kw_i16(&w, o->topics[i].errs[k]);
        }
    }
    reply_end(b, &o->r, &w);
    od_free(o);
}

/* Whether any member of a live "consumer" group subscribes to topic; 1 when
 * a member's subscription cannot be read (unknown = subscribed, as Kafka). */
static int group_subscribes(bgroup *g, const char *topic)
{
    int found = 0;
    karena a;
    karena_init(&a, 1u << 20);
    for (bmember *m = group_members(g); m && !found; m = member_next(m)) {
        member_info mi;
        member_view(g, m, &mi);
        const char **topics;
        int32_t nt;
        if (!mi.metadata || kafka_parse_consumer_subscription(mi.metadata, (size_t)mi.metadata_len,
                                                              &a, &topics, &nt) != 0) {
            found = 1;
            break;
        }
        for (int32_t i = 0; i < nt && !found; i++) found = !strcmp(topics[i], topic);
    }
    karena_free(&a);
    return found;
}

/* The group-level answer (Kafka's GroupCoordinator.handleDeleteOffsets):
 * KAFKA_NONE when offsets may be deleted, per partition then. */
static int16_t od_group_error(bgroup *g, const char *id, int *check_subscribed)
{
    *check_subscribed = 0;
    if (!id[0]) return KAFKA_INVALID_GROUP_ID;
    if (!g) return KAFKA_GROUP_ID_NOT_FOUND;
    group_info gi;
    group_view(g, &gi);
    if (gi.nmembers == 0) return KAFKA_NONE;
    if (strcmp(gi.protocol_type, "consumer")) return KAFKA_NON_EMPTY_GROUP;
    *check_subscribed = 1;
    return KAFKA_NONE;
}

/* One partition: its error; a deleted offset goes into d. */
static int16_t od_partition(broker *b, bgroup *g, const char *group, btopic *t, const char *topic,
                            int32_t partition, int subscribed, del_log *d)
{
    if (!t || partition < 0 || partition >= t->npartitions) return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (subscribed) return KAFKA_GROUP_SUBSCRIBED_TO_TOPIC;
    if (group_delete_offset(g, topic, partition) && del_add(b, d, group, topic, partition) != 0)
        return KAFKA_UNKNOWN_SERVER_ERROR;
    return KAFKA_NONE;
}

static int od_alloc(od_op *o, const kafka_OffsetDeleteRequest *oq)
{
    o->topics = calloc((size_t)(oq->ntopics > 0 ? oq->ntopics : 1), sizeof(*o->topics));
    if (!o->topics) return -1;
    for (int32_t i = 0; i < oq->ntopics; i++) {
        size_t n = (size_t)(oq->topics[i].npartitions > 0 ? oq->topics[i].npartitions : 1);
        o->ntopics = i + 1;
        o->topics[i].name = strdup(oq->topics[i].name);
        o->topics[i].parts = calloc(n, sizeof(int32_t));
        o->topics[i].errs = calloc(n, sizeof(int16_t));
        if (!o->topics[i].name || !o->topics[i].parts || !o->topics[i].errs) return -1;
    }
    return 0;
}

void handle_OffsetDelete(broker *b, reply *r, kafka_request *q)
{
    const kafka_OffsetDeleteRequest *oq = &q->u.offset_delete;
    od_op *o = calloc(1, sizeof(*o));
    if (!o || od_alloc(o, oq) != 0) {
        if (o) od_free(o);
        reply_drop(b, r);
        return;
    }
    o->r = *r;
    r->c = NULL;
    bgroup *g = group_find(b, oq->group_id, 0);
    int check_sub;
    o->err = od_group_error(g, oq->group_id, &check_sub);
    if (!acl_check(b, &o->r, ACL_OP_DELETE, ACL_RES_GROUP, oq->group_id)) {
        o->err = KAFKA_GROUP_AUTHORIZATION_FAILED;
        g = NULL;
    }
    del_log d = {0};
    for (int32_t i = 0; i < oq->ntopics; i++) {
        const char *name = oq->topics[i].name;
        btopic *t = topic_find(b, name); /* the registry: never waits */
        int sub = !o->err && t && check_sub && group_subscribes(g, name);
        int readable = o->err || acl_check(b, &o->r, ACL_OP_READ, ACL_RES_TOPIC, name);
        for (int32_t k = 0; k < oq->topics[i].npartitions; k++) {
            int32_t p = oq->topics[i].partition_indexes[k];
            if (!readable) {
                int32_t at = o->topics[i].n++;
                o->topics[i].parts[at] = p;
                o->topics[i].errs[at] = KAFKA_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            /* Unknown partitions are answered even when the group fails
             * (Kafka checks them before asking the coordinator); the
             * others are left out then, the group's error says it all. */
            if (o->err && t && p >= 0 && p < t->npartitions) continue;
            int32_t at = o->topics[i].n++;
            o->topics[i].parts[at] = p;
            o->topics[i].errs[at] = od_partition(b, g, oq->group_id, t, name, p, sub, &d);
        }
    }
    if (!o->err && g) group_maybe_drop(b, g);
    if (d.n) blog_info("group %s: %zu committed offsets deleted (OffsetDelete)", oq->group_id, d.n);
    del_commit(b, &d, od_durable, o);
}

/* ------------------------------------------------------- DescribeCluster */

void handle_DescribeCluster(broker *b, reply *r, kafka_request *q)
{
    const kafka_DescribeClusterRequest *cq = &q->u.describe_cluster;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    /* Kafka's brokers answer EndpointType 1 (brokers); 2 (controllers) is
     * the KRaft controllers' listener, unknown types are refused. */
    int16_t err = KAFKA_NONE;
    const char *msg = NULL;
    if (cq->endpoint_type == 2) {
        err = v == 0 ? KAFKA_INVALID_REQUEST : KAFKA_MISMATCHED_ENDPOINT_TYPE;
        msg = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of "
              "type CONTROLLER";
    } else if (cq->endpoint_type != 1) {
        err = v == 0 ? KAFKA_INVALID_REQUEST : KAFKA_UNSUPPORTED_ENDPOINT_TYPE;
        msg = "Unsupported endpoint type";
    } else if (!acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, NULL)) {
        err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        msg = "DESCRIBE on the cluster is needed";
    }
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs */
    kw_i16(&w, err);
    kw_str(&w, f, msg);
    if (v >= 1) kw_i8(&w, 1); /* EndpointType: brokers */
    kw_str(&w, f, err ? "" : cluster_id_get(b));
    if (!err && b->cluster) { /* the live brokers on the client's listener */
        kw_i32(&w, cluster_controller_id(b));
        cluster_write_brokers(b, reply_listener(b, r), &w, f, 1);
    } else {
        kw_i32(&w, err ? -1 : b->node_id); /* ControllerId: this node decides alone */
        kw_array(&w, f, err ? 0 : 1);
    }
    if (!err && !b->cluster) {
        kw_i32(&w, b->node_id);
        kw_str(&w, f, b->adv_host);
        kw_i32(&w, b->adv_port);
        kw_str(&w, f, NULL); /* Rack */
        kw_tags(&w, f);
    }
    kw_i32(&w, !err && cq->include_cluster_authorized_operations
                   ? acl_authorized_ops(b, r, ACL_RES_CLUSTER, NULL, CLUSTER_AUTHORIZED_OPS)
                   : TS_MIN_INT32);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

/* ------------------------------------------------------- DescribeLogDirs */

typedef struct ld_part {
    int32_t partition;
    tsp_partition *h;
    int64_t size, lag;
} ld_part;

typedef struct ld_op {
    bjob j;
    broker *b;
    reply r;
    char dir[PATH_MAX];
    int64_t total_bytes, usable_bytes;
    int16_t dir_error;
    int32_t ntopics;
    struct {
        char *name;
        int32_t n;
        ld_part *ps;
    } *topics;
} ld_op;

static void ld_free(ld_op *o)
{
    for (int32_t i = 0; i < o->ntopics; i++) {
        free(o->topics[i].name);
        free(o->topics[i].ps);
    }
    free(o->topics);
    free(o);
}

/* io pool: the size of each partition's local log and the disk. */
static void ld_run(bjob *j)
{
    ld_op *o = (ld_op *)j;
    const tsp_plugin *pl = o->b->pl;
    for (int32_t i = 0; i < o->ntopics; i++)
        for (int32_t k = 0; k < o->topics[i].n; k++) {
            ld_part *lp = &o->topics[i].ps[k];
            tsp_partition_stats st;
            memset(&st, 0, sizeof st);
            st.struct_size = sizeof st;
            char err[256];
            if (TSP_HAS(pl, partition_stats) && pl->partition_stats(lp->h, &st, err, sizeof err) == TSP_OK)
                lp->size = (int64_t)st.local_log_bytes;
            /* OffsetLag: how far the log end is behind the high watermark,
             * 0 on a leader (Kafka: max(HW - LEO, 0)). */
            tsp_offsets off = {.struct_size = sizeof off, .high_watermark = -1};
            if (pl->offsets(lp->h, &off) == TSP_OK && off.high_watermark > off.log_end_offset)
                lp->lag = off.high_watermark - off.log_end_offset;
        }
    char abs[PATH_MAX];
    if (realpath(o->dir, abs)) snprintf(o->dir, sizeof o->dir, "%s", abs);
    struct statvfs sv;
    if (statvfs(o->dir, &sv) == 0) {
        o->total_bytes = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
        o->usable_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
    } else {
        o->dir_error = KAFKA_KAFKA_STORAGE_ERROR;
    }
}

static void ld_done(bjob *j)
{
    ld_op *o = (ld_op *)j;
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    kw_i32(&w, 0); /* ThrottleTimeMs */
    if (v >= 3) kw_i16(&w, KAFKA_NONE);
    kw_array(&w, f, 1); /* one log dir */
    kw_i16(&w, o->dir_error);
    kw_str(&w, f, o->dir);
    int32_t nt = 0;
    for (int32_t i = 0; i < o->ntopics; i++) nt += o->topics[i].n > 0;
    kw_array(&w, f, nt);
    for (int32_t i = 0; i < o->ntopics; i++) {
        if (o->topics[i].n == 0) continue; /* Kafka lists only logs the dir holds */
        kw_str(&w, f, o->topics[i].name);
        kw_array(&w, f, o->topics[i].n);
        for (int32_t k = 0; k < o->topics[i].n; k++) {
            kw_i32(&w, o->topics[i].ps[k].partition);
            kw_i64(&w, o->topics[i].ps[k].size);
            kw_i64(&w, o->topics[i].ps[k].lag);
            kw_i8(&w, 0); /* IsFutureKey: no log moves between dirs */
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    if (v >= 4) {
        kw_i64(&w, o->dir_error ? -1 : o->total_bytes);
        kw_i64(&w, o->dir_error ? -1 : o->usable_bytes);
    }
    kw_tags(&w, f);
    kw_tags(&w, f);
    reply_end(o->b, &o->r, &w);
    ld_free(o);
}

/* Adds topic t's partitions (those listed, or all when want is NULL) that
 * are open; -1 out of memory. */
static int ld_add_topic(ld_op *o, btopic *t, const int32_t *want, int32_t nwant)
{
    int32_t ti = o->ntopics;
    int32_t cap = want ? nwant : t->npartitions;
    o->topics[ti].ps = calloc((size_t)(cap > 0 ? cap : 1), sizeof(ld_part));
    o->topics[ti].name = strdup(t->name);
    o->ntopics++;
    if (!o->topics[ti].ps || !o->topics[ti].name) return -1;
    for (int32_t k = 0; k < cap; k++) {
        int32_t p = want ? want[k] : k;
        if (p < 0 || p >= t->npartitions || !t->parts[p].h) continue; /* not in this dir */
        ld_part *lp = &o->topics[ti].ps[o->topics[ti].n++];
        lp->partition = p;
        lp->h = t->parts[p].h;
    }
    return 0;
}

/* The request's topics (null: every registered topic) as the job's list. */
static int ld_collect(broker *b, ld_op *o, const kafka_DescribeLogDirsRequest *lq)
{
    int32_t n = 0;
    if (lq->ntopics < 0)
        for (btopic *t = b->topics; t; t = t->next) n++;
    else
        n = lq->ntopics;
    o->topics = calloc((size_t)(n > 0 ? n : 1), sizeof(*o->topics));
    if (!o->topics) return -1;
    if (lq->ntopics < 0) {
        for (btopic *t = b->topics; t; t = t->next)
            if (ld_add_topic(o, t, NULL, 0) != 0) return -1;
        return 0;
    }
    for (int32_t i = 0; i < lq->ntopics; i++) {
        btopic *t = topic_find(b, lq->topics[i].name);
        if (t && ld_add_topic(o, t, lq->topics[i].partition_indexes, lq->topics[i].npartitions) != 0)
            return -1;
    }
    return 0;
}

void handle_DescribeLogDirs(broker *b, reply *r, kafka_request *q)
{
    if (!acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, NULL)) {
        int v = r->hdr.api_version, f = r->hdr.flexible;
        kw w;
        reply_begin(r, &w);
        kw_i32(&w, 0);
        if (v >= 3) kw_i16(&w, KAFKA_CLUSTER_AUTHORIZATION_FAILED);
        kw_array(&w, f, 0); /* before v3 no results is Kafka's refusal */
        kw_tags(&w, f);
        reply_end(b, r, &w);
        return;
    }
    ld_op *o = calloc(1, sizeof(*o));
    if (!o || ld_collect(b, o, &q->u.describe_log_dirs) != 0) {
        if (o) ld_free(o);
        reply_drop(b, r);
        return;
    }
    o->b = b;
    o->r = *r;
    r->c = NULL;
    snprintf(o->dir, sizeof o->dir, "%s", bconfig_get(&b->cfg, "log.dirs"));
    o->j.run = ld_run;
    o->j.done = ld_done;
    bpool_submit(b->io_pool, &o->j);
}
