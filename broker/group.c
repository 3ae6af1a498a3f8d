/*
 * group.c — a single-node group coordinator (Kafka's classic protocol):
 * FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * OffsetCommit, OffsetFetch.
 *
 * States: Empty -> PreparingRebalance (joins collected until every known
 * member rejoined, or the rebalance timeout; the first rebalance of an empty
 * group also waits group.initial.rebalance.delay.ms) -> CompletingRebalance
 * (JoinGroup answered; the leader's SyncGroup carries the assignments) ->
 * Stable. Members that miss heartbeats for session.timeout.ms are removed,
 * which starts a new rebalance. JoinGroup and SyncGroup answers are delayed
 * replies held by the group. Ids handed out with MEMBER_ID_REQUIRED are
 * pending, not members, until their client rejoins with them (KIP-394).
 *
 * Committed offsets are written to <log.dirs>/.broker/offsets (meta pool)
 * and OffsetCommit is answered once the file is durable. The group admin
 * APIs (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete: admin_api.c)
 * read groups through the accessors below (group_view, member_view) and
 * remove offsets and groups with group_delete_offset / group_remove.
 *
 * In a cluster (b->gc, group_cluster.c) the same state machine runs on the
 * group's coordinator only: every group request is first checked against
 * the coordinator view (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS), and
 * OffsetCommit is answered once etcd acknowledged the offsets; only then do
 * they join the group's memory.
 *
 * Thread: loop thread only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"

enum { G_EMPTY, G_PREPARING, G_COMPLETING, G_STABLE };

struct bmember {
    struct bmember *next;
    char *id;
    char *client_id;
    char *client_host; /* "/<address>", as Kafka's DescribeGroups shows it */
    int32_t session_ms, rebalance_ms;
    int64_t last_seen;
    int nprotocols;
    char **proto_names;
    uint8_t **proto_meta;
    int32_t *proto_len;
    int has_join;
    reply join;
    int16_t join_version;
    int has_sync;
    reply sync;
    uint8_t *assignment;
    int32_t assignment_len;
};

/* KIP-394: a JoinGroup without a member id gets one (MEMBER_ID_REQUIRED)
 * and the client rejoins with it. Until then the id is only pending: it is
 * not a member, takes no part in rebalances and expires silently after the
 * session timeout it asked for. */
typedef struct bpending {
    struct bpending *next;
    char *id;
    int64_t expires;
} bpending;
/* Pending ids per group beyond which the oldest is forgotten (its client
 * gets UNKNOWN_MEMBER_ID on rejoin and starts over): a flood of id-less
 * JoinGroups cannot grow memory without bound. */
#define GROUP_MAX_PENDING 10000

struct bgroup {
    struct bgroup *next;
    bpending *pending;
    int npending;
    char *id;
    int state;
    int32_t generation;
    char *protocol_type;
    char *protocol_name;
    char *leader;
    bmember *members;
    int64_t rebalance_deadline; /* force completion (rebalance timeout) */
    int64_t initial_until;      /* first rebalance from Empty waits at least until */
    committed *offsets;
    uint64_t member_seq;
};

const char *group_id(const bgroup *g) { return g->id; }
committed *group_offsets(bgroup *g) { return g->offsets; }
bgroup *group_first(broker *b) { return b->groups; }
bgroup *group_next(bgroup *g) { return g->next; }
bmember *group_members(bgroup *g) { return g->members; }
bmember *member_next(bmember *m) { return m->next; }

static int member_count(const bgroup *g);

static const char *const group_state_names[] = {"Empty", "PreparingRebalance",
                                                "CompletingRebalance", "Stable"};

void group_view(const bgroup *g, group_info *out)
{
    out->state = group_state_names[g->state];
    out->protocol_type = g->protocol_type ? g->protocol_type : "";
    out->protocol_name = g->protocol_name ? g->protocol_name : "";
    out->stable = g->state == G_STABLE;
    out->nmembers = member_count(g);
}

/* The member's metadata is that of the group's protocol (its first one
 * before a protocol is chosen: a consumer offers the same subscription
 * under each assignor). */
void member_view(const bgroup *g, const bmember *m, member_info *out)
{
    int idx = 0;
    for (int i = 0; g->protocol_name && i < m->nprotocols; i++)
        if (!strcmp(m->proto_names[i], g->protocol_name)) idx = i;
    out->member_id = m->id;
    out->client_id = m->client_id ? m->client_id : "";
    out->client_host = m->client_host ? m->client_host : "";
    out->metadata = m->nprotocols ? m->proto_meta[idx] : NULL;
    out->metadata_len = m->nprotocols ? m->proto_len[idx] : 0;
    out->assignment = m->assignment;
    out->assignment_len = m->assignment ? m->assignment_len : 0;
}

bgroup *group_find(broker *b, const char *id, int create)
{
    for (bgroup *g = b->groups; g; g = g->next)
        if (!strcmp(g->id, id)) return g;
    if (!create) return NULL;
    bgroup *g = calloc(1, sizeof(*g));
    if (!g || !(g->id = strdup(id))) {
        free(g);
        return NULL;
    }
    g->next = b->groups;
    b->groups = g;
    return g;
}

int group_set_offset(bgroup *g, const char *topic, int32_t partition, int64_t offset,
                     const char *metadata)
{
    return group_commit_offset(g, topic, partition, offset, -1, metadata);
}

