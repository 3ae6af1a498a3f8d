/*
 * controller.c — the cluster's controller (issue 10), Kafka's ZooKeeper-era
 * duties with etcd as the store: one broker wins the leased `controller`
 * key (a create-if-absent txn); its create_revision is the controller
 * epoch, and every write the controller makes is a txn comparing it, so a
 * deposed controller (lease gone, a successor elected) cannot write.
 *
 * Level-triggered: each pass reads brokers/, topics/ and partitions/ at
 * one revision (inside a txn that also checks the epoch) and repairs what
 * it finds, rather than reacting to single events, so a missed event or a
 * pass cut short by an etcd error is repaired by the next one:
 *   - a partition without a state gets one (leader = first live replica,
 *     epoch 0, ISR = the live replicas);
 *   - a dead leader is replaced by the first live ISR member in assignment
 *     order (epoch + 1); none alive: leader -1 (offline) unless unclean
 *     election is on; the ISR keeps its last member, as Kafka's;
 *   - an offline partition gets a leader again when an ISR member returns;
 *   - dead followers leave the ISR (never the last member);
 *   - every leader.imbalance.check.interval.seconds the preferred (first)
 *     replica takes leadership back when it is live and in the ISR;
 *   - the pseudo-topic __consumer_offsets is created once the cluster has
 *     three live brokers or the controller has waited ten seconds for them;
 *   - a topic delete (deletes/<t>) none of whose pending brokers is live
 *     has its old incarnation deleted from the bucket by this broker, then
 *     its marker deleted (cluster_delete.c).
 * Partition states are written by CAS on their mod_revision: a leader's
 * ISR change in between makes the write fail and the next pass re-reads.
 *
 * Thread: the cluster thread only (it owns ctl_* of bcluster).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"

/* ------------------------------------------------------------ election */

static int ctl_key(bcluster *c, char *out, size_t n, const char *suffix)
{
    return cluster_key(c, out, n, "%s", suffix);
}

/* Tries to become the controller: 1 when this broker is it now. */
static int campaign(bcluster *c)
{
    char key[320], val[64];
    ctl_key(c, key, sizeof key, "controller");
    snprintf(val, sizeof val, "{\"id\":%d}", c->b->node_id);
    int64_t lease = atomic_load(&c->lease);
    ts_etcd_cmp absent = {.key = key, .key_len = strlen(key), .target = TS_ETCD_CMP_CREATE,
                          .result = TS_ETCD_EQUAL, .number = 0};
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val), .lease = lease};
    ts_etcd_op get = {.type = TS_ETCD_OP_RANGE, .key = key, .key_len = strlen(key)};
    ts_etcd_txn_result r;
    char err[1024] = "";
    if (ts_etcd_txn(c->etcd, &absent, 1, &put, 1, &get, 1, &r, err, sizeof err) != TS_ETCD_OK) {
        blog_debug("controller: campaign: %s", err);
        return 0;
    }
    if (r.succeeded)
        c->ctl_epoch = r.revision;
    else if (r.nresponses && r.responses[0].nkvs && r.responses[0].kvs[0].lease == lease)
        c->ctl_epoch = r.responses[0].kvs[0].create_revision; /* our own retried write */
    ts_etcd_txn_result_free(&r);
    if (c->ctl_epoch) {
        c->ctl_since_ms = bclock_ms();
        c->last_balance_ms = bclock_ms();
        blog_info("controller: this broker (%d) is the controller, epoch %lld", c->b->node_id,
                  (long long)c->ctl_epoch);
    }
    return c->ctl_epoch != 0;
}

void controller_resign(bcluster *c)
{
    if (c->ctl_epoch)
        blog_info("controller: no longer the controller (epoch %lld)", (long long)c->ctl_epoch);
    c->ctl_epoch = 0;
}

/* ---------------------------------------------------- the cluster read */

typedef struct ctl_model {
    cl_broker live[256];
    size_t nlive;
    ctopic *topics;
    cdelete *deletes;
} ctl_model;

static void model_free(ctl_model *m)
{
    while (m->topics) {
        ctopic *t = m->topics;
        m->topics = t->next;
        cluster_topic_free(t);
    }
    while (m->deletes) {
        cdelete *d = m->deletes;
        m->deletes = d->next;
        cluster_delete_free(d);
    }
}

static int model_live(const ctl_model *m, int32_t id)
{
    for (size_t i = 0; i < m->nlive; i++)
        if (m->live[i].id == id) return 1;
    return 0;
}

static void model_add_topic(bcluster *c, ctl_model *m, const ts_etcd_kv *kv)
{
    ctopic *t = calloc(1, sizeof(*t));
    const char *name = kv->key + c->prefix_len + strlen("topics/");
    if (!t || !(t->name = strdup(name)) || cluster_parse_topic(kv->value, t) != 0) {
        cluster_topic_free(t);
        return;
    }
    t->create_revision = kv->create_revision;
    t->next = m->topics;
    m->topics = t;
}