int group_commit_offset(bgroup *g, const char *topic, int32_t partition, int64_t offset,
                        int32_t leader_epoch, const char *metadata)
{
    int added = 0;
    committed *c = g->offsets;
    while (c && !(c->partition == partition && !strcmp(c->topic, topic))) c = c->next;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c || !(c->topic = strdup(topic))) {
            free(c);
            return -1;
        }
        c->partition = partition;
        c->next = g->offsets;
        g->offsets = c;
        added = 1;
    }
    c->offset = offset;
    c->leader_epoch = leader_epoch;
    free(c->metadata);
    c->metadata = metadata ? strdup(metadata) : NULL;
    return added;
}

/* Frees the protocols a member offered in its last JoinGroup. */
static void protocols_free(bmember *m)
{
    for (int i = 0; i < m->nprotocols; i++) {
        free(m->proto_names[i]);
        free(m->proto_meta[i]);
    }
    free(m->proto_names);
    free(m->proto_meta);
    free(m->proto_len);
    m->nprotocols = 0;
}

int group_delete_offset(bgroup *g, const char *topic, int32_t partition)
{
    for (committed **pp = &g->offsets; *pp; pp = &(*pp)->next) {
        committed *c = *pp;
        if (c->partition != partition || strcmp(c->topic, topic)) continue;
        *pp = c->next;
        free(c->topic);
        free(c->metadata);
        free(c);
        return 1;
    }
    return 0;
}

static void member_free(broker *b, bmember *m)
{
    if (m->has_join) reply_drop(b, &m->join);
    if (m->has_sync) reply_drop(b, &m->sync);
    protocols_free(m);
    free(m->assignment);
    free(m->client_host);
    free(m->client_id);
    free(m->id);
    free(m);
}

static bmember *member_find(bgroup *g, const char *id)
{
    for (bmember *m = g->members; m; m = m->next)
        if (!strcmp(m->id, id)) return m;
    return NULL;
}

static void pending_add(bgroup *g, const char *id, int64_t expires)
{
    bpending *p = calloc(1, sizeof(*p));
    if (!p || !(p->id = strdup(id))) {
        free(p);
        return; /* the rejoin gets UNKNOWN_MEMBER_ID and starts over */
    }
    p->expires = expires;
    p->next = g->pending;
    g->pending = p;
    if (++g->npending > GROUP_MAX_PENDING) {
        bpending **pp = &g->pending;
        while ((*pp)->next) pp = &(*pp)->next; /* the oldest is last */
        free((*pp)->id);
        free(*pp);
        *pp = NULL;
        g->npending--;
    }
}

/* Removes a pending id; 1 when it was there. */
static int pending_take(bgroup *g, const char *id)
{
    for (bpending **pp = &g->pending; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->id, id)) {
            bpending *p = *pp;
            *pp = p->next;
            free(p->id);
            free(p);
            g->npending--;
            return 1;
        }
    return 0;
}

static void pending_expire(bgroup *g, int64_t now)
{
    for (bpending **pp = &g->pending; *pp;) {
        bpending *p = *pp;
        if (now >= p->expires) {
            *pp = p->next;
            free(p->id);
            free(p);
            g->npending--;
        } else {
            pp = &p->next;
        }
    }
}

static int member_count(const bgroup *g)
{
    int n = 0;
    for (const bmember *m = g->members; m; m = m->next) n++;
    return n;
}