static void model_add_state(bcluster *c, ctl_model *m, const ts_etcd_kv *kv)
{
    const char *rest = kv->key + c->prefix_len + strlen("partitions/");
    const char *slash = strrchr(rest, '/');
    if (!slash) return;
    int32_t p = atoi(slash + 1);
    for (ctopic *t = m->topics; t; t = t->next) {
        if (strlen(t->name) != (size_t)(slash - rest) || strncmp(t->name, rest, (size_t)(slash - rest)))
            continue;
        if (p < 0 || p >= t->npartitions) return;
        if (cluster_parse_pstate(kv->value, &t->ps[p]) == 0) t->ps[p].version = kv->mod_revision;
        return;
    }
}

static void model_add_delete(bcluster *c, ctl_model *m, const ts_etcd_kv *kv)
{
    cdelete *d = calloc(1, sizeof(*d));
    const char *name = kv->key + c->prefix_len + strlen("deletes/");
    if (!d || !(d->name = strdup(name)) || cluster_parse_delete(kv->value, d) != 0) {
        cluster_delete_free(d);
        return;
    }
    d->create_revision = kv->create_revision;
    d->mod_revision = kv->mod_revision;
    d->next = m->deletes;
    m->deletes = d;
}

/* Reads the cluster inside a txn that checks the epoch: 1 read, 0 deposed,
 * -1 etcd failed. */
static int model_read(bcluster *c, ctl_model *m)
{
    char kc[320], kb[320], kt[320], kp[320], kd[320];
    ctl_key(c, kc, sizeof kc, "controller");
    ctl_key(c, kb, sizeof kb, "brokers/");
    ctl_key(c, kt, sizeof kt, "topics/");
    ctl_key(c, kp, sizeof kp, "partitions/");
    ctl_key(c, kd, sizeof kd, "deletes/");
    ts_etcd_cmp mine = {.key = kc, .key_len = strlen(kc), .target = TS_ETCD_CMP_CREATE,
                        .result = TS_ETCD_EQUAL, .number = c->ctl_epoch};
    ts_etcd_op ops[4] = {
        {.type = TS_ETCD_OP_RANGE, .key = kb, .key_len = strlen(kb), .prefix = 1},
        {.type = TS_ETCD_OP_RANGE, .key = kt, .key_len = strlen(kt), .prefix = 1},
        {.type = TS_ETCD_OP_RANGE, .key = kp, .key_len = strlen(kp), .prefix = 1},
        {.type = TS_ETCD_OP_RANGE, .key = kd, .key_len = strlen(kd), .prefix = 1},
    };
    ts_etcd_txn_result r;
    char err[1024] = "";
    if (ts_etcd_txn(c->etcd, &mine, 1, ops, 4, NULL, 0, &r, err, sizeof err) != TS_ETCD_OK) {
        blog_warn("controller: reading the cluster: %s", err);
        return -1;
    }
    int rc = r.succeeded && r.nresponses == 4;
    for (size_t i = 0; rc && i < r.responses[0].nkvs && m->nlive < 256; i++)
        if (cluster_parse_broker(r.responses[0].kvs[i].value, &m->live[m->nlive]) == 0) m->nlive++;
    for (size_t i = 0; rc && i < r.responses[1].nkvs; i++) model_add_topic(c, m, &r.responses[1].kvs[i]);
    for (size_t i = 0; rc && i < r.responses[2].nkvs; i++) model_add_state(c, m, &r.responses[2].kvs[i]);
    for (size_t i = 0; rc && i < r.responses[3].nkvs; i++) model_add_delete(c, m, &r.responses[3].kvs[i]);
    ts_etcd_txn_result_free(&r);
    return rc;
}

/* ------------------------------------------------------------- writes */