/* Answers a SyncGroup. */
static void sync_answer(broker *b, reply *r, bgroup *g, int16_t err, const uint8_t *a, int32_t alen)
{
    int v = r->hdr.api_version, f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_i16(&w, err);
    if (v >= 5) {
        kw_str(&w, f, err ? NULL : g->protocol_type);
        kw_str(&w, f, err ? NULL : g->protocol_name);
    }
    kw_bytes(&w, f, a ? a : (const uint8_t *)"", a ? alen : 0);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

/* Answers a JoinGroup; leader_view lists every member's metadata. */
static void join_answer(broker *b, reply *r, bgroup *g, bmember *m, int16_t err,
                        const char *member_id)
{
    int v = r->hdr.api_version, f = r->hdr.flexible;
    int leader_view = !err && g->leader && m && !strcmp(g->leader, m->id);
    kw w;
    reply_begin(r, &w);
    if (v >= 2) kw_i32(&w, 0);
    kw_i16(&w, err);
    kw_i32(&w, err ? -1 : g->generation);
    if (v >= 7) kw_str(&w, f, err ? NULL : g->protocol_type);
    kw_str(&w, f, err ? (v >= 7 ? NULL : "") : g->protocol_name);
    kw_str(&w, f, err ? "" : g->leader);
    kw_str(&w, f, member_id ? member_id : "");
    if (leader_view) {
        kw_array(&w, f, member_count(g));
        for (bmember *x = g->members; x; x = x->next) {
            int idx = 0;
            for (int i = 0; i < x->nprotocols; i++)
                if (!strcmp(x->proto_names[i], g->protocol_name)) idx = i;
            kw_str(&w, f, x->id);
            if (v >= 5) kw_str(&w, f, NULL); /* GroupInstanceId */
            kw_bytes(&w, f, x->proto_meta[idx], x->proto_len[idx]);
            kw_tags(&w, f);
        }
    } else {
        kw_array(&w, f, 0);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

static void start_rebalance(broker *b, bgroup *g, int64_t delay_ms)
{
    if (g->state != G_PREPARING) {
        int64_t max_rb = 0;
        for (bmember *m = g->members; m; m = m->next)
            if (m->rebalance_ms > max_rb) max_rb = m->rebalance_ms;
        g->state = G_PREPARING;
        g->rebalance_deadline = bclock_ms() + (delay_ms > max_rb ? delay_ms : max_rb);
        g->initial_until = bclock_ms() + delay_ms;
        blog_info("group %s: rebalancing (generation %d, %d members)", g->id, g->generation,
                  member_count(g));
    }
    /* Pending syncs of the old generation cannot complete. */
    for (bmember *m = g->members; m; m = m->next)
        if (m->has_sync) {
            m->has_sync = 0;
            sync_answer(b, &m->sync, g, KAFKA_REBALANCE_IN_PROGRESS, NULL, 0);
        }
}

static void remove_member(broker *b, bgroup *g, bmember *m, const char *why)
{
    bmember **pp = &g->members;
    while (*pp && *pp != m) pp = &(*pp)->next;
    if (*pp) *pp = m->next;
    blog_info("group %s: member %s left (%s)", g->id, m->id, why);
    if (g->leader && !strcmp(g->leader, m->id)) {
        free(g->leader);
        g->leader = NULL;
    }
    if (m->has_join) {
        m->has_join = 0;
        join_answer(b, &m->join, g, NULL, KAFKA_UNKNOWN_MEMBER_ID, m->id);
    }
    member_free(b, m);
    if (!g->members) {
        g->state = G_EMPTY;
        g->generation++;
        free(g->protocol_name);
        g->protocol_name = NULL;
    } else {
        start_rebalance(b, g, 0);
    }
}

/* Completes PreparingRebalance when every member rejoined or time is up. */
static void maybe_complete_join(broker *b, bgroup *g, int force)
{
    if (g->state != G_PREPARING) return;
    int all = 1;
    for (bmember *m = g->members; m; m = m->next)
        if (!m->has_join) all = 0;
    /* Wait for stragglers, and after Empty for the initial delay so that
     * consumers started together share one generation. */
    if (!force && (!all || bclock_ms() < g->initial_until)) return;
    /* Members that did not rejoin are out. */
    bmember *m = g->members;
    while (m) {
        bmember *n = m->next;
        if (!m->has_join) {
            bmember **pp = &g->members;
            while (*pp != m) pp = &(*pp)->next;
            *pp = n;
            blog_info("group %s: member %s did not rejoin in time", g->id, m->id);
            member_free(b, m);
        }
        m = n;
    }
    if (!g->members) {
        g->state = G_EMPTY;
        return;
    }
    /* Protocol: the leader's first one every member supports. */
    if (!g->leader || !member_find(g, g->leader)) {
        free(g->leader);
        g->leader = strdup(g->members->id);
    }
    bmember *leader = member_find(g, g->leader);
    const char *chosen = NULL;
    for (int i = 0; leader && i < leader->nprotocols && !chosen; i++) {
        int ok = 1;
        for (bmember *x = g->members; x && ok; x = x->next) {
            int has = 0;
            for (int k = 0; k < x->nprotocols; k++)
                if (!strcmp(x->proto_names[k], leader->proto_names[i])) has = 1;
            ok = has;
        }
        if (ok) chosen = leader->proto_names[i];
    }
    g->generation++;
    free(g->protocol_name);
    g->protocol_name = strdup(chosen ? chosen : "");
    g->state = G_COMPLETING;
    blog_info("group %s: generation %d with %d members, leader %s, protocol %s", g->id,
              g->generation, member_count(g), g->leader, g->protocol_name);
    for (bmember *x = g->members; x; x = x->next) {
        free(x->assignment);
        x->assignment = NULL;
        x->assignment_len = 0;
        x->last_seen = bclock_ms();
        if (x->has_join) {
            x->has_join = 0;
            join_answer(b, &x->join, g, x, chosen ? KAFKA_NONE : KAFKA_INCONSISTENT_GROUP_PROTOCOL,
                        x->id);
        }
    }
}

/* Loop tick: session timeouts and rebalance deadlines. */
void group_tick(broker *b)
{
    int64_t now = bclock_ms();
    for (bgroup *g = b->groups; g; g = g->next) {
        bmember *m = g->members;
        while (m) {
            bmember *n = m->next;
            /* A member parked in JoinGroup is bounded by the rebalance
             * deadline instead of its session. */
            if (!m->has_join && now - m->last_seen > m->session_ms)
                remove_member(b, g, m, "session timeout");
            m = n;
        }
        pending_expire(g, now);
        if (g->state == G_PREPARING) maybe_complete_join(b, g, now >= g->rebalance_deadline);
    }
    if (b->gc) group_cluster_tick(b);
}

/* Frees a group unlinked from b->groups; parked answers are dropped. */
static void group_free(broker *b, bgroup *g)
{
    bmember *m = g->members;
    while (m) {
        bmember *mn = m->next;
        member_free(b, m);
        m = mn;
    }
    pending_expire(g, INT64_MAX);
    committed *c = g->offsets;
    while (c) {
        committed *cn = c->next;
        free(c->topic);
        free(c->metadata);
        free(c);
        c = cn;
    }
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader);
    free(g->id);
    free(g);
}

void group_remove(broker *b, bgroup *g)
{
    for (bgroup **pp = &b->groups; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    group_free(b, g);
}

void group_free_all(broker *b)
{
    bgroup *g = b->groups;
    while (g) {
        bgroup *n = g->next;
        group_free(b, g);
        g = n;
    }
    b->groups = NULL;
}

int group_drop_partition(broker *b, int32_t p)
{
    int dropped = 0;
    for (bgroup **pp = &b->groups; *pp;) {
        bgroup *g = *pp;
        if (group_cluster_partition(b, g->id) != p) {
            pp = &g->next;
            continue;
        }
        *pp = g->next;
        /* Parked members learn at once that they must find the new one. */
        for (bmember *m = g->members; m; m = m->next) {
            if (m->has_join) {
                m->has_join = 0;
                join_answer(b, &m->join, g, NULL, KAFKA_NOT_COORDINATOR, m->id);
            }
            if (m->has_sync) {
                m->has_sync = 0;
                sync_answer(b, &m->sync, g, KAFKA_NOT_COORDINATOR, NULL, 0);
            }
        }
        group_free(b, g);
        dropped++;
    }
    return dropped;
}

/* In a cluster: whether this broker may serve the group now. */
static int16_t coord_error(broker *b, const char *group)
{
    return b->gc && group[0] ? group_cluster_check(b, group) : KAFKA_NONE;
}

/* ------------------------------------------------------------- handlers */

void handle_FindCoordinator(broker *b, reply *r, kafka_request *q)
{
    int v = r->hdr.api_version, f = r->hdr.flexible;
    int16_t err = q->u.find_coordinator.key_type == 0 ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE;
    const char *msg = err ? "transactions are not supported" : NULL;
    if (!err &&
        !acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, q->u.find_coordinator.key)) {
        err = KAFKA_GROUP_AUTHORIZATION_FAILED;
        msg = "DESCRIBE on the group is needed";
    }
    /* The coordinator's address on the client's own listener (Kafka's rule);
     * one without that listener is not available to this client. */
    const blistener *l = reply_listener(b, r);
    int32_t id = b->node_id, port = l->adv_port;
    const char *host = l->adv_host;
    if (!err && b->gc) {
        /* The leader of the group's __consumer_offsets partition. */
        const cl_broker *cb = group_cluster_coordinator(b, q->u.find_coordinator.key);
        const cl_endpoint *ep = cb && cb->id != b->node_id ? cluster_endpoint(cb, l->name) : NULL;
        if (ep) {
            id = cb->id;
            host = ep->host;
            port = ep->port;
        } else if (cb && cb->id != b->node_id) {
            err = KAFKA_COORDINATOR_NOT_AVAILABLE;
            msg = "the group's coordinator has no listener of the name this client uses";
        } else if (!cb) {
            err = KAFKA_COORDINATOR_NOT_AVAILABLE;
            msg = "the group's __consumer_offsets partition has no live leader";
        }
    }
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_i16(&w, err);
    if (v >= 1) kw_str(&w, f, msg);
    kw_i32(&w, err ? -1 : id);
    kw_str(&w, f, err ? "" : host);
    kw_i32(&w, err ? -1 : port);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

static int set_protocols(bmember *m, const kafka_JoinGroupRequest *jq)
{
    protocols_free(m);
    int n = jq->nprotocols;
    m->proto_names = calloc((size_t)(n ? n : 1), sizeof(char *));
    m->proto_meta = calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    m->proto_len = calloc((size_t)(n ? n : 1), sizeof(int32_t));
    if (!m->proto_names || !m->proto_meta || !m->proto_len) return -1;
    for (int i = 0; i < n; i++) {
        int32_t len = jq->protocols[i].metadata.len;
        m->proto_names[i] = strdup(jq->protocols[i].name);
        m->proto_meta[i] = malloc((size_t)(len > 0 ? len : 1));
        if (!m->proto_names[i] || !m->proto_meta[i]) return -1;
        if (len > 0) memcpy(m->proto_meta[i], jq->protocols[i].metadata.p, (size_t)len);
        m->proto_len[i] = len;
        m->nprotocols++;
    }
    return 0;
}

/* Who sent the member's latest JoinGroup (DescribeGroups' ClientId and
 * ClientHost; the peer "address:port" shown as Kafka does, "/address"). */
static void member_set_client(bmember *m, const char *client_id, const char *peer)
{
    const char *colon = peer ? strrchr(peer, ':') : NULL;
    size_t n = peer ? (colon ? (size_t)(colon - peer) : strlen(peer)) : 0;
    char *host = malloc(n + 2);
    char *cid = strdup(client_id ? client_id : "");
    if (!host || !cid) {
        free(host);
        free(cid);
        return; /* DescribeGroups shows the previous values, or "" */
    }
    host[0] = '/';
    if (n) memcpy(host + 1, peer, n);
    host[n + 1] = 0;
    free(m->client_host);
    free(m->client_id);
    m->client_host = host;
    m->client_id = cid;
}

static bmember *member_new(bgroup *g, const char *id)
{
    bmember *m = calloc(1, sizeof(*m));
    if (!m || !(m->id = strdup(id))) {
        free(m);
        return NULL;
    }
    m->last_seen = bclock_ms();
    m->next = g->members;
    g->members = m;
    return m;
}

void handle_JoinGroup(broker *b, reply *r, kafka_request *q)
{
    kafka_JoinGroupRequest *jq = &q->u.join_group;
    int v = r->hdr.api_version;
    if (!jq->group_id[0]) {
        join_answer(b, r, NULL, NULL, KAFKA_INVALID_GROUP_ID, jq->member_id);
        return;
    }
    int16_t ce = acl_check(b, r, ACL_OP_READ, ACL_RES_GROUP, jq->group_id)
                     ? coord_error(b, jq->group_id)
                     : KAFKA_GROUP_AUTHORIZATION_FAILED;
    if (ce) {
        join_answer(b, r, NULL, NULL, ce, jq->member_id);
        return;
    }
    if (jq->session_timeout_ms < b->min_session_ms || jq->session_timeout_ms > b->max_session_ms) {
        join_answer(b, r, NULL, NULL, KAFKA_INVALID_SESSION_TIMEOUT, jq->member_id);
        return;
    }
    bgroup *g = group_find(b, jq->group_id, 1);
    if (!g) {
        join_answer(b, r, NULL, NULL, KAFKA_UNKNOWN_SERVER_ERROR, jq->member_id);
        return;
    }
    if (g->members && g->protocol_type && strcmp(g->protocol_type, jq->protocol_type)) {
        join_answer(b, r, g, NULL, KAFKA_INCONSISTENT_GROUP_PROTOCOL, jq->member_id);
        return;
    }
    bmember *m = NULL;
    if (jq->member_id[0]) {
        m = member_find(g, jq->member_id);
        /* A pending id becomes a member only now, when it rejoins with it. */
        if (!m && pending_take(g, jq->member_id) && !(m = member_new(g, jq->member_id))) {
            join_answer(b, r, g, NULL, KAFKA_UNKNOWN_SERVER_ERROR, "");
            return;
        }
        if (!m) {
            join_answer(b, r, g, NULL, KAFKA_UNKNOWN_MEMBER_ID, jq->member_id);
            return;
        }
    } else {
        char id[300];
        const char *cid = "member";
        snprintf(id, sizeof id, "%s-%llu-%llx", cid, (unsigned long long)++g->member_seq,
                 (unsigned long long)bclock_wall_ms());
        if (v >= 4) {
            /* KIP-394: hand out the id first; the client rejoins with it. */
            pending_add(g, id, bclock_ms() + jq->session_timeout_ms);
            join_answer(b, r, g, NULL, KAFKA_MEMBER_ID_REQUIRED, id);
            return;
        }
        if (!(m = member_new(g, id))) {
            join_answer(b, r, g, NULL, KAFKA_UNKNOWN_SERVER_ERROR, "");
            return;
        }
    }
    m->session_ms = jq->session_timeout_ms;
    m->rebalance_ms = jq->rebalance_timeout_ms;
    m->last_seen = bclock_ms();
    member_set_client(m, q->hdr.client_id, conn_peer(r->c));
    if (set_protocols(m, jq) != 0) {
        join_answer(b, r, g, NULL, KAFKA_UNKNOWN_SERVER_ERROR, m->id);
        return;
    }
    if (!g->protocol_type || strcmp(g->protocol_type, jq->protocol_type)) {
        free(g->protocol_type);
        g->protocol_type = strdup(jq->protocol_type);
    }
    if (m->has_join) { /* a retried join replaces the parked one */
        m->has_join = 0;
        join_answer(b, &m->join, g, NULL, KAFKA_REBALANCE_IN_PROGRESS, m->id);
    }
    m->join = *r;
    r->c = NULL;
    m->has_join = 1;
    if (g->state != G_PREPARING)
        start_rebalance(b, g, g->state == G_EMPTY ? b->initial_rebalance_delay_ms : 0);
    maybe_complete_join(b, g, 0);
}

void handle_SyncGroup(broker *b, reply *r, kafka_request *q)
{
    kafka_SyncGroupRequest *sq = &q->u.sync_group;
    int16_t ce = acl_check(b, r, ACL_OP_READ, ACL_RES_GROUP, sq->group_id)
                     ? coord_error(b, sq->group_id)
                     : KAFKA_GROUP_AUTHORIZATION_FAILED;
    if (ce) {
        sync_answer(b, r, NULL, ce, NULL, 0);
        return;
    }
    bgroup *g = group_find(b, sq->group_id, 0);
    bmember *m = g ? member_find(g, sq->member_id) : NULL;
    if (!g || !m) {
        sync_answer(b, r, g, KAFKA_UNKNOWN_MEMBER_ID, NULL, 0);
        return;
    }
    m->last_seen = bclock_ms();
    if (sq->generation_id != g->generation) {
        sync_answer(b, r, g, KAFKA_ILLEGAL_GENERATION, NULL, 0);
        return;
    }
    if (g->state == G_PREPARING) {
        sync_answer(b, r, g, KAFKA_REBALANCE_IN_PROGRESS, NULL, 0);
        return;
    }
    if (g->state == G_STABLE) {
        sync_answer(b, r, g, KAFKA_NONE, m->assignment, m->assignment_len);
        return;
    }
    /* CompletingRebalance */
    if (m->has_sync) {
        m->has_sync = 0;
        sync_answer(b, &m->sync, g, KAFKA_REBALANCE_IN_PROGRESS, NULL, 0);
    }
    m->sync = *r;
    r->c = NULL;
    m->has_sync = 1;
    if (g->leader && !strcmp(g->leader, m->id)) {
        for (int32_t i = 0; i < sq->nassignments; i++) {
            bmember *x = member_find(g, sq->assignments[i].member_id);
            if (!x) continue;
            free(x->assignment);
            int32_t len = sq->assignments[i].assignment.len;
            x->assignment = malloc((size_t)(len > 0 ? len : 1));
            x->assignment_len = x->assignment ? len : 0;
            if (x->assignment && len > 0)
                memcpy(x->assignment, sq->assignments[i].assignment.p, (size_t)len);
        }
        g->state = G_STABLE;
        blog_info("group %s: generation %d stable", g->id, g->generation);
        for (bmember *x = g->members; x; x = x->next)
            if (x->has_sync) {
                x->has_sync = 0;
                sync_answer(b, &x->sync, g, KAFKA_NONE, x->assignment, x->assignment_len);
            }
    }
}

static void simple_error_reply(broker *b, reply *r, int16_t err)
{
    kw w;
    reply_begin(r, &w);
    if (r->hdr.api_version >= 1) kw_i32(&w, 0);
    kw_i16(&w, err);
    kw_tags(&w, r->hdr.flexible);
    reply_end(b, r, &w);
}

void handle_Heartbeat(broker *b, reply *r, kafka_request *q)
{
    kafka_HeartbeatRequest *hq = &q->u.heartbeat;
    int16_t err = acl_check(b, r, ACL_OP_READ, ACL_RES_GROUP, hq->group_id)
                      ? coord_error(b, hq->group_id)
                      : KAFKA_GROUP_AUTHORIZATION_FAILED;
    bgroup *g = err ? NULL : group_find(b, hq->group_id, 0);
    bmember *m = g ? member_find(g, hq->member_id) : NULL;
    if (err)
        ;
    else if (!m)
        err = KAFKA_UNKNOWN_MEMBER_ID;
    else {
        m->last_seen = bclock_ms();
        if (hq->generation_id != g->generation)
            err = KAFKA_ILLEGAL_GENERATION;
        else if (g->state == G_PREPARING)
            err = KAFKA_REBALANCE_IN_PROGRESS;
    }
    simple_error_reply(b, r, err);
}

void handle_LeaveGroup(broker *b, reply *r, kafka_request *q)
{
    kafka_LeaveGroupRequest *lq = &q->u.leave_group;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    int16_t top = acl_check(b, r, ACL_OP_READ, ACL_RES_GROUP, lq->group_id)
                      ? coord_error(b, lq->group_id)
                      : KAFKA_GROUP_AUTHORIZATION_FAILED;
    bgroup *g = top ? NULL : group_find(b, lq->group_id, 0);
    int32_t nanswer = top ? 0 : lq->nmembers; /* not the coordinator: no member answers */
    int16_t *errs = calloc((size_t)(lq->nmembers ? lq->nmembers : 1), sizeof(int16_t));
    for (int32_t i = 0; i < nanswer; i++) {
        bmember *m = g ? member_find(g, lq->member_ids[i]) : NULL;
        if (!m && g && pending_take(g, lq->member_ids[i])) continue; /* leaves quietly */
        if (!m) {
            if (errs) errs[i] = KAFKA_UNKNOWN_MEMBER_ID;
            if (v <= 2) top = KAFKA_UNKNOWN_MEMBER_ID;
            continue;
        }
        remove_member(b, g, m, "LeaveGroup");
    }
    if (g) maybe_complete_join(b, g, 0);
    kw w;
    reply_begin(r, &w);
    if (v >= 1) kw_i32(&w, 0);
    kw_i16(&w, top);
    if (v >= 3) {
        kw_array(&w, f, nanswer);
        for (int32_t i = 0; i < nanswer; i++) {
            kw_str(&w, f, lq->member_ids[i]);
            kw_str(&w, f, NULL);
            kw_i16(&w, errs ? errs[i] : 0);
            kw_tags(&w, f);
        }
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
    free(errs);
}

/* OffsetCommit: validated on the loop, answered once durable (single node:
 * applied at once, then the offsets log; cluster: applied when etcd
 * acknowledged). */
typedef struct commit_op {
    reply r;
    int ntopics;
    struct {
        char *name;
        int n;
        int32_t *parts;
        int16_t *errs;
    } *topics;
    gc_commit *recs; /* cluster: the partitions sent to etcd */
    int32_t (*where)[2]; /* recs[i] answers topics[where[i][0]].errs[where[i][1]] */
    size_t nrecs;
} commit_op;

static void commit_free(commit_op *o)
{
    for (int i = 0; i < o->ntopics; i++) {
        free(o->topics[i].name);
        free(o->topics[i].parts);
        free(o->topics[i].errs);
    }
    for (size_t i = 0; i < o->nrecs; i++) {
        free(o->recs[i].topic);
        free(o->recs[i].metadata);
    }
    free(o->recs);
    free(o->where);
    free(o->topics);
    free(o);
}

static void commit_respond(broker *b, commit_op *o, int16_t force_err)
{
    int v = o->r.hdr.api_version, f = o->r.hdr.flexible;
    kw w;
    reply_begin(&o->r, &w);
    if (v >= 3) kw_i32(&w, 0);
    kw_array(&w, f, o->ntopics);
    for (int i = 0; i < o->ntopics; i++) {
        kw_str(&w, f, o->topics[i].name);
        kw_array(&w, f, o->topics[i].n);
        for (int k = 0; k < o->topics[i].n; k++) {
            kw_i32(&w, o->topics[i].parts[k]);
            kw_i16(&w, o->topics[i].errs[k] ? o->topics[i].errs[k] : force_err);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &o->r, &w);
}

static void commit_durable(broker *b, void *arg, int ok)
{
    commit_op *o = arg;
    commit_respond(b, o, ok ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE);
    commit_free(o);
}

/* Cluster: etcd answered every partition sent. */
static void commit_stored(broker *b, void *arg, gc_commit *recs, size_t n)
{
    commit_op *o = arg;
    for (size_t i = 0; i < n; i++) o->topics[o->where[i][0]].errs[o->where[i][1]] = recs[i].err;
    commit_respond(b, o, KAFKA_NONE);
    commit_free(o);
}

/* The group-level check of a commit: a member of a live group must be
 * current; generation -1 with an empty member id is a standalone
 * (assign()) consumer. */
static int16_t commit_check_member(broker *b, bgroup *g, const kafka_OffsetCommitRequest *cq)
{
    if (!g) return KAFKA_INVALID_GROUP_ID;
    if (cq->generation_id >= 0 || cq->member_id[0]) {
        bmember *m = member_find(g, cq->member_id);
        if (m) m->last_seen = bclock_ms();
        if (!m) return KAFKA_UNKNOWN_MEMBER_ID;
        if (cq->generation_id != g->generation) return KAFKA_ILLEGAL_GENERATION;
        if (g->state == G_PREPARING) return KAFKA_REBALANCE_IN_PROGRESS;
        return KAFKA_NONE;
    }
    return g->members ? KAFKA_UNKNOWN_MEMBER_ID : KAFKA_NONE;
}

/* Whether the partition exists: the registry on a single node, the
 * cluster's view (which knows topics this broker holds no replica of). */
static int commit_part_exists(broker *b, const btopic *tp, const char *topic, int32_t p)
{
    if (b->gc) return p >= 0 && cluster_pstate(b, topic, p) != NULL;
    return tp && p >= 0 && p < tp->npartitions;
}

/* Checked per partition, as Kafka does: a name that can never be a topic,
 * a partition that does not exist, metadata past offset.metadata.max.bytes.
 * The others of the request commit. */
static int16_t commit_check_part(broker *b, int16_t err, int valid_name, const btopic *tp,
                                 const char *topic, const kafka_OffsetCommitPartition *cp)
{
    if (err) return err;
    if (!valid_name) return KAFKA_INVALID_TOPIC_EXCEPTION;
    if (!commit_part_exists(b, tp, topic, cp->partition_index))
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (cp->committed_metadata && strlen(cp->committed_metadata) > b->offset_metadata_max)
        return KAFKA_OFFSET_METADATA_TOO_LARGE;
    return KAFKA_NONE;
}

/* Cluster: copies one partition to send to etcd; -1 out of memory. */
static int commit_keep(commit_op *o, int i, int k, const char *topic,
                       const kafka_OffsetCommitPartition *cp)
{
    gc_commit *r = &o->recs[o->nrecs];
    *r = (gc_commit){.topic = strdup(topic), .partition = cp->partition_index,
                     .offset = cp->committed_offset, .leader_epoch = cp->committed_leader_epoch};
    if (cp->committed_metadata) r->metadata = strdup(cp->committed_metadata);
    o->where[o->nrecs][0] = i;
    o->where[o->nrecs][1] = k;
    o->nrecs++; /* freed by commit_free even when a copy failed */
    return r->topic && (r->metadata || !cp->committed_metadata) ? 0 : -1;
}

/* Single node: applies one partition in memory and adds its log record. */
static int16_t commit_apply(broker *b, bgroup *g, const char *topic,
                            const kafka_OffsetCommitPartition *cp, meta_commit *rec)
{
    int added = group_set_offset(g, topic, cp->partition_index, cp->committed_offset,
                                 cp->committed_metadata);
    if (added < 0) return KAFKA_UNKNOWN_SERVER_ERROR;
    b->offsets_live += (size_t)added;
    *rec = (meta_commit){group_id(g), topic, cp->committed_metadata, cp->partition_index,
                         cp->committed_offset, 0};
    return KAFKA_NONE;
}

/* Makes the accepted partitions durable (or answers at once: none). The
 * single node's records point into the request, which lives until we
 * return: meta_log_offsets encodes them before that. */
static void commit_submit(broker *b, commit_op *o, const char *group, meta_commit *recs,
                          size_t nrec)
{
    if (b->gc && o->nrecs) {
        group_cluster_commit(b, group, o->recs, o->nrecs, commit_stored, o);
    } else if (!b->gc && nrec) {
        meta_log_offsets(b, recs, nrec, commit_durable, o);
    } else {
        commit_respond(b, o, KAFKA_NONE);
        commit_free(o);
    }
}

void handle_OffsetCommit(broker *b, reply *r, kafka_request *q)
{
    kafka_OffsetCommitRequest *cq = &q->u.offset_commit;
    commit_op *o = calloc(1, sizeof(*o));
    if (!o) {
        reply_drop(b, r);
        return;
    }
    o->r = *r;
    r->c = NULL;
    size_t total = 0, nrec = 0;
    for (int32_t i = 0; i < cq->ntopics; i++) total += (size_t)cq->topics[i].npartitions;
    o->topics = calloc((size_t)(cq->ntopics ? cq->ntopics : 1), sizeof(*o->topics));
    meta_commit *recs = calloc(total ? total : 1, sizeof(*recs));
    if (b->gc) {
        o->recs = calloc(total ? total : 1, sizeof(*o->recs));
        o->where = calloc(total ? total : 1, sizeof(*o->where));
    }
    if (!o->topics || !recs || (b->gc && (!o->recs || !o->where))) goto oom;
    o->ntopics = cq->ntopics;
    int16_t err = cq->group_id[0] ? coord_error(b, cq->group_id) : KAFKA_INVALID_GROUP_ID;
    if (!err && !acl_check(b, &o->r, ACL_OP_READ, ACL_RES_GROUP, cq->group_id))
        err = KAFKA_GROUP_AUTHORIZATION_FAILED;
    bgroup *g = err ? NULL : group_find(b, cq->group_id, 1);
    if (!err) err = commit_check_member(b, g, cq);
    for (int32_t i = 0; i < cq->ntopics; i++) {
        kafka_OffsetCommitTopic *t = &cq->topics[i];
        int n = t->npartitions;
        o->topics[i].name = strdup(t->name);
        o->topics[i].n = n;
        o->topics[i].parts = calloc((size_t)(n ? n : 1), sizeof(int32_t));
        o->topics[i].errs = calloc((size_t)(n ? n : 1), sizeof(int16_t));
        if (!o->topics[i].name || !o->topics[i].parts || !o->topics[i].errs) goto oom;
        int valid_name = ts_topic_name_valid(t->name);
        btopic *tp = !err && valid_name && !b->gc ? topic_find(b, t->name) : NULL; /* once per topic */
        int16_t terr = err || acl_check(b, &o->r, ACL_OP_READ, ACL_RES_TOPIC, t->name)
                           ? err
                           : KAFKA_TOPIC_AUTHORIZATION_FAILED;
        for (int k = 0; k < n; k++) {
            kafka_OffsetCommitPartition *cp = &t->partitions[k];
            int16_t e = commit_check_part(b, terr, valid_name, tp, t->name, cp);
            o->topics[i].parts[k] = cp->partition_index;
            if (!e && b->gc && commit_keep(o, i, k, t->name, cp) != 0) goto oom;
            if (!e && !b->gc) e = commit_apply(b, g, t->name, cp, &recs[nrec]);
            if (!e && !b->gc) nrec++;
            o->topics[i].errs[k] = e;
        }
    }
    commit_submit(b, o, cq->group_id, recs, nrec);
    free(recs);
    return;
oom:
    free(recs);
    reply_drop(b, &o->r);
    commit_free(o);
}

void handle_OffsetFetch(broker *b, reply *r, kafka_request *q)
{
    kafka_OffsetFetchRequest *fq = &q->u.offset_fetch;
    int v = r->hdr.api_version, f = r->hdr.flexible;
    int16_t ce = coord_error(b, fq->group_id); /* not the coordinator: nothing known here */
    if (!ce && !acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_GROUP, fq->group_id))
        ce = KAFKA_GROUP_AUTHORIZATION_FAILED;
    bgroup *g = ce ? NULL : group_find(b, fq->group_id, 0);
    kw w;
    reply_begin(r, &w);
    if (v >= 3) kw_i32(&w, 0);
    if (fq->ntopics < 0) {
        /* Every topic the group committed to: group by topic name. */
        int32_t nt = 0;
        for (committed *c = g ? g->offsets : NULL; c; c = c->next) {
            committed *p = g->offsets;
            while (p != c && strcmp(p->topic, c->topic)) p = p->next;
            if (p == c) nt += acl_check_quiet(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, c->topic);
        }
        kw_array(&w, f, nt);
        for (committed *c = g ? g->offsets : NULL; c; c = c->next) {
            committed *p = g->offsets;
            while (p != c && strcmp(p->topic, c->topic)) p = p->next;
            if (p != c || !acl_check_quiet(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, c->topic)) continue;
            int32_t np = 0;
            for (committed *x = c; x; x = x->next)
                if (!strcmp(x->topic, c->topic)) np++;
            kw_str(&w, f, c->topic);
            kw_array(&w, f, np);
            for (committed *x = c; x; x = x->next) {
                if (strcmp(x->topic, c->topic)) continue;
                kw_i32(&w, x->partition);
                kw_i64(&w, x->offset);
                if (v >= 5) kw_i32(&w, x->leader_epoch);
                kw_str(&w, f, x->metadata ? x->metadata : "");
                kw_i16(&w, KAFKA_NONE);
                kw_tags(&w, f);
            }
            kw_tags(&w, f);
        }
    } else {
        kw_array(&w, f, fq->ntopics);
        for (int32_t i = 0; i < fq->ntopics; i++) {
            kafka_OffsetFetchTopic *t = &fq->topics[i];
            int16_t terr = ce || acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_TOPIC, t->name)
                               ? ce
                               : KAFKA_TOPIC_AUTHORIZATION_FAILED;
            kw_str(&w, f, t->name);
            kw_array(&w, f, t->npartitions);
            for (int32_t k = 0; k < t->npartitions; k++) {
                committed *c = g && !terr ? g->offsets : NULL;
                while (c && !(c->partition == t->partition_indexes[k] && !strcmp(c->topic, t->name)))
                    c = c->next;
                kw_i32(&w, t->partition_indexes[k]);
                kw_i64(&w, c ? c->offset : -1);
                if (v >= 5) kw_i32(&w, c ? c->leader_epoch : -1);
                kw_str(&w, f, c && c->metadata ? c->metadata : "");
                kw_i16(&w, terr);
                kw_tags(&w, f);
            }
            kw_tags(&w, f);
        }
    }
    if (v >= 2) kw_i16(&w, ce);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}