static void ids_text(const int32_t *v, int32_t n, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (int32_t i = 0; i < n && o + 12 < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%d", i ? "," : "", v[i]);
}

/* One partition state, by CAS (expect 0: create-only, while the topic is
 * still the one read), fenced by the epoch. 1 written, 0 not. */
static int write_state(bcluster *c, const ctopic *t, int32_t p, int64_t expect, cl_pstate *st,
                       const char *why)
{
    char key[600], kc[320], kt[600];
    cluster_key(c, key, sizeof key, "partitions/%s/%d", t->name, p);
    ctl_key(c, kc, sizeof kc, "controller");
    cluster_key(c, kt, sizeof kt, "topics/%s", t->name);
    st->controller_epoch = c->ctl_epoch;
    char *val = cluster_pstate_json(st);
    if (!val) return 0;
    ts_etcd_cmp cmps[3] = {
        {.key = kc, .key_len = strlen(kc), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = c->ctl_epoch},
        {.key = key, .key_len = strlen(key), .target = expect ? TS_ETCD_CMP_MOD : TS_ETCD_CMP_CREATE,
         .result = TS_ETCD_EQUAL, .number = expect},
        {.key = kt, .key_len = strlen(kt), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = t->create_revision},
    };
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val)};
    ts_etcd_txn_result r;
    char err[1024] = "";
    int ok = 0;
    if (ts_etcd_txn(c->etcd, cmps, 3, &put, 1, NULL, 0, &r, err, sizeof err) == TS_ETCD_OK) {
        ok = r.succeeded;
        ts_etcd_txn_result_free(&r);
    } else {
        blog_warn("controller: writing %s-%d: %s", t->name, p, err);
    }
    char isr[200];
    ids_text(st->isr, st->nisr, isr, sizeof isr);
    if (ok)
        blog_info("controller (epoch %lld) wrote %s-%d: leader %d, leader epoch %d, isr [%s] (%s)",
                  (long long)c->ctl_epoch, t->name, p, st->leader, st->leader_epoch, isr, why);
    else
        blog_info("controller (epoch %lld): %s-%d changed meanwhile (or this broker is no longer "
                  "the controller); looking again",
                  (long long)c->ctl_epoch, t->name, p);
    free(val);
    return ok;
}

/* The ISR without dead brokers; never empty: with no member alive it keeps
 * the one it would lose last (the old leader when it was a member). */
static int32_t isr_live(const ctl_model *m, const cl_pstate *st, int32_t *out)
{
    int32_t n = 0;
    for (int32_t i = 0; i < st->nisr; i++)
        if (model_live(m, st->isr[i])) out[n++] = st->isr[i];
    if (n == 0 && st->nisr > 0) {
        int32_t keep = st->isr[st->nisr - 1];
        for (int32_t i = 0; i < st->nisr; i++)
            if (st->isr[i] == st->leader) keep = st->leader;
        out[n++] = keep;
    }
    return n;
}

static int in_isr(const cl_pstate *st, int32_t id)
{
    for (int32_t k = 0; k < st->nisr; k++)
        if (st->isr[k] == id) return 1;
    return 0;
}

/* First replica in assignment order that is live and in the ISR (-1 none). */
static int32_t pick_leader(const ctl_model *m, const cl_pstate *st, int32_t exclude)
{
    for (int32_t i = 0; i < st->nreplicas; i++) {
        int32_t r = st->replicas[i];
        if (r != exclude && model_live(m, r) && in_isr(st, r)) return r;
    }
    return -1;
}

static int32_t first_live_replica(const ctl_model *m, const cl_pstate *st)
{
    for (int32_t i = 0; i < st->nreplicas; i++)
        if (model_live(m, st->replicas[i])) return st->replicas[i];
    return -1;
}

static void initial_state(bcluster *c, const ctl_model *m, const ctopic *t, int32_t p)
{
    cl_pstate st = t->ps[p];
    st.leader = first_live_replica(m, &st);
    st.leader_epoch = 0;
    st.nisr = 0;
    for (int32_t i = 0; i < st.nreplicas; i++)
        if (model_live(m, st.replicas[i])) st.isr[st.nisr++] = st.replicas[i];
    if (st.nisr == 0) { /* nothing live: every replica is as in sync as any */
        memcpy(st.isr, st.replicas, sizeof st.isr);
        st.nisr = st.nreplicas;
    }
    write_state(c, t, p, 0, &st, "new partition");
}

/* A partition without a live leader: the first live ISR member, or (unclean
 * election) any live replica, or offline. */
static void elect(bcluster *c, const ctl_model *m, const ctopic *t, int32_t p)
{
    const cl_pstate *cur = &t->ps[p];
    cl_pstate st = *cur;
    int32_t l = pick_leader(m, cur, -1);
    const char *why = "leader lost: elected from the ISR";
    if (l >= 0) {
        st.leader = l;
        st.nisr = isr_live(m, cur, st.isr);
    } else if (c->unclean && (l = first_live_replica(m, cur)) >= 0) {
        st.leader = l;
        st.isr[0] = l;
        st.nisr = 1;
        why = "leader lost, no ISR member alive: unclean election";
    } else {
        if (cur->leader < 0) return; /* offline already; nothing to do */
        st.leader = -1;
        st.nisr = isr_live(m, cur, st.isr);
        why = "leader lost, no ISR member alive: offline";
    }
    st.leader_epoch = cur->leader_epoch + 1;
    write_state(c, t, p, cur->version, &st, why);
}

static void repair(bcluster *c, const ctl_model *m, const ctopic *t, int32_t p, int balance)
{
    const cl_pstate *cur = &t->ps[p];
    if (!cur->version) {
        initial_state(c, m, t, p);
        return;
    }
    if (cur->leader < 0 || !model_live(m, cur->leader)) {
        elect(c, m, t, p);
        return;
    }
    cl_pstate st = *cur;
    st.nisr = isr_live(m, cur, st.isr);
    if (st.nisr != cur->nisr) {
        write_state(c, t, p, cur->version, &st, "dead followers left the ISR");
        return;
    }
    int32_t pref = cur->replicas[0];
    if (balance && pref != cur->leader && model_live(m, pref) && in_isr(cur, pref)) {
        st.leader = pref;
        st.leader_epoch = cur->leader_epoch + 1;
        write_state(c, t, p, cur->version, &st, "preferred leader back in the ISR");
    }
}

/* __consumer_offsets, created by the controller (cluster.h). */
static void offsets_topic(bcluster *c, const ctl_model *m)
{
    for (ctopic *t = m->topics; t; t = t->next)
        if (!strcmp(t->name, CLUSTER_OFFSETS_TOPIC)) return;
    if (m->nlive == 0 || (m->nlive < 3 && bclock_ms() - c->ctl_since_ms < 10000)) return;
    int32_t rf = m->nlive < 3 ? (int32_t)m->nlive : 3, n = c->offsets_partitions;
    int32_t *assign = calloc((size_t)(n * rf), sizeof(*assign));
    char id[32], key[320], kc[320];
    cluster_new_topic_id(id);
    if (!assign) return;
    cluster_assign(m->live, m->nlive, n, rf, assign);
    char *val = cluster_topic_json(id, n, rf, assign, NULL, 0);
    free(assign);
    if (!val) return;
    cluster_key(c, key, sizeof key, "topics/%s", CLUSTER_OFFSETS_TOPIC);
    ctl_key(c, kc, sizeof kc, "controller");
    ts_etcd_cmp cmps[2] = {
        {.key = kc, .key_len = strlen(kc), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = c->ctl_epoch},
        {.key = key, .key_len = strlen(key), .target = TS_ETCD_CMP_CREATE, .result = TS_ETCD_EQUAL,
         .number = 0},
    };
    ts_etcd_op put = {.type = TS_ETCD_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val)};
    char err[1024] = "";
    ts_etcd_txn_result r;
    if (ts_etcd_txn(c->etcd, cmps, 2, &put, 1, NULL, 0, &r, err, sizeof err) == TS_ETCD_OK) {
        if (r.succeeded)
            blog_info("controller (epoch %lld) created %s: %d partitions, replication factor %d",
                      (long long)c->ctl_epoch, CLUSTER_OFFSETS_TOPIC, n, rf);
        ts_etcd_txn_result_free(&r);
    } else {
        blog_warn("controller: creating %s: %s", CLUSTER_OFFSETS_TOPIC, err);
    }
    free(val);
}

/* Topic deletes (cluster_delete.c): a marker none of whose pending brokers
 * is live (the others confirmed that their local delete ended; a dead one
 * holds nothing open) goes to this broker's loop, which deletes the old
 * incarnation from the bucket and then the marker. A name created again
 * behind CreateTopics' back (topics/<t> written directly) is left alone:
 * its objects may be the new incarnation's. */
static void deletes_step(bcluster *c, const ctl_model *m)
{
    for (cdelete *d = m->deletes; d; d = d->next) {
        int waiting = 0;
        for (int32_t i = 0; i < d->npending; i++) waiting |= model_live(m, d->pending[i]);
        for (ctopic *t = m->topics; t && !waiting; t = t->next) waiting = !strcmp(t->name, d->name);
        if (!waiting) cluster_delete_purge_post(c, d, c->ctl_epoch);
    }
}

void controller_step(bcluster *c)
{
    int64_t now = bclock_ms();
    pthread_mutex_lock(&c->mu);
    int dirty = c->ctl_dirty;
    c->ctl_dirty = 0;
    pthread_mutex_unlock(&c->mu);
    if (!dirty && now < c->ctl_next_ms) return;
    c->ctl_next_ms = now + 1000;
    if (!c->ctl_epoch && !campaign(c)) return;
    /* on the heap: 256 registrations with their listeners are ~420 KiB */
    ctl_model *m = calloc(1, sizeof *m);
    if (!m) return;
    int rc = model_read(c, m);
    if (rc == 0) controller_resign(c);
    if (rc != 1) {
        model_free(m);
        free(m);
        return;
    }
    int balance = c->auto_rebalance && now - c->last_balance_ms >= c->rebalance_interval_ms;
    if (balance) c->last_balance_ms = now;
    for (ctopic *t = m->topics; t; t = t->next)
        for (int32_t p = 0; p < t->npartitions; p++) repair(c, m, t, p, balance);
    offsets_topic(c, m);
    deletes_step(c, m);
    model_free(m);
    free(m);
}
